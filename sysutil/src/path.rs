//! Resolving a command the way `execvp` does, before anything is started:
//! one lookup for `mine` (eBPF and ptrace backends) and `run`, so that a
//! command runs under one backend exactly when it runs under the other.
//!
//! A name with a `/` is a path; any other is looked up in each `PATH`
//! entry (glibc's default `/bin:/usr/bin` when `PATH` is unset; an empty
//! entry is the current directory). The first regular file this process
//! may execute wins; `access(2)` judges it, so root, ACLs and `noexec`
//! mounts are judged as `execve` will judge them.

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// glibc's search path when `PATH` is unset.
pub const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// Why a command cannot be run, with the exit status a shell would give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// Not found on `PATH`, or a path that does not exist: exit 127.
    NotFound(String),
    /// Found but not executable (or a directory): exit 126.
    NotExecutable(String),
}

impl ResolveError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ResolveError::NotFound(_) => 127,
            ResolveError::NotExecutable(_) => 126,
        }
    }

    /// The shell's wording, naming the command.
    pub fn message(&self) -> String {
        match self {
            ResolveError::NotFound(cmd) if cmd.contains('/') => {
                format!("{cmd}: No such file or directory")
            }
            ResolveError::NotFound(cmd) => format!("command not found: {cmd}"),
            ResolveError::NotExecutable(cmd) => format!("cannot execute {cmd}: Permission denied"),
        }
    }

    /// The reason alone, as an `io::Error` (for errors that name the
    /// command themselves).
    pub fn io_error(&self) -> std::io::Error {
        use std::io::{Error, ErrorKind};
        match self {
            ResolveError::NotFound(cmd) if cmd.contains('/') => {
                Error::new(ErrorKind::NotFound, "no such executable file")
            }
            ResolveError::NotFound(cmd) if cmd.is_empty() => {
                Error::new(ErrorKind::NotFound, "empty command name")
            }
            ResolveError::NotFound(_) => {
                Error::new(ErrorKind::NotFound, "command not found on PATH")
            }
            ResolveError::NotExecutable(_) => {
                Error::new(ErrorKind::PermissionDenied, "not an executable file")
            }
        }
    }
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for ResolveError {}

/// True when `p` is a regular file this process may execute.
fn executable(p: &Path) -> bool {
    let Ok(c) = CString::new(p.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated string for the whole call.
    let ok = unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0;
    ok && std::fs::metadata(p).is_ok_and(|m| m.is_file())
}

/// Resolves `cmd` on this process's `PATH`.
pub fn resolve(cmd: &OsStr) -> Result<PathBuf, ResolveError> {
    resolve_in(cmd, std::env::var_os("PATH").as_deref())
}

/// Resolves `cmd` on `path_var` (a `PATH` value; `None` for unset).
pub fn resolve_in(cmd: &OsStr, path_var: Option<&OsStr>) -> Result<PathBuf, ResolveError> {
    let shown = cmd.to_string_lossy().into_owned();
    if cmd.as_bytes().contains(&b'/') {
        let p = PathBuf::from(cmd);
        return if executable(&p) {
            Ok(p)
        } else if p.exists() {
            Err(ResolveError::NotExecutable(shown))
        } else {
            Err(ResolveError::NotFound(shown))
        };
    }
    if cmd.is_empty() {
        return Err(ResolveError::NotFound(shown));
    }
    let path_var = path_var.map_or_else(|| OsString::from(DEFAULT_PATH), OsStr::to_os_string);
    let mut seen_non_executable = false;
    for dir in path_var.as_bytes().split(|b| *b == b':') {
        let dir = if dir.is_empty() {
            Path::new(".")
        } else {
            Path::new(OsStr::from_bytes(dir))
        };
        let p = dir.join(cmd);
        if executable(&p) {
            return Ok(p);
        }
        seen_non_executable |= p.is_file();
    }
    if seen_non_executable {
        Err(ResolveError::NotExecutable(shown))
    } else {
        Err(ResolveError::NotFound(shown))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_like_execvp() {
        assert!(resolve(OsStr::new("sh")).is_ok());
        assert_eq!(
            resolve(OsStr::new("no-such-command-sandmine")),
            Err(ResolveError::NotFound("no-such-command-sandmine".into()))
        );
        assert_eq!(
            resolve(OsStr::new("/no/such/file")).map_err(|e| (e.exit_code(), e.message())),
            Err((127, "/no/such/file: No such file or directory".into()))
        );
        // A directory is not executable (execve says EACCES).
        assert_eq!(
            resolve(OsStr::new("/")).map_err(|e| e.exit_code()),
            Err(126)
        );
        assert_eq!(resolve(OsStr::new("")).map_err(|e| e.exit_code()), Err(127));
    }

    #[test]
    fn path_entries_in_order_and_empty_is_the_current_directory() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        for dir in [&a, &b] {
            std::fs::create_dir(dir).unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        let mk = |p: &Path, mode| {
            std::fs::write(p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        mk(&b.join("tool"), 0o755);
        let var = OsString::from(format!("{}:{}", a.display(), b.display()));
        assert_eq!(
            resolve_in(OsStr::new("tool"), Some(&var)),
            Ok(b.join("tool"))
        );
        // A later entry's executable wins over an earlier non-executable
        // file; with none executable, 126.
        mk(&a.join("tool"), 0o644);
        assert_eq!(
            resolve_in(OsStr::new("tool"), Some(&var)),
            Ok(b.join("tool"))
        );
        let only_a = OsString::from(a.as_os_str());
        assert_eq!(
            resolve_in(OsStr::new("tool"), Some(&only_a)).map_err(|e| e.exit_code()),
            Err(126)
        );
        // Unset PATH is glibc's default.
        assert_eq!(
            resolve_in(OsStr::new("sh"), None).map(|p| p.parent().map(Path::to_path_buf)),
            Ok(Some(PathBuf::from("/bin")))
        );
    }
}
