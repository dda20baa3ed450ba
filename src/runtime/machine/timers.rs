//! Timers and services: calls with retries, failures, timeouts and escalation.

use std::sync::Arc;

use crate::compile::AssigneeSlot;
use crate::graph::Target;
use crate::model::{Assignees, Mode, OnTimeout, Outcome, Step, StepKind};

use crate::runtime::Instance;
use crate::runtime::state::{IdKind, Slot, Wait};
use crate::runtime::types::{Action, CallId, Effect, Gone, TimerId, VisitStatus};

use super::{Run, by_timer, list, step_id};

impl Instance {
    /// A call failed (error or timeout): retry, or `onError`, or an incident.
    pub(super) fn service_failed(&mut self, run: &mut Run<'_>, t: usize, error: &str) {
        let Some(tok) = self.state.tokens.get(t) else {
            return;
        };
        let (step_index, visit) = (tok.step, tok.visit);
        let Some(Step {
            kind: StepKind::ServiceTask { retry, .. },
            ..
        }) = run.flow.step(step_index)
        else {
            return;
        };
        // the failed call's timer is no longer needed
        if let Some(Wait::Service {
            timer: Some(timer), ..
        }) = self.state.tokens.get(t).map(|x| &x.wait)
        {
            let timer = timer.0;
            self.end_id(run, timer, Gone::StepEnded);
        }
        let attempt = match self.state.tokens.get(t).map(|x| &x.wait) {
            Some(Wait::Service { attempt, .. }) => *attempt,
            _ => return,
        };
        let max = retry.as_ref().map_or(0, |r| r.max);
        if attempt <= max {
            let delay = retry.as_ref().and_then(|r| r.backoff_secs).unwrap_or(0);
            let (call, timer) = self.call(run, step_index, visit, attempt + 1, delay);
            if let Some(Wait::Service {
                attempt: a,
                call: c,
                timer: x,
            }) = self.state.tokens.get_mut(t).map(|x| &mut x.wait)
            {
                *a = attempt + 1;
                *c = call;
                *x = timer;
            }
            return;
        }
        let note = format!("failed after {attempt} attempt(s): {error}");
        let on_error = run.flow.nodes().get(step_index).and_then(|n| n.on_error);
        if let Some(target) = on_error {
            if let Some(tok) = self.take_token(run, t, Gone::StepEnded) {
                self.close(tok.visit, VisitStatus::Error, Some(note));
                run.work.push((target, tok.scope, Some(tok.visit)));
            }
        } else {
            self.incident_at_token(run, t, step_index, note);
        }
    }

    /// Issues one service call attempt (and its timer): the `call-service` effect.
    pub(super) fn call(
        &mut self,
        run: &mut Run<'_>,
        step: usize,
        visit: usize,
        attempt: u32,
        delay: u64,
    ) -> (CallId, Option<TimerId>) {
        let Some(Step {
            kind: StepKind::ServiceTask { timeout, .. },
            ..
        }) = run.flow.step(step)
        else {
            return (CallId(0), None);
        };
        let Some(strings) = run.flow.strings(step) else {
            return (CallId(0), None);
        };
        let not_before = self.state.now.saturating_add(delay);
        let call = CallId(self.issue(
            IdKind::Call {
                attempt,
                not_before,
            },
            step,
            visit,
        ));
        let timeout_secs = timeout.as_ref().map(|t| t.value);
        run.effects.push(Effect::CallService {
            call,
            step: Arc::clone(&strings.id),
            service: strings.service.clone().unwrap_or_else(|| Arc::from("")),
            attempt,
            delay_secs: delay,
            not_before,
            timeout_secs,
        });
        let timer = timeout_secs.map(|secs| {
            let due_at = self.state.now.saturating_add(delay).saturating_add(secs);
            let timer = TimerId(self.issue(IdKind::Timer { due_at }, step, visit));
            run.effects.push(Effect::StartTimer {
                timer,
                step: Arc::clone(&strings.id),
                due_at,
            });
            timer
        });
        (call, timer)
    }

    /// Starts an approval's timer.
    pub(super) fn timer(
        &mut self,
        run: &mut Run<'_>,
        step: usize,
        visit: usize,
        secs: u64,
    ) -> TimerId {
        let due_at = self.state.now.saturating_add(secs);
        let timer = TimerId(self.issue(IdKind::Timer { due_at }, step, visit));
        run.effects.push(Effect::StartTimer {
            timer,
            step: step_id(run.flow, step),
            due_at,
        });
        timer
    }

    pub(super) fn timeout(&mut self, run: &mut Run<'_>, t: usize) {
        let Some(tok) = self.state.tokens.get_mut(t) else {
            return;
        };
        let step_index = tok.step;
        match &mut tok.wait {
            Wait::Service { timer, call, .. } => {
                *timer = None;
                let call = call.0;
                self.end_id(run, call, Gone::TimedOut);
                self.act(t, Action::Timeout, by_timer(), None, None);
                self.service_failed(run, t, "timed out");
                return;
            }
            Wait::Approval(a) => a.timer = None,
        }
        self.act(t, Action::Timeout, by_timer(), None, None);
        let Some(Step {
            kind:
                StepKind::Approval {
                    on_timeout,
                    escalate_to,
                    ..
                },
            ..
        }) = run.flow.step(step_index)
        else {
            return;
        };
        match on_timeout.as_ref().map(|o| &o.value) {
            Some(OnTimeout::Escalate) => {
                self.escalate(run, t, step_index, escalate_to.as_ref());
            }
            Some(OnTimeout::Approve) => {
                self.pass(
                    run,
                    t,
                    VisitStatus::Completed,
                    Some("approved on timeout".to_owned()),
                );
            }
            Some(OnTimeout::Reject) => {
                if let Some(tok) = self.take_token(run, t, Gone::StepEnded) {
                    self.close(
                        tok.visit,
                        VisitStatus::Rejected,
                        Some("rejected on timeout".to_owned()),
                    );
                }
                self.finish(run, Outcome::Rejected);
            }
            Some(OnTimeout::Goto(target)) => {
                if let Some(tok) = self.take_token(run, t, Gone::StepEnded) {
                    self.close(
                        tok.visit,
                        VisitStatus::Cancelled,
                        Some(format!("timed out; continued at `{target}`")),
                    );
                    let target = run
                        .flow
                        .nodes()
                        .get(tok.step)
                        .and_then(|n| n.on_timeout)
                        .unwrap_or(Target::End);
                    run.work.push((target, tok.scope, Some(tok.visit)));
                }
            }
            None => {
                self.incident_at_token(
                    run,
                    t,
                    step_index,
                    "timed out and the step has no `onTimeout`".to_owned(),
                );
            }
        }
    }

    /// Hands a timed-out approval to `escalateTo` (once: the new tasks have no timer).
    pub(super) fn escalate(
        &mut self,
        run: &mut Run<'_>,
        t: usize,
        index: usize,
        to: Option<&Assignees>,
    ) {
        let resolved = to
            .ok_or_else(|| "`escalate` without `escalateTo`".to_owned())
            .and_then(|a| self.resolve(run.flow, a, AssigneeSlot::Escalation(index)));
        let new = match resolved {
            Ok(new) => new,
            Err(e) => return self.incident_at_token(run, t, index, e),
        };
        self.release(run, t, Gone::Escalated);
        self.act(
            t,
            Action::Escalate,
            by_timer(),
            None,
            Some(Arc::from(list(&new))),
        );
        let Some((step_index, visit)) = self.state.tokens.get(t).map(|tok| (tok.step, tok.visit))
        else {
            return;
        };
        if let Some(a) = self.approval_mut(t) {
            // the new assignees decide as one group (a sequence restarts as `any`)
            a.slots = new
                .iter()
                .map(|x| Slot {
                    assignee: x.clone(),
                    approved: false,
                    task: None,
                })
                .collect();
            a.cursor = 0;
            if a.mode == Mode::Sequence {
                a.mode = Mode::Any;
            }
        }
        self.open_tasks(run, t, step_index, visit);
        if let Some(v) = self.visit_mut(visit) {
            v.assignees = new;
        }
    }
}
