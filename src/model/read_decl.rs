//! Reading context declarations: a type name or a map with `type` and what that type
//! takes, nested to any depth; every `default` and `enum` value is fitted
//! ([`super::decl::fit`]) and what does not fit is reported where it is.

use std::sync::Arc;

use super::decl::{self, Declared, FieldDecl, FieldPath, Misfit, MisfitKind, Parts, PathPart, fit};
use super::{Builder, ModelError, spanned_str};
use crate::expr::{FieldType, ObjectType, Type};
use crate::load::{Node, Resolved};
use crate::span::Span;

/// How to declare a list of objects (the help of several errors).
const LIST_OF_OBJECTS: &str = "declare a list of objects as `{ type: list, items: { type: object, fields: { ... } } }` and a map of objects as `{ type: map, values: { type: object, fields: { ... } } }`";

/// The YAML node a path inside a value points at (the deepest that exists).
fn node_at<'n>(node: &'n Node, path: &FieldPath) -> &'n Node {
    let mut cur = node;
    for p in &path.0 {
        let next = match p {
            PathPart::Field(k) | PathPart::Key(k) => cur.get(k),
            PathPart::Index(i) => cur.as_seq().and_then(|s| s.get(*i)),
        };
        match next {
            Some(n) => cur = n,
            None => break,
        }
    }
    cur
}

/// The first name in a written type that is not a type (`list<strng>` → `strng`).
fn unknown_leaf(text: &str) -> &str {
    let t = text.trim();
    for prefix in ["list<", "map<"] {
        if let Some(inner) = t.strip_prefix(prefix).and_then(|r| r.strip_suffix('>')) {
            let mut depth = 0i32;
            let mut parts = Vec::new();
            let mut start = 0;
            for (i, c) in inner.char_indices() {
                match c {
                    '<' => depth += 1,
                    '>' => depth -= 1,
                    ',' if depth == 0 => {
                        parts.push(inner.get(start..i).unwrap_or_default());
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            parts.push(inner.get(start..).unwrap_or_default());
            return parts
                .into_iter()
                .find(|p| Type::parse(p).is_none())
                .map_or(t, unknown_leaf);
        }
    }
    t
}

impl Builder<'_> {
    /// A field declaration: its type and, when written as a map, `optional`, `default`
    /// and `enum`.
    pub(super) fn field(&mut self, name: &Node, node: &Node) -> FieldDecl {
        // a reserved word names no field, at any depth: CEL reads none as a name, so
        // `applicant.null` is a syntax error wherever it is written
        if let Some(word) = name.as_str()
            && crate::expr::parse::is_reserved(word)
        {
            self.errors.push(ModelError::ReservedName {
                name: word.to_owned(),
                words: crate::expr::parse::RESERVED_WORDS
                    .map(|w| format!("`{w}`"))
                    .join(", "),
                span: name.span,
            });
        }
        let before = self.errors.len();
        let decl = self.declared(node);
        let obj = node.as_map().map(|_| node);
        let optional = obj
            .and_then(|o| o.get("optional"))
            .and_then(Node::as_scalar)
            .is_some_and(|s| s.resolve() == Resolved::Bool(true));
        let default_node = obj.and_then(|o| o.get("default"));
        let default = default_node.map(Node::to_json);
        // a declaration already in error would only repeat itself through its default
        if let (Some(d), Some(json)) = (default_node, &default)
            && self.errors.len() == before
            && let Err(m) = fit(&decl, json, &FieldPath::default())
        {
            self.misfit("default", d, &m);
        }
        let name = spanned_str(name);
        FieldDecl {
            key: Arc::from(name.value.as_str()),
            name,
            decl,
            optional,
            default,
            span: node.span,
        }
    }

    /// A declaration of a value: a type name, or a map with `type` and what that type
    /// takes (`fields`, `items`, `values`, `enum`).
    #[expect(clippy::too_many_lines, reason = "one arm per kind of declaration")]
    fn declared(&mut self, node: &Node) -> Declared {
        let (ty_node, obj) = match node.as_map() {
            Some(_) => (node.get("type"), Some(node)),
            None => (Some(node), None),
        };
        let ty_text = ty_node.and_then(Node::as_str).unwrap_or_default().trim();
        let ty_span = ty_node.map_or(node.span, |n| n.span);
        let key = |k: &str| obj.and_then(|o| o.get(k));
        let misplaced = |this: &mut Self, k: &str, takes: &str| {
            if let Some(n) = key(k) {
                this.errors.push(ModelError::ElementType {
                    message: format!("`{k}` given for type `{ty_text}`"),
                    span: n.span,
                    help: format!("only `type: {takes}` takes `{k}`"),
                });
            }
        };
        let dyn_decl = Declared {
            ty: Type::Dyn,
            allowed: None,
            parts: Parts::None,
        };
        let (ty, parts) = match ty_text {
            "object" => {
                misplaced(self, "items", "list");
                misplaced(self, "values", "map");
                let Some(entries) = key("fields").and_then(Node::as_map) else {
                    self.errors.push(ModelError::ObjectFields {
                        message: "`object` needs `fields`".to_owned(),
                        span: ty_span,
                    });
                    return dyn_decl;
                };
                let fields: Vec<FieldDecl> =
                    entries.iter().map(|(k, v)| self.field(k, v)).collect();
                let object = ObjectType {
                    fields: fields
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
                };
                (Type::Object(Arc::new(object)), Parts::Fields(fields))
            }
            "list" | "map" => {
                let (own, other, other_type) = if ty_text == "list" {
                    ("items", "values", "map")
                } else {
                    ("values", "items", "list")
                };
                misplaced(self, other, other_type);
                if let Some(f) = key("fields") {
                    self.errors.push(ModelError::ObjectFields {
                        message: format!("`fields` given for type `{ty_text}`"),
                        span: f.span,
                    });
                }
                let Some(inner) = key(own) else {
                    self.errors.push(ModelError::ElementType {
                        message: format!("`{ty_text}` needs `{own}`"),
                        span: ty_span,
                        help: format!(
                            "give the element type in the name (`list<string>`, `map<string, int>`), or declare it under `{own}:`; {LIST_OF_OBJECTS}"
                        ),
                    });
                    return dyn_decl;
                };
                for k in ["optional", "default"] {
                    if let Some(n) = inner.get(k) {
                        self.errors.push(ModelError::ElementType {
                            message: format!("`{k}` has no meaning under `{own}`"),
                            span: n.span,
                            help: format!(
                                "every {} is present; declare `{k}` on the `{ty_text}` field itself or on the fields of an object {}",
                                if own == "items" { "item of a list" } else { "value of a map" },
                                if own == "items" { "item" } else { "value" },
                            ),
                        });
                    }
                }
                let element = self.declared(inner);
                if ty_text == "list" {
                    (
                        Type::list(element.ty.clone()),
                        Parts::Items(Box::new(element)),
                    )
                } else {
                    (
                        Type::map(Type::String, element.ty.clone()),
                        Parts::Values(Box::new(element)),
                    )
                }
            }
            _ => {
                if let Some(f) = key("fields") {
                    self.errors.push(ModelError::ObjectFields {
                        message: format!("`fields` given for type `{ty_text}`"),
                        span: f.span,
                    });
                }
                for (k, takes) in [("items", "list"), ("values", "map")] {
                    if let Some(n) = key(k) {
                        let help = if ty_text.starts_with(takes) {
                            format!(
                                "write `type: {takes}` and declare the element under `{k}:`, or give it in the name without `{k}`"
                            )
                        } else {
                            format!("only `type: {takes}` takes `{k}`")
                        };
                        self.errors.push(ModelError::ElementType {
                            message: format!("`{k}` given for type `{ty_text}`"),
                            span: n.span,
                            help,
                        });
                    }
                }
                let Some(ty) = self.type_name(ty_text, ty_span) else {
                    return dyn_decl;
                };
                let parts = Declared::of(&ty).parts;
                (ty, parts)
            }
        };
        let mut decl = Declared {
            ty,
            allowed: None,
            parts,
        };
        if let Some(items) = key("enum").and_then(Node::as_seq) {
            for it in items {
                if let Err(m) = decl::fit_member(&decl, &it.to_json()) {
                    self.misfit("enum value", it, &m);
                }
            }
            decl.allowed = Some(items.iter().map(Node::to_json).collect());
        }
        decl
    }

    /// A type written as a name (`double`, `list<string>`).
    fn type_name(&mut self, ty_text: &str, ty_span: Span) -> Option<Type> {
        match Type::parse(ty_text) {
            Some(Type::Map(k, _)) if *k != Type::String => {
                self.errors.push(ModelError::MapKey {
                    key: k.to_string(),
                    span: ty_span,
                });
                None
            }
            Some(t @ (Type::Dyn | Type::Null | Type::TypeValue | Type::Bytes)) => {
                self.errors.push(ModelError::UnknownType {
                    name: ty_text.to_owned(),
                    span: ty_span,
                    help: format!("`{t}` cannot be declared in a context; use a concrete type"),
                });
                None
            }
            Some(t) => Some(t),
            None => {
                let leaf = unknown_leaf(ty_text);
                let nested = leaf != ty_text;
                // the one close spelling of the type (`dobule` → `double`): conditions
                // that use the field are still type-checked against it
                let mut recovered = None;
                let help = if matches!(leaf, "object" | "list" | "map") && nested {
                    LIST_OF_OBJECTS.to_owned()
                } else {
                    let known = [
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
                    let base = leaf.split('<').next().unwrap_or(leaf);
                    let suggestion =
                        crate::diagnostic::did_you_mean(base, known).filter(|s| *s != base);
                    recovered = suggestion
                        .as_deref()
                        .and_then(|s| Type::parse(&ty_text.replacen(base, s, 1)))
                        .filter(|t| !matches!(t, Type::Dyn | Type::Null | Type::TypeValue));
                    crate::diagnostic::suggestion_help(
                        suggestion.as_deref(),
                        "use bool, int, uint, double, string, timestamp, duration, list<T>, map<string, T> or object (with `fields`)",
                    )
                };
                self.errors.push(ModelError::UnknownType {
                    name: ty_text.to_owned(),
                    span: ty_span,
                    help,
                });
                recovered
            }
        }
    }

    /// Reports a default or enum value that does not fit its declaration, at the part
    /// of the value that does not.
    fn misfit(&mut self, what: &'static str, node: &Node, m: &Misfit) {
        let at_node = node_at(node, &m.path);
        let at = if m.path.0.is_empty() {
            String::new()
        } else {
            format!(" at `{}`", m.path)
        };
        let field = || {
            m.path.0.last().map_or_else(String::new, |p| match p {
                PathPart::Field(k) | PathPart::Key(k) => k.clone(),
                PathPart::Index(i) => i.to_string(),
            })
        };
        let value = || match at_node.as_scalar() {
            // a double JSON cannot hold (`.inf`, `.nan`, `1e400`) is quoted as written
            Some(s) if matches!(s.resolve(), Resolved::Float(f) if !f.is_finite()) => {
                crate::diagnostic::excerpt(&s.value)
            }
            _ => crate::diagnostic::value_text(&at_node.to_json()),
        };
        let e = match &m.kind {
            MisfitKind::WrongType { expected, .. } => ModelError::ValueType {
                what,
                value: value(),
                at,
                ty: expected.clone(),
                span: at_node.span,
            },
            MisfitKind::NotAllowed { allowed, .. } => ModelError::NotInEnum {
                what,
                value: value(),
                at,
                allowed: allowed.clone(),
                span: at_node.span,
            },
            MisfitKind::Unknown { declared } => {
                let name = field();
                // the key itself, not its value
                let span = node_at(
                    node,
                    &FieldPath(
                        m.path
                            .0
                            .iter()
                            .take(m.path.0.len().saturating_sub(1))
                            .cloned()
                            .collect(),
                    ),
                )
                .get_entry(&name)
                .map_or(at_node.span, |(k, _)| k.span);
                ModelError::UndeclaredField {
                    what,
                    field: m.path.to_string(),
                    span,
                    help: crate::diagnostic::suggestion_help(
                        crate::diagnostic::did_you_mean(&name, declared.iter().map(String::as_str))
                            .as_deref(),
                        &format!("declared fields: {}", declared.join(", ")),
                    ),
                }
            }
            MisfitKind::Missing { expected } => ModelError::MissingField {
                what,
                field: m.path.to_string(),
                expected: expected.clone(),
                span: at_node.span,
            },
        };
        self.errors.push(e);
    }
}
