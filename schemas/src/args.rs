//! Argument values recorded in the kernel (issue 11): for a few syscalls,
//! the distinct values of one or two chosen arguments, each masked and cut
//! to its low 32 bits. What is recorded, and why, is the collector's list
//! (`collector/src/ebpf/args.rs`); these are the shapes every crate shares.
//!
//! A value set is self-describing: it carries the arguments it holds
//! ([`ArgField`]: index and mask), so a rule built from it compares with
//! the same mask whatever collector version recorded it, and sets recorded
//! with different fields for one syscall are never mixed (the compiler
//! then emits no argument rule for it).

use crate::{Abi, SyscallKey};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Most arguments one value holds.
pub const MAX_FIELDS: usize = 2;
/// Most distinct values one set holds (the collector's largest bound is
/// 32 per ABI; a set over this is malformed).
pub const MAX_VALUES: usize = 64;

/// One recorded argument: its index in the syscall's arguments (0-5) and
/// the mask applied to its low 32 bits before recording. A rule built
/// from a value compares `(arg & mask) == value` (`SCMP_CMP_MASKED_EQ`,
/// with `value` = the mask and `valueTwo` = the value in Docker's JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgField {
    pub index: u8,
    pub mask: u32,
}

/// The distinct recorded values of one syscall's arguments in one
/// workload (or one container's delta).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgSet {
    /// The arguments each value holds, in order (1 to [`MAX_FIELDS`]).
    pub fields: Vec<ArgField>,
    /// Each value: one element per field, already masked.
    pub values: BTreeSet<Vec<u32>>,
    /// Values that were not recorded (over the kernel's bound, or not
    /// representable). Non-zero means `values` is incomplete: no argument
    /// rule may be built from it.
    #[serde(default)]
    pub overflow: u64,
}

impl ArgSet {
    /// Whether the set could come from a real collector: 1 to
    /// [`MAX_FIELDS`] fields of distinct indices 0-5 and non-zero masks,
    /// at most [`MAX_VALUES`] values, each with one element per field and
    /// no bit outside its field's mask. The reason otherwise.
    pub fn check(&self) -> Result<(), String> {
        if self.fields.is_empty() || self.fields.len() > MAX_FIELDS {
            return Err(format!(
                "{} argument fields (1 to {MAX_FIELDS})",
                self.fields.len()
            ));
        }
        for (i, f) in self.fields.iter().enumerate() {
            if f.index > 5 {
                return Err(format!("argument index {} (0 to 5)", f.index));
            }
            if f.mask == 0 {
                return Err(format!("argument {} has a zero mask", f.index));
            }
            if self.fields[..i].iter().any(|g| g.index == f.index) {
                return Err(format!("argument {} is listed twice", f.index));
            }
        }
        if self.values.len() > MAX_VALUES {
            return Err(format!(
                "{} argument values (at most {MAX_VALUES})",
                self.values.len()
            ));
        }
        for v in &self.values {
            if v.len() != self.fields.len() {
                return Err(format!(
                    "an argument value of {} elements for {} fields",
                    v.len(),
                    self.fields.len()
                ));
            }
            for (x, f) in v.iter().zip(&self.fields) {
                if x & !f.mask != 0 {
                    return Err(format!(
                        "argument {} value {x:#x} has bits outside its mask {:#x}",
                        f.index, f.mask
                    ));
                }
            }
        }
        Ok(())
    }

    /// Adds `other`'s values and overflow. Sets of different fields cannot
    /// be merged: the result is then marked overflowed (so that no rule is
    /// built from it) and keeps its own fields.
    pub fn merge(&mut self, other: &ArgSet) {
        if self.fields.is_empty() && self.values.is_empty() && self.overflow == 0 {
            self.fields = other.fields.clone();
        }
        if self.fields != other.fields {
            self.overflow = self.overflow.saturating_add(1);
            return;
        }
        self.values.extend(other.values.iter().cloned());
        self.overflow = self.overflow.saturating_add(other.overflow);
    }

    /// True when some value was not recorded.
    pub fn overflowed(&self) -> bool {
        self.overflow != 0
    }
}

/// One workload's recorded arguments, per syscall.
pub type ArgSets = BTreeMap<SyscallKey, ArgSet>;

/// Fleet-wide evidence for one argument value of one syscall of an image.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgTotals {
    pub abi: Abi,
    pub nr: u32,
    pub fields: Vec<ArgField>,
    pub value: Vec<u32>,
    /// Distinct hosts, and containers, that recorded the value. Only
    /// verified containers count (`ContainerIncidence::unverified` never
    /// widens a rule).
    pub hosts: u64,
    pub containers: u64,
}

impl ArgTotals {
    pub fn key(&self) -> SyscallKey {
        SyscallKey {
            abi: self.abi,
            nr: self.nr,
        }
    }
}

/// A syscall of an image for which some verified container could not
/// record every value: no argument rule is built for it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgOverflow {
    pub abi: Abi,
    pub nr: u32,
    pub hosts: u64,
    pub containers: u64,
}

/// How many verified containers of an image recorded a set (values or an
/// overflow) for one syscall. A container that made the call but recorded
/// no set (an older collector, a `max_wire_version` below the arguments'
/// version, the ptrace backend) leaves its values unknown: the compiler
/// narrows a syscall only when every verified container that made it is
/// counted here.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgRecorded {
    pub abi: Abi,
    pub nr: u32,
    pub containers: u64,
}

/// What the store knows of an image's argument values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgEvidence {
    /// Sorted by (abi, nr, fields, value).
    #[serde(default)]
    pub values: Vec<ArgTotals>,
    /// Sorted by (abi, nr).
    #[serde(default)]
    pub overflow: Vec<ArgOverflow>,
    /// Sorted by (abi, nr).
    #[serde(default)]
    pub recorded: Vec<ArgRecorded>,
}

impl ArgEvidence {
    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && self.overflow.is_empty() && self.recorded.is_empty()
    }

    /// One workload's sets as the evidence of a fleet of one (one host,
    /// one container), as `ImageObservations::single_run` does for calls.
    pub fn single_run(sets: &ArgSets) -> ArgEvidence {
        let mut e = ArgEvidence::default();
        for (k, s) in sets {
            for v in &s.values {
                e.values.push(ArgTotals {
                    abi: k.abi,
                    nr: k.nr,
                    fields: s.fields.clone(),
                    value: v.clone(),
                    hosts: 1,
                    containers: 1,
                });
            }
            e.recorded.push(ArgRecorded {
                abi: k.abi,
                nr: k.nr,
                containers: 1,
            });
            if s.overflowed() {
                e.overflow.push(ArgOverflow {
                    abi: k.abi,
                    nr: k.nr,
                    hosts: 1,
                    containers: 1,
                });
            }
        }
        e.values.sort();
        e.overflow.sort();
        e.recorded.sort();
        e
    }
}

/// The JSON form of `Observation::args`: a sorted list of
/// `{abi, nr, fields, values, overflow}`.
pub(crate) mod arg_list {
    use super::{ArgField, ArgSet, ArgSets};
    use crate::{Abi, SyscallKey};
    use serde::{de::Error as _, Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeSet;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Entry {
        abi: Abi,
        nr: u32,
        fields: Vec<ArgField>,
        values: BTreeSet<Vec<u32>>,
        #[serde(default)]
        overflow: u64,
    }

    pub fn serialize<S: Serializer>(m: &ArgSets, s: S) -> Result<S::Ok, S::Error> {
        let v: Vec<Entry> = m
            .iter()
            .map(|(k, a)| Entry {
                abi: k.abi,
                nr: k.nr,
                fields: a.fields.clone(),
                values: a.values.clone(),
                overflow: a.overflow,
            })
            .collect();
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ArgSets, D::Error> {
        let mut m = ArgSets::new();
        for e in Vec::<Entry>::deserialize(d)? {
            let set = ArgSet {
                fields: e.fields,
                values: e.values,
                overflow: e.overflow,
            };
            set.check()
                .map_err(|r| D::Error::custom(format!("syscall {} {}: {r}", e.abi, e.nr)))?;
            let key = SyscallKey {
                abi: e.abi,
                nr: e.nr,
            };
            if m.insert(key, set).is_some() {
                return Err(D::Error::custom(format!(
                    "arguments of syscall {} {} are listed twice",
                    e.abi, e.nr
                )));
            }
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(fields: &[(u8, u32)], values: &[&[u32]]) -> ArgSet {
        ArgSet {
            fields: fields
                .iter()
                .map(|&(index, mask)| ArgField { index, mask })
                .collect(),
            values: values.iter().map(|v| v.to_vec()).collect(),
            overflow: 0,
        }
    }

    #[test]
    fn check_refuses_what_no_collector_records() {
        assert_eq!(
            set(&[(0, !0), (1, 0xf)], &[&[2, 1], &[10, 2]]).check(),
            Ok(())
        );
        assert_eq!(
            set(&[(1, 0xf)], &[&[0x10]]).check().unwrap_err(),
            "argument 1 value 0x10 has bits outside its mask 0xf"
        );
        assert_eq!(
            set(&[(0, !0)], &[&[1, 2]]).check().unwrap_err(),
            "an argument value of 2 elements for 1 fields"
        );
        assert_eq!(
            set(&[(6, !0)], &[]).check().unwrap_err(),
            "argument index 6 (0 to 5)"
        );
        assert_eq!(
            set(&[(0, !0), (0, 1)], &[]).check().unwrap_err(),
            "argument 0 is listed twice"
        );
        assert_eq!(
            set(&[], &[]).check().unwrap_err(),
            "0 argument fields (1 to 2)"
        );
        let many: Vec<Vec<u32>> = (0..65).map(|i| vec![i]).collect();
        let mut s = set(&[(0, !0)], &[]);
        s.values = many.into_iter().collect();
        assert_eq!(s.check().unwrap_err(), "65 argument values (at most 64)");
    }

    #[test]
    fn merge_unions_and_marks_mixed_fields() {
        let mut a = ArgSet::default();
        a.merge(&set(&[(0, !0)], &[&[1]]));
        a.merge(&set(&[(0, !0)], &[&[2]]));
        assert_eq!(a, set(&[(0, !0)], &[&[1], &[2]]));
        a.merge(&set(&[(0, 6)], &[&[2]]));
        assert!(a.overflowed());
        assert_eq!(a.values.len(), 2);
    }
}
