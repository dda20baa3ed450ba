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
    /// A bound was hit (the budget, a size): never absorbed by `&&`/`||`, so the
    /// evaluation fails closed. Made by the constructors below, which name the bound.
    #[error("{0}")]
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

impl RunError {
    /// The evaluation budget ran out.
    #[must_use]
    pub fn budget(max_operations: u64) -> RunError {
        RunError::Limit(format!(
            "the evaluation budget of {} operations ran out",
            grouped(max_operations)
        ))
    }

    /// A string longer than the bound was built.
    #[must_use]
    pub fn string_too_long(max_bytes: usize) -> RunError {
        RunError::Limit(format!(
            "a string longer than the limit of {} bytes",
            grouped(max_bytes as u64)
        ))
    }

    /// A list longer than the bound was built.
    #[must_use]
    pub fn list_too_long(max_elements: usize) -> RunError {
        RunError::Limit(format!(
            "a list longer than the limit of {} elements",
            grouped(max_elements as u64)
        ))
    }

    /// A map larger than the bound was built.
    #[must_use]
    pub fn map_too_large(max_entries: usize) -> RunError {
        RunError::Limit(format!(
            "a map larger than the limit of {} entries",
            grouped(max_entries as u64)
        ))
    }

    /// Calls nested deeper than the bound.
    #[must_use]
    pub fn calls_too_deep(max_levels: usize) -> RunError {
        RunError::Limit(format!(
            "calls nested deeper than the limit of {} levels",
            grouped(max_levels as u64)
        ))
    }
}

/// `100000` as `100,000`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
