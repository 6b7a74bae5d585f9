//! Growth of the embedded store per host per day (benchmarks/retention/):
//! HOSTS steady hosts, each sending one envelope per 10 s for DAYS days
//! (8,640 a day), each envelope 50 running containers of 5 images calling
//! the same 40 syscalls (no new syscall: 200 `calls` rows, 50 `containers`
//! rows, and the hourly refresh of every container's `incidence` in the
//! one interval per hour that ends in a new hour). Prints the file size
//! (after a checkpoint) and the rows per table at the end of each day.
//!
//!   cargo run -p aggregator --example store_growth -- [HOSTS] [DAYS]

use aggregator::store::{EmbeddedConfig, EmbeddedStore};
use schemas::wire::{ContainerDelta, ContainerRef, Envelope, SeccompFilter, SyscallDelta};
use schemas::{Abi, Phase, PhaseSet};

const DAY_ENVELOPES: u64 = 8_640;

fn envelope(host: u64, seq: u64, t0: u64) -> Envelope {
    let start = t0 + (seq - 1) * 10_000;
    let containers = (0..50)
        .map(|k| ContainerDelta {
            container: ContainerRef {
                runtime: "docker".into(),
                id: format!("{host:02}c{k:02}0123456789abcdef0123456789abcdef0123456789abcdef0123"),
                image: format!("registry.example/team/img{}:1.0", k % 5),
                image_digest: format!("sha256:{:064x}", k % 5),
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
        host_id: format!("host-{host:04}.example"),
        boot_id: format!("{host:08x}-0000-4000-8000-000000000000"),
        seq,
        interval_start_ms: start,
        interval_end_ms: start + 10_000,
        containers,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // A bad argument is an error, never silently the default: the figure
    // it prints must be for the run asked for.
    let arg = |i: usize, name: &str, d: u64| match std::env::args().nth(i) {
        None => d,
        Some(a) => match a.parse::<u64>() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!("store_growth: {name} must be a positive integer, not {a:?}");
                std::process::exit(2);
            }
        },
    };
    let (hosts, days) = (arg(1, "HOSTS", 2), arg(2, "DAYS", 2));
    let dir = std::env::temp_dir().join(format!("store-growth-{}", std::process::id()));
    let path = dir.join("store.db");
    let store = EmbeddedStore::open(&EmbeddedConfig { path: path.clone() })
        .await
        .expect("open");
    // Midnight UTC.
    let t0 = 19_700 * 24 * 3_600_000;
    println!("hosts {hosts}, 8640 envelopes per host per day, 50 containers x 40 syscalls each");
    let mut prev = 0u64;
    for day in 0..days {
        for seq in day * DAY_ENVELOPES + 1..=(day + 1) * DAY_ENVELOPES {
            let batch: Vec<Envelope> = (0..hosts).map(|h| envelope(h, seq, t0)).collect();
            store.insert(&batch).await.expect("insert");
        }
        // The WAL folded into the file, so that its size is the store's.
        let c = rusqlite::Connection::open(&path).expect("reopen");
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .expect("checkpoint");
        drop(c);
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        let rows = store.table_rows().await.expect("rows");
        let rows: Vec<String> = rows.iter().map(|(t, n)| format!("{t}={n}")).collect();
        println!(
            "day {}: file {size} bytes; this day {} bytes, {} bytes per host; rows {}",
            day + 1,
            size - prev,
            (size - prev) / hosts,
            rows.join(" ")
        );
        prev = size;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
