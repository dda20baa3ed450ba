//! The only code that prints or exits. One file per subcommand.
#![expect(clippy::print_stderr, reason = "the CLI is the one place that prints")]

/// `print!` whose failure ends the process as [`written`] says.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        $crate::cli::written(write!(std::io::stdout().lock(), $($arg)*));
    }};
}

/// `println!` whose failure ends the process as [`written`] says.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        $crate::cli::written(writeln!(std::io::stdout().lock(), $($arg)*));
    }};
}

/// `text` safe to print on a terminal: control characters (an escape sequence in a flow
/// etcd or a file holds could set the window title or clear the screen) and the
/// line-breaking or reordering ones are written escaped (`\u{1b}`); newlines are kept
/// when `keep_newlines` (multi-line reports), escaped otherwise (one-line fields).
pub(crate) fn escape_controls(text: &str, keep_newlines: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' if keep_newlines => out.push('\n'),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202e}') => {
                out.push_str(&c.escape_unicode().to_string());
            }
            c => out.push(c),
        }
    }
    out
}

/// What a failed write to standard output means. A closed pipe (`flowc ... | head`,
/// `flowc watch ... | grep -m1 x`): the reader went away, so the process ends quietly
/// with 141 (128 + SIGPIPE, what a shell reports for a command a closed pipe ended), a
/// watcher included. Any other failure (`> /dev/full`): the output was lost, which is
/// an I/O error (exit 2), never a silent success.
pub(crate) fn written(result: std::io::Result<()>) {
    if let Err(e) = result {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        eprintln!("error: cannot write the output: {e}");
        std::process::exit(2);
    }
}

mod check;
mod completions;
mod diff;
#[cfg(feature = "etcd")]
mod etcd;
mod eval;
mod graph;
#[cfg(feature = "etcd")]
mod history;
#[cfg(feature = "etcd")]
mod publish;
mod repository;
#[cfg(feature = "etcd")]
mod rollback;
mod rule;
mod scenario;
mod test;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Exit code: the input has errors (or warnings with `--deny-warnings`).
pub const EXIT_FINDINGS: u8 = 1;
/// Exit code: usage, I/O or internal error.
pub const EXIT_FAILURE: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "flowc",
    version,
    about = "Approval-flow compiler and sandboxed rule engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Output formats of `check`.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum CheckFormat {
    /// miette's graphical report (no colour when not a terminal).
    Human,
    /// One JSON object with every diagnostic.
    Json,
    /// GitHub Actions workflow annotations.
    Github,
}

/// Output formats of `diff`.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum DiffFormat {
    /// One line per change.
    Human,
    /// One JSON object.
    Json,
}

/// Graph output formats.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum GraphFormat {
    /// Mermaid flowchart.
    Mermaid,
    /// Graphviz DOT.
    Dot,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check flow files and directories (recursively); every diagnostic of every file.
    Check {
        /// Files or directories (default: the current directory); `-` reads a flow from
        /// standard input.
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = CheckFormat::Human)]
        format: CheckFormat,
        /// Treat warnings as errors (exit 1).
        #[arg(long)]
        deny_warnings: bool,
        /// Show at most N diagnostics of one code per file, then one line counting the
        /// rest (human and github output; JSON always lists all); the human output also
        /// stops after 200 diagnostics in all and counts the rest per file. 0: no limit.
        #[arg(long, value_name = "N", default_value_t = 20)]
        max_diagnostics: usize,
        /// Check the files named on their own: do not look for their flow ids in the
        /// other flow files of the repository (by default a file named, as pre-commit
        /// passes the changed ones, must not reuse the id of a flow elsewhere in the
        /// repository, from the nearest `.git`; directories named are compared within).
        #[arg(long)]
        isolated: bool,
    },
    /// Print the step graph of a flow.
    Graph {
        /// The flow file.
        flow: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
        format: GraphFormat,
    },
    /// Run one instance of a flow and print its outcome, trace and pending tasks as JSON.
    Eval {
        /// The flow file.
        flow: PathBuf,
        /// The instance context (a JSON object).
        #[arg(long)]
        context: PathBuf,
        /// Events to apply, in order (a JSON list).
        #[arg(long)]
        events: Option<PathBuf>,
        /// Then answer every pending task this way until the instance ends.
        #[arg(long, value_enum)]
        auto: Option<AutoArg>,
        /// Which path evaluates conditions, decisions and assignee expressions (both
        /// give the same values and errors; compare them on one instance).
        #[arg(long, value_enum, default_value_t = EvaluatorArg::Direct)]
        evaluator: EvaluatorArg,
    },
    /// Explain, in words, where an instance stands at a step and how it got there.
    Explain {
        /// The flow file.
        flow: PathBuf,
        /// The instance context (a JSON object).
        #[arg(long)]
        context: PathBuf,
        /// Events to apply, in order (a JSON list, as for `eval`).
        #[arg(long)]
        events: Option<PathBuf>,
        /// The step to explain.
        #[arg(long)]
        step: String,
    },
    /// Show what changes between two versions of a flow: steps, conditions, context, edges.
    Diff {
        /// The old version.
        old: PathBuf,
        /// The new version.
        new: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = DiffFormat::Human)]
        format: DiffFormat,
    },
    /// Load a directory of flows (or, with `--etcd`, a tenant's flows in etcd) into a
    /// registry, watch it and republish what changes; one line per event.
    #[command(
        after_help = "Exit codes: 0 stopped (Ctrl-C or SIGTERM, with a directory or --etcd); 2 I/O or usage (an unreadable directory or snapshot, bad options), or, with --etcd, a connection etcd refuses as configured (TLS files it refuses or that are no certificate or key, a missing or refused --user, https:// to a plain-HTTP etcd or http:// to a TLS one): the error says what to fix. With --etcd an unreachable etcd is no exit: the watcher says so once, retries with backoff and says when it is back.\n\nWith --format json every line on stdout is one JSON object (warnings too: {\"event\":\"warning\",\"message\":...}); stderr carries only a fatal error."
    )]
    Watch {
        /// The directory (omit it to watch etcd).
        dir: Option<PathBuf>,
        /// Output format: lines for people, or one JSON object per line.
        #[arg(long, value_enum, default_value_t = watch::WatchFormat::Human)]
        format: watch::WatchFormat,
        /// etcd mode: connection, tenant, snapshot, metrics.
        #[cfg(feature = "etcd")]
        #[command(flatten)]
        etcd: WatchEtcd,
        /// Quiet time before a change is taken, in milliseconds.
        #[arg(long, default_value_t = 300)]
        debounce_ms: u64,
        /// The version store: every published version is kept there and revisions
        /// survive restarts (default: `DIR/.flowc/versions`).
        #[arg(long, conflicts_with = "no_store")]
        store: Option<PathBuf>,
        /// Keep versions in memory only: revisions restart at 1 with every run.
        #[arg(long)]
        no_store: bool,
    },
    /// Compile flow files and publish each to etcd (compare-and-swap on its key's mod
    /// revision); prints each new revision.
    #[cfg(feature = "etcd")]
    #[command(after_help = etcd::EXIT_CODES)]
    Publish {
        /// Flow files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        etcd: etcd::EtcdArgs,
        #[command(flatten)]
        write: etcd::WriteArgs,
    },
    /// Write an older version's content again as a new revision.
    #[cfg(feature = "etcd")]
    #[command(after_help = etcd::ROLLBACK_EXIT_CODES)]
    Rollback {
        /// The flow id.
        flow: String,
        /// The revision whose content to restore.
        #[arg(long)]
        to: u64,
        #[command(flatten)]
        etcd: etcd::EtcdArgs,
        #[command(flatten)]
        write: etcd::WriteArgs,
    },
    /// Every accepted version of a flow in etcd: revision, hash, author, message, time,
    /// and the diff from the previous version.
    #[cfg(feature = "etcd")]
    #[command(after_help = etcd::HISTORY_EXIT_CODES)]
    History {
        /// The flow id.
        flow: String,
        #[command(flatten)]
        etcd: etcd::EtcdArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = DiffFormat::Human)]
        format: DiffFormat,
    },
    /// Run scenario files (`*.test.yaml`) under the paths and report like a test runner.
    #[command(after_help = test::HELP)]
    Test {
        /// Scenario files, directories (searched for scenario files; default: the
        /// current directory) or flow files (the scenario files under the current
        /// directory whose `flow:` is one of them); other YAML is ignored.
        paths: Vec<PathBuf>,
        /// Which path evaluates conditions, decisions and assignee expressions (as for
        /// `eval`).
        #[arg(long, value_enum, default_value_t = EvaluatorArg::Direct)]
        evaluator: EvaluatorArg,
    },
    /// Explain a diagnostic code, with a bad and a fixed example from the fixtures.
    Rule {
        /// The code (`flowc::graph::unknown-step`, `graph::unknown-step` or
        /// `graph.unknown-step`).
        #[arg(
            required_unless_present = "all",
            value_parser = rule::CodeParser,
            hide_possible_values = true
        )]
        code: Option<String>,
        /// List every code with its summary.
        #[arg(long, conflicts_with = "code")]
        all: bool,
    },
    /// Print a shell completion script (`flowc completions bash > /etc/bash_completion.d/flowc`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// `flowc watch --etcd ...` options (all optional: `flowc watch DIR` takes none).
#[cfg(feature = "etcd")]
#[derive(clap::Args, Debug)]
struct WatchEtcd {
    /// etcd endpoints, comma-separated (watch etcd instead of a directory).
    #[arg(long = "etcd", env = "FLOWC_ETCD", value_delimiter = ',')]
    endpoints: Vec<String>,
    /// The tenant whose flows to watch.
    #[arg(long)]
    tenant: Option<String>,
    /// The key prefix.
    #[arg(long, default_value = flowc::source::etcd::DEFAULT_PREFIX)]
    prefix: String,
    /// CA certificate (PEM).
    #[arg(long)]
    cacert: Option<PathBuf>,
    /// Client certificate (PEM).
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Client certificate's key (PEM).
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// `user:password`.
    #[arg(long)]
    user: Option<String>,
    /// Keep every accepted version here and serve it when etcd is unreachable at start.
    #[arg(long)]
    snapshot: Option<PathBuf>,
    /// Serve Prometheus metrics at `http://HOST:PORT/metrics` (`127.0.0.1:9464`,
    /// `localhost:9464`).
    #[arg(long, value_name = "HOST:PORT")]
    metrics_addr: Option<String>,
}

#[cfg(feature = "etcd")]
impl WatchEtcd {
    /// The first etcd-only option given on the command line (`flowc watch DIR` takes
    /// none). Endpoints taken from `FLOWC_ETCD` do not count: a shell may export it.
    fn given(&self) -> Option<&'static str> {
        let from_env = std::env::var("FLOWC_ETCD")
            .is_ok_and(|v| v.split(',').map(str::to_owned).collect::<Vec<_>>() == self.endpoints);
        [
            (!self.endpoints.is_empty() && !from_env, "--etcd"),
            (self.tenant.is_some(), "--tenant"),
            (self.cacert.is_some(), "--cacert"),
            (self.cert.is_some(), "--cert"),
            (self.key.is_some(), "--key"),
            (self.user.is_some(), "--user"),
            (self.snapshot.is_some(), "--snapshot"),
            (self.metrics_addr.is_some(), "--metrics-addr"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }
}

/// `--auto` answers.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum AutoArg {
    /// Approve every task; service calls succeed.
    Approve,
    /// Reject every task; service calls succeed.
    Reject,
}

impl From<AutoArg> for flowc::runtime::Auto {
    fn from(a: AutoArg) -> Self {
        match a {
            AutoArg::Approve => flowc::runtime::Auto::Approve,
            AutoArg::Reject => flowc::runtime::Auto::Reject,
        }
    }
}

/// `--evaluator`: the library's [`flowc::compile::Evaluator`].
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum EvaluatorArg {
    /// The lowered IR, run directly (the default).
    Direct,
    /// The sandboxed Rhai programs.
    Sandbox,
}

impl From<EvaluatorArg> for flowc::compile::Evaluator {
    fn from(a: EvaluatorArg) -> Self {
        match a {
            EvaluatorArg::Direct => Self::Direct,
            EvaluatorArg::Sandbox => Self::Sandbox,
        }
    }
}

/// Renders a runtime error as `what: error: message (code)` plus its help.
pub fn render_error(what: &str, e: &flowc::runtime::RuntimeError) -> String {
    use miette::Diagnostic as _;
    use std::fmt::Write as _;
    let code = flowc::diagnostic::ErrorCode::code(e);
    let mut s = format!("{what}: error[{code}]: {e}");
    if let Some(h) = e.help() {
        let _ = write!(s, "\n  help: {h}");
    }
    s
}

#[cfg(feature = "etcd")]
fn watch_etcd(w: WatchEtcd, format: watch::WatchFormat) -> u8 {
    let Some(tenant) = w.tenant else {
        eprintln!("error: `flowc watch` needs a directory, or `--etcd URL --tenant T`");
        return EXIT_FAILURE;
    };
    if w.endpoints.is_empty() {
        eprintln!("error: `flowc watch --tenant` needs `--etcd URL` (or FLOWC_ETCD)");
        return EXIT_FAILURE;
    }
    let conn = etcd::EtcdArgs {
        endpoints: w.endpoints,
        tenant,
        prefix: w.prefix,
        cacert: w.cacert,
        cert: w.cert,
        key: w.key,
        user: w.user,
    };
    watch::run_etcd(&watch::EtcdWatchArgs {
        conn: &conn,
        snapshot: w.snapshot.as_deref(),
        format,
        metrics_addr: w.metrics_addr.as_deref(),
    })
}

/// Runs the command line.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_FAILURE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let code = match cli.command {
        Command::Check {
            paths,
            format,
            deny_warnings,
            max_diagnostics,
            isolated,
        } => check::run(&paths, format, deny_warnings, max_diagnostics, isolated),
        Command::Graph { flow, format } => graph::run(&flow, format),
        Command::Eval {
            flow,
            context,
            events,
            auto,
            evaluator,
        } => eval::run(
            &flow,
            &context,
            events.as_deref(),
            auto.map(Into::into),
            evaluator.into(),
        ),
        Command::Explain {
            flow,
            context,
            events,
            step,
        } => eval::explain(&flow, &context, events.as_deref(), &step),
        Command::Test { paths, evaluator } => test::run(
            &paths,
            &flowc::compile::Options {
                evaluator: evaluator.into(),
                ..flowc::compile::Options::default()
            },
        ),
        Command::Diff { old, new, format } => diff::run(&old, &new, format),
        #[cfg(feature = "etcd")]
        Command::Publish { files, etcd, write } => publish::run(&files, &etcd, &write),
        #[cfg(feature = "etcd")]
        Command::Rollback {
            flow,
            to,
            etcd,
            write,
        } => rollback::run(&flow, to, &etcd, &write),
        #[cfg(feature = "etcd")]
        Command::History { flow, etcd, format } => history::run(&flow, &etcd, format),
        Command::Watch {
            dir,
            format,
            #[cfg(feature = "etcd")]
            etcd,
            debounce_ms,
            store,
            no_store,
        } => match dir {
            #[cfg(feature = "etcd")]
            Some(_) if let Some(flag) = etcd.given() => {
                eprintln!(
                    "error: `{flag}` is an option of `flowc watch --etcd`, not of `flowc watch DIR`\n  help: watch either a directory or a tenant in etcd: drop `{flag}`, or drop DIR and pass `--etcd URL --tenant T`"
                );
                EXIT_FAILURE
            }
            Some(dir) => watch::run(&dir, debounce_ms, store.as_deref(), no_store, format),
            #[cfg(feature = "etcd")]
            None => watch_etcd(etcd, format),
            #[cfg(not(feature = "etcd"))]
            None => {
                eprintln!("error: `flowc watch` needs a directory");
                EXIT_FAILURE
            }
        },
        Command::Rule { code, all } => rule::run(code.as_deref(), all),
        Command::Completions { shell } => completions::run(shell),
    };
    ExitCode::from(code)
}
