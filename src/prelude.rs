//! What an approval engine imports: `use flowc::prelude::*;`.
//!
//! The registry and its store, instances with their events and effects, the ids that
//! tie answers to what asked for them, and the errors with their stable codes
//! ([`ErrorCode::code`], no miette needed).

pub use crate::compile::{CompiledFlow, Options, VersionId, compile};
pub use crate::diagnostic::{Diagnostic, Diagnostics, ErrorCode, Severity};
pub use crate::model::{Mode, Outcome};
pub use crate::registry::{FlowHandle, Registry, RegistryError};
pub use crate::runtime::{
    Act, Applied, Assignee, Auto, CallId, ContextError, Effect, Event, Gone, Instance,
    InstanceState, Outstanding, Pending, RuntimeError, STATE_FORMAT, Status, TaskId, TaskRef,
    TimerId, Visit, VisitStatus,
};
pub use crate::source::{DirSource, SourceEvent};
pub use crate::span::SourceFile;
pub use crate::store::{DirStore, StoreError, VersionStore};
