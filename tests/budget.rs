//! The cost budget bounds what an evaluation does, the same on both paths: `in` is
//! charged per element searched, a map lookup costs the same on a map of 200,000
//! entries as on a small one, and the bytes a condition builds are charged, so
//! building gigabytes of strings within the budget is impossible. Running out is the
//! same error, in flowc's words, on the direct path and in the sandbox.
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

use std::sync::Arc;

use flowc::compile::{CompiledFlow, Options, compile};
use flowc::expr::Value;
use flowc::sandbox::{Bindings, RunError};
use flowc::span::SourceFile;

const FLOW: &str = r#"
apiVersion: flowc/v1
kind: ApprovalFlow
id: budget
context:
  nums: list<int>
  items: list<int>
  codes: { type: "map<string, int>" }
  note: string
  patterns: list<string>
steps:
  - id: a
    type: approval
    assignees: { role: r }
"#;

const BUDGET: u64 = 100_000;

fn flow() -> CompiledFlow {
    compile(&SourceFile::new("budget.yaml", FLOW), &Options::default()).unwrap()
}

/// `nums` = 0..n, `items` = 0..items, `codes` = {"k0": 0, ..} with n entries, `note`
/// of `note_bytes` bytes.
fn bindings(flow: &CompiledFlow, n: i64, items: i64, note_bytes: usize) -> Bindings {
    let mut b = Bindings::new();
    let list = |k: i64| Value::List(Arc::new((0..k).map(Value::Int).collect()));
    let codes = Value::map(
        (0..n)
            .map(|i| (Value::string(&format!("k{i}")), Value::Int(i)))
            .collect(),
    );
    let v = flow.vars();
    b.set(v.index("nums").unwrap(), &list(n));
    b.set(v.index("items").unwrap(), &list(items));
    b.set(v.index("codes").unwrap(), &codes);
    b.set(
        v.index("note").unwrap(),
        &Value::string(&"x".repeat(note_bytes)),
    );
    b.set(
        v.index("patterns").unwrap(),
        &Value::List(Arc::new(Vec::new())),
    );
    b
}

/// `patterns` = `n` distinct patterns that compile to large programs (Unicode classes
/// repeated), none matching a string of `x`s.
fn set_patterns(flow: &CompiledFlow, b: &mut Bindings, n: usize) {
    let p = (0..n)
        .map(|i| Value::string(&format!("(\\w+\\s*){{20}}\\d|q{i}")))
        .collect();
    b.set(
        flow.vars().index("patterns").unwrap(),
        &Value::List(Arc::new(p)),
    );
}

/// Evaluates a condition on the direct path and in the sandbox, asserts both give
/// `want`.
fn both(flow: &CompiledFlow, b: &mut Bindings, cond: &str, want: &Result<bool, RunError>) {
    let c = flow.compile_condition("t", cond).unwrap();
    assert!(c.is_direct(), "{cond}");
    assert_eq!(&c.eval(flow.sandbox(), b), want, "direct: {cond}");
    assert_eq!(
        &c.eval_sandboxed(flow.sandbox(), b),
        want,
        "sandbox: {cond}"
    );
}

#[test]
fn in_is_charged_per_element_searched() {
    let f = flow();
    let mut b = bindings(&f, 200_000, 0, 0);
    // an early hit is cheap
    both(&f, &mut b, "0 in nums", &Ok(true));
    both(&f, &mut b, "90000 in nums", &Ok(true));
    // a late hit or a miss searches more than the budget: fail closed, even under `||`
    both(&f, &mut b, "199999 in nums", &Err(RunError::budget(BUDGET)));
    both(&f, &mut b, "-1 in nums", &Err(RunError::budget(BUDGET)));
    both(
        &f,
        &mut b,
        "-1 in nums || true",
        &Err(RunError::budget(BUDGET)),
    );
    // and within the budget a miss is a plain `false`
    let mut small = bindings(&f, 1_000, 0, 0);
    both(&f, &mut small, "-1 in nums", &Ok(false));
    // each search is charged: 200 searches of 1,000 elements run out
    let mut loop_ = bindings(&f, 1_000, 200, 0);
    both(
        &f,
        &mut loop_,
        "items.all(x, !(-1 in nums))",
        &Err(RunError::budget(BUDGET)),
    );
    both(&f, &mut loop_, "items.all(x, 0 in nums)", &Ok(true));
}

#[test]
fn in_on_a_map_costs_a_lookup() {
    let f = flow();
    let mut b = bindings(&f, 200_000, 50, 0);
    for cond in [
        r#""k0" in codes"#,
        r#""k199999" in codes"#,
        "has(codes.k199999)",
        r#"codes["k199999"] == 199999"#,
        "codes.k199999 == 199999",
        r#"!("k200000" in codes) && !has(codes.k200000)"#,
        // steps of three lookups each in a 200,000-entry map (indexed on the direct
        // path: no scan)
        r#"items.all(x, has(codes.k199999) && codes["k199999"] >= 0 && "k199999" in codes)"#,
    ] {
        both(&f, &mut b, cond, &Ok(true));
    }
    let missing = f.compile_condition("t", r#"codes["k200000"] > 0"#).unwrap();
    let direct = missing.eval(f.sandbox(), &mut b);
    assert_eq!(
        direct.as_ref().map_err(ToString::to_string),
        Err("no such key `k200000`".to_owned())
    );
    assert_eq!(direct, missing.eval_sandboxed(f.sandbox(), &mut b));
}

#[test]
fn bytes_built_are_charged() {
    let f = flow();
    // 2,000 concatenations of 60 KB each (120 MB) do not fit the budget
    let mut b = bindings(&f, 0, 2_000, 30 * 1024);
    for cond in [
        "items.exists(x, size(note + note) == 0)",
        "items.all(x, size(bytes(note)) > 0)",
    ] {
        both(&f, &mut b, cond, &Err(RunError::budget(BUDGET)));
    }
    // a list of them: each string is within the string bound, so both paths run out of
    // budget (the bytes of all strings in one list are not bounded by the string bound)
    both(
        &f,
        &mut b,
        "items.map(x, note + note).size() > 0",
        &Err(RunError::budget(BUDGET)),
    );
    both(
        &f,
        &mut b,
        "items.map(x, note + note).exists(s, size(s) == 0)",
        &Err(RunError::budget(BUDGET)),
    );
    // a hundred do
    let mut few = bindings(&f, 0, 100, 30 * 1024);
    both(
        &f,
        &mut few,
        "items.all(x, size(note + note) > 0)",
        &Ok(true),
    );
    // small strings cost nothing beyond their step
    let mut short = bindings(&f, 0, 1_000, 10);
    both(
        &f,
        &mut short,
        "items.map(x, note + note).size() == 1000",
        &Ok(true),
    );
}

#[test]
fn limit_errors_name_the_limit() {
    let f = flow();
    let mut b = bindings(&f, 0, 0, 30 * 1024);
    both(
        &f,
        &mut b,
        "size(note + note + note) > 0",
        &Err(RunError::string_too_long(64 * 1024)),
    );
    assert_eq!(
        RunError::budget(BUDGET).to_string(),
        "the evaluation budget of 100,000 operations ran out"
    );
    assert_eq!(
        RunError::string_too_long(64 * 1024).to_string(),
        "a string longer than the limit of 65,536 bytes"
    );
    assert_eq!(
        RunError::list_too_long(10_000).to_string(),
        "a list longer than the limit of 10,000 elements"
    );
    assert_eq!(
        RunError::calls_too_deep(16).to_string(),
        "calls nested deeper than the limit of 16 levels"
    );
}

#[test]
fn lists_built_are_bounded_as_each_element_is_added() {
    // a list bound of 1,000 (far from the budget on both paths' counts)
    let mut limits = flowc::limits::Limits::default();
    limits.sandbox.max_array_size = 1_000;
    let f = compile(
        &SourceFile::new("budget.yaml", FLOW),
        &Options::new(&limits),
    )
    .unwrap();
    // 20,000 elements: the 1,001st added passes the list bound on both paths, before
    // the division by zero at the 1,006th
    let mut b = bindings(&f, 0, 20_000, 0);
    for cond in [
        "items.map(x, x).size() > 0",
        "items.map(x, 10 / (1005 - x)).size() > 0",
        "items.filter(x, 10 / (1005 - x) >= 0).size() > 0",
        "items.map(x, x < 1005, 10 / (1005 - x)).size() > 0",
    ] {
        both(&f, &mut b, cond, &Err(RunError::list_too_long(1_000)));
    }
    // a context list longer than the bound is read, not built: no error
    both(
        &f,
        &mut b,
        "items.size() == 20000 && 19999 in items",
        &Ok(true),
    );
    both(&f, &mut b, "items.exists(x, x == 500)", &Ok(true));
    // within the bound, the error in the body is the one reported
    let mut small = bindings(&f, 0, 20, 0);
    both(
        &f,
        &mut small,
        "items.map(x, 10 / (10 - x)).size() > 0",
        &Err(RunError::Op(flowc::expr::OpError::DivisionByZero)),
    );
}

#[test]
fn the_skipped_side_of_and_or_is_not_evaluated_and_a_limit_is_never_absorbed() {
    let f = flow();
    let mut b = bindings(&f, 200_000, 0, 0);
    let spent = Err(RunError::budget(BUDGET));
    for (cond, want) in [
        // a deciding left side: the right side, which would run out, is not evaluated
        // (plain and error-capturing forms: `codes["k0"]` may fail)
        ("false && -1 in nums", Ok(false)),
        ("true || -1 in nums", Ok(true)),
        (r#"codes["k0"] == 1 && -1 in nums"#, Ok(false)),
        (r#"codes["k0"] == 0 || -1 in nums"#, Ok(true)),
        (
            r#"codes["k0"] == 1 && (codes["nokey"] > 0 || -1 in nums)"#,
            Ok(false),
        ),
        // an error on the left is absorbed by a deciding right side
        (r#"codes["nokey"] > 0 && false"#, Ok(false)),
        (r#"codes["nokey"] > 0 || true"#, Ok(true)),
        // a limit on an evaluated side is never absorbed, whichever side it is on
        ("-1 in nums && false", spent.clone()),
        ("-1 in nums || true", spent.clone()),
        (r#"codes["nokey"] > 0 && -1 in nums"#, spent.clone()),
        (
            r#"(-1 in nums || codes["nokey"] > 0) && false"#,
            spent.clone(),
        ),
        (r#"codes["k0"] == 0 && -1 in nums"#, spent.clone()),
        // and inside a macro, whose steps stop at the first deciding element
        ("[1, 2].exists(x, x == 1 || -1 in nums)", Ok(true)),
        ("[1, 2].all(x, x == 2 && -1 in nums)", Ok(false)),
        ("[1, 2].exists(x, x == 2 && -1 in nums)", spent.clone()),
    ] {
        both(&f, &mut b, cond, &want);
    }
}

/// Each case: the size of `nums` (0..n), the condition, the outcome on both paths.
fn cases(f: &CompiledFlow, cases: &[(i64, &str, Result<bool, RunError>)]) {
    for (n, cond, want) in cases {
        let mut b = bindings(f, *n, 20, 0);
        both(f, &mut b, cond, want);
    }
}

#[test]
fn collections_placed_into_built_lists_are_charged_by_size() {
    let f = flow();
    let spent = || Err(RunError::budget(BUDGET));
    cases(
        &f,
        &[
            // the probe's shapes: a copy of a 10,000-element list per element
            (10_000, "nums.map(x, nums).size() > 0", spent()),
            (10_000, "nums.map(x, nums) == nums.map(x, nums)", spent()),
            (10_000, "nums.map(x, [nums]).size() > 0", spent()),
            (
                10_000,
                "nums.filter(x, true).map(x, nums).size() > 0",
                spent(),
            ),
            // a list literal and `+`: a unit per element of each collection placed
            (10_000, "[nums, nums].size() == 2", Ok(true)),
            (
                10_000,
                "[nums, nums, nums, nums, nums, nums, nums, nums, nums, nums, nums].size() == 11",
                spent(),
            ),
            (10_000, "{'a': nums, 'b': nums}.size() == 2", Ok(true)),
            (
                10_000,
                "([nums] + [nums] + [nums] + [nums]).size() == 4",
                spent(),
            ),
            (10_000, "([nums] + [nums]).size() == 2", Ok(true)),
            // within the budget the same shapes run
            (100, "nums.map(x, nums).size() == 100", Ok(true)),
            (100, "nums.map(x, nums) == nums.map(x, nums)", Ok(true)),
            // scalars placed cost nothing beyond their step
            (1_000, "nums.map(x, x).size() == 1000", Ok(true)),
            (1_000, "nums.filter(x, x >= 0).size() == 1000", Ok(true)),
        ],
    );
}

#[test]
fn equality_of_collections_is_charged_per_element_compared() {
    let f = flow();
    let spent = || Err(RunError::budget(BUDGET));
    cases(
        &f,
        &[
            (20_000, "nums.all(x, nums == nums)", spent()),
            (20_000, "nums.all(x, nums != nums)", Ok(false)),
            (200, "nums.all(x, nums == nums)", Ok(true)),
            (200_000, "nums == nums", spent()),
            (90_000, "nums == nums", Ok(true)),
            // unequal lengths compare nothing
            (200_000, "nums == [1]", Ok(false)),
            (200_000, "codes == codes", spent()),
            (1_000, "codes == codes", Ok(true)),
            // `in` with a list needle: each element compared, at any depth
            (10_000, "nums in [nums]", Ok(true)),
            (10_000, "items.all(x, nums in [nums])", spent()),
        ],
    );
}

#[test]
fn regexes_are_charged_by_pattern_and_subject() {
    let f = flow();
    let spent = Err(RunError::budget(BUDGET));
    for (n, want) in [(1_000, &spent), (10, &Ok(false))] {
        let mut b = bindings(&f, 0, 0, 1);
        set_patterns(&f, &mut b, n);
        both(&f, &mut b, "patterns.exists(p, note.matches(p))", want);
    }
    // a literal pattern costs what the same pattern from the context costs
    let mut b = bindings(&f, 0, 300, 60_000);
    both(&f, &mut b, "note.matches('^x+$')", &Ok(true));
    both(&f, &mut b, "items.all(i, note.matches('^x+$'))", &spent);
    let mut b = bindings(&f, 0, 20, 60_000);
    both(&f, &mut b, "items.all(i, note.matches('^x+$'))", &Ok(true));
}
