//! Assignee expressions (an approval's `assignees` and `escalateTo`, a notification's
//! `to`): checked for a string or list-of-strings type, compiled and lowered.

use super::Ctx;
use crate::expr::{self, Direct, ExprError, Type, codegen};
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
                if !matches!(&c.ty, Type::String | Type::Dyn)
                    && !matches!(&c.ty, Type::List(t) if matches!(**t, Type::String | Type::Dyn))
                {
                    self.errors(vec![ExprError::AssigneeType {
                        ty: c.ty.to_string(),
                        span: src.span,
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
