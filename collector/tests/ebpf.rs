//! The eBPF backend against the real kernel: exact counts, phases, ABIs,
//! and no mixing of workloads. Needs root (CI runs as root).

mod probes;

use collector::cgroup::Cgroup;
use collector::ebpf::{self, EbpfCollector, EbpfOptions, WorkloadKey};
use collector::launch::LaunchOptions;
use schemas::{Abi, Observation, Phase, SyscallKey};
use std::ffi::OsString;
use std::time::Duration;

fn wait(pid: i32) -> i32 {
    let mut status = 0;
    // SAFETY: waitpid on our own child.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid);
    assert!(libc::WIFEXITED(status), "child died: {status:#x}");
    libc::WEXITSTATUS(status)
}

fn mine(collector: &mut EbpfCollector, argv: &[&str]) -> Observation {
    let cg = Cgroup::create("test").expect("create cgroup");
    let key = WorkloadKey {
        cgroup_id: cg.id(),
        mntns_id: ebpf::mntns_id("self").unwrap(),
    };
    let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
    let l = collector::launch::spawn(&argv, &cg.procs_file(), LaunchOptions::default(), |_| {
        collector.track(key)
    })
    .unwrap();
    assert_eq!(wait(l.pid), 0, "{argv:?} failed");
    for _ in 0..100 {
        if cg.pids().unwrap().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let obs = collector.observe(&key).unwrap();
    collector.untrack(&key).unwrap();
    obs
}

fn get(obs: &Observation, abi: Abi, nr: u32) -> Option<schemas::SyscallUse> {
    obs.syscalls.get(&SyscallKey { abi, nr }).copied()
}

#[test]
fn exact_counts_phases_and_abis() {
    let mut c = EbpfCollector::load(&EbpfOptions {
        auto_track: false,
        ..EbpfOptions::default()
    })
    .expect("load (run as root)");
    let loop_bin = probes::build("getppid_loop", probes::GETPPID_LOOP);
    let obs = mine(&mut c, &[loop_bin.to_str().unwrap(), "12345"]);
    let getppid = get(&obs, Abi::X86_64, 110).expect("getppid recorded");
    assert_eq!(getppid.calls, 12345);
    assert!(getppid.phases.contains(Phase::Image));
    // The probe's own execve passed the filter before the exec completed.
    let execve = get(&obs, Abi::X86_64, 59).expect("execve recorded");
    assert!(execve.phases.contains(Phase::Runtime), "{execve:?}");
    // The launcher's seccomp() call happened before its filter: Setup.
    let seccomp = get(&obs, Abi::X86_64, 317).expect("seccomp recorded");
    assert_eq!(seccomp.phases.0, Phase::Setup.bit());
    assert!(obs.syscalls.keys().all(|k| k.abi == Abi::X86_64));

    let int80 = probes::build("int80", probes::INT80);
    let obs = mine(&mut c, &[int80.to_str().unwrap()]);
    let compat = get(&obs, Abi::I386, 20).expect("i386 getpid recorded");
    assert_eq!(compat.calls, 3);
    assert!(
        get(&obs, Abi::X86_64, 20).is_none(),
        "20 is x86_64 writev: must not be recorded"
    );
}

#[test]
fn a_thousand_successive_workloads_never_mix() {
    let mut c = EbpfCollector::load(&EbpfOptions {
        auto_track: false,
        ..EbpfOptions::default()
    })
    .expect("load (run as root)");
    let loop_bin = probes::build("getppid_loop2", probes::GETPPID_LOOP);
    let bin = loop_bin.to_str().unwrap();
    // Successive workloads: each sees exactly its own count.
    for i in 0..1000u32 {
        let n = 1 + i % 7;
        let obs = mine(&mut c, &[bin, &n.to_string()]);
        assert_eq!(
            get(&obs, Abi::X86_64, 110).map(|u| u.calls),
            Some(u64::from(n)),
            "run {i}"
        );
    }
}

#[test]
fn concurrent_workloads_never_mix() {
    let mut c = EbpfCollector::load(&EbpfOptions {
        auto_track: false,
        ..EbpfOptions::default()
    })
    .expect("load (run as root)");
    let loop_bin = probes::build("getppid_loop3", probes::GETPPID_LOOP);
    let bin = loop_bin.to_str().unwrap();
    // Two workloads at once: one makes getppid (110), the other getpgrp
    // (111), long enough to overlap on both CPUs.
    let runs = [("300000", "110"), ("200000", "111")];
    let mut started = Vec::new();
    for (n, nr) in runs {
        let cg = Cgroup::create("conc").unwrap();
        let key = WorkloadKey {
            cgroup_id: cg.id(),
            mntns_id: ebpf::mntns_id("self").unwrap(),
        };
        let argv: Vec<OsString> = [bin, n, nr].iter().map(OsString::from).collect();
        let l = collector::launch::spawn(&argv, &cg.procs_file(), LaunchOptions::default(), |_| {
            c.track(key)
        })
        .unwrap();
        started.push((cg, key, l.pid));
    }
    let mut obs = Vec::new();
    for (cg, key, pid) in started {
        assert_eq!(wait(pid), 0);
        obs.push(c.observe(&key).unwrap());
        drop(cg);
    }
    assert_eq!(
        get(&obs[0], Abi::X86_64, 110).map(|u| u.calls),
        Some(300000)
    );
    assert!(get(&obs[0], Abi::X86_64, 111).is_none());
    assert_eq!(
        get(&obs[1], Abi::X86_64, 111).map(|u| u.calls),
        Some(200000)
    );
    assert!(get(&obs[1], Abi::X86_64, 110).is_none());
}

/// A cgroup v1-only host: every task shares the root v2 cgroup, so the
/// workload is told apart by its own mount namespace. Simulated here by
/// grouping both workloads in one v1 cgroup: they share their v2 cgroup
/// (this process's) and differ only in their mount namespace.
#[test]
fn v1_host_workloads_are_told_apart_by_mount_namespace() {
    let mut c = EbpfCollector::load(&EbpfOptions {
        auto_track: false,
        ..EbpfOptions::default()
    })
    .expect("load (run as root)");
    let loop_bin = probes::build("getppid_loop_v1", probes::GETPPID_LOOP);
    let bin = loop_bin.to_str().unwrap();
    let v1 = collector::cgroup::v1_root().expect("a v1 hierarchy (this host is hybrid)");
    let group = Cgroup::create_in(&v1, "v1test").unwrap();
    let opts = LaunchOptions {
        new_mount_namespace: true,
        ..LaunchOptions::default()
    };
    let mut started = Vec::new();
    for (n, nr) in [("300000", "110"), ("200000", "111")] {
        let argv: Vec<OsString> = [bin, n, nr].iter().map(OsString::from).collect();
        let mut key = None;
        let l = collector::launch::spawn(&argv, &group.procs_file(), opts, |pid| {
            let k = WorkloadKey {
                cgroup_id: collector::cgroup::v2_cgroup_id_of(pid)?,
                mntns_id: ebpf::mntns_id(&pid.to_string())?,
            };
            key = Some(k);
            c.track(k)
        })
        .unwrap();
        started.push((key.unwrap(), l.pid));
    }
    assert_eq!(
        started[0].0.cgroup_id, started[1].0.cgroup_id,
        "same v2 cgroup"
    );
    assert_ne!(started[0].0.mntns_id, started[1].0.mntns_id);
    let mut obs = Vec::new();
    for (key, pid) in &started {
        assert_eq!(wait(*pid), 0);
        obs.push(c.observe(key).unwrap());
    }
    assert_eq!(
        get(&obs[0], Abi::X86_64, 110).map(|u| u.calls),
        Some(300000)
    );
    assert!(get(&obs[0], Abi::X86_64, 111).is_none());
    assert_eq!(
        get(&obs[1], Abi::X86_64, 111).map(|u| u.calls),
        Some(200000)
    );
    assert!(get(&obs[1], Abi::X86_64, 110).is_none());
    // The command's own execve is the first tracked call.
    assert!(get(&obs[0], Abi::X86_64, 59)
        .unwrap()
        .phases
        .contains(Phase::Runtime));
}

/// One workload, two processes on both CPUs making the same syscall 3
/// million times each (every CPU's 16-bit counter spills into the shared
/// total about 90 times), read continuously while they run: every read is
/// a count that never goes down, and the final one is exact.
#[test]
fn counts_stay_exact_across_spills_while_being_read() {
    let mut c = EbpfCollector::load(&EbpfOptions {
        auto_track: false,
        ..EbpfOptions::default()
    })
    .expect("load (run as root)");
    let loop_bin = probes::build("getppid_loop_spill", probes::GETPPID_LOOP);
    let bin = loop_bin.to_str().unwrap();
    let cg = Cgroup::create("spill").unwrap();
    let key = WorkloadKey {
        cgroup_id: cg.id(),
        mntns_id: ebpf::mntns_id("self").unwrap(),
    };
    c.track(key).unwrap();
    let argv: Vec<OsString> = [bin, "3000000", "111"].iter().map(OsString::from).collect();
    let pids: Vec<i32> =
        (0..2)
            .map(|_| {
                collector::launch::spawn(&argv, &cg.procs_file(), LaunchOptions::default(), |_| {
                    Ok(())
                })
                .unwrap()
                .pid
            })
            .collect();
    let calls =
        |c: &EbpfCollector| get(&c.observe(&key).unwrap(), Abi::X86_64, 111).map_or(0, |u| u.calls);
    let (mut last, mut reads) = (0, 0);
    while !cg.pids().unwrap().is_empty() {
        let now = calls(&c);
        assert!(now >= last, "count went down: {last} -> {now}");
        assert!(now <= 6_000_000, "count above the truth: {now}");
        last = now;
        reads += 1;
    }
    for pid in pids {
        assert_eq!(wait(pid), 0);
    }
    assert_eq!(calls(&c), 6_000_000, "after {reads} reads during the run");
    assert!(reads > 10, "only {reads} reads while it ran");
    c.untrack(&key).unwrap();
}
