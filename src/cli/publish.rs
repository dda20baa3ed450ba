//! `flowc publish FILE... --etcd URL --tenant T`: compile, then write each flow to etcd
//! with a compare-and-swap on its key's mod revision; prints each new revision.

use std::path::PathBuf;

use flowc::compile::Options;
use flowc::diagnostic::Diagnostics;
use flowc::source::etcd::{self, PublishError, PublishRequest};

use super::etcd::{EtcdArgs, WriteArgs, fail, runtime};
use super::{EXIT_FAILURE, EXIT_FINDINGS};

fn print_diagnostics(diags: &Diagnostics) {
    eprint!("{}", super::check::render_all(diags));
}

pub fn run(files: &[PathBuf], conn: &EtcdArgs, write: &WriteArgs) -> u8 {
    if files.len() > 1 && write.expect_revision.is_some() {
        eprintln!("error: --expect-revision names one flow's revision: publish one file with it");
        return EXIT_FAILURE;
    }
    let (connection, tenant) = match conn.resolve() {
        Ok(c) => c,
        Err(code) => return code,
    };
    // every file compiles before anything is written
    let mut sources = Vec::new();
    let mut failed = 0;
    for path in files {
        match super::check::load_one(path) {
            Ok(_) => match std::fs::read(path) {
                Ok(bytes) => sources.push((path.display().to_string(), bytes)),
                Err(e) => {
                    eprintln!("error: {}: {e}", path.display());
                    return EXIT_FAILURE;
                }
            },
            Err(code) => failed = failed.max(code),
        }
    }
    if failed != 0 {
        eprintln!("error: nothing published: fix the errors above");
        return failed;
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async {
        let mut client = match connection.connect().await {
            Ok(c) => c,
            Err(e) => return fail(e.into(), &conn.endpoints),
        };
        for (name, bytes) in &sources {
            let request = PublishRequest {
                name,
                source: bytes,
                expect_revision: write.expect_revision,
                author: write.author(),
                message: write.message.clone(),
            };
            match etcd::publish(&mut client, &tenant, &Options::default(), &request).await {
                Ok(p) => {
                    let was = if p.previous == 0 {
                        "new flow".to_owned()
                    } else {
                        format!("was revision {}", p.previous)
                    };
                    outln!("published {} from {name} ({was})", p.version);
                }
                Err(PublishError::Invalid(d)) => {
                    print_diagnostics(&d);
                    return EXIT_FINDINGS;
                }
                Err(PublishError::Etcd(e)) => return fail(e, &conn.endpoints),
            }
        }
        0
    })
}
