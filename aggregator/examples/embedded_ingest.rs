//! What the embedded store's ingest costs per envelope on a steady host:
//! 50 containers of 5 images, 40 syscalls each, no new syscall after the
//! first interval (so 200 `calls` rows, 50 `containers` rows, and no
//! `incidence` row per envelope), one envelope per insert as `sandmine
//! standalone` does. Measures the cost of migration 3's `calls_hourly`
//! upsert (benchmarks/analytics/README.md).
//!
//!   cargo run --release -p aggregator --example embedded_ingest -- [ENVELOPES]

use aggregator::store::{EmbeddedConfig, Store, StoreConfig};
use schemas::wire::{ContainerDelta, ContainerRef, Envelope, SeccompFilter, SyscallDelta};
use schemas::{Abi, Phase, PhaseSet};
use std::time::Instant;

fn envelope(seq: u64, t0: u64) -> Envelope {
    let start = t0 + (seq - 1) * 10_000;
    let containers = (0..50)
        .map(|k| ContainerDelta {
            container: ContainerRef {
                runtime: "docker".into(),
                id: format!("c{k}"),
                image: format!("img{}", k % 5),
                image_digest: String::new(),
                pod: None,
                seccomp: SeccompFilter::Unknown,
            },
            started_at_ms: t0,
            last_seen_ms: start + 10_000,
            exited_at_ms: None,
            incomplete: false,
            unverified: false,
            denials: Default::default(),
            args: Default::default(),
            executed: Default::default(),
            syscalls: (0..40)
                .map(|nr| SyscallDelta {
                    abi: Abi::X86_64,
                    nr,
                    calls: 1 + u64::from(nr),
                    phases: PhaseSet(Phase::Image.bit()),
                    first_seen_ms: t0 + 5,
                })
                .collect(),
        })
        .collect();
    Envelope {
        host_id: "host".into(),
        boot_id: "boot".into(),
        seq,
        interval_start_ms: start,
        interval_end_ms: start + 10_000,
        containers,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let dir = std::env::temp_dir().join(format!("embedded-ingest-{}", std::process::id()));
    let cfg = StoreConfig::Embedded(EmbeddedConfig {
        path: dir.join("store.db"),
    });
    let store = Store::open(&cfg).await.expect("open");
    // An hour boundary, so that the run spans n * 10 s / 3600 s hours.
    let t0 = 472_224 * 3_600_000;
    let envs: Vec<Envelope> = (1..=n).map(|s| envelope(s, t0)).collect();
    store.insert(&envs[..1]).await.expect("insert");
    let t = Instant::now();
    for e in &envs[1..] {
        store.insert(std::slice::from_ref(e)).await.expect("insert");
    }
    let secs = t.elapsed().as_secs_f64();
    let per = secs * 1e6 / (n - 1) as f64;
    let size = std::fs::metadata(dir.join("store.db")).map_or(0, |m| m.len());
    println!(
        "{} steady envelopes (200 calls + 50 containers rows each), one per insert: {secs:.3} s, {per:.0} us/envelope, store file {size} bytes",
        n - 1
    );
    let _ = std::fs::remove_dir_all(&dir);
}
