//! The strings an instance hands out, interned once per compiled flow: every trace
//! entry, effect and pending item names its step, condition, service or assignees by
//! sharing these (`Arc<str>`: a reference count, not a copy).

use std::sync::Arc;

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
        let (line, column) = flow.file.line_col(src.span.start);
        ConditionText {
            text: Arc::from(src.text.as_str()),
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
        }
    }
}

/// Assignees written as names (not an expression).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Names {
    /// One role.
    Role(Arc<str>),
    /// One or more users, in order.
    Users(Vec<Arc<str>>),
}

impl Names {
    /// `None` for an expression (its names are known at run time only).
    fn new(a: &Assignees) -> Option<Self> {
        match a {
            Assignees::Role(r) => Some(Names::Role(Arc::from(r.value.as_str()))),
            Assignees::User(u) => Some(Names::Users(vec![Arc::from(u.value.as_str())])),
            Assignees::Users(us) => Some(Names::Users(
                us.iter().map(|u| Arc::from(u.value.as_str())).collect(),
            )),
            Assignees::Expr(_) => None,
        }
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
    /// An approval's assignees or a notify step's recipients, when written as names.
    pub assignees: Option<Names>,
    /// An approval's `escalateTo`, when written as names.
    pub escalate_to: Option<Names>,
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
                s.assignees = Names::new(assignees);
                s.escalate_to = escalate_to.as_ref().and_then(Names::new);
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
                s.assignees = Names::new(to);
                s.message = message.as_deref().map(Arc::from);
            }
            StepKind::Parallel { .. } | StepKind::End { .. } => {}
        }
        s
    }
}
