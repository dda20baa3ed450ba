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

mod support {
    pub mod paths;
}

use flowc::compile::{CompiledFlow, Options};
use flowc::expr::{RegexScan, Value};
use flowc::sandbox::{Bindings, RunError};
use std::sync::Arc;

use support::paths::{self, Path, both_paths, list, set};

/// The context of the flows compiled here.
const CONTEXT: &str = r#"
nums: list<int>
items: list<int>
codes: { type: "map<string, int>" }
note: string
patterns: list<string>
groups: { type: "map<string, list<int>>" }
"#;

const BUDGET: u64 = 100_000;

fn flow() -> CompiledFlow {
    paths::flow(CONTEXT, &Options::default())
}

/// `nums` = 0..n, `items` = 0..items, `codes` = {"k0": 0, ..} with n entries, `note`
/// of `note_bytes` bytes, `groups` = {"k": nums}.
fn bindings(flow: &CompiledFlow, n: i64, items: i64, note_bytes: usize) -> Bindings {
    let ints = |k: i64| list((0..k).map(Value::Int));
    let codes = Value::map(
        (0..n)
            .map(|i| (Value::string(&format!("k{i}")), Value::Int(i)))
            .collect(),
    );
    paths::bind(
        flow,
        [
            ("nums", ints(n)),
            ("items", ints(items)),
            ("codes", codes),
            ("groups", paths::map([("k", ints(n))])),
            ("note", Value::string(&"x".repeat(note_bytes))),
            ("patterns", list([])),
        ],
    )
}

/// `patterns` = `n` distinct patterns that compile to large programs (Unicode classes
/// repeated), none matching a string of `x`s.
fn set_patterns(flow: &CompiledFlow, b: &mut Bindings, n: usize) {
    let p = (0..n).map(|i| Value::string(&format!("(\\pL+\\s*){{20}}\\d|q{i}")));
    set(flow, b, "patterns", list(p));
}

#[test]
fn in_is_charged_per_element_searched() {
    let f = flow();
    let mut b = bindings(&f, 200_000, 0, 0);
    // an early hit is cheap
    both_paths(&f, &mut b, "0 in nums", &Ok(true));
    both_paths(&f, &mut b, "90000 in nums", &Ok(true));
    // a late hit or a miss searches more than the budget: fail closed, even under `||`
    both_paths(&f, &mut b, "199999 in nums", &Err(RunError::budget(BUDGET)));
    both_paths(&f, &mut b, "-1 in nums", &Err(RunError::budget(BUDGET)));
    both_paths(
        &f,
        &mut b,
        "-1 in nums || true",
        &Err(RunError::budget(BUDGET)),
    );
    // and within the budget a miss is a plain `false`
    let mut small = bindings(&f, 1_000, 0, 0);
    both_paths(&f, &mut small, "-1 in nums", &Ok(false));
    // each search is charged: 200 searches of 1,000 elements run out
    let mut loop_ = bindings(&f, 1_000, 200, 0);
    both_paths(
        &f,
        &mut loop_,
        "items.all(x, !(-1 in nums))",
        &Err(RunError::budget(BUDGET)),
    );
    both_paths(&f, &mut loop_, "items.all(x, 0 in nums)", &Ok(true));
}

#[test]
fn in_on_a_map_costs_a_lookup() {
    let f = flow();
    let mut b = bindings(&f, 200_000, 50, 0);
    paths::both_paths_all(
        &f,
        &mut b,
        [
            r#""k0" in codes"#,
            r#""k199999" in codes"#,
            "has(codes.k199999)",
            r#"codes["k199999"] == 199999"#,
            "codes.k199999 == 199999",
            r#"!("k200000" in codes) && !has(codes.k200000)"#,
            // steps of three lookups each in a 200,000-entry map (indexed on the direct
            // path: no scan)
            r#"items.all(x, has(codes.k199999) && codes["k199999"] >= 0 && "k199999" in codes)"#,
        ],
        &Ok(true),
    );
    let missing = r#"codes["k200000"] > 0"#;
    paths::both_paths_fail_with(&f, &mut b, missing, "no such key `k200000`");
    let key = flowc::expr::OpError::NoSuchKey("k200000".to_owned());
    both_paths(&f, &mut b, missing, &Err(RunError::Op(key)));
}

#[test]
fn bytes_built_are_charged() {
    let f = flow();
    // 2,000 concatenations of 60 KB each (120 MB) do not fit the budget
    let mut b = bindings(&f, 0, 2_000, 30 * 1024);
    paths::both_paths_all(
        &f,
        &mut b,
        [
            "items.exists(x, size(note + note) == 0)",
            "items.all(x, size(bytes(note)) > 0)",
        ],
        &Err(RunError::budget(BUDGET)),
    );
    // a list of them, at the budget's edge: each step of `map` costs 1 + 3 (its body's
    // nodes) + 240 (60 KB built) + 240 (60 KB placed in the list, `copy_cost`) = 484
    // units on both paths, so 206 steps (99,704) fit the budget and 207 (100,188) do
    // not; each string is within the string bound
    // (`cond` holds over `fits` items and runs out over one more)
    let edge = |cond: &str, fits: i64| {
        both_paths(&f, &mut bindings(&f, 0, fits, 30 * 1024), cond, &Ok(true));
        let spent = Err(RunError::budget(BUDGET));
        both_paths(&f, &mut bindings(&f, 0, fits + 1, 30 * 1024), cond, &spent);
    };
    edge("items.map(x, note + note).size() > 0", 206);
    // then `exists` over them, which holds at its first step: that step takes a 60 KB
    // string (240 units, `copy_cost`) and `size` reads it (960, a unit per 64 bytes,
    // `scan_cost`), so 204 items fit and 205 do not
    edge("items.map(x, note + note).exists(s, size(s) > 0)", 204);
    // fifty do (each step builds 60 KB, 240 units, and `size` reads it, 960)
    let mut few = bindings(&f, 0, 50, 30 * 1024);
    both_paths(
        &f,
        &mut few,
        "items.all(x, size(note + note) > 0)",
        &Ok(true),
    );
    // small strings cost nothing beyond their step
    let mut short = bindings(&f, 0, 1_000, 10);
    both_paths(
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
    both_paths(
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
    // the default list bound (10,000) at the budget's edge: `items.map(x, x)` costs 2
    // units a step on both paths (the step and its body's one node), so the 10,001st
    // element, which passes the list bound, is added after 20,002 units: with that
    // budget both paths stop at the list bound, with one unit less at the budget
    let at = with_budget;
    let mut b = bindings(&at(0), 0, 20_000, 0);
    let bound = Err(RunError::list_too_long(10_000));
    both_paths(&at(20_002), &mut b, "items.map(x, x).size() > 0", &bound);
    both_paths(
        &at(20_001),
        &mut b,
        "items.map(x, x).size() > 0",
        &Err(RunError::budget(20_001)),
    );
    // a list bound of 1,000: the 1,001st element added passes it on both paths, before
    // the division by zero at the 1,006th
    let mut limits = flowc::limits::Limits::default();
    limits.sandbox.max_array_size = 1_000;
    let f = paths::flow(CONTEXT, &Options::new(&limits));
    paths::both_paths_all(
        &f,
        &mut b,
        [
            "items.map(x, x).size() > 0",
            "items.map(x, 10 / (1005 - x)).size() > 0",
            "items.filter(x, 10 / (1005 - x) >= 0).size() > 0",
            "items.map(x, x < 1005, 10 / (1005 - x)).size() > 0",
        ],
        &Err(RunError::list_too_long(1_000)),
    );
    // a context list longer than the bound is read, not built: no error
    both_paths(
        &f,
        &mut b,
        "items.size() == 20000 && 19999 in items",
        &Ok(true),
    );
    both_paths(&f, &mut b, "items.exists(x, x == 500)", &Ok(true));
    // within the bound, the error in the body is the one reported
    let mut small = bindings(&f, 0, 20, 0);
    both_paths(
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
    paths::both_paths_each(
        &f,
        &mut b,
        [
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
        ],
    );
}

/// The flow compiled with a budget of `budget` units.
/// Asserts `cond` costs exactly `exact` on both paths: a budget one unit under runs
/// out, the cost itself and one unit over give `want`.
fn at_the_boundary(cond: &str, b: &mut Bindings, exact: u64, want: bool) {
    for budget in [exact - 1, exact, exact + 1] {
        let f = with_budget(budget);
        let c = f.compile_condition("t", cond).unwrap();
        let got = if budget < exact {
            Err(RunError::budget(budget))
        } else {
            Ok(want)
        };
        assert_eq!(
            c.eval(f.sandbox(), b),
            got,
            "direct: `{cond}`, budget {budget}"
        );
        assert_eq!(
            c.eval_sandboxed(f.sandbox(), b),
            got,
            "sandbox: `{cond}`, budget {budget}"
        );
    }
}

fn with_budget(budget: u64) -> CompiledFlow {
    paths::flow(CONTEXT, &paths::budget(budget))
}

/// The least budget the direct path evaluates `cond` within (binary search).
fn exact_cost(cond: &str, b: &mut Bindings) -> u64 {
    paths::least_budget(with_budget, b, cond, Path::Direct, BUDGET)
}

#[test]
fn both_paths_run_out_of_budget_at_exactly_the_same_point() {
    // `nums` 0..50, `items` 0..30, `codes` k0..k19, `note` 300 bytes
    let base = flow();
    let mut b = bindings(&base, 20, 30, 300);
    set(&base, &mut b, "nums", list((0..50).map(Value::Int)));
    // (condition, its exact cost where derived by hand from decision 100's model)
    let cases: &[(&str, Option<u64>)] = &[
        // `in` over a list: a unit per element compared (a miss: all 50)
        ("-1 in nums", Some(50)),
        ("7 in nums", Some(8)),
        // a literal list costs only its node
        ("!(-1 in [1, 2, 3]) && -1 in nums", Some(50)),
        // `+` on strings in `map`: each step 1 + 3 nodes + 600 bytes / 256 built + the
        // same 2 units to place the string in the list (`copy_cost`) = 8 units
        ("items.map(x, note + note).size() > 0", Some(240)),
        (
            "items.map(x, x < 10, note + string(x)).exists(s, size(s) == 0)",
            None,
        ),
        // nested comprehensions
        ("items.all(x, nums.exists(y, y == x + 100))", None),
        ("items.exists(x, nums.exists(y, y == x) && x > 25)", None),
        (
            "items.filter(x, x < 5).all(x, items.all(y, nums.exists(z, z == x + y)))",
            None,
        ),
        (
            "items.exists_one(x, nums.filter(y, y < x).size() == 3)",
            None,
        ),
        // `in` over lists inside steps
        ("items.all(x, x + 1000 in nums || x in nums)", None),
        (
            "items.filter(x, x in [1, 2, 3] || x + 40 in nums).size() == 10",
            None,
        ),
        // map lookups and conversions
        (
            r#""k5" in codes && items.exists_one(x, codes["k5"] == x)"#,
            None,
        ),
        ("items.all(x, size(bytes(note + note)) > 0)", None),
        // a regex: the node units of a call plus `regex_cost` (checked below)
        ("note.matches('^x+$') || note.startsWith('^x+$')", None),
        // operations that read every byte of a string: a unit per 64 bytes read
        // (`scan_cost`, decision 119), on both paths
        ("items.all(x, size(note) > 0)", None),
        ("items.all(x, !note.contains('zz'))", None),
        (
            "items.all(x, note.startsWith('x') && note.endsWith('x'))",
            None,
        ),
        ("items.all(x, string(note) != '')", None),
        ("items.all(x, note == note && !(note != note))", None),
        (
            "items.all(x, note <= note && note >= 'a' && !(note < note))",
            None,
        ),
        ("items.all(x, note + 'y' > note)", None),
        ("items.all(x, bytes(note) == bytes(note))", None),
        // an element taken by `[]` or by a comprehension variable: what copying it costs
        ("items.all(x, [nums, nums][1][2] == 2)", None),
        ("items.all(x, [nums, [1]].exists(l, size(l) > 1))", None),
        // a pattern from the context: compiling it, by its parsed size
        (
            "items.exists(x, x == 3 && ['^x', 'y+', '[a-z]{3}'].exists(p, note.matches(p)))",
            None,
        ),
        // a field of a value typed `dyn` is copied in the sandbox (`cel_select`):
        // charged by its size on both paths; a map-typed value's field is read in
        // place, uncharged, under `dyn(…)` too (decision 123)
        ("items.all(x, [groups, 1][0].k.size() > 0)", None),
        ("items.all(x, dyn(groups).k.size() > 0)", None),
        ("items.all(x, groups.k.size() > 0 && x in groups.k)", None),
        // an ordinary error late in the steps: the budget or the error, the same on both
        ("items.all(x, 10 / (x - 29) > -100)", None),
        (r#"items.exists(x, codes["nokey"] > 0 || x == 29)"#, None),
        // a map lookup by a string key reads the key: `key_cost` (decision 121); a key
        // placed into a built map is charged as a value placed into a built list
        ("items.all(x, !(note in codes))", None),
        (
            "items.all(x, note in {note: x} && {note: x}[note] == x)",
            None,
        ),
        ("items.all(x, {note: x} != {})", None),
        ("items.all(x, {note: x} == {note: x})", None),
        // `startsWith`/`endsWith` read the shorter of the string and the affix
        (
            "items.all(x, note.startsWith(note) && note.endsWith('x'))",
            None,
        ),
        // a literal pattern is matched at the rate of a string read, any other at a
        // unit per byte
        (
            "items.all(x, note.matches('x') && !note.matches('^y'))",
            None,
        ),
        // an anchored literal reads the prefix or suffix, as `startsWith`/`endsWith`
        (
            "items.all(x, note.matches('^xx') && note.matches('xxx$') && !note.matches('^x+y'))",
            None,
        ),
        // `dyn(…)` costs nothing of its own (decision 123)
        (
            "items.all(x, dyn(note) == dyn(note) && x in dyn(nums) && dyn(codes) == codes)",
            None,
        ),
    ];
    // `matches` costs what a string function of the same nodes costs plus the one
    // formula's units
    assert_eq!(
        exact_cost("note.matches('^x+$')", &mut b),
        exact_cost("note.startsWith('^x+$')", &mut b) - flowc::expr::scan_cost(4)
            + flowc::expr::match_cost(&"x".repeat(300), flowc::expr::regex_estimate("^x+$")),
        "the cost of `matches`"
    );
    for (cond, want) in cases {
        let exact = exact_cost(cond, &mut b);
        if let Some(want) = want {
            assert_eq!(exact, *want, "the cost of `{cond}`");
        }
        // the edge is where the search put it
        paths::same_edge(
            with_budget,
            &mut b,
            cond,
            exact,
            &[exact.saturating_sub(1), exact, exact + 1],
        );
    }
}

/// `patterns` = `ps`, every one of which matches `note` on both paths.
fn all_match(f: &CompiledFlow, b: &mut Bindings, ps: &[&str]) {
    set(f, b, "patterns", list(ps.iter().map(|p| Value::string(p))));
    both_paths(f, b, "patterns.all(p, note.matches(p))", &Ok(true));
}

/// Each case: the size of `nums` (0..n), the condition, the outcome on both paths
/// (`None`: running out of the default budget).
fn cases(cases: &[(i64, &str, Option<bool>)]) {
    let f = flow();
    for &(n, cond, want) in cases {
        let mut b = bindings(&f, n, 20, 0);
        both_paths(&f, &mut b, cond, &want.ok_or(RunError::budget(BUDGET)));
    }
}

#[test]
fn collections_placed_into_built_lists_are_charged_by_size() {
    cases(&[
        // the probe's shapes: a copy of a 10,000-element list per element
        (10_000, "nums.map(x, nums).size() > 0", None),
        (10_000, "nums.map(x, nums) == nums.map(x, nums)", None),
        (10_000, "nums.map(x, [nums]).size() > 0", None),
        (10_000, "nums.filter(x, true).map(x, nums).size() > 0", None),
        // a list literal and `+`: a unit per element of each collection placed
        (10_000, "[nums, nums].size() == 2", Some(true)),
        (
            10_000,
            "[nums, nums, nums, nums, nums, nums, nums, nums, nums, nums, nums].size() == 11",
            None,
        ),
        (10_000, "{'a': nums, 'b': nums}.size() == 2", Some(true)),
        (
            10_000,
            "([nums] + [nums] + [nums] + [nums]).size() == 4",
            None,
        ),
        (10_000, "([nums] + [nums]).size() == 2", Some(true)),
        // within the budget the same shapes run
        (100, "nums.map(x, nums).size() == 100", Some(true)),
        (100, "nums.map(x, nums) == nums.map(x, nums)", Some(true)),
        // scalars placed cost nothing beyond their step
        (1_000, "nums.map(x, x).size() == 1000", Some(true)),
        (1_000, "nums.filter(x, x >= 0).size() == 1000", Some(true)),
    ]);
}

#[test]
fn equality_of_collections_is_charged_per_element_compared() {
    cases(&[
        (20_000, "nums.all(x, nums == nums)", None),
        (20_000, "nums.all(x, nums != nums)", Some(false)),
        (200, "nums.all(x, nums == nums)", Some(true)),
        (200_000, "nums == nums", None),
        (90_000, "nums == nums", Some(true)),
        // unequal lengths compare nothing
        (200_000, "nums == [1]", Some(false)),
        (200_000, "codes == codes", None),
        (1_000, "codes == codes", Some(true)),
        // `in` with a list needle: each element compared, at any depth
        (10_000, "nums in [nums]", Some(true)),
        (10_000, "items.all(x, nums in [nums])", None),
    ]);
}

#[test]
fn regexes_are_charged_by_pattern_and_subject() {
    let f = flow();
    let spent = Err(RunError::budget(BUDGET));
    // a pattern from the context is charged its compilation by its parsed size: one
    // that compiles to a large program (`(\pL+\s*){20}\d`, Unicode letters) costs more
    // than the whole budget, so the first attempt fails closed before it compiles
    assert!(flowc::expr::regex_cost("x", "(\\pL+\\s*){20}\\d|q0") > BUDGET);
    for (n, want) in [(1, &spent), (1_000, &spent)] {
        let mut b = bindings(&f, 0, 0, 1);
        set_patterns(&f, &mut b, n);
        both_paths(&f, &mut b, "patterns.exists(p, note.matches(p))", want);
    }
    // small patterns: ten fit, a thousand do not
    for (n, want) in [(1_000, &spent), (10, &Ok(false))] {
        let mut b = bindings(&f, 0, 0, 1);
        let p = (0..n).map(|i| Value::string(&format!("^q{i}$")));
        set(&f, &mut b, "patterns", list(p));
        both_paths(&f, &mut b, "patterns.exists(p, note.matches(p))", want);
    }
    // a literal pattern is compiled when the condition is built: each evaluation is
    // charged only the match, so a rule over 1,000 short strings fits
    let mut b = bindings(&f, 0, 1_000, 1);
    both_paths(&f, &mut b, "items.all(i, note.matches('^x'))", &Ok(true));
    both_paths(
        &f,
        &mut b,
        r"items.all(i, note.matches('(\\w+\\s*){20}\\d|x'))",
        &Ok(true),
    );
    // a literal pattern costs what the same pattern from the context costs; matching
    // is charged by the subject's length (`regex_cost`, the one formula): one match
    // of a 60,000-byte subject fits the budget, two do not
    let anchored = flowc::expr::regex_estimate("^x+$");
    assert_eq!(anchored.scan, RegexScan::Automaton);
    let per_match = flowc::expr::match_cost(&"x".repeat(60_000), anchored);
    assert!(per_match < BUDGET && 2 * per_match > BUDGET);
    let mut b = bindings(&f, 0, 1, 60_000);
    both_paths(&f, &mut b, "note.matches('^x+$')", &Ok(true));
    both_paths(&f, &mut b, "items.all(i, note.matches('^x+$'))", &Ok(true));
    let mut b = bindings(&f, 0, 2, 60_000);
    both_paths(&f, &mut b, "items.all(i, note.matches('^x+$'))", &spent);
    // and on short subjects many matches fit
    let per_match = flowc::expr::match_cost("x", anchored);
    let mut b = bindings(&f, 0, 20, 1);
    assert!(20 * per_match < BUDGET);
    both_paths(&f, &mut b, "items.all(i, note.matches('^x+$'))", &Ok(true));
}

/// A pattern from the context costs the same whether the regex cache holds it (its
/// weight kept with the compiled regex) or not (parsed for its weight): at its exact
/// cost − 1, exact and + 1, on both paths, cold and warm.
#[test]
fn a_context_pattern_costs_the_same_cached_or_not() {
    let base = flow();
    let mut b = bindings(&base, 0, 0, 40);
    // a pattern no other test uses, and more patterns than the cache holds
    let pattern = r"^[a-z0-9]+x$|budget-cold-warm";
    set(&base, &mut b, "patterns", list([Value::string(pattern)]));
    let cond = "patterns.exists(p, note.matches(p))";
    let flood: Vec<Value> = (0..flowc::limits::Limits::REGEX_CACHE_ENTRIES + 10)
        .map(|i| Value::string(&format!("^cold{i}$")))
        .collect();
    let mut fb = bindings(&base, 0, 0, 1);
    set(&base, &mut fb, "patterns", list(flood));
    let big = with_budget(u64::MAX / 2);
    let flood = big
        .compile_condition("flood", "patterns.exists(p, note.matches(p))")
        .unwrap();
    let mut drop_cache = || assert_eq!(flood.eval(big.sandbox(), &mut fb), Ok(false));
    // the one formula: the floor, the pattern's weight (parsed here, uncached), the
    // subject; plus the nodes and the comprehension's step
    let formula = flowc::expr::REGEX_FLOOR
        + flowc::expr::regex_weight(pattern) * flowc::expr::REGEX_UNITS_PER_WEIGHT
        + 40;
    let exact = exact_cost(cond, &mut b);
    assert!(
        exact > formula && exact < formula + 16,
        "{exact} vs {formula}"
    );
    for budget in [exact - 1, exact, exact + 1] {
        let f = with_budget(budget);
        let c = paths::condition(&f, cond);
        let want = if budget < exact {
            Err(RunError::budget(budget))
        } else {
            Ok(true)
        };
        for path in Path::BOTH {
            drop_cache();
            assert_eq!(
                path.eval(&f, &c, &mut b),
                want,
                "cold, {path}, budget {budget}"
            );
            assert_eq!(
                path.eval(&f, &c, &mut b),
                want,
                "warm, {path}, budget {budget}"
            );
        }
    }
}

/// Each case: a condition over 30 `items`, and the bytes each step reads of a `note` of
/// `long` bytes and of a 1-byte one: its exact cost on the long `note` is that on the
/// short one plus 30 times the difference of their `scan_cost`.
fn charged_per_byte_read(long: usize, cases: &[(&str, usize, usize)]) {
    let base = flow();
    for &(cond, read, short_read) in cases {
        let mut big = bindings(&base, 0, 30, long);
        let mut small = bindings(&base, 0, 30, 1);
        assert_eq!(
            exact_cost(cond, &mut big) - exact_cost(cond, &mut small),
            30 * (flowc::expr::scan_cost(read) - flowc::expr::scan_cost(short_read)),
            "`{cond}`"
        );
    }
}

#[test]
fn string_reads_are_charged_by_the_bytes_read() {
    // the same condition over a 6,400-byte `note` and a 1-byte one: each of the 30
    // steps reads `note` once more, at a unit per 64 bytes (`scan_cost`)
    let long = 6_400;
    // (the condition, the bytes each step reads of the long `note` and of the short)
    let cases = [
        ("items.all(x, size(note) > 0)", long, 1),
        ("items.all(x, !note.contains('zz'))", long + 2, 3),
        ("items.all(x, string(note) != '')", long, 1),
        ("items.all(x, note == note)", long, 1),
        ("items.all(x, note <= note)", long, 1),
        // `startsWith`/`endsWith` read only as much as the affix (decision 121)
        ("items.all(x, note.startsWith('x'))", 1, 1),
        ("items.all(x, note.endsWith(note))", long, 1),
        (
            "items.all(x, !note.startsWith('0123456789012345678901234567890123456789012345678901234567890123456789'))",
            70,
            1,
        ),
    ];
    charged_per_byte_read(long, &cases);
    // the probe's shape: a 4 MB string read per element runs out at once on both paths
    let f = flow();
    let mut b = bindings(&f, 0, 14_000, 4 << 20);
    let spent = Err(RunError::budget(BUDGET));
    paths::both_paths_all(
        &f,
        &mut b,
        [
            "items.all(x, size(note) > 0)",
            "items.all(x, !note.contains('zz'))",
            "items.all(x, note.startsWith(note))",
            "items.all(x, note.endsWith(note))",
            "items.all(x, note == note)",
            "items.all(x, string(note) != '')",
        ],
        &spent,
    );
    // a short prefix or suffix of it is read alone: a thousand reads fit
    let mut b = bindings(&f, 0, 1_000, 4 << 20);
    both_paths(
        &f,
        &mut b,
        "items.all(x, !note.startsWith('b') && note.endsWith('x'))",
        &Ok(true),
    );
}

/// A map lookup by a string key (`in`, `[]`, and each entry two maps compare by)
/// reads the key, and a map literal places its key: both are charged by the key's
/// bytes on both paths (decision 121), so a long context string used as a key per
/// element runs out of the budget instead of hashing megabytes per step.
#[test]
fn map_keys_are_charged_by_their_bytes() {
    let base = flow();
    let long = 6_400;
    let keyed = |note_bytes: usize| {
        let mut b = bindings(&base, 0, 30, note_bytes);
        let note = Value::string(&"x".repeat(note_bytes));
        set(
            &base,
            &mut b,
            "codes",
            Value::map(vec![(note, Value::Int(1))]),
        );
        b
    };
    let lookup = flowc::expr::key_cost(&Value::string(&"x".repeat(long)));
    assert_eq!(lookup, flowc::expr::scan_cost(long));
    // a unit per 256 bytes placed (`copy_cost`), as a string placed into a list
    let placed = (long / 256) as u64;
    // (the condition, the units each step costs more with the long key)
    for (cond, per_step) in [
        ("items.all(x, note in codes)", lookup),
        ("items.all(x, codes[note] == 1)", lookup),
        ("items.all(x, {note: x} != {})", placed),
        ("items.all(x, note in {note: x})", placed + lookup),
        // two maps compared: the key looked up in the other map, and both built
        ("items.all(x, {note: 1} == codes)", placed + lookup),
    ] {
        let (mut big, mut small) = (keyed(long), keyed(1));
        assert_eq!(
            exact_cost(cond, &mut big) - exact_cost(cond, &mut small),
            30 * per_step,
            "`{cond}`"
        );
    }
    // the probe's shape: a 1 MB key looked up (or placed) per element runs out at once
    let mut b = bindings(&base, 0, 14_000, 1 << 20);
    set(
        &base,
        &mut b,
        "codes",
        Value::map(vec![(Value::string(&"x".repeat(1 << 20)), Value::Int(1))]),
    );
    let spent = Err(RunError::budget(BUDGET));
    paths::both_paths_all(
        &base,
        &mut b,
        [
            "items.all(x, note in codes)",
            "items.all(x, codes[note] > 0)",
            "items.all(x, {note: 1} != {})",
            "items.all(x, has(codes.k) || note in codes)",
        ],
        &spent,
    );
    // once fits
    both_paths(
        &base,
        &mut b,
        "note in codes && codes[note] == 1",
        &Ok(true),
    );
}

/// `matches` with a literal pattern reads its subject as `contains` does (a unit per
/// 64 bytes), so a 1 MiB context string is matched within the default budget; any
/// other pattern costs a unit per subject byte (decision 121).
#[test]
fn a_literal_pattern_matches_a_long_subject_within_the_budget() {
    let f = flow();
    let mib = 1 << 20;
    let mut b = bindings(&f, 0, 1, mib);
    both_paths(
        &f,
        &mut b,
        "note.matches('x') && !note.matches('y')",
        &Ok(true),
    );
    both_paths(&f, &mut b, "note.matches('中') || true", &Ok(true));
    assert_eq!(flowc::expr::regex_estimate("x").scan, RegexScan::Literal);
    assert_eq!(
        flowc::expr::match_cost(&"x".repeat(mib), flowc::expr::regex_estimate("x")),
        flowc::expr::scan_cost(mib)
    );
    // from the context too: the pattern's compilation plus the subject read
    let mut p = bindings(&f, 0, 1, mib);
    all_match(&f, &mut p, &["xx"]);
    // a pattern that is not a literal string: a unit per byte, more than the budget
    let spent = Err(RunError::budget(BUDGET));
    paths::both_paths_all(
        &f,
        &mut b,
        [
            "note.matches('^x+$')",
            "note.matches('x|y')",
            "note.matches('(?i)x')",
        ],
        &spent,
    );
}

/// Each pattern is read as its row says ([`RegexScan`], the one classifier).
fn assert_scans(rows: &[(&str, RegexScan)]) {
    for &(pattern, scan) in rows {
        assert_eq!(
            flowc::expr::regex_estimate(pattern).scan,
            scan,
            "pattern {pattern:?}"
        );
    }
}

#[test]
fn a_pattern_whose_every_match_is_one_string_is_priced_as_that_string() {
    // decision 126 (probe q11d nit 7): the pattern's HIR, not its spelling, says how
    // the matcher reads a subject: `""` matches at once, `a{3}` and `(?:a)(?:b)` are the
    // literals `aaa` and `ab`, found by substring search; an assertion, a class, an
    // alternative or an open repetition is read by the automaton, a unit per byte
    assert_scans(&[
        ("", RegexScan::AtOnce),
        ("a{0}", RegexScan::AtOnce),
        ("(?:)", RegexScan::AtOnce),
        ("a{3}", RegexScan::Literal),
        ("(?:a)(?:b)", RegexScan::Literal),
        ("x(y)z", RegexScan::Literal),
        (r"\Qa.b\E", RegexScan::Literal),
        ("^", RegexScan::AtOnce),
        ("a{3}$", RegexScan::Suffix(3)),
        ("a{3,}", RegexScan::Automaton),
        ("a|b", RegexScan::Automaton),
        ("[ab]", RegexScan::Automaton),
    ]);
    let subject = "x".repeat(1 << 20);
    assert_eq!(
        flowc::expr::match_cost(&subject, flowc::expr::regex_estimate("")),
        0
    );
    assert_eq!(
        flowc::expr::match_cost(&subject, flowc::expr::regex_estimate("x{3}")),
        flowc::expr::scan_cost(1 << 20)
    );
    // on a 1 MiB subject: charged per byte, both failed closed before
    let f = flow();
    let mut b = bindings(&f, 0, 1, 1 << 20);
    both_paths(&f, &mut b, "note.matches('')", &Ok(true));
    both_paths(
        &f,
        &mut b,
        "note.matches('x{3}') && !note.matches('a{3}')",
        &Ok(true),
    );
    // from the context: the floor and the weight, and nothing per byte for `""`
    all_match(&f, &mut b, &["", "x{3}"]);
    assert_eq!(
        flowc::expr::regex_cost(&subject, ""),
        flowc::expr::REGEX_FLOOR
            + flowc::expr::REGEX_UNITS_PER_WEIGHT * flowc::expr::regex_weight("")
    );
}

#[test]
fn common_context_patterns_fit_the_default_budget() {
    // decision 126 (probe q11d nit 3): `\w`, `\d` and `\s` are RE2's ASCII classes, so
    // the usual patterns compile to small programs and are charged so; a large Unicode
    // class (`\pL`, hundreds of UTF-8 sequences) costs about a whole budget to compile,
    // as it is charged, and the slow patterns fail closed
    let f = flow();
    let mut b = bindings(&f, 0, 0, 0);
    set(&f, &mut b, "note", Value::string("li@x.com"));
    let fits = [
        "\\w",
        "\\w\\w",
        "\\w+",
        "^\\w+@\\w+\\.\\w+$",
        "\\d+|@",
        "[^\\s]+",
        "[à-ÿ]|[a-z]",
    ];
    for p in fits {
        assert!(flowc::expr::regex_cost("li@x.com", p) < BUDGET / 4, "{p}");
    }
    // all of them in one evaluation, from the context, on both paths
    all_match(&f, &mut b, &fits);
    // the weights: what the compiler builds (ASCII `\w` is four ranges; `\pL` is
    // hundreds of UTF-8 sequences); `+` is compiled once, `{3}` three times
    let w = flowc::expr::regex_weight;
    assert_eq!(w("\\w+"), w("\\w") + flowc::expr::REGEX_GROUP_WEIGHT);
    assert_eq!(w("\\w"), w("[0-9A-Za-z_]"));
    assert!(w("\\pL") > 10 * w("\\w"));
    assert!(w("a{3,}") > w("a+"));
    // RE2's classes: ASCII only
    let spent = Err(RunError::budget(BUDGET));
    paths::both_paths_each(
        &f,
        &mut b,
        [
            ("'é'.matches('\\\\w') || '٣'.matches('\\\\d')", Ok(false)),
            (
                "'é'.matches('^\\\\W$') && 'é'.matches('[^\\\\w]')",
                Ok(true),
            ),
            ("'\\u3000'.matches('\\\\s')", Ok(false)),
            ("'é'.matches('\\\\pL')", Ok(true)),
        ],
    );
    // the slow ones still fail closed before they compile
    for p in ["\\pL", "(\\pL+\\s*){20}\\d", "\\pL{100}"] {
        assert!(flowc::expr::regex_cost("x", p) > BUDGET, "{p}");
        set(&f, &mut b, "patterns", list([Value::string(p)]));
        both_paths(&f, &mut b, "patterns.exists(p, note.matches(p))", &spent);
    }
}

#[test]
fn an_over_size_pattern_is_an_ordinary_error() {
    // as in cel-go, a pattern that does not compile (over the size limit included) is
    // an invalid argument: `||` absorbs it when the other side holds
    let f = with_budget(100_000_000);
    let mut b = bindings(&f, 0, 0, 1);
    set(&f, &mut b, "patterns", list([Value::string("\\pL{300}")]));
    paths::both_paths_each(
        &f,
        &mut b,
        [
            ("patterns.exists(p, note.matches(p)) || true", Ok(true)),
            ("true || patterns.exists(p, note.matches(p))", Ok(true)),
            ("patterns.all(p, note.matches(p)) && false", Ok(false)),
        ],
    );
    let c = f
        .compile_condition("t", "patterns.exists(p, note.matches(p))")
        .unwrap();
    let err = c.eval(f.sandbox(), &mut b).unwrap_err();
    assert!(
        !matches!(err, RunError::Limit(_)) && err.to_string().contains("compiles to more than"),
        "{err}"
    );
    assert_eq!(c.eval_sandboxed(f.sandbox(), &mut b), Err(err));
}

/// `dyn(x)` changes the static type only: on both paths it evaluates as `x`, costs
/// nothing extra and is read in place where `x` is (decision 123), so a condition
/// costs the same units with or without it (`dyn(s) == dyn(s2)` cost 36 units against
/// 14 for `s == s2`: the probe's nit 5).
#[test]
fn dyn_costs_what_its_argument_costs() {
    let base = flow();
    // `nums` 0..50, `items` 0..30, `codes` k0..k19, `note` 700 bytes
    let mut b = bindings(&base, 20, 30, 700);
    set(&base, &mut b, "nums", list((0..50).map(Value::Int)));
    for (with_dyn, without) in [
        ("dyn(note) == dyn(note)", "note == note"),
        (
            "items.all(x, dyn(note) == dyn(note))",
            "items.all(x, note == note)",
        ),
        (
            "items.all(x, dyn(nums).size() > x)",
            "items.all(x, nums.size() > x)",
        ),
        ("items.all(x, x in dyn(nums))", "items.all(x, x in nums)"),
        (
            "items.all(x, dyn(nums).exists(t, t == x))",
            "items.all(x, nums.exists(t, t == x))",
        ),
        (
            "items.all(x, dyn(codes) == codes)",
            "items.all(x, codes == codes)",
        ),
        (
            "items.all(x, dyn(dyn(note)).size() > 0)",
            "items.all(x, note.size() > 0)",
        ),
        (
            "items.all(x, x in dyn([1, 2]) || true)",
            "items.all(x, x in [1, 2] || true)",
        ),
    ] {
        assert_eq!(
            exact_cost(with_dyn, &mut b),
            exact_cost(without, &mut b),
            "`{with_dyn}` against `{without}`"
        );
    }
    // (a value reached from one under `dyn(…)` is typed `dyn`: `dyn(groups).k.size()`
    // is charged per step the dearest `size` overload, as any call on a `dyn` value)
    // and both paths run out at its exact cost
    for cond in [
        "items.all(x, dyn(note) == dyn(note) && x in dyn(nums))",
        "items.all(x, dyn(nums).exists(t, t == x) && dyn(groups).k.size() > 0)",
        "items.all(x, dyn(codes) == codes && dyn(codes).k3 == 3)",
    ] {
        let exact = exact_cost(cond, &mut b);
        paths::same_edge(
            with_budget,
            &mut b,
            cond,
            exact,
            &[exact - 1, exact, exact + 1],
        );
    }
    // a 100,000-element list under `dyn` costs what it costs without
    let f = flow();
    let mut big = bindings(&f, 100_000, 1_000, 0);
    both_paths(
        &f,
        &mut big,
        "items.all(x, dyn(nums).size() == 100000 && dyn(groups).k.size() > 0) && 5 in dyn(nums)",
        &Ok(true),
    );
}

/// `s.matches("^abc")` and `s.matches("abc$")` read only the prefix or suffix, as
/// `startsWith`/`endsWith` do, and cost what they cost (`affix_cost`, decision 123);
/// every other pattern is charged as before.
#[test]
fn a_pattern_anchored_to_a_literal_costs_what_the_affix_test_costs() {
    use flowc::expr::regex_estimate;
    for (pattern, reads) in [
        ("^abc", RegexScan::Prefix(3)),
        ("abc$", RegexScan::Suffix(3)),
        ("^中文", RegexScan::Prefix(6)),
        ("abc", RegexScan::Literal),
        ("^abc$", RegexScan::Prefix(3)),
        ("^a+$", RegexScan::Automaton),
        ("(?m)^abc", RegexScan::Automaton),
        ("(?m)abc$", RegexScan::Automaton),
        ("^a+", RegexScan::Automaton),
        // anchored and bounded, read by the automaton up to 3 bytes (decision 126)
        ("^(?i)abc", RegexScan::Bounded(3)),
        ("^a|b", RegexScan::Automaton),
    ] {
        assert_eq!(regex_estimate(pattern).scan, reads, "`{pattern}`");
    }
    let long = 6_400;
    let base = flow();
    // (the condition, the bytes each step reads of the long `note` and of the short)
    let cases = [
        ("items.all(x, note.matches('^x'))", 1, 1),
        ("items.all(x, note.matches('x$'))", 1, 1),
        ("items.all(x, !note.matches('^xy'))", 2, 1),
        (
            "items.all(x, !note.matches('^0123456789012345678901234567890123456789012345678901234567890123456789'))",
            70,
            1,
        ),
    ];
    charged_per_byte_read(long, &cases);
    // the same as `startsWith`/`endsWith` of the literal, pattern by pattern
    let subject = "x".repeat(long);
    for (pattern, affix) in [
        ("^xy", 2),
        ("x$", 1),
        (&*format!("^{}", "x".repeat(200)), 200),
    ] {
        assert_eq!(
            flowc::expr::match_cost(&subject, regex_estimate(pattern)),
            flowc::expr::affix_cost(long, affix),
            "`{pattern}`"
        );
    }
    // a 1 MiB subject matched a thousand times fits the default budget on both paths;
    // a pattern that is not an anchored literal still costs a unit per byte
    let mut b = bindings(&base, 0, 1_000, 1 << 20);
    both_paths(
        &base,
        &mut b,
        "items.all(x, note.matches('^x') && note.matches('x$') && !note.matches('^y'))",
        &Ok(true),
    );
    // from the context too: its compilation plus the affix read
    all_match(&base, &mut b, &["^xx", "xx$"]);
    let spent = Err(RunError::budget(BUDGET));
    paths::both_paths_all(
        &base,
        &mut b,
        [
            "note.matches('^x+')",
            "note.matches('^x*$')",
            "note.matches('(?m)^x')",
        ],
        &spent,
    );
}

/// `m["k"]` on a map with string keys is `m.k` (decision 125): read in place on both
/// paths and charged the same, where the index form was charged a copy of the whole
/// value under the key (`groups["k"]` a 100,000-element list) and ran out of budget.
#[test]
fn an_index_by_a_literal_key_costs_what_the_field_costs() {
    let base = flow();
    let mut b = bindings(&base, 50, 30, 0);
    for (index, field) in [
        (
            r#"items.all(x, groups["k"].size() > x)"#,
            "items.all(x, groups.k.size() > x)",
        ),
        (
            r#"items.all(x, x in groups["k"] && codes["k3"] == 3)"#,
            "items.all(x, x in groups.k && codes.k3 == 3)",
        ),
        (
            r#"items.all(x, groups["k"][x] == x)"#,
            "items.all(x, groups.k[x] == x)",
        ),
    ] {
        let exact = exact_cost(index, &mut b);
        assert_eq!(
            exact,
            exact_cost(field, &mut b),
            "`{index}` against `{field}`"
        );
        paths::same_edge(with_budget, &mut b, index, exact, &[exact - 1, exact]);
    }
    let mut big = bindings(&base, 100_000, 1_000, 0);
    both_paths(
        &base,
        &mut big,
        r#"items.all(x, groups["k"][5] == 5 && groups["k"].size() == 100000)"#,
        &Ok(true),
    );
    both_paths(
        &base,
        &mut big,
        r#"groups["k"].size() > 0 && !("k-1" in codes) && codes["k1"] == 1"#,
        &Ok(true),
    );
    both_paths(&base, &mut big, r#"codes["no"] == 1 || true"#, &Ok(true));
    let missing = Err(RunError::Op(flowc::expr::OpError::NoSuchKey(
        "no".to_owned(),
    )));
    both_paths(&base, &mut big, r#"codes["no"] == 1"#, &missing);
}

#[test]
fn a_pattern_weighs_at_least_a_unit_per_eight_bytes() {
    use flowc::expr::{REGEX_BYTES_PER_WEIGHT, REGEX_FLOOR, REGEX_UNITS_PER_WEIGHT};
    assert_eq!(REGEX_BYTES_PER_WEIGHT, 8);
    // `abcd` and flag groups that change nothing in it (`(?s)`, `(?-s)`: it has no
    // `.`): parsed, the literal `abcd` (weight 4); 32 bytes are four units of the least
    // weight, 33 five
    let padded = |len: usize| {
        let pad = len - 4;
        let fives = pad % 4;
        format!(
            "abcd{}{}",
            "(?-s)".repeat(fives),
            "(?s)".repeat((pad - 5 * fives) / 4)
        )
    };
    for (len, weight) in [(8, 4), (31, 4), (32, 4), (33, 5), (40, 5), (41, 6)] {
        let p = padded(len);
        assert_eq!(p.len(), len);
        assert_eq!(flowc::expr::regex_weight(&p), weight, "{len} bytes");
        assert_eq!(
            flowc::expr::regex_least_cost(&p),
            REGEX_FLOOR + REGEX_UNITS_PER_WEIGHT * (len as u64).div_ceil(8)
        );
        // a literal: the subject costs its scan
        assert_eq!(
            flowc::expr::regex_cost("abcd", &p),
            REGEX_FLOOR + REGEX_UNITS_PER_WEIGHT * weight + flowc::expr::scan_cost(4),
            "{len} bytes"
        );
    }
    // the exact cost on both paths, cold and warm, at the least weight: one unit under
    // fails, the cost itself and one unit over succeed
    let base = flow();
    let mut b = bindings(&base, 0, 0, 4);
    set(&base, &mut b, "note", Value::string("abcd"));
    let p = padded(41);
    set(&base, &mut b, "patterns", list([Value::string(&p)]));
    let cond = "patterns.exists(p, note.matches(p))";
    let exact = exact_cost(cond, &mut b);
    let least = REGEX_FLOOR + 6 * REGEX_UNITS_PER_WEIGHT;
    assert!(exact > least && exact < least + 16, "{exact} vs {least}");
    for budget in [exact - 1, exact, exact + 1] {
        let f = with_budget(budget);
        let c = paths::condition(&f, cond);
        let want = if budget < exact {
            Err(RunError::budget(budget))
        } else {
            Ok(true)
        };
        for run in ["first", "again"] {
            for path in Path::BOTH {
                assert_eq!(
                    path.eval(&f, &c, &mut b),
                    want,
                    "{run}, {path}, budget {budget}"
                );
            }
        }
    }
    // under a budget below its least cost, a pattern is refused the same on both
    // paths, whatever it is (here one that does not parse)
    let f = with_budget(least - 1);
    let mut b = bindings(&f, 0, 0, 4);
    for p in [padded(41), "(".repeat(41)] {
        set(&f, &mut b, "patterns", list([Value::string(&p)]));
        both_paths(&f, &mut b, cond, &Err(RunError::budget(least - 1)));
    }
}

#[test]
fn a_pattern_matching_at_once_or_anchored_to_one_string_costs_nothing_per_subject_byte() {
    // decision 126 (probe q11e nit 2): a pattern that matches the empty string with
    // nothing asserted but `^` matches at the subject's start; `^` and one string
    // (groups looked through, short repetitions expanded) reads the prefix, one string
    // and `$` the suffix. Measured: these take the same time on 1 KB and 10 MB.
    use flowc::expr::{REGEX_AUTOMATON_WEIGHT, regex_weight};
    assert_scans(&[
        ("a*", RegexScan::AtOnce),
        ("x?", RegexScan::AtOnce),
        ("(a|bc)*", RegexScan::AtOnce),
        ("^", RegexScan::AtOnce),
        (r"\A", RegexScan::AtOnce),
        ("^a*", RegexScan::AtOnce),
        ("$", RegexScan::Suffix(0)),
        (r"\z", RegexScan::Suffix(0)),
        ("(a)$", RegexScan::Suffix(1)),
        ("(?:ab)$", RegexScan::Suffix(2)),
        ("^(a)", RegexScan::Prefix(1)),
        ("^a{2}", RegexScan::Prefix(2)),
        ("^a{1}b{2}", RegexScan::Prefix(3)),
        (r"^\Qab\E", RegexScan::Prefix(2)),
        ("^$", RegexScan::Prefix(0)),
        ("^a$", RegexScan::Prefix(1)),
        // every match starts at the subject's start and is at most n bytes long: the
        // anchored automaton reads at most n bytes (and one more), whatever the pattern
        ("^(a|b)", RegexScan::Bounded(1)),
        ("^^a", RegexScan::Bounded(1)),
        ("^a|^b", RegexScan::Bounded(1)),
        ("(?i)^a", RegexScan::Bounded(1)),
        ("^a.b", RegexScan::Bounded(6)),
        ("^[a-z]{3}", RegexScan::Bounded(3)),
        ("^(foo|bar)", RegexScan::Bounded(3)),
        ("^(a|bcd)e?", RegexScan::Bounded(4)),
        (r"^\d{4}-\d{2}", RegexScan::Bounded(7)),
        (r"^[a-z]{2}\b", RegexScan::Bounded(2)),
        ("^a$|^bc", RegexScan::Bounded(2)),
        (r"(?m)\Aa", RegexScan::Prefix(1)),
        ("^(?m:^)a", RegexScan::Bounded(1)),
        // still read by the automaton
        ("a*$", RegexScan::Automaton),
        ("^a*$", RegexScan::Automaton),
        ("(?m)^a*", RegexScan::Automaton),
        (r"\ba*", RegexScan::Automaton),
        ("^a|b", RegexScan::Automaton),
        ("a+", RegexScan::Automaton),
        ("^a.*b", RegexScan::Automaton),
        ("^(a|b*)c", RegexScan::Automaton),
        ("(?m)^a", RegexScan::Automaton),
        ("(?m)^a|^b", RegexScan::Automaton),
        ("(?:^)?a", RegexScan::Automaton),
        (r"\ba", RegexScan::Automaton),
        ("a.b$", RegexScan::Automaton),
        ("(?i)b$", RegexScan::Automaton),
    ]);
    // compiling them is weighed as before: the automaton is built all the same
    for p in ["a*", "x?", "^", "^(a)", "(a)$", "^a{2}"] {
        assert!(regex_weight(p) > REGEX_AUTOMATON_WEIGHT, "`{p}`");
    }
    let mib = 1 << 20;
    let base = flow();
    let mut big = bindings(&base, 0, 0, mib);
    let mut small = bindings(&base, 0, 0, 1);
    // (pattern, units it costs on 1 MiB beyond its cost on 1 byte, matches the 1 MiB
    // `note` of `x`s, matches the 1-byte one)
    let rows = [
        // nothing per subject byte: the exact cost is the same on 1 MiB as on 1 byte
        ("a*", 0, true, true),
        ("x?", 0, true, true),
        ("^", 0, true, true),
        ("$", 0, true, true),
        ("(x)$", 0, true, true),
        ("^(x)", 0, true, true),
        ("^x{2}", 0, true, false),
        ("^x{1}a{2}", 0, false, false),
        ("^x$", 0, false, true),
        // any other pattern anchored at the start with a longest match of n bytes: a
        // unit per byte the automaton reads, the shorter of the subject and n, so the
        // exact cost on 1 MiB is that on 1 byte plus n - 1 units (measured flat from
        // 1 KB to 10 MB, decision 126)
        ("^a|^x", 0, true, true),
        ("(?i)^X", 0, true, true),
        ("^x.x", 5, true, false),
        ("^[a-z]{3}", 2, true, false),
        ("^(foo|xx)", 2, true, false),
        (r"^\d{4}-\d{2}", 6, false, false),
        ("^(?:x|yyy)$", 2, false, true),
        ("^[a-z]{1000}", 999, true, false),
    ];
    for (pattern, more, on_big, on_small) in rows {
        // a literal pattern of the condition (compiled when the flow is built), on both
        // paths
        let cond = format!("note.matches('{}')", pattern.replace('\\', "\\\\"));
        let exact = exact_cost(&cond, &mut big);
        assert_eq!(exact, exact_cost(&cond, &mut small) + more, "`{cond}`");
        at_the_boundary(&cond, &mut big, exact, on_big);
        at_the_boundary(&cond, &mut small, exact - more, on_small);
        // read from the context: its compilation, and the same per subject byte
        assert_eq!(
            flowc::expr::regex_cost(&"x".repeat(mib), pattern),
            flowc::expr::regex_cost("x", pattern) + more,
            "`{pattern}`"
        );
        let cond = "patterns.exists(p, note.matches(p))";
        for b in [&mut big, &mut small] {
            b.set(
                base.vars().index("patterns").unwrap(),
                &Value::List(Arc::new(vec![Value::string(pattern)])),
            );
        }
        let exact = exact_cost(cond, &mut big);
        assert_eq!(exact, exact_cost(cond, &mut small) + more, "`{pattern}`");
        at_the_boundary(cond, &mut big, exact, on_big);
    }
    // patterns that make the matcher scan are still charged a unit per subject byte:
    // a 2 KiB `note` costs exactly 1,024 units more than a 1 KiB one, on both paths
    let mut two = bindings(&base, 0, 0, 2048);
    let mut one = bindings(&base, 0, 0, 1024);
    let scans = [
        ("^x.*y", false),
        ("^(y|x*)z", false),
        ("(?m)^x", true),
        ("(?m)^y", false),
        ("^y|x", true),
        ("^y|z", false),
        ("(?:^)?y", false),
        ("y.x$", false),
    ];
    for (pattern, on_both) in scans {
        let cond = format!("note.matches('{pattern}')");
        let exact = exact_cost(&cond, &mut two);
        assert_eq!(exact, exact_cost(&cond, &mut one) + 1024, "`{cond}`");
        at_the_boundary(&cond, &mut two, exact, on_both);
        at_the_boundary(&cond, &mut one, exact - 1024, on_both);
        assert_eq!(
            flowc::expr::regex_cost(&"x".repeat(2048), pattern),
            flowc::expr::regex_cost(&"x".repeat(1024), pattern) + 1024,
            "`{pattern}`"
        );
    }
}

/// A context pattern that does not compile is charged its compilation only: the
/// subject is charged (and read) only once the pattern has compiled, so `||` absorbs
/// an invalid pattern over a 200 KB subject as over a 1-byte one, at the same exact
/// cost on both paths (decision 126, probe q11f nit 7). A valid pattern is still
/// charged the subject's scan.
#[test]
fn an_invalid_context_pattern_is_charged_its_compilation_only() {
    use flowc::expr::{REGEX_FLOOR, REGEX_UNITS_PER_WEIGHT};
    let base = flow();
    let cond = "note.matches(patterns[0]) || true";
    let set = |b: &mut Bindings, p: &str| {
        b.set(
            base.vars().index("patterns").unwrap(),
            &Value::List(Arc::new(vec![Value::string(p)])),
        );
    };
    // `(` weighs its length (1): the floor and 64 units, plus what the rest of the
    // condition costs, whatever the subject's length
    let mut exacts = Vec::new();
    for note in [1, 1_000, 200_000] {
        let mut b = bindings(&base, 0, 0, note);
        set(&mut b, "(");
        let exact = exact_cost(cond, &mut b);
        at_the_boundary(cond, &mut b, exact, true);
        exacts.push(exact);
    }
    assert_eq!(exacts, [exacts[0]; 3], "{exacts:?}");
    assert!(
        exacts[0] >= REGEX_FLOOR + REGEX_UNITS_PER_WEIGHT
            && exacts[0] < REGEX_FLOOR + REGEX_UNITS_PER_WEIGHT + 8,
        "{exacts:?}"
    );
    // a valid pattern of the same weight is charged the subject's scan on top, so
    // over 200 KB it runs out of the budget
    let mut b = bindings(&base, 0, 0, 200_000);
    set(&mut b, "[x]+y");
    both_paths(&base, &mut b, cond, &Err(RunError::budget(BUDGET)));
    let mut b = bindings(&base, 0, 0, 1_000);
    set(&mut b, "[");
    assert_eq!(exact_cost(cond, &mut b), exacts[0]);
}

const KEYS_FLOW: &str = r#"
apiVersion: flowc/v1
kind: ApprovalFlow
id: keys
context:
  nums: list<int>
  m: { type: "map<string, int>" }
  o: { type: object, fields: { _1: int, a1: int } }
steps:
  - id: a
    type: approval
    assignees: { role: r }
"#;

/// `KEYS_FLOW` under a budget of `budget` units.
fn keys_flow(budget: u64) -> CompiledFlow {
    let mut limits = flowc::limits::Limits::default();
    limits.sandbox.max_operations = budget;
    paths::compile_yaml(KEYS_FLOW, &Options::new(&limits))
}

/// The least budget `cond` fits on `KEYS_FLOW` (binary search on the direct path),
/// checked on both paths: one unit less runs out on both, the cost itself fits both.
fn keys_exact_cost(cond: &str, b: &mut Bindings) -> u64 {
    let hi = paths::least_budget(keys_flow, b, cond, Path::Direct, BUDGET);
    for budget in [hi - 1, hi] {
        let f = keys_flow(budget);
        let c = f.compile_condition("t", cond).unwrap();
        let want = if budget < hi {
            Err(RunError::budget(budget))
        } else {
            Ok(true)
        };
        assert_eq!(c.eval(f.sandbox(), b), want, "direct: `{cond}`, {budget}");
        assert_eq!(
            c.eval_sandboxed(f.sandbox(), b),
            want,
            "sandbox: `{cond}`, {budget}"
        );
    }
    hi
}

/// `m["k"]` on a map with string keys costs what `m.k` costs for every key, whether
/// or not it is a Rhai identifier (`_1`, the Rhai keyword `is`, non-ASCII, a space):
/// the sandbox reads each in place (decision 127, probe q11f nit 1), and so does an
/// object's field `o._1`. Exact costs on both paths.
#[test]
fn a_literal_key_costs_what_the_field_costs_whatever_its_name() {
    let base = keys_flow(BUDGET);
    let v = base.vars();
    let mut b = Bindings::new();
    b.set(
        v.index("nums").unwrap(),
        &Value::List(Arc::new((0..1_000).map(Value::Int).collect())),
    );
    b.set(
        v.index("m").unwrap(),
        &Value::map(
            ["_1", "a1", "is", "中文", "a b"]
                .iter()
                .map(|k| (Value::string(k), Value::Int(1)))
                .collect(),
        ),
    );
    b.set(
        v.index("o").unwrap(),
        &Value::map(
            ["_1", "a1"]
                .iter()
                .map(|k| (Value::string(k), Value::Int(1)))
                .collect(),
        ),
    );
    // 5 units an element (the step's unit and the body's four nodes: `==`, the
    // field, its map, `1`), 1,000 elements
    for cond in [
        "nums.all(x, m.a1 == 1)",
        "nums.all(x, m._1 == 1)",
        r#"nums.all(x, m["a1"] == 1)"#,
        r#"nums.all(x, m["_1"] == 1)"#,
        r#"nums.all(x, m["is"] == 1)"#,
        r#"nums.all(x, m["中文"] == 1)"#,
        r#"nums.all(x, m["a b"] == 1)"#,
        "nums.all(x, o.a1 == 1)",
        "nums.all(x, o._1 == 1)",
    ] {
        assert_eq!(keys_exact_cost(cond, &mut b), 5_000, "{cond}");
    }
}
