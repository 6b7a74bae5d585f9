//! Benchmark of the compiler: 10,000 distinct images of realistic shape,
//! every format rendered in memory. Run with
//! `cargo run --release -p policy-compiler --example bench_compile [IMAGES] [THREADS]`
//! (`benchmarks/compile/run.sh` records a run). The inputs are built first,
//! in parallel and outside the timing (about 5 GB for 10,000 images); then
//! `BENCH_ROUNDS` rounds (default 5) each compile all of them on 1 thread
//! and on THREADS threads, in a random order. It prints every run, the
//! median wall time, the CPU per image and the peak memory.
//!
//! Other modes: `... 1000 1 stages [K]`: per-stage times over a pool of 200
//! images, each image K times in a row; `... 200 1 digest`: a hash of every
//! output of the pool under four policies, for `compare.sh`;
//! `... 200 1 dump DIR`: the pool as JSON files (the golden test's inputs).
//!
//! The inputs are synthetic and deterministic (image i is built from seed
//! i + 1 with a fixed PRNG; the pool is images 0 to 199). Each image has 40-120
//! syscalls, 20-500 containers on 1-50 hosts; 70% of an image's syscalls
//! are common (each container uses each with probability 0.85-1), the rest
//! rare (0.005-0.3); 10% of the images also use i386 calls; one container
//! in eight ran under `runtime/default`; a few set-up-only calls.

use policy_compiler::policy::Policy;
use policy_compiler::{compile_image, CompileError, Compiled, ResolvedPolicy};
use schemas::fleet::{ContainerIncidence, ImageObservations, IncidenceEntry, SyscallTotals};
use schemas::{syscalls, Abi, Phase, PhaseSet};
use std::collections::BTreeMap;
use std::time::Instant;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const H: u64 = 3_600_000;

fn synth(seed: u64) -> ImageObservations {
    let mut r = Rng(seed);
    let n_sys = r.range(40, 120) as usize;
    let n_cont = r.range(20, 500) as usize;
    let n_hosts = r.range(1, 50) as usize;
    let with_i386 = r.range(0, 9) == 0;
    // Pick distinct syscalls of the x86_64 table.
    let table = syscalls::table(Abi::X86_64);
    let mut chosen: Vec<(Abi, u32, f64, u8)> = Vec::new();
    let mut used = std::collections::BTreeSet::new();
    while chosen.len() < n_sys {
        let (nr, _) = table[r.range(0, table.len() as u64 - 1) as usize];
        if !used.insert(nr) {
            continue;
        }
        let common = chosen.len() < n_sys * 7 / 10;
        let p = if common {
            0.85 + 0.15 * r.unit()
        } else {
            0.005 + 0.295 * r.unit()
        };
        // Phase: mostly the image's, some the runtime's, a few set-up only.
        let phase = match r.range(0, 19) {
            0 => Phase::Setup,
            1 | 2 => Phase::Runtime,
            _ => Phase::Image,
        };
        chosen.push((Abi::X86_64, nr, p, phase.bit()));
    }
    if with_i386 {
        for nr in [3u32, 4, 5, 6, 102, 240] {
            chosen.push((Abi::I386, nr, 0.5, Phase::Image.bit()));
        }
    }
    let t0 = 1_700_000_000_000u64;
    let mut incidence = Vec::with_capacity(n_cont);
    let mut totals: BTreeMap<(Abi, u32), SyscallTotals> = BTreeMap::new();
    for i in 0..n_cont {
        let start = t0 + i as u64 * H / 4;
        let end = start + r.range(60_000, 6 * H);
        let host = format!("host-{:02}", r.range(0, n_hosts as u64 - 1));
        let mut entries = Vec::with_capacity(chosen.len());
        for (abi, nr, p, ph) in &chosen {
            if r.unit() < *p {
                let first = start + r.range(0, 60_000);
                entries.push(IncidenceEntry {
                    abi: *abi,
                    nr: *nr,
                    phases: PhaseSet(
                        *ph | if *ph == Phase::Image.bit() {
                            Phase::Setup.bit()
                        } else {
                            0
                        },
                    ),
                    first_seen_ms: first,
                    last_seen_ms: end,
                });
                let t = totals.entry((*abi, *nr)).or_insert(SyscallTotals {
                    abi: *abi,
                    nr: *nr,
                    hosts: 0,
                    containers: 0,
                    calls: 0,
                    first_seen_ms: u64::MAX,
                    last_seen_ms: 0,
                    phases: PhaseSet(0),
                });
                t.containers += 1;
                t.hosts = t.hosts.max(1);
                t.calls += r.range(1, 10_000);
                t.first_seen_ms = t.first_seen_ms.min(first);
                t.last_seen_ms = t.last_seen_ms.max(end);
                t.phases = t.phases.union(PhaseSet(*ph));
            }
        }
        entries.sort_by_key(|e| (e.abi, e.nr));
        incidence.push(ContainerIncidence {
            host_id: host,
            boot_id: "b".into(),
            container_id: format!("{seed:08x}{i:05}"),
            started_at_ms: start,
            last_seen_ms: end,
            seccomp: if i % 8 == 0 {
                "runtime/default".into()
            } else {
                "unconfined".into()
            },
            incomplete: false,
            unverified: false,
            syscalls: entries,
        });
    }
    let container_seconds = incidence
        .iter()
        .map(|c| (c.last_seen_ms - c.started_at_ms) / 1000)
        .sum();
    ImageObservations {
        image: format!(
            "registry.example/team-{}/service-{seed}:v{}",
            seed % 17,
            seed % 5
        ),
        digests: vec![format!("sha256:{seed:064x}")],
        hosts: n_hosts as u64,
        containers: n_cont as u64,
        container_seconds,
        first_seen_ms: t0,
        last_seen_ms: t0 + n_cont as u64 * H,
        syscalls: totals.into_values().collect(),
        incidence,
        out_of_range: 0,
        args: Default::default(),
        executed: Default::default(),
    }
}

fn compile(
    obs: &ImageObservations,
    policy: &ResolvedPolicy,
    now: u64,
) -> Result<Compiled, CompileError> {
    compile_image(obs, policy, now)
}

/// `o` with its lists reversed, two unnamed x86_64 numbers and an x32 call
/// added to its last container.
fn with_unnamed_and_x32(o: &ImageObservations) -> ImageObservations {
    let mut v = o.clone();
    v.incidence.reverse();
    v.syscalls.reverse();
    if let Some(c) = v.incidence.first_mut() {
        for (abi, nr) in [
            (Abi::X86_64, 1000u32),
            (Abi::X86_64, 2000),
            (Abi::X32, 0x4000_0000 | 1),
        ] {
            c.syscalls.push(IncidenceEntry {
                abi,
                nr: nr & 0x3fff_ffff,
                phases: PhaseSet(Phase::Image.bit()),
                first_seen_ms: c.started_at_ms,
                last_seen_ms: c.last_seen_ms,
            });
        }
    }
    v
}

/// CPU time of the calling thread in ns (`/proc/thread-self/schedstat`,
/// first field), so that a shared, loaded machine can be compared by the
/// CPU each compilation took rather than by wall time alone.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|f| f.parse().ok()))
        .unwrap_or(0)
}

/// Every output of every pool image under several policies, hashed: two
/// builds of the compiler must print the same lines (the byte-identity
/// check of `compare.sh`).
fn digest(pool: &[ImageObservations], now: u64) {
    use policy_compiler::policy::Runtime;
    use std::fmt::Write as _;
    let default = Policy::default();
    let mut single = Policy::default();
    single.syscall.min_hosts = 1;
    single.syscall.min_containers = 1;
    single.enforce.min_hosts = 1;
    let mut strict = Policy::default();
    strict.syscall.min_container_share = 0.2;
    strict.syscall.min_hosts = 5;
    strict.must_allow = vec!["mount".into(), "uselib".into(), "getpid".into()];
    strict.must_deny = vec![
        "clone3".into(),
        "ptrace".into(),
        "getppid".into(),
        "openat2".into(),
    ];
    let mut base = BTreeMap::new();
    base.insert(
        Abi::X86_64,
        vec![
            "read".to_string(),
            "ptrace".to_string(),
            "fstat".to_string(),
        ],
    );
    base.insert(Abi::I386, vec!["read".to_string()]);
    strict.runtime = Some(Runtime {
        name: policy_compiler::policy::RuntimeName::Crun,
        version: "1.9".into(),
        base,
    });
    let mut notready = Policy::default();
    notready.log.min_containers = 300;
    notready.enforce.min_containers = 300;
    notready.baseline = false;
    let policies = [default, single, strict, notready].map(|p| match p.resolve() {
        Ok(r) => r,
        Err(e) => panic!("policy: {e}"),
    });
    let mut all = String::new();
    for (i, o) in pool.iter().enumerate() {
        // Variants: as generated; reversed lists plus an unnamed number and
        // an x32 call, so that the unnamed and other-ABI paths run too.
        let v = with_unnamed_and_x32(o);
        for (k, obs) in [o, &v].into_iter().enumerate() {
            for (j, p) in policies.iter().enumerate() {
                let line = match compile(obs, p, now) {
                    Ok(c) => {
                        let mut h = Vec::new();
                        h.extend_from_slice(format!("{:?}", c.decision).as_bytes());
                        h.extend_from_slice(format!("{:?}", c.profile).as_bytes());
                        h.extend_from_slice(c.report_text.as_bytes());
                        // The report JSON by content (compact or pretty give
                        // the same value), and the files other than the
                        // reports (older builds also kept them in `files`).
                        let report: serde_json::Value =
                            serde_json::from_str(&c.report_json).unwrap_or_default();
                        h.extend_from_slice(report.to_string().as_bytes());
                        h.extend_from_slice(c.content_hash.as_bytes());
                        for (name, bytes) in &c.files {
                            if name.starts_with("report.") {
                                continue;
                            }
                            h.extend_from_slice(name.as_bytes());
                            h.extend_from_slice(bytes);
                        }
                        for abi in [Abi::X86_64, Abi::I386, Abi::X32] {
                            for n in ["read", "ptrace", "mount", "getpid", "clone3", "clone"] {
                                if let Some(nr) = syscalls::number(abi, n) {
                                    let key = schemas::SyscallKey { abi, nr };
                                    h.extend_from_slice(
                                        policy_compiler::explain(&c.decision, key).as_bytes(),
                                    );
                                }
                            }
                        }
                        format!(
                            "{} {}",
                            c.decision.state.as_str(),
                            policy_compiler::render::sha256(&h)
                        )
                    }
                    Err(e) => format!("error {e}"),
                };
                let _ = writeln!(all, "image {i} variant {k} policy {j}: {line}");
            }
        }
    }
    print!("{all}");
    println!("all: {}", policy_compiler::render::sha256(all.as_bytes()));
}

fn main() {
    let mut args = std::env::args().skip(1);
    let images: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let threads: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2).max(1);
    let mode = args.next();
    let now = 1_700_000_000_000u64 + 400 * H;
    let policy = match Policy::default().resolve() {
        Ok(p) => p,
        Err(e) => panic!("policy: {e}"),
    };

    match mode.as_deref() {
        Some("dump") => {
            // `... N 1 dump DIR`: the first N pool images as JSON, the
            // inputs of the golden test (policy-compiler/tests/golden.rs).
            let pool: Vec<ImageObservations> = (0..200u64).map(|s| synth(s + 1)).collect();
            let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| ".".into()));
            // Also the first image's variant of `digest` (reversed lists,
            // two unnamed numbers and an x32 call).
            let variant = with_unnamed_and_x32(&pool[0]);
            let named = pool
                .iter()
                .take(images)
                .enumerate()
                .map(|(i, o)| (format!("pool-{i:03}.json"), o))
                .chain([("variant-000.json".to_string(), &variant)]);
            for (name, o) in named {
                let mut json = serde_json::to_string(o).unwrap_or_default();
                json.push('\n');
                if let Err(e) = std::fs::write(dir.join(name), json) {
                    panic!("writing {}: {e}", dir.display());
                }
            }
        }
        Some("digest") => {
            let pool: Vec<ImageObservations> = (0..200u64).map(|s| synth(s + 1)).collect();
            digest(&pool, now);
        }
        Some("stages") => {
            // A 4th argument K compiles each image K times in a row (its
            // input then comes from the cache after the first time).
            let repeat: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1).max(1);
            let pool: Vec<ImageObservations> = (0..200u64).map(|s| synth(s + 1)).collect();
            stages(&pool, &policy, now, images, repeat);
        }
        _ => bench(images, threads, &policy, now),
    }
}

/// The benchmark: `images` distinct images, built before any timing (in
/// parallel), then compiled in rounds; each round runs 1 thread and
/// `threads` threads in a random order (`BENCH_ROUNDS`, default 5). Prints
/// every run, the medians, the CPU per image and the peak memory.
fn bench(images: usize, threads: usize, policy: &ResolvedPolicy, now: u64) {
    let t = Instant::now();
    let inputs: Vec<ImageObservations> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                s.spawn(move || {
                    (0..images)
                        .filter(|i| i % threads == k)
                        .map(|i| (i, synth(i as u64 + 1)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<(usize, ImageObservations)> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect();
        all.sort_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, o)| o).collect()
    });
    let entries: usize = inputs
        .iter()
        .map(|o| o.incidence.iter().map(|c| c.syscalls.len()).sum::<usize>())
        .sum();
    println!(
        "input: {} distinct images ({} incidence entries, {:.1} per image), built in {:.2} s (not timed); peak RSS so far {} MiB",
        inputs.len(),
        entries,
        entries as f64 / inputs.len().max(1) as f64,
        t.elapsed().as_secs_f64(),
        peak_rss_mib()
    );
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    let mut rng = Rng(0x5eed);
    let mut results: BTreeMap<usize, Vec<(f64, f64)>> = BTreeMap::new();
    let mut states = [0usize; 3];
    let mut bytes = 0usize;
    for round in 0..rounds {
        let mut order = [1, threads];
        if rng.range(0, 1) == 1 {
            order.swap(0, 1);
        }
        for th in order {
            let (wall, cpu, st, b) = run(&inputs, th, policy, now);
            println!(
                "round {round} threads {th}: {wall:.3} s wall, {cpu:.3} s CPU ({:.1} us CPU/image)",
                cpu * 1e6 / images as f64
            );
            results.entry(th).or_default().push((wall, cpu));
            states = st;
            bytes = b;
        }
    }
    for (th, runs) in &results {
        let mut walls: Vec<f64> = runs.iter().map(|r| r.0).collect();
        let mut cpus: Vec<f64> = runs.iter().map(|r| r.1).collect();
        walls.sort_by(f64::total_cmp);
        cpus.sort_by(f64::total_cmp);
        let (wmin, wmax) = (walls[0], walls[walls.len() - 1]);
        println!(
            "threads {th}: median {:.3} s wall (min {wmin:.3}, max {wmax:.3}, {} runs), median {:.1} us CPU/image",
            walls[walls.len() / 2],
            walls.len(),
            cpus[cpus.len() / 2] * 1e6 / images as f64
        );
    }
    println!(
        "states enforce/log/not_ready = {}/{}/{}; {:.1} MB rendered per run; peak RSS {} MiB",
        states[0],
        states[1],
        states[2],
        bytes as f64 / 1e6,
        peak_rss_mib()
    );
}

/// Compile every input on `threads` threads (contiguous parts): wall
/// seconds, CPU seconds of the workers, states, bytes rendered.
fn run(
    inputs: &[ImageObservations],
    threads: usize,
    policy: &ResolvedPolicy,
    now: u64,
) -> (f64, f64, [usize; 3], usize) {
    let t = Instant::now();
    let chunk = inputs.len().div_ceil(threads);
    let results: Vec<([usize; 3], usize, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = inputs
            .chunks(chunk.max(1))
            .map(|part| {
                s.spawn(move || {
                    let cpu0 = thread_cpu_ns();
                    let mut states = [0usize; 3];
                    let mut bytes = 0usize;
                    for o in part {
                        match compile(o, policy, now) {
                            Ok(c) => {
                                states[c.decision.state as usize] += 1;
                                bytes += c.files.values().map(Vec::len).sum::<usize>()
                                    + c.report_text.len()
                                    + c.report_json.len();
                            }
                            Err(e) => panic!("{}: {e}", o.image),
                        }
                    }
                    (states, bytes, thread_cpu_ns().saturating_sub(cpu0))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(([0; 3], 0, 0)))
            .collect()
    });
    let mut states = [0usize; 3];
    let mut bytes = 0;
    let mut cpu = 0u64;
    for (s, b, c) in results {
        cpu += c;
        for i in 0..3 {
            states[i] += s[i];
        }
        bytes += b;
    }
    (t.elapsed().as_secs_f64(), cpu as f64 / 1e9, states, bytes)
}

/// The process's peak resident memory (`VmHWM`), in MiB.
fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

/// Per-stage timings of `n` compilations from the pool.
fn stages(pool: &[ImageObservations], policy: &ResolvedPolicy, now: u64, n: usize, repeat: usize) {
    use policy_compiler::{compile as fleet, decide, render};
    let mut t = [0f64; 7];
    for i in 0..n {
        let o = &pool[(i / repeat) % pool.len()];
        let s = Instant::now();
        let d = decide::decide(o, policy, now);
        t[0] += s.elapsed().as_secs_f64();
        let s = Instant::now();
        let p = render::oci_profile(&d);
        t[1] += s.elapsed().as_secs_f64();
        let s = Instant::now();
        let j = p.to_json().unwrap_or_default();
        let h = render::sha256(j.as_bytes());
        t[2] += s.elapsed().as_secs_f64();
        let s = Instant::now();
        for (_, host) in render::host_families(&d) {
            let _ = render::bpf_bytes(&p, host);
        }
        t[3] += s.elapsed().as_secs_f64();
        let s = Instant::now();
        let _ = render::spo_yaml(&d, &p, &h);
        let _ = render::systemd_dropin(&d, &p, &h);
        t[4] += s.elapsed().as_secs_f64();
        let s = Instant::now();
        let _ = fleet::report_text(&d, &h);
        t[5] += s.elapsed().as_secs_f64();
        let s = Instant::now();
        let _ = fleet::report_json(&d, &h);
        t[6] += s.elapsed().as_secs_f64();
    }
    println!(
        "stages (s): decide {:.3} oci {:.3} json+hash {:.3} bpf {:.3} yaml+systemd {:.3} report_text {:.3} report_json {:.3}",
        t[0], t[1], t[2], t[3], t[4], t[5], t[6]
    );
}
