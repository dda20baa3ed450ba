//! `flowc publish PATH... --etcd URL --tenant T`: check the flows as `flowc check` does
//! (files, or directories walked the same way), then write each flow to etcd with a
//! compare-and-swap on its key's mod revision; prints each new revision.

use std::path::PathBuf;

use flowc::compile::Options;
use flowc::source::etcd::{self, PublishError, PublishRequest};

use super::etcd::{EtcdArgs, WriteArgs, fail_at, runtime};
use super::{EXIT_FAILURE, EXIT_FINDINGS};

/// What was published before a publish failed, and the flow that failed; `unknown`
/// names the flow of a write whose outcome is unknown (it may have been published).
fn partial(published: &[String], failed: &str, left: &[String], unknown: Option<&str>) {
    if let Some(flow) = unknown {
        let before = if published.is_empty() {
            "no flow was published before it".to_owned()
        } else {
            format!("published before it: {}", published.join(", "))
        };
        eprintln!(
            "error: the outcome of publishing flow `{flow}` from {failed} is unknown (`flowc history {flow}` shows whether it was published); {before}"
        );
        if !left.is_empty() {
            eprintln!("  not published: {}", left.join(", "));
        }
        return;
    }
    if published.is_empty() {
        eprintln!("error: nothing published: {failed} failed");
        return;
    }
    eprintln!(
        "error: {failed} failed after {} flow(s) were published: {}",
        published.len(),
        published.join(", ")
    );
    if !left.is_empty() {
        eprintln!("  not published: {}", left.join(", "));
    }
}

pub fn run(paths: &[PathBuf], conn: &EtcdArgs, write: &WriteArgs) -> u8 {
    let author = match write.author() {
        Ok(a) => a,
        Err(code) => return code,
    };
    let (connection, tenant) = match conn.resolve() {
        Ok(c) => c,
        Err(code) => return code,
    };
    // the same walk and the same checks as `flowc check`, over the whole set, before
    // anything is written (two files with one flow id are refused)
    let (inputs, io) = super::check::collect_flows(paths);
    for p in &io {
        eprintln!("error: {}: {}", p.name, p.message);
    }
    if !io.is_empty() {
        eprintln!("error: nothing published: a path cannot be read");
        return EXIT_FAILURE;
    }
    let named: Vec<String> = inputs
        .skipped
        .iter()
        .filter(|s| s.named)
        .map(|s| s.path.display().to_string())
        .collect();
    if !named.is_empty() {
        eprintln!(
            "error: nothing published: not a flow (no top-level `kind: ApprovalFlow` or `apiVersion: flowc/...`): {}",
            named.join(", ")
        );
        return EXIT_FINDINGS;
    }
    // the YAML files of a walked directory that are not flows, as `flowc check` says
    if let Some(line) = super::check::skipped_line(&inputs.skipped) {
        eprintln!("{line}");
    }
    let sources = inputs.flows;
    if sources.is_empty() {
        eprintln!("error: nothing published: no flow files under the paths given");
        return EXIT_FINDINGS;
    }
    if sources.len() > 1 && write.expect_revision.is_some() {
        eprintln!("error: --expect-revision names one flow's revision: publish one file with it");
        return EXIT_FAILURE;
    }
    let diags = flowc::compile::check_many(sources.clone(), &Options::default());
    if !diags.is_empty() {
        eprint!("{}", super::check::render_all(&diags));
    }
    if diags.has_errors() {
        eprintln!("error: nothing published: fix the errors above");
        return EXIT_FINDINGS;
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async {
        let mut client = match super::etcd::connect(&connection).await {
            Ok(c) => c,
            Err(e) => return fail_at(e.into(), &connection, &tenant).await,
        };
        let mut published = Vec::new();
        for (i, (name, bytes)) in sources.iter().enumerate() {
            let request = PublishRequest {
                name,
                source: bytes,
                expect_revision: write.expect_revision,
                author: author.clone(),
                message: write.message.clone(),
            };
            let left = || {
                sources
                    .iter()
                    .skip(i + 1)
                    .map(|(n, _)| n.clone())
                    .collect::<Vec<_>>()
            };
            match etcd::publish(&mut client, &tenant, &Options::default(), &request).await {
                Ok(p) => {
                    let was = super::etcd::replaced(&mut client, &tenant, &p, "new flow").await;
                    outln!("published {} from {name} ({was})", p.version);
                    published.push(p.version.to_string());
                }
                Err(PublishError::Invalid(d)) => {
                    eprint!("{}", super::check::render_all(&d));
                    partial(&published, name, &left(), None);
                    return EXIT_FINDINGS;
                }
                Err(PublishError::Etcd(e)) => {
                    let unknown = match &e {
                        etcd::EtcdError::OutcomeUnknown { flow, .. } => Some(flow.clone()),
                        _ => None,
                    };
                    let code = fail_at(e, &connection, &tenant).await;
                    partial(&published, name, &left(), unknown.as_deref());
                    return code;
                }
            }
        }
        0
    })
}
