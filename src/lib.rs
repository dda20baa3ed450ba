#![forbid(unsafe_code)]
//! # flowc — approval flows as checked, compiled, sandboxed programs
//!
//! A flow file goes through one stage per module:
//!
//! 1. [`load`] — YAML with spans (saphyr events), bounded, validated against
//!    `schemas/approval-flow.schema.json`.
//! 2. [`model`] — the typed [`model::Flow`] with spans on every value.
//! 3. [`expr`] — the condition language (a CEL subset): parse, type-check, lower to the
//!    IR (direct evaluation) and generate Rhai, both from one overload table.
//! 4. [`sandbox`] — the one Rhai engine, with every bound set explicitly.
//! 5. [`graph`] — the step graph and its checks.
//! 6. [`compile`] — ties the stages together into a [`compile::CompiledFlow`].
//! 7. [`runtime`] — instances: a deterministic, I/O-free state machine (events in,
//!    effects out, a trace of every visit), serialisable and pinned to its version.
//! 8. [`store`] — durable version stores (a directory; etcd with feature `etcd`): the source of
//!    every published version by content hash, revisions that survive restarts, holds.
//! 9. [`registry`] — compiled versions swapped atomically (arc-swap), rollback,
//!    retention, canary releases; restart-safe with a store.
//! 10. [`source`] — a watched directory feeding a registry.
//!
//! [`diff`] compares two versions of a flow (the audit view of a change). Every bound
//! that any stage enforces is declared once, in [`limits`].
//!
//! Each stage imports only those before it (a test, `tests/architecture.rs`, reads the
//! `use crate::` paths and fails on a cycle or an import against this order):
//! `span` ← `codes` ← `diagnostic` ← `limits` ← `load` ← `expr` ← `model` ← `sandbox`
//! ← `graph` ← `compile` ← `diff` ← `runtime` ← `store` ← `registry` ← `source` ←
//! `prelude`.
//!
//! ```
//! let src = flowc::span::SourceFile::new("leave.yaml", r#"
//! apiVersion: flowc/v1
//! kind: ApprovalFlow
//! id: leave
//! context: { days: int }
//! steps:
//!   - id: manager
//!     type: approval
//!     assignees: { role: manager }
//!     skipCondition: days < 2
//! "#);
//! let flow = flowc::compile::compile(&src, &flowc::compile::Options::default()).unwrap();
//! assert_eq!(flow.id(), "leave");
//!
//! // bind the context once per instance, then evaluate as often as needed
//! let mut ctx = flowc::sandbox::Bindings::new();
//! ctx.set(flow.vars().index("days").unwrap(), &flowc::expr::Value::Int(1));
//! let skip = flow.skip_condition(flow.step_index("manager").unwrap()).unwrap();
//! assert!(skip.eval(flow.sandbox(), &mut ctx).unwrap());
//! ```
//!
//! Every condition is compiled twice from one overload table: lowered to a typed IR
//! that is evaluated directly (the default), and to a sandboxed Rhai program, which a
//! host can select instead (`compile::Options::evaluator`) and which the tests hold the
//! direct path equal to (see `BENCHMARKS.md` and `docs/decisions.md`).
//!
//! # Feature flags
//! - `etcd`: the etcd source and version store, the etcd commands, metrics and tracing
//!   (needs `protoc` to build).

pub mod codes;
pub mod compile;
pub mod diagnostic;
pub mod diff;
pub mod expr;
pub mod graph;
pub mod limits;
pub mod load;
pub mod model;
pub mod prelude;
pub mod registry;
pub mod runtime;
pub mod sandbox;
pub mod source;
pub mod span;
pub mod store;

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
