//! `sandmine explain IMAGE SYSCALL`: why one syscall is allowed or denied,
//! with the numbers.

use crate::decide::{deny_errno, AllowReason, Decision, DenyReason, SyscallStats, Verdict};
use crate::ENOSYS;
use schemas::syscalls;
use schemas::{Abi, SyscallKey};

fn errno_name(e: u32) -> &'static str {
    if e == ENOSYS {
        "ENOSYS"
    } else {
        "EPERM"
    }
}

fn stats_sentence(s: &SyscallStats, d: &Decision) -> String {
    format!(
        "seen in a profile-relevant phase on {} of {} host(s), in {} of {} container(s) (share {:.4}); {} call(s) counted in all phases{}",
        s.hosts,
        d.confidence.hosts,
        s.containers,
        d.confidence.containers,
        s.share,
        s.calls,
        not_counted(d, s.incomplete_containers)
    )
}

/// What the figures leave out: the image's incomplete containers (and how
/// many of them used this syscall, `used`). Empty when it has none.
fn not_counted(d: &Decision, used: u64) -> String {
    let mut s = match d.confidence.incomplete_containers {
        0 => String::new(),
        n => format!(
            "; the image's {n} incomplete container(s) (calls lost) are not counted in these figures{}",
            if used > 0 {
                format!(", {used} of them used it")
            } else {
                String::new()
            }
        ),
    };
    s.push_str(&unverified_left_out(d));
    s
}

/// The image's unverified containers, left out of everything (their calls
/// may be forged). Empty when it has none.
fn unverified_left_out(d: &Decision) -> String {
    match d.confidence.unverified_containers {
        0 => String::new(),
        n => format!(
            "; the image's {n} unverified container(s) (cgroup not provably its runtime's, calls possibly forged) are not consulted at all"
        ),
    }
}

fn allow_sentence(
    r: &AllowReason,
    d: &Decision,
    abi: Abi,
    name: &str,
    stats: Option<&SyscallStats>,
) -> String {
    let th = &d.policy.syscall;
    match r {
        AllowReason::Observed => format!(
            "observed and over every threshold: {} (needs hosts >= {}, containers >= {}, share >= {:.4})",
            stats.map_or_else(String::new, |s| stats_sentence(s, d)),
            th.min_hosts,
            th.min_containers,
            th.min_container_share
        ),
        AllowReason::RuntimeBase => {
            let rt = d.policy.runtime.as_ref();
            format!(
                "in the measured base of the runtime ({} {}): the runtime makes it after installing the filter, before the entrypoint runs",
                rt.map_or("?", |r| r.name.as_str()),
                rt.map_or("", |r| r.version.as_str())
            )
        }
        AllowReason::MustAllow => "named in the policy's must_allow".to_string(),
        AllowReason::Baseline => {
            let why = crate::baseline::BASELINE
                .iter()
                .find(|b| b.name == name)
                .map_or("", |b| b.why);
            format!("in sandmine's baseline: {why}")
        }
        AllowReason::Fallback { of } => format!(
            "the fallback of {of}, which the image used and the policy denies (must_deny); callers fall back to it on ENOSYS"
        ),
        AllowReason::IncompleteEvidence => {
            let n = stats.map_or(0, |s| s.incomplete_containers);
            format!(
                "used in a profile-relevant phase by {n} incomplete container(s) (the collector lost some of their calls, so they count toward nothing): allowed, since allowing more is the safe direction{}",
                match stats.filter(|s| s.containers > 0) {
                    Some(s) => format!(
                        "; in the counted containers it is below the thresholds: {}",
                        stats_sentence(s, d)
                    ),
                    None => format!(
                        "; no counted container used it (the image's {} counted container(s) on {} host(s))",
                        d.confidence.containers, d.confidence.hosts
                    ),
                }
            )
        }
        AllowReason::AfterDenials { reason } => format!(
            "added by the publisher after denials under an enforced profile ([publish] on_denials = \"add\"): {reason}"
        ),
        AllowReason::Reachable { chain } => format!(
            "never observed, but the image's binaries can reach it ({chain}), and the policy allows what they reach (reachable = \"allow\")"
        ),
        AllowReason::OtherAbi { abi: other } => format!(
            "below the thresholds in {abi} ({}), but allowed in {other}; the Docker format lists names for all architectures at once, so it is allowed in {abi} too",
            stats.map_or_else(String::new, |s| stats_sentence(s, d))
        ),
    }
}

/// Why a syscall is allowed or denied for this decision. The caller
/// resolves a name to its key once (`schemas::syscalls::number`).
/// The argument rule of `name`, or why it has none though values were
/// recorded ([`crate::args`]); empty otherwise.
fn args_sentence(d: &Decision, name: &str) -> String {
    if let Some(r) = d.args.rules.get(name) {
        let values: Vec<String> = r
            .values
            .iter()
            .chain(&r.reachable)
            .map(|v| crate::args::show_value(&r.fields, v))
            .collect();
        format!(
            "; only with these argument values (every other value gets the default action): {}",
            values.join(" | ")
        )
    } else if let Some(why) = d.args.name_only.get(name) {
        format!("; by name, with any argument values: {why}")
    } else {
        String::new()
    }
}

pub fn explain(d: &Decision, key: SyscallKey) -> String {
    let abi = key.abi;
    let name: String =
        syscalls::name(abi, key.nr).map_or_else(|| format!("#{}", key.nr), String::from);
    let name = name.as_str();
    let head = format!("{} {abi} {name}", d.image);
    if !d.abis.contains(&abi) {
        return format!(
            "{head}: denied: the image was never observed using the {abi} ABI (observed: {}), so the profile does not list {}; every {abi} call kills the process (SIGSYS), whatever the default action",
            if d.abis.is_empty() {
                "none".to_string()
            } else {
                d.abis.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ")
            },
            abi.scmp_arch()
        );
    }
    let state = d.state.as_str();
    match d.get(key) {
        Some(sd) => match &sd.verdict {
            Verdict::Allowed { reasons } => {
                let why: Vec<String> = reasons
                    .iter()
                    .map(|r| allow_sentence(r, d, abi, name, sd.stats.as_ref()))
                    .collect();
                format!(
                    "{head}: allowed ({state} profile): {}{}",
                    why.join("; and "),
                    args_sentence(d, name)
                )
            }
            Verdict::Logged { chain } => format!(
                "{head}: logged ({state} profile): never observed, but the image's binaries can reach it ({chain}); the call runs and the kernel logs it (reachable = \"log\"), so a path mining never ran does not break, and the fleet sees it when it happens"
            ),
            Verdict::Denied {
                reason,
                errno,
                blocks_enforce,
            } => {
                let e = errno_name(*errno);
                let seen = sd
                    .stats
                    .as_ref()
                    .map_or_else(String::new, |s| stats_sentence(s, d));
                let why = match reason {
                    DenyReason::MustDeny => format!(
                        "denied with {e}: named in the policy's must_deny{}",
                        if seen.is_empty() {
                            String::new()
                        } else {
                            format!(" ({seen})")
                        }
                    ),
                    DenyReason::BelowThreshold { failed } => format!(
                        "not allowed: {seen}, but {}{}",
                        failed.join("; "),
                        if *blocks_enforce {
                            format!(
                                "; an enforced profile would answer it with {e}, so the image stays in log mode (calls to it are allowed and logged) until it meets the thresholds or the policy names it"
                            )
                        } else {
                            String::new()
                        }
                    ),
                    DenyReason::NotRelevant => {
                        let phases = sd.stats.as_ref().map_or(0, |s| s.phases.0);
                        format!(
                            "denied with {e}: seen only before the runtime's filter (the runtime's set-up) or unfiltered in containers whose other calls were filtered (phase bits {phases:#06b}), or only in unverified containers; the filter never judges those calls{}",
                            unverified_left_out(d)
                        )
                    }
                    DenyReason::Unnamed => {
                        format!("denied with {e}: it has no name in sandmine's table")
                    }
                };
                format!("{head}: {why}")
            }
        },
        None => {
            let allowed_elsewhere = d
                .allowed
                .iter()
                .find(|k| k.abi != abi && syscalls::name(k.abi, k.nr) == Some(name))
                .map(|k| k.abi);
            match allowed_elsewhere {
                Some(other) => format!(
                    "{head}: allowed ({state} profile): never observed in {abi}, but allowed in {other}; the Docker format lists names for all architectures at once"
                ),
                None => {
                    let e = errno_name(deny_errno(Some(name)));
                    format!(
                        "{head}: denied with {e}{}: never observed in any of {} container(s) on {} host(s){}{}",
                        if d.enforcing() { "" } else { " once enforced (logged in log mode)" },
                        d.confidence.containers,
                        d.confidence.hosts,
                        if d.confidence.incomplete_containers > 0 {
                            format!(", nor in the image's {} incomplete container(s)", d.confidence.incomplete_containers)
                        } else {
                            String::new()
                        } + &unverified_left_out(d),
                        if e == "ENOSYS" { "; ENOSYS because callers probe it and fall back to an older syscall" } else { "" }
                    ) + &match &d.reach {
                        Some(r) if r.held_back.contains(&format!("{abi} {name}")) => "; the image's binaries can reach it, but it is outside Docker's default profile or high-risk, so it is denied until observed".to_string(),
                        Some(r) if r.known => "; and no file analysed can reach it".to_string(),
                        Some(_) => "; no file analysed reaches it through a constant syscall number (the reachable set is unknown, see the report)".to_string(),
                        None => String::new(),
                    }
                }
            }
        }
    }
}
