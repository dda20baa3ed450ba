//! The runtime's vocabulary: events in, effects out, the trace, and the typed errors.

use serde::{Deserialize, Serialize};

use crate::compile::VersionId;
use crate::model::{Mode, Outcome};

use super::context::ContextError;

/// Someone a task is for: a role the host resolves, or one user.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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

/// What the host tells an instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
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
        /// Why (kept in the trace).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
    },
    /// An assignee adds a signer to a pending approval (`allowAddSigner`).
    AddSigner {
        /// The approval step.
        step: String,
        /// Who adds.
        user: String,
        /// The role they act in.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<String>,
        /// The user added.
        signer: String,
    },
    /// A service call succeeded.
    ServiceOk {
        /// The service-task step.
        step: String,
    },
    /// A service call failed.
    ServiceError {
        /// The service-task step.
        step: String,
        /// The host's error text (kept in the trace).
        #[serde(default)]
        error: String,
    },
    /// A step's timer fired.
    Timeout {
        /// The step.
        step: String,
    },
    /// The instance is withdrawn.
    Cancel {
        /// Why (kept in the trace).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

/// What the host must do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum Effect {
    /// Create a task for each assignee.
    CreateTask {
        /// The approval step.
        step: String,
        /// Who gets a task.
        assignees: Vec<Assignee>,
    },
    /// Withdraw the open tasks of a step (decided, escalated, cancelled or joined away).
    CancelTasks {
        /// The step.
        step: String,
    },
    /// Start a timer; when it fires, send [`Event::Timeout`].
    StartTimer {
        /// The step.
        step: String,
        /// Seconds from now.
        after_secs: u64,
    },
    /// Call a service; answer with [`Event::ServiceOk`] or [`Event::ServiceError`].
    CallService {
        /// The service-task step.
        step: String,
        /// The service name.
        service: String,
        /// 1 for the first call, then each retry.
        attempt: u32,
        /// Wait this long before calling (the retry backoff).
        delay_secs: u64,
        /// The call's timeout, if declared.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_secs: Option<u64>,
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

/// Where an instance stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The `skipCondition` or the matched rule's `when`, with its value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<ConditionRecord>,
    /// Who is (or was) asked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assignees: Vec<Assignee>,
    /// Decisions and other acts, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acts: Vec<Act>,
    /// Why it ended the way it did, in words (default route, incident, cancellation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
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
    /// Logical time the step was entered.
    pub since: u64,
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
    #[error("the instance is {status}; it takes no more events")]
    #[diagnostic(
        code("flowc::runtime::finished"),
        help("start a new instance to decide again")
    )]
    Finished {
        /// `approved`, `rejected`, `cancelled` or `incident`.
        status: &'static str,
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
    /// The same assignee decided twice.
    #[error("{assignee} has already approved step `{step}`")]
    #[diagnostic(
        code("flowc::runtime::duplicate-decision"),
        help("each assignee decides once per visit of a step")
    )]
    DuplicateDecision {
        /// The step.
        step: String,
        /// Who.
        assignee: String,
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
    #[diagnostic(code("flowc::runtime::corrupt-state"))]
    CorruptState(String),
}
