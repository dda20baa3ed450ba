//! The watcher: one tenant's flows from etcd into a registry, kept in step.
//!
//! It reads every `flows/` and `flowmeta/` key of the tenant at one revision, publishes
//! each flow under its key's `mod_revision`, then watches from that revision + 1. Every
//! event compiles and publishes; a flow that does not compile (or whose YAML names
//! another id than its key) is rejected: the last good version stays active and the
//! diagnostics are kept ([`EtcdWatch::rejections`]) and reported ([`WatchEvent::Reject`]).
//! A deleted key retires its flow. The active version's revision is always its key's
//! current mod revision: the same content put again is published under the new one. A
//! watcher that starts (or resynchronises) and finds refused content in the key of a
//! flow with no active version activates the flow's newest accepted history entry, and
//! still reports the rejection. Other keys of the watched range (deeper than
//! `flows/<id>`, or beside `flows/` and `flowmeta/`) are no flows: each is ignored and
//! reported once ([`WatchEvent::Warning`]).
//!
//! Faults: when the connection or the watch fails it reconnects with exponential backoff
//! and resumes from the last revision it applied, so no event is lost; when etcd has
//! compacted that revision it re-reads everything at a new revision (retiring flows
//! deleted meanwhile, "at or before" that revision). Every connection asks which cluster
//! answers: another cluster than the one followed (only when etcd was replaced at an
//! address that answered the followed one: a member of another cluster elsewhere in the
//! list is left out, see [`Follow`]), a current revision below the last one applied, or
//! the last put the watcher saw missing at its revision (etcd recreated or restored from
//! a backup) means the watcher's revisions tell nothing there, and it re-reads
//! everything the same way ([`ResyncReason`]). The first read after serving a snapshot
//! compares by content too: the snapshot may be another cluster's. A stop cancels
//! whatever the watcher waits for, a connection attempt and a read included (it is
//! checked between flows), and nothing is reported after it. A lost connection is reported once ([`WatchEvent::Disconnected`]),
//! then at most every 30 s ([`WatchEvent::Retrying`]), and [`WatchEvent::Connected`]
//! says how many attempts failed. Every attempt that reaches a server (the first and
//! every reconnection) is classified: one etcd refuses as configured (TLS files, user,
//! endpoint scheme; see [`Connection::setup_error`]) ends the watcher with
//! [`EtcdError::Setup`] ([`EtcdWatch::finished`]), without a `Disconnected` report. With a snapshot directory every accepted version is
//! also written there; a watcher loads the snapshot at start, serves it while etcd
//! cannot be reached, and replaces it with etcd's flows once etcd answers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use etcd_client::{Client, EventType, GetOptions, KeyValue, WatchOptions};
use tokio::sync::watch as signal;

use super::snapshot::{Snapshot, SnapshotFlow};
use super::{EtcdError, FlowMeta, now_micros};
use crate::compile::{VersionId, stable_hash};
use crate::diagnostic::Diagnostics;
use crate::limits::Limits;
use crate::registry::Registry;
use crate::store::etcd::{
    Connection, DECODE_LIMIT_BYTES, Follow, HistoryEntry, KEEP_ALIVE_TIMEOUT, KeyKind, Tenant,
    etcd_error, put_history, read_history, read_range_within, timeout_error,
};
use crate::store::{NewVersion, StoreError, VersionMeta, check_flow_id};

/// What a watcher needs.
#[derive(Clone, Debug)]
pub struct WatchConfig {
    /// How to reach etcd.
    pub connection: Connection,
    /// Whose flows.
    pub tenant: Tenant,
    /// Where to keep the local snapshot (none: no snapshot).
    pub snapshot: Option<PathBuf>,
    /// First wait before reconnecting.
    pub min_backoff: Duration,
    /// Longest wait between reconnects.
    pub max_backoff: Duration,
}

impl WatchConfig {
    /// No snapshot; backoff from 50 ms doubling up to 1 s.
    #[must_use]
    pub fn new(connection: Connection, tenant: Tenant) -> Self {
        Self {
            connection,
            tenant,
            snapshot: None,
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
        }
    }
}

/// What happened, in order.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum WatchEvent {
    /// etcd answered: the watcher reflects it at `revision` and watches on.
    Connected {
        /// The revision read (or resumed from).
        revision: u64,
        /// Failed attempts before this one (since the start for the first connection,
        /// since the connection was lost for a reconnect).
        retries: u32,
        /// False for the first connection since the watcher started (also when it
        /// served its snapshot meanwhile): only a connection made again after one was
        /// lost is a reconnect (and counts in `flowc_reconnects_total`).
        reconnect: bool,
        /// What the first read made of the versions loaded from the local snapshot
        /// (none after the first connection, or when no version was loaded).
        snapshot: Option<SnapshotOutcome>,
    },
    /// A version loaded from the local snapshot at start (served until etcd answers).
    Snapshot {
        /// The version.
        version: VersionId,
    },
    /// A new version is active.
    Publish {
        /// The version (its revision is the key's mod revision).
        version: VersionId,
        /// From the publisher's write to the swap, for a version received live by the watch
        /// stream whose publisher recorded its time (not at start nor after a resync;
        /// none when the publisher's clock is ahead).
        latency: Option<Duration>,
    },
    /// A flow that does not compile (or sits under another id's key): nothing changed.
    Reject {
        /// The flow id the key names.
        flow: String,
        /// The key's mod revision.
        revision: u64,
        /// Every diagnostic.
        diagnostics: Arc<Diagnostics>,
        /// The version that stays active, if any.
        kept: Option<VersionId>,
    },
    /// The flow's key was deleted: no new starts (running instances keep their version).
    Retire {
        /// The flow.
        flow: String,
        /// The revision of the deletion when `exact`; otherwise the revision of the full
        /// read that found the flow gone (it was deleted at or before it), the same on
        /// every watcher that re-read at that revision.
        revision: u64,
        /// `revision` is the deletion's (seen live by the watch); false after a full
        /// re-read.
        exact: bool,
    },
    /// The watcher's revisions no longer tell what changed: everything was read again at
    /// `revision` (flows absent there are retired, every present one is published under
    /// its key's mod revision there, the snapshot is rewritten).
    Resync {
        /// The revision read.
        revision: u64,
        /// Why.
        reason: ResyncReason,
    },
    /// etcd could not be reached or the watch broke; retrying. Reported once when the
    /// connection is lost (then [`WatchEvent::Retrying`] at most every 30 s, and
    /// [`WatchEvent::Connected`] when back).
    Disconnected {
        /// Why.
        error: String,
        /// True while the watcher has not reached etcd since it started and serves the
        /// versions of its snapshot.
        serving_snapshot: bool,
        /// How many flows the snapshot served (0 unless `serving_snapshot`).
        snapshot_flows: usize,
        /// The snapshot directory (when `serving_snapshot`).
        snapshot_dir: Option<PathBuf>,
        /// When the next attempt is.
        retry_in: Duration,
    },
    /// Still disconnected (at most one every 30 s).
    Retrying {
        /// Failed attempts since the connection was lost.
        attempts: u32,
        /// The last attempt's error.
        error: String,
    },
    /// Something that did not stop the watcher (a history entry or the snapshot could
    /// not be written, a key under the tenant's prefix that is no flow key).
    Warning {
        /// What.
        message: String,
    },
}

impl WatchEvent {
    /// The event's name in `flowc watch --format json`: `connected`, `snapshot`,
    /// `publish`, `reject`, `retire`, `resync`, `disconnected`, `retrying`, `warning`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            WatchEvent::Connected { .. } => "connected",
            WatchEvent::Snapshot { .. } => "snapshot",
            WatchEvent::Publish { .. } => "publish",
            WatchEvent::Reject { .. } => "reject",
            WatchEvent::Retire { .. } => "retire",
            WatchEvent::Resync { .. } => "resync",
            WatchEvent::Disconnected { .. } => "disconnected",
            WatchEvent::Retrying { .. } => "retrying",
            WatchEvent::Warning { .. } => "warning",
        }
    }
}

/// Why a watcher read everything again ([`WatchEvent::Resync`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResyncReason {
    /// etcd compacted the revision to resume from.
    Compacted,
    /// etcd at the endpoints is another cluster than the one the watcher followed
    /// (recreated, or restored from a backup of another, at the same address): its
    /// revisions are not the ones the watcher holds.
    ClusterChanged {
        /// The cluster id followed before.
        was: u64,
        /// The cluster id answering now.
        now: u64,
    },
    /// etcd's current revision is below the last revision the watcher applied (etcd
    /// restored from an older backup, with the same cluster id).
    RevisionBehind {
        /// The last revision applied.
        last: u64,
        /// etcd's current revision.
        now: u64,
    },
    /// The key the watcher last saw put, read at the revision of that put, is absent
    /// there or holds another mod revision or content: etcd's history is not the one
    /// the watcher followed (restored from a backup of the same cluster, whose revision
    /// caught up past the watcher's before it reconnected).
    HistoryDiverged {
        /// The revision of the put the watcher saw.
        revision: u64,
    },
}

/// What a watcher's first read of etcd made of the versions it loaded from its local
/// snapshot ([`WatchEvent::Connected`]); the four counts add up to the versions loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotOutcome {
    /// etcd holds another version (other content, or the same content under another
    /// revision): etcd's is active now.
    pub replaced: usize,
    /// etcd holds no such flow: retired.
    pub retired: usize,
    /// etcd holds the same version (revision and content hash).
    pub same: usize,
    /// etcd's content for the flow is rejected: the snapshot's version stays active.
    pub kept: usize,
}

impl std::fmt::Display for ResyncReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResyncReason::Compacted => f.write_str("the revision to resume from was compacted"),
            ResyncReason::ClusterChanged { was, now } => write!(
                f,
                "etcd is another cluster (id {now:x}) than the previous cluster (id {was:x}): recreated or restored from a backup"
            ),
            ResyncReason::RevisionBehind { last, now } => write!(
                f,
                "etcd's revision {now} is below the last revision applied ({last}): restored from a backup"
            ),
            ResyncReason::HistoryDiverged { revision } => write!(
                f,
                "the key put at revision {revision}, as the watcher saw it, is not what etcd holds at that revision: etcd's history diverged (restored from a backup)"
            ),
        }
    }
}

impl ResyncReason {
    /// The reason's name in `flowc watch --format json`: `compacted`, `cluster-changed`,
    /// `revision-behind`, `history-diverged`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            ResyncReason::Compacted => "compacted",
            ResyncReason::ClusterChanged { .. } => "cluster-changed",
            ResyncReason::RevisionBehind { .. } => "revision-behind",
            ResyncReason::HistoryDiverged { .. } => "history-diverged",
        }
    }

    /// Whether the revisions held before mean nothing now (another cluster or an older
    /// one): every flow is taken again from the read, whatever its revision was.
    fn new_history(self) -> bool {
        !matches!(self, ResyncReason::Compacted)
    }
}

/// A flow whose latest content in etcd is rejected.
#[derive(Clone, Debug)]
pub struct Rejection {
    /// The flow id the key names.
    pub flow: String,
    /// The key's mod revision.
    pub revision: u64,
    /// Every diagnostic.
    pub diagnostics: Arc<Diagnostics>,
}

#[derive(Debug, Default)]
struct State {
    revision: Option<u64>,
    connected: bool,
    rejections: BTreeMap<String, Rejection>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Control {
    Run,
    Pause,
    Stop,
}

/// A running watcher (a tokio task). Dropping it stops the task.
#[derive(Debug)]
pub struct EtcdWatch {
    state: Arc<Mutex<State>>,
    control: signal::Sender<Control>,
    task: Option<tokio::task::JoinHandle<Result<(), EtcdError>>>,
}

impl EtcdWatch {
    /// The last etcd revision applied (`None`: etcd has not answered yet).
    #[must_use]
    pub fn revision(&self) -> Option<u64> {
        self.lock().revision
    }

    /// True while the watch is established.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.lock().connected
    }

    /// The flows whose latest content is rejected, by flow id.
    #[must_use]
    pub fn rejections(&self) -> Vec<Rejection> {
        self.lock().rejections.values().cloned().collect()
    }

    /// Stops watching (the registry keeps what it has) until [`EtcdWatch::resume`].
    pub fn pause(&self) {
        let _ = self.control.send(Control::Pause);
    }

    /// Watches again from the last revision applied (re-reading everything when it was
    /// compacted meanwhile).
    pub fn resume(&self) {
        let _ = self.control.send(Control::Run);
    }

    /// Resolves when the watcher ends by itself, which it does only on a setup error
    /// etcd will refuse every time ([`EtcdError::Setup`]: TLS files, user, endpoint
    /// scheme); an unreachable etcd never ends it (it retries with backoff). Pending
    /// while the watcher runs; after it ended (or [`EtcdWatch::stop`]), `Ok`.
    ///
    /// # Errors
    /// The [`EtcdError::Setup`] that ended the watcher.
    pub async fn finished(&mut self) -> Result<(), EtcdError> {
        let Some(task) = self.task.as_mut() else {
            return Ok(());
        };
        let ended = task.await;
        self.task = None;
        match ended {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Ok(()),
        }
    }

    /// Stops the watcher and waits for its task to end.
    pub async fn stop(mut self) {
        let _ = self.control.send(Control::Stop);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for EtcdWatch {
    fn drop(&mut self) {
        let _ = self.control.send(Control::Stop);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

type Sink = Box<dyn Fn(&WatchEvent) + Send + Sync>;

/// Starts watching `config.tenant` into `registry`, reporting every event to `on_event`.
/// Must be called inside a tokio runtime (it spawns a task). With a snapshot directory,
/// the snapshot's versions are published before this returns.
///
/// The registry's version store (if any) is called on the watcher's task; an
/// [`crate::store::EtcdStore`] there cannot store snapshot versions while etcd is down,
/// so a watcher that must serve its snapshot uses a registry without one, or with a
/// directory store.
///
/// # Errors
/// [`EtcdError::Snapshot`] when the snapshot directory cannot be opened or holds another
/// tenant's snapshot.
pub fn watch(
    registry: Arc<Registry>,
    config: WatchConfig,
    on_event: impl Fn(&WatchEvent) + Send + Sync + 'static,
) -> Result<EtcdWatch, EtcdError> {
    let (snapshot, damaged) = match &config.snapshot {
        Some(d) => {
            let (s, damaged) = Snapshot::open_or_reset(d, &config.tenant)?;
            (Some(s), damaged)
        }
        None => (None, None),
    };
    let state = Arc::new(Mutex::new(State::default()));
    let (control, control_rx) = signal::channel(Control::Run);
    let mut worker = Worker {
        registry,
        config,
        snapshot,
        sink: Box::new(on_event),
        state: Arc::clone(&state),
        seen: BTreeMap::new(),
        last: None,
        reached: false,
        contacted: false,
        announced: false,
        cluster: None,
        answered: BTreeMap::new(),
        fingerprint: None,
        odd: BTreeSet::new(),
        odd_unlisted: false,
        endpoint_warnings: BTreeSet::new(),
        pending_warnings: Vec::new(),
        labels: FlowLabels::default(),
        snapshot_served: BTreeMap::new(),
        held: None,
        halt: control_rx.clone(),
        retries: 0,
        down: false,
        last_report: None,
        history_denied: false,
    };
    register_metrics();
    if let Some(message) = damaged {
        worker.warn(message);
    }
    worker.serve_snapshot()?;
    let task = tokio::spawn(worker.run_then_flush(control_rx));
    Ok(EtcdWatch {
        state,
        control,
        task: Some(task),
    })
}

/// A put of a flow key.
#[derive(Clone, Copy)]
struct Put<'a> {
    key: &'a str,
    flow: &'a str,
    value: &'a [u8],
    revision: u64,
}

/// What the watcher last saw put (any key of the watched range): the key, the
/// revision of the put and a hash of the value. A reconnection reads the key at that
/// revision; another answer means etcd's history is not the one followed.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Fingerprint {
    key: Vec<u8>,
    revision: u64,
    digest: u64,
}

impl Fingerprint {
    fn of(kv: &KeyValue) -> Self {
        Fingerprint {
            key: kv.key().to_vec(),
            revision: revision_of(kv.mod_revision()),
            digest: stable_hash(&[kv.value()]),
        }
    }

    /// Whether `kv` (the key read at the fingerprint's revision, if present) is it.
    fn matches(&self, kv: Option<&KeyValue>) -> bool {
        kv.is_some_and(|kv| Fingerprint::of(kv) == *self)
    }
}

/// How a watch stream ended.
enum End {
    Stop,
    Paused,
    Compacted,
    Lost(StoreError),
}

#[expect(
    clippy::struct_excessive_bools,
    reason = "independent facts of one connection's life, each read in one place"
)]
struct Worker {
    registry: Arc<Registry>,
    config: WatchConfig,
    snapshot: Option<Snapshot>,
    sink: Sink,
    state: Arc<Mutex<State>>,
    /// The mod revision of each flow key as last applied (accepted or rejected).
    seen: BTreeMap<String, u64>,
    /// The last etcd revision applied.
    last: Option<u64>,
    /// etcd answered at least once since the start.
    reached: bool,
    /// A connection was reported since the start (the next one is a reconnect).
    contacted: bool,
    /// This connection was reported (`Connected`).
    announced: bool,
    /// The cluster id of etcd's last answer: the cluster followed.
    cluster: Option<u64>,
    /// The cluster id each surveyed endpoint answered with last (see [`Follow`]).
    answered: BTreeMap<String, u64>,
    /// The last put applied: on every connection, etcd must hold it at its revision.
    fingerprint: Option<Fingerprint>,
    /// The odd keys (neither a flow's nor its metadata's) already reported.
    odd: BTreeSet<String>,
    /// More odd keys were seen than are listed (said once).
    odd_unlisted: bool,
    /// The misconfigured endpoints left out already reported (each said once).
    endpoint_warnings: BTreeSet<String>,
    /// Endpoints left out by this attempt, reported after its connect (or disconnect).
    pending_warnings: Vec<String>,
    /// The flow labels of the metrics given out.
    labels: FlowLabels,
    /// The versions loaded from the snapshot that no read of etcd has checked yet.
    snapshot_served: BTreeMap<String, VersionId>,
    /// Events held back while the first read after a snapshot is applied: the
    /// `Connected` event that says what became of the snapshot comes first.
    held: Option<Vec<WatchEvent>>,
    /// The control as the task last saw it: a stop silences the watcher at once.
    halt: signal::Receiver<Control>,
    /// Failed attempts since the connection was lost.
    retries: u32,
    /// The loss of the connection was reported.
    down: bool,
    /// When the loss (or the last "still retrying") was reported.
    last_report: Option<Instant>,
    /// etcd denied writing a history entry (a read-only user): said once.
    history_denied: bool,
}

/// How often a watcher that cannot reach etcd says it still retries.
const REPORT_EVERY: Duration = Duration::from_secs(30);

/// Describes the watcher's metrics and registers the counters without labels at 0, so
/// that an exporter shows them from the start (an alert on a rate needs the zero); the
/// per-flow counters are registered at 0 for each flow label when it is first given
/// ([`FlowLabels`]), never without a label.
fn register_metrics() {
    metrics::describe_counter!(
        "flowc_publishes_total",
        "versions made active by the etcd watcher, per flow"
    );
    metrics::describe_counter!(
        "flowc_rejects_total",
        "flow contents in etcd refused by the watcher, per flow"
    );
    metrics::describe_counter!(
        "flowc_resyncs_total",
        "full re-reads after the revision to resume from was compacted"
    );
    metrics::describe_counter!(
        "flowc_reconnects_total",
        "connections to etcd made again after losing it"
    );
    metrics::describe_gauge!(
        "flowc_active_revision",
        "the etcd mod revision of the active version, per flow (0: retired, none active)"
    );
    metrics::describe_gauge!("flowc_live_versions", "versions kept in memory, per flow");
    metrics::describe_gauge!(
        "flowc_connected",
        "1 while the watch on etcd is established, 0 otherwise"
    );
    metrics::gauge!("flowc_connected").set(0.0);
    metrics::describe_histogram!(
        "flowc_propagation_seconds",
        metrics::Unit::Seconds,
        "from the publisher's write to the watcher's swap"
    );
    for name in ["flowc_resyncs_total", "flowc_reconnects_total"] {
        metrics::counter!(name).increment(0);
    }
}

fn revision_of(r: i64) -> u64 {
    u64::try_from(r).unwrap_or(0)
}

impl Worker {
    /// Reports an event, unless the watcher was told to stop (nothing is reported after
    /// a stop) or holds the events of a read back.
    fn emit(&mut self, event: &WatchEvent) {
        if self.halted() {
            return;
        }
        if let Some(held) = &mut self.held {
            held.push(event.clone());
            return;
        }
        (self.sink)(event);
    }

    /// Told to stop: the read or the events being applied end here.
    fn halted(&self) -> bool {
        *self.halt.borrow() == Control::Stop
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn warn(&mut self, message: String) {
        tracing::warn!(tenant = self.config.tenant.tenant(), "{message}");
        self.emit(&WatchEvent::Warning { message });
    }

    fn serve_snapshot(&mut self) -> Result<(), EtcdError> {
        let Some(snapshot) = &self.snapshot else {
            return Ok(());
        };
        let flows = snapshot.flows()?;
        let revision = snapshot.revision()?;
        for f in flows {
            let compiled = match self.registry.compile(&f.name, f.source.as_bytes()) {
                Ok(c) if c.id() == f.flow && c.version().hash == f.hash => c,
                Ok(_) | Err(_) => {
                    self.warn(format!(
                        "snapshot of `{}` does not compile to content {} with this flowc: skipped",
                        f.flow, f.hash
                    ));
                    continue;
                }
            };
            match self.registry.publish_compiled_with(
                compiled,
                Some(f.revision),
                &VersionMeta::default(),
            ) {
                Ok(version) => {
                    self.seen.insert(f.flow.clone(), f.revision);
                    self.snapshot_served
                        .insert(version.flow.clone(), version.clone());
                    self.gauges(&version);
                    self.emit(&WatchEvent::Snapshot { version });
                }
                Err(e) => self.warn(format!("snapshot of `{}`: {e}", f.flow)),
            }
        }
        self.last = revision;
        Ok(())
    }

    /// Runs the watcher until it is stopped, then writes what the snapshot kept since
    /// it was last written ([`Snapshot::flush`]): a version served is in the snapshot
    /// however soon the watcher stops (a stop while a full read waits on etcd left it
    /// out: CI found the snapshot missing).
    async fn run_then_flush(mut self, control: signal::Receiver<Control>) -> Result<(), EtcdError> {
        let ended = Box::pin(self.run(control)).await;
        let last = self.last.unwrap_or(0);
        if let Some(s) = &mut self.snapshot
            && let Err(e) = s.flush(last)
        {
            self.warn(e.to_string());
        }
        ended
    }

    async fn run(&mut self, mut control: signal::Receiver<Control>) -> Result<(), EtcdError> {
        let mut backoff = self.config.min_backoff;
        let mut need_full = true;
        let mut resync: Option<ResyncReason> = None;
        loop {
            if !wait_running(&mut control).await {
                return Ok(());
            }
            let endpoints = self.config.connection.endpoints.clone();
            let attempt = async {
                let mut follow = self.cluster.map(|cluster| Follow {
                    cluster,
                    answered: self.answered.clone(),
                    left_out: Vec::new(),
                });
                let opened = self.config.connection.open_following(follow.as_mut()).await;
                let left_out = follow.map(|f| f.left_out).unwrap_or_default();
                for warning in left_out {
                    if self.endpoint_warnings.insert(warning.clone()) {
                        self.pending_warnings.push(warning);
                    }
                }
                let opened = opened?;
                for warning in opened.warnings {
                    if self.endpoint_warnings.insert(warning.clone()) {
                        self.pending_warnings.push(warning);
                    }
                }
                self.answered.extend(opened.clusters);
                let mut client = opened.client;
                if let Some(reason) = self.other_history(&mut client).await? {
                    need_full = true;
                    resync = Some(reason);
                }
                if need_full {
                    self.full_read(&mut client, resync).await?;
                }
                Ok::<Client, StoreError>(client)
            };
            // a stop (or pause) cancels the attempt at once, whatever it waits for
            let attempted = tokio::select! {
                r = attempt => Some(r),
                stop = stopped(&mut control) => if stop { return Ok(()) } else { None },
            };
            let Some(attempted) = attempted else {
                // paused in the middle: the next attempt is reported anew
                self.not_connected();
                continue;
            };
            let mut client = match attempted.map_err(|e| e.at(&endpoints)) {
                Ok(c) => c,
                Err(e) => {
                    if self.lost_attempt(&e, &mut backoff, &mut control).await? {
                        return Ok(());
                    }
                    continue;
                }
            };
            let announced = need_full;
            need_full = false;
            resync = None;
            match self.stream(&mut client, &mut control, announced).await {
                End::Stop => return Ok(()),
                End::Paused => self.not_connected(),
                End::Compacted => {
                    need_full = true;
                    resync = Some(ResyncReason::Compacted);
                }
                End::Lost(error) => {
                    if self
                        .lost_attempt(&error, &mut backoff, &mut control)
                        .await?
                    {
                        return Ok(());
                    }
                    continue;
                }
            }
            backoff = self.config.min_backoff;
        }
    }

    /// A failed attempt: ends the watcher on a setup error, otherwise reports the outage
    /// and waits; true when told to stop meanwhile (the classification, which may ask
    /// the endpoints, is cancelled by a stop too).
    async fn lost_attempt(
        &mut self,
        e: &StoreError,
        backoff: &mut Duration,
        control: &mut signal::Receiver<Control>,
    ) -> Result<bool, EtcdError> {
        let classified = tokio::select! {
            r = self.setup(e) => Some(r),
            stop = stopped(control) => if stop { return Ok(true) } else { None },
        };
        if let Some(r) = classified {
            r?;
        }
        Ok(self.disconnected(&e.to_string(), backoff, control).await)
    }

    /// No connection (lost, paused or refused): the next one is reported again.
    fn not_connected(&mut self) {
        self.announced = false;
        self.lock().connected = false;
        metrics::gauge!("flowc_connected").set(0.0);
    }

    /// Asks etcd which cluster answers, at which revision: the reason to read everything
    /// again when the revisions the watcher holds are not this etcd's (another cluster
    /// than the one followed, a current revision below the last one applied, or the
    /// last put the watcher saw not there at its revision; that revision compacted is a
    /// compaction).
    async fn other_history(
        &mut self,
        client: &mut Client,
    ) -> Result<Option<ResyncReason>, StoreError> {
        let (start, end) = self.config.tenant.watch_range();
        let timeout = self.config.connection.request_timeout;
        let options = GetOptions::new().with_range(end).with_count_only();
        let got = tokio::time::timeout(timeout, client.get(start, Some(options)))
            .await
            .map_err(|_| timeout_error("read", timeout))?
            .map_err(|e| etcd_error("read", &e))?;
        let Some(header) = got.header() else {
            return Ok(None);
        };
        let (cluster, now) = (header.cluster_id(), revision_of(header.revision()));
        let was = self.cluster.replace(cluster);
        if let [endpoint] = self.config.connection.endpoints.as_slice() {
            self.answered.insert(endpoint.clone(), cluster);
        }
        Ok(match (was, self.last) {
            (Some(was), _) if was != cluster => {
                Some(ResyncReason::ClusterChanged { was, now: cluster })
            }
            // a snapshot's revision may be another cluster's: the first read replaces it
            (_, Some(last)) if self.reached && now < last => {
                Some(ResyncReason::RevisionBehind { last, now })
            }
            _ if self.reached => self.diverged(client).await?,
            _ => None,
        })
    }

    /// Reads the key of the watcher's [`Fingerprint`] at its revision: absent there, or
    /// another put, means etcd's history diverged from the one the watcher followed.
    async fn diverged(&self, client: &mut Client) -> Result<Option<ResyncReason>, StoreError> {
        let Some(print) = &self.fingerprint else {
            return Ok(None);
        };
        let timeout = self.config.connection.request_timeout;
        let options =
            GetOptions::new().with_revision(crate::store::etcd::etcd_revision(print.revision));
        let got = tokio::time::timeout(timeout, client.get(print.key.clone(), Some(options)))
            .await
            .map_err(|_| timeout_error("read", timeout))?;
        match got {
            Ok(got) if print.matches(got.kvs().first()) => Ok(None),
            Ok(_) => Ok(Some(ResyncReason::HistoryDiverged {
                revision: print.revision,
            })),
            Err(e)
                if e.to_string()
                    .contains("required revision has been compacted") =>
            {
                Ok(Some(ResyncReason::Compacted))
            }
            Err(e) => Err(etcd_error("read", &e)),
        }
    }

    /// Ends the watcher on an attempt that failed for a setup error (see
    /// [`Connection::setup_error`]): every attempt that reaches a server is classified,
    /// the first one and every reconnection alike.
    async fn setup(&mut self, e: &StoreError) -> Result<(), EtcdError> {
        let Some(setup) = self.config.connection.setup_error(e).await else {
            return Ok(());
        };
        self.not_connected();
        tracing::error!(
            tenant = self.config.tenant.tenant(),
            fault = setup.fault.as_str(),
            "etcd refuses the connection as configured: {}",
            setup.message
        );
        Err(setup.into())
    }

    /// Reports a lost connection (once, then at most every [`REPORT_EVERY`]) and waits
    /// `backoff` (doubling it); true when told to stop meanwhile.
    async fn disconnected(
        &mut self,
        error: &str,
        backoff: &mut Duration,
        control: &mut signal::Receiver<Control>,
    ) -> bool {
        self.not_connected();
        if self.retries == 0 {
            // the first failure since etcd answered: the backoff starts afresh
            *backoff = self.config.min_backoff;
        }
        self.retries = self.retries.saturating_add(1);
        let now = Instant::now();
        let tenant = self.config.tenant.tenant().to_owned();
        if !self.down {
            self.down = true;
            self.last_report = Some(now);
            let serving_snapshot = !self.reached && self.snapshot.is_some();
            tracing::warn!(
                tenant,
                retry_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                "etcd unreachable: {error}"
            );
            self.emit(&WatchEvent::Disconnected {
                error: error.to_owned(),
                serving_snapshot,
                snapshot_flows: if serving_snapshot {
                    self.snapshot_served.len()
                } else {
                    0
                },
                snapshot_dir: self.config.snapshot.clone().filter(|_| serving_snapshot),
                retry_in: *backoff,
            });
        } else if self
            .last_report
            .is_none_or(|t| now.duration_since(t) >= REPORT_EVERY)
        {
            self.last_report = Some(now);
            tracing::warn!(
                tenant,
                attempts = self.retries,
                "etcd still unreachable: {error}"
            );
            self.emit(&WatchEvent::Retrying {
                attempts: self.retries,
                error: error.to_owned(),
            });
        }
        self.flush_warnings();
        let wait = *backoff;
        *backoff = (*backoff * 2).min(self.config.max_backoff);
        tokio::select! {
            () = tokio::time::sleep(wait) => false,
            stop = stopped(control) => stop,
        }
    }

    /// etcd answered: reports it (with the retries it took and the snapshot it
    /// replaces), before what the answer changes.
    fn connected(&mut self, revision: u64, snapshot: Option<SnapshotOutcome>) {
        if std::mem::replace(&mut self.announced, true) {
            // already reported for this connection (a resync after a compaction is
            // reported as such, not as a second contact)
            self.flush_warnings();
            return;
        }
        let retries = std::mem::take(&mut self.retries);
        // the first contact since the start (from a snapshot or not) is no reconnect
        let reconnect = std::mem::replace(&mut self.contacted, true) && retries > 0;
        self.down = false;
        self.last_report = None;
        if reconnect {
            metrics::counter!("flowc_reconnects_total").increment(1);
        }
        tracing::info!(
            tenant = self.config.tenant.tenant(),
            revision,
            retries,
            reconnect,
            "connected"
        );
        self.emit(&WatchEvent::Connected {
            revision,
            retries,
            reconnect,
            snapshot,
        });
        self.flush_warnings();
    }

    /// Reports the endpoints the last attempt left out (after its connect or
    /// disconnect report).
    fn flush_warnings(&mut self) {
        for warning in std::mem::take(&mut self.pending_warnings) {
            self.warn(warning);
        }
    }

    /// The contact a full read makes: connected, then the resync (if any).
    fn contact(
        &mut self,
        revision: u64,
        resync: Option<ResyncReason>,
        snapshot: Option<SnapshotOutcome>,
    ) {
        self.connected(revision, snapshot);
        if let Some(reason) = resync {
            metrics::counter!("flowc_resyncs_total").increment(1);
            tracing::info!(
                tenant = self.config.tenant.tenant(),
                revision,
                reason = reason.name(),
                "resynchronised: {reason}"
            );
            self.emit(&WatchEvent::Resync { revision, reason });
        }
    }

    /// What the read just applied made of the versions loaded from the snapshot.
    fn snapshot_outcome(&mut self) -> SnapshotOutcome {
        let mut outcome = SnapshotOutcome::default();
        let served = std::mem::take(&mut self.snapshot_served);
        let rejected = self
            .lock()
            .rejections
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>();
        for (flow, loaded) in served {
            match self.registry.active(&flow) {
                None => outcome.retired += 1,
                Some(a) if *a.version() == loaded => {
                    if rejected.contains(&flow) {
                        outcome.kept += 1;
                    } else {
                        outcome.same += 1;
                    }
                }
                Some(_) => outcome.replaced += 1,
            }
        }
        outcome
    }

    /// The registry reflects etcd and the watch goes on: connected (state and gauge).
    fn established(&mut self) {
        self.lock().connected = true;
        metrics::gauge!("flowc_connected").set(1.0);
    }

    /// Reads every flow at one revision and makes the registry reflect it.
    async fn full_read(
        &mut self,
        client: &mut Client,
        resync: Option<ResyncReason>,
    ) -> Result<(), StoreError> {
        let (start, end) = self.config.tenant.watch_range();
        let timeout = self.config.connection.request_timeout;
        // in pages at one revision: a tenant's flows may exceed any one answer's limit
        let (kvs, revision) = tokio::time::timeout(
            timeout.saturating_mul(4),
            read_range_within(client, &start, Some(end.as_bytes()), false, timeout),
        )
        .await
        .map_err(|_| timeout_error("read", timeout.saturating_mul(4)))??;
        self.reached = true;
        // first the contact, then the resync, then the changes they bring; the first
        // read after a snapshot checks every version loaded from it (by content: the
        // snapshot may be another cluster's, whose revisions name other content), and
        // its contact says what became of them, so it comes once the read is applied
        let verify = !self.snapshot_served.is_empty();
        if verify {
            // (a read cancelled by a pause keeps what it held: reported with this one)
            self.held.get_or_insert_with(Vec::new);
        } else {
            self.contact(revision, resync, None);
        }
        let new_history = verify || resync.is_some_and(ResyncReason::new_history);
        if new_history {
            // the kept versions' revisions are another history's: this one's may name
            // other content under the same numbers (retired flows' included)
            for flow in self.registry.flows() {
                self.registry.forget_revisions(&flow);
            }
        }
        let metas = self.metas(&kvs);
        let mut present = BTreeSet::new();
        self.fingerprint = kvs
            .iter()
            .max_by_key(|kv| kv.mod_revision())
            .map(Fingerprint::of);
        for kv in &kvs {
            // between flows: a stop ends the read here (the attempt is cancelled)
            tokio::task::yield_now().await;
            if self.halted() {
                std::future::pending::<()>().await;
            }
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            let kind = self.config.tenant.classify(&key);
            self.odd_key(&key, kind);
            if let KeyKind::Flow(flow) = kind {
                present.insert(flow.to_owned());
                let meta = metas
                    .get(flow)
                    .filter(|(at, _)| *at == kv.mod_revision())
                    .map(|(_, m)| m.clone());
                let put = Put {
                    key: &key,
                    flow,
                    value: kv.value(),
                    revision: revision_of(kv.mod_revision()),
                };
                if new_history {
                    // a revision of another history: equal numbers tell nothing
                    self.seen.remove(flow);
                }
                self.accept(client, &put, meta, true).await;
            }
        }
        let gone: Vec<String> = self
            .seen
            .keys()
            .filter(|f| !present.contains(*f))
            .cloned()
            .collect();
        for flow in gone {
            // the deletion's revision is compacted away (or another history's): every
            // watcher that re-read at this revision names it, "at or before"
            self.retire(&flow, revision, false);
        }
        self.lock().rejections.retain(|f, _| present.contains(f));
        if verify {
            let outcome = self.snapshot_outcome();
            let held = self.held.take().unwrap_or_default();
            self.contact(revision, resync, Some(outcome));
            for event in &held {
                self.emit(event);
            }
        }
        self.unread_keys(client, revision).await?;
        // the read is the whole state at its revision (below the last one applied when
        // etcd's history is another's)
        self.last = None;
        self.applied(revision);
        self.established();
        Ok(())
    }

    /// Reports the tenant's keys outside every subtree flowc writes (read keys only, at
    /// the full read's revision): they are no one's, and are ignored, but not silently.
    async fn unread_keys(&mut self, client: &mut Client, revision: u64) -> Result<(), StoreError> {
        let timeout = self.config.connection.request_timeout;
        let limit = i64::try_from(Limits::MAX_ODD_KEYS_REPORTED + 1).unwrap_or(i64::MAX);
        for (start, end) in self.config.tenant.unread_ranges() {
            let options = GetOptions::new()
                .with_range(end)
                .with_keys_only()
                .with_limit(limit)
                .with_revision(i64::try_from(revision).unwrap_or(0));
            let got = tokio::time::timeout(timeout, client.get(start, Some(options)))
                .await
                .map_err(|_| timeout_error("read", timeout))?
                .map_err(|e| etcd_error("read", &e))?;
            for kv in got.kvs() {
                let key = String::from_utf8_lossy(kv.key()).into_owned();
                self.odd_key(&key, KeyKind::Other);
            }
        }
        Ok(())
    }

    /// Reports a key of the watched range that is neither a flow's nor its metadata's
    /// (`flows/a/b`, `flowsx`), once per key: it is ignored, not silently.
    fn odd_key(&mut self, key: &str, kind: KeyKind<'_>) {
        if kind != KeyKind::Other || self.odd.contains(key) || self.odd_unlisted {
            return;
        }
        if self.odd.len() >= Limits::MAX_ODD_KEYS_REPORTED {
            // a tenant full of foreign keys gives a bounded log
            self.odd_unlisted = true;
            self.warn(format!(
                "more keys under tenant `{}` are ignored; only the first {} are listed",
                self.config.tenant.tenant(),
                Limits::MAX_ODD_KEYS_REPORTED
            ));
            return;
        }
        self.odd.insert(key.to_owned());
        let base = self.config.tenant.base();
        self.warn(format!(
            "key `{key}` is ignored: under tenant `{}` only `{base}flows/<flow-id>` (a flow) and `{base}flowmeta/<flow-id>` (its publish record) are read, the flow id being one key segment",
            self.config.tenant.tenant()
        ));
    }

    fn metas(&self, kvs: &[KeyValue]) -> HashMap<String, (i64, FlowMeta)> {
        let mut out = HashMap::new();
        for kv in kvs {
            let key = String::from_utf8_lossy(kv.key());
            if let KeyKind::Meta(flow) = self.config.tenant.classify(&key)
                && let Ok(meta) = serde_json::from_slice::<FlowMeta>(kv.value())
            {
                out.insert(flow.to_owned(), (kv.mod_revision(), meta));
            }
        }
        out
    }

    fn applied(&mut self, revision: u64) {
        self.last = Some(self.last.map_or(revision, |l| l.max(revision)));
        self.lock().revision = self.last;
        if let Some(s) = &mut self.snapshot
            && let Err(e) = s.set_revision(revision)
        {
            self.warn(e.to_string());
        }
    }

    async fn stream(
        &mut self,
        client: &mut Client,
        control: &mut signal::Receiver<Control>,
        announced: bool,
    ) -> End {
        let (start, end) = self.config.tenant.watch_range();
        let from = self.last.unwrap_or(0).saturating_add(1);
        let options = WatchOptions::new()
            .with_range(end)
            .with_start_revision(crate::store::etcd::etcd_revision(from));
        let timeout = self.config.connection.request_timeout;
        let mut watch_client = client
            .watch_client()
            .max_decoding_message_size(DECODE_LIMIT_BYTES);
        let created = tokio::select! {
            r = tokio::time::timeout(timeout, watch_client.watch(start, Some(options))) => r,
            stop = stopped(control) => return if stop { End::Stop } else { End::Paused },
        };
        let mut stream = match created {
            Ok(Ok(s)) => s,
            // the watch request is this attempt's first to reach etcd: its refusal counts
            Ok(Err(e)) => {
                return End::Lost(etcd_error("watch", &e).at(&self.config.connection.endpoints));
            }
            Err(_) => {
                return End::Lost(
                    timeout_error("watch", timeout).at(&self.config.connection.endpoints),
                );
            }
        };
        let mut announced = announced;
        // when etcd last said something on this watch
        let mut answered = Instant::now();
        loop {
            tokio::select! {
                msg = stream.message() => match msg {
                    Ok(Some(resp)) => {
                        answered = Instant::now();
                        if resp.compact_revision() > 0 {
                            tracing::info!(
                                tenant = self.config.tenant.tenant(),
                                from,
                                compacted = resp.compact_revision(),
                                "revision compacted"
                            );
                            return End::Compacted;
                        }
                        if resp.canceled() {
                            // etcd's reason (a permission revoked is a setup error)
                            return End::Lost(StoreError::Etcd {
                                operation: "watch",
                                message: format!("watch canceled: {}", resp.cancel_reason()),
                            });
                        }
                        if !announced {
                            announced = true;
                            self.reached = true;
                            self.connected(self.last.unwrap_or(0), None);
                            self.established();
                        }
                        self.apply(client, resp.events()).await;
                    }
                    Ok(None) => {
                        return End::Lost(StoreError::Unreachable {
                            operation: "watch",
                            endpoints: self.config.connection.endpoints_text(),
                            cause: "the watch stream ended".to_owned(),
                        });
                    }
                    Err(e) => return End::Lost(self.lost("watch", &e, answered.elapsed()).await),
                },
                changed = control.changed() => {
                    if changed.is_err() {
                        return End::Stop;
                    }
                    match *control.borrow_and_update() {
                        Control::Stop => return End::Stop,
                        Control::Pause => return End::Paused,
                        Control::Run => {}
                    }
                }
            }
        }
    }

    /// A broken watch in words, naming the endpoints: whatever broke an established
    /// watch, the connection is lost. The HTTP/2 layer says "broken pipe" both when the
    /// server closed the connection and when the client gave it up because etcd left a
    /// keep-alive ping unanswered (a stalled or frozen etcd, whose port still accepts
    /// connections). It is the second only when etcd said nothing on the watch for at
    /// least the keep-alive timeout (`silent_for`) and an endpoint is stalled now: it
    /// accepts a connection and answers nothing (a killed etcd refuses or resets it).
    async fn lost(
        &self,
        operation: &'static str,
        e: &etcd_client::Error,
        silent_for: Duration,
    ) -> StoreError {
        let (_, mut cause) = crate::store::etcd::describe(e);
        if cause.to_lowercase().contains("broken pipe")
            && silent_for >= KEEP_ALIVE_TIMEOUT
            && self.any_stalled().await
        {
            cause = format!(
                "etcd did not answer a keep-alive ping within {} s (the server still accepts connections but does not answer: stalled, frozen or overloaded)",
                KEEP_ALIVE_TIMEOUT.as_secs()
            );
        }
        StoreError::Unreachable {
            operation,
            endpoints: self.config.connection.endpoints_text(),
            cause,
        }
    }

    /// Whether some endpoint is stalled now: it accepts a connection and answers nothing
    /// within 500 ms.
    async fn any_stalled(&self) -> bool {
        for endpoint in &self.config.connection.endpoints {
            let Some((_, host)) = endpoint.split_once("://") else {
                continue;
            };
            let host = host.trim_end_matches('/');
            if crate::store::etcd::stalled(host, Duration::from_millis(500)).await {
                return true;
            }
        }
        false
    }

    /// Applies watch events, one revision at a time (a publisher's flow and metadata
    /// keys change in one transaction, so at one revision).
    async fn apply(&mut self, client: &mut Client, events: &[etcd_client::Event]) {
        let mut i = 0;
        while let Some(first) = events.get(i) {
            let revision = first.kv().map_or(0, KeyValue::mod_revision);
            let group: Vec<&etcd_client::Event> = events
                .iter()
                .skip(i)
                .take_while(|e| e.kv().map_or(0, KeyValue::mod_revision) == revision)
                .collect();
            i += group.len().max(1);
            let puts: Vec<KeyValue> = group
                .iter()
                .filter(|e| e.event_type() == EventType::Put)
                .filter_map(|e| e.kv().cloned())
                .collect();
            let metas = self.metas(&puts);
            if let Some(last) = puts.last() {
                self.fingerprint = Some(Fingerprint::of(last));
            }
            for e in &group {
                if self.halted() {
                    // told to stop: nothing more is applied (the stream ends on it)
                    return;
                }
                let Some(kv) = e.kv() else { continue };
                let key = String::from_utf8_lossy(kv.key()).into_owned();
                let kind = self.config.tenant.classify(&key);
                if e.event_type() == EventType::Put {
                    self.odd_key(&key, kind);
                }
                let KeyKind::Flow(flow) = kind else {
                    continue;
                };
                match e.event_type() {
                    EventType::Put => {
                        let meta = metas.get(flow).map(|(_, m)| m.clone());
                        let put = Put {
                            key: &key,
                            flow,
                            value: kv.value(),
                            revision: revision_of(revision),
                        };
                        self.accept(client, &put, meta, false).await;
                    }
                    EventType::Delete => self.retire(flow, revision_of(revision), true),
                }
            }
            self.applied(revision_of(revision));
        }
    }

    fn reject(&mut self, flow: &str, revision: u64, diagnostics: Diagnostics) {
        let diagnostics = Arc::new(diagnostics);
        let kept = self.registry.active(flow).map(|f| f.version().clone());
        self.seen.insert(flow.to_owned(), revision);
        self.lock().rejections.insert(
            flow.to_owned(),
            Rejection {
                flow: flow.to_owned(),
                revision,
                diagnostics: Arc::clone(&diagnostics),
            },
        );
        metrics::counter!("flowc_rejects_total", "flow" => self.labels.of(flow)).increment(1);
        let first = diagnostics
            .iter()
            .next()
            .map(|d| format!("{} ({})", d.message(), d.code()))
            .unwrap_or_default();
        tracing::warn!(
            tenant = self.config.tenant.tenant(),
            flow,
            revision,
            errors = diagnostics.error_count(),
            "rejected: {first}"
        );
        self.emit(&WatchEvent::Reject {
            flow: flow.to_owned(),
            revision,
            diagnostics,
            kept,
        });
    }

    /// Compiles and publishes a flow key's content; refuses it when it does not compile
    /// or names another flow. `full`: from a full read, where a flow without an active
    /// version whose content is refused falls back to its newest accepted history entry.
    async fn accept(
        &mut self,
        client: &mut Client,
        put: &Put<'_>,
        meta: Option<FlowMeta>,
        full: bool,
    ) {
        let Put {
            key,
            flow,
            value,
            revision,
        } = *put;
        if self.seen.get(flow) == Some(&revision) {
            return;
        }
        let refused = match self.registry.compile(key, value) {
            Err(d) => Err(d),
            Ok(compiled) => {
                let mismatch = if check_flow_id(flow).is_err() {
                    Some(EtcdError::FlowKey {
                        key: key.to_owned(),
                    })
                } else if compiled.id() != flow {
                    Some(EtcdError::KeyMismatch {
                        key: key.to_owned(),
                        expected: flow.to_owned(),
                        found: compiled.id().to_owned(),
                    })
                } else {
                    None
                };
                match mismatch {
                    Some(e) => {
                        let mut d = Diagnostics::new();
                        d.add(&compiled.flow().file, e);
                        Err(d)
                    }
                    None => Ok(compiled),
                }
            }
        };
        match refused {
            Ok(compiled) => self.take(client, put, compiled, meta, !full).await,
            Err(d) => {
                if full && self.registry.active(flow).is_none() && check_flow_id(flow).is_ok() {
                    self.fall_back(client, flow, revision).await;
                }
                self.reject(flow, revision, d);
            }
        }
    }

    /// Makes the newest accepted history entry of `flow` before `revision` active (a new
    /// watcher finding refused content in the flow's key, with nothing active).
    async fn fall_back(&mut self, client: &mut Client, flow: &str, revision: u64) {
        let timeout = self.config.connection.request_timeout;
        let history =
            match tokio::time::timeout(timeout, read_history(client, &self.config.tenant, flow))
                .await
                .unwrap_or_else(|_| Err(timeout_error("read", timeout)))
            {
                Ok(h) => {
                    for (_, e) in &h.corrupt {
                        self.warn(format!("history of `{flow}`: skipped: {e}"));
                    }
                    h.entries
                }
                Err(e) => {
                    return self.warn(format!(
                        "history of `{flow}` (to fall back to its last accepted version): {e}"
                    ));
                }
            };
        for e in history.iter().rev() {
            let Some(source) = &e.source else { continue };
            if e.record.revision >= revision {
                continue;
            }
            let Ok(compiled) = self.registry.compile(&e.record.name, source.as_bytes()) else {
                continue;
            };
            if compiled.id() != flow || compiled.version().hash != e.record.hash {
                continue;
            }
            let file = Arc::clone(&compiled.flow().file);
            match self.registry.publish_compiled_with(
                compiled,
                Some(e.record.revision),
                &e.record.meta,
            ) {
                Ok(version) => {
                    tracing::info!(
                        tenant = self.config.tenant.tenant(),
                        flow,
                        revision = version.revision,
                        "the flow's key holds refused content: its last accepted version from the history is active"
                    );
                    self.published(&version, None);
                    self.snapshot_put(&version, &file);
                    return;
                }
                Err(err) => {
                    self.warn(format!(
                        "history of `{flow}` at revision {}: {err}",
                        e.record.revision
                    ));
                }
            }
        }
    }

    /// Publishes accepted content (the same content under a new revision too: the
    /// active revision is the key's current one) and makes sure it has a history entry.
    async fn take(
        &mut self,
        client: &mut Client,
        put: &Put<'_>,
        compiled: crate::compile::CompiledFlow,
        meta: Option<FlowMeta>,
        live: bool,
    ) {
        let Put {
            flow,
            value,
            revision,
            ..
        } = *put;
        let file = Arc::clone(&compiled.flow().file);
        let meta = meta.filter(|m| m.hash == compiled.version().hash);
        let version_meta = meta.as_ref().map(|m| m.meta.clone()).unwrap_or_default();
        let hash = compiled.version().hash.clone();
        let unchanged = self
            .registry
            .active(flow)
            .is_some_and(|a| a.version().hash == hash && a.version().revision == revision);
        let version = if unchanged {
            None
        } else {
            match self
                .registry
                .publish_compiled_with(compiled, Some(revision), &version_meta)
            {
                Ok(v) => Some(v),
                Err(e) => {
                    let mut d = Diagnostics::new();
                    d.add(&file, e);
                    return self.reject(flow, revision, d);
                }
            }
        };
        self.seen.insert(flow.to_owned(), revision);
        self.lock().rejections.remove(flow);
        if let Some(version) = &version {
            self.published(version, meta.as_ref().filter(|_| live));
            // kept in the snapshot at once: the history write below waits on etcd, and
            // a watcher stopped meanwhile served a version its snapshot did not hold
            // (CI: a restart from the snapshot found it empty)
            self.snapshot_put(version, &file);
        }
        // every accepted version has its history entry: a publisher wrote it in its
        // transaction; for a flow put by hand the first watcher writes it
        if meta.as_ref().is_none_or(|m| m.history.is_none()) {
            let entry = HistoryEntry::new(
                &NewVersion {
                    flow,
                    hash: &hash,
                    name: file.name(),
                    source: value,
                    meta: version_meta,
                },
                revision,
                meta.map(|m| m.published_at_micros),
            );
            let timeout = self.config.connection.request_timeout;
            let written =
                tokio::time::timeout(timeout, put_history(client, &self.config.tenant, &entry))
                    .await
                    .unwrap_or_else(|_| Err(timeout_error("write", timeout)));
            match written {
                Ok(_) => {}
                Err(e) if e.is_permission_denied() => {
                    if !self.history_denied {
                        self.history_denied = true;
                        self.warn(format!(
                            "history of `{flow}` at revision {revision}: {e}; history entries for flows put by hand need write access to `{}history/`, which this watcher's user lacks: it writes none (this warning does not repeat)",
                            self.config.tenant.base()
                        ));
                    }
                }
                Err(e) => {
                    self.warn(format!("history of `{flow}` at revision {revision}: {e}"));
                }
            }
        }
    }

    /// Keeps an accepted version in the snapshot.
    fn snapshot_put(&mut self, version: &VersionId, file: &crate::span::SourceFile) {
        if let Some(s) = &mut self.snapshot {
            let kept = s.put(&SnapshotFlow {
                flow: version.flow.clone(),
                revision: version.revision,
                hash: version.hash.clone(),
                name: file.name().to_owned(),
                source: file.text().to_owned(),
            });
            if let Err(e) = kept {
                self.warn(e.to_string());
            }
        }
    }

    /// Reports a swap: metrics, log, event. `meta`: the publisher's record of a version
    /// received live by the watch stream (not by a full read at start or after a
    /// compaction, whose age is no propagation); a publisher's clock ahead of ours gives
    /// no latency.
    fn published(&mut self, version: &VersionId, meta: Option<&FlowMeta>) {
        let latency = meta.and_then(|m| {
            now_micros()
                .checked_sub(m.published_at_micros)
                .map(Duration::from_micros)
        });
        metrics::counter!("flowc_publishes_total", "flow" => self.labels.of(&version.flow))
            .increment(1);
        if let Some(l) = latency {
            metrics::histogram!("flowc_propagation_seconds").record(l.as_secs_f64());
        }
        self.gauges(version);
        tracing::info!(
            tenant = self.config.tenant.tenant(),
            flow = version.flow.as_str(),
            revision = version.revision,
            hash = version.hash.as_str(),
            "published"
        );
        self.emit(&WatchEvent::Publish {
            version: version.clone(),
            latency,
        });
    }

    /// Sets the gauges of `version`'s flow, when it has a label of its own.
    #[expect(
        clippy::cast_precision_loss,
        reason = "gauges are f64; revisions and counts stay far below 2^52"
    )]
    fn gauges(&mut self, version: &VersionId) {
        if self.labels.of(&version.flow) != version.flow {
            return;
        }
        metrics::gauge!("flowc_active_revision", "flow" => version.flow.clone())
            .set(version.revision as f64);
        metrics::gauge!("flowc_live_versions", "flow" => version.flow.clone())
            .set(self.registry.versions(&version.flow).len() as f64);
    }

    fn retire(&mut self, flow: &str, revision: u64, exact: bool) {
        self.seen.remove(flow);
        self.lock().rejections.remove(flow);
        if self.registry.active(flow).is_none() {
            return;
        }
        if let Err(e) = self.registry.retire(flow) {
            self.warn(e.to_string());
            return;
        }
        // the exporter cannot remove a series: 0 means no active version (retired)
        if self.labels.has_own(flow) {
            metrics::gauge!("flowc_active_revision", "flow" => flow.to_owned()).set(0.0);
        }
        tracing::info!(
            tenant = self.config.tenant.tenant(),
            flow,
            revision,
            exact,
            "retired"
        );
        self.emit(&WatchEvent::Retire {
            flow: flow.to_owned(),
            revision,
            exact,
        });
        if let Some(s) = &mut self.snapshot {
            s.remove(flow);
        }
    }
}

/// The `flow` label of flows beyond [`Limits::MAX_METRIC_FLOWS`] and of keys that name
/// no flow, in the per-flow counters.
pub const OTHER_FLOWS: &str = "(other)";

/// The `flow` label values the watcher's metrics carry: a valid flow id is its own label
/// while fewer than [`Limits::MAX_METRIC_FLOWS`] flows have one; any other key under
/// `flows/` (junk the watcher rejects) and flows beyond the bound share [`OTHER_FLOWS`]
/// in the counters, and have no gauges (a gauge of several flows means nothing). Each
/// label is registered at 0 in both per-flow counters when first given, so that a rate
/// has its zero.
#[derive(Debug, Default)]
struct FlowLabels {
    own: BTreeSet<String>,
    other: bool,
}

impl FlowLabels {
    /// The label of `flow`'s counters (given now if it has none yet).
    fn of(&mut self, flow: &str) -> String {
        if self.own.contains(flow) {
            return flow.to_owned();
        }
        let label = if check_flow_id(flow).is_ok() && self.own.len() < Limits::MAX_METRIC_FLOWS {
            self.own.insert(flow.to_owned());
            flow
        } else if std::mem::replace(&mut self.other, true) {
            return OTHER_FLOWS.to_owned();
        } else {
            OTHER_FLOWS
        };
        for name in ["flowc_publishes_total", "flowc_rejects_total"] {
            metrics::counter!(name, "flow" => label.to_owned()).increment(0);
        }
        label.to_owned()
    }

    /// Whether `flow` has a label of its own (and so gauges).
    fn has_own(&self, flow: &str) -> bool {
        self.own.contains(flow)
    }
}

/// Waits while paused; false when told to stop.
async fn wait_running(control: &mut signal::Receiver<Control>) -> bool {
    loop {
        let now = *control.borrow_and_update();
        match now {
            Control::Run => return true,
            Control::Stop => return false,
            Control::Pause => {
                if control.changed().await.is_err() {
                    return false;
                }
            }
        }
    }
}

/// Resolves when told to stop (true) or pause (false: the loop waits at its top).
async fn stopped(control: &mut signal::Receiver<Control>) -> bool {
    loop {
        if control.changed().await.is_err() {
            return true;
        }
        match *control.borrow_and_update() {
            Control::Stop => return true,
            Control::Pause => return false,
            Control::Run => {}
        }
    }
}
