//! Rendering a [`Decision`] in every output format, in memory.
//!
//! Every function here is deterministic: sorted sets, fixed field order,
//! hand-written YAML and unit files (no map iteration of unordered types),
//! and no timestamp. The content hash is over the canonical OCI JSON only.

use crate::decide::{AllowReason, Decision, DenyReason, Verdict};
use crate::filter::{build_resolved, ret_value, tables, FilterError};
use crate::oci::{
    Action, ArgCmp, CmpOp, Metadata, OciProfile, ScmpArch, SyscallRule, UnnamedSyscall,
    METADATA_VERSION,
};
use crate::probes::PROBED;
use crate::{ENOSYS, EPERM};
use schemas::slug::image_slug;
use schemas::syscalls;
use schemas::{Abi, Phase};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

const GENERATOR: &str = concat!("sandmine ", env!("CARGO_PKG_VERSION"));

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

/// The kubelet `localhost/` profile path, relative to the kubelet's seccomp
/// root (`/var/lib/kubelet/seccomp/`): pods refer to it as
/// `localhostProfile: sandmine/<slug>.json` ([`schemas::slug::image_slug`]).
pub fn kubelet_path(image: &str) -> String {
    format!("sandmine/{}.json", image_slug(image))
}

/// The kubelet path earlier releases wrote ([`schemas::slug::legacy`]),
/// still written for one release.
pub fn legacy_kubelet_path(image: &str) -> String {
    format!("sandmine/{}.json", schemas::slug::legacy(image).kubernetes)
}

/// Names of probed syscalls that get ENOSYS, others explicitly denied with
/// EPERM (log mode only), given the allowed union.
fn denied_rules(d: &Decision, allow: &BTreeSet<&'static str>) -> (Vec<String>, Vec<String>) {
    let in_some_abi = |n: &str| d.abis.iter().any(|a| syscalls::number(*a, n).is_some());
    let deny: BTreeSet<&str> = d.policy.must_deny.iter().map(String::as_str).collect();
    // Names observed below a threshold: in log mode they fall to the
    // default (logged), so that evidence keeps accumulating.
    let pending: BTreeSet<&str> = d
        .syscalls
        .iter()
        .filter(|s| {
            matches!(
                s.verdict,
                Verdict::Denied {
                    reason: DenyReason::BelowThreshold { .. },
                    ..
                }
            )
        })
        .filter_map(|s| s.name)
        .collect();
    let enforce = d.enforcing();
    let enosys: Vec<String> = PROBED
        .iter()
        .map(|p| p.name)
        .filter(|n| !allow.contains(n) && in_some_abi(n))
        .filter(|n| enforce || !pending.contains(n))
        .map(String::from)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let eperm: Vec<String> = if enforce {
        Vec::new()
    } else {
        deny.iter()
            .filter(|n| !crate::probes::is_probed(n) && !allow.contains(*n) && in_some_abi(n))
            .map(|n| n.to_string())
            .collect()
    };
    (enosys, eperm)
}

/// The Docker/OCI profile of a decision. Enforcing ([`Decision::enforcing`]):
/// default `SCMP_ACT_ERRNO` (EPERM); otherwise default `SCMP_ACT_LOG`.
///
/// The `sandmine` metadata holds what defines the profile (names and why).
/// The evidence (counts, what was left out as set-up, unnamed numbers) is
/// added only when the policy asks for it ([`Policy::profile_evidence`]):
/// a fleet profile's content hash must change when the profile does, not
/// whenever more calls were counted, and its counts are in the report.
///
/// [`Policy::profile_evidence`]: crate::policy::Policy::profile_evidence
pub fn oci_profile(d: &Decision) -> OciProfile {
    let allow = d.allowed_union();
    let (enosys, eperm) = denied_rules(d, &allow);
    let mut rules = Vec::new();
    let name_only: Vec<String> = allow
        .iter()
        .filter(|n| !d.args.rules.contains_key(*n))
        .map(|s| s.to_string())
        .collect();
    if !name_only.is_empty() {
        rules.push(SyscallRule {
            names: name_only,
            action: Action::Allow,
            errno_ret: None,
            comment: Some("allowed by sandmine from fleet observations under the policy's thresholds (see the report)".into()),
            ..Default::default()
        });
    }
    rules.extend(arg_rules(d));
    // The log tier (reachable, never observed): only where the default
    // denies; in log mode the default already logs them.
    let logged = d.logged_union();
    if d.enforcing() && !logged.is_empty() {
        rules.push(SyscallRule {
            names: logged.iter().map(|s| s.to_string()).collect(),
            action: Action::Log,
            errno_ret: None,
            comment: Some("reachable from the image's binaries but never observed: runs, and the kernel logs it (see the report)".into()),
            ..Default::default()
        });
    }
    if !enosys.is_empty() {
        rules.push(SyscallRule {
            names: enosys,
            action: Action::Errno,
            errno_ret: Some(ENOSYS),
            comment: Some("denied but probed: ENOSYS makes callers fall back to an older syscall, EPERM would break them".into()),
            ..Default::default()
        });
    }
    if !eperm.is_empty() {
        rules.push(SyscallRule {
            names: eperm,
            action: Action::Errno,
            errno_ret: Some(EPERM),
            comment: Some("denied by the policy (must_deny), also in log mode".into()),
            ..Default::default()
        });
    }
    let mut runtime = BTreeSet::new();
    let mut image = BTreeSet::new();
    let mut baseline = BTreeSet::new();
    let mut fallback = BTreeSet::new();
    for s in &d.syscalls {
        let (Some(name), Verdict::Allowed { reasons }) = (s.name, &s.verdict) else {
            continue;
        };
        if let Some(st) = &s.stats {
            if st.relevant_phases.contains(Phase::Runtime) {
                runtime.insert(name.to_string());
            }
            if st.relevant_phases.contains(Phase::Image)
                || st.relevant_phases.contains(Phase::Unfiltered)
            {
                image.insert(name.to_string());
            }
        }
        for r in reasons {
            match r {
                AllowReason::Baseline => {
                    baseline.insert(name.to_string());
                }
                AllowReason::Fallback { .. } => {
                    fallback.insert(name.to_string());
                }
                _ => {}
            }
        }
    }
    let mut must_allow: Vec<String> = d.policy.must_allow.clone();
    must_allow.sort();
    must_allow.dedup();
    let mut deny: Vec<String> = d.policy.must_deny.clone();
    deny.sort();
    deny.dedup();
    let mut metadata = Metadata {
        version: METADATA_VERSION,
        generator: GENERATOR.into(),
        runtime: runtime.into_iter().collect(),
        image: image.into_iter().collect(),
        setup_excluded: Vec::new(),
        unfiltered_excluded: Vec::new(),
        fallback: fallback.into_iter().collect(),
        baseline: baseline.into_iter().collect(),
        extra_allow: must_allow,
        deny,
        per_abi: d
            .allowed_names()
            .iter()
            .map(|(a, n)| (*a, n.iter().map(|s| s.to_string()).collect()))
            .collect(),
        logged: {
            let mut m: BTreeMap<Abi, BTreeSet<&str>> = BTreeMap::new();
            for k in &d.logged {
                if let Some(n) = syscalls::name(k.abi, k.nr) {
                    m.entry(k.abi).or_default().insert(n);
                }
            }
            m.into_iter()
                .map(|(a, n)| (a, n.into_iter().map(String::from).collect()))
                .collect()
        },
        calls: Default::default(),
        unnamed: Vec::new(),
        out_of_range: 0,
        warnings: d.warnings.clone(),
    };
    if d.policy.profile_evidence {
        add_evidence(d, &allow, &mut metadata);
    }
    let enforce = d.enforcing();
    OciProfile {
        default_action: if enforce { Action::Errno } else { Action::Log },
        default_errno_ret: enforce.then_some(EPERM),
        architectures: d.abis.iter().map(|a| ScmpArch::from(*a)).collect(),
        arch_map: Vec::new(),
        syscalls: rules,
        sandmine: Some(metadata),
    }
}

/// The argument rules ([`crate::args`]): one allow entry per distinct
/// comparison list, each comparison `SCMP_CMP_MASKED_EQ` with `value` the
/// field's mask and `valueTwo` the recorded value, never `EQ`: seccomp
/// compares 64 bits, and an exact match on a 32-bit argument breaks on
/// callers that sign-extend it (musl's `ioctl`) and was CVE-2019-10063's
/// bypass. libseccomp ORs the entries of one name. Names that share a
/// comparison list share an entry, which keeps the entry count low.
fn arg_rules(d: &Decision) -> Vec<SyscallRule> {
    d.args
        .entries()
        .into_iter()
        .map(|(cmp, names)| SyscallRule {
            names: names.iter().map(|n| n.to_string()).collect(),
            action: Action::Allow,
            errno_ret: None,
            comment: Some(format!(
                "allowed only with {}: a value recorded under the policy's thresholds, or a constant at a reachable call site (see the report)",
                cmp.iter()
                    .map(|(f, v)| crate::args::show_value(&[*f], &[*v]))
                    .collect::<Vec<_>>()
                    .join(" and ")
            )),
            args: cmp
                .iter()
                .map(|(f, v)| ArgCmp {
                    index: f.index,
                    value: u64::from(f.mask),
                    value_two: u64::from(*v),
                    op: CmpOp::MaskedEq,
                })
                .collect(),
            ..Default::default()
        })
        .collect()
}

/// The evidence behind a profile, into its metadata: calls per named
/// syscall (every phase), the names seen only where the filter never
/// judges (the runtime's set-up; unfiltered calls of a filtered workload),
/// and the numbers with no name.
fn add_evidence(d: &Decision, allow: &BTreeSet<&'static str>, m: &mut Metadata) {
    let deny: BTreeSet<&str> = d.policy.must_deny.iter().map(String::as_str).collect();
    // Name -> seen after the first exec (unfiltered) rather than only in set-up.
    let mut excluded: BTreeMap<&str, bool> = BTreeMap::new();
    for s in &d.syscalls {
        let Some(st) = &s.stats else { continue };
        let Some(name) = s.name else {
            m.unnamed.push(UnnamedSyscall {
                abi: s.abi,
                nr: s.nr,
                calls: st.calls,
            });
            continue;
        };
        *m.calls
            .entry(s.abi)
            .or_default()
            .entry(name.to_string())
            .or_default() += st.calls;
        if st.containers == 0 {
            *excluded.entry(name).or_default() |= st.phases.contains(Phase::Unfiltered);
        }
    }
    for (name, after_exec) in excluded {
        if allow.contains(name) || deny.contains(name) {
            continue;
        }
        if after_exec {
            m.unfiltered_excluded.push(name.to_string());
        } else {
            m.setup_excluded.push(name.to_string());
        }
    }
    m.out_of_range = d.out_of_range;
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn yq(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// The security-profiles-operator `SeccompProfile` resource. The SPO spec
/// has no `defaultErrnoRet`; the runtimes' default errno for
/// `SCMP_ACT_ERRNO` is EPERM, which is what an enforced profile wants.
///
/// Two documents for one release: the object under the image's slug, then
/// the same object under the name earlier releases gave it
/// ([`schemas::slug::legacy`]), which running pods may still refer to.
pub fn spo_yaml(d: &Decision, profile: &OciProfile, content_hash: &str) -> String {
    let name = image_slug(&d.image);
    let legacy = schemas::slug::legacy(&d.image).kubernetes;
    let mut y = spo_object(d, profile, content_hash, &name);
    if legacy != name {
        y.push_str("---\n");
        y.push_str(&spo_object(d, profile, content_hash, &legacy));
    }
    y
}

fn spo_object(d: &Decision, profile: &OciProfile, content_hash: &str, name: &str) -> String {
    let mut y = String::with_capacity(4096);
    y.push_str("apiVersion: security-profiles-operator.x-k8s.io/v1beta1\n");
    y.push_str("kind: SeccompProfile\n");
    y.push_str("metadata:\n");
    let _ = writeln!(y, "  name: {name}");
    y.push_str("  annotations:\n");
    let _ = writeln!(y, "    sandmine.io/content-hash: {}", yq(content_hash));
    let _ = writeln!(y, "    sandmine.io/image: {}", yq(&d.image));
    let _ = writeln!(y, "    sandmine.io/state: {}", yq(d.state.as_str()));
    y.push_str("spec:\n");
    let _ = writeln!(y, "  defaultAction: {}", profile.default_action);
    if !profile.architectures.is_empty() {
        y.push_str("  architectures:\n");
        for a in &profile.architectures {
            let _ = writeln!(y, "  - {a}");
        }
    }
    if !profile.syscalls.is_empty() {
        y.push_str("  syscalls:\n");
        for r in &profile.syscalls {
            let _ = writeln!(y, "  - action: {}", r.action);
            if let Some(e) = r.errno_ret {
                let _ = writeln!(y, "    errnoRet: {e}");
            }
            y.push_str("    names:\n");
            for n in &r.names {
                let _ = writeln!(y, "    - {n}");
            }
            if !r.args.is_empty() {
                y.push_str("    args:\n");
                for a in &r.args {
                    let _ = writeln!(y, "    - index: {}", a.index);
                    let _ = writeln!(y, "      value: {}", a.value);
                    if a.value_two != 0 {
                        let _ = writeln!(y, "      valueTwo: {}", a.value_two);
                    }
                    let _ = writeln!(y, "      op: {}", a.op.as_str());
                }
            }
        }
    }
    y
}

/// systemd's name for an ABI in `SystemCallArchitectures=`.
fn systemd_arch(abi: Abi) -> &'static str {
    match abi {
        Abi::X86_64 => "x86-64",
        Abi::I386 => "x86",
        Abi::X32 => "x32",
        Abi::Aarch64 => "arm64",
    }
}

/// A `[Service]` drop-in with the profile as systemd settings.
///
/// Enforce: an allow-list `SystemCallFilter=` (systemd also always allows
/// its own `@default` group in allow-list mode) with
/// `SystemCallErrorNumber=EPERM`. systemd's allow-list mode has one errno
/// for every denied call (a `:errno` suffix is accepted only on `~` deny
/// entries), so the probed syscalls this profile answers with ENOSYS get
/// EPERM under systemd; the file says which. Log mode: no filter, and
/// `SystemCallLog=~<allowed>` logs every call outside the allowed set.
/// Names are resolved by the host's libseccomp; systemd ignores (with a
/// warning) a name its libseccomp does not know.
pub fn systemd_dropin(d: &Decision, profile: &OciProfile, content_hash: &str) -> String {
    let allow = d.allowed_union();
    let mut s = String::with_capacity(4096);
    let _ = writeln!(s, "# sandmine profile for {}", d.image);
    let _ = writeln!(s, "# state: {}; {}", d.state.as_str(), content_hash);
    s.push_str("[Service]\n");
    if !d.abis.is_empty() {
        let _ = writeln!(
            s,
            "SystemCallArchitectures={}",
            d.abis
                .iter()
                .map(|a| systemd_arch(*a))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    let names: Vec<&str> = allow.iter().copied().collect();
    if d.enforcing() {
        s.push_str("SystemCallErrorNumber=EPERM\n");
        if let Some(r) = profile
            .syscalls
            .iter()
            .find(|r| r.errno_ret == Some(ENOSYS))
        {
            let _ = writeln!(
                s,
                "# answered with ENOSYS by the OCI profile, EPERM under systemd: {}",
                r.names.join(" ")
            );
        }
        for chunk in names.chunks(16) {
            let _ = writeln!(s, "SystemCallFilter={}", chunk.join(" "));
        }
        systemd_arg_settings(d, &mut s);
        // The log tier: allowed by the filter and logged by SystemCallLog=
        // (systemd installs a second filter; LOG wins over ALLOW).
        let logged: Vec<&str> = d.logged_union().into_iter().collect();
        if !logged.is_empty() {
            s.push_str(
                "# reachable from the image's binaries but never observed: runs, and is logged\n",
            );
            for chunk in logged.chunks(16) {
                let _ = writeln!(s, "SystemCallFilter={}", chunk.join(" "));
            }
            for chunk in logged.chunks(16) {
                let _ = writeln!(s, "SystemCallLog={}", chunk.join(" "));
            }
        }
    } else {
        s.push_str("# log mode: nothing is denied; calls outside the allowed set are logged\n");
        for (i, chunk) in names.chunks(16).enumerate() {
            // Only the first entry may carry `~`; later ones add to it.
            let tilde = if i == 0 { "~" } else { "" };
            let _ = writeln!(s, "SystemCallLog={tilde}{}", chunk.join(" "));
        }
    }
    s
}

/// Address families by number, as systemd's `RestrictAddressFamilies=`
/// names them (Linux's `include/linux/socket.h`).
const AF_NAMES: &[(u32, &str)] = &[
    (1, "AF_UNIX"),
    (2, "AF_INET"),
    (3, "AF_AX25"),
    (4, "AF_IPX"),
    (5, "AF_APPLETALK"),
    (9, "AF_X25"),
    (10, "AF_INET6"),
    (15, "AF_KEY"),
    (16, "AF_NETLINK"),
    (17, "AF_PACKET"),
    (21, "AF_RDS"),
    (29, "AF_CAN"),
    (31, "AF_BLUETOOTH"),
    (38, "AF_ALG"),
    (40, "AF_VSOCK"),
    (43, "AF_SMC"),
    (44, "AF_XDP"),
];

/// Namespace flags as `RestrictNamespaces=` names them.
const NS_NAMES: &[(u32, &str)] = &[
    (0x0200_0000, "cgroup"),
    (0x0800_0000, "ipc"),
    (0x4000_0000, "net"),
    (0x0002_0000, "mnt"),
    (0x2000_0000, "pid"),
    (0x1000_0000, "user"),
    (0x0400_0000, "uts"),
];

/// The argument rules that systemd's sandboxing settings express, each
/// written only where it says no more than the rule (enforcing only; the
/// OCI profile and the BPF program carry every rule):
///
/// - `RestrictAddressFamilies=`: the families of a narrowed `socket` (the
///   socket types it also narrows have no systemd setting);
/// - `RestrictNamespaces=`: the namespace flags of narrowed `clone` and
///   `unshare`, when `setns` is not allowed (systemd also restricts
///   `setns` by type, which a recorded `setns(fd, 0)` would fail);
/// - `LockPersonality=yes`: a narrowed `personality` that only queries
///   (0xffffffff) or sets PER_LINUX (0);
/// - `MemoryDenyWriteExecute=yes`: narrowed `mmap`/`mmap2` never asked for
///   PROT_WRITE|PROT_EXEC, and narrowed `mprotect`/`pkey_mprotect` never
///   for PROT_EXEC (systemd denies any executable `mprotect`).
fn systemd_arg_settings(d: &Decision, s: &mut String) {
    let allowed = d.allowed_union();
    let rule = |n: &str| d.args.rules.get(n);
    // Values of a one-field rule.
    let single = |n: &str| -> Option<BTreeSet<u32>> {
        rule(n).map(|r| r.values.iter().filter_map(|v| v.first().copied()).collect())
    };
    // Allowed and narrowed, or not allowed at all.
    let closed = |n: &str| !allowed.contains(n) || rule(n).is_some();
    if let Some(r) = rule("socket") {
        let fams: BTreeSet<u32> = r.values.iter().filter_map(|v| v.first().copied()).collect();
        let named: Vec<&str> = fams
            .iter()
            .filter_map(|f| AF_NAMES.iter().find(|(n, _)| n == f).map(|(_, a)| *a))
            .collect();
        if named.len() == fams.len() {
            s.push_str(
                "# the socket families of the argument rule (its socket types have no setting)
",
            );
            let _ = writeln!(s, "RestrictAddressFamilies={}", named.join(" "));
        } else {
            s.push_str(
                "# RestrictAddressFamilies= not written: a recorded family has no systemd name
",
            );
        }
    }
    let ns_narrowed = rule("clone").is_some() || rule("unshare").is_some();
    if ns_narrowed && closed("clone") && closed("unshare") && !allowed.contains("setns") {
        let mut flags = 0u32;
        for n in ["clone", "unshare"] {
            flags |= single(n)
                .unwrap_or_default()
                .into_iter()
                .fold(0, |a, b| a | b);
        }
        let names: Vec<&str> = NS_NAMES
            .iter()
            .filter(|(f, _)| flags & f != 0)
            .map(|(_, n)| *n)
            .collect();
        if names.is_empty() {
            s.push_str(
                "# clone and unshare create no namespace (argument rules)
",
            );
            s.push_str(
                "RestrictNamespaces=yes
",
            );
        } else {
            s.push_str(
                "# the namespaces clone and unshare create (argument rules)
",
            );
            let _ = writeln!(s, "RestrictNamespaces={}", names.join(" "));
        }
    }
    if single("personality").is_some_and(|v| v.iter().all(|p| *p == 0 || *p == u32::MAX)) {
        s.push_str(
            "# personality only queried or set to PER_LINUX (argument rule)
",
        );
        s.push_str(
            "LockPersonality=yes
",
        );
    }
    let maps = ["mmap", "mmap2"];
    let prots = ["mprotect", "pkey_mprotect"];
    let any_narrowed = maps.iter().chain(&prots).any(|n| rule(n).is_some());
    let all_closed = maps.iter().chain(&prots).all(|n| closed(n));
    let no_wx = maps
        .iter()
        .all(|n| single(n).is_none_or(|v| !v.contains(&6)));
    let no_x = prots
        .iter()
        .all(|n| single(n).is_none_or(|v| v.iter().all(|p| p & 4 == 0)));
    if any_narrowed && all_closed && no_wx && no_x {
        s.push_str(
            "# never writable and executable at once (argument rules)
",
        );
        s.push_str(
            "MemoryDenyWriteExecute=yes
",
        );
    }
}

/// The host ABI families a decision needs filters for: each family is the
/// ABI list a kernel of that architecture runs ([`Abi::host_abis`] of that
/// machine), in filter order.
pub fn host_families(d: &Decision) -> Vec<(&'static str, &'static [Abi])> {
    const X86: &[Abi] = &[Abi::X86_64, Abi::I386, Abi::X32];
    const ARM: &[Abi] = &[Abi::Aarch64];
    let mut v = Vec::new();
    if d.abis.iter().any(|a| X86.contains(a)) {
        v.push(("x86_64", X86));
    }
    if d.abis.contains(&Abi::Aarch64) {
        v.push(("aarch64", ARM));
    }
    v
}

/// The classic-BPF program for a kernel running `host`: the raw
/// `struct sock_filter` array, little-endian, 8 bytes per instruction.
///
/// The same program as `filter::build_for(profile, DefaultOverride::Errno,
/// host)` (a test checks it), with names resolved through [`schemas::syscalls`]
/// and without re-validating a profile this module built.
pub fn bpf_bytes(profile: &OciProfile, host: &[Abi]) -> Result<Vec<u8>, FilterError> {
    let prog = if profile.syscalls.iter().any(|r| !r.args.is_empty()) {
        // Argument rules need the full compiler (comparisons per rule).
        crate::filter::build_for(profile, crate::filter::DefaultOverride::Errno, host)?
    } else {
        let default_ret = ret_value(profile.default_action, profile.default_errno());
        build_resolved(&tables(profile, host), default_ret, host)?
    };
    let mut out = Vec::with_capacity(prog.len() * 8);
    for i in prog {
        out.extend_from_slice(&i.code.to_le_bytes());
        out.push(i.jt);
        out.push(i.jf);
        out.extend_from_slice(&i.k.to_le_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_paths_use_the_slug_and_keep_the_old_name() {
        let image = "docker.io/library/Nginx:1.25@sha256:abc";
        assert_eq!(
            kubelet_path(image),
            format!("sandmine/{}.json", image_slug(image))
        );
        assert_eq!(
            legacy_kubelet_path(image),
            format!("sandmine/{}.json", schemas::slug::legacy(image).kubernetes)
        );
        assert_ne!(kubelet_path(image), legacy_kubelet_path(image));
    }
}
