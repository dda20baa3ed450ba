//! Data-driven fixtures: every file in `tests/fixtures/bad/` is named after the diagnostic
//! code it must produce (`graph.unknown-step.yaml` → `flowc::graph::unknown-step`) and
//! its rendered diagnostics are snapshotted; every flow in `examples/` and
//! `tests/fixtures/valid/` compiles without a diagnostic. A fixture about files checked
//! together (`check.duplicate-flow-id.yaml`) is checked with its companion of the same
//! name in `tests/fixtures/bad/companions/`.
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

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use flowc::compile::Options;
use flowc::diagnostic::Diagnostics;
use flowc::load::LoadLimits;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("fixture dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.ends_with(".yaml") && !n.ends_with(".test.yaml")
        })
        .collect();
    v.sort();
    v
}

fn options() -> Options {
    Options {
        load: LoadLimits {
            max_file_bytes: 16 * 1024,
            ..LoadLimits::default()
        },
        ..Options::default()
    }
}

fn diagnostics(path: &Path) -> Diagnostics {
    let name = format!(
        "{}/{}",
        path.parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .unwrap_or(""),
        path.file_name().and_then(|n| n.to_str()).unwrap_or("")
    );
    let bytes = std::fs::read(path).expect("read fixture");
    let mut files = vec![(name, bytes)];
    let companion = path
        .parent()
        .expect("fixture dir")
        .join("companions")
        .join(path.file_name().expect("name"));
    if companion.is_file() {
        let bytes = std::fs::read(&companion).expect("read companion");
        let name = format!(
            "companions/{}",
            companion.file_name().and_then(|n| n.to_str()).unwrap_or("")
        );
        files.push((name, bytes));
    }
    flowc::compile::check_many(files, &options())
}

fn render(diags: &Diagnostics) -> String {
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(80);
    let mut out = String::new();
    for d in diags {
        let (line, col) = d.line_col();
        out.push_str(&format!("[{}] {line}:{col} {}\n", d.code(), d.severity()));
        handler.render_report(&mut out, d).expect("render");
        out.push('\n');
    }
    out
}

#[test]
fn bad_fixtures_report_their_code() {
    let dir = root().join("tests/fixtures/bad");
    let mut failures = Vec::new();
    for path in yaml_files(&dir) {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("name")
            .to_owned();
        let code = format!("flowc::{}", stem.replace('.', "::"));
        let diags = diagnostics(&path);
        if !diags.iter().any(|d| d.code() == code) {
            failures.push(format!("{stem}: expected {code}, got {diags:?}"));
        }
        insta::with_settings!({snapshot_path => "fixtures/snapshots", prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!(stem.clone(), render(&diags));
        });
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Stages whose errors are about events, versions and directories rather than flow
/// files: their codes must be asserted by a test or a scenario instead of a bad fixture.
const RUN_TIME_STAGES: [&str; 4] = ["runtime.", "registry.", "source.", "store."];

#[test]
fn every_code_has_a_fixture() {
    let mut codes = BTreeSet::new();
    let mut stack = vec![root().join("src")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("src") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).expect("read");
                for part in text.split("code(\"flowc::").skip(1) {
                    if let Some(end) = part.find('"') {
                        codes.insert(part[..end].replace("::", "."));
                    }
                }
            }
        }
    }
    let fixtures: BTreeSet<String> = yaml_files(&root().join("tests/fixtures/bad"))
        .iter()
        .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_owned))
        .collect();
    let (run_time, compile_time): (BTreeSet<String>, BTreeSet<String>) = codes
        .iter()
        .cloned()
        .partition(|c| RUN_TIME_STAGES.iter().any(|s| c.starts_with(s)));
    // a bug in flowc has no fixture (once found it is fixed): a unit test in
    // src/compile.rs feeds the compiler invalid generated source instead
    let no_fixture = ["expr.internal".to_owned()];
    let missing: Vec<&String> = compile_time
        .difference(&fixtures)
        .filter(|c| !no_fixture.contains(c))
        .collect();
    assert!(missing.is_empty(), "codes without a fixture: {missing:?}");
    // every run-time code is asserted somewhere: a test or a scenario file
    let mut asserted = String::new();
    for dir in ["tests", "examples"] {
        for e in std::fs::read_dir(root().join(dir)).expect("dir") {
            let p = e.expect("entry").path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".rs") || name.ends_with(".test.yaml") {
                asserted.push_str(&std::fs::read_to_string(&p).expect("read"));
            }
        }
    }
    let unasserted: Vec<&String> = run_time
        .iter()
        .filter(|c| !asserted.contains(&format!("\"flowc::{}\"", c.replace('.', "::"))))
        .collect();
    assert!(
        unasserted.is_empty(),
        "run-time codes no test asserts: {unasserted:?}"
    );
    assert!(codes.len() >= 30, "only {} codes", codes.len());
}

#[test]
fn valid_flows_have_no_diagnostics() {
    let mut paths = yaml_files(&root().join("examples"));
    paths.extend(yaml_files(&root().join("tests/fixtures/valid")));
    assert!(paths.len() >= 6);
    for p in paths {
        let diags = diagnostics(&p);
        assert!(diags.is_empty(), "{}: {}", p.display(), render(&diags));
    }
}
