//! Unpacking a container's file system (`docker export`'s tar stream) into
//! a directory, for analysis only.
//!
//! The archive comes from the engine, but its paths come from the image,
//! which is input like any other: entries that would land outside the
//! destination (`..`, absolute paths, writes through symlinks) are refused
//! by `tar`'s `unpack_in`, and only what the analysis reads is written:
//! directories, regular files, symbolic links and hard links. Device
//! nodes, FIFOs and sockets are skipped; ownership, permissions beyond
//! "readable", extended attributes and times are not kept.

use std::io::Read;
use std::path::Path;

/// Why unpacking failed.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("reading the archive")]
    Archive(#[source] std::io::Error),
    #[error("unpacking {path}")]
    Entry {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// What was unpacked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unpacked {
    /// Entries written (directories, files, links).
    pub entries: u64,
    /// Bytes of regular files written.
    pub bytes: u64,
    /// Entries skipped: device nodes, FIFOs, sockets, and paths that would
    /// leave the destination.
    pub skipped: u64,
}

/// Unpacks the tar stream `r` under `dest` (which must exist).
pub fn unpack_tar(r: impl Read, dest: &Path) -> Result<Unpacked, UnpackError> {
    let mut archive = tar::Archive::new(r);
    archive.set_preserve_permissions(false);
    archive.set_preserve_mtime(false);
    archive.set_overwrite(true);
    let mut out = Unpacked::default();
    for entry in archive.entries().map_err(UnpackError::Archive)? {
        let mut entry = entry.map_err(UnpackError::Archive)?;
        use tar::EntryType as T;
        let kind = entry.header().entry_type();
        if !matches!(
            kind,
            T::Regular | T::Continuous | T::Directory | T::Symlink | T::Link
        ) {
            out.skipped += 1;
            continue;
        }
        let size = entry.header().size().unwrap_or(0);
        let path = entry.path().map_or_else(
            |_| String::from("(unreadable path)"),
            |p| p.display().to_string(),
        );
        match entry.unpack_in(dest) {
            Ok(true) => {
                out.entries += 1;
                if matches!(kind, T::Regular | T::Continuous) {
                    out.bytes += size;
                }
            }
            Ok(false) => out.skipped += 1,
            Err(source) => return Err(UnpackError::Entry { path, source }),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().expect("tar")
    }

    fn header(kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o755);
        h
    }

    #[test]
    fn files_links_and_dirs_are_unpacked_devices_are_skipped() {
        let data = archive(|b| {
            let mut h = header(tar::EntryType::Directory, 0);
            b.append_data(&mut h, "usr/bin/", std::io::empty())
                .expect("dir");
            let mut h = header(tar::EntryType::Regular, 5);
            b.append_data(&mut h, "usr/bin/tool", &b"hello"[..])
                .expect("file");
            let mut h = header(tar::EntryType::Symlink, 0);
            b.append_link(&mut h, "bin", "usr/bin").expect("symlink");
            let mut h = header(tar::EntryType::Char, 0);
            b.append_data(&mut h, "dev/null", std::io::empty())
                .expect("dev");
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let u = unpack_tar(&data[..], dir.path()).expect("unpack");
        assert_eq!(
            u,
            Unpacked {
                entries: 3,
                bytes: 5,
                skipped: 1
            }
        );
        assert_eq!(
            std::fs::read(dir.path().join("bin/tool")).expect("through the link"),
            b"hello"
        );
        assert!(!dir.path().join("dev/null").exists());
    }

    #[test]
    fn paths_that_leave_the_destination_are_not_written() {
        // A raw header: tar::Builder refuses `..` itself.
        let mut h = header(tar::EntryType::Regular, 3);
        h.as_old_mut().name[..12].copy_from_slice(b"../escape.tx");
        h.set_cksum();
        let mut data = h.as_bytes().to_vec();
        data.extend_from_slice(b"bad");
        data.resize(1024 + 512 * 2, 0);
        let parent = tempfile::tempdir().expect("tempdir");
        let dest = parent.path().join("root");
        std::fs::create_dir(&dest).expect("mkdir");
        let u = unpack_tar(&data[..], &dest).expect("unpack");
        assert_eq!(u.entries, 0);
        assert_eq!(u.skipped, 1);
        assert!(!parent.path().join("escape.tx").exists());
    }
}
