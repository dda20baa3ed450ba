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

/// Every `field == "x"` / `field != "x"` (either way round) whose literal is outside
/// the field's declared `enum`. Comprehension variables are not context fields: names
/// they bind are left out below them.
#[must_use]
pub fn outside_enum(e: &Expr, env: &Env) -> Vec<OutsideEnum> {
    let mut out = Vec::new();
    outside_enum_in(e, env, &mut Vec::new(), &mut out);
    out
}

fn outside_enum_in(e: &Expr, env: &Env, bound: &mut Vec<String>, out: &mut Vec<OutsideEnum>) {
    match &e.kind {
        ExprKind::Binary(op @ (BinaryOp::Eq | BinaryOp::Ne), a, b) => {
            let pair = match (&a.kind, &b.kind) {
                (_, ExprKind::Lit(Literal::String(v))) => path(a).map(|p| (p, v)),
                (ExprKind::Lit(Literal::String(v)), _) => path(b).map(|p| (p, v)),
                _ => None,
            };
            if let Some((field, value)) = pair
                && !field
                    .split('.')
                    .next()
                    .is_some_and(|root| bound.iter().any(|b| b == root))
                && let Some(allowed) = env.enum_of(&field)
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
        ExprKind::Comprehension {
            range,
            var,
            body,
            filter,
            ..
        } => {
            outside_enum_in(range, env, bound, out);
            bound.push(var.clone());
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
            _ => None,
        },
        ExprKind::Binary(BinaryOp::Or, a, b) => match (fixed_value(a), fixed_value(b)) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
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
    }
}
