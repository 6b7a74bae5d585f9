//! Every SQL statement the ClickHouse store issues, from `aggregator/sql/`.
//!
//! The same files are read by `scripts/check-sql-chdb.py`, which runs them
//! on current ClickHouse (chdb), while the tests run them on 18.16: so the
//! SQL is checked on both ends of the supported range. `{db}` stands for
//! the database name; `?` for a bound value (the `clickhouse` crate's
//! placeholder). Statements inside a file are separated by `;` at a line
//! end.

/// A numbered migration: statements applied in order, each idempotent
/// (`IF NOT EXISTS`), so applying one twice, or from two aggregators at
/// once, is harmless.
pub struct Migration {
    pub version: u32,
    pub file: &'static str,
    pub sql: &'static str,
}

/// Creates the database and the version table; run on every open.
pub const BOOTSTRAP: &str = include_str!("../../sql/clickhouse/0000_bootstrap.sql");

/// ClickHouse migrations, oldest first. Never edit a released one: add one.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        file: "0001_init.sql",
        sql: include_str!("../../sql/clickhouse/0001_init.sql"),
    },
    // `incomplete_containers` (wire v3): one row per container some of
    // whose calls were lost. A table of its own, not a column: 18.16 has
    // no `ADD COLUMN IF NOT EXISTS`, and presence survives any merge.
    Migration {
        version: 2,
        file: "0002_incomplete.sql",
        sql: include_str!("../../sql/clickhouse/0002_incomplete.sql"),
    },
    // `unverified_containers` (wire v4): one row per container whose
    // cgroup was not provably its runtime's (issue 9 item 3). A table for
    // the same reasons as migration 2. (3 is the embedded store's alone.)
    Migration {
        version: 4,
        file: "0004_unverified.sql",
        sql: include_str!("../../sql/clickhouse/0004_unverified.sql"),
    },
    // `denials` (wire v6, issue 11): one row per (image, syscall, action,
    // profile, container, message), exactly once by (host, boot, seq)
    // like `calls`.
    Migration {
        version: 5,
        file: "0005_denials.sql",
        sql: include_str!("../../sql/clickhouse/0005_denials.sql"),
    },
    // `arg_values` and `arg_sets` (wire v7, issue 11): per container and
    // syscall its recorded argument values, and its set (presence: the
    // values are known; `overflow`, the largest wins: some were not
    // recorded). Sets only grow and are resent whole, so rows are a set
    // union and a redelivery rewrites the same rows.
    Migration {
        version: 6,
        file: "0006_args.sql",
        sql: include_str!("../../sql/clickhouse/0006_args.sql"),
    },
    // `executed_files` (wire v8, issue 10): per container the files its
    // processes ran as code, each (path, kind, dev, ino) one row. Each is
    // sent once per container, but a message can be redelivered (the
    // same row again) and a collector that lost its state can send a
    // file again (a later `first_seen_ms`): the key leaves
    // `first_seen_ms` out, so rows are a set union; a merge keeps one of
    // the copies (no version: the last inserted).
    Migration {
        version: 7,
        file: "0007_executed.sql",
        sql: include_str!("../../sql/clickhouse/0007_executed.sql"),
    },
];

/// The tables sandmine stores rows in (every table of the migrations but
/// `schema_migrations`).
pub const DATA_TABLES: [&str; 9] = [
    "calls",
    "incidence",
    "containers",
    "incomplete_containers",
    "unverified_containers",
    "denials",
    "arg_values",
    "arg_sets",
    "executed_files",
];

pub const Q_MIGRATIONS: &str = include_str!("../../sql/clickhouse/q_migrations.sql");
pub const Q_RECORD_MIGRATION: &str = include_str!("../../sql/clickhouse/q_record_migration.sql");
pub const Q_IMAGES: &str = include_str!("../../sql/clickhouse/q_images.sql");
pub const Q_IMAGE_CONTAINERS: &str = include_str!("../../sql/clickhouse/q_image_containers.sql");
pub const Q_IMAGE_CALLS: &str = include_str!("../../sql/clickhouse/q_image_calls.sql");
pub const Q_IMAGE_INCIDENCE: &str = include_str!("../../sql/clickhouse/q_image_incidence.sql");
/// An image's argument values: per (abi, nr, fields, value) the distinct
/// hosts and containers that recorded it, unverified containers left out.
pub const Q_IMAGE_ARG_VALUES: &str = include_str!("../../sql/clickhouse/q_image_arg_values.sql");
/// An image's argument sets: per (abi, nr) the verified containers that
/// recorded one, and the hosts and containers with an overflow.
pub const Q_IMAGE_ARG_SETS: &str = include_str!("../../sql/clickhouse/q_image_arg_sets.sql");
/// The files an image's containers ran as code: each (kind, path) once,
/// unverified containers left out.
pub const Q_IMAGE_EXECUTED: &str = include_str!("../../sql/clickhouse/q_image_executed.sql");
pub const Q_SYSCALL_TOTALS: &str = include_str!("../../sql/clickhouse/q_syscall_totals.sql");
/// Runtime-phase syscalls per (runtime, image); `2` is `Phase::Runtime`'s
/// bit (checked by a test).
pub const Q_RUNTIME_SYSCALLS: &str = include_str!("../../sql/clickhouse/q_runtime_syscalls.sql");
/// `query uses`: calls of one syscall per image in a window of hours.
pub const Q_USES_CALLS: &str = include_str!("../../sql/clickhouse/q_uses_calls.sql");
/// `query uses`: hosts and containers whose use of one syscall overlaps a
/// window.
pub const Q_USES_CONTAINERS: &str = include_str!("../../sql/clickhouse/q_uses_containers.sql");
/// `query drift --from --to`: per digest (of two) and syscall, the hosts,
/// containers, first and last seen.
pub const Q_DRIFT_DIGESTS: &str = include_str!("../../sql/clickhouse/q_drift_digests.sql");
/// `query usage`: calls and hosts per hour of one image (and syscall).
pub const Q_USAGE_CALLS: &str = include_str!("../../sql/clickhouse/q_usage_calls.sql");
/// `query usage`: containers per hour of their first use.
pub const Q_USAGE_FIRST: &str = include_str!("../../sql/clickhouse/q_usage_first.sql");
/// `query breaks`: calls per (image, abi, nr) in a window of hours, for
/// one image (`?` twice: the image, or '' for all).
pub const Q_WINDOW_CALLS: &str = include_str!("../../sql/clickhouse/q_window_calls.sql");
/// `query breaks`: hosts and containers per (image, abi, nr) whose use
/// overlaps a window.
pub const Q_WINDOW_CONTAINERS: &str = include_str!("../../sql/clickhouse/q_window_containers.sql");
/// `query breaks`: per image, distinct hosts and containers whose use of
/// any syscall of a set (keys `abi * 2^32 + nr`) overlaps a window.
pub const Q_REACH_CONTAINERS: &str = include_str!("../../sql/clickhouse/q_reach_containers.sql");
/// Forces the merges that collapse duplicates (tests; operators after a
/// large replay). Answers are the same before and after.
/// `query denials`: per (image, abi, nr, action, errno, profile) the
/// denials, hosts, containers, first and last seen, in intervals that
/// ended from an hour on (`?` twice: the image, or '' for all; then the
/// hour).
pub const Q_DENIALS: &str = include_str!("../../sql/clickhouse/q_denials.sql");
pub const OPTIMIZE: &str = include_str!("../../sql/clickhouse/optimize.sql");
/// Retention (`sandmine store prune`): one `ALTER TABLE {db}.T DELETE
/// WHERE ...` per table, run in this order, each waited for before the
/// next; `?` is the cutoff (ms). `calls` and `denials` go by whole hours
/// of their interval end that ended by the cutoff (the windows of `query
/// uses`, `breaks`, `denials --since` count by that hour); `incidence` and
/// `containers` by their key's latest version (every version of a key, or
/// none: a subquery on the per-key maximum `last_seen_ms`, checked on
/// 18.16); the incomplete/unverified flags, argument values and sets and
/// executed files with their container, before it. See [`prune_steps`].
/// Mutations of one table (database, table) not yet done, and their parts
/// still to mutate. 18.16's `system.mutations` has no failure columns
/// (`latest_fail_reason` came later): a failing mutation stays not done.
pub const Q_MUTATIONS_PENDING: &str = include_str!("../../sql/clickhouse/q_mutations_pending.sql");
pub const PRUNE: &str = include_str!("../../sql/clickhouse/prune.sql");

/// One table's step of [`PRUNE`]: the table and the `WHERE` predicate of
/// its mutation (`{db}` and the cutoff `?` still in it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PruneStep {
    pub table: &'static str,
    pub predicate: &'static str,
}

impl PruneStep {
    /// Counts the rows the mutation deletes (on a cluster through the
    /// `Distributed` table: every shard).
    pub fn count(&self) -> String {
        format!(
            "SELECT toUInt64(count()) FROM {{db}}.{} WHERE {}",
            self.table, self.predicate
        )
    }
}

/// [`PRUNE`]'s steps, in order. A statement of another shape is a bug in
/// the file (a unit test parses it).
pub fn prune_steps() -> Result<Vec<PruneStep>, NoClusterForm> {
    split(PRUNE).into_iter().map(prune_step).collect()
}

fn prune_step(stmt: &'static str) -> Result<PruneStep, NoClusterForm> {
    let no = || NoClusterForm(stmt.to_string());
    let rest = stmt.strip_prefix("ALTER TABLE {db}.").ok_or_else(no)?;
    let (table, predicate) = rest.split_once(" DELETE WHERE ").ok_or_else(no)?;
    if !valid_identifier(table) || !DATA_TABLES.contains(&table) {
        return Err(no());
    }
    Ok(PruneStep { table, predicate })
}

/// SQLite schema (embedded store). Numbers are one sequence shared with
/// ClickHouse's: a number is one change, made to one or both stores (3 is
/// SQLite's only: ClickHouse's `calls` already keeps each interval).
pub const SQLITE_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        file: "0001_init.sql",
        sql: include_str!("../../sql/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        file: "0002_incomplete.sql",
        sql: include_str!("../../sql/sqlite/0002_incomplete.sql"),
    },
    // `calls_hourly`: calls per hour (the embedded store sums `calls` in
    // place, so it kept no time series); earlier calls are backfilled
    // into the hour of their (host, boot)'s last use.
    Migration {
        version: 3,
        file: "0003_calls_hourly.sql",
        sql: include_str!("../../sql/sqlite/0003_calls_hourly.sql"),
    },
    // The same number as ClickHouse's migration 4.
    Migration {
        version: 4,
        file: "0004_unverified.sql",
        sql: include_str!("../../sql/sqlite/0004_unverified.sql"),
    },
    // The same number as ClickHouse's migration 5 (`denials`), summed in
    // place per hour like `calls_hourly` (the ledger makes it exact).
    Migration {
        version: 5,
        file: "0005_denials.sql",
        sql: include_str!("../../sql/sqlite/0005_denials.sql"),
    },
    // The same number as ClickHouse's migration 6 (`arg_values`,
    // `arg_sets`); the ledger makes each insert once, and conflicts keep
    // the earliest first seen and the largest overflow.
    Migration {
        version: 6,
        file: "0006_args.sql",
        sql: include_str!("../../sql/sqlite/0006_args.sql"),
    },
    // The same number as ClickHouse's migration 7 (`executed_files`); the
    // ledger makes each insert once, and a file sent again keeps the
    // earliest first seen.
    Migration {
        version: 7,
        file: "0007_executed.sql",
        sql: include_str!("../../sql/sqlite/0007_executed.sql"),
    },
];

/// Every ClickHouse file the store uses, by name, with its text: what the
/// chdb check must cover (a test asserts the directory holds no other).
pub fn all_statements() -> Vec<(&'static str, &'static str)> {
    let mut v = vec![("0000_bootstrap.sql", BOOTSTRAP)];
    v.extend(MIGRATIONS.iter().map(|m| (m.file, m.sql)));
    v.extend([
        ("q_migrations.sql", Q_MIGRATIONS),
        ("q_record_migration.sql", Q_RECORD_MIGRATION),
        ("q_images.sql", Q_IMAGES),
        ("q_image_containers.sql", Q_IMAGE_CONTAINERS),
        ("q_image_calls.sql", Q_IMAGE_CALLS),
        ("q_image_incidence.sql", Q_IMAGE_INCIDENCE),
        ("q_image_arg_values.sql", Q_IMAGE_ARG_VALUES),
        ("q_image_arg_sets.sql", Q_IMAGE_ARG_SETS),
        ("q_image_executed.sql", Q_IMAGE_EXECUTED),
        ("q_syscall_totals.sql", Q_SYSCALL_TOTALS),
        ("q_runtime_syscalls.sql", Q_RUNTIME_SYSCALLS),
        ("q_uses_calls.sql", Q_USES_CALLS),
        ("q_uses_containers.sql", Q_USES_CONTAINERS),
        ("q_drift_digests.sql", Q_DRIFT_DIGESTS),
        ("q_usage_calls.sql", Q_USAGE_CALLS),
        ("q_usage_first.sql", Q_USAGE_FIRST),
        ("q_window_calls.sql", Q_WINDOW_CALLS),
        ("q_window_containers.sql", Q_WINDOW_CONTAINERS),
        ("q_reach_containers.sql", Q_REACH_CONTAINERS),
        ("q_denials.sql", Q_DENIALS),
        ("optimize.sql", OPTIMIZE),
        ("prune.sql", PRUNE),
        ("q_mutations_pending.sql", Q_MUTATIONS_PENDING),
    ]);
    v
}

/// The cluster form of the schema (`[store.clickhouse] cluster = "NAME"`):
/// the same migrations, rendered statement by statement by
/// [`render_for_cluster`]. See `docs/STORE.md`, "ClickHouse on a cluster".
pub mod cluster {
    /// Suffix of the shard-local tables under the `Distributed` ones.
    pub const LOCAL_SUFFIX: &str = "_local";
    /// Root of sandmine's replicated tables in ZooKeeper; under it
    /// `CLUSTER/DB/{shard}/TABLE_local` and `CLUSTER/DB/schema_migrations`.
    pub const ZK_ROOT: &str = "/clickhouse/sandmine";
    /// How rows are spread over shards: every row of one host lands on one
    /// shard, whichever node it is inserted through. So a redelivered
    /// envelope meets its first copy on the same shard (merges collapse
    /// them there), and everything the queries join or group by container
    /// (host, boot, container) is shard-local.
    pub const SHARDING_KEY: &str = "cityHash64(host_id)";
    /// The sandmine table that is replicated to every node of the cluster
    /// (one replica per node, not per shard): where a migration recorded
    /// through one node is seen through all.
    pub const MIGRATIONS_TABLE: &str = "schema_migrations";
    /// Settings of every request in cluster mode. `insert_distributed_sync`:
    /// an insert returns once every shard has its rows (not when they are
    /// queued on the node that took them), so an ack means stored.
    /// `distributed_product_mode = local`: an `IN`/`JOIN` subquery on a
    /// `Distributed` table inside a query on one reads the shard's local
    /// table; correct because every such join is by container, and a
    /// container's rows share its host's shard ([`SHARDING_KEY`]).
    pub const SETTINGS: [(&str, &str); 2] = [
        ("insert_distributed_sync", "1"),
        ("distributed_product_mode", "local"),
    ];
    /// Tables, engines as `system.tables` shows them, on the node a
    /// cluster-mode store talks to (checked on open).
    /// What 18.16 answers to `OPTIMIZE` on a replicated table with nothing
    /// to merge (an empty shard): not a failure.
    pub const NOTHING_TO_MERGE: &str = "Unknown log entry type: 0";
    pub const Q_TABLE_ENGINES: &str =
        "SELECT name, engine FROM system.tables WHERE database = ? ORDER BY name";
}

/// A statement of [`BOOTSTRAP`], a migration or [`OPTIMIZE`] that
/// [`render_for_cluster`] has no rule for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no cluster form for this statement (add a rule to store::sql::render_for_cluster): {0}")]
pub struct NoClusterForm(pub String);

/// The cluster form of one statement (as [`split`] returns it, `{db}`
/// still in it) for cluster `cluster` (an identifier):
///
/// - `CREATE DATABASE IF NOT EXISTS {db}` gains `ON CLUSTER`;
/// - `CREATE TABLE IF NOT EXISTS {db}.T (...) ENGINE = ReplacingMergeTree[(v)] ORDER BY k`
///   becomes `{db}.T_local`, a `ReplicatedReplacingMergeTree` per shard,
///   and `{db}.T`, a `Distributed` over it sharded by
///   [`cluster::SHARDING_KEY`] (so every query and insert keeps the
///   table's name); `schema_migrations` becomes one table replicated on
///   every node;
/// - `OPTIMIZE TABLE {db}.T FINAL` optimizes `T_local` on every node
///   (and `schema_migrations` not at all);
/// - `ALTER TABLE {db}.T DELETE WHERE p` ([`PRUNE`]) mutates `T_local`,
///   and the tables `p`'s subqueries read become their `_local` tables:
///   a container's rows all live on its host's shard.
///
/// All with `ON CLUSTER`, so one aggregator's open creates them on every
/// node. Anything else is an error, so a new migration cannot slip through
/// unrendered (a test renders every statement).
pub fn render_for_cluster(stmt: &str, cluster: &str) -> Result<Vec<String>, NoClusterForm> {
    use cluster::*;
    let no = || NoClusterForm(stmt.to_string());
    let on = format!("ON CLUSTER {cluster}");
    if stmt == "CREATE DATABASE IF NOT EXISTS {db}" {
        return Ok(vec![format!("{stmt} {on}")]);
    }
    if stmt.starts_with("ALTER TABLE ") {
        let step = DATA_TABLES
            .iter()
            .find_map(|t| {
                let p = stmt.strip_prefix(&format!("ALTER TABLE {{db}}.{t} DELETE WHERE "))?;
                Some((*t, p))
            })
            .ok_or_else(no)?;
        let mut predicate = step.1.to_string();
        for t in DATA_TABLES {
            predicate = predicate.replace(
                &format!("FROM {{db}}.{t} "),
                &format!("FROM {{db}}.{t}{LOCAL_SUFFIX} "),
            );
        }
        return Ok(vec![format!(
            "ALTER TABLE {{db}}.{}{LOCAL_SUFFIX} {on} DELETE WHERE {predicate}",
            step.0
        )]);
    }
    if let Some(rest) = stmt.strip_prefix("OPTIMIZE TABLE {db}.") {
        let table = rest.strip_suffix(" FINAL").ok_or_else(no)?;
        if !valid_identifier(table) {
            return Err(no());
        }
        // schema_migrations: every node is a replica of it, and on 18.16
        // OPTIMIZE fails on a replica that finds nothing left to merge
        // (the first one merged it); its one query reads DISTINCT.
        if table == MIGRATIONS_TABLE {
            return Ok(Vec::new());
        }
        return Ok(vec![format!(
            "OPTIMIZE TABLE {{db}}.{table}{LOCAL_SUFFIX} {on} FINAL"
        )]);
    }
    let rest = stmt
        .strip_prefix("CREATE TABLE IF NOT EXISTS {db}.")
        .ok_or_else(no)?;
    let (table, rest) = rest.split_once(" (").ok_or_else(no)?;
    if !valid_identifier(table) {
        return Err(no());
    }
    let (columns, rest) = rest
        .split_once(") ENGINE = ReplacingMergeTree")
        .ok_or_else(no)?;
    if columns.contains(['(', ')']) {
        return Err(no());
    }
    let (version, order) = match rest.strip_prefix('(') {
        Some(r) => {
            let (v, o) = r.split_once(')').ok_or_else(no)?;
            if !valid_identifier(v) {
                return Err(no());
            }
            (format!(", {v}"), o)
        }
        None => (String::new(), rest),
    };
    let order = order.strip_prefix(" ORDER BY ").ok_or_else(no)?;
    if table == MIGRATIONS_TABLE {
        return Ok(vec![format!(
            "CREATE TABLE IF NOT EXISTS {{db}}.{table} {on} ({columns}) ENGINE = \
             ReplicatedReplacingMergeTree('{ZK_ROOT}/{cluster}/{{db}}/{table}', \
             '{{shard}}-{{replica}}'{version}) ORDER BY {order}"
        )]);
    }
    if !columns.starts_with("host_id String") && !columns.contains(", host_id String") {
        // The sharding key needs it.
        return Err(no());
    }
    let local = format!("{table}{LOCAL_SUFFIX}");
    Ok(vec![
        format!(
            "CREATE TABLE IF NOT EXISTS {{db}}.{local} {on} ({columns}) ENGINE = \
             ReplicatedReplacingMergeTree('{ZK_ROOT}/{cluster}/{{db}}/{{shard}}/{local}', \
             '{{replica}}'{version}) ORDER BY {order}"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {{db}}.{table} {on} ({columns}) ENGINE = \
             Distributed({cluster}, {{db}}, {local}, {SHARDING_KEY})"
        ),
    ])
}

/// Every statement of a file in its cluster form ([`render_for_cluster`]).
pub fn render_file_for_cluster(sql: &str, cluster: &str) -> Result<Vec<String>, NoClusterForm> {
    let mut out = Vec::new();
    for s in split(sql) {
        out.extend(render_for_cluster(s, cluster)?);
    }
    Ok(out)
}

/// Splits a file into statements (`;` at a line end), trimmed, non-empty.
pub fn split(sql: &str) -> Vec<&str> {
    sql.split(";\n")
        .map(|s| s.trim().trim_end_matches(';').trim())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Substitutes the database name (already validated as an identifier).
pub fn with_db(sql: &str, db: &str) -> String {
    sql.trim().trim_end_matches(';').replace("{db}", db)
}

/// A database name we can splice into SQL: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn valid_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sql_file_is_used_and_vice_versa() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/sql/clickhouse");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut used: Vec<String> = all_statements()
            .iter()
            .map(|(n, _)| n.to_string())
            .collect();
        used.sort();
        assert_eq!(on_disk, used);
        for (name, text) in all_statements() {
            assert!(
                !text.contains("--"),
                "{name}: no comments (chdb check, ? binding)"
            );
        }
    }

    #[test]
    fn every_statement_has_a_cluster_form() {
        let mut n = 0;
        for sql in std::iter::once(BOOTSTRAP)
            .chain(MIGRATIONS.iter().map(|m| m.sql))
            .chain([OPTIMIZE])
        {
            n += render_file_for_cluster(sql, "c1").unwrap().len();
        }
        // 1 database + 1 schema_migrations + 9 tables x 2 + 9 optimize.
        assert_eq!(n, 29);
        let boot = render_file_for_cluster(BOOTSTRAP, "c1").unwrap();
        assert_eq!(
            boot,
            [
                "CREATE DATABASE IF NOT EXISTS {db} ON CLUSTER c1",
                "CREATE TABLE IF NOT EXISTS {db}.schema_migrations ON CLUSTER c1 (version UInt32, \
                 applied_at DateTime) ENGINE = ReplicatedReplacingMergeTree(\
                 '/clickhouse/sandmine/c1/{db}/schema_migrations', '{shard}-{replica}') ORDER BY version",
            ]
        );
        let inc = render_file_for_cluster(MIGRATIONS[0].sql, "c1").unwrap();
        assert_eq!(inc.len(), 6);
        let cols = "image String, abi UInt8, nr UInt32, host_id String, boot_id String, \
                    container_id String, phases UInt8, first_seen_ms UInt64, last_seen_ms UInt64";
        assert_eq!(
            inc[2],
            format!(
                "CREATE TABLE IF NOT EXISTS {{db}}.incidence_local ON CLUSTER c1 ({cols}) ENGINE = \
                 ReplicatedReplacingMergeTree('/clickhouse/sandmine/c1/{{db}}/{{shard}}/incidence_local', \
                 '{{replica}}', last_seen_ms) ORDER BY (image, abi, nr, host_id, boot_id, container_id, phases)"
            )
        );
        assert_eq!(
            inc[3],
            format!(
                "CREATE TABLE IF NOT EXISTS {{db}}.incidence ON CLUSTER c1 ({cols}) ENGINE = \
                 Distributed(c1, {{db}}, incidence_local, cityHash64(host_id))"
            )
        );
        let opt = render_file_for_cluster(OPTIMIZE, "c1").unwrap();
        assert_eq!(
            opt[0],
            "OPTIMIZE TABLE {db}.calls_local ON CLUSTER c1 FINAL"
        );
        assert_eq!(opt.len(), 9);
        let args = render_file_for_cluster(MIGRATIONS[4].sql, "c1").unwrap();
        assert_eq!(args.len(), 4);
        assert_eq!(
            args[2],
            "CREATE TABLE IF NOT EXISTS {db}.arg_sets_local ON CLUSTER c1 (image String, abi UInt8, \
             nr UInt32, host_id String, boot_id String, container_id String, fields String, \
             overflow UInt64, last_seen_ms UInt64) ENGINE = ReplicatedReplacingMergeTree(\
             '/clickhouse/sandmine/c1/{db}/{shard}/arg_sets_local', '{replica}', overflow) \
             ORDER BY (image, abi, nr, host_id, boot_id, container_id, fields)"
        );
        let executed = render_file_for_cluster(MIGRATIONS[5].sql, "c1").unwrap();
        let cols = "image String, host_id String, boot_id String, container_id String, \
                    path String, kind UInt8, dev UInt64, ino UInt64, first_seen_ms UInt64";
        assert_eq!(
            executed,
            [
                format!(
                    "CREATE TABLE IF NOT EXISTS {{db}}.executed_files_local ON CLUSTER c1 ({cols}) \
                     ENGINE = ReplicatedReplacingMergeTree(\
                     '/clickhouse/sandmine/c1/{{db}}/{{shard}}/executed_files_local', '{{replica}}') \
                     ORDER BY (image, host_id, boot_id, container_id, path, kind, dev, ino)"
                ),
                format!(
                    "CREATE TABLE IF NOT EXISTS {{db}}.executed_files ON CLUSTER c1 ({cols}) \
                     ENGINE = Distributed(c1, {{db}}, executed_files_local, cityHash64(host_id))"
                ),
            ]
        );
        for bad in [
            "ALTER TABLE {db}.calls ADD COLUMN x UInt8",
            "CREATE TABLE IF NOT EXISTS {db}.t (a UInt8) ENGINE = MergeTree ORDER BY a",
            "CREATE TABLE IF NOT EXISTS {db}.t (a UInt8) ENGINE = ReplacingMergeTree ORDER BY a",
            "CREATE TABLE IF NOT EXISTS {db}.t (a Nullable(String), host_id String) ENGINE = ReplacingMergeTree ORDER BY a",
            "OPTIMIZE TABLE {db}.calls",
        ] {
            assert_eq!(
                render_for_cluster(bad, "c1"),
                Err(NoClusterForm(bad.to_string())),
                "{bad}"
            );
        }
    }

    #[test]
    fn prune_steps_and_their_cluster_form() {
        let steps = prune_steps().unwrap();
        let tables: Vec<_> = steps.iter().map(|s| s.table).collect();
        assert_eq!(
            tables,
            [
                "calls",
                "incidence",
                "denials",
                "incomplete_containers",
                "unverified_containers",
                "arg_values",
                "arg_sets",
                "executed_files",
                "containers"
            ]
        );
        assert_eq!(
            steps[0].count(),
            "SELECT toUInt64(count()) FROM {db}.calls WHERE \
             intDiv(interval_end_ms, 3600000) * 3600000 + 3600000 <= ?"
        );
        for s in &steps {
            assert_eq!(s.predicate.matches('?').count(), 1, "{}", s.table);
        }
        let c = render_file_for_cluster(PRUNE, "c1").unwrap();
        assert_eq!(c.len(), 9);
        assert_eq!(
            c[0],
            "ALTER TABLE {db}.calls_local ON CLUSTER c1 DELETE WHERE \
             intDiv(interval_end_ms, 3600000) * 3600000 + 3600000 <= ?"
        );
        let sub = "(image, host_id, boot_id, container_id) IN (SELECT image, host_id, boot_id, \
                   container_id FROM {db}.containers_local GROUP BY image, host_id, boot_id, \
                   container_id HAVING max(last_seen_ms) < ?)";
        assert_eq!(
            c[3],
            format!(
                "ALTER TABLE {{db}}.incomplete_containers_local ON CLUSTER c1 DELETE WHERE {sub}"
            )
        );
        assert_eq!(
            c[5],
            format!("ALTER TABLE {{db}}.arg_values_local ON CLUSTER c1 DELETE WHERE {sub}")
        );
        assert_eq!(
            c[7],
            format!("ALTER TABLE {{db}}.executed_files_local ON CLUSTER c1 DELETE WHERE {sub}")
        );
        assert_eq!(
            c[8],
            format!("ALTER TABLE {{db}}.containers_local ON CLUSTER c1 DELETE WHERE {sub}")
        );
        assert!(c[1].starts_with("ALTER TABLE {db}.incidence_local ON CLUSTER c1 DELETE WHERE "));
        assert!(c[1].contains(" FROM {db}.incidence_local GROUP BY "));
        for bad in [
            "ALTER TABLE {db}.schema_migrations DELETE WHERE version < ?",
            "ALTER TABLE {db}.calls UPDATE calls = 0 WHERE 1",
        ] {
            assert_eq!(
                render_for_cluster(bad, "c1"),
                Err(NoClusterForm(bad.to_string()))
            );
            assert!(prune_step(bad).is_err());
        }
    }

    #[test]
    fn split_and_identifiers() {
        assert_eq!(split("A;\nB\n;\n\n"), vec!["A", "B"]);
        assert_eq!(split(BOOTSTRAP).len(), 2);
        assert_eq!(split(MIGRATIONS[0].sql).len(), 3);
        assert_eq!(split(MIGRATIONS[1].sql).len(), 1);
        let versions: Vec<u32> = MIGRATIONS.iter().map(|m| m.version).collect();
        let sqlite: Vec<u32> = SQLITE_MIGRATIONS.iter().map(|m| m.version).collect();
        assert_eq!(split(MIGRATIONS[2].sql).len(), 1);
        // 3 is the embedded store's alone (calls_hourly).
        assert_eq!(versions, [1, 2, 4, 5, 6, 7]);
        assert_eq!(sqlite, [1, 2, 3, 4, 5, 6, 7]);
        assert!(valid_identifier("sandmine_1"));
        assert!(!valid_identifier("a-b"));
        assert!(!valid_identifier("1a"));
        assert!(!valid_identifier(""));
        assert!(!valid_identifier("x; DROP"));
    }
}
