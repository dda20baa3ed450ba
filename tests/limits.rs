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

/// `MAX_EXPR_NESTING` counts operations nested one inside another: a chain of `+`
/// nests one level per operator (`x + 1 + 1` is 2), so `N` of them pass and `N + 1`
/// fail, with a message that names what is counted. A flat `||` chain is balanced, so
/// it is no deeper than about log2 of its length: 1,000 comparisons within
/// `MAX_EXPR_LEN` parse.
#[test]
fn operator_nesting_trips_one_operator_past_the_bound() {
    let chain = |n: usize| format!("x{}", " + 1".repeat(n));
    assert!(parse(&chain(Limits::MAX_EXPR_NESTING)).is_ok());
    let e = parse(&chain(Limits::MAX_EXPR_NESTING + 1)).unwrap_err();
    assert_eq!(
        e.message,
        format!(
            "expression nests {} operations inside one another, more than the limit of {}",
            Limits::MAX_EXPR_NESTING + 1,
            Limits::MAX_EXPR_NESTING
        )
    );
    // a call nests its arguments: `size(x + 1 + …) > 0` is two levels more than the chain
    let wrapped = |n: usize| format!("size({}) > 0", chain(n));
    assert!(parse(&wrapped(Limits::MAX_EXPR_NESTING - 2)).is_ok());
    assert!(parse(&wrapped(Limits::MAX_EXPR_NESTING - 1)).is_err());
    // the probe's 128-operand `||` chain, and 1,000 realistic comparisons
    for n in [127, 128, 1000] {
        let or = (0..n)
            .map(|i| format!("g == \"{i}\""))
            .collect::<Vec<_>>()
            .join(" || ");
        assert!(or.len() <= Limits::MAX_EXPR_LEN, "{}", or.len());
        parse(&or).unwrap_or_else(|e| panic!("{n} operands: {}", e.message));
        let and = or.replace(" || ", " && ").replace("==", "!=");
        parse(&and).unwrap_or_else(|e| panic!("{n} operands: {}", e.message));
    }
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
