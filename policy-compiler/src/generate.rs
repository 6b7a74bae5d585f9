//! The mining core: from what was observed to the profile that allows it.

use crate::oci::Action;
use crate::oci::{Metadata, OciProfile, ScmpArch, SyscallRule, UnnamedSyscall, METADATA_VERSION};
use crate::probes::PROBED;
use crate::{ENOSYS, EPERM};
use schemas::{syscalls, Abi, Observation, Phase, SyscallUse};
use std::collections::{BTreeMap, BTreeSet};

/// What `generator` says in the metadata.
const GENERATOR: &str = concat!("sandmine ", env!("CARGO_PKG_VERSION"));

/// Adjustments to the observed set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenerateOptions {
    /// Names to allow although they were not observed (in every observed
    /// ABI that has them).
    pub extra_allow: Vec<String>,
    /// Names never to allow, even if observed or in `extra_allow`. A denied
    /// probed name still gets `ENOSYS` (see [`crate::probes`]).
    pub deny: Vec<String>,
    /// Also allow [`crate::baseline`], the syscalls made because of
    /// asynchronous events (signals, stop/continue, exit) that mining
    /// cannot aim at. On by default; `deny` still wins.
    pub baseline: bool,
    /// Also deny [`crate::must_deny::DEFAULT_DENY`] (clone3), allowing
    /// each observed entry's fallback instead. On by default.
    pub default_deny: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            extra_allow: Vec::new(),
            deny: Vec::new(),
            baseline: true,
            default_deny: true,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GenerateError {
    #[error("unknown syscall name {name:?} in {option} (no ABI has a syscall of that name)")]
    UnknownName { option: &'static str, name: String },
    #[error("nothing to allow: no syscall was seen after the workload started (only the runtime's set-up, or nothing at all); refusing to write a profile that denies everything")]
    NothingAllowed,
}

/// True when a call seen in these phases must be allowed.
///
/// `Setup` never is: it is the runtime's privileged set-up, which the filter
/// never judges. `Unfiltered` is allowed only when no call went through a
/// filter: then the workload ran unconfined and its post-exec calls are the
/// image's. When some calls were filtered, unfiltered post-exec calls come
/// from elsewhere (e.g. a `docker exec`'s own set-up before its filter).
fn allowed(u: &SyscallUse, saw_filter: bool) -> bool {
    u.phases.contains(Phase::Runtime)
        || u.phases.contains(Phase::Image)
        || (!saw_filter && u.phases.contains(Phase::Unfiltered))
}

/// Build the profile that allows what `obs` saw (see the crate's
/// documentation and `docs/` for the rules). Deterministic: the same
/// observation and options give the same profile, byte for byte once
/// emitted.
///
/// Warnings (unnamed syscalls that should have been allowed, ignored extra
/// names, out-of-range calls) are recorded in `sandmine.warnings`; see
/// [`OciProfile::warnings`].
pub fn generate(obs: &Observation, opts: &GenerateOptions) -> Result<OciProfile, GenerateError> {
    for (option, names) in [("extra_allow", &opts.extra_allow), ("deny", &opts.deny)] {
        if let Some(bad) = names.iter().find(|n| !syscalls::is_known(n)) {
            return Err(GenerateError::UnknownName {
                option,
                name: bad.clone(),
            });
        }
    }
    let mut deny: BTreeSet<&str> = opts.deny.iter().map(String::as_str).collect();
    if opts.default_deny {
        deny.extend(crate::must_deny::DEFAULT_DENY.iter().map(|d| d.name));
    }
    let saw_filter = obs.saw_filter();
    // Fallbacks of observed, denied syscalls, per ABI (see `must_deny`).
    let mut fallback: BTreeMap<Abi, BTreeSet<&'static str>> = BTreeMap::new();

    let mut abis: BTreeSet<Abi> = BTreeSet::new();
    let mut per_abi: BTreeMap<Abi, BTreeSet<String>> = BTreeMap::new();
    let mut calls: BTreeMap<Abi, BTreeMap<String, u64>> = BTreeMap::new();
    let mut runtime = BTreeSet::new();
    let mut image = BTreeSet::new();
    let mut unnamed = Vec::new();
    let mut warnings = Vec::new();
    // Seen but not allowed, by name: true when some such call was made
    // after the first exec (so not only in the set-up).
    let mut excluded: BTreeMap<&str, bool> = BTreeMap::new();

    for (key, u) in &obs.syscalls {
        let is_allowed = allowed(u, saw_filter);
        if is_allowed {
            // An ABI is listed when something of it belongs in the allowed
            // set, even if that is unnamed or denied: the ABI was used.
            abis.insert(key.abi);
        }
        let Some(name) = syscalls::name(key.abi, key.nr) else {
            unnamed.push(UnnamedSyscall {
                abi: key.abi,
                nr: key.nr,
                calls: u.calls,
            });
            if is_allowed {
                warnings.push(format!(
                    "{} syscall {} has no name in sandmine's table and cannot be allowed in a Docker profile",
                    key.abi, key.nr
                ));
            }
            continue;
        };
        *calls
            .entry(key.abi)
            .or_default()
            .entry(name.into())
            .or_default() += u.calls;
        if !is_allowed {
            let after_exec = u.phases.contains(Phase::Unfiltered);
            let e = excluded.entry(name).or_default();
            *e |= after_exec;
            continue;
        }
        if deny.contains(name) {
            if let Some(d) = crate::must_deny::get(name).filter(|_| opts.default_deny) {
                fallback
                    .entry(key.abi)
                    .or_default()
                    .extend(d.fallback.iter().copied());
            }
            continue;
        }
        per_abi.entry(key.abi).or_default().insert(name.into());
        if u.phases.contains(Phase::Runtime) {
            runtime.insert(name.to_string());
        }
        if u.phases.contains(Phase::Image) || (!saw_filter && u.phases.contains(Phase::Unfiltered))
        {
            image.insert(name.to_string());
        }
    }

    if abis.is_empty() {
        return Err(GenerateError::NothingAllowed);
    }
    for abi in &abis {
        per_abi.entry(*abi).or_default();
    }

    let mut fallback_names = BTreeSet::new();
    for (abi, names) in &fallback {
        for name in names {
            if !deny.contains(name) && syscalls::number(*abi, name).is_some() {
                per_abi.entry(*abi).or_default().insert(name.to_string());
                fallback_names.insert(name.to_string());
            }
        }
    }
    let extra: BTreeSet<&str> = opts.extra_allow.iter().map(String::as_str).collect();
    let baseline: BTreeSet<&str> = if opts.baseline {
        crate::baseline::names()
            .filter(|n| !deny.contains(n))
            .collect()
    } else {
        BTreeSet::new()
    };
    for name in &baseline {
        for abi in &abis {
            if syscalls::number(*abi, name).is_some() {
                per_abi.entry(*abi).or_default().insert(name.to_string());
            }
        }
    }
    for name in &extra {
        if deny.contains(name) {
            continue;
        }
        let mut placed = false;
        for abi in &abis {
            if syscalls::number(*abi, name).is_some() {
                per_abi.entry(*abi).or_default().insert(name.to_string());
                placed = true;
            }
        }
        if !placed {
            warnings.push(format!(
                "extra_allow: {name} exists in none of the observed ABIs ({}); ignored",
                abis.iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }

    let allow: BTreeSet<String> = per_abi.values().flatten().cloned().collect();
    let setup_excluded = excluded
        .iter()
        .filter(|(n, after_exec)| !**after_exec && !allow.contains(**n) && !deny.contains(**n))
        .map(|(n, _)| n.to_string())
        .collect();
    let unfiltered_excluded = excluded
        .iter()
        .filter(|(n, after_exec)| **after_exec && !allow.contains(**n) && !deny.contains(**n))
        .map(|(n, _)| n.to_string())
        .collect();

    // Probed names not allowed get ENOSYS; only those that exist in an
    // observed ABI, since a name no listed ABI has would never match.
    let probed: Vec<String> = PROBED
        .iter()
        .map(|p| p.name)
        .filter(|n| !allow.contains(*n))
        .filter(|n| abis.iter().any(|a| syscalls::number(*a, n).is_some()))
        .map(String::from)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();

    if obs.out_of_range > 0 {
        warnings.push(format!(
            "{} calls had numbers outside the capture's table (a newer kernel than this build knows); they cannot be allowed",
            obs.out_of_range
        ));
    }

    let mut rules = Vec::new();
    if !allow.is_empty() {
        rules.push(SyscallRule {
            names: allow.iter().cloned().collect(),
            action: Action::Allow,
            errno_ret: None,
            comment: Some("observed by sandmine".into()),
        });
    }
    if !probed.is_empty() {
        rules.push(SyscallRule {
            names: probed,
            action: Action::Errno,
            errno_ret: Some(ENOSYS),
            comment: Some(
                "denied (not observed, or denied by policy) but probed: ENOSYS makes callers fall back to an older syscall, EPERM would break them".into(),
            ),
        });
    }

    let metadata = Metadata {
        version: METADATA_VERSION,
        generator: GENERATOR.into(),
        runtime: runtime.into_iter().collect(),
        image: image.into_iter().collect(),
        setup_excluded,
        unfiltered_excluded,
        extra_allow: extra.iter().map(|s| s.to_string()).collect(),
        baseline: baseline.iter().map(|s| s.to_string()).collect(),
        fallback: fallback_names.into_iter().collect(),
        deny: deny.iter().map(|s| s.to_string()).collect(),
        per_abi: per_abi
            .into_iter()
            .map(|(a, names)| (a, names.into_iter().collect()))
            .collect(),
        calls,
        unnamed,
        out_of_range: obs.out_of_range,
        warnings,
    };

    Ok(OciProfile {
        default_action: Action::Errno,
        default_errno_ret: Some(EPERM),
        architectures: abis.into_iter().map(ScmpArch::from).collect(),
        arch_map: Vec::new(),
        syscalls: rules,
        sandmine: Some(metadata),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci;

    /// Options without the baseline, so the expected lists stay exactly
    /// what was observed.
    fn bare() -> GenerateOptions {
        GenerateOptions {
            baseline: false,
            default_deny: false,
            ..GenerateOptions::default()
        }
    }

    #[test]
    fn clone3_is_denied_by_default_and_clone_allowed_in_its_place() {
        let o = obs(&[
            (Abi::X86_64, "read", Phase::Image, 1),
            (Abi::X86_64, "clone3", Phase::Image, 4),
        ]);
        let p = generate(
            &o,
            &GenerateOptions {
                baseline: false,
                ..GenerateOptions::default()
            },
        )
        .unwrap();
        assert_eq!(allow_rule(&p), vec!["clone", "read"]);
        // Denied with ENOSYS, so glibc falls back to clone.
        assert_eq!(p.action_for("clone3"), (Action::Errno, Some(ENOSYS)));
        let m = meta(&p);
        assert_eq!(m.fallback, vec!["clone"]);
        assert_eq!(m.deny, vec!["clone3"]);
        // Not observed: no fallback is added.
        let o = obs(&[(Abi::X86_64, "read", Phase::Image, 1)]);
        let p = generate(
            &o,
            &GenerateOptions {
                baseline: false,
                ..GenerateOptions::default()
            },
        )
        .unwrap();
        assert_eq!(allow_rule(&p), vec!["read"]);
        assert!(meta(&p).fallback.is_empty());
    }

    #[test]
    fn baseline_is_allowed_per_observed_abi_unless_denied() {
        let o = obs(&[
            (Abi::X86_64, "read", Phase::Image, 1),
            (Abi::I386, "read", Phase::Image, 1),
        ]);
        let p = generate(
            &o,
            &GenerateOptions {
                deny: vec!["restart_syscall".into()],
                ..GenerateOptions::default()
            },
        )
        .unwrap();
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
    }

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
        assert!(o.saw_filter());
        let p = generate(&o, &bare()).unwrap();
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
        assert!(m.warnings.is_empty());
    }

    #[test]
    fn unfiltered_workload_allows_unfiltered_calls() {
        let o = obs(&[
            (Abi::X86_64, "mount", Phase::Setup, 1),
            (Abi::X86_64, "read", Phase::Unfiltered, 3),
            (Abi::X86_64, "exit_group", Phase::Unfiltered, 1),
        ]);
        assert!(!o.saw_filter());
        let p = generate(&o, &bare()).unwrap();
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
        let p = generate(&o, &bare()).unwrap();
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
        let p = generate(&o, &bare()).unwrap();
        let probe = p
            .syscalls
            .iter()
            .find(|r| r.action == Action::Errno)
            .unwrap();
        assert_eq!(probe.errno_ret, Some(ENOSYS));
        assert!(probe.names.contains(&"clone3".to_string()));
        assert!(!probe.names.contains(&"statx".to_string()));
        assert!(probe.names.windows(2).all(|w| w[0] < w[1]));
        // Every probed name is one the observed ABI has.
        assert!(probe
            .names
            .iter()
            .all(|n| syscalls::number(Abi::X86_64, n).is_some()));
        assert_eq!(p.action_for("clone3"), (Action::Errno, Some(ENOSYS)));
        assert_eq!(p.action_for("statx"), (Action::Allow, None));
        // The profile is valid by the parser's rules.
        p.validate().unwrap();
    }

    #[test]
    fn options_allow_and_deny() {
        let o = obs(&[
            (Abi::X86_64, "read", Phase::Image, 1),
            (Abi::X86_64, "ptrace", Phase::Image, 1),
            (Abi::X86_64, "clone3", Phase::Image, 1),
        ]);
        let opts = GenerateOptions {
            extra_allow: vec!["write".into(), "ptrace".into(), "socketcall".into()],
            deny: vec!["ptrace".into(), "clone3".into()],
            baseline: false,
            default_deny: false,
        };
        let p = generate(&o, &opts).unwrap();
        assert_eq!(allow_rule(&p), vec!["read", "write"]);
        // A denied probed name still gets ENOSYS.
        assert_eq!(p.action_for("clone3"), (Action::Errno, Some(ENOSYS)));
        assert_eq!(p.action_for("ptrace"), (Action::Errno, Some(EPERM)));
        let m = meta(&p);
        assert_eq!(m.deny, vec!["clone3", "ptrace"]);
        assert_eq!(m.extra_allow, vec!["ptrace", "socketcall", "write"]);
        // socketcall is i386-only: nothing to allow it on.
        assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
        assert!(m.warnings[0].contains("socketcall"));
        assert!(m.image.iter().all(|n| n != "ptrace" && n != "clone3"));

        let bad = GenerateOptions {
            deny: vec!["nope".into()],
            ..bare()
        };
        assert_eq!(
            generate(&o, &bad).unwrap_err(),
            GenerateError::UnknownName {
                option: "deny",
                name: "nope".into()
            }
        );
        let bad = GenerateOptions {
            extra_allow: vec!["sokcet".into()],
            ..bare()
        };
        assert!(generate(&o, &bad)
            .unwrap_err()
            .to_string()
            .contains("\"sokcet\""));
    }

    #[test]
    fn unnamed_numbers_are_reported() {
        let mut o = obs(&[(Abi::X86_64, "read", Phase::Image, 1)]);
        o.record(Abi::X86_64, 100_000, Phase::Image, 7);
        o.record(Abi::X86_64, 100_001, Phase::Setup, 1);
        o.out_of_range = 3;
        let p = generate(&o, &bare()).unwrap();
        let m = meta(&p);
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
        // One warning for the allowed unnamed number, one for out_of_range.
        assert_eq!(p.warnings().len(), 2, "{:?}", p.warnings());
        assert!(p.warnings()[0].contains("100000"));
        assert_eq!(m.out_of_range, 3);
    }

    #[test]
    fn nothing_allowed_is_an_error() {
        assert_eq!(
            generate(&Observation::default(), &bare()).unwrap_err(),
            GenerateError::NothingAllowed
        );
        let o = obs(&[(Abi::X86_64, "mount", Phase::Setup, 1)]);
        assert_eq!(
            generate(&o, &bare()).unwrap_err(),
            GenerateError::NothingAllowed
        );
    }

    #[test]
    fn output_is_deterministic_and_parses_back() {
        let entries = [
            (Abi::X86_64, "write", Phase::Image, 2),
            (Abi::I386, "read", Phase::Image, 1),
            (Abi::X86_64, "read", Phase::Runtime, 1),
            (Abi::X86_64, "mount", Phase::Setup, 1),
        ];
        let a = generate(&obs(&entries), &bare())
            .unwrap()
            .to_json()
            .unwrap();
        let mut rev = entries;
        rev.reverse();
        let b = generate(&obs(&rev), &bare()).unwrap().to_json().unwrap();
        assert_eq!(a, b);
        assert!(a.ends_with("}\n"));
        let back = oci::parse(&a).unwrap();
        assert_eq!(back.to_json().unwrap(), a);
    }
}
