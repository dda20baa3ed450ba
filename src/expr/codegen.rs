//! Code generation: a typed [`Expr`] → Rhai source.
//!
//! Operations whose operand types are statically simple (int, double, string, bool)
//! become Rhai's own operators (checked arithmetic, no native call); everything else
//! calls the CEL natives registered by the sandbox. Values that Rhai cannot write as
//! literals become named constants that the optimizer folds into the AST.

use std::fmt::Write as _;

use super::Type;
use super::ast::{BinaryOp, Expr, ExprKind, Literal, Macro, UnaryOp};
use super::ir;
use super::overload::{self, Charge};
use super::value::Value;

/// Generated source plus the constants it refers to (`k0`, `k1`, ...).
#[derive(Debug, Default)]
pub struct Generated {
    /// Rhai source.
    pub source: String,
    /// Constants by index.
    pub constants: Vec<Constant>,
}

/// A constant of a generated program, folded into its AST when it is compiled.
#[derive(Debug, Clone)]
pub enum Constant {
    /// A value Rhai has no literal for.
    Value(Value),
    /// A literal `matches` pattern, compiled when the condition was built (shared with
    /// the direct path's `Matches` node through [`ir::Patterns`]).
    Regex(super::value::LiteralRegex),
}

/// Rhai variable names for the declared variables, by CEL name.
pub trait VarNames {
    /// The Rhai name of a variable, if declared.
    fn rhai_name(&self, cel: &str) -> Option<String>;
    /// May the variable be absent at run time (an optional field)?
    fn may_be_unbound(&self, cel: &str) -> bool;
}

/// A Rhai place ([`Gen::place`]): its path, and the optional context variable it
/// starts from (Rhai name, CEL name), which must be bound before the path is read.
struct Place {
    path: String,
    guard: Option<(String, String)>,
}

struct Gen<'a> {
    vars: &'a dyn VarNames,
    patterns: &'a ir::Patterns,
    out: Generated,
    /// Comprehension variables in scope: (CEL name, Rhai name).
    locals: Vec<(String, String)>,
    counter: usize,
}

/// Every word Rhai 1.27 keeps for itself: the alphabetic entries of its keyword and
/// reserved-word tables (`rhai/src/types/token.rs`, `KEYWORDS_LIST` and
/// `RESERVED_LIST`), `is` included (probe q11f bug E). A field or key named so is read
/// by an index (`m["is"]`, [`access`]), never written as a Rhai property.
const RHAI_KEYWORDS: &[&str] = &[
    "true",
    "false",
    "let",
    "const",
    "if",
    "else",
    "switch",
    "do",
    "while",
    "loop",
    "until",
    "for",
    "in",
    "continue",
    "break",
    "return",
    "throw",
    "try",
    "catch",
    "fn",
    "private",
    "import",
    "export",
    "as",
    "global",
    "Fn",
    "call",
    "curry",
    "this",
    "type_of",
    "print",
    "debug",
    "eval",
    "is_def_var",
    "is_def_fn",
    "is_shared",
    "var",
    "static",
    "shared",
    "sync",
    "async",
    "await",
    "yield",
    "default",
    "void",
    "null",
    "nil",
    "spawn",
    "thread",
    "go",
    "goto",
    "is",
    "exit",
    "match",
    "case",
    "public",
    "protected",
    "new",
    "use",
    "with",
    "module",
    "package",
    "super",
    "thread",
];

/// Generates Rhai source for an expression.
#[must_use]
pub fn generate(e: &Expr, vars: &dyn VarNames, patterns: &ir::Patterns) -> Generated {
    let mut g = Gen {
        vars,
        patterns,
        out: Generated::default(),
        locals: Vec::new(),
        counter: 0,
    };
    let src = g.expr(e);
    g.out.source = src;
    g.out
}

/// Generates a boolean condition (a `dyn` result is checked to be a bool at run time).
#[must_use]
pub fn generate_condition(e: &Expr, vars: &dyn VarNames, patterns: &ir::Patterns) -> Generated {
    let mut g = Gen {
        vars,
        patterns,
        out: Generated::default(),
        locals: Vec::new(),
        counter: 0,
    };
    let src = g.boolean(e);
    g.out.source = src;
    g.out
}

/// Generates one program that evaluates decision rules in order and yields the index
/// of the first rule that holds (`first`), or an array of all that hold (`unique`);
/// `-1` / `[]` when none does.
#[must_use]
pub fn generate_decision(
    rules: &[&Expr],
    unique: bool,
    vars: &dyn VarNames,
    patterns: &ir::Patterns,
) -> Generated {
    let mut g = Gen {
        vars,
        patterns,
        out: Generated::default(),
        locals: Vec::new(),
        counter: 0,
    };
    let mut src = String::new();
    if unique {
        src.push_str("let hits = [];\n");
        for (i, r) in rules.iter().enumerate() {
            let c = g.boolean(r);
            let _ = writeln!(src, "if ({c}) {{ hits.push({i}); }}");
        }
        src.push_str("hits");
    } else {
        // one flat statement per rule (not an `else if` chain: Rhai's parser and
        // optimizer recurse once per `else`, and a table of a thousand rules would
        // overflow the stack)
        for (i, r) in rules.iter().enumerate() {
            let c = g.boolean(r);
            let _ = writeln!(src, "if ({c}) {{ return {i}; }}");
        }
        src.push_str("-1");
    }
    g.out.source = src;
    g.out
}

/// Can evaluating this node raise a run-time error?
#[must_use]
pub fn may_error(e: &Expr, vars: &dyn VarNames) -> bool {
    let mut err = false;
    e.walk(&mut |n| {
        err |= match &n.kind {
            ExprKind::Ident(name) => vars.may_be_unbound(name) || vars.rhai_name(name).is_none(),
            ExprKind::Lit(_) | ExprKind::List(_) | ExprKind::HasVar(_) => false,
            ExprKind::Map(entries) => map_may_fail(entries),
            ExprKind::Unary(UnaryOp::Not, a) => a.ty != Type::Bool,
            ExprKind::Unary(UnaryOp::Neg, a) => a.ty != Type::Double,
            ExprKind::Binary(op, a, b) => match op {
                BinaryOp::And | BinaryOp::Or => a.ty != Type::Bool || b.ty != Type::Bool,
                BinaryOp::Eq | BinaryOp::Ne => false,
                BinaryOp::In => b.ty == Type::Dyn,
                // the overload table says which typed operators can fail; with a `dyn`
                // side the overload is chosen at run time and may not exist
                BinaryOp::Lt
                | BinaryOp::Le
                | BinaryOp::Gt
                | BinaryOp::Ge
                | BinaryOp::Add
                | BinaryOp::Sub
                | BinaryOp::Mul
                | BinaryOp::Div
                | BinaryOp::Rem => {
                    a.ty == Type::Dyn
                        || b.ty == Type::Dyn
                        || overload::operator(*op, &a.ty, &b.ty).is_none_or(|o| o.can_fail)
                }
            },
            ExprKind::Cond(c, _, _) => c.ty != Type::Bool,
            // the overload table says which calls can fail on these types
            ExprKind::Call { target, name, args } => {
                let types: Vec<Type> = target
                    .iter()
                    .map(|t| t.ty.clone())
                    .chain(args.iter().map(|a| a.ty.clone()))
                    .collect();
                match overload::resolve(name, &types) {
                    overload::Resolved::Found { can_fail, .. } => can_fail,
                    _ => true,
                }
            }
            _ => true,
        };
    });
    err
}

/// Can building a map literal with these entries fail (`value::build_map`: a key of
/// a type maps cannot have, or a key given twice)? Not when its one key is typed a
/// key type, nor when its keys are literals that build a map (decision 125: the
/// error is CEL's ordinary one, absorbed by `&&`/`||` as on the direct path).
fn map_may_fail(entries: &[(Expr, Expr)]) -> bool {
    if let [(k, _)] = entries {
        return !matches!(k.ty, Type::String | Type::Int | Type::Uint | Type::Bool);
    }
    entries
        .iter()
        .map(|(k, _)| match &k.kind {
            ExprKind::Lit(l) => Some((ir::literal(l), Value::Null)),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
        .is_none_or(|pairs| super::value::build_map(pairs).is_err())
}

fn rhai_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\U{:08X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Is a field of `a` read in place by Rhai's own access to a map's field ([`access`]),
/// which walks a chain of them by reference ([`Gen::place`])? So it is on an object
/// and on a map with string keys (a Rhai map: a missing key is `NoSuchKey`, as on the
/// direct path), whatever the field's name (the cost never depends on Rhai's name
/// rules, decision 127), `a`'s type read through `dyn(…)` (which changes the static
/// type only, `ir::dyn_arg`: `dyn(m).k` is `m.k`). Else (a value typed `dyn`)
/// `cel_select` copies the field's value, which both paths charge
/// ([`value::copy_cost`]; the direct path reads this rule where it lowers the field,
/// `ir::Lower`).
///
/// [`value::copy_cost`]: super::value::copy_cost
pub(crate) fn field_in_place(a: &Expr) -> bool {
    match &ir::undyn(a).ty {
        Type::Object(_) => true,
        Type::Map(k, _) => **k == Type::String,
        _ => false,
    }
}

/// Rhai's access to a map's field `field` in place, written after the map: `.field`
/// (a property) when the name is a Rhai identifier, else `["field"]` (an index by
/// the string, which Rhai also walks by reference and which fails on a missing key as
/// a property does): `_1`, `is`, `中文`, `a b`.
fn access(field: &str) -> String {
    if is_rhai_ident(field) {
        format!(".{field}")
    } else {
        format!("[{}]", rhai_string(field))
    }
}

/// `e` read as Rhai's own property access in place ([`field_in_place`]): the object
/// or map and the field's name, for `a.field`, and for `a["key"]`, a map with string
/// keys indexed by a string literal, which is the same read (CEL: `m["k"]` is `m.k`)
/// and costs what it does on both paths (decision 125; the direct path lowers both to
/// one field node, `ir::Lower`).
pub(crate) fn read_in_place(e: &Expr) -> Option<(&Expr, &str)> {
    match &e.kind {
        ExprKind::Select(a, field) if field_in_place(a) => Some((a, field)),
        ExprKind::Index(a, i) => match (&ir::undyn(a).ty, &ir::undyn(i).kind) {
            (Type::Map(k, _), ExprKind::Lit(Literal::String(key)))
                if **k == Type::String && field_in_place(a) =>
            {
                Some((a, key))
            }
            _ => None,
        },
        _ => None,
    }
}

/// `e`, under its `dyn(…)` wrappers, as a `?:` whose value Rhai would copy to yield
/// it: a list, map or object (or `dyn`, which may be one). Rhai's `if` yields a copy
/// of the branch it takes, so a read of such a pick is pushed into its branches
/// ([`Gen::pick_read`]); a string or bytes value is shared, not copied.
fn pick(e: &Expr) -> Option<&Expr> {
    let x = ir::undyn(e);
    if matches!(x.kind, ExprKind::Cond(..))
        && matches!(
            x.ty,
            Type::List(_) | Type::Map(..) | Type::Object(_) | Type::Dyn
        )
    {
        return Some(x);
    }
    // a field read in place from a pick (`(c ? o : p).codes`) is read from the branch
    // taken too: Rhai would copy the field's value out of the copy
    read_in_place(x).and_then(|(a, _)| pick(a))
}

/// The operands of a read that the sandbox reads in place where they are places, in
/// CEL's order of evaluation: a field's or `has`'s object, an index's collection and
/// key, a one- or two-argument call's arguments, the operands of `in`, `==` and `!=`.
/// (`<`, `+`, the arithmetic, `!` and `-` copy a place anyway, decision 100; `&&`,
/// `||` and `?:` evaluate an operand only when needed; a comprehension's range is
/// read by its loop on the branch taken, [`Gen::leaf_places`].)
fn read_operands(e: &Expr) -> Vec<&Expr> {
    match &e.kind {
        ExprKind::Select(a, _) | ExprKind::Has(a, _) => vec![a],
        ExprKind::Index(a, i)
        | ExprKind::Binary(BinaryOp::In | BinaryOp::Eq | BinaryOp::Ne, a, i) => {
            vec![a, i]
        }
        ExprKind::Call { target, args, .. } if ir::dyn_arg(e).is_none() => {
            let all: Vec<&Expr> = target.iter().map(|t| &**t).chain(args).collect();
            if matches!(all.len(), 1 | 2) {
                all
            } else {
                Vec::new()
            }
        }
        _ => Vec::new(),
    }
}

/// `e` with each of its [`read_operands`] replaced by `f(index, operand)`, in the
/// same order.
fn map_operands(e: &Expr, mut f: impl FnMut(usize, &Expr) -> Expr) -> Expr {
    let mut i = 0;
    let mut next = |o: &Expr| {
        i += 1;
        Box::new(f(i - 1, o))
    };
    let kind = match &e.kind {
        ExprKind::Select(a, field) => ExprKind::Select(next(a), field.clone()),
        ExprKind::Has(a, field) => ExprKind::Has(next(a), field.clone()),
        ExprKind::Index(a, b) => {
            let a = next(a);
            ExprKind::Index(a, next(b))
        }
        ExprKind::Binary(op, a, b) => {
            let a = next(a);
            ExprKind::Binary(*op, a, next(b))
        }
        ExprKind::Call { target, name, args } => {
            let target = target.as_deref().map(&mut next);
            let args = args.iter().map(|a| *next(a)).collect();
            ExprKind::Call {
                target,
                name: name.clone(),
                args,
            }
        }
        other => other.clone(),
    };
    Expr {
        kind,
        span: e.span,
        ty: e.ty.clone(),
    }
}

/// `e` with its [`pick`] replaced by `leaf`: the `dyn(…)` wrappers and the fields
/// read in place from the pick kept (they choose the overloads and the reads by the
/// static types, as on the direct path).
fn on_leaf(e: &Expr, leaf: &Expr) -> Expr {
    let rebuilt = |kind: ExprKind| Expr {
        kind,
        span: e.span,
        ty: e.ty.clone(),
    };
    if let (ExprKind::Call { target, name, .. }, Some(x)) = (&e.kind, ir::dyn_arg(e)) {
        return rebuilt(ExprKind::Call {
            target: target.clone(),
            name: name.clone(),
            args: vec![on_leaf(x, leaf)],
        });
    }
    match &e.kind {
        ExprKind::Cond(..) => leaf.clone(),
        ExprKind::Select(a, f) => rebuilt(ExprKind::Select(Box::new(on_leaf(a, leaf)), f.clone())),
        ExprKind::Index(a, i) => rebuilt(ExprKind::Index(Box::new(on_leaf(a, leaf)), i.clone())),
        _ => e.clone(),
    }
}

/// The branch a pick took ([`Gen::choose`]): `prelude` binds the temporaries of the
/// branches that are not places and then `k`, the index of the branch taken;
/// `leaves` are the branches as the read sees them (a place, or a comprehension-local
/// name of the temporary), typed as the pick is.
struct Chosen {
    prelude: String,
    k: String,
    leaves: Vec<Expr>,
    locals: Vec<(String, String)>,
}

/// `if k == 0 { r0 } else if k == 1 { r1 } else { r2 }`: the read of the branch taken.
fn dispatch(k: &str, reads: &[String]) -> String {
    let mut s = String::from("(");
    let last = reads.len().saturating_sub(1);
    for (i, r) in reads.iter().enumerate() {
        if i < last {
            let _ = write!(s, "if {k} == {i} {{ {r} }} else ");
        } else {
            let _ = write!(s, "{{ {r} }}");
        }
    }
    s.push(')');
    s
}

fn is_rhai_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        // a letter first: Rhai refuses some names that start with `_` (`_`, `_1`,
        // `_9z`; probe q11e bug D), which are then read by an index ([`access`])
        .is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !RHAI_KEYWORDS.contains(&s)
}

impl Gen<'_> {
    fn fresh(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}{}", self.counter)
    }

    /// `e` as a Rhai place, when it is one: a variable (a context variable or a
    /// comprehension's) or a chain of fields read in place from one ([`read_in_place`]:
    /// `v3.items`). A native that takes its first argument by `&mut`, called on a
    /// place as a method (`v3.items.cel_in(x)`), reads the value in place: Rhai passes
    /// a variable by reference and walks a chain by reference to the method at its end,
    /// where any other argument is a copy. Rhai evaluates the method's other arguments
    /// before the place. A place from an optional context variable is read only inside
    /// its guard ([`Gen::guarded`]): never copied to be read, as a required one is not
    /// (decision 125).
    fn place(&self, e: &Expr) -> Option<Place> {
        if let Some((a, field)) = read_in_place(e) {
            let p = self.place(a)?;
            return Some(Place {
                path: format!("{}{}", p.path, access(field)),
                guard: p.guard,
            });
        }
        match &e.kind {
            ExprKind::Ident(name) => {
                if let Some((_, r)) = self.locals.iter().rev().find(|(n, _)| n == name) {
                    return Some(Place {
                        path: r.clone(),
                        guard: None,
                    });
                }
                let r = self.vars.rhai_name(name)?;
                let guard = self
                    .vars
                    .may_be_unbound(name)
                    .then(|| (r.clone(), name.clone()));
                Some(Place { path: r, guard })
            }
            // `dyn(x)` is `x` (`ir::dyn_arg`)
            _ => self.place(ir::dyn_arg(e)?),
        }
    }

    /// `body`, which reads place `p`, run where the place's optional variable is bound;
    /// else CEL's "no value for `name`" under its CEL name (Rhai's own error would name
    /// the slot, `v12`). The guard is checked before `body` runs anything: the place
    /// must be what CEL evaluates first in `body`.
    fn guarded(p: &Place, body: &str) -> String {
        match &p.guard {
            Some((r, name)) => format!(
                "(if is_def_var({}) {{ {body} }} else {{ cel_unbound({}) }})",
                rhai_string(r),
                rhai_string(name)
            ),
            None => body.to_owned(),
        }
    }

    /// Evaluates pick `p` (a `?:` and the `?:`s in its branches) to the index of the
    /// branch taken, in CEL's order: each condition, then the branch it takes. A branch
    /// that is a place is not read here (only its guard is checked); any other is
    /// evaluated into a temporary (a value it builds, charged as the direct path
    /// charges it, never a copy of a place).
    fn choose(&mut self, p: &Expr) -> Chosen {
        let mut c = Chosen {
            prelude: String::new(),
            k: self.fresh("p"),
            leaves: Vec::new(),
            locals: Vec::new(),
        };
        let mut lets = String::new();
        let sel = self.select(p, &p.ty, &mut lets, &mut c);
        c.prelude = format!("{lets}let {} = {sel};", c.k);
        c
    }

    fn select(&mut self, e: &Expr, ty: &Type, lets: &mut String, c: &mut Chosen) -> String {
        let e = ir::undyn(e);
        if let ExprKind::Cond(cond, a, b) = &e.kind {
            let sc = self.boolean(cond);
            let sa = self.select(a, ty, lets, c);
            let sb = self.select(b, ty, lets, c);
            return format!("(if ({sc}) {{ {sa} }} else {{ {sb} }})");
        }
        let i = c.leaves.len();
        if let Some(place) = self.place(e) {
            // typed as the pick: the read is the one CEL checked (and the direct path
            // lowered) on the pick
            c.leaves.push(Expr {
                kind: e.kind.clone(),
                span: e.span,
                ty: ty.clone(),
            });
            return Self::guarded(&place, &i.to_string());
        }
        let s = self.fresh("s");
        let v = self.expr(e);
        let _ = write!(lets, "let {s} = (); ");
        // a name no CEL variable has, bound to the temporary while the read is written
        let name = format!("${s}");
        c.locals.push((name.clone(), s.clone()));
        c.leaves.push(Expr {
            kind: ExprKind::Ident(name),
            span: e.span,
            ty: ty.clone(),
        });
        format!("{{ {s} = {v}; {i} }}")
    }

    /// A read ([`read_operands`]) of a pick ([`pick`]), pushed into the pick's
    /// branches: Rhai's `if` would yield a copy of the list or map it takes, at every
    /// evaluation and uncharged (probe q11e bug A), where the direct path reads it in
    /// place. The operands before the pick are bound first, then the branch is chosen
    /// ([`Gen::choose`]), then the operands after it are bound, and the read is written
    /// once per branch, on the branch's place: CEL's order of evaluation (so the first
    /// error and what `&&`/`||` absorb), and the natives called, so the charges, are
    /// the same as on the pick. An operand that is quiet (or a list of literals, which
    /// `in` reads as its literals) stays where it is; a later pick is read the same way.
    fn pick_read(&mut self, e: &Expr) -> Option<String> {
        let ops = read_operands(e);
        let at = ops.iter().position(|o| pick(o).is_some())?;
        let p = ops.get(at).copied().and_then(pick)?;
        let mut out = String::from("({ ");
        let mut locals = Vec::new();
        // each operand as the read sees it: itself, or the temporary it is bound to
        let mut seen: Vec<Expr> = Vec::new();
        for o in ops.iter().take(at) {
            seen.push(self.bind(o, &mut out, &mut locals));
        }
        let chosen = self.choose(p);
        out.push_str(&chosen.prelude);
        out.push(' ');
        seen.push(p.clone());
        // the pick itself is settled once chosen; a field read from it may still fail,
        // so the operands after such a chain are evaluated after it, in each branch
        let settled = ops.get(at).is_some_and(|o| std::ptr::eq(ir::undyn(o), p));
        for o in ops.iter().skip(at + 1) {
            seen.push(if pick(o).is_some() || !settled {
                (*o).clone()
            } else {
                self.bind(o, &mut out, &mut locals)
            });
        }
        let depth = self.locals.len();
        self.locals.extend(locals);
        self.locals.extend(chosen.locals.iter().cloned());
        let reads: Vec<String> = chosen
            .leaves
            .iter()
            .map(|leaf| {
                let read = map_operands(e, |i, o| {
                    if i == at {
                        on_leaf(o, leaf)
                    } else {
                        seen.get(i).cloned().unwrap_or_else(|| o.clone())
                    }
                });
                self.expr(&read)
            })
            .collect();
        self.locals.truncate(depth);
        out.push_str(&dispatch(&chosen.k, &reads));
        out.push_str(" })");
        Some(out)
    }

    /// The Rhai place of `e` (whose [`pick`] was chosen as `c`) on each branch, read
    /// by a comprehension's loop: the branch's place, or its temporary, with the fields
    /// `e` reads from the pick.
    fn leaf_places(&mut self, e: &Expr, c: &Chosen) -> Option<Vec<String>> {
        let depth = self.locals.len();
        self.locals.extend(c.locals.iter().cloned());
        let paths = c
            .leaves
            .iter()
            .map(|leaf| self.place(&on_leaf(e, leaf)).map(|p| p.path))
            .collect();
        self.locals.truncate(depth);
        paths
    }

    /// Is `e` a temporary bound by [`Gen::bind`] (its name is no CEL name)?
    fn temporary(e: &Expr) -> bool {
        matches!(&ir::undyn(e).kind, ExprKind::Ident(n) if n.starts_with('$'))
    }

    /// Operand `o` of a [`Gen::pick_read`] bound to a temporary (written to `out`),
    /// unless it is quiet or a list of literals: the expression the read uses for it.
    fn bind(&mut self, o: &Expr, out: &mut String, locals: &mut Vec<(String, String)>) -> Expr {
        if self.quiet(o) || ir::literal_items(o).is_some() {
            return o.clone();
        }
        let t = self.fresh("t");
        let v = self.expr(o);
        let _ = write!(out, "let {t} = {v}; ");
        let name = format!("${t}");
        locals.push((name.clone(), t));
        Expr {
            kind: ExprKind::Ident(name),
            span: o.span,
            ty: o.ty.clone(),
        }
    }

    /// Is `e` evaluated without an error or a charge (a literal or a variable that is
    /// always bound), so that when it is evaluated does not matter?
    fn quiet(&self, e: &Expr) -> bool {
        let e = ir::undyn(e);
        matches!(e.kind, ExprKind::Lit(_))
            || matches!(e.kind, ExprKind::Ident(_))
                && self.place(e).is_some_and(|p| p.guard.is_none())
    }

    /// A native of two operands, CEL's left one evaluated first: called as a method on
    /// the right operand when it is a place (`{f}_r`, Rhai evaluates the left one first;
    /// bound first when the right place is guarded and the left one not quiet), else
    /// on the left one when it is a place and the right one is quiet or the left one a
    /// variable (the order cannot show, or the guard goes first as CEL's left operand
    /// does), else with both evaluated (`f`'s first argument is then never a variable,
    /// which Rhai would read last). `mid` is an argument written between the two (a
    /// function's index).
    fn two(&mut self, f: &str, mid: Option<String>, a: &Expr, b: &Expr) -> String {
        let mid = mid.map(|m| format!("{m}, ")).unwrap_or_default();
        // a temporary of a pick's read (`Gen::bind`) on the right is copied rather
        // than the branch's place on the left (a context collection)
        let lend_left = Self::temporary(b) && self.place(a).is_some();
        if let Some(pb) = self.place(b).filter(|_| !lend_left) {
            let quiet = pb.guard.is_none() || self.quiet(a);
            let sa = self.expr(a);
            if quiet {
                return Self::guarded(&pb, &format!("{}.{f}_r({mid}{sa})", pb.path));
            }
            let t = self.fresh("t");
            let call = Self::guarded(&pb, &format!("{}.{f}_r({mid}{t})", pb.path));
            return format!("{{ let {t} = {sa}; {call} }}");
        }
        if let Some(pa) = self.place(a)
            && (self.quiet(b) || matches!(ir::undyn(a).kind, ExprKind::Ident(_)))
        {
            let sb = self.expr(b);
            return Self::guarded(&pa, &format!("{}.{f}({mid}{sb})", pa.path));
        }
        let sa = self.expr(a);
        let sb = self.expr(b);
        if is_rhai_ident(&sa) {
            // (only unchecked trees: a variable that is not a place)
            let t = self.fresh("t");
            format!("{{ let {t} = {sa}; {f}({t}, {mid}{sb}) }}")
        } else {
            format!("{f}({sa}, {mid}{sb})")
        }
    }

    /// A native whose first argument is a collection taken by `&mut`: called as a
    /// method on it when it is a place and the rest is quiet (or the collection a
    /// variable), so it is read in place.
    fn on_collection(&mut self, f: &str, a: &Expr, rest: &[String], rest_quiet: bool) -> String {
        let rest = rest.join(", ");
        if let Some(pa) = self.place(a)
            && (rest_quiet || matches!(ir::undyn(a).kind, ExprKind::Ident(_)))
        {
            return Self::guarded(&pa, &format!("{}.{f}({rest})", pa.path));
        }
        let sa = self.expr(a);
        format!("{f}({sa}, {rest})")
    }

    fn constant(&mut self, c: Constant) -> String {
        let i = self.out.constants.len();
        self.out.constants.push(c);
        super::rhai_const(i)
    }

    /// A bool-valued expression (checked at run time when the type is `dyn`).
    fn boolean(&mut self, e: &Expr) -> String {
        let s = self.expr(e);
        if e.ty == Type::Bool {
            s
        } else {
            format!("cel_bool({s})")
        }
    }

    /// Evaluates to the value or to a captured error marker (for error-absorbing logic).
    fn captured(&mut self, e: &Expr) -> String {
        let s = self.expr(e);
        if may_error(e, self.vars) {
            let t = self.fresh("t");
            let er = self.fresh("e");
            format!(
                "{{ let {t} = (); try {{ {t} = {s}; }} catch ({er}) {{ {t} = cel_err({er}); }} {t} }}"
            )
        } else {
            s
        }
    }

    fn literal(&mut self, l: &Literal) -> String {
        match l {
            Literal::Bool(b) => b.to_string(),
            Literal::Null => "()".to_owned(),
            Literal::Int(i) if *i != i64::MIN => {
                if *i < 0 {
                    format!("({i})")
                } else {
                    i.to_string()
                }
            }
            Literal::Int(i) => self.constant(Constant::Value(Value::Int(*i))),
            Literal::Double(d) if d.is_finite() && d.fract() == 0.0 && d.abs() < 1e15 => {
                if *d < 0.0 || (*d == 0.0 && d.is_sign_negative()) {
                    format!("({d:.1})")
                } else {
                    format!("{d:.1}")
                }
            }
            Literal::Double(d) => self.constant(Constant::Value(Value::Double(*d))),
            Literal::String(s) => rhai_string(s),
            Literal::Uint(u) => self.constant(Constant::Value(Value::Uint(*u))),
            Literal::Bytes(b) => self.constant(Constant::Value(Value::Bytes(b.as_slice().into()))),
        }
    }

    #[expect(clippy::too_many_lines, reason = "one match over the AST")]
    fn expr(&mut self, e: &Expr) -> String {
        // `dyn(x)` is `x`: no native call, so no copy of a collection (`ir::dyn_arg`)
        if let Some(x) = ir::dyn_arg(e) {
            return self.expr(x);
        }
        // a read of a `?:` that picks a list, map or object: read in the branch taken
        if let Some(s) = self.pick_read(e) {
            return s;
        }
        // a field read in place: from a place (an optional variable's behind its
        // guard), else from the value `a` evaluates to
        if let Some((a, field)) = read_in_place(e) {
            if let Some(p) = self.place(e) {
                return Self::guarded(&p, &p.path);
            }
            let s = self.expr(a);
            return format!("{s}{}", access(field));
        }
        match &e.kind {
            ExprKind::Lit(l) => self.literal(l),
            // an absent optional field is CEL's "no value for `name`" (`Gen::guarded`)
            ExprKind::Ident(name) => match self.place(e) {
                Some(p) => Self::guarded(&p, &p.path),
                None => format!("cel_unbound({})", rhai_string(name)),
            },
            ExprKind::Select(a, field) => {
                self.on_collection("cel_select", a, &[rhai_string(field)], true)
            }
            // a required variable is always bound; an optional one is a Rhai variable
            // only when the context gives it (the sandbox binds what is present)
            ExprKind::HasVar(name) => match self.vars.rhai_name(name) {
                Some(r) if self.vars.may_be_unbound(name) => {
                    format!("is_def_var({})", rhai_string(&r))
                }
                Some(_) => "true".to_owned(),
                None => "false".to_owned(),
            },
            ExprKind::Has(a, field) => {
                self.on_collection("cel_has", a, &[rhai_string(field)], true)
            }
            ExprKind::Index(a, i) => {
                let si = self.expr(i);
                let quiet = self.quiet(i);
                self.on_collection("cel_index", a, &[si], quiet)
            }
            ExprKind::List(items) => {
                // an element that is not a literal is charged as it is placed (a list
                // or map by its size) before Rhai copies it into the list
                let parts: Vec<String> = items
                    .iter()
                    .map(|i| match i.kind {
                        ExprKind::Lit(_) => self.expr(i),
                        _ => format!("cel_item({})", self.expr(i)),
                    })
                    .collect();
                format!("[{}]", parts.join(", "))
            }
            ExprKind::Map(entries) => {
                // each key is charged as it is placed (`value::copy_cost`: a string by
                // its bytes; Rhai copies it into the map's own key type), a literal's
                // too, as the direct path's `Map` node charges every key
                let mut parts = Vec::new();
                for (k, v) in entries {
                    parts.push(format!("cel_item({})", self.expr(k)));
                    parts.push(match v.kind {
                        ExprKind::Lit(_) => self.expr(v),
                        _ => format!("cel_item({})", self.expr(v)),
                    });
                }
                format!("cel_map([{}])", parts.join(", "))
            }
            ExprKind::Unary(op, a) => {
                let s = self.expr(a);
                match (op, &a.ty) {
                    (UnaryOp::Not, Type::Bool) => format!("!({s})"),
                    (UnaryOp::Not, _) => format!("cel_not({s})"),
                    (UnaryOp::Neg, Type::Double) => format!("(-({s}))"),
                    (UnaryOp::Neg, _) => format!("cel_neg({s})"),
                }
            }
            ExprKind::Cond(c, a, b) => {
                let sc = self.boolean(c);
                let sa = self.expr(a);
                let sb = self.expr(b);
                format!("(if ({sc}) {{ {sa} }} else {{ {sb} }})")
            }
            ExprKind::Binary(op, a, b) => self.binary(*op, a, b),
            ExprKind::Call { target, name, args } => {
                let all: Vec<&Expr> = target.iter().map(|t| &**t).chain(args).collect();
                let types: Vec<Type> = all.iter().map(|a| a.ty.clone()).collect();
                // the checker accepted the call, so it resolves (the index of its function);
                // the arguments are read in place where they are places (`&mut` in the
                // sandbox: a context list's `size()`, a context string's `startsWith`)
                // a literal pattern that compiles: compiled now, once, a constant of the
                // program (the regex the direct path's `Matches` node holds), and only its
                // match charged at run time
                if let [a, p] = all.as_slice()
                    && let overload::Resolved::Found { func, .. } = overload::resolve(name, &types)
                    && let Some(re) = self.patterns.literal(func, a, p)
                {
                    let k = self.constant(Constant::Regex(re));
                    return self.on_collection("cel_matches_lit", a, &[k], true);
                }
                match (overload::resolve(name, &types), all.as_slice()) {
                    (
                        overload::Resolved::Found { func, .. } | overload::Resolved::NoMatch(func),
                        [a],
                    ) => self.on_collection("cel_f1", a, &[func.index().to_string()], true),
                    (
                        overload::Resolved::Found { func, .. } | overload::Resolved::NoMatch(func),
                        [a, b],
                    ) => self.two("cel_f2", Some(func.index().to_string()), a, b),
                    // only unchecked trees get here: the call fails at run time
                    _ => {
                        let parts: Vec<String> = all.iter().map(|a| self.expr(a)).collect();
                        format!("cel_f1([{}], {})", parts.join(", "), overload::FUNCS.len())
                    }
                }
            }
            ExprKind::Comprehension {
                kind,
                range,
                var,
                body,
                filter,
            } => {
                // A list is never copied for the loop (Rhai's `for` would copy it): the
                // loop steps through its indices and reads each element from the list in
                // place, a place (`Gen::place`) or else the list bound once; a map's keys
                // (or a `dyn` range's elements) are listed by `cel_iter`, the map read in
                // place. INVARIANT: no block between `in` and the loop body (Rhai does not
                // accept one there)
                let rv = self.fresh("r");
                let v = self.fresh("c");
                // a place from an optional variable: the whole loop behind its guard
                // (the range is what CEL evaluates first)
                let range_place = self.place(range);
                // a `?:` range: the branch chosen once, then read in place by the loop
                // (`Gen::pick_read`)
                let chosen = match (&range_place, pick(range)) {
                    (None, Some(p)) => {
                        let c = self.choose(p);
                        self.leaf_places(range, &c).map(|paths| (c, paths))
                    }
                    _ => None,
                };
                let on_chosen = |(c, paths): &(Chosen, Vec<String>),
                                 read: &dyn Fn(&str) -> String| {
                    let reads: Vec<String> = paths.iter().map(|p| read(p.as_str())).collect();
                    dispatch(&c.k, &reads)
                };
                let (head, header) = if matches!(ir::undyn(range).ty, Type::List(_)) {
                    let n = self.fresh("n");
                    let (head, len, elem) = match (&range_place, &chosen) {
                        (Some(p), _) => (
                            String::new(),
                            format!("{}.cel_len()", p.path),
                            format!("{}.cel_elem({n})", p.path),
                        ),
                        (None, Some(c)) => {
                            let len = self.fresh("len");
                            let lens = on_chosen(c, &|p| format!("{p}.cel_len()"));
                            (
                                format!("{} let {len} = {lens};", c.0.prelude),
                                len,
                                on_chosen(c, &|p| format!("{p}.cel_elem({n})")),
                            )
                        }
                        (None, None) => (
                            format!("let {rv} = {};", self.expr(range)),
                            format!("{rv}.cel_len()"),
                            format!("{rv}.cel_elem({n})"),
                        ),
                    };
                    (head, format!("for {n} in 0..{len} {{ let {v} = {elem};"))
                } else {
                    let (prelude, items) = match (&range_place, &chosen) {
                        (Some(p), _) => (String::new(), format!("{}.cel_iter()", p.path)),
                        (None, Some(c)) => (
                            format!("{} ", c.0.prelude),
                            on_chosen(c, &|p| format!("{p}.cel_iter()")),
                        ),
                        (None, None) => (String::new(), format!("cel_iter({})", self.expr(range))),
                    };
                    (
                        format!("{prelude}let {rv} = {items};"),
                        format!("for {v} in {rv} {{ {v}.cel_take();"),
                    )
                };
                let acc = self.fresh("a");
                // each step first charges the direct path's units for it (the one
                // definition, `ir::step_cost`), so both paths run out at the same step
                let step = format!("cel_step({});", ir::step_cost(body, filter.as_deref()));
                self.locals.push((var.clone(), v.clone()));
                let code = match kind {
                    Macro::All | Macro::Exists => {
                        let and_or = if *kind == Macro::All {
                            "cel_and"
                        } else {
                            "cel_or"
                        };
                        let stop = if *kind == Macro::All {
                            "cel_is_false"
                        } else {
                            "cel_is_true"
                        };
                        let b = self.captured(body);
                        format!(
                            "{{ {head} let {acc} = {init}; {header} {step} {acc} = {and_or}({acc}, {b}); if {stop}({acc}) {{ break; }} }} cel_settle({acc}) }}",
                            init = *kind == Macro::All
                        )
                    }
                    Macro::ExistsOne => {
                        let b = self.boolean(body);
                        format!(
                            "{{ {head} let {acc} = 0; {header} {step} if ({b}) {{ {acc} += 1; }} }} {acc} == 1 }}"
                        )
                    }
                    Macro::Map => {
                        let b = self.expr(body);
                        match filter {
                            Some(f) => {
                                let fs = self.boolean(f);
                                format!(
                                    "{{ {head} let {acc} = []; {header} {step} if ({fs}) {{ {acc}.push({b}); }} }} {acc} }}"
                                )
                            }
                            None => format!(
                                "{{ {head} let {acc} = []; {header} {step} {acc}.push({b}); }} {acc} }}"
                            ),
                        }
                    }
                    Macro::Filter => {
                        let b = self.boolean(body);
                        format!(
                            "{{ {head} let {acc} = []; {header} {step} if ({b}) {{ {acc}.push({v}); }} }} {acc} }}"
                        )
                    }
                };
                self.locals.pop();
                match &range_place {
                    Some(p) => Self::guarded(p, &code),
                    None => code,
                }
            }
        }
    }

    #[expect(clippy::too_many_lines, reason = "one arm per operator class")]
    fn binary(&mut self, op: BinaryOp, a: &Expr, b: &Expr) -> String {
        use Type::{Bool, Double, Int, String as Str};
        let simple = |t: &Type| matches!(t, Int | Double | Str | Bool);
        match op {
            BinaryOp::And | BinaryOp::Or => {
                if a.ty == Bool
                    && b.ty == Bool
                    && !may_error(a, self.vars)
                    && !may_error(b, self.vars)
                {
                    let sa = self.expr(a);
                    let sb = self.expr(b);
                    format!("({sa} {} {sb})", op.symbol())
                } else {
                    // CEL: `&&`/`||` are commutative over errors; as on the direct path,
                    // a left side that decides leaves the right side unevaluated (so it
                    // costs nothing and cannot run out of a limit), and an error on the
                    // left is absorbed when the right side decides (decision 105)
                    let sa = self.captured(a);
                    let sb = self.captured(b);
                    let (f, decided, value) = if op == BinaryOp::And {
                        ("cel_and", "cel_is_false", "false")
                    } else {
                        ("cel_or", "cel_is_true", "true")
                    };
                    let t = self.fresh("l");
                    format!(
                        "{{ let {t} = {sa}; if {decided}({t}) {{ {value} }} else {{ cel_settle({f}({t}, {sb})) }} }}"
                    )
                }
            }
            BinaryOp::In => {
                // uncharged where its site is (`ir::site_charge`: a list written of
                // literals costs only its node, as on the direct path)
                let unit = ir::site_charge(op, a, b) == Charge::Unit;
                // `x in [literals]` of the same simple type: a chain of comparisons, no list
                if unit
                    && let ExprKind::List(items) = &b.kind
                    && simple(&a.ty)
                    && !items.is_empty()
                    && items.len() <= 16
                    && items
                        .iter()
                        .all(|i| matches!(i.kind, ExprKind::Lit(_)) && i.ty == a.ty)
                    && matches!(a.kind, ExprKind::Ident(_) | ExprKind::Select(..))
                    && !may_error(a, self.vars)
                {
                    let sa = self.expr(a);
                    // doubles compare exactly (`d_eq`), as everywhere else
                    let parts: Vec<String> = items
                        .iter()
                        .map(|i| {
                            let si = self.expr(i);
                            if a.ty == Double {
                                format!("d_eq({sa}, {si})")
                            } else {
                                format!("{sa} == {si}")
                            }
                        })
                        .collect();
                    return format!("({})", parts.join(" || "));
                }
                let sa = self.expr(a);
                // any other list a unit per element compared, a map its key
                // (`Site::Membership`)
                let f = if unit { "cel_in_lits" } else { "cel_in" };
                // the collection goes first, by `&mut`: a place is read in place, not
                // copied, and Rhai evaluates it after the element (CEL's left-to-right
                // order: the first error is the one reported); anything else is
                // evaluated after the element is bound
                if let Some(pb) = self.place(b) {
                    if pb.guard.is_none() || self.quiet(a) {
                        Self::guarded(&pb, &format!("{}.{f}({sa})", pb.path))
                    } else {
                        // the element first, then the optional collection's guard
                        let t = self.fresh("t");
                        let call = Self::guarded(&pb, &format!("{}.{f}({t})", pb.path));
                        format!("{{ let {t} = {sa}; {call} }}")
                    }
                } else {
                    let sb = self.expr(b);
                    let t = self.fresh("t");
                    format!("{{ let {t} = {sa}; {f}({sb}, {t}) }}")
                }
            }
            // an equality its site charges (`ir::site_charge`: strings by their bytes,
            // collections per element) is the native charging it, reading a place in
            // place; so is every one of operands of different or not simple types
            BinaryOp::Eq | BinaryOp::Ne
                if !(a.ty == b.ty
                    && simple(&a.ty)
                    && ir::site_charge(op, a, b) == Charge::Unit) =>
            {
                let f = if op == BinaryOp::Eq {
                    "cel_eq"
                } else {
                    "cel_ne"
                };
                self.two(f, None, a, b)
            }
            _ => {
                let sa = self.expr(a);
                let sb = self.expr(b);
                let same_simple = a.ty == b.ty && simple(&a.ty);
                // an operation its rows charge by size is a native that charges it
                // (`cel_lt`, `cel_add`: strings by their bytes, the rows' `Sizing`)
                let by_units = overload::operator_charge(op, &a.ty, &b.ty) == Some(Charge::Unit);
                let native = match op {
                    BinaryOp::Eq | BinaryOp::Ne => same_simple,
                    BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
                        same_simple && a.ty != Bool && by_units
                    }
                    BinaryOp::Add => same_simple && a.ty != Bool && by_units,
                    BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div => {
                        a.ty == b.ty && matches!(a.ty, Int | Double)
                    }
                    BinaryOp::Rem => a.ty == Int && b.ty == Int,
                    _ => false,
                };
                if native
                    && a.ty == Double
                    && !matches!(
                        op,
                        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div
                    )
                {
                    // Rhai's own float comparisons use an epsilon; CEL's are exact
                    let f = match op {
                        BinaryOp::Eq => "d_eq",
                        BinaryOp::Ne => "d_ne",
                        BinaryOp::Lt => "d_lt",
                        BinaryOp::Le => "d_le",
                        BinaryOp::Gt => "d_gt",
                        _ => "d_ge",
                    };
                    format!("{f}({sa}, {sb})")
                } else if native {
                    format!("({sa} {} {sb})", op.symbol())
                } else {
                    let f = match op {
                        BinaryOp::Eq => "cel_eq",
                        BinaryOp::Ne => "cel_ne",
                        BinaryOp::Lt => "cel_lt",
                        BinaryOp::Le => "cel_le",
                        BinaryOp::Gt => "cel_gt",
                        BinaryOp::Ge => "cel_ge",
                        BinaryOp::Add => "cel_add",
                        BinaryOp::Sub => "cel_sub",
                        BinaryOp::Mul => "cel_mul",
                        BinaryOp::Div => "cel_div",
                        _ => "cel_rem",
                    };
                    format!("{f}({sa}, {sb})")
                }
            }
        }
    }
}
