//! Publish-to-swap propagation through etcd: 1,000 publishes of a 20-step flow, each timed
//! from the publisher's write (its wall-clock time, written into the flow's metadata in
//! the same transaction) to the moment the last of three watching registries swapped.
//! Prints a markdown table (for BENCHMARKS.md).
//!
//! Runs against `FLOWC_ETCD` when set (an empty tenant is used), else starts its own
//! `etcd` on free loopback ports with a temporary data dir and stops it by PID.
//!
//! `cargo bench --features etcd --bench propagation`
#![allow(
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "benchmark code: failing loudly is the point"
)]

mod common;

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use flowc::compile::Options;
use flowc::registry::Registry;
use flowc::source::etcd::{self, PublishRequest, WatchConfig, WatchEvent, watch};
use flowc::store::etcd::Tenant;

const PUBLISHES: usize = 1000;
const WATCHERS: usize = 3;
const STEPS: usize = 20;

fn flow(n: usize) -> Vec<u8> {
    let mut s = format!(
        "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: bench\nname: version {n}\ncontext: {{ amount: double }}\nsteps:\n"
    );
    for i in 0..STEPS {
        s.push_str(&format!(
            "  - id: step-{i}\n    type: approval\n    assignees: {{ role: role-{i} }}\n"
        ));
    }
    s.into_bytes()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let (_server, url) = common::etcd("propagation");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (conn, mut client) = common::connect(&url).await;
        let tenant = Tenant::new("/flowc-bench", &format!("t{}", std::process::id())).unwrap();
        let (tx, rx) = mpsc::channel::<(u64, Duration)>();
        let mut watchers = Vec::new();
        for _ in 0..WATCHERS {
            let tx = tx.clone();
            let w = watch(
                Arc::new(Registry::default()),
                WatchConfig::new(conn.clone(), tenant.clone()),
                move |e| {
                    if let WatchEvent::Publish {
                        version,
                        latency: Some(l),
                    } = e
                    {
                        let _ = tx.send((version.revision, *l));
                    }
                },
            )
            .unwrap();
            watchers.push(w);
        }
        let until = Instant::now() + Duration::from_secs(20);
        while !watchers.iter().all(etcd::EtcdWatch::is_connected) {
            assert!(Instant::now() < until, "watchers did not connect");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let sources: Vec<Vec<u8>> = (0..PUBLISHES).map(flow).collect();
        let mut all = Vec::with_capacity(PUBLISHES);
        let started = Instant::now();
        for src in &sources {
            let published = etcd::publish(
                &mut client,
                &tenant,
                &Options::default(),
                &PublishRequest {
                    name: "bench.yaml",
                    source: src,
                    expect_revision: None,
                    author: None,
                    message: None,
                },
            )
            .await
            .unwrap_or_else(|e| panic!("publish: {e:?}"));
            let mut slowest = Duration::ZERO;
            let mut seen = 0;
            while seen < WATCHERS {
                let (rev, l) = tokio::task::block_in_place(|| {
                    rx.recv_timeout(Duration::from_secs(10))
                        .expect("every watcher swaps within 10 s")
                });
                if rev == published.version.revision {
                    seen += 1;
                    slowest = slowest.max(l);
                }
            }
            all.push(slowest);
        }
        let total = started.elapsed();
        all.sort();
        println!(
            "| flow | publishes | watchers | P50 | P99 | P999 | max |\n|---|---|---|---|---|---|---|"
        );
        println!(
            "| {STEPS} steps | {PUBLISHES} | {WATCHERS} | {} | {} | {} | {} |",
            ms(percentile(&all, 0.50)),
            ms(percentile(&all, 0.99)),
            ms(percentile(&all, 0.999)),
            ms(*all.last().unwrap()),
        );
        println!(
            "\nTime from the publisher's write (its wall clock, in the transaction) to the last of {WATCHERS} watching registries having swapped; {PUBLISHES} sequential publishes in {:.1} s.",
            total.as_secs_f64()
        );
        for w in watchers {
            w.stop().await;
        }
    });
}
