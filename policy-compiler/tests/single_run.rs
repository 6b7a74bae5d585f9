//! One mined run compiled as a fleet of one, under the single-host policy:
//! what `sandmine mine` and `mine-image` write.

use policy_compiler::decide::{AllowReason, Verdict};
use policy_compiler::oci::{Metadata, UnnamedSyscall};
use policy_compiler::{compile_image, oci, Action, Compiled, OciProfile, Policy, ScmpArch, State};
use schemas::fleet::ImageObservations;
use schemas::{syscalls, Abi, Observation, Phase, SyscallKey};
use std::collections::BTreeMap;

const ENOSYS: u32 = 38;
const EPERM: u32 = 1;
const T0: u64 = 1_700_000_000_000;

fn nr(abi: Abi, name: &str) -> u32 {
    syscalls::number(abi, name).unwrap_or_else(|| panic!("{abi} has no {name}"))
}

fn obs(entries: &[(Abi, &str, Phase, u64)]) -> Observation {
    let mut o = Observation::default();
    for (abi, name, phase, calls) in entries {
        o.record(*abi, nr(*abi, name), *phase, *calls);
    }
    o
}

fn compile_with(o: &Observation, policy: &Policy) -> Compiled {
    let img =
        ImageObservations::single_run("cmd", "unconfined", o, &BTreeMap::new(), T0, T0 + 5_000);
    compile_image(&img, &policy.resolve().unwrap(), T0 + 5_000).unwrap()
}

/// The single-host policy, without the baseline and the default must-deny
/// list, so that the expected lists are exactly what was observed.
fn bare() -> Policy {
    Policy {
        baseline: false,
        must_deny: Vec::new(),
        ..Policy::single_host()
    }
}

fn profile(o: &Observation, policy: &Policy) -> OciProfile {
    compile_with(o, policy).profile
}

fn allow_rule(p: &OciProfile) -> Vec<String> {
    p.syscalls
        .iter()
        .find(|r| r.action == Action::Allow)
        .map(|r| r.names.clone())
        .unwrap_or_default()
}

fn meta(p: &OciProfile) -> &Metadata {
    p.sandmine.as_ref().unwrap()
}

#[test]
fn filtered_workload_allows_runtime_and_image_only() {
    let o = obs(&[
        (Abi::X86_64, "mount", Phase::Setup, 4),
        (Abi::X86_64, "pivot_root", Phase::Setup, 1),
        (Abi::X86_64, "capset", Phase::Runtime, 1),
        (Abi::X86_64, "execve", Phase::Runtime, 1),
        (Abi::X86_64, "read", Phase::Image, 12),
        (Abi::X86_64, "read", Phase::Setup, 3),
        (Abi::X86_64, "setns", Phase::Unfiltered, 2),
        (Abi::X86_64, "write", Phase::Image, 5),
    ]);
    let p = profile(&o, &bare());
    assert_eq!(allow_rule(&p), vec!["capset", "execve", "read", "write"]);
    assert_eq!(p.default_action, Action::Errno);
    assert_eq!(p.default_errno_ret, Some(EPERM));
    assert_eq!(p.architectures, vec![ScmpArch::from(Abi::X86_64)]);
    let m = meta(&p);
    assert_eq!(m.runtime, vec!["capset", "execve"]);
    assert_eq!(m.image, vec!["read", "write"]);
    assert_eq!(m.setup_excluded, vec!["mount", "pivot_root"]);
    assert_eq!(m.unfiltered_excluded, vec!["setns"]);
    assert_eq!(m.calls[&Abi::X86_64]["read"], 15);
    assert_eq!(
        m.per_abi[&Abi::X86_64],
        vec!["capset", "execve", "read", "write"]
    );
    assert_eq!(m.version, 1);
    assert!(m.generator.starts_with("sandmine "));
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
}

#[test]
fn unfiltered_workload_allows_unfiltered_calls() {
    let o = obs(&[
        (Abi::X86_64, "mount", Phase::Setup, 1),
        (Abi::X86_64, "read", Phase::Unfiltered, 3),
        (Abi::X86_64, "exit_group", Phase::Unfiltered, 1),
    ]);
    let p = profile(&o, &bare());
    assert_eq!(allow_rule(&p), vec!["exit_group", "read"]);
    assert_eq!(meta(&p).image, vec!["exit_group", "read"]);
    assert!(meta(&p).runtime.is_empty());
    assert_eq!(meta(&p).setup_excluded, vec!["mount"]);
}

#[test]
fn union_over_abis_with_exact_per_abi_lists() {
    let o = obs(&[
        (Abi::I386, "socketcall", Phase::Image, 2),
        (Abi::I386, "read", Phase::Image, 1),
        (Abi::X86_64, "socket", Phase::Image, 1),
        (Abi::X86_64, "read", Phase::Image, 1),
    ]);
    let p = profile(&o, &bare());
    assert_eq!(allow_rule(&p), vec!["read", "socket", "socketcall"]);
    assert_eq!(
        p.architectures,
        vec![ScmpArch::from(Abi::X86_64), ScmpArch::from(Abi::I386)]
    );
    let m = meta(&p);
    assert_eq!(m.per_abi[&Abi::X86_64], vec!["read", "socket"]);
    assert_eq!(m.per_abi[&Abi::I386], vec!["read", "socketcall"]);
    let json = p.to_json().unwrap();
    assert!(json.find("\"x86_64\"").unwrap() < json.find("\"i386\"").unwrap());
}

#[test]
fn probes_get_enosys_unless_allowed() {
    let o = obs(&[
        (Abi::X86_64, "read", Phase::Image, 1),
        (Abi::X86_64, "statx", Phase::Image, 1),
    ]);
    let p = profile(&o, &bare());
    let probe = p
        .syscalls
        .iter()
        .find(|r| r.action == Action::Errno)
        .unwrap();
    assert_eq!(probe.errno_ret, Some(ENOSYS));
    assert!(probe.names.contains(&"clone3".to_string()));
    assert!(!probe.names.contains(&"statx".to_string()));
    assert!(probe.names.windows(2).all(|w| w[0] < w[1]));
    assert!(probe
        .names
        .iter()
        .all(|n| syscalls::number(Abi::X86_64, n).is_some()));
    assert_eq!(p.action_for("clone3"), (Action::Errno, Some(ENOSYS)));
    assert_eq!(p.action_for("statx"), (Action::Allow, None));
    p.validate().unwrap();
}

#[test]
fn clone3_is_denied_by_default_and_clone_allowed_in_its_place() {
    let policy = Policy {
        baseline: false,
        ..Policy::single_host()
    };
    let o = obs(&[
        (Abi::X86_64, "read", Phase::Image, 1),
        (Abi::X86_64, "clone3", Phase::Image, 4),
    ]);
    let p = profile(&o, &policy);
    assert_eq!(allow_rule(&p), vec!["clone", "read"]);
    // Denied with ENOSYS, so glibc falls back to clone.
    assert_eq!(p.action_for("clone3"), (Action::Errno, Some(ENOSYS)));
    let m = meta(&p);
    assert_eq!(m.fallback, vec!["clone"]);
    assert_eq!(m.deny, vec!["clone3"]);
    // Not observed: no fallback is added.
    let p = profile(&obs(&[(Abi::X86_64, "read", Phase::Image, 1)]), &policy);
    assert_eq!(allow_rule(&p), vec!["read"]);
    assert!(meta(&p).fallback.is_empty());
}

#[test]
fn baseline_is_allowed_per_observed_abi_unless_denied() {
    let policy = Policy {
        must_deny: vec!["clone3".into(), "restart_syscall".into()],
        ..Policy::single_host()
    };
    let o = obs(&[
        (Abi::X86_64, "read", Phase::Image, 1),
        (Abi::I386, "read", Phase::Image, 1),
    ]);
    let p = profile(&o, &policy);
    assert_eq!(
        allow_rule(&p),
        vec!["exit", "exit_group", "read", "rt_sigreturn", "sigreturn"]
    );
    let m = meta(&p);
    assert_eq!(
        m.baseline,
        vec!["exit", "exit_group", "rt_sigreturn", "sigreturn"]
    );
    // sigreturn exists on i386 only.
    assert!(!m.per_abi[&Abi::X86_64].contains(&"sigreturn".to_string()));
    assert!(m.per_abi[&Abi::I386].contains(&"sigreturn".to_string()));
    // x86_64 alone: sigreturn is neither allowed nor listed as baseline.
    let p = profile(&obs(&[(Abi::X86_64, "read", Phase::Image, 1)]), &policy);
    assert_eq!(
        meta(&p).baseline,
        vec!["exit", "exit_group", "rt_sigreturn"]
    );
}

#[test]
fn unnamed_numbers_are_reported_and_keep_the_image_out_of_enforce() {
    let mut o = obs(&[(Abi::X86_64, "read", Phase::Image, 1)]);
    o.record(Abi::X86_64, 100_000, Phase::Image, 7);
    o.record(Abi::X86_64, 100_001, Phase::Setup, 1);
    o.out_of_range = 3;
    let c = compile_with(&o, &bare());
    let m = meta(&c.profile);
    assert_eq!(
        m.unnamed,
        vec![
            UnnamedSyscall {
                abi: Abi::X86_64,
                nr: 100_000,
                calls: 7
            },
            UnnamedSyscall {
                abi: Abi::X86_64,
                nr: 100_001,
                calls: 1
            },
        ]
    );
    // One warning for the used unnamed number, one for out_of_range.
    assert_eq!(c.profile.warnings().len(), 2, "{:?}", c.profile.warnings());
    assert!(c.profile.warnings()[0].contains("100000"));
    assert_eq!(m.out_of_range, 3);
    // Still an enforcing profile (the single-host mode), of an image in log.
    assert_eq!(c.profile.default_action, Action::Errno);
    assert_eq!(c.decision.state, State::Log);
}

#[test]
fn nothing_relevant_is_not_ready_and_writes_nothing() {
    let c = compile_with(&obs(&[(Abi::X86_64, "mount", Phase::Setup, 1)]), &bare());
    assert_eq!(c.decision.state, State::NotReady);
    assert!(c.files.is_empty());
    let c = compile_with(&Observation::default(), &bare());
    assert_eq!(c.decision.state, State::NotReady);
}

#[test]
fn one_run_is_log_state_with_every_bar_it_misses() {
    let o = obs(&[
        (Abi::X86_64, "read", Phase::Image, 1),
        (Abi::X86_64, "write", Phase::Image, 1),
    ]);
    let c = compile_with(&o, &Policy::single_host());
    assert_eq!(c.decision.state, State::Log);
    assert_eq!(c.decision.confidence.containers, 1);
    assert_eq!(c.decision.confidence.hosts, 1);
    let reasons = c.decision.reasons.join("\n");
    assert!(
        reasons.contains(
            "1 container(s) made a profile-relevant syscall; enforcement needs at least 20"
        ),
        "{reasons}"
    );
    // Every observed syscall is allowed: one container on one host passes
    // the single-host per-syscall thresholds.
    let read = c
        .decision
        .get(SyscallKey {
            abi: Abi::X86_64,
            nr: 0,
        })
        .unwrap();
    assert_eq!(
        read.verdict,
        Verdict::Allowed {
            reasons: vec![AllowReason::Observed]
        }
    );
    assert!(c.files.contains_key("seccomp.json"));
}

#[test]
fn output_is_deterministic_and_parses_back() {
    let entries = [
        (Abi::X86_64, "write", Phase::Image, 2),
        (Abi::I386, "read", Phase::Image, 1),
        (Abi::X86_64, "read", Phase::Runtime, 1),
        (Abi::X86_64, "mount", Phase::Setup, 1),
    ];
    let a = profile(&obs(&entries), &bare()).to_json().unwrap();
    let mut rev = entries;
    rev.reverse();
    let b = profile(&obs(&rev), &bare()).to_json().unwrap();
    assert_eq!(a, b);
    assert!(a.ends_with("}\n"));
    let back = oci::parse(&a).unwrap();
    assert_eq!(back.to_json().unwrap(), a);
}
