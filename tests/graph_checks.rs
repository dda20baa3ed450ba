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

fn codes_at(text: &str) -> Vec<(String, usize, usize)> {
    diags(text)
        .into_iter()
        .map(|(code, l, c, _, _)| (code, l, c))
        .collect()
}

#[test]
fn end_in_a_branch_is_an_error_under_either_join() {
    for join in ["all", "any"] {
        let text = format!(
            "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: g\nsteps:\n  - id: fork\n    type: parallel\n    join: {join}\n    branches:\n      - steps:\n          - id: a\n            type: approval\n            assignees: {{ role: r }}\n          - id: stop\n            type: end\n            outcome: rejected\n      - steps:\n          - id: b\n            type: approval\n            assignees: {{ role: r }}\n"
        );
        assert_eq!(
            diags(&text),
            vec![(
                "flowc::graph::end-in-branch".to_owned(),
                14,
                19,
                "`end` step `stop` is inside branch 1 of parallel step `fork`".to_owned(),
                Some("a branch cannot end the instance: its join waits for every branch (or, under `join: any`, cancels the others) and the steps after it must run; remove the `end` so that the branch reaches its join, and end after the join (for example a `decision` after the parallel step that routes to an `end`)".to_owned()),
            )],
            "join: {join}"
        );
    }
}

const ASSIGNEES: &str = "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: g\nsteps:\n";

#[test]
fn assignee_lists_are_judged() {
    let step = |body: &str| format!("{ASSIGNEES}  - id: s\n    type: approval\n{body}");
    // one user twice under single: only the repetition (one distinct user decides)
    assert_eq!(
        codes_at(&step("    assignees: { users: [li, li] }\n")),
        [("flowc::graph::duplicate-assignee".to_owned(), 7, 30)]
    );
    // single is the default: two users behave like `any`
    assert_eq!(
        codes_at(&step("    assignees: { users: [li, wang] }\n")),
        [("flowc::graph::single-with-several-users".to_owned(), 7, 30)]
    );
    // any, all, sequence, one user, a role: nothing to say
    for body in [
        "    mode: any\n    assignees: { users: [li, wang] }\n",
        "    mode: all\n    assignees: { users: [li, wang] }\n",
        "    mode: sequence\n    assignees: { users: [li, wang] }\n",
        "    assignees: { users: [li] }\n",
        "    assignees: { role: manager }\n",
    ] {
        assert_eq!(codes_at(&step(body)), [], "{body}");
    }
    // a blank name (only white space, Unicode's too) asks no one: an error, wherever
    // a name is written (probe q11d nit 4: the runtime refused only an expression's)
    assert_eq!(
        codes_at(&step(
            "    mode: all\n    assignees: { users: [li, \" \"] }\n"
        )),
        [("flowc::graph::blank-assignee".to_owned(), 8, 30)]
    );
    assert_eq!(
        codes_at(&step("    assignees: { user: \"\\u3000\" }\n")),
        [("flowc::graph::blank-assignee".to_owned(), 7, 24)]
    );
    assert_eq!(
        codes_at(&step("    assignees: { role: \"\\t\" }\n")),
        [("flowc::graph::blank-assignee".to_owned(), 7, 24)]
    );
    // characters that show nothing count as blank too: the zero-width space, the
    // word joiner, the byte-order mark, a zero-width joiner among spaces, the soft
    // hyphen (probe q11e nit 5: `user: "\u200b"` passed)
    for name in ["\\u200b", "\\u2060", "\\ufeff", " \\u200d ", "\\u00ad"] {
        assert_eq!(
            codes_at(&step(&format!("    assignees: {{ user: \"{name}\" }}\n"))),
            [("flowc::graph::blank-assignee".to_owned(), 7, 24)],
            "{name}"
        );
    }
    // a name with white space around it is not the user it shows: refused by the one
    // rule the runtime refuses an expression's value by (`users: [a, "a "]` passed)
    assert_eq!(
        codes_at(&step(
            "    mode: all\n    assignees: { users: [a, \"a \"] }\n"
        )),
        [("flowc::graph::padded-assignee".to_owned(), 8, 29)]
    );
    assert_eq!(
        codes_at(&step(
            "    mode: all\n    assignees: { users: [\" a\", a] }\n"
        )),
        [("flowc::graph::padded-assignee".to_owned(), 8, 26)]
    );
    assert_eq!(
        codes_at(&step("    assignees: { role: \"\\tfinance\" }\n")),
        [("flowc::graph::padded-assignee".to_owned(), 7, 24)]
    );
    // an invisible character at an end pads a name too (probe q11g nit 2: `li\u200b`
    // passed as a second `li`)
    for name in ["li\\u200b", "\\ufeffli", "li\\u2060"] {
        assert_eq!(
            codes_at(&step(&format!("    assignees: {{ user: \"{name}\" }}\n"))),
            [("flowc::graph::padded-assignee".to_owned(), 7, 24)],
            "{name}"
        );
    }
    // characters drawn as nothing that are neither white space nor default-ignorable
    // (probe h15a item 4): the Braille blank U+2800, the null notehead U+1D159, the
    // controls; the Hangul fillers U+115F, U+1160, U+3164 and U+FFA0 are
    // default-ignorable. Blank alone, padding at an end
    for name in [
        "\\u2800",
        "\\u2800\\u2800",
        "\\U0001D159",
        "\\x07",
        "\\x7f\\x85",
        "\\u115f",
        "\\u1160",
        "\\u3164",
        "\\uffa0",
    ] {
        assert_eq!(
            codes_at(&step(&format!("    assignees: {{ user: \"{name}\" }}\n"))),
            [("flowc::graph::blank-assignee".to_owned(), 7, 24)],
            "{name}"
        );
    }
    for name in [
        "li\\u2800",
        "\\u2800li",
        "li\\x07",
        "\\U0001D159li",
        "li\\u3164",
    ] {
        assert_eq!(
            codes_at(&step(&format!("    assignees: {{ user: \"{name}\" }}\n"))),
            [("flowc::graph::padded-assignee".to_owned(), 7, 24)],
            "{name}"
        );
    }
    // inner spaces, a visible name ending in a variation selector, an invisible
    // character inside a name: names as written
    for name in ["li wei", "\\u2764\\ufe0f", "a\\u200bb"] {
        assert_eq!(
            codes_at(&step(&format!("    assignees: {{ user: \"{name}\" }}\n"))),
            [],
            "{name}"
        );
    }
    // escalation lists and notify recipients too
    assert_eq!(
        codes_at(&step(
            "    assignees: { role: r }\n    timeout: 1d\n    onTimeout: escalate\n    escalateTo: { users: [a, b, a] }\n"
        )),
        [("flowc::graph::duplicate-assignee".to_owned(), 10, 33)]
    );
    assert_eq!(
        codes_at(&format!(
            "{ASSIGNEES}  - id: n\n    type: notify\n    to: {{ users: [x, x] }}\n"
        )),
        [("flowc::graph::duplicate-assignee".to_owned(), 7, 22)]
    );
}

/// A decision on `amount` (double) and `i` (int) with `rules` under `policy`.
fn decision(policy: &str, rules: &[&str]) -> String {
    let mut text = format!(
        "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: g\ncontext:\n  amount: double\n  i: int\nsteps:\n  - id: route\n    type: decision\n    hitPolicy: {policy}\n    rules:\n"
    );
    for r in rules {
        text.push_str(&format!("      - when: {r}\n        goto: a\n"));
    }
    text.push_str("    default: a\n  - id: a\n    type: end\n    outcome: approved\n");
    text
}

/// Issue 11 (7, 12): comparisons with numbers beyond 2^53 are decided exactly, never
/// through a lossy cast or `x + 1.0` (which is `x` again there): no false "always"
/// warning at 2^53, 2^63, ±1e19 or the largest double, and the true ones still found.
#[test]
fn decision_analysis_is_exact_for_large_numbers() {
    let constant = |rule: &str| -> Vec<String> {
        diags(&decision("first", &[rule]))
            .into_iter()
            .map(|(code, _, _, message, _)| format!("{code}: {message}"))
            .collect()
    };
    let always = |v: bool| {
        vec![format!(
            "flowc::expr::constant-condition: condition is always {v}"
        )]
    };
    for clean in [
        "amount < 1e19",
        "amount == 1e19",
        "amount > -1e19",
        "amount != -1e19",
        "amount < 9007199254740992.0",
        "amount > 9223372036854775808.0",
        "amount < 1.7976931348623157e308",
        "i < 9223372036854775807",
        "i > -9223372036854775808",
        "i == 9007199254740993",
        // lossy (decision 113): true at 0, false at i64::MAX, which rounds to 2^63
        "i < 9223372036854775807.0",
    ] {
        assert_eq!(constant(clean), Vec::<String>::new(), "{clean}");
    }
    for (rule, value) in [
        ("amount < 1e19 && amount > 1e19", false),
        ("amount <= 1e19 || amount > 1e19", true),
        (
            "amount < 9007199254740993 || amount >= 9007199254740993",
            true,
        ),
        ("i <= 9223372036854775807", true),
        ("i < 1e19", true),
        ("i > 9223372036854775807.0", false),
        ("i >= -1e19", true),
        ("i == 9007199254740993 && i == 9007199254740992", false),
    ] {
        assert_eq!(constant(rule), always(value), "{rule}");
    }
}

/// Issue 11 (12): under `unique`, a rule that overlaps another is reported as
/// overlapping, never also as "always false".
#[test]
fn an_overlapping_rule_is_not_also_always_false() {
    let found: Vec<(String, usize)> =
        diags(&decision("unique", &["amount < 1e19", "amount > 5.0"]))
            .into_iter()
            .map(|(code, line, _, _, _)| (code, line))
            .collect();
    assert_eq!(found, [("flowc::graph::overlapping-rules".to_owned(), 14)]);
}

/// Issue 11 (probe q11b item 4): at the integer bounds, `check`'s verdict and both
/// evaluators agree with CEL's answer (the conformance suite's lossy comparison,
/// decision 113). Each rule is run on both paths at
/// every boundary context; a rule `check` calls constant has that value at each of them.
#[test]
fn check_and_both_evaluators_agree_at_the_integer_bounds() {
    use flowc::compile::{Evaluator, compile};
    use flowc::runtime::Instance;
    use flowc::span::SourceFile;
    use std::sync::Arc;
    let flow = |rule: &str| {
        format!(
            "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: g\ncontext:\n  i: int\n  u: uint\n  d: double\nsteps:\n  - id: route\n    type: decision\n    rules:\n      - when: \"{rule}\"\n        goto: yes\n    default: no\n  - id: yes\n    type: end\n    outcome: approved\n  - id: no\n    type: end\n    outcome: rejected\n"
        )
    };
    let run = |text: &str, ctx: &str, evaluator: Evaluator| -> bool {
        let options = Options {
            evaluator,
            ..Options::default()
        };
        let f = compile(&SourceFile::new("g.yaml", text), &options).unwrap();
        let (inst, _) = Instance::start(
            Arc::new(f),
            serde_json::from_str::<serde_json::Value>(ctx).unwrap(),
            0,
        )
        .unwrap();
        match inst.status().label() {
            "approved" => true,
            "rejected" => false,
            other => panic!("{other}"),
        }
    };
    let imax =
        r#"{"i": 9223372036854775807, "u": 18446744073709551615, "d": 9.223372036854775807e18}"#;
    let big = r#"{"i": 9007199254740993, "u": 9007199254740993, "d": 9007199254740992.0}"#;
    let min = r#"{"i": -9223372036854775808, "u": 0, "d": -9.223372036854775808e18}"#;
    let contexts = [imax, big, min, r#"{"i": 0, "u": 0, "d": 0.0}"#];
    // (rule, context, CEL's answer there: the integer compared as the nearest double)
    let cases = [
        ("i < 9.223372036854775807e18", imax, false),
        ("9.223372036854775807e18 > i", imax, false),
        ("i >= 9.223372036854775807e18", imax, true),
        ("dyn(i) < dyn(9.223372036854775807e18)", imax, false),
        ("i < d", imax, false),
        ("dyn(i) == dyn(d)", imax, true),
        ("dyn(i) in [9.223372036854775807e18]", imax, true),
        ("u < 1.8446744073709552e19", imax, false),
        ("u < d * 2.0", imax, false),
        ("dyn(u) == dyn(d * 2.0)", imax, true),
        ("i > d", big, false),
        ("u > d", big, false),
        ("dyn(i) == dyn(d)", big, true),
        ("i > 9007199254740992.0", big, false),
        ("dyn(i) == dyn(-9.223372036854775808e18)", min, true),
        ("dyn(i) == dyn(d)", min, true),
        ("i < -9.223372036854775808e18", min, false),
    ];
    for (rule, ctx, want) in cases {
        let text = flow(rule);
        for evaluator in [Evaluator::Direct, Evaluator::Sandbox] {
            assert_eq!(
                run(&text, ctx, evaluator),
                want,
                "{rule} at {ctx} ({evaluator:?})"
            );
        }
        let constant = diags(&text)
            .into_iter()
            .find_map(|(code, _, _, message, _)| {
                (code == "flowc::expr::constant-condition").then(|| message.ends_with("true"))
            });
        if let Some(v) = constant {
            for ctx in contexts {
                for evaluator in [Evaluator::Direct, Evaluator::Sandbox] {
                    assert_eq!(
                        run(&text, ctx, evaluator),
                        v,
                        "check calls {rule} always {v}; at {ctx}"
                    );
                }
            }
        }
    }
    // at the bound: what is constant under CEL's comparison is said to be, and only that
    let constant = |rule: &str| {
        diags(&flow(rule)).iter().any(|(code, _, _, m, _)| {
            code == "flowc::expr::constant-condition" && m.ends_with("true")
        })
    };
    for rule in [
        "i <= 9.223372036854775807e18",
        "u <= 1.8446744073709552e19",
        "i >= -9.223372036854775808e18",
    ] {
        assert!(constant(rule), "{rule}");
    }
    for rule in ["i < 9.223372036854775807e18", "u < 1.8446744073709552e19"] {
        assert!(!constant(rule), "{rule}");
    }
}

/// A `unique` decision of `rules` over `days`, `kind` (an enum), `k2`, `level` and `d`;
/// rule `n` is on line `15 + 2 (n - 1)`, its condition at column 15.
fn unique_over_fields(rules: &[&str]) -> String {
    let mut text = String::from(
        "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: g\ncontext:\n  days: int\n  kind: { type: string, enum: [a, b, c, 病假] }\n  k2: string\n  level: int\n  d: double\nsteps:\n  - id: route\n    type: decision\n    hitPolicy: unique\n    rules:\n",
    );
    for r in rules {
        text.push_str(&format!("      - when: {r}\n        goto: a\n"));
    }
    text.push_str("    default: a\n  - id: a\n    type: end\n    outcome: approved\n");
    text
}

/// Probe q11h (bug 2): two rules that can hold together are reported whatever fields
/// they read, at the later rule, naming both; their disjoint counterparts stay clean.
#[test]
fn overlaps_are_found_across_fields() {
    let overlap = |earlier: usize, later: usize| {
        vec![(
            "flowc::graph::overlapping-rules".to_owned(),
            15 + 2 * (later - 1),
            15,
            format!("rules {earlier} and {later} of decision `route` overlap"),
        )]
    };
    let found = |rules: &[&str]| -> Vec<(String, usize, usize, String)> {
        diags(&unique_over_fields(rules))
            .into_iter()
            .map(|(code, l, c, m, _)| (code, l, c, m))
            .collect()
    };
    for pair in [
        ["days >= 3 && days <= 10", r#"days == 3 && kind == "病假""#],
        ["days >= 3", r#"days <= 3 && kind == "b""#],
        ["days == 3", r#"days <= 3 && kind == "b""#],
        ["days >= 3 && level > 0", "days <= 3 && level == 2"],
        ["days > 3 || level > 2", "days < 1"],
        ["d > 1.0", "d >= 1.0 && days == 1"],
        ["days >= 3 && days <= 10", r#"days <= 3 && k2 != "x""#],
        ["days >= 3 && days <= 10", r#"days <= 3 && k2 == "b""#],
        ["days >= 3 && days <= 10", r#"days <= 3 && kind != "c""#],
        ["days >= 3 && days <= 10", r#"kind == "b" && days <= 3"#],
        // one field each: independent, so both hold together
        ["days > 3", "level > 2"],
        [r#"kind == "a""#, "d < 0.5"],
        // one field: still found
        ["days >= 3", "days <= 3"],
        [r#"kind == "a""#, r#"kind != "b""#],
        [r#"kind in ["a", "b"]"#, r#"kind == "b""#],
    ] {
        assert_eq!(found(&pair), overlap(1, 2), "{pair:?}");
    }
    for pair in [
        [r#"days >= 3 && kind == "a""#, r#"days <= 3 && kind == "b""#],
        ["days > 3 && days <= 10", r#"days == 3 && kind == "病假""#],
        ["days > 3", r#"days <= 3 && kind == "b""#],
        ["days != 3", r#"days == 3 && kind == "b""#],
        ["days >= 3 && level > 2", "days <= 3 && level <= 2"],
        ["days > 3 || level > 2", "days < 1 && level <= 2"],
        ["d > 1.0", "d < 1.0 && days == 1"],
        ["d > 1.0", "d <= 1.0 && days == 1"],
        ["days >= 3 && days <= 10", r#"days < 3 && k2 != "x""#],
        ["days > 10 && level < 5", "days > 3 && days <= 10"],
        [r#"k2 == "x" && days > 1"#, r#"k2 != "x" && days > 1"#],
        [
            r#"kind == "a" || kind == "b""#,
            r#"kind == "c" && level > 1"#,
        ],
        // `size(k2)` and `k2` are one value: never taken as independent
        ["size(k2) > 5", r#"k2 == "ab""#],
        ["days > 3", "days <= 3"],
    ] {
        assert_eq!(found(&pair), Vec::new(), "{pair:?}");
    }
    // the probe's flow: rule 3 overlaps rule 1 only
    assert_eq!(
        found(&[
            "days >= 3 && days <= 10",
            "days < 3",
            r#"days == 3 && kind == "病假""#,
            "days > 10",
        ]),
        overlap(1, 3)
    );
}

/// A `unique` decision of `n` rules `days == i` and, last, `extra`.
fn many_rules(n: usize, rule: impl Fn(usize) -> String, extra: &str) -> String {
    let mut text = String::from(
        "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: g\ncontext:\n  days: int\n  center: string\n  kind: { type: string, enum: [a, b, c] }\nsteps:\n  - id: route\n    type: decision\n    hitPolicy: unique\n    rules:\n",
    );
    for i in 0..n {
        text.push_str(&format!("      - when: '{}'\n        goto: a\n", rule(i)));
    }
    text.push_str(&format!("      - when: '{extra}'\n        goto: a\n"));
    text.push_str("    default: a\n  - id: a\n    type: end\n    outcome: approved\n");
    text
}

fn codes_and_messages(text: &str) -> Vec<(String, String)> {
    diags(text)
        .into_iter()
        .map(|(code, _, _, m, _)| (code, m))
        .collect()
}

/// Probe q11h (bug 3): a 6,000-rule routing table is analysed in full within
/// `Limits::MAX_DECISION_WORK` (no `decision-not-analysed`), and its one overlap, at
/// the end, is found.
#[test]
fn a_large_unique_table_is_analysed_within_the_work_budget() {
    let overlap = |first: usize, later: usize| {
        vec![(
            "flowc::graph::overlapping-rules".to_owned(),
            format!("rules {first} and {later} of decision `route` overlap"),
        )]
    };
    assert_eq!(
        codes_and_messages(&many_rules(6000, |i| format!("days == {i}"), "days == 5")),
        overlap(6, 6001)
    );
    assert_eq!(
        codes_and_messages(&many_rules(
            6000,
            |i| format!(r#"center == "CC{i:05}""#),
            r#"center in ["XX", "CC04999"]"#
        )),
        overlap(5000, 6001)
    );
    assert_eq!(
        codes_and_messages(&many_rules(
            6000,
            |i| format!("days >= {} && days < {}", 2 * i, 2 * i + 2),
            "days == 9000"
        )),
        overlap(4501, 6001)
    );
    assert_eq!(
        codes_and_messages(&many_rules(6000, |i| format!("days == {i}"), "days < 0")),
        Vec::new()
    );
}

/// A decision the budget cannot cover is reported as not analysed, never passed clean:
/// 6,000 rules on two fields each are more pairs than `Limits::MAX_DECISION_WORK` buys.
#[test]
fn a_decision_beyond_the_work_budget_says_so() {
    let found = codes_and_messages(&many_rules(
        6000,
        |i| format!(r#"days == {i} && kind == "a""#),
        r#"days == 5 && kind == "a""#,
    ));
    assert_eq!(found.len(), 1, "{found:?}");
    let (code, message) = &found[0];
    assert_eq!(code, "flowc::graph::decision-not-analysed");
    assert!(
        message.ends_with(
            "were not analysed together: the decision's analysis ran out of its work budget here, and stopped"
        ),
        "{message}"
    );
}
