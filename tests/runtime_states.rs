//! States and effects saved by an earlier build (format 3, before the runtime shared its
//! strings): they restore, and a replay today writes them byte for byte.
//!
//! `tests/fixtures/states/<name>.run.json` holds a context, the events applied (each
//! `[at, delivery id or null, event]`) and the effects of the start and of every event;
//! `<name>.state.json` the state after the last event, both pretty-printed by
//! `serde_json` as that build wrote them.
#![allow(
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: failing loudly is the point"
)]

use std::sync::Arc;

use flowc::compile::{CompiledFlow, Options, compile};
use flowc::runtime::{Applied, Event, Instance, InstanceState};
use flowc::span::SourceFile;

const SCENARIOS: [&str; 4] = [
    "approved",
    "escalated-then-retried",
    "risk-review-rejected",
    "cancelled",
];

fn expense() -> Arc<CompiledFlow> {
    Arc::new(
        compile(
            &SourceFile::new(
                "expense.yaml",
                include_str!("../examples/expense-reimbursement.yaml"),
            ),
            &Options::default(),
        )
        .unwrap(),
    )
}

fn fixture(name: &str, kind: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/states/{name}.{kind}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn pretty<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap() + "\n"
}

#[test]
fn saved_states_restore_and_write_back_byte_for_byte() {
    let flow = expense();
    for name in SCENARIOS {
        let saved = fixture(name, "state");
        let state: InstanceState = serde_json::from_str(&saved).unwrap();
        let inst = Instance::restore(Arc::clone(&flow), state.clone())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(inst.state(), &state, "{name}");
        assert_eq!(pretty(inst.state()), saved, "{name}: the restored state");
    }
}

#[test]
fn a_replay_writes_the_saved_effects_and_state_byte_for_byte() {
    let flow = expense();
    for name in SCENARIOS {
        let run: serde_json::Value = serde_json::from_str(&fixture(name, "run")).unwrap();
        let saved = run["effects"].as_array().unwrap();
        let (mut inst, fx) = Instance::start(Arc::clone(&flow), &run["context"], 0).unwrap();
        let mut effects = vec![fx];
        for e in run["events"].as_array().unwrap() {
            let at = e[0].as_u64().unwrap();
            let event: Event = serde_json::from_value(e[2].clone()).unwrap();
            effects.push(match e[1].as_str() {
                Some(id) => match inst.apply_once(id, &event, at).unwrap() {
                    Applied::Effects(fx) => fx,
                    other => panic!("{name}: {other:?}"),
                },
                None => inst.apply(&event, at).unwrap(),
            });
        }
        assert_eq!(effects.len(), saved.len(), "{name}");
        for (n, (fx, want)) in effects.iter().zip(saved).enumerate() {
            assert_eq!(
                serde_json::to_string(fx).unwrap(),
                serde_json::to_string(want).unwrap(),
                "{name}: effects of step {n}"
            );
        }
        assert_eq!(pretty(inst.state()), fixture(name, "state"), "{name}");
    }
}
