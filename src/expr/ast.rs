//! The condition AST. Spans are byte ranges into the expression text.

use super::Type;

/// A literal value.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    /// `true`, `false`
    Bool(bool),
    /// `42`, `-7`, `0x2A`
    Int(i64),
    /// `42u`
    Uint(u64),
    /// `1.5`, `1e3`
    Double(f64),
    /// `"text"`
    String(String),
    /// `b"raw"`
    Bytes(Vec<u8>),
    /// `null`
    Null,
}

/// Unary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    /// `!`
    Not,
    /// `-`
    Neg,
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `||`
    Or,
    /// `&&`
    And,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `in`
    In,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Rem,
}

impl BinaryOp {
    /// The operator as written.
    #[must_use]
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "||",
            BinaryOp::And => "&&",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::In => "in",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
        }
    }

    /// Binding strength (higher binds tighter).
    #[must_use]
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And => 2,
            BinaryOp::Eq
            | BinaryOp::Ne
            | BinaryOp::Lt
            | BinaryOp::Le
            | BinaryOp::Gt
            | BinaryOp::Ge
            | BinaryOp::In => 3,
            BinaryOp::Add | BinaryOp::Sub => 4,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => 5,
        }
    }

    /// True for `< <= > >=`.
    #[must_use]
    pub fn is_ordering(self) -> bool {
        matches!(
            self,
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge
        )
    }
}

/// The comprehension macros.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Macro {
    /// `l.all(x, p)`
    All,
    /// `l.exists(x, p)`
    Exists,
    /// `l.exists_one(x, p)`
    ExistsOne,
    /// `l.map(x, f)` / `l.map(x, p, f)`
    Map,
    /// `l.filter(x, p)`
    Filter,
}

impl Macro {
    /// Every macro, in the order help lists them.
    pub const ALL: [Macro; 5] = [
        Macro::All,
        Macro::Exists,
        Macro::ExistsOne,
        Macro::Map,
        Macro::Filter,
    ];

    /// The name it is called by.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Macro::All => "all",
            Macro::Exists => "exists",
            Macro::ExistsOne => "exists_one",
            Macro::Map => "map",
            Macro::Filter => "filter",
        }
    }

    /// The macro called `name`, if one is.
    #[must_use]
    pub fn named(name: &str) -> Option<Macro> {
        Macro::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// An expression node.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Byte range in the expression text.
    pub span: (usize, usize),
    /// Its type, filled in by the checker (`dyn` before).
    pub ty: Type,
}

/// Expression variants.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// A literal.
    Lit(Literal),
    /// A variable (possibly a dotted name after resolution).
    Ident(String),
    /// `a.b`
    Select(Box<Expr>, String),
    /// `a[i]`
    Index(Box<Expr>, Box<Expr>),
    /// `f(args)` or `target.f(args)`
    Call {
        /// The receiver for method calls.
        target: Option<Box<Expr>>,
        /// Function name.
        name: String,
        /// Arguments.
        args: Vec<Expr>,
    },
    /// `[a, b]`
    List(Vec<Expr>),
    /// `{k: v}`
    Map(Vec<(Expr, Expr)>),
    /// `!a`, `-a`
    Unary(UnaryOp, Box<Expr>),
    /// `a op b`
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `c ? a : b`
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `has(a.b)`
    Has(Box<Expr>, String),
    /// `has(x)` on a top-level context variable: true when the context gives `x`
    /// (a flowc extension; CEL's `has` takes only a field selection, see decision 76)
    HasVar(String),
    /// A comprehension macro.
    Comprehension {
        /// Which macro.
        kind: Macro,
        /// The range (list or map).
        range: Box<Expr>,
        /// The iteration variable.
        var: String,
        /// The predicate or transform.
        body: Box<Expr>,
        /// `map(x, filter, transform)`: the filter.
        filter: Option<Box<Expr>>,
    },
}

impl Expr {
    /// A node with an unknown type.
    #[must_use]
    pub fn new(kind: ExprKind, span: (usize, usize)) -> Self {
        Self {
            kind,
            span,
            ty: Type::Dyn,
        }
    }

    /// Visits every node (pre-order).
    pub fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Expr)) {
        f(self);
        match &self.kind {
            ExprKind::Lit(_) | ExprKind::Ident(_) | ExprKind::HasVar(_) => {}
            ExprKind::Select(e, _) | ExprKind::Unary(_, e) | ExprKind::Has(e, _) => e.walk(f),
            ExprKind::Index(a, b) | ExprKind::Binary(_, a, b) => {
                a.walk(f);
                b.walk(f);
            }
            ExprKind::Call { target, args, .. } => {
                if let Some(t) = target {
                    t.walk(f);
                }
                for a in args {
                    a.walk(f);
                }
            }
            ExprKind::List(items) => items.iter().for_each(|i| i.walk(f)),
            ExprKind::Map(entries) => {
                for (k, v) in entries {
                    k.walk(f);
                    v.walk(f);
                }
            }
            ExprKind::Cond(a, b, c) => {
                a.walk(f);
                b.walk(f);
                c.walk(f);
            }
            ExprKind::Comprehension {
                range,
                body,
                filter,
                ..
            } => {
                range.walk(f);
                if let Some(p) = filter {
                    p.walk(f);
                }
                body.walk(f);
            }
        }
    }
}
