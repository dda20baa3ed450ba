//! `flowc rollback FLOW --to REV --etcd URL --tenant T`: writes an older version's content
//! as a new revision (same content hash), with the same compare-and-swap as publish.

use flowc::compile::Options;
use flowc::source::etcd::{self, PublishError, RollbackRequest, RolledBack};

use super::EXIT_FINDINGS;
use super::etcd::{EtcdArgs, WriteArgs, fail_at, replaced, runtime};

pub fn run(flow: &str, to: u64, conn: &EtcdArgs, write: &WriteArgs) -> u8 {
    let author = match write.author() {
        Ok(a) => a,
        Err(code) => return code,
    };
    let (connection, tenant) = match conn.resolve() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async {
        let mut client = match super::etcd::connect(&connection).await {
            Ok(c) => c,
            Err(e) => return fail_at(e.into(), &connection, &tenant).await,
        };
        let request = RollbackRequest {
            flow,
            to,
            expect_revision: write.expect_revision,
            author,
            message: write.message.clone(),
        };
        match etcd::rollback(&mut client, &tenant, &Options::default(), request).await {
            Ok(RolledBack::Unchanged(now)) => {
                outln!(
                    "{flow} is already at that content (revision {}, hash {}, the content of revision {to}): nothing written",
                    now.revision,
                    now.hash
                );
                0
            }
            Ok(RolledBack::Written(p)) => {
                let was = replaced(&mut client, &tenant, &p, "the flow was deleted").await;
                outln!(
                    "rolled back {flow} to the content of revision {to}: {} ({was})",
                    p.version
                );
                0
            }
            Err(PublishError::Invalid(d)) => {
                let mut out = String::new();
                for x in &d {
                    super::check::render_human(x, &mut out);
                }
                eprint!("{out}");
                eprintln!(
                    "error: the content of revision {to} no longer compiles with this flowc; nothing written"
                );
                EXIT_FINDINGS
            }
            Err(PublishError::Etcd(e)) => fail_at(e, &connection, &tenant).await,
        }
    })
}
