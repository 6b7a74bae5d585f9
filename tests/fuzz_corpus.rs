//! CI's replay of the fuzzing campaigns (fuzz/README.md): every committed
//! corpus input and every reproducer of a finding goes through the same
//! harness the fuzz targets run (`fuzz/src/harness.rs`, compiled in here
//! as it is), which panics on a broken invariant. No fuzz tooling needed.
//!
//! `fuzz/corpus/<target>/`: the campaigns' minimised corpora.
//! `fuzz/regressions/<target>/`: each finding's reproducer, kept for good.
//! `fuzz/seeds/<target>/`: hand-made seeds (the wire target's v5 and v6
//! golden fixtures, whole and as header and body for the harness to sign),
//! which a minimisation could drop from the corpus.
//! The config target's replay is a unit test of the binary
//! (`src/config.rs`), which owns the loader.

#[path = "../fuzz/src/harness.rs"]
mod harness;

use std::path::Path;

/// Runs every file of the target's corpus and reproducers through `check`;
/// returns how many there were.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for dir in ["seeds", "corpus", "regressions"] {
        let dir = root.join(dir).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = entries
            .map(|e| e.expect("readable directory entry").path())
            .collect();
        files.sort();
        for f in files {
            let data = std::fs::read(&f).expect("readable corpus file");
            if let Err(e) = std::panic::catch_unwind(|| check(&data)) {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!("{}: {msg}", f.display());
            }
            n += 1;
        }
    }
    n
}

/// The committed corpus is the campaigns' output, so it is never small:
/// a replay of a handful of files means the corpus went missing.
fn replays_at_least(target: &str, check: fn(&[u8]), min: usize) {
    let n = replay(target, check);
    assert!(
        n >= min,
        "{target}: {n} inputs replayed, expected at least {min}"
    );
}

#[test]
fn wire_decoder() {
    replays_at_least("wire", harness::wire, 40);
}

#[test]
fn docker_http_parser_and_demux() {
    replays_at_least("docker_http", harness::docker_http, 40);
}

#[test]
fn cgroup_path_parser() {
    replays_at_least("cgroup_path", harness::cgroup_path, 40);
}

#[test]
fn policy_toml() {
    replays_at_least("policy_toml", harness::policy_toml, 40);
}

#[test]
fn oci_profile_and_filter_compiler() {
    replays_at_least("profile", harness::profile, 40);
    // The second oracle ran: libseccomp made and judged programs.
    let programs = harness::LIBSECCOMP_PROGRAMS.load(std::sync::atomic::Ordering::Relaxed);
    assert!(programs >= 50, "{programs} libseccomp programs compared");
}

/// Verdicts checked against the real kernel with the filter installed:
/// each profile of the corpus, resolved and compiled for this x86 host
/// ([`harness::x86_program_and_calls`]), is installed in a forked child,
/// which makes random x86_64 and x32 calls (numbers and arguments biased
/// to the profile's) with the `syscall` instruction; what the kernel did
/// must be what the evaluator said. Nothing runs: a second filter,
/// installed first, answers `SECCOMP_RET_TRACE` to every call but
/// `seccomp()`, and with no tracer the kernel then fails the call with
/// ENOSYS. So ALLOW and LOG are seen as ENOSYS, ERRNO(e) as -e (the more
/// restrictive action wins), KILL and TRAP as death by SIGSYS, after which
/// a new child goes on with the next call. i386 calls (`int 0x80`) are not
/// made here.
#[cfg(target_arch = "x86_64")]
mod kernel {
    use super::harness;
    use policy_compiler::bpf::SeccompData;
    use policy_compiler::filter::{
        SockFilter, SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, SECCOMP_RET_LOG,
    };
    use std::path::Path;

    const SECCOMP_RET_TRACE: u32 = 0x7ff0_0000;
    const SECCOMP_NR: u32 = 317;
    /// Calls not made: `seccomp()` (the backstop lets it run), and
    /// x86_64's `uretprobe` (335) and `uprobe` (336), which this kernel
    /// (6.18) runs without asking any filter, so no profile can deny them
    /// (found by this test: 336 returned ENXIO where the filter said
    /// ENOSYS; see docs/SECURITY.md, "Fuzzing").
    const UNFILTERED: [u32; 3] = [SECCOMP_NR, 335, 336];
    const ENOSYS: i64 = 38;
    /// Calls per profile, and kills after which a profile is left.
    const CALLS: usize = 6000;
    const MAX_KILLS: usize = 100;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Seen {
        Returned(i64),
        SigSys,
    }

    /// What the kernel does with a call the stack (this filter's verdict
    /// `ret`, then the TRACE backstop) judges.
    fn expected(ret: u32) -> Seen {
        match ret & 0xffff_0000 {
            SECCOMP_RET_ALLOW | SECCOMP_RET_LOG => Seen::Returned(-ENOSYS),
            SECCOMP_RET_ERRNO => Seen::Returned(-i64::from((ret & 0xffff).min(4095))),
            _ => Seen::SigSys,
        }
    }

    /// `ld [4]; jeq x86_64; ld [0]; jeq seccomp: allow; else trace`.
    fn backstop() -> Vec<SockFilter> {
        let i = |code, jt, jf, k| SockFilter { code, jt, jf, k };
        vec![
            i(0x20, 0, 0, 4),
            i(0x15, 0, 3, schemas::abi::AUDIT_ARCH_X86_64),
            i(0x20, 0, 0, 0),
            i(0x15, 0, 1, SECCOMP_NR),
            i(0x06, 0, 0, SECCOMP_RET_ALLOW),
            i(0x06, 0, 0, SECCOMP_RET_TRACE),
        ]
    }

    /// # Safety
    /// Any number and arguments: only ever called under the backstop,
    /// which lets no call but `seccomp()` run, and never with that number.
    unsafe fn raw_syscall(nr: u32, a: [u64; 6]) -> i64 {
        let ret: i64;
        std::arch::asm!(
            "syscall",
            inlateout("rax") u64::from(nr) => ret,
            in("rdi") a[0], in("rsi") a[1], in("rdx") a[2],
            in("r10") a[3], in("r8") a[4], in("r9") a[5],
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        );
        ret
    }

    fn install(prog: &[SockFilter]) -> i64 {
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: seccomp(SECCOMP_SET_MODE_FILTER) reads the program
        // through a pointer that is valid for the call.
        unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &fprog as *const libc::sock_fprog,
            )
        }
    }

    /// Runs `calls[from..]` in a child under `prog`; returns how many
    /// returned (their values in `out`) and how the child ended.
    fn run_child(
        prog: &[SockFilter],
        calls: &[SeccompData],
        from: usize,
        out: &mut [i64],
    ) -> (usize, libc::c_int) {
        let back = backstop();
        // Shared with the child: [done, install status, results...].
        let words = calls.len() + 2;
        // SAFETY: an anonymous shared mapping, unmapped below; the child
        // writes only inside it, and makes no call that allocates.
        unsafe {
            let mem = libc::mmap(
                std::ptr::null_mut(),
                words * 8,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            ) as *mut i64;
            assert_ne!(mem as *mut libc::c_void, libc::MAP_FAILED);
            mem.write_volatile(from as i64);
            let pid = libc::fork();
            assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
            if pid == 0 {
                let no_core = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                libc::setrlimit(libc::RLIMIT_CORE, &no_core);
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                let rc = install(&back);
                let rc = if rc == 0 { install(prog) } else { rc - 1000 };
                mem.add(1).write_volatile(rc);
                if rc == 0 {
                    for (i, c) in calls.iter().enumerate().skip(from) {
                        let r = raw_syscall(c.nr, c.args);
                        mem.add(2 + i).write_volatile(r);
                        mem.write_volatile(i as i64 + 1);
                    }
                }
                // No syscall may end the child: exit_group is judged too.
                std::arch::asm!("ud2", options(noreturn));
            }
            let mut status = 0;
            assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
            let installed = mem.add(1).read_volatile();
            assert_eq!(installed, 0, "installing the filters failed");
            let done = mem.read_volatile() as usize;
            for (i, o) in out.iter_mut().enumerate().take(done).skip(from) {
                *o = mem.add(2 + i).read_volatile();
            }
            libc::munmap(mem as *mut libc::c_void, words * 8);
            assert!(libc::WIFSIGNALED(status), "child status {status:#x}");
            (done, libc::WTERMSIG(status))
        }
    }

    #[test]
    fn profile_verdicts_hold_in_the_kernel() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/profile");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("the profile corpus")
            .map(|e| e.expect("readable directory entry").path())
            .collect();
        files.sort();
        let (mut checked, mut killed, mut programs) = (0usize, 0usize, 0usize);
        for f in &files {
            let data = std::fs::read(f).expect("readable corpus file");
            let Some((prog, picked)) = harness::x86_program_and_calls(&data, CALLS) else {
                continue;
            };
            let picked: Vec<(SeccompData, u32)> = picked
                .into_iter()
                .filter(|(c, _)| !UNFILTERED.contains(&c.nr))
                .collect();
            let calls: Vec<SeccompData> = picked.iter().map(|(c, _)| *c).collect();
            let mut out = vec![0i64; calls.len()];
            programs += 1;
            let (mut from, mut kills) = (0, 0);
            while from < calls.len() && kills < MAX_KILLS {
                let (done, sig) = run_child(&prog, &calls, from, &mut out);
                for i in from..done {
                    let want = expected(picked[i].1);
                    assert_eq!(
                        Seen::Returned(out[i]),
                        want,
                        "{}: nr {:#x} args {:x?}: the kernel returned {}, the evaluator says {:#x}",
                        f.display(),
                        calls[i].nr,
                        calls[i].args,
                        out[i],
                        picked[i].1
                    );
                }
                checked += done - from;
                if sig == libc::SIGILL {
                    assert_eq!(done, calls.len());
                    break;
                }
                assert_eq!(sig, libc::SIGSYS, "{}: child killed by {sig}", f.display());
                assert_eq!(
                    expected(picked[done].1),
                    Seen::SigSys,
                    "{}: nr {:#x} args {:x?}: the kernel killed it, the evaluator says {:#x}",
                    f.display(),
                    calls[done].nr,
                    calls[done].args,
                    picked[done].1
                );
                checked += 1;
                kills += 1;
                killed += 1;
                from = done + 1;
            }
        }
        eprintln!(
            "{checked} verdicts checked in the kernel ({killed} by SIGSYS) for {programs} programs"
        );
        assert!(checked >= 100_000, "only {checked} verdicts checked");
    }
}
