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

use flowc::compile::{CompiledFlow, Evaluator, Options, compile};
use flowc::model::Outcome;
use flowc::runtime::{
    Applied, Assignee, CallId, Effect, Event, Gone, Instance, InstanceState, Route, RuntimeError,
    Status, TaskId, TaskRef, TimerId, VisitStatus,
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
fn task(step: &str, a: Vec<(u32, Assignee)>) -> Effect {
    Effect::CreateTask {
        step: step.into(),
        tasks: a
            .into_iter()
            .map(|(id, assignee)| TaskRef {
                task: TaskId(id),
                assignee,
            })
            .collect(),
    }
}
fn close(id: u32, step: &str, reason: Gone) -> Effect {
    Effect::CloseTask {
        task: TaskId(id),
        step: step.into(),
        reason,
    }
}
fn timer(id: u32, step: &str, due_at: u64) -> Effect {
    Effect::StartTimer {
        timer: TimerId(id),
        step: step.into(),
        due_at,
    }
}
fn cancel_timer(id: u32, step: &str) -> Effect {
    Effect::CancelTimer {
        timer: TimerId(id),
        step: step.into(),
    }
}
fn done(o: Outcome) -> Effect {
    Effect::Complete { outcome: o }
}
fn approve(step: &str, u: &str) -> Event {
    Event::approve(step, u)
}
fn approve_as(step: &str, u: &str, r: &str) -> Event {
    Event::approve_as(step, u, r)
}
fn reject(step: &str, u: &str) -> Event {
    Event::reject(step, u)
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
    refused_at(i, e, i.state().now() + 1, code);
}
fn refused_at(i: &mut Instance, e: Event, at: u64, code: &str) {
    use miette::Diagnostic;
    let before = i.state().clone();
    let err = i.apply(&e, at).unwrap_err();
    assert_eq!(err.code().unwrap().to_string(), code, "{err}");
    // the same code without miette
    assert_eq!(flowc::diagnostic::ErrorCode::code(&err), code);
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
    assert_eq!(fx, vec![task("a", vec![(1, role("boss"))])]);
    refused(&mut i, approve("a", "x"), "flowc::runtime::not-assignee");
    let fx = i.apply(&approve_as("a", "x", "boss"), 1).unwrap();
    assert_eq!(
        fx,
        vec![close(1, "a", Gone::Approved), done(Outcome::Approved)]
    );
    assert_eq!(trace(&i), ["a:completed"]);
    let acts = &i.trace()[0].acts;
    assert_eq!(
        (
            acts[0].action.as_str(),
            &*acts[0].by,
            acts[0].role.as_deref(),
            acts[0].at
        ),
        ("approve", "x", Some("boss"), 1)
    );
    // a late answer to the task the end closed is stale; anyone else hears it ended
    refused(
        &mut i,
        approve_as("a", "x", "boss"),
        "flowc::runtime::stale",
    );
    refused(
        &mut i,
        approve_as("a", "x", "other"),
        "flowc::runtime::finished",
    );
}

#[test]
fn mode_any_first_wins_and_others_are_withdrawn() {
    let f = flow(&USERS3.replace("MODE", "any"), "{}");
    let (mut i, fx) = start(&f, json!({}));
    assert_eq!(
        fx,
        vec![task(
            "a",
            vec![(1, user("u1")), (2, user("u2")), (3, user("u3"))]
        )]
    );
    let fx = i.apply(&approve("a", "u2"), 1).unwrap();
    assert_eq!(
        fx,
        vec![
            close(2, "a", Gone::Approved),
            close(1, "a", Gone::StepEnded),
            close(3, "a", Gone::StepEnded),
            done(Outcome::Approved)
        ]
    );
}

#[test]
fn mode_any_reject_rejects() {
    let f = flow(&USERS3.replace("MODE", "any"), "{}");
    let (mut i, _) = start(&f, json!({}));
    let fx = i.apply(&reject("a", "u3"), 1).unwrap();
    assert_eq!(
        fx,
        vec![
            close(3, "a", Gone::Rejected),
            close(1, "a", Gone::StepEnded),
            close(2, "a", Gone::StepEnded),
            done(Outcome::Rejected)
        ]
    );
    assert_eq!(trace(&i), ["a:rejected"]);
}

#[test]
fn mode_all_needs_everyone_and_closes_each_task_as_it_is_decided() {
    let f = flow(&USERS3.replace("MODE", "all"), "{}");
    let (mut i, _) = start(&f, json!({}));
    // a partial approval closes that person's task
    assert_eq!(
        i.apply(&approve("a", "u1"), 1).unwrap(),
        vec![close(1, "a", Gone::Approved)]
    );
    refused(&mut i, approve("a", "u1"), "flowc::runtime::stale");
    refused(&mut i, reject("a", "u1"), "flowc::runtime::stale");
    match i.apply(&approve("a", "u1"), 5).unwrap_err() {
        RuntimeError::Stale { what, why, at } => {
            assert_eq!(what, "task 1 of `u1` at step `a`");
            assert_eq!((why, at), (Gone::Approved, 1));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        i.apply(&approve("a", "u3"), 2).unwrap(),
        vec![close(3, "a", Gone::Approved)]
    );
    assert_eq!(i.pending()[0].assignees, vec![user("u2")]);
    assert_eq!(i.outstanding().tasks, vec![TaskId(2)]);
    let fx = i.apply(&approve("a", "u2"), 3).unwrap();
    assert_eq!(
        fx,
        vec![close(2, "a", Gone::Approved), done(Outcome::Approved)]
    );
}

#[test]
fn mode_all_one_reject_rejects() {
    let f = flow(&USERS3.replace("MODE", "all"), "{}");
    let (mut i, _) = start(&f, json!({}));
    i.apply(&approve("a", "u1"), 1).unwrap();
    let fx = i.apply(&reject("a", "u2"), 2).unwrap();
    assert_eq!(
        fx,
        vec![
            close(2, "a", Gone::Rejected),
            close(3, "a", Gone::StepEnded),
            done(Outcome::Rejected)
        ]
    );
}

#[test]
fn mode_sequence_goes_in_order() {
    let f = flow(&USERS3.replace("MODE", "sequence"), "{}");
    let (mut i, fx) = start(&f, json!({}));
    assert_eq!(fx, vec![task("a", vec![(1, user("u1"))])]);
    refused(&mut i, approve("a", "u2"), "flowc::runtime::not-your-turn");
    assert_eq!(
        i.apply(&approve("a", "u1"), 1).unwrap(),
        vec![
            close(1, "a", Gone::Approved),
            task("a", vec![(2, user("u2"))])
        ]
    );
    assert_eq!(
        i.apply(&approve("a", "u2"), 2).unwrap(),
        vec![
            close(2, "a", Gone::Approved),
            task("a", vec![(3, user("u3"))])
        ]
    );
    assert_eq!(
        i.apply(&approve("a", "u3"), 3).unwrap(),
        vec![close(3, "a", Gone::Approved), done(Outcome::Approved)]
    );
}

#[test]
fn add_signer_all_and_sequence() {
    let steps = "  - id: a\n    type: approval\n    assignees: { users: [u1, u2] }\n    mode: MODE\n    allowAddSigner: true\n";
    // all: the added signer must approve too
    let f = flow(&steps.replace("MODE", "all"), "{}");
    let (mut i, _) = start(&f, json!({}));
    let add = Event::add_signer("a", "u1", "u9");
    assert_eq!(
        i.apply(&add, 1).unwrap(),
        vec![task("a", vec![(3, user("u9"))])]
    );
    refused(&mut i, add.clone(), "flowc::runtime::duplicate-signer");
    i.apply(&approve("a", "u1"), 2).unwrap();
    // §17: only a current assignee may add; u1 has approved and holds no task now
    refused(
        &mut i,
        Event::add_signer("a", "u1", "u8"),
        "flowc::runtime::stale",
    );
    assert_eq!(
        i.apply(&approve("a", "u2"), 3).unwrap(),
        vec![close(2, "a", Gone::Approved)]
    );
    assert_eq!(
        i.apply(&approve("a", "u9"), 4).unwrap(),
        vec![close(3, "a", Gone::Approved), done(Outcome::Approved)]
    );
    assert_eq!(
        *i.trace()[0].assignees,
        [user("u1"), user("u2"), user("u9")]
    );
    // sequence: the added signer decides right after the one who added
    let f = flow(&steps.replace("MODE", "sequence"), "{}");
    let (mut i, _) = start(&f, json!({}));
    // §17: a later signer may not add before their turn
    refused(
        &mut i,
        Event::add_signer("a", "u2", "u8"),
        "flowc::runtime::not-your-turn",
    );
    assert!(i.apply(&add, 1).unwrap().is_empty());
    assert_eq!(
        i.apply(&approve("a", "u1"), 2).unwrap(),
        vec![
            close(1, "a", Gone::Approved),
            task("a", vec![(2, user("u9"))])
        ]
    );
    // one who already approved may not add any more
    refused(
        &mut i,
        Event::add_signer("a", "u1", "u7"),
        "flowc::runtime::stale",
    );
    assert_eq!(
        i.apply(&approve("a", "u9"), 3).unwrap(),
        vec![
            close(2, "a", Gone::Approved),
            task("a", vec![(3, user("u2"))])
        ]
    );
    // someone who is not asked at all may not add
    refused(
        &mut i,
        Event::add_signer("a", "zed", "u7"),
        "flowc::runtime::not-assignee",
    );
}

#[test]
fn add_signer_refused_where_not_allowed() {
    let f = flow(&USERS3.replace("MODE", "any"), "{}");
    let (mut i, _) = start(&f, json!({}));
    refused(
        &mut i,
        Event::add_signer("a", "u1", "x"),
        "flowc::runtime::add-signer-not-allowed",
    );
}

#[test]
fn timeout_escalate_approve_reject_goto_and_none() {
    let base = "  - id: a\n    type: approval\n    assignees: { role: r }\n    timeout: 1h\nEXTRA  - id: b\n    type: approval\n    assignees: { role: rb }\n";
    let timeout = Event::timeout(TimerId(2));
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
        vec![task("a", vec![(1, role("r"))]), timer(2, "a", 3600)]
    );
    // early: refused, nothing changes
    refused_at(&mut i, timeout.clone(), 3599, "flowc::runtime::not-due");
    assert_eq!(
        i.apply(&timeout, 3600).unwrap(),
        vec![
            close(1, "a", Gone::Escalated),
            task("a", vec![(3, user("boss"))])
        ]
    );
    refused(&mut i, timeout.clone(), "flowc::runtime::stale");
    refused(
        &mut i,
        approve_as("a", "x", "r"),
        "flowc::runtime::not-assignee",
    );
    assert_eq!(
        i.apply(&approve("a", "boss"), 3700).unwrap(),
        vec![
            close(3, "a", Gone::Approved),
            task("b", vec![(4, role("rb"))])
        ]
    );
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
        i.apply(&timeout, 3600).unwrap(),
        vec![
            close(1, "a", Gone::StepEnded),
            task("b", vec![(3, role("rb"))])
        ]
    );
    assert_eq!(i.trace()[0].note.as_deref(), Some("approved on timeout"));
    // reject
    let f = flow(&base.replace("EXTRA", "    onTimeout: reject\n"), "{}");
    let (mut i, _) = start(&f, json!({}));
    assert_eq!(
        i.apply(&timeout, 4000).unwrap(),
        vec![close(1, "a", Gone::StepEnded), done(Outcome::Rejected)]
    );
    // goto
    let f = flow(
        &base.replace("EXTRA", "    onTimeout: b\n    next: b\n"),
        "{}",
    );
    let (mut i, _) = start(&f, json!({}));
    assert_eq!(
        i.apply(&timeout, 3600).unwrap(),
        vec![
            close(1, "a", Gone::StepEnded),
            task("b", vec![(3, role("rb"))])
        ]
    );
    assert_eq!(trace(&i), ["a:cancelled", "b:pending"]);
    // no onTimeout: an incident
    let f = flow(&base.replace("EXTRA", ""), "{}");
    let (mut i, _) = start(&f, json!({}));
    let fx = i.apply(&timeout, 3600).unwrap();
    assert_eq!(
        fx,
        vec![
            close(1, "a", Gone::Withdrawn),
            Effect::Incident {
                step: "a".into(),
                message: "timed out and the step has no `onTimeout`".into()
            }
        ]
    );
    assert_eq!(i.status().label(), "incident");
    // an approved step's timer is cancelled; a timer never issued is unknown
    let (mut i, _) = start(&f, json!({}));
    assert_eq!(
        i.apply(&approve_as("a", "x", "r"), 1).unwrap(),
        vec![
            close(1, "a", Gone::Approved),
            cancel_timer(2, "a"),
            task("b", vec![(3, role("rb"))])
        ]
    );
    refused(&mut i, timeout.clone(), "flowc::runtime::stale");
    refused(
        &mut i,
        Event::timeout(TimerId(99)),
        "flowc::runtime::unknown-id",
    );
    // a task id is not a timer id
    refused(
        &mut i,
        Event::timeout(TimerId(3)),
        "flowc::runtime::unknown-id",
    );
}

/// The first visit's timer must not act on a later visit of the same step.
#[test]
fn a_stale_timer_does_not_act_on_a_later_visit() {
    let f = flow(
        "  - id: a\n    type: approval\n    assignees: { role: r }\n    timeout: 1h\n    onTimeout: escalate\n    escalateTo: { user: boss }\n    onReject: revise\n  - id: done\n    type: end\n    outcome: approved\n  - id: revise\n    type: approval\n    assignees: { user: me }\n    next: a\n",
        "{}",
    );
    let (mut i, _) = start(&f, json!({}));
    // rejected: the visit's timer is cancelled
    assert_eq!(
        i.apply(&reject_as_r("a"), 10).unwrap(),
        vec![
            close(1, "a", Gone::Rejected),
            cancel_timer(2, "a"),
            task("revise", vec![(3, user("me"))])
        ]
    );
    assert_eq!(
        i.apply(&approve("revise", "me"), 20).unwrap(),
        vec![
            close(3, "revise", Gone::Approved),
            task("a", vec![(4, role("r"))]),
            timer(5, "a", 3620)
        ]
    );
    // the first visit's timer fires late: refused, the second visit is untouched
    match i.apply(&Event::timeout(TimerId(2)), 3600).unwrap_err() {
        RuntimeError::Stale { what, why, at } => {
            assert_eq!(what, "timer 2 of step `a`");
            assert_eq!((why, at), (Gone::StepEnded, 10));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(i.pending()[0].assignees, vec![role("r")]);
    assert_eq!(
        i.pending()[0].timer,
        Some(flowc::runtime::TimerRef {
            timer: TimerId(5),
            due_at: 3620
        })
    );
    // its own timer escalates
    assert_eq!(
        i.apply(&Event::timeout(TimerId(5)), 3620).unwrap(),
        vec![
            close(4, "a", Gone::Escalated),
            task("a", vec![(6, user("boss"))])
        ]
    );
}

fn reject_as_r(step: &str) -> Event {
    Event::reject_as(step, "x", "r")
}

#[test]
fn service_task_retries_then_on_error() {
    let f = flow(
        "  - id: s\n    type: service-task\n    service: svc\n    timeout: 30s\n    retry: { max: 2, backoff: 5s }\n    onError: fix\n  - id: ok\n    type: end\n    outcome: approved\n  - id: fix\n    type: approval\n    assignees: { role: ops }\n",
        "{}",
    );
    let call = |id, attempt, delay, not_before| Effect::CallService {
        call: CallId(id),
        step: "s".into(),
        service: "svc".into(),
        attempt,
        delay_secs: delay,
        not_before,
        timeout_secs: Some(30),
    };
    let (mut i, fx) = start(&f, json!({}));
    assert_eq!(fx, vec![call(1, 1, 0, 0), timer(2, "s", 30)]);
    refused(&mut i, approve("s", "x"), "flowc::runtime::not-pending");
    assert_eq!(
        i.apply(&Event::service_error(CallId(1), "boom"), 1)
            .unwrap(),
        vec![cancel_timer(2, "s"), call(3, 2, 5, 6), timer(4, "s", 36)]
    );
    // attempt 1's late answers are refused: they do not complete or fail attempt 2
    refused(
        &mut i,
        Event::service_ok(CallId(1)),
        "flowc::runtime::stale",
    );
    refused(
        &mut i,
        Event::service_error(CallId(1), "late"),
        "flowc::runtime::stale",
    );
    refused_at(
        &mut i,
        Event::timeout(TimerId(4)),
        35,
        "flowc::runtime::not-due",
    );
    // attempt 2 times out: the call is abandoned, attempt 3 issued
    assert_eq!(
        i.apply(&Event::timeout(TimerId(4)), 36).unwrap(),
        vec![
            Effect::CancelService {
                call: CallId(3),
                step: "s".into()
            },
            call(5, 3, 5, 41),
            timer(6, "s", 71)
        ]
    );
    refused(
        &mut i,
        Event::service_ok(CallId(3)),
        "flowc::runtime::stale",
    );
    assert_eq!(
        i.apply(&Event::service_error(CallId(5), "boom"), 41)
            .unwrap(),
        vec![cancel_timer(6, "s"), task("fix", vec![(7, role("ops"))])]
    );
    assert_eq!(trace(&i), ["s:error", "fix:pending"]);
    assert_eq!(
        i.trace()[0].note.as_deref(),
        Some("failed after 3 attempt(s): boom")
    );
    // success
    let (mut i, _) = start(&f, json!({}));
    let fx = i.apply(&Event::service_ok(CallId(1)), 1).unwrap();
    assert_eq!(fx, vec![cancel_timer(2, "s"), done(Outcome::Approved)]);
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
        .apply(&Event::service_error(CallId(1), "down"), 1)
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
    assert_eq!(fx, vec![task("b", vec![(1, role("r"))])]);
    assert_eq!(trace(&i), ["a:skipped", "b:pending"]);
    let c = i.trace()[0].condition.as_ref().unwrap();
    assert_eq!((&*c.text, c.value), ("amount < 10", Some(true)));
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
    assert_eq!((&*c.text, c.value), ("x > 10", Some(true)));
    let (i, _) = start(&f, json!({"x": 1, "y": 0}));
    assert_eq!(trace(&i), ["d:completed", "small:completed"]);
    assert_eq!(i.trace()[0].route(), Some(Route::Default));
    assert_eq!(i.trace()[0].note, None);
    // the default route is typed in the saved trace, not a note
    let saved = serde_json::to_value(&i.trace()[0]).unwrap();
    assert_eq!(saved["byDefault"], json!(true));
    assert!(saved.get("rule").is_none() && saved.get("note").is_none());
    // unique: two rules hold → incident (`check` finds `x > 10` / `y > 5`, so the
    // second rule compares two fields, which its analysis leaves alone)
    let steps = steps.replace("y > 5", "y > 5 && y != x");
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
        to: vec![role("hr")].into(),
        message: None,
    };
    let f = flow(&steps.replace("JOIN", "all"), "{}");
    let (mut i, fx) = start(&f, json!({}));
    assert_eq!(
        fx,
        vec![
            task("l", vec![(1, user("lu"))]),
            task("f", vec![(2, user("fu"))])
        ]
    );
    assert_eq!(
        i.apply(&approve("f", "fu"), 1).unwrap(),
        vec![close(2, "f", Gone::Approved)]
    );
    assert_eq!(
        i.apply(&approve("l", "lu"), 2).unwrap(),
        vec![
            close(1, "l", Gone::Approved),
            task("l2", vec![(3, user("lu2"))])
        ]
    );
    assert_eq!(
        i.apply(&approve("l2", "lu2"), 3).unwrap(),
        vec![
            close(3, "l2", Gone::Approved),
            notify.clone(),
            done(Outcome::Approved)
        ]
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
        vec![
            close(2, "f", Gone::Approved),
            close(1, "l", Gone::Withdrawn),
            notify,
            done(Outcome::Approved)
        ]
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
        vec![
            close(1, "l", Gone::Rejected),
            close(2, "f", Gone::Withdrawn),
            done(Outcome::Rejected)
        ]
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
        vec![
            close(3, "z", Gone::Approved),
            close(1, "x", Gone::Withdrawn),
            close(2, "y", Gone::Withdrawn),
            done(Outcome::Approved)
        ]
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
    assert_eq!(
        fx,
        vec![task("review", vec![(1, user("a")), (2, user("b"))])]
    );
    assert_eq!(
        i.apply(&reject("review", "b"), 1).unwrap(),
        vec![
            close(2, "review", Gone::Rejected),
            close(1, "review", Gone::StepEnded),
            task("revise", vec![(3, user("me"))])
        ]
    );
    assert_eq!(
        i.apply(&approve("revise", "me"), 2).unwrap(),
        vec![
            close(3, "revise", Gone::Approved),
            task("review", vec![(4, user("a")), (5, user("b"))])
        ]
    );
    // the first visit's task answered late
    refused(
        &mut i,
        Event::Approve {
            step: "review".into(),
            user: "a".into(),
            role: None,
            task: Some(TaskId(1)),
            comment: None,
        },
        "flowc::runtime::stale",
    );
    let fx = i.apply(&approve("review", "a"), 3).unwrap();
    assert_eq!(
        fx,
        vec![
            close(4, "review", Gone::Approved),
            close(5, "review", Gone::StepEnded),
            Effect::Notify {
                step: "notify".into(),
                to: vec![user("me")].into(),
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
    assert!(matches!(&fx[..], [Effect::Incident { step, .. }] if &**step == "review"));
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
    assert_eq!(
        fx,
        vec![
            close(1, "a", Gone::Withdrawn),
            close(2, "a", Gone::Withdrawn),
            close(3, "a", Gone::Withdrawn),
            Effect::Cancelled
        ]
    );
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
    // a task id is not a call id
    refused(
        &mut i,
        Event::service_ok(CallId(1)),
        "flowc::runtime::unknown-id",
    );
    refused(
        &mut i,
        Event::service_ok(CallId(77)),
        "flowc::runtime::unknown-id",
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
        json!({"amount": 5, "currency": "USD", "who": {"id": "x"}}),
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
        vec![
            close(2, "a", Gone::Approved),
            task("a", vec![(3, user("u3"))])
        ]
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
    let (i, _) = Instance::start(Arc::clone(&f), json!({"amount": 60000.0}), 42).unwrap();
    let p = i.pending();
    assert_eq!(p.len(), 1);
    assert_eq!((&*p[0].step, p[0].since), ("legal-review", 42));
    let route = &i.trace()[0];
    assert_eq!(route.route(), Some(Route::Rule(1)));
    let saved = serde_json::to_value(route).unwrap();
    assert_eq!((&saved["rule"], saved.get("byDefault")), (&json!(1), None));
    assert_eq!(
        route.condition.as_ref().map(|c| &*c.text),
        Some("amount > 50000.0")
    );
    let json = serde_json::to_value(i.trace()).unwrap();
    assert_eq!(
        json[1],
        json!({"step": "legal-review", "status": "pending", "assignees": [{"role": "legal"}], "from": 0, "enteredAt": 42})
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
    state.context = flowc::runtime::Context::from_json(json!({"n": "not an int"})).unwrap();
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
        vec![close(2, "a", Gone::Rejected), done(Outcome::Rejected)]
    );
    // sequence: later assignees have no task yet
    let f = flow(&USERS3.replace("MODE", "sequence"), "{}");
    let (mut i, _) = start(&f, json!({}));
    assert_eq!(
        i.apply(&reject("a", "u1"), 1).unwrap(),
        vec![close(1, "a", Gone::Rejected), done(Outcome::Rejected)]
    );
}

#[test]
fn explain_says_why_an_instance_waits() {
    let f = flow(
        "  - id: manager\n    type: approval\n    assignees: { role: manager }\n  - id: check\n    type: service-task\n    service: svc\n    skipCondition: amount < 100.0\n  - id: route\n    type: decision\n    rules:\n      - when: amount > 50000.0\n        goto: legal-review\n    default: done\n  - id: legal-review\n    type: approval\n    assignees: { role: legal }\n  - id: done\n    type: end\n    outcome: approved\n",
        "{ amount: double }",
    );
    let (mut i, _) = Instance::start(Arc::clone(&f), json!({"amount": 60000.0}), 0).unwrap();
    i.apply(&approve_as("manager", "wang", "manager"), 10)
        .unwrap();
    i.apply(&Event::service_ok(CallId(2)), 20).unwrap();
    assert_eq!(
        i.explain("legal-review").unwrap(),
        "`legal-review` is pending since t=20: waiting for role `legal` (task 3).
How it got there:
  - `manager` completed (t=0–10); approve by wang as manager at t=10
  - `check` completed (t=10–20); `amount < 100.0` (line 12, column 20) was false; service-ok by service at t=20
  - `route` completed (t=20–20) by rule 1; `amount > 50000.0` (line 16, column 15) was true
At the step:
  - `legal-review` pending (t=20)
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
    assert!(f.decision(f.step_index("d").unwrap()).unwrap().is_direct());
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

/// Probe q11e: a condition written as a block scalar is quoted without its last line
/// break, and placed at its first character, in the incident and in the trace.
#[test]
fn a_block_scalar_condition_is_quoted_as_written() {
    for (when, quoted, line) in [
        ("|\n          100 / n > 1", "100 / n > 1", 10),
        // probe q11f bug G: leading blank lines put the expression at the next key
        ("|\n\n          100 / n > 1", "100 / n > 1", 11),
        // probe q11f nit 3: a condition over two lines is quoted on one
        (
            "|\n          n >= 0 &&\n            100 / n > 1",
            "n >= 0 && 100 / n > 1",
            10,
        ),
    ] {
        let f = flow(
            &format!(
                "  - id: d\n    type: decision\n    rules:\n      - when: {when}\n        goto: e\n    default: e\n  - id: e\n    type: end\n    outcome: approved\n"
            ),
            "{ n: int }",
        );
        let (_, fx) = start(&f, json!({"n": 0}));
        assert_eq!(
            fx,
            vec![Effect::Incident {
                step: "d".into(),
                message: format!(
                    "decision failed in rule 1 `{quoted}` (line {line}, column 11): division by zero"
                )
            }],
            "{when}"
        );
    }
}

/// Probe item 3: a rule of a multi-rule decision that fails (a run-time error, or the
/// decision's one budget running out in it) is named the same way whichever evaluator
/// the host selected.
#[test]
fn both_paths_name_the_failing_rule_of_a_multi_rule_decision() {
    let steps = "  - id: d\n    type: decision\n    rules:\n      - when: li.exists(x, x < 0)\n        goto: e\n      - when: RULE2\n        goto: e\n      - when: n < 0\n        goto: e\n    default: e\n  - id: e\n    type: end\n    outcome: approved\n";
    let compiled = |rule2: &str, evaluator: Evaluator| {
        let text = format!(
            "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: t\ncontext: {{ n: int, li: list<int> }}\nsteps:\n{}",
            steps.replace("RULE2", rule2)
        );
        let options = Options {
            evaluator,
            ..Options::default()
        };
        Arc::new(compile(&SourceFile::new("t.yaml", text), &options).unwrap())
    };
    // 15,000 elements: each rule's comprehension costs 60,000 units on its own, so only
    // the decision's one budget of 100,000 runs out, in rule 2
    let zeros = vec![0; 15_000];
    for evaluator in [Evaluator::Direct, Evaluator::Sandbox] {
        for (rule2, ctx, error) in [
            (
                "100 / n > 1",
                json!({"n": 0, "li": [1]}),
                "division by zero",
            ),
            (
                "li.all(x, x >= 0)",
                json!({"n": 1, "li": zeros}),
                "the evaluation budget of 100,000 operations ran out",
            ),
        ] {
            let f = compiled(rule2, evaluator);
            let d = f.decision(f.step_index("d").unwrap()).unwrap();
            assert_eq!(d.is_direct(), evaluator == Evaluator::Direct);
            let (i, fx) = start(&f, ctx);
            assert_eq!(
                fx,
                vec![Effect::Incident {
                    step: "d".into(),
                    message: format!(
                        "decision failed in rule 2 `{rule2}` (line 11, column 15): {error}"
                    )
                }],
                "{evaluator:?}"
            );
            assert_eq!(trace(&i), ["d:error"], "{evaluator:?}");
        }
    }
}

/// At-least-once delivery: the same message twice is reported as a duplicate and
/// changes nothing; a different message with the same content is judged on its own.
#[test]
fn redelivered_events_are_duplicates() {
    let f = flow(&USERS3.replace("MODE", "all"), "{}");
    let (mut i, _) = start(&f, json!({}));
    let e = approve("a", "u1");
    assert_eq!(
        i.apply_once("msg-1", &e, 5).unwrap(),
        Applied::Effects(vec![close(1, "a", Gone::Approved)])
    );
    let before = i.state().clone();
    assert_eq!(
        i.apply_once("msg-1", &e, 6).unwrap(),
        Applied::Duplicate { at: 5 }
    );
    assert_eq!(i.state(), &before);
    // the same approval under a new message id is a stale answer, not a duplicate
    let err = i.apply_once("msg-2", &e, 6).unwrap_err();
    assert_eq!(
        flowc::diagnostic::ErrorCode::code(&err),
        "flowc::runtime::stale"
    );
    // ids survive a save and restore (they are the instance's own log)
    let text = serde_json::to_string(i.state()).unwrap();
    let mut back = Instance::restore(Arc::clone(&f), serde_json::from_str(&text).unwrap()).unwrap();
    assert_eq!(
        back.apply_once("msg-1", &e, 7).unwrap(),
        Applied::Duplicate { at: 5 }
    );
    assert_eq!(back.state().log.len(), 1);
    // a duplicate after the instance ended is still just a duplicate
    back.apply_once("msg-3", &approve("a", "u2"), 8).unwrap();
    back.apply_once("msg-4", &approve("a", "u3"), 9).unwrap();
    assert_eq!(back.status().label(), "approved");
    assert_eq!(
        back.apply_once("msg-3", &approve("a", "u2"), 10).unwrap(),
        Applied::Duplicate { at: 8 }
    );
    match back.apply(&approve("a", "zed"), 10).unwrap_err() {
        RuntimeError::Finished { status } => assert_eq!(
            status,
            Status::Completed {
                outcome: Outcome::Approved
            }
        ),
        other => panic!("{other:?}"),
    }
}

/// Every state below is one no event sequence can produce: restore refuses each.
#[test]
fn restore_refuses_every_state_no_event_sequence_produces() {
    let f = flow(
        "  - id: p\n    type: parallel\n    branches:\n      - steps: [ { id: x, type: approval, assignees: { users: [x1, x2] }, mode: all } ]\n      - steps: [ { id: y, type: approval, assignees: { user: yu } } ]\n  - id: after\n    type: approval\n    assignees: { user: z }\n",
        "{}",
    );
    let (mut i, _) = start(&f, json!({}));
    i.apply(&approve("x", "x1"), 1).unwrap();
    i.apply(&approve("y", "yu"), 2).unwrap();
    let good = serde_json::to_value(i.state()).unwrap();
    let restore = |v: &serde_json::Value| {
        Instance::restore(Arc::clone(&f), serde_json::from_value(v.clone()).unwrap())
    };
    let corrupt = |v: serde_json::Value, what: &str| match restore(&v) {
        Err(RuntimeError::CorruptState(m)) => m,
        other => panic!("{what}: {other:?}"),
    };
    assert!(restore(&good).is_ok());
    // an `all` step whose approved set was emptied
    let mut v = good.clone();
    v["tokens"][0]["wait"]["slots"][0]["approved"] = json!(false);
    let m = corrupt(v, "approvals emptied");
    assert!(
        m.contains("first difference at `tokens[0].wait.slots[0].approved`"),
        "{m}"
    );
    // a join whose done list was emptied
    let mut v = good.clone();
    v["joins"][0]["done"] = json!([false, false]);
    corrupt(v, "join emptied");
    // a dropped branch token
    let mut v = good.clone();
    v["tokens"] = json!([]);
    corrupt(v, "token dropped");
    // a duplicated token
    let mut v = good.clone();
    let t = v["tokens"][0].clone();
    v["tokens"].as_array_mut().unwrap().push(t);
    corrupt(v, "token duplicated");
    // completed, with a token still open
    let mut v = good.clone();
    v["status"] = json!({"state": "completed", "outcome": "approved"});
    corrupt(v, "completed with a token");
    // a logged event removed, or the trace edited
    let mut v = good.clone();
    v["log"].as_array_mut().unwrap().pop();
    corrupt(v, "log truncated");
    let mut v = good.clone();
    v["trace"][1]["status"] = json!("completed");
    corrupt(v, "trace edited");
    // a logged event that the flow refuses
    let mut v = good.clone();
    v["log"][0]["event"]["user"] = json!("mallory");
    let m = corrupt(v, "forged event");
    assert!(
        m.starts_with("logged event 1 (`approve` at t=1) is refused on replay"),
        "{m}"
    );
    // the version rewritten to another flow's: its step indices mean other steps
    let other = flow(
        "  - id: y\n    type: approval\n    assignees: { user: yu }\n  - id: x\n    type: approval\n    assignees: { users: [x1, x2] }\n  - id: p\n    type: end\n    outcome: approved\n",
        "{}",
    );
    let mut v = good.clone();
    v["version"] = serde_json::to_value(other.version()).unwrap();
    let state: InstanceState = serde_json::from_value(v).unwrap();
    assert!(matches!(
        Instance::restore(Arc::clone(&other), state),
        Err(RuntimeError::CorruptState(_))
    ));
    // another format
    let mut v = good.clone();
    v["format"] = json!(1);
    assert!(matches!(
        restore(&v),
        Err(RuntimeError::UnsupportedFormat { found: 1, .. })
    ));
    assert_eq!(
        flowc::diagnostic::ErrorCode::code(&restore(&v).unwrap_err()),
        "flowc::runtime::unsupported-format"
    );
    // the same content under another revision restores
    let mut v = good;
    v["version"]["revision"] = json!(7);
    assert!(restore(&v).is_ok());
}

/// `explain` lists only the visits on the path to the step, and the step's own acts,
/// errors and cancellation note.
#[test]
fn explain_follows_the_path_and_says_why_a_branch_was_cancelled() {
    let f = flow(
        "  - id: p\n    type: parallel\n    join: any\n    branches:\n      - steps: [ { id: x, type: approval, assignees: { user: xu }, allowAddSigner: true } ]\n      - steps: [ { id: y, type: approval, assignees: { user: yu } } ]\n  - id: after\n    type: approval\n    assignees: { user: z }\n",
        "{}",
    );
    let (mut i, _) = start(&f, json!({}));
    i.apply(&Event::add_signer("x", "xu", "helper"), 1).unwrap();
    i.apply(
        &Event::Approve {
            step: "y".into(),
            user: "yu".into(),
            role: None,
            task: Some(TaskId(2)),
            comment: Some("fine by me".into()),
        },
        2,
    )
    .unwrap();
    assert_eq!(
        i.explain("x").unwrap(),
        "`x` is cancelled (t=2).
How it got there:
  - `p` completed (t=0–2)
At the step:
  - `x` cancelled (t=0–2); add-signer by xu (helper) at t=1; branch 2 finished first
"
    );
    assert_eq!(
        i.explain("after").unwrap(),
        "`after` is pending since t=2: waiting for user `z` (task 4).
How it got there:
  - `p` completed (t=0–2)
At the step:
  - `after` pending (t=2)
"
    );
    assert_eq!(
        i.explain("y").unwrap(),
        "`y` is completed (t=2).
How it got there:
  - `p` completed (t=0–2)
At the step:
  - `y` completed (t=0–2); approve by yu (fine by me) at t=2
"
    );
}

/// Found by a stranger's probe: blank ids and names, one id for two events, answers
/// naming a task of another step, service answers before the call is made, late
/// answers after the end, times out of range.
#[test]
fn delivery_ids_names_and_times_are_strict() {
    let f = flow(&USERS3.replace("MODE", "all"), "{}");
    let (mut i, _) = start(&f, json!({}));
    let code = |r: Result<Applied, RuntimeError>| {
        flowc::diagnostic::ErrorCode::code(&r.unwrap_err()).to_owned()
    };
    // a blank delivery id is refused, not remembered
    assert_eq!(
        code(i.apply_once("", &approve("a", "u1"), 1)),
        "flowc::runtime::empty-name"
    );
    assert_eq!(
        code(i.apply_once("  ", &approve("a", "u1"), 1)),
        "flowc::runtime::empty-name"
    );
    assert!(i.state().log.is_empty());
    // one id for two different events: the second is an error, never silently dropped
    i.apply_once("m1", &approve("a", "u1"), 1).unwrap();
    match i.apply_once("m1", &approve("a", "u2"), 2).unwrap_err() {
        RuntimeError::IdReused { id, at, .. } => assert_eq!((id.as_str(), at), ("m1", 1)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        code(i.apply_once("m1", &approve("a", "u3"), 2)),
        "flowc::runtime::id-reused"
    );
    // the same event under the same id is a duplicate
    assert_eq!(
        i.apply_once("m1", &approve("a", "u1"), 2).unwrap(),
        Applied::Duplicate { at: 1 }
    );
    // a blank user never acts
    refused(&mut i, approve("a", " "), "flowc::runtime::empty-name");
    // times beyond 2^53 - 1 seconds are refused (a timer could not count from them)
    refused_at(
        &mut i,
        approve("a", "u2"),
        flowc::limits::Limits::MAX_TIME + 1,
        "flowc::runtime::time-out-of-range",
    );
    assert!(Instance::start(Arc::clone(&f), json!({}), u64::MAX).is_err());
    // a late answer after the end is stale, like any other late answer
    i.apply(&approve("a", "u2"), 3).unwrap();
    i.apply(&approve("a", "u3"), 4).unwrap();
    assert_eq!(i.status().label(), "approved");
    refused(&mut i, approve("a", "u2"), "flowc::runtime::stale");
    refused(&mut i, approve("a", "stranger"), "flowc::runtime::finished");
    assert_eq!(
        i.apply(&approve("a", "stranger"), 9)
            .unwrap_err()
            .to_string(),
        "the instance is approved; it takes no more events"
    );
}

#[test]
fn signers_and_expression_assignees_are_never_blank() {
    let f = flow(
        "  - id: a\n    type: approval\n    assignees: { users: [u1] }\n    allowAddSigner: true\n    mode: all\n",
        "{}",
    );
    let (mut i, _) = start(&f, json!({}));
    refused(
        &mut i,
        Event::add_signer("a", "u1", ""),
        "flowc::runtime::empty-name",
    );
    let f = flow(
        "  - id: a\n    type: approval\n    assignees: { expr: signers }\n    mode: all\n",
        "{ signers: list<string> }",
    );
    let (i, fx) = start(&f, json!({"signers": ["", "a"]}));
    assert_eq!(
        fx,
        vec![Effect::Incident {
            step: "a".into(),
            message: "assignee expression `signers` (line 8, column 24) gave an empty user name"
                .into()
        }]
    );
    assert_eq!(
        i.state().status.describe(),
        "stopped on an incident",
        "messages say it in words"
    );
}

#[test]
fn answers_name_the_right_step_and_calls_are_answered_after_they_are_made() {
    let f = flow(
        "  - id: s\n    type: service-task\n    service: svc\n    retry: { max: 1, backoff: 30s }\n  - id: a\n    type: approval\n    assignees: { user: u }\n",
        "{}",
    );
    let (mut i, _) = start(&f, json!({}));
    let fx = i
        .apply(&Event::service_error(CallId(1), "down"), 10)
        .unwrap();
    assert_eq!(
        fx,
        vec![Effect::CallService {
            call: CallId(2),
            step: "s".into(),
            service: "svc".into(),
            attempt: 2,
            delay_secs: 30,
            not_before: 40,
            timeout_secs: None
        }]
    );
    // the retry is made at t=40: an answer before it is early
    refused_at(
        &mut i,
        Event::service_ok(CallId(2)),
        39,
        "flowc::runtime::not-due",
    );
    i.apply(&Event::service_ok(CallId(2)), 40).unwrap();
    // a task id of another step is named as such
    match i
        .apply(
            &Event::Approve {
                step: "s".into(),
                user: "u".into(),
                role: None,
                task: Some(TaskId(3)),
                comment: None,
            },
            41,
        )
        .unwrap_err()
    {
        RuntimeError::UnknownId { what } => {
            assert_eq!(what, "task 3 at step `s` (task 3 belongs to step `a`)");
        }
        other => panic!("{other:?}"),
    }
    let e = i.apply(&Event::service_ok(CallId(1)), 41).unwrap_err();
    assert_eq!(
        e.to_string(),
        "call 1 of step `s` is no longer live: its answer was applied at t=10"
    );
}

/// A run-time error of an assignee expression (and of a notify step's `to`) says where
/// the expression is written, as a failing decision rule does (issue 11, B7).
#[test]
fn assignee_expression_errors_carry_line_and_column() {
    let f = flow(
        "  - id: sign\n    type: approval\n    assignees: { expr: 'approvers[3]' }\n",
        "{ approvers: list<string> }",
    );
    let (i, fx) = start(&f, json!({"approvers": ["张三"]}));
    assert_eq!(
        fx,
        vec![Effect::Incident {
            step: "sign".into(),
            message: "assignee expression `approvers[3]` (line 8, column 25) failed: index 3 out of range".into()
        }]
    );
    assert_eq!(i.state().status.describe(), "stopped on an incident");
    let f = flow(
        "  - id: tell\n    type: notify\n    to: { expr: 'approvers[3]' }\n    message: hi\n    next: done\n  - id: done\n    type: end\n    outcome: approved\n",
        "{ approvers: list<string> }",
    );
    let (_, fx) = start(&f, json!({"approvers": ["张三"]}));
    assert_eq!(
        fx,
        vec![Effect::Incident {
            step: "tell".into(),
            message: "assignee expression `approvers[3]` (line 8, column 18) failed: index 3 out of range".into()
        }]
    );
}

/// Issue 11: what an assignee expression's value must be is one definition
/// (`compile::user_ids`, its `AssigneeProblem`), and the incident says which problem,
/// one kind each: neither a string nor a list, a list holding a non-string, a blank
/// name, a list of none.
#[test]
fn an_assignee_expression_that_gives_no_user_ids_is_an_incident_naming_why() {
    let context = "{ ok: bool, level: int, dept: string, names: list<string> }";
    for (e, ctx, gave) in [
        (
            "ok ? dept : dyn(level)",
            json!({"ok": false, "level": 3, "dept": "d", "names": []}),
            "int, not a string or list of strings",
        ),
        (
            "[dept, ok ? dept : dyn(level)]",
            json!({"ok": false, "level": 3, "dept": "d", "names": []}),
            "a list holding int",
        ),
        (
            "dept",
            json!({"ok": true, "level": 3, "dept": " \t", "names": []}),
            "an empty user name",
        ),
        (
            "names",
            json!({"ok": true, "level": 3, "dept": "d", "names": []}),
            "an empty list",
        ),
        // a zero-width space shows nothing (probe q11e nit 5), and a name with white
        // space around it is not the user it shows (decision 127)
        (
            "names",
            json!({"ok": true, "level": 3, "dept": "d", "names": ["a", "\u{200b}"]}),
            "an empty user name",
        ),
        (
            "dept",
            json!({"ok": true, "level": 3, "dept": "li ", "names": []}),
            "a user name with white space or a character that shows nothing at an end",
        ),
    ] {
        let f = flow(
            &format!("  - id: a\n    type: approval\n    assignees: {{ expr: '{e}' }}\n"),
            context,
        );
        let (i, fx) = start(&f, ctx);
        assert_eq!(
            fx,
            vec![Effect::Incident {
                step: "a".into(),
                message: format!("assignee expression `{e}` (line 8, column 25) gave {gave}")
            }],
            "{e}"
        );
        assert_eq!(trace(&i), ["a:error"], "{e}");
    }
    // the same values in order give their user ids, each once
    let f = flow(
        "  - id: a\n    type: approval\n    assignees: { expr: '[dept, ok ? dept : dyn(level)]' }\n    mode: all\n",
        context,
    );
    let (_, fx) = start(
        &f,
        json!({"ok": true, "level": 3, "dept": "d", "names": []}),
    );
    assert_eq!(fx, vec![task("a", vec![(1, user("d"))])]);
}

/// Probe q11h (found by h15f): a `first` decision of a thousand rules or more made the
/// sandbox's program an `else if` chain, which Rhai's optimizer walked recursively
/// until the stack overflowed (an abort, not an error). Each rule is now a statement of
/// its own: a 3,000-rule routing table compiles and routes alike on both paths.
#[test]
fn a_first_decision_of_thousands_of_rules_compiles_and_routes_on_both_paths() {
    let mut steps =
        String::from("  - id: d\n    type: decision\n    hitPolicy: first\n    rules:\n");
    for i in 0..3000 {
        let to = if i == 2999 { "b" } else { "a" };
        steps.push_str(&format!("      - when: 'n == {i}'\n        goto: {to}\n"));
    }
    steps.push_str(
        "    default: c\n  - id: a\n    type: end\n    outcome: approved\n  - id: b\n    type: end\n    outcome: rejected\n  - id: c\n    type: end\n    outcome: approved\n",
    );
    let text = format!(
        "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: t\ncontext: {{ n: int }}\nsteps:\n{steps}"
    );
    for evaluator in [Evaluator::Direct, Evaluator::Sandbox] {
        let options = Options {
            evaluator,
            ..Options::default()
        };
        let f = Arc::new(compile(&SourceFile::new("t.yaml", text.clone()), &options).unwrap());
        for (n, want) in [
            (0, ["d:completed#1", "a:completed"]),
            (1500, ["d:completed#1501", "a:completed"]),
            (2999, ["d:completed#3000", "b:completed"]),
            (3000, ["d:completed", "c:completed"]),
        ] {
            let (i, _) = start(&f, json!({ "n": n }));
            assert_eq!(trace(&i), want, "{evaluator:?} n={n}");
        }
    }
}
