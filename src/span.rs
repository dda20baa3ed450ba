//! Source locations shared by every stage.
//!
//! A [`SourceFile`] owns the text of one flow file; a [`Span`] is a byte range into it.
//! saphyr reports positions in characters, miette wants bytes: the conversion happens
//! once, here, in [`SourceFile::byte_offset`].

use std::fmt;
use std::sync::Arc;

/// One loaded source file: its display name and its full text.
#[derive(Debug)]
pub struct SourceFile {
    name: String,
    text: String,
    /// Byte offset of each line start (line 0 at index 0).
    line_starts: Vec<usize>,
    /// `Some` when the text is not pure ASCII: the byte offset of every character index.
    char_to_byte: Option<Vec<usize>>,
}

impl SourceFile {
    /// Wraps `text` under the display name `name` (usually the path).
    #[must_use]
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Arc<Self> {
        let text = text.into();
        let mut line_starts = vec![0];
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                line_starts.push(i + 1);
            }
        }
        let char_to_byte = if text.is_ascii() {
            None
        } else {
            let mut v: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
            v.push(text.len());
            Some(v)
        };
        Arc::new(Self {
            name: name.into(),
            text,
            line_starts,
            char_to_byte,
        })
    }

    /// The display name (the path as given).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The whole text.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Converts a character index (as saphyr counts) into a byte offset.
    #[must_use]
    pub fn byte_offset(&self, char_index: usize) -> usize {
        match &self.char_to_byte {
            None => char_index.min(self.text.len()),
            Some(v) => v.get(char_index).copied().unwrap_or(self.text.len()),
        }
    }

    /// 1-based line and column (column counted in characters) of a byte offset.
    #[must_use]
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.line_starts.get(line).copied().unwrap_or(0);
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line + 1, col + 1)
    }

    /// The text under a span (empty when the span is out of range).
    #[must_use]
    pub fn slice(&self, span: Span) -> &str {
        self.text.get(span.start..span.end).unwrap_or("")
    }
}

/// A byte range `start..end` in a [`SourceFile`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    /// Inclusive start byte.
    pub start: usize,
    /// Exclusive end byte.
    pub end: usize,
}

impl Span {
    /// A span from `start` to `end` (bytes).
    #[must_use]
    pub fn new(start: usize, end: usize) -> Self {
        Self {
            start,
            end: end.max(start),
        }
    }

    /// Length in bytes.
    #[must_use]
    pub fn len(self) -> usize {
        self.end - self.start
    }

    /// True for an empty span.
    #[must_use]
    pub fn is_empty(self) -> bool {
        self.start == self.end
    }

    /// The smallest span covering both.
    #[must_use]
    pub fn join(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(s: Span) -> Self {
        miette::SourceSpan::new(s.start.into(), s.len())
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_ascii_offsets_and_columns() {
        let f = SourceFile::new("t.yaml", "name: 报销\nid: x\n");
        // character 8 is the newline after the two CJK characters (3 bytes each)
        assert_eq!(f.byte_offset(8), 12);
        assert_eq!(f.line_col(12), (1, 9));
        assert_eq!(f.line_col(13), (2, 1));
        assert_eq!(f.line_col(f.byte_offset(7)), (1, 8));
    }
}
