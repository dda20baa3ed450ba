//! `flowc watch DIR`: load a directory of flows into a registry and keep it in step,
//! logging each publish, rejection and retirement (one line each; diagnostics after).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flowc::compile::Options;
use flowc::registry::Registry;
use flowc::source::{DirSource, SourceEvent};
use flowc::store::DirStore;

use super::EXIT_FAILURE;

/// What stays active after a refused version.
fn kept_line(kept: Option<&flowc::compile::VersionId>) -> String {
    kept.map_or_else(
        || "no version active".to_owned(),
        |v| format!("{v} stays active"),
    )
}

/// Shows the source's canonical paths as the user spelt the directory
/// (`flowc watch flows` logs `flows/purchase.yaml`).
struct Names {
    canonical: PathBuf,
    given: PathBuf,
    /// For what a refused file's flow keeps active.
    registry: Arc<Registry>,
}

impl Names {
    fn show(&self, p: &Path) -> String {
        p.strip_prefix(&self.canonical)
            .map_or_else(|_| p.to_path_buf(), |rel| self.given.join(rel))
            .display()
            .to_string()
    }
}

fn log(names: &Names, event: &SourceEvent) {
    let show = |p: &Path| names.show(p);
    match event {
        SourceEvent::Published { path, version } => {
            outln!("published {version} from {}", show(path));
        }
        SourceEvent::Unchanged { path, version } => {
            outln!("unchanged {version} from {}", show(path));
        }
        SourceEvent::Rejected {
            path,
            diagnostics,
            kept,
            ..
        } => {
            let kept = kept_line(kept.as_ref());
            outln!(
                "rejected {}: {} error(s); {kept}",
                show(path),
                diagnostics.error_count()
            );
            let out = super::escape_controls(&super::check::render_all(diagnostics), true);
            // the diagnostics name the file as the source does (canonical): show it as
            // the log lines do
            let canonical = path.display().to_string();
            eprint!("{}", out.replace(&canonical, &show(path)));
        }
        SourceEvent::Retired { path, flow } => {
            // a file still there now holds another flow (or is no longer a flow file)
            let why = if path.exists() {
                "no longer defines it"
            } else {
                "is gone"
            };
            outln!(
                "retired {flow}: {} {why} (running instances keep their version)",
                show(path)
            );
        }
        SourceEvent::Conflict {
            path,
            flow,
            holder,
            kept,
        } => {
            let kept = kept
                .as_ref()
                .map(|v| format!("; {v} stays active"))
                .unwrap_or_default();
            outln!(
                "rejected {}: flow `{flow}` is already defined in {}{kept}",
                show(path),
                show(holder)
            );
        }
        SourceEvent::StoreFailed { path, error, kept } => {
            let kept = kept_line(kept.as_ref());
            outln!("unstored {}: {error}; {kept}", show(path));
        }
        SourceEvent::Unreadable { path, message } => {
            outln!("unreadable {}: {message}", show(path));
        }
        _ => outln!("{event:?}"),
    }
}

fn emit(format: WatchFormat, names: &Names, event: &SourceEvent) {
    match format {
        WatchFormat::Human => log(names, event),
        WatchFormat::Json => log_json(names, event),
    }
}

/// The store `flowc watch DIR` uses unless told otherwise: inside the watched directory
/// (hidden, so never scanned as flows), ignored by git.
fn default_store(dir: &Path) -> Result<PathBuf, std::io::Error> {
    let base = dir.join(".flowc");
    std::fs::create_dir_all(&base)?;
    let ignore = base.join(".gitignore");
    if !ignore.exists() {
        std::fs::write(
            &ignore,
            "# flowc's version store: runtime state, not source\n*\n",
        )?;
    }
    Ok(base.join("versions"))
}

pub fn run(
    dir: &Path,
    debounce_ms: u64,
    store: Option<&Path>,
    no_store: bool,
    format: WatchFormat,
) -> u8 {
    if !dir.is_dir() {
        // before the default store would create it
        eprintln!("error: cannot read `{}`: not a directory", dir.display());
        return EXIT_FAILURE;
    }
    let root = match (no_store, store) {
        (true, _) => None,
        (false, Some(p)) => Some(p.to_path_buf()),
        (false, None) => match default_store(dir) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!(
                    "error: cannot create the version store in `{}`: {e}",
                    dir.display()
                );
                return EXIT_FAILURE;
            }
        },
    };
    let (registry, store_note) = match &root {
        None => (Registry::default(), "versions in memory only".to_owned()),
        Some(root) => match DirStore::open(root) {
            Ok(s) => (
                Registry::with_store(Options::default(), Arc::new(s)),
                format!("versions in {}", root.display()),
            ),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_FAILURE;
            }
        },
    };
    let source = Arc::new(DirSource::new(dir, Arc::new(registry)));
    let names = Names {
        canonical: source.dir().to_path_buf(),
        given: dir.to_path_buf(),
        registry: Arc::clone(source.registry()),
    };
    match source.scan() {
        Ok(events) => events.iter().for_each(|e| emit(format, &names, e)),
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILURE;
        }
    }
    let _watch = match source.watch(Duration::from_millis(debounce_ms), move |e| {
        emit(format, &names, &e);
    }) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILURE;
        }
    };
    let signals = match StopSignals::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot wait for Ctrl-C or SIGTERM: {e}");
            return EXIT_FAILURE;
        }
    };
    if format == WatchFormat::Human {
        outln!("watching {} ({store_note})", dir.display());
    }
    signals.wait();
    0
}

/// The handlers of the signals that stop a watcher gracefully (exit 0): SIGINT (Ctrl-C)
/// and SIGTERM (what a service manager sends), for `flowc watch DIR` and
/// `flowc watch --etcd` alike.
pub struct StopSignals(#[cfg(unix)] signal_hook::iterator::Signals);

impl StopSignals {
    /// Installs the handlers: from now on these signals no longer end the process
    /// abruptly.
    ///
    /// # Errors
    /// When the handlers cannot be installed.
    pub fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use signal_hook::consts::{SIGINT, SIGTERM};
            signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).map(StopSignals)
        }
        #[cfg(not(unix))]
        {
            Ok(StopSignals())
        }
    }

    /// Blocks until one of the signals comes (elsewhere than unix: for ever, Ctrl-C
    /// ends the process).
    pub fn wait(self) {
        #[cfg(unix)]
        {
            let mut signals = self.0;
            let _ = signals.forever().next();
        }
        #[cfg(not(unix))]
        loop {
            std::thread::park();
        }
    }
}

/// Output formats of `watch`.
#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq, Default)]
pub enum WatchFormat {
    /// One line per event.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// One event as a JSON line: `event`, `flow`, `revision`, `hash` (and `diagnostics`).
fn json_line(
    event: &str,
    flow: Option<&str>,
    revision: Option<u64>,
    hash: Option<&str>,
    extra: Option<(&str, serde_json::Value)>,
) {
    let mut v = serde_json::json!({
        "event": event,
        "flow": flow,
        "revision": revision,
        "hash": hash,
    });
    if let (Some((k, x)), Some(o)) = (extra, v.as_object_mut()) {
        o.insert(k.to_owned(), x);
    }
    outln!("{v}");
}

/// A `reject` line: the flow concerned (when known) and the version that stays active
/// (`active`: `null` when none).
fn reject_line(
    flow: Option<&str>,
    active: Option<&flowc::compile::VersionId>,
    diagnostics: &serde_json::Value,
) {
    let active =
        active.map(|v| serde_json::json!({"flow": v.flow, "revision": v.revision, "hash": v.hash}));
    let v = serde_json::json!({
        "event": "reject",
        "flow": flow,
        "revision": null,
        "hash": null,
        "active": active,
        "diagnostics": diagnostics,
    });
    outln!("{v}");
}

fn diagnostics_json(d: &flowc::diagnostic::Diagnostics) -> serde_json::Value {
    serde_json::Value::Array(d.iter().map(super::check::diagnostic_json).collect())
}

/// The directory source's events as JSON lines (`publish`, `reject`, `retire`).
fn log_json(names: &Names, event: &SourceEvent) {
    let show = |p: &Path| serde_json::Value::String(names.show(p));
    match event {
        SourceEvent::Published { path, version } => json_line(
            "publish",
            Some(&version.flow),
            Some(version.revision),
            Some(&version.hash),
            Some(("path", show(path))),
        ),
        SourceEvent::Unchanged { path, version } => json_line(
            "unchanged",
            Some(&version.flow),
            Some(version.revision),
            Some(&version.hash),
            Some(("path", show(path))),
        ),
        SourceEvent::Rejected {
            path,
            diagnostics,
            flow,
            kept,
        } => {
            let mut extra = diagnostics_json(diagnostics);
            if let serde_json::Value::Array(a) = &mut extra {
                for d in a.iter_mut() {
                    if let Some(o) = d.as_object_mut() {
                        o.insert("file".to_owned(), show(path));
                    }
                }
            }
            let flow = flow
                .as_deref()
                .or_else(|| kept.as_ref().map(|v| v.flow.as_str()));
            reject_line(flow, kept.as_ref(), &extra);
        }
        SourceEvent::Retired { path, flow } => {
            json_line("retire", Some(flow), None, None, Some(("path", show(path))));
        }
        SourceEvent::Conflict {
            path, flow, holder, ..
        } => {
            // where the refused file writes its id (read again: the event has no span)
            let at = std::fs::read(path)
                .ok()
                .and_then(|b| flowc::source::dir::declared_id(&b));
            let active = names.registry.active(flow).map(|a| a.version().clone());
            reject_line(
                Some(flow),
                active.as_ref(),
                &serde_json::json!([{
                    "file": names.show(path),
                    "line": at.as_ref().map(|a| a.line),
                    "column": at.as_ref().map(|a| a.column),
                    "severity": "error",
                    "code": flowc::codes::Code::CheckDuplicateFlowId.as_str(),
                    "message": format!("flow `{flow}` is already defined in {}", names.show(holder)),
                    "help": "a flow id names one flow in a registry: give each flow its own `id` (this file takes the flow over when the other one goes)",
                }]),
            );
        }
        SourceEvent::StoreFailed { path, error, kept } => reject_line(
            kept.as_ref().map(|v| v.flow.as_str()),
            kept.as_ref(),
            &serde_json::json!([{
                "file": names.show(path),
                "severity": "error",
                "message": error.to_string(),
            }]),
        ),
        SourceEvent::Unreadable { path, message } => json_line(
            "reject",
            None,
            None,
            None,
            Some((
                "diagnostics",
                serde_json::json!([{
                    "file": names.show(path),
                    "severity": "error",
                    "message": message,
                }]),
            )),
        ),
        _ => {}
    }
}

/// `flowc watch --etcd ...`: the options besides the connection.
#[cfg(feature = "etcd")]
pub struct EtcdWatchArgs<'a> {
    pub conn: &'a super::etcd::EtcdArgs,
    pub snapshot: Option<&'a Path>,
    pub format: WatchFormat,
    pub metrics_addr: Option<&'a str>,
}

#[cfg(feature = "etcd")]
fn log_etcd(format: WatchFormat, event: &flowc::source::etcd::WatchEvent) {
    match format {
        WatchFormat::Json => log_etcd_json(event),
        WatchFormat::Human => log_etcd_human(event),
    }
}

#[cfg(feature = "etcd")]
fn log_etcd_json(event: &flowc::source::etcd::WatchEvent) {
    use flowc::source::etcd::WatchEvent as E;
    match event {
        E::Connected {
            revision,
            retries,
            reconnect,
            snapshot,
        } => {
            let mut line = serde_json::json!({
                "event": event.name(),
                "flow": null,
                "revision": revision,
                "hash": null,
                "retries": retries,
                "reconnect": reconnect,
            });
            if let (Some(s), Some(fields)) = (snapshot, line.as_object_mut()) {
                fields.insert(
                    "snapshot".to_owned(),
                    serde_json::json!({
                        "replaced": s.replaced,
                        "retired": s.retired,
                        "same": s.same,
                        "kept": s.kept,
                    }),
                );
            }
            outln!("{line}");
        }
        E::Resync { revision, reason } => json_line(
            event.name(),
            None,
            Some(*revision),
            None,
            Some(("reason", serde_json::Value::from(reason.name()))),
        ),
        E::Snapshot { version } | E::Publish { version, .. } => json_line(
            event.name(),
            Some(&version.flow),
            Some(version.revision),
            Some(&version.hash),
            None,
        ),
        E::Reject {
            flow,
            revision,
            diagnostics,
            ..
        } => json_line(
            "reject",
            Some(flow),
            Some(*revision),
            None,
            Some(("diagnostics", diagnostics_json(diagnostics))),
        ),
        E::Retire {
            flow,
            revision,
            exact,
        } => json_line(
            "retire",
            Some(flow),
            Some(*revision),
            None,
            Some(("exact", serde_json::Value::Bool(*exact))),
        ),
        E::Disconnected { error, .. } => json_line(
            "disconnected",
            None,
            None,
            None,
            Some(("error", serde_json::Value::String(error.clone()))),
        ),
        E::Retrying { attempts, error } => outln!("{}", retrying_json(*attempts, error)),
        // stdout holds only JSON objects; stderr only a fatal error
        E::Warning { message } => json_line(
            "warning",
            None,
            None,
            None,
            Some(("message", serde_json::Value::String(message.clone()))),
        ),
        _ => {}
    }
}

/// The `retrying` event as JSON: a numeric `attempts` and the last `error`.
#[cfg(feature = "etcd")]
fn retrying_json(attempts: u32, error: &str) -> serde_json::Value {
    serde_json::json!({
        "event": "retrying",
        "flow": null,
        "revision": null,
        "hash": null,
        "attempts": attempts,
        "error": error,
    })
}

#[cfg(all(test, feature = "etcd"))]
mod etcd_tests {
    #[test]
    fn retrying_has_a_numeric_attempts_field() {
        let v = super::retrying_json(7, "connection refused");
        assert_eq!(v["event"], "retrying");
        assert_eq!(v["attempts"], 7);
        assert_eq!(v["error"], "connection refused");
    }
}

#[cfg(feature = "etcd")]
fn log_etcd_human(event: &flowc::source::etcd::WatchEvent) {
    use flowc::source::etcd::WatchEvent as E;
    match event {
        E::Connected {
            revision,
            retries,
            reconnect,
            snapshot,
        } => {
            let replaced = snapshot.map(snapshot_words).unwrap_or_default();
            let after = match retries {
                0 => String::new(),
                n => format!(" after {n} failed attempt(s)"),
            };
            let what = if *reconnect {
                "reconnected"
            } else {
                "connected"
            };
            outln!("{what} at revision {revision}{after}{replaced}");
        }
        E::Snapshot { version } => outln!("loaded {version} from the local snapshot"),
        E::Publish { version, latency } => {
            if let Some(l) = latency {
                outln!(
                    "published {version} ({:.1} ms after the publisher's write)",
                    l.as_secs_f64() * 1000.0
                );
            } else {
                outln!("published {version}");
            }
        }
        E::Reject {
            flow,
            revision,
            diagnostics,
            kept,
        } => {
            let kept = kept_line(kept.as_ref());
            let flow = super::escape_controls(flow, false);
            outln!(
                "rejected {flow} at revision {revision}: {} error(s); {kept}",
                diagnostics.error_count()
            );
            // the source snippet is etcd's content: no escape sequence reaches the terminal
            let mut out =
                super::escape_controls(&super::check::render_all(diagnostics.iter()), true);
            if !out.ends_with('\n') {
                out.push('\n');
            }
            eprint!("{out}");
        }
        E::Retire {
            flow,
            revision,
            exact,
        } => {
            let at = if *exact { "at" } else { "at or before" };
            outln!(
                "retired {flow} {at} revision {revision} (running instances keep their version)"
            );
        }
        E::Resync { revision, reason } => {
            outln!("resync at revision {revision}: {reason}");
        }
        E::Disconnected {
            error,
            serving_snapshot,
            snapshot_flows,
            snapshot_dir,
            retry_in,
        } => {
            let error = super::escape_controls(error, false);
            if *serving_snapshot {
                let dir = snapshot_dir
                    .as_ref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default();
                outln!(
                    "etcd unreachable: serving {snapshot_flows} flow(s) from the local snapshot {dir}; {error}; retrying (first retry in {} ms)",
                    retry_in.as_millis()
                );
            } else {
                outln!(
                    "disconnected: {error}; retrying (first retry in {} ms)",
                    retry_in.as_millis()
                );
            }
        }
        E::Retrying { attempts, error } => {
            let error = super::escape_controls(error, false);
            outln!("still retrying ({attempts} attempts, last error: {error})");
        }
        E::Warning { message } => eprintln!("warning: {}", super::escape_controls(message, false)),
        _ => {}
    }
}

/// What the first read made of the snapshot's versions, in words (after `connected`).
#[cfg(feature = "etcd")]
fn snapshot_words(s: flowc::source::etcd::SnapshotOutcome) -> String {
    let loaded = s.replaced + s.retired + s.same + s.kept;
    let flows = if loaded == 1 { "flow" } else { "flows" };
    format!(
        "; of the {loaded} {flows} loaded from the local snapshot, {} replaced by etcd's version, {} retired (not in etcd), {} the same in etcd, {} kept (etcd's content is rejected)",
        s.replaced, s.retired, s.same, s.kept
    )
}

#[cfg(feature = "etcd")]
pub fn run_etcd(args: &EtcdWatchArgs<'_>) -> u8 {
    use flowc::source::etcd::{WatchConfig, watch};
    let (connection, tenant) = match args.conn.resolve() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let rt = match super::etcd::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let _guard = rt.enter();
    let metrics_addr = match args.metrics_addr.map(resolve_addr).transpose() {
        Ok(a) => a,
        Err(message) => {
            eprintln!("error: --metrics-addr: {message}");
            return EXIT_FAILURE;
        }
    };
    // the address bound: the port the system chose for `HOST:0`
    let metrics_addr = match metrics_addr.map(|addr| (addr, serve_metrics(addr))) {
        None => None,
        Some((_, Ok(bound))) => Some(bound),
        Some((addr, Err(e))) => {
            eprintln!("error: cannot serve metrics on {addr}: {e}");
            return EXIT_FAILURE;
        }
    };
    let mut config = WatchConfig::new(connection, tenant.clone());
    config.snapshot = args.snapshot.map(Path::to_path_buf);
    let format = args.format;
    // the first line: the human header, or the JSON `metrics` event (none without
    // metrics); printed before the first event (the snapshot's come while the watcher
    // starts) or once the watcher started, so never before a setup error
    let first_line = match (format, metrics_addr) {
        (WatchFormat::Human, _) => Some(format!(
            "watching tenant {} under {} on {}{}",
            tenant.tenant(),
            tenant.prefix(),
            args.conn.endpoints.join(","),
            metrics_addr
                .map(|a| format!("; metrics at http://{a}/metrics"))
                .unwrap_or_default()
        )),
        (_, Some(addr)) => Some(metrics_json(addr).to_string()),
        (_, None) => None,
    };
    let header = Arc::new(FirstLine {
        line: first_line,
        once: std::sync::Once::new(),
    });
    let registry = Arc::new(Registry::default());
    // set by the signal's own thread: nothing is printed after the signal, also while
    // the watcher's task is still busy until it sees the stop
    let quiet = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let silenced = Arc::clone(&quiet);
    let header_of_events = Arc::clone(&header);
    let print = move |e: &flowc::source::etcd::WatchEvent| {
        if !silenced.load(std::sync::atomic::Ordering::SeqCst) {
            header_of_events.print();
            log_etcd(format, e);
        }
    };
    let mut watcher = match watch(registry, config, print) {
        Ok(w) => w,
        Err(e) => return super::etcd::fail(e, &args.conn.endpoints),
    };
    header.print();
    let stopped = rt.block_on(async {
        let stop = tokio::select! {
            stop = super::etcd::stop_signal(quiet) => stop.map_err(|e| {
                eprintln!("error: cannot wait for Ctrl-C or SIGTERM: {e}");
                EXIT_FAILURE
            }),
            // the watcher ends by itself only when etcd refuses it as configured (TLS
            // files, user, endpoint scheme): retrying would never help
            ended = watcher.finished() => match ended {
                Ok(()) => Ok(()),
                Err(e) => {
                    super::etcd::report(&e);
                    Err(EXIT_FAILURE)
                }
            },
        };
        watcher.stop().await;
        stop
    });
    match stopped {
        Ok(()) => 0,
        Err(code) => code,
    }
}

/// A line printed once, before whatever comes after it (`None`: no line).
#[cfg(feature = "etcd")]
struct FirstLine {
    line: Option<String>,
    once: std::sync::Once,
}

#[cfg(feature = "etcd")]
impl FirstLine {
    fn print(&self) {
        if let Some(line) = &self.line {
            self.once.call_once(|| outln!("{line}"));
        }
    }
}

/// The JSON `metrics` event: the address the metrics are served at (the one bound, with
/// the port the system chose for `HOST:0`).
#[cfg(feature = "etcd")]
fn metrics_json(addr: std::net::SocketAddr) -> serde_json::Value {
    serde_json::json!({
        "event": "metrics",
        "flow": null,
        "revision": null,
        "hash": null,
        "address": addr.to_string(),
        "url": format!("http://{addr}/metrics"),
    })
}

/// Serves the metrics at `http://ADDR/metrics` (Prometheus text format, rendered by the
/// exporter crate; every other path is 404), on the runtime entered; the address bound
/// (`ADDR` with the port the system chose when it is 0). The exporter's own listener
/// answers every path with the metrics, so it is not used.
#[cfg(feature = "etcd")]
fn serve_metrics(addr: std::net::SocketAddr) -> Result<std::net::SocketAddr, String> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    let listener = std::net::TcpListener::bind(addr).map_err(|e| e.to_string())?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("flowc_propagation_seconds".to_owned()),
            &[
                0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
            ],
        )
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|e| e.to_string())?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        // what the exporter's own listener would do: drain the histograms' buffers
        let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // out of file descriptors or the like: wait, never spin
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            };
            let handle = handle.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let answer = metrics_answer(&handle, &req);
                    async move { Ok::<_, std::convert::Infallible>(answer) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                // a client that breaks its connection is no error of ours
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    Ok(bound)
}

/// The answer to one request to the metrics address: `GET /metrics` (or `HEAD`) is the
/// exporter's rendering; any other path 404, any other method on it 405.
#[cfg(feature = "etcd")]
fn metrics_answer<B>(
    handle: &metrics_exporter_prometheus::PrometheusHandle,
    req: &hyper::Request<B>,
) -> hyper::Response<http_body_util::Full<hyper::body::Bytes>> {
    use hyper::{Method, StatusCode, header};
    let (status, content_type, body) = if req.uri().path() != "/metrics" {
        (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: the metrics are at /metrics\n".to_owned(),
        )
    } else if req.method() != Method::GET && req.method() != Method::HEAD {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "method not allowed: GET /metrics\n".to_owned(),
        )
    } else {
        (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            handle.render(),
        )
    };
    let mut answer =
        hyper::Response::new(http_body_util::Full::new(hyper::body::Bytes::from(body)));
    *answer.status_mut() = status;
    if let Ok(v) = header::HeaderValue::from_str(content_type) {
        answer.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        answer
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
    }
    answer
}

/// `HOST:PORT` (a name such as `localhost:9464`, or an address) as the first address it
/// resolves to.
#[cfg(feature = "etcd")]
fn resolve_addr(text: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs as _;
    let mut addrs = text
        .to_socket_addrs()
        .map_err(|e| format!("`{text}` is no HOST:PORT that resolves: {e}"))?;
    addrs
        .next()
        .ok_or_else(|| format!("`{text}` resolves to no address"))
}
