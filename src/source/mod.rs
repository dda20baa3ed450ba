//! Stage 9: sources that feed a [`Registry`]. The directory source is the embedded
//! default: load a directory of flows, then watch it and republish what changes.

pub mod dir;

use std::path::{Path, PathBuf};

pub use dir::{DirSource, SourceEvent, Watch};

fn ext_is(p: &Path, want: &[&str]) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| want.iter().any(|w| e.eq_ignore_ascii_case(w)))
}

/// A scenario file: `*.test.yaml` or `*.test.yml` (any case).
#[must_use]
pub fn is_scenario_file(p: &Path) -> bool {
    let stem = Path::new(p.file_stem().unwrap_or_default());
    ext_is(p, &["yaml", "yml"]) && ext_is(stem, &["test"])
}

/// A flow file: `*.yaml` or `*.yml` (any case) that is not a scenario file.
#[must_use]
pub fn is_flow_file(p: &Path) -> bool {
    ext_is(p, &["yaml", "yml"]) && !is_scenario_file(p)
}

/// The files under `dir` (recursively, skipping hidden directories and `target`) that
/// `keep` accepts, sorted.
///
/// # Errors
/// The first I/O error.
pub fn walk(dir: &Path, keep: fn(&Path) -> bool) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let path = entry.path();
            let ft = entry.file_type()?;
            let hidden = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.') && n.len() > 1);
            if ft.is_dir() {
                if !hidden && path.file_name().is_none_or(|n| n != "target") {
                    stack.push(path);
                }
            } else if ft.is_file() && keep(&path) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}
