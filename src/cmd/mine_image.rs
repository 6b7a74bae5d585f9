//! `sandmine mine-image IMAGE`: mine a container image through the Docker
//! Engine API (or podman's compatible API).

use crate::cmd::mine::{write_outputs, RunLimits};
use crate::mining::{self, Clock, Convergence, Progress, StopRule};
use anyhow::{bail, Context, Result};
use clap::Args;
use collector::cgroup::Cgroup;
use collector::docker::{ContainerSpec, DockerClient};
use collector::ebpf::{EbpfCollector, EbpfOptions, WorkloadKey};
use schemas::Observation;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The filter a container is mined under: it allows everything, on every
/// x86 ABI, so that no syscall is hidden from the tracepoint (a denied call
/// never reaches it; under Docker's default profile clone3 would never be
/// seen). It still marks the moment the runtime installs the filter, which
/// is what splits the runtime's privileged set-up (excluded) from the
/// container's life (mined).
pub const ALLOW_ALL_PROFILE: &str = r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],"syscalls":[{"names":["uselib"],"action":"SCMP_ACT_ERRNO","errnoRet":38}]}"#;

/// Create and start a container of IMAGE with recording already on, run an
/// optional workload against it, stop it, and write the seccomp profile of
/// what the container did.
///
/// Recording starts before the runtime (runc) starts. The container runs
/// under an allow-all seccomp filter: what the runtime does before it
/// installs the filter (mount, pivot_root, sethostname...) is its own
/// privileged set-up and is left out; what it does after (capset, setgroups,
/// the entrypoint's execve...) is in the profile, marked as the runtime's
/// in the profile's "sandmine" metadata. Needs the eBPF backend.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
sandmine mine-image -o httpd.json --network host \\\n      \
--workload 'for i in 1 2 3; do wget -qO- http://127.0.0.1:18080/; done' sandmine-test/busybox:1\n  \
sandmine mine-image -o true.json sandmine-test/busybox:1 -- /bin/busybox true\n  \
sandmine mine-image --duration 2m --until-stable 30s -o redis.json redis:local")]
pub struct MineImageArgs {
    /// The image to mine (must be present locally).
    pub image: String,

    /// Write the profile here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Engine API socket (default: $DOCKER_HOST if unix://, else
    /// /var/run/docker.sock; podman: /run/podman/podman.sock).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// Network mode of the container: none or host.
    #[arg(long, default_value = "none")]
    pub network: String,

    /// Environment variable for the container (repeatable): NAME=VALUE.
    #[arg(short, long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,

    /// A shell command (run with `sh -c` on the host) that drives the
    /// container once it is up: a load generator such as wrk or
    /// redis-benchmark. When it exits, the container is stopped.
    #[arg(long, value_name = "SHELL-COMMAND")]
    pub workload: Option<String>,

    /// Wait this long after the container starts before the workload.
    #[arg(long, value_parser = mining::parse_duration, default_value = "1s", value_name = "DUR")]
    pub workload_delay: Duration,

    /// Keep the stopped container instead of removing it.
    #[arg(long)]
    pub keep: bool,

    /// How many times to start sandmine's runtime probe container to
    /// measure the runtime's own post-filter syscalls (its must-allow base,
    /// cached per engine and runtime version). 0 skips it: the profile then
    /// holds only the runtime calls seen while mining this image, which may
    /// miss calls the runtime makes on some starts only.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub runtime_starts: usize,

    /// Mine under this seccomp profile (a JSON file, or `default` for the
    /// engine's own) instead of sandmine's allow-all filter. Calls the
    /// profile denies are never seen: this measures what a profile lets
    /// through (e.g. Docker's default), it does not mine a profile to
    /// enforce. Implies --runtime-starts 0.
    #[arg(long, value_name = "FILE|default")]
    pub mining_profile: Option<PathBuf>,

    /// Where measured runtime bases are cached.
    #[arg(long, default_value = crate::runtime_base::DEFAULT_CACHE_DIR, value_name = "DIR")]
    pub runtime_base_cache: PathBuf,

    #[command(flatten)]
    pub limits: RunLimits,

    /// The container's command, replacing the image's CMD (after `--`).
    #[arg(last = true, value_name = "CMD")]
    pub container_cmd: Vec<String>,
}

pub fn main(args: MineImageArgs) -> Result<ExitCode> {
    if let Some(out) = &args.output {
        crate::cmd::mine::check_writable(out)?;
    }
    collector::ebpf::check_available().context("mining a container needs the eBPF backend")?;
    let docker = DockerClient::connect(args.socket.as_deref())?;
    let image = docker.inspect_image(&args.image)?;
    mining::install_interrupt_handler();

    // Recording is on before the container exists: every workload outside
    // the host's mount namespace is tracked from its first syscall, and
    // ours is found afterwards by its parent cgroup.
    let collector = EbpfCollector::load(&EbpfOptions { auto_track: true })?;
    let mining_profile = match args.mining_profile.as_deref() {
        None => Some(ALLOW_ALL_PROFILE.to_string()),
        Some(p) if p.as_os_str() == "default" => None,
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read profile {}", p.display()))?,
        ),
    };
    let base = if args.runtime_starts > 0 && args.mining_profile.is_none() {
        Some(crate::runtime_base::load_or_measure(
            &docker,
            &collector,
            &args.runtime_base_cache,
            args.runtime_starts,
            ALLOW_ALL_PROFILE,
        )?)
    } else {
        None
    };
    let parent = Cgroup::create("image")?;
    let parent_rel = cgroup_parent_arg(&parent)?;
    let spec = ContainerSpec {
        image: args.image.clone(),
        cmd: (!args.container_cmd.is_empty()).then(|| args.container_cmd.clone()),
        entrypoint: None,
        env: args.env.clone(),
        network_mode: args.network.clone(),
        seccomp_profile_json: mining_profile,
        cgroup_parent: Some(parent_rel.clone()),
        name: None,
        labels: BTreeMap::from([("io.sandmine.mining".to_string(), "1".to_string())]),
    };
    let id = docker.create(&spec)?;
    let result = run_container(&args, &docker, &collector, &parent, &id);
    if !args.keep {
        if let Err(e) = docker.remove(&id) {
            eprintln!(
                "sandmine: warning: could not remove container {}: {e}",
                short(&id)
            );
        }
        // runc made our parent path in every v1 hierarchy too.
        collector::cgroup::remove_from_v1_hierarchies(&parent_rel);
    }
    let (mut obs, conv, wall) = result?;
    let lost = collector.lost_calls()?;
    if lost > 0 {
        eprintln!(
            "sandmine: warning: {lost} calls of new workloads were not counted (the kernel could not start tracking them); the profile may miss syscalls"
        );
    }
    if obs.syscalls.is_empty() {
        bail!(
            "no syscall of container {} was recorded; is its cgroup under {}?",
            short(&id),
            parent.path().display()
        );
    }
    eprintln!("sandmine: image {} ({})", args.image, image.id);
    if let Some(base) = &base {
        let before = obs.syscalls.len();
        base.apply(&mut obs);
        eprintln!(
            "sandmine: runtime base {}: {} syscalls measured over {} starts, {} not seen while mining this image",
            base.runtime,
            base.syscalls.len(),
            base.starts,
            obs.syscalls.len() - before
        );
    }
    // Measuring another profile (--mining-profile) reports what it let
    // through: no baseline is added to that.
    let opts = policy_compiler::GenerateOptions {
        baseline: args.mining_profile.is_none(),
        ..policy_compiler::GenerateOptions::default()
    };
    write_outputs(
        &obs,
        &conv,
        wall,
        args.output.as_deref(),
        &args.limits,
        &opts,
    )?;
    Ok(ExitCode::SUCCESS)
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// Docker's cgroupfs driver takes the parent as a path relative to each
/// hierarchy's root.
pub fn cgroup_parent_arg(parent: &Cgroup) -> Result<String> {
    let root = collector::cgroup::v2_root().context("no cgroup v2 hierarchy")?;
    let rel = parent
        .path()
        .strip_prefix(&root)
        .context("parent cgroup outside the v2 root")?;
    Ok(format!("/{}", rel.display()))
}

/// Every workload whose cgroup sits directly under `parent`, merged.
fn observe_children(
    collector: &EbpfCollector,
    parent: &Cgroup,
) -> Result<(Observation, Vec<WorkloadKey>)> {
    let mut obs = Observation::default();
    let mut keys = Vec::new();
    for key in collector.keys()? {
        if let Some(info) = collector.info(&key)? {
            if info.parent_cgroup_id == parent.id() {
                obs.merge(&collector.observe(&key)?);
                keys.push(key);
            }
        }
    }
    Ok((obs, keys))
}

fn run_container(
    args: &MineImageArgs,
    docker: &DockerClient,
    collector: &EbpfCollector,
    parent: &Cgroup,
    id: &str,
) -> Result<(Observation, Convergence, Duration)> {
    let clock = Clock::start();
    docker
        .start(id)
        .with_context(|| format!("starting container {}", short(id)))?;
    let limits = &args.limits;
    let rule = StopRule {
        duration: limits.duration,
        until_stable: limits.until_stable,
    };
    let mut conv = Convergence::default();
    let mut progress = Progress::new(limits.quiet);
    let mut workload: Option<std::process::Child> = None;
    let workload_at = Instant::now() + args.workload_delay;
    let mut stop_reason = None;
    loop {
        let (obs, _) = observe_children(collector, parent)?;
        let now = clock.elapsed();
        conv.update(&obs, now);
        progress.draw(now, &conv, &obs, limits.new_window);
        let state = docker.inspect(id)?;
        if !state.running {
            break;
        }
        if let Some(shell) = args.workload.as_deref() {
            if workload.is_none() && Instant::now() >= workload_at {
                progress.clear();
                let mut cmd = std::process::Command::new("sh");
                cmd.args(["-c", shell]);
                if args.output.is_none() {
                    // Our stdout carries the profile: the workload's output
                    // goes to stderr instead.
                    use std::os::fd::AsFd;
                    let err = std::io::stderr()
                        .as_fd()
                        .try_clone_to_owned()
                        .context("duplicating stderr")?;
                    cmd.stdout(err);
                }
                let child = cmd
                    .spawn()
                    .with_context(|| format!("starting the workload {shell:?}"))?;
                workload = Some(child);
            }
        }
        if let Some(child) = workload.as_mut() {
            if let Some(status) = child.try_wait().context("waiting for the workload")? {
                stop_reason = Some(format!("the workload finished ({status})"));
            }
        }
        if stop_reason.is_none() {
            stop_reason = rule.check(now, &conv);
        }
        if stop_reason.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    progress.clear();
    if let Some(mut child) = workload {
        if child.try_wait().ok().flatten().is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
    conv.stop_at = Some(clock.elapsed());
    docker.stop(id, limits.grace)?;
    docker.wait(id, limits.grace + Duration::from_secs(10))?;
    let state = docker.inspect(id)?;
    if let Some(why) = &stop_reason {
        eprintln!("sandmine: stopped the container: {why}");
    } else if state.exit_code != 0 {
        eprintln!(
            "sandmine: note: the container exited with status {}{}; the profile covers what it did",
            state.exit_code,
            if state.error.is_empty() {
                String::new()
            } else {
                format!(" ({})", state.error)
            }
        );
    }
    let (obs, _keys) = observe_children(collector, parent)?;
    let wall = clock.elapsed();
    conv.update(&obs, wall);
    Ok((obs, conv, wall))
}
