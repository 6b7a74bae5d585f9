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
            CollectError::Cgroup(
                "no cgroup v2 hierarchy is mounted (a cgroup v1-only host); \
                 use --backend ptrace"
                    .into(),
            )
        })?;
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
