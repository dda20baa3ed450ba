//! `flowc diff`: steps added, removed, moved, changed; conditions; context; edges.
#![allow(
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "test and benchmark code: failing loudly is the point"
)]

use flowc::compile::{Options, compile};
use flowc::diff::{StepChange, diff};
use flowc::span::SourceFile;

fn flow(text: &str) -> flowc::compile::CompiledFlow {
    compile(&SourceFile::new("f.yaml", text), &Options::default()).unwrap()
}

fn fixture(name: &str) -> flowc::compile::CompiledFlow {
    let path = format!("{}/tests/fixtures/diff/{name}", env!("CARGO_MANIFEST_DIR"));
    flow(&std::fs::read_to_string(path).unwrap())
}

#[test]
fn expense_change_human_and_json() {
    let d = diff(
        fixture("expense-old.yaml").flow(),
        fixture("expense-new.yaml").flow(),
    );
    insta::assert_snapshot!("expense-human", d.to_text());
    insta::assert_snapshot!("expense-json", serde_json::to_string_pretty(&d).unwrap());
}

#[test]
fn identical_flows_have_no_changes() {
    let a = fixture("expense-old.yaml");
    let d = diff(a.flow(), a.flow());
    assert!(d.is_empty());
    assert_eq!(
        d.to_text(),
        "flow expense-reimbursement → expense-reimbursement\n  no semantic changes\n"
    );
}

const BASE: &str = "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: f\ncontext: { n: int }\nsteps:\n";

#[test]
fn moves_are_found_among_peers_and_across_branches() {
    let old = flow(&format!(
        "{BASE}  - {{ id: a, type: approval, assignees: {{ role: r }} }}\n  - {{ id: b, type: approval, assignees: {{ role: r }} }}\n  - {{ id: c, type: approval, assignees: {{ role: r }} }}\n  - id: p\n    type: parallel\n    branches:\n      - steps: [ {{ id: x, type: approval, assignees: {{ role: r }} }} ]\n      - steps: [ {{ id: y, type: approval, assignees: {{ role: r }} }} ]\n"
    ));
    // c moves before a; x moves to the second branch
    let new = flow(&format!(
        "{BASE}  - {{ id: c, type: approval, assignees: {{ role: r }} }}\n  - {{ id: a, type: approval, assignees: {{ role: r }} }}\n  - {{ id: b, type: approval, assignees: {{ role: r }} }}\n  - id: p\n    type: parallel\n    branches:\n      - steps: [ {{ id: z, type: approval, assignees: {{ role: r }} }} ]\n      - steps:\n          - {{ id: y, type: approval, assignees: {{ role: r }} }}\n          - {{ id: x, type: approval, assignees: {{ role: r }}, skipCondition: n > 1 }}\n"
    ));
    let d = diff(old.flow(), new.flow());
    let moved: Vec<(&str, &str, &str)> = d
        .steps
        .iter()
        .filter_map(|s| match s {
            StepChange::Moved { step, from, to } => {
                Some((step.as_str(), from.as_str(), to.as_str()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        moved,
        [
            ("c", "after b in top level", "first in top level"),
            ("x", "first in branch 1 of p", "after y in branch 2 of p"),
        ]
    );
    assert!(d.steps.contains(&StepChange::Changed {
        step: "x".into(),
        field: "skipCondition".into(),
        old: None,
        new: Some("n > 1".into()),
        condition: true,
    }));
    // fall-through edges rerouted by the move
    let next_of = |from: &str| {
        d.edges
            .iter()
            .find(|e| e.from == from && e.label == "next")
            .map(|e| (e.old.clone(), e.new.clone()))
    };
    assert_eq!(next_of("c"), Some((Some("p".into()), Some("a".into()))));
    assert_eq!(next_of("b"), Some((Some("c".into()), Some("p".into()))));
}

#[test]
fn context_name_and_edges() {
    let old = flow(&format!(
        "{BASE}  - {{ id: a, type: approval, assignees: {{ role: r }}, timeout: 90s, onTimeout: approve }}\n  - {{ id: b, type: service-task, service: s }}\n"
    ));
    let new = flow(
        "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: f\nname: Renamed\ncontext: { n: { type: int, default: 3 }, region: { type: string, enum: [cn, eu] } }\nsteps:\n  - { id: a, type: approval, assignees: { role: r }, timeout: 2m, onTimeout: b, onReject: b }\n  - { id: b, type: service-task, service: s, retry: { max: 2, backoff: 1h }, onError: a }\n",
    );
    let d = diff(old.flow(), new.flow());
    insta::assert_snapshot!("context-name-edges", d.to_text());
}
