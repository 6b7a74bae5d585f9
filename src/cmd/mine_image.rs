//! `sandmine mine-image IMAGE`: mine a container image through the Docker
//! Engine API (or podman's compatible API).

use crate::mining::{self, Progress, RunLimits};
use crate::reaching::{self, ReachableArg};
use anyhow::{Context, Result};
use clap::Args;
use collector::docker::DockerClient;
use collector::ebpf::{EbpfCollector, EbpfOptions};
use collector::mining::container::{self, ContainerOptions, MiningFilter};
use collector::mining::runtime_base::{self, Notice};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use sysutil::parse_duration;

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
sandmine mine-image --duration 2m --until-stable 30s -o redis.json redis:local\n  \
sandmine mine-image --tool /bin/sh --tool redis-cli --report redis.txt -o redis.json redis:local\n  \
sandmine mine-image --reachable off -o only-observed.json redis:local\n\n\
Static reachability (--reachable, default log): after the run, the files the container \
ran (each process's executable, sampled while it ran, and its command) and the declared \
tools (--tool) are analysed inside the container's exported file system; a syscall they \
can reach but that was never observed is logged (SCMP_ACT_LOG: it runs, and the kernel \
records it), allowed, or denied, as --reachable says. `off` skips the analysis.")]
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
    #[arg(long, value_parser = parse_duration, default_value = "1s", value_name = "DUR")]
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
    #[arg(long, default_value = runtime_base::DEFAULT_CACHE_DIR, value_name = "DIR")]
    pub runtime_base_cache: PathBuf,

    #[command(flatten)]
    pub limits: RunLimits,

    /// What a syscall the container's binaries can reach, but that was
    /// never observed, gets: `log` (runs, and is logged), `allow`, `deny`
    /// (reported only); `off` skips the static analysis.
    #[arg(long, value_enum, default_value = "log", value_name = "TIER")]
    pub reachable: ReachableArg,

    /// A tool operators run in the container (`docker exec`), by path in
    /// the image or by name in its PATH (repeatable): its reachable
    /// syscalls join the profile's reachable set without running it.
    #[arg(long = "tool", value_name = "PATH")]
    pub tools: Vec<String>,

    /// Declared tools from a file: one path per line, `#` comments.
    #[arg(long, value_name = "FILE")]
    pub tools_file: Option<PathBuf>,

    /// Also write the compiler's report (why each syscall is allowed,
    /// logged or denied; the reachability section) as text.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// The host's cache of analysed files (by sha256, per sandmine
    /// build), so each library is analysed once per host; `off` for none.
    /// Must be this user's and not writable by others. Default:
    /// /var/lib/sandmine/reach-cache, skipped with a warning when this
    /// user cannot use it.
    #[arg(long, value_name = "DIR|off")]
    pub reach_cache: Option<PathBuf>,

    /// The container's command, replacing the image's CMD (after `--`).
    #[arg(last = true, value_name = "CMD")]
    pub container_cmd: Vec<String>,
}

pub fn main(args: MineImageArgs) -> Result<ExitCode> {
    if let Some(out) = &args.output {
        mining::check_writable(out)?;
    }
    if let Some(r) = &args.report {
        mining::check_writable(r)?;
    }
    let mut tools = args.tools.clone();
    if let Some(f) = &args.tools_file {
        tools.extend(reaching::read_tools_file(f)?);
    }
    if args.reachable == ReachableArg::Off && !tools.is_empty() {
        anyhow::bail!("--tool and --tools-file need the static analysis; drop --reachable off");
    }
    let tier = args.reachable.tier();
    // The container's file system goes here for the analysis.
    let scratch = match tier {
        Some(_) => Some(
            tempfile::Builder::new()
                .prefix("sandmine-reach.")
                .tempdir()
                .context("creating a scratch directory for the static analysis")?,
        ),
        None => None,
    };
    collector::ebpf::check_available().context("mining a container needs the eBPF backend")?;
    let docker = DockerClient::connect(args.socket.as_deref())?;
    let image = docker.inspect_image(&args.image)?;
    collector::mining::install_interrupt_handler();

    // Recording is on before the container exists: every workload outside
    // the host's mount namespace is tracked from its first syscall, and
    // ours is found afterwards by its parent cgroup.
    let collector = EbpfCollector::load(&EbpfOptions {
        auto_track: true,
        ..EbpfOptions::default()
    })?;
    let filter = match args.mining_profile.as_deref() {
        None => MiningFilter::AllowAll,
        Some(p) if p.as_os_str() == "default" => MiningFilter::EngineDefault,
        Some(p) => MiningFilter::Profile(
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read profile {}", p.display()))?,
        ),
    };
    let base = if args.runtime_starts > 0 && args.mining_profile.is_none() {
        Some(runtime_base::load_or_measure(
            &docker,
            &collector,
            &args.runtime_base_cache,
            args.runtime_starts,
            &mut |n| {
                match n {
                Notice::UnreadableCache { file, error } => eprintln!(
                    "sandmine: warning: ignoring unreadable runtime base {}: {error}",
                    file.display()
                ),
                Notice::Measuring {
                    runtime,
                    starts,
                    cache_dir,
                } => eprintln!(
                    "sandmine: measuring the runtime's post-filter syscalls ({runtime}, {starts} probe starts; cached in {})",
                    cache_dir.display()
                ),
            }
            },
        )?)
    } else {
        None
    };
    let limits = &args.limits;
    let opts = ContainerOptions {
        image: args.image.clone(),
        cmd: args.container_cmd.clone(),
        env: args.env.clone(),
        network: args.network.clone(),
        filter,
        workload: args.workload.clone(),
        workload_delay: args.workload_delay,
        workload_stdout_to_stderr: args.output.is_none(),
        keep: args.keep,
        rule: limits.stop_rule(),
        grace: limits.grace,
        export_fs: scratch.as_ref().map(|d| d.path().join("fs.tar")),
    };
    let mut progress = Progress::new(limits.quiet, limits.new_window);
    let run = container::mine_container(&docker, &collector, &opts, &mut progress)?;
    let short = container::short_id(&run.container_id);
    if let Some(why) = &run.stop_reason {
        eprintln!("sandmine: stopped the container: {why}");
    } else if run.exit_code != 0 {
        eprintln!(
            "sandmine: note: the container exited with status {}{}; the profile covers what it did",
            run.exit_code,
            if run.exit_error.is_empty() {
                String::new()
            } else {
                format!(" ({})", run.exit_error)
            }
        );
    }
    if let Some(e) = &run.remove_error {
        eprintln!("sandmine: warning: could not remove container {short}: {e}");
    }
    if run.lost_calls > 0 {
        eprintln!(
            "sandmine: warning: {} calls of container {short} were not counted (the collector was over capacity, or the container used more distinct syscalls than it counts per workload); the observation is incomplete and the profile may miss syscalls",
            run.lost_calls
        );
    }
    let reach = match (tier, &scratch) {
        (Some(_), Some(dir)) => Some(analyse_run(
            &run,
            dir.path(),
            &tools,
            args.reach_cache.as_deref(),
        )?),
        _ => None,
    };
    eprintln!("sandmine: image {} ({})", args.image, image.id);
    let mut obs = run.observation;
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
    let filter = match args.mining_profile.as_deref() {
        None => "unconfined".to_string(),
        Some(p) => format!("mining profile {}", p.display()),
    };
    mining::write_outputs(
        &obs,
        &run.convergence,
        run.wall,
        args.output.as_deref(),
        limits,
        &mining::RunInfo {
            name: &args.image,
            filter: &filter,
            baseline: args.mining_profile.is_none(),
            reach: reach.as_ref().zip(tier),
            report: args.report.as_deref(),
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Unpacks the container's exported file system and analyses what it ran.
fn analyse_run(
    run: &collector::mining::container::ContainerRun,
    scratch: &std::path::Path,
    tools: &[String],
    cache: Option<&std::path::Path>,
) -> Result<policy_compiler::reachable::Reachability> {
    if let Some(e) = &run.export_error {
        anyhow::bail!("exporting the container's file system for the static analysis: {e} (--reachable off skips the analysis)");
    }
    let tar = scratch.join("fs.tar");
    let root = scratch.join("root");
    std::fs::create_dir(&root).with_context(|| format!("creating {}", root.display()))?;
    let file = std::fs::File::open(&tar).with_context(|| format!("opening {}", tar.display()))?;
    let unpacked = reach::unpack::unpack_tar(std::io::BufReader::new(file), &root)
        .context("unpacking the container's file system")?;
    // The archive is no longer needed; the tree is removed with `scratch`.
    let _ = std::fs::remove_file(&tar);
    let t0 = std::time::Instant::now();
    let mut analyzer = reaching::analyzer(&root, cache)?;
    let r = reaching::analyse(
        &mut analyzer,
        &root,
        &reaching::Ran {
            executables: &run.executed,
            mapped: &run.mapped,
            command: &run.command,
        },
        tools,
    );
    eprintln!(
        "sandmine: static analysis: {} file(s) ({} ran, {} declared) in the container's file system ({} MB), {} syscalls reachable, {}; {:.1} s",
        r.files.len(),
        r.files.iter().filter(|f| f.ran).count(),
        r.files.iter().filter(|f| !f.ran).count(),
        unpacked.bytes / 1_000_000,
        r.syscalls.len(),
        if r.known() {
            "the set is known".to_string()
        } else {
            format!(
                "the set is UNKNOWN: {} file(s) not analysed, {} with non-constant syscall sites (see the report)",
                r.gaps.len(),
                r.files.iter().filter(|f| !f.known).count()
            )
        },
        t0.elapsed().as_secs_f64()
    );
    if let Some(line) = reaching::cache_line(&analyzer) {
        eprintln!("sandmine: {line}");
    }
    Ok(r)
}
