//! Stage 5: the step graph (petgraph) and the checks of SPEC §3.

mod checks;
mod index;
pub mod render;
pub mod rules;

use std::collections::HashMap;

use miette::Diagnostic as MietteDiagnostic;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use thiserror::Error;

use crate::diagnostic::bounded_list;
use crate::model::{Flow, OnTimeout, Spanned, Step, StepKind};
use crate::span::Span;
pub use checks::check;
use index::{Links, Ref};
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

/// Why the decision analysis left two rules undecided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotAnalysed {
    /// The fields the two rules read have too many combinations of values to try.
    TooManyCases,
    /// The analysis of the decision spent its budget
    /// ([`Limits::MAX_DECISION_WORK`](crate::limits::Limits::MAX_DECISION_WORK)); the
    /// rules after this point are not analysed either.
    BudgetSpent,
}

impl std::fmt::Display for NotAnalysed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NotAnalysed::TooManyCases => "their fields have too many combinations of values to try",
            NotAnalysed::BudgetSpent => {
                "the decision's analysis ran out of its work budget here, and stopped"
            }
        })
    }
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
    /// A rule after a rule that always holds, under `first`.
    #[error("rule {index} of decision `{id}` is unreachable: rule {always_index} is always true")]
    #[diagnostic(
        code("flowc::graph::unreachable-rule"),
        severity(Warning),
        help(
            "under `hitPolicy: first` the first rule that holds wins, and rule {always_index} always holds; remove its condition's constant part, or move it last (or make it the `default`)"
        )
    )]
    UnreachableRule {
        /// The decision.
        id: String,
        /// 1-based rule number.
        index: usize,
        /// The rule that always holds (1-based).
        always_index: usize,
        /// Where.
        #[label("never chosen")]
        span: Span,
        /// The rule that always holds.
        #[label("always true")]
        always: Span,
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
    /// Two rules of a decision the analysis could not decide together: reported rather
    /// than passed as clean.
    #[error(
        "rules {first_index} and {index} of decision `{id}` were not analysed together: {reason}"
    )]
    #[diagnostic(
        code("flowc::graph::decision-not-analysed"),
        severity(Warning),
        help(
            "overlaps (under `unique`) and shadowed rules (under `first`) are not known for these rules; split the decision into smaller ones (a decision per leading field), or compare fewer fields per rule"
        )
    )]
    OverlapNotAnalysed {
        /// The decision.
        id: String,
        /// 1-based later rule.
        index: usize,
        /// 1-based earlier rule.
        first_index: usize,
        /// Why.
        reason: NotAnalysed,
        /// Where.
        #[label(primary, "not analysed")]
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
    /// A user or role name that is empty or shows nothing
    /// ([`crate::model::is_blank_name`]).
    #[error("`{entry}` in `{field}` of step `{id}` is blank")]
    #[diagnostic(
        code("flowc::graph::blank-assignee"),
        help(
            "a name of only white space (or invisible characters) names no one: write the {kind}'s name, or remove the entry"
        )
    )]
    BlankAssignee {
        /// `user` or `role`.
        kind: &'static str,
        /// The entry: `user`, `role` or `users[i]`.
        entry: String,
        /// The step.
        id: String,
        /// `assignees`, `escalateTo` or `to`.
        field: &'static str,
        /// The name.
        #[label("no name here")]
        span: Span,
    },
    /// A user or role name with white space before or after it
    /// ([`crate::model::is_padded_name`]).
    #[error("`{entry}` in `{field}` of step `{id}` has white space around the name: {}", padded(.name))]
    #[diagnostic(
        code("flowc::graph::padded-assignee"),
        help("remove the spaces around the name")
    )]
    PaddedAssignee {
        /// The entry: `user`, `role` or `users[i]`.
        entry: String,
        /// The step.
        id: String,
        /// `assignees`, `escalateTo` or `to`.
        field: &'static str,
        /// The name as written.
        name: String,
        /// The name.
        #[label("white space around the name")]
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
/// A padded name as its error quotes it: in quotes, so the spaces show, and cut by the
/// one rule for quoted input ([`crate::diagnostic::excerpt`]).
fn padded(name: &str) -> String {
    format!("{:?}", crate::diagnostic::excerpt(name))
}

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
        let (index, step_refs, links) = StepIndex::build(flow);
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
        g.entry = g.step_nodes.first().copied();
        // the steps of each list (the top level, each branch), in order
        let mut lists: HashMap<Option<(usize, usize)>, Vec<usize>> = HashMap::new();
        for (i, n) in g.index.nodes().iter().enumerate() {
            lists.entry(n.parent).or_default().push(i);
        }
        g.add_edges(&links, &lists, None);
        g
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

    /// The node a resolved reference leads to (`None` for an unknown id: no edge).
    fn node(&self, r: Ref) -> Option<NodeIndex> {
        match r {
            Ref::Unknown => None,
            Ref::To(Target::Step(j)) => self.step_nodes.get(j).copied(),
            Ref::To(Target::BranchEnd { parallel, .. }) => self.joins.get(&parallel).copied(),
            Ref::To(Target::End) => Some(self.end_approved),
        }
    }

    /// Adds the edges of one step list (the top level, or branch `b` of parallel step
    /// `p` for `Some((p, b))`) from the references as resolved; a branch's edges come
    /// before its parallel step's own, as the renderers have always listed them.
    fn add_edges(
        &mut self,
        links: &[Links],
        lists: &HashMap<Option<(usize, usize)>, Vec<usize>>,
        parent: Option<(usize, usize)>,
    ) {
        let Some(list) = lists.get(&parent) else {
            return;
        };
        for &i in list {
            let (Some(s), Some(l), Some(&me)) = (
                self.steps.get(i).map(|x| x.step),
                links.get(i),
                self.step_nodes.get(i),
            ) else {
                continue;
            };
            let next = self.node(l.next);
            let mut edges: Vec<(NodeIndex, Edge)> = Vec::new();
            match &s.kind {
                StepKind::End { .. } => {}
                StepKind::Approval { on_timeout, .. } => {
                    edges.extend(next.map(|n| (n, Edge::Next)));
                    match l.on_reject {
                        Some(r) => edges.extend(self.node(r).map(|n| (n, Edge::Reject))),
                        None => edges.push((self.end_rejected, Edge::Reject)),
                    }
                    if let Some(t) = on_timeout {
                        match &t.value {
                            OnTimeout::Goto(_) => edges.extend(
                                l.on_timeout
                                    .and_then(|r| self.node(r))
                                    .map(|n| (n, Edge::Timeout)),
                            ),
                            OnTimeout::Reject => edges.push((self.end_rejected, Edge::Timeout)),
                            OnTimeout::Approve | OnTimeout::Escalate => {}
                        }
                    }
                }
                StepKind::ServiceTask { .. } => {
                    edges.extend(next.map(|n| (n, Edge::Next)));
                    if let Some(r) = l.on_error {
                        edges.extend(self.node(r).map(|n| (n, Edge::Error)));
                    }
                }
                StepKind::Notify { .. } => edges.extend(next.map(|n| (n, Edge::Next))),
                StepKind::Decision { .. } => {
                    for (k, r) in l.rules.iter().enumerate() {
                        edges.extend(self.node(*r).map(|n| (n, Edge::Rule(k))));
                    }
                    if let Some(d) = l.default {
                        edges.extend(self.node(d).map(|n| (n, Edge::Default)));
                    }
                }
                StepKind::Parallel { .. } => {
                    let Some(join) = self.joins.get(&i).copied() else {
                        continue;
                    };
                    for (b, first) in l.branches.iter().enumerate() {
                        edges.push((self.node(*first).unwrap_or(join), Edge::Fork(b)));
                        self.add_edges(links, lists, Some((i, b)));
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
