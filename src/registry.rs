//! Stage 8: the registry — compiled versions per flow, swapped atomically (arc-swap) so
//! that readers never block, with pinning, rollback, retention and canary releases.
//!
//! Reads ([`Registry::active`], [`FlowHandle::active`], [`Registry::get`]) are
//! lock-free. Writers (publish, rollback, canary, retire) take the flow's mutex, so they
//! are serialised per flow; a publish that does not compile changes nothing.
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
use crate::diagnostic::Diagnostics;
use crate::runtime::{self, Effect, Instance, RuntimeError};

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
    #[error("no flow `{flow}` in the registry")]
    #[diagnostic(code("flowc::registry::unknown-flow"), help("{help}"))]
    UnknownFlow {
        /// The id asked for.
        flow: String,
        /// Did-you-mean or the known flows.
        help: String,
    },
    /// The version is not (or no longer) kept.
    #[error("flow `{flow}` has no version {version}")]
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
    /// The candidate or the selector does not compile.
    #[error("the candidate or its selector does not compile")]
    #[diagnostic(code("flowc::registry::compile"))]
    Compile(#[related] Vec<crate::diagnostic::Diagnostic>),
    /// Starting the instance failed (its context).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Start(#[from] RuntimeError),
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
        }
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
    /// that is already active changes nothing and returns its version.
    ///
    /// # Errors
    /// The diagnostics when it does not compile; nothing changes then.
    pub fn publish(&self, name: &str, source: &[u8]) -> Result<VersionId, Diagnostics> {
        Ok(self.publish_compiled(self.compile(name, source)?))
    }

    /// Makes a compiled flow the active version of its flow id (see
    /// [`Registry::publish`]).
    pub fn publish_compiled(&self, compiled: CompiledFlow) -> VersionId {
        let slot = self.slot_or_insert(compiled.id());
        let mut inner = slot.lock();
        if let Some(active) = slot.active.load_full()
            && active.version().hash == compiled.version().hash
        {
            return active.version().clone();
        }
        let flow = Arc::new(compiled.with_revision(inner.next_revision));
        inner.next_revision += 1;
        let version = flow.version().clone();
        slot.insert(Arc::clone(&flow));
        slot.active.store(Some(flow));
        Slot::record(&mut inner, Action::Published, Some(version.clone()));
        slot.prune(&inner, self.retention);
        version
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

    /// A kept version (for restoring instances). Lock-free.
    #[must_use]
    pub fn get(&self, version: &VersionId) -> Option<Arc<CompiledFlow>> {
        let slot = self.slot(&version.flow)?;
        let versions = slot.versions.load();
        versions
            .get(&version.revision)
            .filter(|f| f.version() == version)
            .cloned()
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

    /// Makes a kept version active again.
    ///
    /// # Errors
    /// An unknown flow or a version that is not kept.
    pub fn rollback(&self, version: &VersionId) -> Result<(), RegistryError> {
        let slot = self.slot_or_err(&version.flow)?;
        let mut inner = slot.lock();
        let Some(flow) = self.get(version) else {
            return Err(RegistryError::UnknownVersion {
                flow: version.flow.clone(),
                version: version.to_string(),
            });
        };
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

    /// Keeps a version however old it gets (a persisted instance uses it); counted.
    ///
    /// # Errors
    /// An unknown flow or version.
    pub fn pin(&self, version: &VersionId) -> Result<(), RegistryError> {
        let slot = self.slot_or_err(&version.flow)?;
        let mut inner = slot.lock();
        if self.get(version).is_none() {
            return Err(RegistryError::UnknownVersion {
                flow: version.flow.clone(),
                version: version.to_string(),
            });
        }
        *inner.pins.entry(version.revision).or_insert(0) += 1;
        Ok(())
    }

    /// Releases one [`Registry::pin`].
    ///
    /// # Errors
    /// An unknown flow.
    pub fn unpin(&self, version: &VersionId) -> Result<(), RegistryError> {
        let slot = self.slot_or_err(&version.flow)?;
        let mut inner = slot.lock();
        if let Some(n) = inner.pins.get_mut(&version.revision) {
            *n -= 1;
            if *n == 0 {
                inner.pins.remove(&version.revision);
            }
        }
        slot.prune(&inner, self.retention);
        Ok(())
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
        let flow = Arc::new(compiled.with_revision(inner.next_revision));
        inner.next_revision += 1;
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
        slot.active
            .load_full()
            .ok_or_else(|| RegistryError::Retired {
                flow: flow.to_owned(),
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
        context: &serde_json::Value,
        at: u64,
    ) -> Result<(Instance, Vec<Effect>), RegistryError> {
        let version = self.version_for(flow, key, context)?;
        Ok(Instance::start(version, context, at)?)
    }
}
