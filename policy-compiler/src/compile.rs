//! Compiling one image: from what is known about it (a fleet store's answer,
//! or one mined run as a fleet of one), a resolved policy and the current
//! time, to the image's profile in every format, its report, and its
//! content hash. Pure and deterministic: identical input gives identical
//! bytes, whatever the order of the input lists.

use crate::decide::{decide_with, AllowReason, Decision, DenyReason, State, Verdict};
use crate::filter::FilterError;
use crate::oci::{OciProfile, ProfileError};
use crate::policy::{Policy, ResolvedPolicy};
use crate::reachable::Reachability;
use crate::render;
use schemas::fleet::ImageObservations;
use schemas::Abi;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CompileError {
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error("compiling the BPF filter for {family} hosts")]
    Filter {
        family: &'static str,
        source: FilterError,
    },
}

/// The compiled image.
#[derive(Clone, Debug, PartialEq)]
pub struct Compiled {
    pub decision: Decision,
    pub profile: OciProfile,
    /// Relative file name -> bytes. Empty when the state is `NotReady`
    /// (nothing is publishable); otherwise:
    /// - `seccomp.json`: Docker/OCI profile;
    /// - `seccompprofile.yaml`: security-profiles-operator resource;
    /// - `kubelet/sandmine/<name>.json`: the OCI profile at the path it has
    ///   under the kubelet's seccomp root (see [`render::kubelet_path`]);
    /// - `systemd.conf`: a `[Service]` drop-in;
    /// - `bpf/<family>.bpf`: the classic-BPF program per host family
    ///   (`x86_64`: x86_64 + i386 + x32 kernels; `aarch64`).
    ///
    /// The reports are not in here: they are [`Compiled::report_text`] and
    /// [`Compiled::report_json`] only (every caller writes them from those
    /// fields; a copy here cost ~50 KB of copying per image for nothing).
    pub files: BTreeMap<String, Vec<u8>>,
    /// `report.txt`: the report as text (written in every state).
    pub report_text: String,
    /// `report.json`: the report as compact JSON (one line, then `\n`).
    pub report_json: String,
    /// `sha256:<hex>` of the canonical OCI JSON (computed in every state).
    pub content_hash: String,
}

/// Compile one image. See the module documentation.
pub fn compile_image(
    obs: &ImageObservations,
    policy: &ResolvedPolicy,
    now_ms: u64,
) -> Result<Compiled, CompileError> {
    compile_image_with(obs, None, policy, now_ms)
}

/// [`compile_image`], with the image's static reachability as evidence too
/// (see [`crate::reachable`]).
pub fn compile_image_with(
    obs: &ImageObservations,
    reach: Option<&Reachability>,
    policy: &ResolvedPolicy,
    now_ms: u64,
) -> Result<Compiled, CompileError> {
    let decision = decide_with(obs, reach, policy, now_ms);
    let profile = render::oci_profile(&decision);
    // Built from table names with disjoint rules, so valid by construction
    // (validating costs more than the rest of rendering; tests validate).
    debug_assert_eq!(profile.validate(), Ok(()));
    let json = profile.to_json()?;
    let content_hash = render::sha256(json.as_bytes());
    let report_text = report_text(&decision, &content_hash);
    let report_json = report_json(&decision, &content_hash)?;
    let mut files = BTreeMap::new();
    if decision.state != State::NotReady {
        for (family, host) in render::host_families(&decision) {
            let bytes = render::bpf_bytes(&profile, host)
                .map_err(|source| CompileError::Filter { family, source })?;
            files.insert(format!("bpf/{family}.bpf"), bytes);
        }
        files.insert(
            "seccompprofile.yaml".into(),
            render::spo_yaml(&decision, &profile, &content_hash).into_bytes(),
        );
        files.insert(
            "systemd.conf".into(),
            render::systemd_dropin(&decision, &profile, &content_hash).into_bytes(),
        );
        files.insert(
            format!("kubelet/{}", render::kubelet_path(&decision.image)),
            json.clone().into_bytes(),
        );
        // The name earlier releases used, for one release (see
        // `schemas::slug::legacy`).
        files.insert(
            format!("kubelet/{}", render::legacy_kubelet_path(&decision.image)),
            json.clone().into_bytes(),
        );
        files.insert("seccomp.json".into(), json.into_bytes());
    }
    Ok(Compiled {
        decision,
        profile,
        files,
        report_text,
        report_json,
        content_hash,
    })
}

/// The allowed names per ABI, keyed by the ABI's name: the form a
/// publication records (`PublishedMeta::allowed`) and diffs
/// (`publish::SyscallDiff`, the one allowed-set diff).
pub type AllowedSets = BTreeMap<String, BTreeSet<String>>;

/// The names that run per ABI of a compiled image: allowed, or logged
/// (a logged call runs, so a publication counts it as allowed).
pub fn allowed_sets(c: &Compiled) -> AllowedSets {
    c.decision
        .running_names()
        .iter()
        .map(|(a, n)| {
            (
                a.as_str().to_string(),
                n.iter().map(|s| s.to_string()).collect(),
            )
        })
        .collect()
}

/// Allowed names per ABI of a published OCI profile (from its `sandmine`
/// metadata), for diffing against a file on disk.
pub fn allowed_sets_of_profile(p: &OciProfile) -> AllowedSets {
    p.sandmine
        .as_ref()
        .map(|m| {
            let mut sets: AllowedSets = m
                .per_abi
                .iter()
                .map(|(a, n)| (a.as_str().to_string(), n.iter().cloned().collect()))
                .collect();
            for (a, n) in &m.logged {
                sets.entry(a.as_str().to_string())
                    .or_default()
                    .extend(n.iter().cloned());
            }
            sets
        })
        .unwrap_or_default()
}

#[derive(Serialize)]
struct ReportJson<'a> {
    image: &'a str,
    digests: &'a [String],
    now_ms: u64,
    state: State,
    content_hash: &'a str,
    reasons: &'a [String],
    notes: &'a [String],
    warnings: &'a [String],
    confidence: &'a crate::confidence::Confidence,
    filters: &'a BTreeMap<String, u64>,
    abis: Vec<&'static str>,
    allowed: BTreeMap<Abi, BTreeSet<&'static str>>,
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    logged: BTreeSet<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reach: Option<&'a crate::reachable::ReachSummary>,
    syscalls: &'a [crate::decide::SyscallDecision],
    #[serde(skip_serializing_if = "crate::args::ArgDecisions::is_empty")]
    args: &'a crate::args::ArgDecisions,
    policy: &'a Policy,
}

/// The report as compact JSON (no whitespace between tokens) with a
/// trailing newline. Compact rather than pretty since the indentation was
/// most of the bytes and a third of the rendering time; `jq .` pretty-prints
/// it for a human.
pub fn report_json(d: &Decision, content_hash: &str) -> Result<String, ProfileError> {
    let r = ReportJson {
        image: &d.image,
        digests: &d.digests,
        now_ms: d.now_ms,
        state: d.state,
        content_hash,
        reasons: &d.reasons,
        notes: &d.notes,
        warnings: &d.warnings,
        confidence: &d.confidence,
        filters: &d.filters,
        abis: d.abis.iter().map(|a| a.as_str()).collect(),
        allowed: d.allowed_names(),
        logged: d.logged_union(),
        reach: d.reach.as_ref(),
        syscalls: &d.syscalls,
        args: &d.args,
        policy: &d.policy,
    };
    // Into one buffer sized for a typical report (~300 bytes per syscall
    // entry plus the fixed part), so it is not grown and copied repeatedly.
    let mut buf = Vec::with_capacity(4096 + 384 * d.syscalls.len());
    serde_json::to_writer(&mut buf, &r).map_err(|e| ProfileError::Emit(e.to_string()))?;
    buf.push(b'\n');
    String::from_utf8(buf).map_err(|e| ProfileError::Emit(e.to_string()))
}

/// The argument rules' part of the text report.
fn args_text(s: &mut String, a: &crate::args::ArgDecisions) {
    if a.is_empty() {
        return;
    }
    s.push_str("argument rules (allowed only with these values; every other value gets the default action):\n");
    for (name, r) in &a.rules {
        let values: Vec<String> = r
            .values
            .iter()
            .map(|v| crate::args::show_value(&r.fields, v))
            .collect();
        let _ = writeln!(s, "  {name}: {}", values.join(" | "));
        if !r.reachable.is_empty() {
            let values: Vec<String> = r
                .reachable
                .iter()
                .map(|v| crate::args::show_value(&r.fields, v))
                .collect();
            let _ = writeln!(
                s,
                "  {name}: also allowed, at reachable call sites but never observed (reachable = {}): {}",
                a.tier.as_str(),
                values.join(" | ")
            );
        }
    }
    for (name, why) in &a.name_only {
        let _ = writeln!(s, "  {name}: name only: {why}");
    }
    for d in &a.dropped {
        let _ = writeln!(s, "  left out: {d}");
    }
}

/// The report as text.
pub fn report_text(d: &Decision, content_hash: &str) -> String {
    let c = &d.confidence;
    let mut s = String::with_capacity(4096 + 128 * d.syscalls.len());
    let _ = writeln!(s, "image: {}", d.image);
    if !d.digests.is_empty() {
        let _ = writeln!(s, "digests: {}", d.digests.join(", "));
    }
    let _ = writeln!(s, "state: {}", d.state.as_str());
    let _ = writeln!(s, "content: {content_hash}");
    s.push_str("reasons:\n");
    for r in &d.reasons {
        let _ = writeln!(s, "  - {r}");
    }
    for n in &d.notes {
        let _ = writeln!(s, "note: {n}");
    }
    for w in &d.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    s.push_str("confidence:\n");
    let _ = writeln!(
        s,
        "  containers: {} (store: {}), hosts: {} (store: {}), container-hours: {:.2}",
        c.containers, c.store_containers, c.hosts, c.store_hosts, c.container_hours
    );
    if c.incomplete_containers > 0 {
        let _ = writeln!(
            s,
            "  incomplete (calls lost, not counted): {} container(s)",
            c.incomplete_containers
        );
    }
    if c.unverified_containers > 0 {
        let _ = writeln!(
            s,
            "  unverified (cgroup not provably its runtime's; not counted, does not widen): {} container(s)",
            c.unverified_containers
        );
    }
    let _ = writeln!(
        s,
        "  quiet: {}",
        c.quiet_ms.map_or_else(
            || "no syscall seen".to_string(),
            |q| format!("{:.1} h since the last new syscall", q as f64 / 3_600_000.0)
        )
    );
    let _ = writeln!(
        s,
        "  coverage (Chao & Jost 2012): {:.4}   Chao2: {:.2} (observed {}; T = {}, U = {}, Q1 = {}, Q2 = {})",
        c.coverage, c.chao2, c.incidence.s_obs, c.incidence.t, c.incidence.u, c.incidence.q1, c.incidence.q2
    );
    let _ = writeln!(
        s,
        "  recent: {} of the last {} container(s) showed a new syscall ({:.4})",
        c.recent_new, c.recent_window, c.recent_new_share
    );
    s.push_str("filters the containers ran under:\n");
    for (f, n) in &d.filters {
        let _ = writeln!(s, "  {f}: {n}");
    }
    let _ = writeln!(
        s,
        "architectures: {}",
        d.abis
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    );
    if let Some(r) = &d.reach {
        reach_text(&mut s, d, r);
    }
    args_text(&mut s, &d.args);
    s.push_str("syscalls (abi name: hosts containers share calls -> decision):\n");
    // Written straight into `s`: no temporary string per syscall.
    for sd in &d.syscalls {
        let _ = write!(s, "  {} ", sd.abi);
        match sd.name {
            Some(n) => s.push_str(n),
            None => {
                let _ = write!(s, "#{}", sd.nr);
            }
        }
        s.push_str(": ");
        match &sd.stats {
            Some(st) => {
                let _ = write!(s, "{} {} ", st.hosts, st.containers);
                crate::decimal::push_fixed(&mut s, st.share, 4);
                let _ = write!(s, " {}", st.calls);
            }
            None => s.push_str("- - - -"),
        }
        s.push_str(" -> ");
        match &sd.verdict {
            Verdict::Allowed { reasons } => {
                s.push_str("allow (");
                for (i, r) in reasons.iter().enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    match r {
                        AllowReason::Observed => s.push_str("observed"),
                        AllowReason::RuntimeBase => s.push_str("runtime base"),
                        AllowReason::MustAllow => s.push_str("must_allow"),
                        AllowReason::Baseline => s.push_str("baseline"),
                        AllowReason::Fallback { of } => {
                            s.push_str("fallback of ");
                            s.push_str(of);
                        }
                        AllowReason::OtherAbi { abi } => {
                            let _ = write!(s, "allowed in {abi}");
                        }
                        AllowReason::IncompleteEvidence => {
                            s.push_str("incomplete containers (not counted)")
                        }
                        AllowReason::Reachable { chain } => {
                            s.push_str("reachable: ");
                            s.push_str(chain);
                        }
                        AllowReason::AfterDenials { .. } => s.push_str("added after denials"),
                    }
                }
                s.push(')');
            }
            Verdict::Logged { chain } => {
                s.push_str("log (reachable, not observed: ");
                s.push_str(chain);
                s.push(')');
            }
            Verdict::Denied {
                reason,
                errno,
                blocks_enforce,
            } => {
                s.push_str(if *errno == crate::ENOSYS {
                    "deny ENOSYS ("
                } else {
                    "deny EPERM ("
                });
                match reason {
                    DenyReason::MustDeny => s.push_str("must_deny"),
                    DenyReason::BelowThreshold { failed } => {
                        for (i, f) in failed.iter().enumerate() {
                            if i > 0 {
                                s.push_str("; ");
                            }
                            s.push_str(f);
                        }
                    }
                    DenyReason::NotRelevant => s.push_str("set-up only"),
                    DenyReason::Unnamed => s.push_str("no name"),
                }
                s.push(')');
                if *blocks_enforce {
                    s.push_str(" [keeps the image in log mode]");
                }
            }
        }
        s.push('\n');
    }
    s
}

/// The report's reachability section: per ABI the observed, reachable and
/// allowed counts, the files, the gaps, and the soundness check.
fn reach_text(s: &mut String, d: &Decision, r: &crate::reachable::ReachSummary) {
    let _ = writeln!(
        s,
        "reachability (reachable, not observed -> {}): {} syscalls reachable from {} file(s), {} of them observed, {} given the tier; the set is {}",
        r.tier.as_str(),
        r.reachable,
        r.files.len(),
        r.reachable_observed,
        r.tiered,
        if r.known {
            "known"
        } else {
            "UNKNOWN (a file was not analysed, or has a syscall site whose number is not constant): what was observed is allowed, and the report cannot promise that nothing else is reachable"
        }
    );
    for abi in &d.abis {
        let observed = d
            .syscalls
            .iter()
            .filter(|x| x.abi == *abi && x.stats.as_ref().is_some_and(|st| st.containers > 0))
            .count();
        let allowed = d.allowed.iter().filter(|k| k.abi == *abi).count();
        let logged = d.logged.iter().filter(|k| k.abi == *abi).count();
        let _ = writeln!(
            s,
            "  {abi}: observed {observed}, allowed {allowed}, logged {logged}, running in all {}",
            allowed + logged
        );
    }
    for f in &r.files {
        let _ = writeln!(
            s,
            "  file {} ({}): {} syscalls, {}",
            f.path,
            if f.ran { "ran" } else { "declared" },
            f.syscalls,
            if f.known {
                "known".to_string()
            } else {
                format!("unknown: {} non-constant syscall site(s)", f.nonconst_sites)
            }
        );
    }
    for g in &r.gaps {
        let _ = writeln!(s, "  not analysed: {g}");
    }
    for o in &r.other_abi {
        let _ = writeln!(
            s,
            "  reachable in an ABI the image never used (not in the profile): {o}"
        );
    }
    if !r.held_back.is_empty() {
        let _ = writeln!(
            s,
            "  reachable, never observed, and outside Docker's default profile or high-risk (denied until observed): {}",
            r.held_back.join(", ")
        );
    }
    for o in &r.observed_not_reachable {
        let _ = writeln!(s, "  observed, not reachable: {o}");
    }
}
