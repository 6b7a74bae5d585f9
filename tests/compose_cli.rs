//! The compose fleet (deploy/compose/): its images built from this host's
//! packages and this build's `sandmine` (deploy/compose/build-images.sh),
//! brought up by the real `docker-compose` (nats-server, ClickHouse, an
//! aggregator and a collector, each in its container), and a busybox
//! container's known calls counted exactly in that fleet's ClickHouse.
//!
//! Needs root, dockerd, docker-compose, nats-server and clickhouse-server
//! (scripts/install-deps.sh) and the test image sandmine-test/busybox:1
//! (tests/images/build.sh). Anything missing fails the test. Each run is a
//! compose project of its own, on free ports, with its own pin directory,
//! and counts only containers under its own cgroup parent, so runs in
//! parallel with other tests see nothing of each other.

mod common;

use common::fleet::{docker, unique, BUSYBOX, GETPGRP, PROBE_SRC, SYSINFO, TIMES};
use common::{Fixture, Out};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// `docker-compose up` waits for the services' healthchecks.
const UP_TIMEOUT: Duration = Duration::from_secs(180);
/// How long the fleet may take to store what a container did.
const CONVERGE: Duration = Duration::from_secs(120);

fn compose_dir() -> PathBuf {
    Path::new(ROOT).join("deploy/compose")
}

/// One compose project, taken down with its volumes when dropped.
struct ComposeFleet {
    f: Fixture,
    project: String,
    files: Vec<PathBuf>,
    env: Vec<(String, String)>,
    image: String,
    pin_dir: PathBuf,
    /// Label of the workload containers this test ran (kept after they
    /// exit, so the collector can inspect them: `Fleet::keep_label`).
    label: String,
    ch_http: u16,
    agg_metrics: u16,
    col_metrics: u16,
}

impl ComposeFleet {
    fn compose(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker-compose");
        c.current_dir(compose_dir()).args(["-p", &self.project]);
        for file in &self.files {
            c.arg("-f").arg(file);
        }
        c.args(args).envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    fn run(&self, args: &[&str], timeout: Duration) -> Out {
        let o = self.f.run_cmd(self.compose(args), timeout);
        assert_eq!(
            o.code(),
            Some(0),
            "docker-compose {args:?}: {}\n{}",
            o.describe(),
            self.logs()
        );
        o
    }

    /// The container id of a service.
    fn container(&self, service: &str) -> String {
        let id = self
            .run(&["ps", "-q", service], Duration::from_secs(60))
            .stdout
            .trim()
            .to_string();
        assert!(!id.is_empty(), "no container for service {service}");
        id
    }

    fn logs(&self) -> String {
        let o = self.f.run_cmd(
            self.compose(&["logs", "--no-color", "--tail", "40"]),
            Duration::from_secs(60),
        );
        format!("--- docker-compose logs\n{}{}", o.stdout, o.stderr)
    }

    /// Waits until a service's log holds `needle` (docker logs: the
    /// services log to stderr).
    fn wait_log(&self, id: &str, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let o = Command::new("docker").args(["logs", id]).output().unwrap();
            let text = String::from_utf8_lossy(&o.stderr).to_string()
                + &String::from_utf8_lossy(&o.stdout);
            if text.contains(needle) {
                return;
            }
            let state = Command::new("docker")
                .args(["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", id])
                .output()
                .unwrap();
            let state = String::from_utf8_lossy(&state.stdout).trim().to_string();
            assert!(
                Instant::now() < deadline && state.starts_with("running"),
                "no {needle:?} from {id} (state {state}):\n{text}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// One SQL statement against the fleet's ClickHouse, over HTTP.
    fn sql(&self, sql: &str) -> String {
        let mut s =
            std::net::TcpStream::connect(("127.0.0.1", self.ch_http)).expect("connect clickhouse");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let req = format!(
            "POST / HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n{sql}",
            sql.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).unwrap();
        let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
        assert!(
            head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
            "clickhouse: {sql}\n{buf}"
        );
        body.to_string()
    }

    /// A counter `sandmine_NAME` (no labels) from the /metrics on `port`.
    fn metric(&self, port: u16, name: &str) -> u64 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect metrics");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).unwrap();
        let line = format!("sandmine_{name} ");
        buf.lines()
            .find_map(|l| l.strip_prefix(&line))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {line:?} on port {port}:\n{buf}")) as u64
    }
}

impl Drop for ComposeFleet {
    fn drop(&mut self) {
        let _ = self
            .compose(&["down", "-v", "--remove-orphans", "--timeout", "20"])
            .output();
        if let Ok(o) = Command::new("docker")
            .args(["ps", "-aq", "--filter", &format!("label={}", self.label)])
            .output()
        {
            let ids = String::from_utf8_lossy(&o.stdout).to_string();
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let _ = Command::new("docker")
                    .args(["rm", "-f"])
                    .args(&ids)
                    .output();
            }
        }
        let _ = std::fs::remove_dir_all(&self.pin_dir);
        // Untags it; the image itself goes when no other tag names it.
        let _ = Command::new("docker").args(["rmi", &self.image]).output();
    }
}

/// bpffs on /sys/fs/bpf, as systemd mounts it at boot: the collector's pins
/// live on the host's, through the compose file's bind mount.
fn ensure_bpffs() {
    let mounted = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some("/sys/fs/bpf") && l.contains(" - bpf "))
    };
    if !mounted() {
        let o = Command::new("mount")
            .args(["-t", "bpf", "bpf", "/sys/fs/bpf"])
            .output()
            .unwrap();
        assert!(
            mounted(),
            "cannot mount bpffs on /sys/fs/bpf: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// The collector's capabilities file for this engine (deploy/compose/caps/,
/// `SANDMINE_COLLECTOR_CAPS`) and the capabilities it adds: CAP_BPF and
/// CAP_PERFMON, or CAP_SYS_ADMIN (which implies both) on an engine that
/// refuses their names, as Debian 12's dockerd 20.10 does.
fn collector_caps() -> (&'static str, &'static [&'static str]) {
    let o = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "--cap-drop",
            "ALL",
            "--cap-add",
            "BPF",
            "--cap-add",
            "PERFMON",
        ])
        .args([BUSYBOX, "true"])
        .output()
        .expect("docker");
    if o.status.success() {
        return ("bpf-perfmon", &["BPF", "PERFMON", "SYS_PTRACE"]);
    }
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("unknown capability"),
        "docker run --cap-add BPF failed otherwise: {err}"
    );
    ("sys-admin", &["SYS_ADMIN", "SYS_PTRACE"])
}

/// A capability set (`CapEff:` of /proc/PID/status) of named capabilities.
fn cap_mask(names: &[&str]) -> u64 {
    names
        .iter()
        .map(|n| match *n {
            "SYS_PTRACE" => 1u64 << 19,
            "SYS_ADMIN" => 1 << 21,
            "PERFMON" => 1 << 38,
            "BPF" => 1 << 39,
            other => panic!("{other}"),
        })
        .fold(0, |a, b| a | b)
}

fn proc_status(pid: &str, key: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

/// Per syscall number (of the probe's): (calls, containers) stored for
/// `image`, each row counted once whatever its copies (docs/STORE.md).
fn stored(fleet: &ComposeFleet, image: &str) -> BTreeMap<u32, (u64, u64)> {
    let nrs = format!("{GETPGRP}, {TIMES}, {SYSINFO}");
    let calls = fleet.sql(&format!(
        "SELECT nr, sum(c) FROM (SELECT nr, host_id, boot_id, seq, max(calls) AS c FROM sandmine.calls \
         WHERE image = '{image}' AND abi = 0 AND nr IN ({nrs}) GROUP BY nr, host_id, boot_id, seq) \
         GROUP BY nr ORDER BY nr FORMAT TabSeparated"
    ));
    let containers = fleet.sql(&format!(
        "SELECT nr, uniqExact(container_id) FROM sandmine.incidence \
         WHERE image = '{image}' AND abi = 0 AND nr IN ({nrs}) GROUP BY nr ORDER BY nr FORMAT TabSeparated"
    ));
    let parse = |text: &str| -> BTreeMap<u32, u64> {
        text.lines()
            .map(|l| {
                let (nr, n) = l.split_once('\t').unwrap_or_else(|| panic!("row {l:?}"));
                (nr.parse().unwrap(), n.parse().unwrap())
            })
            .collect()
    };
    let containers = parse(&containers);
    parse(&calls)
        .into_iter()
        .map(|(nr, c)| (nr, (c, containers.get(&nr).copied().unwrap_or(0))))
        .collect()
}

/// Whether the fleet's database exists yet (the aggregator creates it).
fn has_tables(fleet: &ComposeFleet) -> bool {
    fleet.sql("SELECT count() FROM system.tables WHERE database = 'sandmine' AND name = 'calls' FORMAT TabSeparated").trim() == "1"
}

#[test]
fn compose_fleet_stores_a_containers_exact_calls_in_clickhouse() {
    let f = Fixture::new();
    docker(&["image", "inspect", BUSYBOX]);

    // The images: this build's binary, the host's nats-server and
    // clickhouse-server.
    let mut build = Command::new(compose_dir().join("build-images.sh"));
    build.arg(common::SANDMINE);
    let o = f.run_cmd(build, Duration::from_secs(600));
    assert_eq!(o.code(), Some(0), "build-images.sh: {}", o.describe());
    let image = o
        .stdout
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("SANDMINE_IMAGE="))
        .unwrap_or_else(|| {
            panic!(
                "build-images.sh printed no SANDMINE_IMAGE=: {}",
                o.describe()
            )
        })
        .to_string();
    docker(&["image", "inspect", &image]);

    ensure_bpffs();
    let tag = unique();
    let project = format!("smcompose{tag}");
    let parent = format!("smc-{tag}");
    let pin_dir = PathBuf::from(format!("/sys/fs/bpf/sandmine-compose-{tag}"));
    let (caps_file, caps) = collector_caps();
    // What only a test needs: a 1 s interval, and only this test's
    // containers (under its own cgroup parent) counted.
    let overrides = f.write(
        "test-overrides.yml",
        &format!(
            "version: \"2.4\"\nservices:\n  collector:\n    environment:\n      \
             SANDMINE_COLLECTOR__INTERVAL: 1s\n      SANDMINE_COLLECTOR__CGROUP_PARENT: {parent}\n  \
             aggregator:\n    environment:\n      SANDMINE_AGGREGATOR__BATCH_MAX_WAIT: 200ms\n"
        ),
    );
    let ports: Vec<u16> = (0..6).map(|_| testsvc::free_port()).collect();
    let env: Vec<(String, String)> = [
        ("SANDMINE_IMAGE", image.clone()),
        ("SANDMINE_NATS_PORT", ports[0].to_string()),
        ("SANDMINE_NATS_MONITOR_PORT", ports[1].to_string()),
        ("SANDMINE_CLICKHOUSE_HTTP_PORT", ports[2].to_string()),
        ("SANDMINE_CLICKHOUSE_TCP_PORT", ports[3].to_string()),
        ("SANDMINE_AGGREGATOR_METRICS_PORT", ports[4].to_string()),
        ("SANDMINE_COLLECTOR_METRICS_PORT", ports[5].to_string()),
        ("SANDMINE_PIN_DIR", pin_dir.display().to_string()),
        ("SANDMINE_COLLECTOR_CAPS", caps_file.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let fleet = ComposeFleet {
        f,
        project,
        files: vec![
            compose_dir().join("docker-compose.yml"),
            compose_dir().join("docker-socket.yml"),
            overrides,
        ],
        env,
        image,
        pin_dir: pin_dir.clone(),
        label: format!("sandmine-test-compose={tag}"),
        ch_http: ports[2],
        agg_metrics: ports[4],
        col_metrics: ports[5],
    };

    fleet.run(&["up", "-d"], UP_TIMEOUT);
    let collector = fleet.container("collector");
    let aggregator = fleet.container("aggregator");
    fleet.wait_log(&collector, "collecting as host");
    fleet.wait_log(&aggregator, "msg=\"consuming\"");

    // The collector runs with exactly its capabilities, under the engine's
    // seccomp profile, and pins on the host's bpffs.
    let pid = String::from_utf8(docker(&["inspect", "-f", "{{.State.Pid}}", &collector]).stdout)
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(
        u64::from_str_radix(&proc_status(&pid, "CapEff"), 16).unwrap(),
        cap_mask(caps),
        "the collector's effective capabilities"
    );
    assert_eq!(
        proc_status(&pid, "Seccomp"),
        "2",
        "the collector runs under a seccomp filter"
    );
    assert_eq!(proc_status(&pid, "NoNewPrivs"), "1");
    assert!(pin_dir.is_dir(), "no pins at {}", pin_dir.display());
    let agg_pid =
        String::from_utf8(docker(&["inspect", "-f", "{{.State.Pid}}", &aggregator]).stdout)
            .unwrap()
            .trim()
            .to_string();
    assert_eq!(
        proc_status(&agg_pid, "CapEff"),
        "0000000000000000",
        "the aggregator holds no capability"
    );
    assert!(
        proc_status(&agg_pid, "Uid").starts_with("65534\t"),
        "the aggregator runs as 65534"
    );

    // Two containers of the busybox image under this test's cgroup parent,
    // each making known calls, then exiting.
    let probe = fleet.f.probe_static("known_calls", PROBE_SRC);
    let mount = format!("{}:/probe:ro", probe.display());
    let cgroup_parent = format!("/{parent}");
    let runs: [&[(u32, u64)]; 2] = [
        &[(GETPGRP, 1000), (TIMES, 20), (SYSINFO, 7)],
        &[(GETPGRP, 234), (TIMES, 3)],
    ];
    let mut ids = Vec::new();
    let mut want: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for calls in runs {
        let args: Vec<String> = calls.iter().map(|(nr, n)| format!("{nr}:{n}")).collect();
        let mut a = vec![
            "create",
            "--network",
            "none",
            "--cgroup-parent",
            &cgroup_parent,
            "--label",
            &fleet.label,
            "-v",
            &mount,
            BUSYBOX,
            "/probe",
        ];
        a.extend(args.iter().map(String::as_str));
        let id = String::from_utf8(docker(&a).stdout)
            .unwrap()
            .trim()
            .to_string();
        docker(&["start", "-a", &id]);
        let code = String::from_utf8(docker(&["inspect", "-f", "{{.State.ExitCode}}", &id]).stdout)
            .unwrap();
        assert_eq!(code.trim(), "0", "the probe failed in {id}");
        ids.push(id);
        for (nr, n) in calls {
            let e = want.entry(*nr).or_default();
            e.0 += n;
            e.1 += 1;
        }
    }

    // The exact calls and containers reach ClickHouse.
    let deadline = Instant::now() + CONVERGE;
    while !has_tables(&fleet) || stored(&fleet, BUSYBOX) != want {
        assert!(
            Instant::now() < deadline,
            "ClickHouse did not reach the exact calls\n want {want:?}\n got  {:?}\n{}",
            if has_tables(&fleet) {
                stored(&fleet, BUSYBOX)
            } else {
                BTreeMap::new()
            },
            fleet.logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // And stays there: two more collection intervals, and every message
    // the collector published acked by the aggregator (stored).
    let ticks = fleet.metric(fleet.col_metrics, "ticks_total");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let published = fleet.metric(fleet.col_metrics, "published_total");
        let acked = fleet.metric(fleet.agg_metrics, "messages_acked_total");
        if fleet.metric(fleet.col_metrics, "ticks_total") >= ticks + 2 && published == acked {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the fleet did not settle: {published} published, {acked} acked\n{}",
            fleet.logs()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(stored(&fleet, BUSYBOX), want, "{}", fleet.logs());

    // The containers, by id, on this host (its /etc/machine-id), and
    // nothing of any other image under this cgroup parent.
    let host = std::fs::read_to_string("/etc/machine-id")
        .unwrap()
        .trim()
        .to_string();
    let mut rows: Vec<String> = fleet
        .sql(&format!(
            "SELECT DISTINCT image, host_id, container_id FROM sandmine.containers \
             WHERE container_id IN ('{}') ORDER BY container_id FORMAT TabSeparated",
            ids.join("', '")
        ))
        .lines()
        .map(str::to_string)
        .collect();
    rows.sort();
    let mut expected: Vec<String> = ids
        .iter()
        .map(|id| format!("{BUSYBOX}\t{host}\t{id}"))
        .collect();
    expected.sort();
    assert_eq!(rows, expected);
    assert_eq!(
        fleet.sql("SELECT DISTINCT image FROM sandmine.calls ORDER BY image FORMAT TabSeparated"),
        format!("{BUSYBOX}\n")
    );
    // Verified (the engine and the host's cgroups agree) and complete.
    assert_eq!(
        fleet.sql(
            "SELECT (SELECT count() FROM sandmine.unverified_containers), \
             (SELECT count() FROM sandmine.incomplete_containers) FORMAT TabSeparated"
        ),
        "0\t0\n"
    );

    // `sandmine query` reads the same from the fleet's store.
    let cfg = fleet.f.write(
        "query.toml",
        &format!(
            "[store.clickhouse]\nurl = \"http://127.0.0.1:{}\"\ndatabase = \"sandmine\"\n",
            fleet.ch_http
        ),
    );
    let o = fleet
        .f
        .sandmine(&["query", "--config", cfg.to_str().unwrap(), "image", BUSYBOX]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("query JSON");
    assert_eq!(
        (v["hosts"].as_u64(), v["containers"].as_u64()),
        (Some(1), Some(2)),
        "{v}"
    );
    for (nr, (calls, containers)) in &want {
        let s = v["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["nr"] == *nr && s["abi"] == "x86_64")
            .unwrap_or_else(|| panic!("no syscall {nr} in {v}"));
        assert_eq!(
            (
                s["calls"].as_u64(),
                s["hosts"].as_u64(),
                s["containers"].as_u64()
            ),
            (Some(*calls), Some(1), Some(*containers)),
            "{s}"
        );
    }

    // Down, volumes and all.
    fleet.run(&["down", "-v", "--timeout", "20"], Duration::from_secs(120));
    let left = String::from_utf8(
        docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=com.docker.compose.project={}", fleet.project),
        ])
        .stdout,
    )
    .unwrap();
    assert_eq!(left.trim(), "", "containers left after down");
    let vols = String::from_utf8(
        docker(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!("label=com.docker.compose.project={}", fleet.project),
        ])
        .stdout,
    )
    .unwrap();
    assert_eq!(vols.trim(), "", "volumes left after down -v");
}
