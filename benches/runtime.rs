//! Registry reads (with and without a concurrent publisher), a full run of the expense
//! example, and publishing a 100-step flow; each beside a baseline in the same run.
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
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use criterion::{Criterion, criterion_group, criterion_main};
use flowc::compile::{Options, compile};
use flowc::registry::Registry;
use flowc::runtime::{Event, Instance};
use flowc::span::SourceFile;

const EXPENSE: &str = include_str!("../examples/expense-reimbursement.yaml");

/// A publisher thread that keeps swapping two versions in until dropped.
struct Publisher {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<usize>>,
}

impl Publisher {
    fn start(reg: Arc<Registry>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let a = EXPENSE.replace("name: Expense", "name: A Expense");
        let handle = std::thread::spawn(move || {
            // two contents in turn, so that every publish compiles and swaps
            let mut n = 0;
            let mut flip = 0;
            let sources = [a.as_bytes().to_vec(), EXPENSE.as_bytes().to_vec()];
            while !s.load(Ordering::Relaxed) {
                flip ^= 1;
                reg.publish("x.yaml", &sources[flip]).unwrap();
                n += 1;
            }
            n
        });
        Self {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let n = h.join().unwrap();
            eprintln!("(concurrent publisher swapped {n} versions)");
        }
    }
}

/// A bare `ArcSwap` with a thread storing into it, as the baseline under contention.
struct Storer {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Storer {
    fn start(
        cell: Arc<ArcSwap<flowc::compile::CompiledFlow>>,
        values: Vec<Arc<flowc::compile::CompiledFlow>>,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let mut i = 0;
            while !s.load(Ordering::Relaxed) {
                i = (i + 1) % values.len();
                cell.store(Arc::clone(&values[i]));
                // about the rate a real publish reaches (a compile per swap)
                std::thread::sleep(std::time::Duration::from_micros(100));
            }
        });
        Self {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for Storer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().unwrap();
        }
    }
}

fn registry_reads(c: &mut Criterion) {
    let reg = Arc::new(Registry::default());
    reg.publish("expense.yaml", EXPENSE.as_bytes()).unwrap();
    // a few other flows, so that the lookup is in a real map
    for i in 0..20 {
        let other = EXPENSE.replace("id: expense-reimbursement", &format!("id: other-flow-{i}"));
        reg.publish("other.yaml", other.as_bytes()).unwrap();
    }
    let handle = reg.handle("expense-reimbursement").unwrap();
    let flow = reg.active("expense-reimbursement").unwrap();
    let bare = Arc::new(ArcSwap::new(Arc::clone(&flow)));
    let mut g = c.benchmark_group("registry");
    g.bench_function("baseline ArcSwap::load_full", |b| {
        b.iter(|| black_box(bare.load_full()))
    });
    g.bench_function("active via handle", |b| {
        b.iter(|| black_box(handle.active()))
    });
    g.bench_function("active by flow id", |b| {
        b.iter(|| black_box(reg.active(black_box("expense-reimbursement"))))
    });
    {
        let other = compile(
            &SourceFile::new(
                "b.yaml",
                EXPENSE.replace("name: Expense", "name: B Expense"),
            ),
            &Options::default(),
        )
        .unwrap();
        let _storer = Storer::start(Arc::clone(&bare), vec![Arc::clone(&flow), Arc::new(other)]);
        g.bench_function("baseline ArcSwap::load_full, concurrent store", |b| {
            b.iter(|| black_box(bare.load_full()))
        });
    }
    {
        let _publisher = Publisher::start(Arc::clone(&reg));
        g.bench_function("active via handle, concurrent publish", |b| {
            b.iter(|| black_box(handle.active()))
        });
        g.bench_function("active by flow id, concurrent publish", |b| {
            b.iter(|| black_box(reg.active(black_box("expense-reimbursement"))))
        });
    }
    g.finish();
}

fn approve(step: &str, role: &str) -> Event {
    Event::approve_as(step, "u", role)
}

/// The expense flow written by hand for one context (amount 20,000, sales): the
/// conditions natively, the same effects as strings; the floor a generic engine competes
/// with.
fn hand_written(
    amount: f64,
    dept: &str,
    urgent: bool,
    effects: &mut Vec<(&'static str, String)>,
) -> bool {
    effects.clear();
    effects.push(("create-task", "manager-approve".to_owned()));
    effects.push(("start-timer", "manager-approve".to_owned()));
    // manager approves
    if amount >= 10000.0 {
        effects.push(("call-service", "finance-validator".to_owned()));
        // service ok
    }
    let next = if amount > 50000.0 {
        "risk-review"
    } else if dept == "legal" || dept == "compliance" {
        "legal-review"
    } else {
        "cfo-approve"
    };
    if next == "cfo-approve" && (amount >= 5000.0 || urgent) {
        effects.push(("create-task", "cfo-approve".to_owned()));
        // cfo approves
    }
    effects.push(("notify", "applicant".to_owned()));
    effects.push(("complete", "approved".to_owned()));
    effects.len() == 6
}

fn full_run(c: &mut Criterion) {
    let flow = Arc::new(compile(&SourceFile::new("e.yaml", EXPENSE), &Options::default()).unwrap());
    let ctx = serde_json::json!({
        "amount": 20000.0, "currency": "CNY", "dept": "sales", "level": 2,
        "applicant": {"id": "zhang.san"}, "tags": ["travel"]
    });
    let events = [
        approve("manager-approve", "manager"),
        // the manager's task is 1, its timer 2, the finance call 3
        Event::service_ok(flowc::runtime::CallId(3)),
        approve("cfo-approve", "cfo"),
    ];
    // sanity: the run ends approved
    let (mut inst, _) = Instance::start(Arc::clone(&flow), &ctx, 0).unwrap();
    for (t, e) in events.iter().enumerate() {
        inst.apply(e, t as u64 + 1).unwrap();
    }
    assert_eq!(inst.status().label(), "approved");
    let mut g = c.benchmark_group("full run (expense, start to approved)");
    g.bench_function("baseline hand-written state machine", |b| {
        let mut effects = Vec::with_capacity(8);
        b.iter(|| {
            black_box(hand_written(
                black_box(20000.0),
                black_box("sales"),
                false,
                &mut effects,
            ))
        })
    });
    g.bench_function("context::bind only", |b| {
        b.iter(|| black_box(flowc::runtime::context::bind(&flow, black_box(&ctx)).unwrap()))
    });
    g.bench_function("Instance::start only", |b| {
        b.iter(|| black_box(Instance::start(Arc::clone(&flow), black_box(&ctx), 0).unwrap()))
    });
    g.bench_function("Instance::start + 3 events", |b| {
        b.iter(|| {
            let (mut inst, fx) = Instance::start(Arc::clone(&flow), black_box(&ctx), 0).unwrap();
            black_box(fx);
            for (t, e) in events.iter().enumerate() {
                black_box(inst.apply(e, t as u64 + 1).unwrap());
            }
            inst
        })
    });
    // the same run delivered with message ids (each checked against the log first)
    g.bench_function("Instance::start + 3 events with delivery ids", |b| {
        let ids = ["m1", "m2", "m3"];
        b.iter(|| {
            let (mut inst, fx) = Instance::start(Arc::clone(&flow), black_box(&ctx), 0).unwrap();
            black_box(fx);
            for (t, e) in events.iter().enumerate() {
                black_box(inst.apply_once(ids[t], e, t as u64 + 1).unwrap());
            }
            inst
        })
    });
    // what a restart costs: restore replays the 3 logged events and compares
    let saved = {
        let (mut inst, _) = Instance::start(Arc::clone(&flow), &ctx, 0).unwrap();
        for (t, e) in events.iter().take(2).enumerate() {
            inst.apply(e, t as u64 + 1).unwrap();
        }
        inst.state().clone()
    };
    g.bench_function(
        "Instance::restore of a 2-event state (replay + compare)",
        |b| {
            b.iter(|| {
                black_box(Instance::restore(Arc::clone(&flow), black_box(saved.clone())).unwrap())
            })
        },
    );
    g.bench_function("Instance::start + auto_answer", |b| {
        b.iter(|| {
            let (mut inst, _) = Instance::start(Arc::clone(&flow), black_box(&ctx), 0).unwrap();
            inst.auto_answer(flowc::runtime::Auto::Approve, 0, 100)
                .unwrap();
            inst
        })
    });
    g.finish();
}

/// A 100-step flow: approvals with skip conditions, a decision every tenth step.
fn hundred_steps(tag: &str) -> String {
    let mut s = format!(
        "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: big\nname: big {tag}\ncontext:\n  amount: double\n  dept: string\n  level: int\nsteps:\n"
    );
    for i in 0..100 {
        if i == 99 {
            s.push_str("  - id: s99\n    type: end\n    outcome: approved\n");
        } else if i % 10 == 9 {
            s.push_str(&format!(
                "  - id: s{i}\n    type: decision\n    rules:\n      - when: amount > {i}000.0 && level >= 3\n        goto: s{}\n      - when: 'dept in [\"legal\", \"hr\"]'\n        goto: s{}\n    default: s{}\n",
                i + 1,
                i + 1,
                i + 1
            ));
        } else {
            s.push_str(&format!(
                "  - id: s{i}\n    type: approval\n    assignees: {{ role: r{i} }}\n    mode: any\n    skipCondition: amount < {i}00.0 || dept == \"d{i}\"\n"
            ));
        }
    }
    s
}

fn publish(c: &mut Criterion) {
    let sources = [hundred_steps("a"), hundred_steps("b")];
    let reg = Registry::default();
    let mut g = c.benchmark_group("publish 100-step flow");
    g.bench_function("baseline compile only", |b| {
        b.iter(|| {
            black_box(
                compile(
                    &SourceFile::new("big.yaml", sources[0].as_str()),
                    &Options::default(),
                )
                .unwrap(),
            )
        })
    });
    let mut flip = 0;
    g.bench_function("Registry::publish (compile + swap)", |b| {
        b.iter(|| {
            flip ^= 1;
            black_box(reg.publish("big.yaml", sources[flip].as_bytes()).unwrap())
        })
    });
    g.finish();
}

criterion_group!(benches, registry_reads, full_run, publish);
criterion_main!(benches);
