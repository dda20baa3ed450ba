//! Stage 2: the schema-valid YAML tree → a checked [`Flow`].
//!
//! The loader guarantees the shape (the schema passed); this stage reads it into typed
//! Rust values, parses context types and durations, and keeps every span.

pub mod decl;
mod read_decl;

use std::sync::Arc;

use miette::Diagnostic as MietteDiagnostic;
use thiserror::Error;

use crate::diagnostic::Diagnostics;
use crate::expr::{ExprSource, FieldType, ObjectType};
use crate::load::{Node, Resolved, yaml::value_offsets};
use crate::span::{SourceFile, Span};
pub use decl::{
    Declared, FieldDecl, FieldPath, Fitted, Misfit, MisfitKind, Parts, PathPart, fit, fit_fields,
};

/// A value with the span it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it is in the file.
    pub span: Span,
}

/// Approval modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One assignee decides.
    Single,
    /// The first decision of any assignee counts (或签).
    Any,
    /// Every assignee must approve (会签).
    All,
    /// Assignees decide one after another (依次审批).
    Sequence,
}

/// Who acts on a step.
#[derive(Clone, Debug, PartialEq)]
pub enum Assignees {
    /// A role the host resolves.
    Role(Spanned<String>),
    /// One user.
    User(Spanned<String>),
    /// Several users, in order.
    Users(Vec<Spanned<String>>),
    /// An expression giving `string` or `list<string>`.
    Expr(ExprSource),
}

/// What happens when an approval times out.
#[derive(Clone, Debug, PartialEq)]
pub enum OnTimeout {
    /// Hand the task to `escalateTo`.
    Escalate,
    /// Count as approved.
    Approve,
    /// Count as rejected.
    Reject,
    /// Continue at a step.
    Goto(String),
}

/// Retry policy of a service task.
#[derive(Clone, Debug, PartialEq)]
pub struct Retry {
    /// Retries after the first attempt.
    pub max: u32,
    /// Seconds between attempts.
    pub backoff_secs: Option<u64>,
}

/// How a decision picks rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HitPolicy {
    /// The first rule that holds.
    First,
    /// Exactly one rule may hold.
    Unique,
}

/// One decision rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// The condition.
    pub when: ExprSource,
    /// Where it routes.
    pub goto: Spanned<String>,
    /// The span of the whole rule.
    pub span: Span,
}

/// Parallel join policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Join {
    /// Wait for all branches.
    All,
    /// Continue at the first branch to finish.
    Any,
}

/// One parallel branch.
#[derive(Clone, Debug, PartialEq)]
pub struct Branch {
    /// Optional display name.
    pub name: Option<String>,
    /// The nested steps.
    pub steps: Vec<Step>,
    /// The span of the branch.
    pub span: Span,
}

/// End outcomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Approved.
    Approved,
    /// Rejected.
    Rejected,
}

/// The kind-specific part of a step.
#[derive(Clone, Debug, PartialEq)]
pub enum StepKind {
    /// A human approval.
    Approval {
        /// Who decides.
        assignees: Assignees,
        /// How many decide.
        mode: Mode,
        /// Seconds before `on_timeout`.
        timeout: Option<Spanned<u64>>,
        /// What a timeout does.
        on_timeout: Option<Spanned<OnTimeout>>,
        /// `timeout` is written but is no duration (the schema reports it): `onTimeout` is
        /// then not "without a timeout".
        timeout_refused: bool,
        /// Who gets the task on escalation.
        escalate_to: Option<Assignees>,
        /// Add-signer allowed.
        allow_add_signer: bool,
        /// Where a rejection goes.
        on_reject: Option<Spanned<String>>,
    },
    /// A service call the host performs.
    ServiceTask {
        /// Service name.
        service: Spanned<String>,
        /// Seconds the call may take.
        timeout: Option<Spanned<u64>>,
        /// Retry policy.
        retry: Option<Retry>,
        /// Where an error goes.
        on_error: Option<Spanned<String>>,
    },
    /// Routing by rules.
    Decision {
        /// Rule selection.
        hit_policy: HitPolicy,
        /// The rules.
        rules: Vec<Rule>,
        /// Where no match goes.
        default: Option<Spanned<String>>,
    },
    /// Parallel branches.
    Parallel {
        /// Join policy.
        join: Join,
        /// Branches.
        branches: Vec<Branch>,
    },
    /// A notification.
    Notify {
        /// Recipients.
        to: Assignees,
        /// Message template.
        message: Option<String>,
    },
    /// End with an outcome.
    End {
        /// The outcome.
        outcome: Outcome,
    },
}

/// One step.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// Its id.
    pub id: Spanned<String>,
    /// Display name.
    pub name: Option<String>,
    /// The `type:` value's span.
    pub type_span: Span,
    /// The whole step's span.
    pub span: Span,
    /// Explicit successor.
    pub next: Option<Spanned<String>>,
    /// Skip condition.
    pub skip: Option<ExprSource>,
    /// The kind-specific part.
    pub kind: StepKind,
}

impl Step {
    /// The step type as written in YAML.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            StepKind::Approval { .. } => "approval",
            StepKind::ServiceTask { .. } => "service-task",
            StepKind::Decision { .. } => "decision",
            StepKind::Parallel { .. } => "parallel",
            StepKind::Notify { .. } => "notify",
            StepKind::End { .. } => "end",
        }
    }
}

/// A structurally valid flow.
#[derive(Clone, Debug)]
pub struct Flow {
    /// The file it came from.
    pub file: Arc<SourceFile>,
    /// Flow id.
    pub id: Spanned<String>,
    /// Display name.
    pub name: Option<String>,
    /// Declared context, in declaration order.
    pub context: Vec<FieldDecl>,
    /// Top-level steps.
    pub steps: Vec<Step>,
}

impl Flow {
    /// The `enum` of every string field of the context, by path (`currency`,
    /// `applicant.kind`), through objects at any depth and into the elements of lists
    /// (`items[].category`, `tags[]`: comprehension variables reach them).
    #[must_use]
    pub fn string_enums(&self) -> Vec<(String, Vec<String>)> {
        fn decl(path: &str, d: &Declared, out: &mut Vec<(String, Vec<String>)>) {
            if d.ty == crate::expr::Type::String
                && let Some(allowed) = &d.allowed
            {
                let values: Vec<String> = allowed
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect();
                // an enum with a non-string member is a model error reported elsewhere
                if values.len() == allowed.len() {
                    out.push((path.to_owned(), values));
                }
            }
            match &d.parts {
                Parts::Fields(inner) => fields(path, inner, out),
                Parts::Items(element) => decl(&format!("{path}[]"), element, out),
                Parts::Values(_) | Parts::None => {}
            }
        }
        fn fields(prefix: &str, fields_: &[FieldDecl], out: &mut Vec<(String, Vec<String>)>) {
            for f in fields_ {
                let path = if prefix.is_empty() {
                    f.name.value.clone()
                } else {
                    format!("{prefix}.{}", f.name.value)
                };
                decl(&path, &f.decl, out);
            }
        }
        let mut out = Vec::new();
        fields("", &self.context, &mut out);
        out
    }

    /// The context as an object type (for the checker).
    #[must_use]
    pub fn context_type(&self) -> ObjectType {
        ObjectType {
            fields: self
                .context
                .iter()
                .map(|f| {
                    (
                        f.name.value.clone(),
                        FieldType {
                            ty: f.decl.ty.clone(),
                            optional: f.optional && f.default.is_none(),
                        },
                    )
                })
                .collect(),
        }
    }
}

/// Errors of the model stage.
#[derive(Debug, Error, MietteDiagnostic)]
#[non_exhaustive]
pub enum ModelError {
    /// A context type that does not exist.
    #[error("unknown type `{}`", crate::diagnostic::excerpt(.name))]
    #[diagnostic(code("flowc::model::unknown-type"))]
    UnknownType {
        /// The written type.
        name: String,
        /// Where.
        #[label("not a type")]
        span: Span,
        /// Suggestion.
        #[help]
        help: String,
    },
    /// `map<K, V>` with a key type other than string.
    #[error("map keys in a context declaration must be `string`, not `{key}`")]
    #[diagnostic(
        code("flowc::model::map-key"),
        help(
            "declare the field as `map<string, ...>`: context values come from JSON, whose keys are strings"
        )
    )]
    MapKey {
        /// The key type.
        key: String,
        /// Where.
        #[label("key type here")]
        span: Span,
    },
    /// A context field named by a CEL reserved word (`if`, `null`, `in`, ...).
    #[error("`{name}` is a reserved word in CEL: no field may be named so")]
    #[diagnostic(
        code("flowc::model::reserved-name"),
        help(
            "CEL reserves {words} and `in`: a condition could never name the field; rename it (e.g. `{name}_`)"
        )
    )]
    ReservedName {
        /// The name.
        name: String,
        /// The reserved words, quoted.
        words: String,
        /// Where.
        #[label("reserved word")]
        span: Span,
    },
    /// `type: object` without `fields`, or `fields` on another type.
    #[error("{message}")]
    #[diagnostic(
        code("flowc::model::object-fields"),
        help("an `object` declares its `fields`; other types have none")
    )]
    ObjectFields {
        /// What is wrong.
        message: String,
        /// Where.
        #[label("here")]
        span: Span,
    },
    /// A default or enum value that does not have the declared type.
    #[error("{what} `{value}`{at} is not a `{ty}`")]
    #[diagnostic(
        code("flowc::model::value-type"),
        help("write a value of the declared type")
    )]
    ValueType {
        /// "default" or "enum value".
        what: &'static str,
        /// The value.
        value: String,
        /// " at `path`" inside the default, or empty.
        at: String,
        /// The declared type.
        ty: String,
        /// Where.
        #[label("wrong type")]
        span: Span,
    },
    /// A default outside the `enum` of its field (or of a nested field).
    #[error("{what} `{value}`{at} is not one of the `enum` values")]
    #[diagnostic(
        code("flowc::model::not-in-enum"),
        help("use one of {allowed}, or add the value to `enum`")
    )]
    NotInEnum {
        /// "default" or "enum value".
        what: &'static str,
        /// The value.
        value: String,
        /// " at `path`" inside the default, or empty.
        at: String,
        /// The allowed values.
        allowed: String,
        /// Where.
        #[label("not in `enum`")]
        span: Span,
    },
    /// An object default (or enum value) that sets a field the object does not declare.
    #[error("{what} sets `{field}`, which the object does not declare")]
    #[diagnostic(code("flowc::model::undeclared-field"))]
    UndeclaredField {
        /// "default" or "enum value".
        what: &'static str,
        /// The field's path inside the value.
        field: String,
        /// Where.
        #[label("not a declared field")]
        span: Span,
        /// Did-you-mean or the declared fields.
        #[help]
        help: String,
    },
    /// An object default (or enum value) without a field that is required.
    #[error("{what} lacks the required field `{field}`")]
    #[diagnostic(
        code("flowc::model::missing-field"),
        help(
            "add `{field}` (a `{expected}`) to the {what}, or declare the field with its own `default` or `optional: true`"
        )
    )]
    MissingField {
        /// "default" or "enum value".
        what: &'static str,
        /// The field's path inside the value.
        field: String,
        /// Its declared type.
        expected: String,
        /// Where.
        #[label("`{field}` is missing")]
        span: Span,
    },
    /// `type: list` without `items`, `type: map` without `values`, or either key on
    /// another type.
    #[error("{message}")]
    #[diagnostic(code("flowc::model::element-type"))]
    ElementType {
        /// What is wrong.
        message: String,
        /// Where.
        #[label("here")]
        span: Span,
        /// How to write it.
        #[help]
        help: String,
    },
}

fn spanned_str(node: &Node) -> Spanned<String> {
    Spanned {
        value: node.as_str().unwrap_or_default().to_owned(),
        span: node.span,
    }
}

fn expr_source(file: &SourceFile, node: &Node) -> ExprSource {
    let text = node.as_str().unwrap_or_default().to_owned();
    let offsets = node.as_scalar().map_or_else(
        || (0..=text.len()).map(|i| node.span.start + i).collect(),
        |s| value_offsets(file.text(), node.span, s),
    );
    ExprSource {
        text,
        span: node.span,
        offsets,
    }
}

/// Unicode's `Default_Ignorable_Code_Point` ranges (`DerivedCoreProperties`, Unicode 15):
/// characters a text shows with no width and no mark (zero-width space and joiners,
/// the word joiner, the byte-order mark, variation selectors, invisible fillers, tags).
const DEFAULT_IGNORABLE: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{034F}', '\u{034F}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{115F}', '\u{1160}'),
    ('\u{17B4}', '\u{17B5}'),
    ('\u{180B}', '\u{180F}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{206F}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{FE00}', '\u{FE0F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFA0}', '\u{FFA0}'),
    ('\u{FFF0}', '\u{FFF8}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0000}', '\u{E0FFF}'),
];

/// Characters that show nothing yet are neither `White_Space` nor
/// `Default_Ignorable_Code_Point` (checked against `UnicodeData` and
/// `DerivedCoreProperties`, Unicode 16), other than the C0 and C1 controls (general
/// category `Cc`, [`char::is_control`]: no glyph): U+2800 BRAILLE PATTERN BLANK (the
/// Braille cell with no dot raised) and U+1D159 MUSICAL SYMBOL NULL NOTEHEAD (a
/// notehead drawn as nothing). The Hangul fillers U+115F, U+1160, U+3164 and U+FFA0
/// are default-ignorable ([`DEFAULT_IGNORABLE`]).
const BLANK_SYMBOLS: &[(char, char)] = &[('\u{2800}', '\u{2800}'), ('\u{1D159}', '\u{1D159}')];

/// Whether a character shows nothing: Unicode `White_Space`,
/// `Default_Ignorable_Code_Point` ([`DEFAULT_IGNORABLE`]), or one of the few others
/// drawn as nothing (the controls, [`BLANK_SYMBOLS`]).
fn is_invisible(c: char) -> bool {
    // below the tables' lowest character only white space and the controls show
    // nothing: the common ASCII name is decided without scanning the tables
    c.is_whitespace()
        || c.is_control()
        || (c >= FIRST_IGNORABLE
            && DEFAULT_IGNORABLE
                .iter()
                .chain(BLANK_SYMBOLS)
                .any(|&(lo, hi)| (lo..=hi).contains(&c)))
}

/// The lowest character of [`DEFAULT_IGNORABLE`] and [`BLANK_SYMBOLS`], found from the
/// tables when compiling.
const FIRST_IGNORABLE: char = {
    let mut lowest = char::MAX;
    let mut tables: &[&[(char, char)]] = &[DEFAULT_IGNORABLE, BLANK_SYMBOLS];
    while let Some((table, more)) = tables.split_first() {
        let mut rest = *table;
        while let Some(((lo, _), tail)) = rest.split_first() {
            if (*lo as u32) < (lowest as u32) {
                lowest = *lo;
            }
            rest = tail;
        }
        tables = more;
    }
    lowest
};

/// Whether a user or role name is blank: empty, or only characters that show nothing
/// (Unicode white space, the default-ignorable characters such as the zero-width
/// space U+200B, the word joiner U+2060 and the byte-order mark U+FEFF, the controls
/// and the Braille blank U+2800), so that no one can be asked. The one rule for the
/// names written in a flow (`check`) and for the user ids an assignee expression gives
/// at run time (decision 127).
#[must_use]
pub fn is_blank_name(name: &str) -> bool {
    name.chars().all(is_invisible)
}

/// Whether a name that is not blank ([`is_blank_name`]) starts or ends with a
/// character that shows nothing (`"li "`, `" li"`, `"li\u{200b}"`, `"\u{feff}li"`):
/// refused like a blank one, since such a name differs from the user it shows only by
/// what cannot be seen (decision 127). A variation selector may end a visible name
/// (an emoji's U+FE0F), and is the one invisible character allowed at an end.
#[must_use]
pub fn is_padded_name(name: &str) -> bool {
    !is_blank_name(name)
        && (name.chars().next().is_some_and(pads_a_name)
            || name.chars().next_back().is_some_and(pads_a_name))
}

/// Whether a name that starts or ends with this character is padded or blank
/// ([`is_padded_name`], [`is_blank_name`]): a character that shows nothing, other than a
/// variation selector.
#[must_use]
pub fn pads_a_name(c: char) -> bool {
    is_invisible(c) && !is_variation_selector(c)
}

/// U+FE00–U+FE0F and U+E0100–U+E01EF: they choose how the character before them is
/// drawn (an emoji's U+FE0F), so a visible name may end in one.
fn is_variation_selector(c: char) -> bool {
    ('\u{fe00}'..='\u{fe0f}').contains(&c) || ('\u{e0100}'..='\u{e01ef}').contains(&c)
}

/// Parses `30s`, `15m`, `48h`, `7d` into seconds.
#[must_use]
pub fn parse_duration(text: &str) -> Option<u64> {
    let unit = text.chars().last()?;
    let n: u64 = text.get(..text.len() - 1)?.parse().ok()?;
    let mul = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    n.checked_mul(mul)
}

struct Builder<'a> {
    file: &'a Arc<SourceFile>,
    errors: Vec<ModelError>,
    recovery: Recovery,
}

/// What the model had to leave out of a tree that failed the schema (error recovery:
/// later stages check what could be read, and stay quiet about what could not).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recovery {
    /// Ids of steps that could not be read (no id, no known type): references to them
    /// are not "unknown".
    pub dropped_steps: Vec<String>,
    /// A step or rule was left out, so the fall-through order and the edges are not
    /// the written ones: flow-wide analyses (reachability, loops) would mislead.
    pub incomplete_graph: bool,
    /// `context` is not a mapping: every name used in a condition would be "unknown".
    pub unreadable_context: bool,
    /// The skip conditions and rule conditions of steps that were left out: they are
    /// still type-checked.
    pub unread_conditions: Vec<ExprSource>,
}

/// A stand-in for a missing `assignees`/`to` (the schema reported it; the step is kept
/// so that the rest of it and the graph are still checked).
fn missing_assignees(step: &Node) -> Assignees {
    Assignees::Role(Spanned {
        value: String::new(),
        span: step.span,
    })
}

impl Builder<'_> {
    fn expr(&self, node: &Node) -> ExprSource {
        expr_source(self.file, node)
    }

    fn duration(node: Option<&Node>) -> Option<Spanned<u64>> {
        node.and_then(|n| {
            Some(Spanned {
                value: parse_duration(n.as_str()?)?,
                span: n.span,
            })
        })
    }

    /// `None` for an unknown form (`rol: manager`, reported by the schema): the caller
    /// uses a stand-in rather than reading the value as an expression.
    fn assignees(&self, node: &Node) -> Option<Assignees> {
        let (k, v) = node.as_map()?.first()?;
        Some(match k.as_str()? {
            "role" => Assignees::Role(spanned_str(v)),
            "user" => Assignees::User(spanned_str(v)),
            "users" => Assignees::Users(v.as_seq()?.iter().map(spanned_str).collect()),
            "expr" => Assignees::Expr(self.expr(v)),
            _ => return None,
        })
    }

    fn steps(&mut self, node: Option<&Node>) -> Vec<Step> {
        let Some(items) = node.and_then(Node::as_seq) else {
            self.recovery.incomplete_graph |= node.is_some();
            return Vec::new();
        };
        let mut out = Vec::with_capacity(items.len());
        for n in items {
            if let Some(s) = self.step(n) {
                out.push(s);
            } else {
                self.recovery.incomplete_graph = true;
                if let Some(id) = n.get("id").and_then(Node::as_str) {
                    self.recovery.dropped_steps.push(id.to_owned());
                }
                let rules = n.get("rules").and_then(Node::as_seq).unwrap_or_default();
                let conditions = n
                    .get("skipCondition")
                    .into_iter()
                    .chain(rules.iter().filter_map(|r| r.get("when")))
                    .filter(|c| c.as_str().is_some())
                    .map(|c| self.expr(c))
                    .collect::<Vec<_>>();
                self.recovery.unread_conditions.extend(conditions);
            }
        }
        out
    }

    fn rules(&mut self, node: Option<&Node>) -> Vec<Rule> {
        let items = node.and_then(Node::as_seq).unwrap_or_default();
        let mut rules: Vec<Rule> = Vec::with_capacity(items.len());
        for r in items {
            match (r.get("when"), r.get("goto")) {
                (Some(when), Some(goto)) => rules.push(Rule {
                    when: self.expr(when),
                    goto: spanned_str(goto),
                    span: r.span,
                }),
                // a rule missing `goto` (reported by the schema): its condition is still
                // type-checked
                (Some(when), None) if when.as_str().is_some() => {
                    let c = self.expr(when);
                    self.recovery.unread_conditions.push(c);
                }
                _ => {}
            }
        }
        self.recovery.incomplete_graph |= rules.len() != items.len();
        rules
    }

    #[expect(clippy::too_many_lines, reason = "one match over the step types")]
    fn step(&mut self, n: &Node) -> Option<Step> {
        // a step missing `id` (reported by the schema) is still read, under a name no
        // reference can spell, so that its own references and conditions are checked;
        // the graph is then not the written one
        let id = if let Some(id) = n.get("id") {
            spanned_str(id)
        } else {
            self.recovery.incomplete_graph = true;
            Spanned {
                value: format!("(step at line {})", self.file.line_col(n.span.start).0),
                span: n.span,
            }
        };
        let type_node = n.get("type");
        let s = |k: &str| n.get(k).and_then(Node::as_str);
        let goto = |k: &str| n.get(k).map(spanned_str);
        // an unknown or missing type (reported by the schema) is read as the type it was
        // meant to be, so that the rest of the step is checked and references to it
        // resolve
        let written = match type_node {
            Some(t) => t.as_str()?,
            None => "",
        };
        let type_name = if crate::load::STEP_TYPES.contains(&written) {
            written
        } else {
            crate::load::recovered_step_type(written, |k| n.get(k).is_some())?
        };
        let type_span = type_node.map_or(id.span, |t| t.span);
        let kind = match type_name {
            "approval" => StepKind::Approval {
                assignees: n
                    .get("assignees")
                    .and_then(|a| self.assignees(a))
                    .unwrap_or_else(|| missing_assignees(n)),
                mode: match s("mode") {
                    Some("any") => Mode::Any,
                    Some("all") => Mode::All,
                    Some("sequence") => Mode::Sequence,
                    _ => Mode::Single,
                },
                timeout: Self::duration(n.get("timeout")),
                // a `timeout` the schema refused is written all the same: `onTimeout` is
                // not "without a timeout", and its target is still checked
                timeout_refused: n.get("timeout").is_some()
                    && Self::duration(n.get("timeout")).is_none(),
                on_timeout: n.get("onTimeout").map(|t| Spanned {
                    value: match t.as_str().unwrap_or_default() {
                        "escalate" => OnTimeout::Escalate,
                        "approve" => OnTimeout::Approve,
                        "reject" => OnTimeout::Reject,
                        other => OnTimeout::Goto(other.to_owned()),
                    },
                    span: t.span,
                }),
                escalate_to: n
                    .get("escalateTo")
                    .map(|a| self.assignees(a).unwrap_or_else(|| missing_assignees(a))),
                allow_add_signer: n
                    .get("allowAddSigner")
                    .and_then(Node::as_scalar)
                    .is_some_and(|s| s.resolve() == Resolved::Bool(true)),
                on_reject: goto("onReject"),
            },
            "service-task" => StepKind::ServiceTask {
                service: n.get("service").map_or_else(
                    || Spanned {
                        value: String::new(),
                        span: n.span,
                    },
                    spanned_str,
                ),
                timeout: Self::duration(n.get("timeout")),
                retry: n.get("retry").map(|r| Retry {
                    max: r
                        .get("max")
                        .and_then(Node::as_str)
                        .and_then(|m| m.parse().ok())
                        .unwrap_or(0),
                    backoff_secs: r
                        .get("backoff")
                        .and_then(Node::as_str)
                        .and_then(parse_duration),
                }),
                on_error: goto("onError"),
            },
            "decision" => StepKind::Decision {
                hit_policy: if s("hitPolicy") == Some("unique") {
                    HitPolicy::Unique
                } else {
                    HitPolicy::First
                },
                rules: self.rules(n.get("rules")),
                default: goto("default"),
            },
            "parallel" => StepKind::Parallel {
                join: if s("join") == Some("any") {
                    Join::Any
                } else {
                    Join::All
                },
                branches: {
                    let written = n.get("branches").and_then(Node::as_seq).unwrap_or_default();
                    // no branches, or a branch without `steps` (both reported by the
                    // schema): the graph through this step is not the written one
                    let branches: Vec<Branch> = written
                        .iter()
                        .filter(|b| b.get("steps").is_some())
                        .map(|b| Branch {
                            name: b.get("name").and_then(Node::as_str).map(str::to_owned),
                            steps: self.steps(b.get("steps")),
                            span: b.span,
                        })
                        .collect();
                    self.recovery.incomplete_graph |=
                        branches.is_empty() || branches.len() != written.len();
                    branches
                },
            },
            "notify" => StepKind::Notify {
                to: n
                    .get("to")
                    .and_then(|a| self.assignees(a))
                    .unwrap_or_else(|| missing_assignees(n)),
                message: s("message").map(str::to_owned),
            },
            "end" => StepKind::End {
                outcome: if s("outcome") == Some("rejected") {
                    Outcome::Rejected
                } else {
                    Outcome::Approved
                },
            },
            _ => return None,
        };
        Some(Step {
            id,
            name: s("name").map(str::to_owned),
            type_span,
            span: n.span,
            next: goto("next"),
            skip: n.get("skipCondition").map(|c| self.expr(c)),
            kind,
        })
    }
}

/// Builds the model and reports every model error; wrong declarations become `dyn`
/// so that later stages can still check everything else.
#[must_use]
pub fn build_lenient(file: &Arc<SourceFile>, root: &Node) -> (Flow, Diagnostics) {
    let (flow, d, _) = build_recovering(file, root);
    (flow, d)
}

/// Builds the model from a tree that may have failed the schema: every part that can be
/// read is kept (a step lacking `assignees` keeps its other keys), and [`Recovery`] says
/// what was left out.
#[must_use]
pub fn build_recovering(file: &Arc<SourceFile>, root: &Node) -> (Flow, Diagnostics, Recovery) {
    let (flow, errors, recovery) = build_inner(file, root);
    let mut d = Diagnostics::new();
    for e in errors {
        d.add(file, e);
    }
    (flow, d, recovery)
}

/// Builds the model from a schema-valid tree.
///
/// # Errors
/// Every model error of the file.
pub fn build(file: &Arc<SourceFile>, root: &Node) -> Result<Flow, Diagnostics> {
    let (flow, d) = build_lenient(file, root);
    if d.is_empty() { Ok(flow) } else { Err(d) }
}

fn build_inner(file: &Arc<SourceFile>, root: &Node) -> (Flow, Vec<ModelError>, Recovery) {
    let mut b = Builder {
        file,
        errors: Vec::new(),
        recovery: Recovery {
            unreadable_context: root.get("context").is_some_and(|c| c.as_map().is_none()),
            ..Recovery::default()
        },
    };
    let mut context = Vec::new();
    for (k, v) in root
        .get("context")
        .and_then(Node::as_map)
        .unwrap_or_default()
    {
        context.push(b.field(k, v));
    }
    let steps = b.steps(root.get("steps"));
    let flow = Flow {
        file: Arc::clone(file),
        id: root.get("id").map_or_else(
            || Spanned {
                value: String::new(),
                span: Span::default(),
            },
            spanned_str,
        ),
        name: root.get("name").and_then(Node::as_str).map(str::to_owned),
        context,
        steps,
    };
    (flow, b.errors, b.recovery)
}
