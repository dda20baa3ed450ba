//! Assignee expressions (an approval's `assignees` and `escalateTo`, a notification's
//! `to`): checked for a string or list-of-strings type, compiled and lowered.

use super::Ctx;
use crate::expr::ast::{Expr, ExprKind};
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
                    let error = expr::RunError::ResultType {
                        expected: "a string or a list of strings",
                        got: never.got,
                    };
                    self.errors(vec![ExprError::AlwaysFails {
                        message: error.to_string(),
                        span: src.map_span(never.span.0, never.span.1),
                        help: "an assignee expression gives a user id or a list of user ids: `dyn(...)` does not change what a value is".to_owned(),
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

/// Is a run-time value an assignee expression's result: a string, or a list of
/// strings ([`P::accepts_value`]).
fn value_fits(v: &Value) -> bool {
    P::String.accepts_value(v)
        || matches!(v, Value::List(l) if l.iter().all(|x| P::String.accepts_value(x)))
}

/// A part of an assignee expression whose value never fits.
struct Never {
    /// What it gives (a type or a value's type, `list holding int`).
    got: String,
    /// The part (expression bytes).
    span: (usize, usize),
}

/// The part that makes an assignee expression (`whole`) or a list element of it (not
/// `whole`: it must be a string) never fit, whatever the context: a constant part whose
/// value does not fit (evaluated by decision 110's constant-part walk,
/// [`fails::outcome`]), or a part whose static type does not, looking through `dyn(…)`
/// (which changes the static type, never the value), both branches of `?:`, and each
/// element of a list literal.
fn never_fits(e: &Expr, whole: bool, limits: &SandboxLimits) -> Option<Never> {
    let never = |got: String| Some(Never { got, span: e.span });
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
            fails::Outcome::Constant(v) if whole && !value_fits(&v) => never(match &v {
                Value::List(l) => match l.iter().find(|x| !P::String.accepts_value(x)) {
                    Some(x) => format!("a list holding {}", x.type_name()),
                    None => v.type_name().to_owned(),
                },
                _ => v.type_name().to_owned(),
            }),
            fails::Outcome::Constant(v) if !whole && !P::String.accepts_value(&v) => {
                never(v.type_name().to_owned())
            }
            _ => None,
        },
        ExprKind::List(items) if whole => items.iter().find_map(|i| {
            never_fits(i, false, limits).map(|n| Never {
                got: format!("a list holding {}", n.got),
                span: n.span,
            })
        }),
        _ if whole && !type_fits(&e.ty) => never(e.ty.to_string()),
        _ if !whole && !P::String.accepts(&e.ty) => never(e.ty.to_string()),
        _ => None,
    }
}
