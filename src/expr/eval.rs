//! The direct evaluator: runs a lowered [`Direct`] tree over slot-indexed bindings.
//!
//! It gives what the sandboxed Rhai program gives (the differential tests hold the two
//! equal, values and errors) without an interpreter: slots are read by index, typed
//! nodes compare and compute on unboxed numbers and strings, values are borrowed from
//! the bindings rather than cloned, and comprehension variables live in frames on the
//! Rust stack, so a condition that builds no new list or string allocates nothing.
//!
//! Bounds hold as in the sandbox: every evaluation has a cost budget (the sandbox's
//! operation limit), charged per comprehension step and per element searched by `in`,
//! and the strings and lists it builds are bounded by the sandbox's sizes; running out
//! is [`RunError::Limit`], which no `&&`/`||` absorbs (fail closed).

use std::cell::Cell;
use std::cmp::Ordering;

use super::ast::Macro;
use std::sync::atomic::Ordering as AtomicOrdering;

use super::RunError;
use super::ir::{Bounds, Direct, Fold, Node, Slot};
use super::overload::{Operator, Site};
use super::typed::Typed;
use super::value::{self, Logic, OpError, Value};

type Fail = Box<RunError>;

#[expect(
    clippy::unnecessary_box_returns,
    reason = "errors travel boxed so the hot path's results stay small"
)]
fn op(e: OpError) -> Fail {
    Box::new(RunError::Op(e))
}

#[expect(
    clippy::unnecessary_box_returns,
    reason = "errors travel boxed so the hot path's results stay small"
)]
fn no_overload(name: &str, v: &Value) -> Fail {
    op(OpError::NoMatchingOverload {
        op: name.to_owned(),
        args: v.type_name().to_owned(),
    })
}

fn is_limit(e: &RunError) -> bool {
    matches!(e, RunError::Limit(_))
}

/// A value borrowed from the bindings or the tree, or computed.
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

    fn into_value(self) -> Value {
        match self {
            Out::Ref(v) => v.clone(),
            Out::Own(v) => v,
        }
    }
}

/// A comprehension variable's value, linked to the enclosing frames.
struct Frame<'a> {
    value: &'a Value,
    up: Option<&'a Frame<'a>>,
}

/// One evaluation: the bindings, the innermost frame, the remaining budget.
struct Cx<'a> {
    slots: &'a [Option<Value>],
    frame: Option<&'a Frame<'a>>,
    budget: &'a Cell<u64>,
    bounds: &'a Bounds,
}

impl Cx<'_> {
    fn charge(&self, units: u64) -> Result<(), Fail> {
        let left = self.budget.get();
        if units > left {
            return Err(self.spent());
        }
        self.budget.set(left - units);
        Ok(())
    }

    /// The budget ran out.
    #[expect(
        clippy::unnecessary_box_returns,
        reason = "errors travel boxed so the hot path's results stay small"
    )]
    fn spent(&self) -> Fail {
        self.budget.set(0);
        Box::new(RunError::budget(self.bounds.cost))
    }

    /// Charges what a [`Site`] costs on its operands ([`value::site_cost`], the one
    /// routine of both paths), and gives what `==` and `in` decide.
    fn site(&self, site: Site, operands: &[&Value]) -> Result<bool, Fail> {
        match value::site_cost(site, operands, self.budget.get()).map_err(op)? {
            Some(p) => {
                self.charge(p.units)?;
                Ok(p.holds)
            }
            None => Err(self.spent()),
        }
    }

    /// A value built fits the bounds ([`Bounds::fits`]).
    fn fits(&self, v: &Value) -> Result<(), Fail> {
        self.bounds.fits(v).map_err(Box::new)
    }
}

impl Direct {
    /// Evaluates a condition.
    ///
    /// # Errors
    /// The CEL run-time error, a bound, or a result that is not a bool.
    pub fn eval_bool(&self, slots: &[Option<Value>]) -> Result<bool, RunError> {
        let budget = Cell::new(self.bounds.cost);
        if let Some(b) = self.root.typed(&Typed::new(slots, &budget)) {
            return Ok(b);
        }
        // the typed path gave up: the exact path from the start, with a full budget
        budget.set(self.bounds.cost);
        self.eval_bool_within(slots, &budget)
    }

    /// The rule a decision routes by, on the typed path (`expr::typed`): `Some(Some(i))`
    /// for the first rule that holds (under `unique`, the only one), `Some(None)` when no
    /// rule holds, `None` when the exact path must decide (a rule gave up, or under
    /// `unique` a second rule holds). The rules share one budget, as on the exact path.
    #[must_use]
    pub fn decide_typed(
        rules: &[Direct],
        slots: &[Option<Value>],
        unique: bool,
    ) -> Option<Option<usize>> {
        let budget = Cell::new(rules.first().map_or(0, Direct::budget));
        let t = Typed::new(slots, &budget);
        let mut hit = None;
        for (i, r) in rules.iter().enumerate() {
            if r.root.typed(&t)? {
                if !unique {
                    return Some(Some(i));
                }
                if hit.is_some() {
                    return None;
                }
                hit = Some(i);
            }
        }
        Some(hit)
    }

    /// Evaluates a condition against a budget shared with other conditions (the rules
    /// of one decision share one, as they share one program in the sandbox).
    ///
    /// # Errors
    /// As [`Direct::eval_bool`].
    pub fn eval_bool_within(
        &self,
        slots: &[Option<Value>],
        budget: &Cell<u64>,
    ) -> Result<bool, RunError> {
        let cx = Cx {
            slots,
            frame: None,
            budget,
            bounds: &self.bounds,
        };
        match self.root.test(&cx) {
            Ok(Logic::B(b)) => Ok(b),
            Ok(Logic::Err(e)) | Err(e) => Err(*e),
            Ok(Logic::Other(t)) if self.root_bool => Err(RunError::ResultType {
                expected: "bool",
                got: t.to_owned(),
            }),
            Ok(Logic::Other(t)) => Err(RunError::Op(OpError::NoMatchingOverload {
                op: "condition".to_owned(),
                args: t.to_owned(),
            })),
        }
    }

    /// Evaluates to a value.
    ///
    /// # Errors
    /// The CEL run-time error or a bound.
    pub fn eval_value(&self, slots: &[Option<Value>]) -> Result<Value, RunError> {
        let budget = Cell::new(self.bounds.cost);
        let cx = Cx {
            slots,
            frame: None,
            budget: &budget,
            bounds: &self.bounds,
        };
        self.root.eval(&cx).map(Out::into_value).map_err(|e| *e)
    }

    /// The budget one evaluation starts with.
    #[must_use]
    pub fn budget(&self) -> u64 {
        self.bounds.cost
    }
}

fn f64_of(o: &Out<'_>) -> Option<f64> {
    match o.get() {
        Value::Double(d) => Some(*d),
        _ => None,
    }
}

fn i64_of(o: &Out<'_>) -> Option<i64> {
    match o.get() {
        Value::Int(i) => Some(*i),
        _ => None,
    }
}

impl Node {
    /// A double-typed node's value without building a [`Value`] (`None`: the value is
    /// not a double, so the caller falls back to the generic operation).
    fn f64(&self, cx: &Cx<'_>) -> Result<Option<f64>, Fail> {
        Ok(match self {
            Node::Lit(Value::Double(d)) => Some(*d),
            Node::Slot(i, name) => match Node::slot(cx, *i, name)? {
                Value::Double(d) => Some(*d),
                _ => None,
            },
            Node::ArithF64(o, a, b) => match (a.f64(cx)?, b.f64(cx)?) {
                (Some(p), Some(q)) => o.doubles(p, q),
                _ => match self.eval(cx)?.get() {
                    Value::Double(d) => Some(*d),
                    _ => None,
                },
            },
            _ => match self.eval(cx)?.get() {
                Value::Double(d) => Some(*d),
                _ => None,
            },
        })
    }

    fn slot<'a>(cx: &Cx<'a>, i: usize, name: &str) -> Result<&'a Value, Fail> {
        cx.slots
            .get(i)
            .and_then(Option::as_ref)
            .ok_or_else(|| Box::new(RunError::Unbound(name.to_owned())))
    }

    /// A bool-typed reading: `B` for a bool, `Err` for an error that `&&`/`||` may
    /// absorb, `Other` for a value of another type; `Err(..)` outside for a bound
    /// (never absorbed).
    fn test(&self, cx: &Cx<'_>) -> Result<Logic<Fail>, Fail> {
        let r = match self {
            Node::SlotCmpF64(i, name, rel, lit) => Node::slot(cx, *i, name).and_then(|v| {
                Ok(match v {
                    Value::Double(d) => rel.doubles(*d, *lit),
                    other => value::relation(*rel, other, &Value::Double(*lit)).map_err(op)?,
                })
            }),
            Node::SlotCmpI64(i, name, rel, lit) => Node::slot(cx, *i, name).and_then(|v| {
                Ok(match v {
                    Value::Int(x) => rel.ints(*x, *lit),
                    other => value::relation(*rel, other, &Value::Int(*lit)).map_err(op)?,
                })
            }),
            Node::Logic(is_and, a, b) => {
                let l = a.test(cx)?;
                if matches!(l, Logic::B(x) if value::decides(*is_and, x)) {
                    return Ok(l);
                }
                let r = b.test(cx)?;
                return Ok(value::and_or(*is_and, l, r, op));
            }
            Node::Not(a) => {
                return Ok(match a.test(cx)? {
                    Logic::B(b) => Logic::B(!b),
                    Logic::Err(e) => Logic::Err(e),
                    Logic::Other(t) => Logic::Err(op(OpError::NoMatchingOverload {
                        op: "!".to_owned(),
                        args: t.to_owned(),
                    })),
                });
            }
            Node::CmpF64(rel, a, b) => match a.f64(cx).and_then(|p| Ok((p, b.f64(cx)?))) {
                Ok((Some(p), Some(q))) => Ok(rel.doubles(p, q)),
                Err(e) => Err(e),
                // not doubles after all (bindings of another type): the generic operation
                Ok(_) => {
                    return match self.eval(cx) {
                        Ok(v) => Ok(match v.get() {
                            Value::Bool(b) => Logic::B(*b),
                            other => Logic::Other(other.type_name()),
                        }),
                        Err(e) => absorbable(e),
                    };
                }
            },
            Node::EqStr(eq, a, lit) => a
                .eval(cx)
                .and_then(|v| Ok(cx.site(Site::Equality, &[v.get(), lit])? == *eq)),
            Node::InStrs(a, set) => a.eval(cx).map(|v| match v.get() {
                Value::String(s) => value::str_in(s, set),
                other => set
                    .iter()
                    .any(|x| value::equals(other, &Value::String(std::sync::Arc::clone(x)))),
            }),
            Node::StrLit(row, a, lit) => a.eval(cx).and_then(|v| match v.get() {
                Value::String(s) => {
                    cx.charge(value::str_pair_cost(row.size, s, lit, cx.budget.get()))?;
                    Ok(value::str_test(row.func, s, lit))
                }
                other => {
                    value::string_fn(row.func, other, &Value::String(std::sync::Arc::clone(lit)))
                        .map_err(op)
                }
            }),
            _ => {
                return match self.eval(cx) {
                    Ok(v) => Ok(match v.get() {
                        Value::Bool(b) => Logic::B(*b),
                        other => Logic::Other(other.type_name()),
                    }),
                    Err(e) => absorbable(e),
                };
            }
        };
        match r {
            Ok(b) => Ok(Logic::B(b)),
            Err(e) => absorbable(e),
        }
    }

    /// The truth of a condition inside a tree (`?:`, `exists_one`, `filter`): a
    /// non-bool is the same "no matching overload for `condition`" as in the sandbox.
    fn truth(&self, cx: &Cx<'_>) -> Result<bool, Fail> {
        match self.test(cx)? {
            Logic::B(b) => Ok(b),
            Logic::Err(e) => Err(e),
            Logic::Other(t) => Err(op(OpError::NoMatchingOverload {
                op: "condition".to_owned(),
                args: t.to_owned(),
            })),
        }
    }

    #[expect(clippy::too_many_lines, reason = "one match over the node kinds")]
    fn eval<'a>(&'a self, cx: &Cx<'a>) -> Result<Out<'a>, Fail> {
        Ok(match self {
            Node::Lit(v) => Out::Ref(v),
            Node::Slot(i, name) => Out::Ref(Node::slot(cx, *i, name)?),
            Node::Local(depth) => {
                let mut f = cx.frame;
                for _ in 0..*depth {
                    f = f.and_then(|f| f.up);
                }
                match f {
                    Some(f) => Out::Ref(f.value),
                    None => return Err(Box::new(RunError::Unbound(format!("local {depth}")))),
                }
            }
            Node::Unbound(name) => return Err(Box::new(RunError::Unbound(name.to_string()))),
            Node::Field(a, f, at) => match a.eval(cx)? {
                Out::Ref(v) => Out::Ref(field(v, f, at).map_err(op)?),
                Out::Own(v) => Out::Own(field(&v, f, at).map_err(op)?.clone()),
            },
            // the sandbox copies this field's value (`cel_select`): charged on both paths
            Node::FieldCopied(a, f, at) => match a.eval(cx)? {
                Out::Ref(v) => {
                    let x = field(v, f, at).map_err(op)?;
                    cx.site(Site::Take, &[x])?;
                    Out::Ref(x)
                }
                Out::Own(v) => {
                    let x = field(&v, f, at).map_err(op)?;
                    cx.site(Site::Take, &[x])?;
                    Out::Own(x.clone())
                }
            },
            Node::Bound(i) => Out::Own(Value::Bool(cx.slots.get(*i).is_some_and(Option::is_some))),
            Node::Has(a, f) => Out::Own(Value::Bool(value::has(a.eval(cx)?.get(), f).map_err(op)?)),
            Node::Index(a, i) => {
                let a = a.eval(cx)?;
                let i = i.eval(cx)?;
                // a map lookup reads its key: charged before it
                if let Value::Map(_) = a.get() {
                    cx.site(Site::Key, &[i.get()])?;
                }
                let v = value::index(a.get(), i.get()).map_err(op)?;
                // the sandbox copies the element it takes: charged on both paths
                cx.site(Site::Take, &[&v])?;
                Out::Own(v)
            }
            Node::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for i in items {
                    let v = i.eval(cx)?;
                    cx.site(Site::Literal, &[v.get()])?;
                    out.push(v.into_value());
                }
                Out::Own(Value::List(std::sync::Arc::new(out)))
            }
            Node::Map(entries) => {
                let mut pairs = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    // the key and the value placed into the map built: charged as
                    // values placed into a built list
                    let k = k.eval(cx)?;
                    cx.site(Site::Literal, &[k.get()])?;
                    let k = k.into_value();
                    let v = v.eval(cx)?;
                    cx.site(Site::Literal, &[v.get()])?;
                    pairs.push((k, v.into_value()));
                }
                Out::Own(value::build_map(pairs).map_err(op)?)
            }
            Node::Neg(a) => Out::Own(value::negate(a.eval(cx)?.get()).map_err(op)?),
            Node::Not(_)
            | Node::Logic(..)
            | Node::SlotCmpF64(..)
            | Node::SlotCmpI64(..)
            | Node::EqStr(..)
            | Node::InStrs(..)
            | Node::StrLit(..) => match self.test(cx)? {
                Logic::B(b) => Out::Own(Value::Bool(b)),
                Logic::Err(e) => return Err(e),
                Logic::Other(t) => {
                    return Err(op(OpError::NoMatchingOverload {
                        op: "!".to_owned(),
                        args: t.to_owned(),
                    }));
                }
            },
            Node::Cond(c, a, b) => {
                if c.truth(cx)? {
                    a.eval(cx)?
                } else {
                    b.eval(cx)?
                }
            }
            Node::CmpF64(rel, a, b) => {
                if let (Some(p), Some(q)) = (a.f64(cx)?, b.f64(cx)?) {
                    return Ok(Out::Own(Value::Bool(rel.doubles(p, q))));
                }
                let (x, y) = (a.eval(cx)?, b.eval(cx)?);
                Out::Own(Value::Bool(
                    value::relation(*rel, x.get(), y.get()).map_err(op)?,
                ))
            }
            Node::CmpI64(rel, a, b) => {
                let (x, y) = (a.eval(cx)?, b.eval(cx)?);
                Out::Own(Value::Bool(match (i64_of(&x), i64_of(&y)) {
                    (Some(p), Some(q)) => rel.ints(p, q),
                    _ => value::relation(*rel, x.get(), y.get()).map_err(op)?,
                }))
            }
            Node::Cmp(rel, a, b) => {
                let (x, y) = (a.eval(cx)?, b.eval(cx)?);
                cx.charge(value::sized_cost(
                    Operator::Ordering.sizing(),
                    &[x.get(), y.get()],
                    cx.budget.get(),
                ))?;
                Out::Own(Value::Bool(
                    value::relation(*rel, x.get(), y.get()).map_err(op)?,
                ))
            }
            Node::Eq(eq, a, b) => {
                let (x, y) = (a.eval(cx)?, b.eval(cx)?);
                Out::Own(Value::Bool(
                    cx.site(Site::Equality, &[x.get(), y.get()])? == *eq,
                ))
            }
            Node::InInts(a, set) => {
                let v = a.eval(cx)?;
                Out::Own(Value::Bool(match v.get() {
                    Value::Int(i) => value::int_in(*i, set),
                    other => set.iter().any(|i| value::equals(other, &Value::Int(*i))),
                }))
            }
            Node::InLits(a, items) => {
                let v = a.eval(cx)?;
                Out::Own(Value::Bool(value::in_items(v.get(), items)))
            }
            Node::In(a, b) => {
                let (x, y) = (a.eval(cx)?, b.eval(cx)?);
                Out::Own(Value::Bool(cx.site(Site::Membership, &[x.get(), y.get()])?))
            }
            Node::ArithF64(o, a, b) => {
                let (x, y) = (a.eval(cx)?, b.eval(cx)?);
                match (f64_of(&x), f64_of(&y)) {
                    (Some(p), Some(q)) => match o.doubles(p, q) {
                        Some(r) => Out::Own(Value::Double(r)),
                        None => Out::Own(value::arith(*o, x.get(), y.get()).map_err(op)?),
                    },
                    _ => Out::Own(value::arith(*o, x.get(), y.get()).map_err(op)?),
                }
            }
            Node::ArithI64(o, a, b) => {
                let (x, y) = (a.eval(cx)?, b.eval(cx)?);
                match (i64_of(&x), i64_of(&y)) {
                    (Some(p), Some(q)) => Out::Own(Value::Int(o.ints(p, q).map_err(op)?)),
                    _ => Out::Own(value::arith(*o, x.get(), y.get()).map_err(op)?),
                }
            }
            Node::Arith(o, a, b) => {
                let (x, y) = (a.eval(cx)?, b.eval(cx)?);
                cx.charge(value::sized_cost(
                    Operator::from(*o).sizing(),
                    &[x.get(), y.get()],
                    cx.budget.get(),
                ))?;
                let v = value::arith(*o, x.get(), y.get()).map_err(op)?;
                cx.fits(&v)?;
                Out::Own(v)
            }
            Node::Matches(a, re) => match a.eval(cx)?.get() {
                Value::String(s) => {
                    cx.charge(re.match_cost(s))?;
                    Out::Own(Value::Bool(value::re_match(re.regex(), s)))
                }
                other => {
                    return Err(op(value::overload(
                        "matches",
                        &[other, &Value::string(re.regex().as_str())],
                    )));
                }
            },
            Node::Call(f, args) => match &**args {
                [a] => {
                    let a = a.eval(cx)?;
                    cx.charge(value::call_cost(*f, &[a.get()], cx.budget.get()))?;
                    Out::Own(f.apply(&[a.get()]).map_err(op)?)
                }
                [a, b] => {
                    let a = a.eval(cx)?;
                    let b = b.eval(cx)?;
                    cx.charge(value::call_cost(*f, &[a.get(), b.get()], cx.budget.get()))?;
                    Out::Own(f.apply(&[a.get(), b.get()]).map_err(op)?)
                }
                _ => {
                    return Err(op(OpError::InvalidArgument("unknown function".to_owned())));
                }
            },
            Node::NoFunction(args) => {
                for a in args {
                    a.eval(cx)?;
                }
                return Err(op(OpError::InvalidArgument("unknown function".to_owned())));
            }
            Node::Fold(fold) => fold.run(cx)?,
        })
    }
}

/// `a.f`: first at the field's last position, else [`value::field`] (which also gives
/// the errors).
pub(super) fn field<'a>(v: &'a Value, name: &str, at: &Slot) -> Result<&'a Value, OpError> {
    if let Value::Map(m) = v {
        let hint = at.0.load(AtomicOrdering::Relaxed);
        if let Some((Value::String(k), x)) = m.get(hint)
            && **k == *name
        {
            return Ok(x);
        }
        if let Some(p) = m
            .iter()
            .position(|(k, _)| matches!(k, Value::String(s) if **s == *name))
        {
            at.0.store(p, AtomicOrdering::Relaxed);
        }
    }
    value::field(v, name)
}

/// An error as a `&&`/`||` operand: absorbable unless it is a bound.
fn absorbable(e: Fail) -> Result<Logic<Fail>, Fail> {
    if is_limit(&e) {
        Err(e)
    } else {
        Ok(Logic::Err(e))
    }
}

/// The elements a comprehension visits: a list's items, or a map's keys (string keys
/// in sorted order, as the sandbox's maps keep them; other keys in insertion order).
fn keys_order(m: &[(Value, Value)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..m.len()).collect();
    if m.iter().all(|(k, _)| matches!(k, Value::String(_))) {
        order.sort_by(|&x, &y| match (m.get(x), m.get(y)) {
            (Some((Value::String(p), _)), Some((Value::String(q), _))) => p.cmp(q),
            _ => Ordering::Equal,
        });
    }
    order
}

impl Fold {
    fn run<'a>(&'a self, cx: &Cx<'a>) -> Result<Out<'a>, Fail> {
        let range = self.range.eval(cx)?;
        match range.get() {
            Value::List(items) => self.over(cx, items.iter()),
            Value::Map(m) => {
                let order = keys_order(m);
                self.over(cx, order.iter().filter_map(|&i| m.get(i).map(|(k, _)| k)))
            }
            other => Err(no_overload("comprehension", other)),
        }
        .map(Out::Own)
    }

    fn over<'v>(&self, cx: &Cx<'_>, elems: impl Iterator<Item = &'v Value>) -> Result<Value, Fail> {
        let mut acc: Logic<Fail> = Logic::B(self.kind == Macro::All);
        let mut count = 0u32;
        let mut out: Vec<Value> = Vec::new();
        for v in elems {
            cx.charge(self.step_cost)?;
            // the element the variable takes (the sandbox copies it)
            cx.site(Site::Step, &[v])?;
            let frame = Frame {
                value: v,
                up: cx.frame,
            };
            let inner = Cx {
                slots: cx.slots,
                frame: Some(&frame),
                budget: cx.budget,
                bounds: cx.bounds,
            };
            match self.kind {
                Macro::All | Macro::Exists => {
                    let is_and = self.kind == Macro::All;
                    let b = self.body.test(&inner)?;
                    acc = value::and_or(is_and, acc, b, op);
                    if matches!(acc, Logic::B(x) if value::decides(is_and, x)) {
                        break;
                    }
                }
                Macro::ExistsOne => {
                    if self.body.truth(&inner)? {
                        count += 1;
                    }
                }
                Macro::Map => {
                    let keep = match &self.filter {
                        Some(f) => f.truth(&inner)?,
                        None => true,
                    };
                    if keep {
                        let v = self.body.eval(&inner)?;
                        cx.site(Site::Step, &[v.get()])?;
                        out.push(v.into_value());
                        cx.bounds.list_fits(out.len()).map_err(Box::new)?;
                    }
                }
                Macro::Filter => {
                    if self.body.truth(&inner)? {
                        cx.site(Site::Step, &[v])?;
                        out.push(v.clone());
                        cx.bounds.list_fits(out.len()).map_err(Box::new)?;
                    }
                }
            }
        }
        Ok(match self.kind {
            Macro::All | Macro::Exists => match acc {
                Logic::B(b) => Value::Bool(b),
                Logic::Err(e) => return Err(e),
                Logic::Other(t) => {
                    return Err(op(OpError::NoMatchingOverload {
                        op: "&&".to_owned(),
                        args: t.to_owned(),
                    }));
                }
            },
            Macro::ExistsOne => Value::Bool(count == 1),
            // each element was checked against the list bound as it was added
            Macro::Map | Macro::Filter => Value::List(std::sync::Arc::new(out)),
        })
    }
}
