//! `flowc eval`: run one instance from a context, events and/or automatic answers.

use std::path::Path;
use std::sync::Arc;

use flowc::runtime::{Auto, Event, Instance, RuntimeError, Visit};

use super::{EXIT_FAILURE, EXIT_FINDINGS, render_error};

/// Automatic answers after the events: at most this many.
pub const MAX_AUTO_EVENTS: usize = 10_000;

/// One event of an events file: the event, and optionally its logical time.
pub struct TimedEvent {
    /// Logical time (default: one after the previous event).
    pub at: Option<u64>,
    /// The event.
    pub event: Event,
    /// The error code the event is expected to fail with (scenarios only).
    pub expect_error: Option<String>,
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
            let mut obj = item.clone();
            let (at, expect_error) = match &mut obj {
                serde_json::Value::Object(m) => {
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
                    let expect = m
                        .remove("expectError")
                        .and_then(|e| e.as_str().map(str::to_owned));
                    (at, expect)
                }
                _ => return Err(format!("event {}: must be an object", i + 1)),
            };
            let event: Event =
                serde_json::from_value(obj).map_err(|e| format!("event {}: {e}", i + 1))?;
            Ok(TimedEvent {
                at,
                event,
                expect_error,
            })
        })
        .collect()
}

/// The result object of SPEC §5.
pub fn summary(inst: &Instance) -> serde_json::Value {
    let trace: Vec<serde_json::Value> = inst.trace().iter().map(trace_entry).collect();
    let pending: Vec<serde_json::Value> = inst
        .pending()
        .into_iter()
        .map(|p| serde_json::json!({"step": p.step, "assignees": p.assignees}))
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

/// Applies the events; an event error is returned with its 1-based position.
fn apply_events(
    inst: &mut Instance,
    events: &[TimedEvent],
    start_at: u64,
) -> Result<u64, (usize, RuntimeError)> {
    let mut at = start_at;
    for (i, e) in events.iter().enumerate() {
        at = e.at.unwrap_or(at + 1);
        inst.apply(&e.event, at).map_err(|err| (i + 1, err))?;
    }
    Ok(at)
}

fn read_json(path: &Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: invalid JSON: {e}", path.display()))
}

pub fn run(flow: &Path, context: &Path, events: Option<&Path>, auto: Option<Auto>) -> u8 {
    let compiled = match super::check::load_one(flow) {
        Ok(f) => Arc::new(f),
        Err(code) => return code,
    };
    let ctx = match read_json(context) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILURE;
        }
    };
    let events = match events.map(read_json).transpose() {
        Ok(None) => Vec::new(),
        Ok(Some(v)) => match parse_events(&v) {
            Ok(e) => e,
            Err(e) => {
                eprintln!(
                    "error: {}: {e}",
                    events.map_or(String::new(), |p| p.display().to_string())
                );
                return EXIT_FINDINGS;
            }
        },
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILURE;
        }
    };
    let mut inst = match Instance::start(compiled, &ctx, 0) {
        Ok((i, _)) => i,
        Err(e) => {
            eprintln!("{}", render_error(&format!("{}", context.display()), &e));
            return EXIT_FINDINGS;
        }
    };
    let at = match apply_events(&mut inst, &events, 0) {
        Ok(at) => at,
        Err((n, e)) => {
            eprintln!("{}", render_error(&format!("event {n}"), &e));
            return EXIT_FINDINGS;
        }
    };
    if let Some(auto) = auto
        && let Err(e) = inst.auto_answer(auto, at, MAX_AUTO_EVENTS)
    {
        eprintln!("{}", render_error("automatic answer", &e));
        return EXIT_FAILURE;
    }
    match serde_json::to_string_pretty(&summary(&inst)) {
        Ok(s) => {
            outln!("{s}");
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_FAILURE
        }
    }
}
