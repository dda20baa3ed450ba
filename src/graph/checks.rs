//! The checks of SPEC §3 on a built [`Graph`]: ids, references, step options,
//! reachability, reaching an end, and loops of automatic steps.

use std::collections::HashMap;

use petgraph::Direction;
use petgraph::graph::NodeIndex;
use petgraph::visit::{Bfs, EdgeRef, Reversed};

use super::{Graph, GraphError, Node, StepInfo, references};
use crate::diagnostic::{MAX_LISTED, bounded_list, did_you_mean, suggestion_help};
use crate::model::{Assignees, Mode, OnTimeout, Spanned, Step, StepKind};
use crate::span::Span;

/// Runs every graph check of SPEC §3 (the decision-rule analysis is [`super::rules::check_decision`],
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

/// Blank names (errors: no one can be asked, [`crate::model::is_blank_name`]), names
/// with white space around them (errors: [`crate::model::is_padded_name`]) and
/// repeated users in one `users:` list (warnings).
fn check_users(id: &str, field: &'static str, a: &Assignees, errs: &mut Vec<GraphError>) {
    let (kind, names): (&'static str, &[Spanned<String>]) = match a {
        Assignees::Role(r) => ("role", std::slice::from_ref(r)),
        Assignees::User(u) => ("user", std::slice::from_ref(u)),
        Assignees::Users(us) => ("user", us.as_slice()),
        Assignees::Expr(_) => return,
    };
    // an empty name is the schema's to report (`minLength`), and what a recovering
    // build puts where a name is missing; white space only is this stage's
    let blank = |n: &Spanned<String>| !n.value.is_empty() && crate::model::is_blank_name(&n.value);
    for (i, n) in names.iter().enumerate() {
        let entry = || match a {
            Assignees::Users(_) => format!("users[{i}]"),
            _ => kind.to_owned(),
        };
        if blank(n) {
            errs.push(GraphError::BlankAssignee {
                kind,
                entry: entry(),
                id: id.to_owned(),
                field,
                span: n.span,
            });
        } else if crate::model::is_padded_name(&n.value) {
            errs.push(GraphError::PaddedAssignee {
                entry: entry(),
                id: id.to_owned(),
                field,
                name: n.value.clone(),
                span: n.span,
            });
        }
    }
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
                timeout_refused,
                ..
            } => {
                if t.value == OnTimeout::Escalate && escalate_to.is_none() {
                    errs.push(GraphError::MissingEscalation {
                        id: id(),
                        span: t.span,
                    });
                }
                if timeout.is_none() && !timeout_refused {
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
