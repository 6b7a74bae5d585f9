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
    let keep = fleet.keep_label();
    // Kept after it exits, removed with the fleet: see `keep_label`.
    let mut a = vec![
        "create",
        "--label",
        &keep,
        "--network",
        "none",
        "--cgroup-parent",
        &parent,
    ];
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
    // The collector said nothing about dropping denials (it sends v6; it
    // does say it drops the argument values, which need v7).
    let err = std::fs::read_to_string(&fleet.collectors["hD"].stderr).unwrap();
    assert!(!err.contains("seccomp denials counted"), "{err}");
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
    assert_eq!(err.matches("seccomp denials counted").count(), 1, "{err}");
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

/// Publishing reacts: busybox is published enforcing; then containers of
/// it on two hosts, under that very profile, call getpgrp (which the
/// probe image made, so the fleet had seen it) and are denied. The next
/// publish forces busybox back into log mode, by `sandmine`, with a
/// reason naming the denials in the meta, the report and the git commit;
/// the probe image, without denials, is untouched, and a third round
/// changes nothing.
/// Two hosts: busybox (3 containers each) and the probe image; busybox's
/// profile published enforcing (without getpgrp) to a dir and a git
/// target; then busybox under that profile calls getpgrp 5 times per host:
/// 10 denials on 2 hosts, stored. `on_denials` is the publisher's setting.
struct Denied {
    fleet: Fleet,
    _nats: Nats,
    _ch: ClickHouse,
    out: String,
    repo: String,
    policy: String,
    /// `publish.signing_key_file=...`, for `--set`.
    key: String,
    on_denials: &'static str,
    /// The enforced version's short name and its profile's version.
    enforced_short: String,
    version: String,
    probe_before: Value,
}

impl Denied {
    fn start(on_denials: &'static str) -> Denied {
        use common::fleet::{serve, Batch, BUSYBOX};
        let nats = Nats::start();
        let ch = ClickHouse::start();
        let mut fleet = Fleet::new(&nats_broker(&nats), &ch);
        fleet.start_aggregator();
        for host in ["hA", "hB"] {
            fleet.start_collector_with(host, &["collector.max_wire_version=6"]);
            for _ in 0..3 {
                serve(&mut fleet, host, 3, None);
            }
            fleet.run(&Batch {
                host,
                image: "probe",
                containers: 3,
                calls: &[(GETPGRP, 10)],
            });
        }
        fleet.assert_converges("two images on two hosts");
        // TEST_POLICY, but any syscall seen once is allowed: an httpd
        // container now and then makes a timing-dependent call (a restart
        // after a signal, a wait) that no other container made, which
        // under min_containers = 2 holds the image in log mode (about one
        // run in fifteen here). These tests are about denials under an
        // enforced profile, not about the thresholds (tests/fleet_cli.rs).
        let text = common::fleet::TEST_POLICY.replace(
            "[syscall]\nmin_hosts = 2\nmin_containers = 2\n",
            "[syscall]\nmin_hosts = 1\nmin_containers = 1\n",
        );
        assert!(text.contains("min_containers = 1\n"), "{text}");
        let policy = fleet.f.write("policy.toml", &text);
        let mut d = Denied {
            policy: policy.to_str().unwrap().to_string(),
            out: fleet.f.arg("published"),
            repo: fleet.f.arg("repo"),
            key: fleet.f.signing_key().0,
            fleet,
            _nats: nats,
            _ch: ch,
            on_denials,
            enforced_short: String::new(),
            version: String::new(),
            probe_before: Value::Null,
        };
        let report = d.publish();
        assert_eq!(d.meta(BUSYBOX)["state"], "enforce", "{report}");
        d.enforced_short = d.meta(BUSYBOX)["version_short"]
            .as_str()
            .unwrap()
            .to_string();
        d.probe_before = d.meta(&d.fleet.probe_image);
        let text = std::fs::read_to_string(d.profile()).unwrap();
        assert!(
            !text.contains("\"getpgrp\""),
            "busybox's profile allows getpgrp"
        );
        d.version = schemas::wire::profile_version(text.as_bytes());

        // Busybox under its enforced profile calls getpgrp 5 times, once per
        // host: denied (EPERM), and counted.
        for host in ["hA", "hB"] {
            d.getpgrp_under_profile(host);
        }
        let deadline = Instant::now() + CONVERGE;
        loop {
            let got = stored(&d.fleet, BUSYBOX);
            let hit = got.iter().any(|r| {
                (r.0.as_str(), r.2.as_str(), r.3, r.4) == ("getpgrp", d.version.as_str(), 10, 2)
            });
            if hit {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{got:?}; logs:\n{}",
                d.fleet.logs()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        d
    }

    /// One round to both targets; the dir target's report.
    fn publish(&self) -> Value {
        let set = format!("publish.on_denials=\"{}\"", self.on_denials);
        let mut cmd = self.fleet.cmd(&[
            "publish",
            "--dir",
            &self.out,
            "--git",
            &self.repo,
            "--policy",
            &self.policy,
            "--json",
            "--set",
            &set,
        ]);
        cmd.args(["--runtime-base", "none", "--set", &self.key]);
        let o = self.fleet.f.run_cmd(cmd, common::RUN_TIMEOUT);
        assert_eq!(o.code(), Some(0), "{}", o.describe());
        // One report per target (dir, then git): the dir's.
        serde_json::Deserializer::from_str(&o.stdout)
            .into_iter::<Value>()
            .next()
            .expect("a report")
            .expect("publish --json")
    }

    /// The dir target's `current` meta of `image`.
    fn meta(&self, image: &str) -> Value {
        let p = std::path::Path::new(&self.out)
            .join(publish::image_slug(image))
            .join("current");
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    /// Busybox's OCI profile in force on the dir target.
    fn profile(&self) -> std::path::PathBuf {
        std::path::Path::new(&self.out)
            .join(publish::image_slug(common::fleet::BUSYBOX))
            .join("latest/seccomp.json")
    }

    /// Busybox on `host` under the profile in force, calling getpgrp 5
    /// times.
    fn getpgrp_under_profile(&self, host: &str) {
        let mount = format!("{}:/probe:ro", self.fleet.probe.display());
        let opt = format!("seccomp={}", self.profile().display());
        let parent = format!("/sm-{}-{host}", self.fleet.tag);
        let getpgrp = format!("{GETPGRP}:5");
        // Kept after it exits, removed with the fleet: see `keep_label`.
        let keep = self.fleet.keep_label();
        docker(&[
            "run",
            "--label",
            &keep,
            "--network",
            "none",
            "--cgroup-parent",
            &parent,
            "--security-opt",
            &opt,
            "-v",
            &mount,
            common::fleet::BUSYBOX,
            "/probe",
            &getpgrp,
        ]);
    }

    /// How many commits the git target has.
    fn commits(&self) -> String {
        let o = Command::new("git")
            .args(["-C", &self.repo, "rev-list", "--count", "HEAD"])
            .output()
            .unwrap();
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    }

    fn git_log(&self) -> String {
        let log = Command::new("git")
            .args(["-C", &self.repo, "log", "--format=%B"])
            .output()
            .unwrap();
        String::from_utf8(log.stdout).unwrap()
    }

    /// The start of the reason a reaction gives.
    fn reason_start(&self) -> String {
        format!(
            "seccomp denials under the enforced version {} (profile {}) of syscalls the fleet had seen, on at least 2 hosts: ",
            self.enforced_short, self.version
        )
    }
}

#[test]
fn denials_under_an_enforced_profile_force_log_mode_at_the_next_publish() {
    use common::fleet::BUSYBOX;
    let d = Denied::start("log");

    let report = d.publish();
    let m = d.meta(BUSYBOX);
    assert_eq!(m["state"], "log", "{m}");
    assert_eq!(m["forced_log"]["by"], "sandmine", "{m}");
    let reason = m["forced_log"]["reason"].as_str().unwrap().to_string();
    assert!(
        reason.starts_with(&d.reason_start())
            && reason.contains("x86_64 getpgrp (errno 1) denied 10 times on 2 hosts, 2 containers"),
        "{reason}"
    );
    // The probe image had no denials: the same version as before.
    assert_eq!(
        d.meta(&d.fleet.probe_image)["version"],
        d.probe_before["version"]
    );
    // The git commit says why, and the round's report shows the lever.
    let log = d.git_log();
    assert!(
        log.contains(": force log mode ")
            && log.contains("by: sandmine\n")
            && log.contains(&reason),
        "{log}"
    );
    let busybox = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["image"] == BUSYBOX)
        .unwrap()
        .clone();
    assert_eq!(
        busybox["levers"]["forced_log"]["reason"],
        reason.as_str(),
        "{busybox}"
    );
    // Once forced, nothing more to do: a third round changes nothing.
    let before = d.commits();
    d.publish();
    assert_eq!(d.commits(), before);
    assert_eq!(d.meta(BUSYBOX)["forced_log"]["reason"], reason.as_str());
}

/// `[publish] on_denials = "add"`: the next round adds getpgrp to busybox's
/// profile instead, still enforcing, records it in the meta and the git
/// commit with the denials' reason, and every later round keeps it; under
/// the new profile getpgrp runs, under the old one it was denied.
#[test]
fn with_on_denials_add_the_next_publish_adds_the_denied_syscall() {
    use common::fleet::BUSYBOX;
    let d = Denied::start("add");
    d.publish();
    let m = d.meta(BUSYBOX);
    assert_eq!(m["state"], "enforce", "{m}");
    assert!(m.get("forced_log").is_none(), "{m}");
    assert_ne!(m["version_short"], d.enforced_short.as_str(), "{m}");
    let added = m["after_denials"]
        .as_array()
        .expect("after_denials")
        .clone();
    assert_eq!(added.len(), 1, "{m}");
    assert_eq!(
        (&added[0]["abi"], &added[0]["name"]),
        (&Value::from("x86_64"), &Value::from("getpgrp"))
    );
    let reason = added[0]["reason"].as_str().unwrap().to_string();
    assert!(
        reason.starts_with(&d.reason_start())
            && reason.contains("x86_64 getpgrp (errno 1) denied 10 times on 2 hosts, 2 containers"),
        "{reason}"
    );
    assert!(
        m["allowed"]["x86_64"]
            .as_array()
            .unwrap()
            .contains(&Value::from("getpgrp")),
        "{m}"
    );
    // The compiler's report says why it is allowed.
    let report = std::fs::read_to_string(
        std::path::Path::new(&d.out)
            .join(publish::image_slug(BUSYBOX))
            .join("latest/report.txt"),
    )
    .unwrap();
    assert!(
        report
            .lines()
            .any(|l| l.contains("getpgrp") && l.contains("allow (added after denials)")),
        "{report}"
    );
    // The git commit says why.
    let log = d.git_log();
    assert!(
        log.contains(&format!("added after denials: x86_64 getpgrp: {reason}\n")),
        "{log}"
    );
    // The probe image had no denials: the same version as before.
    assert_eq!(
        d.meta(&d.fleet.probe_image)["version"],
        d.probe_before["version"]
    );
    // getpgrp runs under the new profile (it returns the process group,
    // > 0); under the enforced version before it, it got EPERM.
    let abi_call = d.fleet.f.probe_static("abi_call", common::ABI_CALL);
    let call = |profile: &std::path::Path| -> String {
        let mount = format!("{}:/abi_call:ro", abi_call.display());
        let opt = format!("seccomp={}", profile.display());
        let o = docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--security-opt",
            &opt,
            "-v",
            &mount,
            BUSYBOX,
            "/abi_call",
            "x86_64",
            &GETPGRP.to_string(),
        ]);
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let old = std::path::Path::new(&d.out)
        .join(publish::image_slug(BUSYBOX))
        .join(&d.enforced_short)
        .join("seccomp.json");
    assert_eq!(call(&old), "ret=-1");
    let now = call(&d.profile());
    let pgid: i64 = now
        .strip_prefix("ret=")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("abi_call printed {now:?}"));
    assert!(pgid > 0, "{now}");
    // Later rounds keep it: nothing new to publish.
    let before = d.commits();
    d.publish();
    assert_eq!(d.commits(), before);
    assert_eq!(d.meta(BUSYBOX)["after_denials"], Value::from(added));
}
