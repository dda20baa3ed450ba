//! `flowc history FLOW` against a real etcd: the library's `source::etcd::history` for a
//! flow with 10 and with 200 versions (each with a few deletions of its key, which the
//! history lists), beside `store::etcd::read_history` (the entries alone, no deletions
//! and no diffs) as the floor.
//!
//! Runs against `FLOWC_ETCD` when set (an empty tenant is used), else starts its own
//! `etcd` (see `common`).
//!
//! `cargo bench --features etcd --bench history`
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

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use etcd_client::Client;
use flowc::compile::Options;
use flowc::source::etcd::{self, HistoryEvent, PublishRequest};
use flowc::store::etcd::{Tenant, read_history};

/// Version `n` of flow `id`: five approval steps, the name tells versions apart.
fn flow(id: &str, n: usize) -> Vec<u8> {
    let mut s = format!(
        "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: {id}\nname: version {n}\ncontext: {{ amount: double }}\nsteps:\n"
    );
    for i in 0..5 {
        s.push_str(&format!(
            "  - id: step-{i}\n    type: approval\n    assignees: {{ role: role-{i} }}\n"
        ));
    }
    s.into_bytes()
}

async fn publish(client: &mut Client, tenant: &Tenant, id: &str, n: usize) -> u64 {
    etcd::publish(
        client,
        tenant,
        &Options::default(),
        &PublishRequest {
            name: "bench.yaml",
            source: &flow(id, n),
            expect_revision: None,
            author: Some("bench".to_owned()),
            message: Some("TICKET-1".to_owned()),
        },
    )
    .await
    .unwrap_or_else(|e| panic!("publish: {e:?}"))
    .version
    .revision
}

/// `versions` versions of `id`, its key deleted after every `delete_every`-th one (and
/// published again); another flow's versions interleaved, so its revisions have gaps.
async fn make(
    client: &mut Client,
    tenant: &Tenant,
    id: &str,
    versions: usize,
    delete_every: usize,
) {
    for n in 1..=versions {
        let revision = publish(client, tenant, id, n).await;
        publish(client, tenant, &format!("{id}-other"), n).await;
        if n % delete_every == 0 && n < versions {
            etcd::delete(client, tenant, id, revision).await.unwrap();
        }
    }
}

fn bench(c: &mut Criterion) {
    let (_server, url) = common::etcd("history");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tenant = Tenant::new("/flowc-bench", &format!("h{}", std::process::id())).unwrap();
    let options = Options::default();
    let client = rt.block_on(async {
        let (_, mut client) = common::connect(&url).await;
        make(&mut client, &tenant, "ten", 10, 4).await;
        make(&mut client, &tenant, "two-hundred", 200, 50).await;
        client
    });
    let mut g = c.benchmark_group("history");
    g.sample_size(20);
    for (id, versions, deletions) in [("ten", 10, 2), ("two-hundred", 200, 3)] {
        // what is timed is what it claims to be
        let items = rt
            .block_on(etcd::history(&mut client.clone(), &tenant, &options, id))
            .unwrap();
        let count = |want: &HistoryEvent| items.iter().filter(|i| &i.event == want).count();
        assert_eq!(count(&HistoryEvent::Version), versions);
        assert_eq!(count(&HistoryEvent::Deleted), deletions);
        g.bench_function(format!("history/{versions}-versions"), |b| {
            b.iter(|| {
                let mut client = client.clone();
                black_box(
                    rt.block_on(etcd::history(&mut client, &tenant, &options, id))
                        .unwrap(),
                )
            });
        });
        g.bench_function(format!("read_history/{versions}-versions"), |b| {
            b.iter(|| {
                let mut client = client.clone();
                black_box(rt.block_on(read_history(&mut client, &tenant, id)).unwrap())
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
