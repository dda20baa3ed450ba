//! The one table of CEL functions and operators: every typed overload with its
//! signature, whether it can fail, its cost, and its implementation (a
//! `value` operation).
//!
//! The checker types calls from it ([`resolve`]), codegen emits a call of the function's
//! index that the sandbox's natives dispatch through [`Func::apply`], and the direct
//! evaluator calls [`Func::apply`] too (or a node specialised for the statically known
//! overload). Names are resolved here once, at compile time: nothing at run time looks
//! a function up by its name. Adding a function is one [`Func`] variant, its rows in
//! [`OVERLOADS`] and its operation in `value.rs`; the expression cases hold a test that
//! fails when a row has no case.

use super::Type;
use super::ast::BinaryOp;
use super::value::{self, Arith, OpError, Scalar, Value, View};

/// A CEL function (every overload of one name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Func {
    /// `size`
    Size,
    /// `int`
    Int,
    /// `uint`
    Uint,
    /// `double`
    Double,
    /// `string`
    String,
    /// `bool`
    Bool,
    /// `bytes`
    Bytes,
    /// `dyn`
    Dyn,
    /// `timestamp`
    Timestamp,
    /// `duration`
    Duration,
    /// `contains`
    Contains,
    /// `startsWith`
    StartsWith,
    /// `endsWith`
    EndsWith,
    /// `matches`
    Matches,
    /// `getFullYear`
    GetFullYear,
    /// `getMonth`
    GetMonth,
    /// `getDate`
    GetDate,
    /// `getDayOfMonth`
    GetDayOfMonth,
    /// `getDayOfYear`
    GetDayOfYear,
    /// `getDayOfWeek`
    GetDayOfWeek,
    /// `getHours`
    GetHours,
    /// `getMinutes`
    GetMinutes,
    /// `getSeconds`
    GetSeconds,
    /// `getMilliseconds`
    GetMilliseconds,
}

/// Every function, in index order (the index codegen writes into the Rhai program).
pub const FUNCS: [Func; 24] = [
    Func::Size,
    Func::Int,
    Func::Uint,
    Func::Double,
    Func::String,
    Func::Bool,
    Func::Bytes,
    Func::Dyn,
    Func::Timestamp,
    Func::Duration,
    Func::Contains,
    Func::StartsWith,
    Func::EndsWith,
    Func::Matches,
    Func::GetFullYear,
    Func::GetMonth,
    Func::GetDate,
    Func::GetDayOfMonth,
    Func::GetDayOfYear,
    Func::GetDayOfWeek,
    Func::GetHours,
    Func::GetMinutes,
    Func::GetSeconds,
    Func::GetMilliseconds,
];

/// How one evaluation of an operation is charged against the budget beyond its units,
/// by kind: the static side of the run-time charges, which `check` reads for the
/// "unless evaluating it runs out of a limit" caveat (decision 122, `ir::charge`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charge {
    /// Its units only: a literal, a variable, `!`, `-`, `&&`, `||`, `?:`, `has`,
    /// arithmetic other than `+`, and every operation on numbers, bools, timestamps and
    /// durations only (they cost a fixed amount).
    Unit,
    /// By the sizes of the strings, bytes values and collections it reads: `==`, `!=`,
    /// the orderings, a call reading a string, an index looking a map up by a key.
    Reads,
    /// By what it builds or copies: `+` on strings, bytes or lists, an index taking an
    /// element, a copied field, a list or map literal placing one.
    Builds,
    /// Per element: a comprehension, `in` searching a list or map.
    PerElement,
}

impl Charge {
    /// The kind of an operation made of two: the first that is not [`Charge::Unit`].
    #[must_use]
    pub const fn or(self, other: Charge) -> Charge {
        match self {
            Charge::Unit => other,
            _ => self,
        }
    }
}

/// What an overload (a row of [`OVERLOADS`] or [`OPERATORS`]) is charged beyond its
/// units, by the size of the values it reads or builds: the column both paths charge
/// through [`value::sized_cost`] and `check` reads through [`Sizing::charge`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sizing {
    /// Nothing: its units only (numbers, bools, timestamps, durations, and the size of a
    /// bytes value or collection, which is known without reading it).
    Unit,
    /// [`value::scan_cost`] of the bytes of its string arguments (`size`, the
    /// conversions of a string, `contains`, a time zone).
    Scan,
    /// [`value::scan_cost`] of its string and bytes arguments: `string(bytes)` reads
    /// the bytes it decodes.
    Decode,
    /// [`value::affix_cost`] of its two strings: `startsWith`, `endsWith` read only the
    /// affix.
    Affix,
    /// [`value::regex_cost`] of its subject and pattern (`matches`).
    Regex,
    /// [`value::relation_cost`]: an ordering of two strings or bytes values.
    Relation,
    /// [`value::add_cost`]: `+` building a string, bytes value or list.
    Concat,
}

impl Sizing {
    /// What a call is charged on values no overload accepts (types known only at run
    /// time): its string arguments, as every call reading them.
    pub const UNMATCHED: Sizing = Sizing::Scan;

    /// The kind of charge.
    #[must_use]
    pub const fn charge(self) -> Charge {
        match self {
            Sizing::Unit => Charge::Unit,
            Sizing::Scan | Sizing::Decode | Sizing::Affix | Sizing::Regex | Sizing::Relation => {
                Charge::Reads
            }
            Sizing::Concat => Charge::Builds,
        }
    }
}

/// An operation charged by size that is no row of the tables (defined for every pair of
/// types, or a node of its own): the small table of the other places both paths charge.
/// Its run-time charge is [`value::site_cost`], the one routine every node of the direct
/// path and every native of the sandbox charging a site goes through; its static kind is
/// [`Site::charge_on`], which `ir::charge` reads and codegen chooses its natives by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    /// `==`, `!=`: per element and byte compared ([`value::equals_within`]).
    Equality,
    /// `in` on a list or map: per element compared, a map by its key
    /// ([`value::list_contains`], [`value::map_contains`]).
    Membership,
    /// An index looking a map up: its key ([`value::key_cost`]).
    Key,
    /// An index taking an element, or a field copied: the value copied
    /// ([`value::copy_cost`]).
    Take,
    /// A list or map literal placing a value: the value placed ([`value::copy_cost`]).
    Literal,
    /// A comprehension: per element, the element its variable takes and the value a
    /// `map`/`filter` places into the list it builds ([`value::copy_cost`]), beside the
    /// step's units (`ir::step_cost`).
    Step,
}

impl Site {
    /// The kind of charge where its operands are of a type charged by size (a string,
    /// bytes value or collection; `dyn`).
    #[must_use]
    pub const fn charge(self) -> Charge {
        match self {
            Site::Equality | Site::Key => Charge::Reads,
            Site::Take | Site::Literal => Charge::Builds,
            Site::Membership | Site::Step => Charge::PerElement,
        }
    }

    /// The kind of charge of this site on operands of these static types: its
    /// [`Site::charge`] where one of them is of a type charged by size ([`sized`]),
    /// [`Charge::Unit`] where none is (a number, a bool, a timestamp or a duration costs
    /// a fixed amount wherever it is read, copied or compared).
    #[must_use]
    pub fn charge_on<'t>(self, operands: impl IntoIterator<Item = &'t Type>) -> Charge {
        if operands.into_iter().any(sized) {
            self.charge()
        } else {
            Charge::Unit
        }
    }
}

/// Does a value of this static type cost by its size where the cost model charges
/// one: a string or bytes value by its bytes, a list, map or object by its elements
/// (`dyn` may be any of them); a number, bool, timestamp or duration costs a fixed
/// amount.
#[must_use]
pub fn sized(t: &Type) -> bool {
    matches!(
        t,
        Type::String | Type::Bytes | Type::List(_) | Type::Map(..) | Type::Object(_) | Type::Dyn
    )
}

/// A parameter or result type of an overload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum P {
    /// `bool`
    Bool,
    /// `int`
    Int,
    /// `uint`
    Uint,
    /// `double`
    Double,
    /// `string`
    String,
    /// `bytes`
    Bytes,
    /// `timestamp`
    Timestamp,
    /// `duration`
    Duration,
    /// any `list`
    List,
    /// any `map` (or object)
    Map,
    /// anything (`dyn`)
    Any,
}

impl P {
    /// Does a value of static type `t` fit (`dyn` fits everything)?
    #[must_use]
    pub fn accepts(self, t: &Type) -> bool {
        matches!(
            (self, t),
            (P::Any, _)
                | (_, Type::Dyn)
                | (P::Bool, Type::Bool)
                | (P::Int, Type::Int)
                | (P::Uint, Type::Uint)
                | (P::Double, Type::Double)
                | (P::String, Type::String)
                | (P::Bytes, Type::Bytes)
                | (P::Timestamp, Type::Timestamp)
                | (P::Duration, Type::Duration)
                | (P::List, Type::List(_))
                | (P::Map, Type::Map(..) | Type::Object(_))
        )
    }

    /// Does a run-time value fit?
    #[must_use]
    pub fn accepts_value(self, v: &Value) -> bool {
        self.accepts_scalar(v.scalar())
    }

    /// Does a run-time value, viewed as a scalar (its type name for the rest), fit?
    #[must_use]
    pub fn accepts_scalar(self, v: Scalar<'_>) -> bool {
        matches!(
            (self, v),
            (P::Any, _)
                | (P::Bool, Scalar::Bool(_))
                | (P::Int, Scalar::Int(_))
                | (P::Uint, Scalar::Uint(_))
                | (P::Double, Scalar::Double(_))
                | (P::String, Scalar::Str(_))
        ) || matches!((self, v), (_, Scalar::Other(t)) if self.type_name() == Some(t))
    }

    /// The CEL type name of the values of a parameter that are no scalar.
    fn type_name(self) -> Option<&'static str> {
        match self {
            P::Bytes => Some("bytes"),
            P::Timestamp => Some("google.protobuf.Timestamp"),
            P::Duration => Some("google.protobuf.Duration"),
            P::List => Some("list"),
            P::Map => Some("map"),
            _ => None,
        }
    }

    /// The static type of a result.
    #[must_use]
    pub fn ty(self) -> Type {
        match self {
            P::Bool => Type::Bool,
            P::Int => Type::Int,
            P::Uint => Type::Uint,
            P::Double => Type::Double,
            P::String => Type::String,
            P::Bytes => Type::Bytes,
            P::Timestamp => Type::Timestamp,
            P::Duration => Type::Duration,
            P::List => Type::list(Type::Dyn),
            P::Map => Type::map(Type::Dyn, Type::Dyn),
            P::Any => Type::Dyn,
        }
    }
}

/// One typed overload.
#[derive(Clone, Copy, Debug)]
pub struct Overload {
    /// CEL's overload id (`size_string`, `int64_to_uint64`, ...).
    pub id: &'static str,
    /// The function.
    pub func: Func,
    /// Parameter types, the receiver of a method call first.
    pub params: &'static [P],
    /// Result type.
    pub result: P,
    /// Can it fail at run time on arguments of these types?
    pub can_fail: bool,
    /// Cost units charged against the evaluation budget.
    pub cost: u32,
    /// What it is charged beyond its units, by the size of the values it reads
    /// ([`value::sized_cost`], both paths).
    pub size: Sizing,
}

const fn row(
    id: &'static str,
    func: Func,
    params: &'static [P],
    result: P,
    can_fail: bool,
    cost: u32,
    size: Sizing,
) -> Overload {
    Overload {
        id,
        func,
        params,
        result,
        can_fail,
        cost,
        size,
    }
}

use Sizing as S;

/// Every overload of every function.
#[rustfmt::skip]
pub const OVERLOADS: &[Overload] = &[
    row("size_string", Func::Size, &[P::String], P::Int, false, 2, S::Scan),
    row("size_bytes", Func::Size, &[P::Bytes], P::Int, false, 1, S::Unit),
    row("size_list", Func::Size, &[P::List], P::Int, false, 1, S::Unit),
    row("size_map", Func::Size, &[P::Map], P::Int, false, 1, S::Unit),
    row("int64_to_int64", Func::Int, &[P::Int], P::Int, false, 1, S::Unit),
    row("uint64_to_int64", Func::Int, &[P::Uint], P::Int, true, 1, S::Unit),
    row("double_to_int64", Func::Int, &[P::Double], P::Int, true, 1, S::Unit),
    row("string_to_int64", Func::Int, &[P::String], P::Int, true, 2, S::Scan),
    row("timestamp_to_int64", Func::Int, &[P::Timestamp], P::Int, false, 1, S::Unit),
    row("uint64_to_uint64", Func::Uint, &[P::Uint], P::Uint, false, 1, S::Unit),
    row("int64_to_uint64", Func::Uint, &[P::Int], P::Uint, true, 1, S::Unit),
    row("double_to_uint64", Func::Uint, &[P::Double], P::Uint, true, 1, S::Unit),
    row("string_to_uint64", Func::Uint, &[P::String], P::Uint, true, 2, S::Scan),
    row("double_to_double", Func::Double, &[P::Double], P::Double, false, 1, S::Unit),
    row("int64_to_double", Func::Double, &[P::Int], P::Double, false, 1, S::Unit),
    row("uint64_to_double", Func::Double, &[P::Uint], P::Double, false, 1, S::Unit),
    row("string_to_double", Func::Double, &[P::String], P::Double, true, 2, S::Scan),
    row("string_to_string", Func::String, &[P::String], P::String, false, 1, S::Scan),
    row("int64_to_string", Func::String, &[P::Int], P::String, false, 2, S::Unit),
    row("uint64_to_string", Func::String, &[P::Uint], P::String, false, 2, S::Unit),
    row("double_to_string", Func::String, &[P::Double], P::String, false, 2, S::Unit),
    row("bool_to_string", Func::String, &[P::Bool], P::String, false, 2, S::Unit),
    row("bytes_to_string", Func::String, &[P::Bytes], P::String, true, 2, S::Decode),
    row("timestamp_to_string", Func::String, &[P::Timestamp], P::String, false, 2, S::Unit),
    row("duration_to_string", Func::String, &[P::Duration], P::String, false, 2, S::Unit),
    row("bool_to_bool", Func::Bool, &[P::Bool], P::Bool, false, 1, S::Unit),
    row("string_to_bool", Func::Bool, &[P::String], P::Bool, true, 1, S::Scan),
    row("bytes_to_bytes", Func::Bytes, &[P::Bytes], P::Bytes, false, 1, S::Unit),
    row("string_to_bytes", Func::Bytes, &[P::String], P::Bytes, false, 2, S::Scan),
    row("to_dyn", Func::Dyn, &[P::Any], P::Any, false, 0, S::Unit),
    row("string_to_timestamp", Func::Timestamp, &[P::String], P::Timestamp, true, 2, S::Scan),
    row("int64_to_timestamp", Func::Timestamp, &[P::Int], P::Timestamp, true, 1, S::Unit),
    row("timestamp_to_timestamp", Func::Timestamp, &[P::Timestamp], P::Timestamp, false, 1, S::Unit),
    row("string_to_duration", Func::Duration, &[P::String], P::Duration, true, 2, S::Scan),
    row("duration_to_duration", Func::Duration, &[P::Duration], P::Duration, false, 1, S::Unit),
    row("contains_string", Func::Contains, &[P::String, P::String], P::Bool, false, 2, S::Scan),
    row("starts_with_string", Func::StartsWith, &[P::String, P::String], P::Bool, false, 2, S::Affix),
    row("ends_with_string", Func::EndsWith, &[P::String, P::String], P::Bool, false, 2, S::Affix),
    row("matches_string", Func::Matches, &[P::String, P::String], P::Bool, true, 8, S::Regex),
    row("timestamp_to_year", Func::GetFullYear, &[P::Timestamp], P::Int, false, 2, S::Unit),
    row("timestamp_to_year_with_tz", Func::GetFullYear, &[P::Timestamp, P::String], P::Int, true, 2, S::Scan),
    row("timestamp_to_month", Func::GetMonth, &[P::Timestamp], P::Int, false, 2, S::Unit),
    row("timestamp_to_month_with_tz", Func::GetMonth, &[P::Timestamp, P::String], P::Int, true, 2, S::Scan),
    row("timestamp_to_day_of_month_1_based", Func::GetDate, &[P::Timestamp], P::Int, false, 2, S::Unit),
    row("timestamp_to_day_of_month_1_based_with_tz", Func::GetDate, &[P::Timestamp, P::String], P::Int, true, 2, S::Scan),
    row("timestamp_to_day_of_month", Func::GetDayOfMonth, &[P::Timestamp], P::Int, false, 2, S::Unit),
    row("timestamp_to_day_of_month_with_tz", Func::GetDayOfMonth, &[P::Timestamp, P::String], P::Int, true, 2, S::Scan),
    row("timestamp_to_day_of_year", Func::GetDayOfYear, &[P::Timestamp], P::Int, false, 2, S::Unit),
    row("timestamp_to_day_of_year_with_tz", Func::GetDayOfYear, &[P::Timestamp, P::String], P::Int, true, 2, S::Scan),
    row("timestamp_to_day_of_week", Func::GetDayOfWeek, &[P::Timestamp], P::Int, false, 2, S::Unit),
    row("timestamp_to_day_of_week_with_tz", Func::GetDayOfWeek, &[P::Timestamp, P::String], P::Int, true, 2, S::Scan),
    row("timestamp_to_hours", Func::GetHours, &[P::Timestamp], P::Int, false, 2, S::Unit),
    row("timestamp_to_hours_with_tz", Func::GetHours, &[P::Timestamp, P::String], P::Int, true, 2, S::Scan),
    row("duration_to_hours", Func::GetHours, &[P::Duration], P::Int, false, 1, S::Unit),
    row("timestamp_to_minutes", Func::GetMinutes, &[P::Timestamp], P::Int, false, 2, S::Unit),
    row("timestamp_to_minutes_with_tz", Func::GetMinutes, &[P::Timestamp, P::String], P::Int, true, 2, S::Scan),
    row("duration_to_minutes", Func::GetMinutes, &[P::Duration], P::Int, false, 1, S::Unit),
    row("timestamp_to_seconds", Func::GetSeconds, &[P::Timestamp], P::Int, false, 2, S::Unit),
    row("timestamp_to_seconds_with_tz", Func::GetSeconds, &[P::Timestamp, P::String], P::Int, true, 2, S::Scan),
    row("duration_to_seconds", Func::GetSeconds, &[P::Duration], P::Int, false, 1, S::Unit),
    row("timestamp_to_milliseconds", Func::GetMilliseconds, &[P::Timestamp], P::Int, false, 2, S::Unit),
    row("timestamp_to_milliseconds_with_tz", Func::GetMilliseconds, &[P::Timestamp, P::String], P::Int, true, 2, S::Scan),
    row("duration_to_milliseconds", Func::GetMilliseconds, &[P::Duration], P::Int, false, 1, S::Unit),
];

/// The rows of a function: the run of [`OVERLOADS`] it is written in (the rows of one
/// function are written together; a test holds every row to its function's run).
const fn rows_of(f: Func) -> &'static [Overload] {
    let mut rest: &'static [Overload] = OVERLOADS;
    while let [o, tail @ ..] = rest
        && o.func as u8 != f as u8
    {
        rest = tail;
    }
    let mut n = 0;
    let mut run = rest;
    while let [o, tail @ ..] = run
        && o.func as u8 == f as u8
    {
        n += 1;
        run = tail;
    }
    rest.split_at(n).0
}

/// Every function's rows, in [`FUNCS`] order (the order of [`Func`]'s variants).
const ROWS: [&[Overload]; FUNCS.len()] = {
    let mut rows: [&[Overload]; FUNCS.len()] = [&[]; FUNCS.len()];
    let mut slots: &mut [&[Overload]] = &mut rows;
    let mut funcs: &[Func] = &FUNCS;
    while let ([slot, more @ ..], [f, fs @ ..]) = (slots, funcs) {
        *slot = rows_of(*f);
        slots = more;
        funcs = fs;
    }
    rows
};

/// A binary operator of the table (`<`, `<=`, `>`, `>=` share their overloads).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    /// `&&`
    And,
    /// `||`
    Or,
    /// `<`, `<=`, `>`, `>=`
    Ordering,
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

impl Operator {
    /// The operator family of a binary operator (`==`, `!=` and `in` are not rows: they
    /// are defined for every pair of assignable types).
    #[must_use]
    pub fn of(op: BinaryOp) -> Option<Operator> {
        Some(match op {
            BinaryOp::And => Operator::And,
            BinaryOp::Or => Operator::Or,
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => Operator::Ordering,
            BinaryOp::Add => Operator::Add,
            BinaryOp::Sub => Operator::Sub,
            BinaryOp::Mul => Operator::Mul,
            BinaryOp::Div => Operator::Div,
            BinaryOp::Rem => Operator::Rem,
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::In => return None,
        })
    }
}

impl From<Arith> for Operator {
    fn from(o: Arith) -> Operator {
        match o {
            Arith::Add => Operator::Add,
            Arith::Sub => Operator::Sub,
            Arith::Mul => Operator::Mul,
            Arith::Div => Operator::Div,
            Arith::Rem => Operator::Rem,
        }
    }
}

impl Operator {
    /// What an operation of this operator is charged by size on values of any types:
    /// the [`Sizing`] its rows share (the rows not charged by size are the ones whose
    /// operands [`value::sized_cost`] charges nothing under it, numbers and the like).
    /// Read from [`OPERATORS`] at compile time; a test holds every row to it.
    #[must_use]
    pub const fn sizing(self) -> Sizing {
        let mut rest = OPERATORS;
        let mut found = Sizing::Unit;
        while let [o, tail @ ..] = rest {
            if o.op as u8 == self as u8 && !matches!(o.size, Sizing::Unit) {
                found = o.size;
            }
            rest = tail;
        }
        found
    }
}

/// One typed overload of a binary operator. Its implementation is the operator's
/// `expr::value` operation (`arith`, `relation`, `value::and_or`), which the direct
/// path specialises by these types and the sandbox's natives call.
#[derive(Clone, Copy, Debug)]
pub struct OperatorOverload {
    /// CEL's overload id (`add_int64`, ...; `compare_*` for the four orderings).
    pub id: &'static str,
    /// The operator.
    pub op: Operator,
    /// Operand types.
    pub params: [P; 2],
    /// Result type (`list` results join the element types of the operands).
    pub result: P,
    /// Can it fail at run time (overflow, division by zero, range)?
    pub can_fail: bool,
    /// Cost units.
    pub cost: u32,
    /// What it is charged beyond its units, by the size of its operands
    /// ([`value::sized_cost`], both paths).
    pub size: Sizing,
}

const fn orow(
    id: &'static str,
    op: Operator,
    params: [P; 2],
    result: P,
    can_fail: bool,
    cost: u32,
    size: Sizing,
) -> OperatorOverload {
    OperatorOverload {
        id,
        op,
        params,
        result,
        can_fail,
        cost,
        size,
    }
}

/// Every overload of every table operator.
#[rustfmt::skip]
pub const OPERATORS: &[OperatorOverload] = &[
    orow("logical_and", Operator::And, [P::Bool, P::Bool], P::Bool, false, 1, S::Unit),
    orow("logical_or", Operator::Or, [P::Bool, P::Bool], P::Bool, false, 1, S::Unit),
    orow("compare_bool", Operator::Ordering, [P::Bool, P::Bool], P::Bool, false, 1, S::Unit),
    orow("compare_int64", Operator::Ordering, [P::Int, P::Int], P::Bool, false, 1, S::Unit),
    orow("compare_uint64", Operator::Ordering, [P::Uint, P::Uint], P::Bool, false, 1, S::Unit),
    orow("compare_double", Operator::Ordering, [P::Double, P::Double], P::Bool, false, 1, S::Unit),
    orow("compare_string", Operator::Ordering, [P::String, P::String], P::Bool, false, 2, S::Relation),
    orow("compare_bytes", Operator::Ordering, [P::Bytes, P::Bytes], P::Bool, false, 2, S::Relation),
    orow("compare_timestamp", Operator::Ordering, [P::Timestamp, P::Timestamp], P::Bool, false, 1, S::Unit),
    orow("compare_duration", Operator::Ordering, [P::Duration, P::Duration], P::Bool, false, 1, S::Unit),
    orow("compare_int64_uint64", Operator::Ordering, [P::Int, P::Uint], P::Bool, false, 1, S::Unit),
    orow("compare_int64_double", Operator::Ordering, [P::Int, P::Double], P::Bool, false, 1, S::Unit),
    orow("compare_uint64_int64", Operator::Ordering, [P::Uint, P::Int], P::Bool, false, 1, S::Unit),
    orow("compare_uint64_double", Operator::Ordering, [P::Uint, P::Double], P::Bool, false, 1, S::Unit),
    orow("compare_double_int64", Operator::Ordering, [P::Double, P::Int], P::Bool, false, 1, S::Unit),
    orow("compare_double_uint64", Operator::Ordering, [P::Double, P::Uint], P::Bool, false, 1, S::Unit),
    orow("add_int64", Operator::Add, [P::Int, P::Int], P::Int, true, 1, S::Unit),
    orow("add_uint64", Operator::Add, [P::Uint, P::Uint], P::Uint, true, 1, S::Unit),
    orow("add_double", Operator::Add, [P::Double, P::Double], P::Double, false, 1, S::Unit),
    orow("add_string", Operator::Add, [P::String, P::String], P::String, false, 2, S::Concat),
    orow("add_bytes", Operator::Add, [P::Bytes, P::Bytes], P::Bytes, false, 2, S::Concat),
    orow("add_list", Operator::Add, [P::List, P::List], P::List, false, 2, S::Concat),
    orow("add_timestamp_duration", Operator::Add, [P::Timestamp, P::Duration], P::Timestamp, true, 1, S::Unit),
    orow("add_duration_timestamp", Operator::Add, [P::Duration, P::Timestamp], P::Timestamp, true, 1, S::Unit),
    orow("add_duration_duration", Operator::Add, [P::Duration, P::Duration], P::Duration, true, 1, S::Unit),
    orow("subtract_int64", Operator::Sub, [P::Int, P::Int], P::Int, true, 1, S::Unit),
    orow("subtract_uint64", Operator::Sub, [P::Uint, P::Uint], P::Uint, true, 1, S::Unit),
    orow("subtract_double", Operator::Sub, [P::Double, P::Double], P::Double, false, 1, S::Unit),
    orow("subtract_timestamp_timestamp", Operator::Sub, [P::Timestamp, P::Timestamp], P::Duration, true, 1, S::Unit),
    orow("subtract_timestamp_duration", Operator::Sub, [P::Timestamp, P::Duration], P::Timestamp, true, 1, S::Unit),
    orow("subtract_duration_duration", Operator::Sub, [P::Duration, P::Duration], P::Duration, true, 1, S::Unit),
    orow("multiply_int64", Operator::Mul, [P::Int, P::Int], P::Int, true, 1, S::Unit),
    orow("multiply_uint64", Operator::Mul, [P::Uint, P::Uint], P::Uint, true, 1, S::Unit),
    orow("multiply_double", Operator::Mul, [P::Double, P::Double], P::Double, false, 1, S::Unit),
    orow("divide_int64", Operator::Div, [P::Int, P::Int], P::Int, true, 1, S::Unit),
    orow("divide_uint64", Operator::Div, [P::Uint, P::Uint], P::Uint, true, 1, S::Unit),
    orow("divide_double", Operator::Div, [P::Double, P::Double], P::Double, false, 1, S::Unit),
    orow("modulo_int64", Operator::Rem, [P::Int, P::Int], P::Int, true, 1, S::Unit),
    orow("modulo_uint64", Operator::Rem, [P::Uint, P::Uint], P::Uint, true, 1, S::Unit),
];

/// The overload of a binary operator for these operand types (`dyn` fits every
/// parameter; the first fitting row).
#[must_use]
pub fn operator(op: BinaryOp, a: &Type, b: &Type) -> Option<&'static OperatorOverload> {
    let op = Operator::of(op)?;
    OPERATORS
        .iter()
        .find(|o| o.op == op && o.params[0].accepts(a) && o.params[1].accepts(b))
}

/// How a binary operator of the table on operands of these static types is charged by
/// size: by the rows that accept them (`None` for `==`, `!=`, `in`, which are [`Site`]s).
#[must_use]
pub fn operator_charge(op: BinaryOp, a: &Type, b: &Type) -> Option<Charge> {
    let op = Operator::of(op)?;
    Some(
        OPERATORS
            .iter()
            .filter(|o| o.op == op && o.params[0].accepts(a) && o.params[1].accepts(b))
            .fold(Charge::Unit, |c, o| c.or(o.size.charge())),
    )
}

/// How a call of `name` on arguments of these static types (receiver first) is charged
/// by size: by the rows that accept them, and, where a type is known only at run time
/// (or no row accepts them), by what values no row accepts are charged
/// ([`Sizing::UNMATCHED`]).
#[must_use]
pub fn call_charge(name: &str, args: &[Type]) -> Charge {
    let Some(func) = Func::by_name(name) else {
        return Sizing::UNMATCHED.charge();
    };
    let mut fitting = func.overloads().filter(|o| fits(o, args)).peekable();
    let unmatched = fitting.peek().is_none() || args.contains(&Type::Dyn);
    let charge = fitting.fold(Charge::Unit, |c, o| c.or(o.size.charge()));
    if unmatched {
        charge.or(Sizing::UNMATCHED.charge())
    } else {
        charge
    }
}

impl Func {
    /// The name as written in CEL.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Func::Size => "size",
            Func::Int => "int",
            Func::Uint => "uint",
            Func::Double => "double",
            Func::String => "string",
            Func::Bool => "bool",
            Func::Bytes => "bytes",
            Func::Dyn => "dyn",
            Func::Timestamp => "timestamp",
            Func::Duration => "duration",
            Func::Contains => "contains",
            Func::StartsWith => "startsWith",
            Func::EndsWith => "endsWith",
            Func::Matches => "matches",
            Func::GetFullYear => "getFullYear",
            Func::GetMonth => "getMonth",
            Func::GetDate => "getDate",
            Func::GetDayOfMonth => "getDayOfMonth",
            Func::GetDayOfYear => "getDayOfYear",
            Func::GetDayOfWeek => "getDayOfWeek",
            Func::GetHours => "getHours",
            Func::GetMinutes => "getMinutes",
            Func::GetSeconds => "getSeconds",
            Func::GetMilliseconds => "getMilliseconds",
        }
    }

    /// The function of a name (compile time only).
    #[must_use]
    pub fn by_name(name: &str) -> Option<Func> {
        FUNCS.iter().copied().find(|f| f.name() == name)
    }

    /// The index codegen writes (see [`FUNCS`]).
    #[must_use]
    pub fn index(self) -> usize {
        FUNCS.iter().position(|f| *f == self).unwrap_or(0)
    }

    /// The function at an index written by codegen.
    #[must_use]
    pub fn at(index: i64) -> Option<Func> {
        usize::try_from(index)
            .ok()
            .and_then(|i| FUNCS.get(i))
            .copied()
    }

    /// Its overloads (its slice of [`OVERLOADS`], found once at compile time).
    pub fn overloads(self) -> impl Iterator<Item = &'static Overload> {
        ROWS.get(self as usize).copied().unwrap_or(&[]).iter()
    }

    /// The overload run-time values select (CEL's dynamic dispatch: the row whose
    /// parameters they fit).
    #[must_use]
    pub fn row_for<V: View + ?Sized>(self, args: &[&V]) -> Option<&'static Overload> {
        self.overloads().find(|o| {
            o.params.len() == args.len()
                && o.params
                    .iter()
                    .zip(args)
                    .all(|(p, a)| a.with_scalar(|s| p.accepts_scalar(s)))
        })
    }

    /// What a call on these values is charged by size: its row's [`Sizing`], or
    /// [`Sizing::UNMATCHED`] when no row accepts them.
    #[must_use]
    pub fn sizing_for<V: View + ?Sized>(self, args: &[&V]) -> Sizing {
        self.row_for(args).map_or(Sizing::UNMATCHED, |o| o.size)
    }

    /// How many arguments it takes, in words (for the arity diagnostic).
    #[must_use]
    pub fn arity_words(self) -> &'static str {
        match self {
            Func::Contains | Func::StartsWith | Func::EndsWith | Func::Matches => {
                "a string receiver and one argument"
            }
            Func::GetFullYear
            | Func::GetMonth
            | Func::GetDate
            | Func::GetDayOfMonth
            | Func::GetDayOfYear
            | Func::GetDayOfWeek
            | Func::GetHours
            | Func::GetMinutes
            | Func::GetSeconds
            | Func::GetMilliseconds => "a receiver and an optional time zone",
            _ => "one argument",
        }
    }

    /// Runs the function on run-time values: the value operation of the overload the
    /// values select (CEL's dynamic dispatch, needed only where the checker saw `dyn`).
    ///
    /// # Errors
    /// The operation's error, or no overload for these values.
    pub fn apply<V: View + ?Sized>(self, args: &[&V]) -> Result<Value, OpError> {
        match (self, args) {
            (Func::Size, [a]) => value::size_of(*a),
            (
                Func::Int
                | Func::Uint
                | Func::Double
                | Func::String
                | Func::Bool
                | Func::Bytes
                | Func::Dyn
                | Func::Timestamp
                | Func::Duration,
                [a],
            ) => value::convert(self, &a.value()),
            (Func::Contains | Func::StartsWith | Func::EndsWith, [a, b]) => {
                value::string_fn(self, *a, *b).map(Value::Bool)
            }
            (Func::Matches, [a, b]) => value::matches(*a, *b).map(Value::Bool),
            (_, [a]) => value::time_accessor(self, &a.value(), None),
            (_, [a, tz]) => value::time_accessor(self, &a.value(), Some(&tz.value())),
            _ => {
                let values: Vec<_> = args.iter().map(|a| a.value()).collect();
                let refs: Vec<&Value> = values.iter().map(|v| &**v).collect();
                Err(value::overload(self.name(), &refs))
            }
        }
    }
}

/// How a call resolves against the table.
#[derive(Clone, Copy, Debug)]
pub enum Resolved {
    /// No function of this name.
    Unknown,
    /// The function takes another number of arguments.
    Arity(Func),
    /// No overload accepts these types.
    NoMatch(Func),
    /// One or more overloads accept them.
    Found {
        /// The function.
        func: Func,
        /// The overload, when exactly one accepts the static types.
        exact: Option<&'static Overload>,
        /// Can it fail (any accepted overload can, or the types are only known at run time)?
        can_fail: bool,
        /// The largest cost of an accepted overload.
        cost: u32,
    },
}

impl Resolved {
    /// The result type of a found call.
    #[must_use]
    pub fn result(&self, args: &[Type]) -> Type {
        match self {
            Resolved::Found {
                func: Func::Dyn, ..
            } => Type::Dyn,
            Resolved::Found { exact: Some(o), .. } => o.result.ty(),
            Resolved::Found { func, .. } => {
                let mut results = func.overloads().filter(|o| fits(o, args)).map(|o| o.result);
                let first = results.next().unwrap_or(P::Any);
                if results.all(|r| r == first) {
                    first.ty()
                } else {
                    Type::Dyn
                }
            }
            _ => Type::Dyn,
        }
    }
}

fn fits(o: &Overload, args: &[Type]) -> bool {
    o.params.len() == args.len() && o.params.iter().zip(args).all(|(p, t)| p.accepts(t))
}

/// Resolves a call by name and static argument types (receiver first).
#[must_use]
pub fn resolve(name: &str, args: &[Type]) -> Resolved {
    let Some(func) = Func::by_name(name) else {
        return Resolved::Unknown;
    };
    if func.overloads().all(|o| o.params.len() != args.len()) {
        return Resolved::Arity(func);
    }
    let mut found = func.overloads().filter(|o| fits(o, args));
    let Some(first) = found.next() else {
        return Resolved::NoMatch(func);
    };
    let rest: Vec<&Overload> = found.collect();
    let dynamic = !rest.is_empty() || args.contains(&Type::Dyn);
    Resolved::Found {
        func,
        exact: (!dynamic).then_some(first),
        can_fail: dynamic || first.can_fail || rest.iter().any(|o| o.can_fail),
        cost: rest.iter().map(|o| o.cost).fold(first.cost, u32::max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_has_rows_and_round_trips_its_name_and_index() {
        for (i, f) in FUNCS.iter().enumerate() {
            assert!(f.overloads().next().is_some(), "{f:?} has no row");
            assert_eq!(Func::by_name(f.name()), Some(*f));
            assert_eq!(f.index(), i);
            assert_eq!(*f as usize, i);
            assert!(f.overloads().all(|o| o.func == *f));
            assert_eq!(Func::at(i64::try_from(i).unwrap()), Some(*f));
        }
        let rows: usize = FUNCS.iter().map(|f| f.overloads().count()).sum();
        assert_eq!(
            rows,
            OVERLOADS.len(),
            "the rows of a function are written together"
        );
        assert_eq!(Func::at(-1), None);
        assert_eq!(Func::at(i64::try_from(FUNCS.len()).unwrap()), None);
        let mut ids: Vec<&str> = OVERLOADS
            .iter()
            .map(|o| o.id)
            .chain(OPERATORS.iter().map(|o| o.id))
            .collect();
        ids.sort_unstable();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "overload ids are unique");
    }

    #[test]
    fn resolution_is_exact_only_for_known_types() {
        let Resolved::Found {
            exact: Some(o),
            can_fail: false,
            ..
        } = resolve("size", &[Type::String])
        else {
            panic!("size(string) resolves exactly")
        };
        assert_eq!(o.id, "size_string");
        assert!(matches!(
            resolve("int", &[Type::Dyn]),
            Resolved::Found {
                exact: None,
                can_fail: true,
                ..
            }
        ));
        assert_eq!(resolve("int", &[Type::Dyn]).result(&[Type::Dyn]), Type::Int);
        assert!(matches!(
            resolve("size", &[Type::String, Type::String]),
            Resolved::Arity(Func::Size)
        ));
        assert!(matches!(
            resolve("size", &[Type::Bool]),
            Resolved::NoMatch(Func::Size)
        ));
        assert!(matches!(resolve("sizes", &[Type::Bool]), Resolved::Unknown));
        assert_eq!(
            operator(BinaryOp::Add, &Type::Int, &Type::Int).map(|o| o.id),
            Some("add_int64")
        );
        assert!(operator(BinaryOp::Rem, &Type::Double, &Type::Double).is_none());
        assert!(operator(BinaryOp::Eq, &Type::Int, &Type::Int).is_none());
    }

    #[test]
    fn every_operator_charges_by_the_one_sizing_its_rows_share() {
        for o in OPERATORS {
            assert!(
                o.size == Sizing::Unit || o.size == o.op.sizing(),
                "{} is charged otherwise than its operator",
                o.id
            );
        }
        assert_eq!(Operator::Ordering.sizing(), Sizing::Relation);
        assert_eq!(Operator::Add.sizing(), Sizing::Concat);
        assert_eq!(Operator::from(Arith::Mul).sizing(), Sizing::Unit);
        // a call reading a string is charged by it, as one no row accepts
        for o in OVERLOADS {
            if o.params.contains(&P::String) {
                assert_ne!(o.size, Sizing::Unit, "{} reads a string", o.id);
            }
        }
    }

    #[test]
    fn run_time_values_select_the_rows_their_static_types_do() {
        let ts = super::super::time::parse_timestamp("2009-02-13T23:31:30Z").unwrap();
        let d = super::super::time::parse_duration("90s").unwrap();
        let samples = [
            (Value::Bool(true), Type::Bool),
            (Value::Int(1), Type::Int),
            (Value::Uint(1), Type::Uint),
            (Value::Double(1.0), Type::Double),
            (Value::string("x"), Type::String),
            (Value::Bytes(std::sync::Arc::from(&b"x"[..])), Type::Bytes),
            (Value::Timestamp(ts), Type::Timestamp),
            (Value::Duration(d), Type::Duration),
            (
                Value::List(std::sync::Arc::new(vec![])),
                Type::list(Type::Int),
            ),
            (Value::map(vec![]), Type::map(Type::String, Type::Int)),
        ];
        let ps = [
            P::Bool,
            P::Int,
            P::Uint,
            P::Double,
            P::String,
            P::Bytes,
            P::Timestamp,
            P::Duration,
            P::List,
            P::Map,
            P::Any,
        ];
        for (v, t) in &samples {
            for p in ps {
                assert_eq!(p.accepts_value(v), p.accepts(t), "{p:?} on {t:?}");
            }
        }
        assert_eq!(
            Func::Size.row_for(&[&Value::string("x")]).map(|o| o.id),
            Some("size_string")
        );
        assert!(Func::Size.row_for(&[&Value::Int(1)]).is_none());
    }

    #[test]
    fn a_call_is_charged_what_its_row_says() {
        let s = Value::string(&"x".repeat(640));
        let b = Value::Bytes(std::sync::Arc::from(vec![b'x'; 640]));
        let short = Value::string("x");
        let cost = |f: Func, args: &[&Value]| value::call_cost(f, args, u64::MAX);
        // `size` of a string reads it; of bytes it does not
        assert_eq!(cost(Func::Size, &[&s]), 10);
        assert_eq!(cost(Func::Size, &[&b]), 0);
        // `string(bytes)` decodes them; `bytes(bytes)` reads nothing
        assert_eq!(cost(Func::String, &[&b]), 10);
        assert_eq!(cost(Func::Bytes, &[&b]), 0);
        // `contains` reads both strings, `startsWith` only the affix
        assert_eq!(cost(Func::Contains, &[&s, &s]), 20);
        assert_eq!(cost(Func::StartsWith, &[&s, &short]), 0);
        assert_eq!(cost(Func::StartsWith, &[&s, &s]), 10);
        // values no row accepts: their strings ([`Sizing::UNMATCHED`])
        assert_eq!(cost(Func::StartsWith, &[&Value::Int(1), &s]), 10);
        assert_eq!(cost(Func::Int, &[&b]), 0);
        // the static kinds, from the same rows
        assert_eq!(call_charge("size", &[Type::Bytes]), Charge::Unit);
        assert_eq!(call_charge("size", &[Type::String]), Charge::Reads);
        assert_eq!(call_charge("getHours", &[Type::Timestamp]), Charge::Unit);
        assert_eq!(call_charge("getHours", &[Type::Dyn]), Charge::Reads);
        assert_eq!(
            operator_charge(BinaryOp::Lt, &Type::String, &Type::String),
            Some(Charge::Reads)
        );
        assert_eq!(
            operator_charge(BinaryOp::Add, &Type::Dyn, &Type::Int),
            Some(Charge::Unit)
        );
        assert_eq!(
            operator_charge(BinaryOp::Add, &Type::list(Type::Int), &Type::Dyn),
            Some(Charge::Builds)
        );
        assert_eq!(
            operator_charge(BinaryOp::Eq, &Type::String, &Type::String),
            None
        );
    }
}
