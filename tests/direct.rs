//! The direct path covers the language: every condition of the examples runs on it,
//! a host can select the sandbox instead, and the cost budget stops a comprehension
//! over a huge list on both paths (fail closed).
#![allow(
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "test and benchmark code: failing loudly is the point"
)]

use std::sync::Arc;

use flowc::compile::{AssigneeSlot, Evaluator, Options, compile};
use flowc::expr::Value;
use flowc::sandbox::{Bindings, RunError};
use flowc::span::SourceFile;

#[test]
fn every_condition_of_the_examples_runs_on_the_direct_path() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".yaml") || name.ends_with(".test.yaml") {
            continue;
        }
        let file = SourceFile::new(&name, std::fs::read_to_string(&path).unwrap());
        let flow = compile(&file, &Options::default()).expect("example compiles");
        for i in 0..flow.nodes().len() {
            let id = flow.step(i).unwrap().id.value.clone();
            if let Some(c) = flow.skip_condition(i) {
                assert!(c.is_direct(), "{name}: skipCondition of {id}");
                seen += 1;
            }
            if let Some(d) = flow.decision(i) {
                assert!(d.is_direct(), "{name}: decision {id}");
                seen += 1;
            }
            if let Some(e) = flow.assignee_expression(AssigneeSlot::Step(i)) {
                assert!(e.is_direct(), "{name}: assignee expression of {id}");
                seen += 1;
            }
            if let Some(e) = flow.assignee_expression(AssigneeSlot::Escalation(i)) {
                assert!(e.is_direct(), "{name}: escalateTo of {id}");
                seen += 1;
            }
        }
    }
    assert!(seen >= 10, "only {seen} conditions in the examples");
}

const FLOW: &str = r#"
apiVersion: flowc/v1
kind: ApprovalFlow
id: big
context:
  li: list<int>
  tags: list<string>
steps:
  - id: a
    type: approval
    assignees: { role: r }
    skipCondition: 'li.exists(x, x < 0)'
  - id: b
    type: approval
    assignees: { role: r }
    skipCondition: '"travel" in tags'
"#;

fn bindings(flow: &flowc::compile::CompiledFlow, n: i64) -> Bindings {
    let mut b = Bindings::new();
    let li = Value::List(Arc::new((0..n).map(Value::Int).collect()));
    let tags = Value::List(Arc::new(
        (0..n).map(|i| Value::string(&i.to_string())).collect(),
    ));
    b.set(flow.vars().index("li").unwrap(), &li);
    b.set(flow.vars().index("tags").unwrap(), &tags);
    b
}

#[test]
fn a_comprehension_over_a_million_elements_fails_closed_on_both_paths() {
    let flow = compile(&SourceFile::new("big.yaml", FLOW), &Options::default()).unwrap();
    let sb = flow.sandbox();
    let mut b = bindings(&flow, 1_000_000);
    let cond = flow.skip_condition(flow.step_index("a").unwrap()).unwrap();
    assert!(cond.is_direct());
    let direct = cond.eval(sb, &mut b);
    assert_eq!(direct, Err(RunError::budget(100_000)));
    // the same error in the sandbox: a context list longer than the list bound is read,
    // never refused (the bound is on lists built)
    assert_eq!(cond.eval_sandboxed(sb, &mut b), direct);
    // membership in a huge list is charged too
    let member = flow.skip_condition(flow.step_index("b").unwrap()).unwrap();
    assert_eq!(member.eval(sb, &mut b), Err(RunError::budget(100_000)));
    assert_eq!(
        member.eval_sandboxed(sb, &mut b),
        Err(RunError::budget(100_000))
    );
    // within the budget both paths run to the end
    let mut small = bindings(&flow, 1_000);
    assert_eq!(cond.eval(sb, &mut small), Ok(false));
    assert_eq!(cond.eval_sandboxed(sb, &mut small), Ok(false));
    assert_eq!(member.eval(sb, &mut small), Ok(false));
}

#[test]
fn a_host_can_select_the_sandbox() {
    let options = Options {
        evaluator: Evaluator::Sandbox,
        ..Options::default()
    };
    let flow = compile(&SourceFile::new("big.yaml", FLOW), &options).unwrap();
    let cond = flow.skip_condition(flow.step_index("a").unwrap()).unwrap();
    assert!(!cond.is_direct());
    let mut b = bindings(&flow, 3);
    assert_eq!(cond.eval(flow.sandbox(), &mut b), Ok(false));
    let canary = flow.compile_condition("canary", "size(li) == 3").unwrap();
    assert!(!canary.is_direct());
    assert_eq!(canary.eval(flow.sandbox(), &mut b), Ok(true));
}

#[test]
fn strings_and_lists_built_are_bounded_as_in_the_sandbox() {
    let text = FLOW.replace(
        "steps:",
        "  s: string\nsteps:\n  - id: c\n    type: approval\n    assignees: { role: r }\n    skipCondition: 'size(s + s) > 0'\n  - id: d\n    type: approval\n    assignees: { role: r }\n    skipCondition: 'size(li + li) > 0'\n  - id: e\n    type: approval\n    assignees: { role: r }\n    skipCondition: 'size(li.map(x, x + 1)) > 0'",
    );
    let flow = compile(&SourceFile::new("big.yaml", text), &Options::default()).unwrap();
    let sb = flow.sandbox();
    let mut b = bindings(&flow, 6_000);
    b.set(
        flow.vars().index("s").unwrap(),
        &Value::string(&"x".repeat(40 * 1024)),
    );
    for id in ["c", "d"] {
        let cond = flow.skip_condition(flow.step_index(id).unwrap()).unwrap();
        let direct = cond.eval(sb, &mut b);
        let sandboxed = cond.eval_sandboxed(sb, &mut b);
        assert!(
            matches!(direct, Err(RunError::Limit(_))),
            "{id}: {direct:?}"
        );
        assert_eq!(direct, sandboxed, "{id}");
    }
    // a list built by `map` longer than the sandbox's array bound
    let cond = flow.skip_condition(flow.step_index("e").unwrap()).unwrap();
    assert_eq!(cond.eval(sb, &mut b), Ok(true));
    assert_eq!(cond.eval_sandboxed(sb, &mut b), Ok(true));
    let mut long = bindings(&flow, 10_001);
    long.set(flow.vars().index("s").unwrap(), &Value::string("x"));
    let direct = cond.eval(sb, &mut long);
    assert!(matches!(direct, Err(RunError::Limit(_))), "{direct:?}");
    assert_eq!(direct, cond.eval_sandboxed(sb, &mut long));
}

/// The typed path answers only what the exact path would; every surprise (a slot
/// holding another type than declared, an unbound slot, an error that `&&`/`||`
/// absorbs or not, an overflow, a budget running out) goes to the exact path, which
/// gives CEL's value or error. Each case is a condition, bindings, and what `eval`
/// (typed first) gives; the sandbox gives the same wherever the bindings hold the
/// declared types (a context bound by `context::bind` always does).
#[test]
fn the_typed_path_leaves_every_surprise_to_the_exact_path() {
    let text = r#"
apiVersion: flowc/v1
kind: ApprovalFlow
id: typed
context:
  amount: double
  level: int
  dept: string
  urgent: bool
  li: list<int>
steps:
  - id: done
    type: end
    outcome: approved
"#;
    let flow = compile(&SourceFile::new("typed.yaml", text), &Options::default()).unwrap();
    let sb = flow.sandbox();
    let slot = |n: &str| flow.vars().index(n).unwrap();
    let typed_bindings = || {
        let mut b = Bindings::new();
        b.set(slot("amount"), &Value::Double(20000.0));
        b.set(slot("level"), &Value::Int(2));
        b.set(slot("dept"), &Value::string("finance"));
        b.set(slot("urgent"), &Value::Bool(false));
        b.set(
            slot("li"),
            &Value::List(Arc::new((0..5).map(Value::Int).collect())),
        );
        b
    };
    let overflow = "level * 9223372036854775807 > 0";
    let cases: Vec<(&str, Bindings, Result<bool, &str>)> = vec![
        // the typed path answers
        (
            r#"dept in ["finance", "hr"] && amount * 1.1 > 21000.0 && !urgent"#,
            typed_bindings(),
            Ok(true),
        ),
        (
            "li.exists(x, x > 3) && level >= 2",
            typed_bindings(),
            Ok(true),
        ),
        // an int where a double was declared: CEL compares across numeric types
        (
            "amount < 10000.0",
            {
                let mut b = typed_bindings();
                b.set(slot("amount"), &Value::Int(5));
                b
            },
            Ok(true),
        ),
        // a string where a bool was declared: `!` has no overload
        (
            "!urgent",
            {
                let mut b = typed_bindings();
                b.set(slot("urgent"), &Value::string("no"));
                b
            },
            Err("no matching overload"),
        ),
        // an unbound slot
        ("level > 1", Bindings::new(), Err("level")),
        // an error on the left absorbed by a deciding right operand, and not absorbed
        ("li[9] > 0 || level == 2", typed_bindings(), Ok(true)),
        ("li[9] > 0 && level == 2", typed_bindings(), Err("index")),
        // an overflow, alone and absorbed
        (overflow, typed_bindings(), Err("overflow")),
        (
            "level * 9223372036854775807 > 0 || true",
            typed_bindings(),
            Ok(true),
        ),
    ];
    for (k, (cond_text, mut b, want)) in cases.into_iter().enumerate() {
        let cond = flow.compile_condition("case", cond_text).unwrap();
        assert!(cond.is_direct(), "{cond_text}");
        let got = cond.eval(sb, &mut b);
        // cases 2 and 3 bind another type than declared: the sandbox's typed natives
        // refuse those, so only the direct path's CEL value is checked
        let declared_types = !matches!(k, 2 | 3);
        let sandboxed = cond.eval_sandboxed(sb, &mut b);
        match want {
            Ok(v) => {
                assert_eq!(got, Ok(v), "{cond_text}");
                if declared_types {
                    assert_eq!(sandboxed, Ok(v), "{cond_text}");
                }
            }
            Err(part) => {
                let e = got.expect_err(cond_text).to_string();
                assert!(e.contains(part), "{cond_text}: {e}");
                if declared_types {
                    assert!(sandboxed.is_err(), "{cond_text}: {sandboxed:?}");
                }
            }
        }
    }
    // a budget running out inside the typed path is the exact path's bound
    let mut big = bindings(&flow_with_lists(), 1_000_000);
    let f = flow_with_lists();
    let cond = f.skip_condition(f.step_index("a").unwrap()).unwrap();
    assert_eq!(
        cond.eval(f.sandbox(), &mut big),
        Err(RunError::budget(100_000))
    );
}

fn flow_with_lists() -> flowc::compile::CompiledFlow {
    compile(&SourceFile::new("big.yaml", FLOW), &Options::default()).unwrap()
}

/// Every expression flowc's parser accepts compiles on both paths and both give the
/// same value (issue 11, B1): for each shape that nests (a chain of `||`, of `+` on
/// ints and on strings, nested `?:`, chained `map`, nested `exists`, a run of `!`,
/// nested list literals) the largest the parser accepts is built, compiled and run
/// here, on a test thread's small stack.
#[test]
fn the_largest_expression_of_every_shape_compiles_and_agrees_on_both_paths() {
    use flowc::expr::parse::parse;
    let text = r#"
apiVersion: flowc/v1
kind: ApprovalFlow
id: deep
context:
  dept: string
  i: int
  s: string
  b: bool
  l: list<int>
steps:
  - id: done
    type: end
    outcome: approved
"#;
    let flow = compile(&SourceFile::new("deep.yaml", text), &Options::default()).unwrap();
    let sb = flow.sandbox();
    let slot = |n: &str| flow.vars().index(n).unwrap();
    let mut bindings = Bindings::new();
    bindings.set(slot("dept"), &Value::string("部门0"));
    bindings.set(slot("i"), &Value::Int(1));
    bindings.set(slot("s"), &Value::string("a"));
    bindings.set(slot("b"), &Value::Bool(false));
    bindings.set(slot("l"), &Value::List(Arc::new(vec![Value::Int(0)])));
    // the largest `n` whose text the parser accepts (it refuses `n + 1`)
    let largest = |shape: &dyn Fn(usize) -> String| -> (usize, String) {
        let mut n = 1;
        assert!(parse(&shape(n)).is_ok(), "{}", shape(n));
        while parse(&shape(n + 1)).is_ok() {
            n += 1;
        }
        (n, shape(n))
    };
    let shapes: [(&str, &dyn Fn(usize) -> String); 8] = [
        ("|| chain", &|n| {
            (0..n)
                .map(|k| format!("dept == \"部门{k}\""))
                .collect::<Vec<_>>()
                .join(" || ")
        }),
        ("+ chain", &|n| {
            format!("{} == {n}", vec!["i"; n].join(" + "))
        }),
        ("string + chain", &|n| {
            format!("size({}) == {n}", vec!["s"; n].join(" + "))
        }),
        ("nested ?:", &|n| {
            format!("({}0) == 0", "b ? 1 : ".repeat(n))
        }),
        ("chained map", &|n| {
            format!("l{}[0] == {n}", ".map(x, x + 1)".repeat(n))
        }),
        ("nested exists", &|n| {
            let mut e = "x0 == 0".to_owned();
            for k in (0..n).rev() {
                e = format!("l.exists(x{k}, {e})");
            }
            e
        }),
        ("!!!", &|n| format!("{}b", "!".repeat(n))),
        ("nested list literal", &|n| {
            format!("size({}1{}) == 1", "[".repeat(n), "]".repeat(n))
        }),
    ];
    for (name, shape) in shapes {
        let (n, text) = largest(shape);
        let cond = flow.compile_condition("deep", &text).unwrap_or_else(|d| {
            panic!(
                "{name} ({n}): {:?}",
                d.iter().map(|d| d.message()).collect::<Vec<_>>()
            )
        });
        assert!(cond.is_direct(), "{name}");
        let direct = cond.eval(sb, &mut bindings);
        let sandboxed = cond.eval_sandboxed(sb, &mut bindings);
        assert_eq!(direct, sandboxed, "{name} ({n})");
        // `b` is false: an odd run of `!` gives true
        let expected = name != "!!!" || n % 2 == 1;
        assert_eq!(direct, Ok(expected), "{name} ({n})");
    }
}

/// A generated program that does not compile (a bug in flowc) is quoted cut short: the
/// internal error stays bounded whatever the program's length (issue 11, B1).
#[test]
fn an_internal_compile_error_quotes_a_bounded_excerpt() {
    let sandbox = flowc::sandbox::Sandbox::default();
    let source = format!("{} +", vec!["1"; 5_000].join(" + "));
    let e = sandbox.compile(&source, &[]).unwrap_err().to_string();
    assert!(e.len() < 400, "{} bytes: {e}", e.len());
    assert!(e.ends_with(&format!("… ({} bytes)`", source.len())), "{e}");
}
