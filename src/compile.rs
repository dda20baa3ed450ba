//! Stage 6: every stage in order → a [`CompiledFlow`], with all diagnostics of the file.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crate::diagnostic::Diagnostics;
use crate::expr::fast::{self, Fast};
use crate::expr::{self, Env, ExprError, VarTable, codegen};
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
}

impl Default for Options {
    fn default() -> Self {
        static SHARED: OnceLock<Arc<Sandbox>> = OnceLock::new();
        Self {
            load: LoadLimits::default(),
            sandbox: Arc::clone(SHARED.get_or_init(|| Arc::new(Sandbox::default()))),
        }
    }
}

/// A compiled condition: its sandboxed Rhai program and, when every part of it is a
/// non-looping, non-allocating operation, the direct form (see [`expr::fast`]).
#[derive(Debug, Clone)]
pub struct Condition {
    program: Program,
    fast: Option<Fast>,
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

/// A compiled decision: one program for all rules (and the direct forms of the rules
/// when every rule has one).
#[derive(Debug, Clone)]
pub struct CompiledDecision {
    program: Program,
    fast: Option<Vec<Fast>>,
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
        rules: &[Fast],
        bindings: &Bindings,
    ) -> Result<Option<usize>, RunError> {
        let mut hit = None;
        for (i, r) in rules.iter().enumerate() {
            if r.eval_bool(bindings.slots())? {
                match hit {
                    None if !self.unique => return Ok(Some(i)),
                    None => hit = Some(i),
                    Some(first) => {
                        let mut all = vec![first, i];
                        for (j, rest) in rules.iter().enumerate().skip(i + 1) {
                            if rest.eval_bool(bindings.slots())? {
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

/// A flow that passed every check, with its sandboxed programs.
#[derive(Debug)]
pub struct CompiledFlow {
    flow: Flow,
    vars: VarTable,
    sandbox: Arc<Sandbox>,
    skip: HashMap<String, Condition>,
    decisions: HashMap<String, CompiledDecision>,
    assignees: HashMap<String, Program>,
    warnings: Diagnostics,
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

    /// The assignee expression program of a step.
    #[must_use]
    pub fn assignee_program(&self, step: &str) -> Option<&Program> {
        self.assignees.get(step)
    }

    /// Warnings found while compiling.
    #[must_use]
    pub fn warnings(&self) -> &Diagnostics {
        &self.warnings
    }
}

struct Ctx<'a> {
    file: &'a Arc<SourceFile>,
    env: Env,
    vars: VarTable,
    sandbox: &'a Sandbox,
    diags: Diagnostics,
}

impl Ctx<'_> {
    fn errors(&mut self, errs: Vec<ExprError>) {
        for e in errs {
            self.diags.add(self.file, e);
        }
    }

    fn program(&mut self, g: &codegen::Generated) -> Option<Program> {
        match self.sandbox.compile(&g.source, &g.constants) {
            Ok(p) => Some(p),
            Err(e) => {
                self.errors(vec![ExprError::AlwaysFails {
                    message: e.to_string(),
                    span: crate::span::Span::default(),
                }]);
                None
            }
        }
    }

    fn condition(&mut self, src: &ExprSource) -> Option<expr::Checked> {
        match expr::check_condition(src, &self.env, self.sandbox) {
            Ok((c, warnings)) => {
                self.errors(warnings);
                Some(c)
            }
            Err(e) => {
                self.errors(e);
                None
            }
        }
    }

    fn assignee_expr(&mut self, a: &Assignees) -> Option<Program> {
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
                self.program(&g)
            }
            Err(e) => {
                self.errors(e);
                None
            }
        }
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
            .and_then(|f| f.allowed.as_ref())
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
                    if v.iter().zip(&covered).all(|(a, c)| !*a || *c) {
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

/// Compiles one source file: load, schema, model, conditions, graph checks, codegen.
///
/// # Errors
/// All diagnostics of the file (errors and warnings) when there is at least one error.
#[expect(
    clippy::too_many_lines,
    reason = "the pipeline, stage by stage, kept in one place"
)]
pub fn compile(file: &Arc<SourceFile>, options: &Options) -> Result<CompiledFlow, Diagnostics> {
    let root = load::load(file, &options.load)?;
    // model errors (wrong types) do not stop the later checks
    let (flow, mut diags) = model::build_lenient(file, &root);
    let ctx_type = flow.context_type();
    let vars = VarTable::from_context(&ctx_type);
    let mut ctx = Ctx {
        file,
        env: vars.env(),
        vars,
        sandbox: &options.sandbox,
        diags: Diagnostics::new(),
    };
    let g = Graph::build(&flow);
    let mut skip = HashMap::new();
    let mut decisions = HashMap::new();
    let mut assignees = HashMap::new();
    for info in &g.steps {
        let s = info.step;
        if let Some(src) = &s.skip
            && let Some(c) = ctx.condition(src)
        {
            let generated = codegen::generate_condition(&c.expr, &ctx.vars);
            if let Some(program) = ctx.program(&generated) {
                let fast = fast::build(&c.expr, &ctx.vars);
                skip.insert(s.id.value.clone(), Condition { program, fast });
            }
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
                    if let Some(program) = ctx.program(&generated) {
                        let fast = exprs
                            .iter()
                            .map(|e| fast::build(e, &ctx.vars))
                            .collect::<Option<Vec<Fast>>>();
                        decisions.insert(
                            s.id.value.clone(),
                            CompiledDecision {
                                program,
                                fast,
                                unique,
                            },
                        );
                    }
                }
            }
            _ => {}
        }
    }
    for e in graph::check(&g) {
        ctx.diags.add(file, e);
    }
    drop(g);
    diags.extend(ctx.diags);
    diags.sort();
    if diags.has_errors() {
        return Err(diags);
    }
    Ok(CompiledFlow {
        flow,
        vars: ctx.vars,
        sandbox: Arc::clone(&options.sandbox),
        skip,
        decisions,
        assignees,
        warnings: diags,
    })
}

/// Compiles many files on all cores; returns every diagnostic of every file, sorted.
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
    let results: Vec<Diagnostics> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| {
                s.spawn(move || {
                    let mut d = Diagnostics::new();
                    for (name, bytes) in c {
                        match load::source_from_bytes(&name, bytes) {
                            Ok(file) => match compile(&file, options) {
                                Ok(flow) => {
                                    for w in flow.warnings {
                                        d.push(w);
                                    }
                                }
                                Err(e) => d.extend(e),
                            },
                            Err(e) => d.extend(e),
                        }
                    }
                    d
                })
            })
            .collect();
        // a panic in a worker is a bug: re-raise it rather than lose that chunk's results
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    for r in results {
        all.extend(r);
    }
    all.sort();
    all
}
