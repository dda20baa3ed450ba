//! The text of one expression and the map from its bytes back to the flow file.

use crate::span::Span;

/// The source text of one expression and how to map it back to the file.
#[derive(Clone, Debug, PartialEq)]
pub struct ExprSource {
    /// The decoded expression text.
    pub text: String,
    /// The span of the whole YAML scalar.
    pub span: Span,
    /// For each byte of `text` (and one past the end), its byte offset in the file.
    pub offsets: Vec<usize>,
}

impl ExprSource {
    /// An expression not read from a file (tests, the CLI): offsets are the identity.
    #[must_use]
    pub fn detached(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            span: Span::new(0, text.len()),
            offsets: (0..=text.len()).collect(),
        }
    }

    /// Maps a span inside `text` to a span in the file.
    #[must_use]
    pub fn map_span(&self, start: usize, end: usize) -> Span {
        let s = self.offsets.get(start).copied().unwrap_or(self.span.end);
        let e = if end > start {
            self.offsets
                .get(end - 1)
                .map_or(self.span.end, |o| o + 1)
                .max(s + 1)
        } else {
            s
        };
        Span::new(s, e)
    }
}
