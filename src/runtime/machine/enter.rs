//! Entering steps: the work loop, a new visit per entry, skip conditions and decisions.

use std::num::NonZeroU32;
use std::sync::Arc;

use crate::compile::{AssigneeSlot, CompiledFlow};
use crate::graph::Target;
use crate::limits::Limits;
use crate::model::{Outcome, StepKind};

use crate::runtime::Instance;
use crate::runtime::state::{JoinState, Scope, Token, Wait};
use crate::runtime::types::{ConditionRecord, Effect, Status, Visit, VisitStatus};

use super::{Run, step_id};

impl Instance {
    /// Runs automatic steps until every token waits or the instance ends.
    pub(super) fn drive(&mut self, run: &mut Run<'_>) {
        let mut budget = Limits::MAX_AUTOMATIC_STEPS;
        while let Some((target, scope, from)) = run.work.pop() {
            if self.state.status != Status::Running {
                run.work.clear();
                return;
            }
            // work left over from a branch that a join `any` has closed
            if let Some(s) = scope
                && !self.state.joins.iter().any(|j| j.id == s.join)
            {
                continue;
            }
            if budget == 0 {
                let step = match target {
                    Target::Step(i) => step_id(run.flow, i),
                    _ => Arc::from(""),
                };
                self.incident(
                    run,
                    step,
                    format!(
                        "more than {} automatic steps in one event",
                        Limits::MAX_AUTOMATIC_STEPS
                    ),
                );
                return;
            }
            budget -= 1;
            match target {
                Target::End => self.finish(run, Outcome::Approved),
                Target::BranchEnd { branch, .. } => {
                    if let Some(s) = scope {
                        self.branch_done(run, s.join, branch);
                    }
                }
                Target::Step(i) => self.enter(run, i, scope, from),
            }
        }
    }

    pub(super) fn new_visit(&mut self, step: Arc<str>, from: Option<usize>) -> usize {
        self.state.trace.push(Visit {
            step,
            status: VisitStatus::Pending,
            rule: None,
            by_default: false,
            condition: None,
            // an empty list shares one static block (no allocation)
            assignees: Arc::default(),
            acts: Vec::new(),
            note: None,
            // INVARIANT: a trace never holds 2^32 visits (each is ~170 bytes of memory)
            from: from.and_then(|f| u32::try_from(f).ok()),
            entered_at: self.state.now,
            ended_at: None,
        });
        self.state.trace.len() - 1
    }

    pub(super) fn enter(
        &mut self,
        run: &mut Run<'_>,
        i: usize,
        scope: Option<Scope>,
        from: Option<usize>,
    ) {
        let flow = run.flow;
        let (Some(step), Some(node)) = (flow.step(i), flow.nodes().get(i)) else {
            return;
        };
        let visit = self.new_visit(step_id(flow, i), from);
        if self.skips(flow, i, visit) {
            self.close(visit, VisitStatus::Skipped, None);
            run.work.push((node.next, scope, Some(visit)));
            return;
        }
        match &step.kind {
            StepKind::Approval {
                assignees,
                mode,
                timeout,
                ..
            } => self.enter_approval(
                run,
                (i, visit, scope),
                assignees,
                *mode,
                timeout.as_ref().map(|t| t.value),
            ),
            StepKind::ServiceTask { .. } => {
                let (call, timer) = self.call(run, i, visit, 1, 0);
                self.state.tokens.push(Token {
                    step: i,
                    visit,
                    scope,
                    wait: Wait::Service {
                        attempt: 1,
                        call,
                        timer,
                    },
                });
            }
            StepKind::Decision { rules, .. } => {
                self.decide(run, i, visit, scope, rules);
            }
            StepKind::Parallel { join, .. } => {
                let id = self.state.next_join;
                self.state.next_join = self.state.next_join.wrapping_add(1);
                self.state.joins.push(JoinState {
                    id,
                    step: i,
                    visit,
                    any: *join == crate::model::Join::Any,
                    done: vec![false; node.branches.len()],
                    scope,
                });
                if node.branches.is_empty() {
                    run.work.push((node.next, scope, Some(visit)));
                    self.state.joins.retain(|j| j.id != id);
                    self.close(visit, VisitStatus::Completed, None);
                }
                // a stack: push in reverse so branch 0 runs first
                for (b, t) in node.branches.iter().enumerate().rev() {
                    run.work.push((
                        *t,
                        Some(Scope {
                            join: id,
                            branch: b,
                        }),
                        Some(visit),
                    ));
                }
            }
            StepKind::Notify { to, .. } => match self.resolve(flow, to, AssigneeSlot::Step(i)) {
                Ok(to) => {
                    run.effects.push(Effect::Notify {
                        step: step_id(flow, i),
                        to: Arc::clone(&to),
                        message: flow.strings(i).and_then(|s| s.message.clone()),
                    });
                    if let Some(v) = self.visit_mut(visit) {
                        v.assignees = to;
                    }
                    self.close(visit, VisitStatus::Completed, None);
                    run.work.push((node.next, scope, Some(visit)));
                }
                Err(e) => {
                    self.close(visit, VisitStatus::Error, None);
                    self.incident(run, step_id(flow, i), e);
                }
            },
            StepKind::End { outcome } => {
                self.close(visit, VisitStatus::Completed, None);
                self.finish(run, *outcome);
            }
        }
    }

    /// Evaluates a step's `skipCondition` (recorded in the visit); an error means do not
    /// skip (fail closed).
    pub(super) fn skips(&mut self, flow: &CompiledFlow, i: usize, visit: usize) -> bool {
        let (Some(cond), Some(src)) = (
            flow.skip_condition(i),
            flow.strings(i).and_then(|s| s.skip.as_ref()),
        ) else {
            return false;
        };
        let r = cond.eval(flow.sandbox(), &mut self.bindings);
        let record = ConditionRecord {
            text: Arc::clone(&src.text),
            value: r.as_ref().ok().copied(),
            error: r.as_ref().err().map(|e| e.to_string().into_boxed_str()),
            line: src.line,
            column: src.column,
        };
        if let Some(v) = self.visit_mut(visit) {
            v.condition = Some(record);
        }
        r == Ok(true)
    }

    pub(super) fn decide(
        &mut self,
        run: &mut Run<'_>,
        i: usize,
        visit: usize,
        scope: Option<Scope>,
        rules: &[crate::model::Rule],
    ) {
        let flow = run.flow;
        let Some(node) = flow.nodes().get(i) else {
            return;
        };
        let Some(decision) = flow.decision(i) else {
            self.close(visit, VisitStatus::Error, None);
            self.incident(
                run,
                step_id(flow, i),
                "decision was not compiled".to_owned(),
            );
            return;
        };
        match decision.eval(flow.sandbox(), &mut self.bindings) {
            Ok(Some(r)) => {
                if let Some(v) = self.visit_mut(visit) {
                    v.rule = u32::try_from(r + 1).ok().and_then(NonZeroU32::new);
                    v.condition =
                        flow.strings(i)
                            .and_then(|s| s.rules.get(r))
                            .map(|rule| ConditionRecord {
                                text: Arc::clone(&rule.text),
                                value: Some(true),
                                error: None,
                                line: rule.line,
                                column: rule.column,
                            });
                }
                self.close(visit, VisitStatus::Completed, None);
                if let Some(t) = node.rules.get(r) {
                    run.work.push((*t, scope, Some(visit)));
                }
            }
            Ok(None) => {
                if let Some(t) = node.default {
                    if let Some(v) = self.visit_mut(visit) {
                        v.by_default = true;
                    }
                    self.close(visit, VisitStatus::Completed, None);
                    run.work.push((t, scope, Some(visit)));
                } else {
                    self.close(visit, VisitStatus::Error, None);
                    self.incident(
                        run,
                        step_id(flow, i),
                        "no rule holds and the decision has no `default`".to_owned(),
                    );
                }
            }
            Err(e) => {
                let message = match decision
                    .failing_rule(flow.sandbox(), &mut self.bindings)
                    .and_then(|r| Some((r, rules.get(r)?)))
                {
                    Some((r, rule)) => {
                        let (line, column) = flow.flow().file.line_col(rule.when.start());
                        format!(
                            "decision failed in rule {} `{}` (line {line}, column {column}): {e}",
                            r + 1,
                            rule.when.written()
                        )
                    }
                    None => format!("decision failed: {e}"),
                };
                self.close(visit, VisitStatus::Error, None);
                self.incident(run, step_id(flow, i), message);
            }
        }
    }
}
