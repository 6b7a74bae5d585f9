//! Argument values (wire v7, migration 6) in both stores: the exact
//! `ArgEvidence` of an image (verified containers only; incomplete ones
//! count), exactly once under redelivery and regrouping, before and after
//! ClickHouse's merges, the same from ClickHouse 18.16 and SQLite; and a
//! malformed v7 body is dead-lettered with its reason.

mod common;

use aggregator::ingest::{self, AggregatorConfig, IngestMetrics};
use aggregator::store::Store;
use common::*;
use schemas::wire::{self, ContainerDelta, Envelope};
use schemas::{
    Abi, ArgEvidence, ArgField, ArgOverflow, ArgRecorded, ArgSet, ArgTotals, Phase, SyscallKey,
};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use transport::{BrokerConfig, Consumer, NatsConfig, Publisher};

const SOCKET: u32 = 41;
const PERSONALITY: u32 = 135;
const MPROTECT: u32 = 10;
const FAMILY_TYPE: [(u8, u32); 2] = [(0, 0xffff_ffff), (1, 0xf)];
const PERSONA: [(u8, u32); 1] = [(0, 0xffff_ffff)];

fn fields(f: &[(u8, u32)]) -> Vec<ArgField> {
    f.iter()
        .map(|&(index, mask)| ArgField { index, mask })
        .collect()
}

fn set(f: &[(u8, u32)], values: &[&[u32]], overflow: u64) -> ArgSet {
    ArgSet {
        fields: fields(f),
        values: values.iter().map(|v| v.to_vec()).collect(),
        overflow,
    }
}

fn with_args(mut c: ContainerDelta, sets: Vec<(u32, ArgSet)>) -> ContainerDelta {
    for (nr, s) in sets {
        c.args.insert(
            SyscallKey {
                abi: Abi::X86_64,
                nr,
            },
            s,
        );
    }
    c
}

fn busy(id: &str, start: u64) -> ContainerDelta {
    ctr(
        id,
        "app:1",
        T0,
        start + 10_000,
        None,
        vec![
            sc(Abi::X86_64, MPROTECT, 3, &[Phase::Image], T0 + 100),
            sc(Abi::X86_64, SOCKET, 2, &[Phase::Image], T0 + 100),
            sc(Abi::X86_64, PERSONALITY, 1, &[Phase::Image], T0 + 100),
        ],
    )
}

/// app:1 on two hosts: a1 (its socket set grows in its second message,
/// sent whole again), a2 (incomplete, with an overflow), a3 on h2, u1
/// (unverified: its values, sets and overflow count nowhere) and a4 (made
/// the calls, recorded no set).
fn fleet() -> Vec<Envelope> {
    let mut a2 = with_args(
        busy("a2", T0),
        vec![(SOCKET, set(&FAMILY_TYPE, &[&[2, 1]], 3))],
    );
    a2.incomplete = true;
    let mut u1 = with_args(
        busy("u1", T0),
        vec![
            (SOCKET, set(&FAMILY_TYPE, &[&[16, 3]], 0)),
            (PERSONALITY, set(&PERSONA, &[&[8]], 0)),
            (MPROTECT, set(&[(2, 6)], &[&[4]], 5)),
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
                with_args(
                    busy("a1", T0),
                    vec![
                        (SOCKET, set(&FAMILY_TYPE, &[&[2, 1], &[1, 2]], 0)),
                        (PERSONALITY, set(&PERSONA, &[&[0xffff_ffff]], 0)),
                    ],
                ),
                a2,
            ],
        ),
        env(
            "h1",
            "b1",
            2,
            T0 + 10_000,
            vec![with_args(
                busy("a1", T0 + 10_000),
                vec![(
                    SOCKET,
                    set(&FAMILY_TYPE, &[&[2, 1], &[1, 2], &[10, 2], &[16, 1]], 0),
                )],
            )],
        ),
        env(
            "h2",
            "b7",
            1,
            T0,
            vec![
                with_args(
                    busy("a3", T0),
                    vec![(SOCKET, set(&FAMILY_TYPE, &[&[2, 1]], 0))],
                ),
                u1,
            ],
        ),
        env("h2", "b7", 2, T0 + 10_000, vec![busy("a4", T0 + 10_000)]),
    ]
}

fn value(nr: u32, f: &[(u8, u32)], v: &[u32], hosts: u64, containers: u64) -> ArgTotals {
    ArgTotals {
        abi: Abi::X86_64,
        nr,
        fields: fields(f),
        value: v.to_vec(),
        hosts,
        containers,
    }
}

fn expected() -> ArgEvidence {
    ArgEvidence {
        // Sorted by value as numbers: [16, 1] after [10, 2] (as text,
        // "10,1" would come first).
        values: vec![
            value(SOCKET, &FAMILY_TYPE, &[1, 2], 1, 1),
            value(SOCKET, &FAMILY_TYPE, &[2, 1], 2, 3),
            value(SOCKET, &FAMILY_TYPE, &[10, 2], 1, 1),
            value(SOCKET, &FAMILY_TYPE, &[16, 1], 1, 1),
            value(PERSONALITY, &PERSONA, &[0xffff_ffff], 1, 1),
        ],
        overflow: vec![ArgOverflow {
            abi: Abi::X86_64,
            nr: SOCKET,
            hosts: 1,
            containers: 1,
        }],
        recorded: vec![
            ArgRecorded {
                abi: Abi::X86_64,
                nr: SOCKET,
                containers: 3,
            },
            ArgRecorded {
                abi: Abi::X86_64,
                nr: PERSONALITY,
                containers: 1,
            },
        ],
    }
}

async fn assert_args(s: &Store) {
    let obs = s.image_observations("app:1").await.unwrap().unwrap();
    assert_eq!(obs.args, expected());
    assert_eq!(obs.containers, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argument_values_are_exact_and_stored_once_on_both_stores() {
    let ch = testsvc::ClickHouse::start();
    let dir = tempfile::tempdir().unwrap();
    let c = open_ch(&ch).await;
    let e = open_embedded(dir.path()).await;
    for s in [&c, &e] {
        s.insert(&fleet()).await.unwrap();
        assert_args(s).await;
        // Redelivered whole, one by one in reverse, and regrouped: the
        // same evidence.
        s.insert(&fleet()).await.unwrap();
        for m in fleet().iter().rev() {
            s.insert(std::slice::from_ref(m)).await.unwrap();
        }
        s.insert(&fleet()[1..3]).await.unwrap();
        assert_args(s).await;
    }
    if let Store::ClickHouse(x) = &c {
        x.optimize().await.unwrap();
    }
    assert_args(&c).await;
    // Both stores answer the whole image alike.
    assert_eq!(
        c.image_observations("app:1").await.unwrap(),
        e.image_observations("app:1").await.unwrap()
    );
    // An image without sets has empty evidence.
    let other = vec![env(
        "h1",
        "b1",
        3,
        T0,
        vec![ctr(
            "r1",
            "redis:7",
            T0,
            T0 + 1_000,
            None,
            vec![sc(Abi::X86_64, SOCKET, 1, &[Phase::Image], T0)],
        )],
    )];
    for s in [&c, &e] {
        s.insert(&other).await.unwrap();
        let obs = s.image_observations("redis:7").await.unwrap().unwrap();
        assert_eq!(obs.args, ArgEvidence::default());
    }
}

/// The header and body of a signed message with `key`'s trailer.
fn resign(body: &[u8], key: &wire::HostKey) -> Vec<u8> {
    let mut out = body.to_vec();
    out.extend_from_slice(&key.public_key().0);
    let sig = key.sign(&out);
    out.extend_from_slice(&sig);
    out
}

/// A body with malformed argument sets (wire v7's, in the v8 body the
/// encoder now writes: a value with bits outside its mask, three fields,
/// a syscall listed twice) is dead-lettered with the reason; the good
/// message beside them is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_v7_body_is_dead_lettered_with_its_reason() {
    let nats = testsvc::Nats::start();
    let broker = BrokerConfig::Nats(NatsConfig {
        url: nats.url(),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let store = open_embedded(dir.path()).await;
    let key = wire::HostKey::from_seed([7; 32]);
    let one = |seq: u64, sets: Vec<(u32, ArgSet)>| {
        env(
            "h1",
            "b1",
            seq,
            T0,
            vec![with_args(
                ctr(
                    &format!("c{seq}"),
                    "app:1",
                    T0,
                    T0 + 5_000,
                    None,
                    vec![sc(Abi::X86_64, SOCKET, 1, &[Phase::Image], T0)],
                ),
                sets,
            )],
        )
    };
    let good = one(1, vec![(SOCKET, set(&FAMILY_TYPE, &[&[2, 1]], 0))]);
    let outside = one(2, vec![(SOCKET, set(&FAMILY_TYPE, &[&[2, 0x11]], 0))]);
    let three = one(
        3,
        vec![(SOCKET, set(&[(0, 1), (1, 1), (2, 1)], &[&[1, 1, 1]], 0))],
    );
    // Two sets, the second patched to name the first's syscall (the
    // container's sets end the body but for its executed files, wire v8:
    // none, one byte; each set here is 11 bytes, its nr the second).
    let twice = one(
        4,
        vec![
            (SOCKET, set(&[(0, 0xff)], &[&[1]], 0)),
            (42, set(&[(0, 0xff)], &[&[1]], 0)),
        ],
    );
    let mut bytes: Vec<(String, Vec<u8>)> = [&good, &outside, &three]
        .iter()
        .map(|e| {
            let b = wire::encode_signed(e, &key).unwrap();
            (wire::message_id(e, &b), b)
        })
        .collect();
    let signed = wire::encode_signed(&twice, &key).unwrap();
    let body = &signed[..signed.len() - wire::TRAILER];
    let n = body.len();
    assert_eq!(body[n - 12..], [0, 42, 1, 0, 251, 255, 0, 1, 1, 1, 0, 0]);
    let mut patched = body.to_vec();
    patched[n - 11] = SOCKET as u8;
    let patched = resign(&patched, &key);
    bytes.push((wire::message_id(&twice, &patched), patched));

    let publisher = Publisher::connect(&broker).await.unwrap();
    for (id, b) in &bytes {
        publisher.publish(id, b).await.unwrap();
    }
    let cfg = AggregatorConfig {
        batch_max_messages: 100,
        batch_max_wait: Duration::from_millis(300),
        retry_max_backoff: Duration::from_millis(200),
        enrolled_hosts: None,
    };
    let metrics = IngestMetrics::default();
    let mut consumer = Consumer::connect(&broker).await.unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let watch = async {
        let deadline = Instant::now() + Duration::from_secs(30);
        while metrics.acked.load(Ordering::Relaxed) < 4 && Instant::now() < deadline {
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
            None,
            stopped
        ),
        watch
    );
    assert_eq!(
        [
            metrics.acked.load(Ordering::Relaxed),
            metrics.dead_lettered.load(Ordering::Relaxed),
            metrics.messages.load(Ordering::Relaxed)
        ],
        [4, 3, 1],
        "acked, dead-lettered, stored"
    );
    let obs = store.image_observations("app:1").await.unwrap().unwrap();
    assert_eq!(obs.containers, 1);
    assert_eq!(
        obs.args.values,
        [value(SOCKET, &FAMILY_TYPE, &[2, 1], 1, 1)]
    );
    let mut dead = Consumer::connect_dead_letter(&broker).await.unwrap();
    let got = dead.fetch(10, Duration::from_secs(1)).await.unwrap();
    let mut got: Vec<_> = got
        .iter()
        .map(|d| (d.msg_id.clone().unwrap(), d.reason.clone().unwrap()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (
                bytes[1].0.clone(),
                "version-8 message out of range: container 0 args of x86_64 41: argument 1 value 0x11 has bits outside its mask 0xf".to_string()
            ),
            (
                bytes[2].0.clone(),
                "version-8 message out of range: container 0 args of x86_64 41: 3 argument fields (1 to 2)".to_string()
            ),
            (
                bytes[3].0.clone(),
                "malformed version-8 body: arguments of syscall (x86_64, 41) listed twice in one container".to_string()
            ),
        ]
    );
}
