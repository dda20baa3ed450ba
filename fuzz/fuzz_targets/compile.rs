//! The whole pipeline on arbitrary bytes: load, schema, model, conditions, graph, codegen.
//! Every flow that compiles is then evaluated under two simple contexts: the direct
//! evaluator must agree with the Rhai program on every skip condition, decision and
//! assignee expression, and instances driven to the end (all approve, all reject) must
//! not panic and must survive a serde round trip.
//! Run on stable: `cargo fuzz run -s none compile`.
#![no_main]

use std::sync::{Arc, OnceLock};

use flowc::compile::AssigneeSlot;
use flowc::expr::{Duration, Timestamp};
use flowc::expr::{Type, Value};
use flowc::sandbox::Bindings;
use libfuzzer_sys::fuzz_target;

fn sample(ty: &Type, n: i64) -> Value {
    match ty {
        Type::Bool => Value::Bool(n != 0),
        Type::Int => Value::Int(n),
        Type::Uint => Value::Uint(n.unsigned_abs()),
        Type::Double => Value::Double(n as f64 * 1.5),
        Type::String => Value::string(if n == 0 { "" } else { "finance" }),
        Type::Timestamp => Value::Timestamp(Timestamp { secs: n * 86_400, nanos: 0 }),
        Type::Duration => Value::Duration(Duration { nanos: i128::from(n) * 1_000_000_000 }),
        Type::List(t) => Value::List(Arc::new(if n == 0 { vec![] } else { vec![sample(t, n)] })),
        Type::Object(o) => Value::Map(Arc::new(
            o.fields
                .iter()
                .filter(|(_, f)| n != 0 || !f.optional)
                .map(|(k, f)| (Value::string(k), sample(&f.ty, n)))
                .collect(),
        )),
        _ => Value::Map(Arc::new(vec![])),
    }
}

fuzz_target!(|data: &[u8]| {
    static OPTS: OnceLock<flowc::compile::Options> = OnceLock::new();
    let opts = OPTS.get_or_init(flowc::compile::Options::default);
    let Ok(file) = flowc::load::source_from_bytes("fuzz.yaml", data.to_vec()) else {
        return;
    };
    let Ok(flow) = flowc::compile::compile(&file, opts) else {
        return;
    };
    let flow = Arc::new(flow);
    let graph = flowc::graph::Graph::build(flow.flow());
    let sb = flow.sandbox();
    for n in [0, 7] {
        let mut b = Bindings::new();
        for (_, i, ty) in flow.vars().iter() {
            b.set(i, &sample(ty, n));
        }
        for (index, s) in graph.steps.iter().enumerate() {
            let id = s.step.id.value.as_str();
            if let Some(c) = flow.skip_condition(index) {
                let (direct, rhai) = (c.eval(sb, &mut b), c.eval_sandboxed(sb, &mut b));
                assert_eq!(direct.is_ok(), rhai.is_ok(), "{id}: {direct:?} vs {rhai:?}");
                if let (Ok(x), Ok(y)) = (direct, rhai) {
                    assert_eq!(x, y, "{id}");
                }
            }
            for key in [AssigneeSlot::Step(index), AssigneeSlot::Escalation(index)] {
                if let Some(e) = flow.assignee_expression(key) {
                    let direct = e.eval(sb, &mut b).map(|v| v.to_json());
                    let rhai = e.eval_sandboxed(sb, &mut b).map(|v| v.to_json());
                    assert_eq!(direct.is_ok(), rhai.is_ok(), "{key:?}: {direct:?} vs {rhai:?}");
                    if let (Ok(x), Ok(y)) = (direct, rhai) {
                        assert_eq!(x, y, "{key:?}");
                    }
                }
            }
            if let Some(d) = flow.decision(index) {
                let (direct, rhai) = (d.eval(sb, &mut b), d.eval_sandboxed(sb, &mut b));
                assert_eq!(direct.is_ok(), rhai.is_ok(), "{id}: {direct:?} vs {rhai:?}");
                if let (Ok(x), Ok(y)) = (direct, rhai) {
                    assert_eq!(x, y, "{id}");
                }
            }
        }
        // the runtime: a context of the same samples, driven to the end both ways
        let ctx = serde_json::Value::Object(
            flow.vars()
                .iter()
                .map(|(name, _, ty)| (name.to_owned(), sample(ty, n).to_json()))
                .collect(),
        );
        for auto in [flowc::runtime::Auto::Approve, flowc::runtime::Auto::Reject] {
            let Ok((mut inst, _)) = flowc::runtime::Instance::start(Arc::clone(&flow), &ctx, 0)
            else {
                continue;
            };
            inst.auto_answer(auto, 0, 200).expect("automatic answers fit the state");
            let text = serde_json::to_string(inst.state()).expect("serialises");
            let state = serde_json::from_str(&text).expect("deserialises");
            let back = flowc::runtime::Instance::restore(Arc::clone(&flow), state).expect("restores");
            assert_eq!(back.state(), inst.state());
        }
    }
});
