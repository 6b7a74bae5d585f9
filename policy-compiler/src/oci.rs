//! Docker/OCI seccomp profile JSON.
//!
//! The format is Docker's (`docker run --security-opt seccomp=FILE`), which
//! podman and containerd also read:
//!
//! ```json
//! {
//!   "defaultAction": "SCMP_ACT_ERRNO",
//!   "defaultErrnoRet": 1,
//!   "architectures": ["SCMP_ARCH_X86_64"],
//!   "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}],
//!   "sandmine": {"version": 1, ...}
//! }
//! ```
//!
//! `sandmine` is our metadata object; Docker ignores unknown fields.
//!
//! Parsing accepts Docker's own fields (`archMap`, `args`, `includes`,
//! `excludes`, `comment`, the legacy single `name`), but rejects what the
//! filter compiler cannot honour: argument rules and conditional rules would
//! otherwise be silently widened to unconditional ones.
//!
//! Emitting is byte-identical for identical input: struct field order is
//! the JSON order, names within a rule are sorted and deduplicated, maps are
//! `BTreeMap`s, and the output is pretty-printed (2-space indent) with a
//! trailing newline.

use crate::{EPERM, MAX_ERRNO};
use schemas::Abi;
use serde::{Deserialize, Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Version of the `sandmine` metadata object written by this crate.
pub const METADATA_VERSION: u32 = 1;

/// Errors of parsing or validating a profile.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProfileError {
    #[error("malformed profile JSON at line {line}, column {column}: {msg}")]
    Json {
        line: usize,
        column: usize,
        msg: String,
    },
    #[error("unknown action {0:?} (expected one of SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_KILL, SCMP_ACT_TRAP, SCMP_ACT_LOG)")]
    UnknownAction(String),
    #[error("action {0} is not supported by sandmine (it needs a tracer or a listener process)")]
    UnsupportedAction(String),
    #[error("unknown architecture {0:?} (expected an SCMP_ARCH_* name such as SCMP_ARCH_X86_64)")]
    UnknownArch(String),
    #[error("unknown syscall name {name:?} in {context} (no ABI has a syscall of that name)")]
    UnknownSyscall { name: String, context: String },
    #[error("{context}: argument rules (\"args\") are not supported yet; sandmine can only allow or deny a syscall as a whole")]
    ArgsUnsupported { context: String },
    #[error("{context}: conditional rules (\"{field}\" with caps, arches or minKernel) are not supported yet")]
    ConditionUnsupported {
        context: String,
        field: &'static str,
    },
    #[error("{context}: errno {errno} is out of range (at most {max})", max = MAX_ERRNO)]
    ErrnoOutOfRange { context: String, errno: u32 },
    #[error("both \"architectures\" and \"archMap\" are given; use one of them (Docker refuses this too)")]
    ArchAndArchMap,
    #[error("syscall {name:?} is in {first} and in {second} with a different action")]
    ConflictingRules {
        name: String,
        first: String,
        second: String,
    },
    #[error("cannot serialise the profile: {0}")]
    Emit(String),
}

/// A seccomp action, as named in profiles (`SCMP_ACT_*`).
///
/// `SCMP_ACT_TRACE` and `SCMP_ACT_NOTIFY` are known but refused: without a
/// tracer or a notification listener they do not mean what the profile's
/// author intended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Allow,
    Errno,
    KillProcess,
    KillThread,
    /// `SCMP_ACT_KILL`, libseccomp's old name for `SCMP_ACT_KILL_THREAD`.
    /// Kept apart only so that a parsed profile is emitted as written.
    Kill,
    Trap,
    Log,
}

impl Action {
    pub const ALL: [Action; 7] = [
        Action::Allow,
        Action::Errno,
        Action::KillProcess,
        Action::KillThread,
        Action::Kill,
        Action::Trap,
        Action::Log,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "SCMP_ACT_ALLOW",
            Action::Errno => "SCMP_ACT_ERRNO",
            Action::KillProcess => "SCMP_ACT_KILL_PROCESS",
            Action::KillThread => "SCMP_ACT_KILL_THREAD",
            Action::Kill => "SCMP_ACT_KILL",
            Action::Trap => "SCMP_ACT_TRAP",
            Action::Log => "SCMP_ACT_LOG",
        }
    }

    pub fn parse(s: &str) -> Result<Action, ProfileError> {
        if let Some(a) = Action::ALL.into_iter().find(|a| a.as_str() == s) {
            return Ok(a);
        }
        match s {
            "SCMP_ACT_TRACE" | "SCMP_ACT_NOTIFY" => Err(ProfileError::UnsupportedAction(s.into())),
            _ => Err(ProfileError::UnknownAction(s.into())),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Every architecture name libseccomp (and so Docker) knows. Profiles may
/// list architectures sandmine has no syscall table for (Docker's own
/// default profile lists MIPS, PowerPC, s390...); those are accepted and
/// simply never match a host ABI. A name outside this list is a typo.
const SCMP_ARCHES: &[&str] = &[
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
];

/// An `SCMP_ARCH_*` name known to libseccomp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScmpArch(&'static str);

impl ScmpArch {
    pub fn parse(s: &str) -> Result<ScmpArch, ProfileError> {
        SCMP_ARCHES
            .iter()
            .find(|a| **a == s)
            .map(|a| ScmpArch(a))
            .ok_or_else(|| ProfileError::UnknownArch(s.into()))
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }

    /// The ABI sandmine models for this architecture, if any.
    pub fn abi(self) -> Option<Abi> {
        Abi::from_scmp_arch(self.0)
    }
}

impl From<Abi> for ScmpArch {
    fn from(abi: Abi) -> ScmpArch {
        ScmpArch(abi.scmp_arch())
    }
}

impl fmt::Display for ScmpArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Serialize for ScmpArch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

/// One `archMap` entry: an architecture and the sub-architectures a kernel
/// of it also runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMapEntry {
    pub architecture: ScmpArch,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sub_architectures: Vec<ScmpArch>,
}

/// One rule of `syscalls`: these names get this action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyscallRule {
    pub names: Vec<String>,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A syscall number that has no name in sandmine's table for its ABI.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UnnamedSyscall {
    pub abi: Abi,
    pub nr: u32,
    pub calls: u64,
}

/// The `sandmine` metadata object: where the profile came from and why each
/// syscall is in it. Every list is sorted and every map is ordered, so the
/// same observation always gives the same bytes (hence: no timestamp).
///
/// Missing fields read as empty, so that profiles written by other versions
/// still parse.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Metadata {
    pub version: u32,
    pub generator: String,
    /// Allowed because the runtime used them after installing the filter
    /// (seen in `Phase::Runtime`).
    pub runtime: Vec<String>,
    /// Allowed because the image used them (`Phase::Image`, or
    /// `Phase::Unfiltered` when no call went through a filter).
    pub image: Vec<String>,
    /// Seen only in the runtime's privileged set-up (`Phase::Setup`), which
    /// the filter never judges: left out.
    pub setup_excluded: Vec<String>,
    /// Seen after the first exec without a filter while other calls did go
    /// through one (e.g. a later `docker exec`'s set-up): left out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unfiltered_excluded: Vec<String>,
    /// Allowed because a syscall the workload used is denied by default
    /// and callers fall back to these (`crate::must_deny`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fallback: Vec<String>,
    /// Allowed by the baseline whether seen or not (`crate::baseline`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub baseline: Vec<String>,
    /// Names allowed by the policy whether seen or not (`must_allow`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_allow: Vec<String>,
    /// Names the policy denies (`must_deny`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
    /// The exact allowed names per ABI (the `syscalls` rule is their union,
    /// because the Docker format cannot scope a name to one ABI).
    pub per_abi: BTreeMap<Abi, Vec<String>>,
    /// Calls counted per ABI and name, in every phase.
    pub calls: BTreeMap<Abi, BTreeMap<String, u64>>,
    /// Seen numbers that have no name, which the profile cannot allow.
    pub unnamed: Vec<UnnamedSyscall>,
    /// Calls whose number was outside the capture's table.
    #[serde(skip_serializing_if = "is_zero")]
    pub out_of_range: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A validated Docker/OCI seccomp profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciProfile {
    pub default_action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<ScmpArch>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub arch_map: Vec<ArchMapEntry>,
    pub syscalls: Vec<SyscallRule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandmine: Option<Metadata>,
}

impl OciProfile {
    /// Parse and validate a profile (see [`parse`]).
    pub fn parse(text: &str) -> Result<OciProfile, ProfileError> {
        parse(text)
    }

    /// The profile as canonical JSON (see the module documentation).
    pub fn to_json(&self) -> Result<String, ProfileError> {
        let mut canon = self.clone();
        for rule in &mut canon.syscalls {
            rule.names.sort();
            rule.names.dedup();
        }
        let mut out =
            serde_json::to_string_pretty(&canon).map_err(|e| ProfileError::Emit(e.to_string()))?;
        out.push('\n');
        Ok(out)
    }

    /// Warnings the generator recorded in the metadata, if any.
    pub fn warnings(&self) -> &[String] {
        self.sandmine.as_ref().map_or(&[], |m| &m.warnings)
    }

    /// The ABIs whose calls the profile's rules judge, on a kernel whose
    /// native ABI is `native`, following Docker: the `architectures` list if
    /// non-empty; else the `archMap` entry of the native architecture with
    /// its sub-architectures; else the native ABI alone (libseccomp's
    /// default). Architectures sandmine has no table for are left out.
    /// Sorted in `Abi` order, without duplicates.
    pub fn abis(&self, native: Abi) -> Vec<Abi> {
        let set: BTreeSet<Abi> = if !self.architectures.is_empty() {
            self.architectures.iter().filter_map(|a| a.abi()).collect()
        } else if let Some(entry) = self
            .arch_map
            .iter()
            .find(|e| e.architecture.abi() == Some(native))
        {
            std::iter::once(entry.architecture)
                .chain(entry.sub_architectures.iter().copied())
                .filter_map(|a| a.abi())
                .collect()
        } else {
            std::iter::once(native).collect()
        };
        set.into_iter().collect()
    }

    /// The action a syscall `name` gets from this profile, ignoring
    /// architectures: the action of the rule naming it, else the default.
    /// Returns the action and the errno it carries (for `SCMP_ACT_ERRNO`).
    pub fn action_for(&self, name: &str) -> (Action, Option<u32>) {
        self.syscalls
            .iter()
            .find(|r| r.names.iter().any(|n| n == name))
            .map_or((self.default_action, self.default_errno()), |r| {
                (r.action, r.errno())
            })
    }

    /// The errno of the default action: `defaultErrnoRet`, else `EPERM`
    /// (runc's default). `None` unless the default action is ERRNO.
    pub fn default_errno(&self) -> Option<u32> {
        (self.default_action == Action::Errno).then(|| self.default_errno_ret.unwrap_or(EPERM))
    }

    /// Check what [`parse`] checks, on a profile built in code: known names,
    /// errno ranges, no name in two rules with different actions.
    pub fn validate(&self) -> Result<(), ProfileError> {
        if !self.architectures.is_empty() && !self.arch_map.is_empty() {
            return Err(ProfileError::ArchAndArchMap);
        }
        if let Some(e) = self.default_errno() {
            check_errno(e, "defaultErrnoRet")?;
        }
        // name -> (rule context, action, errno) of the first rule naming it.
        let mut seen: BTreeMap<&str, (String, Action, Option<u32>)> = BTreeMap::new();
        for (i, rule) in self.syscalls.iter().enumerate() {
            let ctx = rule_context(i, &rule.names);
            if let Some(e) = rule.errno() {
                check_errno(e, &ctx)?;
            }
            for name in &rule.names {
                if !schemas::syscalls::is_known(name) {
                    return Err(ProfileError::UnknownSyscall {
                        name: name.clone(),
                        context: ctx,
                    });
                }
                match seen.get(name.as_str()) {
                    None => {
                        seen.insert(name, (ctx.clone(), rule.action, rule.errno()));
                    }
                    // The same name twice with the same outcome is harmless;
                    // with different outcomes the result would depend on
                    // rule order, which libseccomp does not define either.
                    Some((first, action, errno)) => {
                        if (*action, *errno) != (rule.action, rule.errno()) {
                            return Err(ProfileError::ConflictingRules {
                                name: name.clone(),
                                first: first.clone(),
                                second: ctx,
                            });
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl SyscallRule {
    /// The errno this rule returns: `errnoRet`, else `EPERM`. `None` unless
    /// the action is ERRNO (Docker and runc ignore `errnoRet` elsewhere).
    pub fn errno(&self) -> Option<u32> {
        (self.action == Action::Errno).then(|| self.errno_ret.unwrap_or(EPERM))
    }
}

fn check_errno(errno: u32, context: &str) -> Result<(), ProfileError> {
    if errno > MAX_ERRNO {
        return Err(ProfileError::ErrnoOutOfRange {
            context: context.into(),
            errno,
        });
    }
    Ok(())
}

/// How a rule is named in errors: its 1-based index and its first names.
fn rule_context(index: usize, names: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut s = format!("syscalls rule {}", index + 1);
    if !names.is_empty() {
        let shown: Vec<&str> = names.iter().take(SHOWN).map(String::as_str).collect();
        s.push_str(&format!(" ({}", shown.join(", ")));
        if names.len() > SHOWN {
            s.push_str(", ...");
        }
        s.push(')');
    }
    s
}

// ---------------------------------------------------------------------------
// Parsing: a permissive raw form first (so that every Docker field is
// accepted), then validation into the typed form, with errors that name the
// offending value.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawProfile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Option<Vec<String>>,
    #[serde(default)]
    arch_map: Option<Vec<RawArchMap>>,
    #[serde(default)]
    syscalls: Option<Vec<RawRule>>,
    #[serde(default)]
    sandmine: Option<Metadata>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRule {
    #[serde(default)]
    names: Option<Vec<String>>,
    /// Docker's pre-1.13 single-name form.
    #[serde(default)]
    name: Option<String>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    includes: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    excludes: Option<serde_json::Map<String, serde_json::Value>>,
}

/// True when a Docker `includes`/`excludes` object sets a condition.
/// Docker's own profiles write empty ones (`{}`), which mean "always".
fn has_condition(m: &Option<serde_json::Map<String, serde_json::Value>>) -> bool {
    use serde_json::Value;
    m.as_ref().is_some_and(|m| {
        m.values().any(|v| match v {
            Value::Null => false,
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => !o.is_empty(),
            Value::Bool(_) | Value::Number(_) => true,
        })
    })
}

/// Parse and validate a Docker/OCI seccomp profile.
pub fn parse(text: &str) -> Result<OciProfile, ProfileError> {
    let raw: RawProfile = serde_json::from_str(text).map_err(|e| ProfileError::Json {
        line: e.line(),
        column: e.column(),
        msg: json_message(&e),
    })?;

    let default_action = Action::parse(&raw.default_action)?;
    let architectures = raw
        .architectures
        .unwrap_or_default()
        .iter()
        .map(|a| ScmpArch::parse(a))
        .collect::<Result<Vec<_>, _>>()?;
    let arch_map = raw
        .arch_map
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            Ok(ArchMapEntry {
                architecture: ScmpArch::parse(&m.architecture)?,
                sub_architectures: m
                    .sub_architectures
                    .unwrap_or_default()
                    .iter()
                    .map(|a| ScmpArch::parse(a))
                    .collect::<Result<Vec<_>, _>>()?,
            })
        })
        .collect::<Result<Vec<_>, ProfileError>>()?;

    let mut syscalls = Vec::new();
    for (i, r) in raw.syscalls.unwrap_or_default().into_iter().enumerate() {
        let mut names = r.names.unwrap_or_default();
        names.extend(r.name);
        let ctx = rule_context(i, &names);
        let action = Action::parse(&r.action)?;
        if r.args.as_ref().is_some_and(|a| !a.is_empty()) {
            return Err(ProfileError::ArgsUnsupported { context: ctx });
        }
        for (field, cond) in [("includes", &r.includes), ("excludes", &r.excludes)] {
            if has_condition(cond) {
                return Err(ProfileError::ConditionUnsupported {
                    context: ctx,
                    field,
                });
            }
        }
        syscalls.push(SyscallRule {
            names,
            action,
            errno_ret: r.errno_ret,
            // Docker's profiles carry `"comment": ""`; an empty comment says
            // nothing, and dropping it keeps the emitted form canonical.
            comment: r.comment.filter(|c| !c.is_empty()),
        });
    }

    let profile = OciProfile {
        default_action,
        default_errno_ret: raw.default_errno_ret,
        architectures,
        arch_map,
        syscalls,
        sandmine: raw.sandmine,
    };
    profile.validate()?;
    Ok(profile)
}

/// serde_json's message without its trailing " at line L column C" (we
/// report the position ourselves, in front).
fn json_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    full.strip_suffix(&suffix).unwrap_or(&full).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<OciProfile, ProfileError> {
        parse(text)
    }

    const MINIMAL: &str = r#"{
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["write", "read"], "action": "SCMP_ACT_ALLOW"}]
    }"#;

    #[test]
    fn parses_minimal_profile() {
        let prof = p(MINIMAL).unwrap();
        assert_eq!(prof.default_action, Action::Errno);
        assert_eq!(prof.default_errno(), Some(EPERM));
        assert_eq!(prof.abis(Abi::X86_64), vec![Abi::X86_64, Abi::I386]);
        assert_eq!(prof.syscalls[0].names, vec!["write", "read"]);
        assert_eq!(prof.action_for("read"), (Action::Allow, None));
        assert_eq!(prof.action_for("socket"), (Action::Errno, Some(EPERM)));
    }

    #[test]
    fn emits_canonical_json() {
        let prof = p(MINIMAL).unwrap();
        let out = prof.to_json().unwrap();
        assert_eq!(
            out,
            "{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"architectures\": [\n    \"SCMP_ARCH_X86_64\",\n    \"SCMP_ARCH_X86\"\n  ],\n  \"syscalls\": [\n    {\n      \"names\": [\n        \"read\",\n        \"write\"\n      ],\n      \"action\": \"SCMP_ACT_ALLOW\"\n    }\n  ]\n}\n"
        );
        // Round trip: parse(emit(x)) emits the same bytes.
        assert_eq!(p(&out).unwrap().to_json().unwrap(), out);
    }

    #[test]
    fn metadata_round_trips() {
        let mut prof = p(MINIMAL).unwrap();
        let mut calls = BTreeMap::new();
        calls.insert(Abi::X86_64, BTreeMap::from([("read".to_string(), 3u64)]));
        prof.sandmine = Some(Metadata {
            version: METADATA_VERSION,
            generator: "sandmine test".into(),
            per_abi: BTreeMap::from([(Abi::I386, vec!["read".into()]), (Abi::X86_64, vec![])]),
            calls,
            unnamed: vec![UnnamedSyscall {
                abi: Abi::X32,
                nr: 999,
                calls: 2,
            }],
            ..Metadata::default()
        });
        let out = prof.to_json().unwrap();
        assert!(out.contains("\"per_abi\": {\n      \"x86_64\": [],\n      \"i386\": ["));
        let back = p(&out).unwrap();
        prof.syscalls[0].names.sort();
        assert_eq!(back, prof);
        assert_eq!(back.to_json().unwrap(), out);
    }

    #[test]
    fn accepts_docker_fields() {
        let text = r#"{
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "archMap": [
                {"architecture": "SCMP_ARCH_X86_64",
                 "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
                {"architecture": "SCMP_ARCH_S390X", "subArchitectures": ["SCMP_ARCH_S390"]}
            ],
            "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [], "comment": "",
                 "includes": {}, "excludes": {}},
                {"name": "write", "action": "SCMP_ACT_ALLOW", "args": null},
                {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
                 "comment": "ENOSYS", "includes": {"caps": []}}
            ],
            "listenerPath": "",
            "flags": []
        }"#;
        let prof = p(text).unwrap();
        assert_eq!(
            prof.abis(Abi::X86_64),
            vec![Abi::X86_64, Abi::I386, Abi::X32]
        );
        assert_eq!(prof.abis(Abi::Aarch64), vec![Abi::Aarch64]);
        assert_eq!(prof.syscalls[1].names, vec!["write"]);
        assert_eq!(prof.syscalls[0].comment, None);
        assert_eq!(prof.action_for("clone3"), (Action::Errno, Some(38)));
    }

    #[test]
    fn no_architectures_means_native() {
        let prof = p(r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#).unwrap();
        assert_eq!(prof.abis(Abi::X86_64), vec![Abi::X86_64]);
        assert!(prof.syscalls.is_empty());
    }

    #[test]
    fn rejects_args() {
        let text = r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}]}"#;
        let e = p(text).unwrap_err();
        assert!(matches!(e, ProfileError::ArgsUnsupported { .. }));
        let msg = e.to_string();
        assert!(msg.contains("rule 1 (personality)"), "{msg}");
        assert!(msg.contains("not supported yet"), "{msg}");
    }

    #[test]
    fn rejects_conditions() {
        for field in ["includes", "excludes"] {
            let text = format!(
                r#"{{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {{"names": ["read"], "action": "SCMP_ACT_ALLOW"}},
                {{"names": ["bpf"], "action": "SCMP_ACT_ALLOW", "{field}": {{"caps": ["CAP_BPF"]}}}}]}}"#
            );
            let e = p(&text).unwrap_err();
            assert_eq!(
                e,
                ProfileError::ConditionUnsupported {
                    context: "syscalls rule 2 (bpf)".into(),
                    field
                }
            );
        }
        let text = r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}}]}"#;
        assert!(matches!(
            p(text),
            Err(ProfileError::ConditionUnsupported { .. })
        ));
    }

    #[test]
    fn rejects_unknown_values_by_name() {
        let e = p(r#"{"defaultAction": "SCMP_ACT_EPERM"}"#).unwrap_err();
        assert_eq!(e, ProfileError::UnknownAction("SCMP_ACT_EPERM".into()));
        assert!(e.to_string().contains("\"SCMP_ACT_EPERM\""));

        let e = p(r#"{"defaultAction": "SCMP_ACT_TRACE"}"#).unwrap_err();
        assert!(matches!(e, ProfileError::UnsupportedAction(_)));

        let e = p(r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_65"]}"#)
            .unwrap_err();
        assert_eq!(e, ProfileError::UnknownArch("SCMP_ARCH_X86_65".into()));

        let e = p(r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read", "not_a_syscall"], "action": "SCMP_ACT_ALLOW"}]}"#)
        .unwrap_err();
        assert!(matches!(&e, ProfileError::UnknownSyscall { name, .. } if name == "not_a_syscall"));
        assert!(e.to_string().contains("\"not_a_syscall\""), "{e}");

        let e = p(r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALOW"}]}"#)
        .unwrap_err();
        assert_eq!(e, ProfileError::UnknownAction("SCMP_ACT_ALOW".into()));
    }

    #[test]
    fn known_but_unmodelled_arch_is_accepted() {
        let prof =
            p(r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_S390X"]}"#)
                .unwrap();
        assert!(prof.abis(Abi::X86_64).is_empty());
    }

    #[test]
    fn malformed_json_reports_position() {
        let e =
            p("{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": [,]\n}").unwrap_err();
        match &e {
            ProfileError::Json { line, column, .. } => {
                assert_eq!((*line, *column), (3, 16));
            }
            other => panic!("unexpected {other:?}"),
        }
        let msg = e.to_string();
        assert!(
            msg.starts_with("malformed profile JSON at line 3, column 16: "),
            "{msg}"
        );
        assert!(!msg.ends_with("column 16"), "{msg}");

        let e = p("{}").unwrap_err();
        assert!(
            e.to_string().contains("missing field `defaultAction`"),
            "{e}"
        );
        let e = p("").unwrap_err();
        assert!(matches!(e, ProfileError::Json { line: 1, .. }), "{e:?}");
    }

    #[test]
    fn errno_range_and_conflicts() {
        let e = p(r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}"#).unwrap_err();
        assert!(matches!(
            e,
            ProfileError::ErrnoOutOfRange { errno: 70000, .. }
        ));
        let e = p(r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["read"], "action": "SCMP_ACT_ERRNO"}]}"#)
        .unwrap_err();
        assert!(matches!(e, ProfileError::ConflictingRules { .. }), "{e:?}");
        // Same name twice with the same action: fine.
        p(r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]}"#)
        .unwrap();
        let e = p(r#"{"defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64"],
            "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}"#)
        .unwrap_err();
        assert_eq!(e, ProfileError::ArchAndArchMap);
    }
}
