//! Withdrawal: ids that stop being live (with the effect that tells the host), tokens
//! released, parallel branches joined or cancelled, the whole instance cancelled.

use crate::runtime::Instance;
use crate::runtime::state::{Ended, IdKind, Token, Wait};
use crate::runtime::types::{CallId, Effect, Gone, TaskId, TimerId, VisitStatus};

use super::{Run, step_id};

impl Instance {
    /// Ends a live id and tells the host to withdraw it (unless it was answered: then
    /// the host knows; a task is closed in every case).
    pub(super) fn end_id(&mut self, run: &mut Run<'_>, id: u32, why: Gone) {
        let at = self.state.now;
        let Some(r) = self.state.record_mut(id) else {
            return;
        };
        if r.ended.is_some() {
            return;
        }
        r.ended = Some(Ended { why, at });
        // the step's id is shared only when an effect names it
        let step = || step_id(run.flow, r.step);
        match r.kind {
            IdKind::Task { .. } => run.effects.push(Effect::CloseTask {
                task: TaskId(id),
                step: step(),
                reason: why,
            }),
            IdKind::Timer { .. } if why != Gone::Fired => {
                run.effects.push(Effect::CancelTimer {
                    timer: TimerId(id),
                    step: step(),
                });
            }
            IdKind::Call { .. } if why != Gone::Answered => {
                run.effects.push(Effect::CancelService {
                    call: CallId(id),
                    step: step(),
                });
            }
            IdKind::Timer { .. } | IdKind::Call { .. } => {}
        }
    }

    /// Ends every live id a token holds (tasks in slot order, then its call, then its
    /// timer).
    pub(super) fn release(&mut self, run: &mut Run<'_>, t: usize, why: Gone) {
        let Some(tok) = self.state.tokens.get_mut(t) else {
            return;
        };
        match &mut tok.wait {
            Wait::Approval(_) => {
                // one id at a time, taken out of the token before it is ended (`end_id`
                // does not touch tokens, so this is the same as collecting them first)
                while let Some(id) = self.state.tokens.get_mut(t).and_then(next_held) {
                    self.end_id(run, id, why);
                }
            }
            Wait::Service { call, timer, .. } => {
                let (call, timer) = (call.0, timer.take());
                self.end_id(run, call, why);
                if let Some(timer) = timer {
                    self.end_id(run, timer.0, why);
                }
            }
        }
    }

    /// Removes a token, withdrawing what it still holds.
    pub(super) fn take_token(&mut self, run: &mut Run<'_>, t: usize, why: Gone) -> Option<Token> {
        if t >= self.state.tokens.len() {
            return None;
        }
        self.release(run, t, why);
        Some(self.state.tokens.remove(t))
    }

    pub(super) fn branch_done(&mut self, run: &mut Run<'_>, join: u32, branch: usize) {
        let Some(j) = self.state.joins.iter_mut().find(|j| j.id == join) else {
            return;
        };
        if let Some(d) = j.done.get_mut(branch) {
            *d = true;
        }
        if !(j.any || j.done.iter().all(|d| *d)) {
            return;
        }
        let (step, visit, scope, any) = (j.step, j.visit, j.scope, j.any);
        if any {
            // the losing branches are withdrawn
            let name = run
                .flow
                .step(step)
                .and_then(|s| match &s.kind {
                    crate::model::StepKind::Parallel { branches, .. } => {
                        branches.get(branch)?.name.clone()
                    }
                    _ => None,
                })
                .map_or_else(
                    || format!("branch {}", branch + 1),
                    |n| format!("branch `{n}`"),
                );
            self.cancel_scope(run, join, &format!("{name} finished first"));
        }
        self.state.joins.retain(|j| j.id != join);
        self.close(visit, VisitStatus::Completed, None);
        if let Some(node) = run.flow.nodes().get(step) {
            run.work.push((node.next, scope, Some(visit)));
        }
    }

    /// Cancels every token and open join inside the join `join` (recursively).
    pub(super) fn cancel_scope(&mut self, run: &mut Run<'_>, join: u32, why: &str) {
        let inner: Vec<u32> = self
            .state
            .joins
            .iter()
            .filter(|j| j.scope.is_some_and(|s| s.join == join))
            .map(|j| j.id)
            .collect();
        for j in inner {
            self.cancel_scope(run, j, why);
            if let Some(pos) = self.state.joins.iter().position(|x| x.id == j) {
                let open = self.state.joins.remove(pos);
                self.close(open.visit, VisitStatus::Cancelled, Some(why.to_owned()));
            }
        }
        let mut k = 0;
        while k < self.state.tokens.len() {
            let inside = self
                .state
                .tokens
                .get(k)
                .is_some_and(|t| t.scope.is_some_and(|s| s.join == join));
            if inside {
                if let Some(t) = self.take_token(run, k, Gone::Withdrawn) {
                    self.close(t.visit, VisitStatus::Cancelled, Some(why.to_owned()));
                }
            } else {
                k += 1;
            }
        }
    }

    /// Withdraws every waiting token and open join.
    pub(super) fn cancel_all(&mut self, run: &mut Run<'_>, why: &str) {
        self.state.tokens.sort_by_key(|t| t.visit);
        while !self.state.tokens.is_empty() {
            if let Some(t) = self.take_token(run, 0, Gone::Withdrawn) {
                self.close(t.visit, VisitStatus::Cancelled, Some(why.to_owned()));
            }
        }
        for j in std::mem::take(&mut self.state.joins) {
            self.close(j.visit, VisitStatus::Cancelled, Some(why.to_owned()));
        }
        run.work.clear();
    }
}

/// Takes the next id an approval token holds out of it: a task (in slot order), then
/// its timer; `None` when it holds none (or is not an approval).
fn next_held(tok: &mut Token) -> Option<u32> {
    match &mut tok.wait {
        Wait::Approval(a) => a
            .slots
            .iter_mut()
            .find_map(|s| s.task.take())
            .map(|task| task.0)
            .or_else(|| a.timer.take().map(|timer| timer.0)),
        Wait::Service { .. } => None,
    }
}
