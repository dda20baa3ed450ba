//! The project's own expression cases (`tests/fixtures/expr/cases.txt`), one line each.
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

use flowc::expr::check::Checker;
use flowc::expr::parse::parse;
use flowc::expr::{Expr, ExprError, ExprSource, FieldType, ObjectType, Type};
use flowc::expr::{Value, VarTable, check_expr, codegen, parse_timestamp};
use flowc::sandbox::{Bindings, Sandbox};

fn context() -> (VarTable, Vec<(&'static str, Value)>) {
    let mut applicant = ObjectType::default();
    applicant.fields.insert(
        "id".into(),
        FieldType {
            ty: Type::String,
            optional: false,
        },
    );
    applicant.fields.insert(
        "grade".into(),
        FieldType {
            ty: Type::Int,
            optional: true,
        },
    );
    let mut vars = VarTable::default();
    let decl: Vec<(&str, Type, Value)> = vec![
        ("amount", Type::Double, Value::Double(20000.0)),
        ("dept", Type::String, Value::string("finance")),
        ("level", Type::Int, Value::Int(2)),
        ("budget", Type::Double, Value::Double(21000.0)),
        ("urgent", Type::Bool, Value::Bool(false)),
        ("count", Type::Uint, Value::Uint(3)),
        (
            "tags",
            Type::list(Type::String),
            Value::List(Arc::new(vec![Value::string("a"), Value::string("b")])),
        ),
        (
            "limits",
            Type::map(Type::String, Type::Int),
            Value::map(vec![(Value::string("x"), Value::Int(1))]),
        ),
        (
            "start",
            Type::Timestamp,
            Value::Timestamp(parse_timestamp("2024-01-01T00:00:00Z").expect("ts")),
        ),
        (
            "applicant",
            Type::Object(Arc::new(applicant)),
            Value::map(vec![(Value::string("id"), Value::string("u1"))]),
        ),
    ];
    let mut values = Vec::new();
    for (n, t, v) in decl {
        vars.add(n, t);
        values.push((n, v));
    }
    // an optional field absent from the context: never bound
    vars.add_optional("nickname", Type::String);
    (vars, values)
}

/// The typed tree of an expression: parsed and type-checked, without the check's
/// evaluation of its constant parts (so that an expression the check proves always
/// fails still runs, and its run-time error can be compared with the check's).
fn typed(src: &str, vars: &VarTable) -> Result<Expr, String> {
    let mut e = parse(src).map_err(|e| format!("parse: {e:?}"))?;
    let env = vars.env();
    let mut checker = Checker::new(&env);
    checker.check(&mut e);
    if checker.errors.is_empty() {
        Ok(e)
    } else {
        Err(format!("check: {:?}", checker.errors))
    }
}

fn eval(src: &str) -> Result<Value, String> {
    let (vars, values) = context();
    let expr = typed(src, &vars)?;
    let sb = Sandbox::shared();
    let patterns = flowc::expr::Patterns::new();
    let g = codegen::generate(&expr, &vars, &patterns);
    let p = sb
        .compile(&g.source, &g.constants)
        .map_err(|e| e.to_string())?;
    let mut b = Bindings::new();
    for (n, v) in &values {
        b.set(vars.index(n).expect("var"), v);
    }
    let result = sb.eval(&p, &mut b).map_err(|e| e.to_string());
    // differential: where the direct evaluator applies, it must agree with the sandbox
    {
        let f = flowc::expr::Direct::lower(&expr, &vars, sb.limits(), &patterns);
        let direct = f.eval_value(b.slots()).map_err(|e| e.to_string());
        let agree = match (&result, &direct) {
            (Ok(x), Ok(y)) => same(x, y),
            (Err(x), Err(y)) => x == y,
            _ => false,
        };
        if !agree {
            return Err(format!(
                "direct path {direct:?} differs from sandbox {result:?}"
            ));
        }
    }
    result
}

fn expected_value(text: &str) -> Value {
    // expected values are CEL literals: evaluate them with no context
    let checked = check_expr(
        &ExprSource::detached(text),
        &VarTable::default().env(),
        Sandbox::shared().limits(),
    )
    .expect("expected literal checks");
    let g = codegen::generate(
        &checked.expr,
        &VarTable::default(),
        &flowc::expr::Patterns::new(),
    );
    let sb = Sandbox::shared();
    let p = sb.compile(&g.source, &g.constants).expect("compiles");
    sb.eval(&p, &mut Bindings::new())
        .expect("expected literal evaluates")
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| same(p, q))
        }
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Uint(x), Value::Uint(y)) => x == y,
        (Value::Double(x), Value::Double(y)) => x == y,
        _ => a.cel_equals(b) && a.type_name() == b.type_name(),
    }
}

#[test]
fn expression_cases() {
    let text = include_str!("fixtures/expr/cases.txt");
    let mut failures = Vec::new();
    let mut n = 0;
    for line in text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let (src, want) = line.split_once(" ⟶ ").expect("case line has ⟶");
        n += 1;
        let got = eval(src);
        let checked = check_expr(
            &ExprSource::detached(src),
            &context().0.env(),
            Sandbox::shared().limits(),
        );
        let ok = match want.split_at(1) {
            // a value or a run-time error: the check accepts the expression
            ("=", v) => {
                checked.is_ok()
                    && got
                        .as_ref()
                        .is_ok_and(|g| same(g, &expected_value(v.trim())))
            }
            // a disagreement between the paths quotes both errors: it never satisfies `~`
            ("~", msg) => {
                checked.is_ok()
                    && got
                        .as_ref()
                        .is_err_and(|e| e.contains(msg.trim()) && !e.starts_with("direct path"))
            }
            ("!", rest) => {
                // `! CODE COL`, then optionally what the expression gives at run time
                // (`= V` or `~ TEXT`): a failing part refuses it, yet it still runs
                let (rest, run) = match rest.find(['=', '~']) {
                    Some(at) => (&rest[..at], Some(rest[at..].split_at(1))),
                    None => (rest, None),
                };
                let runs = match run {
                    None => true,
                    Some(("=", v)) => got
                        .as_ref()
                        .is_ok_and(|g| same(g, &expected_value(v.trim()))),
                    Some((_, msg)) => got
                        .as_ref()
                        .is_err_and(|e| e.contains(msg.trim()) && !e.starts_with("direct path")),
                };
                let mut parts = rest.split_whitespace();
                let code = parts.next().expect("code");
                let col: usize = parts.next().expect("col").parse().expect("col number");
                runs && match &checked {
                    Ok(_) => false,
                    Err(errs) => errs.iter().any(|e| {
                        // an expression that always fails fails at run time with the
                        // check's very error, on both paths
                        if let ExprError::AlwaysFails { message, .. } = e
                            && got.as_ref().err() != Some(message)
                        {
                            return false;
                        }
                        let c = miette::Diagnostic::code(e)
                            .map(|c| c.to_string())
                            .unwrap_or_default();
                        let off = miette::Diagnostic::labels(e)
                            .and_then(|mut l| l.next())
                            .map_or(0, |l| l.offset());
                        c == code && src.get(..off).map(|p| p.chars().count() + 1) == Some(col)
                    }),
                }
            }
            _ => panic!("bad expectation {want}"),
        };
        if !ok {
            failures.push(format!("{src} ⟶ {want}: got {got:?}"));
        }
    }
    assert!(n >= 200, "only {n} cases");
    assert!(
        failures.is_empty(),
        "{} of {n} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A flat chain of 1,000 comparisons (parsed as a balanced tree) evaluates the same on
/// both paths, in order: the deciding operand ends it, an error before it is absorbed,
/// and an error with no deciding operand is the result.
#[test]
fn a_long_logical_chain_evaluates_on_both_paths() {
    let or = |hit: Option<usize>, err: Option<usize>| {
        (0..1000)
            .map(|i| {
                if Some(i) == err {
                    "10 / (level - 2) == 1".to_owned()
                } else if Some(i) == hit {
                    "level == 2".to_owned()
                } else {
                    format!("level == {}", i + 10)
                }
            })
            .collect::<Vec<_>>()
            .join(" || ")
    };
    assert!(same(
        &eval(&or(Some(999), None)).unwrap(),
        &Value::Bool(true)
    ));
    assert!(same(&eval(&or(Some(0), None)).unwrap(), &Value::Bool(true)));
    assert!(same(&eval(&or(None, None)).unwrap(), &Value::Bool(false)));
    assert!(same(
        &eval(&or(Some(700), Some(3))).unwrap(),
        &Value::Bool(true)
    ));
    assert!(same(
        &eval(&or(Some(3), Some(700))).unwrap(),
        &Value::Bool(true)
    ));
    let e = eval(&or(None, Some(500))).unwrap_err();
    assert!(
        e.contains("division by zero") && !e.starts_with("direct path"),
        "{e}"
    );
    let and = (0..1000)
        .map(|i| format!("level != {}", i + 10))
        .collect::<Vec<_>>()
        .join(" && ");
    assert!(same(&eval(&and).unwrap(), &Value::Bool(true)));
    assert!(same(
        &eval(&format!("{and} && level == 3")).unwrap(),
        &Value::Bool(false)
    ));
}

/// Expressions nested exactly `Limits::MAX_EXPR_NESTING` operations deep run on both
/// paths (the sandbox's compile-depth bound holds every one of them).
#[test]
fn expressions_at_the_nesting_bound_run_on_both_paths() {
    use flowc::limits::Limits;
    let n = Limits::MAX_EXPR_NESTING;
    let sum = format!("level{}", " + 1".repeat(n));
    let want = i64::try_from(n).unwrap() + 2;
    assert!(same(&eval(&sum).unwrap(), &Value::Int(want)));
    // a ternary chain: each `?:` nests the next in its else branch
    let mut cond = "level".to_owned();
    for i in 0..n - 1 {
        cond = format!("urgent ? {i} : {cond}");
    }
    assert!(same(&eval(&cond).unwrap(), &Value::Int(2)));
    let calls = format!("{}level{}", "int(".repeat(n), ")".repeat(n));
    assert!(
        eval(&calls).is_err(),
        "brackets nest past MAX_EXPR_DEPTH first"
    );
    let calls = format!(
        "{}level{}{}",
        "int(".repeat(Limits::MAX_EXPR_DEPTH),
        " + 1".repeat(n - Limits::MAX_EXPR_DEPTH),
        ")".repeat(Limits::MAX_EXPR_DEPTH)
    );
    assert!(same(
        &eval(&calls).unwrap(),
        &Value::Int(i64::try_from(n - Limits::MAX_EXPR_DEPTH).unwrap() + 2)
    ));
    assert!(
        eval(&format!("{sum} + 1"))
            .unwrap_err()
            .contains("more than the limit")
    );
}

/// Every row of the overload tables (functions and operators) has an expression case that resolves to it (so a new
/// function cannot land without a case exercising it on both paths).
#[test]
fn every_overload_has_a_case() {
    use flowc::expr::ast::ExprKind;
    use flowc::expr::overload::{OPERATORS, OVERLOADS, Resolved, operator, resolve};
    let text = include_str!("fixtures/expr/cases.txt");
    let vars = context().0;
    let mut covered = std::collections::BTreeSet::new();
    for line in text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let (src, _) = line.split_once(" ⟶ ").expect("case line has ⟶");
        // an expression the check proves always fails still runs its overloads
        let Ok(expr) = typed(src, &vars) else {
            continue;
        };
        expr.walk(&mut |n| {
            if let ExprKind::Binary(op, a, b) = &n.kind
                && a.ty != Type::Dyn
                && b.ty != Type::Dyn
                && let Some(o) = operator(*op, &a.ty, &b.ty)
            {
                covered.insert(o.id);
            }
            if let ExprKind::Call { target, name, args } = &n.kind {
                let types: Vec<Type> = target
                    .iter()
                    .map(|t| t.ty.clone())
                    .chain(args.iter().map(|a| a.ty.clone()))
                    .collect();
                if let Resolved::Found { exact: Some(o), .. } = resolve(name, &types) {
                    covered.insert(o.id);
                }
            }
        });
    }
    let missing: Vec<&str> = OVERLOADS
        .iter()
        .map(|o| o.id)
        .chain(OPERATORS.iter().map(|o| o.id))
        .filter(|id| !covered.contains(id))
        .collect();
    assert!(missing.is_empty(), "overloads without a case: {missing:?}");
}
