//! Declared context types and the one definition of "this JSON value fits this type".
//!
//! A declaration is a CEL [`Type`] (what conditions see) plus what only a declaration
//! says: `enum`, and for the fields of objects at any depth `optional` and `default`.
//! [`fit`] is used by `flowc check` (every `default` and `enum` value of a flow) and by
//! the runtime (every instance context at start) alike, so what check passes, the
//! runtime accepts.

use std::fmt;
use std::sync::Arc;

use super::Spanned;
use crate::expr::Type;
use crate::expr::Value;
use crate::expr::time;
use crate::expr::value::equals;
use crate::span::Span;

/// What a context declaration says about a value, at any depth.
///
/// INVARIANT: `parts` follows `ty`: `list<T>` has [`Parts::Items`], `map<string, T>`
/// has [`Parts::Values`], `object` has [`Parts::Fields`], every other type
/// [`Parts::None`] (built by the model, or by [`Declared::of`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Declared {
    /// The CEL type the conditions see.
    pub ty: Type,
    /// `enum`: the allowed values, as written.
    pub allowed: Option<Vec<serde_json::Value>>,
    /// What is declared about the parts of the value.
    pub parts: Parts,
}

/// The declared parts of a list, map or object.
#[derive(Clone, Debug, PartialEq)]
pub enum Parts {
    /// A scalar: no parts.
    None,
    /// The items of a list.
    Items(Box<Declared>),
    /// The values of a map (its keys are strings).
    Values(Box<Declared>),
    /// The fields of an object, in declaration order.
    Fields(Vec<FieldDecl>),
}

/// A declared field: of the flow's `context`, or of an object at any depth.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldDecl {
    /// The field name.
    pub name: Spanned<String>,
    /// Its declaration.
    pub decl: Declared,
    /// May be absent (and has no default).
    pub optional: bool,
    /// Used when absent.
    pub default: Option<serde_json::Value>,
    /// The span of the declaration's value.
    pub span: Span,
}

impl Declared {
    /// The declaration of a bare type (no `enum`, no defaults, no optional fields beyond
    /// what the type says).
    #[must_use]
    pub fn of(ty: &Type) -> Declared {
        let parts = match ty {
            Type::List(t) => Parts::Items(Box::new(Declared::of(t))),
            Type::Map(_, t) => Parts::Values(Box::new(Declared::of(t))),
            Type::Object(o) => Parts::Fields(
                o.fields
                    .iter()
                    .map(|(name, f)| FieldDecl {
                        name: Spanned {
                            value: name.clone(),
                            span: Span::default(),
                        },
                        decl: Declared::of(&f.ty),
                        optional: f.optional,
                        default: None,
                        span: Span::default(),
                    })
                    .collect(),
            ),
            _ => Parts::None,
        };
        Declared {
            ty: ty.clone(),
            allowed: None,
            parts,
        }
    }
}

fn write_allowed(
    f: &mut fmt::Formatter<'_>,
    allowed: Option<&Vec<serde_json::Value>>,
) -> fmt::Result {
    if let Some(a) = allowed {
        let list: Vec<String> = a.iter().map(ToString::to_string).collect();
        write!(f, ", enum [{}]", list.join(", "))?;
    }
    Ok(())
}

impl fmt::Display for Declared {
    /// The whole declaration in one line (`list<object {amount: double; note: string,
    /// optional}>`): what `flowc diff` compares.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.parts {
            Parts::None => write!(f, "{}", self.ty)?,
            Parts::Items(d) => write!(f, "list<{d}>")?,
            Parts::Values(d) => write!(f, "map<string, {d}>")?,
            Parts::Fields(fields) => {
                f.write_str("object {")?;
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{}: {field}", field.name.value)?;
                }
                f.write_str("}")?;
            }
        }
        write_allowed(f, self.allowed.as_ref())
    }
}

impl fmt::Display for FieldDecl {
    /// The field's declaration: type, `optional`, `default`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.decl)?;
        if self.optional {
            f.write_str(", optional")?;
        }
        if let Some(d) = &self.default {
            write!(f, ", default {d}")?;
        }
        Ok(())
    }
}

/// One step of a path into a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathPart {
    /// A field of an object.
    Field(String),
    /// An item of a list.
    Index(usize),
    /// A value of a map.
    Key(String),
}

/// Where a value sits inside the context (`applicant.id`, `items[2].amount`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<PathPart>);

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            match p {
                PathPart::Field(n) if i == 0 => f.write_str(n)?,
                PathPart::Field(n) => write!(f, ".{n}")?,
                PathPart::Index(k) => write!(f, "[{k}]")?,
                PathPart::Key(k) => write!(f, "[{k:?}]")?,
            }
        }
        Ok(())
    }
}

/// Why a value does not fit its declaration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MisfitKind {
    /// A required field is absent (and declares no default).
    Missing {
        /// Its declared type.
        expected: String,
    },
    /// A value of another type.
    WrongType {
        /// The declared type.
        expected: String,
        /// What was given (its kind and the value, shortened).
        got: String,
    },
    /// A value outside the `enum`.
    NotAllowed {
        /// The value, shortened.
        value: String,
        /// The allowed values.
        allowed: String,
    },
    /// A field the object does not declare.
    Unknown {
        /// The fields it declares.
        declared: Vec<String>,
    },
}

/// A value that does not fit: where, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Misfit {
    /// The offending value (for `Missing` and `Unknown`: the field).
    pub path: FieldPath,
    /// Why.
    pub kind: MisfitKind,
}

/// A value that fits its declaration.
#[derive(Clone, Debug)]
pub struct Fitted {
    /// The JSON with every default filled in (what an instance persists).
    pub json: serde_json::Value,
    /// The CEL value.
    pub value: Value,
}

/// The JSON kind of a value, for messages (`a string`).
#[must_use]
pub fn json_kind(v: &serde_json::Value) -> &'static str {
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

/// A JSON value shortened for a message (at most 60 bytes).
#[must_use]
pub fn shown(v: &serde_json::Value) -> String {
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

/// Does `value` fit `decl`? Fills in every default the declaration gives, at any
/// depth, and checks every `enum`; `path` names the value in errors.
///
/// # Errors
/// The first part that does not fit.
pub fn fit(decl: &Declared, value: &serde_json::Value, path: &FieldPath) -> Result<Fitted, Misfit> {
    fit_at(decl, value, &At::root(path), true)
}

/// Where the value being fitted sits: the caller's path and the parts below it, as a
/// chain on the stack. A [`FieldPath`] is built only for a misfit, so fitting a value
/// that fits copies no field name.
struct At<'p> {
    base: &'p FieldPath,
    below: Option<(&'p At<'p>, Part<'p>)>,
}

#[derive(Clone, Copy)]
enum Part<'p> {
    Field(&'p str),
    Index(usize),
    Key(&'p str),
}

impl<'p> At<'p> {
    fn root(base: &'p FieldPath) -> Self {
        At { base, below: None }
    }

    fn child(&'p self, part: Part<'p>) -> At<'p> {
        At {
            base: self.base,
            below: Some((self, part)),
        }
    }

    fn path(&self) -> FieldPath {
        let mut parts = Vec::new();
        let mut at = self;
        while let Some((up, part)) = &at.below {
            parts.push(match *part {
                Part::Field(n) => PathPart::Field(n.to_owned()),
                Part::Index(i) => PathPart::Index(i),
                Part::Key(k) => PathPart::Key(k.to_owned()),
            });
            at = up;
        }
        let mut path = self.base.clone();
        path.0.extend(parts.into_iter().rev());
        path
    }
}

/// Fits the fields of an object (the flow's `context` or a nested one): every given
/// field must be declared, every required one present or defaulted. Returns the fitted
/// fields that have a value, in declaration order.
///
/// # Errors
/// The first field that does not fit.
pub fn fit_fields<'d>(
    fields: &'d [FieldDecl],
    given: &serde_json::Map<String, serde_json::Value>,
    path: &FieldPath,
) -> Result<Vec<(&'d FieldDecl, Fitted)>, Misfit> {
    fields_at(fields, given, &At::root(path))
}

fn fields_at<'d>(
    fields: &'d [FieldDecl],
    given: &serde_json::Map<String, serde_json::Value>,
    at: &At<'_>,
) -> Result<Vec<(&'d FieldDecl, Fitted)>, Misfit> {
    if let Some(k) = given
        .keys()
        .find(|k| !fields.iter().any(|f| f.name.value == **k))
    {
        return Err(Misfit {
            path: at.child(Part::Field(k)).path(),
            kind: MisfitKind::Unknown {
                declared: fields.iter().map(|f| f.name.value.clone()).collect(),
            },
        });
    }
    let mut out = Vec::with_capacity(fields.len());
    // a context usually lists its fields in declaration order: each is then the next
    // entry, found without hashing its name
    let mut next = given.iter().peekable();
    for f in fields {
        let here = at.child(Part::Field(&f.name.value));
        let in_order = next.next_if(|(k, _)| **k == f.name.value).map(|(_, v)| v);
        let v = match in_order
            .or_else(|| given.get(&f.name.value))
            .or(f.default.as_ref())
        {
            Some(v) => v,
            None if f.optional => continue,
            None => {
                return Err(Misfit {
                    path: here.path(),
                    kind: MisfitKind::Missing {
                        expected: f.decl.to_string(),
                    },
                });
            }
        };
        out.push((f, fit_at(&f.decl, v, &here, true)?));
    }
    Ok(out)
}

/// `check_allowed`: whether this value's own `enum` applies (not when fitting a member
/// of that `enum`); nested declarations always check theirs.
fn fit_at(
    decl: &Declared,
    v: &serde_json::Value,
    at: &At<'_>,
    check_allowed: bool,
) -> Result<Fitted, Misfit> {
    use serde_json::Value as J;
    let wrong = |at: &At<'_>| Misfit {
        path: at.path(),
        kind: MisfitKind::WrongType {
            expected: decl.ty.to_string(),
            got: format!("{} `{}`", json_kind(v), shown(v)),
        },
    };
    let scalar = |value: Option<Value>, at: &At<'_>| match value {
        Some(value) => Ok(Fitted {
            json: v.clone(),
            value,
        }),
        None => Err(wrong(at)),
    };
    let fitted = match (&decl.parts, &decl.ty, v) {
        (Parts::Items(item), _, J::Array(items)) => {
            let mut json = Vec::with_capacity(items.len());
            let mut values = Vec::with_capacity(items.len());
            for (i, x) in items.iter().enumerate() {
                let f = fit_at(item, x, &at.child(Part::Index(i)), true)?;
                json.push(f.json);
                values.push(f.value);
            }
            Fitted {
                json: J::Array(json),
                value: Value::List(Arc::new(values)),
            }
        }
        (Parts::Values(val), _, J::Object(m)) => {
            let mut json = serde_json::Map::with_capacity(m.len());
            let mut values = Vec::with_capacity(m.len());
            for (k, x) in m {
                let f = fit_at(val, x, &at.child(Part::Key(k)), true)?;
                json.insert(k.clone(), f.json);
                values.push((Value::string(k), f.value));
            }
            Fitted {
                json: J::Object(json),
                value: Value::map(values),
            }
        }
        (Parts::Fields(fields), _, J::Object(m)) => {
            let fitted = fields_at(fields, m, at)?;
            let mut json = serde_json::Map::with_capacity(fitted.len());
            let mut values = Vec::with_capacity(fitted.len());
            for (f, x) in fitted {
                json.insert(f.name.value.clone(), x.json);
                values.push((Value::string(&f.name.value), x.value));
            }
            Fitted {
                json: J::Object(json),
                value: Value::map(values),
            }
        }
        (Parts::Items(_) | Parts::Values(_) | Parts::Fields(_), _, _) => return Err(wrong(at)),
        (Parts::None, ty, _) => scalar(scalar_value(ty, v), at)?,
    };
    if check_allowed && let Some(allowed) = &decl.allowed {
        // the same value written another way (`1` and `1.0` for a double) is allowed too
        let ok = allowed.iter().any(|a| {
            *a == fitted.json
                || fit_at(decl, a, &At::root(&FieldPath::default()), false)
                    .is_ok_and(|x| equals(&x.value, &fitted.value))
        });
        if !ok {
            return Err(Misfit {
                path: at.path(),
                kind: MisfitKind::NotAllowed {
                    value: shown(v),
                    allowed: allowed.iter().map(shown).collect::<Vec<_>>().join(", "),
                },
            });
        }
    }
    Ok(fitted)
}

/// The CEL value of a JSON scalar of a declared scalar type (`None`: it does not fit).
fn scalar_value(ty: &Type, v: &serde_json::Value) -> Option<Value> {
    use serde_json::Value as J;
    Some(match (ty, v) {
        (Type::Dyn, _) => Value::from_json(v),
        (Type::Null, J::Null) => Value::Null,
        (Type::Bool, J::Bool(b)) => Value::Bool(*b),
        (Type::String, J::String(s)) => Value::string(s),
        (Type::Int, J::Number(n)) => Value::Int(n.as_i64()?),
        (Type::Uint, J::Number(n)) => Value::Uint(n.as_u64()?),
        (Type::Double, J::Number(n)) => Value::Double(n.as_f64()?),
        (Type::Timestamp, J::String(s)) => Value::Timestamp(time::parse_timestamp(s)?),
        (Type::Duration, J::String(s)) => Value::Duration(time::parse_duration(s)?),
        (Type::Bytes, J::String(s)) => Value::Bytes(Arc::from(s.as_bytes())),
        _ => return None,
    })
}

/// Fits an `enum` member against its declaration, without the `enum` itself.
///
/// # Errors
/// Where the member does not fit.
pub fn fit_member(decl: &Declared, member: &serde_json::Value) -> Result<Fitted, Misfit> {
    fit_at(decl, member, &At::root(&FieldPath::default()), false)
}
