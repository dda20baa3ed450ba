//! Plays pre-commit's part with this repository's `.pre-commit-hooks.yaml`: in a
//! temporary repository holding flows, scenario files, `docker-compose.yml`, a GitHub
//! workflow, `.pre-commit-config.yaml` and a `node_modules/` full of YAML (some broken),
//! each hook's files are selected by its `files`/`exclude`/`types` as pre-commit selects
//! them (`re.search` on the repository-relative path; `types: [yaml]` is identify's tag
//! for `.yaml`/`.yml`), and its `entry` runs with its `args` and `pass_filenames` in the
//! repository root. Also the walks of `flowc check` and `flowc test` in that repository.
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
use std::process::Command;

use flowc::load::{LoadLimits, source_from_bytes, yaml};
use serde_json::{Value, json};

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const PURCHASE: &str = "apiVersion: flowc/v1
kind: ApprovalFlow
id: purchase
context:
  amount: double
steps:
  - id: manager
    type: approval
    assignees: { role: manager }
    skipCondition: amount < 1000.0
";

const PURCHASE_SCENARIOS: &str = "flow: purchase.yaml
scenarios:
  - name: a small purchase needs no approval
    context: { amount: 500.0 }
    expect:
      outcome: approved
      trace: [ { step: manager, status: skipped } ]
";

/// Every file of the temporary repository (pre-commit's `git ls-files`: here
/// `node_modules/` is committed, the worst case).
fn files() -> Vec<(&'static str, String)> {
    let example =
        |name: &str| std::fs::read_to_string(manifest().join("examples").join(name)).unwrap();
    vec![
        ("flows/purchase.yaml", PURCHASE.to_owned()),
        ("flows/purchase.test.yaml", PURCHASE_SCENARIOS.to_owned()),
        ("flows/leave-request.yaml", example("leave-request.yaml")),
        ("flows/leave-request.test.yaml", example("leave-request.test.yaml")),
        (
            "docker-compose.yml",
            "version: '3.8'\nservices:\n  db:\n    image: postgres:16\n    ports: [\"5432:5432\"]\n".to_owned(),
        ),
        (
            ".github/workflows/ci.yml",
            "name: ci\non: [push]\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - run: flowc check\n".to_owned(),
        ),
        (
            ".pre-commit-config.yaml",
            "repos:\n  - repo: https://example.invalid/flowc\n    rev: v0.1.0\n    hooks:\n      - id: flowc-check\n      - id: flowc-test\n".to_owned(),
        ),
        ("node_modules/left-pad/.travis.yml", "language: node_js\nnode_js: [8\n".to_owned()),
        ("node_modules/left-pad/broken.yaml", "key: {unclosed\n\t- tab\n".to_owned()),
        (
            "node_modules/flow-pkg/flow.yaml",
            "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: [broken\n".to_owned(),
        ),
        (
            "node_modules/flow-pkg/flow.test.yaml",
            "flow: flow.yaml\nscenarios: [ { name: never run, expect: { outcome: approved } } ]\n".to_owned(),
        ),
        ("README.md", "# a repository with flows\n".to_owned()),
    ]
}

/// Writes the repository into a fresh temporary directory.
fn repo(name: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("flowc-precommit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for (path, text) in files() {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    root
}

/// One hook of `.pre-commit-hooks.yaml`, with pre-commit's defaults.
#[derive(Debug)]
struct Hook {
    id: String,
    entry: String,
    args: Vec<String>,
    files: regex::Regex,
    exclude: regex::Regex,
    types: Vec<String>,
    types_or: Vec<String>,
    exclude_types: Vec<String>,
    pass_filenames: bool,
    always_run: bool,
}

/// identify's tags that the hooks may name; any other tag fails the test rather than
/// being guessed at.
const KNOWN_TAGS: [&str; 3] = ["file", "text", "yaml"];

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .map(|l| {
            l.as_array()
                .unwrap_or_else(|| panic!("`{key}` is a list"))
                .iter()
                .map(|s| s.as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn hooks() -> Vec<Hook> {
    let bytes = std::fs::read(manifest().join(".pre-commit-hooks.yaml")).unwrap();
    let file = source_from_bytes(".pre-commit-hooks.yaml", bytes).unwrap();
    let root = yaml::parse(&file, &LoadLimits::default())
        .unwrap()
        .to_json();
    let text = |h: &Value, k: &str, default: &str| {
        h.get(k).map_or(default, |v| v.as_str().unwrap()).to_owned()
    };
    let flag = |h: &Value, k: &str, default: bool| {
        h.get(k).map_or(default, |v| {
            v.as_bool()
                .or_else(|| v.as_str().map(|s| s == "true"))
                .unwrap()
        })
    };
    root.as_array()
        .expect("a list of hooks")
        .iter()
        .map(|h| {
            let hook = Hook {
                id: text(h, "id", ""),
                entry: text(h, "entry", ""),
                args: strings(h, "args"),
                files: regex::Regex::new(&text(h, "files", "")).unwrap(),
                exclude: regex::Regex::new(&text(h, "exclude", "^$")).unwrap(),
                types: {
                    let t = strings(h, "types");
                    if t.is_empty() {
                        vec!["file".to_owned()]
                    } else {
                        t
                    }
                },
                types_or: strings(h, "types_or"),
                exclude_types: strings(h, "exclude_types"),
                pass_filenames: flag(h, "pass_filenames", true),
                always_run: flag(h, "always_run", false),
            };
            for t in hook
                .types
                .iter()
                .chain(&hook.types_or)
                .chain(&hook.exclude_types)
            {
                assert!(
                    KNOWN_TAGS.contains(&t.as_str()),
                    "{}: unknown tag `{t}`",
                    hook.id
                );
            }
            hook
        })
        .collect()
}

/// identify's tags for a (non-executable, text) file.
fn tags(path: &str) -> BTreeSet<&'static str> {
    let mut t = BTreeSet::from(["file", "text"]);
    if path.ends_with(".yaml") || path.ends_with(".yml") {
        t.insert("yaml");
    }
    t
}

impl Hook {
    /// pre-commit's `filter_by_include_exclude` then `filter_by_types`.
    fn select<'a>(&self, files: &[&'a str]) -> Vec<&'a str> {
        files
            .iter()
            .copied()
            .filter(|f| self.files.is_match(f) && !self.exclude.is_match(f))
            .filter(|f| {
                let t = tags(f);
                self.types.iter().all(|x| t.contains(x.as_str()))
                    && (self.types_or.is_empty()
                        || self.types_or.iter().any(|x| t.contains(x.as_str())))
                    && !self.exclude_types.iter().any(|x| t.contains(x.as_str()))
            })
            .collect()
    }

    /// Runs the hook on the changed files as pre-commit does: skipped when no file is
    /// selected (unless `always_run`); otherwise `entry args [files]` in the root.
    fn run(&self, root: &Path, changed: &[&str]) -> Outcome {
        let selected = self.select(changed);
        if selected.is_empty() && !self.always_run {
            return Outcome::Skipped;
        }
        let mut words = self.entry.split_whitespace();
        assert_eq!(words.next(), Some("flowc"), "{}: entry runs flowc", self.id);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_flowc"));
        cmd.args(words).args(&self.args).current_dir(root);
        if self.pass_filenames {
            cmd.args(&selected);
        }
        let out = cmd.output().unwrap();
        let log = format!(
            "{} {:?}\n{}{}",
            self.id,
            selected,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            Outcome::Passed(log)
        } else {
            Outcome::Failed(log)
        }
    }
}

#[derive(Debug)]
enum Outcome {
    Skipped,
    Passed(String),
    Failed(String),
}

/// Runs every hook on the changed files: (hook id, outcome).
fn run_hooks(root: &Path, changed: &[&str]) -> Vec<(String, Outcome)> {
    hooks()
        .into_iter()
        .map(|h| {
            let o = h.run(root, changed);
            (h.id, o)
        })
        .collect()
}

fn all_files() -> Vec<&'static str> {
    files().into_iter().map(|(p, _)| p).collect()
}

#[test]
fn the_hooks_file_is_what_pre_commit_reads() {
    let hooks = hooks();
    let ids: Vec<&str> = hooks.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(ids, ["flowc-check", "flowc-test"]);
    let all = all_files();
    // flowc-check gets every YAML file but scenarios and vendored ones, other tools'
    // YAML included
    assert_eq!(
        hooks[0].select(&all),
        [
            "flows/purchase.yaml",
            "flows/leave-request.yaml",
            "docker-compose.yml",
            ".github/workflows/ci.yml",
            ".pre-commit-config.yaml",
        ]
    );
    // flowc-test runs when a flow changes, not only a scenario file, and is told which
    // files changed (never the vendored ones)
    assert_eq!(
        hooks[1].select(&["flows/purchase.yaml"]),
        ["flows/purchase.yaml"]
    );
    assert!(hooks[1].pass_filenames);
    assert!(hooks[1].select(&["README.md"]).is_empty());
    assert!(
        hooks[1]
            .select(&all)
            .iter()
            .all(|f| !f.starts_with("node_modules/"))
    );
}

#[test]
fn hooks_pass_on_the_clean_tree() {
    let root = repo("clean");
    // `pre-commit run --all-files`, with a committed node_modules/ holding broken YAML
    // and a broken vendored flow
    for (id, outcome) in run_hooks(&root, &all_files()) {
        match outcome {
            Outcome::Passed(log) => {
                if id == "flowc-test" {
                    assert!(log.contains("test result: ok. "), "{log}");
                    let output = log.split_once('\n').unwrap().1;
                    assert!(!output.contains("node_modules"), "{log}");
                    assert!(
                        output.contains(
                            "flows/purchase.test.yaml\n  ok   a small purchase needs no approval\n"
                        ),
                        "{log}"
                    );
                }
            }
            other => panic!("{id}: {other:?}"),
        }
    }
    // a commit that touches only other YAML passes too (and skips nothing it should run)
    for (id, outcome) in run_hooks(&root, &["docker-compose.yml", ".github/workflows/ci.yml"]) {
        assert!(matches!(outcome, Outcome::Passed(_)), "{id}: {outcome:?}");
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn hooks_fail_on_a_broken_flow() {
    let root = repo("broken");
    std::fs::write(
        root.join("flows/purchase.yaml"),
        PURCHASE.to_owned() + "    next: nowhere\n",
    )
    .unwrap();
    let results = run_hooks(&root, &["flows/purchase.yaml"]);
    match &results[0] {
        (id, Outcome::Failed(log)) if id == "flowc-check" => {
            assert!(log.contains("flowc::graph::unknown-step"), "{log}");
        }
        other => panic!("flowc-check must fail: {other:?}"),
    }
    // the scenario of the broken flow fails too
    assert!(
        matches!(results[1].1, Outcome::Failed(_)),
        "{:?}",
        results[1]
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn hooks_fail_when_a_flow_change_breaks_a_scenario() {
    let root = repo("scenario");
    // still a valid flow, but small purchases now wait for the manager
    std::fs::write(
        root.join("flows/purchase.yaml"),
        PURCHASE.replace("1000.0", "100.0"),
    )
    .unwrap();
    // only the flow changed: no scenario file is in the commit
    let results = run_hooks(&root, &["flows/purchase.yaml"]);
    assert!(
        matches!(results[0].1, Outcome::Passed(_)),
        "{:?}",
        results[0]
    );
    match &results[1] {
        (id, Outcome::Failed(log)) if id == "flowc-test" => {
            assert!(
                log.contains("FAIL a small purchase needs no approval"),
                "{log}"
            );
            assert!(
                log.contains("outcome: expected \"approved\", got \"pending\""),
                "{log}"
            );
        }
        other => panic!("flowc-test must run and fail: {other:?}"),
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_flow_change_runs_the_scenarios_of_that_flow_only() {
    let root = repo("selected");
    // a valid change to the leave flow, and other YAML
    let leave = root.join("flows/leave-request.yaml");
    let text = std::fs::read_to_string(&leave).unwrap();
    std::fs::write(&leave, text + "# reviewed\n").unwrap();
    let results = run_hooks(&root, &["flows/leave-request.yaml", "docker-compose.yml"]);
    match &results[1] {
        (id, Outcome::Passed(log)) if id == "flowc-test" => {
            assert!(log.contains("flows/leave-request.test.yaml\n"), "{log}");
            assert!(!log.contains("purchase.test.yaml"), "{log}");
            assert!(log.contains("test result: ok. "), "{log}");
        }
        other => panic!("flowc-test must run and pass: {other:?}"),
    }
    // only other YAML changed: no scenario runs, and the hook passes
    match &run_hooks(&root, &["docker-compose.yml"])[1] {
        (_, Outcome::Passed(log)) => {
            assert!(
                log.contains("test result: ok. 0 passed; 0 failed; 0 file(s)"),
                "{log}"
            );
        }
        other => panic!("{other:?}"),
    }
    // a scenario file and a flow named together: the union, each file once
    let (code, out) = flowc(
        &root,
        &[
            "test",
            "flows/purchase.yaml",
            "flows/purchase.test.yaml",
            "./flows/leave-request.yaml",
        ],
    );
    assert_eq!(code, 0, "{out}");
    // one purchase scenario and the seven of the leave flow
    assert!(
        out.ends_with("test result: ok. 8 passed; 0 failed; 2 file(s)\n"),
        "{out}"
    );
    assert_eq!(
        out.matches("flows/purchase.test.yaml\n").count(),
        1,
        "{out}"
    );
    // a flow named from another directory finds its scenarios under the working one
    let (code, out) = flowc(&root.join("flows"), &["test", "purchase.yaml"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("purchase.test.yaml\n"), "{out}");
    let _ = std::fs::remove_dir_all(&root);
}

fn flowc(root: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_flowc"))
        .args(args)
        .current_dir(root)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &*String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn check_walks_like_ripgrep_and_skips_other_yaml() {
    let root = repo("walk");
    // ignored by .gitignore and by .ignore: broken flows that must not be checked
    std::fs::write(root.join(".gitignore"), "build/\n").unwrap();
    std::fs::write(root.join(".ignore"), "scratch.yaml\n").unwrap();
    let broken = "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: [\n";
    std::fs::create_dir_all(root.join("build")).unwrap();
    std::fs::write(root.join("build/flow.yaml"), broken).unwrap();
    std::fs::write(root.join("scratch.yaml"), broken).unwrap();
    std::fs::create_dir_all(root.join("vendor/x")).unwrap();
    std::fs::write(root.join("vendor/x/flow.yaml"), broken).unwrap();
    std::fs::create_dir_all(root.join("target/debug")).unwrap();
    std::fs::write(root.join("target/debug/flow.yaml"), broken).unwrap();
    std::fs::create_dir_all(root.join(".cache")).unwrap();
    std::fs::write(root.join(".cache/flow.yaml"), broken).unwrap();

    let (code, out) = flowc(&root, &["check", "--format", "json"]);
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["files"], 2);
    assert_eq!(v["errors"], 0);
    assert_eq!(v["skipped"], json!(["docker-compose.yml"]));

    let (code, out) = flowc(&root, &["check"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        "checked 2 files: 0 errors, 0 warnings\nskipped 1 YAML file that is not a flow: docker-compose.yml\n"
    );

    // named explicitly, other YAML is a warning, never a failure (even denied)
    let (code, out) = flowc(
        &root,
        &[
            "check",
            "--deny-warnings",
            "docker-compose.yml",
            "flows/purchase.yaml",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        "warning: docker-compose.yml is not a flow (no top-level `kind: ApprovalFlow` or `apiVersion: flowc/...`); skipped\nchecked 1 file: 0 errors, 0 warnings\n"
    );
    let (code, out) = flowc(
        &root,
        &["check", "--format", "github", ".pre-commit-config.yaml"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("::warning file=.pre-commit-config.yaml::"),
        "{out}"
    );

    // `flowc test` finds the scenarios the same way (not node_modules' broken one)
    let (code, out) = flowc(&root, &["test"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("flows/leave-request.test.yaml\n"), "{out}");
    assert!(out.ends_with("; 2 file(s)\n"), "{out}");

    // two files with one flow id, checked together: an error in each
    std::fs::write(root.join("flows/copy.yaml"), PURCHASE).unwrap();
    let (code, out) = flowc(&root, &["check", "--format", "json"]);
    assert_eq!(code, 1, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let dups: Vec<(&str, &str)> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["file"].as_str().unwrap(), d["message"].as_str().unwrap()))
        .collect();
    assert_eq!(
        dups,
        [
            (
                "flows/copy.yaml",
                "flow id `purchase` is also defined in `flows/purchase.yaml`"
            ),
            (
                "flows/purchase.yaml",
                "flow id `purchase` is also defined in `flows/copy.yaml`"
            ),
        ]
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// A new flow file reusing the id of an unchanged flow: `flowc check` is given only the
/// new file, and still reports the duplicate (read from the rest of the repository) at
/// the new file's `id`, naming the other file.
#[test]
fn hooks_fail_on_a_new_flow_reusing_an_id() {
    let root = repo("duplicate-id");
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::write(
        root.join("flows/new.yaml"),
        PURCHASE.replace("1000.0", "10.0"),
    )
    .unwrap();
    let results = run_hooks(&root, &["flows/new.yaml"]);
    match &results[0] {
        (id, Outcome::Failed(log)) if id == "flowc-check" => {
            assert!(log.contains("flowc::check::duplicate-flow-id"), "{log}");
            assert!(
                log.contains("flow id `purchase` is also defined in `flows/purchase.yaml`"),
                "{log}"
            );
        }
        other => panic!("flowc-check must fail: {other:?}"),
    }
    // in JSON: at the new file's `id` value, once (the unchanged file is not reported)
    let (code, out) = flowc(&root, &["check", "--format", "json", "flows/new.yaml"]);
    assert_eq!(code, 1, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let d = &v["diagnostics"];
    assert_eq!(d.as_array().unwrap().len(), 1, "{out}");
    assert_eq!(d[0]["file"], "flows/new.yaml");
    assert_eq!(
        (d[0]["line"].as_u64(), d[0]["column"].as_u64()),
        (Some(3), Some(5))
    );
    // from a subdirectory the repository root is found by `.git`
    let (code, out) = flowc(&root.join("flows"), &["check", "new.yaml"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("`purchase.yaml`"), "{out}");
    // `--isolated` checks the file on its own
    assert_eq!(
        flowc(&root, &["check", "--isolated", "flows/new.yaml"]).0,
        0
    );
    // a unique id passes
    std::fs::write(
        root.join("flows/new.yaml"),
        PURCHASE.replace("id: purchase", "id: purchase-two"),
    )
    .unwrap();
    assert_eq!(flowc(&root, &["check", "flows/new.yaml"]).0, 0);
    let _ = std::fs::remove_dir_all(&root);
}

/// The repository a named file's id is compared in is the file's own (the nearest
/// ancestor of its canonical path holding `.git`), never the working directory's; a
/// file outside any repository is compared with the flows beside it only. Other files
/// are named relative to the working directory when under it, else absolutely.
#[test]
fn check_finds_the_repository_from_the_file_not_the_working_directory() {
    let base =
        std::env::temp_dir().join(format!("flowc-precommit-two-repos-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let write = |path: &str, text: &str| {
        let p = base.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    // repository A (`.git` a directory) and repository B (`.git` a file, as a worktree
    // has) both hold a flow `purchase`
    std::fs::create_dir_all(base.join("a/.git")).unwrap();
    write("a/flows/po.yaml", PURCHASE);
    write("b/.git", "gitdir: /elsewhere\n");
    write("b/flows/purchase-order.yaml", PURCHASE);
    let canonical = std::fs::canonicalize(&base).unwrap();
    // from A, B's file is compared with B only
    let (code, out) = flowc(
        &base.join("a"),
        &["check", "../b/flows/purchase-order.yaml"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("po.yaml"), "{out}");
    // a duplicate in B is named absolutely (it is not under the working directory)
    write("b/flows/copy.yaml", PURCHASE);
    let (code, out) = flowc(
        &base.join("a"),
        &[
            "check",
            "--format",
            "json",
            "../b/flows/purchase-order.yaml",
        ],
    );
    assert_eq!(code, 1, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["diagnostics"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(
        v["diagnostics"][0]["message"],
        format!(
            "flow id `purchase` is also defined in `{}`",
            canonical.join("b/flows/copy.yaml").display()
        )
    );
    // from the common parent (no repository): each file in its own repository, named
    // relative to the working directory
    let (code, out) = flowc(
        &base,
        &[
            "check",
            "--format",
            "json",
            "a/flows/po.yaml",
            "b/flows/purchase-order.yaml",
        ],
    );
    assert_eq!(code, 1, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let messages: Vec<(&str, &str)> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["file"].as_str().unwrap(), d["message"].as_str().unwrap()))
        .collect();
    // the two named files are also compared with each other (checked together)
    assert_eq!(
        messages,
        [
            (
                "a/flows/po.yaml",
                "flow id `purchase` is also defined in `b/flows/purchase-order.yaml`"
            ),
            (
                "b/flows/purchase-order.yaml",
                "flow id `purchase` is also defined in `a/flows/po.yaml`"
            ),
            (
                "b/flows/purchase-order.yaml",
                "flow id `purchase` is also defined in `b/flows/copy.yaml`"
            ),
        ],
        "{out}"
    );
    // outside any repository: the flows beside the file only (not below it, not the
    // working directory's)
    write("loose/x.yaml", PURCHASE);
    write("loose/sub/z.yaml", PURCHASE);
    let (code, out) = flowc(&base, &["check", "loose/x.yaml"]);
    assert_eq!(code, 0, "{out}");
    write("loose/y.yaml", PURCHASE);
    let (code, out) = flowc(&base, &["check", "--format", "json", "loose/x.yaml"]);
    assert_eq!(code, 1, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["diagnostics"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(
        v["diagnostics"][0]["message"],
        "flow id `purchase` is also defined in `loose/y.yaml`"
    );
    let _ = std::fs::remove_dir_all(&base);
}

/// `git mv flows/leave-request.yaml flows/leave.yaml`: pre-commit passes the new name
/// only; `flowc test` also runs the scenario files whose `flow:` no longer exists, and
/// fails on them (the missing flow is an I/O error, exit 2) instead of running nothing.
#[test]
fn hooks_fail_when_a_flow_is_renamed_under_its_scenarios() {
    let root = repo("renamed-flow");
    std::fs::rename(
        root.join("flows/leave-request.yaml"),
        root.join("flows/leave.yaml"),
    )
    .unwrap();
    let results = run_hooks(&root, &["flows/leave.yaml"]);
    match &results[1] {
        (id, Outcome::Failed(log)) if id == "flowc-test" => {
            assert!(
                log.contains(
                    "flows/leave-request.test.yaml\n  ERROR flows/leave-request.yaml: the flow file does not exist (renamed or deleted? `flow:` in this file must name it)"
                ),
                "{log}"
            );
        }
        other => panic!("flowc-test must fail: {other:?}"),
    }
    let (code, _) = flowc(&root, &["test", "flows/leave.yaml"]);
    assert_eq!(code, 2);
    let _ = std::fs::remove_dir_all(&root);
}
