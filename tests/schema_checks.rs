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
