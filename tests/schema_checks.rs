//! Schema diagnostics beyond the one-fixture-per-code set: exact codes and positions.
#![allow(
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: failing loudly is the point"
)]

use flowc::compile::{Options, check_many};

#[test]
fn bad_context_names_point_at_each_key() {
    let text = "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: names\ncontext:\n  amount: double\n  金额备注: string\n  2fast: int\nsteps:\n  - id: a\n    type: approval\n    assignees: { role: x }\n";
    let got: Vec<(String, usize, usize, String)> = check_many(
        vec![("n.yaml".to_owned(), text.as_bytes().to_vec())],
        &Options::default(),
    )
    .iter()
    .map(|d| {
        let (l, c) = d.line_col();
        (d.code(), l, c, d.message())
    })
    .collect();
    assert_eq!(
        got,
        vec![
            (
                "flowc::schema::pattern".to_owned(),
                6,
                3,
                "`金额备注` does not have the required form at `context`".to_owned()
            ),
            (
                "flowc::schema::pattern".to_owned(),
                7,
                3,
                "`2fast` does not have the required form at `context`".to_owned()
            ),
        ]
    );
}

/// Expression diagnostics land on the exact column inside every YAML scalar style,
/// also after non-ASCII text and escapes.
#[test]
fn expression_columns_in_every_scalar_style() {
    let text = r#"apiVersion: flowc/v1
kind: ApprovalFlow
id: styles
name: 报销
context: { amount: double, dept: string }
steps:
  - id: plain
    type: approval
    assignees: { role: a }
    skipCondition: amount > 1.0 && amout < 2.0
  - id: single
    type: approval
    assignees: { role: a }
    skipCondition: 'dept == ''报销'' && amout < 2.0'
  - id: double
    type: approval
    assignees: { role: a }
    skipCondition: "dept == \"x\\ty\" && amout < 2.0"
  - id: literal
    type: approval
    assignees: { role: a }
    skipCondition: |
      dept == "it"
        && amout < 2.0
  - id: folded
    type: approval
    assignees: { role: a }
    skipCondition: >-
      dept == "hr" &&
      amout < 2.0
"#;
    let got: Vec<(usize, usize, String)> = check_many(
        vec![("s.yaml".to_owned(), text.as_bytes().to_vec())],
        &Options::default(),
    )
    .iter()
    .map(|d| {
        let (l, c) = d.line_col();
        (l, c, d.code())
    })
    .collect();
    let code = "flowc::expr::unknown-identifier".to_owned();
    assert_eq!(
        got,
        vec![
            (10, 36, code.clone()),
            (14, 39, code.clone()),
            (18, 42, code.clone()),
            (24, 12, code.clone()),
            (30, 7, code),
        ]
    );
}
