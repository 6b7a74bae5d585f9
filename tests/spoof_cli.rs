//! Issue 9 item 3, spoofed containers, end to end with real parts: the
//! BPF collector (`sandmine standalone`, its embedded store), dockerd, the
//! test image, and cgroups made by hand that carry a real running
//! container's id.
//!
//! - Spoof A: `/sm-foreign-T/<collector's parent>/<id of a running
//!   container>`, a subtree chowned to uid 65534 (what systemd's
//!   `Delegate=` does). The parent's name is right, its place is not: it
//!   is no container at all, and nothing of it reaches the store.
//! - Spoof B: `/<collector's parent>/<id of a container docker runs under
//!   /docker>`: an accepted parent, but the engine says the container's
//!   cgroup parent is its default: stored marked unverified, and the
//!   compiler neither counts it nor lets its syscalls widen the profile.
//!
//! Needs root, dockerd, the test images (tests/images/build.sh) and a
//! cgroup v2 hierarchy (pure or hybrid).

mod common;

use common::fleet::{docker, wait_for_line, Fleet, BUSYBOX, GETPGRP, SYSINFO, TIMES};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use testsvc::ClickHouse;

/// Cgroup directories made by the test, removed (deepest first) on drop.
struct Cgroups(Vec<PathBuf>);

impl Drop for Cgroups {
    fn drop(&mut self) {
        for d in self.0.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// Runs `probe ARGS` as a process of cgroup `dir` in a mount namespace of
/// its own (the collector tracks every namespace but the host's), and
/// waits for it.
fn run_in(dir: &Path, probe: &Path, args: &[&str]) {
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec unshare -m {} {}",
        dir.display(),
        probe.display(),
        args.join(" ")
    );
    let o = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert!(
        o.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn container_id(name: &str) -> String {
    let o = docker(&["inspect", "-f", "{{.Id}}", name]);
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn a_spoofed_container_cgroup_counts_nothing_toward_its_image() {
    let root = collector::cgroup::v2_root().expect("a cgroup v2 hierarchy");
    let ch = ClickHouse::start(); // unused by standalone; Fleet wants a config
    let mut fleet = Fleet::new("kind = \"nats\"\nurl = \"nats://127.0.0.1:1\"\n", &ch);
    let parent = format!("sm-{}-hS", fleet.tag);
    let db = fleet.f.arg("standalone.db");
    let state = fleet.f.arg("state-standalone");
    let mut cmd = fleet.cmd(&["standalone", "--store", &db]);
    cmd.args(["--set", &format!("collector.state_dir=\"{state}\"")])
        .args([
            "--set",
            &format!("collector.pin_dir=\"{}\"", fleet.pin_dir("hS")),
        ])
        .args(["--set", "collector.host_id=\"hS\""])
        .args(["--set", &format!("collector.cgroup_parent=\"{parent}\"")]);
    let r = fleet.f.spawn(cmd);
    wait_for_line(&r, "collecting as host");
    fleet.collectors.insert("hS".into(), r);

    // The victims: a container under the collector's parent that makes
    // 5 getpgrp and stays up, and one docker runs under its default
    // parent (which this collector does not publish).
    let mount = format!("{}:/probe:ro", fleet.probe.display());
    let (v1, v2) = (
        format!("sm-spoof-a-{}", fleet.tag),
        format!("sm-spoof-b-{}", fleet.tag),
    );
    docker(&[
        "run",
        "-d",
        "--name",
        &v1,
        "--network",
        "none",
        "--cgroup-parent",
        &format!("/{parent}"),
        "-v",
        &mount,
        BUSYBOX,
        "sh",
        "-c",
        &format!("/probe {GETPGRP}:5 && exec sleep 120"),
    ]);
    docker(&[
        "run",
        "-d",
        "--name",
        &v2,
        "--network",
        "none",
        BUSYBOX,
        "sleep",
        "120",
    ]);
    let _rm = scopeguard(&[&v1, &v2]);
    let (id1, id2) = (container_id(&v1), container_id(&v2));

    // Spoof A: a delegated subtree holding id1 under a foreign parent.
    let foreign = root.join(format!("sm-foreign-{}", fleet.tag));
    let a = foreign.join(&parent).join(&id1);
    std::fs::create_dir_all(&a).unwrap();
    let _a = Cgroups(vec![foreign.clone(), foreign.join(&parent), a.clone()]);
    for d in [&foreign, &foreign.join(&parent), &a] {
        for f in [
            "",
            "cgroup.procs",
            "cgroup.subtree_control",
            "cgroup.threads",
        ] {
            let p = if f.is_empty() { d.clone() } else { d.join(f) };
            std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
        }
    }
    run_in(&a, &fleet.probe, &[&format!("{TIMES}:7")]);

    // Spoof B: id2 under the collector's own (accepted) parent.
    let b = root.join(&parent).join(&id2);
    std::fs::create_dir(&b).unwrap();
    let _b = Cgroups(vec![b.clone()]);
    run_in(&b, &fleet.probe, &[&format!("{SYSINFO}:9")]);

    // Let a tick pass, then stop: the last delta is stored on SIGTERM.
    std::thread::sleep(Duration::from_millis(2500));
    let r = fleet.collectors.remove("hS").unwrap();
    let o = r.terminate(Duration::from_secs(30));
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    let log = o.stderr.clone();

    let set = format!("store.embedded.path=\"{db}\"");
    let q = fleet
        .f
        .sandmine(&["query", "--set", &set, "image", BUSYBOX]);
    assert_eq!(q.code(), Some(0), "{}", q.describe());
    let v: Value = serde_json::from_str(&q.stdout).unwrap();
    // Exactly the real container, verified, and spoof B, marked.
    let mut containers: Vec<(String, bool)> = v["incidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["container_id"].as_str().unwrap().to_string(),
                c["unverified"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    containers.sort();
    let mut want = vec![(id1.clone(), false), (id2.clone(), true)];
    want.sort();
    assert_eq!(containers, want, "{}\n{log}", q.stdout);
    let calls = |nr: u32| -> u64 {
        v["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["nr"] == nr && s["abi"] == "x86_64")
            .map(|s| s["calls"].as_u64().unwrap())
            .sum()
    };
    // Spoof A's 7 times calls reached nothing; spoof B's 9 sysinfo are
    // stored (marked); the real container's 5 getpgrp are there.
    assert_eq!(
        (calls(TIMES), calls(SYSINFO), calls(GETPGRP)),
        (0, 9, 5),
        "{}",
        q.stdout
    );
    assert!(
        // (logfmt escapes the quotes.)
        log.contains(&format!(
            r#"container {id2} (image \"{BUSYBOX}\") is unverified: docker says its cgroup parent is \"\", but its cgroup is under \"{parent}\""#
        )),
        "{log}"
    );

    // The compiler: one container counted, the unverified one neither
    // counted nor widening (sysinfo is not allowed by its evidence).
    let o = fleet.f.sandmine(&[
        "explain",
        "--set",
        &set,
        "--runtime-base",
        "none",
        BUSYBOX,
        "sysinfo",
    ]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert!(
        o.stdout.contains("sysinfo: denied with EPERM: ")
            && o.stdout.contains("the image's 1 unverified container(s) (cgroup not provably its runtime's, calls possibly forged) are not consulted at all"),
        "{}",
        o.stdout
    );
    // getpgrp: the real container's, and only it counted.
    let o = fleet.f.sandmine(&[
        "explain",
        "--set",
        &set,
        "--runtime-base",
        "none",
        BUSYBOX,
        "getpgrp",
    ]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert!(o.stdout.contains("in 1 of 1 container(s)"), "{}", o.stdout);
}

/// Removes the named containers on drop.
struct Containers(Vec<String>);

impl Drop for Containers {
    fn drop(&mut self) {
        for c in &self.0 {
            let _ = Command::new("docker").args(["rm", "-f", c]).output();
        }
    }
}

fn scopeguard(names: &[&str]) -> Containers {
    Containers(names.iter().map(|s| s.to_string()).collect())
}
