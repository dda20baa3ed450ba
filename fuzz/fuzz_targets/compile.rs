//! The whole pipeline on arbitrary bytes: load, schema, model, conditions, graph, codegen.
//! Run on stable: `cargo fuzz run -s none compile`.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    static OPTS: OnceLock<flowc::compile::Options> = OnceLock::new();
    let opts = OPTS.get_or_init(flowc::compile::Options::default);
    if let Ok(file) = flowc::load::source_from_bytes("fuzz.yaml", data.to_vec()) {
        let _ = flowc::compile::compile(&file, opts);
    }
});
