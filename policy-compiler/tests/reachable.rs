//! Static reachability joined with observations: what each tier does, in
//! the decision and in every format, and what never joins without being
//! observed.

use policy_compiler::compile::compile_image_with;
use policy_compiler::decide::{AllowReason, Verdict};
use policy_compiler::reachable::{AnalysedFile, Reachability, Tier};
use policy_compiler::{explain, Action, Compiled, Policy};
use schemas::fleet::ImageObservations;
use schemas::{syscalls, Abi, Observation, Phase, SyscallKey};
use std::collections::BTreeMap;

const T0: u64 = 1_700_000_000_000;

fn key(abi: Abi, name: &str) -> SyscallKey {
    SyscallKey {
        abi,
        nr: syscalls::number(abi, name).unwrap_or_else(|| panic!("{abi} has no {name}")),
    }
}

/// Observed: read, write, exit_group (x86_64, image phase).
fn observed() -> Observation {
    let mut o = Observation::default();
    for n in ["read", "write", "exit_group"] {
        let k = key(Abi::X86_64, n);
        o.record(k.abi, k.nr, Phase::Image, 3);
    }
    o
}

/// Reachable: two of the observed, fdatasync and kill (ordinary), clone3
/// (must-deny), ptrace (high-risk), mount (outside Docker's default),
/// statx (probed: keeps ENOSYS), and an i386 syscall (an ABI never
/// observed).
fn reach(known: bool) -> Reachability {
    let mut syscalls = BTreeMap::new();
    for n in [
        "read",
        "write",
        "fdatasync",
        "kill",
        "clone3",
        "ptrace",
        "mount",
        "statx",
    ] {
        syscalls.insert(key(Abi::X86_64, n), format!("/bin/app: {n}@GLIBC"));
    }
    syscalls.insert(key(Abi::I386, "getpid"), "/bin/app: int 0x80".to_string());
    Reachability {
        syscalls,
        files: vec![AnalysedFile {
            path: "/bin/app".into(),
            ran: true,
            known,
            nonconst_sites: u32::from(!known),
            syscalls: 9,
        }],
        gaps: Vec::new(),
        arg_sites: Default::default(),
    }
}

fn compile(tier: Tier, r: Option<&Reachability>) -> Compiled {
    let policy = Policy {
        baseline: false,
        reachable: tier,
        ..Policy::single_host()
    };
    let img = ImageObservations::single_run(
        "app",
        "unconfined",
        &observed(),
        &BTreeMap::new(),
        T0,
        T0 + 5_000,
    );
    compile_image_with(&img, r, &policy.resolve().expect("policy"), T0 + 5_000).expect("compile")
}

fn names(c: &Compiled, action: Action) -> Vec<String> {
    c.profile
        .syscalls
        .iter()
        .filter(|r| r.action == action && r.errno_ret.is_none())
        .flat_map(|r| r.names.iter().cloned())
        .collect()
}

#[test]
fn log_tier_logs_only_ordinary_reachable_names() {
    let r = reach(true);
    let c = compile(Tier::Log, Some(&r));
    let d = &c.decision;
    assert_eq!(
        d.logged,
        [key(Abi::X86_64, "kill"), key(Abi::X86_64, "fdatasync")]
            .into_iter()
            .collect()
    );
    assert_eq!(names(&c, Action::Log), ["fdatasync", "kill"]);
    assert_eq!(names(&c, Action::Allow), ["exit_group", "read", "write"]);
    assert_eq!(
        d.get(key(Abi::X86_64, "kill")).map(|s| &s.verdict),
        Some(&Verdict::Logged {
            chain: "/bin/app: kill@GLIBC".into()
        })
    );
    let s = d.reach.as_ref().expect("summary");
    assert_eq!(s.reachable, 9);
    assert_eq!(s.reachable_observed, 2);
    assert_eq!(s.tiered, 2);
    assert_eq!(s.held_back, ["x86_64 ptrace", "x86_64 mount"]);
    assert_eq!(s.other_abi, ["i386 getpid"]);
    assert_eq!(
        s.observed_not_reachable,
        ["x86_64 exit_group: not reached from the files analysed: made by a binary that was not analysed, through a path the analysis does not follow, or by a site whose number is not constant"]
    );
    assert!(s.known);
    // The metadata lists the logged names; the publication counts them as
    // running.
    let m = c.profile.sandmine.as_ref().expect("metadata");
    assert_eq!(m.logged[&Abi::X86_64], ["fdatasync", "kill"]);
    let sets = policy_compiler::compile::allowed_sets(&c);
    assert!(sets["x86_64"].contains("kill") && sets["x86_64"].contains("read"));
    assert_eq!(
        policy_compiler::compile::allowed_sets_of_profile(&c.profile),
        sets
    );
    // systemd: allowed by the filter and logged by SystemCallLog=.
    let unit = String::from_utf8(c.files["systemd.conf"].clone()).expect("utf-8");
    assert!(
        unit.contains("\nSystemCallFilter=fdatasync kill\nSystemCallLog=fdatasync kill\n"),
        "{unit}"
    );
    // The text report and explain say why.
    assert!(c
        .report_text
        .contains("x86_64 kill: - - - - -> log (reachable, not observed: /bin/app: kill@GLIBC)"));
    assert!(c
        .report_text
        .contains("  x86_64: observed 3, allowed 3, logged 2, running in all 5\n"));
    assert!(explain(d, key(Abi::X86_64, "kill"))
        .starts_with("app x86_64 kill: logged (log profile): never observed, but the image's binaries can reach it (/bin/app: kill@GLIBC)"));
    assert_eq!(
        explain(d, key(Abi::X86_64, "mount")),
        "app x86_64 mount: denied with EPERM: never observed in any of 1 container(s) on 1 host(s); the image's binaries can reach it, but it is outside Docker's default profile or high-risk, so it is denied until observed"
    );
    assert_eq!(
        explain(d, key(Abi::X86_64, "chdir")),
        "app x86_64 chdir: denied with EPERM: never observed in any of 1 container(s) on 1 host(s); and no file analysed can reach it"
    );
}

#[test]
fn allow_tier_allows_and_deny_tier_only_reports() {
    let r = reach(false);
    let c = compile(Tier::Allow, Some(&r));
    assert!(c.decision.logged.is_empty());
    assert_eq!(
        names(&c, Action::Allow),
        // statx too: `allow` allows what is reachable, probed or not.
        ["exit_group", "fdatasync", "kill", "read", "statx", "write"]
    );
    assert!(names(&c, Action::Log).is_empty());
    let v = &c
        .decision
        .get(key(Abi::X86_64, "kill"))
        .expect("kill")
        .verdict;
    assert_eq!(
        v,
        &Verdict::Allowed {
            reasons: vec![AllowReason::Reachable {
                chain: "/bin/app: kill@GLIBC".into()
            }]
        }
    );
    assert!(!c.decision.reach.as_ref().expect("summary").known);
    assert!(c.report_text.contains("the set is UNKNOWN"));

    let c = compile(Tier::Deny, Some(&r));
    assert_eq!(names(&c, Action::Allow), ["exit_group", "read", "write"]);
    assert!(names(&c, Action::Log).is_empty());
    assert_eq!(c.decision.reach.as_ref().expect("summary").tiered, 0);
}

#[test]
fn without_reachability_nothing_changes() {
    let plain = compile(Tier::Log, None);
    let r = Reachability::default();
    let empty = compile(Tier::Log, Some(&r));
    assert_eq!(plain.files, empty.files);
    assert_eq!(plain.content_hash, empty.content_hash);
    assert!(plain.decision.reach.is_none());
    assert!(!plain.report_json.contains("\"reach\""));
}

#[test]
fn the_policy_names_the_tier() {
    let p = Policy::from_toml("reachable = \"allow\"\n").expect("policy");
    assert_eq!(p.reachable, Tier::Allow);
    assert_eq!(Policy::default().reachable, Tier::Log);
    let e = Policy::from_toml("reachable = \"maybe\"\n").expect_err("refused");
    assert!(
        e.to_string()
            .starts_with("policy line 1, column 13: unknown variant `maybe`"),
        "{e}"
    );
}

const H: u64 = 3_600_000;

/// 20 containers, one an hour on two hosts, 2 h each, all using `base`;
/// container 17 also calls kill and container 18 fsync (once each: below
/// the syscall thresholds, and each new late in the history).
fn late_singletons(base: &[&str]) -> schemas::fleet::ImageObservations {
    use schemas::fleet::{ContainerIncidence, ImageObservations, IncidenceEntry};
    use schemas::PhaseSet;
    let mut phases = PhaseSet::default();
    phases.insert(Phase::Image);
    let uses = |i: usize| -> Vec<SyscallKey> {
        let mut v: Vec<SyscallKey> = base.iter().map(|n| key(Abi::X86_64, n)).collect();
        match i {
            17 => v.push(key(Abi::X86_64, "kill")),
            18 => v.push(key(Abi::X86_64, "fsync")),
            _ => {}
        }
        v.sort();
        v
    };
    let incidence = (0..20)
        .map(|i| {
            let start = T0 + i as u64 * H;
            ContainerIncidence {
                host_id: format!("h{}", i % 2),
                boot_id: "b".into(),
                container_id: format!("c{i:02}"),
                started_at_ms: start,
                last_seen_ms: start + 2 * H,
                seccomp: "unconfined".into(),
                incomplete: false,
                unverified: false,
                syscalls: uses(i)
                    .into_iter()
                    .map(|k| IncidenceEntry {
                        abi: k.abi,
                        nr: k.nr,
                        phases,
                        first_seen_ms: start,
                        last_seen_ms: start + H,
                    })
                    .collect(),
            }
        })
        .collect();
    ImageObservations::from_incidence("app", incidence)
}

fn fleet_state(r: Option<&Reachability>, tier: Tier) -> policy_compiler::decide::Decision {
    let policy = Policy {
        reachable: tier,
        ..Policy::default()
    };
    let img = late_singletons(&["read", "write", "futex", "exit_group", "openat"]);
    compile_image_with(&img, r, &policy.resolve().expect("policy"), T0 + 45 * H)
        .expect("compile")
        .decision
}

fn fleet_reach(known: bool) -> Reachability {
    let mut r = reach(known);
    for n in ["futex", "exit_group", "openat", "fsync"] {
        r.syscalls
            .insert(key(Abi::X86_64, n), format!("/bin/app: {n}@GLIBC"));
    }
    r
}

#[test]
fn a_known_reachable_set_lets_an_image_enforce_sooner() {
    use policy_compiler::decide::State;
    // Without reachability: kill and fsync are singletons (coverage
    // 1 - (2/102)(38/38) = 0.9804), two of the last 20 containers showed
    // something new beside the first (3/20), and both are below the
    // syscall thresholds: log.
    let d = fleet_state(None, Tier::Log);
    assert_eq!(d.state, State::Log);
    assert_eq!(
        (
            d.confidence.incidence.u,
            d.confidence.incidence.q1,
            d.confidence.expected
        ),
        (102, 2, 0)
    );
    assert_eq!(d.confidence.recent_new, 3);
    assert!(
        d.reasons
            .iter()
            .any(|r| r.starts_with("sample coverage is 0.9804")),
        "{:?}",
        d.reasons
    );
    assert!(
        d.reasons.iter().any(|r| r.starts_with(
            "x86_64 kill was used in a relevant phase but is below the syscall thresholds"
        )),
        "{:?}",
        d.reasons
    );

    // A known set that reaches all of them: nothing observed is a
    // surprise, so coverage is 1, no container showed anything new and
    // the quiet time runs from the first call; kill and fsync get the log
    // tier instead of holding the image back: enforce.
    let r = fleet_reach(true);
    let d = fleet_state(Some(&r), Tier::Log);
    assert_eq!(d.state, State::Enforce, "{:?}", d.reasons);
    assert_eq!(d.confidence.expected, 7);
    assert_eq!((d.confidence.incidence.u, d.confidence.coverage), (0, 1.0));
    assert_eq!(
        (d.confidence.recent_window, d.confidence.recent_new),
        (20, 0)
    );
    assert_eq!(d.confidence.quiet_ms, Some(45 * H));
    assert_eq!(
        d.logged,
        [
            key(Abi::X86_64, "kill"),
            key(Abi::X86_64, "fsync"),
            key(Abi::X86_64, "fdatasync")
        ]
        .into_iter()
        .collect()
    );
    assert!(
        d.notes
            .iter()
            .any(|n| n.starts_with("7 observed syscall(s) are expected")),
        "{:?}",
        d.notes
    );

    // The same set, unknown (a non-constant site): no relaxation, and the
    // singletons keep holding the image in log... though they run (logged).
    let r = fleet_reach(false);
    let d = fleet_state(Some(&r), Tier::Log);
    assert_eq!(d.state, State::Log);
    assert_eq!(d.confidence.expected, 0);
    assert!(
        d.reasons
            .iter()
            .any(|r| r.starts_with("sample coverage is 0.9804")),
        "{:?}",
        d.reasons
    );

    // Known, but the policy denies what was not observed: an unseen
    // syscall would break, so nothing is expected.
    let r = fleet_reach(true);
    let d = fleet_state(Some(&r), Tier::Deny);
    assert_eq!(d.state, State::Log);
    assert_eq!(d.confidence.expected, 0);
}
