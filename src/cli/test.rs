//! `flowc test`: runs scenario files (`*.test.yaml`) and reports like a test runner.
//! A scenario file is recognised by its content (a top-level `flow:` or `scenarios:`);
//! top-level keys starting with `x-` are the user's (anchors to merge from).
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

/// `flowc test --help`: what a scenario file holds.
pub const HELP: &str = "\
A scenario file (`*.test.yaml`, recognised by its top-level `flow:` and `scenarios:`;
other YAML named like one is skipped and named as skipped):

  flow: leave-request.yaml          # the flow file, relative to this file
  x-base: &base {days: 3}           # keys starting with `x-` are ignored: anchors to merge
  scenarios:
    - name: a short leave needs the manager only
      context: {<<: *base, kind: annual}   # checked against the flow's declared context
      events:                              # optional; `at` (seconds) and `id` optional
        - {type: approve, step: manager, user: li, role: manager}
        - {type: approve, step: manager, user: li, expectError: stale}
      auto: approve                        # optional: answer the rest this way
      expect:
        outcome: approved   # approved | rejected | pending | cancelled | incident
        trace: [{step: manager, status: completed}]   # optional, exact; `rule` optional
        startError: missing-field          # instead: the start must fail with this code

`expectError`/`startError` take a code as `flowc rule` does (`flowc::runtime::stale` or
`stale`). Every problem of a scenario file is reported in one run, at its line:column.
Given flow files, the scenario files using them run, and so do those whose `flow:` no
longer exists. Exit codes: 0 all passed, 1 a scenario failed, 2 a flow file cannot be
read.";

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flowc::compile::CompiledFlow;
use flowc::runtime::{Auto, Instance};

use super::eval::{MAX_AUTO_EVENTS, apply_one, parse_events, summary};
use super::scenario::{
    Scenario, ScenarioFile, by_position, context_problems, flow_of, full_code, scenarios_of,
};
use super::{EXIT_FAILURE, EXIT_FINDINGS};

/// One scenario's failure: what differed.
type Failure = Vec<String>;

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
            format!(
                "{at}: the flow has no step `{}`{hint}",
                flowc::diagnostic::excerpt(id)
            )
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
                if want.as_deref().map(full_code).as_deref() != Some(code) {
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
    let expects_start_error = s
        .body
        .get("expect")
        .and_then(|e| e.get("startError"))
        .is_some();
    if !expects_start_error {
        problems.extend(context_problems(flow, s));
    }
    if !problems.is_empty() {
        by_position(&mut problems);
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
            if expect
                .get("startError")
                .and_then(|v| v.as_str())
                .map(full_code)
                .as_deref()
                == Some(code.as_str())
            {
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
/// canonical paths, or whose `flow:` no longer exists (a flow renamed or deleted leaves
/// them broken: they must fail, not be forgotten). Named YAML that is neither
/// (`docker-compose.yml`, passed by pre-commit) selects nothing. Also returns the flow
/// files named that no scenario file uses.
fn select(paths: &[PathBuf]) -> Result<(Vec<PathBuf>, Vec<PathBuf>), String> {
    if paths.is_empty() {
        return Ok((super::check::collect_scenarios(&[])?, Vec::new()));
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
    let flows: Vec<(PathBuf, PathBuf)> = named
        .iter()
        .filter(|p| std::fs::read(p).is_ok_and(|b| flowc::source::is_flow_content(&b)))
        .filter_map(|p| p.canonicalize().ok().map(|c| (p.clone(), c)))
        .collect();
    let mut used = vec![false; flows.len()];
    if !flows.is_empty() {
        for s in super::check::collect_scenarios(&[PathBuf::from(".")])? {
            let Some(flow) = flow_of(&s) else {
                continue;
            };
            let Ok(flow) = flow.canonicalize() else {
                // its flow is gone: broken, and reported as such
                out.push(s);
                continue;
            };
            if let Some(i) = flows.iter().position(|(_, c)| *c == flow) {
                if let Some(u) = used.get_mut(i) {
                    *u = true;
                }
                out.push(s);
            }
        }
    }
    // one file reached by two spellings (named, and found by the walk) runs once
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.canonicalize().unwrap_or_else(|_| p.clone())));
    out.sort();
    let unused = flows
        .into_iter()
        .zip(used)
        .filter(|(_, u)| !u)
        .map(|((p, _), _)| p)
        .collect();
    Ok((out, unused))
}

pub fn run(paths: &[PathBuf], options: &flowc::compile::Options) -> u8 {
    let (files, unused) = match select(paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILURE;
        }
    };
    for flow in &unused {
        outln!("no scenario file uses {}", flow.display());
    }
    let mut flows: HashMap<PathBuf, Result<Arc<CompiledFlow>, u8>> = HashMap::new();
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut skipped = Vec::new();
    // a flow file that cannot be read is an I/O error (exit 2), not a failing test
    let mut io_error = false;
    for file in &files {
        let (flow_path, problems, scenarios) = match scenarios_of(file) {
            Ok(ScenarioFile::Read {
                flow,
                problems,
                scenarios,
            }) => (flow, problems, scenarios),
            Ok(ScenarioFile::NotScenarios) => {
                skipped.push(file.display().to_string());
                continue;
            }
            Err(e) => {
                outln!("{}", file.display());
                outln!("  FAIL (the scenario file)\n{e}");
                failed += 1;
                continue;
            }
        };
        outln!("{}", file.display());
        if !problems.is_empty() {
            outln!("  FAIL (the scenario file)");
            for p in &problems {
                outln!("       {p}");
            }
            failed += 1;
        }
        if flow_path.as_os_str().is_empty() {
            failed += scenarios.len();
            continue;
        }
        let flow = flows
            .entry(flow_path.clone())
            .or_insert_with(|| super::check::load_one_with(&flow_path, options).map(Arc::new))
            .clone();
        let flow = match flow {
            Ok(f) => f,
            Err(EXIT_FAILURE) => {
                outln!("  ERROR {}", unreadable_flow(&flow_path));
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
    if let Some(line) = skipped_line(&skipped) {
        outln!("{line}");
    }
    let ran = files.len() - skipped.len();
    if ran == 0 && !unused.is_empty() {
        return 0;
    }
    let verdict = if failed == 0 { "ok" } else { "FAILED" };
    outln!(
        "\ntest result: {verdict}. {} passed; {} failed; {} file(s)",
        thousands(passed),
        thousands(failed),
        thousands(ran)
    );
    if io_error {
        EXIT_FAILURE
    } else if failed > 0 {
        EXIT_FINDINGS
    } else {
        0
    }
}

/// Why a scenario file's flow cannot be read.
fn unreadable_flow(flow: &Path) -> String {
    if flow.exists() {
        format!("{}: the flow file cannot be read", flow.display())
    } else {
        format!(
            "{}: the flow file does not exist (renamed or deleted? `flow:` in this file must name it)",
            flow.display()
        )
    }
}

/// The summary line naming YAML files named like scenario files that are not.
fn skipped_line(skipped: &[String]) -> Option<String> {
    let n = skipped.len();
    (n > 0).then(|| {
        format!(
            "skipped {} YAML file{} named like a scenario file without `flow:` and `scenarios:`: {}",
            thousands(n),
            if n == 1 { "" } else { "s" },
            skipped.join(", ")
        )
    })
}

fn thousands(n: usize) -> String {
    super::check::thousands(n)
}
