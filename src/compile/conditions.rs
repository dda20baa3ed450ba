//! Conditions (skip conditions, canary selectors): checked, compiled to their Rhai
//! program and lowered to the direct IR.

use super::{Ctx, Evaluator};
use crate::expr::{self, Direct, ExprError, ExprSource, codegen};
use crate::graph::rules;
use crate::sandbox::{Bindings, Program, RunError, Sandbox};

/// A compiled condition: its sandboxed Rhai program and its lowered IR (run directly
/// unless the host selected [`Evaluator::Sandbox`]).
#[derive(Debug, Clone)]
pub struct Condition {
    program: Program,
    fast: Option<Direct>,
}

impl Condition {
    /// Evaluates the condition (the direct form when there is one).
    ///
    /// # Errors
    /// The CEL run-time error or sandbox bound that stopped it.
    pub fn eval(&self, sandbox: &Sandbox, bindings: &mut Bindings) -> Result<bool, RunError> {
        match &self.fast {
            Some(f) => f.eval_bool(bindings.slots()),
            None => sandbox.eval_bool(&self.program, bindings),
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
    ) -> Result<bool, RunError> {
        sandbox.eval_bool(&self.program, bindings)
    }

    /// Evaluates the condition (the direct form when there is one) against a budget
    /// shared with other conditions, as the rules of one decision share one.
    ///
    /// # Errors
    /// As [`Condition::eval`].
    pub fn eval_within(
        &self,
        sandbox: &Sandbox,
        bindings: &mut Bindings,
        budget: &std::cell::Cell<u64>,
    ) -> Result<bool, RunError> {
        match &self.fast {
            Some(f) => f.eval_bool_within(bindings.slots(), budget),
            None => sandbox.eval_bool_within(&self.program, bindings, budget),
        }
    }

    /// True when the condition runs on the direct path.
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

impl Ctx<'_> {
    /// The lowered IR of a checked tree, unless the host selected the sandbox.
    pub(super) fn lower(&self, e: &expr::Expr) -> Option<Direct> {
        (self.evaluator == Evaluator::Direct)
            .then(|| Direct::lower(e, &self.vars, self.sandbox.limits(), &self.patterns))
    }

    pub(super) fn errors(&mut self, errs: Vec<ExprError>) {
        for e in errs {
            // with no readable `context`, every name would be unknown: the schema said why
            if self.unreadable_context && matches!(e, ExprError::UnknownIdentifier { .. }) {
                continue;
            }
            self.diags.add(self.file, e);
        }
    }

    /// Compiles generated source; a failure is a bug, reported at the expression's span.
    pub(super) fn program(
        &mut self,
        g: &codegen::Generated,
        span: crate::span::Span,
    ) -> Option<Program> {
        match self.sandbox.compile(&g.source, &g.constants) {
            Ok(p) => Some(p),
            Err(e) => {
                self.errors(vec![ExprError::Internal {
                    message: e.to_string(),
                    span,
                }]);
                None
            }
        }
    }

    /// The program and direct form of a checked condition.
    pub(super) fn compile_checked(
        &mut self,
        e: &expr::Expr,
        span: crate::span::Span,
    ) -> Option<Condition> {
        let generated = codegen::generate_condition(e, &self.vars, &self.patterns);
        let program = self.program(&generated, span)?;
        Some(Condition {
            program,
            fast: self.lower(e),
        })
    }

    /// A step's `skipCondition`, checked and compiled.
    pub(super) fn skip_condition(&mut self, src: &ExprSource) -> Option<Condition> {
        let c = self.condition(src)?;
        self.compile_checked(&c.expr, src.span)
    }

    pub(super) fn condition(&mut self, src: &ExprSource) -> Option<expr::Checked> {
        self.condition_after(src, &[])
    }

    /// A condition evaluated only when every one of `earlier` was false (a `first`
    /// decision's rule after its earlier rules).
    pub(super) fn condition_after(
        &mut self,
        src: &ExprSource,
        earlier: &[&expr::Expr],
    ) -> Option<expr::Checked> {
        match expr::check_rule_after(src, &self.env, self.sandbox.limits(), earlier) {
            Ok((c, mut warnings)) => {
                let constant = |w: &ExprError| matches!(w, ExprError::ConstantCondition { .. });
                if !warnings.iter().any(constant)
                    && let Some(value) = rules::one_field_constant(&c.expr)
                {
                    warnings.push(ExprError::ConstantCondition {
                        value,
                        unless_limit: expr::may_hit_limit(&c.expr),
                        span: src.span,
                    });
                }
                self.errors(warnings);
                Some(c)
            }
            Err(e) => {
                self.errors(e);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Diagnostics;
    use crate::expr::{Env, Patterns, VarTable};
    use crate::span::SourceFile;

    #[test]
    fn a_program_that_does_not_compile_is_an_internal_error_at_the_expression() {
        let text = "when: amount > 1.0\n";
        let file = SourceFile::new("f.yaml", text);
        let mut ctx = Ctx {
            file: &file,
            env: Env::default(),
            vars: VarTable::default(),
            sandbox: Sandbox::shared(),
            evaluator: Evaluator::Direct,
            diags: Diagnostics::new(),
            unreadable_context: false,
            patterns: Patterns::new(),
        };
        // codegen never writes this: it stands for any bug that produces invalid Rhai
        let broken = codegen::Generated {
            source: "let = ;".to_owned(),
            constants: Vec::new(),
        };
        let span = crate::span::Span::new(6, 18);
        assert!(ctx.program(&broken, span).is_none());
        let d: Vec<_> = ctx.diags.iter().collect();
        assert_eq!(d.len(), 1);
        let d = d[0];
        assert_eq!(d.code(), "flowc::expr::internal");
        assert!(
            d.message()
                .starts_with("internal error (a bug in flowc): generated program does not compile"),
            "{}",
            d.message()
        );
        assert_eq!(d.line_col(), (1, 7));
        assert_eq!(d.span(), Some(span));
    }
}
