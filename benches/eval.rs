//! Condition and decision evaluation latency, each beside a hand-written Rust closure of
//! the same logic and cel-interpreter 0.10 on the same expression and context, measured
//! in the same run. Every condition must run on flowc's direct path (asserted).
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
  tags: list<string>
  applicant: { type: object, fields: { id: string, name: string } }
  items: { type: list, items: { type: object, fields: { amount: double, category: string } } }
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
  - id: c4
    type: approval
    assignees: { role: a }
    skipCondition: '"travel" in tags && applicant.name.startsWith("li")'
  - id: c5
    type: approval
    assignees: { role: a }
    skipCondition: 'items.exists(i, i.amount > 1000.0 && i.category == "travel")'
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
    tags: Vec<Arc<str>>,
    name: Arc<str>,
    items: Vec<(f64, Arc<str>)>,
}

const C: [(&str, &str); 5] = [
    ("c1", "amount < 10000.0"),
    (
        "c2",
        "amount > 50000.0 && dept == \"finance\" || level >= 3",
    ),
    (
        "c3",
        "dept in [\"finance\", \"legal\", \"hr\"] && amount * 1.1 > budget && !urgent",
    ),
    (
        "c4",
        "\"travel\" in tags && applicant.name.startsWith(\"li\")",
    ),
    (
        "c5",
        "items.exists(i, i.amount > 1000.0 && i.category == \"travel\")",
    ),
];

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
        tags: vec![Arc::from("meal"), Arc::from("office"), Arc::from("travel")],
        name: Arc::from("lisa"),
        items: (0..20)
            .map(|k| {
                let category = if k == 17 { "travel" } else { "meal" };
                (100.0 * f64::from(k), Arc::from(category))
            })
            .collect(),
    };
    let json = serde_json::json!({
        "amount": ctx.amount,
        "dept": &*ctx.dept,
        "level": ctx.level,
        "budget": ctx.budget,
        "urgent": ctx.urgent,
        "tags": ctx.tags.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
        "applicant": { "id": "u1", "name": &*ctx.name },
        "items": ctx.items.iter().map(|(a, c)| serde_json::json!({"amount": a, "category": &**c})).collect::<Vec<_>>(),
    });
    let (_, mut b): (_, Bindings) =
        flowc::runtime::context::bind(&flow, &json).expect("bench context fits");
    let mut cel_ctx = cel_interpreter::Context::default();
    for (k, v) in json.as_object().expect("object") {
        cel_ctx
            .add_variable(k.as_str(), v)
            .expect("cel-interpreter variable");
    }
    let mut g = c.benchmark_group("condition");
    for (id, text) in C {
        let cond = flow
            .skip_condition(flow.step_index(id).unwrap())
            .expect("condition");
        assert!(cond.is_direct(), "{id} runs on the direct path");
        let want = cond.eval_sandboxed(sb, &mut b).expect("eval");
        assert_eq!(cond.eval(sb, &mut b), Ok(want), "{id}: both paths agree");
        let cel = cel_interpreter::Program::compile(text).expect("cel-interpreter parses");
        assert_eq!(
            cel.execute(&cel_ctx).expect("cel-interpreter runs"),
            cel_interpreter::Value::Bool(want),
            "{id}: cel-interpreter agrees"
        );
        g.bench_function(format!("{id}/flowc"), |bn| {
            bn.iter(|| black_box(cond.eval(sb, &mut b).expect("eval")))
        });
        g.bench_function(format!("{id}/flowc-rhai"), |bn| {
            bn.iter(|| black_box(cond.eval_sandboxed(sb, &mut b).expect("eval")))
        });
        g.bench_function(format!("{id}/cel-interpreter"), |bn| {
            bn.iter(|| black_box(cel.execute(black_box(&cel_ctx)).expect("eval")))
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
    g.bench_function("c4/closure", |bn| {
        bn.iter(|| {
            let x = black_box(&x);
            black_box(x.tags.iter().any(|t| &**t == "travel") && x.name.starts_with("li"))
        });
    });
    g.bench_function("c5/closure", |bn| {
        bn.iter(|| {
            let x = black_box(&x);
            black_box(
                x.items
                    .iter()
                    .any(|(amount, category)| *amount > 1000.0 && &**category == "travel"),
            )
        });
    });
    g.finish();
    let d = flow
        .decision(flow.step_index("d10").unwrap())
        .expect("decision");
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

/// The least budget `cond` evaluates within on the direct path (binary search over
/// compiled flows), in units.
fn exact_cost(cond: &str, b: &mut Bindings) -> u64 {
    let runs_out = |budget: u64, b: &mut Bindings| {
        let mut limits = flowc::limits::Limits::default();
        limits.sandbox.max_operations = budget;
        let f = compile(&SourceFile::new("bench.yaml", FLOW), &Options::new(&limits)).unwrap();
        let c = f.compile_condition("t", cond).unwrap();
        c.eval(f.sandbox(), b).is_err()
    };
    let (mut lo, mut hi) = (0u64, 1u64 << 20);
    assert!(!runs_out(hi, b), "`{cond}` fits a budget");
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

/// Calibrates `regex_cost` (decision 100): what one charged unit of `matches` takes,
/// compiling the pattern (uncached, as a pattern read from the context may be) and
/// matching a subject, beside what one unit of ordinary operations takes (C5 on the
/// direct path, its time over its cost). Each case prints its units; a unit's time is
/// the case's time over them, and the ratios of those times are what
/// BENCHMARKS.md reports (the machine's load cancels out).
fn regex_cost(c: &mut Criterion) {
    let file = SourceFile::new("bench.yaml", FLOW);
    let flow = compile(&file, &Options::default()).expect("bench flow compiles");
    let sb = flow.sandbox();
    let json = serde_json::json!({
        "amount": 1.0, "dept": "x", "level": 1, "budget": 1.0, "urgent": false,
        "tags": ["a"], "applicant": { "id": "u1", "name": "x" },
        "items": (0..20).map(|k| serde_json::json!({
            "amount": 100.0 * f64::from(k),
            "category": if k == 17 { "travel" } else { "meal" },
        })).collect::<Vec<_>>(),
    });
    let (_, mut b): (_, Bindings) = flowc::runtime::context::bind(&flow, &json).unwrap();
    let mut g = c.benchmark_group("unit");
    let c5 = C.iter().find(|(id, _)| *id == "c5").unwrap().1;
    let units = exact_cost(c5, &mut b);
    let cond = flow.compile_condition("c5", c5).unwrap();
    println!("unit/c5: {units} units");
    g.bench_function("c5", |bn| {
        bn.iter(|| black_box(cond.eval(sb, &mut b).expect("eval")))
    });
    let patterns = [
        ("literal", "travel"),
        ("anchored", "^x+$"),
        ("classes", "(\\w+\\s*){20}\\d"),
        (
            "alternation",
            "alpha|beta|gamma|delta|epsilon|zeta|eta|theta|iota|kappa|lambda|mu",
        ),
    ];
    for (name, p) in patterns {
        for bytes in [16usize, 4096, 65536] {
            let subject = "x".repeat(bytes);
            let units = flowc::expr::regex_cost(&subject, p);
            let id = format!("matches/{name}/{bytes}");
            println!("unit/{id}: {units} units");
            g.bench_function(id, |bn| {
                bn.iter(|| {
                    let re = flowc::expr::build_regex(black_box(p)).unwrap();
                    black_box(re.is_match(black_box(&subject)))
                })
            });
        }
    }
    // compiling common context patterns (probe q11d nit 3, decision 126): each
    // compiled uncached and matched on the 8-byte `li@x.com`, beside its units
    for (name, p) in [
        ("word", "\\w"),
        ("words", "\\w+"),
        ("email", "^\\w+@\\w+\\.\\w+$"),
        ("letters", "\\pL+"),
        ("digits", "\\d+"),
        ("ascii-word", "[A-Za-z0-9_]+"),
        ("word-20", "\\w{20}"),
        ("range", "[a-z]"),
        ("anchored", "^q1$"),
        ("not-digit", "[^0-9]"),
        ("dot", "."),
        ("latin1", "[à-ÿ]+"),
        ("han", "[中-龥]+"),
        ("classes", "(\\w+\\s*){20}\\d"),
        ("letter-classes", "(\\pL+\\s*){20}\\d"),
        ("letters-20", "\\pL{20}"),
    ] {
        let subject = "li@x.com";
        let units = flowc::expr::regex_cost(subject, p);
        let weight = flowc::expr::regex_weight(p);
        println!("unit/compile/{name}: weight {weight}, {units} units");
        g.bench_function(format!("compile/{name}"), |bn| {
            bn.iter(|| {
                let re = flowc::expr::build_regex(black_box(p)).unwrap();
                black_box(re.is_match(black_box(subject)))
            })
        });
    }
    // matching only (the pattern compiled beforehand, as a literal pattern is): what a
    // subject byte costs for a small and a large pattern, on subjects that make each
    // scan its whole input (no match, or a match only at the end), decision 121
    let words = "ab cd\t".repeat(1 << 20 >> 3);
    let xs = "x".repeat(1 << 20);
    for (name, p, subject) in [
        ("b", "b", xs.as_str()),
        ("literal", "xxxy", xs.as_str()),
        (
            "literal-long",
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxy",
            xs.as_str(),
        ),
        ("anchored", "^x+$", xs.as_str()),
        ("alternation", patterns[3].1, xs.as_str()),
        ("word-digit", "\\w+\\d", words.as_str()),
        ("classes", "(\\w+\\s*){20}\\d", words.as_str()),
    ] {
        let re = flowc::expr::build_regex(p).unwrap();
        let estimate = flowc::expr::regex_estimate(p);
        let weight = estimate.weight;
        let units = flowc::expr::match_cost(subject, estimate);
        println!(
            "unit/matches/scan/{name}: weight {weight}, {} bytes, {units} units",
            subject.len()
        );
        g.bench_function(format!("matches/scan/{name}"), |bn| {
            bn.iter(|| black_box(re.is_match(black_box(subject))))
        });
    }
    // a pattern read from the context, already in the regex cache (a hit): what an
    // evaluation spends beside compiling, on both paths (the estimate of its cost is
    // kept with the compiled regex, so a hit parses nothing); a budget that lets the
    // costliest pattern run
    let mut limits = flowc::limits::Limits::default();
    limits.sandbox.max_operations = 1 << 40;
    let big = compile(&file, &Options::new(&limits)).expect("bench flow compiles");
    for (name, p) in patterns {
        let json = serde_json::json!({
            "amount": 1.0, "dept": "x".repeat(16), "level": 1, "budget": 1.0,
            "urgent": false, "tags": ["a"], "applicant": { "id": "u1", "name": p },
            "items": [],
        });
        let (_, mut b): (_, Bindings) = flowc::runtime::context::bind(&big, &json).unwrap();
        let c = big
            .compile_condition("m", "dept.matches(applicant.name)")
            .unwrap();
        let sb = big.sandbox();
        g.bench_function(format!("matches/context-hit/{name}/direct"), |bn| {
            bn.iter(|| black_box(c.eval(sb, &mut b).expect("eval")))
        });
        g.bench_function(format!("matches/context-hit/{name}/sandbox"), |bn| {
            bn.iter(|| black_box(c.eval_sandboxed(sb, &mut b).expect("eval")))
        });
    }
    // `SCAN_BYTES_PER_UNIT` (decision 119): string reads on a 64 KiB `dept`, each
    // condition's time over its units on both paths, beside C5's unit
    let json = serde_json::json!({
        "amount": 1.0, "dept": "x".repeat(65_536), "level": 1, "budget": 1.0,
        "urgent": false, "tags": ["a"], "applicant": { "id": "u1", "name": "x" },
        "items": [],
    });
    let (_, mut b): (_, Bindings) = flowc::runtime::context::bind(&flow, &json).unwrap();
    for (name, cond) in [
        ("size", "size(dept) > 0"),
        ("contains", "!dept.contains(\"zz\")"),
        ("startsWith", "dept.startsWith(\"x\")"),
        ("eq", "dept == dept"),
        ("string", "string(dept) != \"\""),
    ] {
        let units = exact_cost(cond, &mut b);
        let c = flow.compile_condition("s", cond).unwrap();
        println!("unit/scan/{name}: {units} units");
        g.bench_function(format!("scan/{name}/direct"), |bn| {
            bn.iter(|| black_box(c.eval(sb, &mut b).expect("eval")))
        });
        g.bench_function(format!("scan/{name}/sandbox"), |bn| {
            bn.iter(|| black_box(c.eval_sandboxed(sb, &mut b).expect("eval")))
        });
    }
    g.finish();
}

criterion_group!(benches, bench, regex_cost);
criterion_main!(benches);
