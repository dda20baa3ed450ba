//! Stage 3: the condition language (a CEL subset): parse → check → lower to the IR
//! (the direct evaluator) and generate Rhai (the sandbox), both from one overload table.

pub mod ast;
pub mod check;
pub mod codegen;
pub mod constant;
pub mod eval;
pub mod fails;
mod guard;
pub mod ir;
pub mod overload;
pub mod parse;
mod run_error;
mod source;
pub(crate) mod time;
mod typed;
pub mod types;
pub(crate) mod value;

use std::collections::BTreeMap;

use miette::Diagnostic as MietteDiagnostic;
use thiserror::Error;

use crate::limits::SandboxLimits;
use crate::span::Span;
pub use ast::Expr;
pub use check::{CheckErrorKind, Env};
pub use ir::{Direct, Patterns};
pub use run_error::RunError;
pub use source::ExprSource;
pub use time::{
    Duration, DurationProblem, Timestamp, TimestampProblem, parse_duration, parse_timestamp,
};
pub use types::{FieldType, ObjectType, Type};
pub use value::{
    OpError, Priced, REGEX_AUTOMATON_WEIGHT, REGEX_BYTES_PER_WEIGHT, REGEX_FLOOR,
    REGEX_GROUP_WEIGHT, REGEX_PREFILTER_WEIGHT, REGEX_SUBJECT_BYTES_PER_UNIT,
    REGEX_UNICODE_CLASS_WEIGHT, REGEX_UNITS_PER_WEIGHT, RegexEstimate, RegexScan,
    SCAN_BYTES_PER_UNIT, Value, affix_cost, build_regex, compare_cost, key_cost, match_cost,
    regex_cost, regex_estimate, regex_least_cost, regex_weight, scan_cost, site_cost, sized_cost,
    str_pair_cost,
};

/// Errors and warnings of the condition language, at exact file positions.
#[derive(Debug, Error, MietteDiagnostic)]
#[non_exhaustive]
pub enum ExprError {
    /// The expression does not parse.
    #[error("syntax error in expression: {message}")]
    #[diagnostic(code("flowc::expr::syntax"))]
    Syntax {
        /// What.
        message: String,
        /// Where.
        #[label("here")]
        span: Span,
        /// How to fix.
        #[help]
        help: String,
    },
    /// An expression nested deeper than the parser accepts.
    #[error("expression too deep: {message}")]
    #[diagnostic(code("flowc::expr::too-deep"))]
    TooDeep {
        /// What.
        message: String,
        /// Where.
        #[label("too deep here")]
        span: Span,
        /// The limit, and how to stay within it.
        #[help]
        help: String,
    },
    /// An undeclared name.
    #[error("unknown identifier `{name}`")]
    #[diagnostic(code("flowc::expr::unknown-identifier"))]
    UnknownIdentifier {
        /// The name.
        name: String,
        /// Where.
        #[label("not declared in `context`")]
        span: Span,
        /// Suggestion.
        #[help]
        help: String,
    },
    /// A field that the object does not declare.
    #[error("unknown field `{name}`")]
    #[diagnostic(code("flowc::expr::unknown-field"))]
    UnknownField {
        /// The field.
        name: String,
        /// Where.
        #[label("no such field")]
        span: Span,
        /// Suggestion.
        #[help]
        help: String,
    },
    /// Operands of types the operator does not accept.
    #[error("no operator `{op}` for {args}")]
    #[diagnostic(code("flowc::expr::type-mismatch"))]
    TypeMismatch {
        /// Operator.
        op: String,
        /// Types.
        args: String,
        /// Where.
        #[label("type error")]
        span: Span,
        /// How to fix.
        #[help]
        help: String,
    },
    /// A function that does not exist.
    #[error("unknown function `{name}`")]
    #[diagnostic(code("flowc::expr::unknown-function"))]
    UnknownFunction {
        /// Name.
        name: String,
        /// Where.
        #[label("not a function")]
        span: Span,
        /// Suggestion.
        #[help]
        help: String,
    },
    /// Wrong number of arguments.
    #[error("`{name}` takes {expected}")]
    #[diagnostic(
        code("flowc::expr::argument-count"),
        help("fix the number of arguments")
    )]
    ArgumentCount {
        /// Function.
        name: String,
        /// What it takes.
        expected: &'static str,
        /// Where.
        #[label("wrong number of arguments")]
        span: Span,
    },
    /// A literal pattern that is not a valid regular expression.
    #[error("invalid regular expression: {message}")]
    #[diagnostic(
        code("flowc::expr::invalid-regex"),
        help("patterns use RE2 syntax (no backreferences or look-around)")
    )]
    InvalidRegex {
        /// The regex error.
        message: String,
        /// Where.
        #[label("invalid pattern")]
        span: Span,
    },
    /// A condition whose type is not bool.
    #[error("condition has type `{ty}`, not `bool`")]
    #[diagnostic(code("flowc::expr::not-bool"))]
    NotBool {
        /// The type.
        ty: String,
        /// Where.
        #[label("this is a `{ty}`")]
        span: Span,
        /// How to fix.
        #[help]
        help: String,
    },
    /// An assignee expression that does not give `string` or `list<string>`.
    #[error("assignee expression has type `{ty}`, not `string` or `list<string>`")]
    #[diagnostic(
        code("flowc::expr::assignee-type"),
        help("an assignee expression gives a user id or a list of user ids")
    )]
    AssigneeType {
        /// The type.
        ty: String,
        /// Where.
        #[label("this is a `{ty}`")]
        span: Span,
    },
    /// A condition that is always true or always false (unless, where a part of it is
    /// charged by the size of what it reads, evaluating it runs out of a limit: limit
    /// errors are not absorbed by `&&` and `||`).
    #[error(
        "condition is always {value}{}",
        if *.unless_limit { " unless evaluating it runs out of a limit" } else { "" }
    )]
    #[diagnostic(
        code("flowc::expr::constant-condition"),
        severity(Warning),
        help(
            "a condition that is always true or always false decides nothing: remove it, or fix the comparison so that it depends on the context"
        )
    )]
    ConstantCondition {
        /// The constant.
        value: bool,
        /// Whether a part of it may run out of a limit (one charged by the size of what
        /// it reads: a comprehension, a string read, a regex, a lookup by a key, ...).
        unless_limit: bool,
        /// Where.
        #[label("always {value}")]
        span: Span,
    },
    /// A string field compared with a value outside its `enum`.
    #[error(
        "`{field}` is never `{value}` (its enum is {allowed}): this comparison is always {always}"
    )]
    #[diagnostic(code("flowc::expr::outside-enum"), severity(Warning))]
    OutsideEnum {
        /// The field.
        field: String,
        /// The literal.
        value: String,
        /// The enum, in words.
        allowed: String,
        /// What the comparison always gives.
        always: bool,
        /// Where.
        #[label("always {always}")]
        span: Span,
        /// How to fix.
        #[help]
        help: String,
    },
    /// An optional value read where the context may leave it out.
    #[error(
        "`{path}` is optional but read without a `has({path})` guard: an instance without it raises an incident"
    )]
    #[diagnostic(code("flowc::expr::unguarded-optional"), severity(Warning))]
    UnguardedOptional {
        /// The field path (`applicant.grade`).
        path: String,
        /// Where it is read.
        #[label("may be absent")]
        span: Span,
        /// How to fix.
        #[help]
        help: String,
    },
    /// The compiler failed on a valid expression: a bug in flowc, never the author's fault.
    #[error("internal error (a bug in flowc): {message}")]
    #[diagnostic(
        code("flowc::expr::internal"),
        help(
            "the expression is valid but flowc could not compile it; please report this with the expression"
        )
    )]
    Internal {
        /// What failed.
        message: String,
        /// The expression.
        #[label("flowc failed to compile this expression")]
        span: Span,
    },
    /// An expression that fails at every evaluation, whatever the context: a constant
    /// part of it fails and nothing absorbs the error (decision 110).
    #[error("expression always fails: {message}")]
    #[diagnostic(code("flowc::expr::always-fails"))]
    AlwaysFails {
        /// The error.
        message: String,
        /// Where: the constant part that fails.
        #[label("fails here")]
        span: Span,
        /// How to fix.
        #[help]
        help: String,
    },
    /// A part of an expression that fails at every evaluation of it, wherever it sits
    /// (under `&&`/`||`, in a `?:` branch, in a macro's body), though the whole may not
    /// (decisions 6 and 110): a constant part that fails, an operation that fails for
    /// every value of its other operands, or a `?:` branch given as a time zone that
    /// flowc does not know.
    #[error("a part of the expression always fails: {message}")]
    #[diagnostic(code("flowc::expr::failing-part"))]
    FailingPart {
        /// The error it fails with at run time.
        message: String,
        /// Where: the part.
        #[label("fails whenever it is evaluated")]
        span: Span,
        /// How to fix.
        #[help]
        help: String,
    },
}

/// Context variables: each has a slot index (its Rhai name is `v<index>`).
#[derive(Clone, Debug, Default)]
pub struct VarTable {
    names: BTreeMap<String, (usize, Type)>,
    optional: std::collections::BTreeSet<String>,
}

impl VarTable {
    /// One variable per top-level field.
    #[must_use]
    pub fn from_context(ctx: &ObjectType) -> Self {
        let mut t = Self::default();
        for (k, f) in &ctx.fields {
            t.add(k, f.ty.clone());
            if f.optional {
                t.optional.insert(k.clone());
            }
        }
        t
    }

    /// Declares a variable.
    pub fn add(&mut self, name: &str, ty: Type) {
        let idx = self.names.len();
        self.names.entry(name.to_owned()).or_insert((idx, ty));
    }

    /// Declares a variable that may be absent at run time.
    pub fn add_optional(&mut self, name: &str, ty: Type) {
        self.add(name, ty);
        self.optional.insert(name.to_owned());
    }

    /// (CEL name, slot index, type) for each variable, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, usize, &Type)> {
        self.names.iter().map(|(k, (i, t))| (k.as_str(), *i, t))
    }

    /// The slot index of a variable.
    #[must_use]
    pub fn index(&self, name: &str) -> Option<usize> {
        self.names.get(name).map(|(i, _)| *i)
    }

    /// Number of variables (slots).
    #[must_use]
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when no variable is declared.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The checker environment of these variables.
    #[must_use]
    pub fn env(&self) -> Env {
        let mut env = Env::default();
        for (k, (_, t)) in &self.names {
            env.declare(k, t.clone());
        }
        for k in &self.optional {
            env.declare_optional(k);
        }
        env
    }
}

impl codegen::VarNames for VarTable {
    fn rhai_name(&self, cel: &str) -> Option<String> {
        self.names.get(cel).map(|(i, _)| rhai_var(*i))
    }
    fn may_be_unbound(&self, cel: &str) -> bool {
        self.optional.contains(cel)
    }
}

/// The Rhai variable name of context slot `index`: codegen emits it, the sandbox binds it.
#[must_use]
pub fn rhai_var(index: usize) -> String {
    format!("v{index}")
}

/// The Rhai name of a generated program's constant `index` (codegen emits it, the
/// sandbox binds it).
#[must_use]
pub fn rhai_const(index: usize) -> String {
    format!("k{index}")
}

/// A checked expression with its generated program.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The typed tree.
    pub expr: Expr,
    /// Its type.
    pub ty: Type,
    /// Its value when it reads no context variable (evaluated at check time).
    pub value: Option<Value>,
}

fn map_check_error(src: &ExprSource, e: check::CheckError) -> ExprError {
    let span = src.map_span(e.span.0, e.span.1);
    match e.kind {
        CheckErrorKind::UnknownIdent { name, suggestion } => ExprError::UnknownIdentifier {
            help: crate::diagnostic::suggestion_help(
                suggestion.as_deref(),
                &format!("declare `{name}` under `context:` or fix the name"),
            ),
            name,
            span,
        },
        CheckErrorKind::UnknownField { name, suggestion } => ExprError::UnknownField {
            help: crate::diagnostic::suggestion_help(
                suggestion.as_deref(),
                "declare the field under the object's `fields:`",
            ),
            name,
            span,
        },
        CheckErrorKind::NoOverload { op, args, help } => ExprError::TypeMismatch {
            op,
            args,
            span,
            help,
        },
        CheckErrorKind::UnknownFunction { name, suggestion } => ExprError::UnknownFunction {
            help: crate::diagnostic::suggestion_help(
                suggestion.as_deref(),
                &format!(
                    "available: {}",
                    check::function_names().collect::<Vec<_>>().join(", ")
                ),
            ),
            name,
            span,
        },
        CheckErrorKind::ArgCount { name, expected } => ExprError::ArgumentCount {
            name,
            expected,
            span,
        },
        CheckErrorKind::InvalidRegex { message } => ExprError::InvalidRegex { message, span },
    }
}

/// The help of an expression or a part that always fails: what to fix, by the error.
fn always_fails_help(f: &fails::Failure) -> String {
    match &f.error {
        RunError::Op(OpError::UnknownZone(_)) => "flowc bundles no time-zone database, so it knows no zone names: write \"UTC\" or a fixed offset such as \"+08:00\" (Asia/Shanghai has no daylight saving time: it is always \"+08:00\")".to_owned(),
        RunError::Limit(_) => "this part reads no context value, so every evaluation runs out of the same limit: make it smaller".to_owned(),
        RunError::Op(OpError::DivisionByZero) => "the divisor is always zero: divide by a value that can be non-zero".to_owned(),
        RunError::Op(OpError::Overflow(_)) => "the constant part overflows 64-bit integers at every evaluation: use smaller numbers, or doubles".to_owned(),
        RunError::Op(OpError::IndexOutOfRange(_)) => "the constant list has no element at this index: fix the index".to_owned(),
        RunError::Op(OpError::NoSuchKey(_)) => "the constant map has no such key: fix the key, or test it with `in` first".to_owned(),
        RunError::Op(OpError::NotADuration { .. }) => "a duration is a sequence of numbers with units h, m, s, ms, us, ns: 7 days is `168h`".to_owned(),
        RunError::Op(OpError::NotATimestamp { .. }) => "an RFC 3339 timestamp, e.g. `2024-02-29T23:59:59Z`: the day within its month, hours to 23, minutes and seconds to 59, offsets under 24:00".to_owned(),
        RunError::Op(OpError::NoMatchingOverload { .. }) => "the constant operands have no matching overload at run time: fix their types".to_owned(),
        RunError::Op(OpError::InvalidArgument(_)) => "this constant argument is refused at every evaluation: fix it".to_owned(),
        _ => "this part reads no context value and fails at every evaluation: fix it".to_owned(),
    }
}

/// Parses and type-checks one expression from a flow file, and evaluates its constant
/// parts under the per-evaluation bounds `limits` (decision 110).
///
/// # Errors
/// Every syntax and type error, at file positions, or the constant part that makes it
/// fail at every evaluation and every part that fails at every evaluation of it
/// (`failing-part`, decisions 6 and 110).
pub fn check_expr(
    src: &ExprSource,
    env: &Env,
    limits: &SandboxLimits,
) -> Result<Checked, Vec<ExprError>> {
    let mut expr = parse::parse(&src.text).map_err(|e| {
        let span = src.map_span(e.span.0, e.span.1);
        vec![match e.kind {
            parse::ParseErrorKind::Syntax => ExprError::Syntax {
                message: e.message,
                span,
                help: e.help,
            },
            parse::ParseErrorKind::TooDeep => ExprError::TooDeep {
                message: e.message,
                span,
                help: e.help,
            },
        }]
    })?;
    let mut checker = check::Checker::new(env);
    let ty = checker.check(&mut expr);
    if checker.errors.is_empty() {
        let analysis = fails::analyse(&expr, limits);
        let mut errors = Vec::new();
        let mut whole = None;
        if let fails::Outcome::Fails(f) = &analysis.outcome {
            errors.push(ExprError::AlwaysFails {
                message: f.error.to_string(),
                span: src.map_span(f.span.0, f.span.1),
                help: always_fails_help(f),
            });
            whole = Some(f.span);
        }
        errors.extend(
            analysis
                .failing_parts
                .iter()
                .filter(|f| Some(f.span) != whole)
                .map(|f| ExprError::FailingPart {
                    message: f.error.to_string(),
                    span: src.map_span(f.span.0, f.span.1),
                    help: always_fails_help(f),
                }),
        );
        if !errors.is_empty() {
            return Err(errors);
        }
        let value = match analysis.outcome {
            fails::Outcome::Constant(v) => Some(v),
            fails::Outcome::Fails(_) | fails::Outcome::Varies => None,
        };
        Ok(Checked { expr, ty, value })
    } else {
        Err(checker
            .errors
            .into_iter()
            .map(|e| map_check_error(src, e))
            .collect())
    }
}

/// True when the expression reads no context variable (so its value is fixed): every
/// identifier in it is a variable of a comprehension inside it.
#[must_use]
pub fn is_constant(e: &Expr) -> bool {
    fn closed(e: &Expr, bound: &mut Vec<String>) -> bool {
        use ast::ExprKind as K;
        match &e.kind {
            K::Lit(_) => true,
            K::Ident(n) => bound.iter().any(|b| b == n),
            K::HasVar(_) => false,
            K::Comprehension {
                range,
                var,
                body,
                filter,
                ..
            } => {
                if !closed(range, bound) {
                    return false;
                }
                bound.push(var.clone());
                let inner = closed(body, bound) && filter.as_ref().is_none_or(|f| closed(f, bound));
                bound.pop();
                inner
            }
            K::Select(a, _) | K::Unary(_, a) | K::Has(a, _) => closed(a, bound),
            K::Index(a, b) | K::Binary(_, a, b) => closed(a, bound) && closed(b, bound),
            K::Cond(a, b, c) => closed(a, bound) && closed(b, bound) && closed(c, bound),
            K::Call { target, args, .. } => {
                target.as_ref().is_none_or(|t| closed(t, bound))
                    && args.iter().all(|a| closed(a, bound))
            }
            K::List(items) => items.iter().all(|i| closed(i, bound)),
            K::Map(entries) => entries
                .iter()
                .all(|(k, v)| closed(k, bound) && closed(v, bound)),
        }
    }
    closed(e, &mut Vec::new())
}

/// True when evaluating a checked expression may run out of a limit whatever its value:
/// one of its nodes is charged by the size of what it reads or builds ([`ir::Charge`],
/// the cost model's own account, [`ir::charge`]).
#[must_use]
pub fn may_hit_limit(e: &Expr) -> bool {
    let mut found = false;
    e.walk(&mut |n| found |= ir::charge(n) != ir::Charge::Unit);
    found
}

/// The `unguarded-optional` warnings of a checked expression (a condition, an assignee
/// expression): reads of optional values no `has()` guards.
#[must_use]
pub fn unguarded_optional(checked: &Checked, src: &ExprSource, env: &Env) -> Vec<ExprError> {
    unguarded_reads(&checked.expr, src, env, &[])
}

fn unguarded_reads(e: &Expr, src: &ExprSource, env: &Env, known: &[String]) -> Vec<ExprError> {
    guard::unguarded_given(e, env, known)
        .into_iter()
        .map(|u| {
            // a read that is not a place (`(b ? M : N)["k"].f`) is named by its own text
            // (probe q11g nit 1: its last field alone may name another variable)
            let path = u.path.unwrap_or_else(|| {
                let text = src.text.get(u.span.0..u.span.1).unwrap_or_default();
                value::quote(&text.split_whitespace().collect::<Vec<_>>().join(" ")).into_owned()
            });
            ExprError::UnguardedOptional {
                help: format!(
                    "guard it: `has({path}) && {path} …` (or `!has({path}) || …`), or give `{path}` a `default`"
                ),
                path,
                span: src.map_span(u.span.0, u.span.1),
            }
        })
        .collect()
}

/// Checks a condition: must be `bool`; warns when it is constant.
///
/// Returns the checked tree and any warnings.
///
/// # Errors
/// Syntax and type errors, a non-bool type, or a condition that always fails.
pub fn check_condition(
    src: &ExprSource,
    env: &Env,
    limits: &SandboxLimits,
) -> Result<(Checked, Vec<ExprError>), Vec<ExprError>> {
    check_rule_after(src, env, limits, &[])
}

/// Checks a condition evaluated only when every one of `earlier` (checked conditions)
/// was false, as a rule of a `first` decision after its earlier rules: as
/// [`check_condition`], with the negation of each earlier rule guarding its reads
/// (`!has(grade)` before `grade > 3`).
///
/// # Errors
/// As [`check_condition`].
pub fn check_rule_after(
    src: &ExprSource,
    env: &Env,
    limits: &SandboxLimits,
    earlier: &[&Expr],
) -> Result<(Checked, Vec<ExprError>), Vec<ExprError>> {
    let checked = check_expr(src, env, limits)?;
    if !matches!(checked.ty, Type::Bool | Type::Dyn) {
        let help = match checked.ty {
            Type::Int | Type::Uint | Type::Double => {
                "compare the number, e.g. `amount > 1000.0`".to_owned()
            }
            Type::String => "compare the string, e.g. `dept == \"finance\"`".to_owned(),
            Type::List(_) | Type::Map(..) => {
                "test it, e.g. `size(x) > 0` or `\"a\" in x`".to_owned()
            }
            _ => "a condition must be true or false".to_owned(),
        };
        return Err(vec![ExprError::NotBool {
            ty: checked.ty.to_string(),
            span: src.span,
            help,
        }]);
    }
    let mut warnings = Vec::new();
    match &checked.value {
        Some(Value::Bool(value)) => warnings.push(ExprError::ConstantCondition {
            value: *value,
            unless_limit: false,
            span: src.span,
        }),
        // a `dyn` constant that is no bool fails the condition at every evaluation
        Some(other) => {
            let error = RunError::ResultType {
                expected: "bool",
                got: other.type_name().to_owned(),
            };
            return Err(vec![ExprError::AlwaysFails {
                message: error.to_string(),
                span: src.span,
                help: "a condition must be true or false".to_owned(),
            }]);
        }
        None => {
            if let Some(value) = constant::fixed_value(&checked.expr) {
                warnings.push(ExprError::ConstantCondition {
                    value,
                    unless_limit: may_hit_limit(&checked.expr),
                    span: src.span,
                });
            }
        }
    }
    warnings.extend(unguarded_reads(
        &checked.expr,
        src,
        env,
        &guard::known_after_false(earlier),
    ));
    for o in constant::outside_enum(&checked.expr, env) {
        let help = crate::diagnostic::did_you_mean(&o.value, o.allowed.iter().map(String::as_str))
            .map_or_else(
                || {
                    format!(
                        "compare `{}` with one of its enum values, or add `{}` to the enum",
                        o.field, o.value
                    )
                },
                |s| format!("did you mean `{s}`?"),
            );
        warnings.push(ExprError::OutsideEnum {
            allowed: o.allowed.join(", "),
            field: o.field,
            value: o.value,
            always: o.always,
            span: src.map_span(o.span.0, o.span.1),
            help,
        });
    }
    Ok((checked, warnings))
}
