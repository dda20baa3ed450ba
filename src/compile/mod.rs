//! Stage 6: every stage in order → a [`CompiledFlow`], with all diagnostics of the file.
//!
//! The pipeline is here; each kind of compiled expression has its own file:
//! `conditions` (skip conditions), `decisions` (a decision's rules, one program),
//! `assignees` (assignee and recipient expressions). `options` and `version` hold what
//! a host passes in and what identifies the result; `many` checks files together.

use std::sync::Arc;

use crate::diagnostic::Diagnostics;
use crate::expr::{Env, ExprSource, Patterns, VarTable};
use crate::graph::{self, Graph, GraphError, StepIndex, StepNode, Target};
use crate::load;
use crate::model::{self, Flow, StepKind};
use crate::sandbox::Sandbox;
use crate::span::SourceFile;

mod assignees;
mod conditions;
mod decisions;
mod many;
mod options;
mod shared;
mod version;

pub use assignees::{AssigneeProblem, AssigneeSlot, Expression, UserIds, user_ids};
pub use conditions::Condition;
pub use decisions::CompiledDecision;
pub use many::{CheckError, check_many};
pub use options::{Evaluator, Options};
pub use shared::{Assignee, ConditionText, StepStrings};
pub use version::{VersionId, stable_hash};

/// A flow that passed every check, with its sandboxed programs.
#[derive(Debug)]
pub struct CompiledFlow {
    flow: Flow,
    /// Shared: every instance's state names its version by this one allocation.
    version: Arc<VersionId>,
    index: StepIndex,
    /// Each step's strings, by step index, shared by every instance's trace and effects.
    strings: Vec<StepStrings>,
    vars: VarTable,
    /// The slot of each declared context field, in declaration order.
    context_slots: Vec<Option<usize>>,
    /// The name of each declared context field, in declaration order, shared by every
    /// instance's context.
    context_names: Arc<[Arc<str>]>,
    /// Whether some compiled program of the flow reads each declared context field, in
    /// declaration order (an instance converts only those to CEL values).
    context_read: Vec<bool>,
    sandbox: Arc<Sandbox>,
    /// Each step's skip condition, by step index (see [`CompiledFlow::nodes`]).
    skip: Vec<Option<Condition>>,
    /// Each decision step's compiled rules, by step index.
    decisions: Vec<Option<CompiledDecision>>,
    /// Each step's compiled assignee (or recipient) expression and its `escalateTo`
    /// expression, by step index: found by the step's resolved index, never hashed.
    assignees: Vec<StepAssignees>,
    warnings: Diagnostics,
    evaluator: Evaluator,
}

impl CompiledFlow {
    /// The flow id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.flow.id.value
    }

    /// The checked model.
    #[must_use]
    pub fn flow(&self) -> &Flow {
        &self.flow
    }

    /// Context variables and their Rhai names.
    #[must_use]
    pub fn vars(&self) -> &VarTable {
        &self.vars
    }

    /// The variable slot of each field of the flow's `context`, in declaration order
    /// (binding a context walks the fields, never looks a name up).
    #[must_use]
    pub fn context_slots(&self) -> &[Option<usize>] {
        &self.context_slots
    }

    /// Whether a program of the flow (a skip condition, decision rule or assignee
    /// expression) reads each field of the flow's `context`, in declaration order: an
    /// instance binds only those (conditions compiled later, with
    /// [`CompiledFlow::compile_condition`], evaluate over [`crate::runtime::context::bind`],
    /// which binds every field).
    #[must_use]
    pub fn context_read(&self) -> &[bool] {
        &self.context_read
    }

    /// The name of each field of the flow's `context`, in declaration order, shared.
    #[must_use]
    pub fn context_names(&self) -> &[Arc<str>] {
        &self.context_names
    }

    /// [`CompiledFlow::context_names`], as one shared list (what a bound context holds:
    /// one reference for all its names).
    pub(crate) fn shared_context_names(&self) -> &Arc<[Arc<str>]> {
        &self.context_names
    }

    /// The sandbox the programs run in.
    #[must_use]
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// The skip condition of the step at an index of [`CompiledFlow::nodes`] (an id
    /// resolves to its index once, with [`CompiledFlow::step_index`]).
    #[must_use]
    pub fn skip_condition(&self, step: usize) -> Option<&Condition> {
        self.skip.get(step).and_then(Option::as_ref)
    }

    /// The compiled rules of the decision step at an index of [`CompiledFlow::nodes`].
    #[must_use]
    pub fn decision(&self, step: usize) -> Option<&CompiledDecision> {
        self.decisions.get(step).and_then(Option::as_ref)
    }

    /// A compiled assignee (or `notify` recipient, or `escalateTo`) expression.
    #[must_use]
    pub fn assignee_expression(&self, slot: AssigneeSlot) -> Option<&Expression> {
        let s = self.assignees.get(slot.step())?;
        match slot {
            AssigneeSlot::Step(_) => s.step.as_ref(),
            AssigneeSlot::Escalation(_) => s.escalation.as_ref(),
        }
    }

    /// Warnings found while compiling.
    #[must_use]
    pub fn warnings(&self) -> &Diagnostics {
        &self.warnings
    }

    /// The version this compiled content is (revision 0 until a registry publishes it).
    #[must_use]
    pub fn version(&self) -> &VersionId {
        &self.version
    }

    /// The version, shared (what an instance's state holds).
    #[must_use]
    pub fn shared_version(&self) -> &Arc<VersionId> {
        &self.version
    }

    /// Stamps the registry's revision (done once, before the flow is shared).
    #[must_use]
    pub fn with_revision(mut self, revision: u64) -> Self {
        Arc::make_mut(&mut self.version).revision = revision;
        self
    }

    /// The shared strings of the step at an index of [`CompiledFlow::nodes`].
    #[must_use]
    pub fn strings(&self, step: usize) -> Option<&StepStrings> {
        self.strings.get(step)
    }

    /// The resolved step index the graph stage built.
    #[must_use]
    pub fn index(&self) -> &StepIndex {
        &self.index
    }

    /// Every step's resolved node, in document order (nested steps after their parallel).
    #[must_use]
    pub fn nodes(&self) -> &[StepNode] {
        self.index.nodes()
    }

    /// The index of a step by id.
    #[must_use]
    pub fn step_index(&self, id: &str) -> Option<usize> {
        self.index.step_index(id)
    }

    /// The step at an index of [`CompiledFlow::nodes`].
    #[must_use]
    pub fn step(&self, index: usize) -> Option<&model::Step> {
        self.index.step(&self.flow, index)
    }

    /// The first target of the flow.
    #[must_use]
    pub fn entry(&self) -> Target {
        self.index.entry()
    }

    /// Compiles a condition against this flow's context (canary selectors and the like).
    ///
    /// # Errors
    /// The condition's diagnostics (against a file named `name` holding just the text).
    pub fn compile_condition(&self, name: &str, text: &str) -> Result<Condition, Diagnostics> {
        let file = SourceFile::new(name, text);
        let src = ExprSource::detached(text);
        let mut ctx = Ctx {
            file: &file,
            env: self.vars.env(),
            vars: self.vars.clone(),
            sandbox: &self.sandbox,
            evaluator: self.evaluator,
            diags: Diagnostics::new(),
            unreadable_context: false,
            patterns: Patterns::new(),
        };
        let checked = ctx.condition(&src);
        let cond = checked.and_then(|c| ctx.compile_checked(&c.expr, src.span));
        match cond {
            Some(c) if !ctx.diags.has_errors() => Ok(c),
            _ => Err(ctx.diags),
        }
    }
}

struct Ctx<'a> {
    file: &'a Arc<SourceFile>,
    env: Env,
    vars: VarTable,
    sandbox: &'a Sandbox,
    evaluator: Evaluator,
    diags: Diagnostics,
    unreadable_context: bool,
    /// The literal `matches` patterns of the flow, each compiled once and shared by
    /// the direct forms and the sandbox programs.
    patterns: Patterns,
}

/// A graph diagnostic that only reflects what error recovery left out of the model.
fn recovered_away(e: &GraphError, recovery: &model::Recovery) -> bool {
    match e {
        GraphError::UnknownStep { id, .. } => recovery.dropped_steps.contains(id),
        GraphError::Unreachable { .. }
        | GraphError::NoEnd { .. }
        | GraphError::AutomaticCycle { .. } => recovery.incomplete_graph,
        _ => false,
    }
}

/// Compiles one source file: load, schema, model, conditions, graph checks, codegen.
///
/// # Errors
/// All diagnostics of the file (errors and warnings) when there is at least one error.
#[expect(
    clippy::too_many_lines,
    reason = "the pipeline, stage by stage, kept in one place"
)]
pub fn compile(file: &Arc<SourceFile>, options: &Options) -> Result<CompiledFlow, Diagnostics> {
    let (root, schema_errors) = load::load_recovering(file, &options.load)?;
    // neither schema nor model errors stop the later checks: every part that could be
    // read is checked in the same pass (see `Recovery`)
    let (flow, model_diags, recovery) = model::build_recovering(file, &root);
    let schema_spans: Vec<crate::span::Span> = schema_errors
        .iter()
        .filter(|e| !e.leaves_values_readable())
        .map(load::SchemaError::span)
        .collect();
    let mut diags = Diagnostics::new();
    for e in schema_errors {
        diags.add(file, e);
    }
    let mut later = model_diags;
    let ctx_type = flow.context_type();
    let vars = VarTable::from_context(&ctx_type);
    let mut ctx = Ctx {
        file,
        env: vars.env(),
        vars,
        sandbox: &options.sandbox,
        evaluator: options.evaluator,
        diags: Diagnostics::new(),
        unreadable_context: recovery.unreadable_context,
        patterns: Patterns::new(),
    };
    for (path, values) in flow.string_enums() {
        ctx.env.declare_enum(&path, values);
    }
    let g = Graph::build(&flow);
    let steps = g.steps.len();
    let mut skip: Vec<Option<Condition>> = Vec::with_capacity(steps);
    let mut decisions: Vec<Option<CompiledDecision>> = Vec::with_capacity(steps);
    let mut assignees: Vec<StepAssignees> = Vec::with_capacity(steps);
    for (step_index, info) in g.steps.iter().enumerate() {
        let s = info.step;
        skip.push(s.skip.as_ref().and_then(|src| ctx.skip_condition(src)));
        decisions.push(match &s.kind {
            StepKind::Decision {
                hit_policy, rules, ..
            } => ctx.decision(&g, &flow, step_index, s.type_span, *hit_policy, rules),
            _ => None,
        });
        assignees.push(match &s.kind {
            StepKind::Approval {
                assignees: a,
                escalate_to,
                ..
            } => StepAssignees {
                step: ctx.assignee_expr(a),
                escalation: escalate_to.as_ref().and_then(|e| ctx.assignee_expr(e)),
            },
            StepKind::Notify { to, .. } => StepAssignees {
                step: ctx.assignee_expr(to),
                escalation: None,
            },
            _ => StepAssignees::default(),
        });
    }
    // conditions of steps the model could not read are still checked
    for src in &recovery.unread_conditions {
        ctx.condition(src);
    }
    let graph_errors = graph::check(&g);
    // an unknown reference is an edge missing from the graph: what cannot be reached
    // without it is a consequence of that error, not another problem
    let missing_edge = graph_errors
        .iter()
        .any(|e| matches!(e, GraphError::UnknownStep { .. }));
    for e in graph_errors {
        if recovered_away(&e, &recovery)
            || (missing_edge
                && matches!(e, GraphError::Unreachable { .. } | GraphError::NoEnd { .. }))
        {
            continue;
        }
        ctx.diags.add(file, e);
    }
    let index = g.into_index();
    later.extend(ctx.diags);
    // a problem the schema reported is not reported again by a later stage
    for d in later {
        let inside_schema_error = d.span().is_some_and(|s| {
            schema_spans
                .iter()
                .any(|e| e.start <= s.start && s.end <= e.end)
        });
        if !inside_schema_error {
            diags.push(d);
        }
    }
    diags.sort();
    if diags.has_errors() {
        return Err(diags);
    }
    let hash = stable_hash(&[env!("CARGO_PKG_VERSION").as_bytes(), file.text().as_bytes()]);
    let context_slots: Vec<Option<usize>> = flow
        .context
        .iter()
        .map(|f| ctx.vars.index(&f.name.value))
        .collect();
    let context_names = flow
        .context
        .iter()
        .map(|f| Arc::from(f.name.value.as_str()))
        .collect();
    let strings = (0..index.nodes().len())
        .filter_map(|i| index.step(&flow, i))
        .map(|s| StepStrings::new(&flow, s))
        .collect();
    let context_read = context_read(&context_slots, &skip, &decisions, &assignees);
    Ok(CompiledFlow {
        version: Arc::new(VersionId {
            flow: flow.id.value.clone(),
            revision: 0,
            hash: format!("{hash:016x}"),
        }),
        index,
        strings,
        flow,
        context_slots,
        context_names,
        context_read,
        vars: ctx.vars,
        sandbox: Arc::clone(&options.sandbox),
        evaluator: options.evaluator,
        skip,
        decisions,
        assignees,
        warnings: diags,
    })
}

/// A step's compiled assignee expressions (none for a step whose assignees are names).
#[derive(Debug, Default)]
struct StepAssignees {
    /// Its `assignees` (an approval) or `to` (a notify step).
    step: Option<Expression>,
    /// Its `escalateTo` (an approval).
    escalation: Option<Expression>,
}

/// Whether some program of the flow reads each context field (by its slot); a program
/// without a direct form is taken to read every field.
fn context_read(
    slots: &[Option<usize>],
    skip: &[Option<Condition>],
    decisions: &[Option<CompiledDecision>],
    assignees: &[StepAssignees],
) -> Vec<bool> {
    let mut read: Option<Vec<usize>> = Some(Vec::new());
    let mut add = |r: Option<&[usize]>| match (&mut read, r) {
        (Some(all), Some(r)) => all.extend_from_slice(r),
        _ => read = None,
    };
    for c in skip.iter().flatten() {
        add(c.reads());
    }
    for d in decisions.iter().flatten() {
        add(d.reads().as_deref());
    }
    for e in assignees
        .iter()
        .flat_map(|a| a.step.iter().chain(a.escalation.iter()))
    {
        add(e.reads());
    }
    slots
        .iter()
        .map(|s| match (s, &read) {
            (Some(s), Some(read)) => read.contains(s),
            (Some(_), None) => true,
            (None, _) => false,
        })
        .collect()
}
