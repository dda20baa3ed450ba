//! The instance as data: what is persisted, and the records behind every id.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::compile::VersionId;
use crate::model::Mode;

use super::types::{Assignee, CallId, Event, Gone, Status, TaskId, TimerId, Visit};

/// The format of [`InstanceState`] this build writes and reads.
///
/// Promised stable within a format: the field names and meaning of `format`, `version`,
/// `context`, `startedAt`, `status`, `trace` and `log` (the applied events). The other
/// fields are the machine's working data: they are checked on restore (by replaying the
/// log) and may change with the format number.
pub const STATE_FORMAT: u32 = 3;

/// The parallel branch a token runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Scope {
    pub join: u32,
    pub branch: usize,
}

/// One assignee of a pending approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Slot {
    pub assignee: Assignee,
    pub approved: bool,
    /// The open task, if the assignee has one now (a sequence's later assignees get
    /// theirs when their turn comes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskId>,
}

/// An approval's slots, in order: one is held inline (the usual single assignee, so that
/// entering an approval allocates no list for it), more in a vector. Serialised as the
/// list of slots it is, whichever way it is held, and equal by that list.
#[derive(Clone, Debug)]
pub(super) enum Slots {
    One(Slot),
    Many(Vec<Slot>),
}

impl Slots {
    /// Adds a slot at position `at` (past the end: at the end).
    pub fn insert(&mut self, at: usize, slot: Slot) {
        let mut all = match std::mem::replace(self, Slots::Many(Vec::new())) {
            Slots::One(first) => {
                let mut v = Vec::with_capacity(2);
                v.push(first);
                v
            }
            Slots::Many(v) => v,
        };
        all.insert(at.min(all.len()), slot);
        *self = Slots::Many(all);
    }

    /// Adds a slot at the end.
    pub fn push(&mut self, slot: Slot) {
        let end = self.len();
        self.insert(end, slot);
    }
}

impl std::ops::Deref for Slots {
    type Target = [Slot];

    fn deref(&self) -> &[Slot] {
        match self {
            Slots::One(s) => std::slice::from_ref(s),
            Slots::Many(v) => v,
        }
    }
}

impl std::ops::DerefMut for Slots {
    fn deref_mut(&mut self) -> &mut [Slot] {
        match self {
            Slots::One(s) => std::slice::from_mut(s),
            Slots::Many(v) => v,
        }
    }
}

impl FromIterator<Slot> for Slots {
    fn from_iter<I: IntoIterator<Item = Slot>>(iter: I) -> Self {
        let mut it = iter.into_iter();
        match (it.next(), it.next()) {
            (Some(first), None) => Slots::One(first),
            (Some(first), Some(second)) => {
                let mut v = Vec::with_capacity(2 + it.size_hint().0);
                v.push(first);
                v.push(second);
                v.extend(it);
                Slots::Many(v)
            }
            (None, _) => Slots::Many(Vec::new()),
        }
    }
}

impl PartialEq for Slots {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Slots {}

impl Serialize for Slots {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Slots {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<Slot>::deserialize(d)?.into_iter().collect())
    }
}

/// A pending approval: who is asked, who has approved, whose turn it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Approval {
    pub slots: Slots,
    pub mode: Mode,
    pub cursor: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timer: Option<TimerId>,
}

impl Approval {
    /// The slot an actor fills: a user slot by user, a role slot by the role named.
    pub fn slot(&self, user: &str, role: Option<&str>) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| fits(&s.assignee, user, role))
    }

    /// Who may act now (for `sequence`, only the current assignee).
    pub fn outstanding(&self) -> Vec<Assignee> {
        self.slots
            .iter()
            .filter(|s| s.task.is_some())
            .map(|s| s.assignee.clone())
            .collect()
    }
}

/// Whether an actor (a user, maybe naming a role) is this assignee.
pub(super) fn fits(a: &Assignee, user: &str, role: Option<&str>) -> bool {
    match a {
        Assignee::User(u) => **u == *user,
        Assignee::Role(r) => Some(&**r) == role,
    }
}

/// What a waiting token waits for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub(super) enum Wait {
    Approval(Approval),
    Service {
        attempt: u32,
        call: CallId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timer: Option<TimerId>,
    },
}

/// One point of control waiting at a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Token {
    pub step: usize,
    pub visit: usize,
    pub scope: Option<Scope>,
    pub wait: Wait,
}

/// An open parallel step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct JoinState {
    pub id: u32,
    pub step: usize,
    pub visit: usize,
    pub any: bool,
    pub done: Vec<bool>,
    pub scope: Option<Scope>,
}

/// What an id was issued for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub(super) enum IdKind {
    Task { assignee: Assignee },
    Timer { due_at: u64 },
    Call { attempt: u32, not_before: u64 },
}

/// When and why an id stopped being live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Ended {
    pub why: Gone,
    pub at: u64,
}

/// Every id an instance issued (ids are 1-based positions in this list).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct IdRecord {
    #[serde(flatten)]
    pub kind: IdKind,
    pub step: usize,
    pub visit: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<Ended>,
}

/// One applied event, as kept in the state (the instance's own history, replayed by
/// [`Instance::restore`](super::Instance::restore)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Logged {
    /// The delivery id the host gave, if any (redelivery of it is a no-op).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The logical time it was applied at.
    pub at: u64,
    /// The event.
    pub event: Event,
}

/// Everything an instance is, as data: serialise it (serde) to persist the instance and
/// [`Instance::restore`](super::Instance::restore) it onto the same version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceState {
    /// The state format ([`STATE_FORMAT`]).
    pub format: u32,
    /// The version the instance started on (and stays on), shared with the compiled
    /// flow.
    pub version: Arc<VersionId>,
    /// The context, normalised (defaults filled in).
    pub context: super::context::Context,
    /// The logical time it started at.
    pub started_at: u64,
    /// Where it stands.
    pub status: Status,
    /// Every visit of a step, in order.
    pub trace: Vec<Visit>,
    /// Every applied event, in order.
    pub log: Vec<Logged>,
    pub(super) tokens: Vec<Token>,
    pub(super) joins: Vec<JoinState>,
    pub(super) next_join: u32,
    pub(super) ids: Vec<IdRecord>,
    pub(super) now: u64,
}

impl InstanceState {
    pub(super) fn record(&self, id: u32) -> Option<&IdRecord> {
        self.ids.get((id as usize).checked_sub(1)?)
    }

    pub(super) fn record_mut(&mut self, id: u32) -> Option<&mut IdRecord> {
        self.ids.get_mut((id as usize).checked_sub(1)?)
    }

    /// The logical time of the last applied event (or the start).
    #[must_use]
    pub fn now(&self) -> u64 {
        self.now
    }
}
