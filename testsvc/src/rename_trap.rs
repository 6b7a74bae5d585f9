//! Stop a real child process inside a chosen `rename`, then kill it there:
//! a crash at a known point of a crash-safety protocol, observed rather
//! than slept for.
//!
//! [`RenameTrap::spawn`] installs, between fork and exec, a seccomp filter
//! that hands every `rename`, `renameat` and `renameat2` of the child to
//! this process (`SECCOMP_RET_USER_NOTIF`; the listener comes back over a
//! socket pair). [`RenameTrap::wait_for_rename`] lets each one run
//! (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`) until one renames onto the watched
//! path, and holds that one: the child's thread is stopped inside the
//! call, before the kernel did anything. [`RenameTrap::kill`] then sends
//! SIGKILL: the rename never happens, exactly as if the machine had died
//! at that instruction. x86_64 only (the filter lets other ABIs through).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;

/// A child process whose renames onto one path are trapped.
pub struct RenameTrap {
    child: Child,
    listener: OwnedFd,
    target: PathBuf,
}

/// The trapped call: the child is stopped inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldRename {
    /// The thread that made the call.
    pub tid: u32,
    pub from: PathBuf,
    pub to: PathBuf,
    /// Renames onto other paths let through before this one.
    pub let_through: usize,
}

impl RenameTrap {
    /// Spawns `cmd`, trapping its renames onto `target` (an absolute path,
    /// compared as the child spells it, relative names resolved against
    /// the child's working directory).
    pub fn spawn(cmd: &mut Command, target: &Path) -> io::Result<RenameTrap> {
        let (ours, theirs) = UnixStream::pair()?;
        let filter = filter();
        let theirs_fd = theirs.as_raw_fd();
        // SAFETY: the closure runs in the forked child before exec and
        // only makes raw syscalls on memory prepared before the fork.
        unsafe {
            cmd.pre_exec(move || install_and_send(&filter, theirs_fd));
        }
        let child = cmd.spawn()?;
        drop(theirs);
        let listener = match receive_fd(&ours) {
            Ok(fd) => fd,
            Err(e) => {
                let mut child = child;
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        Ok(RenameTrap {
            child,
            listener,
            target: target.to_path_buf(),
        })
    }

    /// The child's pid.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Lets the child's renames run until one targets the watched path,
    /// and returns with that one held. Fails when the child exits first or
    /// `timeout` passes.
    pub fn wait_for_rename(&mut self, timeout: Duration) -> io::Result<HeldRename> {
        let deadline = Instant::now() + timeout;
        let mut let_through = 0;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "the child exited ({status}) before renaming onto {}",
                    self.target.display()
                )));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no rename onto {} within {timeout:?}",
                        self.target.display()
                    ),
                ));
            }
            if !self.readable(left.min(Duration::from_millis(100)))? {
                continue;
            }
            // SAFETY: an all-zero seccomp_notif is valid (the kernel
            // requires it zeroed).
            let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
            // SAFETY: the listener is a seccomp notification fd and `req`
            // is the struct this ioctl fills.
            let rc = unsafe {
                libc::ioctl(
                    self.listener.as_raw_fd(),
                    libc::SECCOMP_IOCTL_NOTIF_RECV,
                    &mut req,
                )
            };
            if rc < 0 {
                let e = io::Error::last_os_error();
                // ENOENT: the caller was killed before we received it.
                if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::EINTR)) {
                    continue;
                }
                return Err(e);
            }
            let args = req.data.args;
            let (from, to) = match i64::from(req.data.nr) {
                libc::SYS_rename => (args[0], args[1]),
                libc::SYS_renameat | libc::SYS_renameat2 => (args[1], args[3]),
                _ => (0, 0),
            };
            let from = read_path(req.pid, from);
            let to = read_path(req.pid, to);
            // The memory read is only meaningful if the call still waits.
            if !self.still_valid(req.id) {
                continue;
            }
            if let (Ok(from), Ok(to)) = (from, to) {
                if resolve(req.pid, &to) == self.target {
                    return Ok(HeldRename {
                        tid: req.pid,
                        from,
                        to,
                        let_through,
                    });
                }
            }
            self.let_run(req.id)?;
            let_through += 1;
        }
    }

    /// SIGKILL, and the child's exit status (killed by signal 9).
    pub fn kill(mut self) -> io::Result<ExitStatus> {
        self.child.kill()?;
        self.child.wait()
    }

    fn readable(&self, timeout: Duration) -> io::Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            };
        }
        Ok(n > 0 && pfd.revents & libc::POLLIN != 0)
    }

    fn still_valid(&self, id: u64) -> bool {
        let mut id = id;
        // SAFETY: ID_VALID reads one u64.
        unsafe {
            libc::ioctl(
                self.listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
                &mut id,
            ) == 0
        }
    }

    fn let_run(&self, id: u64) -> io::Result<()> {
        let mut resp = libc::seccomp_notif_resp {
            id,
            val: 0,
            error: 0,
            flags: libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
        };
        // SAFETY: the listener is a seccomp notification fd and `resp` is
        // the struct this ioctl reads.
        let rc = unsafe {
            libc::ioctl(
                self.listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SEND,
                &mut resp,
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            // The caller died meanwhile: nothing to let run.
            if e.raw_os_error() != Some(libc::ENOENT) {
                return Err(e);
            }
        }
        Ok(())
    }
}

impl Drop for RenameTrap {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// x86_64 rename, renameat, renameat2 → user notification; all else runs.
fn filter() -> [libc::sock_filter; 8] {
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jeq = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let ld = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    [
        stmt(ld, 4), // seccomp_data.arch
        jeq(AUDIT_ARCH_X86_64, 0, 4),
        stmt(ld, 0), // seccomp_data.nr
        jeq(libc::SYS_rename as u32, 3, 0),
        jeq(libc::SYS_renameat as u32, 2, 0),
        jeq(libc::SYS_renameat2 as u32, 1, 0),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_USER_NOTIF),
    ]
}

/// In the forked child: install the filter with a new listener and send
/// the listener over `sock`. Raw syscalls only (async-signal-safe).
fn install_and_send(filter: &[libc::sock_filter; 8], sock: RawFd) -> io::Result<()> {
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: raw syscalls with valid pointers into this stack frame.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &prog,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = fd as RawFd;
        let mut byte = [0u8; 1];
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        let mut control = [0u64; 4];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as usize;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        if libc::sendmsg(sock, &msg, 0) != 1 {
            return Err(io::Error::last_os_error());
        }
        libc::close(fd);
    }
    Ok(())
}

/// The listener the child sent (it is queued before `spawn` returns).
fn receive_fd(sock: &UnixStream) -> io::Result<OwnedFd> {
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = [0u64; 4];
    // SAFETY: recvmsg into buffers of this frame; the control message is
    // checked before its fd is taken.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        if libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) != 1 {
            return Err(io::Error::other(format!(
                "the child sent no seccomp listener: {}",
                io::Error::last_os_error()
            )));
        }
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null()
            || (*cmsg).cmsg_level != libc::SOL_SOCKET
            || (*cmsg).cmsg_type != libc::SCM_RIGHTS
        {
            return Err(io::Error::other("the child sent no seccomp listener"));
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>());
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// A NUL-terminated path in the memory of thread `tid`.
fn read_path(tid: u32, addr: u64) -> io::Result<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    if addr == 0 {
        return Err(io::Error::other("no path argument"));
    }
    let mem = std::fs::File::open(format!("/proc/{tid}/mem"))?;
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < 4096 {
        // Never read across a page: the next one may be unmapped.
        let mut buf = vec![0u8; (4096 - (at % 4096)) as usize];
        let n = mem.read_at(&mut buf, at)?;
        if n == 0 {
            break;
        }
        if let Some(end) = buf[..n].iter().position(|&b| b == 0) {
            out.extend_from_slice(&buf[..end]);
            return Ok(PathBuf::from(std::ffi::OsString::from_vec(out)));
        }
        out.extend_from_slice(&buf[..n]);
        at += n as u64;
    }
    Err(io::Error::other("path argument not terminated"))
}

/// `path` as the thread `tid` means it (relative to its working directory).
fn resolve(tid: u32, path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    match std::fs::read_link(format!("/proc/{tid}/cwd")) {
        Ok(cwd) => cwd.join(path),
        Err(_) => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shell_mv_is_held_and_killed_before_it_renames() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        std::fs::write(&a, b"1").expect("write");
        std::fs::write(&b, b"2").expect("write");
        // Two renames (the filter is inherited by sh's children): the
        // first runs, the second (sh exec'd into mv: the same pid) is held,
        // then killed.
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(r#"mv "$1" "$1.moved" && exec mv "$2" "$3""#)
            .arg("sh")
            .arg(&a)
            .arg(&b)
            .arg(&c);
        let mut trap = RenameTrap::spawn(&mut cmd, &c).expect("spawn");
        let held = trap
            .wait_for_rename(Duration::from_secs(30))
            .expect("the second mv is trapped");
        assert_eq!(
            (held.from.as_path(), held.to.as_path()),
            (b.as_path(), c.as_path())
        );
        assert_eq!(held.let_through, 1);
        // Held inside the call: nothing renamed yet.
        assert!(b.exists() && !c.exists());
        assert_eq!(held.tid, trap.id());
        let status = trap.kill().expect("kill");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert!(dir.path().join("a.moved").exists());
        assert!(
            b.exists() && !c.exists(),
            "the killed rename never happened"
        );
    }
}
