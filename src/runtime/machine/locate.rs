//! Locating what an event answers: the token, slot, call or timer it names, checked
//! without changing anything (a refused event leaves the state exactly as it was).

use crate::diagnostic::did_you_mean;
use crate::model::StepKind;

use crate::runtime::Instance;
use crate::runtime::error::RuntimeError;
use crate::runtime::state::{Ended, IdKind, IdRecord, Wait, fits};
use crate::runtime::types::{Assignee, Event, TaskId};

use super::{Found, list, step_name, vanished};

impl Instance {
    pub(super) fn locate(&self, event: &Event, at: u64) -> Result<Found, RuntimeError> {
        match event {
            Event::Cancel { .. } => Ok(Found::Cancel),
            Event::Approve {
                step,
                user,
                role,
                task,
                ..
            }
            | Event::Reject {
                step,
                user,
                role,
                task,
                ..
            } => self.locate_task(step, user, role.as_deref(), *task, event.kind()),
            Event::AddSigner {
                step,
                user,
                role,
                task,
                signer,
            } => {
                if signer.trim().is_empty() {
                    return Err(RuntimeError::EmptyName { what: "signer" });
                }
                let found = self.locate_task(step, user, role.as_deref(), *task, "add-signer")?;
                self.check_add_signer(&found, step, signer)?;
                Ok(found)
            }
            Event::ServiceOk { call } | Event::ServiceError { call, .. } => {
                let r = self.live(call.0, call, |k| matches!(k, IdKind::Call { .. }))?;
                if let IdKind::Call { not_before, .. } = r.kind
                    && at < not_before
                {
                    return Err(RuntimeError::NotDue {
                        what: call.to_string(),
                        step: step_name(&self.flow, r.step).to_owned(),
                        due_at: not_before,
                        at,
                    });
                }
                let token = self
                    .state
                    .tokens
                    .iter()
                    .position(|t| {
                        t.visit == r.visit
                            && matches!(t.wait, Wait::Service { call: c, .. } if c == *call)
                    })
                    .ok_or_else(vanished)?;
                Ok(Found::Call { token })
            }
            Event::Timeout { timer } => {
                let r = self.live(timer.0, timer, |k| matches!(k, IdKind::Timer { .. }))?;
                if let IdKind::Timer { due_at } = r.kind
                    && at < due_at
                {
                    return Err(RuntimeError::NotDue {
                        what: timer.to_string(),
                        step: step_name(&self.flow, r.step).to_owned(),
                        due_at,
                        at,
                    });
                }
                let token = self
                    .state
                    .tokens
                    .iter()
                    .position(|t| {
                        t.visit == r.visit
                            && match &t.wait {
                                Wait::Approval(a) => a.timer == Some(*timer),
                                Wait::Service { timer: x, .. } => *x == Some(*timer),
                            }
                    })
                    .ok_or_else(vanished)?;
                Ok(Found::Timer { token })
            }
        }
    }

    /// The record of a live id of the right kind, or why not.
    pub(super) fn live(
        &self,
        id: u32,
        what: &dyn std::fmt::Display,
        kind: impl Fn(&IdKind) -> bool,
    ) -> Result<&IdRecord, RuntimeError> {
        let Some(r) = self.state.record(id).filter(|r| kind(&r.kind)) else {
            return Err(RuntimeError::UnknownId {
                what: what.to_string(),
            });
        };
        if let Some(Ended { why, at }) = r.ended {
            return Err(RuntimeError::Stale {
                what: format!("{what} of step `{}`", step_name(&self.flow, r.step)),
                why,
                at,
            });
        }
        Ok(r)
    }

    pub(super) fn unknown_step(&self, step: &str) -> RuntimeError {
        let ids: Vec<&str> = (0..self.flow.nodes().len())
            .filter_map(|i| self.flow.step(i).map(|s| s.id.value.as_str()))
            .collect();
        RuntimeError::UnknownStep {
            step: step.to_owned(),
            help: match did_you_mean(step, ids) {
                Some(s) => format!("did you mean `{s}`?"),
                None => self.pending_help(),
            },
        }
    }

    pub(super) fn pending_help(&self) -> String {
        let p = self.pending();
        if p.is_empty() {
            return "nothing is pending".to_owned();
        }
        let steps: Vec<String> = p.iter().map(|p| format!("`{}`", p.step)).collect();
        format!("pending: {}", steps.join(", "))
    }

    /// The approval token and slot an approve/reject/add-signer acts on.
    pub(super) fn locate_task(
        &self,
        step: &str,
        user: &str,
        role: Option<&str>,
        task: Option<TaskId>,
        event: &'static str,
    ) -> Result<Found, RuntimeError> {
        if user.trim().is_empty() {
            return Err(RuntimeError::EmptyName { what: "user" });
        }
        // the step is usually one a token waits at: found among the few tokens by name
        // before the flow's index is asked
        let waiting = self
            .state
            .tokens
            .iter()
            .find(|t| step_name(&self.flow, t.step) == step)
            .map(|t| t.step);
        let Some(index) = waiting.or_else(|| self.flow.step_index(step)) else {
            return Err(self.unknown_step(step));
        };
        if let Some(task) = task {
            match self.state.record(task.0) {
                Some(r) if matches!(r.kind, IdKind::Task { .. }) && r.step != index => {
                    return Err(RuntimeError::UnknownId {
                        what: format!(
                            "{task} at step `{step}` ({task} belongs to step `{}`)",
                            step_name(&self.flow, r.step)
                        ),
                    });
                }
                _ => {}
            }
            self.live(task.0, &task, |k| matches!(k, IdKind::Task { .. }))?;
        }
        let token = self
            .state
            .tokens
            .iter()
            .position(|t| t.step == index && matches!(t.wait, Wait::Approval(_)));
        let Some((t, a)) = token.and_then(|t| match self.state.tokens.get(t).map(|x| &x.wait) {
            Some(Wait::Approval(a)) => Some((t, a)),
            _ => None,
        }) else {
            // an earlier visit's task of this actor: a late answer
            return Err(self.stale_task(index, user, role).unwrap_or_else(|| {
                RuntimeError::NotPending {
                    step: step.to_owned(),
                    event,
                    help: self.pending_help(),
                }
            }));
        };
        let slot = match task {
            Some(id) => a.slots.iter().position(|s| s.task == Some(id)),
            None => a.slot(user, role),
        };
        let Some(k) = slot else {
            return Err(RuntimeError::NotAssignee {
                step: step.to_owned(),
                user: user.to_owned(),
                assignees: list(
                    &a.slots
                        .iter()
                        .map(|s| s.assignee.clone())
                        .collect::<Vec<_>>(),
                ),
            });
        };
        let Some(s) = a.slots.get(k) else {
            return Err(vanished());
        };
        if !fits(&s.assignee, user, role) {
            return Err(RuntimeError::NotAssignee {
                step: step.to_owned(),
                user: user.to_owned(),
                assignees: s.assignee.to_string(),
            });
        }
        if s.task.is_none() {
            if s.approved {
                return Err(self.stale_task(index, user, role).unwrap_or_else(vanished));
            }
            return Err(RuntimeError::NotYourTurn {
                step: step.to_owned(),
                user: user.to_owned(),
                current: a
                    .slots
                    .get(a.cursor)
                    .map(|s| s.assignee.to_string())
                    .unwrap_or_default(),
            });
        }
        Ok(Found::Task { token: t, slot: k })
    }

    /// The latest ended task of this actor at this step, as a stale error.
    pub(super) fn stale_task(
        &self,
        step: usize,
        user: &str,
        role: Option<&str>,
    ) -> Option<RuntimeError> {
        let (n, r) = self.state.ids.iter().enumerate().rev().find(|(_, r)| {
            r.step == step
                && matches!(&r.kind, IdKind::Task { assignee } if fits(assignee, user, role))
        })?;
        let ended = r.ended?;
        Some(RuntimeError::Stale {
            what: format!(
                "task {} of `{user}` at step `{}`",
                n + 1,
                step_name(&self.flow, step)
            ),
            why: ended.why,
            at: ended.at,
        })
    }

    pub(super) fn check_add_signer(
        &self,
        found: &Found,
        step: &str,
        signer: &str,
    ) -> Result<(), RuntimeError> {
        let Found::Task { token, .. } = found else {
            return Err(vanished());
        };
        let Some(tok) = self.state.tokens.get(*token) else {
            return Err(vanished());
        };
        let allowed = self.flow.step(tok.step).is_some_and(|s| {
            matches!(
                s.kind,
                StepKind::Approval {
                    allow_add_signer: true,
                    ..
                }
            )
        });
        if !allowed {
            return Err(RuntimeError::AddSignerNotAllowed {
                step: step.to_owned(),
            });
        }
        if let Wait::Approval(a) = &tok.wait
            && a.slots
                .iter()
                .any(|s| matches!(&s.assignee, Assignee::User(u) if **u == *signer))
        {
            return Err(RuntimeError::DuplicateSigner {
                step: step.to_owned(),
                signer: signer.to_owned(),
            });
        }
        Ok(())
    }
}
