//! `sandmine mine -- CMD`: run a command, record its syscalls (and its
//! descendants'), and write a seccomp profile.

use crate::mining::{self, Clock, Convergence, Progress, StopRule};
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use collector::cgroup::Cgroup;
use collector::ebpf::{EbpfCollector, EbpfOptions, WorkloadKey};
use collector::launch::LaunchOptions;
use collector::ptrace::{PtraceOptions, PtraceSession};
use schemas::Observation;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

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

/// Options shared by `mine` and `mine-image`.
#[derive(Args, Debug, Clone)]
pub struct RunLimits {
    /// Stop the workload after this long (e.g. 30s, 5m). For services that
    /// never exit on their own.
    #[arg(long, value_parser = mining::parse_duration, value_name = "DUR")]
    pub duration: Option<Duration>,

    /// Stop once no new syscall has appeared for this long (e.g. 60s).
    #[arg(long, value_parser = mining::parse_duration, value_name = "DUR")]
    pub until_stable: Option<Duration>,

    /// How long processes get after SIGTERM before SIGKILL when the run is
    /// stopped.
    #[arg(long, value_parser = mining::parse_duration, default_value = "5s", value_name = "DUR")]
    pub grace: Duration,

    /// The summary reports how many syscalls were new within this window
    /// before the end.
    #[arg(long, value_parser = mining::parse_duration, default_value = "10s", value_name = "DUR")]
    pub new_window: Duration,

    /// Also write the convergence curve (seconds, distinct syscalls) as CSV.
    #[arg(long, value_name = "FILE")]
    pub curve: Option<PathBuf>,

    /// No progress line.
    #[arg(short, long)]
    pub quiet: bool,
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
pub fn choose_backend(b: Backend) -> Result<Backend> {
    match b {
        Backend::Auto => match collector::ebpf::check_available() {
            Ok(()) => Ok(Backend::Ebpf),
            Err(e) => {
                eprintln!("sandmine: {e}; falling back to the ptrace backend (slower)");
                Ok(Backend::Ptrace)
            }
        },
        Backend::Ebpf => {
            collector::ebpf::check_available()?;
            Ok(Backend::Ebpf)
        }
        Backend::Ptrace => Ok(Backend::Ptrace),
    }
}

enum Recorder {
    Ebpf {
        collector: EbpfCollector,
        key: WorkloadKey,
        cgroup: Cgroup,
        pid: i32,
        exit: Option<i32>,
    },
    Ptrace(Box<PtraceSession>),
}

impl Recorder {
    fn snapshot(&self) -> Result<Observation> {
        match self {
            Recorder::Ebpf { collector, key, .. } => Ok(collector.observe(key)?),
            Recorder::Ptrace(s) => Ok(s.snapshot()),
        }
    }

    /// Reap exited children; true once the command and every descendant
    /// have exited.
    fn finished(&mut self) -> Result<bool> {
        match self {
            Recorder::Ebpf {
                cgroup, pid, exit, ..
            } => {
                reap(*pid, exit);
                Ok(exit.is_some() && cgroup.pids()?.is_empty())
            }
            Recorder::Ptrace(s) => Ok(s.finished()),
        }
    }

    fn stop(&mut self, grace: Duration) -> Result<()> {
        match self {
            Recorder::Ebpf {
                cgroup, pid, exit, ..
            } => {
                let pid = *pid;
                cgroup.stop_all(grace, || reap(pid, exit))?;
                reap(pid, exit);
                Ok(())
            }
            Recorder::Ptrace(s) => {
                s.stop(grace);
                Ok(())
            }
        }
    }

    /// Final observation and the command's exit status.
    fn finish(self) -> Result<(Observation, Option<i32>)> {
        match self {
            Recorder::Ebpf {
                mut collector,
                key,
                cgroup,
                exit,
                ..
            } => {
                let obs = collector.observe(&key)?;
                collector.untrack(&key)?;
                drop(cgroup);
                Ok((obs, exit))
            }
            Recorder::Ptrace(s) => {
                let (obs, status) = s.wait()?;
                Ok((obs, Some(status)))
            }
        }
    }
}

/// Reap any exited child (descendants are re-parented to us, the
/// subreaper); remember the command's own status.
fn reap(cmd_pid: i32, exit: &mut Option<i32>) {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status through a valid pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::__WALL) };
        if pid <= 0 {
            return;
        }
        if pid == cmd_pid {
            *exit = Some(if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            });
        }
    }
}

pub fn main(args: MineArgs) -> Result<ExitCode> {
    if let Some(out) = &args.output {
        check_writable(out)?;
    }
    let backend = choose_backend(args.backend)?;
    // Fail early on a missing command, before loading anything.
    collector::launch::resolve(&args.cmd[0])?;
    mining::install_interrupt_handler();
    let clock = Clock::start();
    let mut rec = match backend {
        Backend::Ebpf => {
            // Orphaned descendants are re-parented to us, so we reap them
            // and can tell when the last one has exited.
            // SAFETY: prctl with integer arguments.
            unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
            let mut collector = EbpfCollector::load(&EbpfOptions { auto_track: false })?;
            // The command's workload key: its own cgroup v2 leaf; where
            // only v1 hierarchies exist, its own mount namespace (grouped
            // in a v1 cgroup so the run can still be stopped as a whole).
            let hierarchy = collector::cgroup::Hierarchy::detect()?;
            let cgroup = Cgroup::create_in(hierarchy.root(), "mine")?;
            let v1 = matches!(hierarchy, collector::cgroup::Hierarchy::V1(_));
            let opts = LaunchOptions {
                stdout_to_stderr: args.output.is_none(),
                new_mount_namespace: v1,
            };
            let mut key = None;
            let launched =
                collector::launch::spawn(&args.cmd, &cgroup.procs_file(), opts, |pid| {
                    let k = if v1 {
                        WorkloadKey {
                            cgroup_id: collector::cgroup::v2_cgroup_id_of(pid)?,
                            mntns_id: collector::ebpf::mntns_id(&pid.to_string())?,
                        }
                    } else {
                        WorkloadKey {
                            cgroup_id: cgroup.id(),
                            mntns_id: collector::ebpf::mntns_id("self")?,
                        }
                    };
                    collector.track(k)?;
                    key = Some(k);
                    Ok(())
                })?;
            let key = key.context("internal: the workload key was not set")?;
            Recorder::Ebpf {
                collector,
                key,
                cgroup,
                pid: launched.pid,
                exit: None,
            }
        }
        Backend::Ptrace => {
            let opts = PtraceOptions {
                stdout_to_stderr: args.output.is_none(),
                ..PtraceOptions::default()
            };
            Recorder::Ptrace(Box::new(PtraceSession::spawn(&args.cmd, &opts)?))
        }
        Backend::Auto => anyhow::bail!("internal: backend not resolved"),
    };
    let limits = &args.limits;
    let rule = StopRule {
        duration: limits.duration,
        until_stable: limits.until_stable,
    };
    let mut conv = Convergence::default();
    let mut progress = Progress::new(limits.quiet);
    let mut stopped_because = None;
    loop {
        let obs = rec.snapshot()?;
        let now = clock.elapsed();
        conv.update(&obs, now);
        progress.draw(now, &conv, &obs, limits.new_window);
        if rec.finished()? {
            break;
        }
        if let Some(why) = rule.check(now, &conv) {
            stopped_because = Some(why);
            conv.stop_at = Some(clock.elapsed());
            progress.clear();
            rec.stop(limits.grace)?;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    progress.clear();
    let (obs, exit) = rec.finish()?;
    let wall = clock.elapsed();
    conv.update(&obs, wall);
    write_outputs(
        &obs,
        &conv,
        wall,
        args.output.as_deref(),
        limits,
        &policy_compiler::GenerateOptions::default(),
    )?;
    if let Some(why) = stopped_because {
        eprintln!("sandmine: stopped the workload: {why}");
    } else if let Some(code) = exit.filter(|c| *c != 0) {
        eprintln!(
            "sandmine: note: the command exited with status {code}; the profile covers what it did"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Compile, write the profile (and curve), print the summary.
pub fn write_outputs(
    obs: &Observation,
    conv: &Convergence,
    wall: Duration,
    output: Option<&std::path::Path>,
    limits: &RunLimits,
    opts: &policy_compiler::GenerateOptions,
) -> Result<()> {
    let profile = policy_compiler::generate(obs, opts).context("compiling the profile")?;
    let json = profile.to_json().context("rendering the profile")?;
    match output {
        Some(path) => write_atomic(path, json.as_bytes())?,
        None => {
            use std::io::Write;
            std::io::stdout()
                .lock()
                .write_all(json.as_bytes())
                .context("writing the profile to stdout")?;
        }
    }
    if let Some(curve) = &limits.curve {
        write_atomic(curve, conv.curve_csv().as_bytes())?;
    }
    for w in profile.warnings() {
        eprintln!("sandmine: warning: {w}");
    }
    let per_abi = profile
        .sandmine
        .as_ref()
        .map(|m| {
            m.per_abi
                .iter()
                .map(|(abi, names)| (*abi, names.len()))
                .collect()
        })
        .unwrap_or_default();
    eprint!(
        "{}",
        mining::summary(obs, &per_abi, conv, wall, limits.new_window)
    );
    Ok(())
}

/// Fail before any work if `path` cannot be written: its directory must
/// exist.
pub fn check_writable(path: &std::path::Path) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    if !dir.is_dir() {
        anyhow::bail!(
            "cannot write {}: directory {} does not exist",
            path.display(),
            dir.display()
        );
    }
    Ok(())
}

/// Write via a temporary file and rename, so a crash never leaves half a
/// profile behind.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    // Devices and pipes (/dev/null, /dev/stdout, a FIFO) are written in place.
    if path.metadata().map(|m| !m.is_file()).unwrap_or(false) {
        return std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()));
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.sandmine-tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", path.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}
