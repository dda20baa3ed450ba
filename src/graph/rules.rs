//! Decision-rule analysis for rules that compare one field against literals.
//!
//! Such a rule holds on a union of intervals (numbers) or a finite/co-finite set
//! (strings, bools) whose boundaries are among the literals. Membership is therefore
//! constant between consecutive literals, and evaluating each rule at one sample point
//! per region decides shadowing, overlap and exhaustiveness exactly.

use super::{Graph, GraphError, NotAnalysed};
use crate::expr::Type;
use crate::expr::ast::{BinaryOp, Expr, ExprKind, Literal, UnaryOp};
use crate::expr::value::cmp_int_double;
use crate::limits::Limits;
use crate::model::{Flow, HitPolicy, StepKind};
use crate::span::Span;

#[derive(Clone, Debug, PartialEq)]
enum Point {
    /// A value of an `int` or `uint` field (or a size), exactly.
    Int(i128),
    /// A value of a `double` field.
    Num(f64),
    Str(Option<String>),
    Bool(bool),
}

/// The one value a comparison is about: a field (`amount`, `applicant.grade`), or the
/// size of one (`items.size()`, `size(items)`), which is an `int` like any other.
fn field_of(e: &Expr) -> Option<String> {
    match &e.kind {
        ExprKind::Ident(n) => Some(n.clone()),
        ExprKind::Select(inner, f) => Some(format!("{}.{f}", field_of(inner)?)),
        ExprKind::Call { target, name, args } if name == "size" => {
            match (target, args.as_slice()) {
                (Some(t), []) => Some(format!("size({})", field_of(t)?)),
                (None, [a]) => Some(format!("size({})", field_of(a)?)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// A numeric literal, exactly: integers as integers, doubles as doubles (never a lossy
/// cast between them: `1e19` and `9007199254740993` keep their values).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Num {
    Int(i128),
    Double(f64),
}

fn lit_num(e: &Expr) -> Option<Num> {
    match e.kind {
        ExprKind::Lit(Literal::Int(i)) => Some(Num::Int(i128::from(i))),
        ExprKind::Lit(Literal::Uint(u)) => Some(Num::Int(i128::from(u))),
        ExprKind::Lit(Literal::Double(d)) => Some(Num::Double(d)),
        _ => None,
    }
}

/// A numeric sample point compared with a numeric literal, exactly.
fn cmp_num(p: Num, lit: Num) -> Option<std::cmp::Ordering> {
    match (p, lit) {
        (Num::Int(a), Num::Int(b)) => Some(a.cmp(&b)),
        (Num::Double(a), Num::Double(b)) => a.partial_cmp(&b),
        (Num::Int(a), Num::Double(b)) => cmp_int_double(a, b),
        (Num::Double(a), Num::Int(b)) => cmp_int_double(b, a).map(std::cmp::Ordering::reverse),
    }
}

/// The integers next to a literal, for an integral field: for an integer literal, it
/// and its neighbours; for a double, the integers where the comparison with it changes
/// (an integer is compared as the nearest double, decision 113, so beyond 2^53 the
/// boundary lies where the rounding reaches the literal, not at its floor) and their
/// neighbours.
fn int_neighbours(n: Num) -> Vec<i128> {
    let base = match n {
        Num::Int(i) => vec![i],
        Num::Double(d) if d.is_nan() => Vec::new(),
        Num::Double(d) => vec![
            first_int_where(d, |o| o != std::cmp::Ordering::Less),
            first_int_where(d, |o| o == std::cmp::Ordering::Greater),
        ],
    };
    base.into_iter().flat_map(|i| [i - 1, i, i + 1]).collect()
}

/// The least integer in ±2^100 (beyond every int and uint: the domain's ends stand for
/// the rest) whose comparison with `d` satisfies `holds`, which turns true once and
/// stays true as the integer grows (the comparison is monotone).
fn first_int_where(d: f64, holds: impl Fn(std::cmp::Ordering) -> bool) -> i128 {
    let at = |i: i128| cmp_int_double(i, d).is_some_and(&holds);
    let (mut lo, mut hi) = (-(1i128 << 100), 1i128 << 100);
    if at(lo) {
        return lo;
    }
    // INVARIANT: !at(lo); at(hi) or hi is the domain's end
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if at(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// The double nearest to a literal, for a `double` field (an integer literal beyond
/// 2^53 rounds; its exact comparison still decides each sample).
fn as_double(n: Num) -> f64 {
    match n {
        #[expect(
            clippy::cast_precision_loss,
            reason = "a sample point only: the neighbours below and above are sampled too"
        )]
        Num::Int(i) => i as f64,
        Num::Double(d) => d,
    }
}

/// The single field an analyzable rule is about, and its type.
#[must_use]
pub fn subject(e: &Expr) -> Option<(String, Type)> {
    let mut found: Vec<(String, Type)> = Vec::new();
    let mut ok = true;
    visit(
        e,
        &mut |f, t| {
            if !found.iter().any(|(g, _)| g == f) {
                found.push((f.to_owned(), t.clone()));
            }
        },
        &mut ok,
    );
    if ok && found.len() == 1 {
        found.pop()
    } else {
        None
    }
}

fn visit(e: &Expr, f: &mut impl FnMut(&str, &Type), ok: &mut bool) {
    match &e.kind {
        ExprKind::Binary(BinaryOp::And | BinaryOp::Or, a, b) => {
            visit(a, f, ok);
            visit(b, f, ok);
        }
        ExprKind::Unary(UnaryOp::Not, a) => visit(a, f, ok),
        ExprKind::Binary(op, a, b) => {
            let pair = match (field_of(a), field_of(b)) {
                (Some(x), None) => Some((x, &a.ty, &**b)),
                (None, Some(x)) if *op != BinaryOp::In => Some((x, &b.ty, &**a)),
                _ => None,
            };
            match pair {
                Some((name, ty, other)) => {
                    let lit_ok = match &other.kind {
                        ExprKind::Lit(_) => true,
                        ExprKind::List(items) => {
                            *op == BinaryOp::In
                                && items.iter().all(|i| matches!(i.kind, ExprKind::Lit(_)))
                        }
                        _ => false,
                    };
                    if lit_ok
                        && matches!(
                            ty,
                            Type::Int | Type::Uint | Type::Double | Type::String | Type::Bool
                        )
                    {
                        f(&name, ty);
                    } else {
                        *ok = false;
                    }
                }
                None => *ok = false,
            }
        }
        _ => match field_of(e) {
            Some(name) if e.ty == Type::Bool => f(&name, &Type::Bool),
            _ => *ok = false,
        },
    }
}

fn literals(e: &Expr, out: &mut Vec<Point>) {
    e.walk(&mut |n| match &n.kind {
        ExprKind::Lit(Literal::String(s)) => out.push(Point::Str(Some(s.clone()))),
        ExprKind::Lit(_) => {
            if let Some(x) = lit_num(n) {
                out.push(match x {
                    Num::Int(i) => Point::Int(i),
                    Num::Double(d) => Point::Num(d),
                });
            }
        }
        _ => {}
    });
}

/// Sample points covering every region of the field's domain.
fn samples(rules: &[&Expr], ty: &Type, allowed: Option<&[String]>) -> Vec<Point> {
    let mut lits = Vec::new();
    for r in rules {
        literals(r, &mut lits);
    }
    match ty {
        Type::Bool => vec![Point::Bool(false), Point::Bool(true)],
        Type::String => {
            if let Some(values) = allowed {
                let mut v = values.to_vec();
                v.sort_unstable();
                v.dedup();
                return v.into_iter().map(|v| Point::Str(Some(v))).collect();
            }
            let mut v: Vec<String> = lits
                .into_iter()
                .filter_map(|p| match p {
                    Point::Str(Some(s)) => Some(s),
                    _ => None,
                })
                .collect();
            v.sort_unstable();
            v.dedup();
            // sorted, "any other string" last: the order `order` compares in
            v.into_iter()
                .map(|s| Point::Str(Some(s)))
                .chain([Point::Str(None)])
                .collect()
        }
        _ => {
            let nums: Vec<Num> = lits
                .into_iter()
                .filter_map(|p| match p {
                    Point::Int(i) => Some(Num::Int(i)),
                    Point::Num(d) => Some(Num::Double(d)),
                    _ => None,
                })
                .collect();
            // a `uint` and a size (`tags.size()`) are never negative
            let size = rules
                .first()
                .and_then(|r| subject(r))
                .is_some_and(|(name, _)| name.starts_with("size("));
            match ty {
                Type::Int | Type::Uint => {
                    let (lo, hi) = if *ty == Type::Uint || size {
                        (0, i128::from(u64::MAX))
                    } else {
                        (i128::from(i64::MIN), i128::from(i64::MAX))
                    };
                    let mut pts: Vec<i128> = nums
                        .into_iter()
                        .flat_map(int_neighbours)
                        .map(|i| i.clamp(lo, hi))
                        .collect();
                    if pts.is_empty() {
                        pts.push(0.clamp(lo, hi));
                    }
                    pts.sort_unstable();
                    pts.dedup();
                    pts.into_iter().map(Point::Int).collect()
                }
                _ => {
                    // a double read from the context is finite: an infinite literal
                    // stands at the largest finite double
                    let mut xs: Vec<f64> = nums
                        .into_iter()
                        .map(as_double)
                        .filter(|x| !x.is_nan())
                        .map(|x| x.clamp(f64::MIN, f64::MAX))
                        .collect();
                    xs.sort_by(f64::total_cmp);
                    xs.dedup();
                    let mut pts = Vec::new();
                    for (i, x) in xs.iter().enumerate() {
                        pts.push(*x);
                        // the region above: halfway to the next literal, or the next
                        // double (never `x + 1.0`, which is `x` again beyond 2^53)
                        match xs.get(i + 1) {
                            Some(y) => pts.push(x / 2.0 + y / 2.0),
                            None => pts.push(x.next_up()),
                        }
                        if i == 0 {
                            pts.push(x.next_down());
                        }
                    }
                    if pts.is_empty() {
                        pts.push(0.0);
                    }
                    let pts = pts.into_iter().filter(|x| x.is_finite());
                    let mut pts: Vec<f64> = if size {
                        pts.filter(|x| *x >= 0.0).collect()
                    } else {
                        pts.collect()
                    };
                    if pts.is_empty() {
                        pts.push(0.0);
                    }
                    pts.sort_by(f64::total_cmp);
                    pts.dedup();
                    pts.into_iter().map(Point::Num).collect()
                }
            }
        }
    }
}

fn eval_at(e: &Expr, p: &Point) -> Option<bool> {
    match &e.kind {
        ExprKind::Binary(BinaryOp::And, a, b) => Some(eval_at(a, p)? && eval_at(b, p)?),
        ExprKind::Binary(BinaryOp::Or, a, b) => Some(eval_at(a, p)? || eval_at(b, p)?),
        ExprKind::Unary(UnaryOp::Not, a) => Some(!eval_at(a, p)?),
        ExprKind::Binary(op, a, b) => {
            let (lit, flipped) = if field_of(a).is_some() {
                (&**b, false)
            } else {
                (&**a, true)
            };
            if *op == BinaryOp::In {
                let ExprKind::List(items) = &lit.kind else {
                    return None;
                };
                return Some(
                    items
                        .iter()
                        .any(|i| compare(BinaryOp::Eq, p, i) == Some(true)),
                );
            }
            let op = if flipped {
                match op {
                    BinaryOp::Lt => BinaryOp::Gt,
                    BinaryOp::Le => BinaryOp::Ge,
                    BinaryOp::Gt => BinaryOp::Lt,
                    BinaryOp::Ge => BinaryOp::Le,
                    o => *o,
                }
            } else {
                *op
            };
            compare(op, p, lit)
        }
        _ => match p {
            Point::Bool(b) => Some(*b),
            _ => None,
        },
    }
}

/// A sample point against a literal, in the order the sample points are sorted in
/// (`samples`): numbers exactly, strings by code point with the "any other string"
/// sample after every literal, `false` before `true`. Every comparison of the analysis
/// is a function of it, and it is monotone along the sorted sample points.
fn order(p: &Point, lit: &Expr) -> Option<std::cmp::Ordering> {
    match (p, &lit.kind) {
        (Point::Int(x), _) => cmp_num(Num::Int(*x), lit_num(lit)?),
        (Point::Num(x), _) => cmp_num(Num::Double(*x), lit_num(lit)?),
        (Point::Str(Some(s)), ExprKind::Lit(Literal::String(l))) => Some(s.as_str().cmp(l)),
        (Point::Str(None), ExprKind::Lit(Literal::String(_))) => Some(std::cmp::Ordering::Greater),
        (Point::Bool(b), ExprKind::Lit(Literal::Bool(l))) => Some(b.cmp(l)),
        _ => None,
    }
}

fn compare(op: BinaryOp, p: &Point, lit: &Expr) -> Option<bool> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    if *p == Point::Str(None) {
        // the "any other string" sample: unequal to every literal; ordering unknown
        return match op {
            BinaryOp::Eq => Some(false),
            BinaryOp::Ne => Some(true),
            _ => None,
        };
    }
    let ord = order(p, lit)?;
    Some(match op {
        BinaryOp::Eq => ord == Equal,
        BinaryOp::Ne => ord != Equal,
        BinaryOp::Lt => ord == Less,
        BinaryOp::Le => ord != Greater,
        BinaryOp::Gt => ord == Greater,
        BinaryOp::Ge => ord != Less,
        _ => return None,
    })
}

/// The membership vectors of rules over one field's sample points, when every rule is
/// analyzable on that same field.
#[must_use]
pub fn vectors(rules: &[&Expr], ty: &Type, allowed: Option<&[String]>) -> Option<Vec<Vec<bool>>> {
    let pts = samples(rules, ty, allowed);
    rules
        .iter()
        .map(|r| {
            pts.iter()
                .map(|p| eval_at(r, p))
                .collect::<Option<Vec<bool>>>()
        })
        .collect()
}

/// A condition on one field that holds everywhere or nowhere in the field's domain
/// (`amount > 100.0 && amount < 50.0`), decided by the decision-rule analysis.
#[must_use]
pub fn one_field_constant(e: &Expr) -> Option<bool> {
    let (_, ty) = subject(e)?;
    let vecs = vectors(&[e], &ty, None)?;
    let v = vecs.first()?;
    if v.iter().all(|x| !*x) {
        Some(false)
    } else if v.iter().all(|x| *x) {
        Some(true)
    } else {
        None
    }
}

/// Under `first`, every rule after the first rule that always holds is never chosen:
/// reports them and returns that rule's index.
fn unreachable_rules(
    flow: &Flow,
    step_id: &str,
    policy: HitPolicy,
    checked: &[(usize, &Expr)],
    rule_spans: &[Span],
    errs: &mut Vec<GraphError>,
) -> Option<usize> {
    if policy != HitPolicy::First {
        return None;
    }
    let first = checked
        .iter()
        .find(|(_, c)| always_holds(c) || holds_over_enum(flow, c))
        .map(|(i, _)| *i)?;
    for (i, _) in checked.iter().filter(|(i, _)| *i > first) {
        errs.push(GraphError::UnreachableRule {
            id: step_id.to_owned(),
            index: i + 1,
            always_index: first + 1,
            span: rule_spans.get(*i).copied().unwrap_or_default(),
            always: rule_spans.get(first).copied().unwrap_or_default(),
        });
    }
    Some(first)
}

/// A rule that holds whatever the context: `true`, a form that fixes it (`x || true`)
/// or a one-field condition true over the whole domain (`amount >= 0.0 || amount < 0.0`).
fn always_holds(e: &Expr) -> bool {
    matches!(e.kind, ExprKind::Lit(Literal::Bool(true)))
        || crate::expr::constant::fixed_value(e) == Some(true)
        || one_field_constant(e) == Some(true)
}

/// The `enum` of a string context field (`dept`, `applicant.kind`), if it declares one.
fn allowed_values(flow: &Flow, field: &str) -> Option<Vec<String>> {
    flow.string_enums()
        .into_iter()
        .find(|(path, _)| path == field)
        .map(|(_, values)| values)
}

/// A one-field condition on a string field with an `enum` that holds for every listed
/// value (`dept != "法务"` with `enum: [sales, hr]`).
fn holds_over_enum(flow: &Flow, e: &Expr) -> bool {
    let Some((field, ty)) = subject(e) else {
        return false;
    };
    let Some(allowed) = allowed_values(flow, &field) else {
        return false;
    };
    vectors(&[e], &ty, Some(&allowed))
        .and_then(|v| v.into_iter().next())
        .is_some_and(|v| !v.is_empty() && v.iter().all(|x| *x))
}

/// What the decision analysis may still do: every evaluation of a comparison at a sample
/// point spends one unit of [`Limits::MAX_DECISION_WORK`], so a decision of any size is
/// analysed in bounded time; once it is spent the analysis stops and says so.
struct Work {
    left: u64,
}

impl Work {
    fn new() -> Self {
        Self {
            left: Limits::MAX_DECISION_WORK,
        }
    }

    /// Spends `units`; false (and nothing left) when they are not there.
    fn spend(&mut self, units: usize) -> bool {
        let units = u64::try_from(units).unwrap_or(u64::MAX);
        if let Some(left) = self.left.checked_sub(units) {
            self.left = left;
            true
        } else {
            self.left = 0;
            false
        }
    }

    fn spent(&self) -> bool {
        self.left == 0
    }
}

/// The comparisons and boolean reads of `e`: what one evaluation of it costs.
fn cost(e: &Expr) -> usize {
    let mut n = 1;
    e.walk(&mut |x| {
        if matches!(x.kind, ExprKind::Lit(_)) {
            n += 1;
        }
    });
    n
}

/// A one-field rule's value along its field's sorted sample points, as runs: the index
/// where each run starts (the first at 0) and the value on it.
///
/// The rule's value at a point depends only on how the point compares with each of its
/// literals (`order`), and along the sorted points each such comparison is `Less`, then
/// `Equal`, then `Greater`: so the value can change only where one of them changes,
/// found by binary search, and the rule is evaluated once per run rather than at every
/// point. The "any other string" sample stands for many strings and is its own run.
/// `None` when the analysis cannot tell (or `work` is spent).
fn rule_runs(r: &Expr, pts: &[Point], work: &mut Work) -> Option<Vec<(usize, bool)>> {
    use std::cmp::Ordering::{Greater, Less};
    let mut lits = Vec::new();
    r.walk(&mut |n| {
        if matches!(n.kind, ExprKind::Lit(_)) {
            lits.push(n);
        }
    });
    let first = pts.first()?;
    // a few points (a `bool` field, read bare or compared) are simply all evaluated
    let sparse = pts.len() > 8 && lits.iter().all(|l| order(first, l).is_some());
    let mut starts: Vec<usize> = if sparse {
        let mut s = vec![0];
        for l in &lits {
            s.push(pts.partition_point(|p| order(p, l) == Some(Less)));
            s.push(pts.partition_point(|p| order(p, l) != Some(Greater)));
        }
        if pts.last() == Some(&Point::Str(None)) {
            s.push(pts.len() - 1);
        }
        s
    } else {
        (0..pts.len()).collect()
    };
    starts.retain(|i| *i < pts.len());
    starts.sort_unstable();
    starts.dedup();
    let each = lits.len() + 1;
    let mut runs: Vec<(usize, bool)> = Vec::with_capacity(starts.len());
    for i in starts {
        if !work.spend(each) {
            return None;
        }
        let v = eval_at(r, pts.get(i)?)?;
        if runs.last().is_none_or(|(_, w)| *w != v) {
            runs.push((i, v));
        }
    }
    Some(runs)
}

/// The ranges of sample indexes where runs are true.
fn true_ranges(runs: &[(usize, bool)], len: usize) -> Vec<(usize, usize)> {
    runs.iter()
        .enumerate()
        .filter(|(_, (_, v))| *v)
        .map(|(k, (start, _))| (*start, runs.get(k + 1).map_or(len, |(next, _)| *next)))
        .collect()
}

/// The sample points of one field, painted rule by rule in rule order: which points an
/// earlier rule already holds on, and the first rule that holds on each (a union-find of
/// the next unpainted point and a minimum tree, so painting and asking are near-constant
/// per point and logarithmic per range).
struct Cover {
    /// The next unpainted point at or after each index (`len` when none), compressed.
    next: Vec<usize>,
    /// A minimum tree over the member each point was first painted by.
    tree: Vec<usize>,
    len: usize,
}

impl Cover {
    fn new(len: usize) -> Self {
        Self {
            next: (0..=len).collect(),
            tree: vec![usize::MAX; 2 * len],
            len,
        }
    }

    fn unpainted_from(&mut self, i: usize) -> usize {
        let mut root = i;
        while let Some(&n) = self.next.get(root) {
            if n == root {
                break;
            }
            root = n;
        }
        let mut at = i;
        while at != root {
            let Some(slot) = self.next.get_mut(at) else {
                break;
            };
            at = std::mem::replace(slot, root);
        }
        root
    }

    /// Whether a point of `from..to` is still unpainted.
    fn has_unpainted(&mut self, from: usize, to: usize) -> bool {
        self.unpainted_from(from) < to
    }

    /// Paints the unpainted points of `from..to` with `member`.
    fn paint(&mut self, from: usize, to: usize, member: usize) {
        let mut i = self.unpainted_from(from);
        while i < to.min(self.len) {
            if let Some(slot) = self.next.get_mut(i) {
                *slot = i + 1;
            }
            let mut t = i + self.len;
            if let Some(v) = self.tree.get_mut(t) {
                *v = member;
            }
            while t > 1 {
                t /= 2;
                let m = self
                    .tree
                    .get(2 * t)
                    .min(self.tree.get(2 * t + 1))
                    .copied()
                    .unwrap_or(usize::MAX);
                if let Some(v) = self.tree.get_mut(t) {
                    *v = m;
                }
            }
            i = self.unpainted_from(i + 1);
        }
    }

    /// The first member that painted a point of `from..to` (`usize::MAX`: none).
    fn first_painter(&self, from: usize, to: usize) -> usize {
        let (mut l, mut r) = (from + self.len, to.min(self.len) + self.len);
        let mut m = usize::MAX;
        let at = |i: usize| self.tree.get(i).copied().unwrap_or(usize::MAX);
        while l < r {
            if l % 2 == 1 {
                m = m.min(at(l));
                l += 1;
            }
            if r % 2 == 1 {
                r -= 1;
                m = m.min(at(r));
            }
            l /= 2;
            r /= 2;
        }
        m
    }

    fn all_painted(&mut self) -> bool {
        !self.has_unpainted(0, self.len)
    }
}

/// The value a one-field rule's field stands for when asking which fields a pair of
/// rules reads: `size(x)` and `x` are one value seen twice, never independent.
fn family(field: &str) -> &str {
    field
        .strip_prefix("size(")
        .and_then(|f| f.strip_suffix(')'))
        .unwrap_or(field)
}

/// The decision-rule analysis of the decision step at `step` in `g` (SPEC §3): shadowed
/// rules under `first`, overlapping rules under `unique`, and a decision that no rule
/// and no `default` covers. `checked` holds the rules whose conditions type-checked, by
/// rule index.
///
/// Rules on one field are analysed together along that field's sample points (runs and
/// a `Cover`: near-linear in the rules, so a routing table of thousands of `code == "…"`
/// rules is cheap). Under `unique` two one-field rules on different fields overlap
/// unless one holds nowhere; a pair involving a rule on several fields (or `has()`) is
/// decided by the case split of exhaustiveness over just the two rules. All of it spends
/// from one `Work` budget.
#[must_use]
#[expect(
    clippy::too_many_lines,
    reason = "one pass over the groups feeds shadowing, overlaps and coverage alike"
)]
pub fn check_decision(
    g: &Graph<'_>,
    flow: &Flow,
    step: usize,
    checked: &[(usize, &Expr)],
) -> Vec<GraphError> {
    let mut errs = Vec::new();
    let Some(s) = g.steps.get(step).map(|i| i.step) else {
        return errs;
    };
    let StepKind::Decision {
        hit_policy: policy,
        rules,
        default,
    } = &s.kind
    else {
        return errs;
    };
    let step_id = s.id.value.as_str();
    let rule_spans: Vec<Span> = rules.iter().map(|r| r.when.span).collect();
    let span_of = |i: usize| rule_spans.get(i).copied().unwrap_or_default();
    let mut work = Work::new();
    let always = unreachable_rules(flow, step_id, *policy, checked, &rule_spans, &mut errs);
    let has_default = default.is_some();
    // group rules by the one field they test (positions in `checked`)
    let subjects: Vec<Option<(String, Type)>> = checked.iter().map(|(_, c)| subject(c)).collect();
    let mut groups: Vec<((String, Type), Vec<usize>)> = Vec::new();
    let mut group_of: std::collections::HashMap<(String, Type), usize> =
        std::collections::HashMap::new();
    for (k, subj) in subjects.iter().enumerate() {
        if let Some(subj) = subj {
            let at = *group_of.entry(subj.clone()).or_insert_with(|| {
                groups.push((subj.clone(), Vec::new()));
                groups.len() - 1
            });
            if let Some((_, v)) = groups.get_mut(at) {
                v.push(k);
            }
        }
    }
    let mut exhaustive = checked
        .iter()
        .any(|(_, c)| matches!(c.kind, ExprKind::Lit(Literal::Bool(true))));
    // under `unique`: the earliest rule (position in `checked`) each rule overlaps
    let mut overlaps: Vec<Option<usize>> = vec![None; checked.len()];
    // a one-field rule that holds somewhere; `None` when the analysis cannot tell
    let mut satisfiable: Vec<Option<bool>> = vec![None; checked.len()];
    // the first pair the analysis could not decide, said rather than passed silently
    let mut stopped: Option<Unchecked> = None;
    for ((field, ty), members) in &groups {
        let exprs: Vec<&Expr> = members
            .iter()
            .filter_map(|k| checked.get(*k).map(|(_, c)| *c))
            .collect();
        let allowed = allowed_values(flow, field);
        let pts = samples(&exprs, ty, allowed.as_deref());
        let Some(all_runs) = exprs
            .iter()
            .map(|e| rule_runs(e, &pts, &mut work))
            .collect::<Option<Vec<_>>>()
        else {
            if work.spent() && stopped.is_none() {
                let first = members.first().copied().unwrap_or(0);
                stopped = Some(Unchecked::Spent {
                    later: members.last().copied().unwrap_or(first),
                    earlier: first,
                });
            }
            continue;
        };
        let mut cover = Cover::new(pts.len());
        for (m, runs) in all_runs.iter().enumerate() {
            let Some(&k) = members.get(m) else {
                continue;
            };
            let Some(&(rule_idx, _)) = checked.get(k) else {
                continue;
            };
            let ranges = true_ranges(runs, pts.len());
            if let Some(slot) = satisfiable.get_mut(k) {
                *slot = Some(!ranges.is_empty());
            }
            match policy {
                HitPolicy::First => {
                    // a rule that holds nowhere is "always false" (reported by the
                    // condition check), not shadowed
                    let after_always = always.is_some_and(|first| rule_idx > first);
                    if !ranges.is_empty()
                        && !after_always
                        && !ranges.iter().any(|(a, b)| cover.has_unpainted(*a, *b))
                    {
                        errs.push(GraphError::ShadowedRule {
                            id: step_id.to_owned(),
                            index: rule_idx + 1,
                            span: span_of(rule_idx),
                        });
                    }
                }
                HitPolicy::Unique => {
                    let first = ranges
                        .iter()
                        .map(|(a, b)| cover.first_painter(*a, *b))
                        .min()
                        .unwrap_or(usize::MAX);
                    if let (Some(slot), Some(&j)) = (overlaps.get_mut(k), members.get(first)) {
                        *slot = Some(j);
                    }
                }
            }
            for (a, b) in ranges {
                cover.paint(a, b, m);
            }
        }
        if members.len() == checked.len() && cover.all_painted() {
            exhaustive = true;
        }
    }
    if *policy == HitPolicy::Unique && !work.spent() {
        let unchecked = cross_overlaps(
            flow,
            checked,
            &subjects,
            &satisfiable,
            &mut overlaps,
            &mut work,
        );
        if stopped.is_none() {
            stopped = unchecked;
        }
    }
    if *policy == HitPolicy::Unique {
        for (k, first) in overlaps.iter().enumerate() {
            if let (Some(j), Some(&(rule_idx, _))) = (first, checked.get(k)) {
                let earlier = checked.get(*j).map_or(0, |(i, _)| *i);
                errs.push(GraphError::OverlappingRules {
                    id: step_id.to_owned(),
                    index: rule_idx + 1,
                    first_index: earlier + 1,
                    span: span_of(rule_idx),
                    first: span_of(earlier),
                });
            }
        }
    }
    let all_checked = checked.len() == rules.len();
    exhaustive =
        exhaustive || (!has_default && all_checked && covers_every_case(flow, checked, &mut work));
    if let Some(stop) = stopped {
        errs.push(stop.into_error(step_id, checked, &span_of));
    }
    if *policy == HitPolicy::First {
        implied_rules(step_id, checked, always, &rule_spans, &mut errs);
    }
    if !has_default && !exhaustive {
        // the first step of this id (a duplicate id is reported on its own)
        let span = g
            .index()
            .step_index(step_id)
            .and_then(|i| g.steps.get(i))
            .map_or(s.id.span, |i| i.step.id.span);
        errs.push(GraphError::NonExhaustive {
            id: step_id.to_owned(),
            span,
        });
    }
    errs
}

/// Why a pair of rules was not checked for overlap.
enum Unchecked {
    /// The two rules' case split has more than `MAX_ASSIGNMENTS` assignments.
    TooLarge { later: usize, earlier: usize },
    /// The decision's work budget ran out at this pair.
    Spent { later: usize, earlier: usize },
}

impl Unchecked {
    fn into_error(
        self,
        id: &str,
        checked: &[(usize, &Expr)],
        span_of: &impl Fn(usize) -> Span,
    ) -> GraphError {
        let (later, earlier, reason) = match self {
            Unchecked::TooLarge { later, earlier } => (later, earlier, NotAnalysed::TooManyCases),
            Unchecked::Spent { later, earlier } => (later, earlier, NotAnalysed::BudgetSpent),
        };
        let index = checked.get(later).map_or(0, |(i, _)| *i);
        let first_index = checked.get(earlier).map_or(0, |(i, _)| *i);
        GraphError::OverlapNotAnalysed {
            id: id.to_owned(),
            index: index + 1,
            first_index: first_index + 1,
            reason,
            span: span_of(index),
            first: span_of(first_index),
        }
    }
}

/// Under `unique`, the overlaps `check_decision`'s one-field groups cannot see, into
/// `overlaps` (the earliest earlier rule each rule overlaps): two one-field rules on
/// different fields, both satisfiable, hold together (the fields are independent; `x`
/// and `size(x)` are not, and are left alone); a pair where either rule reads several
/// fields or a `has()` is decided by the case split of the two rules alone. Returns the
/// first pair it could not decide (too many cases: then it goes on; the budget spent:
/// then it stops), so nothing is passed silently.
fn cross_overlaps(
    flow: &Flow,
    checked: &[(usize, &Expr)],
    subjects: &[Option<(String, Type)>],
    satisfiable: &[Option<bool>],
    overlaps: &mut [Option<usize>],
    work: &mut Work,
) -> Option<Unchecked> {
    let mut unchecked = None;
    // the first two satisfiable one-field rules of different field families
    let mut firsts: Vec<(usize, &str)> = Vec::new();
    let all: Vec<usize> = (0..checked.len()).collect();
    let others: Vec<usize> = all
        .iter()
        .copied()
        .filter(|k| subjects.get(*k).is_some_and(Option::is_none))
        .collect();
    for k in 0..checked.len() {
        let one = subjects.get(k).and_then(Option::as_ref);
        let fam = one.map(|(f, _)| family(f));
        let sat = satisfiable.get(k).copied().flatten() == Some(true);
        let mut best = overlaps.get(k).copied().flatten().unwrap_or(usize::MAX);
        if let Some(fam) = fam
            && sat
            && let Some((j, _)) = firsts.iter().find(|(_, f)| *f != fam)
        {
            best = best.min(*j);
        }
        // pairs with a rule the one-field analysis does not cover: a one-field rule
        // against the earlier other rules, any other rule against every earlier one
        let candidates: &[usize] = if one.is_some() { &others } else { &all };
        for &j in candidates.iter().take_while(|j| **j < k.min(best)) {
            let (Some((_, earlier)), Some((_, later))) = (checked.get(j), checked.get(k)) else {
                continue;
            };
            match pair_overlaps(flow, earlier, later, work) {
                Ok(true) => {
                    best = j;
                    break;
                }
                Ok(false) | Err(Split::Outside) => {}
                Err(Split::TooLarge) => {
                    if unchecked.is_none() {
                        unchecked = Some(Unchecked::TooLarge {
                            later: k,
                            earlier: j,
                        });
                    }
                }
                Err(Split::Spent) => {
                    return Some(Unchecked::Spent {
                        later: k,
                        earlier: j,
                    });
                }
            }
        }
        if let Some(slot) = overlaps.get_mut(k) {
            *slot = (best != usize::MAX).then_some(best);
        }
        if let Some(fam) = fam
            && sat
            && firsts.len() < 2
            && firsts.iter().all(|(_, f)| *f != fam)
        {
            firsts.push((k, fam));
        }
    }
    unchecked
}

/// Under `first`, a rule whose `&&` operands include all of an earlier rule's
/// (`days > 3` then `days > 3 && kind == "a"`) implies it, so it is never chosen: reported
/// as shadowed unless the one-field analysis already did, the rule is impossible, or it
/// follows a rule that always holds.
fn implied_rules(
    step_id: &str,
    checked: &[(usize, &Expr)],
    always: Option<usize>,
    rule_spans: &[Span],
    errs: &mut Vec<GraphError>,
) {
    let parts: Vec<(usize, &Expr, Option<Vec<String>>)> = checked
        .iter()
        .map(|(i, c)| (*i, *c, crate::expr::constant::conjuncts(c)))
        .collect();
    for (k, (j, cj, pj)) in parts.iter().enumerate() {
        let Some(pj) = pj else { continue };
        let reported = errs
            .iter()
            .any(|e| matches!(e, GraphError::ShadowedRule { index, .. } if *index == j + 1));
        if reported
            || always.is_some_and(|a| *j > a)
            || crate::expr::constant::fixed_value(cj) == Some(false)
        {
            continue;
        }
        let implied = parts.iter().take(k).any(|(_, _, pi)| {
            pi.as_ref()
                .is_some_and(|pi| pi.iter().all(|p| pj.contains(p)))
        });
        if implied {
            errs.push(GraphError::ShadowedRule {
                id: step_id.to_owned(),
                index: j + 1,
                span: rule_spans.get(*j).copied().unwrap_or_default(),
            });
        }
    }
}

/// A value of the multi-field evaluation: CEL's `&&` and `||` absorb an error when the
/// other side decides.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tri {
    True,
    False,
    /// Reading an absent optional value.
    Error,
}

/// One assignment of the multi-field analysis: a sample point per field and the
/// presence of every path a `has()` tests.
struct Assignment<'a> {
    fields: &'a [(String, Point)],
    present: &'a [(String, bool)],
}

impl Assignment<'_> {
    fn absent(&self, field: &str) -> bool {
        self.present.iter().any(|(p, on)| {
            !*on && (field == p
                || field
                    .strip_prefix(p.as_str())
                    .is_some_and(|r| r.starts_with('.')))
        })
    }
}

/// The value of `e` under `a`; `None` when the analysis cannot tell.
fn eval_multi(e: &Expr, a: &Assignment<'_>) -> Option<Tri> {
    let tri = |b: bool| if b { Tri::True } else { Tri::False };
    match &e.kind {
        ExprKind::Lit(Literal::Bool(b)) => Some(tri(*b)),
        ExprKind::HasVar(n) => a
            .present
            .iter()
            .find(|(p, _)| p == n)
            .map(|(_, on)| tri(*on)),
        ExprKind::Has(inner, f) => {
            let p = format!("{}.{f}", field_of(inner)?);
            a.present
                .iter()
                .find(|(q, _)| *q == p)
                .map(|(_, on)| tri(*on))
        }
        ExprKind::Unary(UnaryOp::Not, x) => Some(match eval_multi(x, a)? {
            Tri::True => Tri::False,
            Tri::False => Tri::True,
            Tri::Error => Tri::Error,
        }),
        ExprKind::Binary(BinaryOp::And, x, y) => {
            let (l, r) = (eval_multi(x, a)?, eval_multi(y, a)?);
            Some(if l == Tri::False || r == Tri::False {
                Tri::False
            } else if l == Tri::Error || r == Tri::Error {
                Tri::Error
            } else {
                Tri::True
            })
        }
        ExprKind::Binary(BinaryOp::Or, x, y) => {
            let (l, r) = (eval_multi(x, a)?, eval_multi(y, a)?);
            Some(if l == Tri::True || r == Tri::True {
                Tri::True
            } else if l == Tri::Error || r == Tri::Error {
                Tri::Error
            } else {
                Tri::False
            })
        }
        ExprKind::Binary(..) => {
            let mut fields = Vec::new();
            let mut ok = true;
            visit(e, &mut |f, _| fields.push(f.to_owned()), &mut ok);
            let [field] = fields.as_slice() else {
                return None;
            };
            if !ok {
                return None;
            }
            if a.absent(field) {
                return Some(Tri::Error);
            }
            let p = &a.fields.iter().find(|(f, _)| f == field)?.1;
            eval_at(e, p).map(tri)
        }
        _ => {
            let field = field_of(e)?;
            if e.ty != Type::Bool {
                return None;
            }
            if a.absent(&field) {
                return Some(Tri::Error);
            }
            match a.fields.iter().find(|(f, _)| *f == field)?.1 {
                Point::Bool(b) => Some(tri(b)),
                _ => None,
            }
        }
    }
}

/// The comparisons and boolean reads of `e` (its leaves under `&&`, `||` and `!`), and
/// the paths its `has()` tests.
fn leaves<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>, has: &mut Vec<String>) {
    match &e.kind {
        ExprKind::Binary(BinaryOp::And | BinaryOp::Or, a, b) => {
            leaves(a, out, has);
            leaves(b, out, has);
        }
        ExprKind::Unary(UnaryOp::Not, a) => leaves(a, out, has),
        ExprKind::HasVar(n) => has.push(n.clone()),
        ExprKind::Has(inner, f) => {
            if let Some(p) = field_of(inner) {
                has.push(format!("{p}.{f}"));
            }
        }
        ExprKind::Lit(_) => {}
        _ => out.push(e),
    }
}

/// The most assignments the multi-field analysis evaluates before it gives up.
const MAX_ASSIGNMENTS: usize = 4096;

/// Why a case split was not carried out.
enum Split {
    /// A rule outside the analysis: two fields compared, a function call, one value
    /// read under two types, or `x` and `size(x)` together.
    Outside,
    /// More than `MAX_ASSIGNMENTS` assignments.
    TooLarge,
    /// The decision's work budget ran out.
    Spent,
}

/// The case split of `rules`: every assignment of a sample point to each field they
/// compare (an `enum` field its values) and of present/absent to each path their
/// `has()` tests. `found` is called with each rule's value under each assignment until
/// it returns true; `Ok(true)` when it did, `Ok(false)` when no assignment made it.
/// The sample points of a field come from the comparisons on it alone, so every
/// combination of the fields' regions is tried: exact for comparisons with literals.
fn case_split(
    flow: &Flow,
    rules: &[&Expr],
    work: &mut Work,
    mut found: impl FnMut(&[Tri]) -> bool,
) -> Result<bool, Split> {
    let mut atoms = Vec::new();
    let mut has = Vec::new();
    for r in rules {
        leaves(r, &mut atoms, &mut has);
    }
    has.sort();
    has.dedup();
    // the regions of each field, from the comparisons on it alone
    let mut by_field: Vec<(String, Type, Vec<&Expr>)> = Vec::new();
    for a in atoms {
        let (field, ty) = subject(a).ok_or(Split::Outside)?;
        match by_field
            .iter_mut()
            .find(|(f, t, _)| *f == field && *t == ty)
        {
            Some((_, _, v)) => v.push(a),
            None => by_field.push((field, ty, vec![a])),
        }
    }
    let mut dims: Vec<(String, Vec<Point>)> = Vec::new();
    for (field, ty, exprs) in &by_field {
        if dims.iter().any(|(f, _)| family(f) == family(field)) {
            return Err(Split::Outside);
        }
        let allowed = if *ty == Type::String {
            allowed_values(flow, field)
        } else {
            None
        };
        dims.push((field.clone(), samples(exprs, ty, allowed.as_deref())));
    }
    let total = dims
        .iter()
        .map(|(_, p)| p.len())
        .chain(has.iter().map(|_| 2))
        .try_fold(1usize, |acc, n| {
            acc.checked_mul(n).filter(|t| *t <= MAX_ASSIGNMENTS)
        })
        .ok_or(Split::TooLarge)?;
    let each: usize = rules.iter().copied().map(cost).sum();
    let mut values = Vec::with_capacity(rules.len());
    for mut k in 0..total {
        if !work.spend(each) {
            return Err(Split::Spent);
        }
        let mut fields = Vec::with_capacity(dims.len());
        for (f, pts) in &dims {
            let n = pts.len().max(1);
            let p = pts.get(k % n).ok_or(Split::Outside)?;
            fields.push((f.clone(), p.clone()));
            k /= n;
        }
        let mut present = Vec::with_capacity(has.len());
        for p in &has {
            present.push((p.clone(), k % 2 == 1));
            k /= 2;
        }
        let a = Assignment {
            fields: &fields,
            present: &present,
        };
        values.clear();
        for r in rules {
            values.push(eval_multi(r, &a).ok_or(Split::Outside)?);
        }
        if found(&values) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether some assignment makes both rules hold (their case split alone).
fn pair_overlaps(flow: &Flow, a: &Expr, b: &Expr, work: &mut Work) -> Result<bool, Split> {
    case_split(flow, &[a, b], work, |v| v.iter().all(|t| *t == Tri::True))
}

/// Whether some rule holds for every value of the fields the rules read and every
/// presence of the paths their `has()` tests (the case split of all the rules), so
/// `kind == "a" && days > 3` / `kind == "a" && days <= 3` / `kind == "b"` is exhaustive
/// over `enum: [a, b]`, and `!has(grade)` / `grade > 3` / `grade <= 3` too. `false` when
/// it cannot tell.
fn covers_every_case(flow: &Flow, checked: &[(usize, &Expr)], work: &mut Work) -> bool {
    let rules: Vec<&Expr> = checked.iter().map(|(_, c)| *c).collect();
    matches!(
        case_split(flow, &rules, work, |v| !v.contains(&Tri::True)),
        Ok(false)
    )
}
