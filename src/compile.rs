//! Stage 6: every stage in order → a [`CompiledFlow`], with all diagnostics of the file.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crate::diagnostic::Diagnostics;
use crate::expr::{self, Direct, Env, ExprError, VarTable, codegen};
use crate::graph::{self, Graph, GraphError, rules};
use crate::load::{self, LoadLimits};
use crate::model::{self, Assignees, ExprSource, Flow, HitPolicy, StepKind, Type};
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

/// Where control goes after a step (resolved at compile time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A step, by its index in [`CompiledFlow::steps`].
    Step(usize),
    /// The end of branch `branch` of the parallel step at index `parallel`.
    BranchEnd {
        /// The parallel step's index.
        parallel: usize,
        /// The branch number.
        branch: usize,
    },
    /// Falling off the top-level list: the instance ends `approved`.
    End,
}

/// One step of a compiled flow with every reference resolved to a [`Target`].
#[derive(Clone, Debug)]
pub struct StepNode {
    /// Position: list indices from the top (step index in its list, then branch number).
    path: Vec<(usize, usize)>,
    /// Index in its own step list.
    pos: usize,
    /// The enclosing parallel step and branch, if any.
    pub parent: Option<(usize, usize)>,
    /// `next:` or the fall-through.
    pub next: Target,
    /// `onReject:` (approvals).
    pub on_reject: Option<Target>,
    /// `onError:` (service tasks).
    pub on_error: Option<Target>,
    /// `onTimeout: <step>` (approvals).
    pub on_timeout: Option<Target>,
    /// Each decision rule's `goto`, in order.
    pub rules: Vec<Target>,
    /// The decision's `default`.
    pub default: Option<Target>,
    /// The first target of each parallel branch.
    pub branches: Vec<Target>,
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
    nodes: Vec<StepNode>,
    by_id: HashMap<String, usize>,
    vars: VarTable,
    sandbox: Arc<Sandbox>,
    skip: HashMap<String, Condition>,
    decisions: HashMap<String, CompiledDecision>,
    assignees: HashMap<String, Expression>,
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

    /// The assignee (or `notify` recipient) expression of a step; an `escalateTo`
    /// expression is keyed `"<step>#escalate"`.
    #[must_use]
    pub fn assignee_expression(&self, step: &str) -> Option<&Expression> {
        self.assignees.get(step)
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

    /// Every step's resolved node, in document order (nested steps after their parallel).
    #[must_use]
    pub fn nodes(&self) -> &[StepNode] {
        &self.nodes
    }

    /// The index of a step by id.
    #[must_use]
    pub fn step_index(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// The step at an index of [`CompiledFlow::nodes`].
    #[must_use]
    pub fn step(&self, index: usize) -> Option<&model::Step> {
        let node = self.nodes.get(index)?;
        let mut list = &self.flow.steps;
        for (i, b) in &node.path {
            match &list.get(*i)?.kind {
                StepKind::Parallel { branches, .. } => list = &branches.get(*b)?.steps,
                _ => return None,
            }
        }
        list.get(node.pos)
    }

    /// The first target of the flow.
    #[must_use]
    pub fn entry(&self) -> Target {
        if self.nodes.is_empty() {
            Target::End
        } else {
            Target::Step(0)
        }
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

#[expect(
    clippy::too_many_lines,
    reason = "collect, then one flat arm per step type resolving its references"
)]
/// Resolves every step reference to a [`Target`] (the graph checks have passed, so every
/// id exists; an unknown one would resolve to the approved end).
fn layout(flow: &Flow) -> (Vec<StepNode>, HashMap<String, usize>) {
    struct Raw<'f> {
        step: &'f model::Step,
        path: Vec<(usize, usize)>,
        pos: usize,
        parent: Option<(usize, usize)>,
        fall: Target,
    }
    fn collect<'f>(
        list: &'f [model::Step],
        path: &[(usize, usize)],
        parent: Option<(usize, usize)>,
        out: &mut Vec<Raw<'f>>,
    ) {
        // indices of this list's steps, known only after nested lists are collected
        let mut mine = Vec::with_capacity(list.len());
        for (pos, s) in list.iter().enumerate() {
            let idx = out.len();
            mine.push(idx);
            out.push(Raw {
                step: s,
                path: path.to_vec(),
                pos,
                parent,
                fall: Target::End,
            });
            if let StepKind::Parallel { branches, .. } = &s.kind {
                for (b, br) in branches.iter().enumerate() {
                    let mut inner = path.to_vec();
                    inner.push((pos, b));
                    collect(&br.steps, &inner, Some((idx, b)), out);
                }
            }
        }
        let end = match parent {
            Some((parallel, branch)) => Target::BranchEnd { parallel, branch },
            None => Target::End,
        };
        for (k, idx) in mine.iter().enumerate() {
            let fall = mine.get(k + 1).map_or(end, |n| Target::Step(*n));
            if let Some(r) = out.get_mut(*idx) {
                r.fall = fall;
            }
        }
    }
    let mut raw = Vec::new();
    collect(&flow.steps, &[], None, &mut raw);
    let mut by_id = HashMap::new();
    for (i, r) in raw.iter().enumerate() {
        by_id.entry(r.step.id.value.clone()).or_insert(i);
    }
    let to = |id: &str| by_id.get(id).map_or(Target::End, |i| Target::Step(*i));
    let nodes = raw
        .iter()
        .enumerate()
        .map(|(idx, r)| {
            let s = r.step;
            let mut n = StepNode {
                path: r.path.clone(),
                pos: r.pos,
                parent: r.parent,
                next: s.next.as_ref().map_or(r.fall, |n| to(&n.value)),
                on_reject: None,
                on_error: None,
                on_timeout: None,
                rules: Vec::new(),
                default: None,
                branches: Vec::new(),
            };
            match &s.kind {
                StepKind::Approval {
                    on_reject,
                    on_timeout,
                    ..
                } => {
                    n.on_reject = on_reject.as_ref().map(|r| to(&r.value));
                    if let Some(model::Spanned {
                        value: model::OnTimeout::Goto(id),
                        ..
                    }) = on_timeout
                    {
                        n.on_timeout = Some(to(id));
                    }
                }
                StepKind::ServiceTask { on_error, .. } => {
                    n.on_error = on_error.as_ref().map(|r| to(&r.value));
                }
                StepKind::Decision { rules, default, .. } => {
                    n.rules = rules.iter().map(|r| to(&r.goto.value)).collect();
                    n.default = default.as_ref().map(|d| to(&d.value));
                }
                StepKind::Parallel { branches, .. } => {
                    n.branches = branches
                        .iter()
                        .enumerate()
                        .map(|(b, br)| {
                            br.steps.first().map_or(
                                Target::BranchEnd {
                                    parallel: idx,
                                    branch: b,
                                },
                                |f| to(&f.id.value),
                            )
                        })
                        .collect();
                }
                StepKind::Notify { .. } | StepKind::End { .. } => {}
            }
            n
        })
        .collect();
    (nodes, by_id)
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
                    && let Some(value) = one_field_constant(&c.expr)
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

/// A condition on one field that holds everywhere or nowhere in the field's domain
/// (`amount > 100.0 && amount < 50.0`), decided by the decision-rule analysis.
fn one_field_constant(e: &expr::Expr) -> Option<bool> {
    let (_, ty) = rules::subject(e)?;
    let vecs = rules::vectors(&[e], &ty, None)?;
    let v = vecs.first()?;
    if v.iter().all(|x| !*x) {
        Some(false)
    } else if v.iter().all(|x| *x) {
        Some(true)
    } else {
        None
    }
}

fn analyze_rules(
    ctx: &mut Ctx<'_>,
    flow: &Flow,
    step_id: &str,
    policy: HitPolicy,
    checked: &[(usize, expr::Checked)],
    has_default: bool,
    rule_spans: &[crate::span::Span],
) {
    let allowed_of = |field: &str| -> Option<Vec<String>> {
        flow.context
            .iter()
            .find(|f| f.name.value == field)
            .and_then(|f| f.decl.allowed.as_ref())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
    };
    // group rules by the one field they test
    let mut groups: Vec<((String, Type), Vec<usize>)> = Vec::new();
    for (i, c) in checked {
        if let Some(subj) = rules::subject(&c.expr) {
            match groups.iter_mut().find(|(s, _)| *s == subj) {
                Some((_, v)) => v.push(*i),
                None => groups.push((subj, vec![*i])),
            }
        }
    }
    let mut exhaustive = checked.iter().any(|(_, c)| {
        matches!(
            c.expr.kind,
            expr::ast::ExprKind::Lit(expr::ast::Literal::Bool(true))
        )
    });
    for ((field, ty), members) in &groups {
        let exprs: Vec<&expr::Expr> = members
            .iter()
            .filter_map(|i| checked.iter().find(|(j, _)| j == i).map(|(_, c)| &c.expr))
            .collect();
        let allowed = allowed_of(field);
        let Some(vecs) = rules::vectors(&exprs, ty, allowed.as_deref()) else {
            continue;
        };
        let width = vecs.first().map_or(0, Vec::len);
        let mut covered = vec![false; width];
        for (k, v) in vecs.iter().enumerate() {
            let Some(&rule_idx) = members.get(k) else {
                continue;
            };
            let span = rule_spans.get(rule_idx).copied().unwrap_or_default();
            match policy {
                HitPolicy::First => {
                    // a rule that holds nowhere is "always false" (reported by the
                    // condition check), not shadowed
                    let impossible = v.iter().all(|a| !*a);
                    if !impossible && v.iter().zip(&covered).all(|(a, c)| !*a || *c) {
                        ctx.diags.add(
                            ctx.file,
                            GraphError::ShadowedRule {
                                id: step_id.to_owned(),
                                index: rule_idx + 1,
                                span,
                            },
                        );
                    }
                }
                HitPolicy::Unique => {
                    for (k2, v2) in vecs.iter().enumerate().take(k) {
                        if v.iter().zip(v2).any(|(a, b)| *a && *b) {
                            let earlier = members.get(k2).copied().unwrap_or(0);
                            ctx.diags.add(
                                ctx.file,
                                GraphError::OverlappingRules {
                                    id: step_id.to_owned(),
                                    index: rule_idx + 1,
                                    first_index: earlier + 1,
                                    span,
                                    first: rule_spans.get(earlier).copied().unwrap_or_default(),
                                },
                            );
                            break;
                        }
                    }
                }
            }
            for (c, a) in covered.iter_mut().zip(v) {
                *c |= *a;
            }
        }
        if members.len() == checked.len() && covered.iter().all(|c| *c) {
            exhaustive = true;
        }
    }
    if !has_default && !exhaustive {
        let span = flow_step_span(flow, step_id);
        ctx.diags.add(
            ctx.file,
            GraphError::NonExhaustive {
                id: step_id.to_owned(),
                span,
            },
        );
    }
}

fn flow_step_span(flow: &Flow, id: &str) -> crate::span::Span {
    fn find(steps: &[model::Step], id: &str) -> Option<crate::span::Span> {
        for s in steps {
            if s.id.value == id {
                return Some(s.id.span);
            }
            if let StepKind::Parallel { branches, .. } = &s.kind {
                for b in branches {
                    if let Some(x) = find(&b.steps, id) {
                        return Some(x);
                    }
                }
            }
        }
        None
    }
    find(&flow.steps, id).unwrap_or_default()
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
    let g = Graph::build(&flow);
    let mut skip = HashMap::new();
    let mut decisions = HashMap::new();
    let mut assignees = HashMap::new();
    for info in &g.steps {
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
                    assignees.insert(s.id.value.clone(), p);
                }
                if let Some(e) = escalate_to
                    && let Some(p) = ctx.assignee_expr(e)
                {
                    assignees.insert(format!("{}#escalate", s.id.value), p);
                }
            }
            StepKind::Notify { to, .. } => {
                if let Some(p) = ctx.assignee_expr(to) {
                    assignees.insert(s.id.value.clone(), p);
                }
            }
            StepKind::Decision {
                hit_policy,
                rules: rs,
                default,
            } => {
                let mut checked = Vec::new();
                for (i, r) in rs.iter().enumerate() {
                    if let Some(c) = ctx.condition(&r.when) {
                        checked.push((i, c));
                    }
                }
                let spans: Vec<crate::span::Span> = rs.iter().map(|r| r.when.span).collect();
                analyze_rules(
                    &mut ctx,
                    &flow,
                    &s.id.value,
                    *hit_policy,
                    &checked,
                    default.is_some(),
                    &spans,
                );
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
    drop(g);
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
    let (nodes, by_id) = layout(&flow);
    let hash = stable_hash(&[env!("CARGO_PKG_VERSION").as_bytes(), file.text().as_bytes()]);
    Ok(CompiledFlow {
        version: VersionId {
            flow: flow.id.value.clone(),
            revision: 0,
            hash: format!("{hash:016x}"),
        },
        nodes,
        by_id,
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
