//! Reachability of real binaries: C probes compiled at test time (glibc
//! dynamic and static, stripped, musl static) and the host's own
//! binaries. Each probe's interesting syscall sits on a path the program
//! never takes at run time, so only static reachability can find it; a
//! control probe without it shows the syscall is not found by accident.

mod common;

use common::{analyse, compile};
use reach::{Analysis, Analyzer, Hop};
use schemas::Abi;
use std::path::{Path, PathBuf};
use std::process::Command;

const KILL: u32 = 62;
const FSYNC: u32 = 74;
const GETPGRP: u32 = 111;
const PERSONALITY: u32 = 135;
const EXIT_GROUP: u32 = 231;
/// i386 `getpid`.
const I386_GETPID: u32 = 20;

fn has(a: &Analysis, abi: Abi, nr: u32) -> bool {
    a.syscalls.contains_key(&(abi, nr))
}

fn site_function(a: &Analysis, abi: Abi, nr: u32) -> (String, Option<String>) {
    match a.syscalls[&(abi, nr)].chain.last() {
        Some(Hop::Site {
            function,
            via_wrapper,
            ..
        }) => (function.clone(), via_wrapper.clone()),
        other => panic!("chain does not end in a site: {other:?}"),
    }
}

const KILL_FSYNC: &str = r#"
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
    (void)argv;
    if (argc > 5) { kill(1, 0); fsync(1); }   /* never taken by the test */
    puts("probe");
    return 0;
}
"#;

const CONTROL: &str = r#"
#include <stdio.h>
int main(void) { puts("probe"); return 0; }
"#;

#[test]
fn glibc_dynamic_kill_and_fsync_on_a_path_never_taken() {
    let d = tempfile::tempdir().expect("tempdir");
    let bin = compile(d.path(), "killfsync", KILL_FSYNC, &[], "cc");
    // The path is really not taken: the program runs without them.
    let run = Command::new(&bin).output().expect("run probe");
    assert_eq!(String::from_utf8_lossy(&run.stdout), "probe\n");

    let a = analyse(&bin);
    assert!(has(&a, Abi::X86_64, KILL), "kill must be reachable");
    assert!(has(&a, Abi::X86_64, FSYNC), "fsync must be reachable");
    assert!(has(&a, Abi::X86_64, EXIT_GROUP));
    let kill = a.syscalls[&(Abi::X86_64, KILL)].render();
    assert!(
        kill.starts_with(&format!("{} -> kill@GLIBC_2.2.5 -> libc.so.6:kill", a.file)),
        "{kill}"
    );
    assert!(
        a.syscalls[&(Abi::X86_64, KILL)]
            .chain
            .iter()
            .any(|h| matches!(h, Hop::Import { symbol, .. } if symbol == "kill@GLIBC_2.2.5")),
        "the chain names the versioned import"
    );
    // The loader's view: the executable, libc and the interpreter.
    let paths: Vec<&str> = a.objects.iter().map(|o| o.path.as_str()).collect();
    assert_eq!(paths.len(), 3, "{paths:?}");
    assert!(paths[1].ends_with("/libc.so.6"), "{paths:?}");
    assert!(paths[2].ends_with("/ld-linux-x86-64.so.2"), "{paths:?}");
    assert_eq!(a.limits.missing_libraries, 0);
    assert_eq!(a.limits.unresolved_imports, 0, "{:?}", a.unresolved_imports);
    assert_eq!(a.limits.nonconst_syscall_sites, 0, "{:?}", a.nonconst_sites);
    assert!(a.reach_known());

    // The control, without the calls, does not reach them.
    let ctl = analyse(&compile(d.path(), "control", CONTROL, &[], "cc"));
    assert!(!has(&ctl, Abi::X86_64, KILL), "control reaches kill");
    assert!(!has(&ctl, Abi::X86_64, FSYNC), "control reaches fsync");
    assert!(has(&ctl, Abi::X86_64, EXIT_GROUP));
}

#[test]
fn stripped_binary_reaches_the_same_set() {
    let d = tempfile::tempdir().expect("tempdir");
    let bin = compile(d.path(), "killfsync", KILL_FSYNC, &[], "cc");
    let stripped = d.path().join("stripped");
    let st = Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(&bin)
        .status()
        .expect("strip");
    assert!(st.success());
    let a = analyse(&bin);
    let s = analyse(&stripped);
    let keys = |a: &Analysis| a.syscalls.keys().copied().collect::<Vec<_>>();
    assert_eq!(keys(&a), keys(&s));
    assert!(has(&s, Abi::X86_64, KILL) && has(&s, Abi::X86_64, FSYNC));
}

#[test]
fn glibc_static_kill_and_fsync_and_a_raw_syscall_in_main() {
    let d = tempfile::tempdir().expect("tempdir");
    let src = r#"
#include <signal.h>
#include <unistd.h>
int main(int argc, char **argv) {
    (void)argv;
    if (argc > 5) {
        long r;
        kill(1, 0);
        fsync(1);
        __asm__ volatile ("mov $135, %%eax\n\tsyscall" : "=a"(r) : : "rcx", "r11", "memory");
        return (int)r;
    }
    return 0;
}
"#;
    let a = analyse(&compile(d.path(), "static", src, &["-static"], "cc"));
    assert_eq!(a.objects.len(), 1, "a static binary loads nothing");
    assert!(has(&a, Abi::X86_64, KILL) && has(&a, Abi::X86_64, FSYNC));
    assert!(has(&a, Abi::X86_64, PERSONALITY));
    assert_eq!(site_function(&a, Abi::X86_64, PERSONALITY).0, "main");
    assert_eq!(a.limits.nonconst_syscall_sites, 0, "{:?}", a.nonconst_sites);
    assert_eq!(a.limits.missing_libraries, 0);
    let ctl = analyse(&compile(d.path(), "control", CONTROL, &["-static"], "cc"));
    assert!(!has(&ctl, Abi::X86_64, PERSONALITY) && !has(&ctl, Abi::X86_64, KILL));
}

#[test]
fn int80_in_64_bit_code_is_i386() {
    let d = tempfile::tempdir().expect("tempdir");
    let src = r#"
int main(int argc, char **argv) {
    (void)argv;
    if (argc > 5) {
        int r;
        __asm__ volatile ("mov $20, %%eax\n\tint $0x80" : "=a"(r) : : "memory");
        return r;
    }
    return 0;
}
"#;
    let a = analyse(&compile(d.path(), "int80", src, &["-static"], "cc"));
    assert!(has(&a, Abi::I386, I386_GETPID));
    assert_eq!(site_function(&a, Abi::I386, I386_GETPID).0, "main");
    assert_eq!(
        a.syscalls
            .keys()
            .filter(|(abi, _)| *abi == Abi::I386)
            .count(),
        1
    );
}

#[test]
fn syscall_with_a_constant_number() {
    let d = tempfile::tempdir().expect("tempdir");
    let src = r#"
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
    (void)argv;
    if (argc > 5) return (int)syscall(SYS_getpgrp);
    return 0;
}
"#;
    let a = analyse(&compile(d.path(), "getpgrp", src, &[], "cc"));
    assert!(has(&a, Abi::X86_64, GETPGRP));
    let (f, via) = site_function(&a, Abi::X86_64, GETPGRP);
    assert_eq!(f, "main");
    assert_eq!(via.as_deref(), Some("libc.so.6:syscall"));
    assert_eq!(a.limits.nonconst_syscall_sites, 0, "{:?}", a.nonconst_sites);
    assert!(a.reach_known());
    let ctl = analyse(&compile(d.path(), "control", CONTROL, &[], "cc"));
    assert!(!has(&ctl, Abi::X86_64, GETPGRP));
}

#[test]
fn syscall_with_a_number_from_argv_is_unknown_reach() {
    let d = tempfile::tempdir().expect("tempdir");
    let src = r#"
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc > 1) return (int)syscall(atol(argv[1]));
    return 0;
}
"#;
    let a = analyse(&compile(d.path(), "varsys", src, &[], "cc"));
    assert_eq!(a.limits.nonconst_syscall_sites, 1, "{:?}", a.nonconst_sites);
    assert!(!a.reach_known());
    assert_eq!(a.nonconst_sites.len(), 1);
    assert!(
        a.nonconst_sites[0].contains("varsys:main+0x"),
        "{:?}",
        a.nonconst_sites
    );
    // Per file: the site is the executable's.
    assert_eq!(a.objects[0].limits.nonconst_syscall_sites, 1);
    assert_eq!(a.objects[1].limits.nonconst_syscall_sites, 0);
}

#[test]
fn musl_static() {
    let d = tempfile::tempdir().expect("tempdir");
    let a = analyse(&compile(
        d.path(),
        "musl",
        KILL_FSYNC,
        &["-static"],
        "musl-gcc",
    ));
    assert_eq!(a.objects.len(), 1);
    assert!(has(&a, Abi::X86_64, KILL) && has(&a, Abi::X86_64, FSYNC));
    assert!(has(&a, Abi::X86_64, EXIT_GROUP));
    // musl's fsync goes through its cancellable wrapper __syscall_cp with
    // the number as an argument: evaluated at the call, not unknown.
    assert_eq!(a.limits.nonconst_syscall_sites, 0, "{:?}", a.nonconst_sites);
    let ctl = analyse(&compile(
        d.path(),
        "control",
        CONTROL,
        &["-static"],
        "musl-gcc",
    ));
    assert!(!has(&ctl, Abi::X86_64, KILL) && !has(&ctl, Abi::X86_64, FSYNC));
}

#[test]
fn host_binaries_and_the_per_run_cache() {
    let mut an = Analyzer::new(Path::new("/"));
    let t = an.analyse("/usr/bin/true").expect("true");
    assert!(t.syscalls.contains_key(&(Abi::X86_64, EXIT_GROUP)));
    assert_eq!(t.limits.missing_libraries, 0);
    assert_eq!(t.limits.unresolved_imports, 0, "{:?}", t.unresolved_imports);
    // The limits are reported: libc calls through pointers.
    assert!(t.limits.indirect_calls > 0);
    assert_eq!(t.objects.len(), 3);
    assert_eq!(an.cached_objects(), 3);
    let ls = an.analyse("/bin/ls").expect("ls");
    assert!(ls.syscalls.contains_key(&(Abi::X86_64, EXIT_GROUP)));
    // ls opens directories: getdents64 (217) and openat (257).
    assert!(ls.syscalls.contains_key(&(Abi::X86_64, 217)));
    assert!(ls.syscalls.contains_key(&(Abi::X86_64, 257)));
    // libc and ld.so were analysed once: only ls's own new libraries
    // were added.
    let new_libs = ls
        .objects
        .iter()
        .filter(|o| !t.objects.iter().any(|x| x.sha256 == o.sha256))
        .count();
    assert_eq!(an.cached_objects(), 3 + new_libs);
}

#[test]
fn a_library_found_only_through_the_roots_ld_so_cache() {
    let d = tempfile::tempdir().expect("tempdir");
    let bin = compile(d.path(), "killfsync", KILL_FSYNC, &[], "cc");
    let root = d.path().join("root");
    for dir in ["bin", "opt/weird", "lib64", "etc"] {
        std::fs::create_dir_all(root.join(dir)).expect("mkdir");
    }
    std::fs::copy(&bin, root.join("bin/probe")).expect("copy probe");
    std::fs::copy(
        "/lib/x86_64-linux-gnu/libc.so.6",
        root.join("opt/weird/libc.so.6"),
    )
    .expect("copy libc");
    std::fs::copy(
        "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        root.join("lib64/ld-linux-x86-64.so.2"),
    )
    .expect("copy ld.so");
    // Without a cache, libc (in a directory the loader does not search by
    // default) is missing, and counted.
    let a = Analyzer::new(&root)
        .analyse("/bin/probe")
        .expect("analysis");
    assert_eq!(a.limits.missing_libraries, 1, "{:?}", a.missing_libraries);
    assert!(a.missing_libraries[0].starts_with("libc.so.6"));
    assert!(!has(&a, Abi::X86_64, KILL));
    assert!(a.limits.unresolved_imports > 0);
    // With the root's own cache (made by ldconfig inside the root), it is
    // found there.
    std::fs::write(root.join("etc/ld.so.conf"), "/opt/weird\n").expect("ld.so.conf");
    let st = Command::new("/sbin/ldconfig")
        .arg("-r")
        .arg(&root)
        .status()
        .expect("ldconfig");
    assert!(st.success());
    let a = Analyzer::new(&root)
        .analyse("/bin/probe")
        .expect("analysis");
    assert!(a.ld_so_cache);
    assert_eq!(a.limits.missing_libraries, 0, "{:?}", a.missing_libraries);
    let paths: Vec<&str> = a.objects.iter().map(|o| o.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/bin/probe",
            "/opt/weird/libc.so.6",
            "/lib64/ld-linux-x86-64.so.2"
        ]
    );
    assert!(has(&a, Abi::X86_64, KILL) && has(&a, Abi::X86_64, FSYNC));
}

#[test]
fn the_hosts_ld_so_cache_parses() {
    let b = std::fs::read("/etc/ld.so.cache").expect("the host has an ld.so.cache");
    let m = reach::root::parse_ld_so_cache(&b);
    let libc = m.get("libc.so.6").expect("libc.so.6 in the cache");
    assert!(libc.ends_with("/libc.so.6"), "{libc}");
}

/// Soundness on real runs: every syscall strace sees a host binary make
/// (its own, its libraries' and the loader's) is in its static reachable
/// set. python3 dlopens `_json`-like modules from lib-dynload on some
/// imports; this run's imports are built in.
#[test]
fn what_real_runs_make_is_reachable() {
    let d = tempfile::tempdir().expect("tempdir");
    let mut an = Analyzer::new(Path::new("/"));
    for (bin, args) in [
        ("/bin/ls", &["-la", "/"][..]),
        ("/usr/bin/bash", &["-c", "echo hi; cd /tmp; pwd"][..]),
        ("/usr/bin/true", &[][..]),
        (
            "/usr/bin/python3",
            &[
                "-c",
                "import os, subprocess; os.listdir('/'); subprocess.run(['/bin/true'])",
            ][..],
        ),
    ] {
        let log = d.path().join("strace.txt");
        let st = Command::new("strace")
            .arg("-qq")
            .arg("-o")
            .arg(&log)
            .arg(bin)
            .args(args)
            .output()
            .expect("strace must be installed (scripts/install-deps.sh)");
        assert!(
            st.status.success(),
            "{bin}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        let text = std::fs::read_to_string(&log).expect("strace log");
        let mut seen: Vec<String> = text
            .lines()
            .filter_map(|l| l.split('(').next())
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
        assert!(seen.len() > 10, "{bin}: strace saw {seen:?}");
        let a = an.analyse(bin).expect("analysis");
        let missing: Vec<&String> = seen
            .iter()
            .filter(|n| {
                let nr = schemas::syscalls::number(Abi::X86_64, n)
                    .unwrap_or_else(|| panic!("{n} is not an x86_64 syscall"));
                !a.syscalls.contains_key(&(Abi::X86_64, nr))
            })
            .collect();
        assert!(
            missing.is_empty(),
            "{bin}: run but not reachable: {missing:?}"
        );
    }
}

/// A library of the program's own, found through `RUNPATH=$ORIGIN/lib`
/// (inside the root, wherever that is on the host), whose function calls
/// libc's `fsync`: the chain crosses both imports.
#[test]
fn runpath_origin_and_a_chain_through_two_libraries() {
    let d = tempfile::tempdir().expect("tempdir");
    let root = d.path().join("root");
    std::fs::create_dir_all(root.join("app/lib")).expect("mkdir");
    let lib_c = d.path().join("foo.c");
    std::fs::write(
        &lib_c,
        "#include <unistd.h>\nint foo_sync(int fd) { return fsync(fd); }\n",
    )
    .expect("write");
    let st = Command::new("cc")
        .args(["-O1", "-shared", "-fPIC", "-o"])
        .arg(root.join("app/lib/libfoo.so"))
        .arg(&lib_c)
        .status()
        .expect("cc");
    assert!(st.success());
    let main_c = d.path().join("main.c");
    std::fs::write(
        &main_c,
        "int foo_sync(int);\nint main(int argc, char **argv) { (void)argv; return argc > 5 ? foo_sync(1) : 0; }\n",
    )
    .expect("write");
    let st = Command::new("cc")
        .args(["-O1", "-o"])
        .arg(root.join("app/prog"))
        .arg(&main_c)
        .arg(format!("-L{}", root.join("app/lib").display()))
        .args(["-lfoo", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/lib"])
        .status()
        .expect("cc");
    assert!(st.success());
    // The root's own libc and loader (copies of the host's; symlinks to
    // the host's files would point outside the root).
    std::fs::create_dir_all(root.join("lib/x86_64-linux-gnu")).expect("mkdir");
    std::fs::create_dir_all(root.join("lib64")).expect("mkdir");
    std::fs::copy(
        "/lib/x86_64-linux-gnu/libc.so.6",
        root.join("lib/x86_64-linux-gnu/libc.so.6"),
    )
    .expect("copy libc");
    std::fs::copy(
        "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        root.join("lib64/ld-linux-x86-64.so.2"),
    )
    .expect("copy ld.so");
    let a = Analyzer::new(&root).analyse("/app/prog").expect("analysis");
    let paths: Vec<&str> = a.objects.iter().map(|o| o.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/app/prog",
            "/app/lib/libfoo.so",
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib64/ld-linux-x86-64.so.2"
        ]
    );
    assert!(!a.ld_so_cache);
    assert_eq!(a.limits.missing_libraries, 0);
    assert_eq!(
        a.syscalls[&(Abi::X86_64, FSYNC)].render(),
        "/app/prog -> foo_sync -> libfoo.so:foo_sync -> fsync@GLIBC_2.2.5 -> libc.so.6:fsync"
    );
}

/// The host's disk cache: a second analyser (another process, another
/// run) reads every file's summary from the cache and reaches exactly the
/// same syscalls with the same chains and limits; a corrupt entry is a
/// miss, analysed again and rewritten; a directory others can write is
/// refused.
#[test]
fn the_disk_cache_gives_the_same_answers_and_refuses_a_shared_directory() {
    use reach::cache::DiskCache;
    let d = tempfile::tempdir().expect("tempdir");
    let dir = d.path().join("reach-cache");
    let run = |dir: &Path| {
        let mut an = Analyzer::new(Path::new("/"))
            .with_disk_cache(DiskCache::open(dir, "test-build").expect("open the cache"));
        let a = an.analyse("/bin/ls").expect("ls");
        let c = an.disk_cache().expect("cache");
        let counts = (c.hits(), c.misses(), c.corrupt());
        (
            format!("{:?} {:?} {:?}", a.syscalls, a.limits, a.arg_sites),
            a.objects.len(),
            counts,
        )
    };
    let uncached = {
        let a = Analyzer::new(Path::new("/"))
            .analyse("/bin/ls")
            .expect("ls");
        format!("{:?} {:?} {:?}", a.syscalls, a.limits, a.arg_sites)
    };
    let (first, n, counts) = run(&dir);
    assert_eq!(first, uncached);
    assert_eq!(counts, (0, n, 0), "a cold cache misses every object");
    let (second, _, counts) = run(&dir);
    assert_eq!(second, uncached);
    assert_eq!(counts, (n, 0, 0), "a warm cache hits every object");

    // Truncate one entry: that file is analysed again, the answer holds,
    // and the entry is whole again for the next run.
    let entries: Vec<PathBuf> = std::fs::read_dir(dir.join("test-build-f2"))
        .expect("entries")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(entries.len(), n);
    let bytes = std::fs::read(&entries[0]).expect("entry");
    std::fs::write(&entries[0], &bytes[..bytes.len() / 2]).expect("truncate");
    let (third, _, counts) = run(&dir);
    assert_eq!(third, uncached);
    assert_eq!(counts, (n - 1, 1, 1));
    assert_eq!(run(&dir).2, (n, 0, 0));

    // Another build's entries are never read, and opening the cache for
    // one build removes the others' (the cache does not grow with
    // upgrades); what is not a build's directory stays.
    std::fs::create_dir(dir.join("notes")).expect("mkdir");
    let other = DiskCache::open(&dir, "other-build").expect("open");
    assert!(other.dir().ends_with("other-build-f2"));
    assert!(!dir.join("test-build-f2").exists());
    assert!(dir.join("notes").is_dir());
    assert_eq!(run(&dir).2, (0, n, 0));
    assert!(!dir.join("other-build-f2").exists());

    // Writable by others: refused, with the reason.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    }
    let e = DiskCache::open(&dir, "test-build").expect_err("a shared directory");
    assert_eq!(
        e.to_string(),
        format!(
            "cannot use {} as the analysis cache: writable by its group or others (mode 777); chmod go-w it",
            dir.display()
        )
    );
    assert!(DiskCache::open(&dir, "../x").is_err());
}
