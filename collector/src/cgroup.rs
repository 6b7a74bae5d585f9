//! Per-run cgroups. `sandmine mine` puts the mined command in a fresh
//! cgroup v2 leaf, so that the kernel program can tell its calls (and its
//! descendants') from every other process's, and so that the run can be
//! stopped as a whole.

use crate::{CollectError, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where the cgroup v2 hierarchy is mounted: `/sys/fs/cgroup` on a pure v2
/// host, `/sys/fs/cgroup/unified` on a hybrid one. `None` on a v1-only host.
pub fn v2_root() -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    // Fields: ... mount-point (5th) ... " - " fstype source options
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if right.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        left.split_whitespace().nth(4).map(PathBuf::from)
    })
}

/// A v1 hierarchy to group processes in when there is no v2 one: the
/// `pids` controller's if mounted, else the first v1 hierarchy.
pub fn v1_root() -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut roots = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut r = right.split_whitespace();
        if r.next() != Some("cgroup") {
            continue;
        }
        let opts = r.nth(1).unwrap_or("");
        if let Some(mp) = left.split_whitespace().nth(4) {
            roots.push((opts.split(',').any(|o| o == "pids"), PathBuf::from(mp)));
        }
    }
    roots.sort_by_key(|(pids, _)| !pids);
    roots.into_iter().next().map(|(_, p)| p)
}

/// Every mounted v1 hierarchy.
pub fn v1_roots() -> Vec<PathBuf> {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            (right.split_whitespace().next()? == "cgroup")
                .then(|| left.split_whitespace().nth(4).map(PathBuf::from))?
        })
        .collect()
}

/// Remove `rel` (a cgroup path relative to each hierarchy's root, as
/// given to a runtime's cgroup parent) and its empty children from every
/// v1 hierarchy. Runtimes create a container's parent path in each
/// hierarchy and leave it behind. Best effort: busy directories stay.
pub fn remove_from_v1_hierarchies(rel: &str) {
    let rel = rel.trim_start_matches('/');
    if rel.is_empty() {
        return;
    }
    for root in v1_roots() {
        let dir = root.join(rel);
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    let _ = std::fs::remove_dir(e.path());
                }
            }
        }
        let _ = std::fs::remove_dir(&dir);
    }
}

/// Which cgroup hierarchy a run is grouped in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hierarchy {
    /// cgroup v2 (pure or hybrid): the cgroup id alone keys the workload.
    V2(PathBuf),
    /// A v1 hierarchy: the workload needs its own mount namespace to be
    /// told apart (every task shares the root v2 cgroup).
    V1(PathBuf),
}

impl Hierarchy {
    /// v2 when mounted, else v1. `SANDMINE_CGROUP=v1` forces v1 (to test a
    /// v1-only host's code path on a hybrid one).
    pub fn detect() -> Result<Hierarchy> {
        let force_v1 = std::env::var("SANDMINE_CGROUP").is_ok_and(|v| v == "v1");
        if !force_v1 {
            if let Some(root) = v2_root() {
                return Ok(Hierarchy::V2(root));
            }
        }
        v1_root()
            .map(Hierarchy::V1)
            .ok_or_else(|| CollectError::Cgroup("no cgroup hierarchy is mounted".into()))
    }

    pub fn root(&self) -> &Path {
        match self {
            Hierarchy::V2(p) | Hierarchy::V1(p) => p,
        }
    }
}

/// The cgroup v2 id the kernel program sees for `pid`: its v2 cgroup's
/// inode, or 1 (the root) where no v2 hierarchy is mounted.
pub fn v2_cgroup_id_of(pid: i32) -> Result<u64> {
    let Some(root) = v2_root() else { return Ok(1) };
    let f = format!("/proc/{pid}/cgroup");
    let text =
        std::fs::read_to_string(&f).map_err(|e| CollectError::io(format!("reading {f}"), e))?;
    let rel = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or_else(|| CollectError::Cgroup(format!("{f} has no cgroup v2 line")))?;
    crate::ebpf::cgroup_id(&root.join(rel.trim_start_matches('/')))
}

/// A cgroup directory that this process created and removes on drop.
#[derive(Debug)]
pub struct Cgroup {
    path: PathBuf,
    id: u64,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl Cgroup {
    /// Create `<v2 root>/sandmine/<name>-<pid>-<seq>`.
    pub fn create(name: &str) -> Result<Cgroup> {
        let root = v2_root().ok_or_else(|| {
            CollectError::Cgroup("no cgroup v2 hierarchy is mounted (a cgroup v1-only host)".into())
        })?;
        Cgroup::create_in(&root, name)
    }

    /// Create `<root>/sandmine/<name>-<pid>-<seq>` in any hierarchy.
    /// `id()` is the directory's inode: the cgroup id only in a v2
    /// hierarchy.
    pub fn create_in(root: &Path, name: &str) -> Result<Cgroup> {
        let parent = root.join("sandmine");
        std::fs::create_dir_all(&parent)
            .map_err(|e| CollectError::io(format!("creating {}", parent.display()), e))?;
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let path = parent.join(format!("{name}-{}-{seq}", std::process::id()));
        std::fs::create_dir(&path)
            .map_err(|e| CollectError::io(format!("creating {}", path.display()), e))?;
        let id = crate::ebpf::cgroup_id(&path)?;
        Ok(Cgroup { path, id })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cgroup v2 id (what `bpf_get_current_cgroup_id` returns).
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn procs_file(&self) -> PathBuf {
        self.path.join("cgroup.procs")
    }

    /// The processes in the cgroup now.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let f = self.procs_file();
        let s = std::fs::read_to_string(&f)
            .map_err(|e| CollectError::io(format!("reading {}", f.display()), e))?;
        Ok(s.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// Send `signal` to every process in the cgroup.
    pub fn signal_all(&self, signal: i32) -> Result<usize> {
        let pids = self.pids()?;
        for pid in &pids {
            // SAFETY: kill(2) has no memory-safety preconditions. ESRCH (the
            // process exited meanwhile) is fine.
            unsafe { libc::kill(*pid, signal) };
        }
        Ok(pids.len())
    }

    /// SIGTERM everything, wait up to `grace` for it to exit, then SIGKILL
    /// whatever is left and wait for the cgroup to empty.
    pub fn stop_all(&self, grace: Duration, mut reap: impl FnMut()) -> Result<()> {
        self.signal_all(libc::SIGTERM)?;
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            reap();
            if self.pids()?.is_empty() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.signal_all(libc::SIGKILL)?;
            reap();
            if self.pids()?.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(CollectError::Cgroup(format!(
                    "processes in {} survived SIGKILL for 10 s",
                    self.path.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // rmdir fails while processes remain; callers stop them first.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.path).is_ok() || !self.path.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
