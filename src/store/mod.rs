//! Stage 8a: durable version stores — where the source of every published flow version
//! lives, so that a saved instance can be restored in any process, after any restart.
//!
//! A store keeps, per flow id, the source of each distinct content (keyed by the content
//! hash of its [`VersionId`]), a record of the revision(s) it was published under, and
//! the holds hosts place on versions they still need (persisted instances). Retention
//! ([`VersionStore::prune`]) never deletes a held version.
//!
//! Who names a revision depends on where a version comes from: a source with its own
//! revisions (etcd's key revisions) passes it to [`VersionStore::put`]; the directory
//! source lets the store name it ([`VersionStore::assign`]): the same content keeps the
//! revision it first got, new content gets one more than the highest recorded. Either
//! way a fresh process rebuilt from the same store names every version as before.
//!
//! [`DirStore`] is the directory implementation.
//!
//! ```
//! use flowc::store::{DirStore, NewVersion, VersionMeta, VersionStore};
//! let root = std::env::temp_dir().join(format!("flowc-store-doc-{}", std::process::id()));
//! let store = DirStore::open(&root).unwrap();
//! let v = NewVersion {
//!     flow: "leave",
//!     hash: "0123456789abcdef",
//!     name: "leave.yaml",
//!     source: b"id: leave\n",
//!     meta: VersionMeta::default(),
//! };
//! assert_eq!(store.assign(&v).unwrap().revision, 1);
//! assert_eq!(store.assign(&v).unwrap().revision, 1); // the same content keeps its revision
//! let got = store.get("leave", "0123456789abcdef").unwrap().unwrap();
//! assert_eq!(got.source, b"id: leave\n");
//! # std::fs::remove_dir_all(&root).unwrap();
//! ```

mod dir;
#[cfg(feature = "etcd")]
pub mod etcd;

use serde::{Deserialize, Serialize};

use crate::compile::VersionId;
use crate::limits::Limits;

pub use dir::DirStore;
#[cfg(feature = "etcd")]
pub use etcd::EtcdStore;

/// Who published a version, when and why (all optional).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionMeta {
    /// Seconds since the Unix epoch.
    pub time: Option<u64>,
    /// Who published it (at most [`Limits::MAX_AUTHOR_BYTES`]).
    pub author: Option<String>,
    /// Why (at most [`Limits::MAX_MESSAGE_BYTES`]).
    pub message: Option<String>,
}

/// A version to store.
#[derive(Clone, Debug)]
pub struct NewVersion<'a> {
    /// The flow id (`^[a-z][a-z0-9-]{0,62}$`).
    pub flow: &'a str,
    /// The content hash of its [`VersionId`] (16 lowercase hex digits).
    pub hash: &'a str,
    /// The source file's display name (diagnostics of a later compile name it).
    pub name: &'a str,
    /// The source text, exactly as compiled.
    pub source: &'a [u8],
    /// Who, when, why.
    pub meta: VersionMeta,
}

/// One revision of a flow as the store records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionRecord {
    /// The flow id.
    pub flow: String,
    /// The revision (1, 2, ...).
    pub revision: u64,
    /// The content hash.
    pub hash: String,
    /// The source file's display name.
    pub name: String,
    /// Source size in bytes.
    pub size: u64,
    /// FNV-1a of the source bytes (16 hex digits): a read that does not match is refused.
    pub checksum: String,
    /// The flowc release that stored it (the content hash depends on it).
    pub compiler: String,
    /// Who, when, why.
    #[serde(flatten)]
    pub meta: VersionMeta,
    /// False once retention deleted its source (the record stays, so that the revision
    /// is never given to other content).
    #[serde(skip)]
    pub stored: bool,
}

impl VersionRecord {
    /// The record of `version` stored under `revision` (both stores write the same).
    #[must_use]
    pub fn new(version: &NewVersion<'_>, revision: u64) -> Self {
        Self {
            flow: version.flow.to_owned(),
            revision,
            hash: version.hash.to_owned(),
            name: version.name.to_owned(),
            size: version.source.len() as u64,
            checksum: checksum(version.source),
            compiler: env!("CARGO_PKG_VERSION").to_owned(),
            meta: version.meta.clone(),
            stored: true,
        }
    }
}

/// The checksum a record keeps of its source, checked on every read.
pub(crate) fn checksum(bytes: &[u8]) -> String {
    format!("{:016x}", crate::compile::stable_hash(&[bytes]))
}

impl VersionRecord {
    /// The version this record names.
    #[must_use]
    pub fn version(&self) -> VersionId {
        VersionId {
            flow: self.flow.clone(),
            revision: self.revision,
            hash: self.hash.clone(),
        }
    }
}

/// A stored version's source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredVersion {
    /// The earliest record of this content.
    pub record: VersionRecord,
    /// Every revision this content was recorded under, ascending (more than one when a
    /// source wrote the same content again, as an etcd rollback does).
    pub revisions: Vec<u64>,
    /// The source bytes (checked against the record's size and checksum).
    pub source: Vec<u8>,
}

/// A host's hold on a version: retention keeps it until released.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hold {
    /// The flow id.
    pub flow: String,
    /// The content hash held.
    pub hash: String,
    /// The revision the holder named when it took the hold.
    pub revision: u64,
    /// Who holds it (an instance id, a host name; at most [`Limits::MAX_HOLDER_BYTES`]).
    pub holder: String,
    /// When the hold was taken (seconds since the Unix epoch).
    pub since: u64,
}

/// What [`VersionStore::prune`] keeps besides held versions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Keep {
    /// The newest distinct contents of the flow (by their latest revision) to keep.
    pub newest: usize,
    /// Contents (hashes) to keep whatever their age: the active version, a canary, those
    /// live instances use.
    pub hashes: Vec<String>,
}

/// A durable store of flow versions (see the module docs).
///
/// Every method is safe to call from several threads and processes at once; what an
/// implementation guarantees beyond that is on the implementation.
pub trait VersionStore: Send + Sync + std::fmt::Debug {
    /// Stores `version` under the revision the caller names (a source with its own
    /// revisions, such as etcd's key revisions). Storing the same content under the same
    /// revision again changes nothing; the same content under another revision adds a
    /// record.
    ///
    /// # Errors
    /// [`StoreError::RevisionTaken`] when the revision names other content; invalid
    /// keys, sizes, I/O.
    fn put(&self, version: &NewVersion<'_>, revision: u64) -> Result<VersionRecord, StoreError>;

    /// Stores `version` under the revision the store's record gives it: the earliest
    /// revision of the same content if there is one, else one more than the flow's
    /// highest revision (1 for a new flow).
    ///
    /// # Errors
    /// Invalid keys, sizes, I/O, a corrupt record.
    fn assign(&self, version: &NewVersion<'_>) -> Result<VersionRecord, StoreError>;

    /// The source of one content of a flow (`None`: never stored, or pruned).
    ///
    /// # Errors
    /// Invalid keys, I/O, a corrupt record or a source that does not match its record.
    fn get(&self, flow: &str, hash: &str) -> Result<Option<StoredVersion>, StoreError>;

    /// Every record of a flow, by revision (pruned ones with `stored: false`).
    ///
    /// # Errors
    /// An invalid flow id, I/O, a corrupt record.
    fn list(&self, flow: &str) -> Result<Vec<VersionRecord>, StoreError>;

    /// The flow ids with records, sorted.
    ///
    /// # Errors
    /// I/O.
    fn flows(&self) -> Result<Vec<String>, StoreError>;

    /// `holder` holds `version` (its flow id and hash): retention keeps it until
    /// [`VersionStore::release`]. Holding twice is one hold.
    ///
    /// # Errors
    /// [`StoreError::NotStored`] when the content is not (or no longer) stored; invalid
    /// keys, I/O.
    fn hold(&self, version: &VersionId, holder: &str) -> Result<(), StoreError>;

    /// Ends `holder`'s hold on `version`; false when it held nothing.
    ///
    /// # Errors
    /// Invalid keys, I/O.
    fn release(&self, version: &VersionId, holder: &str) -> Result<bool, StoreError>;

    /// Every hold, sorted by flow, hash, holder.
    ///
    /// # Errors
    /// I/O, a corrupt hold.
    fn held(&self) -> Result<Vec<Hold>, StoreError>;

    /// The holds on one content of a flow, sorted by holder.
    ///
    /// # Errors
    /// Invalid keys, I/O, a corrupt hold.
    fn holders(&self, flow: &str, hash: &str) -> Result<Vec<Hold>, StoreError>;

    /// Deletes the source of every content of `flow` that is neither held, nor among the
    /// `keep.newest` newest, nor in `keep.hashes`; returns the records of what it deleted
    /// (the earliest revision of each). Records stay, so revisions are never reused.
    ///
    /// # Errors
    /// Invalid keys, I/O, a corrupt record or hold.
    fn prune(&self, flow: &str, keep: &Keep) -> Result<Vec<VersionRecord>, StoreError>;
}

/// Errors of version stores.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum StoreError {
    /// A file-system operation failed.
    #[error("cannot {operation} `{path}`: {message}")]
    #[diagnostic(
        code("flowc::store::io"),
        help("check that the store directory exists, is writable and is on a local file system")
    )]
    Io {
        /// What was being done (`read`, `write`, `create`, `list`, `remove`).
        operation: &'static str,
        /// The file or directory.
        path: String,
        /// The operating system's error.
        message: String,
    },
    /// A store file that cannot be what the store wrote (truncated, edited, another
    /// program's file).
    #[error("corrupt version store file `{path}`: {reason}")]
    #[diagnostic(
        code("flowc::store::corrupt"),
        help(
            "the store writes every file atomically, so this file was changed by something else; restore it from a backup or delete it (its version can then no longer be restored)"
        )
    )]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An etcd key whose value flowc never writes (a history entry or hold put by hand,
    /// truncated, another program's value).
    #[error("corrupt etcd key `{key}`: {reason}")]
    #[diagnostic(
        code("flowc::store::etcd-corrupt"),
        help(
            "flowc never writes such a value: delete the key with `etcdctl del {key}` (the flow's other versions stay; publish the flow again to give its current content a fresh entry)"
        )
    )]
    CorruptKey {
        /// The key.
        key: String,
        /// What is wrong with its value.
        reason: String,
    },
    /// The store was written in a format this release does not read.
    #[error("version store `{path}` has format {found}; this flowc reads format {expected}")]
    #[diagnostic(
        code("flowc::store::format"),
        help("use the flowc release that wrote the store, or a new store directory")
    )]
    Format {
        /// The format file.
        path: String,
        /// The format found.
        found: String,
        /// The format this release reads.
        expected: u32,
    },
    /// A flow id, hash, holder or revision that cannot name a stored version.
    #[error("invalid {what} `{value}`: {reason}")]
    #[diagnostic(code("flowc::store::invalid-key"), help("{help}"))]
    InvalidKey {
        /// `flow id`, `hash`, `holder` or `revision`.
        what: &'static str,
        /// The value given (cut by [`crate::diagnostic::excerpt`]).
        value: String,
        /// Why it is refused.
        reason: &'static str,
        /// What would be accepted.
        help: &'static str,
    },
    /// A source or a metadata field over its limit.
    #[error("{what} is {size} bytes; the limit is {limit}")]
    #[diagnostic(
        code("flowc::store::too-large"),
        help("flow sources are at most a few MiB; authors and messages are short texts")
    )]
    TooLarge {
        /// What is too large.
        what: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The revision already names other content of the flow.
    #[error("revision {revision} of flow `{flow}` already names content {existing}, not {hash}")]
    #[diagnostic(
        code("flowc::store::revision-taken"),
        help(
            "a revision names one content for ever: publish the new content under a new revision"
        )
    )]
    RevisionTaken {
        /// The flow.
        flow: String,
        /// The revision.
        revision: u64,
        /// The content that has it.
        existing: String,
        /// The content offered.
        hash: String,
    },
    /// etcd did not answer, refused the request or the connection options.
    #[error("etcd {operation} failed: {message}")]
    #[diagnostic(
        code("flowc::store::etcd"),
        help(
            "check the endpoints (`--etcd` or `FLOWC_ETCD`), that etcd runs, and the TLS files and user it expects"
        )
    )]
    Etcd {
        /// What was being done (`connect`, `read`, `write`, `list`, `remove`).
        operation: &'static str,
        /// etcd's (or the client's) error, with its causes.
        message: String,
    },
    /// etcd could not be reached: nothing listens at the endpoints, the connection broke,
    /// or no answer came in time.
    #[error("cannot reach etcd at {endpoints} ({operation}): {cause}")]
    #[diagnostic(
        code("flowc::store::etcd-unreachable"),
        help(
            "is etcd running at {endpoints}? check `--etcd` or `FLOWC_ETCD` (and `--cacert`, `--cert`, `--key` for https endpoints)"
        )
    )]
    Unreachable {
        /// What was being done (`connect`, `read`, `write`, `watch`).
        operation: &'static str,
        /// The endpoints tried, comma-separated (`the endpoints given` when unknown).
        endpoints: String,
        /// What failed, in words, with its causes.
        cause: String,
    },
    /// A hold on a version whose source is not (or no longer) in the store.
    #[error("flow `{flow}` has no stored content {hash}")]
    #[diagnostic(
        code("flowc::store::not-stored"),
        help(
            "hold a version while it is stored: right after publishing it or starting an instance on it"
        )
    )]
    NotStored {
        /// The flow.
        flow: String,
        /// The hash.
        hash: String,
    },
}

impl crate::diagnostic::ErrorCode for StoreError {
    fn code(&self) -> &'static str {
        match self {
            StoreError::Io { .. } => "flowc::store::io",
            StoreError::Corrupt { .. } => "flowc::store::corrupt",
            StoreError::CorruptKey { .. } => "flowc::store::etcd-corrupt",
            StoreError::Format { .. } => "flowc::store::format",
            StoreError::InvalidKey { .. } => "flowc::store::invalid-key",
            StoreError::TooLarge { .. } => "flowc::store::too-large",
            StoreError::RevisionTaken { .. } => "flowc::store::revision-taken",
            StoreError::NotStored { .. } => "flowc::store::not-stored",
            StoreError::Etcd { .. } => "flowc::store::etcd",
            StoreError::Unreachable { .. } => "flowc::store::etcd-unreachable",
        }
    }
}

impl StoreError {
    fn io(operation: &'static str, path: &std::path::Path, e: &std::io::Error) -> Self {
        StoreError::Io {
            operation,
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }

    fn corrupt(path: &std::path::Path, reason: impl Into<String>) -> Self {
        StoreError::Corrupt {
            path: path.display().to_string(),
            reason: reason.into(),
        }
    }
}

/// The retention decision both stores share: every content of a flow (given its records,
/// by revision) that [`VersionStore::prune`] may delete, as its earliest record. A content
/// is kept when it is among the `keep.newest` newest (by its latest revision), in
/// `keep.hashes`, held (`held(hash)`), or no longer stored (nothing to delete). A store
/// that checks holds atomically when deleting may answer `false` here.
///
/// # Errors
/// What `held` returns.
pub(crate) fn prunable(
    records: &[VersionRecord],
    keep: &Keep,
    mut held: impl FnMut(&str) -> Result<bool, StoreError>,
) -> Result<Vec<VersionRecord>, StoreError> {
    // each content once, at its latest revision, newest first
    let mut latest: Vec<&VersionRecord> = Vec::new();
    for r in records.iter().rev() {
        if !latest.iter().any(|l| l.hash == r.hash) {
            latest.push(r);
        }
    }
    let mut out = Vec::new();
    for r in latest.into_iter().skip(keep.newest) {
        let stored = records.iter().any(|x| x.hash == r.hash && x.stored);
        if !stored || keep.hashes.contains(&r.hash) || held(&r.hash)? {
            continue;
        }
        let first = records.iter().find(|x| x.hash == r.hash).unwrap_or(r);
        out.push(first.clone());
    }
    Ok(out)
}

/// A refused key as its error shows it ([`crate::diagnostic::excerpt`]).
fn cut(value: &str) -> String {
    crate::diagnostic::excerpt(value)
}

/// Checks a flow id: the flow language's id pattern, which is also a safe file name.
///
/// # Errors
/// [`StoreError::InvalidKey`].
pub fn check_flow_id(flow: &str) -> Result<(), StoreError> {
    let mut chars = flow.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && flow.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidKey {
            what: "flow id",
            value: cut(flow),
            reason: "not a flow id",
            help: "flow ids match `^[a-z][a-z0-9-]{0,62}$`",
        })
    }
}

/// Checks a content hash: 16 lowercase hex digits, as [`VersionId`] has.
///
/// # Errors
/// [`StoreError::InvalidKey`].
pub fn check_hash(hash: &str) -> Result<(), StoreError> {
    if hash.len() == 16
        && hash
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    {
        Ok(())
    } else {
        Err(StoreError::InvalidKey {
            what: "hash",
            value: cut(hash),
            reason: "not a content hash",
            help: "a content hash is the 16 lowercase hex digits of a `VersionId`",
        })
    }
}

/// Checks a holder name: 1 to [`Limits::MAX_HOLDER_BYTES`] bytes, no control characters.
///
/// # Errors
/// [`StoreError::InvalidKey`].
pub fn check_holder(holder: &str) -> Result<(), StoreError> {
    if holder.is_empty()
        || holder.len() > Limits::MAX_HOLDER_BYTES
        || holder.chars().any(char::is_control)
    {
        Err(StoreError::InvalidKey {
            what: "holder",
            value: cut(holder),
            reason: "empty, longer than 80 bytes or with control characters",
            help: "name the holder by an instance id or a host name",
        })
    } else {
        Ok(())
    }
}

fn check_new(version: &NewVersion<'_>) -> Result<(), StoreError> {
    check_flow_id(version.flow)?;
    check_hash(version.hash)?;
    let too_large = |what: &str, size: usize, limit: usize| StoreError::TooLarge {
        what: what.to_owned(),
        size: size as u64,
        limit: limit as u64,
    };
    if version.source.len() as u64 > Limits::MAX_STORED_SOURCE_BYTES {
        return Err(StoreError::TooLarge {
            what: format!("the source of `{}`", version.name),
            size: version.source.len() as u64,
            limit: Limits::MAX_STORED_SOURCE_BYTES,
        });
    }
    if version.name.len() > 1024 {
        return Err(too_large("the source name", version.name.len(), 1024));
    }
    if let Some(a) = &version.meta.author
        && a.len() > Limits::MAX_AUTHOR_BYTES
    {
        return Err(too_large("the author", a.len(), Limits::MAX_AUTHOR_BYTES));
    }
    if let Some(m) = &version.meta.message
        && m.len() > Limits::MAX_MESSAGE_BYTES
    {
        return Err(too_large("the message", m.len(), Limits::MAX_MESSAGE_BYTES));
    }
    Ok(())
}

fn check_revision(revision: u64) -> Result<(), StoreError> {
    if revision == 0 {
        Err(StoreError::InvalidKey {
            what: "revision",
            value: "0".to_owned(),
            reason: "revision 0 means unpublished",
            help: "revisions start at 1",
        })
    } else {
        Ok(())
    }
}
