//! `sandmine mine-image` end to end: mine the local test image through
//! dockerd, then run the image under the mined profile with docker itself.
//! Needs root, dockerd (scripts/start-dockerd.sh) and the image
//! sandmine-test/busybox:1 (tests/images/build.sh); the tests fail, never
//! skip, when either is missing.

mod common;

use common::{one_error_line, Fixture, Profile};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const IMAGE: &str = "sandmine-test/busybox:1";
/// Where the image's httpd listens (with --network host).
const PORT: u16 = 18080;

/// The tests that start the image's httpd take turns: they all bind the
/// same host port.
static PORT_LOCK: Mutex<()> = Mutex::new(());

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run the docker client ({e}); run scripts/install-deps.sh")
        })
}

fn require_dockerd() {
    let o = docker(&["info", "--format", "{{.ServerVersion}}"]);
    assert!(
        o.status.success(),
        "dockerd is not answering (start it with scripts/start-dockerd.sh): {}",
        String::from_utf8_lossy(&o.stderr).trim()
    );
}

fn require_image() {
    require_dockerd();
    let o = docker(&["image", "inspect", IMAGE]);
    assert!(
        o.status.success(),
        "the test image {IMAGE} is missing (build it with tests/images/build.sh): {}",
        String::from_utf8_lossy(&o.stderr).trim()
    );
}

fn addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], PORT))
}

/// Nothing may listen on the port before a test starts its own server: a
/// leftover one would answer for it.
fn assert_port_free() {
    if TcpStream::connect_timeout(&addr(), Duration::from_millis(500)).is_ok() {
        panic!(
            "something already listens on 127.0.0.1:{PORT} (a leftover container? see `docker ps`)"
        );
    }
}

/// One GET / within `budget`; the body on a 200 answer.
fn fetch(budget: Duration) -> Result<String, String> {
    let deadline = Instant::now() + budget;
    let left = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    let mut s = TcpStream::connect_timeout(&addr(), left()).map_err(|e| format!("connect: {e}"))?;
    s.set_write_timeout(Some(left())).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .map_err(|e| format!("send: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if Instant::now() >= deadline {
            return Err(format!("no full answer within {budget:?}"));
        }
        s.set_read_timeout(Some(left())).unwrap();
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("receive: {e}")),
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("not HTTP: {text:?}"))?;
    if !head.starts_with("HTTP/1.") || !head.lines().next().unwrap_or("").contains(" 200") {
        return Err(format!("not a 200 answer: {head:?}"));
    }
    Ok(body.to_string())
}

/// Fetches until one succeeds or `within` has passed.
fn fetch_retrying(within: Duration) -> Result<String, String> {
    let deadline = Instant::now() + within;
    let mut last = String::new();
    while Instant::now() < deadline {
        let budget = deadline
            .saturating_duration_since(Instant::now())
            .min(Duration::from_secs(3));
        match fetch(budget) {
            Ok(body) => return Ok(body),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(last)
}

/// A container started by a test, removed (`docker rm -f`) however the test
/// ends.
struct Container {
    name: String,
}

impl Container {
    fn name(tag: &str) -> Container {
        Container {
            name: format!("sandmine-clitest-{}-{tag}", std::process::id()),
        }
    }

    /// `docker run -d --network host --security-opt seccomp=PROFILE IMAGE`.
    fn run(&self, profile: &Path) -> std::process::Output {
        let opt = format!("seccomp={}", profile.display());
        docker(&[
            "run",
            "-d",
            "--name",
            &self.name,
            "--network",
            "host",
            "--security-opt",
            &opt,
            IMAGE,
        ])
    }

    fn state(&self) -> String {
        let o = docker(&[
            "inspect",
            "-f",
            "{{.State.Status}} exit={{.State.ExitCode}} {{.State.Error}}",
            &self.name,
        ]);
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    fn logs(&self) -> String {
        let o = docker(&["logs", &self.name]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.name])
            .output();
    }
}

/// runc's privileged set-up, before it installs the container's filter.
const RUNC_SETUP: &[&str] = &[
    "mount",
    "pivot_root",
    "sethostname",
    "keyctl",
    "setns",
    "unshare",
    "umount2",
];

#[test]
fn httpd_profile_serves_and_needs_accept() {
    require_image();
    let _port = PORT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    assert_port_free();

    let f = Fixture::new();
    let out = f.arg("p.json");
    let o = f.sandmine(&[
        "mine-image",
        "-o",
        &out,
        "--network",
        "host",
        "--workload-delay",
        "1s",
        "--workload",
        "for i in 1 2 3; do wget -qO- http://127.0.0.1:18080/ >/dev/null; done",
        IMAGE,
    ]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    // The counter loaded fresh for this run: no call of the container may
    // be lost (issue 14).
    assert!(!o.stderr.contains("were not counted"), "{}", o.describe());
    assert!(
        o.stderr.contains("the workload finished (exit status: 0)"),
        "the workload did not succeed: {}",
        o.describe()
    );
    let p = Profile::load(Path::new(&out));
    assert_eq!(p.architectures(), ["SCMP_ARCH_X86_64"]);
    p.assert_allows(&["bind", "listen", "socket", "execve"], RUNC_SETUP);
    assert!(
        p.allows("accept") || p.allows("accept4"),
        "neither accept nor accept4: {:?}",
        p.names()
    );
    let setup = p.meta("setup_excluded");
    for s in ["mount", "pivot_root", "sethostname"] {
        assert!(
            setup.iter().any(|x| x == s),
            "{s} not in setup_excluded {setup:?}"
        );
    }
    let runtime = p.meta("runtime");
    for s in ["execve", "capset", "setgroups"] {
        assert!(
            runtime.iter().any(|x| x == s),
            "{s} not in runtime {runtime:?}"
        );
    }

    // The image runs under its mined profile and serves.
    assert_port_free();
    let c = Container::name("ok");
    let run = c.run(&p.path);
    assert!(
        run.status.success(),
        "docker run under the mined profile failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    match fetch_retrying(Duration::from_secs(5)) {
        Ok(body) => assert_eq!(body.trim(), "sandmine-ok"),
        Err(e) => panic!(
            "the container did not serve under its mined profile: {e}; state {}; logs:\n{}",
            c.state(),
            c.logs()
        ),
    }
    drop(c);

    // Without accept (and accept4) it cannot serve.
    let without = p.write_without(&["accept", "accept4"], &f.path("no-accept.json"));
    let check = Profile::load(&without);
    assert!(!check.allows("accept") && !check.allows("accept4"));
    let mut freed = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr(), Duration::from_millis(200)).is_err() {
            freed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(freed, "port {PORT} still answering after docker rm -f");
    let c = Container::name("noaccept");
    let run = c.run(&without);
    if run.status.success() {
        // Started: it must not answer, even given the time the complete
        // profile needed.
        if let Ok(body) = fetch_retrying(Duration::from_secs(5)) {
            panic!(
                "served {body:?} without accept/accept4; state {}; logs:\n{}",
                c.state(),
                c.logs()
            );
        }
    }
}

#[test]
fn profile_on_stdout_is_not_mixed_with_the_workloads_output() {
    // Without -o the profile goes to stdout; what the workload prints (here
    // the page it fetched) must not end up inside it.
    require_image();
    let _port = PORT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    assert_port_free();
    let f = Fixture::new();
    let o = f.sandmine(&[
        "mine-image",
        "--network",
        "host",
        "--workload",
        "wget -qO- http://127.0.0.1:18080/",
        IMAGE,
    ]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert!(
        o.stderr.contains("the workload finished (exit status: 0)"),
        "{}",
        o.describe()
    );
    let json: serde_json::Value = serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not just the profile ({e}): {}", o.describe()));
    assert_eq!(json["syscalls"][0]["action"], "SCMP_ACT_ALLOW");
}

#[test]
fn missing_image_is_one_error_line() {
    require_dockerd();
    let f = Fixture::new();
    let out = f.arg("x.json");
    let o = f.sandmine(&["mine-image", "-o", &out, "sandmine-test/no-such-image:1"]);
    let line = one_error_line(&o);
    assert!(line.contains("not found locally"), "{line}");
    assert!(line.contains("sandmine-test/no-such-image:1"), "{line}");
    assert_eq!(o.code(), Some(2), "{}", o.describe());
    assert!(!Path::new(&out).exists(), "a profile was written");
}
