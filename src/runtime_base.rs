//! The container runtime's must-allow base, measured.
//!
//! The runtime (runc, crun) makes syscalls after it installs the seccomp
//! filter and before it execs the entrypoint. A profile that misses one of
//! them stops the container from starting, the first complaint users of
//! peer tools have. Mining an image sees these calls, but some of them
//! (Go's runtime in runc waking a thread, returning from a signal) happen on
//! some starts and not others. So sandmine starts a probe container (one
//! static program that only calls exit_group) many times under the mining
//! filter and takes the union of the runtime's post-filter calls. The result
//! is cached per engine and runtime version.

use anyhow::{Context, Result};
use collector::cgroup::Cgroup;
use collector::docker::{ContainerSpec, DockerClient};
use collector::ebpf::EbpfCollector;
use schemas::{Abi, Observation, Phase, SyscallKey};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const PROBE_IMAGE: &str = "sandmine/runtime-probe:1";
pub const DEFAULT_CACHE_DIR: &str = "/var/lib/sandmine/runtime-base";

/// The measured base of one engine + runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeBase {
    /// e.g. "docker-20.10.24+dfsg1/runc-1.1.5+ds1".
    pub runtime: String,
    pub starts: usize,
    pub syscalls: BTreeSet<SyscallKey>,
}

impl RuntimeBase {
    /// Add the base to an observation as runtime calls (with no calls
    /// counted: they are allowed because the runtime needs them, not
    /// because this workload was seen making them).
    pub fn apply(&self, obs: &mut Observation) {
        for k in &self.syscalls {
            obs.record(k.abi, k.nr, Phase::Runtime, 0);
        }
    }

    fn to_json(&self) -> String {
        let mut by_abi: BTreeMap<Abi, Vec<u32>> = BTreeMap::new();
        for k in &self.syscalls {
            by_abi.entry(k.abi).or_default().push(k.nr);
        }
        let v = serde_json::json!({
            "version": 1,
            "runtime": self.runtime,
            "starts": self.starts,
            "syscalls": by_abi,
        });
        format!("{v:#}\n")
    }

    fn from_json(text: &str) -> Result<RuntimeBase> {
        let v: Value = serde_json::from_str(text)?;
        let runtime = v["runtime"].as_str().context("no runtime")?.to_string();
        let starts = v["starts"].as_u64().context("no starts")? as usize;
        let mut syscalls = BTreeSet::new();
        let by_abi = v["syscalls"].as_object().context("no syscalls")?;
        for (abi, nrs) in by_abi {
            let abi: Abi = abi.parse()?;
            for nr in nrs.as_array().context("syscalls per ABI must be a list")? {
                let nr = nr.as_u64().context("syscall numbers must be integers")?;
                syscalls.insert(SyscallKey {
                    abi,
                    nr: u32::try_from(nr)?,
                });
            }
        }
        Ok(RuntimeBase {
            runtime,
            starts,
            syscalls,
        })
    }
}

/// "docker-<engine version>/runc-<runc version>", from the engine's
/// `/version` (its components list runc's version).
pub fn runtime_id(docker: &DockerClient) -> Result<String> {
    let v = docker.version()?;
    let engine = v["Version"].as_str().unwrap_or("unknown");
    let runc = v["Components"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["Name"].as_str() == Some("runc")))
        .and_then(|c| c["Version"].as_str())
        .unwrap_or("unknown");
    Ok(format!("docker-{engine}/runc-{runc}"))
}

fn cache_file(dir: &Path, runtime: &str) -> PathBuf {
    let safe: String = runtime
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{safe}.json"))
}

/// A base measured earlier (a file of the cache directory).
pub fn load_file(path: &Path) -> Result<RuntimeBase> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read runtime base {}", path.display()))?;
    RuntimeBase::from_json(&text)
        .with_context(|| format!("{} is not a runtime base file", path.display()))
}

/// The cached base for this engine, or a fresh measurement (then cached).
pub fn load_or_measure(
    docker: &DockerClient,
    collector: &EbpfCollector,
    cache_dir: &Path,
    starts: usize,
    mining_profile: &str,
) -> Result<RuntimeBase> {
    let runtime = runtime_id(docker)?;
    let file = cache_file(cache_dir, &runtime);
    if let Ok(text) = std::fs::read_to_string(&file) {
        match RuntimeBase::from_json(&text) {
            Ok(base) if base.runtime == runtime && base.starts >= starts => return Ok(base),
            Ok(_) => {}
            Err(e) => eprintln!(
                "sandmine: warning: ignoring unreadable runtime base {}: {e:#}",
                file.display()
            ),
        }
    }
    eprintln!("sandmine: measuring the runtime's post-filter syscalls ({runtime}, {starts} probe starts; cached in {})", cache_dir.display());
    let base = measure(docker, collector, &runtime, starts, mining_profile)?;
    std::fs::create_dir_all(cache_dir)
        .with_context(|| format!("creating {}", cache_dir.display()))?;
    crate::cmd::mine::write_atomic(&file, base.to_json().as_bytes())?;
    Ok(base)
}

/// Start the probe image `starts` times under the mining filter; union the
/// calls made in `Phase::Runtime`.
pub fn measure(
    docker: &DockerClient,
    collector: &EbpfCollector,
    runtime: &str,
    starts: usize,
    mining_profile: &str,
) -> Result<RuntimeBase> {
    ensure_probe_image(docker)?;
    let parent = Cgroup::create("runtime-probe")?;
    let parent_arg = crate::cmd::mine_image::cgroup_parent_arg(&parent)?;
    let mut syscalls = BTreeSet::new();
    for i in 0..starts {
        let spec = ContainerSpec {
            image: PROBE_IMAGE.to_string(),
            cmd: Some(vec!["/probe".to_string()]),
            seccomp_profile_json: Some(mining_profile.to_string()),
            cgroup_parent: Some(parent_arg.clone()),
            ..ContainerSpec::default()
        };
        let id = docker.create(&spec)?;
        let run = docker
            .start(&id)
            .map_err(anyhow::Error::from)
            .and_then(|()| {
                docker
                    .wait(&id, Duration::from_secs(30))?
                    .context("the runtime probe did not exit within 30 s")
            });
        let _ = docker.remove(&id);
        let code = run.with_context(|| format!("runtime probe start {}", i + 1))?;
        anyhow::ensure!(code == 0, "the runtime probe exited with status {code}");
        for key in collector.keys()? {
            if collector
                .info(&key)?
                .is_some_and(|inf| inf.parent_cgroup_id == parent.id())
            {
                let obs = collector.observe(&key)?;
                for (k, u) in &obs.syscalls {
                    if u.phases.contains(Phase::Runtime) {
                        syscalls.insert(*k);
                    }
                }
            }
        }
    }
    anyhow::ensure!(
        !syscalls.is_empty(),
        "the runtime probe showed no post-filter syscall; is the runtime installing the filter?"
    );
    Ok(RuntimeBase {
        runtime: runtime.to_string(),
        starts,
        syscalls,
    })
}

/// Import the probe image if the engine does not have it.
fn ensure_probe_image(docker: &DockerClient) -> Result<()> {
    if docker.inspect_image(PROBE_IMAGE).is_ok() {
        return Ok(());
    }
    anyhow::ensure!(
        cfg!(target_arch = "x86_64"),
        "the runtime probe image exists for x86_64 only"
    );
    let tar = collector::runtime_probe::probe_image_tar();
    let (repo, tag) = PROBE_IMAGE.split_once(':').context("probe image name")?;
    docker.import_image(&tar, repo, tag, &["CMD [\"/probe\"]"])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip() {
        let base = RuntimeBase {
            runtime: "docker-1/runc-2".into(),
            starts: 3,
            syscalls: [
                SyscallKey {
                    abi: Abi::X86_64,
                    nr: 202,
                },
                SyscallKey {
                    abi: Abi::I386,
                    nr: 240,
                },
            ]
            .into(),
        };
        assert_eq!(RuntimeBase::from_json(&base.to_json()).unwrap(), base);
    }
}
