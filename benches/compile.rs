//! Compile throughput: 1,000 example-sized flows, on one thread and on all cores.
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

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowc::compile::{Options, check_many, compile};
use flowc::load::source_from_bytes;

/// 1,000 flows made from the examples with distinct ids.
pub fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut examples: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("examples")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| flowc::source::is_flow_file(p))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read");
            (
                p.file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("x")
                    .to_owned(),
                text,
            )
        })
        .collect();
    examples.sort();
    (0..1000)
        .map(|i| {
            let (stem, text) = &examples[i % examples.len()];
            let text = text.replacen(&format!("id: {stem}"), &format!("id: {stem}-{i}"), 1);
            (format!("gen/{stem}-{i}.yaml"), text.into_bytes())
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let files = corpus();
    let opts = Options::default();
    let mut g = c.benchmark_group("compile-1000");
    g.throughput(Throughput::Elements(files.len() as u64));
    g.sample_size(10);
    g.bench_function("single-thread", |b| {
        b.iter(|| {
            for (name, bytes) in &files {
                let f = source_from_bytes(name, bytes.clone()).expect("utf8");
                black_box(compile(&f, &opts).expect("compiles"));
            }
        });
    });
    g.bench_function("all-cores", |b| {
        b.iter(|| {
            let d = check_many(files.clone(), &opts);
            assert!(d.is_empty());
            black_box(d)
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
