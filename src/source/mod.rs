//! Stage 9: sources that feed a [`Registry`]. The directory source is the embedded
//! default: load a directory of flows, then watch it and republish what changes.
//!
//! Every directory walk of the crate and its CLI (`flowc check`, `flowc test`, the
//! directory source's scan and its watcher) goes through [`walk`]: the `ignore` crate's
//! walker (ripgrep's) honouring `.gitignore`, `.ignore` and `.git/info/exclude`, skipping
//! hidden entries and the vendored directories of [`VENDORED_DIRS`]. Flow files are then
//! recognised by their content ([`is_flow_content`]), not by their name.
//!
//! [`Registry`]: crate::registry::Registry

pub mod dir;
#[cfg(feature = "etcd")]
pub mod etcd;

use std::path::{Path, PathBuf};

pub use dir::{DirSource, SourceEvent, Watch};

/// Directories a walk never enters (besides hidden ones): other tools' vendored trees
/// and build output, which hold YAML that is not ours.
pub const VENDORED_DIRS: [&str; 3] = ["node_modules", "target", "vendor"];

fn ext_is(p: &Path, want: &[&str]) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| want.iter().any(|w| e.eq_ignore_ascii_case(w)))
}

/// A YAML file by name: `*.yaml` or `*.yml` (any case).
#[must_use]
pub fn is_yaml_file(p: &Path) -> bool {
    ext_is(p, &["yaml", "yml"])
}

/// A scenario file: `*.test.yaml` or `*.test.yml` (any case).
#[must_use]
pub fn is_scenario_file(p: &Path) -> bool {
    let stem = Path::new(p.file_stem().unwrap_or_default());
    is_yaml_file(p) && ext_is(stem, &["test"])
}

/// A file that may hold a flow, by its name: a YAML file that is not a scenario file.
/// Whether it does is decided by its content ([`is_flow_content`]).
#[must_use]
pub fn is_flow_file(p: &Path) -> bool {
    is_yaml_file(p) && !is_scenario_file(p)
}

/// True when the text is a flow: a top-level `kind: ApprovalFlow` or an
/// `apiVersion: flowc/...` (either marker is enough, so that a typo in the other one
/// is reported by the checker instead of the file being skipped silently).
///
/// Decided line by line, without parsing, so that a flow with a YAML syntax error is
/// still recognised (and reported) and other YAML, broken or not, never is. A top-level
/// key starts at column 1 and may be quoted; the value may be quoted and followed by a
/// comment.
///
/// When no line says so, the text is parsed as YAML (bounded by the loader's limits):
/// a flow written in flow style (`{apiVersion: flowc/v1, ...}`), indented, or with its
/// values on the next line is a flow too.
#[must_use]
pub fn is_flow_content(bytes: &[u8]) -> bool {
    is_flow_by_lines(bytes) || is_flow_by_yaml(bytes)
}

/// The top-level mapping of the parsed YAML names a flow.
fn is_flow_by_yaml(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    let file = crate::span::SourceFile::new("-", text);
    let Ok(root) = crate::load::yaml::parse(&file, &crate::load::LoadLimits::default()) else {
        return false;
    };
    let kind = root.get("kind").and_then(crate::load::Node::as_str);
    let api = root.get("apiVersion").and_then(crate::load::Node::as_str);
    kind == Some("ApprovalFlow") || api.is_some_and(|a| a.starts_with("flowc/"))
}

fn is_flow_by_lines(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    bytes.split(|b| *b == b'\n').any(|line| {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            return false;
        };
        let (key, rest) = line.split_at(colon);
        let value = rest.get(1..).unwrap_or_default();
        let value = match value.windows(2).position(|w| w == b" #") {
            Some(comment) => value.get(..comment).unwrap_or_default(),
            None => value,
        };
        match unquote(key.trim_ascii_end()) {
            b"kind" => unquote(value.trim_ascii()) == b"ApprovalFlow",
            b"apiVersion" => unquote(value.trim_ascii()).starts_with(b"flowc/"),
            _ => false,
        }
    })
}

fn unquote(s: &[u8]) -> &[u8] {
    for q in [b'"', b'\''] {
        if let Some(inner) = s.strip_prefix(&[q]).and_then(|s| s.strip_suffix(&[q])) {
            return inner;
        }
    }
    s
}

fn is_vendored(name: &std::ffi::OsStr) -> bool {
    name.to_str().is_some_and(|n| VENDORED_DIRS.contains(&n))
}

/// The files under `dir` that `keep` accepts, sorted: recursively, honouring
/// `.gitignore` (also outside a git repository), `.ignore` and `.git/info/exclude`,
/// without entering hidden entries or [`VENDORED_DIRS`] (`dir` itself is always
/// entered) and without following symbolic links below `dir`. The one walk of the crate.
///
/// # Errors
/// The first I/O error (an unreadable directory or entry).
pub fn walk(dir: &Path, keep: fn(&Path) -> bool) -> std::io::Result<Vec<PathBuf>> {
    let walker = ignore::WalkBuilder::new(dir)
        .standard_filters(true)
        .git_global(false)
        .require_git(false)
        .follow_links(false)
        .filter_entry(|e| {
            e.depth() == 0
                || !(e.file_type().is_some_and(|t| t.is_dir()) && is_vendored(e.file_name()))
        })
        .build();
    let mut out = Vec::new();
    for entry in walker {
        let entry = entry.map_err(|e| match e.into_io_error() {
            Some(io) => io,
            None => std::io::Error::other("cannot read an ignore file"),
        })?;
        if entry.file_type().is_some_and(|t| t.is_file()) && keep(entry.path()) {
            out.push(entry.into_path());
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::is_flow_content;

    #[test]
    fn flows_are_recognised_by_content() {
        let flow = b"apiVersion: flowc/v1\nkind: ApprovalFlow\nid: x\n";
        assert!(is_flow_content(flow));
        assert!(is_flow_content(b"\xEF\xBB\xBFkind: ApprovalFlow\n"));
        assert!(is_flow_content(b"\"kind\": 'ApprovalFlow' # a flow\r\n"));
        assert!(is_flow_content(b"id: x\napiVersion: \"flowc/v2\"\n"));
        // broken YAML is still a flow when it says so
        assert!(is_flow_content(
            b"apiVersion: flowc/v1\nkind: [ApprovalFlow\n"
        ));
        for other in [
            &b"version: '3'\nservices:\n  web:\n    image: nginx\n"[..],
            b"apiVersion: apps/v1\nkind: Deployment\n",
            b"spec:\n  kind: ApprovalFlow\n  apiVersion: flowc/v1\n",
            b"# kind: ApprovalFlow\n",
            b"kind: ApprovalFlows\n",
            b"",
            b"\xff\xfe{[",
        ] {
            assert!(
                !is_flow_content(other),
                "{}",
                String::from_utf8_lossy(other)
            );
        }
    }
}
