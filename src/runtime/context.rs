//! Instance contexts: a JSON object checked against the flow's `context` declaration,
//! with defaults filled in, then bound to the compiled programs' variable slots.

use std::sync::Arc;

use crate::compile::CompiledFlow;
use crate::diagnostic::did_you_mean;
use crate::expr::Value;
use crate::expr::time;
use crate::model::{FieldDecl, Type};
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

fn json_kind(v: &serde_json::Value) -> &'static str {
    use serde_json::Value as J;
    match v {
        J::Null => "null",
        J::Bool(_) => "a bool",
        J::Number(_) => "a number",
        J::String(_) => "a string",
        J::Array(_) => "a list",
        J::Object(_) => "an object",
    }
}

fn shown(v: &serde_json::Value) -> String {
    let mut s = v.to_string();
    if s.len() > 60 {
        let mut cut = 57;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

fn path(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

/// Converts a JSON value to the CEL value of a declared type.
///
/// # Errors
/// A wrong type or unknown nested field, naming the field path.
pub fn convert(ty: &Type, v: &serde_json::Value, field: &str) -> Result<Value, ContextError> {
    use serde_json::Value as J;
    let wrong = || ContextError::WrongType {
        field: field.to_owned(),
        expected: ty.to_string(),
        got: format!("{} `{}`", json_kind(v), shown(v)),
    };
    Ok(match (ty, v) {
        (Type::Dyn, _) => Value::from_json(v),
        (Type::Null, J::Null) => Value::Null,
        (Type::Bool, J::Bool(b)) => Value::Bool(*b),
        (Type::String, J::String(s)) => Value::string(s),
        (Type::Int, J::Number(n)) => Value::Int(n.as_i64().ok_or_else(wrong)?),
        (Type::Uint, J::Number(n)) => Value::Uint(n.as_u64().ok_or_else(wrong)?),
        (Type::Double, J::Number(n)) => Value::Double(n.as_f64().ok_or_else(wrong)?),
        (Type::Timestamp, J::String(s)) => {
            Value::Timestamp(time::parse_timestamp(s).ok_or_else(wrong)?)
        }
        (Type::Duration, J::String(s)) => {
            Value::Duration(time::parse_duration(s).ok_or_else(wrong)?)
        }
        (Type::Bytes, J::String(s)) => Value::Bytes(Arc::from(s.as_bytes())),
        (Type::List(t), J::Array(items)) => Value::List(Arc::new(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| convert(t, x, &format!("{field}[{i}]")))
                .collect::<Result<_, _>>()?,
        )),
        (Type::Map(_, t), J::Object(m)) => Value::Map(Arc::new(
            m.iter()
                .map(|(k, x)| Ok((Value::string(k), convert(t, x, &format!("{field}[{k:?}]"))?)))
                .collect::<Result<_, _>>()?,
        )),
        (Type::Object(o), J::Object(m)) => {
            if let Some(k) = m.keys().find(|k| !o.fields.contains_key(*k)) {
                let names: Vec<&str> = o.fields.keys().map(String::as_str).collect();
                return Err(unknown(&path(field, k), k, &names));
            }
            let mut out = Vec::with_capacity(o.fields.len());
            for (name, f) in &o.fields {
                match m.get(name) {
                    Some(x) => {
                        out.push((Value::string(name), convert(&f.ty, x, &path(field, name))?));
                    }
                    None if f.optional => {}
                    None => {
                        return Err(ContextError::Missing {
                            field: path(field, name),
                            expected: f.ty.to_string(),
                        });
                    }
                }
            }
            Value::Map(Arc::new(out))
        }
        _ => return Err(wrong()),
    })
}

fn unknown(field: &str, name: &str, declared: &[&str]) -> ContextError {
    let help = match did_you_mean(name, declared.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None if declared.is_empty() => "the flow declares no context fields".to_owned(),
        None => format!("declared fields: {}", declared.join(", ")),
    };
    ContextError::Unknown {
        field: field.to_owned(),
        help,
    }
}

fn check_allowed(decl: &FieldDecl, v: &serde_json::Value) -> Result<(), ContextError> {
    let Some(allowed) = &decl.allowed else {
        return Ok(());
    };
    let same = |a: &serde_json::Value| match (a.as_f64(), v.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() == 0.0,
        _ => a == v,
    };
    if allowed.iter().any(same) {
        return Ok(());
    }
    Err(ContextError::NotAllowed {
        field: decl.name.value.clone(),
        value: shown(v),
        allowed: allowed.iter().map(shown).collect::<Vec<_>>().join(", "),
    })
}

/// Checks a context against the flow's declaration and fills in defaults; returns the
/// normalised JSON (what an instance persists) and the bound variables.
///
/// # Errors
/// The first problem, naming the field.
pub fn bind(
    flow: &CompiledFlow,
    context: &serde_json::Value,
) -> Result<(serde_json::Value, Bindings), ContextError> {
    let serde_json::Value::Object(given) = context else {
        return Err(ContextError::NotAnObject {
            got: json_kind(context),
        });
    };
    let decls = &flow.flow().context;
    if let Some(k) = given
        .keys()
        .find(|k| !decls.iter().any(|d| d.name.value == **k))
    {
        let names: Vec<&str> = decls.iter().map(|d| d.name.value.as_str()).collect();
        return Err(unknown(k, k, &names));
    }
    let mut normal = serde_json::Map::new();
    let mut bindings = Bindings::new();
    for d in decls {
        let name = &d.name.value;
        let v = match given.get(name).or(d.default.as_ref()) {
            Some(v) => v,
            None if d.optional => continue,
            None => {
                return Err(ContextError::Missing {
                    field: name.clone(),
                    expected: d.ty.to_string(),
                });
            }
        };
        let value = convert(&d.ty, v, name)?;
        check_allowed(d, v)?;
        if let Some(i) = flow.vars().index(name) {
            bindings.set(i, &value);
        }
        normal.insert(name.clone(), v.clone());
    }
    Ok((serde_json::Value::Object(normal), bindings))
}
