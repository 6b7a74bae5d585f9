//! What the collector daemon needs from the host, checked before it
//! touches anything, so that a missing privilege is one clear line rather
//! than a verifier error or, worse, a collector that runs and miscounts.
//!
//! The least set, measured on Linux 6.18 (`tests/privileges_cli.rs` runs
//! the real `sandmine collect` under exactly this set, and under each set
//! with one of them missing):
//!
//! - `CAP_BPF`: create the maps, load the program, open the pins;
//! - `CAP_PERFMON`: load and attach a tracing program (`tp_btf`) that
//!   reads kernel memory;
//! - `CAP_SYS_PTRACE`: read other processes' `/proc/PID/ns/mnt`. Without
//!   it the collector still starts and counts, but cannot see that a
//!   container is alive: every container looks exited at every tick, its
//!   kernel keys are deleted after each delta, and calls made between the
//!   read and the deletion are lost (measured: 297,965 of 300,000 calls).
//!   So its absence is an error, not a warning.
//!
//! `CAP_SYS_ADMIN` implies `CAP_BPF` and `CAP_PERFMON` (the kernel's
//! `bpf_capable`/`perfmon_capable`), not `CAP_SYS_PTRACE`. No
//! `CAP_SYS_RESOURCE`: maps are charged to the memory cgroup since Linux
//! 5.11, and the collector needs 6.10 or later anyway (`NS_GET_MNTNS_ID`).
//! No `CAP_SYS_ADMIN` either, as long as bpffs is mounted (the collector
//! mounts it only when it is not), and no `CAP_DAC_*` as long as the state
//! and pin directories are the collector's user's.

use super::DaemonError;
use std::path::Path;

const CAP_SYS_PTRACE: u32 = 19;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Every capability the collector needs: number, name, what for.
pub const NEEDED: [(u32, &str, &str); 3] = [
    (
        CAP_BPF,
        "CAP_BPF",
        "to load its eBPF program and read its maps",
    ),
    (
        CAP_PERFMON,
        "CAP_PERFMON",
        "to attach its program to the syscall tracepoints",
    ),
    (
        CAP_SYS_PTRACE,
        "CAP_SYS_PTRACE",
        "to read other processes' /proc/PID/ns/mnt and so tell a live container from an exited one",
    ),
];

/// The names of the needed capabilities that `effective` (a `CapEff`
/// bit set) lacks, in the order of [`NEEDED`].
pub fn missing(effective: u64) -> Vec<&'static str> {
    let has = |bit: u32| effective & (1u64 << bit) != 0;
    NEEDED
        .iter()
        .filter(|(bit, _, _)| {
            let implied = *bit != CAP_SYS_PTRACE && has(CAP_SYS_ADMIN);
            !(has(*bit) || implied)
        })
        .map(|(_, name, _)| *name)
        .collect()
}

/// The one-line message for what `missing` returned (`None`: nothing).
pub fn message(missing: &[&str]) -> Option<String> {
    if missing.is_empty() {
        return None;
    }
    let why: Vec<String> = NEEDED
        .iter()
        .filter(|(_, name, _)| missing.contains(name))
        .map(|(_, name, why)| format!("{name} {why}"))
        .collect();
    Some(format!(
        "missing {} {} ({}); the collector needs CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE (`sandmine collect --help`)",
        if missing.len() == 1 {
            "capability"
        } else {
            "capabilities"
        },
        missing.join(", "),
        why.join("; ")
    ))
}

/// Checks this process's effective capabilities.
pub fn check() -> Result<(), DaemonError> {
    let caps = crate::ebpf::effective_caps()?;
    match message(&missing(caps)) {
        Some(m) => Err(DaemonError::Privileges(m)),
        None => Ok(()),
    }
}

/// `proc_root` must be a mounted proc file system (`collector.proc_root`).
pub fn check_proc_root(proc_root: &Path) -> Result<(), DaemonError> {
    let c = std::ffi::CString::new(proc_root.as_os_str().as_encoded_bytes()).map_err(|_| {
        DaemonError::Privileges(format!(
            "collector.proc_root {} contains a NUL byte",
            proc_root.display()
        ))
    })?;
    // SAFETY: statfs writes one struct through a valid pointer; the path
    // is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(DaemonError::io(
            format!("collector.proc_root {}", proc_root.display()),
            std::io::Error::last_os_error(),
        ));
    }
    if st.f_type != libc::PROC_SUPER_MAGIC {
        return Err(DaemonError::Privileges(format!(
            "collector.proc_root {} is not a proc file system (mount the host's /proc there, read-only)",
            proc_root.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: u64 = (1 << CAP_BPF) | (1 << CAP_PERFMON) | (1 << CAP_SYS_PTRACE);

    #[test]
    fn names_each_missing_capability() {
        assert!(missing(ALL).is_empty());
        assert_eq!(missing(ALL & !(1 << CAP_BPF)), ["CAP_BPF"]);
        assert_eq!(missing(ALL & !(1 << CAP_PERFMON)), ["CAP_PERFMON"]);
        assert_eq!(missing(ALL & !(1 << CAP_SYS_PTRACE)), ["CAP_SYS_PTRACE"]);
        assert_eq!(missing(0), ["CAP_BPF", "CAP_PERFMON", "CAP_SYS_PTRACE"]);
        // CAP_SYS_ADMIN stands for CAP_BPF and CAP_PERFMON, not CAP_SYS_PTRACE.
        assert_eq!(missing(1 << CAP_SYS_ADMIN), ["CAP_SYS_PTRACE"]);
        assert!(missing((1 << CAP_SYS_ADMIN) | (1 << CAP_SYS_PTRACE)).is_empty());
    }

    #[test]
    fn the_message_is_one_line_naming_what_is_missing() {
        assert_eq!(message(&[]), None);
        assert_eq!(
            message(&["CAP_PERFMON"]).unwrap(),
            "missing capability CAP_PERFMON (CAP_PERFMON to attach its program to the syscall tracepoints); the collector needs CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE (`sandmine collect --help`)"
        );
        let two = message(&["CAP_BPF", "CAP_SYS_PTRACE"]).unwrap();
        assert!(
            two.starts_with("missing capabilities CAP_BPF, CAP_SYS_PTRACE (CAP_BPF to load"),
            "{two}"
        );
        assert!(!two.contains('\n'));
    }

    #[test]
    fn proc_root_must_be_a_proc_file_system() {
        check_proc_root(Path::new("/proc")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let e = check_proc_root(dir.path()).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "collector.proc_root {} is not a proc file system (mount the host's /proc there, read-only)",
                dir.path().display()
            )
        );
        let gone = dir.path().join("nope");
        let e = check_proc_root(&gone).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("collector.proc_root {}", gone.display())
        );
    }
}
