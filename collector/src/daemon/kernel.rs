//! The kernel side of the daemon: the aggregator loaded in auto-track mode
//! with its maps and links pinned under a bpffs directory, so that it keeps
//! counting while the daemon is down (crash, upgrade, restart).
//!
//! Pin directory layout:
//!
//! ```text
//! <pin_dir>/build-<hash>/sm_stats, sm_info, sm_cgname, sm_diag   the maps
//! <pin_dir>/build-<hash>/link-sm_sys_enter, link-sm_sched_exec    the attachments
//! ```
//!
//! `<hash>` is the build hash: the BPF object's bytes plus the load-time
//! globals (bpffs holds only BPF objects, so the hash is in the directory's
//! name rather than in a file). A daemon starting finds its own build's
//! directory complete and re-opens the pinned maps; the program never
//! stopped. Another build's directory (or an incomplete one, from a crash
//! while loading) is unpinned (its program detaches) and this build's
//! program is loaded and pinned. Calls made between the two,
//! and counts of the old maps not yet published, are lost: a small gap
//! once per upgrade, reported by [`Kernel::fresh`].

use super::DaemonError;
use crate::ebpf::{self, CgroupName, RawStats, WorkloadInfo, WorkloadKey};
use aya::maps::{HashMap as BpfHashMap, Map, MapData, PerCpuArray, PerCpuHashMap};
use aya::programs::links::FdLink;
use aya::programs::links::PinnedLink;
use aya::programs::BtfTracePoint;
use aya::{Btf, EbpfLoader};
use schemas::Observation;
use std::path::Path;

const PINNED_MAPS: [&str; 4] = ["sm_stats", "sm_info", "sm_cgname", "sm_diag"];
const PROGRAMS: [(&str, &str); 2] = [
    ("sm_sys_enter", "sys_enter"),
    ("sm_sched_exec", "sched_process_exec"),
];

/// The pinned maps of a running aggregator.
pub struct Kernel {
    stats: PerCpuHashMap<MapData, WorkloadKey, RawStats>,
    info: BpfHashMap<MapData, WorkloadKey, WorkloadInfo>,
    names: BpfHashMap<MapData, WorkloadKey, CgroupName>,
    diag: PerCpuArray<MapData, u64>,
    fresh: bool,
}

fn e(what: impl std::fmt::Display) -> DaemonError {
    DaemonError::Kernel(what.to_string())
}

/// FNV-1a: a stable 64-bit hash with no dependency (identity, not security).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in *p {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Mount bpffs on /sys/fs/bpf when no bpffs holds `pin_dir`, then create it.
fn ensure_bpffs(pin_dir: &Path) -> Result<(), DaemonError> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|err| DaemonError::io("reading /proc/self/mountinfo", err))?;
    let on_bpffs = mountinfo.lines().any(|l| {
        let Some((left, right)) = l.split_once(" - ") else {
            return false;
        };
        right.split_whitespace().next() == Some("bpf")
            && left
                .split_whitespace()
                .nth(4)
                .is_some_and(|mp| pin_dir.starts_with(mp))
    });
    if !on_bpffs {
        let target = c"/sys/fs/bpf";
        // SAFETY: valid NUL-terminated strings; a null data pointer is allowed.
        let rc = unsafe {
            libc::mount(
                c"bpf".as_ptr(),
                target.as_ptr(),
                c"bpf".as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        if rc != 0 {
            return Err(e(format_args!(
                "{} is not on a bpffs and mounting bpffs on /sys/fs/bpf failed: {}",
                pin_dir.display(),
                std::io::Error::last_os_error()
            )));
        }
        log::info!("mounted bpffs on /sys/fs/bpf");
    }
    std::fs::create_dir_all(pin_dir)
        .map_err(|err| DaemonError::io(format!("creating {}", pin_dir.display()), err))
}

impl Kernel {
    /// Re-open the pinned aggregator under `pin_dir`, or load and pin it.
    pub fn open_or_load(pin_dir: &Path) -> Result<Kernel, DaemonError> {
        ebpf::check_available().map_err(e)?;
        ensure_bpffs(pin_dir)?;
        let host_mntns = ebpf::mntns_id("1")
            .or_else(|_| ebpf::mntns_id("self"))
            .map_err(e)?;
        let nr_cpus = aya::util::nr_cpus()
            .map_err(|(what, err)| e(format_args!("counting CPUs ({what}): {err}")))?;
        let cpus: u32 = nr_cpus
            .try_into()
            .map_err(|_| e(format_args!("{nr_cpus} CPUs is too many")))?;
        let hash = format!(
            "{:016x}",
            fnv1a(&[ebpf::OBJECT, &host_mntns.to_le_bytes(), &cpus.to_le_bytes()])
        );
        let dir = pin_dir.join(format!("build-{hash}"));
        let mut fresh = false;
        let reusable = PINNED_MAPS.iter().all(|m| dir.join(m).exists())
            && PROGRAMS
                .iter()
                .all(|(p, _)| PinnedLink::from_pin(dir.join(format!("link-{p}"))).is_ok());
        if !reusable {
            let others = unpin_all(pin_dir)?;
            if others > 0 {
                log::warn!(
                    "replaced the pinned aggregator in {} ({others} pinned objects of another or an incomplete build; this is build {hash}): calls made during the switch and its unpublished counts are lost",
                    pin_dir.display(),
                );
            }
            std::fs::create_dir_all(&dir)
                .map_err(|err| DaemonError::io(format!("creating {}", dir.display()), err))?;
            load_and_pin(&dir, host_mntns, cpus)?;
            fresh = true;
        }
        let open = |name: &str| -> Result<Map, DaemonError> {
            let path = dir.join(name);
            let data = MapData::from_pin(&path)
                .map_err(|err| e(format_args!("opening {}: {err}", path.display())))?;
            Map::from_map_data(data).map_err(|err| e(format_args!("{name}: {err}")))
        };
        Ok(Kernel {
            stats: PerCpuHashMap::try_from(open("sm_stats")?)
                .map_err(|err| e(format_args!("sm_stats: {err}")))?,
            info: BpfHashMap::try_from(open("sm_info")?)
                .map_err(|err| e(format_args!("sm_info: {err}")))?,
            names: BpfHashMap::try_from(open("sm_cgname")?)
                .map_err(|err| e(format_args!("sm_cgname: {err}")))?,
            diag: PerCpuArray::try_from(open("sm_diag")?)
                .map_err(|err| e(format_args!("sm_diag: {err}")))?,
            fresh,
        })
    }

    /// True when this open loaded the program (no usable pinned one): the
    /// kernel's counters started from zero.
    pub fn fresh(&self) -> bool {
        self.fresh
    }

    pub fn keys(&self) -> Result<Vec<WorkloadKey>, DaemonError> {
        let mut keys: Vec<WorkloadKey> = self
            .stats
            .keys()
            .collect::<Result<_, _>>()
            .map_err(|err| e(format_args!("listing sm_stats: {err}")))?;
        keys.sort();
        Ok(keys)
    }

    /// Cumulative counts of `key`, summed over CPUs.
    pub fn observe(&self, key: &WorkloadKey) -> Result<Option<Observation>, DaemonError> {
        match self.stats.get(key, 0) {
            Ok(v) => Ok(Some(ebpf::fold(v.iter()))),
            Err(err) if ebpf::is_not_found(&err) => Ok(None),
            Err(err) => Err(e(ebpf::map_err(format_args!("reading {key:?}"), err))),
        }
    }

    pub fn info(&self, key: &WorkloadKey) -> Result<Option<WorkloadInfo>, DaemonError> {
        match self.info.get(key, 0) {
            Ok(v) => Ok(Some(v)),
            Err(err) if ebpf::is_not_found(&err) => Ok(None),
            Err(err) => Err(e(ebpf::map_err("reading sm_info", err))),
        }
    }

    pub fn cgroup_name(&self, key: &WorkloadKey) -> Result<Option<CgroupName>, DaemonError> {
        match self.names.get(key, 0) {
            Ok(v) => Ok(Some(v)),
            Err(err) if ebpf::is_not_found(&err) => Ok(None),
            Err(err) => Err(e(ebpf::map_err("reading sm_cgname", err))),
        }
    }

    /// Forget `key` in the kernel (its workload is gone and published).
    pub fn remove(&mut self, key: &WorkloadKey) -> Result<(), DaemonError> {
        let ok = |r: Result<(), aya::maps::MapError>| match r {
            Ok(()) => Ok(()),
            Err(err) if ebpf::is_not_found(&err) => Ok(()),
            Err(err) => Err(e(ebpf::map_err(format_args!("removing {key:?}"), err))),
        };
        ok(self.stats.remove(key))?;
        ok(self.info.remove(key))?;
        ok(self.names.remove(key))
    }

    /// Calls the kernel could not count (it failed to start tracking a new
    /// workload: map full, or allocation failure).
    pub fn lost_calls(&self) -> Result<u64, DaemonError> {
        let v = self
            .diag
            .get(&0, 0)
            .map_err(|err| e(ebpf::map_err("reading sm_diag", err)))?;
        Ok(v.iter().sum())
    }
}

/// Remove every pinned build under `pin_dir` (links first, which detaches
/// the programs, then maps), leaving `pin_dir` itself. Returns how many
/// objects were unpinned.
pub fn unpin_all(pin_dir: &Path) -> Result<usize, DaemonError> {
    let mut n = 0;
    let entries = match std::fs::read_dir(pin_dir) {
        Ok(e) => e,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(err) => {
            return Err(DaemonError::io(
                format!("listing {}", pin_dir.display()),
                err,
            ))
        }
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        if !entry.file_name().to_string_lossy().starts_with("build-") {
            continue;
        }
        for (p, _) in PROGRAMS {
            n += rm(&dir.join(format!("link-{p}")))?;
        }
        if let Ok(rest) = std::fs::read_dir(&dir) {
            for f in rest.flatten() {
                n += rm(&f.path())?;
            }
        }
        std::fs::remove_dir(&dir)
            .map_err(|err| DaemonError::io(format!("removing {}", dir.display()), err))?;
    }
    Ok(n)
}

/// Unpin everything and remove `pin_dir`: the aggregator stops counting.
pub fn remove_pins(pin_dir: &Path) -> Result<(), DaemonError> {
    unpin_all(pin_dir)?;
    match std::fs::remove_dir(pin_dir) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(DaemonError::io(
            format!("removing {}", pin_dir.display()),
            err,
        )),
    }
}

fn rm(path: &Path) -> Result<usize, DaemonError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(1),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(err) => Err(DaemonError::io(format!("removing {}", path.display()), err)),
    }
}
fn load_and_pin(pin_dir: &Path, host_mntns: u64, cpus: u32) -> Result<(), DaemonError> {
    let btf = Btf::from_sys_fs().map_err(|err| e(format_args!("reading kernel BTF: {err}")))?;
    let auto: u32 = 1;
    let mut loader = EbpfLoader::new();
    loader
        .btf(Some(&btf))
        .override_global("host_mntns_id", &host_mntns, true)
        .override_global("auto_track", &auto, true)
        .override_global("nr_cpus", &cpus, true);
    for m in PINNED_MAPS {
        loader.map_pin_path(m, pin_dir.join(m));
    }
    let mut bpf = loader
        .load(ebpf::OBJECT)
        .map_err(|err| e(format_args!("loading the BPF object: {err}")))?;
    for (prog, hook) in PROGRAMS {
        let p: &mut BtfTracePoint = bpf
            .program_mut(prog)
            .ok_or_else(|| e(format_args!("program {prog} missing from the object")))?
            .try_into()
            .map_err(|err| e(format_args!("{prog}: {err}")))?;
        p.load(hook, &btf)
            .map_err(|err| e(format_args!("verifier rejected {prog}: {err}")))?;
        let id = p
            .attach()
            .map_err(|err| e(format_args!("attaching {prog} to {hook}: {err}")))?;
        let link = p
            .take_link(id)
            .map_err(|err| e(format_args!("taking the link of {prog}: {err}")))?;
        let fd: FdLink = link.into();
        let path = pin_dir.join(format!("link-{prog}"));
        fd.pin(&path)
            .map_err(|err| e(format_args!("pinning {}: {err}", path.display())))?;
    }
    // Dropping `bpf` closes our fds; the pins keep maps and programs alive.
    Ok(())
}
