//! Instance contexts: a JSON object checked against the flow's `context` declaration,
//! with defaults filled in, then bound to the compiled programs' variable slots.

use crate::compile::CompiledFlow;
use crate::diagnostic::did_you_mean;
use crate::model::decl::json_kind;
use crate::model::{FieldPath, Misfit, MisfitKind, PathPart, fit_fields};
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

/// Checks a context against the flow's declaration with [`crate::model::fit_fields`]
/// (the definition `flowc check` uses for defaults and `enum` values) and fills in every
/// default at any depth; returns the normalised JSON (what an instance persists) and the
/// bound variables.
///
/// # Errors
/// The first problem, naming the field by its path (`items[2].amount`).
pub fn bind(
    flow: &CompiledFlow,
    context: &serde_json::Value,
) -> Result<(serde_json::Value, Bindings), ContextError> {
    let serde_json::Value::Object(given) = context else {
        return Err(ContextError::NotAnObject {
            got: json_kind(context),
        });
    };
    let fitted = fit_fields(&flow.flow().context, given, &FieldPath::default())
        .map_err(ContextError::from_misfit)?;
    let mut normal = serde_json::Map::with_capacity(fitted.len());
    let mut bindings = Bindings::new();
    // the fitted fields come in declaration order (absent optional ones left out): each
    // one's slot is found by walking the declarations alongside, not by its name
    let mut slots = flow.flow().context.iter().zip(flow.context_slots());
    for (decl, f) in fitted {
        let slot = slots
            .by_ref()
            .find(|(d, _)| std::ptr::eq(*d, decl))
            .and_then(|(_, slot)| *slot);
        if let Some(i) = slot {
            bindings.set(i, &f.value);
        }
        normal.insert(decl.name.value.clone(), f.json);
    }
    Ok((serde_json::Value::Object(normal), bindings))
}
