//! The gate, case by case: exact decisions, reasons and effective sets.

mod common;

use common::*;
use publish::{build_publication, gate, Candidate, GateDecision, PublishedMeta, SyscallDiff};
use std::collections::{BTreeMap, BTreeSet};

/// What a target would hold after publishing `c` at `at_ms`.
fn published(c: &Candidate, at_ms: u64) -> PublishedMeta {
    let g = gate(None, c, &policy(0), at_ms);
    assert_eq!(g.decision, GateDecision::Publish);
    build_publication(c, &g, None, at_ms).unwrap().meta
}

fn x86(names: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
    BTreeMap::from([(
        "x86_64".to_string(),
        names.iter().map(|s| s.to_string()).collect(),
    )])
}

#[test]
fn first_publication_needs_min_hosts_for_every_syscall() {
    let c = cand("nginx:1.25", "enforce", &["read", "write"], 2, T0);
    let g = gate(None, &c, &policy(2), T0);
    assert_eq!(g.decision, GateDecision::Publish);
    assert_eq!(g.effective_allowed, x86(&["read", "write"]));
    assert_eq!(g.diff.to_text(), "+ x86_64 read\n+ x86_64 write\n");
    assert_eq!(g.shrink_eligible_at_ms, None);

    let g = gate(None, &c, &policy(3), T0);
    assert_eq!(
        g.decision,
        GateDecision::HoldBack(vec![
            "new syscall x86_64 read seen on 2 host(s), fewer than min_hosts 3".into(),
            "new syscall x86_64 write seen on 2 host(s), fewer than min_hosts 3".into(),
        ])
    );
    assert_eq!(g.effective_allowed, BTreeMap::new());
}

#[test]
fn new_syscall_on_one_host_is_held_back_by_name() {
    let prev = published(&cand("app", "enforce", &["read", "write"], 3, T0), T0);
    let mut c = cand(
        "app",
        "enforce",
        &["read", "write", "openat"],
        3,
        T0 + DAY_MS,
    );
    c.syscall_hosts
        .insert(("x86_64".into(), "openat".into()), 1);
    let g = gate(Some(&prev), &c, &policy(2), T0 + DAY_MS);
    assert_eq!(
        g.decision,
        GateDecision::HoldBack(vec![
            "new syscall x86_64 openat seen on 1 host(s), fewer than min_hosts 2".into()
        ])
    );
    // Nothing changes: the published set stays in force.
    assert_eq!(g.effective_allowed, x86(&["read", "write"]));
    assert_eq!(g.diff.to_text(), "+ x86_64 openat\n");

    // Seen on a second host: published. Old syscalls on one host do not
    // matter, only new ones.
    c.syscall_hosts
        .insert(("x86_64".into(), "openat".into()), 2);
    c.syscall_hosts.insert(("x86_64".into(), "read".into()), 1);
    let g = gate(Some(&prev), &c, &policy(2), T0 + DAY_MS);
    assert_eq!(g.decision, GateDecision::Publish);
    assert_eq!(g.effective_allowed, x86(&["openat", "read", "write"]));
}

#[test]
fn syscall_without_host_count_counts_as_zero_hosts() {
    let prev = published(&cand("app", "enforce", &["read"], 3, T0), T0);
    let mut c = cand("app", "enforce", &["read"], 3, T0);
    c.allowed.insert("i386".into(), ["read".to_string()].into());
    refresh_files(&mut c);
    let g = gate(Some(&prev), &c, &policy(1), T0);
    assert_eq!(
        g.decision,
        GateDecision::HoldBack(vec![
            "new syscall i386 read seen on 0 host(s), fewer than min_hosts 1".into()
        ])
    );
}

#[test]
fn must_deny_syscall_is_never_published() {
    let prev = published(&cand("app", "enforce", &["read"], 3, T0), T0);
    // Seen on plenty of hosts, still refused; the min_hosts rule does not
    // repeat it.
    let c = cand("app", "enforce", &["read", "ptrace"], 1, T0);
    let g = gate(Some(&prev), &c, &policy(2), T0);
    assert_eq!(
        g.decision,
        GateDecision::HoldBack(vec!["allows must-deny syscall x86_64 ptrace".into()])
    );
    let c = cand("app", "enforce", &["read", "ptrace"], 50, T0);
    let g = gate(Some(&prev), &c, &policy(2), T0);
    assert_eq!(
        g.decision,
        GateDecision::HoldBack(vec!["allows must-deny syscall x86_64 ptrace".into()])
    );
    assert_eq!(g.effective_allowed, x86(&["read"]));

    // A must-deny syscall already published before the policy listed it is
    // refused too when the candidate changes.
    let mut old = cand("app", "enforce", &["read", "kexec_load"], 3, T0);
    old.must_deny.clear();
    let prev = published(&old, T0);
    let c = cand("app", "enforce", &["read", "write", "kexec_load"], 3, T0);
    let g = gate(Some(&prev), &c, &policy(2), T0);
    assert_eq!(
        g.decision,
        GateDecision::HoldBack(vec!["allows must-deny syscall x86_64 kexec_load".into()])
    );
}

#[test]
fn shrink_waits_for_the_window() {
    let prev = published(
        &cand("app", "enforce", &["read", "write", "flock"], 3, T0),
        T0,
    );
    let mut c = cand("app", "enforce", &["read", "write"], 3, T0 + 10 * DAY_MS);
    let last = T0 + 3 * DAY_MS; // 2023-11-17T22:13:20Z
    c.syscall_last_seen_ms
        .insert(("x86_64".into(), "flock".into()), last);

    // 5 days after the last use: held back, with the eligible time.
    let now = last + 5 * DAY_MS;
    let g = gate(Some(&prev), &c, &policy(2), now);
    assert_eq!(
        g.decision,
        GateDecision::HoldBack(vec![
            "removes x86_64 flock: last used 2023-11-17T22:13:20Z (5d ago); removal eligible at 2023-11-24T22:13:20Z (shrink_after 7d)".into()
        ])
    );
    assert_eq!(g.shrink_eligible_at_ms, Some(last + 7 * DAY_MS));
    assert_eq!(g.effective_allowed, x86(&["flock", "read", "write"]));
    assert_eq!(g.diff.to_text(), "- x86_64 flock\n");

    // One millisecond before: still held. Exactly at the window: published.
    let g = gate(Some(&prev), &c, &policy(2), last + 7 * DAY_MS - 1);
    assert!(matches!(g.decision, GateDecision::HoldBack(_)));
    let g = gate(Some(&prev), &c, &policy(2), last + 7 * DAY_MS);
    assert_eq!(g.decision, GateDecision::Publish);
    assert_eq!(g.effective_allowed, x86(&["read", "write"]));
    assert_eq!(g.shrink_eligible_at_ms, None);
    let g = gate(Some(&prev), &c, &policy(2), last + 8 * DAY_MS);
    assert_eq!(g.decision, GateDecision::Publish);
}

#[test]
fn shrink_with_unknown_last_use_counts_from_the_publication() {
    let prev = published(&cand("app", "enforce", &["read", "flock"], 3, T0), T0);
    let c = cand("app", "enforce", &["read"], 3, T0);
    assert!(!c
        .syscall_last_seen_ms
        .contains_key(&("x86_64".into(), "flock".into())));
    let g = gate(Some(&prev), &c, &policy(2), T0 + DAY_MS);
    assert_eq!(
        g.decision,
        GateDecision::HoldBack(vec![
            "removes x86_64 flock: last use unknown, published 2023-11-14T22:13:20Z; removal eligible at 2023-11-21T22:13:20Z (shrink_after 7d)".into()
        ])
    );
    assert_eq!(g.shrink_eligible_at_ms, Some(T0 + 7 * DAY_MS));
    let g = gate(Some(&prev), &c, &policy(2), T0 + 7 * DAY_MS);
    assert_eq!(g.decision, GateDecision::Publish);
}

#[test]
fn all_reasons_are_reported_in_order() {
    let prev = published(
        &cand("app", "enforce", &["read", "flock", "mmap"], 3, T0),
        T0,
    );
    let mut c = cand(
        "app",
        "enforce",
        &["read", "ptrace", "openat", "statx"],
        1,
        T0,
    );
    c.syscall_hosts.insert(("x86_64".into(), "statx".into()), 5);
    c.syscall_last_seen_ms
        .insert(("x86_64".into(), "flock".into()), T0);
    c.syscall_last_seen_ms
        .insert(("x86_64".into(), "mmap".into()), T0 + DAY_MS);
    let g = gate(Some(&prev), &c, &policy(2), T0 + 2 * DAY_MS);
    assert_eq!(
        g.decision,
        GateDecision::HoldBack(vec![
            "allows must-deny syscall x86_64 ptrace".into(),
            "new syscall x86_64 openat seen on 1 host(s), fewer than min_hosts 2".into(),
            "removes x86_64 flock: last used 2023-11-14T22:13:20Z (2d ago); removal eligible at 2023-11-21T22:13:20Z (shrink_after 7d)".into(),
            "removes x86_64 mmap: last used 2023-11-15T22:13:20Z (1d ago); removal eligible at 2023-11-22T22:13:20Z (shrink_after 7d)".into(),
        ])
    );
    assert_eq!(g.shrink_eligible_at_ms, Some(T0 + 8 * DAY_MS));
    assert_eq!(
        g.diff,
        SyscallDiff {
            added: x86(&["openat", "ptrace", "statx"]),
            removed: x86(&["flock", "mmap"]),
        }
    );
    // Pure: same inputs, same outcome.
    assert_eq!(g, gate(Some(&prev), &c, &policy(2), T0 + 2 * DAY_MS));
}

#[test]
fn unchanged_means_same_files_and_state() {
    let c = cand("app", "enforce", &["read", "write"], 3, T0);
    let prev = published(&c, T0);
    let g = gate(Some(&prev), &c, &policy(2), T0 + DAY_MS);
    assert_eq!(g.decision, GateDecision::Unchanged);
    assert_eq!(g.version.full, prev.version);
    assert!(g.diff.is_empty());
    assert_eq!(g.effective_allowed, prev.allowed);

    // Unchanged wins over rules that would hold back a new publication
    // (raising min_hosts does not retract what is published).
    let g = gate(Some(&prev), &c, &policy(10), T0 + DAY_MS);
    assert_eq!(g.decision, GateDecision::Unchanged);

    // Same files, different state label: republished.
    let mut relabel = c.clone();
    relabel.state = "log".into();
    let g = gate(Some(&prev), &relabel, &policy(2), T0 + DAY_MS);
    assert_eq!(g.decision, GateDecision::Publish);
    assert_eq!(g.version.full, prev.version);
}

#[test]
fn not_ready_publishes_nothing() {
    let prev = published(&cand("app", "enforce", &["read"], 3, T0), T0);
    let mut c = cand("app", "not_ready", &["read", "ptrace"], 0, T0);
    c.confidence_summary = "confidence 0.41 < 0.95 (2 hosts, 3 containers)".into();
    let g = gate(Some(&prev), &c, &policy(2), T0);
    assert_eq!(
        g.decision,
        GateDecision::NotReady(
            "the compiler marked the profile not_ready: confidence 0.41 < 0.95 (2 hosts, 3 containers)"
                .into()
        )
    );
    assert_eq!(g.effective_allowed, x86(&["read"]));
    c.confidence_summary.clear();
    assert_eq!(
        gate(None, &c, &policy(2), T0).decision,
        GateDecision::NotReady("the compiler marked the profile not_ready".into())
    );
}

#[test]
fn unknown_state_is_held_back() {
    let c = cand("app", "audit", &["read"], 3, T0);
    assert_eq!(
        gate(None, &c, &policy(2), T0).decision,
        GateDecision::HoldBack(vec![
            "unknown state \"audit\" (expected enforce, log or not_ready)".into()
        ])
    );
}

#[test]
fn log_state_follows_the_same_rules() {
    let prev = published(&cand("app", "log", &["read"], 3, T0), T0);
    let c = cand("app", "log", &["read", "openat"], 1, T0);
    assert_eq!(
        gate(Some(&prev), &c, &policy(2), T0).decision,
        GateDecision::HoldBack(vec![
            "new syscall x86_64 openat seen on 1 host(s), fewer than min_hosts 2".into()
        ])
    );
}
