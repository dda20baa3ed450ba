//! A spanned YAML tree built from saphyr's event stream.
//!
//! The builder is iterative (an explicit stack), so nesting depth cannot overflow the
//! Rust stack; it stops at [`LoadLimits::max_depth`]. Aliases are expanded by copy and
//! counted against [`LoadLimits::max_nodes`], which bounds alias bombs.

use std::collections::HashMap;
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle as SaphyrStyle};

use super::{LoadError, LoadLimits};
use crate::span::{SourceFile, Span};

/// How a scalar was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarStyle {
    /// `foo`
    Plain,
    /// `'foo'`
    SingleQuoted,
    /// `"foo"`
    DoubleQuoted,
    /// `|`
    Literal,
    /// `>`
    Folded,
}

/// A scalar: its decoded text and how it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Scalar {
    /// The decoded value.
    pub value: String,
    /// The style it was written in.
    pub style: ScalarStyle,
}

/// A YAML node with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// What it is.
    pub kind: NodeKind,
    /// Where it is (bytes; for quoted scalars the quotes are included).
    pub span: Span,
}

/// The node variants.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    /// A scalar of any style.
    Scalar(Scalar),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order; keys are scalars.
    Map(Vec<(Node, Node)>),
}

/// The YAML 1.2 core-schema reading of a scalar.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolved<'a> {
    /// `null`, `~` or empty
    Null,
    /// `true` / `false`
    Bool(bool),
    /// An integer
    Int(i64),
    /// A float
    Float(f64),
    /// Anything else, and every quoted or block scalar
    Str(&'a str),
}

impl Scalar {
    /// Resolves a plain scalar by the core schema; other styles are strings.
    #[must_use]
    pub fn resolve(&self) -> Resolved<'_> {
        if self.style != ScalarStyle::Plain {
            return Resolved::Str(&self.value);
        }
        let v = self.value.as_str();
        match v {
            "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
            "true" | "True" | "TRUE" => return Resolved::Bool(true),
            "false" | "False" | "FALSE" => return Resolved::Bool(false),
            ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
                return Resolved::Float(f64::INFINITY);
            }
            "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
            ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
            _ => {}
        }
        if let Some(hex) = v.strip_prefix("0x")
            && let Ok(i) = i64::from_str_radix(hex, 16)
        {
            return Resolved::Int(i);
        }
        if let Some(oct) = v.strip_prefix("0o")
            && let Ok(i) = i64::from_str_radix(oct, 8)
        {
            return Resolved::Int(i);
        }
        let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
        if !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && let Ok(i) = v.parse::<i64>()
        {
            return Resolved::Int(i);
        }
        let looks_float = !digits.is_empty()
            && digits
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
            && digits
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_digit() || b == b'.');
        if looks_float && let Ok(f) = v.parse::<f64>() {
            return Resolved::Float(f);
        }
        Resolved::Str(v)
    }
}

impl Node {
    /// The scalar, when this is one.
    #[must_use]
    pub fn as_scalar(&self) -> Option<&Scalar> {
        match &self.kind {
            NodeKind::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// The string value of a scalar (any style).
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        self.as_scalar().map(|s| s.value.as_str())
    }

    /// The entries, when this is a mapping.
    #[must_use]
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            NodeKind::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The items, when this is a sequence.
    #[must_use]
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The value under `key` in a mapping.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.get_entry(key).map(|(_, v)| v)
    }

    /// The key node and value under `key` in a mapping.
    #[must_use]
    pub fn get_entry(&self, key: &str) -> Option<(&Node, &Node)> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, v)| (k, v))
    }

    /// Counts this node and all below it.
    fn count(&self) -> usize {
        match &self.kind {
            NodeKind::Scalar(_) => 1,
            NodeKind::Seq(items) => 1 + items.iter().map(Node::count).sum::<usize>(),
            NodeKind::Map(entries) => {
                1 + entries
                    .iter()
                    .map(|(k, v)| k.count() + v.count())
                    .sum::<usize>()
            }
        }
    }

    /// Converts to JSON (for schema validation): plain scalars resolve by the core schema.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            NodeKind::Scalar(s) => match s.resolve() {
                Resolved::Null => Value::Null,
                Resolved::Bool(b) => Value::Bool(b),
                Resolved::Int(i) => Value::from(i),
                Resolved::Float(f) => {
                    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
                }
                Resolved::Str(s) => Value::String(s.to_owned()),
            },
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

enum Frame {
    Seq {
        start: usize,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        start: usize,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        pending_key: Option<Node>,
    },
}

const SYNTAX_HELP: &str =
    "fix the YAML syntax at the marked position (indentation, quotes, brackets)";

/// The byte offset of a tab in the indentation of a line up to the one after the error
/// at `at` (YAML forbids tabs there, and the parser's message does not say so).
fn indentation_tab(text: &str, at: usize) -> Option<usize> {
    let mut offset = 0;
    let mut past_error = false;
    for line in text.split_inclusive('\n') {
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        if let Some(i) = line.get(..indent).and_then(|w| w.find('\t')) {
            return Some(offset + i);
        }
        if past_error {
            return None;
        }
        offset += line.len();
        past_error = offset > at;
    }
    None
}

/// Applies YAML merge keys (`<<: *base`, `<<: [*a, *b]`): the merged mappings' entries
/// are added where the mapping does not set the key itself; earlier sources win.
fn merge_keys(entries: Vec<(Node, Node)>) -> Vec<(Node, Node)> {
    let is_merge = |k: &Node| {
        k.as_scalar()
            .is_some_and(|s| s.style == ScalarStyle::Plain && s.value == "<<")
    };
    let merges_maps = |v: &Node| match &v.kind {
        NodeKind::Map(_) => true,
        NodeKind::Seq(items) => items.iter().all(|i| matches!(i.kind, NodeKind::Map(_))),
        NodeKind::Scalar(_) => false,
    };
    if !entries.iter().any(|(k, v)| is_merge(k) && merges_maps(v)) {
        return entries;
    }
    let (merges, mut out): (Vec<_>, Vec<_>) = entries
        .into_iter()
        .partition(|(k, v)| is_merge(k) && merges_maps(v));
    for (_, source) in merges {
        let maps = match source.kind {
            NodeKind::Seq(items) => items,
            other => vec![Node {
                kind: other,
                span: source.span,
            }],
        };
        for m in maps {
            if let NodeKind::Map(inherited) = m.kind {
                for (k, v) in inherited {
                    if !out
                        .iter()
                        .any(|(o, _)| o.as_str().is_some() && o.as_str() == k.as_str())
                    {
                        out.push((k, v));
                    }
                }
            }
        }
    }
    out
}

/// Parses one YAML document into a spanned tree.
///
/// # Errors
/// Every [`LoadError`] that applies: syntax, depth, alias budget, duplicate keys
/// (all of them), multiple documents.
#[expect(
    clippy::too_many_lines,
    reason = "one loop over the event stream with an explicit stack"
)]
pub fn parse(file: &Arc<SourceFile>, limits: &LoadLimits) -> Result<Node, Vec<LoadError>> {
    let text = file.text();
    if text.len() > limits.max_file_bytes {
        return Err(vec![LoadError::TooLarge {
            size: text.len(),
            limit: limits.max_file_bytes,
            span: Span::new(0, 0),
        }]);
    }
    let mut errors = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut root: Option<Node> = None;
    let mut nodes = 0usize;
    let mut documents = 0usize;

    for ev in Parser::new_from_str(text) {
        let (event, span) = match ev {
            Ok(x) => x,
            Err(e) => {
                let at = file.byte_offset(e.marker().index());
                errors.push(match indentation_tab(text, at) {
                    Some(tab) => LoadError::Syntax {
                        message: "a tab in indentation".to_owned(),
                        span: Span::new(tab, tab + 1),
                        help: "YAML indentation must use spaces, not tabs: replace the tab at the start of this line with spaces".to_owned(),
                    },
                    None => LoadError::Syntax {
                        message: e.info().to_owned(),
                        span: Span::new(at, at),
                        help: SYNTAX_HELP.to_owned(),
                    },
                });
                return Err(errors);
            }
        };
        let start = file.byte_offset(span.start.index());
        let end = file.byte_offset(span.end.index());
        let node = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    errors.push(LoadError::MultipleDocuments {
                        span: Span::new(start, end.max(start + 3).min(text.len())),
                    });
                    return Err(errors);
                }
                continue;
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => continue,
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if stack.len() >= limits.max_depth {
                    errors.push(LoadError::TooDeep {
                        limit: limits.max_depth,
                        span: Span::new(start, end),
                    });
                    return Err(errors);
                }
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Frame::Seq {
                        start,
                        anchor,
                        items: Vec::new(),
                    }
                } else {
                    Frame::Map {
                        start,
                        anchor,
                        entries: Vec::new(),
                        pending_key: None,
                    }
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = stack.pop() else { continue };
                let (node, anchor) = match frame {
                    Frame::Seq {
                        start: s,
                        anchor,
                        items,
                    } => {
                        let e = items.last().map_or(end, |n| n.span.end.max(end));
                        (
                            Node {
                                kind: NodeKind::Seq(items),
                                span: Span::new(s, e),
                            },
                            anchor,
                        )
                    }
                    Frame::Map {
                        start: s,
                        anchor,
                        entries,
                        ..
                    } => {
                        let e = entries.last().map_or(end, |(_, v)| v.span.end);
                        let s = entries.first().map_or(s, |(k, _)| k.span.start);
                        let entries = merge_keys(entries);
                        (
                            Node {
                                kind: NodeKind::Map(entries),
                                span: Span::new(s, e.max(s)),
                            },
                            anchor,
                        )
                    }
                };
                if anchor != 0 {
                    anchors.insert(anchor, node.clone());
                }
                node
            }
            Event::Scalar(value, style, anchor, _) => {
                let style = match style {
                    SaphyrStyle::Plain => ScalarStyle::Plain,
                    SaphyrStyle::SingleQuoted => ScalarStyle::SingleQuoted,
                    SaphyrStyle::DoubleQuoted => ScalarStyle::DoubleQuoted,
                    SaphyrStyle::Literal => ScalarStyle::Literal,
                    SaphyrStyle::Folded => ScalarStyle::Folded,
                };
                // a blank block scalar (`user: |` then blank lines): saphyr's span
                // starts at the next token; it is marked at its header (probe q11f nit 6)
                let span = match block_header(text, start) {
                    Some(h)
                        if matches!(style, ScalarStyle::Literal | ScalarStyle::Folded)
                            && value.trim().is_empty() =>
                    {
                        Span::new(h, h + 1)
                    }
                    _ => Span::new(start, end),
                };
                let node = Node {
                    kind: NodeKind::Scalar(Scalar {
                        value: value.into_owned(),
                        style,
                    }),
                    span,
                };
                if anchor != 0 {
                    anchors.insert(anchor, node.clone());
                }
                node
            }
            Event::Alias(id) => {
                let Some(target) = anchors.get(&id) else {
                    errors.push(LoadError::Syntax {
                        message: "unknown anchor".to_owned(),
                        span: Span::new(start, end),
                        help: "define the anchor (`&name`) before the alias (`*name`) that uses it"
                            .to_owned(),
                    });
                    return Err(errors);
                };
                let cost = target.count();
                nodes = nodes.saturating_add(cost);
                if nodes > limits.max_nodes {
                    errors.push(LoadError::AliasBudget {
                        limit: limits.max_nodes,
                        span: Span::new(start, end),
                    });
                    return Err(errors);
                }
                let mut n = target.clone();
                n.span = alias_span(text, start).unwrap_or_else(|| Span::new(start, end));
                n
            }
        };
        nodes += 1;
        if nodes > limits.max_nodes {
            errors.push(LoadError::AliasBudget {
                limit: limits.max_nodes,
                span: node.span,
            });
            return Err(errors);
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                pending_key,
                ..
            }) => match pending_key.take() {
                None => {
                    if node.as_scalar().is_none() {
                        errors.push(LoadError::ComplexKey { span: node.span });
                    }
                    *pending_key = Some(node);
                }
                Some(key) => {
                    if let Some((first, _)) = entries
                        .iter()
                        .find(|(k, _)| k.as_str().is_some() && k.as_str() == key.as_str())
                    {
                        errors.push(LoadError::DuplicateKey {
                            key: key.as_str().unwrap_or_default().to_owned(),
                            span: key.span,
                            first: first.span,
                        });
                    }
                    entries.push((key, node));
                }
            },
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    root.ok_or_else(|| {
        vec![LoadError::EmptyDocument {
            span: Span::new(0, 0),
        }]
    })
}

/// The span of the alias (`*name`) that ends before `after`, where saphyr marks an
/// alias (one character past it): a diagnostic about an aliased value points at the
/// alias that put it there.
fn alias_span(text: &str, after: usize) -> Option<Span> {
    let before = text.get(..after)?;
    let end = before.trim_end_matches([' ', '\t']).len();
    let star = before.get(..end)?.rfind('*')?;
    let name = before.get(star + 1..end)?;
    let is_name = |c: char| !c.is_whitespace() && !matches!(c, ',' | '[' | ']' | '{' | '}');
    (!name.is_empty() && name.chars().all(is_name)).then(|| Span::new(star, end))
}

/// The offset of the header (`|`, `>`) of the block scalar whose span saphyr starts at
/// `start`, when the scalar is blank (its span then starts at the next token): on the
/// last line before `start` that is not blank, the first `|` or `>` followed only by
/// indicators (`+`, `-`, a digit), spaces and an optional comment.
fn block_header(text: &str, start: usize) -> Option<usize> {
    let before = text.get(..start)?;
    let end = before.trim_end_matches([' ', '\t', '\r', '\n']).len();
    let line_start = before.get(..end)?.rfind('\n').map_or(0, |i| i + 1);
    let line = before.get(line_start..end)?;
    line.char_indices()
        .filter(|&(_, c)| c == '|' || c == '>')
        .find(|&(i, _)| {
            let rest = line.get(i + 1..).unwrap_or("");
            let rest =
                rest.trim_start_matches(|c: char| c == '+' || c == '-' || c.is_ascii_digit());
            let rest = rest.trim_start_matches([' ', '\t']);
            rest.is_empty() || rest.starts_with('#')
        })
        .map(|(i, _)| line_start + i)
}

/// Maps each byte of a scalar's decoded value back to a byte offset in the source.
///
/// The decoded text of quoted and block scalars differs from the source (quotes,
/// escapes, indentation, folding); expression diagnostics need the exact source column.
/// The walk aligns the value with the raw text: escapes decode to one character,
/// indentation and line breaks that folding removed are skipped.
#[must_use]
///
/// A value an alias put in place (its span is the alias, `*name`: no scalar's text
/// starts with `*`) has no bytes of its own to map: the map is empty, and every part
/// of it is at the alias ([`crate::expr::ExprSource::map_span`]).
pub(crate) fn value_offsets(source: &str, node_span: Span, scalar: &Scalar) -> Vec<usize> {
    let raw = source.get(node_span.start..node_span.end).unwrap_or("");
    if raw.starts_with('*') {
        return Vec::new();
    }
    let raw_chars: Vec<(usize, char)> = raw.char_indices().collect();
    let mut out = Vec::with_capacity(scalar.value.len() + 1);
    let mut ri = match scalar.style {
        ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => 1,
        _ => 0,
    };
    let block = matches!(scalar.style, ScalarStyle::Literal | ScalarStyle::Folded);
    let mut leading = block;
    for vc in scalar.value.chars() {
        leading &= vc == '\n';
        if leading
            && raw_chars
                .get(ri..)
                .and_then(|rest| rest.iter().find(|&&(_, c)| c != ' ' && c != '\t'))
                .is_none_or(|&(_, c)| c != '\n')
        {
            // a block scalar's leading blank lines: the scalar's span starts at its
            // first content line, after them (probe q11f bug G)
            let at = raw_chars
                .get(ri)
                .map_or(node_span.end, |(o, _)| node_span.start + o);
            out.push(at);
            continue;
        }
        let mut pos = None;
        while let Some(&(off, rc)) = raw_chars.get(ri) {
            if scalar.style == ScalarStyle::DoubleQuoted && rc == '\\' {
                // one escape sequence decodes to one character
                let len = match raw_chars.get(ri + 1).map(|x| x.1) {
                    Some('x') => 4,
                    Some('u') => 6,
                    Some('U') => 10,
                    Some('\n') => {
                        ri += 2;
                        continue;
                    }
                    _ => 2,
                };
                pos = Some(off);
                ri += len;
                break;
            }
            if scalar.style == ScalarStyle::SingleQuoted
                && rc == '\''
                && raw_chars.get(ri + 1).map(|x| x.1) == Some('\'')
                && vc == '\''
            {
                pos = Some(off);
                ri += 2;
                break;
            }
            ri += 1;
            if rc == vc || (vc == ' ' && rc == '\n') {
                pos = Some(off);
                break;
            }
        }
        let at = node_span.start + pos.unwrap_or(raw.len());
        for _ in 0..vc.len_utf8() {
            out.push(at);
        }
    }
    let end = raw_chars
        .get(ri)
        .map_or(node_span.end, |(o, _)| node_span.start + o);
    out.push(end);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each expression's first character, in a block scalar however it starts, maps to
    /// its own place in the file (probe q11f bug G: leading blank lines put it at the
    /// next key).
    /// A blank block scalar is placed at its header, not at the next token (probe
    /// q11f nit 6): its span starts at the `|` or `>`.
    #[test]
    fn a_blank_block_scalar_is_placed_at_its_header() {
        for (text, at) in [
            ("user: |\n\n\nnext: x\n", 6),
            ("user: |\n  \n\nnext: x\n", 6),
            ("user: >-\n\nnext: x\n", 6),
            ("user: |2 # none\n\nnext: x\n", 6),
            ("a: { b: 1 }\nuser:  |+\n\n\n", 19),
        ] {
            let file = Arc::new(SourceFile::new("t.yaml", text));
            let root = parse(&file, &LoadLimits::default()).unwrap();
            let NodeKind::Map(entries) = &root.kind else {
                panic!("{text:?}: not a map")
            };
            let node = &entries
                .iter()
                .find(|(k, _)| k.as_str() == Some("user"))
                .unwrap()
                .1;
            assert_eq!(node.span.start, at, "{text:?}");
        }
    }

    #[test]
    fn a_block_scalar_maps_its_first_character_home() {
        for text in [
            "when: |\n  10 / i > 0\ngoto: x\n",
            "when: |\n\n  10 / i > 0\ngoto: x\n",
            "when: |\n\n\n  10 / i > 0\ngoto: x\n",
            "when: |2\n\n   10 / i > 0\ngoto: x\n",
            "when: >\n\n  10 / i > 0\ngoto: x\n",
            "when: |-\n  \n  10 / i > 0\ngoto: x\n",
            "when: >\n\n  10 /\n\n  i > 0\ngoto: x\n",
        ] {
            let file = Arc::new(SourceFile::new("t.yaml", text));
            let root = parse(&file, &LoadLimits::default()).unwrap();
            let NodeKind::Map(entries) = &root.kind else {
                panic!("{text:?}: not a map")
            };
            let node = &entries[0].1;
            let NodeKind::Scalar(s) = &node.kind else {
                panic!("{text:?}: not a scalar")
            };
            let offsets = value_offsets(text, node.span, s);
            for (i, c) in s.value.char_indices().filter(|(_, c)| !c.is_whitespace()) {
                assert_eq!(
                    text[offsets[i]..].chars().next(),
                    Some(c),
                    "{text:?}: value byte {i} maps to {} (scalar at {:?})",
                    offsets[i],
                    node.span
                );
            }
        }
    }
}
