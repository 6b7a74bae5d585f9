//! Shared helpers for the tests that drive the real `sandmine` binary's
//! `mine` and `mine-image`: a temp-dir fixture, runs with a hard timeout,
//! probe programs compiled at test time, and a typed view of a mined
//! profile.

#![allow(dead_code)]

pub mod fleet;
pub mod wire;

use serde_json::Value;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const SANDMINE: &str = env!("CARGO_BIN_EXE_sandmine");

/// The system python, never a shim on PATH: a pyenv shim is a bash script
/// whose own calls (NSS lookups open a socket) would end up in the mined
/// profile. install-deps.sh installs Debian's python3.
pub const PYTHON3: &str = "/usr/bin/python3";

/// Generous limit for a single `sandmine` run; a hang fails the test
/// instead of blocking CI.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// The probe programs, shared with the collector's tests
/// (`tests/probes/*.c`).
pub const GETPPID_LOOP: &str = include_str!("../probes/getppid_loop.c");
pub const INT80: &str = include_str!("../probes/int80.c");
pub const ABI_CALL: &str = include_str!("../probes/abi_call.c");

/// sandmine's long-running roles: `deploy/own-profile/` holds the seccomp
/// profile of each, mined from the tests that run them.
pub const OWN_ROLES: &[&str] = &["collect", "aggregate", "publish", "sync-profiles"];

/// Mine every role a test starts: `SANDMINE_TEST_MINE_ROLES=DIR` runs
/// `sandmine ROLE ...` as `sandmine mine -o DIR/ROLE-PID-N.json
/// --observation DIR/ROLE-PID-N.obs.json -- sandmine ROLE ...`
/// (`deploy/own-profile/build.sh` sets it).
pub const MINE_ROLES_ENV: &str = "SANDMINE_TEST_MINE_ROLES";

/// Confine every role a test starts: `SANDMINE_TEST_ROLE_PROFILES=DIR`
/// runs `sandmine ROLE ...` as `sandmine run --profile DIR/sandmine-ROLE.json --
/// sandmine ROLE ...` (e.g. `DIR=deploy/own-profile`).
pub const ROLE_PROFILES_ENV: &str = "SANDMINE_TEST_ROLE_PROFILES";

/// The marker [`Fixture::spawn`] reads to know a child is a `mine` wrapper.
const WRAPPED_BY_MINE: &str = "SANDMINE_TEST_WRAPPED_BY_MINE";

/// The start of `sandmine ROLE ...` when [`MINE_ROLES_ENV`] or
/// [`ROLE_PROFILES_ENV`] asks to wrap `role` (the caller appends `ROLE
/// ARGS...`); `None` to run it as it is.
pub fn role_wrapper(role: &str) -> Option<Command> {
    if !OWN_ROLES.contains(&role) {
        return None;
    }
    if let Some(dir) = std::env::var_os(MINE_ROLES_ENV) {
        static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let base = Path::new(&dir).join(format!("{role}-{}-{n}", std::process::id()));
        let mut c = Command::new(SANDMINE);
        // --grace: the collector drains its spool for up to 10 s on SIGTERM.
        c.args(["mine", "--backend", "ebpf", "--quiet", "--grace", "60s"])
            .arg("--observation")
            .arg(base.with_extension("obs.json"))
            .arg("-o")
            .arg(base.with_extension("json"))
            .args(["--", SANDMINE])
            .env(WRAPPED_BY_MINE, "1");
        return Some(c);
    }
    let dir = std::env::var_os(ROLE_PROFILES_ENV)?;
    Some(confined(role, Path::new(&dir)))
}

/// `sandmine run --profile DIR/sandmine-ROLE.json -- sandmine` (the caller
/// appends `ROLE ARGS...`).
pub fn confined(role: &str, dir: &Path) -> Command {
    let mut c = Command::new(SANDMINE);
    c.arg("run")
        .arg("--profile")
        .arg(dir.join(format!("sandmine-{role}.json")))
        .args(["--", SANDMINE]);
    c
}

/// The pids of every descendant of `pid` (children first).
fn descendants(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let tasks = std::fs::read_dir(format!("/proc/{p}/task"))
            .into_iter()
            .flatten();
        for t in tasks.flatten() {
            let children = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                out.push(c);
                todo.push(c);
            }
        }
    }
    out
}

/// What a finished run left behind.
#[derive(Debug)]
pub struct Out {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Out {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Status and both streams, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "status {:?} after {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// A process started by [`Fixture::spawn`], its output going to files.
pub struct Running {
    pub child: Child,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    started: Instant,
    /// The child is `sandmine mine` wrapping the process under test
    /// ([`MINE_ROLES_ENV`]).
    mined: bool,
}

impl Running {
    /// SIGKILL, as a crash would: no clean-up runs. Under
    /// [`MINE_ROLES_ENV`] the process under test (and its descendants) is
    /// killed, and the `mine` wrapping it writes what it did up to there.
    pub fn kill9(&mut self) {
        if self.mined {
            for p in descendants(self.pid()) {
                // SAFETY: kill(2) on a descendant of our own child.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait at most `timeout` for a clean exit.
    pub fn terminate(self, timeout: Duration) -> Out {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        self.wait(timeout)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn has_exited(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_some()
    }

    /// Wait at most `timeout`; on timeout kill it and fail the test.
    pub fn wait(mut self, timeout: Duration) -> Out {
        let deadline = self.started + timeout;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "sandmine did not finish within {timeout:?}; stderr so far:\n{}",
                    std::fs::read_to_string(&self.stderr).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let elapsed = self.started.elapsed();
        Out {
            status,
            stdout: std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            stderr: std::fs::read_to_string(&self.stderr).unwrap_or_default(),
            elapsed,
        }
    }
}

/// A temp dir that runs happen in.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    runs: std::cell::Cell<u32>,
    /// Set by [`Fixture::confine_roles`].
    role_profiles: std::cell::RefCell<Option<PathBuf>>,
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().expect("tempdir"),
            runs: std::cell::Cell::new(0),
            role_profiles: std::cell::RefCell::new(None),
        }
    }

    /// From now on, run every role ([`OWN_ROLES`]) this fixture starts
    /// under its own profile in `dir` ([`confined`]).
    pub fn confine_roles(&self, dir: &Path) {
        *self.role_profiles.borrow_mut() = Some(dir.to_path_buf());
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `path(name)` as a `String`, for argument lists.
    pub fn arg(&self, name: &str) -> String {
        self.path(name)
            .to_str()
            .expect("utf-8 temp path")
            .to_string()
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write file");
        p
    }

    /// `sandmine ARGS`, in the temp dir, with core dumps off (this machine's
    /// core_pattern may write into the cwd). A long-running role
    /// ([`OWN_ROLES`]) is wrapped as [`role_wrapper`] says.
    pub fn command(&self, args: &[&str]) -> Command {
        let own = self.role_profiles.borrow().clone();
        let wrapped = args.first().and_then(|role| match &own {
            Some(dir) if OWN_ROLES.contains(role) => Some(confined(role, dir)),
            _ => role_wrapper(role),
        });
        let mut cmd = wrapped.unwrap_or_else(|| Command::new(SANDMINE));
        cmd.args(args).current_dir(self.dir.path());
        no_core_dumps(&mut cmd);
        cmd
    }

    /// Start `cmd` with stdin closed and stdout/stderr going to files.
    pub fn spawn(&self, mut cmd: Command) -> Running {
        let n = self.runs.get();
        self.runs.set(n + 1);
        let stdout = self.path(&format!(".run{n}.stdout"));
        let stderr = self.path(&format!(".run{n}.stderr"));
        let mined = cmd
            .get_envs()
            .any(|(k, v)| k == WRAPPED_BY_MINE && v.is_some());
        cmd.stdin(Stdio::null())
            .stdout(File::create(&stdout).expect("stdout file"))
            .stderr(File::create(&stderr).expect("stderr file"));
        let started = Instant::now();
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        Running {
            child,
            stdout,
            stderr,
            started,
            mined,
        }
    }

    pub fn run_cmd(&self, cmd: Command, timeout: Duration) -> Out {
        self.spawn(cmd).wait(timeout)
    }

    /// `sandmine ARGS` to completion (at most [`RUN_TIMEOUT`]).
    pub fn sandmine(&self, args: &[&str]) -> Out {
        self.run_cmd(self.command(args), RUN_TIMEOUT)
    }

    /// A publisher signing key made by `sandmine signing-key --out` in
    /// the temp dir (once; later calls read it): the `--set` argument
    /// that makes `publish` and `lever` sign with it, and its public key.
    pub fn signing_key(&self) -> (String, String) {
        let path = self.arg("publish.key");
        let o = self.sandmine(&["signing-key", "--out", &path]);
        assert_eq!(o.code(), Some(0), "{}", o.describe());
        (
            format!("publish.signing_key_file=\"{path}\""),
            o.stdout.trim().to_string(),
        )
    }

    /// Compile C `src` into the temp dir; returns the binary's path.
    pub fn probe(&self, name: &str, src: &str) -> PathBuf {
        self.compile(name, src, false)
    }

    /// Like [`Fixture::probe`], statically linked.
    pub fn probe_static(&self, name: &str, src: &str) -> PathBuf {
        self.compile(name, src, true)
    }

    fn compile(&self, name: &str, src: &str, static_: bool) -> PathBuf {
        let c = self.path(&format!("{name}.c"));
        let bin = self.path(name);
        std::fs::write(&c, src).expect("write probe source");
        let mut cc = Command::new("cc");
        cc.arg("-O1");
        if static_ {
            cc.arg("-static");
        }
        let out = cc
            .arg("-o")
            .arg(&bin)
            .arg(&c)
            .output()
            .expect("cc must be installed (scripts/install-deps.sh)");
        assert!(
            out.status.success(),
            "compiling probe {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        bin
    }
}

/// `sandmine ARGS` as uid/gid 65534 with no supplementary groups and no
/// capabilities, from a copy of the binary in the (world-writable) temp
/// dir, so that where the build put it does not matter.
pub fn sandmine_unprivileged(f: &Fixture, args: &[&str]) -> Out {
    sandmine_unprivileged_env(f, args, &[])
}

/// [`sandmine_unprivileged`] with extra environment variables.
pub fn sandmine_unprivileged_env(f: &Fixture, args: &[&str], env: &[(&str, &str)]) -> Out {
    use std::os::unix::fs::PermissionsExt;
    let perm = |p: &Path, mode| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
    perm(f.dir.path(), 0o777).expect("chmod temp dir");
    let bin = f.path("sandmine-copy");
    if !bin.exists() {
        std::fs::copy(SANDMINE, &bin).expect("copy the binary");
        perm(&bin, 0o755).expect("chmod binary");
    }
    let mut cmd = std::process::Command::new(&bin);
    cmd.args(args)
        .envs(env.iter().copied())
        .current_dir(f.dir.path());
    no_core_dumps(&mut cmd);
    // SAFETY: only async-signal-safe calls between fork and exec. Going
    // from uid 0 to 65534 clears every capability set.
    unsafe {
        cmd.pre_exec(|| {
            if libc::geteuid() != 0 {
                return Ok(()); // already unprivileged
            }
            let nobody = 65534;
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setresgid(nobody, nobody, nobody) != 0
                || libc::setresuid(nobody, nobody, nobody) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    f.run_cmd(cmd, RUN_TIMEOUT)
}

pub fn no_core_dumps(cmd: &mut Command) {
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
}

/// Asserts the run failed with exactly one line on stderr, a
/// `sandmine: error: ` line without a repeated cause, and returns it.
pub fn one_error_line(o: &Out) -> String {
    let err = &o.stderr;
    assert!(!o.status.success(), "unexpected success: {}", o.describe());
    assert!(!err.contains("panicked"), "panic: {}", o.describe());
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "expected exactly one line on stderr: {}",
        o.describe()
    );
    let line = lines[0];
    assert!(
        line.starts_with("sandmine: error: "),
        "not a `sandmine: error: ` line: {line:?}"
    );
    // "a: b: b" - the same cause printed twice (Display of an error that
    // embeds its source, then the source again from the chain).
    let parts: Vec<&str> = line.split(": ").collect();
    for w in parts.windows(2) {
        assert_ne!(
            w[0], w[1],
            "a cause is repeated in the error line: {line:?}"
        );
    }
    line.to_string()
}

/// A mined profile, parsed, with the shape checks every profile must pass.
pub struct Profile {
    pub json: Value,
    pub path: PathBuf,
}

fn strings(v: &Value, what: &str) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("{what} is not an array: {v}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("{what} holds a non-string: {s}"))
                .to_string()
        })
        .collect()
}

impl Profile {
    pub fn load(path: &Path) -> Profile {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("profile {} was not written: {e}", path.display()));
        let json: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("profile {} is not JSON: {e}\n{text}", path.display()));
        let p = Profile {
            json,
            path: path.to_path_buf(),
        };
        assert_eq!(
            p.json["syscalls"][0]["action"], "SCMP_ACT_ALLOW",
            "syscalls[0] is not the ALLOW rule"
        );
        let names = strings(&p.json["syscalls"][0]["names"], "syscalls[0].names");
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted, "allow names are not sorted and unique");
        assert!(
            p.json["sandmine"].is_object(),
            "no sandmine metadata object"
        );
        p
    }

    /// Every name some `SCMP_ACT_ALLOW` rule allows, sorted: the name-only
    /// allow list (`syscalls[0]`) and the names of the argument rules
    /// (allowed with some values only).
    pub fn names(&self) -> Vec<String> {
        let mut names = std::collections::BTreeSet::new();
        for r in self.json["syscalls"].as_array().expect("syscalls") {
            if r["action"] == "SCMP_ACT_ALLOW" {
                names.extend(strings(&r["names"], "syscalls[].names"));
            }
        }
        names.into_iter().collect()
    }

    /// The names allowed with argument rules only (issue 11).
    pub fn narrowed(&self) -> Vec<String> {
        let mut names = std::collections::BTreeSet::new();
        for r in self.json["syscalls"].as_array().expect("syscalls") {
            if r["action"] == "SCMP_ACT_ALLOW"
                && r["args"].as_array().is_some_and(|a| !a.is_empty())
            {
                names.extend(strings(&r["names"], "syscalls[].names"));
            }
        }
        names.into_iter().collect()
    }

    pub fn allows(&self, name: &str) -> bool {
        self.names().iter().any(|n| n == name)
    }

    pub fn architectures(&self) -> Vec<String> {
        strings(&self.json["architectures"], "architectures")
    }

    /// A list in the `sandmine` metadata: runtime, image, setup_excluded,
    /// baseline.
    pub fn meta(&self, key: &str) -> Vec<String> {
        strings(&self.json["sandmine"][key], &format!("sandmine.{key}"))
    }

    pub fn per_abi(&self, abi: &str) -> Vec<String> {
        strings(
            &self.json["sandmine"]["per_abi"][abi],
            &format!("sandmine.per_abi.{abi}"),
        )
    }

    /// `sandmine.calls.ABI.NAME`, None when absent.
    pub fn calls(&self, abi: &str, name: &str) -> Option<u64> {
        let v = &self.json["sandmine"]["calls"][abi][name];
        if v.is_null() {
            None
        } else {
            Some(
                v.as_u64()
                    .unwrap_or_else(|| panic!("calls.{abi}.{name}: {v}")),
            )
        }
    }

    /// Asserts each of `want` is allowed and none of `deny` is.
    pub fn assert_allows(&self, want: &[&str], deny: &[&str]) {
        let names = self.names();
        let missing: Vec<&&str> = want
            .iter()
            .filter(|w| !names.iter().any(|n| n == *w))
            .collect();
        let extra: Vec<&&str> = deny
            .iter()
            .filter(|d| names.iter().any(|n| n == *d))
            .collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{}: missing {missing:?}, wrongly allowed {extra:?}; allow list: {names:?}",
            self.path.display()
        );
    }

    /// A copy with `remove` taken out of the allow list, written to `dest`.
    pub fn write_without(&self, remove: &[&str], dest: &Path) -> PathBuf {
        let mut json = self.json.clone();
        let rules = json["syscalls"].as_array_mut().unwrap();
        for r in rules.iter_mut() {
            if r["action"] == "SCMP_ACT_ALLOW" {
                let names = r["names"].as_array_mut().unwrap();
                names.retain(|n| !remove.contains(&n.as_str().unwrap()));
            }
        }
        rules.retain(|r| r["names"].as_array().is_some_and(|n| !n.is_empty()));
        std::fs::write(dest, serde_json::to_string_pretty(&json).unwrap()).unwrap();
        dest.to_path_buf()
    }
}
