//! The publisher's input (a compiled candidate) and what it remembers about
//! the last publication (the meta).

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// One image's compiled profile, as the policy compiler produced it, plus
/// the per-syscall evidence the gate needs. Plain data, so the gate and
/// the targets can be tested without the compiler; [`crate::candidate`]
/// builds one from a compiled image.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Candidate {
    /// Image reference, e.g. `nginx:1.25`.
    pub image: String,
    /// `"enforce"`, `"log"` or `"not_ready"`.
    pub state: String,
    /// Relative path -> bytes (`profile.json`, `seccompprofile.yaml`, ...).
    pub files: BTreeMap<String, Vec<u8>>,
    pub report_text: String,
    pub report_json: String,
    /// ABI (`x86_64`, ...) -> syscall names the profile allows.
    pub allowed: BTreeMap<String, BTreeSet<String>>,
    /// (ABI, name) -> number of distinct hosts that used it. A syscall the
    /// profile allows without observing it (a baseline syscall) counts as
    /// seen on 0 hosts unless listed here.
    pub syscall_hosts: BTreeMap<(String, String), u64>,
    /// (ABI, name) -> last time (ms since the epoch) any host used it.
    pub syscall_last_seen_ms: BTreeMap<(String, String), u64>,
    /// The policy's must-deny syscall names (any ABI).
    pub must_deny: BTreeSet<String>,
    /// One line with the confidence figures, quoted in commit messages.
    pub confidence_summary: String,
    /// The same image compiled in log mode (state `log`), published
    /// instead of this candidate while an operator forces the image into
    /// log mode (`lever force-log`); the round compiles it only then.
    pub log_variant: Option<Box<Candidate>>,
    /// Syscalls compiled in after denials (`[publish] on_denials = "add"`):
    /// the earlier ones carried from the meta in force, and this round's;
    /// written into the meta, and the new ones into the commit message.
    pub after_denials: Vec<AddedAfterDenials>,
}

/// Thresholds of the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatePolicy {
    /// A syscall new to the published profile must have been used on at
    /// least this many distinct hosts: one host alone may be anomalous (or
    /// compromised). Set 1 for a single-host fleet.
    pub min_hosts: u64,
    /// A syscall leaves the published profile only once its last use is at
    /// least this old, so rare paths (weekly jobs, failover) keep working.
    pub shrink_after: Duration,
}

impl Default for GatePolicy {
    fn default() -> Self {
        GatePolicy {
            min_hosts: 2,
            shrink_after: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Current value of [`PublishedMeta::format`].
pub const META_FORMAT: u32 = 1;

/// What a target remembers about the profile in force for one image: the
/// `current` file. It is the commit point of a publication (written last,
/// atomically) and the `previous` of the next gate.
///
/// Unknown fields are tolerated on purpose (no `deny_unknown_fields`): a
/// meta written by a newer publisher must still be readable as `previous`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedMeta {
    /// Layout version of this file.
    pub format: u32,
    pub image: String,
    pub slug: String,
    /// `sha256:<64 hex>` over the candidate files (see [`crate::Version`]).
    pub version: String,
    /// First 12 hex digits of the version; names the version directory.
    pub version_short: String,
    pub published_at_ms: u64,
    pub state: String,
    pub allowed: BTreeMap<String, BTreeSet<String>>,
    /// Every file of the publication, relative to the image's directory
    /// (profile files, reports, diffs), sorted.
    pub files: Vec<String>,
    /// The version this one replaced, if any.
    #[serde(default)]
    pub previous_version: Option<String>,
    #[serde(default)]
    pub confidence_summary: String,
    /// While the profile in force is in log mode: when the image entered
    /// log mode (the first of its unbroken run of log-mode publications),
    /// carried from publication to publication. Absent otherwise (and in
    /// metas written before it existed: their `published_at_ms` stands in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_since_ms: Option<u64>,
    /// What operators set with `sandmine lever` (nothing by default, and
    /// then nothing is written, so metas without levers keep their bytes).
    #[serde(default, flatten)]
    pub levers: Levers,
    /// Syscalls the publisher added to the image's profile after denials
    /// under an enforced version (`[publish] on_denials = "add"`), each
    /// with why and when; carried from publication to publication (every
    /// round compiles them in). Absent when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after_denials: Vec<AddedAfterDenials>,
}

/// One syscall added to an image's profile after denials under its
/// enforced version (`[publish] on_denials = "add"`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AddedAfterDenials {
    /// `x86_64`, `i386`, ... (as in `allowed`).
    pub abi: String,
    pub name: String,
    /// The denials that made the publisher add it (`denials::reaction`).
    pub reason: String,
    /// When the round that added it ran (ms since the epoch).
    pub at_ms: u64,
}

/// The operators' levers in force for one image, kept in its `current`
/// meta so that they live with the publish target and every round reads
/// them there (`sandmine lever`, docs/OPERATIONS.md).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Levers {
    /// Pinned at the version in force: rounds publish nothing for the
    /// image and report it as pinned (`lever pin`, `lever rollback`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned: Option<LeverMark>,
    /// Forced into log mode: rounds publish the image's log-mode profile
    /// whatever its state (`lever force-log`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forced_log: Option<LeverMark>,
}

impl Levers {
    pub fn is_empty(&self) -> bool {
        self.pinned.is_none() && self.forced_log.is_none()
    }
}

impl PublishedMeta {
    /// When the image entered log mode, if the profile in force is in log
    /// mode: `log_since_ms`, or the publication time for a meta written
    /// before that field.
    pub fn in_log_mode_since_ms(&self) -> Option<u64> {
        (self.state == "log").then(|| self.log_since_ms.unwrap_or(self.published_at_ms))
    }

    /// `log_since_ms` for a publication in `state` at `now_ms` replacing
    /// `self`: carried while both are in log mode, `now_ms` on entering it.
    pub fn log_since_for(
        previous: Option<&PublishedMeta>,
        state: &str,
        now_ms: u64,
    ) -> Option<u64> {
        if state != "log" {
            return None;
        }
        Some(
            previous
                .and_then(PublishedMeta::in_log_mode_since_ms)
                .unwrap_or(now_ms),
        )
    }
}

/// Who set a lever, why and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeverMark {
    pub by: String,
    pub reason: String,
    pub at_ms: u64,
}
