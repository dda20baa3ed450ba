//! Parts of an expression that always fail (decision 110): every maximal constant part
//! (one that reads no context variable) is evaluated once at check time by the direct
//! evaluator ([`Direct`], the one implementation of the language, under the same
//! per-evaluation budget as at run time), and the failures are followed up the tree by
//! CEL's rules: an error reaches the result through every operator that evaluates its
//! operands whatever they are; `&&`/`||` absorb it unless the other side always fails
//! too or never decides; a `?:` branch counts only when the condition picks it or both
//! branches fail; a macro's body may run zero times. A failure that reaches the root
//! makes the whole expression fail whatever the context (`always-fails`); every other
//! part that fails at every evaluation of it, wherever it sits (under `&&`/`||`, in a
//! `?:` branch, in a macro's body), is a failing part (`failing-part`), and so is a
//! `?:` branch that names an unknown time zone given as a zone argument (decisions 6
//! and 110). A part that runs out of a limit is not one: whether it does is the host's
//! configuration, and `&&`/`||` may keep it from running.
//!
//! A part that reads the context may still have known values (decision 128): a `?:`
//! whose branches have them, `i % 1`, and integer arithmetic, a negation or an index
//! over such parts (`-(i - i) + 5`); a division by them, or an index by them, is then
//! tried for each value, and fails always when it fails for each one. A negative
//! index fails for every list, whatever its items. An integer part made of `+`, `-`,
//! a negation, a product by a known number and `int`/`uint` of an integer is a
//! linear form of the parts it reads ([`Form`]): when they cancel (`i + 0 - i`,
//! `2 * i - i - i`, `int(i - i)`), it has one known value.

use std::collections::HashMap;

use super::ast::{BinaryOp, Expr, ExprKind, UnaryOp};
use super::ir::{Direct, Patterns};
use super::overload::Func;
use super::value::{OpError, Value};
use super::{RunError, Type, VarTable};
use crate::limits::SandboxLimits;

/// A part whose evaluation always fails.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// The run-time error it fails with.
    pub error: RunError,
    /// The part (expression bytes): a maximal constant part, or the operation that
    /// fails for every value of its other operands (`x / 0`, an unknown time zone).
    pub span: (usize, usize),
}

/// What the check knows of one part of the expression.
enum Part<'e> {
    /// Reads no context variable: not evaluated yet.
    Closed,
    /// A constant part's value.
    Value(Value),
    /// Fails at every evaluation.
    Fails(Failure),
    /// Reads the context, and has one of these values whenever it does not fail (`b ?
    /// 0 : 0`, `b ? 5 : 6`, `i - i`): never folded, only used where a failure and each
    /// of these values all make the parent fail (a zero divisor, an index).
    FailsOr(Vec<Value>),
    /// An integer part that reads the context, whose value is this form of the parts
    /// it reads whenever it does not fail (`i + 1`, `2 * i - j`).
    Linear(Form<'e>),
    /// Depends on the context, and may succeed.
    Open,
}

/// What the check found for a whole expression.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// It reads no variable and has this value.
    Constant(Value),
    /// It fails at every evaluation, with this failure.
    Fails(Failure),
    /// It depends on the context.
    Varies,
}

/// What the check found for a whole expression and for its parts.
#[derive(Clone, Debug)]
pub struct Analysis {
    /// The whole expression.
    pub outcome: Outcome,
    /// Every part that fails at every evaluation of it, by position (the root's
    /// failure among them when it is one), wherever it sits: a maximal constant part,
    /// an operation that fails for every value of its other operands, or a `?:` branch
    /// given as a time zone that flowc does not know. None runs out of a limit.
    pub failing_parts: Vec<Failure>,
}

/// Evaluates the maximal constant parts of a checked expression and tells whether it
/// always fails (decision 110).
#[must_use]
pub fn outcome(e: &Expr, limits: &SandboxLimits) -> Outcome {
    analyse(e, limits).outcome
}

/// Evaluates the maximal constant parts of a checked expression and tells whether it
/// always fails, and which of its parts fail at every evaluation of them (decision 110).
#[must_use]
pub fn analyse(e: &Expr, limits: &SandboxLimits) -> Analysis {
    let mut w = Walk {
        limits,
        failing: Vec::new(),
        branches: HashMap::new(),
    };
    let p = w.part(e);
    let outcome = match w.settle(e, p) {
        Part::Value(v) => Outcome::Constant(v),
        Part::Fails(f) => Outcome::Fails(f),
        Part::Closed | Part::FailsOr(_) | Part::Linear(_) | Part::Open => Outcome::Varies,
    };
    let mut failing_parts = w.failing;
    failing_parts.retain(|f| !matches!(f.error, RunError::Limit(_)));
    failing_parts.sort_by_key(|f| f.span);
    failing_parts.dedup_by_key(|f| f.span);
    Analysis {
        outcome,
        failing_parts,
    }
}

struct Walk<'l> {
    limits: &'l SandboxLimits,
    /// Every failure found where it starts (a failure followed up the tree is not
    /// found again).
    failing: Vec<Failure>,
    /// The string values of the `?:` branches that are maximal constant parts, by
    /// span: a zone argument's branch that names an unknown zone is found by them.
    branches: HashMap<(usize, usize), Value>,
}

/// Does `v` decide `&&` (false) or `||` (true)?
fn decides(is_and: bool, v: &Part<'_>) -> Option<bool> {
    // (not a `FailsOr`: its failure would not be absorbed)
    match v {
        Part::Value(Value::Bool(b)) => Some(*b != is_and),
        _ => None,
    }
}

/// The values a part can give whenever it does not fail (none when it always fails,
/// `None` when they are not known).
fn successes<'p>(p: &'p Part<'_>) -> Option<&'p [Value]> {
    match p {
        Part::Value(v) => Some(std::slice::from_ref(v)),
        Part::FailsOr(vs) => Some(vs),
        Part::Fails(_) => Some(&[]),
        Part::Closed | Part::Linear(_) | Part::Open => None,
    }
}

/// Most values a part of known values keeps (`b ? 5 : 6` has two), and most
/// combinations of its operands' values tried: past either it is only open.
const MAX_KNOWN: usize = 16;
const MAX_COMBINATIONS: usize = 256;

/// Adds `v` to a set of values unless it holds it already (same type, equal).
fn push_new(vs: &mut Vec<Value>, v: Value) {
    if !vs
        .iter()
        .any(|w| w.type_name() == v.type_name() && super::value::equals(w, &v))
    {
        vs.push(v);
    }
}

/// An operation whose two operands each fail or give known values (a constant,
/// `i - i`, `b ? 5 : 6`, `-(i - i) + 5`; a unary one takes any constant second
/// operand and ignores it): applied by `op` (the value routine both evaluators use) to
/// every pair of them, it gives one of the results whenever it does not fail, and
/// always fails when every pair fails (with the first error). `None` when an operand's
/// values are not known or there are too many.
fn known<'e>(
    pa: &Part<'_>,
    pb: &Part<'_>,
    span: (usize, usize),
    op: impl Fn(&Value, &Value) -> Result<Value, OpError>,
) -> Option<Part<'e>> {
    let (xs, ys) = (successes(pa)?, successes(pb)?);
    if xs.is_empty() || ys.is_empty() || xs.len().saturating_mul(ys.len()) > MAX_COMBINATIONS {
        return None;
    }
    let (mut vs, mut first) = (Vec::new(), None);
    for x in xs {
        for y in ys {
            match op(x, y) {
                Ok(v) => push_new(&mut vs, v),
                Err(err) => {
                    first.get_or_insert(err);
                }
            }
        }
    }
    match first {
        Some(err) if vs.is_empty() => Some(Part::Fails(Failure {
            error: RunError::Op(err),
            span,
        })),
        _ if vs.is_empty() || vs.len() > MAX_KNOWN => None,
        _ => Some(Part::FailsOr(vs)),
    }
}

/// An index into a list whose items are not known by indices that each fail or give
/// known values: it always fails when no list has any of those positions (`nums[-1]`,
/// `nums[b ? -1 : -2]`), with the error of the first.
fn index_fails_for_every_list<'e>(index: &Part<'_>, span: (usize, usize)) -> Option<Part<'e>> {
    let ks = successes(index)?;
    let mut first = None;
    for k in ks {
        if let Ok(Some(_)) = super::value::list_position(k.scalar()) {
            return None;
        }
        if let Err(err) = super::value::list_index::<Value>(&[], k.scalar()) {
            first.get_or_insert(err);
        }
    }
    first.map(|err| {
        Part::Fails(Failure {
            error: RunError::Op(err),
            span,
        })
    })
}

/// Is this the integer zero (a divisor every integer division by fails)?
fn int_zero(v: &Value) -> bool {
    matches!(v, Value::Int(0) | Value::Uint(0))
}

/// Is this an integer type (whose arithmetic is checked: an overflow is an error)?
fn integral(ty: &Type) -> bool {
    matches!(ty, Type::Int | Type::Uint)
}

/// The value `n` of an integer type, when that type holds it.
fn integer_of(ty: &Type, n: i128) -> Option<Value> {
    match ty {
        Type::Int => i64::try_from(n).ok().map(Value::Int),
        Type::Uint => u64::try_from(n).ok().map(Value::Uint),
        _ => None,
    }
}

/// Most parts one linear form names (`i + j - k` names three): past it the part is
/// only open.
const MAX_ATOMS: usize = 16;

/// An integer part as `c + Σ kᵢ·aᵢ`: a number plus a multiple of each part it reads
/// (its atoms: a variable, a field, any integer part that is not itself a form, such
/// as `i * j` or `size(s)`). CEL's integer arithmetic is checked (an overflow or a
/// conversion out of range is an error, never a wrapped value), so whenever such a part
/// does not fail, its value is the form's exact value: with every coefficient zero,
/// the number `c`. Two atoms are one when they are the same expression ([`same_expr`]):
/// the walk never enters a macro's body, so every name it meets is a context
/// variable, and two equal parts read the same values (CEL has no side effects).
#[derive(Clone, Debug)]
struct Form<'e> {
    /// The number.
    c: i128,
    /// Each atom with its coefficient (never zero), no atom twice.
    terms: Vec<(&'e Expr, i128)>,
}

impl<'e> Form<'e> {
    fn number(c: i128) -> Self {
        Form {
            c,
            terms: Vec::new(),
        }
    }

    fn atom(e: &'e Expr) -> Self {
        Form {
            c: 0,
            terms: vec![(e, 1)],
        }
    }

    /// `self + k · other`, unless a coefficient overflows or it names too many atoms.
    fn plus(mut self, k: i128, other: &Form<'e>) -> Option<Self> {
        self.c = self.c.checked_add(k.checked_mul(other.c)?)?;
        for &(atom, n) in &other.terms {
            let n = k.checked_mul(n)?;
            match self.terms.iter_mut().find(|(a, _)| same_expr(a, atom)) {
                Some(term) => term.1 = term.1.checked_add(n)?,
                None => self.terms.push((atom, n)),
            }
        }
        self.terms.retain(|&(_, n)| n != 0);
        (self.terms.len() <= MAX_ATOMS).then_some(self)
    }

    /// The form of `a op b` from its operands' (`+`, `-`, and `*` when one side is a
    /// number; `None` for anything else: a product of two parts that read the context
    /// is an atom).
    fn binary(op: BinaryOp, fa: Option<Self>, fb: Option<Self>) -> Option<Self> {
        let (fa, fb) = (fa?, fb?);
        match op {
            BinaryOp::Add => fa.plus(1, &fb),
            BinaryOp::Sub => fa.plus(-1, &fb),
            BinaryOp::Mul => match (fa.number_only(), fb.number_only()) {
                (Some(k), _) => fb.times(k),
                (None, Some(k)) => fa.times(k),
                (None, None) => None,
            },
            _ => None,
        }
    }

    /// `k · self`.
    fn times(&self, k: i128) -> Option<Self> {
        Form::number(0).plus(k, self)
    }

    /// The number, when no atom is left.
    fn number_only(&self) -> Option<i128> {
        self.terms.is_empty().then_some(self.c)
    }

    /// The form of a settled integer part `e`: a number for a known value, its form, or
    /// itself as an atom (`None`: not an integer part, or it always fails).
    fn of(p: &Part<'e>, e: &'e Expr) -> Option<Self> {
        if !integral(&e.ty) {
            return None;
        }
        match p {
            Part::Value(v) => int_number(v).map(Form::number),
            Part::FailsOr(vs) => match vs.as_slice() {
                [v] => int_number(v).map(Form::number),
                _ => Some(Form::atom(e)),
            },
            Part::Linear(f) => Some(f.clone()),
            Part::Open => Some(Form::atom(e)),
            Part::Closed | Part::Fails(_) => None,
        }
    }
}

/// An integer value as a number.
fn int_number(v: &Value) -> Option<i128> {
    match v {
        Value::Int(n) => Some(i128::from(*n)),
        Value::Uint(n) => Some(i128::from(*n)),
        _ => None,
    }
}

/// What is known of an integer part of type `ty` from the values of its operands
/// (`by_values`: a failure for every one, or the values it gives) and from its linear
/// form: a failure, else its one value when the atoms cancel, else the values, else the
/// form.
fn integer<'e>(ty: &Type, by_values: Option<Part<'e>>, form: Option<Form<'e>>) -> Part<'e> {
    if let Some(Part::Fails(f)) = by_values {
        return Part::Fails(f);
    }
    if let Some(v) = form
        .as_ref()
        .and_then(Form::number_only)
        .and_then(|n| integer_of(ty, n))
    {
        return Part::FailsOr(vec![v]);
    }
    match (by_values, form) {
        (Some(p), _) => p,
        (None, Some(f)) if !f.terms.is_empty() => Part::Linear(f),
        (None, _) => Part::Open,
    }
}

/// Are two parts the same expression (spans apart)? CEL has no side effects, so two
/// such parts have the same value, or both fail.
fn same_expr(a: &Expr, b: &Expr) -> bool {
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    a.walk(&mut |e| xs.push(e));
    b.walk(&mut |e| ys.push(e));
    xs.len() == ys.len() && xs.iter().zip(&ys).all(|(x, y)| same_node(x, y))
}

/// Are two nodes the same, children apart (their number included)?
fn same_node(x: &Expr, y: &Expr) -> bool {
    use ExprKind as K;
    x.ty == y.ty
        && match (&x.kind, &y.kind) {
            (K::Lit(a), K::Lit(b)) => a == b,
            (K::Ident(a), K::Ident(b))
            | (K::HasVar(a), K::HasVar(b))
            | (K::Select(_, a), K::Select(_, b))
            | (K::Has(_, a), K::Has(_, b)) => a == b,
            (K::Index(..), K::Index(..)) | (K::Cond(..), K::Cond(..)) => true,
            (
                K::Call {
                    target: t1,
                    name: n1,
                    args: a1,
                },
                K::Call {
                    target: t2,
                    name: n2,
                    args: a2,
                },
            ) => n1 == n2 && t1.is_some() == t2.is_some() && a1.len() == a2.len(),
            (K::List(a), K::List(b)) => a.len() == b.len(),
            (K::Map(a), K::Map(b)) => a.len() == b.len(),
            (K::Unary(a, _), K::Unary(b, _)) => a == b,
            (K::Binary(a, ..), K::Binary(b, ..)) => a == b,
            (
                K::Comprehension {
                    kind: k1,
                    var: v1,
                    filter: f1,
                    ..
                },
                K::Comprehension {
                    kind: k2,
                    var: v2,
                    filter: f2,
                    ..
                },
            ) => k1 == k2 && v1 == v2 && f1.is_some() == f2.is_some(),
            _ => false,
        }
}

impl Walk<'_> {
    /// Evaluates a closed part with the direct evaluator; other parts as they are.
    fn settle<'e>(&mut self, e: &Expr, p: Part<'e>) -> Part<'e> {
        if !matches!(p, Part::Closed) {
            return p;
        }
        let direct = Direct::lower(e, &VarTable::default(), self.limits, &Patterns::new());
        match direct.eval_value(&[]) {
            Ok(v) => Part::Value(v),
            Err(error) => self.found(Failure {
                error,
                span: e.span,
            }),
        }
    }

    /// A failure where it starts: noted, and the part it makes.
    fn found<'e>(&mut self, f: Failure) -> Part<'e> {
        self.failing.push(f.clone());
        Part::Fails(f)
    }

    /// The parts of the children, each settled unless every one is closed (then the
    /// node is closed too and is evaluated whole by its parent).
    fn children<'e>(&mut self, kids: &[&'e Expr]) -> Option<Vec<Part<'e>>> {
        let parts: Vec<Part<'e>> = kids.iter().map(|k| self.part(k)).collect();
        if parts.iter().all(|p| matches!(p, Part::Closed)) {
            return None;
        }
        Some(
            kids.iter()
                .zip(parts)
                .map(|(k, p)| self.settle(k, p))
                .collect(),
        )
    }

    fn part<'e>(&mut self, e: &'e Expr) -> Part<'e> {
        match &e.kind {
            ExprKind::Lit(_) => Part::Closed,
            // a comprehension's variable is only seen in its body, which is walked
            // only when the whole macro is closed (then it is evaluated whole)
            ExprKind::Ident(_) | ExprKind::HasVar(_) => Part::Open,
            ExprKind::Binary(op @ (BinaryOp::And | BinaryOp::Or), a, b) => {
                let is_and = *op == BinaryOp::And;
                let Some(mut ps) = self.children(&[a, b]) else {
                    return Part::Closed;
                };
                let pb = ps.pop().unwrap_or(Part::Open);
                let pa = ps.pop().unwrap_or(Part::Open);
                match (pa, pb) {
                    // the left side runs first: a limit it runs out of is never absorbed
                    (Part::Fails(f), _) if matches!(f.error, RunError::Limit(_)) => Part::Fails(f),
                    // both fail: the left error, unless the right one is a limit (the
                    // left error waits for the right side, whose limit is never absorbed)
                    (Part::Fails(fa), Part::Fails(fb)) => {
                        if matches!(fb.error, RunError::Limit(_)) {
                            Part::Fails(fb)
                        } else {
                            Part::Fails(fa)
                        }
                    }
                    // an error is absorbed only by a deciding other side
                    (Part::Fails(f), other) | (other, Part::Fails(f))
                        if decides(is_and, &other) == Some(false) =>
                    {
                        Part::Fails(f)
                    }
                    _ => Part::Open,
                }
            }
            ExprKind::Cond(c, a, b) => {
                let Some(ps) = self.children(&[c, a, b]) else {
                    return Part::Closed;
                };
                let mut ps = ps.into_iter();
                let (pc, pa, pb) = (
                    ps.next().unwrap_or(Part::Open),
                    ps.next().unwrap_or(Part::Open),
                    ps.next().unwrap_or(Part::Open),
                );
                for (branch, p) in [(a, &pa), (b, &pb)] {
                    if let Part::Value(v @ Value::String(_)) = p {
                        self.branches.insert(branch.span, v.clone());
                    }
                }
                match (pc, pa, pb) {
                    (Part::Fails(f), _, _)
                    | (Part::Value(Value::Bool(true)), Part::Fails(f), _)
                    | (Part::Value(Value::Bool(false)), _, Part::Fails(f))
                    | (Part::Open, Part::Fails(f), Part::Fails(_)) => Part::Fails(f),
                    // each branch fails or gives known values: so does the whole
                    (_, a, b) => match (successes(&a), successes(&b)) {
                        (Some(x), Some(y)) => {
                            let mut vs: Vec<Value> = Vec::new();
                            for v in x.iter().chain(y) {
                                push_new(&mut vs, v.clone());
                            }
                            Part::FailsOr(vs)
                        }
                        _ => Part::Open,
                    },
                }
            }
            ExprKind::Comprehension {
                range,
                body,
                filter,
                ..
            } => {
                let pr = self.part(range);
                if matches!(pr, Part::Closed) && super::is_constant(e) {
                    return Part::Closed;
                }
                // the body and filter may run zero times: only the range counts for
                // the whole, but a part of them that fails whenever it runs is found
                // (their forms stay inside: within a body a name is one binding)
                for inner in filter.iter().chain([body]) {
                    let p = self.part(inner);
                    self.settle(inner, p);
                }
                match self.settle(range, pr) {
                    Part::Fails(f) => Part::Fails(f),
                    _ => Part::Open,
                }
            }
            _ => self.strict(e),
        }
    }

    /// A node that evaluates every operand whenever it is evaluated: the first operand
    /// that always fails makes it fail.
    fn strict<'e>(&mut self, e: &'e Expr) -> Part<'e> {
        let kids: Vec<&'e Expr> = match &e.kind {
            ExprKind::Select(a, _) | ExprKind::Unary(_, a) | ExprKind::Has(a, _) => vec![&**a],
            ExprKind::Index(a, b) | ExprKind::Binary(_, a, b) => vec![&**a, &**b],
            ExprKind::Call { target, args, .. } => {
                target.iter().map(|t| &**t).chain(args).collect()
            }
            ExprKind::List(items) => items.iter().collect(),
            ExprKind::Map(entries) => entries.iter().flat_map(|(k, v)| [k, v]).collect(),
            _ => Vec::new(),
        };
        let Some(ps) = self.children(&kids) else {
            return Part::Closed;
        };
        if let Some((at, f)) = ps.iter().enumerate().find_map(|(i, p)| match p {
            Part::Fails(f) => Some((i, f.clone())),
            _ => None,
        }) {
            // a limit a later operand always runs out of is reached only when every
            // operand before it succeeds: one that may fail first fails the node with
            // its own error, which `&&`/`||` may absorb where they never absorb a limit
            // (`m[s] in [1].filter(…)` under a tiny budget fails with "no such key"
            // first); the node then fails or not as that operand decides
            if matches!(f.error, RunError::Limit(_))
                && ps.iter().take(at).any(|p| !matches!(p, Part::Value(_)))
            {
                return Part::Open;
            }
            return Part::Fails(f);
        }
        // a timestamp accessor's zone argument of known values (decision 6)
        if let ExprKind::Call {
            target: Some(t),
            name,
            args,
        } = &e.kind
            && t.ty == Type::Timestamp
            && name.starts_with("get")
            && let (Some(zone), Some(zones)) = (args.first(), ps.get(1).and_then(successes))
        {
            return match self.zone(zone, zones) {
                Part::Fails(f) => self.found(f),
                p => p,
            };
        }
        match operation(e, &ps) {
            Part::Fails(f) => self.found(f),
            p => p,
        }
    }

    /// A timestamp accessor's zone argument (`zone`, of known values `zones` whenever
    /// it does not fail): fails for every timestamp when each of them is a zone flowc
    /// does not know; otherwise each `?:` branch (looked through nested ones) that is a
    /// constant zone flowc does not know is a failing part (the call fails whenever it
    /// gives the zone: decision 6).
    fn zone<'e>(&mut self, zone: &Expr, zones: &[Value]) -> Part<'e> {
        let unknown = |v: &Value| match v {
            Value::String(z) if super::time::zone_offset(z).is_none() => {
                Some(OpError::unknown_zone(z))
            }
            _ => None,
        };
        let mut errors = zones.iter().filter_map(unknown);
        if let Some(error) = errors.next()
            && errors.count() + 1 == zones.len()
        {
            return Part::Fails(Failure {
                error: RunError::Op(error),
                span: zone.span,
            });
        }
        let mut pending = vec![zone];
        while let Some(e) = pending.pop() {
            if let Some(error) = self.branches.get(&e.span).and_then(unknown) {
                self.found(Failure {
                    error: RunError::Op(error),
                    span: e.span,
                });
            } else if let ExprKind::Cond(_, a, b) = &e.kind {
                pending.extend([&**a, &**b]);
            }
        }
        Part::Open
    }
}

/// A strict node none of whose operands always fails, from what is known of them
/// (`ps`, settled): a failure for every value they can give, the values it can give,
/// its linear form, or open.
fn operation<'e>(e: &'e Expr, ps: &[Part<'e>]) -> Part<'e> {
    match &e.kind {
        // `x / 0` and `x % 0` on integers fail for every `x`
        ExprKind::Binary(BinaryOp::Div | BinaryOp::Rem, a, _)
            if integral(&a.ty)
                && ps
                    .get(1)
                    .and_then(successes)
                    .is_some_and(|vs| vs.iter().all(int_zero)) =>
        {
            Part::Fails(Failure {
                error: RunError::Op(OpError::DivisionByZero),
                span: e.span,
            })
        }
        // `x % 1` (and `x % -1`) on integers is zero whenever it does not fail
        ExprKind::Binary(BinaryOp::Rem, a, _)
            if integral(&a.ty)
                && ps.get(1).and_then(successes).is_some_and(|vs| {
                    !vs.is_empty()
                        && vs
                            .iter()
                            .all(|v| matches!(v, Value::Int(1 | -1) | Value::Uint(1)))
                }) =>
        {
            integer(&a.ty, None, Some(Form::number(0)))
        }
        // integer arithmetic: the values its operands' known values give (`i - i + 5`,
        // `-(i - i)`), or a failure for every one of them; `+`, `-` and a product by a
        // number keep the linear form (`i + 0 - i`, `0 * i`)
        ExprKind::Binary(
            op @ (BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem),
            a,
            b,
        ) if integral(&a.ty) => match ps {
            [pa, pb] => {
                let by_values = known(pa, pb, e.span, |x, y| {
                    super::value::arith(super::ir::arith(*op), x, y)
                });
                let form = Form::binary(*op, Form::of(pa, a), Form::of(pb, b));
                integer(&e.ty, by_values, form)
            }
            _ => Part::Open,
        },
        ExprKind::Unary(UnaryOp::Neg, a) if integral(&a.ty) => match ps {
            [pa] => integer(
                &e.ty,
                known(pa, &Part::Value(Value::Null), e.span, |x, _| {
                    super::value::negate(x)
                }),
                Form::of(pa, a).and_then(|f| f.times(-1)),
            ),
            _ => Part::Open,
        },
        // `int(x)` and `uint(x)` of an integer give its value or fail (out of range)
        ExprKind::Call {
            target: None,
            name,
            args,
        } if integral(&e.ty)
            && let [a] = args.as_slice()
            && integral(&a.ty)
            && let Some(to @ (Func::Int | Func::Uint)) = Func::by_name(name) =>
        {
            match ps {
                [pa] => integer(
                    &e.ty,
                    known(pa, &Part::Value(Value::Null), e.span, |x, _| {
                        super::value::convert(to, x)
                    }),
                    Form::of(pa, a),
                ),
                _ => Part::Open,
            }
        }
        // indexing: the values its operands' known values give, or a failure for
        // every one of them (the error of the first); into a list whose items are
        // not known, a failure when no list has any of the positions
        ExprKind::Index(a, _) => match ps {
            [pa, pb] => known(pa, pb, e.span, super::value::index)
                .or_else(|| {
                    matches!(a.ty, Type::List(_))
                        .then(|| index_fails_for_every_list(pb, e.span))
                        .flatten()
                })
                .unwrap_or(Part::Open),
            _ => Part::Open,
        },
        _ => Part::Open,
    }
}
