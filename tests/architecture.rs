//! The modules point one way (STYLE.md, "Which way the imports run"): this test reads
//! every `src/**/*.rs`, collects the top-level modules each one names through
//! `crate::X` (in `use` trees, grouped or not, and in paths), `super::` paths that climb
//! to the crate root, and `flowc::X` (the binary), and fails on any cycle between
//! top-level modules (printing it) and on any reference that points up the intended order.
//! Comment lines (`//`, `///`, `//!`) are skipped: a doc link is not a dependency.
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

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The intended order, bottom first: a module may name only modules listed before it.
/// `diff` reads compiled flows (and the etcd source's history reads `diff`); `prelude`
/// re-exports the public API; `cli` (the binary) may read anything.
const ORDER: &[&str] = &[
    "span",
    "codes",
    "diagnostic",
    "limits",
    "load",
    "expr",
    "model",
    "sandbox",
    "graph",
    "compile",
    "diff",
    "runtime",
    "store",
    "registry",
    "source",
    "prelude",
    "cli",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to and how deep below the crate root its own
/// module is (`src/compile.rs` → 1, `src/runtime/mod.rs` → 1, `src/runtime/state.rs` → 2).
fn module_of(rel: &Path) -> Option<(String, usize)> {
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let first = parts.first()?;
    if parts.len() == 1 {
        let stem = first.strip_suffix(".rs")?;
        return match stem {
            "lib" => None,
            "main" => Some(("cli".to_owned(), 0)),
            s => Some((s.to_owned(), 1)),
        };
    }
    let last = parts.last()?;
    let depth = if last == "mod.rs" {
        parts.len() - 1
    } else {
        parts.len()
    };
    Some((first.clone(), depth))
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn ident_at(s: &str) -> &str {
    let end = s.find(|c: char| !is_ident_char(c)).unwrap_or(s.len());
    &s[..end]
}

/// The names at the top level of a `{ a::b, c, d::{e, f} }` group that starts `s`.
fn group_heads(s: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0usize;
    let mut expect_head = false;
    for (i, c) in s.char_indices() {
        match c {
            '{' => {
                depth += 1;
                expect_head = depth == 1;
            }
            '}' => {
                if depth <= 1 {
                    break;
                }
                depth -= 1;
            }
            ',' if depth == 1 => expect_head = true,
            c if expect_head && depth == 1 && is_ident_char(c) => {
                heads.push(ident_at(&s[i..]).to_owned());
                expect_head = false;
            }
            _ => {}
        }
    }
    heads
}

/// The top-level modules that `code` names through `prefix` (`crate::`, `flowc::`).
fn named_after(code: &str, prefix: &str, out: &mut BTreeSet<String>) {
    let mut rest = code;
    while let Some(pos) = rest.find(prefix) {
        let before = rest[..pos].chars().next_back();
        rest = &rest[pos + prefix.len()..];
        if before.is_some_and(|c| is_ident_char(c) || c == ':') {
            continue;
        }
        if rest.starts_with('{') {
            out.extend(group_heads(rest));
        } else {
            let id = ident_at(rest);
            if !id.is_empty() {
                out.insert(id.to_owned());
            }
        }
    }
}

/// Every top-level module each top-level module names: module → (named → first file).
fn edges() -> BTreeMap<String, BTreeMap<String, String>> {
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut map: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let Some((module, depth)) = module_of(rel) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut named = BTreeSet::new();
        named_after(&code, "crate::", &mut named);
        if module == "cli" {
            named_after(&code, "flowc::", &mut named);
        }
        // `super::` from the top of a top-level module is the crate root
        if depth >= 1 {
            named_after(&code, &"super::".repeat(depth), &mut named);
        }
        let entry = map.entry(module.clone()).or_default();
        for n in named {
            if n != module && ORDER.contains(&n.as_str()) {
                entry.entry(n).or_insert_with(|| rel.display().to_string());
            }
        }
    }
    map
}

fn find_cycle(
    graph: &BTreeMap<String, BTreeMap<String, String>>,
    node: &str,
    stack: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(i) = stack.iter().position(|s| s == node) {
        let mut cycle = stack[i..].to_vec();
        cycle.push(node.to_owned());
        return Some(cycle);
    }
    if done.contains(node) {
        return None;
    }
    stack.push(node.to_owned());
    if let Some(next) = graph.get(node) {
        for n in next.keys() {
            if let Some(c) = find_cycle(graph, n, stack, done) {
                return Some(c);
            }
        }
    }
    stack.pop();
    done.insert(node.to_owned());
    None
}

#[test]
fn every_module_has_a_place_in_the_order() {
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).unwrap();
    let declared: BTreeSet<&str> = lib
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            l.strip_prefix("pub mod ")
                .or_else(|| l.strip_prefix("mod "))
                .and_then(|r| r.strip_suffix(';'))
        })
        .collect();
    let ordered: BTreeSet<&str> = ORDER.iter().copied().filter(|m| *m != "cli").collect();
    assert_eq!(
        declared, ordered,
        "lib.rs's modules and the architecture order differ: place every new module in ORDER"
    );
}

#[test]
fn no_cycle_between_top_level_modules() {
    let graph = edges();
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        if let Some(cycle) = find_cycle(&graph, m, &mut Vec::new(), &mut done) {
            let steps: Vec<String> = cycle
                .windows(2)
                .map(|w| format!("{} → {} ({})", w[0], w[1], graph[&w[0]][&w[1]]))
                .collect();
            panic!(
                "import cycle between top-level modules:\n  {}",
                steps.join("\n  ")
            );
        }
    }
}

#[test]
fn imports_point_down_the_order() {
    let rank = |m: &str| ORDER.iter().position(|o| *o == m);
    let mut wrong = Vec::new();
    for (from, named) in edges() {
        let Some(rf) = rank(&from) else {
            wrong.push(format!("`{from}` is not in ORDER"));
            continue;
        };
        for (to, file) in named {
            if rank(&to).is_some_and(|rt| rt >= rf) {
                wrong.push(format!("{from} → {to} (in src/{file})"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the order {ORDER:?}:\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn the_reader_sees_grouped_and_climbing_paths() {
    let mut named = BTreeSet::new();
    named_after(
        "use crate::{expr::{Value, types::Type}, span::Span, model};\nlet x = crate::graph::Graph::build(f); my_crate::runtime::x(); use super::super::limits::Limits;",
        "crate::",
        &mut named,
    );
    named_after(
        "use super::super::limits::Limits;",
        "super::super::",
        &mut named,
    );
    let got: Vec<&str> = named.iter().map(String::as_str).collect();
    assert_eq!(got, ["expr", "graph", "limits", "model", "span"]);
    assert_eq!(
        module_of(Path::new("runtime/mod.rs")),
        Some(("runtime".into(), 1))
    );
    assert_eq!(
        module_of(Path::new("runtime/state.rs")),
        Some(("runtime".into(), 2))
    );
    assert_eq!(module_of(Path::new("main.rs")), Some(("cli".into(), 0)));
    assert_eq!(module_of(Path::new("lib.rs")), None);
}

/// petgraph stays inside `graph`: no other module names it, and no `pub` item of `graph`
/// shows one of its types (`cargo doc` would list it).
#[test]
fn petgraph_stays_private_to_graph() {
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let petgraph_types = [
        "petgraph",
        "NodeIndex",
        "EdgeIndex",
        "DiGraph",
        "StableGraph",
        "EdgeRef",
    ];
    let mut wrong = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap().display().to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        let in_graph = rel.starts_with("graph/");
        for (n, line) in text.lines().enumerate() {
            let l = line.trim_start();
            if l.starts_with("//") {
                continue;
            }
            let names_one = petgraph_types.iter().any(|t| l.contains(t));
            let public = l.starts_with("pub ") && !l.starts_with("pub(");
            if names_one && (!in_graph || public) {
                wrong.push(format!("src/{rel}:{}: {l}", n + 1));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "petgraph outside the graph stage's private parts:\n  {}",
        wrong.join("\n  ")
    );
}

/// Bounds live in `src/limits.rs`: any other `const MAX_…` either reads `Limits` or is
/// named here with the reason it is not a bound on input.
#[test]
fn bounds_are_declared_in_limits() {
    const NOT_BOUNDS: &[(&str, &str)] = &[
        ("MAX_LISTED", "how many names one message lists"),
        ("MAX_TS", "CEL's timestamp range, part of the language"),
        (
            "MAX_DURATION_NANOS",
            "CEL's duration range, part of the language",
        ),
        (
            "MAX_CLAIM_ATTEMPTS",
            "retries of a store's race for a revision number",
        ),
        (
            "MAX_AUTO_EVENTS",
            "the CLI's own `--auto` loop, not the library's",
        ),
        (
            "MAX_KNOWN",
            "the always-fails analysis's value-set size: beyond it the part is only open, nothing is refused",
        ),
        (
            "MAX_COMBINATIONS",
            "the always-fails analysis's operand pairs tried: beyond it the part is only open, nothing is refused",
        ),
        (
            "MAX_ATOMS",
            "the always-fails analysis's parts named by one linear form: beyond it the part is only open, nothing is refused",
        ),
        (
            "MAX_ASSIGNMENTS",
            "the decision analysis's case-split budget: beyond it the analysis does not decide, nothing is refused",
        ),
    ];
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap().display().to_string();
        if rel == "limits.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let l = line.trim_start();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            let Some(rest) = l.strip_prefix("const MAX_") else {
                continue;
            };
            let name = format!("MAX_{}", ident_at(rest));
            let reads_limits = l.contains("Limits::");
            if !reads_limits && !NOT_BOUNDS.iter().any(|(k, _)| *k == name) {
                wrong.push(format!("src/{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "a bound outside src/limits.rs (declare it in `Limits`):\n  {}",
        wrong.join("\n  ")
    );
}
