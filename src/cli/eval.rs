//! `flowc eval` and `flowc explain`: run one instance from a context, events and/or
//! automatic answers.

use std::path::Path;
use std::sync::Arc;

use flowc::compile::{Evaluator, Options};
use flowc::diagnostic::ErrorCode as _;
use flowc::model::{FieldPath, PathPart};
use flowc::runtime::{Applied, Auto, Effect, Event, Instance, RuntimeError, Visit};

use super::{EXIT_FAILURE, EXIT_FINDINGS, render_error};

/// Automatic answers after the events: at most this many.
pub const MAX_AUTO_EVENTS: usize = 10_000;

/// An event as a file gives it: ready, or naming "the timer / call of step X" (resolved
/// against the instance when it is applied, so files need not spell ids).
pub enum Script {
    /// A complete event.
    Ready(Event),
    /// `{type: timeout, step: X}`: the latest timer issued for step X.
    TimerOf(String),
    /// `{type: service-ok, step: X}`: the latest call issued for step X.
    CallOk(String),
    /// `{type: service-error, step: X, error}`.
    CallError(String, String),
}

/// One event of an events file: the event, and optionally its logical time.
pub struct TimedEvent {
    /// Logical time (default: one after the previous event).
    pub at: Option<u64>,
    /// The delivery id (redelivery of an applied id is a no-op).
    pub id: Option<String>,
    /// The event.
    pub event: Script,
    /// The error code the event is expected to fail with (scenarios only).
    pub expect_error: Option<String>,
}

impl TimedEvent {
    /// The event, with "the timer / call of step X" resolved against `inst`.
    pub fn resolve(&self, inst: &Instance) -> Result<Event, String> {
        if let Script::TimerOf(step) | Script::CallOk(step) | Script::CallError(step, _) =
            &self.event
            && inst.flow().step_index(step).is_none()
        {
            return Err(format!(
                "the flow has no step `{}`",
                flowc::diagnostic::excerpt(step)
            ));
        }
        match &self.event {
            Script::Ready(e) => Ok(e.clone()),
            Script::TimerOf(step) => inst
                .timer_of(step)
                .map(Event::timeout)
                .ok_or_else(|| format!("step `{step}` has started no timer")),
            Script::CallOk(step) => inst
                .call_of(step)
                .map(Event::service_ok)
                .ok_or_else(|| format!("step `{step}` has made no service call")),
            Script::CallError(step, error) => inst
                .call_of(step)
                .map(|c| Event::service_error(c, error))
                .ok_or_else(|| format!("step `{step}` has made no service call")),
        }
    }
}

/// Every event `type` an events file may give.
pub const EVENT_TYPES: &[&str] = &[
    "approve",
    "reject",
    "add-signer",
    "service-ok",
    "service-error",
    "timeout",
    "cancel",
];

/// Keys every event may carry besides its own: its time, its delivery id, and (in
/// scenarios) the error it is expected to fail with.
pub const EVENT_COMMON_KEYS: &[&str] = &["at", "id", "expectError"];

/// The keys of one event type (`type` included, the common keys not), or `None` for a
/// type that does not exist. A timeout or service answer may name its `step` instead of
/// its `timer` or `call`.
pub fn event_keys(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "approve" | "reject" => &["type", "step", "user", "role", "task", "comment"],
        "add-signer" => &["type", "step", "user", "role", "task", "signer"],
        "service-ok" => &["type", "call", "step"],
        "service-error" => &["type", "call", "step", "error"],
        "timeout" => &["type", "timer", "step"],
        "cancel" => &["type", "reason"],
        _ => return None,
    })
}

/// What is wrong with an event's `type` or one of its keys, as a message (without a
/// position), for the first problem found.
pub fn event_key_problem<'a>(
    kind: Option<&str>,
    keys: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let Some(kind) = kind else {
        return Some(format!(
            "an event needs `type` (one of {})",
            EVENT_TYPES.join(", ")
        ));
    };
    let Some(allowed) = event_keys(kind) else {
        return Some(unknown_event_type(kind));
    };
    keys.into_iter()
        .find(|k| !allowed.contains(k) && !EVENT_COMMON_KEYS.contains(k))
        .map(|k| unknown_event_key(kind, k))
}

/// The message for an unknown event type.
pub fn unknown_event_type(kind: &str) -> String {
    let hint = flowc::diagnostic::did_you_mean(kind, EVENT_TYPES.iter().copied())
        .map_or_else(String::new, |s| format!("did you mean `{s}`? "));
    format!(
        "unknown event type `{kind}` ({hint}allowed: {})",
        EVENT_TYPES.join(", ")
    )
}

/// The message for a key that an event of type `kind` does not have.
pub fn unknown_event_key(kind: &str, key: &str) -> String {
    let allowed: Vec<&str> = event_keys(kind)
        .unwrap_or_default()
        .iter()
        .chain(EVENT_COMMON_KEYS)
        .copied()
        .collect();
    let hint = flowc::diagnostic::did_you_mean(key, allowed.iter().copied())
        .map_or_else(String::new, |s| format!("did you mean `{s}`? "));
    format!(
        "unknown key `{key}` in an event of type `{kind}` ({hint}allowed: {})",
        allowed.join(", ")
    )
}

/// Reads events from JSON (`[{"type": "approve", ...}, ...]`).
pub fn parse_events(v: &serde_json::Value) -> Result<Vec<TimedEvent>, String> {
    let serde_json::Value::Array(items) = v else {
        return Err("events must be a list of event objects".to_owned());
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let serde_json::Value::Object(m) = item else {
                return Err(format!("event {}: must be an object", i + 1));
            };
            if let Some(problem) = event_key_problem(
                m.get("type").and_then(|t| t.as_str()),
                m.keys().map(String::as_str),
            ) {
                return Err(format!("event {}: {problem}", i + 1));
            }
            let mut m = m.clone();
            let at = match m.remove("at") {
                None => None,
                Some(serde_json::Value::Number(n)) if n.is_u64() => n.as_u64(),
                Some(other) => {
                    return Err(format!(
                        "event {}: `at` must be a non-negative integer, found {other}",
                        i + 1
                    ));
                }
            };
            let id = match m.remove("id") {
                None => None,
                Some(serde_json::Value::String(s)) => Some(s),
                Some(other) => {
                    return Err(format!(
                        "event {}: `id` must be a string, found {other}",
                        i + 1
                    ));
                }
            };
            let expect_error = m
                .remove("expectError")
                .and_then(|e| e.as_str().map(str::to_owned));
            let kind = m.get("type").and_then(|t| t.as_str()).unwrap_or_default();
            let by_step = |key: &str| {
                if m.contains_key(key) {
                    None
                } else {
                    m.get("step").and_then(|s| s.as_str()).map(str::to_owned)
                }
            };
            let step_form_keys: &[&str] = match kind {
                "service-error" => &["type", "step", "error"],
                _ => &["type", "step"],
            };
            if let Some(k) = m.keys().find(|k| !step_form_keys.contains(&k.as_str()))
                && matches!(kind, "timeout" | "service-ok" | "service-error")
                && !m.contains_key("timer")
                && !m.contains_key("call")
            {
                return Err(format!(
                    "event {}: unknown field `{k}` (a `{kind}` names its {} or its `step`)",
                    i + 1,
                    if kind == "timeout" {
                        "`timer`"
                    } else {
                        "`call`"
                    }
                ));
            }
            let event = match (kind, by_step("timer"), by_step("call")) {
                ("timeout", Some(step), _) => Script::TimerOf(step),
                ("service-ok", _, Some(step)) => Script::CallOk(step),
                ("service-error", _, Some(step)) => Script::CallError(
                    step,
                    m.get("error")
                        .and_then(|e| e.as_str())
                        .unwrap_or_default()
                        .to_owned(),
                ),
                _ => Script::Ready(
                    serde_json::from_value(serde_json::Value::Object(m))
                        .map_err(|e| format!("event {}: {e}", i + 1))?,
                ),
            };
            Ok(TimedEvent {
                at,
                id,
                event,
                expect_error,
            })
        })
        .collect()
}

/// The code of a scripted event naming a timer or call the instance never issued (the
/// CLI's own; not in the codes table, but a scenario may expect it).
pub const NO_SUCH_ID: &str = "flowc::eval::no-such-id";

/// What applying one scripted event gave.
pub enum Outcome {
    /// Applied, with these effects.
    Applied(Vec<Effect>),
    /// A redelivered id: nothing changed.
    Duplicate,
}

/// Why a scripted event did not apply: a runtime error, or a step-named timer or call
/// that does not exist.
pub enum Refusal {
    /// The instance refused it.
    Runtime(RuntimeError),
    /// The file names something the instance never issued.
    Script(String),
}

impl Refusal {
    /// The code (`flowc::runtime::stale`, or `flowc::eval::no-such-id`).
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Runtime(e) => e.code(),
            Refusal::Script(_) => NO_SUCH_ID,
        }
    }

    /// The message.
    pub fn message(&self) -> String {
        match self {
            Refusal::Runtime(e) => e.to_string(),
            Refusal::Script(m) => m.clone(),
        }
    }
}

/// Applies one scripted event at `at`.
pub fn apply_one(inst: &mut Instance, e: &TimedEvent, at: u64) -> Result<Outcome, Refusal> {
    let event = e.resolve(inst).map_err(Refusal::Script)?;
    match &e.id {
        Some(id) => match inst.apply_once(id, &event, at) {
            Ok(Applied::Effects(fx)) => Ok(Outcome::Applied(fx)),
            Ok(_) => Ok(Outcome::Duplicate),
            Err(err) => Err(Refusal::Runtime(err)),
        },
        None => inst
            .apply(&event, at)
            .map(Outcome::Applied)
            .map_err(Refusal::Runtime),
    }
}

/// The result object of SPEC §5; with `full`, each trace entry is the whole visit
/// (acts, notes, conditions with their values or errors, times).
pub fn summary(inst: &Instance, full: bool) -> serde_json::Value {
    let trace: Vec<serde_json::Value> = inst
        .trace()
        .iter()
        .map(|v| {
            if full {
                serde_json::to_value(v).unwrap_or_default()
            } else {
                trace_entry(v)
            }
        })
        .collect();
    let pending: Vec<serde_json::Value> = inst
        .pending()
        .into_iter()
        .map(|p| {
            if full {
                serde_json::to_value(&p).unwrap_or_default()
            } else {
                serde_json::json!({"step": p.step, "assignees": p.assignees})
            }
        })
        .collect();
    let mut out = serde_json::json!({
        "outcome": inst.status().label(),
        "trace": trace,
        "pending": pending,
    });
    if let (flowc::runtime::Status::Incident { step, message }, Some(m)) =
        (inst.status(), out.as_object_mut())
    {
        m.insert(
            "incident".to_owned(),
            serde_json::json!({"step": step, "message": message}),
        );
    }
    out
}

/// One trace entry as `{"step", "status", "rule"?}`.
pub fn trace_entry(v: &Visit) -> serde_json::Value {
    let mut e = serde_json::json!({"step": v.step, "status": v.status});
    if let (Some(r), Some(m)) = (v.rule, e.as_object_mut()) {
        m.insert("rule".to_owned(), serde_json::json!(r));
    }
    e
}

/// Effects as JSON, each with `event`: the 1-based event that caused it (0: the start).
fn push_effects(out: &mut Vec<serde_json::Value>, event: usize, effects: &[Effect]) {
    for fx in effects {
        let mut v = serde_json::to_value(fx).unwrap_or_default();
        if let Some(m) = v.as_object_mut() {
            m.insert("event".to_owned(), serde_json::json!(event));
        }
        out.push(v);
    }
}

/// Reads a JSON file: an unreadable file is an I/O error (exit 2), text that is not JSON
/// an input error (exit 1).
fn read_json(path: &Path) -> Result<serde_json::Value, (u8, String)> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| (EXIT_FAILURE, format!("{}: {e}", path.display())))?;
    // a UTF-8 byte-order mark is no part of the JSON (as YAML flows, it is skipped)
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut de = serde_json::Deserializer::from_str(text);
    serde::de::DeserializeSeed::deserialize(Unique(FieldPath::default()), &mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| {
            (
                EXIT_FINDINGS,
                format!("{}: invalid JSON: {e}", path.display()),
            )
        })
}

/// A JSON value read with every object's keys unique: `serde_json` keeps the last of two
/// equal keys silently, and a context (or an event) given twice one field is an error,
/// named by the key and where it is (`applicant.id`, `lines[2].amount`: the context's
/// [`FieldPath`], empty at the top).
struct Unique(FieldPath);

impl Unique {
    /// The reader of a value one step further in.
    fn then(&self, part: PathPart) -> Unique {
        let mut path = self.0.clone();
        path.0.push(part);
        Unique(path)
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Unique {
    type Value = serde_json::Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Unique {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(b.into())
    }

    fn visit_i64<E>(self, i: i64) -> Result<Self::Value, E> {
        Ok(i.into())
    }

    fn visit_u64<E>(self, u: u64) -> Result<Self::Value, E> {
        Ok(u.into())
    }

    fn visit_f64<E>(self, d: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(d).map_or(serde_json::Value::Null, Into::into))
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(s.into())
    }

    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(s.into())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        loop {
            match seq.next_element_seed(self.then(PathPart::Index(items.len())))? {
                Some(v) => items.push(v),
                None => return Ok(serde_json::Value::Array(items)),
            }
        }
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let inner = self.then(PathPart::Field(key.clone()));
            if entries.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "duplicate key `{}` at `{}`: each key is given once",
                    flowc::diagnostic::quote(&key),
                    inner.0
                )));
            }
            let value = map.next_value_seed(inner)?;
            entries.insert(key, value);
        }
        Ok(serde_json::Value::Object(entries))
    }
}

/// A started instance with its events applied, or why it stopped.
struct Ran {
    inst: Instance,
    effects: Vec<serde_json::Value>,
    /// The 1-based events that were redeliveries of an applied id.
    duplicates: Vec<usize>,
    error: Option<(usize, Refusal)>,
    at: u64,
}

/// Loads the flow, context and events and runs them; `Err` is an exit code (already
/// reported).
fn load_and_run(
    flow: &Path,
    context: &Path,
    events: Option<&Path>,
    evaluator: Evaluator,
) -> Result<Ran, u8> {
    let options = Options {
        evaluator,
        ..Options::default()
    };
    let compiled = Arc::new(super::check::load_one_with(flow, &options)?);
    let ctx = read_json(context).map_err(|(code, e)| {
        eprintln!("error: {e}");
        code
    })?;
    let events = match events.map(read_json).transpose() {
        Ok(None) => Vec::new(),
        Ok(Some(v)) => parse_events(&v).map_err(|e| {
            eprintln!(
                "error: {}: {e}",
                events.map_or(String::new(), |p| p.display().to_string())
            );
            EXIT_FINDINGS
        })?,
        Err((code, e)) => {
            eprintln!("error: {e}");
            return Err(code);
        }
    };
    let (mut inst, start) = Instance::start(compiled, &ctx, 0).map_err(|e| {
        eprintln!("{}", render_error(&format!("{}", context.display()), &e));
        EXIT_FINDINGS
    })?;
    let mut effects = Vec::new();
    let mut duplicates = Vec::new();
    push_effects(&mut effects, 0, &start);
    let mut at = 0;
    for (i, e) in events.iter().enumerate() {
        at = e.at.unwrap_or(at + 1);
        match apply_one(&mut inst, e, at) {
            Ok(Outcome::Applied(fx)) => push_effects(&mut effects, i + 1, &fx),
            Ok(Outcome::Duplicate) => duplicates.push(i + 1),
            Err(r) => {
                return Ok(Ran {
                    inst,
                    effects,
                    duplicates,
                    error: Some((i + 1, r)),
                    at,
                });
            }
        }
    }
    Ok(Ran {
        inst,
        effects,
        duplicates,
        error: None,
        at,
    })
}

pub fn run(
    flow: &Path,
    context: &Path,
    events: Option<&Path>,
    auto: Option<Auto>,
    evaluator: Evaluator,
) -> u8 {
    let mut ran = match load_and_run(flow, context, events, evaluator) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut code = 0;
    if ran.error.is_none()
        && let Some(auto) = auto
    {
        let first = ran.inst.state().log.len() + 1;
        match ran.inst.auto_answer(auto, ran.at, MAX_AUTO_EVENTS) {
            Ok(applied) => {
                for (n, (_, fx)) in applied.iter().enumerate() {
                    push_effects(&mut ran.effects, first + n, fx);
                }
            }
            Err(e) => {
                eprintln!("{}", render_error("automatic answer", &e));
                return EXIT_FAILURE;
            }
        }
    }
    let mut out = summary(&ran.inst, true);
    if let Some(m) = out.as_object_mut() {
        m.insert(
            "effects".to_owned(),
            serde_json::Value::Array(std::mem::take(&mut ran.effects)),
        );
        if !ran.duplicates.is_empty() {
            m.insert("duplicates".to_owned(), serde_json::json!(ran.duplicates));
        }
        if let Some((n, r)) = &ran.error {
            m.insert(
                "error".to_owned(),
                serde_json::json!({"code": r.code(), "message": r.message(), "event": n}),
            );
            if let Refusal::Runtime(e) = r {
                eprintln!("{}", render_error(&format!("event {n}"), e));
            } else {
                eprintln!("event {n}: error[{}]: {}", r.code(), r.message());
            }
            code = EXIT_FINDINGS;
        }
    }
    match serde_json::to_string_pretty(&out) {
        Ok(s) => {
            outln!("{s}");
            code
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_FAILURE
        }
    }
}

/// `flowc explain`: why the instance stands where it does at `step`.
pub fn explain(flow: &Path, context: &Path, events: Option<&Path>, step: &str) -> u8 {
    let ran = match load_and_run(flow, context, events, Evaluator::default()) {
        Ok(r) => r,
        Err(code) => return code,
    };
    if let Some((n, r)) = &ran.error {
        eprintln!(
            "event {n}: error[{}]: {} (explaining the instance before it)",
            r.code(),
            r.message()
        );
    }
    if ran.inst.flow().step_index(step).is_none() {
        let flow = ran.inst.flow();
        let ids: Vec<&str> = (0..flow.nodes().len())
            .filter_map(|i| flow.step(i).map(|s| s.id.value.as_str()))
            .collect();
        let help = flowc::diagnostic::did_you_mean(step, ids)
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        eprintln!("error: the flow has no step `{step}`{help}");
        return EXIT_FINDINGS;
    }
    match ran.inst.explain(step) {
        Some(text) => {
            out!("{text}");
        }
        None => {
            outln!(
                "`{step}` was never entered; the instance is {}.",
                ran.inst.status().label()
            );
        }
    }
    if ran.error.is_some() {
        EXIT_FINDINGS
    } else {
        0
    }
}
