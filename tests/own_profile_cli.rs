//! sandmine eats its own cooking: each long-running role runs under its own
//! mined profile (`deploy/own-profile/`, made by
//! `deploy/own-profile/build.sh`) and still does its work exactly, a call
//! outside a profile fails with EPERM instead of killing the process, and
//! the systemd units carry exactly the profiles' allow-lists.
//!
//! Needs root, dockerd (scripts/start-dockerd.sh), the image
//! sandmine-test/busybox:1, nats-server and clickhouse-server. Fails, never
//! skips, when one is missing.

mod common;

#[path = "../aggregator/tests/common/mod.rs"]
mod store_common;
#[path = "common/web_store.rs"]
mod web_store;

use common::fleet::{nats_broker, Batch, Fleet, GETPGRP, SYSINFO, TIMES};
use common::{Fixture, Running, OWN_ROLES};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;
use testsvc::{ClickHouse, Nats};

fn own_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/own-profile")
}

fn profile(role: &str) -> Value {
    let p = own_dir().join(format!("sandmine-{role}.json"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).expect("a JSON profile")
}

/// The names a profile allows (rules with SCMP_ACT_ALLOW).
fn allowed(p: &Value) -> BTreeSet<String> {
    p["syscalls"]
        .as_array()
        .expect("syscalls")
        .iter()
        .filter(|r| r["action"] == "SCMP_ACT_ALLOW")
        .flat_map(|r| r["names"].as_array().expect("names").iter())
        .map(|n| n.as_str().expect("name").to_string())
        .collect()
}

/// The runtime base the container profiles were compiled with: runc's
/// post-filter calls, measured by `sandmine mine-image`'s probe (the file
/// build.sh commits), as names.
fn runtime_base() -> BTreeSet<String> {
    let p = own_dir().join("mined/runtime-base.json");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let v: Value = serde_json::from_str(&text).expect("a runtime base file");
    v["syscalls"]["x86_64"]
        .as_array()
        .expect("x86_64 numbers")
        .iter()
        .map(|n| {
            let nr = u32::try_from(n.as_u64().expect("a number")).expect("u32");
            schemas::syscalls::name(schemas::Abi::X86_64, nr)
                .expect("a known x86_64 syscall")
                .to_string()
        })
        .collect()
}

/// Every role's container profile lets runc start a container: runc
/// installs the filter, then makes its own calls (runc 1.1.5's
/// CVE-2024-21626 fix: fstatfs on /proc/self/fd) before it execs the
/// entrypoint. Without the runtime base that start failed with "ensure
/// /proc/self/fd is on procfs: operation not permitted". The entrypoint
/// is the runtime probe's static ELF (execve, then exit_group only).
#[test]
fn runc_starts_a_container_under_each_own_profile() {
    let f = Fixture::new();
    let probe = f.path("exit-probe");
    std::fs::write(&probe, collector::runtime_probe::exit_elf_x86_64()).expect("probe");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let mount = format!("{}:/probe:ro", probe.display());
    for role in OWN_ROLES {
        let base = runtime_base();
        let names = allowed(&profile(role));
        assert!(
            base.is_subset(&names),
            "{role} lacks runtime base calls {:?}",
            base.difference(&names).collect::<Vec<_>>()
        );
        let prof = own_dir().join(format!("sandmine-{role}.json"));
        let opt = format!("seccomp={}", prof.display());
        let o = std::process::Command::new("docker")
            .args(["run", "--rm", "--network", "none", "--security-opt", &opt])
            .args(["-v", &mount, "sandmine-test/busybox:1", "/probe"])
            .output()
            .expect("docker");
        assert!(
            o.status.success(),
            "{role}: the container did not start under its own profile: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// The process runs under a seccomp filter (`Seccomp: 2` in its status).
fn assert_filtered(r: &Running, what: &str) {
    let status = std::fs::read_to_string(format!("/proc/{}/status", r.pid())).expect("status");
    assert!(
        status.lines().any(|l| l == "Seccomp:\t2"),
        "{what} runs without a seccomp filter:\n{status}"
    );
}

#[test]
fn own_profiles_deny_with_eperm_never_kill_and_the_units_carry_them() {
    for role in OWN_ROLES {
        let p = profile(role);
        assert_eq!(p["defaultAction"], "SCMP_ACT_ERRNO", "{role}");
        // No errno given: EPERM (1), as runc and `sandmine run` read it.
        assert!(
            p.get("defaultErrnoRet").is_none() || p["defaultErrnoRet"] == 1,
            "{role}: {}",
            p["defaultErrnoRet"]
        );
        let text = p.to_string();
        for kill in ["SCMP_ACT_KILL", "SCMP_ACT_TRAP"] {
            assert!(!text.contains(kill), "{role} has {kill}");
        }
        assert_eq!(p["architectures"], serde_json::json!(["SCMP_ARCH_X86_64"]));
        let names = allowed(&p);
        assert!(names.len() > 50, "{role}: {names:?}");
        // What any role needs to start at all, and what must never be in.
        for n in ["execve", "exit_group", "futex", "mmap", "read", "write"] {
            assert!(names.contains(n), "{role} lacks {n}");
        }
        for n in ["kexec_load", "init_module", "reboot", "swapon", "mount"] {
            assert!(!names.contains(n), "{role} allows {n}");
        }
        let unit = match *role {
            "sync-profiles" => continue,
            r => format!("deploy/systemd/sandmine-{r}.service"),
        };
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(&unit))
            .expect("unit");
        let filter: BTreeSet<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("SystemCallFilter="))
            .flat_map(|l| l.split_whitespace())
            .map(String::from)
            .collect();
        // The container profile is the unit's filter plus the runtime's
        // post-filter calls (no runtime stands between systemd and
        // sandmine): exactly those of the measured base it lacks.
        let base = runtime_base();
        let extra: BTreeSet<String> = names.difference(&filter).cloned().collect();
        assert!(
            filter.is_subset(&names) && extra.is_subset(&base),
            "{unit}: SystemCallFilter= is not the profile's allow-list less the runtime base \
             (filter only: {:?}; profile only, not runtime base: {:?}); run deploy/own-profile/build.sh",
            filter.difference(&names).collect::<Vec<_>>(),
            extra.difference(&base).collect::<Vec<_>>()
        );
        assert!(text.lines().any(|l| l == "SystemCallErrorNumber=EPERM"));
        assert!(text.lines().any(|l| l == "SystemCallArchitectures=native"));
        assert!(!text.contains("SystemCallFilter=~"), "{unit}: a deny-list");
    }
}

/// A probe making one syscall by number, reporting the result and errno.
const PROBE: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
    long nr = atol(argv[1]);
    long r = syscall(nr, 0L, 0L, 0L, 0L, 0L, 0L);
    printf("ret=%ld errno=%d\n", r, r < 0 ? errno : 0);
    return 0;
}
"#;

#[test]
fn a_call_outside_each_profile_fails_with_eperm_and_kills_nothing() {
    let f = Fixture::new();
    let probe = f.probe_static("one_call", PROBE);
    let probe = probe.to_str().expect("utf-8");
    for role in OWN_ROLES {
        let names = allowed(&profile(role));
        // acct(2) and vhangup(2): denied by every profile, harmless to try
        // (acct(NULL) turns accounting off; both need privileges anyway).
        for (name, nr) in [("acct", "163"), ("vhangup", "153")] {
            assert!(!names.contains(name), "{role} allows {name}");
            let prof = own_dir().join(format!("sandmine-{role}.json"));
            let o = f.sandmine(&[
                "run",
                "--profile",
                prof.to_str().expect("utf-8"),
                "--",
                probe,
                nr,
            ]);
            assert_eq!(o.code(), Some(0), "{role}: killed? {}", o.describe());
            assert_eq!(
                o.stdout,
                "ret=-1 errno=1\n",
                "{role} {name}: {}",
                o.describe()
            );
        }
        // The control: getpid (39) is allowed and answers.
        let prof = own_dir().join(format!("sandmine-{role}.json"));
        let o = f.sandmine(&[
            "run",
            "--profile",
            prof.to_str().expect("utf-8"),
            "--",
            probe,
            "39",
        ]);
        assert_eq!(o.code(), Some(0), "{}", o.describe());
        assert!(
            o.stdout.starts_with("ret=") && !o.stdout.starts_with("ret=-1"),
            "{role}: {}",
            o.describe()
        );
    }
}

/// The NATS fleet path with both roles under their own profiles: the
/// store's totals are exact, through an aggregator restart, and both stop
/// cleanly on SIGTERM.
#[test]
fn collector_and_aggregator_count_exactly_under_their_own_profiles() {
    let nats = Nats::start();
    let ch = ClickHouse::start();
    let mut fleet = Fleet::new(&nats_broker(&nats), &ch);
    fleet.f.confine_roles(&own_dir());
    fleet.start_aggregator();
    fleet.start_collector("hA");
    assert_filtered(
        fleet.aggregator.as_ref().expect("aggregator"),
        "the aggregator",
    );
    assert_filtered(&fleet.collectors["hA"], "the collector");
    fleet.run(&Batch {
        host: "hA",
        image: "probe",
        containers: 2,
        calls: &[(GETPGRP, 1000), (TIMES, 10)],
    });
    fleet.run(&Batch {
        host: "hA",
        image: "busybox",
        containers: 1,
        calls: &[(SYSINFO, 7)],
    });
    fleet.assert_converges("under the own profiles");
    fleet.stop_aggregator();
    fleet.start_aggregator();
    fleet.run(&Batch {
        host: "hA",
        image: "probe",
        containers: 1,
        calls: &[(GETPGRP, 5)],
    });
    fleet.assert_converges("under the own profiles, after an aggregator restart");
    let logs = fleet.logs();
    let collector = fleet.collectors.remove("hA").expect("collector");
    let o = collector.terminate(Duration::from_secs(60));
    assert_eq!(o.code(), Some(0), "collector: {}", o.describe());
    let aggregator = fleet.aggregator.take().expect("aggregator");
    let o = aggregator.terminate(Duration::from_secs(60));
    assert_eq!(o.code(), Some(0), "aggregator: {}", o.describe());
    assert!(!logs.contains("Operation not permitted"), "{logs}");
}

/// publish and sync-profiles under their own profiles: a round from the
/// embedded store, then its kubelet files installed byte for byte.
#[test]
fn publish_and_sync_profiles_work_under_their_own_profiles() {
    let f = Fixture::new();
    let store = web_store::fill(&f);
    let (key, _) = f.signing_key();
    f.confine_roles(&own_dir());
    let policy = f.write("policy.toml", web_store::POLICY_A);
    let dir = f.arg("published");
    let node = f.path("node");
    std::fs::create_dir_all(&node).expect("node dir");
    let o = f.sandmine(&[
        "publish",
        "--set",
        &key,
        "--policy",
        policy.to_str().expect("utf-8"),
        "--runtime-base",
        "none",
        "--set",
        "publish.min_hosts=1",
        "--set",
        &store,
        "--dir",
        &dir,
        "--now-ms",
        "1800000000000",
    ]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    let o = f.sandmine(&[
        "sync-profiles",
        "--from",
        &dir,
        "--to",
        node.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    let slug = publish::image_slug(web_store::IMAGE);
    let installed = node.join(format!("sandmine/{slug}.json"));
    let text = std::fs::read_to_string(&installed).expect("installed profile");
    let p = policy_compiler::oci::parse(&text).expect("a valid profile");
    assert_eq!(p.default_action, policy_compiler::Action::Errno);
    assert!(
        o.stdout
            .contains(" installed, 0 unchanged, 0 refused, 0 stale\n"),
        "{}",
        o.describe()
    );
}
