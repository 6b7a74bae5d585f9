//! Hand-made wire messages for the tests that feed a broker or a store
//! directly: one container per envelope, at a time derived from its
//! sequence number, so a test's messages never collide.

use schemas::wire::{ContainerDelta, ContainerRef, Envelope, SeccompFilter, SyscallDelta};
use schemas::{Abi, Phase, PhaseSet};

/// The interval end of message `seq`: one second apart, in late 2025.
pub fn at(seq: u64) -> u64 {
    1_764_000_000_000 + seq * 1000
}

/// `calls` x86_64 calls of number `nr` in `phase`, first seen half a
/// second before `t`.
pub fn call(nr: u32, calls: u64, phase: Phase, t: u64) -> SyscallDelta {
    SyscallDelta {
        abi: Abi::X86_64,
        nr,
        calls,
        phases: PhaseSet(phase.bit()),
        first_seen_ms: t - 500,
    }
}

/// The delta `seq` of `host` (boot "boot-1"): one unconfined container
/// `c{seq}` of `image` under `runtime`, started and exited within the
/// interval, that made `syscalls` (sorted here by number).
pub fn one_container(
    host: &str,
    seq: u64,
    runtime: &str,
    image: &str,
    mut syscalls: Vec<SyscallDelta>,
) -> Envelope {
    let t = at(seq);
    syscalls.sort_by_key(|s| (s.abi, s.nr));
    Envelope {
        host_id: host.into(),
        boot_id: "boot-1".into(),
        seq,
        interval_start_ms: t - 1000,
        interval_end_ms: t,
        containers: vec![ContainerDelta {
            container: ContainerRef {
                runtime: runtime.into(),
                id: format!("c{seq}"),
                image: image.into(),
                image_digest: String::new(),
                pod: None,
                seccomp: SeccompFilter::Unconfined,
            },
            started_at_ms: t - 500,
            last_seen_ms: t,
            exited_at_ms: Some(t),
            incomplete: false,
            unverified: false,
            denials: Default::default(),
            args: Default::default(),
            syscalls,
            executed: Default::default(),
        }],
    }
}
