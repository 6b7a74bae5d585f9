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
//! same directory (another thread) to list and ack messages.

use super::DaemonError;
use std::path::{Path, PathBuf};

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
}

fn fsync_dir(dir: &Path) -> Result<(), DaemonError> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| DaemonError::io(format!("fsync {}", dir.display()), e))
}

impl Spool {
    pub fn open(dir: &Path, host_id: &str, boot_id: &str) -> Result<Spool, DaemonError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| DaemonError::io(format!("creating {}", dir.display()), e))?;
        Ok(Spool {
            dir: dir.to_path_buf(),
            host_id: host_id.to_string(),
            boot_id: boot_id.to_string(),
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
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &path)
            .map_err(|e| DaemonError::io(format!("renaming {}", tmp.display()), e))?;
        fsync_dir(&self.dir)?;
        Ok(path)
    }

    fn list(&self) -> Result<Vec<(Pending, u64)>, DaemonError> {
        let rd = std::fs::read_dir(&self.dir)
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
    /// twice).
    pub fn ack(&self, msg_id: &str) -> Result<(), DaemonError> {
        for (p, _) in self.list()? {
            if p.msg_id == msg_id {
                remove(&p.path)?;
            }
        }
        Ok(())
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
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
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
}
