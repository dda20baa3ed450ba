//! The resolved step index: every step in document order with each reference it makes
//! resolved to a [`Target`]. The graph stage builds it once ([`super::Graph::build`]);
//! the graph's edges, the compiled flow and the runtime all read this one index.

use std::collections::HashMap;

use crate::model::{Flow, OnTimeout, Spanned, Step, StepKind};

/// Where control goes after a step (resolved at compile time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A step, by its index in the [`StepIndex`].
    Step(usize),
    /// The end of branch `branch` of the parallel step at index `parallel`.
    BranchEnd {
        /// The parallel step's index.
        parallel: usize,
        /// The branch number.
        branch: usize,
    },
    /// Falling off the top-level list: the instance ends `approved`.
    End,
}

/// One step with every reference resolved to a [`Target`].
///
/// A reference to an unknown id resolves to [`Target::End`]: the graph checks report
/// it (`flowc::graph::unknown-step`) and no flow with one is ever compiled.
#[derive(Clone, Debug)]
pub struct StepNode {
    /// Position: list indices from the top (step index in its list, then branch number).
    path: Vec<(usize, usize)>,
    /// Index in its own step list.
    pos: usize,
    /// Branch path: (parallel step index, branch number) from the top down.
    scope: Vec<(usize, usize)>,
    /// The enclosing parallel step and branch, if any.
    pub parent: Option<(usize, usize)>,
    /// `next:` or the fall-through.
    pub next: Target,
    /// `onReject:` (approvals).
    pub on_reject: Option<Target>,
    /// `onError:` (service tasks).
    pub on_error: Option<Target>,
    /// `onTimeout: <step>` (approvals).
    pub on_timeout: Option<Target>,
    /// Each decision rule's `goto`, in order.
    pub rules: Vec<Target>,
    /// The decision's `default`.
    pub default: Option<Target>,
    /// The first target of each parallel branch.
    pub branches: Vec<Target>,
}

impl StepNode {
    /// Branch path: (parallel step index, branch number) from the top down.
    #[must_use]
    pub fn scope(&self) -> &[(usize, usize)] {
        &self.scope
    }
}

/// A reference as the graph stage resolved it: a target, or an id that no step has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ref {
    /// The referenced step, end of branch or end.
    To(Target),
    /// No step has the id (`flowc::graph::unknown-step`): the graph gets no edge.
    Unknown,
}

impl Ref {
    /// The target the runtime follows: an unknown id (never in a compiled flow) ends.
    fn target(self) -> Target {
        match self {
            Ref::To(t) => t,
            Ref::Unknown => Target::End,
        }
    }
}

/// Every reference of one step, resolved once: the graph's edges read these, and the
/// [`StepNode`]s are made from them.
#[derive(Clone, Debug)]
pub(super) struct Links {
    pub next: Ref,
    pub on_reject: Option<Ref>,
    pub on_error: Option<Ref>,
    pub on_timeout: Option<Ref>,
    pub rules: Vec<Ref>,
    pub default: Option<Ref>,
    pub branches: Vec<Ref>,
}

/// Every step of a flow in document order (nested steps after their parallel), with
/// its references resolved, and the index of each id.
#[derive(Clone, Debug, Default)]
pub struct StepIndex {
    nodes: Vec<StepNode>,
    by_id: HashMap<String, usize>,
}

struct Raw<'f> {
    step: &'f Step,
    path: Vec<(usize, usize)>,
    pos: usize,
    scope: Vec<(usize, usize)>,
    fall: Target,
}

fn collect<'f>(
    list: &'f [Step],
    path: &[(usize, usize)],
    scope: &[(usize, usize)],
    out: &mut Vec<Raw<'f>>,
) {
    // indices of this list's steps, known only after nested lists are collected
    let mut mine = Vec::with_capacity(list.len());
    for (pos, s) in list.iter().enumerate() {
        let idx = out.len();
        mine.push(idx);
        out.push(Raw {
            step: s,
            path: path.to_vec(),
            pos,
            scope: scope.to_vec(),
            fall: Target::End,
        });
        if let StepKind::Parallel { branches, .. } = &s.kind {
            for (b, br) in branches.iter().enumerate() {
                let mut inner_path = path.to_vec();
                inner_path.push((pos, b));
                let mut inner_scope = scope.to_vec();
                inner_scope.push((idx, b));
                collect(&br.steps, &inner_path, &inner_scope, out);
            }
        }
    }
    let end = match scope.last() {
        Some(&(parallel, branch)) => Target::BranchEnd { parallel, branch },
        None => Target::End,
    };
    for (k, idx) in mine.iter().enumerate() {
        let fall = mine.get(k + 1).map_or(end, |n| Target::Step(*n));
        if let Some(r) = out.get_mut(*idx) {
            r.fall = fall;
        }
    }
}

impl StepIndex {
    /// Walks the flow once and resolves every reference; also returns each step and
    /// its references as resolved.
    pub(super) fn build(flow: &Flow) -> (Self, Vec<&Step>, Vec<Links>) {
        let mut raw = Vec::new();
        collect(&flow.steps, &[], &[], &mut raw);
        let mut by_id = HashMap::new();
        for (i, r) in raw.iter().enumerate() {
            by_id.entry(r.step.id.value.clone()).or_insert(i);
        }
        let to = |id: &str| {
            by_id
                .get(id)
                .map_or(Ref::Unknown, |i| Ref::To(Target::Step(*i)))
        };
        let links: Vec<Links> = raw
            .iter()
            .enumerate()
            .map(|(idx, r)| {
                let s = r.step;
                let mut n = Links {
                    next: s.next.as_ref().map_or(Ref::To(r.fall), |n| to(&n.value)),
                    on_reject: None,
                    on_error: None,
                    on_timeout: None,
                    rules: Vec::new(),
                    default: None,
                    branches: Vec::new(),
                };
                match &s.kind {
                    StepKind::Approval {
                        on_reject,
                        on_timeout,
                        ..
                    } => {
                        n.on_reject = on_reject.as_ref().map(|r| to(&r.value));
                        if let Some(Spanned {
                            value: OnTimeout::Goto(id),
                            ..
                        }) = on_timeout
                        {
                            n.on_timeout = Some(to(id));
                        }
                    }
                    StepKind::ServiceTask { on_error, .. } => {
                        n.on_error = on_error.as_ref().map(|r| to(&r.value));
                    }
                    StepKind::Decision { rules, default, .. } => {
                        n.rules = rules.iter().map(|r| to(&r.goto.value)).collect();
                        n.default = default.as_ref().map(|d| to(&d.value));
                    }
                    StepKind::Parallel { branches, .. } => {
                        n.branches = branches
                            .iter()
                            .enumerate()
                            .map(|(b, br)| {
                                br.steps.first().map_or(
                                    Ref::To(Target::BranchEnd {
                                        parallel: idx,
                                        branch: b,
                                    }),
                                    |f| to(&f.id.value),
                                )
                            })
                            .collect();
                    }
                    StepKind::Notify { .. } | StepKind::End { .. } => {}
                }
                n
            })
            .collect();
        let nodes = raw
            .iter()
            .zip(&links)
            .map(|(r, l)| StepNode {
                path: r.path.clone(),
                pos: r.pos,
                scope: r.scope.clone(),
                parent: r.scope.last().copied(),
                next: l.next.target(),
                on_reject: l.on_reject.map(Ref::target),
                on_error: l.on_error.map(Ref::target),
                on_timeout: l.on_timeout.map(Ref::target),
                rules: l.rules.iter().map(|r| r.target()).collect(),
                default: l.default.map(Ref::target),
                branches: l.branches.iter().map(|r| r.target()).collect(),
            })
            .collect();
        let steps = raw.iter().map(|r| r.step).collect();
        (Self { nodes, by_id }, steps, links)
    }

    /// Every step's resolved node, in document order.
    #[must_use]
    pub fn nodes(&self) -> &[StepNode] {
        &self.nodes
    }

    /// The index of a step by id (its first definition).
    #[must_use]
    pub fn step_index(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// The step at `index` in `flow` (the flow this index was built from).
    #[must_use]
    pub fn step<'f>(&self, flow: &'f Flow, index: usize) -> Option<&'f Step> {
        let node = self.nodes.get(index)?;
        let mut list = &flow.steps;
        for (i, b) in &node.path {
            match &list.get(*i)?.kind {
                StepKind::Parallel { branches, .. } => list = &branches.get(*b)?.steps,
                _ => return None,
            }
        }
        list.get(node.pos)
    }

    /// The first target of the flow.
    #[must_use]
    pub fn entry(&self) -> Target {
        if self.nodes.is_empty() {
            Target::End
        } else {
            Target::Step(0)
        }
    }
}
