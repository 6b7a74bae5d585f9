//! Loader for the in-kernel aggregator (`bpf/sandmine.bpf.c`).
//!
//! The structs below mirror `bpf/sandmine.h` byte for byte; `load` checks
//! the map value sizes against them so a drift is an error, not garbage.

use crate::{CollectError, Result};
use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuHashMap, PerCpuValues};
use aya::programs::BtfTracePoint;
use aya::{Btf, Ebpf, EbpfLoader};
use schemas::{Abi, Observation, Phase};
use std::os::unix::fs::MetadataExt;

/// The compiled program, built by `build.rs`.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/sandmine.bpf.o"));
/// An empty program on the same hook: the benchmark's floor.
pub static EMPTY_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/empty.bpf.o"));

pub const NR_ABIS: usize = 3;
pub const NR_SLOTS: usize = 576;
pub const NR_WORDS: usize = NR_SLOTS / 64;
pub const NR_PHASES: usize = 4;
/// Capture index → ABI, as in `SM_ABI_*`.
pub const CAPTURE_ABIS: [Abi; NR_ABIS] = [Abi::X86_64, Abi::I386, Abi::X32];

/// A workload, as the kernel program keys it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkloadKey {
    pub cgroup_id: u64,
    pub mntns_id: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct RawStats {
    pub post_exec: u64,
    pub out_of_range: u64,
    pub bits: [[[u64; NR_WORDS]; NR_ABIS]; NR_PHASES],
    pub counts: [[u64; NR_SLOTS]; NR_ABIS],
}

/// Facts recorded when the kernel program starts tracking a workload on
/// its own (auto-track mode).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WorkloadInfo {
    pub parent_cgroup_id: u64,
    pub created_ns: u64,
    pub mntns_inum: u32,
    pub creator_tgid: u32,
    pub creator_comm: [u8; 16],
}

/// Length of each name in [`CgroupName`] (`SM_CGNAME_LEN`).
pub const CGNAME_LEN: usize = 128;

/// The names of the cgroup a workload was created in and of its parent,
/// recorded by the kernel program with its [`WorkloadInfo`] (auto-track
/// mode), so that a container gone before userspace looks can still be
/// attributed by the id its runtime put in the cgroup's name.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CgroupName {
    pub leaf: [u8; CGNAME_LEN],
    pub parent: [u8; CGNAME_LEN],
    /// 2: from the cgroup v2 hierarchy; 1: from the v1 `pids` hierarchy
    /// (a v1-only host); 0: the task was in the root cgroup.
    pub hierarchy: u32,
    /// Depth of the cgroup below its hierarchy's root.
    pub level: u32,
}

impl CgroupName {
    /// The leaf name, up to its NUL.
    pub fn leaf_str(&self) -> String {
        c_str(&self.leaf)
    }

    /// The parent's name, up to its NUL ("" at level 1).
    pub fn parent_str(&self) -> String {
        c_str(&self.parent)
    }
}

fn c_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

// SAFETY: plain old data, `#[repr(C)]`, no padding (two byte arrays of a
// multiple of 8 bytes, then two u32), any bit pattern is valid.
unsafe impl aya::Pod for CgroupName {}
// SAFETY: plain old data, `#[repr(C)]`, no padding (all fields are u64 or
// arrays of u64, or u32 pairs and a byte array ending on an 8-byte
// boundary), any bit pattern is valid.
unsafe impl aya::Pod for WorkloadKey {}
// SAFETY: as above.
unsafe impl aya::Pod for RawStats {}
// SAFETY: as above.
unsafe impl aya::Pod for WorkloadInfo {}

/// What the loader is asked for.
#[derive(Clone, Debug, Default)]
pub struct EbpfOptions {
    /// Start tracking, in the kernel, every workload outside the host's
    /// mount namespace the first time it makes a syscall (containers). With
    /// `false`, only keys added with [`EbpfCollector::track`] are counted.
    pub auto_track: bool,
}

/// A loaded and attached aggregator. Dropping it detaches the programs.
pub struct EbpfCollector {
    ebpf: Ebpf,
    nr_cpus: usize,
}

/// Why eBPF capture cannot be used here, or `Ok` if it can. Checked before
/// loading so the fallback can be announced in one line.
pub fn check_available() -> Result<()> {
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err(CollectError::EbpfUnavailable(
            "the kernel has no BTF (/sys/kernel/btf/vmlinux is missing)".into(),
        ));
    }
    // CAP_BPF = 39, CAP_PERFMON = 38, CAP_SYS_ADMIN = 21 (which implies both).
    let caps = effective_caps()?;
    let has = |bit: u32| caps & (1u64 << bit) != 0;
    if !(has(21) || (has(39) && has(38))) {
        return Err(CollectError::EbpfUnavailable(
            "this process lacks CAP_BPF and CAP_PERFMON (run as root, or grant them)".into(),
        ));
    }
    Ok(())
}

fn effective_caps() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| CollectError::io("reading /proc/self/status", e))?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(str::trim)
        .ok_or_else(|| CollectError::Ebpf("no CapEff line in /proc/self/status".into()))?;
    u64::from_str_radix(hex, 16).map_err(|e| CollectError::Ebpf(format!("bad CapEff {hex:?}: {e}")))
}

/// The 64-bit id of the mount namespace of `pid` ("self" for this
/// process), as the kernel program computes it. Read from the
/// `NS_GET_MNTNS_ID` ioctl (Linux 6.10 and later).
pub fn mntns_id(pid: &str) -> Result<u64> {
    use std::os::fd::AsRawFd;
    let path = format!("/proc/{pid}/ns/mnt");
    let f =
        std::fs::File::open(&path).map_err(|e| CollectError::io(format!("opening {path}"), e))?;
    // NS_GET_MNTNS_ID = _IOR(0xb7, 0x5, __u64)
    const NS_GET_MNTNS_ID: libc::c_ulong = (2 << 30) | (8 << 16) | (0xb7 << 8) | 0x5;
    let mut id: u64 = 0;
    // SAFETY: the ioctl writes one u64 through the pointer, which is valid.
    let rc = unsafe { libc::ioctl(f.as_raw_fd(), NS_GET_MNTNS_ID as _, &mut id as *mut u64) };
    if rc != 0 {
        return Err(CollectError::Ebpf(format!(
            "NS_GET_MNTNS_ID on {path}: {} (Linux 6.10 or later is needed)",
            std::io::Error::last_os_error()
        )));
    }
    Ok(id)
}

/// The cgroup v2 id of a cgroup directory: its inode number.
pub fn cgroup_id(dir: &std::path::Path) -> Result<u64> {
    std::fs::metadata(dir)
        .map(|m| m.ino())
        .map_err(|e| CollectError::io(format!("stat {}", dir.display()), e))
}

impl EbpfCollector {
    /// Load the program, set its globals, and attach it to
    /// `tp_btf/sys_enter` and `tp_btf/sched_process_exec`.
    pub fn load(opts: &EbpfOptions) -> Result<Self> {
        check_available()?;
        // The host's mount namespace is pid 1's; where pid 1 cannot be
        // inspected (a sandbox, or a collector run outside the host's pid
        // namespace), this process's own, which must then be the host's.
        let host_mntns = mntns_id("1").or_else(|_| mntns_id("self"))?;
        let nr_cpus = aya::util::nr_cpus()
            .map_err(|(what, e)| CollectError::Ebpf(format!("counting CPUs ({what}): {e}")))?;
        let auto: u32 = opts.auto_track.into();
        let cpus: u32 = nr_cpus
            .try_into()
            .map_err(|_| CollectError::Ebpf(format!("{nr_cpus} CPUs is too many")))?;
        let btf = Btf::from_sys_fs()
            .map_err(|e| CollectError::Ebpf(format!("reading kernel BTF: {e}")))?;
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .override_global("host_mntns_id", &host_mntns, true)
            .override_global("auto_track", &auto, true)
            .override_global("nr_cpus", &cpus, true)
            .load(OBJECT)
            .map_err(|e| CollectError::Ebpf(format!("loading the BPF object: {e}")))?;
        for (prog, hook) in [
            ("sm_sys_enter", "sys_enter"),
            ("sm_sched_exec", "sched_process_exec"),
        ] {
            let p: &mut BtfTracePoint = ebpf
                .program_mut(prog)
                .ok_or_else(|| {
                    CollectError::Ebpf(format!("program {prog} missing from the object"))
                })?
                .try_into()
                .map_err(|e| CollectError::Ebpf(format!("{prog}: {e}")))?;
            p.load(hook, &btf)
                .map_err(|e| CollectError::Ebpf(format!("verifier rejected {prog}: {e}")))?;
            p.attach()
                .map_err(|e| CollectError::Ebpf(format!("attaching {prog} to {hook}: {e}")))?;
        }
        Ok(EbpfCollector { ebpf, nr_cpus })
    }

    fn stats_map(&self) -> Result<PerCpuHashMap<&MapData, WorkloadKey, RawStats>> {
        let map = self
            .ebpf
            .map("sm_stats")
            .ok_or_else(|| CollectError::Ebpf("map sm_stats missing".into()))?;
        PerCpuHashMap::try_from(map).map_err(|e| CollectError::Ebpf(format!("sm_stats: {e}")))
    }

    /// Start counting the calls of `key`, from its next syscall on.
    pub fn track(&mut self, key: WorkloadKey) -> Result<()> {
        let zero = || {
            PerCpuValues::try_from(vec![zeroed_stats(); self.nr_cpus])
                .map_err(|e| CollectError::Ebpf(format!("building per-CPU values: {e}")))
        };
        let mut values = zero()?;
        let map = self
            .ebpf
            .map_mut("sm_stats")
            .ok_or_else(|| CollectError::Ebpf("map sm_stats missing".into()))?;
        let mut map: PerCpuHashMap<&mut MapData, WorkloadKey, RawStats> =
            PerCpuHashMap::try_from(map)
                .map_err(|e| CollectError::Ebpf(format!("sm_stats: {e}")))?;
        // The kernel allocates a per-CPU value from caches that are
        // refilled asynchronously; right after many workloads were freed
        // (their memory goes back after an RCU grace period) an insert can
        // fail with ENOMEM for a moment. Retry for up to a second.
        let mut tries = 0;
        loop {
            match map.insert(key, std::mem::replace(&mut values, zero()?), 0) {
                Ok(()) => return Ok(()),
                Err(aya::maps::MapError::SyscallError(ref s))
                    if s.io_error.raw_os_error() == Some(libc::ENOMEM) && tries < 100 =>
                {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => return Err(map_err(format_args!("tracking {key:?}"), e)),
            }
        }
    }

    /// Stop counting `key` and free its slot.
    pub fn untrack(&mut self, key: &WorkloadKey) -> Result<()> {
        for name in ["sm_stats", "sm_info", "sm_cgname"] {
            let map = self
                .ebpf
                .map_mut(name)
                .ok_or_else(|| CollectError::Ebpf(format!("map {name} missing")))?;
            let r = if name == "sm_stats" {
                PerCpuHashMap::<&mut MapData, WorkloadKey, RawStats>::try_from(map)
                    .map_err(|e| CollectError::Ebpf(format!("{name}: {e}")))?
                    .remove(key)
            } else if name == "sm_info" {
                BpfHashMap::<&mut MapData, WorkloadKey, WorkloadInfo>::try_from(map)
                    .map_err(|e| CollectError::Ebpf(format!("{name}: {e}")))?
                    .remove(key)
            } else {
                BpfHashMap::<&mut MapData, WorkloadKey, CgroupName>::try_from(map)
                    .map_err(|e| CollectError::Ebpf(format!("{name}: {e}")))?
                    .remove(key)
            };
            match r {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(map_err(format_args!("untracking {key:?}"), e)),
            }
        }
        Ok(())
    }

    /// Every workload the kernel program is counting.
    pub fn keys(&self) -> Result<Vec<WorkloadKey>> {
        let map = self.stats_map()?;
        let mut keys: Vec<WorkloadKey> = map
            .keys()
            .collect::<Result<_, _>>()
            .map_err(|e| CollectError::Ebpf(format!("listing sm_stats: {e}")))?;
        keys.sort();
        Ok(keys)
    }

    /// Calls the kernel program could not count because it failed to start
    /// tracking a new workload (map full, or a failed allocation). Zero
    /// means nothing was lost.
    pub fn lost_calls(&self) -> Result<u64> {
        let map = self
            .ebpf
            .map("sm_diag")
            .ok_or_else(|| CollectError::Ebpf("map sm_diag missing".into()))?;
        let map: aya::maps::PerCpuArray<&MapData, u64> = aya::maps::PerCpuArray::try_from(map)
            .map_err(|e| CollectError::Ebpf(format!("sm_diag: {e}")))?;
        let v = map.get(&0, 0).map_err(|e| map_err("reading sm_diag", e))?;
        Ok(v.iter().sum())
    }

    /// What the kernel recorded when it started tracking `key` by itself.
    pub fn info(&self, key: &WorkloadKey) -> Result<Option<WorkloadInfo>> {
        let map = self
            .ebpf
            .map("sm_info")
            .ok_or_else(|| CollectError::Ebpf("map sm_info missing".into()))?;
        let map: BpfHashMap<&MapData, WorkloadKey, WorkloadInfo> =
            BpfHashMap::try_from(map).map_err(|e| CollectError::Ebpf(format!("sm_info: {e}")))?;
        match map.get(key, 0) {
            Ok(v) => Ok(Some(v)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(map_err("reading sm_info", e)),
        }
    }

    /// The names of the cgroup the kernel saw `key` created in.
    pub fn cgroup_name(&self, key: &WorkloadKey) -> Result<Option<CgroupName>> {
        let map = self
            .ebpf
            .map("sm_cgname")
            .ok_or_else(|| CollectError::Ebpf("map sm_cgname missing".into()))?;
        let map: BpfHashMap<&MapData, WorkloadKey, CgroupName> =
            BpfHashMap::try_from(map).map_err(|e| CollectError::Ebpf(format!("sm_cgname: {e}")))?;
        match map.get(key, 0) {
            Ok(v) => Ok(Some(v)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(map_err("reading sm_cgname", e)),
        }
    }

    /// A snapshot of what `key` did so far, summed over CPUs.
    pub fn observe(&self, key: &WorkloadKey) -> Result<Observation> {
        let map = self.stats_map()?;
        let per_cpu = match map.get(key, 0) {
            Ok(v) => v,
            Err(e) if is_not_found(&e) => return Ok(Observation::default()),
            Err(e) => return Err(map_err(format_args!("reading {key:?}"), e)),
        };
        Ok(fold(per_cpu.iter()))
    }
}

/// A map error with its OS cause, which aya's own message leaves out.
pub(crate) fn map_err(what: impl std::fmt::Display, e: aya::maps::MapError) -> CollectError {
    match &e {
        aya::maps::MapError::SyscallError(s) => {
            CollectError::Ebpf(format!("{what}: {e}: {}", s.io_error))
        }
        _ => CollectError::Ebpf(format!("{what}: {e}")),
    }
}

pub(crate) fn is_not_found(e: &aya::maps::MapError) -> bool {
    match e {
        aya::maps::MapError::KeyNotFound => true,
        aya::maps::MapError::SyscallError(s) => s.io_error.raw_os_error() == Some(libc::ENOENT),
        _ => false,
    }
}

pub(crate) fn zeroed_stats() -> RawStats {
    RawStats {
        post_exec: 0,
        out_of_range: 0,
        bits: [[[0; NR_WORDS]; NR_ABIS]; NR_PHASES],
        counts: [[0; NR_SLOTS]; NR_ABIS],
    }
}

/// Sum the counts and OR the phase bitmaps of every CPU's copy.
pub fn fold<'a>(copies: impl Iterator<Item = &'a RawStats>) -> Observation {
    let mut bits = [[[0u64; NR_WORDS]; NR_ABIS]; NR_PHASES];
    let mut counts = [[0u64; NR_SLOTS]; NR_ABIS];
    let mut obs = Observation::default();
    for c in copies {
        obs.out_of_range += c.out_of_range;
        for (p, per_abi) in c.bits.iter().enumerate() {
            for (a, words) in per_abi.iter().enumerate() {
                for (w, word) in words.iter().enumerate() {
                    bits[p][a][w] |= word;
                }
            }
        }
        for (a, per_nr) in c.counts.iter().enumerate() {
            for (n, v) in per_nr.iter().enumerate() {
                counts[a][n] += v;
            }
        }
    }
    for (a, abi) in CAPTURE_ABIS.iter().enumerate() {
        for (nr, calls) in counts[a].iter().enumerate() {
            let (w, b) = (nr / 64, 1u64 << (nr % 64));
            let mut u = schemas::SyscallUse {
                calls: *calls,
                ..Default::default()
            };
            for (p, phase) in Phase::ALL.iter().enumerate() {
                if bits[p][a][w] & b != 0 {
                    u.phases.insert(*phase);
                }
            }
            if !u.phases.is_empty() {
                // `nr < NR_SLOTS`, so it fits u32.
                obs.syscalls.insert(
                    schemas::SyscallKey {
                        abi: *abi,
                        nr: nr as u32,
                    },
                    u,
                );
            }
        }
    }
    obs
}
