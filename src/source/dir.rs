//! The directory source: every flow file under a directory, published into a registry,
//! then kept in step with the directory by a debounced watcher (`notify`).
//!
//! A broken edit keeps the last good version active and reports its diagnostics; a
//! deleted file retires its flow for new starts (running instances keep their version);
//! two files with one flow id: the second is refused.
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

use notify_debouncer_full::notify::event::ModifyKind;
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
    /// A source for `dir` publishing into `registry` (nothing is read yet).
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>, registry: Arc<Registry>) -> Self {
        Self {
            dir: dir.into(),
            registry,
            files: Mutex::new(Files::default()),
        }
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
    /// that is gone (unless a file that was refused for holding the same flow id takes
    /// over). Empty when the path is not a flow file the source knows or sees.
    pub fn sync(&self, path: &Path) -> Vec<SourceEvent> {
        let mut files = self.lock();
        let previous = files.held.get(path).cloned();
        if !path.is_file() {
            files.waiting.remove(path);
            let Some(gone) = previous else {
                return Vec::new();
            };
            files.held.remove(path);
            return self.free(&mut files, path, &gone.flow);
        }
        let Some(event) = self.publish_file(&mut files, path) else {
            return Vec::new();
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

    /// Publishes one existing file (`None`: not a flow file).
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

    /// The files a change at `path` concerns: a flow file itself; the known files under
    /// a directory that is gone; the flow files of a directory that appeared (`created`).
    fn affected(&self, path: &Path, created: bool) -> Vec<PathBuf> {
        if super::in_skipped_dir(&self.dir, path) {
            return Vec::new();
        }
        if super::is_flow_file(path) {
            return vec![path.to_path_buf()];
        }
        let mut v: Vec<PathBuf> = if path.exists() {
            Vec::new()
        } else {
            self.lock()
                .held
                .keys()
                .filter(|k| k.starts_with(path))
                .cloned()
                .collect()
        };
        if created && path.is_dir() {
            v.extend(super::walk(path, super::is_flow_file).unwrap_or_default());
        }
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
            let mut files: Vec<PathBuf> = Vec::new();
            for e in &events {
                // our own reads show up as access events: only changes matter
                if matches!(e.event.kind, EventKind::Access(_)) {
                    continue;
                }
                let created = matches!(
                    e.event.kind,
                    EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(_))
                );
                for p in &e.event.paths {
                    files.extend(me.affected(p, created));
                }
            }
            files.sort();
            files.dedup();
            for file in files {
                me.sync(&file).into_iter().for_each(&mut on_event);
            }
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
