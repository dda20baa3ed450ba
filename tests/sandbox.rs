//! Hostile inputs stop at a sandbox bound with a clear error, never a hang or crash.
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

mod support {
    pub mod paths;
}

use flowc::compile::Options;
use flowc::expr::check::Checker;
use flowc::expr::{OpError, Value, VarTable, codegen, parse::parse};
use flowc::limits::SandboxLimits;
use flowc::sandbox::{Bindings, RunError, Sandbox};

use support::paths;

fn run(sb: &Sandbox, src: &str) -> Result<flowc::expr::Value, RunError> {
    let vars = VarTable::default();
    let env = vars.env();
    let mut e = parse(src).expect("parses");
    let mut c = Checker::new(&env);
    c.check(&mut e);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    let g = codegen::generate(&e, &vars, &flowc::expr::Patterns::new());
    let p = sb.compile(&g.source, &g.constants).expect("compiles");
    sb.eval(&p, &mut Bindings::new())
}

fn limit_hit(r: Result<flowc::expr::Value, RunError>) -> String {
    match r {
        Err(RunError::Limit(what)) => what,
        other => panic!("expected a sandbox limit, got {other:?}"),
    }
}

#[test]
fn huge_lists_via_map_stop_at_the_array_bound() {
    let sb = Sandbox::new(SandboxLimits {
        max_array_size: 5,
        ..SandboxLimits::default()
    });
    // the bound is on each list built, checked as each element is added (decision 105)
    let what = limit_hit(run(&sb, "[1,2,3,4,5,6,7,8,9,10].map(a, a * 2).size() > 0"));
    assert_eq!(what, "a list longer than the limit of 5 elements");
    let what = limit_hit(run(&sb, "([1,2,3] + [4,5,6]).size() > 0"));
    assert_eq!(what, "a list longer than the limit of 5 elements");
    // lists of lists within the bound each: what they hold in all is bounded by the
    // budget (a step per element), not by the list bound
    let nested = run(
        &sb,
        "[1,2,3,4].map(a, [1,2,3,4].map(b, [1,2,3,4].map(c, c))).size() == 4",
    );
    assert!(
        matches!(nested, Ok(flowc::expr::Value::Bool(true))),
        "{nested:?}"
    );
    let what = limit_hit(run(
        &sb,
        "[1,2,3,4].map(a, [1,2,3,4].map(b, [1,2,3,4].map(c, [1,2,3,4].map(d, [1,2,3,4].map(e, [1,2,3,4].map(f, [1,2,3,4].map(g, [1,2,3,4].map(h, h)))))))).size() > 0",
    ));
    assert_eq!(what, "the evaluation budget of 100,000 operations ran out");
}

#[test]
fn string_blow_up_stops_at_the_string_bound() {
    let sb = Sandbox::new(SandboxLimits {
        max_string_size: 1024,
        ..SandboxLimits::default()
    });
    let src = format!(
        "size({}) > 0",
        (0..8).fold("'abcdefgh'".to_owned(), |acc, _| format!("({acc} + {acc})"))
    );
    let what = limit_hit(run(&sb, &src));
    assert_eq!(what, "a string longer than the limit of 1,024 bytes");
}

#[test]
fn nested_comprehensions_stop_at_the_operation_bound() {
    let sb = Sandbox::new(SandboxLimits {
        max_operations: 10_000,
        ..SandboxLimits::default()
    });
    let l = format!(
        "[{}]",
        (0..50).map(|i| i.to_string()).collect::<Vec<_>>().join(",")
    );
    let src = format!("{l}.all(a, {l}.all(b, {l}.all(c, a + b + c >= 0)))");
    let what = limit_hit(run(&sb, &src));
    assert_eq!(what, "the evaluation budget of 10,000 operations ran out");
}

#[test]
fn deep_nesting_is_rejected_by_the_parser() {
    let deep = format!("{}1{}", "(".repeat(8_000), ")".repeat(8_000));
    let e = parse(&deep).expect_err("too deep");
    assert!(e.message.contains("nests deeper"), "{}", e.message);
    let prefix = format!("{}true", "!".repeat(10_000));
    let e = parse(&prefix).expect_err("too deep");
    assert!(e.message.contains("nests deeper"), "{}", e.message);
}

#[test]
fn limits_are_configurable_and_reported() {
    let l = SandboxLimits {
        max_operations: 7,
        ..SandboxLimits::default()
    };
    let sb = Sandbox::new(l.clone());
    assert_eq!(sb.limits(), &l);
    assert_eq!(
        limit_hit(run(&sb, "[1,2,3,4,5,6,7,8,9].all(x, x > 0)")),
        "the evaluation budget of 7 operations ran out"
    );
}

/// The string limit (`max_string_size`, 65,536 bytes) bounds the strings a condition
/// builds, not the context's (decision 111): a 1 MB context string is read, compared
/// and matched alike on both paths, and only a string built from it is refused.
#[test]
fn a_context_string_over_the_string_limit_is_read_alike_on_both_paths() {
    // a budget for two matches of a 1 MiB subject (a unit per byte, `regex_cost`)
    let flow = paths::flow("note: string\nother: string", &paths::budget(4 * (1 << 20)));
    let max = flow.sandbox().limits().max_string_size;
    let mb = 1 << 20;
    assert!(mb > max);
    let note = format!("{}b", "a".repeat(mb - 1));
    let other = format!("{}c", "a".repeat(mb - 1));
    let mut b = paths::bind(
        &flow,
        [
            ("note", Value::string(&note)),
            ("other", Value::string(&other)),
        ],
    );
    paths::both_paths_each(
        &flow,
        &mut b,
        [
            ("size(note) == 1048576", Ok(true)),
            ("note == note && note != other && note < other", Ok(true)),
            (
                r#"note.startsWith("aaa") && note.endsWith("ab") && !note.contains("c")"#,
                Ok(true),
            ),
            (
                r#"note.matches("^a+b$") && !other.matches("^a+b$")"#,
                Ok(true),
            ),
            (r#"note in [other, note] && !(note in ["x"])"#, Ok(true)),
            (
                r#"size(note + "x") > 0"#,
                Err(RunError::string_too_long(max)),
            ),
        ],
    );
}

/// `duration()` / `timestamp()` of a context string that is not one: the same typed
/// error on both paths, carrying the one parser's reason (issue 11).
#[test]
fn a_time_conversion_fails_with_the_parsers_reason_on_both_paths() {
    use flowc::expr::{DurationProblem, TimestampProblem};

    let flow = paths::flow("text: string", &Options::default());
    let cases = [
        (
            "7d",
            "duration(text) > duration('1h')",
            OpError::NotADuration {
                text: "7d".to_owned(),
                problem: DurationProblem::Unit("d".to_owned()),
            },
            "cannot convert \"7d\" to duration: unit `d` is not a duration unit (h, m, s, ms, us, \
             ns); 1 day is 24h",
        ),
        (
            "30",
            "duration(text) > duration('1h')",
            OpError::NotADuration {
                text: "30".to_owned(),
                problem: DurationProblem::NoUnit("30".to_owned()),
            },
            "cannot convert \"30\" to duration: `30` has no unit (h, m, s, ms, us, ns)",
        ),
        (
            "2024-13-01T00:00:00Z",
            "timestamp(text) > timestamp(0)",
            OpError::NotATimestamp {
                text: "2024-13-01T00:00:00Z".to_owned(),
                problem: TimestampProblem::Month,
            },
            "cannot convert \"2024-13-01T00:00:00Z\" to timestamp: the month is not 01 to 12",
        ),
    ];
    for (text, cond, want, words) in cases {
        let mut b = paths::bind(&flow, [("text", Value::string(text))]);
        paths::both_paths(&flow, &mut b, cond, &Err(RunError::Op(want)));
        paths::both_paths_fail_with(&flow, &mut b, cond, words);
    }
}

/// A map literal that cannot be built (a key given twice, a key of a type maps cannot
/// have) is CEL's ordinary error on both paths, absorbed by `&&`/`||` (also in a
/// macro's body) wherever the map is used (decision 125): the sandbox raised it past
/// `||` when the map was used whole (`size`, `==`, `in`, nested in a literal).
#[test]
fn a_map_literal_that_cannot_be_built_is_an_ordinary_error_on_both_paths() {
    let flow = paths::flow(
        "s: string\ns2: string\nb: bool\ni: int\nu: uint\nd: double\nnums: list<int>",
        &Options::default(),
    );
    let mut b = paths::bind(
        &flow,
        [
            ("s", Value::string("a")),
            ("s2", Value::string("a")),
            ("b", Value::Bool(true)),
            ("i", Value::Int(3)),
            ("u", Value::Uint(3)),
            ("d", Value::Double(1.5)),
            ("nums", paths::list([Value::Int(1)])),
        ],
    );
    let dup = |k: &str| {
        Err(RunError::Op(OpError::InvalidArgument(format!(
            "duplicate map key {k}"
        ))))
    };
    paths::both_paths_each(
        &flow,
        &mut b,
        [
            (r#"{"a": 1, "a": 2}.size() == 2 || true"#, Ok(true)),
            // (`{"a": 1, "a": 2}.size() == 2 || b` is refused by check: a constant part
            // that always fails is a failing part, decision 110)
            ("{s: 1, s2: 2}.size() == 2 || b", Ok(true)),
            ("size({s: 1, s2: 2}) == 2 || b", Ok(true)),
            ("{s: 1, s2: 2}.size() == 2 && false", Ok(false)),
            ("!({s: 1, s2: 2}.size() == 2) || b", Ok(true)),
            ("{s: 1, s2: 2} == {} || b", Ok(true)),
            ("s in {s: 1, s2: 2} || b", Ok(true)),
            ("[{s: 1, s2: 2}].size() == 1 || b", Ok(true)),
            (r#"{"x": {s: 1, s2: 2}}.size() == 1 || b"#, Ok(true)),
            ("[1].exists(x, {s: 1, s2: 2}.size() == 2 || b)", Ok(true)),
            (r#"{"a": 1, s: 2}.size() == 2 || b"#, Ok(true)),
            ("{dyn(i): 1, dyn(u): 2}.size() == 2 || b", Ok(true)),
            ("{i: 1, 3: 2}.size() == 2 || b", Ok(true)),
            ("{dyn(b): 1, true: 2}.size() == 2 || b", Ok(true)),
            ("{dyn(d): 1}.size() == 1 || b", Ok(true)),
            ("{dyn(nums): 1}.size() == 1 || b", Ok(true)),
            // unabsorbed, the error is the map's
            ("{s: 1, s2: 2}.size() == 2", dup("\"a\"")),
            (
                "{dyn(d): 1}.size() == 1",
                Err(RunError::Op(OpError::InvalidArgument(
                    "unsupported map key type double".to_owned(),
                ))),
            ),
            // both sides fail: the left one's error, on both paths
            (
                r#"1/(i-3) == 1 && {"a": 2, s: 2}.size() > 0"#,
                Err(RunError::Op(OpError::DivisionByZero)),
            ),
            (r#"{"a": 2, s: 2}.size() > 0 && 1/(i-3) == 1"#, dup("\"a\"")),
        ],
    );
}

/// The probe's repro (decision 125): a top-level optional map read by a field in a
/// 20,000-step loop. The sandbox copied the 100,000-key map at every step (minutes);
/// it is read in place, and both paths give the same value.
#[test]
fn an_optional_map_read_in_a_loop_completes_on_both_paths() {
    // the repro's loop fits the default budget; the longer bodies get ten times it
    let flow = paths::flow(
        r#"nums: list<int>
limits: { type: "map<string, int>", optional: true }
o: { type: object, optional: true, fields: { name: string, m: "map<string, int>" } }"#,
        &paths::budget(1_000_000),
    );
    let codes = || {
        Value::map(
            (0..100_000)
                .map(|i| (Value::string(&format!("k{i}")), Value::Int(i)))
                .collect(),
        )
    };
    let mut b = paths::bind(
        &flow,
        [
            ("nums", paths::list((0..20_000).map(Value::Int))),
            ("limits", codes()),
            (
                "o",
                paths::map([("name", Value::string("n")), ("m", codes())]),
            ),
        ],
    );
    paths::both_paths_each(
        &flow,
        &mut b,
        [
            ("has(limits) && nums.all(x, limits.k5 == 5)", Ok(true)),
            (
                "nums.all(x, has(limits.k5) && limits[\"k5\"] == 5)",
                Ok(true),
            ),
            (r#"nums.all(x, o.name == "n" && has(o.name))"#, Ok(true)),
        ],
    );
    // absent: CEL's "no value" under the field's name, on both paths
    let mut absent = paths::bind(&flow, [("nums", paths::list([Value::Int(1)]))]);
    let unbound = |name: &str| Err(RunError::Unbound(name.to_owned()));
    paths::both_paths_each(
        &flow,
        &mut absent,
        [
            ("nums.all(x, limits.k5 == 5)", unbound("limits")),
            (r#"nums.all(x, limits["k5"] == 5)"#, unbound("limits")),
            ("nums.all(x, has(o.name))", unbound("o")),
            (r#"nums.all(x, "k1" in o.m)"#, unbound("o")),
        ],
    );
}

/// A run-time error quotes at most 64 characters of a value, cut at a character
/// boundary, then its size (`value::quote`, nit 5 of q11d): a 1 MB context string
/// made a 1–2 MB message. The same text on both paths.
#[test]
fn an_error_quotes_a_bounded_prefix_of_a_value_on_both_paths() {
    let flow = paths::flow(
        "s: string\nm: \"map<string, int>\"\nt: timestamp",
        &Options::default(),
    );
    let ones = "1".repeat(1 << 20);
    let han = "中".repeat(100_000);
    let short = "1".repeat(64);
    let cut = |c: &str, n: usize| format!("{}… ({n} bytes)", c.repeat(64));
    let mut b = paths::bind(
        &flow,
        [
            ("m", Value::map(Vec::new())),
            (
                "t",
                Value::Timestamp(flowc::expr::parse_timestamp("2024-01-01T00:00:00Z").unwrap()),
            ),
        ],
    );
    for (text, cond, words) in [
        (
            &ones,
            "int(s) > 0",
            format!("cannot convert \"{}\" to int", cut("1", 1 << 20)),
        ),
        (
            &han,
            "int(s) > 0",
            format!("cannot convert \"{}\" to int", cut("中", 300_000)),
        ),
        (
            &ones,
            "m[s] > 0",
            format!("no such key `{}`", cut("1", 1 << 20)),
        ),
        (
            &han,
            "m[s] > 0",
            format!("no such key `{}`", cut("中", 300_000)),
        ),
        (
            &ones,
            r#"duration(s) > duration("1h")"#,
            format!(
                "cannot convert \"{0}\" to duration: `{0}` has no unit (h, m, s, ms, us, ns)",
                cut("1", 1 << 20)
            ),
        ),
        (
            &han,
            "{s: 1, s: 2}.size() > 0",
            format!("duplicate map key \"{}\"", cut("中", 300_000)),
        ),
        (
            &han,
            "t.getHours(s) > 0",
            format!(
                "unknown time zone `{}` (use UTC or an offset such as +08:00)",
                cut("中", 300_000)
            ),
        ),
        // 64 characters are quoted whole
        (&short, "m[s] > 0", format!("no such key `{short}`")),
    ] {
        paths::set(&flow, &mut b, "s", Value::string(text));
        paths::both_paths_fail_with(&flow, &mut b, cond, &words);
    }
}

/// Probe q11e, bugs C and D: a missing key keeps its case in the sandbox's message when
/// `&&`, `||`, `!` or a macro carries the error (the message was lowercased), and a
/// field or key named `_`, `_1` or `_9z` is read on both paths (the generated Rhai
/// program was refused, and with it the whole flow).
#[test]
fn missing_keys_keep_their_case_and_underscore_names_are_read_on_both_paths() {
    const FLOW: &str = r#"
apiVersion: flowc/v1
kind: ApprovalFlow
id: names
context:
  urgent: bool
  limits: "map<string, double>"
  o: { type: object, fields: { _1: int, _9z: int, _a: int, is: int } }
  applicant:
    type: object
    fields:
      name: string
      costCenter: { type: string, optional: true }
steps:
  - id: route
    type: decision
    rules:
      - when: 'o._1 > 0 && o._9z > 0 && o._a > 0 && limits["_"] > 0.0 && limits["_1"] > 0.0'
        goto: done
    default: done
  - { id: done, type: end, outcome: approved }
"#;
    let flow = paths::compile_yaml(FLOW, &Options::default());
    let mut b = paths::bind(
        &flow,
        [
            ("urgent", Value::Bool(true)),
            (
                "limits",
                paths::map([
                    ("travel", Value::Double(500.0)),
                    ("_", Value::Double(1.0)),
                    ("_1", Value::Double(1.0)),
                    ("is", Value::Double(2.0)),
                ]),
            ),
            (
                "o",
                paths::map([
                    ("_1", Value::Int(1)),
                    ("_9z", Value::Int(2)),
                    ("_a", Value::Int(3)),
                    ("is", Value::Int(4)),
                ]),
            ),
            ("applicant", paths::map([("name", Value::string("张三"))])),
        ],
    );
    let missing = |k: &str| Err(RunError::Op(OpError::NoSuchKey(k.to_owned())));
    let long = "K".repeat(100);
    let long_named = format!("{}… (100 bytes)", &long[..64]);
    let long_field = format!("limits.{long} > 0.0 && urgent");
    let long_key = format!(r#"limits["{long}"] > 0.0 || false"#);
    paths::both_paths_each(
        &flow,
        &mut b,
        [
            (r#"limits["Travel"] > 100.0 && urgent"#, missing("Travel")),
            (r#"limits["Travel"] > 100.0 || false"#, missing("Travel")),
            (r#"!(limits["Travel"] > 100.0)"#, missing("Travel")),
            (
                r#"[1].exists(x, limits["Travel"] > 100.0)"#,
                missing("Travel"),
            ),
            (
                r#"applicant.costCenter == "R&D" && urgent"#,
                missing("costCenter"),
            ),
            (r#"limits["Travel"] > 100.0 || urgent"#, Ok(true)),
            ("o._1 + o._9z + o._a == 6", Ok(true)),
            (r#"limits["_"] + limits["_1"] == 2.0"#, Ok(true)),
            (r#"limits["_2"] > 0.0 && urgent"#, missing("_2")),
            // probe q11f bug E: `is` is a word Rhai keeps for itself
            ("o.is == 4", Ok(true)),
            (r#"limits["is"] == 2.0 && limits.is == 2.0"#, Ok(true)),
            (r#"{"is": 1}.is == 1 && dyn(o).is == 4"#, Ok(true)),
            ("[1].exists(x, o.is + x == 5)", Ok(true)),
            // probe q11f bug F: a long missing key is cut alike on both paths
            (long_field.as_str(), missing(&long_named)),
            (long_key.as_str(), missing(&long_named)),
        ],
    );
}

/// A read of a `?:` that picks a map, list or object (`(vip ? vipLimits : limits)[k]`,
/// probe q11e bug A) gives the same value or error, at the same exact cost, on both
/// paths, in every shape the sandbox now reads in the branch taken: CEL's order of
/// evaluation (condition, branch, then the read's other operands) decides the first
/// error, and `&&`/`||` absorb what they absorbed.
#[test]
fn a_read_of_a_pick_is_the_same_on_both_paths() {
    use flowc::compile::CompiledFlow;
    use flowc::expr::{OpError, Value};
    use std::sync::Arc;

    let with_budget = |budget: u64| paths::flow(paths::PICK_FIELDS, &paths::budget(budget));
    let base = with_budget(100_000);
    let codes = |n: i64, off: i64| {
        Value::map(
            (0..n)
                .map(|i| (Value::string(&format!("k{i}")), Value::Int(i + off)))
                .collect(),
        )
    };
    let bind = |f: &CompiledFlow, with_optional: bool| {
        let v = f.vars();
        let mut b = Bindings::new();
        b.set_owned(v.index("b").unwrap(), Value::Bool(true));
        b.set_owned(v.index("zero").unwrap(), Value::Int(0));
        b.set_owned(
            v.index("keys").unwrap(),
            Value::List(Arc::new(
                (0..30)
                    .map(|i| Value::string(&format!("k{}", i % 7)))
                    .collect(),
            )),
        );
        b.set_owned(v.index("m").unwrap(), codes(20, 0));
        b.set_owned(v.index("vm").unwrap(), codes(20, 100));
        b.set_owned(
            v.index("tags").unwrap(),
            Value::List(Arc::new((0..20).map(Value::Int).collect())),
        );
        if with_optional {
            b.set_owned(v.index("om").unwrap(), codes(20, 1000));
            b.set_owned(
                v.index("o").unwrap(),
                Value::map(vec![
                    (Value::string("name"), Value::string("n")),
                    (Value::string("codes"), codes(20, 0)),
                ]),
            );
        }
        b
    };
    // the least budget a path evaluates `cond` within (binary search)
    let exact = |cond: &str, b: &mut Bindings, sandboxed: bool| -> u64 {
        let path = if sandboxed {
            paths::Path::Sandbox
        } else {
            paths::Path::Direct
        };
        paths::least_budget(with_budget, b, cond, path, 100_000)
    };
    let div = Err(RunError::Op(OpError::DivisionByZero));
    let no_key = |k: &str| Err(RunError::Op(OpError::NoSuchKey(k.to_owned())));
    let unbound = |n: &str| Err(RunError::Unbound(n.to_owned()));
    let present: &[(&str, Result<bool, RunError>)] = &[
        ("keys.all(k, (b ? vm : m)[k] >= 100)", Ok(true)),
        ("keys.all(k, (!b ? vm : m)[k] < 100)", Ok(true)),
        ("(b ? m : vm).k5 == 5", Ok(true)),
        (r#"(b ? m : vm)["k5"] == 5"#, Ok(true)),
        (r#""k5" in (b ? m : vm)"#, Ok(true)),
        ("keys.all(k, k in (b ? m : vm))", Ok(true)),
        ("(b ? m : vm).size() == 20", Ok(true)),
        ("size(b ? tags : tags) == 20", Ok(true)),
        ("has((b ? m : vm).k5) && !has((b ? m : vm).k99)", Ok(true)),
        ("(b ? tags : tags)[5] == 5", Ok(true)),
        ("keys.all(k, (b ? tags : tags)[size(k)] == 2)", Ok(true)),
        ("dyn(b ? m : vm).k5 == 5", Ok(true)),
        (r#"dyn(b ? m : vm)["k5"] == 5"#, Ok(true)),
        ("(b ? dyn(m) : vm).k5 == 5", Ok(true)),
        ("(has(o) ? o : o).name == \"n\"", Ok(true)),
        ("(has(o) ? o : o).codes.k5 == 5", Ok(true)),
        ("(has(om) ? om : m).k5 == 1005", Ok(true)),
        ("(!b ? {} : m).k5 == 5", Ok(true)),
        ("(b ? {} : m).size() == 0", Ok(true)),
        ("(b ? (zero == 0 ? vm : m) : m).k5 == 105", Ok(true)),
        (
            "(b ? m : vm) == m && m == (b ? m : vm) && (b ? m : vm) != vm",
            Ok(true),
        ),
        (
            "(b ? tags : tags) == [1, 2] || (b ? tags : tags) in [[1], [2]]",
            Ok(false),
        ),
        ("(b ? tags : tags).exists(x, x == 5)", Ok(true)),
        ("(b ? m : vm).all(k, k.startsWith(\"k\"))", Ok(true)),
        (
            "(b ? m : vm).map(k, (b ? m : vm)[k]).size() == 20",
            Ok(true),
        ),
        (
            "[b ? m : vm][0].k5 == 5 && {\"a\": b ? tags : tags}.a[5] == 5",
            Ok(true),
        ),
        ("(b ? m : vm)[(b ? keys : keys)[3]] == 3", Ok(true)),
        // errors: the condition's, the branch's, the read's, in CEL's order
        ("(b ? m : vm).k99 == 1", no_key("k99")),
        ("(b ? m : vm).k99 == 1 || true", Ok(true)),
        ("(1 / zero == 1 ? m : vm).k5 == 5", div.clone()),
        ("(1 / zero == 1 ? m : vm).k5 == 5 || true", Ok(true)),
        (
            "(dyn(zero) ? m : vm).k5 == 5",
            Err(RunError::Op(OpError::NoMatchingOverload {
                op: "condition".to_owned(),
                args: "int".to_owned(),
            })),
        ),
        ("(b ? {\"a\": 1 / zero} : m).a == 1", div.clone()),
        ("(!b ? {\"a\": 1 / zero} : m).k5 == 5", Ok(true)),
        ("(b ? m : vm)[string(1 / zero)] == 1", div.clone()),
        ("string(1 / zero) in (b ? m : vm)", div.clone()),
        ("(b ? m : vm)[string(1 / zero)] == 1 || true", Ok(true)),
        (
            "(b ? tags : tags)[20] == 1 || (b ? tags : tags)[0] == 0",
            Ok(true),
        ),
        (
            "(b ? m : vm).exists(k, (b ? m : vm)[k] / zero == 1) || true",
            Ok(true),
        ),
    ];
    let mut full = bind(&base, true);
    for (cond, want) in present {
        let c = base.compile_condition("t", cond).unwrap();
        assert_eq!(&c.eval(base.sandbox(), &mut full), want, "direct: {cond}");
        assert_eq!(
            &c.eval_sandboxed(base.sandbox(), &mut full),
            want,
            "sandbox: {cond}"
        );
        assert_eq!(
            exact(cond, &mut full, false),
            exact(cond, &mut full, true),
            "exact cost of `{cond}`"
        );
    }
    // an absent branch: "no value" when it is taken, before the read's other operands
    let mut absent = bind(&base, false);
    let missing: &[(&str, Result<bool, RunError>)] = &[
        ("(has(om) ? om : m).k5 == 5", Ok(true)),
        ("(b ? om : m).k5 == 5", unbound("om")),
        ("(b ? om : m)[string(1 / zero)] == 5", unbound("om")),
        ("string(1 / zero) in (b ? om : m)", div.clone()),
        ("(has(o) ? o : o).name == \"n\"", unbound("o")),
        ("(!b ? o.codes : m).k5 == 5", Ok(true)),
        ("(b ? om : m).exists(k, true)", unbound("om")),
        ("(b ? om : m).k5 == 5 || true", Ok(true)),
    ];
    for (cond, want) in missing {
        let c = base.compile_condition("t", cond).unwrap();
        assert_eq!(&c.eval(base.sandbox(), &mut absent), want, "direct: {cond}");
        assert_eq!(
            &c.eval_sandboxed(base.sandbox(), &mut absent),
            want,
            "sandbox: {cond}"
        );
        assert_eq!(
            exact(cond, &mut absent, false),
            exact(cond, &mut absent, true),
            "exact cost of `{cond}`"
        );
    }
}

/// Found by the generator (seed 4020542264440678375): comparing two maps stopped at the
/// first entry that differs, and the direct path's maps walk their entries in
/// insertion order where Rhai's sort them, so `{s: j, "a": i} == m` fit a budget of 1
/// on the direct path only. Every entry is now compared: 2 units on both paths.
#[test]
fn map_equality_costs_the_same_whatever_order_the_entries_are_walked() {
    let mut limits = flowc::limits::Limits::default();
    limits.sandbox.max_operations = 1;
    let flow = paths::flow(
        "s: string\nj: int\ni: int\nb: bool\nd: double\ne: double\nm: \"map<string, int>\"",
        &Options::new(&limits),
    );
    let mut b = paths::bind(
        &flow,
        [
            ("s", Value::string("ab")),
            ("j", Value::Int(i64::MIN)),
            ("i", Value::Int(-2)),
            ("b", Value::Bool(false)),
            ("d", Value::Double(328.5)),
            ("e", Value::Double(-178.5)),
            (
                "m",
                paths::map([("a", Value::Int(-2)), ("b", Value::Int(i64::MIN))]),
            ),
        ],
    );
    for cond in [
        r#"({s: j, "a": i} == m) || (dyn(b ? e : d) != dyn(1.5 + d))"#,
        "dyn(b ? e : d) != dyn(1.5 + d)",
        "(b ? e : d) != 1.5 + d",
        r#"({s: j, "a": i} == m) || true"#,
        r#"{"a": i, s: j} == m"#,
        r#"{"a": i, "b": j} == m"#,
        r#"m == {"zz": i, "a": j}"#,
    ] {
        let c = paths::condition(&flow, cond);
        let direct = paths::Path::Direct.eval(&flow, &c, &mut b);
        let sandbox = paths::Path::Sandbox.eval(&flow, &c, &mut b);
        assert_eq!(direct, sandbox, "{cond}");
        let want = if cond.contains('{') {
            Err(RunError::budget(1))
        } else {
            Ok(true)
        };
        assert_eq!(direct, want, "{cond}");
    }
}
