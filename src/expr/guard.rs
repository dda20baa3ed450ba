//! Reads of optional values outside a `has()` guard.
//!
//! A context field declared `optional: true` without a `default` may be absent; reading
//! it then fails at run time (an incident). A read is guarded when a `has()` of the same
//! path holds wherever it is evaluated: on the other side of `&&` (`has(x) && x > 3`),
//! after `!has(x) ||`, or in the condition of `? :`. Both sides of `&&` and `||` guard
//! each other because CEL's logical operators absorb an error when the other side
//! decides (`x > 3 && has(x)` is false, not an error, without `x`). A rule of a `first`
//! decision is guarded by the negation of every earlier rule (it runs only when they were
//! false), and a macro over a filtered list by the filter's guards on its elements
//! (`items.filter(i, has(i.note)).exists(i, i.note == 'y')`).

use super::ast::{BinaryOp, Expr, ExprKind, Literal, Macro, UnaryOp};
use super::check::Env;
use super::types::Type;

/// One unguarded read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unguarded {
    /// The path as [`path`] prints it (`applicant.grade`, `i.grade`, `M["Travel"]._`),
    /// or `None` when the read is not a place (`(b ? M : N).f`): the caller then quotes
    /// the read's own text.
    pub path: Option<String>,
    /// Where (expression bytes).
    pub span: (usize, usize),
}

/// Every read of an optional value that no `has()` guards, in source order, when the
/// paths in `known` are known present wherever `e` is evaluated.
pub(crate) fn unguarded_given(e: &Expr, env: &Env, known: &[String]) -> Vec<Unguarded> {
    let mut w = Walk {
        env,
        locals: Vec::new(),
        out: Vec::new(),
    };
    w.walk(e, known);
    w.out
}

/// The paths known present where each of `earlier` was false (a `first` decision's
/// earlier rules): `!has(p)` false means `has(p)`, as `!has(p) || …` guards its right.
pub(crate) fn known_after_false(earlier: &[&Expr]) -> Vec<String> {
    earlier.iter().flat_map(|r| guards(r, false)).collect()
}

/// The element paths (`i.note`) a filter guarantees for every element of the list it
/// returns, renamed to `var`: `items.filter(i, has(i.note))` then `.exists(j, j.note …)`
/// knows `j.note`.
fn filtered_guards(range: &Expr, var: &str) -> Vec<String> {
    let ExprKind::Comprehension {
        kind: Macro::Filter,
        var: fvar,
        body,
        ..
    } = &range.kind
    else {
        return Vec::new();
    };
    // the filter's own range may be a filter too
    let mut known: Vec<String> = filtered_guards(range_of(range), fvar);
    known.extend(guards(body, true));
    known
        .into_iter()
        .filter_map(|p| {
            let rest = p.strip_prefix(fvar.as_str())?;
            (rest.starts_with('.') || rest.starts_with('[')).then(|| format!("{var}{rest}"))
        })
        .collect()
}

fn range_of(e: &Expr) -> &Expr {
    match &e.kind {
        ExprKind::Comprehension { range, .. } => range,
        _ => e,
    }
}

/// A place as written, when the expression is one: the one routine that prints a
/// read for the warning and the guards it is compared with. A name, a field of a
/// place (`applicant.grade`), or a place indexed by a literal or by a place
/// (`M["Travel"]._`, `M[s]._`, `L[0]._1`): the whole read, never its last field only.
fn path(e: &Expr) -> Option<String> {
    match &e.kind {
        ExprKind::Ident(n) => Some(n.clone()),
        ExprKind::Select(a, f) => Some(format!("{}.{f}", path(a)?)),
        ExprKind::Index(a, i) => {
            let key = match &i.kind {
                ExprKind::Lit(Literal::String(k)) => format!("{k:?}"),
                ExprKind::Lit(Literal::Int(k)) => k.to_string(),
                ExprKind::Lit(Literal::Uint(k)) => format!("{k}u"),
                ExprKind::Lit(Literal::Bool(k)) => k.to_string(),
                _ => path(i)?,
            };
            Some(format!("{}[{key}]", path(a)?))
        }
        _ => None,
    }
}

/// The paths known present when `c` evaluates to `positive`.
fn guards(c: &Expr, positive: bool) -> Vec<String> {
    match &c.kind {
        ExprKind::Has(a, f) if positive => {
            path(a).map(|p| format!("{p}.{f}")).into_iter().collect()
        }
        ExprKind::HasVar(n) if positive => vec![n.clone()],
        ExprKind::Unary(UnaryOp::Not, a) => guards(a, !positive),
        // `a && b` true: both hold; `a || b` false: neither holds
        ExprKind::Binary(BinaryOp::And, a, b) if positive => {
            let mut g = guards(a, true);
            g.extend(guards(b, true));
            g
        }
        ExprKind::Binary(BinaryOp::Or, a, b) if !positive => {
            let mut g = guards(a, false);
            g.extend(guards(b, false));
            g
        }
        _ => Vec::new(),
    }
}

struct Walk<'e> {
    env: &'e Env,
    /// Comprehension variables in scope, innermost last.
    locals: Vec<String>,
    out: Vec<Unguarded>,
}

impl Walk<'_> {
    fn with(guarded: &[String], more: Vec<String>) -> Vec<String> {
        let mut g = guarded.to_vec();
        g.extend(more);
        g
    }

    fn report(&mut self, e: &Expr, guarded: &[String]) {
        let p = path(e);
        if p.as_ref().is_some_and(|p| guarded.contains(p)) {
            return;
        }
        self.out.push(Unguarded {
            path: p,
            span: e.span,
        });
    }

    fn walk(&mut self, e: &Expr, guarded: &[String]) {
        match &e.kind {
            ExprKind::Ident(n) => {
                if !self.locals.contains(n) && self.env.is_optional(n) {
                    self.report(e, guarded);
                }
            }
            ExprKind::Select(a, f) => {
                self.walk(a, guarded);
                if let Type::Object(o) = &a.ty
                    && o.fields.get(f).is_some_and(|f| f.optional)
                {
                    self.report(e, guarded);
                }
            }
            ExprKind::Lit(_) | ExprKind::HasVar(_) => {}
            // the operand of `has(a.f)` is read: `a` itself must be present
            ExprKind::Has(a, _) | ExprKind::Unary(_, a) => self.walk(a, guarded),
            ExprKind::Binary(BinaryOp::And, a, b) => {
                self.walk(a, &Self::with(guarded, guards(b, true)));
                self.walk(b, &Self::with(guarded, guards(a, true)));
            }
            ExprKind::Binary(BinaryOp::Or, a, b) => {
                self.walk(a, &Self::with(guarded, guards(b, false)));
                self.walk(b, &Self::with(guarded, guards(a, false)));
            }
            ExprKind::Cond(c, a, b) => {
                self.walk(c, guarded);
                self.walk(a, &Self::with(guarded, guards(c, true)));
                self.walk(b, &Self::with(guarded, guards(c, false)));
            }
            ExprKind::Index(a, b) | ExprKind::Binary(_, a, b) => {
                self.walk(a, guarded);
                self.walk(b, guarded);
            }
            ExprKind::Call { target, args, .. } => {
                if let Some(t) = target {
                    self.walk(t, guarded);
                }
                for a in args {
                    self.walk(a, guarded);
                }
            }
            ExprKind::List(items) => {
                for i in items {
                    self.walk(i, guarded);
                }
            }
            ExprKind::Map(entries) => {
                for (k, v) in entries {
                    self.walk(k, guarded);
                    self.walk(v, guarded);
                }
            }
            ExprKind::Comprehension {
                range,
                var,
                body,
                filter,
                ..
            } => {
                self.walk(range, guarded);
                // guards about an outer name the variable shadows no longer apply
                let inner: Vec<String> = guarded
                    .iter()
                    .filter(|p| p.split(['.', '[']).next() != Some(var.as_str()))
                    .cloned()
                    .chain(filtered_guards(range, var))
                    .collect();
                self.locals.push(var.clone());
                let body_guards = match filter {
                    Some(f) => {
                        self.walk(f, &inner);
                        Self::with(&inner, guards(f, true))
                    }
                    None => inner,
                };
                self.walk(body, &body_guards);
                self.locals.pop();
            }
        }
    }
}
