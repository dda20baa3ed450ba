//! Stage 7: instances — a deterministic, I/O-free state machine over a [`CompiledFlow`].
//!
//! [`Instance::start`] checks the context and returns the first [`Effect`]s;
//! [`Instance::apply`] takes one [`Event`] at a host-supplied logical time and returns
//! the next effects. An event that does not fit is a [`RuntimeError`] and changes
//! nothing. Every visit of a step is recorded in the [`Visit`] trace.
//!
//! # The contract with the host
//! - **Time.** `at` is a logical time in **seconds** on the host's clock (for example
//!   Unix seconds); it may not run backwards. Timers are due at an absolute `dueAt` on
//!   the same clock.
//! - **Ids.** Every effect that expects an answer carries an id: `create-task` one
//!   [`TaskId`] per assignee, `start-timer` a [`TimerId`] and its `dueAt`,
//!   `call-service` a [`CallId`] (a new one per attempt). Answers name them: `timeout`
//!   its timer, `service-ok`/`service-error` their call; approve, reject and add-signer
//!   name the step and user and may name the task. Ids are unique within the instance
//!   and deterministic (a replay gives the same ids).
//! - **Withdrawal.** Whatever stops being live is withdrawn by an effect naming its id
//!   (`close-task`, `cancel-timer`, `cancel-service`), also on cancel, rejection,
//!   escalation and `join: any`. A host that does exactly what the effects say holds no
//!   orphan; [`Instance::outstanding`] says what is open.
//! - **Late, early and repeated answers.** An answer to something no longer live is
//!   refused with [`RuntimeError::Stale`], a timeout before its `dueAt` with
//!   [`RuntimeError::NotDue`]. [`Instance::apply_once`] takes a delivery id: an id the
//!   instance already applied is reported as [`Applied::Duplicate`] and changes nothing.
//!   The ids kept for this are those of the instance's own log of applied events.
//! - **Persistence.** [`InstanceState`] (serde, camelCase JSON, with a `format`) holds
//!   the applied events. [`Instance::restore`] accepts a state only on a version with the
//!   same flow id and content hash, and only if replaying its logged events there gives
//!   exactly that state: any state no event sequence could produce is refused with
//!   [`RuntimeError::CorruptState`].
//!
//! ```
//! use std::sync::Arc;
//! use flowc::runtime::{Effect, Event, Instance};
//! let src = flowc::span::SourceFile::new("leave.yaml", r#"
//! apiVersion: flowc/v1
//! kind: ApprovalFlow
//! id: leave
//! context: { days: int }
//! steps:
//!   - id: manager
//!     type: approval
//!     assignees: { user: mia }
//!     skipCondition: days < 2
//!     timeout: 24h
//!     onTimeout: approve
//! "#);
//! let flow = Arc::new(flowc::compile::compile(&src, &Default::default()).unwrap());
//! let (mut inst, effects) = Instance::start(flow, &serde_json::json!({"days": 5}), 0).unwrap();
//! assert!(matches!(&effects[0], Effect::CreateTask { step, .. } if &**step == "manager"));
//! assert!(matches!(&effects[1], Effect::StartTimer { due_at: 86_400, .. }));
//! let effects = inst.apply(&Event::approve("manager", "mia"), 1).unwrap();
//! assert_eq!(inst.status().label(), "approved");
//! // the task is closed and the timer cancelled before the instance completes
//! assert_eq!(effects.len(), 3);
//! assert!(inst.outstanding().tasks.is_empty());
//! ```

pub mod context;
mod error;
mod explain;
mod machine;
mod state;
mod types;

use std::sync::Arc;

use crate::compile::CompiledFlow;
use crate::limits::Limits;

pub use context::{Context, ContextError, IntoContext};
pub use error::RuntimeError;
pub use state::{InstanceState, Logged, STATE_FORMAT};
pub use types::{
    Act, Applied, Assignee, CallId, ConditionRecord, Effect, Event, Gone, Outstanding, Pending,
    Route, Status, TaskId, TaskRef, TimerId, TimerRef, Visit, VisitStatus,
};

use state::{IdKind, Wait};

/// The largest block the trace's first allocation may take: glibc serves blocks up to
/// 1,032 bytes from its per-thread cache, and larger ones through its slow path.
const SMALL_BLOCK: usize = 1024;

/// A running (or finished) instance of one flow version.
#[derive(Debug, Clone)]
pub struct Instance {
    flow: Arc<CompiledFlow>,
    bindings: crate::sandbox::Bindings,
    state: InstanceState,
}

impl Instance {
    /// Starts an instance at logical time `at` (seconds): checks the context, then runs
    /// to the first wait.
    ///
    /// # Errors
    /// [`RuntimeError::Context`] when the context does not match the declaration (no
    /// instance is created).
    pub fn start(
        flow: Arc<CompiledFlow>,
        context: impl IntoContext,
        at: u64,
    ) -> Result<(Instance, Vec<Effect>), RuntimeError> {
        if at > Limits::MAX_TIME {
            return Err(RuntimeError::TimeOutOfRange {
                at,
                max: Limits::MAX_TIME,
            });
        }
        let (context, bindings) = context::bind_read(&flow, context)?;
        // sized for a typical run, so that the first steps and answers do not regrow them;
        // the trace's first block stays within the small-allocation size that allocators
        // serve from a per-thread cache (glibc's tcache: up to 1,032 bytes), as larger
        // blocks take the slow path on every run
        let steps = flow
            .nodes()
            .len()
            .clamp(1, SMALL_BLOCK / std::mem::size_of::<Visit>());
        let mut inst = Instance {
            state: InstanceState {
                format: STATE_FORMAT,
                version: Arc::clone(flow.shared_version()),
                context,
                started_at: at,
                status: Status::Running,
                trace: Vec::with_capacity(steps),
                log: Vec::with_capacity(4),
                tokens: Vec::with_capacity(2),
                joins: Vec::new(),
                next_join: 0,
                ids: Vec::with_capacity(8),
                now: at,
            },
            bindings,
            flow,
        };
        let effects = inst.run_start();
        Ok((inst, effects))
    }

    /// Restores a persisted instance onto the version it started on: same flow id and
    /// content hash (the revision may differ: the same content can be published under
    /// several revisions).
    ///
    /// The state's logged events are replayed on `flow` and the result must equal the
    /// state exactly; so a state that no sequence of events could produce (edited,
    /// truncated, or saved on other content) is refused.
    ///
    /// # Errors
    /// [`RuntimeError::UnsupportedFormat`] for another state format;
    /// [`RuntimeError::VersionMismatch`] for another flow or content;
    /// [`RuntimeError::CorruptState`] when the state is not what its events produce.
    pub fn restore(flow: Arc<CompiledFlow>, state: InstanceState) -> Result<Self, RuntimeError> {
        if state.format != STATE_FORMAT {
            return Err(RuntimeError::UnsupportedFormat {
                found: state.format,
                expected: STATE_FORMAT,
            });
        }
        let have = flow.version();
        if state.version.flow != have.flow || state.version.hash != have.hash {
            return Err(RuntimeError::VersionMismatch {
                expected: Arc::unwrap_or_clone(state.version),
                got: have.clone(),
            });
        }
        let (mut replay, _) = Instance::start(flow, state.context.to_json(), state.started_at)
            .map_err(|e| {
                RuntimeError::CorruptState(format!("its context does not start the flow: {e}"))
            })?;
        for (n, logged) in state.log.iter().enumerate() {
            replay
                .apply_logged(logged.id.clone(), &logged.event, logged.at)
                .map_err(|e| {
                    RuntimeError::CorruptState(format!(
                        "logged event {} (`{}` at t={}) is refused on replay: {e}",
                        n + 1,
                        logged.event.kind(),
                        logged.at
                    ))
                })?;
        }
        // the same content may be named by another revision: compare the rest
        replay.state.version = Arc::clone(&state.version);
        if replay.state != state {
            let path = first_difference(&replay.state, &state);
            return Err(RuntimeError::CorruptState(format!(
                "it is not what its {} logged event(s) produce on this version (first difference at `{path}`)",
                state.log.len()
            )));
        }
        Ok(replay)
    }

    /// The flow version this instance runs on.
    #[must_use]
    pub fn flow(&self) -> &Arc<CompiledFlow> {
        &self.flow
    }

    /// The persistable state.
    #[must_use]
    pub fn state(&self) -> &InstanceState {
        &self.state
    }

    /// Where the instance stands.
    #[must_use]
    pub fn status(&self) -> &Status {
        &self.state.status
    }

    /// The trace so far.
    #[must_use]
    pub fn trace(&self) -> &[Visit] {
        &self.state.trace
    }

    /// Applies one event at logical time `at` (seconds).
    ///
    /// # Errors
    /// An event that does not fit the state; the instance is then unchanged.
    pub fn apply(&mut self, event: &Event, at: u64) -> Result<Vec<Effect>, RuntimeError> {
        self.apply_logged(None, event, at)
    }

    /// Applies one event delivered with the host's id `id` (a message id of an
    /// at-least-once queue): if this instance already applied an event with that id,
    /// nothing changes and [`Applied::Duplicate`] says so.
    ///
    /// # Errors
    /// As [`Instance::apply`]; [`RuntimeError::IdReused`] when the id was applied to a
    /// different event (two messages under one id: neither is silently dropped);
    /// [`RuntimeError::EmptyName`] for a blank id.
    pub fn apply_once(
        &mut self,
        id: &str,
        event: &Event,
        at: u64,
    ) -> Result<Applied, RuntimeError> {
        if id.trim().is_empty() {
            return Err(RuntimeError::EmptyName {
                what: "delivery id",
            });
        }
        if let Some(first) = self.state.log.iter().find(|l| l.id.as_deref() == Some(id)) {
            if first.event != *event {
                return Err(RuntimeError::IdReused {
                    id: id.to_owned(),
                    at: first.at,
                    first: first.event.kind(),
                    this: event.kind(),
                });
            }
            return Ok(Applied::Duplicate { at: first.at });
        }
        self.apply_logged(Some(id.to_owned()), event, at)
            .map(Applied::Effects)
    }

    fn apply_logged(
        &mut self,
        id: Option<String>,
        event: &Event,
        at: u64,
    ) -> Result<Vec<Effect>, RuntimeError> {
        let effects = self.run_event(event, at)?;
        self.state.log.push(Logged {
            id,
            at,
            event: event.clone(),
        });
        Ok(effects)
    }

    /// What the instance is waiting for, in the order the steps were entered.
    #[must_use]
    pub fn pending(&self) -> Vec<Pending> {
        let mut tokens: Vec<_> = self.state.tokens.iter().collect();
        tokens.sort_by_key(|t| t.visit);
        tokens
            .into_iter()
            .map(|t| {
                let since = self.state.trace.get(t.visit).map_or(0, |v| v.entered_at);
                let step = machine::step_id(&self.flow, t.step);
                let due = |timer: Option<TimerId>| {
                    timer.and_then(|id| match self.state.record(id.0) {
                        Some(r) => match r.kind {
                            IdKind::Timer { due_at } => Some(TimerRef { timer: id, due_at }),
                            _ => None,
                        },
                        None => None,
                    })
                };
                match &t.wait {
                    Wait::Approval(a) => Pending {
                        step,
                        assignees: a.outstanding(),
                        mode: Some(a.mode),
                        tasks: a
                            .slots
                            .iter()
                            .filter_map(|s| {
                                s.task.map(|task| TaskRef {
                                    task,
                                    assignee: s.assignee.clone(),
                                })
                            })
                            .collect(),
                        timer: due(a.timer),
                        call: None,
                        since,
                    },
                    Wait::Service { call, timer, .. } => Pending {
                        step,
                        assignees: Vec::new(),
                        mode: None,
                        tasks: Vec::new(),
                        timer: due(*timer),
                        call: Some(*call),
                        since,
                    },
                }
            })
            .collect()
    }

    /// Every task, timer and call that is open now, in id order.
    #[must_use]
    pub fn outstanding(&self) -> Outstanding {
        let mut out = Outstanding::default();
        for (n, r) in self.state.ids.iter().enumerate() {
            if r.ended.is_some() {
                continue;
            }
            let id = u32::try_from(n + 1).unwrap_or(u32::MAX);
            match r.kind {
                IdKind::Task { .. } => out.tasks.push(TaskId(id)),
                IdKind::Timer { .. } => out.timers.push(TimerId(id)),
                IdKind::Call { .. } => out.calls.push(CallId(id)),
            }
        }
        out
    }

    /// The most recent timer issued for `step` (live or not): how scenario files name
    /// "the timer of step X".
    #[must_use]
    pub fn timer_of(&self, step: &str) -> Option<TimerId> {
        self.latest_id(step, |k| matches!(k, IdKind::Timer { .. }))
            .map(TimerId)
    }

    /// The most recent service call issued for `step` (live or not).
    #[must_use]
    pub fn call_of(&self, step: &str) -> Option<CallId> {
        self.latest_id(step, |k| matches!(k, IdKind::Call { .. }))
            .map(CallId)
    }

    fn latest_id(&self, step: &str, kind: impl Fn(&IdKind) -> bool) -> Option<u32> {
        let index = self.flow.step_index(step)?;
        let n = self
            .state
            .ids
            .iter()
            .rposition(|r| r.step == index && kind(&r.kind))?;
        u32::try_from(n + 1).ok()
    }
}

/// The path (`trace[3].status`) of the first place two states differ.
fn first_difference(a: &InstanceState, b: &InstanceState) -> String {
    fn walk(a: &serde_json::Value, b: &serde_json::Value, path: &mut String) -> bool {
        use serde_json::Value as J;
        use std::fmt::Write as _;
        match (a, b) {
            (J::Object(x), J::Object(y)) => {
                for (k, v) in x {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    match y.get(k) {
                        None => return true,
                        Some(w) if walk(v, w, path) => return true,
                        Some(_) => path.truncate(len),
                    }
                }
                if let Some(k) = y.keys().find(|k| !x.contains_key(*k)) {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    return true;
                }
                false
            }
            (J::Array(x), J::Array(y)) => {
                for (i, (v, w)) in x.iter().zip(y).enumerate() {
                    let len = path.len();
                    let _ = write!(path, "[{i}]");
                    if walk(v, w, path) {
                        return true;
                    }
                    path.truncate(len);
                }
                if x.len() != y.len() {
                    let _ = write!(path, "[{}]", x.len().min(y.len()));
                    return true;
                }
                false
            }
            _ => a != b,
        }
    }
    let (Ok(x), Ok(y)) = (serde_json::to_value(a), serde_json::to_value(b)) else {
        return "?".to_owned();
    };
    let mut path = String::new();
    walk(&x, &y, &mut path);
    if path.is_empty() {
        "the state".to_owned()
    } else {
        path
    }
}

/// How [`Instance::auto_answer`] answers pending work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auto {
    /// Approve every task (service calls succeed).
    Approve,
    /// Reject every task (service calls succeed).
    Reject,
}

impl Instance {
    /// Answers pending work until the instance ends, nothing is pending, or `max_events`
    /// events were applied: the earliest-entered pending step first, by its first
    /// outstanding task (a role's task by the user `auto` acting in that role).
    /// Each event gets the next logical time after `at`. Returns the events applied,
    /// each with its effects.
    ///
    /// # Errors
    /// Only an internal inconsistency (an answer the instance refuses).
    pub fn auto_answer(
        &mut self,
        auto: Auto,
        mut at: u64,
        max_events: usize,
    ) -> Result<Vec<(Event, Vec<Effect>)>, RuntimeError> {
        let mut applied = Vec::new();
        while applied.len() < max_events && self.state.status == Status::Running {
            let Some(p) = self.pending().into_iter().next() else {
                break;
            };
            let event = if let Some(call) = p.call {
                Event::ServiceOk { call }
            } else {
                let Some(first) = p.tasks.first() else {
                    break;
                };
                let (user, role) = match &first.assignee {
                    Assignee::User(u) => (Arc::clone(u), None),
                    Assignee::Role(r) => (Arc::from("auto"), Some(Arc::clone(r))),
                };
                let (step, task) = (p.step, Some(first.task));
                match auto {
                    Auto::Approve => Event::Approve {
                        step,
                        user,
                        role,
                        task,
                        comment: None,
                    },
                    Auto::Reject => Event::Reject {
                        step,
                        user,
                        role,
                        task,
                        comment: None,
                    },
                }
            };
            at = at.max(self.state.now) + 1;
            // a retried call is made after its backoff: answer it then
            if let Event::ServiceOk { call } = &event
                && let Some(IdKind::Call { not_before, .. }) =
                    self.state.record(call.0).map(|r| &r.kind)
            {
                at = at.max(*not_before);
            }
            let effects = self.apply(&event, at)?;
            applied.push((event, effects));
        }
        Ok(applied)
    }
}
