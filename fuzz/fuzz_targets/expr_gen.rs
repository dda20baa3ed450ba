//! The differential test of the two evaluation paths, guided by coverage: the
//! type-directed expression generator of `tests/support/generator.rs` (the one the CI-sized
//! proptest runs use) builds a well-typed expression and its contexts from the input's
//! seed, and the direct evaluator and the sandboxed Rhai program must give the same
//! value or the same kind of error on each; a condition must agree through the
//! compiler's `Condition` too, and an expression the cost model says is not charged by
//! size must run within a budget of nothing on huge contexts.
//! Run on stable: `cargo fuzz run -s none expr_gen`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/generator.rs"]
mod generator;

use generator::{ALL, run_condition_case, run_unsized_case, run_value_case};

fuzz_target!(|data: &[u8]| {
    // the first 8 bytes are the seed, the next picks the type generated
    let Some((seed, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let seed = u64::from_le_bytes(*seed);
    let which = usize::from(rest.first().copied().unwrap_or(0)) % ALL.len();
    let g = ALL[which];
    let outcome = match rest.get(1).copied().unwrap_or(0) % 3 {
        0 => run_value_case(seed, g),
        1 => run_condition_case(seed),
        _ => run_unsized_case(seed, g),
    };
    if let Err(why) = outcome {
        panic!("{why}");
    }
});
