//! `sandmine mine` end to end: the real binary mines real programs (eBPF
//! as root, ptrace without privileges), and the profiles it writes are
//! enforced with `sandmine run`. Needs root, cc (with static libc) and
//! python3.

mod common;

use common::{one_error_line, Fixture, Out, Profile, GETPPID_LOOP, INT80, PYTHON3, RUN_TIMEOUT};
use std::path::Path;
use std::time::{Duration, Instant};

const PY_SOCKET_IMPORT: &str = "import socket; print(1)";
const PY_SOCKET_CALL: &str = "import socket; socket.socket()";

/// Mining `python3 -c 'import socket; print(1)'` (never calls socket)
/// with `backend`; returns the profile after the checks both backends
/// share.
fn mine_python(f: &Fixture, backend: &str) -> Profile {
    let out = f.arg("p.json");
    let o = f.sandmine(&[
        "mine",
        "--backend",
        backend,
        "-o",
        &out,
        "--",
        PYTHON3,
        "-c",
        PY_SOCKET_IMPORT,
    ]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    // The workload's stdout is passed through; the profile went to the file.
    assert_eq!(o.stdout, "1\n", "{}", o.describe());
    assert!(!o.stderr.contains("falling back"), "{}", o.describe());
    let p = Profile::load(Path::new(&out));
    p.assert_allows(&["execve", "exit_group", "openat", "read"], &["socket"]);
    assert_eq!(p.meta("runtime"), ["execve"]);
    assert_eq!(p.architectures(), ["SCMP_ARCH_X86_64"]);
    p
}

/// The profile lets the mined program run, and denies what it never did.
fn enforce_python(f: &Fixture, p: &Profile) {
    let profile = p.path.to_str().unwrap();
    let o = f.sandmine(&[
        "run",
        "--profile",
        profile,
        "--",
        PYTHON3,
        "-c",
        PY_SOCKET_IMPORT,
    ]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert_eq!(o.stdout, "1\n", "{}", o.describe());

    let o = f.sandmine(&[
        "run",
        "--profile",
        profile,
        "--",
        PYTHON3,
        "-c",
        PY_SOCKET_CALL,
    ]);
    assert!(
        !o.status.success(),
        "socket() was allowed: {}",
        o.describe()
    );
    assert!(o.code().is_some(), "killed by a signal: {}", o.describe());
    assert!(o.stderr.contains("PermissionError"), "{}", o.describe());
}

#[test]
fn python_profile_allows_what_ran_and_denies_socket() {
    let f = Fixture::new();
    let p = mine_python(&f, "auto");
    // The launcher's allow-all filter install is set-up, not the program's.
    let setup = p.meta("setup_excluded");
    assert!(setup.contains(&"seccomp".to_string()), "{setup:?}");
    assert!(!p.allows("seccomp"), "{:?}", p.names());
    enforce_python(&f, &p);
}

#[test]
fn python_profile_with_the_ptrace_backend() {
    let f = Fixture::new();
    let p = mine_python(&f, "ptrace");
    enforce_python(&f, &p);
}

#[test]
fn concurrent_mines_are_kept_apart() {
    let f = Fixture::new();
    let probe = f.probe("loop", GETPPID_LOOP);
    let probe = probe.to_str().unwrap();
    let (a, b) = (f.arg("a.json"), f.arg("b.json"));
    let mut run_a = f.spawn(f.command(&["mine", "-o", &a, "--", probe, "2000000", "110"]));
    let mut run_b = f.spawn(f.command(&["mine", "-o", &b, "--", probe, "1000000", "111"]));
    // Both were running at once (each takes well over a second).
    let a_done = run_a.has_exited();
    let b_done = run_b.has_exited();
    let oa = run_a.wait(RUN_TIMEOUT);
    let ob = run_b.wait(RUN_TIMEOUT);
    assert_eq!(oa.code(), Some(0), "A: {}", oa.describe());
    assert_eq!(ob.code(), Some(0), "B: {}", ob.describe());
    assert!(
        !a_done && !b_done,
        "the two mines did not overlap (A took {:?}, B {:?})",
        oa.elapsed,
        ob.elapsed
    );

    let pa = Profile::load(Path::new(&a));
    let pb = Profile::load(Path::new(&b));
    pa.assert_allows(&["getppid"], &["getpgrp"]);
    pb.assert_allows(&["getpgrp"], &["getppid"]);
    assert_eq!(pa.calls("x86_64", "getppid"), Some(2_000_000));
    assert_eq!(pa.calls("x86_64", "getpgrp"), None);
    assert_eq!(pb.calls("x86_64", "getpgrp"), Some(1_000_000));
    assert_eq!(pb.calls("x86_64", "getppid"), None);
}

#[test]
fn i386_calls_get_their_own_architecture() {
    let f = Fixture::new();
    let probe = f.probe("int80", INT80);
    let probe = probe.to_str().unwrap();
    let out = f.arg("i.json");
    let o = f.sandmine(&["mine", "-o", &out, "--", probe]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    let p = Profile::load(Path::new(&out));
    assert_eq!(p.architectures(), ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]);
    // The baseline (calls the kernel or a signal can make on any ABI)...
    let baseline = [
        "exit",
        "exit_group",
        "restart_syscall",
        "rt_sigreturn",
        "sigreturn",
    ];
    assert_eq!(p.meta("baseline"), baseline);
    // ...all of which exist on i386, plus the one call the probe made.
    let mut want: Vec<&str> = baseline.to_vec();
    want.push("getpid");
    want.sort();
    assert_eq!(p.per_abi("i386"), want);
    assert_eq!(p.calls("i386", "getpid"), Some(3));
    // The 64-bit side never calls getpid, so removing the name below only
    // takes it from i386.
    assert!(!p.per_abi("x86_64").contains(&"getpid".to_string()));
    assert_eq!(p.calls("x86_64", "getpid"), None);
    assert!(p.allows("getpid"));

    let o = f.sandmine(&["run", "--profile", &out, "--", probe]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());

    let without = p.write_without(&["getpid"], &f.path("no-getpid.json"));
    let o = f.sandmine(&["run", "--profile", without.to_str().unwrap(), "--", probe]);
    // int $0x80 returned -EPERM: the probe exits 1 (not killed, not 0).
    assert_eq!(o.code(), Some(1), "{}", o.describe());
}

#[test]
fn identical_runs_give_byte_identical_profiles() {
    let f = Fixture::new();
    let probe = f.probe_static("loop-static", GETPPID_LOOP);
    let probe = probe.to_str().unwrap();
    let (one, two) = (f.arg("1.json"), f.arg("2.json"));
    for out in [&one, &two] {
        let o = f.sandmine(&["mine", "-o", out, "--", probe, "1000"]);
        assert_eq!(o.code(), Some(0), "{}", o.describe());
    }
    let p = Profile::load(Path::new(&one));
    p.assert_allows(&["getppid", "execve", "exit_group"], &[]);
    assert_eq!(p.calls("x86_64", "getppid"), Some(1000));
    let (a, b) = (std::fs::read(&one).unwrap(), std::fs::read(&two).unwrap());
    assert!(
        a == b,
        "profiles differ:\n{}\n---\n{}",
        String::from_utf8_lossy(&a),
        String::from_utf8_lossy(&b)
    );
}

/// Live processes whose command line is exactly `sleep MARKER`.
fn sleeps_with(marker: &str) -> Vec<i32> {
    let want = format!("sleep\0{marker}\0");
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) {
            if cmdline == want.as_bytes() {
                pids.push(pid);
            }
        }
    }
    pids
}

/// Wait (up to 20 s, for a loaded machine) until `sleep MARKER` is in its
/// sleep syscall: only then has it made every syscall it will make.
fn wait_until_sleeping(marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for pid in sleeps_with(marker) {
            // /proc/PID/syscall starts with the number of the syscall the
            // task is blocked in: 230 clock_nanosleep, 35 nanosleep.
            let sc = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
            if sc.starts_with("230 ") || sc.starts_with("35 ") {
                // The sampling loop reads the maps every 100 ms.
                std::thread::sleep(Duration::from_millis(300));
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "sleep {marker} never reached its sleep syscall"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The checks shared by every way of stopping `sleep MARKER` early.
fn assert_stopped_sleep(o: &Out, out: &str, marker: &str, reason: &str) {
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert!(
        o.elapsed < Duration::from_secs(10),
        "took {:?}: {}",
        o.elapsed,
        o.describe()
    );
    assert!(
        o.stderr.contains("stopped the workload"),
        "{}",
        o.describe()
    );
    assert!(o.stderr.contains(reason), "{}", o.describe());
    let p = Profile::load(Path::new(out));
    assert!(
        p.allows("clock_nanosleep") || p.allows("nanosleep"),
        "no sleep syscall in {:?}",
        p.names()
    );
    p.assert_allows(&["execve"], &[]);
    // The workload itself is gone, not left running.
    let left = sleeps_with(marker);
    assert!(left.is_empty(), "sleep {marker} still running: {left:?}");
}

#[test]
fn duration_stops_a_workload_that_does_not_exit() {
    let f = Fixture::new();
    let out = f.arg("d.json");
    let marker = "100.25";
    let o = f.sandmine(&[
        "mine",
        "--duration",
        "3s",
        "-o",
        &out,
        "--",
        "sleep",
        marker,
    ]);
    assert_stopped_sleep(&o, &out, marker, "--duration 3.0s reached");
}

#[test]
fn until_stable_stops_a_workload_that_does_not_exit() {
    let f = Fixture::new();
    let out = f.arg("u.json");
    let marker = "100.5";
    let o = f.sandmine(&[
        "mine",
        "--until-stable",
        "2s",
        "-o",
        &out,
        "--",
        "sleep",
        marker,
    ]);
    assert_stopped_sleep(&o, &out, marker, "no new syscall for 2.0s");
}

#[test]
fn ctrl_c_still_writes_the_profile() {
    let f = Fixture::new();
    let out = f.arg("c.json");
    let marker = "100.75";
    let run = f.spawn(f.command(&["mine", "-o", &out, "--", "sleep", marker]));
    wait_until_sleeping(marker);
    let sent = Instant::now();
    // SAFETY: kill with a pid we started and still own (not yet reaped).
    let rc = unsafe { libc::kill(run.pid(), libc::SIGINT) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    let o = run.wait(Duration::from_secs(15));
    assert!(
        sent.elapsed() < Duration::from_secs(8),
        "took {:?} after SIGINT",
        sent.elapsed()
    );
    assert_stopped_sleep(&o, &out, marker, "interrupted");
}

#[test]
fn summary_counts_match_the_profile() {
    let f = Fixture::new();
    let probe = f.probe("loop", GETPPID_LOOP);
    let out = f.arg("s.json");
    let o = f.sandmine(&["mine", "-o", &out, "--", probe.to_str().unwrap(), "500"]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    let p = Profile::load(Path::new(&out));
    let n = p.per_abi("x86_64").len();
    assert!(n > 5, "{:?}", p.per_abi("x86_64"));
    let want = format!("syscalls allowed (x86_64 {n})");
    assert!(o.stderr.contains(&want), "no {want:?}: {}", o.describe());
    assert!(o.stderr.contains("wall time"), "{}", o.describe());
    assert!(!o.stderr.contains("error"), "{}", o.describe());
}

#[test]
fn missing_command_is_one_error_line() {
    let f = Fixture::new();
    let out = f.arg("x.json");
    let o = f.sandmine(&["mine", "-o", &out, "--", "/nonexistent/cmd"]);
    let line = one_error_line(&o);
    assert!(line.contains("/nonexistent/cmd"), "{line}");
    assert_eq!(o.code(), Some(2), "{}", o.describe());
    assert!(!Path::new(&out).exists(), "a profile was written");
}

#[test]
fn no_command_is_refused() {
    let f = Fixture::new();
    let o = f.sandmine(&["mine"]);
    assert!(!o.status.success(), "{}", o.describe());
    assert!(o.code().is_some(), "{}", o.describe());
    assert!(!o.stderr.contains("panicked"), "{}", o.describe());
    assert!(o.stderr.contains("CMD"), "{}", o.describe());
}

#[test]
fn bad_duration_is_one_error_line() {
    let f = Fixture::new();
    let o = f.sandmine(&["mine", "--duration", "5x", "--", "true"]);
    let line = one_error_line(&o);
    assert!(line.contains("5x"), "{line}");
    assert_eq!(o.code(), Some(2), "{}", o.describe());
}

#[test]
fn unprivileged_auto_falls_back_to_ptrace() {
    let f = Fixture::new();
    let out = f.arg("t.json");
    let o = common::sandmine_unprivileged(
        &f,
        &["mine", "--backend", "auto", "-o", &out, "--", "/bin/true"],
    );
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    let fallback: Vec<&str> = o
        .stderr
        .lines()
        .filter(|l| l.contains("falling back to the ptrace backend"))
        .collect();
    assert_eq!(fallback.len(), 1, "{}", o.describe());
    assert!(fallback[0].starts_with("sandmine: "), "{}", fallback[0]);
    assert!(!o.stderr.contains("error"), "{}", o.describe());
    let p = Profile::load(Path::new(&out));
    p.assert_allows(&["execve", "exit_group"], &[]);
    assert_eq!(p.meta("runtime"), ["execve"]);
}

#[test]
fn unprivileged_ebpf_is_refused() {
    let f = Fixture::new();
    let out = f.arg("t.json");
    let o = common::sandmine_unprivileged(
        &f,
        &["mine", "--backend", "ebpf", "-o", &out, "--", "/bin/true"],
    );
    let line = one_error_line(&o);
    assert!(line.contains("eBPF capture is unavailable"), "{line}");
    assert_eq!(o.code(), Some(2), "{}", o.describe());
    assert!(!Path::new(&out).exists(), "a profile was written");
}

#[test]
fn profile_on_stdout_is_not_mixed_with_the_commands_output() {
    // Without -o the profile goes to stdout; whatever the mined command
    // prints must not end up inside it.
    let f = Fixture::new();
    let o = f.sandmine(&["mine", "--", "echo", "hello from the workload"]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    let json: serde_json::Value = serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not just the profile ({e}): {}", o.describe()));
    assert_eq!(json["syscalls"][0]["action"], "SCMP_ACT_ALLOW");
}

/// The cgroup v1-only path (the command gets its own mount namespace,
/// grouped in a v1 cgroup), forced on this hybrid host: the same exact
/// profile as with cgroup v2.
#[test]
fn python_profile_on_the_cgroup_v1_path() {
    let f = Fixture::new();
    let out = f.arg("v1.json");
    let mut cmd = f.command(&["mine", "-o", &out, "--", PYTHON3, "-c", PY_SOCKET_IMPORT]);
    cmd.env("SANDMINE_CGROUP", "v1");
    let o = f.run_cmd(cmd, RUN_TIMEOUT);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert_eq!(o.stdout, "1\n", "{}", o.describe());
    let p = Profile::load(Path::new(&out));
    p.assert_allows(
        &["execve", "exit_group", "openat", "read"],
        &["socket", "unshare"],
    );
    assert_eq!(p.meta("runtime"), ["execve"]);
    enforce_python(&f, &p);
}

/// clone3 is denied by default (its namespace flags cannot be filtered),
/// with ENOSYS, and clone is allowed in its place: a threaded program mined
/// while glibc used clone3 still starts its threads under the profile.
#[test]
fn threads_work_with_clone3_denied() {
    let f = Fixture::new();
    let out = f.arg("t.json");
    let script =
        "import threading; t = threading.Thread(target=print, args=(7,)); t.start(); t.join()";
    let o = f.sandmine(&["mine", "-o", &out, "--", PYTHON3, "-c", script]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    let p = Profile::load(Path::new(&out));
    p.assert_allows(&["clone"], &["clone3"]);
    assert_eq!(p.meta("fallback"), ["clone"]);
    assert!(
        p.calls("x86_64", "clone3").is_some_and(|n| n > 0),
        "glibc 2.36 should have used clone3"
    );
    let mut run = f.command(&["run", "--profile", &out, "--", PYTHON3, "-c", script]);
    run.env_remove("PYTHONWARNINGS");
    let o = f.run_cmd(run, RUN_TIMEOUT);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert_eq!(o.stdout, "7\n", "{}", o.describe());
}
