//! The registry of enrolled hosts (`[aggregator] enrolled_hosts`, issue 9
//! item 2): which ed25519 keys may sign for which `host_id`, and which
//! hosts are revoked. Without it a message's `host_id` is only what its
//! sender asserts, so one collector's broker credentials could pose as
//! any number of hosts.
//!
//! The file is TOML:
//!
//! ```toml
//! [hosts.web-1]
//! keys = ["<64 hex digits>"]   # what `sandmine host-key` prints
//!
//! [hosts.web-2]
//! keys = ["<old key>", "<new key>"]   # both valid while a key is rotated
//!
//! [hosts.db-1]
//! keys = ["<64 hex digits>"]
//! revoked = true               # every message of db-1 is refused
//! ```
//!
//! A key may belong to one host only (else one host's key could sign for
//! two), and every key must be a valid ed25519 point; an unknown field is
//! an error. [`Enrolled::refresh`] reloads the file when its size, mtime
//! or inode changed (the aggregator calls it before every batch: a `stat`).
//! A file that no longer loads leaves the previous registry in force,
//! with an error logged once per change: a typo never opens the door, and
//! never stops the fleet.

use schemas::wire::PublicKey;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("cannot read the enrolled hosts file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("enrolled hosts file {}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    #[serde(default)]
    hosts: BTreeMap<String, HostShape>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostShape {
    keys: Vec<String>,
    #[serde(default)]
    revoked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Host {
    keys: Vec<PublicKey>,
    revoked: bool,
}

/// One loaded version of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    hosts: HashMap<String, Host>,
    /// Each key's one host.
    owner: HashMap<PublicKey, String>,
}

impl Registry {
    /// Parses the file's text (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Registry, EnrollError> {
        let invalid = |reason: String| EnrollError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let shape: FileShape = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut hosts = HashMap::new();
        let mut owner: HashMap<PublicKey, String> = HashMap::new();
        for (name, h) in shape.hosts {
            if h.keys.is_empty() && !h.revoked {
                return Err(invalid(format!(
                    "host {name:?} has no keys (add the one `sandmine host-key` prints on it, or set revoked = true)"
                )));
            }
            let mut keys = Vec::with_capacity(h.keys.len());
            for k in &h.keys {
                let key: PublicKey = k
                    .parse()
                    .map_err(|e: String| invalid(format!("host {name:?}: {e}")))?;
                if let Some(other) = owner.insert(key, name.clone()) {
                    if other != name {
                        return Err(invalid(format!(
                            "key {key} is enrolled for both host {other:?} and host {name:?}: a key signs for one host only"
                        )));
                    }
                }
                keys.push(key);
            }
            hosts.insert(
                name,
                Host {
                    keys,
                    revoked: h.revoked,
                },
            );
        }
        Ok(Registry { hosts, owner })
    }

    pub fn load(path: &Path) -> Result<Registry, EnrollError> {
        let text = std::fs::read_to_string(path).map_err(|source| EnrollError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Registry::parse(path, &text)
    }

    /// Hosts enrolled, and how many of them are revoked.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.hosts.len(),
            self.hosts.values().filter(|h| h.revoked).count(),
        )
    }

    /// Whether a message of `host`, signed by `signer` (`None`: unsigned,
    /// wire `version` < 5), may be stored; `Err` is the one-line reason it
    /// is dead-lettered with.
    pub fn check(
        &self,
        host: &str,
        signer: Option<&PublicKey>,
        version: u16,
    ) -> Result<(), String> {
        let Some(signer) = signer else {
            return Err(format!(
                "host {host:?}: unsigned message (wire version {version}); enrolled_hosts accepts only messages signed by an enrolled host key (wire version 5: set [collector] max_wire_version = 5 on the host)"
            ));
        };
        let Some(h) = self.hosts.get(host) else {
            return Err(match self.owner.get(signer) {
                Some(other) => format!(
                    "forged host identity: host {host:?} is not enrolled, and the key that signed this message ({signer}) is host {other:?}'s"
                ),
                None => format!(
                    "host {host:?} is not enrolled (the message is signed by key {signer}; enroll it with the entry `sandmine host-key` prints on that host)"
                ),
            });
        };
        if h.revoked {
            return Err(format!("host {host:?} is revoked"));
        }
        if !h.keys.contains(signer) {
            return Err(match self.owner.get(signer) {
                Some(other) => format!(
                    "forged host identity: the message claims host {host:?} but is signed by host {other:?}'s key ({signer})"
                ),
                None => format!(
                    "host {host:?} did not sign this message: its key {signer} is not enrolled for any host"
                ),
            });
        }
        Ok(())
    }
}

/// What identifies a version of the file on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    mtime_ns: i128,
    ino: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        len: m.len(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        ino: m.ino(),
    })
}

/// The registry in force, and its file, reloaded when it changes.
#[derive(Debug)]
pub struct Enrolled {
    path: PathBuf,
    registry: Registry,
    /// The file version last tried (loaded or not).
    seen: Option<Stamp>,
    reloads: u64,
}

impl Enrolled {
    /// Loads the file; an unreadable or invalid one is an error (the
    /// aggregator does not start).
    pub fn open(path: &Path) -> Result<Enrolled, EnrollError> {
        let seen = stamp(path);
        let registry = Registry::load(path)?;
        let (n, revoked) = registry.counts();
        log::info!(
            "enrolled hosts: {} ({n} hosts, {revoked} revoked); only messages signed by an enrolled, unrevoked host's key are stored",
            path.display()
        );
        Ok(Enrolled {
            path: path.to_path_buf(),
            registry,
            seen,
            reloads: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reloads the file if it changed since last tried. A file that does
    /// not load leaves the registry as it was, with an error logged.
    pub fn refresh(&mut self) {
        let now = stamp(&self.path);
        if now == self.seen {
            return;
        }
        self.seen = now;
        match Registry::load(&self.path) {
            Ok(r) => {
                let (n, revoked) = r.counts();
                self.registry = r;
                self.reloads += 1;
                log::info!(
                    "enrolled hosts reloaded: {} ({n} hosts, {revoked} revoked)",
                    self.path.display()
                );
            }
            Err(e) => log::error!(
                "{}; the enrolled hosts loaded before stay in force until it is fixed",
                sysutil::error_chain(&e)
            ),
        }
    }

    /// Successful reloads since [`Enrolled::open`].
    pub fn reloads(&self) -> u64 {
        self.reloads
    }

    /// [`Registry::check`] against the registry in force.
    pub fn check(
        &self,
        host: &str,
        signer: Option<&PublicKey>,
        version: u16,
    ) -> Result<(), String> {
        self.registry.check(host, signer, version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::wire::HostKey;

    fn key(n: u8) -> PublicKey {
        HostKey::from_seed([n; 32]).public_key()
    }

    fn file(entries: &str) -> Registry {
        Registry::parse(Path::new("/e.toml"), entries).expect("parses")
    }

    #[test]
    fn each_refusal_has_its_reason() {
        let (a, b, x) = (key(1), key(2), key(3));
        let r = file(&format!(
            "[hosts.hA]\nkeys = [\"{a}\"]\n[hosts.hB]\nkeys = [\"{b}\"]\n[hosts.hR]\nkeys = [\"{x}\"]\nrevoked = true\n"
        ));
        assert_eq!(r.counts(), (3, 1));
        assert_eq!(r.check("hA", Some(&a), 5), Ok(()));
        assert_eq!(r.check("hB", Some(&b), 5), Ok(()));
        assert_eq!(
            r.check("hB", Some(&a), 5),
            Err(format!("forged host identity: the message claims host \"hB\" but is signed by host \"hA\"'s key ({a})"))
        );
        assert_eq!(
            r.check("hZ", Some(&a), 5),
            Err(format!("forged host identity: host \"hZ\" is not enrolled, and the key that signed this message ({a}) is host \"hA\"'s"))
        );
        let y = key(4);
        assert_eq!(
            r.check("hZ", Some(&y), 5),
            Err(format!("host \"hZ\" is not enrolled (the message is signed by key {y}; enroll it with the entry `sandmine host-key` prints on that host)"))
        );
        assert_eq!(
            r.check("hA", Some(&y), 5),
            Err(format!(
                "host \"hA\" did not sign this message: its key {y} is not enrolled for any host"
            ))
        );
        assert_eq!(
            r.check("hR", Some(&x), 5),
            Err("host \"hR\" is revoked".into())
        );
        assert_eq!(
            r.check("hA", None, 4),
            Err("host \"hA\": unsigned message (wire version 4); enrolled_hosts accepts only messages signed by an enrolled host key (wire version 5: set [collector] max_wire_version = 5 on the host)".into())
        );
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let bad = |text: &str| {
            Registry::parse(Path::new("/e.toml"), text)
                .expect_err("refused")
                .to_string()
        };
        let a = key(1);
        assert!(bad("[hosts.h]\nkeys = [\"00\"]\n").starts_with(
            "enrolled hosts file /e.toml: host \"h\": \"00\" is not an ed25519 public key"
        ));
        assert!(
            bad(&format!("[hosts.h]\nkeys = [\"{a}\"]\nrevokd = true\n"))
                .contains("unknown field `revokd`")
        );
        assert!(bad("[host.h]\n").contains("unknown field `host`"));
        assert_eq!(
            bad(&format!("[hosts.h]\nkeys = [\"{a}\"]\n[hosts.g]\nkeys = [\"{a}\"]\n")),
            format!("enrolled hosts file /e.toml: key {a} is enrolled for both host \"g\" and host \"h\": a key signs for one host only")
        );
        assert!(bad("[hosts.h]\nkeys = []\n").contains("host \"h\" has no keys"));
        // Revoked with no key is fine; two keys of one host too.
        let r = file(&format!(
            "[hosts.h]\nkeys = []\nrevoked = true\n[hosts.g]\nkeys = [\"{a}\", \"{}\"]\n",
            key(2)
        ));
        assert_eq!(r.check("g", Some(&key(2)), 5), Ok(()));
        assert_eq!(file("").counts(), (0, 0));
    }

    #[test]
    fn a_changed_file_is_reloaded_and_a_broken_one_keeps_the_last() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("enrolled.toml");
        let a = key(1);
        std::fs::write(&path, format!("[hosts.hA]\nkeys = [\"{a}\"]\n")).expect("write");
        let mut e = Enrolled::open(&path).expect("opens");
        assert_eq!(e.check("hA", Some(&a), 5), Ok(()));
        e.refresh();
        assert_eq!(e.reloads(), 0, "unchanged: not read again");
        std::fs::write(
            &path,
            format!("[hosts.hA]\nkeys = [\"{a}\"]\nrevoked = true\n"),
        )
        .expect("write");
        e.refresh();
        assert_eq!(e.reloads(), 1);
        assert_eq!(
            e.check("hA", Some(&a), 5),
            Err("host \"hA\" is revoked".into())
        );
        // Broken: the revocation stays in force.
        std::fs::write(&path, "[hosts.hA\n").expect("write");
        e.refresh();
        assert_eq!(e.reloads(), 1);
        assert_eq!(
            e.check("hA", Some(&a), 5),
            Err("host \"hA\" is revoked".into())
        );
        // Missing at start: an error naming the file.
        let gone = dir.path().join("nope.toml");
        let err = Enrolled::open(&gone).expect_err("missing").to_string();
        assert_eq!(
            err,
            format!("cannot read the enrolled hosts file {}", gone.display())
        );
    }
}
