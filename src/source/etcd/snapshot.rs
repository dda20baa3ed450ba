//! The local snapshot of a watcher: every accepted version, so that a watcher that
//! starts while etcd is unreachable can serve the last flows it knew.
//!
//! ```text
//! snapshot.json          {"format": 1, "prefix": "/flowc", "tenant": "acme", "revision": 42}
//! flows/<flow-id>.json   {"flow", "revision", "hash", "name", "source"}
//! ```
//!
//! Each file is written whole to a hidden temporary file beside it, synced, then renamed
//! into place: a reader (or a restart after a crash) sees the old file or the new one,
//! never a torn one. A retired flow's file is removed.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::EtcdError;
use crate::limits::Limits;
use crate::store::etcd::Tenant;

/// The snapshot format this release reads and writes.
pub const FORMAT: u32 = 1;

/// A snapshot directory of one tenant.
#[derive(Clone, Debug)]
pub struct Snapshot {
    dir: PathBuf,
    tenant: Tenant,
}

#[derive(Serialize, Deserialize)]
struct Header {
    format: u32,
    prefix: String,
    tenant: String,
    revision: u64,
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
    /// The snapshot of `tenant` in `dir` (created when missing).
    ///
    /// # Errors
    /// [`EtcdError::Snapshot`] when the directory cannot be created or holds another
    /// tenant's (or another format's) snapshot.
    pub fn open(dir: impl Into<PathBuf>, tenant: &Tenant) -> Result<Self, EtcdError> {
        let dir = dir.into();
        let flows = dir.join("flows");
        fs::create_dir_all(&flows).map_err(|e| snapshot_error(&flows, e))?;
        let snapshot = Self {
            dir,
            tenant: tenant.clone(),
        };
        snapshot.header()?;
        Ok(snapshot)
    }

    /// As [`Snapshot::open`], but a `snapshot.json` that is no snapshot header (cut short,
    /// not JSON) does not stop the watcher: it is removed with the flow files (which it
    /// no longer vouches for: they may be another tenant's), the snapshot starts empty
    /// and is rewritten from etcd; the second value says what was found. Another
    /// tenant's or format's snapshot is still an error (the directory is someone else's).
    ///
    /// # Errors
    /// As [`Snapshot::open`].
    pub fn open_or_reset(
        dir: impl Into<PathBuf>,
        tenant: &Tenant,
    ) -> Result<(Self, Option<String>), EtcdError> {
        let dir = dir.into();
        let flows = dir.join("flows");
        fs::create_dir_all(&flows).map_err(|e| snapshot_error(&flows, e))?;
        let snapshot = Self {
            dir,
            tenant: tenant.clone(),
        };
        let path = snapshot.header_path();
        let damaged = match read_bounded(&path)? {
            Some(bytes) => match serde_json::from_slice::<Header>(&bytes) {
                Ok(_) => None,
                Err(e) => Some(e.to_string()),
            },
            None => None,
        };
        let Some(why) = damaged else {
            snapshot.header()?;
            return Ok((snapshot, None));
        };
        fs::remove_file(&path).map_err(|e| snapshot_error(&path, e))?;
        let entries = fs::read_dir(&flows).map_err(|e| snapshot_error(&flows, e))?;
        for e in entries.filter_map(Result::ok) {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "json") {
                fs::remove_file(&p).map_err(|e| snapshot_error(&p, e))?;
            }
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

    fn flow_path(&self, flow: &str) -> PathBuf {
        self.dir.join("flows").join(format!("{flow}.json"))
    }

    /// The etcd revision the snapshot reflects (`None`: never written).
    fn header(&self) -> Result<Option<u64>, EtcdError> {
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
        Ok(Some(h.revision))
    }

    /// The etcd revision the snapshot reflects (`None`: never written).
    ///
    /// # Errors
    /// As [`Snapshot::open`].
    pub fn revision(&self) -> Result<Option<u64>, EtcdError> {
        self.header()
    }

    /// Records that the snapshot reflects etcd at `revision`.
    ///
    /// # Errors
    /// [`EtcdError::Snapshot`].
    pub fn set_revision(&self, revision: u64) -> Result<(), EtcdError> {
        let h = Header {
            format: FORMAT,
            prefix: self.tenant.prefix().to_owned(),
            tenant: self.tenant.tenant().to_owned(),
            revision,
        };
        let path = self.header_path();
        let bytes = serde_json::to_vec(&h).map_err(|e| snapshot_error(&path, e))?;
        write_atomic(&path, &bytes)
    }

    /// Keeps `flow` (replacing the flow's earlier version).
    ///
    /// # Errors
    /// [`EtcdError::Snapshot`].
    pub fn put(&self, flow: &SnapshotFlow) -> Result<(), EtcdError> {
        crate::store::check_flow_id(&flow.flow)?;
        let path = self.flow_path(&flow.flow);
        let bytes = serde_json::to_vec(flow).map_err(|e| snapshot_error(&path, e))?;
        write_atomic(&path, &bytes)
    }

    /// Forgets a retired flow.
    ///
    /// # Errors
    /// [`EtcdError::Snapshot`].
    pub fn remove(&self, flow: &str) -> Result<(), EtcdError> {
        crate::store::check_flow_id(flow)?;
        let path = self.flow_path(flow);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(snapshot_error(&path, e)),
            _ => Ok(()),
        }
    }

    /// Every flow kept, by flow id; a file that cannot be read is reported beside.
    ///
    /// # Errors
    /// [`EtcdError::Snapshot`] when the directory cannot be listed.
    pub fn flows(&self) -> Result<(Vec<SnapshotFlow>, Vec<EtcdError>), EtcdError> {
        let dir = self.dir.join("flows");
        let entries = fs::read_dir(&dir).map_err(|e| snapshot_error(&dir, e))?;
        let mut names: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|x| x == "json")
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        names.sort();
        let (mut flows, mut bad) = (Vec::new(), Vec::new());
        for path in names {
            let parsed = read_bounded(&path).and_then(|b| {
                let b = b.ok_or_else(|| snapshot_error(&path, "removed while read"))?;
                serde_json::from_slice::<SnapshotFlow>(&b).map_err(|e| snapshot_error(&path, e))
            });
            match parsed {
                Ok(f) if path.file_stem().is_some_and(|s| *s == *f.flow) => flows.push(f),
                Ok(f) => bad.push(snapshot_error(
                    &path,
                    format!("holds flow `{}`, not the file's name", f.flow),
                )),
                Err(e) => bad.push(e),
            }
        }
        Ok((flows, bad))
    }
}
