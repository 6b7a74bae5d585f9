//! The embedded store: one SQLite file, for a single host running the
//! collector, aggregator and compiler in one process.
//!
//! Idempotency: a `messages` ledger with PRIMARY KEY (host, boot, seq),
//! written in the same transaction as the rows; an envelope already in the
//! ledger is skipped. Because of the ledger, `calls` can be summed in place
//! per (image, abi, nr, host, boot) instead of one row per envelope, which
//! keeps the file small on a long-running host. `incidence` and
//! `containers` have the same keys and merge rules as ClickHouse's, and
//! both stores build rows and answers with the same code (`rows.rs`), so
//! the answers are identical.

use super::rows::{self, CallSummary, ContainerSummary, IncidenceSummary};
use super::sql;
use super::{InsertStats, StoreError, TotalsRow};
use rusqlite::{params, Connection, OptionalExtension};
use schemas::fleet::ImageObservations;
use schemas::wire::Envelope;
use schemas::Abi;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where the embedded store lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedConfig {
    /// The SQLite file; created (with its directory) if missing.
    pub path: PathBuf,
}

/// An open, migrated SQLite store. Cheap to clone (shared connection).
#[derive(Clone, Debug)]
pub struct EmbeddedStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

const BOOTSTRAP: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at_ms INTEGER NOT NULL)";

const INSERT_MESSAGE: &str =
    "INSERT OR IGNORE INTO messages (host_id, boot_id, seq, stored_at_ms) VALUES (?1, ?2, ?3, ?4)";
const UPSERT_CALLS: &str = "INSERT INTO calls (image, abi, nr, host_id, boot_id, calls, phases, last_seen_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
 ON CONFLICT (image, abi, nr, host_id, boot_id) DO UPDATE SET calls = CASE WHEN excluded.calls > 9223372036854775807 - calls THEN 9223372036854775807 ELSE calls + excluded.calls END, phases = phases | excluded.phases, last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)";
const UPSERT_INCIDENCE: &str = "INSERT INTO incidence (image, abi, nr, host_id, boot_id, container_id, phases, first_seen_ms, last_seen_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
 ON CONFLICT (image, abi, nr, host_id, boot_id, container_id, phases) DO UPDATE SET first_seen_ms = min(first_seen_ms, excluded.first_seen_ms), last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)";
/// Attributes follow the row with the latest last seen (ClickHouse's
/// `argMax(x, last_seen_ms)`).
const UPSERT_CONTAINERS: &str = "INSERT INTO containers (image, host_id, boot_id, container_id, runtime, image_digest, pod_namespace, pod_name, pod_container, seccomp, started_at_ms, last_seen_ms, exited_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
 ON CONFLICT (image, host_id, boot_id, container_id) DO UPDATE SET
  runtime = CASE WHEN excluded.last_seen_ms > last_seen_ms THEN excluded.runtime ELSE runtime END,
  image_digest = CASE WHEN excluded.last_seen_ms > last_seen_ms THEN excluded.image_digest ELSE image_digest END,
  pod_namespace = CASE WHEN excluded.last_seen_ms > last_seen_ms THEN excluded.pod_namespace ELSE pod_namespace END,
  pod_name = CASE WHEN excluded.last_seen_ms > last_seen_ms THEN excluded.pod_name ELSE pod_name END,
  pod_container = CASE WHEN excluded.last_seen_ms > last_seen_ms THEN excluded.pod_container ELSE pod_container END,
  seccomp = CASE WHEN excluded.last_seen_ms > last_seen_ms THEN excluded.seccomp ELSE seccomp END,
  started_at_ms = min(started_at_ms, excluded.started_at_ms),
  last_seen_ms = max(last_seen_ms, excluded.last_seen_ms),
  exited_at_ms = max(exited_at_ms, excluded.exited_at_ms)";
/// Presence is the flag (see `rows::IncompleteRow`).
const INSERT_INCOMPLETE: &str = "INSERT OR IGNORE INTO incomplete_containers (image, host_id, boot_id, container_id) VALUES (?1, ?2, ?3, ?4)";
/// Presence is the flag (see `rows::UnverifiedRow`).
const INSERT_UNVERIFIED: &str = "INSERT OR IGNORE INTO unverified_containers (image, host_id, boot_id, container_id) VALUES (?1, ?2, ?3, ?4)";

const Q_IMAGES: &str = "SELECT DISTINCT image FROM containers ORDER BY image";
const Q_IMAGE_CONTAINERS: &str = "SELECT c.host_id, c.boot_id, c.container_id, c.started_at_ms, c.last_seen_ms, c.seccomp, c.image_digest, EXISTS (SELECT 1 FROM incomplete_containers i WHERE i.image = c.image AND i.host_id = c.host_id AND i.boot_id = c.boot_id AND i.container_id = c.container_id), EXISTS (SELECT 1 FROM unverified_containers u WHERE u.image = c.image AND u.host_id = c.host_id AND u.boot_id = c.boot_id AND u.container_id = c.container_id) FROM containers c WHERE c.image = ?1 ORDER BY c.started_at_ms, c.host_id, c.boot_id, c.container_id";
/// One row per phase combination (SQLite has no bit-or aggregate),
/// merged by [`merge_call_phases`].
/// Calls are summed in halves (`rows::calls_from_halves`): SQLite's
/// `sum` fails on overflow.
const Q_IMAGE_CALLS: &str = "SELECT abi, nr, phases, sum(calls >> 32), sum(calls & 4294967295), max(last_seen_ms) FROM calls WHERE image = ?1 GROUP BY abi, nr, phases ORDER BY abi, nr";
const Q_IMAGE_INCIDENCE: &str = "SELECT host_id, boot_id, container_id, abi, nr, phases, min(first_seen_ms), max(last_seen_ms) FROM incidence WHERE image = ?1 GROUP BY host_id, boot_id, container_id, abi, nr, phases ORDER BY host_id, boot_id, container_id, abi, nr";
const Q_SYSCALL_TOTALS: &str =
    "SELECT c.image, c.abi, c.nr, c.calls_high, c.calls_low, coalesce(i.hosts, 0), coalesce(i.containers, 0)
 FROM (SELECT image, abi, nr, sum(calls >> 32) AS calls_high, sum(calls & 4294967295) AS calls_low FROM calls GROUP BY image, abi, nr) c
 LEFT JOIN (SELECT image, abi, nr, count(DISTINCT host_id) AS hosts, count(*) AS containers
            FROM (SELECT DISTINCT image, abi, nr, host_id, boot_id, container_id FROM incidence)
            GROUP BY image, abi, nr) i
 ON c.image = i.image AND c.abi = i.abi AND c.nr = i.nr
 ORDER BY c.image, c.abi, c.nr";

const Q_RUNTIME_SYSCALLS: &str = "SELECT DISTINCT c.runtime, i.image, i.abi, i.nr
 FROM incidence i JOIN containers c
   ON c.image = i.image AND c.host_id = i.host_id AND c.boot_id = i.boot_id AND c.container_id = i.container_id
 WHERE (i.phases & 2) != 0
 ORDER BY c.runtime, i.image, i.abi, i.nr";

/// Calls per hour of their interval's end (migration 3), summed in place
/// like `calls`.
const UPSERT_CALLS_HOURLY: &str = "INSERT INTO calls_hourly (image, abi, nr, hour_ms, host_id, boot_id, calls, last_seen_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
 ON CONFLICT (image, abi, nr, hour_ms, host_id, boot_id) DO UPDATE SET calls = CASE WHEN excluded.calls > 9223372036854775807 - calls THEN 9223372036854775807 ELSE calls + excluded.calls END, last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)";

/// `query uses` (see `q_uses_calls.sql`): calls of one syscall per image
/// in the window's hours.
const Q_USES_CALLS: &str =
    "SELECT image, sum(calls >> 32), sum(calls & 4294967295), max(last_seen_ms)
 FROM calls_hourly WHERE abi = ?1 AND nr = ?2 AND hour_ms >= ?3 AND hour_ms < ?4
 GROUP BY image ORDER BY image";
/// `query uses` (see `q_uses_containers.sql`): hosts and containers whose
/// use of one syscall overlaps the window.
const Q_USES_CONTAINERS: &str = "SELECT image, count(DISTINCT host_id), count(*)
 FROM (SELECT image, host_id, boot_id, container_id, min(first_seen_ms) AS f, max(last_seen_ms) AS l
       FROM incidence WHERE abi = ?1 AND nr = ?2
       GROUP BY image, host_id, boot_id, container_id)
 WHERE f < ?3 AND l >= ?4
 GROUP BY image ORDER BY image";

/// `query drift --from --to` (see `q_drift_digests.sql`).
const Q_DRIFT_DIGESTS: &str = "SELECT c.image_digest, i.abi, i.nr, count(DISTINCT i.host_id), count(*), min(i.f), max(i.l)
 FROM (SELECT host_id, boot_id, container_id, abi, nr, min(first_seen_ms) AS f, max(last_seen_ms) AS l
       FROM incidence WHERE image = ?1
       GROUP BY host_id, boot_id, container_id, abi, nr) i
 JOIN containers c ON c.image = ?1 AND c.host_id = i.host_id AND c.boot_id = i.boot_id AND c.container_id = i.container_id
 WHERE c.image_digest IN (?2, ?3)
 GROUP BY c.image_digest, i.abi, i.nr
 ORDER BY c.image_digest, i.abi, i.nr";

/// `query usage` (see `q_usage_calls.sql`): `?2` is 1 for one syscall.
const Q_USAGE_CALLS: &str =
    "SELECT hour_ms, sum(calls >> 32), sum(calls & 4294967295), count(DISTINCT host_id)
 FROM calls_hourly WHERE image = ?1 AND (?2 = 0 OR (abi = ?3 AND nr = ?4))
 GROUP BY hour_ms ORDER BY hour_ms";
/// `query usage` (see `q_usage_first.sql`).
const Q_USAGE_FIRST: &str = "SELECT (f / 3600000) * 3600000 AS hour, count(*)
 FROM (SELECT host_id, boot_id, container_id, min(first_seen_ms) AS f
       FROM incidence WHERE image = ?1 AND (?2 = 0 OR (abi = ?3 AND nr = ?4))
       GROUP BY host_id, boot_id, container_id)
 GROUP BY hour ORDER BY hour";

/// `query breaks` (see `q_window_calls.sql`): calls per (image, abi, nr)
/// in the window's hours; `?1` is the image, or '' for all.
const Q_WINDOW_CALLS: &str =
    "SELECT image, abi, nr, sum(calls >> 32), sum(calls & 4294967295), max(last_seen_ms)
 FROM calls_hourly WHERE (?1 = '' OR image = ?1) AND hour_ms >= ?2 AND hour_ms < ?3
 GROUP BY image, abi, nr ORDER BY image, abi, nr";
/// `query breaks` (see `q_window_containers.sql`).
const Q_WINDOW_CONTAINERS: &str = "SELECT image, abi, nr, count(DISTINCT host_id), count(*)
 FROM (SELECT image, abi, nr, host_id, boot_id, container_id, min(first_seen_ms) AS f, max(last_seen_ms) AS l
       FROM incidence WHERE (?1 = '' OR image = ?1)
       GROUP BY image, abi, nr, host_id, boot_id, container_id)
 WHERE f < ?2 AND l >= ?3
 GROUP BY image, abi, nr ORDER BY image, abi, nr";
/// `query breaks` (see `q_reach_containers.sql`): `?2` is a JSON array
/// of keys `abi * 2^32 + nr`.
const Q_REACH_CONTAINERS: &str = "SELECT image, count(DISTINCT host_id), count(*)
 FROM (SELECT DISTINCT image, host_id, boot_id, container_id
       FROM (SELECT image, abi, nr, host_id, boot_id, container_id, min(first_seen_ms) AS f, max(last_seen_ms) AS l
             FROM incidence
             WHERE (?1 = '' OR image = ?1) AND (abi * 4294967296 + nr) IN (SELECT value FROM json_each(?2))
             GROUP BY image, abi, nr, host_id, boot_id, container_id)
       WHERE f < ?3 AND l >= ?4)
 GROUP BY image ORDER BY image";

/// Denials per hour of their interval's end (migration 5), summed in
/// place like `calls_hourly` (the ledger makes that exact).
const UPSERT_DENIALS: &str = "INSERT INTO denials (image, abi, nr, action, errno, profile, host_id, boot_id, container_id, hour_ms, count, first_ms, last_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)
 ON CONFLICT (image, abi, nr, action, errno, profile, host_id, boot_id, container_id, hour_ms) DO UPDATE SET count = CASE WHEN excluded.count > 9223372036854775807 - count THEN 9223372036854775807 ELSE count + excluded.count END, first_ms = min(first_ms, excluded.first_ms), last_ms = max(last_ms, excluded.last_ms)";
/// Argument values and sets (migration 6): the ledger stores each
/// envelope once; a set resent whole keeps the earliest first seen and
/// the largest overflow.
const UPSERT_ARG_VALUES: &str = "INSERT INTO arg_values (image, abi, nr, host_id, boot_id, container_id, fields, value, first_seen_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
 ON CONFLICT (image, abi, nr, fields, value, host_id, boot_id, container_id) DO UPDATE SET first_seen_ms = min(first_seen_ms, excluded.first_seen_ms)";
const UPSERT_ARG_SETS: &str = "INSERT INTO arg_sets (image, abi, nr, host_id, boot_id, container_id, fields, overflow, last_seen_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
 ON CONFLICT (image, abi, nr, host_id, boot_id, container_id, fields) DO UPDATE SET overflow = max(overflow, excluded.overflow), last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)";
/// `q_image_arg_values.sql`: per value the distinct hosts and containers,
/// verified ones only.
const Q_IMAGE_ARG_VALUES: &str = "SELECT abi, nr, fields, value, count(DISTINCT host_id), count(*)
 FROM (SELECT DISTINCT abi, nr, fields, value, host_id, boot_id, container_id FROM arg_values a
       WHERE a.image = ?1 AND NOT EXISTS (SELECT 1 FROM unverified_containers u WHERE u.image = a.image AND u.host_id = a.host_id AND u.boot_id = a.boot_id AND u.container_id = a.container_id))
 GROUP BY abi, nr, fields, value
 ORDER BY abi, nr, fields, value";
/// `q_image_arg_sets.sql`: per syscall the verified containers with a
/// set, and the hosts and containers whose overflow is not 0.
const Q_IMAGE_ARG_SETS: &str = "SELECT abi, nr, count(*), count(DISTINCT CASE WHEN o > 0 THEN host_id END), sum(o > 0)
 FROM (SELECT abi, nr, host_id, boot_id, container_id, max(overflow) AS o FROM arg_sets a
       WHERE a.image = ?1 AND NOT EXISTS (SELECT 1 FROM unverified_containers u WHERE u.image = a.image AND u.host_id = a.host_id AND u.boot_id = a.boot_id AND u.container_id = a.container_id)
       GROUP BY abi, nr, host_id, boot_id, container_id)
 GROUP BY abi, nr
 ORDER BY abi, nr";
/// Executed files (migration 7): the ledger stores each envelope once; a
/// file sent again (a collector that lost its state) keeps the earliest
/// first seen. `dev` and `ino` are stored bit-for-bit as `i64` (see [`i`]).
const UPSERT_EXECUTED: &str = "INSERT INTO executed_files (image, host_id, boot_id, container_id, path, kind, dev, ino, first_seen_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
 ON CONFLICT (image, host_id, boot_id, container_id, path, kind, dev, ino) DO UPDATE SET first_seen_ms = min(first_seen_ms, excluded.first_seen_ms)";
/// `q_image_executed.sql`: each (kind, path) once, verified containers
/// only.
const Q_IMAGE_EXECUTED: &str = "SELECT DISTINCT kind, path FROM executed_files x
 WHERE x.image = ?1 AND NOT EXISTS (SELECT 1 FROM unverified_containers u WHERE u.image = x.image AND u.host_id = x.host_id AND u.boot_id = x.boot_id AND u.container_id = x.container_id)
 ORDER BY kind, path";
/// `query denials` (see `q_denials.sql`): `?1` is the image, or '' for
/// all; `?2` the first hour.
const Q_DENIALS: &str = "SELECT image, abi, nr, action, errno, profile, sum(h), sum(l), count(DISTINCT host_id), count(*), min(f), max(z)
 FROM (SELECT image, abi, nr, action, errno, profile, host_id, boot_id, container_id, sum(count >> 32) AS h, sum(count & 4294967295) AS l, min(first_ms) AS f, max(last_ms) AS z
       FROM denials WHERE (?1 = '' OR image = ?1) AND hour_ms >= ?2
       GROUP BY image, abi, nr, action, errno, profile, host_id, boot_id, container_id)
 GROUP BY image, abi, nr, action, errno, profile
 ORDER BY image, abi, nr, action, errno, profile";

fn now_ms() -> i64 {
    i(sysutil::clock::now_ms())
}

/// The store file (created if missing) and its WAL and shared-memory
/// files, if any, get mode 0600: they hold every image's syscalls. SQLite
/// gives the `-wal` and `-shm` files it creates the database file's mode.
/// A file of another user (an analyst's `query` or `explain` on the
/// aggregator's store) keeps the mode its owner gave it: only the owner
/// may change it, and reading it is that owner's call.
fn make_private(db: &std::path::Path) -> Result<(), StoreError> {
    let fail = |e: std::io::Error, p: &std::path::Path| {
        StoreError::Embedded(format!("cannot make {} private: {e}", p.display()))
    };
    if !db.exists() {
        sysutil::fs::create_private_file(db).map_err(|e| fail(e, db))?;
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let p = PathBuf::from(p);
        if suffix.is_empty() || p.exists() {
            match sysutil::fs::set_mode(&p, sysutil::fs::PRIVATE_FILE) {
                Ok(()) => {}
                Err(e) if e.source.kind() == std::io::ErrorKind::PermissionDenied => {
                    log::debug!(
                        "{} is another user's: its mode is left as it is",
                        p.display()
                    );
                }
                Err(e) => return Err(fail(e.source, &p)),
            }
        }
    }
    Ok(())
}

/// SQLite integers are i64: store u64 values bit-for-bit (the wire's
/// ranges keep timestamps and `seq` below 2^63, and call counts are
/// capped at `rows::MAX_STORED_CALLS` before they get here).
fn i(v: u64) -> i64 {
    v as i64
}
fn u(v: i64) -> u64 {
    v as u64
}

impl EmbeddedStore {
    pub async fn open(cfg: &EmbeddedConfig) -> Result<EmbeddedStore, StoreError> {
        let path = cfg.path.clone();
        tokio::task::spawn_blocking(move || Self::open_blocking(path))
            .await
            .map_err(|e| StoreError::Embedded(format!("open task: {e}")))?
    }

    fn open_blocking(path: PathBuf) -> Result<EmbeddedStore, StoreError> {
        let err = |e: rusqlite::Error| StoreError::Sqlite {
            path: path.clone(),
            source: e,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            sysutil::fs::create_private_dir(dir)
                .map_err(|e| StoreError::Embedded(sysutil::error_chain(&e)))?;
        }
        make_private(&path)?;
        let mut conn = Connection::open(&path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        // Migrations: each in its own transaction with its version row, so
        // a crash leaves a migration either applied and recorded or not.
        conn.execute_batch(BOOTSTRAP).map_err(err)?;
        for m in sql::SQLITE_MIGRATIONS {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(err)?;
            let done: Option<i64> = tx
                .query_row(
                    "SELECT version FROM schema_migrations WHERE version = ?1",
                    [m.version],
                    |r| r.get(0),
                )
                .optional()
                .map_err(err)?;
            if done.is_none() {
                log::info!(
                    "embedded store {}: applying migration {} ({})",
                    path.display(),
                    m.version,
                    m.file
                );
                tx.execute_batch(m.sql).map_err(err)?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, applied_at_ms) VALUES (?1, ?2)",
                    params![m.version, now_ms()],
                )
                .map_err(err)?;
            }
            tx.commit().map_err(err)?;
        }
        Ok(EmbeddedStore {
            conn: Arc::new(Mutex::new(conn)),
            path,
        })
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Runs `f` on the connection in a blocking thread.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Embedded("connection lock poisoned".into()))?;
            f(&mut guard).map_err(|e| StoreError::Sqlite { path, source: e })
        })
        .await
        .map_err(|e| StoreError::Embedded(format!("store task: {e}")))?
    }

    /// Versions recorded in `schema_migrations`.
    pub async fn applied_migrations(&self) -> Result<Vec<u32>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare("SELECT version FROM schema_migrations ORDER BY version")?;
            let v = st
                .query_map([], |r| r.get::<_, u32>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(v)
        })
        .await
    }

    /// Stores a batch in one transaction; envelopes already in the ledger
    /// are skipped (counted in `duplicates`).
    pub async fn insert(&self, batch: &[Envelope]) -> Result<InsertStats, StoreError> {
        let batch = batch.to_vec();
        self.with(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut stats = InsertStats::default();
            {
                let mut msg = tx.prepare_cached(INSERT_MESSAGE)?;
                let mut calls = tx.prepare_cached(UPSERT_CALLS)?;
                let mut inc = tx.prepare_cached(UPSERT_INCIDENCE)?;
                let mut cont = tx.prepare_cached(UPSERT_CONTAINERS)?;
                let mut incomplete = tx.prepare_cached(INSERT_INCOMPLETE)?;
                let mut hourly = tx.prepare_cached(UPSERT_CALLS_HOURLY)?;
                let mut unverified = tx.prepare_cached(INSERT_UNVERIFIED)?;
                let mut denials = tx.prepare_cached(UPSERT_DENIALS)?;
                let mut arg_values = tx.prepare_cached(UPSERT_ARG_VALUES)?;
                let mut arg_sets = tx.prepare_cached(UPSERT_ARG_SETS)?;
                let mut executed = tx.prepare_cached(UPSERT_EXECUTED)?;
                let now = now_ms();
                for e in &batch {
                    if msg.execute(params![e.host_id, e.boot_id, i(e.seq), now])? == 0 {
                        stats.duplicates += 1;
                        continue;
                    }
                    let r = rows::explode(std::slice::from_ref(e));
                    for x in &r.containers {
                        cont.execute(params![
                            x.image,
                            x.host_id,
                            x.boot_id,
                            x.container_id,
                            x.runtime,
                            x.image_digest,
                            x.pod_namespace,
                            x.pod_name,
                            x.pod_container,
                            x.seccomp,
                            i(x.started_at_ms),
                            i(x.last_seen_ms),
                            i(x.exited_at_ms)
                        ])?;
                    }
                    for x in &r.incomplete {
                        incomplete.execute(params![
                            x.image,
                            x.host_id,
                            x.boot_id,
                            x.container_id
                        ])?;
                    }
                    for x in &r.unverified {
                        unverified.execute(params![
                            x.image,
                            x.host_id,
                            x.boot_id,
                            x.container_id
                        ])?;
                    }
                    for x in &r.incidence {
                        inc.execute(params![
                            x.image,
                            x.abi,
                            x.nr,
                            x.host_id,
                            x.boot_id,
                            x.container_id,
                            x.phases,
                            i(x.first_seen_ms),
                            i(x.last_seen_ms)
                        ])?;
                    }
                    for x in &r.calls {
                        calls.execute(params![
                            x.image,
                            x.abi,
                            x.nr,
                            x.host_id,
                            x.boot_id,
                            i(x.calls),
                            x.phases,
                            i(x.last_seen_ms)
                        ])?;
                        hourly.execute(params![
                            x.image,
                            x.abi,
                            x.nr,
                            i(x.interval_end_ms / rows::HOUR_MS * rows::HOUR_MS),
                            x.host_id,
                            x.boot_id,
                            i(x.calls),
                            i(x.last_seen_ms)
                        ])?;
                    }
                    for x in &r.denials {
                        denials.execute(params![
                            x.image,
                            x.abi,
                            x.nr,
                            x.action,
                            x.errno,
                            x.profile,
                            x.host_id,
                            x.boot_id,
                            x.container_id,
                            i(x.interval_end_ms / rows::HOUR_MS * rows::HOUR_MS),
                            i(x.count),
                            i(x.interval_end_ms)
                        ])?;
                    }
                    for x in &r.arg_values {
                        arg_values.execute(params![
                            x.image,
                            x.abi,
                            x.nr,
                            x.host_id,
                            x.boot_id,
                            x.container_id,
                            x.fields,
                            x.value,
                            i(x.first_seen_ms)
                        ])?;
                    }
                    for x in &r.arg_sets {
                        arg_sets.execute(params![
                            x.image,
                            x.abi,
                            x.nr,
                            x.host_id,
                            x.boot_id,
                            x.container_id,
                            x.fields,
                            i(x.overflow),
                            i(x.last_seen_ms)
                        ])?;
                    }
                    for x in &r.executed {
                        executed.execute(params![
                            x.image,
                            x.host_id,
                            x.boot_id,
                            x.container_id,
                            x.path,
                            x.kind,
                            i(x.dev),
                            i(x.ino),
                            i(x.first_seen_ms)
                        ])?;
                    }
                    stats.calls += r.calls.len() as u64;
                    stats.incidence += r.incidence.len() as u64;
                    stats.containers += r.containers.len() as u64;
                }
            }
            tx.commit()?;
            Ok(stats)
        })
        .await
    }

    pub async fn images(&self) -> Result<Vec<String>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare_cached(Q_IMAGES)?;
            let v = st
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(v)
        })
        .await
    }

    pub async fn image_observations(
        &self,
        image: &str,
    ) -> Result<Option<ImageObservations>, StoreError> {
        let img = image.to_string();
        let (containers, calls, incidence, values, sets, executed) = self
            .with(move |c| {
                let tx = c.transaction()?;
                let containers = {
                    let mut st = tx.prepare_cached(Q_IMAGE_CONTAINERS)?;
                    let v = st
                        .query_map([&img], |r| {
                            Ok(ContainerSummary {
                                host_id: r.get(0)?,
                                boot_id: r.get(1)?,
                                container_id: r.get(2)?,
                                started_at_ms: u(r.get(3)?),
                                last_seen_ms: u(r.get(4)?),
                                seccomp: r.get(5)?,
                                image_digest: r.get(6)?,
                                incomplete: r.get(7)?,
                                unverified: r.get(8)?,
                            })
                        })?
                        .collect::<Result<Vec<_>, _>>()?;
                    v
                };
                let calls = {
                    let mut st = tx.prepare_cached(Q_IMAGE_CALLS)?;
                    let v = st
                        .query_map([&img], |r| {
                            Ok(CallSummary {
                                abi: r.get(0)?,
                                nr: r.get(1)?,
                                phases: r.get(2)?,
                                calls_high: u(r.get(3)?),
                                calls_low: u(r.get(4)?),
                                last_seen_ms: u(r.get(5)?),
                            })
                        })?
                        .collect::<Result<Vec<_>, _>>()?;
                    v
                };
                let incidence = {
                    let mut st = tx.prepare_cached(Q_IMAGE_INCIDENCE)?;
                    let v = st
                        .query_map([&img], |r| {
                            Ok(IncidenceSummary {
                                host_id: r.get(0)?,
                                boot_id: r.get(1)?,
                                container_id: r.get(2)?,
                                abi: r.get(3)?,
                                nr: r.get(4)?,
                                phases: r.get(5)?,
                                first_seen_ms: u(r.get(6)?),
                                last_seen_ms: u(r.get(7)?),
                            })
                        })?
                        .collect::<Result<Vec<_>, _>>()?;
                    v
                };
                let values = {
                    let mut st = tx.prepare_cached(Q_IMAGE_ARG_VALUES)?;
                    let v = st
                        .query_map([&img], |r| {
                            Ok(rows::ArgValueSummary {
                                abi: r.get(0)?,
                                nr: r.get(1)?,
                                fields: r.get(2)?,
                                value: r.get(3)?,
                                hosts: u(r.get(4)?),
                                containers: u(r.get(5)?),
                            })
                        })?
                        .collect::<Result<Vec<_>, _>>()?;
                    v
                };
                let sets = {
                    let mut st = tx.prepare_cached(Q_IMAGE_ARG_SETS)?;
                    let v = st
                        .query_map([&img], |r| {
                            Ok(rows::ArgSetSummary {
                                abi: r.get(0)?,
                                nr: r.get(1)?,
                                containers: u(r.get(2)?),
                                overflow_hosts: u(r.get(3)?),
                                overflow_containers: u(r.get(4)?),
                            })
                        })?
                        .collect::<Result<Vec<_>, _>>()?;
                    v
                };
                let executed = {
                    let mut st = tx.prepare_cached(Q_IMAGE_EXECUTED)?;
                    let v = st
                        .query_map([&img], |r| {
                            Ok(rows::ExecutedSummary {
                                kind: r.get(0)?,
                                path: r.get(1)?,
                            })
                        })?
                        .collect::<Result<Vec<_>, _>>()?;
                    v
                };
                Ok((
                    containers,
                    merge_call_phases(calls),
                    merge_phases(incidence),
                    values,
                    sets,
                    executed,
                ))
            })
            .await?;
        let args = rows::assemble_args(values, sets)?;
        let executed = rows::assemble_executed(executed)?;
        Ok(
            rows::assemble(image, containers, calls, incidence)?.map(|mut o| {
                o.args = args;
                o.executed = executed;
                o
            }),
        )
    }

    pub async fn syscall_totals(&self) -> Result<Vec<TotalsRow>, StoreError> {
        let raw = self
            .with(|c| {
                let mut st = c.prepare_cached(Q_SYSCALL_TOTALS)?;
                let v = st
                    .query_map([], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, u8>(1)?,
                            r.get::<_, u32>(2)?,
                            rows::calls_from_halves(u(r.get(3)?), u(r.get(4)?)),
                            u(r.get(5)?),
                            u(r.get(6)?),
                        ))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(v)
            })
            .await?;
        raw.into_iter()
            .map(|(image, abi, nr, calls, hosts, containers)| {
                let abi = Abi::from_code(abi).ok_or(rows::UnknownAbi(abi))?;
                Ok((image, abi, nr, calls, hosts, containers))
            })
            .collect()
    }

    pub async fn runtime_syscalls(&self) -> Result<Vec<super::RuntimeSyscallRow>, StoreError> {
        let raw = self
            .with(|c| {
                let mut st = c.prepare_cached(Q_RUNTIME_SYSCALLS)?;
                let v = st
                    .query_map([], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, u8>(2)?,
                            r.get::<_, u32>(3)?,
                        ))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(v)
            })
            .await?;
        raw.into_iter()
            .map(|(runtime, image, abi, nr)| {
                let abi = Abi::from_code(abi).ok_or(rows::UnknownAbi(abi))?;
                Ok((runtime, image, abi, nr))
            })
            .collect()
    }
}

impl EmbeddedStore {
    pub async fn syscall_uses(
        &self,
        abi: Abi,
        nr: u32,
        w: super::analytics::Window,
    ) -> Result<Vec<super::analytics::SyscallUse>, StoreError> {
        let (from, to) = (i(w.from_hour_ms()), i(w.to_hour_ms()));
        let (calls, inc) = self
            .with(move |c| {
                let tx = c.transaction()?;
                let calls = {
                    let mut st = tx.prepare_cached(Q_USES_CALLS)?;
                    let v = st
                        .query_map(params![abi.code(), nr, from, to], |r| {
                            Ok((
                                r.get::<_, String>(0)?,
                                u(r.get(1)?),
                                u(r.get(2)?),
                                u(r.get(3)?),
                            ))
                        })?
                        .collect::<Result<Vec<_>, _>>()?;
                    v
                };
                let inc = {
                    let mut st = tx.prepare_cached(Q_USES_CONTAINERS)?;
                    let v = st
                        .query_map(params![abi.code(), nr, to, from], |r| {
                            Ok((r.get::<_, String>(0)?, u(r.get(1)?), u(r.get(2)?)))
                        })?
                        .collect::<Result<Vec<_>, _>>()?;
                    v
                };
                Ok((calls, inc))
            })
            .await?;
        Ok(super::analytics::assemble_uses(calls, inc))
    }

    pub async fn usage(
        &self,
        image: &str,
        syscall: Option<(Abi, u32)>,
    ) -> Result<Vec<super::analytics::UsageRow>, StoreError> {
        let (one, abi, nr) = syscall.map_or((0u8, 0u8, 0u32), |(a, n)| (1, a.code(), n));
        let img = image.to_string();
        let (calls, first) = self
            .with(move |c| {
                let tx = c.transaction()?;
                let calls = {
                    let mut st = tx.prepare_cached(Q_USAGE_CALLS)?;
                    let v = st
                        .query_map(params![img, one, abi, nr], |r| {
                            Ok((u(r.get(0)?), u(r.get(1)?), u(r.get(2)?), u(r.get(3)?)))
                        })?
                        .collect::<Result<Vec<_>, _>>()?;
                    v
                };
                let first = {
                    let mut st = tx.prepare_cached(Q_USAGE_FIRST)?;
                    let v = st
                        .query_map(params![img, one, abi, nr], |r| {
                            Ok((u(r.get(0)?), u(r.get(1)?)))
                        })?
                        .collect::<Result<Vec<_>, _>>()?;
                    v
                };
                Ok((calls, first))
            })
            .await?;
        Ok(super::analytics::assemble_usage(calls, first))
    }

    pub async fn digest_syscalls(
        &self,
        image: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<super::analytics::DigestSyscallRow>, StoreError> {
        let p = (image.to_string(), from.to_string(), to.to_string());
        self.with(move |c| {
            let mut st = c.prepare_cached(Q_DRIFT_DIGESTS)?;
            let v = st
                .query_map(params![p.0, p.1, p.2], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, u8>(1)?,
                        r.get::<_, u32>(2)?,
                        u(r.get(3)?),
                        u(r.get(4)?),
                        u(r.get(5)?),
                        u(r.get(6)?),
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(v)
        })
        .await
    }
}

impl EmbeddedStore {
    pub async fn window_syscalls(
        &self,
        image: Option<&str>,
        w: super::analytics::Window,
    ) -> Result<Vec<super::analytics::ImageSyscallUse>, StoreError> {
        let (from, to) = (i(w.from_hour_ms()), i(w.to_hour_ms()));
        let img = image.unwrap_or("").to_string();
        let (calls, inc) = self
            .with(move |c| {
                let tx = c.transaction()?;
                let calls = {
                    let mut st = tx.prepare_cached(Q_WINDOW_CALLS)?;
                    let v = st
                        .query_map(params![img, from, to], |r| {
                            Ok((
                                r.get::<_, String>(0)?,
                                r.get::<_, u8>(1)?,
                                r.get::<_, u32>(2)?,
                                u(r.get(3)?),
                                u(r.get(4)?),
                                u(r.get(5)?),
                            ))
                        })?
                        .collect::<Result<Vec<_>, _>>()?;
                    v
                };
                let inc = {
                    let mut st = tx.prepare_cached(Q_WINDOW_CONTAINERS)?;
                    let v = st
                        .query_map(params![img, to, from], |r| {
                            Ok((
                                r.get::<_, String>(0)?,
                                r.get::<_, u8>(1)?,
                                r.get::<_, u32>(2)?,
                                u(r.get(3)?),
                                u(r.get(4)?),
                            ))
                        })?
                        .collect::<Result<Vec<_>, _>>()?;
                    v
                };
                Ok((calls, inc))
            })
            .await?;
        Ok(super::analytics::assemble_window(calls, inc)?)
    }

    /// `query denials`: see [`super::Store::denials`].
    pub async fn denials(
        &self,
        image: Option<&str>,
        from_hour_ms: u64,
    ) -> Result<Vec<super::analytics::DenialsRow>, StoreError> {
        let img = image.unwrap_or("").to_string();
        let from = i(from_hour_ms);
        self.with(move |c| {
            let mut st = c.prepare_cached(Q_DENIALS)?;
            let v = st
                .query_map(params![img, from], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, u8>(1)?,
                        r.get::<_, u32>(2)?,
                        r.get::<_, u8>(3)?,
                        r.get::<_, u16>(4)?,
                        r.get::<_, String>(5)?,
                        u(r.get(6)?),
                        u(r.get(7)?),
                        u(r.get(8)?),
                        u(r.get(9)?),
                        u(r.get(10)?),
                        u(r.get(11)?),
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(v)
        })
        .await
    }

    pub async fn reach(
        &self,
        image: Option<&str>,
        keys: &[u64],
        w: super::analytics::Window,
    ) -> Result<Vec<super::analytics::ImageReach>, StoreError> {
        let (from, to) = (i(w.from_hour_ms()), i(w.to_hour_ms()));
        let img = image.unwrap_or("").to_string();
        let keys = format!(
            "[{}]",
            keys.iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        self.with(move |c| {
            let mut st = c.prepare_cached(Q_REACH_CONTAINERS)?;
            let v = st
                .query_map(params![img, keys, to, from], |r| {
                    Ok(super::analytics::ImageReach {
                        image: r.get(0)?,
                        hosts: u(r.get(1)?),
                        containers: u(r.get(2)?),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(v)
        })
        .await
    }
}

/// SQLite has no bit-or aggregate: the incidence query returns one row
/// per phase combination, merged here into one per (container, syscall).
/// Input is ordered by (host, boot, container, abi, nr).
fn merge_phases(v: Vec<IncidenceSummary>) -> Vec<IncidenceSummary> {
    let mut out: Vec<IncidenceSummary> = Vec::with_capacity(v.len());
    for x in v {
        match out.last_mut() {
            Some(l)
                if l.host_id == x.host_id
                    && l.boot_id == x.boot_id
                    && l.container_id == x.container_id
                    && l.abi == x.abi
                    && l.nr == x.nr =>
            {
                l.phases |= x.phases;
                l.first_seen_ms = l.first_seen_ms.min(x.first_seen_ms);
                l.last_seen_ms = l.last_seen_ms.max(x.last_seen_ms);
            }
            _ => out.push(x),
        }
    }
    out
}

/// Merges the per-phase-combination rows of [`Q_IMAGE_CALLS`] (ordered by
/// abi, nr) into one per syscall.
fn merge_call_phases(v: Vec<CallSummary>) -> Vec<CallSummary> {
    let mut out: Vec<CallSummary> = Vec::with_capacity(v.len());
    for x in v {
        match out.last_mut() {
            Some(l) if l.abi == x.abi && l.nr == x.nr => {
                l.phases |= x.phases;
                l.calls_high = l.calls_high.saturating_add(x.calls_high);
                l.calls_low = l.calls_low.saturating_add(x.calls_low);
                l.last_seen_ms = l.last_seen_ms.max(x.last_seen_ms);
            }
            _ => out.push(x),
        }
    }
    out
}

/// Retention (`sandmine store prune`): per table, what goes. The ledger
/// (`messages`) is kept: it is what makes a redelivered old envelope count
/// zero times, and a pruned envelope redelivered must stay skipped.
/// Incomplete and unverified flags, argument values and sets, and
/// executed files go with their container, before it.
const PRUNE: [(&str, &str); 11] = [
    ("calls", "DELETE FROM calls WHERE last_seen_ms < ?1"),
    ("calls_hourly", "DELETE FROM calls_hourly WHERE hour_ms + 3600000 <= ?1"),
    ("incidence", "DELETE FROM incidence WHERE last_seen_ms < ?1"),
    ("denials", "DELETE FROM denials WHERE hour_ms + 3600000 <= ?1"),
    ("incomplete_containers", "DELETE FROM incomplete_containers WHERE EXISTS (SELECT 1 FROM containers c WHERE c.image = incomplete_containers.image AND c.host_id = incomplete_containers.host_id AND c.boot_id = incomplete_containers.boot_id AND c.container_id = incomplete_containers.container_id AND c.last_seen_ms < ?1)"),
    ("unverified_containers", "DELETE FROM unverified_containers WHERE EXISTS (SELECT 1 FROM containers c WHERE c.image = unverified_containers.image AND c.host_id = unverified_containers.host_id AND c.boot_id = unverified_containers.boot_id AND c.container_id = unverified_containers.container_id AND c.last_seen_ms < ?1)"),
    ("arg_values", "DELETE FROM arg_values WHERE EXISTS (SELECT 1 FROM containers c WHERE c.image = arg_values.image AND c.host_id = arg_values.host_id AND c.boot_id = arg_values.boot_id AND c.container_id = arg_values.container_id AND c.last_seen_ms < ?1)"),
    ("arg_sets", "DELETE FROM arg_sets WHERE EXISTS (SELECT 1 FROM containers c WHERE c.image = arg_sets.image AND c.host_id = arg_sets.host_id AND c.boot_id = arg_sets.boot_id AND c.container_id = arg_sets.container_id AND c.last_seen_ms < ?1)"),
    ("executed_files", "DELETE FROM executed_files WHERE EXISTS (SELECT 1 FROM containers c WHERE c.image = executed_files.image AND c.host_id = executed_files.host_id AND c.boot_id = executed_files.boot_id AND c.container_id = executed_files.container_id AND c.last_seen_ms < ?1)"),
    ("containers", "DELETE FROM containers WHERE last_seen_ms < ?1"),
    ("messages", ""),
];

impl EmbeddedStore {
    /// Removes what was last seen before `cutoff_ms` (whole hours for the
    /// hourly tables: an hour goes when it ended by the cutoff), in one
    /// transaction; with `dry_run`, counts and rolls back. Returns the rows
    /// removed (or that would be) per table, in [`PRUNE`]'s order; the
    /// ledger's are always 0.
    pub async fn prune(
        &self,
        cutoff_ms: u64,
        dry_run: bool,
    ) -> Result<Vec<(&'static str, u64)>, StoreError> {
        self.with(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut out = Vec::new();
            for (table, stmt) in PRUNE {
                let n = if stmt.is_empty() {
                    0
                } else {
                    tx.execute(stmt, [i(cutoff_ms)])? as u64
                };
                out.push((table, n));
            }
            if dry_run {
                tx.rollback()?;
            } else {
                tx.commit()?;
            }
            Ok(out)
        })
        .await
    }

    /// Rows per table, in [`PRUNE`]'s order.
    pub async fn table_rows(&self) -> Result<Vec<(&'static str, u64)>, StoreError> {
        self.with(|c| {
            let mut out = Vec::new();
            for (table, _) in PRUNE {
                let n: i64 =
                    c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
                out.push((table, u(n)));
            }
            Ok(out)
        })
        .await
    }
}
