//! The fleet store on ClickHouse (18.16 and current).
//!
//! Idempotency: every row's sort key contains the identity of what it
//! counts ((host, boot, seq) for calls; the container for incidence and
//! containers), and the tables are `ReplacingMergeTree`s, so a redelivered
//! envelope produces identical rows that collapse on merge. The queries
//! never depend on merges having happened: they group by the full key first
//! (calls) or use aggregates that duplicates cannot change (min, max, bit
//! or, distinct counts). See `docs/STORE.md`.

use super::rows::{CallSummary, ContainerSummary, IncidenceSummary, Rows};
use super::sql;
use super::{InsertStats, StoreError, TotalsRow};
use clickhouse::{Client, Compression, Row};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use schemas::fleet::ImageObservations;
use schemas::Abi;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How to reach ClickHouse.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseConfig {
    /// HTTP interface; `https://` for TLS.
    pub url: String,
    /// Created if missing. An identifier (`[A-Za-z_][A-Za-z0-9_]*`).
    pub database: String,
    pub user: String,
    /// `Debug` shows only whether it is set.
    pub password: sysutil::Secret,
    /// Extra PEM CA certificates to trust for `https://` (besides the
    /// system's), e.g. a private CA.
    pub ca_file: Option<PathBuf>,
    /// Limit for one request (insert or query); a hung server turns into an
    /// error the caller retries, never a stuck pipeline.
    pub timeout_secs: u64,
    /// Limit for establishing a connection.
    pub connect_timeout_secs: u64,
    /// The name of a cluster in the servers' `remote_servers` (an
    /// identifier): the store then uses the cluster form of the schema,
    /// `Replicated*MergeTree` tables per shard under `Distributed` tables
    /// sharded by host, created by `ON CLUSTER` migrations (ZooKeeper
    /// required). Unset: one server. See docs/STORE.md, "ClickHouse on a
    /// cluster". A database is made for one form and stays in it.
    pub cluster: Option<String>,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        ClickHouseConfig {
            url: "http://127.0.0.1:8123".into(),
            database: "sandmine".into(),
            user: "default".into(),
            password: sysutil::Secret::default(),
            ca_file: None,
            timeout_secs: 30,
            connect_timeout_secs: 5,
            cluster: None,
        }
    }
}

/// A connected, migrated ClickHouse store.
#[derive(Clone)]
pub struct ClickHouseStore {
    /// Shared: clones share the connection pool, and the enum `Store`
    /// stays small.
    client: Arc<Client>,
    cfg: Arc<ClickHouseConfig>,
}

impl std::fmt::Debug for ClickHouseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseStore")
            .field("url", &self.cfg.url)
            .field("database", &self.cfg.database)
            .field("user", &self.cfg.user)
            .finish_non_exhaustive()
    }
}

fn tls_config(cfg: &ClickHouseConfig) -> Result<rustls::ClientConfig, StoreError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let tls = |reason: String| StoreError::Tls {
        url: cfg.url.clone(),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for c in native.certs {
        // A broken system certificate must not stop a private-CA setup.
        let _ = roots.add(c);
    }
    if let Some(path) = &cfg.ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| tls(format!("CA file {}: {e}", path.display())))?
            .collect::<Result<_, _>>()
            .map_err(|e| tls(format!("CA file {}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(tls(format!(
                "CA file {}: no PEM certificate in it",
                path.display()
            )));
        }
        for c in certs {
            roots
                .add(c)
                .map_err(|e| tls(format!("CA file {}: {e}", path.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Explains a failed TLS handshake. The clickhouse crate shows a
/// connector failure only as "network error: client error (Connect)"; the
/// rustls error inside it (wrapped in an `io::Error`, whose `source()`
/// skips it) says what went wrong. `None` when TLS is not the cause.
fn tls_failure(cfg: &ClickHouseConfig, e: &clickhouse::error::Error) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let tls = loop {
        let c = cause?;
        if let Some(t) = c.downcast_ref::<rustls::Error>() {
            break t;
        }
        // io::Error::source() skips the error it wraps (often another
        // io::Error around the rustls one): descend into it instead.
        cause = match c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner),
            None => c.source(),
        };
    };
    let hint = match tls {
        rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer | rustls::CertificateError::BadSignature,
        ) => match &cfg.ca_file {
            Some(ca) => format!(
                "; the server's certificate is not signed by the system roots or the CA in \
                 ca_file {}",
                ca.display()
            ),
            None => "; the server's certificate is not signed by a CA in the system roots: \
                     set ca_file to the CA that signed it"
                .to_string(),
        },
        rustls::Error::InvalidMessage(_) => {
            "; the server did not answer in TLS: is this its https_port (not http_port)?"
                .to_string()
        }
        _ => String::new(),
    };
    Some(format!("TLS handshake failed: {tls}{hint}"))
}

fn client(cfg: &ClickHouseConfig) -> Result<Client, StoreError> {
    if !cfg
        .url
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("https://")
    {
        sysutil::net::warn_plaintext("ClickHouse", &cfg.url, &[&cfg.url], "use an https:// url");
    }
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(Duration::from_secs(cfg.connect_timeout_secs.max(1))));
    http.set_keepalive(Some(Duration::from_secs(60)));
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config(cfg)?)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    // ClickHouse closes idle keep-alive connections after 3 s (18.16's
    // default): drop ours before that.
    let hyper = HyperClient::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_millis(2_500))
        .build(https);
    let mut client = Client::with_http_client(hyper);
    if cfg.cluster.is_some() {
        for (name, value) in sql::cluster::SETTINGS {
            client = client.with_setting(name, value);
        }
    }
    Ok(client
        .with_url(cfg.url.clone())
        .with_user(cfg.user.clone())
        .with_password(cfg.password.expose())
        // 18.16 lacks RowBinaryWithNamesAndTypes, which validation needs.
        .with_validation(false)
        // Rows go to a local or LAN server; lz4 costs more CPU than it
        // saves there, and 18.16's compressed responses broke older crates.
        .with_compression(Compression::None))
}

impl ClickHouseStore {
    /// Connects, checks the credentials, and applies missing migrations.
    pub async fn open(cfg: &ClickHouseConfig) -> Result<ClickHouseStore, StoreError> {
        if !sql::valid_identifier(&cfg.database) {
            return Err(StoreError::Config(format!(
                "ClickHouse database name {:?} is not an identifier ([A-Za-z_][A-Za-z0-9_]*)",
                cfg.database
            )));
        }
        if let Some(c) = &cfg.cluster {
            if !sql::valid_identifier(c) {
                return Err(StoreError::Config(format!(
                    "ClickHouse cluster name {c:?} is not an identifier ([A-Za-z_][A-Za-z0-9_]*)"
                )));
            }
        }
        let store = ClickHouseStore {
            client: Arc::new(client(cfg)?),
            cfg: Arc::new(cfg.clone()),
        };
        store
            .timed(store.client.query("SELECT 1").fetch_one::<u8>())
            .await?;
        store.migrate().await?;
        store.check_form().await?;
        Ok(store)
    }

    /// The database's `{db}`-substituted SQL.
    fn sql(&self, text: &str) -> String {
        sql::with_db(text, &self.cfg.database)
    }

    /// Runs one request under the configured timeout and maps errors.
    async fn timed<T>(
        &self,
        fut: impl Future<Output = Result<T, clickhouse::error::Error>>,
    ) -> Result<T, StoreError> {
        let limit = Duration::from_secs(self.cfg.timeout_secs.max(1));
        match tokio::time::timeout(limit, fut).await {
            Err(_) => Err(StoreError::Timeout {
                url: self.cfg.url.clone(),
                secs: limit.as_secs(),
            }),
            Ok(Err(e)) => Err(self.map_err(e)),
            Ok(Ok(v)) => Ok(v),
        }
    }

    fn map_err(&self, e: clickhouse::error::Error) -> StoreError {
        let msg = e.to_string();
        // 192 unknown user, 193 wrong password (18.16); 516 authentication
        // failed (current).
        let auth = [
            "Code: 192",
            "Code: 193",
            "Code: 516",
            "Authentication failed",
        ]
        .iter()
        .any(|p| msg.contains(p));
        if auth {
            return StoreError::Auth {
                url: self.cfg.url.clone(),
                user: self.cfg.user.clone(),
                message: msg,
            };
        }
        if let Some(reason) = tls_failure(&self.cfg, &e) {
            return StoreError::Tls {
                url: self.cfg.url.clone(),
                reason,
            };
        }
        match e {
            clickhouse::error::Error::Network(_) => StoreError::Unavailable {
                url: self.cfg.url.clone(),
                message: msg,
            },
            _ => StoreError::ClickHouse {
                url: self.cfg.url.clone(),
                message: msg,
            },
        }
    }

    /// Executes one statement.
    pub async fn execute(&self, text: &str) -> Result<(), StoreError> {
        let q = self.sql(text);
        self.timed(self.client.query(&q).execute()).await
    }

    /// Versions recorded in `schema_migrations`.
    pub async fn applied_migrations(&self) -> Result<Vec<u32>, StoreError> {
        let q = self.sql(sql::Q_MIGRATIONS);
        self.timed(self.client.query(&q).fetch_all::<u32>()).await
    }

    /// The statements of one file as this store runs them: as written on
    /// one server, in their cluster form on a cluster.
    fn statements(&self, file: &str) -> Result<Vec<String>, StoreError> {
        match &self.cfg.cluster {
            None => Ok(sql::split(file).into_iter().map(String::from).collect()),
            Some(c) => {
                sql::render_file_for_cluster(file, c).map_err(|e| StoreError::Config(e.to_string()))
            }
        }
    }

    /// Runs a file's statements (DDL, OPTIMIZE) in order. On a cluster an
    /// `ON CLUSTER` statement answers once every node ran it (or with the
    /// first node's error): `wait_end_of_query` keeps a late node's error
    /// from hiding behind an already sent 200.
    async fn run_file(&self, file: &str) -> Result<(), StoreError> {
        for s in self.statements(file)? {
            let q = self.sql(&s);
            let mut query = self.client.query(&q);
            if self.cfg.cluster.is_some() {
                query = query.with_setting("wait_end_of_query", "1");
            }
            self.timed(query.execute()).await?;
        }
        Ok(())
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        if self.cfg.cluster.is_some() {
            // `ON CLUSTER` DDL needs every node up: an aggregator whose
            // schema is complete must not wait for one to (re)start.
            if let Ok(applied) = self.applied_migrations().await {
                if sql::MIGRATIONS.iter().all(|m| applied.contains(&m.version)) {
                    return Ok(());
                }
            }
        }
        self.run_file(sql::BOOTSTRAP).await?;
        let applied = self.applied_migrations().await?;
        for m in sql::MIGRATIONS {
            if applied.contains(&m.version) {
                continue;
            }
            log::info!(
                "ClickHouse {}: applying migration {} ({}){}",
                self.cfg.database,
                m.version,
                m.file,
                match &self.cfg.cluster {
                    Some(c) => format!(" on cluster {c}"),
                    None => String::new(),
                }
            );
            self.run_file(m.sql).await?;
            let q = self.sql(sql::Q_RECORD_MIGRATION);
            self.timed(self.client.query(&q).bind(m.version).execute())
                .await?;
        }
        Ok(())
    }

    /// Refuses a database made for the other form: `CREATE TABLE IF NOT
    /// EXISTS` would silently keep one server's tables under a cluster
    /// configuration (or the reverse), and every insert and query would
    /// then go to the wrong place.
    async fn check_form(&self) -> Result<(), StoreError> {
        #[derive(Deserialize, Row)]
        struct T {
            name: String,
            engine: String,
        }
        let tables = self
            .timed(
                self.client
                    .query(sql::cluster::Q_TABLE_ENGINES)
                    .bind(self.cfg.database.as_str())
                    .fetch_all::<T>(),
            )
            .await?;
        let db = &self.cfg.database;
        for t in &tables {
            let data_table = sql::DATA_TABLES.contains(&t.name.as_str());
            let wrong = match &self.cfg.cluster {
                Some(_) => data_table && t.engine != "Distributed",
                None => data_table && t.engine == "Distributed",
            };
            if wrong {
                return Err(StoreError::Config(match &self.cfg.cluster {
                    Some(c) => format!(
                        "ClickHouse database {db}: table {} is a {}, made for one server, but \
                         cluster = {c:?} needs its cluster form (a Distributed table over {}{}); \
                         a database keeps the form it was made in: use a new database",
                        t.name,
                        t.engine,
                        t.name,
                        sql::cluster::LOCAL_SUFFIX
                    ),
                    None => format!(
                        "ClickHouse database {db}: table {} is Distributed, made for a cluster: \
                         set [store.clickhouse] cluster to its cluster's name",
                        t.name
                    ),
                }));
            }
        }
        Ok(())
    }

    async fn insert_rows<T>(&self, table: &str, rows: &[T]) -> Result<(), StoreError>
    where
        T: clickhouse::RowOwned + clickhouse::RowWrite,
    {
        if rows.is_empty() {
            return Ok(());
        }
        let name = format!("{}.{}", self.cfg.database, table);
        self.timed(async {
            let mut ins = self.client.insert_unescaped::<T>(&name).await?;
            for r in rows {
                ins.write(r).await?;
            }
            ins.end().await
        })
        .await
    }

    /// Writes the rows of a batch: one insert per table. Partial success
    /// is harmless (a retry rewrites identical rows).
    pub async fn insert(&self, rows: &Rows) -> Result<InsertStats, StoreError> {
        // Containers first, then incidence and calls side by side (two
        // HTTP inserts in flight: ClickHouse works on one while we send the
        // other). Until a failed insert is retried, a reader sees at worst
        // a container without its calls, never calls of an unknown
        // container.
        self.insert_rows("containers", &rows.containers).await?;
        self.insert_rows("incomplete_containers", &rows.incomplete)
            .await?;
        self.insert_rows("unverified_containers", &rows.unverified)
            .await?;
        let (incidence, calls) = tokio::join!(
            self.insert_rows("incidence", &rows.incidence),
            self.insert_rows("calls", &rows.calls)
        );
        incidence?;
        calls?;
        self.insert_rows("denials", &rows.denials).await?;
        self.insert_rows("arg_values", &rows.arg_values).await?;
        self.insert_rows("arg_sets", &rows.arg_sets).await?;
        self.insert_rows("executed_files", &rows.executed).await?;
        Ok(InsertStats {
            calls: rows.calls.len() as u64,
            incidence: rows.incidence.len() as u64,
            containers: rows.containers.len() as u64,
            ..InsertStats::default()
        })
    }

    pub async fn images(&self) -> Result<Vec<String>, StoreError> {
        let q = self.sql(sql::Q_IMAGES);
        self.timed(self.client.query(&q).fetch_all::<String>())
            .await
    }

    pub async fn image_observations(
        &self,
        image: &str,
    ) -> Result<Option<ImageObservations>, StoreError> {
        let q = self.sql(sql::Q_IMAGE_CONTAINERS);
        let containers = self
            .timed(
                self.client
                    .query(&q)
                    .bind(image)
                    .bind(image)
                    .bind(image)
                    .fetch_all::<ContainerSummary>(),
            )
            .await?;
        if containers.is_empty() {
            return Ok(None);
        }
        let q = self.sql(sql::Q_IMAGE_CALLS);
        let calls = self
            .timed(self.client.query(&q).bind(image).fetch_all::<CallSummary>())
            .await?;
        let q = self.sql(sql::Q_IMAGE_INCIDENCE);
        let incidence = self
            .timed(
                self.client
                    .query(&q)
                    .bind(image)
                    .fetch_all::<IncidenceSummary>(),
            )
            .await?;
        let q = self.sql(sql::Q_IMAGE_ARG_VALUES);
        let values = self
            .timed(
                self.client
                    .query(&q)
                    .bind(image)
                    .bind(image)
                    .fetch_all::<super::rows::ArgValueSummary>(),
            )
            .await?;
        let q = self.sql(sql::Q_IMAGE_ARG_SETS);
        let sets = self
            .timed(
                self.client
                    .query(&q)
                    .bind(image)
                    .bind(image)
                    .fetch_all::<super::rows::ArgSetSummary>(),
            )
            .await?;
        let q = self.sql(sql::Q_IMAGE_EXECUTED);
        let executed = self
            .timed(
                self.client
                    .query(&q)
                    .bind(image)
                    .bind(image)
                    .fetch_all::<super::rows::ExecutedSummary>(),
            )
            .await?;
        let args = super::rows::assemble_args(values, sets)?;
        let executed = super::rows::assemble_executed(executed)?;
        Ok(
            super::rows::assemble(image, containers, calls, incidence)?.map(|mut o| {
                o.args = args;
                o.executed = executed;
                o
            }),
        )
    }

    pub async fn syscall_totals(&self) -> Result<Vec<TotalsRow>, StoreError> {
        #[derive(Deserialize, Row)]
        struct R {
            image: String,
            abi: u8,
            nr: u32,
            calls_high: u64,
            calls_low: u64,
            hosts: u64,
            containers: u64,
        }
        let q = self.sql(sql::Q_SYSCALL_TOTALS);
        let rows = self.timed(self.client.query(&q).fetch_all::<R>()).await?;
        rows.into_iter()
            .map(|r| {
                let abi = Abi::from_code(r.abi).ok_or(super::rows::UnknownAbi(r.abi))?;
                let calls = super::rows::calls_from_halves(r.calls_high, r.calls_low);
                Ok((r.image, abi, r.nr, calls, r.hosts, r.containers))
            })
            .collect()
    }

    pub async fn runtime_syscalls(&self) -> Result<Vec<super::RuntimeSyscallRow>, StoreError> {
        #[derive(Deserialize, Row)]
        struct R {
            runtime: String,
            image: String,
            abi: u8,
            nr: u32,
        }
        let q = self.sql(sql::Q_RUNTIME_SYSCALLS);
        let rows = self.timed(self.client.query(&q).fetch_all::<R>()).await?;
        rows.into_iter()
            .map(|r| {
                let abi = Abi::from_code(r.abi).ok_or(super::rows::UnknownAbi(r.abi))?;
                Ok((r.runtime, r.image, abi, r.nr))
            })
            .collect()
    }

    pub async fn syscall_uses(
        &self,
        abi: Abi,
        nr: u32,
        w: super::analytics::Window,
    ) -> Result<Vec<super::analytics::SyscallUse>, StoreError> {
        #[derive(Deserialize, Row)]
        struct C {
            image: String,
            calls_high: u64,
            calls_low: u64,
            last: u64,
        }
        #[derive(Deserialize, Row)]
        struct I {
            image: String,
            hosts: u64,
            containers: u64,
        }
        let (from, to) = (w.from_hour_ms(), w.to_hour_ms());
        let q = self.sql(sql::Q_USES_CALLS);
        let calls = self
            .timed(
                self.client
                    .query(&q)
                    .bind(abi.code())
                    .bind(nr)
                    .bind(from)
                    .bind(to)
                    .fetch_all::<C>(),
            )
            .await?;
        let q = self.sql(sql::Q_USES_CONTAINERS);
        let inc = self
            .timed(
                self.client
                    .query(&q)
                    .bind(abi.code())
                    .bind(nr)
                    .bind(to)
                    .bind(from)
                    .fetch_all::<I>(),
            )
            .await?;
        Ok(super::analytics::assemble_uses(
            calls
                .into_iter()
                .map(|r| (r.image, r.calls_high, r.calls_low, r.last))
                .collect(),
            inc.into_iter()
                .map(|r| (r.image, r.hosts, r.containers))
                .collect(),
        ))
    }

    /// Per digest (`from` or `to`) and syscall of `image`: hosts,
    /// containers, first and last seen (`query drift --from --to`).
    pub async fn digest_syscalls(
        &self,
        image: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<super::analytics::DigestSyscallRow>, StoreError> {
        #[derive(Deserialize, Row)]
        struct R {
            digest: String,
            abi: u8,
            nr: u32,
            hosts: u64,
            containers: u64,
            first: u64,
            last: u64,
        }
        let q = self.sql(sql::Q_DRIFT_DIGESTS);
        let rows = self
            .timed(
                self.client
                    .query(&q)
                    .bind(image)
                    .bind(image)
                    .bind(from)
                    .bind(to)
                    .fetch_all::<R>(),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    r.digest,
                    r.abi,
                    r.nr,
                    r.hosts,
                    r.containers,
                    r.first,
                    r.last,
                )
            })
            .collect())
    }

    pub async fn usage(
        &self,
        image: &str,
        syscall: Option<(Abi, u32)>,
    ) -> Result<Vec<super::analytics::UsageRow>, StoreError> {
        #[derive(Deserialize, Row)]
        struct C {
            hour: u64,
            calls_high: u64,
            calls_low: u64,
            hosts: u64,
        }
        #[derive(Deserialize, Row)]
        struct F {
            hour: u64,
            n: u64,
        }
        let (one, abi, nr) = syscall.map_or((0u8, 0u8, 0u32), |(a, n)| (1, a.code(), n));
        let q = self.sql(sql::Q_USAGE_CALLS);
        let calls = self
            .timed(
                self.client
                    .query(&q)
                    .bind(image)
                    .bind(one)
                    .bind(abi)
                    .bind(nr)
                    .fetch_all::<C>(),
            )
            .await?;
        let q = self.sql(sql::Q_USAGE_FIRST);
        let first = self
            .timed(
                self.client
                    .query(&q)
                    .bind(image)
                    .bind(one)
                    .bind(abi)
                    .bind(nr)
                    .fetch_all::<F>(),
            )
            .await?;
        Ok(super::analytics::assemble_usage(
            calls
                .into_iter()
                .map(|r| (r.hour, r.calls_high, r.calls_low, r.hosts))
                .collect(),
            first.into_iter().map(|r| (r.hour, r.n)).collect(),
        ))
    }

    pub async fn window_syscalls(
        &self,
        image: Option<&str>,
        w: super::analytics::Window,
    ) -> Result<Vec<super::analytics::ImageSyscallUse>, StoreError> {
        #[derive(Deserialize, Row)]
        struct C {
            image: String,
            abi: u8,
            nr: u32,
            calls_high: u64,
            calls_low: u64,
            last: u64,
        }
        #[derive(Deserialize, Row)]
        struct I {
            image: String,
            abi: u8,
            nr: u32,
            hosts: u64,
            containers: u64,
        }
        let (from, to) = (w.from_hour_ms(), w.to_hour_ms());
        let img = image.unwrap_or("");
        let q = self.sql(sql::Q_WINDOW_CALLS);
        let calls = self
            .timed(
                self.client
                    .query(&q)
                    .bind(img)
                    .bind(img)
                    .bind(from)
                    .bind(to)
                    .fetch_all::<C>(),
            )
            .await?;
        let q = self.sql(sql::Q_WINDOW_CONTAINERS);
        let inc = self
            .timed(
                self.client
                    .query(&q)
                    .bind(img)
                    .bind(img)
                    .bind(to)
                    .bind(from)
                    .fetch_all::<I>(),
            )
            .await?;
        Ok(super::analytics::assemble_window(
            calls
                .into_iter()
                .map(|r| (r.image, r.abi, r.nr, r.calls_high, r.calls_low, r.last))
                .collect(),
            inc.into_iter()
                .map(|r| (r.image, r.abi, r.nr, r.hosts, r.containers))
                .collect(),
        )?)
    }

    pub async fn reach(
        &self,
        image: Option<&str>,
        keys: &[u64],
        w: super::analytics::Window,
    ) -> Result<Vec<super::analytics::ImageReach>, StoreError> {
        #[derive(Deserialize, Row)]
        struct R {
            image: String,
            hosts: u64,
            containers: u64,
        }
        let img = image.unwrap_or("");
        let q = self.sql(sql::Q_REACH_CONTAINERS);
        let rows = self
            .timed(
                self.client
                    .query(&q)
                    .bind(img)
                    .bind(img)
                    .bind(keys)
                    .bind(w.to_hour_ms())
                    .bind(w.from_hour_ms())
                    .fetch_all::<R>(),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| super::analytics::ImageReach {
                image: r.image,
                hosts: r.hosts,
                containers: r.containers,
            })
            .collect())
    }

    /// `query denials`: see [`super::Store::denials`].
    pub async fn denials(
        &self,
        image: Option<&str>,
        from_hour_ms: u64,
    ) -> Result<Vec<super::analytics::DenialsRow>, StoreError> {
        #[derive(Deserialize, Row)]
        struct R {
            image: String,
            abi: u8,
            nr: u32,
            action: u8,
            errno: u16,
            profile: String,
            high: u64,
            low: u64,
            hosts: u64,
            containers: u64,
            first: u64,
            last: u64,
        }
        let img = image.unwrap_or("");
        let q = self.sql(sql::Q_DENIALS);
        let rows = self
            .timed(
                self.client
                    .query(&q)
                    .bind(img)
                    .bind(img)
                    .bind(from_hour_ms)
                    .fetch_all::<R>(),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    r.image,
                    r.abi,
                    r.nr,
                    r.action,
                    r.errno,
                    r.profile,
                    r.high,
                    r.low,
                    r.hosts,
                    r.containers,
                    r.first,
                    r.last,
                )
            })
            .collect())
    }

    /// `OPTIMIZE TABLE ... FINAL` on every table: forces the merges that
    /// collapse duplicates (tests, and operators after a big replay).
    /// On a cluster: the shard-local tables, on every node. 18.16 fails
    /// `OPTIMIZE` on a replicated table with nothing to merge (a table
    /// empty on some shard) with [`sql::cluster::NOTHING_TO_MERGE`]: that
    /// answer is taken as done (the `ON CLUSTER` answer comes once every
    /// node ran it).
    pub async fn optimize(&self) -> Result<(), StoreError> {
        if self.cfg.cluster.is_none() {
            return self.run_file(sql::OPTIMIZE).await;
        }
        for s in self.statements(sql::OPTIMIZE)? {
            let q = self.sql(&s);
            let query = self.client.query(&q).with_setting("wait_end_of_query", "1");
            match self.timed(query.execute()).await {
                Err(StoreError::ClickHouse { message, .. })
                    if message.contains(sql::cluster::NOTHING_TO_MERGE) => {}
                r => r?,
            }
        }
        Ok(())
    }

    /// Retention (`sandmine store prune`): deletes what [`sql::PRUNE`]
    /// selects for `cutoff_ms`, table by table in its order, by mutation
    /// (18.16 has no `TTL` and the tables no partition key). Each table's
    /// rows that go are counted first (on a cluster through the
    /// `Distributed` table), then its mutation is made (on a cluster on
    /// `T_local ON CLUSTER`) and waited for until `system.mutations` shows
    /// it done, at most `wait` per table (`progress` hears of the wait
    /// every few seconds); on a cluster also until the count is 0 on every
    /// shard (the node asked sees only its own mutations). With `dry_run`
    /// only counts. Returns the rows removed (or that would be) per table.
    ///
    /// No ledger: an envelope redelivered after its rows went is stored
    /// again. The caller keeps the cutoff older than the redelivery horizon.
    pub async fn prune(
        &self,
        cutoff_ms: u64,
        dry_run: bool,
        wait: Duration,
        progress: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<Vec<(&'static str, u64)>, StoreError> {
        let steps = sql::prune_steps().map_err(|e| StoreError::Config(e.to_string()))?;
        let mutations = self.statements(sql::PRUNE)?;
        let mut out = Vec::with_capacity(steps.len());
        for (step, mutation) in steps.iter().zip(mutations) {
            let count = self.sql(&step.count());
            let n = self
                .timed(self.client.query(&count).bind(cutoff_ms).fetch_one::<u64>())
                .await?;
            out.push((step.table, n));
            if dry_run || n == 0 {
                continue;
            }
            let q = self.sql(&mutation);
            let mut query = self.client.query(&q).bind(cutoff_ms);
            if self.cfg.cluster.is_some() {
                query = query.with_setting("wait_end_of_query", "1");
            }
            self.timed(query.execute()).await?;
            self.wait_mutations(step, cutoff_ms, wait, progress).await?;
        }
        Ok(out)
    }

    /// Waits until the prune mutation of `step` is done (see [`Self::prune`]).
    async fn wait_mutations(
        &self,
        step: &sql::PruneStep,
        cutoff_ms: u64,
        wait: Duration,
        progress: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<(), StoreError> {
        #[derive(Row, Deserialize)]
        struct Pending {
            m_pending: u64,
            m_parts: u64,
        }
        let table = match self.cfg.cluster {
            Some(_) => format!("{}{}", step.table, sql::cluster::LOCAL_SUFFIX),
            None => step.table.to_string(),
        };
        let start = tokio::time::Instant::now();
        let mut told = start;
        loop {
            let p = self
                .timed(
                    self.client
                        .query(sql::Q_MUTATIONS_PENDING)
                        .bind(&self.cfg.database)
                        .bind(&table)
                        .fetch_one::<Pending>(),
                )
                .await?;
            let left = if p.m_pending == 0 && self.cfg.cluster.is_some() {
                let count = self.sql(&step.count());
                self.timed(self.client.query(&count).bind(cutoff_ms).fetch_one::<u64>())
                    .await?
            } else {
                0
            };
            if p.m_pending == 0 && left == 0 {
                return Ok(());
            }
            let waited = start.elapsed();
            if waited >= wait {
                return Err(StoreError::ClickHouse {
                    url: self.cfg.url.clone(),
                    message: format!(
                        "the prune mutation of {table} is not done after {} s ({} parts to do, \
                         {left} rows left on other shards); it goes on in the server, and 18.16 \
                         keeps no failure reason in system.mutations: see the server's error log",
                        waited.as_secs(),
                        p.m_parts
                    ),
                });
            }
            if told.elapsed() >= Duration::from_secs(5) {
                told = tokio::time::Instant::now();
                let shards = match self.cfg.cluster {
                    Some(_) => format!(", {left} rows left on the cluster"),
                    None => String::new(),
                };
                progress(&format!(
                    "waiting for ClickHouse to delete from {table}: {} parts to do{shards}, {} s",
                    p.m_parts,
                    waited.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn config(&self) -> &ClickHouseConfig {
        &self.cfg
    }
}
