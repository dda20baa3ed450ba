//! Evaluating a condition allocates nothing on the heap (direct path), and a full run
//! of the expense example allocates no more than it did when measured; counted with a
//! counting global allocator. One test per binary, so nothing else allocates meanwhile.
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

mod support {
    pub mod counting;
}

use std::sync::Arc;

use flowc::compile::{Options, compile};
use flowc::expr::Value;
use flowc::sandbox::Bindings;
use flowc::span::SourceFile;

use support::counting::Allocated;

const FLOW: &str = r#"
apiVersion: flowc/v1
kind: ApprovalFlow
id: alloc
context:
  amount: double
  dept: string
  level: int
  budget: double
  urgent: bool
  applicant: { type: object, fields: { id: string, name: string, grade: { type: int, optional: true } } }
  tags: list<string>
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
    skipCondition: 'has(applicant.grade) && applicant.grade > 3 || applicant.id.startsWith("u") && size(dept) < 10'
  - id: c4b
    type: approval
    assignees: { role: a }
    skipCondition: '"travel" in tags && applicant.name.startsWith("li")'
  - id: c5
    type: approval
    assignees: { role: a }
    skipCondition: 'items.exists(i, i.amount > 1000.0 && i.category == "travel")'
  - id: route
    type: decision
    rules:
      - { when: amount > 1000000.0, goto: done }
      - { when: dept == "legal" && amount > 100000.0, goto: done }
      - { when: level >= 8 || urgent, goto: done }
    default: done
  - id: done
    type: end
    outcome: approved
"#;

#[test]
fn condition_evaluation_does_not_allocate() {
    let file = SourceFile::new("alloc.yaml", FLOW);
    let flow = compile(&file, &Options::default()).expect("compiles");
    let sb = flow.sandbox();
    let mut b = Bindings::new();
    for (name, i, _) in flow.vars().iter() {
        let v = match name {
            "amount" => Value::Double(20000.0),
            "dept" => Value::string("finance"),
            "level" => Value::Int(2),
            "budget" => Value::Double(21000.0),
            "urgent" => Value::Bool(false),
            "tags" => Value::List(Arc::new(vec![
                Value::string("meal"),
                Value::string("travel"),
            ])),
            "items" => Value::List(Arc::new(
                (0..20)
                    .map(|k| {
                        Value::map(vec![
                            (Value::string("amount"), Value::Double(100.0 * f64::from(k))),
                            (
                                Value::string("category"),
                                Value::string(if k == 15 { "travel" } else { "meal" }),
                            ),
                        ])
                    })
                    .collect(),
            )),
            _ => Value::map(vec![
                (Value::string("id"), Value::string("u1")),
                (Value::string("name"), Value::string("lisa")),
            ]),
        };
        b.set(i, &v);
    }
    let conds: Vec<_> = ["c1", "c2", "c3", "c4", "c4b", "c5"]
        .iter()
        .map(|id| {
            flow.skip_condition(flow.step_index(id).unwrap())
                .expect("condition")
        })
        .collect();
    let d = flow
        .decision(flow.step_index("route").unwrap())
        .expect("decision");
    // warm up (lazy statics, regex caches)
    for c in &conds {
        c.eval(sb, &mut b).expect("eval");
    }
    d.eval(sb, &mut b).expect("eval");

    assert!(conds.iter().all(|c| c.is_direct()) && d.is_direct());
    let mut results = Vec::with_capacity(6 * 1000);
    let before = Allocated::now();
    for _ in 0..1000 {
        for c in &conds {
            results.push(c.eval(sb, &mut b).expect("eval"));
        }
        assert_eq!(d.eval(sb, &mut b).expect("eval"), None);
    }
    let allocs = before.since().calls;
    assert_eq!(results[..6], [false, false, true, true, true, true]);
    assert_eq!(allocs, 0, "{allocs} heap allocations in 7,000 evaluations");

    // the Rhai path, for the record: it allocates per call
    let before = Allocated::now();
    conds[0].eval_sandboxed(sb, &mut b).expect("eval");
    assert!(
        before.since().calls > 0,
        "the Rhai path was expected to allocate"
    );

    // a full run of the expense example (the `full run` bench): what it allocates is
    // the owned data it hands the host (the context's values, the trace's lists, the
    // effect vectors), counted so that a change that adds allocations is seen
    let expense = Arc::new(
        compile(
            &SourceFile::new(
                "expense.yaml",
                include_str!("../examples/expense-reimbursement.yaml"),
            ),
            &Options::default(),
        )
        .unwrap(),
    );
    let ctx = serde_json::json!({
        "amount": 20000.0, "currency": "CNY", "dept": "sales", "level": 2,
        "applicant": {"id": "zhang.san"}, "tags": ["travel"]
    });
    let events = [
        flowc::runtime::Event::approve_as("manager-approve", "u", "manager"),
        flowc::runtime::Event::service_ok(flowc::runtime::CallId(3)),
        flowc::runtime::Event::approve_as("cfo-approve", "u", "cfo"),
    ];
    let run = || {
        let (mut inst, fx) =
            flowc::runtime::Instance::start(Arc::clone(&expense), &ctx, 0).unwrap();
        drop(fx);
        for (t, e) in events.iter().enumerate() {
            drop(inst.apply(e, t as u64 + 1).unwrap());
        }
        inst
    };
    assert_eq!(run().status().label(), "approved");
    let before = Allocated::now();
    let bind_only = flowc::runtime::context::bind(&expense, &ctx).unwrap();
    let bind_allocs = before.since().calls;
    drop(bind_only);
    let before = Allocated::now();
    let inst = run();
    let Allocated {
        calls: run_allocs,
        bytes: run_bytes,
    } = before.since();
    drop(inst);
    println!(
        "full expense run: {run_allocs} allocations ({run_bytes} bytes), {bind_allocs} of them binding"
    );
    assert!(
        run_allocs <= RUN_ALLOCS,
        "a full expense run allocates {run_allocs} times (bound {RUN_ALLOCS})"
    );
}

/// Heap allocations of one full expense run, start to approved, as measured; raise it
/// only with a reason. It was 111 before the runtime shared its strings with the
/// compiled flow and kept the context once (decision 94), 42 before the one fit routine
/// built only what an instance keeps and binds (decision 99): no intermediate lists, and
/// CEL values only for the fields the flow's programs read; 35 before an object's CEL map
/// keys shared the declared field names; 34 before an approval held a single slot inline
/// and the machine's work stack was held inline per event; 31 before assignee lists were
/// shared (decision 118).
const RUN_ALLOCS: usize = 28;
