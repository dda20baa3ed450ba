//! Conditions whose form fixes their value whatever the context: `x > 3 || true`,
//! `dept == dept`, `c ? true : true`. (Conditions that read no variable at all are
//! evaluated instead; contradictory ranges of one field are found by the decision-rule
//! analysis in `graph::rules`.)

use super::ast::{BinaryOp, Expr, ExprKind, Literal, UnaryOp};

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
