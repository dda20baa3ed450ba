//! Graph checks beyond the one-fixture-per-code set: exact codes, positions and help.
#![allow(
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: failing loudly is the point"
)]

use flowc::compile::{Options, check_many};

fn diags(text: &str) -> Vec<(String, usize, usize, String, Option<String>)> {
    check_many(
        vec![("g.yaml".to_owned(), text.as_bytes().to_vec())],
        &Options::default(),
    )
    .iter()
    .map(|d| {
        let (l, c) = d.line_col();
        (d.code(), l, c, d.message(), d.help())
    })
    .collect()
}

const PARALLEL_TIMEOUT: &str = r"apiVersion: flowc/v1
kind: ApprovalFlow
id: g
steps:
  - id: fork
    type: parallel
    branches:
      - steps:
          - id: legal
            type: approval
            assignees: { role: legal }
            timeout: 1d
            onTimeout: fallback
      - steps:
          - id: finance
            type: approval
            assignees: { role: finance }
  - id: fallback
    type: approval
    assignees: { role: boss }
";

#[test]
fn on_timeout_goto_may_not_leave_its_branch() {
    assert_eq!(
        diags(PARALLEL_TIMEOUT),
        vec![(
            "flowc::graph::branch-escape".to_owned(),
            13,
            24,
            "`onTimeout` of step `legal` leaves its parallel branch to `fallback`".to_owned(),
            Some("a branch ends at its join; route inside the branch, or continue after the parallel step".to_owned()),
        )]
    );
}

#[test]
fn unknown_on_timeout_target_suggests_keywords() {
    let text = PARALLEL_TIMEOUT.replace("onTimeout: fallback", "onTimeout: escalat");
    assert_eq!(
        diags(&text),
        vec![(
            "flowc::graph::unknown-step".to_owned(),
            13,
            24,
            "unknown step `escalat` in `onTimeout`".to_owned(),
            Some("did you mean `escalate`?".to_owned()),
        )]
    );
}

#[test]
fn on_timeout_goto_inside_the_branch_is_fine() {
    let text = PARALLEL_TIMEOUT
        .replace("onTimeout: fallback", "onTimeout: legal-2")
        .replace(
            "      - steps:\n          - id: finance",
            "          - id: legal-2\n            type: approval\n            assignees: { role: legal-lead }\n      - steps:\n          - id: finance",
        );
    assert_eq!(diags(&text), vec![]);
}
