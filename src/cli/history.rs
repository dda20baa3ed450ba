//! `flowc history FLOW --etcd URL --tenant T`: every accepted version with its revision,
//! hash, author, message, time and the diff from the previous one.

use flowc::compile::Options;
use flowc::source::etcd::{self, HistoryEvent};

use super::etcd::{EtcdArgs, fail_at, runtime, utc};
use super::{DiffFormat, EXIT_FAILURE, EXIT_FINDINGS};

pub fn run(flow: &str, conn: &EtcdArgs, format: DiffFormat) -> u8 {
    let (connection, tenant) = match conn.resolve() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let items = rt.block_on(async {
        let mut client = super::etcd::connect(&connection).await?;
        let items = etcd::history(&mut client, &tenant, &Options::default(), flow).await?;
        let current = etcd::current_key(&mut client, &tenant, &Options::default(), flow).await?;
        Ok::<_, etcd::EtcdError>((items, current))
    });
    let (items, current) = match items {
        Ok(i) => i,
        Err(e) => return rt.block_on(fail_at(e, &connection, &tenant)),
    };
    for i in &items {
        if let Some(c) = i.corrupt() {
            let e = flowc::store::StoreError::CorruptKey {
                key: show(&c.key),
                reason: show(&c.reason),
            };
            let code = flowc::diagnostic::ErrorCode::code(&e);
            eprintln!("warning[{code}]: skipped: {e}");
            if let Some(h) = miette::Diagnostic::help(&e) {
                eprintln!("  help: {h}");
            }
        }
    }
    match format {
        DiffFormat::Json => {
            let list: Vec<serde_json::Value> = items
                .iter()
                .map(|i| {
                    serde_json::json!({
                        "revision": i.revision,
                        "hash": i.hash,
                        "author": i.author,
                        "message": i.message,
                        "time": i.time.map(utc),
                        "diff": i.diff,
                        "deleted": matches!(i.event, HistoryEvent::Deleted | HistoryEvent::Gone),
                        // a deletion seen at its own revision, or one compacted away
                        // (the key is gone, deleted at or before `revision`)
                        "exact": match i.event {
                            HistoryEvent::Deleted => Some(true),
                            HistoryEvent::Gone => Some(false),
                            _ => None,
                        },
                        "corrupt": i.corrupt(),
                    })
                })
                .collect();
            match serde_json::to_string_pretty(&list) {
                Ok(s) => outln!("{s}"),
                Err(e) => {
                    eprintln!("error: {e}");
                    return EXIT_FAILURE;
                }
            }
        }
        DiffFormat::Human => human(flow, &tenant, &items, current.as_ref()),
    }
    // a flow id that was never published (a typo) is not a success, as in `rollback`
    if items.is_empty() { EXIT_FINDINGS } else { 0 }
}

/// The human listing: one line per entry (a version's diff indented under it).
fn human(
    flow: &str,
    tenant: &flowc::store::etcd::Tenant,
    items: &[etcd::HistoryItem],
    current: Option<&etcd::CurrentKey>,
) {
    if let (true, Some(c)) = (items.is_empty(), current) {
        let hash = c
            .hash
            .as_deref()
            .unwrap_or("unknown: its YAML does not compile");
        eprintln!(
            "error: `{flow}` exists in tenant `{}` at revision {} (hash {hash}) but has no history entries: it was put without flowc publish and its history entry was not written (a watcher writes one only when it can), or its `history/` keys were deleted",
            tenant.tenant(),
            c.revision
        );
    } else if items.is_empty() {
        eprintln!(
            "error: no history for `{flow}` in tenant `{}`: it was never published there (check the flow id, --tenant and --prefix)",
            tenant.tenant()
        );
    }
    for i in items {
        if i.event == HistoryEvent::Deleted {
            outln!(
                "revision {}  deleted: the key was deleted at revision {} (watchers retired the flow)",
                i.revision,
                i.revision
            );
            continue;
        }
        if i.event == HistoryEvent::Gone {
            outln!(
                "revision {}  deleted: the key no longer exists, deleted at or before revision {} (etcd compacted the deletion's own revision; watchers retired the flow)",
                i.revision,
                i.revision
            );
            continue;
        }
        if let Some(c) = i.corrupt() {
            outln!(
                "revision {}  corrupt entry `{}`: {}",
                i.revision,
                show(&c.key),
                show(&c.reason)
            );
            continue;
        }
        let text = |t: Option<&str>| t.filter(|t| !t.is_empty()).map_or("-".to_owned(), show);
        outln!(
            "revision {}  {}  {}  {}  {}",
            i.revision,
            i.hash.as_deref().unwrap_or("-"),
            i.time.map_or_else(|| "-".to_owned(), utc),
            text(i.author.as_deref()),
            text(i.message.as_deref()),
        );
        if let Some(d) = &i.diff {
            for line in d.to_text().lines() {
                outln!("    {line}");
            }
        }
    }
    if current.is_none() && !items.is_empty() {
        outln!(
            "deleted: the key of `{flow}` no longer exists (watchers retired the flow; its history stays)"
        );
    }
}

/// Text from etcd as one line a terminal shows as it is: control characters (a line
/// break that would forge a line, an ANSI escape) are written as escapes (`\n`,
/// `\u{1b}`).
fn show(text: &str) -> String {
    super::escape_controls(text, false)
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(super::show("a\nrevision 999"), "a\\nrevision 999");
        assert_eq!(super::show("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(super::show("plain ä"), "plain ä");
    }
}
