//! Checking many files together: on all cores, with the flow ids compared across files.

use std::sync::Arc;

use super::{Options, compile};
use crate::diagnostic::Diagnostics;
use crate::load;
use crate::span::SourceFile;

/// Errors about files checked together.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum CheckError {
    /// One flow id in several files.
    #[error("flow id `{id}` is also defined in {others}")]
    #[diagnostic(
        code("flowc::check::duplicate-flow-id"),
        help(
            "a flow id names one flow in a registry (the directory source takes one file and refuses the others); give each flow its own `id`"
        )
    )]
    DuplicateFlowId {
        /// The id.
        id: String,
        /// The other files (the first few, then how many more).
        others: String,
        /// The id in this file.
        #[label("defined in {count} files")]
        span: crate::span::Span,
        /// How many files define it.
        count: usize,
    },
}

/// The flow id of a file and where it is written: from the compiled flow, or (when the
/// file has errors) from its YAML when that parses.
type IdSite = (String, Arc<SourceFile>, crate::span::Span);

fn id_of_failed(file: &Arc<SourceFile>, options: &Options) -> Option<IdSite> {
    let root = load::yaml::parse(file, &options.load).ok()?;
    let node = root.get("id")?;
    let id = node.as_str().filter(|s| !s.is_empty())?;
    Some((id.to_owned(), Arc::clone(file), node.span))
}

/// One error per file whose flow id another file defines too.
fn duplicate_ids(mut sites: Vec<IdSite>) -> Diagnostics {
    use std::fmt::Write as _;
    const NAMED: usize = 3;
    let mut d = Diagnostics::new();
    sites.sort_by(|a, b| (&a.0, a.1.name()).cmp(&(&b.0, b.1.name())));
    for group in sites.chunk_by(|a, b| a.0 == b.0).filter(|g| g.len() > 1) {
        for (id, file, span) in group {
            let others: Vec<String> = group
                .iter()
                .filter(|o| o.1.name() != file.name())
                .map(|o| format!("`{}`", o.1.name()))
                .collect();
            let mut text = others
                .iter()
                .take(NAMED)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if others.len() > NAMED {
                let _ = write!(text, " and {} more", others.len() - NAMED);
            }
            d.add(
                file,
                CheckError::DuplicateFlowId {
                    id: id.clone(),
                    others: text,
                    span: *span,
                    count: group.len(),
                },
            );
        }
    }
    d
}

/// Compiles many files on all cores; returns every diagnostic of every file, sorted,
/// and one error per file whose flow id another of the files defines too.
#[must_use]
pub fn check_many(files: Vec<(String, Vec<u8>)>, options: &Options) -> Diagnostics {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let chunk = files.len().div_ceil(threads).max(1);
    let mut all = Diagnostics::new();
    let mut files = files;
    let mut chunks = Vec::new();
    while !files.is_empty() {
        let rest = files.split_off(chunk.min(files.len()));
        chunks.push(std::mem::replace(&mut files, rest));
    }
    let results: Vec<(Diagnostics, Vec<IdSite>)> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| {
                s.spawn(move || {
                    let mut d = Diagnostics::new();
                    let mut ids = Vec::new();
                    for (name, bytes) in c {
                        match load::source_from_bytes(&name, bytes) {
                            Ok(file) => match compile(&file, options) {
                                Ok(flow) => {
                                    let id = &flow.flow.id;
                                    ids.push((id.value.clone(), Arc::clone(&file), id.span));
                                    for w in flow.warnings {
                                        d.push(w);
                                    }
                                }
                                Err(e) => {
                                    ids.extend(id_of_failed(&file, options));
                                    d.extend(e);
                                }
                            },
                            Err(e) => d.extend(e),
                        }
                    }
                    (d, ids)
                })
            })
            .collect();
        // a panic in a worker is a bug: re-raise it rather than lose that chunk's results
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut sites = Vec::new();
    for (r, ids) in results {
        all.extend(r);
        sites.extend(ids);
    }
    all.extend(duplicate_ids(sites));
    all.sort();
    all
}
