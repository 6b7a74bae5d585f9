//! Pinning the in-kernel syscall counter for the daemon: loaded in
//! auto-track mode with its maps and links pinned under a bpffs directory,
//! so that it keeps counting while the daemon is down (crash, upgrade,
//! restart). The maps are read through the same handle as on a single
//! host, [`EbpfCollector`].
//!
//! Pin directory layout:
//!
//! ```text
//! <pin_dir>/build-<hash>/sm_slot, sm_free, sm_work, sm_counts, ...   the maps
//! <pin_dir>/build-<hash>/link-sm_sys_enter, link-sm_sched_exec        the attachments
//! ```
//!
//! `<hash>` is the build hash: the BPF object's bytes plus the load-time
//! settings (globals and capacity; bpffs holds only BPF objects, so the
//! hash is in the directory's name rather than in a file). A daemon
//! starting finds its own build's directory complete and re-opens the
//! pinned maps; the program never stopped. Another build's directory (or
//! an incomplete one, from a crash while loading) is unpinned (its program
//! detaches) and this build's program is loaded and pinned. Calls made
//! between the two, and counts of the old maps not yet published, are
//! lost: a small gap once per upgrade, reported by
//! [`EbpfCollector::fresh`].

use super::DaemonError;
use crate::ebpf::{self, EbpfCollector, EbpfOptions, DENIAL_PROGRAMS, MAPS, PROGRAMS};
use crate::CollectError;
use aya::programs::links::{FdLink, PinnedLink};
use aya::programs::tp_btf::BtfTracePointLinkId;
use aya::programs::BtfTracePoint;
use std::path::Path;

impl From<CollectError> for DaemonError {
    fn from(err: CollectError) -> Self {
        DaemonError::Kernel(err.to_string())
    }
}

/// A failure to load, open or pin the counter, as the daemon reports it.
fn kernel_error(what: impl std::fmt::Display) -> DaemonError {
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
            return Err(kernel_error(format_args!(
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

/// Re-open the pinned counter under `pin_dir`, or load and pin it, in
/// auto-track mode with `max_workloads` slots.
pub fn open_or_load(pin_dir: &Path, max_workloads: u32) -> Result<EbpfCollector, DaemonError> {
    open_or_load_in(pin_dir, max_workloads, Path::new("/proc"))
}

/// [`open_or_load`], with the host's mount namespace read from pid 1 under
/// `proc_root` (`collector.proc_root`).
pub fn open_or_load_in(
    pin_dir: &Path,
    max_workloads: u32,
    proc_root: &Path,
) -> Result<EbpfCollector, DaemonError> {
    ebpf::check_available()?;
    ensure_bpffs(pin_dir)?;
    let host_mntns = ebpf::host_mntns_id_in(proc_root)?;
    let cpus = ebpf::nr_cpus()? as u64;
    let hash = format!(
        "{:016x}",
        fnv1a(&[
            ebpf::OBJECT,
            &host_mntns.to_le_bytes(),
            &cpus.to_le_bytes(),
            &max_workloads.to_le_bytes(),
            &ebpf::args::fingerprint(),
        ])
    );
    let dir = pin_dir.join(format!("build-{hash}"));
    let reusable = MAPS.iter().all(|m| dir.join(m).exists())
        && PROGRAMS
            .iter()
            .all(|(p, _)| PinnedLink::from_pin(dir.join(format!("link-{p}"))).is_ok());
    if reusable {
        return Ok(EbpfCollector::from_pins(&dir, false)?);
    }
    let others = unpin_all(pin_dir)?;
    if others > 0 {
        log::warn!(
            "replaced the pinned counter in {} ({others} pinned objects of another or an incomplete build; this is build {hash}): calls made during the switch and its unpublished counts are lost",
            pin_dir.display(),
        );
    }
    std::fs::create_dir_all(&dir)
        .map_err(|err| DaemonError::io(format!("creating {}", dir.display()), err))?;
    let opts = EbpfOptions {
        auto_track: true,
        max_workloads,
    };
    let (bpf, links) = ebpf::load_object(&opts, host_mntns, Some(&dir))?;
    pin_links(&dir, bpf, links)?;
    Ok(EbpfCollector::from_pins(&dir, true)?)
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
        for (p, _) in PROGRAMS.iter().chain(DENIAL_PROGRAMS.iter()) {
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
/// Pin the links of a loaded object; dropping it then closes only our
/// fds, and the pins keep maps and programs alive.
fn pin_links(
    pin_dir: &Path,
    mut bpf: aya::Ebpf,
    links: Vec<(&'static str, BtfTracePointLinkId)>,
) -> Result<(), DaemonError> {
    for (prog, id) in links {
        let p: &mut BtfTracePoint = bpf
            .program_mut(prog)
            .ok_or_else(|| kernel_error(format_args!("program {prog} missing from the object")))?
            .try_into()
            .map_err(|err| kernel_error(format_args!("{prog}: {err}")))?;
        let link = p
            .take_link(id)
            .map_err(|err| kernel_error(format_args!("taking the link of {prog}: {err}")))?;
        let fd: FdLink = link.into();
        let path = pin_dir.join(format!("link-{prog}"));
        fd.pin(&path)
            .map_err(|err| kernel_error(format_args!("pinning {}: {err}", path.display())))?;
    }
    Ok(())
}
