//! The etcd version store (feature `etcd`): the key layout of a tenant, the connection
//! options (as etcdctl has them) and [`EtcdStore`], the second [`VersionStore`].
//!
//! Keys under `<prefix>/<tenant>/` ([`Tenant`]):
//!
//! ```text
//! flows/<flow-id>                  the flow's YAML (what watchers compile and publish)
//! flowmeta/<flow-id>               who published it, when, why: written by `publish` in
//!                                  the same transaction as the flow, so at the same revision
//! history/<flow-id>/<revision>     one entry per accepted version (20-digit revision):
//!                                  its record and its source (until pruned)
//! holds/<flow-id>/<hash>/<holder>  one hold
//! ```
//!
//! A version's revision is the `mod_revision` of its `flows/` key, so every process of a
//! fleet names it the same way. History entries are created once (a transaction that
//! writes only when the key does not exist): the publisher writes one right after its
//! transaction and every watcher writes one when it accepts the version, so the entry
//! exists even when the flow was put by hand, and a saved instance can be restored by
//! its content hash in any process after etcd compacted the flow key's old revisions.
//!
//! etcd's client is asynchronous; the trait is not. [`EtcdStore`] runs its requests on a
//! runtime of its own (one worker thread), so its methods can be called from any thread,
//! inside another runtime's task or not, and block only the caller.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, Identity,
    TlsOptions, Txn, TxnOp, TxnOpResponse,
};
use serde::{Deserialize, Serialize};

use super::{
    Hold, Keep, NewVersion, StoreError, StoredVersion, VersionRecord, VersionStore, check_flow_id,
    check_hash, check_holder, check_new, check_revision,
};
use crate::compile::{VersionId, stable_hash};
use crate::limits::Limits;

/// The format of history entries and holds this release writes and reads.
pub const FORMAT: u32 = 1;

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "/flowc";

/// How to reach etcd: endpoints, TLS files and user, as etcdctl takes them.
#[derive(Clone, Debug)]
pub struct Connection {
    /// `http://host:port` or `https://host:port` (TLS), one or more.
    pub endpoints: Vec<String>,
    /// The CA certificate (PEM) that signed the servers' certificates.
    pub cacert: Option<PathBuf>,
    /// The client certificate (PEM), with [`Connection::key`].
    pub cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    pub key: Option<PathBuf>,
    /// `user` and `password`.
    pub user: Option<(String, String)>,
    /// Longest wait for a connection.
    pub connect_timeout: Duration,
    /// Longest wait for one request (not for a watch).
    pub request_timeout: Duration,
}

impl Connection {
    /// A connection to `endpoints` without TLS files or user, with 2 s connect and 5 s
    /// request timeouts.
    #[must_use]
    pub fn new(endpoints: Vec<String>) -> Self {
        Self {
            endpoints,
            cacert: None,
            cert: None,
            key: None,
            user: None,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
        }
    }

    /// A client. Connecting is lazy: an unreachable server shows on the first request.
    ///
    /// # Errors
    /// [`StoreError::Etcd`] for unreadable TLS files, bad endpoints, a refused user.
    pub async fn connect(&self) -> Result<Client, StoreError> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(self.connect_timeout)
            .with_timeout(self.request_timeout)
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(3));
        if self.cacert.is_some() || self.cert.is_some() || self.key.is_some() {
            let mut tls = TlsOptions::new();
            if let Some(ca) = &self.cacert {
                tls = tls.ca_certificate(Certificate::from_pem(read_pem(ca)?));
            }
            match (&self.cert, &self.key) {
                (Some(cert), Some(key)) => {
                    tls = tls.identity(Identity::from_pem(read_pem(cert)?, read_pem(key)?));
                }
                (None, None) => {}
                _ => {
                    return Err(StoreError::Etcd {
                        operation: "connect",
                        message: "a client certificate needs both --cert and --key".to_owned(),
                    });
                }
            }
            options = options.with_tls(tls);
        }
        if let Some((user, password)) = &self.user {
            options = options.with_user(user, password);
        }
        let connect = Client::connect(&self.endpoints, Some(options));
        match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(client) => client.map_err(|e| etcd_error("connect", &e)),
            Err(_) => Err(timeout_error("connect", self.connect_timeout)),
        }
    }
}

fn read_pem(path: &std::path::Path) -> Result<Vec<u8>, StoreError> {
    std::fs::read(path).map_err(|e| StoreError::Etcd {
        operation: "connect",
        message: format!("cannot read `{}`: {e}", path.display()),
    })
}

/// An etcd client error with its whole cause chain (a TLS failure says which
/// certificate check failed, not only "transport error").
#[must_use]
pub fn etcd_error(operation: &'static str, e: &etcd_client::Error) -> StoreError {
    StoreError::Etcd {
        operation,
        message: error_chain(e),
    }
}

/// A timeout as a store error.
#[must_use]
pub fn timeout_error(operation: &'static str, after: Duration) -> StoreError {
    StoreError::Etcd {
        operation,
        message: format!("no answer within {} ms", after.as_millis()),
    }
}

/// `e` and its sources, `: `-separated, each once.
#[must_use]
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// One tenant's keys: `<prefix>/<tenant>/...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    base: String,
    prefix: String,
    name: String,
}

impl Tenant {
    /// The keys of `tenant` under `prefix` (`/flowc` by default; a trailing `/` is
    /// dropped).
    ///
    /// # Errors
    /// [`StoreError::InvalidKey`] for a prefix that does not start with `/` or holds
    /// control characters, or a tenant that is not 1 to 63 letters, digits, `-`, `_`, `.`.
    pub fn new(prefix: &str, tenant: &str) -> Result<Self, StoreError> {
        let prefix = prefix.trim_end_matches('/');
        if !prefix.starts_with('/') && !prefix.is_empty() || prefix.chars().any(char::is_control) {
            return Err(StoreError::InvalidKey {
                what: "prefix",
                value: super::cut(prefix),
                reason: "not an absolute key prefix",
                help: "a prefix starts with `/`, as `/flowc`",
            });
        }
        let ok = !tenant.is_empty()
            && tenant.len() <= 63
            && tenant
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && tenant != "."
            && tenant != "..";
        if !ok {
            return Err(StoreError::InvalidKey {
                what: "tenant",
                value: super::cut(tenant),
                reason: "not a tenant name",
                help: "a tenant is 1 to 63 ASCII letters, digits, `-`, `_` or `.`, and not `.` or `..`",
            });
        }
        Ok(Self {
            base: format!("{prefix}/{tenant}/"),
            prefix: prefix.to_owned(),
            name: tenant.to_owned(),
        })
    }

    /// The prefix (without a trailing `/`).
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The tenant.
    #[must_use]
    pub fn tenant(&self) -> &str {
        &self.name
    }

    /// `<prefix>/<tenant>/`: every key of the tenant starts with it.
    #[must_use]
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `<prefix>/<tenant>/flows/<flow>`.
    #[must_use]
    pub fn flow_key(&self, flow: &str) -> String {
        format!("{}flows/{flow}", self.base)
    }

    /// `<prefix>/<tenant>/flowmeta/<flow>`.
    #[must_use]
    pub fn meta_key(&self, flow: &str) -> String {
        format!("{}flowmeta/{flow}", self.base)
    }

    /// `<prefix>/<tenant>/history/<flow>/<revision, 20 digits>`.
    #[must_use]
    pub fn history_key(&self, flow: &str, revision: u64) -> String {
        format!("{}history/{flow}/{revision:020}", self.base)
    }

    /// `<prefix>/<tenant>/history/<flow>/`.
    #[must_use]
    pub fn history_prefix(&self, flow: &str) -> String {
        format!("{}history/{flow}/", self.base)
    }

    fn hold_prefix(&self) -> String {
        format!("{}holds/", self.base)
    }

    fn hold_key(&self, flow: &str, hash: &str, holder: &str) -> String {
        format!("{}holds/{flow}/{hash}/{holder}", self.base)
    }

    /// The key range `[start, end)` a watcher reads and watches: the `flowmeta/` and
    /// `flows/` keys and nothing else of the tenant (`flowmeta/` < `flows/` < `flows0`).
    #[must_use]
    pub fn watch_range(&self) -> (String, String) {
        (
            format!("{}flowmeta/", self.base),
            format!("{}flows0", self.base),
        )
    }

    /// What a key of [`Tenant::watch_range`] is: a flow or its metadata, by flow id as
    /// written in the key (not checked), or another key.
    #[must_use]
    pub fn classify<'k>(&self, key: &'k str) -> KeyKind<'k> {
        let Some(rest) = key.strip_prefix(self.base.as_str()) else {
            return KeyKind::Other;
        };
        if let Some(flow) = rest.strip_prefix("flows/") {
            KeyKind::Flow(flow)
        } else if let Some(flow) = rest.strip_prefix("flowmeta/") {
            KeyKind::Meta(flow)
        } else {
            KeyKind::Other
        }
    }
}

/// What a tenant key is (see [`Tenant::classify`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind<'k> {
    /// `flows/<id>`.
    Flow(&'k str),
    /// `flowmeta/<id>`.
    Meta(&'k str),
    /// Anything else.
    Other,
}

/// A history entry as stored under `history/<flow>/<revision>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// [`FORMAT`].
    pub format: u32,
    /// The record.
    #[serde(flatten)]
    pub record: VersionRecord,
    /// The publisher's wall-clock time of the write, in microseconds since the Unix
    /// epoch (watchers measure publish-to-swap latency from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at_micros: Option<u64>,
    /// The source text (`None` once pruned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl HistoryEntry {
    /// The entry of `version` under `revision`, with its source.
    #[must_use]
    pub fn new(version: &NewVersion<'_>, revision: u64, published_at_micros: Option<u64>) -> Self {
        Self {
            format: FORMAT,
            record: VersionRecord {
                flow: version.flow.to_owned(),
                revision,
                hash: version.hash.to_owned(),
                name: version.name.to_owned(),
                size: version.source.len() as u64,
                checksum: checksum(version.source),
                compiler: env!("CARGO_PKG_VERSION").to_owned(),
                meta: version.meta.clone(),
                stored: true,
            },
            published_at_micros,
            source: Some(String::from_utf8_lossy(version.source).into_owned()),
        }
    }

    fn parse(key: &str, bytes: &[u8]) -> Result<Self, StoreError> {
        if bytes.len() as u64 > Limits::MAX_STORED_SOURCE_BYTES + Limits::MAX_STORE_RECORD_BYTES {
            return Err(corrupt(key, "larger than any entry flowc writes"));
        }
        let mut entry: Self =
            serde_json::from_slice(bytes).map_err(|e| corrupt(key, e.to_string()))?;
        if entry.format != FORMAT {
            return Err(StoreError::Format {
                path: key.to_owned(),
                found: entry.format.to_string(),
                expected: FORMAT,
            });
        }
        if let Some(source) = &entry.source
            && (source.len() as u64 != entry.record.size
                || checksum(source.as_bytes()) != entry.record.checksum)
        {
            return Err(corrupt(
                key,
                format!(
                    "its source has {} bytes with checksum {}; its record says {} bytes with checksum {}",
                    source.len(),
                    checksum(source.as_bytes()),
                    entry.record.size,
                    entry.record.checksum
                ),
            ));
        }
        entry.record.stored = entry.source.is_some();
        Ok(entry)
    }
}

fn checksum(bytes: &[u8]) -> String {
    format!("{:016x}", stable_hash(&[bytes]))
}

fn corrupt(key: &str, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        path: key.to_owned(),
        reason: reason.into(),
    }
}

fn to_json<T: Serialize>(key: &str, value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| corrupt(key, e.to_string()))
}

/// A revision as etcd names it.
#[must_use]
pub fn etcd_revision(revision: u64) -> i64 {
    i64::try_from(revision).unwrap_or(i64::MAX)
}

/// Every history entry of a flow, by revision.
///
/// # Errors
/// etcd's errors; a corrupt entry.
pub async fn read_history(
    client: &mut Client,
    tenant: &Tenant,
    flow: &str,
) -> Result<Vec<HistoryEntry>, StoreError> {
    Ok(read_history_at(client, tenant, flow)
        .await?
        .into_iter()
        .map(|(e, _)| e)
        .collect())
}

/// Every history entry of a flow with its key's mod revision, by revision.
async fn read_history_at(
    client: &mut Client,
    tenant: &Tenant,
    flow: &str,
) -> Result<Vec<(HistoryEntry, i64)>, StoreError> {
    check_flow_id(flow)?;
    let prefix = tenant.history_prefix(flow);
    let got = client
        .get(prefix.as_str(), Some(GetOptions::new().with_prefix()))
        .await
        .map_err(|e| etcd_error("read", &e))?;
    let mut out = Vec::with_capacity(got.kvs().len());
    for kv in got.kvs() {
        let key = String::from_utf8_lossy(kv.key());
        let entry = HistoryEntry::parse(&key, kv.value())?;
        if entry.record.flow != flow || key.strip_prefix(prefix.as_str()).is_none() {
            return Err(corrupt(&key, "names another flow"));
        }
        out.push((entry, kv.mod_revision()));
    }
    out.sort_by_key(|(e, _)| e.record.revision);
    Ok(out)
}

/// Writes `entry` under its revision unless an entry is there already; returns the entry
/// that is there afterwards.
///
/// # Errors
/// [`StoreError::RevisionTaken`] when the revision names other content; etcd's errors.
pub async fn put_history(
    client: &mut Client,
    tenant: &Tenant,
    entry: &HistoryEntry,
) -> Result<HistoryEntry, StoreError> {
    let record = &entry.record;
    let key = tenant.history_key(&record.flow, record.revision);
    let txn = Txn::new()
        .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
        .and_then([TxnOp::put(key.as_str(), to_json(&key, entry)?, None)])
        .or_else([TxnOp::get(key.as_str(), None)]);
    let got = client.txn(txn).await.map_err(|e| etcd_error("write", &e))?;
    if got.succeeded() {
        return Ok(entry.clone());
    }
    let existing = got
        .op_responses()
        .into_iter()
        .find_map(|r| match r {
            TxnOpResponse::Get(g) => g.kvs().first().map(|kv| kv.value().to_vec()),
            _ => None,
        })
        .ok_or_else(|| corrupt(&key, "deleted while written"))?;
    let existing = HistoryEntry::parse(&key, &existing)?;
    if existing.record.hash != record.hash {
        return Err(StoreError::RevisionTaken {
            flow: record.flow.clone(),
            revision: record.revision,
            existing: existing.record.hash,
            hash: record.hash.clone(),
        });
    }
    Ok(existing)
}

/// The etcd version store of one tenant (see the module docs).
pub struct EtcdStore {
    client: Client,
    tenant: Tenant,
    timeout: Duration,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("tenant", &self.tenant)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Drop for EtcdStore {
    fn drop(&mut self) {
        // a runtime dropped inside another runtime's task would panic: let it go instead
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl EtcdStore {
    /// A store on `connection` for `tenant`.
    ///
    /// # Errors
    /// [`StoreError::Etcd`] when the runtime cannot start or the connection options are
    /// refused (unreadable TLS files, bad endpoints).
    pub fn open(connection: &Connection, tenant: Tenant) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("flowc-etcd-store")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Etcd {
                operation: "start",
                message: e.to_string(),
            })?;
        let conn = connection.clone();
        let client = block(&runtime, async move { conn.connect().await })??;
        Ok(Self {
            client,
            tenant,
            timeout: connection.request_timeout,
            runtime: Some(runtime),
        })
    }

    /// The tenant.
    #[must_use]
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// Runs `f` with a client on the store's runtime, bounded by the request timeout.
    fn run<T, F, Fut>(&self, operation: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Client, Tenant) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let Some(rt) = &self.runtime else {
            return Err(StoreError::Etcd {
                operation,
                message: "the store is closed".to_owned(),
            });
        };
        let timeout = self.timeout;
        let fut = f(self.client.clone(), self.tenant.clone());
        block(rt, async move {
            match tokio::time::timeout(timeout, fut).await {
                Ok(r) => r,
                Err(_) => Err(timeout_error(operation, timeout)),
            }
        })?
    }
}

/// Runs `fut` on `rt` and waits for it on this thread (which may be another runtime's).
fn block<T: Send + 'static>(
    rt: &tokio::runtime::Runtime,
    fut: impl Future<Output = T> + Send + 'static,
) -> Result<T, StoreError> {
    let (tx, rx) = mpsc::sync_channel(1);
    rt.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv().map_err(|_| StoreError::Etcd {
        operation: "run",
        message: "the store's runtime stopped".to_owned(),
    })
}

fn hold_json(key: &str, hold: &Hold) -> Result<Vec<u8>, StoreError> {
    #[derive(Serialize)]
    struct HoldEntry<'a> {
        format: u32,
        #[serde(flatten)]
        hold: &'a Hold,
    }
    to_json(
        key,
        &HoldEntry {
            format: FORMAT,
            hold,
        },
    )
}

fn parse_hold(key: &str, bytes: &[u8]) -> Result<Hold, StoreError> {
    #[derive(Deserialize)]
    struct HoldEntry {
        format: u32,
        #[serde(flatten)]
        hold: Hold,
    }
    if bytes.len() as u64 > Limits::MAX_STORE_RECORD_BYTES {
        return Err(corrupt(key, "larger than any hold flowc writes"));
    }
    let entry: HoldEntry =
        serde_json::from_slice(bytes).map_err(|e| corrupt(key, e.to_string()))?;
    if entry.format != FORMAT {
        return Err(StoreError::Format {
            path: key.to_owned(),
            found: entry.format.to_string(),
            expected: FORMAT,
        });
    }
    Ok(entry.hold)
}

async fn holds_under(
    client: &mut Client,
    tenant: &Tenant,
    prefix: String,
) -> Result<Vec<Hold>, StoreError> {
    let got = client
        .get(prefix.as_str(), Some(GetOptions::new().with_prefix()))
        .await
        .map_err(|e| etcd_error("read", &e))?;
    let _ = tenant;
    let mut out = Vec::with_capacity(got.kvs().len());
    for kv in got.kvs() {
        out.push(parse_hold(&String::from_utf8_lossy(kv.key()), kv.value())?);
    }
    out.sort();
    Ok(out)
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl VersionStore for EtcdStore {
    fn put(&self, version: &NewVersion<'_>, revision: u64) -> Result<VersionRecord, StoreError> {
        check_new(version)?;
        check_revision(revision)?;
        let entry = HistoryEntry::new(version, revision, None);
        self.run("write", move |mut client, tenant| async move {
            Ok(put_history(&mut client, &tenant, &entry).await?.record)
        })
    }

    /// The earliest revision of the same content when the flow's history has it; else
    /// the content is written to the flow's key (a transaction on the mod revision just
    /// read, so a concurrent write is never overwritten) and its revision is the key's
    /// new mod revision, as a watcher names it.
    fn assign(&self, version: &NewVersion<'_>) -> Result<VersionRecord, StoreError> {
        check_new(version)?;
        let mut entry = HistoryEntry::new(version, 1, None);
        let flow = version.flow.to_owned();
        self.run("write", move |mut client, tenant| async move {
            let history = read_history(&mut client, &tenant, &flow).await?;
            if let Some(e) = history.iter().find(|e| e.record.hash == entry.record.hash) {
                return Ok(e.record.clone());
            }
            let key = tenant.flow_key(&flow);
            let current = client
                .get(key.as_str(), None)
                .await
                .map_err(|e| etcd_error("read", &e))?;
            let read = current
                .kvs()
                .first()
                .map_or(0, etcd_client::KeyValue::mod_revision);
            let source = entry.source.clone().unwrap_or_default();
            let txn = Txn::new()
                .when([Compare::mod_revision(key.as_str(), CompareOp::Equal, read)])
                .and_then([
                    TxnOp::put(key.as_str(), source, None),
                    TxnOp::delete(tenant.meta_key(&flow), None::<DeleteOptions>),
                ]);
            let got = client.txn(txn).await.map_err(|e| etcd_error("write", &e))?;
            if !got.succeeded() {
                return Err(StoreError::Etcd {
                    operation: "write",
                    message: format!(
                        "`{key}` changed after revision {read} while the version was written"
                    ),
                });
            }
            let revision = got
                .header()
                .and_then(|h| u64::try_from(h.revision()).ok())
                .ok_or_else(|| corrupt(&key, "no revision in the answer"))?;
            entry.record.revision = revision;
            Ok(put_history(&mut client, &tenant, &entry).await?.record)
        })
    }

    fn get(&self, flow: &str, hash: &str) -> Result<Option<StoredVersion>, StoreError> {
        check_flow_id(flow)?;
        check_hash(hash)?;
        let (flow, hash) = (flow.to_owned(), hash.to_owned());
        self.run("read", move |mut client, tenant| async move {
            let entries: Vec<HistoryEntry> = read_history(&mut client, &tenant, &flow)
                .await?
                .into_iter()
                .filter(|e| e.record.hash == hash)
                .collect();
            let (Some(first), Some(source)) = (
                entries.first(),
                entries.iter().find_map(|e| e.source.clone()),
            ) else {
                return Ok(None);
            };
            Ok(Some(StoredVersion {
                record: VersionRecord {
                    stored: true,
                    ..first.record.clone()
                },
                revisions: entries.iter().map(|e| e.record.revision).collect(),
                source: source.into_bytes(),
            }))
        })
    }

    fn list(&self, flow: &str) -> Result<Vec<VersionRecord>, StoreError> {
        check_flow_id(flow)?;
        let flow = flow.to_owned();
        self.run("read", move |mut client, tenant| async move {
            Ok(read_history(&mut client, &tenant, &flow)
                .await?
                .into_iter()
                .map(|e| e.record)
                .collect())
        })
    }

    fn flows(&self) -> Result<Vec<String>, StoreError> {
        self.run("list", move |mut client, tenant| async move {
            let prefix = format!("{}history/", tenant.base());
            let got = client
                .get(
                    prefix.as_str(),
                    Some(GetOptions::new().with_prefix().with_keys_only()),
                )
                .await
                .map_err(|e| etcd_error("list", &e))?;
            let mut flows: Vec<String> = got
                .kvs()
                .iter()
                .filter_map(|kv| {
                    let key = String::from_utf8_lossy(kv.key());
                    let rest = key.strip_prefix(prefix.as_str())?;
                    let flow = rest.split('/').next()?;
                    check_flow_id(flow).ok().map(|()| flow.to_owned())
                })
                .collect();
            flows.dedup();
            Ok(flows)
        })
    }

    fn hold(&self, version: &VersionId, holder: &str) -> Result<(), StoreError> {
        check_flow_id(&version.flow)?;
        check_hash(&version.hash)?;
        check_holder(holder)?;
        let hold = Hold {
            flow: version.flow.clone(),
            hash: version.hash.clone(),
            revision: version.revision,
            holder: holder.to_owned(),
            since: now_secs(),
        };
        let stored = self.get(&version.flow, &version.hash)?.is_some();
        if !stored {
            return Err(StoreError::NotStored {
                flow: version.flow.clone(),
                hash: version.hash.clone(),
            });
        }
        self.run("write", move |mut client, tenant| async move {
            let key = tenant.hold_key(&hold.flow, &hold.hash, &hold.holder);
            // holding twice is one hold: the first keeps its time
            let txn = Txn::new()
                .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(key.as_str(), hold_json(&key, &hold)?, None)]);
            client.txn(txn).await.map_err(|e| etcd_error("write", &e))?;
            Ok(())
        })
    }

    fn release(&self, version: &VersionId, holder: &str) -> Result<bool, StoreError> {
        check_flow_id(&version.flow)?;
        check_hash(&version.hash)?;
        check_holder(holder)?;
        let (flow, hash, holder) = (
            version.flow.clone(),
            version.hash.clone(),
            holder.to_owned(),
        );
        self.run("remove", move |mut client, tenant| async move {
            let key = tenant.hold_key(&flow, &hash, &holder);
            let got = client
                .delete(key.as_str(), None)
                .await
                .map_err(|e| etcd_error("remove", &e))?;
            Ok(got.deleted() > 0)
        })
    }

    fn held(&self) -> Result<Vec<Hold>, StoreError> {
        self.run("read", move |mut client, tenant| async move {
            let prefix = tenant.hold_prefix();
            holds_under(&mut client, &tenant, prefix).await
        })
    }

    fn holders(&self, flow: &str, hash: &str) -> Result<Vec<Hold>, StoreError> {
        check_flow_id(flow)?;
        check_hash(hash)?;
        let (flow, hash) = (flow.to_owned(), hash.to_owned());
        self.run("read", move |mut client, tenant| async move {
            let prefix = format!("{}{flow}/{hash}/", tenant.hold_prefix());
            holds_under(&mut client, &tenant, prefix).await
        })
    }

    /// Removes the source from every history entry of each pruned content (the entries
    /// stay, so revisions are never given to other content). Each entry is rewritten
    /// only if it did not change since it was read, and only while no hold exists on
    /// the content (checked in the same transaction).
    fn prune(&self, flow: &str, keep: &Keep) -> Result<Vec<VersionRecord>, StoreError> {
        check_flow_id(flow)?;
        let (flow, keep) = (flow.to_owned(), keep.clone());
        self.run("write", move |mut client, tenant| async move {
            let history = read_history_at(&mut client, &tenant, &flow).await?;
            let mut latest: Vec<&HistoryEntry> = Vec::new();
            for (e, _) in history.iter().rev() {
                if !latest.iter().any(|l| l.record.hash == e.record.hash) {
                    latest.push(e);
                }
            }
            let mut pruned = Vec::new();
            for e in latest.iter().skip(keep.newest) {
                let hash = &e.record.hash;
                if keep.hashes.contains(hash) {
                    continue;
                }
                let holds = format!("{}{flow}/{hash}/", tenant.hold_prefix());
                let holds_end = format!("{}{flow}/{hash}0", tenant.hold_prefix());
                let mut compares = vec![
                    Compare::create_revision(holds.as_str(), CompareOp::Equal, 0)
                        .with_range(holds_end.as_str()),
                ];
                let mut ops = Vec::new();
                for (same, at) in history
                    .iter()
                    .filter(|(x, _)| &x.record.hash == hash && x.source.is_some())
                {
                    let key = tenant.history_key(&flow, same.record.revision);
                    compares.push(Compare::mod_revision(key.as_str(), CompareOp::Equal, *at));
                    let emptied = HistoryEntry {
                        source: None,
                        ..same.clone()
                    };
                    ops.push(TxnOp::put(key.as_str(), to_json(&key, &emptied)?, None));
                }
                if ops.is_empty() {
                    continue;
                }
                let got = client
                    .txn(Txn::new().when(compares).and_then(ops))
                    .await
                    .map_err(|e| etcd_error("write", &e))?;
                if got.succeeded() {
                    let first = history
                        .iter()
                        .find(|(x, _)| &x.record.hash == hash)
                        .map_or_else(|| e.record.clone(), |(x, _)| x.record.clone());
                    pruned.push(VersionRecord {
                        stored: false,
                        ..first
                    });
                }
            }
            pruned.sort_by_key(|r| r.revision);
            Ok(pruned)
        })
    }
}
