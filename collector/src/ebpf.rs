//! The one handle on the in-kernel syscall counter (`bpf/sandmine.bpf.c`):
//! loaded for this process ([`EbpfCollector::load`], single host), or
//! pinned on bpffs so it counts while the daemon is down
//! ([`crate::daemon::kernel::open_or_load`]). Both give the same maps and
//! the same API.
//!
//! The structs below mirror `bpf/sandmine.h` byte for byte; opening the
//! maps checks the value sizes against them, so a drift is an error, not
//! garbage.
//!
//! Every map is preallocated: a workload takes a slot from a queue of free
//! slots on its first call and keeps it until [`EbpfCollector::untrack`].
//! Its shared state (`sm_work`: phase bitmaps, one dense index per
//! distinct syscall, spilled counts) is one array element; its counts are
//! 16-bit per-CPU counters (`sm_counts`) that the kernel moves into the
//! shared 64-bit `spill` every [`SPILL`] calls. [`EbpfCollector::observe`]
//! folds them into exact u64 counts. See [`map_memory_bytes`] for what that
//! costs.

pub mod args;

use crate::{CollectError, Result};
pub use args::{ArgSpec, ArgTrack, ArgValues, Args, TRACKS as ARG_TRACKS};
use aya::maps::{Array, HashMap as BpfHashMap, Map, MapData, PerCpuArray, PerCpuValues, Queue};
use aya::programs::tp_btf::BtfTracePointLinkId;
use aya::programs::BtfTracePoint;
use aya::{Btf, Ebpf, EbpfLoader};
use schemas::{Abi, DenialKey, Denials, DenyAction, Observation, Phase};
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
/// Distinct (ABI, number) pairs a workload can count (`SM_NR_DENSE`).
pub const NR_DENSE: usize = 256;
/// A per-CPU counter is moved into the shared spill at this value.
pub const SPILL: u32 = 0x8000;
/// Capture index → ABI, as in `SM_ABI_*`.
pub const CAPTURE_ABIS: [Abi; NR_ABIS] = [Abi::X86_64, Abi::I386, Abi::X32];
/// Workloads the counter holds at once unless told otherwise: at least
/// 1,000 alive, plus room for exited ones whose final counts are not yet
/// published.
pub const DEFAULT_MAX_WORKLOADS: u32 = 2048;
/// Workloads over capacity that are named with their lost calls
/// (`SM_LOST_KEYS`).
pub const LOST_KEYS: u32 = 1024;

/// Distinct (workload, ABI, number, action) denials counted at once
/// (`SM_DENIED_KEYS`).
pub const DENIED_KEYS: u32 = 4096;
/// `sm_inflight`: 65,536 chunks of 64 tids, every tid below
/// `PID_MAX_LIMIT` (`SM_TASK_CHUNKS`, `SM_TASK_CHUNK`).
const TASK_CHUNKS: u64 = 65_536;
const TASK_CHUNK: usize = 64;

/// The maps that hold state, in the object and on bpffs when pinned.
pub(crate) const MAPS: [&str; 10] = [
    "sm_slot",
    "sm_free",
    "sm_work",
    "sm_counts",
    "sm_cgname",
    "sm_args",
    "sm_lost",
    "sm_diag",
    "sm_denied",
    "sm_inflight",
];
/// The maps with one element per slot: their size is the capacity.
const SLOT_MAPS: [&str; 6] = [
    "sm_slot",
    "sm_free",
    "sm_work",
    "sm_counts",
    "sm_cgname",
    "sm_args",
];
/// The programs and their hooks.
pub(crate) const PROGRAMS: [(&str, &str); 2] = [
    ("sm_sys_enter", "sys_enter"),
    ("sm_sched_exec", "sched_process_exec"),
];
/// The programs that count denials. A kernel that refuses them still
/// counts calls: the loader says so in one line and goes on without.
pub(crate) const DENIAL_PROGRAMS: [(&str, &str); 2] = [
    ("sm_sys_exit", "sys_exit"),
    ("sm_sched_exit", "sched_process_exit"),
];
const DIAG_LOST_CALLS: u32 = 0;
const DIAG_DENIALS_LOST: u32 = 3;
const DIAG_DENIALS_UNNAMED: u32 = 4;
/// `SM_NR_DIAG`.
const NR_DIAG: u64 = 8;
/// `SM_DENY_*`: the action kinds of `struct sm_deny_key`.
const DENY_ERRNO: u8 = 1;
const DENY_TRAP: u8 = 2;
const DENY_KILL: u8 = 3;

/// A workload, as the kernel program keys it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkloadKey {
    pub cgroup_id: u64,
    pub mntns_id: u64,
}

/// `struct sm_work`: one workload's shared state.
#[repr(C)]
#[derive(Clone, Copy)]
struct RawWork {
    key: WorkloadKey,
    parent_cgroup_id: u64,
    created_ns: u64,
    mntns_inum: u32,
    creator_tgid: u32,
    creator_comm: [u8; 16],
    post_exec: u32,
    nr_dense: u32,
    lost_calls: u64,
    out_of_range: u64,
    bits: [[[u64; NR_WORDS]; NR_ABIS]; NR_PHASES],
    dense: [[u32; NR_SLOTS]; NR_ABIS],
    spill: [u64; NR_DENSE],
}

/// `struct sm_counts`: one workload's counters on one CPU.
#[repr(C)]
#[derive(Clone, Copy)]
struct RawCounts {
    n: [u16; NR_DENSE],
}

/// `struct sm_lost`: a workload that found no free slot.
#[repr(C)]
#[derive(Clone, Copy)]
struct RawLost {
    calls: u64,
    name: CgroupName,
}

/// `struct sm_deny_key`: one kind of denial of one workload.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RawDenyKey {
    key: WorkloadKey,
    nr: u32,
    err: u16,
    abi: u8,
    kind: u8,
}

/// `struct sm_inflight`: one byte per task of 64 consecutive tids.
#[repr(C)]
#[derive(Clone, Copy)]
struct RawInflight {
    state: [u8; TASK_CHUNK],
}

/// Facts recorded when the kernel program starts tracking a workload on
/// its own (auto-track mode).
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

// SAFETY (all seven): plain old data, `#[repr(C)]`, no padding (every field
// is a u64, a u32 pair, a u16 array of an even size, a u32+u16+u8+u8
// group of 8 bytes, or a byte array of a multiple of 8 bytes, in an order
// that keeps each aligned), and any bit pattern is valid.
unsafe impl aya::Pod for RawDenyKey {}
unsafe impl aya::Pod for RawInflight {}
unsafe impl aya::Pod for CgroupName {}
unsafe impl aya::Pod for WorkloadKey {}
unsafe impl aya::Pod for RawWork {}
unsafe impl aya::Pod for RawCounts {}
unsafe impl aya::Pod for RawLost {}

/// What the loader is asked for.
#[derive(Clone, Debug)]
pub struct EbpfOptions {
    /// Start tracking, in the kernel, every workload outside the host's
    /// mount namespace the first time it makes a syscall (containers). With
    /// `false`, only keys added with [`EbpfCollector::track`] are counted.
    pub auto_track: bool,
    /// Workloads held at once (slots). Map memory grows with it: see
    /// [`map_memory_bytes`].
    pub max_workloads: u32,
}

impl Default for EbpfOptions {
    fn default() -> Self {
        EbpfOptions {
            auto_track: false,
            max_workloads: DEFAULT_MAX_WORKLOADS,
        }
    }
}

/// Kernel memory of the counter's maps, in bytes, for `max_workloads`
/// slots on `nr_cpus` possible CPUs, as the kernel accounts it (each map
/// type's `map_mem_usage`, Linux 6.18 x86_64: `struct bpf_array` is 312
/// bytes, `struct bpf_htab` 832, a hash element's header 48, a bucket 16).
/// Per slot: the shared `sm_work` (9,904 bytes), its cgroup names (264),
/// its argument values (`sm_args`, 4,248: see [`args`]), its `sm_slot`
/// element and queue entry (about 100), and 512 bytes per CPU of 16-bit
/// counters. `collector/tests/burst.rs` checks it against
/// bpftool's `bytes_memlock` of a loaded program.
pub fn map_memory_bytes(max_workloads: u32, nr_cpus: u32) -> u64 {
    const ARRAY: u64 = 312;
    const HTAB: u64 = 832;
    const HTAB_ELEM: u64 = 48;
    const BUCKET: u64 = 16;
    const HTAB_LOCKS: u64 = 8;
    let cpus = u64::from(nr_cpus);
    let r8 = |n: usize| (n as u64).div_ceil(8) * 8;
    let array = |entries: u64, value: usize| ARRAY + entries * r8(value);
    let percpu_array =
        |entries: u64, value: usize| ARRAY + entries * 8 + entries * r8(value) * cpus;
    // A preallocated, non-per-CPU hash holds one spare element per CPU.
    let hash = |entries: u64, key: usize, value: usize| {
        HTAB + BUCKET * entries.next_power_of_two()
            + 4 * cpus * HTAB_LOCKS
            + (HTAB_ELEM + r8(key) + r8(value)) * (entries + cpus)
            + 8 * cpus
    };
    let queue = |entries: u64, value: usize| ARRAY + (entries + 1) * value as u64;
    let w = u64::from(max_workloads);
    let key = std::mem::size_of::<WorkloadKey>();
    hash(w, key, 4)
        + queue(w, 4)
        + array(w, std::mem::size_of::<RawWork>())
        + percpu_array(w, std::mem::size_of::<RawCounts>())
        + array(w, std::mem::size_of::<CgroupName>())
        + array(w, std::mem::size_of::<args::RawArgs>()) // sm_args
        + hash(u64::from(LOST_KEYS), key, std::mem::size_of::<RawLost>())
        + percpu_array(1, std::mem::size_of::<RawLost>()) // sm_lost_scratch
        + percpu_array(NR_DIAG, 8) // sm_diag
        + percpu_array(1, key + 8) // sm_last
        + hash(u64::from(DENIED_KEYS), std::mem::size_of::<RawDenyKey>(), 8) // sm_denied
        + array(TASK_CHUNKS, std::mem::size_of::<RawInflight>()) // sm_inflight
}

/// The counter's maps, opened from a fresh load or from pins.
pub struct EbpfCollector {
    /// The process-owned object (its links detach when dropped); `None`
    /// when the program and links are pinned.
    _object: Option<Ebpf>,
    /// Boxed: the handle lives in enums and is moved around.
    maps: Box<Maps>,
    nr_cpus: usize,
    fresh: bool,
}

struct Maps {
    slot: BpfHashMap<MapData, WorkloadKey, u32>,
    free: Queue<MapData, u32>,
    work: Array<MapData, RawWork>,
    counts: PerCpuArray<MapData, RawCounts>,
    names: Array<MapData, CgroupName>,
    args: Array<MapData, args::RawArgs>,
    lost: BpfHashMap<MapData, WorkloadKey, RawLost>,
    diag: PerCpuArray<MapData, u64>,
    denied: BpfHashMap<MapData, RawDenyKey, u64>,
    /// Opened so that a drift of its layout is an error; only the kernel
    /// writes it.
    _inflight: Array<MapData, RawInflight>,
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

/// This process's effective capabilities (`CapEff` of `/proc/self/status`),
/// one bit per capability number.
pub fn effective_caps() -> Result<u64> {
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
    mntns_id_in(std::path::Path::new("/proc"), pid)
}

/// [`mntns_id`] under a proc file system mounted at `proc_root` (the
/// host's `/proc` mounted elsewhere, in a container without the host's
/// pid namespace).
pub fn mntns_id_in(proc_root: &std::path::Path, pid: &str) -> Result<u64> {
    use std::os::fd::AsRawFd;
    let path = format!("{}/{pid}/ns/mnt", proc_root.display());
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

/// Possible CPUs (the number of per-CPU copies).
pub(crate) fn nr_cpus() -> Result<usize> {
    aya::util::nr_cpus()
        .map_err(|(what, e)| CollectError::Ebpf(format!("counting CPUs ({what}): {e}")))
}

/// The host's mount namespace: pid 1's; where pid 1 cannot be inspected (a
/// sandbox, or a collector run outside the host's pid namespace), this
/// process's own, which must then be the host's.
pub(crate) fn host_mntns_id() -> Result<u64> {
    host_mntns_id_in(std::path::Path::new("/proc"))
}

/// [`host_mntns_id`] with pid 1 read under `proc_root` (this process's
/// own namespace always from `/proc/self`).
pub(crate) fn host_mntns_id_in(proc_root: &std::path::Path) -> Result<u64> {
    mntns_id_in(proc_root, "1").or_else(|e| {
        log::debug!("{e}; taking this process's mount namespace as the host's");
        mntns_id("self")
    })
}

/// Load the object with its globals and capacity, queue every slot as
/// free, and attach the programs. With `pin_dir`, the maps are pinned
/// there as they are created. Returns the object and its links, each with
/// its program's name: every one of [`PROGRAMS`], then those of
/// [`DENIAL_PROGRAMS`] the kernel took (if it refused one, a warning says
/// that denials are not counted, and none is attached).
pub(crate) fn load_object(
    opts: &EbpfOptions,
    host_mntns: u64,
    pin_dir: Option<&std::path::Path>,
) -> Result<(Ebpf, Vec<(&'static str, BtfTracePointLinkId)>)> {
    check_available()?;
    if opts.max_workloads == 0 {
        return Err(CollectError::Ebpf(
            "max_workloads must be at least 1".into(),
        ));
    }
    let auto: u32 = opts.auto_track.into();
    let btf =
        Btf::from_sys_fs().map_err(|e| CollectError::Ebpf(format!("reading kernel BTF: {e}")))?;
    let arg_track = args::track_table().map_err(CollectError::Ebpf)?;
    let arg_desc = args::descs();
    let mut loader = EbpfLoader::new();
    loader
        .btf(Some(&btf))
        .override_global("host_mntns_id", &host_mntns, true)
        .override_global("auto_track", &auto, true)
        .override_global("sm_arg_track", &arg_track, true)
        .override_global("sm_arg_desc", &arg_desc, true);
    for m in SLOT_MAPS {
        loader.map_max_entries(m, opts.max_workloads);
    }
    if let Some(dir) = pin_dir {
        for m in MAPS {
            loader.map_pin_path(m, dir.join(m));
        }
    }
    let mut ebpf = loader
        .load(OBJECT)
        .map_err(|e| CollectError::Ebpf(format!("loading the BPF object: {e}")))?;
    {
        let map = ebpf
            .map_mut("sm_free")
            .ok_or_else(|| CollectError::Ebpf("map sm_free missing".into()))?;
        let mut free: Queue<&mut MapData, u32> =
            Queue::try_from(map).map_err(|e| CollectError::Ebpf(format!("sm_free: {e}")))?;
        for i in 0..opts.max_workloads {
            free.push(i, 0)
                .map_err(|e| map_err("queueing the free slots", e))?;
        }
    }
    let mut links = Vec::with_capacity(PROGRAMS.len() + DENIAL_PROGRAMS.len());
    for (prog, hook) in PROGRAMS {
        links.push((prog, attach(&mut ebpf, &btf, prog, hook)?));
    }
    let mut denial_links = Vec::with_capacity(DENIAL_PROGRAMS.len());
    for (prog, hook) in DENIAL_PROGRAMS {
        match attach(&mut ebpf, &btf, prog, hook) {
            Ok(id) => denial_links.push((prog, id)),
            Err(e) => {
                log::warn!("seccomp denials are not counted on this kernel: {e}");
                for (prog, id) in denial_links.drain(..) {
                    detach(&mut ebpf, prog, id);
                }
                break;
            }
        }
    }
    links.extend(denial_links);
    Ok((ebpf, links))
}

fn program<'a>(ebpf: &'a mut Ebpf, prog: &str) -> Result<&'a mut BtfTracePoint> {
    ebpf.program_mut(prog)
        .ok_or_else(|| CollectError::Ebpf(format!("program {prog} missing from the object")))?
        .try_into()
        .map_err(|e| CollectError::Ebpf(format!("{prog}: {e}")))
}

fn attach(ebpf: &mut Ebpf, btf: &Btf, prog: &str, hook: &str) -> Result<BtfTracePointLinkId> {
    let p = program(ebpf, prog)?;
    p.load(hook, btf)
        .map_err(|e| CollectError::Ebpf(format!("verifier rejected {prog}: {e}")))?;
    p.attach()
        .map_err(|e| CollectError::Ebpf(format!("attaching {prog} to {hook}: {e}")))
}

/// Detach a denial program whose partner failed: denials are counted by
/// both or by neither.
fn detach(ebpf: &mut Ebpf, prog: &str, id: BtfTracePointLinkId) {
    match program(ebpf, prog) {
        Ok(p) => {
            if let Err(e) = p.detach(id) {
                log::warn!("detaching {prog}: {e}");
            }
        }
        Err(e) => log::warn!("detaching {prog}: {e}"),
    }
}

fn typed<M>(name: &str, map: Map) -> Result<M>
where
    M: TryFrom<Map, Error = aya::maps::MapError>,
{
    M::try_from(map).map_err(|e| CollectError::Ebpf(format!("{name}: {e}")))
}

impl EbpfCollector {
    /// Load the program for this process, set its globals, and attach it
    /// to `tp_btf/sys_enter` and `tp_btf/sched_process_exec`. Dropping the
    /// handle detaches it.
    pub fn load(opts: &EbpfOptions) -> Result<Self> {
        let (mut ebpf, _links) = load_object(opts, host_mntns_id()?, None)?;
        let take = |name: &str| {
            ebpf.take_map(name)
                .ok_or_else(|| CollectError::Ebpf(format!("map {name} missing")))
        };
        let maps = MAPS.map(take);
        let mut handle = Self::from_maps(maps, true)?;
        handle._object = Some(ebpf);
        Ok(handle)
    }

    /// The maps pinned in `dir` (see `daemon::kernel`).
    pub(crate) fn from_pins(dir: &std::path::Path, fresh: bool) -> Result<Self> {
        let open = |name: &str| -> Result<Map> {
            let path = dir.join(name);
            let data = MapData::from_pin(&path)
                .map_err(|e| CollectError::Ebpf(format!("opening {}: {e}", path.display())))?;
            Map::from_map_data(data).map_err(|e| CollectError::Ebpf(format!("{name}: {e}")))
        };
        Self::from_maps(MAPS.map(open), fresh)
    }

    fn from_maps(maps: [Result<Map>; 10], fresh: bool) -> Result<Self> {
        let [slot, free, work, counts, names, args, lost, diag, denied, inflight] = maps;
        Ok(EbpfCollector {
            _object: None,
            maps: Box::new(Maps {
                slot: typed("sm_slot", slot?)?,
                free: typed("sm_free", free?)?,
                work: typed("sm_work", work?)?,
                counts: typed("sm_counts", counts?)?,
                names: typed("sm_cgname", names?)?,
                args: typed("sm_args", args?)?,
                lost: typed("sm_lost", lost?)?,
                diag: typed("sm_diag", diag?)?,
                denied: typed("sm_denied", denied?)?,
                _inflight: typed("sm_inflight", inflight?)?,
            }),
            nr_cpus: nr_cpus()?,
            fresh,
        })
    }

    /// True when the counters started from zero with this handle (always
    /// for [`EbpfCollector::load`]; for pinned maps, when no usable pinned
    /// program was there).
    pub fn fresh(&self) -> bool {
        self.fresh
    }

    /// Slots: the workloads the counter can hold at once.
    pub fn capacity(&self) -> u32 {
        self.maps.free.capacity()
    }

    fn slot_of(&self, key: &WorkloadKey) -> Result<Option<u32>> {
        match self.maps.slot.get(key, 0) {
            Ok(i) => Ok(Some(i)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(map_err("reading sm_slot", e)),
        }
    }

    /// The shared state of `key`'s slot, if `key` holds one.
    fn work_of(&self, key: &WorkloadKey) -> Result<Option<(u32, RawWork)>> {
        let Some(idx) = self.slot_of(key)? else {
            return Ok(None);
        };
        let w = self
            .maps
            .work
            .get(&idx, 0)
            .map_err(|e| map_err("reading sm_work", e))?;
        Ok((w.key == *key).then_some((idx, w)))
    }

    /// Start counting the calls of `key`, from its next syscall on.
    pub fn track(&mut self, key: WorkloadKey) -> Result<()> {
        if self.slot_of(&key)?.is_some() {
            return Ok(());
        }
        let idx = self.maps.free.pop(0).map_err(|e| match &e {
            aya::maps::MapError::SyscallError(s)
                if s.io_error.raw_os_error() == Some(libc::ENOENT) =>
            {
                CollectError::Ebpf(format!(
                    "cannot track {key:?}: all {} workload slots are taken",
                    self.capacity()
                ))
            }
            _ => map_err("taking a free slot", e),
        })?;
        let mut w = zeroed_work();
        w.key = key;
        self.maps
            .work
            .set(idx, w, 0)
            .map_err(|e| map_err("writing sm_work", e))?;
        self.maps
            .slot
            .insert(key, idx, 1 /* BPF_NOEXIST */)
            .map_err(|e| map_err(format_args!("tracking {key:?}"), e))
    }

    /// Stop counting `key`, zero its slot and queue it as free. Call it
    /// only once `key` makes no more calls (its workload exited, or it was
    /// never auto-tracked): a call already past the slot lookup would
    /// write into the freed slot.
    pub fn untrack(&mut self, key: &WorkloadKey) -> Result<()> {
        if let Some((idx, _)) = self.work_of(key)? {
            match self.maps.slot.remove(key) {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(map_err(format_args!("untracking {key:?}"), e)),
            }
            let zero = PerCpuValues::try_from(vec![RawCounts { n: [0; NR_DENSE] }; self.nr_cpus])
                .map_err(|e| CollectError::Ebpf(format!("building per-CPU values: {e}")))?;
            self.maps
                .counts
                .set(idx, zero, 0)
                .map_err(|e| map_err("zeroing sm_counts", e))?;
            self.maps
                .work
                .set(idx, zeroed_work(), 0)
                .map_err(|e| map_err("zeroing sm_work", e))?;
            self.maps
                .names
                .set(idx, zeroed_name(), 0)
                .map_err(|e| map_err("zeroing sm_cgname", e))?;
            self.maps
                .args
                .set(idx, args::zeroed_args(), 0)
                .map_err(|e| map_err("zeroing sm_args", e))?;
            self.maps
                .free
                .push(idx, 0)
                .map_err(|e| map_err("freeing a slot", e))?;
        }
        for raw in self.denial_keys(key)? {
            match self.maps.denied.remove(&raw) {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(map_err(format_args!("untracking {key:?}"), e)),
            }
        }
        match self.maps.lost.remove(key) {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(map_err(format_args!("untracking {key:?}"), e)),
        }
    }

    /// The keys of `sm_denied` that belong to `key`.
    fn denial_keys(&self, key: &WorkloadKey) -> Result<Vec<RawDenyKey>> {
        let mut out = Vec::new();
        for k in self.maps.denied.keys() {
            let k = k.map_err(|e| CollectError::Ebpf(format!("listing sm_denied: {e}")))?;
            if k.key == *key {
                out.push(k);
            }
        }
        Ok(out)
    }

    /// The calls of `key` that a seccomp filter denied so far, exact, per
    /// (ABI, number, action). Counts only grow until [`EbpfCollector::untrack`].
    /// Empty when `key` is not tracked or nothing was denied.
    pub fn denials_of(&self, key: &WorkloadKey) -> Result<Denials> {
        let mut out = Denials::new();
        for raw in self.denial_keys(key)? {
            self.add_denial(&raw, &mut out)?;
        }
        Ok(out)
    }

    /// [`EbpfCollector::denials_of`] of every workload with a denial, in
    /// one pass over `sm_denied` (what the daemon reads each tick).
    pub fn denials(&self) -> Result<std::collections::HashMap<WorkloadKey, Denials>> {
        let mut out: std::collections::HashMap<WorkloadKey, Denials> = Default::default();
        for k in self.maps.denied.keys() {
            let raw = k.map_err(|e| CollectError::Ebpf(format!("listing sm_denied: {e}")))?;
            self.add_denial(&raw, out.entry(raw.key).or_default())?;
        }
        out.retain(|_, d| !d.is_empty());
        Ok(out)
    }

    /// Adds the count of one `sm_denied` entry to `out` (nothing if it
    /// went away meanwhile).
    fn add_denial(&self, raw: &RawDenyKey, out: &mut Denials) -> Result<()> {
        let n = match self.maps.denied.get(raw, 0) {
            Ok(n) => n,
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(map_err("reading sm_denied", e)),
        };
        let action = match raw.kind {
            DENY_ERRNO => DenyAction::Errno(raw.err),
            DENY_TRAP => DenyAction::Trap,
            DENY_KILL => DenyAction::Kill,
            other => {
                return Err(CollectError::Ebpf(format!(
                    "sm_denied holds an unknown action kind {other}"
                )))
            }
        };
        let abi = *CAPTURE_ABIS.get(usize::from(raw.abi)).ok_or_else(|| {
            CollectError::Ebpf(format!("sm_denied holds an unknown ABI {}", raw.abi))
        })?;
        *out.entry(DenialKey {
            abi,
            nr: raw.nr,
            action,
        })
        .or_default() += n;
        Ok(())
    }

    /// Denials the kernel could not count, over all workloads: `(lost,
    /// unnamed)`: lost because `sm_denied` was full ([`DENIED_KEYS`]), and
    /// unnamed because the number was beyond the capture's table. Both
    /// zero means every denial is in [`EbpfCollector::denials_of`].
    pub fn denials_uncounted(&self) -> Result<(u64, u64)> {
        let sum = |i: u32| -> Result<u64> {
            let v = self
                .maps
                .diag
                .get(&i, 0)
                .map_err(|e| map_err("reading sm_diag", e))?;
            Ok(v.iter().sum())
        };
        Ok((sum(DIAG_DENIALS_LOST)?, sum(DIAG_DENIALS_UNNAMED)?))
    }

    /// Every workload the kernel program is counting.
    pub fn keys(&self) -> Result<Vec<WorkloadKey>> {
        let mut keys: Vec<WorkloadKey> = self
            .maps
            .slot
            .keys()
            .collect::<Result<_, _>>()
            .map_err(|e| CollectError::Ebpf(format!("listing sm_slot: {e}")))?;
        keys.sort();
        Ok(keys)
    }

    /// The workloads that found no free slot (over capacity), each with
    /// the calls it lost so far and the cgroup it was in. They are not in
    /// [`EbpfCollector::keys`] unless they got a slot later.
    pub fn over_capacity(&self) -> Result<Vec<(WorkloadKey, u64, CgroupName)>> {
        let mut out = Vec::new();
        for kv in self.maps.lost.iter() {
            let (k, v) = kv.map_err(|e| CollectError::Ebpf(format!("listing sm_lost: {e}")))?;
            out.push((k, v.calls, v.name));
        }
        out.sort_by_key(|(k, _, _)| *k);
        Ok(out)
    }

    /// Calls of `key` that were not counted: made while it had no slot
    /// (over capacity), or of a syscall beyond its first [`NR_DENSE`]
    /// distinct ones. Non-zero means `key`'s observation is incomplete.
    pub fn lost_calls_of(&self, key: &WorkloadKey) -> Result<u64> {
        let in_slot = self.work_of(key)?.map_or(0, |(_, w)| w.lost_calls);
        let no_slot = match self.maps.lost.get(key, 0) {
            Ok(l) => l.calls,
            Err(e) if is_not_found(&e) => 0,
            Err(e) => return Err(map_err("reading sm_lost", e)),
        };
        Ok(in_slot + no_slot)
    }

    /// Calls of workloads that had no slot, over all workloads (the sum of
    /// [`EbpfCollector::over_capacity`]'s, including workloads the full
    /// `sm_lost` could not name). Zero means nothing was lost that way.
    pub fn lost_calls(&self) -> Result<u64> {
        let v = self
            .maps
            .diag
            .get(&DIAG_LOST_CALLS, 0)
            .map_err(|e| map_err("reading sm_diag", e))?;
        Ok(v.iter().sum())
    }

    /// What the kernel recorded when it started tracking `key` by itself.
    pub fn info(&self, key: &WorkloadKey) -> Result<Option<WorkloadInfo>> {
        Ok(self.work_of(key)?.and_then(|(_, w)| {
            (w.created_ns != 0).then_some(WorkloadInfo {
                parent_cgroup_id: w.parent_cgroup_id,
                created_ns: w.created_ns,
                mntns_inum: w.mntns_inum,
                creator_tgid: w.creator_tgid,
                creator_comm: w.creator_comm,
            })
        }))
    }

    /// The distinct argument values `key`'s calls passed so far, per
    /// syscall of [`ARG_TRACKS`] (see [`args`] for which arguments, their
    /// masks and bounds), each with its overflow count: a set whose
    /// overflow is non-zero is incomplete. Empty when `key` is not
    /// tracked or made none of those calls. Values stay until
    /// [`EbpfCollector::untrack`].
    pub fn args_of(&self, key: &WorkloadKey) -> Result<Args> {
        let Some((idx, _)) = self.work_of(key)? else {
            return Ok(Args::new());
        };
        let raw = self
            .maps
            .args
            .get(&idx, 0)
            .map_err(|e| map_err("reading sm_args", e))?;
        // The slot may have been freed and given to another workload
        // between the two reads: then the values are not `key`'s.
        if self.work_of(key)?.map(|(i, _)| i) != Some(idx) {
            return Ok(Args::new());
        }
        args::decode(&raw).map_err(CollectError::Ebpf)
    }

    /// [`EbpfCollector::args_of`] of every tracked workload that recorded
    /// a value or an overflow.
    pub fn args(&self) -> Result<std::collections::HashMap<WorkloadKey, Args>> {
        let mut out = std::collections::HashMap::new();
        for key in self.keys()? {
            let a = self.args_of(&key)?;
            if !a.is_empty() {
                out.insert(key, a);
            }
        }
        Ok(out)
    }

    /// The names of the cgroup the kernel saw `key` created in.
    pub fn cgroup_name(&self, key: &WorkloadKey) -> Result<Option<CgroupName>> {
        let Some((idx, w)) = self.work_of(key)? else {
            return Ok(None);
        };
        if w.created_ns == 0 {
            return Ok(None);
        }
        self.maps
            .names
            .get(&idx, 0)
            .map(Some)
            .map_err(|e| map_err("reading sm_cgname", e))
    }

    /// A snapshot of what `key` did so far, exact: per (ABI, number), the
    /// spilled count plus every CPU's counter, and its recorded argument
    /// values ([`EbpfCollector::args_of`]). Empty when `key` is not
    /// tracked.
    pub fn observe(&self, key: &WorkloadKey) -> Result<Observation> {
        // A spill (add to the shared total, then reset the per-CPU counter)
        // between two reads of the shared state shows as a change of
        // `spill`; a snapshot with none in between is consistent. Spills
        // come at most once per SPILL calls of one syscall on one CPU, so
        // a retry almost always succeeds.
        for _ in 0..1000 {
            let Some((idx, before)) = self.work_of(key)? else {
                return Ok(Observation::default());
            };
            let counts = self
                .maps
                .counts
                .get(&idx, 0)
                .map_err(|e| map_err("reading sm_counts", e))?;
            let Some((_, after)) = self.work_of(key)? else {
                return Ok(Observation::default());
            };
            if before.spill == after.spill {
                let mut obs = fold(&after, counts.iter());
                obs.args = args::to_sets(&self.args_of(key)?);
                return Ok(obs);
            }
        }
        Err(CollectError::Ebpf(format!(
            "reading {key:?}: its counters kept spilling during 1000 reads"
        )))
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

fn zeroed_work() -> RawWork {
    RawWork {
        key: WorkloadKey {
            cgroup_id: 0,
            mntns_id: 0,
        },
        parent_cgroup_id: 0,
        created_ns: 0,
        mntns_inum: 0,
        creator_tgid: 0,
        creator_comm: [0; 16],
        post_exec: 0,
        nr_dense: 0,
        lost_calls: 0,
        out_of_range: 0,
        bits: [[[0; NR_WORDS]; NR_ABIS]; NR_PHASES],
        dense: [[0; NR_SLOTS]; NR_ABIS],
        spill: [0; NR_DENSE],
    }
}

fn zeroed_name() -> CgroupName {
    CgroupName {
        leaf: [0; CGNAME_LEN],
        parent: [0; CGNAME_LEN],
        hierarchy: 0,
        level: 0,
    }
}

/// The exact counts and phases of one workload: per (ABI, number) with a
/// dense index, its spill plus every CPU's counter; the phases from the
/// shared bitmaps.
fn fold<'a>(w: &RawWork, copies: impl Iterator<Item = &'a RawCounts>) -> Observation {
    let mut per_dense = [0u64; NR_DENSE];
    for c in copies {
        for (total, n) in per_dense.iter_mut().zip(c.n.iter()) {
            *total += u64::from(*n);
        }
    }
    for (total, s) in per_dense.iter_mut().zip(w.spill.iter()) {
        *total += s;
    }
    let mut obs = Observation {
        out_of_range: w.out_of_range,
        ..Observation::default()
    };
    for (a, abi) in CAPTURE_ABIS.iter().enumerate() {
        for nr in 0..NR_SLOTS {
            let (word, bit) = (nr / 64, 1u64 << (nr % 64));
            let d = w.dense[a][nr] as usize;
            let mut u = schemas::SyscallUse {
                calls: if (1..=NR_DENSE).contains(&d) {
                    per_dense[d - 1]
                } else {
                    0
                },
                ..Default::default()
            };
            for (p, phase) in Phase::ALL.iter().enumerate() {
                if w.bits[p][a][word] & bit != 0 {
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
