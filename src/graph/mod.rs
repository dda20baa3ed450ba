//! Stage 5: the step graph (petgraph) and the checks of SPEC §3.

mod index;
pub mod render;
pub mod rules;

use std::collections::HashMap;

use miette::Diagnostic as MietteDiagnostic;
use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Bfs, EdgeRef, Reversed};
use thiserror::Error;

use crate::diagnostic::{MAX_LISTED, bounded_list, did_you_mean, suggestion_help};
use crate::model::{Assignees, Flow, Mode, OnTimeout, Spanned, Step, StepKind};
use crate::span::Span;
pub use index::{StepIndex, StepNode, Target};

/// A node of the step graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// A step, by index into [`Graph::steps`].
    Step(usize),
    /// The join of a parallel step (by step index).
    Join(usize),
    /// The implicit approved end (falling off the top-level list).
    EndApproved,
    /// The implicit rejected end (a rejection nobody handles).
    EndRejected,
}

/// Why an edge is taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edge {
    /// Fall-through or `next`.
    Next,
    /// Decision rule `n` (0-based) holds.
    Rule(usize),
    /// No rule holds.
    Default,
    /// Rejected.
    Reject,
    /// Timed out.
    Timeout,
    /// Service error.
    Error,
    /// Parallel fork into branch `n`.
    Fork(usize),
    /// A branch reaches its join.
    Join,
}

/// One step with where it sits.
#[derive(Clone, Debug)]
pub struct StepInfo<'f> {
    /// The step.
    pub step: &'f Step,
    /// Branch path: (parallel step index, branch number) from the top down.
    pub scope: Vec<(usize, usize)>,
}

/// The built graph of one flow. The petgraph graph stays inside this module: other
/// stages read the resolved [`StepIndex`] and the labelled [`Graph::edges`].
#[derive(Debug)]
pub struct Graph<'f> {
    /// Every step, in document order (nested steps after their parallel).
    pub steps: Vec<StepInfo<'f>>,
    /// The resolved step index (one per flow, shared with compile and the runtime).
    index: StepIndex,
    net: DiGraph<Node, Edge>,
    /// Node of each step.
    step_nodes: Vec<NodeIndex>,
    /// Join node per parallel step index.
    joins: HashMap<usize, NodeIndex>,
    end_approved: NodeIndex,
    end_rejected: NodeIndex,
    entry: Option<NodeIndex>,
}

/// Errors and warnings about the step graph.
#[derive(Debug, Error, MietteDiagnostic)]
#[non_exhaustive]
pub enum GraphError {
    /// Two steps with one id.
    #[error("duplicate step id `{id}`")]
    #[diagnostic(
        code("flowc::graph::duplicate-step-id"),
        help("step ids must be unique in the whole flow; rename one")
    )]
    DuplicateStepId {
        /// The id.
        id: String,
        /// The second definition.
        #[label(primary, "defined again here")]
        span: Span,
        /// The first.
        #[label("first defined here")]
        first: Span,
    },
    /// A reference to a step that does not exist.
    #[error("unknown step `{id}` in `{field}`")]
    #[diagnostic(code("flowc::graph::unknown-step"))]
    UnknownStep {
        /// The id.
        id: String,
        /// The referring key.
        field: &'static str,
        /// Where.
        #[label("no step has this id")]
        span: Span,
        /// Suggestion.
        #[help]
        help: String,
    },
    /// A step that no path reaches (and the unreachable steps only it leads to).
    #[error("step `{id}` can never be reached{}", nor(.more, ""))]
    #[diagnostic(
        code("flowc::graph::unreachable-step"),
        severity(Warning),
        help("route to it with `next`, `goto`, `default` or `onReject`, or remove it")
    )]
    Unreachable {
        /// The id.
        id: String,
        /// The other unreachable steps it leads to (reported with it, not apart).
        more: Vec<String>,
        /// Where.
        #[label("unreachable")]
        span: Span,
    },
    /// A step from which no end can be reached (and the steps it leads to).
    #[error("no end can be reached from step `{id}`{}", nor(.more, "from "))]
    #[diagnostic(
        code("flowc::graph::no-end"),
        help(
            "every path must be able to finish: add an exit from the loop (a rule, `next` or an `end` step)"
        )
    )]
    NoEnd {
        /// The id.
        id: String,
        /// The other such steps it leads to (reported with it, not apart).
        more: Vec<String>,
        /// Where.
        #[label("instances entering here can never finish")]
        span: Span,
    },
    /// A cycle without a human wait.
    #[error("possible infinite loop through {ids}")]
    #[diagnostic(
        code("flowc::graph::automatic-cycle"),
        help(
            "a loop must pass through an approval that cannot be skipped, so that a person decides each round"
        )
    )]
    AutomaticCycle {
        /// The first steps of the loop, and how many more there are.
        ids: String,
        /// The first step of the loop.
        #[label(primary, "this loop has no human wait")]
        span: Span,
        /// The others.
        #[label(collection, "part of the loop")]
        others: Vec<miette::LabeledSpan>,
    },
    /// A reference that leaves a parallel branch.
    #[error("`{field}` of step `{from}` leaves its parallel branch to `{to}`")]
    #[diagnostic(
        code("flowc::graph::branch-escape"),
        help(
            "a branch ends at its join; route inside the branch, or continue after the parallel step"
        )
    )]
    BranchEscape {
        /// The referring step.
        from: String,
        /// The target.
        to: String,
        /// The key.
        field: &'static str,
        /// Where.
        #[label("target is outside this branch")]
        span: Span,
    },
    /// A reference into a parallel branch from outside.
    #[error("`{field}` of step `{from}` jumps into a parallel branch at `{to}`")]
    #[diagnostic(
        code("flowc::graph::branch-entry"),
        help(
            "branches start only through their parallel step; route to the parallel step instead"
        )
    )]
    BranchEntry {
        /// The referring step.
        from: String,
        /// The target.
        to: String,
        /// The key.
        field: &'static str,
        /// Where.
        #[label("target is inside a branch")]
        span: Span,
    },
    /// A parallel branch without steps.
    #[error("branch {index} of parallel step `{id}` is empty")]
    #[diagnostic(
        code("flowc::graph::empty-branch"),
        help("add steps to the branch or remove it")
    )]
    EmptyBranch {
        /// The parallel step.
        id: String,
        /// 1-based branch number.
        index: usize,
        /// Where.
        #[label("no steps")]
        span: Span,
    },
    /// A decision whose rules may all fail, without a default.
    #[error("decision `{id}` has no `default` and its rules are not provably exhaustive")]
    #[diagnostic(
        code("flowc::graph::non-exhaustive-decision"),
        severity(Warning),
        help(
            "add `default: <step id>`; when no rule holds at run time the instance raises an incident"
        )
    )]
    NonExhaustive {
        /// The decision.
        id: String,
        /// Where.
        #[label("no default")]
        span: Span,
    },
    /// `onTimeout: escalate` without `escalateTo`.
    #[error("step `{id}` escalates on timeout but has no `escalateTo`")]
    #[diagnostic(
        code("flowc::graph::missing-escalation"),
        help("add `escalateTo: {{ role: ... }}`")
    )]
    MissingEscalation {
        /// The step.
        id: String,
        /// Where.
        #[label("escalate to whom?")]
        span: Span,
    },
    /// `onTimeout` without `timeout`.
    #[error("step `{id}` has `onTimeout` but no `timeout`")]
    #[diagnostic(
        code("flowc::graph::timeout-without-duration"),
        severity(Warning),
        help("add `timeout: 48h` (or remove `onTimeout`)")
    )]
    TimeoutWithoutDuration {
        /// The step.
        id: String,
        /// Where.
        #[label("never fires")]
        span: Span,
    },
    /// A rule that can never be chosen under `first`.
    #[error("rule {index} of decision `{id}` is shadowed by earlier rules")]
    #[diagnostic(
        code("flowc::graph::shadowed-rule"),
        severity(Warning),
        help("whenever this rule holds an earlier rule holds too; reorder or remove it")
    )]
    ShadowedRule {
        /// The decision.
        id: String,
        /// 1-based rule number.
        index: usize,
        /// Where.
        #[label("never chosen")]
        span: Span,
    },
    /// Two rules that can hold together under `unique`.
    #[error("rules {first_index} and {index} of decision `{id}` overlap")]
    #[diagnostic(
        code("flowc::graph::overlapping-rules"),
        help("under `hitPolicy: unique` at most one rule may hold; make the ranges disjoint")
    )]
    OverlappingRules {
        /// The decision.
        id: String,
        /// 1-based later rule.
        index: usize,
        /// 1-based earlier rule.
        first_index: usize,
        /// Where.
        #[label(primary, "overlaps")]
        span: Span,
        /// The earlier rule.
        #[label("with this rule")]
        first: Span,
    },
    /// An `end` step inside a parallel branch.
    #[error("`end` step `{id}` is inside branch {branch} of parallel step `{parallel}`")]
    #[diagnostic(
        code("flowc::graph::end-in-branch"),
        help(
            "a branch cannot end the instance: its join waits for every branch (or, under `join: any`, cancels the others) and the steps after it must run; remove the `end` so that the branch reaches its join, and end after the join (for example a `decision` after the parallel step that routes to an `end`)"
        )
    )]
    EndInBranch {
        /// The end step.
        id: String,
        /// The parallel step.
        parallel: String,
        /// 1-based branch number.
        branch: usize,
        /// Where.
        #[label("ends the whole instance from inside a branch")]
        span: Span,
    },
    /// The same user twice in one `users:` list.
    #[error("user `{user}` is listed twice in `{field}` of step `{id}`")]
    #[diagnostic(
        code("flowc::graph::duplicate-assignee"),
        severity(Warning),
        help(
            "each user is one assignee (under `all` one approval counts once); remove the repeated entry"
        )
    )]
    DuplicateAssignee {
        /// The user.
        user: String,
        /// The step.
        id: String,
        /// `assignees`, `escalateTo` or `to`.
        field: &'static str,
        /// The repeated entry.
        #[label(primary, "listed again here")]
        span: Span,
        /// The first entry.
        #[label("first listed here")]
        first: Span,
    },
    /// `mode: single` with several fixed users.
    #[error("approval `{id}` has `mode: single` but {count} users")]
    #[diagnostic(
        code("flowc::graph::single-with-several-users"),
        severity(Warning),
        help(
            "under `single` the first of these users to decide decides for all, as under `any`: write `mode: any` if that is meant, name one `user:`, or use `all`/`sequence` if each must approve"
        )
    )]
    SingleWithSeveralUsers {
        /// The step.
        id: String,
        /// Distinct users listed.
        count: usize,
        /// The users after the first.
        #[label(collection, "also decides alone")]
        others: Vec<miette::LabeledSpan>,
    },
}

/// `, nor from the steps it leads to: `a`, `b`, … and N more` (empty for none).
fn nor(more: &[String], from: &str) -> String {
    let ids: Vec<String> = more.iter().map(|id| format!("`{id}`")).collect();
    match ids.as_slice() {
        [] => String::new(),
        [one] => format!(", nor {from}{one}, which it leads to"),
        _ => format!(
            ", nor {from}the {} steps it leads to: {}",
            ids.len(),
            bounded_list(&ids, ", ")
        ),
    }
}

/// One reference from a step to another step by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reference<'f> {
    /// The key that holds it (`next`, `goto`, `default`, `onReject`, `onError`, `onTimeout`).
    pub field: &'static str,
    /// The referenced id.
    pub id: &'f str,
    /// Where it is written.
    pub span: Span,
}

/// Every reference a step makes, in the order written.
#[must_use]
pub fn references(s: &Step) -> Vec<Reference<'_>> {
    fn to<'a>(field: &'static str, target: &'a Spanned<String>) -> Reference<'a> {
        Reference {
            field,
            id: target.value.as_str(),
            span: target.span,
        }
    }
    let mut v = Vec::new();
    if let Some(n) = &s.next {
        v.push(to("next", n));
    }
    match &s.kind {
        StepKind::Approval {
            on_reject,
            on_timeout,
            ..
        } => {
            if let Some(r) = on_reject {
                v.push(to("onReject", r));
            }
            if let Some(Spanned {
                value: OnTimeout::Goto(id),
                span,
            }) = on_timeout
            {
                v.push(Reference {
                    field: "onTimeout",
                    id: id.as_str(),
                    span: *span,
                });
            }
        }
        StepKind::ServiceTask {
            on_error: Some(r), ..
        } => v.push(to("onError", r)),
        StepKind::Decision { rules, default, .. } => {
            for r in rules {
                v.push(to("goto", &r.goto));
            }
            if let Some(d) = default {
                v.push(to("default", d));
            }
        }
        _ => {}
    }
    v
}

impl<'f> Graph<'f> {
    /// Builds the graph (unknown references simply get no edge; [`check`] reports them).
    #[must_use]
    pub fn build(flow: &'f Flow) -> Self {
        let (index, step_refs) = StepIndex::build(flow);
        let steps: Vec<StepInfo<'f>> = step_refs
            .into_iter()
            .zip(index.nodes())
            .map(|(step, node)| StepInfo {
                step,
                scope: node.scope().to_vec(),
            })
            .collect();
        let mut net = DiGraph::new();
        let step_nodes: Vec<NodeIndex> = (0..steps.len())
            .map(|i| net.add_node(Node::Step(i)))
            .collect();
        let end_approved = net.add_node(Node::EndApproved);
        let end_rejected = net.add_node(Node::EndRejected);
        let mut joins = HashMap::new();
        for (i, s) in steps.iter().enumerate() {
            if matches!(s.step.kind, StepKind::Parallel { .. }) {
                joins.insert(i, net.add_node(Node::Join(i)));
            }
        }
        let mut g = Self {
            steps,
            net,
            index,
            step_nodes,
            joins,
            end_approved,
            end_rejected,
            entry: None,
        };
        g.entry = flow.steps.first().and_then(|s| g.node_of(&s.id.value));
        g.add_edges(&flow.steps, None);
        g
    }

    fn node_of(&self, id: &str) -> Option<NodeIndex> {
        self.index
            .step_index(id)
            .and_then(|i| self.step_nodes.get(i))
            .copied()
    }

    /// The resolved step index.
    #[must_use]
    pub fn index(&self) -> &StepIndex {
        &self.index
    }

    /// The resolved step index, keeping it beyond the graph.
    #[must_use]
    pub fn into_index(self) -> StepIndex {
        self.index
    }

    /// Every labelled edge: (from, why, to), in the order they were added.
    pub fn edges(&self) -> impl Iterator<Item = (&Node, &Edge, &Node)> {
        self.net.edge_references().filter_map(|e| {
            Some((
                self.net.node_weight(e.source())?,
                e.weight(),
                self.net.node_weight(e.target())?,
            ))
        })
    }

    /// Adds the edges of one step list; `after` is where falling off the list goes
    /// (`None`: the top level, i.e. the approved end).
    fn add_edges(&mut self, list: &'f [Step], after: Option<NodeIndex>) {
        let fall_off = after.unwrap_or(self.end_approved);
        for (pos, s) in list.iter().enumerate() {
            let Some(me) = self.node_of(&s.id.value) else {
                continue;
            };
            let fallthrough = list
                .get(pos + 1)
                .and_then(|n| self.node_of(&n.id.value))
                .unwrap_or(fall_off);
            let next = match &s.next {
                Some(n) => self.node_of(&n.value),
                None => Some(fallthrough),
            };
            let mut edges: Vec<(NodeIndex, Edge)> = Vec::new();
            match &s.kind {
                StepKind::End { .. } => {}
                StepKind::Approval {
                    on_reject,
                    on_timeout,
                    ..
                } => {
                    edges.extend(next.map(|n| (n, Edge::Next)));
                    match on_reject {
                        Some(r) => edges.extend(self.node_of(&r.value).map(|n| (n, Edge::Reject))),
                        None => edges.push((self.end_rejected, Edge::Reject)),
                    }
                    if let Some(t) = on_timeout {
                        match &t.value {
                            OnTimeout::Goto(id) => {
                                edges.extend(self.node_of(id).map(|n| (n, Edge::Timeout)));
                            }
                            OnTimeout::Reject => edges.push((self.end_rejected, Edge::Timeout)),
                            OnTimeout::Approve | OnTimeout::Escalate => {}
                        }
                    }
                }
                StepKind::ServiceTask { on_error, .. } => {
                    edges.extend(next.map(|n| (n, Edge::Next)));
                    if let Some(r) = on_error {
                        edges.extend(self.node_of(&r.value).map(|n| (n, Edge::Error)));
                    }
                }
                StepKind::Notify { .. } => edges.extend(next.map(|n| (n, Edge::Next))),
                StepKind::Decision { rules, default, .. } => {
                    for (i, r) in rules.iter().enumerate() {
                        edges.extend(self.node_of(&r.goto.value).map(|n| (n, Edge::Rule(i))));
                    }
                    if let Some(d) = default {
                        edges.extend(self.node_of(&d.value).map(|n| (n, Edge::Default)));
                    }
                }
                StepKind::Parallel { branches, .. } => {
                    let my_idx = self.index.step_index(&s.id.value).unwrap_or(0);
                    let Some(join) = self.joins.get(&my_idx).copied() else {
                        continue;
                    };
                    for (b, br) in branches.iter().enumerate() {
                        match br.steps.first().and_then(|f| self.node_of(&f.id.value)) {
                            Some(first) => edges.push((first, Edge::Fork(b))),
                            None => edges.push((join, Edge::Fork(b))),
                        }
                        self.add_edges(&br.steps, Some(join));
                    }
                    if let Some(n) = next {
                        self.net.add_edge(join, n, Edge::Next);
                    }
                }
            }
            for (to, e) in edges {
                self.net.add_edge(me, to, e);
            }
        }
    }

    /// Does this step wait for a person every time it is entered?
    fn waits(step: &Step) -> bool {
        matches!(step.kind, StepKind::Approval { .. }) && step.skip.is_none()
    }
}

/// Runs every graph check of SPEC §3 (the decision-rule analysis is [`rules::check_decision`],
/// run per decision once its conditions are type-checked).
#[must_use]
pub fn check(g: &Graph<'_>) -> Vec<GraphError> {
    let mut errs = Vec::new();
    check_ids(g, &mut errs);
    check_references(g, &mut errs);
    check_step_options(g, &mut errs);
    check_reachability(g, &mut errs);
    check_cycles(g, &mut errs);
    errs
}

fn check_ids(g: &Graph<'_>, errs: &mut Vec<GraphError>) {
    let mut seen: HashMap<&str, Span> = HashMap::new();
    for s in &g.steps {
        let id = s.step.id.value.as_str();
        match seen.get(id) {
            Some(first) => errs.push(GraphError::DuplicateStepId {
                id: id.to_owned(),
                span: s.step.id.span,
                first: *first,
            }),
            None => {
                seen.insert(id, s.step.id.span);
            }
        }
    }
}

/// Unknown targets, and targets across a parallel branch boundary.
fn check_references(g: &Graph<'_>, errs: &mut Vec<GraphError>) {
    let ids: Vec<&str> = g.steps.iter().map(|s| s.step.id.value.as_str()).collect();
    for s in &g.steps {
        for r in references(s.step) {
            let Some(t) = g.index.step_index(r.id).and_then(|i| g.steps.get(i)) else {
                let (fallback, fixed): (&str, &[&str]) = if r.field == "onTimeout" {
                    (
                        "use escalate, approve, reject or the id of a step",
                        &["escalate", "approve", "reject"],
                    )
                } else {
                    ("use the id of a step of this flow", &[])
                };
                let candidates = ids.iter().chain(fixed).copied();
                errs.push(GraphError::UnknownStep {
                    id: r.id.to_owned(),
                    field: r.field,
                    span: r.span,
                    help: suggestion_help(did_you_mean(r.id, candidates).as_deref(), fallback),
                });
                continue;
            };
            if t.scope == s.scope {
                continue;
            }
            let (from, to, field, span) =
                (s.step.id.value.clone(), r.id.to_owned(), r.field, r.span);
            errs.push(if s.scope.starts_with(&t.scope) {
                GraphError::BranchEscape {
                    from,
                    to,
                    field,
                    span,
                }
            } else {
                GraphError::BranchEntry {
                    from,
                    to,
                    field,
                    span,
                }
            });
        }
    }
}

/// Repeated users in one `users:` list (warnings).
fn check_users(id: &str, field: &'static str, a: &Assignees, errs: &mut Vec<GraphError>) {
    let Assignees::Users(users) = a else {
        return;
    };
    let mut seen: HashMap<&str, Span> = HashMap::new();
    for u in users {
        match seen.get(u.value.as_str()) {
            Some(first) => errs.push(GraphError::DuplicateAssignee {
                user: u.value.clone(),
                id: id.to_owned(),
                field,
                span: u.span,
                first: *first,
            }),
            None => {
                seen.insert(&u.value, u.span);
            }
        }
    }
}

/// `mode: single` (the default) over several distinct fixed users (warning).
fn check_single(s: &Step, errs: &mut Vec<GraphError>) {
    let StepKind::Approval {
        assignees: Assignees::Users(users),
        mode: Mode::Single,
        ..
    } = &s.kind
    else {
        return;
    };
    let mut distinct: Vec<&Spanned<String>> = Vec::new();
    for u in users {
        if !distinct.iter().any(|d| d.value == u.value) {
            distinct.push(u);
        }
    }
    if distinct.len() > 1 {
        errs.push(GraphError::SingleWithSeveralUsers {
            id: s.id.value.clone(),
            count: distinct.len(),
            others: distinct
                .iter()
                .skip(1)
                .map(|u| {
                    miette::LabeledSpan::new_with_span(
                        Some("also decides alone".to_owned()),
                        u.span,
                    )
                })
                .collect(),
        });
    }
}

/// An `end` inside a parallel branch (its innermost branch is named).
fn check_end_in_branch(g: &Graph<'_>, s: &StepInfo<'_>, errs: &mut Vec<GraphError>) {
    if !matches!(s.step.kind, StepKind::End { .. }) {
        return;
    }
    let Some((parallel, branch)) = s.scope.last() else {
        return;
    };
    errs.push(GraphError::EndInBranch {
        id: s.step.id.value.clone(),
        parallel: g
            .steps
            .get(*parallel)
            .map(|p| p.step.id.value.clone())
            .unwrap_or_default(),
        branch: branch + 1,
        span: s.step.type_span,
    });
}

/// Empty branches, `end` inside branches, assignee lists, and timeout options that
/// cannot work.
fn check_step_options(g: &Graph<'_>, errs: &mut Vec<GraphError>) {
    for s in &g.steps {
        let id = || s.step.id.value.clone();
        check_end_in_branch(g, s, errs);
        check_single(s.step, errs);
        match &s.step.kind {
            StepKind::Approval {
                assignees,
                escalate_to,
                ..
            } => {
                check_users(&s.step.id.value, "assignees", assignees, errs);
                if let Some(e) = escalate_to {
                    check_users(&s.step.id.value, "escalateTo", e, errs);
                }
            }
            StepKind::Notify { to, .. } => check_users(&s.step.id.value, "to", to, errs),
            _ => {}
        }
        match &s.step.kind {
            StepKind::Parallel { branches, .. } => {
                for (i, b) in branches.iter().enumerate() {
                    if b.steps.is_empty() {
                        errs.push(GraphError::EmptyBranch {
                            id: id(),
                            index: i + 1,
                            span: b.span,
                        });
                    }
                }
            }
            StepKind::Approval {
                on_timeout: Some(t),
                escalate_to,
                timeout,
                ..
            } => {
                if t.value == OnTimeout::Escalate && escalate_to.is_none() {
                    errs.push(GraphError::MissingEscalation {
                        id: id(),
                        span: t.span,
                    });
                }
                if timeout.is_none() {
                    errs.push(GraphError::TimeoutWithoutDuration {
                        id: id(),
                        span: t.span,
                    });
                }
            }
            _ => {}
        }
    }
}

/// Marks every node reachable from `starts` in `graph` (which may be reversed).
fn reachable<G>(graph: G, starts: &[NodeIndex], nodes: usize) -> Vec<bool>
where
    G: petgraph::visit::IntoNeighbors<NodeId = NodeIndex> + petgraph::visit::Visitable,
{
    let mut seen = vec![false; nodes];
    for &start in starts {
        let mut bfs = Bfs::new(graph, start);
        while let Some(n) = bfs.next(graph) {
            if let Some(r) = seen.get_mut(n.index()) {
                *r = true;
            }
        }
    }
    seen
}

/// Steps no path reaches (warning), and steps from which no end can be reached.
fn check_reachability(g: &Graph<'_>, errs: &mut Vec<GraphError>) {
    let count = g.net.node_count();
    let reached = reachable(&g.net, &g.entry.into_iter().collect::<Vec<_>>(), count);
    let mut ends = vec![g.end_approved, g.end_rejected];
    ends.extend(
        g.steps
            .iter()
            .zip(&g.step_nodes)
            .filter(|(s, _)| matches!(s.step.kind, StepKind::End { .. }))
            .map(|(_, n)| *n),
    );
    let finishes = reachable(Reversed(&g.net), &ends, count);
    let flag = |v: &[bool], n: NodeIndex| v.get(n.index()).copied().unwrap_or(false);
    // the steps of each region are reported once, at the first step of the region in
    // document order, with a count of the others (a diagnostic stays small)
    let mut covered = vec![false; count];
    for (i, (s, n)) in g.steps.iter().zip(&g.step_nodes).enumerate() {
        // a duplicate id was reported already; only its first definition has edges
        if g.index.step_index(&s.step.id.value) != Some(i) || flag(&covered, *n) {
            continue;
        }
        let (id, span) = (s.step.id.value.clone(), s.step.id.span);
        if !flag(&reached, *n) {
            let more = cover(g, *n, &mut covered, |m| !flag(&reached, m));
            errs.push(GraphError::Unreachable { id, more, span });
        } else if !flag(&finishes, *n) {
            let more = cover(g, *n, &mut covered, |m| !flag(&finishes, m));
            errs.push(GraphError::NoEnd { id, more, span });
        }
    }
}

/// Marks every step reachable from `start` through steps where `inside` holds; returns
/// the ids of the steps other than `start` it newly marked, in document order.
fn cover(
    g: &Graph<'_>,
    start: NodeIndex,
    covered: &mut [bool],
    inside: impl Fn(NodeIndex) -> bool,
) -> Vec<String> {
    let mut more = Vec::new();
    let mut stack = vec![start];
    if let Some(c) = covered.get_mut(start.index()) {
        *c = true;
    }
    while let Some(n) = stack.pop() {
        for m in g.net.neighbors(n) {
            let Some(c) = covered.get_mut(m.index()) else {
                continue;
            };
            if !*c && inside(m) {
                *c = true;
                if let Some(Node::Step(i)) = g.net.node_weight(m) {
                    more.extend(g.steps.get(*i).map(|s| (*i, s.step.id.value.clone())));
                }
                stack.push(m);
            }
        }
    }
    more.sort_unstable();
    more.into_iter().map(|(_, id)| id).collect()
}

/// Cycles with no human wait: the strongly connected components of the graph without
/// its waiting steps.
fn check_cycles(g: &Graph<'_>, errs: &mut Vec<GraphError>) {
    let mut auto = g.net.clone();
    auto.retain_nodes(|gr, n| match gr.node_weight(n) {
        Some(Node::Step(i)) => g.steps.get(*i).is_none_or(|s| !Graph::waits(s.step)),
        _ => true,
    });
    // Kosaraju's algorithm, as petgraph writes it, walks iteratively: Tarjan's recursion
    // overflowed the stack on a few thousand steps in a row
    let mut comps = petgraph::algo::kosaraju_scc(&auto);
    // report loops in the order they are written, whatever order the walk found them in
    for c in &mut comps {
        c.sort_unstable();
    }
    comps.sort_unstable();
    for comp in comps {
        let cyclic = comp.len() > 1
            || comp.first().is_some_and(|n| {
                auto.edges_directed(*n, Direction::Outgoing)
                    .any(|e| e.target() == *n)
            });
        if !cyclic {
            continue;
        }
        let mut members: Vec<&StepInfo<'_>> = comp
            .iter()
            .filter_map(|n| match auto.node_weight(*n) {
                Some(Node::Step(i)) => g.steps.get(*i),
                _ => None,
            })
            .collect();
        members.sort_by_key(|s| s.step.id.span.start);
        let Some(first) = members.first() else {
            continue;
        };
        let ids: Vec<String> = members
            .iter()
            .map(|s| format!("`{}`", s.step.id.value))
            .collect();
        let mut ids = bounded_list(&ids, " → ");
        if members.len() > MAX_LISTED {
            ids.push_str(" steps");
        }
        errs.push(GraphError::AutomaticCycle {
            ids,
            span: first.step.id.span,
            others: members
                .iter()
                .skip(1)
                .take(MAX_LISTED - 1)
                .map(|s| {
                    miette::LabeledSpan::new_with_span(
                        Some("part of the loop".to_owned()),
                        s.step.id.span,
                    )
                })
                .collect(),
        });
    }
}
