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
//!
//! This measures the local engine, so it is for hosts that mine (`sandmine
//! mine-image`). The fleet never starts probe containers: it derives the
//! base from the runtime-phase calls its collectors already observed.

use super::container::{cgroup_parent_arg, ALLOW_ALL_PROFILE};
use super::{MiningError, Result};
use crate::cgroup::Cgroup;
use crate::docker::{ContainerSpec, DockerClient};
use crate::ebpf::EbpfCollector;
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

    fn from_json(text: &str) -> Result<RuntimeBase, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let runtime = v["runtime"].as_str().ok_or("no runtime")?.to_string();
        let starts = v["starts"].as_u64().ok_or("no starts")? as usize;
        let mut syscalls = BTreeSet::new();
        let by_abi = v["syscalls"].as_object().ok_or("no syscalls")?;
        for (abi, nrs) in by_abi {
            let abi: Abi = abi.parse().map_err(|e| format!("{e}"))?;
            for nr in nrs.as_array().ok_or("syscalls per ABI must be a list")? {
                let nr = nr
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or("syscall numbers must be 32-bit integers")?;
                syscalls.insert(SyscallKey { abi, nr });
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
    let text = std::fs::read_to_string(path).map_err(MiningError::io(format!(
        "cannot read runtime base {}",
        path.display()
    )))?;
    RuntimeBase::from_json(&text).map_err(|e| {
        MiningError::Failed(format!(
            "{} is not a runtime base file: {e}",
            path.display()
        ))
    })
}

/// What [`load_or_measure`] reports on the way.
#[derive(Debug)]
pub enum Notice<'a> {
    /// The cache file could not be read; it is measured again.
    UnreadableCache { file: &'a Path, error: String },
    /// Nothing (or too few starts) cached: measuring now.
    Measuring {
        runtime: &'a str,
        starts: usize,
        cache_dir: &'a Path,
    },
}

/// The cached base for this engine, or a fresh measurement (then cached).
pub fn load_or_measure(
    docker: &DockerClient,
    collector: &EbpfCollector,
    cache_dir: &Path,
    starts: usize,
    notify: &mut dyn FnMut(Notice<'_>),
) -> Result<RuntimeBase> {
    let runtime = runtime_id(docker)?;
    let file = cache_file(cache_dir, &runtime);
    if let Ok(text) = std::fs::read_to_string(&file) {
        match RuntimeBase::from_json(&text) {
            Ok(base) if base.runtime == runtime && base.starts >= starts => return Ok(base),
            Ok(_) => {}
            Err(error) => notify(Notice::UnreadableCache { file: &file, error }),
        }
    }
    notify(Notice::Measuring {
        runtime: &runtime,
        starts,
        cache_dir,
    });
    let base = measure(docker, collector, &runtime, starts)?;
    std::fs::create_dir_all(cache_dir)
        .map_err(MiningError::io(format!("creating {}", cache_dir.display())))?;
    sysutil::fs::write_atomic(&file, base.to_json().as_bytes())?;
    Ok(base)
}

/// Start the probe image `starts` times under the allow-all filter; union
/// the calls made in `Phase::Runtime`.
pub fn measure(
    docker: &DockerClient,
    collector: &EbpfCollector,
    runtime: &str,
    starts: usize,
) -> Result<RuntimeBase> {
    ensure_probe_image(docker)?;
    let parent = Cgroup::create("runtime-probe")?;
    let parent_arg = cgroup_parent_arg(&parent)?;
    let mut syscalls = BTreeSet::new();
    for i in 0..starts {
        let spec = ContainerSpec {
            image: PROBE_IMAGE.to_string(),
            cmd: Some(vec!["/probe".to_string()]),
            seccomp_profile_json: Some(ALLOW_ALL_PROFILE.to_string()),
            cgroup_parent: Some(parent_arg.clone()),
            ..ContainerSpec::default()
        };
        let id = docker.create(&spec)?;
        let run = docker.start(&id).map_err(MiningError::from).and_then(|()| {
            docker.wait(&id, Duration::from_secs(30))?.ok_or_else(|| {
                MiningError::Failed("the runtime probe did not exit within 30 s".into())
            })
        });
        let _ = docker.remove(&id);
        let code = run.map_err(MiningError::step(format!("runtime probe start {}", i + 1)))?;
        if code != 0 {
            return Err(MiningError::Failed(format!(
                "the runtime probe exited with status {code}"
            )));
        }
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
    if syscalls.is_empty() {
        return Err(MiningError::Failed(
            "the runtime probe showed no post-filter syscall; is the runtime installing the filter?"
                .into(),
        ));
    }
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
    if !cfg!(target_arch = "x86_64") {
        return Err(MiningError::Failed(
            "the runtime probe image exists for x86_64 only".into(),
        ));
    }
    let tar = crate::runtime_probe::probe_image_tar();
    docker.import_image(&tar, PROBE_IMAGE, &["CMD [\"/probe\"]"])?;
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
