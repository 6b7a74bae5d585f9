//! The files a container's processes ran as code (issue 10): what the
//! static reachability analysis of a fleet image reads.
//!
//! The collector samples them on the host (each process's executable and
//! its executable file mappings, as paths inside the container's root)
//! and sends each once per container (wire v8); the stores keep them per
//! container, and answer per image, from verified containers only, with
//! [`RanFiles`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Longest path accepted: Linux's `PATH_MAX`.
pub const MAX_PATH_BYTES: usize = 4096;
/// Most files of one container in one message. A container that ran more
/// distinct files than this in one interval sends the rest in its next
/// messages (the collector keeps them until sent).
pub const MAX_FILES_PER_MESSAGE: usize = 1024;

/// How a process ran a file as code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecKind {
    /// The process's executable (`/proc/PID/exe`).
    Exec,
    /// A file mapped executable (`/proc/PID/maps`, `x`): shared objects,
    /// `dlopen`ed modules, the dynamic loader.
    Mapped,
}

impl ExecKind {
    /// The stable code (wire and stores).
    pub fn code(self) -> u8 {
        match self {
            ExecKind::Exec => 0,
            ExecKind::Mapped => 1,
        }
    }

    pub fn from_code(c: u8) -> Option<ExecKind> {
        match c {
            0 => Some(ExecKind::Exec),
            1 => Some(ExecKind::Mapped),
            _ => None,
        }
    }

    /// "exec" or "mapped".
    pub fn as_str(self) -> &'static str {
        match self {
            ExecKind::Exec => "exec",
            ExecKind::Mapped => "mapped",
        }
    }
}

/// One file a container ran as code, as the collector saw it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExecutedFile {
    /// Its path inside the container's root, as the kernel wrote it.
    pub path: String,
    pub kind: ExecKind,
    /// The device and inode the path named when it was sampled: which
    /// file it was, should the path be replaced later.
    pub dev: u64,
    pub ino: u64,
}

impl ExecutedFile {
    /// What a collector can send: an absolute path of at most
    /// [`MAX_PATH_BYTES`] with no NUL byte and no `..` component.
    pub fn check(&self) -> Result<(), String> {
        if !self.path.starts_with('/') {
            return Err(format!("path {:?} is not absolute", self.path));
        }
        if self.path.len() > MAX_PATH_BYTES {
            return Err(format!(
                "a path of {} bytes (at most {MAX_PATH_BYTES})",
                self.path.len()
            ));
        }
        if self.path.contains('\0') {
            return Err(format!("path {:?} holds a NUL byte", self.path));
        }
        if self.path.split('/').any(|p| p == "..") {
            return Err(format!("path {:?} has a `..` component", self.path));
        }
        Ok(())
    }
}

/// A container's files, each once.
pub type ExecutedFiles = BTreeSet<ExecutedFile>;

/// What an image's verified containers ran as code: the paths, by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RanFiles {
    #[serde(default)]
    pub executables: BTreeSet<String>,
    #[serde(default)]
    pub mapped: BTreeSet<String>,
}

impl RanFiles {
    pub fn is_empty(&self) -> bool {
        self.executables.is_empty() && self.mapped.is_empty()
    }

    pub fn insert(&mut self, kind: ExecKind, path: String) {
        match kind {
            ExecKind::Exec => self.executables.insert(path),
            ExecKind::Mapped => self.mapped.insert(path),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(path: &str) -> ExecutedFile {
        ExecutedFile {
            path: path.into(),
            kind: ExecKind::Exec,
            dev: 1,
            ino: 2,
        }
    }

    #[test]
    fn only_absolute_plain_paths_pass() {
        assert_eq!(f("/usr/sbin/nginx").check(), Ok(()));
        assert_eq!(
            f("usr/sbin/nginx").check(),
            Err("path \"usr/sbin/nginx\" is not absolute".into())
        );
        assert_eq!(
            f("/usr/../etc/x").check(),
            Err("path \"/usr/../etc/x\" has a `..` component".into())
        );
        assert_eq!(
            f("/a\0b").check(),
            Err("path \"/a\\0b\" holds a NUL byte".into())
        );
        let long = format!("/{}", "a".repeat(MAX_PATH_BYTES));
        assert_eq!(
            f(&long).check(),
            Err(format!("a path of 4097 bytes (at most {MAX_PATH_BYTES})"))
        );
    }

    #[test]
    fn kinds_have_stable_codes() {
        for k in [ExecKind::Exec, ExecKind::Mapped] {
            assert_eq!(ExecKind::from_code(k.code()), Some(k));
        }
        assert_eq!(ExecKind::from_code(2), None);
    }
}
