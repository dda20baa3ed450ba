//! Hostile YAML gets a bounded, clear diagnostic: never a stack overflow, abort or hang.
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

use flowc::compile::{Options, check_many};

fn codes(text: Vec<u8>) -> Vec<(String, usize, usize)> {
    check_many(vec![("hostile.yaml".to_owned(), text)], &Options::default())
        .iter()
        .map(|d| {
            let (l, c) = d.line_col();
            (d.code(), l, c)
        })
        .collect()
}

#[test]
fn hundred_thousand_deep_nesting() {
    let flow = format!("steps: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    // saphyr's scanner bounds flow nesting itself (a syntax error) before our depth cap
    let got = codes(flow.into_bytes());
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        ["flowc::load::too-deep", "flowc::load::yaml-syntax"].contains(&got[0].0.as_str()),
        "{got:?}"
    );
    let block: String = (0..100_000)
        .map(|i| format!("{}- \n", "  ".repeat(i % 200)))
        .collect();
    let got = codes(block.into_bytes());
    assert_eq!(got.len(), 1);
    assert!(got[0].0.starts_with("flowc::load::"), "{got:?}");
}

#[test]
fn billion_laughs() {
    let mut s = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for w in names.windows(2) {
        s.push_str(&format!(
            "{}: &{} [{}]\n",
            w[1],
            w[1],
            vec![format!("*{}", w[0]); 10].join(", ")
        ));
    }
    let got = codes(s.into_bytes());
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "flowc::load::alias-budget");
}

#[test]
fn huge_file() {
    let big = format!("apiVersion: flowc/v1\n{}", "# padding\n".repeat(500_000));
    assert_eq!(
        codes(big.into_bytes()),
        vec![("flowc::load::file-too-large".to_owned(), 1, 1)]
    );
}
