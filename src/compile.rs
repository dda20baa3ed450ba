//! Stage 6: every stage in order → a [`CompiledFlow`], with all diagnostics of the file.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crate::diagnostic::Diagnostics;
use crate::expr::{self, Direct, Env, ExprError, VarTable, codegen};
use crate::expr::{ExprSource, Type};
use crate::graph::{self, Graph, GraphError, StepIndex, StepNode, Target, rules};
use crate::limits::{Limits, LoadLimits};
use crate::load;
use crate::model::{self, Assignees, Flow, HitPolicy, StepKind};
use crate::sandbox::{Bindings, Program, RunError, Sandbox};
use crate::span::SourceFile;

/// Compiler options.
#[derive(Clone, Debug)]
pub struct Options {
    /// Loader bounds.
    pub load: LoadLimits,
    /// The sandbox programs are compiled for.
    pub sandbox: Arc<Sandbox>,
    /// Which path evaluates conditions, decisions and assignee expressions.
    pub evaluator: Evaluator,
}

/// The evaluation path a host selects. Both give the same values and errors (the
/// differential tests hold them equal); every condition is compiled for both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Evaluator {
    /// The lowered IR, run directly (the default; see [`expr::eval`]).
    #[default]
    Direct,
    /// The sandboxed Rhai programs.
    Sandbox,
}

impl Options {
    /// Options with these limits: the loader's, and a sandbox built with the sandbox's
    /// (a new engine; [`Options::default`] shares one).
    #[must_use]
    pub fn new(limits: &Limits) -> Self {
        Self {
            load: limits.load.clone(),
            sandbox: Arc::new(Sandbox::new(limits.sandbox.clone())),
            evaluator: Evaluator::default(),
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        static SHARED: OnceLock<Arc<Sandbox>> = OnceLock::new();
        Self {
            load: LoadLimits::default(),
            sandbox: Arc::clone(SHARED.get_or_init(|| Arc::new(Sandbox::default()))),
            evaluator: Evaluator::default(),
        }
    }
}

/// A compiled condition: its sandboxed Rhai program and its lowered IR (run directly
/// unless the host selected [`Evaluator::Sandbox`]).
#[derive(Debug, Clone)]
pub struct Condition {
    program: Program,
    fast: Option<Direct>,
}

impl Condition {
    /// Evaluates the condition (the direct form when there is one).
    ///
    /// # Errors
    /// The CEL run-time error or sandbox bound that stopped it.
    pub fn eval(&self, sandbox: &Sandbox, bindings: &mut Bindings) -> Result<bool, RunError> {
        match &self.fast {
            Some(f) => f.eval_bool(bindings.slots()),
            None => sandbox.eval_bool(&self.program, bindings),
        }
    }

    /// Evaluates the Rhai program, even when a direct form exists.
    ///
    /// # Errors
    /// The CEL run-time error or sandbox bound that stopped it.
    pub fn eval_sandboxed(
        &self,
        sandbox: &Sandbox,
        bindings: &mut Bindings,
    ) -> Result<bool, RunError> {
        sandbox.eval_bool(&self.program, bindings)
    }

    /// True when the condition runs on the direct path.
    #[must_use]
    pub fn is_direct(&self) -> bool {
        self.fast.is_some()
    }
}

/// A compiled value expression (assignees): its sandboxed program and, where possible,
/// the direct form.
#[derive(Debug, Clone)]
pub struct Expression {
    program: Program,
    fast: Option<Direct>,
}

impl Expression {
    /// Evaluates the expression (the direct form when there is one).
    ///
    /// # Errors
    /// The CEL run-time error or sandbox bound that stopped it.
    pub fn eval(
        &self,
        sandbox: &Sandbox,
        bindings: &mut Bindings,
    ) -> Result<expr::Value, RunError> {
        match &self.fast {
            Some(f) => f.eval_value(bindings.slots()),
            None => sandbox.eval(&self.program, bindings),
        }
    }

    /// Evaluates the Rhai program, even when a direct form exists.
    ///
    /// # Errors
    /// The CEL run-time error or sandbox bound that stopped it.
    pub fn eval_sandboxed(
        &self,
        sandbox: &Sandbox,
        bindings: &mut Bindings,
    ) -> Result<expr::Value, RunError> {
        sandbox.eval(&self.program, bindings)
    }

    /// True when the expression runs on the direct path.
    #[must_use]
    pub fn is_direct(&self) -> bool {
        self.fast.is_some()
    }
}

/// A compiled decision: one program for all rules (and the direct forms of the rules
/// when every rule has one).
#[derive(Debug, Clone)]
pub struct CompiledDecision {
    program: Program,
    fast: Option<Vec<Direct>>,
    /// Each rule on its own, when some rule has no direct form: only run to name the
    /// rule that failed in an incident.
    rules: Vec<Condition>,
    unique: bool,
}

impl CompiledDecision {
    /// The rule that routes: `Some(index)` (0-based), `None` when no rule holds.
    ///
    /// # Errors
    /// A run-time error in a rule, or more than one rule holding under `unique`
    /// ([`RunError::NotUnique`]); both are incidents.
    pub fn eval(
        &self,
        sandbox: &Sandbox,
        bindings: &mut Bindings,
    ) -> Result<Option<usize>, RunError> {
        match &self.fast {
            Some(rules) => self.decide_direct(rules, bindings),
            None => self.eval_sandboxed(sandbox, bindings),
        }
    }

    fn decide_direct(
        &self,
        rules: &[Direct],
        bindings: &Bindings,
    ) -> Result<Option<usize>, RunError> {
        // one budget for the whole decision, as its one program has in the sandbox
        let budget = std::cell::Cell::new(rules.first().map_or(0, Direct::budget));
        let mut hit = None;
        for (i, r) in rules.iter().enumerate() {
            if r.eval_bool_within(bindings.slots(), &budget)? {
                match hit {
                    None if !self.unique => return Ok(Some(i)),
                    None => hit = Some(i),
                    Some(first) => {
                        let mut all = vec![first, i];
                        for (j, rest) in rules.iter().enumerate().skip(i + 1) {
                            if rest.eval_bool_within(bindings.slots(), &budget)? {
                                all.push(j);
                            }
                        }
                        return Err(RunError::NotUnique(all));
                    }
                }
            }
        }
        Ok(hit)
    }

    /// Evaluates the one Rhai program of the decision, even when direct forms exist.
    ///
    /// # Errors
    /// As [`CompiledDecision::eval`].
    pub fn eval_sandboxed(
        &self,
        sandbox: &Sandbox,
        bindings: &mut Bindings,
    ) -> Result<Option<usize>, RunError> {
        let to_index = |i: i64| usize::try_from(i).ok();
        if !self.unique {
            return Ok(to_index(sandbox.eval_int(&self.program, bindings)?));
        }
        let hits: Vec<usize> = match sandbox.eval(&self.program, bindings)? {
            expr::Value::List(l) => l
                .iter()
                .filter_map(|v| match v {
                    expr::Value::Int(i) => to_index(*i),
                    _ => None,
                })
                .collect(),
            other => {
                return Err(RunError::ResultType {
                    expected: "list",
                    got: other.type_name().to_owned(),
                });
            }
        };
        match hits.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            _ => Err(RunError::NotUnique(hits)),
        }
    }

    /// The first rule whose condition fails at run time under these bindings (for an
    /// incident's message); `None` when no rule fails on its own.
    pub fn failing_rule(&self, sandbox: &Sandbox, bindings: &mut Bindings) -> Option<usize> {
        match &self.fast {
            Some(rules) => rules
                .iter()
                .position(|r| r.eval_bool(bindings.slots()).is_err()),
            None => self
                .rules
                .iter()
                .position(|r| r.eval(sandbox, bindings).is_err()),
        }
    }

    /// `hitPolicy: unique`.
    #[must_use]
    pub fn is_unique(&self) -> bool {
        self.unique
    }

    /// True when every rule runs on the direct path.
    #[must_use]
    pub fn is_direct(&self) -> bool {
        self.fast.is_some()
    }
}

/// Which compiled assignee expression of a step (by its index in [`CompiledFlow::nodes`]):
/// an approval's `assignees` or a `notify`'s `to`, or an approval's `escalateTo`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AssigneeSlot {
    /// The step's own `assignees` (approvals) or `to` (notify steps).
    Step(usize),
    /// The approval's `escalateTo`.
    Escalation(usize),
}

/// The exact compiled content a flow version holds: the flow id, the registry's revision
/// (0 until published) and a content hash of the source and the compiler.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct VersionId {
    /// The flow id.
    pub flow: String,
    /// Revision number within the flow (1, 2, ...; 0 before it is published).
    pub revision: u64,
    /// Content hash (16 hex digits).
    pub hash: String,
}

impl std::fmt::Display for VersionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}#{}", self.flow, self.revision, self.hash)
    }
}

/// A stable 64-bit FNV-1a hash (the same on every platform and release of Rust).
#[must_use]
pub fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // separate the parts so that ("ab","c") and ("a","bc") differ
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A flow that passed every check, with its sandboxed programs.
#[derive(Debug)]
pub struct CompiledFlow {
    flow: Flow,
    version: VersionId,
    index: StepIndex,
    vars: VarTable,
    sandbox: Arc<Sandbox>,
    skip: HashMap<String, Condition>,
    decisions: HashMap<String, CompiledDecision>,
    assignees: HashMap<AssigneeSlot, Expression>,
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

    /// The sandbox the programs run in.
    #[must_use]
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// The skip condition of a step.
    #[must_use]
    pub fn skip_condition(&self, step: &str) -> Option<&Condition> {
        self.skip.get(step)
    }

    /// The decision program of a step.
    #[must_use]
    pub fn decision(&self, step: &str) -> Option<&CompiledDecision> {
        self.decisions.get(step)
    }

    /// A compiled assignee (or `notify` recipient, or `escalateTo`) expression.
    #[must_use]
    pub fn assignee_expression(&self, slot: AssigneeSlot) -> Option<&Expression> {
        self.assignees.get(&slot)
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

    /// Stamps the registry's revision (done once, before the flow is shared).
    #[must_use]
    pub fn with_revision(mut self, revision: u64) -> Self {
        self.version.revision = revision;
        self
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
}

impl Ctx<'_> {
    /// The lowered IR of a checked tree, unless the host selected the sandbox.
    fn lower(&self, e: &expr::Expr) -> Option<Direct> {
        (self.evaluator == Evaluator::Direct)
            .then(|| Direct::lower(e, &self.vars, self.sandbox.limits()))
    }

    fn errors(&mut self, errs: Vec<ExprError>) {
        for e in errs {
            // with no readable `context`, every name would be unknown: the schema said why
            if self.unreadable_context && matches!(e, ExprError::UnknownIdentifier { .. }) {
                continue;
            }
            self.diags.add(self.file, e);
        }
    }

    /// Compiles generated source; a failure is a bug, reported at the expression's span.
    fn program(&mut self, g: &codegen::Generated, span: crate::span::Span) -> Option<Program> {
        match self.sandbox.compile(&g.source, &g.constants) {
            Ok(p) => Some(p),
            Err(e) => {
                self.errors(vec![ExprError::Internal {
                    message: e.to_string(),
                    span,
                }]);
                None
            }
        }
    }

    /// The program and direct form of a checked condition.
    fn compile_checked(&mut self, e: &expr::Expr, span: crate::span::Span) -> Option<Condition> {
        let generated = codegen::generate_condition(e, &self.vars);
        let program = self.program(&generated, span)?;
        Some(Condition {
            program,
            fast: self.lower(e),
        })
    }

    fn condition(&mut self, src: &ExprSource) -> Option<expr::Checked> {
        match expr::check_condition(src, &self.env, self.sandbox) {
            Ok((c, mut warnings)) => {
                let constant = |w: &ExprError| matches!(w, ExprError::ConstantCondition { .. });
                if !warnings.iter().any(constant)
                    && let Some(value) = rules::one_field_constant(&c.expr)
                {
                    warnings.push(ExprError::ConstantCondition {
                        value,
                        span: src.span,
                    });
                }
                self.errors(warnings);
                Some(c)
            }
            Err(e) => {
                self.errors(e);
                None
            }
        }
    }

    fn assignee_expr(&mut self, a: &Assignees) -> Option<Expression> {
        let Assignees::Expr(src) = a else { return None };
        match expr::check_expr(src, &self.env) {
            Ok(c) => {
                if !matches!(&c.ty, Type::String | Type::Dyn)
                    && !matches!(&c.ty, Type::List(t) if matches!(**t, Type::String | Type::Dyn))
                {
                    self.errors(vec![ExprError::AssigneeType {
                        ty: c.ty.to_string(),
                        span: src.span,
                    }]);
                    return None;
                }
                let g = codegen::generate(&c.expr, &self.vars);
                let program = self.program(&g, src.span)?;
                Some(Expression {
                    program,
                    fast: self.lower(&c.expr),
                })
            }
            Err(e) => {
                self.errors(e);
                None
            }
        }
    }
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
    };
    for (path, values) in flow.string_enums() {
        ctx.env.declare_enum(&path, values);
    }
    let g = Graph::build(&flow);
    let mut skip = HashMap::new();
    let mut decisions = HashMap::new();
    let mut assignees = HashMap::new();
    for (step_index, info) in g.steps.iter().enumerate() {
        let s = info.step;
        if let Some(src) = &s.skip
            && let Some(c) = ctx.condition(src)
            && let Some(cond) = ctx.compile_checked(&c.expr, src.span)
        {
            skip.insert(s.id.value.clone(), cond);
        }
        match &s.kind {
            StepKind::Approval {
                assignees: a,
                escalate_to,
                ..
            } => {
                if let Some(p) = ctx.assignee_expr(a) {
                    assignees.insert(AssigneeSlot::Step(step_index), p);
                }
                if let Some(e) = escalate_to
                    && let Some(p) = ctx.assignee_expr(e)
                {
                    assignees.insert(AssigneeSlot::Escalation(step_index), p);
                }
            }
            StepKind::Notify { to, .. } => {
                if let Some(p) = ctx.assignee_expr(to) {
                    assignees.insert(AssigneeSlot::Step(step_index), p);
                }
            }
            StepKind::Decision {
                hit_policy,
                rules: rs,
                ..
            } => {
                let mut checked = Vec::new();
                for (i, r) in rs.iter().enumerate() {
                    if let Some(c) = ctx.condition(&r.when) {
                        checked.push((i, c));
                    }
                }
                let spans: Vec<crate::span::Span> = rs.iter().map(|r| r.when.span).collect();
                let exprs: Vec<(usize, &expr::Expr)> =
                    checked.iter().map(|(i, c)| (*i, &c.expr)).collect();
                for e in rules::check_decision(&g, &flow, step_index, &exprs) {
                    ctx.diags.add(file, e);
                }
                if checked.len() == rs.len() {
                    let exprs: Vec<&expr::Expr> = checked.iter().map(|(_, c)| &c.expr).collect();
                    let unique = *hit_policy == HitPolicy::Unique;
                    let generated = codegen::generate_decision(&exprs, unique, &ctx.vars);
                    let fast = exprs
                        .iter()
                        .map(|e| ctx.lower(e))
                        .collect::<Option<Vec<Direct>>>();
                    // per-rule programs only where the direct forms cannot name a failing rule
                    let rules: Option<Vec<Condition>> = if fast.is_some() {
                        Some(Vec::new())
                    } else {
                        exprs
                            .iter()
                            .zip(&spans)
                            .map(|(e, span)| ctx.compile_checked(e, *span))
                            .collect()
                    };
                    // the decision's program holds every rule: a failure names them all
                    let all = spans
                        .iter()
                        .copied()
                        .reduce(crate::span::Span::join)
                        .unwrap_or(s.type_span);
                    // a rule that failed on its own has been reported: not again for the decision
                    if let Some(rules) = rules
                        && let Some(program) = ctx.program(&generated, all)
                    {
                        decisions.insert(
                            s.id.value.clone(),
                            CompiledDecision {
                                program,
                                fast,
                                rules,
                                unique,
                            },
                        );
                    }
                }
            }
            _ => {}
        }
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
    Ok(CompiledFlow {
        version: VersionId {
            flow: flow.id.value.clone(),
            revision: 0,
            hash: format!("{hash:016x}"),
        },
        index,
        flow,
        vars: ctx.vars,
        sandbox: Arc::clone(&options.sandbox),
        evaluator: options.evaluator,
        skip,
        decisions,
        assignees,
        warnings: diags,
    })
}

/// Errors about files checked together.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum CheckError {
    /// One flow id in several files.
    #[error("flow id `{id}` is also defined in {others}")]
    #[diagnostic(
        code("flowc::check::duplicate-flow-id"),
        help(
            "a flow id names one flow in a registry (the directory source takes one file and refuses the others); give each flow its own `id`"
        )
    )]
    DuplicateFlowId {
        /// The id.
        id: String,
        /// The other files (the first few, then how many more).
        others: String,
        /// The id in this file.
        #[label("defined in {count} files")]
        span: crate::span::Span,
        /// How many files define it.
        count: usize,
    },
}

/// The flow id of a file and where it is written: from the compiled flow, or (when the
/// file has errors) from its YAML when that parses.
type IdSite = (String, Arc<SourceFile>, crate::span::Span);

fn id_of_failed(file: &Arc<SourceFile>, options: &Options) -> Option<IdSite> {
    let root = load::yaml::parse(file, &options.load).ok()?;
    let node = root.get("id")?;
    let id = node.as_str().filter(|s| !s.is_empty())?;
    Some((id.to_owned(), Arc::clone(file), node.span))
}

/// One error per file whose flow id another file defines too.
fn duplicate_ids(mut sites: Vec<IdSite>) -> Diagnostics {
    use std::fmt::Write as _;
    const NAMED: usize = 3;
    let mut d = Diagnostics::new();
    sites.sort_by(|a, b| (&a.0, a.1.name()).cmp(&(&b.0, b.1.name())));
    for group in sites.chunk_by(|a, b| a.0 == b.0).filter(|g| g.len() > 1) {
        for (id, file, span) in group {
            let others: Vec<String> = group
                .iter()
                .filter(|o| o.1.name() != file.name())
                .map(|o| format!("`{}`", o.1.name()))
                .collect();
            let mut text = others
                .iter()
                .take(NAMED)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if others.len() > NAMED {
                let _ = write!(text, " and {} more", others.len() - NAMED);
            }
            d.add(
                file,
                CheckError::DuplicateFlowId {
                    id: id.clone(),
                    others: text,
                    span: *span,
                    count: group.len(),
                },
            );
        }
    }
    d
}

/// Compiles many files on all cores; returns every diagnostic of every file, sorted,
/// and one error per file whose flow id another of the files defines too.
#[must_use]
pub fn check_many(files: Vec<(String, Vec<u8>)>, options: &Options) -> Diagnostics {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let chunk = files.len().div_ceil(threads).max(1);
    let mut all = Diagnostics::new();
    let mut files = files;
    let mut chunks = Vec::new();
    while !files.is_empty() {
        let rest = files.split_off(chunk.min(files.len()));
        chunks.push(std::mem::replace(&mut files, rest));
    }
    let results: Vec<(Diagnostics, Vec<IdSite>)> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| {
                s.spawn(move || {
                    let mut d = Diagnostics::new();
                    let mut ids = Vec::new();
                    for (name, bytes) in c {
                        match load::source_from_bytes(&name, bytes) {
                            Ok(file) => match compile(&file, options) {
                                Ok(flow) => {
                                    let id = &flow.flow.id;
                                    ids.push((id.value.clone(), Arc::clone(&file), id.span));
                                    for w in flow.warnings {
                                        d.push(w);
                                    }
                                }
                                Err(e) => {
                                    ids.extend(id_of_failed(&file, options));
                                    d.extend(e);
                                }
                            },
                            Err(e) => d.extend(e),
                        }
                    }
                    (d, ids)
                })
            })
            .collect();
        // a panic in a worker is a bug: re-raise it rather than lose that chunk's results
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut sites = Vec::new();
    for (r, ids) in results {
        all.extend(r);
        sites.extend(ids);
    }
    all.extend(duplicate_ids(sites));
    all.sort();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_that_does_not_compile_is_an_internal_error_at_the_expression() {
        let text = "when: amount > 1.0\n";
        let file = SourceFile::new("f.yaml", text);
        let mut ctx = Ctx {
            file: &file,
            env: Env::default(),
            vars: VarTable::default(),
            sandbox: Sandbox::shared(),
            evaluator: Evaluator::Direct,
            diags: Diagnostics::new(),
            unreadable_context: false,
        };
        // codegen never writes this: it stands for any bug that produces invalid Rhai
        let broken = codegen::Generated {
            source: "let = ;".to_owned(),
            constants: Vec::new(),
        };
        let span = crate::span::Span::new(6, 18);
        assert!(ctx.program(&broken, span).is_none());
        let d: Vec<_> = ctx.diags.iter().collect();
        assert_eq!(d.len(), 1);
        let d = d[0];
        assert_eq!(d.code(), "flowc::expr::internal");
        assert!(
            d.message()
                .starts_with("internal error (a bug in flowc): generated program does not compile"),
            "{}",
            d.message()
        );
        assert_eq!(d.line_col(), (1, 7));
        assert_eq!(d.span(), Some(span));
    }
}
