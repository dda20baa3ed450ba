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
        ("dept == dept", "true"),
        ("dept != dept", "false"),
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
        mermaid.contains("s0[\"经理审批\\na · approval (single)\\nskip if amount < 1000.0\"]"),
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
