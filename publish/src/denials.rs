//! Publishing reacts to denials (issue 11): when the profile version in
//! force is enforcing and the fleet reports seccomp denials under exactly
//! that version, of a syscall the fleet had seen (so a real workload needs
//! it), on at least the gate's `min_hosts` hosts, the round either forces
//! the image back into log mode (`[publish] on_denials = "log"`, a
//! force-log lever) or adds those syscalls to its profile (`"add"`,
//! recorded in the meta's `after_denials`), with a reason that names the
//! denials, in the meta and the git commit. Pure: the binary reads the
//! store and the target and applies the answer, so a profile never keeps
//! breaking silently.

use crate::candidate::PublishedMeta;
use schemas::{syscalls, Abi, DenyAction};
use std::collections::BTreeSet;

/// One kind of denial of an image under one profile version since the
/// version in force was published (a row of `sandmine query denials`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    pub abi: Abi,
    pub nr: u32,
    pub action: DenyAction,
    /// `SeccompFilter::version` of the containers' filter.
    pub profile: String,
    pub denials: u64,
    pub hosts: u64,
    pub containers: u64,
}

/// What the denials under a version in force call for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reaction {
    /// One sentence naming the version and every denial that counts.
    pub reason: String,
    /// The denied syscalls that count, sorted, once each.
    pub syscalls: BTreeSet<(Abi, u32)>,
}

/// Why the version `meta` describes (its `profile_json`, the published
/// OCI profile file) must not go on as it is, and which syscalls, or
/// `None`: it is not an enforcing version nobody holds with a lever, or no
/// denial under it is of a syscall in `seen` on at least `min_hosts`
/// hosts.
pub fn reaction(
    meta: &PublishedMeta,
    profile_json: &[u8],
    denied: &[Denied],
    seen: &BTreeSet<(Abi, u32)>,
    min_hosts: u64,
) -> Option<Reaction> {
    if meta.state != "enforce" || !meta.levers.is_empty() {
        return None;
    }
    let version = schemas::wire::profile_version(profile_json);
    let counted: Vec<&Denied> = denied
        .iter()
        .filter(|d| d.profile == version && d.hosts >= min_hosts && seen.contains(&(d.abi, d.nr)))
        .collect();
    let hits: Vec<String> = counted
        .iter()
        .map(|d| {
            let name = syscalls::name(d.abi, d.nr)
                .map(str::to_string)
                .unwrap_or_else(|| format!("#{}", d.nr));
            format!(
                "{} {name} ({}) denied {} times on {} hosts, {} containers",
                d.abi, d.action, d.denials, d.hosts, d.containers
            )
        })
        .collect();
    if hits.is_empty() {
        return None;
    }
    Some(Reaction {
        reason: format!(
            "seccomp denials under the enforced version {} (profile {version}) of syscalls the fleet had seen, on at least {min_hosts} hosts: {}",
            meta.version_short,
            hits.join("; ")
        ),
        syscalls: counted.iter().map(|d| (d.abi, d.nr)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::candidate::{LeverMark, Levers};

    fn meta(state: &str) -> PublishedMeta {
        PublishedMeta {
            format: 1,
            image: "app:1".into(),
            slug: "app_1".into(),
            version: "sha256:ab".into(),
            version_short: "abcdef012345".into(),
            published_at_ms: 0,
            state: state.into(),
            allowed: Default::default(),
            files: vec![],
            previous_version: None,
            confidence_summary: String::new(),
            log_since_ms: None,
            levers: Levers::default(),
            after_denials: Vec::new(),
        }
    }

    const PROFILE: &[u8] = b"{ \"defaultAction\": \"SCMP_ACT_ERRNO\" }";

    fn d(nr: u32, profile: &str, hosts: u64) -> Denied {
        Denied {
            abi: Abi::X86_64,
            nr,
            action: DenyAction::Errno(1),
            profile: profile.into(),
            denials: 10,
            hosts,
            containers: hosts + 1,
        }
    }

    #[test]
    fn only_denials_of_seen_syscalls_under_the_version_in_force_on_enough_hosts_react() {
        let v = schemas::wire::profile_version(PROFILE);
        let seen: BTreeSet<(Abi, u32)> = [(Abi::X86_64, 111), (Abi::X86_64, 99)].into();
        let m = meta("enforce");
        // getpgrp on 2 hosts under this version: react, and say so.
        assert_eq!(
            reaction(&m, PROFILE, &[d(111, &v, 2), d(99, &v, 1)], &seen, 2),
            Some(Reaction {
                reason: format!(
                    "seccomp denials under the enforced version abcdef012345 (profile {v}) of syscalls the fleet had seen, on at least 2 hosts: x86_64 getpgrp (errno 1) denied 10 times on 2 hosts, 3 containers"
                ),
                syscalls: [(Abi::X86_64, 111)].into(),
            })
        );
        // Too few hosts, another profile, a syscall never seen: nothing.
        assert_eq!(reaction(&m, PROFILE, &[d(99, &v, 1)], &seen, 2), None);
        assert_eq!(
            reaction(&m, PROFILE, &[d(111, "runtime/default", 5)], &seen, 2),
            None
        );
        assert_eq!(reaction(&m, PROFILE, &[d(165, &v, 5)], &seen, 2), None);
        // Not enforcing, or held by a lever: the operator's, not ours.
        assert_eq!(
            reaction(&meta("log"), PROFILE, &[d(111, &v, 2)], &seen, 2),
            None
        );
        let mut pinned = meta("enforce");
        pinned.levers.pinned = Some(LeverMark {
            by: "ops".into(),
            reason: "r".into(),
            at_ms: 0,
        });
        assert_eq!(reaction(&pinned, PROFILE, &[d(111, &v, 2)], &seen, 2), None);
    }
}
