//! The etcd version store (feature `etcd`): the key layout of a tenant, the connection
//! options (as etcdctl has them) and [`EtcdStore`], the second [`VersionStore`].
//!
//! Keys under `<prefix>/<tenant>/` ([`Tenant`]):
//!
//! ```text
//! flows/<flow-id>                  the flow's YAML (what watchers compile and publish)
//! flowmeta/<flow-id>               who published it, when, why: written by `publish` in
//!                                  the same transaction as the flow, so at the same revision
//! history/<flow-id>/p<prev>-<t>-<h> the entry of a publish, written in its transaction
//! history/<flow-id>/<revision>     the entry of a version put by hand (20-digit
//!                                  revision), written by the first watcher accepting it
//! holds/<flow-id>/<hash>/<holder>  one hold
//! ```
//!
//! A version's revision is the `mod_revision` of its `flows/` key, so every process of a
//! fleet names it the same way. A history entry keeps one accepted version's record and
//! source (until pruned). `flowc publish` and `flowc rollback` write it in the same
//! transaction as the flow key, so no version is ever active without its entry; the
//! transaction's revision is known only after the commit, so the entry records revision
//! 0 and is named by what the publisher knows before (the key's previous mod revision,
//! its clock, the content hash): its revision is its key's create revision, which equals
//! the flow key's new mod revision. Entries of older releases (named and recording their
//! revision) read the same way. A flow put by hand gets its entry from the first watcher
//! that accepts it (created once: a transaction that writes only when no entry has the
//! revision), so a saved instance can be restored by its content hash in any process
//! after etcd compacted the flow key's old revisions.
//!
//! etcd's client is asynchronous; the trait is not. [`EtcdStore`] runs its requests on a
//! runtime of its own (one worker thread), so its methods can be called from any thread,
//! inside another runtime's task or not, and block only the caller.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, Identity,
    TlsOptions, Txn, TxnOp, TxnOpResponse,
};
use serde::{Deserialize, Serialize};

use super::checksum;
use super::{
    Hold, Keep, NewVersion, StoreError, StoredVersion, VersionRecord, VersionStore, check_flow_id,
    check_hash, check_holder, check_new, check_revision,
};
use crate::compile::VersionId;
use crate::limits::Limits;

/// The format of history entries and holds this release writes and reads.
pub const FORMAT: u32 = 1;

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "/flowc";

/// How often an idle connection to etcd is pinged.
pub(crate) const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(5);

/// How long a ping may go unanswered before the connection is given up.
pub(crate) const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(3);

/// How to reach etcd: endpoints, TLS files and user, as etcdctl takes them.
#[derive(Clone, Debug)]
pub struct Connection {
    /// `http://host:port` or `https://host:port` (TLS), one or more.
    pub endpoints: Vec<String>,
    /// The CA certificate (PEM) that signed the servers' certificates.
    pub cacert: Option<PathBuf>,
    /// The client certificate (PEM), with [`Connection::key`].
    pub cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    pub key: Option<PathBuf>,
    /// `user` and `password`.
    pub user: Option<(String, String)>,
    /// Longest wait for a connection.
    pub connect_timeout: Duration,
    /// Longest wait for one request (not for a watch).
    pub request_timeout: Duration,
}

impl Connection {
    /// A connection to `endpoints` without TLS files or user, with 2 s connect and 5 s
    /// request timeouts.
    #[must_use]
    pub fn new(endpoints: Vec<String>) -> Self {
        Self {
            endpoints,
            cacert: None,
            cert: None,
            key: None,
            user: None,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
        }
    }

    /// The endpoints, comma-separated (as diagnostics name them).
    #[must_use]
    pub fn endpoints_text(&self) -> String {
        self.endpoints.join(",")
    }

    fn options(&self) -> Result<ConnectOptions, StoreError> {
        if let Some(bad) = self.endpoints.iter().find(|e| {
            e.split_once("://")
                .is_some_and(|(scheme, _)| scheme != "http" && scheme != "https")
        }) {
            return Err(StoreError::Etcd {
                operation: "connect",
                message: format!(
                    "endpoint `{bad}` has no scheme etcd speaks (http:// or https://)"
                ),
            });
        }
        let tls_files = self.uses_tls();
        if tls_files && let Some(plain) = self.endpoints.iter().find(|e| e.starts_with("http://")) {
            return Err(tls_for_http(plain));
        }
        let mut options = ConnectOptions::new()
            .with_connect_timeout(self.connect_timeout)
            .with_timeout(self.request_timeout)
            .with_keep_alive(KEEP_ALIVE_INTERVAL, KEEP_ALIVE_TIMEOUT);
        if tls_files {
            let mut tls = TlsOptions::new();
            if let Some(ca) = &self.cacert {
                tls = tls.ca_certificate(Certificate::from_pem(read_pem(
                    ca,
                    "--cacert",
                    Pem::Certificate,
                )?));
            }
            match (&self.cert, &self.key) {
                (Some(cert), Some(key)) => {
                    tls = tls.identity(Identity::from_pem(
                        read_pem(cert, "--cert", Pem::Certificate)?,
                        read_pem(key, "--key", Pem::Key)?,
                    ));
                }
                (None, None) => {}
                _ => {
                    return Err(StoreError::Etcd {
                        operation: "connect",
                        message: "a client certificate needs both --cert and --key".to_owned(),
                    });
                }
            }
            options = options.with_tls(tls);
        }
        if let Some((user, password)) = &self.user {
            // an expired or invalid token (etcd's `--auth-token-ttl`, 300 s by default:
            // any idle engine) is refused as `Unauthenticated`; the client logs in again
            // and sends the request once more, for every read, write and watch
            options = options
                .with_user(user, password)
                .with_auto_token_refresh(true);
        }
        Ok(options)
    }

    /// A client, as [`Connection::open`] makes it; what it found wrong with an endpoint
    /// left out goes to `tracing` (callers that report it themselves use `open`).
    ///
    /// # Errors
    /// As [`Connection::open`].
    pub async fn connect(&self) -> Result<Client, StoreError> {
        let opened = self.open().await?;
        for warning in &opened.warnings {
            tracing::warn!("{warning}");
        }
        Ok(opened.client)
    }

    /// A client. With one endpoint connecting is lazy: an unreachable server shows on
    /// the first request. With several, each is asked for its status first (in
    /// parallel, bounded by the connect timeout) and the client balances over those
    /// that answered: the client would otherwise send about every other request to a
    /// down endpoint and fail it. Endpoints that answer from different etcd clusters
    /// (the cluster id of their answers' headers) are refused; an endpoint that did not
    /// answer while another did is classified as [`Connection::setup_error`] classifies
    /// any failed attempt: a misconfigured one (a scheme its server does not speak, a
    /// server that is not etcd, TLS files or a user it refuses) is left out with a
    /// warning ([`Opened::warnings`]), one that is merely down is left out silently.
    /// When none answers, all are kept (the first request then says why).
    ///
    /// # Errors
    /// [`StoreError::Etcd`] for unreadable TLS files, bad endpoints, a refused user,
    /// endpoints of different clusters; [`StoreError::Unreachable`] when the connection
    /// cannot be made in time.
    pub async fn open(&self) -> Result<Opened, StoreError> {
        self.open_following(None).await
    }

    /// As [`Connection::open`], for a client that follows one cluster already
    /// ([`Follow`]: a watcher reconnecting): endpoints of different clusters are then no
    /// error, [`Follow::choose`] says which ones serve, and each endpoint left out for
    /// answering another cluster is named in [`Follow::left_out`] (also when this
    /// fails).
    ///
    /// # Errors
    /// As [`Connection::open`]; [`StoreError::Unreachable`] when no endpoint answers
    /// with a cluster the follower may take (an outage: it retries).
    pub async fn open_following(&self, follow: Option<&mut Follow>) -> Result<Opened, StoreError> {
        // with TLS files, a plain `http://` endpoint beside `https://` ones is left out
        // with a warning, as any misconfigured endpoint is; all plain: a setup error
        let (usable, mut warnings) = self.tls_usable();
        let this = Connection {
            endpoints: usable,
            ..self.clone()
        };
        let options = this.options()?;
        let survey = if this.endpoints.len() > 1 {
            this.survey(&options, follow).await?
        } else {
            Survey {
                answering: this.endpoints.clone(),
                clusters: Vec::new(),
                warnings: Vec::new(),
            }
        };
        warnings.extend(survey.warnings);
        let connect = Client::connect(&survey.answering, Some(options));
        let client = match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(client) => client.map_err(|e| etcd_error("connect", &e).at(&self.endpoints))?,
            Err(_) => return Err(self.no_answer()),
        };
        if this.endpoints.len() == 1 {
            // one endpoint is asked for its status as each of several is (the survey),
            // within the connect timeout: a server that accepts connections and never
            // answers is said at once, not after each request's own timeout
            let mut probe = client.clone();
            match tokio::time::timeout(self.connect_timeout, probe.status()).await {
                Err(_) => return Err(self.no_answer()),
                Ok(Err(e)) if waited(&etcd_error("connect", &e)) => return Err(self.no_answer()),
                // any other failure is said by the first request, classified by its caller
                Ok(_) => {}
            }
        }
        Ok(Opened {
            client,
            clusters: survey.clusters,
            warnings,
        })
    }

    /// The endpoints a connection uses with the TLS files given, and a warning for each
    /// plain `http://` endpoint left out because an `https://` one is listed (without
    /// TLS files, or with no `https://` endpoint, all are kept: [`Connection::options`]
    /// then refuses the plain ones).
    fn tls_usable(&self) -> (Vec<String>, Vec<String>) {
        let plain = |e: &String| e.starts_with("http://");
        if !self.uses_tls() || self.endpoints.iter().all(plain) {
            return (self.endpoints.clone(), Vec::new());
        }
        let warnings = self
            .endpoints
            .iter()
            .filter(|e| plain(e))
            .map(|e| {
                let StoreError::Etcd { message, .. } = tls_for_http(e) else {
                    return String::new();
                };
                format!("endpoint `{e}` is left out, the https:// ones are used: {message}")
            })
            .collect();
        (
            self.endpoints
                .iter()
                .filter(|e| !plain(e))
                .cloned()
                .collect(),
            warnings,
        )
    }

    /// No endpoint answered within the connect timeout.
    fn no_answer(&self) -> StoreError {
        StoreError::Unreachable {
            operation: "connect",
            endpoints: self.endpoints_text(),
            cause: format!(
                "no answer within {}: nothing accepted the connection in time, or a server accepted it and answers nothing (etcd stalled, frozen or overloaded, or not etcd)",
                seconds(self.connect_timeout)
            ),
        }
    }

    /// Connects and asks etcd for its status: what a first connection learns. A refusal
    /// of the TLS files or the user is a [`StoreError::Etcd`] naming the file at fault
    /// (a configuration error: trying again never helps); an unreachable etcd is
    /// [`StoreError::Unreachable`].
    ///
    /// With TLS 1.3 a server refuses a client certificate only after the client has
    /// finished its handshake: its alert then ends the connection, and a request still
    /// queued for that connection learns no more than that it closed (which alone reads
    /// as an outage). So a connection that closed (or a request that found no connection
    /// ready in time) is asked again, each time on a fresh client, until one attempt
    /// says why or the time (twice the connect timeout) is up.
    ///
    /// # Errors
    /// As said.
    pub async fn first_contact(&self) -> Result<(), StoreError> {
        let budget = self.connect_timeout.saturating_mul(2);
        let deadline = tokio::time::Instant::now() + budget;
        let mut pause = Duration::from_millis(10);
        // every attempt so far connected and then saw its connection closed
        let mut always_closed = true;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let attempt = tokio::time::timeout(left.min(self.connect_timeout), self.ask_status());
            let error = match attempt.await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) if !e.is_unreachable() => return Err(self.explain(e)),
                Ok(Err(e)) if closed(&e) => e,
                Ok(Err(e)) if waited(&e) => {
                    always_closed = false;
                    e
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    always_closed = false;
                    timeout_error("connect", self.connect_timeout).at(&self.endpoints)
                }
            };
            if tokio::time::Instant::now() + pause >= deadline {
                return Err(if always_closed && self.uses_tls() {
                    self.closed_after_handshake(&error)
                } else {
                    error
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// Whether TLS files were given.
    fn uses_tls(&self) -> bool {
        self.cacert.is_some() || self.cert.is_some() || self.key.is_some()
    }

    /// A server that took every TLS connection and closed it before answering: what a
    /// refused client certificate looks like when its alert was not seen.
    fn closed_after_handshake(&self, last: &StoreError) -> StoreError {
        let file = |f: &Option<PathBuf>| {
            f.as_ref().map_or_else(
                || "(none given)".to_owned(),
                |p| format!("`{}`", p.display()),
            )
        };
        let cause = match last {
            StoreError::Unreachable { cause, .. } => cause.clone(),
            other => other.to_string(),
        };
        StoreError::Etcd {
            operation: "connect",
            message: format!(
                "the server refused the client certificate (--cert {}, --key {}): it closed every connection right after the TLS handshake without answering ({cause}); it needs a client certificate signed by a CA it trusts",
                file(&self.cert),
                file(&self.key)
            ),
        }
    }

    /// One attempt of [`Connection::first_contact`], on a client of its own.
    async fn ask_status(&self) -> Result<(), StoreError> {
        let mut client = self.connect().await?;
        let status = client
            .status()
            .await
            .map_err(|e| etcd_error("connect", &e).at(&self.endpoints))?;
        drop(status);
        if self.user.is_some() {
            // a refused user shows on the first request that needs a token
            client
                .get("flowc-probe", None)
                .await
                .map_err(|e| etcd_error("connect", &e).at(&self.endpoints))?;
        }
        Ok(())
    }

    /// Names the TLS file at fault in a TLS refusal.
    fn explain(&self, e: StoreError) -> StoreError {
        let StoreError::Etcd { operation, message } = e else {
            return e;
        };
        let hint = self.tls_hint(&message);
        StoreError::Etcd {
            operation,
            message: with_hint(hint, &message),
        }
    }

    /// What a TLS refusal says about the files given (`None`: no TLS refusal known);
    /// [`with_hint`] puts it before a message.
    fn tls_hint(&self, message: &str) -> Option<String> {
        let file = |f: &Option<PathBuf>| {
            f.as_ref().map_or_else(
                || "(none given)".to_owned(),
                |p| format!("`{}`", p.display()),
            )
        };
        let lower = message.to_lowercase();
        if lower.contains("unknownissuer") || lower.contains("invalid peer certificate") {
            Some(self.cacert.as_ref().map_or_else(
                || "the server's certificate is not signed by a CA this machine trusts; pass --cacert FILE, the CA (PEM) that signed it".to_owned(),
                |ca| format!("the server's certificate is not signed by the CA of --cacert `{}`", ca.display()),
            ))
        } else if lower.contains("keymismatch") || lower.contains("key mismatch") {
            Some(format!(
                "--key {} is not the key of --cert {}",
                file(&self.key),
                file(&self.cert)
            ))
        } else if lower.contains("badcertificate")
            || lower.contains("certificaterequired")
            || lower.contains("certificate required")
            || lower.contains("unknownca")
        {
            Some(if self.cert.is_none() && self.key.is_none() {
                "the server wants a client certificate and none was given: pass --cert and --key, signed by a CA it trusts".to_owned()
            } else {
                format!(
                    "the server refused the client certificate (--cert {}, --key {}): it needs one signed by a CA it trusts",
                    file(&self.cert),
                    file(&self.key)
                )
            })
        } else {
            None
        }
    }

    /// Classifies a failed attempt to connect to etcd and read from it: a
    /// [`SetupError`] when the attempt reached a server that refuses the connection as
    /// configured, so that trying again never helps (TLS files refused or not what their
    /// option takes, a user missing or refused or denied the keys, an endpoint scheme
    /// the server does not speak); `None` for an error that may pass (nothing listens,
    /// the connection broke, no answer in time). An attempt whose TLS connections were
    /// closed without a word is asked again as [`Connection::first_contact`] does, and
    /// a connection that failed at its start makes each endpoint be asked, in plain
    /// HTTP and in TLS, which one it speaks.
    pub async fn setup_error(&self, e: &StoreError) -> Option<SetupError> {
        self.setup_error_of(e, None).await
    }

    /// As [`Connection::setup_error`], naming the tenant's keys (`keys`, its
    /// [`Tenant::base`]) in a write etcd denies a user who may read them.
    pub async fn setup_error_of(&self, e: &StoreError, keys: Option<&str>) -> Option<SetupError> {
        if let Some(s) = self.refusal(e, keys) {
            return Some(s);
        }
        match e {
            StoreError::Unreachable { cause, .. } => {
                if cause.to_lowercase().contains("connection refused") || waited(e) {
                    // nothing listens, or nothing answered: an outage
                    return None;
                }
            }
            // an answer that is no etcd refusal (a server speaking another protocol
            // breaks the gRPC connection with a protocol error): ask what it speaks
            StoreError::Etcd { .. } => {}
            _ => return None,
        }
        if let Some(s) = self.scheme_mismatch().await {
            return Some(s);
        }
        if self.uses_tls()
            && closed(e)
            && let Err(again) = self.first_contact().await
        {
            return self.refusal(&again, keys);
        }
        None
    }

    /// A refusal etcd (or the TLS layer, or the options) put in words; `keys` (the
    /// tenant's key prefix, when the caller knows it) is named in a denied write.
    fn refusal(&self, e: &StoreError, keys: Option<&str>) -> Option<SetupError> {
        let StoreError::Etcd { message, .. } = e else {
            return None;
        };
        let lower = message.to_lowercase();
        let user = self
            .user
            .as_ref()
            .map_or_else(String::new, |(u, _)| format!(" `{u}`"));
        let auth = |message: String, help: String| SetupError {
            fault: SetupFault::Auth,
            message,
            help,
        };
        if lower.contains("user name is empty") {
            return Some(auth(
                format!("etcd requires authentication and no user was given (etcd: {message})"),
                "pass --user NAME:PASSWORD, a user etcd knows with read access to the tenant's keys".to_owned(),
            ));
        }
        if lower.contains("authentication failed") || lower.contains("invalid user id or password")
        {
            return Some(auth(
                format!("etcd refused the user{user}: wrong user name or password (etcd: {message})"),
                "check --user NAME:PASSWORD (`etcdctl --user root user list` shows the users etcd knows)".to_owned(),
            ));
        }
        if e.is_permission_denied()
            && matches!(e, StoreError::Etcd { operation, .. } if *operation == "write")
        {
            // the reads before the write were allowed
            return Some(auth(
                format!(
                    "etcd lets the user{user} read {keys} but not write them (etcd: {message})",
                    keys =
                        keys.map_or_else(|| "the tenant's keys".to_owned(), |k| format!("`{k}`"))
                ),
                format!(
                    "publishing needs a readwrite role on the tenant's keys: `etcdctl role grant-permission ROLE --prefix=true readwrite {}`",
                    keys.unwrap_or("/flowc/TENANT/")
                ),
            ));
        }
        if e.is_permission_denied() {
            return Some(auth(
                format!("etcd denies the user{user} the tenant's keys (etcd: {message})"),
                "grant the user's role read access to the tenant's keys (readwrite to publish): `etcdctl role grant-permission ROLE --prefix=true read /flowc/TENANT/`".to_owned(),
            ));
        }
        if lower.contains(CLUSTERS) {
            return Some(SetupError {
                fault: SetupFault::Cluster,
                message: message.clone(),
                help: "list endpoints of one etcd cluster only (`etcdctl --endpoints=URL endpoint status -w json` shows each endpoint's cluster_id)".to_owned(),
            });
        }
        if lower.contains("has no scheme etcd speaks") || message.contains(TLS_FOR_HTTP) {
            return Some(SetupError {
                fault: SetupFault::Scheme,
                message: message.clone(),
                help: "write each endpoint as http://HOST:PORT (plain) or https://HOST:PORT (TLS)"
                    .to_owned(),
            });
        }
        let files = lower.contains("--cacert `")
            || lower.contains("--cert `")
            || lower.contains("--key `")
            || lower.contains("needs both --cert and --key");
        let hint = self.tls_hint(message);
        if hint.is_some() || files || tls_words(&lower) {
            return Some(SetupError {
                fault: SetupFault::Tls,
                message: with_hint(hint, message),
                help: "--cacert is the CA (PEM) that signed the server's certificate; --cert and --key are a client certificate (PEM) signed by a CA the server trusts, and its key".to_owned(),
            });
        }
        None
    }

    /// An endpoint whose scheme is not what its server speaks, when every endpoint is
    /// misconfigured so: a setup error is fatal only when no listed endpoint could serve.
    /// One that is merely down (nothing listens, no answer) makes the failure an outage,
    /// which passes when it is back (the misconfigured ones stay left out).
    async fn scheme_mismatch(&self) -> Option<SetupError> {
        let wait = self.connect_timeout.min(Duration::from_millis(500));
        let mut first = None;
        for endpoint in &self.endpoints {
            let (tls, host) = match endpoint.split_once("://") {
                Some(("https", h)) => (true, h),
                Some(("http", h)) => (false, h),
                _ => return None,
            };
            let host = host.trim_end_matches('/');
            let (fault, message, help) = match speaks(host, wait).await {
                Some(Speaks::Http) => (
                    SetupFault::NotEtcd,
                    format!("{host} answers HTTP but is not etcd (no gRPC): the server at `{endpoint}` speaks HTTP/1 only"),
                    "point --etcd at etcd's client URL (its --listen-client-urls, port 2379 by default)".to_owned(),
                ),
                Some(Speaks::Plain) if tls => (
                    SetupFault::Scheme,
                    format!("the server at `{endpoint}` speaks plain HTTP, not TLS"),
                    format!("use http://{host} (or start etcd with TLS: --cert-file, --key-file)"),
                ),
                Some(Speaks::Tls) if !tls => (
                    SetupFault::Scheme,
                    format!("the server at `{endpoint}` speaks TLS, not plain HTTP"),
                    format!(
                        "use https://{host}, with --cacert naming the CA that signed its certificate (and --cert, --key if it asks for a client certificate)"
                    ),
                ),
                _ => return None,
            };
            first.get_or_insert(SetupError {
                fault,
                message,
                help,
            });
        }
        first
    }

    /// Asks every endpoint for its status (in parallel, each bounded by the connect
    /// timeout): see [`Connection::open`]. Boxed: classifying an endpoint may connect
    /// again, and connecting surveys.
    fn survey<'a>(
        &'a self,
        options: &'a ConnectOptions,
        follow: Option<&'a mut Follow>,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Survey, StoreError>> + Send + 'a>> {
        Box::pin(self.survey_now(options, follow))
    }

    /// [`Connection::survey`], unboxed.
    async fn survey_now(
        &self,
        options: &ConnectOptions,
        follow: Option<&mut Follow>,
    ) -> Result<Survey, StoreError> {
        let mut probes = tokio::task::JoinSet::new();
        for (i, endpoint) in self.endpoints.iter().enumerate() {
            let (endpoint, options, wait) =
                (endpoint.clone(), options.clone(), self.connect_timeout);
            probes.spawn(async move {
                let probe = async {
                    let mut c = Client::connect([endpoint.as_str()], Some(options)).await?;
                    c.status().await
                };
                let one = std::slice::from_ref(&endpoint);
                let answer = match tokio::time::timeout(wait, probe).await {
                    Ok(Ok(status)) => Ok(status
                        .header()
                        .map_or(0, etcd_client::ResponseHeader::cluster_id)),
                    Ok(Err(e)) => Err(etcd_error("connect", &e).at(one)),
                    Err(_) => Err(timeout_error("connect", wait).at(one)),
                };
                (i, answer)
            });
        }
        let mut answers = Vec::new();
        while let Some(done) = probes.join_next().await {
            if let Ok(answer) = done {
                answers.push(answer);
            }
        }
        answers.sort_unstable_by_key(|(i, _)| *i);
        let mut answering: Vec<(String, u64)> = Vec::new();
        let mut failed: Vec<(String, StoreError)> = Vec::new();
        for (i, answer) in answers {
            let Some(endpoint) = self.endpoints.get(i).cloned() else {
                continue;
            };
            match answer {
                Ok(cluster) => answering.push((endpoint, cluster)),
                Err(e) => failed.push((endpoint, e)),
            }
        }
        let answering = self.one_cluster(answering, follow)?;
        let mut warnings = Vec::new();
        if answering.is_empty() && failed.iter().all(|(_, e)| waited(e)) {
            return Err(self.no_answer());
        }
        let none_answered = answering.is_empty();
        let mut not_misconfigured = Vec::new();
        for (endpoint, e) in failed {
            let single = Connection {
                endpoints: vec![endpoint.clone()],
                ..self.clone()
            };
            // the one classification of a failed attempt, for this endpoint alone
            match single.setup_error(&e).await {
                Some(setup) => {
                    let others = if none_answered {
                        "the others may serve (they do not answer now)"
                    } else {
                        "the others answer"
                    };
                    warnings.push(format!(
                        "endpoint `{endpoint}` is left out, {others}: {} ({})",
                        setup.message, setup.help
                    ));
                }
                None => not_misconfigured.push(endpoint),
            }
        }
        if none_answered {
            // every endpoint misconfigured: all are kept, and the first request's error
            // is the setup error (fatal); else those that may serve once they are up
            return Ok(if not_misconfigured.is_empty() {
                Survey {
                    answering: self.endpoints.clone(),
                    clusters: Vec::new(),
                    warnings: Vec::new(),
                }
            } else {
                Survey {
                    answering: not_misconfigured,
                    clusters: Vec::new(),
                    warnings,
                }
            });
        }
        Ok(Survey {
            answering: answering.iter().map(|(e, _)| e.clone()).collect(),
            clusters: answering,
            warnings,
        })
    }

    /// The answering endpoints that may serve: for a follower, those of the followed
    /// cluster ([`Follow::choose`], the others named in [`Follow::left_out`]; none of it
    /// while another cluster answers is an outage); else all, when they answer one
    /// cluster (endpoints of two clusters are a setup error).
    fn one_cluster(
        &self,
        answering: Vec<(String, u64)>,
        follow: Option<&mut Follow>,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        if let Some(follow) = follow {
            let (kept, left_out) = follow.choose(&answering);
            for (endpoint, id) in &left_out {
                follow.left_out.push(format!(
                    "endpoint `{endpoint}` is left out: it answers etcd cluster {id:x}, not cluster {:x} that this watcher follows, and never served that one (list endpoints of one etcd cluster only)",
                    follow.cluster
                ));
            }
            if kept.is_empty() && !left_out.is_empty() {
                // the followed cluster is down; another one is no stand-in
                let names: Vec<String> = left_out.iter().map(|(e, _)| format!("`{e}`")).collect();
                return Err(StoreError::Unreachable {
                    operation: "connect",
                    endpoints: self.endpoints_text(),
                    cause: format!(
                        "no endpoint answers etcd cluster {:x} that this watcher follows ({} answer another cluster and are left out)",
                        follow.cluster,
                        names.join(", ")
                    ),
                });
            }
            return Ok(kept);
        } else if let Some(((a, a_id), (b, b_id))) = answering.first().and_then(|first| {
            answering
                .iter()
                .find(|(_, id)| *id != first.1)
                .map(|other| (first, other))
        }) {
            return Err(StoreError::Etcd {
                operation: "connect",
                message: format!(
                    "endpoints `{a}` (cluster {a_id:x}) and `{b}` (cluster {b_id:x}) {CLUSTERS}"
                ),
            });
        }
        Ok(answering)
    }
}

/// Endpoints, each with the cluster id it answered with.
pub type EndpointClusters = Vec<(String, u64)>;

/// The cluster a client follows (a watcher reconnecting), and the cluster id each
/// endpoint answered with before: what decides which endpoints may serve it when they
/// answer from different clusters ([`Follow::choose`]).
#[derive(Clone, Debug, Default)]
pub struct Follow {
    /// The cluster id followed.
    pub cluster: u64,
    /// The cluster id each endpoint answered with last.
    pub answered: BTreeMap<String, u64>,
    /// Filled by [`Connection::open_following`]: one line for each endpoint left out
    /// because it answers another cluster.
    pub left_out: Vec<String>,
}

impl Follow {
    /// Splits the endpoints that answered (each with its cluster id) into those that
    /// serve and those left out. The endpoints answering the followed cluster serve.
    /// When none does, the cluster changed only if an endpoint that answered the
    /// followed cluster before now answers another one (etcd replaced at the same
    /// address): the endpoints answering that one serve. Every other endpoint is a
    /// member of another cluster that never served this one (a misconfigured list), and
    /// is left out.
    #[must_use]
    pub fn choose(&self, answering: &[(String, u64)]) -> (EndpointClusters, EndpointClusters) {
        let replaced = answering
            .iter()
            .find(|(endpoint, _)| self.answered.get(endpoint) == Some(&self.cluster))
            .map(|(_, id)| *id);
        let serving = if answering.iter().any(|(_, id)| *id == self.cluster) {
            Some(self.cluster)
        } else {
            replaced
        };
        answering
            .iter()
            .cloned()
            .partition(|(_, id)| Some(*id) == serving)
    }
}

/// What [`Connection::survey`] found.
struct Survey {
    /// The endpoints to balance over.
    answering: Vec<String>,
    /// The cluster id of each endpoint to balance over (empty when not surveyed).
    clusters: Vec<(String, u64)>,
    /// One line for each misconfigured endpoint left out.
    warnings: Vec<String>,
}

/// How the refusal of endpoints of different clusters reads (and is recognised).
const CLUSTERS: &str = "belong to different etcd clusters";

/// The start of the setup error for TLS files given with a plain `http://` endpoint.
const TLS_FOR_HTTP: &str = "TLS options given for http://";

/// The setup error of TLS files given with the plain endpoint `plain`.
fn tls_for_http(plain: &str) -> StoreError {
    StoreError::Etcd {
        operation: "connect",
        message: format!(
            "{TLS_FOR_HTTP} endpoint `{plain}`: use https://HOST:PORT (or leave out --cacert, --cert and --key for a plain etcd)"
        ),
    }
}

/// A duration in words: `3 s`, or `1500 ms` when not whole seconds.
fn seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// A connection made by [`Connection::open`].
pub struct Opened {
    /// The client.
    pub client: Client,
    /// The endpoints balanced over, each with the cluster id it answered with (empty
    /// with one endpoint, which is not surveyed: its answers' headers tell).
    pub clusters: Vec<(String, u64)>,
    /// One line for each endpoint left out because it is misconfigured (its scheme,
    /// TLS files, user, or a server that is not etcd) while another answered.
    pub warnings: Vec<String>,
}

/// What a TLS file must hold.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pem {
    Certificate,
    Key,
}

/// The PEM block labels in `text` (`CERTIFICATE`, `PRIVATE KEY`, ...).
fn pem_labels(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("-----BEGIN ")?.strip_suffix("-----"))
        .collect()
}

/// Reads a TLS file given as `option`, checking that it holds what the option takes: a
/// private key or anything else given as a certificate is named as such here (the TLS
/// library would only say later that no certificate verifies the server).
fn read_pem(path: &std::path::Path, option: &str, want: Pem) -> Result<Vec<u8>, StoreError> {
    let bytes = std::fs::read(path).map_err(|e| StoreError::Etcd {
        operation: "connect",
        message: format!("{option} `{}`: cannot read it: {e}", path.display()),
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let labels = pem_labels(&text);
    let fits = |l: &&str| match want {
        Pem::Certificate => *l == "CERTIFICATE",
        Pem::Key => l.ends_with("PRIVATE KEY"),
    };
    if labels.iter().any(fits) {
        return Ok(bytes);
    }
    let holds = if labels.iter().any(|l| l.ends_with("PRIVATE KEY")) {
        "it holds a private key".to_owned()
    } else if let Some(l) = labels.first() {
        format!("it holds a PEM `{l}` block")
    } else {
        "it holds no PEM block".to_owned()
    };
    let wanted = match want {
        Pem::Certificate => "a certificate (PEM `BEGIN CERTIFICATE`)",
        Pem::Key => "a private key (PEM `BEGIN PRIVATE KEY`)",
    };
    Err(StoreError::Etcd {
        operation: "connect",
        message: format!("{option} `{}` is not {wanted}: {holds}", path.display()),
    })
}

/// An etcd client error in words, with its causes joined plainly: a connection that
/// cannot be made or broke, or a request without an answer in time, is
/// [`StoreError::Unreachable`] (name the endpoints with [`StoreError::at`]); anything else
/// (a TLS certificate refused, a request etcd refused) is [`StoreError::Etcd`].
#[must_use]
pub fn etcd_error(operation: &'static str, e: &etcd_client::Error) -> StoreError {
    let (unreachable, cause) = describe(e);
    if unreachable {
        StoreError::Unreachable {
            operation,
            endpoints: "the endpoints given".to_owned(),
            cause,
        }
    } else {
        StoreError::Etcd {
            operation,
            message: cause,
        }
    }
}

/// Whether `e` says etcd could not be reached (or did not answer in time), and what
/// failed, in words.
pub(crate) fn describe(e: &etcd_client::Error) -> (bool, String) {
    use std::error::Error as _;
    match e {
        etcd_client::Error::GRpcStatus(status) => {
            let mut parts: Vec<String> = Vec::new();
            let push = |parts: &mut Vec<String>, text: String| {
                let text = text.trim().to_owned();
                if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
                    parts.push(text);
                }
            };
            // tonic puts its transport error's debug form into the message; its causes
            // say the same in words
            let mut source = status.source();
            let had_source = source.is_some();
            let mut timed_out = false;
            while let Some(s) = source {
                let text = s.to_string();
                // tonic's request timeout (the connection's `request_timeout`) says
                // only "Timeout expired"
                if text == "Timeout expired" {
                    timed_out = true;
                }
                push(&mut parts, text);
                source = s.source();
            }
            if timed_out {
                return (true, "no answer within the request timeout".to_owned());
            }
            if !had_source {
                push(&mut parts, status.message().to_owned());
            }
            // the gRPC code by name (tonic is etcd-client's, not a dependency of ours)
            let code = format!("{:?}", status.code());
            if parts.is_empty() {
                push(&mut parts, code.to_lowercase());
            }
            let lost = io_lost(status.source());
            let unreachable = lost
                || matches!(code.as_str(), "DeadlineExceeded" | "Cancelled")
                || (code == "Unavailable" && !tls_failure(status.source()));
            let mut text = parts.join(": ");
            if code == "DeadlineExceeded" && !had_source {
                text = format!("no answer in time ({text})");
            }
            (unreachable, text)
        }
        etcd_client::Error::TransportError(t) => {
            (io_lost(Some(t)) || !tls_failure(Some(t)), error_chain(t))
        }
        etcd_client::Error::IoError(io) => (true, io.to_string()),
        other => (false, error_chain(other)),
    }
}

/// True when an I/O error in the chain says the connection could not be made or broke.
fn io_lost(mut source: Option<&(dyn std::error::Error + 'static)>) -> bool {
    use std::io::ErrorKind as K;
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                K::ConnectionRefused
                    | K::ConnectionReset
                    | K::ConnectionAborted
                    | K::NotConnected
                    | K::BrokenPipe
                    | K::TimedOut
                    | K::AddrNotAvailable
                    | K::HostUnreachable
                    | K::NetworkUnreachable
                    | K::UnexpectedEof
            )
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// True when the chain holds a TLS failure (a certificate refused): a configuration
/// error, not an unreachable server.
fn tls_failure(mut source: Option<&(dyn std::error::Error + 'static)>) -> bool {
    while let Some(s) = source {
        if tls_words(&s.to_string().to_lowercase()) {
            return true;
        }
        source = s.source();
    }
    false
}

/// True when `lower` (an error in lower case) speaks of TLS: certificates, the
/// handshake, keys.
fn tls_words(lower: &str) -> bool {
    lower.contains("certificate")
        || lower.contains("tls")
        || lower.contains("handshake")
        || lower.contains("keymismatch")
        || lower.contains("private key")
        || lower.contains("pem")
}

/// What a server speaks on its port.
enum Speaks {
    /// Plain etcd (gRPC, or an HTTP/1 `/version` naming an etcd server).
    Plain,
    /// TLS.
    Tls,
    /// Plain HTTP/1 only: no gRPC, so no etcd.
    Http,
}

/// The HTTP/2 connection preface, then an empty SETTINGS frame (length 0, type 4, no
/// flags, stream 0): what a gRPC client sends first.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";

/// Whether `host` (`HOST:PORT`) is stalled: it accepts a TCP connection and then says
/// nothing for `wait` after the HTTP/2 connection preface, neither an answer nor a close.
/// A live plain etcd answers with its SETTINGS frame, a TLS one alerts or closes, a dying
/// one (killed, its listening socket not yet gone) resets the connection, a dead one
/// refuses it; a stopped, frozen or overloaded one leaves it unanswered.
pub(crate) async fn stalled(host: &str, wait: Duration) -> bool {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let Ok(Ok(mut s)) = tokio::time::timeout(wait, tokio::net::TcpStream::connect(host)).await
    else {
        return false;
    };
    if s.write_all(H2_PREFACE).await.is_err() {
        return false;
    }
    let mut byte = [0_u8; 1];
    tokio::time::timeout(wait, s.read(&mut byte)).await.is_err()
}

/// Asks `host` (`HOST:PORT`) which protocol it speaks: the HTTP/2 connection preface
/// (what a gRPC client sends first) is answered by a plain etcd with its SETTINGS frame;
/// else a plain HTTP/1 request is answered by a plain HTTP server (`HTTP/1.x ...`: etcd
/// when its `/version` names an etcd server, another server otherwise) and closed by a
/// TLS one; a malformed TLS hello is answered by a TLS server with an alert record.
/// `None`: neither answered in `wait`.
async fn speaks(host: &str, wait: Duration) -> Option<Speaks> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    // the first `want` bytes of the answer (fewer when the server closes first)
    let ask = async |hello: &[u8], want: usize| {
        let mut s = tokio::net::TcpStream::connect(host).await.ok()?;
        s.write_all(hello).await.ok()?;
        let mut answer = vec![0_u8; want];
        let mut n = 0;
        while n < want {
            let got = s.read(answer.get_mut(n..)?).await.ok()?;
            if got == 0 {
                break;
            }
            n += got;
        }
        answer.truncate(n);
        Some(answer)
    };
    // a frame's type is the 4th byte of its header
    if let Ok(Some(a)) = tokio::time::timeout(wait, ask(H2_PREFACE, 4)).await
        && a.get(3) == Some(&4)
    {
        return Some(Speaks::Plain);
    }
    let plain = tokio::time::timeout(wait, ask(b"GET /version HTTP/1.0\r\n\r\n", 4096)).await;
    if let Ok(Some(a)) = plain
        && a.starts_with(b"HTTP/")
    {
        let etcd = a.windows(10).any(|w| w == b"etcdserver");
        return Some(if etcd { Speaks::Plain } else { Speaks::Http });
    }
    // a ClientHello record of 4 bytes: too short to be one, so a TLS server alerts
    let hello = [0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00];
    let tls = tokio::time::timeout(wait, ask(&hello, 5)).await;
    if let Ok(Some(a)) = tls
        && matches!(a.first(), Some(0x15 | 0x16))
        && a.get(1) == Some(&0x03)
    {
        return Some(Speaks::Tls);
    }
    None
}

/// What kind of setup error a [`SetupError`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SetupFault {
    /// The TLS files: the server's certificate not signed by `--cacert`, the client
    /// certificate refused, a key not the certificate's, a file that is not what its
    /// option takes.
    Tls,
    /// The user: etcd requires one and none was given, refused the name or password,
    /// or denies it the tenant's keys.
    Auth,
    /// An endpoint's scheme: `https://` to a plain server, `http://` to a TLS one, or
    /// neither.
    Scheme,
    /// A server at an endpoint that answers HTTP but is not etcd (no gRPC).
    NotEtcd,
    /// Endpoints of different etcd clusters in one list.
    Cluster,
}

impl SetupFault {
    /// `tls`, `auth`, `scheme`, `not-etcd`, `cluster`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            SetupFault::Tls => "tls",
            SetupFault::Auth => "auth",
            SetupFault::Scheme => "scheme",
            SetupFault::NotEtcd => "not-etcd",
            SetupFault::Cluster => "cluster",
        }
    }
}

/// A connection etcd refuses as configured: trying again never helps
/// ([`Connection::setup_error`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetupError {
    /// What kind.
    pub fault: SetupFault,
    /// What is wrong, naming the file, user or endpoint at fault.
    pub message: String,
    /// How to fix it.
    pub help: String,
}

/// True for an [`StoreError::Unreachable`] that says a connection was made and then
/// closed before any answer: the cause may be a TLS refusal that the request did not see.
fn closed(e: &StoreError) -> bool {
    let StoreError::Unreachable { cause, .. } = e else {
        return false;
    };
    let cause = cause.to_lowercase();
    cause.contains("connection closed")
        || cause.contains("canceled")
        || cause.contains("cancelled")
        || cause.contains("broken pipe")
        || cause.contains("connection reset")
        || cause.contains("unexpected eof")
}

/// True for an [`StoreError::Unreachable`] that says no answer came in time (a request
/// may have waited for a connection that closed meanwhile).
fn waited(e: &StoreError) -> bool {
    matches!(e, StoreError::Unreachable { cause, .. } if cause.to_lowercase().contains("no answer"))
}

/// A timeout as a store error.
#[must_use]
pub fn timeout_error(operation: &'static str, after: Duration) -> StoreError {
    StoreError::Unreachable {
        operation,
        endpoints: "the endpoints given".to_owned(),
        cause: format!("no answer within {}", seconds(after)),
    }
}

impl StoreError {
    /// Names the endpoints in an [`StoreError::Unreachable`] (other errors unchanged).
    #[must_use]
    pub fn at(self, endpoints: &[String]) -> Self {
        match self {
            StoreError::Unreachable {
                operation, cause, ..
            } => StoreError::Unreachable {
                operation,
                endpoints: endpoints.join(","),
                cause,
            },
            other => other,
        }
    }

    /// True for [`StoreError::Unreachable`]: the request may or may not have reached
    /// etcd.
    #[must_use]
    pub fn is_unreachable(&self) -> bool {
        matches!(self, StoreError::Unreachable { .. })
    }

    /// True when etcd denied the user the keys asked for (authentication on, a role
    /// without the permission).
    #[must_use]
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, StoreError::Etcd { message, .. } if message.to_lowercase().contains("permission denied"))
    }
}

/// `hint: message`, or `message` when it has no hint or was explained before (it keeps
/// its one hint: an error explained by [`Connection::explain`] is classified again by
/// [`Connection::setup_error`]).
fn with_hint(hint: Option<String>, message: &str) -> String {
    hint.filter(|h| !message.contains(h.as_str()))
        .map_or_else(|| message.to_owned(), |h| format!("{h}: {message}"))
}

/// `e` and its sources, `: `-separated, each once.
#[must_use]
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// One tenant's keys: `<prefix>/<tenant>/...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    base: String,
    prefix: String,
    name: String,
}

/// The key segments of a tenant's layout: a prefix holding one of them could lie inside
/// another tenant's keyspace (`/flowc/acme/flows` as a prefix would put keys under tenant
/// `acme`'s `flows/`).
pub const RESERVED_SEGMENTS: [&str; 4] = ["flows", "flowmeta", "history", "holds"];

fn bad_prefix(prefix: &str, reason: &'static str, help: &'static str) -> StoreError {
    StoreError::InvalidKey {
        what: "prefix",
        value: super::cut(prefix),
        reason,
        help,
    }
}

/// Checks a key prefix: `/` and segments, none empty, `.`, `..` or a segment of the
/// layout ([`RESERVED_SEGMENTS`]), no trailing `/`, no control characters.
///
/// # Errors
/// [`StoreError::InvalidKey`] saying which rule the prefix breaks.
pub fn check_prefix(prefix: &str) -> Result<(), StoreError> {
    let Some(rest) = prefix.strip_prefix('/') else {
        return Err(bad_prefix(
            prefix,
            "a prefix is an absolute key path",
            "start the prefix with `/`, as `/flowc`",
        ));
    };
    if prefix.chars().any(char::is_control) {
        return Err(bad_prefix(
            prefix,
            "a prefix holds no control characters",
            "use a prefix such as `/flowc` or `/apps/flowc`",
        ));
    }
    if rest.is_empty() {
        return Err(bad_prefix(
            prefix,
            "the root is no prefix: every tenant would share the whole keyspace with other programs",
            "name a prefix such as `/flowc`",
        ));
    }
    if rest.ends_with('/') {
        return Err(bad_prefix(
            prefix,
            "a prefix has no trailing `/`",
            "drop the trailing `/` (flowc adds the separator)",
        ));
    }
    for segment in rest.split('/') {
        if segment.is_empty() {
            return Err(bad_prefix(
                prefix,
                "a prefix has no empty segments (`//`)",
                "write each `/` once, as `/apps/flowc`",
            ));
        }
        if segment == "." || segment == ".." {
            return Err(bad_prefix(
                prefix,
                "a prefix has no `.` or `..` segments",
                "write the path the keys really have, as `/apps/flowc`",
            ));
        }
        if RESERVED_SEGMENTS.contains(&segment) {
            return Err(bad_prefix(
                prefix,
                "a segment of the prefix is one of the layout's own (`flows`, `flowmeta`, `history`, `holds`), so its keys could lie inside another tenant's keyspace",
                "give every tenant a prefix outside any other tenant's keys, such as `/flowc` (keys `/flowc/<tenant>/flows/<id>`)",
            ));
        }
    }
    Ok(())
}

impl Tenant {
    /// The keys of `tenant` under `prefix` (`/flowc` by default).
    ///
    /// # Errors
    /// [`StoreError::InvalidKey`] for a prefix [`check_prefix`] refuses, or a tenant
    /// that is not 1 to 63 letters, digits, `-`, `_`, `.` (nor `.` or `..`).
    pub fn new(prefix: &str, tenant: &str) -> Result<Self, StoreError> {
        check_prefix(prefix)?;
        let ok = !tenant.is_empty()
            && tenant.len() <= 63
            && tenant
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && tenant != "."
            && tenant != "..";
        if RESERVED_SEGMENTS.contains(&tenant) {
            return Err(StoreError::InvalidKey {
                what: "tenant",
                value: super::cut(tenant),
                reason: "`flows`, `flowmeta`, `history` and `holds` are the names of flowc's own key folders (`<prefix>/<tenant>/flows/...`), so no tenant may have them: its keys could be mistaken for another tenant's flows",
                help: "choose another tenant name, such as `acme` or `acme-flows`",
            });
        }
        if !ok {
            return Err(StoreError::InvalidKey {
                what: "tenant",
                value: super::cut(tenant),
                reason: "a tenant name is 1 to 63 characters, each an ASCII letter, a digit, `-`, `_` or `.` (and the name is not `.` or `..`): it becomes one segment of every key",
                help: "choose a name such as `acme`, `team-a` or `eu.acme`",
            });
        }
        Ok(Self {
            base: format!("{prefix}/{tenant}/"),
            prefix: prefix.to_owned(),
            name: tenant.to_owned(),
        })
    }

    /// The prefix (without a trailing `/`).
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The tenant.
    #[must_use]
    pub fn tenant(&self) -> &str {
        &self.name
    }

    /// `<prefix>/<tenant>/`: every key of the tenant starts with it.
    #[must_use]
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `<prefix>/<tenant>/flows/<flow>`.
    #[must_use]
    pub fn flow_key(&self, flow: &str) -> String {
        format!("{}flows/{flow}", self.base)
    }

    /// `<prefix>/<tenant>/flowmeta/<flow>`.
    #[must_use]
    pub fn meta_key(&self, flow: &str) -> String {
        format!("{}flowmeta/{flow}", self.base)
    }

    /// `<prefix>/<tenant>/history/<flow>/<revision, 20 digits>`.
    #[must_use]
    pub fn history_key(&self, flow: &str, revision: u64) -> String {
        format!("{}history/{flow}/{revision:020}", self.base)
    }

    /// `<prefix>/<tenant>/history/<flow>/p<previous>-<micros>-<hash>`: the history entry
    /// a publisher writes in its transaction, named by what it knows before the commit
    /// (the key's previous mod revision, its wall-clock time, the content hash), so the
    /// name is unique to the publish; the entry's revision is the key's create revision,
    /// which equals the flow key's new mod revision (one transaction, one revision).
    #[must_use]
    pub fn publish_history_key(
        &self,
        flow: &str,
        previous: u64,
        micros: u64,
        hash: &str,
    ) -> String {
        format!(
            "{}history/{flow}/p{previous:020}-{micros:020}-{hash}",
            self.base
        )
    }

    /// `<prefix>/<tenant>/history/<flow>/`.
    #[must_use]
    pub fn history_prefix(&self, flow: &str) -> String {
        format!("{}history/{flow}/", self.base)
    }

    fn hold_prefix(&self) -> String {
        format!("{}holds/", self.base)
    }

    fn hold_key(&self, flow: &str, hash: &str, holder: &str) -> String {
        format!("{}holds/{flow}/{hash}/{holder}", self.base)
    }

    /// The key range `[start, end)` a watcher reads and watches: the `flowmeta/` and
    /// `flows/` keys and nothing else of the tenant (`flowmeta/` < `flows/` < `flows0`).
    #[must_use]
    pub fn watch_range(&self) -> (String, String) {
        (
            format!("{}flowmeta/", self.base),
            format!("{}flows0", self.base),
        )
    }

    /// The tenant's key ranges `[start, end)` outside every subtree flowc writes
    /// (`flowmeta/`, `flows/`, `history/`, `holds/`): a key there is no one's, and
    /// watchers report it (read keys only, at each full read) instead of ignoring it
    /// silently.
    #[must_use]
    pub fn unread_ranges(&self) -> [(String, String); 4] {
        let base = &self.base;
        // `<base>` ends in `/`; the first key after the tenant's keyspace ends in `0`
        let end = format!("{}0", &base[..base.len() - 1]);
        [
            (base.clone(), format!("{base}flowmeta/")),
            (format!("{base}flows0"), format!("{base}history/")),
            (format!("{base}history0"), format!("{base}holds/")),
            (format!("{base}holds0"), end),
        ]
    }

    /// What a key of [`Tenant::watch_range`] is: a flow or its metadata, by flow id as
    /// written in the key (one segment, not checked further), or another key (ignored by
    /// watchers: `flows/a/b` is no flow key of this tenant).
    #[must_use]
    pub fn classify<'k>(&self, key: &'k str) -> KeyKind<'k> {
        let Some(rest) = key.strip_prefix(self.base.as_str()) else {
            return KeyKind::Other;
        };
        // INVARIANT: a flow key has exactly one segment after `flows/`; deeper keys
        // (another tenant's keys under a prefix nested in this keyspace) are not ours
        match rest.split_once('/') {
            Some(("flows", flow)) if !flow.is_empty() && !flow.contains('/') => KeyKind::Flow(flow),
            Some(("flowmeta", flow)) if !flow.is_empty() && !flow.contains('/') => {
                KeyKind::Meta(flow)
            }
            _ => KeyKind::Other,
        }
    }
}

/// What a tenant key is (see [`Tenant::classify`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind<'k> {
    /// `flows/<id>`.
    Flow(&'k str),
    /// `flowmeta/<id>`.
    Meta(&'k str),
    /// Anything else.
    Other,
}

/// A history entry as stored under `history/<flow>/<revision>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// [`FORMAT`].
    pub format: u32,
    /// The record.
    #[serde(flatten)]
    pub record: VersionRecord,
    /// The publisher's wall-clock time of the write, in microseconds since the Unix
    /// epoch (watchers measure publish-to-swap latency from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at_micros: Option<u64>,
    /// The source text (`None` once pruned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl HistoryEntry {
    /// The entry of `version` under `revision`, with its source.
    #[must_use]
    pub fn new(version: &NewVersion<'_>, revision: u64, published_at_micros: Option<u64>) -> Self {
        Self {
            format: FORMAT,
            record: VersionRecord::new(version, revision),
            published_at_micros,
            source: Some(String::from_utf8_lossy(version.source).into_owned()),
        }
    }

    fn parse(key: &str, bytes: &[u8]) -> Result<Self, StoreError> {
        if bytes.len() as u64 > Limits::MAX_STORED_SOURCE_BYTES + Limits::MAX_STORE_RECORD_BYTES {
            return Err(corrupt(key, "larger than any entry flowc writes"));
        }
        let mut entry: Self =
            serde_json::from_slice(bytes).map_err(|e| corrupt(key, e.to_string()))?;
        if entry.format != FORMAT {
            return Err(StoreError::Format {
                path: key.to_owned(),
                found: entry.format.to_string(),
                expected: FORMAT,
            });
        }
        if let Some(source) = &entry.source
            && (source.len() as u64 != entry.record.size
                || checksum(source.as_bytes()) != entry.record.checksum)
        {
            return Err(corrupt(
                key,
                format!(
                    "its source has {} bytes with checksum {}; its record says {} bytes with checksum {}",
                    source.len(),
                    checksum(source.as_bytes()),
                    entry.record.size,
                    entry.record.checksum
                ),
            ));
        }
        entry.record.stored = entry.source.is_some();
        Ok(entry)
    }
}

fn corrupt(key: &str, reason: impl Into<String>) -> StoreError {
    StoreError::CorruptKey {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

fn to_json<T: Serialize>(key: &str, value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| corrupt(key, e.to_string()))
}

/// Keys per page of a range read. etcd refuses a put larger than its
/// `--max-request-bytes` (1.5 MiB by default), so a page holds at most about 24 MiB.
pub const PAGE_KEYS: i64 = 16;

/// The largest answer the client decodes ([`Limits::MAX_ETCD_DECODE_BYTES`]).
pub const DECODE_LIMIT_BYTES: usize = Limits::MAX_ETCD_DECODE_BYTES;

/// The largest request etcd takes by default ([`Limits::MAX_ETCD_REQUEST_BYTES`]).
pub const REQUEST_LIMIT_BYTES: u64 = Limits::MAX_ETCD_REQUEST_BYTES;

/// The end of a prefix range: the prefix with its last byte incremented.
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// A range read, in pages of [`PAGE_KEYS`] keys, all at the revision of the first page
/// (the answer of one read, however large): the keys and values and that revision.
///
/// # Errors
/// etcd's errors (a compacted revision among them when etcd compacts between pages).
pub async fn read_range(
    client: &Client,
    start: &str,
    end: Option<&[u8]>,
    keys_only: bool,
) -> Result<(Vec<etcd_client::KeyValue>, u64), StoreError> {
    read_pages(client, start, end, keys_only, None).await
}

/// [`read_range`] with each page bounded by `page_timeout`: a request that waits for a
/// connection (one that closed, a server that does not answer) fails in that time as
/// [`StoreError::Unreachable`] instead of waiting for the caller's overall bound.
///
/// # Errors
/// As [`read_range`]'s, and the timeout.
pub async fn read_range_within(
    client: &Client,
    start: &str,
    end: Option<&[u8]>,
    keys_only: bool,
    page_timeout: Duration,
) -> Result<(Vec<etcd_client::KeyValue>, u64), StoreError> {
    read_pages(client, start, end, keys_only, Some(page_timeout)).await
}

async fn read_pages(
    client: &Client,
    start: &str,
    end: Option<&[u8]>,
    keys_only: bool,
    page_timeout: Option<Duration>,
) -> Result<(Vec<etcd_client::KeyValue>, u64), StoreError> {
    let mut kv = client
        .kv_client()
        .max_decoding_message_size(DECODE_LIMIT_BYTES);
    let end = end.map_or_else(|| prefix_end(start), <[u8]>::to_vec);
    let mut from = start.as_bytes().to_vec();
    let mut revision = 0;
    let mut out = Vec::new();
    loop {
        let mut options = GetOptions::new()
            .with_range(end.clone())
            .with_limit(PAGE_KEYS);
        if keys_only {
            options = options.with_keys_only();
        }
        if revision > 0 {
            options = options.with_revision(revision);
        }
        let page = kv.get(from.clone(), Some(options));
        let got = match page_timeout {
            Some(t) => tokio::time::timeout(t, page)
                .await
                .map_err(|_| timeout_error("read", t))?,
            None => page.await,
        }
        .map_err(|e| etcd_error("read", &e))?;
        if revision == 0 {
            revision = got
                .header()
                .map_or(0, etcd_client::ResponseHeader::revision);
        }
        let more = got.more();
        let kvs = got.kvs();
        let Some(last) = kvs.last() else { break };
        from = last.key().to_vec();
        from.push(0);
        out.extend_from_slice(kvs);
        if !more {
            break;
        }
    }
    Ok((out, u64::try_from(revision).unwrap_or(0)))
}

/// A revision as etcd names it.
#[must_use]
pub fn etcd_revision(revision: u64) -> i64 {
    i64::try_from(revision).unwrap_or(i64::MAX)
}

/// A flow's history as read: its entries by revision and the keys skipped because
/// their values are no entries flowc writes (each a [`StoreError::CorruptKey`]).
#[derive(Debug, Default)]
pub struct History {
    /// The entries, by revision.
    pub entries: Vec<HistoryEntry>,
    /// The corrupt keys skipped, with the revision each key was created at.
    pub corrupt: Vec<(u64, StoreError)>,
}

/// Every history entry of a flow, by revision, skipping corrupt keys (a warning is
/// logged for each; [`History::corrupt`] names them).
///
/// # Errors
/// etcd's errors.
pub async fn read_history(
    client: &mut Client,
    tenant: &Tenant,
    flow: &str,
) -> Result<History, StoreError> {
    let (entries, corrupt) = read_history_at(client, tenant, flow).await?;
    Ok(History {
        entries: entries.into_iter().map(|e| e.entry).collect(),
        corrupt,
    })
}

/// One history entry as read: the entry (its revision resolved), its key and its key's
/// mod revision.
pub(crate) struct ReadEntry {
    pub entry: HistoryEntry,
    pub key: String,
    pub mod_revision: i64,
}

/// An entry read from `key`: an entry written in a publisher's transaction records
/// revision 0 and has the key's create revision (the transaction's revision).
fn read_entry(key: &str, kv: &etcd_client::KeyValue) -> Result<HistoryEntry, StoreError> {
    let mut entry = HistoryEntry::parse(key, kv.value())?;
    if entry.record.revision == 0 {
        entry.record.revision = u64::try_from(kv.create_revision()).unwrap_or(0);
    }
    Ok(entry)
}

/// Every history entry of a flow with its key and mod revision, by revision (read in
/// pages at one revision), and the corrupt keys skipped.
pub(crate) async fn read_history_at(
    client: &mut Client,
    tenant: &Tenant,
    flow: &str,
) -> Result<(Vec<ReadEntry>, Vec<(u64, StoreError)>), StoreError> {
    check_flow_id(flow)?;
    let prefix = tenant.history_prefix(flow);
    let (kvs, _) = read_range(client, &prefix, None, false).await?;
    let mut out = Vec::with_capacity(kvs.len());
    let mut bad = Vec::new();
    for kv in &kvs {
        let key = String::from_utf8_lossy(kv.key()).into_owned();
        let entry = read_entry(&key, kv).and_then(|entry| {
            if entry.record.flow == flow {
                Ok(entry)
            } else {
                Err(corrupt(&key, "names another flow"))
            }
        });
        match entry {
            Ok(entry) => out.push(ReadEntry {
                entry,
                key,
                mod_revision: kv.mod_revision(),
            }),
            Err(e) => {
                tracing::warn!(key, "skipped a corrupt history entry: {e}");
                bad.push((u64::try_from(kv.create_revision()).unwrap_or(0), e));
            }
        }
    }
    out.sort_by_key(|e| e.entry.record.revision);
    Ok((out, bad))
}

/// The history entry at `key` (`None`: there is none).
///
/// # Errors
/// etcd's errors; a corrupt entry.
pub async fn read_entry_at(
    client: &mut Client,
    key: &str,
) -> Result<Option<HistoryEntry>, StoreError> {
    let got = client
        .get(key, None)
        .await
        .map_err(|e| etcd_error("read", &e))?;
    got.kvs().first().map(|kv| read_entry(key, kv)).transpose()
}

/// Makes sure the flow's history has an entry for `entry`'s revision: when one exists
/// (a publisher's, written in its transaction, or another watcher's) it is returned;
/// else `entry` is written under `history/<flow>/<revision>` unless that key exists.
///
/// # Errors
/// [`StoreError::RevisionTaken`] when the revision names other content; etcd's errors.
pub async fn put_history(
    client: &mut Client,
    tenant: &Tenant,
    entry: &HistoryEntry,
) -> Result<HistoryEntry, StoreError> {
    let record = &entry.record;
    let taken = |existing: HistoryEntry| {
        if existing.record.hash == record.hash {
            Ok(existing)
        } else {
            Err(StoreError::RevisionTaken {
                flow: record.flow.clone(),
                revision: record.revision,
                existing: existing.record.hash,
                hash: record.hash.clone(),
            })
        }
    };
    if let Some(found) = read_history_at(client, tenant, &record.flow)
        .await?
        .0
        .into_iter()
        .find(|e| e.entry.record.revision == record.revision)
    {
        return taken(found.entry);
    }
    let key = tenant.history_key(&record.flow, record.revision);
    let txn = Txn::new()
        .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
        .and_then([TxnOp::put(key.as_str(), to_json(&key, entry)?, None)])
        .or_else([TxnOp::get(key.as_str(), None)]);
    let got = client.txn(txn).await.map_err(|e| etcd_error("write", &e))?;
    if got.succeeded() {
        return Ok(entry.clone());
    }
    let existing = got
        .op_responses()
        .into_iter()
        .find_map(|r| match r {
            TxnOpResponse::Get(g) => g.kvs().first().map(|kv| read_entry(&key, kv)),
            _ => None,
        })
        .ok_or_else(|| corrupt(&key, "deleted while written"))??;
    taken(existing)
}

/// The etcd version store of one tenant (see the module docs).
pub struct EtcdStore {
    client: Client,
    tenant: Tenant,
    timeout: Duration,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("tenant", &self.tenant)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Drop for EtcdStore {
    fn drop(&mut self) {
        // a runtime dropped inside another runtime's task would panic: let it go instead
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl EtcdStore {
    /// A store on `connection` for `tenant`.
    ///
    /// # Errors
    /// [`StoreError::Etcd`] when the runtime cannot start or the connection options are
    /// refused (unreadable TLS files, bad endpoints).
    pub fn open(connection: &Connection, tenant: Tenant) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("flowc-etcd-store")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Etcd {
                operation: "start",
                message: e.to_string(),
            })?;
        let conn = connection.clone();
        let client = block(&runtime, async move { conn.connect().await })??;
        Ok(Self {
            client,
            tenant,
            timeout: connection.request_timeout,
            runtime: Some(runtime),
        })
    }

    /// The tenant.
    #[must_use]
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// Runs `f` with a client on the store's runtime, bounded by the request timeout.
    fn run<T, F, Fut>(&self, operation: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Client, Tenant) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let Some(rt) = &self.runtime else {
            return Err(StoreError::Etcd {
                operation,
                message: "the store is closed".to_owned(),
            });
        };
        let timeout = self.timeout;
        let fut = f(self.client.clone(), self.tenant.clone());
        block(rt, async move {
            match tokio::time::timeout(timeout, fut).await {
                Ok(r) => r,
                Err(_) => Err(timeout_error(operation, timeout)),
            }
        })?
    }
}

/// Runs `fut` on `rt` and waits for it on this thread (which may be another runtime's).
fn block<T: Send + 'static>(
    rt: &tokio::runtime::Runtime,
    fut: impl Future<Output = T> + Send + 'static,
) -> Result<T, StoreError> {
    let (tx, rx) = mpsc::sync_channel(1);
    rt.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv().map_err(|_| StoreError::Etcd {
        operation: "run",
        message: "the store's runtime stopped".to_owned(),
    })
}

fn hold_json(key: &str, hold: &Hold) -> Result<Vec<u8>, StoreError> {
    #[derive(Serialize)]
    struct HoldEntry<'a> {
        format: u32,
        #[serde(flatten)]
        hold: &'a Hold,
    }
    to_json(
        key,
        &HoldEntry {
            format: FORMAT,
            hold,
        },
    )
}

fn parse_hold(key: &str, bytes: &[u8]) -> Result<Hold, StoreError> {
    #[derive(Deserialize)]
    struct HoldEntry {
        format: u32,
        #[serde(flatten)]
        hold: Hold,
    }
    if bytes.len() as u64 > Limits::MAX_STORE_RECORD_BYTES {
        return Err(corrupt(key, "larger than any hold flowc writes"));
    }
    let entry: HoldEntry =
        serde_json::from_slice(bytes).map_err(|e| corrupt(key, e.to_string()))?;
    if entry.format != FORMAT {
        return Err(StoreError::Format {
            path: key.to_owned(),
            found: entry.format.to_string(),
            expected: FORMAT,
        });
    }
    Ok(entry.hold)
}

async fn holds_under(client: &Client, prefix: &str) -> Result<Vec<Hold>, StoreError> {
    let (kvs, _) = read_range(client, prefix, None, false).await?;
    let mut out = Vec::with_capacity(kvs.len());
    for kv in &kvs {
        out.push(parse_hold(&String::from_utf8_lossy(kv.key()), kv.value())?);
    }
    out.sort();
    Ok(out)
}

fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl VersionStore for EtcdStore {
    fn put(&self, version: &NewVersion<'_>, revision: u64) -> Result<VersionRecord, StoreError> {
        check_new(version)?;
        check_revision(revision)?;
        let entry = HistoryEntry::new(version, revision, None);
        self.run("write", move |mut client, tenant| async move {
            Ok(put_history(&mut client, &tenant, &entry).await?.record)
        })
    }

    /// The earliest revision of the same content when the flow's history has it; else
    /// the content is written to the flow's key (a transaction on the mod revision just
    /// read, so a concurrent write is never overwritten) and its revision is the key's
    /// new mod revision, as a watcher names it.
    fn assign(&self, version: &NewVersion<'_>) -> Result<VersionRecord, StoreError> {
        check_new(version)?;
        let mut entry = HistoryEntry::new(version, 1, None);
        let flow = version.flow.to_owned();
        self.run("write", move |mut client, tenant| async move {
            let history = read_history(&mut client, &tenant, &flow).await?.entries;
            if let Some(e) = history.iter().find(|e| e.record.hash == entry.record.hash) {
                return Ok(e.record.clone());
            }
            let key = tenant.flow_key(&flow);
            let current = client
                .get(key.as_str(), None)
                .await
                .map_err(|e| etcd_error("read", &e))?;
            let read = current
                .kvs()
                .first()
                .map_or(0, etcd_client::KeyValue::mod_revision);
            let source = entry.source.clone().unwrap_or_default();
            // the history entry in the same transaction: revision 0 stands for its key's
            // create revision, the flow key's new mod revision
            let history_key = tenant.publish_history_key(
                &flow,
                u64::try_from(read).unwrap_or(0),
                now_micros(),
                &entry.record.hash,
            );
            entry.record.revision = 0;
            let txn = Txn::new()
                .when([Compare::mod_revision(key.as_str(), CompareOp::Equal, read)])
                .and_then([
                    TxnOp::put(key.as_str(), source, None),
                    TxnOp::delete(tenant.meta_key(&flow), None::<DeleteOptions>),
                    TxnOp::put(history_key.as_str(), to_json(&history_key, &entry)?, None),
                ]);
            let got = client.txn(txn).await.map_err(|e| etcd_error("write", &e))?;
            if !got.succeeded() {
                return Err(StoreError::Etcd {
                    operation: "write",
                    message: format!(
                        "`{key}` changed after revision {read} while the version was written"
                    ),
                });
            }
            let revision = got
                .header()
                .and_then(|h| u64::try_from(h.revision()).ok())
                .ok_or_else(|| corrupt(&key, "no revision in the answer"))?;
            entry.record.revision = revision;
            Ok(entry.record)
        })
    }

    fn get(&self, flow: &str, hash: &str) -> Result<Option<StoredVersion>, StoreError> {
        check_flow_id(flow)?;
        check_hash(hash)?;
        let (flow, hash) = (flow.to_owned(), hash.to_owned());
        self.run("read", move |mut client, tenant| async move {
            let entries: Vec<HistoryEntry> = read_history(&mut client, &tenant, &flow)
                .await?
                .entries
                .into_iter()
                .filter(|e| e.record.hash == hash)
                .collect();
            let (Some(first), Some(source)) = (
                entries.first(),
                entries.iter().find_map(|e| e.source.clone()),
            ) else {
                return Ok(None);
            };
            Ok(Some(StoredVersion {
                record: VersionRecord {
                    stored: true,
                    ..first.record.clone()
                },
                revisions: entries.iter().map(|e| e.record.revision).collect(),
                source: source.into_bytes(),
            }))
        })
    }

    fn list(&self, flow: &str) -> Result<Vec<VersionRecord>, StoreError> {
        check_flow_id(flow)?;
        let flow = flow.to_owned();
        self.run("read", move |mut client, tenant| async move {
            Ok(read_history(&mut client, &tenant, &flow)
                .await?
                .entries
                .into_iter()
                .map(|e| e.record)
                .collect())
        })
    }

    fn flows(&self) -> Result<Vec<String>, StoreError> {
        self.run("list", move |client, tenant| async move {
            let prefix = format!("{}history/", tenant.base());
            let (kvs, _) = read_range(&client, &prefix, None, true).await?;
            let mut flows: Vec<String> = kvs
                .iter()
                .filter_map(|kv| {
                    let key = String::from_utf8_lossy(kv.key());
                    let rest = key.strip_prefix(prefix.as_str())?;
                    let flow = rest.split('/').next()?;
                    check_flow_id(flow).ok().map(|()| flow.to_owned())
                })
                .collect();
            flows.dedup();
            Ok(flows)
        })
    }

    fn hold(&self, version: &VersionId, holder: &str) -> Result<(), StoreError> {
        check_flow_id(&version.flow)?;
        check_hash(&version.hash)?;
        check_holder(holder)?;
        let hold = Hold {
            flow: version.flow.clone(),
            hash: version.hash.clone(),
            revision: version.revision,
            holder: holder.to_owned(),
            since: now_secs(),
        };
        let stored = self.get(&version.flow, &version.hash)?.is_some();
        if !stored {
            return Err(StoreError::NotStored {
                flow: version.flow.clone(),
                hash: version.hash.clone(),
            });
        }
        self.run("write", move |mut client, tenant| async move {
            let key = tenant.hold_key(&hold.flow, &hold.hash, &hold.holder);
            // holding twice is one hold: the first keeps its time
            let txn = Txn::new()
                .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(key.as_str(), hold_json(&key, &hold)?, None)]);
            client.txn(txn).await.map_err(|e| etcd_error("write", &e))?;
            Ok(())
        })
    }

    fn release(&self, version: &VersionId, holder: &str) -> Result<bool, StoreError> {
        check_flow_id(&version.flow)?;
        check_hash(&version.hash)?;
        check_holder(holder)?;
        let (flow, hash, holder) = (
            version.flow.clone(),
            version.hash.clone(),
            holder.to_owned(),
        );
        self.run("remove", move |mut client, tenant| async move {
            let key = tenant.hold_key(&flow, &hash, &holder);
            let got = client
                .delete(key.as_str(), None)
                .await
                .map_err(|e| etcd_error("remove", &e))?;
            Ok(got.deleted() > 0)
        })
    }

    fn held(&self) -> Result<Vec<Hold>, StoreError> {
        self.run("read", move |client, tenant| async move {
            let prefix = tenant.hold_prefix();
            holds_under(&client, &prefix).await
        })
    }

    fn holders(&self, flow: &str, hash: &str) -> Result<Vec<Hold>, StoreError> {
        check_flow_id(flow)?;
        check_hash(hash)?;
        let (flow, hash) = (flow.to_owned(), hash.to_owned());
        self.run("read", move |client, tenant| async move {
            let prefix = format!("{}{flow}/{hash}/", tenant.hold_prefix());
            holds_under(&client, &prefix).await
        })
    }

    /// Removes the source from every history entry of each pruned content (the entries
    /// stay, so revisions are never given to other content). Each entry is rewritten
    /// only if it did not change since it was read, and only while no hold exists on
    /// the content (checked in the same transaction).
    fn prune(&self, flow: &str, keep: &Keep) -> Result<Vec<VersionRecord>, StoreError> {
        check_flow_id(flow)?;
        let (flow, keep) = (flow.to_owned(), keep.clone());
        self.run("write", move |mut client, tenant| async move {
            let history = read_history_at(&mut client, &tenant, &flow).await?.0;
            let records: Vec<VersionRecord> =
                history.iter().map(|e| e.entry.record.clone()).collect();
            // holds are checked in each deleting transaction, atomically
            let candidates = super::prunable(&records, &keep, |_| Ok(false))?;
            let mut pruned = Vec::new();
            for first in candidates {
                let hash = &first.hash;
                let holds = format!("{}{flow}/{hash}/", tenant.hold_prefix());
                let holds_end = format!("{}{flow}/{hash}0", tenant.hold_prefix());
                let mut compares = vec![
                    Compare::create_revision(holds.as_str(), CompareOp::Equal, 0)
                        .with_range(holds_end.as_str()),
                ];
                let mut ops = Vec::new();
                for same in history
                    .iter()
                    .filter(|x| &x.entry.record.hash == hash && x.entry.source.is_some())
                {
                    let key = same.key.as_str();
                    compares.push(Compare::mod_revision(
                        key,
                        CompareOp::Equal,
                        same.mod_revision,
                    ));
                    // the revision written out: the entry keeps it when rewritten
                    let emptied = HistoryEntry {
                        source: None,
                        ..same.entry.clone()
                    };
                    ops.push(TxnOp::put(key, to_json(key, &emptied)?, None));
                }
                if ops.is_empty() {
                    continue;
                }
                let got = client
                    .txn(Txn::new().when(compares).and_then(ops))
                    .await
                    .map_err(|e| etcd_error("write", &e))?;
                if got.succeeded() {
                    pruned.push(VersionRecord {
                        stored: false,
                        ..first
                    });
                }
            }
            pruned.sort_by_key(|r| r.revision);
            Ok(pruned)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{StoreError, closed, waited};

    fn unreachable(cause: &str) -> StoreError {
        StoreError::Unreachable {
            operation: "connect",
            endpoints: "https://127.0.0.1:2379".to_owned(),
            cause: cause.to_owned(),
        }
    }

    #[test]
    fn a_connection_closed_after_the_handshake_is_asked_again_a_refused_one_is_not() {
        let canceled = unreachable("transport error: operation was canceled: connection closed");
        assert!(closed(&canceled) && !waited(&canceled));
        let pipe = unreachable(
            "transport error: connection error: stream closed because of a broken pipe",
        );
        assert!(closed(&pipe));
        let late = unreachable("no answer within 2000 ms");
        assert!(waited(&late) && !closed(&late));
        let refused =
            unreachable("transport error: tcp connect error: Connection refused (os error 111)");
        assert!(!closed(&refused) && !waited(&refused));
        let tls = StoreError::Etcd {
            operation: "connect",
            message: "connection closed".to_owned(),
        };
        assert!(!closed(&tls) && !waited(&tls));
    }
}
