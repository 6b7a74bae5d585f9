//! `sandmine mine -- CMD`: run a command, record its syscalls (and its
//! descendants'), and write a seccomp profile.

use crate::mining::{self, Progress, RunLimits};
use anyhow::Result;
use clap::{Args, ValueEnum};
use collector::mining::command::{self, CommandOptions};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// eBPF if this host can load it, else ptrace (announced on stderr).
    Auto,
    /// In-kernel aggregation on the syscall-entry tracepoint. Needs root
    /// (or CAP_BPF and CAP_PERFMON), kernel BTF and cgroup v2.
    Ebpf,
    /// ptrace every process of the run. Needs no privileges, but slows
    /// every syscall of the workload down by microseconds.
    Ptrace,
}

/// Run CMD in a fresh cgroup, record every syscall of it and all its
/// descendants from its own execve to the exit of the last one, and write
/// a Docker/OCI seccomp profile that allows exactly those syscalls.
///
/// The profile denies everything else with EPERM (ENOSYS for syscalls that
/// libc probes and falls back from, such as clone3), lists only the
/// architectures observed, and is byte-identical for identical
/// observations. A summary goes to stderr. Press Ctrl-C to stop the
/// workload early: the profile is still written.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
sandmine mine -o ls.json -- ls -l /\n  \
sandmine mine --until-stable 60s --duration 10m -o nginx.json -- nginx -g 'daemon off;'\n  \
sandmine run --profile ls.json -- ls -l /")]
pub struct MineArgs {
    /// Write the profile here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// How to capture syscalls.
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,

    #[command(flatten)]
    pub limits: RunLimits,

    /// The command to mine, and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub cmd: Vec<OsString>,
}

/// Resolve `auto` to a concrete backend, announcing a fallback.
fn choose_backend(b: Backend) -> Result<command::Backend> {
    match b {
        Backend::Auto => match collector::ebpf::check_available() {
            Ok(()) => Ok(command::Backend::Ebpf),
            Err(e) => {
                eprintln!("sandmine: {e}; falling back to the ptrace backend (slower)");
                Ok(command::Backend::Ptrace)
            }
        },
        Backend::Ebpf => {
            collector::ebpf::check_available()?;
            Ok(command::Backend::Ebpf)
        }
        Backend::Ptrace => Ok(command::Backend::Ptrace),
    }
}

pub fn main(args: MineArgs) -> Result<ExitCode> {
    if let Some(out) = &args.output {
        mining::check_writable(out)?;
    }
    let backend = choose_backend(args.backend)?;
    // Fail early on a missing command, before loading anything.
    command::check_command(&args.cmd)?;
    collector::mining::install_interrupt_handler();
    let limits = &args.limits;
    let opts = CommandOptions {
        backend,
        argv: args.cmd.clone(),
        stdout_to_stderr: args.output.is_none(),
        rule: limits.stop_rule(),
        grace: limits.grace,
    };
    let mut progress = Progress::new(limits.quiet, limits.new_window);
    let run = command::mine_command(&opts, &mut progress)?;
    let name = args
        .cmd
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    mining::write_outputs(
        &run.observation,
        &run.convergence,
        run.wall,
        args.output.as_deref(),
        limits,
        &mining::RunInfo {
            name: &name,
            filter: "unconfined",
            baseline: true,
            reach: None,
            report: None,
        },
    )?;
    if let Some(why) = run.stopped_because {
        eprintln!("sandmine: stopped the workload: {why}");
    } else if let Some(code) = run.exit.filter(|c| *c != 0) {
        eprintln!(
            "sandmine: note: the command exited with status {code}; the profile covers what it did"
        );
    }
    Ok(ExitCode::SUCCESS)
}
