//! The machine: validating an event (no mutation), then the transitions it causes.
//!
//! Every id an instance issues is recorded (`InstanceState::ids`) with the step and visit
//! it belongs to; every way an id stops being live goes through [`Instance::end_id`],
//! which also emits the withdrawing effect when the host must be told.

use std::sync::Arc;

use crate::compile::{AssigneeSlot, CompiledFlow};
use crate::diagnostic::did_you_mean;
use crate::expr::Value;
use crate::graph::Target;
use crate::model::{Assignees, Mode, OnTimeout, Outcome, Step, StepKind};

use super::Instance;
use super::MAX_AUTOMATIC_STEPS;
use super::state::{Approval, Ended, IdKind, IdRecord, JoinState, Scope, Slot, Token, Wait, fits};
use super::types::{
    Act, Assignee, CallId, ConditionRecord, Effect, Event, Gone, RuntimeError, Status, TaskId,
    TaskRef, TimerId, Visit, VisitStatus,
};

/// Work still to do: a target, the branch it runs in, and the visit that led there.
type Work = (Target, Option<Scope>, Option<usize>);

/// The effects of one step of the machine, and the work still to do.
pub(super) struct Run<'a> {
    flow: &'a CompiledFlow,
    effects: Vec<Effect>,
    work: Vec<Work>,
}

pub(super) fn step_id(flow: &CompiledFlow, i: usize) -> String {
    flow.step(i)
        .map_or_else(String::new, |s| s.id.value.clone())
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
            effects: Vec::new(),
            work: vec![(flow.entry(), None, None)],
        };
        self.drive(&mut run);
        run.effects
    }

    pub(super) fn run_event(
        &mut self,
        event: &Event,
        at: u64,
    ) -> Result<Vec<Effect>, RuntimeError> {
        if self.state.status != Status::Running {
            return Err(RuntimeError::Finished {
                status: self.state.status.clone(),
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
            effects: Vec::new(),
            work: Vec::new(),
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
            ) => self.approve(
                &mut run,
                token,
                slot,
                user,
                role.as_deref(),
                comment.clone(),
            ),
            (
                Event::Reject {
                    user,
                    role,
                    comment,
                    ..
                },
                Found::Task { token, slot },
            ) => self.reject(
                &mut run,
                token,
                slot,
                user,
                role.as_deref(),
                comment.clone(),
            ),
            (
                Event::AddSigner {
                    user, role, signer, ..
                },
                Found::Task { token, .. },
            ) => self.add_signer(&mut run, token, user, role.as_deref(), signer),
            (Event::ServiceOk { call }, Found::Call { token }) => {
                self.end_id(&mut run, call.0, Gone::Answered);
                self.act(token, "service-ok", "service", None, None);
                self.pass(&mut run, token, VisitStatus::Completed, None);
            }
            (Event::ServiceError { call, error }, Found::Call { token }) => {
                self.end_id(&mut run, call.0, Gone::Answered);
                self.act(token, "service-error", "service", None, Some(error.clone()));
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

    // ---- locating what an event answers (no mutation) ----

    fn locate(&self, event: &Event, at: u64) -> Result<Found, RuntimeError> {
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
                let found = self.locate_task(step, user, role.as_deref(), *task, "add-signer")?;
                self.check_add_signer(&found, step, signer)?;
                Ok(found)
            }
            Event::ServiceOk { call } | Event::ServiceError { call, .. } => {
                let r = self.live(call.0, &call.to_string(), |k| {
                    matches!(k, IdKind::Call { .. })
                })?;
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
                let r = self.live(timer.0, &timer.to_string(), |k| {
                    matches!(k, IdKind::Timer { .. })
                })?;
                if let IdKind::Timer { due_at } = r.kind
                    && at < due_at
                {
                    return Err(RuntimeError::NotDue {
                        timer: *timer,
                        step: step_id(&self.flow, r.step),
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
    fn live(
        &self,
        id: u32,
        what: &str,
        kind: impl Fn(&IdKind) -> bool,
    ) -> Result<&IdRecord, RuntimeError> {
        let Some(r) = self.state.record(id).filter(|r| kind(&r.kind)) else {
            return Err(RuntimeError::UnknownId {
                what: what.to_owned(),
            });
        };
        if let Some(Ended { why, at }) = r.ended {
            return Err(RuntimeError::Stale {
                what: format!("{what} of step `{}`", step_id(&self.flow, r.step)),
                why,
                at,
            });
        }
        Ok(r)
    }

    fn unknown_step(&self, step: &str) -> RuntimeError {
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

    fn pending_help(&self) -> String {
        let p = self.pending();
        if p.is_empty() {
            return "nothing is pending".to_owned();
        }
        let steps: Vec<String> = p.iter().map(|p| format!("`{}`", p.step)).collect();
        format!("pending: {}", steps.join(", "))
    }

    /// The approval token and slot an approve/reject/add-signer acts on.
    fn locate_task(
        &self,
        step: &str,
        user: &str,
        role: Option<&str>,
        task: Option<TaskId>,
        event: &'static str,
    ) -> Result<Found, RuntimeError> {
        let Some(index) = self.flow.step_index(step) else {
            return Err(self.unknown_step(step));
        };
        if let Some(task) = task {
            let what = format!("{task} at step `{step}`");
            let r = self.live(task.0, &what, |k| matches!(k, IdKind::Task { .. }))?;
            if r.step != index {
                return Err(RuntimeError::UnknownId { what });
            }
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
    fn stale_task(&self, step: usize, user: &str, role: Option<&str>) -> Option<RuntimeError> {
        let (n, r) = self.state.ids.iter().enumerate().rev().find(|(_, r)| {
            r.step == step
                && matches!(&r.kind, IdKind::Task { assignee } if fits(assignee, user, role))
        })?;
        let ended = r.ended?;
        Some(RuntimeError::Stale {
            what: format!(
                "task {} of `{user}` at step `{}`",
                n + 1,
                step_id(&self.flow, step)
            ),
            why: ended.why,
            at: ended.at,
        })
    }

    fn check_add_signer(
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
                .any(|s| matches!(&s.assignee, Assignee::User(u) if u == signer))
        {
            return Err(RuntimeError::DuplicateSigner {
                step: step.to_owned(),
                signer: signer.to_owned(),
            });
        }
        Ok(())
    }

    // ---- ids ----

    fn issue(&mut self, kind: IdKind, step: usize, visit: usize) -> u32 {
        self.state.ids.push(IdRecord {
            kind,
            step,
            visit,
            ended: None,
        });
        u32::try_from(self.state.ids.len()).unwrap_or(u32::MAX)
    }

    /// Ends a live id and tells the host to withdraw it (unless it was answered: then
    /// the host knows; a task is closed in every case).
    fn end_id(&mut self, run: &mut Run<'_>, id: u32, why: Gone) {
        let at = self.state.now;
        let Some(r) = self.state.record_mut(id) else {
            return;
        };
        if r.ended.is_some() {
            return;
        }
        r.ended = Some(Ended { why, at });
        let step = step_id(run.flow, r.step);
        match r.kind {
            IdKind::Task { .. } => run.effects.push(Effect::CloseTask {
                task: TaskId(id),
                step,
                reason: why,
            }),
            IdKind::Timer { .. } if why != Gone::Fired => {
                run.effects.push(Effect::CancelTimer {
                    timer: TimerId(id),
                    step,
                });
            }
            IdKind::Call { .. } if why != Gone::Answered => {
                run.effects.push(Effect::CancelService {
                    call: CallId(id),
                    step,
                });
            }
            IdKind::Timer { .. } | IdKind::Call { .. } => {}
        }
    }

    /// Ends every live id a token holds (tasks in slot order, then its call, then its
    /// timer).
    fn release(&mut self, run: &mut Run<'_>, t: usize, why: Gone) {
        let Some(tok) = self.state.tokens.get_mut(t) else {
            return;
        };
        let mut ids = Vec::new();
        match &mut tok.wait {
            Wait::Approval(a) => {
                for s in &mut a.slots {
                    if let Some(task) = s.task.take() {
                        ids.push(task.0);
                    }
                }
                if let Some(timer) = a.timer.take() {
                    ids.push(timer.0);
                }
            }
            Wait::Service { call, timer, .. } => {
                ids.push(call.0);
                if let Some(timer) = timer.take() {
                    ids.push(timer.0);
                }
            }
        }
        for id in ids {
            self.end_id(run, id, why);
        }
    }

    /// Removes a token, withdrawing what it still holds.
    fn take_token(&mut self, run: &mut Run<'_>, t: usize, why: Gone) -> Option<Token> {
        if t >= self.state.tokens.len() {
            return None;
        }
        self.release(run, t, why);
        Some(self.state.tokens.remove(t))
    }

    // ---- transitions ----

    fn visit_mut(&mut self, visit: usize) -> Option<&mut Visit> {
        self.state.trace.get_mut(visit)
    }

    fn act(
        &mut self,
        t: usize,
        action: &str,
        by: &str,
        role: Option<&str>,
        detail: Option<String>,
    ) {
        let at = self.state.now;
        let Some(visit) = self.state.tokens.get(t).map(|t| t.visit) else {
            return;
        };
        if let Some(v) = self.visit_mut(visit) {
            v.acts.push(Act {
                action: action.to_owned(),
                by: by.to_owned(),
                role: role.map(str::to_owned),
                detail,
                at,
            });
        }
    }

    /// Ends a visit.
    fn close(&mut self, visit: usize, status: VisitStatus, note: Option<String>) {
        let at = self.state.now;
        if let Some(v) = self.visit_mut(visit) {
            v.status = status;
            v.ended_at = Some(at);
            if note.is_some() {
                v.note = note;
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

    fn approval_mut(&mut self, t: usize) -> Option<&mut Approval> {
        match self.state.tokens.get_mut(t).map(|tok| &mut tok.wait) {
            Some(Wait::Approval(a)) => Some(a),
            _ => None,
        }
    }

    /// Marks the slot decided and closes its task.
    fn answer_task(&mut self, run: &mut Run<'_>, t: usize, k: usize, why: Gone) {
        let task = self
            .approval_mut(t)
            .and_then(|a| a.slots.get_mut(k))
            .and_then(|s| {
                s.approved = why == Gone::Approved;
                s.task.take()
            });
        if let Some(task) = task {
            self.end_id(run, task.0, why);
        }
    }

    fn approve(
        &mut self,
        run: &mut Run<'_>,
        t: usize,
        k: usize,
        user: &str,
        role: Option<&str>,
        comment: Option<String>,
    ) {
        self.act(t, "approve", user, role, comment);
        self.answer_task(run, t, k, Gone::Approved);
        let Some((step, visit)) = self.state.tokens.get(t).map(|tok| (tok.step, tok.visit)) else {
            return;
        };
        let Some(a) = self.approval_mut(t) else {
            return;
        };
        let done = match a.mode {
            Mode::Single | Mode::Any => true,
            Mode::All => a.slots.iter().all(|s| s.approved),
            Mode::Sequence => {
                a.cursor += 1;
                a.cursor >= a.slots.len()
            }
        };
        if done {
            self.pass(run, t, VisitStatus::Completed, None);
            return;
        }
        if self
            .approval_mut(t)
            .is_some_and(|a| a.mode == Mode::Sequence)
        {
            self.open_task(run, t, step, visit, None);
        }
    }

    /// Gives the slot at the sequence cursor (or slot `k`) a task.
    fn open_task(
        &mut self,
        run: &mut Run<'_>,
        t: usize,
        step: usize,
        visit: usize,
        k: Option<usize>,
    ) {
        let Some(a) = self.approval_mut(t) else {
            return;
        };
        let k = k.unwrap_or(a.cursor);
        let Some(assignee) = a.slots.get(k).map(|s| s.assignee.clone()) else {
            return;
        };
        let task = TaskId(self.issue(
            IdKind::Task {
                assignee: assignee.clone(),
            },
            step,
            visit,
        ));
        if let Some(s) = self.approval_mut(t).and_then(|a| a.slots.get_mut(k)) {
            s.task = Some(task);
        }
        run.effects.push(Effect::CreateTask {
            step: step_id(run.flow, step),
            tasks: vec![TaskRef { task, assignee }],
        });
    }

    fn reject(
        &mut self,
        run: &mut Run<'_>,
        t: usize,
        k: usize,
        user: &str,
        role: Option<&str>,
        comment: Option<String>,
    ) {
        self.act(t, "reject", user, role, comment);
        self.answer_task(run, t, k, Gone::Rejected);
        self.rejected(run, t, VisitStatus::Rejected, None);
    }

    /// The token's step rejects: `onReject` if set, else the instance is rejected.
    fn rejected(&mut self, run: &mut Run<'_>, t: usize, status: VisitStatus, note: Option<String>) {
        let Some(tok) = self.take_token(run, t, Gone::StepEnded) else {
            return;
        };
        self.close(tok.visit, status, note);
        match run.flow.nodes().get(tok.step).and_then(|n| n.on_reject) {
            Some(target) => run.work.push((target, tok.scope, Some(tok.visit))),
            None => self.finish(run, Outcome::Rejected),
        }
    }

    fn add_signer(
        &mut self,
        run: &mut Run<'_>,
        t: usize,
        user: &str,
        role: Option<&str>,
        signer: &str,
    ) {
        self.act(t, "add-signer", user, role, Some(signer.to_owned()));
        let Some((step, visit)) = self.state.tokens.get(t).map(|k| (k.step, k.visit)) else {
            return;
        };
        let Some(a) = self.approval_mut(t) else {
            return;
        };
        let slot = Slot {
            assignee: Assignee::User(signer.to_owned()),
            approved: false,
            task: None,
        };
        if a.mode == Mode::Sequence {
            // the added signer decides right after the current assignee
            let at = (a.cursor + 1).min(a.slots.len());
            a.slots.insert(at, slot);
        } else {
            a.slots.push(slot);
            let k = a.slots.len() - 1;
            self.open_task(run, t, step, visit, Some(k));
        }
        let slots: Vec<Assignee> = self
            .approval_mut(t)
            .map(|a| a.slots.iter().map(|s| s.assignee.clone()).collect())
            .unwrap_or_default();
        if let Some(v) = self.visit_mut(visit) {
            v.assignees = slots;
        }
    }

    /// A call failed (error or timeout): retry, or `onError`, or an incident.
    fn service_failed(&mut self, run: &mut Run<'_>, t: usize, error: &str) {
        let Some(tok) = self.state.tokens.get(t) else {
            return;
        };
        let (step_index, visit) = (tok.step, tok.visit);
        let Some(Step {
            id,
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
            let step = id.value.clone();
            self.incident_at_token(run, t, &step, note);
        }
    }

    /// Issues one service call attempt (and its timer): the `call-service` effect.
    fn call(
        &mut self,
        run: &mut Run<'_>,
        step: usize,
        visit: usize,
        attempt: u32,
        delay: u64,
    ) -> (CallId, Option<TimerId>) {
        let Some(Step {
            id,
            kind: StepKind::ServiceTask {
                service, timeout, ..
            },
            ..
        }) = run.flow.step(step)
        else {
            return (CallId(0), None);
        };
        let call = CallId(self.issue(IdKind::Call { attempt }, step, visit));
        let timeout_secs = timeout.as_ref().map(|t| t.value);
        run.effects.push(Effect::CallService {
            call,
            step: id.value.clone(),
            service: service.value.clone(),
            attempt,
            delay_secs: delay,
            timeout_secs,
        });
        let timer = timeout_secs.map(|secs| {
            let due_at = self.state.now.saturating_add(delay).saturating_add(secs);
            let timer = TimerId(self.issue(IdKind::Timer { due_at }, step, visit));
            run.effects.push(Effect::StartTimer {
                timer,
                step: id.value.clone(),
                due_at,
            });
            timer
        });
        (call, timer)
    }

    /// Starts an approval's timer.
    fn timer(&mut self, run: &mut Run<'_>, step: usize, visit: usize, secs: u64) -> TimerId {
        let due_at = self.state.now.saturating_add(secs);
        let timer = TimerId(self.issue(IdKind::Timer { due_at }, step, visit));
        run.effects.push(Effect::StartTimer {
            timer,
            step: step_id(run.flow, step),
            due_at,
        });
        timer
    }

    fn timeout(&mut self, run: &mut Run<'_>, t: usize) {
        let Some(tok) = self.state.tokens.get_mut(t) else {
            return;
        };
        let step_index = tok.step;
        match &mut tok.wait {
            Wait::Service { timer, call, .. } => {
                *timer = None;
                let call = call.0;
                self.end_id(run, call, Gone::TimedOut);
                self.act(t, "timeout", "timer", None, None);
                self.service_failed(run, t, "timed out");
                return;
            }
            Wait::Approval(a) => a.timer = None,
        }
        self.act(t, "timeout", "timer", None, None);
        let Some(Step {
            id,
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
                self.escalate(run, t, (step_index, &id.value), escalate_to.as_ref());
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
                    &id.value,
                    "timed out and the step has no `onTimeout`".to_owned(),
                );
            }
        }
    }

    /// Hands a timed-out approval to `escalateTo` (once: the new tasks have no timer).
    fn escalate(
        &mut self,
        run: &mut Run<'_>,
        t: usize,
        (index, step): (usize, &str),
        to: Option<&Assignees>,
    ) {
        let resolved = to
            .ok_or_else(|| "`escalate` without `escalateTo`".to_owned())
            .and_then(|a| self.resolve(run.flow, a, AssigneeSlot::Escalation(index)));
        let new = match resolved {
            Ok(new) => new,
            Err(e) => return self.incident_at_token(run, t, step, e),
        };
        self.release(run, t, Gone::Escalated);
        self.act(t, "escalate", "timer", None, Some(list(&new)));
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

    /// Gives every slot of an approval a task, in one `create-task`.
    fn open_tasks(&mut self, run: &mut Run<'_>, t: usize, step: usize, visit: usize) {
        let assignees: Vec<Assignee> = self
            .approval_mut(t)
            .map(|a| a.slots.iter().map(|s| s.assignee.clone()).collect())
            .unwrap_or_default();
        let mut tasks = Vec::with_capacity(assignees.len());
        for (k, assignee) in assignees.into_iter().enumerate() {
            let task = TaskId(self.issue(
                IdKind::Task {
                    assignee: assignee.clone(),
                },
                step,
                visit,
            ));
            if let Some(s) = self.approval_mut(t).and_then(|a| a.slots.get_mut(k)) {
                s.task = Some(task);
            }
            tasks.push(TaskRef { task, assignee });
        }
        run.effects.push(Effect::CreateTask {
            step: step_id(run.flow, step),
            tasks,
        });
    }

    /// Evaluates an assignee declaration against the context.
    fn resolve(
        &mut self,
        flow: &CompiledFlow,
        a: &Assignees,
        slot: AssigneeSlot,
    ) -> Result<Vec<Assignee>, String> {
        let mut out: Vec<Assignee> = match a {
            Assignees::Role(r) => vec![Assignee::Role(r.value.clone())],
            Assignees::User(u) => vec![Assignee::User(u.value.clone())],
            Assignees::Users(us) => us.iter().map(|u| Assignee::User(u.value.clone())).collect(),
            Assignees::Expr(src) => {
                let expression = flow
                    .assignee_expression(slot)
                    .ok_or_else(|| format!("no compiled program for `{}`", src.text))?;
                let v = expression
                    .eval(flow.sandbox(), &mut self.bindings)
                    .map_err(|e| format!("assignee expression `{}` failed: {e}", src.text))?;
                match v {
                    Value::String(s) => vec![Assignee::User(s.to_string())],
                    Value::List(l) => l
                        .iter()
                        .map(|x| match x {
                            Value::String(s) => Ok(Assignee::User(s.to_string())),
                            other => Err(format!(
                                "assignee expression `{}` gave a list holding {}",
                                src.text,
                                other.type_name()
                            )),
                        })
                        .collect::<Result<_, _>>()?,
                    other => {
                        return Err(format!(
                            "assignee expression `{}` gave {}, not a string or list of strings",
                            src.text,
                            other.type_name()
                        ));
                    }
                }
            }
        };
        // one task per person: a name given twice is asked once (`check` warns of it)
        let mut seen = std::collections::HashSet::new();
        out.retain(|x| seen.insert(x.clone()));
        if out.is_empty() {
            return Err(match slot {
                AssigneeSlot::Step(i) => {
                    format!("step `{}` has no assignees at run time", step_id(flow, i))
                }
                AssigneeSlot::Escalation(i) => format!(
                    "`escalateTo` of step `{}` has no assignees at run time",
                    step_id(flow, i)
                ),
            });
        }
        Ok(out)
    }

    /// Runs automatic steps until every token waits or the instance ends.
    fn drive(&mut self, run: &mut Run<'_>) {
        let mut budget = MAX_AUTOMATIC_STEPS;
        while let Some((target, scope, from)) = run.work.pop() {
            if self.state.status != Status::Running {
                run.work.clear();
                return;
            }
            // work left over from a branch that a join `any` has closed
            if let Some(s) = scope
                && !self.state.joins.iter().any(|j| j.id == s.join)
            {
                continue;
            }
            if budget == 0 {
                let step = match target {
                    Target::Step(i) => step_id(run.flow, i),
                    _ => String::new(),
                };
                self.incident(
                    run,
                    &step,
                    format!("more than {MAX_AUTOMATIC_STEPS} automatic steps in one event"),
                );
                return;
            }
            budget -= 1;
            match target {
                Target::End => self.finish(run, Outcome::Approved),
                Target::BranchEnd { branch, .. } => {
                    if let Some(s) = scope {
                        self.branch_done(run, s.join, branch);
                    }
                }
                Target::Step(i) => self.enter(run, i, scope, from),
            }
        }
    }

    fn new_visit(&mut self, step: &Step, from: Option<usize>) -> usize {
        self.state.trace.push(Visit {
            step: step.id.value.clone(),
            status: VisitStatus::Pending,
            rule: None,
            by_default: false,
            condition: None,
            assignees: Vec::new(),
            acts: Vec::new(),
            note: None,
            from,
            entered_at: self.state.now,
            ended_at: None,
        });
        self.state.trace.len() - 1
    }

    fn enter(&mut self, run: &mut Run<'_>, i: usize, scope: Option<Scope>, from: Option<usize>) {
        let flow = run.flow;
        let (Some(step), Some(node)) = (flow.step(i), flow.nodes().get(i)) else {
            return;
        };
        let visit = self.new_visit(step, from);
        if self.skips(flow, step, visit) {
            self.close(visit, VisitStatus::Skipped, None);
            run.work.push((node.next, scope, Some(visit)));
            return;
        }
        match &step.kind {
            StepKind::Approval {
                assignees,
                mode,
                timeout,
                ..
            } => self.enter_approval(
                run,
                (i, visit, scope),
                assignees,
                *mode,
                timeout.as_ref().map(|t| t.value),
            ),
            StepKind::ServiceTask { .. } => {
                let (call, timer) = self.call(run, i, visit, 1, 0);
                self.state.tokens.push(Token {
                    step: i,
                    visit,
                    scope,
                    wait: Wait::Service {
                        attempt: 1,
                        call,
                        timer,
                    },
                });
            }
            StepKind::Decision { rules, .. } => {
                self.decide(run, i, visit, scope, rules);
            }
            StepKind::Parallel { join, .. } => {
                let id = self.state.next_join;
                self.state.next_join = self.state.next_join.wrapping_add(1);
                self.state.joins.push(JoinState {
                    id,
                    step: i,
                    visit,
                    any: *join == crate::model::Join::Any,
                    done: vec![false; node.branches.len()],
                    scope,
                });
                if node.branches.is_empty() {
                    run.work.push((node.next, scope, Some(visit)));
                    self.state.joins.retain(|j| j.id != id);
                    self.close(visit, VisitStatus::Completed, None);
                }
                // a stack: push in reverse so branch 0 runs first
                for (b, t) in node.branches.iter().enumerate().rev() {
                    run.work.push((
                        *t,
                        Some(Scope {
                            join: id,
                            branch: b,
                        }),
                        Some(visit),
                    ));
                }
            }
            StepKind::Notify { to, message } => match self.resolve(flow, to, AssigneeSlot::Step(i))
            {
                Ok(to) => {
                    run.effects.push(Effect::Notify {
                        step: step.id.value.clone(),
                        to: to.clone(),
                        message: message.clone(),
                    });
                    if let Some(v) = self.visit_mut(visit) {
                        v.assignees = to;
                    }
                    self.close(visit, VisitStatus::Completed, None);
                    run.work.push((node.next, scope, Some(visit)));
                }
                Err(e) => {
                    self.close(visit, VisitStatus::Error, None);
                    self.incident(run, &step.id.value, e);
                }
            },
            StepKind::End { outcome } => {
                self.close(visit, VisitStatus::Completed, None);
                self.finish(run, *outcome);
            }
        }
    }

    /// Enters an approval: resolves its assignees, opens their tasks, starts its timer.
    fn enter_approval(
        &mut self,
        run: &mut Run<'_>,
        (i, visit, scope): (usize, usize, Option<Scope>),
        assignees: &Assignees,
        mode: Mode,
        timeout: Option<u64>,
    ) {
        let flow = run.flow;
        let step = step_id(flow, i);
        match self.resolve(flow, assignees, AssigneeSlot::Step(i)) {
            Ok(slots) => {
                if let Some(v) = self.visit_mut(visit) {
                    v.assignees.clone_from(&slots);
                }
                self.state.tokens.push(Token {
                    step: i,
                    visit,
                    scope,
                    wait: Wait::Approval(Approval {
                        slots: slots
                            .into_iter()
                            .map(|assignee| Slot {
                                assignee,
                                approved: false,
                                task: None,
                            })
                            .collect(),
                        mode,
                        cursor: 0,
                        timer: None,
                    }),
                });
                let t = self.state.tokens.len() - 1;
                if mode == Mode::Sequence {
                    self.open_task(run, t, i, visit, Some(0));
                } else {
                    self.open_tasks(run, t, i, visit);
                }
                if let Some(secs) = timeout {
                    let timer = self.timer(run, i, visit, secs);
                    if let Some(a) = self.approval_mut(t) {
                        a.timer = Some(timer);
                    }
                }
            }
            Err(e) => {
                self.close(visit, VisitStatus::Error, None);
                self.incident(run, &step, e);
            }
        }
    }

    /// Evaluates a step's `skipCondition` (recorded in the visit); an error means do not
    /// skip (fail closed).
    fn skips(&mut self, flow: &CompiledFlow, step: &Step, visit: usize) -> bool {
        let (Some(cond), Some(src)) = (flow.skip_condition(&step.id.value), &step.skip) else {
            return false;
        };
        let r = cond.eval(flow.sandbox(), &mut self.bindings);
        let (line, column) = flow.flow().file.line_col(src.span.start);
        let record = ConditionRecord {
            text: src.text.clone(),
            value: r.as_ref().ok().copied(),
            error: r.as_ref().err().map(ToString::to_string),
            line,
            column,
        };
        if let Some(v) = self.visit_mut(visit) {
            v.condition = Some(record);
        }
        r == Ok(true)
    }

    fn decide(
        &mut self,
        run: &mut Run<'_>,
        i: usize,
        visit: usize,
        scope: Option<Scope>,
        rules: &[crate::model::Rule],
    ) {
        let flow = run.flow;
        let (Some(step), Some(node)) = (flow.step(i), flow.nodes().get(i)) else {
            return;
        };
        let Some(decision) = flow.decision(&step.id.value) else {
            self.close(visit, VisitStatus::Error, None);
            self.incident(run, &step.id.value, "decision was not compiled".to_owned());
            return;
        };
        match decision.eval(flow.sandbox(), &mut self.bindings) {
            Ok(Some(r)) => {
                if let Some(v) = self.visit_mut(visit) {
                    v.rule = Some(r + 1);
                    v.condition = rules.get(r).map(|rule| {
                        let (line, column) = flow.flow().file.line_col(rule.when.span.start);
                        ConditionRecord {
                            text: rule.when.text.clone(),
                            value: Some(true),
                            error: None,
                            line,
                            column,
                        }
                    });
                }
                self.close(visit, VisitStatus::Completed, None);
                if let Some(t) = node.rules.get(r) {
                    run.work.push((*t, scope, Some(visit)));
                }
            }
            Ok(None) => {
                if let Some(t) = node.default {
                    if let Some(v) = self.visit_mut(visit) {
                        v.by_default = true;
                    }
                    self.close(visit, VisitStatus::Completed, None);
                    run.work.push((t, scope, Some(visit)));
                } else {
                    self.close(visit, VisitStatus::Error, None);
                    self.incident(
                        run,
                        &step.id.value,
                        "no rule holds and the decision has no `default`".to_owned(),
                    );
                }
            }
            Err(e) => {
                let message = match decision
                    .failing_rule(flow.sandbox(), &mut self.bindings)
                    .and_then(|r| Some((r, rules.get(r)?)))
                {
                    Some((r, rule)) => {
                        let (line, column) = flow.flow().file.line_col(rule.when.span.start);
                        format!(
                            "decision failed in rule {} `{}` (line {line}, column {column}): {e}",
                            r + 1,
                            rule.when.text
                        )
                    }
                    None => format!("decision failed: {e}"),
                };
                self.close(visit, VisitStatus::Error, None);
                self.incident(run, &step.id.value, message);
            }
        }
    }

    fn branch_done(&mut self, run: &mut Run<'_>, join: u32, branch: usize) {
        let Some(j) = self.state.joins.iter_mut().find(|j| j.id == join) else {
            return;
        };
        if let Some(d) = j.done.get_mut(branch) {
            *d = true;
        }
        if !(j.any || j.done.iter().all(|d| *d)) {
            return;
        }
        let (step, visit, scope, any) = (j.step, j.visit, j.scope, j.any);
        if any {
            // the losing branches are withdrawn
            self.cancel_scope(run, join, &format!("branch {} finished first", branch + 1));
        }
        self.state.joins.retain(|j| j.id != join);
        self.close(visit, VisitStatus::Completed, None);
        if let Some(node) = run.flow.nodes().get(step) {
            run.work.push((node.next, scope, Some(visit)));
        }
    }

    /// Cancels every token and open join inside the join `join` (recursively).
    fn cancel_scope(&mut self, run: &mut Run<'_>, join: u32, why: &str) {
        let inner: Vec<u32> = self
            .state
            .joins
            .iter()
            .filter(|j| j.scope.is_some_and(|s| s.join == join))
            .map(|j| j.id)
            .collect();
        for j in inner {
            self.cancel_scope(run, j, why);
            if let Some(pos) = self.state.joins.iter().position(|x| x.id == j) {
                let open = self.state.joins.remove(pos);
                self.close(open.visit, VisitStatus::Cancelled, Some(why.to_owned()));
            }
        }
        let mut k = 0;
        while k < self.state.tokens.len() {
            let inside = self
                .state
                .tokens
                .get(k)
                .is_some_and(|t| t.scope.is_some_and(|s| s.join == join));
            if inside {
                if let Some(t) = self.take_token(run, k, Gone::Withdrawn) {
                    self.close(t.visit, VisitStatus::Cancelled, Some(why.to_owned()));
                }
            } else {
                k += 1;
            }
        }
    }

    /// Withdraws every waiting token and open join.
    fn cancel_all(&mut self, run: &mut Run<'_>, why: &str) {
        self.state.tokens.sort_by_key(|t| t.visit);
        while !self.state.tokens.is_empty() {
            if let Some(t) = self.take_token(run, 0, Gone::Withdrawn) {
                self.close(t.visit, VisitStatus::Cancelled, Some(why.to_owned()));
            }
        }
        for j in std::mem::take(&mut self.state.joins) {
            self.close(j.visit, VisitStatus::Cancelled, Some(why.to_owned()));
        }
        run.work.clear();
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

    fn incident_at_token(&mut self, run: &mut Run<'_>, t: usize, step: &str, message: String) {
        if let Some(tok) = self.take_token(run, t, Gone::Withdrawn) {
            self.close(tok.visit, VisitStatus::Error, Some(message.clone()));
        }
        self.incident(run, step, message);
    }

    fn incident(&mut self, run: &mut Run<'_>, step: &str, message: String) {
        self.cancel_all(run, "the instance stopped on an incident");
        if let Some(v) = self.state.trace.iter_mut().rev().find(|v| v.step == step)
            && v.note.is_none()
        {
            v.note = Some(message.clone());
        }
        self.state.status = Status::Incident {
            step: step.to_owned(),
            message: message.clone(),
        };
        run.effects.push(Effect::Incident {
            step: step.to_owned(),
            message,
        });
    }
}

fn vanished() -> RuntimeError {
    RuntimeError::CorruptState("what the event answers vanished from the state".to_owned())
}
