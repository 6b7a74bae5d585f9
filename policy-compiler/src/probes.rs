//! Syscalls that libc and runtimes probe: they try the newer call first and
//! fall back to an older one only when the kernel answers `ENOSYS` ("this
//! kernel does not have it"). An `EPERM` answer is taken as a real failure
//! and breaks them: glibc's `pthread_create` falls back from `clone3` to
//! `clone` only on `ENOSYS`, which is why Docker's default profile answers
//! `clone3` with `ENOSYS`. A mined profile therefore answers every probed
//! syscall it does not allow with `ENOSYS` rather than its default `EPERM`.
//!
//! This is the one list; add to it with a one-line reason.

/// A probed syscall and why it is one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    pub name: &'static str,
    pub why: &'static str,
}

pub const PROBED: &[Probe] = &[
    Probe { name: "clone3", why: "glibc >= 2.34 pthread_create/fork/posix_spawn try clone3, fall back to clone on ENOSYS" },
    Probe { name: "faccessat2", why: "glibc >= 2.33 faccessat() with flags tries faccessat2, falls back to emulation on ENOSYS" },
    Probe { name: "fchmodat2", why: "glibc >= 2.39 fchmodat(AT_SYMLINK_NOFOLLOW) tries fchmodat2, falls back on ENOSYS" },
    Probe { name: "statx", why: "Rust std, coreutils and glibc's stat family try statx, fall back to fstatat on ENOSYS" },
    Probe { name: "openat2", why: "runc, crun and systemd try openat2 (RESOLVE_* flags), fall back to openat on ENOSYS" },
    Probe { name: "close_range", why: "glibc closefrom, Python subprocess and runtimes try close_range, fall back to close() loops on ENOSYS" },
    Probe { name: "epoll_pwait2", why: "event loops try epoll_pwait2 for nanosecond timeouts, fall back to epoll_pwait on ENOSYS" },
    Probe { name: "pidfd_open", why: "Go >= 1.23 os/exec, Python and systemd try pidfd_open, fall back to pid-based waiting on ENOSYS" },
    Probe { name: "pidfd_send_signal", why: "Go >= 1.23 and systemd signal through pidfds, fall back to kill() on ENOSYS" },
    Probe { name: "pidfd_getfd", why: "process supervisors probe pidfd_getfd and fall back to SCM_RIGHTS on ENOSYS" },
    Probe { name: "rseq", why: "glibc >= 2.35 registers rseq at thread start and treats ENOSYS as 'not supported'" },
    Probe { name: "io_uring_setup", why: "liburing users (libuv >= 1.45, QEMU, tokio-uring) fall back to epoll/thread pools on ENOSYS" },
    Probe { name: "io_uring_enter", why: "same io_uring fallback as io_uring_setup, for callers that probe it directly" },
    Probe { name: "io_uring_register", why: "same io_uring fallback as io_uring_setup, for callers that probe it directly" },
    Probe { name: "landlock_create_ruleset", why: "sandboxing libraries probe the Landlock ABI; ENOSYS means 'no Landlock', EPERM reads as an error" },
    Probe { name: "futex_waitv", why: "Wine/Proton and newer threading libraries try futex_waitv, fall back to futex on ENOSYS" },
    Probe { name: "cachestat", why: "page-cache tools try cachestat, fall back to mincore on ENOSYS" },
    Probe { name: "mseal", why: "libc and browsers seal mappings where the kernel supports it; ENOSYS means 'unsupported'" },
];

/// True when `name` is in [`PROBED`].
pub fn is_probed(name: &str) -> bool {
    PROBED.iter().any(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn probed_names_are_unique_and_justified() {
        let names: BTreeSet<&str> = PROBED.iter().map(|p| p.name).collect();
        assert_eq!(names.len(), PROBED.len());
        assert!(PROBED.iter().all(|p| !p.why.is_empty()));
        assert!(is_probed("clone3"));
        assert!(!is_probed("clone"));
    }

    #[test]
    fn probed_names_are_known_to_some_abi() {
        // Every entry should name a real syscall; one no table knows is a
        // typo that would never take effect.
        for p in PROBED {
            assert!(schemas::syscalls::is_known(p.name), "{} is unknown", p.name);
        }
    }
}
