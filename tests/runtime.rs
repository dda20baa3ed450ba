//! The runtime: every event kind and approval mode, with exact effects and traces, and
//! every error case leaving the instance unchanged.
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

use flowc::compile::{CompiledFlow, Options, compile};
use flowc::model::Outcome;
use flowc::runtime::{
    Assignee, Effect, Event, Instance, InstanceState, RuntimeError, Status, VisitStatus,
};
use flowc::span::SourceFile;
use serde_json::json;

fn flow(steps: &str, context: &str) -> Arc<CompiledFlow> {
    let text = format!(
        "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: t\ncontext: {context}\nsteps:\n{steps}"
    );
    let file = SourceFile::new("t.yaml", text);
    match compile(&file, &Options::default()) {
        Ok(f) => Arc::new(f),
        Err(d) => panic!(
            "does not compile: {:?}",
            d.iter().map(|x| x.message()).collect::<Vec<_>>()
        ),
    }
}

fn user(u: &str) -> Assignee {
    Assignee::User(u.into())
}
fn role(r: &str) -> Assignee {
    Assignee::Role(r.into())
}
fn task(step: &str, a: Vec<Assignee>) -> Effect {
    Effect::CreateTask {
        step: step.into(),
        assignees: a,
    }
}
fn cancel(step: &str) -> Effect {
    Effect::CancelTasks { step: step.into() }
}
fn done(o: Outcome) -> Effect {
    Effect::Complete { outcome: o }
}
fn approve(step: &str, u: &str) -> Event {
    Event::Approve {
        step: step.into(),
        user: u.into(),
        role: None,
    }
}
fn approve_as(step: &str, u: &str, r: &str) -> Event {
    Event::Approve {
        step: step.into(),
        user: u.into(),
        role: Some(r.into()),
    }
}
fn reject(step: &str, u: &str) -> Event {
    Event::Reject {
        step: step.into(),
        user: u.into(),
        role: None,
        comment: None,
    }
}
fn start(f: &Arc<CompiledFlow>, ctx: serde_json::Value) -> (Instance, Vec<Effect>) {
    Instance::start(Arc::clone(f), &ctx, 0).unwrap()
}
/// `step:status` for each visit.
fn trace(i: &Instance) -> Vec<String> {
    i.trace()
        .iter()
        .map(|v| {
            let s = serde_json::to_value(v.status).unwrap();
            match v.rule {
                Some(r) => format!("{}:{}#{r}", v.step, s.as_str().unwrap()),
                None => format!("{}:{}", v.step, s.as_str().unwrap()),
            }
        })
        .collect()
}
/// An event that must fail with `code` and leave the state exactly as it was.
fn refused(i: &mut Instance, e: Event, code: &str) {
    use miette::Diagnostic;
    let before = i.state().clone();
    let err = i.apply(&e, 1_000_000).unwrap_err();
    assert_eq!(err.code().unwrap().to_string(), code, "{err}");
    assert_eq!(i.state(), &before, "a refused event changed the instance");
}

const USERS3: &str =
    "  - id: a\n    type: approval\n    assignees: { users: [u1, u2, u3] }\n    mode: MODE\n";

#[test]
fn mode_single_first_decision_counts() {
    let f = flow(
        "  - id: a\n    type: approval\n    assignees: { role: boss }\n",
        "{}",
    );
    let (mut i, fx) = start(&f, json!({}));
    assert_eq!(fx, vec![task("a", vec![role("boss")])]);
    refused(&mut i, approve("a", "x"), "flowc::runtime::not-assignee");
    let fx = i.apply(&approve_as("a", "x", "boss"), 1).unwrap();
    assert_eq!(fx, vec![done(Outcome::Approved)]);
    assert_eq!(trace(&i), ["a:completed"]);
    let acts = &i.trace()[0].acts;
    assert_eq!(
        (
            acts[0].action.as_str(),
            acts[0].by.as_str(),
            acts[0].role.as_deref(),
            acts[0].at
        ),
        ("approve", "x", Some("boss"), 1)
    );
    refused(
        &mut i,
        approve_as("a", "x", "boss"),
        "flowc::runtime::finished",
    );
}

#[test]
fn mode_any_first_wins_and_others_are_withdrawn() {
    let f = flow(&USERS3.replace("MODE", "any"), "{}");
    let (mut i, fx) = start(&f, json!({}));
    assert_eq!(
        fx,
        vec![task("a", vec![user("u1"), user("u2"), user("u3")])]
    );
    let fx = i.apply(&approve("a", "u2"), 1).unwrap();
    assert_eq!(fx, vec![cancel("a"), done(Outcome::Approved)]);
}

#[test]
fn mode_any_reject_rejects() {
    let f = flow(&USERS3.replace("MODE", "any"), "{}");
    let (mut i, _) = start(&f, json!({}));
    let fx = i.apply(&reject("a", "u3"), 1).unwrap();
    assert_eq!(fx, vec![cancel("a"), done(Outcome::Rejected)]);
    assert_eq!(trace(&i), ["a:rejected"]);
}

#[test]
fn mode_all_needs_everyone_and_refuses_duplicates() {
    let f = flow(&USERS3.replace("MODE", "all"), "{}");
    let (mut i, _) = start(&f, json!({}));
    assert!(i.apply(&approve("a", "u1"), 1).unwrap().is_empty());
    refused(
        &mut i,
        approve("a", "u1"),
        "flowc::runtime::duplicate-decision",
    );
    refused(
        &mut i,
        reject("a", "u1"),
        "flowc::runtime::duplicate-decision",
    );
    assert!(i.apply(&approve("a", "u3"), 2).unwrap().is_empty());
    assert_eq!(i.pending()[0].assignees, vec![user("u2")]);
    let fx = i.apply(&approve("a", "u2"), 3).unwrap();
    assert_eq!(fx, vec![done(Outcome::Approved)]);
}

#[test]
fn mode_all_one_reject_rejects() {
    let f = flow(&USERS3.replace("MODE", "all"), "{}");
    let (mut i, _) = start(&f, json!({}));
    i.apply(&approve("a", "u1"), 1).unwrap();
    let fx = i.apply(&reject("a", "u2"), 2).unwrap();
    assert_eq!(fx, vec![cancel("a"), done(Outcome::Rejected)]);
}

#[test]
fn mode_sequence_goes_in_order() {
    let f = flow(&USERS3.replace("MODE", "sequence"), "{}");
    let (mut i, fx) = start(&f, json!({}));
    assert_eq!(fx, vec![task("a", vec![user("u1")])]);
    refused(&mut i, approve("a", "u2"), "flowc::runtime::not-your-turn");
    assert_eq!(
        i.apply(&approve("a", "u1"), 1).unwrap(),
        vec![task("a", vec![user("u2")])]
    );
    assert_eq!(
        i.apply(&approve("a", "u2"), 2).unwrap(),
        vec![task("a", vec![user("u3")])]
    );
    assert_eq!(
        i.apply(&approve("a", "u3"), 3).unwrap(),
        vec![done(Outcome::Approved)]
    );
}

#[test]
fn add_signer_all_and_sequence() {
    let steps = "  - id: a\n    type: approval\n    assignees: { users: [u1, u2] }\n    mode: MODE\n    allowAddSigner: true\n";
    // all: the added signer must approve too
    let f = flow(&steps.replace("MODE", "all"), "{}");
    let (mut i, _) = start(&f, json!({}));
    let add = Event::AddSigner {
        step: "a".into(),
        user: "u1".into(),
        role: None,
        signer: "u9".into(),
    };
    assert_eq!(i.apply(&add, 1).unwrap(), vec![task("a", vec![user("u9")])]);
    refused(&mut i, add.clone(), "flowc::runtime::duplicate-signer");
    i.apply(&approve("a", "u1"), 2).unwrap();
    assert!(i.apply(&approve("a", "u2"), 3).unwrap().is_empty());
    assert_eq!(
        i.apply(&approve("a", "u9"), 4).unwrap(),
        vec![done(Outcome::Approved)]
    );
    assert_eq!(
        i.trace()[0].assignees,
        vec![user("u1"), user("u2"), user("u9")]
    );
    // sequence: the added signer decides right after the one who added
    let f = flow(&steps.replace("MODE", "sequence"), "{}");
    let (mut i, _) = start(&f, json!({}));
    assert!(i.apply(&add, 1).unwrap().is_empty());
    assert_eq!(
        i.apply(&approve("a", "u1"), 2).unwrap(),
        vec![task("a", vec![user("u9")])]
    );
    assert_eq!(
        i.apply(&approve("a", "u9"), 3).unwrap(),
        vec![task("a", vec![user("u2")])]
    );
}

#[test]
fn add_signer_refused_where_not_allowed() {
    let f = flow(&USERS3.replace("MODE", "any"), "{}");
    let (mut i, _) = start(&f, json!({}));
    refused(
        &mut i,
        Event::AddSigner {
            step: "a".into(),
            user: "u1".into(),
            role: None,
            signer: "x".into(),
        },
        "flowc::runtime::add-signer-not-allowed",
    );
}

#[test]
fn timeout_escalate_approve_reject_goto_and_none() {
    let base = "  - id: a\n    type: approval\n    assignees: { role: r }\n    timeout: 1h\nEXTRA  - id: b\n    type: approval\n    assignees: { role: rb }\n";
    let timeout = Event::Timeout { step: "a".into() };
    // escalate
    let f = flow(
        &base.replace(
            "EXTRA",
            "    onTimeout: escalate\n    escalateTo: { user: boss }\n",
        ),
        "{}",
    );
    let (mut i, fx) = start(&f, json!({}));
    assert_eq!(
        fx,
        vec![
            task("a", vec![role("r")]),
            Effect::StartTimer {
                step: "a".into(),
                after_secs: 3600
            }
        ]
    );
    assert_eq!(
        i.apply(&timeout, 3600).unwrap(),
        vec![cancel("a"), task("a", vec![user("boss")])]
    );
    refused(&mut i, timeout.clone(), "flowc::runtime::not-pending");
    refused(
        &mut i,
        approve_as("a", "x", "r"),
        "flowc::runtime::not-assignee",
    );
    i.apply(&approve("a", "boss"), 3700).unwrap();
    assert_eq!(trace(&i), ["a:completed", "b:pending"]);
    let acts: Vec<&str> = i.trace()[0]
        .acts
        .iter()
        .map(|a| a.action.as_str())
        .collect();
    assert_eq!(acts, ["timeout", "escalate", "approve"]);
    // approve
    let f = flow(&base.replace("EXTRA", "    onTimeout: approve\n"), "{}");
    let (mut i, _) = start(&f, json!({}));
    assert_eq!(
        i.apply(&timeout, 5).unwrap(),
        vec![cancel("a"), task("b", vec![role("rb")])]
    );
    assert_eq!(i.trace()[0].note.as_deref(), Some("approved on timeout"));
    // reject
    let f = flow(&base.replace("EXTRA", "    onTimeout: reject\n"), "{}");
    let (mut i, _) = start(&f, json!({}));
    assert_eq!(
        i.apply(&timeout, 5).unwrap(),
        vec![cancel("a"), done(Outcome::Rejected)]
    );
    // goto
    let f = flow(
        &base.replace("EXTRA", "    onTimeout: b\n    next: b\n"),
        "{}",
    );
    let (mut i, _) = start(&f, json!({}));
    assert_eq!(
        i.apply(&timeout, 5).unwrap(),
        vec![cancel("a"), task("b", vec![role("rb")])]
    );
    assert_eq!(trace(&i), ["a:cancelled", "b:pending"]);
    // no onTimeout: an incident
    let f = flow(&base.replace("EXTRA", ""), "{}");
    let (mut i, _) = start(&f, json!({}));
    let fx = i.apply(&timeout, 5).unwrap();
    assert_eq!(
        fx,
        vec![
            cancel("a"),
            Effect::Incident {
                step: "a".into(),
                message: "timed out and the step has no `onTimeout`".into()
            }
        ]
    );
    assert_eq!(i.status().label(), "incident");
    // a step without a timer takes no timeout
    let (mut i, _) = start(&f, json!({}));
    i.apply(&approve_as("a", "x", "r"), 1).unwrap();
    refused(
        &mut i,
        Event::Timeout { step: "b".into() },
        "flowc::runtime::not-pending",
    );
}

#[test]
fn service_task_retries_then_on_error() {
    let f = flow(
        "  - id: s\n    type: service-task\n    service: svc\n    timeout: 30s\n    retry: { max: 2, backoff: 5s }\n    onError: fix\n  - id: ok\n    type: end\n    outcome: approved\n  - id: fix\n    type: approval\n    assignees: { role: ops }\n",
        "{}",
    );
    let call = |attempt, delay| Effect::CallService {
        step: "s".into(),
        service: "svc".into(),
        attempt,
        delay_secs: delay,
        timeout_secs: Some(30),
    };
    let (mut i, fx) = start(&f, json!({}));
    assert_eq!(fx, vec![call(1, 0)]);
    refused(&mut i, approve("s", "x"), "flowc::runtime::not-pending");
    let err = Event::ServiceError {
        step: "s".into(),
        error: "boom".into(),
    };
    assert_eq!(i.apply(&err, 1).unwrap(), vec![call(2, 5)]);
    assert_eq!(
        i.apply(&Event::Timeout { step: "s".into() }, 2).unwrap(),
        vec![call(3, 5)]
    );
    assert_eq!(
        i.apply(&err, 3).unwrap(),
        vec![task("fix", vec![role("ops")])]
    );
    assert_eq!(trace(&i), ["s:error", "fix:pending"]);
    assert_eq!(
        i.trace()[0].note.as_deref(),
        Some("failed after 3 attempt(s): boom")
    );
    // success
    let (mut i, _) = start(&f, json!({}));
    let fx = i.apply(&Event::ServiceOk { step: "s".into() }, 1).unwrap();
    assert_eq!(fx, vec![done(Outcome::Approved)]);
    assert_eq!(trace(&i), ["s:completed", "ok:completed"]);
}

#[test]
fn service_error_without_on_error_is_an_incident() {
    let f = flow(
        "  - id: s\n    type: service-task\n    service: svc\n",
        "{}",
    );
    let (mut i, _) = start(&f, json!({}));
    let fx = i
        .apply(
            &Event::ServiceError {
                step: "s".into(),
                error: "down".into(),
            },
            1,
        )
        .unwrap();
    assert_eq!(
        fx,
        vec![Effect::Incident {
            step: "s".into(),
            message: "failed after 1 attempt(s): down".into()
        }]
    );
    assert_eq!(trace(&i), ["s:error"]);
}

#[test]
fn skip_conditions_and_fail_closed() {
    let f = flow(
        "  - id: a\n    type: approval\n    assignees: { role: r }\n    skipCondition: amount < 10\n  - id: b\n    type: approval\n    assignees: { role: r }\n    skipCondition: 100 / count > 1\n",
        "{ amount: int, count: int }",
    );
    let (i, fx) = start(&f, json!({"amount": 5, "count": 0}));
    // a skipped; b's condition divides by zero: not skipped (fail closed)
    assert_eq!(fx, vec![task("b", vec![role("r")])]);
    assert_eq!(trace(&i), ["a:skipped", "b:pending"]);
    let c = i.trace()[0].condition.as_ref().unwrap();
    assert_eq!((c.text.as_str(), c.value), ("amount < 10", Some(true)));
    // where it is written in the flow file
    assert_eq!((c.line, c.column), (9, 20));
    let c = i.trace()[1].condition.as_ref().unwrap();
    assert_eq!(c.value, None);
    assert_eq!(c.error.as_deref(), Some("division by zero"));
}

#[test]
fn decisions_first_unique_default_and_incidents() {
    let steps = "  - id: d\n    type: decision\n    hitPolicy: POLICY\n    rules:\n      - when: x > 10\n        goto: big\n      - when: y > 5\n        goto: mid\n    default: small\n  - id: big\n    type: end\n    outcome: approved\n  - id: mid\n    type: end\n    outcome: approved\n  - id: small\n    type: end\n    outcome: rejected\n";
    let f = flow(&steps.replace("POLICY", "first"), "{ x: int, y: int }");
    let (i, fx) = start(&f, json!({"x": 20, "y": 7}));
    assert_eq!(fx, vec![done(Outcome::Approved)]);
    assert_eq!(trace(&i), ["d:completed#1", "big:completed"]);
    let c = i.trace()[0].condition.as_ref().unwrap();
    assert_eq!((c.text.as_str(), c.value), ("x > 10", Some(true)));
    let (i, _) = start(&f, json!({"x": 1, "y": 0}));
    assert_eq!(trace(&i), ["d:completed", "small:completed"]);
    assert_eq!(i.trace()[0].note.as_deref(), Some("no rule held: default"));
    // unique: two rules hold → incident
    let f = flow(&steps.replace("POLICY", "unique"), "{ x: int, y: int }");
    let (i, fx) = start(&f, json!({"x": 20, "y": 7}));
    assert_eq!(
        fx,
        vec![Effect::Incident {
            step: "d".into(),
            message: "decision failed: rules 1, 2 hold together under `unique`".into()
        }]
    );
    assert_eq!(trace(&i), ["d:error"]);
    let (i, _) = start(&f, json!({"x": 1, "y": 7}));
    assert_eq!(trace(&i), ["d:completed#2", "mid:completed"]);
}

#[test]
fn decision_run_time_error_is_an_incident() {
    let f = flow(
        "  - id: d\n    type: decision\n    rules:\n      - when: m[\"k\"] > 1\n        goto: e\n    default: e\n  - id: e\n    type: end\n    outcome: approved\n",
        "{ m: 'map<string, int>' }",
    );
    let (i, fx) = start(&f, json!({"m": {}}));
    assert_eq!(
        fx,
        vec![Effect::Incident {
            step: "d".into(),
            message:
                "decision failed in rule 1 `m[\"k\"] > 1` (line 9, column 15): no such key `k`"
                    .into()
        }]
    );
    assert!(matches!(i.status(), Status::Incident { .. }));
}

#[test]
fn parallel_join_all_and_any() {
    let steps = "  - id: p\n    type: parallel\n    join: JOIN\n    branches:\n      - steps:\n          - { id: l, type: approval, assignees: { user: lu } }\n          - { id: l2, type: approval, assignees: { user: lu2 } }\n      - steps:\n          - { id: f, type: approval, assignees: { user: fu } }\n  - id: after\n    type: notify\n    to: { role: hr }\n";
    let notify = Effect::Notify {
        step: "after".into(),
        to: vec![role("hr")],
        message: None,
    };
    let f = flow(&steps.replace("JOIN", "all"), "{}");
    let (mut i, fx) = start(&f, json!({}));
    assert_eq!(
        fx,
        vec![task("l", vec![user("lu")]), task("f", vec![user("fu")])]
    );
    assert!(i.apply(&approve("f", "fu"), 1).unwrap().is_empty());
    assert_eq!(
        i.apply(&approve("l", "lu"), 2).unwrap(),
        vec![task("l2", vec![user("lu2")])]
    );
    assert_eq!(
        i.apply(&approve("l2", "lu2"), 3).unwrap(),
        vec![notify.clone(), done(Outcome::Approved)]
    );
    assert_eq!(
        trace(&i),
        [
            "p:completed",
            "l:completed",
            "f:completed",
            "l2:completed",
            "after:completed"
        ]
    );
    // any: the first branch to finish wins; the other's task is withdrawn
    let f = flow(&steps.replace("JOIN", "any"), "{}");
    let (mut i, _) = start(&f, json!({}));
    assert_eq!(
        i.apply(&approve("f", "fu"), 1).unwrap(),
        vec![cancel("l"), notify, done(Outcome::Approved)]
    );
    assert_eq!(
        trace(&i),
        [
            "p:completed",
            "l:cancelled",
            "f:completed",
            "after:completed"
        ]
    );
    // a rejection in a branch rejects the instance and withdraws the rest
    let f = flow(&steps.replace("JOIN", "all"), "{}");
    let (mut i, _) = start(&f, json!({}));
    assert_eq!(
        i.apply(&reject("l", "lu"), 1).unwrap(),
        vec![cancel("f"), done(Outcome::Rejected)]
    );
    assert_eq!(trace(&i), ["p:cancelled", "l:rejected", "f:cancelled"]);
}

#[test]
fn nested_parallel_join_any_cancels_inner_branches() {
    let f = flow(
        "  - id: outer\n    type: parallel\n    join: any\n    branches:\n      - steps:\n          - id: inner\n            type: parallel\n            branches:\n              - steps: [ { id: x, type: approval, assignees: { user: xu } } ]\n              - steps: [ { id: y, type: approval, assignees: { user: yu } } ]\n      - steps:\n          - { id: z, type: approval, assignees: { user: zu } }\n",
        "{}",
    );
    let (mut i, fx) = start(&f, json!({}));
    assert_eq!(fx.len(), 3);
    assert_eq!(
        i.apply(&approve("z", "zu"), 1).unwrap(),
        vec![cancel("x"), cancel("y"), done(Outcome::Approved)]
    );
    assert_eq!(
        trace(&i),
        [
            "outer:completed",
            "inner:cancelled",
            "x:cancelled",
            "y:cancelled",
            "z:completed"
        ]
    );
}

#[test]
fn on_reject_loops_and_assignee_expressions() {
    let f = flow(
        "  - id: review\n    type: approval\n    assignees: { expr: 'approvers' }\n    mode: any\n    onReject: revise\n  - id: notify\n    type: notify\n    to: { expr: applicant }\n    message: done\n    next: fin\n  - id: revise\n    type: approval\n    assignees: { expr: applicant }\n    next: review\n  - id: fin\n    type: end\n    outcome: approved\n",
        "{ approvers: list<string>, applicant: string }",
    );
    let (mut i, fx) = start(&f, json!({"approvers": ["a", "b", "a"], "applicant": "me"}));
    // duplicates removed, order kept
    assert_eq!(fx, vec![task("review", vec![user("a"), user("b")])]);
    assert_eq!(
        i.apply(&reject("review", "b"), 1).unwrap(),
        vec![cancel("review"), task("revise", vec![user("me")])]
    );
    assert_eq!(
        i.apply(&approve("revise", "me"), 2).unwrap(),
        vec![task("review", vec![user("a"), user("b")])]
    );
    let fx = i.apply(&approve("review", "a"), 3).unwrap();
    assert_eq!(
        fx,
        vec![
            cancel("review"),
            Effect::Notify {
                step: "notify".into(),
                to: vec![user("me")],
                message: Some("done".into())
            },
            done(Outcome::Approved)
        ]
    );
    assert_eq!(
        trace(&i),
        [
            "review:rejected",
            "revise:completed",
            "review:completed",
            "notify:completed",
            "fin:completed"
        ]
    );
    // an empty assignee list is an incident
    let (i, fx) = start(&f, json!({"approvers": [], "applicant": "me"}));
    assert!(matches!(&fx[..], [Effect::Incident { step, .. }] if step == "review"));
    assert_eq!(trace(&i), ["review:error"]);
}

#[test]
fn cancel_withdraws_everything() {
    let f = flow(&USERS3.replace("MODE", "all"), "{}");
    let (mut i, _) = start(&f, json!({}));
    let fx = i
        .apply(
            &Event::Cancel {
                reason: Some("withdrawn".into()),
            },
            9,
        )
        .unwrap();
    assert_eq!(fx, vec![cancel("a"), Effect::Cancelled]);
    assert_eq!(i.status(), &Status::Cancelled);
    assert_eq!(i.trace()[0].status, VisitStatus::Cancelled);
    assert_eq!(i.trace()[0].note.as_deref(), Some("withdrawn"));
    assert_eq!(i.trace()[0].ended_at, Some(9));
}

#[test]
fn event_errors_change_nothing() {
    let f = flow(&USERS3.replace("MODE", "all"), "{}");
    let (mut i, _) = start(&f, json!({}));
    i.apply(&approve("a", "u1"), 10).unwrap();
    refused(
        &mut i,
        approve("nope", "u1"),
        "flowc::runtime::unknown-step",
    );
    refused(
        &mut i,
        approve("a", "stranger"),
        "flowc::runtime::not-assignee",
    );
    refused(
        &mut i,
        Event::ServiceOk { step: "a".into() },
        "flowc::runtime::not-pending",
    );
    let before = i.state().clone();
    let e = i.apply(&approve("a", "u2"), 5).unwrap_err();
    assert_eq!(e, RuntimeError::TimeBackwards { at: 5, last: 10 });
    assert_eq!(i.state(), &before);
}

#[test]
fn unknown_step_suggests_the_right_one() {
    let f = flow(
        "  - id: legal-review\n    type: approval\n    assignees: { role: legal }\n",
        "{}",
    );
    let (mut i, _) = start(&f, json!({}));
    match i.apply(&approve("legal-reveiw", "x"), 1).unwrap_err() {
        RuntimeError::UnknownStep { help, .. } => {
            assert_eq!(help, "did you mean `legal-review`?");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn context_is_validated_with_typed_errors() {
    use flowc::runtime::ContextError as C;
    let f = flow(
        "  - id: a\n    type: approval\n    assignees: { role: r }\n",
        "{ amount: double, currency: { type: string, enum: [CNY, USD] }, level: { type: int, default: 1 }, when: { type: timestamp, optional: true }, who: { type: object, fields: { id: string } } }",
    );
    let err = |ctx: serde_json::Value| match Instance::start(Arc::clone(&f), &ctx, 0) {
        Err(RuntimeError::Context(c)) => c,
        Ok(_) => panic!("accepted {ctx}"),
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        err(json!({"currency": "CNY", "who": {"id": "x"}})),
        C::Missing {
            field: "amount".into(),
            expected: "double".into()
        }
    );
    assert_eq!(
        err(json!({"amount": "5", "currency": "CNY", "who": {"id": "x"}})),
        C::WrongType {
            field: "amount".into(),
            expected: "double".into(),
            got: "a string `\"5\"`".into()
        }
    );
    assert_eq!(
        err(json!({"amount": 5, "currency": "GBP", "who": {"id": "x"}})),
        C::NotAllowed {
            field: "currency".into(),
            value: "\"GBP\"".into(),
            allowed: "\"CNY\", \"USD\"".into()
        }
    );
    assert_eq!(
        err(json!({"amount": 5, "currency": "CNY", "who": {}})),
        C::Missing {
            field: "who.id".into(),
            expected: "string".into()
        }
    );
    assert_eq!(
        err(json!({"amount": 5, "currency": "CNY", "who": {"id": "x"}, "amout": 1})),
        C::Unknown {
            field: "amout".into(),
            help: "did you mean `amount`?".into()
        }
    );
    assert!(matches!(
        err(json!({"amount": 5, "currency": "CNY", "who": {"id": "x"}, "when": "yesterday"})),
        C::WrongType { field, .. } if field == "when"
    ));
    assert_eq!(err(json!([1])), C::NotAnObject { got: "a list" });
    // an int is a fine double; the default is filled in
    let (i, _) = Instance::start(
        Arc::clone(&f),
        &json!({"amount": 5, "currency": "USD", "who": {"id": "x"}}),
        0,
    )
    .unwrap();
    assert_eq!(i.state().context["level"], json!(1));
}

#[test]
fn state_round_trips_and_restores_only_on_its_version() {
    let f = flow(&USERS3.replace("MODE", "sequence"), "{ n: int }");
    let (mut i, _) = start(&f, json!({"n": 1}));
    i.apply(&approve("a", "u1"), 1).unwrap();
    let text = serde_json::to_string(i.state()).unwrap();
    let state: InstanceState = serde_json::from_str(&text).unwrap();
    let mut back = Instance::restore(Arc::clone(&f), state.clone()).unwrap();
    assert_eq!(back.state(), i.state());
    assert_eq!(
        back.apply(&approve("a", "u2"), 2).unwrap(),
        vec![task("a", vec![user("u3")])]
    );
    // another version of the "same" flow
    let other = flow(&USERS3.replace("MODE", "all"), "{ n: int }");
    match Instance::restore(other, state.clone()) {
        Err(RuntimeError::VersionMismatch { expected, got }) => {
            assert_eq!(&expected, f.version());
            assert_ne!(expected.hash, got.hash);
        }
        other => panic!("{other:?}"),
    }
    // a corrupt state
    let mut bad: serde_json::Value = serde_json::from_str(&text).unwrap();
    bad["tokens"][0]["step"] = json!(99);
    let bad: InstanceState = serde_json::from_value(bad).unwrap();
    assert!(matches!(
        Instance::restore(Arc::clone(&f), bad),
        Err(RuntimeError::CorruptState(_))
    ));
}

#[test]
fn trace_answers_why_an_instance_waits() {
    let f = flow(
        "  - id: route\n    type: decision\n    rules:\n      - when: amount > 50000.0\n        goto: legal-review\n    default: done\n  - id: legal-review\n    type: approval\n    assignees: { role: legal }\n  - id: done\n    type: end\n    outcome: approved\n",
        "{ amount: double }",
    );
    let (i, _) = Instance::start(Arc::clone(&f), &json!({"amount": 60000.0}), 42).unwrap();
    let p = i.pending();
    assert_eq!(p.len(), 1);
    assert_eq!((p[0].step.as_str(), p[0].since), ("legal-review", 42));
    let route = &i.trace()[0];
    assert_eq!(route.rule, Some(1));
    assert_eq!(
        route.condition.as_ref().map(|c| c.text.as_str()),
        Some("amount > 50000.0")
    );
    let json = serde_json::to_value(i.trace()).unwrap();
    assert_eq!(
        json[1],
        json!({"step": "legal-review", "status": "pending", "assignees": [{"role": "legal"}], "enteredAt": 42})
    );
}

#[test]
fn every_runtime_error_has_its_code() {
    use miette::Diagnostic;
    let code = |e: &RuntimeError| e.code().unwrap().to_string();
    let f = flow(
        "  - id: a\n    type: approval\n    assignees: { role: r }\n",
        "{ n: int }",
    );
    let start_err = |ctx: serde_json::Value| Instance::start(Arc::clone(&f), &ctx, 0).unwrap_err();
    assert_eq!(
        code(&start_err(json!("x"))),
        "flowc::runtime::context-not-object"
    );
    assert_eq!(
        code(&start_err(json!({"n": 1, "m": 2}))),
        "flowc::runtime::unknown-field"
    );
    assert_eq!(code(&start_err(json!({}))), "flowc::runtime::missing-field");
    assert_eq!(
        code(&start_err(json!({"n": 1.5}))),
        "flowc::runtime::wrong-type"
    );
    let (i, _) = start(&f, json!({"n": 1}));
    let other = flow(
        "  - id: a\n    type: approval\n    assignees: { role: s }\n",
        "{ n: int }",
    );
    let e = Instance::restore(other, i.state().clone()).unwrap_err();
    assert_eq!(code(&e), "flowc::runtime::version-mismatch");
    let mut state = i.state().clone();
    state.context = json!({"n": "not an int"});
    let e = Instance::restore(Arc::clone(&f), state).unwrap_err();
    assert_eq!(code(&e), "flowc::runtime::corrupt-state");
}

#[test]
fn rejections_withdraw_only_tasks_that_are_open() {
    // all: u1 approved, u2 rejects, nobody else holds a task
    let two = "  - id: a\n    type: approval\n    assignees: { users: [u1, u2] }\n    mode: MODE\n";
    let f = flow(&two.replace("MODE", "all"), "{}");
    let (mut i, _) = start(&f, json!({}));
    i.apply(&approve("a", "u1"), 1).unwrap();
    assert_eq!(
        i.apply(&reject("a", "u2"), 2).unwrap(),
        vec![done(Outcome::Rejected)]
    );
    // sequence: later assignees have no task yet
    let f = flow(&USERS3.replace("MODE", "sequence"), "{}");
    let (mut i, _) = start(&f, json!({}));
    assert_eq!(
        i.apply(&reject("a", "u1"), 1).unwrap(),
        vec![done(Outcome::Rejected)]
    );
}

#[test]
fn explain_says_why_an_instance_waits() {
    let f = flow(
        "  - id: manager\n    type: approval\n    assignees: { role: manager }\n  - id: check\n    type: service-task\n    service: svc\n    skipCondition: amount < 100.0\n  - id: route\n    type: decision\n    rules:\n      - when: amount > 50000.0\n        goto: legal-review\n    default: done\n  - id: legal-review\n    type: approval\n    assignees: { role: legal }\n  - id: done\n    type: end\n    outcome: approved\n",
        "{ amount: double }",
    );
    let (mut i, _) = Instance::start(Arc::clone(&f), &json!({"amount": 60000.0}), 0).unwrap();
    i.apply(&approve_as("manager", "wang", "manager"), 10)
        .unwrap();
    i.apply(
        &Event::ServiceOk {
            step: "check".into(),
        },
        20,
    )
    .unwrap();
    assert_eq!(
        i.explain("legal-review").unwrap(),
        "`legal-review` is pending since t=20: waiting for role `legal`.
  - `manager` completed; approve by wang as manager at t=10
  - `check` completed: `amount < 100.0` (line 12, column 20) was false; service-ok by service at t=20
  - `route` completed by rule 1: `amount > 50000.0` (line 16, column 15) was true
"
    );
    assert!(i.explain("done").is_none());
    assert!(
        i.explain("manager")
            .unwrap()
            .starts_with("`manager` is completed (t=10).\n")
    );
}

#[test]
fn restore_refuses_states_that_cannot_continue() {
    let f = flow(
        "  - id: p\n    type: parallel\n    branches:\n      - steps: [ { id: x, type: approval, assignees: { user: xu } } ]\n      - steps: [ { id: y, type: approval, assignees: { user: yu } } ]\n",
        "{}",
    );
    let (i, _) = start(&f, json!({}));
    let good = serde_json::to_value(i.state()).unwrap();
    let restore = |v: serde_json::Value| {
        Instance::restore(Arc::clone(&f), serde_json::from_value(v).unwrap())
    };
    assert!(restore(good.clone()).is_ok());
    // a branch whose join is gone
    let mut v = good.clone();
    v["joins"] = json!([]);
    assert!(matches!(restore(v), Err(RuntimeError::CorruptState(_))));
    // running, but waiting for nothing
    let mut v = good;
    v["tokens"] = json!([]);
    assert!(matches!(restore(v), Err(RuntimeError::CorruptState(_))));
}

#[test]
fn direct_path_decision_errors_name_their_rule() {
    let f = flow(
        "  - id: d\n    type: decision\n    rules:\n      - when: n > 5\n        goto: e\n      - when: 100 / n > 1\n        goto: e\n    default: e\n  - id: e\n    type: end\n    outcome: approved\n",
        "{ n: int }",
    );
    assert!(f.decision("d").unwrap().is_direct());
    let (_, fx) = start(&f, json!({"n": 0}));
    assert_eq!(
        fx,
        vec![Effect::Incident {
            step: "d".into(),
            message:
                "decision failed in rule 2 `100 / n > 1` (line 11, column 15): division by zero"
                    .into()
        }]
    );
}
