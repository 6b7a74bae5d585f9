//! The English of a decision: the sentences that say, with the numbers, why
//! a syscall is below a threshold and why an image is in its state. Rules
//! live in [`crate::decide`]; this module only words them.

use crate::confidence::Confidence;
use crate::decide::{State, SyscallStats};
use crate::policy::{ImageBars, Policy, SyscallThresholds};
use schemas::fleet::ImageObservations;
use schemas::{syscalls, Abi, SyscallKey};
use std::collections::BTreeMap;

/// `x86_64 read`, or `x86_64 #1000` for a number with no name.
fn label(key: SyscallKey) -> String {
    match syscalls::name(key.abi, key.nr) {
        Some(n) => format!("{} {n}", key.abi),
        None => format!("{} #{}", key.abi, key.nr),
    }
}

/// The per-syscall thresholds `s` misses, one sentence each.
pub(crate) fn below_syscall_thresholds(s: &SyscallStats, th: &SyscallThresholds) -> Vec<String> {
    let mut failed = Vec::new();
    if s.hosts < th.min_hosts {
        failed.push(format!(
            "seen on {} host(s), the policy needs at least {}",
            s.hosts, th.min_hosts
        ));
    }
    if s.containers < th.min_containers {
        failed.push(format!(
            "seen in {} container(s), the policy needs at least {}",
            s.containers, th.min_containers
        ));
    }
    if s.share < th.min_container_share {
        failed.push(format!(
            "used by a share of {} of the containers, the policy needs at least {}",
            fmt_share(s.share),
            fmt_share(th.min_container_share)
        ));
    }
    failed
}

pub(crate) fn below_threshold_blocker(key: SyscallKey, failed: &[String]) -> String {
    format!(
        "{} was used in a relevant phase but is below the syscall thresholds ({}); an enforced profile would deny it, so the image stays in log mode until it meets them or the policy names it in must_deny or must_allow",
        label(key),
        failed.join("; ")
    )
}

pub(crate) fn unnamed_blocker(key: SyscallKey, containers: u64) -> String {
    format!(
        "{} was used in {containers} container(s) but has no name in sandmine's syscall table (a kernel newer than the table); no profile can allow it, so the image stays in log mode",
        label(key)
    )
}

pub(crate) fn unnamed_warning(key: SyscallKey) -> String {
    format!(
        "{} syscall {} has no name in sandmine's table and cannot be allowed in a Docker profile",
        key.abi, key.nr
    )
}

pub(crate) fn out_of_range_warning(calls: u64) -> String {
    format!(
        "{calls} calls had numbers outside the capture's table (a newer kernel than this build knows); they cannot be allowed"
    )
}

pub(crate) fn runtime_base_denied(key: SyscallKey, policy: &Policy) -> String {
    let rt = policy.runtime.as_ref();
    format!(
        "runtime base: {} is in must_deny; the runtime ({} {}) used it after installing the filter, so containers may fail to start",
        label(key),
        rt.map_or("?", |r| r.name.as_str()),
        rt.map_or("", |r| r.version.as_str())
    )
}

pub(crate) fn after_denials_denied(key: SyscallKey) -> String {
    format!(
        "on_denials = \"add\": {} was denied under the enforced profile, but it is in must_deny, so it stays denied and the denials go on",
        label(key)
    )
}

pub(crate) fn not_in_observed_abis(list: &str, name: &str, abis: &[Abi]) -> String {
    format!(
        "{list}: {name} exists in none of the observed ABIs ({}); ignored",
        abis.iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// What the fleet could not see: containers that ran under a filter.
pub(crate) fn filter_notes(filters: &BTreeMap<&str, u64>) -> Vec<String> {
    let mut notes = Vec::new();
    let filtered: u64 = filters
        .iter()
        .filter(|(f, _)| **f != "unconfined")
        .map(|(_, n)| *n)
        .sum();
    let total: u64 = filters.values().sum();
    if filtered > 0 {
        notes.push(format!(
            "{filtered} of {total} container(s) ran under a seccomp filter ({}); a syscall such a filter denies never reaches the collector, so those containers could not show it. Syscalls denied only by those filters stay denied here (they were denied before too).",
            filters
                .iter()
                .filter(|(f, _)| **f != "unconfined")
                .map(|(f, n)| format!("{f}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    notes
}

/// The image's incomplete containers, when it has some: how many, and
/// that they were not counted.
pub(crate) fn incomplete_note(obs: &ImageObservations, conf: &Confidence) -> Option<String> {
    let n = conf.incomplete_containers;
    (n > 0).then(|| {
        format!(
            "{n} of {} container(s) of {} are incomplete: the collector lost some of their calls (over capacity), so what they show is a subset of what they did. Their syscalls may widen the profile (allowing more is the safe direction), but they are not counted: not as containers or hosts, not in container-hours, coverage or novelty, and never toward enforcement",
            obs.incidence.len(),
            obs.image
        )
    })
}

/// The image's unverified containers, when it has some: how many, and
/// that they were neither counted nor let widen the profile.
pub(crate) fn unverified_note(obs: &ImageObservations, conf: &Confidence) -> Option<String> {
    let n = conf.unverified_containers;
    (n > 0).then(|| {
        format!(
            "{n} of {} container(s) of {} are unverified: their cgroup was not provably their runtime's (a container id under a delegated or foreign parent cgroup, or one the engine does not know), so their calls may be forged. They are stored but not used: not counted as containers or hosts, not in container-hours, coverage or novelty, never toward enforcement, and, unlike incomplete containers, their syscalls do not widen the profile either",
            obs.incidence.len(),
            obs.image
        )
    })
}

/// Why the confidence figures leave some syscalls out: the reachability
/// rule (see `tally::tally_expecting`).
pub(crate) fn expected_note(conf: &Confidence) -> Option<String> {
    let n = conf.expected;
    (n > 0).then(|| {
        format!(
            "{n} observed syscall(s) are expected: the image's binaries can reach them (the reachable set is known) and the reachability tier lets them run whether or not they are observed. Coverage, the Chao2 estimate, the novelty of recent containers and the quiet time are figured on the other syscalls only, since only an unseen syscall outside the tier can break a container once enforced"
        )
    })
}

/// ` (N incomplete container(s) ... not counted)` when there are some.
fn not_counted(conf: &Confidence) -> String {
    match conf.incomplete_containers {
        0 => String::new(),
        n => format!(" ({n} more lost calls and are not counted)"),
    }
}

pub(crate) fn fmt_share(x: f64) -> String {
    crate::decimal::fixed(x, 4)
}

pub(crate) fn fmt_hours(ms: u64) -> String {
    let mut s = crate::decimal::fixed(ms as f64 / 3_600_000.0, 1);
    s.push_str(" h");
    s
}

/// The bars of one level that `conf` misses, as sentences.
fn missed(conf: &Confidence, b: &ImageBars, level: &str) -> Vec<String> {
    let mut v = Vec::new();
    if conf.containers < b.min_containers {
        v.push(format!(
            "{} container(s) made a profile-relevant syscall{}; {level} needs at least {}",
            conf.containers,
            not_counted(conf),
            b.min_containers
        ));
    }
    if conf.hosts < b.min_hosts {
        v.push(format!(
            "they ran on {} host(s); {level} needs at least {}",
            conf.hosts, b.min_hosts
        ));
    }
    if conf.container_hours < b.min_container_hours {
        v.push(format!(
            "{:.2} container-hours observed; {level} needs at least {:.2}",
            conf.container_hours, b.min_container_hours
        ));
    }
    if conf.coverage < b.min_coverage {
        v.push(format!(
            "sample coverage is {} (Q1 = {}, Q2 = {}, U = {}, T = {}); {level} needs at least {}",
            fmt_share(conf.coverage),
            conf.incidence.q1,
            conf.incidence.q2,
            conf.incidence.u,
            conf.incidence.t,
            fmt_share(b.min_coverage)
        ));
    }
    if conf.quiet_hours() < b.min_quiet_hours {
        v.push(match conf.quiet_ms {
            Some(q) => format!(
                "the last new syscall was first seen {} ago; {level} needs {:.1} h without a new one",
                fmt_hours(q),
                b.min_quiet_hours
            ),
            None => format!(
                "no syscall was seen yet; {level} needs {:.1} h without a new one",
                b.min_quiet_hours
            ),
        });
    }
    if conf.recent_new_share > b.max_recent_new_share {
        v.push(format!(
            "{} of the last {} container(s) showed a syscall no earlier container had (share {}); {level} allows at most {}",
            conf.recent_new,
            conf.recent_window,
            fmt_share(conf.recent_new_share),
            fmt_share(b.max_recent_new_share)
        ));
    }
    v
}

pub(crate) fn state_of(
    obs: &ImageObservations,
    policy: &Policy,
    conf: &Confidence,
    blockers: Vec<String>,
) -> (State, Vec<String>) {
    if conf.containers == 0 {
        return (
            State::NotReady,
            vec![format!(
                "no container of {} made a syscall after the runtime's set-up ({} container(s) known to the store{}); nothing to build a profile from",
                obs.image,
                obs.containers,
                match (conf.incomplete_containers, conf.unverified_containers) {
                    (0, 0) => String::new(),
                    (n, 0) => format!(", of which {n} lost calls and are not counted"),
                    (0, u) => format!(", of which {u} are unverified and not used"),
                    (n, u) => format!(
                        ", of which {n} lost calls and are not counted, and {u} are unverified and not used"
                    ),
                }
            )],
        );
    }
    let log = missed(conf, &policy.log, "log mode");
    if !log.is_empty() {
        return (State::NotReady, log);
    }
    let mut reasons = missed(conf, &policy.enforce, "enforcement");
    reasons.extend(blockers);
    if !reasons.is_empty() {
        return (State::Log, reasons);
    }
    (
        State::Enforce,
        vec![format!(
            "every enforcement bar is met: {} containers on {} hosts (needs {} on {}), {:.2} container-hours (needs {:.2}), coverage {} (needs {}), {} without a new syscall (needs {:.1} h), {} of the last {} containers showed something new (at most {} allowed), and every syscall used in a relevant phase meets the syscall thresholds or is denied by name",
            conf.containers,
            conf.hosts,
            policy.enforce.min_containers,
            policy.enforce.min_hosts,
            conf.container_hours,
            policy.enforce.min_container_hours,
            fmt_share(conf.coverage),
            fmt_share(policy.enforce.min_coverage),
            fmt_hours(conf.quiet_ms.unwrap_or(0)),
            policy.enforce.min_quiet_hours,
            conf.recent_new,
            conf.recent_window,
            fmt_share(policy.enforce.max_recent_new_share)
        )],
    )
}
