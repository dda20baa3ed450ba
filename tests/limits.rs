//! Every fixed bound of `flowc::limits::Limits` trips exactly at its value (one past the
//! bound fails, the bound itself passes). The configurable groups have their own files:
//! the loader's in `tests/load_limits.rs`, the sandbox's in `tests/sandbox.rs`, the
//! store's record sizes in `tests/store.rs`.
#![allow(
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "test and benchmark code: failing loudly is the point"
)]

use std::fmt::Write as _;
use std::sync::Arc;

use flowc::compile::{Options, compile};
use flowc::expr::parse::parse;
use flowc::limits::{Limits, SandboxLimits};
use flowc::runtime::{Instance, Status};
use flowc::span::SourceFile;
use serde_json::json;

#[test]
fn expression_length_trips_one_byte_past_the_bound() {
    // `"aaa…" == x`: two quotes and ` == x` around the string
    let at = format!("\"{}\" == x", "a".repeat(Limits::MAX_EXPR_LEN - 7));
    assert_eq!(at.len(), Limits::MAX_EXPR_LEN);
    assert!(parse(&at).is_ok());
    let over = format!("\"{}\" == x", "a".repeat(Limits::MAX_EXPR_LEN - 6));
    let e = parse(&over).unwrap_err();
    assert_eq!(
        e.message,
        format!("expression is longer than {} bytes", Limits::MAX_EXPR_LEN)
    );
}

#[test]
fn expression_nesting_trips_one_level_past_the_bound() {
    let nest = |n: usize| format!("{}x{}", "(".repeat(n), ")".repeat(n));
    assert!(parse(&nest(Limits::MAX_EXPR_DEPTH)).is_ok());
    let e = parse(&nest(Limits::MAX_EXPR_DEPTH + 1)).unwrap_err();
    assert_eq!(
        e.message,
        format!(
            "expression nests deeper than {} levels",
            Limits::MAX_EXPR_DEPTH
        )
    );
    assert_eq!(e.span, (Limits::MAX_EXPR_DEPTH, Limits::MAX_EXPR_DEPTH + 1));
    let prefix = |n: usize| format!("{}x", "!".repeat(n));
    assert!(parse(&prefix(Limits::MAX_EXPR_DEPTH)).is_ok());
    assert!(parse(&prefix(Limits::MAX_EXPR_DEPTH + 1)).is_err());
}

#[test]
fn an_event_stops_after_the_automatic_step_bound() {
    // a straight line of notify steps: each one is an automatic step, and so is reaching
    // the end
    let flow = |n: usize| {
        let mut text = String::from(
            "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: long\ncontext: { x: int }\nsteps:\n",
        );
        for i in 0..n {
            let _ = writeln!(
                text,
                "  - {{ id: n{i}, type: notify, to: {{ role: r }}, message: m }}"
            );
        }
        let file = SourceFile::new("long.yaml", &text);
        Arc::new(compile(&file, &Options::default()).unwrap())
    };
    let (inst, _) =
        Instance::start(flow(Limits::MAX_AUTOMATIC_STEPS - 1), json!({"x": 1}), 0).unwrap();
    assert_eq!(inst.status().label(), "approved");
    let (inst, _) = Instance::start(flow(Limits::MAX_AUTOMATIC_STEPS), json!({"x": 1}), 0).unwrap();
    let Status::Incident { message, .. } = inst.status() else {
        panic!("{:?}", inst.status());
    };
    assert_eq!(
        message,
        &format!(
            "more than {} automatic steps in one event",
            Limits::MAX_AUTOMATIC_STEPS
        )
    );
}

#[test]
fn options_take_the_configurable_groups() {
    let mut limits = Limits::default();
    limits.load.max_depth = 3;
    limits.sandbox = SandboxLimits {
        max_operations: 7,
        ..SandboxLimits::default()
    };
    let options = Options::new(&limits);
    assert_eq!(options.load, limits.load);
    assert_eq!(options.sandbox.limits(), &limits.sandbox);
    let deep = SourceFile::new("deep.yaml", "a: { b: { c: { d: 1 } } }\n");
    let d = compile(&deep, &options).unwrap_err();
    assert!(d.iter().any(|d| d.code() == "flowc::load::too-deep"));
}

#[test]
fn a_long_line_of_steps_is_checked_without_overflowing_the_stack() {
    // the automatic-cycle check once recursed once per step in a row
    let mut text = String::from("apiVersion: flowc/v1\nkind: ApprovalFlow\nid: long\nsteps:\n");
    for i in 0..20_000 {
        let _ = writeln!(
            text,
            "  - {{ id: n{i}, type: notify, to: {{ role: r }}, message: m }}"
        );
    }
    let file = SourceFile::new("long.yaml", &text);
    // a thread with a small stack, as a host's worker might have
    let compiled = std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(move || compile(&file, &Options::default()).map(|f| f.nodes().len()))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(compiled.unwrap(), 20_000);
}
