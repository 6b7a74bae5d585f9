//! The host's persistent cache of file summaries: an [`Object`] is a pure
//! function of the file's bytes and of the analysis code, so it is kept on
//! disk under the file's sha256, in a directory per build of the analysis
//! (the caller's `build` key). A fleet host then analyses each library
//! once, whatever image, container or command brings it.
//!
//! Trust: an entry decides which syscalls a profile allows, so the
//! directory must be the caller's own and writable by nobody else (checked
//! on open, as for the other state directories). A corrupt or unreadable
//! entry is a miss (analysed again and rewritten), never an error.

use crate::elf::Object;
use crate::ReachError;
use std::path::{Path, PathBuf};

/// The encoding of the entries; part of every entry's directory, so a
/// change of layout never reads an old entry (2: argument sites).
const FORMAT: u32 = 2;

/// An open cache directory.
#[derive(Debug)]
pub struct DiskCache {
    dir: PathBuf,
    hits: usize,
    misses: usize,
    corrupt: usize,
}

impl DiskCache {
    /// Open (create, 0700) `root/<build>-f<FORMAT>`. `build` names the
    /// analysis code (the caller's binary): entries of another build are
    /// never read. Refused when `root` is not a directory owned by this
    /// user, or is writable by its group or others.
    pub fn open(root: &Path, build: &str) -> Result<DiskCache, ReachError> {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        let unsafe_dir = |why: String| ReachError::Cache {
            dir: root.to_path_buf(),
            why,
        };
        if !build
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            || build.is_empty()
        {
            return Err(unsafe_dir(format!("invalid build key {build:?}")));
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(|e| unsafe_dir(format!("cannot create it: {e}")))?;
        let meta = std::fs::symlink_metadata(root)
            .map_err(|e| unsafe_dir(format!("cannot read it: {e}")))?;
        if !meta.is_dir() {
            return Err(unsafe_dir("not a directory".into()));
        }
        let me = current_euid()
            .ok_or_else(|| unsafe_dir("cannot tell this process's user (/proc/self)".into()))?;
        if meta.uid() != me {
            return Err(unsafe_dir(format!(
                "owned by uid {}, not this user (uid {me})",
                meta.uid()
            )));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(unsafe_dir(format!(
                "writable by its group or others (mode {:o}); chmod go-w it",
                meta.mode() & 0o7777
            )));
        }
        let name = format!("{build}-f{FORMAT}");
        let dir = root.join(&name);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| unsafe_dir(format!("cannot create {}: {e}", dir.display())))?;
        // Other builds' entries are never read again by this one: the
        // cache holds one build's, so it does not grow with upgrades. (Two
        // builds used in turn each find the other's gone: a miss.)
        if let Ok(entries) = std::fs::read_dir(root) {
            for e in entries.flatten() {
                let n = e.file_name();
                let n = n.to_string_lossy();
                if n != name && is_build_dir(&n) && e.path().is_dir() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(DiskCache {
            dir,
            hits: 0,
            misses: 0,
            corrupt: 0,
        })
    }

    fn entry(&self, hash: &[u8; 32]) -> PathBuf {
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{hex}.bin"))
    }

    /// The summary of the file whose bytes hash to `hash`, if cached.
    pub fn get(&mut self, hash: &[u8; 32]) -> Option<Object> {
        let bytes = match std::fs::read(self.entry(hash)) {
            Ok(b) => b,
            Err(_) => {
                self.misses += 1;
                return None;
            }
        };
        match bincode::serde::decode_from_slice::<(u32, [u8; 32], Object), _>(
            &bytes,
            bincode::config::standard(),
        ) {
            // The entry names its own file: a renamed or swapped entry is
            // not taken for another file's.
            Ok(((FORMAT, h, obj), n)) if h == *hash && n == bytes.len() => {
                self.hits += 1;
                Some(obj)
            }
            _ => {
                self.corrupt += 1;
                self.misses += 1;
                None
            }
        }
    }

    /// Keep `obj` as the summary of `hash`'s file (atomically: a reader
    /// sees the old entry, none, or this one). A failure to write only
    /// loses the cache entry.
    pub fn put(&self, hash: &[u8; 32], obj: &Object) {
        let Ok(bytes) =
            bincode::serde::encode_to_vec((FORMAT, hash, obj), bincode::config::standard())
        else {
            return;
        };
        let path = self.entry(hash);
        let tmp = self.dir.join(format!(
            ".{}.{}.tmp",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("entry"),
            std::process::id()
        ));
        if std::fs::write(&tmp, &bytes).is_ok() && std::fs::rename(&tmp, &path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }

    /// Entries read from the cache so far.
    pub fn hits(&self) -> usize {
        self.hits
    }

    /// Files looked up and not found (or found corrupt).
    pub fn misses(&self) -> usize {
        self.misses
    }

    /// Entries found unreadable (each also a miss).
    pub fn corrupt(&self) -> usize {
        self.corrupt
    }

    /// The directory of this build's entries.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// A directory [`DiskCache::open`] makes: `<build>-f<digits>`.
fn is_build_dir(name: &str) -> bool {
    name.rsplit_once("-f").is_some_and(|(b, f)| {
        !b.is_empty() && !f.is_empty() && f.bytes().all(|c| c.is_ascii_digit())
    })
}

/// The process's effective uid: the owner of `/proc/self`.
fn current_euid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}
