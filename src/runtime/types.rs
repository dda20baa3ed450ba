//! The runtime's vocabulary: events in, effects out, and the trace.

use std::num::NonZeroU32;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::{Mode, Outcome};

pub use crate::compile::Assignee;

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
/// [`RuntimeError::Stale`](super::RuntimeError::Stale)).
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
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
#[non_exhaustive]
pub enum Event {
    /// An assignee approves.
    Approve {
        /// The approval step.
        step: Arc<str>,
        /// Who acts.
        user: Arc<str>,
        /// The role they act in, when the task is for a role.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<Arc<str>>,
        /// The task answered (optional: found by step and user otherwise).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task: Option<TaskId>,
        /// A comment (kept in the trace).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<Arc<str>>,
    },
    /// An assignee rejects.
    Reject {
        /// The approval step.
        step: Arc<str>,
        /// Who acts.
        user: Arc<str>,
        /// The role they act in.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<Arc<str>>,
        /// The task answered (optional).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task: Option<TaskId>,
        /// Why (kept in the trace).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<Arc<str>>,
    },
    /// A current assignee adds a signer to a pending approval (`allowAddSigner`).
    AddSigner {
        /// The approval step.
        step: Arc<str>,
        /// Who adds.
        user: Arc<str>,
        /// The role they act in.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<Arc<str>>,
        /// The adder's task (optional).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task: Option<TaskId>,
        /// The user added.
        signer: Arc<str>,
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
        error: Arc<str>,
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
        reason: Option<Arc<str>>,
    },
}

impl Event {
    /// `user` approves `step`.
    #[must_use]
    pub fn approve(step: &str, user: &str) -> Self {
        Event::Approve {
            step: step.into(),
            user: user.into(),
            role: None,
            task: None,
            comment: None,
        }
    }

    /// `user` approves `step` acting in `role`.
    #[must_use]
    pub fn approve_as(step: &str, user: &str, role: &str) -> Self {
        Event::Approve {
            step: step.into(),
            user: user.into(),
            role: Some(role.into()),
            task: None,
            comment: None,
        }
    }

    /// `user` rejects `step`.
    #[must_use]
    pub fn reject(step: &str, user: &str) -> Self {
        Event::Reject {
            step: step.into(),
            user: user.into(),
            role: None,
            task: None,
            comment: None,
        }
    }

    /// `user` rejects `step` acting in `role`.
    #[must_use]
    pub fn reject_as(step: &str, user: &str, role: &str) -> Self {
        Event::Reject {
            step: step.into(),
            user: user.into(),
            role: Some(role.into()),
            task: None,
            comment: None,
        }
    }

    /// `user` adds `signer` to `step`.
    #[must_use]
    pub fn add_signer(step: &str, user: &str, signer: &str) -> Self {
        Event::AddSigner {
            step: step.into(),
            user: user.into(),
            role: None,
            task: None,
            signer: signer.into(),
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
            error: error.into(),
        }
    }

    /// The instance is cancelled.
    #[must_use]
    pub fn cancel(reason: Option<&str>) -> Self {
        Event::Cancel {
            reason: reason.map(Arc::from),
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
        step: Arc<str>,
        /// The tasks, each with its id.
        tasks: Vec<TaskRef>,
    },
    /// Close a task: its assignee acted, or it is no longer needed.
    CloseTask {
        /// The task.
        task: TaskId,
        /// Its step.
        step: Arc<str>,
        /// Why.
        reason: Gone,
    },
    /// Start a timer; when it is due, send [`Event::Timeout`] naming it.
    StartTimer {
        /// The timer.
        timer: TimerId,
        /// Its step.
        step: Arc<str>,
        /// When it is due: an absolute logical time in seconds, on the same clock as
        /// the `at` of events.
        due_at: u64,
    },
    /// Cancel a timer that has not fired: it must not be delivered.
    CancelTimer {
        /// The timer.
        timer: TimerId,
        /// Its step.
        step: Arc<str>,
    },
    /// Call a service; answer with [`Event::ServiceOk`] or [`Event::ServiceError`]
    /// naming the call.
    CallService {
        /// This attempt's id.
        call: CallId,
        /// The service-task step.
        step: Arc<str>,
        /// The service name.
        service: Arc<str>,
        /// 1 for the first call, then each retry.
        attempt: u32,
        /// Wait this long before calling (the retry backoff), in seconds.
        delay_secs: u64,
        /// The same as an absolute time: call at or after it (an answer before it is
        /// refused `not-due`).
        not_before: u64,
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
        step: Arc<str>,
    },
    /// Send a notification.
    Notify {
        /// The notify step.
        step: Arc<str>,
        /// Recipients (shared with the visit's trace entry; for names written in the
        /// flow, with the compiled flow).
        to: Arc<[Assignee]>,
        /// The message, if declared.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<Arc<str>>,
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
        step: Arc<str>,
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
        step: Arc<str>,
        /// What happened.
        message: String,
    },
}

impl Status {
    /// In words, for messages (`approved`, `stopped on an incident`, ...).
    #[must_use]
    pub fn describe(&self) -> &'static str {
        match self {
            Status::Incident { .. } => "stopped on an incident",
            Status::Running => "running",
            other => other.label(),
        }
    }

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
    pub text: Arc<str>,
    /// Its value, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<bool>,
    /// The run-time error, if it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Box<str>>,
    /// Where the condition is written in the flow file (1-based).
    pub line: u32,
    /// Its column (1-based).
    pub column: u32,
}

/// One act on a visit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Act {
    /// What was done.
    pub action: Action,
    /// Who (a user, or `timer`/`service`).
    pub by: Arc<str>,
    /// The role they acted in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Arc<str>>,
    /// A comment, signer, error text or escalation target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Arc<str>>,
    /// The logical time of the event.
    pub at: u64,
}

/// What an [`Act`] did (in JSON: `approve`, `reject`, `add-signer`, `timeout`,
/// `escalate`, `service-ok`, `service-error`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Action {
    /// An assignee approved.
    Approve,
    /// An assignee rejected.
    Reject,
    /// An assignee added a signer.
    AddSigner,
    /// The step's timer fired.
    Timeout,
    /// The tasks were handed to `escalateTo`.
    Escalate,
    /// The service call succeeded.
    ServiceOk,
    /// The service call failed.
    ServiceError,
}

impl Action {
    /// As in JSON (`approve`, `add-signer`, ...).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Approve => "approve",
            Action::Reject => "reject",
            Action::AddSigner => "add-signer",
            Action::Timeout => "timeout",
            Action::Escalate => "escalate",
            Action::ServiceOk => "service-ok",
            Action::ServiceError => "service-error",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
            (Some(n), _) => Some(Route::Rule(n.get() as usize)),
            (None, true) => Some(Route::Default),
            (None, false) => None,
        }
    }
}

/// Whether a visit names nobody (its `assignees` are then left out of the JSON).
fn no_assignees(a: &Arc<[Assignee]>) -> bool {
    a.is_empty()
}

/// One entry of the trace: a step entered once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Visit {
    /// The step id.
    pub step: Arc<str>,
    /// How the visit ended, or `pending`.
    pub status: VisitStatus,
    /// The matched decision rule (1-based, as in diagnostics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<NonZeroU32>,
    /// True when no rule of a decision held and it took its `default` (JSON
    /// `"byDefault": true`, absent otherwise). [`Visit::route`] reads both as one value.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub by_default: bool,
    /// The `skipCondition` or the matched rule's `when`, with its value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<ConditionRecord>,
    /// Who is (or was) asked (shared: for names written in the flow, with the compiled
    /// flow).
    #[serde(default, skip_serializing_if = "no_assignees")]
    pub assignees: Arc<[Assignee]>,
    /// Decisions and other acts, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acts: Vec<Act>,
    /// Why it ended the way it did, in words (incident, cancellation, timeout, failure):
    /// for people to read; a program reads `status` and `route`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<Box<str>>,
    /// The visit whose end led here (an index into the trace; `None` for the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<u32>,
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
    pub step: Arc<str>,
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
    pub timer: Option<TimerRef>,
    /// The outstanding service call (service tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<CallId>,
    /// Logical time the step was entered.
    pub since: u64,
}

/// A running timer: its id and when it is due (absolute seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimerRef {
    /// The timer.
    pub timer: TimerId,
    /// When it is due.
    pub due_at: u64,
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
