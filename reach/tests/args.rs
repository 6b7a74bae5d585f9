//! Argument values at syscall sites (issue 11): C probes compiled at test
//! time, analysed, and the exact tuples found for `socket` and
//! `personality` on the probe's own paths (never taken at run time).

mod common;

use common::{analyse, compile};
use reach::{Analysis, ArgTuple};
use schemas::Abi;
use std::collections::BTreeSet;
use std::process::Command;

const SOCKET: u32 = 41;
const PERSONALITY: u32 = 135;

fn tuples(a: &Analysis, nr: u32) -> BTreeSet<ArgTuple> {
    a.arg_sites
        .get(&(Abi::X86_64, nr))
        .cloned()
        .unwrap_or_default()
}

const PROBE: &str = r#"
#include <stdlib.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc > 5) {   /* never taken by the test */
        socket(AF_INET, SOCK_STREAM, 0);
        socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        personality(0xffffffff);
        socket(atoi(argv[1]), SOCK_STREAM, 0);
        syscall(SYS_socket, 10, 2, 0);
    }
    return 0;
}
"#;

const CONTROL: &str = r#"
int main(void) { return 0; }
"#;

/// The probe's own tuples: `socket` through glibc's `socket` (an argument
/// wrapper in libc.so.6, or in the same object when static) and through
/// `syscall()` (a number wrapper whose arguments are followed too), the
/// family from argv unknown; `personality`'s persona, the other two
/// registers unknown at the call.
fn expected_socket() -> BTreeSet<ArgTuple> {
    BTreeSet::from([
        [Some(2), Some(1), Some(0)],       // AF_INET, SOCK_STREAM
        [Some(1), Some(0x80002), Some(0)], // AF_UNIX, SOCK_DGRAM|SOCK_CLOEXEC
        [None, Some(1), Some(0)],          // atoi(argv[1]), SOCK_STREAM
        [Some(10), Some(2), Some(0)],      // syscall(SYS_socket, AF_INET6, SOCK_DGRAM, 0)
    ])
}

#[test]
fn glibc_dynamic_and_static_socket_and_personality_arguments() {
    let d = tempfile::tempdir().expect("tempdir");
    for (name, args) in [("dynamic", &[][..]), ("static", &["-static"][..])] {
        let bin = compile(d.path(), name, PROBE, args, "cc");
        // The path is really not taken: the program runs without it.
        let run = Command::new(&bin).output().expect("run probe");
        assert!(run.status.success(), "{name}: {run:?}");
        let a = analyse(&bin);
        assert_eq!(a.objects.len(), if name == "static" { 1 } else { 3 });
        assert_eq!(tuples(&a, SOCKET), expected_socket(), "{name}");
        assert_eq!(
            tuples(&a, PERSONALITY),
            BTreeSet::from([[Some(0xffff_ffff), None, None]]),
            "{name}"
        );
        assert!(a.arg_sites_over_cap.is_empty(), "{name}");
        // Only the syscalls whose arguments are recorded have tuples, and
        // each has a reachable syscall.
        for &(abi, nr) in a.arg_sites.keys() {
            assert!(reach::elf::tracks_args(abi, nr), "{name}: {abi:?} {nr}");
            assert!(a.syscalls.contains_key(&(abi, nr)), "{name}: {abi:?} {nr}");
        }
        // The control, without the calls, reaches neither.
        let ctl = analyse(&compile(
            d.path(),
            &format!("{name}-control"),
            CONTROL,
            args,
            "cc",
        ));
        assert!(tuples(&ctl, SOCKET).is_empty(), "{name}");
        assert!(tuples(&ctl, PERSONALITY).is_empty(), "{name}");
    }
}

/// No libc: every syscall site is the probe's own, so the whole map is
/// exact. `sock` is an argument wrapper, `inet` carries it up one more
/// level (its own argument is the type), `sc` is a `syscall()`-like
/// number wrapper, and `sock`'s address is also stored in a pointer: it
/// may then be entered with any arguments.
const NOLIBC: &str = r#"
#define W __attribute__((noipa))
W long sock(long fam, long type, long proto) {
    long r;
    __asm__ volatile ("mov $41, %%eax\n\tsyscall" : "=a"(r)
                      : "D"(fam), "S"(type), "d"(proto) : "rcx", "r11", "memory");
    return r;
}
W long inet(long type) { return sock(2, type, 0); }
W long sc(long n, long a, long b, long c) {
    long r;
    register long r10 __asm__("r10") = 0;
    __asm__ volatile ("syscall" : "=a"(r)
                      : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
    return r;
}
volatile long unknown;
long (*volatile ptr)(long, long, long);
W void run(void) {
    sock(1, 5, 0);
    inet(1);
    inet(2);
    sock(unknown, 3, 0);
    sc(41, 16, 3, 0);
    sc(135, 8, unknown, 0);
    if (unknown == 7) ptr = sock;
}
void _start(void) {
    run();
    __asm__ volatile ("mov $60, %%eax\n\txor %%edi, %%edi\n\tsyscall" : : : "rax", "rdi", "rcx", "r11");
    for (;;) {}
}
"#;

#[test]
fn no_libc_wrappers_exact() {
    let d = tempfile::tempdir().expect("tempdir");
    let bin = compile(d.path(), "nolibc", NOLIBC, &["-static", "-nostdlib"], "cc");
    let run = Command::new(&bin).output().expect("run probe");
    assert!(run.status.success(), "{run:?}");
    let a = analyse(&bin);
    assert_eq!(a.limits.nonconst_syscall_sites, 0, "{:?}", a.nonconst_sites);
    let got: Vec<((Abi, u32), BTreeSet<ArgTuple>)> = a.arg_sites.clone().into_iter().collect();
    assert_eq!(
        got,
        vec![
            (
                (Abi::X86_64, SOCKET),
                BTreeSet::from([
                    [None, None, None],           // sock through the pointer
                    [None, Some(3), Some(0)],     // sock(unknown, 3, 0)
                    [Some(1), Some(5), Some(0)],  // sock(1, 5, 0)
                    [Some(2), Some(1), Some(0)],  // inet(1)
                    [Some(2), Some(2), Some(0)],  // inet(2)
                    [Some(16), Some(3), Some(0)], // sc(41, 16, 3, 0)
                ])
            ),
            (
                (Abi::X86_64, PERSONALITY),
                BTreeSet::from([[Some(8), None, Some(0)]]) // sc(135, 8, unknown, 0)
            ),
        ]
    );
    let keys: Vec<(Abi, u32)> = a.syscalls.keys().copied().collect();
    assert_eq!(
        keys,
        vec![
            (Abi::X86_64, SOCKET),
            (Abi::X86_64, 60),
            (Abi::X86_64, PERSONALITY)
        ]
    );
}
