//! The runtime's vocabulary: events in, effects out, the trace, and the typed errors.

use serde::{Deserialize, Serialize};

use crate::compile::VersionId;
use crate::model::{Mode, Outcome};

use super::context::ContextError;

/// Someone a task is for: a role the host resolves, or one user.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Assignee {
    /// A role (any member may act, the event names the role).
    Role(String),
    /// One user.
    User(String),
}

impl std::fmt::Display for Assignee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Assignee::Role(r) => write!(f, "role `{r}`"),
            Assignee::User(u) => write!(f, "user `{u}`"),
        }
    }
}

/// The id of one task (one assignee's work item at one visit of an approval step).
///
/// Ids are numbers unique within an instance and deterministic: replaying the same
/// events on the same version gives the same ids. Hosts key them by instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(pub u32);

/// The id of one timer (an approval's `timeout`, or one service call's timeout).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TimerId(pub u32);

/// The id of one service call attempt (each retry gets a new one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CallId(pub u32);

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "task {}", self.0)
    }
}

impl std::fmt::Display for TimerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "timer {}", self.0)
    }
}

impl std::fmt::Display for CallId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "call {}", self.0)
    }
}

/// One task of a [`Effect::CreateTask`]: its id and who it is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRef {
    /// The task's id (answers may name it).
    pub task: TaskId,
    /// Who it is for.
    pub assignee: Assignee,
}

/// Why a task, timer or call stopped being live (in [`Effect::CloseTask`] and in
/// [`RuntimeError::Stale`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Gone {
    /// Its answer came: the assignee approved.
    Approved,
    /// Its answer came: the assignee rejected.
    Rejected,
    /// The timer fired.
    Fired,
    /// The call's answer came (ok or error).
    Answered,
    /// The step's visit ended another way (decided by others, timed out, passed).
    StepEnded,
    /// The task was handed to `escalateTo`.
    Escalated,
    /// The call's timer fired before its answer.
    TimedOut,
    /// The branch lost a `join: any`, or the instance ended, was cancelled or stopped on
    /// an incident.
    Withdrawn,
}

impl std::fmt::Display for Gone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Gone::Approved => "its assignee approved",
            Gone::Rejected => "its assignee rejected",
            Gone::Fired => "it fired",
            Gone::Answered => "its answer was applied",
            Gone::StepEnded => "its step's visit ended",
            Gone::Escalated => "the task was escalated",
            Gone::TimedOut => "the call timed out",
            Gone::Withdrawn => "it was withdrawn (branch lost, or the instance ended)",
        })
    }
}

/// What the host tells an instance.
///
/// Answers name what they answer: a `timeout` its [`TimerId`], a service result its
/// [`CallId`]; approve, reject and add-signer name the step and the user (and may name
/// the [`TaskId`]). Deliver with [`Instance::apply_once`](super::Instance::apply_once)
/// and an id to make redelivery harmless.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
#[non_exhaustive]
pub enum Event {
    /// An assignee approves.
    Approve {
        /// The approval step.
        step: String,
        /// Who acts.
        user: String,
        /// The role they act in, when the task is for a role.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<String>,
        /// The task answered (optional: found by step and user otherwise).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task: Option<TaskId>,
        /// A comment (kept in the trace).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
    },
    /// An assignee rejects.
    Reject {
        /// The approval step.
        step: String,
        /// Who acts.
        user: String,
        /// The role they act in.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<String>,
        /// The task answered (optional).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task: Option<TaskId>,
        /// Why (kept in the trace).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
    },
    /// A current assignee adds a signer to a pending approval (`allowAddSigner`).
    AddSigner {
        /// The approval step.
        step: String,
        /// Who adds.
        user: String,
        /// The role they act in.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<String>,
        /// The adder's task (optional).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task: Option<TaskId>,
        /// The user added.
        signer: String,
    },
    /// A service call succeeded.
    ServiceOk {
        /// The call answered (from [`Effect::CallService`]).
        call: CallId,
    },
    /// A service call failed.
    ServiceError {
        /// The call answered.
        call: CallId,
        /// The host's error text (kept in the trace).
        #[serde(default)]
        error: String,
    },
    /// A timer fired (at or after its `dueAt`).
    Timeout {
        /// The timer (from [`Effect::StartTimer`]).
        timer: TimerId,
    },
    /// The instance is withdrawn.
    Cancel {
        /// Why (kept in the trace).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

impl Event {
    /// `user` approves `step`.
    #[must_use]
    pub fn approve(step: &str, user: &str) -> Self {
        Event::Approve {
            step: step.to_owned(),
            user: user.to_owned(),
            role: None,
            task: None,
            comment: None,
        }
    }

    /// `user` approves `step` acting in `role`.
    #[must_use]
    pub fn approve_as(step: &str, user: &str, role: &str) -> Self {
        Event::Approve {
            step: step.to_owned(),
            user: user.to_owned(),
            role: Some(role.to_owned()),
            task: None,
            comment: None,
        }
    }

    /// `user` rejects `step`.
    #[must_use]
    pub fn reject(step: &str, user: &str) -> Self {
        Event::Reject {
            step: step.to_owned(),
            user: user.to_owned(),
            role: None,
            task: None,
            comment: None,
        }
    }

    /// `user` rejects `step` acting in `role`.
    #[must_use]
    pub fn reject_as(step: &str, user: &str, role: &str) -> Self {
        Event::Reject {
            step: step.to_owned(),
            user: user.to_owned(),
            role: Some(role.to_owned()),
            task: None,
            comment: None,
        }
    }

    /// `user` adds `signer` to `step`.
    #[must_use]
    pub fn add_signer(step: &str, user: &str, signer: &str) -> Self {
        Event::AddSigner {
            step: step.to_owned(),
            user: user.to_owned(),
            role: None,
            task: None,
            signer: signer.to_owned(),
        }
    }

    /// The timer fired.
    #[must_use]
    pub fn timeout(timer: TimerId) -> Self {
        Event::Timeout { timer }
    }

    /// The call succeeded.
    #[must_use]
    pub fn service_ok(call: CallId) -> Self {
        Event::ServiceOk { call }
    }

    /// The call failed.
    #[must_use]
    pub fn service_error(call: CallId, error: &str) -> Self {
        Event::ServiceError {
            call,
            error: error.to_owned(),
        }
    }

    /// The instance is cancelled.
    #[must_use]
    pub fn cancel(reason: Option<&str>) -> Self {
        Event::Cancel {
            reason: reason.map(str::to_owned),
        }
    }

    /// The kind, as in JSON (`approve`, `timeout`, ...).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Approve { .. } => "approve",
            Event::Reject { .. } => "reject",
            Event::AddSigner { .. } => "add-signer",
            Event::ServiceOk { .. } => "service-ok",
            Event::ServiceError { .. } => "service-error",
            Event::Timeout { .. } => "timeout",
            Event::Cancel { .. } => "cancel",
        }
    }
}

/// What the host must do. Everything that expects an answer carries an id, and
/// everything that stops being live is withdrawn by an effect naming that id: a host that
/// does exactly what the effects say holds no orphan task, timer or call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
#[non_exhaustive]
pub enum Effect {
    /// Create one task per assignee.
    CreateTask {
        /// The approval step.
        step: String,
        /// The tasks, each with its id.
        tasks: Vec<TaskRef>,
    },
    /// Close a task: its assignee acted, or it is no longer needed.
    CloseTask {
        /// The task.
        task: TaskId,
        /// Its step.
        step: String,
        /// Why.
        reason: Gone,
    },
    /// Start a timer; when it is due, send [`Event::Timeout`] naming it.
    StartTimer {
        /// The timer.
        timer: TimerId,
        /// Its step.
        step: String,
        /// When it is due: an absolute logical time in seconds, on the same clock as
        /// the `at` of events.
        due_at: u64,
    },
    /// Cancel a timer that has not fired: it must not be delivered.
    CancelTimer {
        /// The timer.
        timer: TimerId,
        /// Its step.
        step: String,
    },
    /// Call a service; answer with [`Event::ServiceOk`] or [`Event::ServiceError`]
    /// naming the call.
    CallService {
        /// This attempt's id.
        call: CallId,
        /// The service-task step.
        step: String,
        /// The service name.
        service: String,
        /// 1 for the first call, then each retry.
        attempt: u32,
        /// Wait this long before calling (the retry backoff), in seconds.
        delay_secs: u64,
        /// The call's timeout in seconds, if declared (a [`Effect::StartTimer`] for it
        /// follows).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_secs: Option<u64>,
    },
    /// Abandon a call whose answer is no longer wanted.
    CancelService {
        /// The call.
        call: CallId,
        /// Its step.
        step: String,
    },
    /// Send a notification.
    Notify {
        /// The notify step.
        step: String,
        /// Recipients.
        to: Vec<Assignee>,
        /// The message, if declared.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// The instance ended.
    Complete {
        /// Its outcome.
        outcome: Outcome,
    },
    /// The instance was cancelled.
    Cancelled,
    /// The instance stopped on a problem a person must look at.
    Incident {
        /// The step it stopped at.
        step: String,
        /// What happened.
        message: String,
    },
}

/// What one [`Instance::apply_once`](super::Instance::apply_once) did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Applied {
    /// The event was applied; carry out these effects.
    Effects(Vec<Effect>),
    /// An event with this id was already applied (at the logical time given): nothing
    /// changed and there is nothing to do.
    Duplicate {
        /// When the first delivery was applied.
        at: u64,
    },
}

/// Where an instance stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
#[serde(
    tag = "state",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum Status {
    /// Waiting for events.
    Running,
    /// Ended with an outcome.
    Completed {
        /// The outcome.
        outcome: Outcome,
    },
    /// Cancelled by an event.
    Cancelled,
    /// Stopped on an incident.
    Incident {
        /// The step.
        step: String,
        /// What happened.
        message: String,
    },
}

impl Status {
    /// The status as the CLI prints it (`approved`, `rejected`, `pending`, ...).
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self {
            Status::Running => "pending",
            Status::Completed {
                outcome: Outcome::Approved,
            } => "approved",
            Status::Completed {
                outcome: Outcome::Rejected,
            } => "rejected",
            Status::Cancelled => "cancelled",
            Status::Incident { .. } => "incident",
        }
    }
}

/// How one visit of a step ended (or that it has not yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum VisitStatus {
    /// Passed (approved, decided, called, sent, joined, ended).
    Completed,
    /// `skipCondition` held.
    Skipped,
    /// Rejected by an assignee or a timeout.
    Rejected,
    /// Waiting.
    Pending,
    /// Withdrawn (join `any`, instance end, cancel, timeout goto).
    Cancelled,
    /// A run-time error (service error, rule error, assignee error).
    Error,
}

/// A condition as it was evaluated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionRecord {
    /// The condition text.
    pub text: String,
    /// Its value, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<bool>,
    /// The run-time error, if it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Where the condition is written in the flow file (1-based).
    pub line: usize,
    /// Its column (1-based).
    pub column: usize,
}

/// One act on a visit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Act {
    /// `approve`, `reject`, `add-signer`, `timeout`, `escalate`, `service-ok`,
    /// `service-error`.
    pub action: String,
    /// Who (a user, or `timer`/`service`).
    pub by: String,
    /// The role they acted in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// A comment, signer, error text or escalation target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The logical time of the event.
    pub at: u64,
}

/// The way a decision routed ([`Visit::route`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Rule `n` (1-based, as in diagnostics) held.
    Rule(usize),
    /// No rule held: the decision's `default`.
    Default,
}

impl Visit {
    /// How a decision routed: a rule or its `default`; `None` for any other visit (and
    /// for a decision that failed or is not finished).
    #[must_use]
    pub fn route(&self) -> Option<Route> {
        match (self.rule, self.by_default) {
            (Some(n), _) => Some(Route::Rule(n)),
            (None, true) => Some(Route::Default),
            (None, false) => None,
        }
    }
}

/// One entry of the trace: a step entered once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Visit {
    /// The step id.
    pub step: String,
    /// How the visit ended, or `pending`.
    pub status: VisitStatus,
    /// The matched decision rule (1-based, as in diagnostics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<usize>,
    /// True when no rule of a decision held and it took its `default` (JSON
    /// `"byDefault": true`, absent otherwise). [`Visit::route`] reads both as one value.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub by_default: bool,
    /// The `skipCondition` or the matched rule's `when`, with its value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<ConditionRecord>,
    /// Who is (or was) asked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assignees: Vec<Assignee>,
    /// Decisions and other acts, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acts: Vec<Act>,
    /// Why it ended the way it did, in words (incident, cancellation, timeout, failure):
    /// for people to read; a program reads `status` and `route`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The visit whose end led here (an index into the trace; `None` for the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<usize>,
    /// Logical time entered.
    pub entered_at: u64,
    /// Logical time it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<u64>,
}

/// A pending approval or service call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pending {
    /// The step.
    pub step: String,
    /// Who may act now (for `sequence`, only the current assignee).
    pub assignees: Vec<Assignee>,
    /// The approval mode (`None` for service tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// The open tasks, with their ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<TaskRef>,
    /// The running timer and when it is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timer: Option<(TimerId, u64)>,
    /// The outstanding service call (service tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<CallId>,
    /// Logical time the step was entered.
    pub since: u64,
}

/// Every task, timer and call an instance holds open: what a host that carried out
/// every effect holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outstanding {
    /// Open tasks.
    pub tasks: Vec<TaskId>,
    /// Running timers.
    pub timers: Vec<TimerId>,
    /// Outstanding calls.
    pub calls: Vec<CallId>,
}

/// An event that does not fit the instance, or a context or state that does not fit the
/// flow. Nothing changes when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The context does not match the declaration.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Context(#[from] ContextError),
    /// The instance has ended.
    #[error("the instance is {}; it takes no more events", status.label())]
    #[diagnostic(
        code("flowc::runtime::finished"),
        help("start a new instance to decide again")
    )]
    Finished {
        /// How it ended.
        status: Status,
    },
    /// The event names a step the flow does not have.
    #[error("the flow has no step `{step}`")]
    #[diagnostic(code("flowc::runtime::unknown-step"), help("{help}"))]
    UnknownStep {
        /// The step named.
        step: String,
        /// Did-you-mean or the pending steps.
        help: String,
    },
    /// The step exists but is not waiting for this event.
    #[error("step `{step}` is not waiting for `{event}`")]
    #[diagnostic(code("flowc::runtime::not-pending"), help("{help}"))]
    NotPending {
        /// The step.
        step: String,
        /// The event kind.
        event: &'static str,
        /// What is pending.
        help: String,
    },
    /// The user is not an assignee of the pending task.
    #[error("`{user}` is not an assignee of step `{step}`")]
    #[diagnostic(
        code("flowc::runtime::not-assignee"),
        help(
            "the step is assigned to {assignees}; a role's member must name the role in the event"
        )
    )]
    NotAssignee {
        /// The step.
        step: String,
        /// Who tried.
        user: String,
        /// Who may act.
        assignees: String,
    },
    /// `sequence`: not this assignee's turn.
    #[error("it is not `{user}`'s turn at step `{step}`")]
    #[diagnostic(
        code("flowc::runtime::not-your-turn"),
        help("`sequence` approvals go in order; {current} decides now")
    )]
    NotYourTurn {
        /// The step.
        step: String,
        /// Who tried.
        user: String,
        /// Who decides now.
        current: String,
    },
    /// The event answers a task, timer or call that is no longer live.
    #[error("{what} is no longer live: {why} at t={at}")]
    #[diagnostic(
        code("flowc::runtime::stale"),
        help("this answer is late or repeated; nothing changed (`pending` lists what is live)")
    )]
    Stale {
        /// What it answered ("timer 4 of step `x`").
        what: String,
        /// Why that is gone.
        why: Gone,
        /// When it went.
        at: u64,
    },
    /// A `timeout` before its timer's `dueAt`.
    #[error("{timer} of step `{step}` is due at t={due_at}, not t={at}")]
    #[diagnostic(
        code("flowc::runtime::not-due"),
        help("deliver the timeout at or after its `dueAt` (the `start-timer` effect gives it)")
    )]
    NotDue {
        /// The timer.
        timer: TimerId,
        /// Its step.
        step: String,
        /// When it is due.
        due_at: u64,
        /// The event's time.
        at: u64,
    },
    /// The event names a task, timer or call this instance never issued (or one of
    /// another step).
    #[error("this instance has no {what}")]
    #[diagnostic(
        code("flowc::runtime::unknown-id"),
        help(
            "answer with the id from the effect that asked (`create-task`, `start-timer`, `call-service`)"
        )
    )]
    UnknownId {
        /// What was named ("timer 9", "task 3 at step `x`").
        what: String,
    },
    /// `allowAddSigner` is not set on the step.
    #[error("step `{step}` does not allow adding signers")]
    #[diagnostic(
        code("flowc::runtime::add-signer-not-allowed"),
        help("set `allowAddSigner: true` on the step to allow it")
    )]
    AddSignerNotAllowed {
        /// The step.
        step: String,
    },
    /// The signer is already an assignee.
    #[error("`{signer}` is already an assignee of step `{step}`")]
    #[diagnostic(
        code("flowc::runtime::duplicate-signer"),
        help("add someone who is not yet asked")
    )]
    DuplicateSigner {
        /// The step.
        step: String,
        /// Who.
        signer: String,
    },
    /// Logical time went backwards.
    #[error("event time {at} is before the instance's last event time {last}")]
    #[diagnostic(
        code("flowc::runtime::time-backwards"),
        help("logical timestamps must not decrease")
    )]
    TimeBackwards {
        /// The event's time.
        at: u64,
        /// The last time seen.
        last: u64,
    },
    /// Restoring onto a version other than the one the instance started on.
    #[error("the instance started on version {expected}, not {got}")]
    #[diagnostic(
        code("flowc::runtime::version-mismatch"),
        help("restore it onto the exact version it started on (`Registry::get`)")
    )]
    VersionMismatch {
        /// The instance's version.
        expected: VersionId,
        /// The version offered.
        got: VersionId,
    },
    /// A persisted state that does not fit its flow version (corrupt or edited).
    #[error("the persisted instance state is inconsistent: {0}")]
    #[diagnostic(
        code("flowc::runtime::corrupt-state"),
        help("a saved state must be exactly what its logged events produce on its version")
    )]
    CorruptState(String),
    /// A persisted state of a format this build does not read.
    #[error("the persisted instance state has format {found}; this flowc reads format {expected}")]
    #[diagnostic(
        code("flowc::runtime::unsupported-format"),
        help("restore it with the flowc release that saved it")
    )]
    UnsupportedFormat {
        /// The state's format.
        found: u32,
        /// The format this build reads.
        expected: u32,
    },
}

impl crate::diagnostic::ErrorCode for RuntimeError {
    fn code(&self) -> &'static str {
        match self {
            RuntimeError::Context(e) => crate::diagnostic::ErrorCode::code(e),
            RuntimeError::Finished { .. } => "flowc::runtime::finished",
            RuntimeError::UnknownStep { .. } => "flowc::runtime::unknown-step",
            RuntimeError::NotPending { .. } => "flowc::runtime::not-pending",
            RuntimeError::NotAssignee { .. } => "flowc::runtime::not-assignee",
            RuntimeError::NotYourTurn { .. } => "flowc::runtime::not-your-turn",
            RuntimeError::Stale { .. } => "flowc::runtime::stale",
            RuntimeError::NotDue { .. } => "flowc::runtime::not-due",
            RuntimeError::UnknownId { .. } => "flowc::runtime::unknown-id",
            RuntimeError::AddSignerNotAllowed { .. } => "flowc::runtime::add-signer-not-allowed",
            RuntimeError::DuplicateSigner { .. } => "flowc::runtime::duplicate-signer",
            RuntimeError::TimeBackwards { .. } => "flowc::runtime::time-backwards",
            RuntimeError::VersionMismatch { .. } => "flowc::runtime::version-mismatch",
            RuntimeError::CorruptState(_) => "flowc::runtime::corrupt-state",
            RuntimeError::UnsupportedFormat { .. } => "flowc::runtime::unsupported-format",
        }
    }
}
