//! The whole pipeline on arbitrary bytes: load, schema, model, conditions, graph, codegen.
//! Run on stable: `cargo fuzz run -s none compile`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = flowc::compile::Options::default();
    let _ = flowc::compile::check_many(vec![("fuzz.yaml".to_owned(), data.to_vec())], &opts);
});
