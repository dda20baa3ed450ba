//! Every bound flowc enforces, in one place (as rhai keeps its own in `api/limits.rs`).
//!
//! Hitting a bound is never an abort: the loader and the expression parser report a
//! diagnostic (`flowc::load::file-too-large`, `flowc::load::too-deep`,
//! `flowc::load::alias-budget`, `flowc::expr::syntax` for the length,
//! `flowc::expr::too-deep` for the depth), an evaluation fails with
//! [`RunError::Limit`](crate::expr::RunError::Limit), and the runtime raises an incident.
//!
//! Two groups are configurable, where they are used: the loader's ([`LoadLimits`],
//! through [`compile::Options::load`](crate::compile::Options::load)) and the sandbox's
//! ([`SandboxLimits`], through [`Sandbox::new`](crate::sandbox::Sandbox::new));
//! [`Limits`] holds both ([`compile::Options::new`](crate::compile::Options::new) takes
//! it). The others are fixed by flowc and are associated constants of [`Limits`]: the
//! expression parser's, the `matches` regex compiler's, the runtime's, the version
//! store's and the etcd source's snapshot files.
//!
//! This module sits at the bottom of the module order: every stage reads it, it reads
//! nothing.

/// Every bound: the configurable groups as fields, the fixed ones as constants.
///
/// ```
/// use flowc::limits::Limits;
/// let mut limits = Limits::default();
/// limits.load.max_file_bytes = 64 * 1024;
/// limits.sandbox.max_operations = 10_000;
/// let options = flowc::compile::Options::new(&limits);
/// assert_eq!(options.load.max_file_bytes, 64 * 1024);
/// assert_eq!(options.sandbox.limits().max_operations, 10_000);
/// assert!(Limits::MAX_EXPR_LEN > 1024);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// What the YAML loader accepts.
    pub load: LoadLimits,
    /// What one sandboxed (Rhai) evaluation may do.
    pub sandbox: SandboxLimits,
}

impl Limits {
    /// Longest expression, in bytes (a longer one is a syntax error).
    pub const MAX_EXPR_LEN: usize = 16 * 1024;
    /// Deepest nesting of brackets, and longest run of prefix operators, in an
    /// expression's text. The parser recurses per bracket, so this keeps it shallow;
    /// [`Limits::MAX_EXPR_NESTING`] bounds the parsed tree.
    pub const MAX_EXPR_DEPTH: usize = 64;
    /// Most operations (operators, calls, macros, field selections and indexes) nested
    /// one inside another on any path of a parsed expression: `a + b + c` nests 2 (the
    /// first `+` is an operand of the second), `f(g(x)) > 0` nests 3. The checker, both
    /// evaluators and the sandbox's compiler recurse over the tree, so this keeps them
    /// shallow. A long chain of `&&` or of `||` (`dept == "a" || dept == "b" || …`) is
    /// parsed as a balanced tree (the operators are associative), so 1,000 comparisons
    /// nest about 11 deep; a chain of another operator nests one level per operator.
    /// A deeper expression is a syntax error.
    pub const MAX_EXPR_NESTING: usize = 128;
    /// Largest compiled regular expression for `matches`, in bytes (the `regex` crate's
    /// program size and lazy-DFA cache limits).
    pub const MAX_REGEX_SIZE: usize = 1 << 20;
    /// Most compiled regular expressions kept for reuse (the cache is emptied when full).
    pub const REGEX_CACHE_ENTRIES: usize = 256;
    /// Most automatic steps (skips, decisions, notifications, joins) one event may run
    /// through before the instance stops with an incident: the compiler rejects
    /// automatic cycles, so this bound only guards against what it cannot see.
    pub const MAX_AUTOMATIC_STEPS: usize = 10_000;
    /// The largest logical time an instance accepts, in seconds (2^53 − 1: every time
    /// and due time stays an exact JSON number, and adding a timeout never overflows).
    pub const MAX_TIME: u64 = (1 << 53) - 1;
    /// Largest source a version store accepts or reads, in bytes: larger than
    /// [`LoadLimits::max_file_bytes`]' default, so every flow that compiles fits.
    pub const MAX_STORED_SOURCE_BYTES: u64 = 8 * 1024 * 1024;
    /// Largest metadata file (record or hold) a version store reads, in bytes.
    pub const MAX_STORE_RECORD_BYTES: u64 = 64 * 1024;
    /// Longest author of a published version, in bytes.
    pub const MAX_AUTHOR_BYTES: usize = 256;
    /// Longest message of a published version, in bytes.
    pub const MAX_MESSAGE_BYTES: usize = 4096;
    /// Longest holder name of a hold on a version, in bytes.
    pub const MAX_HOLDER_BYTES: usize = 80;
    /// Largest file of an etcd source's snapshot directory read, in bytes (above
    /// [`Limits::MAX_STORED_SOURCE_BYTES`]: a snapshot holds a whole source).
    pub const MAX_SNAPSHOT_FILE_BYTES: u64 = 9 * 1024 * 1024;
    /// Largest answer the etcd client decodes, in bytes (tonic's default is 4 MiB): a
    /// page of 16 values of etcd's largest default request, with room to spare; a watch
    /// catching up sends many revisions in one answer and takes the same limit.
    pub const MAX_ETCD_DECODE_BYTES: usize = 64 * 1024 * 1024;
    /// Most distinct `flow` label values the etcd watcher's metrics carry (a flow id
    /// each); the counters of flows beyond it, and of keys under `flows/` that name no
    /// flow, share the label `(other)`, so junk keys cannot grow the exporter's series
    /// without bound.
    pub const MAX_METRIC_FLOWS: usize = 1000;
    /// Largest request etcd takes by default (its `--max-request-bytes`, 1.5 MiB): a
    /// publish carries the flow's YAML twice (the flow key and its history entry).
    pub const MAX_ETCD_REQUEST_BYTES: u64 = 1024 * 1024 * 3 / 2;
    /// Deepest bracket nesting of a generated Rhai program compiled on the caller's
    /// thread; a deeper one compiles on a thread of [`Limits::COMPILE_STACK_BYTES`].
    pub const SHALLOW_NESTING: usize = 48;
    /// The stack of the thread a deeper generated program compiles on: Rhai's deepest
    /// expression ([`SandboxLimits::max_expr_depth`]'s default) with room for every
    /// frame its parser and optimizer keep per level.
    pub const COMPILE_STACK_BYTES: usize = 64 * 1024 * 1024;
    /// Rhai operations a sandboxed evaluation may spend per unit of its budget
    /// ([`SandboxLimits::max_operations`]) and per byte of its generated program: a
    /// safety net against a hang only, never the budget itself (the sandbox's natives
    /// charge the direct path's units, so both paths run out at the same point). Why it
    /// is never reached first: Rhai counts an operation per statement, expression node
    /// and loop iteration it runs. Outside comprehension steps a program runs each of
    /// its nodes at most once, and a node takes at least a byte of source, so it spends
    /// at most about one operation per byte (`source_bytes`). A comprehension step runs
    /// its body once and charges `ir::step_cost`, one unit per CEL node of its body and
    /// filter plus one; codegen writes each CEL node as at most a few dozen Rhai
    /// operations (the largest template, an error-capturing `&&`/`||` of two
    /// error-capturing operands inside `all`/`exists`, is about 30 with the step's own
    /// loop, `cel_step` and accumulator), so a step spends well under this many
    /// operations per unit it charges. `tests/budget.rs` checks that every shape
    /// succeeds at exactly its cost.
    pub const SANDBOX_OPS_PER_UNIT: u64 = 64;
    /// The work the decision-rule analysis (shadowed, overlapping and non-exhaustive
    /// rules) may spend on one decision, in comparisons evaluated at a sample point. A
    /// decision of one-field rules (`days == 3`, `code in [..]`, ranges) costs a few
    /// units per literal, so tens of thousands of rules are analysed in full; a pair
    /// involving a rule on several fields costs its case split. Once spent, the
    /// analysis stops with `flowc::graph::decision-not-analysed` (a warning): it never
    /// guesses, and never takes more than about a second.
    pub const MAX_DECISION_WORK: u64 = 4_000_000;
    /// Keys an etcd watcher reports one by one as ignored (`flows/a/b`, keys outside
    /// flowc's subtrees); past this, one line says more are not listed.
    pub const MAX_ODD_KEYS_REPORTED: usize = 20;
}

/// Bounds on what the loader accepts; hitting one is a diagnostic, never an abort.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadLimits {
    /// Largest file accepted, in bytes.
    pub max_file_bytes: usize,
    /// Deepest nesting of sequences and mappings.
    pub max_depth: usize,
    /// Most nodes in the tree, counting every alias expansion (the alias budget).
    pub max_nodes: usize,
}

impl Default for LoadLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: 4 * 1024 * 1024,
            max_depth: 64,
            max_nodes: 250_000,
        }
    }
}

/// Every bound of the sandbox (the Rhai engine is built with each one set explicitly).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxLimits {
    /// The cost budget of one evaluation, in cost units, on both paths (the IR of
    /// `expr::ir` is lowered with these bounds; the sandbox's natives charge the same
    /// units, and Rhai's own operation count is bounded only by a safety net
    /// [`Limits::SANDBOX_OPS_PER_UNIT`] times larger).
    pub max_operations: u64,
    /// Deepest function-call nesting.
    pub max_call_levels: usize,
    /// Deepest expression nesting of a generated program (compile time). The default
    /// holds every program generated from an expression within
    /// [`Limits::MAX_EXPR_NESTING`]: each level of a CEL expression is several levels of
    /// Rhai (a macro is a block holding a loop holding a call).
    pub max_expr_depth: usize,
    /// Longest string, in bytes.
    pub max_string_size: usize,
    /// Longest list.
    pub max_array_size: usize,
    /// Largest map.
    pub max_map_size: usize,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            max_operations: 100_000,
            max_call_levels: 16,
            max_expr_depth: Limits::MAX_EXPR_NESTING * 24,
            max_string_size: 64 * 1024,
            max_array_size: 10_000,
            max_map_size: 10_000,
        }
    }
}
