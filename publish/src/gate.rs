//! The gate: may this candidate replace what is published? A pure function
//! of (previous meta, candidate, policy, now).
//!
//! Rules, checked in this order:
//! 1. state `not_ready` -> [`GateDecision::NotReady`]; a state other than
//!    `enforce`/`log`/`not_ready` -> held back.
//! 2. same version (same files) and same state as published ->
//!    [`GateDecision::Unchanged`].
//! 3. otherwise every violated rule adds a reason, and any reason holds the
//!    whole candidate back ([`GateDecision::HoldBack`]):
//!    - the candidate allows a must-deny syscall;
//!    - a syscall new to the published set was seen on fewer than
//!      `min_hosts` hosts (with nothing published, every syscall is new);
//!    - a syscall the candidate drops was last used less than
//!      `shrink_after` ago (when its last use is unknown, the previous
//!      publication time stands in for it). The reason says when the
//!      removal becomes eligible.
//!
//! Holding back entirely (rather than publishing with the removed syscalls
//! kept) is deliberate: the candidate's files are compiled artefacts
//! (JSON, YAML, BPF) the publisher cannot edit consistently, and the
//! profile in force already allows everything the workload needs. The
//! aggregator can instead feed the published allowed set back to the
//! compiler to keep the syscalls awaiting removal.

use crate::candidate::{Candidate, GatePolicy, PublishedMeta};
use crate::diff::SyscallDiff;
use crate::version::Version;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use sysutil::clock::rfc3339_s as fmt_utc;
use sysutil::duration::format as fmt_duration;

/// What to do with a candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateDecision {
    Publish,
    /// Same files and state as published: nothing to write.
    Unchanged,
    /// Not published; why, one reason per offending syscall, naming it
    /// and the numbers.
    HoldBack(Vec<String>),
    /// The compiler did not have enough evidence; nothing published.
    NotReady(String),
}

/// The gate's verdict plus what it computed on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateOutcome {
    pub decision: GateDecision,
    /// The candidate's version.
    pub version: Version,
    /// Published allowed set -> candidate allowed set.
    pub diff: SyscallDiff,
    /// The allowed set in force after this decision: the candidate's on
    /// Publish, the published one otherwise (empty when none).
    pub effective_allowed: BTreeMap<String, BTreeSet<String>>,
    /// When the last pending removal becomes eligible (only when some
    /// removal is held back).
    pub shrink_eligible_at_ms: Option<u64>,
}

pub fn gate(
    previous: Option<&PublishedMeta>,
    cand: &Candidate,
    gp: &GatePolicy,
    now_ms: u64,
) -> GateOutcome {
    let version = Version::of_files(&cand.files);
    let published = previous.map(|p| p.allowed.clone()).unwrap_or_default();
    let diff = SyscallDiff::between(&published, &cand.allowed);
    let mut out = GateOutcome {
        decision: GateDecision::Unchanged,
        version,
        diff,
        effective_allowed: published,
        shrink_eligible_at_ms: None,
    };

    match cand.state.as_str() {
        "enforce" | "log" => {}
        "not_ready" => {
            let why = if cand.confidence_summary.is_empty() {
                "the compiler marked the profile not_ready".to_string()
            } else {
                format!(
                    "the compiler marked the profile not_ready: {}",
                    cand.confidence_summary
                )
            };
            out.decision = GateDecision::NotReady(why);
            return out;
        }
        other => {
            out.decision = GateDecision::HoldBack(vec![format!(
                "unknown state {other:?} (expected enforce, log or not_ready)"
            )]);
            return out;
        }
    }

    if let Some(p) = previous {
        if p.version == out.version.full && p.state == cand.state {
            return out;
        }
    }

    let mut reasons = Vec::new();
    for (abi, names) in &cand.allowed {
        for n in names.intersection(&cand.must_deny) {
            reasons.push(format!("allows must-deny syscall {abi} {n}"));
        }
    }
    for (abi, names) in &out.diff.added {
        for n in names.iter().filter(|n| !cand.must_deny.contains(*n)) {
            let hosts = cand
                .syscall_hosts
                .get(&(abi.clone(), n.clone()))
                .copied()
                .unwrap_or(0);
            if hosts < gp.min_hosts {
                reasons.push(format!(
                    "new syscall {abi} {n} seen on {hosts} host(s), fewer than min_hosts {}",
                    gp.min_hosts
                ));
            }
        }
    }
    let shrink_ms = u64::try_from(gp.shrink_after.as_millis()).unwrap_or(u64::MAX);
    let published_at = previous.map(|p| p.published_at_ms).unwrap_or(0);
    for (abi, names) in &out.diff.removed {
        for n in names {
            let last = cand
                .syscall_last_seen_ms
                .get(&(abi.clone(), n.clone()))
                .copied();
            let basis = last.unwrap_or(published_at);
            let eligible = basis.saturating_add(shrink_ms);
            if now_ms < eligible {
                let when = match last {
                    Some(t) => format!(
                        "last used {} ({} ago)",
                        fmt_utc(t),
                        fmt_duration(Duration::from_millis(now_ms.saturating_sub(t)))
                    ),
                    None => format!("last use unknown, published {}", fmt_utc(basis)),
                };
                reasons.push(format!(
                    "removes {abi} {n}: {when}; removal eligible at {} (shrink_after {})",
                    fmt_utc(eligible),
                    fmt_duration(gp.shrink_after)
                ));
                out.shrink_eligible_at_ms = Some(
                    out.shrink_eligible_at_ms
                        .map_or(eligible, |e| e.max(eligible)),
                );
            }
        }
    }

    if reasons.is_empty() {
        out.decision = GateDecision::Publish;
        out.effective_allowed = cand.allowed.clone();
    } else {
        out.decision = GateDecision::HoldBack(reasons);
    }
    out
}
