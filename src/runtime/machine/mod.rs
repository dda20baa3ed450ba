//! The machine: validating an event (no mutation), then the transitions it causes.
//!
//! Every id an instance issues is recorded (`InstanceState::ids`) with the step and visit
//! it belongs to; every way an id stops being live goes through [`Instance::end_id`],
//! which also emits the withdrawing effect when the host must be told.
//!
//! One file per concern: [`locate`] (what an event answers, without mutation),
//! [`enter`] (the work loop, entering steps, skips, decisions), [`approval`] (tasks and
//! the approval modes), [`timers`] (service calls, retries, timeouts, escalation) and
//! [`withdraw`] (ids ending, tokens released, joins and cancellation); this file holds
//! the entry points and the trace records every transition writes.

mod approval;
mod enter;
mod locate;
mod timers;
mod withdraw;

use std::sync::Arc;

use crate::compile::CompiledFlow;
use crate::graph::Target;
use crate::model::Outcome;

use super::Instance;
use super::error::RuntimeError;
use super::state::{IdKind, IdRecord, Scope};
use super::types::{Act, Action, Assignee, Effect, Event, Gone, Status, Visit, VisitStatus};

/// Room for the effects of a typical event (close, cancel, then the next step's opens),
/// so that the vector handed back is allocated once.
const EFFECTS: usize = 6;

/// Work still to do: a target, the branch it runs in, and the visit that led there.
pub(super) type Work = (Target, Option<Scope>, Option<usize>);

/// How many entries of work are held without allocating: a run usually holds one at a
/// time (a parallel step one per branch).
const WORK_INLINE: usize = 4;

/// The machine's work stack for one event: the first [`WORK_INLINE`] entries inline,
/// more in a vector (so that a run allocates no stack).
pub(super) struct WorkStack {
    inline: [Work; WORK_INLINE],
    len: usize,
    /// Entries above the inline ones (only while those are all taken).
    spill: Vec<Work>,
}

impl WorkStack {
    fn new() -> Self {
        WorkStack {
            inline: [(Target::End, None, None); WORK_INLINE],
            len: 0,
            spill: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, work: Work) {
        match self.inline.get_mut(self.len) {
            Some(slot) if self.spill.is_empty() => {
                *slot = work;
                self.len += 1;
            }
            _ => self.spill.push(work),
        }
    }

    pub(super) fn pop(&mut self) -> Option<Work> {
        if let Some(work) = self.spill.pop() {
            return Some(work);
        }
        self.len = self.len.checked_sub(1)?;
        self.inline.get(self.len).copied()
    }

    pub(super) fn clear(&mut self) {
        self.len = 0;
        self.spill.clear();
    }
}

/// The effects of one step of the machine, and the work still to do.
pub(super) struct Run<'a> {
    flow: &'a CompiledFlow,
    effects: Vec<Effect>,
    work: WorkStack,
}

/// The step's id, shared with the compiled flow (what effects and the trace carry).
pub(super) fn step_id(flow: &CompiledFlow, i: usize) -> Arc<str> {
    flow.strings(i)
        .map_or_else(|| Arc::from(""), |s| Arc::clone(&s.id))
}

/// The step's id, for messages.
pub(super) fn step_name(flow: &CompiledFlow, i: usize) -> &str {
    flow.strings(i).map_or("", |s| &s.id)
}

/// Who acts for a timer or a service in the trace ([`Act::by`]), allocated once.
fn by_timer() -> Arc<str> {
    static TIMER: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| Arc::from("timer"));
    Arc::clone(&TIMER)
}

/// See [`by_timer`].
fn by_service() -> Arc<str> {
    static SERVICE: std::sync::LazyLock<Arc<str>> =
        std::sync::LazyLock::new(|| Arc::from("service"));
    Arc::clone(&SERVICE)
}

fn list(slots: &[Assignee]) -> String {
    slots
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What an event acts on, found without changing anything.
enum Found {
    /// An approval token and the slot of the actor.
    Task { token: usize, slot: usize },
    /// A service token.
    Call { token: usize },
    /// A token whose timer fired.
    Timer { token: usize },
    /// The whole instance.
    Cancel,
}
impl Instance {
    pub(super) fn run_start(&mut self) -> Vec<Effect> {
        let flow = Arc::clone(&self.flow);
        let mut run = Run {
            flow: &flow,
            effects: Vec::with_capacity(EFFECTS),
            work: WorkStack::new(),
        };
        run.work.push((flow.entry(), None, None));
        self.drive(&mut run);
        run.effects
    }

    pub(super) fn run_event(
        &mut self,
        event: &Event,
        at: u64,
    ) -> Result<Vec<Effect>, RuntimeError> {
        if at > crate::limits::Limits::MAX_TIME {
            return Err(RuntimeError::TimeOutOfRange {
                at,
                max: crate::limits::Limits::MAX_TIME,
            });
        }
        if self.state.status != Status::Running {
            // a late answer to something the end withdrew is stale, like any other
            return Err(match self.locate(event, at) {
                Err(e @ RuntimeError::Stale { .. }) => e,
                _ => RuntimeError::Finished {
                    status: self.state.status.clone(),
                },
            });
        }
        if at < self.state.now {
            return Err(RuntimeError::TimeBackwards {
                at,
                last: self.state.now,
            });
        }
        let target = self.locate(event, at)?;
        let flow = Arc::clone(&self.flow);
        let mut run = Run {
            flow: &flow,
            effects: Vec::with_capacity(EFFECTS),
            work: WorkStack::new(),
        };
        self.state.now = at;
        match (event, target) {
            (Event::Cancel { reason }, _) => {
                let why = reason.as_deref().unwrap_or("instance cancelled");
                self.cancel_all(&mut run, why);
                self.state.status = Status::Cancelled;
                run.effects.push(Effect::Cancelled);
                return Ok(run.effects);
            }
            (
                Event::Approve {
                    user,
                    role,
                    comment,
                    ..
                },
                Found::Task { token, slot },
            ) => self.approve(&mut run, token, slot, user, role.as_ref(), comment.clone()),
            (
                Event::Reject {
                    user,
                    role,
                    comment,
                    ..
                },
                Found::Task { token, slot },
            ) => self.reject(&mut run, token, slot, user, role.as_ref(), comment.clone()),
            (
                Event::AddSigner {
                    user, role, signer, ..
                },
                Found::Task { token, .. },
            ) => self.add_signer(&mut run, token, user, role.as_ref(), signer),
            (Event::ServiceOk { call }, Found::Call { token }) => {
                self.end_id(&mut run, call.0, Gone::Answered);
                self.act(token, Action::ServiceOk, by_service(), None, None);
                self.pass(&mut run, token, VisitStatus::Completed, None);
            }
            (Event::ServiceError { call, error }, Found::Call { token }) => {
                self.end_id(&mut run, call.0, Gone::Answered);
                self.act(
                    token,
                    Action::ServiceError,
                    by_service(),
                    None,
                    Some(Arc::clone(error)),
                );
                self.service_failed(&mut run, token, error);
            }
            (Event::Timeout { timer }, Found::Timer { token }) => {
                self.end_id(&mut run, timer.0, Gone::Fired);
                self.timeout(&mut run, token);
            }
            _ => {
                return Err(RuntimeError::CorruptState(
                    "the event's target vanished".to_owned(),
                ));
            }
        }
        self.drive(&mut run);
        Ok(run.effects)
    }

    fn issue(&mut self, kind: IdKind, step: usize, visit: usize) -> u32 {
        issue(&mut self.state.ids, kind, step, visit)
    }

    fn visit_mut(&mut self, visit: usize) -> Option<&mut Visit> {
        self.state.trace.get_mut(visit)
    }

    fn act(
        &mut self,
        t: usize,
        action: Action,
        by: Arc<str>,
        role: Option<&Arc<str>>,
        detail: Option<Arc<str>>,
    ) {
        let at = self.state.now;
        let Some(visit) = self.state.tokens.get(t).map(|t| t.visit) else {
            return;
        };
        if let Some(v) = self.visit_mut(visit) {
            let act = Act {
                action,
                by,
                role: role.cloned(),
                detail,
                at,
            };
            // a visit usually gets one act: its first is allocated alone (a push onto an
            // empty vector takes the growth path and room for four)
            if v.acts.is_empty() {
                v.acts = vec![act];
            } else {
                v.acts.push(act);
            }
        }
    }

    /// Ends a visit.
    fn close(&mut self, visit: usize, status: VisitStatus, note: Option<String>) {
        let at = self.state.now;
        if let Some(v) = self.visit_mut(visit) {
            v.status = status;
            v.ended_at = Some(at);
            if let Some(n) = note {
                v.note = Some(n.into_boxed_str());
            }
        }
    }

    /// The token's step passes: withdraw what it holds, close its visit, go on at `next`.
    fn pass(&mut self, run: &mut Run<'_>, t: usize, status: VisitStatus, note: Option<String>) {
        let Some(tok) = self.take_token(run, t, Gone::StepEnded) else {
            return;
        };
        self.close(tok.visit, status, note);
        if let Some(node) = run.flow.nodes().get(tok.step) {
            run.work.push((node.next, tok.scope, Some(tok.visit)));
        }
    }

    fn finish(&mut self, run: &mut Run<'_>, outcome: Outcome) {
        let why = match outcome {
            Outcome::Approved => "the instance was approved",
            Outcome::Rejected => "the instance was rejected",
        };
        self.cancel_all(run, why);
        self.state.status = Status::Completed { outcome };
        run.effects.push(Effect::Complete { outcome });
    }

    fn incident_at_token(&mut self, run: &mut Run<'_>, t: usize, step: usize, message: String) {
        if let Some(tok) = self.take_token(run, t, Gone::Withdrawn) {
            self.close(tok.visit, VisitStatus::Error, Some(message.clone()));
        }
        self.incident(run, step_id(run.flow, step), message);
    }

    fn incident(&mut self, run: &mut Run<'_>, step: Arc<str>, message: String) {
        self.cancel_all(run, "the instance stopped on an incident");
        if let Some(v) = self.state.trace.iter_mut().rev().find(|v| v.step == step)
            && v.note.is_none()
        {
            v.note = Some(message.as_str().into());
        }
        self.state.status = Status::Incident {
            step: Arc::clone(&step),
            message: message.clone(),
        };
        run.effects.push(Effect::Incident { step, message });
    }
}

/// Issues the next id (ids are 1-based positions in the instance's records).
fn issue(ids: &mut Vec<IdRecord>, kind: IdKind, step: usize, visit: usize) -> u32 {
    ids.push(IdRecord {
        kind,
        step,
        visit,
        ended: None,
    });
    u32::try_from(ids.len()).unwrap_or(u32::MAX)
}

fn vanished() -> RuntimeError {
    RuntimeError::CorruptState("what the event answers vanished from the state".to_owned())
}
