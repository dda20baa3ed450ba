//! Decisions: every rule checked, analysed by the graph stage, compiled into one Rhai
//! program and lowered rule by rule.

use super::Ctx;
use super::conditions::Condition;
use crate::expr::{self, Direct, codegen};
use crate::graph::{Graph, rules};
use crate::model::{Flow, HitPolicy, Rule};
use crate::sandbox::{Bindings, Program, RunError, Sandbox};
use crate::span::Span;

/// A compiled decision: one program for all rules (and the direct forms of the rules
/// when every rule has one).
#[derive(Debug, Clone)]
pub struct CompiledDecision {
    program: Program,
    fast: Option<Vec<Direct>>,
    /// Each rule on its own, when some rule has no direct form: only run to name the
    /// rule that failed in an incident.
    rules: Vec<Condition>,
    /// How many rules it has.
    rule_count: usize,
    unique: bool,
}

impl CompiledDecision {
    /// The rule that routes: `Some(index)` (0-based), `None` when no rule holds.
    ///
    /// # Errors
    /// A run-time error in a rule, or more than one rule holding under `unique`
    /// ([`RunError::NotUnique`]); both are incidents.
    pub fn eval(
        &self,
        sandbox: &Sandbox,
        bindings: &mut Bindings,
    ) -> Result<Option<usize>, RunError> {
        match &self.fast {
            Some(rules) => self.decide_direct(rules, bindings),
            None => self.eval_sandboxed(sandbox, bindings),
        }
    }

    fn decide_direct(
        &self,
        rules: &[Direct],
        bindings: &Bindings,
    ) -> Result<Option<usize>, RunError> {
        if let Some(hit) = Direct::decide_typed(rules, bindings.slots(), self.unique) {
            return Ok(hit);
        }
        // one budget for the whole decision, as its one program has in the sandbox
        let budget = std::cell::Cell::new(rules.first().map_or(0, Direct::budget));
        let mut hit = None;
        for (i, r) in rules.iter().enumerate() {
            if r.eval_bool_within(bindings.slots(), &budget)? {
                match hit {
                    None if !self.unique => return Ok(Some(i)),
                    None => hit = Some(i),
                    Some(first) => {
                        let mut all = vec![first, i];
                        for (j, rest) in rules.iter().enumerate().skip(i + 1) {
                            if rest.eval_bool_within(bindings.slots(), &budget)? {
                                all.push(j);
                            }
                        }
                        return Err(RunError::NotUnique(all));
                    }
                }
            }
        }
        Ok(hit)
    }

    /// Evaluates the one Rhai program of the decision, even when direct forms exist.
    ///
    /// # Errors
    /// As [`CompiledDecision::eval`].
    pub fn eval_sandboxed(
        &self,
        sandbox: &Sandbox,
        bindings: &mut Bindings,
    ) -> Result<Option<usize>, RunError> {
        let to_index = |i: i64| usize::try_from(i).ok();
        if !self.unique {
            return Ok(to_index(sandbox.eval_int(&self.program, bindings)?));
        }
        let hits: Vec<usize> = match sandbox.eval(&self.program, bindings)? {
            expr::Value::List(l) => l
                .iter()
                .filter_map(|v| match v {
                    expr::Value::Int(i) => to_index(*i),
                    _ => None,
                })
                .collect(),
            other => {
                return Err(RunError::ResultType {
                    expected: "list",
                    got: other.type_name().to_owned(),
                });
            }
        };
        match hits.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            _ => Err(RunError::NotUnique(hits)),
        }
    }

    /// The first rule whose condition fails at run time under these bindings (for an
    /// incident's message), on the path the decision ran on: a rule that fails on its
    /// own, else the rule the decision's one budget runs out in (the rules in order,
    /// sharing it, as they ran); `None` when no rule fails.
    pub fn failing_rule(&self, sandbox: &Sandbox, bindings: &mut Bindings) -> Option<usize> {
        let run =
            |i: usize, bindings: &mut Bindings, budget: &std::cell::Cell<u64>| match &self.fast {
                Some(rules) => rules
                    .get(i)
                    .is_some_and(|r| r.eval_bool_within(bindings.slots(), budget).is_err()),
                None => self
                    .rules
                    .get(i)
                    .is_some_and(|r| r.eval_within(sandbox, bindings, budget).is_err()),
            };
        let full = || std::cell::Cell::new(sandbox.limits().max_operations);
        (0..self.rule_count)
            .find(|&i| run(i, bindings, &full()))
            .or_else(|| {
                let shared = full();
                (0..self.rule_count).find(|&i| run(i, bindings, &shared))
            })
            // a decision of one rule failed in that rule
            .or_else(|| (self.rule_count == 1).then_some(0))
    }

    /// `hitPolicy: unique`.
    #[must_use]
    pub fn is_unique(&self) -> bool {
        self.unique
    }

    /// True when every rule runs on the direct path.
    #[must_use]
    pub fn is_direct(&self) -> bool {
        self.fast.is_some()
    }

    /// The context slots its rules read (`None`: some rule has no direct form, so any).
    #[must_use]
    pub fn reads(&self) -> Option<Vec<usize>> {
        self.fast
            .as_ref()
            .map(|rules| rules.iter().flat_map(|d| d.reads.iter().copied()).collect())
    }
}

impl Ctx<'_> {
    /// Checks a decision's rules (each on its own, then the graph stage's analysis of
    /// them together) and compiles them; `None` when a rule has an error.
    pub(super) fn decision(
        &mut self,
        g: &Graph<'_>,
        flow: &Flow,
        step_index: usize,
        type_span: Span,
        hit_policy: HitPolicy,
        rs: &[Rule],
    ) -> Option<CompiledDecision> {
        let mut checked: Vec<(usize, expr::Checked)> = Vec::new();
        for (i, r) in rs.iter().enumerate() {
            // under `first`, a rule is evaluated only when every earlier rule was false
            let earlier: Vec<&expr::Expr> = if hit_policy == HitPolicy::First {
                checked.iter().map(|(_, c)| &c.expr).collect()
            } else {
                Vec::new()
            };
            if let Some(c) = self.condition_after(&r.when, &earlier) {
                checked.push((i, c));
            }
        }
        let spans: Vec<Span> = rs.iter().map(|r| r.when.span).collect();
        let exprs: Vec<(usize, &expr::Expr)> = checked.iter().map(|(i, c)| (*i, &c.expr)).collect();
        for e in rules::check_decision(g, flow, step_index, &exprs) {
            self.diags.add(self.file, e);
        }
        if checked.len() != rs.len() {
            return None;
        }
        let exprs: Vec<&expr::Expr> = checked.iter().map(|(_, c)| &c.expr).collect();
        let unique = hit_policy == HitPolicy::Unique;
        let generated = codegen::generate_decision(&exprs, unique, &self.vars, &self.patterns);
        let fast = exprs
            .iter()
            .map(|e| self.lower(e))
            .collect::<Option<Vec<Direct>>>();
        // per-rule programs only where the direct forms cannot name a failing rule
        let rules: Vec<Condition> = if fast.is_some() {
            Vec::new()
        } else {
            exprs
                .iter()
                .zip(&spans)
                .map(|(e, span)| self.compile_checked(e, *span))
                .collect::<Option<_>>()?
        };
        // the decision's program holds every rule: a failure names them all
        let all = spans
            .iter()
            .copied()
            .reduce(Span::join)
            .unwrap_or(type_span);
        // a rule that failed on its own has been reported: not again for the decision
        let program = self.program(&generated, all)?;
        Some(CompiledDecision {
            program,
            fast,
            rules,
            rule_count: exprs.len(),
            unique,
        })
    }
}
