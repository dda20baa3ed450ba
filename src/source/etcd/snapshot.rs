//! The local snapshot of a watcher: every accepted version, so that a watcher that
//! starts while etcd is unreachable can serve the last flows it knew.
//!
//! ```text
//! snapshot.json   {"format": 2, "prefix": "/flowc", "tenant": "acme", "revision": 42,
//!                  "flows": [{"flow", "revision", "hash", "name", "source"}, ...]}
//! ```
//!
//! The whole snapshot is one file: the flows as etcd had them at one revision. Changes
//! are gathered in memory ([`Snapshot::put`], [`Snapshot::remove`]) and written with the
//! revision they reach ([`Snapshot::set_revision`]): the file is written whole to a
//! hidden temporary file beside it, synced, then renamed into place. A kill at any point
//! leaves the old snapshot or the new one, each a set of flows that existed together;
//! a temporary file left by a killed writer is never read, and is removed at the next
//! start.
//!
//! A directory is written by one watcher at a time: the watcher's snapshot
//! ([`Snapshot::open_or_reset`]) holds an exclusive lock on `DIR/lock` (which records its
//! PID) for as long as it lives, and only the holder removes leftover temporary files; a
//! second watcher given the same directory is refused naming the holder. Readers
//! ([`Snapshot::open`]: a cold-start read while a watcher writes) take no lock, remove
//! nothing and cannot write. (Format 1 kept one file per flow, which a kill could leave at different
//! revisions: it is not served, and is rewritten from etcd.)

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::EtcdError;
use crate::limits::Limits;
use crate::store::etcd::Tenant;

/// The snapshot format this release reads and writes.
pub const FORMAT: u32 = 2;

/// The per-file format of earlier releases (not served: see the module doc).
const FORMAT_PER_FILE: u32 = 1;

/// A snapshot directory of one tenant.
#[derive(Clone, Debug)]
pub struct Snapshot {
    dir: PathBuf,
    tenant: Tenant,
    /// The flows as last written or since changed, by flow id.
    flows: BTreeMap<String, SnapshotFlow>,
    /// Changed since last written ([`Snapshot::flush`] writes it then).
    dirty: bool,
    /// The directory's lock, held while the snapshot lives (`None`: opened for reading).
    lock: Option<Arc<fs::File>>,
}

/// The lock file of a snapshot directory.
const LOCK_FILE: &str = "lock";

#[derive(Serialize, Deserialize)]
struct Header {
    format: u32,
    prefix: String,
    tenant: String,
    revision: u64,
    #[serde(default)]
    flows: Vec<SnapshotFlow>,
}

/// One flow as the snapshot keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotFlow {
    /// The flow id.
    pub flow: String,
    /// The etcd revision of its version.
    pub revision: u64,
    /// The content hash.
    pub hash: String,
    /// The source's display name.
    pub name: String,
    /// The YAML.
    pub source: String,
}

fn snapshot_error(path: &Path, message: impl std::fmt::Display) -> EtcdError {
    EtcdError::Snapshot {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// Creates the snapshot directory `dir` (and its parents) when missing; a file where it
/// or one of its parents should be is said as such, naming that file (not as the OS's
/// "File exists" or "Not a directory").
fn create_dir(dir: &Path) -> Result<(), EtcdError> {
    fs::create_dir_all(dir).map_err(|e| {
        // the nearest of `dir` and its parents that exists and is no directory
        let file = dir
            .ancestors()
            .filter(|a| !a.as_os_str().is_empty())
            .find(|a| a.exists() && !a.is_dir());
        match file {
            Some(f) if f == dir => snapshot_error(
                dir,
                format_args!(
                    "`{}` is not a directory (--snapshot takes a directory, created when missing)",
                    dir.display()
                ),
            ),
            Some(f) => snapshot_error(
                dir,
                format_args!(
                    "`{}` is a file, not a directory, so no directory can be created under it (--snapshot takes a directory, created when missing with its parents): move that file away or choose another --snapshot",
                    f.display()
                ),
            ),
            None => snapshot_error(dir, e),
        }
    })
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), EtcdError> {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_data()))
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(snapshot_error(path, e));
    }
    Ok(())
}

fn read_bounded(path: &Path) -> Result<Option<Vec<u8>>, EtcdError> {
    match fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(snapshot_error(path, e)),
        Ok(m) if m.len() > Limits::MAX_SNAPSHOT_FILE_BYTES => {
            return Err(snapshot_error(
                path,
                "larger than any snapshot file flowc writes",
            ));
        }
        Ok(_) => {}
    }
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(snapshot_error(path, e)),
    }
}

impl Snapshot {
    /// The snapshot of `tenant` in `dir` (created when missing), for reading: it takes
    /// no lock and removes nothing, so it is safe while a watcher writes the directory
    /// (its writes, [`Snapshot::set_revision`], are refused).
    ///
    /// # Errors
    /// [`EtcdError::Snapshot`] when the directory cannot be created or holds another
    /// tenant's (or another format's) snapshot.
    pub fn open(dir: impl Into<PathBuf>, tenant: &Tenant) -> Result<Self, EtcdError> {
        let dir = dir.into();
        create_dir(&dir)?;
        let mut snapshot = Self {
            dir,
            tenant: tenant.clone(),
            flows: BTreeMap::new(),
            dirty: false,
            lock: None,
        };
        snapshot.load()?;
        Ok(snapshot)
    }

    /// The snapshot of `tenant` in `dir` for writing: created when missing, locked (see
    /// the module doc), leftover temporary files removed.
    fn create(dir: PathBuf, tenant: &Tenant) -> Result<Self, EtcdError> {
        create_dir(&dir)?;
        let path = dir.join(LOCK_FILE);
        // INVARIANT: never truncated before it is locked: it names the holder's PID
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| snapshot_error(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let holder = fs::read_to_string(&path)
                    .ok()
                    .and_then(|t| t.trim().parse::<u32>().ok())
                    .map_or_else(String::new, |pid| format!(" (PID {pid})"));
                return Err(snapshot_error(
                    &dir,
                    format!(
                        "the directory is in use by another watcher{holder}: a snapshot directory serves one watcher at a time (its lock file `{}`)",
                        path.display()
                    ),
                ));
            }
            Err(fs::TryLockError::Error(e)) => return Err(snapshot_error(&path, e)),
        }
        file.set_len(0)
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .map_err(|e| snapshot_error(&path, e))?;
        let snapshot = Self {
            dir,
            tenant: tenant.clone(),
            flows: BTreeMap::new(),
            dirty: false,
            lock: Some(Arc::new(file)),
        };
        // a writer killed before its rename leaves its temporary file: never read; the
        // lock's holder is the only writer, so every one left is dead
        let entries = fs::read_dir(&snapshot.dir).map_err(|e| snapshot_error(&snapshot.dir, e))?;
        for e in entries.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            if name
                .strip_prefix(".snapshot.json.")
                .is_some_and(|rest| rest.split('.').next_back() == Some("tmp"))
            {
                let _ = fs::remove_file(e.path());
            }
        }
        Ok(snapshot)
    }

    fn load(&mut self) -> Result<(), EtcdError> {
        if let Some(h) = self.header()? {
            self.flows = h.flows.into_iter().map(|f| (f.flow.clone(), f)).collect();
        }
        Ok(())
    }

    /// As [`Snapshot::open`], but a `snapshot.json` that is no snapshot (cut short, not
    /// JSON) or one of format 1 (one file per flow, which may disagree) does not stop the
    /// watcher: it is removed (with format 1's flow files), the snapshot starts empty
    /// and is rewritten from etcd; the second value says what was found. Another
    /// tenant's or format's snapshot is still an error (the directory is someone else's).
    ///
    /// # Errors
    /// As [`Snapshot::open`].
    pub fn open_or_reset(
        dir: impl Into<PathBuf>,
        tenant: &Tenant,
    ) -> Result<(Self, Option<String>), EtcdError> {
        let mut snapshot = Self::create(dir.into(), tenant)?;
        let path = snapshot.header_path();
        let damaged = match read_bounded(&path)? {
            Some(bytes) => match serde_json::from_slice::<Header>(&bytes) {
                Ok(h) if h.format == FORMAT_PER_FILE => Some(
                    "format 1 keeps one file per flow, which need not agree on one revision"
                        .to_owned(),
                ),
                Ok(_) => None,
                Err(e) => Some(e.to_string()),
            },
            None => None,
        };
        let Some(why) = damaged else {
            snapshot.load()?;
            return Ok((snapshot, None));
        };
        fs::remove_file(&path).map_err(|e| snapshot_error(&path, e))?;
        let flows = snapshot.dir.join("flows");
        if let Ok(entries) = fs::read_dir(&flows) {
            for e in entries.filter_map(Result::ok) {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "json") {
                    fs::remove_file(&p).map_err(|e| snapshot_error(&p, e))?;
                }
            }
            let _ = fs::remove_dir(&flows);
        }
        Ok((
            snapshot,
            Some(format!(
                "snapshot `{}` is damaged ({why}): its flows are not served; the snapshot is rewritten from etcd",
                path.display()
            )),
        ))
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn header_path(&self) -> PathBuf {
        self.dir.join("snapshot.json")
    }

    /// The etcd revision the snapshot reflects (`None`: never written).
    fn header(&self) -> Result<Option<Header>, EtcdError> {
        let path = self.header_path();
        let Some(bytes) = read_bounded(&path)? else {
            return Ok(None);
        };
        let h: Header = serde_json::from_slice(&bytes).map_err(|e| snapshot_error(&path, e))?;
        if h.format != FORMAT {
            return Err(snapshot_error(
                &path,
                format!("format {}; this flowc reads format {FORMAT}", h.format),
            ));
        }
        if h.prefix != self.tenant.prefix() || h.tenant != self.tenant.tenant() {
            return Err(snapshot_error(
                &path,
                format!(
                    "holds tenant `{}` under `{}`, not tenant `{}` under `{}`",
                    h.tenant,
                    h.prefix,
                    self.tenant.tenant(),
                    self.tenant.prefix()
                ),
            ));
        }
        Ok(Some(h))
    }

    /// The etcd revision the snapshot reflects (`None`: never written).
    ///
    /// # Errors
    /// As [`Snapshot::open`].
    pub fn revision(&self) -> Result<Option<u64>, EtcdError> {
        Ok(self.header()?.map(|h| h.revision))
    }

    /// Writes the snapshot as it now is, as etcd's state at `revision` (the one step
    /// that changes the file: see the module doc).
    ///
    /// # Errors
    /// [`EtcdError::Snapshot`]; also for a snapshot opened for reading
    /// ([`Snapshot::open`]), which holds no lock.
    pub fn set_revision(&mut self, revision: u64) -> Result<(), EtcdError> {
        if self.lock.is_none() {
            return Err(snapshot_error(
                &self.dir,
                "opened for reading (no lock): only the watcher holding the directory's lock writes it",
            ));
        }
        let h = Header {
            format: FORMAT,
            prefix: self.tenant.prefix().to_owned(),
            tenant: self.tenant.tenant().to_owned(),
            revision,
            flows: self.flows.values().cloned().collect(),
        };
        let path = self.header_path();
        let bytes = serde_json::to_vec(&h).map_err(|e| snapshot_error(&path, e))?;
        write_atomic(&path, &bytes)?;
        self.dirty = false;
        Ok(())
    }

    /// Writes the snapshot if a flow was kept or forgotten since it was last written,
    /// as etcd's state at `revision` (the last revision the watcher applied whole: no
    /// later than the flows it holds, so a restart from it reads on from there). The
    /// watcher calls it when it stops: a version it served while a full read or a
    /// history write was still waiting on etcd is then in the snapshot.
    ///
    /// # Errors
    /// As [`Snapshot::set_revision`].
    pub fn flush(&mut self, revision: u64) -> Result<(), EtcdError> {
        if self.dirty {
            self.set_revision(revision)?;
        }
        Ok(())
    }

    /// Keeps `flow` (replacing the flow's earlier version) from the next
    /// [`Snapshot::set_revision`] on.
    ///
    /// # Errors
    /// [`EtcdError::Snapshot`] when the flow id is not one.
    pub fn put(&mut self, flow: &SnapshotFlow) -> Result<(), EtcdError> {
        crate::store::check_flow_id(&flow.flow)?;
        self.flows.insert(flow.flow.clone(), flow.clone());
        self.dirty = true;
        Ok(())
    }

    /// Forgets a retired flow from the next [`Snapshot::set_revision`] on.
    pub fn remove(&mut self, flow: &str) {
        if self.flows.remove(flow).is_some() {
            self.dirty = true;
        }
    }

    /// Every flow kept, by flow id, as last written (one revision).
    ///
    /// # Errors
    /// [`EtcdError::Snapshot`] when the snapshot cannot be read.
    pub fn flows(&self) -> Result<Vec<SnapshotFlow>, EtcdError> {
        Ok(self.header()?.map(|h| h.flows).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kept version is written by `flush` (what the watcher does when it stops), and
    /// only once: a flush with nothing changed since the last write writes nothing.
    #[test]
    fn a_flush_writes_what_was_kept_since_the_last_write() {
        let dir = std::env::temp_dir().join(format!("flowc-snapshot-flush-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let tenant = Tenant::new("/flowc", "acme").unwrap();
        let (mut s, damaged) = Snapshot::open_or_reset(&dir, &tenant).unwrap();
        assert_eq!(damaged, None);
        let header = dir.join("snapshot.json");
        // nothing kept: nothing written
        s.flush(0).unwrap();
        assert!(!header.exists());
        s.put(&SnapshotFlow {
            flow: "leave".to_owned(),
            revision: 7,
            hash: "h".to_owned(),
            name: "leave.yaml".to_owned(),
            source: "id: leave\n".to_owned(),
        })
        .unwrap();
        s.flush(5).unwrap();
        let read = Snapshot::open(&dir, &tenant).unwrap();
        assert_eq!(read.revision().unwrap(), Some(5));
        let flows: Vec<String> = read.flows().unwrap().into_iter().map(|f| f.flow).collect();
        assert_eq!(flows, ["leave"]);
        // written: a second flush leaves the file as it is
        fs::remove_file(&header).unwrap();
        s.flush(6).unwrap();
        assert!(!header.exists());
        drop(s);
        let _ = fs::remove_dir_all(&dir);
    }
}
