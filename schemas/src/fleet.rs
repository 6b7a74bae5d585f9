//! What the fleet store answers about one image: the input of the policy
//! compiler and of the analytics commands. Both stores (ClickHouse and the
//! embedded one) return exactly these types, so everything above them works
//! unchanged on either.

use crate::{Abi, Observation, PhaseSet, SyscallKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    /// Some of its calls were lost (`wire::ContainerDelta::incomplete`, in
    /// any of its messages): `syscalls` is a subset of what it did. The
    /// compiler lets such a container widen a profile but never narrow
    /// one, and never counts it toward enforcement.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub incomplete: bool,
    /// Its cgroup was not provably its runtime's
    /// (`wire::ContainerDelta::unverified`, in any of its messages): its
    /// calls may be forged. The compiler never counts it, and never lets
    /// it widen or narrow a profile.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unverified: bool,
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
    /// Calls whose number was outside the capture's table (a kernel newer
    /// than the build), which no profile can name.
    #[serde(default)]
    pub out_of_range: u64,
    /// Recorded argument values of the image's syscalls (issue 11):
    /// the evidence for argument rules, under the same thresholds as the
    /// syscalls. Empty when no collector recorded any.
    #[serde(default, skip_serializing_if = "crate::ArgEvidence::is_empty")]
    pub args: crate::ArgEvidence,
    /// The files the image's verified containers ran as code (wire v8):
    /// what the compiler's static reachability analyses in the image.
    /// Empty when no collector sent any.
    #[serde(default, skip_serializing_if = "crate::RanFiles::is_empty")]
    pub executed: crate::RanFiles,
}

/// The host and container names of a single run seen as a fleet of one.
pub const SINGLE_RUN_HOST: &str = "localhost";

impl ImageObservations {
    /// One run of one workload (`sandmine mine`, `mine-image`) as a fleet
    /// of one: one host, one container, the run's observation as its
    /// incidence. `first_seen` gives when each syscall was first seen (ms
    /// since the epoch; `started_at_ms` for those it lacks), so that the
    /// quiet time and convergence figures mean what they mean in a fleet.
    /// `filter` names the seccomp filter the run was mined under, as
    /// [`ContainerIncidence::seccomp`] does: `unconfined` for an allow-all
    /// filter, which hides nothing.
    pub fn single_run(
        image: &str,
        filter: &str,
        obs: &Observation,
        first_seen: &BTreeMap<SyscallKey, u64>,
        started_at_ms: u64,
        ended_at_ms: u64,
    ) -> ImageObservations {
        let ended_at_ms = ended_at_ms.max(started_at_ms);
        let first = |k: &SyscallKey| first_seen.get(k).copied().unwrap_or(started_at_ms);
        let syscalls: Vec<SyscallTotals> = obs
            .syscalls
            .iter()
            .map(|(k, u)| SyscallTotals {
                abi: k.abi,
                nr: k.nr,
                hosts: 1,
                containers: 1,
                calls: u.calls,
                first_seen_ms: first(k),
                last_seen_ms: ended_at_ms,
                phases: u.phases,
            })
            .collect();
        let container = ContainerIncidence {
            host_id: SINGLE_RUN_HOST.into(),
            boot_id: String::new(),
            container_id: image.into(),
            started_at_ms,
            last_seen_ms: ended_at_ms,
            seccomp: filter.into(),
            incomplete: false,
            unverified: false,
            syscalls: obs
                .syscalls
                .keys()
                .map(|k| IncidenceEntry {
                    abi: k.abi,
                    nr: k.nr,
                    phases: obs.syscalls[k].phases,
                    first_seen_ms: first(k),
                    last_seen_ms: ended_at_ms,
                })
                .collect(),
        };
        ImageObservations {
            image: image.into(),
            digests: Vec::new(),
            hosts: 1,
            containers: 1,
            container_seconds: (ended_at_ms - started_at_ms) / 1000,
            first_seen_ms: started_at_ms,
            last_seen_ms: ended_at_ms,
            syscalls,
            incidence: vec![container],
            out_of_range: obs.out_of_range,
            args: crate::ArgEvidence::single_run(&obs.args),
            executed: crate::RanFiles::default(),
        }
    }

    /// The store's answer for `image` from its containers' incidence alone,
    /// as if each container made each of its syscalls once (`calls` =
    /// containers): per-syscall totals and the exposure are derived, the
    /// containers put in the store's order. For generated fleets (tests,
    /// benchmarks); a real store also counts calls.
    pub fn from_incidence(
        image: &str,
        mut incidence: Vec<ContainerIncidence>,
    ) -> ImageObservations {
        incidence.sort_by(|a, b| {
            (a.started_at_ms, &a.host_id, &a.boot_id, &a.container_id).cmp(&(
                b.started_at_ms,
                &b.host_id,
                &b.boot_id,
                &b.container_id,
            ))
        });
        let mut totals: BTreeMap<SyscallKey, (SyscallTotals, std::collections::BTreeSet<&str>)> =
            BTreeMap::new();
        for c in &incidence {
            for e in &c.syscalls {
                let (t, hosts) = totals
                    .entry(SyscallKey {
                        abi: e.abi,
                        nr: e.nr,
                    })
                    .or_insert_with(|| {
                        (
                            SyscallTotals {
                                abi: e.abi,
                                nr: e.nr,
                                hosts: 0,
                                containers: 0,
                                calls: 0,
                                first_seen_ms: u64::MAX,
                                last_seen_ms: 0,
                                phases: PhaseSet::default(),
                            },
                            Default::default(),
                        )
                    });
                t.containers += 1;
                t.calls += 1;
                t.first_seen_ms = t.first_seen_ms.min(e.first_seen_ms);
                t.last_seen_ms = t.last_seen_ms.max(e.last_seen_ms);
                t.phases = t.phases.union(e.phases);
                hosts.insert(c.host_id.as_str());
            }
        }
        let syscalls = totals
            .into_values()
            .map(|(mut t, hosts)| {
                t.hosts = hosts.len() as u64;
                t
            })
            .collect();
        let hosts: std::collections::BTreeSet<&str> =
            incidence.iter().map(|c| c.host_id.as_str()).collect();
        ImageObservations {
            image: image.into(),
            digests: Vec::new(),
            hosts: hosts.len() as u64,
            containers: incidence.len() as u64,
            container_seconds: incidence
                .iter()
                .map(|c| c.last_seen_ms.saturating_sub(c.started_at_ms) / 1000)
                .sum(),
            first_seen_ms: incidence.iter().map(|c| c.started_at_ms).min().unwrap_or(0),
            last_seen_ms: incidence.iter().map(|c| c.last_seen_ms).max().unwrap_or(0),
            syscalls,
            incidence,
            out_of_range: 0,
            args: crate::ArgEvidence::default(),
            executed: crate::RanFiles::default(),
        }
    }
}
