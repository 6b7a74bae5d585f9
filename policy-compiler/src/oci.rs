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
//! Parsing accepts every field Docker reads (`archMap`, `args` with every
//! `SCMP_CMP_*` operator, `includes`/`excludes` with `caps`, `arches` and
//! `minKernel`, `errnoRet`, `defaultErrnoRet`, `comment`, the legacy single
//! `name`) and checks each value strictly: an unknown operator, an argument
//! index above 5, a malformed `minKernel` or an unknown capability is an
//! error that names the rule. Syscall names no ABI has are kept (runc
//! ignores names libseccomp cannot resolve, and Docker's own default profile
//! names `recv` and `send`); [`OciProfile::unknown_names`] lists them and
//! [`OciProfile::validate`] (the check for profiles sandmine writes) refuses
//! them. What a profile means on a given host is
//! [`crate::effective::EffectiveProfile`], after [`OciProfile::resolve`].
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
    #[error("{context}: unknown comparison operator {op:?} (expected one of SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_GT, SCMP_CMP_MASKED_EQ)")]
    UnknownOperator { context: String, op: String },
    #[error("{context}: argument index {index} is out of range (a syscall has arguments 0 to 5)")]
    ArgIndexOutOfRange { context: String, index: u64 },
    #[error("{context}: \"{field}\": unknown capability {cap:?} (expected a CAP_* name such as CAP_SYS_ADMIN)")]
    UnknownCapability {
        context: String,
        field: &'static str,
        cap: String,
    },
    #[error("{context}: \"{field}\": unknown architecture {arch:?} (Docker's names: {known})", known = DOCKER_ARCHES.join(", "))]
    UnknownConditionArch {
        context: String,
        field: &'static str,
        arch: String,
    },
    #[error("{context}: \"{field}\": invalid minKernel {version:?} (expected \"<kernel>.<major>\", each 0 to 255, not 0.0, e.g. \"4.8\")")]
    InvalidMinKernel {
        context: String,
        field: &'static str,
        version: String,
    },
    #[error(
        "cannot parse the kernel release {0:?} as <kernel>.<major> (as dockerd does for minKernel)"
    )]
    InvalidKernelRelease(String),
    #[error("{context}: both \"name\" and \"names\" are given; use one of them (Docker refuses this too)")]
    NameAndNames { context: String },
    #[error("syscall {name:?}: {first} and {second} have different actions and both have argument conditions; which one libseccomp applies depends on how it merges its rule trees, so sandmine refuses the profile (give the rules the same action, or make one unconditional)")]
    AmbiguousConditionalRules {
        name: String,
        first: String,
        second: String,
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    #[default]
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

/// One rule of `syscalls`: these names get this action, when every
/// argument comparison in `args` holds (none: always), on hosts that meet
/// `includes` and not `excludes` (see [`OciProfile::resolve`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyscallRule {
    pub names: Vec<String>,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<ArgCmp>,
    #[serde(skip_serializing_if = "RuleCondition::is_empty")]
    pub includes: RuleCondition,
    #[serde(skip_serializing_if = "RuleCondition::is_empty")]
    pub excludes: RuleCondition,
}

/// A comparison operator of an argument rule (`SCMP_CMP_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CmpOp {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// `(arg & value) == valueTwo`, with libseccomp's reading:
    /// `(arg & value) == (valueTwo & value)` (it masks the datum too).
    MaskedEq,
}

impl CmpOp {
    pub const ALL: [CmpOp; 7] = [
        CmpOp::Ne,
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Eq,
        CmpOp::Ge,
        CmpOp::Gt,
        CmpOp::MaskedEq,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Ne => "SCMP_CMP_NE",
            CmpOp::Lt => "SCMP_CMP_LT",
            CmpOp::Le => "SCMP_CMP_LE",
            CmpOp::Eq => "SCMP_CMP_EQ",
            CmpOp::Ge => "SCMP_CMP_GE",
            CmpOp::Gt => "SCMP_CMP_GT",
            CmpOp::MaskedEq => "SCMP_CMP_MASKED_EQ",
        }
    }

    pub fn parse(s: &str) -> Option<CmpOp> {
        CmpOp::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

impl Serialize for CmpOp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The highest argument index a comparison may name (a syscall has six).
pub const MAX_ARG_INDEX: u8 = 5;

/// One argument comparison of a rule: `args[index] OP value` (for
/// `MASKED_EQ`: `args[index] & value == valueTwo`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArgCmp {
    pub index: u8,
    pub value: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub value_two: u64,
    pub op: CmpOp,
}

/// True when libseccomp compares `abi`'s syscall arguments as 64-bit
/// numbers: x86_64 and aarch64. On i386 and x32, which libseccomp
/// describes as 32-bit architectures (`ARCH_SIZE_32`: x32's `long` is 32
/// bits), it compares their low 32 bits only. Found by the profile fuzz
/// target's libseccomp oracle (fuzz/README.md): sandmine used to compare
/// x32 arguments on 64 bits, so its filter and evaluator disagreed with
/// the filter runc installs for the same profile.
pub fn wide_args(abi: Abi) -> bool {
    matches!(abi, Abi::X86_64 | Abi::Aarch64)
}

impl ArgCmp {
    /// True when the comparison holds for argument value `arg`, as
    /// libseccomp's filter decides it. `wide` ([`wide_args`]): the ABI's
    /// arguments are compared as unsigned 64-bit numbers (x86_64,
    /// aarch64). Otherwise (i386, x32) libseccomp compares only the low 32
    /// bits of the argument and of `value`/`valueTwo`; the kernel
    /// zero-extends an i386 call's 32-bit arguments into
    /// `seccomp_data.args`, so the high word is 0 there anyway, but an x32
    /// call's high words pass unchecked.
    pub fn matches(&self, arg: u64, wide: bool) -> bool {
        let width = if wide { u64::MAX } else { u64::from(u32::MAX) };
        let (a, v) = (arg & width, self.value & width);
        match self.op {
            CmpOp::Ne => a != v,
            CmpOp::Lt => a < v,
            CmpOp::Le => a <= v,
            CmpOp::Eq => a == v,
            CmpOp::Ge => a >= v,
            CmpOp::Gt => a > v,
            CmpOp::MaskedEq => a & v == self.value_two & v,
        }
    }

    /// True when the comparison holds for every argument value on an ABI of
    /// this width: libseccomp drops it (a `MASKED_EQ` with a zero mask).
    pub fn is_tautology(&self, wide: bool) -> bool {
        let width = if wide { u64::MAX } else { u64::from(u32::MAX) };
        self.op == CmpOp::MaskedEq && self.value & width == 0
    }
}

/// A condition of `includes` or `excludes`, as dockerd reads it. For
/// `includes`, each non-empty field must hold (every cap in the bounding
/// set, the native arch among `arches`, the kernel at least `minKernel`);
/// for `excludes`, any holding field drops the rule (any cap in the bounding
/// set, the native arch among `arches`, the kernel at least `minKernel`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleCondition {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub caps: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub arches: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_kernel: Option<KernelVersion>,
}

impl RuleCondition {
    pub fn is_empty(&self) -> bool {
        self.caps.is_empty() && self.arches.is_empty() && self.min_kernel.is_none()
    }
}

/// A kernel version as dockerd compares them: `<kernel>.<major>` only
/// ("6.18.44-fc" is 6.18).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelVersion {
    pub kernel: u64,
    pub major: u64,
}

impl KernelVersion {
    /// A `minKernel` value: "K.M", each 0 to 255, not "0.0" (dockerd's
    /// rules). `None` when malformed.
    pub fn parse_min(s: &str) -> Option<KernelVersion> {
        let (k, m) = s.split_once('.')?;
        let num = |t: &str| -> Option<u64> {
            (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                .then(|| t.parse::<u8>().ok())
                .flatten()
                .map(u64::from)
        };
        let v = KernelVersion {
            kernel: num(k)?,
            major: num(m)?,
        };
        (v.kernel != 0 || v.major != 0).then_some(v)
    }

    /// The host's version from its `uname -r` release, read as dockerd does
    /// (`%d.%d`: leading digits, a dot, digits; the rest ignored).
    pub fn from_release(release: &str) -> Result<KernelVersion, ProfileError> {
        let bad = || ProfileError::InvalidKernelRelease(release.to_string());
        let (k, rest) = release.split_once('.').ok_or_else(bad)?;
        let digits: &str = &rest[..rest.bytes().take_while(u8::is_ascii_digit).count()];
        Ok(KernelVersion {
            kernel: k.parse().map_err(|_| bad())?,
            major: digits.parse().map_err(|_| bad())?,
        })
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.kernel, self.major)
    }
}

impl Serialize for KernelVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Docker's default bounding set (`docker run` without `--cap-add` or
/// `--cap-drop`; moby's `oci/caps/defaults.go`, 20.10 to 27).
pub const DOCKER_DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Linux capability names by number (`<linux/capability.h>`, up to
/// CAP_CHECKPOINT_RESTORE, 40), as Docker writes them in `caps`.
pub const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The architecture names dockerd compares `arches` with: the values of
/// its GOARCH map (`x86` for 386, `amd64`, `arm64`, ...), plus `x32`,
/// `riscv64` and `loong64`, which Docker's own profiles name.
pub const DOCKER_ARCHES: &[&str] = &[
    "x86",
    "amd64",
    "x32",
    "arm",
    "arm64",
    "mips64",
    "mips64n32",
    "mipsel64",
    "mips3l64n32",
    "mipsle",
    "mipsel",
    "ppc",
    "ppc64",
    "ppc64le",
    "s390",
    "s390x",
    "riscv64",
    "loong64",
];

/// The name dockerd gives the architecture it runs on (its GOARCH mapped),
/// for an ABI sandmine models as native.
pub fn docker_arch(native: Abi) -> &'static str {
    match native {
        Abi::X86_64 => "amd64",
        Abi::I386 => "x86",
        Abi::X32 => "x32",
        Abi::Aarch64 => "arm64",
    }
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
    /// Logged, not allowed, per ABI: the image's binaries can reach them
    /// but they were never observed (`reachable = "log"`); a logged call
    /// runs.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub logged: BTreeMap<Abi, Vec<String>>,
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

    /// Syscall names of the rules that no ABI sandmine knows has, sorted
    /// and without duplicates. runc ignores names libseccomp cannot
    /// resolve, so [`OciProfile::resolve`] ignores these.
    pub fn unknown_names(&self) -> Vec<&str> {
        let set: BTreeSet<&str> = self
            .syscalls
            .iter()
            .flat_map(|r| r.names.iter().map(String::as_str))
            .filter(|n| !schemas::syscalls::is_known(n))
            .collect();
        set.into_iter().collect()
    }

    /// True when some rule has `includes` or `excludes`: what it means
    /// depends on the host ([`OciProfile::resolve`]).
    pub fn is_conditional(&self) -> bool {
        self.syscalls
            .iter()
            .any(|r| !r.includes.is_empty() || !r.excludes.is_empty())
    }

    /// Check what [`parse`] checks, on a profile built in code: errno
    /// ranges, argument indexes, condition values, and no name in two
    /// unconditional rules (no `args`, `includes` or `excludes`) with
    /// different outcomes.
    pub fn check(&self) -> Result<(), ProfileError> {
        if !self.architectures.is_empty() && !self.arch_map.is_empty() {
            return Err(ProfileError::ArchAndArchMap);
        }
        if let Some(e) = self.default_errno() {
            check_errno(e, "defaultErrnoRet")?;
        }
        // name -> (rule context, action, errno) of the first unconditional
        // rule naming it.
        let mut seen: BTreeMap<&str, (String, Action, Option<u32>)> = BTreeMap::new();
        for (i, rule) in self.syscalls.iter().enumerate() {
            let ctx = rule_context(i, &rule.names);
            if let Some(e) = rule.errno() {
                check_errno(e, &ctx)?;
            }
            for a in &rule.args {
                if a.index > MAX_ARG_INDEX {
                    return Err(ProfileError::ArgIndexOutOfRange {
                        context: ctx,
                        index: u64::from(a.index),
                    });
                }
            }
            for (field, cond) in [("includes", &rule.includes), ("excludes", &rule.excludes)] {
                check_condition(cond, field, &ctx)?;
            }
            if !rule.args.is_empty() || !rule.includes.is_empty() || !rule.excludes.is_empty() {
                continue;
            }
            for name in &rule.names {
                match seen.get(name.as_str()) {
                    None => {
                        seen.insert(name, (ctx.clone(), rule.action, rule.errno()));
                    }
                    // The same name twice with the same outcome is harmless;
                    // with different outcomes libseccomp keeps the first
                    // silently: an order-dependent profile, refused.
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

    /// [`OciProfile::check`], and every name known to some ABI: the check
    /// for profiles sandmine writes, where an unknown name is a bug.
    pub fn validate(&self) -> Result<(), ProfileError> {
        self.check()?;
        for (i, rule) in self.syscalls.iter().enumerate() {
            if let Some(name) = rule.names.iter().find(|n| !schemas::syscalls::is_known(n)) {
                return Err(ProfileError::UnknownSyscall {
                    name: name.clone(),
                    context: rule_context(i, &rule.names),
                });
            }
        }
        Ok(())
    }
}

fn check_condition(
    cond: &RuleCondition,
    field: &'static str,
    context: &str,
) -> Result<(), ProfileError> {
    if let Some(cap) = cond
        .caps
        .iter()
        .find(|c| !CAPABILITIES.contains(&c.as_str()))
    {
        return Err(ProfileError::UnknownCapability {
            context: context.into(),
            field,
            cap: cap.clone(),
        });
    }
    if let Some(arch) = cond
        .arches
        .iter()
        .find(|a| !DOCKER_ARCHES.contains(&a.as_str()))
    {
        return Err(ProfileError::UnknownConditionArch {
            context: context.into(),
            field,
            arch: arch.clone(),
        });
    }
    Ok(())
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
pub(crate) fn rule_context(index: usize, names: &[String]) -> String {
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
    args: Option<Vec<RawArg>>,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    includes: Option<RawCondition>,
    #[serde(default)]
    excludes: Option<RawCondition>,
}

/// One `args` entry, as runc's spec reads it (`valueTwo` only for
/// `SCMP_CMP_MASKED_EQ`, 0 when absent).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawArg {
    index: u64,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

/// An `includes`/`excludes` object. Docker's own profiles write empty
/// ones (`{}`), which mean "always".
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawCondition {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
    #[serde(default)]
    min_kernel: Option<String>,
}

fn condition(
    raw: Option<RawCondition>,
    field: &'static str,
    context: &str,
) -> Result<RuleCondition, ProfileError> {
    let Some(raw) = raw else {
        return Ok(RuleCondition::default());
    };
    let min_kernel = match raw.min_kernel.as_deref() {
        // dockerd reads "" as no minimum.
        None | Some("") => None,
        Some(v) => {
            Some(
                KernelVersion::parse_min(v).ok_or_else(|| ProfileError::InvalidMinKernel {
                    context: context.into(),
                    field,
                    version: v.into(),
                })?,
            )
        }
    };
    Ok(RuleCondition {
        caps: raw.caps.unwrap_or_default(),
        arches: raw.arches.unwrap_or_default(),
        min_kernel,
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
        let both = r.name.is_some() && r.names.as_ref().is_some_and(|n| !n.is_empty());
        let mut names = r.names.unwrap_or_default();
        names.extend(r.name);
        let ctx = rule_context(i, &names);
        if both {
            return Err(ProfileError::NameAndNames { context: ctx });
        }
        let action = Action::parse(&r.action)?;
        let mut args = Vec::new();
        for a in r.args.unwrap_or_default() {
            let op = CmpOp::parse(&a.op).ok_or_else(|| ProfileError::UnknownOperator {
                context: ctx.clone(),
                op: a.op.clone(),
            })?;
            let index = u8::try_from(a.index)
                .ok()
                .filter(|i| *i <= MAX_ARG_INDEX)
                .ok_or_else(|| ProfileError::ArgIndexOutOfRange {
                    context: ctx.clone(),
                    index: a.index,
                })?;
            args.push(ArgCmp {
                index,
                value: a.value,
                value_two: a.value_two,
                op,
            });
        }
        let includes = condition(r.includes, "includes", &ctx)?;
        let excludes = condition(r.excludes, "excludes", &ctx)?;
        syscalls.push(SyscallRule {
            names,
            action,
            errno_ret: r.errno_ret,
            // Docker's profiles carry `"comment": ""`; an empty comment says
            // nothing, and dropping it keeps the emitted form canonical.
            comment: r.comment.filter(|c| !c.is_empty()),
            args,
            includes,
            excludes,
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
    profile.check()?;
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
    fn parses_args_of_every_operator() {
        let text = r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [
                {"index": 0, "value": 0, "op": "SCMP_CMP_NE"},
                {"index": 1, "value": 1, "op": "SCMP_CMP_LT"},
                {"index": 2, "value": 2, "valueTwo": 0, "op": "SCMP_CMP_LE"},
                {"index": 3, "value": 18446744073709551615, "op": "SCMP_CMP_EQ"},
                {"index": 4, "value": 4, "op": "SCMP_CMP_GE"},
                {"index": 5, "value": 5, "op": "SCMP_CMP_GT"},
                {"index": 0, "value": 2114060288, "valueTwo": 7, "op": "SCMP_CMP_MASKED_EQ"}]}]}"#;
        let prof = p(text).unwrap();
        let ops: Vec<CmpOp> = prof.syscalls[0].args.iter().map(|a| a.op).collect();
        assert_eq!(ops, CmpOp::ALL.to_vec());
        assert_eq!(prof.syscalls[0].args[3].value, u64::MAX);
        assert_eq!(prof.syscalls[0].args[6].value_two, 7);
        // Emitted as Docker writes it, and parsed back the same.
        let out = prof.to_json().unwrap();
        assert!(out.contains("\"op\": \"SCMP_CMP_MASKED_EQ\""), "{out}");
        assert!(out.contains("\"valueTwo\": 7"), "{out}");
        assert_eq!(p(&out).unwrap(), prof);
    }

    #[test]
    fn rejects_bad_args_by_name() {
        let rule = |arg: &str| {
            format!(
                r#"{{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {{"names": ["read"], "action": "SCMP_ACT_ALLOW"}},
                {{"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{arg}]}}]}}"#
            )
        };
        let e = p(&rule(r#"{"index": 0, "value": 0, "op": "SCMP_CMP_EQUAL"}"#)).unwrap_err();
        assert_eq!(
            e,
            ProfileError::UnknownOperator {
                context: "syscalls rule 2 (personality)".into(),
                op: "SCMP_CMP_EQUAL".into()
            }
        );
        assert!(e.to_string().contains("SCMP_CMP_MASKED_EQ"), "{e}");
        let e = p(&rule(r#"{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}"#)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "syscalls rule 2 (personality): argument index 6 is out of range (a syscall has arguments 0 to 5)"
        );
        let e = p(&rule(r#"{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}"#)).unwrap_err();
        assert!(matches!(e, ProfileError::Json { .. }), "{e:?}");
        let e = p(&rule(
            r#"{"index": 0, "value": 0, "op": "SCMP_CMP_EQ", "valu2": 1}"#,
        ))
        .unwrap_err();
        assert!(e.to_string().contains("unknown field `valu2`"), "{e}");
        let e = p(&rule(r#"{"index": 0, "op": "SCMP_CMP_EQ"}"#)).unwrap_err();
        assert!(e.to_string().contains("missing field `value`"), "{e}");
    }

    #[test]
    fn parses_conditions() {
        let text = r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["bpf"], "action": "SCMP_ACT_ALLOW",
             "includes": {"caps": ["CAP_SYS_ADMIN", "CAP_BPF"], "arches": ["amd64"], "minKernel": "4.8"},
             "excludes": {"caps": ["CAP_SYS_BOOT"], "arches": ["s390x"], "minKernel": "255.0"}},
            {"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": ""}}]}"#;
        let prof = p(text).unwrap();
        let r = &prof.syscalls[0];
        assert_eq!(r.includes.caps, vec!["CAP_SYS_ADMIN", "CAP_BPF"]);
        assert_eq!(r.includes.arches, vec!["amd64"]);
        assert_eq!(
            r.includes.min_kernel,
            Some(KernelVersion {
                kernel: 4,
                major: 8
            })
        );
        assert_eq!(r.excludes.min_kernel.unwrap().to_string(), "255.0");
        assert!(prof.syscalls[1].includes.is_empty());
        assert!(prof.is_conditional());
        let out = prof.to_json().unwrap();
        assert!(out.contains("\"minKernel\": \"4.8\""), "{out}");
        assert_eq!(p(&out).unwrap(), prof);
    }

    #[test]
    fn rejects_bad_conditions_by_name() {
        let rule = |field: &str, cond: &str| {
            format!(
                r#"{{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {{"names": ["read"], "action": "SCMP_ACT_ALLOW"}},
                {{"names": ["bpf"], "action": "SCMP_ACT_ALLOW", "{field}": {cond}}}]}}"#
            )
        };
        let ctx = || "syscalls rule 2 (bpf)".to_string();
        assert_eq!(
            p(&rule("includes", r#"{"caps": ["CAP_SYS_ADMN"]}"#)).unwrap_err(),
            ProfileError::UnknownCapability {
                context: ctx(),
                field: "includes",
                cap: "CAP_SYS_ADMN".into()
            }
        );
        assert_eq!(
            p(&rule("excludes", r#"{"arches": ["x86_64"]}"#)).unwrap_err(),
            ProfileError::UnknownConditionArch {
                context: ctx(),
                field: "excludes",
                arch: "x86_64".into()
            }
        );
        for bad in ["4", "4.8.1", "0.0", "256.1", "4.x", "-4.8", " 4.8"] {
            let e = p(&rule("includes", &format!(r#"{{"minKernel": "{bad}"}}"#))).unwrap_err();
            assert_eq!(
                e,
                ProfileError::InvalidMinKernel {
                    context: ctx(),
                    field: "includes",
                    version: bad.into()
                },
                "{bad}"
            );
        }
        let e = p(&rule("includes", r#"{"capz": []}"#)).unwrap_err();
        assert!(e.to_string().contains("unknown field `capz`"), "{e}");
        let e = p(r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"name": "read", "names": ["write"], "action": "SCMP_ACT_ALLOW"}]}"#)
        .unwrap_err();
        assert!(matches!(e, ProfileError::NameAndNames { .. }), "{e:?}");
    }

    #[test]
    fn kernel_releases_read_like_dockerd() {
        let v = |s: &str| KernelVersion::from_release(s).map(|v| v.to_string());
        assert_eq!(v("6.18.44-fc-v1045").unwrap(), "6.18");
        assert_eq!(v("3.12-1-amd64").unwrap(), "3.12");
        assert_eq!(v("4.8").unwrap(), "4.8");
        assert_eq!(v("5.10rc1").unwrap(), "5.10");
        for bad in ["6", "x.1", "6.", "6.x"] {
            assert_eq!(
                KernelVersion::from_release(bad),
                Err(ProfileError::InvalidKernelRelease(bad.into())),
                "{bad}"
            );
        }
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

        // Unknown names parse (runc ignores them) but do not validate.
        let prof = p(r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read", "not_a_syscall", "recv"], "action": "SCMP_ACT_ALLOW"}]}"#)
        .unwrap();
        assert_eq!(prof.unknown_names(), vec!["not_a_syscall", "recv"]);
        let e = prof.validate().unwrap_err();
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
