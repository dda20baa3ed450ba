//! The only place a Rhai engine is built. It can compute and nothing else: no I/O,
//! no `eval`, no modules, no loops but bounded `for` over finite collections, and
//! explicit bounds on operations, call depth, expression depth and sizes.

use std::sync::Arc;

use rhai::{
    AST, Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map, OptimizationLevel, Position,
    Scope,
};

pub use crate::expr::RunError;
use crate::expr::codegen::Constant;
use crate::expr::ir::Bounds;
use crate::expr::overload::{Func, Operator, Site};
use crate::expr::value::{self, Arith, Logic, MapView, OpError, Rel, Scalar, Value, View};
use crate::expr::{rhai_const, rhai_var};
use crate::limits::{Limits, SandboxLimits};

/// The budget of the evaluation running on this thread, in the direct path's units:
/// the natives charge exactly what the direct path charges, where it charges it (a
/// comprehension step's `ir::step_cost` through `cel_step`, the elements `in`
/// compares, the bytes `+` and conversions build), so both paths run out of budget at
/// the same point. Rhai's own operation count is only a safety net against a hang
/// (`ops_max`, see [`Limits::SANDBOX_OPS_PER_UNIT`]): the progress hook stops the
/// program past it, with the same budget error.
#[derive(Clone, Copy, Debug, Default)]
struct Meter {
    /// Units of the budget.
    max: u64,
    /// Units charged so far.
    spent: u64,
    /// Rhai operations allowed before the safety net stops the program.
    ops_max: u64,
}

thread_local! {
    static METER: std::cell::Cell<Meter> = const { std::cell::Cell::new(Meter { max: 0, spent: 0, ops_max: 0 }) };
}

/// Units left in this thread's evaluation.
fn units_left() -> u64 {
    let m = METER.get();
    m.max.saturating_sub(m.spent)
}

/// Charges units to this thread's evaluation (the error is Rhai's, which no `catch`
/// catches: a bound fails the evaluation closed).
fn charge(units: u64) -> Result<(), Box<EvalAltResult>> {
    if units > units_left() {
        return Err(EvalAltResult::ErrorTooManyOperations(Position::NONE).into());
    }
    let mut m = METER.get();
    m.spent = m.spent.saturating_add(units);
    METER.set(m);
    Ok(())
}

/// Charges what a [`Site`] costs on its operands ([`value::site_cost`], the one routine
/// the direct path's nodes charge it by), and gives what `==` and `in` decide.
fn at_site(site: Site, operands: &[&Dynamic]) -> Result<bool, Box<EvalAltResult>> {
    match value::site_cost(site, operands, units_left()).map_err(raise)? {
        Some(p) => {
            charge(p.units)?;
            Ok(p.holds)
        }
        None => Err(EvalAltResult::ErrorTooManyOperations(Position::NONE).into()),
    }
}

/// A value that Rhai has no native form for (uint, bytes, timestamp, duration,
/// maps with non-string keys).
#[derive(Clone, Debug)]
pub(crate) struct Boxed(pub Value);

/// A literal `matches` pattern compiled when its condition was built: a constant of
/// the program (`codegen::Constant::Regex`), folded into its AST, so an evaluation
/// never looks it up (the regex the direct path's `Matches` node holds).
#[derive(Clone, Debug)]
struct Pattern(value::LiteralRegex);

/// A captured error inside error-absorbing `&&`, `||` and macros.
#[derive(Clone, Debug)]
struct Captured(Arc<RunError>);

#[expect(
    clippy::unnecessary_box_returns,
    reason = "Rhai's API takes its error boxed"
)]
fn raise(e: OpError) -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(
        Dynamic::from(Captured(Arc::new(RunError::Op(e)))),
        Position::NONE,
    )
    .into()
}

/// A bound passed inside a native: Rhai's `ErrorTerminated`, which no `catch`
/// catches (a bound fails the evaluation closed, never absorbed by `&&`/`||`),
/// carrying the bound's own error.
#[expect(
    clippy::unnecessary_box_returns,
    reason = "Rhai's API takes its error boxed"
)]
fn limit(e: RunError) -> Box<EvalAltResult> {
    EvalAltResult::ErrorTerminated(Dynamic::from(Captured(Arc::new(e))), Position::NONE).into()
}

/// Rhai value → CEL value.
pub(crate) fn from_dynamic(d: &Dynamic) -> Value {
    if d.is_unit() {
        return Value::Null;
    }
    if let Ok(b) = d.as_bool() {
        return Value::Bool(b);
    }
    if let Ok(i) = d.as_int() {
        return Value::Int(i);
    }
    if let Ok(f) = d.as_float() {
        return Value::Double(f);
    }
    if let Ok(s) = d.as_immutable_string_ref() {
        return Value::string(s.as_str());
    }
    if let Ok(a) = d.as_array_ref() {
        return Value::List(Arc::new(a.iter().map(from_dynamic).collect()));
    }
    if let Ok(m) = d.as_map_ref() {
        return Value::map(
            m.iter()
                .map(|(k, v)| (Value::string(k.as_str()), from_dynamic(v)))
                .collect(),
        );
    }
    if let Some(b) = d.read_lock::<Boxed>() {
        return b.0.clone();
    }
    Value::Null
}

/// CEL value → Rhai value.
pub(crate) fn to_dynamic(v: &Value) -> Dynamic {
    match v {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(*b),
        Value::Int(i) => Dynamic::from_int(*i),
        Value::Double(f) => Dynamic::from_float(*f),
        Value::String(s) => Dynamic::from(ImmutableString::from(&**s)),
        Value::List(l) => Dynamic::from_array(l.iter().map(to_dynamic).collect()),
        Value::Map(m) if m.iter().all(|(k, _)| matches!(k, Value::String(_))) => {
            let mut map = Map::new();
            for (k, v) in m.iter() {
                if let Value::String(s) = k {
                    map.insert((&**s).into(), to_dynamic(v));
                }
            }
            Dynamic::from_map(map)
        }
        other => Dynamic::from(Boxed(other.clone())),
    }
}

/// A Rhai value read in place by the value-level rules (`value::View`): a scalar
/// without converting it, a list's or map's length without copying it.
// (each `as_…` is tried only where `is_…` holds: a failed `as_…` names the value's type,
// work the natives repeat on every value they read)
impl View for Dynamic {
    fn with_scalar<R>(&self, f: impl FnOnce(Scalar<'_>) -> R) -> R {
        if self.is_unit() {
            return f(Scalar::Null);
        }
        if self.is_bool()
            && let Ok(b) = self.as_bool()
        {
            return f(Scalar::Bool(b));
        }
        if self.is_int()
            && let Ok(i) = self.as_int()
        {
            return f(Scalar::Int(i));
        }
        if self.is_float()
            && let Ok(x) = self.as_float()
        {
            return f(Scalar::Double(x));
        }
        if self.is_string()
            && let Ok(s) = self.as_immutable_string_ref()
        {
            return f(Scalar::Str(s.as_str()));
        }
        if self.is_array() {
            return f(Scalar::Other("list"));
        }
        if self.is_map() {
            return f(Scalar::Other("map"));
        }
        match self.read_lock::<Boxed>() {
            Some(b) => f(b.0.scalar()),
            None => f(Scalar::Null),
        }
    }
    fn value(&self) -> std::borrow::Cow<'_, Value> {
        std::borrow::Cow::Owned(from_dynamic(self))
    }
    fn collection_len(&self) -> Option<usize> {
        if self.is_array()
            && let Ok(a) = self.as_array_ref()
        {
            return Some(a.len());
        }
        if self.is_map()
            && let Ok(m) = self.as_map_ref()
        {
            return Some(m.len());
        }
        match self.read_lock::<Boxed>() {
            Some(b) => b.0.collection_len(),
            None => None,
        }
    }
    fn each_child(&self, f: &mut dyn FnMut(&Self) -> bool) {
        if self.is_array()
            && let Ok(a) = self.as_array_ref()
        {
            for v in a.iter() {
                if !f(v) {
                    return;
                }
            }
        } else if self.is_map()
            && let Ok(m) = self.as_map_ref()
        {
            for v in m.values() {
                if !f(v) {
                    return;
                }
            }
        } else if let Some(b) = self.read_lock::<Boxed>()
            && let Value::Map(m) = &b.0
        {
            // a map with keys Rhai has no form for: its values converted one at a time
            for (_, v) in m.iter() {
                if !f(&to_dynamic(v)) {
                    return;
                }
            }
        }
    }
    fn with_items<R>(&self, f: impl FnOnce(&[Self]) -> R) -> Option<R> {
        self.as_array_ref().ok().map(|a| f(a.as_slice()))
    }
    type Map = Map;
    // a Rhai map in place (two maps compared without converting either, decision 123);
    // a map with keys Rhai has no form for is `Boxed`, compared as a value
    fn with_map<R>(&self, f: impl FnOnce(&Map) -> R) -> Option<R> {
        self.as_map_ref().ok().map(|m| f(&m))
    }
}

/// A Rhai map's keys are all strings: no other key is in it.
impl MapView for Map {
    type Item = Dynamic;
    fn by_str(&self, key: &str) -> Option<&Dynamic> {
        self.get(key)
    }
    fn by_other(&self, _key: Scalar<'_>) -> Option<&Dynamic> {
        None
    }
    fn entries(&self) -> usize {
        self.len()
    }
    fn each_entry(&self, f: &mut dyn FnMut(Scalar<'_>, &Dynamic) -> bool) {
        for (k, v) in self {
            if !f(Scalar::Str(k.as_str()), v) {
                return;
            }
        }
    }
}

fn wrap(r: Result<Value, OpError>) -> Result<Dynamic, Box<EvalAltResult>> {
    r.map(|v| to_dynamic(&v)).map_err(raise)
}

fn wrap_bool(r: Result<bool, OpError>) -> Result<Dynamic, Box<EvalAltResult>> {
    r.map(Dynamic::from_bool).map_err(raise)
}

fn logic(d: &Dynamic) -> Logic<Arc<RunError>> {
    if let Ok(b) = d.as_bool() {
        return Logic::B(b);
    }
    if let Some(c) = d.read_lock::<Captured>() {
        return Logic::Err(Arc::clone(&c.0));
    }
    Logic::Other(from_dynamic(d).type_name())
}

fn and_or(is_and: bool, a: &Dynamic, b: &Dynamic) -> Dynamic {
    match value::and_or(is_and, logic(a), logic(b), |e| Arc::new(RunError::Op(e))) {
        Logic::B(x) => Dynamic::from_bool(x),
        Logic::Err(e) => Dynamic::from(Captured(e)),
        // `and_or` never yields `Other`; were it to, it stays an error
        Logic::Other(t) => Dynamic::from(Captured(Arc::new(RunError::Op(
            OpError::NoMatchingOverload {
                op: "&&".to_owned(),
                args: t.to_owned(),
            },
        )))),
    }
}

#[expect(
    clippy::too_many_lines,
    reason = "every native the generated code calls, in one place"
)]
fn register(engine: &mut Engine, bounds: Bounds) {
    // Rhai's checked build compares floats within an epsilon (and gets infinities
    // wrong); CEL compares doubles exactly as IEEE 754 does
    // (codegen calls these for every double comparison)
    #[expect(clippy::float_cmp, reason = "CEL equality on doubles is exact")]
    engine.register_fn("d_eq", |a: f64, b: f64| a == b);
    #[expect(clippy::float_cmp, reason = "CEL equality on doubles is exact")]
    engine.register_fn("d_ne", |a: f64, b: f64| a != b);
    engine.register_fn("d_lt", |a: f64, b: f64| a < b);
    engine.register_fn("d_le", |a: f64, b: f64| a <= b);
    engine.register_fn("d_gt", |a: f64, b: f64| a > b);
    engine.register_fn("d_ge", |a: f64, b: f64| a >= b);
    engine.register_iterator::<Array>();
    // the list a `map`/`filter` builds is checked as each element is added, as on the
    // direct path (`Bounds::list_fits`)
    engine.register_fn(
        "push",
        move |a: &mut Array, v: Dynamic| -> Result<(), Box<EvalAltResult>> {
            // the element was copied (a list or map variable is copied when read):
            // charged before a second copy is made
            at_site(Site::Step, &[&v])?;
            a.push(v);
            bounds.list_fits(a.len()).map_err(limit)
        },
    );
    engine.register_fn("cel_err", |e: Dynamic| -> Dynamic {
        if e.is::<Captured>() {
            return e;
        }
        Dynamic::from(Captured(Arc::new(map_thrown(&e))))
    });
    let and = |a: Dynamic, b: Dynamic| and_or(true, &a, &b);
    let or = |a: Dynamic, b: Dynamic| and_or(false, &a, &b);
    let is_false = |a: Dynamic| a.as_bool() == Ok(false);
    let is_true = |a: Dynamic| a.as_bool() == Ok(true);
    engine.register_fn("cel_and", and);
    engine.register_fn("cel_or", or);
    engine.register_fn("cel_is_false", is_false);
    engine.register_fn("cel_is_true", is_true);
    let settle = |a: Dynamic| -> Result<Dynamic, Box<EvalAltResult>> {
        if a.is::<Captured>() {
            return Err(EvalAltResult::ErrorRuntime(a, Position::NONE).into());
        }
        Ok(a)
    };
    engine.register_fn("cel_settle", settle);
    // the same natives on plain bools, their usual arguments: Rhai finds a native whose
    // parameters are the arguments' own types at once, where one taking `Dynamic` is
    // found only after trying each mix of `Dynamic` parameters, on every evaluation
    // (its function cache lives as long as one evaluation)
    engine.register_fn("cel_and", move |a: bool, b: bool| and(a.into(), b.into()));
    engine.register_fn("cel_or", move |a: bool, b: bool| or(a.into(), b.into()));
    engine.register_fn("cel_is_false", move |a: bool| is_false(a.into()));
    engine.register_fn("cel_is_true", move |a: bool| is_true(a.into()));
    engine.register_fn("cel_settle", move |a: bool| settle(a.into()));
    engine.register_fn(
        "cel_bool",
        |a: Dynamic| -> Result<bool, Box<EvalAltResult>> {
            a.as_bool().map_err(|_| {
                raise(OpError::NoMatchingOverload {
                    op: "condition".to_owned(),
                    args: from_dynamic(&a).type_name().to_owned(),
                })
            })
        },
    );
    engine.register_fn(
        "cel_unbound",
        |name: ImmutableString| -> Result<Dynamic, Box<EvalAltResult>> {
            Err(EvalAltResult::ErrorRuntime(
                Dynamic::from(Captured(Arc::new(RunError::Unbound(name.to_string())))),
                Position::NONE,
            )
            .into())
        },
    );
    engine.register_fn("cel_not", |a: Dynamic| wrap(value::not(&from_dynamic(&a))));
    engine.register_fn("cel_neg", |a: Dynamic| {
        wrap(value::negate(&from_dynamic(&a)))
    });
    for (name, op) in [
        ("cel_add", Arith::Add),
        ("cel_sub", Arith::Sub),
        ("cel_mul", Arith::Mul),
        ("cel_div", Arith::Div),
        ("cel_rem", Arith::Rem),
    ] {
        engine.register_fn(
            name,
            move |a: Dynamic, b: Dynamic| -> Result<Dynamic, Box<EvalAltResult>> {
                let (a, b) = (from_dynamic(&a), from_dynamic(&b));
                charge(value::sized_cost(
                    Operator::from(op).sizing(),
                    &[&a, &b],
                    units_left(),
                ))?;
                let v = value::arith(op, &a, &b).map_err(raise)?;
                bounds.fits(&v).map_err(limit)?;
                Ok(to_dynamic(&v))
            },
        );
    }
    for (name, op) in [
        ("cel_lt", Rel::Lt),
        ("cel_le", Rel::Le),
        ("cel_gt", Rel::Gt),
        ("cel_ge", Rel::Ge),
    ] {
        engine.register_fn(
            name,
            move |a: Dynamic, b: Dynamic| -> Result<Dynamic, Box<EvalAltResult>> {
                // charged by the bytes compared before they are converted (as on the
                // direct path, the rows' `Sizing`: `value::relation_cost`)
                charge(value::sized_cost(
                    Operator::Ordering.sizing(),
                    &[&a, &b],
                    units_left(),
                ))?;
                wrap_bool(value::relation(op, &from_dynamic(&a), &from_dynamic(&b)))
            },
        );
    }
    // two-operand natives take one operand by `&mut` (a variable, or a chain of an
    // object's fields from one, read in place): the left one (`cel_eq`), or the right
    // one, which Rhai then reads after the left (`cel_eq_r`, CEL's order); codegen
    // picks (`Gen::two`)
    engine.register_fn("cel_eq", |a: &mut Dynamic, b: Dynamic| {
        at_site(Site::Equality, &[&*a, &b])
    });
    engine.register_fn("cel_eq_r", |b: &mut Dynamic, a: Dynamic| {
        at_site(Site::Equality, &[&a, &*b])
    });
    engine.register_fn("cel_ne", |a: &mut Dynamic, b: Dynamic| {
        at_site(Site::Equality, &[&*a, &b]).map(|e| !e)
    });
    engine.register_fn("cel_ne_r", |b: &mut Dynamic, a: Dynamic| {
        at_site(Site::Equality, &[&a, &*b]).map(|e| !e)
    });
    // an element of a list literal or a value of a map literal, taken by `&mut` (a variable in place) and charged
    // before it is copied into the list
    engine.register_fn(
        "cel_item",
        |a: &mut Dynamic| -> Result<Dynamic, Box<EvalAltResult>> {
            at_site(Site::Literal, &[&*a])?;
            Ok(a.clone())
        },
    );
    // `in`, `[]`, `.f`, `has` and `size` take the collection as their first argument by
    // `&mut`: Rhai then hands a variable (a context list or map) over in place instead
    // of copying it for the call, and the value-level rules (`value::View`,
    // `value::MapView`) read it in place; codegen puts the collection first
    engine.register_fn("cel_in", |b: &mut Dynamic, a: Dynamic| {
        membership(b, &a, true)
    });
    engine.register_fn("cel_in_lits", |b: &mut Dynamic, a: Dynamic| {
        membership(b, &a, false)
    });
    // a comprehension step: the units codegen wrote (`ir::step_cost`, as the direct
    // path charges per element; the element copied is the step's site, `cel_elem`,
    // `cel_take`)
    engine.register_fn("cel_step", |units: i64| {
        charge(u64::try_from(units).unwrap_or(u64::MAX))
    });
    // the element taken is copied: charged first (`Site::Take`), as the direct path
    // charges it
    engine.register_fn(
        "cel_index",
        |a: &mut Dynamic, i: Dynamic| -> Result<Dynamic, Box<EvalAltResult>> {
            let a = &*a;
            if let Ok(m) = a.as_map_ref() {
                // a map lookup reads its key: charged before it (`Site::Key`)
                at_site(Site::Key, &[&i])?;
                let v = i.with_scalar(|k| value::map_index(&*m, k).map_err(raise))?;
                at_site(Site::Take, &[v])?;
                return Ok(v.clone());
            }
            if let Ok(items) = a.as_array_ref() {
                let v = i.with_scalar(|k| value::list_index(items.as_slice(), k).map_err(raise))?;
                at_site(Site::Take, &[v])?;
                return Ok(v.clone());
            }
            let a = from_dynamic(a);
            if let Value::Map(_) = a {
                at_site(Site::Key, &[&i])?;
            }
            let v = to_dynamic(&value::index(&a, &from_dynamic(&i)).map_err(raise)?);
            at_site(Site::Take, &[&v])?;
            Ok(v)
        },
    );
    // the element a comprehension variable takes from a list (read in place, then
    // copied): charged first, as the direct path charges each element
    engine.register_fn(
        "cel_elem",
        |a: &mut Dynamic, n: i64| -> Result<Dynamic, Box<EvalAltResult>> {
            let a = &*a;
            let items = a.as_array_ref().map_err(|_| {
                raise(OpError::NoMatchingOverload {
                    op: "comprehension".to_owned(),
                    args: from_dynamic(a).type_name().to_owned(),
                })
            })?;
            let v = usize::try_from(n)
                .ok()
                .and_then(|n| items.get(n))
                .ok_or_else(|| raise(OpError::InvalidArgument("index out of range".to_owned())))?;
            at_site(Site::Step, &[v])?;
            Ok(v.clone())
        },
    );
    // the element a comprehension variable takes from a map's keys (or a `dyn` range)
    engine.register_fn("cel_take", |a: &mut Dynamic| {
        at_site(Site::Step, &[&*a]).map(|_| ())
    });
    // a field that is not read in place (`codegen::field_in_place`: a field of a value
    // typed `dyn`):
    // its value is copied, charged first (`Site::Take`), as the direct path's
    // `FieldCopied` charges it
    engine.register_fn(
        "cel_select",
        |a: &mut Dynamic, f: ImmutableString| -> Result<Dynamic, Box<EvalAltResult>> {
            let a = &*a;
            if let Ok(m) = a.as_map_ref() {
                let v = value::map_field(&*m, &f).map_err(raise)?;
                at_site(Site::Take, &[v])?;
                return Ok(v.clone());
            }
            let v = to_dynamic(&value::select(&from_dynamic(a), &f).map_err(raise)?);
            at_site(Site::Take, &[&v])?;
            Ok(v)
        },
    );
    engine.register_fn("cel_has", |a: &mut Dynamic, f: ImmutableString| {
        let a = &*a;
        if let Ok(m) = a.as_map_ref() {
            return Ok(Dynamic::from_bool(value::map_has(&*m, &f)));
        }
        wrap_bool(value::has(&from_dynamic(a), &f))
    });
    engine.register_fn(
        "cel_map",
        |items: Array| -> Result<Dynamic, Box<EvalAltResult>> {
            let pairs = items
                .chunks(2)
                .filter_map(|p| Some((from_dynamic(p.first()?), from_dynamic(p.get(1)?))));
            wrap(value::build_map(pairs.collect::<Vec<_>>()))
        },
    );
    // a comprehension over a list steps through its indices and reads each element
    // from the list in place (`Gen::expr`): the list is never copied for the loop
    engine.register_iterator::<std::ops::Range<i64>>();
    engine.register_fn("cel_len", |a: &mut Dynamic| {
        a.collection_len()
            .map_or(0, |n| i64::try_from(n).unwrap_or(i64::MAX))
    });
    engine.register_fn(
        "cel_iter",
        |a: &mut Dynamic| -> Result<Array, Box<EvalAltResult>> {
            let a = &*a;
            if let Ok(m) = a.as_map_ref() {
                return Ok(m
                    .keys()
                    .map(|k| Dynamic::from(ImmutableString::from(k.as_str())))
                    .collect());
            }
            match from_dynamic(a) {
                Value::List(l) => Ok(l.iter().map(to_dynamic).collect()),
                Value::Map(m) => Ok(m.iter().map(|(k, _)| to_dynamic(k)).collect()),
                other => Err(raise(OpError::NoMatchingOverload {
                    op: "comprehension".to_owned(),
                    args: other.type_name().to_owned(),
                })),
            }
        },
    );
    // `s.matches("literal")`: the pattern was compiled when the program was built and
    // is a constant of it (`Pattern`), so only the match is charged
    // (`LiteralRegex::match_cost`: no pattern to compile), as on the direct path's
    // `Matches` node
    engine.register_fn(
        "cel_matches_lit",
        |a: &mut Dynamic, p: Pattern| -> Result<Dynamic, Box<EvalAltResult>> {
            let a = &*a;
            match a.as_immutable_string_ref() {
                Ok(s) => {
                    charge(p.0.match_cost(s.as_str()))?;
                    Ok(Dynamic::from_bool(value::re_match(p.0.regex(), s.as_str())))
                }
                Err(_) => Err(raise(value::overload(
                    "matches",
                    &[&from_dynamic(a), &Value::string(p.0.regex().as_str())],
                ))),
            }
        },
    );
    // every function call goes through the overload table: codegen writes the
    // function's index (resolved at compile time), never its name
    // (the arguments are read in place, `value::View`: a context string or list is not
    // converted for the call)
    engine.register_fn("cel_f1", |a: &mut Dynamic, f: i64| call(f, &[&*a]));
    // two arguments: the left one by `&mut` (`cel_f2`) or the right one (`cel_f2_r`),
    // as for `cel_eq`
    engine.register_fn("cel_f2", |a: &mut Dynamic, f: i64, b: Dynamic| {
        call(f, &[&*a, &b])
    });
    engine.register_fn("cel_f2_r", |b: &mut Dynamic, f: i64, a: Dynamic| {
        call(f, &[&a, &*b])
    });
}

/// `a in b`, the collection read in place: charged its site (`Site::Membership`: a map
/// its key, a list a unit per element compared) when `charged`; a list written of
/// literals (`cel_in_lits`, `ir::site_charge`) costs only its node, as on the direct
/// path, and is searched uncharged.
fn membership(b: &Dynamic, a: &Dynamic, charged: bool) -> Result<bool, Box<EvalAltResult>> {
    if charged {
        return at_site(Site::Membership, &[a, b]);
    }
    match value::site_cost(Site::Membership, &[a, b], u64::MAX).map_err(raise)? {
        Some(p) => Ok(p.holds),
        None => Err(EvalAltResult::ErrorTooManyOperations(Position::NONE).into()),
    }
}

/// A function call by the function's index: charged its cost, then applied.
fn call(f: i64, args: &[&Dynamic]) -> Result<Dynamic, Box<EvalAltResult>> {
    match Func::at(f) {
        Some(func) => {
            charge(value::call_cost(func, args, units_left()))?;
            wrap(func.apply(args))
        }
        None => wrap(Err(OpError::InvalidArgument("unknown function".to_owned()))),
    }
}

/// Maps whatever a `catch` caught, or an uncaught Rhai error, onto a [`RunError`].
fn map_thrown(d: &Dynamic) -> RunError {
    if let Some(c) = d.read_lock::<Captured>() {
        return (*c.0).clone();
    }
    // Rhai reports its own catchable errors to `catch` as a map (`#{"error":
    // "ErrorArithmetic", "message": "Addition overflow: ..."}`) or a message string
    if let Ok(m) = d.as_map_ref()
        && let Some(msg) = m
            .get("message")
            .and_then(Dynamic::read_lock::<ImmutableString>)
    {
        return map_message(msg.as_str());
    }
    let msg = d.to_string();
    map_message(&msg)
}

fn map_message(msg: &str) -> RunError {
    let lower = msg.to_lowercase();
    // Rhai's checked integer operators: "Addition overflow: x + y", "Modulo division by
    // zero or overflow: x % y", ...; name the operator as the direct path does
    let op = [
        ("addition", "+"),
        ("subtraction", "-"),
        ("multiplication", "*"),
        ("division overflow", "/"),
        ("modulo", "%"),
        ("negation", "-"),
    ]
    .into_iter()
    .find_map(|(word, op)| lower.starts_with(word).then_some(op));
    if lower.contains("division by zero") && !lower.contains("or overflow")
        || lower.contains("modulo by zero")
        || (op == Some("%") && lower.trim_end().ends_with("% 0"))
    {
        RunError::Op(OpError::DivisionByZero)
    } else if lower.contains("overflow") {
        RunError::Op(OpError::Overflow(op.unwrap_or("arithmetic")))
    } else if let Some(p) = strip_prefix_ignoring_case(msg, "property not found: ") {
        // the key as written (probe q11e bug C: it was the lowercased message's)
        RunError::Op(OpError::no_such_key(p))
    } else {
        RunError::Op(OpError::InvalidArgument(msg.to_owned()))
    }
}

/// `s` after `prefix` (ASCII, any case), or `None`.
fn strip_prefix_ignoring_case<'s>(s: &'s str, prefix: &str) -> Option<&'s str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

fn map_error(e: &EvalAltResult, limits: &SandboxLimits) -> RunError {
    match e {
        EvalAltResult::ErrorRuntime(d, _) => map_thrown(d),
        EvalAltResult::ErrorArithmetic(m, _) => map_message(m),
        EvalAltResult::ErrorPropertyNotFound(p, _) => RunError::Op(OpError::no_such_key(p)),
        EvalAltResult::ErrorTerminated(d, _) if d.is::<Captured>() => map_thrown(d),
        EvalAltResult::ErrorTooManyOperations(_) | EvalAltResult::ErrorTerminated(..) => {
            RunError::budget(limits.max_operations)
        }
        // Rhai names what is too large: "Length of string", "Size of array/BLOB",
        // "Size of object map"
        EvalAltResult::ErrorDataTooLarge(what, _) if what.contains("string") => {
            RunError::string_too_long(limits.max_string_size)
        }
        EvalAltResult::ErrorDataTooLarge(what, _) if what.contains("map") => {
            RunError::map_too_large(limits.max_map_size)
        }
        EvalAltResult::ErrorDataTooLarge(..) => RunError::list_too_long(limits.max_array_size),
        EvalAltResult::ErrorStackOverflow(_) => RunError::calls_too_deep(limits.max_call_levels),
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _) => map_error(inner, limits),
        EvalAltResult::ErrorVariableNotFound(v, _) => RunError::Unbound(v.clone()),
        other => RunError::Op(OpError::InvalidArgument(other.to_string())),
    }
}

/// A compiled program: a Rhai AST with its constants folded in.
#[derive(Clone, Debug)]
pub struct Program {
    ast: Arc<AST>,
    /// Bytes of the generated source: bounds the Rhai operations the program spends
    /// outside comprehension steps (see [`Limits::SANDBOX_OPS_PER_UNIT`]).
    source_bytes: u64,
}

/// Variable values for one evaluation context (reuse it across evaluations): one slot
/// per context variable for the direct evaluator, mirrored in a Rhai scope that is built
/// on the first sandboxed evaluation (many contexts never need it).
#[derive(Debug, Clone, Default)]
pub struct Bindings {
    scope: Scope<'static>,
    /// The scope mirrors `slots` (false after a `set` until the next sandboxed run).
    synced: bool,
    slots: Vec<Option<Value>>,
}

impl Bindings {
    /// An empty set of bindings.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Empty bindings of `slots` slots (indices `0..slots` bind without regrowing them).
    #[must_use]
    pub fn with_slots(slots: usize) -> Self {
        // written in place (`vec![None; n]` would clone a `None` per slot)
        let mut v = Vec::with_capacity(slots);
        v.resize_with(slots, || None);
        Bindings {
            slots: v,
            ..Self::default()
        }
    }

    /// Binds context slot `index` (see `VarTable::index`) to a value (a copy of it; see
    /// [`Bindings::set_owned`] to bind a value without copying it).
    pub fn set(&mut self, index: usize, v: &Value) {
        self.set_owned(index, v.clone());
    }

    /// Binds context slot `index` (see `VarTable::index`) to a value, taking it.
    pub fn set_owned(&mut self, index: usize, v: Value) {
        self.synced = false;
        if self.slots.len() <= index {
            self.slots.resize(index + 1, None);
        }
        if let Some(s) = self.slots.get_mut(index) {
            *s = Some(v);
        }
    }

    /// The slots, by index (`None`: unbound).
    #[must_use]
    pub fn slots(&self) -> &[Option<Value>] {
        &self.slots
    }

    /// Removes everything.
    pub fn clear(&mut self) {
        self.scope.clear();
        self.synced = true;
        self.slots.clear();
    }
}

/// Longest excerpt of a generated program an internal error quotes, in characters.
const EXCERPT_CHARS: usize = 120;

/// The deepest nesting of `(`, `[` and `{` in generated source (string literals are
/// escaped by codegen, so a bracket in one only overestimates).
fn nesting(source: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for b in source.bytes() {
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// The start of a generated program, cut so that a diagnostic quoting it stays bounded.
fn excerpt(source: &str) -> String {
    match source.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!(
            "{}… ({} bytes)",
            source.get(..cut).unwrap_or_default(),
            source.len()
        ),
        None => source.to_owned(),
    }
}

/// Why source generated by codegen did not compile (an internal error).
#[derive(Debug, thiserror::Error)]
#[error("generated program does not compile: {0}")]
pub struct CompileFailure(pub String);

/// The sandboxed engine, built once and shared by every program (thread-safe).
pub struct Sandbox {
    engine: Engine,
    limits: SandboxLimits,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new(SandboxLimits::default())
    }
}

impl Sandbox {
    /// Builds the engine with these limits.
    #[must_use]
    pub fn new(limits: SandboxLimits) -> Self {
        let mut engine = Engine::new_raw();
        engine.set_optimization_level(OptimizationLevel::Simple);
        engine.set_fail_on_invalid_map_property(true);
        // the budget is the natives' charges (`Meter`); Rhai's own count is checked by
        // the progress hook against a per-program safety net
        engine.set_max_operations(0);
        engine.set_max_call_levels(limits.max_call_levels);
        engine.set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth);
        // sizes are flowc's own bounds, checked by the natives that build strings and
        // lists (`Bounds::fits`, the direct path's one rule), not Rhai's: Rhai counts
        // the bytes of every string held in a list against the string limit, and walks
        // a whole context collection after each call that borrows it (`&mut`), which
        // would copy in time what borrowing saves in memory
        engine.set_max_string_size(0);
        engine.set_max_array_size(0);
        engine.set_max_map_size(0);
        engine.set_allow_anonymous_fn(false);
        engine.set_allow_shadowing(true);
        for sym in [
            "eval", "while", "loop", "do", "fn", "import", "export", "Fn", "call", "curry",
            "print", "debug",
        ] {
            engine.disable_symbol(sym);
        }
        // the safety net: past it the program stops, failing closed with the budget
        // error (never reached first while the natives charge the right units)
        engine.on_progress(|ops| (ops > METER.get().ops_max).then_some(Dynamic::UNIT));
        engine.on_print(|_| {});
        engine.on_debug(|_, _, _| {});
        register(&mut engine, Bounds::of(&limits));
        Self { engine, limits }
    }

    /// The shared default sandbox.
    #[must_use]
    pub fn shared() -> &'static Sandbox {
        static S: std::sync::OnceLock<Sandbox> = std::sync::OnceLock::new();
        S.get_or_init(Sandbox::default)
    }

    /// The limits in force.
    #[must_use]
    pub fn limits(&self) -> &SandboxLimits {
        &self.limits
    }

    /// Compiles generated source with its constants folded in. A deeply nested program
    /// (past [`Limits::SHALLOW_NESTING`] brackets) compiles on a thread of its own with a
    /// [`Limits::COMPILE_STACK_BYTES`] stack: Rhai's parser and optimizer recurse once per
    /// level, and every expression flowc's parser accepts must compile whatever stack
    /// the caller runs on.
    ///
    /// # Errors
    /// Only when codegen produced invalid Rhai (a bug) or the source exceeds a bound.
    pub fn compile(&self, source: &str, constants: &[Constant]) -> Result<Program, CompileFailure> {
        if nesting(source) <= Limits::SHALLOW_NESTING {
            return self.compile_here(source, constants);
        }
        std::thread::scope(|s| {
            std::thread::Builder::new()
                .name("flowc-compile".to_owned())
                .stack_size(Limits::COMPILE_STACK_BYTES)
                .spawn_scoped(s, || self.compile_here(source, constants))
                .map_err(|e| CompileFailure(format!("no thread to compile on: {e}")))?
                .join()
                .unwrap_or_else(|_| Err(CompileFailure("the compiler panicked".to_owned())))
        })
    }

    fn compile_here(
        &self,
        source: &str,
        constants: &[Constant],
    ) -> Result<Program, CompileFailure> {
        let mut scope = Scope::new();
        for (i, c) in constants.iter().enumerate() {
            let d = match c {
                Constant::Value(v) => to_dynamic(v),
                Constant::Regex(re) => Dynamic::from(Pattern(re.clone())),
            };
            scope.push_constant_dynamic(rhai_const(i), d);
        }
        let ast = self
            .engine
            .compile_with_scope(&scope, source)
            .map_err(|e| CompileFailure(format!("{e} in `{}`", excerpt(source))))?;
        Ok(Program {
            ast: Arc::new(ast),
            source_bytes: u64::try_from(source.len()).unwrap_or(u64::MAX),
        })
    }

    /// Runs a program; the result as a CEL value.
    ///
    /// # Errors
    /// The CEL run-time error or the sandbox bound that stopped it.
    pub fn eval(&self, program: &Program, bindings: &mut Bindings) -> Result<Value, RunError> {
        let d = self.eval_raw(program, bindings)?;
        Ok(from_dynamic(&d))
    }

    /// Runs a program that yields a bool.
    ///
    /// # Errors
    /// A run-time error, or a non-bool result.
    pub fn eval_bool(&self, program: &Program, bindings: &mut Bindings) -> Result<bool, RunError> {
        let d = self.eval_raw(program, bindings)?;
        d.as_bool().map_err(|_| RunError::ResultType {
            expected: "bool",
            got: from_dynamic(&d).type_name().to_owned(),
        })
    }

    /// Runs a program that yields an int (decision programs).
    ///
    /// # Errors
    /// A run-time error, or a non-int result.
    pub fn eval_int(&self, program: &Program, bindings: &mut Bindings) -> Result<i64, RunError> {
        let d = self.eval_raw(program, bindings)?;
        d.as_int().map_err(|_| RunError::ResultType {
            expected: "int",
            got: from_dynamic(&d).type_name().to_owned(),
        })
    }

    /// Runs a program that yields a bool against a budget shared with other programs
    /// (the units left in `budget`, which is charged what the program spent), as
    /// [`Direct::eval_bool_within`](crate::expr::Direct::eval_bool_within) does: the
    /// rules of a decision run one by one, to name the rule that failed, share the
    /// decision's one budget.
    ///
    /// # Errors
    /// As [`Sandbox::eval_bool`].
    pub fn eval_bool_within(
        &self,
        program: &Program,
        bindings: &mut Bindings,
        budget: &std::cell::Cell<u64>,
    ) -> Result<bool, RunError> {
        let (d, spent) = self.eval_metered(program, bindings, budget.get());
        budget.set(budget.get().saturating_sub(spent));
        let d = d?;
        d.as_bool().map_err(|_| RunError::ResultType {
            expected: "bool",
            got: from_dynamic(&d).type_name().to_owned(),
        })
    }

    fn eval_raw(&self, program: &Program, bindings: &mut Bindings) -> Result<Dynamic, RunError> {
        self.eval_metered(program, bindings, self.limits.max_operations)
            .0
    }

    /// Runs a program with `units` of budget; the result and the units it spent.
    fn eval_metered(
        &self,
        program: &Program,
        bindings: &mut Bindings,
        units: u64,
    ) -> (Result<Dynamic, RunError>, u64) {
        if !bindings.synced {
            bindings.scope.clear();
            for (i, v) in bindings.slots.iter().enumerate() {
                if let Some(v) = v {
                    bindings.scope.push_dynamic(rhai_var(i), to_dynamic(v));
                }
            }
            bindings.synced = true;
        }
        let outer = METER.replace(Meter {
            max: units,
            spent: 0,
            ops_max: self
                .limits
                .max_operations
                .saturating_add(program.source_bytes)
                .saturating_mul(Limits::SANDBOX_OPS_PER_UNIT),
        });
        let before = bindings.scope.len();
        let r = self
            .engine
            .eval_ast_with_scope::<Dynamic>(&mut bindings.scope, &program.ast);
        // programs never declare top-level variables, but keep the scope exact anyway
        bindings.scope.rewind(before);
        let spent = METER.replace(outer).spent;
        (r.map_err(|e| map_error(&e, &self.limits)), spent)
    }
}
