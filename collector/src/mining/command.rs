//! Mining a command: start it in a fresh cgroup (eBPF) or under ptrace,
//! record every syscall of it and its descendants from its own `execve` to
//! the exit of the last one, or until a stop rule fires.

use super::{Convergence, MiningError, Result, StopRule, Watcher, POLL_INTERVAL};
use crate::cgroup::{Cgroup, Hierarchy};
use crate::ebpf::{EbpfCollector, EbpfOptions, WorkloadKey};
use crate::launch::LaunchOptions;
use crate::ptrace::{PtraceOptions, PtraceSession};
use schemas::Observation;
use std::ffi::OsString;
use std::time::Duration;
use sysutil::clock::Stopwatch;

/// How syscalls are captured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// In-kernel aggregation on the syscall-entry tracepoint.
    Ebpf,
    /// ptrace every process of the run.
    Ptrace,
}

/// What to mine and when to stop.
#[derive(Clone, Debug)]
pub struct CommandOptions {
    pub backend: Backend,
    /// The command and its arguments.
    pub argv: Vec<OsString>,
    /// The command's stdout goes to our stderr (our stdout carries the
    /// profile).
    pub stdout_to_stderr: bool,
    pub rule: StopRule,
    /// How long processes get after SIGTERM before SIGKILL.
    pub grace: Duration,
}

/// What a run recorded.
#[derive(Debug)]
pub struct CommandRun {
    pub observation: Observation,
    pub convergence: Convergence,
    pub wall: Duration,
    /// The command's own exit status (128 + signal when killed).
    pub exit: Option<i32>,
    /// Why the session stopped the workload, if a stop rule did.
    pub stopped_because: Option<String>,
}

/// Checks that `argv[0]` can be run, before anything is loaded.
pub fn check_command(argv: &[OsString]) -> Result<()> {
    let cmd = argv
        .first()
        .ok_or_else(|| MiningError::Failed("no command given".into()))?;
    crate::launch::resolve(cmd)?;
    Ok(())
}

/// Runs the command to its end (or a stop rule) and returns what it did.
pub fn mine_command(opts: &CommandOptions, watcher: &mut dyn Watcher) -> Result<CommandRun> {
    let clock = Stopwatch::start();
    let mut rec = Recorder::start(opts)?;
    let mut conv = Convergence::default();
    let mut stopped_because = None;
    loop {
        let obs = rec.snapshot()?;
        let now = clock.elapsed();
        conv.update(&obs, now);
        watcher.update(now, &conv, &obs);
        if rec.finished()? {
            break;
        }
        if let Some(why) = opts.rule.check(now, &conv) {
            stopped_because = Some(why);
            conv.stop_at = Some(clock.elapsed());
            watcher.pause();
            rec.stop(opts.grace)?;
            break;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    watcher.pause();
    let (observation, exit) = rec.finish()?;
    let wall = clock.elapsed();
    conv.update(&observation, wall);
    Ok(CommandRun {
        observation,
        convergence: conv,
        wall,
        exit,
        stopped_because,
    })
}

/// The running command, under one backend.
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
    fn start(opts: &CommandOptions) -> Result<Recorder> {
        match opts.backend {
            Backend::Ebpf => Self::start_ebpf(opts),
            Backend::Ptrace => {
                let popts = PtraceOptions {
                    stdout_to_stderr: opts.stdout_to_stderr,
                    ..PtraceOptions::default()
                };
                Ok(Recorder::Ptrace(Box::new(PtraceSession::spawn(
                    &opts.argv, &popts,
                )?)))
            }
        }
    }

    fn start_ebpf(opts: &CommandOptions) -> Result<Recorder> {
        // Orphaned descendants are re-parented to us, so we reap them and
        // can tell when the last one has exited.
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        let mut collector = EbpfCollector::load(&EbpfOptions {
            auto_track: false,
            ..EbpfOptions::default()
        })?;
        // The command's workload key: its own cgroup v2 leaf; where only v1
        // hierarchies exist, its own mount namespace (grouped in a v1
        // cgroup so the run can still be stopped as a whole).
        let hierarchy = Hierarchy::detect()?;
        let cgroup = Cgroup::create_in(hierarchy.root(), "mine")?;
        let v1 = matches!(hierarchy, Hierarchy::V1(_));
        let lopts = LaunchOptions {
            stdout_to_stderr: opts.stdout_to_stderr,
            new_mount_namespace: v1,
        };
        let mut key = None;
        let launched = crate::launch::spawn(&opts.argv, &cgroup.procs_file(), lopts, |pid| {
            let k = if v1 {
                WorkloadKey {
                    cgroup_id: crate::cgroup::v2_cgroup_id_of(pid)?,
                    mntns_id: crate::ebpf::mntns_id(&pid.to_string())?,
                }
            } else {
                WorkloadKey {
                    cgroup_id: cgroup.id(),
                    mntns_id: crate::ebpf::mntns_id("self")?,
                }
            };
            collector.track(k)?;
            key = Some(k);
            Ok(())
        })?;
        let key = key
            .ok_or_else(|| MiningError::Failed("internal: the workload key was not set".into()))?;
        Ok(Recorder::Ebpf {
            collector,
            key,
            cgroup,
            pid: launched.pid,
            exit: None,
        })
    }

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
