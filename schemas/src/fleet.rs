//! What the fleet store answers about one image: the input of the policy
//! compiler and of the analytics commands. Both stores (ClickHouse and the
//! embedded one) return exactly these types, so everything above them works
//! unchanged on either.

use crate::{Abi, PhaseSet, SyscallKey};
use serde::{Deserialize, Serialize};

/// Fleet-wide totals of one syscall (ABI, number) for one image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyscallTotals {
    pub abi: Abi,
    pub nr: u32,
    /// Distinct hosts on which some container of the image made it.
    pub hosts: u64,
    /// Distinct containers that made it.
    pub containers: u64,
    /// Total calls.
    pub calls: u64,
    /// Wall-clock ms since the epoch.
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
    /// Union of the phases it was seen in.
    pub phases: PhaseSet,
}

impl SyscallTotals {
    pub fn key(&self) -> SyscallKey {
        SyscallKey {
            abi: self.abi,
            nr: self.nr,
        }
    }
}

/// One container of the image and the syscalls it used (incidence).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerIncidence {
    pub host_id: String,
    pub boot_id: String,
    pub container_id: String,
    pub started_at_ms: u64,
    pub last_seen_ms: u64,
    /// `wire::SeccompFilter::as_text` of the filter it ran under.
    pub seccomp: String,
    /// Sorted by (abi, nr).
    pub syscalls: Vec<IncidenceEntry>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidenceEntry {
    pub abi: Abi,
    pub nr: u32,
    pub phases: PhaseSet,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
}

/// Everything the store knows about one image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageObservations {
    pub image: String,
    /// Digests seen under this name, sorted.
    pub digests: Vec<String>,
    /// Exposure: distinct hosts and containers, and the sum over containers
    /// of (last seen - started), in seconds.
    pub hosts: u64,
    pub containers: u64,
    pub container_seconds: u64,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
    /// Sorted by (abi, nr).
    pub syscalls: Vec<SyscallTotals>,
    /// Sorted by (started_at_ms, host_id, boot_id, container_id).
    pub incidence: Vec<ContainerIncidence>,
}
