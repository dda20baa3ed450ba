//! The text of one expression and the map from its bytes back to the flow file.

use crate::span::Span;

/// The source text of one expression and how to map it back to the file.
#[derive(Clone, Debug, PartialEq)]
pub struct ExprSource {
    /// The decoded expression text.
    pub text: String,
    /// The span of the whole YAML scalar.
    pub span: Span,
    /// For each byte of `text` (and one past the end), its byte offset in the file;
    /// empty for a value a YAML alias put in place, which is all at the alias (`span`).
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

    /// The expression as messages and traces quote it: its text without the white space
    /// around it (a block scalar's last line break), from [`ExprSource::start`] on, on
    /// one line: a line break inside it and the indentation after it read as one space
    /// (a note stays one line; probe q11f nit 3).
    #[must_use]
    pub fn written(&self) -> std::borrow::Cow<'_, str> {
        let text = self.text.trim();
        if !text.contains(['\n', '\r']) {
            return std::borrow::Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if i > 0 && !out.is_empty() {
                out.push(' ');
            }
            out.push_str(line);
        }
        std::borrow::Cow::Owned(out)
    }

    /// Where the expression starts in the file: its first character that is not white
    /// space (after a quoted scalar's quote), as `check` places a diagnostic at the
    /// start of the whole expression; the scalar's start for a blank text.
    #[must_use]
    pub fn start(&self) -> usize {
        let lead = self.text.len() - self.text.trim_start().len();
        if lead == self.text.len() {
            return self.span.start;
        }
        self.map_span(lead, lead).start
    }

    /// Maps a span inside `text` to a span in the file, widened to whole characters:
    /// a span never starts or ends inside a UTF-8 character, in the expression or in
    /// the file (the file offset of a character's last byte is not the offset of its
    /// end, so the end is computed from the character's first byte and its length).
    #[must_use]
    pub fn map_span(&self, start: usize, end: usize) -> Span {
        if self.offsets.is_empty() {
            return self.span;
        }
        let floor = |mut i: usize| {
            i = i.min(self.text.len());
            while i > 0 && !self.text.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        let start = floor(start);
        let s = self.offsets.get(start).copied().unwrap_or(self.span.end);
        if end <= start {
            return Span::new(s, s);
        }
        let last = floor(end - 1);
        let width = self
            .text
            .get(last..)
            .and_then(|r| r.chars().next())
            .map_or(1, char::len_utf8);
        let e = self
            .offsets
            .get(last)
            .map_or(self.span.end, |o| o + width)
            .max(s + 1);
        Span::new(s, e)
    }
}
