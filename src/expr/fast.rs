//! A direct evaluator for conditions that cannot loop or allocate.
//!
//! Rhai spends about 100 ns per call before it evaluates anything, plus about 100 ns per
//! native call; a comparison of two context fields needs neither. Conditions built only
//! from typed scalar comparisons, checked arithmetic, boolean logic, `in` over a literal
//! list, field access, `size`, `has` and the string predicates are evaluated here over
//! the same [`value`](super::value) operations that the sandbox's natives use, so both
//! paths share one definition of CEL semantics (a differential test holds them equal).
//!
//! The sandbox guarantees hold by construction: the tree is finite and has no loops or
//! calls (its size is bounded by the parser's length and depth limits), nothing is
//! allocated on success, and there is no way to reach I/O. Everything else runs in Rhai.

use std::sync::Arc;

use super::RunError;
use super::Type;
use super::VarTable;
use super::ast::{BinaryOp, Expr, ExprKind, Literal, UnaryOp};
use super::value::{self, OpError, Value};

/// A compiled fast-path expression.
#[derive(Debug, Clone)]
pub enum Fast {
    /// A constant.
    Lit(Value),
    /// A context variable by slot, with its name for errors.
    Var(usize, Arc<str>),
    /// `a.f` on an object or string-keyed map.
    Field(Box<Fast>, Arc<str>),
    /// `has(a.f)`
    Has(Box<Fast>, Arc<str>),
    /// `!a`
    Not(Box<Fast>),
    /// `-a`
    Neg(Box<Fast>),
    /// `a && b` (commutative over errors)
    And(Box<Fast>, Box<Fast>),
    /// `a || b` (commutative over errors)
    Or(Box<Fast>, Box<Fast>),
    /// `c ? a : b`
    Cond(Box<Fast>, Box<Fast>, Box<Fast>),
    /// `==` / `!=`
    Eq(bool, Box<Fast>, Box<Fast>),
    /// `<`, `<=`, `>`, `>=`
    Rel(&'static str, Box<Fast>, Box<Fast>),
    /// Numeric, timestamp and duration arithmetic.
    Arith(&'static str, Box<Fast>, Box<Fast>),
    /// `a in [literals]`
    InList(Box<Fast>, Vec<Value>),
    /// `size(a)`
    Size(Box<Fast>),
    /// `startsWith`, `endsWith`, `contains`
    StrFn(&'static str, Box<Fast>, Box<Fast>),
    /// `matches` with a literal pattern, compiled once.
    Matches(Box<Fast>, Arc<regex::Regex>),
    /// `int`, `uint`, `double` between numbers.
    Convert(&'static str, Box<Fast>),
}

enum Out<'a> {
    Ref(&'a Value),
    Own(Value),
}

impl Out<'_> {
    fn get(&self) -> &Value {
        match self {
            Out::Ref(v) => v,
            Out::Own(v) => v,
        }
    }
}

fn scalar(t: &Type) -> bool {
    matches!(
        t,
        Type::Bool
            | Type::Int
            | Type::Uint
            | Type::Double
            | Type::String
            | Type::Null
            | Type::Timestamp
            | Type::Duration
    )
}

#[expect(
    clippy::match_same_arms,
    reason = "one arm per CEL overload, as the spec lists them"
)]
fn arith_ok(op: BinaryOp, a: &Type, b: &Type) -> bool {
    use Type::{Double, Duration, Int, Timestamp, Uint};
    match (op, a, b) {
        (BinaryOp::Rem, Double, Double) => false,
        (_, Int, Int) | (_, Uint, Uint) | (_, Double, Double) => true,
        (BinaryOp::Add, Timestamp, Duration) | (BinaryOp::Add, Duration, Timestamp) => true,
        (BinaryOp::Sub, Timestamp, Duration | Timestamp) => true,
        (BinaryOp::Add | BinaryOp::Sub, Duration, Duration) => true,
        _ => false,
    }
}

#[expect(
    clippy::unnecessary_box_returns,
    reason = "builds the boxed children of tree nodes"
)]
fn bx(f: Fast) -> Box<Fast> {
    Box::new(f)
}

/// Builds the fast form of a checked expression, or `None` when any part of it needs
/// the Rhai sandbox.
#[must_use]
#[expect(clippy::too_many_lines, reason = "one match over the expression kinds")]
pub fn build(e: &Expr, vars: &VarTable) -> Option<Fast> {
    Some(match &e.kind {
        ExprKind::Lit(l) => Fast::Lit(match l {
            Literal::Bool(b) => Value::Bool(*b),
            Literal::Int(i) => Value::Int(*i),
            Literal::Uint(u) => Value::Uint(*u),
            Literal::Double(d) => Value::Double(*d),
            Literal::String(s) => Value::string(s),
            Literal::Null => Value::Null,
            Literal::Bytes(_) => return None,
        }),
        ExprKind::Ident(n) => Fast::Var(vars.index(n)?, Arc::from(n.as_str())),
        ExprKind::Select(a, f) if matches!(a.ty, Type::Object(_) | Type::Map(..)) => {
            Fast::Field(bx(build(a, vars)?), Arc::from(f.as_str()))
        }
        ExprKind::Has(a, f) if matches!(a.ty, Type::Object(_) | Type::Map(..)) => {
            Fast::Has(bx(build(a, vars)?), Arc::from(f.as_str()))
        }
        ExprKind::Unary(UnaryOp::Not, a) if a.ty == Type::Bool => Fast::Not(bx(build(a, vars)?)),
        ExprKind::Unary(UnaryOp::Neg, a)
            if matches!(a.ty, Type::Int | Type::Double | Type::Duration) =>
        {
            Fast::Neg(bx(build(a, vars)?))
        }
        ExprKind::Cond(c, a, b) if c.ty == Type::Bool => Fast::Cond(
            bx(build(c, vars)?),
            bx(build(a, vars)?),
            bx(build(b, vars)?),
        ),
        ExprKind::Binary(op, a, b) => {
            let (fa, fb) = (|| build(a, vars), || build(b, vars));
            match op {
                BinaryOp::And | BinaryOp::Or if a.ty == Type::Bool && b.ty == Type::Bool => {
                    if *op == BinaryOp::And {
                        Fast::And(bx(fa()?), bx(fb()?))
                    } else {
                        Fast::Or(bx(fa()?), bx(fb()?))
                    }
                }
                BinaryOp::Eq | BinaryOp::Ne if scalar(&a.ty) && scalar(&b.ty) => {
                    Fast::Eq(*op == BinaryOp::Eq, bx(fa()?), bx(fb()?))
                }
                BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge
                    if scalar(&a.ty)
                        && scalar(&b.ty)
                        && a.ty != Type::Null
                        && b.ty != Type::Null =>
                {
                    Fast::Rel(op.symbol(), bx(fa()?), bx(fb()?))
                }
                BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem
                    if arith_ok(*op, &a.ty, &b.ty) =>
                {
                    Fast::Arith(op.symbol(), bx(fa()?), bx(fb()?))
                }
                BinaryOp::In if scalar(&a.ty) => {
                    let ExprKind::List(items) = &b.kind else {
                        return None;
                    };
                    let mut lits = Vec::with_capacity(items.len());
                    for i in items {
                        match build(i, vars)? {
                            Fast::Lit(v) => lits.push(v),
                            _ => return None,
                        }
                    }
                    Fast::InList(bx(fa()?), lits)
                }
                _ => return None,
            }
        }
        ExprKind::Call { target, name, args } => {
            let all: Vec<&Expr> = target.iter().map(|t| &**t).chain(args.iter()).collect();
            match (name.as_str(), all.as_slice()) {
                ("size", [a]) if matches!(a.ty, Type::String | Type::List(_) | Type::Map(..)) => {
                    Fast::Size(bx(build(a, vars)?))
                }
                (f @ ("startsWith" | "endsWith" | "contains"), [a, b])
                    if a.ty == Type::String && b.ty == Type::String =>
                {
                    let f = match f {
                        "startsWith" => "startsWith",
                        "endsWith" => "endsWith",
                        _ => "contains",
                    };
                    Fast::StrFn(f, bx(build(a, vars)?), bx(build(b, vars)?))
                }
                (
                    "matches",
                    [
                        a,
                        Expr {
                            kind: ExprKind::Lit(Literal::String(p)),
                            ..
                        },
                    ],
                ) if a.ty == Type::String => {
                    Fast::Matches(bx(build(a, vars)?), value::regex_for(p).ok()?)
                }
                (f @ ("int" | "uint" | "double"), [a])
                    if matches!(a.ty, Type::Int | Type::Uint | Type::Double) =>
                {
                    let f = match f {
                        "int" => "int",
                        "uint" => "uint",
                        _ => "double",
                    };
                    Fast::Convert(f, bx(build(a, vars)?))
                }
                _ => return None,
            }
        }
        _ => return None,
    })
}

fn field<'a>(v: &'a Value, f: &str) -> Result<&'a Value, RunError> {
    match v {
        Value::Map(m) => m
            .iter()
            .find(|(k, _)| matches!(k, Value::String(s) if &**s == f))
            .map(|(_, v)| v)
            .ok_or_else(|| RunError::Op(OpError::NoSuchKey(f.to_owned()))),
        other => Err(RunError::Op(OpError::NoMatchingOverload {
            op: format!(".{f}"),
            args: other.type_name().to_owned(),
        })),
    }
}

fn as_bool(o: &Out<'_>, op: &str) -> Result<bool, RunError> {
    match o.get() {
        Value::Bool(b) => Ok(*b),
        other => Err(RunError::Op(OpError::NoMatchingOverload {
            op: op.to_owned(),
            args: other.type_name().to_owned(),
        })),
    }
}

impl Fast {
    /// Evaluates to a bool (conditions and rules).
    ///
    /// # Errors
    /// The CEL run-time error, or a non-bool result.
    pub fn eval_bool(&self, slots: &[Option<Value>]) -> Result<bool, RunError> {
        let out = self.eval(slots)?;
        match out.get() {
            Value::Bool(b) => Ok(*b),
            other => Err(RunError::ResultType {
                expected: "bool",
                got: other.type_name().to_owned(),
            }),
        }
    }

    /// Evaluates to a value.
    ///
    /// # Errors
    /// The CEL run-time error.
    pub fn eval_value(&self, slots: &[Option<Value>]) -> Result<Value, RunError> {
        Ok(match self.eval(slots)? {
            Out::Ref(v) => v.clone(),
            Out::Own(v) => v,
        })
    }

    fn eval<'a>(&'a self, slots: &'a [Option<Value>]) -> Result<Out<'a>, RunError> {
        Ok(match self {
            Fast::Lit(v) => Out::Ref(v),
            Fast::Var(i, name) => Out::Ref(
                slots
                    .get(*i)
                    .and_then(Option::as_ref)
                    .ok_or_else(|| RunError::Unbound(name.to_string()))?,
            ),
            Fast::Field(a, f) => match a.eval(slots)? {
                Out::Ref(v) => Out::Ref(field(v, f)?),
                Out::Own(v) => Out::Own(field(&v, f)?.clone()),
            },
            Fast::Has(a, f) => Out::Own(Value::Bool(value::has(a.eval(slots)?.get(), f)?)),
            Fast::Not(a) => Out::Own(Value::Bool(!as_bool(&a.eval(slots)?, "!")?)),
            Fast::Neg(a) => Out::Own(value::negate(a.eval(slots)?.get())?),
            Fast::And(a, b) | Fast::Or(a, b) => {
                let absorbing = matches!(self, Fast::Or(..));
                let name = if absorbing { "||" } else { "&&" };
                let l = a.eval(slots).and_then(|o| as_bool(&o, name));
                if l.as_ref().is_ok_and(|v| *v == absorbing) {
                    return Ok(Out::Own(Value::Bool(absorbing)));
                }
                let r = b.eval(slots).and_then(|o| as_bool(&o, name));
                match (l, r) {
                    (_, Ok(v)) if v == absorbing => Out::Own(Value::Bool(absorbing)),
                    (Ok(_), Ok(_)) => Out::Own(Value::Bool(!absorbing)),
                    (Err(e), _) | (_, Err(e)) => return Err(e),
                }
            }
            Fast::Cond(c, a, b) => {
                if as_bool(&c.eval(slots)?, "?:")? {
                    a.eval(slots)?
                } else {
                    b.eval(slots)?
                }
            }
            Fast::Eq(eq, a, b) => {
                let same = value::equals(a.eval(slots)?.get(), b.eval(slots)?.get());
                Out::Own(Value::Bool(same == *eq))
            }
            Fast::Rel(op, a, b) => Out::Own(Value::Bool(value::relation(
                op,
                a.eval(slots)?.get(),
                b.eval(slots)?.get(),
            )?)),
            Fast::Arith(op, a, b) => Out::Own(value::arith(
                op,
                a.eval(slots)?.get(),
                b.eval(slots)?.get(),
            )?),
            Fast::InList(a, items) => {
                let v = a.eval(slots)?;
                Out::Own(Value::Bool(items.iter().any(|i| value::equals(v.get(), i))))
            }
            Fast::Size(a) => Out::Own(value::size(a.eval(slots)?.get())?),
            Fast::StrFn(f, a, b) => Out::Own(Value::Bool(value::string_fn(
                f,
                a.eval(slots)?.get(),
                b.eval(slots)?.get(),
            )?)),
            Fast::Matches(a, re) => match a.eval(slots)?.get() {
                Value::String(s) => Out::Own(Value::Bool(re.is_match(s))),
                other => {
                    return Err(RunError::Op(OpError::NoMatchingOverload {
                        op: "matches".to_owned(),
                        args: other.type_name().to_owned(),
                    }));
                }
            },
            Fast::Convert(f, a) => Out::Own(value::convert(f, a.eval(slots)?.get())?),
        })
    }
}
