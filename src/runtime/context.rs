//! Instance contexts: a JSON object checked against the flow's `context` declaration,
//! with defaults filled in, then bound to the compiled programs' variable slots.

use std::sync::Arc;

use crate::compile::CompiledFlow;
use crate::diagnostic::did_you_mean;
use crate::model::decl::json_kind;
use crate::model::decl::{Given, fit_object};
use crate::model::{FieldPath, Misfit, MisfitKind, PathPart};
use crate::sandbox::Bindings;

/// Why a context was refused (no instance is created).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum ContextError {
    /// The context is not a JSON object.
    #[error("the context must be a JSON object, not {got}")]
    #[diagnostic(
        code("flowc::runtime::context-not-object"),
        help("pass an object whose keys are the flow's `context` fields")
    )]
    NotAnObject {
        /// The JSON type given.
        got: &'static str,
    },
    /// A required field is absent.
    #[error("context field `{field}` is missing")]
    #[diagnostic(
        code("flowc::runtime::missing-field"),
        help(
            "the flow declares `{field}` as `{expected}`; add it to the context, or declare it `optional: true` or with a `default`"
        )
    )]
    Missing {
        /// The field path (`applicant.id`).
        field: String,
        /// Its declared type.
        expected: String,
    },
    /// A field has the wrong type.
    #[error("context field `{field}` should be `{expected}`, found {got}")]
    #[diagnostic(
        code("flowc::runtime::wrong-type"),
        help("give `{field}` a value of type `{expected}`")
    )]
    WrongType {
        /// The field path.
        field: String,
        /// Its declared type.
        expected: String,
        /// What was given (the JSON value, shortened).
        got: String,
    },
    /// A value outside the field's `enum`.
    #[error("context field `{field}` is {value}, which is not one of {allowed}")]
    #[diagnostic(code("flowc::runtime::not-allowed"), help("use one of {allowed}"))]
    NotAllowed {
        /// The field path.
        field: String,
        /// The value given.
        value: String,
        /// The allowed values.
        allowed: String,
    },
    /// A field the flow does not declare.
    #[error("context field `{field}` is not declared by the flow")]
    #[diagnostic(code("flowc::runtime::unknown-field"), help("{help}"))]
    Unknown {
        /// The field path.
        field: String,
        /// Did-you-mean or the declared fields.
        help: String,
    },
}

impl crate::diagnostic::ErrorCode for ContextError {
    fn code(&self) -> &'static str {
        match self {
            ContextError::NotAnObject { .. } => "flowc::runtime::context-not-object",
            ContextError::Missing { .. } => "flowc::runtime::missing-field",
            ContextError::WrongType { .. } => "flowc::runtime::wrong-type",
            ContextError::NotAllowed { .. } => "flowc::runtime::not-allowed",
            ContextError::Unknown { .. } => "flowc::runtime::unknown-field",
        }
    }
}

impl ContextError {
    /// The runtime's error for a context value that does not fit the flow's declaration.
    fn from_misfit(m: Misfit) -> Self {
        let field = m.path.to_string();
        match m.kind {
            MisfitKind::Missing { expected } => ContextError::Missing { field, expected },
            MisfitKind::WrongType { expected, got } => ContextError::WrongType {
                field,
                expected,
                got,
            },
            MisfitKind::NotAllowed { value, allowed } => ContextError::NotAllowed {
                field,
                value,
                allowed,
            },
            MisfitKind::Unknown { declared } => {
                let name = match m.path.0.last() {
                    Some(PathPart::Field(k) | PathPart::Key(k)) => k.as_str(),
                    _ => field.as_str(),
                };
                let help = match did_you_mean(name, declared.iter().map(String::as_str)) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None if declared.is_empty() => "the flow declares no context fields".to_owned(),
                    None => format!("declared fields: {}", declared.join(", ")),
                };
                ContextError::Unknown { field, help }
            }
        }
    }
}

/// Checks a context against the flow's declaration with the one fit routine
/// ([`crate::model::decl::fit_object`], the definition `flowc check` uses for defaults
/// and `enum` values) and fills in every default at any depth; returns the normalised
/// context (what an instance persists) and the bound variables (only the fields a
/// condition reads are converted to CEL values).
///
/// The context is borrowed (`&serde_json::Value`: what the instance keeps is copied) or
/// handed over (`serde_json::Value`: normalised in place and kept, nothing copied).
///
/// # Errors
/// The first problem, naming the field by its path (`items[2].amount`).
pub fn bind(
    flow: &CompiledFlow,
    context: impl IntoContext,
) -> Result<(Context, Bindings), ContextError> {
    let slots = flow.context_slots();
    context.bind(flow, &|i| matches!(slots.get(i), Some(Some(_))))
}

/// [`bind`] for an instance: only the fields the flow's programs read are bound
/// ([`CompiledFlow::context_read`]).
pub(super) fn bind_read(
    flow: &CompiledFlow,
    context: impl IntoContext,
) -> Result<(Context, Bindings), ContextError> {
    let read = flow.context_read();
    context.bind(flow, &|i| read.get(i).copied().unwrap_or(true))
}

/// A context as a host hands it over: borrowed (`&serde_json::Value`, copied where
/// kept) or owned (`serde_json::Value`, kept as it is once normalised).
pub trait IntoContext: sealed::Sealed {
    /// The context as JSON.
    fn json(&self) -> &serde_json::Value;
    /// [`bind`], binding field `i` (by declaration order) when `want(i)`.
    ///
    /// # Errors
    /// As [`bind`].
    fn bind(
        self,
        flow: &CompiledFlow,
        want: &dyn Fn(usize) -> bool,
    ) -> Result<(Context, Bindings), ContextError>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for &serde_json::Value {}
    impl Sealed for serde_json::Value {}
}

impl IntoContext for &serde_json::Value {
    fn json(&self) -> &serde_json::Value {
        self
    }

    fn bind(
        self,
        flow: &CompiledFlow,
        want: &dyn Fn(usize) -> bool,
    ) -> Result<(Context, Bindings), ContextError> {
        let names = flow.shared_context_names();
        let mut values = Vec::with_capacity(names.len());
        let bindings = bind_with(flow, self, want, |i, json| {
            if i < names.len() {
                values.push((i, json));
            }
        })?;
        Ok((
            Context {
                fields: Fields::Shared {
                    names: Arc::clone(names),
                    values,
                },
            },
            bindings,
        ))
    }
}

impl IntoContext for serde_json::Value {
    fn json(&self) -> &serde_json::Value {
        self
    }

    fn bind(
        mut self,
        flow: &CompiledFlow,
        want: &dyn Fn(usize) -> bool,
    ) -> Result<(Context, Bindings), ContextError> {
        let bindings = bind_with(flow, &mut self, want, |_, ()| {})?;
        let fields = match self {
            serde_json::Value::Object(m) => Fields::Object(m),
            _ => Fields::Object(serde_json::Map::new()),
        };
        Ok((Context { fields }, bindings))
    }
}

/// Fits `given` with [`fit_object`] and binds each field that has a slot and is wanted
/// to its slot; `keep` gets every field's normalised JSON as `G` keeps it, with its
/// index.
fn bind_with<'a, G: Given<'a>>(
    flow: &'a CompiledFlow,
    given: G,
    want: &dyn Fn(usize) -> bool,
    mut keep: impl FnMut(usize, G::Json),
) -> Result<Bindings, ContextError> {
    if !given.json().is_object() {
        return Err(ContextError::NotAnObject {
            got: json_kind(given.json()),
        });
    }
    let slots = flow.context_slots();
    let mut bindings = Bindings::with_slots(slots.iter().flatten().max().map_or(0, |m| m + 1));
    fit_object(
        &flow.flow().context,
        given,
        &FieldPath::default(),
        |i| matches!(slots.get(i), Some(Some(_))) && want(i),
        |i, _, fit| {
            if let (Some(Some(slot)), Some(value)) = (slots.get(i), fit.value) {
                bindings.set_owned(*slot, value);
            }
            keep(i, fit.json);
        },
    )
    .map_err(ContextError::from_misfit)?;
    Ok(bindings)
}

/// An instance's context: the JSON object given to
/// [`Instance::start`](super::Instance::start), checked against the flow's declaration
/// with every default filled in.
///
/// It serialises as that JSON object, fields in declaration order (a bound context
/// shares its field names with the compiled flow instead of copying them per instance).
/// Two contexts are equal when they hold the same fields with the same values, in any
/// order (as JSON objects are).
#[derive(Clone, Debug)]
pub struct Context {
    fields: Fields,
}

/// A bound context's fields, or a read (deserialised) one's object as read.
#[derive(Clone, Debug)]
enum Fields {
    /// The flow's field names (shared with the compiled flow: one reference for all of
    /// them), and each given or defaulted field's value with the index of its name.
    Shared {
        names: Arc<[Arc<str>]>,
        values: Vec<(usize, serde_json::Value)>,
    },
    Object(serde_json::Map<String, serde_json::Value>),
}

impl Fields {
    /// A shared field's name.
    fn name(names: &[Arc<str>], i: usize) -> &str {
        names.get(i).map_or("", |n| &**n)
    }
}

impl Default for Context {
    fn default() -> Self {
        Context {
            fields: Fields::Object(serde_json::Map::new()),
        }
    }
}

impl Context {
    /// The value of a field.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&serde_json::Value> {
        match &self.fields {
            Fields::Shared { names, values } => values
                .iter()
                .find(|(i, _)| Fields::name(names, *i) == name)
                .map(|(_, v)| v),
            Fields::Object(m) => m.get(name),
        }
    }

    /// The fields, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &serde_json::Value)> {
        let (shared, object) = match &self.fields {
            Fields::Shared { names, values } => (
                Some(values.iter().map(|(i, v)| (Fields::name(names, *i), v))),
                None,
            ),
            Fields::Object(m) => (None, Some(m.iter().map(|(k, v)| (k.as_str(), v)))),
        };
        shared
            .into_iter()
            .flatten()
            .chain(object.into_iter().flatten())
    }

    /// How many fields it holds.
    #[must_use]
    pub fn len(&self) -> usize {
        match &self.fields {
            Fields::Shared { values, .. } => values.len(),
            Fields::Object(m) => m.len(),
        }
    }

    /// Whether it holds no field.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// As a JSON object.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(match &self.fields {
            Fields::Shared { names, values } => values
                .iter()
                .map(|(i, v)| (Fields::name(names, *i).to_owned(), v.clone()))
                .collect(),
            Fields::Object(m) => m.clone(),
        })
    }

    /// A context holding exactly the fields of a JSON object (`None` for any other JSON
    /// value); unchecked: [`Instance::restore`](super::Instance::restore) checks it.
    #[must_use]
    pub fn from_json(value: serde_json::Value) -> Option<Self> {
        match value {
            serde_json::Value::Object(m) => Some(Context {
                fields: Fields::Object(m),
            }),
            _ => None,
        }
    }
}

impl std::ops::Index<&str> for Context {
    type Output = serde_json::Value;

    /// The field's value, or JSON `null` when absent (as `serde_json` indexes objects).
    fn index(&self, name: &str) -> &serde_json::Value {
        static NULL: serde_json::Value = serde_json::Value::Null;
        self.get(name).unwrap_or(&NULL)
    }
}

impl PartialEq for Context {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .all(|(k, v)| other.get(k).is_some_and(|w| w == v))
    }
}

impl serde::Serialize for Context {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> serde::Deserialize<'de> for Context {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Context {
            fields: Fields::Object(serde_json::Map::deserialize(d)?),
        })
    }
}
