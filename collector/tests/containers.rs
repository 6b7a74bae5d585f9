//! Short-lived containers in a row, started with runc itself: each one's
//! calls land in its own workload, exactly, and none is ever merged with
//! another, although cgroup ids and mount-namespace inodes get reused.
//! Auto-track mode, as the fleet collector runs. Needs root and runc.

mod probes;

use collector::cgroup::Cgroup;
use collector::ebpf::{EbpfCollector, EbpfOptions};
use schemas::{Abi, Phase, SyscallKey};
use std::path::Path;
use std::process::Command;

const CONTAINERS: u32 = 1000;

fn bundle(dir: &Path, probe: &Path, cgroup_parent: &str) {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy(probe, rootfs.join("bin/probe")).unwrap();
    let out = Command::new("runc")
        .arg("spec")
        .current_dir(dir)
        .status()
        .expect("runc must be installed");
    assert!(out.success());
    let path = dir.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    cfg["process"]["terminal"] = false.into();
    cfg["root"]["readonly"] = true.into();
    cfg["linux"]["cgroupsPath"] = cgroup_parent.into();
    // The allow-all filter sandmine mines under: it hides nothing, and
    // marks where runc's privileged set-up ends.
    cfg["linux"]["seccomp"] = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": []
    });
    std::fs::write(&path, serde_json::to_vec(&cfg).unwrap()).unwrap();
}

fn set_args(dir: &Path, args: &[&str], cgroups_path: &str) {
    let path = dir.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    cfg["process"]["args"] = args.iter().map(|a| serde_json::Value::from(*a)).collect();
    cfg["linux"]["cgroupsPath"] = cgroups_path.into();
    std::fs::write(&path, serde_json::to_vec(&cfg).unwrap()).unwrap();
}

#[test]
fn a_thousand_short_lived_containers_are_never_merged() {
    let probe = probes::build_static("getppid_static", probes::GETPPID_LOOP);
    let collector = EbpfCollector::load(&EbpfOptions {
        auto_track: true,
        ..EbpfOptions::default()
    })
    .expect("load (run as root)");
    let parent = Cgroup::create("ctest").unwrap();
    let root = collector::cgroup::v2_root().unwrap();
    let rel = format!("/{}", parent.path().strip_prefix(&root).unwrap().display());
    let dir = tempfile::tempdir().unwrap();
    bundle(dir.path(), &probe, &rel);
    let mut c = collector;
    let mut seen_cgroups = std::collections::HashSet::new();
    for i in 0..CONTAINERS {
        let n = 1 + (i % 7);
        let id = format!("sandmine-ctest-{}-{i}", std::process::id());
        set_args(
            dir.path(),
            &["/bin/probe", &n.to_string(), "111"],
            &format!("{rel}/{id}"),
        );
        let st = Command::new("runc")
            .args(["run", "--bundle"])
            .arg(dir.path())
            .arg(&id)
            .status()
            .unwrap();
        assert!(st.success(), "container {i} failed");
        let mine: Vec<_> = c
            .keys()
            .unwrap()
            .into_iter()
            .filter(|k| {
                c.info(k)
                    .unwrap()
                    .is_some_and(|inf| inf.parent_cgroup_id == parent.id())
            })
            .collect();
        assert_eq!(
            mine.len(),
            1,
            "container {i}: expected one workload, got {mine:?}"
        );
        let obs = c.observe(&mine[0]).unwrap();
        // getpgrp (111), which neither runc nor libc's start-up makes.
        let probe = obs.syscalls[&SyscallKey {
            abi: Abi::X86_64,
            nr: 111,
        }];
        assert_eq!(
            probe.calls,
            u64::from(n),
            "container {i}: counts merged or lost"
        );
        assert_eq!(probe.phases.0, Phase::Image.bit(), "container {i}");
        // The entrypoint's execve went through runc's filter, before the
        // exec completed: the runtime's, and in the profile.
        let execve = obs.syscalls[&SyscallKey {
            abi: Abi::X86_64,
            nr: 59,
        }];
        assert!(
            execve.phases.contains(Phase::Runtime),
            "container {i}: {execve:?}"
        );
        // runc's privileged set-up ran before its seccomp filter: Setup only.
        let pivot_root = obs.syscalls[&SyscallKey {
            abi: Abi::X86_64,
            nr: 155,
        }];
        assert_eq!(pivot_root.phases.0, Phase::Setup.bit(), "container {i}");
        seen_cgroups.insert(mine[0].cgroup_id);
        c.untrack(&mine[0]).unwrap();
    }
    eprintln!(
        "{CONTAINERS} containers, {} distinct cgroup ids",
        seen_cgroups.len()
    );
}
