//! Property test: mutated examples never panic the compiler, and the schema and the
//! model agree — whatever the schema accepts, the model represents completely (every
//! step of the YAML is a step of the model; nothing is silently dropped).
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

use std::path::PathBuf;

use flowc::compile::{Options, check_many};
use flowc::load::{LoadLimits, Node, load, source_from_bytes};
use flowc::model::{Step, StepKind, build_lenient};
use proptest::prelude::*;

fn examples() -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("examples")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    v.sort();
    v.iter()
        .map(|p| std::fs::read_to_string(p).expect("read"))
        .collect()
}

fn yaml_steps(list: Option<&Node>) -> usize {
    list.and_then(Node::as_seq).map_or(0, |steps| {
        steps
            .iter()
            .map(|s| {
                1 + s
                    .get("branches")
                    .and_then(Node::as_seq)
                    .map_or(0, |bs| bs.iter().map(|b| yaml_steps(b.get("steps"))).sum())
            })
            .sum()
    })
}

fn model_steps(list: &[Step]) -> usize {
    list.iter()
        .map(|s| {
            1 + match &s.kind {
                StepKind::Parallel { branches, .. } => {
                    branches.iter().map(|b| model_steps(&b.steps)).sum()
                }
                _ => 0,
            }
        })
        .sum()
}

const TOKENS: &[&str] = &[
    "",
    "x",
    "[",
    "]",
    "{",
    "}",
    "1",
    "-1",
    "1.5",
    "true",
    "null",
    "approval",
    "decision",
    "end",
    "manager",
    "amount > 1.0",
    "'unterminated",
    "*alias",
    "&a",
    "48h",
    "0s",
    "- id: x",
    "报销",
    "{ role: a }",
    "[a, b]",
    "goto",
    "dept in [",
    "||",
    "size(",
    "\t",
];

#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(usize),
    DuplicateLine(usize),
    ReplaceValue(usize, usize),
    InsertLine(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(l, t)| Mutation::ReplaceValue(l, t)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(l, t)| Mutation::InsertLine(l, t)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(text: &str, muts: &[Mutation]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for m in muts {
        if lines.is_empty() {
            break;
        }
        let n = lines.len();
        match m {
            Mutation::DeleteLine(i) => {
                lines.remove(i % n);
            }
            Mutation::DuplicateLine(i) => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            Mutation::ReplaceValue(i, t) => {
                let l = &mut lines[i % n];
                if let Some(pos) = l.find(": ") {
                    l.truncate(pos + 2);
                    l.push_str(TOKENS[*t]);
                } else {
                    l.push_str(TOKENS[*t]);
                }
            }
            Mutation::InsertLine(i, t) => {
                let indent = lines[i % n].len() - lines[i % n].trim_start().len();
                lines.insert(i % n, format!("{}{}", " ".repeat(indent), TOKENS[*t]));
            }
            Mutation::Truncate(i) => {
                let joined = lines.join("\n");
                let cut = i % (joined.len() + 1);
                let cut = (0..=cut)
                    .rev()
                    .find(|c| joined.is_char_boundary(*c))
                    .unwrap_or(0);
                lines = joined[..cut].lines().map(str::to_owned).collect();
            }
        }
    }
    lines.join("\n") + "\n"
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_examples_never_panic_and_schema_agrees_with_model(
        which in 0usize..6,
        muts in proptest::collection::vec(mutation(), 1..3),
    ) {
        let examples = examples();
        let text = apply(&examples[which % examples.len()], &muts);
        // the whole pipeline: never a panic, always a sorted result
        let _ = check_many(vec![("m.yaml".to_owned(), text.clone().into_bytes())], &Options::default());
        // schema and model agree on structure
        let file = source_from_bytes("m.yaml", text.into_bytes()).expect("utf-8 stays utf-8");
        if let Ok(root) = load(&file, &LoadLimits::default()) {
            let (flow, _) = build_lenient(&file, &root);
            prop_assert_eq!(model_steps(&flow.steps), yaml_steps(root.get("steps")));
        }
    }
}
