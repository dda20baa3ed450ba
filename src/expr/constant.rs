//! Conditions whose form fixes their value whatever the context: `x > 3 || true`,
//! `dept == dept`, `c ? true : true`. (Conditions that read no variable at all are
//! evaluated instead; contradictory ranges of one field are found by the decision-rule
//! analysis in `graph::rules`.)

use super::ast::{BinaryOp, Expr, ExprKind, Literal, UnaryOp};
use super::check::Env;

/// A comparison of a string field with a literal outside the field's `enum`
/// (`currency == "JPY"` where the enum is `[CNY, USD]`).
#[derive(Clone, Debug, PartialEq)]
pub struct OutsideEnum {
    /// The field's path.
    pub field: String,
    /// The literal.
    pub value: String,
    /// The field's enum.
    pub allowed: Vec<String>,
    /// What the comparison always gives (`==`: false, `!=`: true).
    pub always: bool,
    /// The comparison (expression bytes).
    pub span: (usize, usize),
}

/// Every `field == "x"` / `field != "x"` (either way round) and every `"x"` of
/// `field in ["x", ...]` whose literal is outside the field's declared `enum`. A
/// comprehension variable over a list stands for the list's elements (`i.category` in
/// `items.exists(i, ...)` is `items[].category`); one over a map's keys has no enum.
#[must_use]
pub fn outside_enum(e: &Expr, env: &Env) -> Vec<OutsideEnum> {
    let mut out = Vec::new();
    outside_enum_in(e, env, &mut Vec::new(), &mut out);
    out
}

/// The declared path of a field path as written, through comprehension variables.
fn declared_path(written: &str, bound: &[(String, Option<String>)]) -> Option<String> {
    let (root, rest) = written
        .split_once('.')
        .map_or((written, None), |(r, rest)| (r, Some(rest)));
    match bound.iter().rev().find(|(v, _)| v == root) {
        None => Some(written.to_owned()),
        Some((_, None)) => None,
        Some((_, Some(element))) => Some(match rest {
            Some(rest) => format!("{element}.{rest}"),
            None => element.clone(),
        }),
    }
}

fn outside_enum_in(
    e: &Expr,
    env: &Env,
    bound: &mut Vec<(String, Option<String>)>,
    out: &mut Vec<OutsideEnum>,
) {
    let field_enum = |x: &Expr| {
        let written = path(x)?;
        let declared = declared_path(&written, bound)?;
        let allowed = env.enum_of(&declared)?;
        Some((written, allowed))
    };
    match &e.kind {
        ExprKind::Binary(op @ (BinaryOp::Eq | BinaryOp::Ne), a, b) => {
            let pair = match (&a.kind, &b.kind) {
                (_, ExprKind::Lit(Literal::String(v))) => field_enum(a).map(|p| (p, v)),
                (ExprKind::Lit(Literal::String(v)), _) => field_enum(b).map(|p| (p, v)),
                _ => None,
            };
            if let Some(((field, allowed), value)) = pair
                && !allowed.iter().any(|a| a == value)
            {
                out.push(OutsideEnum {
                    field,
                    value: value.clone(),
                    allowed: allowed.to_vec(),
                    always: *op == BinaryOp::Ne,
                    span: e.span,
                });
            }
            outside_enum_in(a, env, bound, out);
            outside_enum_in(b, env, bound, out);
        }
        ExprKind::Binary(BinaryOp::In, a, b) => {
            if let ExprKind::List(items) = &b.kind
                && let Some((field, allowed)) = field_enum(a)
            {
                for item in items {
                    if let ExprKind::Lit(Literal::String(value)) = &item.kind
                        && !allowed.iter().any(|a| a == value)
                    {
                        out.push(OutsideEnum {
                            field: field.clone(),
                            value: value.clone(),
                            allowed: allowed.to_vec(),
                            always: false,
                            span: item.span,
                        });
                    }
                }
            }
            outside_enum_in(a, env, bound, out);
            outside_enum_in(b, env, bound, out);
        }
        ExprKind::Comprehension {
            range,
            var,
            body,
            filter,
            ..
        } => {
            outside_enum_in(range, env, bound, out);
            let element = match &range.ty {
                super::Type::List(_) => path(range)
                    .and_then(|p| declared_path(&p, bound))
                    .map(|p| format!("{p}[]")),
                _ => None,
            };
            bound.push((var.clone(), element));
            if let Some(p) = filter {
                outside_enum_in(p, env, bound, out);
            }
            outside_enum_in(body, env, bound, out);
            bound.pop();
        }
        _ => {
            for c in children_of(e) {
                outside_enum_in(c, env, bound, out);
            }
        }
    }
}

/// The direct children of a node that binds no name.
fn children_of(e: &Expr) -> Vec<&Expr> {
    match &e.kind {
        ExprKind::Lit(_)
        | ExprKind::Ident(_)
        | ExprKind::HasVar(_)
        | ExprKind::Comprehension { .. } => Vec::new(),
        ExprKind::Select(a, _) | ExprKind::Unary(_, a) | ExprKind::Has(a, _) => vec![&**a],
        ExprKind::Index(a, b) | ExprKind::Binary(_, a, b) => vec![&**a, &**b],
        ExprKind::Call { target, args, .. } => target.iter().map(|t| &**t).chain(args).collect(),
        ExprKind::List(items) => items.iter().collect(),
        ExprKind::Map(entries) => entries.iter().flat_map(|(k, v)| [k, v]).collect(),
        ExprKind::Cond(a, b, c) => vec![&**a, &**b, &**c],
    }
}

/// A field path (`currency`, `applicant.kind`).
fn path(e: &Expr) -> Option<String> {
    match &e.kind {
        ExprKind::Ident(n) => Some(n.clone()),
        ExprKind::Select(inner, f) => Some(format!("{}.{f}", path(inner)?)),
        _ => None,
    }
}

/// The value the condition always has, when its form decides it.
#[must_use]
pub fn fixed_value(e: &Expr) -> Option<bool> {
    match &e.kind {
        ExprKind::Lit(Literal::Bool(b)) => Some(*b),
        ExprKind::Unary(UnaryOp::Not, a) => fixed_value(a).map(|v| !v),
        // CEL's `&&`/`||` are commutative over errors: `x || true` is true even when `x`
        // fails, so one fixed side decides
        ExprKind::Binary(BinaryOp::And, a, b) => match (fixed_value(a), fixed_value(b)) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            // `x && !x`: never true
            _ if contradicts(e, BinaryOp::And) => Some(false),
            _ => None,
        },
        ExprKind::Binary(BinaryOp::Or, a, b) => match (fixed_value(a), fixed_value(b)) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            // `x || !x`: never false
            _ if contradicts(e, BinaryOp::Or) => Some(true),
            _ => None,
        },
        ExprKind::Binary(op, a, b) if is_field(a) && same(a, b) => match op {
            BinaryOp::Eq | BinaryOp::Le | BinaryOp::Ge => Some(true),
            BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Gt => Some(false),
            _ => None,
        },
        ExprKind::Cond(c, a, b) => match fixed_value(c) {
            Some(true) => fixed_value(a),
            Some(false) => fixed_value(b),
            None => match (fixed_value(a), fixed_value(b)) {
                (Some(x), Some(y)) if x == y => Some(x),
                _ => None,
            },
        },
        _ => None,
    }
}

/// The operands of a chain of one logical operator (`a && b && c` → a, b, c).
fn operands(e: &Expr, op: BinaryOp, out: &mut Vec<String>) {
    match &e.kind {
        ExprKind::Binary(o, a, b) if *o == op => {
            operands(a, op, out);
            operands(b, op, out);
        }
        _ => {
            if let Some(s) = shape(e) {
                out.push(s);
            }
        }
    }
}

/// The operands of a condition's top-level `&&` chain, written out without positions
/// (`days > 3 && kind == "a"` → two); `None` when one of them has no comparable form.
/// A condition whose operands include all of another's implies it.
#[must_use]
pub fn conjuncts(e: &Expr) -> Option<Vec<String>> {
    fn walk(e: &Expr, out: &mut Vec<Option<String>>) {
        match &e.kind {
            ExprKind::Binary(BinaryOp::And, a, b) => {
                walk(a, out);
                walk(b, out);
            }
            _ => out.push(shape(e)),
        }
    }
    let mut out = Vec::new();
    walk(e, &mut out);
    out.into_iter().collect()
}

/// True when a chain of `&&` (or `||`) holds an operand and its negation.
fn contradicts(e: &Expr, op: BinaryOp) -> bool {
    let mut parts = Vec::new();
    operands(e, op, &mut parts);
    parts.iter().any(|p| {
        parts
            .iter()
            .any(|q| q.strip_prefix('!') == Some(p.as_str()))
    })
}

/// The expression written out without positions (equal shapes compute equal values),
/// for the forms a contradiction is written in; `None` for the others.
fn shape(e: &Expr) -> Option<String> {
    Some(match &e.kind {
        ExprKind::Lit(Literal::String(s)) => format!("{s:?}"),
        ExprKind::Lit(Literal::Int(i)) => i.to_string(),
        ExprKind::Lit(Literal::Uint(u)) => format!("{u}u"),
        ExprKind::Lit(Literal::Double(d)) => format!("{d:?}"),
        ExprKind::Lit(Literal::Bool(b)) => b.to_string(),
        ExprKind::Lit(Literal::Null) => "null".to_owned(),
        ExprKind::Ident(n) => n.clone(),
        ExprKind::HasVar(n) => format!("has({n})"),
        ExprKind::Select(a, f) => format!("{}.{f}", shape(a)?),
        ExprKind::Has(a, f) => format!("has({}.{f})", shape(a)?),
        ExprKind::Index(a, i) => format!("{}[{}]", shape(a)?, shape(i)?),
        ExprKind::Unary(UnaryOp::Not, a) => format!("!{}", shape(a)?),
        ExprKind::Unary(UnaryOp::Neg, a) => format!("-({})", shape(a)?),
        ExprKind::Binary(op, a, b) => format!("({} {} {})", shape(a)?, op.symbol(), shape(b)?),
        ExprKind::List(items) => {
            let parts: Option<Vec<String>> = items.iter().map(shape).collect();
            format!("[{}]", parts?.join(", "))
        }
        ExprKind::Call { target, name, args } => {
            let parts: Option<Vec<String>> = args.iter().map(shape).collect();
            let t = match target {
                Some(t) => format!("{}.", shape(t)?),
                None => String::new(),
            };
            format!("{t}{name}({})", parts?.join(", "))
        }
        ExprKind::Lit(Literal::Bytes(_))
        | ExprKind::Map(_)
        | ExprKind::Cond(..)
        | ExprKind::Comprehension { .. } => return None,
    })
}

/// A context field (`dept`, `applicant.grade`): compared with itself it is equal (a
/// value read from JSON is never NaN).
fn is_field(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Ident(_) => true,
        ExprKind::Select(inner, _) => is_field(inner),
        _ => false,
    }
}

/// The same field path on both sides (spans differ, names do not).
fn same(a: &Expr, b: &Expr) -> bool {
    match (&a.kind, &b.kind) {
        (ExprKind::Ident(x), ExprKind::Ident(y)) => x == y,
        (ExprKind::Select(x, f), ExprKind::Select(y, g)) => f == g && same(x, y),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(text: &str) -> Option<bool> {
        fixed_value(&crate::expr::parse::parse(text).expect("parses"))
    }

    #[test]
    fn comparisons_outside_an_enum() {
        let mut env = Env::default();
        env.declare_enum("currency", vec!["CNY".to_owned(), "USD".to_owned()]);
        env.declare_enum("a.kind", vec!["x".to_owned()]);
        let found = |text: &str| -> Vec<(String, String, bool)> {
            outside_enum(&crate::expr::parse::parse(text).expect("parses"), &env)
                .into_iter()
                .map(|o| (o.field, o.value, o.always))
                .collect()
        };
        assert_eq!(
            found("currency == \"JPY\""),
            [("currency".to_owned(), "JPY".to_owned(), false)]
        );
        assert_eq!(
            found("x > 1 || \"EUR\" != currency"),
            [("currency".to_owned(), "EUR".to_owned(), true)]
        );
        assert_eq!(found("currency == \"USD\""), []);
        assert_eq!(
            found("a.kind == \"y\""),
            [("a.kind".to_owned(), "y".to_owned(), false)]
        );
        // a comprehension variable named like a field is not the field
        assert_eq!(found("l.exists(currency, currency == \"JPY\")"), []);
        assert_eq!(found("l.exists(i, currency == \"JPY\")").len(), 1);
    }

    #[test]
    fn forms_that_fix_the_value() {
        assert_eq!(fixed("x > 3 || true"), Some(true));
        assert_eq!(fixed("false && x"), Some(false));
        assert_eq!(fixed("a.b == a.b"), Some(true));
        assert_eq!(fixed("a.b < a.b"), Some(false));
        assert_eq!(fixed("a.b == a.c"), None);
        assert_eq!(fixed("!(x != x)"), Some(true));
        assert_eq!(fixed("c ? x > 1 : false"), None);
        assert_eq!(fixed("c ? false : false"), Some(false));
        assert_eq!(fixed("x > 3 || y"), None);
        assert_eq!(fixed("size(l) == size(l)"), None);
        assert_eq!(fixed("\"a\" in tags && !(\"a\" in tags)"), Some(false));
        assert_eq!(fixed("x > 1 && y && !(x > 1)"), Some(false));
        assert_eq!(fixed("!has(a.b) || has(a.b)"), Some(true));
        assert_eq!(fixed("\"a\" in tags && !(\"b\" in tags)"), None);
    }
}
