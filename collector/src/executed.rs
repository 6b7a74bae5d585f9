//! The files a process runs as code, read from the proc file system: its
//! executable and its executable file mappings, as paths inside its own
//! root (the kernel writes them relative to the process's mount
//! namespace), with the device and inode they named when read.
//!
//! Shared by `mine-image` (every process of the mined container, at each
//! poll) and the collector daemon (every process of each tracked
//! container's mount namespace, at each tick). Both sample: a process
//! that lives less than one poll or tick interval can be missed, and the
//! report of what was analysed says which files were seen, never more.

use schemas::{ExecKind, ExecutedFile, ExecutedFiles};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Adds what process `pid` (under `proc_root`) runs as code to `out`.
/// A process that exits while it is read, or a file that is not a plain
/// absolute path (a runtime's `memfd:` executable), is skipped: only
/// files that [`ExecutedFile::check`] accepts are added.
///
/// A process whose executable is not the file its path names inside the
/// process's own root is the runtime's, not the container's, and is
/// skipped with its mappings: runc's `init` runs in the container's mount
/// namespace from a copy of the host's runc (its path reads `/`) and maps
/// the host's libc and libseccomp, which the image does not hold.
pub fn sample_pid(proc_root: &Path, pid: &str, out: &mut ExecutedFiles) {
    let dir = proc_root.join(pid);
    let (Ok(exe), Ok(meta)) = (
        std::fs::read_link(dir.join("exe")),
        std::fs::metadata(dir.join("exe")),
    ) else {
        return;
    };
    let path = exe.to_string_lossy();
    let path = path.trim_end_matches(" (deleted)");
    let in_root = std::fs::metadata(dir.join("root").join(path.trim_start_matches('/')))
        .is_ok_and(|m| m.is_file() && m.dev() == meta.dev() && m.ino() == meta.ino());
    if !in_root {
        return;
    }
    add(
        out,
        ExecutedFile {
            path: path.to_string(),
            kind: ExecKind::Exec,
            dev: meta.dev(),
            ino: meta.ino(),
        },
    );
    let Ok(maps) = std::fs::read_to_string(dir.join("maps")) else {
        return;
    };
    for line in maps.lines() {
        if let Some(f) = mapped_file(line) {
            add(out, f);
        }
    }
}

/// Adds `f` unless it is no file of the container: a path the wire
/// refuses, or a memfd (runc runs its `init` from a sealed memfd copy of
/// itself, `/memfd:runc_cloned:/proc/self/exe`, which no image holds).
fn add(out: &mut ExecutedFiles, f: ExecutedFile) {
    if f.check().is_ok() && !f.path.starts_with("/memfd:") {
        out.insert(f);
    }
}

/// The file of one `/proc/PID/maps` line, if it is mapped executable:
/// `address perms offset dev inode path`, with `dev` as `major:minor` in
/// hex.
fn mapped_file(line: &str) -> Option<ExecutedFile> {
    let mut f = line.split_ascii_whitespace();
    let perms = f.nth(1)?;
    if perms.as_bytes().get(2) != Some(&b'x') {
        return None;
    }
    let dev = f.nth(1)?;
    let ino = f.next()?.parse::<u64>().ok()?;
    // The path is the rest of the line (it may hold spaces).
    let path = line.splitn(6, |c: char| c.is_ascii_whitespace()).nth(5)?;
    let path = path.trim_start();
    if !path.starts_with('/') {
        return None;
    }
    let (major, minor) = dev.split_once(':')?;
    let major = u64::from_str_radix(major, 16).ok()?;
    let minor = u64::from_str_radix(minor, 16).ok()?;
    Some(ExecutedFile {
        path: path.trim_end_matches(" (deleted)").to_string(),
        kind: ExecKind::Mapped,
        dev: makedev(major, minor),
        ino,
    })
}

/// A stable 64-bit fingerprint of `f` (FNV-1a over its fields): what the
/// daemon's committed state keeps of each file it has sent, so that a
/// container's state grows by 8 bytes per file, not by its path.
pub fn fingerprint(f: &ExecutedFile) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(f.path.as_bytes());
    eat(&[0, f.kind.code()]);
    eat(&f.dev.to_le_bytes());
    eat(&f.ino.to_le_bytes());
    h
}

/// glibc's `makedev`: what `stat` reports as `st_dev` for that pair.
fn makedev(major: u64, minor: u64) -> u64 {
    ((major & 0xffff_f000) << 32)
        | ((major & 0xfff) << 8)
        | ((minor & 0xffff_ff00) << 12)
        | (minor & 0xff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executable_mappings_are_parsed_with_their_device_and_inode() {
        let line = "7f1c2a400000-7f1c2a428000 r-xp 00028000 fd:01 1835073                    /usr/lib/x86_64-linux-gnu/libc.so.6";
        assert_eq!(
            mapped_file(line),
            Some(ExecutedFile {
                path: "/usr/lib/x86_64-linux-gnu/libc.so.6".into(),
                kind: ExecKind::Mapped,
                dev: makedev(0xfd, 1),
                ino: 1_835_073,
            })
        );
        let spaced = "00400000-00401000 r-xp 00000000 08:03 42 /opt/my app/bin (deleted)";
        assert_eq!(
            mapped_file(spaced).map(|f| f.path),
            Some("/opt/my app/bin".into())
        );
        for not in [
            "7f1c2a428000-7f1c2a57d000 r--p 00028000 fd:01 1835073 /usr/lib/libc.so.6",
            "7ffd1b5e9000-7ffd1b5eb000 r-xp 00000000 00:00 0                          [vdso]",
            "7f1c2a400000-7f1c2a428000 r-xp 00000000 00:00 0 ",
        ] {
            assert_eq!(mapped_file(not), None, "{not}");
        }
    }

    #[test]
    fn fingerprints_are_stable_and_tell_files_apart() {
        let f = |path: &str, kind| ExecutedFile {
            path: path.into(),
            kind,
            dev: 2049,
            ino: 7,
        };
        // Pinned: the committed state files keep these.
        assert_eq!(
            fingerprint(&f("/bin/sh", ExecKind::Exec)),
            fingerprint(&f("/bin/sh", ExecKind::Exec))
        );
        assert_ne!(
            fingerprint(&f("/bin/sh", ExecKind::Exec)),
            fingerprint(&f("/bin/sh", ExecKind::Mapped))
        );
        assert_ne!(
            fingerprint(&f("/bin/sh", ExecKind::Exec)),
            fingerprint(&f("/bin/bash", ExecKind::Exec))
        );
    }

    #[test]
    fn a_memfd_is_no_file_of_the_container() {
        let mut out = ExecutedFiles::new();
        let f = |path: &str| ExecutedFile {
            path: path.into(),
            kind: ExecKind::Exec,
            dev: 1,
            ino: 1,
        };
        add(&mut out, f("/memfd:runc_cloned:/proc/self/exe"));
        add(&mut out, f("relative/x"));
        add(&mut out, f("/bin/sh"));
        assert_eq!(out, ExecutedFiles::from([f("/bin/sh")]));
    }

    #[test]
    fn makedev_matches_stat() {
        let m = std::fs::metadata("/proc/self/exe").expect("stat");
        let major = (m.dev() >> 8) & 0xfff | ((m.dev() >> 32) & !0xfff);
        let minor = (m.dev() & 0xff) | ((m.dev() >> 12) & !0xff);
        assert_eq!(makedev(major, minor), m.dev());
    }

    #[test]
    fn this_process_runs_its_own_executable() {
        let mut out = ExecutedFiles::new();
        sample_pid(Path::new("/proc"), "self", &mut out);
        let exe = std::fs::read_link("/proc/self/exe").expect("exe");
        let ino = std::fs::metadata(&exe).expect("stat").ino();
        assert!(
            out.iter().any(|f| f.kind == ExecKind::Exec
                && f.path == exe.to_string_lossy()
                && f.ino == ino),
            "{out:?}"
        );
        assert!(
            out.iter()
                .any(|f| f.kind == ExecKind::Mapped && f.path == exe.to_string_lossy()),
            "{out:?}"
        );
    }
}
