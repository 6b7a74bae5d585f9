//! A generated profile for the enforcement-cost benchmark
//! (`benchmarks/enforcement/run.sh`): compiles, with the default policy,
//! a synthetic image whose containers used exactly what the benchmark's
//! static `loop` and the runtime (runc, after installing the filter) need,
//! and writes the compiled files (`seccomp.json`, `bpf/x86_64.bpf`, ...)
//! to OUT_DIR.
//!
//! `cargo run --release -p policy-compiler --example enforcement_profile -- OUT_DIR`
//!
//! The image is enforce-ready on every bar (25 containers on 3 hosts, 50
//! container-hours, every syscall seen by every container, quiet for two
//! days), so the profile is an enforced allow-list: default EPERM, the
//! probed syscalls ENOSYS. `acct` is not in the list, so it is denied;
//! `getppid` and `personality` are allowed by name.

use policy_compiler::compile_image;
use policy_compiler::policy::Policy;
use schemas::fleet::{ContainerIncidence, ImageObservations, IncidenceEntry, SyscallTotals};
use schemas::{syscalls, Abi, Phase, PhaseSet};
use std::path::PathBuf;

/// The static loop (`strace -f build/loop getppid 10`), plus what runc
/// does between installing the filter and the entrypoint's `execve`, plus
/// the loop's output (`write`), plus `personality`: the loop's third call,
/// which run.sh's argument-rule variants narrow on its first argument
/// (neither runc nor the loop's start-up makes it).
const USED: &[&str] = &[
    // the loop
    "personality",
    "arch_prctl",
    "brk",
    "clock_gettime",
    "exit_group",
    "getppid",
    "getrandom",
    "ioctl",
    "mprotect",
    "newfstatat",
    "prlimit64",
    "readlink",
    "rseq",
    "set_robust_list",
    "set_tid_address",
    "write",
    "execve",
    "mmap",
    "munmap",
    // runc init after the filter is in place (Go runtime and the exec)
    "futex",
    "nanosleep",
    "epoll_pwait",
    "epoll_ctl",
    "getpid",
    "gettid",
    "tgkill",
    "read",
    "close",
    "close_range",
    "fcntl",
    "fstat",
    "openat",
    "capget",
    "capset",
    "prctl",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sigaltstack",
    "sched_yield",
    "madvise",
    "exit",
    "getdents64",
    "setgroups",
    "setresuid",
    "setresgid",
    "pipe2",
    "dup3",
    "getuid",
    "getgid",
    "geteuid",
    "getegid",
    "fchdir",
    "chdir",
    "umask",
    "fstatfs",
    "statfs",
    "readlinkat",
    "faccessat2",
    "getcwd",
    "lseek",
    "ppoll",
    "waitid",
    "kill",
    "setsid",
    "setuid",
    "setgid",
    "setfsuid",
    "setfsgid",
    "mknodat",
    "unshare",
    "sethostname",
    "uname",
    "getrlimit",
    "setrlimit",
    "sched_getaffinity",
    "clone",
    "wait4",
];

const H: u64 = 3_600_000;

fn observations() -> Result<ImageObservations, String> {
    let mut nrs: Vec<u32> = USED
        .iter()
        .map(|n| syscalls::number(Abi::X86_64, n).ok_or(format!("x86_64 has no syscall {n}")))
        .collect::<Result<_, _>>()?;
    nrs.sort_unstable();
    nrs.dedup();
    let t0 = 1_700_000_000_000u64;
    let n_cont = 25u64;
    let incidence: Vec<ContainerIncidence> = (0..n_cont)
        .map(|i| {
            let start = t0 + i * H;
            ContainerIncidence {
                host_id: format!("host-{}", i % 3),
                boot_id: "b".into(),
                container_id: format!("c{i:03}"),
                started_at_ms: start,
                last_seen_ms: start + 2 * H,
                seccomp: "unconfined".into(),
                incomplete: false,
                unverified: false,
                syscalls: nrs
                    .iter()
                    .map(|nr| IncidenceEntry {
                        abi: Abi::X86_64,
                        nr: *nr,
                        phases: PhaseSet(Phase::Image.bit()),
                        first_seen_ms: start,
                        last_seen_ms: start + 2 * H,
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(ImageObservations {
        image: "sandmine-test/busybox:1".into(),
        digests: Vec::new(),
        hosts: 3,
        containers: n_cont,
        container_seconds: n_cont * 2 * 3600,
        first_seen_ms: t0,
        last_seen_ms: t0 + (n_cont + 1) * H,
        syscalls: nrs
            .iter()
            .map(|nr| SyscallTotals {
                abi: Abi::X86_64,
                nr: *nr,
                hosts: 3,
                containers: n_cont,
                calls: n_cont,
                first_seen_ms: t0,
                last_seen_ms: t0 + (n_cont + 1) * H,
                phases: PhaseSet(Phase::Image.bit()),
            })
            .collect(),
        incidence,
        out_of_range: 0,
        args: Default::default(),
        executed: Default::default(),
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: enforcement_profile OUT_DIR")?,
    );
    let obs = observations()?;
    let now = obs.last_seen_ms + 48 * H;
    let c = compile_image(&obs, &Policy::default().resolve()?, now)?;
    if c.decision.state != policy_compiler::State::Enforce {
        return Err(format!("expected an enforced profile:\n{}", c.report_text).into());
    }
    for (name, bytes) in &c.files {
        let p = out.join(name);
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&p, bytes)?;
    }
    println!(
        "{}: {} ({} allowed names) in {}",
        c.decision.state.as_str(),
        c.content_hash,
        c.decision.allowed_union().len(),
        out.display()
    );
    Ok(())
}
