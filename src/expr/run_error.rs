//! How an evaluation fails: the same kinds on the direct path and in the sandbox.

use super::value::OpError;

/// A run-time error of an evaluation, on the direct path or in the sandbox (which maps
/// Rhai's errors back onto it).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// A CEL operation failed.
    #[error(transparent)]
    Op(#[from] OpError),
    /// A sandbox bound was hit.
    #[error("sandbox limit reached: {0}")]
    Limit(String),
    /// A declared variable had no value.
    #[error("no value for `{0}`")]
    Unbound(String),
    /// More than one rule holds under `hitPolicy: unique` (0-based rule indices).
    #[error("rules {} hold together under `unique`", crate::diagnostic::bounded_list(&.0.iter().map(|i| (i + 1).to_string()).collect::<Vec<_>>(), ", "))]
    NotUnique(Vec<usize>),
    /// The result was not of the expected type.
    #[error("expected {expected}, got {got}")]
    ResultType {
        /// Expected type.
        expected: &'static str,
        /// Actual type.
        got: String,
    },
}
