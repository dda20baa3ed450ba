//! The directory source: every flow file under a directory, published into a registry,
//! then kept in step with the directory by a debounced watcher (`notify`).
//!
//! A broken edit keeps the last good version active and reports its diagnostics; a
//! deleted file retires its flow for new starts (running instances keep their version);
//! two files with one flow id: the second is refused.
//!
//! Paths are made canonical once, here at the source's edge: the directory when the
//! source is made, every path handed to [`DirSource::sync`] (its directory resolved, its
//! file name kept), so that the scan, the watcher's events and callers name one file one
//! way whatever spelling (`.`, `flows`, an absolute path, a symbolic link) reached it.
//! Which files count follows the crate's one walk ([`super::walk`]) and, for each file,
//! its content ([`super::is_flow_content`]): other YAML is not a flow and is left alone.
//!
//! Revisions: with a registry built on a version store ([`Registry::with_store`]) every
//! version the source publishes is written to the store and named by the store's record
//! (the same content keeps the revision it first got), so a new process on the same
//! directory and store names every version as before. Without one the registry's
//! per-process counter names them (not restart-safe).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use notify_debouncer_full::notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};

use crate::compile::VersionId;
use crate::diagnostic::Diagnostics;
use crate::registry::{Registry, RegistryError};

/// What happened to one file.
#[derive(Debug)]
#[non_exhaustive]
pub enum SourceEvent {
    /// A new version is active.
    Published {
        /// The file.
        path: PathBuf,
        /// The version.
        version: VersionId,
    },
    /// The file changed on disk but compiles to the active content.
    Unchanged {
        /// The file.
        path: PathBuf,
        /// The active version.
        version: VersionId,
    },
    /// The file does not compile; the last good version (if any) stays active.
    Rejected {
        /// The file.
        path: PathBuf,
        /// Every diagnostic.
        diagnostics: Diagnostics,
        /// The version still active for the flow, if the file had one.
        kept: Option<VersionId>,
    },
    /// The file was deleted (or now holds another flow): the flow takes no new starts.
    Retired {
        /// The file.
        path: PathBuf,
        /// The flow id.
        flow: String,
    },
    /// Another file already holds this flow id; this one waits and takes the flow over
    /// when the holder goes.
    Conflict {
        /// The file refused.
        path: PathBuf,
        /// The flow id.
        flow: String,
        /// The file that holds it.
        holder: PathBuf,
    },
    /// The file compiles but its version could not be stored (the version store
    /// failed); the last good version (if any) stays active.
    StoreFailed {
        /// The file.
        path: PathBuf,
        /// The store's (or the registry's) error.
        error: RegistryError,
        /// The version still active for the flow, if the file had one.
        kept: Option<VersionId>,
    },
    /// The file could not be read.
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        message: String,
    },
}

/// Why watching could not start.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum SourceError {
    /// The directory cannot be read.
    #[error("cannot read `{path}`: {message}")]
    #[diagnostic(
        code("flowc::source::unreadable"),
        help("check that the directory exists and is readable")
    )]
    Unreadable {
        /// The directory.
        path: String,
        /// The I/O error.
        message: String,
    },
    /// The file-system watcher failed.
    #[error("cannot watch `{path}`: {message}")]
    #[diagnostic(
        code("flowc::source::watch"),
        help("on Linux, raise fs.inotify.max_user_watches if the limit is reached")
    )]
    Watch {
        /// The directory.
        path: String,
        /// The watcher's error.
        message: String,
    },
}

/// A directory of flows feeding a registry.
#[derive(Debug)]
pub struct DirSource {
    dir: PathBuf,
    registry: Arc<Registry>,
    files: Mutex<Files>,
}

/// Which file holds which flow (and its last published version), and which files wait
/// for a flow id another file holds.
#[derive(Debug, Default)]
struct Files {
    held: BTreeMap<PathBuf, VersionId>,
    waiting: BTreeMap<PathBuf, String>,
}

/// A running watch; dropping it stops watching.
pub struct Watch {
    _debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watch")
    }
}

impl DirSource {
    /// A source for `dir` publishing into `registry` (nothing is read yet). The
    /// directory is made canonical now (when it exists; [`DirSource::scan`] reports it
    /// otherwise).
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>, registry: Arc<Registry>) -> Self {
        Self {
            dir: canonical(&dir.into()),
            registry,
            files: Mutex::new(Files::default()),
        }
    }

    /// The directory, canonical: every path in a [`SourceEvent`] lies under it.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The registry fed.
    #[must_use]
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Publishes every flow file under the directory (sorted by path); also retires the
    /// flows of files that have gone since the last scan.
    ///
    /// # Errors
    /// The directory cannot be read.
    pub fn scan(&self) -> Result<Vec<SourceEvent>, SourceError> {
        let found =
            super::walk(&self.dir, super::is_flow_file).map_err(|e| SourceError::Unreadable {
                path: self.dir.display().to_string(),
                message: e.to_string(),
            })?;
        let known: Vec<PathBuf> = self.lock().held.keys().cloned().collect();
        let mut events: Vec<SourceEvent> = known
            .iter()
            .filter(|p| !found.contains(p))
            .flat_map(|p| self.sync(p))
            .collect();
        events.extend(found.iter().flat_map(|p| self.sync(p)));
        Ok(events)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Files> {
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Brings one path in step: publish a flow file that exists, retire the flow of one
    /// that is gone or no longer holds a flow (unless a file that was refused for holding
    /// the same flow id takes over). Empty when the path is not a flow file the source
    /// knows or sees. The path may be spelt any way (relative to the working directory,
    /// through a symbolic link): it is made canonical first.
    pub fn sync(&self, path: &Path) -> Vec<SourceEvent> {
        let path = &canonical(path);
        let mut files = self.lock();
        let previous = files.held.get(path).cloned();
        let event = if path.is_file() {
            self.publish_file(&mut files, path)
        } else {
            None
        };
        let Some(event) = event else {
            files.waiting.remove(path);
            let Some(gone) = previous else {
                return Vec::new();
            };
            files.held.remove(path);
            return self.free(&mut files, path, &gone.flow);
        };
        let mut events = vec![event];
        if let Some(old) = previous
            && files.held.get(path).is_some_and(|now| now.flow != old.flow)
        {
            // the file now holds another flow: the old one is gone from disk
            events.extend(self.free(&mut files, path, &old.flow));
        }
        events
    }

    /// Brings a batch of paths in step as a whole (one debounced batch of the watcher):
    /// the files that are gone let go of their flows first, the files that exist are
    /// published, and only then is a flow that no file holds any more retired (or taken
    /// over by a waiting file). A rename (the old name gone, the new one present, one
    /// flow id) therefore moves the flow to the new file without retiring it, whichever
    /// order the two names sort in.
    pub fn sync_batch(&self, paths: &[PathBuf]) -> Vec<SourceEvent> {
        let mut paths: Vec<PathBuf> = paths.iter().map(|p| canonical(p)).collect();
        paths.sort();
        paths.dedup();
        let mut gone: Vec<(PathBuf, String)> = Vec::new();
        {
            let mut files = self.lock();
            for p in paths.iter().filter(|p| !p.is_file()) {
                files.waiting.remove(p);
                if let Some(v) = files.held.remove(p) {
                    gone.push((p.clone(), v.flow));
                }
            }
        }
        let mut events: Vec<SourceEvent> = paths
            .iter()
            .filter(|p| !gone.iter().any(|(g, _)| g == *p))
            .flat_map(|p| self.sync(p))
            .collect();
        let mut files = self.lock();
        for (path, flow) in gone {
            // moved: a file of this batch holds the flow now
            if files.held.values().any(|v| v.flow == flow) {
                continue;
            }
            events.extend(self.free(&mut files, &path, &flow));
        }
        events
    }

    /// A flow no file holds any more: a waiting file takes it over, or it is retired.
    fn free(&self, files: &mut Files, path: &Path, flow: &str) -> Vec<SourceEvent> {
        let candidates: Vec<PathBuf> = files
            .waiting
            .iter()
            .filter(|(_, f)| f.as_str() == flow)
            .map(|(p, _)| p.clone())
            .collect();
        for c in candidates {
            if let Some(e @ SourceEvent::Published { .. }) = self.publish_file(files, &c) {
                return vec![e];
            }
        }
        vec![self.retire(path, flow)]
    }

    /// Publishes one existing file (`None`: not a flow file, by name or by content).
    fn publish_file(&self, files: &mut Files, path: &Path) -> Option<SourceEvent> {
        if !super::is_flow_file(path) {
            return None;
        }
        let previous = files.held.get(path).cloned();
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                return Some(SourceEvent::Unreadable {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                });
            }
        };
        // a file the source does not know must say it is a flow; one it knows stays a
        // flow file however it is edited (a broken edit is rejected, never a retirement)
        if previous.is_none()
            && !files.waiting.contains_key(path)
            && !super::is_flow_content(&bytes)
        {
            return None;
        }
        let name = path.display().to_string();
        // compile first to learn the flow id, so that a conflict never publishes
        let compiled = match self.registry.compile(&name, &bytes) {
            Ok(c) => c,
            Err(diagnostics) => {
                files.waiting.remove(path);
                return Some(self.rejected(path, diagnostics, previous));
            }
        };
        let id = compiled.id();
        if let Some((holder, _)) = files
            .held
            .iter()
            .find(|(p, v)| v.flow == id && p.as_path() != path)
        {
            let event = SourceEvent::Conflict {
                path: path.to_path_buf(),
                flow: id.to_owned(),
                holder: holder.clone(),
            };
            files.waiting.insert(path.to_path_buf(), id.to_owned());
            return Some(event);
        }
        files.waiting.remove(path);
        let version = match self.registry.publish_compiled(compiled) {
            Ok(v) => v,
            Err(error) => {
                let kept = previous
                    .and_then(|p| self.registry.active(&p.flow).map(|a| a.version().clone()));
                return Some(SourceEvent::StoreFailed {
                    path: path.to_path_buf(),
                    error,
                    kept,
                });
            }
        };
        files.held.insert(path.to_path_buf(), version.clone());
        let path = path.to_path_buf();
        Some(if previous.as_ref() == Some(&version) {
            SourceEvent::Unchanged { path, version }
        } else {
            SourceEvent::Published { path, version }
        })
    }

    fn rejected(
        &self,
        path: &Path,
        diagnostics: Diagnostics,
        previous: Option<VersionId>,
    ) -> SourceEvent {
        let kept =
            previous.and_then(|p| self.registry.active(&p.flow).map(|a| a.version().clone()));
        SourceEvent::Rejected {
            path: path.to_path_buf(),
            diagnostics,
            kept,
        }
    }

    fn retire(&self, path: &Path, flow: &str) -> SourceEvent {
        let _ = self.registry.retire(flow);
        SourceEvent::Retired {
            path: path.to_path_buf(),
            flow: flow.to_owned(),
        }
    }

    /// The files a batch of changes concerns, in path order: the flow files the walk
    /// sees at or under a changed path, and the files the source knows at or under one
    /// that the walk no longer sees (deleted, moved away, or now ignored). A changed
    /// `.gitignore` or `.ignore` concerns its whole directory.
    fn affected(&self, changed: &[PathBuf]) -> Vec<PathBuf> {
        let changed: Vec<&Path> = changed
            .iter()
            .map(|p| match p.file_name().and_then(|n| n.to_str()) {
                Some(".gitignore" | ".ignore") => p.parent().unwrap_or(p),
                _ => p.as_path(),
            })
            .collect();
        let concerned = |f: &Path| changed.iter().any(|c| f.starts_with(c));
        let listed = super::walk(&self.dir, super::is_flow_file).unwrap_or_default();
        let mut v: Vec<PathBuf> = listed.iter().filter(|f| concerned(f)).cloned().collect();
        let files = self.lock();
        v.extend(
            files
                .held
                .keys()
                .chain(files.waiting.keys())
                .filter(|k| concerned(k) && listed.binary_search(k).is_err())
                .cloned(),
        );
        drop(files);
        v.sort();
        v.dedup();
        v
    }

    /// Watches the directory; calls `on_event` for every change, after `debounce` of
    /// quiet. Call [`DirSource::scan`] first to load what is there.
    ///
    /// # Errors
    /// The watcher cannot start.
    pub fn watch(
        self: &Arc<Self>,
        debounce: Duration,
        mut on_event: impl FnMut(SourceEvent) + Send + 'static,
    ) -> Result<Watch, SourceError> {
        let me = Arc::clone(self);
        let err = |e: &dyn std::fmt::Display| SourceError::Watch {
            path: self.dir.display().to_string(),
            message: e.to_string(),
        };
        let mut debouncer = new_debouncer(debounce, None, move |result: DebounceEventResult| {
            let Ok(events) = result else {
                // the watcher lost track (overflow): rescan everything
                if let Ok(all) = me.scan() {
                    all.into_iter().for_each(&mut on_event);
                }
                return;
            };
            // our own reads show up as access events: only changes matter
            let changed: Vec<PathBuf> = events
                .iter()
                .filter(|e| !matches!(e.event.kind, EventKind::Access(_)))
                .flat_map(|e| e.event.paths.iter().cloned())
                .collect();
            if changed.is_empty() {
                return;
            }
            me.sync_batch(&me.affected(&changed))
                .into_iter()
                .for_each(&mut on_event);
        })
        .map_err(|e| err(&e))?;
        debouncer
            .watch(&self.dir, RecursiveMode::Recursive)
            .map_err(|e| err(&e))?;
        Ok(Watch {
            _debouncer: debouncer,
        })
    }
}

/// `path` made absolute with its directory resolved (symbolic links, `.`, `..`) and its
/// file name kept (a file that is gone, or a link to a flow elsewhere, keeps the name it
/// has in the directory).
fn canonical(path: &Path) -> PathBuf {
    if path.is_dir()
        && let Ok(c) = path.canonicalize()
    {
        return c;
    }
    let Some(name) = path.file_name() else {
        return std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    };
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => canonical(p).join(name),
        _ => canonical(Path::new(".")).join(name),
    }
}
