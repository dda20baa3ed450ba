//! The directory version store.
//!
//! Layout under the root:
//!
//! ```text
//! flowc-store.json                          {"format": 1}
//! flows/<flow>/<hash>.src                   a content's source (content-addressed; not
//!                                           `.yaml`, so no walk takes it for a flow)
//! flows/<flow>/revisions/<revision>.json    one record per revision (20-digit name)
//! holds/<flow>/<hash>/<holder>.json         one hold (holder name percent-encoded)
//! ```
//!
//! Every file is written whole to a hidden temporary file in its own directory, synced,
//! then renamed into place (sources, holds) or hard-linked into place (records, which
//! are created once and never rewritten: a link fails when the name exists, so two
//! processes can never both claim a revision). The directory is synced after each.
//! Readers never see a torn file; listings skip hidden names (temporaries, including
//! those a crashed writer left behind).
//!
//! Several processes may share a root: a revision is claimed only by creating its
//! record, so concurrent [`VersionStore::assign`]s of different content get different
//! revisions and of the same content the same one (each retries after losing a claim,
//! re-reading the records). [`VersionStore::prune`] deletes a source only when nothing
//! holds it, then checks the holds again and puts the source back if a hold appeared
//! meanwhile; [`VersionStore::hold`] writes the hold, then checks the source is still
//! there. What is not protected: a second root on a network file system without atomic
//! rename or hard links.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::checksum;
use super::{
    Hold, Keep, NewVersion, StoreError, StoredVersion, VersionRecord, VersionStore, check_flow_id,
    check_hash, check_holder, check_new, check_revision,
};
use crate::compile::VersionId;
use crate::limits::Limits;

/// The store format this release reads and writes.
pub const FORMAT: u32 = 1;

const FORMAT_FILE: &str = "flowc-store.json";

/// How often [`DirStore::assign`] re-reads the records after another process claimed the
/// revision it tried. Each retry means another claim succeeded, so this bounds only a
/// directory that claims revisions faster than this process can read them.
const MAX_CLAIM_ATTEMPTS: usize = 1000;

/// A version store in a directory (see the module docs for the layout).
#[derive(Debug, Clone)]
pub struct DirStore {
    root: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct FormatFile {
    format: u32,
}

/// A record as written: the public record plus the format.
#[derive(Serialize, Deserialize)]
struct RecordFile {
    format: u32,
    #[serde(flatten)]
    record: VersionRecord,
}

#[derive(Serialize, Deserialize)]
struct HoldFile {
    format: u32,
    #[serde(flatten)]
    hold: Hold,
}

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A hidden temporary name beside `path`, unique in this process and across processes.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let seq = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.{}.{seq}.tmp", std::process::id()))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("sync", dir, &e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn create_dir(dir: &Path) -> Result<(), StoreError> {
    fs::create_dir_all(dir).map_err(|e| StoreError::io("create", dir, &e))
}

/// Writes `bytes` to a synced temporary file beside `path`; the caller moves it.
fn write_temp(path: &Path, bytes: &[u8]) -> Result<PathBuf, StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_dir(dir)?;
    let tmp = temp_path(path);
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(StoreError::io("write", &tmp, &e));
    }
    Ok(tmp)
}

/// Replaces `path` with `bytes` atomically.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = write_temp(path, bytes)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(StoreError::io("write", path, &e));
    }
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Creates `path` with `bytes` atomically unless it exists (then false, nothing written).
fn create_atomic(path: &Path, bytes: &[u8]) -> Result<bool, StoreError> {
    let tmp = write_temp(path, bytes)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            sync_dir(path.parent().unwrap_or(Path::new(".")))?;
            Ok(true)
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(StoreError::io("create", path, &e)),
    }
}

/// Reads a whole file of at most `limit` bytes (`None`: it does not exist).
fn read_bounded(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, StoreError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io("read", path, &e)),
    };
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| StoreError::io("read", path, &e))?;
    if bytes.len() as u64 > limit {
        return Err(StoreError::corrupt(
            path,
            format!("larger than the {limit}-byte limit"),
        ));
    }
    Ok(Some(bytes))
}

fn parse_json<T: serde::de::DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::corrupt(path, e.to_string()))
}

fn to_json<T: Serialize>(path: &Path, value: &T) -> Result<Vec<u8>, StoreError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| StoreError::Io {
        operation: "encode",
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// The names in a directory that are not hidden (`None`: the directory does not exist).
fn list_dir(dir: &Path) -> Result<Option<Vec<String>>, StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io("list", dir, &e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io("list", dir, &e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            names.push(name);
        }
    }
    names.sort();
    Ok(Some(names))
}

/// A holder name as a file name: ASCII letters, digits, `-` and `_` stay, every other
/// byte is `%XX` (at most 240 characters for the 80-byte limit).
fn encode_holder(holder: &str) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(holder.len());
    for b in holder.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            s.push(char::from(b));
        } else {
            let _ = write!(s, "%{b:02X}");
        }
    }
    s
}

impl DirStore {
    /// Opens (creating it if needed) the store under `root`.
    ///
    /// # Errors
    /// I/O, a format file of another format or a corrupt one.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        create_dir(&root)?;
        let path = root.join(FORMAT_FILE);
        let bytes = if let Some(b) = read_bounded(&path, Limits::MAX_STORE_RECORD_BYTES)? {
            b
        } else {
            // a new store (or another process creating it at the same moment)
            create_atomic(&path, &to_json(&path, &FormatFile { format: FORMAT })?)?;
            read_bounded(&path, Limits::MAX_STORE_RECORD_BYTES)?
                .ok_or_else(|| StoreError::corrupt(&path, "missing right after it was created"))?
        };
        let value: serde_json::Value = parse_json(&path, &bytes)?;
        match value.get("format").and_then(serde_json::Value::as_u64) {
            Some(f) if f == u64::from(FORMAT) => Ok(Self { root }),
            Some(f) => Err(StoreError::Format {
                path: path.display().to_string(),
                found: f.to_string(),
                expected: FORMAT,
            }),
            None => Err(StoreError::corrupt(&path, "no `format` number")),
        }
    }

    /// The store's directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn flow_dir(&self, flow: &str) -> PathBuf {
        self.root.join("flows").join(flow)
    }

    fn source_path(&self, flow: &str, hash: &str) -> PathBuf {
        self.flow_dir(flow).join(format!("{hash}.src"))
    }

    fn record_path(&self, flow: &str, revision: u64) -> PathBuf {
        self.flow_dir(flow)
            .join("revisions")
            .join(format!("{revision:020}.json"))
    }

    fn hold_dir(&self, flow: &str, hash: &str) -> PathBuf {
        self.root.join("holds").join(flow).join(hash)
    }

    fn hold_path(&self, flow: &str, hash: &str, holder: &str) -> PathBuf {
        self.hold_dir(flow, hash)
            .join(format!("{}.json", encode_holder(holder)))
    }

    /// Writes a content's source unless an intact copy is there.
    fn put_source(&self, version: &NewVersion<'_>) -> Result<(), StoreError> {
        let path = self.source_path(version.flow, version.hash);
        if let Ok(Some(bytes)) = read_bounded(&path, Limits::MAX_STORED_SOURCE_BYTES)
            && bytes == version.source
        {
            return Ok(());
        }
        write_atomic(&path, version.source)
    }

    fn read_record(&self, flow: &str, revision: u64) -> Result<Option<VersionRecord>, StoreError> {
        let path = self.record_path(flow, revision);
        let Some(bytes) = read_bounded(&path, Limits::MAX_STORE_RECORD_BYTES)? else {
            return Ok(None);
        };
        let file: RecordFile = parse_json(&path, &bytes)?;
        if file.format != FORMAT {
            return Err(StoreError::Format {
                path: path.display().to_string(),
                found: file.format.to_string(),
                expected: FORMAT,
            });
        }
        let mut record = file.record;
        if record.flow != flow || record.revision != revision {
            return Err(StoreError::corrupt(
                &path,
                format!(
                    "it records `{}` revision {}, not its own name",
                    record.flow, record.revision
                ),
            ));
        }
        check_hash(&record.hash).map_err(|_| StoreError::corrupt(&path, "no valid hash"))?;
        record.stored = self.source_path(flow, &record.hash).is_file();
        Ok(Some(record))
    }

    /// Creates the record of `revision` unless it exists; returns what the file holds.
    fn claim(
        &self,
        version: &NewVersion<'_>,
        revision: u64,
    ) -> Result<(bool, VersionRecord), StoreError> {
        let record = VersionRecord::new(version, revision);
        let path = self.record_path(version.flow, revision);
        let file = RecordFile {
            format: FORMAT,
            record,
        };
        if create_atomic(&path, &to_json(&path, &file)?)? {
            return Ok((true, file.record));
        }
        let existing = self
            .read_record(version.flow, revision)?
            .ok_or_else(|| StoreError::corrupt(&path, "exists and is unreadable as a record"))?;
        Ok((false, existing))
    }

    fn read_hold(path: &Path) -> Result<Option<Hold>, StoreError> {
        let Some(bytes) = read_bounded(path, Limits::MAX_STORE_RECORD_BYTES)? else {
            return Ok(None);
        };
        let file: HoldFile = parse_json(path, &bytes)?;
        let expected = format!("{}.json", encode_holder(&file.hold.holder));
        if path.file_name().and_then(|n| n.to_str()) != Some(expected.as_str()) {
            return Err(StoreError::corrupt(
                path,
                "its holder does not match its file name",
            ));
        }
        Ok(Some(file.hold))
    }
}

impl VersionStore for DirStore {
    fn put(&self, version: &NewVersion<'_>, revision: u64) -> Result<VersionRecord, StoreError> {
        check_new(version)?;
        check_revision(revision)?;
        let taken = |existing: VersionRecord| StoreError::RevisionTaken {
            flow: version.flow.to_owned(),
            revision,
            existing: existing.hash,
            hash: version.hash.to_owned(),
        };
        // refuse before writing anything when the revision is known to be taken
        if let Some(existing) = self.read_record(version.flow, revision)?
            && existing.hash != version.hash
        {
            return Err(taken(existing));
        }
        self.put_source(version)?;
        let (_, record) = self.claim(version, revision)?;
        if record.hash != version.hash {
            return Err(taken(record));
        }
        Ok(VersionRecord {
            stored: true,
            ..record
        })
    }

    fn assign(&self, version: &NewVersion<'_>) -> Result<VersionRecord, StoreError> {
        check_new(version)?;
        // the source first: a record never names content that was never written
        self.put_source(version)?;
        for _ in 0..MAX_CLAIM_ATTEMPTS {
            let records = self.list(version.flow)?;
            if let Some(r) = records.iter().find(|r| r.hash == version.hash) {
                return Ok(VersionRecord {
                    stored: true,
                    ..r.clone()
                });
            }
            let next = records.last().map_or(1, |r| r.revision + 1);
            let (created, record) = self.claim(version, next)?;
            if created || record.hash == version.hash {
                return Ok(record);
            }
        }
        Err(StoreError::corrupt(
            &self.flow_dir(version.flow).join("revisions"),
            format!("no free revision after {MAX_CLAIM_ATTEMPTS} attempts"),
        ))
    }

    fn get(&self, flow: &str, hash: &str) -> Result<Option<StoredVersion>, StoreError> {
        check_flow_id(flow)?;
        check_hash(hash)?;
        let records: Vec<VersionRecord> = self
            .list(flow)?
            .into_iter()
            .filter(|r| r.hash == hash)
            .collect();
        let Some(first) = records.first() else {
            return Ok(None);
        };
        let path = self.source_path(flow, hash);
        let Some(source) = read_bounded(&path, Limits::MAX_STORED_SOURCE_BYTES)? else {
            return Ok(None);
        };
        if source.len() as u64 != first.size || checksum(&source) != first.checksum {
            return Err(StoreError::corrupt(
                &path,
                format!(
                    "{} bytes with checksum {}; its record says {} bytes with checksum {}",
                    source.len(),
                    checksum(&source),
                    first.size,
                    first.checksum
                ),
            ));
        }
        Ok(Some(StoredVersion {
            record: VersionRecord {
                stored: true,
                ..first.clone()
            },
            revisions: records.iter().map(|r| r.revision).collect(),
            source,
        }))
    }

    fn list(&self, flow: &str) -> Result<Vec<VersionRecord>, StoreError> {
        check_flow_id(flow)?;
        let dir = self.flow_dir(flow).join("revisions");
        let Some(names) = list_dir(&dir)? else {
            return Ok(Vec::new());
        };
        let mut records = Vec::with_capacity(names.len());
        for name in names {
            let revision = name
                .strip_suffix(".json")
                .filter(|n| n.len() == 20)
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| {
                    StoreError::corrupt(&dir.join(&name), "not a revision record name")
                })?;
            // a record removed between listing and reading is an outside edit
            let record = self.read_record(flow, revision)?.ok_or_else(|| {
                StoreError::corrupt(&dir.join(&name), "disappeared while being read")
            })?;
            records.push(record);
        }
        // names are zero-padded: sorted by name is sorted by revision
        Ok(records)
    }

    fn flows(&self) -> Result<Vec<String>, StoreError> {
        Ok(list_dir(&self.root.join("flows"))?
            .unwrap_or_default()
            .into_iter()
            .filter(|f| check_flow_id(f).is_ok())
            .collect())
    }

    fn hold(&self, version: &VersionId, holder: &str) -> Result<(), StoreError> {
        check_flow_id(&version.flow)?;
        check_hash(&version.hash)?;
        check_holder(holder)?;
        let path = self.hold_path(&version.flow, &version.hash, holder);
        let not_stored = || StoreError::NotStored {
            flow: version.flow.clone(),
            hash: version.hash.clone(),
        };
        if !self.source_path(&version.flow, &version.hash).is_file() {
            return Err(not_stored());
        }
        if Self::read_hold(&path)?.is_none() {
            let hold = Hold {
                flow: version.flow.clone(),
                hash: version.hash.clone(),
                revision: version.revision,
                holder: holder.to_owned(),
                since: now_secs(),
            };
            let bytes = to_json(
                &path,
                &HoldFile {
                    format: FORMAT,
                    hold,
                },
            )?;
            write_atomic(&path, &bytes)?;
        }
        // a prune that ran meanwhile either saw this hold or deleted the source first
        if !self.source_path(&version.flow, &version.hash).is_file() {
            let _ = fs::remove_file(&path);
            return Err(not_stored());
        }
        Ok(())
    }

    fn release(&self, version: &VersionId, holder: &str) -> Result<bool, StoreError> {
        check_flow_id(&version.flow)?;
        check_hash(&version.hash)?;
        check_holder(holder)?;
        let path = self.hold_path(&version.flow, &version.hash, holder);
        match fs::remove_file(&path) {
            Ok(()) => {
                sync_dir(path.parent().unwrap_or(Path::new(".")))?;
                Ok(true)
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::io("remove", &path, &e)),
        }
    }

    fn held(&self) -> Result<Vec<Hold>, StoreError> {
        let mut all = Vec::new();
        let holds = self.root.join("holds");
        for flow in list_dir(&holds)?.unwrap_or_default() {
            if check_flow_id(&flow).is_err() {
                continue;
            }
            for hash in list_dir(&holds.join(&flow))?.unwrap_or_default() {
                if check_hash(&hash).is_ok() {
                    all.extend(self.holders(&flow, &hash)?);
                }
            }
        }
        all.sort();
        Ok(all)
    }

    fn holders(&self, flow: &str, hash: &str) -> Result<Vec<Hold>, StoreError> {
        check_flow_id(flow)?;
        check_hash(hash)?;
        let dir = self.hold_dir(flow, hash);
        let mut holds = Vec::new();
        for name in list_dir(&dir)?.unwrap_or_default() {
            let path = dir.join(&name);
            // released between listing and reading: not a hold any more
            if let Some(hold) = Self::read_hold(&path)? {
                if hold.flow != flow || hold.hash != hash {
                    return Err(StoreError::corrupt(
                        &path,
                        "it holds another version than its directory names",
                    ));
                }
                holds.push(hold);
            }
        }
        holds.sort_by(|a, b| a.holder.cmp(&b.holder));
        Ok(holds)
    }

    fn prune(&self, flow: &str, keep: &Keep) -> Result<Vec<VersionRecord>, StoreError> {
        let records = self.list(flow)?;
        let candidates = super::prunable(&records, keep, |hash| {
            Ok(!self.holders(flow, hash)?.is_empty())
        })?;
        let mut pruned = Vec::new();
        for first in candidates {
            let path = self.source_path(flow, &first.hash);
            let Some(bytes) = read_bounded(&path, Limits::MAX_STORED_SOURCE_BYTES)? else {
                continue;
            };
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io("remove", &path, &e)),
            }
            sync_dir(path.parent().unwrap_or(Path::new(".")))?;
            // a hold taken since the check above wins: put the source back
            if !self.holders(flow, &first.hash)?.is_empty() {
                write_atomic(&path, &bytes)?;
                continue;
            }
            pruned.push(VersionRecord {
                stored: false,
                ..first
            });
        }
        pruned.sort_by_key(|r| r.revision);
        Ok(pruned)
    }
}
