//! Enforcing a profile on this process and exec'ing a command under it.
//! This is the only place sandmine installs a seccomp filter of a profile.
//!
//! The order matters, because once the filter is installed every syscall
//! this process makes is judged by it, and the profile was mined for the
//! command, not for sandmine:
//!
//! 1. [`resolve`] the command and [`Exec::prepare`] everything `execv`
//!    needs (C strings, the argv array, the failure message): all memory is
//!    allocated now, so nothing after the filter calls `malloc` (which may
//!    call `brk` or `mmap`).
//! 2. [`install`]: reset `SIGPIPE`, set `no_new_privs`, install the filter.
//! 3. [`Exec::exec`]: `execv`, and nothing else unless it fails.

use anyhow::{bail, Context, Result};
use policy_compiler::SockFilter;
use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub use sysutil::path::resolve;

/// Which syscalls the failure path of [`Exec::exec`] may make, decided
/// from the profile before the filter is installed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FailurePath {
    /// The filter allows `write`: the error can be printed.
    pub can_write: bool,
    /// The filter allows `exit_group`; else `exit` is used, which ends the
    /// process too since it has one thread.
    pub can_exit_group: bool,
}

/// Everything `execv` needs, built before the filter is installed.
pub struct Exec {
    path: CString,
    /// Keeps the strings `argv` points into alive.
    _args: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    /// "sandmine: error: cannot execute CMD: " (the reason is appended).
    prefix: Vec<u8>,
    failure: FailurePath,
}

impl Exec {
    /// Prepare `execv(path, argv)`. `argv[0]` is the command as given.
    pub fn prepare(path: &Path, argv: &[OsString], failure: FailurePath) -> Result<Exec> {
        let cstr = |s: &OsStr| {
            CString::new(s.as_bytes())
                .with_context(|| format!("argument {:?} contains a NUL byte", s.to_string_lossy()))
        };
        let path_c = cstr(path.as_os_str())?;
        let args = argv.iter().map(|a| cstr(a)).collect::<Result<Vec<_>>>()?;
        if args.is_empty() {
            bail!("no command given");
        }
        let mut ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        let mut prefix = b"sandmine: error: cannot execute ".to_vec();
        prefix.extend_from_slice(argv[0].as_bytes());
        prefix.extend_from_slice(b": ");
        Ok(Exec {
            path: path_c,
            _args: args,
            argv: ptrs,
            prefix,
            failure,
        })
    }

    /// `execv` the command. Never returns: if `execv` fails, print why and
    /// exit 127 (not found) or 126 (any other reason), as a shell does.
    ///
    /// Runs under the filter, so it makes no syscall but `execve`, and on
    /// failure `write` and `exit_group`. The trade-off: those two are the
    /// profile's to allow, not ours. If the profile denies `write`, the
    /// message is skipped rather than attempted (under `--action kill` the
    /// attempt itself would kill the process with SIGSYS, hiding the real
    /// reason); the exit status still says 126/127. If it denies
    /// `exit_group`, `exit` is used (same effect for a single-threaded
    /// process); if that is denied too, the process dies of the denial,
    /// which is the profile's verdict on exiting at all. The message is put
    /// together without allocating and without `strerror` (which may load
    /// locale files).
    pub fn exec(&self) -> ! {
        // SAFETY: `path` and every `argv` entry are NUL-terminated strings
        // owned by `self`, and `argv` ends with a null pointer.
        unsafe { libc::execv(self.path.as_ptr(), self.argv.as_ptr()) };
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        let status = if errno == libc::ENOENT || errno == libc::ENOTDIR {
            127
        } else {
            126
        };
        if self.failure.can_write {
            let mut buf = [0u8; 1024];
            let mut len = 0;
            let mut digits = [0u8; 16];
            for part in [&self.prefix[..], errno_text(errno, &mut digits), b"\n"] {
                let n = part.len().min(buf.len() - len);
                buf[len..len + n].copy_from_slice(&part[..n]);
                len += n;
            }
            // SAFETY: writes `len` initialised bytes of `buf` to stderr.
            unsafe { libc::write(libc::STDERR_FILENO, buf.as_ptr().cast(), len) };
        }
        if self.failure.can_exit_group {
            // SAFETY: ends the process; no Rust state needs unwinding.
            unsafe { libc::_exit(status) }
        }
        loop {
            // SAFETY: `exit` ends the calling thread, the only one.
            unsafe { libc::syscall(libc::SYS_exit, status) };
        }
    }
}

/// A fixed description of `errno` (the ones `execve` returns), else
/// "errno N" written into `digits`.
fn errno_text(errno: i32, digits: &mut [u8; 16]) -> &[u8] {
    let text: &'static [u8] = match errno {
        libc::EPERM => b"Operation not permitted",
        libc::ENOENT => b"No such file or directory",
        libc::EACCES => b"Permission denied",
        libc::ENOEXEC => b"Exec format error",
        libc::E2BIG => b"Argument list too long",
        libc::ENOMEM => b"Cannot allocate memory",
        libc::ETXTBSY => b"Text file busy",
        libc::ELOOP => b"Too many levels of symbolic links",
        libc::ENAMETOOLONG => b"File name too long",
        libc::ENOTDIR => b"Not a directory",
        libc::EISDIR => b"Is a directory",
        libc::EIO => b"Input/output error",
        libc::ENOSYS => b"Function not implemented",
        libc::EMFILE => b"Too many open files",
        libc::EAGAIN => b"Resource temporarily unavailable",
        libc::EINVAL => b"Invalid argument",
        libc::ELIBBAD => b"Accessing a corrupted shared library",
        _ => {
            let prefix = b"errno ";
            digits[..prefix.len()].copy_from_slice(prefix);
            let mut n = errno.unsigned_abs();
            let mut tmp = [0u8; 10];
            let mut i = tmp.len();
            loop {
                i -= 1;
                tmp[i] = b'0' + (n % 10) as u8;
                n /= 10;
                if n == 0 {
                    break;
                }
            }
            let d = &tmp[i..];
            digits[prefix.len()..prefix.len() + d.len()].copy_from_slice(d);
            return &digits[..prefix.len() + d.len()];
        }
    };
    text
}

/// Options of [`install`].
#[derive(Clone, Copy, Debug, Default)]
pub struct InstallOptions {
    /// `SECCOMP_FILTER_FLAG_LOG`: denials (all actions but ALLOW) reach the
    /// audit log.
    pub log_denials: bool,
}

/// Install `filter` on the calling thread: reset `SIGPIPE`, set
/// `no_new_privs`, `seccomp(SECCOMP_SET_MODE_FILTER)`.
///
/// No `SECCOMP_FILTER_FLAG_TSYNC`: sandmine calls this from its only thread
/// right before `execve`, which ends every other thread anyway.
pub fn install(filter: &[SockFilter], opts: InstallOptions) -> Result<()> {
    // Rust's runtime ignores SIGPIPE, and an ignored signal stays ignored
    // across execve: without this, `sandmine run -- yes | head` would spin
    // on EPIPE instead of dying as it does in a shell. rt_sigaction must
    // happen now, before the filter.
    // SAFETY: restores the default disposition; no handler is involved.
    if unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) } == libc::SIG_ERR {
        return Err(std::io::Error::last_os_error()).context("cannot reset SIGPIPE");
    }
    // no_new_privs: required to install a filter without CAP_SYS_ADMIN, and
    // it keeps a setuid program from escaping the filter's intent.
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).context("cannot set no_new_privs");
    }
    let code: Vec<libc::sock_filter> = filter
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let len = u16::try_from(code.len()).context("filter too long")?;
    let prog = libc::sock_fprog {
        len,
        filter: code.as_ptr().cast_mut(),
    };
    let flags: libc::c_ulong = if opts.log_denials {
        libc::SECCOMP_FILTER_FLAG_LOG
    } else {
        0
    };
    // SAFETY: `prog` points to `len` valid instructions that live until the
    // call returns (the kernel copies them).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        let hint = match e.raw_os_error() {
            Some(libc::EINVAL) if opts.log_denials => {
                " (this kernel may not support SECCOMP_FILTER_FLAG_LOG; try without --log-denials)"
            }
            Some(libc::EINVAL) => " (this kernel may not support seccomp filters)",
            _ => "",
        };
        bail!(
            "cannot install the seccomp filter: {}{hint}",
            crate::enforce::os_error_text(&e)
        );
    }
    Ok(())
}

/// An I/O error's text without std's " (os error N)" suffix.
pub fn os_error_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_string(),
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_texts() {
        let mut d = [0u8; 16];
        assert_eq!(errno_text(libc::EACCES, &mut d), b"Permission denied");
        assert_eq!(errno_text(12345, &mut d), b"errno 12345");
        assert_eq!(errno_text(0, &mut d), b"errno 0");
        assert_eq!(errno_text(i32::MAX, &mut d), b"errno 2147483647");
    }

    #[test]
    fn os_error_text_strips_code() {
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(os_error_text(&e), "No such file or directory");
    }
}
