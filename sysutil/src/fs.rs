//! Crash-safe file writes: a temp file in the same directory, fsync,
//! rename over the target, fsync the directory. A reader (or a restart
//! after a crash) sees the old content or the new, never a torn file.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A file operation that failed, with the path it failed on.
#[derive(Debug, thiserror::Error)]
#[error("cannot {op} {}", path.display())]
pub struct FsError {
    /// "write", "rename", "sync", "create directory", "chmod".
    pub op: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl FsError {
    fn at(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> FsError {
        let path = path.to_path_buf();
        move |source| FsError { op, path, source }
    }
}

/// The directory `path` is in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// fsyncs a directory, so that renames and creations in it survive a
/// crash.
pub fn sync_dir(dir: &Path) -> Result<(), FsError> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(FsError::at("sync", dir))
}

/// Writes `bytes` to `path` (creating its parents) and fsyncs it. No
/// rename: for files inside a directory that is itself renamed into place.
pub fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    let dir = parent_dir(path);
    fs::create_dir_all(dir).map_err(FsError::at("create directory", dir))?;
    let mut f = fs::File::create(path).map_err(FsError::at("write", path))?;
    f.write_all(bytes).map_err(FsError::at("write", path))?;
    f.sync_all().map_err(FsError::at("sync", path))
}

/// Mode of the files that hold fleet data (spool, state, store): the
/// owner's only.
pub const PRIVATE_FILE: u32 = 0o600;
/// Mode of the directories sandmine creates for them.
pub const PRIVATE_DIR: u32 = 0o700;

/// Creates `dir` and its missing parents with mode 0700 (whatever the
/// umask; directories that exist keep their mode).
pub fn create_private_dir(dir: &Path) -> Result<(), FsError> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR)
        .create(dir)
        .map_err(FsError::at("create directory", dir))
}

/// Sets `path`'s mode to `mode` (for a directory or file that is
/// sandmine's own, whoever created it).
pub fn set_mode(path: &Path, mode: u32) -> Result<(), FsError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(FsError::at("chmod", path))
}

/// Opens `path` for writing, truncated, mode 0600: created so, and an
/// existing file (a leftover temp file) is set to 0600 too.
pub fn create_private_file(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(PRIVATE_FILE)
        .open(path)?;
    f.set_permissions(fs::Permissions::from_mode(PRIVATE_FILE))?;
    Ok(f)
}

/// Replaces `path` with `bytes` atomically and durably: temp file, fsync,
/// rename, fsync of the directory (created if missing). A path that exists
/// and is not a regular file (`/dev/null`, `/dev/stdout`, a FIFO) is
/// written in place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    write_atomic_as(path, bytes, false)
}

/// [`write_atomic`] for fleet data: the file ends up 0600, and missing
/// directories are created 0700.
pub fn write_atomic_private(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    write_atomic_as(path, bytes, true)
}

fn write_atomic_as(path: &Path, bytes: &[u8], private: bool) -> Result<(), FsError> {
    if path.metadata().map(|m| !m.is_file()).unwrap_or(false) {
        return fs::write(path, bytes).map_err(FsError::at("write", path));
    }
    let dir = parent_dir(path);
    if private {
        create_private_dir(dir)?;
    } else {
        fs::create_dir_all(dir).map_err(FsError::at("create directory", dir))?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.sandmine-tmp-{}", std::process::id()));
    let written = (|| {
        let mut f = if private {
            create_private_file(&tmp)?
        } else {
            fs::File::create(&tmp)?
        };
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(FsError::at("write", path)(e));
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(FsError::at("rename", path)(e));
    }
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_files_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.json")]);
        write_atomic(Path::new("/dev/null"), b"x").unwrap();
    }

    #[test]
    fn private_writes_and_directories() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a/b/state.json");
        write_atomic_private(&p, b"one").unwrap();
        write_atomic(&d.path().join("open.json"), b"x").unwrap();
        let mode = |p: &str| fs::metadata(d.path().join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            [mode("a"), mode("a/b"), mode("a/b/state.json")],
            [0o700, 0o700, 0o600]
        );
        // Ordinary writes keep the umask's mode (profiles are for others to read).
        assert_ne!(mode("open.json"), 0o600);
    }

    #[test]
    fn errors_name_the_path_once() {
        let e = write_atomic(Path::new("/proc/nonexistent-dir/x"), b"x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot create directory /proc/nonexistent-dir"
        );
        assert_eq!(e.source.kind(), std::io::ErrorKind::NotFound);
        assert_eq!(
            crate::error_chain(&e),
            "cannot create directory /proc/nonexistent-dir: No such file or directory (os error 2)"
        );
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/dir/f");
        write_synced(&p, b"y").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"y");
    }
}
