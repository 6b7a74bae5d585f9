//! Starting the mined command.
//!
//! The child joins the run's cgroup, installs an allow-all seccomp filter,
//! and execs the command. The filter denies nothing; it is there so that
//! the kernel program sees the same boundary it sees in a container: calls
//! before the filter are the launcher's (never in a profile), and the
//! command's own `execve` is the first call through the filter, just as it
//! is under `sandmine run`, which installs the real filter at that point.

use crate::{CollectError, Result};
use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A started command.
#[derive(Debug)]
pub struct Launched {
    pub pid: i32,
}

/// Resolve `cmd` like `execvp` would ([`sysutil::path::resolve`]), so a
/// missing command is reported before anything is started.
pub fn resolve(cmd: &OsStr) -> Result<PathBuf> {
    sysutil::path::resolve(cmd).map_err(|e| CollectError::Spawn {
        cmd: cmd.to_string_lossy().into_owned(),
        source: e.io_error(),
    })
}

fn cstring(s: &OsStr) -> Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| CollectError::Spawn {
        cmd: s.to_string_lossy().into_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "argument contains a NUL byte",
        ),
    })
}

/// How to start the mined command.
#[derive(Clone, Copy, Debug, Default)]
pub struct LaunchOptions {
    /// The command's stdout is our stderr (used when our stdout carries
    /// the profile).
    pub stdout_to_stderr: bool,
    /// Give the command a mount namespace of its own. On a host without a
    /// cgroup v2 hierarchy every task shares the root v2 cgroup, so the
    /// kernel program can only tell the command apart by its mount
    /// namespace's id.
    pub new_mount_namespace: bool,
}

/// Fork and exec `argv` inside the cgroup whose `cgroup.procs` is
/// `procs_file`, behind an allow-all seccomp filter.
///
/// The child joins the cgroup (and unshares its mount namespace if asked),
/// then waits while `before_exec(pid)` runs here: that is where the caller
/// learns the child's workload key and starts tracking it. Only then does
/// the child install the filter and exec, so its first tracked call is the
/// command's own `execve`.
pub fn spawn(
    argv: &[OsString],
    procs_file: &Path,
    opts: LaunchOptions,
    before_exec: impl FnOnce(i32) -> Result<()>,
) -> Result<Launched> {
    let first = argv.first().ok_or_else(|| CollectError::Spawn {
        cmd: String::new(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "no command given"),
    })?;
    let exe = cstring(resolve(first)?.as_os_str())?;
    let args: Vec<CString> = argv.iter().map(|a| cstring(a)).collect::<Result<_>>()?;
    let mut arg_ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    arg_ptrs.push(std::ptr::null());
    let procs = cstring(procs_file.as_os_str())?;
    let allow = [libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: libc::SECCOMP_RET_ALLOW,
    }];
    let prog = libc::sock_fprog {
        len: 1,
        filter: allow.as_ptr() as *mut libc::sock_filter,
    };

    // status: child -> parent, "R" when ready, or 3 bytes describing a
    // failure; close-on-exec, so EOF after "R" means the exec succeeded.
    // go: parent -> child, one byte to proceed (EOF: give up).
    let status = Pipe::new()?;
    let go = Pipe::new()?;

    // SAFETY: after fork the child calls only async-signal-safe functions
    // (open, write, read, close, dup2, unshare, prctl, syscall, execve,
    // _exit) on memory prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(CollectError::io("fork", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: see above.
        unsafe {
            libc::close(status.rd);
            libc::close(go.wr);
            let wr = status.wr;
            let fail = |step: u8| -> ! {
                let err = *libc::__errno_location();
                let msg = [step, (err & 0xff) as u8, ((err >> 8) & 0xff) as u8];
                libc::write(wr, msg.as_ptr().cast(), 3);
                libc::_exit(127)
            };
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                fail(1);
            }
            libc::close(fd);
            if opts.new_mount_namespace && libc::unshare(libc::CLONE_NEWNS) != 0 {
                fail(4);
            }
            if opts.stdout_to_stderr {
                libc::dup2(2, 1);
            }
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::write(wr, b"R".as_ptr().cast(), 1);
            let mut b = 0u8;
            if libc::read(go.rd, (&mut b as *mut u8).cast(), 1) != 1 {
                libc::_exit(127);
            }
            libc::close(go.rd);
            // Root may install a filter without no_new_privs; keep setuid
            // binaries working for the mined command when we can.
            if libc::syscall(
                libc::SYS_seccomp,
                1, /* SECCOMP_SET_MODE_FILTER */
                0,
                &prog,
            ) != 0
            {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                if libc::syscall(libc::SYS_seccomp, 1, 0, &prog) != 0 {
                    fail(2);
                }
            }
            extern "C" {
                static environ: *const *const libc::c_char;
            }
            libc::execve(exe.as_ptr(), arg_ptrs.as_ptr(), environ);
            fail(3);
        }
    }
    let status = status.into_read_end();
    let go = go.into_write_end();
    let reap = |pid: i32| {
        let mut st = 0;
        // SAFETY: reaping our own child.
        unsafe { libc::waitpid(pid, &mut st, 0) };
    };
    let mut msg = [0u8; 3];
    let n = read_full(status, &mut msg[..1]);
    if n == 1 && msg[0] == b'R' {
        // Start tracking only once the child sits in its read of the go
        // pipe: that read's entry is then never counted and the calls
        // after it always are, so identical runs give identical counts.
        wait_blocked_in_read(pid);
        if let Err(e) = before_exec(pid) {
            // SAFETY: closing the go pipe makes the child exit.
            unsafe { libc::close(go) };
            reap(pid);
            // SAFETY: closing our read end.
            unsafe { libc::close(status) };
            return Err(e);
        }
        // SAFETY: one byte from a valid buffer, then closing our end.
        unsafe {
            libc::write(go, b"G".as_ptr().cast(), 1);
            libc::close(go);
        }
        let n = read_full(status, &mut msg);
        // SAFETY: closing our read end.
        unsafe { libc::close(status) };
        if n == 0 {
            return Ok(Launched { pid });
        }
    } else {
        // SAFETY: closing our ends.
        unsafe {
            libc::close(go);
        }
        let _ = read_full(status, &mut msg[1..]);
        // SAFETY: closing our read end.
        unsafe { libc::close(status) };
    }
    reap(pid);
    let err = std::io::Error::from_raw_os_error(i32::from(msg[1]) | (i32::from(msg[2]) << 8));
    let step = match msg[0] {
        1 => "joining the cgroup",
        2 => "installing the allow-all seccomp filter",
        4 => "creating a mount namespace",
        _ => "exec",
    };
    Err(CollectError::Spawn {
        cmd: first.to_string_lossy().into_owned(),
        source: std::io::Error::new(err.kind(), format!("{step}: {err}")),
    })
}

/// Read until `buf` is full or EOF; returns the bytes read.
fn read_full(fd: i32, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: reading into the unfilled tail of `buf`.
        let n = unsafe { libc::read(fd, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            break;
        }
        got += n as usize;
    }
    got
}

/// A close-on-exec pipe whose ends are closed by their new owners.
struct Pipe {
    rd: i32,
    wr: i32,
}

impl Pipe {
    fn new() -> Result<Pipe> {
        let mut fds = [0i32; 2];
        // SAFETY: pipe2 writes two fds into the array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(CollectError::io("pipe2", std::io::Error::last_os_error()));
        }
        Ok(Pipe {
            rd: fds[0],
            wr: fds[1],
        })
    }

    /// Keep the read end, close the write end.
    fn into_read_end(self) -> i32 {
        // SAFETY: closing the end we do not keep.
        unsafe { libc::close(self.wr) };
        self.rd
    }

    /// Keep the write end, close the read end.
    fn into_write_end(self) -> i32 {
        // SAFETY: closing the end we do not keep.
        unsafe { libc::close(self.rd) };
        self.wr
    }
}

/// Wait (up to a second) until `pid` is blocked in read(2), as
/// `/proc/PID/syscall` shows it (the syscall number first).
fn wait_blocked_in_read(pid: i32) {
    const READ: &str = if cfg!(target_arch = "aarch64") {
        "63 "
    } else {
        "0 "
    };
    let path = format!("/proc/{pid}/syscall");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while std::time::Instant::now() < deadline {
        match std::fs::read_to_string(&path) {
            Ok(s) if s.starts_with(READ) => return,
            Ok(_) => std::thread::yield_now(),
            Err(_) => return,
        }
    }
}
