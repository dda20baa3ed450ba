//! Assignee expressions (an approval's `assignees` and `escalateTo`, a notification's
//! `to`): checked for a string or list-of-strings type, compiled and lowered; and the
//! one rule of what their value must be ([`user_ids`]), which `check` asks of their
//! constant parts and the runtime of every value.

use std::sync::Arc;

use super::Ctx;
use crate::expr::ast::{BinaryOp, Expr, ExprKind, Macro};
use crate::expr::overload::P;
use crate::expr::{self, Direct, ExprError, Type, Value, codegen, fails};
use crate::limits::SandboxLimits;
use crate::model::Assignees;
use crate::sandbox::{Bindings, Program, RunError, Sandbox};

/// A compiled value expression (assignees): its sandboxed program and, where possible,
/// the direct form.
#[derive(Debug, Clone)]
pub struct Expression {
    program: Program,
    fast: Option<Direct>,
}

impl Expression {
    /// Evaluates the expression (the direct form when there is one).
    ///
    /// # Errors
    /// The CEL run-time error or sandbox bound that stopped it.
    pub fn eval(
        &self,
        sandbox: &Sandbox,
        bindings: &mut Bindings,
    ) -> Result<expr::Value, RunError> {
        match &self.fast {
            Some(f) => f.eval_value(bindings.slots()),
            None => sandbox.eval(&self.program, bindings),
        }
    }

    /// Evaluates the Rhai program, even when a direct form exists.
    ///
    /// # Errors
    /// The CEL run-time error or sandbox bound that stopped it.
    pub fn eval_sandboxed(
        &self,
        sandbox: &Sandbox,
        bindings: &mut Bindings,
    ) -> Result<expr::Value, RunError> {
        sandbox.eval(&self.program, bindings)
    }

    /// True when the expression runs on the direct path.
    #[must_use]
    pub fn is_direct(&self) -> bool {
        self.fast.is_some()
    }

    /// The context slots it reads (`None`: it has no direct form, so any).
    #[must_use]
    pub fn reads(&self) -> Option<&[usize]> {
        self.fast.as_ref().map(|d| d.reads.as_slice())
    }
}

/// Which compiled assignee expression of a step (by its index in [`super::CompiledFlow::nodes`]):
/// an approval's `assignees` or a `notify`'s `to`, or an approval's `escalateTo`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AssigneeSlot {
    /// The step's own `assignees` (approvals) or `to` (notify steps).
    Step(usize),
    /// The approval's `escalateTo`.
    Escalation(usize),
}

impl AssigneeSlot {
    /// The step's index.
    #[must_use]
    pub fn step(self) -> usize {
        match self {
            AssigneeSlot::Step(i) | AssigneeSlot::Escalation(i) => i,
        }
    }
}

impl Ctx<'_> {
    pub(super) fn assignee_expr(&mut self, a: &Assignees) -> Option<Expression> {
        let Assignees::Expr(src) = a else { return None };
        match expr::check_expr(src, &self.env, self.sandbox.limits()) {
            Ok(c) => {
                if !type_fits(&c.ty) {
                    self.errors(vec![ExprError::AssigneeType {
                        ty: c.ty.to_string(),
                        span: src.span,
                    }]);
                    return None;
                }
                if let Some(never) = never_fits(&c.expr, true, self.sandbox.limits()) {
                    let (message, help) = never.diagnostic();
                    self.errors(vec![ExprError::AlwaysFails {
                        message,
                        span: src.map_span(never.span.0, never.span.1),
                        help: help.to_owned(),
                    }]);
                    return None;
                }
                let warnings = expr::unguarded_optional(&c, src, &self.env);
                self.errors(warnings);
                let g = codegen::generate(&c.expr, &self.vars, &self.patterns);
                let program = self.program(&g, src.span)?;
                Some(Expression {
                    program,
                    fast: self.lower(&c.expr),
                })
            }
            Err(e) => {
                self.errors(e);
                None
            }
        }
    }
}

/// Can a value of static type `t` be an assignee expression's result: a `string` or a
/// `list<string>` (`dyn` may be either), by the overload table's one rule of a type
/// fitting a parameter ([`P::accepts`]).
fn type_fits(t: &Type) -> bool {
    P::String.accepts(t) || matches!(t, Type::List(e) if P::String.accepts(e))
}

/// Why an assignee expression's value gives no user ids: the one definition of what
/// the value must be, which `check` asks of a constant part ([`never_fits`]) and the
/// runtime of every value it resolves ([`user_ids`]). Its `Display` is what the value
/// "gave" in the runtime's incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssigneeProblem {
    /// Neither a string nor a list (the value's type).
    NotUserIds(&'static str),
    /// A list holding a value that is not a string (that value's type).
    ListHolding(&'static str),
    /// A user id that is empty or shows nothing ([`crate::model::is_blank_name`]).
    BlankName,
    /// A user id with white space before or after it
    /// ([`crate::model::is_padded_name`]).
    PaddedName,
    /// A list of no user ids.
    Empty,
}

impl std::fmt::Display for AssigneeProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AssigneeProblem::NotUserIds(t) => {
                write!(f, "{t}, not a string or list of strings")
            }
            AssigneeProblem::ListHolding(t) => write!(f, "a list holding {t}"),
            AssigneeProblem::BlankName => f.write_str("an empty user name"),
            AssigneeProblem::PaddedName => f.write_str(
                "a user name with white space or a character that shows nothing at an end",
            ),
            AssigneeProblem::Empty => f.write_str("an empty list"),
        }
    }
}

impl AssigneeProblem {
    /// What `check` says of a constant part that always gives this value, and its help.
    fn diagnostic(self) -> (String, &'static str) {
        match self {
            AssigneeProblem::NotUserIds(t) => (result_type(t), TYPE_HELP),
            AssigneeProblem::ListHolding(_) => (result_type(&self.to_string()), TYPE_HELP),
            AssigneeProblem::BlankName => (
                format!("it gives {self}"),
                "a user id is a name that is not blank: write the user's id, or read it from the context",
            ),
            AssigneeProblem::PaddedName => (
                format!("it gives {self}"),
                "remove the white space or invisible characters at the ends of the name",
            ),
            AssigneeProblem::Empty => (
                format!("it gives {self}"),
                "an assignee expression gives at least one user id: a list of none leaves nobody to ask",
            ),
        }
    }
}

/// The help of a part whose type never fits.
const TYPE_HELP: &str = "an assignee expression gives a user id or a list of user ids: `dyn(...)` does not change what a value is";

/// "expected a string or a list of strings, got …" (the run-time result-type error).
fn result_type(got: &str) -> String {
    expr::RunError::ResultType {
        expected: "a string or a list of strings",
        got: got.to_owned(),
    }
    .to_string()
}

/// The user id a value (a string, or an element of a list) gives.
///
/// # Errors
/// Not a string ([`AssigneeProblem::ListHolding`]: it is read as a list's element), a
/// blank one, or one with white space around it.
fn user_id(v: &Value) -> Result<&Arc<str>, AssigneeProblem> {
    match v {
        Value::String(s) if crate::model::is_blank_name(s) => Err(AssigneeProblem::BlankName),
        Value::String(s) if crate::model::is_padded_name(s) => Err(AssigneeProblem::PaddedName),
        Value::String(s) => Ok(s),
        other => Err(AssigneeProblem::ListHolding(other.type_name())),
    }
}

/// The user ids an assignee expression's value gives, in order (a name given twice is
/// given twice): a string is one, a list of strings is each. The one rule of what the
/// value must be, for `check`'s constant parts and for the runtime.
///
/// # Errors
/// The first problem, in the list's order: an element that is not a string, a blank
/// name; then a value that is neither, or a list of none.
pub fn user_ids(v: &Value) -> Result<UserIds<'_>, AssigneeProblem> {
    let items = match v {
        Value::String(_) => std::slice::from_ref(v),
        Value::List(l) => l.as_slice(),
        other => return Err(AssigneeProblem::NotUserIds(other.type_name())),
    };
    for x in items {
        user_id(x)?;
    }
    if items.is_empty() {
        return Err(AssigneeProblem::Empty);
    }
    Ok(UserIds(items.iter()))
}

/// The user ids of a value that [`user_ids`] accepted.
#[derive(Debug, Clone)]
pub struct UserIds<'v>(std::slice::Iter<'v, Value>);

impl<'v> Iterator for UserIds<'v> {
    type Item = &'v Arc<str>;

    fn next(&mut self) -> Option<Self::Item> {
        // every item passed `user_id` when `user_ids` made this iterator: read, not
        // checked again
        self.0.by_ref().find_map(|x| match x {
            Value::String(s) => Some(s),
            _ => None,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for UserIds<'_> {}

/// A part of an assignee expression whose value never fits.
struct Never {
    /// What it gives: a value the runtime refuses, or a type that never fits.
    why: Why,
    /// The part (expression bytes).
    span: (usize, usize),
}

/// Why a part never fits.
enum Why {
    /// Its constant value ([`user_ids`]).
    Value(AssigneeProblem),
    /// Its static type (`int`, or of a list's element: `a list holding int`).
    Type(String),
    /// A string built with `+` whose constant first part starts, or whose constant last
    /// part ends, with this character, which shows nothing
    /// ([`crate::model::pads_a_name`]): a padded name, or a blank one when the rest is
    /// empty (`" " + s`, `s + "\u200b"`).
    Edge { end: End, c: char },
    /// A `map` over a list that may be empty: an empty list, or a list of elements
    /// that never fit, for this reason (`tags.map(t, "")`).
    EmptyOr(Box<Why>),
}

impl Never {
    /// The diagnostic's message and help.
    fn diagnostic(&self) -> (String, &'static str) {
        self.why.diagnostic()
    }
}

/// An end of a string.
#[derive(Clone, Copy)]
enum End {
    Start,
    End,
}

impl Why {
    /// The diagnostic's message and help.
    fn diagnostic(&self) -> (String, &'static str) {
        match self {
            Why::Value(p) => p.diagnostic(),
            Why::Type(t) => (result_type(t), TYPE_HELP),
            Why::Edge { .. } => (
                format!("it gives {}", self.element()),
                "a user id has nothing that shows nothing at its ends: remove it from the constant part",
            ),
            Why::EmptyOr(inner) => (
                format!(
                    "it gives an empty list or a list holding {}",
                    inner.element()
                ),
                inner.diagnostic().1,
            ),
        }
    }

    /// What the part gives, as a list's element (`a user name that starts with white
    /// space`).
    fn element(&self) -> String {
        match self {
            Why::Value(AssigneeProblem::ListHolding(t)) => (*t).to_owned(),
            Why::Value(p) => p.to_string(),
            Why::Type(t) => t.strip_prefix("a list holding ").unwrap_or(t).to_owned(),
            Why::Edge { end, c } => {
                let end = match end {
                    End::Start => "starts",
                    End::End => "ends",
                };
                if c.is_whitespace() {
                    format!(
                        "a user name that {end} with white space (U+{:04X})",
                        u32::from(*c)
                    )
                } else {
                    format!(
                        "a user name that {end} with a character that shows nothing (U+{:04X})",
                        u32::from(*c)
                    )
                }
            }
            Why::EmptyOr(inner) => inner.element(),
        }
    }
}

/// The character a string part always starts (or ends) with, when that is known: the
/// first (last) of a constant string, or of the first (last) operand of a string `+`.
fn edge(e: &Expr, end: End, limits: &SandboxLimits) -> Option<char> {
    match &e.kind {
        ExprKind::Binary(BinaryOp::Add, a, b) if e.ty == Type::String => match end {
            End::Start => edge(a, end, limits),
            End::End => edge(b, end, limits),
        },
        _ if expr::is_constant(e) => match fails::outcome(e, limits) {
            fails::Outcome::Constant(Value::String(s)) => match end {
                End::Start => s.chars().next(),
                End::End => s.chars().next_back(),
            },
            _ => None,
        },
        _ => None,
    }
}

/// A string `+` that always gives a padded or blank name: its known first character
/// or last character shows nothing ([`crate::model::pads_a_name`], the rule of
/// [`crate::model::is_padded_name`] and [`crate::model::is_blank_name`]).
fn padded_concatenation(e: &Expr, limits: &SandboxLimits) -> Option<Why> {
    if !matches!(e.kind, ExprKind::Binary(BinaryOp::Add, ..)) || e.ty != Type::String {
        return None;
    }
    [End::Start, End::End].into_iter().find_map(|end| {
        edge(e, end, limits)
            .filter(|&c| crate::model::pads_a_name(c))
            .map(|c| Why::Edge { end, c })
    })
}

/// Does a `map` macro's range always hold an element (a list literal of some)?
fn never_empty(range: &Expr) -> bool {
    matches!(&range.kind, ExprKind::List(items) if !items.is_empty())
}

/// The part that makes an assignee expression (`whole`) or a list element of it (not
/// `whole`: it must be a user id) never fit, whatever the context: a constant part whose
/// value [`user_ids`] (or, an element, [`user_id`]) refuses (evaluated by decision 110's
/// constant-part walk, [`fails::outcome`]), a string `+` whose constant first or last
/// part puts a character that shows nothing at an end, or a part whose static type does
/// not fit, looking through `dyn(…)` (which changes the static type, never the value),
/// both branches of `?:`, each element of a list literal, and the transform of a `map`
/// macro (its every element, or an empty list when the range may be empty: neither
/// fits).
fn never_fits(e: &Expr, whole: bool, limits: &SandboxLimits) -> Option<Never> {
    let never = |why: Why| Some(Never { why, span: e.span });
    match &e.kind {
        ExprKind::Call {
            target: None,
            name,
            args,
        } if name == "dyn"
            && let [inner] = args.as_slice() =>
        {
            never_fits(inner, whole, limits)
        }
        ExprKind::Cond(_, a, b) => {
            let on_a = never_fits(a, whole, limits)?;
            never_fits(b, whole, limits).map(|_| on_a)
        }
        _ if expr::is_constant(e) => match fails::outcome(e, limits) {
            fails::Outcome::Constant(v) => {
                let problem = if whole {
                    user_ids(&v).err()
                } else {
                    user_id(&v).err()
                };
                problem.and_then(|p| never(Why::Value(p)))
            }
            _ => None,
        },
        ExprKind::Binary(BinaryOp::Add, ..) if let Some(why) = padded_concatenation(e, limits) => {
            never(why)
        }
        // `[a, b]`: a list of each element (never empty: `[]` is constant), so one that
        // never gives a user id makes the list never fit
        ExprKind::List(items) if whole => items
            .iter()
            .find_map(|i| never_fits(i, false, limits).map(element_of_list)),
        // `l.map(x, f)`: a list of no user ids, or of `f`'s values: when `f` never
        // gives a user id, neither does the list (`tags.map(t, "")`)
        ExprKind::Comprehension {
            kind: Macro::Map,
            range,
            body,
            ..
        } if whole => never_fits(body, false, limits).map(|n| {
            let n = element_of_list(n);
            if never_empty(range) {
                n
            } else {
                Never {
                    why: Why::EmptyOr(Box::new(n.why)),
                    span: n.span,
                }
            }
        }),
        _ if whole && !type_fits(&e.ty) => never(Why::Type(e.ty.to_string())),
        _ if !whole && !P::String.accepts(&e.ty) => never(Why::Type(e.ty.to_string())),
        _ => None,
    }
}

/// A list's element that never fits, as the reason the list never fits (a type is
/// named as the list's: `a list holding int`).
fn element_of_list(n: Never) -> Never {
    match n.why {
        Why::Type(t) => Never {
            why: Why::Type(format!("a list holding {t}")),
            span: n.span,
        },
        _ => n,
    }
}
