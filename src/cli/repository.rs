//! `flowc check FILES...`: the flow ids of the files named against the other flow files
//! of the repository (pre-commit passes only the changed files).

use std::path::PathBuf;

use flowc::diagnostic::Diagnostics;
use flowc::load::source_from_bytes;
use flowc::source::{is_flow_content, is_flow_file, walk};

use super::check::STDIN_NAME;

/// The checked flows' ids that another flow file of the repository declares: the
/// repository is the nearest ancestor of the working directory holding `.git` (else
/// the working directory), walked with the one walker; only each file's `id:` line is
/// read ([`flowc::source::dir::declared_id`]), the content test only for an id that
/// matches. One `flowc::check::duplicate-flow-id` error per checked file, at its `id`.
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
    let wanted: HashSet<&str> = ids.iter().flatten().map(String::as_str).collect();
    if wanted.is_empty() {
        return d;
    }
    let Ok(cwd) = std::env::current_dir().and_then(std::fs::canonicalize) else {
        return d;
    };
    let root = cwd
        .ancestors()
        .find(|a| a.join(".git").exists())
        .unwrap_or(&cwd);
    let Ok(all) = walk(root, is_flow_file) else {
        return d;
    };
    // the files checked together already compare their ids among themselves
    let checked: HashSet<PathBuf> = checked
        .iter()
        .filter(|(n, _)| n != STDIN_NAME)
        .filter_map(|(n, _)| std::fs::canonicalize(n).ok())
        .collect();
    let mut others: HashMap<String, Vec<String>> = HashMap::new();
    for p in all {
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
        let shown = p.strip_prefix(&cwd).unwrap_or(&p).display().to_string();
        others.entry(id.id).or_default().push(shown);
    }
    for ((name, bytes), id) in named.iter().map(|f| (&f.0, &f.1)).zip(&ids) {
        let Some(elsewhere) = id.as_ref().and_then(|id| others.get(id)) else {
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
