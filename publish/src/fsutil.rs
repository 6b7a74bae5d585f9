//! Crash-safe file writes: temp file in the same directory, fsync, rename,
//! fsync the directory. A reader sees the old or the new content, never a
//! torn file.

use crate::PublishError;
use std::fs;
use std::io::Write;
use std::path::Path;

pub(crate) fn sync_dir(dir: &Path) -> Result<(), PublishError> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(PublishError::io(dir))
}

/// Writes `bytes` to `path` (creating parents) via temp + fsync. No
/// rename: for files inside a directory that is itself renamed into place.
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), PublishError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(PublishError::io(parent))?;
    }
    let mut f = fs::File::create(path).map_err(PublishError::io(path))?;
    f.write_all(bytes).map_err(PublishError::io(path))?;
    f.sync_all().map_err(PublishError::io(path))
}

/// Replaces `path` atomically with `bytes`.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PublishError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(PublishError::io(dir))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".tmp-{name}-{}", std::process::id()));
    write_synced(&tmp, bytes)?;
    fs::rename(&tmp, path).map_err(PublishError::io(path))?;
    sync_dir(dir)
}

/// True when `rel` is a plain relative path: non-empty parts separated by
/// `/`, none of them `.` or `..`, no backslash or NUL.
pub(crate) fn is_plain_relative(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.contains('\\')
        && !rel.contains('\0')
        && rel
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_relative() {
        for ok in ["profile.json", "kubelet/sandmine/x.json", "a..b"] {
            assert!(is_plain_relative(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "./a",
            "a/",
            "a\\b",
        ] {
            assert!(!is_plain_relative(bad), "{bad}");
        }
    }
}
