//! `sandmine store backup` / `restore` through the real binary on a real
//! embedded store: a restore answers exactly what the store answered at
//! backup time; a backup taken while another process inserts is one
//! batch boundary's store; refusals are one clear line and change nothing.

mod common;

#[path = "../aggregator/tests/common/mod.rs"]
mod store_common;

use common::*;
use schemas::{Abi, Phase};
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use store_common::{ctr, env, sc, T0};

fn set(f: &Fixture, file: &str) -> String {
    format!("store.embedded.path=\"{}\"", f.path(file).display())
}

/// `sandmine query WHAT` on the embedded store `file`.
fn query(f: &Fixture, file: &str, what: &str) -> String {
    let o = f.sandmine(&["query", "--set", &set(f, file), what]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    o.stdout
}

fn store_cmd(f: &Fixture, file: &str, args: &[&str]) -> Out {
    let s = set(f, file);
    let mut a = vec!["store", "--set", &s];
    a.extend_from_slice(args);
    f.sandmine(&a)
}

#[test]
fn backup_then_restore_answers_as_at_backup_time() {
    let f = Fixture::new();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let store = rt.block_on(async {
        let s = store_common::open_embedded(f.path("").as_path()).await;
        s.insert(&store_common::hand_made()).await.expect("insert");
        s
    });
    let (totals0, images0) = (
        query(&f, "store.db", "totals"),
        query(&f, "store.db", "images"),
    );
    assert_eq!(images0, "nginx:1\nredis:7\n");

    let o = store_cmd(&f, "store.db", &["backup", "--to", &f.arg("b.db")]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    let bytes = std::fs::metadata(f.path("b.db")).expect("backup").len();
    assert_eq!(
        o.stdout,
        format!(
            "backed up {} to {}: 3 envelopes, migration 7, {bytes} bytes\n",
            f.arg("store.db"),
            f.arg("b.db")
        )
    );
    let mode = std::fs::metadata(f.path("b.db"))
        .expect("backup")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // More after the backup: the answers change.
    rt.block_on(async {
        let st = store
            .insert(&store_common::generated(2, 3))
            .await
            .expect("insert more");
        assert_eq!(st.duplicates, 0);
    });
    let totals1 = query(&f, "store.db", "totals");
    assert_ne!(totals1, totals0);
    assert_eq!(
        query(&f, "store.db", "images"),
        "nginx:1\npostgres:16\nredis:7\n"
    );

    // Refusals, each one line, nothing changed.
    let o = store_cmd(&f, "store.db", &["restore", "--from", &f.arg("b.db")]);
    let line = one_error_line(&o);
    assert_eq!(
        line,
        format!(
            "sandmine: error: embedded store: {} exists: restoring replaces it and everything stored since the backup (stop the aggregator, then add --force)",
            f.arg("store.db")
        )
    );
    // The store is open here (as by a running aggregator).
    let o = store_cmd(
        &f,
        "store.db",
        &["restore", "--from", &f.arg("b.db"), "--force"],
    );
    assert_eq!(
        one_error_line(&o),
        format!(
            "sandmine: error: embedded store: {} is in use by another process (stop the aggregator or standalone first)",
            f.arg("store.db")
        )
    );
    let o = store_cmd(&f, "store.db", &["backup", "--to", &f.arg("b.db")]);
    assert_eq!(
        one_error_line(&o),
        format!(
            "sandmine: error: embedded store: {} exists: a backup never overwrites a file (choose a new name)",
            f.arg("b.db")
        )
    );
    assert_eq!(
        std::fs::metadata(f.path("b.db")).expect("kept").len(),
        bytes
    );
    f.write("garbage.db", &"not a database ".repeat(400));
    let o = store_cmd(
        &f,
        "store.db",
        &["restore", "--from", &f.arg("garbage.db"), "--force"],
    );
    assert_eq!(
        one_error_line(&o),
        format!(
            "sandmine: error: embedded store: {} is not a usable store backup: file is not a database",
            f.arg("garbage.db")
        )
    );
    // A backup from a newer sandmine (a migration this one does not know).
    std::fs::copy(f.path("b.db"), f.path("newer.db")).expect("copy");
    {
        let c = rusqlite::Connection::open(f.path("newer.db")).expect("open copy");
        c.execute(
            "INSERT INTO schema_migrations (version, applied_at_ms) VALUES (99, 0)",
            [],
        )
        .expect("newer migration");
    }
    let o = store_cmd(
        &f,
        "store.db",
        &["restore", "--from", &f.arg("newer.db"), "--force"],
    );
    assert_eq!(
        one_error_line(&o),
        format!(
            "sandmine: error: embedded store: {} is not a usable store backup: it has migration 99, which this sandmine does not know (it knows 1, 2, 3, 4, 5, 6, 7): restore it with the sandmine that wrote it",
            f.arg("newer.db")
        )
    );
    let o = f.sandmine(&["store", "backup", "--to", &f.arg("ch.db")]);
    assert_eq!(
        one_error_line(&o),
        "sandmine: error: store backup is for the embedded store (set store.embedded.path); for ClickHouse see docs/STORE.md, \"Backup and restore\""
    );
    assert!(!f.path("ch.db").exists());
    assert_eq!(query(&f, "store.db", "totals"), totals1);

    // The aggregator stopped: the restore answers as at backup time.
    drop(store);
    let o = store_cmd(
        &f,
        "store.db",
        &["restore", "--from", &f.arg("b.db"), "--force"],
    );
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert_eq!(
        o.stdout,
        format!(
            "restored {} from {}: 3 envelopes, migration 7\n",
            f.arg("store.db"),
            f.arg("b.db")
        )
    );
    assert_eq!(query(&f, "store.db", "totals"), totals0);
    assert_eq!(query(&f, "store.db", "images"), images0);
    let mode = std::fs::metadata(f.path("store.db"))
        .expect("store")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // The ledger came back too: redelivering what the backup held counts
    // nothing twice.
    rt.block_on(async {
        let s = store_common::open_embedded(f.path("").as_path()).await;
        let st = s
            .insert(&store_common::hand_made())
            .await
            .expect("redeliver");
        assert_eq!(st.duplicates, 3);
    });
    assert_eq!(query(&f, "store.db", "totals"), totals0);

    // Into a store that does not exist yet: no --force needed.
    let o = store_cmd(&f, "fresh/new.db", &["restore", "--from", &f.arg("b.db")]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert_eq!(query(&f, "fresh/new.db", "totals"), totals0);
}

/// Batch k (k = 1, 2, ...): one envelope (h1, b1, seq k) whose container
/// c{k % 3} of app:1 made read k times and write twice, plus 40 other
/// syscalls once each (a bigger file, a longer backup).
fn batch(k: u64) -> Vec<schemas::wire::Envelope> {
    let start = T0 + (k - 1) * 10_000;
    let mut calls = vec![
        sc(Abi::X86_64, 0, k, &[Phase::Image], start),
        sc(Abi::X86_64, 1, 2, &[Phase::Image], start),
    ];
    calls.extend((100..140).map(|nr| sc(Abi::X86_64, nr, 1, &[Phase::Image], start)));
    vec![env(
        "h1",
        "b1",
        k,
        start,
        vec![ctr(
            &format!("c{}", k % 3),
            "app:1",
            T0,
            start + 10_000,
            None,
            calls,
        )],
    )]
}

#[test]
fn backup_while_another_process_inserts_is_one_batch_boundary() {
    let f = Fixture::new();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let (first_tx, first_rx) = std::sync::mpsc::channel();
    let dir = f.path("");
    let writer = {
        let (stop, done) = (stop.clone(), done.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            rt.block_on(async {
                let s = store_common::open_embedded(&dir).await;
                let mut k = 0;
                while !stop.load(Ordering::SeqCst) {
                    k += 1;
                    s.insert(&batch(k)).await.expect("insert");
                    done.store(k, Ordering::SeqCst);
                    if k == 1 {
                        first_tx.send(()).expect("signal");
                    }
                }
                k
            })
        })
    };
    first_rx.recv().expect("first batch");
    let mut seen = Vec::new();
    for b in 0..3 {
        let name = format!("b{b}.db");
        let before = done.load(Ordering::SeqCst);
        let o = store_cmd(&f, "store.db", &["backup", "--to", &f.arg(&name)]);
        assert_eq!(o.code(), Some(0), "{}", o.describe());
        let after = done.load(Ordering::SeqCst);
        // "backed up S to B: K envelopes, ..."
        let k: u64 = o
            .stdout
            .split(": ")
            .nth(1)
            .and_then(|t| t.split(' ').next())
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("no count in {:?}", o.stdout));
        assert!(
            before <= k && k <= after + 1,
            "{before} <= {k} <= {after} + 1"
        );
        // The backup's totals are exactly those of its first k batches.
        let totals = query(&f, &name, "totals");
        let mut want = vec!["image\tabi\tsyscall\tcalls\thosts\tcontainers".to_string()];
        let containers = k.min(3);
        want.push(format!(
            "app:1\tx86_64\tread\t{}\t1\t{containers}",
            k * (k + 1) / 2
        ));
        want.push(format!("app:1\tx86_64\twrite\t{}\t1\t{containers}", 2 * k));
        for nr in 100..140 {
            let name = schemas::syscalls::name(Abi::X86_64, nr).expect("name");
            want.push(format!("app:1\tx86_64\t{name}\t{k}\t1\t{containers}"));
        }
        want.sort();
        let mut got: Vec<String> = totals.lines().map(str::to_string).collect();
        got.sort();
        assert_eq!(got, want, "backup {name} of {k} batches");
        seen.push(k);
    }
    stop.store(true, Ordering::SeqCst);
    let n = writer.join().expect("writer");
    assert!(seen.iter().all(|&k| k <= n), "{seen:?} <= {n}");
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
}

/// What an embedded store at `file` holds, per table.
fn rows(rt: &tokio::runtime::Runtime, f: &Fixture, file: &str) -> Vec<(&'static str, u64)> {
    rt.block_on(async {
        let cfg = aggregator::store::StoreConfig::Embedded(aggregator::store::EmbeddedConfig {
            path: f.path(file),
        });
        let Ok(aggregator::store::Store::Embedded(s)) = aggregator::store::Store::open(&cfg).await
        else {
            panic!("open {file}");
        };
        s.table_rows().await.expect("rows")
    })
}

#[test]
fn prune_keeps_the_window_and_the_ledger() {
    const DAY: u64 = 24 * store_common::H;
    let f = Fixture::new();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let late_t = T0 + 10 * DAY;
    // Ten days later, another boot of h1: nothing shared with the old rows.
    let late = vec![env(
        "h1",
        "b2",
        1,
        late_t,
        vec![with_files(with_args(ctr(
            "c9",
            "nginx:1",
            late_t,
            late_t + 10_000,
            None,
            vec![
                sc(Abi::X86_64, 0, 7, &[Phase::Image], late_t + 1),
                sc(Abi::X86_64, 60, 1, &[Phase::Image], late_t + 2),
            ],
        )))],
    )];
    let mut old = store_common::hand_made();
    old[0].containers[0] = with_files(with_args(old[0].containers[0].clone()));
    rt.block_on(async {
        let s = store_common::open_embedded(f.path("").as_path()).await;
        s.insert(&old).await.expect("old");
        s.insert(&late).await.expect("late");
        std::fs::create_dir(f.path("ref")).expect("ref dir");
        let r = store_common::open_embedded(f.path("ref").as_path()).await;
        r.insert(&late).await.expect("reference");
    });
    let before = rows(&rt, &f, "store.db");
    let reference = rows(&rt, &f, "ref/store.db");
    let now = (late_t + store_common::H).to_string();
    let prune = |dry: bool| {
        let mut a = vec!["prune", "--older-than", "5d", "--now-ms", &now];
        if dry {
            a.push("--dry-run");
        }
        store_cmd(&f, "store.db", &a)
    };
    // What goes: everything of the old envelopes but their ledger rows.
    let mut want = String::new();
    for ((t, b), (_, r)) in before.iter().zip(&reference) {
        let gone = if *t == "messages" { 0 } else { b - r };
        want.push_str(&format!("{t}\t{gone}\n"));
    }
    let o = prune(true);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert_eq!(o.stdout, format!("table\twould remove\n{want}"));
    assert_eq!(rows(&rt, &f, "store.db"), before);
    let o = prune(false);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert_eq!(o.stdout, format!("table\tremoved\n{want}"));
    // Something did go from each main table.
    for ((t, b), (_, r)) in before.iter().zip(&reference) {
        if [
            "calls",
            "calls_hourly",
            "incidence",
            "arg_values",
            "arg_sets",
            "executed_files",
            "containers",
        ]
        .contains(t)
        {
            assert!(b > r, "{t}: {b} > {r}");
        }
    }

    // Exactly the rows and answers of a store that only ever held the kept
    // envelope, plus the whole ledger.
    let after = rows(&rt, &f, "store.db");
    for ((t, a), ((_, b), (_, r))) in after.iter().zip(before.iter().zip(&reference)) {
        assert_eq!(*a, if *t == "messages" { *b } else { *r }, "{t}");
    }
    assert_eq!(after.last(), Some(&("messages", 4)));
    for what in ["totals", "images"] {
        assert_eq!(
            query(&f, "store.db", what),
            query(&f, "ref/store.db", what),
            "{what}"
        );
    }
    // A pruned envelope redelivered counts nothing.
    rt.block_on(async {
        let s = store_common::open_embedded(f.path("").as_path()).await;
        let st = s
            .insert(&store_common::hand_made())
            .await
            .expect("redeliver");
        assert_eq!(st.duplicates, 3);
    });
    assert_eq!(rows(&rt, &f, "store.db"), after);
    assert_eq!(
        query(&f, "store.db", "totals"),
        query(&f, "ref/store.db", "totals")
    );

    let o = f.sandmine(&["store", "prune", "--older-than", "1d"]);
    assert_eq!(
        one_error_line(&o),
        "sandmine: error: store prune on ClickHouse needs --redelivery-horizon DURATION (the broker's retention plus the collectors' spool age; see docs/STORE.md, \"Retention\")"
    );
    let o = store_cmd(&f, "store.db", &["prune", "--older-than", "10m"]);
    assert_eq!(
        one_error_line(&o),
        "sandmine: error: invalid value '10m' for '--older-than <DURATION>': must be at least 1h (see --help)"
    );
}

/// An argument set (socket's family and type) on a container.
fn with_args(mut c: schemas::wire::ContainerDelta) -> schemas::wire::ContainerDelta {
    c.args.insert(
        schemas::SyscallKey {
            abi: Abi::X86_64,
            nr: 41,
        },
        schemas::ArgSet {
            fields: vec![
                schemas::ArgField {
                    index: 0,
                    mask: 0xffff_ffff,
                },
                schemas::ArgField {
                    index: 1,
                    mask: 0xf,
                },
            ],
            values: [vec![2, 1], vec![1, 2]].into(),
            overflow: 1,
        },
    );
    c
}

/// Two files run as code (an executable and a mapping) by a container.
fn with_files(mut c: schemas::wire::ContainerDelta) -> schemas::wire::ContainerDelta {
    for (path, kind, ino) in [
        ("/usr/sbin/nginx", schemas::ExecKind::Exec, 10),
        ("/lib/ld.so", schemas::ExecKind::Mapped, 20),
    ] {
        c.executed.insert(schemas::ExecutedFile {
            path: path.into(),
            kind,
            dev: 1,
            ino,
        });
    }
    c
}

/// Flags, a denial, an argument set and executed files on a container, so
/// that every ClickHouse table has rows to prune and rows to keep.
fn flagged(c: schemas::wire::ContainerDelta) -> schemas::wire::ContainerDelta {
    let mut c = with_files(with_args(c));
    c.incomplete = true;
    c.unverified = true;
    c.denials.insert(
        schemas::DenialKey {
            abi: Abi::X86_64,
            nr: 165,
            action: schemas::DenyAction::Errno(1),
        },
        3,
    );
    c
}

/// Every row of each pruned ClickHouse table of database `db`, sorted.
fn ch_rows(ch: &testsvc::ClickHouse, db: &str) -> Vec<(&'static str, Vec<String>)> {
    let steps = aggregator::store::sql::prune_steps().expect("prune steps");
    steps
        .iter()
        .map(|s| {
            let mut v: Vec<String> = ch
                .query(&format!("SELECT * FROM {db}.{} FORMAT TSV", s.table))
                .lines()
                .map(String::from)
                .collect();
            v.sort();
            (s.table, v)
        })
        .collect()
}

#[test]
fn prune_on_clickhouse_keeps_the_window_within_the_redelivery_horizon() {
    const DAY: u64 = 24 * store_common::H;
    let f = Fixture::new();
    let ch = testsvc::ClickHouse::start();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut old = store_common::hand_made();
    let c0 = old[0].containers.remove(0);
    old[0].containers.insert(0, flagged(c0));
    let late_t = T0 + 10 * DAY;
    let late = vec![env(
        "h1",
        "b2",
        1,
        late_t,
        vec![flagged(ctr(
            "c9",
            "nginx:1",
            late_t,
            late_t + 10_000,
            None,
            vec![
                sc(Abi::X86_64, 0, 7, &[Phase::Image], late_t + 1),
                sc(Abi::X86_64, 60, 1, &[Phase::Image], late_t + 2),
            ],
        ))],
    )];
    let (db, refdb) = ("sandmine", "sandmine_ref");
    rt.block_on(async {
        let s = store_common::open_ch(&ch).await;
        s.insert(&old).await.expect("old");
        s.insert(&late).await.expect("late");
        let cfg = aggregator::store::ClickHouseConfig {
            database: refdb.into(),
            ..store_common::ch_config(&ch)
        };
        let r = aggregator::store::Store::open(&aggregator::store::StoreConfig::ClickHouse(cfg))
            .await
            .expect("open reference");
        r.insert(&late).await.expect("reference");
    });
    let url = format!("store.clickhouse.url=\"{}\"", ch.url());
    let query_db = |d: &str, what: &str| {
        let database = format!("store.clickhouse.database=\"{d}\"");
        let o = f.sandmine(&["query", "--set", &url, "--set", &database, what]);
        assert_eq!(o.code(), Some(0), "{}", o.describe());
        o.stdout
    };
    let before = ch_rows(&ch, db);
    let reference = ch_rows(&ch, refdb);
    let now = (late_t + store_common::H).to_string();
    let prune = |extra: &[&str]| {
        let mut a = vec!["store", "--set", &url, "prune", "--now-ms", &now];
        a.extend_from_slice(extra);
        f.sandmine(&a)
    };
    let mut want = String::new();
    for ((t, b), (_, r)) in before.iter().zip(&reference) {
        assert!(b.len() > r.len() && !r.is_empty(), "{t}: {b:?} {r:?}");
        want.push_str(&format!("{t}\t{}\n", b.len() - r.len()));
    }
    let ok = ["--older-than", "5d", "--redelivery-horizon", "4d"];

    // Refused: no horizon; a cutoff inside it. Nothing changes.
    let o = prune(&["--older-than", "5d"]);
    assert_eq!(
        one_error_line(&o),
        "sandmine: error: store prune on ClickHouse needs --redelivery-horizon DURATION (the broker's retention plus the collectors' spool age; see docs/STORE.md, \"Retention\")"
    );
    let o = prune(&["--older-than", "5d", "--redelivery-horizon", "5d"]);
    assert_eq!(
        one_error_line(&o),
        "sandmine: error: --older-than 5d is not older than the redelivery horizon 5d: ClickHouse has no ledger, so an envelope redelivered after its rows were pruned would be counted again"
    );
    assert_eq!(ch_rows(&ch, db), before);

    let mut dry = ok.to_vec();
    dry.push("--dry-run");
    let o = prune(&dry);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert_eq!(o.stdout, format!("table\twould remove\n{want}"));
    assert_eq!(ch_rows(&ch, db), before);

    let o = prune(&ok);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert_eq!(o.stdout, format!("table\tremoved\n{want}"));
    // Exactly the rows and answers of a store that only ever held the kept
    // envelope; all mutations done.
    assert_eq!(ch_rows(&ch, db), reference);
    assert_eq!(
        ch.query(&format!(
            "SELECT count() FROM system.mutations WHERE database = '{db}' AND is_done = 0"
        )),
        "0\n"
    );
    for what in ["totals", "images"] {
        assert_eq!(query_db(db, what), query_db(refdb, what), "{what}");
    }
    // Again: nothing left to remove.
    let o = prune(&ok);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    let zeros: String = before.iter().map(|(t, _)| format!("{t}\t0\n")).collect();
    assert_eq!(o.stdout, format!("table\tremoved\n{zeros}"));
}
