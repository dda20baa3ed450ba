//! `flowc check`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use flowc::compile::{Options, compile};
use flowc::diagnostic::{Diagnostic, Diagnostics, Severity};
use flowc::load::source_from_bytes;
use flowc::source::{is_flow_content, is_flow_file, is_scenario_file, walk};

use super::{CheckFormat, EXIT_FAILURE, EXIT_FINDINGS};

/// The flows to check, and the YAML files that are not flows.
pub struct Inputs {
    /// Each flow file's name (as walked or named) and bytes, in path order.
    pub flows: Vec<(String, Vec<u8>)>,
    /// YAML files that are not flows, in path order.
    pub skipped: Vec<Skipped>,
}

/// A YAML file that is not a flow (no top-level `kind: ApprovalFlow` or
/// `apiVersion: flowc/...`).
pub struct Skipped {
    /// The file.
    pub path: PathBuf,
    /// Named on the command line (a warning) rather than found by a walk.
    pub named: bool,
}

/// A path that could not be read: reported as an entry of `--format json`, on stderr
/// otherwise, and exit code 2.
pub struct IoProblem {
    /// The path as given.
    pub name: String,
    /// The operating system's message.
    pub message: String,
}

/// The display name of standard input (`flowc check -`).
pub const STDIN_NAME: &str = "<stdin>";

/// Reads the flow files in the paths (default `.`; `-` is standard input): a directory
/// is walked (scenario files are left out by name), a named file is taken as it is;
/// each is kept when its content is a flow and skipped otherwise. What cannot be read
/// is returned apart, so that everything else is still checked.
pub fn collect_flows(paths: &[PathBuf]) -> (Inputs, Vec<IoProblem>) {
    let mut inputs = Inputs {
        flows: Vec::new(),
        skipped: Vec::new(),
    };
    let mut problems = Vec::new();
    let (stdin, paths): (Vec<PathBuf>, Vec<PathBuf>) =
        paths.iter().cloned().partition(|p| p.as_os_str() == "-");
    if !stdin.is_empty() {
        let mut bytes = Vec::new();
        match std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut bytes) {
            Ok(_) if is_flow_content(&bytes) => inputs.flows.push((STDIN_NAME.to_owned(), bytes)),
            Ok(_) => inputs.skipped.push(Skipped {
                path: PathBuf::from(STDIN_NAME),
                named: true,
            }),
            Err(e) => problems.push(IoProblem {
                name: STDIN_NAME.to_owned(),
                message: e.to_string(),
            }),
        }
        if paths.is_empty() {
            return (inputs, problems);
        }
    }
    let mut found = Vec::new();
    let defaults = [PathBuf::from(".")];
    for p in if paths.is_empty() {
        &defaults[..]
    } else {
        &paths[..]
    } {
        match expand(std::slice::from_ref(p), is_flow_file) {
            Ok(f) => found.extend(f),
            Err(message) => problems.push(IoProblem {
                name: p.display().to_string(),
                message,
            }),
        }
    }
    found.sort();
    found.dedup_by(|a, b| a.0 == b.0);
    // one file reached by two spellings (`./a.yaml a.yaml`, an absolute path) is one file
    let mut seen = std::collections::HashSet::new();
    found.retain(|(p, _)| seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())));
    for (path, named) in found {
        match std::fs::read(&path) {
            Ok(bytes) if is_flow_content(&bytes) => {
                inputs.flows.push((path.display().to_string(), bytes));
            }
            Ok(_) => inputs.skipped.push(Skipped { path, named }),
            Err(e) => problems.push(IoProblem {
                name: path.display().to_string(),
                message: e.to_string(),
            }),
        }
    }
    (inputs, problems)
}

/// Collects scenario files (`*.test.yaml`, `*.test.yml`) under the paths.
pub fn collect_scenarios(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out: Vec<PathBuf> = expand(paths, is_scenario_file)?
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// The files of the paths (default `.`): directories through the one walker with
/// `keep`, named files as they are (`true`: named).
fn expand(paths: &[PathBuf], keep: fn(&Path) -> bool) -> Result<Vec<(PathBuf, bool)>, String> {
    let mut out = Vec::new();
    let defaults = [PathBuf::from(".")];
    let paths = if paths.is_empty() {
        &defaults[..]
    } else {
        paths
    };
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| e.to_string())?;
        if meta.is_dir() {
            let files = walk(p, keep).map_err(|e| e.to_string())?;
            // `flowc check` in a directory names its files `a/b.yaml`, not `./a/b.yaml`
            out.extend(files.into_iter().map(|f| match f.strip_prefix(".") {
                Ok(rel) if p == Path::new(".") => (rel.to_path_buf(), false),
                _ => (f, false),
            }));
        } else {
            out.push((p.clone(), true));
        }
    }
    Ok(out)
}

/// Every diagnostic rendered for a person, one after another.
pub fn render_all<'a>(diags: impl IntoIterator<Item = &'a Diagnostic>) -> String {
    let mut out = String::new();
    for d in diags {
        render_human(d, &mut out);
    }
    out
}

pub fn render_human(d: &Diagnostic, out: &mut String) {
    let theme = if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    let handler = miette::GraphicalReportHandler::new_themed(theme).with_width(100);
    let _ = handler.render_report(out, d);
}

/// One diagnostic as `flowc check --format json` prints it (1-based character
/// columns, byte offsets of the primary span).
pub fn diagnostic_json(d: &Diagnostic) -> serde_json::Value {
    let (line, column) = d.line_col();
    let span = d.span().unwrap_or_default();
    serde_json::json!({
        "file": d.file().name(),
        "line": line,
        "column": column,
        "offset": span.start,
        "endOffset": span.end,
        "severity": d.severity(),
        "code": d.code(),
        "message": d.message(),
        "help": d.help(),
    })
}

/// One JSON object per SPEC §5, with `skipped`: the YAML files that are not flows; I/O
/// problems are entries with code `flowc::io::read`.
pub fn to_json(
    files: usize,
    skipped: &[Skipped],
    diags: &Diagnostics,
    io: &[IoProblem],
) -> serde_json::Value {
    let io_items = io.iter().map(|p| {
        serde_json::json!({
            "file": p.name,
            "line": 1,
            "column": 1,
            "offset": 0,
            "endOffset": 0,
            "severity": Severity::Error,
            "code": flowc::codes::Code::IoRead.as_str(),
            "message": p.message,
            "help": flowc::codes::Code::IoRead.info().summary,
        })
    });
    let items: Vec<serde_json::Value> = io_items.chain(diags.iter().map(diagnostic_json)).collect();
    serde_json::json!({
        "files": files,
        "errors": diags.error_count() + io.len(),
        "warnings": diags.warning_count(),
        "diagnostics": items,
        "skipped": skipped
            .iter()
            .map(|s| s.path.display().to_string())
            .collect::<Vec<_>>(),
    })
}

fn github_escape(s: &str, property: bool) -> String {
    let s = s
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A");
    if property {
        s.replace(':', "%3A").replace(',', "%2C")
    } else {
        s
    }
}

/// The message for a named file that is not a flow.
fn not_a_flow(path: &Path) -> String {
    format!(
        "{} is not a flow (no top-level `kind: ApprovalFlow` or `apiVersion: flowc/...`); skipped",
        path.display()
    )
}

/// The human summary's line naming the files skipped by walks (the first few).
pub(super) fn skipped_line(skipped: &[Skipped]) -> Option<String> {
    use std::fmt::Write as _;
    const SHOWN: usize = 5;
    let walked: Vec<String> = skipped
        .iter()
        .filter(|s| !s.named)
        .map(|s| s.path.display().to_string())
        .collect();
    if walked.is_empty() {
        return None;
    }
    let mut names = walked
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if walked.len() > SHOWN {
        let _ = write!(names, " and {} more", thousands(walked.len() - SHOWN));
    }
    Some(if walked.len() == 1 {
        format!("skipped 1 YAML file that is not a flow: {names}")
    } else {
        format!(
            "skipped {} YAML files that are not flows: {names}",
            thousands(walked.len())
        )
    })
}

/// What the human and github outputs show: each diagnostic up to the cap of its code in
/// its file, then one line per capped code counting the rest.
enum Shown<'a> {
    Diagnostic(&'a Diagnostic),
    More {
        file: &'a str,
        code: String,
        severity: Severity,
        count: usize,
    },
}

impl Shown<'_> {
    fn more_message(file: &str, code: &str, severity: Severity, count: usize) -> String {
        let kind = match (severity, count) {
            (Severity::Error, 1) => "error",
            (Severity::Error, _) => "errors",
            (_, 1) => "warning",
            _ => "warnings",
        };
        format!(
            "and {} more `{code}` {kind} in {file} (use --format json for all, or --max-diagnostics 0)",
            thousands(count)
        )
    }
}

/// `2980` as `2,980`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Caps the diagnostics at `max` per code and file (0: no cap), keeping each file's
/// diagnostics together in their order and its "and N more" lines after them.
fn cap(diags: &Diagnostics, max: usize) -> Vec<Shown<'_>> {
    let mut files: Vec<&str> = Vec::new();
    for d in diags {
        if !files.contains(&d.file().name()) {
            files.push(d.file().name());
        }
    }
    let mut shown = Vec::new();
    for file in files {
        // (code, severity, how many seen) in order of first appearance
        let mut seen: Vec<(String, Severity, usize)> = Vec::new();
        for d in diags.iter().filter(|d| d.file().name() == file) {
            let code = d.code();
            let n = if let Some(entry) = seen
                .iter_mut()
                .find(|(c, s, _)| *c == code && *s == d.severity())
            {
                entry.2 += 1;
                entry.2
            } else {
                seen.push((code, d.severity(), 1));
                1
            };
            if max == 0 || n <= max {
                shown.push(Shown::Diagnostic(d));
            }
        }
        for (code, severity, n) in seen {
            if max > 0 && n > max {
                shown.push(Shown::More {
                    file,
                    code,
                    severity,
                    count: n - max,
                });
            }
        }
    }
    shown
}

/// How many diagnostics the human output shows in all (across files) before it
/// summarises the rest per file; `--max-diagnostics 0` lifts it with the per-code cap.
const TOTAL_SHOWN: usize = 200;

/// The note for what the total cap leaves out: how many diagnostics in how many files,
/// and the first files with their counts.
fn rest_line(rest: &[Shown<'_>]) -> Option<String> {
    const FILES_NAMED: usize = 5;
    let mut per_file: Vec<(&str, usize)> = Vec::new();
    for item in rest {
        let (file, n) = match item {
            Shown::Diagnostic(d) => (d.file().name(), 1),
            Shown::More { file, count, .. } => (*file, *count),
        };
        match per_file.iter_mut().find(|(f, _)| *f == file) {
            Some(entry) => entry.1 += n,
            None => per_file.push((file, n)),
        }
    }
    let total: usize = per_file.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return None;
    }
    let mut named: Vec<String> = per_file
        .iter()
        .take(FILES_NAMED)
        .map(|(f, n)| format!("{f} ({})", thousands(*n)))
        .collect();
    if per_file.len() > FILES_NAMED {
        named.push(format!("{} more", thousands(per_file.len() - FILES_NAMED)));
    }
    Some(format!(
        "and {} more diagnostic{} in {} file{}: {}; --max-diagnostics 0 (or --format json) for all",
        thousands(total),
        if total == 1 { "" } else { "s" },
        thousands(per_file.len()),
        if per_file.len() == 1 { "" } else { "s" },
        named.join(", ")
    ))
}

/// `--format github`: one workflow annotation line per problem.
fn github(
    lock: &mut impl Write,
    io: &[IoProblem],
    skipped: &[Skipped],
    diags: &Diagnostics,
    max_diagnostics: usize,
) {
    for p in io {
        super::written(writeln!(
            lock,
            "::error file={},title={}::{}",
            github_escape(&p.name, true),
            github_escape(flowc::codes::Code::IoRead.as_str(), true),
            github_escape(&p.message, false)
        ));
    }
    for s in skipped.iter().filter(|s| s.named) {
        super::written(writeln!(
            lock,
            "::warning file={}::{}",
            github_escape(&s.path.display().to_string(), true),
            github_escape(&not_a_flow(&s.path), false)
        ));
    }
    for item in cap(diags, max_diagnostics) {
        let d = match item {
            Shown::Diagnostic(d) => d,
            Shown::More {
                file,
                code,
                severity,
                count,
            } => {
                super::written(writeln!(
                    lock,
                    "::notice file={}::{}",
                    github_escape(file, true),
                    github_escape(&Shown::more_message(file, &code, severity, count), false)
                ));
                continue;
            }
        };
        let (line, col) = d.line_col();
        let level = if d.severity() == Severity::Error {
            "error"
        } else {
            "warning"
        };
        let mut msg = d.message();
        if let Some(h) = d.help() {
            msg.push_str("\nhelp: ");
            msg.push_str(&h);
        }
        super::written(writeln!(
            lock,
            "::{level} file={},line={line},col={col},title={}::{}",
            github_escape(d.file().name(), true),
            github_escape(&d.code(), true),
            github_escape(&msg, false)
        ));
    }
}

pub fn run(
    paths: &[PathBuf],
    format: CheckFormat,
    deny_warnings: bool,
    max_diagnostics: usize,
    isolated: bool,
) -> u8 {
    let (Inputs { flows, skipped }, io) = collect_flows(paths);
    let files = flows.len() + io.len();
    // files named (as pre-commit passes the changed ones): their ids against the rest of
    // the repository; a directory named is a set of flows of its own, compared within
    let named: Vec<&(String, Vec<u8>)> = flows
        .iter()
        .filter(|(n, _)| {
            paths
                .iter()
                .any(|p| p.is_file() && p.display().to_string() == *n)
        })
        .collect();
    let elsewhere = if isolated || named.is_empty() {
        Diagnostics::new()
    } else {
        super::repository::repository_duplicates(&named, &flows)
    };
    let mut diags = flowc::compile::check_many(flows, &Options::default());
    if !elsewhere.is_empty() {
        diags.extend(elsewhere);
        diags.sort();
    }
    if format != CheckFormat::Json {
        for p in &io {
            eprintln!("error: {}: {}", p.name, p.message);
        }
    }
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    match format {
        CheckFormat::Json => {
            super::written(writeln!(lock, "{}", to_json(files, &skipped, &diags, &io)));
        }
        CheckFormat::Github => {
            github(&mut lock, &io, &skipped, &diags, max_diagnostics);
        }
        CheckFormat::Human => {
            let mut out = String::new();
            for s in skipped.iter().filter(|s| s.named) {
                out.push_str("warning: ");
                out.push_str(&not_a_flow(&s.path));
                out.push('\n');
            }
            let items = cap(&diags, max_diagnostics);
            let mut rendered = 0usize;
            for (i, item) in items.iter().enumerate() {
                // a total cap across files, after the per-code cap
                if max_diagnostics > 0 && rendered >= TOTAL_SHOWN {
                    if let Some(rest) = rest_line(items.get(i..).unwrap_or_default()) {
                        out.push_str("note: ");
                        out.push_str(&rest);
                        out.push('\n');
                    }
                    break;
                }
                match *item {
                    Shown::Diagnostic(d) => {
                        rendered += 1;
                        render_human(d, &mut out);
                    }
                    Shown::More {
                        file,
                        ref code,
                        severity,
                        count,
                    } => {
                        out.push_str("note: ");
                        out.push_str(&Shown::more_message(file, code, severity, count));
                        out.push('\n');
                    }
                }
                out.push('\n');
            }
            super::written(write!(lock, "{out}"));
            super::written(writeln!(
                lock,
                "checked {} file{}: {} error{}, {} warning{}",
                thousands(files),
                if files == 1 { "" } else { "s" },
                thousands(diags.error_count() + io.len()),
                if diags.error_count() + io.len() == 1 {
                    ""
                } else {
                    "s"
                },
                thousands(diags.warning_count()),
                if diags.warning_count() == 1 { "" } else { "s" },
            ));
            if let Some(line) = skipped_line(&skipped) {
                super::written(writeln!(lock, "{line}"));
            }
        }
    }
    // a named file that is not a flow is a warning, never a failure (pre-commit passes
    // every YAML file of a commit): it does not count under `--deny-warnings`
    if !io.is_empty() {
        EXIT_FAILURE
    } else if diags.has_errors() || (deny_warnings && diags.warning_count() > 0) {
        EXIT_FINDINGS
    } else {
        0
    }
}

/// Reads and compiles one flow for other subcommands; diagnostics go to stderr.
pub fn load_one(path: &Path) -> Result<flowc::compile::CompiledFlow, u8> {
    load_one_with(path, &Options::default())
}

/// As [`load_one`], compiled with these options (`--evaluator`).
pub fn load_one_with(path: &Path, options: &Options) -> Result<flowc::compile::CompiledFlow, u8> {
    let (name, bytes) = if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut bytes)
            .map(|_| (STDIN_NAME.to_owned(), bytes))
    } else {
        std::fs::read(path).map(|b| (path.display().to_string(), b))
    }
    .map_err(|e| {
        eprintln!("error: {}: {e}", path.display());
        EXIT_FAILURE
    })?;
    let report =
        |diags: &Diagnostics| eprint!("{}", super::escape_controls(&render_all(diags), true));
    let file = source_from_bytes(&name, bytes).map_err(|d| {
        report(&d);
        EXIT_FINDINGS
    })?;
    compile(&file, options).map_err(|d| {
        report(&d);
        EXIT_FINDINGS
    })
}
