//! Capture under bursts of container starts, with real Docker containers:
//! no call of a new container is lost up to the documented capacity, and
//! beyond it the workloads whose calls were lost are named.
//!
//! Each container runs the known-count probe (`tests/probes/known_calls.c`)
//! with its own count of getpgrp (111), which neither runc nor libc's
//! start-up makes, so every container's count is exact ground truth.
//! Needs root, dockerd (`scripts/start-dockerd.sh`) and the test image
//! (`tests/images/build.sh`).

mod probes;

use collector::ebpf::{EbpfCollector, EbpfOptions, WorkloadKey};
use schemas::{Abi, SyscallKey};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const IMAGE: &str = "sandmine-test/busybox:1";
const GETPGRP: SyscallKey = SyscallKey {
    abi: Abi::X86_64,
    nr: 111,
};

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI must be installed");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// POST to the Engine API over its unix socket; returns the status code.
/// The CLI costs a process per call, too slow to start 200 containers
/// within a second on a small machine.
fn engine_post(path: &str) -> u16 {
    let mut s = UnixStream::connect("/var/run/docker.sock").expect("dockerd socket");
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Containers created (not started) under their own cgroup parent, each
/// running the probe with `111:<count>`.
struct Burst {
    ids: Vec<String>,
    counts: Vec<u64>,
}

impl Burst {
    fn create(tag: &str, probe: &Path, n: usize) -> Burst {
        let mount = format!("{}:/probe:ro", probe.display());
        let parent = format!("/sm-burst-{tag}-{}", std::process::id());
        let mut ids = Vec::new();
        let mut counts = Vec::new();
        for i in 0..n {
            let count = 1 + i as u64;
            let arg = format!("111:{count}");
            let id = docker(&[
                "create",
                "--network",
                "none",
                "--cgroup-parent",
                &parent,
                "--label",
                "org.sandmine.test=burst",
                "-v",
                &mount,
                "--entrypoint",
                "/probe",
                IMAGE,
                &arg,
            ]);
            ids.push(id);
            counts.push(count);
        }
        Burst { ids, counts }
    }

    /// Start every container at once (one thread each); returns the span
    /// from the first request to the last answer.
    fn start_all(&self) -> Duration {
        let t0 = Instant::now();
        let threads: Vec<_> = self
            .ids
            .iter()
            .map(|id| {
                let path = format!("/containers/{id}/start");
                std::thread::spawn(move || engine_post(&path))
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), 204, "start failed");
        }
        t0.elapsed()
    }

    fn wait_all(&self) {
        let mut a = vec!["wait"];
        a.extend(self.ids.iter().map(String::as_str));
        for code in docker(&a).lines() {
            assert_eq!(code.trim(), "0", "a probe container failed");
        }
    }
}

impl Drop for Burst {
    fn drop(&mut self) {
        for chunk in self.ids.chunks(100) {
            let mut a = vec!["rm", "-f"];
            a.extend(chunk.iter().map(String::as_str));
            let _ = Command::new("docker").args(&a).output();
        }
    }
}

/// The workload keys of each container, by container id (the leaf of the
/// cgroup the kernel saw it created in).
fn keys_by_container(c: &EbpfCollector, ids: &[String]) -> BTreeMap<String, Vec<WorkloadKey>> {
    let mut out: BTreeMap<String, Vec<WorkloadKey>> = BTreeMap::new();
    for k in c.keys().unwrap() {
        let Some(name) = c.cgroup_name(&k).unwrap() else {
            continue;
        };
        let leaf = name.leaf_str();
        if ids.contains(&leaf) {
            out.entry(leaf).or_default().push(k);
        }
    }
    out
}

/// 200 containers started at once, right after a fresh load: every one's
/// probe calls are counted exactly, and nothing is lost.
#[test]
fn a_burst_of_200_starts_after_a_fresh_load_loses_nothing() {
    let probe = probes::build_static("known_calls", probes::KNOWN_CALLS);
    let burst = Burst::create("200", &probe, 200);
    let c = EbpfCollector::load(&EbpfOptions {
        auto_track: true,
        ..EbpfOptions::default()
    })
    .expect("load (run as root)");
    let span = burst.start_all();
    burst.wait_all();
    let by = keys_by_container(&c, &burst.ids);
    let mut wrong = Vec::new();
    for (id, want) in burst.ids.iter().zip(&burst.counts) {
        let got: u64 = by
            .get(id)
            .map(|ks| {
                ks.iter()
                    .map(|k| {
                        c.observe(k)
                            .unwrap()
                            .syscalls
                            .get(&GETPGRP)
                            .map_or(0, |u| u.calls)
                    })
                    .sum()
            })
            .unwrap_or(0);
        if got != *want {
            wrong.push((id[..12].to_string(), *want, got));
        }
    }
    let lost = c.lost_calls().unwrap();
    eprintln!(
        "burst: 200 starts in {:.2} s; {} containers tracked; {} with a wrong count; lost_calls {lost}",
        span.as_secs_f64(),
        by.len(),
        wrong.len()
    );
    assert!(wrong.is_empty(), "wrong counts (id, want, got): {wrong:?}");
    assert_eq!(lost, 0, "lost calls");
}
