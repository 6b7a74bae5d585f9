//! Benchmark helper: run a command in a fresh cgroup tracked by sandmine's
//! eBPF collector, with no seccomp filter, and print the calls counted.
//! This isolates the collector's per-syscall cost from the allow-all filter
//! that `sandmine mine` adds (see benchmarks/collector-cost).
//!
//! Usage: track [--untracked] -- CMD [ARGS...]
//! With --untracked the collector is loaded (auto-track off) but the
//! command's cgroup is not tracked: the cost every other process on a host
//! pays while sandmine mines something.

use collector::cgroup::Cgroup;
use collector::ebpf::{self, EbpfCollector, EbpfOptions, WorkloadKey};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let untracked = args.first().is_some_and(|a| a == "--untracked");
    let Some(dd) = args.iter().position(|a| a == "--") else {
        eprintln!("usage: track [--untracked] -- CMD [ARGS...]");
        return ExitCode::from(2);
    };
    let cmd = &args[dd + 1..];
    if cmd.is_empty() {
        eprintln!("usage: track [--untracked] -- CMD [ARGS...]");
        return ExitCode::from(2);
    }
    match run(cmd, untracked) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("track: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(cmd: &[String], untracked: bool) -> Result<u8, Box<dyn std::error::Error>> {
    let mut c = EbpfCollector::load(&EbpfOptions {
        auto_track: false,
        ..EbpfOptions::default()
    })?;
    let cg = Cgroup::create("bench")?;
    let key = WorkloadKey {
        cgroup_id: cg.id(),
        mntns_id: ebpf::mntns_id("self")?,
    };
    if !untracked {
        c.track(key)?;
    }
    let procs = cg.procs_file();
    let mut child = Command::new(&cmd[0]);
    child.args(&cmd[1..]);
    // SAFETY: the closure only opens and writes a file, which is
    // async-signal-safe enough for std's pre_exec contract.
    unsafe {
        child.pre_exec(move || std::fs::write(&procs, b"0"));
    }
    let status = child.status()?;
    let obs = c.observe(&key)?;
    let calls: u64 = obs.syscalls.values().map(|u| u.calls).sum();
    eprintln!("track: {calls} calls counted");
    Ok(status.code().unwrap_or(1).clamp(0, 255) as u8)
}
