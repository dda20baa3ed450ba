//! `flowc test`: runs scenario files (`*.test.yaml`) and reports like a test runner.
//! Given flow files it runs the scenario files that use them (see `select`), so that
//! a pre-commit hook passing the changed files runs exactly the affected scenarios.
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
    /// What is wrong with the scenario itself, each at its key or value
    /// (`file:line:col: ...`): a typo would silently test less.
    problems: Vec<String>,
    /// Steps the scenario names (events, expected trace and pending), with their
    /// positions: checked against the flow once it is compiled.
    steps: Vec<(String, String)>,
    /// Where each `expect` key is (`file:line:col`), for the failures that compare it.
    expect_at: HashMap<String, String>,
    /// Where each event is, in order.
    event_at: Vec<String>,
    /// Where each expected trace entry is, in order.
    trace_at: Vec<String>,
}

const ROOT_KEYS: &[&str] = &["flow", "scenarios"];
const SCENARIO_KEYS: &[&str] = &["name", "context", "events", "auto", "expect"];
const EXPECT_KEYS: &[&str] = &["outcome", "trace", "pending", "incident", "startError"];
const OUTCOMES: &[&str] = &["approved", "rejected", "pending", "cancelled", "incident"];
const TRACE_KEYS: &[&str] = &["step", "status", "rule"];
const TRACE_STATUSES: &[&str] = &[
    "completed",
    "skipped",
    "rejected",
    "pending",
    "cancelled",
    "error",
];
const PENDING_KEYS: &[&str] = &["step", "assignees"];
const AUTO_VALUES: &[&str] = &["approve", "reject"];

/// `file:line:col` of a node.
fn loc(file: &flowc::span::SourceFile, node: &yaml::Node) -> String {
    let (line, col) = file.line_col(node.span.start);
    format!("{}:{line}:{col}", file.name())
}

/// `(did you mean `x`? allowed: a, b)` for a word outside `allowed`.
fn hint(word: &str, allowed: &[&str]) -> String {
    flowc::diagnostic::did_you_mean(word, allowed.iter().copied()).map_or_else(
        || format!("allowed: {}", allowed.join(", ")),
        |s| format!("did you mean `{s}`?"),
    )
}

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
            Some(format!(
                "{}: unknown key `{key}` in {what} ({})",
                loc(file, k),
                hint(key, allowed)
            ))
        })
        .collect()
}

/// `file:line:col: ...` when the value at `key` of `node` is a string outside `allowed`
/// (or not a string).
fn check_word(
    file: &flowc::span::SourceFile,
    node: &yaml::Node,
    key: &str,
    allowed: &[&str],
    problems: &mut Vec<String>,
) {
    let Some(value) = node.get(key) else {
        return;
    };
    match value.as_str() {
        Some(word) if allowed.contains(&word) => {}
        Some(word) => problems.push(format!(
            "{}: `{key}: {word}` is not a valid value ({})",
            loc(file, value),
            hint(word, allowed)
        )),
        None => problems.push(format!(
            "{}: `{key}` must be one of {}",
            loc(file, value),
            allowed.join(", ")
        )),
    }
}

/// Records the `step` named by an entry (an event, a trace or pending entry).
fn step_ref(file: &flowc::span::SourceFile, node: &yaml::Node, steps: &mut Vec<(String, String)>) {
    if let Some(step) = node.get("step")
        && let Some(id) = step.as_str()
    {
        steps.push((id.to_owned(), loc(file, step)));
    }
}

/// Checks one scenario's keys and fixed values, each problem at its own position.
fn read_scenario(file: &flowc::span::SourceFile, node: &yaml::Node, s: &mut Scenario) {
    s.problems = unknown_keys(file, node, SCENARIO_KEYS, "a scenario");
    check_word(file, node, "auto", AUTO_VALUES, &mut s.problems);
    if let Some(events) = node.get("events").and_then(yaml::Node::as_seq) {
        for event in events {
            s.event_at.push(loc(file, event));
            // an event expected to fail may name a missing step on purpose
            if event.get("expectError").is_none() {
                step_ref(file, event, &mut s.steps);
            }
            let Some(entries) = event.as_map() else {
                continue;
            };
            let kind = event.get("type");
            match kind.and_then(yaml::Node::as_str) {
                Some(k) if super::eval::event_keys(k).is_none() => {
                    let at = kind.map_or_else(|| loc(file, event), |n| loc(file, n));
                    s.problems
                        .push(format!("{at}: {}", super::eval::unknown_event_type(k)));
                }
                Some(k) => {
                    for (key, _) in entries {
                        let name = key.as_str().unwrap_or("?");
                        if super::eval::event_key_problem(Some(k), [name]).is_some() {
                            s.problems.push(format!(
                                "{}: {}",
                                loc(file, key),
                                super::eval::unknown_event_key(k, name)
                            ));
                        }
                    }
                }
                None => {
                    if let Some(problem) = super::eval::event_key_problem(None, []) {
                        s.problems.push(format!("{}: {problem}", loc(file, event)));
                    }
                }
            }
        }
    }
    let Some(expect) = node.get("expect") else {
        return;
    };
    s.problems
        .extend(unknown_keys(file, expect, EXPECT_KEYS, "`expect`"));
    check_word(file, expect, "outcome", OUTCOMES, &mut s.problems);
    for (key, value) in expect.as_map().unwrap_or_default() {
        if let Some(k) = key.as_str() {
            s.expect_at.insert(k.to_owned(), loc(file, value));
        }
    }
    for entry in expect
        .get("trace")
        .and_then(yaml::Node::as_seq)
        .unwrap_or_default()
    {
        s.trace_at.push(loc(file, entry));
        s.problems
            .extend(unknown_keys(file, entry, TRACE_KEYS, "a trace entry"));
        check_word(file, entry, "status", TRACE_STATUSES, &mut s.problems);
        step_ref(file, entry, &mut s.steps);
    }
    for entry in expect
        .get("pending")
        .and_then(yaml::Node::as_seq)
        .unwrap_or_default()
    {
        s.problems
            .extend(unknown_keys(file, entry, PENDING_KEYS, "a pending entry"));
        step_ref(file, entry, &mut s.steps);
    }
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
        let body = node.to_json();
        let mut scenario = Scenario {
            name: body
                .get("name")
                .and_then(|n| n.as_str())
                .map_or_else(|| format!("scenario {}", i + 1), str::to_owned),
            line: file.line_col(node.span.start).0,
            body,
            problems: Vec::new(),
            steps: Vec::new(),
            expect_at: HashMap::new(),
            event_at: Vec::new(),
            trace_at: Vec::new(),
        };
        read_scenario(&file, node, &mut scenario);
        out.push(scenario);
    }
    Ok((flow, out))
}

/// The flow of a scenario file (its `flow:`, relative to the file), without reading
/// its scenarios.
pub fn flow_of(path: &Path) -> Option<PathBuf> {
    let bytes = std::fs::read(path).ok()?;
    let file = flowc::load::source_from_bytes(&path.display().to_string(), bytes).ok()?;
    let root = yaml::parse(&file, &LoadLimits::default()).ok()?;
    let flow = root.get("flow").and_then(yaml::Node::as_str)?;
    Some(path.parent().unwrap_or(Path::new(".")).join(flow))
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
fn compare_trace(
    want: &serde_json::Value,
    got: &serde_json::Value,
    at: &dyn Fn(usize) -> String,
    fails: &mut Failure,
) {
    let (Some(w), Some(g)) = (want.as_array(), got.as_array()) else {
        fails.push("expect.trace must be a list".to_owned());
        return;
    };
    for (i, (a, b)) in w.iter().zip(g).enumerate() {
        expect_eq(&format!("{}trace[{i}]", at(i)), a, b, fails);
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
            "{}trace: expected {} entries, got {}: {}",
            at(usize::MAX),
            w.len(),
            g.len(),
            steps(g)
        ));
    }
}

/// The steps a scenario names that the flow does not have, each at its position.
fn unknown_steps(flow: &CompiledFlow, s: &Scenario) -> Vec<String> {
    let ids: Vec<&str> = (0..flow.nodes().len())
        .filter_map(|i| flow.step(i))
        .map(|step| step.id.value.as_str())
        .collect();
    s.steps
        .iter()
        .filter(|(id, _)| flow.step_index(id).is_none())
        .map(|(id, at)| {
            let hint = flowc::diagnostic::did_you_mean(id, ids.iter().copied())
                .map_or_else(String::new, |m| format!(" (did you mean `{m}`?)"));
            format!("{at}: the flow has no step `{id}`{hint}")
        })
        .collect()
}

/// Applies the scenario's events in order, each checked against its `expectError`;
/// returns the time of the last one.
fn apply_events(
    inst: &mut Instance,
    events: &[super::eval::TimedEvent],
    s: &Scenario,
    fails: &mut Failure,
) -> u64 {
    let at_event = |i: usize| {
        s.event_at
            .get(i)
            .map_or_else(String::new, |l| format!("{l}: "))
    };
    let mut at = 0;
    for (i, e) in events.iter().enumerate() {
        at = e.at.unwrap_or(at + 1);
        match (apply_one(inst, e, at), &e.expect_error) {
            (Ok(_), None) => {}
            (Ok(_), Some(code)) => fails.push(format!(
                "{}event {}: expected error {code}, it was accepted",
                at_event(i),
                i + 1
            )),
            (Err(err), want) => {
                let code = err.code();
                if want.as_deref() != Some(code) {
                    fails.push(format!(
                        "{}event {}: {} [{code}]",
                        at_event(i),
                        i + 1,
                        err.message()
                    ));
                }
            }
        }
    }
    at
}

fn run_one(flow: &Arc<CompiledFlow>, s: &Scenario) -> Result<(), Failure> {
    let mut problems = s.problems.clone();
    problems.extend(unknown_steps(flow, s));
    if !problems.is_empty() {
        return Err(problems);
    }
    let at_expect = |key: &str| {
        s.expect_at
            .get(key)
            .map_or_else(String::new, |l| format!("{l}: "))
    };
    let mut fails = Vec::new();
    let body = &s.body;
    let ctx = body
        .get("context")
        .cloned()
        .unwrap_or_else(|| serde_json::json!({}));
    let expect = body.get("expect").cloned().unwrap_or_default();
    let events = match body.get("events").map(parse_events).transpose() {
        Ok(e) => e.unwrap_or_default(),
        Err(e) => return Err(vec![format!("{}{e}", at_expect("events"))]),
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
            return Err(vec![format!(
                "{}start failed: {e} [{code}]",
                at_expect("startError")
            )]);
        }
    };
    let at = apply_events(&mut inst, &events, s, &mut fails);
    if let Some(auto) = auto
        && let Err(e) = inst.auto_answer(auto, at, MAX_AUTO_EVENTS)
    {
        fails.push(format!("automatic answer failed: {e}"));
    }
    let got = summary(&inst, false);
    for key in ["outcome", "pending", "incident"] {
        if let Some(want) = expect.get(key) {
            let none = serde_json::Value::Null;
            expect_eq(
                &format!("{}{key}", at_expect(key)),
                want,
                got.get(key).unwrap_or(&none),
                &mut fails,
            );
        }
    }
    if let Some(want) = expect.get("trace") {
        // an entry's failure at the entry, a wrong length at `trace:`
        let at = |i: usize| {
            s.trace_at
                .get(i)
                .map_or_else(|| at_expect("trace"), |l| format!("{l}: "))
        };
        compare_trace(want, got.get("trace").unwrap_or_default(), &at, &mut fails);
    }
    if expect.get("outcome").is_none() {
        fails.push("expect.outcome is required".to_owned());
    }
    if fails.is_empty() { Ok(()) } else { Err(fails) }
}

/// The scenario files to run: those under the directories given (all under `.` when
/// nothing is given), the scenario files named, and for the flow files named the
/// scenario files under the working directory (the one walk: `.gitignore`d, hidden and
/// vendored directories are not searched) whose `flow:` is one of them, compared as
/// canonical paths. Named YAML that is neither (`docker-compose.yml`, passed by
/// pre-commit) selects nothing.
fn select(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    if paths.is_empty() {
        return super::check::collect_scenarios(&[]);
    }
    let (named, others): (Vec<PathBuf>, Vec<PathBuf>) = paths
        .iter()
        .cloned()
        .partition(|p| p.is_file() && !flowc::source::is_scenario_file(p));
    let mut out = if others.is_empty() {
        Vec::new()
    } else {
        super::check::collect_scenarios(&others)?
    };
    let flows: Vec<PathBuf> = named
        .iter()
        .filter(|p| std::fs::read(p).is_ok_and(|b| flowc::source::is_flow_content(&b)))
        .filter_map(|p| p.canonicalize().ok())
        .collect();
    if !flows.is_empty() {
        for s in super::check::collect_scenarios(&[PathBuf::from(".")])? {
            if flow_of(&s)
                .and_then(|f| f.canonicalize().ok())
                .is_some_and(|f| flows.contains(&f))
            {
                out.push(s);
            }
        }
    }
    // one file reached by two spellings (named, and found by the walk) runs once
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.canonicalize().unwrap_or_else(|_| p.clone())));
    out.sort();
    Ok(out)
}

pub fn run(paths: &[PathBuf]) -> u8 {
    let files = match select(paths) {
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
