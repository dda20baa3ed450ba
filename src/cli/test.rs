//! `flowc test`: runs scenario files (`*.test.yaml`) and reports like a test runner.
//!
//! ```yaml
//! flow: expense-reimbursement.yaml     # relative to the scenario file
//! scenarios:
//!   - name: a small claim skips finance validation
//!     context: { amount: 800.0, ... }
//!     events:                          # optional; `at` and `expectError` are optional
//!       - { type: approve, step: manager-approve, user: li, role: manager }
//!     auto: approve                    # optional: then answer everything this way
//!     expect:
//!       outcome: approved              # approved | rejected | pending | cancelled | incident
//!       trace: [ { step: manager-approve, status: completed }, ... ]   # optional, exact
//!       pending: [ { step: ..., assignees: [ { role: cfo } ] } ]       # optional, exact
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flowc::compile::CompiledFlow;
use flowc::load::{LoadLimits, yaml};
use flowc::runtime::{Auto, Instance};

use super::eval::{MAX_AUTO_EVENTS, apply_one, parse_events, summary};
use super::{EXIT_FAILURE, EXIT_FINDINGS};

/// One scenario's failure: what differed.
type Failure = Vec<String>;

struct Scenario {
    name: String,
    line: usize,
    body: serde_json::Value,
    /// Keys that are not part of the scenario format (typos would silently test less).
    problems: Vec<String>,
}

const ROOT_KEYS: &[&str] = &["flow", "scenarios"];
const SCENARIO_KEYS: &[&str] = &["name", "context", "events", "auto", "expect"];
const EXPECT_KEYS: &[&str] = &["outcome", "trace", "pending", "incident", "startError"];

/// `file:line:col: unknown key` for every key of a mapping outside `allowed`.
fn unknown_keys(
    file: &flowc::span::SourceFile,
    node: &yaml::Node,
    allowed: &[&str],
    what: &str,
) -> Vec<String> {
    let Some(entries) = node.as_map() else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|(k, _)| {
            let key = k.as_str().unwrap_or("?");
            if allowed.contains(&key) {
                return None;
            }
            let (line, col) = file.line_col(k.span.start);
            let help = flowc::diagnostic::did_you_mean(key, allowed.iter().copied()).map_or_else(
                || format!("allowed: {}", allowed.join(", ")),
                |s| format!("did you mean `{s}`?"),
            );
            Some(format!(
                "{}:{line}:{col}: unknown key `{key}` in {what} ({help})",
                file.name()
            ))
        })
        .collect()
}

fn scenarios_of(path: &Path) -> Result<(PathBuf, Vec<Scenario>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = path.display().to_string();
    let file = flowc::load::source_from_bytes(&name, bytes).map_err(|d| render(&d))?;
    let root = yaml::parse(&file, &LoadLimits::default()).map_err(|errs| {
        let mut d = flowc::diagnostic::Diagnostics::new();
        for e in errs {
            d.add(&file, e);
        }
        render(&d)
    })?;
    let at = |node: &yaml::Node| file.line_col(node.span.start).0;
    let root_problems = unknown_keys(&file, &root, ROOT_KEYS, "a scenario file");
    if !root_problems.is_empty() {
        return Err(root_problems.join("\n"));
    }
    let flow = root
        .get("flow")
        .and_then(yaml::Node::as_str)
        .ok_or_else(|| {
            format!("{name}:1:1: `flow:` (the flow file, relative to this file) is required")
        })?;
    let flow = path.parent().unwrap_or(Path::new(".")).join(flow);
    let list = root
        .get("scenarios")
        .and_then(yaml::Node::as_seq)
        .ok_or_else(|| format!("{name}:1:1: `scenarios:` (a list) is required"))?;
    let mut out = Vec::new();
    for (i, node) in list.iter().enumerate() {
        let line = at(node);
        let body = node.to_json();
        let name = body
            .get("name")
            .and_then(|n| n.as_str())
            .map_or_else(|| format!("scenario {}", i + 1), str::to_owned);
        let mut problems = unknown_keys(&file, node, SCENARIO_KEYS, "a scenario");
        if let Some(expect) = node.get("expect") {
            problems.extend(unknown_keys(&file, expect, EXPECT_KEYS, "`expect`"));
        }
        out.push(Scenario {
            name,
            line,
            body,
            problems,
        });
    }
    Ok((flow, out))
}

fn render(d: &flowc::diagnostic::Diagnostics) -> String {
    super::check::render_all(d)
}

fn expect_eq(what: &str, want: &serde_json::Value, got: &serde_json::Value, fails: &mut Failure) {
    if want != got {
        fails.push(format!("{what}: expected {want}, got {got}"));
    }
}

/// Compares the expected trace entry by entry (an entry may leave out `rule`).
fn compare_trace(want: &serde_json::Value, got: &serde_json::Value, fails: &mut Failure) {
    let (Some(w), Some(g)) = (want.as_array(), got.as_array()) else {
        fails.push("expect.trace must be a list".to_owned());
        return;
    };
    for (i, (a, b)) in w.iter().zip(g).enumerate() {
        expect_eq(&format!("trace[{i}]"), a, b, fails);
    }
    if w.len() != g.len() {
        let steps = |v: &[serde_json::Value]| {
            v.iter()
                .map(|e| {
                    format!(
                        "{}:{}",
                        e["step"].as_str().unwrap_or("?"),
                        e["status"].as_str().unwrap_or("?")
                    )
                })
                .collect::<Vec<_>>()
                .join(" → ")
        };
        fails.push(format!(
            "trace: expected {} entries, got {}: {}",
            w.len(),
            g.len(),
            steps(g)
        ));
    }
}

fn run_one(flow: &Arc<CompiledFlow>, s: &Scenario) -> Result<(), Failure> {
    if !s.problems.is_empty() {
        return Err(s.problems.clone());
    }
    let mut fails = Vec::new();
    let body = &s.body;
    let ctx = body
        .get("context")
        .cloned()
        .unwrap_or_else(|| serde_json::json!({}));
    let expect = body.get("expect").cloned().unwrap_or_default();
    let events = match body.get("events").map(parse_events).transpose() {
        Ok(e) => e.unwrap_or_default(),
        Err(e) => return Err(vec![e]),
    };
    let auto = match body.get("auto").and_then(|a| a.as_str()) {
        None => None,
        Some("approve") => Some(Auto::Approve),
        Some("reject") => Some(Auto::Reject),
        Some(other) => {
            return Err(vec![format!(
                "auto: expected `approve` or `reject`, found `{other}`"
            )]);
        }
    };
    let mut inst = match Instance::start(Arc::clone(flow), &ctx, 0) {
        Ok((i, _)) => i,
        Err(e) => {
            use miette::Diagnostic as _;
            let code = e.code().map(|c| c.to_string()).unwrap_or_default();
            if expect.get("startError").and_then(|v| v.as_str()) == Some(code.as_str()) {
                return Ok(());
            }
            return Err(vec![format!("start failed: {e} [{code}]")]);
        }
    };
    let mut at = 0;
    for (i, e) in events.iter().enumerate() {
        at = e.at.unwrap_or(at + 1);
        let r = apply_one(&mut inst, e, at);
        match (&r, &e.expect_error) {
            (Ok(_), None) => {}
            (Ok(_), Some(code)) => fails.push(format!(
                "event {}: expected error {code}, it was accepted",
                i + 1
            )),
            (Err(err), want) => {
                let code = err.code();
                if want.as_deref() != Some(code) {
                    fails.push(format!("event {}: {} [{code}]", i + 1, err.message()));
                }
            }
        }
    }
    if let Some(auto) = auto
        && let Err(e) = inst.auto_answer(auto, at, MAX_AUTO_EVENTS)
    {
        fails.push(format!("automatic answer failed: {e}"));
    }
    let got = summary(&inst, false);
    for key in ["outcome", "pending", "incident"] {
        if let Some(want) = expect.get(key) {
            let none = serde_json::Value::Null;
            expect_eq(key, want, got.get(key).unwrap_or(&none), &mut fails);
        }
    }
    if let Some(want) = expect.get("trace") {
        compare_trace(want, got.get("trace").unwrap_or_default(), &mut fails);
    }
    if expect.get("outcome").is_none() {
        fails.push("expect.outcome is required".to_owned());
    }
    if fails.is_empty() { Ok(()) } else { Err(fails) }
}

pub fn run(paths: &[PathBuf]) -> u8 {
    let files = match super::check::collect_scenarios(paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILURE;
        }
    };
    let mut flows: HashMap<PathBuf, Result<Arc<CompiledFlow>, u8>> = HashMap::new();
    let (mut passed, mut failed) = (0usize, 0usize);
    // a flow file that cannot be read is an I/O error (exit 2), not a failing test
    let mut io_error = false;
    for file in &files {
        outln!("{}", file.display());
        let (flow_path, scenarios) = match scenarios_of(file) {
            Ok(x) => x,
            Err(e) => {
                outln!("  FAIL (the scenario file)\n{e}");
                failed += 1;
                continue;
            }
        };
        let flow = flows
            .entry(flow_path.clone())
            .or_insert_with(|| super::check::load_one(&flow_path).map(Arc::new))
            .clone();
        let flow = match flow {
            Ok(f) => f,
            Err(EXIT_FAILURE) => {
                outln!(
                    "  ERROR {}: the flow file cannot be read",
                    flow_path.display()
                );
                io_error = true;
                failed += scenarios.len().max(1);
                continue;
            }
            Err(_) => {
                outln!("  FAIL {}: the flow does not compile", flow_path.display());
                failed += scenarios.len().max(1);
                continue;
            }
        };
        for s in &scenarios {
            match run_one(&flow, s) {
                Ok(()) => {
                    passed += 1;
                    outln!("  ok   {}", s.name);
                }
                Err(fails) => {
                    failed += 1;
                    outln!("  FAIL {} ({}:{})", s.name, file.display(), s.line);
                    for f in fails {
                        outln!("       {f}");
                    }
                }
            }
        }
    }
    let verdict = if failed == 0 { "ok" } else { "FAILED" };
    outln!(
        "\ntest result: {verdict}. {passed} passed; {failed} failed; {} file(s)",
        files.len()
    );
    if io_error {
        EXIT_FAILURE
    } else if failed > 0 {
        EXIT_FINDINGS
    } else {
        0
    }
}
