//! The typed path of the direct evaluator: a lowered tree run on unboxed values, which
//! gives up at the first surprise and leaves the case to the exact path
//! ([`super::eval`]).
//!
//! Where the checker knew the types, almost every evaluation finds them: a double slot
//! holds a double, a string slot a string, no operand fails. This path reads slots as
//! `f64`, `i64`, `&str` or `bool` straight from the bindings and returns an
//! `Option<bool>` in a register, with no error values, no `Result` plumbing and no
//! borrowed-or-owned wrapper. It answers `None` the moment anything would need more (an
//! unbound slot, a value of another type than declared, an error an `&&`/`||` might
//! absorb, an overflow, a budget running out); the caller then evaluates the same tree
//! from the start on the exact path, which gives CEL's value or error. Conditions are
//! pure, so running the exact path after an abandoned typed run is the same as running
//! it alone.
//!
//! Why the two agree when this path answers: it evaluates the operands in the exact
//! path's order with its short-circuits ([`value::decides`]), calls the same operations
//! (`Rel::doubles`/`ints`, `Arith::doubles`/`ints`, `value::equals`, `str_equals`,
//! `str_in`, `int_in`, `in_items`, `str_test`, `re_match`, `has`, `call_cost`,
//! `site_cost`, `Func::apply`, `eval::field`), and charges
//! the budget the same units at the same places (per element searched by `in`, per
//! comprehension step, per byte a conversion copies), so an answer here is one the exact path reaches without error.

use std::cell::Cell;

use super::ast::Macro;
use super::ir::{Fold, Node};
use super::overload::Site;
use super::value::{self, Value};

/// A comprehension variable's value, linked to the enclosing frames.
struct Frame<'a> {
    value: &'a Value,
    up: Option<&'a Frame<'a>>,
}

/// One typed evaluation: the bindings, the innermost frame, the remaining budget.
pub(super) struct Typed<'a> {
    slots: &'a [Option<Value>],
    frame: Option<&'a Frame<'a>>,
    budget: &'a Cell<u64>,
}

impl<'a> Typed<'a> {
    pub(super) fn new(slots: &'a [Option<Value>], budget: &'a Cell<u64>) -> Self {
        Typed {
            slots,
            frame: None,
            budget,
        }
    }

    /// Charges `units`; `None` when the budget does not have them (the exact path
    /// reports the bound).
    fn charge(&self, units: u64) -> Option<()> {
        let left = self.budget.get().checked_sub(units)?;
        self.budget.set(left);
        Some(())
    }

    /// Charges what a [`Site`] costs on its operands ([`value::site_cost`], the one
    /// routine of both paths), and gives what `==` and `in` decide; `None` when the
    /// budget does not have it or `in` has no overload (the exact path reports either).
    fn site(&self, site: Site, operands: &[&Value]) -> Option<bool> {
        let p = value::site_cost(site, operands, self.budget.get()).ok()??;
        self.charge(p.units)?;
        Some(p.holds)
    }
}

impl Node {
    /// The truth of a bool-typed node, or `None` to leave it to the exact path. The
    /// leaves conditions are made of are read here, inline in their parent; the
    /// combinators and everything else are [`Node::typed_tree`].
    #[expect(
        clippy::inline_always,
        reason = "the leaf match inlined into `&&`/`||`/`!` saves a call per leaf"
    )]
    #[inline(always)]
    pub(super) fn typed(&self, t: &Typed<'_>) -> Option<bool> {
        match self {
            Node::SlotCmpF64(i, _, rel, lit) => match t.slots.get(*i)? {
                Some(Value::Double(d)) => Some(rel.doubles(*d, *lit)),
                _ => None,
            },
            Node::SlotCmpI64(i, _, rel, lit) => match t.slots.get(*i)? {
                Some(Value::Int(x)) => Some(rel.ints(*x, *lit)),
                _ => None,
            },
            Node::Slot(i, _) => match t.slots.get(*i)? {
                Some(Value::Bool(b)) => Some(*b),
                _ => None,
            },
            Node::EqStr(eq, a, lit) => {
                Some(t.site(Site::Equality, &[a.typed_value(t)?, lit])? == *eq)
            }
            Node::InStrs(a, set) => Some(value::str_in(a.typed_str(t)?, set)),
            Node::CmpF64(rel, a, b) => Some(rel.doubles(a.typed_f64(t)?, b.typed_f64(t)?)),
            _ => self.typed_tree(t),
        }
    }

    fn typed_tree(&self, t: &Typed<'_>) -> Option<bool> {
        match self {
            Node::Logic(is_and, a, b) => {
                let l = a.typed(t)?;
                // the deciding operand (`false` for `&&`, `true` for `||`) ends it
                if value::decides(*is_and, l) {
                    return Some(l);
                }
                b.typed(t)
            }
            Node::Not(a) => a.typed(t).map(|b| !b),
            Node::Cond(c, a, b) => {
                if c.typed(t)? {
                    a.typed(t)
                } else {
                    b.typed(t)
                }
            }
            Node::CmpI64(rel, a, b) => Some(rel.ints(a.typed_i64(t)?, b.typed_i64(t)?)),
            Node::Eq(eq, a, b) => {
                let x = a.typed_value(t)?;
                let y = b.typed_value(t)?;
                Some(t.site(Site::Equality, &[x, y])? == *eq)
            }
            Node::InInts(a, set) => Some(value::int_in(a.typed_i64(t)?, set)),
            Node::InLits(a, items) => Some(value::in_items(a.typed_value(t)?, items)),
            Node::In(a, b) => {
                let x = a.typed_value(t)?;
                let y = b.typed_value(t)?;
                t.site(Site::Membership, &[x, y])
            }
            Node::StrLit(row, a, lit) => {
                let s = a.typed_str(t)?;
                t.charge(value::str_pair_cost(row.size, s, lit, t.budget.get()))?;
                Some(value::str_test(row.func, s, lit))
            }
            Node::Matches(a, re) => {
                let s = a.typed_str(t)?;
                t.charge(re.match_cost(s))?;
                Some(value::re_match(re.regex(), s))
            }
            Node::Has(a, f) => value::has(a.typed_value(t)?, f).ok(),
            Node::Fold(fold) => fold.typed(t),
            Node::Call(..) => match self.typed_call(t)? {
                Value::Bool(b) => Some(b),
                _ => None,
            },
            _ => match self.typed_value(t)? {
                Value::Bool(b) => Some(*b),
                _ => None,
            },
        }
    }

    /// A value read without computing, with a slot or a literal read inline.
    #[expect(
        clippy::inline_always,
        reason = "a slot read is one load: not worth a call"
    )]
    #[inline(always)]
    fn typed_value<'a>(&'a self, t: &Typed<'a>) -> Option<&'a Value> {
        match self {
            Node::Slot(i, _) => t.slots.get(*i)?.as_ref(),
            Node::Lit(v) => Some(v),
            _ => self.typed_place(t),
        }
    }

    /// A value read without computing: a literal, a slot, a comprehension variable, a
    /// field of one of these.
    fn typed_place<'a>(&'a self, t: &Typed<'a>) -> Option<&'a Value> {
        match self {
            Node::Lit(v) => Some(v),
            Node::Slot(i, _) => t.slots.get(*i)?.as_ref(),
            Node::Local(depth) => {
                let mut f = t.frame?;
                for _ in 0..*depth {
                    f = f.up?;
                }
                Some(f.value)
            }
            Node::Field(a, name, at) => super::eval::field(a.typed_value(t)?, name, at).ok(),
            _ => None,
        }
    }

    #[expect(
        clippy::inline_always,
        reason = "a double slot or literal is one load: not worth a call"
    )]
    #[inline(always)]
    fn typed_f64(&self, t: &Typed<'_>) -> Option<f64> {
        match self {
            Node::Slot(i, _) => match t.slots.get(*i)? {
                Some(Value::Double(d)) => Some(*d),
                _ => None,
            },
            Node::Lit(Value::Double(d)) => Some(*d),
            _ => self.typed_f64_tree(t),
        }
    }

    fn typed_f64_tree(&self, t: &Typed<'_>) -> Option<f64> {
        match self {
            Node::ArithF64(o, a, b) => o.doubles(a.typed_f64(t)?, b.typed_f64(t)?),
            Node::Call(..) => match self.typed_call(t)? {
                Value::Double(d) => Some(d),
                _ => None,
            },
            _ => match self.typed_value(t)? {
                Value::Double(d) => Some(*d),
                _ => None,
            },
        }
    }

    fn typed_i64(&self, t: &Typed<'_>) -> Option<i64> {
        match self {
            Node::ArithI64(o, a, b) => o.ints(a.typed_i64(t)?, b.typed_i64(t)?).ok(),
            Node::Call(..) => match self.typed_call(t)? {
                Value::Int(i) => Some(i),
                _ => None,
            },
            _ => match self.typed_value(t)? {
                Value::Int(i) => Some(*i),
                _ => None,
            },
        }
    }

    #[expect(
        clippy::inline_always,
        reason = "a string slot is one load: not worth a call"
    )]
    #[inline(always)]
    fn typed_str<'a>(&'a self, t: &Typed<'a>) -> Option<&'a str> {
        match self.typed_value(t)? {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// A call of one or two arguments that are read without computing (`size(tags)`).
    fn typed_call(&self, t: &Typed<'_>) -> Option<Value> {
        let Node::Call(f, args) = self else {
            return None;
        };
        match &**args {
            [a] => {
                let a = a.typed_value(t)?;
                t.charge(value::call_cost(*f, &[a], t.budget.get()))?;
                f.apply(&[a]).ok()
            }
            [a, b] => {
                let (a, b) = (a.typed_value(t)?, b.typed_value(t)?);
                t.charge(value::call_cost(*f, &[a, b], t.budget.get()))?;
                f.apply(&[a, b]).ok()
            }
            _ => None,
        }
    }
}

impl Fold {
    /// `all`, `exists` and `exists_one` over a list.
    fn typed(&self, t: &Typed<'_>) -> Option<bool> {
        let Value::List(items) = self.range.typed_value(t)? else {
            return None;
        };
        let mut count = 0u32;
        for v in items.iter() {
            t.charge(self.step_cost)?;
            // the element the variable takes, as on the exact path
            t.site(Site::Step, &[v])?;
            let frame = Frame {
                value: v,
                up: t.frame,
            };
            let inner = Typed {
                slots: t.slots,
                frame: Some(&frame),
                budget: t.budget,
            };
            let b = self.body.typed(&inner)?;
            match self.kind {
                Macro::All | Macro::Exists if value::decides(self.kind == Macro::All, b) => {
                    return Some(b);
                }
                Macro::ExistsOne if b => count += 1,
                Macro::All | Macro::Exists | Macro::ExistsOne => {}
                Macro::Map | Macro::Filter => return None,
            }
        }
        match self.kind {
            Macro::All => Some(true),
            Macro::Exists => Some(false),
            Macro::ExistsOne => Some(count == 1),
            Macro::Map | Macro::Filter => None,
        }
    }
}
