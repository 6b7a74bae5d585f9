//! Envelope builders and store helpers shared by the store tests.
#![allow(dead_code)]

pub mod analytics_fleet;

use aggregator::store::{ClickHouseConfig, EmbeddedConfig, Store, StoreConfig};
use schemas::wire::{ContainerDelta, ContainerRef, Envelope, PodRef, SeccompFilter, SyscallDelta};
use schemas::{Abi, Phase, PhaseSet};
use std::collections::HashMap;

pub const H: u64 = 3_600_000;
/// 800 s into an hour: hand-made intervals cross no hour boundary.
pub const T0: u64 = 1_700_000_000_000;

pub fn ph(p: &[Phase]) -> PhaseSet {
    let mut s = PhaseSet::default();
    for x in p {
        s.insert(*x);
    }
    s
}

pub fn sc(abi: Abi, nr: u32, calls: u64, phases: &[Phase], first_seen_ms: u64) -> SyscallDelta {
    SyscallDelta {
        abi,
        nr,
        calls,
        phases: ph(phases),
        first_seen_ms,
    }
}

pub fn ctr(
    id: &str,
    image: &str,
    started: u64,
    last: u64,
    exited: Option<u64>,
    syscalls: Vec<SyscallDelta>,
) -> ContainerDelta {
    ContainerDelta {
        container: ContainerRef {
            runtime: "docker".into(),
            id: id.into(),
            image: image.into(),
            image_digest: String::new(),
            pod: None,
            seccomp: SeccompFilter::Unknown,
        },
        started_at_ms: started,
        last_seen_ms: last,
        exited_at_ms: exited,
        incomplete: false,
        unverified: false,
        denials: Default::default(),
        args: Default::default(),
        syscalls,
        executed: Default::default(),
    }
}

pub fn env(
    host: &str,
    boot: &str,
    seq: u64,
    start: u64,
    containers: Vec<ContainerDelta>,
) -> Envelope {
    Envelope {
        host_id: host.into(),
        boot_id: boot.into(),
        seq,
        interval_start_ms: start,
        interval_end_ms: start + 10_000,
        containers,
    }
}

/// The hand-made fleet of `docs/STORE.md`'s worked example: two hosts,
/// images nginx:1 (3 containers) and redis:7 (1 container).
pub fn hand_made() -> Vec<Envelope> {
    use Abi::*;
    use Phase::*;
    let mut c3 = ctr(
        "c3",
        "nginx:1",
        T0 + 500,
        T0 + 10_000,
        None,
        vec![
            sc(X86_64, 0, 4, &[Image], T0 + 700),
            sc(I386, 20, 2, &[Image], T0 + 600),
        ],
    );
    c3.container.image_digest = "sha256:aa".into();
    c3.container.seccomp = SeccompFilter::RuntimeDefault;
    c3.container.pod = Some(PodRef {
        namespace: "web".into(),
        pod: "nginx-0".into(),
        container: "nginx".into(),
    });
    vec![
        env(
            "h1",
            "b1",
            1,
            T0,
            vec![
                ctr(
                    "c1",
                    "nginx:1",
                    T0 + 1000,
                    T0 + 10_000,
                    None,
                    vec![
                        sc(X86_64, 0, 5, &[Image], T0 + 2000),
                        sc(X86_64, 59, 1, &[Runtime], T0 + 1500),
                    ],
                ),
                ctr(
                    "c2",
                    "nginx:1",
                    T0 + 3000,
                    T0 + 10_000,
                    None,
                    vec![sc(X86_64, 0, 7, &[Image], T0 + 3500)],
                ),
                ctr(
                    "c4",
                    "redis:7",
                    T0,
                    T0 + 10_000,
                    None,
                    vec![sc(X86_64, 0, 100, &[Image], T0 + 100)],
                ),
            ],
        ),
        env(
            "h1",
            "b1",
            2,
            T0 + 10_000,
            vec![
                ctr(
                    "c1",
                    "nginx:1",
                    T0 + 1000,
                    T0 + 20_000,
                    None,
                    vec![
                        sc(X86_64, 0, 10, &[Image], T0 + 2000),
                        sc(X86_64, 1, 3, &[Image], T0 + 12_000),
                    ],
                ),
                ctr(
                    "c2",
                    "nginx:1",
                    T0 + 3000,
                    T0 + 15_000,
                    Some(T0 + 15_000),
                    vec![sc(X86_64, 0, 1, &[Image], T0 + 3500)],
                ),
                ctr("c4", "redis:7", T0, T0 + 20_000, None, vec![]),
            ],
        ),
        env("h2", "b9", 1, T0, vec![c3]),
    ]
}

/// Deterministic pseudo-random fleet: `hosts` hosts x 2 boots x `seqs`
/// intervals, 4 containers per host-boot over 3 images, crossing an hour
/// boundary, with new syscalls over time, exits, and some non-Image phases.
pub fn generated(hosts: usize, seqs: u64) -> Vec<Envelope> {
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let images = ["nginx:1", "redis:7", "postgres:16"];
    // Starts 100 s before an hour boundary.
    let t0 = H * 472_223 - 100_000;
    let mut out = Vec::new();
    for h in 0..hosts {
        for b in 0..2u64 {
            let boot_start = t0 + b * (seqs + 1) * 10_000;
            let mut first: HashMap<(usize, u32, Abi), u64> = HashMap::new();
            for seq in 1..=seqs {
                let start = boot_start + (seq - 1) * 10_000;
                let end = start + 10_000;
                let mut containers = Vec::new();
                for k in 0..4usize {
                    let started = boot_start + k as u64 * 1000;
                    // Container 3 exits in interval 5.
                    if k == 3 && seq > 5 {
                        continue;
                    }
                    let exited = (k == 3 && seq == 5).then_some(start + 4321);
                    let last = exited.unwrap_or(end);
                    let mut syscalls = Vec::new();
                    for nr in 0..12u32 {
                        if next() % 3 == 0 {
                            continue;
                        }
                        let abi = if nr == 11 { Abi::I386 } else { Abi::X86_64 };
                        let f = *first.entry((k, nr, abi)).or_insert(start + next() % 10_000);
                        let phases = if next() % 10 == 0 {
                            ph(&[Phase::Image, Phase::Unfiltered])
                        } else if seq == 1 {
                            ph(&[Phase::Runtime])
                        } else {
                            ph(&[Phase::Image])
                        };
                        syscalls.push(sc(abi, nr, 1 + next() % 1000, &[], f));
                        if let Some(s) = syscalls.last_mut() {
                            s.phases = phases;
                        }
                    }
                    syscalls.sort_by_key(|s| (s.abi, s.nr));
                    let mut c = ctr(
                        &format!("h{h}-k{k}"),
                        images[k % 3],
                        started,
                        last,
                        exited,
                        syscalls,
                    );
                    if k % 2 == 0 {
                        c.container.image_digest = format!("sha256:{}", k % 3);
                        c.container.seccomp = SeccompFilter::Profile("sha256:p".into());
                    }
                    containers.push(c);
                }
                out.push(Envelope {
                    host_id: format!("host-{h}"),
                    boot_id: format!("boot-{b}"),
                    seq,
                    interval_start_ms: start,
                    interval_end_ms: end,
                    containers,
                });
            }
        }
    }
    out
}

pub fn ch_config(ch: &testsvc::ClickHouse) -> ClickHouseConfig {
    ClickHouseConfig {
        url: ch.url(),
        timeout_secs: 10,
        connect_timeout_secs: 2,
        ..ClickHouseConfig::default()
    }
}

pub async fn open_ch(ch: &testsvc::ClickHouse) -> Store {
    match Store::open(&StoreConfig::ClickHouse(ch_config(ch))).await {
        Ok(s) => s,
        Err(e) => panic!("open ClickHouse store: {e}"),
    }
}

pub async fn open_embedded(dir: &std::path::Path) -> Store {
    let cfg = StoreConfig::Embedded(EmbeddedConfig {
        path: dir.join("store.db"),
    });
    match Store::open(&cfg).await {
        Ok(s) => s,
        Err(e) => panic!("open embedded store: {e}"),
    }
}

/// All answers of a store, for equality checks.
pub async fn snapshot(
    s: &Store,
) -> (
    Vec<String>,
    Vec<schemas::fleet::ImageObservations>,
    Vec<aggregator::store::TotalsRow>,
) {
    let images = s.images().await.unwrap();
    let mut obs = Vec::new();
    for i in &images {
        obs.push(s.image_observations(i).await.unwrap().unwrap());
    }
    (images, obs, s.syscall_totals().await.unwrap())
}
