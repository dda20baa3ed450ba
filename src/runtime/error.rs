//! The typed errors of the runtime: an event, context or state that does not fit.

use crate::compile::VersionId;
use crate::diagnostic::excerpt;

use super::context::ContextError;
use super::types::{Gone, Status};

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
    #[error("the instance is {}; it takes no more events", status.describe())]
    #[diagnostic(
        code("flowc::runtime::finished"),
        help("start a new instance to decide again")
    )]
    Finished {
        /// How it ended.
        status: Status,
    },
    /// The event names a step the flow does not have.
    #[error("the flow has no step `{}`", excerpt(.step))]
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
    #[error("`{}` is not an assignee of step `{step}`", excerpt(.user))]
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
    #[error("it is not `{}`'s turn at step `{step}`", excerpt(.user))]
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
    /// A `timeout` before its timer's `dueAt`, or a service answer before its call's
    /// `notBefore`.
    #[error("{what} of step `{step}` is due at t={due_at}, not t={at}")]
    #[diagnostic(
        code("flowc::runtime::not-due"),
        help(
            "deliver a timeout at or after its `dueAt` (from `start-timer`); a call is made at or after its `notBefore` (from `call-service`)"
        )
    )]
    NotDue {
        /// What was answered early ("timer 4", "call 6").
        what: String,
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
    /// A delivery id this instance applied to a different event.
    #[error(
        "delivery id `{}` was applied at t={at} to another event (`{first}`), not to this `{this}`",
        excerpt(.id)
    )]
    #[diagnostic(
        code("flowc::runtime::id-reused"),
        help("give every distinct message its own id; a redelivery must repeat the same event")
    )]
    IdReused {
        /// The id.
        id: String,
        /// When the first event with it was applied.
        at: u64,
        /// The first event's kind.
        first: &'static str,
        /// This event's kind.
        this: &'static str,
    },
    /// An empty (or blank) delivery id, user or signer name.
    #[error("the {what} is empty")]
    #[diagnostic(
        code("flowc::runtime::empty-name"),
        help("give a non-empty {what}; to deliver without a delivery id, use `apply`")
    )]
    EmptyName {
        /// `delivery id`, `user` or `signer`.
        what: &'static str,
    },
    /// A logical time beyond what timers can count from.
    #[error("event time {at} is out of range (at most {max})")]
    #[diagnostic(
        code("flowc::runtime::time-out-of-range"),
        help("`at` is seconds on the host's clock, e.g. Unix seconds")
    )]
    TimeOutOfRange {
        /// The time given.
        at: u64,
        /// The largest accepted.
        max: u64,
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
    #[error("`{}` is already an assignee of step `{step}`", excerpt(.signer))]
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
            RuntimeError::IdReused { .. } => "flowc::runtime::id-reused",
            RuntimeError::EmptyName { .. } => "flowc::runtime::empty-name",
            RuntimeError::TimeOutOfRange { .. } => "flowc::runtime::time-out-of-range",
            RuntimeError::AddSignerNotAllowed { .. } => "flowc::runtime::add-signer-not-allowed",
            RuntimeError::DuplicateSigner { .. } => "flowc::runtime::duplicate-signer",
            RuntimeError::TimeBackwards { .. } => "flowc::runtime::time-backwards",
            RuntimeError::VersionMismatch { .. } => "flowc::runtime::version-mismatch",
            RuntimeError::CorruptState(_) => "flowc::runtime::corrupt-state",
            RuntimeError::UnsupportedFormat { .. } => "flowc::runtime::unsupported-format",
        }
    }
}
