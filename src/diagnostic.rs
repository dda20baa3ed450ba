//! Diagnostics: every stage's typed error, tied to the file it points into.
//!
//! Each stage has its own `thiserror` + `miette::Diagnostic` enum carrying spans only.
//! [`Diagnostic`] pairs one of them with its [`SourceFile`] so that it can be rendered
//! (miette) or flattened to `file:line:column` (JSON, GitHub annotations).

use std::fmt;
use std::sync::Arc;

use miette::{LabeledSpan, MietteSpanContents, SourceCode, SpanContents};

use crate::span::{SourceFile, Span};

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The flow is still valid; `--deny-warnings` turns it into a failure.
    Warning,
    /// The flow is rejected.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// A stable error code (`flowc::runtime::stale`), reachable without depending on miette.
///
/// Implemented by the errors a host sees at run time ([`crate::runtime::RuntimeError`],
/// [`crate::runtime::ContextError`], the registry's and the store's errors).
pub trait ErrorCode {
    /// The code, as in diagnostics and JSON output.
    fn code(&self) -> &'static str;
}

/// A stage error that can be attached to a file.
pub trait StageError: miette::Diagnostic + Send + Sync + 'static {}
impl<T: miette::Diagnostic + Send + Sync + 'static> StageError for T {}

/// One diagnostic of one file.
pub struct Diagnostic {
    file: Arc<SourceFile>,
    inner: Box<dyn miette::Diagnostic + Send + Sync>,
    /// Secondary labels shown after the primary snippet (computed on first render).
    notes: std::sync::OnceLock<Vec<Note>>,
}

impl Diagnostic {
    /// Attaches a stage error to the file it points into.
    pub fn new(file: &Arc<SourceFile>, error: impl StageError) -> Self {
        Self {
            file: Arc::clone(file),
            inner: Box::new(error),
            notes: std::sync::OnceLock::new(),
        }
    }

    /// The file this diagnostic points into.
    #[must_use]
    pub fn file(&self) -> &Arc<SourceFile> {
        &self.file
    }

    /// The stable code, e.g. `flowc::graph::unknown-step`.
    #[must_use]
    pub fn code(&self) -> String {
        self.inner.code().map(|c| c.to_string()).unwrap_or_default()
    }

    /// The code as the typed table knows it ([`crate::codes`]); `None` only for a code
    /// missing from the table (a test keeps the table complete).
    #[must_use]
    pub fn code_id(&self) -> Option<crate::codes::Code> {
        crate::codes::Code::parse(&self.code())
    }

    /// Error or warning.
    #[must_use]
    pub fn severity(&self) -> Severity {
        match self.inner.severity() {
            Some(miette::Severity::Warning | miette::Severity::Advice) => Severity::Warning,
            _ => Severity::Error,
        }
    }

    /// The one-line message.
    #[must_use]
    pub fn message(&self) -> String {
        self.inner.to_string()
    }

    /// How to fix it, when known.
    #[must_use]
    pub fn help(&self) -> Option<String> {
        self.inner.help().map(|h| h.to_string())
    }

    /// The primary span (the first label, or the primary one when marked).
    #[must_use]
    pub fn span(&self) -> Option<Span> {
        let labels: Vec<LabeledSpan> = self.inner.labels()?.collect();
        let primary = labels
            .iter()
            .find(|l| l.primary())
            .or_else(|| labels.first())?;
        Some(Span::new(
            primary.offset(),
            primary.offset() + primary.len(),
        ))
    }

    /// 1-based line and column of the primary span (1:1 when there is none).
    #[must_use]
    pub fn line_col(&self) -> (usize, usize) {
        self.span().map_or((1, 1), |s| self.file.line_col(s.start))
    }

    /// The underlying stage error, for tests that match on variants.
    #[must_use]
    pub fn inner(&self) -> &(dyn miette::Diagnostic + Send + Sync) {
        self.inner.as_ref()
    }

    /// Sort key: file, position, code (deterministic output).
    fn sort_key(&self) -> (String, usize, String) {
        (
            self.file.name().to_owned(),
            self.span().map_or(0, |s| s.start),
            self.code(),
        )
    }
}

impl fmt::Debug for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (line, col) = self.line_col();
        write!(
            f,
            "{}:{line}:{col}: {} [{}] {}",
            self.file.name(),
            self.severity(),
            self.code(),
            self.message()
        )
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.inner.code()
    }
    fn severity(&self) -> Option<miette::Severity> {
        self.inner.severity()
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.inner.help()
    }
    fn url<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.inner.url()
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(self.file.as_ref())
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let (shown, _) = self.split_labels()?;
        Some(Box::new(shown.into_iter()))
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        let notes = self.notes.get_or_init(|| {
            self.split_labels()
                .map(|(_, moved)| moved.into_iter().map(Note).collect())
                .unwrap_or_default()
        });
        if notes.is_empty() {
            return self.inner.related();
        }
        let own = self.inner.related().into_iter().flatten();
        Some(Box::new(
            own.chain(notes.iter().map(|n| n as &dyn miette::Diagnostic)),
        ))
    }
}

/// A label of a diagnostic shown after it, as a note: a secondary place (`first defined
/// here`) far before the primary one.
#[derive(Debug)]
struct Note(LabeledSpan);

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.label().unwrap_or("see also"))
    }
}

impl std::error::Error for Note {}

impl miette::Diagnostic for Note {
    fn severity(&self) -> Option<miette::Severity> {
        Some(miette::Severity::Advice)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(std::iter::once(self.0.clone())))
    }
}

impl Diagnostic {
    /// The labels as rendered: the primary one (marked, else the first declared) is
    /// marked primary, so the snippet header names the offending place in every format;
    /// secondary labels in snippets before the primary's (renderers show snippets in
    /// file order) are split off to be shown as notes after it. Snippets are grouped as
    /// miette groups them: one line of context each side, merged when they touch.
    fn split_labels(&self) -> Option<(Vec<LabeledSpan>, Vec<LabeledSpan>)> {
        let mut labels: Vec<LabeledSpan> = self.inner.labels()?.collect();
        let primary = labels.iter().position(LabeledSpan::primary).unwrap_or(0);
        if let Some(p) = labels.get_mut(primary) {
            *p = LabeledSpan::new_primary_with_span(p.label().map(str::to_owned), *p.inner());
        }
        let primary_offset = labels.get(primary)?.offset();
        let mut order: Vec<usize> = (0..labels.len()).collect();
        order.sort_by_key(|&i| labels.get(i).map_or(0, LabeledSpan::offset));
        // the line range of each snippet group (0-based, with one line of context)
        let lines = |l: &LabeledSpan| {
            let first = self.file.line_col(l.offset()).0.saturating_sub(1);
            let last = self
                .file
                .line_col(l.offset() + l.len().saturating_sub(1))
                .0
                .saturating_sub(1);
            (first.saturating_sub(1), last + 1)
        };
        let mut group_of = vec![0usize; labels.len()];
        let mut group = 0usize;
        let mut end: Option<usize> = None;
        for &i in &order {
            let Some(l) = labels.get(i) else { continue };
            let (first, last) = lines(l);
            if let Some(e) = end
                && e + 1 < first
            {
                group += 1;
            }
            end = Some(end.map_or(last, |e| e.max(last)));
            if let Some(g) = group_of.get_mut(i) {
                *g = group;
            }
        }
        let primary_group = group_of.get(primary).copied().unwrap_or(0);
        let (mut shown, mut moved) = (Vec::new(), Vec::new());
        for (i, l) in labels.into_iter().enumerate() {
            if group_of.get(i).copied().unwrap_or(0) < primary_group && l.offset() < primary_offset
            {
                moved.push(l);
            } else {
                shown.push(l);
            }
        }
        Some((shown, moved))
    }
}

impl SourceCode for SourceFile {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, miette::MietteError> {
        let inner = self
            .text()
            .read_span(span, context_lines_before, context_lines_after)?;
        // miette counts columns in bytes; flowc counts characters everywhere (the header
        // `file:line:col` must agree with JSON and GitHub output)
        let (_, column) = self.line_col(inner.span().offset());
        Ok(Box::new(MietteSpanContents::new_named(
            self.name().to_owned(),
            inner.data(),
            *inner.span(),
            inner.line(),
            column - 1,
            inner.line_count(),
        )))
    }
}

/// All diagnostics of a run, in deterministic order once [`Diagnostics::sort`] ran.
#[derive(Default, Debug)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// An empty collection.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one.
    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    /// Adds a stage error for `file`.
    pub fn add(&mut self, file: &Arc<SourceFile>, error: impl StageError) {
        self.items.push(Diagnostic::new(file, error));
    }

    /// Moves all of `other` in.
    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    /// Number of errors.
    #[must_use]
    pub fn error_count(&self) -> usize {
        self.items
            .iter()
            .filter(|d| d.severity() == Severity::Error)
            .count()
    }

    /// Number of warnings.
    #[must_use]
    pub fn warning_count(&self) -> usize {
        self.items.len() - self.error_count()
    }

    /// True when at least one is an error.
    #[must_use]
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity() == Severity::Error)
    }

    /// True when empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Number of diagnostics.
    #[must_use]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Iterates in stored order.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.items.iter()
    }

    /// Orders by file, position and code.
    pub fn sort(&mut self) {
        self.items.sort_by_cached_key(Diagnostic::sort_key);
    }
}

/// One line per diagnostic: `file:line:column: severity[code]: message`, so that
/// `registry.publish(...)?` in a host gives a readable error.
impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, d) in self.items.iter().enumerate() {
            if n > 0 {
                writeln!(f)?;
            }
            let (line, col) = d.line_col();
            write!(
                f,
                "{}:{line}:{col}: {}[{}]: {}",
                d.file().name(),
                d.severity(),
                d.code(),
                d.message()
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

/// Edit distance for "did you mean" suggestions.
#[must_use]
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    // one row of the edit-distance table at a time
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for ((cb, diag), up) in b.iter().zip(&prev).zip(prev.iter().skip(1)) {
            let left = cur.last().copied().unwrap_or(usize::MAX);
            cur.push((diag + usize::from(ca != *cb)).min(up + 1).min(left + 1));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

/// The closest candidate within a third of the word's length (at least 1 edit, at most 3);
/// failing that, the one candidate that shares a long prefix with the word (at least 5
/// characters and half the word: `sequentail` → `sequence`).
#[must_use]
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    let candidates: Vec<&str> = candidates.into_iter().collect();
    let len = word.chars().count();
    let close = candidates
        .iter()
        // the distance is at least the difference in length: skip the rest unmeasured
        // (thousands of unknown references against thousands of steps stay linear-ish)
        .filter(|c| c.chars().count().abs_diff(len) <= limit)
        .map(|c| (levenshtein(word, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)))
        .map(|(_, c)| c.to_owned());
    if close.is_some() {
        return close;
    }
    let prefix = |c: &str| {
        word.chars()
            .zip(c.chars())
            .take_while(|(a, b)| a == b)
            .count()
    };
    let need = (word.chars().count().div_ceil(2)).max(5);
    let mut best: Vec<(usize, &str)> = candidates
        .iter()
        .map(|c| (prefix(c), *c))
        .filter(|(p, _)| *p >= need)
        .collect();
    best.sort_by_key(|b| std::cmp::Reverse(b.0));
    match best.as_slice() {
        [(p, c), rest @ ..] if rest.first().is_none_or(|(q, _)| q < p) => Some((*c).to_owned()),
        _ => None,
    }
}

/// A help text with a suggestion when one exists.
#[must_use]
pub fn suggestion_help(suggestion: Option<&str>, fallback: &str) -> String {
    match suggestion {
        Some(s) => format!("did you mean `{s}`?"),
        None => fallback.to_owned(),
    }
}

/// Most items a diagnostic lists; the rest are counted ("… and N more").
pub const MAX_LISTED: usize = 5;

/// The first [`MAX_LISTED`] items joined by `sep`, then `… and N more` when there are more.
#[must_use]
pub fn bounded_list<S: AsRef<str>>(items: &[S], sep: &str) -> String {
    let mut parts: Vec<&str> = items.iter().take(MAX_LISTED).map(AsRef::as_ref).collect();
    let rest = items.len().saturating_sub(MAX_LISTED);
    let more = format!("… and {rest} more");
    if rest > 0 {
        parts.push(&more);
    }
    parts.join(sep)
}

/// A value of a flow file as a message shows it (the schema's and the model's messages
/// alike): a string as written, quoted only when it would read as another kind (`"1"`,
/// `"true"`); any other value as JSON; cut as [`excerpt`] cuts it.
#[must_use]
pub fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) if serde_json::from_str::<serde_json::Value>(s).is_err() => {
            excerpt(s)
        }
        other => excerpt(&other.to_string()),
    }
}

/// A value quoted in a message, cut by the one rule every message quotes input by
/// ([`quote`]: at most [`QUOTED_CHARS`] characters, then `… (N bytes)`).
#[must_use]
pub fn excerpt(text: &str) -> String {
    quote(text).into_owned()
}

/// Most characters of a value an error message quotes (nit 5 of q11d): a message
/// built from a context value stays bounded whatever the value's size.
pub const QUOTED_CHARS: usize = 64;

/// A value's text as every message quotes input by (run-time errors on both paths,
/// start-time messages, diagnostics): whole when it has at most [`QUOTED_CHARS`] characters, else its first
/// [`QUOTED_CHARS`] characters (cut at a character boundary, never inside one) then
/// `… (N bytes)`, N the whole text's length.
#[must_use]
pub fn quote(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(QUOTED_CHARS) {
        Some((cut, _)) => std::borrow::Cow::Owned(format!(
            "{}… ({} bytes)",
            text.get(..cut).unwrap_or_default(),
            text.len()
        )),
        None => std::borrow::Cow::Borrowed(text),
    }
}
