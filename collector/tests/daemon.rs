//! The collector daemon core against the real kernel and the real dockerd
//! (scripts/start-dockerd.sh): attribution of containers (short-lived
//! ones included), exact deltas across ticks, a crash between spool write
//! and state commit, a daemon restart with the aggregator pinned, and a
//! full spool. Needs root, dockerd, cc and a static busybox.

mod probes;

use collector::daemon::{kernel, Daemon, DaemonConfig};
use schemas::wire::{Envelope, SeccompFilter};
use schemas::Abi;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

const GETPGRP: u32 = 111;
/// getsid: neither runc nor the probe's start-up makes it (runc makes getppid).
const GETSID: u32 = 124;

fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An image holding a static busybox, the static probe as /probe, and a
/// marker that makes images `a` and `b` distinct.
fn probe_image(which: &str) -> String {
    let name = format!("sandmine-test/daemon-probe-{which}:{}", std::process::id());
    let probe = probes::build_static("getppid_static", probes::GETPPID_LOOP);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("bin")).unwrap();
    std::fs::copy("/bin/busybox", dir.path().join("bin/busybox"))
        .expect("a static /bin/busybox (busybox-static)");
    std::fs::copy(&probe, dir.path().join("probe")).unwrap();
    std::fs::write(dir.path().join("marker"), which).unwrap();
    let tar = dir.path().join("../img.tar");
    let tar = tar.with_file_name(format!("daemon-img-{which}-{}.tar", std::process::id()));
    sh(Command::new("tar")
        .arg("-C")
        .arg(dir.path())
        .arg("-cf")
        .arg(&tar)
        .arg("."));
    sh(Command::new("docker")
        .args(["import", "--change", r#"CMD ["/probe"]"#])
        .arg(&tar)
        .arg(&name));
    let _ = std::fs::remove_file(&tar);
    name
}

fn image_id(name: &str) -> String {
    sh(Command::new("docker").args(["image", "inspect", "-f", "{{.Id}}", name]))
}

struct Env {
    pin_dir: PathBuf,
    state: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let pin_dir = PathBuf::from(format!(
            "/sys/fs/bpf/sandmine-test-{}-{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        ));
        Env {
            pin_dir,
            state: tempfile::tempdir().unwrap(),
        }
    }

    fn config(&self, spool_max_bytes: u64) -> DaemonConfig {
        DaemonConfig {
            host_id: Some("test-host".into()),
            interval: Duration::from_secs(1),
            state_dir: self.state.path().to_path_buf(),
            spool_max_bytes,
            pin_dir: self.pin_dir.clone(),
            docker_socket: Some(PathBuf::from("/var/run/docker.sock")),
            podman_socket: None,
            cgroup_parent: None,
        }
    }

    fn open(&self, spool_max_bytes: u64) -> Daemon {
        Daemon::open(self.config(spool_max_bytes)).expect("daemon opens (run as root)")
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = kernel::remove_pins(&self.pin_dir);
    }
}

fn now() -> u64 {
    collector::daemon::now_ms()
}

fn calls(env: &Envelope, id: &str, nr: u32) -> u64 {
    env.containers
        .iter()
        .filter(|c| c.container.id == id)
        .flat_map(|c| c.syscalls.iter())
        .filter(|s| s.abi == Abi::X86_64 && s.nr == nr)
        .map(|s| s.calls)
        .sum()
}

fn tick(d: &mut Daemon) -> Option<Envelope> {
    d.tick(now()).expect("tick")
}

fn spool_is(d: &Daemon, envs: &[&Envelope]) {
    let pending = d.spool().pending().unwrap();
    let got: Vec<Envelope> = pending
        .iter()
        .map(|p| schemas::wire::decode(&p.read().unwrap()).unwrap())
        .collect();
    let want: Vec<Envelope> = envs.iter().map(|e| (*e).clone()).collect();
    assert_eq!(got, want);
}

#[test]
fn short_lived_containers_of_two_images_are_attributed_exactly() {
    let a = probe_image("a");
    let b = probe_image("b");
    let env = Env::new();
    let mut d = env.open(256 << 20);
    // `docker run --rm` of programs that exit at once.
    let run = |img: &str, n: u32, nr: u32| {
        let id = sh(Command::new("docker").args([
            "run",
            "-d",
            "--rm",
            "--network",
            "none",
            img,
            "/probe",
            &n.to_string(),
            &nr.to_string(),
        ]));
        let _ = Command::new("docker")
            .args(["wait", &id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        id
    };
    let id_a = run(&a, 1234, GETPGRP);
    let id_b = run(&b, 777, GETSID);
    // Let --rm finish removing them: the engine forgets them.
    for _ in 0..100 {
        let gone = |id: &str| {
            !Command::new("docker")
                .args(["inspect", id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap()
                .success()
        };
        if gone(&id_a) && gone(&id_b) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let e = tick(&mut d).expect("a delta");
    assert_eq!(e.seq, d.seq());
    for (id, img, nr, n, other) in [
        (&id_a, &a, GETPGRP, 1234, GETSID),
        (&id_b, &b, GETSID, 777, GETPGRP),
    ] {
        let c: Vec<_> = e
            .containers
            .iter()
            .filter(|c| &c.container.id == id)
            .collect();
        assert_eq!(c.len(), 1, "container {id} in {e:?}");
        let c = c[0];
        assert_eq!(c.container.runtime, "docker");
        assert_eq!(&c.container.image, img);
        assert_eq!(c.container.image_digest, image_id(img));
        assert_eq!(c.container.seccomp, SeccompFilter::RuntimeDefault);
        assert_eq!(c.container.pod, None);
        assert_eq!(calls(&e, id, nr), n);
        assert_eq!(calls(&e, id, other), 0, "images mixed up");
        // The entrypoint's execve (59) went through the filter.
        assert!(calls(&e, id, 59) >= 1);
        // Setup-only calls (runc's pivot_root, 155) are not published.
        assert_eq!(calls(&e, id, 155), 0);
        assert!(c.exited_at_ms.is_some(), "{c:?}");
        assert!(c.started_at_ms <= e.interval_end_ms);
    }
    spool_is(&d, &[&e]);
    // Exited and published: never again.
    let again = tick(&mut d);
    if let Some(x) = again {
        assert_eq!(calls(&x, &id_a, GETPGRP) + calls(&x, &id_b, GETSID), 0);
    }
    for img in [&a, &b] {
        let _ = Command::new("docker").args(["rmi", img]).output();
    }
}

#[test]
fn deltas_sum_exactly_through_crash_restart_and_full_spool() {
    let img = probe_image("c");
    let env = Env::new();
    let id = sh(Command::new("docker").args([
        "run",
        "-d",
        "--network",
        "none",
        &img,
        "/bin/busybox",
        "sleep",
        "300",
    ]));
    let exec = |n: u32| {
        sh(Command::new("docker").args(["exec", &id, "/probe", &n.to_string(), "111"]));
    };
    let mut total = 0u64;
    let mut d = env.open(256 << 20);
    if let Some(e) = tick(&mut d) {
        total += calls(&e, &id, GETPGRP);
    }
    exec(100);
    let e1 = tick(&mut d).expect("delta 1");
    assert_eq!(calls(&e1, &id, GETPGRP), 100);
    total += 100;
    let c = e1.containers.iter().find(|c| c.container.id == id).unwrap();
    assert_eq!(c.container.image, img);
    assert_eq!(c.exited_at_ms, None);

    // Crash between the spool write and the state commit.
    exec(200);
    let seq_before = d.seq();
    let lost = d
        .tick_crashing_before_commit(now())
        .unwrap()
        .expect("spooled");
    assert_eq!(lost.seq, seq_before + 1);
    assert_eq!(calls(&lost, &id, GETPGRP), 200);
    drop(d);
    // Calls while the daemon is down: the pinned program keeps counting.
    exec(300);
    let mut d = env.open(256 << 20);
    assert_eq!(d.seq(), seq_before);
    // The uncommitted message is gone from the spool.
    assert!(d
        .spool()
        .pending()
        .unwrap()
        .iter()
        .all(|p| p.seq <= seq_before));
    let e2 = tick(&mut d).expect("delta 2");
    assert_eq!(
        e2.seq,
        seq_before + 1,
        "the seq of the discarded message is reused"
    );
    assert_eq!(
        calls(&e2, &id, GETPGRP),
        500,
        "200 before the crash + 300 while down"
    );
    total += 500;

    // Spool full: the tick holds, the kernel keeps counting.
    drop(d);
    let mut d = env.open(1);
    exec(50);
    assert_eq!(d.tick(now()).unwrap(), None);
    assert!(d.last_stats().spool_full);
    exec(25);
    assert_eq!(d.tick(now()).unwrap(), None);
    for p in d.spool().pending().unwrap() {
        d.spool().ack(&p.msg_id).unwrap();
    }
    let e3 = tick(&mut d).expect("delta 3");
    assert_eq!(calls(&e3, &id, GETPGRP), 75);
    total += 75;
    assert_eq!(total, 100 + 200 + 300 + 75);
    d.spool().ack_seq(e3.seq).unwrap();

    // The container exits: its final delta says so, once.
    sh(Command::new("docker").args(["rm", "-f", &id]));
    let e4 = tick(&mut d).expect("final delta");
    let c = e4.containers.iter().find(|c| c.container.id == id).unwrap();
    assert!(c.exited_at_ms.is_some());
    assert_eq!(calls(&e4, &id, GETPGRP), 0);
    if let Some(e5) = tick(&mut d) {
        assert!(e5.containers.iter().all(|c| c.container.id != id));
    }
    let _ = Command::new("docker").args(["rmi", &img]).output();
}
