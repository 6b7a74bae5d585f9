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
];

pub const Q_MIGRATIONS: &str = include_str!("../../sql/clickhouse/q_migrations.sql");
pub const Q_RECORD_MIGRATION: &str = include_str!("../../sql/clickhouse/q_record_migration.sql");
pub const Q_IMAGES: &str = include_str!("../../sql/clickhouse/q_images.sql");
pub const Q_IMAGE_CONTAINERS: &str = include_str!("../../sql/clickhouse/q_image_containers.sql");
pub const Q_IMAGE_CALLS: &str = include_str!("../../sql/clickhouse/q_image_calls.sql");
pub const Q_IMAGE_INCIDENCE: &str = include_str!("../../sql/clickhouse/q_image_incidence.sql");
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
    ]);
    v
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
    fn split_and_identifiers() {
        assert_eq!(split("A;\nB\n;\n\n"), vec!["A", "B"]);
        assert_eq!(split(BOOTSTRAP).len(), 2);
        assert_eq!(split(MIGRATIONS[0].sql).len(), 3);
        assert_eq!(split(MIGRATIONS[1].sql).len(), 1);
        let versions: Vec<u32> = MIGRATIONS.iter().map(|m| m.version).collect();
        let sqlite: Vec<u32> = SQLITE_MIGRATIONS.iter().map(|m| m.version).collect();
        assert_eq!(split(MIGRATIONS[2].sql).len(), 1);
        // 3 is the embedded store's alone (calls_hourly).
        assert_eq!(versions, [1, 2, 4, 5]);
        assert_eq!(sqlite, [1, 2, 3, 4, 5]);
        assert!(valid_identifier("sandmine_1"));
        assert!(!valid_identifier("a-b"));
        assert!(!valid_identifier("1a"));
        assert!(!valid_identifier(""));
        assert!(!valid_identifier("x; DROP"));
    }
}
