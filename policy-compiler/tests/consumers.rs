//! Every output format of the fleet compiler, checked by its real consumer.
//!
//! One synthetic fleet (25 unconfined containers of `sandmine-test/busybox:1`
//! on 3 hosts, every enforcement bar met) is compiled once; then:
//!
//! - `seccomp.json` runs under Docker (`--security-opt seccomp=`) and under
//!   `runc` itself (an OCI bundle from `docker export`): the workload works,
//!   and a no-libc probe gets exactly the errno the profile names for every
//!   x86_64 syscall outside it (EPERM; ENOSYS for clone3 and the probed
//!   ones), except where runc by design answers ENOSYS instead: numbers
//!   above the largest one its libseccomp resolves in the profile (see
//!   [`expected_runtime_line`]). Podman is not installed here.
//! - `seccompprofile.yaml` parses (real YAML parser) into the SPO v1beta1
//!   CRD's fields and values, its `spec` equals `seccomp.json`, and the JSON
//!   the operator would write to the node from that `spec` runs under Docker.
//! - `kubelet/sandmine/<name>.json` sits at its path under a kubelet-like
//!   seccomp root and Docker runs with that path.
//! - `systemd.conf` passes `systemd-analyze verify` (shown to reject a bad
//!   name here) and every name is in systemd's `@known`.
//! - `bpf/x86_64.bpf` is installed with `seccomp(SECCOMP_SET_MODE_FILTER)`
//!   by a small C loader, around the probe and the image's busybox.
//!
//! Needs root, docker with the `sandmine-test/busybox:1` image, runc, cc and
//! systemd-analyze; a missing one fails the test with what to install.
//!
//! The fleet's syscall sets were measured on this machine (see
//! [`IMAGE_SET`] and [`RUNTIME_BASE`] for how to regenerate them).

use policy_compiler::decide::State;
use policy_compiler::oci::{Action, OciProfile};
use policy_compiler::policy::Policy;
use policy_compiler::{compile_image, render, Compiled};
use schemas::fleet::{ContainerIncidence, ImageObservations, IncidenceEntry, SyscallTotals};
use schemas::{syscalls, Abi, Phase, PhaseSet};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

const IMAGE: &str = "sandmine-test/busybox:1";
const X: Abi = Abi::X86_64;
const H: u64 = 3_600_000;
const NOW: u64 = 100 * H;

/// The workload: busybox `sh` runs `echo` (a builtin) and execs `cat`.
const WORKLOAD: &[&str] = &["sh", "-c", "echo ok; cat /etc/passwd"];

/// What the image's own processes call for [`WORKLOAD`] (the profile's
/// `sandmine.image` list). Regenerate with
/// `sandmine mine-image sandmine-test/busybox:1 -o p.json -- sh -c 'echo ok; cat /etc/passwd'`
/// and copy `p.json`'s `.sandmine.image`.
const IMAGE_SET: &[&str] = &[
    "arch_prctl",
    "brk",
    "close",
    "execve",
    "exit_group",
    "getcwd",
    "getpid",
    "getppid",
    "getrandom",
    "getuid",
    "mprotect",
    "openat",
    "prctl",
    "prlimit64",
    "readlink",
    "rseq",
    "rt_sigaction",
    "sendfile",
    "set_robust_list",
    "set_tid_address",
    "write",
];

/// runc's measured must-allow base on this machine (docker 20.10.24 /
/// runc 1.1.5), the x86_64 numbers of
/// `/var/lib/sandmine/runtime-base/docker-20.10.24_dfsg1_runc-1.1.5_ds1.json`
/// by name. Regenerate from that file (or `sandmine mine-image`'s
/// `.sandmine.runtime`) after a runtime upgrade.
const RUNTIME_BASE: &[&str] = &[
    "read",
    "write",
    "close",
    "fstat",
    "getpid",
    "execve",
    "fcntl",
    "getcwd",
    "chdir",
    "setuid",
    "setgid",
    "getppid",
    "setgroups",
    "capget",
    "capset",
    "fstatfs",
    "prctl",
    "futex",
    "getdents64",
    "epoll_ctl",
    "openat",
    "newfstatat",
    "faccessat2",
];

/// Calls of the runtime's privileged set-up, before any filter: never
/// allowed (a few, to show they stay out).
const SETUP_ONLY: &[&str] = &["mount", "pivot_root", "sethostname", "clone3", "clone"];

/// The allowed set the compiler must produce: image + runtime base +
/// baseline (exit, exit_group, restart_syscall, rt_sigreturn on x86_64).
/// Equal to what `sandmine mine-image` allowed for the same workload.
const EXPECTED_ALLOWED: &[&str] = &[
    "arch_prctl",
    "brk",
    "capget",
    "capset",
    "chdir",
    "close",
    "epoll_ctl",
    "execve",
    "exit",
    "exit_group",
    "faccessat2",
    "fcntl",
    "fstat",
    "fstatfs",
    "futex",
    "getcwd",
    "getdents64",
    "getpid",
    "getppid",
    "getrandom",
    "getuid",
    "mprotect",
    "newfstatat",
    "openat",
    "prctl",
    "prlimit64",
    "read",
    "readlink",
    "restart_syscall",
    "rseq",
    "rt_sigaction",
    "rt_sigreturn",
    "sendfile",
    "set_robust_list",
    "set_tid_address",
    "setgid",
    "setgroups",
    "setuid",
    "write",
];

/// Syscalls the probe never calls although the profile denies them: with
/// six zero arguments they would block (pause, select...), fork (clone,
/// fork, vfork), or change the host (sethostname(NULL, 0), acct(NULL),
/// seccomp strict mode...) if a consumer wrongly let them through.
const HAZARDS: &[&str] = &[
    "pause",
    "rt_sigsuspend",
    "select",
    "pselect6",
    "ppoll",
    "msgrcv",
    "msgsnd",
    "fork",
    "vfork",
    "clone",
    "vhangup",
    "kill",
    "tkill",
    "tgkill",
    "seccomp",
    "sethostname",
    "setdomainname",
    "acct",
    "reboot",
    "kexec_load",
    "kexec_file_load",
    "finit_module",
    "setsid",
];

/// Syscalls the kernel runs without asking seccomp at all (Linux >= 6.11
/// for uretprobe, >= 6.18 for uprobe: they only work from the uprobe
/// trampoline, so `__secure_computing` lets them through). No consumer
/// can deny them; the probe leaves them out.
const KERNEL_PASSTHROUGH: &[&str] = &["uretprobe", "uprobe"];

/// Allowed syscalls that succeed with six zero arguments: the probe calls
/// them to show the allowed side works.
const SAFE_ALLOWED: &[&str] = &["getpid", "getppid", "getuid"];

/// A number no x86_64 syscall has: the default action must answer it.
const UNKNOWN_NR: u32 = 1000;

// ---------------------------------------------------------------------
// The fleet and the compiled image.

fn nr(name: &str) -> u32 {
    syscalls::number(X, name).unwrap_or_else(|| panic!("x86_64 has no syscall {name}"))
}

/// 25 unconfined containers on 3 hosts, one starting per hour from 0,
/// each running 2 h: the runtime's set-up (including its tail, which an
/// unconfined container runs without a filter) in `Setup`, the workload's
/// calls in `Unfiltered`. At [`NOW`] every enforcement bar is met.
fn observations() -> ImageObservations {
    let hosts = ["node-a", "node-b", "node-c"];
    let uses: Vec<(&str, Phase)> = RUNTIME_BASE
        .iter()
        .chain(SETUP_ONLY)
        .map(|n| (*n, Phase::Setup))
        .chain(IMAGE_SET.iter().map(|n| (*n, Phase::Unfiltered)))
        .collect();
    let mut incidence = Vec::new();
    let mut totals: BTreeMap<u32, SyscallTotals> = BTreeMap::new();
    let mut hosts_of: BTreeMap<u32, BTreeSet<&str>> = BTreeMap::new();
    for i in 0..25u64 {
        let host = hosts[(i % 3) as usize];
        let start = i * H;
        let mut entries: BTreeMap<u32, IncidenceEntry> = BTreeMap::new();
        for (name, phase) in &uses {
            let e = entries.entry(nr(name)).or_insert(IncidenceEntry {
                abi: X,
                nr: nr(name),
                phases: PhaseSet::default(),
                first_seen_ms: start,
                last_seen_ms: start + H,
            });
            e.phases.insert(*phase);
        }
        for (n, e) in &entries {
            let t = totals.entry(*n).or_insert(SyscallTotals {
                abi: X,
                nr: *n,
                hosts: 0,
                containers: 0,
                calls: 0,
                first_seen_ms: u64::MAX,
                last_seen_ms: 0,
                phases: PhaseSet::default(),
            });
            t.containers += 1;
            t.calls += 1;
            t.first_seen_ms = t.first_seen_ms.min(e.first_seen_ms);
            t.last_seen_ms = t.last_seen_ms.max(e.last_seen_ms);
            t.phases = t.phases.union(e.phases);
            hosts_of.entry(*n).or_default().insert(host);
        }
        incidence.push(ContainerIncidence {
            host_id: host.into(),
            boot_id: "boot".into(),
            container_id: format!("c{i:03}"),
            started_at_ms: start,
            last_seen_ms: start + 2 * H,
            seccomp: "unconfined".into(),
            incomplete: false,
            unverified: false,
            syscalls: entries.into_values().collect(),
        });
    }
    let syscalls = totals
        .into_iter()
        .map(|(n, mut t)| {
            t.hosts = hosts_of[&n].len() as u64;
            t
        })
        .collect();
    ImageObservations {
        image: IMAGE.into(),
        digests: vec![
            "sha256:c3a89203b38c1889923fd3577a27517a91ed7f1edfc9b3de7e287e204e5d8dc3".into(),
        ],
        hosts: 3,
        containers: 25,
        container_seconds: 25 * 7200,
        first_seen_ms: 0,
        last_seen_ms: 26 * H,
        syscalls,
        incidence,
        out_of_range: 0,
        args: Default::default(),
        executed: Default::default(),
    }
}

fn policy() -> Policy {
    let base = RUNTIME_BASE
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    Policy::from_toml(&format!(
        "[runtime]\nname = \"runc\"\nversion = \"1.1.5\"\nbase = {{ x86_64 = [{base}] }}\n"
    ))
    .expect("policy")
}

/// The compiled image, once per test binary (compiling is pure).
fn compiled() -> &'static Compiled {
    static C: OnceLock<Compiled> = OnceLock::new();
    C.get_or_init(|| {
        let policy = policy().resolve().expect("policy");
        let c = compile_image(&observations(), &policy, NOW).expect("compile");
        assert_eq!(c.decision.state, State::Enforce, "{}", c.report_text);
        let allowed: Vec<&str> = c.decision.allowed_names()[&X].iter().copied().collect();
        assert_eq!(allowed, EXPECTED_ALLOWED, "{}", c.report_text);
        c
    })
}

fn file(name: &str) -> &'static [u8] {
    compiled()
        .files
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", compiled().files.keys()))
}

// ---------------------------------------------------------------------
// The probe and what every consumer must answer it.

/// Syscall numbers the probe calls: the safe allowed ones, then every
/// x86_64 syscall the profile does not allow (hazards left out), then an
/// unknown number.
fn probe_numbers() -> Vec<u32> {
    let p = &compiled().profile;
    let mut v: Vec<u32> = SAFE_ALLOWED.iter().map(|n| nr(n)).collect();
    v.extend(
        syscalls::table(X)
            .iter()
            .filter(|(_, name)| {
                !HAZARDS.contains(name)
                    && !KERNEL_PASSTHROUGH.contains(name)
                    && p.action_for(name).0 != Action::Allow
            })
            .map(|(n, _)| *n),
    );
    v.push(UNKNOWN_NR);
    v
}

fn probe_args() -> Vec<String> {
    probe_numbers().iter().map(u32::to_string).collect()
}

/// The line the probe must print under the profile: `NR:ok` for allowed,
/// `NR:ERRNO` with the profile's errno for denied.
fn expected_probe_line() -> String {
    let p = &compiled().profile;
    let parts: Vec<String> = probe_numbers()
        .iter()
        .map(|n| {
            let (action, errno) = match syscalls::name(X, *n) {
                Some(name) => p.action_for(name),
                None => (p.default_action, p.default_errno()),
            };
            match action {
                Action::Allow => format!("{n}:ok"),
                Action::Errno => format!("{n}:{}", errno.expect("errno")),
                a => panic!("enforce profile has action {a:?} for {n}"),
            }
        })
        .collect();
    format!("{}\n", parts.join(" "))
}

/// How the installed libseccomp (the one runc links, see
/// `tests/consumers/resolve.c`) resolves every name the profile's rules use.
fn libseccomp_numbers(dir: &Path) -> BTreeMap<String, Option<u32>> {
    let resolve = build_c(
        dir,
        "resolve.c",
        &["-O1", "-Wall", "-Werror"],
        &["-lseccomp"],
    );
    let names: BTreeSet<&str> = compiled()
        .profile
        .syscalls
        .iter()
        .flat_map(|r| r.names.iter().map(String::as_str))
        .collect();
    ok(Command::new(resolve).args(&names))
        .lines()
        .map(|l| {
            let (name, nr) = l.split_once(' ').expect("NAME NR");
            (name.to_string(), nr.parse::<u32>().ok())
        })
        .collect()
}

/// The line the probe must print in a container run by runc (directly or
/// under Docker): runc hands the rules to libseccomp, which ignores names
/// it does not know, and prepends a stub answering ENOSYS to every number
/// above the largest one it resolved in the profile (runc's
/// `patchbpf.generateEnosysStub`: newer syscalls look absent, so that
/// programs fall back). So: the profile's answer where libseccomp resolved
/// the rule, ENOSYS above that largest number, the default otherwise.
fn expected_runtime_line(dir: &Path) -> String {
    let p = &compiled().profile;
    let known = libseccomp_numbers(dir);
    let last = known
        .values()
        .flatten()
        .copied()
        .max()
        .expect("some known name");
    let parts: Vec<String> = probe_numbers()
        .iter()
        .map(|n| {
            let name = syscalls::name(X, *n);
            let ruled = name.is_some_and(|name| known.get(name) == Some(&Some(*n)));
            let (action, errno) = if ruled {
                p.action_for(name.expect("named"))
            } else if *n > last {
                (Action::Errno, Some(38))
            } else {
                (p.default_action, p.default_errno())
            };
            match action {
                Action::Allow => format!("{n}:ok"),
                Action::Errno => format!("{n}:{}", errno.expect("errno")),
                a => panic!("enforce profile has action {a:?} for {n}"),
            }
        })
        .collect();
    format!("{}\n", parts.join(" "))
}

/// The runtime line and the profile line differ only by ENOSYS for
/// numbers above runc's stub threshold, where the profile says EPERM
/// (this machine: libseccomp 2.5.4 knows fchmodat2, 452, the profile's
/// largest known name; 453 and up are "new" to runc).
#[test]
fn runc_differs_from_the_profile_only_by_enosys_for_newer_syscalls() {
    let dir = tempdir();
    let runtime = expected_runtime_line(dir.path());
    let profile = expected_probe_line();
    let known = libseccomp_numbers(dir.path());
    let last = known.values().flatten().copied().max().expect("known");
    for (r, p) in runtime.split_whitespace().zip(profile.split_whitespace()) {
        if r != p {
            let (n, v) = r.split_once(':').expect("NR:RESULT");
            let n: u32 = n.parse().expect("number");
            assert!(n > last && v == "38" && p.ends_with(":1"), "{r} vs {p}");
        }
    }
    // Every name a rule uses is resolved by this libseccomp, except the
    // ones newer than it (runc drops those rules).
    let unknown: Vec<&String> = known
        .iter()
        .filter(|(_, nr)| nr.is_none())
        .map(|(n, _)| n)
        .collect();
    for n in &unknown {
        assert!(
            syscalls::number(X, n).is_some_and(|nr| nr > last),
            "libseccomp does not know {n}, older than {last}"
        );
    }
}

/// The pinned facts the computed line rests on: sched_yield (a set-up
/// call) gets EPERM, clone3 (must-deny) and statx (probed, never seen)
/// ENOSYS, an unknown number the default EPERM, the safe allowed ones run.
#[test]
fn the_probe_expectations_pin_eperm_and_enosys() {
    let line = expected_probe_line();
    let got: BTreeMap<&str, &str> = line
        .trim_end()
        .split(' ')
        .map(|kv| kv.split_once(':').expect("NR:RESULT"))
        .collect();
    for (name, want) in [
        ("getpid", "ok"),
        ("getppid", "ok"),
        ("getuid", "ok"),
        ("sched_yield", "1"),
        ("mount", "1"),
        ("ptrace", "1"),
        ("clone3", "38"),
        ("statx", "38"),
        ("openat2", "38"),
        ("io_uring_setup", "38"),
    ] {
        assert_eq!(
            got.get(nr(name).to_string().as_str()),
            Some(&want),
            "{name}"
        );
    }
    assert_eq!(got.get("1000"), Some(&"1"));
    // Every x86_64 name is either allowed, left out, or probed.
    let left_out = HAZARDS
        .iter()
        .chain(KERNEL_PASSTHROUGH)
        .filter(|h| syscalls::number(X, h).is_some())
        .count();
    assert_eq!(
        got.len() + EXPECTED_ALLOWED.len() - SAFE_ALLOWED.len() + left_out,
        syscalls::table(X).len() + 1
    );
    let denied_enosys = got.values().filter(|v| **v == "38").count();
    let enosys_rule = compiled()
        .profile
        .syscalls
        .iter()
        .find(|r| r.action == Action::Errno && r.errno_ret == Some(38))
        .expect("an ENOSYS rule");
    assert_eq!(denied_enosys, enosys_rule.names.len());
}

// ---------------------------------------------------------------------
// Tools.

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A name unique across parallel tests and test processes.
fn unique(what: &str) -> String {
    format!(
        "sandmine-consumers-{what}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

fn need(tool: &str, why: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{tool}` is not on PATH: this test checks {why} with the real {tool}; install it"
            )
        })
}

fn docker() -> PathBuf {
    let d = need("docker", "the OCI profile");
    let out = run(Command::new(&d).args(["image", "inspect", "--format", "{{.Id}}", IMAGE]));
    assert!(
        out.status.success(),
        "docker image {IMAGE} is missing or docker is down ({}); build it (the workspace's test image) first",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    d
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

/// Run, require success, return stdout.
fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): stdout {:?} stderr {:?}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("sandmine-consumers-")
        .tempdir()
        .expect("tempdir")
}

/// Compile `tests/consumers/<src>` with cc into `dir` (`libs` after the
/// source, where the linker wants them).
fn build_c(dir: &Path, src: &str, flags: &[&str], libs: &[&str]) -> PathBuf {
    let cc = need("cc", "the BPF program and profiles with a C probe");
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/consumers")
        .join(src);
    let out = dir.join(src.trim_end_matches(".c"));
    ok(Command::new(cc)
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(&source)
        .args(libs));
    out
}

/// The static no-libc probe (see `tests/consumers/probe.c`).
fn probe(dir: &Path) -> PathBuf {
    build_c(
        dir,
        "probe.c",
        &["-static", "-nostdlib", "-fno-stack-protector", "-O1"],
        &[],
    )
}

fn write(dir: &Path, rel: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(rel);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&p, bytes).expect("write");
    p
}

/// `docker run --rm --network none --security-opt seccomp=<profile>` of the
/// image, with the probe mounted at `/probe` when given.
fn docker_run(
    docker: &Path,
    profile: &str,
    probe: Option<&Path>,
    entrypoint: Option<&str>,
    args: &[String],
) -> Output {
    let mut cmd = Command::new(docker);
    cmd.args(["run", "--rm", "--network", "none", "--name"])
        .arg(unique("run"))
        .arg("--security-opt")
        .arg(format!("seccomp={profile}"));
    if let Some(p) = probe {
        cmd.arg("-v").arg(format!("{}:/probe:ro", p.display()));
    }
    if let Some(e) = entrypoint {
        cmd.args(["--entrypoint", e]);
    }
    cmd.arg(IMAGE).args(args);
    run(&mut cmd)
}

fn stdout_ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}): stdout {:?} stderr {:?}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

fn workload_args() -> Vec<String> {
    WORKLOAD.iter().map(|s| s.to_string()).collect()
}

/// The image's root filesystem, exported by docker into `dir/rootfs`.
fn export_rootfs(docker: &Path, dir: &Path) -> PathBuf {
    let name = unique("export");
    ok(Command::new(docker).args(["create", "--name", &name, IMAGE]));
    let tar = dir.join("rootfs.tar");
    let exported = run(Command::new(docker)
        .args(["export", "-o"])
        .arg(&tar)
        .arg(&name));
    ok(Command::new(docker).args(["rm", &name]));
    assert!(
        exported.status.success(),
        "docker export: {}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(&rootfs).expect("mkdir rootfs");
    ok(Command::new(need("tar", "the runc bundle"))
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&rootfs));
    rootfs
}

/// What the workload prints: `ok` and the image's /etc/passwd.
fn expected_workload_output(rootfs_passwd: &str) -> String {
    format!("ok\n{rootfs_passwd}")
}

// ---------------------------------------------------------------------
// 1. Docker / OCI JSON.

#[test]
fn docker_runs_the_workload_and_denies_everything_else_with_the_profiles_errno() {
    let docker = docker();
    let dir = tempdir();
    let profile = write(dir.path(), "seccomp.json", file("seccomp.json"));
    let profile = profile.to_str().expect("utf-8 path");
    let probe = probe(dir.path());

    // The workload works, and prints what it prints unconfined.
    let confined = stdout_ok(
        docker_run(&docker, profile, None, None, &workload_args()),
        "the workload under seccomp.json",
    );
    let unconfined = stdout_ok(
        docker_run(&docker, "unconfined", None, None, &workload_args()),
        "the workload unconfined",
    );
    assert!(unconfined.starts_with("ok\nroot:x:0:0:"), "{unconfined:?}");
    assert_eq!(confined, unconfined);

    // Every syscall outside the profile gets the profile's errno.
    let line = stdout_ok(
        docker_run(
            &docker,
            profile,
            Some(&probe),
            Some("/probe"),
            &probe_args(),
        ),
        "the probe under seccomp.json",
    );
    assert_eq!(line, expected_runtime_line(dir.path()));

    // Control: unconfined, the same calls are not denied this way.
    let free = stdout_ok(
        docker_run(
            &docker,
            "unconfined",
            Some(&probe),
            Some("/probe"),
            &[nr("sched_yield"), nr("clone3"), nr("statx")].map(|n| n.to_string()),
        ),
        "the probe unconfined",
    );
    assert_eq!(free, "24:ok 435:22 332:14\n");
}

// ---------------------------------------------------------------------
// 1b. runc with an OCI bundle.

/// `linux.seccomp` of a runc config.json from the OCI profile: the same
/// field names; the `sandmine` metadata and rule comments are not part of
/// the runtime spec.
fn runc_seccomp(p: &OciProfile) -> serde_json::Value {
    let syscalls: Vec<serde_json::Value> = p
        .syscalls
        .iter()
        .map(|r| {
            let mut v = serde_json::json!({ "names": r.names, "action": r.action.as_str() });
            if let Some(e) = r.errno_ret {
                v["errnoRet"] = e.into();
            }
            v
        })
        .collect();
    let mut v = serde_json::json!({
        "defaultAction": p.default_action.as_str(),
        "architectures": p.architectures.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        "syscalls": syscalls,
    });
    if let Some(e) = p.default_errno_ret {
        v["defaultErrnoRet"] = e.into();
    }
    v
}

fn runc_run(runc: &Path, dir: &Path, seccomp: &serde_json::Value, args: &[String]) -> Output {
    let bundle = dir;
    let config = bundle.join("config.json");
    if !config.exists() {
        ok(Command::new(runc).arg("spec").arg("--bundle").arg(bundle));
    }
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config).expect("config.json")).expect("json");
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = args.into();
    spec["linux"]["seccomp"] = seccomp.clone();
    std::fs::write(&config, serde_json::to_vec_pretty(&spec).expect("json")).expect("write");
    let id = unique("runc");
    let out = run(Command::new(runc)
        .arg("--root")
        .arg(dir.join("runc-state"))
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(&id));
    // A container that failed to start may be left behind in our state dir.
    let _ = run(Command::new(runc)
        .arg("--root")
        .arg(dir.join("runc-state"))
        .args(["delete", "--force", &id]));
    out
}

#[test]
fn runc_runs_the_oci_profile_in_a_bundle() {
    let docker = docker();
    let runc = need("runc", "the OCI profile in a runtime-spec bundle");
    let dir = tempdir();
    let rootfs = export_rootfs(&docker, dir.path());
    let probe = probe(dir.path());
    std::fs::copy(&probe, rootfs.join("probe")).expect("copy the probe");
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).expect("rootfs passwd");

    let profile = OciProfile::parse(std::str::from_utf8(file("seccomp.json")).expect("utf-8"))
        .expect("seccomp.json parses");
    let seccomp = runc_seccomp(&profile);
    assert_eq!(seccomp["defaultAction"], "SCMP_ACT_ERRNO");

    let wl = stdout_ok(
        runc_run(&runc, dir.path(), &seccomp, &workload_args()),
        "the workload under runc",
    );
    assert_eq!(wl, expected_workload_output(&passwd));

    let mut args = vec!["/probe".to_string()];
    args.extend(probe_args());
    let line = stdout_ok(
        runc_run(&runc, dir.path(), &seccomp, &args),
        "the probe under runc",
    );
    assert_eq!(line, expected_runtime_line(dir.path()));
}

// ---------------------------------------------------------------------
// 2. security-profiles-operator SeccompProfile.

/// The SPO v1beta1 `SeccompProfile` resource as this test reads it: the
/// CRD's field names (`deny_unknown_fields`: anything else would be
/// pruned or rejected by the API server).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SpoResource {
    api_version: String,
    kind: String,
    metadata: SpoMetadata,
    spec: SpoSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpoMetadata {
    name: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// `SeccompProfileSpec` (v1beta1): `defaultAction` is required;
/// `architectures`, `syscalls`, `flags`, `baseProfileName`, `disabled`,
/// `listenerPath`, `listenerMetadata` are optional. There is no
/// `defaultErrnoRet`: the node's runtime answers ERRNO with EPERM.
#[derive(Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SpoSpec {
    default_action: String,
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    syscalls: Vec<SpoSyscall>,
    #[serde(default)]
    flags: Vec<String>,
    #[serde(default)]
    base_profile_name: Option<String>,
    #[serde(default)]
    disabled: Option<bool>,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SpoSyscall {
    action: String,
    names: Vec<String>,
    #[serde(default)]
    errno_ret: Option<u64>,
}

/// The CRD's `Action` enum.
const SPO_ACTIONS: &[&str] = &[
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];

/// The CRD's `Arch` enum.
const SPO_ARCHES: &[&str] = &[
    "SCMP_ARCH_NATIVE",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
];

fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Rules as (action, errno, sorted names), order-free.
type RuleSet = BTreeSet<(String, Option<u64>, Vec<String>)>;

fn rules_of_json(v: &serde_json::Value) -> RuleSet {
    v["syscalls"]
        .as_array()
        .expect("syscalls")
        .iter()
        .map(|r| {
            let mut names: Vec<String> = r["names"]
                .as_array()
                .expect("names")
                .iter()
                .map(|n| n.as_str().expect("name").to_string())
                .collect();
            names.sort();
            (
                r["action"].as_str().expect("action").to_string(),
                r["errnoRet"].as_u64(),
                names,
            )
        })
        .collect()
}

#[test]
fn spo_seccompprofile_has_the_crd_shape_and_equals_the_oci_profile() {
    let text = std::str::from_utf8(file("seccompprofile.yaml")).expect("utf-8");
    // Two documents for one release: the object under the slug, then under
    // the name of earlier releases.
    let docs: Vec<SpoResource> = serde_norway::Deserializer::from_str(text)
        .map(|d| SpoResource::deserialize(d).expect("SPO YAML parses into the CRD fields"))
        .collect();
    assert_eq!(docs.len(), 2);
    assert_eq!(
        docs[1].metadata.name,
        schemas::slug::legacy(IMAGE).kubernetes
    );
    assert_eq!(docs[1].spec, docs[0].spec);
    let r = &docs[0];
    assert_eq!(r.api_version, "security-profiles-operator.x-k8s.io/v1beta1");
    assert_eq!(r.kind, "SeccompProfile");
    assert_eq!(r.metadata.name, schemas::slug::image_slug(IMAGE));
    assert!(is_dns1123_label(&r.metadata.name), "{}", r.metadata.name);
    assert_eq!(
        r.metadata.annotations.get("sandmine.io/content-hash"),
        Some(&compiled().content_hash)
    );
    assert_eq!(
        r.metadata
            .annotations
            .get("sandmine.io/image")
            .map(String::as_str),
        Some(IMAGE)
    );
    assert_eq!(
        r.metadata
            .annotations
            .get("sandmine.io/state")
            .map(String::as_str),
        Some("enforce")
    );
    assert!(r.spec.flags.is_empty());
    assert_eq!(r.spec.base_profile_name, None);
    assert_eq!(r.spec.disabled, None);
    assert!(SPO_ACTIONS.contains(&r.spec.default_action.as_str()));
    for a in &r.spec.architectures {
        assert!(SPO_ARCHES.contains(&a.as_str()), "{a}");
    }
    for s in &r.spec.syscalls {
        assert!(SPO_ACTIONS.contains(&s.action.as_str()), "{}", s.action);
        assert!(!s.names.is_empty(), "the CRD needs at least one name");
        for n in &s.names {
            assert!(syscalls::is_known(n), "{n}");
        }
    }

    // The spec as the OCI JSON the operator writes to the node.
    let spec_json = serde_json::json!({
        "defaultAction": r.spec.default_action,
        "architectures": r.spec.architectures,
        "syscalls": r.spec.syscalls.iter().map(|s| {
            let mut v = serde_json::json!({ "names": s.names, "action": s.action });
            if let Some(e) = s.errno_ret { v["errnoRet"] = e.into(); }
            v
        }).collect::<Vec<_>>(),
    });
    let oci: serde_json::Value = serde_json::from_slice(file("seccomp.json")).expect("json");
    assert_eq!(spec_json["defaultAction"], oci["defaultAction"]);
    assert_eq!(spec_json["architectures"], oci["architectures"]);
    assert_eq!(rules_of_json(&spec_json), rules_of_json(&oci));
    // Only the default errno cannot be carried; it must be the one runc
    // uses without it.
    assert!(
        oci["defaultErrnoRet"].is_null() || oci["defaultErrnoRet"] == 1,
        "{}",
        oci["defaultErrnoRet"]
    );
    let allow: BTreeSet<String> = rules_of_json(&spec_json)
        .into_iter()
        .filter(|(a, _, _)| a == "SCMP_ACT_ALLOW")
        .flat_map(|(_, _, n)| n)
        .collect();
    let expected: BTreeSet<String> = EXPECTED_ALLOWED.iter().map(|s| s.to_string()).collect();
    assert_eq!(allow, expected);

    // And that JSON is a profile Docker runs with the same result.
    let docker = docker();
    let dir = tempdir();
    let path = write(
        dir.path(),
        "operator/default/spo.json",
        &serde_json::to_vec(&spec_json).expect("json"),
    );
    let path = path.to_str().expect("utf-8 path");
    let probe = probe(dir.path());
    let line = stdout_ok(
        docker_run(&docker, path, Some(&probe), Some("/probe"), &probe_args()),
        "the probe under the SPO spec",
    );
    assert_eq!(line, expected_runtime_line(dir.path()));
}

// ---------------------------------------------------------------------
// 3. kubelet localhost/ profile.

#[test]
fn kubelet_localhost_profile_path_runs_under_docker() {
    let docker = docker();
    let name = schemas::slug::image_slug(IMAGE);
    let rel = format!("kubelet/sandmine/{name}.json");
    assert_eq!(
        file(&format!("kubelet/{}", render::legacy_kubelet_path(IMAGE))),
        file("seccomp.json")
    );
    let bytes = file(&rel);
    assert_eq!(bytes, file("seccomp.json"));
    // The kubelet resolves `localhostProfile: sandmine/<name>.json` under
    // its seccomp root and hands the runtime that file.
    let root = tempdir();
    let seccomp_root = root.path().join("var/lib/kubelet/seccomp");
    let path = write(&seccomp_root, &format!("sandmine/{name}.json"), bytes);
    assert_eq!(
        path.strip_prefix(&seccomp_root).expect("under the root"),
        Path::new(&render::kubelet_path(IMAGE))
    );
    let path = path.to_str().expect("utf-8 path");
    let probe = probe(root.path());
    let wl = stdout_ok(
        docker_run(&docker, path, None, None, &workload_args()),
        "the workload under the kubelet profile",
    );
    assert!(wl.starts_with("ok\nroot:x:0:0:"), "{wl:?}");
    let line = stdout_ok(
        docker_run(&docker, path, Some(&probe), Some("/probe"), &probe_args()),
        "the probe under the kubelet profile",
    );
    assert_eq!(line, expected_runtime_line(root.path()));
}

// ---------------------------------------------------------------------
// 4. systemd drop-in.

fn systemd_verify(sa: &Path, dir: &Path, unit: &str, dropin: &str) -> String {
    let unit_path = write(
        dir,
        unit,
        b"[Unit]\nDescription=sandmine consumers test\n[Service]\nExecStart=/bin/true\n",
    );
    write(dir, &format!("{unit}.d/sandmine.conf"), dropin.as_bytes());
    let out = run(Command::new(sa)
        .args(["verify", "--man=no", "--generators=no"])
        .arg(&unit_path)
        .env("SYSTEMD_LOG_COLOR", "0"));
    assert!(
        out.status.success(),
        "systemd-analyze verify failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn systemd_analyze_accepts_the_dropin_and_knows_every_name() {
    let sa = need("systemd-analyze", "the systemd drop-in");
    let dropin = std::str::from_utf8(file("systemd.conf")).expect("utf-8");
    let dir = tempdir();

    // The drop-in parses without a single complaint (systemd logs every
    // unknown key, architecture, errno or syscall name and ignores it).
    let unit = format!("{}.service", unique("unit"));
    assert_eq!(systemd_verify(&sa, dir.path(), &unit, dropin), "");

    // Control: the same check does see a bad name.
    let unit2 = format!("{}.service", unique("unit"));
    let bad = format!("{dropin}SystemCallFilter=not_a_syscall\n");
    let complaint = systemd_verify(&sa, dir.path(), &unit2, &bad);
    assert!(
        complaint.contains("Failed to parse system call, ignoring: not_a_syscall"),
        "{complaint:?}"
    );

    // The filter is exactly the allowed set, each name in systemd's @known.
    let known: BTreeSet<String> = ok(Command::new(&sa).args(["syscall-filter", "@known"]))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('@'))
        .map(String::from)
        .collect();
    assert!(known.len() > 300, "{}", known.len());
    let names: BTreeSet<String> = dropin
        .lines()
        .filter_map(|l| l.strip_prefix("SystemCallFilter="))
        .flat_map(str::split_whitespace)
        .map(String::from)
        .collect();
    let expected: BTreeSet<String> = EXPECTED_ALLOWED.iter().map(|s| s.to_string()).collect();
    assert_eq!(names, expected);
    let unknown: Vec<&String> = names.difference(&known).collect();
    assert!(unknown.is_empty(), "unknown to systemd: {unknown:?}");
    assert!(
        dropin.contains("\nSystemCallArchitectures=x86-64\n"),
        "{dropin}"
    );
    assert!(
        dropin.contains("\nSystemCallErrorNumber=EPERM\n"),
        "{dropin}"
    );
}

// ---------------------------------------------------------------------
// 5. The compiled classic-BPF program, installed by seccomp(2).

#[test]
fn bpf_program_installed_by_the_kernel_answers_like_the_profile() {
    let docker = docker();
    let dir = tempdir();
    // Static, so that it also runs inside the image's root (chroot below).
    let loader = build_c(
        dir.path(),
        "loader.c",
        &["-static", "-O1", "-Wall", "-Werror"],
        &[],
    );
    let probe = probe(dir.path());
    let bpf = write(dir.path(), "x86_64.bpf", file("bpf/x86_64.bpf"));
    assert_eq!(file("bpf/x86_64.bpf").len() % 8, 0);

    let line = ok(Command::new(&loader)
        .arg(&bpf)
        .arg(&probe)
        .args(probe_args()));
    assert_eq!(line, expected_probe_line());

    // Control: without the filter the probe is not denied.
    let free = ok(Command::new(&probe)
        .args([nr("sched_yield"), nr("clone3"), nr("statx")].map(|n| n.to_string())));
    assert_eq!(free, "24:ok 435:22 332:14\n");

    // The real workload runs under the program, in the image's root
    // (chroot(8) runs first, unfiltered; the loader then installs the
    // program and execs the image's busybox), printing what the container
    // prints.
    let rootfs = export_rootfs(&docker, dir.path());
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).expect("rootfs passwd");
    std::fs::copy(&loader, rootfs.join("loader")).expect("copy the loader");
    std::fs::copy(&bpf, rootfs.join("x86_64.bpf")).expect("copy the program");
    let filtered = ok(
        Command::new(need("chroot", "the workload in the image's root"))
            .arg(&rootfs)
            .args(["/loader", "/x86_64.bpf", "/bin/busybox"])
            .args(WORKLOAD)
            .env("PATH", "/bin:/usr/bin:/sbin:/usr/sbin"),
    );
    assert_eq!(filtered, expected_workload_output(&passwd));
}
