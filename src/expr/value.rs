//! CEL values and operations with CEL's semantics (pure Rust; the sandbox calls these
//! for every operation whose types are not statically simple).

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use super::overload::{Func, Site, Sizing};
use super::time::{self, Duration, Timestamp};

/// A CEL value.
#[derive(Clone, Debug)]
pub enum Value {
    /// `null`
    Null,
    /// `bool`
    Bool(bool),
    /// `int`
    Int(i64),
    /// `uint`
    Uint(u64),
    /// `double`
    Double(f64),
    /// `string`
    String(Arc<str>),
    /// `bytes`
    Bytes(Arc<[u8]>),
    /// `list`
    List(Arc<Vec<Value>>),
    /// `map` (insertion order; keys unique; string keys of a large map indexed)
    Map(Arc<MapEntries>),
    /// `timestamp`
    Timestamp(Timestamp),
    /// `duration`
    Duration(Duration),
}

/// A map's entries in insertion order (keys unique). A map of at least
/// [`MapEntries::INDEXED_FROM`] entries gets an index of its string keys on its first
/// lookup, built once per value (contexts bind a value once and evaluate many
/// conditions over it), so `m[k]`, `m.k`, `has(m.k)` and `k in m` cost the same on a
/// map of a million entries as on one of ten; smaller maps are searched in place, with
/// no allocation.
#[derive(Clone, Default)]
pub struct MapEntries {
    entries: Vec<(Value, Value)>,
    index: std::sync::OnceLock<std::collections::HashMap<Arc<str>, usize>>,
}

impl MapEntries {
    /// Maps with at least this many entries are searched through an index.
    pub const INDEXED_FROM: usize = 16;

    /// The value under a string key.
    #[must_use]
    pub fn get_str(&self, key: &str) -> Option<&Value> {
        if self.entries.len() < Self::INDEXED_FROM {
            return self
                .entries
                .iter()
                .find(|(k, _)| matches!(k, Value::String(s) if &**s == key))
                .map(|(_, v)| v);
        }
        let index = self.index.get_or_init(|| {
            let mut index = std::collections::HashMap::with_capacity(self.entries.len());
            for (i, (k, _)) in self.entries.iter().enumerate() {
                if let Value::String(s) = k {
                    index.entry(Arc::clone(s)).or_insert(i);
                }
            }
            index
        });
        index
            .get(key)
            .and_then(|&i| self.entries.get(i))
            .map(|(_, v)| v)
    }
}

impl From<Vec<(Value, Value)>> for MapEntries {
    fn from(entries: Vec<(Value, Value)>) -> Self {
        MapEntries {
            entries,
            index: std::sync::OnceLock::new(),
        }
    }
}

impl std::ops::Deref for MapEntries {
    type Target = [(Value, Value)];
    fn deref(&self) -> &Self::Target {
        &self.entries
    }
}

impl fmt::Debug for MapEntries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.entries.fmt(f)
    }
}

/// A run-time error of an operation (CEL's error values).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    /// Integer overflow.
    #[error("integer overflow in `{0}`")]
    Overflow(&'static str),
    /// Division or modulus by zero.
    #[error("division by zero")]
    DivisionByZero,
    /// Map key or object field missing.
    #[error("no such key `{0}`")]
    NoSuchKey(String),
    /// List index out of range.
    #[error("index {0} out of range")]
    IndexOutOfRange(String),
    /// No overload for these argument types.
    #[error("no matching overload for `{op}` on {args}")]
    NoMatchingOverload {
        /// Operator or function.
        op: String,
        /// The argument types.
        args: String,
    },
    /// A conversion or argument outside its domain.
    #[error("{0}")]
    InvalidArgument(String),
    /// A time-zone argument that is neither UTC nor a fixed offset (flowc bundles no
    /// time-zone database, decision 6): the zone, as [`quote`] cuts it.
    #[error("unknown time zone `{0}` (use UTC or an offset such as +08:00)")]
    UnknownZone(String),
    /// A timestamp or duration out of range.
    #[error("{0} out of range")]
    Range(&'static str),
    /// `timestamp(s)` of a string that is not one: the parser's reason.
    #[error("cannot convert {text:?} to timestamp: {problem}")]
    NotATimestamp {
        /// The string.
        text: String,
        /// What is wrong with it.
        problem: time::TimestampProblem,
    },
    /// `duration(s)` of a string that is not one: the parser's reason.
    #[error("cannot convert {text:?} to duration: {problem}")]
    NotADuration {
        /// The string.
        text: String,
        /// What is wrong with it.
        problem: time::DurationProblem,
    },
}

pub use crate::diagnostic::quote;

/// A value as an error message shows it ([`quote`]): a string in quotes, cut as
/// [`quote`] cuts it (read in place: a long string is not copied to be shown); any
/// other value by its display, cut alike.
#[must_use]
pub fn quote_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{:?}", quote(s)),
        other => quote(&other.to_string()).into_owned(),
    }
}

impl OpError {
    /// "no such key" for a missing field or string key, named as [`quote`] cuts it: the
    /// one way both paths name it (probe q11f bug F: the sandbox printed it whole).
    #[must_use]
    pub fn no_such_key(name: &str) -> Self {
        OpError::NoSuchKey(quote(name).into_owned())
    }

    /// An unknown time zone, named as [`quote`] cuts it (the check reports a literal
    /// one with it, the accessors raise it at run time).
    #[must_use]
    pub fn unknown_zone(zone: &str) -> Self {
        OpError::UnknownZone(quote(zone).into_owned())
    }
}

impl Value {
    /// The CEL type name of this value.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null_type",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Uint(_) => "uint",
            Value::Double(_) => "double",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Map(_) => "map",
            Value::Timestamp(_) => "google.protobuf.Timestamp",
            Value::Duration(_) => "google.protobuf.Duration",
        }
    }

    /// A string value.
    #[must_use]
    pub fn string(s: &str) -> Value {
        Value::String(Arc::from(s))
    }

    /// A map value from its entries (keys unique), in order.
    #[must_use]
    pub fn map(entries: Vec<(Value, Value)>) -> Value {
        Value::Map(Arc::new(MapEntries::from(entries)))
    }

    /// Converts JSON into a value (numbers: int when integral and in range, else double).
    #[must_use]
    pub fn from_json(v: &serde_json::Value) -> Value {
        use serde_json::Value as J;
        match v {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => n
                .as_i64()
                .map(Value::Int)
                .or_else(|| n.as_u64().map(Value::Uint))
                .unwrap_or_else(|| Value::Double(n.as_f64().unwrap_or(f64::NAN))),
            J::String(s) => Value::string(s),
            J::Array(a) => Value::List(Arc::new(a.iter().map(Value::from_json).collect())),
            J::Object(m) => Value::map(
                m.iter()
                    .map(|(k, v)| (Value::string(k), Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// Converts to JSON (timestamps and durations as their CEL strings; bytes as a list).
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Uint(u) => J::from(*u),
            Value::Double(d) => serde_json::Number::from_f64(*d).map_or(J::Null, J::Number),
            Value::String(s) => J::String(s.to_string()),
            Value::Bytes(b) => J::Array(b.iter().map(|x| J::from(*x)).collect()),
            Value::List(l) => J::Array(l.iter().map(Value::to_json).collect()),
            Value::Map(m) => J::Object(
                m.iter()
                    .map(|(k, v)| (k.to_display_string(), v.to_json()))
                    .collect(),
            ),
            Value::Timestamp(t) => J::String(time::format_timestamp(*t)),
            Value::Duration(d) => J::String(time::format_duration(*d)),
        }
    }

    fn to_display_string(&self) -> String {
        match self {
            Value::String(s) => s.to_string(),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Uint(u) => write!(f, "{u}u"),
            Value::Double(d) => f.write_str(&format_double(*d)),
            Value::String(s) => write!(f, "{s:?}"),
            Value::Bytes(b) => write!(f, "b{:?}", String::from_utf8_lossy(b)),
            Value::List(l) => {
                f.write_str("[")?;
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Map(m) => {
                f.write_str("{")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
            Value::Timestamp(t) => write!(f, "timestamp({:?})", time::format_timestamp(*t)),
            Value::Duration(d) => write!(f, "duration({:?})", time::format_duration(*d)),
        }
    }
}

/// Formats a double as CEL's `string()` does: cel-go's `fmt.Sprintf("%g", d)`, Go's
/// `strconv.FormatFloat(d, 'g', -1, 64)`. The shortest digits that read back as `d`;
/// an exponent (`1.234567e+06`, `1e-05`, at least two exponent digits) when the decimal
/// exponent is below -4 or at least 6 (Go's threshold for the shortest precision), the
/// plain decimal otherwise (`123456.7`, `0.0001`, `-0`).
#[must_use]
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        return "NaN".to_owned();
    }
    if d.is_infinite() {
        return if d > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    let sci = format!("{d:e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        format!("{d}")
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    }
}

/// CEL's "no matching overload" error for these arguments.
#[must_use]
pub fn overload(op: &str, args: &[&Value]) -> OpError {
    OpError::NoMatchingOverload {
        op: op.to_owned(),
        args: args
            .iter()
            .map(|a| a.type_name())
            .collect::<Vec<_>>()
            .join(" and "),
    }
}

/// An integer (any `int` or `uint`, or a size) compared with a double, as CEL's
/// conformance suite requires: the integer is converted to the nearest double first,
/// so beyond 2^53 the comparison is lossy (`dyn(9223372036854775807) >=
/// 9223372036854775808.0` is true: cel-spec's `gte_dyn_int_big_lossy_double`). The
/// conversion is monotone, so the decision analysis may reason on intervals with it.
/// `None` when the double is NaN (every comparison with NaN is false, and NaN equals
/// nothing). The one definition: the run time on both paths ([`compare_numeric`],
/// [`scalar_equals`]) and check's decision analysis use it (decision 113).
#[must_use]
pub fn cmp_int_double(i: i128, d: f64) -> Option<Ordering> {
    #[expect(
        clippy::cast_precision_loss,
        reason = "the lossy conversion is CEL's rule (cel-spec conformance, decision 113)"
    )]
    let as_double = i as f64;
    as_double.partial_cmp(&d)
}

/// Exact ordering of two numbers of any numeric types (None for NaN or non-numbers).
#[must_use]
pub fn compare_numeric(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Uint(x), Value::Uint(y)) => Some(x.cmp(y)),
        (Value::Double(x), Value::Double(y)) => x.partial_cmp(y),
        (Value::Int(x), Value::Uint(y)) => Some(if *x < 0 {
            Ordering::Less
        } else {
            x.unsigned_abs().cmp(y)
        }),
        (Value::Int(x), Value::Double(y)) => cmp_int_double(i128::from(*x), *y),
        (Value::Uint(x), Value::Double(y)) => cmp_int_double(i128::from(*x), *y),
        // the mirrored pairs
        (Value::Uint(_), Value::Int(_)) | (Value::Double(_), Value::Int(_) | Value::Uint(_)) => {
            compare_numeric(b, a).map(Ordering::reverse)
        }
        _ => None,
    }
}

/// CEL equality (heterogeneous: numbers compare across types; other mixed types are unequal).
#[must_use]
pub(crate) fn equals(a: &Value, b: &Value) -> bool {
    match (a.scalar(), b.scalar()) {
        (Scalar::Other(_), Scalar::Other(_)) => {}
        (x, y) => return scalar_equals(x, y),
    }
    match (a, b) {
        (Value::Bytes(x), Value::Bytes(y)) => x == y,
        (Value::Timestamp(x), Value::Timestamp(y)) => x == y,
        (Value::Duration(x), Value::Duration(y)) => x == y,
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| equals(p, q))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| map_get(y, k).is_some_and(|w| equals(v, w)))
        }
        _ => false,
    }
}

/// Looks up a key in a map (numeric keys match across int/uint/double).
#[must_use]
pub fn map_get<'a>(m: &'a MapEntries, k: &Value) -> Option<&'a Value> {
    map_lookup(m, k.scalar())
}

/// An operand viewed in place, without copying it: what a map key, a list index or a
/// searched element is compared as. Both paths view their own values this way (the
/// direct path's [`Value`], the sandbox's Rhai values), so the rules below that read
/// it are written once.
#[derive(Clone, Copy, Debug)]
pub enum Scalar<'a> {
    /// `null`
    Null,
    /// `bool`
    Bool(bool),
    /// `int`
    Int(i64),
    /// `uint`
    Uint(u64),
    /// `double`
    Double(f64),
    /// `string`
    Str(&'a str),
    /// A value of another type (bytes, list, map, timestamp, duration): its type name.
    Other(&'static str),
}

impl Scalar<'_> {
    /// The CEL type name.
    #[must_use]
    pub fn type_name(self) -> &'static str {
        match self {
            Scalar::Null => "null_type",
            Scalar::Bool(_) => "bool",
            Scalar::Int(_) => "int",
            Scalar::Uint(_) => "uint",
            Scalar::Double(_) => "double",
            Scalar::Str(_) => "string",
            Scalar::Other(t) => t,
        }
    }

    /// A number as a value (no allocation), for the numeric comparisons.
    fn number(self) -> Option<Value> {
        match self {
            Scalar::Int(i) => Some(Value::Int(i)),
            Scalar::Uint(u) => Some(Value::Uint(u)),
            Scalar::Double(d) => Some(Value::Double(d)),
            _ => None,
        }
    }

    /// The key as a "no such key" error names it (a string unquoted, [`quote`]d).
    fn key_text(self) -> String {
        match self {
            Scalar::Str(s) => quote(s).into_owned(),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Scalar<'_> {
    /// As [`Value`]'s display of the same value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Null => f.write_str("null"),
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Uint(u) => write!(f, "{u}u"),
            Scalar::Double(d) => f.write_str(&format_double(*d)),
            Scalar::Str(s) => write!(f, "{s:?}"),
            Scalar::Other(t) => write!(f, "<{t}>"),
        }
    }
}

impl Value {
    /// This value viewed as a [`Scalar`].
    #[must_use]
    pub fn scalar(&self) -> Scalar<'_> {
        match self {
            Value::Null => Scalar::Null,
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Int(i) => Scalar::Int(*i),
            Value::Uint(u) => Scalar::Uint(*u),
            Value::Double(d) => Scalar::Double(*d),
            Value::String(s) => Scalar::Str(s),
            other => Scalar::Other(other.type_name()),
        }
    }
}

/// CEL equality where at least one side is a scalar (a scalar never equals a value of
/// another kind; numbers compare across int/uint/double). [`equals`] uses it for every
/// scalar pair.
#[must_use]
pub fn scalar_equals(a: Scalar<'_>, b: Scalar<'_>) -> bool {
    match (a, b) {
        (Scalar::Null, Scalar::Null) => true,
        (Scalar::Bool(x), Scalar::Bool(y)) => x == y,
        (Scalar::Str(x), Scalar::Str(y)) => str_equals(x, y),
        (x, y) => match (x.number(), y.number()) {
            (Some(p), Some(q)) => compare_numeric(&p, &q) == Some(Ordering::Equal),
            _ => false,
        },
    }
}

/// A value as the lookups and searches below read it, in place: the direct path's
/// [`Value`] and the sandbox's Rhai value each implement it, so `in`, `[]`, `.f`,
/// `has` and `size` have one definition for both paths.
pub trait View {
    /// Calls `f` with the value viewed as a scalar ([`Scalar::Other`] for every other
    /// kind), borrowed for the call.
    fn with_scalar<R>(&self, f: impl FnOnce(Scalar<'_>) -> R) -> R;
    /// The value as a [`Value`] (borrowed where it is one; converted otherwise): only
    /// for comparing two non-scalars.
    fn value(&self) -> std::borrow::Cow<'_, Value>;
    /// The number of elements of a list or entries of a map (`None` for other kinds).
    fn collection_len(&self) -> Option<usize>;
    /// Calls `f` on each element of a list, or each value of a map, in place, until it
    /// returns `false` (nothing for other kinds).
    fn each_child(&self, f: &mut dyn FnMut(&Self) -> bool);
    /// Calls `f` with a list's elements in place (`None` for other kinds, and for a
    /// list not held as one, which is then compared as a [`Value`]).
    fn with_items<R>(&self, f: impl FnOnce(&[Self]) -> R) -> Option<R>
    where
        Self: Sized;
    /// How a map of these values is held.
    type Map: MapView<Item = Self> + ?Sized;
    /// Calls `f` with a map in place (`None` for other kinds, and for a map not held
    /// as one, which is then compared as a [`Value`]).
    fn with_map<R>(&self, f: impl FnOnce(&Self::Map) -> R) -> Option<R>;
}

impl View for Value {
    fn with_scalar<R>(&self, f: impl FnOnce(Scalar<'_>) -> R) -> R {
        f(self.scalar())
    }
    fn value(&self) -> std::borrow::Cow<'_, Value> {
        std::borrow::Cow::Borrowed(self)
    }
    fn collection_len(&self) -> Option<usize> {
        match self {
            Value::List(l) => Some(l.len()),
            Value::Map(m) => Some(m.len()),
            _ => None,
        }
    }
    fn each_child(&self, f: &mut dyn FnMut(&Self) -> bool) {
        match self {
            Value::List(l) => {
                for v in l.iter() {
                    if !f(v) {
                        return;
                    }
                }
            }
            Value::Map(m) => {
                for (_, v) in m.iter() {
                    if !f(v) {
                        return;
                    }
                }
            }
            _ => {}
        }
    }
    fn with_items<R>(&self, f: impl FnOnce(&[Self]) -> R) -> Option<R> {
        match self {
            Value::List(l) => Some(f(l)),
            _ => None,
        }
    }
    type Map = MapEntries;
    fn with_map<R>(&self, f: impl FnOnce(&MapEntries) -> R) -> Option<R> {
        match self {
            Value::Map(m) => Some(f(m)),
            _ => None,
        }
    }
}

/// A map as a key lookup reads it: the direct path's [`MapEntries`] and the sandbox's
/// Rhai map (whose keys are all strings).
pub trait MapView {
    /// What the map holds.
    type Item;
    /// The value under a string key.
    fn by_str(&self, key: &str) -> Option<&Self::Item>;
    /// The value under a bool, int, uint or double key ([`key_matches`] says which
    /// keys it matches).
    fn by_other(&self, key: Scalar<'_>) -> Option<&Self::Item>;
    /// The number of entries.
    fn entries(&self) -> usize;
    /// Calls `f` on each key and value in place, in the map's order, until it returns
    /// `false`.
    fn each_entry(&self, f: &mut dyn FnMut(Scalar<'_>, &Self::Item) -> bool);
}

impl MapView for MapEntries {
    type Item = Value;
    fn by_str(&self, key: &str) -> Option<&Value> {
        self.get_str(key)
    }
    fn by_other(&self, key: Scalar<'_>) -> Option<&Value> {
        scan(self, key)
    }
    fn entries(&self) -> usize {
        self.len()
    }
    fn each_entry(&self, f: &mut dyn FnMut(Scalar<'_>, &Value) -> bool) {
        for (k, v) in self.iter() {
            if !f(k.scalar(), v) {
                return;
            }
        }
    }
}

/// Does a map's key match a looked-up key? Strings and bools by value; an int or uint
/// key by numeric value across int, uint and double (CEL's heterogeneous keys).
#[must_use]
pub fn key_matches(key: Scalar<'_>, k: Scalar<'_>) -> bool {
    match (key, k) {
        (Scalar::Str(a), Scalar::Str(b)) => a == b,
        (Scalar::Bool(a), Scalar::Bool(b)) => a == b,
        (
            Scalar::Int(_) | Scalar::Uint(_),
            Scalar::Int(_) | Scalar::Uint(_) | Scalar::Double(_),
        ) => scalar_equals(key, k),
        _ => false,
    }
}

/// The value under a key: the one definition of map lookup (`k in m`, `m[k]`). A
/// string key is looked up by string; bool and numeric keys as [`key_matches`] says;
/// `null` and other kinds find nothing.
pub fn map_lookup<'m, M: MapView + ?Sized>(m: &'m M, k: Scalar<'_>) -> Option<&'m M::Item> {
    match k {
        Scalar::Str(s) => m.by_str(s),
        Scalar::Null | Scalar::Other(_) => None,
        other => m.by_other(other),
    }
}

/// `m[k]`: the value under the key, "no such key" when absent, no overload for a key
/// of a kind maps cannot hold.
///
/// # Errors
/// Missing key or no overload.
pub fn map_index<'m, M: MapView + ?Sized>(m: &'m M, k: Scalar<'_>) -> Result<&'m M::Item, OpError> {
    match k {
        Scalar::Null | Scalar::Other(_) => Err(OpError::NoMatchingOverload {
            op: "[]".to_owned(),
            args: format!("map and {}", k.type_name()),
        }),
        _ => map_lookup(m, k).ok_or_else(|| OpError::NoSuchKey(k.key_text())),
    }
}

/// `m.f`: the value under a field name.
///
/// # Errors
/// Missing key.
pub fn map_field<'m, M: MapView + ?Sized>(m: &'m M, name: &str) -> Result<&'m M::Item, OpError> {
    m.by_str(name).ok_or_else(|| OpError::no_such_key(name))
}

/// `has(m.f)`.
pub fn map_has<M: MapView + ?Sized>(m: &M, name: &str) -> bool {
    m.by_str(name).is_some()
}

/// `l[i]`: an int, a uint or an integral double indexes a list.
///
/// # Errors
/// Out of range, a fractional index, or no overload.
pub fn list_index<'l, T>(items: &'l [T], i: Scalar<'_>) -> Result<&'l T, OpError> {
    list_position(i)?
        .and_then(|n| items.get(n))
        .ok_or_else(|| OpError::IndexOutOfRange(i.to_string()))
}

/// The position `l[i]` reads, whatever the list: `None` for one no list has (a
/// negative index), so that `l[i]` fails for every list `l` ([`list_index`]).
///
/// # Errors
/// A fractional index, or no overload.
pub fn list_position(i: Scalar<'_>) -> Result<Option<usize>, OpError> {
    Ok(match i {
        Scalar::Int(n) => usize::try_from(n).ok(),
        Scalar::Uint(n) => usize::try_from(n).ok(),
        Scalar::Double(d) if d.fract() == 0.0 && (0.0..1e15).contains(&d) =>
        {
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "checked integral and in range"
            )]
            Some(d as usize)
        }
        Scalar::Double(_) => {
            return Err(OpError::InvalidArgument(format!(
                "index {i} is not an integer"
            )));
        }
        other => {
            return Err(OpError::NoMatchingOverload {
                op: "[]".to_owned(),
                args: format!("list and {}", other.type_name()),
            });
        }
    })
}

/// `x in list` within a budget: [`search`] comparing as [`equals_within`] does, each
/// element read in place; a list or map needle is compared by [`equals_within`], its
/// units charged beside the element's.
pub fn list_contains<'i, N: View + ?Sized, T: View + 'i>(
    needle: &N,
    items: impl IntoIterator<Item = &'i T>,
    budget: u64,
) -> Option<Searched> {
    needle.with_scalar(|n| match n {
        Scalar::Other(_) => {
            let needle = needle.value();
            search_charged(items, budget, |i, left| {
                let (eq, spent) = equals_within(&*needle, i, *left)?;
                *left -= spent;
                Some(eq)
            })
        }
        n => search(items, budget, |i| i.with_scalar(|y| scalar_equals(n, y))),
    })
}

/// `size(x)` on a viewed value: a
/// list's or map's length read in place, a string's characters, a bytes value's bytes.
///
/// # Errors
/// No overload.
pub fn size_of<V: View + ?Sized>(a: &V) -> Result<Value, OpError> {
    let n = match a.collection_len() {
        Some(n) => n,
        None => match &*a.value() {
            Value::String(s) => s.chars().count(),
            Value::Bytes(b) => b.len(),
            other => return Err(overload("size", &[other])),
        },
    };
    Ok(Value::Int(i64::try_from(n).unwrap_or(i64::MAX)))
}

/// Searches entries in place for a non-string key ([`key_matches`]).
fn scan<'m>(m: &'m [(Value, Value)], k: Scalar<'_>) -> Option<&'m Value> {
    m.iter()
        .find(|(key, _)| key_matches(key.scalar(), k))
        .map(|(_, v)| v)
}

/// `<`, `<=`, `>`, `>=`: the ordering, or an error for incomparable types.
///
/// # Errors
/// No overload for mixed non-numeric types.
pub fn compare(op: &'static str, a: &Value, b: &Value) -> Result<Option<Ordering>, OpError> {
    Ok(match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bytes(x), Value::Bytes(y)) => Some(x.cmp(y)),
        (Value::Timestamp(x), Value::Timestamp(y)) => Some(x.cmp(y)),
        (Value::Duration(x), Value::Duration(y)) => Some(x.cmp(y)),
        (
            Value::Int(_) | Value::Uint(_) | Value::Double(_),
            Value::Int(_) | Value::Uint(_) | Value::Double(_),
        ) => compare_numeric(a, b),
        _ => return Err(overload(op, &[a, b])),
    })
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rel {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Rel {
    /// The operator as written.
    #[must_use]
    pub fn symbol(self) -> &'static str {
        match self {
            Rel::Lt => "<",
            Rel::Le => "<=",
            Rel::Gt => ">",
            Rel::Ge => ">=",
        }
    }

    /// Does an ordering satisfy the operator (`None`: unordered, NaN)?
    #[must_use]
    pub fn holds(self, o: Option<Ordering>) -> bool {
        match self {
            Rel::Lt => o == Some(Ordering::Less),
            Rel::Le => matches!(o, Some(Ordering::Less | Ordering::Equal)),
            Rel::Gt => o == Some(Ordering::Greater),
            Rel::Ge => matches!(o, Some(Ordering::Greater | Ordering::Equal)),
        }
    }

    /// The operator on two doubles (IEEE 754: false when either is NaN).
    #[must_use]
    pub fn doubles(self, a: f64, b: f64) -> bool {
        match self {
            Rel::Lt => a < b,
            Rel::Le => a <= b,
            Rel::Gt => a > b,
            Rel::Ge => a >= b,
        }
    }

    /// The operator on two ints.
    #[must_use]
    pub fn ints(self, a: i64, b: i64) -> bool {
        self.holds(Some(a.cmp(&b)))
    }
}

/// Evaluates a comparison operator.
///
/// # Errors
/// No overload for incomparable types.
pub fn relation(op: Rel, a: &Value, b: &Value) -> Result<bool, OpError> {
    Ok(op.holds(compare(op.symbol(), a, b)?))
}

fn ts_add(t: Timestamp, d: Duration, neg: bool) -> Result<Value, OpError> {
    let n = if neg { -d.nanos } else { d.nanos };
    Timestamp::from_nanos(t.total_nanos() + n)
        .map(Value::Timestamp)
        .ok_or(OpError::Range("timestamp"))
}

fn dur(n: Option<i128>) -> Result<Value, OpError> {
    n.and_then(Duration::checked)
        .map(Value::Duration)
        .ok_or(OpError::Range("duration"))
}

/// An arithmetic operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arith {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Rem,
}

impl Arith {
    /// The operator as written.
    #[must_use]
    pub fn symbol(self) -> &'static str {
        match self {
            Arith::Add => "+",
            Arith::Sub => "-",
            Arith::Mul => "*",
            Arith::Div => "/",
            Arith::Rem => "%",
        }
    }

    /// The operator on two ints (checked: overflow and division by zero are errors).
    ///
    /// # Errors
    /// Overflow or division by zero.
    pub fn ints(self, x: i64, y: i64) -> Result<i64, OpError> {
        if y == 0 && matches!(self, Arith::Div | Arith::Rem) {
            return Err(OpError::DivisionByZero);
        }
        match self {
            Arith::Add => x.checked_add(y),
            Arith::Sub => x.checked_sub(y),
            Arith::Mul => x.checked_mul(y),
            Arith::Div => x.checked_div(y),
            Arith::Rem => x.checked_rem(y),
        }
        .ok_or(OpError::Overflow(self.symbol()))
    }

    /// The operator on two uints (checked).
    ///
    /// # Errors
    /// Overflow or division by zero.
    pub fn uints(self, x: u64, y: u64) -> Result<u64, OpError> {
        if y == 0 && matches!(self, Arith::Div | Arith::Rem) {
            return Err(OpError::DivisionByZero);
        }
        match self {
            Arith::Add => x.checked_add(y),
            Arith::Sub => x.checked_sub(y),
            Arith::Mul => x.checked_mul(y),
            Arith::Div => x.checked_div(y),
            Arith::Rem => x.checked_rem(y),
        }
        .ok_or(OpError::Overflow(self.symbol()))
    }

    /// The operator on two doubles (`None` for `%`, which CEL does not define on doubles).
    #[must_use]
    pub fn doubles(self, x: f64, y: f64) -> Option<f64> {
        match self {
            Arith::Add => Some(x + y),
            Arith::Sub => Some(x - y),
            Arith::Mul => Some(x * y),
            Arith::Div => Some(x / y),
            Arith::Rem => None,
        }
    }
}

/// Binary arithmetic (`+ - * / %`).
///
/// # Errors
/// Overflow, division by zero, range, or no overload.
pub fn arith(op: Arith, a: &Value, b: &Value) -> Result<Value, OpError> {
    use Value::{Double, Duration as D, Int, List, String as S, Timestamp as T, Uint};
    Ok(match (op, a, b) {
        (_, Int(x), Int(y)) => Int(op.ints(*x, *y)?),
        (_, Uint(x), Uint(y)) => Uint(op.uints(*x, *y)?),
        (_, Double(x), Double(y)) if op != Arith::Rem => {
            Double(op.doubles(*x, *y).unwrap_or(f64::NAN))
        }
        (Arith::Add, S(x), S(y)) => {
            let mut s = String::with_capacity(x.len() + y.len());
            s.push_str(x);
            s.push_str(y);
            Value::string(&s)
        }
        (Arith::Add, Value::Bytes(x), Value::Bytes(y)) => Value::Bytes(
            x.iter()
                .chain(y.iter())
                .copied()
                .collect::<Vec<u8>>()
                .into(),
        ),
        (Arith::Add, List(x), List(y)) => {
            List(Arc::new(x.iter().chain(y.iter()).cloned().collect()))
        }
        (Arith::Add, T(t), D(d)) | (Arith::Add, D(d), T(t)) => ts_add(*t, *d, false)?,
        (Arith::Sub, T(t), D(d)) => ts_add(*t, *d, true)?,
        (Arith::Sub, T(x), T(y)) => dur(Some(x.total_nanos() - y.total_nanos()))?,
        (Arith::Add, D(x), D(y)) => dur(x.nanos.checked_add(y.nanos))?,
        (Arith::Sub, D(x), D(y)) => dur(x.nanos.checked_sub(y.nanos))?,
        _ => return Err(overload(op.symbol(), &[a, b])),
    })
}

/// Unary minus.
///
/// # Errors
/// Overflow (`-(i64::MIN)`) or no overload (uint, others).
pub fn negate(a: &Value) -> Result<Value, OpError> {
    match a {
        Value::Int(i) => i
            .checked_neg()
            .map(Value::Int)
            .ok_or(OpError::Overflow("-")),
        Value::Double(d) => Ok(Value::Double(-d)),
        Value::Duration(d) => dur(Some(-d.nanos)),
        other => Err(overload("-", &[other])),
    }
}

/// `!`
///
/// # Errors
/// No overload for non-bool.
pub fn not(a: &Value) -> Result<Value, OpError> {
    match a {
        Value::Bool(b) => Ok(Value::Bool(!b)),
        other => Err(overload("!", &[other])),
    }
}

/// Bytes of a string (or bytes value) built that cost one unit of the evaluation budget.
pub const BYTES_PER_UNIT: usize = 256;

/// What `a + b` costs before it is built (both paths charge it before building): a
/// concatenated list what placing each of its elements costs ([`copy_cost`]: a unit
/// per element, and a collection element by its size), a unit per [`BYTES_PER_UNIT`] bytes of a
/// concatenated string or bytes value; nothing for numbers, timestamps and durations.
#[must_use]
pub fn add_cost(a: &Value, b: &Value) -> u64 {
    let n = match (a, b) {
        (Value::List(_), Value::List(_)) => {
            return copy_cost(a, u64::MAX)
                .unwrap_or(u64::MAX)
                .saturating_add(copy_cost(b, u64::MAX).unwrap_or(u64::MAX));
        }
        (Value::String(x), Value::String(y)) => x.len().saturating_add(y.len()),
        (Value::Bytes(x), Value::Bytes(y)) => x.len().saturating_add(y.len()),
        _ => 0,
    };
    built_cost(n)
}

/// What building a string or bytes value of `bytes` bytes costs: a unit per
/// [`BYTES_PER_UNIT`].
#[must_use]
pub fn built_cost(bytes: usize) -> u64 {
    u64::try_from(bytes / BYTES_PER_UNIT).unwrap_or(u64::MAX)
}

/// Bytes of a string (or bytes value) an operation reads per unit of the evaluation
/// budget: `size`, `contains`, a conversion, a comparison or an equality of strings
/// reads (or, in the sandbox, copies) every byte of its string operands, so it is
/// charged by them, the same on both paths (decision 119); `startsWith`/`endsWith` by
/// the bytes of the affix they read, a map lookup by its key's (decision 121).
/// Measured (`cargo bench --bench eval -- unit/`): scanning 64 bytes takes about a
/// unit of ordinary operations on the slowest path (the sandbox's copy).
pub const SCAN_BYTES_PER_UNIT: usize = 64;

/// What reading `bytes` bytes of strings costs: a unit per [`SCAN_BYTES_PER_UNIT`].
#[must_use]
pub fn scan_cost(bytes: usize) -> u64 {
    u64::try_from(bytes / SCAN_BYTES_PER_UNIT).unwrap_or(u64::MAX)
}

/// What comparing two strings (`==`, `!=`, `<`, ...) costs: [`scan_cost`] of the
/// shorter, the bytes a comparison can read.
#[must_use]
pub fn compare_cost(a: &str, b: &str) -> u64 {
    scan_cost(a.len().min(b.len()))
}

/// What a relation (`<`, `<=`, `>`, `>=`) costs: [`compare_cost`] on two strings,
/// [`scan_cost`] of the shorter of two bytes values, nothing on anything else.
#[must_use]
pub fn relation_cost<A: View + ?Sized, B: View + ?Sized>(a: &A, b: &B) -> u64 {
    let strs = a.with_scalar(|x| {
        b.with_scalar(|y| match (x, y) {
            (Scalar::Str(x), Scalar::Str(y)) => Some(compare_cost(x, y)),
            (Scalar::Other("bytes"), Scalar::Other("bytes")) => None,
            _ => Some(0),
        })
    });
    match strs {
        Some(c) => c,
        None => match (&*a.value(), &*b.value()) {
            (Value::Bytes(x), Value::Bytes(y)) => scan_cost(x.len().min(y.len())),
            _ => 0,
        },
    }
}

/// What a call costs before it runs, beyond its unit in the overload table: what its
/// row charges by size ([`Func::sizing_for`], the row the values select), through
/// [`sized_cost`]. `left` is the budget left (see [`sized_cost`]). Both paths charge
/// this.
#[must_use]
pub fn call_cost<V: View + ?Sized>(f: Func, args: &[&V], left: u64) -> u64 {
    sized_cost(f.sizing_for(args), args, left)
}

/// What an operation of an overload with this [`Sizing`] column costs on its operands
/// (receiver first), beyond its units: the one routine both paths charge every row by
/// (calls through [`call_cost`], operators through [`super::overload::Operator::sizing`]).
/// `left` is the budget left: a `matches` whose least cost ([`regex_least_cost`], known
/// without parsing the pattern) is already more is priced at that least cost, which
/// fails the charge before the pattern is parsed (decision 126); every call that fits
/// costs the same whatever `left` is.
#[must_use]
pub fn sized_cost<V: View + ?Sized>(s: Sizing, args: &[&V], left: u64) -> u64 {
    if let [a, b] = args
        && let Some(cost) = a.with_scalar(|a| {
            b.with_scalar(|b| match (a, b) {
                (Scalar::Str(a), Scalar::Str(b)) => Some(str_pair_cost(s, a, b, left)),
                _ => None,
            })
        })
    {
        return cost;
    }
    match (s, args) {
        (Sizing::Relation, [a, b]) => relation_cost(*a, *b),
        (Sizing::Concat, [a, b]) => add_cost(&a.value(), &b.value()),
        (Sizing::Scan | Sizing::Decode, _) => {
            let mut bytes = 0usize;
            for a in args {
                bytes = bytes.saturating_add(a.with_scalar(|a| match a {
                    Scalar::Str(s) => s.len(),
                    _ => 0,
                }));
                if s == Sizing::Decode
                    && a.with_scalar(|a| matches!(a, Scalar::Other("bytes")))
                    && let Value::Bytes(b) = &*a.value()
                {
                    bytes = bytes.saturating_add(b.len());
                }
            }
            scan_cost(bytes)
        }
        // `startsWith`, `endsWith` and `matches` read two strings only
        (Sizing::Unit | Sizing::Affix | Sizing::Regex | Sizing::Relation | Sizing::Concat, _) => 0,
    }
}

/// [`sized_cost`] of an overload of this [`Sizing`] on two strings, a subject (the
/// receiver) and an argument: the direct path's nodes specialised to a string and a
/// literal charge it (`contains`, `startsWith`, `endsWith` of a literal).
#[must_use]
pub fn str_pair_cost(s: Sizing, a: &str, b: &str, left: u64) -> u64 {
    match s {
        Sizing::Unit => 0,
        Sizing::Scan | Sizing::Decode => scan_cost(a.len().saturating_add(b.len())),
        Sizing::Affix => affix_cost(a.len(), b.len()),
        Sizing::Regex => matches_cost(a, b, left),
        Sizing::Relation => compare_cost(a, b),
        Sizing::Concat => built_cost(a.len().saturating_add(b.len())),
    }
}

/// What testing a prefix or suffix of `affix` bytes on a string of `subject` bytes
/// costs: [`scan_cost`] of the shorter, the bytes the test can read (`startsWith`,
/// `endsWith`, and `matches` of `^literal` / `literal$`).
#[must_use]
pub fn affix_cost(subject: usize, affix: usize) -> u64 {
    scan_cost(subject.min(affix))
}

/// Units every `matches` on a pattern compiled at run time costs whatever the
/// pattern: compiling the smallest pattern. Measured (`cargo bench --bench eval --
/// unit/`, decision 100): compiling and matching `travel` on 16 bytes takes about
/// 1,300 times what one unit of ordinary operations (C5's time over its cost) takes.
pub const REGEX_FLOOR: u64 = 1024;
/// Units per unit of a pattern's estimated program size ([`regex_weight`]): what
/// compiling it costs beyond [`REGEX_FLOOR`]. Measured (decision 119, a unit at 6.7
/// ns): `\w` (weight 796) compiles in 0.26 ms, about 48 units a weight; `\d{3}-\d{4}`
/// (499) about 62; `(\w+\s*){20}\d` (32,132) about 110; a 66-byte alternation (56)
/// about 290: within 3x of 64 wherever compiling costs much.
pub const REGEX_UNITS_PER_WEIGHT: u64 = 64;
/// Pattern bytes per unit of the least weight any pattern has ([`regex_weight`] is at
/// least its length over this, rounded up): rewriting and parsing a pattern is work
/// and memory linear in its length, known before it is parsed (decision 126).
pub const REGEX_BYTES_PER_WEIGHT: usize = 8;
/// Weight ([`regex_weight`]) a pattern read by the automaton ([`RegexScan::Automaton`])
/// adds: the `regex` crate builds a forward and a reverse program and a lazy DFA for
/// it, where a literal pattern is only a substring search (decision 126).
pub const REGEX_AUTOMATON_WEIGHT: u64 = 64;
/// Weight ([`regex_weight`]) a class reaching past ASCII adds beside its byte ranges:
/// the compiler's UTF-8 automata, forward and reversed, cost about this much whatever
/// the class (`[^0-9]`, `.`, `[à-ÿ]`; decision 126).
pub const REGEX_UNICODE_CLASS_WEIGHT: u64 = 128;
/// Weight ([`regex_weight`]) of a repetition or a capture group beside its part: the
/// states and slots it compiles to (decision 126).
pub const REGEX_GROUP_WEIGHT: u64 = 4;
/// Weight ([`regex_weight`]) a pattern read by the automaton adds when it starts with
/// one of a few literals (`\d+`, `a|b`, `(?i)x`): the `regex` crate builds a
/// multi-literal searcher for them (decision 126).
pub const REGEX_PREFILTER_WEIGHT: u64 = 128;
/// Bytes of a `matches` subject per unit when the pattern is not a plain literal
/// ([`match_cost`]). Measured (decision 121, `unit/matches/scan/*`, 1 MiB subjects,
/// C5's unit 4.0 ns in the same run): the lazy DFA reads 2.6 ns a byte for `^x+$`
/// (weight 5), 3.4 for `\w+\d` (1,664), 5.3 for `(\w+\s*){20}\d` (32,132): between
/// 0.65 and 1.3 units a byte, nearly flat in the pattern's weight.
pub const REGEX_SUBJECT_BYTES_PER_UNIT: usize = 1;

/// The estimated size of the program a pattern compiles to, from its parsed form (the
/// `regex-syntax` HIR the `regex` crate compiles, RE2's Perl classes already ASCII): a
/// literal byte, an assertion or an empty match weighs 1, a class what the compiler
/// builds of it (`class_weight`: its UTF-8 byte ranges, plus
/// [`REGEX_UNICODE_CLASS_WEIGHT`] past ASCII), a concatenation or alternation the sum
/// of its parts, a repetition its part times the copies the compiler writes (its
/// largest count, or its least when unbounded, at least one) and a repetition or a
/// capture group [`REGEX_GROUP_WEIGHT`] besides; a pattern the automaton
/// reads adds [`REGEX_AUTOMATON_WEIGHT`], and [`REGEX_PREFILTER_WEIGHT`] when it
/// starts with one of a few literals. A pattern
/// that does not parse weighs its length (the parser's work). Any pattern weighs at
/// least a unit per [`REGEX_BYTES_PER_WEIGHT`] bytes ([`regex_least_cost`]). Measured
/// against the compile times in decision 126.
#[must_use]
pub fn regex_weight(pattern: &str) -> u64 {
    regex_estimate(pattern).weight
}

/// What the cost model reads of a pattern, from its parsed form (one parse).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegexEstimate {
    /// [`regex_weight`]: what compiling it costs.
    pub weight: u64,
    /// How the matcher reads a subject ([`match_cost`]).
    pub scan: RegexScan,
}

/// How the `regex` crate matches a pattern, which is what a subject costs to match
/// ([`match_cost`], decisions 123, 126), read from the pattern's HIR ([`regex_scan`]:
/// its properties, and `regex-syntax`'s literal extraction, the analysis the crate
/// itself runs to skip its automata).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegexScan {
    /// A match starts at the subject's start whatever the subject: the pattern matches
    /// the empty string and asserts nothing, or only `^` (`""`, `a{0}`, `(?:)`, `a*`,
    /// `x?`, `^`, `^a*`): the matcher stops at once, reading at most a byte.
    AtOnce,
    /// Every match is one fixed non-empty string and nothing is asserted (`a`, `a\.b`,
    /// `a{3}`, `(?:ab)c`): the matcher finds it with a substring search (`memchr`'s),
    /// as `contains` does.
    Literal,
    /// `^` and a string of this many bytes (`^abc`, `^(a)`, `^a{2}`, `^abc$`): the
    /// anchored matcher reads at most that prefix of the subject (and a byte more), as
    /// `startsWith` does, and costs what it costs.
    Prefix(usize),
    /// A string of this many bytes and `$` (`abc$`, `(a)$`, `$`): the matcher reads the
    /// subject backwards from its end, at most that suffix, as `endsWith` does.
    Suffix(usize),
    /// Any other pattern whose every match starts at the subject's start (`^` begins
    /// every alternative) and is at most this many bytes long (`^a|^b`, `(?i)^a`,
    /// `^a.b`, `^[a-z]{3}`, `^(foo|bar)`, `^\d{4}-\d{2}`): the `regex` crate searches
    /// anchored, and its automaton reads at most that prefix of the subject (and a byte
    /// more), byte by byte as [`RegexScan::Automaton`] reads all of it.
    Bounded(usize),
    /// Anything else (a class, an alternative, an open repetition, another assertion):
    /// the lazy DFA reads the subject byte by byte.
    Automaton,
}

/// [`RegexEstimate`] of a pattern (a pattern that does not parse weighs its length
/// and is read by the automaton).
#[must_use]
pub fn regex_estimate(pattern: &str) -> RegexEstimate {
    // the pattern as it is compiled: RE2's syntax read the `regex` crate's way
    let parsed = re2_pattern(pattern)
        .ok()
        .and_then(|p| regex_syntax::Parser::new().parse(&p).ok());
    match parsed {
        Some(hir) => {
            // the prefix literals the `regex` crate extracts to skip its automata
            let prefixes = regex_syntax::hir::literal::Extractor::new().extract(&hir);
            let scan = regex_scan(&hir, &prefixes);
            // one exact literal and no assertion: a substring search, no automaton
            let searched = hir.properties().look_set().is_empty()
                && matches!(prefixes.literals(), Some([one]) if one.is_exact());
            let extra = match prefixes.literals() {
                _ if searched => 0,
                // several literals: a multi-literal searcher is built besides
                Some(lits) if lits.len() > 1 => {
                    REGEX_AUTOMATON_WEIGHT.saturating_add(REGEX_PREFILTER_WEIGHT)
                }
                _ => REGEX_AUTOMATON_WEIGHT,
            };
            RegexEstimate {
                weight: hir_weight(&hir)
                    .saturating_add(extra)
                    .max(least_weight(pattern.len())),
                scan,
            }
        }
        None => RegexEstimate {
            weight: u64::try_from(pattern.len()).unwrap_or(u64::MAX),
            scan: RegexScan::Automaton,
        },
    }
}

/// [`RegexScan`] of a parsed pattern (decision 126), from its HIR's properties and the
/// prefix literals the `regex` crate extracts (`prefixes`):
///
/// - nothing asserted: a pattern that matches the empty string (its least length 0:
///   `""`, `a*`, `x?`) matches at the subject's start, [`RegexScan::AtOnce`]; one
///   whose exact literal extraction is one string (`regex-syntax`'s `Extractor`, with
///   its bounds: a longer repetition is not expanded and stays an automaton) is a
///   [`RegexScan::Literal`]; anything else an automaton;
/// - `^` (the subject's start, not `(?m)^`) first and nothing else asserted: the search
///   is anchored, so a rest that matches the empty string (`^`, `^a*`) matches at
///   once, and a rest that is one string ([`one_string`]: `^ab`, `^(a)`, `^a{2}`, and
///   `^ab$`, whose search dies a byte after it) is a [`RegexScan::Prefix`];
/// - `$` (the subject's end) last, no `^`, nothing else asserted, and the rest one
///   string (`$`, `a$`, `(a)$`): the `regex` crate searches backwards from the end, a
///   [`RegexScan::Suffix`];
/// - any other pattern whose every match starts at the subject's start (its HIR's
///   `look_set_prefix` holds `^`: `^` begins every alternative, not `(?m)^`, as the
///   `regex` crate decides to search anchored) and has a longest match (`maximum_len`:
///   `^a|^b`, `(?i)^a`, `^a.b`, `^[a-z]{3}`, `^(foo|bar)`, `^a\b`) is
///   [`RegexScan::Bounded`] by that length: the anchored search dies a byte after it,
///   whatever other assertion it holds (measured flat from 1 KB to 10 MB, decision 126);
/// - anything else (`^a.*b`, `^(a|b*)c`, `(?m)^a`, `^a|b`, `a.b$`): an automaton.
fn regex_scan(h: &regex_syntax::hir::Hir, prefixes: &regex_syntax::hir::literal::Seq) -> RegexScan {
    use regex_syntax::hir::{Hir, HirKind, Look};
    let props = h.properties();
    if props.look_set().is_empty() {
        return if props.minimum_len() == Some(0) {
            RegexScan::AtOnce
        } else if matches!(prefixes.literals(), Some([one]) if one.is_exact()) {
            RegexScan::Literal
        } else {
            RegexScan::Automaton
        };
    }
    let parts = match h.kind() {
        HirKind::Concat(parts) => parts.as_slice(),
        _ => std::slice::from_ref(h),
    };
    let is = |part: Option<&Hir>, look: Look| {
        part.is_some_and(|p| matches!(p.kind(), HirKind::Look(l) if *l == look))
    };
    let start = is(parts.first(), Look::Start);
    let parts = parts.get(usize::from(start)..).unwrap_or_default();
    let end = is(parts.last(), Look::End);
    let parts = parts
        .get(..parts.len() - usize::from(end))
        .unwrap_or_default();
    // the search is anchored at the subject's start when every match starts there
    // (`regex-automata`'s own test, `is_always_anchored_start`): it then reads at most
    // the longest match, and a byte more
    let anchored = match props.maximum_len() {
        Some(n) if props.look_set_prefix().contains(Look::Start) => RegexScan::Bounded(n),
        _ => RegexScan::Automaton,
    };
    if !(start || end) || parts.iter().any(|p| !p.properties().look_set().is_empty()) {
        return anchored;
    }
    let rest = Hir::concat(parts.to_vec());
    match (start, end, one_string(&rest)) {
        (true, false, _) if rest.properties().minimum_len() == Some(0) => RegexScan::AtOnce,
        (true, _, Some(n)) => RegexScan::Prefix(n),
        (false, true, Some(n)) => RegexScan::Suffix(n),
        _ => anchored,
    }
}

/// The length of the one string every match of an assertion-free HIR is, if it is
/// one: a literal of any length, or what `regex-syntax`'s exact literal extraction
/// (which looks through groups and expands short repetitions) makes one string.
fn one_string(h: &regex_syntax::hir::Hir) -> Option<usize> {
    use regex_syntax::hir::HirKind;
    if let HirKind::Literal(l) = h.kind() {
        return Some(l.0.len());
    }
    match regex_syntax::hir::literal::Extractor::new()
        .extract(h)
        .literals()
    {
        Some([one]) if one.is_exact() => Some(one.len()),
        _ => None,
    }
}

/// The weight of a class, from the UTF-8 sequences the compiler turns it into: 1 per
/// ASCII range, half a unit per byte range of a longer sequence (measured: a Unicode
/// class's byte ranges compile about twice as fast as as many ASCII ranges, decision
/// 126), at least 1, plus [`REGEX_UNICODE_CLASS_WEIGHT`] when it reaches past ASCII.
fn class_weight(c: &regex_syntax::hir::ClassUnicode) -> u64 {
    let halves: usize = c
        .ranges()
        .iter()
        .flat_map(|r| regex_syntax::utf8::Utf8Sequences::new(r.start(), r.end()))
        .map(|s| if s.len() == 1 { 2 } else { s.len() })
        .sum();
    let own = u64::try_from(halves.div_ceil(2)).unwrap_or(u64::MAX).max(1);
    if c.is_ascii() {
        own
    } else {
        own.saturating_add(REGEX_UNICODE_CLASS_WEIGHT)
    }
}

fn hir_weight(h: &regex_syntax::hir::Hir) -> u64 {
    use regex_syntax::hir::{Class, HirKind};
    let n = |x: usize| u64::try_from(x).unwrap_or(u64::MAX);
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => 1,
        HirKind::Literal(l) => n(l.0.len()),
        HirKind::Class(Class::Unicode(c)) => class_weight(c),
        HirKind::Class(Class::Bytes(c)) => n(c.ranges().len()).max(1),
        // the compiler writes the part once per count: `{2,5}` five times, `*`, `?`
        // and `+` once (with a loop back), `{3,}` three times
        HirKind::Repetition(r) => {
            let times = r.max.unwrap_or(r.min);
            hir_weight(&r.sub)
                .saturating_mul(u64::from(times.max(1)))
                .saturating_add(REGEX_GROUP_WEIGHT)
        }
        HirKind::Capture(c) => hir_weight(&c.sub).saturating_add(REGEX_GROUP_WEIGHT),
        HirKind::Concat(v) | HirKind::Alternation(v) => v
            .iter()
            .fold(1u64, |acc, x| acc.saturating_add(hir_weight(x))),
    }
}

/// What matching a subject against a compiled pattern costs, by its [`RegexScan`]:
/// nothing for a pattern that matches at once (decision 126); for a literal pattern
/// what reading the subject costs, [`scan_cost`] of it (a unit per 64 bytes, decision
/// 121); for `^literal` and `literal$` what `startsWith`/`endsWith` of the literal
/// costs ([`affix_cost`], decision 123); for any other pattern a unit per
/// [`REGEX_SUBJECT_BYTES_PER_UNIT`] bytes the automaton reads (the lazy DFA's rate,
/// which barely depends on the pattern's size): the shorter of the subject and the
/// longest match for a [`RegexScan::Bounded`] pattern, the whole subject otherwise.
#[must_use]
pub fn match_cost(subject: &str, pattern: RegexEstimate) -> u64 {
    let read = match pattern.scan {
        RegexScan::AtOnce => return 0,
        RegexScan::Literal => return scan_cost(subject.len()),
        RegexScan::Prefix(n) | RegexScan::Suffix(n) => return affix_cost(subject.len(), n),
        RegexScan::Bounded(n) => subject.len().min(n),
        RegexScan::Automaton => subject.len(),
    };
    u64::try_from(read / REGEX_SUBJECT_BYTES_PER_UNIT).unwrap_or(u64::MAX)
}

/// The least weight of a pattern of `len` bytes, known without parsing it: a unit
/// per [`REGEX_BYTES_PER_WEIGHT`] bytes, rounded up.
fn least_weight(len: usize) -> u64 {
    u64::try_from(len.div_ceil(REGEX_BYTES_PER_WEIGHT)).unwrap_or(u64::MAX)
}

/// The least [`regex_cost`] of `s.matches(pattern)` whatever the subject, known without
/// parsing the pattern: [`REGEX_FLOOR`] plus [`REGEX_UNITS_PER_WEIGHT`] per unit of its
/// least weight (a unit per [`REGEX_BYTES_PER_WEIGHT`] bytes); a subject may cost
/// nothing (a pattern matching at once). [`call_cost`] stops at this when it is more
/// than the budget left, so a huge pattern is never parsed (decision 126).
#[must_use]
pub fn regex_least_cost(pattern: &str) -> u64 {
    REGEX_FLOOR.saturating_add(least_weight(pattern.len()).saturating_mul(REGEX_UNITS_PER_WEIGHT))
}

/// What `s.matches(p)` costs for a pattern read at run time, a function of the strings
/// only (never of whether the pattern is cached, so both paths charge the same):
/// compiling it, [`REGEX_FLOOR`] plus [`REGEX_UNITS_PER_WEIGHT`] per unit of
/// [`regex_weight`], charged before the attempt whether it succeeds or not (a pattern
/// over the size limit costs its attempt); and matching, [`match_cost`]. A literal
/// pattern of the condition is compiled when the condition is built, and each
/// evaluation is charged only [`LiteralRegex::match_cost`].
///
/// A pattern's weight is kept with its compiled regex in the bounded cache
/// ([`cached_regex`]): a pattern in the cache is not parsed again, and one that is not
/// is parsed once for its weight, which is the same number either way.
#[must_use]
pub fn regex_cost(subject: &str, pattern: &str) -> u64 {
    let estimate = cached_regex(pattern).estimate();
    compile_cost(estimate).saturating_add(match_cost(subject, estimate))
}

/// What compiling a pattern of this estimate costs: [`REGEX_FLOOR`] plus
/// [`REGEX_UNITS_PER_WEIGHT`] per unit of its weight.
fn compile_cost(estimate: RegexEstimate) -> u64 {
    REGEX_FLOOR.saturating_add(estimate.weight.saturating_mul(REGEX_UNITS_PER_WEIGHT))
}

/// What `s.matches(p)` on a pattern read at run time is charged with `left` units
/// left, in the order the work is done (decision 126), the one routine of both paths
/// ([`call_cost`]): [`regex_least_cost`] when that is more than `left` (the pattern is
/// never parsed); else its compilation ([`compile_cost`] of [`regex_estimate`]) when that
/// is more than `left` (never compiled) or when the pattern does not compile (an
/// invalid pattern, the size limit's included: the call then gives the ordinary error
/// `&&`/`||` absorb, and the subject is never read nor charged); else its
/// compilation plus the subject's [`match_cost`], which is [`regex_cost`]. The
/// compiled regex is kept in the cache entry the call then matches with.
fn matches_cost(subject: &str, pattern: &str, left: u64) -> u64 {
    let least = regex_least_cost(pattern);
    if least > left {
        return least;
    }
    let entry = cached_regex(pattern);
    let compile = compile_cost(entry.estimate());
    if compile > left || entry.compiled().is_err() {
        return compile;
    }
    compile.saturating_add(match_cost(subject, entry.estimate()))
}

/// What placing a value into a list being built costs (an element of a list literal,
/// of a `map`/`filter` result or of `+`): nothing for a number, a bool, a timestamp
/// or a duration; a unit per [`BYTES_PER_UNIT`] bytes of a string or bytes value; a
/// unit per element of a list or entry of a map plus what each element (or entry's
/// value) costs. The sandbox copies such a value, the direct path shares it; both
/// charge this. The walk stops once the cost passes `budget` (`None`: it does not
/// fit), so pricing a huge value costs no more than the budget it would spend.
pub fn copy_cost<V: View + ?Sized>(v: &V, budget: u64) -> Option<u64> {
    let mut left = budget;
    copy_walk(v, &mut left)?;
    Some(budget - left)
}

fn copy_walk<V: View + ?Sized>(v: &V, left: &mut u64) -> Option<()> {
    let own = v.with_scalar(|s| match s {
        Scalar::Str(s) => s.len() / BYTES_PER_UNIT,
        Scalar::Other("bytes") => match &*v.value() {
            Value::Bytes(b) => b.len() / BYTES_PER_UNIT,
            _ => 0,
        },
        _ => v.collection_len().unwrap_or(0),
    });
    *left = left.checked_sub(u64::try_from(own).unwrap_or(u64::MAX))?;
    if v.collection_len().is_some() {
        let mut ok = true;
        v.each_child(&mut |c| {
            ok = copy_walk(c, left).is_some();
            ok
        });
        if !ok {
            return None;
        }
    }
    Some(())
}

/// CEL equality ([`equals`]) charged a unit per element of a list or entry of a map
/// compared, at any depth, stopping as soon as `budget` would run out (`None`), as
/// [`search`] does: the one definition of what `==`, `!=` and `in` cost on
/// collections, for both paths. Scalars compare for nothing. Returns the result and
/// the units spent.
pub fn equals_within<A: View, B: View>(a: &A, b: &B, budget: u64) -> Option<(bool, u64)> {
    let mut left = budget;
    let eq = eq_view(a, b, &mut left)?;
    Some((eq, budget - left))
}

/// CEL equality charged per element on two viewed values: scalars, lists and maps
/// compared in place (a context collection is never converted to compare it), the rest
/// as values ([`eq_walk`]).
fn eq_view<A: View, B: View>(a: &A, b: &B, left: &mut u64) -> Option<bool> {
    let scalars = a.with_scalar(|x| {
        b.with_scalar(|y| match (x, y) {
            (Scalar::Other(_), Scalar::Other(_)) => None,
            (Scalar::Str(p), Scalar::Str(q)) => Some((str_equals(p, q), compare_cost(p, q))),
            (x, y) => Some((scalar_equals(x, y), 0)),
        })
    });
    if let Some((eq, cost)) = scalars {
        *left = left.checked_sub(cost)?;
        return Some(eq);
    }
    // lists element by element, each a unit
    let lists = a.with_items(|x| {
        b.with_items(|y| {
            if x.len() != y.len() {
                return Some(false);
            }
            for (p, q) in x.iter().zip(y) {
                *left = left.checked_sub(1)?;
                if !eq_view(p, q, left)? {
                    return Some(false);
                }
            }
            Some(true)
        })
    });
    if let Some(Some(eq)) = lists {
        return eq;
    }
    match a.with_map(|x| b.with_map(|y| maps_equal(x, y, left))) {
        Some(Some(eq)) => eq,
        _ => eq_walk(&a.value(), &b.value(), left),
    }
}

/// The map rule of [`equals_within`], the maps read in place: a unit per entry
/// plus [`key_cost`] of its key (looked up in the other map), then its values
/// compared as [`eq_view`] compares them, every entry (the cost does not depend on the
/// order the entries are walked in); maps of different sizes compare nothing. The direct path's maps and the sandbox's Rhai maps alike (decision 123).
fn maps_equal<A: View, B: View, X: MapView<Item = A> + ?Sized, Y: MapView<Item = B> + ?Sized>(
    x: &X,
    y: &Y,
    left: &mut u64,
) -> Option<bool> {
    if x.entries() != y.entries() {
        return Some(false);
    }
    // every entry is compared, also after one differs: the direct path's maps keep
    // their insertion order and Rhai's sort their keys, so a walk that stopped at the
    // first difference would cost what the order reaches first (the generator found
    // `{s: j, "a": i} == m` within a budget of 1 on one path only). Walked whole, the
    // cost is the sum over the entries whatever the order. (`None`: out of budget)
    let mut out = Some(true);
    x.each_entry(&mut |k, v| {
        let Some(l) = left.checked_sub(1_u64.saturating_add(key_units(k))) else {
            out = None;
            return false;
        };
        *left = l;
        let eq = match map_lookup(y, k) {
            Some(w) => eq_view(v, w, left),
            None => Some(false),
        };
        out = out.zip(eq).map(|(a, b)| a && b);
        out.is_some()
    });
    out
}

/// The rest of [`equals_within`] on values (lists are [`eq_view`]'s, read in place;
/// maps [`maps_equal`]'s).
fn eq_walk(a: &Value, b: &Value, left: &mut u64) -> Option<bool> {
    match (a, b) {
        (Value::List(_), Value::List(_)) => eq_view(a, b, left),
        (Value::Map(x), Value::Map(y)) => maps_equal(&**x, &**y, left),
        (Value::Bytes(x), Value::Bytes(y)) => {
            *left = left.checked_sub(scan_cost(x.len().min(y.len())))?;
            Some(x == y)
        }
        _ => Some(equals(a, b)),
    }
}

/// The outcome of a search charged per element: found or not, and the elements
/// compared (the budget units it costs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Searched {
    /// The element was found.
    pub found: bool,
    /// Elements compared: up to and including a hit, or all of them on a miss.
    pub compared: u64,
}

/// Searches `items` for the first that `hit` accepts, comparing at most `budget` of
/// them (`None`: the budget ran out before the search ended). The one definition of
/// what `in` on a list costs, used by both paths.
pub fn search<T>(
    items: impl IntoIterator<Item = T>,
    budget: u64,
    mut hit: impl FnMut(T) -> bool,
) -> Option<Searched> {
    search_charged(items, budget, |item, _| Some(hit(item)))
}

/// [`search`] where comparing an element may cost more than its unit: `hit` takes the
/// units left and spends from them (`None`: they ran out). `compared` is then every
/// unit spent.
pub fn search_charged<T>(
    items: impl IntoIterator<Item = T>,
    budget: u64,
    mut hit: impl FnMut(T, &mut u64) -> Option<bool>,
) -> Option<Searched> {
    let mut left = budget;
    for item in items {
        left = left.checked_sub(1)?;
        if hit(item, &mut left)? {
            return Some(Searched {
                found: true,
                compared: budget - left,
            });
        }
    }
    Some(Searched {
        found: false,
        compared: budget - left,
    })
}

/// What one evaluation of a [`Site`] costs ([`site_cost`]), with what `==` and `in`
/// decide (their cost is the walk that decides them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Priced {
    /// Units of the evaluation budget.
    pub units: u64,
    /// `==`: the operands are equal; `in`: the element is in the list or map; `false`
    /// at the other sites, which decide nothing.
    pub holds: bool,
}

/// What a [`Site`] costs on its operands, beyond its units: the one routine every node
/// of the direct path (exact and typed) and every native of the sandbox charging a site
/// goes through, as [`sized_cost`] is for the rows of the overload table. The operands,
/// read in place: `==` its two ([`equals_within`]); `in` the element, then the list
/// searched (a unit per element compared, [`list_contains`]) or the map looked up (its
/// key, [`map_contains`]); an index its map key ([`key_cost`]); a value taken, placed
/// into a literal, or stepped to by a comprehension ([`copy_cost`]). `left` is the
/// budget left: `Ok(None)` when the cost does not fit it (the walk stops there, so
/// pricing a huge value costs no more than the budget it would spend). Operands no
/// site takes (none, or too many) cost nothing.
///
/// # Errors
/// `in` on a value that is no list or map.
pub fn site_cost<V: View>(
    site: Site,
    operands: &[&V],
    left: u64,
) -> Result<Option<Priced>, OpError> {
    let priced = |units: u64, holds: bool| Priced { units, holds };
    Ok(match (site, operands) {
        (Site::Equality, [a, b]) => {
            equals_within(*a, *b, left).map(|(eq, units)| priced(units, eq))
        }
        (Site::Membership, [x, c]) => {
            membership(*x, *c, left)?.map(|s| priced(s.compared, s.found))
        }
        (Site::Key, [k]) => {
            let units = key_cost(*k);
            (units <= left).then_some(priced(units, false))
        }
        (Site::Take | Site::Literal | Site::Step, [v]) => {
            copy_cost(*v, left).map(|u| priced(u, false))
        }
        _ => Some(priced(0, false)),
    })
}

/// `x in c` within a budget, the collection read in place: a map looked up
/// ([`map_contains`]), a list searched ([`list_contains`]); a collection not held as
/// one (the sandbox's map with keys Rhai has no form for) as a [`Value`].
/// `Ok(None)`: the budget ran out.
///
/// # Errors
/// No overload when `c` is not a list or map.
fn membership<V: View>(x: &V, c: &V, left: u64) -> Result<Option<Searched>, OpError> {
    if let Some(s) = c.with_map(|m| map_contains(m, x, left)) {
        return Ok(s);
    }
    if let Some(s) = c.with_items(|items| list_contains(x, items.iter(), left)) {
        return Ok(s);
    }
    match &*c.value() {
        Value::List(items) => Ok(list_contains(x, items.iter(), left)),
        Value::Map(m) => Ok(map_contains(&**m, x, left)),
        other => Err(overload("in", &[&x.value(), other])),
    }
}

/// `k in m` within a budget, the map read in place (both paths): the lookup costs
/// [`key_cost`] of the key, charged before it reads the key (`None`: it does not fit).
pub fn map_contains<M: MapView + ?Sized, K: View + ?Sized>(
    m: &M,
    k: &K,
    budget: u64,
) -> Option<Searched> {
    let compared = key_cost(k);
    (compared <= budget).then(|| Searched {
        found: k.with_scalar(|k| map_lookup(m, k).is_some()),
        compared,
    })
}

/// What looking a key up in a map costs (`k in m`, `m[k]`, and each entry two maps
/// compare by, beside its unit): hashing or comparing a string key reads every byte of
/// it, so a string key costs [`scan_cost`] of its bytes, as any string read (decision
/// 121); other keys nothing. Both paths charge it before the lookup.
#[must_use]
pub fn key_cost<K: View + ?Sized>(k: &K) -> u64 {
    k.with_scalar(key_units)
}

/// [`key_cost`] of a key viewed as a scalar.
fn key_units(k: Scalar<'_>) -> u64 {
    match k {
        Scalar::Str(s) => scan_cost(s.len()),
        _ => 0,
    }
}

/// `a[i]`
///
/// # Errors
/// Out of range, missing key, or no overload.
pub fn index(a: &Value, i: &Value) -> Result<Value, OpError> {
    match a {
        Value::List(items) => list_index(items, i.scalar()).cloned(),
        Value::Map(m) => map_index(&**m, i.scalar()).cloned(),
        _ => Err(overload("[]", &[a, i])),
    }
}

/// `a.field` on a map, by reference.
///
/// # Errors
/// Missing key or no overload.
pub fn field<'a>(a: &'a Value, name: &str) -> Result<&'a Value, OpError> {
    match a {
        Value::Map(m) => map_field(&**m, name),
        other => Err(OpError::NoMatchingOverload {
            op: format!(".{name}"),
            args: other.type_name().to_owned(),
        }),
    }
}

/// `a.field` on a map.
///
/// # Errors
/// Missing key or no overload.
pub fn select(a: &Value, name: &str) -> Result<Value, OpError> {
    field(a, name).cloned()
}

/// A map literal from its evaluated entries, in order.
///
/// # Errors
/// A key of a type maps cannot have, or a key given twice.
pub fn build_map(pairs: impl IntoIterator<Item = (Value, Value)>) -> Result<Value, OpError> {
    let mut entries: Vec<(Value, Value)> = Vec::new();
    for (k, v) in pairs {
        if !matches!(
            k,
            Value::String(_) | Value::Int(_) | Value::Uint(_) | Value::Bool(_)
        ) {
            return Err(OpError::InvalidArgument(format!(
                "unsupported map key type {}",
                k.type_name()
            )));
        }
        // a literal's entries, searched in place (no index of a map still being built)
        if scan(&entries, k.scalar()).is_some() {
            return Err(OpError::InvalidArgument(format!(
                "duplicate map key {}",
                quote_value(&k)
            )));
        }
        entries.push((k, v));
    }
    Ok(Value::map(entries))
}

/// One operand of CEL's `&&` / `||`: a bool, an error, or a value of another type.
#[derive(Debug)]
pub enum Logic<E> {
    /// `true` / `false`
    B(bool),
    /// An error (absorbed when the other side decides).
    Err(E),
    /// A value that is not a bool: the name of its type.
    Other(&'static str),
}

/// CEL's `&&` (`is_and`) or `||`, commutative over errors: a deciding operand
/// (`false` for `&&`, `true` for `||`) wins over an error on the other side; of two
/// errors the left one is kept; a non-bool operand is a "no matching overload" error
/// (made by `no_overload`). The result is `B` or `Err`, never `Other`.
pub fn and_or<E>(
    is_and: bool,
    a: Logic<E>,
    b: Logic<E>,
    no_overload: impl FnOnce(OpError) -> E,
) -> Logic<E> {
    let absorbing = !is_and;
    match (a, b) {
        (Logic::B(x), _) | (_, Logic::B(x)) if x == absorbing => Logic::B(absorbing),
        (Logic::B(_), Logic::B(_)) => Logic::B(!absorbing),
        (Logic::Err(e), _) | (_, Logic::Err(e)) => Logic::Err(e),
        (Logic::Other(t), _) | (_, Logic::Other(t)) => {
            Logic::Err(no_overload(OpError::NoMatchingOverload {
                op: if is_and { "&&" } else { "||" }.to_owned(),
                args: t.to_owned(),
            }))
        }
    }
}

/// `has(a.field)`
///
/// # Errors
/// No overload when `a` is not a map.
pub fn has(a: &Value, field: &str) -> Result<bool, OpError> {
    match a {
        Value::Map(m) => Ok(map_has(&**m, field)),
        other => Err(OpError::NoMatchingOverload {
            op: "has".to_owned(),
            args: other.type_name().to_owned(),
        }),
    }
}

fn double_to_int(d: f64) -> Result<i64, OpError> {
    if d.is_nan() || d <= -9_223_372_036_854_775_809.0 || d >= 9_223_372_036_854_775_807.0 {
        return Err(OpError::Range("int"));
    }
    #[expect(clippy::cast_possible_truncation, reason = "range checked above")]
    Ok(d.trunc() as i64)
}

/// A conversion function: `int`, `uint`, `double`, `string`, `bool`, `bytes`, `dyn`,
/// `timestamp`, `duration`.
///
/// # Errors
/// Out of range, unparsable, or no overload.
pub fn convert(to: Func, a: &Value) -> Result<Value, OpError> {
    use Value::{Bool, Double, Int, Uint};
    let name = to.name();
    let bad = |what: &str| {
        OpError::InvalidArgument(format!("cannot convert {} to {what}", quote_value(a)))
    };
    Ok(match (to, a) {
        (Func::Dyn, v) => v.clone(),
        (Func::Int, Int(i)) => Int(*i),
        (Func::Int, Uint(u)) => Int(i64::try_from(*u).map_err(|_| OpError::Range("int"))?),
        (Func::Int, Double(d)) => Int(double_to_int(*d)?),
        (Func::Int, Value::String(s)) => Int(s.parse().map_err(|_| bad("int"))?),
        (Func::Int, Value::Timestamp(t)) => Int(t.secs),
        (Func::Uint, Uint(u)) => Uint(*u),
        (Func::Uint, Int(i)) => Uint(u64::try_from(*i).map_err(|_| OpError::Range("uint"))?),
        (Func::Uint, Double(d)) => {
            // as cel-go: any negative double (even above -1) is out of range
            if d.is_nan() || *d < 0.0 || *d >= 18_446_744_073_709_551_615.0 {
                return Err(OpError::Range("uint"));
            }
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "range checked above"
            )]
            Uint(d.trunc() as u64)
        }
        // Go's `ParseUint` takes no sign (Rust's `parse` takes `+`)
        (Func::Uint, Value::String(s)) if !s.starts_with('+') => {
            Uint(s.parse().map_err(|_| bad("uint"))?)
        }
        (Func::Uint, Value::String(_)) => return Err(bad("uint")),
        (Func::Double, Double(d)) => Double(*d),
        #[expect(clippy::cast_precision_loss, reason = "CEL converts with rounding")]
        (Func::Double, Int(i)) => Double(*i as f64),
        #[expect(clippy::cast_precision_loss, reason = "CEL converts with rounding")]
        (Func::Double, Uint(u)) => Double(*u as f64),
        (Func::Double, Value::String(s)) => {
            Double(parse_double(s).map_err(|e| e.unwrap_or_else(|| bad("double")))?)
        }
        (Func::String, Value::String(s)) => Value::String(Arc::clone(s)),
        (Func::String, Int(i)) => Value::string(&i.to_string()),
        (Func::String, Uint(u)) => Value::string(&u.to_string()),
        (Func::String, Double(d)) => Value::string(&format_double(*d)),
        (Func::String, Bool(b)) => Value::string(&b.to_string()),
        (Func::String, Value::Bytes(b)) => {
            Value::string(std::str::from_utf8(b).map_err(|_| bad("string"))?)
        }
        (Func::String, Value::Timestamp(t)) => Value::string(&time::format_timestamp(*t)),
        (Func::String, Value::Duration(d)) => Value::string(&time::format_duration(*d)),
        (Func::Bytes, Value::Bytes(b)) => Value::Bytes(Arc::clone(b)),
        (Func::Bytes, Value::String(s)) => Value::Bytes(s.as_bytes().into()),
        (Func::Bool, Bool(b)) => Bool(*b),
        (Func::Bool, Value::String(s)) => Bool(match &**s {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => true,
            "0" | "f" | "F" | "false" | "FALSE" | "False" => false,
            _ => return Err(bad("bool")),
        }),
        (Func::Timestamp, Value::Timestamp(t)) => Value::Timestamp(*t),
        (Func::Timestamp, Value::String(s)) => {
            Value::Timestamp(time::timestamp_or_problem(s).map_err(|problem| {
                OpError::NotATimestamp {
                    text: quote(s).into_owned(),
                    problem,
                }
            })?)
        }
        (Func::Timestamp, Int(i)) => Value::Timestamp(
            Timestamp::from_nanos(i128::from(*i) * 1_000_000_000)
                .ok_or(OpError::Range("timestamp"))?,
        ),
        (Func::Duration, Value::Duration(d)) => Value::Duration(*d),
        (Func::Duration, Value::String(s)) => {
            Value::Duration(time::duration_or_problem(s).map_err(|problem| {
                OpError::NotADuration {
                    text: quote(s).into_owned(),
                    problem,
                }
            })?)
        }
        _ => return Err(overload(name, &[a])),
    })
}

/// `double(s)` as cel-go reads it: Go's `strconv.ParseFloat(s, 64)`; `Err(None)` when `s`
/// is no number. A decimal or a
/// hexadecimal number (`0x1.8p3`: the `p` exponent is required), an optional sign,
/// `_` only between digits (or after the base prefix), `inf`/`infinity` in any case
/// and signed, `nan` in any case and unsigned. A number beyond the largest double is
/// a range error, as Go's `ErrRange`; one below the smallest rounds to zero.
fn parse_double(s: &str) -> Result<f64, Option<OpError>> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let signed = |d: f64| if neg { -d } else { d };
    if body.eq_ignore_ascii_case("inf") || body.eq_ignore_ascii_case("infinity") {
        return Ok(signed(f64::INFINITY));
    }
    if s.eq_ignore_ascii_case("nan") {
        return Ok(f64::NAN);
    }
    let digits: std::borrow::Cow<'_, str> = if body.contains('_') {
        if !go_underscores_ok(body) {
            return Err(None);
        }
        body.replace('_', "").into()
    } else {
        body.into()
    };
    let d = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => hex_float(hex).ok_or(None)?,
        // the decimal form: Rust reads the same digits Go does, once its own spellings
        // of the specials (and a second sign) are kept out
        None if digits
            .bytes()
            .all(|b| b.is_ascii_digit() || b".eE+-".contains(&b))
            && !digits.starts_with(['+', '-']) =>
        {
            digits.parse::<f64>().map_err(|_| None)?
        }
        None => return Err(None),
    };
    if d.is_infinite() {
        return Err(Some(OpError::Range("double")));
    }
    Ok(signed(d))
}

/// Go's `underscoreOK` (the sign already taken off): every `_` stands between two
/// digits, or between the base prefix and a digit.
fn go_underscores_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let prefix = match (b.first(), b.get(1)) {
        (Some(b'0'), Some(&c)) if matches!(c | 0x20, b'x' | b'b' | b'o') => Some(c | 0x20),
        _ => None,
    };
    let (mut i, mut saw) = if prefix.is_some() {
        (2, b'0')
    } else {
        (0, b'^')
    };
    let hex = prefix == Some(b'x');
    while let Some(&c) = b.get(i) {
        i += 1;
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else if saw == b'_' {
            return false;
        } else {
            saw = b'!';
        }
    }
    saw != b'_'
}

/// A hexadecimal float after its `0x`: hex digits with an optional `.`, then the binary
/// exponent `p±d` Go requires; rounded to the nearest double, ties to even. Infinite
/// when beyond the largest double.
fn hex_float(s: &str) -> Option<f64> {
    let (mantissa, exp) = s.split_once(['p', 'P'])?;
    let exp_digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
    if exp_digits.is_empty() || !exp_digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // as Go, an exponent past 10,000 counts as 10,000: the value is infinite or zero
    let e: i64 = exp_digits.bytes().fold(0, |e, b| {
        if e < 10_000 {
            e * 10 + i64::from(b - b'0')
        } else {
            e
        }
    });
    let mut e2 = if exp.starts_with('-') { -e } else { e };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    // the first 120 bits of the mantissa are kept; later digits only say whether the
    // rest is zero (`sticky`)
    let (mut m, mut sticky) = (0u128, false);
    for (c, fraction) in int_part
        .chars()
        .map(|c| (c, false))
        .chain(frac_part.chars().map(|c| (c, true)))
    {
        let d = c.to_digit(16)?;
        if m >> 120 == 0 {
            m = m * 16 + u128::from(d);
            if fraction {
                e2 -= 4;
            }
        } else {
            sticky |= d != 0;
            if !fraction {
                e2 += 4;
            }
        }
    }
    if m == 0 {
        return Some(0.0);
    }
    let bits = i64::from(128 - m.leading_zeros());
    let top = e2 + bits - 1;
    if top > 1100 {
        return Some(f64::INFINITY);
    }
    // the bits a double holds at this magnitude: 53, fewer below the normal range
    let precision = if top >= -1022 { 53 } else { top + 1075 };
    if precision < 0 {
        return Some(0.0);
    }
    let shift = bits - precision;
    let (q, scale) = if shift > 0 {
        let shift_u = u32::try_from(shift).ok()?;
        let q = m.checked_shr(shift_u).unwrap_or(0);
        let rest = m - q.checked_shl(shift_u).unwrap_or(0);
        let half = 1u128 << (shift_u - 1);
        let up = rest > half || (rest == half && (sticky || q & 1 == 1));
        (q + u128::from(up), e2 + shift)
    } else {
        (m, e2)
    };
    // q < 2^54 and q·2^scale is a double (or beyond the largest): scaling by powers of
    // two in steps that stay normal is exact
    let mut d = f64::from(u32::try_from(q >> 32).ok()?) * 4_294_967_296.0
        + f64::from(u32::try_from(q & 0xFFFF_FFFF).ok()?);
    let mut scale = scale;
    while scale > 1000 {
        d *= 2f64.powi(1000);
        scale -= 1000;
    }
    while scale < -1000 {
        d *= 2f64.powi(-1000);
        scale += 1000;
    }
    Some(d * 2f64.powi(i32::try_from(scale).ok()?))
}

/// String functions: `contains`, `startsWith`, `endsWith`.
///
/// # Errors
/// No overload for non-strings.
pub fn string_fn<A: View + ?Sized, B: View + ?Sized>(
    f: Func,
    a: &A,
    b: &B,
) -> Result<bool, OpError> {
    a.with_scalar(|x| {
        b.with_scalar(|y| match (x, y) {
            (Scalar::Str(x), Scalar::Str(y)) => Some(str_test(f, x, y)),
            _ => None,
        })
    })
    .ok_or_else(|| overload(f.name(), &[&a.value(), &b.value()]))
}

/// The rules the typed IR nodes apply to unboxed operands, each written once here and
/// called by the generic operation above it ([`equals`], [`string_fn`]), by the exact
/// path's specialised nodes and by the typed path ([`super::typed`]) alike.
///
/// Whether an operand decides `&&` (`is_and`; `false` does) or `||` (`true` does), so
/// the other operand is not evaluated; `all` is `&&` and `exists` is `||` over the
/// elements, so the same rule ends them.
#[inline]
#[must_use]
pub(crate) fn decides(is_and: bool, b: bool) -> bool {
    b != is_and
}

/// `==` on two strings (`EqStr`, and [`equals`] on strings).
#[inline]
#[must_use]
pub(crate) fn str_equals(a: &str, b: &str) -> bool {
    a == b
}

/// `s in [literal strings]` (`InStrs`): [`str_equals`] to any member.
#[inline]
#[must_use]
pub(crate) fn str_in(s: &str, set: &[Arc<str>]) -> bool {
    set.iter().any(|x| str_equals(x, s))
}

/// `i in [literal ints]` (`InInts`).
#[inline]
#[must_use]
pub(crate) fn int_in(i: i64, set: &[i64]) -> bool {
    set.contains(&i)
}

/// `v in [literals]` (`InLits`): [`equals`] to any member.
#[inline]
#[must_use]
pub(crate) fn in_items(v: &Value, items: &[Value]) -> bool {
    items.iter().any(|i| equals(v, i))
}

/// `x.contains(y)`, `x.startsWith(y)`, `x.endsWith(y)` (`StrLit`, and [`string_fn`]).
#[inline]
#[must_use]
pub(crate) fn str_test(f: Func, x: &str, y: &str) -> bool {
    match f {
        Func::Contains => x.contains(y),
        Func::StartsWith => x.starts_with(y),
        _ => x.ends_with(y),
    }
}

/// A literal `matches` pattern compiled when its condition was built, with its
/// [`regex_weight`] (what each match is charged by, [`match_cost`]): held by the
/// direct path's `Matches` node and, as a constant, by the sandbox program
/// (`ir::Patterns` makes one per literal pattern).
#[derive(Clone, Debug)]
pub struct LiteralRegex {
    regex: Arc<regex::Regex>,
    estimate: RegexEstimate,
}

impl LiteralRegex {
    /// The pattern's regex and weight, from the regex cache's entry (compiled now if it
    /// was not), or why it does not compile.
    ///
    /// # Errors
    /// As [`compiled_regex`].
    pub fn new(pattern: &str) -> Result<Self, String> {
        let entry = cached_regex(pattern);
        Ok(Self {
            regex: entry.compiled()?,
            estimate: entry.estimate(),
        })
    }

    /// The compiled regex.
    #[must_use]
    pub fn regex(&self) -> &regex::Regex {
        &self.regex
    }

    /// What matching a subject against it costs ([`match_cost`]).
    #[must_use]
    pub fn match_cost(&self, subject: &str) -> u64 {
        match_cost(subject, self.estimate)
    }
}

/// `s.matches(re)` with the pattern compiled (`Matches`, and the `matches` function).
#[inline]
#[must_use]
pub(crate) fn re_match(re: &regex::Regex, s: &str) -> bool {
    re.is_match(s)
}

/// Timestamp and duration accessors (`getFullYear`, `getHours`, ...), with an optional zone.
///
/// # Errors
/// Unknown zone or no overload.
pub fn time_accessor(f: Func, a: &Value, tz: Option<&Value>) -> Result<Value, OpError> {
    let name = f.name();
    match a {
        Value::Timestamp(t) => {
            let offset = match tz {
                None => 0,
                Some(Value::String(z)) => {
                    time::zone_offset(z).ok_or_else(|| OpError::unknown_zone(z))?
                }
                Some(other) => return Err(overload(name, &[a, other])),
            };
            let t = time::fields(*t, offset);
            Ok(Value::Int(match f {
                Func::GetFullYear => t.year,
                Func::GetMonth => t.month0,
                Func::GetDate => t.day,
                Func::GetDayOfMonth => t.day - 1,
                Func::GetDayOfYear => t.day_of_year0,
                Func::GetDayOfWeek => t.weekday,
                Func::GetHours => t.hours,
                Func::GetMinutes => t.minutes,
                Func::GetSeconds => t.seconds,
                Func::GetMilliseconds => t.millis,
                _ => return Err(overload(name, &[a])),
            }))
        }
        Value::Duration(d) if tz.is_none() => {
            let n = d.nanos;
            let v = match f {
                Func::GetHours => n / 3_600_000_000_000,
                Func::GetMinutes => n / 60_000_000_000,
                Func::GetSeconds => n / 1_000_000_000,
                Func::GetMilliseconds => (n / 1_000_000) % 1000,
                _ => return Err(overload(name, &[a])),
            };
            Ok(Value::Int(
                i64::try_from(v).map_err(|_| OpError::Range("int"))?,
            ))
        }
        other => Err(overload(name, &[other])),
    }
}

/// Runs `matches` with a cached, size-limited regex (RE2 syntax, linear time).
///
/// # Errors
/// Invalid pattern or no overload.
pub fn matches<A: View + ?Sized, B: View + ?Sized>(a: &A, pattern: &B) -> Result<bool, OpError> {
    a.with_scalar(|s| {
        pattern.with_scalar(|p| match (s, p) {
            (Scalar::Str(s), Scalar::Str(p)) => Some(regex_for(p).map(|re| re_match(&re, s))),
            _ => None,
        })
    })
    .unwrap_or_else(|| Err(overload("matches", &[&a.value(), &pattern.value()])))
}

/// Compiles (or fetches from a bounded cache) a regex.
///
/// # Errors
/// Invalid pattern or one over the size limit.
pub fn regex_for(p: &str) -> Result<Arc<regex::Regex>, OpError> {
    compiled_regex(p)
        .map_err(|reason| OpError::InvalidArgument(format!("invalid regular expression: {reason}")))
}

/// The compiled regular expression of a pattern (cached), or why it has none, in words
/// that do not repeat "invalid regular expression" (the caller says it once).
///
/// # Errors
/// The pattern does not parse, or compiles to more than
/// [`Limits::MAX_REGEX_SIZE`](crate::limits::Limits::MAX_REGEX_SIZE) bytes.
pub fn compiled_regex(p: &str) -> Result<Arc<regex::Regex>, String> {
    cached_regex(p).compiled()
}

/// A pattern as the regex cache holds it: what compiling it costs ([`regex_weight`],
/// from the pattern parsed once) and, once asked for, its compiled regex or why it has
/// none. `matches` on a pattern from the context charges the weight before it asks
/// for the regex, so a pattern is never compiled before its cost is charged.
#[derive(Debug)]
pub struct CachedRegex {
    pattern: Box<str>,
    estimate: RegexEstimate,
    compiled: std::sync::OnceLock<Result<Arc<regex::Regex>, String>>,
}

impl CachedRegex {
    /// [`regex_estimate`] of the pattern.
    #[must_use]
    pub fn estimate(&self) -> RegexEstimate {
        self.estimate
    }

    /// The compiled regex (compiled on the first call), or why there is none.
    ///
    /// # Errors
    /// As [`compiled_regex`].
    pub fn compiled(&self) -> Result<Arc<regex::Regex>, String> {
        self.compiled
            .get_or_init(|| build_regex(&self.pattern).map(Arc::new))
            .clone()
    }
}

/// The cache entry of a pattern: from the bounded process-wide cache
/// ([`Limits::REGEX_CACHE_ENTRIES`](crate::limits::Limits::REGEX_CACHE_ENTRIES)
/// patterns, emptied when full), or made now (the pattern parsed for its weight, not
/// compiled) and added to it.
#[must_use]
pub fn cached_regex(p: &str) -> Arc<CachedRegex> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<Box<str>, Arc<CachedRegex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Ok(c) = cache.lock()
        && let Some(r) = c.get(p)
    {
        return Arc::clone(r);
    }
    let entry = Arc::new(CachedRegex {
        pattern: p.into(),
        estimate: regex_estimate(p),
        compiled: std::sync::OnceLock::new(),
    });
    if let Ok(mut c) = cache.lock() {
        if c.len() >= crate::limits::Limits::REGEX_CACHE_ENTRIES {
            c.clear();
        }
        c.insert(p.into(), Arc::clone(&entry));
    }
    entry
}

/// Compiles a pattern as `matches` does, bypassing the cache (what [`regex_cost`]
/// charges for; `benches/eval.rs` times it).
///
/// # Errors
/// As [`compiled_regex`].
pub fn build_regex(p: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(&re2_pattern(p)?)
        .size_limit(crate::limits::Limits::MAX_REGEX_SIZE)
        .dfa_size_limit(crate::limits::Limits::MAX_REGEX_SIZE)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => {
                format!("it compiles to more than the limit of {limit} bytes")
            }
            // a parse error quotes the pattern with a caret, then says what is wrong: the
            // diagnostic points at the pattern already, so only the last part is kept
            other => {
                let text = other.to_string();
                text.rsplit_once("error: ")
                    .map_or(text.as_str(), |(_, why)| why)
                    .trim()
                    .to_owned()
            }
        })
}

/// A pattern in RE2 syntax (CEL's, as Go's `regexp` reads it) as the `regex` crate
/// reads it: the one place where the two syntaxes are reconciled.
///
/// - `\Q…\E` (outside a class) is literal text: it is rewritten to the text escaped
///   (to the end of the pattern when there is no `\E`).
/// - A repetition operator applied to a repetition (`a++`, `a**`, `a*?+`, `a{2}*`) is an
///   error, as in RE2 and Go: the `regex` crate would read `a++` as `(?:a+)+`, where
///   Perl means a possessive `a+`.
/// - `\d`, `\w`, `\s`, their complements, `\b` and `\B` are ASCII, as in RE2
///   ([`re2_escape`]).
/// - A flag group takes RE2's flags only (`i`, `m`, `s`, `U`; [`re2_flags`]): the
///   `regex` crate's own (`u`, `x`, `R`) are refused as RE2 refuses them.
///
/// Everything else goes to the `regex` crate as written; the differences that remain
/// (`\C` is rejected, as Go rejects it) are listed in the README.
///
/// # Errors
/// A stacked repetition operator or a flag RE2 does not have, in words.
#[expect(
    clippy::too_many_lines,
    reason = "one scanner over the pattern: its cases read together"
)]
fn re2_pattern(p: &str) -> Result<std::borrow::Cow<'_, str>, String> {
    use std::borrow::Cow;
    if !p.contains('\\') && !p.contains(['*', '+', '?', '{']) {
        return Ok(Cow::Borrowed(p));
    }
    let b = p.as_bytes();
    let mut out = String::with_capacity(p.len());
    let mut i = 0;
    let mut class = false;
    // where the repetition operator just before this point started (`None`: no operator)
    let mut last_repeat: Option<usize> = None;
    while let Some(&c) = b.get(i) {
        let start = i;
        match c {
            b'\\' if !class && b.get(i + 1) == Some(&b'Q') => {
                let body = p.get(i + 2..).unwrap_or("");
                let (lit, skip) = match body.find("\\E") {
                    Some(e) => (body.get(..e).unwrap_or(""), e + 2),
                    None => (body, body.len()),
                };
                out.push_str(&regex::escape(lit));
                i += 2 + skip;
                last_repeat = None;
                continue;
            }
            b'\\' => {
                // an escape: the next character, or a braced argument (`\x{41}`, `\p{L}`)
                i += 1;
                let next = p.get(i..).and_then(|r| r.chars().next());
                i += next.map_or(0, char::len_utf8);
                if matches!(next, Some('x' | 'p' | 'P')) && b.get(i) == Some(&b'{') {
                    i = p
                        .get(i..)
                        .and_then(|r| r.find('}'))
                        .map_or(b.len(), |e| i + e + 1);
                }
                if !class {
                    last_repeat = None;
                }
                if let Some(ascii) = next.and_then(|n| re2_escape(n, class)) {
                    out.push_str(ascii);
                    continue;
                }
            }
            b'[' if !class => {
                class = true;
                i += 1;
                // a `]` (after an optional `^`) first in a class is literal
                if b.get(i) == Some(&b'^') {
                    i += 1;
                }
                if b.get(i) == Some(&b']') {
                    i += 1;
                }
                last_repeat = None;
            }
            b'[' if class && b.get(i + 1) == Some(&b':') => {
                // a POSIX class `[:alpha:]` inside a class
                i = p
                    .get(i + 2..)
                    .and_then(|r| r.find(":]"))
                    .map_or(i + 1, |e| i + 2 + e + 2);
            }
            b']' if class => {
                class = false;
                i += 1;
            }
            _ if class => {
                i += p
                    .get(i..)
                    .and_then(|r| r.chars().next())
                    .map_or(1, char::len_utf8);
            }
            b'(' => {
                last_repeat = None;
                if b.get(i + 1) == Some(&b'?') {
                    // `(?` opens a group with flags (its `?` is no repetition), or a
                    // named group
                    match re2_flags(p.get(i..).unwrap_or(""))? {
                        Some((len, group)) => {
                            out.push_str(&group);
                            i += len;
                            continue;
                        }
                        None => i += 2,
                    }
                } else {
                    i += 1;
                }
            }
            b'*' | b'+' | b'?' | b'{' => {
                let len = if c == b'{' {
                    counted_repeat(p.get(i..).unwrap_or(""))
                } else {
                    1
                };
                if len == 0 {
                    // a `{` that starts no repetition is a literal in RE2 (`a{,2}`); the
                    // `regex` crate wants it escaped
                    out.push_str("\\{");
                    i += 1;
                    last_repeat = None;
                    continue;
                }
                i += len;
                // a lazy repetition's `?` belongs to it
                if b.get(i) == Some(&b'?') {
                    i += 1;
                }
                if let Some(first) = last_repeat {
                    let ops = p.get(first..i).unwrap_or("");
                    return Err(format!(
                        "invalid nested repetition operator `{ops}`: RE2 has no possessive or stacked repetition (write one operator, or group the inner repetition: `(?:a+)+`)"
                    ));
                }
                last_repeat = Some(start);
            }
            _ => {
                i += p
                    .get(i..)
                    .and_then(|r| r.chars().next())
                    .map_or(1, char::len_utf8);
                last_repeat = None;
            }
        }
        out.push_str(p.get(start..i.min(p.len())).unwrap_or(""));
    }
    Ok(Cow::Owned(out))
}

/// An escape RE2 reads as ASCII where the `regex` crate's own is Unicode, written for
/// the `regex` crate: a Perl class (`\\d`, `\\w`, `\\s` and their negations) inside a
/// bracketed class (`in_class`) as ranges or a nested class, outside as a class; a word
/// boundary (`\\b`, `\\B`, outside a class) as the crate's ASCII one, `(?-u:\\b)`,
/// which in a `&str` regex still never matches inside a character.
fn re2_escape(escape: char, in_class: bool) -> Option<&'static str> {
    Some(match (escape, in_class) {
        ('b', false) => "(?-u:\\b)",
        ('B', false) => "(?-u:\\B)",
        ('d', false) => "[0-9]",
        ('d', true) => "0-9",
        ('D', _) => "[^0-9]",
        ('w', false) => "[0-9A-Za-z_]",
        ('w', true) => "0-9A-Za-z_",
        ('W', _) => "[^0-9A-Za-z_]",
        ('s', false) => "[\\t\\n\\f\\r ]",
        ('s', true) => "\\t\\n\\f\\r ",
        ('S', _) => "[^\\t\\n\\f\\r ]",
        _ => return None,
    })
}

/// A flag group at the start of `s` (which starts with `(?`) as RE2 reads it: the flags
/// `i`, `m`, `s` and `U`, then after a `-` those it clears (at least one), then `)` (the
/// rest of the group) or `:` (a group of its own); the same flag may be named twice and
/// the cleared win (`(?i-i)` clears `i`). Returns its length and the same group for the
/// `regex` crate (which refuses a flag named twice, and reads `(?)`, which sets nothing,
/// as a missing operand); `None` for a named group (`(?P<name>`, `(?<name>`), which the
/// crate reads as RE2 does.
///
/// # Errors
/// Any other character after `(?` (RE2 has no other flag: `(?u)`, `(?x)`, `(?-u:…)`,
/// nor `(?=`, `(?#`), a `-` clearing nothing or twice, or no end: RE2's "invalid or
/// unsupported Perl syntax", quoting the group up to that character.
fn re2_flags(s: &str) -> Result<Option<(usize, String)>, String> {
    let body = s.get(2..).unwrap_or("");
    if body.starts_with("P<") || body.starts_with('<') {
        return Ok(None);
    }
    let (mut set, mut clear) = (String::new(), String::new());
    let mut clearing = false;
    let mut named = false;
    for (k, c) in body.char_indices() {
        match c {
            'i' | 'm' | 's' | 'U' => {
                let (to, from) = if clearing {
                    (&mut clear, &mut set)
                } else {
                    (&mut set, &mut clear)
                };
                from.retain(|f| f != c);
                if !to.contains(c) {
                    to.push(c);
                }
                named = true;
            }
            '-' if !clearing => {
                clearing = true;
                named = false;
            }
            ':' | ')' if !clearing || named => {
                let dash = if clear.is_empty() { "" } else { "-" };
                let group = if c == ')' && set.is_empty() && clear.is_empty() {
                    String::new()
                } else {
                    format!("(?{set}{dash}{clear}{c}")
                };
                return Ok(Some((2 + k + 1, group)));
            }
            _ => {
                return Err(invalid_perl_syntax(
                    s.get(..2 + k + c.len_utf8()).unwrap_or(s),
                ));
            }
        }
    }
    Err(invalid_perl_syntax(s))
}

/// RE2's refusal of what follows `(?`, in words.
fn invalid_perl_syntax(group: &str) -> String {
    format!(
        "invalid or unsupported Perl syntax `{group}`: RE2 takes only the flags `i`, `m`, `s` and `U` after `(?` (`(?i)`, `(?-s)`, `(?i:…)`), or a group name (`(?P<name>…)`)"
    )
}

/// The length of a counted repetition (`{2}`, `{2,}`, `{2,5}`) at the start of `s`, 0
/// when it starts none.
fn counted_repeat(s: &str) -> usize {
    let Some(body) = s.strip_prefix('{') else {
        return 0;
    };
    let Some(end) = body.find('}') else {
        return 0;
    };
    let inner = body.get(..end).unwrap_or("");
    let (lo, hi) = inner.split_once(',').unwrap_or((inner, "0"));
    let digits = |t: &str| t.bytes().all(|d| d.is_ascii_digit());
    if !lo.is_empty() && digits(lo) && digits(hi) {
        end + 2
    } else {
        0
    }
}

impl Value {
    /// CEL equality (`==`): heterogeneous numbers compare by value, lists and maps
    /// element-wise.
    #[must_use]
    pub fn cel_equals(&self, other: &Value) -> bool {
        equals(self, other)
    }
}

#[cfg(test)]
mod tests {
    use super::{OpError, regex_for};

    #[test]
    fn a_regex_over_the_size_bound_is_refused() {
        // each `\pL` is a large Unicode class: 500 of them compile to well over a
        // megabyte (`\w` is RE2's ASCII class, small)
        match regex_for(&"\\pL".repeat(500)) {
            Err(OpError::InvalidArgument(m)) => {
                assert!(m.contains("more than the limit of 1048576 bytes"), "{m}");
            }
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("compiled"),
        }
        assert!(regex_for(&"\\pL".repeat(5)).is_ok());
        assert!(regex_for(&"\\w".repeat(500)).is_ok());
    }
}
