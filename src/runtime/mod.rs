//! Stage 7: instances — a deterministic, I/O-free state machine over a [`CompiledFlow`].
//!
//! [`Instance::start`] checks the context and returns the first [`Effect`]s;
//! [`Instance::apply`] takes one [`Event`] at a host-supplied logical time and returns
//! the next effects. An event that does not fit is a [`RuntimeError`] and changes
//! nothing. Every visit of a step is recorded in the [`Visit`] trace.
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
//! "#);
//! let flow = Arc::new(flowc::compile::compile(&src, &Default::default()).unwrap());
//! let (mut inst, effects) = Instance::start(flow, &serde_json::json!({"days": 5}), 0).unwrap();
//! assert!(matches!(&effects[0], Effect::CreateTask { step, .. } if step == "manager"));
//! let effects = inst
//!     .apply(&Event::Approve { step: "manager".into(), user: "mia".into(), role: None }, 1)
//!     .unwrap();
//! assert_eq!(inst.status().label(), "approved");
//! assert_eq!(effects.len(), 1);
//! ```

pub mod context;
mod types;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::compile::{CompiledFlow, Target, VersionId};
use crate::diagnostic::did_you_mean;
use crate::expr::Value;
use crate::model::{Assignees, Mode, OnTimeout, Outcome, Step, StepKind};
use crate::sandbox::Bindings;

pub use context::ContextError;
pub use types::{
    Act, Assignee, ConditionRecord, Effect, Event, Pending, RuntimeError, Status, Visit,
    VisitStatus,
};

/// Automatic steps (skips, decisions, notifications, joins) one event may run through
/// before the instance stops with an incident: the compiler rejects automatic cycles, so
/// this bound only guards against what it cannot see.
pub const MAX_AUTOMATIC_STEPS: usize = 10_000;

/// The parallel branch a token runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Scope {
    join: u32,
    branch: usize,
}

/// A pending approval: who is asked, who has approved, whose turn it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Approval {
    slots: Vec<Assignee>,
    mode: Mode,
    approved: Vec<bool>,
    cursor: usize,
    timer: bool,
}

impl Approval {
    /// The slot an actor fills: a user slot by user, a role slot by the role named.
    fn slot(&self, user: &str, role: Option<&str>) -> Option<usize> {
        self.slots.iter().position(|s| match s {
            Assignee::User(u) => u == user,
            Assignee::Role(r) => Some(r.as_str()) == role,
        })
    }

    /// Who may act now (for `sequence`, only the current assignee).
    fn outstanding(&self) -> Vec<Assignee> {
        if self.mode == Mode::Sequence {
            return self.slots.get(self.cursor).cloned().into_iter().collect();
        }
        self.slots
            .iter()
            .zip(&self.approved)
            .filter(|(_, a)| !**a)
            .map(|(s, _)| s.clone())
            .collect()
    }
}

/// What a waiting token waits for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
enum Wait {
    Approval(Approval),
    Service { attempt: u32, timer: bool },
}

/// One point of control waiting at a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Token {
    step: usize,
    visit: usize,
    scope: Option<Scope>,
    wait: Wait,
}

/// An open parallel step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JoinState {
    id: u32,
    step: usize,
    visit: usize,
    any: bool,
    done: Vec<bool>,
    scope: Option<Scope>,
}

/// Everything an instance is, as data: serialise it (serde) to persist the instance and
/// [`Instance::restore`] it onto the same [`VersionId`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceState {
    /// The version the instance started on (and stays on).
    pub version: VersionId,
    /// The context, normalised (defaults filled in).
    pub context: serde_json::Value,
    /// Where it stands.
    pub status: Status,
    /// Every visit of a step, in order.
    pub trace: Vec<Visit>,
    tokens: Vec<Token>,
    joins: Vec<JoinState>,
    next_join: u32,
    now: u64,
}

/// A running (or finished) instance of one flow version.
#[derive(Debug, Clone)]
pub struct Instance {
    flow: Arc<CompiledFlow>,
    bindings: Bindings,
    state: InstanceState,
}

/// The effects of one step of the machine, and the work still to do.
struct Run<'a> {
    flow: &'a CompiledFlow,
    effects: Vec<Effect>,
    work: Vec<(Target, Option<Scope>)>,
}

fn step_id(flow: &CompiledFlow, i: usize) -> String {
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

impl Instance {
    /// Starts an instance: checks the context, then runs to the first wait.
    ///
    /// # Errors
    /// [`RuntimeError::Context`] when the context does not match the declaration (no
    /// instance is created).
    pub fn start(
        flow: Arc<CompiledFlow>,
        context: &serde_json::Value,
        at: u64,
    ) -> Result<(Instance, Vec<Effect>), RuntimeError> {
        let (context, bindings) = context::bind(&flow, context)?;
        let mut inst = Instance {
            state: InstanceState {
                version: flow.version().clone(),
                context,
                status: Status::Running,
                trace: Vec::new(),
                tokens: Vec::new(),
                joins: Vec::new(),
                next_join: 0,
                now: at,
            },
            bindings,
            flow,
        };
        let flow = Arc::clone(&inst.flow);
        let mut run = Run {
            flow: &flow,
            effects: Vec::new(),
            work: vec![(flow.entry(), None)],
        };
        inst.drive(&mut run);
        Ok((inst, run.effects))
    }

    /// Restores a persisted instance onto the version it started on.
    ///
    /// # Errors
    /// [`RuntimeError::VersionMismatch`] for any other version;
    /// [`RuntimeError::CorruptState`] when the state does not fit the flow.
    pub fn restore(flow: Arc<CompiledFlow>, state: InstanceState) -> Result<Self, RuntimeError> {
        if state.version != *flow.version() {
            return Err(RuntimeError::VersionMismatch {
                expected: state.version,
                got: flow.version().clone(),
            });
        }
        let (_, bindings) = context::bind(&flow, &state.context)
            .map_err(|e| RuntimeError::CorruptState(e.to_string()))?;
        let steps = flow.nodes().len();
        let visits = state.trace.len();
        let open_join =
            |s: &Option<Scope>| s.is_none_or(|s| state.joins.iter().any(|j| j.id == s.join));
        let bad_token = state
            .tokens
            .iter()
            .any(|t| t.step >= steps || t.visit >= visits || !open_join(&t.scope));
        let bad_join = state
            .joins
            .iter()
            .any(|j| j.step >= steps || j.visit >= visits || !open_join(&j.scope));
        let running_without_work = state.status == Status::Running && state.tokens.is_empty();
        if bad_token || bad_join || running_without_work {
            return Err(RuntimeError::CorruptState(
                "a waiting step or join points outside the flow, the trace or the open joins, or a running instance waits for nothing".to_owned(),
            ));
        }
        Ok(Self {
            flow,
            bindings,
            state,
        })
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

    /// What the instance is waiting for, in the order the steps were entered.
    #[must_use]
    pub fn pending(&self) -> Vec<Pending> {
        let mut tokens: Vec<&Token> = self.state.tokens.iter().collect();
        tokens.sort_by_key(|t| t.visit);
        tokens
            .into_iter()
            .map(|t| {
                let since = self.state.trace.get(t.visit).map_or(0, |v| v.entered_at);
                let step = step_id(&self.flow, t.step);
                match &t.wait {
                    Wait::Approval(a) => Pending {
                        step,
                        assignees: a.outstanding(),
                        mode: Some(a.mode),
                        since,
                    },
                    Wait::Service { .. } => Pending {
                        step,
                        assignees: Vec::new(),
                        mode: None,
                        since,
                    },
                }
            })
            .collect()
    }

    /// In words: where a step stands and how the instance got there (the visits before
    /// its latest visit, with the rules, conditions and decisions that led on).
    /// `None` when the step was never entered.
    #[must_use]
    pub fn explain(&self, step: &str) -> Option<String> {
        use std::fmt::Write as _;
        let at = self.state.trace.iter().rposition(|v| v.step == step)?;
        let visit = self.state.trace.get(at)?;
        let mut out = String::new();
        let label = |s: VisitStatus| {
            serde_json::to_value(s)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        };
        if visit.status == VisitStatus::Pending {
            let waiting_for = self
                .pending()
                .into_iter()
                .find(|p| p.step == step)
                .map(|p| list(&p.assignees))
                .unwrap_or_default();
            let _ = write!(
                out,
                "`{step}` is pending since t={}: waiting for {}",
                visit.entered_at,
                if waiting_for.is_empty() {
                    "the service"
                } else {
                    waiting_for.as_str()
                }
            );
        } else {
            let _ = write!(
                out,
                "`{step}` is {} (t={})",
                label(visit.status),
                visit.ended_at.unwrap_or(visit.entered_at)
            );
        }
        let _ = writeln!(out, ".");
        for v in self.state.trace.iter().take(at) {
            let _ = write!(out, "  - `{}` {}", v.step, label(v.status));
            if let Some(r) = v.rule {
                let _ = write!(out, " by rule {r}");
            } else if v.note.as_deref() == Some("no rule held: default") {
                out.push_str(" by default (no rule held)");
            }
            if let Some(c) = &v.condition {
                let value = match (&c.value, &c.error) {
                    (Some(b), _) => b.to_string(),
                    (None, Some(e)) => format!("error: {e}"),
                    (None, None) => "?".to_owned(),
                };
                let _ = write!(
                    out,
                    ": `{}` (line {}, column {}) was {value}",
                    c.text, c.line, c.column
                );
            }
            for a in &v.acts {
                let _ = write!(out, "; {} by {}", a.action, a.by);
                if let Some(r) = &a.role {
                    let _ = write!(out, " as {r}");
                }
                let _ = write!(out, " at t={}", a.at);
            }
            out.push('\n');
        }
        Some(out)
    }

    /// Applies one event at logical time `at`.
    ///
    /// # Errors
    /// An event that does not fit the state; the instance is then unchanged.
    pub fn apply(&mut self, event: &Event, at: u64) -> Result<Vec<Effect>, RuntimeError> {
        if self.state.status != Status::Running {
            return Err(RuntimeError::Finished {
                status: self.state.status.label(),
            });
        }
        if at < self.state.now {
            return Err(RuntimeError::TimeBackwards {
                at,
                last: self.state.now,
            });
        }
        let flow = Arc::clone(&self.flow);
        let mut run = Run {
            flow: &flow,
            effects: Vec::new(),
            work: Vec::new(),
        };
        match event {
            Event::Cancel { reason } => {
                self.state.now = at;
                self.cancel_all(&mut run, reason.as_deref().unwrap_or("instance cancelled"));
                self.state.status = Status::Cancelled;
                run.effects.push(Effect::Cancelled);
                return Ok(run.effects);
            }
            Event::Approve { step, user, role } => {
                let t = self.token_for(step, "approve")?;
                self.check_decision(t, step, user, role.as_deref())?;
                self.state.now = at;
                self.approve(&mut run, t, user, role.as_deref());
            }
            Event::Reject {
                step,
                user,
                role,
                comment,
            } => {
                let t = self.token_for(step, "reject")?;
                self.check_decision(t, step, user, role.as_deref())?;
                self.state.now = at;
                self.reject(&mut run, t, user, role.as_deref(), comment.clone());
            }
            Event::AddSigner {
                step,
                user,
                role,
                signer,
            } => {
                let t = self.token_for(step, "add-signer")?;
                self.check_add_signer(t, step, user, role.as_deref(), signer)?;
                self.state.now = at;
                self.add_signer(&mut run, t, user, role.as_deref(), signer);
            }
            Event::ServiceOk { step } => {
                let t = self.token_for(step, "service-ok")?;
                self.state.now = at;
                self.act(t, "service-ok", "service", None, None);
                self.pass(&mut run, t, VisitStatus::Completed, None);
            }
            Event::ServiceError { step, error } => {
                let t = self.token_for(step, "service-error")?;
                self.state.now = at;
                self.service_error(&mut run, t, error);
            }
            Event::Timeout { step } => {
                let t = self.token_for(step, "timeout")?;
                self.state.now = at;
                self.timeout(&mut run, t);
            }
        }
        self.drive(&mut run);
        Ok(run.effects)
    }

    // ---- validation (no mutation) ----

    /// The index of the token waiting at `step` for an event of kind `event`.
    fn token_for(&self, step: &str, event: &'static str) -> Result<usize, RuntimeError> {
        let Some(index) = self.flow.step_index(step) else {
            let ids: Vec<&str> = self
                .flow
                .nodes()
                .iter()
                .enumerate()
                .filter_map(|(i, _)| self.flow.step(i).map(|s| s.id.value.as_str()))
                .collect();
            return Err(RuntimeError::UnknownStep {
                step: step.to_owned(),
                help: match did_you_mean(step, ids) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => self.pending_help(),
                },
            });
        };
        let fits = |t: &Token| match (&t.wait, event) {
            (Wait::Approval(_), "approve" | "reject" | "add-signer")
            | (Wait::Service { .. }, "service-ok" | "service-error") => true,
            (Wait::Approval(Approval { timer, .. }) | Wait::Service { timer, .. }, "timeout") => {
                *timer
            }
            _ => false,
        };
        self.state
            .tokens
            .iter()
            .position(|t| t.step == index && fits(t))
            .ok_or_else(|| RuntimeError::NotPending {
                step: step.to_owned(),
                event,
                help: self.pending_help(),
            })
    }

    fn pending_help(&self) -> String {
        let p = self.pending();
        if p.is_empty() {
            return "nothing is pending".to_owned();
        }
        let steps: Vec<String> = p.iter().map(|p| format!("`{}`", p.step)).collect();
        format!("pending: {}", steps.join(", "))
    }

    fn approval(&self, t: usize) -> Result<&Approval, RuntimeError> {
        match self.state.tokens.get(t).map(|tok| &tok.wait) {
            Some(Wait::Approval(a)) => Ok(a),
            _ => Err(RuntimeError::CorruptState(
                "the pending approval vanished".to_owned(),
            )),
        }
    }

    fn approval_mut(&mut self, t: usize) -> Option<&mut Approval> {
        match self.state.tokens.get_mut(t).map(|tok| &mut tok.wait) {
            Some(Wait::Approval(a)) => Some(a),
            _ => None,
        }
    }

    fn check_decision(
        &self,
        t: usize,
        step: &str,
        user: &str,
        role: Option<&str>,
    ) -> Result<(), RuntimeError> {
        let a = self.approval(t)?;
        let Some(k) = a.slot(user, role) else {
            return Err(RuntimeError::NotAssignee {
                step: step.to_owned(),
                user: user.to_owned(),
                assignees: list(&a.slots),
            });
        };
        if a.approved.get(k).copied().unwrap_or(false) {
            return Err(RuntimeError::DuplicateDecision {
                step: step.to_owned(),
                assignee: a.slots.get(k).map(ToString::to_string).unwrap_or_default(),
            });
        }
        if a.mode == Mode::Sequence && k != a.cursor {
            return Err(RuntimeError::NotYourTurn {
                step: step.to_owned(),
                user: user.to_owned(),
                current: a
                    .slots
                    .get(a.cursor)
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            });
        }
        Ok(())
    }

    fn check_add_signer(
        &self,
        t: usize,
        step: &str,
        user: &str,
        role: Option<&str>,
        signer: &str,
    ) -> Result<(), RuntimeError> {
        let allowed = self
            .state
            .tokens
            .get(t)
            .and_then(|tok| self.flow.step(tok.step))
            .is_some_and(|s| {
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
        let a = self.approval(t)?;
        if a.slot(user, role).is_none() {
            return Err(RuntimeError::NotAssignee {
                step: step.to_owned(),
                user: user.to_owned(),
                assignees: list(&a.slots),
            });
        }
        if a.slots
            .iter()
            .any(|s| matches!(s, Assignee::User(u) if u == signer))
        {
            return Err(RuntimeError::DuplicateSigner {
                step: step.to_owned(),
                signer: signer.to_owned(),
            });
        }
        Ok(())
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

    /// The token's step passes: close its visit and continue at `next`.
    fn pass(&mut self, run: &mut Run<'_>, t: usize, status: VisitStatus, note: Option<String>) {
        if t >= self.state.tokens.len() {
            return;
        }
        let tok = self.state.tokens.remove(t);
        self.close(tok.visit, status, note);
        if let Some(node) = run.flow.nodes().get(tok.step) {
            run.work.push((node.next, tok.scope));
        }
    }

    fn approve(&mut self, run: &mut Run<'_>, t: usize, user: &str, role: Option<&str>) {
        self.act(t, "approve", user, role, None);
        let Some(step) = self.state.tokens.get(t).map(|tok| tok.step) else {
            return;
        };
        let Some(a) = self.approval_mut(t) else {
            return;
        };
        if let Some(k) = a.slot(user, role)
            && let Some(x) = a.approved.get_mut(k)
        {
            *x = true;
        }
        let done = match a.mode {
            Mode::Single | Mode::Any => true,
            Mode::All => a.approved.iter().all(|x| *x),
            Mode::Sequence => {
                a.cursor += 1;
                a.cursor >= a.slots.len()
            }
        };
        let others_open = matches!(a.mode, Mode::Single | Mode::Any) && a.slots.len() > 1;
        let next_in_sequence = if a.mode == Mode::Sequence && !done {
            a.slots.get(a.cursor).cloned()
        } else {
            None
        };
        if done {
            if others_open {
                run.effects.push(Effect::CancelTasks {
                    step: step_id(run.flow, step),
                });
            }
            self.pass(run, t, VisitStatus::Completed, None);
        } else if let Some(next) = next_in_sequence {
            run.effects.push(Effect::CreateTask {
                step: step_id(run.flow, step),
                assignees: vec![next],
            });
        }
    }

    fn reject(
        &mut self,
        run: &mut Run<'_>,
        t: usize,
        user: &str,
        role: Option<&str>,
        comment: Option<String>,
    ) {
        self.act(t, "reject", user, role, comment);
        let Some(tok) = self.state.tokens.get(t) else {
            return;
        };
        // other assignees still hold open tasks (a sequence's later ones have none yet)
        if let Wait::Approval(a) = &tok.wait
            && a.mode != Mode::Sequence
            && a.approved.iter().filter(|x| !**x).count() > 1
        {
            run.effects.push(Effect::CancelTasks {
                step: step_id(run.flow, tok.step),
            });
        }
        self.rejected(run, t, VisitStatus::Rejected, None);
    }

    /// The token's step rejects: `onReject` if set, else the instance is rejected.
    fn rejected(&mut self, run: &mut Run<'_>, t: usize, status: VisitStatus, note: Option<String>) {
        if t >= self.state.tokens.len() {
            return;
        }
        let tok = self.state.tokens.remove(t);
        self.close(tok.visit, status, note);
        match run.flow.nodes().get(tok.step).and_then(|n| n.on_reject) {
            Some(target) => run.work.push((target, tok.scope)),
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
        let added = Assignee::User(signer.to_owned());
        if a.mode == Mode::Sequence {
            // the added signer decides right after the current assignee
            let at = (a.cursor + 1).min(a.slots.len());
            a.slots.insert(at, added);
            a.approved.insert(at, false);
        } else {
            a.slots.push(added.clone());
            a.approved.push(false);
            run.effects.push(Effect::CreateTask {
                step: step_id(run.flow, step),
                assignees: vec![added],
            });
        }
        let slots = a.slots.clone();
        if let Some(v) = self.visit_mut(visit) {
            v.assignees = slots;
        }
    }

    fn service_error(&mut self, run: &mut Run<'_>, t: usize, error: &str) {
        self.act(t, "service-error", "service", None, Some(error.to_owned()));
        let Some(tok) = self.state.tokens.get_mut(t) else {
            return;
        };
        let Some(Step {
            id,
            kind:
                StepKind::ServiceTask {
                    service,
                    timeout,
                    retry,
                    ..
                },
            ..
        }) = run.flow.step(tok.step)
        else {
            return;
        };
        let Wait::Service { attempt, timer } = &mut tok.wait else {
            return;
        };
        let max = retry.as_ref().map_or(0, |r| r.max);
        if *attempt <= max {
            *attempt += 1;
            *timer = timeout.is_some();
            run.effects.push(Effect::CallService {
                step: id.value.clone(),
                service: service.value.clone(),
                attempt: *attempt,
                delay_secs: retry.as_ref().and_then(|r| r.backoff_secs).unwrap_or(0),
                timeout_secs: timeout.as_ref().map(|t| t.value),
            });
            return;
        }
        let note = format!("failed after {attempt} attempt(s): {error}");
        let on_error = run.flow.nodes().get(tok.step).and_then(|n| n.on_error);
        if let Some(target) = on_error {
            let tok = self.state.tokens.remove(t);
            self.close(tok.visit, VisitStatus::Error, Some(note));
            run.work.push((target, tok.scope));
        } else {
            let step = id.value.clone();
            self.incident_at_token(run, t, &step, note);
        }
    }

    fn timeout(&mut self, run: &mut Run<'_>, t: usize) {
        let Some(tok) = self.state.tokens.get_mut(t) else {
            return;
        };
        let step_index = tok.step;
        match &mut tok.wait {
            Wait::Service { timer, .. } => {
                *timer = false;
                self.service_error(run, t, "timed out");
                return;
            }
            Wait::Approval(a) => a.timer = false,
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
        let cancel = Effect::CancelTasks {
            step: id.value.clone(),
        };
        match on_timeout.as_ref().map(|o| &o.value) {
            Some(OnTimeout::Escalate) => {
                run.effects.push(cancel);
                self.escalate(run, t, &id.value, escalate_to.as_ref());
            }
            Some(OnTimeout::Approve) => {
                run.effects.push(cancel);
                self.pass(
                    run,
                    t,
                    VisitStatus::Completed,
                    Some("approved on timeout".to_owned()),
                );
            }
            Some(OnTimeout::Reject) => {
                run.effects.push(cancel);
                let tok = self.state.tokens.remove(t);
                self.close(
                    tok.visit,
                    VisitStatus::Rejected,
                    Some("rejected on timeout".to_owned()),
                );
                self.finish(run, Outcome::Rejected);
            }
            Some(OnTimeout::Goto(target)) => {
                run.effects.push(cancel);
                let tok = self.state.tokens.remove(t);
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
                run.work.push((target, tok.scope));
            }
            None => {
                run.effects.push(cancel);
                self.incident_at_token(
                    run,
                    t,
                    &id.value,
                    "timed out and the step has no `onTimeout`".to_owned(),
                );
            }
        }
    }

    /// Hands a timed-out approval to `escalateTo` (once: the new task has no timer).
    fn escalate(&mut self, run: &mut Run<'_>, t: usize, step: &str, to: Option<&Assignees>) {
        let key = format!("{step}#escalate");
        let resolved = to
            .ok_or_else(|| "`escalate` without `escalateTo`".to_owned())
            .and_then(|a| self.resolve(run.flow, a, &key));
        let new = match resolved {
            Ok(new) => new,
            Err(e) => return self.incident_at_token(run, t, step, e),
        };
        run.effects.push(Effect::CreateTask {
            step: step.to_owned(),
            assignees: new.clone(),
        });
        self.act(t, "escalate", "timer", None, Some(list(&new)));
        let visit = self.state.tokens.get(t).map(|tok| tok.visit);
        if let Some(a) = self.approval_mut(t) {
            // the new assignees decide as one group (a sequence restarts as `any`)
            a.approved = vec![false; new.len()];
            a.cursor = 0;
            if a.mode == Mode::Sequence {
                a.mode = Mode::Any;
            }
            a.slots.clone_from(&new);
        }
        if let Some(v) = visit.and_then(|v| self.visit_mut(v)) {
            v.assignees = new;
        }
    }

    /// Evaluates an assignee declaration against the context.
    fn resolve(
        &mut self,
        flow: &CompiledFlow,
        a: &Assignees,
        key: &str,
    ) -> Result<Vec<Assignee>, String> {
        let mut out: Vec<Assignee> = match a {
            Assignees::Role(r) => vec![Assignee::Role(r.value.clone())],
            Assignees::User(u) => vec![Assignee::User(u.value.clone())],
            Assignees::Users(us) => us.iter().map(|u| Assignee::User(u.value.clone())).collect(),
            Assignees::Expr(src) => {
                let expression = flow
                    .assignee_expression(key)
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
        let mut seen = std::collections::HashSet::new();
        out.retain(|x| seen.insert(x.clone()));
        if out.is_empty() {
            return Err(format!("step `{key}` has no assignees at run time"));
        }
        Ok(out)
    }

    /// Runs automatic steps until every token waits or the instance ends.
    fn drive(&mut self, run: &mut Run<'_>) {
        let mut budget = MAX_AUTOMATIC_STEPS;
        while let Some((target, scope)) = run.work.pop() {
            if self.state.status != Status::Running {
                run.work.clear();
                return;
            }
            // work left over from a branch that a join `any` (or an end) has closed
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
                Target::Step(i) => self.enter(run, i, scope),
            }
        }
    }

    fn new_visit(&mut self, step: &Step) -> usize {
        self.state.trace.push(Visit {
            step: step.id.value.clone(),
            status: VisitStatus::Pending,
            rule: None,
            condition: None,
            assignees: Vec::new(),
            acts: Vec::new(),
            note: None,
            entered_at: self.state.now,
            ended_at: None,
        });
        self.state.trace.len() - 1
    }

    #[expect(
        clippy::too_many_lines,
        reason = "one arm per step type, each short; splitting them scatters the machine"
    )]
    fn enter(&mut self, run: &mut Run<'_>, i: usize, scope: Option<Scope>) {
        let flow = run.flow;
        let (Some(step), Some(node)) = (flow.step(i), flow.nodes().get(i)) else {
            return;
        };
        let visit = self.new_visit(step);
        if let (Some(cond), Some(src)) = (flow.skip_condition(&step.id.value), &step.skip) {
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
            // fail closed: an error in a skip condition means do not skip
            if r == Ok(true) {
                self.close(visit, VisitStatus::Skipped, None);
                run.work.push((node.next, scope));
                return;
            }
        }
        match &step.kind {
            StepKind::Approval {
                assignees,
                mode,
                timeout,
                ..
            } => match self.resolve(flow, assignees, &step.id.value) {
                Ok(slots) => {
                    let first = if *mode == Mode::Sequence {
                        slots.iter().take(1).cloned().collect()
                    } else {
                        slots.clone()
                    };
                    run.effects.push(Effect::CreateTask {
                        step: step.id.value.clone(),
                        assignees: first,
                    });
                    if let Some(t) = timeout {
                        run.effects.push(Effect::StartTimer {
                            step: step.id.value.clone(),
                            after_secs: t.value,
                        });
                    }
                    if let Some(v) = self.visit_mut(visit) {
                        v.assignees.clone_from(&slots);
                    }
                    self.state.tokens.push(Token {
                        step: i,
                        visit,
                        scope,
                        wait: Wait::Approval(Approval {
                            approved: vec![false; slots.len()],
                            slots,
                            mode: *mode,
                            cursor: 0,
                            timer: timeout.is_some(),
                        }),
                    });
                }
                Err(e) => {
                    self.close(visit, VisitStatus::Error, None);
                    self.incident(run, &step.id.value, e);
                }
            },
            StepKind::ServiceTask {
                service, timeout, ..
            } => {
                run.effects.push(Effect::CallService {
                    step: step.id.value.clone(),
                    service: service.value.clone(),
                    attempt: 1,
                    delay_secs: 0,
                    timeout_secs: timeout.as_ref().map(|t| t.value),
                });
                self.state.tokens.push(Token {
                    step: i,
                    visit,
                    scope,
                    wait: Wait::Service {
                        attempt: 1,
                        timer: timeout.is_some(),
                    },
                });
            }
            StepKind::Decision { rules, .. } => {
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
                                let (line, column) =
                                    flow.flow().file.line_col(rule.when.span.start);
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
                            run.work.push((*t, scope));
                        }
                    }
                    Ok(None) => {
                        if let Some(t) = node.default {
                            self.close(
                                visit,
                                VisitStatus::Completed,
                                Some("no rule held: default".to_owned()),
                            );
                            run.work.push((t, scope));
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
                                let (line, column) =
                                    flow.flow().file.line_col(rule.when.span.start);
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
                    run.work.push((node.next, scope));
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
                    ));
                }
            }
            StepKind::Notify { to, message } => match self.resolve(flow, to, &step.id.value) {
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
                    run.work.push((node.next, scope));
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
            run.work.push((node.next, scope));
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
                let t = self.state.tokens.remove(k);
                self.withdraw(run, &t, why);
            } else {
                k += 1;
            }
        }
    }

    fn withdraw(&mut self, run: &mut Run<'_>, t: &Token, why: &str) {
        if matches!(t.wait, Wait::Approval(_)) {
            run.effects.push(Effect::CancelTasks {
                step: step_id(run.flow, t.step),
            });
        }
        self.close(t.visit, VisitStatus::Cancelled, Some(why.to_owned()));
    }

    /// Withdraws every waiting token and open join.
    fn cancel_all(&mut self, run: &mut Run<'_>, why: &str) {
        let mut tokens = std::mem::take(&mut self.state.tokens);
        tokens.sort_by_key(|t| t.visit);
        for t in &tokens {
            self.withdraw(run, t, why);
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
        if t < self.state.tokens.len() {
            let tok = self.state.tokens.remove(t);
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
    /// outstanding assignee (a role's task by the user `auto` acting in that role).
    /// Each event gets the next logical time after `at`. Returns the events applied.
    ///
    /// # Errors
    /// Only an internal inconsistency (an answer the instance refuses).
    pub fn auto_answer(
        &mut self,
        auto: Auto,
        mut at: u64,
        max_events: usize,
    ) -> Result<Vec<Event>, RuntimeError> {
        let mut applied = Vec::new();
        while applied.len() < max_events && self.state.status == Status::Running {
            let Some(p) = self.pending().into_iter().next() else {
                break;
            };
            let event = match (p.mode, p.assignees.first()) {
                (None, _) => Event::ServiceOk { step: p.step },
                (Some(_), first) => {
                    let (user, role) = match first {
                        Some(Assignee::User(u)) => (u.clone(), None),
                        Some(Assignee::Role(r)) => ("auto".to_owned(), Some(r.clone())),
                        None => break,
                    };
                    match auto {
                        Auto::Approve => Event::Approve {
                            step: p.step,
                            user,
                            role,
                        },
                        Auto::Reject => Event::Reject {
                            step: p.step,
                            user,
                            role,
                            comment: None,
                        },
                    }
                }
            };
            at = at.max(self.state.now) + 1;
            self.apply(&event, at)?;
            applied.push(event);
        }
        Ok(applied)
    }
}
