//! What a Docker/OCI profile means on one host, as Docker applies it, and a
//! pure evaluator of that meaning.
//!
//! Docker applies a profile in three steps, and [`OciProfile::resolve`]
//! models each:
//!
//! 1. **dockerd** evaluates `includes` and `excludes` ([`Conditions`]):
//!    against the container's bounding capability set, the daemon's own
//!    architecture (Go's name for it: `amd64`, `arm64`...) and the host
//!    kernel's `<kernel>.<major>` from uname. A rule is dropped when its
//!    `excludes` holds (any listed cap in the bounding set, the arch listed,
//!    the kernel at least `minKernel`) or its `includes` does not (every
//!    listed cap in the bounding set, the arch listed, the kernel at least
//!    `minKernel`). `architectures`, or the `archMap` entry of the native
//!    arch, gives the architectures.
//! 2. **runc** hands each (rule, name) to libseccomp, with its quirks:
//!    - a name libseccomp cannot resolve is ignored (here: a name no ABI in
//!      sandmine's tables has, [`OciProfile::unknown_names`]);
//!    - a rule whose action (with its errno) equals the default action is
//!      dropped;
//!    - a rule whose `args` name one argument index twice is split into
//!      one rule per comparison, which libseccomp ORs;
//!    - when the default action is not allow-like (ALLOW, LOG) and the
//!      profile lists architectures, every syscall number above the
//!      highest one the rules name for that ABI (all rules, the dropped
//!      ones too) answers ENOSYS: runc prepends that stub so that programs
//!      fall back from syscalls newer than the profile.
//! 3. **libseccomp** compares arguments as 64-bit numbers on x86_64 and
//!    aarch64, and as their low 32 bits on i386 and x32 (see
//!    [`crate::oci::wide_args`]); of
//!    several rules for one syscall, an unconditional one wins over rules
//!    with arguments whatever the order (it replaces their tree), and rules
//!    with arguments are ORed.
//!
//! What is refused rather than modelled: two unconditional rules for one
//! syscall with different outcomes (libseccomp silently keeps the first),
//! and rules with arguments for one syscall with different outcomes
//! (libseccomp's answer depends on how it merges its rule trees, or it
//! fails with EEXIST).
//!
//! [`EffectiveProfile::verdict`] evaluates the result for one call; the BPF
//! program [`crate::filter::build_effective`] compiles from it must agree
//! (the filter's tests run both).

use crate::filter::DefaultOverride;
use crate::oci::{
    docker_arch, rule_context, wide_args, Action, ArgCmp, KernelVersion, OciProfile, ProfileError,
    RuleCondition, CAPABILITIES,
};
use crate::ENOSYS;
use schemas::abi::X32_SYSCALL_BIT;
use schemas::{syscalls, Abi};
use std::collections::{BTreeMap, BTreeSet};

/// An action and the errno it carries (for ERRNO).
pub type Outcome = (Action, Option<u32>);

/// What a call of an ABI the profile does not list gets (the filter's
/// [`crate::filter::UNLISTED_ABI_RET`]).
pub const UNLISTED: Outcome = (Action::KillProcess, None);

/// What dockerd judges `includes` and `excludes` against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conditions {
    /// The bounding capability set, as `CAP_*` names.
    pub caps: BTreeSet<String>,
    /// The native ABI: dockerd's architecture, and the one an empty
    /// `architectures` list means.
    pub native: Abi,
    /// The host kernel, `<kernel>.<major>`.
    pub kernel: KernelVersion,
}

impl Conditions {
    /// Conditions from a bounding set as a capability bit mask (the
    /// `CapBnd` line of `/proc/self/status`). Bits above the last known
    /// capability are ignored.
    pub fn from_bounding_mask(mask: u64, native: Abi, kernel: KernelVersion) -> Conditions {
        Conditions {
            caps: CAPABILITIES
                .iter()
                .enumerate()
                .filter(|(bit, _)| mask >> bit & 1 == 1)
                .map(|(_, name)| name.to_string())
                .collect(),
            native,
            kernel,
        }
    }

    /// dockerd's test of one rule: false when it drops the rule.
    fn keep(&self, includes: &RuleCondition, excludes: &RuleCondition) -> bool {
        let arch = docker_arch(self.native);
        let kernel_at_least = |v: &Option<KernelVersion>| v.is_some_and(|v| self.kernel >= v);
        let excluded = excludes.arches.iter().any(|a| a == arch)
            || excludes.caps.iter().any(|c| self.caps.contains(c))
            || kernel_at_least(&excludes.min_kernel);
        let included = (includes.arches.is_empty() || includes.arches.iter().any(|a| a == arch))
            && includes.caps.iter().all(|c| self.caps.contains(c))
            && (includes.min_kernel.is_none() || kernel_at_least(&includes.min_kernel));
        !excluded && included
    }
}

/// One rule with argument comparisons, as libseccomp gets it: all of
/// `cmps` must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgRule {
    pub cmps: Vec<ArgCmp>,
    pub outcome: Outcome,
}

/// How calls of one syscall number are judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Judgement {
    /// Always this outcome.
    Always(Outcome),
    /// The outcome of the first rule whose comparisons all hold (they all
    /// have the same one), else the default.
    Args(Vec<ArgRule>),
}

/// A profile as applied on one host: see the module documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EffectiveProfile {
    /// What calls no rule judges get (after `sandmine run --action`).
    pub default: Outcome,
    /// The ABIs the profile's rules judge; calls of others get
    /// [`UNLISTED`].
    pub abis: Vec<Abi>,
    /// Per listed ABI and syscall number (x32 numbers with
    /// `X32_SYSCALL_BIT`), the judgement of every number some rule names.
    pub syscalls: BTreeMap<Abi, BTreeMap<u32, Judgement>>,
    /// runc's ENOSYS stub: per ABI, numbers above this answer ENOSYS
    /// (empty when runc adds no stub).
    pub enosys_above: BTreeMap<Abi, u32>,
    /// Names no ABI has, ignored.
    pub ignored: Vec<String>,
    /// Rules dockerd's conditions dropped, by context ("syscalls rule 3
    /// (bpf, clone, ...)").
    pub excluded_rules: Vec<String>,
}

impl OciProfile {
    /// The profile as Docker applies it under `conditions`, with the
    /// profile's own default action.
    pub fn resolve(&self, conditions: &Conditions) -> Result<EffectiveProfile, ProfileError> {
        self.resolve_with(conditions, DefaultOverride::Errno)
    }

    /// [`OciProfile::resolve`], with the default action replaced as
    /// `sandmine run --action` asks: rules equal to the resulting default
    /// are the ones dropped, so a rule's own errno survives `--action log`.
    pub fn resolve_with(
        &self,
        conditions: &Conditions,
        over: DefaultOverride,
    ) -> Result<EffectiveProfile, ProfileError> {
        self.check()?;
        let default: Outcome = match over {
            DefaultOverride::Errno => (self.default_action, self.default_errno()),
            DefaultOverride::Kill => (Action::KillProcess, None),
            DefaultOverride::Log => (Action::Log, None),
        };
        let same = |a: Outcome, b: Outcome| {
            crate::filter::ret_value(a.0, a.1) == crate::filter::ret_value(b.0, b.1)
        };

        let mut excluded_rules = Vec::new();
        // (context, rule) of the rules dockerd keeps, in order.
        let mut kept = Vec::new();
        for (i, rule) in self.syscalls.iter().enumerate() {
            let ctx = rule_context(i, &rule.names);
            if conditions.keep(&rule.includes, &rule.excludes) {
                kept.push((ctx, rule));
            } else {
                excluded_rules.push(ctx);
            }
        }

        let abis = self.abis(conditions.native);
        // runc's stub covers the architectures dockerd hands it: none when
        // the profile lists none (libseccomp's native default).
        let has_arch_list = !self.architectures.is_empty()
            || self
                .arch_map
                .iter()
                .any(|e| e.architecture.abi() == Some(conditions.native));
        let allow_like = matches!(default.0, Action::Allow | Action::Log);

        let mut syscalls = BTreeMap::new();
        let mut enosys_above = BTreeMap::new();
        for abi in &abis {
            let abi = *abi;
            let wide = wide_args(abi);
            let number = |name: &str| {
                syscalls::number(abi, name).map(|nr| {
                    if abi == Abi::X32 {
                        nr | X32_SYSCALL_BIT
                    } else {
                        nr
                    }
                })
            };
            // Per number: (context, comparisons (None: unconditional), outcome).
            type Entry<'a> = (&'a str, Option<Vec<ArgCmp>>, Outcome);
            let mut per_nr: BTreeMap<u32, Vec<Entry>> = BTreeMap::new();
            let mut largest = 0u32;
            for (ctx, rule) in &kept {
                let outcome: Outcome = (rule.action, rule.errno());
                for name in &rule.names {
                    let Some(nr) = number(name) else { continue };
                    largest = largest.max(nr);
                    if same(outcome, default) {
                        continue;
                    }
                    // runc's split first, then libseccomp drops the
                    // comparisons that always hold: a rule left without
                    // any is unconditional.
                    let mut seen = BTreeSet::new();
                    let repeats = rule.args.iter().any(|c| !seen.insert(c.index));
                    let pieces: Vec<Vec<ArgCmp>> = if repeats {
                        rule.args.iter().map(|c| vec![*c]).collect()
                    } else {
                        vec![rule.args.clone()]
                    };
                    let entries = per_nr.entry(nr).or_default();
                    for piece in pieces {
                        let cmps: Vec<ArgCmp> = piece
                            .into_iter()
                            .filter(|c| !c.is_tautology(wide))
                            .collect();
                        let cmps = (!cmps.is_empty()).then_some(cmps);
                        entries.push((ctx.as_str(), cmps, outcome));
                    }
                }
            }
            if has_arch_list && !allow_like && largest != 0 {
                enosys_above.insert(abi, largest);
            }
            let mut table = BTreeMap::new();
            for (nr, entries) in per_nr {
                let name = || {
                    syscalls::name(abi, nr & !X32_SYSCALL_BIT)
                        .unwrap_or("?")
                        .to_string()
                };
                let mut unconditional = entries.iter().filter(|e| e.1.is_none());
                let judgement = if let Some(first) = unconditional.next() {
                    if let Some(other) = unconditional.find(|e| !same(e.2, first.2)) {
                        return Err(ProfileError::ConflictingRules {
                            name: name(),
                            first: first.0.to_string(),
                            second: other.0.to_string(),
                        });
                    }
                    Judgement::Always(first.2)
                } else {
                    let first = &entries[0];
                    if let Some(other) = entries.iter().find(|e| !same(e.2, first.2)) {
                        return Err(ProfileError::AmbiguousConditionalRules {
                            name: name(),
                            first: first.0.to_string(),
                            second: other.0.to_string(),
                        });
                    }
                    Judgement::Args(
                        entries
                            .into_iter()
                            .map(|(_, cmps, outcome)| ArgRule {
                                cmps: cmps.unwrap_or_default(),
                                outcome,
                            })
                            .collect(),
                    )
                };
                table.insert(nr, judgement);
            }
            syscalls.insert(abi, table);
        }

        Ok(EffectiveProfile {
            default,
            abis,
            syscalls,
            enosys_above,
            ignored: self.unknown_names().into_iter().map(String::from).collect(),
            excluded_rules,
        })
    }
}

impl EffectiveProfile {
    /// What a call of syscall `nr` of `abi` (x32 numbers with
    /// `X32_SYSCALL_BIT`) with these arguments gets: the action and, for
    /// ERRNO, the errno. The filter compiled from this profile returns the
    /// same, for every input.
    ///
    /// x86_64 and x32 calls share an audit arch, so the number decides:
    /// at or above `X32_SYSCALL_BIT` an x32 call, below it (and -1, a
    /// tracer's "skip") an x86_64 one, whichever `abi` says. runc's stub
    /// comes first, then the ABI's listing, then the rules.
    pub fn verdict(&self, abi: Abi, nr: u32, args: [u64; 6]) -> Outcome {
        if let Some(above) = self.stub_threshold(abi, nr) {
            if nr > above {
                return (Action::Errno, Some(ENOSYS));
            }
        }
        let abi = match abi {
            Abi::X86_64 | Abi::X32 if nr == u32::MAX => Abi::X86_64,
            Abi::X86_64 | Abi::X32 if nr >= X32_SYSCALL_BIT => Abi::X32,
            Abi::X86_64 | Abi::X32 => Abi::X86_64,
            a => a,
        };
        if !self.abis.contains(&abi) {
            return UNLISTED;
        }
        match self.syscalls.get(&abi).and_then(|t| t.get(&nr)) {
            None => self.default,
            Some(Judgement::Always(o)) => *o,
            Some(Judgement::Args(rules)) => {
                let wide = wide_args(abi);
                rules
                    .iter()
                    .find(|r| {
                        r.cmps
                            .iter()
                            .all(|c| c.matches(args[usize::from(c.index)], wide))
                    })
                    .map_or(self.default, |r| r.outcome)
            }
        }
    }

    /// The ENOSYS threshold that applies to number `nr` arriving as `abi`:
    /// x86_64 and x32 share an audit arch, and runc's stub tells them apart
    /// by the x32 bit alone.
    fn stub_threshold(&self, abi: Abi, nr: u32) -> Option<u32> {
        let key = match abi {
            Abi::X86_64 | Abi::X32 if nr & X32_SYSCALL_BIT != 0 => Abi::X32,
            Abi::X86_64 | Abi::X32 => Abi::X86_64,
            a => a,
        };
        self.enosys_above.get(&key).copied()
    }

    /// True when some call of syscall `name` of `abi` can run (ALLOW or
    /// LOG) under this profile, whatever its arguments.
    pub fn may_let_through(&self, abi: Abi, name: &str) -> bool {
        let lets = |o: &Outcome| matches!(o.0, Action::Allow | Action::Log);
        let Some(nr) = syscalls::number(abi, name) else {
            return false;
        };
        let nr = if abi == Abi::X32 {
            nr | X32_SYSCALL_BIT
        } else {
            nr
        };
        match self.syscalls.get(&abi).and_then(|t| t.get(&nr)) {
            _ if !self.abis.contains(&abi) => false,
            None => lets(&self.verdict(abi, nr, [0; 6])),
            Some(Judgement::Always(o)) => lets(o),
            Some(Judgement::Args(rules)) => {
                lets(&self.default) || rules.iter().any(|r| lets(&r.outcome))
            }
        }
    }
}

/// True when a call with this outcome runs: ALLOW, or LOG (it runs and
/// is logged).
pub fn runs(o: Outcome) -> bool {
    matches!(o.0, Action::Allow | Action::Log)
}

/// An outcome in words: `allow`, `log`, `errno N`, `kill_process`,
/// `kill_thread`, `trap`.
pub fn outcome_text(o: Outcome) -> String {
    match o.0 {
        Action::Allow => "allow".into(),
        Action::Log => "log".into(),
        Action::Errno => format!("errno {}", o.1.unwrap_or(crate::EPERM)),
        Action::KillProcess => "kill_process".into(),
        Action::KillThread | Action::Kill => "kill_thread".into(),
        Action::Trap => "trap".into(),
    }
}

/// How a profile judges every call of one syscall, as far as that is
/// known without its arguments ([`EffectiveProfile::judge`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyscallVerdict {
    /// Argument rules (ORed): a call whose arguments satisfy every
    /// comparison of one of them gets that rule's outcome. Empty when the
    /// arguments do not matter.
    pub deciding: Vec<ArgRule>,
    /// What a call gets when no rule of `deciding` holds: every call, when
    /// `deciding` is empty.
    pub otherwise: Outcome,
}

/// A [`SyscallVerdict`] in one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum VerdictClass {
    /// Every call is denied (errno, kill or trap), whatever its arguments.
    Denied,
    /// Some argument values run, others are denied: which, the arguments
    /// decide.
    Unknown,
    /// Every call runs (allowed or logged), whatever its arguments.
    Runs,
}

impl SyscallVerdict {
    /// Every outcome a call can get: the rules' (in order), then
    /// `otherwise`; without duplicates.
    pub fn outcomes(&self) -> Vec<Outcome> {
        let mut v: Vec<Outcome> = Vec::new();
        for o in self
            .deciding
            .iter()
            .map(|r| r.outcome)
            .chain([self.otherwise])
        {
            if !v.contains(&o) {
                v.push(o);
            }
        }
        v
    }

    pub fn class(&self) -> VerdictClass {
        let outcomes = self.outcomes();
        if outcomes.iter().all(|o| runs(*o)) {
            VerdictClass::Runs
        } else if outcomes.iter().any(|o| runs(*o)) {
            VerdictClass::Unknown
        } else {
            VerdictClass::Denied
        }
    }

    /// When the arguments decide: "allow if arg0 == 0 or arg0 == 8; else
    /// errno 1"; empty when they do not. Comparisons are libseccomp's
    /// (`MASKED_EQ`: `arg & mask == value & mask`); `wide` is false for
    /// i386, whose arguments are compared on their low 32 bits.
    pub fn conditions_text(&self) -> String {
        if self.deciding.is_empty() {
            return String::new();
        }
        // Rules with one outcome (resolve refuses mixed ones) are ORed.
        let mut parts: Vec<String> = Vec::new();
        let mut i = 0;
        while i < self.deciding.len() {
            let o = self.deciding[i].outcome;
            let mut alts = Vec::new();
            while i < self.deciding.len() && self.deciding[i].outcome == o {
                let r = &self.deciding[i];
                alts.push(if r.cmps.is_empty() {
                    "always".to_string()
                } else {
                    r.cmps
                        .iter()
                        .map(cmp_text)
                        .collect::<Vec<_>>()
                        .join(" and ")
                });
                i += 1;
            }
            parts.push(format!("{} if {}", outcome_text(o), alts.join(" or ")));
        }
        parts.push(format!("else {}", outcome_text(self.otherwise)));
        parts.join("; ")
    }
}

/// One comparison as libseccomp applies it: `arg1 == 8`,
/// `arg0 & 0x7e020000 == 0`. Values below 65536 in decimal, the others in
/// hexadecimal.
pub fn cmp_text(c: &ArgCmp) -> String {
    use crate::oci::CmpOp;
    let num = |v: u64| {
        if v < 0x1_0000 {
            v.to_string()
        } else {
            format!("{v:#x}")
        }
    };
    let a = format!("arg{}", c.index);
    match c.op {
        CmpOp::Ne => format!("{a} != {}", num(c.value)),
        CmpOp::Lt => format!("{a} < {}", num(c.value)),
        CmpOp::Le => format!("{a} <= {}", num(c.value)),
        CmpOp::Eq => format!("{a} == {}", num(c.value)),
        CmpOp::Ge => format!("{a} >= {}", num(c.value)),
        CmpOp::Gt => format!("{a} > {}", num(c.value)),
        CmpOp::MaskedEq => format!("{a} & {} == {}", num(c.value), num(c.value_two & c.value)),
    }
}

impl EffectiveProfile {
    /// How every call of syscall `nr` of `abi` is judged, without its
    /// arguments: what [`EffectiveProfile::verdict`] answers for some
    /// arguments, for all of them. `nr` is the number of the syscall
    /// tables (and of the store): x32 numbers without `X32_SYSCALL_BIT`.
    /// runc's ENOSYS stub and an unlisted ABI are unconditional; an
    /// argument rule makes the arguments decide, whether or not any value
    /// can satisfy it (never a guess that they cannot).
    pub fn judge(&self, abi: Abi, nr: u32) -> SyscallVerdict {
        let n = if abi == Abi::X32 {
            nr | X32_SYSCALL_BIT
        } else {
            nr
        };
        let always = |o: Outcome| SyscallVerdict {
            deciding: Vec::new(),
            otherwise: o,
        };
        if let Some(above) = self.stub_threshold(abi, n) {
            if n > above {
                return always((Action::Errno, Some(ENOSYS)));
            }
        }
        if !self.abis.contains(&abi) {
            return always(UNLISTED);
        }
        match self.syscalls.get(&abi).and_then(|t| t.get(&n)) {
            None => always(self.default),
            Some(Judgement::Always(o)) => always(*o),
            Some(Judgement::Args(rules)) => SyscallVerdict {
                deciding: rules.clone(),
                otherwise: self.default,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::tests::{run_args, verify};
    use crate::filter::{build_effective, ret_value};
    use crate::oci::{CmpOp, ScmpArch, SyscallRule};
    use crate::EPERM;

    const HOST: &[Abi] = &[Abi::X86_64, Abi::I386, Abi::X32];
    const DOCKER_DEFAULT: &str = include_str!("../tests/fixtures/docker/default-v20.10.24.json");

    /// Docker 20.10's default bounding set (`docker run` without --cap-add).
    const DOCKER_CAPS: &[&str] = &crate::oci::DOCKER_DEFAULT_CAPS;

    fn conditions(caps: &[&str], kernel: (u64, u64)) -> Conditions {
        Conditions {
            caps: caps.iter().map(|c| c.to_string()).collect(),
            native: Abi::X86_64,
            kernel: KernelVersion {
                kernel: kernel.0,
                major: kernel.1,
            },
        }
    }

    fn nr(abi: Abi, name: &str) -> u32 {
        let n = syscalls::number(abi, name).unwrap_or_else(|| panic!("{abi} has no {name}"));
        if abi == Abi::X32 {
            n | X32_SYSCALL_BIT
        } else {
            n
        }
    }

    fn v(eff: &EffectiveProfile, abi: Abi, name: &str, args: &[u64]) -> Outcome {
        let mut a = [0u64; 6];
        a[..args.len()].copy_from_slice(args);
        eff.verdict(abi, nr(abi, name), a)
    }

    const ALLOW: Outcome = (Action::Allow, None);
    const EPERM_O: Outcome = (Action::Errno, Some(EPERM));
    const ENOSYS_O: Outcome = (Action::Errno, Some(ENOSYS));

    /// Argument values near every boundary the comparisons have.
    const EDGES: &[u64] = &[
        0,
        1,
        2,
        7,
        8,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_fffe,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0001,
        0x1_ffff_ffff,
        0x7e02_0000,
        0x1000_0000,
        0xffff_ffff_0000_0000,
        0xffff_ffff_ffff_fffe,
        u64::MAX,
    ];

    /// The BPF program and the evaluator answer alike for every `(abi,
    /// nr)` of `numbers` with each of `arg_sets`.
    fn agree(eff: &EffectiveProfile, numbers: &[(Abi, u32)], arg_sets: &[[u64; 6]]) {
        let prog = build_effective(eff, HOST).expect("compiles");
        verify(&prog);
        for (abi, n) in numbers {
            for args in arg_sets {
                let want = eff.verdict(*abi, *n, *args);
                let got = run_args(&prog, *n, abi.audit_arch(), *args);
                assert_eq!(
                    got,
                    ret_value(want.0, want.1),
                    "{abi} nr {n:#x} args {args:x?}: BPF {got:#x}, evaluator {want:?}"
                );
            }
        }
    }

    /// Every number 0..600 of every host ABI (x32 with its bit), and a few
    /// outliers.
    fn all_numbers() -> Vec<(Abi, u32)> {
        let mut v = Vec::new();
        for abi in HOST {
            for n in (0..600).chain([1000, 0x3fff_ffff, 0x7fff_ffff, 0x8000_0000, u32::MAX]) {
                let n = if *abi == Abi::X32 {
                    n | X32_SYSCALL_BIT
                } else {
                    n
                };
                v.push((*abi, n));
            }
        }
        v
    }

    /// Argument vectors: each argument index at each edge (others 0).
    fn edge_arg_sets() -> Vec<[u64; 6]> {
        let mut sets = vec![[0u64; 6]];
        for i in 0..6 {
            for e in EDGES {
                let mut a = [0u64; 6];
                a[i] = *e;
                sets.push(a);
            }
        }
        sets
    }

    #[test]
    fn docker_default_resolves_like_dockerd() {
        let prof = OciProfile::parse(DOCKER_DEFAULT).unwrap();
        let eff = prof.resolve(&conditions(DOCKER_CAPS, (6, 18))).unwrap();
        let x = Abi::X86_64;
        assert_eq!(eff.abis, vec![Abi::X86_64, Abi::I386, Abi::X32]);
        assert_eq!(eff.default, EPERM_O);
        // Names no ABI of sandmine's has: ignored, as runc does.
        assert_eq!(
            eff.ignored,
            vec![
                "arm_fadvise64_64",
                "arm_sync_file_range",
                "breakpoint",
                "cacheflush",
                "recv",
                "s390_pci_mmio_read",
                "s390_pci_mmio_write",
                "s390_runtime_instr",
                "send",
                "set_tls",
                "sync_file_range2"
            ]
        );
        // personality: five EQ rules, ORed.
        for ok in [0, 8, 0x20000, 0x20008, 0xffff_ffff] {
            assert_eq!(v(&eff, x, "personality", &[ok]), ALLOW, "{ok:#x}");
        }
        for bad in [1, 9, 0x1_0000_0000, 0x1_0000_0008, u64::MAX] {
            assert_eq!(v(&eff, x, "personality", &[bad]), EPERM_O, "{bad:#x}");
        }
        // ... and on i386 only the low word counts.
        assert_eq!(v(&eff, Abi::I386, "personality", &[0x1_0000_0008]), ALLOW);
        // clone without CAP_SYS_ADMIN: no namespace flags.
        assert_eq!(v(&eff, x, "clone", &[17]), ALLOW);
        assert_eq!(v(&eff, x, "clone", &[0x1000_0011]), EPERM_O);
        assert_eq!(v(&eff, x, "clone", &[0x1_0000_0011]), ALLOW);
        assert_eq!(v(&eff, x, "clone3", &[]), ENOSYS_O);
        assert_eq!(v(&eff, x, "bpf", &[]), EPERM_O);
        assert_eq!(v(&eff, x, "chroot", &[]), ALLOW); // CAP_SYS_CHROOT
        assert_eq!(v(&eff, x, "ptrace", &[]), ALLOW); // minKernel 4.8
        assert_eq!(v(&eff, x, "arch_prctl", &[]), ALLOW); // arches amd64
        assert_eq!(v(&eff, Abi::I386, "modify_ldt", &[]), ALLOW);
        assert_eq!(v(&eff, x, "read", &[]), ALLOW);
        // runc's stub: above the largest number named, ENOSYS.
        let top = eff.enosys_above[&x];
        assert_eq!(syscalls::name(x, top), Some("futex_waitv"));
        assert_eq!(eff.verdict(x, top + 1, [0; 6]), ENOSYS_O);
        assert_eq!(eff.verdict(x, 1000, [0; 6]), ENOSYS_O);
        assert_eq!(eff.verdict(x, 400, [0; 6]), EPERM_O, "a hole below");
        // Dropped by dockerd: other arches' rules, the caps Docker does not
        // grant, and clone's s390 rule.
        let dropped: Vec<&str> = eff
            .excluded_rules
            .iter()
            .map(|c| c.split(' ').nth(2).unwrap_or(""))
            .collect();
        assert_eq!(
            dropped,
            [
                "8", "9", "12", "13", "14", "16", "18", "20", "21", "22", "23", "24", "25", "26",
                "27"
            ]
        );

        // An older kernel: no ptrace.
        let old = prof.resolve(&conditions(DOCKER_CAPS, (4, 7))).unwrap();
        assert_eq!(v(&old, x, "ptrace", &[]), EPERM_O);
        // With CAP_SYS_ADMIN: clone is unconditional, clone3 allowed.
        let mut caps = DOCKER_CAPS.to_vec();
        caps.push("CAP_SYS_ADMIN");
        let admin = prof.resolve(&conditions(&caps, (6, 18))).unwrap();
        assert_eq!(v(&admin, x, "clone", &[0x1000_0011]), ALLOW);
        assert_eq!(v(&admin, x, "clone3", &[]), ALLOW);
        assert_eq!(v(&admin, x, "bpf", &[]), ALLOW);
        // No capabilities at all: no chroot.
        let none = prof.resolve(&conditions(&[], (6, 18))).unwrap();
        assert_eq!(v(&none, x, "chroot", &[]), EPERM_O);
    }

    #[test]
    fn evaluator_agrees_with_bpf_on_docker_default() {
        let prof = OciProfile::parse(DOCKER_DEFAULT).unwrap();
        let mut admin = DOCKER_CAPS.to_vec();
        admin.push("CAP_SYS_ADMIN");
        let numbers = all_numbers();
        let sets = edge_arg_sets();
        for caps in [DOCKER_CAPS, &admin[..], &[]] {
            for over in [
                DefaultOverride::Errno,
                DefaultOverride::Kill,
                DefaultOverride::Log,
            ] {
                let eff = prof.resolve_with(&conditions(caps, (6, 18)), over).unwrap();
                agree(&eff, &numbers, &sets[..20]);
                // Every edge set on the argument-checked syscalls.
                let checked: Vec<(Abi, u32)> = ["personality", "clone"]
                    .iter()
                    .flat_map(|n| HOST.iter().map(move |a| (*a, nr(*a, n))))
                    .collect();
                agree(&eff, &checked, &sets);
            }
        }
    }

    #[test]
    fn comparisons_follow_libseccomp() {
        let c = |op, value, value_two| ArgCmp {
            index: 0,
            value,
            value_two,
            op,
        };
        let hi = 0x1_0000_0000u64;
        // 64-bit: unsigned, both words.
        assert!(c(CmpOp::Eq, hi + 5, 0).matches(hi + 5, true));
        assert!(!c(CmpOp::Eq, 5, 0).matches(hi + 5, true));
        assert!(c(CmpOp::Ne, 5, 0).matches(hi + 5, true));
        assert!(c(CmpOp::Gt, 0xffff_ffff, 0).matches(hi, true));
        assert!(!c(CmpOp::Gt, hi, 0).matches(0xffff_ffff, true));
        assert!(c(CmpOp::Ge, hi, 0).matches(hi, true));
        assert!(c(CmpOp::Lt, hi, 0).matches(0xffff_ffff, true));
        assert!(!c(CmpOp::Lt, hi, 0).matches(hi, true));
        assert!(c(CmpOp::Le, hi, 0).matches(hi, true));
        assert!(c(CmpOp::Gt, 1, 0).matches(u64::MAX, true), "unsigned");
        // MASKED_EQ: the datum is masked too.
        assert!(c(CmpOp::MaskedEq, 0xff, 0x12).matches(0xab12, true));
        assert!(c(CmpOp::MaskedEq, 0xff, 0x1012).matches(0xab12, true));
        assert!(!c(CmpOp::MaskedEq, 0xff, 0x13).matches(0xab12, true));
        assert!(c(CmpOp::MaskedEq, 0, 5).is_tautology(true));
        assert!(c(CmpOp::MaskedEq, hi, 5).is_tautology(false));
        assert!(!c(CmpOp::MaskedEq, hi, 5).is_tautology(true));
        // i386: the low 32 bits of both sides.
        assert!(c(CmpOp::Eq, hi + 5, 0).matches(5, false));
        assert!(c(CmpOp::Gt, hi + 5, 0).matches(6, false));
        assert!(!c(CmpOp::Gt, 4, 0).matches(hi + 3, false));
    }

    fn rule(names: &[&str], action: Action, errno: Option<u32>, args: &[ArgCmp]) -> SyscallRule {
        SyscallRule {
            names: names.iter().map(|s| s.to_string()).collect(),
            action,
            errno_ret: errno,
            args: args.to_vec(),
            ..Default::default()
        }
    }

    fn eq(index: u8, value: u64) -> ArgCmp {
        ArgCmp {
            index,
            value,
            value_two: 0,
            op: CmpOp::Eq,
        }
    }

    fn profile(rules: Vec<SyscallRule>) -> OciProfile {
        OciProfile {
            default_action: Action::Errno,
            default_errno_ret: None,
            architectures: HOST.iter().map(|a| ScmpArch::from(*a)).collect(),
            arch_map: Vec::new(),
            syscalls: rules,
            sandmine: None,
        }
    }

    #[test]
    fn runc_quirks() {
        let c = conditions(&[], (6, 18));
        let x = Abi::X86_64;
        // A repeated index: one rule per comparison, ORed (else "a0 == 1
        // and a0 == 2" could never hold).
        let p = profile(vec![rule(
            &["getpid"],
            Action::Allow,
            None,
            &[eq(0, 1), eq(0, 2), eq(1, 3)],
        )]);
        let eff = p.resolve(&c).unwrap();
        assert_eq!(v(&eff, x, "getpid", &[1]), ALLOW);
        assert_eq!(v(&eff, x, "getpid", &[2]), ALLOW);
        assert_eq!(v(&eff, x, "getpid", &[0, 3]), ALLOW);
        assert_eq!(v(&eff, x, "getpid", &[0, 4]), EPERM_O);
        // Without a repeat: all must hold.
        let p = profile(vec![rule(
            &["getpid"],
            Action::Allow,
            None,
            &[eq(0, 1), eq(1, 3)],
        )]);
        let eff = p.resolve(&c).unwrap();
        assert_eq!(v(&eff, x, "getpid", &[1]), EPERM_O);
        assert_eq!(v(&eff, x, "getpid", &[1, 3]), ALLOW);

        // A rule equal to the default is dropped: the unconditional EPERM
        // does not shadow the argument rule.
        let p = profile(vec![
            rule(&["getpid"], Action::Errno, Some(EPERM), &[]),
            rule(&["getpid"], Action::Allow, None, &[eq(0, 1)]),
        ]);
        let eff = p.resolve(&c).unwrap();
        assert_eq!(v(&eff, x, "getpid", &[1]), ALLOW);
        assert_eq!(v(&eff, x, "getpid", &[2]), EPERM_O);
        // An unconditional rule of another action wins, in either order.
        for rules in [
            vec![
                rule(&["getpid"], Action::Errno, Some(13), &[]),
                rule(&["getpid"], Action::Allow, None, &[eq(0, 1)]),
            ],
            vec![
                rule(&["getpid"], Action::Allow, None, &[eq(0, 1)]),
                rule(&["getpid"], Action::Errno, Some(13), &[]),
            ],
        ] {
            let eff = profile(rules).resolve(&c).unwrap();
            assert_eq!(v(&eff, x, "getpid", &[1]), (Action::Errno, Some(13)));
        }
        // Argument rules with different outcomes: refused, with both rules.
        let p = profile(vec![
            rule(&["getpid"], Action::Errno, Some(13), &[eq(0, 2)]),
            rule(&["getpid"], Action::Allow, None, &[eq(0, 1)]),
        ]);
        let e = p.resolve(&c).unwrap_err();
        assert_eq!(
            e,
            ProfileError::AmbiguousConditionalRules {
                name: "getpid".into(),
                first: "syscalls rule 1 (getpid)".into(),
                second: "syscalls rule 2 (getpid)".into()
            }
        );
        // A MASKED_EQ with mask 0 holds always: the rule is unconditional.
        let p = profile(vec![rule(
            &["getpid"],
            Action::Errno,
            Some(13),
            &[ArgCmp {
                index: 0,
                value: 0,
                value_two: 9,
                op: CmpOp::MaskedEq,
            }],
        )]);
        let eff = p.resolve(&c).unwrap();
        assert_eq!(
            eff.syscalls[&x][&nr(x, "getpid")],
            Judgement::Always((Action::Errno, Some(13)))
        );
        // A split piece that always holds makes the rule unconditional:
        // here on i386 only, where the mask's low word is 0.
        let p = profile(vec![rule(
            &["sched_yield"],
            Action::Errno,
            Some(13),
            &[
                eq(0, 1),
                ArgCmp {
                    index: 0,
                    value: 0x1_0000_0000,
                    value_two: 0,
                    op: CmpOp::MaskedEq,
                },
            ],
        )]);
        let eff = p.resolve(&c).unwrap();
        assert_eq!(
            v(&eff, Abi::I386, "sched_yield", &[5]),
            (Action::Errno, Some(13))
        );
        assert_eq!(v(&eff, x, "sched_yield", &[0x1_0000_0005]), EPERM_O);
        assert_eq!(
            v(&eff, Abi::I386, "sched_yield", &[0x1_0000_0005]),
            (Action::Errno, Some(13))
        );
        assert_eq!(v(&eff, x, "sched_yield", &[1]), (Action::Errno, Some(13)));
        // Unknown names are ignored.
        let p = profile(vec![rule(&["getpid", "recv"], Action::Allow, None, &[])]);
        let eff = p.resolve(&c).unwrap();
        assert_eq!(eff.ignored, vec!["recv"]);
        assert_eq!(v(&eff, x, "getpid", &[]), ALLOW);
    }

    /// Regression (fuzz/regressions/profile/x32-args-compared-on-32-bits):
    /// libseccomp 2.5.4 compares x32 arguments on their low 32 bits, as
    /// i386's (its x32 is a 32-bit architecture), so a high word set passes
    /// the rule on x32 and not on x86_64. The filter agrees.
    #[test]
    fn x32_arguments_are_compared_on_32_bits_like_libseccomp() {
        let c = conditions(&[], (6, 18));
        let le = ArgCmp {
            index: 3,
            value: 0x1_0000_0005,
            value_two: 0,
            op: CmpOp::Le,
        };
        let p = profile(vec![rule(&["kill"], Action::Log, None, &[le])]);
        let eff = p.resolve(&c).unwrap();
        let log = (Action::Log, None);
        // On x86_64: 0x1_0000_0006 <= 0x1_0000_0005 is false.
        assert_eq!(
            v(&eff, Abi::X86_64, "kill", &[0, 0, 0, 0x1_0000_0006]),
            EPERM_O
        );
        assert_eq!(v(&eff, Abi::X86_64, "kill", &[0, 0, 0, 0x1_0000_0005]), log);
        // On x32 and i386: 6 <= 5 is false, 5 <= 5 holds, whatever the
        // high words.
        for abi in [Abi::X32, Abi::I386] {
            assert_eq!(v(&eff, abi, "kill", &[0, 0, 0, 0x1_0000_0006]), EPERM_O);
            assert_eq!(v(&eff, abi, "kill", &[0, 0, 0, 0x7_0000_0005]), log);
            assert_eq!(v(&eff, abi, "kill", &[0, 0, 0, 5]), log);
        }
        let numbers: Vec<(Abi, u32)> = HOST.iter().map(|a| (*a, nr(*a, "kill"))).collect();
        let args: Vec<[u64; 6]> = EDGES
            .iter()
            .map(|e| [0, 0, 0, *e, 0, 0])
            .chain([[0, 0, 0, 0x7_0000_0005, 0, 0]])
            .collect();
        agree(&eff, &numbers, &args);
    }

    #[test]
    fn enosys_stub_like_runc() {
        let c = conditions(&[], (6, 18));
        let x = Abi::X86_64;
        // The largest named number counts, also of a rule equal to the
        // default (dropped for libseccomp, not for the stub).
        let p = profile(vec![
            rule(&["read", "getpid"], Action::Allow, None, &[]),
            rule(&["kill"], Action::Errno, None, &[]),
        ]);
        let eff = p.resolve(&c).unwrap();
        assert_eq!(eff.enosys_above[&x], nr(x, "kill"));
        assert_eq!(eff.enosys_above[&Abi::I386], nr(Abi::I386, "kill"));
        assert_eq!(eff.enosys_above[&Abi::X32], nr(Abi::X32, "kill"));
        assert_eq!(eff.verdict(x, nr(x, "kill") + 1, [0; 6]), ENOSYS_O);
        assert_eq!(eff.verdict(x, nr(x, "kill"), [0; 6]), EPERM_O);
        assert_eq!(eff.verdict(x, 1, [0; 6]), EPERM_O);
        agree(&eff, &all_numbers(), &[[0; 6]]);
        // Allow-like defaults get no stub; nor a profile without
        // architectures (libseccomp's native default, which runc does not
        // patch).
        let eff = p.resolve_with(&c, DefaultOverride::Log).unwrap();
        assert!(eff.enosys_above.is_empty());
        let mut allow = p.clone();
        allow.default_action = Action::Allow;
        assert!(allow.resolve(&c).unwrap().enosys_above.is_empty());
        let mut native = p.clone();
        native.architectures.clear();
        let eff = native.resolve(&c).unwrap();
        assert!(eff.enosys_above.is_empty());
        assert_eq!(eff.verdict(x, 1000, [0; 6]), EPERM_O);
        // Kill keeps it.
        let eff = p.resolve_with(&c, DefaultOverride::Kill).unwrap();
        assert_eq!(eff.verdict(x, 1000, [0; 6]), ENOSYS_O);
        assert_eq!(eff.verdict(x, 1, [0; 6]), (Action::KillProcess, None));
        agree(&eff, &all_numbers(), &[[0; 6]]);
        // Only `read` (x86_64 0) named: runc sees no largest number there.
        let p = profile(vec![rule(&["read"], Action::Allow, None, &[])]);
        let eff = p.resolve(&c).unwrap();
        assert!(!eff.enosys_above.contains_key(&x));
        assert_eq!(eff.enosys_above[&Abi::I386], 3);
    }

    #[test]
    fn long_programs_with_argument_rules_relax_their_jumps() {
        // 300 x86_64 names, each allowed only when a0 > 5 (and every
        // fourth also when a1 & 0xff00 == 0x1200): long jumps over the
        // argument blocks.
        let names: Vec<&str> = syscalls::table(Abi::X86_64)
            .iter()
            .map(|(_, n)| *n)
            .take(300)
            .collect();
        let gt = ArgCmp {
            index: 0,
            value: 5,
            value_two: 0,
            op: CmpOp::Gt,
        };
        let masked = ArgCmp {
            index: 1,
            value: 0xff00,
            value_two: 0x1200,
            op: CmpOp::MaskedEq,
        };
        let mut rules = vec![rule(&names, Action::Allow, None, &[gt])];
        let every4: Vec<&str> = names.iter().step_by(4).copied().collect();
        rules.push(rule(&every4, Action::Allow, None, &[masked]));
        let mut p = profile(rules);
        p.architectures = vec![ScmpArch::from(Abi::X86_64)];
        let eff = p.resolve(&conditions(&[], (6, 18))).unwrap();
        let prog = build_effective(&eff, HOST).unwrap();
        let long = prog
            .iter()
            .filter(|i| i.code == crate::filter::BPF_JMP | crate::filter::BPF_JA)
            .count();
        assert!(long > 0 && prog.len() > 2000, "{long} of {}", prog.len());
        let sets = [
            [0, 0, 0, 0, 0, 0],
            [6, 0, 0, 0, 0, 0],
            [5, 0x1234, 0, 0, 0, 0],
            [1 << 40, 0, 0, 0, 0, 0],
            [0, 0x1_0000_1200, 0, 0, 0, 0],
        ];
        agree(&eff, &all_numbers(), &sets);
    }

    // --- Random profiles, seeded: the evaluator against the program. ----

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            // xorshift64*
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
            &v[self.below(v.len())]
        }
    }

    const POOL: &[&str] = &[
        "read",
        "getpid",
        "getppid",
        "getuid",
        "personality",
        "clone",
        "socket",
        "kill",
        "ioctl",
        "mmap",
        "prctl",
        "socketcall",
        "getuid32",
        "openat2",
        "mount",
        "unshare",
        "setns",
    ];

    fn random_outcome(r: &mut Rng) -> (Action, Option<u32>) {
        match r.below(6) {
            0 | 1 => (Action::Allow, None),
            2 => (Action::Errno, None),
            3 => (Action::Errno, Some(1 + r.below(100) as u32)),
            4 => (Action::KillProcess, None),
            _ => (
                *r.pick(&[Action::Trap, Action::Log, Action::KillThread]),
                None,
            ),
        }
    }

    fn random_profile(r: &mut Rng) -> OciProfile {
        let (default_action, default_errno_ret) = random_outcome(r);
        let arches: Vec<ScmpArch> = HOST
            .iter()
            .filter(|_| r.below(4) != 0)
            .map(|a| ScmpArch::from(*a))
            .collect();
        let mut rules = Vec::new();
        for _ in 0..r.below(8) {
            let (action, errno_ret) = random_outcome(r);
            let names: Vec<String> = (0..1 + r.below(3))
                .map(|_| r.pick(POOL).to_string())
                .collect();
            let args: Vec<ArgCmp> = (0..r.below(4))
                .map(|_| ArgCmp {
                    index: r.below(3) as u8,
                    value: *r.pick(EDGES),
                    value_two: *r.pick(EDGES),
                    op: *r.pick(&CmpOp::ALL),
                })
                .collect();
            let mut includes = RuleCondition::default();
            if r.below(5) == 0 {
                includes.caps = vec![r.pick(&["CAP_SYS_ADMIN", "CAP_CHOWN"]).to_string()];
            }
            rules.push(SyscallRule {
                names,
                action,
                errno_ret,
                args,
                includes,
                ..Default::default()
            });
        }
        OciProfile {
            default_action,
            default_errno_ret,
            architectures: arches,
            arch_map: Vec::new(),
            syscalls: rules,
            sandmine: None,
        }
    }

    #[test]
    fn evaluator_agrees_with_bpf_on_random_profiles() {
        let mut r = Rng(0x005e_ed0f_5a9d_0011);
        let c = conditions(&["CAP_CHOWN"], (6, 18));
        let (mut compiled, mut refused) = (0, 0);
        for _ in 0..400 {
            let p = random_profile(&mut r);
            let Ok(eff) = p.resolve(&c) else {
                refused += 1;
                continue;
            };
            compiled += 1;
            let mut numbers: Vec<(Abi, u32)> = Vec::new();
            for abi in HOST {
                for name in POOL {
                    if syscalls::number(*abi, name).is_some() {
                        numbers.push((*abi, nr(*abi, name)));
                    }
                }
                numbers.push((
                    *abi,
                    1000 | if *abi == Abi::X32 { X32_SYSCALL_BIT } else { 0 },
                ));
            }
            let sets: Vec<[u64; 6]> = (0..40)
                .map(|_| [*r.pick(EDGES), *r.pick(EDGES), *r.pick(EDGES), 0, 0, 0])
                .collect();
            agree(&eff, &numbers, &sets);
        }
        // Most random profiles are accepted; the rest have argument rules
        // with different outcomes for one syscall.
        assert!(compiled > 200 && refused > 0, "{compiled} {refused}");
    }

    /// `judge` is `verdict` for every argument: each call's verdict is one
    /// of the judged outcomes, and the very one when arguments do not
    /// matter; on Docker's default and on random profiles.
    #[test]
    fn judge_agrees_with_verdict_for_every_argument() {
        let check = |eff: &EffectiveProfile, sets: &[[u64; 6]]| {
            for (abi, n) in all_numbers() {
                // Not table numbers: x86_64 numbers with the x32 bit, and
                // numbers at or above 2^31 (-1 is a tracer's "skip").
                if (n >= X32_SYSCALL_BIT && abi != Abi::X32) || n & !X32_SYSCALL_BIT >= 0x8000_0000
                {
                    continue;
                }
                let j = eff.judge(abi, n & !X32_SYSCALL_BIT);
                for args in sets {
                    let got = eff.verdict(abi, n, *args);
                    assert!(
                        j.outcomes().contains(&got),
                        "{abi} {n:#x} {args:x?}: {got:?} not in {j:?}"
                    );
                    if j.deciding.is_empty() {
                        assert_eq!(got, j.otherwise, "{abi} {n:#x}");
                    }
                }
            }
        };
        let prof = OciProfile::parse(DOCKER_DEFAULT).unwrap();
        check(
            &prof.resolve(&conditions(DOCKER_CAPS, (6, 18))).unwrap(),
            &edge_arg_sets(),
        );
        let mut r = Rng(0x5eed_0fba_5e00);
        let c = conditions(&["CAP_SYS_ADMIN"], (5, 10));
        let mut judged = 0;
        for _ in 0..100 {
            let Ok(eff) = random_profile(&mut r).resolve(&c) else {
                continue;
            };
            let sets: Vec<[u64; 6]> = (0..20)
                .map(|_| [*r.pick(EDGES), *r.pick(EDGES), *r.pick(EDGES), 0, 0, 0])
                .collect();
            check(&eff, &sets);
            judged += 1;
        }
        assert!(judged > 50, "{judged}");
    }

    #[test]
    fn judge_docker_default() {
        let prof = OciProfile::parse(DOCKER_DEFAULT).unwrap();
        let eff = prof.resolve(&conditions(DOCKER_CAPS, (6, 18))).unwrap();
        let x = Abi::X86_64;
        let j = |abi: Abi, name: &str| {
            let v = eff.judge(abi, syscalls::number(abi, name).unwrap());
            (v.class(), v.outcomes(), v.conditions_text())
        };
        assert_eq!(
            j(x, "read"),
            (VerdictClass::Runs, vec![ALLOW], String::new())
        );
        assert_eq!(
            j(x, "keyctl"),
            (VerdictClass::Denied, vec![EPERM_O], String::new())
        );
        assert_eq!(
            j(x, "clone3"),
            (VerdictClass::Denied, vec![ENOSYS_O], String::new())
        );
        assert_eq!(
            j(x, "clone"),
            (
                VerdictClass::Unknown,
                vec![ALLOW, EPERM_O],
                "allow if arg0 & 0x7e020000 == 0; else errno 1".to_string()
            )
        );
        assert_eq!(
            j(Abi::I386, "personality").2,
            "allow if arg0 == 0 or arg0 == 8 or arg0 == 0x20000 or arg0 == 0x20008 or arg0 == 0xffffffff; else errno 1"
        );
        assert_eq!(j(Abi::X32, "keyctl").1, vec![EPERM_O]);
        assert_eq!(j(Abi::X32, "read").1, vec![ALLOW]);
        // Unlisted ABI: killed. runc's stub: ENOSYS above the largest name.
        assert_eq!(j(Abi::Aarch64, "read").1, vec![UNLISTED]);
        let above = eff.enosys_above[&x] + 1;
        assert_eq!(eff.judge(x, above).outcomes(), vec![ENOSYS_O]);
        // ptrace needs kernel 4.8 (includes.minKernel).
        let old = prof.resolve(&conditions(DOCKER_CAPS, (4, 4))).unwrap();
        assert_eq!(old.judge(x, 101).class(), VerdictClass::Denied);
        assert_eq!(eff.judge(x, 101).class(), VerdictClass::Runs);
        // A LOG default runs; a rule's kill by arguments under an errno
        // default is denied either way, with both actions.
        let p = OciProfile::parse(
            r#"{"defaultAction":"SCMP_ACT_LOG","syscalls":[
              {"names":["socket"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":40,"op":"SCMP_CMP_EQ"}]}]}"#,
        )
        .unwrap()
        .resolve(&conditions(DOCKER_CAPS, (6, 18)))
        .unwrap();
        assert_eq!(p.judge(x, 0).class(), VerdictClass::Runs);
        let v = p.judge(x, 41);
        assert_eq!(
            (v.class(), v.conditions_text()),
            (
                VerdictClass::Unknown,
                "errno 1 if arg0 == 40; else log".to_string()
            )
        );
        let p = OciProfile::parse(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
              {"names":["read"],"action":"SCMP_ACT_ALLOW"},
              {"names":["socket"],"action":"SCMP_ACT_KILL_PROCESS","args":[{"index":0,"value":40,"op":"SCMP_CMP_EQ"},{"index":1,"value":1,"op":"SCMP_CMP_NE"}]}]}"#,
        )
        .unwrap()
        .resolve(&conditions(DOCKER_CAPS, (6, 18)))
        .unwrap();
        let v = p.judge(x, 41);
        assert_eq!(
            (v.class(), v.outcomes(), v.conditions_text()),
            (
                VerdictClass::Denied,
                vec![(Action::KillProcess, None), EPERM_O],
                "kill_process if arg0 == 40 and arg1 != 1; else errno 1".to_string()
            )
        );
    }
}
