//! Condition and decision evaluation latency, each beside a hand-written Rust closure of
//! the same logic measured in the same run.
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

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use flowc::compile::{Options, compile};
use flowc::expr::Value;
use flowc::sandbox::Bindings;
use flowc::span::SourceFile;

const FLOW: &str = r#"
apiVersion: flowc/v1
kind: ApprovalFlow
id: bench
context:
  amount: double
  dept: string
  level: int
  budget: double
  urgent: bool
steps:
  - id: c1
    type: approval
    assignees: { role: a }
    skipCondition: amount < 10000.0
  - id: c2
    type: approval
    assignees: { role: a }
    skipCondition: amount > 50000.0 && dept == "finance" || level >= 3
  - id: c3
    type: approval
    assignees: { role: a }
    skipCondition: 'dept in ["finance", "legal", "hr"] && amount * 1.1 > budget && !urgent'
  - id: d10
    type: decision
    rules:
      - { when: amount > 1000000.0, goto: done }
      - { when: amount > 500000.0 && level > 5, goto: done }
      - { when: dept == "legal" && amount > 100000.0, goto: done }
      - { when: dept == "hr" && level >= 4, goto: done }
      - { when: urgent && amount > 50000.0, goto: done }
      - { when: level >= 8, goto: done }
      - { when: amount > budget * 2.0, goto: done }
      - { when: dept == "it" && amount > 20000.0, goto: done }
      - { when: 'dept in ["ops", "sales"] && level < 2', goto: done }
      - { when: amount > 30000.0, goto: done }
    default: done
  - id: done
    type: end
    outcome: approved
"#;

#[derive(Clone)]
struct Ctx {
    amount: f64,
    dept: Arc<str>,
    level: i64,
    budget: f64,
    urgent: bool,
}

fn bench(c: &mut Criterion) {
    let file = SourceFile::new("bench.yaml", FLOW);
    let flow = compile(&file, &Options::default()).expect("bench flow compiles");
    let sb = flow.sandbox();
    let ctx = Ctx {
        amount: 20000.0,
        dept: Arc::from("finance"),
        level: 2,
        budget: 21000.0,
        urgent: false,
    };
    let mut b = Bindings::new();
    for (name, index, _) in flow.vars().iter() {
        let v = match name {
            "amount" => Value::Double(ctx.amount),
            "dept" => Value::String(Arc::clone(&ctx.dept)),
            "level" => Value::Int(ctx.level),
            "budget" => Value::Double(ctx.budget),
            _ => Value::Bool(ctx.urgent),
        };
        b.set(index, &v);
    }
    let mut g = c.benchmark_group("condition");
    for id in ["c1", "c2", "c3"] {
        let cond = flow.skip_condition(id).expect("condition");
        assert!(cond.is_direct(), "{id} runs on the direct path");
        g.bench_function(format!("{id}/flowc"), |bn| {
            bn.iter(|| black_box(cond.eval(sb, &mut b).expect("eval")))
        });
        g.bench_function(format!("{id}/flowc-rhai"), |bn| {
            bn.iter(|| black_box(cond.eval_sandboxed(sb, &mut b).expect("eval")))
        });
    }
    let x = black_box(ctx.clone());
    g.bench_function("c1/closure", |bn| {
        bn.iter(|| black_box(black_box(&x).amount < 10000.0))
    });
    g.bench_function("c2/closure", |bn| {
        bn.iter(|| {
            let x = black_box(&x);
            black_box(x.amount > 50000.0 && &*x.dept == "finance" || x.level >= 3)
        });
    });
    g.bench_function("c3/closure", |bn| {
        bn.iter(|| {
            let x = black_box(&x);
            black_box(
                ["finance", "legal", "hr"].contains(&&*x.dept)
                    && x.amount * 1.1 > x.budget
                    && !x.urgent,
            )
        });
    });
    g.finish();
    let d = flow.decision("d10").expect("decision");
    let mut g = c.benchmark_group("decision");
    assert!(d.is_direct());
    g.bench_function("10-rules-first/flowc", |bn| {
        bn.iter(|| black_box(d.eval(sb, &mut b).expect("eval")))
    });
    g.bench_function("10-rules-first/flowc-rhai", |bn| {
        bn.iter(|| black_box(d.eval_sandboxed(sb, &mut b).expect("eval")))
    });
    let closure_rules = |x: &Ctx| -> Option<usize> {
        let d = &*x.dept;
        [
            x.amount > 1_000_000.0,
            x.amount > 500_000.0 && x.level > 5,
            d == "legal" && x.amount > 100_000.0,
            d == "hr" && x.level >= 4,
            x.urgent && x.amount > 50000.0,
            x.level >= 8,
            x.amount > x.budget * 2.0,
            d == "it" && x.amount > 20000.0,
            (d == "ops" || d == "sales") && x.level < 2,
            x.amount > 30000.0,
        ]
        .iter()
        .position(|h| *h)
    };
    g.bench_function("10-rules-first/closure", |bn| {
        bn.iter(|| black_box(closure_rules(black_box(&x))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
