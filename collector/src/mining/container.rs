//! Mining a container: create it under the allow-all filter with recording
//! already on, start it, run an optional workload against it, poll until
//! it exits or a stop rule fires, stop it, and return what it did.

use super::{Convergence, MiningError, Result, StopRule, Watcher, POLL_INTERVAL};
use crate::cgroup::Cgroup;
use crate::docker::{ContainerSpec, DockerClient};
use crate::ebpf::EbpfCollector;
use crate::CollectError;
use schemas::Observation;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use sysutil::clock::Stopwatch;

/// The filter a container is mined under: it allows everything, on every
/// x86 ABI, so that no syscall is hidden from the tracepoint (a denied call
/// never reaches it; under Docker's default profile clone3 would never be
/// seen). It still marks the moment the runtime installs the filter, which
/// is what splits the runtime's privileged set-up (excluded) from the
/// container's life (mined).
pub const ALLOW_ALL_PROFILE: &str = r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],"syscalls":[{"names":["uselib"],"action":"SCMP_ACT_ERRNO","errnoRet":38}]}"#;

/// The seccomp filter the container runs under while mined.
#[derive(Clone, Debug)]
pub enum MiningFilter {
    /// [`ALLOW_ALL_PROFILE`]: nothing hidden (the default).
    AllowAll,
    /// The engine's own default profile (measures what it lets through).
    EngineDefault,
    /// A profile's JSON text (measures what it lets through).
    Profile(String),
}

/// The container to mine and when to stop.
#[derive(Clone, Debug)]
pub struct ContainerOptions {
    pub image: String,
    /// Replaces the image's CMD when not empty.
    pub cmd: Vec<String>,
    /// NAME=VALUE.
    pub env: Vec<String>,
    /// `none` or `host`.
    pub network: String,
    pub filter: MiningFilter,
    /// A shell command run with `sh -c` on the host once the container is
    /// up; when it exits, the container is stopped.
    pub workload: Option<String>,
    pub workload_delay: Duration,
    /// The workload's stdout goes to our stderr (our stdout carries the
    /// profile).
    pub workload_stdout_to_stderr: bool,
    /// Keep the stopped container instead of removing it.
    pub keep: bool,
    pub rule: StopRule,
    /// `docker stop`'s grace period.
    pub grace: Duration,
    /// After the container stops (and before it is removed), write its
    /// file system here as a tar archive (`docker export`): what the
    /// static analysis of the files it ran reads.
    pub export_fs: Option<std::path::PathBuf>,
}

/// What a container run recorded.
#[derive(Debug)]
pub struct ContainerRun {
    pub container_id: String,
    pub observation: Observation,
    pub convergence: Convergence,
    pub wall: Duration,
    /// Why the session stopped the container, if a stop rule or the end of
    /// the workload did.
    pub stop_reason: Option<String>,
    /// The container's exit code and the engine's error text.
    pub exit_code: i64,
    pub exit_error: String,
    /// Removing the container failed (it is left behind).
    pub remove_error: Option<CollectError>,
    /// Calls of this container's workloads the kernel could not count (it
    /// was over capacity, or a workload used more distinct syscalls than it
    /// counts): non-zero means the observation is incomplete.
    pub lost_calls: u64,
    /// Files the container's processes ran as code, as paths inside the
    /// container, sampled at every poll (a process that lived less than a
    /// poll interval can be missed): each process's executable...
    pub executed: BTreeSet<String>,
    /// ...and its executable file mappings (shared objects, `dlopen`ed
    /// modules).
    pub mapped: BTreeSet<String>,
    /// The container's command as the engine ran it (`Path` then `Args`).
    pub command: Vec<String>,
    /// Exporting the file system (`export_fs`) failed.
    pub export_error: Option<CollectError>,
}

/// The first 12 characters of a container id, as `docker ps` shows it.
pub fn short_id(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// Mines one container of `opts.image`. `collector` must have been loaded
/// with `auto_track` before the container exists, so that it is tracked
/// from its first syscall.
pub fn mine_container(
    docker: &DockerClient,
    collector: &EbpfCollector,
    opts: &ContainerOptions,
    watcher: &mut dyn Watcher,
) -> Result<ContainerRun> {
    let parent = Cgroup::create("image")?;
    let parent_rel = cgroup_parent_arg(&parent)?;
    let spec = ContainerSpec {
        image: opts.image.clone(),
        cmd: (!opts.cmd.is_empty()).then(|| opts.cmd.clone()),
        entrypoint: None,
        env: opts.env.clone(),
        network_mode: opts.network.clone(),
        seccomp_profile_json: match &opts.filter {
            MiningFilter::AllowAll => Some(ALLOW_ALL_PROFILE.to_string()),
            MiningFilter::EngineDefault => None,
            MiningFilter::Profile(json) => Some(json.clone()),
        },
        cgroup_parent: Some(parent_rel.clone()),
        name: None,
        labels: BTreeMap::from([("io.sandmine.mining".to_string(), "1".to_string())]),
    };
    let id = docker.create(&spec)?;
    let mut ran = Ran::default();
    let result = run_container(docker, collector, opts, &parent, &id, watcher, &mut ran);
    let command = docker
        .inspect_json(&id)
        .map(|v| {
            let mut c: Vec<String> = v["Path"].as_str().map(String::from).into_iter().collect();
            c.extend(
                v["Args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a.as_str().map(String::from)),
            );
            c
        })
        .unwrap_or_default();
    let export_error = match (&opts.export_fs, &result) {
        (Some(path), Ok(_)) => export_to(docker, &id, path).err(),
        _ => None,
    };
    let mut remove_error = None;
    if !opts.keep {
        remove_error = docker.remove(&id).err();
        // runc made our parent path in every v1 hierarchy too.
        crate::cgroup::remove_from_v1_hierarchies(&parent_rel);
    }
    let (observation, convergence, wall, stop_reason, exit_code, exit_error) = result?;
    let lost_calls = lost_calls_of_children(collector, &parent)?;
    if observation.syscalls.is_empty() {
        return Err(MiningError::Failed(format!(
            "no syscall of container {} was recorded; is its cgroup under {}?",
            short_id(&id),
            parent.path().display()
        )));
    }
    Ok(ContainerRun {
        container_id: id,
        observation,
        convergence,
        wall,
        stop_reason,
        exit_code,
        exit_error,
        remove_error,
        lost_calls,
        executed: ran.executables,
        mapped: ran.mapped,
        command,
        export_error,
    })
}

fn export_to(docker: &DockerClient, id: &str, path: &std::path::Path) -> Result<(), CollectError> {
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(path)
            .map_err(|e| CollectError::Docker(format!("creating {}: {e}", path.display())))?,
    );
    docker.export(id, &mut f)?;
    use std::io::Write as _;
    f.flush()
        .map_err(|e| CollectError::Docker(format!("writing {}: {e}", path.display())))
}

/// The files that the processes under `parent` run as code: each one's
/// executable and executable file mappings, as paths inside its root
/// ([`crate::executed`], the collector daemon's reader too). Processes
/// that exit while being read are skipped.
#[derive(Default)]
struct Ran {
    executables: BTreeSet<String>,
    mapped: BTreeSet<String>,
}

fn sample_executed(parent: &Cgroup, out: &mut Ran) {
    let mut dirs = vec![parent.path().to_path_buf()];
    let mut files = schemas::ExecutedFiles::new();
    let proc_root = std::path::Path::new("/proc");
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(e.path());
            }
        }
        let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) else {
            continue;
        };
        for pid in procs.lines().filter(|l| !l.is_empty()) {
            crate::executed::sample_pid(proc_root, pid, &mut files);
        }
    }
    for f in files {
        match f.kind {
            schemas::ExecKind::Exec => out.executables.insert(f.path),
            schemas::ExecKind::Mapped => out.mapped.insert(f.path),
        };
    }
}

/// Docker's cgroupfs driver takes the parent as a path relative to each
/// hierarchy's root.
pub fn cgroup_parent_arg(parent: &Cgroup) -> Result<String> {
    let root = crate::cgroup::v2_root()
        .ok_or_else(|| CollectError::Cgroup("no cgroup v2 hierarchy".into()))?;
    let rel = parent
        .path()
        .strip_prefix(&root)
        .map_err(|_| CollectError::Cgroup("parent cgroup outside the v2 root".into()))?;
    Ok(format!("/{}", rel.display()))
}

/// Every workload whose cgroup sits directly under `parent`, merged.
fn observe_children(collector: &EbpfCollector, parent: &Cgroup) -> Result<Observation> {
    let mut obs = Observation::default();
    for key in collector.keys()? {
        if let Some(info) = collector.info(&key)? {
            if info.parent_cgroup_id == parent.id() {
                obs.merge(&collector.observe(&key)?);
            }
        }
    }
    Ok(obs)
}

/// Calls not counted of the workloads under `parent`: of those with a slot
/// (by their parent cgroup's id), and of those that found none (by their
/// parent cgroup's name, all the kernel keeps of them).
fn lost_calls_of_children(collector: &EbpfCollector, parent: &Cgroup) -> Result<u64> {
    let mut lost = 0;
    for key in collector.keys()? {
        if let Some(info) = collector.info(&key)? {
            if info.parent_cgroup_id == parent.id() {
                lost += collector.lost_calls_of(&key)?;
            }
        }
    }
    let parent_name = parent
        .path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    for (_, calls, name) in collector.over_capacity()? {
        if Some(name.parent_str()) == parent_name {
            lost += calls;
        }
    }
    Ok(lost)
}

type Finished = (
    Observation,
    Convergence,
    Duration,
    Option<String>,
    i64,
    String,
);

fn run_container(
    docker: &DockerClient,
    collector: &EbpfCollector,
    opts: &ContainerOptions,
    parent: &Cgroup,
    id: &str,
    watcher: &mut dyn Watcher,
    executed: &mut Ran,
) -> Result<Finished> {
    let clock = Stopwatch::start();
    docker
        .start(id)
        .map_err(|e| MiningError::step(format!("starting container {}", short_id(id)))(e.into()))?;
    let mut conv = Convergence::default();
    let mut workload: Option<std::process::Child> = None;
    let workload_at = Instant::now() + opts.workload_delay;
    let mut stop_reason = None;
    loop {
        sample_executed(parent, executed);
        let obs = observe_children(collector, parent)?;
        let now = clock.elapsed();
        conv.update(&obs, now);
        watcher.update(now, &conv, &obs);
        if !docker.inspect(id)?.running {
            break;
        }
        if let Some(shell) = opts.workload.as_deref() {
            if workload.is_none() && Instant::now() >= workload_at {
                watcher.pause();
                workload = Some(start_workload(shell, opts.workload_stdout_to_stderr)?);
            }
        }
        if let Some(child) = workload.as_mut() {
            if let Some(status) = child
                .try_wait()
                .map_err(MiningError::io("waiting for the workload"))?
            {
                stop_reason = Some(format!("the workload finished ({status})"));
            }
        }
        if stop_reason.is_none() {
            stop_reason = opts.rule.check(now, &conv);
        }
        if stop_reason.is_some() {
            break;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    watcher.pause();
    if let Some(mut child) = workload {
        if child.try_wait().ok().flatten().is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
    conv.stop_at = Some(clock.elapsed());
    docker.stop(id, opts.grace)?;
    docker.wait(id, opts.grace + Duration::from_secs(10))?;
    let state = docker.inspect(id)?;
    let obs = observe_children(collector, parent)?;
    let wall = clock.elapsed();
    conv.update(&obs, wall);
    Ok((obs, conv, wall, stop_reason, state.exit_code, state.error))
}

fn start_workload(shell: &str, stdout_to_stderr: bool) -> Result<std::process::Child> {
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", shell]);
    if stdout_to_stderr {
        use std::os::fd::AsFd;
        let err = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map_err(MiningError::io("duplicating stderr"))?;
        cmd.stdout(err);
    }
    cmd.spawn()
        .map_err(MiningError::io(format!("starting the workload {shell:?}")))
}
