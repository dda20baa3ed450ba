//! The lowered IR: a checked expression with every name resolved and every operation
//! specialised by the types the checker found.
//!
//! Lowering runs once, at compile time. Variables become context slots, comprehension
//! variables become frame depths, functions become [`Func`]s of the overload table, and
//! where the static types are known an operation becomes a node that does no dispatch
//! on value pairs (`double < literal`, `string == literal`, `x in literal set`,
//! `string.startsWith(literal)`, typed arithmetic). Every other node calls the one
//! `value` operation that the sandbox's natives call too, so the two
//! paths share each rule. [`super::eval`] evaluates the tree.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::RunError;
use super::Type;
use super::VarTable;
use super::ast::{BinaryOp, Expr, ExprKind, Literal, Macro, UnaryOp};
use super::overload::{self, Func, Site};
use super::value::{self, Arith, Rel, Value};
use crate::limits::SandboxLimits;

/// A lowered expression node.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// A constant.
    Lit(Value),
    /// A context variable by slot, with its CEL name for "no value" errors.
    Slot(usize, Arc<str>),
    /// A comprehension variable: 0 is the innermost.
    Local(usize),
    /// A name no slot was declared for (only in unchecked trees).
    Unbound(Arc<str>),
    /// `a.f`, with the position where the field was last found.
    Field(Box<Node>, Arc<str>, Slot),
    /// `a.f` where the sandbox copies the field's value (`cel_select`, see
    /// `codegen::field_in_place`: a field of a value typed `dyn` whatever `dyn(…)` it is
    /// under): charged what the copy costs
    /// ([`value::copy_cost`]), as the sandbox charges it.
    FieldCopied(Box<Node>, Arc<str>, Slot),
    /// `has(a.f)`
    Has(Box<Node>, Arc<str>),
    /// `has(x)` on a context variable: is its slot bound?
    Bound(usize),
    /// `a[i]`
    Index(Box<Node>, Box<Node>),
    /// `[a, b]`
    List(Box<[Node]>),
    /// `{k: v}`
    Map(Box<[(Node, Node)]>),
    /// `!a`
    Not(Box<Node>),
    /// `-a`
    Neg(Box<Node>),
    /// `a && b` / `a || b` (`true`: `&&`), commutative over errors.
    Logic(bool, Box<Node>, Box<Node>),
    /// `c ? a : b`
    Cond(Box<Node>, Box<Node>, Box<Node>),
    /// `slot op literal` on a double slot.
    SlotCmpF64(usize, Arc<str>, Rel, f64),
    /// `slot op literal` on an int slot.
    SlotCmpI64(usize, Arc<str>, Rel, i64),
    /// `a op b`, both doubles.
    CmpF64(Rel, Box<Node>, Box<Node>),
    /// `a op b`, both ints.
    CmpI64(Rel, Box<Node>, Box<Node>),
    /// `a op b`, any types.
    Cmp(Rel, Box<Node>, Box<Node>),
    /// `a == "literal"` (`true`) / `a != "literal"` on a string (the literal a
    /// [`Value::String`], an operand of [`value::site_cost`]).
    EqStr(bool, Box<Node>, Value),
    /// `a == b` (`true`) / `a != b`.
    Eq(bool, Box<Node>, Box<Node>),
    /// `a in ["x", "y"]` on a string.
    InStrs(Box<Node>, Box<[Arc<str>]>),
    /// `a in [1, 2, 3]` on an int.
    InInts(Box<Node>, Box<[i64]>),
    /// `a in [literals]`.
    InLits(Box<Node>, Box<[Value]>),
    /// `a in b` (a list or map).
    In(Box<Node>, Box<Node>),
    /// `a op b`, both doubles.
    ArithF64(Arith, Box<Node>, Box<Node>),
    /// `a op b`, both ints.
    ArithI64(Arith, Box<Node>, Box<Node>),
    /// `a op b`, any types.
    Arith(Arith, Box<Node>, Box<Node>),
    /// `contains` / `startsWith` / `endsWith` on a string and a literal.
    StrLit(&'static overload::Overload, Box<Node>, Arc<str>),
    /// `matches` with a literal pattern, compiled once.
    Matches(Box<Node>, value::LiteralRegex),
    /// A call of a function the table does not have (only in unchecked trees).
    NoFunction(Box<[Node]>),
    /// Any other call: the function's overloads, chosen by the values.
    Call(Func, Box<[Node]>),
    /// A comprehension macro.
    Fold(Box<Fold>),
}

/// Where a field sits in the objects a node reads: contexts bind every object of one
/// declared type with its fields in the same order, so after the first lookup a field
/// is found at its slot with one comparison (a miss scans and moves the slot).
#[derive(Debug, Default)]
pub(crate) struct Slot(pub AtomicUsize);

impl Clone for Slot {
    fn clone(&self) -> Self {
        Slot(AtomicUsize::new(self.0.load(Ordering::Relaxed)))
    }
}

/// A comprehension: `range.kind(x, [filter,] body)`.
#[derive(Debug, Clone)]
pub(crate) struct Fold {
    /// Which macro.
    pub kind: Macro,
    /// The list or map.
    pub range: Node,
    /// The predicate or transform.
    pub body: Node,
    /// `map(x, filter, transform)`: the filter.
    pub filter: Option<Node>,
    /// Cost units charged per element.
    pub step_cost: u64,
}

/// The bounds a direct evaluation runs under (the sandbox's, see [`SandboxLimits`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// Cost units per evaluation (the sandbox's operation limit).
    pub cost: u64,
    /// Longest string built, in bytes.
    pub string: usize,
    /// Longest list built.
    pub list: usize,
}

impl Bounds {
    /// The bounds of these sandbox limits (both paths run under the same).
    #[must_use]
    pub(crate) fn of(limits: &SandboxLimits) -> Bounds {
        Bounds {
            cost: limits.max_operations,
            string: limits.max_string_size,
            list: limits.max_array_size,
        }
    }

    /// Does a value just built fit: a string within the string bound, a list within the
    /// list bound? The one rule both paths apply to every string and list they build
    /// (`+`, and each element a `map`/`filter` adds, checked as it is added).
    ///
    /// # Errors
    /// The bound it passes.
    pub(crate) fn fits(&self, v: &Value) -> Result<(), RunError> {
        match v {
            Value::String(s) => self.string_fits(s.len()),
            Value::List(l) => self.list_fits(l.len()),
            _ => Ok(()),
        }
    }

    /// A string of `len` bytes fits.
    ///
    /// # Errors
    /// The string bound.
    pub(crate) fn string_fits(&self, len: usize) -> Result<(), RunError> {
        if len > self.string {
            return Err(RunError::string_too_long(self.string));
        }
        Ok(())
    }

    /// A list of `len` elements fits.
    ///
    /// # Errors
    /// The list bound.
    pub(crate) fn list_fits(&self, len: usize) -> Result<(), RunError> {
        if len > self.list {
            return Err(RunError::list_too_long(self.list));
        }
        Ok(())
    }
}

/// A condition or expression lowered for the direct evaluator.
#[derive(Debug, Clone)]
pub struct Direct {
    pub(crate) root: Node,
    pub(crate) bounds: Bounds,
    /// The root is typed `bool` (else a condition's truth is checked at run time).
    pub(crate) root_bool: bool,
    /// The context slots it reads (sorted, each once).
    pub(crate) reads: Vec<usize>,
}

impl Direct {
    /// Lowers a checked expression (total: every tree the checker accepts lowers). A
    /// literal `matches` pattern is taken from `patterns`, which the sandbox program
    /// built from the same tree shares ([`Patterns`]).
    #[must_use]
    pub fn lower(e: &Expr, vars: &VarTable, limits: &SandboxLimits, patterns: &Patterns) -> Direct {
        let mut l = Lower {
            vars,
            patterns,
            locals: Vec::new(),
            reads: std::cell::RefCell::new(Vec::new()),
        };
        let root = l.node(e);
        let mut reads = l.reads.into_inner();
        reads.sort_unstable();
        reads.dedup();
        Direct {
            root,
            reads,
            bounds: Bounds::of(limits),
            root_bool: e.ty == Type::Bool,
        }
    }
}

struct Lower<'v> {
    vars: &'v VarTable,
    patterns: &'v Patterns,
    locals: Vec<String>,
    /// Every context slot a node reads.
    reads: std::cell::RefCell<Vec<usize>>,
}

fn rel(op: BinaryOp) -> Rel {
    match op {
        BinaryOp::Lt => Rel::Lt,
        BinaryOp::Le => Rel::Le,
        BinaryOp::Gt => Rel::Gt,
        _ => Rel::Ge,
    }
}

pub(super) fn arith(op: BinaryOp) -> Arith {
    match op {
        BinaryOp::Add => Arith::Add,
        BinaryOp::Sub => Arith::Sub,
        BinaryOp::Mul => Arith::Mul,
        BinaryOp::Div => Arith::Div,
        _ => Arith::Rem,
    }
}

pub(crate) fn literal(l: &Literal) -> Value {
    match l {
        Literal::Bool(b) => Value::Bool(*b),
        Literal::Int(i) => Value::Int(*i),
        Literal::Uint(u) => Value::Uint(*u),
        Literal::Double(d) => Value::Double(*d),
        Literal::String(s) => Value::string(s),
        Literal::Bytes(b) => Value::Bytes(b.as_slice().into()),
        Literal::Null => Value::Null,
    }
}

/// The literal `matches` patterns of the conditions compiled together (a flow, or one
/// condition), each compiled once: the direct path's `Matches` node and the sandbox
/// program (a constant of it, `codegen::Constant::Regex`) hold the same compiled regex,
/// so neither looks a literal pattern up at run time (the process-wide cache of
/// patterns read from the context may have dropped it).
#[derive(Debug, Default)]
pub struct Patterns(std::cell::RefCell<std::collections::HashMap<Box<str>, value::LiteralRegex>>);

impl Patterns {
    /// No patterns yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The compiled pattern of a call of `func` on `a` and `p` that both paths run
    /// with a regex compiled when the condition is built: `matches` of a string
    /// against a string literal that compiles (the one rule of lowering and codegen).
    pub(crate) fn literal(&self, func: Func, a: &Expr, p: &Expr) -> Option<value::LiteralRegex> {
        let ExprKind::Lit(Literal::String(lit)) = &p.kind else {
            return None;
        };
        if func != Func::Matches || a.ty != Type::String || p.ty != Type::String {
            return None;
        }
        if let Some(re) = self.0.borrow().get(lit.as_str()) {
            return Some(re.clone());
        }
        let re = value::LiteralRegex::new(lit).ok()?;
        self.0.borrow_mut().insert(lit.as_str().into(), re.clone());
        Some(re)
    }
}

fn string_lit(e: &Expr) -> Option<Arc<str>> {
    match &e.kind {
        ExprKind::Lit(Literal::String(s)) => Some(Arc::from(s.as_str())),
        _ => None,
    }
}

/// The argument of a `dyn(x)` call. `dyn` changes the static type only: both paths
/// evaluate `dyn(x)` as `x` (no node, no native call, no copy, no charge), read it in
/// place where they read `x` in place, and its node costs nothing in a comprehension
/// step ([`size`]), so `dyn(s) == dyn(t)` costs what `s == t` costs (decision 123).
#[must_use]
pub(crate) fn dyn_arg(e: &Expr) -> Option<&Expr> {
    match &e.kind {
        ExprKind::Call {
            target: None,
            name,
            args,
        } if Func::by_name(name) == Some(Func::Dyn) => match args.as_slice() {
            [x] => Some(x),
            _ => None,
        },
        _ => None,
    }
}

/// `e` without its `dyn(…)` wrappers ([`dyn_arg`]): the expression both paths evaluate.
#[must_use]
pub(crate) fn undyn(e: &Expr) -> &Expr {
    let mut e = e;
    while let Some(x) = dyn_arg(e) {
        e = x;
    }
    e
}

/// The static cost of one evaluation of a subtree: a unit per node, plus each call's
/// cost from the overload table (a `dyn(…)` node is no node, and a call's argument
/// under `dyn(…)` selects overloads by its own type: [`dyn_arg`]).
fn size(e: &Expr) -> u64 {
    let mut n = 0u64;
    e.walk(&mut |node| {
        if dyn_arg(node).is_some() {
            return;
        }
        // `m["k"]` read in place is `m.k` (`codegen::read_in_place`): its key literal
        // is the field's one node
        if matches!(node.kind, ExprKind::Index(..)) && super::codegen::read_in_place(node).is_some()
        {
            return;
        }
        n += 1;
        if let ExprKind::Call { target, name, args } = &node.kind {
            let types: Vec<Type> = target
                .iter()
                .map(|t| &**t)
                .chain(args)
                .map(|a| undyn(a).ty.clone())
                .collect();
            if let overload::Resolved::Found { cost, .. } = overload::resolve(name, &types) {
                n += u64::from(cost);
            }
        }
    });
    n
}

/// How one evaluation of a node is charged against the budget beyond its static
/// [`size`], by kind ([`overload::Charge`]): the static side of the run-time charges,
/// node by node, which `check` reads for the "unless evaluating it runs out of a limit"
/// caveat (decision 122, [`super::may_hit_limit`]). `tests/expr_gen.rs` holds it to what
/// both paths charge: a generated expression none of whose nodes is charged by size
/// must run within a budget of nothing on huge contexts.
pub(crate) use overload::Charge;

/// How one evaluation of this node is charged ([`Charge`]): whether it can cost more
/// than its static [`size`], by the size of the values it reads or builds, so that it
/// can run out of the evaluation budget (or build a string or list past its limit)
/// whatever the rest of the expression.
///
/// Read from the tables, never decided here: a call or a table operator by the
/// [`overload::Sizing`] column of the rows its operand types select
/// ([`overload::call_charge`], [`overload::operator_charge`]), every other operation by
/// its [`Site`] on its operands' types ([`Site::charge_on`], [`site_charge`]).
#[must_use]
pub(crate) fn charge(e: &Expr) -> Charge {
    // `dyn(x)` is `x` on both paths: no node of its own ([`dyn_arg`])
    if dyn_arg(e).is_some() {
        return Charge::Unit;
    }
    match &e.kind {
        ExprKind::Comprehension { .. } => Site::Step.charge(),
        ExprKind::Binary(op @ (BinaryOp::Eq | BinaryOp::Ne | BinaryOp::In), a, b) => {
            site_charge(*op, a, b)
        }
        ExprKind::Binary(op, a, b) => {
            overload::operator_charge(*op, &a.ty, &b.ty).unwrap_or(Charge::Unit)
        }
        // a field read in place costs its node (`codegen::read_in_place`)
        _ if super::codegen::read_in_place(e).is_some() => Charge::Unit,
        ExprKind::Index(_, i) if overload::sized(&i.ty) => Site::Key.charge(),
        // an element taken, or a field copied: charged by the value copied
        ExprKind::Index(..) | ExprKind::Select(..) => Site::Take.charge_on([&e.ty]),
        ExprKind::Call { target, name, args } => {
            let types: Vec<Type> = target
                .iter()
                .map(|t| &**t)
                .chain(args)
                .map(|a| a.ty.clone())
                .collect();
            overload::call_charge(name, &types)
        }
        ExprKind::List(items) => Site::Literal.charge_on(items.iter().map(|i| &i.ty)),
        ExprKind::Map(entries) => {
            Site::Literal.charge_on(entries.iter().flat_map(|(k, v)| [&k.ty, &v.ty]))
        }
        ExprKind::Lit(_)
        | ExprKind::Ident(_)
        | ExprKind::HasVar(_)
        | ExprKind::Has(..)
        | ExprKind::Unary(..)
        | ExprKind::Cond(..) => Charge::Unit,
    }
}

/// How an `==`, `!=` or `in` node is charged: its [`Site`] on its operands' static types
/// ([`Site::charge_on`]), except that `in` on a list written of literals
/// ([`literal_items`]) costs only its node on both paths. The one rule [`charge`] reads
/// and codegen chooses by: a plain Rhai operator (or a chain of them) where it is
/// [`Charge::Unit`], a native charging the site ([`value::site_cost`]) where it is not.
#[must_use]
pub(crate) fn site_charge(op: BinaryOp, a: &Expr, b: &Expr) -> Charge {
    match op {
        BinaryOp::In if literal_items(b).is_some() => Charge::Unit,
        BinaryOp::In => Site::Membership.charge_on([&a.ty, &b.ty]),
        _ => Site::Equality.charge_on([&a.ty, &b.ty]),
    }
}

/// What one step of a comprehension costs: a unit for the step, plus the static size
/// of its body and filter. The one definition both paths charge per element: the
/// lowering stores it in [`Fold::step_cost`], codegen writes it into the sandbox's
/// `cel_step` call.
#[must_use]
pub(crate) fn step_cost(body: &Expr, filter: Option<&Expr>) -> u64 {
    1 + size(body) + filter.map_or(0, size)
}

/// The literals of a list written of literals only (`[1, 2]`, `["a"]`, `[]`): `x in`
/// such a list costs only its node on both paths (no unit per element compared).
#[must_use]
pub(crate) fn literal_items(e: &Expr) -> Option<Vec<Value>> {
    let ExprKind::List(items) = &undyn(e).kind else {
        return None;
    };
    items
        .iter()
        .map(|i| match &i.kind {
            ExprKind::Lit(l) => Some(literal(l)),
            _ => None,
        })
        .collect()
}

#[expect(
    clippy::unnecessary_box_returns,
    reason = "builds the boxed children of tree nodes"
)]
fn bx(n: Node) -> Box<Node> {
    Box::new(n)
}

impl Lower<'_> {
    fn node(&mut self, e: &Expr) -> Node {
        if let Some(x) = dyn_arg(e) {
            return self.node(x);
        }
        // `a.f` and `m["f"]` read in place in the sandbox: one node, no charge
        if let Some((a, f)) = super::codegen::read_in_place(e) {
            return Node::Field(bx(self.node(a)), Arc::from(f), Slot::default());
        }
        match &e.kind {
            ExprKind::Lit(l) => Node::Lit(literal(l)),
            ExprKind::Ident(name) => self.ident(name),

            ExprKind::Select(a, f) => {
                Node::FieldCopied(bx(self.node(a)), Arc::from(f.as_str()), Slot::default())
            }
            ExprKind::Has(a, f) => Node::Has(bx(self.node(a)), Arc::from(f.as_str())),
            ExprKind::HasVar(name) => match self.vars.index(name) {
                Some(slot) => {
                    self.reads.borrow_mut().push(slot);
                    Node::Bound(slot)
                }
                None => Node::Lit(Value::Bool(false)),
            },
            ExprKind::Index(a, i) => Node::Index(bx(self.node(a)), bx(self.node(i))),
            ExprKind::List(items) => Node::List(items.iter().map(|i| self.node(i)).collect()),
            ExprKind::Map(entries) => Node::Map(
                entries
                    .iter()
                    .map(|(k, v)| (self.node(k), self.node(v)))
                    .collect(),
            ),
            ExprKind::Unary(UnaryOp::Not, a) => Node::Not(bx(self.node(a))),
            ExprKind::Unary(UnaryOp::Neg, a) => Node::Neg(bx(self.node(a))),
            ExprKind::Cond(c, a, b) => {
                Node::Cond(bx(self.node(c)), bx(self.node(a)), bx(self.node(b)))
            }
            ExprKind::Binary(op, a, b) => self.binary(*op, a, b),
            ExprKind::Call { target, name, args } => self.call(target.as_deref(), name, args),
            ExprKind::Comprehension {
                kind,
                range,
                var,
                body,
                filter,
            } => {
                let range = self.node(range);
                self.locals.push(var.clone());
                let filter_node = filter.as_ref().map(|f| self.node(f));
                let body_node = self.node(body);
                self.locals.pop();
                Node::Fold(Box::new(Fold {
                    kind: *kind,
                    range,
                    body: body_node,
                    filter: filter_node,
                    step_cost: step_cost(body, filter.as_deref()),
                }))
            }
        }
    }

    fn ident(&self, name: &str) -> Node {
        if let Some(depth) = self.locals.iter().rev().position(|l| l == name) {
            return Node::Local(depth);
        }
        match self.vars.index(name) {
            Some(slot) => {
                self.reads.borrow_mut().push(slot);
                Node::Slot(slot, Arc::from(name))
            }
            None => Node::Unbound(Arc::from(name)),
        }
    }

    fn slot(&self, e: &Expr) -> Option<(usize, Arc<str>)> {
        match self.ident_of(e)? {
            Node::Slot(i, n) => Some((i, n)),
            _ => None,
        }
    }

    fn ident_of(&self, e: &Expr) -> Option<Node> {
        match &e.kind {
            ExprKind::Ident(n) => Some(self.ident(n)),
            _ => None,
        }
    }

    fn binary(&mut self, op: BinaryOp, a: &Expr, b: &Expr) -> Node {
        use Type::{Double, Int, String as Str};
        let (ta, tb) = (&a.ty, &b.ty);
        match op {
            BinaryOp::And | BinaryOp::Or => {
                Node::Logic(op == BinaryOp::And, bx(self.node(a)), bx(self.node(b)))
            }
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
                let r = rel(op);
                match (ta, tb, &b.kind) {
                    (Double, Double, ExprKind::Lit(Literal::Double(x))) => {
                        if let Some((i, n)) = self.slot(a) {
                            return Node::SlotCmpF64(i, n, r, *x);
                        }
                        Node::CmpF64(r, bx(self.node(a)), bx(self.node(b)))
                    }
                    (Int, Int, ExprKind::Lit(Literal::Int(x))) => {
                        if let Some((i, n)) = self.slot(a) {
                            return Node::SlotCmpI64(i, n, r, *x);
                        }
                        Node::CmpI64(r, bx(self.node(a)), bx(self.node(b)))
                    }
                    (Double, Double, _) => Node::CmpF64(r, bx(self.node(a)), bx(self.node(b))),
                    (Int, Int, _) => Node::CmpI64(r, bx(self.node(a)), bx(self.node(b))),
                    _ => Node::Cmp(r, bx(self.node(a)), bx(self.node(b))),
                }
            }
            BinaryOp::Eq | BinaryOp::Ne => {
                let eq = op == BinaryOp::Eq;
                match (ta, tb, string_lit(a), string_lit(b)) {
                    (Str, Str, _, Some(l)) => Node::EqStr(eq, bx(self.node(a)), Value::String(l)),
                    (Str, Str, Some(l), None) => {
                        Node::EqStr(eq, bx(self.node(b)), Value::String(l))
                    }
                    _ => Node::Eq(eq, bx(self.node(a)), bx(self.node(b))),
                }
            }
            BinaryOp::In => self.membership(a, b),
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => {
                let o = arith(op);
                match (ta, tb) {
                    (Double, Double) if o != Arith::Rem => {
                        Node::ArithF64(o, bx(self.node(a)), bx(self.node(b)))
                    }
                    (Int, Int) => Node::ArithI64(o, bx(self.node(a)), bx(self.node(b))),
                    _ => Node::Arith(o, bx(self.node(a)), bx(self.node(b))),
                }
            }
        }
    }

    fn membership(&mut self, a: &Expr, b: &Expr) -> Node {
        if let Some(lits) = literal_items(b) {
            let strs: Option<Box<[Arc<str>]>> = lits
                .iter()
                .map(|v| match v {
                    Value::String(s) => Some(Arc::clone(s)),
                    _ => None,
                })
                .collect();
            let ints: Option<Box<[i64]>> = lits
                .iter()
                .map(|v| match v {
                    Value::Int(i) => Some(*i),
                    _ => None,
                })
                .collect();
            return match (strs, ints) {
                (Some(set), _) if a.ty == Type::String => Node::InStrs(bx(self.node(a)), set),
                (_, Some(set)) if a.ty == Type::Int => Node::InInts(bx(self.node(a)), set),
                _ => Node::InLits(bx(self.node(a)), lits.into()),
            };
        }
        Node::In(bx(self.node(a)), bx(self.node(b)))
    }

    fn call(&mut self, target: Option<&Expr>, name: &str, args: &[Expr]) -> Node {
        let all: Vec<&Expr> = target.into_iter().chain(args.iter()).collect();
        let types: Vec<Type> = all.iter().map(|e| e.ty.clone()).collect();
        let func = match overload::resolve(name, &types) {
            overload::Resolved::Found { func, .. } | overload::Resolved::NoMatch(func)
                if matches!(all.len(), 1 | 2) =>
            {
                func
            }
            // only unchecked trees get here: the arguments run, then the call fails, as
            // in the sandbox
            _ => return Node::NoFunction(all.iter().map(|e| self.node(e)).collect()),
        };
        if let [a, b] = all.as_slice() {
            if let Some(re) = self.patterns.literal(func, a, b) {
                return Node::Matches(bx(self.node(a)), re);
            }
            if matches!(func, Func::Contains | Func::StartsWith | Func::EndsWith)
                && a.ty == Type::String
                && b.ty == Type::String
                && let overload::Resolved::Found {
                    exact: Some(row), ..
                } = overload::resolve(name, &types)
                && let Some(lit) = string_lit(b)
            {
                return Node::StrLit(row, bx(self.node(a)), lit);
            }
        }
        Node::Call(func, all.iter().map(|e| self.node(e)).collect())
    }
}
