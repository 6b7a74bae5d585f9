//! Static reachability as evidence: the syscalls that an image's binaries
//! can reach, from the `reach` crate's analysis, joined with what was
//! observed.
//!
//! Mining misses the paths no workload ran (admin tools, reloads, error
//! paths), and those are the paths that break containers. A syscall the
//! image's binaries can reach but that was never observed goes to the tier
//! the policy chooses ([`Tier`], `reachable = "allow" | "log" | "deny"`);
//! one that is neither observed nor reachable gets the default action.
//!
//! This module only carries the evidence; [`crate::decide`] applies it and
//! [`crate::render`] writes the log tier in every format. It does no
//! analysis itself (the compiler stays pure): the binary runs the `reach`
//! crate and hands the result in.

use schemas::SyscallKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a profile does with a syscall the image's binaries can reach but
/// that was never observed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Allowed, like an observed syscall.
    Allow,
    /// Logged (`SCMP_ACT_LOG`): the call runs and the kernel writes an
    /// audit record, so nothing breaks and the evidence comes back. The
    /// default: "never break a container; deny what no binary can reach".
    #[default]
    Log,
    /// Denied like any syscall that was not observed: reachability is only
    /// reported.
    Deny,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Allow => "allow",
            Tier::Log => "log",
            Tier::Deny => "deny",
        }
    }

    pub(crate) fn is_log(&self) -> bool {
        *self == Tier::Log
    }
}

/// One file that was analysed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AnalysedFile {
    /// Its path inside the image.
    pub path: String,
    /// Seen running (`false`: declared by the user, such as an admin tool
    /// run with `docker exec`).
    pub ran: bool,
    /// Every syscall site has a constant number: the file's reachable set
    /// is complete (for the paths the analysis follows).
    pub known: bool,
    /// Syscall sites whose number is not a constant.
    pub nonconst_sites: u32,
    /// Syscalls it can reach.
    pub syscalls: usize,
}

/// The reachable syscalls of an image's binaries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reachability {
    /// Each reachable syscall with one chain that reaches it, as text
    /// (`/usr/sbin/nginx: kill@GLIBC_2.2.5 -> libc.so.6 ...`).
    pub syscalls: BTreeMap<SyscallKey, String>,
    /// The files analysed, sorted by path.
    pub files: Vec<AnalysedFile>,
    /// Files seen running or declared that could not be analysed, each
    /// with why.
    pub gaps: Vec<String>,
    /// Argument values at the sites of the syscalls whose arguments the
    /// collector records (issue 11): per reachable syscall, each site's
    /// first three arguments, their low 32 bits, `None` where the
    /// analysis found no constant. A constant value is evidence too: it
    /// widens an argument rule ([`crate::args`]). Empty when the analysis
    /// gave none.
    pub arg_sites: BTreeMap<SyscallKey, std::collections::BTreeSet<[Option<u32>; 3]>>,
}

impl Reachability {
    /// Every file was analysed and each one's set is known.
    pub fn known(&self) -> bool {
        self.gaps.is_empty() && self.files.iter().all(|f| f.known)
    }
}

/// What a decision records of the reachability it used (the report's
/// part; the per-syscall chains are in the decisions).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReachSummary {
    pub tier: Tier,
    pub known: bool,
    /// Reachable syscalls, in every ABI.
    pub reachable: usize,
    /// Reachable and observed.
    pub reachable_observed: usize,
    /// Reachable, not observed, and given the tier.
    pub tiered: usize,
    pub files: Vec<AnalysedFile>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<String>,
    /// Observed (and allowed by observation) but not reachable from the
    /// files analysed: the soundness check. The runtime's calls, the
    /// kernel's `restart_syscall`, and the calls of binaries that were not
    /// analysed land here.
    pub observed_not_reachable: Vec<String>,
    /// Reachable in an ABI the image was never observed using: that ABI is
    /// not in the profile at all, so the tier cannot apply.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other_abi: Vec<String>,
    /// Reachable, never observed, and not [`tierable`]: denied until
    /// observed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held_back: Vec<String>,
}

/// Whether reachability alone may let `name` run (the tier applies): only
/// a syscall that Docker's default profile lets through
/// ([`crate::risk::docker_default_x86_64`]) and that is not in the
/// high-risk catalogue ([`crate::risk::CATALOGUE`]). Static analysis of a
/// binary that can do everything (busybox, a shell with every builtin)
/// reaches `mount`, `reboot` and `init_module`; without observation, a
/// profile never lets through more than the engine's own default would,
/// nor a syscall behind a known kernel exploit. Those need to be observed.
pub fn tierable(name: &str) -> bool {
    crate::risk::docker_default_x86_64().contains(name) && crate::risk::get(name).is_none()
}
