//! Argument values recorded in the kernel (issue 11), against the real
//! kernel: a real program (`tests/probes/argprobe.c`, statically linked:
//! one raw call per forked child, through `syscall` or `int $0x80`) in a
//! fresh tracked cgroup, and the exact sets the counter holds afterwards.
//! Needs root (CI runs as root).

mod probes;

use collector::cgroup::Cgroup;
use collector::ebpf::{self, ArgTrack, ArgValues, Args, EbpfCollector, EbpfOptions, WorkloadKey};
use schemas::{Abi, SyscallKey};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

const ARGPROBE: &str = include_str!("../../tests/probes/argprobe.c");
const ARG_CYCLE: &str = include_str!("../../tests/probes/arg_cycle.c");

/// What the static probe itself does around the calls asked of it: glibc's
/// start-up makes its RELRO read-only (`mprotect(PROT_READ)`: prot & 6 =
/// 0) and each call runs in a forked child (`clone` without a namespace
/// flag: 0).
fn probe_noise() -> Vec<(SyscallKey, ArgTrack, Vec<Vec<u32>>)> {
    vec![
        (x86(10), ArgTrack::Mprotect, vec![vec![0]]),
        (x86(56), ArgTrack::Clone, vec![vec![0]]),
    ]
}

fn x86(nr: u32) -> SyscallKey {
    SyscallKey {
        abi: Abi::X86_64,
        nr,
    }
}

fn i386(nr: u32) -> SyscallKey {
    SyscallKey { abi: Abi::I386, nr }
}

fn x32(nr: u32) -> SyscallKey {
    SyscallKey { abi: Abi::X32, nr }
}

/// Runs `argprobe SPECS` in a fresh cgroup tracked by `c` and returns its
/// output and the key; the key stays tracked.
fn run(c: &mut EbpfCollector, probe: &Path, specs: &[String]) -> (String, WorkloadKey) {
    let cg = Cgroup::create("args").expect("create cgroup");
    let key = WorkloadKey {
        cgroup_id: cg.id(),
        mntns_id: ebpf::mntns_id("self").expect("mntns id"),
    };
    c.track(key).expect("track");
    let procs = cg.procs_file();
    let mut cmd = Command::new(probe);
    cmd.args(specs);
    // SAFETY: the closure only opens and writes a file.
    unsafe {
        cmd.pre_exec(move || std::fs::write(&procs, b"0"));
    }
    // The probe waits for each of its children: when it is reaped, every
    // call it asked for has passed sys_enter.
    let out = cmd.output().expect("run argprobe");
    assert!(out.status.success(), "argprobe failed: {out:?}");
    drop(cg);
    (String::from_utf8(out.stdout).expect("utf-8"), key)
}

fn expected(entries: Vec<(SyscallKey, ArgTrack, Vec<Vec<u32>>)>) -> Args {
    let mut want = Args::new();
    for (k, track, values) in entries {
        let e = want.entry(k).or_insert((track, ArgValues::default()));
        assert_eq!(e.0, track);
        e.1.values.extend(values);
    }
    want
}

fn load(max_workloads: u32) -> EbpfCollector {
    EbpfCollector::load(&EbpfOptions {
        auto_track: false,
        max_workloads,
    })
    .expect("load the counter (root, BTF)")
}

fn specs(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| s.to_string()).collect()
}

fn outcome(lines: &[(&str, &str)]) -> String {
    lines.iter().map(|(s, r)| format!("{s}={r}\n")).collect()
}

#[test]
fn distinct_masked_values_are_recorded_per_abi() {
    let mut c = load(64);
    let probe = probes::build_static("argprobe", ARGPROBE);
    let calls = [
        // socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC): type & 0xf = 1.
        ("x86_64:41:1:0x80001", "ok"),
        // socket(AF_INET, SOCK_DGRAM), then again with garbage in the
        // family's upper 32 bits and SOCK_NONBLOCK | SOCK_CLOEXEC: the
        // same (2, 2), recorded once.
        ("x86_64:41:2:2", "ok"),
        ("x86_64:41:0x100000002:0x80802", "ok"),
        // setsockopt(-1, SOL_SOCKET, SO_REUSEADDR): recorded at entry,
        // whatever the call returns.
        ("x86_64:54:0xffffffff:1:2", "E9"),
        // prctl(PR_SET_NAME, NULL) fails, PR_GET_DUMPABLE succeeds.
        ("x86_64:157:15:0", "E14"),
        ("x86_64:157:3", "ok"),
        // ioctl(-1, TIOCGPTN) sign-extended as musl passes it, then as
        // glibc does: one value, its low 32 bits.
        ("x86_64:16:0xffffffff:0xffffffff80045430", "E9"),
        ("x86_64:16:0xffffffff:0x80045430", "E9"),
        // personality(0xffffffff): the query.
        ("x86_64:135:0xffffffff", "ok"),
        // mmap(NULL, 4096, RWX, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) and
        // mprotect(NULL, 0, RWX): prot & (W | X) = 6.
        ("x86_64:9:0:4096:7:0x22:0xffffffffffffffff:0", "ok"),
        ("x86_64:10:0:0:7", "ok"),
        // clone(CLONE_NEWPID | SIGCHLD): the namespace bit only.
        ("x86_64:56:0x20000011", "ok"),
        // unshare(CLONE_NEWUTS | CLONE_FILES): the namespace bit only.
        ("x86_64:272:0x4000400", "ok"),
        // setns(-1, CLONE_NEWPID), bpf(0xffff): recorded, both fail.
        ("x86_64:308:0xffffffff:0x20000000", "E9"),
        ("x86_64:321:0xffff", "E22"),
        // The i386 ABI through int 0x80: its own numbers and registers.
        ("int80:359:2:2", "ok"),
        ("int80:359:1:0x80001", "ok"),
        ("int80:54:0xffffffff:0x80045430", "E9"),
        ("int80:172:3", "ok"),
        ("int80:136:0xffffffff", "ok"),
        ("int80:125:0:0:7", "ok"),
        ("int80:120:0x4000011", "ok"),
        // x32 (x86_64 registers, NR | 0x40000000): socket shares its
        // number with x86_64, ioctl has its own (514). This kernel is
        // built without the x32 ABI: the calls reach sys_enter (and are
        // recorded, as they are counted), then get ENOSYS.
        ("x32:41:10:2", "E38"),
        ("x32:514:0xffffffff:0x5401", "E38"),
    ];
    let (out, key) = run(&mut c, &probe, &specs(&calls.map(|(s, _)| s)));
    assert_eq!(out, outcome(&calls));
    let mut want = probe_noise();
    want.extend([
        (x86(41), ArgTrack::Socket, vec![vec![1, 1], vec![2, 2]]),
        (x86(54), ArgTrack::Setsockopt, vec![vec![1, 2]]),
        (x86(157), ArgTrack::Prctl, vec![vec![15], vec![3]]),
        (x86(16), ArgTrack::Ioctl, vec![vec![0x8004_5430]]),
        (x86(135), ArgTrack::Personality, vec![vec![0xffff_ffff]]),
        (x86(9), ArgTrack::Mmap, vec![vec![6]]),
        (x86(10), ArgTrack::Mprotect, vec![vec![6]]),
        (x86(56), ArgTrack::Clone, vec![vec![0x2000_0000]]),
        (x86(272), ArgTrack::Unshare, vec![vec![0x0400_0000]]),
        (x86(308), ArgTrack::Setns, vec![vec![0x2000_0000]]),
        (x86(321), ArgTrack::Bpf, vec![vec![0xffff]]),
        (i386(359), ArgTrack::Socket, vec![vec![2, 2], vec![1, 1]]),
        (i386(54), ArgTrack::Ioctl, vec![vec![0x8004_5430]]),
        (i386(172), ArgTrack::Prctl, vec![vec![3]]),
        (i386(136), ArgTrack::Personality, vec![vec![0xffff_ffff]]),
        (i386(125), ArgTrack::Mprotect, vec![vec![6]]),
        (i386(120), ArgTrack::Clone, vec![vec![0x0400_0000]]),
        (x32(41), ArgTrack::Socket, vec![vec![10, 2]]),
        (x32(514), ArgTrack::Ioctl, vec![vec![0x5401]]),
    ]);
    let got = c.args_of(&key).expect("args");
    assert_eq!(got, expected(want));
    assert!(got.values().all(|(_, v)| !v.overflowed()));
    // The same through the reader of every workload.
    let all = c.args().expect("all args");
    assert_eq!(all.len(), 1);
    assert_eq!(all.get(&key), Some(&got));
    // And in the workload's observation, as the compiler and the wire
    // take them: each set with its track's indices and masks.
    let sets = c.observe(&key).expect("observe").args;
    assert_eq!(sets, ebpf::args::to_sets(&got));
    let socket = &sets[&x86(41)];
    assert_eq!(
        socket.fields,
        vec![
            schemas::ArgField {
                index: 0,
                mask: 0xffff_ffff
            },
            schemas::ArgField {
                index: 1,
                mask: 0xf
            }
        ]
    );
    assert!(sets.values().all(|s| s.check().is_ok()), "{sets:?}");
    c.untrack(&key).expect("untrack");
    assert_eq!(c.args_of(&key).expect("args"), Args::new());
}

#[test]
fn a_freed_slot_starts_with_no_values() {
    // One slot: the second workload gets the first one's slot.
    let mut c = load(1);
    let probe = probes::build_static("argprobe", ARGPROBE);
    let (out, first) = run(
        &mut c,
        &probe,
        &specs(&["x86_64:135:8", "int80:54:0xffffffff:2"]),
    );
    assert_eq!(out, "x86_64:135:8=ok\nint80:54:0xffffffff:2=E9\n");
    let mut want = probe_noise();
    want.push((x86(135), ArgTrack::Personality, vec![vec![8]]));
    want.push((i386(54), ArgTrack::Ioctl, vec![vec![2]]));
    assert_eq!(c.args_of(&first).expect("args"), expected(want));
    c.untrack(&first).expect("untrack");

    let (out, second) = run(&mut c, &probe, &specs(&["x86_64:135:0"]));
    assert_eq!(out, "x86_64:135:0=ok\n");
    let mut want = probe_noise();
    want.push((x86(135), ArgTrack::Personality, vec![vec![0]]));
    assert_eq!(c.args_of(&second).expect("args"), expected(want));
    c.untrack(&second).expect("untrack");
}

#[test]
fn values_over_the_bound_are_counted_never_invented() {
    let mut c = load(64);
    let probe = probes::build_static("argprobe", ARGPROBE);
    let cap = ebpf::ARG_TRACKS
        .iter()
        .find(|s| s.track == ArgTrack::Ioctl)
        .expect("ioctl track")
        .cap;
    assert_eq!(cap, 32);
    // 40 distinct ioctl requests, one call each, in order; then the first
    // again (recorded already: no overflow) and the last again (not
    // recorded: one more overflow). setsockopt with an optname whose bit
    // 31 is set cannot be held: an overflow, beside a recorded value.
    let reqs: Vec<u32> = (0..40).map(|i| 0x8000_1000 + i).collect();
    let mut calls: Vec<String> = reqs
        .iter()
        .map(|r| format!("x86_64:16:0xffffffff:{r:#x}"))
        .collect();
    calls.push(format!("x86_64:16:0xffffffff:{:#x}", reqs[0]));
    calls.push(format!("x86_64:16:0xffffffff:{:#x}", reqs[39]));
    calls.push("x86_64:54:0xffffffff:6:1".into());
    calls.push("x86_64:54:0xffffffff:6:0x80000001".into());
    let (out, key) = run(&mut c, &probe, &calls);
    let want_out: String = calls.iter().map(|s| format!("{s}=E9\n")).collect();
    assert_eq!(out, want_out);
    let got = c.args_of(&key).expect("args");
    let (track, ioctl) = got.get(&x86(16)).expect("ioctl recorded");
    assert_eq!(*track, ArgTrack::Ioctl);
    // Exactly the first 32 requests, nothing else.
    let first: std::collections::BTreeSet<Vec<u32>> = reqs[..32].iter().map(|r| vec![*r]).collect();
    assert_eq!(ioctl.values, first);
    assert_eq!(ioctl.overflow, 9);
    assert!(ioctl.overflowed());
    let (_, sso) = got.get(&x86(54)).expect("setsockopt recorded");
    assert_eq!(sso.values, [vec![6, 1]].into());
    assert_eq!(sso.overflow, 1);
    // The other syscalls are untouched by those overflows.
    let mut want = expected(probe_noise());
    want.insert(x86(16), (ArgTrack::Ioctl, ioctl.clone()));
    want.insert(x86(54), (ArgTrack::Setsockopt, sso.clone()));
    assert_eq!(got, want);
    c.untrack(&key).expect("untrack");
}

/// Two processes of one workload, one per CPU, cycle through the same 32
/// ioctl requests (the row's bound) 3,000 times each: both CPUs record
/// the same new values at once. A value recorded twice would take a
/// second cell and push another value out into the overflow; the row
/// holds exactly the 32, once each, with no overflow.
#[test]
fn concurrent_recording_of_the_same_values_never_duplicates() {
    let mut c = load(64);
    let probe = probes::build("arg_cycle", ARG_CYCLE);
    let cg = Cgroup::create("argrace").expect("create cgroup");
    let key = WorkloadKey {
        cgroup_id: cg.id(),
        mntns_id: ebpf::mntns_id("self").expect("mntns id"),
    };
    c.track(key).expect("track");
    let children: Vec<std::process::Child> = (0..2)
        .map(|_| {
            let procs = cg.procs_file();
            let mut cmd = Command::new(&probe);
            cmd.args(["16", "0xffffffff", "0x80002000", "32", "3000"]);
            // SAFETY: the closure only opens and writes a file.
            unsafe {
                cmd.pre_exec(move || std::fs::write(&procs, b"0"));
            }
            cmd.spawn().expect("spawn arg_cycle")
        })
        .collect();
    for mut child in children {
        assert!(child.wait().expect("wait").success());
    }
    let got = c.args_of(&key).expect("args");
    let (track, ioctl) = got.get(&x86(16)).expect("ioctl recorded");
    assert_eq!(*track, ArgTrack::Ioctl);
    let want: std::collections::BTreeSet<Vec<u32>> =
        (0..32).map(|i| vec![0x8000_2000 + i]).collect();
    assert_eq!(ioctl.values, want);
    assert_eq!(ioctl.overflow, 0);
    c.untrack(&key).expect("untrack");
}
