//! The registry: publish, rollback, history, retention, pinning, canary; the concurrency
//! test (instances stay on their version while versions change under them) and the
//! restore test.
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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use flowc::compile::{Options, VersionId};
use flowc::model::Outcome;
use flowc::registry::{Action, Registry, RegistryError};
use flowc::runtime::{Effect, Event, Gone, Instance, InstanceState, Status, TaskId};
use serde_json::json;

/// Version `n` of a two-step flow: a manager approval, then (only in odd versions) a
/// finance approval; each version's content differs by its name.
fn source(n: usize) -> Vec<u8> {
    let finance = if n % 2 == 1 {
        "  - id: finance\n    type: approval\n    assignees: { role: finance }\n    skipCondition: amount < 100.0\n"
    } else {
        ""
    };
    format!(
        "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: claim\nname: version {n}\ncontext: {{ amount: double }}\nsteps:\n  - id: manager\n    type: approval\n    assignees: {{ role: manager }}\n{finance}"
    )
    .into_bytes()
}

/// An approval by a member of `role` (each step here is assigned to a role).
fn by_role(step: &str, role: &str) -> Event {
    Event::approve_as(step, "u", role)
}

const BROKEN: &[u8] = b"apiVersion: flowc/v1\nkind: ApprovalFlow\nid: claim\nsteps:\n  - id: manager\n    type: approval\n    assignees: { role: manager }\n    next: nowhere\n";

fn actions(reg: &Registry) -> Vec<(Action, Option<u64>)> {
    reg.history("claim")
        .unwrap()
        .into_iter()
        .map(|h| (h.action, h.version.map(|v| v.revision)))
        .collect()
}

#[test]
fn publish_rollback_history() {
    let reg = Registry::default();
    assert!(reg.active("claim").is_none());
    let v1 = reg.publish("claim.yaml", &source(1)).unwrap();
    assert_eq!(
        (v1.flow.as_str(), v1.revision, v1.hash.len()),
        ("claim", 1, 16)
    );
    // the same content again: nothing changes
    assert_eq!(reg.publish("claim.yaml", &source(1)).unwrap(), v1);
    let v2 = reg.publish("claim.yaml", &source(2)).unwrap();
    assert_eq!(v2.revision, 2);
    assert_ne!(v1.hash, v2.hash);
    assert_eq!(reg.active("claim").unwrap().version(), &v2);
    // a publish that does not compile changes nothing and returns its diagnostics
    let d = reg.publish("claim.yaml", BROKEN).unwrap_err();
    assert_eq!(
        d.iter().map(|x| x.code()).collect::<Vec<_>>(),
        ["flowc::graph::unknown-step"]
    );
    assert_eq!(reg.active("claim").unwrap().version(), &v2);
    reg.rollback(&v1).unwrap();
    assert_eq!(reg.active("claim").unwrap().version(), &v1);
    assert_eq!(reg.get(&v2).unwrap().version(), &v2);
    assert_eq!(
        actions(&reg),
        [
            (Action::Published, Some(1)),
            (Action::Published, Some(2)),
            (Action::RolledBack, Some(1))
        ]
    );
    let bogus = VersionId {
        revision: 9,
        ..v1.clone()
    };
    assert!(matches!(
        reg.rollback(&bogus),
        Err(RegistryError::UnknownVersion { .. })
    ));
    assert!(matches!(
        reg.history("clam"),
        Err(RegistryError::UnknownFlow { help, .. }) if help == "did you mean `claim`?"
    ));
}

#[test]
fn retention_keeps_what_instances_use() {
    let reg = Registry::with_retention(Options::default(), 2);
    let v1 = reg.publish("claim.yaml", &source(1)).unwrap();
    // a live instance on v1 and a pin on v2 keep them however many versions follow
    let (live, _) = reg.start("claim", "k", json!({"amount": 5.0}), 0).unwrap();
    let v2 = reg.publish("claim.yaml", &source(2)).unwrap();
    reg.pin(&v2).unwrap();
    for n in 3..=8 {
        reg.publish("claim.yaml", &source(n)).unwrap();
    }
    let kept: Vec<u64> = reg.versions("claim").iter().map(|v| v.revision).collect();
    assert_eq!(kept, [1, 2, 7, 8]);
    drop(live);
    reg.unpin(&v2).unwrap();
    reg.publish("claim.yaml", &source(9)).unwrap();
    let kept: Vec<u64> = reg.versions("claim").iter().map(|v| v.revision).collect();
    assert_eq!(kept, [8, 9]);
    assert!(reg.get(&v1).is_none());
}

#[test]
fn retire_refuses_new_starts_only() {
    let reg = Registry::default();
    reg.publish("claim.yaml", &source(1)).unwrap();
    let (mut inst, _) = reg
        .start("claim", "k", json!({"amount": 500.0}), 0)
        .unwrap();
    reg.retire("claim").unwrap();
    assert!(reg.active("claim").is_none());
    assert!(matches!(
        reg.start("claim", "k", json!({"amount": 5.0}), 0),
        Err(RegistryError::Retired { .. })
    ));
    // the running instance finishes on its version
    inst.apply(&by_role("manager", "manager"), 1).unwrap();
    assert_eq!(&*inst.pending()[0].step, "finance");
    assert_eq!(
        actions(&reg),
        [(Action::Published, Some(1)), (Action::Retired, None)]
    );
}

#[test]
fn canary_by_share_is_stable_per_key() {
    let reg = Registry::default();
    let v1 = reg.publish("claim.yaml", &source(1)).unwrap();
    let c = reg
        .start_canary("claim.yaml", &source(2), 25.0, None)
        .unwrap();
    let ctx = json!({"amount": 5.0});
    let mut on_canary = 0;
    for k in 0..4000 {
        let key = format!("applicant-{k}");
        let a = reg.version_for("claim", &key, &ctx).unwrap();
        let b = reg.version_for("claim", &key, &ctx).unwrap();
        assert_eq!(a.version(), b.version(), "one applicant, one side");
        if a.version() == &c {
            on_canary += 1;
        } else {
            assert_eq!(a.version(), &v1);
        }
    }
    assert!(
        (800..1200).contains(&on_canary),
        "{on_canary} of 4000 at 25 %"
    );
    assert!(matches!(
        reg.start_canary("claim.yaml", &source(3), 10.0, None),
        Err(RegistryError::CanaryState { .. })
    ));
    reg.promote("claim").unwrap();
    assert_eq!(reg.active("claim").unwrap().version(), &c);
    assert!(reg.canary("claim").is_none());
    assert!(matches!(
        reg.start_canary("claim.yaml", &source(3), 101.0, None),
        Err(RegistryError::CanaryShare { .. })
    ));
    assert_eq!(
        actions(&reg),
        [
            (Action::Published, Some(1)),
            (Action::CanaryStarted, Some(2)),
            (Action::Promoted, Some(2))
        ]
    );
}

#[test]
fn canary_by_selector_then_abort() {
    let reg = Registry::default();
    let v1 = reg.publish("claim.yaml", &source(1)).unwrap();
    let c = reg
        .start_canary("claim.yaml", &source(2), 0.0, Some("amount > 1000.0"))
        .unwrap();
    let big = reg
        .version_for("claim", "a", &json!({"amount": 5000.0}))
        .unwrap();
    let small = reg
        .version_for("claim", "a", &json!({"amount": 5.0}))
        .unwrap();
    assert_eq!((big.version(), small.version()), (&c, &v1));
    // instances started during the canary keep their version after the abort
    let (mut inst, _) = Instance::start(big, json!({"amount": 5000.0}), 0).unwrap();
    reg.abort_canary("claim").unwrap();
    assert_eq!(
        reg.version_for("claim", "a", &json!({"amount": 5000.0}))
            .unwrap()
            .version(),
        &v1
    );
    let fx = inst.apply(&by_role("manager", "manager"), 1).unwrap();
    // version 2 has no finance step
    assert_eq!(
        fx,
        vec![
            Effect::CloseTask {
                task: TaskId(1),
                step: "manager".into(),
                reason: Gone::Approved
            },
            Effect::Complete {
                outcome: Outcome::Approved
            }
        ]
    );
    // a selector that does not type-check is refused with its diagnostic
    match reg.start_canary("claim.yaml", &source(3), 0.0, Some("amount > \"x\"")) {
        Err(RegistryError::Compile(d)) => assert_eq!(d[0].code(), "flowc::expr::type-mismatch"),
        other => panic!("{other:?}"),
    }
    assert!(reg.canary("claim").is_none());
}

/// Drives one instance to the end; returns its version.
fn drive(mut inst: Instance, t: &mut u64) -> VersionId {
    let version = inst.flow().version().clone();
    while *inst.status() == Status::Running {
        let p = inst.pending().remove(0);
        *t += 1;
        inst.apply(&by_role(&p.step, &p.step), *t).unwrap();
        assert_eq!(
            inst.flow().version(),
            &version,
            "an instance changed version"
        );
    }
    assert_eq!(inst.status().label(), "approved");
    version
}

#[test]
fn concurrent_instances_stay_on_their_versions() {
    let reg = Arc::new(Registry::with_retention(Options::default(), 3));
    reg.publish("claim.yaml", &source(0)).unwrap();
    let handle = reg.handle("claim").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let completed = Arc::new(AtomicUsize::new(0));
    // the writer and both drivers start together
    let start = Arc::new(std::sync::Barrier::new(3));
    let writer = {
        let reg = Arc::clone(&reg);
        let start = Arc::clone(&start);
        std::thread::spawn(move || {
            start.wait();
            let mut published = 1;
            for round in 1..=300usize {
                reg.publish("claim.yaml", &source(round)).unwrap();
                published += 1;
                if round % 7 == 0 {
                    let versions = reg.versions("claim");
                    reg.rollback(&versions[0]).unwrap();
                }
                if round % 11 == 0 {
                    reg.start_canary("claim.yaml", &source(round + 10_000), 50.0, None)
                        .unwrap();
                    published += 1;
                    std::thread::yield_now();
                    if round % 2 == 0 {
                        reg.promote("claim").unwrap();
                    } else {
                        reg.abort_canary("claim").unwrap();
                    }
                }
                assert!(reg.publish("claim.yaml", BROKEN).is_err());
            }
            published
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let reg = Arc::clone(&reg);
            let handle = handle.clone();
            let completed = Arc::clone(&completed);
            let stop = Arc::clone(&stop);
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                start.wait();
                let mut t = 0;
                let mut n = 0usize;
                let mut versions = std::collections::BTreeSet::new();
                while n < 3000 || !stop.load(Ordering::Relaxed) {
                    let ctx = json!({"amount": 500.0});
                    // both read paths; neither may fail while versions change
                    assert!(handle.active().is_some());
                    let (inst, _) = reg.start("claim", &format!("{r}-{n}"), &ctx, t).unwrap();
                    versions.insert(drive(inst, &mut t).revision);
                    completed.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                    if n > 200_000 {
                        break;
                    }
                }
                versions
            })
        })
        .collect();
    let published = writer.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    let seen: std::collections::BTreeSet<u64> = readers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert!(completed.load(Ordering::Relaxed) >= 6000);
    // the drivers really ran while versions changed under them
    assert!(
        seen.len() > 10,
        "instances ran on only {} versions",
        seen.len()
    );
    // history: every publish and canary recorded once, revisions strictly increasing
    let history = reg.history("claim").unwrap();
    let new_versions: Vec<u64> = history
        .iter()
        .filter(|h| matches!(h.action, Action::Published | Action::CanaryStarted))
        .filter_map(|h| h.version.as_ref().map(|v| v.revision))
        .collect();
    assert_eq!(new_versions.len(), published);
    assert!(new_versions.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(
        history.iter().map(|h| h.seq).collect::<Vec<_>>(),
        (1..=history.len() as u64).collect::<Vec<_>>()
    );
    // the active version is the one the last activating entry names
    let last = history
        .iter()
        .rev()
        .find(|h| {
            matches!(
                h.action,
                Action::Published | Action::RolledBack | Action::Promoted
            )
        })
        .unwrap();
    assert_eq!(
        reg.active("claim").unwrap().version(),
        last.version.as_ref().unwrap()
    );
    // retention applies on the next write, once no instance holds the old versions
    reg.publish("claim.yaml", &source(99_999)).unwrap();
    assert_eq!(reg.versions("claim").len(), 3);
}

#[test]
fn restore_after_publish_finishes_on_the_old_version() {
    let reg = Registry::default();
    let v1 = reg.publish("claim.yaml", &source(1)).unwrap();
    let mut saved: Vec<String> = Vec::new();
    for k in 0..20 {
        let (mut inst, _) = reg
            .start("claim", &k.to_string(), json!({"amount": 500.0}), 0)
            .unwrap();
        inst.apply(&by_role("manager", "manager"), 1).unwrap();
        reg.pin(inst.flow().version()).unwrap();
        saved.push(serde_json::to_string(inst.state()).unwrap());
    }
    // v2 drops the finance step; the saved instances are all waiting at finance
    reg.publish("claim.yaml", &source(2)).unwrap();
    for n in 3..=30 {
        reg.publish("claim.yaml", &source(n)).unwrap();
    }
    for text in &saved {
        let state: InstanceState = serde_json::from_str(text).unwrap();
        assert_eq!(*state.version, v1);
        // onto the wrong version: refused
        let wrong = reg.active("claim").unwrap();
        assert!(Instance::restore(wrong, state.clone()).is_err());
        let flow = reg.get(&state.version).expect("pinned version kept");
        let mut inst = Instance::restore(flow, state).unwrap();
        let fx = inst.apply(&by_role("finance", "finance"), 2).unwrap();
        assert_eq!(
            fx,
            vec![
                Effect::CloseTask {
                    task: TaskId(2),
                    step: "finance".into(),
                    reason: Gone::Approved
                },
                Effect::Complete {
                    outcome: Outcome::Approved
                }
            ]
        );
        assert_eq!(inst.flow().version(), &v1);
        reg.unpin(&v1).unwrap();
    }
}

#[test]
fn without_a_store_revisions_are_per_process() {
    // documented: a registry without a store is not restart-safe; the caller may still
    // name revisions itself (a source with its own revisions)
    let a = Registry::default();
    let v1 = a.publish("claim.yaml", &source(1)).unwrap();
    a.publish("claim.yaml", &source(2)).unwrap();
    // the same content as v1 again: a new revision, in memory only
    assert_eq!(a.publish("claim.yaml", &source(1)).unwrap().revision, 3);
    let b = Registry::default();
    assert_eq!(b.publish("claim.yaml", &source(2)).unwrap().revision, 1);
    assert!(b.get(&v1).is_none());
    assert!(matches!(
        b.load(&v1),
        Err(RegistryError::UnknownVersion { .. })
    ));
    assert!(matches!(b.held(), Err(RegistryError::NoStore { .. })));
    let r = b.publish_revision("claim.yaml", &source(5), 40).unwrap();
    assert_eq!(r.revision, 40);
    assert_eq!(b.publish("claim.yaml", &source(6)).unwrap().revision, 41);
    assert_eq!(b.get_by_hash("claim", &r.hash).unwrap().version(), &r);
    // restore by hash: the kept version with the instance's content
    let (inst, _) = b.start("claim", "k", json!({"amount": 500.0}), 0).unwrap();
    let state = inst.state().clone();
    assert_eq!(b.restore(state).unwrap().flow().version().revision, 41);
}

#[test]
fn every_registry_error_has_its_code() {
    use miette::Diagnostic;
    let code = |e: RegistryError| e.code().unwrap().to_string();
    let reg = Registry::default();
    assert_eq!(
        code(reg.history("claim").unwrap_err()),
        "flowc::registry::unknown-flow"
    );
    let v1 = reg.publish("claim.yaml", &source(1)).unwrap();
    let gone = VersionId {
        revision: 7,
        ..v1.clone()
    };
    assert_eq!(
        code(reg.rollback(&gone).unwrap_err()),
        "flowc::registry::unknown-version"
    );
    assert_eq!(
        code(
            reg.start_canary("claim.yaml", &source(2), -1.0, None)
                .unwrap_err()
        ),
        "flowc::registry::canary-share"
    );
    assert_eq!(
        code(
            reg.start_canary("claim.yaml", BROKEN, 5.0, None)
                .unwrap_err()
        ),
        "flowc::registry::compile"
    );
    assert_eq!(
        code(reg.promote("claim").unwrap_err()),
        "flowc::registry::canary-state"
    );
    reg.retire("claim").unwrap();
    assert_eq!(
        code(
            reg.start("claim", "k", json!({"amount": 1.0}), 0)
                .unwrap_err()
        ),
        "flowc::registry::retired"
    );
    // a context error passes through with the runtime's code
    reg.rollback(&v1).unwrap();
    assert_eq!(
        code(reg.start("claim", "k", json!({}), 0).unwrap_err()),
        "flowc::runtime::missing-field"
    );
}

#[test]
fn a_source_with_another_history_may_name_other_content_under_a_kept_revision() {
    let reg = Registry::default();
    let old = reg.publish_revision("claim.yaml", &source(1), 6).unwrap();
    let later = reg.publish_revision("claim.yaml", &source(2), 9).unwrap();
    let (instance, _) = reg.start("claim", "k", json!({"amount": 10.0}), 0).unwrap();
    // the same source: revision 6 names one content for ever
    let err = reg
        .publish_revision("claim.yaml", &source(3), 6)
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::RevisionTaken { .. }),
        "{err:?}"
    );
    // another history (etcd replaced at the same address): its revisions are its own
    reg.forget_revisions("claim");
    assert_eq!(reg.versions("claim"), Vec::<VersionId>::new());
    assert_eq!(reg.active("claim").unwrap().version(), &later);
    let new = reg.publish_revision("claim.yaml", &source(3), 6).unwrap();
    assert_eq!(new.revision, old.revision);
    assert_ne!(new.hash, old.hash);
    assert_eq!(reg.active("claim").unwrap().version(), &new);
    assert_eq!(reg.versions("claim"), vec![new]);
    // a running instance keeps the version it started on
    assert_eq!(instance.flow().version(), &later);
    // unknown flows are ignored
    reg.forget_revisions("nothing");
}
