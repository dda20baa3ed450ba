//! The directory source: every flow file under a directory, published into a registry,
//! then kept in step with the directory by a debounced watcher (`notify`).
//!
//! A broken edit keeps the last good version active and reports its diagnostics; a
//! deleted file retires its flow for new starts (running instances keep their version);
//! two files with one flow id: the second is refused. A batch of changes is judged as a
//! whole ([`DirSource::sync_batch`]): renames, moves and swapped ids move flows between
//! files without conflicts or retirements.
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
        /// The flow the file holds or declares, when known (a broken file whose `id`
        /// can still be read, or that replaces the file that held the flow).
        flow: Option<String>,
        /// The version still active for the flow, if the file holds it.
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
        /// The version of the flow the file held before the refused edit, which stays
        /// active (a refused edit, like a broken one, never retires the file's flow).
        kept: Option<VersionId>,
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

/// One file of a batch, judged.
struct Judged {
    path: PathBuf,
    /// The version the file held before the batch.
    previous: Option<VersionId>,
    claim: Claim,
    /// Not in the batch: a waiting file judged again because its flow's holder changed.
    extra: bool,
}

/// The batch's verdict on one judged file.
struct Verdict<'a> {
    /// It holds the id it claims after the batch.
    holds: bool,
    /// The id it claims.
    id: Option<&'a str>,
    /// The file that holds that id after the batch.
    holder: PathBuf,
    /// No file claims the flow it held before the batch.
    previous_free: bool,
}

/// What a file says now.
enum Claim {
    /// Gone, not a flow file by name, or other YAML the source never knew.
    Gone,
    /// It compiles (to the flow it names).
    Compiles(Box<crate::compile::CompiledFlow>),
    /// It does not compile; `id` is the flow id it declares, when that can be read.
    Broken {
        diagnostics: Diagnostics,
        id: Option<String>,
    },
    /// It cannot be read.
    Unreadable { message: String },
}

impl Judged {
    /// The flow id the file claims after the batch: the one it compiles to, the one a
    /// broken file declares, else the one it held.
    fn claimed(&self) -> Option<&str> {
        let held = self.previous.as_ref().map(|v| v.flow.as_str());
        match &self.claim {
            Claim::Gone => None,
            Claim::Compiles(c) => Some(c.id()),
            Claim::Broken { id, .. } => id.as_deref().or(held),
            Claim::Unreadable { .. } => held,
        }
    }

    fn compiles(&self) -> bool {
        matches!(self.claim, Claim::Compiles(_))
    }
}

/// Who holds a claimed flow id after a batch.
enum Holder {
    /// A file outside the batch that held it before.
    Outside(PathBuf),
    /// The judged file at this index.
    Judged(usize),
}

/// The flow id a flow file declares and where its value is (1-based line and
/// character column).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeclaredId {
    /// The id.
    pub id: String,
    /// The line of the value.
    pub line: usize,
    /// The column of the value (characters, 1-based).
    pub column: usize,
}

/// The top-level `id:` of a flow file, read cheaply: the first unindented `id:` line
/// (its value unquoted, a trailing comment dropped), else the parsed YAML's top-level
/// `id` (bounded by the loader's limits). `None` when neither gives a non-empty string.
/// A broken flow still declares its id this way, and a repository-wide duplicate check
/// need not compile every file.
#[must_use]
pub fn declared_id(bytes: &[u8]) -> Option<DeclaredId> {
    let text = std::str::from_utf8(bytes).ok()?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (n, line) in text.lines().enumerate() {
        let Some(rest) = line
            .strip_prefix("id:")
            .or_else(|| line.strip_prefix("\"id\":"))
            .or_else(|| line.strip_prefix("'id':"))
        else {
            continue;
        };
        let value = rest.split(" #").next().unwrap_or_default();
        let trimmed = value.trim();
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|q| trimmed.strip_prefix(*q).and_then(|t| t.strip_suffix(*q)))
            .unwrap_or(trimmed);
        if unquoted.is_empty() || unquoted.starts_with(['{', '[', '&', '*', '|', '>']) {
            break;
        }
        let before = line.len() - rest.len() + (value.len() - value.trim_start().len());
        let column = line.get(..before).map_or(1, |b| b.chars().count() + 1);
        return Some(DeclaredId {
            id: unquoted.to_owned(),
            line: n + 1,
            column,
        });
    }
    let file = crate::span::SourceFile::new("-", text);
    let root = crate::load::yaml::parse(&file, &crate::load::LoadLimits::default()).ok()?;
    let node = root.get("id")?;
    let id = node.as_str().filter(|s| !s.is_empty())?;
    let (line, column) = file.line_col(node.span.start);
    Some(DeclaredId {
        id: id.to_owned(),
        line,
        column,
    })
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
        let mut all = found;
        {
            let files = self.lock();
            all.extend(files.held.keys().chain(files.waiting.keys()).cloned());
        }
        Ok(self.sync_batch(&all))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Files> {
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Brings one path in step: publish a flow file that exists, retire the flow of one
    /// that is gone or no longer holds a flow (unless a file that was refused for holding
    /// the same flow id takes over). Empty when the path is not a flow file the source
    /// knows or sees. The path may be spelt any way (relative to the working directory,
    /// through a symbolic link): it is made canonical first. A batch of one
    /// ([`DirSource::sync_batch`]).
    pub fn sync(&self, path: &Path) -> Vec<SourceEvent> {
        self.sync_batch(&[path.to_path_buf()])
    }

    /// Brings a batch of paths in step as a whole (one debounced batch of the watcher).
    ///
    /// Each file of the batch is judged first (gone, a flow that compiles, a broken flow
    /// with the id it declares, unreadable); then the flow → file assignment after the
    /// whole batch is computed, and only its difference from before is published or
    /// retired. Two files claim one id only if they do so in the final state: a rename
    /// (the old name gone, the new one present) moves the flow without retiring it, and
    /// two files that swap their ids in one batch each publish the other's flow.
    ///
    /// Who holds a claimed id: a file outside the batch that held it stays its holder;
    /// otherwise the batch's file that held it, then a file that compiles, then a broken
    /// one, in path order. A broken file claims the id it declares (or, when none can be
    /// read, the flow it held): holding a flow it keeps the flow's active version (a
    /// broken file moved or renamed never retires its flow). A refused file that
    /// compiles waits and takes the flow over when its holder lets go. A file left
    /// holding nothing (refused for an id another file holds, broken, or not stored)
    /// keeps the flow it held when no other file claims it: only a file that is gone,
    /// no longer a flow, or publishes another flow lets its flow go. A flow the batch
    /// lets go of and nobody claims is retired.
    pub fn sync_batch(&self, paths: &[PathBuf]) -> Vec<SourceEvent> {
        let mut paths: Vec<PathBuf> = paths.iter().map(|p| canonical(p)).collect();
        paths.sort();
        paths.dedup();
        let mut files = self.lock();
        let mut judged: Vec<Judged> = paths.iter().map(|p| self.judge(&files, p, false)).collect();
        let released_by = |judged: &[Judged]| -> Vec<(String, PathBuf)> {
            judged
                .iter()
                .filter_map(|j| {
                    j.previous
                        .as_ref()
                        .map(|v| (v.flow.clone(), j.path.clone()))
                })
                .collect()
        };
        let mut released = released_by(&judged);
        // files outside the batch waiting for a flow the batch lets go of are judged too
        let extras: Vec<PathBuf> = files
            .waiting
            .iter()
            .filter(|(p, f)| {
                released.iter().any(|(r, _)| r == *f) && paths.binary_search(p).is_err()
            })
            .map(|(p, _)| p.clone())
            .collect();
        let start = judged.len();
        judged.extend(extras.iter().map(|p| self.judge(&files, p, true)));
        // a waiting file may still hold the flow it had before a refused edit
        released.extend(released_by(judged.get(start..).unwrap_or_default()));
        for j in &judged {
            files.held.remove(&j.path);
            files.waiting.remove(&j.path);
        }
        // the holder of each claimed id after the batch
        let mut ids: Vec<&str> = judged.iter().filter_map(Judged::claimed).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut owner: BTreeMap<String, Holder> = BTreeMap::new();
        for id in ids {
            if let Some((p, _)) = files.held.iter().find(|(_, v)| v.flow == id) {
                owner.insert(id.to_owned(), Holder::Outside(p.clone()));
                continue;
            }
            let best = judged
                .iter()
                .enumerate()
                .filter(|(_, j)| (j.compiles() || !j.extra) && j.claimed() == Some(id))
                .min_by_key(|(_, j)| {
                    (
                        j.previous.as_ref().is_none_or(|v| v.flow != id),
                        !j.compiles(),
                        j.path.clone(),
                    )
                })
                .map(|(i, _)| i);
            if let Some(i) = best {
                owner.insert(id.to_owned(), Holder::Judged(i));
            }
        }
        let holder_of: BTreeMap<&String, PathBuf> = owner
            .iter()
            .filter_map(|(id, h)| match h {
                Holder::Outside(p) => Some((id, p.clone())),
                Holder::Judged(i) => judged.get(*i).map(|j| (id, j.path.clone())),
            })
            .collect();
        let holder_of: BTreeMap<String, PathBuf> =
            holder_of.into_iter().map(|(k, v)| (k.clone(), v)).collect();
        let mut events = Vec::new();
        for (i, j) in judged.into_iter().enumerate() {
            let id = j.claimed().map(str::to_owned);
            let holds = matches!(
                id.as_ref().and_then(|id| owner.get(id)),
                Some(Holder::Judged(h)) if *h == i
            );
            let holder = id
                .as_ref()
                .and_then(|id| holder_of.get(id))
                .cloned()
                .unwrap_or_default();
            // nobody claims the flow the file held: a refused edit keeps it
            let previous_free = j
                .previous
                .as_ref()
                .is_some_and(|v| !owner.contains_key(&v.flow));
            let verdict = Verdict {
                holds,
                id: id.as_deref(),
                holder,
                previous_free,
            };
            if let Some(e) = self.settle(&mut files, j, verdict) {
                events.push(e);
            }
        }
        for (flow, path) in released {
            // moved, renamed or swapped: a file holds the flow now
            if files.held.values().any(|v| v.flow == flow) {
                continue;
            }
            events.push(self.retire(&path, &flow));
        }
        events
    }

    /// What one file says now (read and compiled, without changing anything).
    fn judge(&self, files: &Files, path: &Path, extra: bool) -> Judged {
        let previous = files.held.get(path).cloned();
        let known = previous.is_some() || files.waiting.contains_key(path);
        let judged = |claim| Judged {
            path: path.to_path_buf(),
            previous: previous.clone(),
            claim,
            extra,
        };
        if !path.is_file() || !super::is_flow_file(path) {
            return judged(Claim::Gone);
        }
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                return judged(Claim::Unreadable {
                    message: e.to_string(),
                });
            }
        };
        // a file the source does not know must say it is a flow; one it knows stays a
        // flow file however it is edited (a broken edit is rejected, never a retirement)
        if !known && !super::is_flow_content(&bytes) {
            return judged(Claim::Gone);
        }
        match self.registry.compile(&path.display().to_string(), &bytes) {
            Ok(c) => judged(Claim::Compiles(Box::new(c))),
            Err(diagnostics) => judged(Claim::Broken {
                diagnostics,
                id: declared_id(&bytes).map(|d| d.id),
            }),
        }
    }

    /// Applies the verdict on one judged file: publishes it, keeps the active version,
    /// or refuses it; records what it holds or waits for.
    fn settle(&self, files: &mut Files, j: Judged, verdict: Verdict<'_>) -> Option<SourceEvent> {
        let Verdict {
            holds,
            id,
            holder,
            previous_free,
        } = verdict;
        let path = j.path;
        // what a holder that cannot be published keeps: its own version of the flow, or
        // the flow's active one (a broken file moved here)
        let keep = |files: &mut Files, id: Option<&str>| -> Option<VersionId> {
            let id = id?;
            let kept = self.registry.active(id).map(|a| a.version().clone());
            let own = j.previous.clone().filter(|v| v.flow == id);
            if let Some(v) = own.or_else(|| kept.clone()) {
                files.held.insert(path.clone(), v);
            }
            kept
        };
        // a file that ends up holding nothing keeps the flow it held before the batch
        // when no other file claims it (an edit refused for a taken id, or that cannot
        // be stored, is rejected like a broken one: never a retirement)
        let retain = |files: &mut Files| -> Option<VersionId> {
            let v = j.previous.clone().filter(|_| previous_free)?;
            if files.held.contains_key(&path) {
                return None;
            }
            files.held.insert(path.clone(), v.clone());
            Some(v)
        };
        if j.extra && !matches!(j.claim, Claim::Compiles(_)) {
            // judged again only to take a flow over: no longer able to, it keeps waiting
            // and is reported when it changes
            if !matches!(j.claim, Claim::Gone) {
                retain(files);
            }
            if let Some(id) = id {
                files.waiting.insert(path, id.to_owned());
            }
            return None;
        }
        match j.claim {
            Claim::Gone => None,
            Claim::Unreadable { message } => {
                if holds {
                    keep(files, id);
                }
                retain(files);
                Some(SourceEvent::Unreadable { path, message })
            }
            Claim::Broken { diagnostics, .. } => {
                let kept = if holds { keep(files, id) } else { None };
                let kept = kept.or_else(|| retain(files));
                Some(SourceEvent::Rejected {
                    path,
                    diagnostics,
                    flow: id.map(str::to_owned),
                    kept,
                })
            }
            Claim::Compiles(compiled) if !holds => {
                let flow = compiled.id().to_owned();
                let kept = retain(files);
                files.waiting.insert(path.clone(), flow.clone());
                // a waiting file judged again because its flow's holder changed says
                // nothing new when it still waits
                (!j.extra).then(|| SourceEvent::Conflict {
                    path,
                    flow,
                    holder,
                    kept,
                })
            }
            Claim::Compiles(compiled) => match self.registry.publish_compiled(*compiled) {
                Ok(version) => {
                    files.held.insert(path.clone(), version.clone());
                    Some(if j.previous.as_ref() == Some(&version) {
                        SourceEvent::Unchanged { path, version }
                    } else {
                        SourceEvent::Published { path, version }
                    })
                }
                Err(error) => {
                    let kept = keep(files, id).or_else(|| retain(files));
                    Some(SourceEvent::StoreFailed { path, error, kept })
                }
            },
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
