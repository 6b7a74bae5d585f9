//! Denials back from the kernel: real containers under real seccomp
//! profiles (`docker run --security-opt seccomp=FILE`, and Docker's own
//! default), a real counter in auto-track mode, exact counts. The probe is
//! `tests/probes/argprobe.c` (one raw call per forked child, of the ABI
//! asked), statically linked and mounted into the local test image. These
//! need root, dockerd and the test image; they fail, never skip.

mod probes;

use collector::ebpf::{EbpfCollector, EbpfOptions, WorkloadKey};
use schemas::{Abi, DenialKey, Denials, DenyAction};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const IMAGE: &str = "sandmine-test/busybox:1";
const ARGPROBE: &str = include_str!("../../tests/probes/argprobe.c");

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("docker must be installed (scripts/install-deps.sh)")
}

/// Runs `argprobe SPECS` in a container under `seccomp` (a profile file,
/// or `None` for Docker's default) and returns the container's id and the
/// probe's output. The container is removed afterwards.
fn run_probe(dir: &Path, seccomp: Option<&Path>, specs: &[String]) -> (String, String) {
    let mut create = vec![
        "create".to_string(),
        "--network".into(),
        "none".into(),
        "-v".into(),
        format!("{}:/probe:ro", dir.display()),
    ];
    if let Some(p) = seccomp {
        create.push("--security-opt".into());
        create.push(format!("seccomp={}", p.display()));
    }
    create.push(IMAGE.into());
    create.push("/probe/argprobe".into());
    create.extend(specs.iter().cloned());
    let args: Vec<&str> = create.iter().map(String::as_str).collect();
    let out = docker(&args);
    assert!(
        out.status.success(),
        "docker create failed ({}): is dockerd up (scripts/start-dockerd.sh) and {IMAGE} built (tests/images/build.sh)?",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let id = String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string();
    let start = docker(&["start", "-a", &id]);
    let rm = docker(&["rm", "-f", &id]);
    assert!(
        start.status.success(),
        "docker start -a {id}: {}",
        String::from_utf8_lossy(&start.stderr)
    );
    assert!(rm.status.success(), "docker rm {id}");
    (id, String::from_utf8(start.stdout).expect("utf-8"))
}

/// Every workload of container `id` (its cgroup's name holds the id).
fn keys_of(c: &EbpfCollector, id: &str) -> Vec<WorkloadKey> {
    c.keys()
        .expect("keys")
        .into_iter()
        .filter(|k| {
            c.cgroup_name(k)
                .expect("cgroup name")
                .is_some_and(|n| n.leaf_str().contains(id))
        })
        .collect()
}

/// The container's denials, summed over its workloads.
fn denials_of(c: &EbpfCollector, id: &str) -> Denials {
    let keys = keys_of(c, id);
    assert!(!keys.is_empty(), "container {id} was never tracked");
    let mut all = Denials::new();
    for k in keys {
        for (d, n) in c.denials_of(&k).expect("denials") {
            *all.entry(d).or_default() += n;
        }
    }
    all
}

fn d(abi: Abi, nr: u32, action: DenyAction, n: u64) -> (DenialKey, u64) {
    (DenialKey { abi, nr, action }, n)
}

fn setup() -> (tempfile::TempDir, EbpfCollector) {
    let dir = tempfile::Builder::new()
        .prefix("sandmine-denials-")
        .tempdir()
        .expect("tempdir");
    let probe = probes::build_static("argprobe", ARGPROBE);
    std::fs::copy(&probe, dir.path().join("argprobe")).expect("copy probe");
    let c = EbpfCollector::load(&EbpfOptions {
        auto_track: true,
        ..EbpfOptions::default()
    })
    .expect("load the counter (root, BTF)");
    (dir, c)
}

fn profile(dir: &Path, name: &str, rules: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(
        &p,
        format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW",
 "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
 "syscalls":[{rules}]}}"#
        ),
    )
    .expect("write profile");
    p
}

fn times(spec: &str, n: usize) -> Vec<String> {
    vec![spec.to_string(); n]
}

#[test]
fn errno_and_trap_denials_are_counted_exactly_per_abi() {
    let (dir, c) = setup();
    // getpgrp (x86_64 and x32 111, i386 65) fails with EACCES (13); times
    // (x86_64 100) traps.
    let p = profile(
        dir.path(),
        "errno.json",
        r#"{"names":["getpgrp"],"action":"SCMP_ACT_ERRNO","errnoRet":13},
           {"names":["times"],"action":"SCMP_ACT_TRAP"}"#,
    );
    let mut specs = times("x86_64:111", 7);
    specs.extend(times("int80:65", 3));
    specs.extend(times("x32:111", 2));
    specs.extend(times("x86_64:100", 1));
    let (id, out) = run_probe(dir.path(), Some(&p), &specs);
    assert_eq!(
        out,
        "x86_64:111=E13\n".repeat(7)
            + &"int80:65=E13\n".repeat(3)
            + &"x32:111=E13\n".repeat(2)
            + "x86_64:100=kill:31\n"
    );
    let want: Denials = [
        d(Abi::X86_64, 111, DenyAction::Errno(13), 7),
        d(Abi::I386, 65, DenyAction::Errno(13), 3),
        d(Abi::X32, 111, DenyAction::Errno(13), 2),
        d(Abi::X86_64, 100, DenyAction::Trap, 1),
    ]
    .into();
    assert_eq!(denials_of(&c, &id), want);
    assert_eq!(c.denials_uncounted().expect("diag"), (0, 0));
}

#[test]
fn kills_are_counted_once_each() {
    let (dir, c) = setup();
    // getpgrp kills the process, times the thread (the probe's children are
    // single-threaded: the kernel takes the same path as for a process).
    let p = profile(
        dir.path(),
        "kill.json",
        r#"{"names":["getpgrp"],"action":"SCMP_ACT_KILL_PROCESS"},
           {"names":["times"],"action":"SCMP_ACT_KILL_THREAD"}"#,
    );
    let specs: Vec<String> = ["x86_64:111", "x86_64:100", "x86_64:111", "int80:65"]
        .map(String::from)
        .into();
    let (id, out) = run_probe(dir.path(), Some(&p), &specs);
    assert_eq!(
        out,
        "x86_64:111=kill:31\nx86_64:100=kill:31\nx86_64:111=kill:31\nint80:65=kill:31\n"
    );
    let want: Denials = [
        d(Abi::X86_64, 111, DenyAction::Kill, 2),
        d(Abi::X86_64, 100, DenyAction::Kill, 1),
        d(Abi::I386, 65, DenyAction::Kill, 1),
    ]
    .into();
    assert_eq!(denials_of(&c, &id), want);
}

#[test]
fn docker_default_profile_denials_are_counted() {
    let (dir, c) = setup();
    // acct (x86_64 163) needs CAP_SYS_PACCT in Docker's default profile,
    // which a default container lacks: EPERM from the filter. keyctl (250)
    // is never allowed.
    let mut specs = times("x86_64:163", 4);
    specs.extend(times("x86_64:250", 2));
    let (id, out) = run_probe(dir.path(), None, &specs);
    assert_eq!(
        out,
        "x86_64:163=E1\n".repeat(4) + &"x86_64:250=E1\n".repeat(2)
    );
    let want: Denials = [
        d(Abi::X86_64, 163, DenyAction::Errno(1), 4),
        d(Abi::X86_64, 250, DenyAction::Errno(1), 2),
    ]
    .into();
    assert_eq!(denials_of(&c, &id), want);
}

#[test]
fn calls_the_filter_allows_are_never_denials() {
    let (dir, c) = setup();
    // The kernel's own errors (close(-1): EBADF) are not denials.
    let p = profile(
        dir.path(),
        "allow.json",
        r#"{"names":["getpgrp"],"action":"SCMP_ACT_ERRNO","errnoRet":13}"#,
    );
    let mut specs = times("x86_64:3:0xffffffffffffffff", 5);
    specs.extend(times("x86_64:111", 1));
    let (id, out) = run_probe(dir.path(), Some(&p), &specs);
    assert_eq!(
        out,
        "x86_64:3:0xffffffffffffffff=E9\n".repeat(5) + "x86_64:111=E13\n"
    );
    let want: Denials = [d(Abi::X86_64, 111, DenyAction::Errno(13), 1)].into();
    assert_eq!(denials_of(&c, &id), want);
}
