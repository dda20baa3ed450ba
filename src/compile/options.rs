//! Compiler options: the loader's bounds, the sandbox and the evaluation path.

use std::sync::{Arc, OnceLock};

use crate::limits::{Limits, LoadLimits};
use crate::sandbox::Sandbox;

/// Compiler options.
#[derive(Clone, Debug)]
pub struct Options {
    /// Loader bounds.
    pub load: LoadLimits,
    /// The sandbox programs are compiled for.
    pub sandbox: Arc<Sandbox>,
    /// Which path evaluates conditions, decisions and assignee expressions.
    pub evaluator: Evaluator,
}

/// The evaluation path a host selects. Both give the same values and errors (the
/// differential tests hold them equal); every condition is compiled for both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Evaluator {
    /// The lowered IR, run directly (the default; see [`crate::expr::eval`]).
    #[default]
    Direct,
    /// The sandboxed Rhai programs.
    Sandbox,
}

impl Options {
    /// Options with these limits: the loader's, and a sandbox built with the sandbox's
    /// (a new engine; [`Options::default`] shares one).
    #[must_use]
    pub fn new(limits: &Limits) -> Self {
        Self {
            load: limits.load.clone(),
            sandbox: Arc::new(Sandbox::new(limits.sandbox.clone())),
            evaluator: Evaluator::default(),
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        static SHARED: OnceLock<Arc<Sandbox>> = OnceLock::new();
        Self {
            load: LoadLimits::default(),
            sandbox: Arc::clone(SHARED.get_or_init(|| Arc::new(Sandbox::default()))),
            evaluator: Evaluator::default(),
        }
    }
}
