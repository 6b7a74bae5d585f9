//! From the policy compiler's result to the publisher's input: the one
//! place that knows both shapes.

use crate::Candidate;
use policy_compiler::decide::{AllowReason, Verdict};
use policy_compiler::{Compiled, Policy};
use schemas::fleet::ImageObservations;
use std::collections::BTreeMap;

/// A compiled image as the publisher wants it: its files and reports, the
/// allowed names, and per allowed syscall the hosts and last use the gate
/// judges it by.
pub fn candidate(obs: &ImageObservations, c: &Compiled, policy: &Policy) -> Candidate {
    let d = &c.decision;
    // One spelling of each state: the compiler's (`enforce`, `log`,
    // `not_ready`), as in every report.
    let state = d.state.as_str();
    let allowed = policy_compiler::compile::allowed_sets(c);
    let mut syscall_last_seen_ms = BTreeMap::new();
    for t in &obs.syscalls {
        if let Some(name) = schemas::syscalls::name(t.abi, t.nr) {
            let key = (t.abi.as_str().to_string(), name.to_string());
            syscall_last_seen_ms.insert(key, t.last_seen_ms);
        }
    }
    // Hosts per allowed syscall, as the gate judges new ones: the hosts
    // that used it in a profile-relevant phase when it is allowed because
    // it was observed; the whole image's hosts when the policy justifies
    // it (baseline, runtime base, must-allow, a fallback), since those do
    // not rest on any one host's word. Evidence of incomplete containers
    // counts no host at all (they are counted nowhere), so a syscall only
    // they used is new on 0 hosts for the gate.
    let mut syscall_hosts = BTreeMap::new();
    for sd in &d.syscalls {
        let (Some(name), Verdict::Allowed { reasons }) = (sd.name, &sd.verdict) else {
            continue;
        };
        let observed_only = reasons.iter().all(|r| {
            matches!(
                r,
                AllowReason::Observed
                    | AllowReason::OtherAbi { .. }
                    | AllowReason::IncompleteEvidence
            )
        });
        let hosts = if observed_only {
            sd.stats.as_ref().map(|s| s.hosts).unwrap_or(0)
        } else {
            obs.hosts
        };
        syscall_hosts.insert((sd.abi.as_str().to_string(), name.to_string()), hosts);
    }
    for (abi, names) in &allowed {
        for n in names {
            syscall_hosts
                .entry((abi.clone(), n.clone()))
                .or_insert(obs.hosts);
        }
    }
    let cf = &d.confidence;
    let confidence_summary = format!(
        "{} containers on {} hosts, {:.1} container-hours; coverage {:.4}, Chao2 {:.1} for {} observed; {} of the last {} containers showed a new syscall",
        cf.containers,
        cf.hosts,
        cf.container_hours,
        cf.coverage,
        cf.chao2,
        cf.incidence.s_obs,
        cf.recent_new,
        cf.recent_window
    );
    Candidate {
        image: obs.image.clone(),
        state: state.to_string(),
        files: c.files.clone(),
        report_text: c.report_text.clone(),
        report_json: c.report_json.clone(),
        allowed,
        syscall_hosts,
        syscall_last_seen_ms,
        must_deny: policy.must_deny.iter().cloned().collect(),
        confidence_summary,
    }
}
