//! Property test: random event sequences against every example flow (contexts from the
//! scenario files). Nothing panics, a refused event changes nothing, an ended instance
//! stays ended and takes no events, the trace only grows, and the state always
//! round-trips through serde and `restore`.
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

use std::path::PathBuf;
use std::sync::Arc;

use flowc::compile::{AssigneeSlot, CompiledFlow, Options, compile};
use flowc::load::{LoadLimits, yaml};
use std::collections::BTreeMap;

use flowc::registry::Registry;
use flowc::runtime::{
    Applied, Assignee, Auto, CallId, Effect, Event, Instance, Outstanding, Status, TaskId, TimerId,
};
use flowc::span::SourceFile;
use flowc::store::DirStore;
use proptest::prelude::*;

struct Case {
    source: Arc<SourceFile>,
    /// A version store holding this flow (a directory, as a host's would be).
    store: PathBuf,
    flow: Arc<CompiledFlow>,
    contexts: Vec<serde_json::Value>,
    steps: Vec<Arc<str>>,
}

fn cases() -> Vec<Case> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let Some(stem) = name.strip_suffix(".test.yaml") else {
            continue;
        };
        let text = std::fs::read_to_string(&path).unwrap();
        let node = yaml::parse(&SourceFile::new(&name, text), &LoadLimits::default()).unwrap();
        let json = node.to_json();
        let contexts: Vec<serde_json::Value> = json["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s.get("expect").and_then(|e| e.get("startError")).is_none())
            .map(|s| s["context"].clone())
            .collect();
        let flow_text = std::fs::read_to_string(root.join(format!("{stem}.yaml"))).unwrap();
        let store = std::env::temp_dir().join(format!(
            "flowc-props-{}-{stem}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&store);
        let registry = Registry::with_store(
            Options::default(),
            Arc::new(DirStore::open(&store).unwrap()),
        );
        registry.publish(stem, flow_text.as_bytes()).unwrap();
        let source = SourceFile::new(stem, flow_text);
        let id = compile(&source, &Options::default())
            .unwrap()
            .id()
            .to_owned();
        let flow = registry.active(&id).unwrap();
        let steps = (0..flow.nodes().len())
            .map(|i| Arc::from(flow.step(i).unwrap().id.value.as_str()))
            .collect();
        out.push(Case {
            source,
            store,
            flow,
            contexts,
            steps,
        });
    }
    assert_eq!(out.len(), 6);
    out
}

/// What a host holds after carrying out every effect: open tasks, running timers (with
/// their due time) and outstanding calls. Timers and calls are done when their answer
/// is delivered; tasks when a `close-task` says so.
#[derive(Default, Clone, Debug)]
struct Ledger {
    tasks: BTreeMap<u32, (Arc<str>, Assignee)>,
    timers: BTreeMap<u32, u64>,
    calls: BTreeMap<u32, Arc<str>>,
    /// Every id ever issued (for stale answers).
    all_timers: Vec<(u32, u64)>,
    all_calls: Vec<u32>,
    all_tasks: Vec<(u32, Arc<str>, Assignee)>,
}

impl Ledger {
    fn carry_out(&mut self, effects: &[Effect]) {
        for fx in effects {
            match fx {
                Effect::CreateTask { step, tasks } => {
                    for t in tasks {
                        assert!(
                            self.tasks
                                .insert(t.task.0, (step.clone(), t.assignee.clone()))
                                .is_none()
                        );
                        self.all_tasks
                            .push((t.task.0, step.clone(), t.assignee.clone()));
                    }
                }
                Effect::CloseTask { task, .. } => {
                    assert!(
                        self.tasks.remove(&task.0).is_some(),
                        "close of unknown {task}"
                    );
                }
                Effect::StartTimer { timer, due_at, .. } => {
                    assert!(self.timers.insert(timer.0, *due_at).is_none());
                    self.all_timers.push((timer.0, *due_at));
                }
                Effect::CancelTimer { timer, .. } => {
                    assert!(
                        self.timers.remove(&timer.0).is_some(),
                        "cancel of unknown {timer}"
                    );
                }
                Effect::CallService { call, step, .. } => {
                    assert!(self.calls.insert(call.0, step.clone()).is_none());
                    self.all_calls.push(call.0);
                }
                Effect::CancelService { call, .. } => {
                    assert!(
                        self.calls.remove(&call.0).is_some(),
                        "cancel of unknown {call}"
                    );
                }
                _ => {}
            }
        }
    }

    /// The host delivered this answer: a timer or call is then done on its side.
    fn delivered(&mut self, e: &Event) {
        match e {
            Event::Timeout { timer } => {
                self.timers.remove(&timer.0);
            }
            Event::ServiceOk { call } | Event::ServiceError { call, .. } => {
                self.calls.remove(&call.0);
            }
            _ => {}
        }
    }

    fn matches(&self, o: &Outstanding) -> bool {
        o.tasks.iter().map(|t| t.0).eq(self.tasks.keys().copied())
            && o.timers.iter().map(|t| t.0).eq(self.timers.keys().copied())
            && o.calls.iter().map(|t| t.0).eq(self.calls.keys().copied())
    }
}

fn actor(a: &Assignee) -> (Arc<str>, Option<Arc<str>>) {
    match a {
        Assignee::User(u) => (u.clone(), None),
        Assignee::Role(r) => ("member".into(), Some(r.clone())),
        _ => ("?".into(), None),
    }
}

/// One random event: mostly answers built from the ledger (live, stale, early), plus
/// redeliveries, wrong actors, add-signers and cancels.
fn event(
    case: &Case,
    ledger: &Ledger,
    (kind, pick, who, early): (u8, usize, u8, bool),
    now: u64,
) -> (Event, u64) {
    let users = ["u1", "legal-1", "legal-2", "alice", "bob", "zhao.liu", "m"];
    let next = now + 1;
    match kind % 12 {
        0..=2 if !ledger.tasks.is_empty() => {
            let (task, (step, a)) = ledger.tasks.iter().nth(pick % ledger.tasks.len()).unwrap();
            let (user, role) = actor(a);
            let task = if who % 2 == 0 {
                Some(TaskId(*task))
            } else {
                None
            };
            let e = if kind % 12 == 2 {
                Event::Reject {
                    step: step.clone(),
                    user,
                    role,
                    task,
                    comment: None,
                }
            } else {
                Event::Approve {
                    step: step.clone(),
                    user,
                    role,
                    task,
                    comment: None,
                }
            };
            (e, next)
        }
        3 if !ledger.all_tasks.is_empty() => {
            // an answer to any task ever issued: often stale
            let (task, step, a) = &ledger.all_tasks[pick % ledger.all_tasks.len()];
            let (user, role) = actor(a);
            let task = if who % 2 == 0 {
                Some(TaskId(*task))
            } else {
                None
            };
            (
                Event::Approve {
                    step: step.clone(),
                    user,
                    role,
                    task,
                    comment: None,
                },
                next,
            )
        }
        4 | 5 if !ledger.all_timers.is_empty() => {
            let (timer, due) = ledger.all_timers[pick % ledger.all_timers.len()];
            let at = if early {
                now.max(due.saturating_sub(1))
            } else {
                now.max(due)
            };
            (
                Event::Timeout {
                    timer: TimerId(timer),
                },
                at,
            )
        }
        6 | 7 if !ledger.all_calls.is_empty() => {
            let call = CallId(ledger.all_calls[pick % ledger.all_calls.len()]);
            if kind % 12 == 6 {
                (Event::ServiceOk { call }, next)
            } else {
                (
                    Event::ServiceError {
                        call,
                        error: "e".into(),
                    },
                    next,
                )
            }
        }
        8 if !ledger.tasks.is_empty() => {
            let (task, (step, a)) = ledger.tasks.iter().nth(pick % ledger.tasks.len()).unwrap();
            let (user, role) = actor(a);
            let signer = users[who as usize % users.len()].into();
            (
                Event::AddSigner {
                    step: step.clone(),
                    user,
                    role,
                    task: Some(TaskId(*task)),
                    signer,
                },
                next,
            )
        }
        9 => {
            let step = case.steps[pick % case.steps.len()].clone();
            let user = users[who as usize % users.len()].into();
            (
                Event::Approve {
                    step,
                    user,
                    role: None,
                    task: None,
                    comment: None,
                },
                next,
            )
        }
        10 if pick % 5 == 0 => (Event::Cancel { reason: None }, next),
        _ => {
            let step = case.steps[pick % case.steps.len()].clone();
            (
                Event::Reject {
                    step,
                    user: "m".into(),
                    role: Some("manager".into()),
                    task: None,
                    comment: None,
                },
                next,
            )
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Random events (live, stale, early, duplicate and late answers built from earlier
    /// effects' ids) on every example: a refused event changes nothing; after every
    /// accepted one the host's ledger equals what the instance says is outstanding; at
    /// the end nothing is open; and an instance saved and restored after every event
    /// (onto a freshly compiled copy of the flow, as in a new process) continues with
    /// exactly the same effects and states; at one random point the instance is also
    /// saved and restored in a fresh registry rebuilt from the version store (as after a
    /// restart), and that copy must go on exactly like the original.
    #[test]
    fn random_events_keep_every_invariant(
        which in 0usize..6,
        ctx in 0usize..8,
        events in proptest::collection::vec((any::<u8>(), 0usize..64, any::<u8>(), any::<bool>()), 0..40),
        redeliver in proptest::collection::vec(0usize..40, 0..6),
        restart_at in 0usize..40,
    ) {
        thread_local! { static CASES: Vec<Case> = cases(); }
        CASES.with(|cases| {
            let case = &cases[which % cases.len()];
            let context = &case.contexts[ctx % case.contexts.len()];
            let (mut inst, effects) = Instance::start(Arc::clone(&case.flow), context, 0).unwrap();
            let mut ledger = Ledger::default();
            ledger.carry_out(&effects);
            prop_assert!(ledger.matches(&inst.outstanding()));
            let mut delivered: Vec<(String, Event, u64)> = Vec::new();
            let mut restarted: Option<Instance> = None;
            for (n, e) in events.iter().enumerate() {
                if n == restart_at {
                    let saved = serde_json::to_string(inst.state()).unwrap();
                    let fresh = Registry::with_store(
                        Options::default(),
                        Arc::new(DirStore::open(&case.store).unwrap()),
                    );
                    let back = fresh.restore(serde_json::from_str(&saved).unwrap()).unwrap();
                    prop_assert_eq!(back.state(), inst.state());
                    restarted = Some(back);
                }
                // sometimes redeliver an earlier accepted message (at-least-once queues)
                let (id, event, at) = match redeliver.iter().find(|r| **r == n) {
                    Some(_) if !delivered.is_empty() => {
                        let (id, ev, _) = delivered[e.1 % delivered.len()].clone();
                        (id, ev, inst.state().now() + 1)
                    }
                    _ => {
                        let (ev, at) = event(case, &ledger, *e, inst.state().now());
                        (format!("m{n}"), ev, at)
                    }
                };
                let before = inst.state().clone();
                let was_running = *inst.status() == Status::Running;
                // the same event on an instance restored from the saved state
                let saved = serde_json::to_string(inst.state()).unwrap();
                let fresh = Arc::new(compile(&case.source, &Options::default()).unwrap());
                let mut twin = Instance::restore(fresh, serde_json::from_str(&saved).unwrap()).unwrap();
                let r = inst.apply_once(&id, &event, at);
                let r2 = twin.apply_once(&id, &event, at);
                prop_assert_eq!(&r, &r2);
                prop_assert_eq!(twin.state(), inst.state());
                if let Some(back) = restarted.as_mut() {
                    prop_assert_eq!(&back.apply_once(&id, &event, at), &r);
                    prop_assert_eq!(back.state(), inst.state());
                }
                match r {
                    Ok(Applied::Effects(effects)) => {
                        prop_assert!(was_running, "an ended instance took {event:?}");
                        prop_assert!(inst.trace().len() >= before.trace.len());
                        for (a, b) in before.trace.iter().zip(inst.trace()) {
                            if a.ended_at.is_some() {
                                prop_assert_eq!(a, b);
                            }
                        }
                        ledger.delivered(&event);
                        ledger.carry_out(&effects);
                        delivered.push((id, event, at));
                    }
                    Ok(Applied::Duplicate { .. }) => prop_assert_eq!(inst.state(), &before),
                    Ok(_) => unreachable!(),
                    Err(_) => prop_assert_eq!(inst.state(), &before),
                }
                prop_assert!(ledger.matches(&inst.outstanding()), "ledger {:?} vs instance {:?}", ledger, inst.outstanding());
                // nothing pending once ended; something pending while running
                prop_assert_eq!(inst.pending().is_empty(), *inst.status() != Status::Running);
            }
            if *inst.status() != Status::Running {
                prop_assert!(ledger.tasks.is_empty() && ledger.timers.is_empty() && ledger.calls.is_empty());
            }
            Ok(())
        })?;
    }
}

/// Running every example to its end (all approve, then all reject) leaves nothing open,
/// and a host following the effects holds exactly what the instance says at each step.
#[test]
fn auto_runs_leave_nothing_open() {
    for case in cases() {
        for ctx in &case.contexts {
            for auto in [Auto::Approve, Auto::Reject] {
                let (mut inst, effects) = Instance::start(Arc::clone(&case.flow), ctx, 0).unwrap();
                let mut ledger = Ledger::default();
                ledger.carry_out(&effects);
                for (e, fx) in inst.auto_answer(auto, 0, 1000).unwrap() {
                    ledger.delivered(&e);
                    ledger.carry_out(&fx);
                }
                assert!(ledger.matches(&inst.outstanding()));
                if *inst.status() != Status::Running {
                    assert!(
                        ledger.tasks.is_empty()
                            && ledger.timers.is_empty()
                            && ledger.calls.is_empty()
                    );
                }
            }
        }
    }
}

/// Assignee expressions run on the direct path where they can: it must agree with the
/// Rhai program on every example and scenario context.
#[test]
fn assignee_expressions_agree_on_both_paths() {
    let mut compared = 0;
    for case in cases() {
        for ctx in &case.contexts {
            let (_, mut bindings) = flowc::runtime::context::bind(&case.flow, ctx).unwrap();
            for id in &case.steps {
                let index = case.flow.step_index(id).unwrap();
                for key in [AssigneeSlot::Step(index), AssigneeSlot::Escalation(index)] {
                    let Some(e) = case.flow.assignee_expression(key) else {
                        continue;
                    };
                    let sb = case.flow.sandbox();
                    let direct = e.eval(sb, &mut bindings).map(|v| v.to_json());
                    let rhai = e.eval_sandboxed(sb, &mut bindings).map(|v| v.to_json());
                    match (&direct, &rhai) {
                        (Ok(a), Ok(b)) => assert_eq!(a, b, "{key:?}"),
                        (Err(_), Err(_)) => {}
                        _ => panic!("{key:?}: direct {direct:?} vs rhai {rhai:?}"),
                    }
                    compared += 1;
                }
            }
        }
    }
    assert!(compared >= 20, "only {compared} comparisons");
}
