//! `flowc graph`: the step graph as Mermaid or Graphviz DOT.

use std::fmt::Write as _;

use petgraph::visit::EdgeRef;

use super::{Edge, Graph, Node};
use crate::model::{Outcome, StepKind};

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Mermaid flowchart.
    Mermaid,
    /// Graphviz DOT.
    Dot,
}

fn node_id(_g: &Graph<'_>, n: &Node) -> String {
    match n {
        Node::Step(i) => format!("s{i}"),
        Node::Join(i) => format!("j{i}"),
        Node::EndApproved => "end_approved".to_owned(),
        Node::EndRejected => "end_rejected".to_owned(),
    }
}

fn edge_label(g: &Graph<'_>, from: &Node, e: &Edge) -> String {
    let rule_text = |i: usize| -> String {
        if let Node::Step(s) = from
            && let Some(StepKind::Decision { rules, .. }) = g.steps.get(*s).map(|x| &x.step.kind)
            && let Some(r) = rules.get(i)
        {
            return r.when.text.trim().to_owned();
        }
        format!("rule {}", i + 1)
    };
    match e {
        Edge::Next | Edge::Join => String::new(),
        Edge::Rule(i) => rule_text(*i),
        Edge::Default => "default".to_owned(),
        Edge::Reject => "rejected".to_owned(),
        Edge::Timeout => "timeout".to_owned(),
        Edge::Error => "error".to_owned(),
        Edge::Fork(b) => format!("branch {}", b + 1),
    }
}

fn node_label(g: &Graph<'_>, n: &Node) -> String {
    match n {
        Node::Step(i) => g.steps.get(*i).map_or_else(String::new, |s| {
            let extra = match &s.step.kind {
                StepKind::Approval { mode, .. } => {
                    format!(" ({})", format!("{mode:?}").to_lowercase())
                }
                StepKind::Parallel { join, .. } => {
                    format!(" (join {})", format!("{join:?}").to_lowercase())
                }
                StepKind::End { outcome } => format!(
                    " ({})",
                    if *outcome == Outcome::Approved {
                        "approved"
                    } else {
                        "rejected"
                    }
                ),
                _ => String::new(),
            };
            // the name a person gave the step first, then what it is, then when it is skipped
            let mut label = match &s.step.name {
                Some(name) => format!(
                    "{name}\\n{} · {}{extra}",
                    s.step.id.value,
                    s.step.type_name()
                ),
                None => format!("{}\\n{}{extra}", s.step.id.value, s.step.type_name()),
            };
            if let Some(skip) = &s.step.skip {
                let _ = write!(label, "\\nskip if {}", skip.text.trim());
            }
            label
        }),
        Node::Join(i) => format!(
            "join {}",
            g.steps.get(*i).map_or("", |s| s.step.id.value.as_str())
        ),
        Node::EndApproved => "approved".to_owned(),
        Node::EndRejected => "rejected".to_owned(),
    }
}

/// Text inside a quoted Mermaid label (`["…"]`, `|"…"|`): Mermaid's entity codes for
/// the characters that would end the label or be read as markup (`"`, `<`, `>`, `#`, an
/// `&` that starts an entity), `<br/>` for a newline.
fn mermaid_escape(s: &str) -> String {
    // `&` starts an HTML entity only before `name;` or `#digits;` (`&&` stays readable)
    let entity_at = |i: usize| {
        s.get(i + 1..).is_some_and(|rest| {
            let body = rest.strip_prefix('#').unwrap_or(rest);
            let len = body
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(body.len());
            len > 0 && body.get(len..).is_some_and(|r| r.starts_with(';'))
        })
    };
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.char_indices() {
        match c {
            '#' => out.push_str("#35;"),
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' if entity_at(i) => out.push_str("#amp;"),
            '\n' => out.push_str("<br/>"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// A YAML double-quoted scalar (a JSON string is one): the title of the front matter.
fn yaml_quoted(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace("\\\\n", "\\n")
}

/// Renders the graph.
#[must_use]
#[expect(
    clippy::too_many_lines,
    reason = "both formats side by side, so they stay in step"
)]
pub fn render(g: &Graph<'_>, title: &str, format: Format) -> String {
    let mut out = String::new();
    // implicit ends are drawn only when something leads there
    let used = |idx: petgraph::graph::NodeIndex| {
        g.net
            .edges_directed(idx, petgraph::Direction::Incoming)
            .next()
            .is_some()
    };
    match format {
        Format::Mermaid => {
            let _ = writeln!(out, "---\ntitle: {}\n---\nflowchart TD", yaml_quoted(title));
            render_scope(g, &[], Format::Mermaid, &mut out, 1);
            for (idx, n) in [
                (g.end_approved, Node::EndApproved),
                (g.end_rejected, Node::EndRejected),
            ] {
                if used(idx) {
                    let _ = writeln!(out, "    {}([\"{}\"])", node_id(g, &n), node_label(g, &n));
                }
            }
            for e in g.net.edge_references() {
                let (Some(a), Some(b)) =
                    (g.net.node_weight(e.source()), g.net.node_weight(e.target()))
                else {
                    continue;
                };
                let label = edge_label(g, a, e.weight());
                let arrow = if matches!(e.weight(), Edge::Reject | Edge::Timeout | Edge::Error) {
                    "-.->"
                } else {
                    "-->"
                };
                if label.is_empty() {
                    let _ = writeln!(out, "    {} {arrow} {}", node_id(g, a), node_id(g, b));
                } else {
                    let _ = writeln!(
                        out,
                        "    {} {arrow}|\"{}\"| {}",
                        node_id(g, a),
                        mermaid_escape(&label),
                        node_id(g, b)
                    );
                }
            }
            out.push_str("    classDef approved fill:#d4edda,stroke:#28a745\n    classDef rejected fill:#f8d7da,stroke:#dc3545\n");
            for (i, s) in g.steps.iter().enumerate() {
                if let StepKind::End { outcome } = s.step.kind {
                    let c = if outcome == Outcome::Approved {
                        "approved"
                    } else {
                        "rejected"
                    };
                    let _ = writeln!(out, "    class s{i} {c}");
                }
            }
            if used(g.end_approved) {
                out.push_str("    class end_approved approved\n");
            }
            if used(g.end_rejected) {
                out.push_str("    class end_rejected rejected\n");
            }
        }
        Format::Dot => {
            let _ = writeln!(
                out,
                "digraph \"{}\" {{\n  rankdir=TB;\n  node [fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];",
                dot_escape(title)
            );
            render_scope(g, &[], Format::Dot, &mut out, 1);
            for (idx, n, color) in [
                (g.end_approved, Node::EndApproved, "#d4edda"),
                (g.end_rejected, Node::EndRejected, "#f8d7da"),
            ] {
                if used(idx) {
                    let _ = writeln!(
                        out,
                        "  {} [label=\"{}\", shape=doublecircle, style=filled, fillcolor=\"{color}\"];",
                        node_id(g, &n),
                        node_label(g, &n)
                    );
                }
            }
            for e in g.net.edge_references() {
                let (Some(a), Some(b)) =
                    (g.net.node_weight(e.source()), g.net.node_weight(e.target()))
                else {
                    continue;
                };
                let label = edge_label(g, a, e.weight());
                let style = if matches!(e.weight(), Edge::Reject | Edge::Timeout | Edge::Error) {
                    ", style=dashed"
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    "  {} -> {} [label=\"{}\"{style}];",
                    node_id(g, a),
                    node_id(g, b),
                    dot_escape(&label)
                );
            }
            out.push_str("}\n");
        }
    }
    out
}

fn shape_mermaid(g: &Graph<'_>, i: usize) -> (&'static str, &'static str) {
    match g.steps.get(i).map(|s| &s.step.kind) {
        Some(StepKind::Decision { .. }) => ("{", "}"),
        Some(StepKind::End { .. }) => ("([", "])"),
        Some(StepKind::Parallel { .. }) => ("[[", "]]"),
        Some(StepKind::ServiceTask { .. }) => ("[/", "/]"),
        Some(StepKind::Notify { .. }) => (">", "]"),
        _ => ("[", "]"),
    }
}

/// Writes the steps of one list (and, recursively, each parallel's branches as a
/// subgraph) in the chosen format.
fn render_scope(
    g: &Graph<'_>,
    scope: &[(usize, usize)],
    format: Format,
    out: &mut String,
    depth: usize,
) {
    let pad = match format {
        Format::Mermaid => "    ",
        Format::Dot => "  ",
    }
    .repeat(depth);
    for (i, s) in g.steps.iter().enumerate() {
        if s.scope != scope {
            continue;
        }
        let label = node_label(g, &Node::Step(i));
        let _ = match format {
            Format::Mermaid => {
                let (l, r) = shape_mermaid(g, i);
                writeln!(out, "{pad}s{i}{l}\"{}\"{r}", mermaid_escape(&label))
            }
            Format::Dot => {
                let (shape, fill) = shape_dot(&s.step.kind);
                writeln!(
                    out,
                    "{pad}s{i} [label=\"{}\", shape={shape}, style=\"filled,rounded\", fillcolor=\"{fill}\"];",
                    dot_escape(&label)
                )
            }
        };
        let StepKind::Parallel { branches, .. } = &s.step.kind else {
            continue;
        };
        let id = &s.step.id.value;
        for (b, branch) in branches.iter().enumerate() {
            let mut inner = scope.to_vec();
            inner.push((i, b));
            let name = branch
                .name
                .clone()
                .unwrap_or_else(|| format!("branch {}", b + 1));
            let _ = match format {
                Format::Mermaid => writeln!(
                    out,
                    "{pad}subgraph s{i}_b{b}[\"{id} / {}\"]",
                    mermaid_escape(&name)
                ),
                Format::Dot => writeln!(
                    out,
                    "{pad}subgraph cluster_s{i}_b{b} {{\n{pad}  label=\"{} / {}\";\n{pad}  style=dashed;",
                    dot_escape(id),
                    dot_escape(&name)
                ),
            };
            render_scope(g, &inner, format, out, depth + 1);
            let _ = match format {
                Format::Mermaid => writeln!(out, "{pad}end"),
                Format::Dot => writeln!(out, "{pad}}}"),
            };
        }
        let _ = match format {
            Format::Mermaid => writeln!(out, "{pad}j{i}((\"join {id}\"))"),
            Format::Dot => writeln!(out, "{pad}j{i} [label=\"join\", shape=circle, width=0.3];"),
        };
    }
}

fn shape_dot(kind: &StepKind) -> (&'static str, &'static str) {
    match kind {
        StepKind::Decision { .. } => ("diamond", "#fff3cd"),
        StepKind::End {
            outcome: Outcome::Approved,
        } => ("doublecircle", "#d4edda"),
        StepKind::End {
            outcome: Outcome::Rejected,
        } => ("doublecircle", "#f8d7da"),
        StepKind::Parallel { .. } => ("box3d", "#e2e3e5"),
        StepKind::ServiceTask { .. } => ("component", "#d1ecf1"),
        StepKind::Notify { .. } => ("note", "#fefefe"),
        StepKind::Approval { .. } => ("box", "#cce5ff"),
    }
}
