//! Executed files (wire v8, migration 7) in both stores: an image's exact
//! `RanFiles` from its verified containers only, a set union under
//! redelivery and regrouping, before and after ClickHouse's merges, the
//! same from ClickHouse 18.16 and SQLite; pruned with their container; and
//! a store at migration 6 upgraded to 7.

mod common;

use aggregator::store::{sql, Store};
use common::*;
use schemas::wire::{ContainerDelta, Envelope};
use schemas::{Abi, ExecKind, ExecutedFile, Phase, RanFiles};
use std::time::Duration;

const DAY: u64 = 24 * H;

fn file(path: &str, kind: ExecKind, dev: u64, ino: u64) -> ExecutedFile {
    ExecutedFile {
        path: path.into(),
        kind,
        dev,
        ino,
    }
}

fn exec(path: &str, dev: u64, ino: u64) -> ExecutedFile {
    file(path, ExecKind::Exec, dev, ino)
}

fn mapped(path: &str, dev: u64, ino: u64) -> ExecutedFile {
    file(path, ExecKind::Mapped, dev, ino)
}

fn ran(id: &str, image: &str, start: u64, last: u64, files: Vec<ExecutedFile>) -> ContainerDelta {
    let mut c = ctr(
        id,
        image,
        start,
        last,
        None,
        vec![sc(Abi::X86_64, 0, 1, &[Phase::Image], start + 100)],
    );
    c.executed = files.into_iter().collect();
    c
}

/// app:1 on two hosts: a1 (h1) sends its files over two messages, the
/// second with a new mapping and its executable again under another
/// inode (replaced on disk: a row of its own, the same path in the
/// answer); a2 (h1) runs a shell; a3 (h2) runs the executable and maps
/// it; u1 (h2, unverified) runs files no verified container ran, and
/// the shell; r1 is redis:7's. 13 rows in all.
fn fleet() -> Vec<Envelope> {
    let mut u1 = ran(
        "u1",
        "app:1",
        T0,
        T0 + 10_000,
        vec![
            exec("/tmp/evil", 5, 99),
            mapped("/lib/evil.so", 5, 98),
            exec("/bin/sh", 5, 30),
        ],
    );
    u1.unverified = true;
    vec![
        env(
            "h1",
            "b1",
            1,
            T0,
            vec![
                ran(
                    "a1",
                    "app:1",
                    T0,
                    T0 + 10_000,
                    vec![
                        exec("/usr/bin/app", 1, 10),
                        mapped("/lib/ld.so", 1, 20),
                        mapped("/lib/libc.so", 1, 21),
                    ],
                ),
                ran(
                    "a2",
                    "app:1",
                    T0 + 500,
                    T0 + 10_000,
                    vec![exec("/bin/sh", 1, 30), mapped("/lib/ld.so", 1, 20)],
                ),
            ],
        ),
        env(
            "h1",
            "b1",
            2,
            T0 + 10_000,
            vec![ran(
                "a1",
                "app:1",
                T0,
                T0 + 20_000,
                vec![
                    mapped("/usr/lib/plugin.so", 1, 40),
                    exec("/usr/bin/app", 2, 11),
                ],
            )],
        ),
        env(
            "h2",
            "b7",
            1,
            T0,
            vec![
                ran(
                    "a3",
                    "app:1",
                    T0,
                    T0 + 10_000,
                    vec![exec("/usr/bin/app", 5, 10), mapped("/usr/bin/app", 5, 10)],
                ),
                u1,
                ran(
                    "r1",
                    "redis:7",
                    T0,
                    T0 + 10_000,
                    vec![exec("/usr/bin/redis-server", 5, 60)],
                ),
            ],
        ),
    ]
}

fn files(executables: &[&str], mapped: &[&str]) -> RanFiles {
    RanFiles {
        executables: executables.iter().map(|s| s.to_string()).collect(),
        mapped: mapped.iter().map(|s| s.to_string()).collect(),
    }
}

fn expected() -> RanFiles {
    files(
        &["/bin/sh", "/usr/bin/app"],
        &[
            "/lib/ld.so",
            "/lib/libc.so",
            "/usr/bin/app",
            "/usr/lib/plugin.so",
        ],
    )
}

async fn executed(s: &Store, image: &str) -> Option<RanFiles> {
    s.image_observations(image)
        .await
        .unwrap()
        .map(|o| o.executed)
}

/// The rows of `executed_files`: SQLite's table, or ClickHouse's (merged
/// first, so that copies of a redelivered row count once).
async fn rows(s: &Store, ch: &testsvc::ClickHouse) -> u64 {
    match s {
        Store::ClickHouse(c) => {
            c.optimize().await.unwrap();
            ch.query("SELECT count() FROM sandmine.executed_files")
                .trim()
                .parse()
                .unwrap()
        }
        Store::Embedded(e) => {
            let t = e.table_rows().await.unwrap();
            t.iter().find(|(t, _)| *t == "executed_files").unwrap().1
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executed_files_are_exact_verified_only_stored_once_and_pruned_on_both_stores() {
    let ch = testsvc::ClickHouse::start();
    let dir = tempfile::tempdir().unwrap();
    let c = open_ch(&ch).await;
    let e = open_embedded(dir.path()).await;
    for s in [&c, &e] {
        assert_eq!(
            s.applied_migrations().await.unwrap().last().copied(),
            Some(7)
        );
        s.insert(&fleet()).await.unwrap();
        assert_eq!(executed(s, "app:1").await, Some(expected()));
        assert_eq!(
            executed(s, "redis:7").await,
            Some(files(&["/usr/bin/redis-server"], &[]))
        );
        // Redelivered whole, one by one in reverse, and regrouped: the
        // same answer, and the same rows.
        s.insert(&fleet()).await.unwrap();
        for m in fleet().iter().rev() {
            s.insert(std::slice::from_ref(m)).await.unwrap();
        }
        s.insert(&fleet()[1..3]).await.unwrap();
        assert_eq!(executed(s, "app:1").await, Some(expected()));
        assert_eq!(rows(s, &ch).await, 13);
        assert_eq!(executed(s, "app:1").await, Some(expected()));
    }
    // Both stores answer the whole image alike.
    assert_eq!(
        c.image_observations("app:1").await.unwrap(),
        e.image_observations("app:1").await.unwrap()
    );
    // The unverified container's rows are stored, just not answered.
    assert_eq!(
        ch.query(
            "SELECT path FROM sandmine.executed_files WHERE container_id = 'u1' ORDER BY path"
        ),
        "/bin/sh\n/lib/evil.so\n/tmp/evil\n"
    );

    // Ten days on, a1 runs one more file (h1's next message); every other
    // container was last seen ten days ago. A prune at nine days removes
    // their files with them (8 rows), and keeps all six of a1's.
    let late_t = T0 + 10 * DAY;
    let late = vec![env(
        "h1",
        "b1",
        3,
        late_t,
        vec![ran(
            "a1",
            "app:1",
            T0,
            late_t + 10_000,
            vec![exec("/usr/bin/late", 1, 50)],
        )],
    )];
    let cutoff = late_t - DAY;
    for s in [&c, &e] {
        s.insert(&late).await.unwrap();
        assert_eq!(rows(s, &ch).await, 14);
        let dry = s
            .prune(cutoff, true, Duration::from_secs(60), &|_: &str| {})
            .await
            .unwrap();
        assert!(dry.contains(&("executed_files", 8)), "{dry:?}");
        assert_eq!(rows(s, &ch).await, 14);
        let removed = s
            .prune(cutoff, false, Duration::from_secs(60), &|_: &str| {})
            .await
            .unwrap();
        assert!(removed.contains(&("executed_files", 8)), "{removed:?}");
        assert!(removed.contains(&("containers", 4)), "{removed:?}");
        assert_eq!(rows(s, &ch).await, 6);
        assert_eq!(
            executed(s, "app:1").await,
            Some(files(
                &["/usr/bin/app", "/usr/bin/late"],
                &["/lib/ld.so", "/lib/libc.so", "/usr/lib/plugin.so"]
            ))
        );
        assert_eq!(executed(s, "redis:7").await, None);
    }
    assert_eq!(
        ch.query(
            "SELECT container_id, path, kind, dev, ino FROM sandmine.executed_files ORDER BY path, ino"
        ),
        "a1\t/lib/ld.so\t1\t1\t20\n\
         a1\t/lib/libc.so\t1\t1\t21\n\
         a1\t/usr/bin/app\t0\t1\t10\n\
         a1\t/usr/bin/app\t0\t2\t11\n\
         a1\t/usr/bin/late\t0\t1\t50\n\
         a1\t/usr/lib/plugin.so\t1\t1\t40\n"
    );
}

/// A file sent again later (a collector that lost its state) is one row
/// in SQLite, with the earliest first seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_sent_again_keeps_its_first_seen_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let e = open_embedded(dir.path()).await;
    e.insert(&fleet()).await.unwrap();
    let again = env(
        "h1",
        "b2",
        1,
        T0 + DAY,
        vec![ran(
            "a1",
            "app:1",
            T0,
            T0 + DAY + 10_000,
            vec![mapped("/lib/ld.so", 1, 20)],
        )],
    );
    // Another boot: another container key, a row of its own.
    let mut same_boot = again.clone();
    same_boot.boot_id = "b1".into();
    same_boot.seq = 4;
    e.insert(&[again, same_boot]).await.unwrap();
    drop(e);
    let db = rusqlite::Connection::open(dir.path().join("store.db")).unwrap();
    let got: Vec<(String, i64)> = db
        .prepare(
            "SELECT boot_id, first_seen_ms FROM executed_files \
             WHERE container_id = 'a1' AND path = '/lib/ld.so' ORDER BY boot_id",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        got,
        [
            ("b1".to_string(), (T0 + 10_000) as i64),
            ("b2".to_string(), (T0 + DAY + 10_000) as i64)
        ]
    );
}

/// A store at migration 6 with a container in it: opening it applies
/// migration 7 (and only it), the old container answers no files, and
/// new messages' files are answered; on both stores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_at_migration_6_upgrades_to_7() {
    let old_container = |table_prefix: &str| {
        format!(
            "INSERT INTO {table_prefix}containers (image, host_id, boot_id, container_id, runtime, image_digest, pod_namespace, pod_name, pod_container, seccomp, started_at_ms, last_seen_ms, exited_at_ms) VALUES ('app:1', 'h0', 'b0', 'old', 'docker', '', '', '', '', 'unknown', {}, {}, 0)",
            T0 - 1000,
            T0
        )
    };
    // ClickHouse: bootstrap and migrations 1 to 6, as an older sandmine
    // left them.
    let ch = testsvc::ClickHouse::start();
    let six: Vec<_> = sql::MIGRATIONS.iter().filter(|m| m.version <= 6).collect();
    assert_eq!(six.len(), 5);
    for s in sql::split(sql::BOOTSTRAP)
        .into_iter()
        .chain(six.iter().flat_map(|m| sql::split(m.sql)))
    {
        ch.query(&sql::with_db(s, "sandmine"));
    }
    for m in &six {
        ch.query(&format!(
            "INSERT INTO sandmine.schema_migrations (version, applied_at) VALUES ({}, now())",
            m.version
        ));
    }
    ch.query(&old_container("sandmine."));
    assert_eq!(
        ch.query("SELECT count() FROM system.tables WHERE database = 'sandmine' AND name = 'executed_files'"),
        "0\n"
    );
    let c = open_ch(&ch).await;
    assert_eq!(
        c.applied_migrations().await.unwrap(),
        vec![1, 2, 4, 5, 6, 7]
    );
    assert_eq!(
        ch.query("SELECT engine FROM system.tables WHERE database = 'sandmine' AND name = 'executed_files'"),
        "ReplacingMergeTree\n"
    );

    // SQLite: its bootstrap and migrations 1 to 6 (the schema an older
    // sandmine made), one container and its ledger row.
    let dir = tempfile::tempdir().unwrap();
    {
        let db = rusqlite::Connection::open(dir.path().join("store.db")).unwrap();
        db.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at_ms INTEGER NOT NULL)",
        )
        .unwrap();
        for m in sql::SQLITE_MIGRATIONS.iter().filter(|m| m.version <= 6) {
            db.execute_batch(m.sql).unwrap();
            db.execute(
                "INSERT INTO schema_migrations (version, applied_at_ms) VALUES (?1, 0)",
                [m.version],
            )
            .unwrap();
        }
        db.execute_batch(&old_container("")).unwrap();
        let tables: i64 = db
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'executed_files'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0);
    }
    let e = open_embedded(dir.path()).await;
    assert_eq!(
        e.applied_migrations().await.unwrap(),
        vec![1, 2, 3, 4, 5, 6, 7]
    );

    for s in [&c, &e] {
        let obs = s.image_observations("app:1").await.unwrap().unwrap();
        assert_eq!(obs.containers, 1);
        assert_eq!(obs.executed, RanFiles::default());
        s.insert(&fleet()).await.unwrap();
        let obs = s.image_observations("app:1").await.unwrap().unwrap();
        assert_eq!(obs.containers, 5);
        assert_eq!(obs.executed, expected());
    }
    assert_eq!(
        c.image_observations("app:1").await.unwrap(),
        e.image_observations("app:1").await.unwrap()
    );
}
