//! `flowc history FLOW --etcd URL --tenant T`: every accepted version with its revision,
//! hash, author, message, time and the diff from the previous one.

use flowc::compile::Options;
use flowc::source::etcd;

use super::etcd::{EtcdArgs, fail, runtime, utc};
use super::{DiffFormat, EXIT_FAILURE};

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
        let mut client = connection.connect().await?;
        etcd::history(&mut client, &tenant, &Options::default(), flow).await
    });
    let items = match items {
        Ok(i) => i,
        Err(e) => return fail(e, &conn.endpoints),
    };
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
        DiffFormat::Human => {
            if items.is_empty() {
                outln!("no history for `{flow}` in tenant `{}`", tenant.tenant());
            }
            for i in &items {
                outln!(
                    "revision {}  {}  {}  {}  {}",
                    i.revision,
                    i.hash,
                    i.time.map_or_else(|| "-".to_owned(), utc),
                    i.author.as_deref().unwrap_or("-"),
                    i.message.as_deref().unwrap_or("-"),
                );
                if let Some(d) = &i.diff {
                    for line in d.to_text().lines() {
                        outln!("    {line}");
                    }
                }
            }
        }
    }
    0
}
