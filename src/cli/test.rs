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
    /// The file, and the scenario's `context` node: checked against the flow's declared
    /// context before running, each misfit at its value.
    file: Arc<flowc::span::SourceFile>,
    context: Option<yaml::Node>,
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

/// Checks one event of a scenario, each problem at its own position.
fn read_event(file: &flowc::span::SourceFile, event: &yaml::Node, s: &mut Scenario) {
    s.event_at.push(loc(file, event));
    // an event expected to fail may name a missing step on purpose
    if event.get("expectError").is_none() {
        step_ref(file, event, &mut s.steps);
    }
    let Some(entries) = event.as_map() else {
        return;
    };
    if let Some(at) = event.get("at")
        && !at.to_json().is_u64()
    {
        s.problems.push(format!(
            "{}: `at` must be a non-negative integer (seconds), found `{}`",
            loc(file, at),
            at.to_json()
        ));
    }
    if let Some(id) = event.get("id")
        && id.as_str().is_none()
    {
        s.problems
            .push(format!("{}: `id` must be a string", loc(file, id)));
    }
    if let Some(code) = event.get("expectError") {
        s.problems.extend(code_problem(file, code, "expectError"));
    }
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

/// Checks one scenario's keys and fixed values, each problem at its own position.
fn read_scenario(file: &flowc::span::SourceFile, node: &yaml::Node, s: &mut Scenario) {
    s.problems = unknown_keys(file, node, SCENARIO_KEYS, "a scenario");
    if let Some(ctx) = node.get("context")
        && ctx.as_map().is_none()
    {
        s.problems.push(format!(
            "{}: `context` must be a mapping of the flow's context fields",
            loc(file, ctx)
        ));
    }
    check_word(file, node, "auto", AUTO_VALUES, &mut s.problems);
    for event in node
        .get("events")
        .and_then(yaml::Node::as_seq)
        .unwrap_or_default()
    {
        read_event(file, event, s);
    }
    let Some(expect) = node.get("expect") else {
        return;
    };
    s.problems
        .extend(unknown_keys(file, expect, EXPECT_KEYS, "`expect`"));
    check_word(file, expect, "outcome", OUTCOMES, &mut s.problems);
    if let Some(code) = expect.get("startError") {
        s.problems.extend(code_problem(file, code, "startError"));
    }
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
        if let Some(rule) = entry.get("rule")
            && !rule.to_json().is_u64()
        {
            s.problems.push(format!(
                "{}: `rule` must be the rule's number (0 for the first rule), found `{}`",
                loc(file, rule),
                rule.to_json()
            ));
        }
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

/// A scenario file read: its flow, its own problems (each at its position) and its
/// scenarios; or YAML that is not a scenario file.
enum ScenarioFile {
    /// No top-level `flow:` or `scenarios:`: another tool's YAML named like a scenario
    /// file (`docker-compose.test.yml`).
    NotScenarios,
    Read {
        flow: PathBuf,
        problems: Vec<String>,
        scenarios: Vec<Scenario>,
    },
}

/// What a scenario file holds, for the help of an empty or unreadable one.
const SCENARIO_HELP: &str = "a scenario file has `flow:` (the flow file, relative to this file) and `scenarios:` (a list, each with `name`, `context`, `events` and `expect`); `flowc test --help` shows one";

/// True when the text has nothing but blank lines and comments.
fn is_blank(bytes: &[u8]) -> bool {
    String::from_utf8_lossy(bytes)
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
}

fn scenarios_of(path: &Path) -> Result<ScenarioFile, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = path.display().to_string();
    if is_blank(&bytes) {
        return Err(format!(
            "{name}:1:1: the scenario file is empty\n  help: {SCENARIO_HELP}"
        ));
    }
    let file = flowc::load::source_from_bytes(&name, bytes).map_err(|d| render(&d))?;
    let root = yaml::parse(&file, &LoadLimits::default()).map_err(|errs| {
        let mut d = flowc::diagnostic::Diagnostics::new();
        for e in errs {
            d.add(&file, e);
        }
        render(&d)
    })?;
    if root.get("flow").is_none() && root.get("scenarios").is_none() {
        return Ok(ScenarioFile::NotScenarios);
    }
    // `x-` keys are the user's (anchors to merge from, like docker compose's)
    let mut problems: Vec<String> = root
        .as_map()
        .unwrap_or_default()
        .iter()
        .filter_map(|(k, _)| {
            let key = k.as_str().unwrap_or("?");
            if ROOT_KEYS.contains(&key) || key.starts_with("x-") {
                return None;
            }
            let hint = flowc::diagnostic::did_you_mean(key, ROOT_KEYS.iter().copied()).map_or_else(
                || format!("allowed: flow, scenarios; a key holding anchors is named `x-{key}`"),
                |s| format!("did you mean `{s}`?"),
            );
            Some(format!(
                "{}: unknown key `{key}` in a scenario file ({hint})",
                loc(&file, k)
            ))
        })
        .collect();
    let at_root = loc(&file, &root);
    let mut flow = PathBuf::new();
    if let Some(f) = root.get("flow") {
        if let Some(name) = f.as_str() {
            flow = path.parent().unwrap_or(Path::new(".")).join(name);
        } else {
            problems.push(format!(
                "{}: `flow:` must be the flow file's path (relative to this file)",
                loc(&file, f)
            ));
        }
    } else {
        problems.push(format!(
            "{at_root}: `flow:` (the flow file, relative to this file) is required"
        ));
    }
    let mut list: &[yaml::Node] = &[];
    if let Some(l) = root.get("scenarios") {
        if let Some(seq) = l.as_seq() {
            list = seq;
        } else {
            problems.push(format!("{}: `scenarios:` must be a list", loc(&file, l)));
        }
    } else {
        problems.push(format!("{at_root}: `scenarios:` (a list) is required"));
    }
    let mut scenarios = Vec::new();
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
            file: Arc::clone(&file),
            context: node.get("context").cloned(),
        };
        read_scenario(&file, node, &mut scenario);
        scenarios.push(scenario);
    }
    by_position(&mut problems);
    Ok(ScenarioFile::Read {
        flow,
        problems,
        scenarios,
    })
}

/// Sorts `file:line:col: ...` messages by line and column (messages without a
/// position last, in their order).
fn by_position(problems: &mut [String]) {
    let key = |p: &String| {
        let head = p.split(": ").next().unwrap_or_default();
        let mut it = head.rsplit(':');
        let col = it.next().and_then(|c| c.parse::<usize>().ok());
        let line = it.next().and_then(|l| l.parse::<usize>().ok());
        line.zip(col).unwrap_or((usize::MAX, usize::MAX))
    };
    problems.sort_by_key(key);
}

/// The full code an `expectError`/`startError` names (`missing-field` stands for the
/// one code of that name, as `flowc rule` reads it).
fn full_code(text: &str) -> String {
    if is_script_code(text) {
        return super::eval::NO_SUCH_ID.to_owned();
    }
    resolve_code(text).map_or_else(|| text.to_owned(), |c| c.as_str().to_owned())
}

/// The scripted-event code of `flowc eval`/`flowc test` (full or short).
fn is_script_code(text: &str) -> bool {
    let text = text.trim();
    text == super::eval::NO_SUCH_ID || Some(text) == super::eval::NO_SUCH_ID.rsplit("::").next()
}

/// The code an `expectError`/`startError` names: as `flowc rule` reads it
/// ([`flowc::codes::Code::parse`]), and a short name several stages share
/// (`missing-field`) stands for the one run-time code of that name, since only run-time
/// errors can be expected.
fn resolve_code(text: &str) -> Option<flowc::codes::Code> {
    use flowc::codes::Code;
    Code::parse(text).or_else(|| {
        let mut named = Code::ALL
            .iter()
            .copied()
            .filter(|c| c.is_run_time() && c.as_str().rsplit("::").next() == Some(text.trim()));
        match (named.next(), named.next()) {
            (Some(c), None) => Some(c),
            _ => None,
        }
    })
}

/// A problem when the code an `expectError`/`startError` names is not a code (with a
/// did-you-mean from the codes table).
fn code_problem(file: &flowc::span::SourceFile, node: &yaml::Node, key: &str) -> Option<String> {
    use flowc::codes::Code;
    let Some(text) = node.as_str() else {
        return Some(format!(
            "{}: `{key}` must be a diagnostic code (`flowc::runtime::stale` or `stale`)",
            loc(file, node)
        ));
    };
    if resolve_code(text).is_some() || is_script_code(text) {
        return None;
    }
    let names: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
    let wanted = if text.starts_with("flowc::") {
        text.to_owned()
    } else {
        format!("flowc::{}", text.replace('.', "::"))
    };
    let short: Vec<&str> = names.iter().filter_map(|n| n.rsplit("::").next()).collect();
    let hint = flowc::diagnostic::did_you_mean(&wanted, names.iter().copied())
        .or_else(|| {
            let tail = text.rsplit("::").next().unwrap_or(text);
            flowc::diagnostic::did_you_mean(tail, short.iter().copied())
                .and_then(|s| resolve_code(&s).map(|c| c.as_str().to_owned()))
        })
        .map_or_else(
            || "`flowc rule --all` lists every code".to_owned(),
            |s| format!("did you mean `{s}`?"),
        );
    Some(format!(
        "{}: `{key}: {text}` is not a diagnostic code ({hint})",
        loc(file, node)
    ))
}

/// The scenario's context against the flow's declared context (the one fit routine the
/// runtime starts instances with, [`flowc::model::fit_fields`]), field by field so that
/// every top-level field's misfit is reported, each at its value in the scenario file.
fn context_problems(flow: &CompiledFlow, s: &Scenario) -> Vec<String> {
    let fields = &flow.flow().context;
    let root = flowc::model::FieldPath::default();
    let Some(given) = s
        .body
        .get("context")
        .map_or_else(|| Some(serde_json::Map::new()), |c| c.as_object().cloned())
    else {
        // not a mapping: reported as a problem of the scenario already
        return Vec::new();
    };
    let mut misfits = Vec::new();
    for (k, v) in &given {
        let one: serde_json::Map<String, serde_json::Value> =
            std::iter::once((k.clone(), v.clone())).collect();
        // an undeclared key fails against all the fields; a declared one against its own
        let decl = fields.iter().find(|f| f.name.value == *k);
        let result = match decl {
            Some(f) => flowc::model::fit_fields(std::slice::from_ref(f), &one, &root),
            None => flowc::model::fit_fields(fields, &one, &root),
        };
        misfits.extend(result.err());
    }
    for f in fields.iter().filter(|f| !given.contains_key(&f.name.value)) {
        let none = serde_json::Map::new();
        misfits.extend(flowc::model::fit_fields(std::slice::from_ref(f), &none, &root).err());
    }
    misfits.iter().map(|m| misfit_problem(s, m)).collect()
}

/// One misfit of a scenario's context, at its value (or key, for an undeclared field).
fn misfit_problem(s: &Scenario, misfit: &flowc::model::Misfit) -> String {
    use flowc::model::{MisfitKind, PathPart};
    let key = matches!(misfit.kind, MisfitKind::Unknown { .. });
    let at = s.context.as_ref().map_or_else(
        || format!("{}:{}:1", s.file.name(), s.line),
        |ctx| {
            let mut cur = ctx;
            let parts = &misfit.path.0;
            for (i, part) in parts.iter().enumerate() {
                let last = i + 1 == parts.len();
                let next = match part {
                    PathPart::Field(n) | PathPart::Key(n) => cur.as_map().and_then(|m| {
                        m.iter()
                            .find(|(k, _)| k.as_str() == Some(n.as_str()))
                            .map(|(k, v)| if last && key { k } else { v })
                    }),
                    PathPart::Index(i) => cur.as_seq().and_then(|l| l.get(*i)),
                };
                match next {
                    Some(n) => cur = n,
                    None => break,
                }
            }
            loc(&s.file, cur)
        },
    );
    let path = &misfit.path;
    let unquote = |v: &str| v.trim_matches('"').to_owned();
    let message = match &misfit.kind {
        MisfitKind::Missing { expected } => {
            format!("context: the required field `{path}` ({expected}) is missing")
        }
        MisfitKind::WrongType { expected, got } => {
            format!("context: `{path}` must be {expected}, found {got}")
        }
        MisfitKind::NotAllowed { value, allowed } => {
            let values: Vec<String> = allowed.split(", ").map(unquote).collect();
            let hint =
                flowc::diagnostic::did_you_mean(&unquote(value), values.iter().map(String::as_str))
                    .map_or_else(
                        || format!("allowed: {allowed}"),
                        |m| format!("did you mean `{m}`?"),
                    );
            format!("context: `{path}` is {value}, not one of the declared values ({hint})")
        }
        MisfitKind::Unknown { declared } => {
            let field = path.0.last().map_or_else(String::new, |p| match p {
                PathPart::Field(n) | PathPart::Key(n) => n.clone(),
                PathPart::Index(_) => String::new(),
            });
            let hint = flowc::diagnostic::did_you_mean(&field, declared.iter().map(String::as_str))
                .map_or_else(
                    || format!("declared: {}", declared.join(", ")),
                    |m| format!("did you mean `{m}`?"),
                );
            format!("context: the flow declares no field `{path}` ({hint})")
        }
    };
    format!("{at}: {message}")
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

pub fn run(paths: &[PathBuf]) -> u8 {
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
            .or_insert_with(|| super::check::load_one(&flow_path).map(Arc::new))
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
