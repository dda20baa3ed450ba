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

/// Compiles every file (in parallel) and returns all diagnostics, sorted.
pub fn check_files(files: &[PathBuf]) -> Result<Diagnostics, String> {
    let sources: Vec<(String, std::io::Result<Vec<u8>>)> = files
        .iter()
        .map(|f| (f.display().to_string(), std::fs::read(f)))
        .collect();
    let mut texts = Vec::with_capacity(sources.len());
    for (name, r) in sources {
        texts.push((name.clone(), r.map_err(|e| format!("{name}: {e}"))?));
    }
    Ok(flowc::compile::check_many(texts, &Options::default()))
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

/// One JSON object per SPEC §5.
pub fn to_json(files: usize, diags: &Diagnostics) -> serde_json::Value {
    let items: Vec<serde_json::Value> = diags
        .iter()
        .map(|d| {
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
        })
        .collect();
    serde_json::json!({
        "files": files,
        "errors": diags.error_count(),
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
    let files = match collect_files(paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILURE;
        }
    };
    let diags = match check_files(&files) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILURE;
        }
    };
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    match format {
        CheckFormat::Json => {
            let _ = writeln!(lock, "{}", to_json(files.len(), &diags));
        }
        CheckFormat::Github => {
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
                files.len(),
                if files.len() == 1 { "" } else { "s" },
                diags.error_count(),
                if diags.error_count() == 1 { "" } else { "s" },
                diags.warning_count(),
                if diags.warning_count() == 1 { "" } else { "s" },
            );
        }
    }
    if diags.has_errors() || (deny_warnings && diags.warning_count() > 0) {
        EXIT_FINDINGS
    } else {
        0
    }
}

/// Reads and compiles one flow for other subcommands; diagnostics go to stderr.
pub fn load_one(path: &Path) -> Result<flowc::compile::CompiledFlow, u8> {
    let bytes = std::fs::read(path).map_err(|e| {
        eprintln!("error: {}: {e}", path.display());
        EXIT_FAILURE
    })?;
    let name = path.display().to_string();
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
