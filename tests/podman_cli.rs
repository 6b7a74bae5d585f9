//! podman, for real (issue 12, "podman and CRI"): `mine-image` through
//! podman's Docker-compatible API socket, the mined profile enforced by
//! `podman run --security-opt seccomp=`, and the collector's attribution of
//! a podman container (image name, exact calls, verified).
//!
//! podman 4.3 from Debian runs here with runc, cgroupfs and the ulimits
//! this VM allows (crun fails on this hybrid cgroup host; the default
//! ulimits exceed its hard limits): a `containers.conf` of the fixture's
//! own says so, and its own `--root`/`--runroot` (vfs storage) keep the
//! test apart from any other podman use.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The test image, loaded into podman from dockerd (`docker save`):
/// podman names it under `localhost/`.
const DOCKER_IMAGE: &str = "sandmine-test/busybox:1";
const IMAGE: &str = "localhost/sandmine-test/busybox:1";

/// A podman API service of the fixture's own.
struct Podman {
    dir: PathBuf,
    socket: PathBuf,
    service: Option<std::process::Child>,
}

impl Podman {
    fn start(f: &Fixture) -> Podman {
        let dir = f.path("podman");
        std::fs::create_dir_all(&dir).expect("podman dir");
        std::fs::write(
            dir.join("containers.conf"),
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1000:1000\"]\n\
             [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
        )
        .expect("containers.conf");
        let mut p = Podman {
            socket: dir.join("podman.sock"),
            dir,
            service: None,
        };
        // The test image, from dockerd.
        let save = Command::new("docker")
            .args(["save", DOCKER_IMAGE])
            .output()
            .expect("docker save");
        assert!(save.status.success(), "docker save: {save:?}");
        let tar = p.dir.join("image.tar");
        std::fs::write(&tar, &save.stdout).expect("image tar");
        let load = p
            .cmd(&["load", "-i", &tar.display().to_string()])
            .output()
            .expect("podman must be installed (scripts/install-deps.sh)");
        assert!(load.status.success(), "podman load: {load:?}");
        let service = p
            .cmd(&[
                "system",
                "service",
                "--time=0",
                &format!("unix://{}", p.socket.display()),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(p.dir.join("service.log")).expect("log"))
            .spawn()
            .expect("podman system service");
        p.service = Some(service);
        // Ready when /_ping answers on the socket.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ping = Command::new("curl")
                .args(["-fs", "--unix-socket"])
                .arg(&p.socket)
                .arg("http://d/v1.41/_ping")
                .output()
                .expect("curl");
            if ping.status.success() && ping.stdout == b"OK" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "podman's API did not answer in 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("run"))
            .args(["--storage-driver", "vfs"])
            .args(args);
        c
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        self.cmd(args).output().expect("podman")
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "-af"]);
        if let Some(mut s) = self.service.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
        let _ = self.run(&["system", "reset", "-f"]);
    }
}

const WORKLOAD: &str = "mkdir /tmp/d && echo made";

#[test]
fn mine_image_through_podman_and_the_profile_holds_under_podman_run() {
    let f = Fixture::new();
    let pm = Podman::start(&f);
    let out = f.arg("podman.json");
    let o = f.sandmine(&[
        "mine-image",
        "--socket",
        &pm.socket.display().to_string(),
        "--reachable",
        "off",
        "-o",
        &out,
        IMAGE,
        "--",
        "/bin/busybox",
        "sh",
        "-c",
        WORKLOAD,
    ]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    let p = Profile::load(Path::new(&out));
    p.assert_allows(&["mkdir", "execve", "write"], &[]);
    assert!(!p.allows("ptrace") && !p.allows("sync"), "{:?}", p.names());

    // The mined profile, enforced by podman itself: the workload runs.
    let run = |profile: &str| {
        pm.run(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--security-opt",
            &format!("seccomp={profile}"),
            IMAGE,
            "/bin/busybox",
            "sh",
            "-c",
            WORKLOAD,
        ])
    };
    let ok = run(&out);
    assert!(ok.status.success(), "{ok:?}");
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "made\n");

    // Without mkdir the same workload gets the profile's EPERM.
    let without = p.write_without(&["mkdir"], &f.path("no-mkdir.json"));
    let denied = run(&without.display().to_string());
    assert_eq!(denied.status.code(), Some(1), "{denied:?}");
    let err = String::from_utf8_lossy(&denied.stderr);
    assert!(
        err.contains("can't create directory '/tmp/d': Operation not permitted"),
        "{err}"
    );
}

#[test]
fn the_collector_attributes_a_podman_container_exactly() {
    let f = Fixture::new();
    let pm = Podman::start(&f);
    let probe = f.probe_static("getppid_loop", GETPPID_LOOP);
    let db = f.arg("standalone.db");
    let tag = format!("podman-{}", std::process::id());
    let pins = format!("/sys/fs/bpf/sandmine-test-{tag}");
    let mut cmd = f.command(&["standalone", "--store", &db]);
    cmd.args([
        "--set",
        &format!("collector.state_dir=\"{}\"", f.arg("state")),
    ])
    .args(["--set", &format!("collector.pin_dir=\"{pins}\"")])
    .args(["--set", "collector.host_id=\"hP\""])
    .args(["--set", "collector.interval=\"1s\""])
    .args([
        "--set",
        &format!("collector.podman_socket=\"{}\"", pm.socket.display()),
    ]);
    // An image name of this test's own: other tests' podman containers
    // are attributed too, to their images.
    let image = format!("localhost/sandmine-test/busybox:{tag}");
    let t = pm.run(&["tag", IMAGE, &image]);
    assert!(t.status.success(), "{t:?}");
    let r = f.spawn(cmd);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&r.stderr)
        .unwrap_or_default()
        .contains("collecting as host")
    {
        assert!(Instant::now() < deadline, "the collector did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = pm.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{}:/probe:ro", probe.display()),
        &image,
        "/probe",
        "4321",
        "111",
    ]);
    assert!(run.status.success(), "{run:?}");
    // Two ticks after the container is gone, then a clean stop (the last
    // delta is stored on SIGTERM).
    std::thread::sleep(Duration::from_millis(2500));
    let o = r.terminate(Duration::from_secs(30));
    let _ = std::fs::remove_dir_all(&pins);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    let q = f.sandmine(&[
        "query",
        "--set",
        &format!("store.embedded.path=\"{db}\""),
        "image",
        &image,
    ]);
    assert_eq!(q.code(), Some(0), "{}", q.describe());
    let v: Value = serde_json::from_str(&q.stdout).expect("json");
    assert_eq!(
        (v["hosts"].as_u64(), v["containers"].as_u64()),
        (Some(1), Some(1)),
        "{v}"
    );
    // getpgrp: neither libc's start-up nor the runtime makes it (podman's
    // runc makes two getppid calls of its own after the filter).
    let getpgrp = v["syscalls"]
        .as_array()
        .expect("syscalls")
        .iter()
        .find(|s| s["nr"] == 111 && s["abi"] == "x86_64")
        .and_then(|s| s["calls"].as_u64());
    assert_eq!(getpgrp, Some(4321), "{v}");
    // Verified: the engine (podman) knows the container and agrees on
    // its cgroup parent, so it counts toward the image.
    assert_eq!(v["incidence"][0]["unverified"], Value::Null, "{v}");
    assert_eq!(v["incidence"][0]["incomplete"], Value::Null, "{v}");
}
