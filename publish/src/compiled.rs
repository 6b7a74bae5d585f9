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
    let mut confidence_summary = format!(
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
    if cf.incomplete_containers > 0 {
        confidence_summary.push_str(&format!(
            "; {} incomplete containers (calls lost) not counted",
            cf.incomplete_containers
        ));
    }
    if cf.unverified_containers > 0 {
        confidence_summary.push_str(&format!(
            "; {} unverified containers (cgroup not verified) not used",
            cf.unverified_containers
        ));
    }
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
        log_variant: None,
        after_denials: Vec::new(),
    }
}

/// `cand` with its log-mode compile (the same image compiled under
/// `Mode::Log`) attached for an image an operator forced into log mode.
/// The variant's state is `log` where the compiler's is `enforce`: its
/// profile logs what it does not allow; `not_ready` stays not ready.
pub fn with_log_variant(mut cand: Candidate, log: Candidate) -> Candidate {
    cand.log_variant = Some(Box::new(as_log(log)));
    cand
}

/// A candidate compiled under `Mode::Log` as the publisher states it: `log`
/// where the compiler's state is `enforce` (its profile logs what it does
/// not allow); `not_ready` stays not ready.
pub fn as_log(mut log: Candidate) -> Candidate {
    if log.state == "enforce" {
        log.state = "log".into();
    }
    log.log_variant = None;
    log
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::fleet::{ContainerIncidence, IncidenceEntry};
    use schemas::{Abi, Phase, PhaseSet};

    /// A syscall only incomplete containers used is allowed, but for the
    /// gate it was seen on no host (they are counted nowhere), so a new one
    /// holds the profile back like any syscall of too few hosts.
    #[test]
    fn incomplete_evidence_counts_no_host_for_the_gate() {
        let entry = |nr: u32| IncidenceEntry {
            abi: Abi::X86_64,
            nr,
            phases: PhaseSet(Phase::Unfiltered.bit()),
            first_seen_ms: 0,
            last_seen_ms: 1000,
        };
        let c = |i: u64, host: &str, incomplete: bool, nrs: &[u32]| ContainerIncidence {
            host_id: host.into(),
            boot_id: "b".into(),
            container_id: format!("c{i}"),
            started_at_ms: i,
            last_seen_ms: 1000,
            seccomp: "unconfined".into(),
            incomplete,
            unverified: false,
            syscalls: nrs.iter().map(|n| entry(*n)).collect(),
        };
        // read (0) everywhere; ptrace (101) only in the incomplete one.
        let obs = ImageObservations {
            image: "app:1".into(),
            digests: vec![],
            hosts: 3,
            containers: 4,
            container_seconds: 4,
            first_seen_ms: 0,
            last_seen_ms: 1000,
            syscalls: vec![],
            incidence: vec![
                c(0, "h1", false, &[0]),
                c(1, "h2", false, &[0]),
                c(2, "h3", false, &[0]),
                c(3, "h3", true, &[0, 101]),
            ],
            out_of_range: 0,
            args: Default::default(),
            executed: Default::default(),
        };
        let policy = Policy::default();
        let compiled =
            policy_compiler::compile_image(&obs, &policy.resolve().unwrap(), 1000).unwrap();
        let cand = candidate(&obs, &compiled, &policy);
        let hosts = |n: &str| cand.syscall_hosts[&("x86_64".to_string(), n.to_string())];
        assert_eq!((hosts("read"), hosts("ptrace")), (3, 0));
        assert!(cand.allowed["x86_64"].contains("ptrace"));
        assert!(
            cand.confidence_summary
                .ends_with("; 1 incomplete containers (calls lost) not counted"),
            "{}",
            cand.confidence_summary
        );
    }
}
