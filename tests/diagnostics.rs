//! Issue 9 (items 5, 6, 8, 9): positions in characters everywhere, bounded diagnostics,
//! one pass that reports everything, reviewer-grade messages, `flowc rule`,
//! completions and the graph's names and skip conditions.
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

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use flowc::compile::{Options, check_many};
use flowc::diagnostic::Diagnostics;

fn flowc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flowc"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run_in(dir: &Path, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = flowc()
        .args(args)
        .current_dir(dir)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run flowc");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn run(args: &[&str]) -> (i32, String, String) {
    run_in(&root(), args, None)
}

/// A fresh temporary directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flowc-diag-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn check(text: &str) -> Diagnostics {
    check_many(
        vec![("flow.yaml".to_owned(), text.as_bytes().to_vec())],
        &Options::default(),
    )
}

/// `code line:col message` for each diagnostic, in order.
fn summary(d: &Diagnostics) -> Vec<String> {
    d.iter()
        .map(|d| {
            let (l, c) = d.line_col();
            format!("{} {l}:{c} {}", d.code(), d.message())
        })
        .collect()
}

const HEAD: &str = "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: t\ncontext:\n  amount: double\n  days: int\n  dept: string\n";

// ---------------------------------------------------------------- item 6: positions

const CHINESE: &str = "apiVersion: flowc/v1
kind: ApprovalFlow
id: t
steps:
  - id: manager
    name: 经理审批（部门）
    type: approval
    assignees: { role: manager }
    next: manger # 经理审批 下一步
";

/// A flow of these context fields (YAML lines) with one step per expression, `s0`,
/// `s1`, …, each written by `step` (its id, the expression).
fn flow_of<'e>(
    context: &str,
    step: impl Fn(&str, &str) -> String,
    exprs: impl Iterator<Item = &'e &'e str>,
) -> String {
    let steps: String = exprs
        .enumerate()
        .map(|(n, e)| step(&format!("s{n}"), e))
        .collect();
    format!("apiVersion: flowc/v1\nkind: ApprovalFlow\nid: t\ncontext:\n{context}\nsteps:\n{steps}")
}

#[test]
fn columns_are_characters_in_every_format() {
    let dir = temp_dir("columns");
    std::fs::write(dir.join("flow.yaml"), CHINESE).unwrap();
    // `next: manger` is ASCII; put the error after Chinese text on the same line
    let text = CHINESE.replace(
        "    next: manger # 经理审批 下一步\n",
        "    name2: 经理 x\n",
    );
    std::fs::write(dir.join("cn.yaml"), &text).unwrap();
    let (code, out, _) = run_in(&dir, &["check", "cn.yaml"], None);
    assert_eq!(code, 1, "{out}");
    // `name2` is at column 5; on the line `    name2: 经理 x` nothing precedes it
    assert!(out.contains("[cn.yaml:9:5]"), "{out}");

    let line = "    assignees: { role: 经理, x: 1 }\n";
    let text = CHINESE.replace("    assignees: { role: manager }\n", line);
    std::fs::write(dir.join("cn2.yaml"), &text).unwrap();
    let (code, human, _) = run_in(&dir, &["check", "cn2.yaml"], None);
    assert_eq!(code, 1, "{human}");
    let (_, json, _) = run_in(&dir, &["check", "--format", "json", "cn2.yaml"], None);
    let (_, github, _) = run_in(&dir, &["check", "--format", "github", "cn2.yaml"], None);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    let d = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "flowc::schema::unknown-key")
        .expect("unknown key")
        .clone();
    // `x` is the 28th character of the line but its 32nd byte
    let col = line.chars().position(|c| c == 'x').unwrap() + 1;
    let byte = line.find('x').unwrap();
    assert_eq!((col, byte + 1), (28, 32));
    assert_eq!(d["line"], 8);
    assert_eq!(d["column"], col);
    let line_start = text.find(line).unwrap();
    assert_eq!(d["offset"], line_start + byte);
    assert_eq!(d["endOffset"], line_start + byte + 1);
    assert!(human.contains(&format!("[cn2.yaml:8:{col}]")), "{human}");
    assert!(github.contains(&format!("line=8,col={col},")), "{github}");
}

/// `n` steps made by `step(i)` after the common head.
fn big_flow(n: usize, step: impl Fn(usize) -> String, tail: &str) -> String {
    let mut s = format!("{HEAD}steps:\n");
    for i in 0..n {
        s.push_str(&step(i));
    }
    s.push_str(tail);
    s
}

/// Checks `text` with the binary (human output) and returns (exit code, stdout).
fn check_human(name: &str, text: &str) -> (i32, String) {
    let dir = temp_dir(name);
    std::fs::write(dir.join("flow.yaml"), text).unwrap();
    let (code, out, _) = run_in(&dir, &["check", "flow.yaml"], None);
    (code, out)
}

#[test]
fn an_automatic_cycle_of_3000_steps_is_one_short_error() {
    let text = big_flow(
        3000,
        |i| format!("  - id: s{i}\n    type: notify\n    to: {{ role: clerk }}\n"),
        "  - id: route\n    type: decision\n    rules:\n      - when: amount > 1.0\n        goto: s0\n    default: done\n  - id: done\n    type: end\n    outcome: approved\n",
    );
    let d = check(&text);
    let s = summary(&d);
    assert_eq!(s.len(), 1, "{:?}", &s[..s.len().min(3)]);
    assert_eq!(
        s[0],
        "flowc::graph::automatic-cycle 9:9 possible infinite loop through `s0` → `s1` → `s2` → `s3` → `s4` → … and 2996 more steps"
    );
    assert_eq!(
        d.iter().next().unwrap().inner().labels().unwrap().count(),
        5
    );
    let (code, out) = check_human("cycle", &text);
    assert_eq!(code, 1);
    assert!(
        out.lines().count() < 40,
        "{} lines:\n{out}",
        out.lines().count()
    );
}

#[test]
fn unreachable_and_unfinishable_regions_are_reported_once() {
    // everything after an end step is unreachable
    let text = big_flow(
        3000,
        |i| format!("  - id: s{i}\n    type: notify\n    to: {{ role: clerk }}\n"),
        "",
    )
    .replace(
        "steps:\n",
        "steps:\n  - id: stop\n    type: end\n    outcome: approved\n",
    );
    let s = summary(&check(&text));
    assert_eq!(
        &s[..s.len().min(3)],
        [
            "flowc::graph::unreachable-step 12:9 step `s0` can never be reached, nor the 2999 steps it leads to: `s1`, `s2`, `s3`, `s4`, `s5`, … and 2994 more"
        ],
    );
    // a loop of approvals that nobody can leave: no end is reachable from any of them
    let text = big_flow(
        3000,
        |i| {
            format!(
                "  - id: s{i}\n    type: approval\n    assignees: {{ role: clerk }}\n    onReject: s0\n"
            )
        },
        "  - id: last\n    type: approval\n    assignees: { role: clerk }\n    onReject: s0\n    next: s0\n",
    );
    let s = summary(&check(&text));
    assert_eq!(
        &s[..s.len().min(3)],
        [
            "flowc::graph::no-end 9:9 no end can be reached from step `s0`, nor from the 3000 steps it leads to: `s1`, `s2`, `s3`, `s4`, `s5`, … and 2995 more"
        ],
    );
    let (_, out) = check_human("noend", &text);
    assert!(out.lines().count() < 30, "{out}");
}

/// A flow whose 3,000 steps each name a step that does not exist.
fn three_thousand_unknown_references() -> String {
    big_flow(
        3000,
        |i| {
            format!(
                "  - id: s{i}\n    type: notify\n    to: {{ role: clerk }}\n    next: nowhere-{i}\n"
            )
        },
        "",
    )
}

#[test]
fn human_output_caps_each_code_per_file_and_counts_the_rest() {
    let text = three_thousand_unknown_references();
    let dir = temp_dir("cap");
    std::fs::write(dir.join("flow.yaml"), &text).unwrap();
    let (code, out, _) = run_in(&dir, &["check", "flow.yaml"], None);
    assert_eq!(code, 1);
    assert!(out.lines().count() < 400, "{} lines", out.lines().count());
    assert_eq!(out.matches("unknown step `nowhere-").count(), 20, "{out}");
    assert!(
        out.contains(
            "note: and 2,980 more `flowc::graph::unknown-step` errors in flow.yaml (use --format json for all, or --max-diagnostics 0)"
        ),
        "{out}"
    );
    // the summary still counts every error
    assert!(
        out.contains("checked 1 file: 3,000 errors"),
        "{}",
        out.lines().last().unwrap()
    );
    // a smaller cap, and no cap
    let (code, out, _) = run_in(
        &dir,
        &["check", "--max-diagnostics", "3", "flow.yaml"],
        None,
    );
    assert_eq!(code, 1);
    assert_eq!(out.matches("unknown step `nowhere-").count(), 3);
    assert!(out.contains("and 2,997 more"), "{out}");
    let (code, out, _) = run_in(
        &dir,
        &["check", "--max-diagnostics", "0", "flow.yaml"],
        None,
    );
    assert_eq!(code, 1);
    assert_eq!(out.matches("unknown step `nowhere-").count(), 3000);
    assert!(!out.contains("more `flowc::graph::unknown-step`"));
    // github output is capped the same way; JSON lists everything
    let (code, out, _) = run_in(&dir, &["check", "--format", "github", "flow.yaml"], None);
    assert_eq!(code, 1);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("::error ")).count(),
        20
    );
    assert!(
        out.contains("::notice file=flow.yaml::and 2,980 more `flowc::graph::unknown-step` errors"),
        "{out}"
    );
    let (code, out, _) = run_in(&dir, &["check", "--format", "json", "flow.yaml"], None);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["errors"], 3000);
    assert_eq!(v["diagnostics"].as_array().unwrap().len(), 3000);
}

// ---------------------------------------------------------------- item 5: one pass

/// Steps whose `type` is misspelt (`aproval`) or unknown but recognisable by its keys.
const TYPE_TYPOS: &str = "apiVersion: flowc/v1
kind: ApprovalFlow
id: typo
context:
  amount: double
steps:
  - id: manager
    type: aproval
    skipCondition: amont < 10.0
    next: finanse
  - id: route
    type: decison
    rules:
      - when: amount > 10.0
        goto: manager
      - when: amount > \"x\"
        goto: nowhere
    default: done
  - id: notice
    type: anouncement
    to: { role: clerk }
    mesage: hi
  - id: done
    type: end
    outcome: approved
";

#[test]
fn a_misspelt_step_type_does_not_hide_the_steps_other_errors() {
    let d = check(TYPE_TYPOS);
    assert_eq!(
        summary(&d),
        [
            "flowc::schema::required 7:5 missing required key `assignees` in step `manager`",
            "flowc::schema::invalid-value 8:11 `aproval` is not allowed here in step `manager`",
            "flowc::expr::unknown-identifier 9:20 unknown identifier `amont`",
            "flowc::graph::unknown-step 10:11 unknown step `finanse` in `next`",
            "flowc::schema::invalid-value 12:11 `decison` is not allowed here in step `route`",
            "flowc::expr::type-mismatch 16:15 no operator `>` for `double` and `string`",
            "flowc::graph::unknown-step 17:15 unknown step `nowhere` in `goto`",
            "flowc::schema::invalid-value 20:11 `anouncement` is not allowed here in step `notice`",
            "flowc::schema::unknown-key 22:5 unknown key `mesage` in step `notice`",
        ]
    );
    // the misspelt steps stay in the graph: `goto: manager` is no unknown step
    assert!(!summary(&d).iter().any(|s| s.contains("`manager` in")));
    // how each step was read is said in the type error's help
    let helps: Vec<String> = d
        .iter()
        .filter(|d| d.code() == "flowc::schema::invalid-value")
        .map(|d| d.help().unwrap_or_default())
        .collect();
    assert!(
        helps[0].starts_with("did you mean `approval`?"),
        "{helps:?}"
    );
    assert!(
        helps[1].starts_with("did you mean `decision`?"),
        "{helps:?}"
    );
    assert!(
        helps[2].ends_with(
            "; the rest of the step was checked as `notify`, the type whose keys it has"
        ),
        "{helps:?}"
    );
}

#[test]
fn a_misspelt_step_type_renders_every_error_in_one_run() {
    let (code, out) = check_human("typo", TYPE_TYPOS);
    assert_eq!(code, 1);
    insta::assert_snapshot!("misspelt_step_types", out);
}

#[test]
fn a_step_type_neither_close_nor_recognisable_still_drops_the_step_quietly() {
    let text = TYPE_TYPOS.replace(
        "type: anouncement\n    to: { role: clerk }\n    mesage: hi\n",
        "type: whatever\n",
    );
    let s = summary(&check(&text));
    assert!(
        s.iter()
            .any(|l| l.starts_with("flowc::schema::invalid-value 20:11 `whatever`")),
        "{s:?}"
    );
    // no cascade: nothing names `notice` as unknown
    assert!(
        !s.iter()
            .any(|l| l.contains("`notice`") && !l.contains("invalid-value")),
        "{s:?}"
    );
}

const MANY_PROBLEMS: &str = "apiVersion: flowc/v1
kind: ApprovalFlow
id: t
context:
  amount: double
  dept: string
steps:
  - id: manager
    type: approval
    skipCondition: amount > \"1000\"
  - id: cc
    type: notify
  - id: typo
    type: aproval
    assignees: { role: clerk }
    skipCondition: dept > 1
  - id: finance
    type: approval
    assignees: { role: finance }
    skipCondition: dept == 3
    next: nowhere
  - id: done
    type: end
    outcome: approved
";

#[test]
fn one_pass_reports_every_problem_at_its_own_step() {
    let s = summary(&check(MANY_PROBLEMS));
    assert_eq!(
        s,
        [
            "flowc::schema::required 8:5 missing required key `assignees` in step `manager`",
            "flowc::expr::type-mismatch 10:20 no operator `>` for `double` and `string`",
            "flowc::schema::required 11:5 missing required key `to` in step `cc`",
            "flowc::schema::invalid-value 14:11 `aproval` is not allowed here in step `typo`",
            "flowc::expr::type-mismatch 16:20 no operator `>` for `string` and `int`",
            "flowc::expr::type-mismatch 20:20 no operator `==` for `string` and `int`",
            "flowc::graph::unknown-step 21:11 unknown step `nowhere` in `next`",
        ]
    );
    // after fixing the schema errors nothing new appears
    let fixed = MANY_PROBLEMS
        .replace(
            "    type: approval\n    skipCondition: amount > \"1000\"",
            "    type: approval\n    assignees: { role: manager }\n    skipCondition: amount > \"1000\"",
        )
        .replace("    type: notify\n", "    type: notify\n    to: { role: clerk }\n")
        .replace("aproval", "approval");
    let s = summary(&check(&fixed));
    assert_eq!(
        s,
        [
            "flowc::expr::type-mismatch 11:20 no operator `>` for `double` and `string`",
            "flowc::expr::type-mismatch 18:20 no operator `>` for `string` and `int`",
            "flowc::expr::type-mismatch 22:20 no operator `==` for `string` and `int`",
            "flowc::graph::unknown-step 23:11 unknown step `nowhere` in `next`",
        ]
    );
}

#[test]
fn a_problem_is_reported_once_by_the_earliest_stage() {
    // a reference of the wrong kind: the schema says so, the graph does not add "unknown step"
    let text = format!(
        "{HEAD}steps:\n  - id: a\n    type: approval\n    assignees: {{ role: x }}\n    next: 5\n  - id: b\n    type: end\n    outcome: approved\n"
    );
    let s = summary(&check(&text));
    assert_eq!(
        s,
        ["flowc::schema::type-mismatch 12:11 expected a string in step `a`"]
    );
    // a context that is not a mapping: no "unknown identifier" for every use of it
    let text = "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: t\ncontext: [amount]\nsteps:\n  - id: a\n    type: approval\n    assignees: { role: x }\n    skipCondition: amount > 1.0\n";
    let s = summary(&check(text));
    assert_eq!(
        s,
        ["flowc::schema::type-mismatch 4:10 expected a mapping at `context`"]
    );
}

// ---------------------------------------------------------------- item 8: a reviewer's words

/// A flow with one approval whose extra lines are `step`.
fn one_step(step: &str) -> String {
    format!("{HEAD}steps:\n  - id: a\n    type: approval\n    assignees: {{ role: x }}\n{step}")
}

/// (code, message, help) of each diagnostic.
fn messages(d: &Diagnostics) -> Vec<(String, String, String)> {
    d.iter()
        .map(|d| (d.code(), d.message(), d.help().unwrap_or_default()))
        .collect()
}

#[test]
fn constant_conditions_say_always_true_or_false() {
    for (cond, value) in [
        ("days > 3 || true", "true"),
        ("true || days > 3", "true"),
        ("days > 3 && false", "false"),
        (
            "dept == dept",
            "true unless evaluating it runs out of a limit",
        ),
        (
            "dept != dept",
            "false unless evaluating it runs out of a limit",
        ),
        ("amount > 100.0 && amount < 50.0", "false"),
        ("amount > 100.0 || amount <= 100.0", "true"),
        ("\"!(days >= days)\"", "false"),
        ("\"days > 3 ? true : true\"", "true"),
    ] {
        let d = check(&one_step(&format!("    skipCondition: {cond}\n")));
        let m = messages(&d);
        assert_eq!(m.len(), 1, "{cond}: {m:?}");
        assert_eq!(m[0].0, "flowc::expr::constant-condition", "{cond}");
        assert_eq!(m[0].1, format!("condition is always {value}"), "{cond}");
    }
    // not constant
    for cond in [
        "days > 3 || dept == \"x\"",
        "amount > 50.0 && amount < 100.0",
        "days == 3",
    ] {
        let d = check(&one_step(&format!("    skipCondition: {cond}\n")));
        assert!(d.is_empty(), "{cond}: {:?}", messages(&d));
    }
}

#[test]
fn an_impossible_rule_is_called_impossible_not_shadowed() {
    let text = format!(
        "{HEAD}steps:\n  - id: route\n    type: decision\n    rules:\n      - when: amount > 1000.0\n        goto: a\n      - when: amount > 100.0 && amount < 50.0\n        goto: a\n    default: a\n  - id: a\n    type: approval\n    assignees: {{ role: x }}\n"
    );
    let s = summary(&check(&text));
    assert_eq!(
        s,
        ["flowc::expr::constant-condition 14:15 condition is always false"]
    );
}

#[test]
fn fixed_values_suggest_the_closest() {
    let d = check(&one_step("    mode: sequentail\n"));
    assert_eq!(
        messages(&d),
        [(
            "flowc::schema::invalid-value".to_owned(),
            "`sequentail` is not allowed here in step `a`".to_owned(),
            "did you mean `sequence`? (one of: single, any, all, sequence)".to_owned()
        )]
    );
    let d = check(&format!(
        "{HEAD}steps:\n  - id: a\n    type: aproval\n    assignees: {{ role: x }}\n"
    ));
    assert_eq!(
        messages(&d)[0].2,
        "did you mean `approval`? (one of: approval, service-task, decision, parallel, notify, end)"
    );
    let d = check(&one_step(
        "    timeout: 1h\n    onTimeout: escalte\n    escalateTo: { role: boss }\n",
    ));
    assert_eq!(
        messages(&d),
        [(
            "flowc::graph::unknown-step".to_owned(),
            "unknown step `escalte` in `onTimeout`".to_owned(),
            "did you mean `escalate`?".to_owned()
        )]
    );
}

#[test]
fn an_int_literal_against_a_double_suggests_the_double_literal() {
    let d = check(&one_step("    skipCondition: amount == 100\n"));
    assert_eq!(
        messages(&d),
        [(
            "flowc::expr::type-mismatch".to_owned(),
            "no operator `==` for `double` and `int`".to_owned(),
            "`amount` is a `double`: write `100.0`".to_owned()
        )]
    );
    let d = check(&one_step("    skipCondition: amount == days\n"));
    assert_eq!(messages(&d)[0].2, "convert with `double(days)`");
}

#[test]
fn a_tab_in_indentation_says_use_spaces() {
    let text = one_step("\tskipCondition: days > 3\n");
    let d = check(&text);
    let m = messages(&d);
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0].0, "flowc::load::yaml-syntax");
    assert_eq!(
        m[0].2,
        "YAML indentation must use spaces, not tabs: replace the tab at the start of this line with spaces"
    );
    assert_eq!(summary(&d)[0].split(' ').nth(1), Some("12:1"));
}

#[test]
fn schema_failures_are_in_a_flow_authors_words() {
    let cases = [
        (
            "    skipCondition: days > 3\n",
            "    assignees: { role: x, user: y }\n",
            "assignees name exactly one of `role`, `user`, `users` or `expr`, not 2",
            "write one, e.g. `assignees: { role: manager }` or `assignees: { users: [alice, bob] }`",
        ),
        (
            "",
            "    assignees: { users: [] }\n",
            "`users` lists no one",
            "name at least one user, e.g. `users: [alice]`",
        ),
        (
            "",
            "    assignees: {}\n",
            "assignees name none of `role`, `user`, `users` or `expr`",
            "write one, e.g. `assignees: { role: manager }` or `assignees: { users: [alice, bob] }`",
        ),
    ];
    for (extra, assignees, message, help) in cases {
        let text = one_step(extra).replace("    assignees: { role: x }\n", assignees);
        let m = messages(&check(&text));
        assert_eq!(m.len(), 1, "{assignees}: {m:?}");
        assert_eq!(m[0].1, format!("{message} in step `a`"), "{assignees}");
        assert_eq!(m[0].2, help, "{assignees}");
    }
    // a field type in none of the accepted forms
    let text =
        format!("{HEAD}  level: [int]\nsteps:\n  - id: a\n    type: end\n    outcome: approved\n");
    let m = messages(&check(&text));
    assert_eq!(
        m,
        [(
            "flowc::schema::type-mismatch".to_owned(),
            "expected a type name or a mapping with `type` at `context.level`".to_owned(),
            "e.g. `amount: double`, `tags: list<string>` or `currency: { type: string, enum: [CNY, USD] }`".to_owned()
        )]
    );
    // an empty enum
    let text = format!(
        "{HEAD}  level: {{ type: int, enum: [] }}\nsteps:\n  - id: a\n    type: end\n    outcome: approved\n"
    );
    let m = messages(&check(&text));
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0].1, "`enum` lists no value at `context.level.enum`");
    // no raw JSON Schema phrasing in any bad fixture
    let dir = root().join("tests/fixtures/snapshots");
    for e in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        for raw in [
            "has more than",
            "has less than",
            "accepted forms",
            "schema's description",
            "is not valid under",
        ] {
            assert!(!text.contains(raw), "{raw}: {text}");
        }
    }
}

#[test]
fn yaml_merge_keys_work_in_flows_and_scenarios() {
    let dir = temp_dir("merge");
    // a step serves as the template of the next ones; later keys override merged ones
    let flow = "apiVersion: flowc/v1
kind: ApprovalFlow
id: merged
context:
  amount: double
steps:
  - &approver
    id: first
    type: approval
    assignees: { role: manager }
    timeout: 48h
    onTimeout: approve
  - <<: *approver
    id: middle
  - <<: [*approver]
    id: second
    assignees: { role: director }
";
    std::fs::write(dir.join("merged.yaml"), flow).unwrap();
    let d = check(flow);
    assert!(d.is_empty(), "{:?}", summary(&d));
    let file = flowc::span::SourceFile::new("merged.yaml", flow);
    let compiled = flowc::compile::compile(&file, &Options::default()).expect("compiles");
    let roles: Vec<String> = compiled
        .flow()
        .steps
        .iter()
        .map(|s| match &s.kind {
            flowc::model::StepKind::Approval {
                assignees: flowc::model::Assignees::Role(r),
                timeout,
                ..
            } => format!(
                "{}:{}:{}",
                s.id.value,
                r.value,
                timeout.as_ref().map_or(0, |t| t.value)
            ),
            _ => String::new(),
        })
        .collect();
    assert_eq!(
        roles,
        [
            "first:manager:172800",
            "middle:manager:172800",
            "second:director:172800"
        ]
    );
    let scenario = "flow: merged.yaml
scenarios:
  - name: first
    context: &ctx
      amount: 10.0
    expect: &pending
      outcome: pending
  - name: merged
    context:
      <<: *ctx
    expect:
      <<: *pending
";
    std::fs::write(dir.join("merged.test.yaml"), scenario).unwrap();
    let (code, out, err) = run_in(&dir, &["test", "merged.test.yaml"], None);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_scenario_with_a_missing_flow_is_an_io_error() {
    let dir = temp_dir("missing-flow");
    std::fs::write(
        dir.join("x.test.yaml"),
        "flow: nowhere.yaml\nscenarios:\n  - context: {}\n    expect:\n      outcome: approved\n",
    )
    .unwrap();
    let (code, out, err) = run_in(&dir, &["test", "x.test.yaml"], None);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("nowhere.yaml"), "{err}");
}

#[test]
fn json_format_always_prints_json() {
    let dir = temp_dir("json-io");
    std::fs::write(dir.join("ok.yaml"), one_step("")).unwrap();
    let (code, out, _) = run_in(
        &dir,
        &["check", "--format", "json", "ok.yaml", "missing.yaml"],
        None,
    );
    assert_eq!(code, 2);
    let v: serde_json::Value = serde_json::from_str(&out).expect(&out);
    assert_eq!(v["files"], 2);
    assert_eq!(v["errors"], 1);
    let d = &v["diagnostics"][0];
    assert_eq!(d["file"], "missing.yaml");
    assert_eq!(d["code"], "flowc::io::read");
    assert_eq!(d["severity"], "error");
    assert!(
        d["message"].as_str().unwrap().contains("No such file"),
        "{d}"
    );
    // and for a path that does not exist at all
    let (code, out, _) = run_in(&dir, &["check", "--format", "json", "nope/"], None);
    assert_eq!(code, 2);
    let v: serde_json::Value = serde_json::from_str(&out).expect(&out);
    assert_eq!(v["diagnostics"][0]["file"], "nope/");
}

#[test]
fn dash_reads_a_flow_from_stdin() {
    let (code, out, _) = run_in(&root(), &["check", "-"], Some(&one_step("")));
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.trim(), "checked 1 file: 0 errors, 0 warnings");
    let bad = one_step("    next: nowhere\n");
    let (code, out, _) = run_in(&root(), &["check", "--format", "json", "-"], Some(&bad));
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect(&out);
    assert_eq!(v["diagnostics"][0]["file"], "<stdin>");
    assert_eq!(v["diagnostics"][0]["line"], 12);
}

// ---------------------------------------------------------------- item 9: rule, completions, graph

/// Every `code("flowc::...")` written in the source, plus the codes the CLI emits by table.
fn codes_in_source() -> std::collections::BTreeSet<String> {
    let mut codes = std::collections::BTreeSet::new();
    let mut stack = vec![root().join("src")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("codes.rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                for part in text.split("code(\"flowc::").skip(1) {
                    if let Some(end) = part.find('"') {
                        codes.insert(format!("flowc::{}", &part[..end]));
                    }
                }
                for part in text.split("codes::Code::").skip(1) {
                    let name: String = part
                        .chars()
                        .take_while(char::is_ascii_alphanumeric)
                        .collect();
                    // variants only (not `Code::parse`, `Code::ALL`)
                    if !name.starts_with(|c: char| c.is_ascii_uppercase()) || name == "ALL" {
                        continue;
                    }
                    let code = flowc::codes::Code::ALL
                        .iter()
                        .find(|c| format!("{c:?}") == name)
                        .unwrap_or_else(|| {
                            panic!("{}: `Code::{name}` is not in the table", p.display())
                        });
                    codes.insert(code.as_str().to_owned());
                }
            }
        }
    }
    codes
}

#[test]
fn every_code_emitted_anywhere_is_in_the_table_and_nothing_else() {
    let emitted = codes_in_source();
    let table: std::collections::BTreeSet<String> = flowc::codes::Code::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    let missing: Vec<&String> = emitted.difference(&table).collect();
    let stale: Vec<&String> = table.difference(&emitted).collect();
    assert!(
        missing.is_empty(),
        "codes missing from src/codes.rs: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "codes in src/codes.rs that nothing emits: {stale:?}"
    );
    // a compile-time code's fixture is the one the fixture harness runs
    for c in flowc::codes::Code::ALL {
        let fixture = root().join(format!("tests/fixtures/bad/{}.yaml", c.fixture_name()));
        // an internal error is a bug: once one is found it is fixed, so no fixture shows it
        let has_fixture = !c.is_run_time() && *c != flowc::codes::Code::ExprInternal;
        assert_eq!(
            fixture.exists(),
            has_fixture,
            "{c}: fixture {}",
            fixture.display()
        );
    }
}

/// Compile-time codes whose bad fixture cannot be embedded in the table: the loader's
/// size bound needs a file larger than `Options::default()` allows to matter only in the
/// harness's smaller limit, and a file that is not UTF-8 cannot be a `&str`.
const NO_EMBEDDED_EXAMPLE: [flowc::codes::Code; 2] = [
    flowc::codes::Code::LoadFileTooLarge,
    flowc::codes::Code::LoadNotUtf8,
];

#[test]
fn every_code_with_a_fixture_has_a_bad_and_a_fixed_example() {
    let mut missing = Vec::new();
    for c in flowc::codes::Code::ALL {
        let has_fixture = !c.is_run_time() && *c != flowc::codes::Code::ExprInternal;
        if !has_fixture || NO_EMBEDDED_EXAMPLE.contains(c) {
            continue;
        }
        let info = c.info();
        if info.example.bad().is_none() || info.example.fixed().is_none() {
            missing.push(c.as_str());
        }
    }
    assert!(
        missing.is_empty(),
        "codes without a fixed example: {missing:?}"
    );
}

#[test]
fn each_fixed_example_no_longer_has_its_code_and_checks_clean() {
    let mut checked = 0;
    for c in flowc::codes::Code::ALL {
        let info = c.info();
        let (Some(bad), Some(fixed)) = (info.example.bad(), info.example.fixed()) else {
            continue;
        };
        // a code about files checked together is shown with its companion file
        let companion = root().join(format!(
            "tests/fixtures/bad/companions/{}.yaml",
            c.fixture_name()
        ));
        let companion = std::fs::read(&companion).ok();
        let codes = |text: &str| -> Vec<String> {
            let mut files = vec![("x.yaml".to_owned(), text.as_bytes().to_vec())];
            if let Some(other) = &companion {
                files.push(("companion.yaml".to_owned(), other.clone()));
            }
            check_many(files, &Options::default())
                .iter()
                .map(|d| d.code())
                .collect()
        };
        let before = codes(bad);
        let after = codes(&fixed);
        assert!(
            before.contains(&c.as_str().to_owned()),
            "{c}: the bad example gives {before:?}"
        );
        // every fixed example is a flow that checks clean: no error and no warning
        assert!(after.is_empty(), "{c}: the fixed example gives {after:?}");
        checked += 1;
    }
    assert!(checked >= 50, "only {checked} fixed examples");
}

#[test]
fn rule_prints_meaning_why_and_examples() {
    let (code, out, _) = run(&["rule", "graph::unknown-step"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with(
            "# flowc::graph::unknown-step\n\nA reference to a step that does not exist.\n\n## Why\n"
        ),
        "{out}"
    );
    let fixture =
        std::fs::read_to_string(root().join("tests/fixtures/bad/graph.unknown-step.yaml")).unwrap();
    assert!(
        out.contains(&format!(
            "## Example\n\n`tests/fixtures/bad/graph.unknown-step.yaml`:\n\n```yaml\n{fixture}```\n"
        )),
        "{out}"
    );
    let fixed = out
        .split("## Fixed\n\n```yaml\n")
        .nth(1)
        .expect("a fixed example");
    assert!(!fixed.contains("manger"), "{fixed}");
    // every spelling, and a did-you-mean for a typo
    assert_eq!(run(&["rule", "flowc::graph::unknown-step"]).1, out);
    assert_eq!(run(&["rule", "graph.unknown-step"]).1, out);
    let (code, _, err) = run(&["rule", "graph::unknown-stpe"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("did you mean `flowc::graph::unknown-step`?"),
        "{err}"
    );
    // run-time codes have no example, only the explanation
    let (code, out, _) = run(&["rule", "runtime::not-assignee"]);
    assert_eq!(code, 0);
    assert!(!out.contains("## Example"), "{out}");
    let (code, out, _) = run(&["rule", "--all"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), flowc::codes::Code::ALL.len());
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "complete -F _flowc"),
        ("zsh", "#compdef flowc"),
        ("fish", "complete -c flowc"),
    ] {
        let (code, out, err) = run(&["completions", shell]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(marker), "{shell}: {out}");
        for sub in ["check", "rule", "completions", "graph"] {
            assert!(out.contains(sub), "{shell} lacks {sub}");
        }
        // `flowc rule <TAB>` completes codes (in the fixture form: shells split at `:`)
        for code in ["graph.unknown-step", "model.not-in-enum", "runtime.stale"] {
            assert!(out.contains(code), "{shell} does not complete `{code}`");
        }
    }
    let (code, _, _) = run(&["completions", "tcsh"]);
    assert_eq!(code, 2);
}

#[test]
fn graph_shows_step_names_and_skip_conditions() {
    let dir = temp_dir("graph-names");
    let text = one_step("    name: 经理审批\n    skipCondition: amount < 1000.0\n");
    std::fs::write(dir.join("g.yaml"), &text).unwrap();
    let (code, mermaid, err) = run_in(&dir, &["graph", "g.yaml"], None);
    assert_eq!(code, 0, "{err}");
    assert!(
        mermaid.contains("s0[\"经理审批\\na · approval (single)\\nskip if amount #lt; 1000.0\"]"),
        "{mermaid}"
    );
    let (code, dot, _) = run_in(&dir, &["graph", "--format", "dot", "g.yaml"], None);
    assert_eq!(code, 0);
    assert!(
        dot.contains("s0 [label=\"经理审批\\na · approval (single)\\nskip if amount < 1000.0\""),
        "{dot}"
    );
}

#[test]
fn graph_and_github_output_take_stdin_and_io_errors_too() {
    let (code, out, err) = run_in(&root(), &["graph", "-"], Some(&one_step("")));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("s0[\"a\\napproval (single)\"]"), "{out}");
    let (code, out, _) = run(&["check", "--format", "github", "missing.yaml"]);
    assert_eq!(code, 2);
    assert!(
        out.starts_with("::error file=missing.yaml,title=flowc%3A%3Aio%3A%3Aread::"),
        "{out}"
    );
}

#[test]
fn a_capitalised_type_is_reported_once_with_a_suggestion() {
    let text = "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: t\ncontext:\n  amount: Double\n  tags: List<String>\nsteps:\n  - id: a\n    type: approval\n    assignees: { role: x }\n    skipCondition: amount > 1.0\n";
    let m = messages(&check(text));
    assert_eq!(
        m.iter()
            .map(|(c, _, h)| format!("{c}: {h}"))
            .collect::<Vec<_>>(),
        [
            "flowc::schema::pattern: did you mean `double`? (type names are lowercase)",
            "flowc::schema::pattern: did you mean `list<string>`? (type names are lowercase)",
        ]
    );
}

// ------------------------------------------- issue 9 probe, item 1: optional fields

const OPTIONAL: &str = "apiVersion: flowc/v1
kind: ApprovalFlow
id: t
context:
  grade: { type: int, optional: true }
  applicant:
    type: object
    fields:
      grade: { type: int, optional: true }
  items:
    type: list
    items:
      type: object
      fields:
        grade: { type: int, optional: true }
steps:
  - id: a
    type: approval
    assignees: { role: x }
    skipCondition: 'COND'
";

fn optional_with(cond: &str) -> Diagnostics {
    check(&OPTIONAL.replace("COND", cond))
}

#[test]
fn has_on_a_top_level_optional_variable_checks_and_runs_on_both_paths() {
    use flowc::expr::Value;
    use flowc::sandbox::Bindings;
    let text = OPTIONAL.replace("COND", "has(grade) && grade > 3");
    assert_eq!(summary(&check(&text)), Vec::<String>::new());
    let flow = flowc::compile::compile(
        &flowc::span::SourceFile::new("flow.yaml", text),
        &Options::default(),
    )
    .expect("compiles");
    let cond = flow
        .skip_condition(flow.step_index("a").expect("step a"))
        .expect("skip condition");
    let sb = flow.sandbox();
    let slot = flow.vars().index("grade").expect("slot");
    // absent: false on both paths, not `no value for grade`
    let mut absent = Bindings::new();
    assert_eq!(cond.eval(sb, &mut absent), Ok(false));
    assert_eq!(cond.eval_sandboxed(sb, &mut absent), Ok(false));
    for (grade, want) in [(5, true), (2, false)] {
        let mut b = Bindings::new();
        b.set(slot, &Value::Int(grade));
        assert_eq!(cond.eval(sb, &mut b), Ok(want), "direct, grade {grade}");
        assert_eq!(
            cond.eval_sandboxed(sb, &mut b),
            Ok(want),
            "sandbox, grade {grade}"
        );
    }
    // `has` of a name that is not declared is an unknown identifier, with a suggestion
    assert_eq!(
        summary(&optional_with("has(grad)")),
        ["flowc::expr::unknown-identifier 20:21 unknown identifier `grad`"]
    );
}

#[test]
fn an_unguarded_optional_read_is_a_warning_at_the_read() {
    for (cond, path, col) in [
        ("grade > 3", "grade", 21),
        ("applicant.grade > 3", "applicant.grade", 21),
        ("items.exists(i, i.grade > 3)", "i.grade", 37),
        ("has(grade) || grade > 3", "grade", 35),
        ("has(applicant.grade) && grade > 3", "grade", 45),
    ] {
        let d = optional_with(cond);
        assert_eq!(
            summary(&d),
            [format!(
                "flowc::expr::unguarded-optional 20:{col} `{path}` is optional but read without a `has({path})` guard: an instance without it raises an incident"
            )],
            "{cond}"
        );
        assert!(
            d.iter()
                .all(|d| d.help().unwrap_or_default().starts_with("guard it: `has(")),
            "{cond}"
        );
    }
    for guarded in [
        "has(grade) && grade > 3",
        "grade > 3 && has(grade)",
        "!has(grade) || grade > 3",
        "has(grade) ? grade > 3 : false",
        "has(applicant.grade) && applicant.grade > 3",
        "items.exists(i, has(i.grade) && i.grade > 3)",
        "items.filter(i, has(i.grade)).size() > 0",
        "has(grade) && has(applicant.grade) && grade > applicant.grade",
    ] {
        assert_eq!(
            summary(&optional_with(guarded)),
            Vec::<String>::new(),
            "{guarded}"
        );
    }
}

// ------------------------------------- issue 9 probe, item 2: one primary position

/// The `file:line:col` of the first snippet header of a human rendering.
fn human_header(d: &flowc::diagnostic::Diagnostic) -> Option<(usize, usize)> {
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(100);
    let mut out = String::new();
    handler.render_report(&mut out, d).expect("render");
    let line = out.lines().find(|l| l.contains("╭─["))?;
    let inner = line.split("╭─[").nth(1)?.trim_end_matches(']');
    let mut parts = inner.rsplitn(3, ':');
    let col = parts.next()?.parse().ok()?;
    let row = parts.next()?.parse().ok()?;
    Some((row, col))
}

#[test]
fn the_human_header_is_the_json_position_for_every_fixture() {
    let dir = root().join("tests/fixtures/bad");
    let mut seen = 0;
    for e in std::fs::read_dir(&dir).expect("fixtures") {
        let p = e.expect("entry").path();
        if p.extension().is_none_or(|x| x != "yaml") {
            continue;
        }
        let d = check_many(
            vec![("flow.yaml".to_owned(), std::fs::read(&p).expect("read"))],
            &Options::default(),
        );
        for d in &d {
            if d.span().is_some() {
                assert_eq!(
                    human_header(d),
                    Some(d.line_col()),
                    "{}: {d:?}",
                    p.display()
                );
                seen += 1;
            }
        }
    }
    assert!(seen >= 40, "only {seen} diagnostics with a position");
}

#[test]
fn a_second_definition_far_from_the_first_is_the_header_in_every_format() {
    let filler: String = (0..8)
        .map(|i| format!("  - id: s{i}\n    type: approval\n    assignees: {{ role: x }}\n"))
        .collect();
    let text = format!(
        "{HEAD}steps:\n  - id: manager\n    type: approval\n    assignees: {{ role: x }}\n{filler}  - id: manager\n    type: approval\n    assignees: {{ role: x }}\n"
    );
    let d = check(&text);
    let dup = d
        .iter()
        .find(|d| d.code() == "flowc::graph::duplicate-step-id")
        .expect("duplicate");
    assert_eq!(dup.line_col(), (36, 9));
    assert_eq!(human_header(dup), Some((36, 9)));
    // the first definition is still shown, after the primary snippet
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(100);
    let mut out = String::new();
    handler.render_report(&mut out, dup).expect("render");
    assert!(out.contains("first defined here"), "{out}");
    assert!(out.contains("flow.yaml:9:9"), "{out}");
}

// ------------------------------------------ issue 9 probe, item 6: char boundaries

#[test]
fn spans_end_on_character_boundaries() {
    for (ch, width) in [("中", 3), ("😀", 4)] {
        let text = one_step(&format!("    skipCondition: 'amount > {ch}'\n"));
        let d = check(&text);
        let syntax = d
            .iter()
            .find(|d| d.code() == "flowc::expr::syntax")
            .unwrap_or_else(|| panic!("{ch}: {d:?}"));
        let span = syntax.span().expect("span");
        assert_eq!(&text[span.start..span.end], ch, "{ch}");
        assert_eq!(span.end - span.start, width);
        let (code, out, _) = run_in(
            &{
                let dir = temp_dir(&format!("boundary-{width}"));
                std::fs::write(dir.join("flow.yaml"), &text).expect("write");
                dir
            },
            &["check", "--format", "json", "flow.yaml"],
            None,
        );
        assert_eq!(code, 1, "{out}");
        let json: serde_json::Value = serde_json::from_str(&out).expect("json");
        let entry = json
            .to_string()
            .contains(&format!("\"endOffset\":{}", span.end));
        assert!(entry, "{ch}: {out}");
    }
}

// --------------------------------------- issue 9 probe, item 5: sizes are never negative

#[test]
fn a_size_is_never_negative() {
    let ctx = "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: t\ncontext:\n  tags: list<string>\n  name: string\n";
    let decision = format!(
        "{ctx}steps:\n  - id: d\n    type: decision\n    rules:\n      - when: tags.size() == 0\n        goto: e\n      - when: tags.size() > 0\n        goto: e\n  - id: e\n    type: end\n    outcome: approved\n"
    );
    assert_eq!(summary(&check(&decision)), Vec::<String>::new());
    // `size` of a string reads it (charged by its bytes): it may run out of the budget
    for (cond, always) in [
        ("tags.size() < 0", "false"),
        ("tags.size() >= 0", "true"),
        (
            "name.size() == -1",
            "false unless evaluating it runs out of a limit",
        ),
    ] {
        let text = format!(
            "{ctx}steps:\n  - id: a\n    type: approval\n    assignees: {{ role: x }}\n    skipCondition: '{cond}'\n"
        );
        assert_eq!(
            summary(&check(&text)),
            [format!(
                "flowc::expr::constant-condition 11:20 condition is always {always}"
            )],
            "{cond}"
        );
    }
}

#[test]
fn mermaid_quotes_the_title_and_escapes_labels() {
    let dir = temp_dir("graph-escapes");
    let text = "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: t\nname: \"Expense: CN #2 \\\"q\\\"\"\ncontext:\n  amount: double\nsteps:\n  - id: a\n    name: \"say \\\"hi\\\" <b> && &amp;\\nnext\"\n    type: approval\n    assignees: { role: x }\n";
    std::fs::write(dir.join("g.yaml"), text).unwrap();
    let (code, mermaid, err) = run_in(&dir, &["graph", "g.yaml"], None);
    assert_eq!(code, 0, "{err}");
    assert!(
        mermaid.starts_with("---\ntitle: \"Expense: CN #2 \\\"q\\\"\"\n---\nflowchart TD\n"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains(
            "s0[\"say #quot;hi#quot; #lt;b#gt; && #amp;amp;<br/>next\\na · approval (single)\"]"
        ),
        "{mermaid}"
    );
}

// ------------------------------------------- issue 9 probe, item 3: one pass, no gaps

#[test]
fn a_step_missing_type_or_id_still_has_its_references_checked() {
    let head =
        "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: t\ncontext:\n  amount: double\nsteps:\n";
    let tail = "    assignees: { role: x }\n    next: zz1\n  - id: e\n    type: end\n    outcome: approved\n";
    for (step, missing) in [("  - id: a\n", "type"), ("  - type: approval\n", "id")] {
        let d = check(&format!("{head}{step}{tail}"));
        assert_eq!(
            summary(&d),
            [
                format!(
                    "flowc::schema::required 7:5 missing required key `{missing}` at `steps.0`"
                ),
                "flowc::graph::unknown-step 9:11 unknown step `zz1` in `next`".to_owned(),
            ],
            "missing {missing}"
        );
    }
}

#[test]
fn a_rule_missing_goto_still_has_its_condition_checked() {
    let text = "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: t\ncontext:\n  amount: double\nsteps:\n  - id: d\n    type: decision\n    rules:\n      - when: amout > 3.0\n    default: e\n  - id: e\n    type: end\n    outcome: approved\n";
    assert_eq!(
        summary(&check(text)),
        [
            "flowc::schema::required 10:9 missing required key `goto` in step `d`",
            "flowc::expr::unknown-identifier 10:15 unknown identifier `amout`",
        ]
    );
}

#[test]
fn a_misspelt_context_type_is_read_as_the_close_type() {
    let text = "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: t\ncontext:\n  amount: dobule\n  dept: {type: strng}\n  tags: list<strng>\nsteps:\n  - id: a\n    type: approval\n    assignees: { role: x }\n    skipCondition: amount > \"x\" || dept == 3 || tags.exists(t, t == 1)\n";
    assert_eq!(
        summary(&check(text)),
        [
            "flowc::model::unknown-type 5:11 unknown type `dobule`",
            "flowc::model::unknown-type 6:16 unknown type `strng`",
            "flowc::model::unknown-type 7:9 unknown type `list<strng>`",
            "flowc::expr::type-mismatch 12:20 no operator `>` for `double` and `string`",
            "flowc::expr::type-mismatch 12:36 no operator `==` for `string` and `int`",
            "flowc::expr::type-mismatch 12:64 no operator `==` for `string` and `int`",
        ]
    );
}

// -------------------------------- issue 9 probe, item 4: one mistake, one diagnostic

#[test]
fn one_mistake_gives_one_diagnostic() {
    let head =
        "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: t\ncontext:\n  amount: double\nsteps:\n";
    let end = "  - id: e\n    type: end\n    outcome: approved\n";
    for (steps, want) in [
        (
            "  - id: a\n    type: approval\n    assignees: { role: x }\n    timeout: 4x\n    onTimeout: approve\n",
            "flowc::schema::pattern 10:14 `4x` does not have the required form in step `a`",
        ),
        (
            "  - id: a\n    type: approval\n    assignees: { rol: manager }\n",
            "flowc::schema::unknown-key 9:18 unknown key `rol` in step `a`",
        ),
        (
            "  - id: a\n    type: approval\n    assignees: { role: x }\n    timeout: 1h\n    onTimeout: escalate\n    escalateTo: { usr: boss }\n",
            "flowc::schema::unknown-key 12:19 unknown key `usr` in step `a`",
        ),
        (
            "  - id: p\n    type: parallel\n    branches: []\n",
            "flowc::schema::constraint 9:15 `branches` is an empty list in step `p`",
        ),
        // a list's element is named by its list (probe q11d nit 4: "`1` is empty")
        (
            "  - id: a\n    type: approval\n    mode: all\n    assignees: { users: [li, \"\"] }\n",
            "flowc::schema::constraint 10:30 `users[1]` is empty in step `a`",
        ),
        (
            "  - id: p\n    type: parallel\n    branches:\n      - stepz:\n          - id: b\n            type: approval\n            assignees: { role: x }\n",
            "flowc::schema::unknown-key 10:9 unknown key `stepz` in step `p`",
        ),
    ] {
        let d = check(&format!("{head}{steps}{end}"));
        assert_eq!(summary(&d), [want], "{steps}");
    }
    let d = check(
        "apiversion: flowc/v1\nkind: ApprovalFlow\nid: t\nsteps:\n  - id: e\n    type: end\n    outcome: approved\n",
    );
    assert_eq!(
        messages(&d),
        [(
            "flowc::schema::unknown-key".to_owned(),
            "unknown key `apiversion`".to_owned(),
            "did you mean `apiVersion`?".to_owned()
        )]
    );
    assert_eq!(
        d.iter().next().map(flowc::diagnostic::Diagnostic::line_col),
        Some((1, 1))
    );
    // a key that is really missing is still reported
    let d = check(
        "kind: ApprovalFlow\nid: t\nsteps:\n  - id: e\n    type: end\n    outcome: approved\n",
    );
    assert_eq!(
        summary(&d),
        ["flowc::schema::required 1:1 missing required key `apiVersion`"]
    );
}

// ------------------------------ issue 9 probe, item 5: what a reviewer would say

const ENUMS: &str = "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: t\ncontext:\n  days: int\n  kind: string\n  tags: list<string>\n  dept: { type: string, enum: [sales, it] }\n  items:\n    type: list\n    items:\n      type: object\n      fields:\n        cat: { type: string, enum: [travel, meal] }\nsteps:\n";

fn codes_of(d: &Diagnostics) -> Vec<String> {
    d.iter()
        .map(|d| {
            let (l, c) = d.line_col();
            format!("{} {l}:{c}", d.code())
        })
        .collect()
}

#[test]
fn reviewer_warnings_the_probe_found_missing() {
    let skip = |cond: &str| {
        check(&format!(
            "{ENUMS}  - id: a\n    type: approval\n    assignees: {{ role: x }}\n    skipCondition: '{cond}'\n"
        ))
    };
    // a contradiction is always false (unless `in` runs out of the budget on a huge
    // list: limit errors are not absorbed)
    assert_eq!(
        summary(&skip("\"a\" in tags && !(\"a\" in tags)")),
        [
            "flowc::expr::constant-condition 19:20 condition is always false unless evaluating it runs out of a limit"
        ]
    );
    // a member of an `in` list outside the enum
    let d = skip("dept in [\"sales\", \"hr\"]");
    assert_eq!(codes_of(&d), ["flowc::expr::outside-enum 19:39"]);
    assert_eq!(
        d.iter().next().and_then(|d| d.help()).as_deref(),
        Some("compare `dept` with one of its enum values, or add `hr` to the enum")
    );
    // the enum of a list element's field, through a comprehension variable
    let d = skip("items.exists(i, i.cat == \"w\")");
    assert_eq!(
        summary(&d),
        [
            "flowc::expr::outside-enum 19:37 `i.cat` is never `w` (its enum is travel, meal): this comparison is always false"
        ]
    );
    assert_eq!(
        summary(&skip("items.exists(i, i.cat == \"meal\")")),
        Vec::<String>::new()
    );
}

#[test]
fn a_rule_implied_by_an_earlier_one_is_shadowed() {
    let text = format!(
        "{ENUMS}  - id: d\n    type: decision\n    rules:\n      - when: days > 3\n        goto: e\n      - when: days > 3 && kind == \"a\"\n        goto: e\n    default: e\n  - id: e\n    type: end\n    outcome: approved\n"
    );
    assert_eq!(
        summary(&check(&text)),
        ["flowc::graph::shadowed-rule 21:15 rule 2 of decision `d` is shadowed by earlier rules"]
    );
    // the other way round, the narrower rule first, nothing is shadowed
    let text = text.replacen("when: days > 3\n", "when: days > 3 && kind == \"b\"\n", 1);
    assert_eq!(summary(&check(&text)), Vec::<String>::new());
}

#[test]
fn a_rule_true_for_every_enum_value_makes_later_rules_unreachable() {
    let text = format!(
        "{ENUMS}  - id: d\n    type: decision\n    rules:\n      - when: dept != \"法务\"\n        goto: e\n      - when: days > 3\n        goto: e\n    default: e\n  - id: e\n    type: end\n    outcome: approved\n"
    );
    assert_eq!(
        codes_of(&check(&text)),
        [
            "flowc::expr::outside-enum 19:15",
            "flowc::graph::unreachable-rule 21:15"
        ]
    );
}

// ------------------------------------------ issue 9 probe, item 6: `flowc rule` pages

#[test]
fn every_bad_example_gives_its_code_under_the_command_the_page_shows() {
    let mut ran = 0;
    for c in flowc::codes::Code::ALL {
        let Some(bad) = c.info().example.bad() else {
            continue;
        };
        let dir = temp_dir(&format!("rule-{}", c.fixture_name()));
        std::fs::write(dir.join("example.yaml"), bad).unwrap();
        if let Some(other) = c.companion() {
            std::fs::write(dir.join("companion.yaml"), other).unwrap();
        }
        let (_, page, _) = run(&["rule", c.as_str()]);
        assert!(
            page.contains(&format!("`{}` reports it.", c.command())),
            "{c}: {page}"
        );
        let args: Vec<&str> = c.command().split_whitespace().skip(1).collect();
        let (code, out, err) = run_in(&dir, &args, None);
        // an error fails the run; a warning is reported and passes
        let want = if c.info().summary.ends_with("(warning)") {
            0
        } else {
            1
        };
        assert_eq!(code, want, "{c}: {out}{err}");
        assert!(
            out.contains(c.as_str()) || err.contains(c.as_str()),
            "{c}: `{}` gives {out}{err}",
            c.command()
        );
        ran += 1;
    }
    assert!(ran >= 50, "only {ran} examples");
    // the example of a code about two files shows both
    let (_, page, _) = run(&["rule", "check::duplicate-flow-id"]);
    assert!(
        page.contains(
            "checked together with `tests/fixtures/bad/companions/check.duplicate-flow-id.yaml`"
        ),
        "{page}"
    );
}

#[test]
fn rule_lists_the_codes_a_shared_name_could_mean() {
    let (code, out, err) = run(&["rule", "unknown-step"]);
    assert_eq!(code, 2, "{out}");
    assert_eq!(
        err,
        "error: `unknown-step` names 2 codes: flowc::graph::unknown-step, flowc::runtime::unknown-step; run `flowc rule` with one of them\n"
    );
}

// -------------------------------- issue 9 probe round 2: checker fixes

#[test]
fn a_bad_timeout_still_checks_the_on_timeout_target() {
    let d = check(
        "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: t\ncontext:\n  amount: double\nsteps:\n  - id: a\n    type: approval\n    assignees: { role: x }\n    timeout: 4x\n    onTimeout: escalte\n  - id: e\n    type: end\n    outcome: approved\n",
    );
    assert_eq!(
        summary(&d),
        [
            "flowc::schema::pattern 10:14 `4x` does not have the required form in step `a`",
            "flowc::graph::unknown-step 11:16 unknown step `escalte` in `onTimeout`",
        ]
    );
}

const DECIDE: &str = "apiVersion: flowc/v1
kind: ApprovalFlow
id: t
context:
  grade: { type: int, optional: true }
  kind: { type: string, enum: [annual, sick] }
  days: int
  amount: double
steps:
  - id: d
    type: decision
    hitPolicy: POLICY
    rules:
RULES  - id: a
    type: approval
    assignees: { role: x }
  - id: e
    type: end
    outcome: approved
";

fn decide(policy: &str, rules: &[&str]) -> Vec<String> {
    let rules: String = rules
        .iter()
        .map(|r| format!("      - when: '{r}'\n        goto: a\n"))
        .collect();
    let d = check(&DECIDE.replace("POLICY", policy).replace("RULES", &rules));
    summary(&d)
}

#[test]
fn exhaustiveness_splits_cases_over_presence_enums_and_ranges() {
    for (policy, rules) in [
        ("first", &["has(grade)", "!has(grade)"][..]),
        ("first", &["!has(grade)", "grade > 3", "grade <= 3"]),
        ("unique", &["has(grade)", "!has(grade)"]),
        (
            "first",
            &[
                "amount > 1000.0",
                "days > 10",
                "kind == \"annual\"",
                "kind == \"sick\"",
            ],
        ),
        (
            "unique",
            &[
                "kind == \"annual\" && days > 3",
                "kind == \"annual\" && days <= 3",
                "kind == \"sick\"",
            ],
        ),
    ] {
        let d = decide(policy, rules);
        assert!(
            !d.iter().any(|l| l.contains("non-exhaustive")),
            "{policy} {rules:?}: {d:?}"
        );
    }
    // a case no rule covers is still reported
    for (policy, rules) in [
        ("first", &["has(grade) && grade > 3", "!has(grade)"][..]),
        (
            "unique",
            &["kind == \"annual\" && days > 3", "kind == \"sick\""],
        ),
        ("first", &["amount > 1000.0", "kind == \"annual\""]),
    ] {
        let d = decide(policy, rules);
        assert!(
            d.iter()
                .any(|l| l.starts_with("flowc::graph::non-exhaustive-decision 10:9 ")),
            "{policy} {rules:?}: {d:?}"
        );
    }
}

#[test]
fn earlier_first_rules_and_filters_guard_optional_reads() {
    let unguarded = |d: &[String]| -> Vec<String> {
        d.iter()
            .filter(|l| l.contains("unguarded-optional"))
            .cloned()
            .collect()
    };
    // under `first`, a later rule runs only when `!has(grade)` was false
    for rules in [
        &["!has(grade)", "grade > 3", "grade <= 3"][..],
        &["amount > 1.0 || !has(grade)", "grade > 3", "true"],
    ] {
        assert_eq!(
            unguarded(&decide("first", rules)),
            Vec::<String>::new(),
            "{rules:?}"
        );
    }
    // not under `unique`, where every rule is evaluated
    assert_eq!(
        unguarded(&decide(
            "unique",
            &["!has(grade)", "grade > 3", "has(grade) && grade <= 3"]
        )),
        [
            "flowc::expr::unguarded-optional 16:16 `grade` is optional but read without a `has(grade)` guard: an instance without it raises an incident"
        ]
    );
    // an earlier rule that can be false with `grade` absent guards nothing
    assert_eq!(
        unguarded(&decide(
            "first",
            &["has(grade) && amount > 1.0", "grade > 3", "true"]
        )),
        [
            "flowc::expr::unguarded-optional 16:16 `grade` is optional but read without a `has(grade)` guard: an instance without it raises an incident"
        ]
    );
    // a filter's guard carries to the macro over the filtered list
    for guarded in [
        "items.filter(i, has(i.grade)).exists(i, i.grade > 3)",
        "items.filter(i, has(i.grade)).all(j, j.grade > 3)",
        "items.filter(i, has(i.grade)).filter(j, j.grade > 1).exists(k, k.grade > 3)",
    ] {
        assert_eq!(
            summary(&optional_with(guarded)),
            Vec::<String>::new(),
            "{guarded}"
        );
    }
    assert_eq!(
        summary(&optional_with(
            "items.filter(i, size(items) > 1).exists(i, i.grade > 3)"
        )),
        [
            "flowc::expr::unguarded-optional 20:64 `i.grade` is optional but read without a `has(i.grade)` guard: an instance without it raises an incident"
        ]
    );
}

#[test]
fn an_unguarded_optional_read_in_an_assignee_expression_is_a_warning() {
    let flow = |e: &str| {
        check(&format!(
            "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: t\ncontext:\n  applicant:\n    type: object\n    fields:\n      deputy: {{ type: string, optional: true }}\nsteps:\n  - id: a\n    type: approval\n    assignees: {{ expr: '{e}' }}\n  - id: e\n    type: end\n    outcome: approved\n"
        ))
    };
    assert_eq!(
        summary(&flow("applicant.deputy")),
        [
            "flowc::expr::unguarded-optional 12:25 `applicant.deputy` is optional but read without a `has(applicant.deputy)` guard: an instance without it raises an incident"
        ]
    );
    assert_eq!(
        summary(&flow("has(applicant.deputy) ? applicant.deputy : \"boss\"")),
        Vec::<String>::new()
    );
}

/// Issue 11: a literal time zone flowc does not know, and a constant part that always
/// runs out of the evaluation budget (evaluated first, so never absorbed), are check
/// errors at their own position; an
/// always-true condition with a part that may run out of a limit says so; a regex
/// error says "invalid regular expression" once.
#[test]
fn conditions_that_always_fail_or_may_hit_a_limit_say_so() {
    let text = "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: t\ncontext:\n  at: timestamp\n  amount: double\n  nums: list<int>\n  dept: string\nsteps:\n  - id: a\n    type: approval\n    assignees: { role: x }\n    skipCondition: 'at.getHours(\"Asia/Shanghai\") >= 18'\n  - id: b\n    type: approval\n    assignees: { role: x }\n    skipCondition: '[0,1,2,3,4,5,6,7,8,9].all(a, [0,1,2,3,4,5,6,7,8,9].all(b, [0,1,2,3,4,5,6,7,8,9].all(c, [0,1,2,3,4,5,6,7,8,9].all(d, [0,1,2,3,4,5,6,7,8,9].all(e, a + b + c + d + e >= 0))))) && amount > 0.0'\n  - id: c\n    type: approval\n    assignees: { role: x }\n    skipCondition: 'nums.all(x, x >= 0) || true'\n  - id: d\n    type: approval\n    assignees: { role: x }\n    skipCondition: 'dept.matches(\"(fin\") || at.getHours(\"+08:00\") > 3 || [1, 2].all(x, x > 0)'\n";
    let d = check(text);
    insta::assert_snapshot!("issue_11_always_fails_and_limits", summary(&d).join("\n"));
    let (code, human) = check_human("issue11", text);
    assert_eq!(code, 1);
    insta::assert_snapshot!("issue_11_always_fails_and_limits_human", human);
}

/// Decision 110: an expression that always fails is reported at its maximal constant
/// part, with the run-time error and a help chosen by it; one whose failing part is on
/// the side of `&&` that a false left side skips is not, but that part is a failing
/// part (probe q11h bug 1). An expression nested past
/// `Limits::MAX_EXPR_DEPTH` has its own code, whose help names the limit.
#[test]
fn always_fails_names_its_constant_part_and_too_deep_names_the_limit() {
    let deep = format!("{}amount > 1.0{}", "(".repeat(65), ")".repeat(65));
    let text = format!(
        "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: t\ncontext:\n  amount: double\n  level: int\nsteps:\n  - id: a\n    type: approval\n    assignees: {{ role: x }}\n    skipCondition: '[1, 2, 3][5] == level'\n  - id: b\n    type: approval\n    assignees: {{ role: x }}\n    skipCondition: 'level > 5 && 1 / 0 > level'\n  - id: c\n    type: approval\n    assignees: {{ role: x }}\n    skipCondition: 'duration(\"7d\") + duration(\"1h\") > duration(string(level) + \"h\")'\n  - id: d\n    type: approval\n    assignees: {{ role: x }}\n    skipCondition: '{deep}'\n"
    );
    let d = check(&text);
    assert_eq!(
        summary(&d),
        [
            "flowc::expr::always-fails 11:21 expression always fails: index 5 out of range",
            "flowc::expr::failing-part 15:34 a part of the expression always fails: division by zero",
            "flowc::expr::always-fails 19:21 expression always fails: cannot convert \"7d\" to duration: unit `d` is not a duration unit (h, m, s, ms, us, ns); 1 day is 24h",
            "flowc::expr::too-deep 23:85 expression too deep: expression nests deeper than 64 levels",
        ]
    );
    let (code, human) = check_human("decision110", &text);
    assert_eq!(code, 1);
    insta::assert_snapshot!("decision_110_always_fails_and_too_deep_human", human);
}

/// Issue 11 (probe q11c nit 6): an assignee expression whose value can never be a
/// string or a list of strings is refused at the part that makes it so: a constant
/// part whose value does not fit (`[dyn(1)]`), a `dyn(…)` whose operand's type does
/// not (`dyn(level)`), an element of a list literal, both branches of `?:`. One that
/// may fit is not (`dyn(dept)`, `ok ? dept : dyn(level)`).
#[test]
fn assignee_expressions_that_never_give_user_ids_always_fail() {
    let step = |id: &str, e: &str| {
        format!("  - id: {id}\n    type: approval\n    assignees: {{ expr: '{e}' }}\n")
    };
    let text = format!(
        "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: t\ncontext:\n  level: int\n  ok: bool\n  dept: string\nsteps:\n{}{}{}{}{}{}{}{}  - id: n\n    type: notify\n    to: {{ expr: 'dyn([level])' }}\n",
        step("a", "[dyn(1)]"),
        step("b", "dyn(level)"),
        step("c", "[dept, dyn(level)]"),
        step("d", "ok ? dyn(1) : dyn(2.5)"),
        step("e", "dyn(dept)"),
        step("f", "ok ? dept : dyn(level)"),
        step("g", "[dept, dyn(dept), dyn(\"x\")]"),
        step("h", "dyn(ok ? [dept] : [dept])"),
    );
    let d = check(&text);
    insta::assert_snapshot!("issue_11_assignees_never_fit", summary(&d).join("\n"));
    let (code, human) = check_human("issue11asg", &text);
    assert_eq!(code, 1);
    insta::assert_snapshot!("issue_11_assignees_never_fit_human", human);
}

/// Issue 11 (one definition): `check` refuses a constant assignee part by the
/// runtime's own rule (`compile::user_ids`), one diagnostic per kind of problem: a
/// value that is neither a string nor a list, a list holding a non-string, a blank
/// name (the whole value, an element, both branches of a `?:`), a list of none
/// (through `dyn`, in a notification's `to`). A `?:` with one good branch is not
/// refused (the runtime refuses only the other).
#[test]
fn constant_assignees_the_runtime_always_refuses_always_fail() {
    let step = |id: &str, e: &str| {
        format!("  - id: {id}\n    type: approval\n    assignees: {{ expr: '{e}' }}\n")
    };
    let text = format!(
        "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: t\ncontext:\n  ok: bool\n  dept: string\nsteps:\n{}{}{}{}{}{}{}{}  - id: n\n    type: notify\n    to: {{ expr: '[]' }}\n",
        step("a", "dyn(1)"),
        step("b", "[dept, dyn(2)]"),
        step("c", "\"  \""),
        step("d", "[dept, \" \"]"),
        step("e", "ok ? \"\" : \" \""),
        step("f", "[]"),
        step("g", "dyn([])"),
        step("h", "ok ? dept : \"\""),
    );
    let d = check(&text);
    insta::assert_snapshot!("issue_11_assignees_always_refused", summary(&d).join("\n"));
    let (code, human) = check_human("issue11refused", &text);
    assert_eq!(code, 1);
    insta::assert_snapshot!("issue_11_assignees_always_refused_human", human);
}

/// Issue 11 (probe q11e nit 4): decision 110's walk knows the values of an integer
/// part that reads the context but is one constant whatever it holds (`i - i`,
/// `i % 1`, `-(…)`, `… + 0`, `b ? -1 : -2`), so a divisor or index built from such
/// parts always fails; a negative index fails for every list. An error that `&&`, `||`,
/// `?:` or a macro's body may absorb does not make the whole fail, but its part is a
/// failing part (probe q11h bug 1); a double divisor and a value one branch makes good
/// are not flagged.
#[test]
fn integer_parts_of_known_value_make_divisions_and_indexes_always_fail() {
    let step = |id: &str, e: &str| {
        format!(
            "  - id: {id}\n    type: approval\n    assignees: {{ role: x }}\n    skipCondition: '{e}'\n"
        )
    };
    let flagged = [
        "i / (i - i + 0) > 0",
        "i / (-(i - i)) > 0",
        "i / (i % 1) > 0",
        "i % ((b ? 2 : 3) * (i - i)) > 0",
        "nums[b ? -1 : -2] > 0",
        "nums[-1] > 0",
        "[1, 2][i - i + 5] > 0",
    ];
    let clean = [
        "b && i / (i - i) > 0",
        "i / (i - i) > 0 || b",
        "nums.exists(x, x / (i - i) > 0)",
        "b ? i / (i - i) > 0 : true",
        "d / (d - d) > 0.0",
        "i / (i % 2) > 0",
        "i / (i - i + 1) > 0",
        "10 / (b ? 0 : 1) > 0",
        "nums[b ? -1 : 0] > 0",
        "[1, 2][i - i + 1] > 0",
    ];
    let text = flow_of(
        "  i: int\n  d: double\n  b: bool\n  nums: list<int>",
        step,
        flagged.iter().chain(&clean),
    );
    assert_eq!(
        summary(&check(&text)),
        [
            "flowc::expr::always-fails 13:21 expression always fails: division by zero",
            "flowc::expr::always-fails 17:21 expression always fails: division by zero",
            "flowc::expr::always-fails 21:21 expression always fails: division by zero",
            "flowc::expr::always-fails 25:21 expression always fails: division by zero",
            "flowc::expr::always-fails 29:21 expression always fails: index -1 out of range",
            "flowc::expr::always-fails 33:21 expression always fails: index -1 out of range",
            "flowc::expr::always-fails 37:21 expression always fails: index 5 out of range",
            "flowc::expr::failing-part 41:26 a part of the expression always fails: division by zero",
            "flowc::expr::failing-part 45:21 a part of the expression always fails: division by zero",
            "flowc::expr::failing-part 49:36 a part of the expression always fails: division by zero",
            "flowc::expr::failing-part 53:25 a part of the expression always fails: division by zero",
        ]
    );
}

/// Issue 11 (probe q11e nits 4 and 5): a `map` whose transform never gives a user id
/// never gives user ids (a list of none, or of that value: the message says both
/// unless the range is a list literal of some), and a name with white space around it
/// or of invisible characters is refused by the runtime's one rule.
#[test]
fn a_map_of_no_user_id_and_padded_or_invisible_names_always_fail() {
    let step = |id: &str, e: &str| {
        format!("  - id: {id}\n    type: approval\n    assignees: {{ expr: '{e}' }}\n")
    };
    let text = format!(
        "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: t\ncontext:\n  s: string\n  tags: list<string>\nsteps:\n{}{}{}{}{}{}",
        step("a", "tags.map(t, \"\")"),
        step("b", "[s].map(t, \" \")"),
        step("c", "[s, \"li \"]"),
        step("d", "\"\\u200b\""),
        step("e", "tags.map(t, t + \"x\")"),
        step("f", "[s, \"li wei\"]"),
    );
    assert_eq!(
        summary(&check(&text)),
        [
            "flowc::expr::always-fails 10:37 expression always fails: it gives an empty list or a list holding an empty user name",
            "flowc::expr::always-fails 13:36 expression always fails: it gives an empty user name",
            "flowc::expr::always-fails 16:29 expression always fails: it gives a user name with white space or a character that shows nothing at an end",
            "flowc::expr::always-fails 19:25 expression always fails: it gives an empty user name",
        ]
    );
}

/// Issue 11 (probe h15a items 1): decision 128's walk keeps an integer part made of
/// `+`, `-`, a negation, a product by a number and `int`/`uint` of an integer as a
/// linear form of the parts it reads, so a divisor or an index whose parts cancel has
/// one known value (`i + 0 - i`, `int(i - i)`, `2 * i - i - i`, `i * i - i * i`), int
/// and uint alike. Parts that differ (`i - j`, `i * i - i * j`), a division (not
/// linear: `i / 2 * 2 - i`), doubles, a macro's own variable beside a context variable
/// of the same name, and a failure a macro's body may absorb are not flagged.
#[test]
fn integer_parts_whose_reads_cancel_have_a_known_value() {
    let step = |id: &str, e: &str| {
        format!(
            "  - id: {id}\n    type: approval\n    assignees: {{ role: x }}\n    skipCondition: '{e}'\n"
        )
    };
    let flagged = [
        "i / (i + 0 - i) > 0",
        "i / int(i - i) > 0",
        "i / (2 * i - i - i) > 0",
        "nums[i - 1 - i] > 0",
        "nums[i + 1 - 1 - i - 1] > 0",
        "[1, 2][i * 2 - i - i + 5] > 0",
        "i / (i * i - i * i) > 0",
        "i / (-(i - j) + i - j) > 0",
        "u / (u + 1u - u - 1u) > 0u",
        "i / int(u - u) > 0",
        "i / (int(d) - int(d)) > 0",
        "i / (nums[0] - nums[0]) > 0",
        "[1].exists(i, i / (i - i) > 0)",
    ];
    let clean = [
        "i / (i + 1 - i) > 0",
        "i / (i - j) > 0",
        "i / (i * i - i * j) > 0",
        "i / (i / 2 * 2 - i) > 0",
        "i / (i % 2 - i % 2 + 1) > 0",
        "i / (b ? i - i : 1) > 0",
        "d / (d - d) > 0.0",
        "i / (int(d) - i) > 0",
        "i / ([2].map(i, i)[0] - i) > 0",
        "i / (nums.map(i, i)[0] - i) > 0",
    ];
    // the whole may succeed (`nums` empty, `b` false), but the division fails whenever
    // it runs: a failing part (decision 110), found through the same linear forms
    let parts = [
        ("nums.exists(i, i / (i - i) > 0)", 36),
        ("b && i / (i + 0 - i) > 0", 26),
    ];
    let text = flow_of(
        "  i: int\n  j: int\n  u: uint\n  d: double\n  b: bool\n  nums: list<int>",
        step,
        flagged
            .iter()
            .chain(&clean)
            .chain(parts.iter().map(|(e, _)| e)),
    );
    let mut expected: Vec<String> = flagged
        .iter()
        .enumerate()
        .map(|(n, e)| {
            let error = if e.starts_with("nums[") {
                "index -1 out of range"
            } else if e.starts_with("[1, 2]") {
                "index 5 out of range"
            } else {
                "division by zero"
            };
            format!(
                "flowc::expr::always-fails {}:21 expression always fails: {error}",
                15 + 4 * n
            )
        })
        .collect();
    let first_part = flagged.len() + clean.len();
    expected.extend(parts.iter().enumerate().map(|(n, (_, col))| {
        format!(
            "flowc::expr::failing-part {}:{col} a part of the expression always fails: division by zero",
            15 + 4 * (first_part + n)
        )
    }));
    assert_eq!(summary(&check(&text)), expected);
}

/// Issue 11 (probe h15a items 2 and 3): a string `+` whose constant first part starts,
/// or whose constant last part ends, with a character that shows nothing always gives
/// a padded name (or a blank one when the rest is empty): the message says what is
/// true of both. A `map` over a range that may be empty says that it gives an empty
/// list or a list of such names. A variation selector at the start, an invisible
/// character inside, and a visible constant end are not flagged.
#[test]
fn a_concatenation_with_an_invisible_end_never_gives_a_user_id() {
    let step = |id: &str, e: &str| {
        format!("  - id: {id}\n    type: approval\n    assignees: {{ expr: '{e}' }}\n")
    };
    let flagged = [
        "[\" \" + s]",
        "tags.map(t, \" \" + t)",
        "s + \"\\u200b\"",
        "\"\\u2800\" + s + s",
        "[s].map(t, t + \"\\t\")",
        "tags.map(t, dyn(1))",
        "[s, \"\\u2800\"]",
    ];
    let clean = [
        "\"\\ufe0f\" + s",
        "s + \" \" + s",
        "\"li\" + s",
        "tags.map(t, t + \"x\")",
    ];
    let text = flow_of(
        "  s: string\n  tags: list<string>",
        step,
        flagged.iter().chain(&clean),
    );
    assert_eq!(
        summary(&check(&text)),
        [
            "flowc::expr::always-fails 10:26 expression always fails: it gives a user name that starts with white space (U+0020)",
            "flowc::expr::always-fails 13:37 expression always fails: it gives an empty list or a list holding a user name that starts with white space (U+0020)",
            "flowc::expr::always-fails 16:25 expression always fails: it gives a user name that ends with a character that shows nothing (U+200B)",
            "flowc::expr::always-fails 19:25 expression always fails: it gives a user name that starts with a character that shows nothing (U+2800)",
            "flowc::expr::always-fails 22:36 expression always fails: it gives a user name that ends with white space (U+0009)",
            "flowc::expr::always-fails 25:41 expression always fails: it gives an empty list or a list holding int",
            "flowc::expr::always-fails 28:29 expression always fails: it gives an empty user name",
        ]
    );
}

/// Issue 11 (probe q11c nit 4): an always-true or always-false condition says "unless
/// evaluating it runs out of a limit" exactly when a part of it is charged by the size
/// of what it reads (a regex, a string read or comparison, a lookup by a string key, a
/// comprehension, `+`, `in`); one over numbers only does not.
#[test]
fn a_constant_condition_names_the_limit_of_every_part_charged_by_size() {
    let head = "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: t\ncontext:\n  days: int\n  dept: string\n  m: map<string, int>\n  nums: list<int>\nsteps:\n  - id: a\n    type: approval\n    assignees: { role: x }\n";
    let caveat = " unless evaluating it runs out of a limit";
    for (cond, limit) in [
        ("dept.matches(\"b\") || true", true),
        ("size(dept) > 3 || true", true),
        ("dept.startsWith(\"a\") || true", true),
        ("m[dept] > 0 || true", true),
        ("dept in m || true", true),
        ("dept < \"x\" || true", true),
        ("dept == dept", true),
        ("nums.all(x, x > 0) || true", true),
        ("days > 3 || true", false),
        ("days + 1 > 3 && false", false),
        ("nums[0] > days || true", false),
        ("size(nums) > 0 || true", false),
        ("days >= days", false),
        // `in` on a list written of literals costs its node only, on both paths
        // (`ir::site_charge`); on a list read from the context, per element
        ("days in [1, 2] || true", false),
        ("days in nums || true", true),
        // `dyn(x)` is `x`, no call of its own (decision 123): `!` on it costs its unit
        ("!dyn(dept) || true", false),
    ] {
        let d = check(&format!("{head}    skipCondition: '{cond}'\n"));
        let value = !cond.contains("false");
        let suffix = if limit { caveat } else { "" };
        assert_eq!(
            summary(&d),
            [format!(
                "flowc::expr::constant-condition 13:20 condition is always {value}{suffix}"
            )],
            "{cond}"
        );
    }
}

/// Issue 11 (probe q11c nit 7): a divisor that reads the context but is the same
/// constant zero whichever branch a `?:` takes fails at every evaluation (the
/// condition fails, or the division does); one whose branches differ does not.
#[test]
fn a_zero_divisor_behind_a_conditional_always_fails() {
    let text = "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: t\ncontext:\n  i: int\n  b: bool\nsteps:\n  - id: a\n    type: approval\n    assignees: { role: x }\n    skipCondition: 'i / (b ? 0 : 0) > 0'\n  - id: c\n    type: approval\n    assignees: { role: x }\n    skipCondition: 'i % (b ? (i > 2 ? 0 : 1 - 1) : 0) > 0'\n  - id: d\n    type: approval\n    assignees: { role: x }\n    skipCondition: 'i / (b ? 0 : 1) > 0'\n";
    assert_eq!(
        summary(&check(text)),
        [
            "flowc::expr::always-fails 11:21 expression always fails: division by zero",
            "flowc::expr::always-fails 15:21 expression always fails: division by zero",
        ]
    );
}

/// Issue 11 (probe q11d nit 8, decision 126): an index whose every `?:` branch is out
/// of range or missing always fails, and so does a division by `x - x` or `0 * x` of
/// an integer `x` (zero whenever `x` does not fail); an index that one branch makes
/// good, `x - y` and a double divisor do not.
#[test]
fn an_index_out_of_range_on_every_branch_and_a_divisor_x_minus_x_always_fail() {
    let step = |id: &str, e: &str| {
        format!(
            "  - id: {id}\n    type: approval\n    assignees: {{ role: x }}\n    skipCondition: '{e}'\n"
        )
    };
    let text = format!(
        "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: t\ncontext:\n  i: int\n  j: int\n  u: uint\n  d: double\n  b: bool\nsteps:\n{}{}{}{}{}{}{}{}{}",
        step("a", "[1, 2][b ? 5 : 6] > 0"),
        step("c", "{\"a\": 1}[b ? \"x\" : (i > 2 ? \"y\" : \"z\")] > 0"),
        step("e", "i / (i - i) > 0"),
        step("f", "u % ((u + 1u) - (u + 1u)) > 0u"),
        step("g", "i / (0 * i) > 0"),
        step("h", "[1, 2][b ? 1 : 6] > 0"),
        step("k", "{\"a\": 1}[b ? \"a\" : \"y\"] > 0"),
        step("m", "i / (i - j) > 0"),
        step("n", "d / (d - d) > 0.0"),
    );
    let d = check(&text);
    insta::assert_snapshot!(
        "issue_11_index_and_self_difference_always_fail",
        summary(&d).join("\n")
    );
    let (code, human) = check_human("issue11idx", &text);
    assert_eq!(code, 1);
    insta::assert_snapshot!(
        "issue_11_index_and_self_difference_always_fail_human",
        human
    );
}

/// The `unguarded-optional` warning names the whole read when its base is indexed
/// (`M["Travel"]._`, not `_`, which may be another variable's name), and a `has()` of
/// the same read guards it (probe q11f nit 2).
#[test]
fn an_unguarded_read_through_an_index_is_named_whole() {
    const FLOW: &str = "apiVersion: flowc/v1
kind: ApprovalFlow
id: t
context:
  b: { type: bool, default: true }
  s: { type: string, default: x }
  _: { type: int, optional: true }
  M:
    type: map
    values: { type: object, fields: { _: { type: int, optional: true } } }
  L:
    type: list
    items: { type: object, fields: { _1: { type: int, optional: true } } }
steps:
  - id: a
    type: approval
    assignees: { role: x }
    skipCondition: 'COND'
";
    for (cond, path) in [
        (r#"M["Travel"]._ > 1 || !b"#, r#"M["Travel"]._"#),
        ("M[s]._ > 1 || !b", "M[s]._"),
        ("L[0]._1 > 1 || !b", "L[0]._1"),
        // probe q11g nit 1: a read that is not a place is named by its own text
        (
            r#"(b ? M : M)["Travel"]._ > 1 || !b"#,
            r#"(b ? M : M)["Travel"]._"#,
        ),
    ] {
        let d = check(&FLOW.replace("COND", cond));
        assert_eq!(
            summary(&d),
            [format!(
                "flowc::expr::unguarded-optional 18:21 `{path}` is optional but read without a `has({path})` guard: an instance without it raises an incident"
            )],
            "{cond}"
        );
        assert_eq!(
            d.iter()
                .map(|d| d.help().unwrap_or_default())
                .collect::<Vec<_>>(),
            [format!(
                "guard it: `has({path}) && {path} …` (or `!has({path}) || …`), or give `{path}` a `default`"
            )],
            "{cond}"
        );
    }
    for guarded in [
        r#"has(M["Travel"]._) && M["Travel"]._ > 1"#,
        "!has(M[s]._) || M[s]._ > 1",
        "has(L[0]._1) ? L[0]._1 > 1 : b",
    ] {
        assert_eq!(
            summary(&check(&FLOW.replace("COND", guarded))),
            Vec::<String>::new(),
            "{guarded}"
        );
    }
}

/// An empty block scalar (`user: |` then blank lines) is marked at its header, not
/// at the next step (probe q11f nit 6).
#[test]
fn an_empty_block_scalar_is_marked_at_its_header() {
    let d = check(
        "apiVersion: flowc/v1
kind: ApprovalFlow
id: t
steps:
  - id: inner
    type: approval
    assignees:
      user: |


  - id: review
    type: approval
    assignees: { user: a }
",
    );
    assert_eq!(
        summary(&d),
        ["flowc::schema::constraint 8:13 `user` is empty in step `inner`"]
    );
}

/// Probe q11h bug 1 (decisions 6 and 110): a part that fails whenever it is evaluated is
/// refused by `check` wherever it is written, with its own code, at the part, with the
/// run-time error and a help: a zone name under `||` and in a `?:` branch given as the
/// zone, a timestamp and a duration literal that do not parse under `||`, a division by
/// zero in a macro's body, an index no list has in a `?:` branch of an assignee
/// expression, and the same in `escalateTo`, a notification's `to` and a skip
/// condition. When the whole fails too, it is `always-fails` at its failure and
/// `failing-part` at the other.
#[test]
fn a_failing_part_is_refused_wherever_it_is_written() {
    let text = r#"apiVersion: flowc/v1
kind: ApprovalFlow
id: t
context:
  submitted: timestamp
  urgent: bool
  du: duration
  b: bool
  i: int
  tags: list<string>
steps:
  - id: route
    type: decision
    rules:
      - when: 'submitted.getHours("Asia/Shanghai") >= 18 || urgent'
        goto: done
      - when: 'submitted.getHours(urgent ? "Asia/Shanghai" : "+08:00") < 9'
        goto: done
      - when: 'timestamp("2024-13-01T00:00:00Z") < submitted || urgent'
        goto: done
      - when: 'duration("1d") < du || b'
        goto: done
      - when: 'tags.exists(t, t.size() / 0 > 1)'
        goto: done
      - when: 'b ? i / 0 > 1 : int("x") > i'
        goto: done
    default: sign
  - id: sign
    type: approval
    assignees: { expr: 'b ? "u1" : tags[-1]' }
    skipCondition: 'b && submitted.getMinutes(i > 1 ? "UTC" : (b ? "+01:00" : "CET")) > 1'
    timeout: 1h
    onTimeout: escalate
    escalateTo: { expr: 'urgent ? tags : [string(1 / 0)]' }
  - id: tell
    type: notify
    to: { expr: 'tags.map(t, t + string(uint(-1)))' }
    message: done
  - id: done
    type: end
    outcome: approved
"#;
    let d = check(text);
    let zone = "unknown time zone `Asia/Shanghai` (use UTC or an offset such as +08:00)";
    assert_eq!(
        summary(&d),
        [
            format!("flowc::expr::failing-part 15:35 a part of the expression always fails: {zone}"),
            format!("flowc::expr::failing-part 17:44 a part of the expression always fails: {zone}"),
            "flowc::expr::failing-part 19:16 a part of the expression always fails: cannot convert \"2024-13-01T00:00:00Z\" to timestamp: the month is not 01 to 12".to_owned(),
            "flowc::expr::failing-part 21:16 a part of the expression always fails: cannot convert \"1d\" to duration: unit `d` is not a duration unit (h, m, s, ms, us, ns); 1 day is 24h".to_owned(),
            "flowc::expr::failing-part 23:31 a part of the expression always fails: division by zero".to_owned(),
            "flowc::expr::always-fails 25:20 expression always fails: division by zero".to_owned(),
            "flowc::expr::failing-part 25:32 a part of the expression always fails: cannot convert \"x\" to int".to_owned(),
            "flowc::expr::failing-part 30:36 a part of the expression always fails: index -1 out of range".to_owned(),
            "flowc::expr::failing-part 31:79 a part of the expression always fails: unknown time zone `CET` (use UTC or an offset such as +08:00)".to_owned(),
            "flowc::expr::failing-part 34:42 a part of the expression always fails: division by zero".to_owned(),
            "flowc::expr::failing-part 37:34 a part of the expression always fails: uint out of range".to_owned(),
        ]
    );
    let zone_help = d
        .iter()
        .find(|x| x.code() == "flowc::expr::failing-part")
        .and_then(|x| x.help())
        .map(|h| h.to_string());
    assert_eq!(
        zone_help.as_deref(),
        Some(
            "flowc bundles no time-zone database, so it knows no zone names: write \"UTC\" or a fixed offset such as \"+08:00\" (Asia/Shanghai has no daylight saving time: it is always \"+08:00\")"
        )
    );
    let (code, human) = check_human("failing_part", text);
    assert_eq!(code, 1);
    insta::assert_snapshot!("q11h_failing_parts_human", human);
}

/// Probe q11h bug 1: a part whose failure depends on the context is no failing part:
/// a division guarded by its divisor, a read guarded by `has`, a zone read from the
/// context (or a `?:` branch of it), a divisor that may be zero, an index that one
/// branch makes good, a conversion of each element in a macro's body.
#[test]
fn parts_that_fail_only_on_some_contexts_are_not_failing_parts() {
    let text = r#"apiVersion: flowc/v1
kind: ApprovalFlow
id: t
context:
  submitted: timestamp
  zone: string
  b: bool
  i: int
  m: map<string, int>
  tags: list<string>
steps:
  - id: route
    type: decision
    rules:
      - when: 'i != 0 && 10 / i > 1'
        goto: done
      - when: 'has(m.k) && m.k > 0'
        goto: done
      - when: 'submitted.getHours(zone) > 8 || b'
        goto: done
      - when: 'submitted.getHours(b ? zone : "+08:00") > 8'
        goto: done
      - when: 'i / (b ? 0 : 1) > 0 || b'
        goto: done
      - when: '[1, 2][b ? 1 : 5] > 0'
        goto: done
      - when: 'tags.exists(t, int(t) > i)'
        goto: done
    default: done
  - id: done
    type: end
    outcome: approved
"#;
    assert_eq!(summary(&check(text)), Vec::<String>::new());
}

// ------------------------------------------------------- probe q11h: what was written

/// probe q11h's `repro/alias.yaml`.
const ALIASED: &str = "apiVersion: flowc/v1
kind: ApprovalFlow
id: alias
context:
  amount: double
  dept: string
steps:
  - id: route
    type: decision
    rules:
      - when: &big \"dept == 1\"
        goto: a
      - when: *big
        goto: a
      - {when: *big, goto: a}
    default: a
  - id: a
    type: end
    outcome: approved
";

/// A diagnostic about a value put in place by a YAML alias points at the alias (it
/// pointed one character past it), in block and in flow style.
#[test]
fn a_diagnostic_through_an_alias_points_at_the_alias() {
    let text = ALIASED.to_owned();
    let d = check(&text);
    let mismatches: Vec<String> = summary(&d)
        .into_iter()
        .filter(|s| s.starts_with("flowc::expr::type-mismatch"))
        .collect();
    assert_eq!(mismatches.len(), 3, "{mismatches:?}");
    assert!(mismatches[0].contains(" 11:"), "{mismatches:?}");
    assert!(mismatches[1].contains(" 13:15 "), "{mismatches:?}");
    assert!(mismatches[2].contains(" 15:16 "), "{mismatches:?}");
    let dir = temp_dir("alias-span");
    std::fs::write(dir.join("alias.yaml"), &text).unwrap();
    let (_, json, _) = run_in(
        &dir,
        &["check", "--isolated", "--format", "json", "alias.yaml"],
        None,
    );
    let _ = std::fs::remove_dir_all(&dir);
    let offset_of = |needle: &str| text.find(needle).expect("needle") + needle.find('*').unwrap();
    let block = offset_of("when: *big\n");
    let flow = offset_of("{when: *big,");
    for start in [block, flow] {
        let end = start + 4;
        assert!(
            json.contains(&format!("\"offset\":{start},\"endOffset\":{end},")),
            "no span {start}..{end} (`*big`): {json}"
        );
    }
}

/// A default YAML reads as a double JSON cannot hold (`.inf`, `.nan`, `1e400`) is
/// quoted as written, not as `null`; a field-name help says the letters are ASCII; a
/// CEL string broken by a line break is "unterminated".
#[test]
fn messages_quote_what_was_written() {
    for (default, shown) in [
        (".inf", ".inf"),
        ("-.Inf", "-.Inf"),
        (".nan", ".nan"),
        ("1e400", "1e400"),
    ] {
        let d = check(&format!(
            "{HEAD}  rate: {{ type: double, default: {default} }}\nsteps:\n  - id: a\n    type: end\n    outcome: approved\n"
        ));
        let s = summary(&d);
        assert!(
            s.iter().any(|l| l.starts_with("flowc::model::value-type")
                && l.contains(&format!("default `{shown}`"))),
            "{default}: {s:?}"
        );
    }
    let d = check(&format!(
        "{HEAD}  金额: double\nsteps:\n  - id: a\n    type: end\n    outcome: approved\n"
    ));
    let helps: Vec<String> = d
        .iter()
        .filter_map(|d| d.help().map(|h| h.to_string()))
        .collect();
    assert!(
        helps.iter().any(|h| h.contains("ASCII letters (A-Z, a-z)")),
        "{helps:?}"
    );
    let d = check(&format!(
        "{HEAD}steps:\n  - id: route\n    type: decision\n    rules:\n      - when: |\n          dept == \"fin\n          ance\"\n        goto: a\n    default: a\n  - id: a\n    type: end\n    outcome: approved\n"
    ));
    let s = summary(&d);
    assert_eq!(
        s,
        vec!["flowc::expr::syntax 13:19 syntax error in expression: unterminated string"],
        "{s:?}"
    );
}

/// Probe q11i nit 6: a reserved word names no field at any depth (an object's field
/// named `null` or `in` could never be read either: `applicant.null` is a syntax
/// error), each refused at its key.
#[test]
fn a_reserved_word_names_no_field_at_any_depth() {
    let text = "apiVersion: flowc/v1
kind: ApprovalFlow
id: t
context:
  applicant:
    type: object
    fields:
      null: string
      name: string
      address: { type: object, fields: { in: int } }
  items: { type: list, items: { type: object, fields: { var: int } } }
steps:
  - id: a
    type: approval
    assignees: { role: x }
";
    assert_eq!(
        summary(&check(text)),
        [
            "flowc::model::reserved-name 8:7 `null` is a reserved word in CEL: no field may be named so",
            "flowc::model::reserved-name 10:42 `in` is a reserved word in CEL: no field may be named so",
            "flowc::model::reserved-name 11:57 `var` is a reserved word in CEL: no field may be named so",
        ]
    );
}
