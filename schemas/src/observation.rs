//! What a capture backend hands to the compiler: per (ABI, syscall number),
//! how often it was called and in which phase of the workload's life.

use crate::Abi;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// When, in a workload's life, a syscall was made.
///
/// A container's life has a boundary that matters for the profile: the
/// moment the runtime installs the seccomp filter. Calls before it are the
/// runtime's privileged set-up (`mount`, `pivot_root`, `sethostname`...);
/// the filter never sees them, so they must not be in the profile. Calls
/// after it, including the runtime's last steps before it `execve`s the
/// entrypoint, are judged by the filter and must be allowed.
///
/// The capture backends observe two facts per call: whether the calling task
/// had a seccomp filter (`task->seccomp.mode == SECCOMP_MODE_FILTER`) and
/// whether the workload had already `execve`d its first program. The four
/// combinations are the four phases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Before the first exec, without a filter: the runtime's privileged
    /// set-up (or, for `sandmine mine -- CMD`, the launcher's). Never
    /// allowed by a profile.
    Setup = 0,
    /// Before the first exec, under the filter: the runtime's last steps
    /// (capset, setgroups, the `execve` of the entrypoint...).
    Runtime = 1,
    /// After the first exec, without a filter: calls of an unconfined
    /// workload, or a later `docker exec`'s set-up before its filter.
    Unfiltered = 2,
    /// After the first exec, under the filter: the image's own calls.
    Image = 3,
}

impl Phase {
    pub const ALL: [Phase; 4] = [
        Phase::Setup,
        Phase::Runtime,
        Phase::Unfiltered,
        Phase::Image,
    ];

    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }

    pub fn from_index(i: usize) -> Option<Phase> {
        Phase::ALL.get(i).copied()
    }
}

/// A set of [`Phase`]s, as a bitmask of `Phase::bit`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct PhaseSet(pub u8);

impl PhaseSet {
    pub fn insert(&mut self, p: Phase) {
        self.0 |= p.bit();
    }
    pub fn contains(self, p: Phase) -> bool {
        self.0 & p.bit() != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn union(self, other: PhaseSet) -> PhaseSet {
        PhaseSet(self.0 | other.0)
    }
}

/// One syscall, as the kernel numbers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SyscallKey {
    pub abi: Abi,
    pub nr: u32,
}

/// What was seen of one syscall.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyscallUse {
    /// Calls counted, in every phase.
    pub calls: u64,
    /// Phases in which the syscall was seen.
    pub phases: PhaseSet,
}

/// Everything a backend saw of one workload (a mined process tree or a
/// container). Ordered maps: iteration order, and so every output, is
/// deterministic.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observation {
    /// In JSON: a list of `{abi, nr, calls, phases}`, sorted by (abi, nr).
    #[serde(with = "syscall_list")]
    pub syscalls: BTreeMap<SyscallKey, SyscallUse>,
    /// Calls whose number was outside the capture's table (counted, not
    /// named). Non-zero means the kernel knows syscalls this build does not.
    pub out_of_range: u64,
    /// Recorded argument values (issue 11), per syscall: only the syscalls
    /// the collector records arguments of (`collector/src/ebpf/args.rs`),
    /// and only with the eBPF backend. In JSON: a sorted list of
    /// `{abi, nr, fields, values, overflow}`, left out when empty.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        with = "crate::args::arg_list"
    )]
    pub args: crate::args::ArgSets,
}

/// The JSON form of [`Observation::syscalls`]: a map keyed by a struct has
/// no JSON form, so it travels as a sorted list of entries.
mod syscall_list {
    use super::{PhaseSet, SyscallKey, SyscallUse};
    use crate::Abi;
    use serde::{de::Error as _, Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Entry {
        abi: Abi,
        nr: u32,
        calls: u64,
        phases: PhaseSet,
    }

    pub fn serialize<S: Serializer>(
        m: &BTreeMap<SyscallKey, SyscallUse>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let v: Vec<Entry> = m
            .iter()
            .map(|(k, u)| Entry {
                abi: k.abi,
                nr: k.nr,
                calls: u.calls,
                phases: u.phases,
            })
            .collect();
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<SyscallKey, SyscallUse>, D::Error> {
        let v = Vec::<Entry>::deserialize(d)?;
        let mut m = BTreeMap::new();
        for e in v {
            let key = SyscallKey {
                abi: e.abi,
                nr: e.nr,
            };
            let u = SyscallUse {
                calls: e.calls,
                phases: e.phases,
            };
            if m.insert(key, u).is_some() {
                return Err(D::Error::custom(format!(
                    "syscall {} {} is listed twice",
                    e.abi, e.nr
                )));
            }
        }
        Ok(m)
    }
}

impl Observation {
    pub fn record(&mut self, abi: Abi, nr: u32, phase: Phase, calls: u64) {
        let u = self.syscalls.entry(SyscallKey { abi, nr }).or_default();
        u.calls += calls;
        u.phases.insert(phase);
    }

    /// Merge another observation of the same workload into this one.
    pub fn merge(&mut self, other: &Observation) {
        for (k, v) in &other.syscalls {
            let u = self.syscalls.entry(*k).or_default();
            u.calls += v.calls;
            u.phases = u.phases.union(v.phases);
        }
        self.out_of_range += other.out_of_range;
        for (k, a) in &other.args {
            self.args.entry(*k).or_default().merge(a);
        }
    }

    /// True when some call went through a seccomp filter. A workload that
    /// ran with no filter at all (an unconfined container) has no
    /// filter boundary, and its post-exec calls stand for the image.
    pub fn saw_filter(&self) -> bool {
        self.syscalls
            .values()
            .any(|u| u.phases.contains(Phase::Runtime) || u.phases.contains(Phase::Image))
    }

    /// Number of distinct syscalls in a given phase.
    pub fn count_in(&self, phase: Phase) -> usize {
        self.syscalls
            .values()
            .filter(|u| u.phases.contains(phase))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_as_a_list() {
        let mut o = Observation::default();
        o.record(Abi::X86_64, 0, Phase::Image, 3);
        o.record(Abi::I386, 20, Phase::Runtime, 1);
        o.out_of_range = 2;
        let j = serde_json::to_string(&o).unwrap();
        assert_eq!(
            j,
            r#"{"syscalls":[{"abi":"x86_64","nr":0,"calls":3,"phases":8},{"abi":"i386","nr":20,"calls":1,"phases":2}],"out_of_range":2}"#
        );
        assert_eq!(serde_json::from_str::<Observation>(&j).unwrap(), o);
        let twice = r#"{"syscalls":[{"abi":"x86_64","nr":0,"calls":3,"phases":8},{"abi":"x86_64","nr":0,"calls":1,"phases":8}],"out_of_range":0}"#;
        let e = serde_json::from_str::<Observation>(twice).unwrap_err();
        assert!(e.to_string().contains("listed twice"), "{e}");
    }
}

/// How a seccomp filter answered a call in the kernel's place (the call
/// never ran).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyAction {
    /// The call failed with this errno (`SCMP_ACT_ERRNO`, or a trace or
    /// user-notification answer with an error).
    Errno(u16),
    /// The thread got SIGSYS instead (`SCMP_ACT_TRAP`).
    Trap,
    /// The thread or process was killed (`SCMP_ACT_KILL_THREAD`,
    /// `SCMP_ACT_KILL_PROCESS`).
    Kill,
}

impl std::fmt::Display for DenyAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DenyAction::Errno(e) => write!(f, "errno {e}"),
            DenyAction::Trap => f.write_str("trap"),
            DenyAction::Kill => f.write_str("kill"),
        }
    }
}

/// One kind of denial: which call, of which ABI, answered how.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DenialKey {
    pub abi: Abi,
    pub nr: u32,
    pub action: DenyAction,
}

/// Denied calls of one workload or container, exact, per [`DenialKey`].
pub type Denials = BTreeMap<DenialKey, u64>;
