//! What the etcd subcommands share: connection options as etcdctl has them, the tokio
//! runtime, error reports and times.

use std::path::PathBuf;
use std::time::Duration;

use flowc::source::etcd::Connection;
use flowc::store::etcd::Tenant;

use super::{EXIT_FAILURE, EXIT_FINDINGS};

/// `publish`'s exit codes, for its `--help`.
pub const EXIT_CODES: &str = "Exit codes: 0 ok; 1 refused (the flow has errors, two files define one flow id, a concurrent edit, a flow too large for etcd); 2 I/O or connection (etcd unreachable, bad options, TLS files or a user etcd refuses, an endpoint scheme the server does not speak, a write whose outcome is unknown)";

/// `rollback`'s exit codes, for its `--help`.
pub const ROLLBACK_EXIT_CODES: &str = "Exit codes: 0 ok; 1 refused (no stored version of the flow at that revision, a corrupt entry at that revision, a concurrent edit, content that no longer compiles with this flowc, a flow too large for etcd); 2 I/O or connection (etcd unreachable, bad options, TLS files or a user etcd refuses, an endpoint scheme the server does not speak, a write whose outcome is unknown)";

/// `history`'s exit codes, for its `--help`.
pub const HISTORY_EXIT_CODES: &str = "Exit codes: 0 ok (the flow's versions listed; corrupt entries are warned about and skipped); 1 the flow has no history; 2 I/O or connection (etcd unreachable, bad options, TLS files or a user etcd refuses, an endpoint scheme the server does not speak)";

/// `--etcd URL[,URL...]` (or `FLOWC_ETCD`), `--tenant`, `--prefix`, TLS and user.
#[derive(clap::Args, Debug, Clone)]
pub struct EtcdArgs {
    /// etcd endpoints, comma-separated (`http://127.0.0.1:2379`; `https://` for TLS).
    #[arg(
        long = "etcd",
        env = "FLOWC_ETCD",
        value_delimiter = ',',
        required = true
    )]
    pub endpoints: Vec<String>,
    /// The tenant whose flows these are.
    #[arg(long)]
    pub tenant: String,
    /// The key prefix.
    #[arg(long, default_value = flowc::source::etcd::DEFAULT_PREFIX)]
    pub prefix: String,
    /// CA certificate (PEM) to verify the servers.
    #[arg(long)]
    pub cacert: Option<PathBuf>,
    /// Client certificate (PEM).
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// Client certificate's key (PEM).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// `user:password`.
    #[arg(long)]
    pub user: Option<String>,
}

/// `--expect-revision`, `--author`, `--message` of writes.
#[derive(clap::Args, Debug, Clone)]
pub struct WriteArgs {
    /// Write only if the flow's key is at this mod revision (0: must not exist); by
    /// default the revision read just before the write.
    #[arg(long)]
    pub expect_revision: Option<u64>,
    /// Who publishes (default: the OS user).
    #[arg(long)]
    pub author: Option<String>,
    /// Why (a ticket id).
    #[arg(long)]
    pub message: Option<String>,
}

impl WriteArgs {
    /// `--author`, else the OS user; an explicitly empty (or blank) author is refused.
    pub fn author(&self) -> Result<Option<String>, u8> {
        if let Some(a) = &self.author {
            if a.trim().is_empty() {
                eprintln!(
                    "error: --author is empty: name who publishes, or leave --author out to record the OS user"
                );
                return Err(EXIT_FAILURE);
            }
            return Ok(Some(a.clone()));
        }
        Ok(Self::os_user())
    }

    fn os_user() -> Option<String> {
        ["USER", "USERNAME", "LOGNAME"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()))
            .or_else(|| {
                // a service account's shell may set none of them
                let out = std::process::Command::new("id").arg("-un").output().ok()?;
                let name = String::from_utf8(out.stdout).ok()?.trim().to_owned();
                (out.status.success() && !name.is_empty()).then_some(name)
            })
    }
}

impl EtcdArgs {
    /// The connection and tenant, or a usage message.
    pub fn resolve(&self) -> Result<(Connection, Tenant), u8> {
        // `a, b` (a list written with spaces, as FLOWC_ETCD often is) is `a,b`
        let endpoints = self
            .endpoints
            .iter()
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty())
            .collect();
        let mut c = Connection::new(endpoints);
        c.cacert.clone_from(&self.cacert);
        c.cert.clone_from(&self.cert);
        c.key.clone_from(&self.key);
        if let Some(u) = &self.user {
            let Some((user, password)) = u.split_once(':') else {
                eprintln!("error: --user takes `user:password`");
                return Err(EXIT_FAILURE);
            };
            if user.trim().is_empty() {
                eprintln!(
                    "error: --user has an empty user name (before the `:`): pass --user NAME:PASSWORD, a user etcd knows"
                );
                return Err(EXIT_FAILURE);
            }
            c.user = Some((user.to_owned(), password.to_owned()));
        }
        c.connect_timeout = Duration::from_secs(3);
        let tenant = Tenant::new(&self.prefix, &self.tenant).map_err(|e| {
            report(&e);
            EXIT_FAILURE
        })?;
        Ok((c, tenant))
    }
}

/// A multi-threaded runtime for the etcd subcommands.
pub fn runtime() -> Result<tokio::runtime::Runtime, u8> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the runtime: {e}");
            EXIT_FAILURE
        })
}

/// Resolves at Ctrl-C (SIGINT) or SIGTERM, whichever comes first: both stop a watcher
/// gracefully (the handlers are [`super::watch::StopSignals`], shared with `flowc watch
/// DIR`). `quiet` is set on the signal's own thread the moment it comes (before this
/// resolves): the watcher's printer stops at once.
///
/// # Errors
/// When the signal handlers cannot be installed.
pub async fn stop_signal(
    quiet: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::io::Result<()> {
    let signals = super::watch::StopSignals::install()?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        signals.wait();
        quiet.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = tx.send(());
    });
    // the sender only goes away after a signal came
    let _ = rx.await;
    Ok(())
}

/// Connects as every etcd subcommand does ([`Connection::open`]), printing a warning
/// for each misconfigured endpoint left out.
///
/// # Errors
/// As [`Connection::open`].
pub async fn connect(
    connection: &Connection,
) -> Result<etcd_client::Client, flowc::store::StoreError> {
    let opened = connection.open().await?;
    for w in &opened.warnings {
        eprintln!("warning: {w}");
    }
    Ok(opened.client)
}

/// Prints `error[code]: message` and the help.
pub fn report(e: &dyn miette::Diagnostic) {
    let code = e.code().map(|c| format!("[{c}]")).unwrap_or_default();
    eprintln!("error{code}: {e}");
    if let Some(h) = e.help() {
        eprintln!("  help: {h}");
    }
}

/// Reports an etcd source error, naming the endpoints when etcd could not be reached;
/// the exit code (1 for a conflict or an unknown revision: the input is wrong; 2
/// otherwise: connection, I/O).
pub fn fail(e: flowc::source::etcd::EtcdError, endpoints: &[String]) -> u8 {
    use flowc::source::etcd::EtcdError;
    let e = match e {
        EtcdError::Store(s) => EtcdError::Store(s.at(endpoints)),
        other => other,
    };
    report(&e);
    match e {
        EtcdError::Conflict { .. }
        | EtcdError::UnknownRevision { .. }
        | EtcdError::DeletedRevision { .. }
        | EtcdError::CorruptRevision { .. }
        | EtcdError::TooLarge { .. } => EXIT_FINDINGS,
        _ => EXIT_FAILURE,
    }
}

/// As [`fail`], after classifying a store error the way the watcher does
/// ([`Connection::setup_error`]): a TLS file, user or scheme etcd refuses is said as
/// such (with what to fix), not as an outage.
pub async fn fail_at(
    e: flowc::source::etcd::EtcdError,
    connection: &Connection,
    tenant: &Tenant,
) -> u8 {
    use flowc::source::etcd::EtcdError;
    let e = match e {
        EtcdError::Store(s) => {
            let s = s.at(&connection.endpoints);
            match connection.setup_error_of(&s, Some(tenant.base())).await {
                Some(setup) => setup.into(),
                None => EtcdError::Store(s),
            }
        }
        other => other,
    };
    fail(e, &connection.endpoints)
}

/// What a publish or rollback replaced: `was revision N`; for a key that did not exist,
/// `was deleted at revision N` when its history tells, else `otherwise` (said also when
/// etcd cannot be asked: the write is done, only this detail is unknown).
pub async fn replaced(
    client: &mut etcd_client::Client,
    tenant: &Tenant,
    p: &flowc::source::etcd::Published,
    otherwise: &str,
) -> String {
    if p.previous != 0 {
        return format!("was revision {}", p.previous);
    }
    let v = &p.version;
    match flowc::source::etcd::deletion_before(client, tenant, &v.flow, v.revision).await {
        Ok(Some(at)) => format!("was deleted at revision {at}"),
        Ok(None) | Err(_) => otherwise.to_owned(),
    }
}

/// `2026-11-03T09:15:00Z` from seconds since the Unix epoch.
pub fn utc(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // civil from days (Howard Hinnant's algorithm), for days since 1970-01-01
    let z = days.cast_signed() + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_times() {
        assert_eq!(super::utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::utc(1_794_215_722), "2026-11-09T09:15:22Z");
    }
}
