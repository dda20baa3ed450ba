//! Type checking against the declared context (CEL's checker rules for the subset).

use std::collections::HashMap;

use super::ast::{BinaryOp, Expr, ExprKind, Literal, Macro, UnaryOp};
use super::overload;
use super::{ObjectType, Type};
use crate::diagnostic::did_you_mean;

/// What a checker error is about.
#[derive(Clone, Debug, PartialEq)]
pub enum CheckErrorKind {
    /// A name that is not declared.
    UnknownIdent {
        /// The name.
        name: String,
        /// A close declared name.
        suggestion: Option<String>,
    },
    /// A field an object type does not have.
    UnknownField {
        /// The field.
        name: String,
        /// A close field name.
        suggestion: Option<String>,
    },
    /// No overload of an operator or function for these types.
    NoOverload {
        /// Operator or function.
        op: String,
        /// The operand types, as words.
        args: String,
        /// How to fix it.
        help: String,
    },
    /// A function that does not exist.
    UnknownFunction {
        /// The name.
        name: String,
        /// A close function name.
        suggestion: Option<String>,
    },
    /// Wrong number of arguments.
    ArgCount {
        /// The function.
        name: String,
        /// What it takes.
        expected: &'static str,
    },
    /// A literal pattern that is not a valid regular expression.
    InvalidRegex {
        /// The regex error.
        message: String,
    },
}

/// A checker error at a byte range of the expression.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckError {
    /// What.
    pub kind: CheckErrorKind,
    /// Where (expression bytes).
    pub span: (usize, usize),
}

/// The names visible to an expression.
#[derive(Clone, Debug, Default)]
pub struct Env {
    vars: HashMap<String, Type>,
    /// The `enum` of string fields, by path (`currency`, `applicant.kind`).
    enums: HashMap<String, Vec<String>>,
    /// Variables the context may leave out (`optional: true` without a `default`).
    optional: std::collections::HashSet<String>,
}

impl Env {
    /// An environment with the fields of a context object.
    #[must_use]
    pub fn from_context(ctx: &ObjectType) -> Self {
        Self {
            vars: ctx
                .fields
                .iter()
                .map(|(k, f)| (k.clone(), f.ty.clone()))
                .collect(),
            enums: HashMap::new(),
            optional: ctx
                .fields
                .iter()
                .filter(|(_, f)| f.optional)
                .map(|(k, _)| k.clone())
                .collect(),
        }
    }

    /// Marks a declared variable as one the context may leave out.
    pub fn declare_optional(&mut self, name: &str) {
        self.optional.insert(name.to_owned());
    }

    /// True when the context may leave the variable out.
    #[must_use]
    pub fn is_optional(&self, name: &str) -> bool {
        self.optional.contains(name)
    }

    /// Declares the `enum` of a string field (`applicant.kind`): comparing it with
    /// another string is always false (a warning).
    pub fn declare_enum(&mut self, path: &str, values: Vec<String>) {
        self.enums.insert(path.to_owned(), values);
    }

    /// The `enum` of a string field, when it declares one.
    #[must_use]
    pub fn enum_of(&self, path: &str) -> Option<&[String]> {
        self.enums.get(path).map(Vec::as_slice)
    }

    /// Declares one variable.
    pub fn declare(&mut self, name: &str, ty: Type) {
        self.vars.insert(name.to_owned(), ty);
    }

    /// The type of a variable.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Type> {
        self.vars.get(name)
    }

    /// The declared names, sorted.
    #[must_use]
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.vars.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }
}

/// Are two types compatible for equality and membership (dyn matches anything)?
#[must_use]
pub fn assignable(a: &Type, b: &Type) -> bool {
    match (a, b) {
        (Type::Dyn | Type::Null, _) | (_, Type::Dyn | Type::Null) => true,
        (Type::List(x), Type::List(y)) => assignable(x, y),
        (Type::Map(k1, v1), Type::Map(k2, v2)) => assignable(k1, k2) && assignable(v1, v2),
        (Type::Object(_), Type::Map(k, _)) | (Type::Map(k, _), Type::Object(_)) => {
            assignable(k, &Type::String)
        }
        _ => a == b,
    }
}

/// The common type of two branches or elements: equal types, else `dyn`.
fn join(a: &Type, b: &Type) -> Type {
    if a == b { a.clone() } else { Type::Dyn }
}

fn words(args: &[&Type]) -> String {
    args.iter()
        .map(|t| format!("`{t}`"))
        .collect::<Vec<_>>()
        .join(" and ")
}

/// The type checker.
pub struct Checker<'e> {
    env: &'e Env,
    scopes: Vec<(String, Type)>,
    /// Collected errors.
    pub errors: Vec<CheckError>,
}

impl<'e> Checker<'e> {
    /// A checker over `env`.
    #[must_use]
    pub fn new(env: &'e Env) -> Self {
        Self {
            env,
            scopes: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn error(&mut self, span: (usize, usize), kind: CheckErrorKind) -> Type {
        self.errors.push(CheckError { kind, span });
        Type::Dyn
    }

    fn lookup(&self, name: &str) -> Option<Type> {
        self.scopes
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.clone())
            .or_else(|| self.env.get(name).cloned())
    }

    fn no_overload(
        &mut self,
        span: (usize, usize),
        op: &str,
        args: &[&Type],
        help: String,
    ) -> Type {
        let args = words(args);
        self.error(
            span,
            CheckErrorKind::NoOverload {
                op: op.to_owned(),
                args,
                help,
            },
        )
    }

    /// Flattens `a.b.c` into a dotted name when the root is an identifier.
    fn dotted_name(e: &Expr) -> Option<String> {
        match &e.kind {
            ExprKind::Ident(n) => Some(n.clone()),
            ExprKind::Select(inner, f) => Some(format!("{}.{f}", Self::dotted_name(inner)?)),
            _ => None,
        }
    }

    /// Checks an expression, setting `ty` on every node; returns its type.
    pub fn check(&mut self, e: &mut Expr) -> Type {
        let ty = self.infer(e);
        e.ty = ty.clone();
        ty
    }

    #[expect(
        clippy::too_many_lines,
        reason = "one match over the grammar, kept together"
    )]
    fn infer(&mut self, e: &mut Expr) -> Type {
        let span = e.span;
        // qualified names declared with dots (`a.b.c`) win over field selection
        if matches!(e.kind, ExprKind::Select(..))
            && let Some(name) = Self::dotted_name(e)
            && self
                .scopes
                .iter()
                .all(|(n, _)| !name.starts_with(&format!("{n}.")))
            && let Some(t) = self.env.get(&name)
        {
            e.kind = ExprKind::Ident(name);
            return t.clone();
        }
        match &mut e.kind {
            ExprKind::Lit(l) => match l {
                Literal::Bool(_) => Type::Bool,
                Literal::Int(_) => Type::Int,
                Literal::Uint(_) => Type::Uint,
                Literal::Double(_) => Type::Double,
                Literal::String(_) => Type::String,
                Literal::Bytes(_) => Type::Bytes,
                Literal::Null => Type::Null,
            },
            ExprKind::Ident(name) => {
                if let Some(t) = self.lookup(name) {
                    return t;
                }
                let name = name.clone();
                let mut names: Vec<String> =
                    self.env.names().into_iter().map(str::to_owned).collect();
                names.extend(self.scopes.iter().map(|(n, _)| n.clone()));
                let suggestion = did_you_mean(&name, names.iter().map(String::as_str));
                self.error(span, CheckErrorKind::UnknownIdent { name, suggestion })
            }
            ExprKind::Select(inner, field) => {
                let t = self.check(inner);
                let field = field.clone();
                match t {
                    Type::Object(o) => {
                        if let Some(f) = o.fields.get(&field) {
                            f.ty.clone()
                        } else {
                            let suggestion =
                                did_you_mean(&field, o.fields.keys().map(String::as_str));
                            self.error(
                                span,
                                CheckErrorKind::UnknownField {
                                    name: field,
                                    suggestion,
                                },
                            )
                        }
                    }
                    Type::Map(k, v) if assignable(&k, &Type::String) => *v,
                    Type::Dyn => Type::Dyn,
                    other => self.no_overload(
                        span,
                        &format!(".{field}"),
                        &[&other],
                        "fields can be selected only on objects and maps".to_owned(),
                    ),
                }
            }
            ExprKind::HasVar(name) => {
                if self.scopes.iter().any(|(n, _)| n == name) {
                    let name = name.clone();
                    return self.no_overload(
                        span,
                        "has",
                        &[&Type::Dyn],
                        format!(
                            "`{name}` is a comprehension variable, always present; `has` tests a context variable or a field"
                        ),
                    );
                }
                if self.env.get(name).is_none() {
                    let name = name.clone();
                    let names: Vec<String> =
                        self.env.names().into_iter().map(str::to_owned).collect();
                    let suggestion = did_you_mean(&name, names.iter().map(String::as_str));
                    return self.error(span, CheckErrorKind::UnknownIdent { name, suggestion });
                }
                Type::Bool
            }
            ExprKind::Has(inner, field) => {
                let t = self.check(inner);
                let field = field.clone();
                match t {
                    Type::Object(o) => {
                        if !o.fields.contains_key(&field) {
                            let suggestion =
                                did_you_mean(&field, o.fields.keys().map(String::as_str));
                            self.error(
                                span,
                                CheckErrorKind::UnknownField {
                                    name: field,
                                    suggestion,
                                },
                            );
                        }
                        Type::Bool
                    }
                    Type::Map(..) | Type::Dyn => Type::Bool,
                    other => self.no_overload(
                        span,
                        "has",
                        &[&other],
                        "`has` tests a field of an object or a key of a map".to_owned(),
                    ),
                }
            }
            ExprKind::Index(a, i) => {
                let ta = self.check(a);
                let ti = self.check(i);
                match (&ta, &ti) {
                    (Type::List(t), Type::Int | Type::Uint | Type::Dyn) => (**t).clone(),
                    (Type::Map(k, v), _) if assignable(k, &ti) => (**v).clone(),
                    (Type::Object(_), Type::String | Type::Dyn) | (Type::Dyn, _) => Type::Dyn,
                    _ => self.no_overload(
                        span,
                        "[]",
                        &[&ta, &ti],
                        "index a list with an int, a map with its key type".to_owned(),
                    ),
                }
            }
            ExprKind::List(items) => {
                let mut t: Option<Type> = None;
                for it in items.iter_mut() {
                    let ti = self.check(it);
                    t = Some(match t {
                        None => ti,
                        Some(prev) => join(&prev, &ti),
                    });
                }
                Type::list(t.unwrap_or(Type::Dyn))
            }
            ExprKind::Map(entries) => {
                let mut kt: Option<Type> = None;
                let mut vt: Option<Type> = None;
                for (k, v) in entries.iter_mut() {
                    let tk = self.check(k);
                    if !matches!(
                        tk,
                        Type::String | Type::Int | Type::Uint | Type::Bool | Type::Dyn
                    ) {
                        self.no_overload(
                            k.span,
                            "map key",
                            &[&tk],
                            "map keys are strings, ints, uints or bools".to_owned(),
                        );
                    }
                    let tv = self.check(v);
                    kt = Some(kt.map_or(tk.clone(), |p| join(&p, &tk)));
                    vt = Some(vt.map_or(tv.clone(), |p| join(&p, &tv)));
                }
                Type::map(kt.unwrap_or(Type::Dyn), vt.unwrap_or(Type::Dyn))
            }
            ExprKind::Unary(op, a) => {
                let op = *op;
                let t = self.check(a);
                match (op, &t) {
                    (UnaryOp::Not, Type::Bool | Type::Dyn) => Type::Bool,
                    (UnaryOp::Neg, Type::Int | Type::Double | Type::Duration | Type::Dyn) => t,
                    _ => self.no_overload(
                        span,
                        if op == UnaryOp::Not { "!" } else { "-" },
                        &[&t],
                        if op == UnaryOp::Not {
                            "`!` negates a bool".to_owned()
                        } else {
                            "`-` negates an int, double or duration (uint has no negation)"
                                .to_owned()
                        },
                    ),
                }
            }
            ExprKind::Cond(c, a, b) => {
                let tc = self.check(c);
                if !matches!(tc, Type::Bool | Type::Dyn) {
                    self.no_overload(
                        c.span,
                        "?:",
                        &[&tc],
                        "the condition of `?:` must be a bool".to_owned(),
                    );
                }
                let ta = self.check(a);
                let tb = self.check(b);
                if assignable(&ta, &tb) {
                    if ta == Type::Dyn || ta == Type::Null {
                        tb
                    } else {
                        ta
                    }
                } else {
                    self.no_overload(
                        span,
                        "?:",
                        &[&ta, &tb],
                        "both branches of `?:` must have the same type (wrap one in `dyn()` to mix)".to_owned(),
                    )
                }
            }
            ExprKind::Binary(op, a, b) => {
                let op = *op;
                let (ta, tb) = (self.check(a), self.check(b));
                let lit_a = matches!(a.kind, ExprKind::Lit(_));
                let lit_b = matches!(b.kind, ExprKind::Lit(_));
                let a_text = Self::dotted_name(a).or_else(|| int_literal(a));
                let b_text = Self::dotted_name(b).or_else(|| int_literal(b));
                self.binary(span, op, &ta, &tb, &(lit_a, a_text), &(lit_b, b_text))
            }
            ExprKind::Comprehension {
                kind,
                range,
                var,
                body,
                filter,
            } => {
                let kind = *kind;
                let tr = self.check(range);
                let elem = match &tr {
                    Type::List(t) => (**t).clone(),
                    Type::Map(k, _) => (**k).clone(),
                    Type::Dyn => Type::Dyn,
                    other => {
                        let other = other.clone();
                        self.no_overload(
                            range.span,
                            "comprehension",
                            &[&other],
                            "macros iterate over a list or a map".to_owned(),
                        )
                    }
                };
                self.scopes.push((var.clone(), elem.clone()));
                if let Some(f) = filter {
                    let tf = self.check(f);
                    if !matches!(tf, Type::Bool | Type::Dyn) {
                        self.no_overload(
                            f.span,
                            "map filter",
                            &[&tf],
                            "the filter must be a bool".to_owned(),
                        );
                    }
                }
                let tb = self.check(body);
                self.scopes.pop();
                match kind {
                    Macro::All | Macro::Exists | Macro::ExistsOne => {
                        if !matches!(tb, Type::Bool | Type::Dyn) {
                            self.no_overload(
                                body.span,
                                "predicate",
                                &[&tb],
                                "the predicate of a macro must be a bool".to_owned(),
                            );
                        }
                        Type::Bool
                    }
                    Macro::Map => Type::list(tb),
                    Macro::Filter => {
                        if !matches!(tb, Type::Bool | Type::Dyn) {
                            self.no_overload(
                                body.span,
                                "filter",
                                &[&tb],
                                "the predicate of `filter` must be a bool".to_owned(),
                            );
                        }
                        Type::list(elem)
                    }
                }
            }
            ExprKind::Call { target, name, args } => {
                let name = name.clone();
                let tt = target.as_mut().map(|t| self.check(t));
                let targs: Vec<Type> = args.iter_mut().map(|a| self.check(a)).collect();
                let pattern = match (name.as_str(), args.last()) {
                    (
                        "matches",
                        Some(Expr {
                            kind: ExprKind::Lit(Literal::String(p)),
                            ..
                        }),
                    ) => Some(p.clone()),
                    _ => None,
                };
                if let Some(p) = pattern
                    && let Err(message) = super::value::compiled_regex(&p)
                {
                    let s = args.last().map_or(span, |a| a.span);
                    self.error(s, CheckErrorKind::InvalidRegex { message });
                }
                self.call(span, &name, tt.as_ref(), &targs)
            }
        }
    }

    /// Types a binary operator: `&&`, `||`, the orderings and arithmetic on known types
    /// from the overload table; `==`, `!=` and `in` by assignability; `dyn` operands by
    /// CEL's rules for values typed at run time.
    fn binary(
        &mut self,
        span: (usize, usize),
        op: BinaryOp,
        ta: &Type,
        tb: &Type,
        a: &(bool, Option<String>),
        b: &(bool, Option<String>),
    ) -> Type {
        use Type::{Bool, Dyn, List};
        let sym = op.symbol();
        let either_dyn = *ta == Dyn || *tb == Dyn;
        let ok = match op {
            // `dyn` fits the table's `bool` parameters
            BinaryOp::And | BinaryOp::Or => overload::operator(op, ta, tb).is_some(),
            BinaryOp::Eq | BinaryOp::Ne => assignable(ta, tb),
            // any ordering with a `dyn` side is decided at run time
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
                either_dyn || overload::operator(op, ta, tb).is_some()
            }
            BinaryOp::In => match tb {
                List(t) => assignable(ta, t),
                Type::Map(k, _) => assignable(ta, k),
                Dyn => true,
                _ => false,
            },
            _ => false,
        };
        if ok {
            return Bool;
        }
        if matches!(
            op,
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem
        ) {
            let r = if either_dyn {
                // CEL's checker with one side unknown: numbers keep the other side's
                // type; `+`/`-` may also be time or concatenation, so the result is `dyn`
                match (op, ta, tb) {
                    (_, Dyn, Dyn) => Some(Dyn),
                    (_, Dyn, t) | (_, t, Dyn) if t.is_numeric() => Some(t.clone()),
                    (BinaryOp::Add | BinaryOp::Sub, _, _) => Some(Dyn),
                    _ => None,
                }
            } else {
                overload::operator(op, ta, tb).map(|o| match (o.result, ta, tb) {
                    (overload::P::List, List(x), List(y)) => Type::list(join(x, y)),
                    (p, _, _) => p.ty(),
                })
            };
            if let Some(r) = r {
                return r;
            }
        }
        let help = numeric_help(op, ta, tb, a, b);
        self.no_overload(span, sym, &[ta, tb], help)
    }

    fn call(
        &mut self,
        span: (usize, usize),
        name: &str,
        target: Option<&Type>,
        args: &[Type],
    ) -> Type {
        let all: Vec<Type> = target.into_iter().chain(args.iter()).cloned().collect();
        let resolved = overload::resolve(name, &all);
        match resolved {
            overload::Resolved::Found { .. } => resolved.result(&all),
            overload::Resolved::Arity(func) => self.error(
                span,
                CheckErrorKind::ArgCount {
                    name: name.to_owned(),
                    expected: func.arity_words(),
                },
            ),
            overload::Resolved::NoMatch(_) => {
                let refs: Vec<&Type> = all.iter().collect();
                let help = format!("`{name}` is not defined for {}", words(&refs));
                self.no_overload(span, name, &refs, help)
            }
            overload::Resolved::Unknown => {
                let suggestion = did_you_mean(name, function_names());
                self.error(
                    span,
                    CheckErrorKind::UnknownFunction {
                        name: name.to_owned(),
                        suggestion,
                    },
                )
            }
        }
    }
}

/// Every name a call can have: the table's functions, `has` and the macros (what
/// `unknown-function` suggests from and lists).
pub(crate) fn function_names() -> impl Iterator<Item = &'static str> {
    overload::FUNCS
        .iter()
        .map(|f| f.name())
        .chain(std::iter::once("has"))
        .chain(Macro::ALL.into_iter().map(Macro::name))
}

/// The text of an integer literal (`100` of `100` or `100u`), for "write `100.0`".
fn int_literal(e: &Expr) -> Option<String> {
    match e.kind {
        ExprKind::Lit(Literal::Int(i)) => Some(i.to_string()),
        ExprKind::Lit(Literal::Uint(u)) => Some(u.to_string()),
        _ => None,
    }
}

fn numeric_help(
    op: BinaryOp,
    ta: &Type,
    tb: &Type,
    a: &(bool, Option<String>),
    b: &(bool, Option<String>),
) -> String {
    let fix = |lit: bool, name: &Option<String>, want: &Type| -> String {
        match (lit, name, want) {
            (true, _, Type::Double) => "write the number with a decimal point (`1.0`)".to_owned(),
            (_, Some(n), t) => format!("convert with `{t}({n})`"),
            (_, None, t) => format!("convert with `{t}(...)`"),
        }
    };
    if ta.is_numeric() && tb.is_numeric() && ta != tb {
        if matches!(op, BinaryOp::Eq | BinaryOp::Ne) {
            // `amount == 100` on a double: the literal wants a decimal point
            return match (ta, tb, a, b) {
                (Type::Double, _, (_, Some(field)), (true, Some(n)))
                | (_, Type::Double, (true, Some(n)), (_, Some(field))) => {
                    format!("`{field}` is a `double`: write `{n}.0`")
                }
                (Type::Double, _, _, (false, name)) | (_, Type::Double, (false, name), _) => {
                    fix(false, name, &Type::Double)
                }
                _ => "compare values of the same type".to_owned(),
            };
        }
        if op.is_ordering() {
            return "compare values of the same type".to_owned();
        }
        // CEL never converts numbers implicitly
        return match (ta, tb) {
            (Type::Int | Type::Uint, Type::Double) => fix(a.0, &a.1, &Type::Double),
            (Type::Double, Type::Int | Type::Uint) => fix(b.0, &b.1, &Type::Double),
            (Type::Int, Type::Uint) => fix(b.0, &b.1, &Type::Int),
            _ => fix(a.0, &a.1, &Type::Int),
        } + " (CEL does not mix number types in arithmetic)";
    }
    match op {
        BinaryOp::And | BinaryOp::Or => format!(
            "`{}` joins two bools; compare the value first (`x > 0`)",
            op.symbol()
        ),
        BinaryOp::In => {
            "`in` tests membership in a list or map of the same element type".to_owned()
        }
        BinaryOp::Eq | BinaryOp::Ne => "compare values of the same type".to_owned(),
        _ => format!("`{}` is not defined for `{ta}` and `{tb}`", op.symbol()),
    }
}
