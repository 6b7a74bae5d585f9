//! The fleet store against a real ClickHouse 18.16 and SQLite: exact
//! answers, idempotency under redelivery and regrouping, migrations,
//! credentials, outages, and embedded == ClickHouse.

mod common;

use aggregator::store::{
    rows, ClickHouseConfig, EmbeddedConfig, InsertStats, Store, StoreConfig, StoreError,
};
use common::*;
use schemas::fleet::{ContainerIncidence, ImageObservations, IncidenceEntry, SyscallTotals};
use schemas::wire::{self, SeccompFilter};
use schemas::{Abi, Phase};
use std::time::{Duration, Instant};

#[allow(clippy::too_many_arguments)]
fn st(
    abi: Abi,
    nr: u32,
    hosts: u64,
    containers: u64,
    calls: u64,
    first: u64,
    last: u64,
    p: &[Phase],
) -> SyscallTotals {
    SyscallTotals {
        abi,
        nr,
        hosts,
        containers,
        calls,
        first_seen_ms: first,
        last_seen_ms: last,
        phases: ph(p),
    }
}

fn ie(abi: Abi, nr: u32, p: &[Phase], first: u64, last: u64) -> IncidenceEntry {
    IncidenceEntry {
        abi,
        nr,
        phases: ph(p),
        first_seen_ms: first,
        last_seen_ms: last,
    }
}

/// What `hand_made()` must answer for nginx:1, worked out by hand.
fn expected_nginx() -> ImageObservations {
    use Abi::*;
    use Phase::*;
    ImageObservations {
        image: "nginx:1".into(),
        digests: vec!["sha256:aa".into()],
        hosts: 2,
        containers: 3,
        // c1 19 s + c2 12 s + c3 9.5 s
        container_seconds: 40,
        first_seen_ms: T0 + 500,
        last_seen_ms: T0 + 20_000,
        syscalls: vec![
            st(
                X86_64,
                0,
                2,
                3,
                5 + 7 + 10 + 1 + 4,
                T0 + 700,
                T0 + 20_000,
                &[Image],
            ),
            st(X86_64, 1, 1, 1, 3, T0 + 12_000, T0 + 20_000, &[Image]),
            st(X86_64, 59, 1, 1, 1, T0 + 1500, T0 + 10_000, &[Runtime]),
            st(I386, 20, 1, 1, 2, T0 + 600, T0 + 10_000, &[Image]),
        ],
        incidence: vec![
            ContainerIncidence {
                host_id: "h2".into(),
                boot_id: "b9".into(),
                container_id: "c3".into(),
                started_at_ms: T0 + 500,
                last_seen_ms: T0 + 10_000,
                seccomp: "runtime/default".into(),
                incomplete: false,
                unverified: false,
                syscalls: vec![
                    ie(X86_64, 0, &[Image], T0 + 700, T0 + 10_000),
                    ie(I386, 20, &[Image], T0 + 600, T0 + 10_000),
                ],
            },
            ContainerIncidence {
                host_id: "h1".into(),
                boot_id: "b1".into(),
                container_id: "c1".into(),
                started_at_ms: T0 + 1000,
                last_seen_ms: T0 + 20_000,
                seccomp: "unknown".into(),
                incomplete: false,
                unverified: false,
                syscalls: vec![
                    // Not new in seq 2: last seen stays at its first interval.
                    ie(X86_64, 0, &[Image], T0 + 2000, T0 + 10_000),
                    ie(X86_64, 1, &[Image], T0 + 12_000, T0 + 20_000),
                    ie(X86_64, 59, &[Runtime], T0 + 1500, T0 + 10_000),
                ],
            },
            ContainerIncidence {
                host_id: "h1".into(),
                boot_id: "b1".into(),
                container_id: "c2".into(),
                started_at_ms: T0 + 3000,
                last_seen_ms: T0 + 15_000,
                seccomp: "unknown".into(),
                // Exit refreshes last seen.
                incomplete: false,
                unverified: false,
                syscalls: vec![ie(X86_64, 0, &[Image], T0 + 3500, T0 + 15_000)],
            },
        ],
        out_of_range: 0,
        args: Default::default(),
        executed: Default::default(),
    }
}

fn expected_totals() -> Vec<aggregator::store::TotalsRow> {
    vec![
        ("nginx:1".into(), Abi::X86_64, 0, 27, 2, 3),
        ("nginx:1".into(), Abi::X86_64, 1, 3, 1, 1),
        ("nginx:1".into(), Abi::X86_64, 59, 1, 1, 1),
        ("nginx:1".into(), Abi::I386, 20, 2, 1, 1),
        ("redis:7".into(), Abi::X86_64, 0, 100, 1, 1),
    ]
}

async fn assert_hand_made(s: &Store) {
    assert_eq!(s.images().await.unwrap(), vec!["nginx:1", "redis:7"]);
    assert_eq!(
        s.image_observations("nginx:1").await.unwrap(),
        Some(expected_nginx())
    );
    let redis = s.image_observations("redis:7").await.unwrap().unwrap();
    assert_eq!(
        (
            redis.hosts,
            redis.containers,
            redis.container_seconds,
            redis.first_seen_ms,
            redis.last_seen_ms
        ),
        (1, 1, 20, T0, T0 + 20_000)
    );
    assert_eq!(
        redis.syscalls,
        vec![st(
            Abi::X86_64,
            0,
            1,
            1,
            100,
            T0 + 100,
            T0 + 10_000,
            &[Phase::Image]
        )]
    );
    assert_eq!(s.image_observations("nope").await.unwrap(), None);
    assert_eq!(s.syscall_totals().await.unwrap(), expected_totals());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_exact_totals_for_hand_made_envelopes() {
    let ch = testsvc::ClickHouse::start();
    let s = open_ch(&ch).await;
    let stats = s.insert(&hand_made()).await.unwrap();
    // calls: seq1 nginx{0,59} redis{0}; seq2 nginx{0,1}; h2 nginx{0},i386{20}
    // incidence: c1 0,59; c2 0; c4 0; c1 1 (new); c2 0 (exit); c3 0,20
    assert_eq!(
        stats,
        InsertStats {
            calls: 7,
            incidence: 8,
            containers: 7,
            duplicates: 0
        }
    );
    assert_hand_made(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_exact_totals_for_hand_made_envelopes() {
    let dir = tempfile::tempdir().unwrap();
    let s = open_embedded(dir.path()).await;
    let stats = s.insert(&hand_made()).await.unwrap();
    assert_eq!(
        stats,
        InsertStats {
            calls: 7,
            incidence: 8,
            containers: 7,
            duplicates: 0
        }
    );
    assert_hand_made(&s).await;
    // Redelivered: all skipped by the ledger.
    let again = s.insert(&hand_made()).await.unwrap();
    assert_eq!(
        again,
        InsertStats {
            duplicates: 3,
            ..InsertStats::default()
        }
    );
    assert_hand_made(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_redelivery_and_regrouping_count_once() {
    let ch = testsvc::ClickHouse::start();
    let s = open_ch(&ch).await;
    let batch = hand_made();
    for _ in 0..3 {
        s.insert(&batch).await.unwrap();
    }
    // Other groupings and orders: one by one, reversed, and overlapping.
    for e in batch.iter().rev() {
        s.insert(std::slice::from_ref(e)).await.unwrap();
    }
    s.insert(&[batch[2].clone(), batch[0].clone()])
        .await
        .unwrap();
    s.insert(&[batch[1].clone(), batch[1].clone(), batch[2].clone()])
        .await
        .unwrap();
    // Before any merge.
    assert_hand_made(&s).await;
    // Duplicates may or may not have been merged in the background yet;
    // the answers above must not depend on it.
    let raw: u64 = ch
        .query("SELECT count() FROM sandmine.calls")
        .trim()
        .parse()
        .unwrap();
    assert!(raw >= 7, "{raw}");
    let Store::ClickHouse(c) = &s else {
        unreachable!()
    };
    c.optimize().await.unwrap();
    assert_eq!(ch.query("SELECT count() FROM sandmine.calls").trim(), "7");
    assert_eq!(
        ch.query("SELECT count() FROM sandmine.containers").trim(),
        "4"
    );
    // c2's two incidence rows collapse into one (same phases).
    assert_eq!(
        ch.query("SELECT count() FROM sandmine.incidence").trim(),
        "7"
    );
    assert_hand_made(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_fleet_regrouped_equals_single_insert_on_both_stores() {
    let ch = testsvc::ClickHouse::start();
    let dir = tempfile::tempdir().unwrap();
    let chs = open_ch(&ch).await;
    let emb = open_embedded(dir.path()).await;
    let fleet = generated(3, 20);
    assert_eq!(fleet.len(), 120);
    // ClickHouse: chunks of 7, then everything reversed, then odd seqs again.
    for chunk in fleet.chunks(7) {
        chs.insert(chunk).await.unwrap();
    }
    let rev: Vec<_> = fleet.iter().rev().cloned().collect();
    chs.insert(&rev).await.unwrap();
    let odd: Vec<_> = fleet.iter().filter(|e| e.seq % 2 == 1).cloned().collect();
    chs.insert(&odd).await.unwrap();
    // Embedded: odd seqs first, then all in chunks of 13.
    let st1 = emb.insert(&odd).await.unwrap();
    assert_eq!(st1.duplicates, 0);
    let mut dups = 0;
    for chunk in fleet.chunks(13) {
        dups += emb.insert(chunk).await.unwrap().duplicates;
    }
    assert_eq!(dups, odd.len() as u64);

    let a = snapshot(&chs).await;
    let b = snapshot(&emb).await;
    assert_eq!(a.0, vec!["nginx:1", "postgres:16", "redis:7"]);
    assert_eq!(a, b, "embedded and ClickHouse answers differ");

    // Exact call totals against the envelopes themselves.
    let mut want: std::collections::BTreeMap<(String, u8, u32), u64> = Default::default();
    for e in &fleet {
        for c in &e.containers {
            for s in &c.syscalls {
                *want
                    .entry((c.container.image.clone(), s.abi.code(), s.nr))
                    .or_default() += s.calls;
            }
        }
    }
    let got: std::collections::BTreeMap<(String, u8, u32), u64> =
        a.2.iter()
            .map(|(i, abi, nr, calls, _, _)| ((i.clone(), abi.code(), *nr), *calls))
            .collect();
    assert_eq!(got, want);
    // 3 hosts x 2 boots, one container per image per host-boot except nginx
    // (k=0 and k=3).
    let nginx = &a.1[0];
    assert_eq!((nginx.hosts, nginx.containers), (3, 12));
    assert_eq!(nginx.digests, vec!["sha256:0"]);

    let Store::ClickHouse(c) = &chs else {
        unreachable!()
    };
    c.optimize().await.unwrap();
    assert_eq!(
        snapshot(&chs).await,
        b,
        "answers changed after OPTIMIZE FINAL"
    );
}

/// Property (issue 9, "Stores"): 10,000 envelopes (50 hosts x 2 boots x
/// 100 seqs), shuffled into random batches of 1 to 20, with a random tenth
/// delivered again: about 1,000 batches into ClickHouse and into SQLite.
/// Both stores must give the same answers, and those must be the ground
/// truth computed from the envelopes: calls per (image, ABI, nr), and each
/// image's hosts and containers. The seed is printed; set
/// `SANDMINE_PROPERTY_SEED` to repeat a run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_batches_and_redeliveries_give_the_ground_truth_on_both_stores() {
    let seed: u64 = std::env::var("SANDMINE_PROPERTY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    println!("SANDMINE_PROPERTY_SEED={seed}");
    let mut rng = seed;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let fleet = generated(50, 100);
    assert_eq!(fleet.len(), 10_000);
    let mut order: Vec<usize> = (0..fleet.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, (next() % (i as u64 + 1)) as usize);
    }
    // A random tenth comes again, at random places (redelivery).
    for _ in 0..fleet.len() / 10 {
        let again = order[(next() % fleet.len() as u64) as usize];
        let at = (next() % order.len() as u64) as usize;
        order.insert(at, again);
    }
    let mut batches: Vec<Vec<schemas::wire::Envelope>> = Vec::new();
    let mut rest = &order[..];
    while !rest.is_empty() {
        let n = (1 + next() % 20).min(rest.len() as u64) as usize;
        batches.push(rest[..n].iter().map(|&i| fleet[i].clone()).collect());
        rest = &rest[n..];
    }
    assert!(
        (900..1200).contains(&batches.len()),
        "{} batches",
        batches.len()
    );

    let ch = testsvc::ClickHouse::start();
    let dir = tempfile::tempdir().unwrap();
    let chs = open_ch(&ch).await;
    let emb = open_embedded(dir.path()).await;
    for b in &batches {
        chs.insert(b).await.unwrap();
        emb.insert(b).await.unwrap();
    }

    let mut want_calls: std::collections::BTreeMap<(String, u8, u32), u64> = Default::default();
    // Per image: its hosts, and its (host, boot, container) triples.
    type Seen = (
        std::collections::BTreeSet<String>,
        std::collections::BTreeSet<(String, String, String)>,
    );
    let mut want_exposure: std::collections::BTreeMap<String, Seen> = Default::default();
    for e in &fleet {
        for c in &e.containers {
            let image = c.container.image.clone();
            let x = want_exposure.entry(image.clone()).or_default();
            x.0.insert(e.host_id.clone());
            x.1.insert((e.host_id.clone(), e.boot_id.clone(), c.container.id.clone()));
            for s in &c.syscalls {
                *want_calls
                    .entry((image.clone(), s.abi.code(), s.nr))
                    .or_default() += s.calls;
            }
        }
    }
    let a = snapshot(&chs).await;
    let b = snapshot(&emb).await;
    assert_eq!(a, b, "seed {seed}: embedded and ClickHouse answers differ");
    let got_calls: std::collections::BTreeMap<(String, u8, u32), u64> =
        a.2.iter()
            .map(|(i, abi, nr, calls, _, _)| ((i.clone(), abi.code(), *nr), *calls))
            .collect();
    assert_eq!(got_calls, want_calls, "seed {seed}: calls");
    let got_exposure: Vec<(String, u64, u64)> =
        a.1.iter()
            .map(|o| (o.image.clone(), o.hosts, o.containers))
            .collect();
    let want_exposure: Vec<(String, u64, u64)> = want_exposure
        .into_iter()
        .map(|(i, (h, c))| (i, h.len() as u64, c.len() as u64))
        .collect();
    assert_eq!(got_exposure, want_exposure, "seed {seed}: exposure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_and_reopen_is_harmless() {
    let ch = testsvc::ClickHouse::start();
    let s1 = open_ch(&ch).await;
    let s2 = open_ch(&ch).await;
    // Concurrently-ish: two more opens at once.
    let cfg = StoreConfig::ClickHouse(ch_config(&ch));
    let (a, b) = tokio::join!(Store::open(&cfg), Store::open(&cfg));
    a.unwrap();
    b.unwrap();
    assert_eq!(
        s1.applied_migrations().await.unwrap(),
        vec![1, 2, 4, 5, 6, 7]
    );
    assert_eq!(
        s2.applied_migrations().await.unwrap(),
        vec![1, 2, 4, 5, 6, 7]
    );
    assert_eq!(
        ch.query("SELECT name FROM system.tables WHERE database = 'sandmine' ORDER BY name"),
        "arg_sets\narg_values\ncalls\ncontainers\ndenials\nexecuted_files\nincidence\nincomplete_containers\nschema_migrations\nunverified_containers\n"
    );
    s1.insert(&hand_made()).await.unwrap();
    let s3 = open_ch(&ch).await;
    assert_hand_made(&s3).await;

    let dir = tempfile::tempdir().unwrap();
    let e1 = open_embedded(dir.path()).await;
    e1.insert(&hand_made()).await.unwrap();
    drop(e1);
    let e2 = open_embedded(dir.path()).await;
    assert_eq!(
        e2.applied_migrations().await.unwrap(),
        vec![1, 2, 3, 4, 5, 6, 7]
    );
    assert_hand_made(&e2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_right_and_wrong() {
    let ch = testsvc::ClickHouse::start();
    let good = ClickHouseConfig {
        user: testsvc::ClickHouse::USER.into(),
        password: testsvc::ClickHouse::PASSWORD.into(),
        database: "fleet_x".into(),
        ..ch_config(&ch)
    };
    let s = Store::open(&StoreConfig::ClickHouse(good.clone()))
        .await
        .unwrap();
    s.insert(&hand_made()).await.unwrap();
    assert_hand_made(&s).await;

    let bad = ClickHouseConfig {
        password: "wrong".into(),
        ..good
    };
    let err = Store::open(&StoreConfig::ClickHouse(bad))
        .await
        .unwrap_err();
    match &err {
        StoreError::Auth { url, user, .. } => {
            assert_eq!(url, &ch.url());
            assert_eq!(user, "sandmine");
        }
        other => panic!("expected an authentication error, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "ClickHouse at {} rejected the credentials of user \"sandmine\"",
            ch.url()
        )),
        "{msg}"
    );
    assert!(!err.is_transient());

    let bad_db = ClickHouseConfig {
        database: "x-y".into(),
        ..ch_config(&ch)
    };
    let err = Store::open(&StoreConfig::ClickHouse(bad_db))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_outage_fails_fast_and_retry_counts_once() {
    let mut ch = testsvc::ClickHouse::start();
    let s = open_ch(&ch).await;
    let batch = hand_made();
    s.insert(&batch[..1]).await.unwrap();
    ch.stop();
    let t = Instant::now();
    let err = s.insert(&batch).await.unwrap_err();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    assert!(err.is_transient());
    ch.restart();
    // The caller retries the same batch (its first envelope was stored).
    s.insert(&batch).await.unwrap();
    assert_hand_made(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_server_times_out() {
    // Accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let _keep = std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming() {
            held.push(c);
        }
    });
    let cfg = ClickHouseConfig {
        url: format!("http://127.0.0.1:{port}"),
        timeout_secs: 1,
        ..ClickHouseConfig::default()
    };
    let t = Instant::now();
    let err = Store::open(&StoreConfig::ClickHouse(cfg))
        .await
        .unwrap_err();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    match err {
        StoreError::Timeout { url, secs } => {
            assert_eq!(url, format!("http://127.0.0.1:{port}"));
            assert_eq!(secs, 1);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_envelopes_store_like_v2_without_pod_or_seccomp() {
    let ch = testsvc::ClickHouse::start();
    let dir = tempfile::tempdir().unwrap();
    let v1: Vec<_> = hand_made()
        .iter()
        .map(|e| wire::decode(&wire::encode_version(e, 1).unwrap()).unwrap())
        .collect();
    assert_eq!(
        v1[2].containers[0].container.seccomp,
        SeccompFilter::Unknown
    );
    for s in [open_ch(&ch).await, open_embedded(dir.path()).await] {
        s.insert(&v1).await.unwrap();
        let mut want = expected_nginx();
        want.incidence[0].seccomp = "unknown".into();
        assert_eq!(s.image_observations("nginx:1").await.unwrap(), Some(want));
        assert_eq!(s.syscall_totals().await.unwrap(), expected_totals());
    }
    assert_eq!(
        ch.query("SELECT pod_namespace, pod_name, seccomp FROM sandmine.containers WHERE container_id = 'c3'"),
        "\t\tunknown\n"
    );
}

#[test]
fn rows_per_envelope_steady_vs_busy() {
    use Phase::*;
    // A steady host: 50 containers of 5 images, each calling the same 40
    // syscalls it has used for a while.
    let steady = |start: u64| {
        let containers = (0..50)
            .map(|k| {
                let calls = (0..40)
                    .map(|nr| sc(Abi::X86_64, nr, 10, &[Image], T0 - 60_000))
                    .collect();
                ctr(
                    &format!("c{k}"),
                    &format!("img{}", k % 5),
                    T0 - 100_000,
                    start + 10_000,
                    None,
                    calls,
                )
            })
            .collect();
        env("h", "b", 1, start, containers)
    };
    let r = rows::explode(&[steady(T0)]);
    assert_eq!(
        (r.calls.len(), r.incidence.len(), r.containers.len()),
        (200, 0, 50)
    );
    // The interval that ends in a new hour refreshes every container's
    // incidence once.
    let boundary = (T0 / H + 1) * H - 10_000;
    let r = rows::explode(&[steady(boundary)]);
    assert_eq!(
        (r.calls.len(), r.incidence.len(), r.containers.len()),
        (200, 2000, 50)
    );
    let r = rows::explode(&[steady(boundary + 10_000)]);
    assert_eq!(r.incidence.len(), 0);
    // A busy host: every container new in this interval (80 syscalls each).
    let containers = (0..50)
        .map(|k| {
            let calls = (0..80)
                .map(|nr| sc(Abi::X86_64, nr, 10, &[Image], T0 + 5))
                .collect();
            ctr(
                &format!("n{k}"),
                &format!("img{}", k % 5),
                T0 + 1,
                T0 + 10_000,
                None,
                calls,
            )
        })
        .collect();
    let r = rows::explode(&[env("h", "b", 2, T0, containers)]);
    assert_eq!(
        (r.calls.len(), r.incidence.len(), r.containers.len()),
        (400, 4000, 50)
    );
    // An exec'd shell (Unfiltered phase) in a steady container: one row.
    let mut e = steady(T0);
    e.containers[0].syscalls[0].phases = ph(&[Image, Unfiltered]);
    assert_eq!(rows::explode(&[e]).incidence.len(), 1);
}

#[test]
fn store_config_serde() {
    let c: StoreConfig = toml::from_str("[clickhouse]\nuser = \"u\"\npassword = \"p\"\n").unwrap();
    assert_eq!(
        c,
        StoreConfig::ClickHouse(ClickHouseConfig {
            user: "u".into(),
            password: "p".into(),
            ..ClickHouseConfig::default()
        })
    );
    let StoreConfig::ClickHouse(d) = c else {
        unreachable!()
    };
    assert_eq!(
        (d.url.as_str(), d.database.as_str()),
        ("http://127.0.0.1:8123", "sandmine")
    );
    let e: StoreConfig =
        toml::from_str("[embedded]\npath = \"/var/lib/sandmine/store.db\"\n").unwrap();
    assert_eq!(
        e,
        StoreConfig::Embedded(EmbeddedConfig {
            path: "/var/lib/sandmine/store.db".into()
        })
    );
    let err = toml::from_str::<StoreConfig>("[clickhouse]\npasword = \"p\"\n").unwrap_err();
    assert!(err.to_string().contains("unknown field `pasword`"), "{err}");
    let err = toml::from_str::<StoreConfig>("[embedded]\npath = \"x\"\nurl = \"y\"\n").unwrap_err();
    assert!(err.to_string().contains("unknown field `url`"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_ca_file_is_a_clear_error() {
    let cfg = ClickHouseConfig {
        url: "https://127.0.0.1:1".into(),
        ca_file: Some("/nonexistent/ca.pem".into()),
        ..ClickHouseConfig::default()
    };
    let err = Store::open(&StoreConfig::ClickHouse(cfg))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("TLS setup for https://127.0.0.1:1: CA file /nonexistent/ca.pem"),
        "{msg}"
    );
}

/// A large batch (every container new: the worst case for row counts):
/// exact totals, and the insert rate printed (`--nocapture`). Size with
/// SANDMINE_STORE_BENCH_HOSTS (default 20 hosts x 50 containers x 40
/// syscalls).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_batch_insert_rate_and_exact_totals() {
    let hosts: u64 = std::env::var("SANDMINE_STORE_BENCH_HOSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let batch: Vec<_> = (0..hosts)
        .map(|h| {
            let containers = (0..50)
                .map(|k| {
                    let calls = (0..40)
                        .map(|nr| sc(Abi::X86_64, nr, 1 + nr as u64, &[Phase::Image], T0 + 5))
                        .collect();
                    ctr(
                        &format!("c{k}"),
                        &format!("img{}", k % 5),
                        T0 + 1,
                        T0 + 10_000,
                        None,
                        calls,
                    )
                })
                .collect();
            env(&format!("host{h}"), "b", 1, T0, containers)
        })
        .collect();
    let ch = testsvc::ClickHouse::start();
    let dir = tempfile::tempdir().unwrap();
    for (name, s) in [
        ("clickhouse", open_ch(&ch).await),
        ("embedded", open_embedded(dir.path()).await),
    ] {
        let t = Instant::now();
        let stats = s.insert(&batch).await.unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(
            (stats.calls, stats.incidence, stats.containers),
            (hosts * 200, hosts * 2000, hosts * 50)
        );
        println!(
            "{name}: {} rows in {:.3} s = {:.0} rows/s ({} envelopes)",
            stats.rows(),
            secs,
            stats.rows() as f64 / secs,
            batch.len()
        );
        let totals = s.syscall_totals().await.unwrap();
        assert_eq!(totals.len(), 200);
        for (image, _, nr, calls, h, c) in totals {
            assert_eq!(
                (calls, h, c),
                (hosts * 10 * (1 + nr as u64), hosts, hosts * 10),
                "{image} {nr}"
            );
        }
    }
}

/// The example queries of docs/STORE.md run on 18.16 (chdb's check runs
/// them on current ClickHouse) and the first gives the documented totals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_example_queries_run_on_18_16() {
    let ch = testsvc::ClickHouse::start();
    let s = open_ch(&ch).await;
    s.insert(&hand_made()).await.unwrap();
    s.insert(&hand_made()).await.unwrap();
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/STORE.md")).unwrap();
    let examples: Vec<&str> = docs
        .split("```sql\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap().trim().trim_end_matches(';'))
        .collect();
    assert_eq!(examples.len(), 5);
    let first = ch.query(examples[0]);
    let t = |d: u64| T0 + d;
    assert_eq!(
        first,
        format!(
            "nginx:1\t0\t0\t2\t3\t27\t{}\t{}\nnginx:1\t0\t1\t1\t1\t3\t{}\t{}\nnginx:1\t0\t59\t1\t1\t1\t{}\t{}\nnginx:1\t1\t20\t1\t1\t2\t{}\t{}\nredis:7\t0\t0\t1\t1\t100\t{}\t{}\n",
            t(700), t(20_000), t(12_000), t(20_000), t(1500), t(10_000), t(600), t(10_000), t(100), t(10_000)
        )
    );
    for q in &examples[1..] {
        ch.query(q);
    }
    // The incomplete containers per image.
    let mut noslot = ctr("noslot", "nginx:1", T0 + 100, T0 + 200, None, vec![]);
    noslot.incomplete = true;
    s.insert(&[env("h3", "b3", 1, T0, vec![noslot])])
        .await
        .unwrap();
    assert_eq!(ch.query(examples[3]), "nginx:1\t4\t1\nredis:7\t1\t0\n");
}

/// The runtime-phase calls per (runtime, image), which the fleet's runtime
/// base is derived from: exact, and the same from both stores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_syscalls_per_runtime_on_both_stores() {
    use Abi::X86_64;
    let ch = testsvc::ClickHouse::start();
    let dir = tempfile::tempdir().unwrap();
    let chs = open_ch(&ch).await;
    let emb = open_embedded(dir.path()).await;
    let mut podman = ctr(
        "p1",
        "redis:7",
        T0,
        T0 + 10_000,
        None,
        vec![
            sc(X86_64, 157, 1, &[Phase::Runtime, Phase::Image], T0 + 100),
            sc(X86_64, 0, 1, &[Phase::Image], T0 + 200),
        ],
    );
    podman.container.runtime = "podman".into();
    let mut batch = hand_made();
    batch.push(env("h3", "b1", 1, T0, vec![podman]));
    for s in [&chs, &emb] {
        s.insert(&batch).await.unwrap();
        // Redelivered: still one row each.
        s.insert(&batch).await.unwrap();
    }
    let want = vec![
        ("docker".to_string(), "nginx:1".to_string(), X86_64, 59),
        ("podman".to_string(), "redis:7".to_string(), X86_64, 157),
    ];
    assert_eq!(chs.runtime_syscalls().await.unwrap(), want);
    assert_eq!(emb.runtime_syscalls().await.unwrap(), want);
}

/// Counts that overflow a signed or unsigned 64-bit sum: every store keeps
/// working and answers saturated sums, while smaller sums stay exact.
async fn assert_huge_sums_saturate(s: &Store) {
    use Phase::Image;
    const MAX_CALLS: u64 = 1 << 48; // the largest `calls` the decoder accepts
    const SATURATED: u64 = i64::MAX as u64;
    let huge = |seq: u64, host: &str| {
        env(
            host,
            "b1",
            seq,
            T0 + seq * 10_000,
            vec![ctr(
                &format!("c{seq}"),
                "huge:1",
                T0,
                T0 + seq * 10_000,
                None,
                vec![
                    sc(Abi::X86_64, 0, u64::MAX - 1, &[Image], T0 + seq * 10_000),
                    sc(Abi::X86_64, 1, MAX_CALLS, &[Image], T0 + seq * 10_000),
                ],
            )],
        )
    };
    // Same host and boot (summed in place by SQLite), then another host.
    s.insert(&[huge(1, "h1"), huge(2, "h1")]).await.unwrap();
    s.insert(&[huge(3, "h1")]).await.unwrap();
    s.insert(&[huge(1, "h2")]).await.unwrap();
    let obs = s.image_observations("huge:1").await.unwrap().unwrap();
    let calls: Vec<(u32, u64)> = obs.syscalls.iter().map(|t| (t.nr, t.calls)).collect();
    assert_eq!(calls, [(0, SATURATED), (1, 4 * MAX_CALLS)]);
    let totals: Vec<(u32, u64, u64)> = s
        .syscall_totals()
        .await
        .unwrap()
        .into_iter()
        .map(|(_, _, nr, calls, hosts, _)| (nr, calls, hosts))
        .collect();
    assert_eq!(totals, [(0, SATURATED, 2), (1, 4 * MAX_CALLS, 2)]);
    // Still writable, and still saturated.
    s.insert(&[huge(4, "h1")]).await.unwrap();
    let obs = s.image_observations("huge:1").await.unwrap().unwrap();
    let calls: Vec<(u32, u64)> = obs.syscalls.iter().map(|t| (t.nr, t.calls)).collect();
    assert_eq!(calls, [(0, SATURATED), (1, 5 * MAX_CALLS)]);

    // Only values the decoder accepts: two hosts, each with 2^14
    // containers making 2^48 calls: 2^62 per host, 2^63 in all, one more
    // than a signed 64-bit sum holds.
    let wide = |host: &str| {
        let containers = (0..1u64 << 14)
            .map(|i| {
                ctr(
                    &format!("w{i}"),
                    "wide:1",
                    T0,
                    T0 + 10_000,
                    None,
                    vec![sc(Abi::X86_64, 0, MAX_CALLS, &[Image], T0)],
                )
            })
            .collect();
        env(host, "b2", 1, T0, containers)
    };
    s.insert(&[wide("h1"), wide("h2")]).await.unwrap();
    let obs = s.image_observations("wide:1").await.unwrap().unwrap();
    let calls: Vec<(u32, u64)> = obs.syscalls.iter().map(|t| (t.nr, t.calls)).collect();
    assert_eq!(calls, [(0, SATURATED)]);
    assert_eq!(obs.containers, 2 << 14);
    let totals: Vec<(String, u32, u64, u64)> = s
        .syscall_totals()
        .await
        .unwrap()
        .into_iter()
        .map(|(image, _, nr, calls, hosts, _)| (image, nr, calls, hosts))
        .collect();
    assert_eq!(
        totals,
        [
            ("huge:1".to_string(), 0, SATURATED, 2),
            ("huge:1".to_string(), 1, 5 * MAX_CALLS, 2),
            ("wide:1".to_string(), 0, SATURATED, 2),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_huge_sums_saturate() {
    let dir = tempfile::tempdir().unwrap();
    assert_huge_sums_saturate(&open_embedded(dir.path()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_huge_sums_saturate() {
    let ch = testsvc::ClickHouse::start();
    assert_huge_sums_saturate(&open_ch(&ch).await).await;
}

/// Incomplete containers (wire v3): `lossy` is complete in its first
/// message and incomplete from its second on (the collector keeps the flag
/// set); `noslot` never had a slot, so it arrives with no syscalls at all,
/// only the flag. Per container, once incomplete always incomplete: the
/// same answer from both stores, whatever the redelivery, grouping and
/// order, before and after ClickHouse's merges.
fn incomplete_envelopes() -> Vec<wire::Envelope> {
    use Abi::*;
    use Phase::*;
    let mut lossy2 = ctr(
        "lossy",
        "app:1",
        T0 + 100,
        T0 + 20_000,
        None,
        vec![sc(X86_64, 1, 2, &[Image], T0 + 12_000)],
    );
    lossy2.incomplete = true;
    let mut lossy3 = ctr(
        "lossy",
        "app:1",
        T0 + 100,
        T0 + 30_000,
        Some(T0 + 30_000),
        vec![],
    );
    lossy3.incomplete = true;
    let mut noslot = ctr("noslot", "app:1", T0 + 15_000, T0 + 20_000, None, vec![]);
    noslot.incomplete = true;
    vec![
        env(
            "h1",
            "b1",
            1,
            T0,
            vec![
                ctr(
                    "ok",
                    "app:1",
                    T0 + 50,
                    T0 + 10_000,
                    None,
                    vec![sc(X86_64, 0, 5, &[Image], T0 + 60)],
                ),
                ctr(
                    "lossy",
                    "app:1",
                    T0 + 100,
                    T0 + 10_000,
                    None,
                    vec![sc(X86_64, 0, 3, &[Image], T0 + 200)],
                ),
            ],
        ),
        env("h1", "b1", 2, T0 + 10_000, vec![lossy2, noslot]),
        env("h1", "b1", 3, T0 + 20_000, vec![lossy3]),
    ]
}

fn expected_incomplete() -> ImageObservations {
    use Abi::*;
    use Phase::*;
    let c = |id: &str, started: u64, last: u64, incomplete: bool, syscalls| ContainerIncidence {
        host_id: "h1".into(),
        boot_id: "b1".into(),
        container_id: id.into(),
        started_at_ms: started,
        last_seen_ms: last,
        seccomp: "unknown".into(),
        incomplete,
        unverified: false,
        syscalls,
    };
    ImageObservations {
        image: "app:1".into(),
        digests: vec![],
        hosts: 1,
        containers: 3,
        // ok 9.95 s + lossy 29.9 s + noslot 5 s, summed in ms
        container_seconds: 44,
        first_seen_ms: T0 + 50,
        last_seen_ms: T0 + 30_000,
        syscalls: vec![
            st(X86_64, 0, 1, 2, 8, T0 + 60, T0 + 10_000, &[Image]),
            st(X86_64, 1, 1, 1, 2, T0 + 12_000, T0 + 20_000, &[Image]),
        ],
        incidence: vec![
            c(
                "ok",
                T0 + 50,
                T0 + 10_000,
                false,
                vec![ie(X86_64, 0, &[Image], T0 + 60, T0 + 10_000)],
            ),
            c(
                "lossy",
                T0 + 100,
                T0 + 30_000,
                true,
                vec![
                    ie(X86_64, 0, &[Image], T0 + 200, T0 + 10_000),
                    ie(X86_64, 1, &[Image], T0 + 12_000, T0 + 20_000),
                ],
            ),
            c("noslot", T0 + 15_000, T0 + 20_000, true, vec![]),
        ],
        out_of_range: 0,
        args: Default::default(),
        executed: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incomplete_containers_round_trip_and_merge_on_both_stores() {
    let ch = testsvc::ClickHouse::start();
    let dir = tempfile::tempdir().unwrap();
    // Through the wire, as the aggregator gets them.
    let batch: Vec<wire::Envelope> = incomplete_envelopes()
        .iter()
        .map(|e| wire::decode(&wire::encode(e).unwrap()).unwrap())
        .collect();
    assert_eq!(batch, incomplete_envelopes());
    let want = expected_incomplete();
    for s in [open_ch(&ch).await, open_embedded(dir.path()).await] {
        // One by one, newest first: the first row a store sees of `lossy`
        // is incomplete, then a complete one arrives (its first message).
        for e in batch.iter().rev() {
            s.insert(std::slice::from_ref(e)).await.unwrap();
        }
        assert_eq!(
            s.image_observations("app:1").await.unwrap(),
            Some(want.clone())
        );
        // Redelivered, regrouped.
        s.insert(&batch).await.unwrap();
        s.insert(&[batch[1].clone(), batch[0].clone()])
            .await
            .unwrap();
        assert_eq!(
            s.image_observations("app:1").await.unwrap(),
            Some(want.clone())
        );
        if let Store::ClickHouse(c) = &s {
            c.optimize().await.unwrap();
            assert_eq!(
                s.image_observations("app:1").await.unwrap(),
                Some(want.clone())
            );
        }
    }
    // After the merges, one row per incomplete container.
    assert_eq!(
        ch.query("SELECT container_id FROM sandmine.incomplete_containers ORDER BY container_id"),
        "lossy\nnoslot\n"
    );
}

/// Unverified containers (wire v4, issue 9 item 3): stored like any
/// other, marked by presence in `unverified_containers`. `ok` says so in
/// its only message, `lossy` only in its last: once unverified, always,
/// on both stores, whatever the order and redelivery, before and after
/// ClickHouse's merges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unverified_containers_are_stored_marked_in_both_stores() {
    let ch = testsvc::ClickHouse::start();
    let dir = tempfile::tempdir().unwrap();
    let mut envs = incomplete_envelopes();
    envs[0].containers[0].unverified = true;
    envs[2].containers[0].unverified = true;
    let batch: Vec<wire::Envelope> = envs
        .iter()
        .map(|e| wire::decode(&wire::encode(e).unwrap()).unwrap())
        .collect();
    assert_eq!(batch, envs);
    let mut want = expected_incomplete();
    want.incidence[0].unverified = true;
    want.incidence[1].unverified = true;
    for s in [open_ch(&ch).await, open_embedded(dir.path()).await] {
        for e in batch.iter().rev() {
            s.insert(std::slice::from_ref(e)).await.unwrap();
        }
        assert_eq!(
            s.image_observations("app:1").await.unwrap(),
            Some(want.clone())
        );
        s.insert(&batch).await.unwrap();
        assert_eq!(
            s.image_observations("app:1").await.unwrap(),
            Some(want.clone())
        );
        if let Store::ClickHouse(c) = &s {
            c.optimize().await.unwrap();
            assert_eq!(
                s.image_observations("app:1").await.unwrap(),
                Some(want.clone())
            );
        }
    }
    assert_eq!(
        ch.query("SELECT container_id FROM sandmine.unverified_containers ORDER BY container_id"),
        "lossy\nok\n"
    );
}

/// A store created before migration 2 (no `incomplete_containers`) with
/// rows in it: opening it adds the table, and the old rows read as
/// complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_2_adds_incomplete_to_an_existing_clickhouse_store() {
    use aggregator::store::sql;
    let ch = testsvc::ClickHouse::start();
    for s in sql::split(sql::BOOTSTRAP)
        .into_iter()
        .chain(sql::split(sql::MIGRATIONS[0].sql))
    {
        ch.query(&sql::with_db(s, "sandmine"));
    }
    ch.query("INSERT INTO sandmine.schema_migrations (version, applied_at) VALUES (1, now())");
    ch.query(&format!(
        "INSERT INTO sandmine.containers (image, host_id, boot_id, container_id, runtime, image_digest, pod_namespace, pod_name, pod_container, seccomp, started_at_ms, last_seen_ms, exited_at_ms) VALUES ('app:1', 'h1', 'b1', 'old', 'docker', '', '', '', '', 'unknown', {}, {}, 0)",
        T0,
        T0 + 1000
    ));
    let s = open_ch(&ch).await;
    assert_eq!(
        s.applied_migrations().await.unwrap(),
        vec![1, 2, 4, 5, 6, 7]
    );
    let obs = s.image_observations("app:1").await.unwrap().unwrap();
    assert_eq!(
        obs.incidence
            .iter()
            .map(|c| (c.container_id.as_str(), c.incomplete))
            .collect::<Vec<_>>(),
        [("old", false)]
    );
    // Applying migration 2 again (a second aggregator racing the first) is
    // harmless.
    for s in sql::split(sql::MIGRATIONS[1].sql) {
        ch.query(&sql::with_db(s, "sandmine"));
    }
    let mut noslot = ctr("noslot", "app:1", T0 + 500, T0 + 2000, None, vec![]);
    noslot.incomplete = true;
    s.insert(&[env("h1", "b1", 1, T0 + 1000, vec![noslot])])
        .await
        .unwrap();
    let obs = s.image_observations("app:1").await.unwrap().unwrap();
    assert_eq!(
        obs.incidence
            .iter()
            .map(|c| (c.container_id.as_str(), c.incomplete))
            .collect::<Vec<_>>(),
        [("old", false), ("noslot", true)]
    );
}

/// Modes of `paths` relative to `base`, `name=mode` in octal.
fn modes(base: &std::path::Path, paths: &[&str]) -> String {
    use std::os::unix::fs::PermissionsExt;
    paths
        .iter()
        .map(|p| match std::fs::metadata(base.join(p)) {
            Ok(m) => format!("{p}={:o}", m.permissions().mode() & 0o777),
            Err(e) => format!("{p}={e}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The embedded store holds every image's syscalls: its files are the
/// owner's only (0600), in directories it creates 0700, however loose the
/// umask.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_files_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig::Embedded(EmbeddedConfig {
        path: dir.path().join("var/sandmine/store.db"),
    });
    let s = Store::open(&cfg).await.unwrap();
    s.insert(&hand_made()).await.unwrap();
    assert_eq!(
        modes(
            dir.path(),
            &[
                "var",
                "var/sandmine",
                "var/sandmine/store.db",
                "var/sandmine/store.db-wal",
                "var/sandmine/store.db-shm"
            ]
        ),
        "var=700 var/sandmine=700 var/sandmine/store.db=600 var/sandmine/store.db-wal=600 var/sandmine/store.db-shm=600"
    );
}

/// `Debug` of the store config (logged, printed in panics) never shows
/// the password.
#[test]
fn store_config_debug_hides_the_password() {
    let c = ClickHouseConfig {
        user: "u".into(),
        password: "hunter2-ch".into(),
        ..ClickHouseConfig::default()
    };
    let shown = format!("{c:?} {:?}", StoreConfig::ClickHouse(c.clone()));
    assert!(!shown.contains("hunter2"), "{shown}");
    assert_eq!(
        shown.matches("password: \"<redacted>\"").count(),
        2,
        "{shown}"
    );
}
