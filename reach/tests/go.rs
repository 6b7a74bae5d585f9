//! Go static binaries (`CGO_ENABLED=0`), built at test time with the
//! host's Go (Debian's `golang-go`, scripts/install-deps.sh), offline.

use reach::{Analysis, Analyzer, Hop};
use schemas::Abi;
use std::path::{Path, PathBuf};
use std::process::Command;

fn go_build(dir: &Path, name: &str, src: &str, ldflags: &str) -> PathBuf {
    let src_dir = dir.join(format!("{name}-src"));
    std::fs::create_dir_all(&src_dir).expect("mkdir");
    std::fs::write(src_dir.join("main.go"), src).expect("write main.go");
    std::fs::write(src_dir.join("go.mod"), "module probe\n\ngo 1.19\n").expect("write go.mod");
    let bin = dir.join(name);
    let home = dir.join("home");
    let out = Command::new("go")
        .current_dir(&src_dir)
        .env("CGO_ENABLED", "0")
        .env("GOCACHE", dir.join("gocache"))
        .env("GOPATH", dir.join("gopath"))
        .env("HOME", &home)
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "")
        .args(["build", "-trimpath", "-ldflags", ldflags, "-o"])
        .arg(&bin)
        .arg(".")
        .output()
        .unwrap_or_else(|e| panic!("go must be installed (scripts/install-deps.sh): {e}"));
    assert!(
        out.status.success(),
        "go build {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

fn analyse(bin: &Path) -> Analysis {
    Analyzer::new(Path::new("/"))
        .analyse(bin.to_str().expect("utf-8 path"))
        .expect("analysis")
}

const PROBE: &str = r#"package main

import (
	"os"
	"syscall"
)

func main() {
	if len(os.Args) > 5 { // never taken by the test
		syscall.Kill(1, syscall.SIGTERM)
		syscall.Fdatasync(1)
	}
	syscall.Fsync(1)
	syscall.Getppid()
	syscall.Syscall(syscall.SYS_GETPGRP, 0, 0, 0)
	syscall.RawSyscall(syscall.SYS_GETTID, 0, 0, 0)
	os.Stdout.Write([]byte("ok\n"))
}
"#;

const CONTROL: &str = r#"package main

import "os"

func main() {
	os.Stdout.Write([]byte("ok\n"))
}
"#;

const KILL: u32 = 62;
const FSYNC: u32 = 74;
const FDATASYNC: u32 = 75;
const GETPPID: u32 = 110;
const GETPGRP: u32 = 111;
const GETTID: u32 = 186;
const EXIT_GROUP: u32 = 231;

fn has(a: &Analysis, nr: u32) -> bool {
    a.syscalls.contains_key(&(Abi::X86_64, nr))
}

/// The function holding the site, and the wrapper it goes through.
fn site(a: &Analysis, nr: u32) -> (String, Option<String>) {
    match a.syscalls[&(Abi::X86_64, nr)].chain.last() {
        Some(Hop::Site {
            function,
            via_wrapper,
            ..
        }) => (function.clone(), via_wrapper.clone()),
        other => panic!("chain does not end in a site: {other:?}"),
    }
}

/// With `.symtab`, every site is known: the two traps Go 1.19 loads from
/// a variable (`internal/syscall/unix.FcntlSyscall`, in IsNonblock, and
/// `runtime.perThreadSyscall`, in runPerThreadSyscall) are variables no
/// instruction writes and nothing points to, so their linked value.
fn assert_go_known(a: &Analysis) {
    assert_eq!(a.limits.nonconst_syscall_sites, 0, "{:?}", a.nonconst_sites);
    assert!(a.reach_known());
}

/// Without `.symtab` the variables' extents are unknown: those two sites
/// are counted, so the set is unknown (a lower bound), never silently
/// smaller.
fn assert_go_nonconst(a: &Analysis) {
    assert_eq!(a.limits.nonconst_syscall_sites, 2, "{:?}", a.nonconst_sites);
    assert_eq!(a.nonconst_sites.len(), 2);
    assert!(
        a.nonconst_sites[0].contains(":internal/syscall/unix.IsNonblock+0x")
            && a.nonconst_sites[1].contains(":runtime.runPerThreadSyscall+0x"),
        "{:?}",
        a.nonconst_sites
    );
    assert!(!a.reach_known());
}

#[test]
fn go_static_binary_syscalls_through_the_go_wrappers() {
    let d = tempfile::tempdir().expect("tempdir");
    let bin = go_build(d.path(), "probe", PROBE, "");
    let run = Command::new(&bin).output().expect("run probe");
    assert_eq!(String::from_utf8_lossy(&run.stdout), "ok\n");

    let a = analyse(&bin);
    assert_eq!(a.objects.len(), 1, "a static Go binary loads nothing");
    // Each call's number is the constant trap its caller passes, through
    // the wrapper that reaches runtime/internal/syscall.Syscall6 (or
    // rawSyscallNoError, an ABI0 function reading its trap from the stack).
    let me = |w: &str| Some(format!("probe:{w}"));
    assert_eq!(
        site(&a, KILL),
        ("syscall.Kill".into(), me("syscall.RawSyscall"))
    );
    assert_eq!(
        site(&a, FSYNC),
        ("syscall.Fsync".into(), me("syscall.Syscall"))
    );
    assert_eq!(
        site(&a, FDATASYNC),
        ("syscall.Fdatasync".into(), me("syscall.Syscall"))
    );
    assert_eq!(
        site(&a, GETPPID),
        ("main.main".into(), me("syscall.rawSyscallNoError.abi0"))
    );
    assert_eq!(
        site(&a, GETPGRP),
        ("main.main".into(), me("syscall.Syscall"))
    );
    assert!(has(&a, GETTID));
    // The runtime's own constant sites.
    assert!(
        has(&a, EXIT_GROUP) && has(&a, 202) && has(&a, 1),
        "exit_group, futex, write"
    );
    assert_go_known(&a);

    // The control, without the calls, does not reach them; kill it does,
    // but only from the runtime (raiseproc: kill(getpid(), sig)).
    let ctl = analyse(&go_build(d.path(), "control", CONTROL, ""));
    assert_eq!(site(&ctl, KILL), ("runtime.raiseproc.abi0".into(), None));
    for nr in [FSYNC, FDATASYNC, GETPPID, GETPGRP] {
        assert!(
            !has(&ctl, nr),
            "control reaches {nr}: {}",
            ctl.syscalls[&(Abi::X86_64, nr)].render()
        );
    }
    assert!(has(&ctl, EXIT_GROUP));
    assert_go_known(&ctl);
}

/// `-ldflags=-s -w` drops `.symtab` and DWARF; `.gopclntab` stays (the
/// runtime needs it), and gives the functions, their names and argument
/// sizes: the same set, but the two variable traps are counted (the set
/// is unknown, a lower bound).
#[test]
fn stripped_go_binary_reaches_the_same_set() {
    let d = tempfile::tempdir().expect("tempdir");
    let a = analyse(&go_build(d.path(), "probe", PROBE, ""));
    let s = analyse(&go_build(d.path(), "stripped", PROBE, "-s -w"));
    let keys = |a: &Analysis| a.syscalls.keys().copied().collect::<Vec<_>>();
    assert_eq!(keys(&a), keys(&s));
    assert_go_known(&a);
    // ABI0 functions lose their `.abi0` suffix: the table names them
    // without it.
    assert_eq!(
        site(&s, GETPPID),
        (
            "main.main".into(),
            Some("stripped:syscall.rawSyscallNoError".into())
        )
    );
    assert_eq!(
        site(&s, FSYNC),
        (
            "syscall.Fsync".into(),
            Some("stripped:syscall.Syscall".into())
        )
    );
    assert_go_nonconst(&s);
}

/// Soundness on a real run: every syscall the probe makes (strace -f, all
/// its threads) is in its reachable set. The first `execve` is strace's
/// child starting the probe, not the probe's own.
#[test]
fn what_a_go_run_makes_is_reachable() {
    let d = tempfile::tempdir().expect("tempdir");
    let bin = go_build(d.path(), "probe", PROBE, "");
    let log = d.path().join("strace.txt");
    let st = Command::new("strace")
        .arg("-f")
        .arg("-qq")
        .arg("-o")
        .arg(&log)
        .arg(&bin)
        .output()
        .expect("strace must be installed (scripts/install-deps.sh)");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let text = std::fs::read_to_string(&log).expect("strace log");
    let mut seen: Vec<String> = text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let l = l.trim_start_matches(|c: char| c.is_ascii_digit()).trim();
            l.split('(').next()
        })
        .map(str::trim)
        .filter(|n| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .map(str::to_string)
        .collect();
    seen.sort();
    seen.dedup();
    assert!(seen.len() > 10, "strace saw {seen:?}");
    for n in ["fsync", "getppid", "getpgrp", "gettid"] {
        assert!(seen.iter().any(|s| s == n), "{n} not run: {seen:?}");
    }
    let a = analyse(&bin);
    let missing: Vec<&String> = seen
        .iter()
        .filter(|n| {
            let nr = schemas::syscalls::number(Abi::X86_64, n)
                .unwrap_or_else(|| panic!("{n} is not an x86_64 syscall"));
            !has(&a, nr)
        })
        .collect();
    assert!(missing.is_empty(), "run but not reachable: {missing:?}");
}

/// Traps that are not constant stay counted, in the function that passes
/// them: one from argv, one from a variable the program writes (its
/// linked value must not be taken).
#[test]
fn go_traps_not_constant_are_counted() {
    let d = tempfile::tempdir().expect("tempdir");
    let src = r#"package main

import (
	"os"
	"strconv"
	"syscall"
)

var trap uintptr = syscall.SYS_GETPGRP

func main() {
	if len(os.Args) > 2 {
		n, _ := strconv.Atoi(os.Args[1])
		syscall.Syscall(uintptr(n), 0, 0, 0)
		trap = syscall.SYS_GETPID
	}
	syscall.RawSyscall(trap, 0, 0, 0)
}
"#;
    let a = analyse(&go_build(d.path(), "vartrap", src, ""));
    assert_eq!(a.limits.nonconst_syscall_sites, 2, "{:?}", a.nonconst_sites);
    assert!(
        a.nonconst_sites
            .iter()
            .all(|s| s.contains("vartrap:main.main+0x")),
        "{:?}",
        a.nonconst_sites
    );
    assert!(!a.reach_known());
    assert!(!has(&a, GETPGRP), "the written variable's linked value");
}
