//! The on-disk spool of encoded messages waiting for the broker.
//!
//! One file per message, `<boot_id>.<seq, 20 digits>.msg`, written to a
//! temporary name, fsynced, renamed, and the directory fsynced: a file
//! with the final name is always whole. A message is publishable only once
//! the daemon's state file records its seq (see `Daemon::tick`); files of
//! the current boot with a higher seq are leftovers of a crash between the
//! two writes, and [`Spool::discard_after`] deletes them at start-up.
//!
//! The spool holds no lock: a publisher may open its own `Spool` on the
//! same directory (another thread) to list and ack messages. An ack
//! removes one file by name (no listing), so draining N messages costs
//! O(N).
//!
//! A message that can never be sent (it does not decode, or the sink
//! refuses it for good) would block every message after it. The publisher
//! moves it aside with [`Spool::set_aside`], into `rejected/` with the
//! reason beside it: logged, counted ([`Spool::rejected`]), kept for
//! inspection, and out of the queue.

use super::DaemonError;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The subdirectory that holds the messages set aside.
const REJECTED: &str = "rejected";

/// A spooled message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub boot_id: String,
    pub seq: u64,
    pub path: PathBuf,
    /// The broker's message id and the store's idempotency key
    /// (`Envelope::dedupe_id`: `host.boot.seq`).
    pub msg_id: String,
}

impl Pending {
    /// The encoded message (`schemas::wire::encode`).
    pub fn read(&self) -> Result<Vec<u8>, DaemonError> {
        std::fs::read(&self.path)
            .map_err(|e| DaemonError::io(format!("reading {}", self.path.display()), e))
    }
}

#[derive(Clone, Debug)]
pub struct Spool {
    dir: PathBuf,
    host_id: String,
    boot_id: String,
    /// Directory listings so far (shared by clones): what makes a drain
    /// linear or quadratic, counted so that a test can tell.
    listings: Arc<AtomicU64>,
}

fn fsync_dir(dir: &Path) -> Result<(), DaemonError> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| DaemonError::io(format!("fsync {}", dir.display()), e))
}

impl Spool {
    /// Opens (creating it, and missing parents, 0700) the spool
    /// directory, which is sandmine's own: an existing one is set to 0700
    /// too. Messages are written 0600.
    pub fn open(dir: &Path, host_id: &str, boot_id: &str) -> Result<Spool, DaemonError> {
        private_dir(dir)?;
        Ok(Spool {
            dir: dir.to_path_buf(),
            host_id: host_id.to_string(),
            boot_id: boot_id.to_string(),
            listings: Arc::new(AtomicU64::new(0)),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn name(boot: &str, seq: u64) -> String {
        format!("{boot}.{seq:020}.msg")
    }

    /// Durably add the message `seq` of the current boot.
    pub fn write(&self, seq: u64, bytes: &[u8]) -> Result<PathBuf, DaemonError> {
        use std::io::Write;
        let path = self.dir.join(Self::name(&self.boot_id, seq));
        let tmp = self
            .dir
            .join(format!(".{}.tmp", Self::name(&self.boot_id, seq)));
        let io = |e| DaemonError::io(format!("writing {}", tmp.display()), e);
        let mut f = sysutil::fs::create_private_file(&tmp).map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &path)
            .map_err(|e| DaemonError::io(format!("renaming {}", tmp.display()), e))?;
        fsync_dir(&self.dir)?;
        Ok(path)
    }

    /// How many times this spool (or a clone) listed a directory.
    pub fn listings(&self) -> u64 {
        self.listings.load(Ordering::Relaxed)
    }

    fn read_dir(&self, dir: &Path) -> std::io::Result<std::fs::ReadDir> {
        self.listings.fetch_add(1, Ordering::Relaxed);
        std::fs::read_dir(dir)
    }

    fn list(&self) -> Result<Vec<(Pending, u64)>, DaemonError> {
        let rd = self
            .read_dir(&self.dir)
            .map_err(|e| DaemonError::io(format!("listing {}", self.dir.display()), e))?;
        let mut out = Vec::new();
        for entry in rd.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".msg") else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let Some((boot, seq)) = stem.rsplit_once('.') else {
                continue;
            };
            let Ok(seq) = seq.parse::<u64>() else {
                continue;
            };
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            out.push((
                Pending {
                    boot_id: boot.to_string(),
                    seq,
                    path: entry.path(),
                    msg_id: format!("{}.{boot}.{seq}", self.host_id),
                },
                size,
            ));
        }
        Ok(out)
    }

    /// Every spooled message, oldest first: those of earlier boots (by
    /// boot, then seq), then the current boot's in seq order.
    pub fn pending(&self) -> Result<Vec<Pending>, DaemonError> {
        let mut v: Vec<Pending> = self.list()?.into_iter().map(|(p, _)| p).collect();
        v.sort_by(|a, b| {
            (a.boot_id == self.boot_id, &a.boot_id, a.seq).cmp(&(
                b.boot_id == self.boot_id,
                &b.boot_id,
                b.seq,
            ))
        });
        Ok(v)
    }

    /// The broker has the message: forget it. Unknown ids are fine (acked
    /// twice, or another host's).
    pub fn ack(&self, msg_id: &str) -> Result<(), DaemonError> {
        match self.path_of(msg_id) {
            Some(path) => remove(&path),
            None => Ok(()),
        }
    }

    /// The file of message `host.boot.seq` of this spool's host.
    fn path_of(&self, msg_id: &str) -> Option<PathBuf> {
        let rest = msg_id
            .strip_prefix(self.host_id.as_str())?
            .strip_prefix('.')?;
        let (boot, seq) = rest.rsplit_once('.')?;
        let seq: u64 = seq.parse().ok()?;
        if boot.is_empty() || boot.contains('/') || boot.starts_with('.') {
            return None;
        }
        Some(self.dir.join(Self::name(boot, seq)))
    }

    /// Moves a message that can never be sent out of the queue, into
    /// `rejected/`, with `reason` in a `.reason` file beside it, and logs
    /// it. Returns where it went.
    pub fn set_aside(&self, p: &Pending, reason: &str) -> Result<PathBuf, DaemonError> {
        use std::io::Write;
        let dir = self.dir.join(REJECTED);
        private_dir(&dir)?;
        let name = format!("{}.msg", p.msg_id);
        let dest = dir.join(&name);
        let why = dir.join(format!("{name}.reason"));
        sysutil::fs::create_private_file(&why)
            .and_then(|mut f| f.write_all(format!("{reason}\n").as_bytes()))
            .map_err(|e| DaemonError::io(format!("writing {}", why.display()), e))?;
        std::fs::rename(&p.path, &dest)
            .map_err(|e| DaemonError::io(format!("moving {}", p.path.display()), e))?;
        fsync_dir(&dir)?;
        fsync_dir(&self.dir)?;
        log::error!(
            "spool: message {} can never be sent ({reason}); moved to {} so that it no longer blocks the spool",
            p.msg_id,
            dest.display()
        );
        Ok(dest)
    }

    /// How many messages were ever set aside and are still kept.
    pub fn rejected(&self) -> Result<u64, DaemonError> {
        let dir = self.dir.join(REJECTED);
        let rd = match self.read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(DaemonError::io(format!("listing {}", dir.display()), e)),
        };
        Ok(rd
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".msg"))
            .count() as u64)
    }

    /// [`Spool::ack`] of the current boot's message `seq`.
    pub fn ack_seq(&self, seq: u64) -> Result<(), DaemonError> {
        remove(&self.dir.join(Self::name(&self.boot_id, seq)))
    }

    /// Bytes held.
    pub fn size_bytes(&self) -> Result<u64, DaemonError> {
        Ok(self.list()?.iter().map(|(_, s)| s).sum())
    }

    /// Delete the current boot's messages after `seq` (never committed),
    /// and temporary files. Returns how many messages were deleted.
    pub fn discard_after(&self, seq: u64) -> Result<usize, DaemonError> {
        let mut n = 0;
        for (p, _) in self.list()? {
            if p.boot_id == self.boot_id && p.seq > seq {
                remove(&p.path)?;
                n += 1;
            }
        }
        if let Ok(rd) = self.read_dir(&self.dir) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().ends_with(".tmp") {
                    remove(&e.path())?;
                }
            }
        }
        if n > 0 {
            fsync_dir(&self.dir)?;
        }
        Ok(n)
    }
}

/// Creates `dir` (0700, with missing parents) or sets an existing one of
/// another mode to 0700.
fn private_dir(dir: &Path) -> Result<(), DaemonError> {
    use std::os::unix::fs::PermissionsExt;
    sysutil::fs::create_private_dir(dir)
        .map_err(|e| DaemonError::io(format!("creating {}", dir.display()), e.source))?;
    let mode = std::fs::metadata(dir)
        .map_err(|e| DaemonError::io(format!("reading {}", dir.display()), e))?
        .permissions()
        .mode();
    if mode & 0o777 != sysutil::fs::PRIVATE_DIR {
        sysutil::fs::set_mode(dir, sysutil::fs::PRIVATE_DIR)
            .map_err(|e| DaemonError::io(format!("chmod {}", dir.display()), e.source))?;
    }
    Ok(())
}

fn remove(path: &Path) -> Result<(), DaemonError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(DaemonError::io(format!("removing {}", path.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ack_and_discard() {
        let d = tempfile::tempdir().unwrap();
        let old = Spool::open(d.path(), "h", "bootA").unwrap();
        old.write(7, b"old7").unwrap();
        let s = Spool::open(d.path(), "h", "bootB").unwrap();
        for seq in [2, 1, 3] {
            s.write(seq, format!("m{seq}").as_bytes()).unwrap();
        }
        let ids: Vec<String> = s.pending().unwrap().into_iter().map(|p| p.msg_id).collect();
        assert_eq!(ids, ["h.bootA.7", "h.bootB.1", "h.bootB.2", "h.bootB.3"]);
        assert_eq!(s.size_bytes().unwrap(), 4 + 2 * 3);
        assert_eq!(s.pending().unwrap()[2].read().unwrap(), b"m2");
        // Leftovers after the committed seq 1 go; the other boot's stay.
        assert_eq!(s.discard_after(1).unwrap(), 2);
        s.ack("h.bootA.7").unwrap();
        s.ack("h.bootA.7").unwrap();
        let ids: Vec<String> = s.pending().unwrap().into_iter().map(|p| p.msg_id).collect();
        assert_eq!(ids, ["h.bootB.1"]);
        s.ack_seq(1).unwrap();
        assert!(s.pending().unwrap().is_empty());
    }

    /// Draining N messages lists the directory once (to find them), not
    /// once per ack: an ack removes one file by name.
    #[test]
    fn acks_never_list_the_directory() {
        let d = tempfile::tempdir().unwrap();
        let s = Spool::open(d.path(), "h", "b").unwrap();
        for seq in 1..=400 {
            s.write(seq, b"m").unwrap();
        }
        let before = s.listings();
        let pending = s.pending().unwrap();
        assert_eq!(pending.len(), 400);
        for p in &pending[..200] {
            s.ack(&p.msg_id).unwrap();
        }
        for p in &pending[200..] {
            s.ack_seq(p.seq).unwrap();
        }
        assert_eq!(s.listings() - before, 1);
        assert!(s.pending().unwrap().is_empty());
    }

    #[test]
    fn ack_is_by_name_for_any_host_id() {
        let d = tempfile::tempdir().unwrap();
        let s = Spool::open(d.path(), "web.eu-1.example", "boot-1").unwrap();
        for seq in 1..=3 {
            s.write(seq, b"m").unwrap();
        }
        let other = Spool::open(d.path(), "web", "boot-1").unwrap();
        // Another host's id, malformed ids and path tricks touch nothing.
        for id in [
            "web.boot-1.2",
            "web.eu-1.example.boot-1",
            "web.eu-1.example.boot-1.x",
            "web.eu-1.example../../x.1",
            "web.eu-1.example..1",
        ] {
            s.ack(id).unwrap();
        }
        other.ack("web.eu-1.example.boot-1.2").unwrap();
        assert_eq!(s.pending().unwrap().len(), 3);
        s.ack("web.eu-1.example.boot-1.2").unwrap();
        let left: Vec<u64> = s.pending().unwrap().iter().map(|p| p.seq).collect();
        assert_eq!(left, [1, 3]);
    }

    #[test]
    fn a_message_set_aside_leaves_the_queue_and_is_counted() {
        let d = tempfile::tempdir().unwrap();
        let s = Spool::open(d.path(), "h", "b").unwrap();
        assert_eq!(s.rejected().unwrap(), 0);
        for seq in 1..=3 {
            s.write(seq, format!("m{seq}").as_bytes()).unwrap();
        }
        let poison = s.pending().unwrap()[0].clone();
        let dest = s.set_aside(&poison, "does not decode").unwrap();
        assert_eq!(dest, d.path().join("rejected/h.b.1.msg"));
        assert_eq!(std::fs::read(&dest).unwrap(), b"m1");
        assert_eq!(
            std::fs::read_to_string(d.path().join("rejected/h.b.1.msg.reason")).unwrap(),
            "does not decode\n"
        );
        let left: Vec<u64> = s.pending().unwrap().iter().map(|p| p.seq).collect();
        assert_eq!(left, [2, 3]);
        assert_eq!(s.size_bytes().unwrap(), 4);
        assert_eq!(s.rejected().unwrap(), 1);
        // Restarts do not bring it back, nor delete it.
        assert_eq!(s.discard_after(3).unwrap(), 0);
        assert_eq!(s.rejected().unwrap(), 1);
        assert_eq!(s.pending().unwrap().len(), 2);
    }
}

#[cfg(test)]
mod private {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> String {
        format!(
            "{:o}",
            std::fs::metadata(p).unwrap().permissions().mode() & 0o777
        )
    }

    /// Spooled messages hold every container's syscalls: the owner's only,
    /// in directories only the owner can list.
    #[test]
    fn spool_files_and_directories_are_private() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("state/spool");
        let s = Spool::open(&dir, "h", "b").unwrap();
        let kept = s.write(1, b"m1").unwrap();
        s.write(2, b"m2").unwrap();
        let rej = s.set_aside(&s.pending().unwrap()[1], "refused").unwrap();
        let why = dir.join("rejected/h.b.2.msg.reason");
        let got: Vec<String> = [
            &d.path().join("state"),
            &dir,
            &kept,
            &dir.join("rejected"),
            &rej,
            &why,
        ]
        .iter()
        .map(|p| mode(p))
        .collect();
        assert_eq!(got, ["700", "700", "600", "700", "600", "600"]);
    }
}
