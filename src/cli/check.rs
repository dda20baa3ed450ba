//! `flowc check`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use flowc::compile::{Options, compile};
use flowc::diagnostic::{Diagnostic, Diagnostics, Severity};
use flowc::load::source_from_bytes;
use flowc::source::{is_flow_file, is_scenario_file, walk};

use super::{CheckFormat, EXIT_FAILURE, EXIT_FINDINGS};

/// Collects flow files under the paths (sorted, deduplicated); scenario files
/// (`*.test.yaml`) are not flows.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    collect(paths, is_flow_file)
}

/// Collects scenario files (`*.test.yaml`, `*.test.yml`) under the paths.
pub fn collect_scenarios(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    collect(paths, is_scenario_file)
}

fn collect(paths: &[PathBuf], keep: fn(&Path) -> bool) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    let defaults = [PathBuf::from(".")];
    let paths = if paths.is_empty() {
        &defaults[..]
    } else {
        paths
    };
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
        if meta.is_dir() {
            out.extend(walk(p, keep).map_err(|e| format!("{}: {e}", p.display()))?);
        } else {
            out.push(p.clone());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
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

/// Reads every input: `-` is standard input, the rest are files and directories.
/// What cannot be read is returned apart, so that everything else is still checked.
pub fn read_inputs(paths: &[PathBuf]) -> (Vec<(String, Vec<u8>)>, Vec<IoProblem>) {
    let mut inputs = Vec::new();
    let mut problems = Vec::new();
    let (stdin, paths): (Vec<&PathBuf>, Vec<&PathBuf>) =
        paths.iter().partition(|p| p.as_os_str() == "-");
    if !stdin.is_empty() {
        let mut bytes = Vec::new();
        match std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut bytes) {
            Ok(_) => inputs.push((STDIN_NAME.to_owned(), bytes)),
            Err(e) => problems.push(IoProblem {
                name: STDIN_NAME.to_owned(),
                message: e.to_string(),
            }),
        }
    }
    let mut files = Vec::new();
    let default = [PathBuf::from(".")];
    let paths: Vec<&PathBuf> = if paths.is_empty() && stdin.is_empty() {
        default.iter().collect()
    } else {
        paths
    };
    for p in paths {
        match collect_files(std::slice::from_ref(p)) {
            Ok(f) => files.extend(f),
            Err(e) => problems.push(IoProblem {
                name: p.display().to_string(),
                message: e
                    .strip_prefix(&format!("{}: ", p.display()))
                    .unwrap_or(&e)
                    .to_owned(),
            }),
        }
    }
    files.sort();
    files.dedup();
    for f in files {
        let name = f.display().to_string();
        match std::fs::read(&f) {
            Ok(bytes) => inputs.push((name, bytes)),
            Err(e) => problems.push(IoProblem {
                name,
                message: e.to_string(),
            }),
        }
    }
    (inputs, problems)
}

/// One JSON object per SPEC §5; I/O problems are entries with code `flowc::io::read`.
pub fn to_json(files: usize, diags: &Diagnostics, io: &[IoProblem]) -> serde_json::Value {
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
    let items: Vec<serde_json::Value> = io_items
        .chain(diags.iter().map(|d| {
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
        }))
        .collect();
    serde_json::json!({
        "files": files,
        "errors": diags.error_count() + io.len(),
        "warnings": diags.warning_count(),
        "diagnostics": items,
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

pub fn run(paths: &[PathBuf], format: CheckFormat, deny_warnings: bool) -> u8 {
    let (inputs, io) = read_inputs(paths);
    let file_count = inputs.len() + io.len();
    let diags = flowc::compile::check_many(inputs, &Options::default());
    if format != CheckFormat::Json {
        for p in &io {
            eprintln!("error: {}: {}", p.name, p.message);
        }
    }
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    match format {
        CheckFormat::Json => {
            let _ = writeln!(lock, "{}", to_json(file_count, &diags, &io));
        }
        CheckFormat::Github => {
            for p in &io {
                let _ = writeln!(
                    lock,
                    "::error file={},title={}::{}",
                    github_escape(&p.name, true),
                    github_escape(flowc::codes::Code::IoRead.as_str(), true),
                    github_escape(&p.message, false)
                );
            }
            for d in &diags {
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
                let _ = writeln!(
                    lock,
                    "::{level} file={},line={line},col={col},title={}::{}",
                    github_escape(d.file().name(), true),
                    github_escape(&d.code(), true),
                    github_escape(&msg, false)
                );
            }
        }
        CheckFormat::Human => {
            let mut out = String::new();
            for d in &diags {
                render_human(d, &mut out);
                out.push('\n');
            }
            let _ = write!(lock, "{out}");
            let _ = writeln!(
                lock,
                "checked {} file{}: {} error{}, {} warning{}",
                file_count,
                if file_count == 1 { "" } else { "s" },
                diags.error_count(),
                if diags.error_count() == 1 { "" } else { "s" },
                diags.warning_count(),
                if diags.warning_count() == 1 { "" } else { "s" },
            );
        }
    }
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
    let report = |diags: &Diagnostics| {
        let mut out = String::new();
        for d in diags {
            render_human(d, &mut out);
        }
        eprint!("{out}");
    };
    let file = source_from_bytes(&name, bytes).map_err(|d| {
        report(&d);
        EXIT_FINDINGS
    })?;
    compile(&file, &Options::default()).map_err(|d| {
        report(&d);
        EXIT_FINDINGS
    })
}
