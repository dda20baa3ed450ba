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
use crate::expr::value::{equals, quote};
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
    /// The field name, shared: the key of the CEL map an object is bound as (built once
    /// here, not per instance). The same text as `name`.
    pub key: Arc<str>,
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
                        key: Arc::from(name.as_str()),
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

/// Where a value sits inside the context (`applicant.id`, `items[2].amount`); shown
/// with each name and key cut by [`quote`], so a message naming it stays bounded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<PathPart>);

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            match p {
                PathPart::Field(n) if i == 0 => f.write_str(&quote(n))?,
                PathPart::Field(n) => write!(f, ".{}", quote(n))?,
                PathPart::Index(k) => write!(f, "[{k}]")?,
                PathPart::Key(k) => write!(f, "[{:?}]", quote(k))?,
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

/// A JSON value shortened for a message: its JSON text cut by the one rule every
/// message quotes input by ([`quote`]).
#[must_use]
pub fn shown(v: &serde_json::Value) -> String {
    quote(&v.to_string()).into_owned()
}

/// Does `value` fit `decl`? Fills in every default the declaration gives, at any
/// depth, and checks every `enum`; `path` names the value in errors.
///
/// # Errors
/// The first part that does not fit.
pub fn fit(decl: &Declared, value: &serde_json::Value, path: &FieldPath) -> Result<Fitted, Misfit> {
    fit_at(decl, value, &At::root(path), true, true).map(Fit::fitted)
}

/// Where the value being fitted sits: the caller's path and the parts below it, as a
/// chain on the stack. A [`FieldPath`] is built only for a misfit, so fitting a value
/// that fits copies no field name.
pub(crate) struct At<'p> {
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
/// fields that have a value, in declaration order (`given`: a JSON object; any other
/// value is taken as an empty one).
///
/// # Errors
/// The first field that does not fit.
pub fn fit_fields<'d>(
    fields: &'d [FieldDecl],
    given: &'d serde_json::Value,
    path: &FieldPath,
) -> Result<Vec<(&'d FieldDecl, Fitted)>, Misfit> {
    let mut out = Vec::with_capacity(fields.len());
    fields_at(
        fields,
        given,
        &At::root(path),
        |_| true,
        |_, f, fit: Fit<serde_json::Value>| out.push((f, fit.fitted())),
    )?;
    Ok(out)
}

/// Fits an object against the fields of the flow's `context` with the one fit routine
/// (the checks [`fit`] makes, at every depth), handing each field that has a value to
/// `each` in declaration order: its index in `fields`, its declaration, and what
/// fitting it built ([`FieldFit`]). `want(i)` says whether field `i`'s CEL value is
/// wanted (a value nobody reads is checked, not built).
///
/// `given` is how the caller holds the object: borrowed (`&serde_json::Value`: the
/// normalised JSON of each field is built as a copy) or owned (`&mut
/// serde_json::Value`: it is normalised in place, defaults inserted and fields put in
/// declaration order, and nothing is copied). Either way the checks, and so the first
/// misfit, are the same.
///
/// # Errors
/// The first part that does not fit; `given` is not an object: a misfit at `path`.
pub(crate) fn fit_object<'a, G: Given<'a>>(
    fields: &'a [FieldDecl],
    given: G,
    path: &FieldPath,
    want: impl Fn(usize) -> bool,
    each: impl FnMut(usize, &'a FieldDecl, FieldFit<G::Json>),
) -> Result<(), Misfit> {
    let at = At::root(path);
    if !given.json().is_object() {
        return Err(Misfit {
            path: at.path(),
            kind: MisfitKind::WrongType {
                expected: "object".to_owned(),
                got: json_kind(given.json()).to_owned(),
            },
        });
    }
    fields_at(fields, given, &at, want, each)
}

/// What fitting one field built: its normalised JSON as [`Given`] keeps it, and its CEL
/// value when it was wanted.
#[derive(Debug)]
pub(crate) struct FieldFit<J> {
    /// The normalised JSON (a copy), or `()` when it was normalised in place.
    pub json: J,
    /// The CEL value, when wanted.
    pub value: Option<Value>,
}

/// What the one fit routine built for a value (the same record as a field's).
type Fit<J> = FieldFit<J>;

impl Fit<serde_json::Value> {
    /// As a [`Fitted`]: fitted with its value wanted.
    fn fitted(self) -> Fitted {
        Fitted {
            json: self.json,
            value: self.value.unwrap_or(Value::Null),
        }
    }
}

/// How the one fit routine ([`fit_object`], [`fit`]) holds the JSON it fits, and what it
/// keeps of it: a borrowed value is copied into a normalised JSON value (what `flowc
/// check` and a borrowed context use); an owned one (`&mut`) is normalised in place
/// (defaults inserted, fields in declaration order) and nothing is built. The checks are
/// the routine's, written once; an implementation only walks and keeps.
pub(crate) trait Given<'a>: Sized {
    /// The normalised JSON kept per value: a copy, or `()` for a value fitted in place.
    type Json;
    /// The value as it is now.
    fn json(&self) -> &serde_json::Value;
    /// A scalar's JSON, as kept.
    fn keep(&self) -> Self::Json;
    /// The items of a list (`self` is one).
    fn items(self) -> impl Iterator<Item = Self>;
    /// The entries of a map (`self` is an object).
    fn entries(self) -> impl Iterator<Item = (&'a str, Self)>;
    /// A list of kept items, as kept.
    fn list(items: Vec<Self::Json>) -> Self::Json;
    /// An object being kept, with room for `n` entries.
    type Object;
    /// An empty object with room for `n` entries.
    fn object(n: usize) -> Self::Object;
    /// Adds an entry to an object being kept.
    fn put(object: &mut Self::Object, key: &str, json: Self::Json);
    /// The object, as kept.
    fn kept(object: Self::Object) -> Self::Json;
    /// The declared fields of an object (`self` is one whose every key is declared;
    /// `in_order`: which fields it gives when they come in declaration order, as
    /// [`in_declaration_order`] found them), in declaration order, each with its value:
    /// given, or its default where [`resolve`] says so; the first field [`resolve`]
    /// refuses ends it with that misfit.
    fn fields(
        self,
        fields: &'a [FieldDecl],
        at: &At<'_>,
        in_order: Option<Given64>,
    ) -> impl Iterator<Item = Result<(usize, &'a FieldDecl, Self), Misfit>>;
}

impl<'a> Given<'a> for &'a serde_json::Value {
    type Json = serde_json::Value;

    fn json(&self) -> &serde_json::Value {
        self
    }

    fn keep(&self) -> serde_json::Value {
        (*self).clone()
    }

    fn items(self) -> impl Iterator<Item = Self> {
        self.as_array().into_iter().flatten()
    }

    fn entries(self) -> impl Iterator<Item = (&'a str, Self)> {
        self.as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v))
    }

    fn list(items: Vec<serde_json::Value>) -> serde_json::Value {
        serde_json::Value::Array(items)
    }

    type Object = serde_json::Map<String, serde_json::Value>;

    fn object(n: usize) -> Self::Object {
        serde_json::Map::with_capacity(n)
    }

    fn put(object: &mut Self::Object, key: &str, json: serde_json::Value) {
        object.insert(key.to_owned(), json);
    }

    fn kept(object: Self::Object) -> serde_json::Value {
        serde_json::Value::Object(object)
    }

    fn fields(
        self,
        fields: &'a [FieldDecl],
        at: &At<'_>,
        in_order: Option<Given64>,
    ) -> impl Iterator<Item = Result<(usize, &'a FieldDecl, Self), Misfit>> {
        let given = self.as_object().unwrap_or(&EMPTY);
        // a context usually lists its fields in declaration order: each given one is then
        // the next entry, found without hashing or comparing its name again
        let mut next = given.values();
        let mut failed = false;
        fields.iter().enumerate().filter_map(move |(i, f)| {
            if failed {
                return None;
            }
            let v = match in_order {
                Some(present) if present.has(i) => next.next(),
                Some(_) => None,
                None => given.get(&f.name.value),
            };
            match resolve(f, v, at) {
                Ok(Some(Found::Given(v) | Found::Default(v))) => Some(Ok((i, f, v))),
                Ok(None) => None,
                Err(m) => {
                    failed = true;
                    Some(Err(m))
                }
            }
        })
    }
}

impl<'a> Given<'a> for &'a mut serde_json::Value {
    type Json = ();

    fn json(&self) -> &serde_json::Value {
        self
    }

    fn keep(&self) {}

    fn items(self) -> impl Iterator<Item = Self> {
        self.as_array_mut().into_iter().flatten()
    }

    fn entries(self) -> impl Iterator<Item = (&'a str, Self)> {
        self.as_object_mut()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v))
    }

    fn list(_: Vec<()>) {}

    type Object = ();

    fn object(_: usize) {}

    fn put((): &mut (), _: &str, (): ()) {}

    fn kept((): ()) {}

    fn fields(
        self,
        fields: &'a [FieldDecl],
        at: &At<'_>,
        in_order: Option<Given64>,
    ) -> impl Iterator<Item = Result<(usize, &'a FieldDecl, Self), Misfit>> {
        let mut refused = None;
        let mut present = 0;
        if let Some(m) = self.as_object_mut() {
            // the fields in declaration order (a context usually has them so already)
            if in_order.is_none() {
                let mut given = std::mem::take(m);
                for f in fields {
                    if let Some((k, v)) = given.swap_remove_entry(&f.name.value) {
                        m.insert(k, v);
                    }
                }
            }
            // each absent field resolved: defaulted in place, or left out, or refused
            // (the fields before it are still fitted first, as a borrowed value's are)
            let mut next = m.keys().peekable();
            let mut defaults = Vec::new();
            for (i, f) in fields.iter().enumerate() {
                let given = match in_order {
                    Some(present) => present.has(i),
                    None => next.next_if(|k| **k == f.name.value).is_some(),
                };
                match resolve(f, given.then_some(()), at) {
                    Ok(Some(Found::Given(()))) => present += 1,
                    Ok(Some(Found::Default(d))) => {
                        defaults.push((present, f, d));
                        present += 1;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        refused = Some(e);
                        break;
                    }
                }
            }
            for (i, f, d) in defaults {
                m.shift_insert(i, f.name.value.clone(), d.clone());
            }
        }
        let mut decls = fields.iter().enumerate();
        self.as_object_mut()
            .into_iter()
            .flatten()
            .take(present)
            .filter_map(move |(k, v)| {
                let (i, f) = decls.by_ref().find(|(_, f)| f.name.value == *k)?;
                Some(Ok((i, f, v)))
            })
            .chain(refused.map(Err))
    }
}

/// The object a value that is not one is taken as: an empty one.
static EMPTY: std::sync::LazyLock<serde_json::Map<String, serde_json::Value>> =
    std::sync::LazyLock::new(serde_json::Map::new);

/// Which of an object's declared fields (at most 64) it gives: bit `i` for field `i`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Given64(u64);

impl Given64 {
    /// Whether field `i` is given.
    fn has(self, i: usize) -> bool {
        i < 64 && self.0 >> i & 1 == 1
    }
}

/// Whether an object's keys come in declaration order (and so are all declared), and if
/// so which fields they give, each name compared once; `None` when they do not, or when
/// more than 64 fields are declared (each field is then looked up by name).
fn in_declaration_order(
    fields: &[FieldDecl],
    given: &serde_json::Map<String, serde_json::Value>,
) -> Option<Given64> {
    if fields.len() > 64 || given.len() > fields.len() {
        return None;
    }
    let mut keys = given.keys();
    let mut next = keys.next();
    let mut present = 0u64;
    for (i, f) in fields.iter().enumerate() {
        if next.is_some_and(|k| *k == f.name.value) {
            present |= 1 << i;
            next = keys.next();
        }
    }
    next.is_none().then_some(Given64(present))
}

/// Where an object's declared field gets its value from.
enum Found<'d, T> {
    /// Given (the caller's handle of it).
    Given(T),
    /// Absent: its declared default.
    Default(&'d serde_json::Value),
}

/// The one rule for a declared field of an object: given, it is fitted; absent, its
/// `default` is; absent without one, it is left out when `optional` (`None`) and
/// missing otherwise.
fn resolve<'d, T>(
    f: &'d FieldDecl,
    given: Option<T>,
    at: &At<'_>,
) -> Result<Option<Found<'d, T>>, Misfit> {
    match (given, &f.default) {
        (Some(v), _) => Ok(Some(Found::Given(v))),
        (None, Some(d)) => Ok(Some(Found::Default(d))),
        (None, None) if f.optional => Ok(None),
        (None, None) => Err(Misfit {
            path: at.child(Part::Field(&f.name.value)).path(),
            kind: MisfitKind::Missing {
                expected: f.decl.to_string(),
            },
        }),
    }
}

/// The fields of an object, by the one rule for each ([`resolve`]): every given field
/// must be declared; each declared one that has a value is fitted and handed to `each`
/// with its index, in declaration order (`want(i)`: whether its CEL value is wanted).
fn fields_at<'a, G: Given<'a>>(
    fields: &'a [FieldDecl],
    given: G,
    at: &At<'_>,
    want: impl Fn(usize) -> bool,
    mut each: impl FnMut(usize, &'a FieldDecl, Fit<G::Json>),
) -> Result<(), Misfit> {
    let keys = || {
        given
            .json()
            .as_object()
            .into_iter()
            .flat_map(serde_json::Map::keys)
    };
    // keys in declaration order are all declared; others are each looked for
    let in_order = in_declaration_order(fields, given.json().as_object().unwrap_or(&EMPTY));
    if in_order.is_none()
        && let Some(k) = keys().find(|k| !fields.iter().any(|f| f.name.value == **k))
    {
        return Err(Misfit {
            path: at.child(Part::Field(k)).path(),
            kind: MisfitKind::Unknown {
                declared: fields.iter().map(|f| f.name.value.clone()).collect(),
            },
        });
    }
    for field in given.fields(fields, at, in_order) {
        let (i, f, v) = field?;
        let fit = fit_at(
            &f.decl,
            v,
            &at.child(Part::Field(&f.name.value)),
            true,
            want(i),
        )?;
        each(i, f, fit);
    }
    Ok(())
}

/// What shape of value a declaration and a JSON value make.
enum Shape {
    List(usize),
    Map(usize),
    Object,
    Scalar,
    Wrong,
}

/// The one fit routine: `v` fits `decl` (its type, its `enum`, its parts at any depth,
/// every object's fields by [`resolve`]); builds the normalised JSON as [`Given`] keeps
/// it, and the CEL value when `want`. `check_allowed`: whether this value's own `enum`
/// applies (not when fitting a member of that `enum`); nested declarations always check
/// theirs.
fn fit_at<'a, G: Given<'a>>(
    decl: &'a Declared,
    v: G,
    at: &At<'_>,
    check_allowed: bool,
    want: bool,
) -> Result<Fit<G::Json>, Misfit> {
    use serde_json::Value as J;
    let wrong = |v: &J, at: &At<'_>| Misfit {
        path: at.path(),
        kind: MisfitKind::WrongType {
            expected: decl.ty.to_string(),
            got: number_misfit(&decl.ty, v)
                .or_else(|| timestamp_misfit(&decl.ty, v))
                .unwrap_or_else(|| format!("{} `{}`", json_kind(v), shown(v))),
        },
    };
    let shape = match (&decl.parts, v.json()) {
        (Parts::Items(_), J::Array(items)) => Shape::List(items.len()),
        (Parts::Values(_), J::Object(m)) => Shape::Map(m.len()),
        (Parts::Fields(_), J::Object(_)) => Shape::Object,
        (Parts::None, _) => Shape::Scalar,
        _ => Shape::Wrong,
    };
    let allowed = decl.allowed.as_ref().filter(|_| check_allowed);
    // a list's, map's or object's `enum` is checked against its normalised JSON: built
    // here when the value is normalised in place (and so consumed by its parts below)
    let normalised = match (&shape, allowed) {
        (Shape::List(_) | Shape::Map(_) | Shape::Object, Some(_)) => {
            Some(fit_at(decl, v.json(), at, false, false)?.json)
        }
        _ => None,
    };
    let mut scalar = None;
    let fitted = match (shape, &decl.parts) {
        (Shape::List(n), Parts::Items(item)) => {
            let mut json = Vec::with_capacity(n);
            let mut values = Vec::with_capacity(if want { n } else { 0 });
            for (i, x) in v.items().enumerate() {
                let f = fit_at(item, x, &at.child(Part::Index(i)), true, want)?;
                json.push(f.json);
                values.extend(f.value);
            }
            Fit {
                json: G::list(json),
                value: want.then(|| Value::List(Arc::new(values))),
            }
        }
        (Shape::Map(n), Parts::Values(val)) => {
            let mut json = G::object(n);
            let mut values = Vec::with_capacity(if want { n } else { 0 });
            for (k, x) in v.entries() {
                let f = fit_at(val, x, &at.child(Part::Key(k)), true, want)?;
                G::put(&mut json, k, f.json);
                if let Some(x) = f.value {
                    values.push((Value::string(k), x));
                }
            }
            Fit {
                json: G::kept(json),
                value: want.then(|| Value::map(values)),
            }
        }
        (Shape::Object, Parts::Fields(fields)) => {
            let mut json = G::object(fields.len());
            let mut values = Vec::with_capacity(if want { fields.len() } else { 0 });
            fields_at(
                fields,
                v,
                at,
                |_| want,
                |_, f, x| {
                    G::put(&mut json, &f.name.value, x.json);
                    if let Some(x) = x.value {
                        values.push((Value::String(Arc::clone(&f.key)), x));
                    }
                },
            )?;
            Fit {
                json: G::kept(json),
                value: want.then(|| Value::map(values)),
            }
        }
        (Shape::Scalar, _) => match scalar_value(&decl.ty, v.json(), want) {
            Some(value) => {
                let json = v.keep();
                scalar = Some(v);
                Fit { json, value }
            }
            None => return Err(wrong(v.json(), at)),
        },
        _ => return Err(wrong(v.json(), at)),
    };
    if let Some(allowed) = allowed {
        let (json, value) = match (&scalar, &normalised) {
            (Some(v), _) => (v.json(), fitted.value.as_ref()),
            (None, Some(n)) => (n, None),
            (None, None) => return Ok(fitted),
        };
        in_enum(decl, allowed, json, value, at)?;
    }
    // INVARIANT: every arm above builds a CEL value only when `want`
    Ok(fitted)
}

/// The one `enum` rule: a value is allowed when its normalised JSON is one of `allowed`,
/// or the same value written another way (`1` and `1.0` for a double); `value`: its CEL
/// value, when built.
fn in_enum(
    decl: &Declared,
    allowed: &[serde_json::Value],
    json: &serde_json::Value,
    value: Option<&Value>,
    at: &At<'_>,
) -> Result<(), Misfit> {
    let ok = allowed.iter().any(|a| {
        *a == *json
            || fit_at(decl, a, &At::root(&FieldPath::default()), false, true).is_ok_and(|x| match (
                &x.value, value,
            ) {
                (Some(x), Some(value)) => equals(x, value),
                (Some(x), None) => fit_at(decl, json, at, false, true)
                    .is_ok_and(|y| y.value.is_some_and(|y| equals(x, &y))),
                (None, _) => false,
            })
    });
    if !ok {
        return Err(Misfit {
            path: at.path(),
            kind: MisfitKind::NotAllowed {
                value: shown(json),
                allowed: allowed.iter().map(shown).collect::<Vec<_>>().join(", "),
            },
        });
    }
    Ok(())
}

/// Why a JSON number does not fit `int` or `uint`, when it is a number the type cannot
/// hold (`None`: not such a number). The one wording of these misfits, for a context
/// and for `flowc check`'s defaults and `enum` values alike. A number past the range
/// of both types is read as a double, so it is named by the range, never echoed.
/// What is wrong with a string given for a `timestamp` (`2024-02-30T00:00:00Z`: the day
/// is not in its month) or a `duration` (`1d`: `d` is not a unit, 1 day is 24h).
fn timestamp_misfit(ty: &Type, v: &serde_json::Value) -> Option<String> {
    let problem = match (ty, v) {
        (Type::Timestamp, serde_json::Value::String(s)) => {
            time::timestamp_or_problem(s).err()?.to_string()
        }
        (Type::Duration, serde_json::Value::String(s)) => {
            time::duration_or_problem(s).err()?.to_string()
        }
        _ => return None,
    };
    Some(format!("string `{}`: {problem}", shown(v)))
}

fn number_misfit(ty: &Type, v: &serde_json::Value) -> Option<String> {
    let serde_json::Value::Number(n) = v else {
        return None;
    };
    let (name, range) = match ty {
        Type::Int => ("int", "-2^63 to 2^63-1"),
        Type::Uint => ("uint", "0 to 2^64-1"),
        _ => return None,
    };
    let negative = match (n.as_i64(), n.as_u64(), n.as_f64()) {
        (Some(i), _, _) => i < 0,
        (None, Some(_), _) => false,
        (None, None, Some(f)) if f.fract() != 0.0 => {
            return Some(format!(
                "a number that is not a whole number `{}`",
                shown(v)
            ));
        }
        // a whole number written as a double (`1e3`) that the type holds: not this
        // misfit. The bounds are open: an integer just past one rounds to the double at
        // it (-2^63, 2^64), and the double's end of int's range is -2^63 itself
        (None, None, Some(f))
            if match ty {
                Type::Int => f > -9.223_372_036_854_776e18 && f < 9.223_372_036_854_776e18,
                _ => (0.0..1.844_674_407_370_955_2e19).contains(&f),
            } =>
        {
            return None;
        }
        (None, None, Some(f)) => f < 0.0,
        (None, None, None) => return None,
    };
    Some(if negative && *ty == Type::Uint {
        format!("a negative number, out of range for `uint` ({range})")
    } else {
        format!("a number out of range for `{name}` ({range})")
    })
}

/// Whether a JSON scalar fits a declared scalar type (`None`: it does not), with its CEL
/// value when `want`.
#[allow(
    clippy::option_option,
    reason = "None: it does not fit; Some(None): it fits, its value not wanted"
)]
fn scalar_value(ty: &Type, v: &serde_json::Value, want: bool) -> Option<Option<Value>> {
    use serde_json::Value as J;
    let value = match (ty, v) {
        (Type::Dyn, _) => return Some(want.then(|| Value::from_json(v))),
        (Type::Null, J::Null) => Value::Null,
        (Type::Bool, J::Bool(b)) => Value::Bool(*b),
        (Type::String, J::String(s)) => return Some(want.then(|| Value::string(s))),
        (Type::Int, J::Number(n)) => Value::Int(n.as_i64()?),
        (Type::Uint, J::Number(n)) => Value::Uint(n.as_u64()?),
        (Type::Double, J::Number(n)) => Value::Double(n.as_f64()?),
        (Type::Timestamp, J::String(s)) => Value::Timestamp(time::parse_timestamp(s)?),
        (Type::Duration, J::String(s)) => Value::Duration(time::parse_duration(s)?),
        (Type::Bytes, J::String(_)) if !want => return Some(None),
        (Type::Bytes, J::String(s)) => Value::Bytes(Arc::from(s.as_bytes())),
        _ => return None,
    };
    Some(want.then_some(value))
}

/// Fits an `enum` member against its declaration, without the `enum` itself.
///
/// # Errors
/// Where the member does not fit.
pub fn fit_member(decl: &Declared, member: &serde_json::Value) -> Result<Fitted, Misfit> {
    fit_at(decl, member, &At::root(&FieldPath::default()), false, true).map(Fit::fitted)
}
