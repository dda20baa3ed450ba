//! The semantic diff of two versions of a flow: the audit view of a change before it is
//! published. Steps added, removed, moved or changed field by field (conditions with
//! their old and new text), context fields, and edges of the step graph rerouted.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use serde::Serialize;

use crate::graph::{Edge, Graph, Node};
use crate::model::{
    Assignees, FieldDecl, Flow, HitPolicy, Join, Mode, OnTimeout, Outcome, Step, StepKind,
};

/// A change to one step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(
    tag = "change",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum StepChange {
    /// Only in the new version.
    Added {
        /// Step id.
        step: String,
        /// Step type.
        #[serde(rename = "type")]
        kind: String,
        /// Where it sits.
        position: String,
    },
    /// Only in the old version.
    Removed {
        /// Step id.
        step: String,
        /// Step type.
        #[serde(rename = "type")]
        kind: String,
        /// Where it sat.
        position: String,
    },
    /// In both, at another place (another branch, or another order among its peers).
    Moved {
        /// Step id.
        step: String,
        /// Where it sat.
        from: String,
        /// Where it sits.
        to: String,
    },
    /// One field differs.
    Changed {
        /// Step id.
        step: String,
        /// The field (`skipCondition`, `rules[2].when`, `assignees`, ...).
        field: String,
        /// Old value (absent: the field was not set).
        #[serde(skip_serializing_if = "Option::is_none")]
        old: Option<String>,
        /// New value.
        #[serde(skip_serializing_if = "Option::is_none")]
        new: Option<String>,
        /// The field is a condition (`skipCondition` or a rule's `when`).
        condition: bool,
    },
}

/// A change to one context field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldChange {
    /// The field name.
    pub field: String,
    /// Old declaration (absent: added).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
    /// New declaration (absent: removed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<String>,
}

/// An edge of the step graph whose target changed (or that appeared or went).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EdgeChange {
    /// The step (or join) it leaves.
    pub from: String,
    /// Why it is taken (`next`, `rule 2`, `default`, `reject`, `timeout`, `error`, ...).
    pub label: String,
    /// Where it went (absent: new edge).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
    /// Where it goes (absent: edge gone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<String>,
}

/// Everything that differs between two versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct FlowDiff {
    /// The old flow id.
    pub old_id: String,
    /// The new flow id.
    pub new_id: String,
    /// Flow-level fields (`id`, `name`).
    pub flow: Vec<FieldChange>,
    /// Context fields.
    pub context: Vec<FieldChange>,
    /// Steps.
    pub steps: Vec<StepChange>,
    /// Edges rerouted, added or removed.
    pub edges: Vec<EdgeChange>,
}

impl FlowDiff {
    /// No difference at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.flow.is_empty()
            && self.context.is_empty()
            && self.steps.is_empty()
            && self.edges.is_empty()
    }

    /// The diff for people, one line per change.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "(unset)".to_owned());
        let _ = writeln!(out, "flow {} → {}", self.old_id, self.new_id);
        if self.is_empty() {
            out.push_str("  no semantic changes\n");
            return out;
        }
        for f in &self.flow {
            let _ = writeln!(out, "  ~ {}: {} → {}", f.field, opt(&f.old), opt(&f.new));
        }
        for f in &self.context {
            let _ = match (&f.old, &f.new) {
                (None, Some(n)) => writeln!(out, "  + context {}: {n}", f.field),
                (Some(o), None) => writeln!(out, "  - context {}: {o}", f.field),
                (o, n) => writeln!(out, "  ~ context {}: {} → {}", f.field, opt(o), opt(n)),
            };
        }
        for s in &self.steps {
            let _ = match s {
                StepChange::Added {
                    step,
                    kind,
                    position,
                } => writeln!(out, "  + step {step} ({kind}) {position}"),
                StepChange::Removed {
                    step,
                    kind,
                    position,
                } => writeln!(out, "  - step {step} ({kind}) {position}"),
                StepChange::Moved { step, from, to } => {
                    writeln!(out, "  ↕ step {step} moved: {from} → {to}")
                }
                StepChange::Changed {
                    step,
                    field,
                    old,
                    new,
                    condition,
                } => {
                    let q = |v: &Option<String>| match v {
                        Some(t) if *condition => format!("`{t}`"),
                        other => opt(other),
                    };
                    writeln!(out, "  ~ step {step}: {field}: {} → {}", q(old), q(new))
                }
            };
        }
        for e in &self.edges {
            let _ = writeln!(
                out,
                "  ⇢ edge {} --{}--> {} ⇒ {}",
                e.from,
                e.label,
                e.old.as_deref().unwrap_or("(none)"),
                e.new.as_deref().unwrap_or("(none)")
            );
        }
        out
    }
}

fn assignees(a: &Assignees) -> String {
    match a {
        Assignees::Role(r) => format!("role {}", r.value),
        Assignees::User(u) => format!("user {}", u.value),
        Assignees::Users(us) => format!(
            "users [{}]",
            us.iter()
                .map(|u| u.value.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Assignees::Expr(e) => format!("expr `{}`", e.text),
    }
}

/// Seconds as the flow language writes durations (`48h`, `7d`, `90s`).
fn secs(s: u64) -> String {
    match s {
        0 => "0s".to_owned(),
        _ if s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s.is_multiple_of(3_600) => format!("{}h", s / 3_600),
        _ if s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

/// Every comparable field of a step, by name (conditions marked).
#[expect(
    clippy::too_many_lines,
    reason = "one flat arm per step type and field; splitting scatters the field list"
)]
fn fields(s: &Step) -> BTreeMap<String, (String, bool)> {
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        m.insert(k.to_owned(), (v, false));
    };
    put("type", s.type_name().to_owned());
    if let Some(n) = &s.name {
        put("name", n.clone());
    }
    if let Some(n) = &s.next {
        put("next", n.value.clone());
    }
    match &s.kind {
        StepKind::Approval {
            assignees: a,
            mode,
            timeout,
            on_timeout,
            escalate_to,
            allow_add_signer,
            on_reject,
            // only a refused flow sets it, and a refused flow is never compared
            timeout_refused: _,
        } => {
            put("assignees", assignees(a));
            put(
                "mode",
                match mode {
                    Mode::Single => "single",
                    Mode::Any => "any",
                    Mode::All => "all",
                    Mode::Sequence => "sequence",
                }
                .to_owned(),
            );
            if let Some(t) = timeout {
                put("timeout", secs(t.value));
            }
            if let Some(t) = on_timeout {
                put(
                    "onTimeout",
                    match &t.value {
                        OnTimeout::Escalate => "escalate".to_owned(),
                        OnTimeout::Approve => "approve".to_owned(),
                        OnTimeout::Reject => "reject".to_owned(),
                        OnTimeout::Goto(id) => id.clone(),
                    },
                );
            }
            if let Some(e) = escalate_to {
                put("escalateTo", assignees(e));
            }
            if *allow_add_signer {
                put("allowAddSigner", "true".to_owned());
            }
            if let Some(r) = on_reject {
                put("onReject", r.value.clone());
            }
        }
        StepKind::ServiceTask {
            service,
            timeout,
            retry,
            on_error,
        } => {
            put("service", service.value.clone());
            if let Some(t) = timeout {
                put("timeout", secs(t.value));
            }
            if let Some(r) = retry {
                let backoff = r
                    .backoff_secs
                    .map_or_else(String::new, |b| format!(", backoff {}", secs(b)));
                put("retry", format!("max {}{backoff}", r.max));
            }
            if let Some(e) = on_error {
                put("onError", e.value.clone());
            }
        }
        StepKind::Decision {
            hit_policy,
            rules,
            default,
        } => {
            put(
                "hitPolicy",
                match hit_policy {
                    HitPolicy::First => "first",
                    HitPolicy::Unique => "unique",
                }
                .to_owned(),
            );
            for (i, r) in rules.iter().enumerate() {
                m.insert(
                    format!("rules[{}].when", i + 1),
                    (r.when.text.clone(), true),
                );
                m.insert(
                    format!("rules[{}].goto", i + 1),
                    (r.goto.value.clone(), false),
                );
            }
            if let Some(d) = default {
                m.insert("default".to_owned(), (d.value.clone(), false));
            }
        }
        StepKind::Parallel { join, branches } => {
            put(
                "join",
                match join {
                    Join::All => "all",
                    Join::Any => "any",
                }
                .to_owned(),
            );
            put("branches", branches.len().to_string());
        }
        StepKind::Notify { to, message } => {
            put("to", assignees(to));
            if let Some(msg) = message {
                put("message", msg.clone());
            }
        }
        StepKind::End { outcome } => put(
            "outcome",
            match outcome {
                Outcome::Approved => "approved",
                Outcome::Rejected => "rejected",
            }
            .to_owned(),
        ),
    }
    if let Some(c) = &s.skip {
        m.insert("skipCondition".to_owned(), (c.text.clone(), true));
    }
    m
}

/// Where each step sits: its parent ("top level" or "branch N of X") and its peers, in
/// order.
struct Layout<'f> {
    steps: BTreeMap<&'f str, (&'f Step, String)>,
    peers: BTreeMap<String, Vec<&'f str>>,
}

fn layout(flow: &Flow) -> Layout<'_> {
    fn walk<'f>(list: &'f [Step], parent: &str, l: &mut Layout<'f>) {
        for s in list {
            l.steps
                .entry(s.id.value.as_str())
                .or_insert((s, parent.to_owned()));
            l.peers
                .entry(parent.to_owned())
                .or_default()
                .push(&s.id.value);
            if let StepKind::Parallel { branches, .. } = &s.kind {
                for (b, br) in branches.iter().enumerate() {
                    walk(&br.steps, &format!("branch {} of {}", b + 1, s.id.value), l);
                }
            }
        }
    }
    let mut l = Layout {
        steps: BTreeMap::new(),
        peers: BTreeMap::new(),
    };
    walk(&flow.steps, "top level", &mut l);
    l
}

fn position(l: &Layout<'_>, id: &str) -> String {
    let Some((_, parent)) = l.steps.get(id) else {
        return String::new();
    };
    let peers = l.peers.get(parent).map(Vec::as_slice).unwrap_or_default();
    match peers.iter().position(|p| *p == id) {
        Some(0) | None => format!("first in {parent}"),
        Some(i) => format!(
            "after {} in {parent}",
            peers.get(i - 1).copied().unwrap_or("")
        ),
    }
}

/// The ids of `order` that are not in a longest increasing run of their old positions:
/// the steps that moved relative to the others.
fn out_of_order(order: &[usize]) -> BTreeSet<usize> {
    // O(n²) longest increasing subsequence: step lists are short
    let n = order.len();
    let mut best: Vec<(usize, Option<usize>)> = Vec::with_capacity(n);
    for (i, oi) in order.iter().enumerate() {
        let mut here = (1, None);
        for (j, oj) in order.iter().enumerate().take(i) {
            let len_j = best.get(j).map_or(0, |b| b.0);
            if oj < oi && len_j + 1 > here.0 {
                here = (len_j + 1, Some(j));
            }
        }
        best.push(here);
    }
    let mut keep = BTreeSet::new();
    // the first of the longest runs, for a deterministic answer
    let longest = best.iter().map(|b| b.0).max().unwrap_or(0);
    let mut at = best.iter().position(|b| b.0 == longest);
    while let Some(i) = at {
        keep.insert(i);
        at = best.get(i).and_then(|b| b.1);
    }
    (0..n).filter(|i| !keep.contains(i)).collect()
}

fn context_decl(f: &FieldDecl) -> String {
    // the whole declaration, nested fields included, so that a nested change shows
    f.to_string()
}

/// The labelled edges of a flow's graph: (from, label) → to.
fn edges(flow: &Flow) -> BTreeMap<(String, String), String> {
    let g = Graph::build(flow);
    let name = |n: &Node| -> String {
        match n {
            Node::Step(i) => g
                .steps
                .get(*i)
                .map_or_else(String::new, |s| s.step.id.value.clone()),
            Node::Join(i) => g
                .steps
                .get(*i)
                .map_or_else(String::new, |s| format!("join of {}", s.step.id.value)),
            Node::EndApproved => "(end: approved)".to_owned(),
            Node::EndRejected => "(end: rejected)".to_owned(),
        }
    };
    let mut out = BTreeMap::new();
    for (a, w, b) in g.edges() {
        let label = match w {
            Edge::Next => "next".to_owned(),
            Edge::Rule(n) => format!("rule {}", n + 1),
            Edge::Default => "default".to_owned(),
            Edge::Reject => "reject".to_owned(),
            Edge::Timeout => "timeout".to_owned(),
            Edge::Error => "error".to_owned(),
            Edge::Fork(n) => format!("branch {}", n + 1),
            Edge::Join => "join".to_owned(),
        };
        out.insert((name(a), label), name(b));
    }
    out
}

/// The semantic diff from `old` to `new`.
#[must_use]
pub fn diff(old: &Flow, new: &Flow) -> FlowDiff {
    let mut d = FlowDiff {
        old_id: old.id.value.clone(),
        new_id: new.id.value.clone(),
        ..FlowDiff::default()
    };
    let change = |field: &str, o: Option<String>, n: Option<String>| FieldChange {
        field: field.to_owned(),
        old: o,
        new: n,
    };
    if old.id.value != new.id.value {
        d.flow.push(change(
            "id",
            Some(old.id.value.clone()),
            Some(new.id.value.clone()),
        ));
    }
    if old.name != new.name {
        d.flow
            .push(change("name", old.name.clone(), new.name.clone()));
    }
    d.context = diff_context(old, new);
    let (lo, ln) = (layout(old), layout(new));
    d.steps = diff_steps(&lo, &ln);
    d.edges = diff_edges(old, new, &lo, &ln);
    d
}

fn diff_context(old: &Flow, new: &Flow) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let oc: HashMap<&str, &FieldDecl> = old
        .context
        .iter()
        .map(|f| (f.name.value.as_str(), f))
        .collect();
    let nc: HashMap<&str, &FieldDecl> = new
        .context
        .iter()
        .map(|f| (f.name.value.as_str(), f))
        .collect();
    let names: BTreeSet<&str> = oc.keys().chain(nc.keys()).copied().collect();
    for n in names {
        let (o, nw) = (
            oc.get(n).map(|f| context_decl(f)),
            nc.get(n).map(|f| context_decl(f)),
        );
        if o != nw {
            out.push(FieldChange {
                field: n.to_owned(),
                old: o,
                new: nw,
            });
        }
    }
    out
}

fn diff_steps(lo: &Layout<'_>, ln: &Layout<'_>) -> Vec<StepChange> {
    let mut steps = Vec::new();
    for (id, (s, _)) in &lo.steps {
        if !ln.steps.contains_key(id) {
            steps.push(StepChange::Removed {
                step: (*id).to_owned(),
                kind: s.type_name().to_owned(),
                position: position(lo, id),
            });
        }
    }
    for (id, (s, _)) in &ln.steps {
        if !lo.steps.contains_key(id) {
            steps.push(StepChange::Added {
                step: (*id).to_owned(),
                kind: s.type_name().to_owned(),
                position: position(ln, id),
            });
        }
    }
    // moves: another parent, or out of order among the peers both versions share
    let mut moved = BTreeSet::new();
    for (parent, peers) in &ln.peers {
        let old_peers = lo.peers.get(parent);
        let shared: Vec<(&str, usize)> = peers
            .iter()
            .filter_map(|id| {
                let (_, op) = lo.steps.get(id)?;
                if op != parent {
                    moved.insert(*id);
                    return None;
                }
                old_peers?.iter().position(|p| p == id).map(|i| (*id, i))
            })
            .collect();
        let order: Vec<usize> = shared.iter().map(|(_, i)| *i).collect();
        for i in out_of_order(&order) {
            if let Some((id, _)) = shared.get(i) {
                moved.insert(id);
            }
        }
    }
    for id in moved {
        steps.push(StepChange::Moved {
            step: id.to_owned(),
            from: position(lo, id),
            to: position(ln, id),
        });
    }
    for (id, (os, _)) in &lo.steps {
        let Some((ns, _)) = ln.steps.get(id) else {
            continue;
        };
        let (fo, fnew) = (fields(os), fields(ns));
        let keys: BTreeSet<&String> = fo.keys().chain(fnew.keys()).collect();
        for k in keys {
            let (a, b) = (fo.get(k), fnew.get(k));
            if a.map(|x| &x.0) != b.map(|x| &x.0) {
                steps.push(StepChange::Changed {
                    step: (*id).to_owned(),
                    field: k.clone(),
                    old: a.map(|x| x.0.clone()),
                    new: b.map(|x| x.0.clone()),
                    condition: a.or(b).is_some_and(|x| x.1),
                });
            }
        }
    }
    steps
}

fn diff_edges(old: &Flow, new: &Flow, lo: &Layout<'_>, ln: &Layout<'_>) -> Vec<EdgeChange> {
    let mut out = Vec::new();
    let (eo, en) = (edges(old), edges(new));
    let keys: BTreeSet<&(String, String)> = eo.keys().chain(en.keys()).collect();
    for k in keys {
        let (a, b) = (eo.get(k), en.get(k));
        // edges of a removed or added step are implied by that step's line
        let endpoint_gone = !ln.steps.contains_key(k.0.as_str()) && !k.0.starts_with("join of ");
        let endpoint_new = !lo.steps.contains_key(k.0.as_str()) && !k.0.starts_with("join of ");
        if a != b && !(a.is_none() && endpoint_new) && !(b.is_none() && endpoint_gone) {
            out.push(EdgeChange {
                from: k.0.clone(),
                label: k.1.clone(),
                old: a.cloned(),
                new: b.cloned(),
            });
        }
    }
    out
}
