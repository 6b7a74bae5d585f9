//! The fleet compiler end to end: hand-built store answers, exact
//! decisions, numbers, profiles and bytes.

use policy_compiler::compile::{allowed_sets, allowed_sets_of_profile, Compiled};
use policy_compiler::decide::{AllowReason, Decision, DenyReason, State, SyscallDecision, Verdict};
use policy_compiler::oci::{self, Action};
use policy_compiler::policy::Policy;
use policy_compiler::probes::PROBED;
use policy_compiler::{compile_image, render, CompileError};
use schemas::fleet::{ContainerIncidence, ImageObservations, IncidenceEntry, SyscallTotals};
use schemas::{syscalls, Abi, Phase, PhaseSet, SyscallKey};
use std::collections::{BTreeMap, BTreeSet};

fn compile(
    obs: &ImageObservations,
    policy: &Policy,
    now_ms: u64,
) -> Result<Compiled, CompileError> {
    compile_image(obs, &policy.resolve().unwrap(), now_ms)
}

fn key(abi: Abi, name: &str) -> SyscallKey {
    SyscallKey {
        abi,
        nr: syscalls::number(abi, name).unwrap(),
    }
}

fn get<'a>(d: &'a Decision, abi: Abi, name: &str) -> Option<&'a SyscallDecision> {
    d.get(key(abi, name))
}

fn explain(d: &Decision, abi: Abi, name: &str) -> String {
    policy_compiler::explain(d, key(abi, name))
}

const H: u64 = 3_600_000;
const X: Abi = Abi::X86_64;

struct C {
    host: &'static str,
    started_h: u64,
    seccomp: &'static str,
    uses: Vec<(Abi, &'static str, Phase)>,
}

fn c(host: &'static str, started_h: u64, uses: &[&'static str]) -> C {
    C {
        host,
        started_h,
        seccomp: "unconfined",
        uses: uses.iter().map(|n| (X, *n, Phase::Unfiltered)).collect(),
    }
}

/// A store answer from containers; each container runs 2 h from its start,
/// each use is first seen at the container's start; totals are derived
/// (one call per container and use).
fn image(name: &str, cs: &[C]) -> ImageObservations {
    let mut incidence = Vec::new();
    let mut totals: BTreeMap<(Abi, u32), SyscallTotals> = BTreeMap::new();
    let mut hosts_of: BTreeMap<(Abi, u32), BTreeSet<&str>> = BTreeMap::new();
    for (i, k) in cs.iter().enumerate() {
        let start = k.started_h * H;
        let mut entries: BTreeMap<(Abi, u32), IncidenceEntry> = BTreeMap::new();
        for (abi, n, ph) in &k.uses {
            let nr = syscalls::number(*abi, n).unwrap_or_else(|| panic!("{abi} {n}"));
            let e = entries.entry((*abi, nr)).or_insert(IncidenceEntry {
                abi: *abi,
                nr,
                phases: PhaseSet::default(),
                first_seen_ms: start,
                last_seen_ms: start + H,
            });
            e.phases.insert(*ph);
        }
        for ((abi, nr), e) in &entries {
            let t = totals.entry((*abi, *nr)).or_insert(SyscallTotals {
                abi: *abi,
                nr: *nr,
                hosts: 0,
                containers: 0,
                calls: 0,
                first_seen_ms: u64::MAX,
                last_seen_ms: 0,
                phases: PhaseSet::default(),
            });
            t.containers += 1;
            t.calls += 1;
            t.first_seen_ms = t.first_seen_ms.min(e.first_seen_ms);
            t.last_seen_ms = t.last_seen_ms.max(e.last_seen_ms);
            t.phases = t.phases.union(e.phases);
            hosts_of.entry((*abi, *nr)).or_default().insert(k.host);
        }
        incidence.push(ContainerIncidence {
            host_id: k.host.into(),
            boot_id: "boot".into(),
            container_id: format!("c{i:03}"),
            started_at_ms: start,
            last_seen_ms: start + 2 * H,
            seccomp: k.seccomp.into(),
            incomplete: false,
            unverified: false,
            syscalls: entries.into_values().collect(),
        });
    }
    let syscalls = totals
        .into_iter()
        .map(|(k, mut t)| {
            t.hosts = hosts_of[&k].len() as u64;
            t
        })
        .collect();
    let hosts: BTreeSet<&str> = cs.iter().map(|k| k.host).collect();
    ImageObservations {
        image: name.into(),
        digests: vec!["sha256:1111".into()],
        hosts: hosts.len() as u64,
        containers: cs.len() as u64,
        container_seconds: cs.len() as u64 * 7200,
        first_seen_ms: cs.iter().map(|k| k.started_h * H).min().unwrap_or(0),
        last_seen_ms: cs
            .iter()
            .map(|k| k.started_h * H + 2 * H)
            .max()
            .unwrap_or(0),
        syscalls,
        incidence,
        out_of_range: 0,
        args: Default::default(),
        executed: Default::default(),
    }
}

const BASE: &[&str] = &["read", "write", "futex", "exit_group", "openat"];

/// 25 containers on 3 hosts, starting one per hour from 0, all using BASE
/// (and clone3 + clone... per `extra`), so that every enforce bar is met at
/// `now = 100 h`.
fn fleet(extra: impl Fn(usize) -> Vec<&'static str>) -> Vec<C> {
    let hosts = ["h1", "h2", "h3"];
    (0..25)
        .map(|i| {
            let mut uses: Vec<&'static str> = BASE.to_vec();
            uses.extend(extra(i));
            c(hosts[i % 3], i as u64, &uses)
        })
        .collect()
}

fn allow_names(p: &oci::OciProfile) -> Vec<String> {
    p.syscalls
        .iter()
        .find(|r| r.action == Action::Allow)
        .map(|r| r.names.clone())
        .unwrap_or_default()
}

fn enosys_expected(allowed: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = PROBED
        .iter()
        .map(|p| p.name)
        .filter(|n| !allowed.contains(n) && syscalls::number(X, n).is_some())
        .map(String::from)
        .collect();
    v.sort();
    v
}

const NOW: u64 = 100 * H;

#[test]
fn rogue_host_syscall_is_excluded_and_keeps_the_image_in_log() {
    // ptrace only on h3 (containers 23 and 20 -> both on host index 2).
    let obs = image(
        "registry.example/app:1",
        &fleet(|i| {
            if i == 20 || i == 23 {
                vec!["ptrace"]
            } else {
                vec![]
            }
        }),
    );
    let out = compile(&obs, &Policy::default(), NOW).unwrap();
    let d = &out.decision;
    assert_eq!(d.state, State::Log);
    assert_eq!(
        d.reasons,
        vec!["x86_64 ptrace was used in a relevant phase but is below the syscall thresholds (seen on 1 host(s), the policy needs at least 2); an enforced profile would deny it, so the image stays in log mode until it meets them or the policy names it in must_deny or must_allow".to_string()]
    );
    // The confidence figures: ptrace is the only doubleton, nothing is a
    // singleton: coverage 1; container 20 was the last to bring something
    // new, within the last 20.
    let c = &d.confidence;
    assert_eq!((c.containers, c.hosts), (25, 3));
    assert_eq!(c.incidence.q1, 0);
    assert_eq!(c.incidence.q2, 1);
    assert_eq!(c.incidence.u, 25 * 5 + 2);
    assert_eq!(c.coverage, 1.0);
    assert_eq!(c.chao2, 6.0);
    assert_eq!((c.recent_window, c.recent_new), (20, 1));
    assert_eq!(c.recent_new_share, 0.05);
    assert_eq!(c.last_new_ms, Some(20 * H));
    assert_eq!(c.quiet_ms, Some(80 * H));
    assert_eq!(c.container_hours, 50.0);

    let ptrace = get(d, X, "ptrace").unwrap();
    assert_eq!(ptrace.stats.as_ref().unwrap().hosts, 1);
    assert_eq!(ptrace.stats.as_ref().unwrap().containers, 2);
    assert_eq!(
        ptrace.verdict,
        Verdict::Denied {
            reason: DenyReason::BelowThreshold {
                failed: vec!["seen on 1 host(s), the policy needs at least 2".into()]
            },
            errno: 1,
            blocks_enforce: true
        }
    );
    // Log mode: default LOG, ptrace not allowed (so it is logged).
    assert_eq!(out.profile.default_action, Action::Log);
    assert_eq!(out.profile.default_errno_ret, None);
    assert!(!allow_names(&out.profile).contains(&"ptrace".to_string()));
    assert_eq!(out.profile.action_for("ptrace"), (Action::Log, None));
    assert!(out.report_text.contains("x86_64 ptrace: 1 2 0.0800 2 -> deny EPERM (seen on 1 host(s), the policy needs at least 2) [keeps the image in log mode]"), "{}", out.report_text);
    assert_eq!(
        explain(d, X, "ptrace"),
        "registry.example/app:1 x86_64 ptrace: not allowed: seen in a profile-relevant phase on 1 of 3 host(s), in 2 of 25 container(s) (share 0.0800); 2 call(s) counted in all phases, but seen on 1 host(s), the policy needs at least 2; an enforced profile would answer it with EPERM, so the image stays in log mode (calls to it are allowed and logged) until it meets the thresholds or the policy names it"
    );

    // Denying it by name lets the image be enforced.
    let mut p = Policy::default();
    p.must_deny.push("ptrace".into());
    let out = compile(&obs, &p, NOW).unwrap();
    assert_eq!(out.decision.state, State::Enforce);
    assert_eq!(out.profile.action_for("ptrace"), (Action::Errno, Some(1)));
    assert_eq!(
        explain(&out.decision, X, "ptrace"),
        "registry.example/app:1 x86_64 ptrace: denied with EPERM: named in the policy's must_deny (seen in a profile-relevant phase on 1 of 3 host(s), in 2 of 25 container(s) (share 0.0800); 2 call(s) counted in all phases)"
    );
}

#[test]
fn observed_must_deny_is_enforced_denied_and_its_fallback_allowed() {
    let obs = image("app", &fleet(|_| vec!["clone3"]));
    let out = compile(&obs, &Policy::default(), NOW).unwrap();
    let d = &out.decision;
    assert_eq!(d.state, State::Enforce, "{:?}", d.reasons);
    assert_eq!(
        d.reasons,
        vec!["every enforcement bar is met: 25 containers on 3 hosts (needs 20 on 2), 50.00 container-hours (needs 24.00), coverage 1.0000 (needs 0.9900), 100.0 h without a new syscall (needs 24.0 h), 0 of the last 20 containers showed something new (at most 0.1000 allowed), and every syscall used in a relevant phase meets the syscall thresholds or is denied by name".to_string()]
    );
    let allowed = [
        "clone",
        "exit",
        "exit_group",
        "futex",
        "openat",
        "read",
        "restart_syscall",
        "rt_sigreturn",
        "write",
    ];
    assert_eq!(allow_names(&out.profile), allowed);
    assert_eq!(out.profile.default_action, Action::Errno);
    assert_eq!(out.profile.default_errno_ret, Some(1));
    assert_eq!(out.profile.architectures.len(), 1);
    let enosys = out
        .profile
        .syscalls
        .iter()
        .find(|r| r.errno_ret == Some(38))
        .unwrap();
    assert_eq!(enosys.names, enosys_expected(&allowed));
    assert_eq!(out.profile.action_for("clone3"), (Action::Errno, Some(38)));
    assert_eq!(
        get(d, X, "clone").unwrap().verdict,
        Verdict::Allowed {
            reasons: vec![AllowReason::Fallback {
                of: "clone3".into()
            }]
        }
    );
    assert_eq!(
        get(d, X, "read").unwrap().verdict,
        Verdict::Allowed {
            reasons: vec![AllowReason::Observed]
        }
    );
    assert_eq!(
        explain(d, X, "clone3"),
        "app x86_64 clone3: denied with ENOSYS: named in the policy's must_deny (seen in a profile-relevant phase on 3 of 3 host(s), in 25 of 25 container(s) (share 1.0000); 25 call(s) counted in all phases)"
    );
    assert_eq!(
        explain(d, X, "read"),
        "app x86_64 read: allowed (enforce profile): observed and over every threshold: seen in a profile-relevant phase on 3 of 3 host(s), in 25 of 25 container(s) (share 1.0000); 25 call(s) counted in all phases (needs hosts >= 2, containers >= 2, share >= 0.0000)"
    );
    assert_eq!(
        explain(d, X, "mount"),
        "app x86_64 mount: denied with EPERM: never observed in any of 25 container(s) on 3 host(s)"
    );
    assert_eq!(
        explain(d, Abi::I386, "read"),
        "app i386 read: denied: the image was never observed using the i386 ABI (observed: x86_64), so the profile does not list SCMP_ARCH_X86; every i386 call kills the process (SIGSYS), whatever the default action"
    );

    // The files, exactly.
    let name = schemas::slug::image_slug("app");
    let legacy = schemas::slug::legacy("app").kubernetes;
    let json = String::from_utf8(out.files["seccomp.json"].clone()).unwrap();
    assert_eq!(out.content_hash, render::sha256(json.as_bytes()));
    assert_eq!(
        out.files.keys().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from([
            "bpf/x86_64.bpf".to_string(),
            format!("kubelet/sandmine/{name}.json"),
            format!("kubelet/sandmine/{legacy}.json"),
            "seccomp.json".into(),
            "seccompprofile.yaml".into(),
            "systemd.conf".into(),
        ])
    );
    for n in [&name, &legacy] {
        assert_eq!(
            out.files[&format!("kubelet/sandmine/{n}.json")],
            json.as_bytes()
        );
    }
    assert_eq!(oci::parse(&json).unwrap().to_json().unwrap(), json);
    let yaml = String::from_utf8(out.files["seccompprofile.yaml"].clone()).unwrap();
    let mut expected = format!(
        "apiVersion: security-profiles-operator.x-k8s.io/v1beta1\nkind: SeccompProfile\nmetadata:\n  name: {name}\n  annotations:\n    sandmine.io/content-hash: \"{}\"\n    sandmine.io/image: \"app\"\n    sandmine.io/state: \"enforce\"\nspec:\n  defaultAction: SCMP_ACT_ERRNO\n  architectures:\n  - SCMP_ARCH_X86_64\n  syscalls:\n  - action: SCMP_ACT_ALLOW\n    names:\n",
        out.content_hash
    );
    for n in allowed {
        expected.push_str(&format!("    - {n}\n"));
    }
    expected.push_str("  - action: SCMP_ACT_ERRNO\n    errnoRet: 38\n    names:\n");
    for n in enosys_expected(&allowed) {
        expected.push_str(&format!("    - {n}\n"));
    }
    // The same object under the name of earlier releases, for one release.
    let old = expected.replace(&format!("  name: {name}\n"), &format!("  name: {legacy}\n"));
    assert_eq!(yaml, format!("{expected}---\n{old}"));
    let unit = String::from_utf8(out.files["systemd.conf"].clone()).unwrap();
    assert_eq!(
        unit,
        format!(
            "# sandmine profile for app\n# state: enforce; {}\n[Service]\nSystemCallArchitectures=x86-64\nSystemCallErrorNumber=EPERM\n# answered with ENOSYS by the OCI profile, EPERM under systemd: {}\nSystemCallFilter={}\n",
            out.content_hash,
            enosys_expected(&allowed).join(" "),
            allowed.join(" ")
        )
    );
    // The BPF program: 8 bytes per instruction, the same program the
    // filter compiler builds, starting with `ld [4]` (the arch).
    let bpf = &out.files["bpf/x86_64.bpf"];
    let prog = policy_compiler::build_filter_for(
        &out.profile,
        policy_compiler::DefaultOverride::Errno,
        &[Abi::X86_64, Abi::I386, Abi::X32],
    )
    .unwrap();
    assert_eq!(bpf.len(), prog.len() * 8);
    assert_eq!(&bpf[..8], &[0x20, 0, 0, 0, 4, 0, 0, 0]);
    // Every instruction: so the fleet's BPF kills calls of the ABIs the
    // profile does not list (here i386 and x32) as `sandmine run` does.
    let want: Vec<u8> = prog
        .iter()
        .flat_map(|i| {
            let mut b = i.code.to_le_bytes().to_vec();
            b.extend([i.jt, i.jf]);
            b.extend(i.k.to_le_bytes());
            b
        })
        .collect();
    assert_eq!(bpf, &want);
    let kills = prog
        .iter()
        .filter(|i| i.code == 0x06 && i.k == policy_compiler::filter::UNLISTED_ABI_RET)
        .count();
    // One for an unknown arch, one for i386, one for x32.
    assert_eq!(kills, 3, "{prog:?}");
}

#[test]
fn coverage_and_chao2_through_the_compiler() {
    // T = 5 containers on 2 hosts; incidences 5,5,4,2,1,1 (U = 18, Q1 = 2,
    // Q2 = 1): C = 41/45, Chao2 = 6.4.
    let cs = vec![
        c("a", 0, &["read", "write", "futex", "openat"]),
        c("b", 1, &["read", "write", "futex", "openat"]),
        c("a", 2, &["read", "write", "futex", "mmap"]),
        c("b", 3, &["read", "write", "futex", "brk"]),
        c("a", 4, &["read", "write", "openat", "mmap"]),
    ];
    let out = compile(&image("five", &cs), &Policy::default(), 10 * H).unwrap();
    let c = &out.decision.confidence;
    // read 5, write 5, futex 4, openat 3, mmap 2, brk 1: U = 20, Q1 = 1,
    // Q2 = 1, coverage = 1 - (1/20)(4/(4+2)) = 1 - 1/30.
    assert_eq!(
        (
            c.incidence.t,
            c.incidence.u,
            c.incidence.s_obs,
            c.incidence.q1,
            c.incidence.q2
        ),
        (5, 20, 6, 1, 1)
    );
    assert!((c.coverage - (1.0 - 1.0 / 30.0)).abs() < 1e-15);
    // Chao2 = 6 + (4/5) * 0 / 4 = 6.
    assert_eq!(c.chao2, 6.0);
    // Novelty: containers 0 (all new), 2 (mmap), 3 (brk) -> 3 of 5.
    assert_eq!((c.recent_window, c.recent_new), (5, 3));
    assert_eq!(c.quiet_ms, Some(7 * H));
    // 5 containers, 2 hosts: above the log bars, below enforce.
    assert_eq!(out.decision.state, State::Log);
    assert_eq!(out.decision.reasons.len(), 7, "{:?}", out.decision.reasons);
    assert_eq!(
        out.decision.reasons[..2],
        [
            "5 container(s) made a profile-relevant syscall; enforcement needs at least 20"
                .to_string(),
            "10.00 container-hours observed; enforcement needs at least 24.00".to_string(),
        ]
    );
    assert_eq!(
        out.decision.reasons[2],
        "sample coverage is 0.9667 (Q1 = 1, Q2 = 1, U = 20, T = 5); enforcement needs at least 0.9900"
    );
    assert_eq!(
        out.decision.reasons[3],
        "the last new syscall was first seen 7.0 h ago; enforcement needs 24.0 h without a new one"
    );
    assert_eq!(
        out.decision.reasons[4],
        "3 of the last 5 container(s) showed a syscall no earlier container had (share 0.6000); enforcement allows at most 0.1000"
    );
    // mmap: two containers on one host; brk: one container.
    assert_eq!(
        out.decision.reasons[5],
        "x86_64 mmap was used in a relevant phase but is below the syscall thresholds (seen on 1 host(s), the policy needs at least 2); an enforced profile would deny it, so the image stays in log mode until it meets them or the policy names it in must_deny or must_allow"
    );
    assert_eq!(
        out.decision.reasons[6],
        "x86_64 brk was used in a relevant phase but is below the syscall thresholds (seen on 1 host(s), the policy needs at least 2; seen in 1 container(s), the policy needs at least 2); an enforced profile would deny it, so the image stays in log mode until it meets them or the policy names it in must_deny or must_allow"
    );
}

#[test]
fn exact_coverage_hand_computed_case() {
    // 5,5,4,2,1,1 exactly: T = 5, U = 18, Q1 = 2, Q2 = 1.
    let cs = vec![
        c("a", 0, &["read", "write", "futex", "mmap", "brk"]),
        c("b", 1, &["read", "write", "futex", "mmap"]),
        c("a", 2, &["read", "write", "futex", "openat"]),
        c("b", 3, &["read", "write", "futex"]),
        c("a", 4, &["read", "write"]),
    ];
    let out = compile(&image("five", &cs), &Policy::default(), 10 * H).unwrap();
    let c = &out.decision.confidence;
    assert_eq!(
        (
            c.incidence.t,
            c.incidence.u,
            c.incidence.s_obs,
            c.incidence.q1,
            c.incidence.q2
        ),
        (5, 18, 6, 2, 1)
    );
    assert_eq!(c.coverage, 1.0 - (2.0 / 18.0) * (8.0 / 10.0));
    assert!((c.coverage - 41.0 / 45.0).abs() < 1e-15);
    assert!((c.chao2 - 6.4).abs() < 1e-12);
    assert!(out
        .report_text
        .contains("coverage (Chao & Jost 2012): 0.9111   Chao2: 6.40 (observed 6; T = 5, U = 18, Q1 = 2, Q2 = 1)"));
}

#[test]
fn setup_only_calls_do_not_count_and_few_containers_are_not_ready() {
    let mut cs = vec![c("a", 0, &["read", "write"]), c("b", 1, &["read", "write"])];
    cs[0].uses.push((X, "mount", Phase::Setup));
    // A container that never got past set-up is no sampling unit.
    cs.push(C {
        host: "c",
        started_h: 2,
        seccomp: "unconfined",
        uses: vec![(X, "mount", Phase::Setup)],
    });
    let out = compile(&image("tiny", &cs), &Policy::default(), 10 * H).unwrap();
    let d = &out.decision;
    assert_eq!(d.state, State::NotReady);
    assert_eq!(
        d.reasons,
        vec![
            "2 container(s) made a profile-relevant syscall; log mode needs at least 3".to_string()
        ]
    );
    assert!(out.files.is_empty());
    assert_eq!(d.confidence.incidence.s_obs, 2);
    assert_eq!(d.confidence.hosts, 2);
    assert_eq!(d.confidence.store_containers, 3);
    assert_eq!(
        get(d, X, "mount").unwrap().verdict,
        Verdict::Denied {
            reason: DenyReason::NotRelevant,
            errno: 1,
            blocks_enforce: false
        }
    );
    let empty = compile(&image("none", &[]), &Policy::default(), 0).unwrap();
    assert_eq!(empty.decision.state, State::NotReady);
    assert_eq!(
        empty.decision.reasons,
        vec!["no container of none made a syscall after the runtime's set-up (0 container(s) known to the store); nothing to build a profile from".to_string()]
    );
}

#[test]
fn filtered_containers_are_reported_and_runtime_base_and_must_allow_apply() {
    let mut cs = fleet(|_| vec![]);
    for (i, k) in cs.iter_mut().enumerate() {
        if i % 5 == 0 {
            k.seccomp = "runtime/default";
            // Under a filter: the runtime's last steps and the image's own.
            k.uses = BASE.iter().map(|n| (X, *n, Phase::Image)).collect();
            k.uses.push((X, "capset", Phase::Runtime));
            k.uses.push((X, "setns", Phase::Unfiltered)); // a docker exec's set-up
        }
    }
    let mut p = Policy::from_toml(
        "must_allow = [\"getrandom\", \"socketcall\"]\n[runtime]\nname = \"runc\"\nversion = \"1.1.12\"\nbase = { x86_64 = [\"capset\", \"prctl\"], i386 = [\"read\"] }\n",
    )
    .unwrap();
    p.syscall.min_containers = 2;
    let out = compile(&image("f", &cs), &p, NOW).unwrap();
    let d = &out.decision;
    assert_eq!(
        d.filters,
        BTreeMap::from([
            ("runtime/default".to_string(), 5),
            ("unconfined".to_string(), 20)
        ])
    );
    assert_eq!(
        d.notes,
        vec!["5 of 25 container(s) ran under a seccomp filter (runtime/default: 5); a syscall such a filter denies never reaches the collector, so those containers could not show it. Syscalls denied only by those filters stay denied here (they were denied before too).".to_string()]
    );
    assert_eq!(
        d.warnings,
        vec![
            "must_allow: socketcall exists in none of the observed ABIs (x86_64); ignored"
                .to_string()
        ]
    );
    assert_eq!(
        get(d, X, "capset").unwrap().verdict,
        Verdict::Allowed {
            reasons: vec![AllowReason::Observed, AllowReason::RuntimeBase]
        }
    );
    assert_eq!(
        get(d, X, "prctl").unwrap().verdict,
        Verdict::Allowed {
            reasons: vec![AllowReason::RuntimeBase]
        }
    );
    assert_eq!(
        get(d, X, "getrandom").unwrap().verdict,
        Verdict::Allowed {
            reasons: vec![AllowReason::MustAllow]
        }
    );
    // setns in filtered containers is a docker exec's set-up: not relevant.
    assert_eq!(
        get(d, X, "setns").unwrap().verdict,
        Verdict::Denied {
            reason: DenyReason::NotRelevant,
            errno: 1,
            blocks_enforce: false
        }
    );
    assert_eq!(d.state, State::Enforce, "{:?}", d.reasons);
    let m = out.profile.sandmine.as_ref().unwrap();
    assert_eq!(m.runtime, vec!["capset"]);
    assert_eq!(
        m.image,
        vec!["exit_group", "futex", "openat", "read", "write"]
    );
    assert!(out
        .report_text
        .contains("  runtime/default: 5\n  unconfined: 20\n"));
    assert!(explain(d, X, "prctl").contains("in the measured base of the runtime (runc 1.1.12)"));
}

#[test]
fn identical_and_shuffled_input_give_identical_bytes() {
    let cs = fleet(|i| match i % 4 {
        0 => vec!["clone3", "statx"],
        1 => vec!["mmap"],
        2 => vec!["ptrace"],
        _ => vec![],
    });
    let obs = image("registry.example/team/app:2.0", &cs);
    let a = compile(&obs, &Policy::default(), NOW).unwrap();
    let b = compile(&obs, &Policy::default(), NOW).unwrap();
    assert_eq!(a, b);
    let mut shuffled = obs.clone();
    shuffled.incidence.reverse();
    shuffled.incidence.rotate_left(7);
    for k in &mut shuffled.incidence {
        k.syscalls.reverse();
    }
    shuffled.syscalls.reverse();
    let s = compile(&shuffled, &Policy::default(), NOW).unwrap();
    assert_eq!(s.files, a.files);
    assert_eq!(s.report_json, a.report_json);
    assert_eq!(s.report_text, a.report_text);
    assert_eq!(s.content_hash, a.content_hash);
    assert_eq!(s.decision, a.decision);
    assert!(!a.files.is_empty());
}

#[test]
fn allowed_sets_of_a_compile_and_of_its_published_file_agree() {
    let old = compile(
        &image("d", &fleet(|_| vec!["mmap"])),
        &Policy::default(),
        NOW,
    )
    .unwrap();
    let new = compile(
        &image("d", &fleet(|_| vec!["brk"])),
        &Policy::default(),
        NOW,
    )
    .unwrap();
    let (a, b) = (allowed_sets(&old), allowed_sets(&new));
    assert_eq!(a.keys().collect::<Vec<_>>(), vec!["x86_64"]);
    assert_eq!(
        b["x86_64"].difference(&a["x86_64"]).collect::<Vec<_>>(),
        vec!["brk"]
    );
    assert_eq!(
        a["x86_64"].difference(&b["x86_64"]).collect::<Vec<_>>(),
        vec!["mmap"]
    );
    assert_eq!(b["x86_64"].len(), 9);
    // The same sets from the published file.
    let prof = oci::parse(std::str::from_utf8(&old.files["seccomp.json"]).unwrap()).unwrap();
    assert_eq!(allowed_sets_of_profile(&prof), a);
    let _: &Compiled = &new;
}

#[test]
fn i386_calls_are_named_per_abi_and_listed() {
    let cs: Vec<C> = (0..25)
        .map(|i| {
            let mut k = c(["h1", "h2"][i % 2], i as u64, BASE);
            k.uses.push((Abi::I386, "socketcall", Phase::Unfiltered));
            k.uses.push((Abi::I386, "read", Phase::Unfiltered));
            k
        })
        .collect();
    let out = compile(&image("mixed", &cs), &Policy::default(), NOW).unwrap();
    let d = &out.decision;
    assert_eq!(d.abis, vec![Abi::X86_64, Abi::I386]);
    assert_eq!(
        d.allowed_names()[&Abi::I386]
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        vec![
            "exit",
            "exit_group",
            "read",
            "restart_syscall",
            "rt_sigreturn",
            "sigreturn",
            "socketcall"
        ]
    );
    assert!(!d.allowed_names()[&X].contains("socketcall"));
    assert_eq!(d.state, State::Enforce, "{:?}", d.reasons);
    let unit = String::from_utf8(out.files["systemd.conf"].clone()).unwrap();
    assert!(unit.contains("SystemCallArchitectures=x86-64 x86\n"));
    assert!(out.files.contains_key("bpf/x86_64.bpf"));
    assert!(!out.files.contains_key("bpf/aarch64.bpf"));
}

/// `fleet` with containers `from..` marked incomplete (the collector lost
/// some of their calls) and `extra` used by the last (incomplete) one.
fn with_incomplete(from: usize, extra: &[&'static str]) -> ImageObservations {
    let mut cs = fleet(|_| vec![]);
    cs[24]
        .uses
        .extend(extra.iter().map(|n| (X, *n, Phase::Unfiltered)));
    let mut obs = image("registry.example/app:1", &cs);
    for c in &mut obs.incidence[from..] {
        c.incomplete = true;
    }
    obs
}

/// The enforce bars are met only if the incomplete containers count: they
/// do not, so the image stays in log mode, the report and explain say why,
/// and their syscalls still widen the profile (never narrow it).
#[test]
fn incomplete_containers_never_count_toward_enforce_but_widen() {
    // All 25 complete: enforce (the baseline of this fleet).
    let complete = compile(&with_incomplete(25, &[]), &Policy::default(), NOW).unwrap();
    assert_eq!(complete.decision.state, State::Enforce);
    assert_eq!(complete.decision.confidence.incomplete_containers, 0);

    // 15 of 25 incomplete (10 counted); the last also used ptrace.
    let obs = with_incomplete(10, &["ptrace"]);
    let out = compile(&obs, &Policy::default(), NOW).unwrap();
    let d = &out.decision;
    assert_eq!(d.state, State::Log);
    let c = &d.confidence;
    assert_eq!(
        (
            c.containers,
            c.hosts,
            c.store_containers,
            c.incomplete_containers
        ),
        (10, 3, 25, 15)
    );
    // 25 x 2 h in the store, less the 15 incomplete containers' 2 h each.
    assert_eq!(c.container_hours, 20.0);
    assert_eq!(c.incidence.t, 10);
    assert_eq!(
        d.reasons,
        vec![
            "10 container(s) made a profile-relevant syscall (15 more lost calls and are not counted); enforcement needs at least 20".to_string(),
            "20.00 container-hours observed; enforcement needs at least 24.00".to_string(),
        ]
    );
    assert_eq!(
        d.notes,
        vec!["15 of 25 container(s) of registry.example/app:1 are incomplete: the collector lost some of their calls (over capacity), so what they show is a subset of what they did. Their syscalls may widen the profile (allowing more is the safe direction), but they are not counted: not as containers or hosts, not in container-hours, coverage or novelty, and never toward enforcement".to_string()]
    );
    // ptrace, seen only in an incomplete container: allowed, counted nowhere.
    let ptrace = get(d, X, "ptrace").unwrap();
    assert_eq!(
        ptrace.verdict,
        Verdict::Allowed {
            reasons: vec![AllowReason::IncompleteEvidence]
        }
    );
    let st = ptrace.stats.as_ref().unwrap();
    assert_eq!(
        (st.hosts, st.containers, st.incomplete_containers),
        (0, 0, 1)
    );
    assert!(allow_names(&out.profile).contains(&"ptrace".to_string()));
    assert_eq!(
        explain(d, X, "ptrace"),
        "registry.example/app:1 x86_64 ptrace: allowed (log profile): used in a profile-relevant phase by 1 incomplete container(s) (the collector lost some of their calls, so they count toward nothing): allowed, since allowing more is the safe direction; no counted container used it (the image's 10 counted container(s) on 3 host(s))"
    );
    // A syscall every container used: the counted figures say what they
    // leave out.
    assert_eq!(
        explain(d, X, "read"),
        "registry.example/app:1 x86_64 read: allowed (log profile): observed and over every threshold: seen in a profile-relevant phase on 3 of 3 host(s), in 10 of 10 container(s) (share 1.0000); 25 call(s) counted in all phases; the image's 15 incomplete container(s) (calls lost) are not counted in these figures, 15 of them used it (needs hosts >= 2, containers >= 2, share >= 0.0000)"
    );
    assert_eq!(
        explain(d, X, "mount"),
        "registry.example/app:1 x86_64 mount: denied with EPERM once enforced (logged in log mode): never observed in any of 10 container(s) on 3 host(s), nor in the image's 15 incomplete container(s)"
    );
    assert!(
        out.report_text
            .contains("  incomplete (calls lost, not counted): 15 container(s)\n"),
        "{}",
        out.report_text
    );
    assert!(
        out.report_text
            .contains("x86_64 ptrace: 0 0 0.0000 1 -> allow (incomplete containers (not counted))"),
        "{}",
        out.report_text
    );
    assert!(
        out.report_json.contains(r#""incomplete_containers":15"#),
        "{}",
        out.report_json
    );
    // Never narrowing: everything the complete fleet allows is allowed.
    let narrow: Vec<_> = complete.decision.allowed.difference(&d.allowed).collect();
    assert!(narrow.is_empty(), "{narrow:?}");

    // Every container incomplete: nothing counted, not ready.
    let out = compile(&with_incomplete(0, &[]), &Policy::default(), NOW).unwrap();
    assert_eq!(out.decision.state, State::NotReady);
    assert_eq!(
        out.decision.reasons,
        vec!["no container of registry.example/app:1 made a syscall after the runtime's set-up (25 container(s) known to the store, of which 25 lost calls and are not counted); nothing to build a profile from".to_string()]
    );
}

/// Issue 9 item 3: unverified containers (a cgroup not provably its
/// runtime's, so calls possibly forged) are like incomplete ones in that
/// nothing counts them, and unlike them in that their syscalls do not
/// widen the profile either: a forger can neither push an image to
/// enforce nor get a syscall allowed.
#[test]
fn unverified_containers_never_count_and_never_widen() {
    let verified = compile(&with_incomplete(25, &[]), &Policy::default(), NOW).unwrap();
    assert_eq!(verified.decision.state, State::Enforce);

    // 15 of 25 unverified; the last also used ptrace.
    let mut obs = with_incomplete(25, &["ptrace"]);
    for c in &mut obs.incidence[10..] {
        c.unverified = true;
    }
    let out = compile(&obs, &Policy::default(), NOW).unwrap();
    let d = &out.decision;
    assert_eq!(d.state, State::Log);
    let c = &d.confidence;
    assert_eq!(
        (
            c.containers,
            c.hosts,
            c.store_containers,
            c.incomplete_containers,
            c.unverified_containers
        ),
        (10, 3, 25, 0, 15)
    );
    assert_eq!(c.container_hours, 20.0);
    assert_eq!(
        d.reasons,
        vec![
            "10 container(s) made a profile-relevant syscall; enforcement needs at least 20"
                .to_string(),
            "20.00 container-hours observed; enforcement needs at least 24.00".to_string(),
        ]
    );
    assert_eq!(
        d.notes,
        vec!["15 of 25 container(s) of registry.example/app:1 are unverified: their cgroup was not provably their runtime's (a container id under a delegated or foreign parent cgroup, or one the engine does not know), so their calls may be forged. They are stored but not used: not counted as containers or hosts, not in container-hours, coverage or novelty, never toward enforcement, and, unlike incomplete containers, their syscalls do not widen the profile either".to_string()]
    );
    // ptrace, seen only in an unverified container: not allowed.
    assert!(!allow_names(&out.profile).contains(&"ptrace".to_string()));
    assert!(!d.allowed.iter().any(|k| k.nr == 101 && k.abi == X));
    assert!(
        explain(d, X, "ptrace").contains("the image's 15 unverified container(s) (cgroup not provably its runtime's, calls possibly forged) are not consulted at all"),
        "{}",
        explain(d, X, "ptrace")
    );
    // Unverified wins over incomplete: an incomplete and unverified
    // container does not widen either.
    for c in &mut obs.incidence[10..] {
        c.incomplete = true;
    }
    let both = compile(&obs, &Policy::default(), NOW).unwrap();
    assert!(!allow_names(&both.profile).contains(&"ptrace".to_string()));
    assert_eq!(
        (
            both.decision.confidence.incomplete_containers,
            both.decision.confidence.unverified_containers
        ),
        (0, 15)
    );
    assert!(
        out.report_text.contains(
            "  unverified (cgroup not provably its runtime's; not counted, does not widen): 15 container(s)\n"
        ),
        "{}",
        out.report_text
    );
    assert!(
        out.report_json.contains(r#""unverified_containers":15"#),
        "{}",
        out.report_json
    );

    // Every container unverified: nothing counted, not ready.
    let mut all = with_incomplete(25, &[]);
    for c in &mut all.incidence {
        c.unverified = true;
    }
    let out = compile(&all, &Policy::default(), NOW).unwrap();
    assert_eq!(out.decision.state, State::NotReady);
    assert_eq!(
        out.decision.reasons,
        vec!["no container of registry.example/app:1 made a syscall after the runtime's set-up (25 container(s) known to the store, of which 25 are unverified and not used); nothing to build a profile from".to_string()]
    );
}

/// `mode = "log"` (what the publisher compiles for an image an operator
/// forced into log mode): an image whose state is enforce gets a log-mode
/// profile with the same allowed set; the state is still computed and
/// reported, and the policy in the report says `mode = log`.
#[test]
fn mode_log_publishes_an_enforceable_image_in_log_mode() {
    let obs = image("app", &fleet(|_| vec![]));
    let enforced = compile(&obs, &Policy::default(), NOW).unwrap();
    assert_eq!(enforced.decision.state, State::Enforce);
    assert_eq!(enforced.profile.default_action, Action::Errno);
    let policy = Policy::default().resolve().unwrap();
    let logged = compile_image(&obs, &policy.with_mode(policy_compiler::Mode::Log), NOW).unwrap();
    assert_eq!(logged.decision.state, State::Enforce);
    assert!(!logged.decision.enforcing());
    assert_eq!(logged.profile.default_action, Action::Log);
    assert_eq!(logged.profile.default_errno_ret, None);
    assert_eq!(allow_names(&logged.profile), allow_names(&enforced.profile));
    assert_eq!(allowed_sets(&logged), allowed_sets(&enforced));
    assert_ne!(logged.content_hash, enforced.content_hash);
    assert!(
        logged.report_json.contains("\"mode\":\"log\""),
        "{}",
        logged.report_json
    );
    assert!(!enforced.report_json.contains("\"mode\""));
}

/// Syscalls the publisher adds after denials (`on_denials = "add"`) are
/// allowed with the reason, in the profile, the report and `explain`; a
/// must-deny one stays denied, with a warning that the denials go on.
#[test]
fn syscalls_added_after_denials_are_allowed_unless_must_deny_names_them() {
    let cs = fleet(|_| vec![]);
    let p = Policy::from_toml("must_deny = [\"mount\"]\n").unwrap();
    let rp = p.resolve().unwrap().with_after_denials(vec![
        (key(X, "getpgrp"), "denied 10 times on 2 hosts".into()),
        (key(X, "mount"), "denied 4 times on 3 hosts".into()),
    ]);
    let out = compile_image(&image("f", &cs), &rp, NOW).unwrap();
    let d = &out.decision;
    assert_eq!(
        get(d, X, "getpgrp").unwrap().verdict,
        Verdict::Allowed {
            reasons: vec![AllowReason::AfterDenials {
                reason: "denied 10 times on 2 hosts".into()
            }]
        }
    );
    assert!(!allowed_sets(&out)["x86_64"].contains("mount"));
    assert_eq!(
        d.warnings,
        vec!["on_denials = \"add\": x86_64 mount was denied under the enforced profile, but it is in must_deny, so it stays denied and the denials go on".to_string()]
    );
    assert_eq!(d.state, State::Enforce, "{:?}", d.reasons);
    assert!(allowed_sets(&out)["x86_64"].contains("getpgrp"));
    assert!(out
        .report_text
        .lines()
        .any(|l| l.contains("getpgrp") && l.ends_with("allow (added after denials)")));
    assert_eq!(
        explain(d, X, "getpgrp"),
        "f x86_64 getpgrp: allowed (enforce profile): added by the publisher after denials under an enforced profile ([publish] on_denials = \"add\"): denied 10 times on 2 hosts"
    );
    // Without them, getpgrp is not in the profile.
    let plain = compile_image(&image("f", &cs), &p.resolve().unwrap(), NOW).unwrap();
    assert!(!allowed_sets(&plain)["x86_64"].contains("getpgrp"));
}
