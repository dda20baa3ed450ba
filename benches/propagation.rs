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

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use flowc::compile::Options;
use flowc::registry::Registry;
use flowc::source::etcd::{self, Connection, PublishRequest, WatchConfig, WatchEvent, watch};
use flowc::store::etcd::Tenant;

const PUBLISHES: usize = 1000;
const WATCHERS: usize = 3;
const STEPS: usize = 20;

struct Server {
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_etcd() -> (Server, String) {
    let dir = std::env::temp_dir().join(format!("flowc-bench-etcd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (client, peer) = (free_port(), free_port());
    let url = format!("http://127.0.0.1:{client}");
    let peer = format!("http://127.0.0.1:{peer}");
    let child = Command::new("etcd")
        .args(["--name", "bench", "--data-dir"])
        .arg(dir.join("data"))
        .args([
            "--listen-client-urls",
            &url,
            "--advertise-client-urls",
            &url,
        ])
        .args([
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
        ])
        .args(["--initial-cluster", &format!("bench={peer}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("etcd on PATH (Debian: etcd-server), or FLOWC_ETCD");
    (Server { child, dir }, url)
}

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
    let (_server, url) = match std::env::var("FLOWC_ETCD") {
        Ok(u) => (None, u),
        Err(_) => {
            let (s, u) = start_etcd();
            (Some(s), u)
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let conn = Connection::new(url.split(',').map(str::to_owned).collect());
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut client = loop {
            if let Ok(mut c) = conn.connect().await
                && c.get("x", None).await.is_ok()
            {
                break c;
            }
            assert!(Instant::now() < deadline, "etcd did not come up at {url}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
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
