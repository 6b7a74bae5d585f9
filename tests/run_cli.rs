//! `sandmine run` end to end: the real binary installs real filters.

mod common;

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SANDMINE: &str = env!("CARGO_BIN_EXE_sandmine");

/// What `/bin/true`, `/bin/false`, `cat` and `python3 -c 'import socket'`
/// need on x86_64 (found with `strace -f -c`), padded to a generous set of
/// common syscalls. Deliberately NOT `socket`.
#[rustfmt::skip]
const COMMON: &[&str] = &[
    "access", "arch_prctl", "brk", "clock_gettime", "clock_nanosleep", "clone", "close",
    "dup", "dup2", "dup3", "epoll_create1", "epoll_ctl", "epoll_wait", "execve", "exit",
    "exit_group", "faccessat", "faccessat2", "fadvise64", "fcntl", "fstat", "futex",
    "getcwd", "getdents64", "getegid", "geteuid", "getgid", "getpeername", "getpid",
    "getppid", "getrandom", "getsockname", "gettid", "getuid", "ioctl", "kill", "lseek",
    "lstat", "madvise", "mmap", "mprotect", "mremap", "munmap", "nanosleep", "newfstatat",
    "open", "openat", "pipe", "pipe2", "poll", "pread64", "prlimit64", "pwrite64", "read",
    "readlink", "readlinkat", "readv", "rseq", "rt_sigaction", "rt_sigprocmask",
    "rt_sigreturn", "sched_getaffinity", "sched_yield", "select", "set_robust_list",
    "set_tid_address", "sigaltstack", "stat", "statx", "sysinfo", "tgkill", "uname",
    "wait4", "write", "writev",
];

fn profile_json(allow: &[&str], extra_rules: &str) -> String {
    oci_json(
        r#""SCMP_ACT_ERRNO", "defaultErrnoRet": 1"#,
        &["SCMP_ARCH_X86_64"],
        allow,
        "SCMP_ACT_ALLOW",
        extra_rules,
    )
}

/// A profile: `default` is the JSON after `"defaultAction": `, `names`
/// get `action`, then `extra_rules` (each starting with a comma).
fn oci_json(
    default: &str,
    arches: &[&str],
    names: &[&str],
    action: &str,
    extra_rules: &str,
) -> String {
    let quoted = |v: &[&str]| {
        v.iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        r#"{{
  "defaultAction": {default},
  "architectures": [{}],
  "syscalls": [
    {{"names": [{}], "action": "{action}"}}{extra_rules}
  ]
}}"#,
        quoted(arches),
        quoted(names)
    )
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write profile");
        p
    }

    fn common_profile(&self) -> PathBuf {
        self.write("p.json", &profile_json(COMMON, ""))
    }

    /// Run `sandmine ARGS` in the temp dir, with core dumps off (SIGSYS
    /// dumps core, and this machine's core_pattern writes into the cwd).
    fn sandmine(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(SANDMINE);
        cmd.args(args).current_dir(self.dir.path());
        // SAFETY: setrlimit is async-signal-safe; nothing else runs here.
        unsafe {
            cmd.pre_exec(|| {
                let zero = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                if libc::setrlimit(libc::RLIMIT_CORE, &zero) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.output().expect("run sandmine")
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The system python, never a shim on PATH (a pyenv shim is a bash script
/// that needs far more syscalls). Missing is a test failure: install-deps.sh
/// installs Debian's python3.
fn python3() -> PathBuf {
    let system = Path::new("/usr/bin/python3");
    assert!(
        system.exists(),
        "/usr/bin/python3 is missing: run scripts/install-deps.sh"
    );
    system.to_path_buf()
}

/// Asserts the run failed with exactly one error line, and returns it.
fn one_error_line(o: &Output) -> String {
    let err = stderr(o);
    assert!(!o.status.success(), "unexpected success; stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {err}");
    assert!(lines[0].starts_with("sandmine: error: "), "{err}");
    lines[0].to_string()
}

#[test]
fn true_runs_under_the_profile() {
    let f = Fixture::new();
    let p = f.common_profile();
    let o = f.sandmine(&["run", "--profile", p.to_str().unwrap(), "--", "/bin/true"]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
    // Found on PATH, and the exit status is passed through.
    let o = f.sandmine(&["run", "--profile", p.to_str().unwrap(), "--", "false"]);
    assert_eq!(o.status.code(), Some(1), "stderr: {}", stderr(&o));
    // With --log-denials (SECCOMP_FILTER_FLAG_LOG) and the other actions.
    for extra in [
        &["--log-denials"][..],
        &["--action", "kill"],
        &["--action", "log"],
    ] {
        let mut args = vec!["run", "--profile", p.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "/bin/true"]);
        let o = f.sandmine(&args);
        assert_eq!(o.status.code(), Some(0), "{extra:?}: {}", stderr(&o));
    }
}

#[test]
fn python_socket_is_denied_with_eperm() {
    let py = python3();
    let f = Fixture::new();
    let p = f.common_profile();
    let py = py.to_str().unwrap();
    // Without the socket call, python starts and exits cleanly: the profile
    // is sufficient, so the failure below is the socket call's.
    let o = f.sandmine(&[
        "run",
        "--profile",
        p.to_str().unwrap(),
        "--",
        py,
        "-c",
        "import socket",
    ]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));

    let code = "import socket; socket.socket()";
    let o = f.sandmine(&[
        "run",
        "--profile",
        p.to_str().unwrap(),
        "--",
        py,
        "-c",
        code,
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(
        err.contains("PermissionError") || err.contains("Operation not permitted"),
        "stderr: {err}"
    );
}

#[test]
fn python_socket_is_killed_with_action_kill() {
    let py = python3();
    let f = Fixture::new();
    let p = f.common_profile();
    let code = "import socket; socket.socket()";
    let args = [
        "run",
        "--profile",
        p.to_str().unwrap(),
        "--action",
        "kill",
        "--",
        py.to_str().unwrap(),
        "-c",
        code,
    ];
    let o = f.sandmine(&args);
    assert_eq!(
        o.status.signal(),
        Some(libc::SIGSYS),
        "status {:?}, stderr: {}",
        o.status,
        stderr(&o)
    );
    assert_eq!(o.status.signal(), Some(31));
}

#[test]
fn rule_actions_reach_the_kernel() {
    let py = python3();
    let f = Fixture::new();
    // socket answered with ENOSYS, as a probed syscall would be.
    let rule = r#",
    {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}"#;
    let p = f.write("enosys.json", &profile_json(COMMON, rule));
    let code = "import socket\ntry:\n socket.socket()\nexcept OSError as e:\n print(e.errno)";
    let o = f.sandmine(&[
        "run",
        "--profile",
        p.to_str().unwrap(),
        "--action",
        "kill",
        "--",
        py.to_str().unwrap(),
        "-c",
        code,
    ]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "38");
}

#[test]
fn sigpipe_is_not_left_ignored() {
    // Rust ignores SIGPIPE, and ignored signals survive execve; `run` must
    // restore the default. SigIgn bit 12 is SIGPIPE (signal 13).
    let f = Fixture::new();
    let p = f.common_profile();
    let o = f.sandmine(&[
        "run",
        "--profile",
        p.to_str().unwrap(),
        "--",
        "cat",
        "/proc/self/status",
    ]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out
        .lines()
        .find(|l| l.starts_with("SigIgn:"))
        .expect("SigIgn line");
    let mask = u64::from_str_radix(line["SigIgn:".len()..].trim(), 16).expect("hex mask");
    assert_eq!(mask & (1 << 12), 0, "SIGPIPE ignored: {line}");
    let seccomp = out
        .lines()
        .find(|l| l.starts_with("Seccomp:"))
        .expect("Seccomp line");
    assert!(seccomp.ends_with('2'), "not in filter mode: {seccomp}");
    let nnp = out
        .lines()
        .find(|l| l.starts_with("NoNewPrivs:"))
        .expect("NoNewPrivs line");
    assert!(nnp.ends_with('1'), "{nnp}");
}

#[test]
fn missing_profile_file() {
    let f = Fixture::new();
    let o = f.sandmine(&["run", "--profile", "nope.json", "--", "/bin/true"]);
    let line = one_error_line(&o);
    assert_eq!(
        line,
        "sandmine: error: cannot read profile nope.json: No such file or directory"
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn malformed_json() {
    let f = Fixture::new();
    let p = f.write(
        "bad.json",
        "{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": [\n",
    );
    let o = f.sandmine(&["run", "--profile", p.to_str().unwrap(), "--", "/bin/true"]);
    let line = one_error_line(&o);
    assert!(line.contains("invalid profile"), "{line}");
    assert!(line.contains("line 4"), "{line}");
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn unknown_syscall_name_is_ignored_with_a_warning() {
    // runc ignores names libseccomp cannot resolve (Docker's own default
    // profile names `recv` and `send`); so does `sandmine run`, and says so.
    let f = Fixture::new();
    let mut names = COMMON.to_vec();
    names.extend(["not_a_syscall", "recv"]);
    let p = f.write("unknown.json", &profile_json(&names, ""));
    let o = f.sandmine(&["run", "--profile", p.to_str().unwrap(), "--", "/bin/true"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        format!(
            "sandmine: warning: profile {} names syscalls no architecture has, ignored as runc ignores them: not_a_syscall, recv\n",
            p.display()
        )
    );
}

#[test]
fn invalid_argument_rule_is_one_error_line() {
    let f = Fixture::new();
    let rule = r#",
    {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQUALS"}]}"#;
    let p = f.write("args.json", &profile_json(COMMON, rule));
    let o = f.sandmine(&["run", "--profile", p.to_str().unwrap(), "--", "/bin/true"]);
    let line = one_error_line(&o);
    assert!(
        line.ends_with("syscalls rule 2 (personality): unknown comparison operator \"SCMP_CMP_EQUALS\" (expected one of SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_GT, SCMP_CMP_MASKED_EQ)"),
        "{line}"
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn command_not_found() {
    let f = Fixture::new();
    let p = f.common_profile();
    let o = f.sandmine(&[
        "run",
        "--profile",
        p.to_str().unwrap(),
        "--",
        "no-such-command-xyz",
    ]);
    let line = one_error_line(&o);
    assert_eq!(
        line,
        "sandmine: error: command not found: no-such-command-xyz"
    );
    assert_eq!(o.status.code(), Some(127));

    let o = f.sandmine(&[
        "run",
        "--profile",
        p.to_str().unwrap(),
        "--",
        "/no/such/cmd",
    ]);
    assert_eq!(
        one_error_line(&o),
        "sandmine: error: /no/such/cmd: No such file or directory"
    );
    assert_eq!(o.status.code(), Some(127));

    // A file without execute permission (mode 0644: not even root may).
    let plain = f.write("plain.txt", "not a program\n");
    let o = f.sandmine(&[
        "run",
        "--profile",
        p.to_str().unwrap(),
        "--",
        plain.to_str().unwrap(),
    ]);
    assert!(one_error_line(&o).contains("Permission denied"));
    assert_eq!(o.status.code(), Some(126));
}

#[test]
fn profile_without_execve_is_refused_before_the_filter() {
    let f = Fixture::new();
    let allow: Vec<&str> = COMMON.iter().copied().filter(|n| *n != "execve").collect();
    let p = f.write("noexec.json", &profile_json(&allow, ""));
    let o = f.sandmine(&["run", "--profile", p.to_str().unwrap(), "--", "/bin/true"]);
    let line = one_error_line(&o);
    assert!(line.contains("does not allow execve"), "{line}");
    assert_eq!(o.status.code(), Some(2));
    // In complain mode execve is let through (and logged).
    let o = f.sandmine(&[
        "run",
        "--profile",
        p.to_str().unwrap(),
        "--action",
        "log",
        "--",
        "/bin/true",
    ]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
}

#[test]
fn exec_failure_under_the_filter_is_reported() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    let p = f.common_profile();
    // Executable, so it passes the checks before the filter, but execve
    // fails under it: the interpreter does not exist (ENOENT), or the
    // content is no executable format (ENOEXEC).
    let script = f.write("script", "#!/no/such/interpreter\n");
    let junk = f.write("junk", "\x01\x02\x03 not an ELF\n");
    for x in [&script, &junk] {
        std::fs::set_permissions(x, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let o = f.sandmine(&[
        "run",
        "--profile",
        p.to_str().unwrap(),
        "--",
        script.to_str().unwrap(),
    ]);
    assert_eq!(
        one_error_line(&o),
        format!(
            "sandmine: error: cannot execute {}: No such file or directory",
            script.display()
        )
    );
    assert_eq!(o.status.code(), Some(127));
    let o = f.sandmine(&[
        "run",
        "--profile",
        p.to_str().unwrap(),
        "--",
        junk.to_str().unwrap(),
    ]);
    assert!(
        one_error_line(&o).ends_with(": Exec format error"),
        "{}",
        stderr(&o)
    );
    assert_eq!(o.status.code(), Some(126));

    // A profile that denies write: under --action kill, writing the message
    // would die of SIGSYS and hide the reason; sandmine skips it and the
    // exit status still tells.
    let allow: Vec<&str> = COMMON.iter().copied().filter(|n| *n != "write").collect();
    let p = f.write("nowrite.json", &profile_json(&allow, ""));
    let o = f.sandmine(&[
        "run",
        "--profile",
        p.to_str().unwrap(),
        "--action",
        "kill",
        "--",
        script.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(127), "status {:?}", o.status);
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
}

// --- Calls of ABIs a profile does not list. ---------------------------------
//
// Each call is made by tests/probes/abi_call.c under `sandmine run`, so the
// kernel itself judges it. Three outcomes are told apart: the filter kills
// the process (SIGSYS, nothing printed), the filter answers with an errno
// (EPERM), or the filter lets the call through and the kernel answers
// (a pid, 0, or ENOSYS for an x32 call: x32 is compiled out of this kernel,
// but seccomp judges `nr | 0x40000000` before dispatch).

/// How one probe call ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Killed by SIGSYS before it could print.
    Killed,
    /// Failed with this errno.
    Errno(i64),
    /// Returned 0 or more (a pid, or ptrace's 0).
    Ran,
}

use Outcome::{Errno, Killed, Ran};

const EPERM: i64 = 1;
const ENOSYS: i64 = 38;

struct AbiProbe {
    f: Fixture,
    probe: PathBuf,
    /// Owns the probe's directory.
    _build: common::Fixture,
}

impl AbiProbe {
    fn new() -> AbiProbe {
        let build = common::Fixture::new();
        let probe = build.probe("abi_call", common::ABI_CALL);
        AbiProbe {
            f: Fixture::new(),
            probe,
            _build: build,
        }
    }

    /// Run `abi_call ABI NR A1` under `profile` (with `extra` options).
    fn call(&self, profile: &Path, extra: &[&str], abi: &str, nr: &str, a1: &str) -> Outcome {
        let mut args = vec!["run", "--profile", profile.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", self.probe.to_str().unwrap(), abi, nr, a1]);
        let o = self.f.sandmine(&args);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        match (o.status.code(), o.status.signal()) {
            (None, Some(libc::SIGSYS)) if out.is_empty() => Killed,
            (Some(0), None) => {
                let ret: i64 = out
                    .trim()
                    .strip_prefix("ret=")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("probe printed {out:?}"));
                if ret < 0 {
                    Errno(-ret)
                } else {
                    Ran
                }
            }
            _ => panic!(
                "{abi} {nr}: status {:?}, stdout {out:?}, stderr {}",
                o.status,
                stderr(&o)
            ),
        }
    }

    /// [`ABI_CALLS`] under `profile`, with `extra` options.
    fn outcomes(&self, profile: &Path, extra: &[&str]) -> Vec<Outcome> {
        ABI_CALLS
            .iter()
            .map(|(abi, nr, a1)| self.call(profile, extra, abi, nr, a1))
            .collect()
    }

    /// A profile (`default` is the JSON after `"defaultAction": `, one
    /// rule gives `names` the `action`), written twice: listing only
    /// x86_64, and listing all three x86 ABIs.
    fn profiles(&self, default: &str, names: &[&str], action: &str) -> (PathBuf, PathBuf) {
        let write = |file: &str, arches: &[&str]| {
            self.f
                .write(file, &oci_json(default, arches, names, action, ""))
        };
        (
            write("only-x86_64.json", &["SCMP_ARCH_X86_64"]),
            write(
                "all-x86.json",
                &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            ),
        )
    }
}

/// The calls each profile is tried with: (ABI, number, first argument).
/// i386: getpid 20, ptrace 26; x32: getpid 39, ptrace 521 (without the x32
/// bit, which the probe sets); x86_64: ptrace 101. ptrace's argument 0 is
/// PTRACE_TRACEME.
const ABI_CALLS: [(&str, &str, &str); 5] = [
    ("int80", "20", ""),
    ("int80", "26", "0"),
    ("x32", "39", ""),
    ("x32", "521", "0"),
    ("x86_64", "101", "0"),
];

/// Listing only x86_64: the i386 and x32 calls kill, the x86_64 ptrace
/// gets the profile's EPERM. Listing all three: each ABI's own rules,
/// and the kernel's ENOSYS for the x32 getpid the filter let through.
fn assert_unlisted_abis_are_killed(default: &str, names: &[&str], action: &str) {
    let t = AbiProbe::new();
    let (only, all) = t.profiles(default, names, action);
    assert_eq!(
        t.outcomes(&only, &[]),
        [Killed, Killed, Killed, Killed, Errno(EPERM)],
        "only x86_64 listed"
    );
    assert_eq!(
        t.outcomes(&all, &[]),
        [Ran, Errno(EPERM), Errno(ENOSYS), Errno(EPERM), Errno(EPERM)],
        "x86_64, i386 and x32 listed"
    );
    // Complain mode logs what the listed ABIs deny by default; it does
    // not open the unlisted ones.
    let logged = if default.contains("SCMP_ACT_ERRNO") {
        Ran
    } else {
        Errno(EPERM)
    };
    assert_eq!(
        t.outcomes(&only, &["--action", "log"]),
        [Killed, Killed, Killed, Killed, logged],
        "only x86_64 listed, --action log"
    );
}

#[test]
fn allowlist_kills_unlisted_abis() {
    // getpid is in COMMON; ptrace is not.
    assert_unlisted_abis_are_killed(
        r#""SCMP_ACT_ERRNO", "defaultErrnoRet": 1"#,
        COMMON,
        "SCMP_ACT_ALLOW",
    );
}

#[test]
fn blocklist_kills_unlisted_abis() {
    // The issue's case: allow by default, deny ptrace.
    assert_unlisted_abis_are_killed(r#""SCMP_ACT_ALLOW""#, &["ptrace"], "SCMP_ACT_ERRNO");
}

#[test]
fn log_profile_kills_unlisted_abis() {
    // Allow and log everything, but answer ptrace with EPERM.
    assert_unlisted_abis_are_killed(r#""SCMP_ACT_LOG""#, &["ptrace"], "SCMP_ACT_ERRNO");
}
