//! The fleet compiler's policy: confidence thresholds, must-allow and
//! must-deny lists, and the runtime's measured base.
//!
//! Parsed from TOML by the pure [`Policy::from_toml`]; every table refuses
//! unknown keys, so a typo (`min_host = 3`) is an error naming the key and
//! its line instead of a silently ignored setting. Every key is optional;
//! the defaults are the `DEFAULT_*` constants below, each with the reason
//! for its value (see also the crate's README, "Fleet policy").
//!
//! ```toml
//! must_allow = ["getrandom"]
//! must_deny = ["clone3", "ptrace"]
//! recent_window = 20
//! reachable = "log"     # reachable but never observed: allow, log or deny
//! narrow_args = ["socket", "clone", "personality"]  # argument rules (crate::args)
//!
//! [syscall]            # per syscall, to be allowed from observations
//! min_hosts = 2
//! min_containers = 2
//! min_container_share = 0.0
//!
//! [enforce]            # per image, to enforce (default action EPERM)
//! min_containers = 20
//! min_hosts = 2
//! min_container_hours = 24.0
//! min_coverage = 0.99
//! min_quiet_hours = 24.0
//! max_recent_new_share = 0.1
//!
//! [log]                # per image, to publish in log mode at all
//! min_containers = 3
//!
//! [runtime]
//! name = "runc"
//! version = "1.1.12"
//! base = { x86_64 = ["futex", "getpid"] }
//! ```

use crate::reachable::Tier;
use schemas::{syscalls, Abi, SyscallKey};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Per syscall: a single rogue host (a compromised node, a debugging
/// session) must not be able to widen a profile on its own, so a syscall is
/// allowed from observations only when at least two hosts saw it.
pub const DEFAULT_SYSCALL_MIN_HOSTS: u64 = 2;
/// Per syscall: likewise a single container (one `docker exec` session, one
/// exploited instance) must not widen a profile. Implied by two hosts, but
/// kept separate for single-host fleets that lower `min_hosts` to 1.
pub const DEFAULT_SYSCALL_MIN_CONTAINERS: u64 = 2;
/// Per syscall: no share bar by default. Rare but legitimate paths (a
/// nightly compaction, an error handler) are used by few containers; a
/// share bar would deny them and break the image when they run. The host
/// and container counts already stop a single actor.
pub const DEFAULT_SYSCALL_MIN_CONTAINER_SHARE: f64 = 0.0;

/// Enforce: the coverage estimate is noisy below about twenty sampling
/// units (Chao and Jost report stable estimates from roughly that size),
/// and the share-of-recent-containers figure uses a window of 20.
pub const DEFAULT_ENFORCE_MIN_CONTAINERS: u64 = 20;
/// Enforce: observations from one host only share that host's kernel,
/// libc-probing results and configuration; two hosts at least.
pub const DEFAULT_ENFORCE_MIN_HOSTS: u64 = 2;
/// Enforce: one container-day of running time in all, so that a service
/// has had the chance to run its periodic work (timers, rotations,
/// reconnections) somewhere before it is confined.
pub const DEFAULT_ENFORCE_MIN_CONTAINER_HOURS: f64 = 24.0;
/// Enforce: the estimated probability that the next container's syscall
/// use falls on a syscall already seen is at least 99%.
pub const DEFAULT_ENFORCE_MIN_COVERAGE: f64 = 0.99;
/// Enforce: no new syscall for a day, which covers daily cycles.
pub const DEFAULT_ENFORCE_MIN_QUIET_HOURS: f64 = 24.0;
/// Enforce: at most 10% of the last `recent_window` containers (2 of 20)
/// showed a syscall no earlier container had.
pub const DEFAULT_ENFORCE_MAX_RECENT_NEW_SHARE: f64 = 0.1;

/// Log: a log-mode profile breaks nothing (unlisted calls are allowed and
/// logged), but one built from one or two containers would log nearly
/// everything and say little; three containers at least.
pub const DEFAULT_LOG_MIN_CONTAINERS: u64 = 3;
/// Log: one host is enough to start logging.
pub const DEFAULT_LOG_MIN_HOSTS: u64 = 1;
/// Log: no bar on exposure, coverage, quiet time or recent novelty; those
/// are what log mode is there to accumulate.
pub const DEFAULT_LOG_MIN_CONTAINER_HOURS: f64 = 0.0;
pub const DEFAULT_LOG_MIN_COVERAGE: f64 = 0.0;
pub const DEFAULT_LOG_MIN_QUIET_HOURS: f64 = 0.0;
pub const DEFAULT_LOG_MAX_RECENT_NEW_SHARE: f64 = 1.0;

/// The number of most recent containers (by start time) whose novelty is
/// measured; 20 matches the default enforce container bar.
pub const DEFAULT_RECENT_WINDOW: u64 = 20;

/// Thresholds a single syscall must meet to be allowed because it was
/// observed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SyscallThresholds {
    pub min_hosts: u64,
    pub min_containers: u64,
    /// Containers that used it / sampling units of the image, in [0, 1].
    pub min_container_share: f64,
}

/// The bars an image must clear for a state (enforce, or log).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImageBars {
    pub min_containers: u64,
    pub min_hosts: u64,
    pub min_container_hours: f64,
    pub min_coverage: f64,
    pub min_quiet_hours: f64,
    pub max_recent_new_share: f64,
}

/// The container runtime that will enforce the profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeName {
    Runc,
    Crun,
}

impl RuntimeName {
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeName::Runc => "runc",
            RuntimeName::Crun => "crun",
        }
    }
}

/// The runtime, and its measured must-allow base: the syscalls it makes
/// after installing the filter and before `execve`ing the entrypoint
/// (measured by `sandmine`'s runtime probe, never hand-written).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    pub name: RuntimeName,
    #[serde(default)]
    pub version: String,
    /// Names per ABI.
    #[serde(default)]
    pub base: BTreeMap<Abi, Vec<String>>,
}

/// How the profile's default action is chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// By the image's state: `enforce` denies (EPERM), `log` logs, and
    /// `not_ready` publishes nothing. The fleet's default.
    #[default]
    State,
    /// An enforcing profile (EPERM) whenever there is anything to allow,
    /// whatever the state; the state is still computed and reported. What
    /// `sandmine mine` writes: the user asked for the profile of this run.
    Enforce,
    /// A log-mode profile (`SCMP_ACT_LOG`) whatever the state: an image
    /// the policy would enforce is published in log mode, the state still
    /// computed and reported; `not_ready` still publishes nothing. What an
    /// operator's `sandmine lever force-log` asks of the publisher.
    Log,
}

impl Mode {
    fn is_state(&self) -> bool {
        *self == Mode::State
    }
}

/// The whole policy. Build it with [`Policy::from_toml`], or from
/// [`Policy::default`] or [`Policy::single_host`] in code, then
/// [`Policy::resolve`] it once for the compiler.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Policy {
    pub syscall: SyscallThresholds,
    pub enforce: ImageBars,
    pub log: ImageBars,
    /// K, the number of most recent containers whose novelty is measured.
    pub recent_window: u64,
    /// Names allowed in every observed ABI that has them, observed or not.
    pub must_allow: Vec<String>,
    /// Names never allowed. A probed name (see [`crate::probes`]) answers
    /// ENOSYS, others EPERM. An entry of [`crate::must_deny::DEFAULT_DENY`]
    /// that passed the syscall thresholds gets its fallback allowed.
    pub must_deny: Vec<String>,
    /// Allow [`crate::baseline`] (exit, signal return...).
    pub baseline: bool,
    pub runtime: Option<Runtime>,
    /// How the default action is chosen (not written in reports when it is
    /// the default).
    #[serde(skip_serializing_if = "Mode::is_state")]
    pub mode: Mode,
    /// Also write the evidence into the profile's `sandmine` metadata: the
    /// calls per syscall, what was left out as the runtime's set-up, unnamed
    /// numbers. Off for the fleet, where a profile's version is the hash of
    /// its bytes: the evidence grows every interval while the profile stays
    /// the same. On for `mine`, whose profile records one run.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub profile_evidence: bool,
    /// What a syscall the image's binaries can reach, but that was never
    /// observed, gets ([`crate::reachable`]); used only when a
    /// reachability analysis is given. Not written in reports when it is
    /// the default (log).
    #[serde(skip_serializing_if = "Tier::is_log")]
    pub reachable: Tier,
    /// The syscalls narrowed to their recorded argument values
    /// ([`crate::args`]); the others keep name-only rules. Not written in
    /// reports when it is the default ([`DEFAULT_NARROW_ARGS`]).
    #[serde(skip_serializing_if = "is_default_narrow")]
    pub narrow_args: Vec<String>,
}

/// The syscalls narrowed by default: each one where an argument rule
/// closes a known escape or attack surface, and whose values a workload
/// uses the same way on its rare paths as on its common ones.
///
/// - `socket` (family, type): AF_PACKET, AF_NETLINK, AF_VSOCK and raw
///   sockets, as systemd's `RestrictAddressFamilies=`.
/// - `clone` and `unshare` (the `CLONE_NEW*` bits), `setns` (nstype):
///   namespace creation and entry, as `RestrictNamespaces=` and Docker's
///   own clone rule.
/// - `personality`: READ_IMPLIES_EXEC and friends, as `LockPersonality=`.
/// - `mmap`, `mmap2`, `mprotect`, `pkey_mprotect` (PROT_WRITE|PROT_EXEC
///   together): `MemoryDenyWriteExecute=`.
/// - `bpf` (command) and `keyctl` (operation): program loading and the
///   kernel keyring, each with a long CVE history.
///
/// Not by default: `ioctl` (requests), `prctl` (options) and
/// `setsockopt` (level, option). Their values follow the path taken (a
/// terminal, an admin tool, a reload), so a value mining did not see is
/// likely on a path it did not run, and a rule on it would break that
/// path. A policy can list them to narrow them anyway.
pub const DEFAULT_NARROW_ARGS: &[&str] = &[
    "bpf",
    "clone",
    "keyctl",
    "mmap",
    "mmap2",
    "mprotect",
    "personality",
    "pkey_mprotect",
    "setns",
    "socket",
    "unshare",
];

fn is_default_narrow(v: &[String]) -> bool {
    v.iter()
        .map(String::as_str)
        .eq(DEFAULT_NARROW_ARGS.iter().copied())
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            syscall: SyscallThresholds {
                min_hosts: DEFAULT_SYSCALL_MIN_HOSTS,
                min_containers: DEFAULT_SYSCALL_MIN_CONTAINERS,
                min_container_share: DEFAULT_SYSCALL_MIN_CONTAINER_SHARE,
            },
            enforce: ImageBars {
                min_containers: DEFAULT_ENFORCE_MIN_CONTAINERS,
                min_hosts: DEFAULT_ENFORCE_MIN_HOSTS,
                min_container_hours: DEFAULT_ENFORCE_MIN_CONTAINER_HOURS,
                min_coverage: DEFAULT_ENFORCE_MIN_COVERAGE,
                min_quiet_hours: DEFAULT_ENFORCE_MIN_QUIET_HOURS,
                max_recent_new_share: DEFAULT_ENFORCE_MAX_RECENT_NEW_SHARE,
            },
            log: ImageBars {
                min_containers: DEFAULT_LOG_MIN_CONTAINERS,
                min_hosts: DEFAULT_LOG_MIN_HOSTS,
                min_container_hours: DEFAULT_LOG_MIN_CONTAINER_HOURS,
                min_coverage: DEFAULT_LOG_MIN_COVERAGE,
                min_quiet_hours: DEFAULT_LOG_MIN_QUIET_HOURS,
                max_recent_new_share: DEFAULT_LOG_MAX_RECENT_NEW_SHARE,
            },
            recent_window: DEFAULT_RECENT_WINDOW,
            must_allow: Vec::new(),
            must_deny: crate::must_deny::DEFAULT_DENY
                .iter()
                .map(|d| d.name.to_string())
                .collect(),
            baseline: true,
            runtime: None,
            mode: Mode::State,
            profile_evidence: false,
            reachable: Tier::Log,
            narrow_args: DEFAULT_NARROW_ARGS.iter().map(|n| n.to_string()).collect(),
        }
    }
}

impl Policy {
    /// The policy of `sandmine mine` and `mine-image`: one run on one host.
    ///
    /// - Per syscall, one host and one container: the run is all the
    ///   evidence there is, and every syscall it made must be allowed, or the
    ///   profile breaks the very run it was mined from.
    /// - Log mode from one container on one host: a log-mode profile breaks
    ///   nothing, so one run is enough to start from.
    /// - Enforcement keeps the fleet's bars but for hosts (one host is all a
    ///   single machine has): twenty runs, a container-day, coverage 0.99, a
    ///   quiet day and little recent novelty. One run never meets them, and
    ///   the state says so: it is the honest answer to "how much should I
    ///   trust this profile?".
    /// - The profile is written enforcing whatever the state
    ///   ([`Mode::Enforce`]): the user asked for this run's profile, and
    ///   `sandmine run --action log` or Docker's log action are there to try
    ///   it first. Its metadata carries the run's evidence.
    pub fn single_host() -> Policy {
        let d = Policy::default();
        Policy {
            syscall: SyscallThresholds {
                min_hosts: 1,
                min_containers: 1,
                min_container_share: 0.0,
            },
            enforce: ImageBars {
                min_hosts: 1,
                ..d.enforce
            },
            log: ImageBars {
                min_containers: 1,
                min_hosts: 1,
                ..d.log
            },
            mode: Mode::Enforce,
            profile_evidence: true,
            ..d
        }
    }
}

/// Why a policy was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("policy line {line}, column {column}: {message}")]
    Toml {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("policy: {key} = {value}: {message}")]
    Invalid {
        key: String,
        value: String,
        message: String,
    },
}

// The TOML shapes: every field optional, so that a partial table keeps the
// defaults of its own table (enforce and log differ).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    syscall: Option<RawSyscall>,
    enforce: Option<RawBars>,
    log: Option<RawBars>,
    recent_window: Option<u64>,
    must_allow: Option<Vec<String>>,
    must_deny: Option<Vec<String>>,
    baseline: Option<bool>,
    runtime: Option<Runtime>,
    mode: Option<Mode>,
    profile_evidence: Option<bool>,
    reachable: Option<Tier>,
    narrow_args: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSyscall {
    min_hosts: Option<u64>,
    min_containers: Option<u64>,
    min_container_share: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBars {
    min_containers: Option<u64>,
    min_hosts: Option<u64>,
    min_container_hours: Option<f64>,
    min_coverage: Option<f64>,
    min_quiet_hours: Option<f64>,
    max_recent_new_share: Option<f64>,
}

impl RawBars {
    fn over(self, d: ImageBars) -> ImageBars {
        ImageBars {
            min_containers: self.min_containers.unwrap_or(d.min_containers),
            min_hosts: self.min_hosts.unwrap_or(d.min_hosts),
            min_container_hours: self.min_container_hours.unwrap_or(d.min_container_hours),
            min_coverage: self.min_coverage.unwrap_or(d.min_coverage),
            min_quiet_hours: self.min_quiet_hours.unwrap_or(d.min_quiet_hours),
            max_recent_new_share: self.max_recent_new_share.unwrap_or(d.max_recent_new_share),
        }
    }
}

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn invalid(key: &str, value: impl std::fmt::Display, message: impl Into<String>) -> PolicyError {
    PolicyError::Invalid {
        key: key.into(),
        value: value.to_string(),
        message: message.into(),
    }
}

impl Policy {
    /// Parse and validate a policy. Pure: the text in, the policy out.
    pub fn from_toml(text: &str) -> Result<Policy, PolicyError> {
        let raw: RawPolicy = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((0, 0), |s| line_col(text, s.start));
            PolicyError::Toml {
                line,
                column,
                message: e.message().trim().to_string(),
            }
        })?;
        let d = Policy::default();
        let s = raw.syscall.unwrap_or_default();
        let p = Policy {
            syscall: SyscallThresholds {
                min_hosts: s.min_hosts.unwrap_or(d.syscall.min_hosts),
                min_containers: s.min_containers.unwrap_or(d.syscall.min_containers),
                min_container_share: s
                    .min_container_share
                    .unwrap_or(d.syscall.min_container_share),
            },
            enforce: raw.enforce.unwrap_or_default().over(d.enforce),
            log: raw.log.unwrap_or_default().over(d.log),
            recent_window: raw.recent_window.unwrap_or(d.recent_window),
            must_allow: raw.must_allow.unwrap_or(d.must_allow),
            must_deny: raw.must_deny.unwrap_or(d.must_deny),
            baseline: raw.baseline.unwrap_or(d.baseline),
            runtime: raw.runtime,
            mode: raw.mode.unwrap_or(d.mode),
            profile_evidence: raw.profile_evidence.unwrap_or(d.profile_evidence),
            reachable: raw.reachable.unwrap_or(d.reachable),
            narrow_args: raw.narrow_args.map_or(d.narrow_args, |mut v| {
                v.sort();
                v.dedup();
                v
            }),
        };
        p.validate()?;
        Ok(p)
    }

    /// Check ranges, names and consistency. [`Policy::from_toml`] calls it;
    /// call it on a policy built in code (the compiler does).
    pub fn validate(&self) -> Result<(), PolicyError> {
        let share = |key: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(invalid(key, v, "must be between 0 and 1"))
            }
        };
        let nonneg = |key: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(invalid(key, v, "must be a finite number at least 0"))
            }
        };
        share(
            "syscall.min_container_share",
            self.syscall.min_container_share,
        )?;
        for (t, b) in [("enforce", &self.enforce), ("log", &self.log)] {
            share(&format!("{t}.min_coverage"), b.min_coverage)?;
            share(&format!("{t}.max_recent_new_share"), b.max_recent_new_share)?;
            nonneg(&format!("{t}.min_container_hours"), b.min_container_hours)?;
            nonneg(&format!("{t}.min_quiet_hours"), b.min_quiet_hours)?;
        }
        if self.recent_window == 0 {
            return Err(invalid("recent_window", 0, "must be at least 1"));
        }
        // Log bars are the lower ones: an image that may be enforced must be
        // publishable in log mode.
        let (e, l) = (&self.enforce, &self.log);
        let stricter: [(&str, bool, String, String); 6] = [
            (
                "min_containers",
                l.min_containers > e.min_containers,
                l.min_containers.to_string(),
                e.min_containers.to_string(),
            ),
            (
                "min_hosts",
                l.min_hosts > e.min_hosts,
                l.min_hosts.to_string(),
                e.min_hosts.to_string(),
            ),
            (
                "min_container_hours",
                l.min_container_hours > e.min_container_hours,
                l.min_container_hours.to_string(),
                e.min_container_hours.to_string(),
            ),
            (
                "min_coverage",
                l.min_coverage > e.min_coverage,
                l.min_coverage.to_string(),
                e.min_coverage.to_string(),
            ),
            (
                "min_quiet_hours",
                l.min_quiet_hours > e.min_quiet_hours,
                l.min_quiet_hours.to_string(),
                e.min_quiet_hours.to_string(),
            ),
            (
                "max_recent_new_share",
                l.max_recent_new_share < e.max_recent_new_share,
                l.max_recent_new_share.to_string(),
                e.max_recent_new_share.to_string(),
            ),
        ];
        for (key, bad, lv, ev) in stricter {
            if bad {
                return Err(invalid(
                    &format!("log.{key}"),
                    lv,
                    format!(
                        "stricter than enforce.{key} = {ev}; the log bars must be the lower ones"
                    ),
                ));
            }
        }
        for (key, names) in [
            ("must_allow", &self.must_allow),
            ("must_deny", &self.must_deny),
            ("narrow_args", &self.narrow_args),
        ] {
            if let Some(bad) = names.iter().find(|n| !syscalls::is_known(n)) {
                return Err(invalid(
                    key,
                    format!("{bad:?}"),
                    "no ABI has a syscall of that name",
                ));
            }
        }
        let deny: BTreeSet<&str> = self.must_deny.iter().map(String::as_str).collect();
        if let Some(both) = self.must_allow.iter().find(|n| deny.contains(n.as_str())) {
            return Err(invalid(
                "must_allow",
                format!("{both:?}"),
                "also in must_deny; a name can be in one of them only",
            ));
        }
        self.validate_runtime()
    }

    /// Every runtime base name exists in its ABI.
    fn validate_runtime(&self) -> Result<(), PolicyError> {
        if let Some(rt) = &self.runtime {
            for (abi, names) in &rt.base {
                if let Some(bad) = names.iter().find(|n| syscalls::number(*abi, n).is_none()) {
                    return Err(invalid(
                        &format!("runtime.base.{abi}"),
                        format!("{bad:?}"),
                        format!("{abi} has no syscall of that name"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A validated policy with every name resolved to `(ABI, number)` keys,
/// once ([`Policy::resolve`]); what the compiler works from.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedPolicy {
    policy: Policy,
    /// `must_deny`, in every ABI that has the name.
    deny: BTreeSet<SyscallKey>,
    /// Per denied key of [`crate::must_deny::DEFAULT_DENY`], its fallbacks in
    /// the same ABI that are not denied themselves.
    fallbacks: BTreeMap<SyscallKey, Vec<SyscallKey>>,
    /// `must_allow`, per name (in the policy's order), in every ABI that has it.
    must_allow: Vec<(String, Vec<SyscallKey>)>,
    /// The runtime base, per ABI in the policy's order.
    runtime_base: Vec<SyscallKey>,
    /// [`crate::baseline`] in every ABI that has it, less `must_deny`; empty
    /// when the policy turns the baseline off.
    baseline: Vec<SyscallKey>,
    /// Syscalls the publisher added for one image after denials under its
    /// enforced profile (`[publish] on_denials = "add"`), with why; empty
    /// unless [`ResolvedPolicy::with_after_denials`] set them.
    after_denials: Vec<(SyscallKey, String)>,
}

/// The runtime base's keys, per ABI in the policy's order.
fn runtime_keys(runtime: Option<&Runtime>) -> Vec<SyscallKey> {
    runtime
        .iter()
        .flat_map(|rt| &rt.base)
        .flat_map(|(abi, names)| {
            names
                .iter()
                .filter_map(|n| syscalls::number(*abi, n))
                .map(|nr| SyscallKey { abi: *abi, nr })
        })
        .collect()
}

/// `name` in every ABI that has it.
fn keys_of(name: &str) -> impl Iterator<Item = SyscallKey> + '_ {
    Abi::ALL
        .into_iter()
        .filter_map(move |abi| syscalls::number(abi, name).map(|nr| SyscallKey { abi, nr }))
}

impl Policy {
    /// Validate the policy and resolve its names to keys.
    pub fn resolve(&self) -> Result<ResolvedPolicy, PolicyError> {
        self.validate()?;
        let deny: BTreeSet<SyscallKey> = self.must_deny.iter().flat_map(|n| keys_of(n)).collect();
        let mut fallbacks = BTreeMap::new();
        for d in crate::must_deny::DEFAULT_DENY {
            for key in keys_of(d.name).filter(|k| deny.contains(k)) {
                let fb: Vec<SyscallKey> = d
                    .fallback
                    .iter()
                    .filter_map(|f| syscalls::number(key.abi, f))
                    .map(|nr| SyscallKey { abi: key.abi, nr })
                    .filter(|k| !deny.contains(k))
                    .collect();
                fallbacks.insert(key, fb);
            }
        }
        let must_allow = self
            .must_allow
            .iter()
            .map(|n| (n.clone(), keys_of(n).collect()))
            .collect();
        let runtime_base = runtime_keys(self.runtime.as_ref());
        let baseline = if self.baseline {
            crate::baseline::names()
                .flat_map(keys_of)
                .filter(|k| !deny.contains(k))
                .collect()
        } else {
            Vec::new()
        };
        Ok(ResolvedPolicy {
            policy: self.clone(),
            deny,
            fallbacks,
            must_allow,
            runtime_base,
            baseline,
            after_denials: Vec::new(),
        })
    }
}

impl ResolvedPolicy {
    /// This policy with another runtime section (a base observed per
    /// image): only the runtime base is validated and resolved again.
    pub fn with_runtime(&self, runtime: Runtime) -> Result<ResolvedPolicy, PolicyError> {
        let mut policy = self.policy.clone();
        policy.runtime = Some(runtime);
        policy.validate_runtime()?;
        let runtime_base = runtime_keys(policy.runtime.as_ref());
        Ok(ResolvedPolicy {
            policy,
            runtime_base,
            ..self.clone()
        })
    }

    /// The same policy with the default action chosen by `mode` (the
    /// publisher compiles an image an operator forced into log mode with
    /// [`Mode::Log`]).
    pub fn with_mode(&self, mode: Mode) -> ResolvedPolicy {
        let mut r = self.clone();
        r.policy.mode = mode;
        r
    }

    /// The same policy, also allowing `added` for the one image it is
    /// compiled for: syscalls the publisher added after denials under the
    /// image's enforced profile (`[publish] on_denials = "add"`), each
    /// with why. `must_deny` still wins.
    pub fn with_after_denials(&self, added: Vec<(SyscallKey, String)>) -> ResolvedPolicy {
        let mut r = self.clone();
        r.after_denials = added;
        r
    }

    /// What [`ResolvedPolicy::with_after_denials`] added.
    pub fn after_denials(&self) -> &[(SyscallKey, String)] {
        &self.after_denials
    }

    /// The policy as written.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// True when `must_deny` names this syscall.
    pub fn denies(&self, key: SyscallKey) -> bool {
        self.deny.contains(&key)
    }

    /// What callers of a denied default-deny syscall fall back to.
    pub fn fallbacks(&self, key: SyscallKey) -> &[SyscallKey] {
        self.fallbacks.get(&key).map_or(&[], Vec::as_slice)
    }

    pub fn must_allow(&self) -> &[(String, Vec<SyscallKey>)] {
        &self.must_allow
    }

    pub fn runtime_base(&self) -> &[SyscallKey] {
        &self.runtime_base
    }

    pub fn baseline(&self) -> &[SyscallKey] {
        &self.baseline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_text_is_the_default_policy() {
        assert_eq!(Policy::from_toml("").unwrap(), Policy::default());
        let d = Policy::default();
        assert_eq!(d.syscall.min_hosts, 2);
        assert_eq!(d.must_deny, vec!["clone3"]);
    }

    #[test]
    fn partial_tables_keep_their_own_defaults() {
        let p = Policy::from_toml(
            "must_allow = [\"getrandom\"]\n[enforce]\nmin_containers = 50\n[log]\nmin_hosts = 2\n\
             [runtime]\nname = \"crun\"\nversion = \"1.14\"\nbase = { x86_64 = [\"futex\"], i386 = [\"futex\"] }\n",
        )
        .unwrap();
        assert_eq!(p.enforce.min_containers, 50);
        assert_eq!(p.enforce.min_coverage, 0.99);
        assert_eq!(p.log.min_hosts, 2);
        assert_eq!(p.log.min_containers, 3);
        assert_eq!(p.must_allow, vec!["getrandom"]);
        let rt = p.runtime.unwrap();
        assert_eq!(rt.name, RuntimeName::Crun);
        assert_eq!(rt.base[&Abi::I386], vec!["futex"]);
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let e = Policy::from_toml("recent_window = 5\n[syscall]\nmin_host = 3\n").unwrap_err();
        match &e {
            PolicyError::Toml {
                line,
                column,
                message,
            } => {
                assert_eq!((*line, *column), (3, 1));
                assert!(message.starts_with("unknown field `min_host`"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(e
            .to_string()
            .starts_with("policy line 3, column 1: unknown field `min_host`"));
    }

    #[test]
    fn bad_values_are_named() {
        let e = Policy::from_toml("[syscall]\nmin_hosts = \"two\"\n").unwrap_err();
        assert!(matches!(e, PolicyError::Toml { line: 2, .. }), "{e}");
        assert_eq!(
            Policy::from_toml("[enforce]\nmin_coverage = 1.5\n")
                .unwrap_err()
                .to_string(),
            "policy: enforce.min_coverage = 1.5: must be between 0 and 1"
        );
        assert_eq!(
            Policy::from_toml("must_deny = [\"sokcet\"]\n")
                .unwrap_err()
                .to_string(),
            "policy: must_deny = \"sokcet\": no ABI has a syscall of that name"
        );
        assert_eq!(
            Policy::from_toml("[log]\nmin_containers = 30\n").unwrap_err().to_string(),
            "policy: log.min_containers = 30: stricter than enforce.min_containers = 20; the log bars must be the lower ones"
        );
        assert_eq!(
            Policy::from_toml("must_allow = [\"clone3\"]\n")
                .unwrap_err()
                .to_string(),
            "policy: must_allow = \"clone3\": also in must_deny; a name can be in one of them only"
        );
        assert_eq!(
            Policy::from_toml("[runtime]\nname = \"runc\"\nbase = { x86_64 = [\"socketcall\"] }\n")
                .unwrap_err()
                .to_string(),
            "policy: runtime.base.x86_64 = \"socketcall\": x86_64 has no syscall of that name"
        );
        let e = Policy::from_toml("[runtime]\nname = \"docker\"\n").unwrap_err();
        assert!(e.to_string().contains("unknown variant `docker`"), "{e}");
    }
}
