//! Stage 8: the registry — compiled versions per flow, swapped atomically (arc-swap) so
//! that readers never block, with pinning, rollback, retention and canary releases.
//!
//! Reads ([`Registry::active`], [`FlowHandle::active`], [`Registry::get`]) are
//! lock-free. Writers (publish, rollback, canary, retire) take the flow's mutex, so they
//! are serialised per flow; a publish that does not compile changes nothing.
//!
//! **Restarts.** A registry built with [`Registry::with_store`] writes every version it
//! publishes to a durable [`VersionStore`] and takes its revision from there (or from the
//! caller, [`Registry::publish_revision`]), so a fresh process on the same store names
//! every version as before; [`Registry::load`] and [`Registry::restore`] find a version by
//! its content hash in memory or in the store, however many versions followed; pins and
//! [`Registry::hold`]s are kept in the store. A registry without a store (`new`,
//! `default`, `with_retention`) numbers revisions with a per-process counter and keeps
//! everything in memory: it is **not** restart-safe.
//!
//! ```
//! let reg = flowc::registry::Registry::new(Default::default());
//! let src = br#"
//! apiVersion: flowc/v1
//! kind: ApprovalFlow
//! id: leave
//! steps:
//!   - { id: boss, type: approval, assignees: { role: manager } }
//! "#;
//! let v1 = reg.publish("leave.yaml", src).unwrap();
//! assert_eq!(v1.revision, 1);
//! let handle = reg.handle("leave").unwrap(); // resolve once, read on every request
//! assert_eq!(handle.active().unwrap().version(), &v1);
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arc_swap::{ArcSwap, ArcSwapOption};
use serde::{Deserialize, Serialize};

use crate::compile::{self, CompiledFlow, Condition, Options, VersionId, stable_hash};
use crate::diagnostic::{Diagnostics, excerpt};
use crate::runtime::{self, Effect, Instance, InstanceState, RuntimeError};
use crate::store::{Hold, Keep, NewVersion, StoreError, VersionMeta, VersionRecord, VersionStore};

/// Holder names starting with this are the store holds of [`Registry::pin`].
pub const PIN_HOLDER_PREFIX: &str = "pin:";

/// How many versions of a flow are kept besides those in use (active, canary, pinned or
/// held by a live instance).
pub const DEFAULT_RETENTION: usize = 10;

/// What happened to a flow, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// A new version became active.
    Published,
    /// An earlier version became active again.
    RolledBack,
    /// A candidate started taking a share of new instances.
    CanaryStarted,
    /// The candidate became active.
    Promoted,
    /// The candidate was withdrawn.
    Aborted,
    /// No version is active: new starts are refused (the source was deleted).
    Retired,
}

/// One history entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Position in the flow's history (1, 2, ...).
    pub seq: u64,
    /// What happened.
    pub action: Action,
    /// The version it concerns (the active one after a retire: none).
    pub version: Option<VersionId>,
}

/// Errors of registry operations other than publishing.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum RegistryError {
    /// No flow with this id was ever published.
    #[error("no flow `{}` in the registry", excerpt(.flow))]
    #[diagnostic(code("flowc::registry::unknown-flow"), help("{help}"))]
    UnknownFlow {
        /// The id asked for.
        flow: String,
        /// Did-you-mean or the known flows.
        help: String,
    },
    /// The version is not (or no longer) kept.
    #[error("flow `{}` has no version {}", excerpt(.flow), excerpt(.version))]
    #[diagnostic(
        code("flowc::registry::unknown-version"),
        help(
            "`history` lists the versions; versions beyond the retention limit that no instance used were dropped"
        )
    )]
    UnknownVersion {
        /// The flow.
        flow: String,
        /// The version asked for.
        version: String,
    },
    /// The flow has no active version (retired).
    #[error("flow `{flow}` is retired: it takes no new instances")]
    #[diagnostic(
        code("flowc::registry::retired"),
        help("publish it again or roll back to a kept version")
    )]
    Retired {
        /// The flow.
        flow: String,
    },
    /// A canary is already running, or none is.
    #[error("{message}")]
    #[diagnostic(code("flowc::registry::canary-state"), help("{help}"))]
    CanaryState {
        /// What is wrong.
        message: String,
        /// What to do.
        help: String,
    },
    /// A canary share outside 0–100 %.
    #[error("canary share {share} is outside 0..=100 percent")]
    #[diagnostic(
        code("flowc::registry::canary-share"),
        help("give a percentage such as `10`")
    )]
    CanaryShare {
        /// The share given.
        share: String,
    },
    /// The source (a canary's candidate, a publish with a revision) or the canary's
    /// selector does not compile.
    #[error("the source or the canary's selector does not compile")]
    #[diagnostic(code("flowc::registry::compile"))]
    Compile(#[related] Vec<crate::diagnostic::Diagnostic>),
    /// Starting or restoring the instance failed (its context, its state).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Start(#[from] RuntimeError),
    /// The revision already names other content of the flow.
    #[error("revision {revision} of flow `{flow}` already names content {existing}, not {hash}")]
    #[diagnostic(
        code("flowc::registry::revision-taken"),
        help("a revision names one content for ever: publish new content under a new revision")
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
    /// The operation keeps something durably and the registry has no store.
    #[error("{operation} needs a version store; this registry keeps versions in memory only")]
    #[diagnostic(
        code("flowc::registry::no-store"),
        help("build the registry with `Registry::with_store`")
    )]
    NoStore {
        /// What was asked.
        operation: &'static str,
    },
    /// A stored source compiles to other content than the hash it is stored under.
    #[error("the stored source of flow `{flow}` content {hash} compiles to content {got}")]
    #[diagnostic(
        code("flowc::registry::hash-mismatch"),
        help(
            "it was stored by flowc {compiler} (this is flowc {this}) or edited; restore the instance with the release that stored it"
        )
    )]
    HashMismatch {
        /// The flow.
        flow: String,
        /// The hash asked for.
        hash: String,
        /// The hash the stored source compiles to.
        got: String,
        /// The release that stored it.
        compiler: String,
        /// This release.
        this: &'static str,
    },
    /// A stored source no longer compiles.
    #[error("the stored source of flow `{flow}` content {hash} does not compile")]
    #[diagnostic(
        code("flowc::registry::stored-invalid"),
        help("it was stored by flowc {compiler} (this is flowc {this}) or edited")
    )]
    StoredInvalid {
        /// The flow.
        flow: String,
        /// The hash.
        hash: String,
        /// The release that stored it.
        compiler: String,
        /// This release.
        this: &'static str,
        /// Its diagnostics.
        #[related]
        diagnostics: Vec<crate::diagnostic::Diagnostic>,
    },
    /// The version store failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
}

impl crate::diagnostic::ErrorCode for RegistryError {
    fn code(&self) -> &'static str {
        match self {
            RegistryError::UnknownFlow { .. } => "flowc::registry::unknown-flow",
            RegistryError::UnknownVersion { .. } => "flowc::registry::unknown-version",
            RegistryError::Retired { .. } => "flowc::registry::retired",
            RegistryError::CanaryState { .. } => "flowc::registry::canary-state",
            RegistryError::CanaryShare { .. } => "flowc::registry::canary-share",
            RegistryError::Compile(_) => "flowc::registry::compile",
            RegistryError::Start(e) => crate::diagnostic::ErrorCode::code(e),
            RegistryError::RevisionTaken { .. } => "flowc::registry::revision-taken",
            RegistryError::NoStore { .. } => "flowc::registry::no-store",
            RegistryError::HashMismatch { .. } => "flowc::registry::hash-mismatch",
            RegistryError::StoredInvalid { .. } => "flowc::registry::stored-invalid",
            RegistryError::Store(e) => crate::diagnostic::ErrorCode::code(e),
        }
    }
}

/// A canary: a candidate version that a share of new instances (or those whose context
/// matches a selector) start on.
#[derive(Debug)]
pub struct Canary {
    /// The candidate.
    pub version: Arc<CompiledFlow>,
    /// Share of starts, in basis points (0–10,000), by a stable hash of the caller's key.
    pub basis_points: u32,
    /// A CEL condition over the context; when it holds the start goes to the candidate.
    pub selector: Option<(String, Condition)>,
}

#[derive(Debug, Default)]
struct Inner {
    history: Vec<HistoryEntry>,
    pins: HashMap<u64, usize>,
    next_revision: u64,
}

/// One flow's versions.
#[derive(Debug)]
struct Slot {
    id: String,
    active: ArcSwapOption<CompiledFlow>,
    canary: ArcSwapOption<Canary>,
    versions: ArcSwap<BTreeMap<u64, Arc<CompiledFlow>>>,
    inner: Mutex<Inner>,
}

impl Slot {
    fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            active: ArcSwapOption::empty(),
            canary: ArcSwapOption::empty(),
            versions: ArcSwap::from_pointee(BTreeMap::new()),
            inner: Mutex::new(Inner {
                next_revision: 1,
                ..Inner::default()
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // a writer that panicked left consistent data: every field is updated whole
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(inner: &mut Inner, action: Action, version: Option<VersionId>) {
        let seq = inner.history.len() as u64 + 1;
        inner.history.push(HistoryEntry {
            seq,
            action,
            version,
        });
    }

    /// Drops versions beyond the retention limit that nothing uses.
    fn prune(&self, inner: &Inner, retention: usize) {
        let versions = self.versions.load_full();
        if versions.len() <= retention {
            return;
        }
        let active = self.active.load_full().map(|a| a.version().revision);
        let canary = self
            .canary
            .load_full()
            .map(|c| c.version.version().revision);
        let keep_from = versions
            .keys()
            .rev()
            .nth(retention.saturating_sub(1))
            .copied();
        let kept: BTreeMap<u64, Arc<CompiledFlow>> = versions
            .iter()
            .filter(|(rev, flow)| {
                keep_from.is_none_or(|k| **rev >= k)
                    || Some(**rev) == active
                    || Some(**rev) == canary
                    || inner.pins.contains_key(rev)
                    // held by someone besides this map: a live instance (conservative:
                    // a reader's transient copy also keeps it, until the next prune)
                    || Arc::strong_count(flow) > 1
            })
            .map(|(r, f)| (*r, Arc::clone(f)))
            .collect();
        if kept.len() != versions.len() {
            self.versions.store(Arc::new(kept));
        }
    }

    fn insert(&self, flow: Arc<CompiledFlow>) {
        let mut map = BTreeMap::clone(&self.versions.load());
        map.insert(flow.version().revision, flow);
        self.versions.store(Arc::new(map));
    }
}

/// A flow resolved once: [`FlowHandle::active`] is one atomic load.
#[derive(Debug, Clone)]
pub struct FlowHandle(Arc<Slot>);

impl FlowHandle {
    /// The active version (`None` when retired).
    #[must_use]
    pub fn active(&self) -> Option<Arc<CompiledFlow>> {
        self.0.active.load_full()
    }

    /// The flow id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.0.id
    }
}

/// Compiled versions of many flows.
#[derive(Debug)]
pub struct Registry {
    options: Options,
    retention: usize,
    flows: ArcSwap<HashMap<String, Arc<Slot>>>,
    /// Serialises adding flows to the map (per-flow writers lock their slot).
    adding: Mutex<()>,
    /// Where versions are kept durably (none: memory only, not restart-safe).
    store: Option<Arc<dyn VersionStore>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new(Options::default())
    }
}

impl Registry {
    /// An empty registry compiling with `options`, keeping [`DEFAULT_RETENTION`] versions.
    #[must_use]
    pub fn new(options: Options) -> Self {
        Self::with_retention(options, DEFAULT_RETENTION)
    }

    /// An empty registry keeping `retention` unused versions per flow (at least 1).
    #[must_use]
    pub fn with_retention(options: Options, retention: usize) -> Self {
        Self {
            options,
            retention: retention.max(1),
            flows: ArcSwap::from_pointee(HashMap::new()),
            adding: Mutex::new(()),
            store: None,
        }
    }

    /// An empty registry that keeps every version it publishes in `store` and takes
    /// revisions from it: restart-safe (see the module docs). Keeps
    /// [`DEFAULT_RETENTION`] unused versions per flow in memory; older ones are loaded
    /// back from the store when asked for.
    #[must_use]
    pub fn with_store(options: Options, store: Arc<dyn VersionStore>) -> Self {
        Self {
            store: Some(store),
            ..Self::new(options)
        }
    }

    /// The same registry keeping `retention` unused versions per flow (at least 1) in
    /// memory, and by [`Registry::prune_store`] in the store.
    #[must_use]
    pub fn retaining(mut self, retention: usize) -> Self {
        self.retention = retention.max(1);
        self
    }

    /// The version store, if the registry has one.
    #[must_use]
    pub fn store(&self) -> Option<&Arc<dyn VersionStore>> {
        self.store.as_ref()
    }

    fn slot(&self, flow: &str) -> Option<Arc<Slot>> {
        self.flows.load().get(flow).cloned()
    }

    fn slot_or_err(&self, flow: &str) -> Result<Arc<Slot>, RegistryError> {
        self.slot(flow).ok_or_else(|| {
            let flows = self.flows.load();
            let help = match crate::diagnostic::did_you_mean(flow, flows.keys().map(String::as_str))
            {
                Some(s) => format!("did you mean `{s}`?"),
                None => "publish it first".to_owned(),
            };
            RegistryError::UnknownFlow {
                flow: flow.to_owned(),
                help,
            }
        })
    }

    fn slot_or_insert(&self, flow: &str) -> Arc<Slot> {
        if let Some(s) = self.slot(flow) {
            return s;
        }
        let _guard = self.adding.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = self.slot(flow) {
            return s;
        }
        let slot = Arc::new(Slot::new(flow));
        let mut map = HashMap::clone(&self.flows.load());
        map.insert(flow.to_owned(), Arc::clone(&slot));
        self.flows.store(Arc::new(map));
        slot
    }

    /// Compiles with the registry's options (publish it with
    /// [`Registry::publish_compiled`]).
    ///
    /// # Errors
    /// Every diagnostic of the source.
    pub fn compile(&self, name: &str, source: &[u8]) -> Result<CompiledFlow, Diagnostics> {
        let file = crate::load::source_from_bytes(name, source.to_vec())?;
        compile::compile(&file, &self.options)
    }

    /// Compiles `source` and makes it the flow's active version. Publishing the content
    /// that is already active changes nothing and returns its version. With a store the
    /// version is stored first and its revision is the store's (the same content keeps
    /// the revision it first got); without one it is the next of this process's counter.
    ///
    /// # Errors
    /// The diagnostics when it does not compile, or the store's error (as a diagnostic
    /// on the file); nothing changes then.
    pub fn publish(&self, name: &str, source: &[u8]) -> Result<VersionId, Diagnostics> {
        let compiled = self.compile(name, source)?;
        let file = Arc::clone(&compiled.flow().file);
        self.publish_compiled(compiled).map_err(|e| {
            let mut d = Diagnostics::new();
            d.add(&file, e);
            d
        })
    }

    /// Compiles `source` and makes it the flow's active version under the revision the
    /// caller names (a source with its own revisions: etcd's key revision). With a
    /// store the version is stored under that revision too. Content that is already
    /// active changes nothing and keeps its version (and revision).
    ///
    /// # Errors
    /// [`RegistryError::Compile`]; [`RegistryError::RevisionTaken`] when the revision
    /// names other content; the store's errors. Nothing changes then.
    pub fn publish_revision(
        &self,
        name: &str,
        source: &[u8],
        revision: u64,
    ) -> Result<VersionId, RegistryError> {
        let compiled = self
            .compile(name, source)
            .map_err(|d| RegistryError::Compile(d.into_iter().collect()))?;
        self.publish_compiled_with(compiled, Some(revision), &now_meta())
    }

    /// Makes a compiled flow the active version of its flow id (see
    /// [`Registry::publish`]).
    ///
    /// # Errors
    /// The store's errors; nothing changes then.
    pub fn publish_compiled(&self, compiled: CompiledFlow) -> Result<VersionId, RegistryError> {
        self.publish_compiled_with(compiled, None, &now_meta())
    }

    /// Makes a compiled flow the active version of its flow id, under `revision` when
    /// given (else the store's or the counter's, as [`Registry::publish`]), recording
    /// `meta` (who, when, why) in the store. The active content again is no change,
    /// unless `revision` names it anew (a source that republished the same content, as
    /// an etcd key's new mod revision): the version under the new revision becomes the
    /// active one, so the active revision is always the source's current one.
    ///
    /// # Errors
    /// [`RegistryError::RevisionTaken`] when the revision names other content; the
    /// store's errors. Nothing changes then.
    pub fn publish_compiled_with(
        &self,
        compiled: CompiledFlow,
        revision: Option<u64>,
        meta: &VersionMeta,
    ) -> Result<VersionId, RegistryError> {
        let slot = self.slot_or_insert(compiled.id());
        let mut inner = slot.lock();
        if let Some(active) = slot.active.load_full()
            && active.version().hash == compiled.version().hash
            && revision.is_none_or(|r| r == active.version().revision)
        {
            return Ok(active.version().clone());
        }
        let flow = self.name_version(&slot, &mut inner, compiled, revision, meta)?;
        let version = flow.version().clone();
        slot.insert(Arc::clone(&flow));
        slot.active.store(Some(flow));
        Slot::record(&mut inner, Action::Published, Some(version.clone()));
        slot.prune(&inner, self.retention);
        Ok(version)
    }

    /// Gives a compiled flow its revision (the caller's, the store's or the counter's),
    /// storing it when there is a store; reuses the kept copy of the same content.
    fn name_version(
        &self,
        slot: &Slot,
        inner: &mut Inner,
        compiled: CompiledFlow,
        revision: Option<u64>,
        meta: &VersionMeta,
    ) -> Result<Arc<CompiledFlow>, RegistryError> {
        let kept = slot.versions.load_full();
        let taken = |revision: u64| -> Result<Option<Arc<CompiledFlow>>, RegistryError> {
            match kept.get(&revision) {
                Some(f) if f.version().hash == compiled.version().hash => Ok(Some(Arc::clone(f))),
                Some(f) => Err(RegistryError::RevisionTaken {
                    flow: slot.id.clone(),
                    revision,
                    existing: f.version().hash.clone(),
                    hash: compiled.version().hash.clone(),
                }),
                None => Ok(None),
            }
        };
        let revision = match (&self.store, revision) {
            (None, None) => inner.next_revision,
            (None, Some(r)) => {
                if r == 0 {
                    return Err(StoreError::InvalidKey {
                        what: "revision",
                        value: "0".to_owned(),
                        reason: "revision 0 means unpublished",
                        help: "revisions start at 1",
                    }
                    .into());
                }
                r
            }
            (Some(store), r) => {
                // refuse before writing anything when memory already knows better
                if let Some(r) = r {
                    taken(r)?;
                }
                let file = &compiled.flow().file;
                let new = NewVersion {
                    flow: compiled.id(),
                    hash: &compiled.version().hash,
                    name: file.name(),
                    source: file.text().as_bytes(),
                    meta: meta.clone(),
                };
                match r {
                    Some(r) => store.put(&new, r)?.revision,
                    None => store.assign(&new)?.revision,
                }
            }
        };
        let existing = taken(revision)?;
        inner.next_revision = inner.next_revision.max(revision.saturating_add(1));
        Ok(existing.unwrap_or_else(|| Arc::new(compiled.with_revision(revision))))
    }

    /// The active version of a flow (`None`: unknown or retired). Lock-free.
    #[must_use]
    pub fn active(&self, flow: &str) -> Option<Arc<CompiledFlow>> {
        self.flows.load().get(flow)?.active.load_full()
    }

    /// Resolves a flow once, for repeated [`FlowHandle::active`] reads.
    #[must_use]
    pub fn handle(&self, flow: &str) -> Option<FlowHandle> {
        self.slot(flow).map(FlowHandle)
    }

    /// A kept version (for restoring instances). Lock-free; memory only (see
    /// [`Registry::load`] for the store).
    #[must_use]
    pub fn get(&self, version: &VersionId) -> Option<Arc<CompiledFlow>> {
        let slot = self.slot(&version.flow)?;
        let versions = slot.versions.load();
        versions
            .get(&version.revision)
            .filter(|f| f.version() == version)
            .cloned()
    }

    /// A kept version of `flow` with this content hash (the latest revision of it when
    /// the same content was published under several). Lock-free; memory only.
    #[must_use]
    pub fn get_by_hash(&self, flow: &str, hash: &str) -> Option<Arc<CompiledFlow>> {
        let slot = self.slot(flow)?;
        let versions = slot.versions.load();
        versions
            .values()
            .rev()
            .find(|f| f.version().hash == hash)
            .cloned()
    }

    /// The exact version if kept, else a kept one with the same content.
    fn find(&self, version: &VersionId) -> Option<Arc<CompiledFlow>> {
        self.get(version)
            .or_else(|| self.get_by_hash(&version.flow, &version.hash))
    }

    /// The version an instance names, found by its flow id and content hash: in memory
    /// (the exact version first), else loaded from the store, compiled, checked against
    /// the hash and kept (so retention, a restart or a fresh process do not lose it).
    /// The revision is the one `version` names when the store recorded the content under
    /// it, else the content's first.
    ///
    /// # Errors
    /// [`RegistryError::UnknownVersion`] when neither memory nor the store has it;
    /// [`RegistryError::HashMismatch`] / [`RegistryError::StoredInvalid`] when the
    /// stored source compiles to other content or not at all; the store's errors.
    pub fn load(&self, version: &VersionId) -> Result<Arc<CompiledFlow>, RegistryError> {
        if let Some(f) = self.find(version) {
            return Ok(f);
        }
        let unknown = || RegistryError::UnknownVersion {
            flow: version.flow.clone(),
            version: version.to_string(),
        };
        let Some(store) = &self.store else {
            return Err(unknown());
        };
        let Some(stored) = store.get(&version.flow, &version.hash)? else {
            return Err(unknown());
        };
        let this = env!("CARGO_PKG_VERSION");
        let compiled = self
            .compile(&stored.record.name, &stored.source)
            .map_err(|d| RegistryError::StoredInvalid {
                flow: version.flow.clone(),
                hash: version.hash.clone(),
                compiler: stored.record.compiler.clone(),
                this,
                diagnostics: d.into_iter().collect(),
            })?;
        if compiled.version().hash != version.hash || compiled.id() != version.flow {
            return Err(RegistryError::HashMismatch {
                flow: version.flow.clone(),
                hash: version.hash.clone(),
                got: compiled.version().hash.clone(),
                compiler: stored.record.compiler.clone(),
                this,
            });
        }
        let revision = if stored.revisions.contains(&version.revision) {
            version.revision
        } else {
            stored.record.revision
        };
        let slot = self.slot_or_insert(&version.flow);
        let mut inner = slot.lock();
        if let Some(f) = slot.versions.load().get(&revision) {
            // loaded meanwhile by another thread, or (an inconsistent store) other content
            return Ok(if f.version().hash == version.hash {
                Arc::clone(f)
            } else {
                Arc::new(compiled.with_revision(revision))
            });
        }
        let flow = Arc::new(compiled.with_revision(revision));
        slot.insert(Arc::clone(&flow));
        inner.next_revision = inner.next_revision.max(revision.saturating_add(1));
        Ok(flow)
    }

    /// Restores a persisted instance onto its version, found by flow id and content
    /// hash in memory or in the store ([`Registry::load`]).
    ///
    /// # Errors
    /// As [`Registry::load`]; [`RegistryError::Start`] with the runtime's error when
    /// the state does not fit the version.
    pub fn restore(&self, state: InstanceState) -> Result<Instance, RegistryError> {
        let flow = self.load(&state.version)?;
        Ok(Instance::restore(flow, state)?)
    }

    /// Every kept version of a flow, oldest first.
    #[must_use]
    pub fn versions(&self, flow: &str) -> Vec<VersionId> {
        self.slot(flow).map_or_else(Vec::new, |s| {
            s.versions
                .load()
                .values()
                .map(|f| f.version().clone())
                .collect()
        })
    }

    /// The flow ids in the registry, sorted.
    #[must_use]
    pub fn flows(&self) -> Vec<String> {
        let mut v: Vec<String> = self.flows.load().keys().cloned().collect();
        v.sort();
        v
    }

    /// Makes a kept version active again (with a store: any stored version).
    ///
    /// # Errors
    /// An unknown flow or a version that is not kept (nor stored).
    pub fn rollback(&self, version: &VersionId) -> Result<(), RegistryError> {
        let slot = self.slot_or_err(&version.flow)?;
        let flow = match self.get(version) {
            Some(f) => f,
            None if self.store.is_some() => self.load(version)?,
            None => {
                return Err(RegistryError::UnknownVersion {
                    flow: version.flow.clone(),
                    version: version.to_string(),
                });
            }
        };
        let mut inner = slot.lock();
        slot.active.store(Some(flow));
        Slot::record(&mut inner, Action::RolledBack, Some(version.clone()));
        Ok(())
    }

    /// The flow's history, oldest first.
    ///
    /// # Errors
    /// An unknown flow.
    pub fn history(&self, flow: &str) -> Result<Vec<HistoryEntry>, RegistryError> {
        Ok(self.slot_or_err(flow)?.lock().history.clone())
    }

    /// Stops new starts of a flow (its source was deleted); running instances and kept
    /// versions stay.
    ///
    /// # Errors
    /// An unknown flow.
    pub fn retire(&self, flow: &str) -> Result<(), RegistryError> {
        let slot = self.slot_or_err(flow)?;
        let mut inner = slot.lock();
        if slot.active.load().is_none() {
            return Ok(());
        }
        slot.active.store(None);
        if slot.canary.swap(None).is_some() {
            Slot::record(&mut inner, Action::Aborted, None);
        }
        Slot::record(&mut inner, Action::Retired, None);
        Ok(())
    }

    /// The source's history of `flow` was replaced (an etcd of another cluster, or one
    /// restored from a backup, at the same address): its revision numbers may now name
    /// other content than the versions kept here. Every kept version leaves the
    /// revision index, so the next publish under any revision is not refused as taken;
    /// the active version (and a canary) stay in use until replaced or retired, and
    /// running instances keep theirs. A store, when the registry has one, keeps its own
    /// revisions. Unknown flows are ignored.
    pub fn forget_revisions(&self, flow: &str) {
        let Some(slot) = self.slot(flow) else {
            return;
        };
        let _inner = slot.lock();
        slot.versions.store(Arc::new(BTreeMap::new()));
    }

    /// Keeps a version however old it gets (a persisted instance uses it); counted.
    /// With a store each pin is also an anonymous hold in the store (holder
    /// `pin:<unique>`), so the count survives restarts: an [`Registry::unpin`] in any
    /// process releases one of them. To see who holds what, name holders with
    /// [`Registry::hold`] instead.
    ///
    /// # Errors
    /// An unknown flow or version; the store's errors.
    pub fn pin(&self, version: &VersionId) -> Result<(), RegistryError> {
        let flow = if self.store.is_some() {
            self.load(version)?
        } else {
            self.slot_or_err(&version.flow)?;
            self.get(version)
                .ok_or_else(|| RegistryError::UnknownVersion {
                    flow: version.flow.clone(),
                    version: version.to_string(),
                })?
        };
        let slot = self.slot_or_err(&version.flow)?;
        let mut inner = slot.lock();
        if let Some(store) = &self.store {
            store.hold(flow.version(), &unique_pin_holder())?;
        }
        *inner.pins.entry(flow.version().revision).or_insert(0) += 1;
        Ok(())
    }

    /// Releases one [`Registry::pin`] (with a store: one anonymous store hold on the
    /// content, whichever process took it).
    ///
    /// # Errors
    /// An unknown flow; the store's errors.
    pub fn unpin(&self, version: &VersionId) -> Result<(), RegistryError> {
        let slot = match self.slot_or_err(&version.flow) {
            Ok(s) => s,
            // a fresh process releasing a pin an earlier one took
            Err(_) if self.store.is_some() => self.slot_or_insert(&version.flow),
            Err(e) => return Err(e),
        };
        let mut inner = slot.lock();
        let revision = self
            .find(version)
            .map_or(version.revision, |f| f.version().revision);
        if let Some(n) = inner.pins.get_mut(&revision) {
            *n -= 1;
            if *n == 0 {
                inner.pins.remove(&revision);
            }
        }
        if let Some(store) = &self.store {
            // another process may release the same pin hold at once: try the next
            for hold in store.holders(&version.flow, &version.hash)? {
                if hold.holder.starts_with(PIN_HOLDER_PREFIX)
                    && store.release(version, &hold.holder)?
                {
                    break;
                }
            }
        }
        slot.prune(&inner, self.retention);
        Ok(())
    }

    /// `holder` (an instance id, a host) holds `version` in the store: retention
    /// ([`Registry::prune_store`]) keeps it until [`Registry::release`]. Holding twice
    /// is one hold.
    ///
    /// # Errors
    /// [`RegistryError::NoStore`]; a holder name starting with `pin:` (reserved for
    /// [`Registry::pin`]); the store's errors (a version it does not have).
    pub fn hold(&self, version: &VersionId, holder: &str) -> Result<(), RegistryError> {
        let store = self.store_for("hold")?;
        if holder.starts_with(PIN_HOLDER_PREFIX) {
            return Err(StoreError::InvalidKey {
                what: "holder",
                value: crate::diagnostic::excerpt(holder),
                reason: "names starting with `pin:` are reserved for anonymous pins",
                help: "name the holder by an instance id or a host name",
            }
            .into());
        }
        Ok(store.hold(version, holder)?)
    }

    /// Ends `holder`'s hold on `version`; false when it held nothing.
    ///
    /// # Errors
    /// [`RegistryError::NoStore`]; the store's errors.
    pub fn release(&self, version: &VersionId, holder: &str) -> Result<bool, RegistryError> {
        Ok(self.store_for("release")?.release(version, holder)?)
    }

    /// Every hold in the store (named and `pin:` ones), sorted by flow, hash, holder.
    ///
    /// # Errors
    /// [`RegistryError::NoStore`]; the store's errors.
    pub fn held(&self) -> Result<Vec<Hold>, RegistryError> {
        Ok(self.store_for("held")?.held()?)
    }

    /// Applies retention to the store: deletes the stored source of every version of
    /// `flow` beyond the newest `retention` that is not held (nor pinned), active, a
    /// canary or used by a live instance of this registry. Returns what was deleted.
    /// Records stay: a deleted version's revision is never given to other content.
    ///
    /// # Errors
    /// [`RegistryError::NoStore`]; the store's errors.
    pub fn prune_store(&self, flow: &str) -> Result<Vec<VersionRecord>, RegistryError> {
        let store = self.store_for("prune_store")?;
        let mut hashes = Vec::new();
        if let Some(slot) = self.slot(flow) {
            let _inner = slot.lock();
            hashes.extend(slot.active.load_full().map(|a| a.version().hash.clone()));
            hashes.extend(
                slot.canary
                    .load_full()
                    .map(|c| c.version.version().hash.clone()),
            );
            hashes.extend(
                slot.versions
                    .load()
                    .values()
                    .filter(|f| Arc::strong_count(f) > 1)
                    .map(|f| f.version().hash.clone()),
            );
        }
        Ok(store.prune(
            flow,
            &Keep {
                newest: self.retention,
                hashes,
            },
        )?)
    }

    fn store_for(&self, operation: &'static str) -> Result<&Arc<dyn VersionStore>, RegistryError> {
        self.store
            .as_ref()
            .ok_or(RegistryError::NoStore { operation })
    }

    /// Starts a canary: `source` compiles to a candidate that new instances get for
    /// `percent` of start keys and/or whenever `selector` (CEL over the context) holds.
    ///
    /// # Errors
    /// A canary already running, a share outside 0–100, a compile error, another flow id.
    pub fn start_canary(
        &self,
        name: &str,
        source: &[u8],
        percent: f64,
        selector: Option<&str>,
    ) -> Result<VersionId, RegistryError> {
        if !(0.0..=100.0).contains(&percent) {
            return Err(RegistryError::CanaryShare {
                share: percent.to_string(),
            });
        }
        let compiled = self
            .compile(name, source)
            .map_err(|d| RegistryError::Compile(d.into_iter().collect()))?;
        let slot = self.slot_or_err(compiled.id())?;
        let selector = selector
            .map(|text| {
                compiled
                    .compile_condition("selector", text)
                    .map(|c| (text.to_owned(), c))
                    .map_err(|d| RegistryError::Compile(d.into_iter().collect()))
            })
            .transpose()?;
        let mut inner = slot.lock();
        if slot.canary.load().is_some() {
            return Err(RegistryError::CanaryState {
                message: format!("flow `{}` already has a canary", slot.id),
                help: "promote or abort it first".to_owned(),
            });
        }
        let flow = self.name_version(&slot, &mut inner, compiled, None, &now_meta())?;
        let version = flow.version().clone();
        slot.insert(Arc::clone(&flow));
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "0..=100 percent checked above: 0..=10,000 basis points"
        )]
        let basis_points = (percent * 100.0).round() as u32;
        slot.canary.store(Some(Arc::new(Canary {
            version: flow,
            basis_points,
            selector,
        })));
        Slot::record(&mut inner, Action::CanaryStarted, Some(version.clone()));
        Ok(version)
    }

    fn end_canary(&self, flow: &str, promote: bool) -> Result<VersionId, RegistryError> {
        let slot = self.slot_or_err(flow)?;
        let mut inner = slot.lock();
        let Some(canary) = slot.canary.swap(None) else {
            return Err(RegistryError::CanaryState {
                message: format!("flow `{flow}` has no canary"),
                help: "start one with `start_canary`".to_owned(),
            });
        };
        let version = canary.version.version().clone();
        if promote {
            slot.active.store(Some(Arc::clone(&canary.version)));
            Slot::record(&mut inner, Action::Promoted, Some(version.clone()));
        } else {
            Slot::record(&mut inner, Action::Aborted, Some(version.clone()));
        }
        slot.prune(&inner, self.retention);
        Ok(version)
    }

    /// Makes the canary's candidate the active version.
    ///
    /// # Errors
    /// An unknown flow or no canary.
    pub fn promote(&self, flow: &str) -> Result<VersionId, RegistryError> {
        self.end_canary(flow, true)
    }

    /// Withdraws the canary; new instances all get the active version again.
    ///
    /// # Errors
    /// An unknown flow or no canary.
    pub fn abort_canary(&self, flow: &str) -> Result<VersionId, RegistryError> {
        self.end_canary(flow, false)
    }

    /// The running canary of a flow.
    #[must_use]
    pub fn canary(&self, flow: &str) -> Option<Arc<Canary>> {
        self.slot(flow)?.canary.load_full()
    }

    /// The version a new instance starts on: the canary's candidate when the context
    /// matches its selector or the key hashes into its share, else the active version.
    ///
    /// # Errors
    /// An unknown or retired flow.
    pub fn version_for(
        &self,
        flow: &str,
        key: &str,
        context: &serde_json::Value,
    ) -> Result<Arc<CompiledFlow>, RegistryError> {
        let slot = self.slot_or_err(flow)?;
        if let Some(c) = slot.canary.load_full() {
            let selected = c.selector.as_ref().is_some_and(|(_, cond)| {
                runtime::context::bind(&c.version, context)
                    .is_ok_and(|(_, mut b)| cond.eval(c.version.sandbox(), &mut b).unwrap_or(false))
            });
            let bucket = stable_hash(&[flow.as_bytes(), key.as_bytes()]) % 10_000;
            if selected || bucket < u64::from(c.basis_points) {
                return Ok(Arc::clone(&c.version));
            }
        }
        slot.active.load_full().ok_or_else(|| {
            if slot.lock().history.is_empty() {
                // only loaded from the store (to restore instances), never published here
                RegistryError::UnknownFlow {
                    flow: flow.to_owned(),
                    help: "it has only versions loaded to restore instances; publish it to start new ones".to_owned(),
                }
            } else {
                RegistryError::Retired {
                    flow: flow.to_owned(),
                }
            }
        })
    }

    /// Starts an instance on [`Registry::version_for`]; it stays on that version.
    ///
    /// # Errors
    /// An unknown or retired flow, or a context that does not fit.
    pub fn start(
        &self,
        flow: &str,
        key: &str,
        context: impl runtime::IntoContext,
        at: u64,
    ) -> Result<(Instance, Vec<Effect>), RegistryError> {
        let version = self.version_for(flow, key, context.json())?;
        Ok(Instance::start(version, context, at)?)
    }
}

/// Metadata of a publish through the plain API: the time only.
fn now_meta() -> VersionMeta {
    VersionMeta {
        time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs()),
        ..VersionMeta::default()
    }
}

/// A holder name for one anonymous pin, unique across processes and time.
fn unique_pin_holder() -> String {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{PIN_HOLDER_PREFIX}{}.{nanos}.{seq}", std::process::id())
}
