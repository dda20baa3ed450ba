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

/// A directory [`walk`] does not enter: hidden (`.git`, `.cache`) or `target`.
fn skipped_dir(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .is_some_and(|n| (n.starts_with('.') && n.len() > 1) || n == "target")
}

/// True when `path` is or lies in a directory under `root` that [`walk`] does not enter.
#[must_use]
pub fn in_skipped_dir(root: &Path, path: &Path) -> bool {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let mut parts: Vec<&std::ffi::OsStr> = rel.iter().collect();
    if !path.is_dir() {
        parts.pop(); // the file itself
    }
    parts.into_iter().any(skipped_dir)
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
            if ft.is_dir() {
                if !path.file_name().is_some_and(skipped_dir) {
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
