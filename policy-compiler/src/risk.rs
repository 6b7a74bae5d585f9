//! High-risk syscalls: a catalogue for `sandmine query surface`, where
//! every entry cites the advisory, CVE or documentation behind it, and
//! Docker's default profile's allow list, the yardstick an image's
//! allowed count is read against.
//!
//! The catalogue lists syscalls that a workload rarely needs and that have
//! been the way in for kernel exploits or container escapes. Syscalls every
//! program makes (futex: CVE-2014-3153) are left out: flagging them on
//! every image tells nobody anything.

use std::collections::BTreeSet;
use std::sync::OnceLock;

/// Docker's documentation of its default profile: what it blocks and why.
pub const DOCKER_SECCOMP_DOC: &str = "https://docs.docker.com/engine/security/seccomp/";

/// A high-risk syscall, why, and the sources: CVE ids
/// (https://www.cve.org/CVERecord?id=...), kernel commits or
/// documentation, as URLs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Risk {
    pub name: &'static str,
    pub why: &'static str,
    pub sources: &'static [&'static str],
}

const KEYRING: &str = "the kernel keyring is not namespaced: containers share it with the host";
const IO_URING: &str = "most kernel exploits submitted to Google's kCTF in 2022-23 went \
through io_uring (use-after-frees and out-of-bounds in its buffers and timeouts)";
const MODULES: &str = "loads or unloads code in the kernel (Docker's default profile denies it)";
const KEXEC: &str = "loads a new kernel for later execution (Docker's default profile denies it)";

pub const CATALOGUE: &[Risk] = &[
    Risk {
        name: "ptrace",
        why: "reads and writes other processes' memory; PTRACE_TRACEME credential mishandling gave local root",
        sources: &["CVE-2019-13272"],
    },
    Risk {
        name: "keyctl",
        why: KEYRING,
        sources: &["CVE-2016-0728", DOCKER_SECCOMP_DOC],
    },
    Risk {
        name: "add_key",
        why: KEYRING,
        sources: &[DOCKER_SECCOMP_DOC],
    },
    Risk {
        name: "request_key",
        why: KEYRING,
        sources: &["CVE-2017-17807", DOCKER_SECCOMP_DOC],
    },
    Risk {
        name: "bpf",
        why: "loads programs the in-kernel verifier must prove safe; verifier bugs gave arbitrary kernel read/write",
        sources: &["CVE-2017-16995", "CVE-2021-3490"],
    },
    Risk {
        name: "userfaultfd",
        why: "lets a process stall the kernel on its page faults, the usual way to win a kernel race \
              (Linux 5.11 added a sysctl to keep unprivileged users to user-mode faults)",
        sources: &[
            "https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/commit/?id=d0d4730ac2e404a5b0da9a87ef38c73e51cb1664",
        ],
    },
    Risk {
        name: "io_uring_setup",
        why: IO_URING,
        sources: &["CVE-2021-41073", "CVE-2022-29582", "CVE-2023-2598"],
    },
    Risk {
        name: "io_uring_enter",
        why: IO_URING,
        sources: &["CVE-2021-41073", "CVE-2022-29582"],
    },
    Risk {
        name: "io_uring_register",
        why: IO_URING,
        sources: &["CVE-2023-2598"],
    },
    Risk {
        name: "unshare",
        why: "creates user and mount namespaces, which open root-only kernel code to unprivileged users",
        sources: &["CVE-2022-0185", DOCKER_SECCOMP_DOC],
    },
    Risk {
        name: "fsconfig",
        why: "the new mount API's parameter parsing overflowed the heap (reachable after unshare)",
        sources: &["CVE-2022-0185"],
    },
    Risk {
        name: "mount",
        why: "mounting cgroupfs v1 in a new namespace and writing release_agent escaped containers",
        sources: &["CVE-2022-0492", DOCKER_SECCOMP_DOC],
    },
    Risk {
        name: "perf_event_open",
        why: "a large kernel surface; an unchecked event index gave local root",
        sources: &["CVE-2013-2094", DOCKER_SECCOMP_DOC],
    },
    Risk {
        name: "kexec_load",
        why: KEXEC,
        sources: &[DOCKER_SECCOMP_DOC],
    },
    Risk {
        name: "kexec_file_load",
        why: KEXEC,
        sources: &[DOCKER_SECCOMP_DOC],
    },
    Risk {
        name: "init_module",
        why: MODULES,
        sources: &[DOCKER_SECCOMP_DOC],
    },
    Risk {
        name: "finit_module",
        why: MODULES,
        sources: &[DOCKER_SECCOMP_DOC],
    },
    Risk {
        name: "delete_module",
        why: MODULES,
        sources: &[DOCKER_SECCOMP_DOC],
    },
    Risk {
        name: "open_by_handle_at",
        why: "opens files by handle, bypassing the mount namespace: the 2014 'shocker' container breakout",
        sources: &[DOCKER_SECCOMP_DOC],
    },
];

/// The catalogue entry of `name`.
pub fn get(name: &str) -> Option<&'static Risk> {
    CATALOGUE.iter().find(|r| r.name == name)
}

/// Docker's default profile's x86_64 allow list (292 names; see the
/// header of `docker_default_x86_64.txt` for where it comes from).
pub fn docker_default_x86_64() -> &'static BTreeSet<&'static str> {
    static SET: OnceLock<BTreeSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        include_str!("docker_default_x86_64.txt")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::Abi;

    #[test]
    fn every_entry_is_a_syscall_and_cites_a_source() {
        let mut seen = BTreeSet::new();
        for r in CATALOGUE {
            assert!(seen.insert(r.name), "{} twice", r.name);
            assert!(
                schemas::syscalls::number(Abi::X86_64, r.name).is_some(),
                "{}",
                r.name
            );
            assert!(!r.sources.is_empty(), "{} cites nothing", r.name);
            for s in r.sources {
                let cve = s.strip_prefix("CVE-").is_some_and(|rest| {
                    let (y, n) = rest.split_once('-').unwrap_or(("", ""));
                    y.len() == 4
                        && n.len() >= 4
                        && y.bytes().chain(n.bytes()).all(|b| b.is_ascii_digit())
                });
                assert!(cve || s.starts_with("https://"), "{}: {s}", r.name);
            }
        }
    }

    #[test]
    fn docker_default_has_292_known_names() {
        let d = docker_default_x86_64();
        assert_eq!(d.len(), 292);
        for n in d {
            assert!(schemas::syscalls::number(Abi::X86_64, n).is_some(), "{n}");
        }
        // What moby 20.10 lets through and denies.
        assert!(d.contains("ptrace") && d.contains("io_uring_setup"));
        assert!(!d.contains("keyctl") && !d.contains("bpf") && !d.contains("mount"));
    }
}
