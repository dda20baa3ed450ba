//! Scenario files (`*.test.yaml`) read and checked before anything runs: recognised by
//! content, every problem of the file and of each scenario at its line and column, each
//! scenario's context fitted to the flow's declaration, expected codes looked up in the
//! codes table. `flowc test` ([`super::test`]) runs what this reads.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flowc::compile::CompiledFlow;
use flowc::load::{LoadLimits, yaml};

/// One scenario as read, with what is wrong with it and where its parts are.
pub struct Scenario {
    /// Its `name`, or `scenario N`.
    pub name: String,
    /// The line it starts on.
    pub line: usize,
    /// The scenario as JSON (what runs).
    pub body: serde_json::Value,
    /// What is wrong with the scenario itself, each at its key or value
    /// (`file:line:col: ...`): a typo would silently test less.
    pub problems: Vec<String>,
    /// Steps the scenario names (events, expected trace and pending), with their
    /// positions: checked against the flow once it is compiled.
    pub steps: Vec<(String, String)>,
    /// Where each `expect` key is (`file:line:col`), for the failures that compare it.
    pub expect_at: HashMap<String, String>,
    /// Where each event is, in order.
    pub event_at: Vec<String>,
    /// Where each expected trace entry is, in order.
    pub trace_at: Vec<String>,
    /// The file, and the scenario's `context` node: checked against the flow's declared
    /// context before running, each misfit at its value.
    pub file: Arc<flowc::span::SourceFile>,
    pub context: Option<yaml::Node>,
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
pub enum ScenarioFile {
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

pub fn scenarios_of(path: &Path) -> Result<ScenarioFile, String> {
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
pub fn by_position(problems: &mut [String]) {
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
pub fn full_code(text: &str) -> String {
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
pub fn context_problems(flow: &CompiledFlow, s: &Scenario) -> Vec<String> {
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
        let one = serde_json::Value::Object(std::iter::once((k.clone(), v.clone())).collect());
        // an undeclared key fails against all the fields; a declared one against its own
        let decl = fields.iter().find(|f| f.name.value == *k);
        let result = match decl {
            Some(f) => flowc::model::fit_fields(std::slice::from_ref(f), &one, &root),
            None => flowc::model::fit_fields(fields, &one, &root),
        };
        misfits.extend(result.err());
    }
    for f in fields.iter().filter(|f| !given.contains_key(&f.name.value)) {
        let none = serde_json::Value::Object(serde_json::Map::new());
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
