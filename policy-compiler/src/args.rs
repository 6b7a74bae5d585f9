//! Argument rules (issue 11): which allowed syscalls a profile narrows to
//! the argument values the fleet recorded, and which values.
//!
//! A syscall named in the policy's `narrow_args` is narrowed when all of
//! these hold, in every ABI that allows it; otherwise it keeps its
//! name-only rule and the decision says why ([`ArgDecisions::name_only`]):
//!
//! - it is allowed by observation alone ([`AllowReason::Observed`]): a
//!   syscall the runtime base, the baseline, `must_allow`, reachability or
//!   an incomplete container allows was allowed without its values being
//!   known, so a rule on them could break what allowed it;
//! - no verified container's values for it overflowed the kernel's bound
//!   (its set is then incomplete);
//! - every verified container that made it recorded a set for it: a
//!   container of an older collector, of a `max_wire_version` below the
//!   arguments' version, or of the ptrace backend made calls whose values
//!   nobody knows;
//! - no incomplete container made it (lost calls may hide values);
//! - its values were recorded with one set of argument fields (index and
//!   mask) everywhere, the same in every ABI;
//! - at least one value meets the syscall thresholds.
//!
//! A value is allowed when it meets the same thresholds as a syscall
//! (`[syscall] min_hosts`, `min_containers`), counted over verified
//! containers: a value seen on one rogue host does not widen the rule.
//! Values below them are listed in [`ArgDecisions::dropped`]; calls with
//! them get the profile's default action.
//!
//! Static reachability widens a rule: a constant argument at a call site
//! that the image's binaries can reach (`Reachability::arg_sites`, such as
//! `socket(AF_INET, SOCK_STREAM, 0)`) is evidence too. A value found that
//! way and never observed is allowed under the policy's `reachable` tiers
//! `allow` and `log`, and only reported under `deny`. The log tier cannot
//! log it: an `SCMP_ACT_LOG` entry with argument conditions beside the
//! rule's `SCMP_ACT_ALLOW` ones, for one syscall, is a pair of
//! conditional rules with different actions, whose outcome depends on how
//! libseccomp merges its rule trees (`sandmine run` refuses such a
//! profile, `ProfileError::AmbiguousConditionalRules`); a call that runs
//! is what the log tier promises, so it is allowed. A site whose argument
//! is not a constant widens nothing.

use crate::decide::{AllowReason, SyscallDecision, Verdict};
use crate::policy::Policy;
use crate::reachable::{Reachability, Tier};
use schemas::fleet::ImageObservations;
use schemas::{syscalls, ArgField, SyscallKey};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The entries a profile may have before the runtimes that pull profiles
/// as OCI artifacts refuse it (CRI-O's default, see `publish`'s OCI
/// target); [`ArgDecisions::warn_entries`] warns from this many on.
pub const ENTRIES_WARN: usize = 100;

/// One narrowed syscall's rule: calls are allowed when their arguments,
/// masked field by field, equal one of `values`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ArgRule {
    pub fields: Vec<ArgField>,
    pub values: BTreeSet<Vec<u32>>,
    /// Values found only by static reachability (constants at reachable
    /// call sites, never observed): allowed under the `allow` and `log`
    /// tiers (see the module documentation).
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub reachable: BTreeSet<Vec<u32>>,
}

/// What the compiler decided about arguments, per syscall name (the
/// Docker format's rules are per name, for every listed ABI at once).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ArgDecisions {
    /// The narrowed syscalls.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rules: BTreeMap<&'static str, ArgRule>,
    /// Syscalls with recorded values, or in `narrow_args`, that keep a
    /// name-only rule, and why.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub name_only: BTreeMap<&'static str, String>,
    /// Values recorded but left out: below the thresholds (a sentence each,
    /// with the numbers).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
    /// The tier of values found only by static reachability.
    #[serde(skip)]
    pub tier: Tier,
}

impl ArgDecisions {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.name_only.is_empty() && self.dropped.is_empty()
    }

    /// The rules' entries once merged as [`crate::render::oci_profile`]
    /// writes them: one per distinct comparison list (names that share
    /// one, such as `mmap` and `mprotect` with the same `prot`, share an
    /// entry).
    pub fn entries(&self) -> BTreeMap<Vec<(ArgField, u32)>, Vec<&'static str>> {
        self.merged(|r| Box::new(r.values.iter().chain(&r.reachable)))
    }

    fn merged<'a>(
        &'a self,
        values: impl Fn(&'a ArgRule) -> Box<dyn Iterator<Item = &'a Vec<u32>> + 'a>,
    ) -> BTreeMap<Vec<(ArgField, u32)>, Vec<&'static str>> {
        let mut m: BTreeMap<Vec<(ArgField, u32)>, Vec<&'static str>> = BTreeMap::new();
        for (name, r) in &self.rules {
            for v in values(r) {
                let cmp: Vec<(ArgField, u32)> =
                    r.fields.iter().copied().zip(v.iter().copied()).collect();
                m.entry(cmp).or_default().push(name);
            }
        }
        m
    }
}

/// Decide the argument rules of an image from its evidence and the
/// syscall decisions (see the module documentation).
pub fn decide_args(
    obs: &ImageObservations,
    decisions: &[SyscallDecision],
    policy: &Policy,
    reach: Option<&Reachability>,
) -> ArgDecisions {
    let mut out = ArgDecisions {
        tier: policy.reachable,
        ..ArgDecisions::default()
    };
    let narrow: BTreeSet<&str> = policy.narrow_args.iter().map(String::as_str).collect();
    let ev = &obs.args;
    // Verified containers that made each syscall (any phase), and whether
    // an incomplete one did.
    let mut made: BTreeMap<SyscallKey, (u64, bool)> = BTreeMap::new();
    for c in obs.incidence.iter().filter(|c| !c.unverified) {
        for e in &c.syscalls {
            let m = made
                .entry(SyscallKey {
                    abi: e.abi,
                    nr: e.nr,
                })
                .or_default();
            m.0 += 1;
            m.1 |= c.incomplete;
        }
    }
    let recorded: BTreeMap<SyscallKey, u64> = ev
        .recorded
        .iter()
        .map(|r| {
            (
                SyscallKey {
                    abi: r.abi,
                    nr: r.nr,
                },
                r.containers,
            )
        })
        .collect();
    let overflowed: BTreeMap<SyscallKey, u64> = ev
        .overflow
        .iter()
        .filter(|o| o.containers > 0)
        .map(|o| {
            (
                SyscallKey {
                    abi: o.abi,
                    nr: o.nr,
                },
                o.hosts,
            )
        })
        .collect();
    // Per name: its allowed keys.
    let mut allowed: BTreeMap<&'static str, Vec<&SyscallDecision>> = BTreeMap::new();
    for d in decisions {
        if let (Some(n), Verdict::Allowed { .. }) = (d.name, &d.verdict) {
            allowed.entry(n).or_default().push(d);
        }
    }
    // Names with recorded values that are allowed but not narrowed by the
    // policy: said too, so the report shows every recorded syscall.
    let recorded_names: BTreeSet<&'static str> = ev
        .values
        .iter()
        .filter_map(|v| syscalls::name(v.abi, v.nr))
        .collect();
    for name in &recorded_names {
        if !narrow.contains(name) && allowed.contains_key(name) {
            out.name_only
                .insert(name, "not in the policy's narrow_args".into());
        }
    }
    let (min_hosts, min_containers) = (policy.syscall.min_hosts, policy.syscall.min_containers);
    for (name, keys) in &allowed {
        if !narrow.contains(name) {
            continue;
        }
        // No container recorded anything for it (a fleet of older
        // collectors): it stays name-only, as before arguments were
        // recorded, with nothing to say.
        let evidence = keys.iter().any(|d| {
            let k = SyscallKey {
                abi: d.abi,
                nr: d.nr,
            };
            recorded.contains_key(&k) || overflowed.contains_key(&k)
        });
        if !evidence {
            continue;
        }
        match narrow_one(
            name,
            keys,
            obs,
            &made,
            &recorded,
            &overflowed,
            min_hosts,
            min_containers,
            &mut out.dropped,
        ) {
            Ok(mut rule) => {
                if let Some(r) = reach.filter(|_| policy.reachable != Tier::Deny) {
                    rule.reachable = reachable_values(&rule, keys, r);
                }
                if allows_every_value(&rule) {
                    out.name_only.insert(
                        name,
                        "every value of its recorded arguments is allowed (observed or at reachable call sites): a rule would deny nothing and only cost a filter walk".into(),
                    );
                } else {
                    out.rules.insert(name, rule);
                }
            }
            Err(why) => {
                out.name_only.insert(name, why);
            }
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn narrow_one(
    name: &'static str,
    keys: &[&SyscallDecision],
    obs: &ImageObservations,
    made: &BTreeMap<SyscallKey, (u64, bool)>,
    recorded: &BTreeMap<SyscallKey, u64>,
    overflowed: &BTreeMap<SyscallKey, u64>,
    min_hosts: u64,
    min_containers: u64,
    dropped: &mut Vec<String>,
) -> Result<ArgRule, String> {
    let mut fields: Option<Vec<ArgField>> = None;
    let mut values = BTreeSet::new();
    let mut below = Vec::new();
    for d in keys {
        let key = SyscallKey {
            abi: d.abi,
            nr: d.nr,
        };
        let abi = d.abi.as_str();
        if let Verdict::Allowed { reasons } = &d.verdict {
            if let Some(other) = reasons.iter().find(|r| !matches!(r, AllowReason::Observed)) {
                return Err(format!("{abi}: {}", other_reason(other)));
            }
        }
        if let Some(hosts) = overflowed.get(&key) {
            return Err(format!(
                "{abi}: more distinct values than the kernel records, on {hosts} host(s)"
            ));
        }
        let (n_made, incomplete) = made.get(&key).copied().unwrap_or_default();
        if incomplete {
            return Err(format!(
                "{abi}: made by a container that lost calls, whose values may be missing"
            ));
        }
        let n_rec = recorded.get(&key).copied().unwrap_or(0);
        if n_rec < n_made {
            return Err(format!(
                "{abi}: {} of the {n_made} containers that made it recorded no values (an older collector, a max_wire_version below 7, or the ptrace backend)",
                n_made - n_rec
            ));
        }
        for v in obs.args.values.iter().filter(|v| v.key() == key) {
            match &fields {
                None => fields = Some(v.fields.clone()),
                Some(f) if *f != v.fields => {
                    return Err(format!(
                        "{abi}: values recorded with different argument fields"
                    ))
                }
                Some(_) => {}
            }
            if v.hosts >= min_hosts && v.containers >= min_containers {
                values.insert(v.value.clone());
            } else {
                below.push(format!(
                    "{name} ({abi}) value {}: {} host(s) and {} container(s), below the syscall thresholds ({min_hosts} hosts, {min_containers} containers)",
                    show_value(&v.fields, &v.value),
                    v.hosts,
                    v.containers
                ));
            }
        }
    }
    let Some(fields) = fields else {
        return Err("no values recorded".into());
    };
    if values.is_empty() {
        return Err(format!(
            "no value met the syscall thresholds ({min_hosts} hosts, {min_containers} containers); denying every value would break the hosts that made it"
        ));
    }
    dropped.extend(below);
    Ok(ArgRule {
        fields,
        values,
        reachable: BTreeSet::new(),
    })
}

/// True when `rule` allows every value its fields' masks can take (the
/// `prot` rules have four: 0, W, X, W|X).
fn allows_every_value(rule: &ArgRule) -> bool {
    let bits: u32 = rule.fields.iter().map(|f| f.mask.count_ones()).sum();
    bits <= 16 && rule.values.len() + rule.reachable.len() == 1usize << bits
}

/// The values of `rule`'s fields at the reachable sites of its syscall
/// (every ABI that allows it) whose arguments are constants, less those
/// the rule already allows.
fn reachable_values(
    rule: &ArgRule,
    keys: &[&SyscallDecision],
    r: &Reachability,
) -> BTreeSet<Vec<u32>> {
    let mut out = BTreeSet::new();
    for d in keys {
        let key = SyscallKey {
            abi: d.abi,
            nr: d.nr,
        };
        for site in r.arg_sites.get(&key).into_iter().flatten() {
            let v: Option<Vec<u32>> = rule
                .fields
                .iter()
                .map(|f| {
                    site.get(usize::from(f.index))
                        .copied()
                        .flatten()
                        .map(|x| x & f.mask)
                })
                .collect();
            if let Some(v) = v.filter(|v| !rule.values.contains(v)) {
                out.insert(v);
            }
        }
    }
    out
}

fn other_reason(r: &AllowReason) -> &'static str {
    match r {
        AllowReason::Observed => "observed",
        AllowReason::RuntimeBase => "in the runtime's base, whose values are not recorded",
        AllowReason::MustAllow => "in the policy's must_allow",
        AllowReason::Baseline => "in the baseline",
        AllowReason::Fallback { .. } => "the fallback of a denied syscall",
        AllowReason::OtherAbi { .. } => "allowed only through another ABI's rule",
        AllowReason::IncompleteEvidence => "allowed on the evidence of containers that lost calls",
        AllowReason::Reachable { .. } => "allowed by static reachability, which gives no values",
        AllowReason::AfterDenials { .. } => "added back after denials",
    }
}

/// A value as the report writes it: `field=value` per field, in hex.
pub fn show_value(fields: &[ArgField], value: &[u32]) -> String {
    fields
        .iter()
        .zip(value)
        .map(|(f, v)| {
            if f.mask == u32::MAX {
                format!("arg{}={v:#x}", f.index)
            } else {
                format!("arg{}&{:#x}={v:#x}", f.index, f.mask)
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}
