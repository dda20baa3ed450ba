//! The etcd source (feature `etcd`): publish, roll back and audit flows in etcd, and
//! watch a tenant's flows into a [`Registry`](crate::registry::Registry) on every
//! engine of a fleet ([`watch`]).
//!
//! The key layout, the connection options and the version store are in
//! [`crate::store::etcd`]. In short: `<prefix>/<tenant>/flows/<flow-id>` holds the YAML;
//! a version's revision is that key's `mod_revision`; `history/<flow-id>/...` keeps
//! every accepted version's content.
//!
//! **Publishing** ([`publish`], [`rollback`]) compiles first and refuses a flow with
//! errors; the write is one transaction that compares the key's mod revision with the
//! one the caller expects (or the one read just before), so a concurrent edit is refused,
//! never overwritten. The same transaction writes `flowmeta/<flow-id>` (author, message,
//! the publisher's wall-clock time), which watchers read at the same revision, and the
//! version's history entry, so no version is ever active without one. When the answer
//! to the transaction is lost (a connection broke after the request may have reached
//! etcd), the publisher reads back whether its entry exists before it reports anything
//! ([`EtcdError::OutcomeUnknown`] only when etcd cannot be asked).
//!
//! Everything here is asynchronous (tokio); nothing prints: watch events go to a
//! callback, metrics to the `metrics` facade, logs to `tracing`.

mod snapshot;
mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use etcd_client::{Client, Compare, CompareOp, DeleteOptions, Txn, TxnOp, TxnOpResponse};
use serde::{Deserialize, Serialize};

use crate::compile::{self, CompiledFlow, Options, VersionId};
use crate::diagnostic::Diagnostics;
use crate::diff::{self, FlowDiff};
use crate::store::etcd::{
    HistoryEntry, REQUEST_LIMIT_BYTES, Tenant, etcd_error, read_entry_at, read_history,
};
use crate::store::{NewVersion, StoreError, VersionMeta};

pub use crate::store::etcd::{
    Connection, DEFAULT_PREFIX, EtcdStore, Follow, Opened, SetupError, SetupFault,
};
pub use snapshot::Snapshot;
pub use watch::{
    EtcdWatch, Rejection, ResyncReason, SnapshotOutcome, WatchConfig, WatchEvent, watch,
};

/// What a publisher writes to `flowmeta/<flow-id>` in its transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowMeta {
    /// The content hash published.
    pub hash: String,
    /// Who, when (seconds), why.
    #[serde(flatten)]
    pub meta: VersionMeta,
    /// The publisher's wall-clock time, in microseconds since the Unix epoch.
    pub published_at_micros: u64,
    /// The key of the history entry written in the same transaction (absent from what
    /// releases that wrote the entry afterwards wrote: watchers then write one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<String>,
}

/// Errors of the etcd source.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum EtcdError {
    /// The key changed since the revision the publisher expected.
    #[error(
        "`{flow}` was changed concurrently: expected revision {expected}, {}",
        found_text(*.found, *.deleted)
    )]
    #[diagnostic(
        code("flowc::source::etcd-conflict"),
        help(
            "nothing was written; look at `flowc history {flow}`, merge the change, then publish again with `--expect-revision {found}`"
        )
    )]
    Conflict {
        /// The flow.
        flow: String,
        /// The mod revision expected (0: the key did not exist).
        expected: u64,
        /// The mod revision etcd has (0: the key does not exist).
        found: u64,
        /// When the key does not exist: the revision it was deleted at, when its history
        /// and etcd's retained revisions tell ([`deletion_before`]).
        deleted: Option<u64>,
    },
    /// A rollback to a revision the flow's history does not have (or no longer holds the
    /// source of).
    #[error("flow `{flow}` has no stored version at revision {revision}")]
    #[diagnostic(code("flowc::source::etcd-unknown-revision"), help("{help}"))]
    UnknownRevision {
        /// The flow.
        flow: String,
        /// The revision asked for.
        revision: u64,
        /// The revisions that can be rolled back to.
        help: String,
    },
    /// A rollback to the revision at which the flow's key was deleted (`flowc history`
    /// lists it as a deletion): a deletion has no content.
    #[error(
        "flow `{flow}` was deleted at revision {revision}: a deletion holds no version to roll back to"
    )]
    #[diagnostic(
        code("flowc::source::etcd-deleted-revision"),
        help("roll back to a version instead: {help}")
    )]
    DeletedRevision {
        /// The flow.
        flow: String,
        /// The deletion's revision.
        revision: u64,
        /// The revisions that can be rolled back to.
        help: String,
    },
    /// A rollback to a revision whose history entry is corrupt (`flowc history` lists it
    /// as a corrupt entry at that revision).
    #[error(
        "flow `{flow}`'s stored entry at revision {revision} is corrupt: key `{key}`: {reason}"
    )]
    #[diagnostic(
        code("flowc::source::etcd-corrupt-revision"),
        help(
            "its value is no entry flowc writes (put by hand), so it holds no content to roll back to; {help}; `etcdctl del {key}` removes it"
        )
    )]
    CorruptRevision {
        /// The flow.
        flow: String,
        /// The revision asked for (the corrupt key's revision, as `history` lists it).
        revision: u64,
        /// The corrupt key.
        key: String,
        /// What is wrong with its value.
        reason: String,
        /// The revisions that can be rolled back to.
        help: String,
    },
    /// A key under `flows/` that cannot name a flow.
    #[error("key `{key}` does not name a flow")]
    #[diagnostic(
        code("flowc::source::etcd-flow-key"),
        help(
            "flow keys are `<prefix>/<tenant>/flows/<flow-id>`, the id matching `^[a-z][a-z0-9-]{{0,62}}$`"
        )
    )]
    FlowKey {
        /// The key.
        key: String,
    },
    /// The YAML under `flows/<a>` defines flow `<b>`.
    #[error("key `{key}` holds flow `{found}`, not `{expected}`")]
    #[diagnostic(
        code("flowc::source::etcd-key-mismatch"),
        help("put a flow under the key named by its id: `flowc publish` does")
    )]
    KeyMismatch {
        /// The key.
        key: String,
        /// The id the key names.
        expected: String,
        /// The id in the YAML.
        found: String,
    },
    /// The snapshot directory cannot be read or written, or belongs to another tenant.
    #[error("snapshot `{path}`: {message}")]
    #[diagnostic(
        code("flowc::source::etcd-snapshot"),
        help("give each tenant its own snapshot directory, writable by the watcher")
    )]
    Snapshot {
        /// The file or directory.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A write whose answer was lost (the connection broke or no answer came after the
    /// request may have reached etcd), and etcd could not be asked afterwards whether it
    /// was applied.
    #[error("the outcome of writing `{flow}` is unknown: {cause}; reading it back failed: {check}")]
    #[diagnostic(
        code("flowc::source::etcd-outcome-unknown"),
        help(
            "etcd may have applied the write: `flowc history {flow}` shows whether it did; publishing again with `--expect-revision {expected}` is safe (it is refused if the first write landed)"
        )
    )]
    OutcomeUnknown {
        /// The flow.
        flow: String,
        /// The mod revision the write expected.
        expected: u64,
        /// Why the write's answer was lost.
        cause: String,
        /// Why reading it back failed.
        check: String,
    },
    /// A flow too large for one etcd request: a publish writes its YAML twice (the flow
    /// key and its history entry) in one transaction.
    #[error(
        "flow `{flow}` is {size} bytes: its publish writes it twice (the flow key and its history entry) with its record, {request} bytes in one request, {why}"
    )]
    #[diagnostic(
        code("flowc::source::etcd-too-large"),
        help(
            "nothing was written; keep a flow under about {half} bytes (split it into smaller flows, or move long texts out of it; a long `--message` counts too); etcd's limit is its `--max-request-bytes` ({limit} bytes by default)"
        )
    )]
    TooLarge {
        /// The flow.
        flow: String,
        /// The YAML's size.
        size: u64,
        /// The transaction's size.
        request: u64,
        /// etcd's limit.
        limit: u64,
        /// About half the limit: the largest flow that fits.
        half: u64,
        /// Whose limit refused it: the default one, checked before writing, or etcd's own
        /// (an etcd started with a smaller `--max-request-bytes`).
        why: String,
    },
    /// etcd refuses the connection as configured (TLS files, user, endpoint scheme):
    /// trying again never helps, so a watcher stops with this error
    /// ([`EtcdWatch::finished`]) instead of retrying.
    #[error("etcd cannot be used as configured ({}): {message}", fault.as_str())]
    #[diagnostic(code("flowc::source::etcd-setup"), help("{help}"))]
    Setup {
        /// What kind of setup error.
        fault: SetupFault,
        /// What is wrong, naming the file, user or endpoint at fault.
        message: String,
        /// How to fix it.
        help: String,
    },
    /// etcd or the history failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
}

/// What etcd has for a conflicting key: its revision, or that it was deleted (the
/// wording of [`deletion_before`]'s callers: `was deleted at
/// revision N`).
fn found_text(found: u64, deleted: Option<u64>) -> String {
    match (found, deleted) {
        (0, Some(at)) => format!("but the flow was deleted at revision {at}"),
        (0, None) => {
            "but etcd has no key for the flow (it was deleted, or never published)".to_owned()
        }
        (r, _) => format!("etcd has revision {r}"),
    }
}

/// Why a publish was refused.
#[derive(Debug)]
pub enum PublishError {
    /// The flow has errors (every diagnostic, as `flowc check` reports them).
    Invalid(Diagnostics),
    /// etcd refused or failed (a conflict among them).
    Etcd(EtcdError),
}

impl From<SetupError> for EtcdError {
    fn from(e: SetupError) -> Self {
        let SetupError {
            fault,
            message,
            help,
        } = e;
        EtcdError::Setup {
            fault,
            message,
            help,
        }
    }
}

impl From<EtcdError> for PublishError {
    fn from(e: EtcdError) -> Self {
        PublishError::Etcd(e)
    }
}

impl From<StoreError> for PublishError {
    fn from(e: StoreError) -> Self {
        PublishError::Etcd(EtcdError::Store(e))
    }
}

/// A publish to make.
#[derive(Clone, Debug)]
pub struct PublishRequest<'a> {
    /// The source's display name (a file name).
    pub name: &'a str,
    /// The YAML.
    pub source: &'a [u8],
    /// The mod revision the key must have (0: must not exist); `None`: the one read just
    /// before the write.
    pub expect_revision: Option<u64>,
    /// Who (at most [`crate::limits::Limits::MAX_AUTHOR_BYTES`]).
    pub author: Option<String>,
    /// Why (a ticket id; at most [`crate::limits::Limits::MAX_MESSAGE_BYTES`]).
    pub message: Option<String>,
}

/// A publish that etcd took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// The new version (its revision is the key's new mod revision).
    pub version: VersionId,
    /// The key's mod revision before (0: the flow is new).
    pub previous: u64,
}

/// Microseconds since the Unix epoch.
#[must_use]
pub fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn revision_of(r: i64) -> u64 {
    u64::try_from(r).unwrap_or(0)
}

/// Compiles `request.source` with `options` and, when it has no errors, writes it to its
/// flow's key in one transaction that compares the key's mod revision (see the module
/// docs), then writes its history entry.
///
/// # Errors
/// [`PublishError::Invalid`] with every diagnostic; [`EtcdError::Conflict`] naming both
/// revisions when the key changed; etcd's errors.
pub async fn publish(
    client: &mut Client,
    tenant: &Tenant,
    options: &Options,
    request: &PublishRequest<'_>,
) -> Result<Published, PublishError> {
    let file = crate::load::source_from_bytes(request.name, request.source.to_vec())
        .map_err(PublishError::Invalid)?;
    let compiled = compile::compile(&file, options).map_err(PublishError::Invalid)?;
    write(client, tenant, &compiled, request).await
}

/// How often a write whose outcome was unknown and that turned out not to have been
/// applied is sent again (it is a compare-and-swap: sending it again is safe).
const WRITE_ATTEMPTS: usize = 3;

/// How often a read is tried when etcd cannot be reached (a client balancing over
/// several endpoints sends the next try to another).
const READ_ATTEMPTS: u32 = 3;

/// Runs a read, again (after 50 ms, then 100 ms) while etcd cannot be reached.
async fn read_retrying<T, F>(mut read: F) -> Result<T, StoreError>
where
    F: AsyncFnMut() -> Result<T, StoreError>,
{
    let mut tries = 1;
    loop {
        match read().await {
            Err(e) if e.is_unreachable() && tries < READ_ATTEMPTS => {
                tokio::time::sleep(std::time::Duration::from_millis(50 * u64::from(tries))).await;
                tries += 1;
            }
            other => return other,
        }
    }
}

/// The mod revision of `key` (0: it does not exist).
async fn mod_revision(client: &mut Client, key: &str) -> Result<u64, StoreError> {
    read_retrying(async || {
        let got = client
            .get(key, None)
            .await
            .map_err(|e| etcd_error("read", &e))?;
        Ok(got
            .kvs()
            .first()
            .map_or(0, |kv| revision_of(kv.mod_revision())))
    })
    .await
}

/// The revision of our history entry, if our transaction was applied.
async fn landed(
    client: &mut Client,
    history_key: &str,
    hash: &str,
) -> Result<Option<u64>, StoreError> {
    let entry = read_retrying(async || read_entry_at(client, history_key).await).await?;
    Ok(entry
        .filter(|e| e.record.hash == hash)
        .map(|e| e.record.revision))
}

/// What a transaction did.
enum Outcome {
    Written(u64),
    Conflict(u64),
}

/// Runs the publish transaction `txn` (flow key, metadata and history entry, on the
/// key's mod revision `expected`). When its answer is lost, etcd is asked what happened:
/// our history entry exists (the transaction was applied: its revision), the key moved
/// on without it (a conflict), or the key is unchanged (not applied: sent again while
/// etcd cannot be reached, up to [`WRITE_ATTEMPTS`] times). Only a write known not to
/// have been applied is reported as failed.
async fn commit(
    client: &mut Client,
    flow: &str,
    key: &str,
    expected: u64,
    (history_key, hash): (&str, &str),
    txn: impl Fn() -> Txn,
) -> Result<Outcome, EtcdError> {
    let mut attempt = 1;
    loop {
        let lost = match client.txn(txn()).await {
            Ok(got) if got.succeeded() => {
                return Ok(Outcome::Written(
                    got.header().map_or(0, |h| revision_of(h.revision())),
                ));
            }
            Ok(got) => {
                // after a lost answer, the compare fails when the first try was applied
                if attempt > 1
                    && let Some(revision) = landed(client, history_key, hash).await?
                {
                    return Ok(Outcome::Written(revision));
                }
                let found = got
                    .op_responses()
                    .into_iter()
                    .find_map(|r| match r {
                        TxnOpResponse::Get(g) => {
                            g.kvs().first().map(|kv| revision_of(kv.mod_revision()))
                        }
                        _ => None,
                    })
                    .unwrap_or(0);
                return Ok(Outcome::Conflict(found));
            }
            Err(e) => etcd_error("write", &e),
        };
        let unknown = |check: &StoreError| EtcdError::OutcomeUnknown {
            flow: flow.to_owned(),
            expected,
            cause: lost.to_string(),
            check: check.to_string(),
        };
        tracing::warn!(
            flow,
            "the answer to a write was lost ({lost}): reading it back"
        );
        match landed(client, history_key, hash).await {
            Ok(Some(revision)) => return Ok(Outcome::Written(revision)),
            Ok(None) => {}
            Err(check) => return Err(unknown(&check)),
        }
        let now = match mod_revision(client, key).await {
            Ok(r) => r,
            Err(check) => return Err(unknown(&check)),
        };
        if now != expected {
            return Ok(Outcome::Conflict(now));
        }
        // known not applied
        if !lost.is_unreachable() || attempt >= WRITE_ATTEMPTS {
            return Err(lost.into());
        }
        attempt += 1;
    }
}

/// The conflict of a write to `flow` that expected revision `expected` and found
/// `found`; a key that no longer exists is said to be deleted, at the revision
/// [`deletion_before`] finds (unknown when etcd cannot tell or cannot be asked: the
/// write was refused either way).
async fn conflict(
    client: &mut Client,
    tenant: &Tenant,
    flow: &str,
    expected: u64,
    found: u64,
) -> EtcdError {
    let deleted = if found == 0 {
        match etcd_now(client, &tenant.flow_key(flow)).await {
            Ok(now) => deletion_before(client, tenant, flow, now)
                .await
                .ok()
                .flatten(),
            Err(_) => None,
        }
    } else {
        None
    };
    EtcdError::Conflict {
        flow: flow.to_owned(),
        expected,
        found,
        deleted,
    }
}

/// etcd's current revision (read with `key`, keys only).
async fn etcd_now(client: &mut Client, key: &str) -> Result<u64, StoreError> {
    Ok(client
        .get(key, Some(etcd_client::GetOptions::new().with_keys_only()))
        .await
        .map_err(|e| etcd_error("read", &e))?
        .header()
        .map_or(0, |h| revision_of(h.revision())))
}

/// Whose limit refused a too-large publish: etcd's own (started with a smaller
/// `--max-request-bytes`) or the default one, checked before writing.
fn refused_by(etcd: bool) -> String {
    if etcd {
        format!(
            "which this etcd refused as too large (its `--max-request-bytes` is below the default {REQUEST_LIMIT_BYTES})"
        )
    } else {
        format!("over etcd's default limit of {REQUEST_LIMIT_BYTES} bytes")
    }
}

async fn write(
    client: &mut Client,
    tenant: &Tenant,
    compiled: &CompiledFlow,
    request: &PublishRequest<'_>,
) -> Result<Published, PublishError> {
    let flow = compiled.id().to_owned();
    let hash = compiled.version().hash.clone();
    let key = tenant.flow_key(&flow);
    let expected = match request.expect_revision {
        Some(r) => r,
        None => mod_revision(client, &key).await?,
    };
    let published_at = now_micros();
    let meta = VersionMeta {
        time: Some(published_at / 1_000_000),
        author: request.author.clone(),
        message: request.message.clone(),
    };
    let history_key = tenant.publish_history_key(&flow, expected, published_at, &hash);
    // revision 0: the entry's revision is its key's create revision (see the store)
    let entry = HistoryEntry::new(
        &NewVersion {
            flow: &flow,
            hash: &hash,
            name: compiled.flow().file.name(),
            source: request.source,
            meta: meta.clone(),
        },
        0,
        Some(published_at),
    );
    let flow_meta = FlowMeta {
        hash: hash.clone(),
        meta,
        published_at_micros: published_at,
        history: Some(history_key.clone()),
    };
    let encode = |path: String, e: &serde_json::Error| StoreError::Corrupt {
        path,
        reason: e.to_string(),
    };
    let meta_json =
        serde_json::to_vec(&flow_meta).map_err(|e| encode(tenant.meta_key(&flow), &e))?;
    let entry_json = serde_json::to_vec(&entry).map_err(|e| encode(history_key.clone(), &e))?;
    let request_bytes = (key.len()
        + tenant.meta_key(&flow).len()
        + history_key.len()
        + request.source.len()
        + meta_json.len()
        + entry_json.len()) as u64;
    let too_large = |by_etcd: bool| EtcdError::TooLarge {
        flow: flow.clone(),
        size: request.source.len() as u64,
        request: request_bytes,
        limit: REQUEST_LIMIT_BYTES,
        half: REQUEST_LIMIT_BYTES / 2 - 4096,
        why: refused_by(by_etcd),
    };
    if request_bytes > REQUEST_LIMIT_BYTES {
        return Err(too_large(false).into());
    }
    let txn = || {
        Txn::new()
            .when([Compare::mod_revision(
                key.as_str(),
                CompareOp::Equal,
                crate::store::etcd::etcd_revision(expected),
            )])
            .and_then([
                TxnOp::put(key.as_str(), request.source.to_vec(), None),
                TxnOp::put(tenant.meta_key(&flow), meta_json.clone(), None),
                TxnOp::put(history_key.as_str(), entry_json.clone(), None),
            ])
            .or_else([TxnOp::get(key.as_str(), None)])
    };
    let outcome = match commit(client, &flow, &key, expected, (&history_key, &hash), txn).await {
        // an etcd started with a smaller `--max-request-bytes` than the default
        Err(EtcdError::Store(StoreError::Etcd { message, .. }))
            if message.contains("request is too large") || message.contains("larger than max") =>
        {
            return Err(too_large(true).into());
        }
        other => other?,
    };
    match outcome {
        Outcome::Written(revision) => Ok(Published {
            version: VersionId {
                flow,
                revision,
                hash,
            },
            previous: expected,
        }),
        Outcome::Conflict(found) => Err(conflict(client, tenant, &flow, expected, found)
            .await
            .into()),
    }
}

/// A rollback to make.
#[derive(Clone, Debug)]
pub struct RollbackRequest<'a> {
    /// The flow.
    pub flow: &'a str,
    /// The revision whose content to write again.
    pub to: u64,
    /// As [`PublishRequest::expect_revision`].
    pub expect_revision: Option<u64>,
    /// Who.
    pub author: Option<String>,
    /// Why (default `rollback to revision N`).
    pub message: Option<String>,
}

/// What a rollback did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RolledBack {
    /// The content was written as a new revision.
    Written(Published),
    /// The flow's key already holds that content (the same content hash): nothing was
    /// written. Its current version.
    Unchanged(VersionId),
}

impl RolledBack {
    /// The new revision, when one was written.
    #[must_use]
    pub fn written(self) -> Option<Published> {
        match self {
            RolledBack::Written(p) => Some(p),
            RolledBack::Unchanged(_) => None,
        }
    }
}

/// Writes the content of revision `to` of `flow` as a new revision (the same content
/// hash), the same way as [`publish`]. The message defaults to `rollback to revision N`.
/// When the flow's key already holds that content (and `expect_revision`, when given, is
/// its revision), nothing is written ([`RolledBack::Unchanged`]).
///
/// # Errors
/// [`EtcdError::UnknownRevision`] when the history has no source at `to`;
/// [`EtcdError::CorruptRevision`] when its key at `to` is corrupt; as [`publish`].
pub async fn rollback(
    client: &mut Client,
    tenant: &Tenant,
    options: &Options,
    request: RollbackRequest<'_>,
) -> Result<RolledBack, PublishError> {
    let RollbackRequest {
        flow,
        to,
        expect_revision,
        author,
        message,
    } = request;
    let read = read_history(client, tenant, flow).await?;
    let history = read.entries;
    let Some((entry, source)) = history
        .iter()
        .find(|e| e.record.revision == to)
        .and_then(|e| Some((e, e.source.as_ref()?)))
    else {
        let available: Vec<String> = history
            .iter()
            .filter(|e| e.source.is_some())
            .map(|e| e.record.revision.to_string())
            .collect();
        let help = if available.is_empty() {
            format!("flow `{flow}` has no stored versions in this tenant")
        } else {
            format!("stored revisions: {}", available.join(", "))
        };
        // the revision `history` lists a corrupt key at
        if let Some((_, StoreError::CorruptKey { key, reason })) =
            read.corrupt.into_iter().find(|(r, _)| *r == to)
        {
            return Err(EtcdError::CorruptRevision {
                flow: flow.to_owned(),
                revision: to,
                key,
                reason,
                help,
            }
            .into());
        }
        // the revision `history` lists the key's deletion at
        let now = etcd_now(client, &tenant.flow_key(flow)).await?;
        if to <= now && deletion_before(client, tenant, flow, (to + 1).min(now)).await? == Some(to)
        {
            return Err(EtcdError::DeletedRevision {
                flow: flow.to_owned(),
                revision: to,
                help,
            }
            .into());
        }
        return Err(EtcdError::UnknownRevision {
            flow: flow.to_owned(),
            revision: to,
            help,
        }
        .into());
    };
    if let Some(now) = current_key(client, tenant, options, flow).await?
        && now.hash.as_deref() == Some(entry.record.hash.as_str())
        && expect_revision.is_none_or(|r| r == now.revision)
    {
        return Ok(RolledBack::Unchanged(VersionId {
            flow: flow.to_owned(),
            revision: now.revision,
            hash: entry.record.hash.clone(),
        }));
    }
    let message = message.unwrap_or_else(|| format!("rollback to revision {to}"));
    publish(
        client,
        tenant,
        options,
        &PublishRequest {
            name: &entry.record.name,
            source: source.as_bytes(),
            expect_revision,
            author,
            message: Some(message),
        },
    )
    .await
    .map(RolledBack::Written)
}

/// One entry of a flow's history: an accepted version, a deletion of the flow's key, or
/// a corrupt history key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HistoryItem {
    /// The revision: a version's, the deletion's, or a corrupt key's mod revision (what
    /// `rollback --to` takes, and reports as corrupt for a corrupt key).
    pub revision: u64,
    /// The content hash (`None` for a deletion or a corrupt key).
    pub hash: Option<String>,
    /// Who published it.
    pub author: Option<String>,
    /// Why.
    pub message: Option<String>,
    /// When (seconds since the Unix epoch).
    pub time: Option<u64>,
    /// What changed since the previous version (`None` for the first, for a deletion or a
    /// corrupt key, or when either source was pruned or no longer compiles).
    pub diff: Option<FlowDiff>,
    /// What the entry is.
    pub event: HistoryEvent,
}

impl HistoryItem {
    /// The corrupt key, when the entry is one.
    #[must_use]
    pub fn corrupt(&self) -> Option<&CorruptEntry> {
        match &self.event {
            HistoryEvent::Corrupt(c) => Some(c),
            _ => None,
        }
    }

    fn empty(revision: u64, event: HistoryEvent) -> Self {
        Self {
            revision,
            hash: None,
            author: None,
            message: None,
            time: None,
            diff: None,
            event,
        }
    }
}

/// What a [`HistoryItem`] is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HistoryEvent {
    /// An accepted version (its history entry).
    Version,
    /// The flow's key was deleted at the item's revision (watchers retired the flow).
    /// Found by reading the key's past revisions, so only within etcd's retention: a
    /// deletion before the last compaction is not listed.
    Deleted,
    /// The flow's key no longer exists, and its deletion (after its last version, at or
    /// before the item's revision: the revision `history` read at) is no longer in
    /// etcd's retained revisions (compacted), so its own revision is unknown. Listed
    /// last, in place of a [`HistoryEvent::Deleted`] entry.
    Gone,
    /// A history key whose value is no entry flowc writes, skipped.
    Corrupt(CorruptEntry),
}

/// A corrupt history key (see [`HistoryEvent::Corrupt`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CorruptEntry {
    /// The key.
    pub key: String,
    /// What is wrong with its value.
    pub reason: String,
}

/// Reads per transaction of [`created_at`]: etcd's default `--max-txn-ops`.
const READS_PER_TXN: usize = 128;

/// The flow key at each of `revisions`, in one transaction of keys-only reads: its
/// create revision, `None` where it did not exist.
async fn created_in_txn(
    client: &mut Client,
    key: &str,
    revisions: &[u64],
) -> Result<Vec<Option<u64>>, etcd_client::Error> {
    let reads: Vec<TxnOp> = revisions
        .iter()
        .map(|&r| {
            let options = etcd_client::GetOptions::new()
                .with_keys_only()
                .with_revision(crate::store::etcd::etcd_revision(r));
            TxnOp::get(key, Some(options))
        })
        .collect();
    let got = client.txn(Txn::new().and_then(reads)).await?;
    Ok(got
        .op_responses()
        .into_iter()
        .map(|r| match r {
            TxnOpResponse::Get(g) => g.kvs().first().map(|kv| revision_of(kv.create_revision())),
            _ => None,
        })
        .collect())
}

/// The flow key at each of `revisions` (ascending): its create revision, `Some(None)`
/// when it did not exist, `None` when etcd compacted that revision. One round trip per
/// [`READS_PER_TXN`] revisions: etcd refuses a transaction as a whole when it compacted
/// one of its revisions, and compaction removes every revision below one, so the
/// compacted ones come first; the first one kept is then found by bisection.
async fn created_at(
    client: &mut Client,
    key: &str,
    revisions: &[u64],
) -> Result<Vec<Option<Option<u64>>>, StoreError> {
    let compacted = |e: &etcd_client::Error| {
        e.to_string()
            .contains("required revision has been compacted")
    };
    let mut out = Vec::with_capacity(revisions.len());
    let mut rest = revisions;
    while !rest.is_empty() {
        let (chunk, _) = rest.split_at(rest.len().min(READS_PER_TXN));
        match created_in_txn(client, key, chunk).await {
            Ok(got) => {
                out.extend(got.into_iter().map(Some));
                rest = rest.get(chunk.len()..).unwrap_or_default();
            }
            Err(e) if compacted(&e) => {
                // INVARIANT: chunk[..lo] compacted, chunk[hi..] kept (the first at least
                // was compacted when the transaction was refused)
                let (mut lo, mut hi) = (1, chunk.len());
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    match created_in_txn(client, key, chunk.get(mid..=mid).unwrap_or_default())
                        .await
                    {
                        Ok(_) => hi = mid,
                        Err(e) if compacted(&e) => lo = mid + 1,
                        Err(e) => return Err(etcd_error("read", &e)),
                    }
                }
                out.extend(std::iter::repeat_n(None, lo));
                rest = rest.get(lo..).unwrap_or_default();
            }
            Err(e) => return Err(etcd_error("read", &e)),
        }
    }
    Ok(out)
}

/// For each `(after, before)` span: the revision at which the incarnation of the flow
/// key that existed at `after` was deleted, when that happened before `before` (a
/// revision where the key is known to be absent or younger than `after`); `None` when
/// it was not, or when etcd compacted the revisions that tell. The ends of every span
/// are read at once ([`created_at`]); then each round reads up to [`READS_PER_TXN`]
/// revisions spread over the spans still open, so a deletion among n revisions is found
/// in about log₁₂₉(n) rounds.
async fn deletions_between(
    client: &mut Client,
    key: &str,
    spans: &[(u64, u64)],
) -> Result<Vec<Option<u64>>, StoreError> {
    // what the key was at `r`, seen from `after`: gone (absent or younger), None when
    // compacted
    let gone =
        |created: Option<Option<u64>>, after: u64| created.map(|c| c.is_none_or(|c| c > after));
    let ends: BTreeSet<u64> = spans.iter().flat_map(|&(a, b)| [a, b]).collect();
    let ends: Vec<u64> = ends.into_iter().collect();
    let read: BTreeMap<u64, Option<Option<u64>>> = ends
        .iter()
        .copied()
        .zip(created_at(client, key, &ends).await?)
        .collect();
    let at = |r: u64| read.get(&r).copied().flatten();
    let mut found: Vec<Option<u64>> = vec![None; spans.len()];
    // INVARIANT: alive at `lo`, gone at `hi`; an incarnation once deleted never returns
    let mut open: Vec<(usize, u64, u64, u64)> = spans
        .iter()
        .enumerate()
        .filter(|&(_, &(after, before))| {
            after < before
                && gone(at(before), after) == Some(true)
                && gone(at(after), after) == Some(false)
        })
        .map(|(i, &(after, before))| (i, after, after, before))
        .collect();
    while !open.is_empty() {
        let share = (READS_PER_TXN / open.len()).max(1);
        let probes: Vec<Vec<u64>> = open
            .iter()
            .map(|&(_, _, lo, hi)| {
                let gap = hi - lo;
                let k = (gap - 1).min(u64::try_from(share).unwrap_or(u64::MAX));
                let step = gap / (k + 1);
                (1..=k).map(|j| lo + step * j).collect()
            })
            .collect();
        let all: BTreeSet<u64> = probes.iter().flatten().copied().collect();
        let all: Vec<u64> = all.into_iter().collect();
        let seen: BTreeMap<u64, Option<Option<u64>>> = all
            .iter()
            .copied()
            .zip(created_at(client, key, &all).await?)
            .collect();
        let mut next = Vec::with_capacity(open.len());
        for (&(i, after, mut lo, mut hi), probes) in open.iter().zip(&probes) {
            let mut compacted = false;
            for &p in probes {
                match gone(seen.get(&p).copied().flatten(), after) {
                    Some(false) => lo = p,
                    Some(true) => {
                        hi = p;
                        break;
                    }
                    None => {
                        compacted = true;
                        break;
                    }
                }
            }
            if compacted {
                continue;
            }
            if hi - lo > 1 {
                next.push((i, after, lo, hi));
            } else if let Some(slot) = found.get_mut(i) {
                *slot = Some(hi);
            }
        }
        open = next;
    }
    Ok(found)
}

/// The revision at which `flow`'s key was last deleted before `revision`, after its
/// newest version before `revision` (`None`: it was not, it never had a version, or etcd
/// compacted the revisions that tell). A publish or rollback that found no key (previous
/// revision 0) says with it whether the flow was deleted or is new.
///
/// # Errors
/// etcd's errors.
pub async fn deletion_before(
    client: &mut Client,
    tenant: &Tenant,
    flow: &str,
    revision: u64,
) -> Result<Option<u64>, EtcdError> {
    let read = read_history(client, tenant, flow).await?;
    let Some(after) = read
        .entries
        .iter()
        .map(|e| e.record.revision)
        .filter(|&r| r < revision)
        .max()
    else {
        return Ok(None);
    };
    let found = deletions_between(client, &tenant.flow_key(flow), &[(after, revision)]).await?;
    Ok(found.into_iter().next().flatten())
}

/// Every entry of `flow`'s history, oldest first: each accepted version with the semantic
/// diff from the version before, each deletion of the flow's key that etcd still has
/// the revisions of ([`HistoryEvent::Deleted`]) and each corrupt history key.
///
/// # Errors
/// etcd's errors.
pub async fn history(
    client: &mut Client,
    tenant: &Tenant,
    options: &Options,
    flow: &str,
) -> Result<Vec<HistoryItem>, EtcdError> {
    let read = read_history(client, tenant, flow).await?;
    let entries = read.entries;
    let mut out = Vec::with_capacity(entries.len() + read.corrupt.len());
    let mut previous: Option<Arc<CompiledFlow>> = None;
    for (i, e) in entries.iter().enumerate() {
        let compiled = e.source.as_ref().and_then(|s| {
            let file =
                crate::load::source_from_bytes(&e.record.name, s.as_bytes().to_vec()).ok()?;
            compile::compile(&file, options).ok().map(Arc::new)
        });
        let diff = match (&previous, &compiled) {
            (Some(old), Some(new)) if i > 0 => Some(diff::diff(old.flow(), new.flow())),
            _ => None,
        };
        out.push(HistoryItem {
            revision: e.record.revision,
            hash: Some(e.record.hash.clone()),
            author: e.record.meta.author.clone(),
            message: e.record.meta.message.clone(),
            time: e.record.meta.time,
            diff,
            event: HistoryEvent::Version,
        });
        previous = compiled;
    }
    // deletions: between two versions, and after the last one
    let key = tenant.flow_key(flow);
    let now = etcd_now(client, &key).await?;
    let revisions: Vec<u64> = entries.iter().map(|e| e.record.revision).collect();
    let spans: Vec<(u64, u64)> = revisions
        .iter()
        .enumerate()
        .map(|(i, &after)| (after, revisions.get(i + 1).copied().unwrap_or(now)))
        .filter(|&(after, before)| before > after)
        .collect();
    let found = deletions_between(client, &key, &spans).await?;
    let mut deleted_last = false;
    for (&(after, _), at) in spans.iter().zip(found) {
        if let Some(at) = at {
            out.push(HistoryItem::empty(at, HistoryEvent::Deleted));
            deleted_last = revisions.last() == Some(&after);
        }
    }
    // the key is gone, and the revisions that tell when were compacted
    if !revisions.is_empty()
        && !deleted_last
        && created_at(client, &key, &[now]).await?.first() == Some(&Some(None))
    {
        out.push(HistoryItem::empty(now, HistoryEvent::Gone));
    }
    for (revision, e) in read.corrupt {
        let (key, reason) = match e {
            StoreError::CorruptKey { key, reason } => (key, reason),
            other => (String::new(), other.to_string()),
        };
        out.push(HistoryItem::empty(
            revision,
            HistoryEvent::Corrupt(CorruptEntry { key, reason }),
        ));
    }
    out.sort_by_key(|i| i.revision);
    Ok(out)
}

/// A flow's key as it is now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurrentKey {
    /// Its mod revision.
    pub revision: u64,
    /// The content hash of its YAML (`None` when it does not compile, as for a broken
    /// flow put by hand).
    pub hash: Option<String>,
}

/// A flow's key: its mod revision and content hash (`None`: the key does not exist, the
/// flow was deleted or never published).
///
/// # Errors
/// etcd's errors.
pub async fn current_key(
    client: &mut Client,
    tenant: &Tenant,
    options: &Options,
    flow: &str,
) -> Result<Option<CurrentKey>, EtcdError> {
    let key = tenant.flow_key(flow);
    let got = client
        .get(key.as_str(), None)
        .await
        .map_err(|e| etcd_error("read", &e))?;
    Ok(got.kvs().first().map(|kv| {
        let hash = crate::load::source_from_bytes(&key, kv.value().to_vec())
            .ok()
            .and_then(|file| compile::compile(&file, options).ok())
            .map(|c| c.version().hash.clone());
        CurrentKey {
            revision: revision_of(kv.mod_revision()),
            hash,
        }
    }))
}

/// Deletes a flow's key (watchers retire it) in a transaction on its mod revision, as
/// [`publish`]. Its history stays.
///
/// # Errors
/// [`EtcdError::Conflict`]; etcd's errors.
pub async fn delete(
    client: &mut Client,
    tenant: &Tenant,
    flow: &str,
    expect_revision: u64,
) -> Result<u64, EtcdError> {
    let key = tenant.flow_key(flow);
    let txn = Txn::new()
        .when([Compare::mod_revision(
            key.as_str(),
            CompareOp::Equal,
            crate::store::etcd::etcd_revision(expect_revision),
        )])
        .and_then([
            TxnOp::delete(key.as_str(), None::<DeleteOptions>),
            TxnOp::delete(tenant.meta_key(flow), None::<DeleteOptions>),
        ])
        .or_else([TxnOp::get(key.as_str(), None)]);
    let got = client.txn(txn).await.map_err(|e| etcd_error("write", &e))?;
    if !got.succeeded() {
        let found = got
            .op_responses()
            .into_iter()
            .find_map(|r| match r {
                TxnOpResponse::Get(g) => g.kvs().first().map(|kv| revision_of(kv.mod_revision())),
                _ => None,
            })
            .unwrap_or(0);
        return Err(conflict(client, tenant, flow, expect_revision, found).await);
    }
    Ok(got.header().map_or(0, |h| revision_of(h.revision())))
}
