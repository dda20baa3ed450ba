//! One set-up for the tests that run a condition on both evaluation paths (the direct
//! evaluator and the sandbox's Rhai program) and want the same outcome from each: a
//! flow compiled from its context fields under a budget, named values bound, each
//! case checked on both paths. A test binary takes it with
//! `mod support { pub mod paths; }`.
#![allow(dead_code, reason = "each test binary uses a part of it")]

use std::fmt;
use std::sync::Arc;

use flowc::compile::{CompiledFlow, Condition, Options, compile};
use flowc::expr::Value;
use flowc::limits::Limits;
use flowc::sandbox::{Bindings, RunError};
use flowc::span::SourceFile;

/// What a condition gives.
pub type Outcome = Result<bool, RunError>;

/// An evaluation path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// The lowered IR (what a host runs unless it selects the sandbox).
    Direct,
    /// The generated Rhai program.
    Sandbox,
}

impl Path {
    /// Both paths, the direct one first.
    pub const BOTH: [Path; 2] = [Path::Direct, Path::Sandbox];

    /// Evaluates `c`, a condition of `flow`, on this path.
    pub fn eval(self, flow: &CompiledFlow, c: &Condition, b: &mut Bindings) -> Outcome {
        match self {
            Path::Direct => c.eval(flow.sandbox(), b),
            Path::Sandbox => c.eval_sandboxed(flow.sandbox(), b),
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Path::Direct => "direct",
            Path::Sandbox => "sandbox",
        })
    }
}

/// Options with the default limits but a budget of `units`.
pub fn budget(units: u64) -> Options {
    let mut limits = Limits::default();
    limits.sandbox.max_operations = units;
    Options::new(&limits)
}

/// The flow of `yaml`, compiled with `options`.
pub fn compile_yaml(yaml: &str, options: &Options) -> CompiledFlow {
    compile(&SourceFile::new("paths.yaml", yaml), options).unwrap()
}

/// A flow of one approval step whose context has `fields` (YAML as it stands under
/// `context:`, each line indented by two spaces here), compiled with `options`.
pub fn flow(fields: &str, options: &Options) -> CompiledFlow {
    let fields: String = fields
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("  {l}\n"))
        .collect();
    compile_yaml(
        &format!(
            "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: paths\ncontext:\n{fields}steps:\n  \
             - id: a\n    type: approval\n    assignees: {{ role: r }}\n"
        ),
        options,
    )
}

/// Binds `value` to the context variable `name` of `flow`.
pub fn set(flow: &CompiledFlow, b: &mut Bindings, name: &str, value: Value) {
    b.set_owned(flow.vars().index(name).unwrap(), value);
}

/// Bindings of `values`, by name.
pub fn bind<'a>(
    flow: &CompiledFlow,
    values: impl IntoIterator<Item = (&'a str, Value)>,
) -> Bindings {
    let mut b = Bindings::new();
    for (name, value) in values {
        set(flow, &mut b, name, value);
    }
    b
}

/// A list of `items`.
pub fn list(items: impl IntoIterator<Item = Value>) -> Value {
    Value::List(Arc::new(items.into_iter().collect()))
}

/// A map of string keys.
pub fn map<'a>(entries: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
    Value::map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::string(k), v))
            .collect(),
    )
}

/// `cond` compiled in `flow`, with its direct form.
pub fn condition(flow: &CompiledFlow, cond: &str) -> Condition {
    let c = flow.compile_condition("t", cond).unwrap();
    assert!(c.is_direct(), "{cond}");
    c
}

/// Asserts `cond` gives `want` on both paths (the direct one first), on `b`; the
/// condition compiled, for more runs.
pub fn both_paths(flow: &CompiledFlow, b: &mut Bindings, cond: &str, want: &Outcome) -> Condition {
    let c = condition(flow, cond);
    for path in Path::BOTH {
        assert_eq!(&path.eval(flow, &c, b), want, "{path}: {cond}");
    }
    c
}

/// [`both_paths`] for each case, in order, on the same bindings.
pub fn both_paths_each<'a>(
    flow: &CompiledFlow,
    b: &mut Bindings,
    cases: impl IntoIterator<Item = (&'a str, Outcome)>,
) {
    for (cond, want) in cases {
        both_paths(flow, b, cond, &want);
    }
}

/// [`both_paths`] for each of `conds`, all giving `want`, in order, on the same bindings.
pub fn both_paths_all<'a>(
    flow: &CompiledFlow,
    b: &mut Bindings,
    conds: impl IntoIterator<Item = &'a str>,
    want: &Outcome,
) {
    for cond in conds {
        both_paths(flow, b, cond, want);
    }
}

/// Asserts `cond` fails with the message `words` on both paths.
pub fn both_paths_fail_with(flow: &CompiledFlow, b: &mut Bindings, cond: &str, words: &str) {
    let c = condition(flow, cond);
    for path in Path::BOTH {
        let got = path.eval(flow, &c, b).map_err(|e| e.to_string());
        assert_eq!(got, Err(words.to_owned()), "{path}: {cond}");
    }
}

/// The budget edge of `cond` on `b`, whose exact cost is `exact`: compiled by `at` under
/// each of `budgets`, both paths give the same outcome, and it is running out of that
/// budget exactly when the budget is below `exact`.
pub fn same_edge(
    at: impl Fn(u64) -> CompiledFlow,
    b: &mut Bindings,
    cond: &str,
    exact: u64,
    budgets: &[u64],
) {
    for &units in budgets {
        let f = at(units);
        let c = condition(&f, cond);
        let direct = Path::Direct.eval(&f, &c, b);
        assert_eq!(
            direct,
            Path::Sandbox.eval(&f, &c, b),
            "`{cond}` with a budget of {units}"
        );
        assert_eq!(
            direct == Err(RunError::budget(units)),
            units < exact,
            "`{cond}` with a budget of {units}"
        );
    }
}

/// The least budget within which `cond` does not run out on `path` (binary search
/// between 0 and `max`, which it must fit), each budget's flow compiled by `at`.
pub fn least_budget(
    at: impl Fn(u64) -> CompiledFlow,
    b: &mut Bindings,
    cond: &str,
    path: Path,
    max: u64,
) -> u64 {
    let runs_out = |budget: u64, b: &mut Bindings| {
        let f = at(budget);
        let c = condition(&f, cond);
        path.eval(&f, &c, b) == Err(RunError::budget(budget))
    };
    assert!(!runs_out(max, b), "`{cond}` does not fit a budget of {max}");
    if !runs_out(0, b) {
        return 0;
    }
    // invariant: `lo` runs out, `hi` does not
    let (mut lo, mut hi) = (0u64, max);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if runs_out(mid, b) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

/// The context fields of the tests that read a `?:` pick of a map, list or object
/// (probe q11e bug A): [`flow`] of them under a budget.
pub const PICK_FIELDS: &str = r#"
b: bool
zero: int
lookups: list<int>
keys: list<string>
m: "map<string, int>"
vm: "map<string, int>"
tags: list<int>
om: { type: "map<string, int>", optional: true }
o: { type: object, optional: true, fields: { name: string, codes: "map<string, int>" } }
"#;
