//! How many containers an image needs to reach `enforce`, with and without
//! a known reachable set, on the same generated fleets, and how many
//! held-out containers each enforced profile would break
//! (`benchmarks/reach-confidence/run.sh`; issue 10, "Confidence").
//!
//! `cargo run --release -p policy-compiler --example reach_confidence -- [SEEDS [HELD_OUT]]`
//!
//! The model, per seed (a seeded generator, no dependency):
//! - the image really uses `CORE` syscalls in every container and `RARE`
//!   more, each with its own per-container probability, heavy-tailed
//!   (`0.6 / rank^1.3`): admin paths, reloads and error paths that most
//!   containers never take;
//! - its binaries can reach every syscall it uses plus `EXTRA` more that it
//!   never uses (a static analysis over-approximates, it does not miss);
//! - containers start one an hour, on 10 hosts in turn, and live 2 h;
//! - the default policy (`reachable = "log"`).
//!
//! For N = 1, 2, ... containers the image is compiled at the end of the
//! N-th container's life, once without reachability and once with it. The
//! first N at which the state is `enforce` is the figure. At that N, each
//! enforced profile meets `HELD_OUT` new containers drawn from the same
//! distribution: a container breaks when it uses a syscall the profile
//! neither allows nor logs.

use policy_compiler::compile::compile_image_with;
use policy_compiler::decide::State;
use policy_compiler::policy::Policy;
use policy_compiler::reachable::{AnalysedFile, Reachability};
use schemas::fleet::{ContainerIncidence, ImageObservations, IncidenceEntry};
use schemas::{syscalls, Abi, Phase, PhaseSet, SyscallKey};
use std::collections::BTreeSet;

const H: u64 = 3_600_000;
const T0: u64 = 1_700_000_000_000;
const HOSTS: u64 = 10;
const MAX_CONTAINERS: usize = 600;

/// Ordinary syscalls (in Docker's default, none in the high-risk
/// catalogue), in a fixed order: the first `CORE` are used by every
/// container, the next `RARE` rarely, the rest only reachable.
const NAMES: &[&str] = &[
    "read",
    "write",
    "openat",
    "close",
    "mmap",
    "munmap",
    "mprotect",
    "brk",
    "futex",
    "exit_group",
    "rt_sigaction",
    "rt_sigprocmask",
    "newfstatat",
    "fstat",
    "lseek",
    "getpid",
    "epoll_wait",
    "epoll_ctl",
    "accept4",
    "recvfrom",
    "sendto",
    "socket",
    "bind",
    "listen",
    "setsockopt",
    "getsockname",
    "fcntl",
    "pread64",
    "pwrite64",
    "getrandom",
    "clock_nanosleep",
    "nanosleep",
    "madvise",
    "set_robust_list",
    "rseq",
    "prlimit64",
    "getuid",
    "geteuid",
    "getgid",
    "getegid", // CORE = 40 ends here
    "kill",
    "wait4",
    "fsync",
    "fdatasync",
    "rename",
    "fchmod",
    "writev",
    "readv",
    "unlink",
    "mkdir",
    "rmdir",
    "dup2",
    "pipe2",
    "getdents64",
    "statfs",
    "fadvise64",
    "ftruncate",
    "sigaltstack",
    "gettid",
    "tgkill",
    "chown",
    "umask",
    "renameat2",
    "unlinkat",
    "utimensat",
    "sendfile",
    "getsockopt",
    "shutdown",
    "poll",
    "select", // RARE = 30 ends here
    "alarm",
    "pause",
    "getitimer",
    "setitimer",
    "truncate",
    "link",
    "symlink",
    "readlink",
    "chmod",
    "lchown",
    "getrusage",
    "times",
    "getppid",
    "setsid",
    "getpgid",
    "getsid",
    "flock",
    "msync",
    "mincore",
    "sched_yield",
    "mremap",
    "pipe",
    "dup3",
    "eventfd2",
    "timerfd_create",
    "timerfd_settime",
    "inotify_init1",
    "inotify_add_watch",
    "splice",
    "tee",
    "sync",
    "syncfs",
    "creat",
    "mknod",
    "getcwd",
    "chdir",
    "fchdir",
    "access",
    "faccessat2",
    "fchownat",
];
const CORE: usize = 40;
const RARE: usize = 30;
const EXTRA: usize = 40;

/// splitmix64: a fixed, seeded stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn key(name: &str) -> SyscallKey {
    let nr = syscalls::number(Abi::X86_64, name)
        .unwrap_or_else(|| panic!("x86_64 has no syscall {name}"));
    SyscallKey {
        abi: Abi::X86_64,
        nr,
    }
}

/// One container's syscalls: the core, and each rare one with its own
/// probability (shuffled per seed so that the rare order differs).
fn draw(rng: &mut Rng, rare: &[(SyscallKey, f64)]) -> BTreeSet<SyscallKey> {
    let mut s: BTreeSet<SyscallKey> = NAMES[..CORE].iter().map(|n| key(n)).collect();
    for (k, p) in rare {
        if rng.unit() < *p {
            s.insert(*k);
        }
    }
    s
}

fn observations(containers: &[BTreeSet<SyscallKey>]) -> ImageObservations {
    let mut phases = PhaseSet::default();
    phases.insert(Phase::Image);
    let incidence = containers
        .iter()
        .enumerate()
        .map(|(i, used)| {
            let start = T0 + i as u64 * H;
            ContainerIncidence {
                host_id: format!("host-{}", i as u64 % HOSTS),
                boot_id: "boot".into(),
                container_id: format!("c{i:04}"),
                started_at_ms: start,
                last_seen_ms: start + 2 * H,
                seccomp: "unconfined".into(),
                incomplete: false,
                unverified: false,
                syscalls: used
                    .iter()
                    .map(|k| IncidenceEntry {
                        abi: k.abi,
                        nr: k.nr,
                        phases,
                        first_seen_ms: start,
                        last_seen_ms: start + H,
                    })
                    .collect(),
            }
        })
        .collect();
    ImageObservations::from_incidence("generated/app:1", incidence)
}

struct Outcome {
    containers: Option<usize>,
    broken: u64,
    running: usize,
}

fn first_enforce(
    fleet: &[BTreeSet<SyscallKey>],
    reach: Option<&Reachability>,
    held_out: &[BTreeSet<SyscallKey>],
) -> Outcome {
    let policy = Policy::default()
        .resolve()
        .expect("the default policy resolves");
    for n in 1..=fleet.len() {
        let obs = observations(&fleet[..n]);
        let now = T0 + (n as u64 - 1) * H + 2 * H;
        let c = compile_image_with(&obs, reach, &policy, now).expect("compile");
        if c.decision.state == State::Enforce {
            let running: BTreeSet<SyscallKey> = c
                .decision
                .allowed
                .iter()
                .chain(c.decision.logged.iter())
                .copied()
                .collect();
            let broken = held_out.iter().filter(|u| !u.is_subset(&running)).count() as u64;
            return Outcome {
                containers: Some(n),
                broken,
                running: running.len(),
            };
        }
    }
    Outcome {
        containers: None,
        broken: 0,
        running: 0,
    }
}

/// The positional argument `i` as a positive number, `default` when absent;
/// anything else ends the run with one line and exit status 2.
fn arg(i: usize, name: &str, default: u64) -> u64 {
    match std::env::args().nth(i) {
        None => default,
        Some(s) => match s.parse::<u64>() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!("reach_confidence: {name} must be a positive integer, not {s:?}");
                std::process::exit(2);
            }
        },
    }
}

fn main() {
    let seeds = arg(1, "SEEDS", 20);
    let held = arg(2, "HELD_OUT", 1000) as usize;
    assert_eq!(NAMES.len(), CORE + RARE + EXTRA, "the name table");
    for n in NAMES {
        assert!(
            policy_compiler::reachable::tierable(n),
            "{n} must be tierable (in Docker's default, not high-risk)"
        );
    }
    println!("# reach_confidence: containers to enforce, without and with a known reachable set");
    println!(
        "# model: {CORE} core syscalls in every container, {RARE} rare (p = 0.6/rank^1.3), {EXTRA} reachable never used; 1 container/h on {HOSTS} hosts, 2 h each; default policy (reachable = log); {held} held-out containers per enforced profile"
    );
    println!("seed,without_containers,without_running,without_broken,with_containers,with_running,with_broken");
    for seed in 1..=seeds {
        let mut rng = Rng(seed);
        // The rare syscalls in a per-seed order, each with its probability.
        let mut rare_names: Vec<&str> = NAMES[CORE..CORE + RARE].to_vec();
        for i in (1..rare_names.len()).rev() {
            let j = (rng.next() % (i as u64 + 1)) as usize;
            rare_names.swap(i, j);
        }
        let rare: Vec<(SyscallKey, f64)> = rare_names
            .iter()
            .enumerate()
            .map(|(r, n)| (key(n), 0.6 / ((r + 1) as f64).powf(1.3)))
            .collect();
        let fleet: Vec<BTreeSet<SyscallKey>> =
            (0..MAX_CONTAINERS).map(|_| draw(&mut rng, &rare)).collect();
        let held_out: Vec<BTreeSet<SyscallKey>> =
            (0..held).map(|_| draw(&mut rng, &rare)).collect();
        let reach = Reachability {
            syscalls: NAMES
                .iter()
                .map(|n| {
                    (
                        key(n),
                        format!("/usr/bin/app: {n}@GLIBC_2.2.5 -> libc.so.6"),
                    )
                })
                .collect(),
            files: vec![AnalysedFile {
                path: "/usr/bin/app".into(),
                ran: true,
                known: true,
                nonconst_sites: 0,
                syscalls: NAMES.len(),
            }],
            gaps: Vec::new(),
            arg_sites: Default::default(),
        };
        let without = first_enforce(&fleet, None, &held_out);
        let with = first_enforce(&fleet, Some(&reach), &held_out);
        let n = |o: &Outcome| {
            o.containers
                .map_or(format!(">{MAX_CONTAINERS}"), |n| n.to_string())
        };
        println!(
            "{seed},{},{},{},{},{},{}",
            n(&without),
            without.running,
            without.broken,
            n(&with),
            with.running,
            with.broken
        );
    }
}
