//! The aggregation loop against a real nats-server and a real store: a
//! message the store refuses for good is dead-lettered with the store's
//! reason while its batch-mates are stored exactly once; an outage is
//! retried, never dead-lettered.

mod common;

use aggregator::ingest::{self, AggregatorConfig, IngestMetrics};
use aggregator::store::{EmbeddedConfig, Store, StoreConfig};
use common::*;
use schemas::wire::{self, Envelope};
use schemas::{Abi, Phase};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use transport::{BrokerConfig, Consumer, NatsConfig, Publisher};

const IMAGES: [&str; 6] = ["a:1", "b:1", "poison:1", "c:1", "d:1", "e:1"];

/// One message per image, host h1, seq 1..=6; image i makes 10 + i calls.
fn envelopes() -> Vec<Envelope> {
    IMAGES
        .iter()
        .enumerate()
        .map(|(i, img)| {
            let n = i as u64;
            env(
                "h1",
                "b1",
                n + 1,
                T0,
                vec![ctr(
                    &format!("c{i}"),
                    img,
                    T0,
                    T0 + 5_000,
                    None,
                    vec![sc(Abi::X86_64, 39, 10 + n, &[Phase::Image], T0)],
                )],
            )
        })
        .collect()
}

fn counters(m: &IngestMetrics) -> [u64; 3] {
    [
        m.acked.load(Ordering::Relaxed),
        m.dead_lettered.load(Ordering::Relaxed),
        m.messages.load(Ordering::Relaxed),
    ]
}

/// Publishes `envs`, runs the loop until `done` holds of the metrics (or
/// 30 s passed), then stops it.
async fn ingest_until(
    broker: &BrokerConfig,
    store: &Store,
    envs: &[Envelope],
    metrics: &IngestMetrics,
    done: impl Fn(&IngestMetrics) -> bool,
) {
    let publisher = Publisher::connect(broker).await.unwrap();
    for e in envs {
        publisher
            .publish(&e.dedupe_id(), &wire::encode(e).unwrap())
            .await
            .unwrap();
    }
    let cfg = AggregatorConfig {
        batch_max_messages: 100,
        batch_max_wait: Duration::from_millis(300),
        retry_max_backoff: Duration::from_millis(200),
        enrolled_hosts: None,
    };
    let mut consumer = Consumer::connect(broker).await.unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let watch = async {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done(metrics) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.send(true).unwrap();
    };
    tokio::join!(
        ingest::run(
            &cfg,
            &mut consumer,
            &publisher,
            store,
            metrics,
            None,
            stopped
        ),
        watch
    );
}

/// Calls per image in the store.
async fn stored(store: &Store) -> Vec<(String, u64)> {
    store
        .syscall_totals()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.0, r.3))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_store_refuses_is_dead_lettered_and_its_batch_mates_stored_once() {
    let nats = testsvc::Nats::start();
    let broker = BrokerConfig::Nats(NatsConfig {
        url: nats.url(),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let store = Store::open(&StoreConfig::Embedded(EmbeddedConfig { path: db.clone() }))
        .await
        .unwrap();
    // The real SQLite refuses one image's rows for good, as a CHECK
    // constraint would.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON containers WHEN NEW.image = 'poison:1' \
             BEGIN SELECT RAISE(ABORT, 'image poison:1 is refused'); END;",
        )
        .unwrap();
    let metrics = IngestMetrics::default();
    ingest_until(&broker, &store, &envelopes(), &metrics, |m| {
        m.acked.load(Ordering::Relaxed) >= 6
    })
    .await;
    assert_eq!(
        counters(&metrics),
        [6, 1, 5],
        "acked, dead-lettered, stored (store errors: {})",
        metrics.store_errors.load(Ordering::Relaxed)
    );
    assert_eq!(
        stored(&store).await,
        [
            ("a:1".to_string(), 10),
            ("b:1".to_string(), 11),
            ("c:1".to_string(), 13),
            ("d:1".to_string(), 14),
            ("e:1".to_string(), 15)
        ]
    );
    let mut dead = Consumer::connect_dead_letter(&broker).await.unwrap();
    let got = dead.fetch(10, Duration::from_secs(1)).await.unwrap();
    let got: Vec<_> = got
        .iter()
        .map(|d| (d.msg_id.clone(), d.reason.clone(), d.payload.to_vec()))
        .collect();
    assert_eq!(
        got,
        [(
            Some("h1.b1.3".to_string()),
            Some(format!(
                "the store refuses this message: embedded store {}: image poison:1 is refused: \
                 Error code 1811: A RAISE function within a trigger fired",
                db.display()
            )),
            wire::encode(&envelopes()[2]).unwrap()
        )]
    );
}

/// A store outage is retried until the store is back, and dead-letters
/// nothing: no message is blamed for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_is_retried_and_dead_letters_nothing() {
    let nats = testsvc::Nats::start();
    let broker = BrokerConfig::Nats(NatsConfig {
        url: nats.url(),
        ..Default::default()
    });
    let mut ch = testsvc::ClickHouse::start();
    let store = Store::open(&StoreConfig::ClickHouse(ch_config(&ch)))
        .await
        .unwrap();
    ch.stop();
    let ch = std::sync::Mutex::new(ch);
    let restarted = std::sync::atomic::AtomicBool::new(false);
    let metrics = IngestMetrics::default();
    ingest_until(&broker, &store, &envelopes(), &metrics, |m| {
        // Back once the loop has failed on the outage three times.
        if m.store_errors.load(Ordering::Relaxed) >= 3 && !restarted.swap(true, Ordering::Relaxed) {
            tokio::task::block_in_place(|| ch.lock().unwrap().restart());
        }
        m.acked.load(Ordering::Relaxed) >= 6
    })
    .await;
    assert!(restarted.load(Ordering::Relaxed));
    assert_eq!(
        counters(&metrics),
        [6, 0, 6],
        "acked, dead-lettered, stored"
    );
    let want: Vec<(String, u64)> = IMAGES
        .iter()
        .enumerate()
        .map(|(i, img)| (img.to_string(), 10 + i as u64))
        .collect();
    let mut want = want;
    want.sort();
    assert_eq!(stored(&store).await, want);
    let mut dead = Consumer::connect_dead_letter(&broker).await.unwrap();
    assert_eq!(
        dead.fetch(10, Duration::from_millis(500))
            .await
            .unwrap()
            .len(),
        0
    );
}

/// The same on ClickHouse 18.16: a column whose default throws for the
/// poison image (`throwIf`, as a constraint would) refuses that message's
/// rows; the others are stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_a_message_it_refuses_is_dead_lettered_and_its_batch_mates_stored_once() {
    let nats = testsvc::Nats::start();
    let broker = BrokerConfig::Nats(NatsConfig {
        url: nats.url(),
        ..Default::default()
    });
    let ch = testsvc::ClickHouse::start();
    let cfg = ch_config(&ch);
    let store = Store::open(&StoreConfig::ClickHouse(cfg.clone()))
        .await
        .unwrap();
    let out = ch.query(&format!(
        "ALTER TABLE {}.containers ADD COLUMN refuse UInt8 DEFAULT throwIf(image = 'poison:1')",
        cfg.database
    ));
    assert_eq!(out, "", "ALTER");
    let metrics = IngestMetrics::default();
    ingest_until(&broker, &store, &envelopes(), &metrics, |m| {
        m.acked.load(Ordering::Relaxed) >= 6
    })
    .await;
    assert_eq!(
        counters(&metrics),
        [6, 1, 5],
        "acked, dead-lettered, stored (store errors: {})",
        metrics.store_errors.load(Ordering::Relaxed)
    );
    assert_eq!(
        stored(&store).await,
        [
            ("a:1".to_string(), 10),
            ("b:1".to_string(), 11),
            ("c:1".to_string(), 13),
            ("d:1".to_string(), 14),
            ("e:1".to_string(), 15)
        ]
    );
    let mut dead = Consumer::connect_dead_letter(&broker).await.unwrap();
    let got = dead.fetch(10, Duration::from_secs(1)).await.unwrap();
    let reason = got[0].reason.clone().unwrap_or_default();
    let prefix = format!(
        "the store refuses this message: ClickHouse at {}: ",
        cfg.url
    );
    assert!(
        reason.starts_with(&prefix) && reason.contains("Code: 395"),
        "{reason}"
    );
    let got: Vec<_> = got
        .iter()
        .map(|d| (d.msg_id.clone(), d.payload.to_vec()))
        .collect();
    assert_eq!(
        got,
        [(
            Some("h1.b1.3".to_string()),
            wire::encode(&envelopes()[2]).unwrap()
        )]
    );
}

/// With `enrolled_hosts`, only messages signed by the key enrolled for
/// their host, of a host not revoked, are stored; each other one is
/// dead-lettered with its reason and counted as a refused identity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_messages_signed_by_their_enrolled_host_are_stored() {
    use aggregator::enrolled::Enrolled;
    use wire::HostKey;
    let nats = testsvc::Nats::start();
    let broker = BrokerConfig::Nats(NatsConfig {
        url: nats.url(),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreConfig::Embedded(EmbeddedConfig {
        path: dir.path().join("store.db"),
    }))
    .await
    .unwrap();
    let [a, b, r, stranger] = [1u8, 2, 3, 4].map(|n| HostKey::from_seed([n; 32]));
    let path = dir.path().join("enrolled.toml");
    std::fs::write(
        &path,
        format!(
            "[hosts.h1]\nkeys = [\"{}\"]\n[hosts.h2]\nkeys = [\"{}\"]\n[hosts.h3]\nkeys = [\"{}\"]\nrevoked = true\n",
            a.public_key(),
            b.public_key(),
            r.public_key()
        ),
    )
    .unwrap();
    let one = |host: &str, seq: u64, image: &str, calls: u64| {
        env(
            host,
            "b1",
            seq,
            T0,
            vec![ctr(
                &format!("c{seq}"),
                image,
                T0,
                T0 + 5_000,
                None,
                vec![sc(Abi::X86_64, 39, calls, &[Phase::Image], T0)],
            )],
        )
    };
    // (envelope, signer): None sends it unsigned (v4).
    let msgs: Vec<(Envelope, Option<&HostKey>)> = vec![
        (one("h1", 1, "a:1", 10), Some(&a)),
        (one("h2", 1, "b:1", 11), Some(&b)),
        (one("h2", 2, "b:1", 1000), Some(&a)),
        (one("h3", 1, "c:1", 1000), Some(&r)),
        (one("h1", 2, "a:1", 1000), None),
        (one("h1", 3, "a:1", 1000), Some(&stranger)),
        (one("h4", 1, "d:1", 1000), Some(&b)),
    ];
    let publisher = Publisher::connect(&broker).await.unwrap();
    let mut ids = Vec::new();
    for (e, key) in &msgs {
        let bytes = match key {
            Some(k) => wire::encode_signed(e, k).unwrap(),
            None => wire::encode(e).unwrap(),
        };
        let id = wire::message_id(e, &bytes);
        publisher.publish(&id, &bytes).await.unwrap();
        ids.push(id);
    }
    let cfg = AggregatorConfig {
        batch_max_messages: 100,
        batch_max_wait: Duration::from_millis(300),
        retry_max_backoff: Duration::from_millis(200),
        enrolled_hosts: Some(path.clone()),
    };
    let metrics = IngestMetrics::default();
    let mut consumer = Consumer::connect(&broker).await.unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let enrolled = Enrolled::open(&path).unwrap();
    let watch = async {
        let deadline = Instant::now() + Duration::from_secs(30);
        while metrics.acked.load(Ordering::Relaxed) < 7 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.send(true).unwrap();
    };
    tokio::join!(
        ingest::run(
            &cfg,
            &mut consumer,
            &publisher,
            &store,
            &metrics,
            Some(enrolled),
            stopped
        ),
        watch
    );
    assert_eq!(
        counters(&metrics),
        [7, 5, 2],
        "acked, dead-lettered, stored"
    );
    assert_eq!(metrics.identity_refused.load(Ordering::Relaxed), 5);
    assert_eq!(
        stored(&store).await,
        [("a:1".to_string(), 10), ("b:1".to_string(), 11)]
    );
    let mut dead = Consumer::connect_dead_letter(&broker).await.unwrap();
    let got = dead.fetch(10, Duration::from_secs(1)).await.unwrap();
    let mut got: Vec<_> = got
        .iter()
        .map(|d| (d.msg_id.clone().unwrap(), d.reason.clone().unwrap()))
        .collect();
    got.sort();
    let (pa, pb, ps) = (a.public_key(), b.public_key(), stranger.public_key());
    let mut want = vec![
        (
            ids[2].clone(),
            format!("forged host identity: the message claims host \"h2\" but is signed by host \"h1\"'s key ({pa})"),
        ),
        (ids[3].clone(), "host \"h3\" is revoked".to_string()),
        (
            ids[4].clone(),
            "host \"h1\": unsigned message (wire version 4); enrolled_hosts accepts only messages signed by an enrolled host key (wire version 5: set [collector] max_wire_version = 5 on the host)".to_string(),
        ),
        (
            ids[5].clone(),
            format!("host \"h1\" did not sign this message: its key {ps} is not enrolled for any host"),
        ),
        (
            ids[6].clone(),
            format!("forged host identity: host \"h4\" is not enrolled, and the key that signed this message ({pb}) is host \"h2\"'s"),
        ),
    ];
    want.sort();
    assert_eq!(got, want);
}
