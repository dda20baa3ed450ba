//! A type-directed random expression generator over the whole supported CEL subset:
//! every generated expression is well typed, so it must type-check and compile, and
//! both evaluation paths (the direct form and the sandboxed Rhai program) must give the
//! same value or the same kind of error on random contexts.
//!
//! Proptest draws a seed per case; the expression and the contexts are built from it
//! by the small deterministic generator of `tests/support/generator.rs`, which `cargo fuzz`
//! runs too (`fuzz/fuzz_targets/expr_gen.rs`). A failure prints the expression and the
//! context, which is what a regression case in `tests/fixtures/expr/cases.txt` needs.
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
    pub mod generator;
}

use std::sync::atomic::Ordering;

use proptest::prelude::*;
use support::generator::{
    ALL, CASES, CONTEXTS, DIRECT, ERRORS, LIMITS, PARTS, REFUSED, SPENT, UNSIZED,
    run_condition_case, run_unsized_case, run_value_case,
};

fn cases() -> u32 {
    std::env::var("EXPR_GEN_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000)
}

proptest! {
    // CI-sized: 2 × 50,000 expressions a run (fresh seeds each run), each on 4 contexts;
    // `EXPR_GEN_CASES=N` sets the count per test; `cargo fuzz run expr_gen` runs
    // the same cases, guided by coverage, for as long as it is left to
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    /// Every well-typed generated expression of every type checks, compiles, and gives
    /// the same value (or error kind) on both paths.
    #[test]
    fn generated_expressions_agree_on_both_paths(seed in any::<u64>(), which in 0usize..ALL.len()) {
        run_value_case(seed, ALL[which]).map_err(TestCaseError::fail)?;
    }

    /// Generated conditions through the compiler's `Condition`: `eval` (direct where it
    /// can, else the program) and `eval_sandboxed` agree.
    #[test]
    fn generated_conditions_agree_on_both_paths(seed in any::<u64>()) {
        run_condition_case(seed).map_err(TestCaseError::fail)?;
    }
}

proptest! {
    // a fifth of the count: each case binds two huge contexts
    #![proptest_config(ProptestConfig { cases: cases() / 5, failure_persistence: None, ..ProptestConfig::default() })]

    /// What the cost model says is not charged by size is not, on either path.
    #[test]
    fn expressions_not_charged_by_size_run_within_no_budget(seed in any::<u64>(), which in 0usize..ALL.len()) {
        run_unsized_case(seed, ALL[which]).map_err(TestCaseError::fail)?;
    }
}

/// The generator reaches the direct path and run-time errors often enough to matter.
#[test]
fn the_generator_covers_both_paths_and_errors() {
    for seed in 0..400u64 {
        let g = ALL[(seed % ALL.len() as u64) as usize];
        run_value_case(seed.wrapping_mul(0x9E37_79B9), g).unwrap();
    }
    let cases = CASES.load(Ordering::Relaxed);
    let direct = DIRECT.load(Ordering::Relaxed);
    let errors = ERRORS.load(Ordering::Relaxed);
    let refused = REFUSED.load(Ordering::Relaxed);
    assert!(cases + refused >= 400, "{cases} + {refused}");
    // refused as a whole: such an expression only checks that every context fails
    assert!(
        refused * 20 <= cases,
        "{refused} refused by check in {cases}"
    );
    // refused for a failing part (`b || duration("bad") > d`): each still runs on both
    // paths and is compared like any other, so these count as cases; the generator
    // reaches them (1 of the 400 cases here: `parts > 0` is what can fail), without
    // most cases being refused
    let parts = PARTS.load(Ordering::Relaxed);
    assert!(
        parts > 0 && parts * 5 <= cases,
        "{parts} refused for a failing part in {cases}"
    );
    assert_eq!(
        direct, cases,
        "every generated expression has a direct form (the lowering is total)"
    );
    assert!(
        errors * 50 >= cases * CONTEXTS,
        "only {errors} run-time errors in {} evaluations",
        cases * CONTEXTS
    );
    // the tight flow's bounds are reached (a third of the cases run on it)
    let limits = LIMITS.load(Ordering::Relaxed);
    assert!(
        limits * 200 >= cases * CONTEXTS,
        "only {limits} bounds reached in {} evaluations",
        cases * CONTEXTS
    );
    // and small budgets run out (a sixth of the cases run under one)
    let spent = SPENT.load(Ordering::Relaxed);
    assert!(
        spent * 200 >= cases * CONTEXTS,
        "only {spent} budgets ran out in {} evaluations",
        cases * CONTEXTS
    );
}

/// The drift test sees expressions of every kind that are not charged by size (so it
/// can fail), and runs them on huge contexts.
#[test]
fn the_unsized_cases_are_many() {
    for seed in 0..400u64 {
        let g = ALL[(seed % ALL.len() as u64) as usize];
        run_unsized_case(seed.wrapping_mul(0x9E37_79B9), g).unwrap();
    }
    let n = UNSIZED.load(Ordering::Relaxed);
    assert!(
        n >= 100,
        "only {n} of 400 generated expressions are not charged by size"
    );
}
