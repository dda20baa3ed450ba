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

use flowc::compile::{CompiledFlow, Options, compile};
use flowc::load::{LoadLimits, yaml};
use flowc::runtime::{Event, Instance, InstanceState, Status};
use flowc::span::SourceFile;
use proptest::prelude::*;

struct Case {
    flow: Arc<CompiledFlow>,
    contexts: Vec<serde_json::Value>,
    steps: Vec<String>,
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
        let flow =
            Arc::new(compile(&SourceFile::new(stem, flow_text), &Options::default()).unwrap());
        let steps = (0..flow.nodes().len())
            .map(|i| flow.step(i).unwrap().id.value.clone())
            .collect();
        out.push(Case {
            flow,
            contexts,
            steps,
        });
    }
    assert_eq!(out.len(), 6);
    out
}

/// A random event over a small vocabulary: step index, user, role and kind.
fn event(steps: &[String], (kind, step, who, role): (u8, usize, u8, u8)) -> Event {
    let step = steps[step % steps.len()].clone();
    let users = [
        "u1", "legal-1", "legal-2", "alice", "bob", "cpo", "zhao.liu", "m",
    ];
    let roles = [
        None,
        Some("manager"),
        Some("cfo"),
        Some("legal"),
        Some("it-helpdesk"),
        Some("contract-owner"),
        Some("finance-controller"),
        Some("security-officer"),
    ];
    let user = users[who as usize % users.len()].to_owned();
    let role = roles[role as usize % roles.len()].map(str::to_owned);
    match kind % 8 {
        0 | 1 => Event::Approve { step, user, role },
        2 => Event::Reject {
            step,
            user,
            role,
            comment: None,
        },
        3 => Event::AddSigner {
            step,
            user,
            role,
            signer: "extra".into(),
        },
        4 => Event::ServiceOk { step },
        5 => Event::ServiceError {
            step,
            error: "e".into(),
        },
        6 => Event::Timeout { step },
        _ => Event::Cancel { reason: None },
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_events_keep_every_invariant(
        which in 0usize..6,
        ctx in 0usize..8,
        events in proptest::collection::vec((any::<u8>(), 0usize..32, any::<u8>(), any::<u8>()), 0..40),
    ) {
        thread_local! { static CASES: Vec<Case> = cases(); }
        CASES.with(|cases| {
            let case = &cases[which % cases.len()];
            let context = &case.contexts[ctx % case.contexts.len()];
            let (mut inst, _) = Instance::start(Arc::clone(&case.flow), context, 0).unwrap();
            for (t, e) in events.iter().enumerate() {
                // a few events answer what is actually pending, so that runs get deep
                let e = if e.0 % 3 == 0 && let Some(p) = inst.pending().into_iter().next() {
                    match (p.mode, p.assignees.first()) {
                        (None, _) => Event::ServiceOk { step: p.step },
                        (Some(_), Some(flowc::runtime::Assignee::User(u))) => Event::Approve { step: p.step, user: u.clone(), role: None },
                        (Some(_), Some(flowc::runtime::Assignee::Role(r))) => Event::Approve { step: p.step, user: "x".into(), role: Some(r.clone()) },
                        (Some(_), None) => event(&case.steps, *e),
                    }
                } else {
                    event(&case.steps, *e)
                };
                let before = inst.state().clone();
                let was_running = *inst.status() == Status::Running;
                match inst.apply(&e, t as u64 + 1) {
                    Ok(_) => {
                        prop_assert!(was_running, "an ended instance took {e:?}");
                        prop_assert!(inst.trace().len() >= before.trace.len());
                        // visits that had ended stay as they were
                        for (a, b) in before.trace.iter().zip(inst.trace()) {
                            if a.ended_at.is_some() {
                                prop_assert_eq!(a, b);
                            }
                        }
                    }
                    Err(_) => prop_assert_eq!(inst.state(), &before),
                }
                // nothing pending once ended; something pending while running
                prop_assert_eq!(inst.pending().is_empty(), *inst.status() != Status::Running);
                let text = serde_json::to_string(inst.state()).unwrap();
                let state: InstanceState = serde_json::from_str(&text).unwrap();
                let back = Instance::restore(Arc::clone(&case.flow), state).unwrap();
                prop_assert_eq!(back.state(), inst.state());
            }
            Ok(())
        })?;
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
                for key in [id.clone(), format!("{id}#escalate")] {
                    let Some(e) = case.flow.assignee_expression(&key) else {
                        continue;
                    };
                    let sb = case.flow.sandbox();
                    let direct = e.eval(sb, &mut bindings).map(|v| v.to_json());
                    let rhai = e.eval_sandboxed(sb, &mut bindings).map(|v| v.to_json());
                    match (&direct, &rhai) {
                        (Ok(a), Ok(b)) => assert_eq!(a, b, "{key}"),
                        (Err(_), Err(_)) => {}
                        _ => panic!("{key}: direct {direct:?} vs rhai {rhai:?}"),
                    }
                    compared += 1;
                }
            }
        }
    }
    assert!(compared >= 20, "only {compared} comparisons");
}
