//! The decision for one image, the one engine behind every profile (a
//! fleet's image, or one `sandmine mine` run as a fleet of one): which
//! syscalls to allow and why, and whether the profile may be enforced, only
//! logged, or not published yet.
//!
//! Pure: [`decide`] reads the store's answer, the resolved policy and
//! `now_ms`, and nothing else. [`crate::tally`] counts, this module applies
//! the rules, [`crate::reasons`] words them. Syscalls are `(ABI, number)`
//! keys throughout; names appear only in sentences. Iteration is over
//! sorted keys everywhere, so the order of the input lists does not change
//! the result.

use crate::args::{decide_args, ArgDecisions};
use crate::confidence::Confidence;
use crate::policy::{Mode, Policy, ResolvedPolicy};
use crate::reachable::{ReachSummary, Reachability, Tier};
use crate::reasons;
use crate::tally::{tally, tally_expecting};
use crate::{ENOSYS, EPERM};
use schemas::fleet::ImageObservations;
use schemas::{syscalls, Abi, Phase, PhaseSet, SyscallKey};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The three outcomes for an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Default action EPERM: every bar is met and nothing observed is left
    /// out unless the policy denies it by name.
    Enforce,
    /// Default action `SCMP_ACT_LOG`: unlisted calls run and are logged.
    Log,
    /// Too little evidence to publish anything.
    NotReady,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Enforce => "enforce",
            State::Log => "log",
            State::NotReady => "not_ready",
        }
    }
}

/// What the fleet saw of one syscall, in profile-relevant phases (the
/// store's own totals, in every phase, alongside).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SyscallStats {
    /// Distinct hosts and containers that made it in a relevant phase.
    pub hosts: u64,
    pub containers: u64,
    /// `containers` / the image's sampling units.
    pub share: f64,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
    /// Phases of the relevant uses, and of all uses.
    pub relevant_phases: PhaseSet,
    pub phases: PhaseSet,
    /// From the store's totals (every phase).
    pub calls: u64,
    pub store_hosts: u64,
    pub store_containers: u64,
    /// Incomplete containers (calls lost) that made it in a relevant
    /// phase: not in any figure above; they can only widen the profile.
    #[serde(skip_serializing_if = "crate::confidence::is_zero")]
    pub incomplete_containers: u64,
}

/// Why a syscall is allowed (several may hold at once).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum AllowReason {
    /// Observed, and met every per-syscall threshold.
    Observed,
    /// In the runtime's measured base.
    RuntimeBase,
    /// In the policy's `must_allow`.
    MustAllow,
    /// In [`crate::baseline`].
    Baseline,
    /// The fallback of `of`, a must-deny syscall the image used.
    Fallback { of: String },
    /// Below a threshold in this ABI, but allowed by name in another: the
    /// Docker format lists names for all architectures at once.
    OtherAbi { abi: Abi },
    /// Used in a relevant phase by incomplete containers (some of their
    /// calls were lost): allowing more is the safe direction, so their
    /// evidence widens the profile, though it counts toward nothing.
    IncompleteEvidence,
    /// Not observed, but the image's binaries can reach it, and the policy
    /// allows what they reach (`reachable = "allow"`); `chain` is one path
    /// that reaches it.
    Reachable { chain: String },
    /// Denied under an enforced profile of the image, on enough hosts, and
    /// added back by the publisher (`[publish] on_denials = "add"`);
    /// `reason` names the denials.
    AfterDenials { reason: String },
}

/// Why a syscall is denied.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum DenyReason {
    /// In the policy's `must_deny`.
    MustDeny,
    /// Observed in a relevant phase, but below these thresholds (each a
    /// sentence with the numbers). Keeps the image out of `Enforce`.
    BelowThreshold { failed: Vec<String> },
    /// Observed only before the runtime's filter (`Setup`), or unfiltered
    /// in a container whose other calls were filtered.
    NotRelevant,
    /// No name in sandmine's table for this ABI: no profile format can
    /// allow it. Keeps the image out of `Enforce`.
    Unnamed,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum Verdict {
    Allowed {
        reasons: Vec<AllowReason>,
    },
    /// Not observed, but the image's binaries can reach it: the call runs
    /// and is logged (`SCMP_ACT_LOG`, `reachable = "log"`). `chain` is one
    /// path that reaches it.
    Logged {
        chain: String,
    },
    /// `errno` is what an enforced profile answers (ENOSYS for probed
    /// syscalls, EPERM otherwise); `blocks_enforce` when this denial is
    /// why the image stays in log mode.
    Denied {
        reason: DenyReason,
        errno: u32,
        blocks_enforce: bool,
    },
}

impl Verdict {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Verdict::Allowed { .. })
    }
}

/// One syscall of one ABI: observed, or allowed without being observed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SyscallDecision {
    pub abi: Abi,
    pub nr: u32,
    pub name: Option<&'static str>,
    pub stats: Option<SyscallStats>,
    pub verdict: Verdict,
}

/// Everything the compiler decided for one image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    pub image: String,
    pub digests: Vec<String>,
    pub now_ms: u64,
    pub state: State,
    /// Human sentences with the numbers: why this state.
    pub reasons: Vec<String>,
    /// What the fleet could not see (containers under filters).
    pub notes: Vec<String>,
    /// Policy entries that could not take effect.
    pub warnings: Vec<String>,
    pub confidence: Confidence,
    /// Containers per filter they ran under (`wire::SeccompFilter::as_text`).
    pub filters: BTreeMap<String, u64>,
    /// The ABIs the image was observed using (in relevant phases).
    pub abis: Vec<Abi>,
    /// Sorted by (ABI, number).
    pub syscalls: Vec<SyscallDecision>,
    /// The allowed syscalls.
    pub allowed: BTreeSet<SyscallKey>,
    /// The logged syscalls (the log tier of reachability): named, of an
    /// observed ABI, and allowed by no rule of any ABI.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub logged: BTreeSet<SyscallKey>,
    /// The reachability the decision used, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reach: Option<ReachSummary>,
    /// Calls with numbers outside the capture's table.
    pub out_of_range: u64,
    /// The argument rules ([`crate::args`]).
    #[serde(skip_serializing_if = "ArgDecisions::is_empty")]
    pub args: ArgDecisions,
    pub policy: Policy,
}

impl Decision {
    /// True when the profile denies what it does not allow: the image is in
    /// [`State::Enforce`], or the policy enforces whatever the state
    /// ([`Mode::Enforce`]); never under [`Mode::Log`].
    pub fn enforcing(&self) -> bool {
        match self.policy.mode {
            Mode::State => self.state == State::Enforce,
            Mode::Enforce => true,
            Mode::Log => false,
        }
    }

    /// The allowed names per ABI, every observed ABI present (the
    /// profile's allow rule is their union).
    pub fn allowed_names(&self) -> BTreeMap<Abi, BTreeSet<&'static str>> {
        let mut m: BTreeMap<Abi, BTreeSet<&'static str>> =
            self.abis.iter().map(|a| (*a, BTreeSet::new())).collect();
        for k in &self.allowed {
            if let Some(n) = syscalls::name(k.abi, k.nr) {
                m.entry(k.abi).or_default().insert(n);
            }
        }
        m
    }

    /// The names that run per ABI (allowed or logged), every observed ABI
    /// present: what a publication compares, since a logged call runs.
    pub fn running_names(&self) -> BTreeMap<Abi, BTreeSet<&'static str>> {
        let mut m = self.allowed_names();
        for k in &self.logged {
            if let Some(n) = syscalls::name(k.abi, k.nr) {
                m.entry(k.abi).or_default().insert(n);
            }
        }
        m
    }

    /// The logged names (the log tier), over every ABI.
    pub fn logged_union(&self) -> BTreeSet<&'static str> {
        self.logged
            .iter()
            .filter_map(|k| syscalls::name(k.abi, k.nr))
            .collect()
    }

    /// Union of the allowed names over ABIs: what the Docker format allows
    /// in every listed ABI at once.
    pub fn allowed_union(&self) -> BTreeSet<&'static str> {
        self.allowed
            .iter()
            .filter_map(|k| syscalls::name(k.abi, k.nr))
            .collect()
    }

    /// The decision about a syscall, if it was observed or allowed.
    pub fn get(&self, key: SyscallKey) -> Option<&SyscallDecision> {
        self.syscalls
            .binary_search_by(|d| (d.abi, d.nr).cmp(&(key.abi, key.nr)))
            .ok()
            .map(|i| &self.syscalls[i])
    }
}

/// The errno a denied `name` answers: ENOSYS when libc probes it.
pub fn deny_errno(name: Option<&str>) -> u32 {
    if name.is_some_and(crate::probes::is_probed) {
        ENOSYS
    } else {
        EPERM
    }
}

/// Decide the profile of one image. Pure; see the module documentation.
pub fn decide(obs: &ImageObservations, rp: &ResolvedPolicy, now_ms: u64) -> Decision {
    decide_with(obs, None, rp, now_ms)
}

/// [`decide`], with the image's static reachability as evidence too: a
/// syscall its binaries can reach, never observed, gets the policy's tier
/// ([`crate::reachable::Tier`]).
pub fn decide_with(
    obs: &ImageObservations,
    reach: Option<&Reachability>,
    rp: &ResolvedPolicy,
    now_ms: u64,
) -> Decision {
    let policy = rp.policy();
    // A known reachable set under the log or allow tier makes its
    // syscalls expected: the confidence figures count only the others
    // (see `tally_expecting` and the policy-compiler README).
    let t = match reach.filter(|r| r.known() && policy.reachable != Tier::Deny) {
        Some(r) => tally_expecting(obs, policy.recent_window, now_ms, &|k| {
            r.syscalls.contains_key(&k)
                && !rp.denies(k)
                && syscalls::name(k.abi, k.nr).is_some_and(crate::reachable::tierable)
        }),
        None => tally(obs, policy.recent_window, now_ms),
    };
    let abis = t.abis;
    let mut warnings = Vec::new();
    // Key -> why it is allowed.
    let mut allow: BTreeMap<SyscallKey, Vec<AllowReason>> = BTreeMap::new();
    // Below-threshold observations: key -> failed sentences.
    let mut below: BTreeMap<SyscallKey, Vec<String>> = BTreeMap::new();

    for (key, s) in &t.syscalls {
        if s.containers == 0 {
            // Seen (relevantly) only by incomplete containers: widen.
            if s.incomplete_containers > 0
                && syscalls::name(key.abi, key.nr).is_some()
                && !rp.denies(*key)
            {
                allow
                    .entry(*key)
                    .or_default()
                    .push(AllowReason::IncompleteEvidence);
            }
            continue;
        }
        let name = syscalls::name(key.abi, key.nr);
        if name.is_none() {
            warnings.push(reasons::unnamed_warning(*key));
        }
        let failed = reasons::below_syscall_thresholds(s, &policy.syscall);
        if name.is_none() {
            continue;
        }
        if rp.denies(*key) {
            if failed.is_empty() {
                for f in rp.fallbacks(*key) {
                    allow.entry(*f).or_default().push(AllowReason::Fallback {
                        of: name.unwrap_or_default().to_string(),
                    });
                }
            }
            continue;
        }
        if failed.is_empty() {
            allow.entry(*key).or_default().push(AllowReason::Observed);
        } else if s.incomplete_containers > 0 {
            // Below the thresholds in the counted containers, but an
            // incomplete one used it too: allowed (never narrowed by the
            // lost calls), so it does not hold the image back either.
            allow
                .entry(*key)
                .or_default()
                .push(AllowReason::IncompleteEvidence);
        } else {
            below.insert(*key, failed);
        }
    }

    for key in rp.runtime_base() {
        if !abis.contains(&key.abi) {
            continue;
        }
        if rp.denies(*key) {
            warnings.push(reasons::runtime_base_denied(*key, policy));
        } else {
            allow
                .entry(*key)
                .or_default()
                .push(AllowReason::RuntimeBase);
        }
    }
    for (name, keys) in rp.must_allow() {
        let mut placed = false;
        for key in keys.iter().filter(|k| abis.contains(&k.abi)) {
            allow.entry(*key).or_default().push(AllowReason::MustAllow);
            placed = true;
        }
        if !placed && !abis.is_empty() {
            warnings.push(reasons::not_in_observed_abis("must_allow", name, &abis));
        }
    }
    for key in rp.baseline().iter().filter(|k| abis.contains(&k.abi)) {
        allow.entry(*key).or_default().push(AllowReason::Baseline);
    }
    // Added after denials: must_deny still wins (the policy's word over
    // the fleet's); the warning says the denials go on.
    for (key, reason) in rp.after_denials() {
        if rp.denies(*key) {
            warnings.push(reasons::after_denials_denied(*key));
        } else {
            allow
                .entry(*key)
                .or_default()
                .push(AllowReason::AfterDenials {
                    reason: reason.clone(),
                });
        }
    }
    if obs.out_of_range > 0 {
        warnings.push(reasons::out_of_range_warning(obs.out_of_range));
    }

    // Reachable, never observed (or observed below the syscall
    // thresholds): the tier (see `reachable`). Only named syscalls of
    // observed ABIs that no rule allows and the policy does not deny. A
    // below-threshold observation gets the tier only where a syscall never
    // observed would (tierable): the tier would let it run with no
    // observation at all, so the thin evidence widens nothing; otherwise
    // it keeps its own verdict.
    let mut tiered: BTreeMap<SyscallKey, String> = BTreeMap::new();
    let mut other_abi = Vec::new();
    let mut held_back = Vec::new();
    if let Some(r) = reach {
        for (key, chain) in &r.syscalls {
            let Some(name) = syscalls::name(key.abi, key.nr) else {
                continue;
            };
            if !abis.contains(&key.abi) {
                other_abi.push(format!("{} {name}", key.abi.as_str()));
                continue;
            }
            if allow.contains_key(key) || rp.denies(*key) {
                continue;
            }
            if below.contains_key(key) {
                if crate::reachable::tierable(name) {
                    tiered.insert(*key, chain.clone());
                }
                continue;
            }
            if !crate::reachable::tierable(name) {
                held_back.push(format!("{} {name}", key.abi.as_str()));
                continue;
            }
            tiered.insert(*key, chain.clone());
        }
        if policy.reachable == Tier::Allow {
            for (key, chain) in std::mem::take(&mut tiered) {
                allow
                    .entry(key)
                    .or_default()
                    .push(AllowReason::Reachable { chain });
            }
        }
    }

    // Name -> first ABI allowing it, for below-threshold names allowed
    // elsewhere (the Docker format allows a name in every listed ABI).
    let mut union: BTreeMap<&'static str, Abi> = BTreeMap::new();
    for key in allow.keys() {
        if let Some(n) = syscalls::name(key.abi, key.nr) {
            union.entry(n).or_insert(key.abi);
        }
    }
    // The log tier: a name the Docker format allows in some ABI is allowed
    // in all of them, and a probed name keeps its ENOSYS, which its
    // callers handle (see `probes`).
    let mut logged: BTreeMap<SyscallKey, String> = BTreeMap::new();
    if policy.reachable == Tier::Log {
        for (key, chain) in std::mem::take(&mut tiered) {
            let name = syscalls::name(key.abi, key.nr).unwrap_or_default();
            if !union.contains_key(name) && !crate::probes::is_probed(name) {
                logged.insert(key, chain);
            }
        }
    }

    let mut blockers = Vec::new();
    // Every key observed or allowed, in key order.
    let mut stats: BTreeMap<SyscallKey, Option<SyscallStats>> = allow
        .keys()
        .chain(logged.keys())
        .map(|k| (*k, None))
        .collect();
    for (k, s) in t.syscalls {
        stats.insert(k, Some(s));
    }
    let mut out: Vec<SyscallDecision> = Vec::with_capacity(stats.len());
    for (key, st) in stats {
        let name = syscalls::name(key.abi, key.nr);
        let verdict = if let Some(reasons) = allow.get_mut(&key) {
            reasons.sort();
            reasons.dedup();
            Verdict::Allowed {
                reasons: std::mem::take(reasons),
            }
        } else if let Some(chain) = logged.get(&key) {
            Verdict::Logged {
                chain: chain.clone(),
            }
        } else if let Some(failed) = below.remove(&key) {
            match name.and_then(|n| union.get(n)) {
                Some(other) => Verdict::Allowed {
                    reasons: vec![AllowReason::OtherAbi { abi: *other }],
                },
                None => {
                    blockers.push(reasons::below_threshold_blocker(key, &failed));
                    Verdict::Denied {
                        reason: DenyReason::BelowThreshold { failed },
                        errno: deny_errno(name),
                        blocks_enforce: true,
                    }
                }
            }
        } else if name.is_some() && rp.denies(key) {
            Verdict::Denied {
                reason: DenyReason::MustDeny,
                errno: deny_errno(name),
                blocks_enforce: false,
            }
        } else if name.is_none() && st.as_ref().is_some_and(|s| s.containers > 0) {
            let n = st.as_ref().map_or(0, |s| s.containers);
            blockers.push(reasons::unnamed_blocker(key, n));
            Verdict::Denied {
                reason: DenyReason::Unnamed,
                errno: EPERM,
                blocks_enforce: true,
            }
        } else {
            Verdict::Denied {
                reason: if name.is_none() {
                    DenyReason::Unnamed
                } else {
                    DenyReason::NotRelevant
                },
                errno: deny_errno(name),
                blocks_enforce: false,
            }
        };
        out.push(SyscallDecision {
            abi: key.abi,
            nr: key.nr,
            name,
            stats: st,
            verdict,
        });
    }

    let (state, state_reasons) = reasons::state_of(obs, policy, &t.confidence, blockers);
    let mut notes = reasons::filter_notes(&t.filters);
    notes.extend(reasons::incomplete_note(obs, &t.confidence));
    notes.extend(reasons::unverified_note(obs, &t.confidence));
    notes.extend(reasons::expected_note(&t.confidence));
    // Allowed by a rule of this ABI (not `OtherAbi`, which the union of
    // names allows in passing), and named: only a name can be allowed.
    let allowed: BTreeSet<SyscallKey> = allow
        .into_keys()
        .filter(|k| syscalls::name(k.abi, k.nr).is_some())
        .collect();
    let args = decide_args(obs, &out, policy, reach);
    let reach = reach.map(|r| reach_summary(r, policy.reachable, &out, other_abi, held_back));
    let logged: BTreeSet<SyscallKey> = logged.into_keys().collect();
    let entries = args.entries().len() + 4;
    if entries >= crate::args::ENTRIES_WARN {
        warnings.push(format!(
            "about {entries} syscall entries with the argument rules: runtimes that pull profiles as OCI artifacts refuse more than 128; narrow fewer syscalls (narrow_args) if this grows"
        ));
    }

    Decision {
        image: obs.image.clone(),
        digests: obs.digests.clone(),
        now_ms,
        state,
        reasons: state_reasons,
        notes,
        warnings,
        confidence: t.confidence,
        filters: t
            .filters
            .into_iter()
            .map(|(f, n)| (f.to_string(), n))
            .collect(),
        abis,
        syscalls: out,
        allowed,
        logged,
        reach,
        out_of_range: obs.out_of_range,
        args,
        policy: policy.clone(),
    }
}

/// The report's part of a reachability: counts, files, gaps, and the
/// soundness check (observed, allowed, not reachable), each with why.
fn reach_summary(
    r: &Reachability,
    tier: Tier,
    decisions: &[SyscallDecision],
    other_abi: Vec<String>,
    held_back: Vec<String>,
) -> ReachSummary {
    let mut reachable_observed = 0;
    let mut tiered = 0;
    let mut observed_not_reachable = Vec::new();
    for d in decisions {
        let key = SyscallKey {
            abi: d.abi,
            nr: d.nr,
        };
        let observed = d.stats.as_ref().is_some_and(|s| s.containers > 0);
        let reachable = r.syscalls.contains_key(&key);
        match (&d.verdict, observed, reachable) {
            (_, true, true) => reachable_observed += 1,
            (Verdict::Logged { .. }, _, _) => tiered += 1,
            (Verdict::Allowed { reasons }, _, _)
                if reasons
                    .iter()
                    .any(|r| matches!(r, AllowReason::Reachable { .. })) =>
            {
                tiered += 1
            }
            (Verdict::Allowed { reasons }, true, false) => {
                let name = d.name.unwrap_or("?");
                let phases = d.stats.as_ref().map(|s| s.relevant_phases);
                let why = if name == "restart_syscall" {
                    "the kernel restarts an interrupted call with it; no binary calls it"
                } else if phases.is_some_and(|p| {
                    p.contains(Phase::Runtime)
                        && !p.contains(Phase::Image)
                        && !p.contains(Phase::Unfiltered)
                }) {
                    "made by the container runtime after it installed the filter"
                } else if reasons
                    .iter()
                    .all(|r| matches!(r, AllowReason::Observed | AllowReason::IncompleteEvidence))
                {
                    "not reached from the files analysed: made by a binary that was not analysed, through a path the analysis does not follow, or by a site whose number is not constant"
                } else {
                    "allowed for another reason too (baseline, runtime base, policy)"
                };
                observed_not_reachable.push(format!("{} {name}: {why}", d.abi.as_str()));
            }
            _ => {}
        }
    }
    ReachSummary {
        tier,
        known: r.known(),
        reachable: r.syscalls.len(),
        reachable_observed,
        tiered,
        files: r.files.clone(),
        gaps: r.gaps.clone(),
        observed_not_reachable,
        other_abi,
        held_back,
    }
}
