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
    /// "write", "rename", "sync", "create directory".
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

/// Replaces `path` with `bytes` atomically and durably: temp file, fsync,
/// rename, fsync of the directory (created if missing). A path that exists
/// and is not a regular file (`/dev/null`, `/dev/stdout`, a FIFO) is
/// written in place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    if path.metadata().map(|m| !m.is_file()).unwrap_or(false) {
        return fs::write(path, bytes).map_err(FsError::at("write", path));
    }
    let dir = parent_dir(path);
    fs::create_dir_all(dir).map_err(FsError::at("create directory", dir))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.sandmine-tmp-{}", std::process::id()));
    let written = (|| {
        let mut f = fs::File::create(&tmp)?;
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
