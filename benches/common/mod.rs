//! What the etcd benches share: an etcd to run against. `FLOWC_ETCD` when set (the
//! caller uses an empty tenant), else an `etcd` started on free loopback ports with a
//! temporary data dir, stopped by PID when dropped.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flowc::source::etcd::Connection;

/// An etcd the bench started (killed by PID on drop, its data dir removed).
pub struct Server {
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

fn start_etcd(name: &str) -> (Server, String) {
    let dir = std::env::temp_dir().join(format!("flowc-bench-{name}-{}", std::process::id()));
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

/// `FLOWC_ETCD`'s etcd, or one started for bench `name` (held by the returned server):
/// its URL(s).
pub fn etcd(name: &str) -> (Option<Server>, String) {
    match std::env::var("FLOWC_ETCD") {
        Ok(u) => (None, u),
        Err(_) => {
            let (s, u) = start_etcd(name);
            (Some(s), u)
        }
    }
}

/// A connection to `url` (comma-separated endpoints) and a client once etcd answers a
/// read (waits up to 20 s).
pub async fn connect(url: &str) -> (Connection, etcd_client::Client) {
    let conn = Connection::new(url.split(',').map(str::to_owned).collect());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut c) = conn.connect().await
            && c.get("x", None).await.is_ok()
        {
            return (conn, c);
        }
        assert!(Instant::now() < deadline, "etcd did not come up at {url}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
