//! The runtime's must-allow base, derived from what the fleet already
//! observed: the union, per runtime, of the syscalls containers made after
//! the runtime's filter and before their entrypoint (`Phase::Runtime`).
//!
//! Every container start in the fleet is a probe start, so the central
//! aggregator needs no probe containers, no eBPF and no local Docker: the
//! base comes from the store. The wire carries the runtime's name
//! (`docker`, `podman`, `containerd`, `cri-o`) but not its version, so the
//! base is keyed by name; containers of one name that run different runc
//! versions share one base (the union, which only allows more of what
//! that runtime was seen doing).

use crate::store::RuntimeSyscallRow;
use schemas::SyscallKey;
use std::collections::{BTreeMap, BTreeSet};

/// Per runtime name, its observed base; per image, the runtimes its
/// containers ran under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedRuntimeBases {
    pub by_runtime: BTreeMap<String, BTreeSet<SyscallKey>>,
    pub image_runtimes: BTreeMap<String, BTreeSet<String>>,
}

impl ObservedRuntimeBases {
    /// From [`crate::store::Store::runtime_syscalls`]' rows.
    pub fn from_rows(rows: &[RuntimeSyscallRow]) -> ObservedRuntimeBases {
        let mut out = ObservedRuntimeBases::default();
        for (runtime, image, abi, nr) in rows {
            out.by_runtime
                .entry(runtime.clone())
                .or_default()
                .insert(SyscallKey { abi: *abi, nr: *nr });
            out.image_runtimes
                .entry(image.clone())
                .or_default()
                .insert(runtime.clone());
        }
        out
    }

    /// The base that applies to `image`: the union of the bases of the
    /// runtimes its containers ran under, with those runtimes' names.
    /// `None` when no container of the image made a runtime-phase call.
    pub fn for_image(&self, image: &str) -> Option<(Vec<String>, BTreeSet<SyscallKey>)> {
        let runtimes = self.image_runtimes.get(image)?;
        let mut base = BTreeSet::new();
        for r in runtimes {
            if let Some(b) = self.by_runtime.get(r) {
                base.extend(b.iter().copied());
            }
        }
        Some((runtimes.iter().cloned().collect(), base))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::{Abi, Phase};

    #[test]
    fn keyed_by_runtime_and_applied_per_image() {
        // The store queries select the runtime phase by its bit.
        assert_eq!(Phase::Runtime.bit(), 2);
        let row = |rt: &str, img: &str, nr| (rt.to_string(), img.to_string(), Abi::X86_64, nr);
        let b = ObservedRuntimeBases::from_rows(&[
            row("docker", "a", 1),
            row("docker", "b", 2),
            row("podman", "c", 3),
        ]);
        let k = |nr| SyscallKey {
            abi: Abi::X86_64,
            nr,
        };
        assert_eq!(
            b.for_image("a"),
            Some((vec!["docker".to_string()], [k(1), k(2)].into()))
        );
        assert_eq!(
            b.for_image("c"),
            Some((vec!["podman".to_string()], [k(3)].into()))
        );
        assert_eq!(b.for_image("unknown"), None);
    }
}
