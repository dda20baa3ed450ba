//! etcd as the fleet's source, against a real `etcd` (Debian's etcd-server) that each
//! test starts on free loopback ports with a temporary data dir and stops by PID. When
//! `etcd` is not on PATH the tests are skipped with a message, unless `CI=true` (then
//! they fail).
#![cfg(feature = "etcd")]
#![allow(
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "test code: failing loudly is the point"
)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{Client, GetOptions};
use flowc::compile::{Options, VersionId};
use flowc::registry::Registry;
use flowc::runtime::{Event, InstanceState};
use flowc::source::etcd::{
    self, Connection, EtcdError, EtcdStore, EtcdWatch, HistoryEvent, PublishError, PublishRequest,
    RollbackRequest, Snapshot, WatchConfig, WatchEvent, watch,
};
use flowc::store::etcd::Tenant;
use serde_json::json;

// ---------------------------------------------------------------- harness

/// A fresh directory under the system temp dir (removed on drop).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "flowc-etcd-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn have_etcd() -> bool {
    let found = Command::new("etcd")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "etcd is not on PATH and CI=true: install etcd-server"
        );
        eprintln!("skipped: etcd is not on PATH (install Debian's etcd-server)");
    }
    found
}

/// TLS files for a server started with client-certificate authentication.
struct Tls {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
}

/// One etcd server; killed (by PID) on drop.
struct Etcd {
    child: Option<Child>,
    dir: TempDir,
    client_port: u16,
    peer_port: u16,
    tls: Option<Tls>,
    /// More etcd flags (`--auth-token-ttl 2`).
    extra: Vec<String>,
}

impl Etcd {
    fn start() -> Etcd {
        Self::start_with(None, TempDir::new("data"))
    }

    fn start_with(tls: Option<Tls>, dir: TempDir) -> Etcd {
        let mut e = Self::unstarted(tls, dir);
        e.spawn();
        e
    }

    /// Its ports chosen, not yet running (`spawn` starts it).
    fn unstarted(tls: Option<Tls>, dir: TempDir) -> Etcd {
        Etcd {
            child: None,
            dir,
            client_port: free_port(),
            peer_port: free_port(),
            tls,
            extra: Vec::new(),
        }
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme(), self.client_port)
    }

    fn spawn(&mut self) {
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let url = self.url();
        let log = std::fs::File::create(self.dir.0.join("etcd.log")).unwrap();
        let mut cmd = Command::new("etcd");
        cmd.args(["--name", "flowc-test", "--data-dir"])
            .arg(self.dir.0.join("data"))
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
            .args(["--initial-cluster", &format!("flowc-test={peer}")])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(t) = &self.tls {
            cmd.arg("--cert-file")
                .arg(&t.server_cert)
                .arg("--key-file")
                .arg(&t.server_key)
                .arg("--trusted-ca-file")
                .arg(&t.ca)
                .arg("--client-cert-auth");
        }
        self.child = Some(cmd.spawn().unwrap());
        if self.tls.is_none() {
            self.wait_healthy();
        }
    }

    /// Waits (bounded) until the server answers a read.
    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = self.url();
        // its own runtime on its own thread: callers may be inside a runtime
        let probe = move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let c = Connection::new(vec![url.clone()]);
                let Ok(mut client) = c.connect().await else {
                    return false;
                };
                tokio::time::timeout(Duration::from_millis(500), client.get("health", None))
                    .await
                    .is_ok_and(|r| r.is_ok())
            })
        };
        loop {
            let p = probe.clone();
            let ok = std::thread::spawn(p).join().unwrap();
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd did not become healthy: {}",
                std::fs::read_to_string(self.dir.0.join("etcd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server by PID (SIGKILL) and waits for it.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again: the same data dir and ports.
    fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Restores `backup` (made by `etcdctl snapshot save`) with `etcdctl snapshot
    /// restore` into a fresh data dir and starts it there: the same member name, peer
    /// URL and cluster token, so the same cluster id and client address.
    fn restore(&mut self, backup: &Path) {
        self.kill();
        let dir = TempDir::new("data-restored");
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["snapshot", "restore"])
            .arg(backup)
            .arg("--data-dir")
            .arg(dir.0.join("data"))
            .args(["--name", "flowc-test"])
            .args(["--initial-cluster", &format!("flowc-test={peer}")])
            .args(["--initial-advertise-peer-urls", &peer])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "etcdctl snapshot restore: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.dir = dir;
        self.spawn();
    }

    fn connection(&self) -> Connection {
        let mut c = Connection::new(vec![self.url()]);
        c.connect_timeout = Duration::from_secs(2);
        c
    }

    /// Sends the server process a signal by PID (`-STOP`, `-CONT`).
    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        assert!(
            Command::new("kill")
                .args([signal, &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    async fn client(&self) -> Client {
        self.connection().connect().await.unwrap()
    }

    fn etcdctl(&self, args: &[&str]) -> std::process::Output {
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.url()))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "etcdctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `cond` every 5 ms until it holds; fails after `secs` seconds.
async fn until(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn tenant(name: &str) -> Tenant {
    Tenant::new("/flowc", name).unwrap()
}

/// Version `n` of flow `id`: `steps` approvals, the name tells versions apart.
fn flow(id: &str, n: usize) -> Vec<u8> {
    format!(
        "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: {id}\nname: version {n}\ncontext: {{ amount: double }}\nsteps:\n  - id: manager\n    type: approval\n    assignees: {{ role: manager }}\n  - id: finance\n    type: approval\n    assignees: {{ role: finance }}\n"
    )
    .into_bytes()
}

async fn publish(client: &mut Client, t: &Tenant, src: &[u8], expect: Option<u64>) -> VersionId {
    etcd::publish(
        client,
        t,
        &Options::default(),
        &PublishRequest {
            name: "flow.yaml",
            source: src,
            expect_revision: expect,
            author: Some("alice".to_owned()),
            message: Some("TICKET-1".to_owned()),
        },
    )
    .await
    .unwrap_or_else(|e| panic!("publish: {e:?}"))
    .version
}

/// A watcher with its registry and the events it reported.
struct Watcher {
    registry: Arc<Registry>,
    events: Arc<Mutex<Vec<WatchEvent>>>,
    handle: EtcdWatch,
}

impl Watcher {
    fn start(conn: Connection, t: &Tenant, snapshot: Option<&Path>) -> Watcher {
        let registry = Arc::new(Registry::default());
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        let mut config = WatchConfig::new(conn, t.clone());
        config.snapshot = snapshot.map(Path::to_path_buf);
        let handle = watch(Arc::clone(&registry), config, move |e| {
            sink.lock().unwrap().push(e.clone());
        })
        .unwrap();
        Watcher {
            registry,
            events,
            handle,
        }
    }

    fn active(&self, flow: &str) -> Option<VersionId> {
        self.registry.active(flow).map(|f| f.version().clone())
    }

    fn has(&self, v: &VersionId) -> bool {
        self.active(&v.flow).as_ref() == Some(v)
    }

    fn count(&self, name: &str) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.name() == name)
            .count()
    }

    /// What `pick` takes from each event received so far, in order.
    fn events_of<T>(&self, pick: impl FnMut(&WatchEvent) -> Option<T>) -> Vec<T> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(pick)
            .collect()
    }

    /// The messages of the warnings received so far.
    fn warnings(&self) -> Vec<String> {
        self.events_of(|e| match e {
            WatchEvent::Warning { message } => Some(message.clone()),
            _ => None,
        })
    }

    fn published_revisions(&self, flow: &str) -> Vec<u64> {
        self.events_of(|e| match e {
            WatchEvent::Publish { version, .. } if version.flow == flow => Some(version.revision),
            _ => None,
        })
    }
}

fn code(e: &dyn miette::Diagnostic) -> String {
    e.code().map(|c| c.to_string()).unwrap_or_default()
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_watchers_of_one_tenant_converge_on_every_publish() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let t = tenant("acme");
    let ws: Vec<Watcher> = (0..3)
        .map(|_| Watcher::start(server.connection(), &t, None))
        .collect();
    let mut client = server.client().await;
    for n in 1..=5 {
        let v = publish(&mut client, &t, &flow("leave", n), None).await;
        let other = publish(&mut client, &t, &flow("expense", n), None).await;
        until("every watcher swapped", 10, || {
            ws.iter().all(|w| w.has(&v) && w.has(&other))
        })
        .await;
        // the version is named by the key's mod revision in every process
        let got = client.get(t.flow_key("leave"), None).await.unwrap();
        assert_eq!(got.kvs()[0].mod_revision() as u64, v.revision);
    }
    for w in &ws {
        assert_eq!(w.published_revisions("leave").len(), 5);
        assert!(w.handle.is_connected());
        assert_eq!(w.count("reject"), 0);
        // the publisher's metadata arrived: publish-to-swap latency was measured
        assert!(w.events.lock().unwrap().iter().any(|e| matches!(
            e,
            WatchEvent::Publish {
                latency: Some(_),
                ..
            }
        )));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cas_conflict_is_refused_and_nothing_is_overwritten() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let t = tenant("acme");
    let mut client = server.client().await;
    let v1 = publish(&mut client, &t, &flow("leave", 1), Some(0)).await;
    let v2 = publish(&mut client, &t, &flow("leave", 2), Some(v1.revision)).await;
    // a second editor still based on v1
    let err = etcd::publish(
        &mut client,
        &t,
        &Options::default(),
        &PublishRequest {
            name: "flow.yaml",
            source: &flow("leave", 3),
            expect_revision: Some(v1.revision),
            author: None,
            message: None,
        },
    )
    .await
    .unwrap_err();
    let PublishError::Etcd(e) = err else {
        panic!("expected a conflict, got {err:?}")
    };
    assert_eq!(code(&e), "flowc::source::etcd-conflict");
    assert!(
        matches!(e, EtcdError::Conflict { expected, found, .. } if expected == v1.revision && found == v2.revision),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("expected revision {}", v1.revision)),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("etcd has revision {}", v2.revision)),
        "{msg}"
    );
    let got = client.get(t.flow_key("leave"), None).await.unwrap();
    assert_eq!(got.kvs()[0].value(), flow("leave", 2).as_slice());
    assert_eq!(got.kvs()[0].mod_revision() as u64, v2.revision);
    // creating a flow that exists (expect 0) is a conflict as well
    let again = etcd::publish(
        &mut client,
        &t,
        &Options::default(),
        &PublishRequest {
            name: "flow.yaml",
            source: &flow("leave", 4),
            expect_revision: Some(0),
            author: None,
            message: None,
        },
    )
    .await;
    assert!(matches!(
        again,
        Err(PublishError::Etcd(EtcdError::Conflict { expected: 0, .. }))
    ));

    // the CLI: exit 1, naming both revisions; a flow with errors is refused before etcd
    let dir = TempDir::new("cli");
    let file = dir.0.join("leave.yaml");
    std::fs::write(&file, flow("leave", 5)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_flowc"))
        .arg("publish")
        .arg(&file)
        .args(["--etcd", &server.url(), "--tenant", "acme"])
        .args(["--expect-revision", &v1.revision.to_string()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "expected revision {}, etcd has revision {}",
            v1.revision, v2.revision
        )),
        "{stderr}"
    );
    std::fs::write(
        &file,
        b"apiVersion: flowc/v1\nkind: ApprovalFlow\nid: leave\nsteps: [ { id: boss\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_flowc"))
        .arg("publish")
        .arg(&file)
        .args(["--etcd", &server.url(), "--tenant", "acme"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing published"));
    let got = client.get(t.flow_key("leave"), None).await.unwrap();
    assert_eq!(got.kvs()[0].mod_revision() as u64, v2.revision);
    // and a good one goes through, printing its revision
    std::fs::write(&file, flow("leave", 6)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_flowc"))
        .arg("publish")
        .arg(&file)
        .env("FLOWC_ETCD", server.url())
        .args(["--tenant", "acme", "--message", "TICKET-6"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("(was revision {})", v2.revision)),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_restores_the_old_content_at_every_watcher() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let t = tenant("acme");
    let ws: Vec<Watcher> = (0..3)
        .map(|_| Watcher::start(server.connection(), &t, None))
        .collect();
    let mut client = server.client().await;
    let v1 = publish(&mut client, &t, &flow("leave", 1), None).await;
    let v2 = publish(&mut client, &t, &flow("leave", 2), None).await;
    until("v2 everywhere", 10, || ws.iter().all(|w| w.has(&v2))).await;
    let back = etcd::rollback(
        &mut client,
        &t,
        &Options::default(),
        RollbackRequest {
            flow: "leave",
            to: v1.revision,
            expect_revision: None,
            author: Some("bob".to_owned()),
            message: None,
        },
    )
    .await
    .unwrap()
    .written()
    .unwrap();
    assert_eq!(back.version.hash, v1.hash);
    assert!(back.version.revision > v2.revision);
    assert_eq!(back.previous, v2.revision);
    until("the rollback everywhere", 10, || {
        ws.iter().all(|w| w.has(&back.version))
    })
    .await;
    let got = client.get(t.flow_key("leave"), None).await.unwrap();
    assert_eq!(got.kvs()[0].value(), flow("leave", 1).as_slice());

    // an unknown revision is refused
    assert_eq!(
        rollback_refused(&mut client, &t, "leave", 999_999).await,
        "flowc::source::etcd-unknown-revision"
    );

    // the history: three versions, the rollback's message, diffs from the previous one
    let h = etcd::history(&mut client, &t, &Options::default(), "leave")
        .await
        .unwrap();
    let revs: Vec<u64> = h.iter().map(|i| i.revision).collect();
    assert_eq!(revs, [v1.revision, v2.revision, back.version.revision]);
    assert_eq!(h[0].author.as_deref(), Some("alice"));
    assert_eq!(h[0].message.as_deref(), Some("TICKET-1"));
    assert_eq!(
        h[2].message.as_deref(),
        Some(format!("rollback to revision {}", v1.revision).as_str())
    );
    assert!(h[0].diff.is_none());
    let d = h[1].diff.as_ref().unwrap();
    assert_eq!(d.flow.len(), 1, "{d:?}");
    assert_eq!(d.flow[0].new.as_deref(), Some("version 2"));
    // the CLI's JSON
    let out = Command::new(env!("CARGO_BIN_EXE_flowc"))
        .args([
            "history",
            "leave",
            "--etcd",
            &server.url(),
            "--tenant",
            "acme",
        ])
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    for key in ["revision", "hash", "author", "message", "time", "diff"] {
        assert!(list[1].get(key).is_some(), "{key} missing: {}", list[1]);
    }
    assert_eq!(list[2]["hash"], json!(v1.hash));
    assert_eq!(list[2]["author"], json!("bob"));
    // a flow id never published (a typo) is not a success, in either format
    for format in ["human", "json"] {
        let out = Command::new(env!("CARGO_BIN_EXE_flowc"))
            .args([
                "history",
                "leaev",
                "--etcd",
                &server.url(),
                "--tenant",
                "acme",
            ])
            .args(["--format", format])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{format}: {stderr}");
        if format == "json" {
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
        } else {
            assert!(
                stderr.contains("no history for `leaev` in tenant `acme`"),
                "{stderr}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_tenants_keys_never_appear() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let (a, b) = (tenant("acme"), tenant("acme-eu"));
    let w = Watcher::start(server.connection(), &a, None);
    let mut client = server.client().await;
    let mine = publish(&mut client, &a, &flow("leave", 1), None).await;
    publish(&mut client, &b, &flow("leave", 2), None).await;
    publish(&mut client, &b, &flow("travel", 1), None).await;
    // a key of the other tenant that sorts inside this tenant's range by a prefix trick
    server.etcdctl(&["put", "/flowc/acme/flowsx", "not a flow"]);
    server.etcdctl(&["put", "/flowc/acme-eu/flows/leave", "broken: ["]);
    let last = publish(&mut client, &a, &flow("expense", 1), None).await;
    until("this tenant's flows", 10, || w.has(&mine) && w.has(&last)).await;
    assert_eq!(w.registry.flows(), ["expense", "leave"]);
    assert!(w.has(&mine));
    assert_eq!(w.count("reject"), 0);
    assert!(w.handle.rejections().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_killed_mid_stream_and_restarted_loses_no_update() {
    if !have_etcd() {
        return;
    }
    let mut server = Etcd::start();
    let t = tenant("acme");
    let ws: Vec<Watcher> = (0..2)
        .map(|_| Watcher::start(server.connection(), &t, None))
        .collect();
    let mut published = Vec::new();
    {
        let mut client = server.client().await;
        for n in 1..=6 {
            published.push(publish(&mut client, &t, &flow("leave", n), None).await);
        }
    }
    // killed right after the last write: the watchers may not have seen all of it
    server.kill();
    until("both watchers noticed", 10, || {
        ws.iter().all(|w| w.count("disconnected") > 0)
    })
    .await;
    server.restart();
    let mut client = server.client().await;
    for n in 7..=10 {
        published.push(publish(&mut client, &t, &flow("leave", n), None).await);
    }
    let last = published.last().unwrap().clone();
    until("the last version everywhere", 15, || {
        ws.iter().all(|w| w.has(&last))
    })
    .await;
    let want: Vec<u64> = published.iter().map(|v| v.revision).collect();
    for w in &ws {
        // every single update was applied, in order, none twice
        let got = w.published_revisions("leave");
        let after_kill: Vec<u64> = got.iter().copied().filter(|r| *r > want[5]).collect();
        assert_eq!(
            after_kill,
            want[6..],
            "events: {:?}",
            w.events.lock().unwrap()
        );
        assert!(got.windows(2).all(|p| p[0] < p[1]), "{got:?}");
        assert!(got.contains(&want[5]), "{got:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_past_a_paused_watchers_revision_resyncs_correctly() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let t = tenant("acme");
    let w = Watcher::start(server.connection(), &t, None);
    let mut client = server.client().await;
    let a1 = publish(&mut client, &t, &flow("leave", 1), None).await;
    let b1 = publish(&mut client, &t, &flow("travel", 1), None).await;
    until("both flows", 10, || w.has(&a1) && w.has(&b1)).await;
    w.handle.pause();
    until("paused", 10, || !w.handle.is_connected()).await;
    let paused_at = w.handle.revision().unwrap();
    let a2 = publish(&mut client, &t, &flow("leave", 2), None).await;
    let deleted = etcd::delete(&mut client, &t, "travel", b1.revision)
        .await
        .unwrap();
    let c1 = publish(&mut client, &t, &flow("expense", 1), None).await;
    let now = client
        .get("x", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    client.compact(now, None).await.unwrap();
    assert!(paused_at < deleted);
    // nothing moved while paused
    assert!(w.has(&a1) && w.has(&b1));
    let before = w.events.lock().unwrap().len();
    w.handle.resume();
    // the flows swap before the watcher records the revision it reached
    until("resynced", 10, || {
        w.has(&a2)
            && w.has(&c1)
            && w.active("travel").is_none()
            && w.handle.revision().is_some_and(|r| r >= now as u64)
    })
    .await;
    assert_eq!(w.count("resync"), 1);
    let events = w.events.lock().unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, WatchEvent::Retire { flow, .. } if flow == "travel")),
        "{events:?}"
    );
    // the resync comes first, then the changes it brought
    let names: Vec<&str> = events.iter().map(WatchEvent::name).collect();
    let resync = names.iter().position(|n| *n == "resync").unwrap();
    let changes: Vec<&str> = names[resync..]
        .iter()
        .copied()
        .filter(|n| *n != "connected")
        .collect();
    assert_eq!(
        changes,
        ["resync", "publish", "publish", "retire"],
        "{events:?}"
    );
    // one connection, one report: the resync is no second first contact
    assert_eq!(
        names[before..]
            .iter()
            .filter(|n| **n == "connected")
            .count(),
        1,
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_started_with_etcd_down_serves_its_snapshot_then_catches_up() {
    if !have_etcd() {
        return;
    }
    let mut server = Etcd::start();
    let t = tenant("acme");
    let snap = TempDir::new("snapshot");
    let v1 = {
        let first = Watcher::start(server.connection(), &t, Some(&snap.0));
        let mut client = server.client().await;
        let v1 = publish(&mut client, &t, &flow("leave", 1), None).await;
        let gone = publish(&mut client, &t, &flow("travel", 1), None).await;
        until("first watcher", 10, || first.has(&v1) && first.has(&gone)).await;
        etcd::delete(&mut client, &t, "travel", gone.revision)
            .await
            .unwrap();
        until("travel retired", 10, || first.active("travel").is_none()).await;
        first.handle.stop().await;
        v1
    };
    let kept: Vec<String> = Snapshot::open(&snap.0, &t)
        .unwrap()
        .flows()
        .unwrap()
        .into_iter()
        .map(|f| f.flow)
        .collect();
    assert_eq!(kept, ["leave"]);
    server.kill();
    // etcd is down: the new watcher serves the snapshot at once and says so
    let w = Watcher::start(server.connection(), &t, Some(&snap.0));
    assert!(w.has(&v1), "{:?}", w.events.lock().unwrap());
    assert_eq!(w.count("snapshot"), 1);
    until("it said it serves the snapshot", 10, || {
        w.events.lock().unwrap().iter().any(|e| {
            matches!(
                e,
                WatchEvent::Disconnected {
                    serving_snapshot: true,
                    ..
                }
            )
        })
    })
    .await;
    assert!(w.active("travel").is_none());
    server.restart();
    let mut client = server.client().await;
    let v2 = publish(&mut client, &t, &flow("leave", 2), None).await;
    until("caught up", 15, || w.has(&v2)).await;
    // the first contact after a start from the snapshot is no reconnect
    let connected: Vec<bool> = w.events_of(|e| match e {
        WatchEvent::Connected {
            reconnect, retries, ..
        } => Some(*reconnect && *retries > 0),
        _ => None,
    });
    assert_eq!(connected, vec![false], "{:?}", w.events.lock().unwrap());

    // a snapshot directory belongs to one tenant
    let err = Snapshot::open(&snap.0, &tenant("other")).unwrap_err();
    assert_eq!(code(&err), "flowc::source::etcd-snapshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_flow_put_with_etcdctl_never_becomes_active() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let t = tenant("acme");
    let ws: Vec<Watcher> = (0..3)
        .map(|_| Watcher::start(server.connection(), &t, None))
        .collect();
    let mut client = server.client().await;
    let good = publish(&mut client, &t, &flow("leave", 1), None).await;
    until("good everywhere", 10, || ws.iter().all(|w| w.has(&good))).await;
    let broken = "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: leave\nsteps: [ { id: boss\n";
    server.etcdctl(&["put", "/flowc/acme/flows/leave", broken]);
    // a good flow under another id's key, and a key that is no flow id
    server.etcdctl(&[
        "put",
        "/flowc/acme/flows/travel",
        &String::from_utf8(flow("leave", 7)).unwrap(),
    ]);
    server.etcdctl(&[
        "put",
        "/flowc/acme/flows/Bad_Key",
        &String::from_utf8(flow("leave", 8)).unwrap(),
    ]);
    until("rejected everywhere", 10, || {
        ws.iter().all(|w| w.handle.rejections().len() == 3)
    })
    .await;
    let rev = client.get(t.flow_key("leave"), None).await.unwrap().kvs()[0].mod_revision() as u64;
    for w in &ws {
        assert!(w.has(&good), "the last good version stays active");
        assert!(w.active("travel").is_none() && w.active("Bad_Key").is_none());
        let r = w.handle.rejections();
        let by = |f: &str| r.iter().find(|x| x.flow == f).unwrap();
        assert_eq!(by("leave").revision, rev);
        assert!(by("leave").diagnostics.has_errors());
        let codes =
            |f: &str| -> Vec<String> { by(f).diagnostics.iter().map(|d| d.code()).collect() };
        assert_eq!(codes("travel"), ["flowc::source::etcd-key-mismatch"]);
        assert_eq!(codes("Bad_Key"), ["flowc::source::etcd-flow-key"]);
        let events = w.events.lock().unwrap();
        assert!(events.iter().any(|e| matches!(
            e,
            WatchEvent::Reject { flow, kept: Some(k), .. } if flow == "leave" && *k == good
        )));
    }
    // fixed: the rejection clears
    let fixed = publish(&mut client, &t, &flow("leave", 2), None).await;
    until("fixed everywhere", 10, || {
        ws.iter()
            .all(|w| w.has(&fixed) && w.handle.rejections().len() == 2)
    })
    .await;
    // never in the history
    let h = etcd::history(&mut client, &t, &Options::default(), "leave")
        .await
        .unwrap();
    assert!(h.iter().all(|i| i.revision != rev));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_instance_restores_in_a_second_registry_that_only_knows_etcd() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let t = tenant("acme");
    let w = Watcher::start(server.connection(), &t, None);
    // flows put by hand get their history entry from the watcher
    server.etcdctl(&[
        "put",
        "/flowc/acme/flows/leave",
        &String::from_utf8(flow("leave", 1)).unwrap(),
    ]);
    until("v1", 10, || w.active("leave").is_some()).await;
    let v1 = w.active("leave").unwrap();
    let (mut inst, _) = w
        .registry
        .start("leave", "k1", json!({"amount": 5.0}), 0)
        .unwrap();
    let approve = |step: &str| -> Event {
        serde_json::from_value(json!({"type": "approve", "step": step, "user": "u", "role": step}))
            .unwrap()
    };
    inst.apply(&approve("manager"), 1).unwrap();
    let saved = serde_json::to_string(inst.state()).unwrap();
    let mut client = server.client().await;
    let mut last = None;
    for n in 2..=4 {
        last = Some(publish(&mut client, &t, &flow("leave", n), None).await);
    }
    let last = last.unwrap();
    until("v4", 10, || w.has(&last)).await;
    let now = client
        .get("x", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    client.compact(now, None).await.unwrap();
    // the flow key's old revisions are gone from etcd
    let old = client
        .get(
            t.flow_key("leave"),
            Some(GetOptions::new().with_revision(v1.revision as i64)),
        )
        .await;
    assert!(old.is_err());

    let conn = server.connection();
    let second = tokio::task::spawn_blocking(move || {
        let store = EtcdStore::open(&conn, tenant("acme")).unwrap();
        let reg = Registry::with_store(Options::default(), Arc::new(store));
        let state: InstanceState = serde_json::from_str(&saved).unwrap();
        let mut inst = reg.restore(state).unwrap();
        inst.apply(&approve("finance"), 2).unwrap();
        (
            inst.flow().version().clone(),
            inst.status().label().to_owned(),
        )
    })
    .await
    .unwrap();
    assert_eq!(second.0, v1);
    assert_eq!(second.1, "approved");
}

#[test]
fn the_etcd_store_keeps_versions_holds_and_prunes() {
    if !have_etcd() {
        return;
    }
    use flowc::store::{Keep, NewVersion, StoreError, VersionMeta, VersionStore};
    let server = Etcd::start();
    let store = EtcdStore::open(&server.connection(), tenant("acme")).unwrap();
    let new = |hash: &'static str, src: &'static [u8]| NewVersion {
        flow: "leave",
        hash,
        name: "leave.yaml",
        source: src,
        meta: VersionMeta::default(),
    };
    let (a, b) = ("00000000000000aa", "00000000000000bb");
    assert_eq!(store.put(&new(a, b"one"), 10).unwrap().revision, 10);
    assert_eq!(store.put(&new(a, b"one"), 10).unwrap().revision, 10);
    let taken = store.put(&new(b, b"two"), 10).unwrap_err();
    assert!(matches!(taken, StoreError::RevisionTaken { .. }));
    store.put(&new(b, b"two"), 12).unwrap();
    store.put(&new(a, b"one"), 14).unwrap();
    let got = store.get("leave", a).unwrap().unwrap();
    assert_eq!((got.record.revision, got.revisions), (10, vec![10, 14]));
    assert_eq!(store.flows().unwrap(), ["leave"]);
    let vb = VersionId {
        flow: "leave".into(),
        revision: 12,
        hash: b.into(),
    };
    store.hold(&vb, "instance-1").unwrap();
    store.hold(&vb, "instance-1").unwrap();
    assert_eq!(store.held().unwrap().len(), 1);
    // b is held, a is among the newest
    assert!(
        store
            .prune(
                "leave",
                &Keep {
                    newest: 1,
                    hashes: vec![]
                }
            )
            .unwrap()
            .is_empty()
    );
    assert!(store.release(&vb, "instance-1").unwrap());
    let pruned = store
        .prune(
            "leave",
            &Keep {
                newest: 1,
                hashes: vec![],
            },
        )
        .unwrap();
    assert_eq!(pruned.len(), 1);
    assert_eq!((pruned[0].revision, pruned[0].stored), (12, false));
    assert!(store.get("leave", b).unwrap().is_none());
    let err = store.hold(&vb, "instance-2").unwrap_err();
    assert!(matches!(err, StoreError::NotStored { .. }));
    // the records stay: revision 12 is never given to other content
    assert!(store.put(&new(a, b"one"), 12).is_err());
    assert_eq!(store.list("leave").unwrap().len(), 3);
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, and a certificate `name` it signs (for 127.0.0.1, usable by servers and clients).
fn make_certs(dir: &Path, ca: &str, names: &[&str]) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={ca}"),
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.pem"),
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n",
    )
    .unwrap();
    for name in names {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN={name}"),
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{ca}.pem"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
                "-out",
                &format!("{name}.pem"),
            ],
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificates_works_and_a_wrong_ca_is_a_clear_error() {
    if !have_etcd() {
        return;
    }
    if Command::new("openssl").arg("version").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "openssl is required in CI"
        );
        eprintln!("skipped: openssl is not on PATH");
        return;
    }
    let certs = TempDir::new("certs");
    make_certs(&certs.0, "ca", &["server", "client"]);
    make_certs(&certs.0, "other-ca", &[]);
    let p = |n: &str| certs.0.join(n);
    let server = Etcd::start_with(
        Some(Tls {
            ca: p("ca.pem"),
            server_cert: p("server.pem"),
            server_key: p("server.key"),
        }),
        TempDir::new("data"),
    );
    let mut conn = server.connection();
    conn.cacert = Some(p("ca.pem"));
    conn.cert = Some(p("client.pem"));
    conn.key = Some(p("client.key"));
    // bounded wait until the TLS server answers
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut client = loop {
        if let Ok(mut c) = conn.connect().await
            && c.get("x", None).await.is_ok()
        {
            break c;
        }
        assert!(Instant::now() < deadline, "the TLS etcd did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let t = tenant("acme");
    let w = Watcher::start(conn.clone(), &t, None);
    let v = publish(&mut client, &t, &flow("leave", 1), None).await;
    until("published over TLS", 10, || w.has(&v)).await;

    let mut wrong = conn.clone();
    wrong.cacert = Some(p("other-ca.pem"));
    let err = match wrong.connect().await {
        Err(e) => e,
        Ok(mut c) => match c.get("x", None).await {
            Ok(_) => panic!("a server signed by another CA was trusted"),
            Err(e) => flowc::store::etcd::etcd_error("read", &e),
        },
    };
    assert_eq!(code(&err), "flowc::store::etcd");
    let msg = err.to_string().to_lowercase();
    assert!(msg.contains("certificate"), "{msg}");
    eprintln!("wrong CA: {err}");
    // without a client certificate the server refuses
    let mut anonymous = conn.clone();
    anonymous.cert = None;
    anonymous.key = None;
    let refused = match anonymous.connect().await {
        Err(_) => true,
        Ok(mut c) => c.get("x", None).await.is_err(),
    };
    assert!(refused);
}

// ---------------------------------------------------------------- faults found by a probe

/// A TCP proxy in front of etcd that can lose the answer to the next request: it passes
/// everything, or (armed) swallows the next bytes etcd sends and cuts the connection,
/// then passes again or refuses every connection.
struct Proxy {
    port: u16,
    mode: Arc<std::sync::atomic::AtomicU8>,
}

const PASS: u8 = 0;
const CUT_ONCE: u8 = 1;
const CUT_THEN_DOWN: u8 = 2;
const DOWN: u8 = 3;

impl Proxy {
    fn start(upstream: u16) -> Proxy {
        use std::io::{Read, Write};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(std::sync::atomic::AtomicU8::new(PASS));
        let m = Arc::clone(&mode);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(client) = conn else { continue };
                if m.load(Ordering::SeqCst) == DOWN {
                    drop(client);
                    continue;
                }
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (mut c_in, mut s_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_in, &mut s_out);
                    let _ = s_out.shutdown(std::net::Shutdown::Write);
                });
                let (mut client, mut server, m) = (client, server, Arc::clone(&m));
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    loop {
                        let n = match server.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let now = m.load(Ordering::SeqCst);
                        if now == CUT_ONCE || now == CUT_THEN_DOWN {
                            m.store(if now == CUT_ONCE { PASS } else { DOWN }, Ordering::SeqCst);
                            let _ = client.shutdown(std::net::Shutdown::Both);
                            let _ = server.shutdown(std::net::Shutdown::Both);
                            break;
                        }
                        if client.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Proxy { port, mode }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }

    fn connection(&self) -> Connection {
        let mut c = Connection::new(vec![format!("http://127.0.0.1:{}", self.port)]);
        c.connect_timeout = Duration::from_secs(1);
        c.request_timeout = Duration::from_secs(2);
        c
    }
}

/// The code of the error a rollback of `flow` to `to` is refused with.
async fn rollback_refused(client: &mut Client, t: &Tenant, flow: &str, to: u64) -> String {
    let err = etcd::rollback(
        client,
        t,
        &Options::default(),
        RollbackRequest {
            flow,
            to,
            expect_revision: None,
            author: None,
            message: None,
        },
    )
    .await
    .unwrap_err();
    let PublishError::Etcd(e) = err else {
        panic!("{err:?}")
    };
    code_of(&e)
}

/// The raw history keys of a flow with their create revisions.
async fn history_keys(client: &mut Client, t: &Tenant, flow: &str) -> Vec<(String, i64)> {
    let got = client
        .get(
            t.history_prefix(flow),
            Some(GetOptions::new().with_prefix()),
        )
        .await
        .unwrap();
    got.kvs()
        .iter()
        .map(|kv| {
            (
                String::from_utf8_lossy(kv.key()).into_owned(),
                kv.create_revision(),
            )
        })
        .collect()
}

async fn key_revision(client: &mut Client, t: &Tenant, flow: &str) -> u64 {
    client.get(t.flow_key(flow), None).await.unwrap().kvs()[0].mod_revision() as u64
}

fn flowc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flowc"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_with_a_down_endpoint_listed_first_writes_each_version_once() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let t = tenant("acme");
    let down = format!("http://127.0.0.1:{}", free_port());
    let dir = TempDir::new("multi");
    let file = dir.0.join("leave.yaml");
    for n in 1..=6 {
        std::fs::write(&file, flow("leave", n)).unwrap();
        let out = flowc()
            .arg("publish")
            .arg(&file)
            .args([
                "--etcd",
                &format!("{down},{}", server.url()),
                "--tenant",
                "acme",
            ])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "publish {n}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut client = server.client().await;
    let h = etcd::history(&mut client, &t, &Options::default(), "leave")
        .await
        .unwrap();
    assert_eq!(h.len(), 6, "one history entry per publish: {h:?}");
    assert_eq!(h[5].revision, key_revision(&mut client, &t, "leave").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_to_a_publish_is_read_back_before_anything_is_reported() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let t = tenant("acme");
    let proxy = Proxy::start(server.client_port);
    let mut direct = server.client().await;
    let v1 = publish(&mut direct, &t, &flow("leave", 1), None).await;
    let mut client = proxy.connection().connect().await.unwrap();
    client.get("warm-up", None).await.unwrap();
    // etcd applies the transaction; its answer never arrives
    proxy.set(CUT_ONCE);
    let request = |n: usize, expect: u64| PublishRequest {
        name: "leave.yaml",
        source: Box::leak(flow("leave", n).into_boxed_slice()),
        expect_revision: Some(expect),
        author: Some("alice".to_owned()),
        message: None,
    };
    let p = etcd::publish(
        &mut client,
        &t,
        &Options::default(),
        &request(2, v1.revision),
    )
    .await
    .unwrap_or_else(|e| panic!("a publish etcd applied was reported as {e:?}"));
    assert_eq!(p.previous, v1.revision);
    assert_eq!(
        p.version.revision,
        key_revision(&mut direct, &t, "leave").await
    );
    let h = etcd::history(&mut direct, &t, &Options::default(), "leave")
        .await
        .unwrap();
    let revs: Vec<u64> = h.iter().map(|i| i.revision).collect();
    assert_eq!(revs, [v1.revision, p.version.revision]);

    // the answer is lost and etcd cannot be asked: the outcome is unknown, said so
    proxy.set(CUT_THEN_DOWN);
    let err = etcd::publish(
        &mut client,
        &t,
        &Options::default(),
        &request(3, p.version.revision),
    )
    .await
    .unwrap_err();
    let PublishError::Etcd(e) = err else {
        panic!("{err:?}")
    };
    assert_eq!(code(&e), "flowc::source::etcd-outcome-unknown");
    assert!(
        e.to_string()
            .contains("the outcome of writing `leave` is unknown"),
        "{e}"
    );
    let help = miette::Diagnostic::help(&e).unwrap().to_string();
    assert!(help.contains("flowc history leave"), "{help}");
    proxy.set(PASS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_entry_is_written_in_the_flows_transaction() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let t = tenant("acme");
    let mut client = server.client().await;
    let v1 = publish(&mut client, &t, &flow("leave", 1), None).await;
    let keys = history_keys(&mut client, &t, "leave").await;
    // one transaction, one revision: the entry was created with the flow's new revision
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0].1 as u64, v1.revision, "{keys:?}");
    let v2 = publish(&mut client, &t, &flow("leave", 2), None).await;
    let back = etcd::rollback(
        &mut client,
        &t,
        &Options::default(),
        RollbackRequest {
            flow: "leave",
            to: v1.revision,
            expect_revision: None,
            author: None,
            message: None,
        },
    )
    .await
    .unwrap()
    .written()
    .unwrap();
    let created: Vec<u64> = history_keys(&mut client, &t, "leave")
        .await
        .iter()
        .map(|(_, r)| *r as u64)
        .collect::<std::collections::BTreeSet<u64>>()
        .into_iter()
        .collect();
    assert_eq!(created, [v1.revision, v2.revision, back.version.revision]);
    // an entry as an older flowc wrote it (named by its revision, recording it) reads
    // the same way, and rollback finds it
    let old = "/flowc/acme/history/leave/00000000000000000002";
    let store_entry = json!({
        "format": 1, "flow": "leave", "revision": 2, "hash": v2.hash, "name": "old.yaml",
        "size": flow("leave", 2).len(), "checksum": format!("{:016x}", flowc::compile::stable_hash(&[&flow("leave", 2)])),
        "compiler": "0.1.0", "author": "old", "source": String::from_utf8(flow("leave", 2)).unwrap()
    });
    server.etcdctl(&["put", old, &store_entry.to_string()]);
    let h = etcd::history(&mut client, &t, &Options::default(), "leave")
        .await
        .unwrap();
    assert_eq!(h[0].revision, 2);
    assert_eq!(h[0].author.as_deref(), Some("old"));
    let again = etcd::rollback(
        &mut client,
        &t,
        &Options::default(),
        RollbackRequest {
            flow: "leave",
            to: 2,
            expect_revision: None,
            author: None,
            message: None,
        },
    )
    .await
    .unwrap()
    .written()
    .unwrap();
    assert_eq!(again.version.hash, v2.hash);
    // the store loads by hash from either kind of entry
    let conn = server.connection();
    let hash = v1.hash.clone();
    let got = tokio::task::spawn_blocking(move || {
        use flowc::store::VersionStore;
        let store = EtcdStore::open(&conn, tenant("acme")).unwrap();
        store.get("leave", &hash).unwrap().unwrap().revisions
    })
    .await
    .unwrap();
    assert_eq!(got, [v1.revision, back.version.revision]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_watcher_falls_back_to_the_last_accepted_version_when_the_key_is_broken() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let t = tenant("acme");
    let mut client = server.client().await;
    publish(&mut client, &t, &flow("leave", 1), None).await;
    let good = publish(&mut client, &t, &flow("leave", 2), None).await;
    let broken = "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: leave\nsteps: [ { id: boss\n";
    server.etcdctl(&["put", "/flowc/acme/flows/leave", broken]);
    let rev = key_revision(&mut client, &t, "leave").await;
    let w = Watcher::start(server.connection(), &t, None);
    until("connected", 10, || w.count("connected") == 1).await;
    assert_eq!(
        w.active("leave"),
        Some(good.clone()),
        "{:?}",
        w.events.lock().unwrap()
    );
    let r = w.handle.rejections();
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].flow.as_str(), r[0].revision), ("leave", rev));
    let events = w.events.lock().unwrap();
    assert!(events.iter().any(|e| matches!(
        e,
        WatchEvent::Reject { flow, kept: Some(k), .. } if flow == "leave" && *k == good
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn republishing_the_same_content_makes_the_keys_revision_the_active_one() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let t = tenant("acme");
    let w = Watcher::start(server.connection(), &t, None);
    let mut client = server.client().await;
    let v1 = publish(&mut client, &t, &flow("leave", 1), None).await;
    until("v1", 10, || w.has(&v1)).await;
    let (inst, _) = w
        .registry
        .start("leave", "k1", json!({"amount": 5.0}), 0)
        .unwrap();
    let saved = serde_json::to_string(inst.state()).unwrap();
    let again = publish(&mut client, &t, &flow("leave", 1), None).await;
    assert_eq!(again.hash, v1.hash);
    assert!(again.revision > v1.revision);
    until("the new revision is active", 10, || w.has(&again)).await;
    assert_eq!(
        w.published_revisions("leave"),
        [v1.revision, again.revision]
    );
    // a new watcher names it the same way
    let fresh = Watcher::start(server.connection(), &t, None);
    until("fresh", 10, || fresh.has(&again)).await;
    // saved instances keep restoring: by flow id and content hash
    let state: InstanceState = serde_json::from_str(&saved).unwrap();
    let restored = w.registry.restore(state.clone()).unwrap();
    assert_eq!(restored.flow().version().hash, v1.hash);
    let restored = fresh.registry.restore(state).unwrap();
    assert_eq!(restored.flow().version().hash, v1.hash);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_are_checked_and_keys_of_nested_tenants_are_ignored() {
    if !have_etcd() {
        return;
    }
    for (prefix, says) in [
        ("", "absolute"),
        ("/", "root"),
        ("//x", "empty segments"),
        ("/flowc/", "trailing"),
        ("/a/../b", "`..`"),
        ("/flowc/acme/flows", "another tenant's keyspace"),
        ("/x/history/y", "another tenant's keyspace"),
    ] {
        let err = Tenant::new(prefix, "acme").unwrap_err();
        assert_eq!(code(&err), "flowc::store::invalid-key", "{prefix}");
        assert!(err.to_string().contains(says), "{prefix}: {err}");
        assert!(miette::Diagnostic::help(&err).is_some());
    }
    let server = Etcd::start();
    let out = flowc()
        .args(["history", "leave", "--etcd", &server.url(), "--tenant", "x"])
        .args(["--prefix", "/flowc/acme/flows"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("error[flowc::store::invalid-key]"),
        "{stderr}"
    );
    assert!(stderr.contains("help:"), "{stderr}");

    let t = tenant("acme");
    let w = Watcher::start(server.connection(), &t, None);
    let mut client = server.client().await;
    let mine = publish(&mut client, &t, &flow("leave", 1), None).await;
    // keys as a tenant nested under `/flowc/acme/flows` would have them
    server.etcdctl(&[
        "put",
        "/flowc/acme/flows/x/flows/leave",
        &String::from_utf8(flow("leave", 2)).unwrap(),
    ]);
    server.etcdctl(&["put", "/flowc/acme/flowmeta/x/y", "{}"]);
    let last = publish(&mut client, &t, &flow("expense", 1), None).await;
    until("both", 10, || w.has(&mine) && w.has(&last)).await;
    assert_eq!(w.count("reject"), 0, "{:?}", w.events.lock().unwrap());
    assert!(w.handle.rejections().is_empty());
    assert_eq!(w.registry.flows(), ["expense", "leave"]);
}

/// A running `flowc watch`, its stdout lines collected; killed by PID on drop.
struct Running {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        use std::io::BufRead;
        let mut child = flowc()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let collect = |from: Box<dyn std::io::Read + Send>| {
            let lines = Arc::new(Mutex::new(Vec::new()));
            let sink = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(from).lines() {
                    let Ok(line) = line else { break };
                    sink.lock().unwrap().push(line);
                }
            });
            lines
        };
        let lines = collect(Box::new(child.stdout.take().unwrap()));
        let errors = collect(Box::new(child.stderr.take().unwrap()));
        Running {
            child,
            lines,
            errors,
        }
    }

    fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    fn count(&self, start: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with(start))
            .count()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /metrics` over plain HTTP/1.0.
fn scrape(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_wording_is_honest_whether_etcd_answers_or_not() {
    if !have_etcd() {
        return;
    }
    let mut server = Etcd::start();
    let t = tenant("acme");
    let snap = TempDir::new("snapshot-cli");
    {
        let first = Watcher::start(server.connection(), &t, Some(&snap.0));
        let mut client = server.client().await;
        let v = publish(&mut client, &t, &flow("leave", 1), None).await;
        until("first", 10, || first.has(&v)).await;
        first.handle.stop().await;
    }
    // a version served is in the snapshot however soon the watcher stops (it was
    // written after the history entry, which waits on etcd: CI stopped in between)
    let held = std::fs::read_to_string(snap.0.join("snapshot.json")).unwrap();
    assert!(held.contains("\"leave\""), "{held}");
    let dir = snap.0.display().to_string();
    let args = [
        "watch",
        "--etcd",
        &server.url(),
        "--tenant",
        "acme",
        "--snapshot",
        &dir,
    ];
    let up = Running::start(&args);
    until("connected", 10, || up.count("connected") == 1).await;
    // the snapshot's comparison is the line after "connected" (CI once read the text
    // between the two)
    until("compared", 10, || {
        up.text().contains("loaded from the local snapshot")
    })
    .await;
    let text = up.text();
    assert!(!text.contains("served from"), "{text}");
    assert!(!text.contains("serving"), "{text}");
    assert!(
        text.contains("of the 1 flow loaded from the local snapshot, 0 replaced by etcd's version, 0 retired (not in etcd), 1 the same in etcd, 0 kept (etcd's content is rejected)"),
        "{text}"
    );
    drop(up);
    server.kill();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut with_metrics = args.to_vec();
    with_metrics.extend_from_slice(&["--metrics-addr", &addr]);
    let down = Running::start(&with_metrics);
    until("unreachable", 10, || down.count("etcd unreachable") == 1).await;
    let text = down.text();
    assert!(
        text.contains(&format!(
            "etcd unreachable: serving 1 flow(s) from the local snapshot {dir}"
        )),
        "{text}"
    );
    // etcd comes up: the first contact after a start from the snapshot is no reconnect
    server.restart();
    until("connected", 15, || down.count("connected at revision") == 1).await;
    let text = down.text();
    assert!(!text.contains("reconnected"), "{text}");
    let mut body = String::new();
    until("metrics", 10, || {
        body = scrape(port).unwrap_or_default();
        body.contains("\nflowc_connected 1")
    })
    .await;
    assert!(body.contains("\nflowc_reconnects_total 0"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_errors_are_words_once_per_outage_and_counters_start_at_zero() {
    if !have_etcd() {
        return;
    }
    let mut server = Etcd::start();
    let metrics = free_port();
    let w = Running::start(&[
        "watch",
        "--etcd",
        &server.url(),
        "--tenant",
        "acme",
        "--metrics-addr",
        &format!("127.0.0.1:{metrics}"),
    ]);
    until("connected", 10, || w.count("connected") == 1).await;
    let mut body = String::new();
    until("metrics served", 10, || {
        body = scrape(metrics).unwrap_or_default();
        body.contains("flowc_")
    })
    .await;
    for counter in ["flowc_resyncs_total", "flowc_reconnects_total"] {
        assert!(
            body.contains(&format!("\n{counter} 0")),
            "{counter}: {body}"
        );
    }
    // the per-flow counters start at 0 per flow, never without a label
    for counter in ["flowc_publishes_total", "flowc_rejects_total"] {
        assert!(
            !body.contains(&format!("\n{counter} ")),
            "{counter}: {body}"
        );
    }
    server.kill();
    // etcd down for a while: many retries, one line
    until("disconnected", 10, || w.count("disconnected") == 1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.restart();
    until("reconnected", 15, || w.count("reconnected") == 1).await;
    let text = w.text();
    assert_eq!(w.count("disconnected"), 1, "{text}");
    assert!(text.contains("cannot reach etcd at"), "{text}");
    assert!(
        !text.contains("Status {") && !text.contains("tonic"),
        "{text}"
    );
    let body = scrape(metrics).unwrap();
    assert!(body.contains("\nflowc_reconnects_total 1"), "{body}");

    // a CLI command against a down etcd: exit 2, in words, with the endpoint
    let down = format!("http://127.0.0.1:{}", free_port());
    let dir = TempDir::new("down");
    let file = dir.0.join("leave.yaml");
    std::fs::write(&file, flow("leave", 1)).unwrap();
    let out = flowc()
        .arg("publish")
        .arg(&file)
        .args(["--etcd", &down, "--tenant", "acme"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("error[flowc::store::etcd-unreachable]"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("cannot reach etcd at {down}")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("is etcd running at {down}?")),
        "{stderr}"
    );
    assert!(
        !stderr.contains("Status {") && !stderr.contains("tonic"),
        "{stderr}"
    );
    // the library says the same
    let mut lazy = Connection::new(vec![down.clone()]).connect().await.unwrap();
    let e = lazy.get("x", None).await.unwrap_err();
    let err = flowc::store::etcd::etcd_error("read", &e).at(std::slice::from_ref(&down));
    assert_eq!(code(&err), "flowc::store::etcd-unreachable");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("cannot reach etcd at {down} (read): ")),
        "{msg}"
    );
    assert!(msg.to_lowercase().contains("connection refused"), "{msg}");
    assert!(!msg.contains("Status {") && !msg.contains("tonic"), "{msg}");
    eprintln!("down: {msg}\n{stderr}");
    // the exit codes are documented
    let help = flowc().args(["publish", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("2 I/O or connection"), "{help}");
}

// ---------------------------------------------------------------- a stranger's probe (issue 10)

/// Version `n` of flow `id`, padded with comment lines to about `bytes` bytes.
fn big_flow(id: &str, n: usize, bytes: usize) -> Vec<u8> {
    let mut src = flow(id, n);
    let line = format!("# {}\n", "x".repeat(97));
    while src.len() + line.len() <= bytes {
        src.extend_from_slice(line.as_bytes());
    }
    src
}

/// Runs `flowc` to its end, failing after `secs` seconds: (exit code, stdout, stderr).
fn flowc_within(secs: u64, args: &[&str]) -> (Option<i32>, String, String) {
    use std::io::Read;
    let mut child = flowc()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let o = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let e = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "flowc {args:?} still runs after {secs} s:\nstderr: {}\nstdout: {}",
                e.join().unwrap(),
                o.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.code(), o.join().unwrap(), e.join().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_larger_than_one_answer_is_watched_and_its_history_read_in_pages() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let t = tenant("acme");
    let mut client = server.client().await;
    // 7 flows of 650 KB: 4.5 MB in all, over the 4 MiB of one answer
    let mut published = Vec::new();
    for i in 0..7 {
        let src = big_flow(&format!("big-{i}"), 1, 650_000);
        published.push(publish(&mut client, &t, &src, None).await);
    }
    let w = Watcher::start(server.connection(), &t, None);
    until("every large flow active", 30, || {
        published.iter().all(|v| w.has(v))
    })
    .await;
    assert_eq!(w.count("disconnected"), 0);
    // 7 versions of one 650 KB flow: its history is 4.5 MB
    let mut versions = Vec::new();
    for n in 1..=7 {
        versions.push(publish(&mut client, &t, &big_flow("huge", n, 650_000), None).await);
    }
    let h = etcd::history(&mut client, &t, &Options::default(), "huge")
        .await
        .unwrap();
    assert_eq!(
        h.iter().map(|i| i.revision).collect::<Vec<_>>(),
        versions.iter().map(|v| v.revision).collect::<Vec<_>>()
    );
    assert!(h.iter().all(|i| i.corrupt().is_none()));
    let back = etcd::rollback(
        &mut client,
        &t,
        &Options::default(),
        RollbackRequest {
            flow: "huge",
            to: versions[0].revision,
            expect_revision: None,
            author: None,
            message: None,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("rollback: {e:?}"))
    .written()
    .unwrap();
    assert_eq!(back.version.hash, versions[0].hash);
    until("the rollback is live", 20, || w.has(&back.version)).await;
    // the store lists all of them too
    let store = std::thread::spawn({
        let conn = server.connection();
        let t = t.clone();
        move || {
            let store = EtcdStore::open(&conn, t).unwrap();
            flowc::store::VersionStore::list(&store, "huge")
                .unwrap()
                .len()
        }
    })
    .join()
    .unwrap();
    assert_eq!(store, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_checks_the_whole_set_like_check_and_walks_directories() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let url = server.url();
    let dir = TempDir::new("set");
    std::fs::write(dir.0.join("a.yaml"), flow("leave", 1)).unwrap();
    std::fs::write(dir.0.join("b.yaml"), flow("leave", 2)).unwrap();
    let (a, b) = (
        dir.0.join("a.yaml").display().to_string(),
        dir.0.join("b.yaml").display().to_string(),
    );
    let (code, out, err) =
        flowc_within(20, &["publish", &a, &b, "--etcd", &url, "--tenant", "acme"]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("flowc::check::duplicate-flow-id"), "{err}");
    assert!(err.contains("nothing published"), "{err}");
    let mut client = server.client().await;
    let t = tenant("acme");
    assert!(
        client
            .get(t.flow_key("leave"), None)
            .await
            .unwrap()
            .kvs()
            .is_empty(),
        "nothing may be published"
    );
    // a directory is walked as `check` walks it: flows published, other YAML skipped
    let tree = TempDir::new("tree");
    std::fs::create_dir_all(tree.0.join("sub")).unwrap();
    std::fs::write(tree.0.join("leave.yaml"), flow("leave", 1)).unwrap();
    std::fs::write(tree.0.join("sub/expense.yaml"), flow("expense", 1)).unwrap();
    std::fs::write(tree.0.join("config.yaml"), "replicas: 3\n").unwrap();
    let d = tree.0.display().to_string();
    let (code, out, err) = flowc_within(20, &["publish", &d, "--etcd", &url, "--tenant", "acme"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("published ")).count(),
        2,
        "{out}"
    );
    assert!(
        out.contains("published expense@") && out.contains("published leave@"),
        "{out}"
    );
    // the skipped file is named, as `flowc check` names it (on stderr: stdout is the
    // revisions)
    let skipped = tree.0.join("config.yaml").display().to_string();
    assert!(
        err.lines()
            .any(|l| l == format!("skipped 1 YAML file that is not a flow: {skipped}")),
        "{err}"
    );
    assert!(
        !client
            .get(t.flow_key("expense"), None)
            .await
            .unwrap()
            .kvs()
            .is_empty()
    );
    // a named file that is no flow is refused before anything is written
    let c = tree.0.join("config.yaml").display().to_string();
    let (code, _, err) = flowc_within(20, &["publish", &c, "--etcd", &url, "--tenant", "acme"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("not a flow"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_history_entry_is_skipped_with_a_warning_naming_its_key() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let t = tenant("acme");
    let mut client = server.client().await;
    let v1 = publish(&mut client, &t, &flow("leave", 1), None).await;
    let v2 = publish(&mut client, &t, &flow("leave", 2), None).await;
    let bad = format!("{}zz-bad", t.history_prefix("leave"));
    server.etcdctl(&["put", &bad, r#"{"format":1,"flow":"leave"}"#]);
    // history: the entry shows as corrupt, the others as usual
    let h = etcd::history(&mut client, &t, &Options::default(), "leave")
        .await
        .unwrap();
    assert_eq!(h.len(), 3, "{h:?}");
    assert_eq!(h[0].revision, v1.revision);
    assert_eq!(h[1].revision, v2.revision);
    let corrupt = h[2].corrupt().expect("a corrupt item");
    assert_eq!(corrupt.key, bad);
    assert!(corrupt.reason.contains("missing field"), "{corrupt:?}");
    let url = server.url();
    let (code, out, err) = flowc_within(
        20,
        &["history", "leave", "--etcd", &url, "--tenant", "acme"],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        err.contains(&format!("warning[{}]", "flowc::store::etcd-corrupt")),
        "{err}"
    );
    assert!(err.contains(&format!("etcdctl del {bad}")), "{err}");
    assert!(out.contains(&format!("corrupt entry `{bad}`")), "{out}");
    let (code, out, _) = flowc_within(
        20,
        &[
            "history", "leave", "--etcd", &url, "--tenant", "acme", "--format", "json",
        ],
    );
    assert_eq!(code, Some(0));
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[2]["corrupt"]["key"], json!(bad));
    assert_eq!(list[0]["corrupt"], json!(null));
    // a rollback to another revision works
    let rev = v1.revision.to_string();
    let (code, out, err) = flowc_within(
        20,
        &[
            "rollback", "leave", "--to", &rev, "--etcd", &url, "--tenant", "acme",
        ],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    // a new watcher finding refused content falls back to the newest good entry
    let current = publish(&mut client, &t, &flow("leave", 3), None).await;
    server.etcdctl(&["put", &t.flow_key("leave"), "not: [a flow"]);
    let w = Watcher::start(server.connection(), &t, None);
    until("fallback", 10, || w.active("leave").is_some()).await;
    assert_eq!(w.active("leave").unwrap().hash, current.hash);
    assert!(w.events.lock().unwrap().iter().any(|e| matches!(
        e,
        WatchEvent::Warning { message } if message.contains(&bad)
    )));
    // the store's message names the key and how to fix it
    let err = flowc::store::StoreError::CorruptKey {
        key: bad.clone(),
        reason: "x".to_owned(),
    };
    assert_eq!(code_of(&err), "flowc::store::etcd-corrupt");
    let help = miette::Diagnostic::help(&err).unwrap().to_string();
    assert!(help.contains(&format!("etcdctl del {bad}")), "{help}");
}

fn code_of(e: &dyn miette::Diagnostic) -> String {
    code(e)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn propagation_is_measured_only_for_live_events_and_never_from_the_future() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let t = tenant("acme");
    let mut client = server.client().await;
    let old = publish(&mut client, &t, &flow("leave", 1), None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let w = Watcher::start(server.connection(), &t, None);
    until("cold start", 10, || w.has(&old)).await;
    let latencies = |w: &Watcher, rev: u64| -> Vec<Option<Duration>> {
        w.events_of(|e| match e {
            WatchEvent::Publish { version, latency } if version.revision == rev => Some(*latency),
            _ => None,
        })
    };
    assert_eq!(
        latencies(&w, old.revision),
        vec![None],
        "a cold start is no propagation"
    );
    let live = publish(&mut client, &t, &flow("leave", 2), None).await;
    // the registry swaps before the event is recorded: wait for the event itself
    until("live", 10, || {
        w.has(&live) && !latencies(&w, live.revision).is_empty()
    })
    .await;
    let l = latencies(&w, live.revision);
    assert_eq!(l.len(), 1);
    assert!(l[0].is_some_and(|d| d < Duration::from_secs(5)), "{l:?}");
    // a publisher whose clock is an hour ahead: no latency (not 0)
    let future = etcd::now_micros() + 3_600_000_000;
    let src = flow("leave", 3);
    let hash = Registry::default()
        .compile("x.yaml", &src)
        .unwrap()
        .version()
        .hash
        .clone();
    let meta = serde_json::to_string(&etcd::FlowMeta {
        hash,
        meta: flowc::store::VersionMeta {
            author: Some("skewed".to_owned()),
            ..Default::default()
        },
        published_at_micros: future,
        history: None,
    })
    .unwrap();
    let txn = etcd_client::Txn::new().and_then([
        etcd_client::TxnOp::put(t.flow_key("leave"), src, None),
        etcd_client::TxnOp::put(t.meta_key("leave"), meta, None),
    ]);
    let rev = client.txn(txn).await.unwrap().header().unwrap().revision() as u64;
    until("skewed", 10, || {
        w.active("leave").is_some_and(|v| v.revision == rev) && !latencies(&w, rev).is_empty()
    })
    .await;
    assert_eq!(latencies(&w, rev), vec![None]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_too_large_for_one_request_is_refused_before_writing() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let url = server.url();
    let dir = TempDir::new("large");
    std::fs::write(dir.0.join("a.yaml"), flow("small", 1)).unwrap();
    std::fs::write(dir.0.join("b.yaml"), big_flow("large", 1, 1_100_000)).unwrap();
    std::fs::write(dir.0.join("c.yaml"), flow("later", 1)).unwrap();
    let p = |n: &str| dir.0.join(n).display().to_string();
    let (code, out, err) = flowc_within(
        20,
        &[
            "publish",
            &p("a.yaml"),
            &p("b.yaml"),
            &p("c.yaml"),
            "--etcd",
            &url,
            "--tenant",
            "acme",
        ],
    );
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("error[flowc::source::etcd-too-large]"),
        "{err}"
    );
    let size = big_flow("large", 1, 1_100_000).len();
    assert!(
        err.contains(&format!("flow `large` is {size} bytes")),
        "{err}"
    );
    assert!(
        err.contains("over etcd's default limit of 1572864 bytes"),
        "{err}"
    );
    assert!(!err.contains("TLS") && !err.contains("endpoints"), "{err}");
    // the partial publish is summed up
    assert!(
        err.contains("failed after 1 flow(s) were published: small@"),
        "{err}"
    );
    assert!(
        err.contains(&format!("not published: {}", p("c.yaml"))),
        "{err}"
    );
    let mut client = server.client().await;
    let t = tenant("acme");
    assert!(
        client
            .get(t.flow_key("large"), None)
            .await
            .unwrap()
            .kvs()
            .is_empty()
    );
    // the library says the same
    let e = etcd::publish(
        &mut client,
        &t,
        &Options::default(),
        &PublishRequest {
            name: "b.yaml",
            source: &big_flow("large", 1, 1_100_000),
            expect_revision: None,
            author: None,
            message: None,
        },
    )
    .await
    .unwrap_err();
    let PublishError::Etcd(e) = e else {
        panic!("{e:?}")
    };
    assert_eq!(code_of(&e), "flowc::source::etcd-too-large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_named_as_a_layout_segment_is_refused() {
    if !have_etcd() {
        return;
    }
    for name in ["flows", "history", "flowmeta", "holds"] {
        let e = Tenant::new("/flowc/acme", name).unwrap_err();
        assert_eq!(code(&e), "flowc::store::invalid-key");
        assert!(
            e.to_string().contains("names of flowc's own key folders"),
            "{e}"
        );
        let help = miette::Diagnostic::help(&e).unwrap().to_string();
        assert!(help.contains("choose another tenant name"), "{help}");
    }
    let dir = TempDir::new("reserved");
    std::fs::write(dir.0.join("a.yaml"), flow("leave", 1)).unwrap();
    let a = dir.0.join("a.yaml").display().to_string();
    let (code, _, err) = flowc_within(
        20,
        &[
            "publish",
            &a,
            "--etcd",
            "http://127.0.0.1:1",
            "--prefix",
            "/flowc/acme",
            "--tenant",
            "flows",
        ],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("error[flowc::store::invalid-key]: invalid tenant `flows`"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_snapshot_header_warns_and_starts_from_etcd() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let t = tenant("acme");
    let snap = TempDir::new("damaged");
    let mut client = server.client().await;
    let v = publish(&mut client, &t, &flow("leave", 1), None).await;
    std::fs::create_dir_all(snap.0.join("flows")).unwrap();
    std::fs::write(snap.0.join("snapshot.json"), "{\"format\": 1, \"pre").unwrap();
    std::fs::write(snap.0.join("flows/stale.json"), "{}").unwrap();
    let w = Watcher::start(server.connection(), &t, Some(&snap.0));
    until("from etcd", 10, || w.has(&v)).await;
    assert!(w.events.lock().unwrap().iter().any(|e| matches!(
        e,
        WatchEvent::Warning { message } if message.contains("is damaged") && message.contains("rewritten from etcd")
    )));
    until("rewritten", 10, || {
        Snapshot::open(&snap.0, &t)
            .ok()
            .and_then(|s| s.revision().ok().flatten())
            .is_some()
    })
    .await;
    assert!(!snap.0.join("flows/stale.json").exists());
    // the CLI says so and keeps running (once `w` is gone: a directory has one watcher)
    w.handle.stop().await;
    let s = snap.0.display().to_string();
    std::fs::write(snap.0.join("snapshot.json"), "garbage").unwrap();
    let url = server.url();
    let run = Running::start(&[
        "watch",
        "--etcd",
        &url,
        "--tenant",
        "acme",
        "--snapshot",
        &s,
    ]);
    until("connected", 10, || run.count("connected") == 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_misconfiguration_on_the_first_connection_exits_2_naming_the_file() {
    if !have_etcd() {
        return;
    }
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("skipped: openssl is not on PATH");
        return;
    }
    let certs = TempDir::new("certs-cfg");
    make_certs(&certs.0, "ca", &["server", "client"]);
    make_certs(&certs.0, "other-ca", &["stranger"]);
    let p = |n: &str| certs.0.join(n).display().to_string();
    let server = Etcd::start_with(
        Some(Tls {
            ca: certs.0.join("ca.pem"),
            server_cert: certs.0.join("server.pem"),
            server_key: certs.0.join("server.key"),
        }),
        TempDir::new("data"),
    );
    let url = server.url();
    let mut conn = server.connection();
    conn.cacert = Some(certs.0.join("ca.pem"));
    conn.cert = Some(certs.0.join("client.pem"));
    conn.key = Some(certs.0.join("client.key"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while conn.first_contact().await.is_err() {
        assert!(Instant::now() < deadline, "the TLS etcd did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let watch = |cacert: &str, cert: &str, key: &str| {
        flowc_within(
            20,
            &[
                "watch", "--etcd", &url, "--tenant", "acme", "--cacert", cacert, "--cert", cert,
                "--key", key,
            ],
        )
    };
    // a CA that did not sign the server's certificate
    let (code, _, err) = watch(&p("other-ca.pem"), &p("client.pem"), &p("client.key"));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "not signed by the CA of --cacert `{}`",
            p("other-ca.pem")
        )),
        "{err}"
    );
    // a client certificate the server does not trust
    let (code, _, err) = watch(&p("ca.pem"), &p("stranger.pem"), &p("stranger.key"));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("refused the client certificate"), "{err}");
    // a key that is not the certificate's
    let (code, _, err) = watch(&p("ca.pem"), &p("client.pem"), &p("server.key"));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "--key `{}` is not the key of --cert",
            p("server.key")
        )),
        "{err}"
    );
    assert!(!err.contains("etcd-unreachable"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_escapes_control_characters_and_says_when_a_flow_was_deleted() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let t = tenant("acme");
    let mut client = server.client().await;
    let forged = "eve\nrevision 999  ffff  2026-01-01T00:00:00Z  admin  approved";
    etcd::publish(
        &mut client,
        &t,
        &Options::default(),
        &PublishRequest {
            name: "flow.yaml",
            source: &flow("leave", 1),
            expect_revision: None,
            author: Some(forged.to_owned()),
            message: Some("\u{1b}[31mred".to_owned()),
        },
    )
    .await
    .unwrap();
    let url = server.url();
    let (code, out, err) = flowc_within(
        20,
        &["history", "leave", "--etcd", &url, "--tenant", "acme"],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(!out.lines().any(|l| l.starts_with("revision 999")), "{out}");
    assert!(out.contains("eve\\nrevision 999"), "{out}");
    assert!(
        out.contains("\\u{1b}[31mred") && !out.contains('\u{1b}'),
        "{out}"
    );
    let (_, out, _) = flowc_within(
        20,
        &[
            "history", "leave", "--etcd", &url, "--tenant", "acme", "--format", "json",
        ],
    );
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[0]["author"], json!(forged));
    assert_eq!(list[0]["message"], json!("\u{1b}[31mred"));
    // an explicitly empty author is refused
    let dir = TempDir::new("author");
    std::fs::write(dir.0.join("a.yaml"), flow("leave", 2)).unwrap();
    let a = dir.0.join("a.yaml").display().to_string();
    let (code, _, err) = flowc_within(
        20,
        &[
            "publish", &a, "--etcd", &url, "--tenant", "acme", "--author", "",
        ],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--author is empty"), "{err}");
    // a deleted flow's history says so
    let rev = key_revision(&mut client, &t, "leave").await;
    etcd::delete(&mut client, &t, "leave", rev).await.unwrap();
    let (code, out, _) = flowc_within(
        20,
        &["history", "leave", "--etcd", &url, "--tenant", "acme"],
    );
    assert_eq!(code, Some(0));
    assert!(
        out.contains("deleted: the key of `leave` no longer exists"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_never_panics() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let dir = TempDir::new("pipe");
    std::fs::write(dir.0.join("a.yaml"), flow("leave", 1)).unwrap();
    std::fs::write(
        dir.0.join("bad.yaml"),
        "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: 7\n",
    )
    .unwrap();
    let a = dir.0.join("a.yaml").display().to_string();
    let bad = dir.0.join("bad.yaml").display().to_string();
    let url = server.url();
    let missing = dir.0.join("missing.yaml").display().to_string();
    // a write to a closed stdout or stderr ends the process with 141 (128 + SIGPIPE, as a
    // shell reports it), never a panic (101) and never a silent 0
    for (args, expected) in [
        (
            vec![
                "publish",
                a.as_str(),
                "--etcd",
                url.as_str(),
                "--tenant",
                "acme",
            ],
            141,
        ),
        (vec!["check", bad.as_str()], 141),
        (vec!["check", missing.as_str()], 141),
        (
            vec![
                "publish",
                a.as_str(),
                "--etcd",
                "http://127.0.0.1:1",
                "--tenant",
                "acme",
            ],
            141,
        ),
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let status = flowc()
            .args(&args)
            .stdout(Stdio::from(writer.try_clone().unwrap()))
            .stderr(Stdio::from(writer))
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(expected), "{args:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_stops_on_sigterm_serves_metrics_on_a_host_name_and_reports_connected() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let port = free_port();
    let url = server.url();
    let addr = format!("localhost:{port}");
    let mut w = Running::start(&[
        "watch",
        "--etcd",
        &url,
        "--tenant",
        "acme",
        "--metrics-addr",
        &addr,
        "--format",
        "json",
    ]);
    until("connected", 10, || w.count("{\"event\":\"connected\"") == 1).await;
    let mut body = String::new();
    until("metrics", 10, || {
        body = scrape(port).unwrap_or_default();
        body.contains("\nflowc_connected 1")
    })
    .await;
    let pid = w.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = w.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backoff_starts_afresh_after_etcd_answered_again() {
    if !have_etcd() {
        return;
    }
    let mut server = Etcd::start();
    let t = tenant("acme");
    let w = Watcher::start(server.connection(), &t, None);
    until("connected", 10, || w.count("connected") == 1).await;
    server.kill();
    until("disconnected", 10, || w.count("disconnected") == 1).await;
    // long enough for the backoff to reach its 1 s ceiling
    tokio::time::sleep(Duration::from_millis(2500)).await;
    server.restart();
    until("reconnected", 15, || w.count("connected") == 2).await;
    let reconnects: Vec<bool> = w.events_of(|e| match e {
        WatchEvent::Connected { reconnect, .. } => Some(*reconnect),
        _ => None,
    });
    assert_eq!(reconnects, vec![false, true]);
    server.kill();
    until("disconnected again", 10, || w.count("disconnected") == 2).await;
    let waits: Vec<Duration> = w.events_of(|e| match e {
        WatchEvent::Disconnected { retry_in, .. } => Some(*retry_in),
        _ => None,
    });
    assert_eq!(
        waits,
        vec![Duration::from_millis(50), Duration::from_millis(50)],
        "each outage starts at the shortest wait"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_user_on_the_first_connection_exits_2() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    server.etcdctl(&["user", "add", "root:secret"]);
    server.etcdctl(&["auth", "enable"]);
    let url = server.url();
    let (code, out, err) = flowc_within(
        20,
        &[
            "watch",
            "--etcd",
            &url,
            "--tenant",
            "acme",
            "--user",
            "root:wrong",
        ],
    );
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(err.contains("error[flowc::source::etcd-setup]"), "{err}");
    assert!(err.contains("wrong user name or password"), "{err}");
}

// ---------------------------------------------------------------- setup errors end the watch

/// Certificates for a TLS etcd (CA `ca`, server, client) and a stranger's CA and client.
fn tls_certs(dir: &Path) -> Tls {
    make_certs(dir, "ca", &["server", "client"]);
    make_certs(dir, "other-ca", &["stranger"]);
    Tls {
        ca: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
    }
}

fn have_openssl() -> bool {
    let found = Command::new("openssl").arg("version").output().is_ok();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "openssl is required in CI"
        );
        eprintln!("skipped: openssl is not on PATH");
    }
    found
}

/// The watcher's end, within `secs` seconds.
async fn finished(w: &mut Watcher, secs: u64) -> Result<(), EtcdError> {
    tokio::time::timeout(Duration::from_secs(secs), w.handle.finished())
        .await
        .expect("the watcher still runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_started_with_etcd_down_stops_on_a_tls_refusal_when_etcd_comes_up() {
    if !have_etcd() || !have_openssl() {
        return;
    }
    let certs = TempDir::new("certs-late");
    let tls = tls_certs(&certs.0);
    let p = |n: &str| certs.0.join(n);
    let mut server = Etcd::unstarted(Some(tls), TempDir::new("data"));
    let url = server.url();
    let t = tenant("acme");
    // the library watcher: a CA that did not sign the server's certificate
    let mut wrong_ca = server.connection();
    wrong_ca.cacert = Some(p("other-ca.pem"));
    wrong_ca.cert = Some(p("client.pem"));
    wrong_ca.key = Some(p("client.key"));
    let mut w = Watcher::start(wrong_ca, &t, None);
    // the CLI watcher: a client certificate the server does not trust
    let cli = Running::start(&[
        "watch",
        "--etcd",
        &url,
        "--tenant",
        "acme",
        "--cacert",
        &p("ca.pem").display().to_string(),
        "--cert",
        &p("stranger.pem").display().to_string(),
        "--key",
        &p("stranger.key").display().to_string(),
    ]);
    until("etcd is down", 10, || {
        w.count("disconnected") == 1 && cli.count("disconnected") == 1
    })
    .await;
    server.spawn();
    let err = finished(&mut w, 30).await.unwrap_err();
    assert_eq!(code(&err), "flowc::source::etcd-setup", "{err}");
    assert!(
        matches!(
            &err,
            EtcdError::Setup {
                fault: etcd::SetupFault::Tls,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&format!(
            "not signed by the CA of --cacert `{}`",
            p("other-ca.pem").display()
        )),
        "{err}"
    );
    // no retry was reported for the refusal: only the outage before it
    assert_eq!(w.count("disconnected"), 1);
    assert_eq!(w.count("retrying"), 0);
    let mut cli = cli;
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = cli.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the CLI watcher still retries: {}",
            cli.text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // the reader threads finish at the pipes' end
    until("stderr read", 5, || {
        cli.errors
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with("  help:"))
    })
    .await;
    let errors = cli.errors.lock().unwrap().join("\n");
    assert_eq!(status.code(), Some(2), "{errors}");
    assert!(
        errors.contains("error[flowc::source::etcd-setup]"),
        "{errors}"
    );
    assert!(
        errors.contains("refused the client certificate"),
        "{errors}"
    );
    assert!(errors.contains("stranger.pem"), "{errors}");
    assert_eq!(cli.count("disconnected"), 1, "{}", cli.text());
}

/// `flowc watch` with `args` after `--tenant acme`: exits 2 within 30 s; its stdout
/// says nothing of a retry; the error and help on stderr.
fn setup_refused(url: &str, args: &[&str]) -> String {
    refused_by(&["watch"], url, args)
}

/// As [`setup_refused`], for the command `cmd` (`watch`, `publish FILE`, `history
/// FLOW`, `rollback FLOW --to N`): every command classifies a setup error alike.
fn refused_by(cmd: &[&str], url: &str, args: &[&str]) -> String {
    let mut all = cmd.to_vec();
    all.extend_from_slice(&["--etcd", url, "--tenant", "acme"]);
    all.extend_from_slice(args);
    let (code, out, err) = flowc_within(30, &all);
    assert_eq!(code, Some(2), "{all:?}: {out}{err}");
    assert!(err.contains("error[flowc::source::etcd-setup]"), "{err}");
    assert!(!out.contains("disconnected"), "{out}");
    assert!(
        !out.contains("retrying") && !err.contains("retrying"),
        "{out}{err}"
    );
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_scheme_or_missing_user_exits_2_saying_what_to_fix() {
    if !have_etcd() || !have_openssl() {
        return;
    }
    let certs = TempDir::new("certs-scheme");
    let tls = tls_certs(&certs.0);
    let p = |n: &str| certs.0.join(n).display().to_string();
    let secure = Etcd::start_with(Some(tls), TempDir::new("data"));
    let plain = Etcd::start();
    // https:// to a plain etcd
    let https_to_plain = plain.url().replace("http://", "https://");
    std::fs::write(certs.0.join("leave.yaml"), flow("leave", 1)).unwrap();
    let file = p("leave.yaml");
    let commands: [&[&str]; 4] = [
        &["watch"],
        &["publish", &file],
        &["history", "leave"],
        &["rollback", "leave", "--to", "3"],
    ];
    for cmd in commands {
        let err = refused_by(cmd, &https_to_plain, &["--cacert", &p("ca.pem")]);
        assert!(
            err.contains("speaks plain HTTP") && err.contains(&format!("use {}", plain.url())),
            "{cmd:?}: {err}"
        );
    }
    // http:// to a TLS etcd (up by now? its refusal is no outage either way)
    let mut ready = secure.connection();
    ready.cacert = Some(certs.0.join("ca.pem"));
    ready.cert = Some(certs.0.join("client.pem"));
    ready.key = Some(certs.0.join("client.key"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while ready.first_contact().await.is_err() {
        assert!(Instant::now() < deadline, "the TLS etcd did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let http_to_tls = secure.url().replace("https://", "http://");
    for cmd in commands {
        let err = refused_by(cmd, &http_to_tls, &[]);
        assert!(
            err.contains("speaks TLS") && err.contains(&format!("use {}", secure.url())),
            "{cmd:?}: {err}"
        );
    }
    // --cacert naming a private key, or garbage: not a certificate, the file named
    std::fs::write(certs.0.join("garbage.pem"), "not pem at all\n").unwrap();
    for (file, holds) in [
        ("client.key", "it holds a private key"),
        ("garbage.pem", "it holds no PEM block"),
    ] {
        let err = setup_refused(
            &secure.url(),
            &[
                "--cacert",
                &p(file),
                "--cert",
                &p("client.pem"),
                "--key",
                &p("client.key"),
            ],
        );
        assert!(
            err.contains(&format!("--cacert `{}` is not a certificate", p(file))),
            "{err}"
        );
        assert!(err.contains(holds), "{err}");
        assert!(!err.contains("not signed by the CA"), "{err}");
    }
    // an etcd with authentication, and no user or a wrong password
    plain.etcdctl(&["user", "add", "root:pw"]);
    plain.etcdctl(&["auth", "enable"]);
    for cmd in commands {
        let err = refused_by(cmd, &plain.url(), &[]);
        assert!(
            err.contains("etcd requires authentication"),
            "{cmd:?}: {err}"
        );
        assert!(err.contains("pass --user NAME:PASSWORD"), "{cmd:?}: {err}");
    }
    // a user who may only read: publishing is refused saying what to grant
    plain.etcdctl(&["--user", "root:pw", "user", "add", "reader:pw"]);
    plain.etcdctl(&["--user", "root:pw", "role", "add", "ro"]);
    plain.etcdctl(&[
        "--user",
        "root:pw",
        "role",
        "grant-permission",
        "ro",
        "--prefix=true",
        "read",
        "/flowc/acme/",
    ]);
    plain.etcdctl(&["--user", "root:pw", "user", "grant-role", "reader", "ro"]);
    let err = refused_by(&["publish", &file], &plain.url(), &["--user", "reader:pw"]);
    assert!(err.contains("publishing needs a readwrite role"), "{err}");
    let err = setup_refused(&plain.url(), &["--user", "root:wrong"]);
    assert!(err.contains("wrong user name or password"), "{err}");
    // the library watcher ends with the typed error too, without retrying
    let mut w = Watcher::start(plain.connection(), &tenant("acme"), None);
    let err = finished(&mut w, 20).await.unwrap_err();
    assert!(
        matches!(
            &err,
            EtcdError::Setup {
                fault: etcd::SetupFault::Auth,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(w.count("disconnected"), 0);
    // and with the right user it watches
    let mut ok = plain.connection();
    ok.user = Some(("root".to_owned(), "pw".to_owned()));
    let w = Watcher::start(ok, &tenant("acme"), None);
    until("connected with a user", 10, || w.count("connected") == 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_outside_flowcs_subtrees_are_reported_and_the_list_is_bounded() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let t = tenant("acme");
    let mut client = server.client().await;
    // beside every subtree, none of them flowc's; history and holds keys are flowc's,
    // another tenant's keys are not this tenant's business
    let stray = [
        "/flowc/acme/config",
        "/flowc/acme/history0",
        "/flowc/acme/zz/1",
    ];
    for k in stray {
        client.put(k, "x", None).await.unwrap();
    }
    client
        .put("/flowc/acme/history/x/1", "not ours to judge", None)
        .await
        .unwrap();
    client
        .put("/flowc/acme/holds/x/h/me", "", None)
        .await
        .unwrap();
    client
        .put("/flowc/acmex/flows/x", "another tenant", None)
        .await
        .unwrap();
    let w = Watcher::start(server.connection(), &t, None);
    until("connected", 10, || w.count("connected") == 1).await;
    // the read's warnings come after `connected`
    until("the warnings", 10, || w.warnings().len() >= stray.len()).await;
    let got = w.warnings();
    assert_eq!(got.len(), stray.len(), "{got:?}");
    for (k, m) in stray.iter().zip(&got) {
        assert!(m.contains(&format!("key `{k}` is ignored")), "{got:?}");
    }
    drop(w);
    // a tenant full of foreign keys: 20 listed, then one line
    for i in 0..30 {
        client
            .put(format!("/flowc/acme/junk/{i:02}"), "x", None)
            .await
            .unwrap();
    }
    let w = Watcher::start(server.connection(), &t, None);
    until("connected", 10, || w.count("connected") == 1).await;
    // the read's warnings come after `connected`
    until("21 warnings", 10, || w.warnings().len() >= 21).await;
    let got = w.warnings();
    assert_eq!(got.len(), 21, "{got:?}");
    assert_eq!(
        got[20],
        "more keys under tenant `acme` are ignored; only the first 20 are listed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_keys_under_the_tenant_are_reported_once_each_and_json_warnings_go_to_stdout() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let t = tenant("acme");
    let mut client = server.client().await;
    let deep = "/flowc/acme/flows/a/b";
    let beside = "/flowc/acme/flowmeta/a/b";
    client.put(deep, "x", None).await.unwrap();
    let w = Watcher::start(server.connection(), &t, None);
    let mut cli = Running::start(&[
        "watch",
        "--etcd",
        &server.url(),
        "--tenant",
        "acme",
        "--format",
        "json",
    ]);
    until("connected", 10, || {
        w.count("connected") == 1 && cli.count("{\"event\":\"connected\"") == 1
    })
    .await;
    // put again, and another odd key live, then a flow to know the watchers are past them
    client.put(deep, "y", None).await.unwrap();
    client.put(beside, "z", None).await.unwrap();
    let v = publish(&mut client, &t, &flow("leave", 1), None).await;
    until("published", 10, || {
        w.has(&v) && cli.count("{\"event\":\"publish\"") == 1
    })
    .await;
    let warned = |key: &str| {
        w.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, WatchEvent::Warning { message } if message.contains(&format!("key `{key}` is ignored"))))
            .count()
    };
    assert_eq!(warned(deep), 1, "{:?}", w.events.lock().unwrap());
    assert_eq!(warned(beside), 1, "{:?}", w.events.lock().unwrap());
    assert_eq!(w.count("warning"), 2);
    // JSON mode: every stdout line is an object, the warnings among them; stderr empty
    let lines = cli.lines.lock().unwrap().clone();
    let objects: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let warnings: Vec<&serde_json::Value> =
        objects.iter().filter(|o| o["event"] == "warning").collect();
    assert_eq!(warnings.len(), 2, "{lines:?}");
    assert!(
        warnings[0]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("key `{deep}` is ignored")),
        "{lines:?}"
    );
    let connected = objects.iter().find(|o| o["event"] == "connected").unwrap();
    assert_eq!(connected["reconnect"], false);
    let pid = cli.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while cli.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(cli.errors.lock().unwrap().is_empty(), "{:?}", cli.errors);
}

/// What a cold start serves from `snap` with etcd down: (flow, revision) pairs, warnings.
async fn cold_start(snap: &Path, t: &Tenant) -> (Vec<(String, u64)>, Vec<String>) {
    let mut conn = Connection::new(vec![format!("http://127.0.0.1:{}", free_port())]);
    conn.connect_timeout = Duration::from_millis(200);
    let w = Watcher::start(conn, t, Some(snap));
    let served = w
        .registry
        .flows()
        .into_iter()
        .map(|f| {
            let v = w.active(&f).unwrap();
            (f, v.revision)
        })
        .collect();
    let warnings = w.warnings();
    w.handle.stop().await;
    (served, warnings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_killed_mid_snapshot_leaves_one_consistent_revision() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let t = tenant("acme");
    let snap = TempDir::new("crash");
    let (a, b) = {
        let w = Watcher::start(server.connection(), &t, Some(&snap.0));
        let mut client = server.client().await;
        let a = publish(&mut client, &t, &flow("leave", 1), None).await;
        let b = publish(&mut client, &t, &flow("travel", 1), None).await;
        until("both", 10, || w.has(&a) && w.has(&b)).await;
        until("written", 10, || {
            Snapshot::open(&snap.0, &t).unwrap().revision().unwrap() == Some(b.revision)
        })
        .await;
        w.handle.stop().await;
        (a, b)
    };
    let good = std::fs::read(snap.0.join("snapshot.json")).unwrap();
    // a writer killed at any byte of its next write (one flow newer, the other retired)
    // leaves its temporary file cut short: never read, removed at the next start
    let mut next: serde_json::Value = serde_json::from_slice(&good).unwrap();
    next["revision"] = serde_json::json!(b.revision + 2);
    next["flows"].as_array_mut().unwrap().truncate(1);
    next["flows"][0]["revision"] = serde_json::json!(b.revision + 1);
    let next = serde_json::to_vec(&next).unwrap();
    for cut in [0, 1, next.len() / 2, next.len() - 1] {
        let tmp = snap.0.join(".snapshot.json.4242.tmp");
        std::fs::write(&tmp, &next[..cut]).unwrap();
        let (served, warnings) = cold_start(&snap.0, &t).await;
        assert_eq!(
            served,
            [
                ("leave".to_owned(), a.revision),
                ("travel".to_owned(), b.revision)
            ],
            "cut at {cut}"
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(!tmp.exists());
        assert_eq!(std::fs::read(snap.0.join("snapshot.json")).unwrap(), good);
    }
    // a write that completed (the rename done) is served whole: the new revision
    std::fs::write(snap.0.join("snapshot.json"), &next).unwrap();
    let (served, _) = cold_start(&snap.0, &t).await;
    assert_eq!(served, [("leave".to_owned(), b.revision + 1)]);

    // the per-file layout of format 1 (what a kill left in the probe: a header at one
    // revision, flow files at others, one missing) is never served as a whole
    let old = TempDir::new("format1");
    std::fs::create_dir_all(old.0.join("flows")).unwrap();
    std::fs::write(
        old.0.join("snapshot.json"),
        r#"{"format":1,"prefix":"/flowc","tenant":"acme","revision":47}"#,
    )
    .unwrap();
    let one = serde_json::json!({"flow": "leave", "revision": 114, "hash": a.hash,
        "name": "flow.yaml", "source": String::from_utf8(flow("leave", 1)).unwrap()});
    std::fs::write(old.0.join("flows/leave.json"), one.to_string()).unwrap();
    let (served, warnings) = cold_start(&old.0, &t).await;
    assert!(served.is_empty(), "{served:?}");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("format 1") && w.contains("rewritten from etcd")),
        "{warnings:?}"
    );
    assert!(!old.0.join("flows/leave.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_human_watcher_never_prints_terminal_escapes_from_etcd() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let url = server.url();
    let run = Running::start(&["watch", "--etcd", &url, "--tenant", "acme"]);
    until("connected", 10, || run.count("connected") == 1).await;
    let mut client = server.client().await;
    let hostile = "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: leave\nname: \"\u{1b}]0;PWNED\u{7}\u{1b}[2J\" ]\nsteps: []\n";
    client
        .put("/flowc/acme/flows/leave", hostile, None)
        .await
        .unwrap();
    client
        .put("/flowc/acme/flows/x\u{1b}[2Jy/z", "odd", None)
        .await
        .unwrap();
    until("rejected", 10, || run.count("rejected leave") == 1).await;
    let errors = || run.errors.lock().unwrap().join("\n");
    until("warned", 10, || errors().contains("is ignored")).await;
    let all = format!("{}\n{}", run.text(), errors());
    assert!(!all.contains('\u{1b}') && !all.contains('\u{7}'), "{all:?}");
    assert!(all.contains("\\u{1b}]0;PWNED\\u{7}"), "{all}");
    assert!(all.contains("x\\u{1b}[2Jy/z"), "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_lists_are_trimmed_and_each_command_has_its_own_exit_codes() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let list = format!("{}, {}", server.url(), server.url());
    let (code, out, err) = flowc_within(
        20,
        &["history", "leave", "--etcd", &list, "--tenant", "acme"],
    );
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(!err.contains("no scheme"), "{err}");
    for (cmd, own) in [
        ("history", "has no history"),
        ("rollback", "no stored version"),
    ] {
        let (code, out, _) = flowc_within(20, &[cmd, "--help"]);
        assert_eq!(code, Some(0));
        assert!(out.contains(own), "{cmd}: {out}");
        assert!(
            !out.contains("two files define one flow id"),
            "{cmd}: {out}"
        );
    }
}

// ---------------------------------------------------------------- probe 11, 13 and earlier fixes

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_lists_deletions_and_rollback_names_a_corrupt_entry() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let t = tenant("acme");
    let url = server.url();
    let mut client = server.client().await;
    let v1 = publish(&mut client, &t, &flow("leave", 1), None).await;
    let v2 = publish(&mut client, &t, &flow("leave", 2), None).await;
    let deleted = etcd::delete(&mut client, &t, "leave", v2.revision)
        .await
        .unwrap();
    // other keys move the revision on between the deletion and the republish
    publish(&mut client, &t, &flow("travel", 1), None).await;
    let v3 = publish(&mut client, &t, &flow("leave", 3), Some(0)).await;
    let h = etcd::history(&mut client, &t, &Options::default(), "leave")
        .await
        .unwrap();
    let events: Vec<(u64, HistoryEvent)> =
        h.iter().map(|i| (i.revision, i.event.clone())).collect();
    assert_eq!(
        events,
        [
            (v1.revision, HistoryEvent::Version),
            (v2.revision, HistoryEvent::Version),
            (deleted, HistoryEvent::Deleted),
            (v3.revision, HistoryEvent::Version),
        ]
    );
    assert_eq!(h[2].hash, None);
    let (code, out, err) = flowc_within(
        20,
        &["history", "leave", "--etcd", &url, "--tenant", "acme"],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with(&format!("revision {deleted}  deleted"))
                && l.contains(&format!("deleted at revision {deleted}"))),
        "{out}"
    );
    // a corrupt entry put by hand: history names it by the revision rollback takes
    let bad = format!("{}999", t.history_prefix("leave"));
    server.etcdctl(&["put", &bad, "junk"]);
    let h = etcd::history(&mut client, &t, &Options::default(), "leave")
        .await
        .unwrap();
    let corrupt = h.last().unwrap();
    assert_eq!(corrupt.corrupt().unwrap().key, bad);
    let at = corrupt.revision.to_string();
    let (code, out, _) = flowc_within(
        20,
        &[
            "history", "leave", "--etcd", &url, "--tenant", "acme", "--format", "json",
        ],
    );
    assert_eq!(code, Some(0));
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[2]["revision"], json!(deleted));
    assert_eq!(list[2]["deleted"], json!(true));
    assert_eq!(list[2]["hash"], json!(null));
    assert_eq!(list[0]["deleted"], json!(false));
    assert_eq!(list[0]["hash"], json!(v1.hash));
    assert_eq!(list[4]["revision"].to_string(), at);
    assert_eq!(list[4]["hash"], json!(null));
    assert_eq!(list[4]["corrupt"]["key"], json!(bad));
    let (code, out, err) = flowc_within(
        20,
        &[
            "rollback", "leave", "--to", &at, "--etcd", &url, "--tenant", "acme",
        ],
    );
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains(&format!(
            "error[flowc::source::etcd-corrupt-revision]: flow `leave`'s stored entry at revision {at} is corrupt: key `{bad}`"
        )),
        "{err}"
    );
    assert!(!err.contains("no stored version"), "{err}");
    // the library names the same typed error
    assert_eq!(
        rollback_refused(&mut client, &t, "leave", at.parse().unwrap()).await,
        "flowc::source::etcd-corrupt-revision"
    );
    // rolling back a deleted flow says when it was deleted, not "revision 0"
    let gone = etcd::delete(&mut client, &t, "leave", v3.revision)
        .await
        .unwrap();
    let to = v1.revision.to_string();
    let (code, out, err) = flowc_within(
        20,
        &[
            "rollback", "leave", "--to", &to, "--etcd", &url, "--tenant", "acme",
        ],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains(&format!("(was deleted at revision {gone})")),
        "{out}"
    );
    assert!(!out.contains("was revision 0"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_watcher_warns_once_that_it_cannot_write_history() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let t = tenant("acme");
    let root = ["--user", "root:secret"];
    let run = |args: &[&str]| {
        let out = server.etcdctl(args);
        assert!(out.status.success(), "{args:?}: {out:?}");
    };
    run(&["user", "add", "root:secret"]);
    run(&["user", "add", "reader:pw"]);
    run(&["role", "add", "flows-read"]);
    run(&[
        "role",
        "grant-permission",
        "flows-read",
        "--prefix=true",
        "read",
        t.base(),
    ]);
    run(&["user", "grant-role", "reader", "flows-read"]);
    run(&["auth", "enable"]);
    let mut conn = server.connection();
    conn.user = Some(("reader".to_owned(), "pw".to_owned()));
    let w = Watcher::start(conn, &t, None);
    until("connected", 10, || w.count("connected") == 1).await;
    for n in 1..=3 {
        let source = String::from_utf8(flow("leave", n)).unwrap();
        let key = t.flow_key("leave");
        run(&["put", &key, &source, root[0], root[1]]);
        let travel = String::from_utf8(flow("travel", n)).unwrap();
        run(&["put", &t.flow_key("travel"), &travel, root[0], root[1]]);
    }
    until("published", 10, || {
        w.published_revisions("leave").len() == 3 && w.published_revisions("travel").len() == 3
    })
    .await;
    let warnings: Vec<String> = w.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("permission denied"), "{warnings:?}");
    assert!(
        warnings[0].contains(&format!(
            "history entries for flows put by hand need write access to `{}history/`",
            t.base()
        )) && warnings[0].contains("this warning does not repeat"),
        "{warnings:?}"
    );
    w.handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_header_is_the_first_line_even_when_the_snapshot_is_served() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let t = tenant("acme");
    let snap = TempDir::new("header-snap");
    {
        let w = Watcher::start(server.connection(), &t, Some(&snap.0));
        let mut client = server.client().await;
        let v = publish(&mut client, &t, &flow("leave", 1), None).await;
        until("published", 10, || w.has(&v)).await;
        until("written", 10, || {
            Snapshot::open(&snap.0, &t).unwrap().revision().unwrap() == Some(v.revision)
        })
        .await;
        w.handle.stop().await;
    }
    let header = std::fs::read(snap.0.join("snapshot.json")).unwrap();
    // etcd down: nothing listens at the endpoint; ten watchers race the header with the
    // snapshot's lines (each its own copy of the snapshot: a directory has one watcher)
    let down = format!("http://127.0.0.1:{}", free_port());
    let dirs: Vec<TempDir> = (0..10)
        .map(|i| {
            let d = TempDir::new(&format!("header-{i}"));
            std::fs::write(d.0.join("snapshot.json"), &header).unwrap();
            d
        })
        .collect();
    let watchers: Vec<Running> = dirs
        .iter()
        .map(|d| {
            let dir = d.0.display().to_string();
            Running::start(&[
                "watch",
                "--etcd",
                &down,
                "--tenant",
                "acme",
                "--snapshot",
                &dir,
            ])
        })
        .collect();
    for w in &watchers {
        until("snapshot served", 20, || w.count("etcd unreachable") == 1).await;
        let lines = w.lines.lock().unwrap().clone();
        assert!(
            lines[0].starts_with(&format!("watching tenant acme under /flowc on {down}")),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.starts_with("loaded leave@")),
            "{lines:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_client_certificate_is_hinted_once() {
    if !have_etcd() || !have_openssl() {
        return;
    }
    let certs = TempDir::new("certs-hint");
    let tls = tls_certs(&certs.0);
    let server = Etcd::start_with(Some(tls), TempDir::new("data"));
    let url = server.url();
    let ca = certs.0.join("ca.pem").display().to_string();
    for cmd in [
        &["watch", "--etcd", &url, "--tenant", "acme", "--cacert", &ca][..],
        &[
            "history", "leave", "--etcd", &url, "--tenant", "acme", "--cacert", &ca,
        ][..],
    ] {
        let (code, out, err) = flowc_within(20, cmd);
        assert_eq!(code, Some(2), "{cmd:?}: {out}{err}");
        assert_eq!(
            err.matches("the server wants a client certificate and none was given: pass --cert and --key, signed by a CA it trusts")
                .count(),
            1,
            "{cmd:?}: {err}"
        );
        assert_eq!(
            err.matches("pass --cert and --key").count(),
            1,
            "{cmd:?}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_directory_serves_one_watcher_at_a_time() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let t = tenant("acme");
    let url = server.url();
    let snap = TempDir::new("shared-snap");
    let dir = snap.0.display().to_string();
    let args = [
        "watch",
        "--etcd",
        &url,
        "--tenant",
        "acme",
        "--snapshot",
        &dir,
    ];
    let first = Running::start(&args);
    until("connected", 10, || first.count("connected") == 1).await;
    // the first watcher's live temporary file (as a write in progress leaves it)
    let live = snap.0.join(".snapshot.json.999999.tmp");
    std::fs::write(&live, b"{").unwrap();
    let (code, out, err) = flowc_within(20, &args);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains(&format!(
            "error[flowc::source::etcd-snapshot]: snapshot `{dir}`: the directory is in use by another watcher (PID {})",
            first.child.id()
        )),
        "{err}"
    );
    assert!(
        live.exists(),
        "the second watcher removed the first one's file"
    );
    // a reader (a cold-start read while the watcher writes) removes nothing either
    let mut client = server.client().await;
    let v = publish(&mut client, &t, &flow("leave", 1), None).await;
    until("written", 10, || {
        Snapshot::open(&snap.0, &t).unwrap().revision().unwrap() == Some(v.revision)
    })
    .await;
    assert!(live.exists());
    let mut reader = Snapshot::open(&snap.0, &t).unwrap();
    assert_eq!(
        code_of(&reader.set_revision(1).unwrap_err()),
        "flowc::source::etcd-snapshot"
    );
    // once the first watcher is gone the directory is the next one's, which clears what
    // a dead writer left
    drop(first);
    let next = Watcher::start(server.connection(), &t, Some(&snap.0));
    until("next", 10, || next.has(&v)).await;
    assert!(!live.exists());
    next.handle.stop().await;
}

// ---------------------------------------------------------------- endpoint lists, metrics, not etcd (probe items 8, 10, 14)

/// A TLS etcd with client-certificate authentication, once it answers.
async fn tls_etcd(certs: &Path) -> Etcd {
    let secure = Etcd::start_with(Some(tls_certs(certs)), TempDir::new("data"));
    let mut ready = secure.connection();
    ready.cacert = Some(certs.join("ca.pem"));
    ready.cert = Some(certs.join("client.pem"));
    ready.key = Some(certs.join("client.key"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while ready.first_contact().await.is_err() {
        assert!(Instant::now() < deadline, "the TLS etcd did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    secure
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_of_two_clusters_are_a_setup_error_naming_both() {
    if !have_etcd() {
        return;
    }
    let one = Etcd::start();
    let other = Etcd::start();
    let list = format!("{},{}", one.url(), other.url());
    let dir = TempDir::new("clusters");
    std::fs::write(dir.0.join("leave.yaml"), flow("leave", 1)).unwrap();
    let file = dir.0.join("leave.yaml").display().to_string();
    let commands: [&[&str]; 4] = [
        &["watch"],
        &["publish", &file],
        &["history", "leave"],
        &["rollback", "leave", "--to", "3"],
    ];
    for cmd in commands {
        let err = refused_by(cmd, &list, &[]);
        assert!(
            err.contains("belong to different etcd clusters"),
            "{cmd:?}: {err}"
        );
        assert!(
            err.contains(&format!("`{}`", one.url()))
                && err.contains(&format!("`{}`", other.url())),
            "{cmd:?}: {err}"
        );
        assert!(
            err.contains("etcd cannot be used as configured (cluster)"),
            "{err}"
        );
    }
    // nothing was written to either
    for server in [&one, &other] {
        let mut c = server.client().await;
        let got = c
            .get("/flowc/", Some(GetOptions::new().with_prefix()))
            .await
            .unwrap();
        assert_eq!(got.count(), 0);
    }
    // the library: connecting is refused, and classified as a setup error
    let conn = Connection::new(vec![one.url(), other.url()]);
    let e = conn.connect().await.err().expect("two clusters connect");
    let setup = conn.setup_error(&e).await.expect("a setup error");
    assert_eq!(setup.fault, etcd::SetupFault::Cluster);
    // and the watcher ends with it
    let mut w = Watcher::start(conn, &tenant("acme"), None);
    let err = finished(&mut w, 20).await.unwrap_err();
    assert!(
        matches!(
            &err,
            EtcdError::Setup {
                fault: etcd::SetupFault::Cluster,
                ..
            }
        ),
        "{err:?}"
    );
    // the same server twice is one cluster
    let same = format!("{},{}", one.url(), one.url());
    let (code, out, err) = flowc_within(
        20,
        &["history", "leave", "--etcd", &same, "--tenant", "acme"],
    );
    assert_eq!(code, Some(1), "{out}{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misconfigured_endpoint_in_a_list_is_warned_about_a_down_one_is_not() {
    if !have_etcd() || !have_openssl() {
        return;
    }
    let certs = TempDir::new("certs-list");
    let secure = tls_etcd(&certs.0).await;
    let plain = Etcd::start();
    // http:// to the TLS etcd, listed first, and the plain one
    let wrong = secure.url().replace("https://", "http://");
    let list = format!("{wrong},{}", plain.url());
    std::fs::write(certs.0.join("leave.yaml"), flow("leave", 1)).unwrap();
    let file = certs.0.join("leave.yaml").display().to_string();
    let warning = format!("warning: endpoint `{wrong}` is left out, the others answer: ");
    let (code, out, err) =
        flowc_within(30, &["publish", &file, "--etcd", &list, "--tenant", "acme"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("published leave@"), "{out}");
    assert!(err.contains(&warning), "{err}");
    assert!(err.contains("speaks TLS, not plain HTTP"), "{err}");
    assert_eq!(err.matches("warning: endpoint").count(), 1, "{err}");
    let revision = key_revision(&mut plain.client().await, &tenant("acme"), "leave").await;
    for cmd in [
        vec!["history", "leave"],
        vec!["rollback", "leave", "--to", &*revision.to_string()],
    ] {
        let mut all = cmd.clone();
        all.extend_from_slice(&["--etcd", &list, "--tenant", "acme"]);
        let (code, out, err) = flowc_within(30, &all);
        // (rolling back to the active revision may be refused: the input, not the list)
        assert!(code == Some(0) || code == Some(1), "{cmd:?}: {out}{err}");
        assert!(err.contains(&warning), "{cmd:?}: {err}");
    }
    // the watcher: a warning event (JSON on stdout), once, and it watches the other
    let w = Running::start(&[
        "watch", "--etcd", &list, "--tenant", "acme", "--format", "json",
    ]);
    // `connected` comes first, then the read's publishes
    until("connected", 20, || {
        w.text().contains("\"event\":\"connected\"") && w.text().contains("\"event\":\"publish\"")
    })
    .await;
    let text = w.text();
    let warnings: Vec<serde_json::Value> = w
        .lines
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "warning")
        .collect();
    assert_eq!(warnings.len(), 1, "{text}");
    // the warning belongs to the connect report: right after `connected`
    let order: Vec<String> = w
        .lines
        .lock()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].to_string())
        .collect();
    assert_eq!(
        order[..3],
        ["\"connected\"", "\"warning\"", "\"publish\""],
        "{text}"
    );
    let message = warnings[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("endpoint `{wrong}` is left out"))
            && message.contains("speaks TLS"),
        "{message}"
    );
    assert!(text.contains("\"event\":\"publish\""), "{text}");
    drop(w);
    // the library reports it in what `open` returns
    let opened = Connection::new(vec![wrong.clone(), plain.url()])
        .open()
        .await
        .unwrap();
    assert_eq!(opened.warnings.len(), 1, "{:?}", opened.warnings);
    // a down endpoint in the list: no warning, the command works
    let down = format!("http://127.0.0.1:{}", free_port());
    let list = format!("{down},{}", plain.url());
    let (code, out, err) = flowc_within(
        30,
        &["history", "leave", "--etcd", &list, "--tenant", "acme"],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(!err.contains("warning"), "{err}");
    let opened = Connection::new(vec![down, plain.url()])
        .open()
        .await
        .unwrap();
    assert!(opened.warnings.is_empty(), "{:?}", opened.warnings);
}

/// `python3 -m http.server` on a free loopback port; killed by PID on drop.
struct HttpServer {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl HttpServer {
    /// `None` when python3 is missing.
    fn start() -> Option<HttpServer> {
        let dir = TempDir::new("http-server");
        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .current_dir(&dir.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let server = HttpServer {
            child,
            port,
            _dir: dir,
        };
        wait_listening(port, "python3 -m http.server did not start");
        Some(server)
    }
}

/// Waits (at most 20 s) until something listens on the loopback `port`; `failure` is
/// the assertion's message when nothing does.
fn wait_listening(port: u16, failure: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{failure}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_http_server_at_the_endpoint_is_a_setup_error_not_a_retry() {
    if !have_etcd() {
        return;
    }
    let Some(http) = HttpServer::start() else {
        eprintln!("skipped: python3 is not on PATH");
        return;
    };
    let url = format!("http://127.0.0.1:{}", http.port);
    let said = format!(
        "127.0.0.1:{} answers HTTP but is not etcd (no gRPC)",
        http.port
    );
    let dir = TempDir::new("not-etcd");
    std::fs::write(dir.0.join("leave.yaml"), flow("leave", 1)).unwrap();
    let file = dir.0.join("leave.yaml").display().to_string();
    let commands: [&[&str]; 4] = [
        &["watch"],
        &["publish", &file],
        &["history", "leave"],
        &["rollback", "leave", "--to", "3"],
    ];
    for cmd in commands {
        let err = refused_by(cmd, &url, &[]);
        assert!(err.contains(&said), "{cmd:?}: {err}");
        assert!(err.contains("(not-etcd)"), "{cmd:?}: {err}");
        assert!(!err.contains("frame with invalid size"), "{cmd:?}: {err}");
    }
    // the library watcher ends with the typed error, without a retry
    let mut w = Watcher::start(Connection::new(vec![url.clone()]), &tenant("acme"), None);
    let err = finished(&mut w, 20).await.unwrap_err();
    assert!(
        matches!(
            &err,
            EtcdError::Setup {
                fault: etcd::SetupFault::NotEtcd,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(w.count("disconnected"), 0);
    // listed beside a real etcd: a warning, and the etcd is used
    let server = Etcd::start();
    let list = format!("{url},{}", server.url());
    let (code, out, err) =
        flowc_within(30, &["publish", &file, "--etcd", &list, "--tenant", "acme"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        err.contains(&format!("warning: endpoint `{url}` is left out")) && err.contains(&said),
        "{err}"
    );
}

/// `METHOD PATH` over plain HTTP/1.0: the status code and the body.
fn http_get(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_only_at_metrics_with_valid_and_bounded_flow_labels() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let t = tenant("acme");
    let port = free_port();
    let w = Running::start(&[
        "watch",
        "--etcd",
        &server.url(),
        "--tenant",
        "acme",
        "--format",
        "json",
        "--metrics-addr",
        &format!("127.0.0.1:{port}"),
    ]);
    until("connected", 20, || {
        w.text().contains("\"event\":\"connected\"")
    })
    .await;
    // only /metrics
    let (status, body) = http_get(port, "/metrics");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("flowc_connected 1"), "{body}");
    for path in ["/", "/health", "/metrics/x", "/favicon.ico", "/etc/passwd"] {
        let (status, body) = http_get(port, path);
        assert_eq!(status, 404, "{path}: {body}");
        assert!(!body.contains("flowc_"), "{path}: {body}");
    }
    // no unlabelled per-flow counters
    for line in body.lines() {
        assert!(
            !line.starts_with("flowc_publishes_total ")
                && !line.starts_with("flowc_rejects_total "),
            "{body}"
        );
    }
    assert!(body.contains("\nflowc_resyncs_total 0"), "{body}");
    let mut client = server.client().await;
    let v = publish(&mut client, &t, &flow("leave", 1), None).await;
    // junk keys, then more rejected flows than the bound
    let junk = ["请假", "Bad_Id", "bin\u{1b}[31m"];
    for key in junk {
        client
            .put(format!("{}flows/{key}", t.base()), "not: [valid", None)
            .await
            .unwrap();
    }
    let bound = flowc::limits::Limits::MAX_METRIC_FLOWS;
    let names: Vec<String> = (0..bound).map(|i| format!("f{i:05}")).collect();
    for chunk in names.chunks(100) {
        let ops: Vec<etcd_client::TxnOp> = chunk
            .iter()
            .map(|n| etcd_client::TxnOp::put(format!("{}flows/{n}", t.base()), "not: [valid", None))
            .collect();
        client
            .txn(etcd_client::Txn::new().and_then(ops))
            .await
            .unwrap();
    }
    let last = names.last().unwrap().clone();
    until("all rejected", 60, || {
        w.text().contains(&format!("\"flow\":\"{last}\""))
    })
    .await;
    let (status, body) = http_get(port, "/metrics");
    assert_eq!(status, 200);
    let labels = |name: &str| -> Vec<(String, String)> {
        body.lines()
            .filter_map(|l| l.strip_prefix(&format!("{name}{{flow=\"")))
            .filter_map(|rest| rest.split_once("\"} "))
            .map(|(f, n)| (f.to_owned(), n.to_owned()))
            .collect()
    };
    let rejects = labels("flowc_rejects_total");
    let publishes = labels("flowc_publishes_total");
    // `leave` and the first bound-1 rejected flows have their own label; the junk keys
    // and the flow beyond the bound share `(other)`
    assert_eq!(rejects.len(), bound + 1, "{body}");
    assert_eq!(publishes.len(), bound + 1, "{body}");
    assert!(
        rejects.contains(&("leave".to_owned(), "0".to_owned())),
        "{body}"
    );
    assert!(
        publishes.contains(&("leave".to_owned(), "1".to_owned())),
        "{body}"
    );
    assert!(
        rejects.contains(&("(other)".to_owned(), "4".to_owned())),
        "{body}"
    );
    assert!(
        rejects.contains(&(names[bound - 2].clone(), "1".to_owned())),
        "{body}"
    );
    assert!(!rejects.iter().any(|(f, _)| *f == last), "{body}");
    for (f, _) in &rejects {
        assert!(
            f == "(other)"
                || f.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "{f}"
        );
    }
    assert!(!body.contains("请假") && !body.contains("Bad_Id"), "{body}");
    assert!(
        body.contains(&format!(
            "flowc_active_revision{{flow=\"leave\"}} {}",
            v.revision
        )),
        "{body}"
    );
    assert!(
        !body.contains("flowc_active_revision{flow=\"(other)\"}"),
        "{body}"
    );
}

/// Waits (bounded) for a child to exit, polling: a liveness check, not a measurement.
fn exit_within(child: &mut Child, secs: u64) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn sigterm(child: &Child) {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_reconnecting_to_an_etcd_with_another_history_reads_everything_again() {
    if !have_etcd() {
        return;
    }
    let mut server = Etcd::start();
    let t = tenant("acme");
    let mut c = server.client().await;
    let travel = publish(&mut c, &t, &flow("travel", 1), None).await;
    let mut leave = publish(&mut c, &t, &flow("leave", 1), None).await;
    for n in 2..8 {
        leave = publish(&mut c, &t, &flow("leave", n), Some(leave.revision)).await;
    }
    let snap = TempDir::new("snap-history");
    let w = Watcher::start(server.connection(), &t, Some(&snap.0));
    until("read", 10, || {
        w.has(&travel) && w.has(&leave) && w.handle.is_connected()
    })
    .await;
    let old_revision = w.handle.revision().unwrap();
    // the same address, a new data dir: etcd recreated, its revisions start again
    server.kill();
    until("disconnected", 10, || w.count("disconnected") == 1).await;
    server.dir = TempDir::new("data-recreated");
    server.spawn();
    let mut c = server.client().await;
    let expense = publish(&mut c, &t, &flow("expense", 1), None).await;
    assert!(expense.revision < old_revision);
    until("the new etcd's flow", 15, || w.has(&expense)).await;
    until("the old flows retired", 10, || {
        w.active("travel").is_none() && w.active("leave").is_none()
    })
    .await;
    let resyncs = w.events_of(|e| match e {
        WatchEvent::Resync { reason, revision } => Some((*reason, *revision)),
        _ => None,
    });
    assert_eq!(resyncs.len(), 1, "{resyncs:?}");
    let (reason, read) = resyncs[0];
    match reason {
        // etcd derives the cluster id from the member's name and peer URL: recreated
        // alike, it is the same cluster id with a revision below the one applied
        etcd::ResyncReason::RevisionBehind { last, now } => {
            assert_eq!((last, now), (old_revision, read));
        }
        etcd::ResyncReason::ClusterChanged { was, now } => assert_ne!(was, now),
        other => panic!("{other:?}"),
    }
    let retired = w.events_of(|e| match e {
        WatchEvent::Retire {
            flow,
            revision,
            exact,
        } => Some((flow.clone(), *revision, *exact)),
        _ => None,
    });
    assert_eq!(
        retired,
        vec![
            ("leave".to_owned(), read, false),
            ("travel".to_owned(), read, false)
        ]
    );
    // the watch goes on from the new etcd's revision: a publish after it arrives
    let next = publish(&mut c, &t, &flow("expense", 2), Some(expense.revision)).await;
    until("a later publish", 10, || w.has(&next)).await;
    assert_eq!(w.handle.revision(), Some(next.revision));
    assert!(w.handle.is_connected());
    // the snapshot holds the new etcd's flows only (written after the swap)
    let kept = || {
        let snapshot = Snapshot::open(&snap.0, &t).unwrap();
        let flows: Vec<(String, u64)> = snapshot
            .flows()
            .unwrap()
            .into_iter()
            .map(|f| (f.flow, f.revision))
            .collect();
        (flows, snapshot.revision().unwrap())
    };
    let want = (
        vec![("expense".to_owned(), next.revision)],
        Some(next.revision),
    );
    until("the snapshot rewritten", 10, || kept() == want).await;
    drop(w);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_only_good_endpoint_beside_a_non_etcd_one_is_an_outage_not_a_setup_error() {
    if !have_etcd() {
        return;
    }
    let Some(http) = HttpServer::start() else {
        eprintln!("skipped: python3 is not on PATH");
        return;
    };
    let mut server = Etcd::start();
    let list = format!("{},http://127.0.0.1:{}", server.url(), http.port);
    let mut w = Running::start(&[
        "watch", "--etcd", &list, "--tenant", "acme", "--format", "json",
    ]);
    until("connected", 20, || w.count("{\"event\":\"connected\"") == 1).await;
    server.kill();
    until("disconnected", 20, || {
        w.count("{\"event\":\"disconnected\"") == 1
    })
    .await;
    // several attempts fail meanwhile (each one asks both endpoints)
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        w.child.try_wait().unwrap().is_none(),
        "the watcher exited: {}",
        w.errors.lock().unwrap().join("\n")
    );
    server.spawn();
    until("connected again", 20, || {
        w.count("{\"event\":\"connected\"") == 2
    })
    .await;
    assert!(w.text().contains("\"reconnect\":true"), "{}", w.text());
    sigterm(&w.child);
    let status = exit_within(&mut w.child, 10).expect("no exit after SIGTERM");
    assert_eq!(status.code(), Some(0));
    let errors = w.errors.lock().unwrap().join("\n");
    assert!(!errors.contains("etcd-setup"), "{errors}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_cancels_a_connection_attempt_to_a_server_that_never_answers() {
    // a listener that accepts and never says a word
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming() {
            match s {
                Ok(s) => held.push(s),
                Err(_) => break,
            }
        }
    });
    let url = format!("http://127.0.0.1:{port}");
    let mut w = Running::start(&[
        "watch", "--etcd", &url, "--tenant", "acme", "--format", "json",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    sigterm(&w.child);
    let status = exit_within(&mut w.child, 2).expect("still running 2 s after SIGTERM");
    assert_eq!(status.code(), Some(0));
    // the readers have seen all the output once the process is gone
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(w.text(), "", "nothing is printed after the signal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connected_comes_before_the_events_of_the_first_read() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let t = tenant("acme");
    let mut c = server.client().await;
    let v = publish(&mut c, &t, &flow("leave", 1), None).await;
    c.put(t.flow_key("broken"), "kind: nonsense", None)
        .await
        .unwrap();
    c.put(format!("{}flows/a/b", t.base()), "x", None)
        .await
        .unwrap();
    let w = Watcher::start(server.connection(), &t, None);
    until("read", 10, || {
        w.has(&v) && w.count("reject") == 1 && w.handle.is_connected()
    })
    .await;
    let names = w.events_of(|e| Some(e.name()));
    assert_eq!(names.first(), Some(&"connected"), "{names:?}");
    assert_eq!(w.count("connected"), 1);
    // human mode: the snapshot's flows are said to be replaced before they are
    let snap = TempDir::new("snap-order");
    let url = server.url();
    let dir = snap.0.display().to_string();
    let args = [
        "watch",
        "--etcd",
        &url,
        "--tenant",
        "acme",
        "--snapshot",
        &dir,
    ];
    let mut first = Running::start(&args);
    // stopped once its snapshot holds the flow (it is written after the read's events
    // are printed)
    let written = snap.0.join("snapshot.json");
    until("first run", 20, || {
        first.text().contains("rejected broken")
            && std::fs::read_to_string(&written).is_ok_and(|s| s.contains("leave"))
    })
    .await;
    sigterm(&first.child);
    exit_within(&mut first.child, 10).expect("no exit after SIGTERM");
    let second = Running::start(&args);
    until("second run", 20, || {
        second.text().contains("replaced by etcd's") && second.count("rejected broken") > 0
    })
    .await;
    let text = second.text();
    let connected = text.find("connected at revision").unwrap();
    let rejected = text.find("rejected broken").unwrap();
    assert!(connected < rejected, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retire_found_by_a_resync_names_the_read_revision_as_at_or_before() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let t = tenant("acme");
    let live = Watcher::start(server.connection(), &t, None);
    let paused = [
        Watcher::start(server.connection(), &t, None),
        Watcher::start(server.connection(), &t, None),
    ];
    let mut client = server.client().await;
    let b1 = publish(&mut client, &t, &flow("travel", 1), None).await;
    until("published", 10, || {
        live.has(&b1) && paused.iter().all(|w| w.has(&b1))
    })
    .await;
    for w in &paused {
        w.handle.pause();
    }
    until("paused", 10, || {
        paused.iter().all(|w| !w.handle.is_connected())
    })
    .await;
    let deleted = etcd::delete(&mut client, &t, "travel", b1.revision)
        .await
        .unwrap();
    let c1 = publish(&mut client, &t, &flow("expense", 1), None).await;
    client.compact(c1.revision as i64, None).await.unwrap();
    until("live retire", 10, || live.active("travel").is_none()).await;
    for w in &paused {
        w.handle.resume();
    }
    until("resynced", 10, || {
        paused
            .iter()
            .all(|w| w.has(&c1) && w.active("travel").is_none())
    })
    .await;
    let retires = |w: &Watcher| {
        w.events_of(|e| match e {
            WatchEvent::Retire {
                flow,
                revision,
                exact,
            } => Some((flow.clone(), *revision, *exact)),
            _ => None,
        })
    };
    assert_eq!(retires(&live), vec![("travel".to_owned(), deleted, true)]);
    for w in &paused {
        let read = w.events_of(|e| match e {
            WatchEvent::Resync { revision, reason } => {
                assert_eq!(*reason, etcd::ResyncReason::Compacted);
                Some(*revision)
            }
            _ => None,
        });
        assert_eq!(read, vec![c1.revision]);
        assert_eq!(retires(w), vec![("travel".to_owned(), c1.revision, false)]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_etcd_is_reported_as_a_keep_alive_timeout() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let t = tenant("acme");
    let w = Watcher::start(server.connection(), &t, None);
    until("connected", 10, || w.handle.is_connected()).await;
    // "connected" is reported after the first read, before the watch stream is made:
    // a publish seen through the watch says the stream is live (frozen before that,
    // the watch request itself times out, which the next test covers)
    let mut client = server.client().await;
    let v = publish(&mut client, &t, &flow("leave", 1), None).await;
    until("watched", 10, || w.has(&v)).await;
    let signal = |s: &str| server.signal(s);
    signal("-STOP");
    // keep-alive pings every 5 s, each given 3 s
    let waited = tokio::time::timeout(
        Duration::from_secs(30),
        until("disconnected", 30, || w.count("disconnected") == 1),
    )
    .await;
    signal("-CONT");
    waited.unwrap();
    let errors = w.events_of(|e| match e {
        WatchEvent::Disconnected { error, .. } => Some(error.clone()),
        _ => None,
    });
    assert!(
        errors[0].contains("did not answer a keep-alive ping within 3 s")
            && !errors[0].contains("broken pipe"),
        "{errors:?}"
    );
    until("reconnected", 20, || w.count("connected") == 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_to_a_frozen_etcd_says_it_had_no_answer_in_time() {
    if !have_etcd() {
        return;
    }
    // CI once froze etcd between a watcher's first read and its watch request: the
    // request's timeout came back as tonic's bare "transport error: Timeout expired"
    let server = Etcd::start();
    let mut conn = server.connection();
    conn.request_timeout = Duration::from_secs(1);
    let mut client = conn.connect().await.unwrap();
    let signal = |s: &str| server.signal(s);
    signal("-STOP");
    let got = tokio::time::timeout(Duration::from_secs(10), client.get("k", None)).await;
    signal("-CONT");
    let e = got
        .expect("the request timeout ends the request")
        .unwrap_err();
    let error = flowc::store::etcd::etcd_error("read", &e);
    assert!(error.is_unreachable(), "{error}");
    assert_eq!(
        error.to_string(),
        "cannot reach etcd at the endpoints given (read): no answer within the request timeout"
    );
}

// ---------------------------------------------------------------- issue 10: token expiry, honest messages

/// An auth-enabled etcd whose tokens expire after 2 s; users `root:secret`, `engine:pw`
/// (readwrite on the tenant's keys) and `rouser:pw` (read only).
fn auth_etcd_with_expiring_tokens(t: &Tenant) -> Etcd {
    let mut server = Etcd::unstarted(None, TempDir::new("data"));
    server.extra = vec!["--auth-token-ttl".to_owned(), "2".to_owned()];
    server.spawn();
    server.etcdctl(&["user", "add", "root:secret"]);
    for (user, role, perm) in [
        ("engine:pw", "flows-rw", "readwrite"),
        ("rouser:pw", "flows-ro", "read"),
    ] {
        server.etcdctl(&["user", "add", user]);
        server.etcdctl(&["role", "add", role]);
        server.etcdctl(&[
            "role",
            "grant-permission",
            role,
            "--prefix=true",
            perm,
            t.base(),
        ]);
        server.etcdctl(&["user", "grant-role", user.split(':').next().unwrap(), role]);
    }
    server.etcdctl(&["auth", "enable"]);
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_auth_token_is_renewed_and_a_read_only_publish_names_write_access() {
    if !have_etcd() {
        return;
    }
    let t = tenant("acme");
    let server = auth_etcd_with_expiring_tokens(&t);
    let mut conn = server.connection();
    conn.user = Some(("engine".to_owned(), "pw".to_owned()));
    let w = Watcher::start(conn, &t, None);
    until("connected", 10, || w.count("connected") == 1).await;
    // idle past the token's lifetime, then a flow put by hand
    tokio::time::sleep(Duration::from_secs(3)).await;
    let source = String::from_utf8(flow("leave", 1)).unwrap();
    server.etcdctl(&[
        "--user",
        "root:secret",
        "put",
        &t.flow_key("leave"),
        &source,
    ]);
    until("published", 10, || {
        w.published_revisions("leave").len() == 1
    })
    .await;
    let history = |server: &Etcd| {
        let out = server.etcdctl(&[
            "--user",
            "root:secret",
            "get",
            "--prefix",
            "--keys-only",
            &t.history_prefix("leave"),
        ]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while history(&server).is_empty() {
        assert!(
            Instant::now() < deadline,
            "no history entry: {:?}",
            w.warnings()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(w.warnings(), Vec::<String>::new());
    w.handle.stop().await;

    // a user who may read the tenant's keys but not write them
    let dir = TempDir::new("ro");
    let file = dir.0.join("travel.yaml");
    std::fs::write(&file, flow("travel", 1)).unwrap();
    let url = server.url();
    let (code, out, err) = flowc_within(
        20,
        &[
            "publish",
            file.to_str().unwrap(),
            "--etcd",
            &url,
            "--tenant",
            "acme",
            "--user",
            "rouser:pw",
        ],
    );
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains(&format!(
            "error[flowc::source::etcd-setup]: etcd cannot be used as configured (auth): etcd lets the user `rouser` read `{}` but not write them",
            t.base()
        )),
        "{err}"
    );
    assert!(err.contains("readwrite"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletions_missing_history_tls_on_http_and_a_file_snapshot_are_said_plainly() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let t = tenant("acme");
    let url = server.url();
    let mut client = server.client().await;
    let dir = TempDir::new("said");
    let file = dir.0.join("leave.yaml");
    std::fs::write(&file, flow("leave", 1)).unwrap();
    let file = file.to_str().unwrap();
    let v1 = publish(&mut client, &t, &flow("leave", 1), None).await;
    server.etcdctl(&["del", &t.flow_key("leave")]);
    // the deletion is etcd's newest revision
    let deleted = client
        .get("x", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision() as u64;
    let expect = v1.revision.to_string();
    let run = |args: &[&str]| flowc_within(20, args);
    let common = ["--etcd", url.as_str(), "--tenant", "acme"];

    // a publish expecting the deleted key's revision
    let mut args = vec!["publish", file, "--expect-revision", &expect];
    args.extend(common);
    let (code, out, err) = run(&args);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains(&format!(
            "`leave` was changed concurrently: expected revision {expect}, but the flow was deleted at revision {deleted}"
        )),
        "{err}"
    );

    // a rollback to the deletion
    let to = deleted.to_string();
    let mut args = vec!["rollback", "leave", "--to", &to];
    args.extend(common);
    let (code, out, err) = run(&args);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains(&format!(
            "error[flowc::source::etcd-deleted-revision]: flow `leave` was deleted at revision {deleted}: a deletion holds no version to roll back to"
        )) && err.contains(&format!("roll back to a version instead: stored revisions: {expect}")),
        "{err}"
    );
    // the library names the same typed error
    assert_eq!(
        rollback_refused(&mut client, &t, "leave", deleted).await,
        "flowc::source::etcd-deleted-revision"
    );

    // a flow put by hand, without history
    let other = tenant("other");
    let v = publish(&mut client, &other, &flow("travel", 1), None).await;
    let source = String::from_utf8(flow("travel", 1)).unwrap();
    server.etcdctl(&["put", &t.flow_key("travel"), &source]);
    let at = key_revision(&mut client, &t, "travel").await;
    let mut args = vec!["history", "travel"];
    args.extend(common);
    let (code, out, err) = run(&args);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains(&format!(
            "error: `travel` exists in tenant `acme` at revision {at} (hash {}) but has no history entries",
            v.hash
        )) && !err.contains("never published"),
        "{err}"
    );

    // TLS files with a plain endpoint, for every command
    let ca = dir.0.join("ca.pem");
    let ca = ca.to_str().unwrap();
    for cmd in [
        vec!["history", "leave"],
        vec!["publish", file],
        vec!["rollback", "leave", "--to", "1"],
        vec!["watch"],
    ] {
        let mut args = cmd.clone();
        args.extend(common);
        args.extend(["--cacert", ca]);
        let (code, out, err) = run(&args);
        assert_eq!(code, Some(2), "{cmd:?}: {out}{err}");
        assert!(
            err.contains(&format!(
                "(scheme): TLS options given for http:// endpoint `{url}`: use https://HOST:PORT"
            )),
            "{cmd:?}: {err}"
        );
    }

    // a snapshot path that is a file
    let snap = dir.0.join("snapfile");
    std::fs::write(&snap, b"x").unwrap();
    let snap = snap.to_str().unwrap();
    let mut args = vec!["watch", "--snapshot", snap];
    args.extend(common);
    let (code, out, err) = run(&args);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains(&format!("snapshot `{snap}`: `{snap}` is not a directory")),
        "{err}"
    );
}

// ---------------------------------------------------------------- probe 5's nits (CLI)

/// A TCP listener that accepts every connection and never answers (python3); killed by
/// PID on drop. `None` when python3 is missing.
struct Silent {
    child: Child,
    port: u16,
}

impl Silent {
    fn start() -> Option<Silent> {
        let port = free_port();
        let script = format!(
            "import socket, time\n\
             s = socket.socket()\n\
             s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind(('127.0.0.1', {port}))\n\
             s.listen(64)\n\
             held = []\n\
             while True:\n\
             \x20   c, _ = s.accept()\n\
             \x20   held.append(c)\n"
        );
        let child = Command::new("python3")
            .args(["-c", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let silent = Silent { child, port };
        wait_listening(port, "the silent listener did not start");
        Some(silent)
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_gives_up_on_a_server_that_never_answers_after_the_connect_timeout() {
    let Some(silent) = Silent::start() else {
        eprintln!("skipped: python3 is not on PATH");
        return;
    };
    let url = format!("http://127.0.0.1:{}", silent.port);
    let dir = TempDir::new("silent");
    std::fs::write(dir.0.join("leave.yaml"), flow("leave", 1)).unwrap();
    let file = dir.0.join("leave.yaml").display().to_string();
    let commands: [&[&str]; 3] = [
        &["publish", &file],
        &["history", "leave"],
        &["rollback", "leave", "--to", "3"],
    ];
    for cmd in commands {
        let mut args = cmd.to_vec();
        args.extend(["--etcd", &url, "--tenant", "acme"]);
        // liveness only (the old code took 6.5 to 14.6 s): the wait is one connect
        // timeout, 3 s
        let started = Instant::now();
        let (code, out, err) = flowc_within(60, &args);
        let took = started.elapsed();
        assert_eq!(code, Some(2), "{cmd:?}: {out}{err}");
        assert!(
            err.contains(&format!(
                "error[flowc::store::etcd-unreachable]: cannot reach etcd at {url} (connect): no answer within 3 s"
            )),
            "{cmd:?}: {err}"
        );
        assert!(took < Duration::from_secs(6), "{cmd:?}: {took:?}");
    }
    // a list of two such listeners: the same, after the one survey
    let Some(other) = Silent::start() else {
        return;
    };
    let list = format!("{url},http://127.0.0.1:{}", other.port);
    let (code, out, err) = flowc_within(
        60,
        &["history", "leave", "--etcd", &list, "--tenant", "acme"],
    );
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains(&format!(
            "cannot reach etcd at {list} (connect): no answer within 3 s"
        )),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_port_0_report_the_port_bound_in_both_formats() {
    let down = format!("http://127.0.0.1:{}", free_port());
    let common = ["watch", "--etcd", &down, "--tenant", "acme"];
    // JSON: the first line is the `metrics` event with the address bound
    let mut args = common.to_vec();
    args.extend(["--metrics-addr", "localhost:0", "--format", "json"]);
    let w = Running::start(&args);
    let deadline = Instant::now() + Duration::from_secs(20);
    while w.lines.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no line: {:?}", w.errors);
        std::thread::sleep(Duration::from_millis(20));
    }
    let first: serde_json::Value =
        serde_json::from_str(&w.lines.lock().unwrap()[0].clone()).unwrap();
    assert_eq!(first["event"], "metrics", "{first}");
    assert_eq!(first["flow"], json!(null));
    let address: std::net::SocketAddr = first["address"].as_str().unwrap().parse().unwrap();
    assert_ne!(address.port(), 0, "{first}");
    assert_eq!(first["url"], json!(format!("http://{address}/metrics")));
    let body = scrape(address.port()).unwrap();
    assert!(body.contains("flowc_connected"), "{body}");
    drop(w);
    // human: the header names the port bound
    let mut args = common.to_vec();
    args.extend(["--metrics-addr", "127.0.0.1:0"]);
    let w = Running::start(&args);
    let deadline = Instant::now() + Duration::from_secs(20);
    while w.lines.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no line: {:?}", w.errors);
        std::thread::sleep(Duration::from_millis(20));
    }
    let header = w.lines.lock().unwrap()[0].clone();
    let port: u16 = header
        .split("metrics at http://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("{header}"))
        .parse()
        .unwrap();
    assert_ne!(port, 0, "{header}");
    assert!(scrape(port).unwrap().contains("flowc_connected"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_under_a_file_names_the_file() {
    let dir = TempDir::new("snap-under-file");
    let file = dir.0.join("sfile");
    std::fs::write(&file, b"x").unwrap();
    let snap = file.join("sub");
    let down = format!("http://127.0.0.1:{}", free_port());
    let (code, out, err) = flowc_within(
        30,
        &[
            "watch",
            "--etcd",
            &down,
            "--tenant",
            "acme",
            "--snapshot",
            snap.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains(&format!(
            "snapshot `{}`: `{}` is a file, not a directory, so no directory can be created under it",
            snap.display(),
            file.display()
        )) && err.contains("move that file away or choose another --snapshot"),
        "{err}"
    );
    assert!(!err.contains("os error"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_user_name_is_a_usage_error() {
    let down = format!("http://127.0.0.1:{}", free_port());
    for cmd in [&["watch"][..], &["history", "leave"][..]] {
        let mut args = cmd.to_vec();
        args.extend(["--etcd", &down, "--tenant", "acme", "--user", ":pw"]);
        let (code, out, err) = flowc_within(30, &args);
        assert_eq!(code, Some(2), "{cmd:?}: {out}{err}");
        assert!(
            err.contains("error: --user has an empty user name (before the `:`)"),
            "{cmd:?}: {err}"
        );
        assert!(!err.contains("etcd refused"), "{cmd:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_endpoint_beside_one_that_is_not_etcd_names_the_one_that_is_not() {
    if !have_etcd() {
        return;
    }
    let Some(http) = HttpServer::start() else {
        eprintln!("skipped: python3 is not on PATH");
        return;
    };
    let down = format!("http://127.0.0.1:{}", free_port());
    let not_etcd = format!("http://127.0.0.1:{}", http.port);
    let said = format!(
        "endpoint `{not_etcd}` is left out, the others may serve (they do not answer now): 127.0.0.1:{} answers HTTP but is not etcd (no gRPC)",
        http.port
    );
    let list = format!("{down},{not_etcd}");
    // publish: the warning, then the outage of the one left
    let dir = TempDir::new("down-not-etcd");
    std::fs::write(dir.0.join("leave.yaml"), flow("leave", 1)).unwrap();
    let file = dir.0.join("leave.yaml").display().to_string();
    let (code, out, err) =
        flowc_within(60, &["publish", &file, "--etcd", &list, "--tenant", "acme"]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(err.contains(&format!("warning: {said}")), "{err}");
    assert!(!err.contains("frame with invalid size"), "{err}");
    // watch: a warning event, then retries of the down one (an outage, not fatal)
    let w = Running::start(&[
        "watch", "--etcd", &list, "--tenant", "acme", "--format", "json",
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while w.count("{\"event\":\"disconnected\"") == 0 {
        assert!(Instant::now() < deadline, "{}", w.text());
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = w.text();
    let warnings: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == "warning")
        .collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(
        warnings[0]["message"].as_str().unwrap().contains(&said),
        "{text}"
    );
    assert!(!text.contains("frame with invalid size"), "{text}");
    // when etcd comes up at the down address, it serves
    drop(w);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_options_with_a_plain_endpoint_beside_a_tls_one_leave_the_plain_one_out() {
    if !have_etcd() || !have_openssl() {
        return;
    }
    let certs = TempDir::new("certs-mixed");
    let secure = tls_etcd(&certs.0).await;
    let plain = Etcd::start();
    let p = |n: &str| certs.0.join(n).display().to_string();
    let (ca, cert, key) = (p("ca.pem"), p("client.pem"), p("client.key"));
    let list = format!("{},{}", secure.url(), plain.url());
    let dir = TempDir::new("mixed");
    std::fs::write(dir.0.join("leave.yaml"), flow("leave", 1)).unwrap();
    let file = dir.0.join("leave.yaml").display().to_string();
    let tls = ["--cacert", &ca, "--cert", &cert, "--key", &key];
    let mut args = vec!["publish", &file, "--etcd", &list, "--tenant", "acme"];
    args.extend(tls);
    let (code, out, err) = flowc_within(60, &args);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        err.contains(&format!(
            "warning: endpoint `{}` is left out, the https:// ones are used: TLS options given for http:// endpoint `{}`: use https://HOST:PORT",
            plain.url(),
            plain.url()
        )),
        "{err}"
    );
    assert!(out.starts_with("published leave@"), "{out}");
    // written to the TLS etcd, not the plain one
    let mut ready = secure.connection();
    ready.cacert = Some(certs.0.join("ca.pem"));
    ready.cert = Some(certs.0.join("client.pem"));
    ready.key = Some(certs.0.join("client.key"));
    let mut client = ready.connect().await.unwrap();
    let t = tenant("acme");
    assert!(key_revision(&mut client, &t, "leave").await > 0);
    let mut plain_client = plain.client().await;
    let got = plain_client.get(t.flow_key("leave"), None).await.unwrap();
    assert!(got.kvs().is_empty());
    // every endpoint plain: still the setup error
    let plain_url = plain.url();
    let mut args = vec!["history", "leave", "--etcd", &plain_url, "--tenant", "acme"];
    args.extend(tls);
    let (code, out, err) = flowc_within(60, &args);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains("(scheme): TLS options given for http:// endpoint"),
        "{err}"
    );
    // the CA left out: say that this machine does not trust the server's CA
    let (code, out, err) = flowc_within(
        60,
        &[
            "history",
            "leave",
            "--etcd",
            &secure.url(),
            "--tenant",
            "acme",
            "--cert",
            &cert,
            "--key",
            &key,
        ],
    );
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains(
            "the server's certificate is not signed by a CA this machine trusts; pass --cacert FILE"
        ),
        "{err}"
    );
    assert!(!err.contains("(none given)"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_json_says_the_key_is_gone_after_its_deletion_was_compacted() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let t = tenant("acme");
    let mut client = server.client().await;
    let v1 = publish(&mut client, &t, &flow("leave", 1), None).await;
    let url = server.url();
    let json_of = || {
        let (code, out, err) = flowc_within(
            30,
            &[
                "history", "leave", "--etcd", &url, "--tenant", "acme", "--format", "json",
            ],
        );
        assert_eq!(code, Some(0), "{out}{err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    // present: one version, no deletion
    let list = json_of();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["deleted"], json!(false));
    assert_eq!(list[0]["exact"], json!(null));
    // deleted, seen at its revision
    let at = etcd::delete(&mut client, &t, "leave", v1.revision)
        .await
        .unwrap();
    let list = json_of();
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    assert_eq!(list[1]["revision"], json!(at));
    assert_eq!(list[1]["deleted"], json!(true));
    assert_eq!(list[1]["exact"], json!(true));
    // the deletion compacted away: still listed, at or before the revision read
    client.put("/other/key", "x", None).await.unwrap();
    let now = client.put("/other/key", "y", None).await.unwrap();
    let now = now.header().unwrap().revision();
    client.compact(now, None).await.unwrap();
    let list = json_of();
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    assert_eq!(list[1]["revision"], json!(now), "{list}");
    assert_eq!(list[1]["deleted"], json!(true), "{list}");
    assert_eq!(list[1]["exact"], json!(false), "{list}");
    assert_eq!(list[1]["hash"], json!(null), "{list}");
    let (code, out, err) = flowc_within(
        30,
        &["history", "leave", "--etcd", &url, "--tenant", "acme"],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains(&format!(
            "revision {now}  deleted: the key no longer exists, deleted at or before revision {now}"
        )),
        "{out}"
    );
    // the library says the same, typed
    let h = etcd::history(&mut client, &t, &Options::default(), "leave")
        .await
        .unwrap();
    assert_eq!(
        h.iter()
            .map(|i| (i.revision, i.event.clone()))
            .collect::<Vec<_>>(),
        [
            (v1.revision, HistoryEvent::Version),
            (now as u64, HistoryEvent::Gone)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_back_to_the_content_already_there_writes_nothing() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let t = tenant("acme");
    let mut client = server.client().await;
    let v1 = publish(&mut client, &t, &flow("leave", 1), None).await;
    let url = server.url();
    let to = v1.revision.to_string();
    let (code, out, err) = flowc_within(
        30,
        &[
            "rollback", "leave", "--to", &to, "--etcd", &url, "--tenant", "acme",
        ],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(
        out,
        format!(
            "leave is already at that content (revision {}, hash {}, the content of revision {to}): nothing written\n",
            v1.revision, v1.hash
        )
    );
    assert_eq!(key_revision(&mut client, &t, "leave").await, v1.revision);
    assert_eq!(history_keys(&mut client, &t, "leave").await.len(), 1);
    // another content is written as before; rolling back to v1 again then writes
    let v2 = publish(&mut client, &t, &flow("leave", 2), None).await;
    let back = etcd::rollback(
        &mut client,
        &t,
        &Options::default(),
        RollbackRequest {
            flow: "leave",
            to: v1.revision,
            expect_revision: None,
            author: None,
            message: None,
        },
    )
    .await
    .unwrap()
    .written()
    .unwrap();
    assert!(back.version.revision > v2.revision);
    assert_eq!(back.version.hash, v1.hash);
    // and now it is there: the library says so, typed
    let again = etcd::rollback(
        &mut client,
        &t,
        &Options::default(),
        RollbackRequest {
            flow: "leave",
            to: v1.revision,
            expect_revision: None,
            author: None,
            message: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(again, etcd::RolledBack::Unchanged(back.version.clone()));
    assert_eq!(
        key_revision(&mut client, &t, "leave").await,
        back.version.revision
    );
}

/// The cluster id in the header of an answer from `client`, and its revision.
async fn cluster_and_revision(client: &mut Client) -> (u64, u64) {
    let got = client.get("/unused", None).await.unwrap();
    let header = got.header().unwrap();
    (header.cluster_id(), header.revision() as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_etcd_of_another_cluster_at_the_same_address_is_read_again_though_its_revision_is_ahead()
{
    if !have_etcd() {
        return;
    }
    let t = tenant("acme");
    let mut a = Etcd::start();
    let mut ca = a.client().await;
    let travel = publish(&mut ca, &t, &flow("travel", 1), None).await;
    let mut leave = publish(&mut ca, &t, &flow("leave", 1), None).await;
    for n in 2..5 {
        leave = publish(&mut ca, &t, &flow("leave", n), Some(leave.revision)).await;
    }
    let (snap_lib, snap_cli) = (TempDir::new("snap-lib"), TempDir::new("snap-cli"));
    let w = Watcher::start(a.connection(), &t, Some(&snap_lib.0));
    let cli_snapshot = snap_cli.0.display().to_string();
    let url = a.url();
    let mut cli = Running::start(&[
        "watch",
        "--etcd",
        &url,
        "--tenant",
        "acme",
        "--format",
        "json",
        "--snapshot",
        &cli_snapshot,
    ]);
    until("both watchers read A", 20, || {
        w.has(&travel)
            && w.has(&leave)
            && w.handle.is_connected()
            && cli.count("{\"event\":\"publish\"") == 2
    })
    .await;
    let (cluster_a, revision_a) = cluster_and_revision(&mut ca).await;
    assert_eq!(w.handle.revision(), Some(revision_a));

    // B: another cluster (another token), prepared at its own address first. `leave` is
    // put at the revision it has in A with other content; B's revision ends well above
    // A's, so the revision check alone would take B's history for A's
    let mut b = Etcd::unstarted(None, TempDir::new("data-other-cluster"));
    b.extra = vec![
        "--initial-cluster-token".to_owned(),
        "flowc-other-cluster".to_owned(),
    ];
    b.spawn();
    let mut cb = b.client().await;
    let fill = |mut c: Client, below: u64| async move {
        while cluster_and_revision(&mut c).await.1 + 1 < below {
            c.put("/filler", "x", None).await.unwrap();
        }
    };
    fill(cb.clone(), leave.revision).await;
    let leave_b = publish(&mut cb, &t, &flow("leave", 9), None).await;
    assert_eq!(leave_b.revision, leave.revision);
    assert_ne!(leave_b.hash, leave.hash);
    let expense_b = publish(&mut cb, &t, &flow("expense", 1), None).await;
    fill(cb.clone(), revision_a + 20).await;
    drop(cb);

    // A stopped by PID; B takes over its client address (its own data dir and peer port)
    a.kill();
    until("both disconnected", 20, || {
        w.count("disconnected") == 1 && cli.count("{\"event\":\"disconnected\"") == 1
    })
    .await;
    b.kill();
    b.client_port = a.client_port;
    b.spawn();
    let mut cb = b.client().await;
    let (cluster_b, read) = cluster_and_revision(&mut cb).await;
    assert_ne!(cluster_b, cluster_a);
    assert!(read > revision_a, "B at {read}, A was at {revision_a}");
    until("both watchers read B", 20, || {
        w.has(&leave_b)
            && w.has(&expense_b)
            && w.active("travel").is_none()
            && w.handle.is_connected()
            && cli.count("{\"event\":\"retire\"") == 1
    })
    .await;

    // the library: one resync naming both cluster ids, then B's versions, then the
    // retirement of what B lacks, at the read's revision
    let after: Vec<String> = {
        let events = w.events.lock().unwrap();
        let from = events
            .iter()
            .position(|e| matches!(e, WatchEvent::Resync { .. }))
            .expect("a resync");
        events[from..]
            .iter()
            .map(|e| match e {
                WatchEvent::Resync { revision, reason } => format!("resync {revision} {reason:?}"),
                WatchEvent::Publish { version, latency } => {
                    format!("publish {version} {latency:?}")
                }
                WatchEvent::Retire {
                    flow,
                    revision,
                    exact,
                } => format!("retire {flow} {revision} {exact}"),
                other => format!("{other:?}"),
            })
            .collect()
    };
    let reason = etcd::ResyncReason::ClusterChanged {
        was: cluster_a,
        now: cluster_b,
    };
    assert_eq!(
        after,
        [
            format!("resync {read} {reason:?}"),
            format!("publish {expense_b} None"),
            format!("publish {leave_b} None"),
            format!("retire travel {read} false"),
        ]
    );
    assert_eq!(w.count("resync"), 1);
    assert_eq!(w.handle.revision(), Some(read));

    // the CLI: the same, as JSON lines with exactly these fields
    let lines: Vec<serde_json::Value> = cli
        .lines
        .lock()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .skip_while(|v: &serde_json::Value| v["event"] != "disconnected")
        .filter(|v| {
            !["disconnected", "retrying", "connected"].contains(&v["event"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        lines,
        [
            json!({"event": "resync", "flow": null, "revision": read, "hash": null, "reason": "cluster-changed"}),
            json!({"event": "publish", "flow": "expense", "revision": expense_b.revision, "hash": expense_b.hash}),
            json!({"event": "publish", "flow": "leave", "revision": leave_b.revision, "hash": leave_b.hash}),
            json!({"event": "retire", "flow": "travel", "revision": read, "hash": null, "exact": false}),
        ]
    );

    // both snapshots hold B's flows, at the read's revision
    let kept = |dir: &Path| {
        let snapshot = Snapshot::open(dir, &t).unwrap();
        let flows: Vec<(String, u64, String, String)> = snapshot
            .flows()
            .unwrap()
            .into_iter()
            .map(|f| (f.flow, f.revision, f.hash, f.source))
            .collect();
        (flows, snapshot.revision().unwrap())
    };
    let text = |id, n| String::from_utf8(flow(id, n)).unwrap();
    let want = (
        vec![
            (
                "expense".to_owned(),
                expense_b.revision,
                expense_b.hash.clone(),
                text("expense", 1),
            ),
            (
                "leave".to_owned(),
                leave_b.revision,
                leave_b.hash.clone(),
                text("leave", 9),
            ),
        ],
        Some(read),
    );
    until("the snapshots rewritten", 10, || {
        kept(&snap_lib.0) == want && kept(&snap_cli.0) == want
    })
    .await;

    // the watch goes on from B's revision
    let next = publish(&mut cb, &t, &flow("expense", 2), Some(expense_b.revision)).await;
    until("a later publish", 10, || {
        w.has(&next)
            && cli
                .text()
                .contains(&format!("\"revision\":{}", next.revision))
    })
    .await;
    assert_eq!(w.count("resync"), 1);
    assert_eq!(cli.count("{\"event\":\"resync\""), 1);
    sigterm(&cli.child);
    let status = exit_within(&mut cli.child, 10).expect("no exit after SIGTERM");
    assert_eq!(status.code(), Some(0));
    w.handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_finds_deletions_in_batched_reads_and_skips_the_compacted_ones() {
    if !have_etcd() {
        return;
    }
    let server = Etcd::start();
    let t = tenant("acme");
    let mut c = server.client().await;
    let entries = |items: Vec<etcd::HistoryItem>| -> Vec<(u64, HistoryEvent)> {
        items.into_iter().map(|i| (i.revision, i.event)).collect()
    };
    // `leave`: published and deleted three times, then compacted past the first two
    // deletions: those are no longer listed (etcd has not the revisions that tell)
    let mut leave = Vec::new();
    let mut deletions = Vec::new();
    for n in 1..=4 {
        let v = publish(&mut c, &t, &flow("leave", n), None).await;
        leave.push((v.revision, HistoryEvent::Version));
        if n < 4 {
            deletions.push(etcd::delete(&mut c, &t, "leave", v.revision).await.unwrap());
        }
    }
    c.compact(leave[2].0 as i64, None).await.unwrap();
    let mut want = leave.clone();
    want.push((deletions[2], HistoryEvent::Deleted));
    want.sort_by_key(|(r, _)| *r);
    let got = etcd::history(&mut c, &t, &Options::default(), "leave")
        .await
        .unwrap();
    assert_eq!(entries(got), want);
    // `many`: more versions than one transaction reads, a deletion 300 revisions before
    // the flow came back (more than one round of the search) and one just before it
    let mut want = Vec::new();
    let mut last = 0;
    for n in 1..=140 {
        let v = publish(&mut c, &t, &flow("many", n), None).await;
        want.push((v.revision, HistoryEvent::Version));
        last = v.revision;
        if n == 2 || n == 139 {
            let at = etcd::delete(&mut c, &t, "many", v.revision).await.unwrap();
            want.push((at, HistoryEvent::Deleted));
        }
        if n == 2 {
            for _ in 0..300 {
                c.put("/elsewhere", "x", None).await.unwrap();
            }
        }
    }
    let deleted = etcd::delete(&mut c, &t, "many", last).await.unwrap();
    want.push((deleted, HistoryEvent::Deleted));
    let got = etcd::history(&mut c, &t, &Options::default(), "many")
        .await
        .unwrap();
    assert_eq!(entries(got), want);
    // and a publish over the deleted flow (at etcd's revision now) names the deletion
    assert_eq!(
        etcd::deletion_before(&mut c, &t, "many", deleted)
            .await
            .unwrap(),
        Some(deleted)
    );
}

/// The `snapshot` outcome of each `Connected` event received so far.
fn snapshot_outcomes(w: &Watcher) -> Vec<Option<etcd::SnapshotOutcome>> {
    w.events_of(|e| match e {
        WatchEvent::Connected { snapshot, .. } => Some(*snapshot),
        _ => None,
    })
}

/// The flows of the snapshot in `dir`: id, revision, hash.
fn snapshot_flows(dir: &Path, t: &Tenant) -> Vec<(String, u64, String)> {
    Snapshot::open(dir, t)
        .unwrap()
        .flows()
        .unwrap()
        .into_iter()
        .map(|f| (f.flow, f.revision, f.hash))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_start_from_an_earlier_clusters_snapshot_takes_etcds_content_at_a_colliding_revision()
 {
    if !have_etcd() {
        return;
    }
    let t = tenant("acme");
    // the earlier cluster: leave v1 @2, leave v2 @3, gone @4; a watcher keeps a snapshot
    let mut a = Etcd::start();
    let mut ca = a.client().await;
    let v1 = publish(&mut ca, &t, &flow("leave", 1), None).await;
    let v2 = publish(&mut ca, &t, &flow("leave", 2), Some(v1.revision)).await;
    let gone = publish(&mut ca, &t, &flow("gone", 1), None).await;
    let snap = TempDir::new("snap-earlier");
    let w = Watcher::start(a.connection(), &t, Some(&snap.0));
    until("the snapshot written", 10, || {
        w.has(&v2) && w.has(&gone) && snapshot_flows(&snap.0, &t).len() == 2
    })
    .await;
    w.handle.stop().await;
    a.kill();

    // etcd recreated elsewhere: one unrelated write, then leave v1, at v2's revision
    let b = Etcd::start();
    let mut cb = b.client().await;
    cb.put("/unrelated", "x", None).await.unwrap();
    let now = publish(&mut cb, &t, &flow("leave", 1), None).await;
    assert_eq!(now.revision, v2.revision);
    assert_eq!(now.hash, v1.hash);
    assert_ne!(now.hash, v2.hash);

    let w = Watcher::start(b.connection(), &t, Some(&snap.0));
    until("etcd's content active", 15, || {
        w.has(&now) && w.active("gone").is_none() && w.handle.is_connected()
    })
    .await;
    let names: Vec<&'static str> = w.events_of(|e| Some(e.name()));
    assert_eq!(
        names,
        ["snapshot", "snapshot", "connected", "publish", "retire"],
        "{:?}",
        w.events.lock().unwrap()
    );
    assert_eq!(w.published_revisions("leave"), [now.revision]);
    assert_eq!(
        snapshot_outcomes(&w),
        [Some(etcd::SnapshotOutcome {
            replaced: 1,
            retired: 1,
            same: 0,
            kept: 0
        })]
    );
    let want = vec![("leave".to_owned(), now.revision, now.hash.clone())];
    until("the snapshot rewritten", 10, || {
        snapshot_flows(&snap.0, &t) == want
    })
    .await;
    w.handle.stop().await;

    // started again on the same etcd: the snapshot's version is etcd's, nothing changes
    let w = Watcher::start(b.connection(), &t, Some(&snap.0));
    until("connected", 15, || w.handle.is_connected()).await;
    assert!(w.has(&now));
    assert_eq!(w.count("publish"), 0);
    assert_eq!(
        snapshot_outcomes(&w),
        [Some(etcd::SnapshotOutcome {
            replaced: 0,
            retired: 0,
            same: 1,
            kept: 0
        })]
    );
    w.handle.stop().await;

    // the CLI says exactly that, in words and in JSON
    let snapshot = snap.0.display().to_string();
    let url = b.url();
    let common = ["--etcd", &url, "--tenant", "acme", "--snapshot", &snapshot];
    for (format, want) in [
        (
            "human",
            "connected at revision 3; of the 1 flow loaded from the local snapshot, 0 replaced by etcd's version, 0 retired (not in etcd), 1 the same in etcd, 0 kept (etcd's content is rejected)",
        ),
        (
            "json",
            r#"{"event":"connected","flow":null,"revision":3,"hash":null,"retries":0,"reconnect":false,"snapshot":{"replaced":0,"retired":0,"same":1,"kept":0}}"#,
        ),
    ] {
        let mut args = vec!["watch", "--format", format];
        args.extend(common);
        let mut cli = Running::start(&args);
        until("the CLI connected", 15, || cli.text().contains("connected")).await;
        sigterm(&cli.child);
        let status = exit_within(&mut cli.child, 10).expect("no exit after SIGTERM");
        assert_eq!(status.code(), Some(0));
        let lines = cli.lines.lock().unwrap().clone();
        assert!(lines.iter().any(|l| l == want), "{lines:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_etcd_restored_from_a_backup_whose_revision_caught_up_is_resynced_as_diverged() {
    if !have_etcd() {
        return;
    }
    let t = tenant("acme");
    let mut server = Etcd::start();
    let mut c = server.client().await;
    let (cluster, _) = cluster_and_revision(&mut c).await;
    let leave1 = publish(&mut c, &t, &flow("leave", 1), None).await;
    let purchase = publish(&mut c, &t, &flow("purchase", 1), None).await;
    let backups = TempDir::new("backup");
    let backup = backups.0.join("etcd.db");
    server.etcdctl(&["snapshot", "save", backup.to_str().unwrap()]);
    // after the backup: two writes the restored etcd will not have
    let leave2 = publish(&mut c, &t, &flow("leave", 2), Some(leave1.revision)).await;
    let contract = publish(&mut c, &t, &flow("contract", 1), None).await;
    let w = Watcher::start(server.connection(), &t, None);
    until("read", 10, || {
        w.has(&leave2) && w.has(&contract) && w.handle.is_connected()
    })
    .await;
    let seen = w.handle.revision().unwrap();
    assert_eq!(seen, contract.revision);
    // the watcher is away (a partition) while etcd is restored from the backup and
    // gets more writes than it lost: its revision passes the watcher's
    w.handle.pause();
    until("paused", 10, || !w.handle.is_connected()).await;
    drop(c);
    server.restore(&backup);
    let mut c = server.client().await;
    assert_eq!(
        cluster_and_revision(&mut c).await.0,
        cluster,
        "same cluster id"
    );
    let it = publish(&mut c, &t, &flow("it", 1), None).await;
    let revise = publish(&mut c, &t, &flow("revise", 1), None).await;
    let expense = publish(&mut c, &t, &flow("expense", 1), None).await;
    assert_eq!(
        (it.revision, revise.revision),
        (leave2.revision, contract.revision)
    );
    assert!(expense.revision > seen);
    w.handle.resume();
    until("the restored etcd's flows", 15, || {
        w.has(&leave1)
            && w.has(&purchase)
            && w.has(&it)
            && w.has(&revise)
            && w.has(&expense)
            && w.active("contract").is_none()
            && w.handle.is_connected()
    })
    .await;
    let resyncs = w.events_of(|e| match e {
        WatchEvent::Resync { revision, reason } => Some((*revision, *reason)),
        _ => None,
    });
    assert_eq!(
        resyncs,
        [(
            expense.revision,
            etcd::ResyncReason::HistoryDiverged {
                revision: contract.revision
            }
        )]
    );
    assert_eq!(w.handle.revision(), Some(expense.revision));
    // the watch goes on
    let next = publish(&mut c, &t, &flow("expense", 2), Some(expense.revision)).await;
    until("a later publish", 10, || w.has(&next)).await;
    assert_eq!(w.count("resync"), 1);
    w.handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_of_another_cluster_in_the_list_never_replaces_the_followed_cluster() {
    if !have_etcd() {
        return;
    }
    let t = tenant("acme");
    let mut real = Etcd::start();
    let mut c = real.client().await;
    let leave = publish(&mut c, &t, &flow("leave", 1), None).await;
    let travel = publish(&mut c, &t, &flow("travel", 1), None).await;
    drop(c);
    // the list's second member is another cluster's (another token), down at the start
    let mut other = Etcd::unstarted(None, TempDir::new("data-other"));
    other.extra = vec![
        "--initial-cluster-token".to_owned(),
        "flowc-another-cluster".to_owned(),
    ];
    let mut conn = Connection::new(vec![real.url(), other.url()]);
    conn.connect_timeout = Duration::from_millis(500);
    let w = Watcher::start(conn, &t, None);
    until("read", 15, || {
        w.has(&leave) && w.has(&travel) && w.handle.is_connected()
    })
    .await;
    // it comes up; then the real cluster has an outage
    other.spawn();
    real.kill();
    let named = |w: &Watcher| {
        w.warnings().iter().any(|m| {
            m.contains(&format!("endpoint `{}` is left out", other.url()))
                && m.contains("answers etcd cluster")
        })
    };
    until("the other cluster's member left out, named", 30, || {
        named(&w)
    })
    .await;
    assert!(w.has(&leave) && w.has(&travel));
    // the real cluster back: the watch resumes, nothing was retired or read again
    real.spawn();
    let mut c = real.client().await;
    let next = publish(&mut c, &t, &flow("leave", 2), Some(leave.revision)).await;
    until("the real cluster's publish", 30, || {
        w.has(&next) && w.handle.is_connected()
    })
    .await;
    assert!(w.has(&travel));
    assert_eq!(w.count("resync"), 0, "{:?}", w.events.lock().unwrap());
    assert_eq!(w.count("retire"), 0);
    // the warning came after the outage's report, once
    let order: Vec<&'static str> = w.events_of(|e| Some(e.name()));
    let first_warning = order.iter().position(|n| *n == "warning").unwrap();
    assert!(
        order[..first_warning].contains(&"disconnected"),
        "{order:?}"
    );
    assert_eq!(
        w.warnings()
            .iter()
            .filter(|m| m.contains("is left out"))
            .count(),
        1
    );
    w.handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_the_first_read_of_a_large_tenant_stops_printing_and_exits() {
    if !have_etcd() {
        return;
    }
    let t = tenant("many");
    let server = Etcd::start();
    const FLOWS: usize = 1000;
    // four writers at once (on this task: the publish future is not `Send`)
    let part = |part: usize| {
        let (server, t) = (&server, &t);
        async move {
            let mut c = server.client().await;
            for i in (part..FLOWS).step_by(4) {
                publish(&mut c, t, &flow(&format!("f{i:04}"), 1), None).await;
            }
        }
    };
    tokio::join!(part(0), part(1), part(2), part(3));
    let url = server.url();
    let mut cli = Running::start(&[
        "watch", "--etcd", &url, "--tenant", "many", "--format", "json",
    ]);
    let publishes = |cli: &Running| cli.count("{\"event\":\"publish\"");
    until("the first publish line", 30, || publishes(&cli) > 0).await;
    sigterm(&cli.child);
    let status = exit_within(&mut cli.child, 10).expect("no exit after SIGTERM");
    assert_eq!(status.code(), Some(0));
    // the readers drain the pipes
    std::thread::sleep(Duration::from_millis(200));
    let printed = publishes(&cli);
    assert!(
        printed < FLOWS / 2,
        "{printed} publish lines of {FLOWS} after SIGTERM at the first"
    );
}

#[test]
fn resync_reasons_name_the_previous_cluster_and_a_diverged_history() {
    let changed = etcd::ResyncReason::ClusterChanged {
        was: 0xabc,
        now: 0xdef,
    };
    assert_eq!(
        changed.to_string(),
        "etcd is another cluster (id def) than the previous cluster (id abc): recreated or restored from a backup"
    );
    let diverged = etcd::ResyncReason::HistoryDiverged { revision: 5 };
    assert_eq!(diverged.name(), "history-diverged");
    assert_eq!(
        diverged.to_string(),
        "the key put at revision 5, as the watcher saw it, is not what etcd holds at that revision: etcd's history diverged (restored from a backup)"
    );
}

// ---------------------------------------------------------------- issue 10: probe 6's nits

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_etcd_is_not_reported_as_a_keep_alive_timeout() {
    if !have_etcd() {
        return;
    }
    let mut server = Etcd::start();
    let t = tenant("acme");
    let w = Watcher::start(server.connection(), &t, None);
    // three kills: the keep-alive wording once came from a race with the dying server
    for round in 1..=3 {
        until("connected", 30, || {
            w.count("connected") == round && w.handle.is_connected()
        })
        .await;
        // idle for longer than the keep-alive timeout (3 s): only the time since etcd's
        // last answer cannot tell a killed etcd from a stalled one
        tokio::time::sleep(Duration::from_millis(3500)).await;
        server.kill();
        until("disconnected", 20, || w.count("disconnected") == round).await;
        server.spawn();
    }
    let errors = w.events_of(|e| match e {
        WatchEvent::Disconnected { error, .. } => Some(error.clone()),
        _ => None,
    });
    assert_eq!(errors.len(), 3, "{errors:?}");
    for error in &errors {
        assert!(!error.contains("keep-alive"), "{errors:?}");
    }
    w.handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_setup_error_prints_nothing_on_stdout() {
    let dir = TempDir::new("snap-under-file-stdout");
    let file = dir.0.join("sfile");
    std::fs::write(&file, b"x").unwrap();
    let snap = file.join("sub");
    let snap = snap.to_str().unwrap();
    let down = format!("http://127.0.0.1:{}", free_port());
    let base = [
        "watch",
        "--etcd",
        &down,
        "--tenant",
        "acme",
        "--snapshot",
        snap,
    ];
    let json = ["--format", "json", "--metrics-addr", "127.0.0.1:0"];
    for extra in [&[][..], &json[..]] {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let (code, out, err) = flowc_within(30, &args);
        assert_eq!(code, Some(2), "{args:?}: {out}{err}");
        assert_eq!(out, "", "{args:?}: {err}");
        assert!(
            err.contains("is a file, not a directory"),
            "{args:?}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_etcd_beside_an_endpoint_that_accepts_is_not_a_keep_alive_timeout() {
    if !have_etcd() {
        return;
    }
    // a second endpoint that accepts TCP connections and closes them at once: a server
    // that answers, not a stalled one
    let closer = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other = format!("http://{}", closer.local_addr().unwrap());
    std::thread::spawn(move || {
        for c in closer.incoming() {
            drop(c);
        }
    });
    let mut server = Etcd::start();
    let mut conn = Connection::new(vec![server.url(), other]);
    conn.connect_timeout = Duration::from_secs(2);
    let t = tenant("acme");
    let w = Watcher::start(conn, &t, None);
    until("connected", 30, || w.handle.is_connected()).await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    server.kill();
    until("disconnected", 20, || w.count("disconnected") == 1).await;
    let errors = w.events_of(|e| match e {
        WatchEvent::Disconnected { error, .. } => Some(error.clone()),
        _ => None,
    });
    assert!(!errors[0].contains("keep-alive"), "{errors:?}");
    w.handle.stop().await;
}
