//! Candidate builders shared by the tests.
#![allow(dead_code)]

use publish::{Candidate, GatePolicy};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

pub const DAY_MS: u64 = 86_400_000;
/// 2023-11-14T22:13:20Z
pub const T0: u64 = 1_700_000_000_000;

pub fn policy(min_hosts: u64) -> GatePolicy {
    GatePolicy {
        min_hosts,
        shrink_after: Duration::from_secs(7 * 86_400),
    }
}

/// A candidate for `image` allowing `syscalls` on x86_64, each seen on
/// `hosts` hosts and last used at `last_ms`. Its files are derived from the
/// allowed set so a different set gives a different version.
pub fn cand(image: &str, state: &str, syscalls: &[&str], hosts: u64, last_ms: u64) -> Candidate {
    let names: BTreeSet<String> = syscalls.iter().map(|s| s.to_string()).collect();
    let mut c = Candidate {
        image: image.to_string(),
        state: state.to_string(),
        allowed: BTreeMap::from([("x86_64".to_string(), names.clone())]),
        must_deny: ["ptrace".to_string(), "kexec_load".to_string()].into(),
        confidence_summary: format!(
            "confidence: {} syscalls, 3 hosts, 120 containers",
            names.len()
        ),
        report_text: format!("report for {image}\n"),
        report_json: format!("{{\"image\":\"{image}\"}}\n"),
        ..Default::default()
    };
    for n in &names {
        c.syscall_hosts.insert(("x86_64".into(), n.clone()), hosts);
        c.syscall_last_seen_ms
            .insert(("x86_64".into(), n.clone()), last_ms);
    }
    refresh_files(&mut c);
    c
}

/// Recomputes the files from state and allowed set (what a compiler would
/// render).
pub fn refresh_files(c: &mut Candidate) {
    let list: Vec<String> = c
        .allowed
        .iter()
        .flat_map(|(a, ns)| ns.iter().map(move |n| format!("{a}:{n}")))
        .collect();
    let body = format!("{{\"state\":\"{}\",\"allow\":{:?}}}\n", c.state, list);
    c.files = BTreeMap::from([
        ("profile.json".to_string(), body.clone().into_bytes()),
        (
            "seccompprofile.yaml".to_string(),
            format!("allow: {list:?}\n").into_bytes(),
        ),
        (
            format!("kubelet/sandmine/{}.json", publish::image_slug(&c.image)),
            body.into_bytes(),
        ),
    ]);
}

/// Every entry under `root`, sorted: `d path/`, `f path (N bytes)`,
/// `l path -> target`.
pub fn tree(root: &std::path::Path) -> Vec<String> {
    fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let md = std::fs::symlink_metadata(&p).unwrap();
            if md.file_type().is_symlink() {
                out.push(format!(
                    "l {rel} -> {}",
                    std::fs::read_link(&p).unwrap().display()
                ));
            } else if md.is_dir() {
                out.push(format!("d {rel}/"));
                walk(root, &p, out);
            } else {
                out.push(format!("f {rel} ({} bytes)", md.len()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}
