//! Paths inside a root file system, and the loader's library search in it.
//!
//! Every path here is a path *inside* the root (what the program would
//! see after `chroot`): symlinks are followed component by component
//! against the root, so an absolute link target such as
//! `/lib64/ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2`
//! stays inside the image's root instead of escaping to the host.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

/// The fallback directories searched after the root's `ld.so.cache`, in
/// this order: Debian's multiarch directories first (glibc's built-in
/// `SYSTEM_DIRS` there), then the generic ones musl and other
/// distributions use.
pub const DEFAULT_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
    "/usr/local/lib",
];

const MAX_LINKS: usize = 40;

/// A root file system.
#[derive(Debug)]
pub struct Root {
    host: PathBuf,
    /// soname -> in-root path, from the root's `/etc/ld.so.cache`
    /// (x86_64 libc6 entries only); empty when it has none.
    cache: HashMap<String, String>,
    cache_present: bool,
}

/// A file found inside a root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The path inside the root, symlinks resolved.
    pub path: String,
    /// Where it is on this host.
    pub host: PathBuf,
}

impl Root {
    pub fn new(host: &Path) -> Root {
        let mut root = Root {
            host: host.to_path_buf(),
            cache: HashMap::new(),
            cache_present: false,
        };
        if let Some(f) = root.resolve("/etc/ld.so.cache") {
            if let Ok(bytes) = std::fs::read(&f.host) {
                root.cache_present = true;
                root.cache = parse_ld_so_cache(&bytes);
            }
        }
        root
    }

    pub fn host(&self) -> &Path {
        &self.host
    }

    /// Whether the root has an `/etc/ld.so.cache` that was read.
    pub fn has_ld_so_cache(&self) -> bool {
        self.cache_present
    }

    /// Entries (x86_64) read from the root's `ld.so.cache`.
    pub fn ld_so_cache_len(&self) -> usize {
        self.cache.len()
    }

    /// Resolve an in-root path (absolute, or relative to `/`), following
    /// symlinks inside the root. `None` when it does not exist.
    pub fn resolve(&self, path: &str) -> Option<Found> {
        let mut todo: Vec<String> = components(path).into_iter().rev().collect();
        let mut cur: Vec<String> = Vec::new();
        let mut links = 0usize;
        while let Some(c) = todo.pop() {
            match c.as_str() {
                "." | "" => continue,
                ".." => {
                    cur.pop();
                    continue;
                }
                _ => {}
            }
            cur.push(c);
            let host = self.host_of(&cur);
            let meta = std::fs::symlink_metadata(&host).ok()?;
            if meta.file_type().is_symlink() {
                links += 1;
                if links > MAX_LINKS {
                    return None;
                }
                let target = std::fs::read_link(&host).ok()?;
                let target = target.to_string_lossy().into_owned();
                cur.pop();
                if target.starts_with('/') {
                    cur.clear();
                }
                for t in components(&target).into_iter().rev() {
                    todo.push(t);
                }
            }
        }
        let host = self.host_of(&cur);
        if !host.exists() {
            return None;
        }
        Some(Found {
            path: format!("/{}", cur.join("/")),
            host,
        })
    }

    fn host_of(&self, cur: &[String]) -> PathBuf {
        let mut p = self.host.clone();
        for c in cur {
            p.push(c);
        }
        p
    }

    /// The library the loader would map for `needed`, asked for by an
    /// object at `origin` (its in-root path) with these RPATH and RUNPATH
    /// entries (`$ORIGIN` not yet expanded), as glibc's `ld.so` searches:
    /// a name with a slash as is; else RPATH (only when there is no
    /// RUNPATH), RUNPATH, the root's `ld.so.cache`, then [`DEFAULT_DIRS`].
    /// `LD_LIBRARY_PATH` and `LD_PRELOAD` are not applied.
    pub fn find_library(
        &self,
        needed: &str,
        origin: &str,
        rpath: &[String],
        runpath: &[String],
    ) -> Option<Found> {
        if needed.contains('/') {
            return self.resolve(needed).filter(|f| is_elf64_x86_64(&f.host));
        }
        let origin_dir = match origin.rfind('/') {
            Some(0) | None => "/".to_string(),
            Some(i) => origin[..i].to_string(),
        };
        let expand = |dir: &str| -> String {
            dir.replace("${ORIGIN}", &origin_dir)
                .replace("$ORIGIN", &origin_dir)
                .replace("${LIB}", "lib/x86_64-linux-gnu")
                .replace("$LIB", "lib/x86_64-linux-gnu")
                .replace("${PLATFORM}", "x86_64")
                .replace("$PLATFORM", "x86_64")
        };
        let in_dirs = |dirs: &[String]| -> Option<Found> {
            dirs.iter().find_map(|d| {
                let d = expand(d);
                self.resolve(&format!("{}/{needed}", d.trim_end_matches('/')))
                    .filter(|f| is_elf64_x86_64(&f.host))
            })
        };
        if runpath.is_empty() {
            if let Some(f) = in_dirs(rpath) {
                return Some(f);
            }
        }
        if let Some(f) = in_dirs(runpath) {
            return Some(f);
        }
        if let Some(p) = self.cache.get(needed) {
            if let Some(f) = self.resolve(p).filter(|f| is_elf64_x86_64(&f.host)) {
                return Some(f);
            }
        }
        let defaults: Vec<String> = DEFAULT_DIRS.iter().map(|s| s.to_string()).collect();
        in_dirs(&defaults)
    }
}

fn components(path: &str) -> Vec<String> {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_string()),
            _ => None,
        })
        .collect()
}

/// Whether the file starts like a 64-bit little-endian x86_64 ELF.
pub fn is_elf64_x86_64(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 20];
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    if f.read_exact(&mut head).is_err() {
        return false;
    }
    head[..4] == *b"\x7fELF" && head[4] == 2 && head[5] == 1 && head[18] == 62 && head[19] == 0
}

/// glibc's `ld.so.cache`, the "new" format (`glibc-ld.so.cache1.1`, alone
/// or after the old `ld.so-1.7.0` table): soname -> path for the x86_64
/// libc6 entries (flags 0x0303). The first entry of a name wins, as in
/// `ld.so`. A malformed cache gives what could be read (possibly nothing).
pub fn parse_ld_so_cache(b: &[u8]) -> HashMap<String, String> {
    const OLD: &[u8] = b"ld.so-1.7.0";
    const NEW: &[u8] = b"glibc-ld.so.cache1.1";
    let u32_at = |o: usize| -> Option<u32> {
        b.get(o..o + 4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    };
    let mut out = HashMap::new();
    let mut start = 0usize;
    if b.starts_with(OLD) {
        let Some(n) = u32_at(12) else {
            return out;
        };
        // Old header (16 bytes incl. padding) and 12-byte entries, then
        // the new table aligned to 8.
        let end = 16 + n as usize * 12;
        start = (end + 7) & !7;
    }
    if b.get(start..start + NEW.len()) != Some(NEW) {
        return out;
    }
    let Some(nlibs) = u32_at(start + 20) else {
        return out;
    };
    let cstr = |off: u32| -> Option<String> {
        let o = start + off as usize;
        let s = b.get(o..)?;
        let end = s.iter().position(|&c| c == 0)?;
        std::str::from_utf8(&s[..end]).ok().map(str::to_string)
    };
    for i in 0..nlibs as usize {
        let e = start + 48 + i * 24;
        let (Some(flags), Some(key), Some(value)) = (u32_at(e), u32_at(e + 4), u32_at(e + 8))
        else {
            break;
        };
        if flags & 0xffff != 0x0303 {
            continue;
        }
        if let (Some(k), Some(v)) = (cstr(key), cstr(value)) {
            out.entry(k).or_insert(v);
        }
    }
    out
}
