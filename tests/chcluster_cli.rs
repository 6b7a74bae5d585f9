//! The ClickHouse store on a cluster (`[store.clickhouse] cluster`): two
//! clickhouse-server 18.16 nodes (one shard each) and Debian's ZooKeeper,
//! started once ([`testsvc::ChCluster`]). The migrations run `ON CLUSTER`;
//! the real aggregator ingests through node 1's `Distributed` tables and
//! the Store API through node 2's; every envelope is delivered again
//! through the other node; every answer (Store API, `sandmine query`,
//! `sandmine compile`) equals one server's for the same input.

mod common;

#[path = "../aggregator/tests/common/mod.rs"]
mod store_common;

use aggregator::store::analytics::{DriftBase, Window};
use aggregator::store::{ClickHouseConfig, Store, StoreConfig};
use common::*;
use schemas::wire::Envelope;
use schemas::{Abi, DenialKey, DenyAction, ExecKind, ExecutedFile};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};
use store_common::analytics_fleet::analytics_fleet;
use store_common::{generated, H};

const DB: &str = "fleet_cluster";
const CLUSTER: &str = testsvc::ChCluster::CLUSTER;

/// The analytics fleet (hosts h1..h3) and a generated one (host-0..5),
/// the latter with seccomp denials on every third interval (wire v6, so
/// only through the Store API: the test publishes unsigned v4).
fn fleet() -> (Vec<Envelope>, Vec<Envelope>) {
    let mut gen = generated(6, 8);
    for e in &mut gen {
        if e.seq % 3 == 0 {
            if let Some(c) = e.containers.first_mut() {
                c.denials.insert(
                    DenialKey {
                        abi: Abi::X86_64,
                        nr: 155,
                        action: DenyAction::Errno(1),
                    },
                    e.seq,
                );
                // Files run as code (executed_files): per host a new one
                // every third message, and one they all share.
                for (path, kind, ino) in [
                    (format!("/usr/bin/tool-{}", e.seq), ExecKind::Exec, e.seq),
                    ("/lib/ld.so".to_string(), ExecKind::Mapped, 1),
                ] {
                    c.executed.insert(ExecutedFile {
                        path,
                        kind,
                        dev: 1,
                        ino,
                    });
                }
            }
        }
    }
    (analytics_fleet(), gen)
}

fn cluster_config(node: &testsvc::ClickHouse) -> ClickHouseConfig {
    ClickHouseConfig {
        url: node.url(),
        database: DB.into(),
        cluster: Some(CLUSTER.into()),
        timeout_secs: 30,
        connect_timeout_secs: 2,
        ..ClickHouseConfig::default()
    }
}

fn toml_of(c: &ClickHouseConfig) -> String {
    let mut t = format!(
        "[store.clickhouse]\nurl = \"{}\"\ndatabase = \"{}\"\ntimeout_secs = 30\nconnect_timeout_secs = 2\n",
        c.url, c.database
    );
    if let Some(name) = &c.cluster {
        t.push_str(&format!("cluster = \"{name}\"\n"));
    }
    t
}

async fn open(c: &ClickHouseConfig) -> Store {
    match Store::open(&StoreConfig::ClickHouse(c.clone())).await {
        Ok(s) => s,
        Err(e) => panic!("open {c:?}: {e}"),
    }
}

/// Every answer of the Store API, as text (for one equality check).
async fn answers(s: &Store, all: &[Envelope]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let images = s.images().await.unwrap();
    out.insert("images".into(), format!("{images:?}"));
    for i in &images {
        out.insert(
            format!("image {i}"),
            format!("{:?}", s.image_observations(i).await.unwrap()),
        );
        out.insert(
            format!("usage {i}"),
            format!("{:?}", s.usage(i, None).await.unwrap()),
        );
        out.insert(
            format!("usage {i} read"),
            format!("{:?}", s.usage(i, Some((Abi::X86_64, 0))).await.unwrap()),
        );
        out.insert(
            format!("since {i}"),
            format!(
                "{:?}",
                s.drift(i, &DriftBase::Since(all[0].interval_end_ms))
                    .await
                    .unwrap()
            ),
        );
    }
    out.insert(
        "totals".into(),
        format!("{:?}", s.syscall_totals().await.unwrap()),
    );
    out.insert(
        "runtime".into(),
        format!("{:?}", s.runtime_syscalls().await.unwrap()),
    );
    let t0 = all.iter().map(|e| e.interval_start_ms).min().unwrap();
    let windows = [
        Window::default(),
        Window {
            since_ms: Some(t0 + H),
            until_ms: None,
        },
        Window {
            since_ms: None,
            until_ms: Some(t0 + H),
        },
    ];
    for w in windows {
        for nr in [0, 1, 5, 101, 425] {
            out.insert(
                format!("uses {nr} {w:?}"),
                format!("{:?}", s.syscall_uses(Abi::X86_64, nr, w).await.unwrap()),
            );
        }
        out.insert(
            format!("window {w:?}"),
            format!("{:?}", s.window_syscalls(None, w).await.unwrap()),
        );
        let set: BTreeSet<(Abi, u32)> =
            [(Abi::X86_64, 0), (Abi::X86_64, 101), (Abi::I386, 11)].into();
        out.insert(
            format!("reach {w:?}"),
            format!("{:?}", s.reach(None, &set, w).await.unwrap()),
        );
    }
    out.insert(
        "drift app:1".into(),
        format!(
            "{:?}",
            s.drift(
                "app:1",
                &DriftBase::Digests {
                    from: "sha256:a1".into(),
                    to: "sha256:a2".into()
                }
            )
            .await
            .unwrap()
        ),
    );
    out.insert(
        "denials".into(),
        format!("{:?}", s.denials(None, None).await.unwrap()),
    );
    out
}

/// `SELECT` on one node, as `default`; rows of tab-separated text.
fn q(node: &testsvc::ClickHouse, sql: &str) -> Vec<String> {
    node.query(sql).lines().map(String::from).collect()
}

/// Every file under `dir` (relative path, bytes).
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, d: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn cluster_store_shards_by_host_counts_once_and_answers_like_one_server() {
    let started = Instant::now();
    let f = Fixture::new();
    let mut cluster = testsvc::ChCluster::start();
    let (n1, n2) = (&cluster.nodes[0], &cluster.nodes[1]);
    let single = testsvc::ClickHouse::start();
    let nats = testsvc::Nats::start();
    let (published, direct) = fleet();
    let all: Vec<Envelope> = published.iter().chain(&direct).cloned().collect();
    let on1 = cluster_config(n1);
    let on2 = cluster_config(n2);
    let one = ClickHouseConfig {
        url: single.url(),
        database: DB.into(),
        ..ClickHouseConfig::default()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();

    // Migrations ON CLUSTER, from node 1: both nodes have the cluster form.
    rt.block_on(async {
        let s = open(&on1).await;
        assert_eq!(s.applied_migrations().await.unwrap(), [1, 2, 4, 5, 6, 7]);
        open(&one).await.insert(&all).await.unwrap();
    });
    let mut want_tables = vec![format!("schema_migrations\tReplicatedReplacingMergeTree")];
    for t in aggregator::store::sql::DATA_TABLES {
        want_tables.push(format!("{t}\tDistributed"));
        want_tables.push(format!("{t}_local\tReplicatedReplacingMergeTree"));
    }
    want_tables.sort();
    for node in [n1, n2] {
        let got = q(
            node,
            &format!(
                "SELECT name, engine FROM system.tables WHERE database = '{DB}' ORDER BY name"
            ),
        );
        assert_eq!(got, want_tables);
        // Migrations recorded through node 1 are seen through both
        // (schema_migrations is replicated to every node).
        assert_eq!(
            q(
                node,
                &format!("SELECT DISTINCT version FROM {DB}.schema_migrations ORDER BY version")
            ),
            ["1", "2", "4", "5", "6", "7"]
        );
        assert_eq!(
            q(node, &format!("SELECT engine_full FROM system.tables WHERE database = '{DB}' AND name = 'calls'")),
            [format!("Distributed({CLUSTER}, {DB}, calls_local, cityHash64(host_id))")]
        );
    }

    // The real aggregator, on node 1, ingests the published fleet.
    let broker = format!(
        "kind = \"nats\"\nurl = \"{}\"\nack_wait = \"3s\"\ntimeout = \"2s\"\n",
        nats.url()
    );
    let agg_cfg = f.write(
        "aggregator.toml",
        &format!(
            "[broker]\n{broker}\n{}\n[aggregator]\nbatch_max_wait = \"200ms\"\n",
            toml_of(&on1)
        ),
    );
    let agg_cfg = agg_cfg.display().to_string();
    let aggregator = f.spawn(f.command(&["aggregate", "--config", &agg_cfg]));
    let broker_cfg: transport::BrokerConfig = toml::from_str(&broker).unwrap();
    rt.block_on(async {
        let p = transport::Publisher::connect(&broker_cfg).await.unwrap();
        for e in &published {
            p.publish(&e.dedupe_id(), &schemas::wire::encode(e).unwrap())
                .await
                .unwrap();
        }
    });
    let published_keys: usize = published
        .iter()
        .filter(|e| e.containers.iter().any(|c| !c.syscalls.is_empty()))
        .count();
    let distinct_envelopes =
        format!("SELECT count() FROM (SELECT DISTINCT host_id, boot_id, seq FROM {DB}.calls)");
    let deadline = Instant::now() + Duration::from_secs(60);
    while q(n2, &distinct_envelopes) != [published_keys.to_string()] {
        assert!(
            Instant::now() < deadline,
            "the aggregator did not store the published fleet"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = aggregator.terminate(Duration::from_secs(30));
    assert_eq!(out.code(), Some(0), "{}", out.describe());

    // The Store API through node 2: the rest, then everything again
    // (regrouped), and the published half again through node 1.
    rt.block_on(async {
        let s2 = open(&on2).await;
        for chunk in direct.chunks(7) {
            s2.insert(chunk).await.unwrap();
        }
        let mut again = all.clone();
        again.reverse();
        for chunk in again.chunks(5) {
            s2.insert(chunk).await.unwrap();
        }
        open(&on1).await.insert(&published).await.unwrap();
    });

    // Sharded by host: each node holds some hosts, no host is on both,
    // and no envelope is stored on both shards.
    let hosts = |n: &testsvc::ClickHouse, t: &str| -> BTreeSet<String> {
        q(n, &format!("SELECT DISTINCT host_id FROM {DB}.{t}_local"))
            .into_iter()
            .collect()
    };
    for t in aggregator::store::sql::DATA_TABLES {
        let (a, b) = (hosts(n1, t), hosts(n2, t));
        assert!(a.is_disjoint(&b), "{t}: {a:?} / {b:?}");
        if t == "calls" || t == "containers" {
            assert!(!a.is_empty() && !b.is_empty(), "{t}: {a:?} / {b:?}");
            let union: BTreeSet<String> = a.union(&b).cloned().collect();
            let want: BTreeSet<String> = all.iter().map(|e| e.host_id.clone()).collect();
            assert_eq!(union, want, "{t}");
        }
    }
    let local_envelopes = format!(
        "SELECT count() FROM (SELECT DISTINCT host_id, boot_id, seq FROM {DB}.calls_local)"
    );
    let per_shard: Vec<u64> = [n1, n2]
        .iter()
        .map(|n| q(n, &local_envelopes)[0].parse().unwrap())
        .collect();
    let with_calls = all
        .iter()
        .filter(|e| e.containers.iter().any(|c| !c.syscalls.is_empty()))
        .count() as u64;
    assert_eq!(per_shard.iter().sum::<u64>(), with_calls, "{per_shard:?}");

    // Every answer equals one server's, before and after the merges.
    rt.block_on(async {
        let want = answers(&open(&one).await, &all).await;
        for (name, c) in [("node 1", &on1), ("node 2", &on2)] {
            let got = answers(&open(c).await, &all).await;
            for (k, v) in &want {
                assert_eq!(got.get(k), Some(v), "{name}: {k}");
            }
            assert_eq!(got.len(), want.len());
        }
        let Store::ClickHouse(c) = open(&on2).await else {
            unreachable!()
        };
        c.optimize().await.unwrap();
        assert_eq!(answers(&open(&on1).await, &all).await, want);
    });
    // After OPTIMIZE ... FINAL on every node, one row per key is left.
    let rows: u64 = [n1, n2]
        .iter()
        .map(|n| {
            q(n, &format!("SELECT count() FROM {DB}.calls_local"))[0]
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    let single_rows = q(&single, &format!("SELECT count() FROM {DB}.calls FINAL"));
    assert_eq!(vec![rows.to_string()], single_rows);

    // `sandmine query` and `sandmine compile`: the same bytes.
    let cfg_cluster = f
        .write("cluster.toml", &toml_of(&on2))
        .display()
        .to_string();
    let cfg_one = f.write("one.toml", &toml_of(&one)).display().to_string();
    for args in [
        &["images"][..],
        &["totals"],
        &["image", "nginx:1"],
        &["uses", "read", "--format", "csv"],
        &["denials", "--format", "csv"],
    ] {
        let mut outs = Vec::new();
        for cfg in [&cfg_cluster, &cfg_one] {
            let mut a = vec!["query", "--config", cfg.as_str()];
            a.extend(args);
            let o = f.sandmine(&a);
            assert_eq!(o.code(), Some(0), "{args:?}: {}", o.describe());
            assert!(!o.stdout.is_empty(), "{args:?}");
            outs.push(o.stdout);
        }
        assert_eq!(outs[0], outs[1], "query {args:?}");
    }
    let mut trees = Vec::new();
    for (cfg, out) in [(&cfg_cluster, "p-cluster"), (&cfg_one, "p-one")] {
        let out = f.arg(out);
        let o = f.sandmine(&[
            "compile",
            "--config",
            cfg,
            "-o",
            &out,
            "--now-ms",
            "1800000000000",
        ]);
        assert_eq!(o.code(), Some(0), "{}", o.describe());
        trees.push(tree(Path::new(&out)));
    }
    assert_eq!(
        trees[0].keys().collect::<Vec<_>>(),
        trees[1].keys().collect::<Vec<_>>()
    );
    assert!(trees[0].len() > 20, "{:?}", trees[0].keys());
    for (k, v) in &trees[0] {
        assert!(&trees[1][k] == v, "compile: {k} differs");
    }

    // A database of the other form is refused, in one line.
    rt.block_on(async {
        let as_single = ClickHouseConfig { cluster: None, ..on1.clone() };
        let e = Store::open(&StoreConfig::ClickHouse(as_single)).await.unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "store configuration: ClickHouse database {DB}: table arg_sets is Distributed, made for a \
                 cluster: set [store.clickhouse] cluster to its cluster's name"
            )
        );
        let as_cluster = ClickHouseConfig { cluster: Some(CLUSTER.into()), ..one.clone() };
        let e = Store::open(&StoreConfig::ClickHouse(as_cluster)).await.unwrap_err().to_string();
        assert!(e.starts_with(&format!("store configuration: ClickHouse database {DB}: table arg_sets is a ReplacingMergeTree, made for one server")), "{e}");
        let bad = ClickHouseConfig { cluster: Some("a-b".into()), ..on1.clone() };
        let e = Store::open(&StoreConfig::ClickHouse(bad)).await.unwrap_err().to_string();
        assert_eq!(e, "store configuration: ClickHouse cluster name \"a-b\" is not an identifier ([A-Za-z_][A-Za-z0-9_]*)");
    });

    // Node 2 down: a store whose migrations are complete opens through
    // node 1 without DDL; an insert that has rows for node 2's shard fails
    // as transient (retried), and once node 2 is back the retry counts
    // once.
    cluster.nodes[1].stop();
    rt.block_on(async {
        let s1 = open(&on1).await;
        let e = s1.insert(&all).await.unwrap_err();
        assert!(e.is_transient() && !e.refuses_rows(), "{e}");
        eprintln!("node 2 down: {e}");
    });
    cluster.nodes[1].restart();
    rt.block_on(async {
        let want = answers(&open(&one).await, &all).await;
        let s1 = open(&on1).await;
        s1.insert(&all).await.unwrap();
        assert_eq!(answers(&s1, &all).await, want);
    });

    // Retention: the same cutoff, in the middle of the fleet's intervals,
    // pruned on the cluster (T_local ON CLUSTER mutations through node 2)
    // and on one server, leaves the same answers, changed, and nothing
    // of what went on any shard.
    rt.block_on(async {
        let ends: Vec<u64> = all.iter().map(|e| e.interval_end_ms).collect();
        let (lo, hi) = (*ends.iter().min().unwrap(), *ends.iter().max().unwrap());
        let cutoff = lo + (hi - lo) / 2;
        let (c, o) = (open(&on2).await, open(&one).await);
        let before = answers(&o, &all).await;
        let wait = std::time::Duration::from_secs(120);
        let removed_c = c
            .prune(cutoff, false, wait, &|m: &str| eprintln!("{m}"))
            .await
            .unwrap();
        let removed_o = o
            .prune(cutoff, false, wait, &|m: &str| eprintln!("{m}"))
            .await
            .unwrap();
        eprintln!("pruned: cluster {removed_c:?}, one server {removed_o:?}");
        assert!(removed_o.iter().any(|(_, n)| *n > 0), "{removed_o:?}");
        let after = answers(&o, &all).await;
        assert_ne!(after, before);
        assert_eq!(answers(&c, &all).await, after);
        let again = c.prune(cutoff, true, wait, &|_: &str| {}).await.unwrap();
        assert!(again.iter().all(|(_, n)| *n == 0), "{again:?}");
    });
    eprintln!("cluster test took {:?}", started.elapsed());
}
