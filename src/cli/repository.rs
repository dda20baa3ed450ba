//! `flowc check FILES...`: the flow ids of the files named against the other flow files
//! of the repository (pre-commit passes only the changed files).

use std::path::{Path, PathBuf};

use flowc::diagnostic::Diagnostics;
use flowc::load::source_from_bytes;
use flowc::source::{is_flow_content, is_flow_file, walk};

use super::check::STDIN_NAME;

/// Where a named file's ids are looked for: its repository, or its own directory.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Scope {
    /// The nearest ancestor of the file's canonical path holding `.git` (a directory, or
    /// the file a worktree or submodule has), walked with the one walker.
    Repository(PathBuf),
    /// A file outside any repository: the flow files beside it (not below).
    Directory(PathBuf),
}

impl Scope {
    /// The scope of a file named on the command line, from its own path (never from the
    /// working directory).
    fn of(file: &Path) -> Option<Self> {
        let canonical = std::fs::canonicalize(file).ok()?;
        let dir = canonical.parent()?;
        Some(
            dir.ancestors()
                .find(|a| a.join(".git").exists())
                .map_or_else(
                    || Self::Directory(dir.to_path_buf()),
                    |r| Self::Repository(r.to_path_buf()),
                ),
        )
    }

    /// The flow files (by name) of the scope, canonical, in path order.
    fn files(&self) -> Vec<PathBuf> {
        match self {
            Self::Repository(root) => walk(root, is_flow_file).unwrap_or_default(),
            Self::Directory(dir) => {
                let Ok(entries) = std::fs::read_dir(dir) else {
                    return Vec::new();
                };
                let mut v: Vec<PathBuf> = entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .map(|e| e.path())
                    .filter(|p| is_flow_file(p))
                    .collect();
                v.sort();
                v
            }
        }
    }
}

/// A path in a message: relative to the working directory when under it, else absolute.
fn shown(p: &Path, cwd: Option<&Path>) -> String {
    cwd.and_then(|c| p.strip_prefix(c).ok())
        .unwrap_or(p)
        .display()
        .to_string()
}

/// The checked flows' ids that another flow file of the same repository declares. Each
/// named file's repository is found from the file itself: the nearest ancestor of its
/// canonical path holding `.git` (a directory or a file), walked with the one walker; a
/// file outside any repository is compared with the flow files of its own directory
/// only (and, as always, with the other files checked). Only each file's `id:` line is
/// read ([`flowc::source::dir::declared_id`]), the content test only for an id that
/// matches. One `flowc::check::duplicate-flow-id` error per checked file, at its `id`,
/// naming the other files relative to the working directory when under it, else
/// absolute.
pub fn repository_duplicates(
    named: &[&(String, Vec<u8>)],
    checked: &[(String, Vec<u8>)],
) -> Diagnostics {
    use std::collections::{HashMap, HashSet};
    use std::fmt::Write as _;
    const NAMED: usize = 3;
    let mut d = Diagnostics::new();
    let ids: Vec<Option<String>> = named
        .iter()
        .map(|(_, b)| flowc::source::dir::declared_id(b).map(|x| x.id))
        .collect();
    let scopes: Vec<Option<Scope>> = named.iter().map(|(n, _)| Scope::of(Path::new(n))).collect();
    let cwd = std::env::current_dir().and_then(std::fs::canonicalize).ok();
    // the files checked together already compare their ids among themselves
    let checked: HashSet<PathBuf> = checked
        .iter()
        .filter(|(n, _)| n != STDIN_NAME)
        .filter_map(|(n, _)| std::fs::canonicalize(n).ok())
        .collect();
    // per scope, the ids its named files declare → the other files declaring them
    let mut wanted: HashMap<&Scope, HashSet<&str>> = HashMap::new();
    for (scope, id) in scopes.iter().zip(&ids) {
        if let (Some(scope), Some(id)) = (scope, id) {
            wanted.entry(scope).or_default().insert(id.as_str());
        }
    }
    let mut found: HashMap<&Scope, HashMap<String, Vec<String>>> = HashMap::new();
    for (scope, wanted) in wanted {
        let others = found.entry(scope).or_default();
        for p in scope.files() {
            if checked.contains(&p) {
                continue;
            }
            let Ok(bytes) = std::fs::read(&p) else {
                continue;
            };
            let Some(id) = flowc::source::dir::declared_id(&bytes) else {
                continue;
            };
            if !wanted.contains(id.id.as_str()) || !is_flow_content(&bytes) {
                continue;
            }
            others
                .entry(id.id)
                .or_default()
                .push(shown(&p, cwd.as_deref()));
        }
    }
    for (((name, bytes), id), scope) in named.iter().map(|f| (&f.0, &f.1)).zip(&ids).zip(&scopes) {
        let Some(elsewhere) = scope
            .as_ref()
            .and_then(|s| found.get(s))
            .zip(id.as_ref())
            .and_then(|(others, id)| others.get(id))
        else {
            continue;
        };
        let Ok(file) = source_from_bytes(name, bytes.clone()) else {
            continue;
        };
        let Ok(root) = flowc::load::yaml::parse(&file, &flowc::load::LoadLimits::default()) else {
            continue;
        };
        let Some(node) = root.get("id") else {
            continue;
        };
        let mut text = elsewhere
            .iter()
            .take(NAMED)
            .map(|o| format!("`{o}`"))
            .collect::<Vec<_>>()
            .join(", ");
        if elsewhere.len() > NAMED {
            let _ = write!(
                text,
                " and {} more",
                super::check::thousands(elsewhere.len() - NAMED)
            );
        }
        d.add(
            &file,
            flowc::compile::CheckError::DuplicateFlowId {
                id: id.clone().unwrap_or_default(),
                others: text,
                span: node.span,
                count: elsewhere.len() + 1,
            },
        );
    }
    d
}
