//! The strings an instance hands out, interned once per compiled flow: every trace
//! entry, effect and pending item names its step, condition, service or assignees by
//! sharing these (`Arc<str>`: a reference count, not a copy).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::expr::ExprSource;
use crate::model::{Assignees, Flow, Step, StepKind};

/// A condition's text and where it is written (1-based line and column), for the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionText {
    /// The condition as written.
    pub text: Arc<str>,
    /// Its line in the flow file (saturating at `u32::MAX`, like the trace's).
    pub line: u32,
    /// Its column (saturating likewise).
    pub column: u32,
}

impl ConditionText {
    fn new(flow: &Flow, src: &ExprSource) -> Self {
        let (line, column) = flow.file.line_col(src.start());
        ConditionText {
            text: Arc::from(&*src.written()),
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
        }
    }
}

/// Someone a task is for: a role the host resolves, or one user.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Assignee {
    /// A role (any member may act, the event names the role).
    Role(Arc<str>),
    /// One user.
    User(Arc<str>),
}

impl std::fmt::Display for Assignee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Assignee::Role(r) => write!(f, "role `{r}`"),
            Assignee::User(u) => write!(f, "user `{u}`"),
        }
    }
}

/// Assignees written as names (not an expression), as the list an instance hands out
/// (in a visit's trace entry and a `notify` effect): each name once, in the order written
/// (a name given twice is asked once; `check` warns of it).
fn names(a: &Assignees) -> Option<Arc<[Assignee]>> {
    let user = |u: &crate::model::Spanned<String>| Assignee::User(Arc::from(u.value.as_str()));
    match a {
        Assignees::Role(r) => Some(Arc::new([Assignee::Role(Arc::from(r.value.as_str()))])),
        Assignees::User(u) => Some(Arc::new([user(u)])),
        Assignees::Users(us) => {
            let mut list: Vec<Assignee> = Vec::with_capacity(us.len());
            for u in us.iter().map(user) {
                if !list.contains(&u) {
                    list.push(u);
                }
            }
            Some(Arc::from(list))
        }
        Assignees::Expr(_) => None,
    }
}

/// The shared strings of one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepStrings {
    /// The step id.
    pub id: Arc<str>,
    /// Its `skipCondition`.
    pub skip: Option<ConditionText>,
    /// A decision's rules' `when`, in rule order (empty for other steps).
    pub rules: Vec<ConditionText>,
    /// A service task's service name.
    pub service: Option<Arc<str>>,
    /// A notify step's message.
    pub message: Option<Arc<str>>,
    /// An approval's assignees or a notify step's recipients, when written as names:
    /// each once, in the order written (shared by every visit and effect naming them).
    pub assignees: Option<Arc<[Assignee]>>,
    /// An approval's `escalateTo`, when written as names (as `assignees`).
    pub escalate_to: Option<Arc<[Assignee]>>,
}

impl StepStrings {
    pub(super) fn new(flow: &Flow, step: &Step) -> Self {
        let mut s = StepStrings {
            id: Arc::from(step.id.value.as_str()),
            skip: step.skip.as_ref().map(|src| ConditionText::new(flow, src)),
            rules: Vec::new(),
            service: None,
            message: None,
            assignees: None,
            escalate_to: None,
        };
        match &step.kind {
            StepKind::Approval {
                assignees,
                escalate_to,
                ..
            } => {
                s.assignees = names(assignees);
                s.escalate_to = escalate_to.as_ref().and_then(names);
            }
            StepKind::ServiceTask { service, .. } => {
                s.service = Some(Arc::from(service.value.as_str()));
            }
            StepKind::Decision { rules, .. } => {
                s.rules = rules
                    .iter()
                    .map(|r| ConditionText::new(flow, &r.when))
                    .collect();
            }
            StepKind::Notify { to, message } => {
                s.assignees = names(to);
                s.message = message.as_deref().map(Arc::from);
            }
            StepKind::Parallel { .. } | StepKind::End { .. } => {}
        }
        s
    }
}
