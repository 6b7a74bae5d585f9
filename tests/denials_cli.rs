//! Denials, back from the kernel, end to end (issue 11, the fleet path):
//! real containers under real seccomp profiles on a simulated host, a real
//! `sandmine collect` at wire version 6 → nats-server → `sandmine
//! aggregate` → ClickHouse 18.16, then `sandmine query denials` and the
//! aggregator's `sandmine_denials_total`. The probe makes a known number
//! of calls, so the counts are checked exactly, with the image and the
//! profile version (the sha256 of the profile `docker inspect` reports).
//!
//! Needs root, dockerd (scripts/start-dockerd.sh), the image
//! sandmine-test/busybox:1 (tests/images/build.sh), nats-server and
//! clickhouse-server. Fails, never skips, when one is missing.

mod common;

use common::fleet::{docker, nats_broker, wait_for_line, Fleet, CONVERGE, GETPGRP, TIMES};
use serde_json::Value;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use testsvc::{ClickHouse, Nats};

/// acct: Docker's default profile denies it (EPERM) without CAP_SYS_PACCT.
const ACCT: u32 = 163;

/// Creates a container of the probe image on `host` under `seccomp` (a
/// profile file, or Docker's default), runs it to its end, removes it, and
/// returns its exit code and the profile version the engine reports (16
/// hex digits of the sha256 of `HostConfig.SecurityOpt`'s `seccomp=` JSON,
/// or "runtime/default" when it names none).
fn run(fleet: &Fleet, host: &str, seccomp: Option<&str>, args: &[&str]) -> (i32, String) {
    let parent = format!("/sm-{}-{host}", fleet.tag);
    let mut a = vec!["create", "--network", "none", "--cgroup-parent", &parent];
    let opt;
    if let Some(f) = seccomp {
        opt = format!("seccomp={f}");
        a.extend(["--security-opt", &opt]);
    }
    a.push(&fleet.probe_image);
    a.push("/probe");
    a.extend(args);
    let id = String::from_utf8(docker(&a).stdout)
        .unwrap()
        .trim()
        .to_string();
    let opts: Vec<String> = serde_json::from_slice::<Option<Vec<String>>>(
        &docker(&["inspect", "-f", "{{json .HostConfig.SecurityOpt}}", &id]).stdout,
    )
    .unwrap()
    .unwrap_or_default();
    let version = match opts.iter().find_map(|o| o.strip_prefix("seccomp=")) {
        Some(json) => sha256_hex(json.as_bytes())[..16].to_string(),
        None => "runtime/default".to_string(),
    };
    let st = Command::new("docker")
        .args(["start", "-a", &id])
        .output()
        .unwrap();
    docker(&["rm", "-f", &id]);
    (st.status.code().unwrap_or(-1), version)
}

/// sha256 by coreutils, independent of the collector's hashing.
fn sha256_hex(b: &[u8]) -> String {
    let mut c = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(b).unwrap();
    let o = c.wait_with_output().unwrap();
    String::from_utf8(o.stdout).unwrap()[..64].to_string()
}

fn profile(fleet: &Fleet, name: &str, rule: &str) -> String {
    fleet
        .f
        .write(
            name,
            &format!(
                r#"{{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],"syscalls":[{rule}]}}"#
            ),
        )
        .to_str()
        .unwrap()
        .to_string()
}

/// The store's denials as (syscall, action, profile, denials, hosts,
/// containers) of `image`.
fn stored(fleet: &Fleet, image: &str) -> Vec<(String, String, String, u64, u64, u64)> {
    let q = fleet
        .cmd(&["query"])
        .args(["denials", "--image", image, "--format", "json"])
        .output()
        .unwrap();
    assert!(q.status.success(), "{}", String::from_utf8_lossy(&q.stderr));
    let v: Value = serde_json::from_slice(&q.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["image"], image);
            assert_eq!(r["abi"], "x86_64");
            assert!(r["first_seen"].is_string() && r["last_seen"].is_string());
            (
                r["syscall"].as_str().unwrap().to_string(),
                r["action"].as_str().unwrap().to_string(),
                r["profile"].as_str().unwrap().to_string(),
                r["denials"].as_u64().unwrap(),
                r["hosts"].as_u64().unwrap(),
                r["containers"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn scrape(port: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

/// Two containers under a profile that answers getpgrp with EPERM, each
/// calling it 37 times; one under a profile that kills on times; one
/// under Docker's default calling acct 4 times. The store shows exactly
/// 74 errno denials (2 containers), 1 kill and 4 default-profile denials,
/// each under the profile version the engine reported, and the
/// aggregator counts 79 for the image.
#[test]
fn denials_reach_the_store_exactly_with_image_and_profile() {
    let nats = Nats::start();
    let ch = ClickHouse::start();
    let mut fleet = Fleet::new(&nats_broker(&nats), &ch);
    let port = testsvc::free_port();
    fleet.start_aggregator_with(&[&format!("metrics.listen=\"127.0.0.1:{port}\"")]);
    fleet.start_collector_with("hD", &["collector.max_wire_version=6"]);
    let eperm = profile(
        &fleet,
        "eperm.json",
        r#"{"names":["getpgrp"],"action":"SCMP_ACT_ERRNO","errnoRet":1}"#,
    );
    let kill = profile(
        &fleet,
        "kill.json",
        r#"{"names":["times"],"action":"SCMP_ACT_KILL_PROCESS"}"#,
    );
    let getpgrp = format!("{GETPGRP}:37");
    let (c1, v_eperm) = run(&fleet, "hD", Some(&eperm), &[&getpgrp]);
    let (c2, v_eperm2) = run(&fleet, "hD", Some(&eperm), &[&getpgrp]);
    assert_eq!((c1, c2, &v_eperm), (0, 0, &v_eperm2));
    // Killed at its first call (128 + SIGSYS): one kill, not three.
    let (c3, v_kill) = run(&fleet, "hD", Some(&kill), &[&format!("{TIMES}:3")]);
    assert_eq!(c3, 128 + 31);
    let (c4, v_default) = run(&fleet, "hD", None, &[&format!("{ACCT}:4")]);
    assert_eq!((c4, v_default.as_str()), (0, "runtime/default"));
    assert_ne!(v_eperm, v_kill);
    let mut want = vec![
        ("times".to_string(), "kill".to_string(), v_kill, 1, 1, 1),
        (
            "getpgrp".to_string(),
            "errno 1".to_string(),
            v_eperm,
            74,
            1,
            2,
        ),
        (
            "acct".to_string(),
            "errno 1".to_string(),
            "runtime/default".to_string(),
            4,
            1,
            1,
        ),
    ];
    // Sorted as the store sorts: by syscall number (100, 111, 163).
    want.sort_by_key(|r| match r.0.as_str() {
        "times" => TIMES,
        "getpgrp" => GETPGRP,
        _ => ACCT,
    });
    let image = fleet.probe_image.clone();
    let deadline = Instant::now() + CONVERGE;
    let mut got = stored(&fleet, &image);
    while got != want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        got = stored(&fleet, &image);
    }
    assert_eq!(got, want, "logs:\n{}", fleet.logs());
    // The calls the filters let through are stored as before; the denied
    // ones were never made, so they are no calls.
    let metrics = scrape(port);
    assert!(
        metrics.contains(&format!(
            "\nsandmine_denials_total{{image=\"{image}\"}} 79\n"
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nsandmine_denials_total{image=\"(other)\"} 0\n"),
        "{metrics}"
    );
    // The collector said nothing about dropping denials (it sends v6).
    let err = std::fs::read_to_string(&fleet.collectors["hD"].stderr).unwrap();
    assert!(!err.contains("are not sent: max_wire_version"), "{err}");
}

/// Below wire version 6 the collector drops the denials, says so once,
/// and still sends the calls.
#[test]
fn below_version_6_denials_are_dropped_with_one_warning() {
    let nats = Nats::start();
    let ch = ClickHouse::start();
    let mut fleet = Fleet::new(&nats_broker(&nats), &ch);
    fleet.start_aggregator();
    fleet.start_collector_with("hE", &["collector.max_wire_version=5"]);
    let eperm = profile(
        &fleet,
        "eperm.json",
        r#"{"names":["getpgrp"],"action":"SCMP_ACT_ERRNO","errnoRet":1}"#,
    );
    let getpgrp = format!("{GETPGRP}:5");
    let times = format!("{TIMES}:2");
    for _ in 0..2 {
        assert_eq!(run(&fleet, "hE", Some(&eperm), &[&getpgrp, &times]).0, 0);
    }
    // The calls arrive (times, allowed: 4 calls) ...
    let deadline = Instant::now() + CONVERGE;
    loop {
        let q = fleet
            .cmd(&["query"])
            .args(["image", &fleet.probe_image])
            .output()
            .unwrap();
        let done = q.status.success() && {
            let v: Value = serde_json::from_slice(&q.stdout).unwrap();
            v["containers"].as_u64() == Some(2)
                && v["syscalls"].as_array().unwrap().iter().any(|s| {
                    s["nr"] == TIMES && s["abi"] == "x86_64" && s["calls"].as_u64() == Some(4)
                })
        };
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "logs:\n{}", fleet.logs());
        std::thread::sleep(Duration::from_millis(500));
    }
    // ... and no denial; the collector warned once.
    assert_eq!(stored(&fleet, &fleet.probe_image.clone()), []);
    let c = fleet.collectors.remove("hE").unwrap();
    wait_for_line(&c, "are not sent: max_wire_version 5 is below 6");
    let err = std::fs::read_to_string(&c.stderr).unwrap();
    assert_eq!(
        err.matches("are not sent: max_wire_version").count(),
        1,
        "{err}"
    );
    let o = c.terminate(Duration::from_secs(30));
    assert_eq!(o.code(), Some(0), "{}", o.describe());
}

/// `query denials` on a store with none: the header alone in every
/// format; a bad `--since` is a clear usage error; `--help` has examples.
#[test]
fn query_denials_formats_errors_and_help() {
    let f = common::Fixture::new();
    let db = f.path("store.db");
    let set = format!("store.embedded.path=\"{}\"", db.display());
    let q = |args: &[&str]| {
        let mut a = vec!["query", "--set", &set, "denials"];
        a.extend(args);
        f.sandmine(&a)
    };
    let o = q(&[]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert_eq!(
        o.stdout.split_whitespace().collect::<Vec<_>>(),
        [
            "IMAGE",
            "ABI",
            "SYSCALL",
            "ACTION",
            "PROFILE",
            "DENIALS",
            "HOSTS",
            "CONTAINERS",
            "FIRST_SEEN",
            "LAST_SEEN"
        ]
    );
    let o = q(&["--format", "csv", "--image", "app:1", "--since", "7d"]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert_eq!(
        o.stdout,
        "image,abi,syscall,action,profile,denials,hosts,containers,first_seen,last_seen\n"
    );
    let o = q(&["--format", "json"]);
    assert_eq!(
        (o.code(), o.stdout.trim()),
        (Some(0), "[]"),
        "{}",
        o.describe()
    );
    let o = q(&["--since", "last tuesday"]);
    assert_eq!(o.code(), Some(2), "{}", o.describe());
    assert!(
        o.stderr.contains("is neither a UTC date"),
        "{}",
        o.describe()
    );
    let o = f.sandmine(&["query", "denials", "--help"]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert!(
        o.stdout.contains(
            "Examples:\n  sandmine query denials\n  sandmine query denials --image nginx:1.27 --since 7d"
        ),
        "{}",
        o.stdout
    );
}
