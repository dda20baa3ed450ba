//! Approvals and their rules: assignees resolved, tasks opened, and what an approve,
//! reject or added signer does under each mode (`single`, `any`, `all`, `sequence`).

use std::sync::Arc;

use crate::compile::{AssigneeSlot, CompiledFlow, user_ids};
use crate::model::{Assignees, Mode, Outcome};

use crate::runtime::Instance;
use crate::runtime::state::{Approval, IdKind, Scope, Slot, Token, Wait};
use crate::runtime::types::{Action, Assignee, Effect, Gone, TaskId, TaskRef, VisitStatus};

use super::{Run, step_id, step_name};

impl Instance {
    pub(super) fn approval_mut(&mut self, t: usize) -> Option<&mut Approval> {
        match self.state.tokens.get_mut(t).map(|tok| &mut tok.wait) {
            Some(Wait::Approval(a)) => Some(a),
            _ => None,
        }
    }

    /// Marks the slot decided and closes its task.
    pub(super) fn answer_task(&mut self, run: &mut Run<'_>, t: usize, k: usize, why: Gone) {
        let task = self
            .approval_mut(t)
            .and_then(|a| a.slots.get_mut(k))
            .and_then(|s| {
                s.approved = why == Gone::Approved;
                s.task.take()
            });
        if let Some(task) = task {
            self.end_id(run, task.0, why);
        }
    }

    pub(super) fn approve(
        &mut self,
        run: &mut Run<'_>,
        t: usize,
        k: usize,
        user: &Arc<str>,
        role: Option<&Arc<str>>,
        comment: Option<Arc<str>>,
    ) {
        self.act(t, Action::Approve, Arc::clone(user), role, comment);
        self.answer_task(run, t, k, Gone::Approved);
        let Some((step, visit)) = self.state.tokens.get(t).map(|tok| (tok.step, tok.visit)) else {
            return;
        };
        let Some(a) = self.approval_mut(t) else {
            return;
        };
        let done = match a.mode {
            Mode::Single | Mode::Any => true,
            Mode::All => a.slots.iter().all(|s| s.approved),
            Mode::Sequence => {
                a.cursor += 1;
                a.cursor >= a.slots.len()
            }
        };
        if done {
            self.pass(run, t, VisitStatus::Completed, None);
            return;
        }
        if self
            .approval_mut(t)
            .is_some_and(|a| a.mode == Mode::Sequence)
        {
            self.open_task(run, t, step, visit, None);
        }
    }

    /// Gives the slot at the sequence cursor (or slot `k`) a task.
    pub(super) fn open_task(
        &mut self,
        run: &mut Run<'_>,
        t: usize,
        step: usize,
        visit: usize,
        k: Option<usize>,
    ) {
        let Some(a) = self.approval_mut(t) else {
            return;
        };
        let k = k.unwrap_or(a.cursor);
        let Some(assignee) = a.slots.get(k).map(|s| s.assignee.clone()) else {
            return;
        };
        let task = TaskId(self.issue(
            IdKind::Task {
                assignee: assignee.clone(),
            },
            step,
            visit,
        ));
        if let Some(s) = self.approval_mut(t).and_then(|a| a.slots.get_mut(k)) {
            s.task = Some(task);
        }
        run.effects.push(Effect::CreateTask {
            step: step_id(run.flow, step),
            tasks: vec![TaskRef { task, assignee }],
        });
    }

    pub(super) fn reject(
        &mut self,
        run: &mut Run<'_>,
        t: usize,
        k: usize,
        user: &Arc<str>,
        role: Option<&Arc<str>>,
        comment: Option<Arc<str>>,
    ) {
        self.act(t, Action::Reject, Arc::clone(user), role, comment);
        self.answer_task(run, t, k, Gone::Rejected);
        self.rejected(run, t, VisitStatus::Rejected, None);
    }

    /// The token's step rejects: `onReject` if set, else the instance is rejected.
    pub(super) fn rejected(
        &mut self,
        run: &mut Run<'_>,
        t: usize,
        status: VisitStatus,
        note: Option<String>,
    ) {
        let Some(tok) = self.take_token(run, t, Gone::StepEnded) else {
            return;
        };
        self.close(tok.visit, status, note);
        match run.flow.nodes().get(tok.step).and_then(|n| n.on_reject) {
            Some(target) => run.work.push((target, tok.scope, Some(tok.visit))),
            None => self.finish(run, Outcome::Rejected),
        }
    }

    pub(super) fn add_signer(
        &mut self,
        run: &mut Run<'_>,
        t: usize,
        user: &Arc<str>,
        role: Option<&Arc<str>>,
        signer: &Arc<str>,
    ) {
        self.act(
            t,
            Action::AddSigner,
            Arc::clone(user),
            role,
            Some(Arc::clone(signer)),
        );
        let Some((step, visit)) = self.state.tokens.get(t).map(|k| (k.step, k.visit)) else {
            return;
        };
        let Some(a) = self.approval_mut(t) else {
            return;
        };
        let slot = Slot {
            assignee: Assignee::User(Arc::clone(signer)),
            approved: false,
            task: None,
        };
        if a.mode == Mode::Sequence {
            // the added signer decides right after the current assignee
            let at = a.cursor + 1;
            a.slots.insert(at, slot);
        } else {
            a.slots.push(slot);
            let k = a.slots.len() - 1;
            self.open_task(run, t, step, visit, Some(k));
        }
        let slots: Arc<[Assignee]> = self
            .approval_mut(t)
            .map(|a| a.slots.iter().map(|s| s.assignee.clone()).collect())
            .unwrap_or_default();
        if let Some(v) = self.visit_mut(visit) {
            v.assignees = slots;
        }
    }

    /// Gives every slot of an approval a task, in one `create-task`.
    pub(super) fn open_tasks(&mut self, run: &mut Run<'_>, t: usize, step: usize, visit: usize) {
        // the token's slots and the id records are distinct parts of the state: each slot
        // is given its task in one pass
        let state = &mut self.state;
        let tasks = match state.tokens.get_mut(t).map(|tok| &mut tok.wait) {
            Some(Wait::Approval(a)) => {
                let mut tasks = Vec::with_capacity(a.slots.len());
                for s in a.slots.iter_mut() {
                    let assignee = s.assignee.clone();
                    let task = TaskId(super::issue(
                        &mut state.ids,
                        IdKind::Task {
                            assignee: assignee.clone(),
                        },
                        step,
                        visit,
                    ));
                    s.task = Some(task);
                    tasks.push(TaskRef { task, assignee });
                }
                tasks
            }
            _ => Vec::new(),
        };
        run.effects.push(Effect::CreateTask {
            step: step_id(run.flow, step),
            tasks,
        });
    }

    /// Evaluates an assignee declaration against the context: names written in the flow
    /// are the compiled flow's shared list (each once); an expression's are asked once
    /// each too.
    pub(super) fn resolve(
        &mut self,
        flow: &CompiledFlow,
        a: &Assignees,
        slot: AssigneeSlot,
    ) -> Result<Arc<[Assignee]>, String> {
        let names = flow.strings(slot.step()).and_then(|s| match slot {
            AssigneeSlot::Step(_) => s.assignees.as_ref(),
            AssigneeSlot::Escalation(_) => s.escalate_to.as_ref(),
        });
        let out: Arc<[Assignee]> = match (a, names) {
            (Assignees::Expr(src), _) => {
                // where the expression is written, as a decision's failing rule says it
                // (worked out only for an error: the hot path allocates nothing here)
                let what = || {
                    let (line, column) = flow.flow().file.line_col(src.start());
                    format!(
                        "assignee expression `{}` (line {line}, column {column})",
                        src.written()
                    )
                };
                let expression = flow
                    .assignee_expression(slot)
                    .ok_or_else(|| format!("no compiled program for `{}`", src.written()))?;
                let v = expression
                    .eval(flow.sandbox(), &mut self.bindings)
                    .map_err(|e| format!("{} failed: {e}", what()))?;
                let mut users =
                    user_ids(&v).map_err(|problem| format!("{} gave {problem}", what()))?;
                // one user id (the usual case) is one allocation, as a written name's
                if users.len() == 1
                    && let Some(s) = users.next()
                {
                    Arc::new([Assignee::User(Arc::clone(s))])
                } else {
                    Arc::from(distinct(
                        users.map(|s| Assignee::User(Arc::clone(s))).collect(),
                    ))
                }
            }
            (_, Some(list)) => Arc::clone(list),
            // INVARIANT: the compiled flow interns every written name; read the model
            // if it ever did not
            (Assignees::Role(r), None) => Arc::new([Assignee::Role(Arc::from(r.value.as_str()))]),
            (Assignees::User(u), None) => Arc::new([Assignee::User(Arc::from(u.value.as_str()))]),
            (Assignees::Users(us), None) => Arc::from(distinct(
                us.iter()
                    .map(|u| Assignee::User(Arc::from(u.value.as_str())))
                    .collect(),
            )),
        };
        if out.is_empty() {
            return Err(match slot {
                AssigneeSlot::Step(i) => {
                    format!("step `{}` has no assignees at run time", step_name(flow, i))
                }
                AssigneeSlot::Escalation(i) => format!(
                    "`escalateTo` of step `{}` has no assignees at run time",
                    step_name(flow, i)
                ),
            });
        }
        Ok(out)
    }

    /// Enters an approval: resolves its assignees, opens their tasks, starts its timer.
    pub(super) fn enter_approval(
        &mut self,
        run: &mut Run<'_>,
        (i, visit, scope): (usize, usize, Option<Scope>),
        assignees: &Assignees,
        mode: Mode,
        timeout: Option<u64>,
    ) {
        let flow = run.flow;
        match self.resolve(flow, assignees, AssigneeSlot::Step(i)) {
            Ok(resolved) => {
                let slots = resolved
                    .iter()
                    .map(|assignee| Slot {
                        assignee: assignee.clone(),
                        approved: false,
                        task: None,
                    })
                    .collect();
                if let Some(v) = self.visit_mut(visit) {
                    v.assignees = resolved;
                }
                self.state.tokens.push(Token {
                    step: i,
                    visit,
                    scope,
                    wait: Wait::Approval(Approval {
                        slots,
                        mode,
                        cursor: 0,
                        timer: None,
                    }),
                });
                let t = self.state.tokens.len() - 1;
                if mode == Mode::Sequence {
                    self.open_task(run, t, i, visit, Some(0));
                } else {
                    self.open_tasks(run, t, i, visit);
                }
                if let Some(secs) = timeout {
                    let timer = self.timer(run, i, visit, secs);
                    if let Some(a) = self.approval_mut(t) {
                        a.timer = Some(timer);
                    }
                }
            }
            Err(e) => {
                self.close(visit, VisitStatus::Error, None);
                self.incident(run, step_id(flow, i), e);
            }
        }
    }
}

/// One task per person: a name given twice is asked once (`check` warns of it); a short
/// list (the usual one or two) is searched, a long one hashed.
fn distinct(mut out: Vec<Assignee>) -> Vec<Assignee> {
    if out.len() <= 1 {
        return out;
    }
    if out.len() <= 16 {
        let mut kept: Vec<Assignee> = Vec::with_capacity(out.len());
        for x in out {
            if !kept.contains(&x) {
                kept.push(x);
            }
        }
        kept
    } else {
        let mut seen = std::collections::HashSet::new();
        out.retain(|x| seen.insert(x.clone()));
        out
    }
}
