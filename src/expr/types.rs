//! The type language of conditions; context declarations (the model) are written in it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A CEL type as flowc knows it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Type {
    /// `bool`
    Bool,
    /// `int` (i64)
    Int,
    /// `uint` (u64)
    Uint,
    /// `double`
    Double,
    /// `string`
    String,
    /// `bytes`
    Bytes,
    /// `null_type`
    Null,
    /// `timestamp`
    Timestamp,
    /// `duration`
    Duration,
    /// `list<T>`
    List(Box<Type>),
    /// `map<K, V>`
    Map(Box<Type>, Box<Type>),
    /// A declared `object` with named fields.
    Object(Arc<ObjectType>),
    /// A value whose type is only known at run time.
    Dyn,
    /// A type value (`type(x)`, `int`).
    TypeValue,
}

/// The fields of a declared object type.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ObjectType {
    /// Field name → (type, optional).
    pub fields: BTreeMap<String, FieldType>,
}

/// One field of an object type.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldType {
    /// Its type.
    pub ty: Type,
    /// May be absent.
    pub optional: bool,
}

impl Type {
    /// `list<T>`
    #[must_use]
    pub fn list(t: Type) -> Type {
        Type::List(Box::new(t))
    }

    /// `map<K, V>`
    #[must_use]
    pub fn map(k: Type, v: Type) -> Type {
        Type::Map(Box::new(k), Box::new(v))
    }

    /// True for `int`, `uint` and `double`.
    #[must_use]
    pub fn is_numeric(&self) -> bool {
        matches!(self, Type::Int | Type::Uint | Type::Double)
    }

    /// True when the type is (or contains) `dyn` at the top.
    #[must_use]
    pub fn is_dyn(&self) -> bool {
        matches!(self, Type::Dyn)
    }

    /// Parses a declared type name: `bool`, `list<string>`, `map<string, int>`, ...
    ///
    /// `object` is handled by the caller (it needs `fields`).
    #[must_use]
    pub fn parse(text: &str) -> Option<Type> {
        let t = text.trim();
        if let Some(inner) = t.strip_prefix("list<").and_then(|r| r.strip_suffix('>')) {
            return Type::parse(inner).map(Type::list);
        }
        if let Some(inner) = t.strip_prefix("map<").and_then(|r| r.strip_suffix('>')) {
            // split at the first top-level comma
            let mut depth = 0i32;
            for (i, c) in inner.char_indices() {
                match c {
                    '<' => depth += 1,
                    '>' => depth -= 1,
                    ',' if depth == 0 => {
                        let k = Type::parse(inner.get(..i)?)?;
                        let v = Type::parse(inner.get(i + 1..)?)?;
                        return Some(Type::map(k, v));
                    }
                    _ => {}
                }
            }
            return None;
        }
        Some(match t {
            "bool" => Type::Bool,
            "int" => Type::Int,
            "uint" => Type::Uint,
            "double" => Type::Double,
            "string" => Type::String,
            "bytes" => Type::Bytes,
            "timestamp" => Type::Timestamp,
            "duration" => Type::Duration,
            "dyn" => Type::Dyn,
            "null_type" => Type::Null,
            "type" => Type::TypeValue,
            _ => return None,
        })
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Bool => f.write_str("bool"),
            Type::Int => f.write_str("int"),
            Type::Uint => f.write_str("uint"),
            Type::Double => f.write_str("double"),
            Type::String => f.write_str("string"),
            Type::Bytes => f.write_str("bytes"),
            Type::Null => f.write_str("null"),
            Type::Timestamp => f.write_str("timestamp"),
            Type::Duration => f.write_str("duration"),
            Type::List(t) => write!(f, "list<{t}>"),
            Type::Map(k, v) => write!(f, "map<{k}, {v}>"),
            Type::Object(_) => f.write_str("object"),
            Type::Dyn => f.write_str("dyn"),
            Type::TypeValue => f.write_str("type"),
        }
    }
}
