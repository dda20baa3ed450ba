//! Validation against `schemas/approval-flow.schema.json`, with errors mapped onto
//! the YAML spans of the offending key or value.

use std::sync::OnceLock;

use jsonschema::error::ValidationErrorKind;
use miette::Diagnostic as MietteDiagnostic;
use thiserror::Error;

use super::yaml::Node;
use crate::span::Span;

/// The published schema (`ApprovalFlowSchema`, draft 2020-12), embedded at build time.
pub const SCHEMA_JSON: &str = include_str!("../../schemas/approval-flow.schema.json");

/// A schema violation, at the YAML node it concerns.
#[derive(Debug, Error, MietteDiagnostic)]
#[non_exhaustive]
pub enum SchemaError {
    /// A required key is missing.
    #[error("missing required key `{key}`{context}")]
    #[diagnostic(code("flowc::schema::required"), help("add `{key}:` to this mapping"))]
    Required {
        /// The key.
        key: String,
        /// " in step `x`" or empty.
        context: String,
        /// The mapping that lacks it.
        #[label("`{key}` is missing here")]
        span: Span,
    },
    /// A key the schema does not know.
    #[error("unknown key `{key}`{context}")]
    #[diagnostic(code("flowc::schema::unknown-key"))]
    UnknownKey {
        /// The key.
        key: String,
        /// " in step `x`" or empty.
        context: String,
        /// The key.
        #[label("not allowed here")]
        span: Span,
        /// Suggestion or list of allowed keys.
        #[help]
        help: String,
    },
    /// A value of the wrong JSON type.
    #[error("expected {expected}{context}")]
    #[diagnostic(code("flowc::schema::type-mismatch"))]
    Type {
        /// The expected type(s).
        expected: String,
        /// " at `path`".
        context: String,
        /// The value.
        #[label("wrong kind of value")]
        span: Span,
        /// The accepted forms, with an example.
        #[help]
        help: String,
    },
    /// A value outside an enumeration or constant.
    #[error("`{value}` is not allowed here{context}")]
    #[diagnostic(code("flowc::schema::invalid-value"))]
    Enum {
        /// The value.
        value: String,
        /// " at `path`".
        context: String,
        /// The value.
        #[label("not one of the allowed values")]
        span: Span,
        /// The allowed values.
        #[help]
        help: String,
    },
    /// A string that does not match the required pattern.
    #[error("`{value}` does not have the required form{context}")]
    #[diagnostic(code("flowc::schema::pattern"))]
    Pattern {
        /// The value.
        value: String,
        /// " at `path`".
        context: String,
        /// The value.
        #[label("wrong form")]
        span: Span,
        /// What the form is.
        #[help]
        help: String,
    },
    /// Any other violation (sizes, counts).
    #[error("{message}{context}")]
    #[diagnostic(code("flowc::schema::constraint"))]
    Other {
        /// What is wrong, in the flow's terms.
        message: String,
        /// " at `path`".
        context: String,
        /// The value.
        #[label("here")]
        span: Span,
        /// What is accepted, with an example.
        #[help]
        help: String,
    },
}

/// The schema document, parsed once.
fn schema() -> &'static serde_json::Value {
    static S: OnceLock<serde_json::Value> = OnceLock::new();
    S.get_or_init(|| serde_json::from_str(SCHEMA_JSON).unwrap_or_default())
}

impl SchemaError {
    /// True when later stages may still report problems inside this error's span (a
    /// missing or unknown key says nothing about the values next to it).
    #[must_use]
    pub fn leaves_values_readable(&self) -> bool {
        matches!(
            self,
            SchemaError::Required { .. } | SchemaError::UnknownKey { .. }
        )
    }

    /// The primary span.
    #[must_use]
    pub fn span(&self) -> Span {
        match self {
            SchemaError::Required { span, .. }
            | SchemaError::UnknownKey { span, .. }
            | SchemaError::Type { span, .. }
            | SchemaError::Enum { span, .. }
            | SchemaError::Pattern { span, .. }
            | SchemaError::Other { span, .. } => *span,
        }
    }
}

fn validator() -> Option<&'static jsonschema::Validator> {
    static V: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    V.get_or_init(|| jsonschema::draft202012::new(schema()).ok())
        .as_ref()
}

/// Finds the node at a JSON pointer; also returns the last key node on the way.
fn resolve<'a>(root: &'a Node, pointer: &str) -> (&'a Node, Option<&'a Node>, Vec<String>) {
    let mut node = root;
    let mut key_node = None;
    let mut segs = Vec::new();
    for raw in pointer.split('/').skip(1) {
        let seg = raw.replace("~1", "/").replace("~0", "~");
        let next = if let Some(items) = node.as_seq() {
            seg.parse::<usize>()
                .ok()
                .and_then(|i| items.get(i))
                .map(|n| (None, n))
        } else {
            node.get_entry(&seg).map(|(k, v)| (Some(k), v))
        };
        match next {
            Some((k, n)) => {
                if k.is_some() {
                    key_node = k;
                }
                node = n;
                segs.push(seg);
            }
            None => break,
        }
    }
    (node, key_node, segs)
}

/// Where to report a key missing from a mapping: its first entry (`id: x` of a step),
/// so that two steps lacking keys give two errors at their own steps.
fn missing_key_span(node: &Node, key_node: Option<&Node>) -> Span {
    match node.as_map().and_then(|m| m.first()) {
        Some((k, v)) if v.as_scalar().is_some() => k.span.join(v.span),
        Some((k, _)) => k.span,
        None => key_node.map_or(node.span, |k| k.span),
    }
}

/// Describes where in the flow a path points: " in step `x`" when inside a step.
fn context_of(root: &Node, segs: &[String]) -> String {
    let mut node = root;
    let mut step = None;
    for s in segs {
        let next = match node.as_seq() {
            Some(items) => s.parse::<usize>().ok().and_then(|i| items.get(i)),
            None => node.get(s),
        };
        let Some(n) = next else { break };
        if n.get("type").is_some() && n.get("id").is_some() && node.as_seq().is_some() {
            step = n.get("id").and_then(Node::as_str);
        }
        node = n;
    }
    step.map_or_else(String::new, |s| format!(" in step `{s}`"))
}

fn allowed_keys_help(schema_path: &str, key: &str) -> String {
    // the schema's property list for the object in question
    let mut obj = schema();
    let mut found = None;
    for seg in schema_path.split('/').skip(1) {
        if seg == "additionalProperties" {
            found = obj.get("properties");
            break;
        }
        match obj.get(seg) {
            Some(o) => obj = o,
            None => break,
        }
    }
    let keys: Vec<&str> = found
        .and_then(|p| p.as_object())
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    if let Some(s) = crate::diagnostic::did_you_mean(key, keys.iter().copied()) {
        return format!("did you mean `{s}`?");
    }
    if keys.is_empty() {
        "remove this key".to_owned()
    } else {
        format!("allowed keys here: {}", keys.join(", "))
    }
}

/// Validates the tree; returns every violation, deduplicated, in document order.
///
/// A step whose `type` is unknown is also validated as the type it was meant to be
/// ([`recovered_step_type`]): its other mistakes (a missing `assignees`, an unknown key)
/// are reported in the same pass as the type, next to the type's own error.
pub(crate) fn validate(root: &Node) -> Vec<SchemaError> {
    let Some(v) = validator() else {
        return vec![SchemaError::Other {
            message: "the embedded schema failed to load".to_owned(),
            context: String::new(),
            span: root.span,
            help: "this is a bug in flowc: please report it".to_owned(),
        }];
    };
    let instance = root.to_json();
    let mut corrected = instance.clone();
    let mut fixed = Vec::new();
    correct_step_types(&mut corrected, "", &mut fixed);
    let mut out: Vec<(Span, String, SchemaError)> = Vec::new();
    if fixed.is_empty() {
        for err in v.iter_errors(&instance) {
            push_error(root, &err, &mut out);
        }
        return finish(out);
    }
    // the written types' own errors, then everything as if each type were the one meant
    let type_spans: Vec<(Span, &str)> = fixed
        .iter()
        .map(|(p, meant)| (resolve(root, p).0.span, *meant))
        .collect();
    for err in v.iter_errors(&instance) {
        let mut one = Vec::new();
        push_error(root, &err, &mut one);
        for (span, key, mut e) in one {
            let Some((_, meant)) = type_spans
                .iter()
                .find(|(t, _)| t.start <= span.start && span.end <= t.end)
            else {
                continue;
            };
            // say how the rest of the step was checked when no spelling was close
            if let SchemaError::Enum { help, .. } = &mut e
                && !help.starts_with("did you mean")
            {
                help.push_str("; the rest of the step was checked as `");
                help.push_str(meant);
                help.push_str("`, the type whose keys it has");
            }
            out.push((span, key, e));
        }
    }
    for err in v.iter_errors(&corrected) {
        push_error(root, &err, &mut out);
    }
    finish(out)
}

/// The step types of the flow format.
pub(crate) const STEP_TYPES: [&str; 6] = [
    "approval",
    "service-task",
    "decision",
    "parallel",
    "notify",
    "end",
];

/// The keys that only one step type has, by type.
const TYPE_SIGNS: [(&str, &[&str]); 6] = [
    (
        "approval",
        &[
            "assignees",
            "mode",
            "escalateTo",
            "onReject",
            "allowAddSigner",
            "onTimeout",
        ],
    ),
    ("service-task", &["service", "retry", "onError"]),
    ("decision", &["rules", "hitPolicy", "default"]),
    ("parallel", &["branches", "join"]),
    ("notify", &["to", "message"]),
    ("end", &["outcome"]),
];

/// The type a step with an unknown `type` (`aproval`) is read as, so that the rest of it
/// is still checked: the one close spelling of a step type, or else the one type whose
/// own keys the step has (`rules` → `decision`). `None` when neither decides.
pub(crate) fn recovered_step_type(
    written: &str,
    has: impl Fn(&str) -> bool,
) -> Option<&'static str> {
    if let Some(close) = crate::diagnostic::did_you_mean(written, STEP_TYPES) {
        return STEP_TYPES.into_iter().find(|t| *t == close);
    }
    let mut signed = TYPE_SIGNS
        .iter()
        .filter(|(_, keys)| keys.iter().any(|k| has(k)))
        .map(|(t, _)| *t);
    match (signed.next(), signed.next()) {
        (Some(t), None) => Some(t),
        _ => None,
    }
}

/// Replaces every unknown step `type` (at any depth) that [`recovered_step_type`]
/// recovers; `fixed` gets the JSON pointer of each replaced `type` and the type used.
fn correct_step_types(
    v: &mut serde_json::Value,
    pointer: &str,
    fixed: &mut Vec<(String, &'static str)>,
) {
    let Some(steps) = v.get_mut("steps").and_then(serde_json::Value::as_array_mut) else {
        return;
    };
    for (i, step) in steps.iter_mut().enumerate() {
        let here = format!("{pointer}/steps/{i}");
        let Some(obj) = step.as_object_mut() else {
            continue;
        };
        let written = obj
            .get("type")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        if let Some(written) = written
            && !STEP_TYPES.contains(&written.as_str())
            && let Some(meant) = recovered_step_type(&written, |k| obj.contains_key(k))
        {
            obj.insert("type".to_owned(), serde_json::Value::from(meant));
            fixed.push((format!("{here}/type"), meant));
        }
        if let Some(branches) = obj
            .get_mut("branches")
            .and_then(serde_json::Value::as_array_mut)
        {
            for (j, b) in branches.iter_mut().enumerate() {
                correct_step_types(b, &format!("{here}/branches/{j}"), fixed);
            }
        }
    }
}

/// The one branch of a `oneOf`/`anyOf` that accepts the value's kind (a mapping for the
/// mapping form): its errors say what is wrong inside the value.
fn branch_for_kind<'e>(
    branches: &'e [Vec<jsonschema::ValidationError<'static>>],
    pointer: &str,
) -> Option<&'e [jsonschema::ValidationError<'static>]> {
    let right_kind = |errs: &&Vec<jsonschema::ValidationError<'static>>| {
        !errs.iter().any(|e| {
            e.instance_path().to_string() == pointer
                && matches!(e.kind(), ValidationErrorKind::Type { .. })
        })
    };
    let mut fitting = branches.iter().filter(right_kind);
    match (fitting.next(), fitting.next()) {
        (Some(one), None) if !one.is_empty() => Some(one.as_slice()),
        _ => None,
    }
}

/// Maps one validator error onto the YAML tree (recursing into the fitting branch of a
/// `oneOf`).
#[expect(
    clippy::too_many_lines,
    reason = "one match over the validator's error kinds"
)]
fn push_error(
    root: &Node,
    err: &jsonschema::ValidationError<'_>,
    out: &mut Vec<(Span, String, SchemaError)>,
) {
    {
        let pointer = err.instance_path().to_string();
        let schema_path = err.schema_path().to_string();
        let (node, key_node, segs) = resolve(root, &pointer);
        let mut context = context_of(root, &segs);
        if context.is_empty() && !segs.is_empty() {
            context = format!(" at `{}`", segs.join("."));
        }
        let value_text = crate::diagnostic::value_text(&node.to_json());
        let value_span = node.span;
        let e = match err.kind() {
            // a bad mapping key: point at the key itself
            ValidationErrorKind::PropertyNames { error } => {
                let key = error.instance().as_str().unwrap_or_default().to_owned();
                let span = node.get_entry(&key).map_or(node.span, |(k, _)| k.span);
                let help = match error.kind() {
                    ValidationErrorKind::Pattern { pattern } => pattern_help(pattern),
                    _ => "rename this key".to_owned(),
                };
                SchemaError::Pattern {
                    value: key,
                    context,
                    span,
                    help,
                }
            }
            ValidationErrorKind::Required { property } => {
                let key = property.as_str().unwrap_or_default().to_owned();
                // a misspelt key (`apiversion`, `stepz`) is one mistake: its "unknown key,
                // did you mean" says it, and the key it meant is not also "missing"
                let misspelt = node.as_map().is_some_and(|m| {
                    m.iter().any(|(k, _)| {
                        k.as_str().is_some_and(|k| {
                            k != key
                                && crate::diagnostic::did_you_mean(k, [key.as_str()]).as_deref()
                                    == Some(key.as_str())
                        })
                    })
                });
                if misspelt {
                    return;
                }
                SchemaError::Required {
                    key,
                    context,
                    span: missing_key_span(node, key_node),
                }
            }
            ValidationErrorKind::AdditionalProperties { unexpected }
            | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
                for key in unexpected {
                    let span = node.get_entry(key).map_or(node.span, |(k, _)| k.span);
                    out.push((
                        span,
                        "unknown".to_owned(),
                        SchemaError::UnknownKey {
                            key: key.clone(),
                            context: context.clone(),
                            span,
                            help: allowed_keys_help(&schema_path, key),
                        },
                    ));
                }
                return;
            }
            ValidationErrorKind::Type { kind } => SchemaError::Type {
                expected: type_words(&format!("{kind:?}")),
                context,
                span: value_span,
                help: example_of(segs.last().map_or("", String::as_str)).map_or_else(
                    || "write a value of the expected kind".to_owned(),
                    |e| format!("for example `{e}`"),
                ),
            },
            ValidationErrorKind::Enum { options } => {
                let allowed: Vec<String> = options
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(crate::diagnostic::value_text)
                            .collect()
                    })
                    .unwrap_or_default();
                let list = allowed.join(", ");
                let help = match crate::diagnostic::did_you_mean(
                    &value_text,
                    allowed.iter().map(String::as_str),
                ) {
                    Some(s) => format!("did you mean `{s}`? (one of: {list})"),
                    None => format!("use one of: {list}"),
                };
                SchemaError::Enum {
                    value: value_text,
                    context,
                    span: value_span,
                    help,
                }
            }
            ValidationErrorKind::Constant { expected_value } => SchemaError::Enum {
                value: value_text,
                context,
                span: value_span,
                help: format!("use `{}`", crate::diagnostic::value_text(expected_value)),
            },
            ValidationErrorKind::Pattern { pattern } => SchemaError::Pattern {
                help: type_suggestion(pattern, node.as_str().unwrap_or_default())
                    .unwrap_or_else(|| pattern_help(pattern)),
                value: value_text,
                context,
                span: value_span,
            },
            ValidationErrorKind::OneOfNotValid { context: branches }
            | ValidationErrorKind::AnyOf { context: branches }
                if branch_for_kind(branches, &pointer).is_some() =>
            {
                for e in branch_for_kind(branches, &pointer).unwrap_or_default() {
                    push_error(root, e, out);
                }
                return;
            }
            ValidationErrorKind::OneOfNotValid { .. }
            | ValidationErrorKind::OneOfMultipleValid { .. }
            | ValidationErrorKind::AnyOf { .. }
                if segs.first().is_some_and(|s| s == "context") =>
            {
                SchemaError::Type {
                    expected: "a type name or a mapping with `type`".to_owned(),
                    context,
                    span: value_span,
                    help: "e.g. `amount: double`, `tags: list<string>` or `currency: { type: string, enum: [CNY, USD] }`".to_owned(),
                }
            }
            other => {
                // a list's element is named by its list: `users[1]`, not `1`
                let key = match segs.as_slice() {
                    [.., list, index] if index.parse::<usize>().is_ok() => {
                        format!("{list}[{index}]")
                    }
                    [.., last] => last.clone(),
                    [] => String::new(),
                };
                let (message, help) = constraint_words(other, node, &key, &schema_path);
                SchemaError::Other {
                    message,
                    context,
                    span: value_span,
                    help,
                }
            }
        };
        let key = format!("{:?}", std::mem::discriminant(&e));
        out.push((e.span(), key, e));
    }
}

/// Deduplicates and orders the mapped errors.
fn finish(mut out: Vec<(Span, String, SchemaError)>) -> Vec<SchemaError> {
    // an error under a oneOf also reports its branches: drop exact repeats, and drop a
    // generic "none of the forms" when a specific error lies inside the same value
    out.sort_by_key(|(s, _, _)| (s.start, s.end));
    out.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    let specific: Vec<Span> = out
        .iter()
        .filter(|(_, _, e)| !matches!(e, SchemaError::Other { .. }))
        .map(|(s, _, _)| *s)
        .collect();
    out.into_iter()
        .filter(|(span, _, e)| {
            !matches!(e, SchemaError::Other { .. })
                || !specific
                    .iter()
                    .any(|s| s.start >= span.start && s.end <= span.end)
        })
        .map(|(_, _, e)| e)
        .collect()
}

/// An example of a key's value, for help texts.
fn example_of(key: &str) -> Option<&'static str> {
    Some(match key {
        "assignees" | "escalateTo" | "to" => "assignees: { role: manager }",
        "users" => "users: [alice, bob]",
        "enum" => "enum: [CNY, USD]",
        "rules" => "rules: [{ when: amount > 1000.0, goto: cfo-approve }]",
        "branches" => "branches: [{ steps: [...] }, { steps: [...] }]",
        "steps" => "steps: [{ id: manager-approve, type: approval, assignees: { role: manager } }]",
        "context" => "context: { amount: double, dept: string }",
        "retry" => "retry: { max: 3, backoff: 2s }",
        "skipCondition" | "when" => "amount > 1000.0",
        "expr" => "expr: applicant.manager",
        "role" => "role: manager",
        "user" => "user: alice",
        "service" => "service: finance-validator",
        "optional" | "allowAddSigner" => "true",
        _ => return None,
    })
}

/// The schema's `description` of the subschema a keyword path ends in (following
/// `$ref`s): written for flow authors.
fn description_at(schema_path: &str) -> Option<String> {
    let root = schema();
    let mut node = root;
    let mut found = None;
    for seg in schema_path.split('/').skip(1) {
        if let Some(d) = node.get("description").and_then(|d| d.as_str()) {
            found = Some(d);
        }
        let next = if seg == "$ref" {
            node.get("$ref")
                .and_then(|r| r.as_str())
                .and_then(|r| r.strip_prefix("#/"))
                .and_then(|r| r.split('/').try_fold(root, |n, s| n.get(s)))
        } else {
            node.get(seg)
                .or_else(|| seg.parse::<usize>().ok().and_then(|i| node.get(i)))
        };
        match next {
            Some(n) => node = n,
            None => break,
        }
    }
    found.map(str::to_owned)
}

/// Message and help for a size or count constraint, in the flow's terms.
fn constraint_words(
    kind: &ValidationErrorKind,
    node: &Node,
    key: &str,
    schema_path: &str,
) -> (String, String) {
    let example = |fallback: &str| {
        example_of(key).map_or_else(|| fallback.to_owned(), |e| format!("e.g. `{e}`"))
    };
    let one_of_assignees = "one of `role`, `user`, `users` or `expr`";
    let assignee_help =
        "write one, e.g. `assignees: { role: manager }` or `assignees: { users: [alice, bob] }`";
    match kind {
        ValidationErrorKind::MaxProperties { .. } => {
            let n = node.as_map().map_or(0, <[_]>::len);
            (
                format!(
                    "{} name exactly {one_of_assignees}, not {n}",
                    assignee_word(key)
                ),
                assignee_help.to_owned(),
            )
        }
        ValidationErrorKind::MinProperties { .. } => (
            format!(
                "{} name none of `role`, `user`, `users` or `expr`",
                assignee_word(key)
            ),
            assignee_help.to_owned(),
        ),
        ValidationErrorKind::MinItems { .. } => match key {
            "users" => (
                "`users` lists no one".to_owned(),
                "name at least one user, e.g. `users: [alice]`".to_owned(),
            ),
            "enum" => (
                "`enum` lists no value".to_owned(),
                "list the allowed values, e.g. `enum: [CNY, USD]`".to_owned(),
            ),
            _ => (
                format!("`{key}` is an empty list"),
                format!("add at least one entry, {}", example("or remove the key")),
            ),
        },
        ValidationErrorKind::MinLength { .. } => (
            format!("`{key}` is empty"),
            format!("write a value, {}", example("or remove the key")),
        ),
        ValidationErrorKind::Minimum { limit }
        | ValidationErrorKind::ExclusiveMinimum { limit } => (
            format!("`{key}` is too small (the least is {limit})"),
            example("write a larger number"),
        ),
        ValidationErrorKind::Maximum { limit }
        | ValidationErrorKind::ExclusiveMaximum { limit } => (
            format!("`{key}` is too large (the most is {limit})"),
            example("write a smaller number"),
        ),
        _ => (
            format!("`{key}` does not have a form flowc accepts"),
            description_at(schema_path)
                .unwrap_or_else(|| example("see the flow format in the README")),
        ),
    }
}

/// "assignees" / "`escalateTo`" as the subject of a sentence.
fn assignee_word(key: &str) -> String {
    if key == "assignees" {
        "assignees".to_owned()
    } else {
        format!("`{key}`")
    }
}

fn type_words(kind: &str) -> String {
    let k = kind.to_lowercase();
    let words: Vec<&str> = [
        "string", "integer", "number", "boolean", "object", "array", "null",
    ]
    .into_iter()
    .filter(|w| k.contains(w))
    .collect();
    let words: Vec<&str> = words
        .into_iter()
        .map(|w| match w {
            "object" => "a mapping",
            "array" => "a list",
            "string" => "a string",
            "integer" => "an integer",
            "number" => "a number",
            "boolean" => "true or false",
            _ => "null",
        })
        .collect();
    if words.is_empty() {
        "another kind of value".to_owned()
    } else {
        words.join(" or ")
    }
}

/// "did you mean `double`?" for a type name written with capitals (`Double`, `List<String>`).
fn type_suggestion(pattern: &str, value: &str) -> Option<String> {
    const TYPES: [&str; 10] = [
        "bool",
        "int",
        "uint",
        "double",
        "string",
        "timestamp",
        "duration",
        "list",
        "map",
        "object",
    ];
    if pattern != "^[a-z<>, ]+$" {
        return None;
    }
    let lower = value.to_lowercase();
    let base = lower.split('<').next().unwrap_or(&lower).trim();
    let known = crate::diagnostic::did_you_mean(base, TYPES)
        .or_else(|| TYPES.contains(&base).then(|| base.to_owned()))?;
    let suggestion = if lower.contains('<') {
        lower.replacen(base, &known, 1)
    } else {
        known
    };
    Some(format!(
        "did you mean `{suggestion}`? (type names are lowercase)"
    ))
}

fn pattern_help(pattern: &str) -> String {
    match pattern {
        "^[a-z][a-z0-9-]{0,62}$" => {
            "ids start with a lowercase letter, then up to 62 lowercase letters, digits or `-`"
                .to_owned()
        }
        "^[1-9][0-9]{0,8}(s|m|h|d)$" => {
            "write a duration as a positive whole number and a unit: 30s, 15m, 48h, 7d".to_owned()
        }
        "^[A-Za-z_][A-Za-z0-9_]*$" => {
            "field names are identifiers: ASCII letters (A-Z, a-z), digits and `_`, not starting with a digit"
                .to_owned()
        }
        "^[a-z<>, ]+$" => {
            "types are bool, int, uint, double, string, timestamp, duration, list<T>, map<string, T> or object"
                .to_owned()
        }
        other => format!("the value must match `{other}`"),
    }
}
