//! The collector daemon core against the real kernel and the real dockerd
//! (scripts/start-dockerd.sh): attribution of containers (short-lived
//! ones included), exact deltas across ticks, a real collector process
//! killed (SIGKILL) inside its state commit after its spool write, a
//! daemon restart with the aggregator pinned, and a full spool. Needs
//! root, dockerd, cc and a static busybox.

mod probes;

use collector::daemon::{kernel, Daemon, DaemonConfig};
use schemas::wire::{Envelope, SeccompFilter};
use schemas::Abi;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use testsvc::rename_trap::RenameTrap;

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
    /// The cgroup parent of this test's containers (`docker run
    /// --cgroup-parent /NAME`): the daemon publishes only those, so what
    /// other tests run meanwhile never shows in its deltas.
    parent: String,
}

impl Env {
    fn new() -> Env {
        let tag = format!(
            "{}-{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        Env {
            pin_dir: PathBuf::from(format!("/sys/fs/bpf/sandmine-test-{tag}")),
            state: tempfile::tempdir().unwrap(),
            parent: format!("sandmine-test-{tag}"),
        }
    }

    fn config(&self, spool_max_bytes: u64) -> DaemonConfig {
        config(
            self.state.path(),
            &self.pin_dir,
            &self.parent,
            spool_max_bytes,
        )
    }

    fn open(&self, spool_max_bytes: u64) -> Daemon {
        Daemon::open(self.config(spool_max_bytes)).expect("daemon opens (run as root)")
    }

    /// `docker run -d` under this test's cgroup parent.
    fn run(&self, args: &[&str]) -> String {
        let parent = format!("/{}", self.parent);
        let mut a = vec!["run", "-d", "--network", "none", "--cgroup-parent", &parent];
        a.extend_from_slice(args);
        sh(Command::new("docker").args(&a))
    }
}

fn config(state_dir: &Path, pin_dir: &Path, parent: &str, spool_max_bytes: u64) -> DaemonConfig {
    DaemonConfig {
        host_id: Some("test-host".into()),
        interval: Duration::from_secs(1),
        state_dir: state_dir.to_path_buf(),
        spool_max_bytes,
        pin_dir: pin_dir.to_path_buf(),
        max_workloads: collector::ebpf::DEFAULT_MAX_WORKLOADS,
        max_wire_version: schemas::wire::CURRENT_VERSION,
        signing_key: None,
        docker_socket: Some(PathBuf::from("/var/run/docker.sock")),
        podman_socket: None,
        cri_socket: None,
        cgroup_parent: Some(parent.to_string()),
        proc_root: PathBuf::from("/proc"),
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = kernel::remove_pins(&self.pin_dir);
    }
}

fn now() -> u64 {
    sysutil::clock::now_ms()
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
    // At wire version 8 each one is signed by the host's key, created in
    // the state directory on the first start.
    let key = collector::daemon::hostkey::load(&d.config().state_dir.join("host.key"))
        .expect("the host key")
        .public_key();
    for p in &pending {
        let bytes = p.read().unwrap();
        assert_eq!(schemas::wire::peek_version(&bytes), Ok(8));
        let (_, signer) = schemas::wire::decode_with_signer(&bytes).unwrap();
        assert_eq!(signer, Some(key));
    }
}

#[test]
fn short_lived_containers_of_two_images_are_attributed_exactly() {
    let a = probe_image("a");
    let b = probe_image("b");
    let env = Env::new();
    let mut d = env.open(256 << 20);
    // `docker run --rm` of programs that exit at once.
    let run = |img: &str, n: u32, nr: u32| {
        let id = env.run(&["--rm", img, "/probe", &n.to_string(), &nr.to_string()]);
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
    assert_eq!(e.containers.len(), 2, "only this test's containers: {e:?}");
    spool_is(&d, &[&e]);
    // Exited and published: never again, and nothing else to say.
    assert_eq!(tick(&mut d), None);
    spool_is(&d, &[&e]);
    for img in [&a, &b] {
        let _ = Command::new("docker").args(["rmi", img]).output();
    }
}

/// The variables that make this test binary the crash test's collector
/// process (see [`collector_process`]).
const CHILD_STATE_DIR: &str = "SANDMINE_TEST_CHILD_STATE_DIR";
const CHILD_PIN_DIR: &str = "SANDMINE_TEST_CHILD_PIN_DIR";
const CHILD_PARENT: &str = "SANDMINE_TEST_CHILD_CGROUP_PARENT";

/// Not a test of its own: the real collector process that
/// [`deltas_sum_exactly_through_a_kill_at_commit_restart_and_full_spool`]
/// starts, holds inside its state commit and kills with SIGKILL. It does
/// its work only in that child (this test binary run again with
/// [`CHILD_STATE_DIR`] set), and returns at once anywhere else.
#[test]
fn collector_process() {
    let Some(state_dir) = std::env::var_os(CHILD_STATE_DIR) else {
        return;
    };
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
    let cfg = config(
        Path::new(&state_dir),
        Path::new(&var(CHILD_PIN_DIR)),
        &var(CHILD_PARENT),
        256 << 20,
    );
    let mut d = Daemon::open(cfg).expect("the collector process opens");
    let e = d.tick(now()).expect("tick");
    // Reached only when nobody holds the commit.
    println!("committed seq {:?}", e.map(|e| e.seq));
}

/// Starts [`collector_process`] with its renames onto the state file
/// trapped.
fn spawn_collector(env: &Env) -> RenameTrap {
    let mut cmd = Command::new(std::env::current_exe().expect("own path"));
    cmd.args([
        "--exact",
        "collector_process",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_STATE_DIR, env.state.path())
    .env(CHILD_PIN_DIR, &env.pin_dir)
    .env(CHILD_PARENT, &env.parent)
    .stdout(Stdio::null());
    RenameTrap::spawn(&mut cmd, &env.state.path().join("state.json"))
        .expect("the collector process starts")
}

/// The committed seq, as the state file on disk says.
fn committed_seq(env: &Env) -> u64 {
    let bytes = std::fs::read(env.state.path().join("state.json")).expect("state.json");
    let v: serde_json::Value = serde_json::from_slice(&bytes).expect("state.json is JSON");
    v["seq"].as_u64().expect("a seq in state.json")
}

/// The spooled messages on disk, decoded, in seq order.
fn spooled(env: &Env) -> Vec<Envelope> {
    let mut v: Vec<Envelope> = std::fs::read_dir(env.state.path().join("spool"))
        .expect("the spool directory")
        .map(|e| e.expect("a spool entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "msg"))
        .map(|p| schemas::wire::decode(&std::fs::read(&p).expect("read")).expect("decodes"))
        .collect();
    v.sort_by_key(|e| e.seq);
    v
}

#[test]
fn deltas_sum_exactly_through_a_kill_at_commit_restart_and_full_spool() {
    let img = probe_image("c");
    let env = Env::new();
    // Every committed message, to sum against the ground truth.
    let mut published = Vec::new();
    let mut d = env.open(256 << 20);
    let id = env.run(&[&img, "/bin/busybox", "sleep", "300"]);
    let exec = |n: u32| {
        sh(Command::new("docker").args(["exec", &id, "/probe", &n.to_string(), "111"]));
    };
    let e0 = tick(&mut d).expect("delta 0: the container's start");
    assert_eq!(calls(&e0, &id, GETPGRP), 0);
    published.push(e0);
    exec(100);
    let e1 = tick(&mut d).expect("delta 1");
    assert_eq!(calls(&e1, &id, GETPGRP), 100);
    let c = e1.containers.iter().find(|c| c.container.id == id).unwrap();
    assert_eq!(c.container.image, img);
    assert_eq!(c.exited_at_ms, None);
    published.push(e1);

    // kill -9 of a real collector process between its spool write and its
    // state commit: held inside the rename of state.json, then killed.
    exec(200);
    let seq_before = d.seq();
    drop(d);
    let mut collector = spawn_collector(&env);
    let held = collector
        .wait_for_rename(Duration::from_secs(120))
        .expect("the collector reaches its state commit");
    assert_eq!(held.from, env.state.path().join("state.tmp"));
    assert_eq!(held.let_through, 1, "the spool file's own rename ran first");
    let status = collector.kill().expect("kill -9");
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    // The disk shows the window was hit: a message spooled above the
    // committed seq, holding the 200 calls.
    assert_eq!(committed_seq(&env), seq_before);
    let on_disk = spooled(&env);
    let lost = on_disk.last().expect("a spooled message");
    assert_eq!(lost.seq, seq_before + 1);
    assert_eq!(calls(lost, &id, GETPGRP), 200);

    // Calls while the collector is down: the pinned program keeps counting.
    exec(300);
    let mut d = env.open(256 << 20);
    assert_eq!(d.seq(), seq_before);
    // The uncommitted message is gone from the spool.
    assert_eq!(
        spooled(&env).iter().map(|e| e.seq).max(),
        Some(seq_before),
        "only committed messages stay spooled"
    );
    let e2 = tick(&mut d).expect("delta 2");
    assert_eq!(
        e2.seq,
        seq_before + 1,
        "the seq of the discarded message is reused"
    );
    assert_eq!(
        calls(&e2, &id, GETPGRP),
        500,
        "200 before the kill + 300 while down"
    );
    published.push(e2);

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
    d.spool().ack_seq(e3.seq).unwrap();
    published.push(e3);

    // The container exits: its final delta says so, once.
    sh(Command::new("docker").args(["rm", "-f", &id]));
    let e4 = tick(&mut d).expect("final delta");
    let c = e4.containers.iter().find(|c| c.container.id == id).unwrap();
    assert!(c.exited_at_ms.is_some());
    assert_eq!(calls(&e4, &id, GETPGRP), 0);
    published.push(e4);
    assert_eq!(
        tick(&mut d),
        None,
        "an exited container is never published again"
    );

    // What left the host, summed: exactly the calls the container made,
    // in consecutive seqs.
    let total: u64 = published.iter().map(|e| calls(e, &id, GETPGRP)).sum();
    assert_eq!(total, 100 + 200 + 300 + 50 + 25);
    let seqs: Vec<u64> = published.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    let _ = Command::new("docker").args(["rmi", &img]).output();
}

/// Issue 9, item 4: the state file is lost while the kernel's pinned
/// counters survive. The reopened daemon starts a new stream (another
/// epoch in the envelope's `boot_id`), so its seq 1 cannot shadow the
/// stored seq 1 of the old stream, and it discards the counters whose
/// counts it cannot attribute instead of publishing them again.
#[test]
fn a_lost_state_file_starts_a_new_stream_and_resends_nothing() {
    let a = probe_image("lost-state");
    let env = Env::new();
    let run = |n: u32| {
        let id = env.run(&[&a, "/probe", &n.to_string(), &GETPGRP.to_string()]);
        sh(Command::new("docker").args(["wait", &id]));
        id
    };
    let mut d = env.open(256 << 20);
    let first = run(1234);
    let e1 = tick(&mut d).expect("a delta");
    assert_eq!((e1.seq, calls(&e1, &first, GETPGRP)), (1, 1234));
    // Counted in the kernel, never committed: the state that would say
    // so is about to be lost.
    let uncommitted = run(777);
    drop(d);
    std::fs::remove_file(env.state.path().join("state.json")).expect("state.json exists");
    assert!(
        env.pin_dir
            .read_dir()
            .expect("pins survive")
            .next()
            .is_some(),
        "the pinned counters survive the daemon"
    );

    let mut d = env.open(256 << 20);
    assert_eq!(d.seq(), 0);
    assert_ne!(d.stream_id(), e1.boot_id);
    let third = run(55);
    let e2 = tick(&mut d).expect("a delta");
    assert_eq!(e2.seq, 1);
    assert_eq!(e2.boot_id, d.stream_id());
    assert_ne!(e2.dedupe_id(), e1.dedupe_id());
    assert_eq!(calls(&e2, &third, GETPGRP), 55);
    // Nothing of the old counters comes back: not the published 1234 (a
    // double count), and the uncommitted 777 are lost, loudly (a warning).
    assert_eq!(calls(&e2, &first, GETPGRP), 0, "{e2:?}");
    assert_eq!(calls(&e2, &uncommitted, GETPGRP), 0, "{e2:?}");
    for id in [&first, &uncommitted, &third] {
        let _ = Command::new("docker").args(["rm", "-f", id]).output();
    }
    let _ = Command::new("docker").args(["rmi", &a]).output();
}
