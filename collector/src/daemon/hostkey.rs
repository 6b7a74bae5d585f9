//! The host's signing key (issue 9 item 2): an ed25519 seed in a file of
//! its own, 64 hex digits, mode 0600, created on first use from the
//! kernel's random source. Wire v5 messages are signed with it, and the
//! aggregators' `enrolled_hosts` names its public key for this host.
//!
//! Not in the state file: a lost state starts a new message stream
//! (`Daemon::open`), but the host keeps its identity, so the operator
//! does not have to enroll it again. A key file that others can read
//! (group or other mode bits) is refused, as ssh refuses a private key:
//! anyone who reads it can sign as this host.

use super::DaemonError;
use schemas::wire::HostKey;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The key file's name in the state directory when `signing_key` is not
/// set.
pub const DEFAULT_FILE: &str = "host.key";

/// Where the key of `config` lives: `signing_key`, else `host.key` in the
/// state directory.
pub fn path_of(signing_key: Option<&Path>, state_dir: &Path) -> PathBuf {
    signing_key.map_or_else(|| state_dir.join(DEFAULT_FILE), Path::to_path_buf)
}

/// Reads the key at `path`, or creates it (and its missing directories,
/// 0700) if there is none. `true` with the key when it was created now.
pub fn load_or_create(path: &Path) -> Result<(HostKey, bool), DaemonError> {
    match std::fs::metadata(path) {
        Ok(_) => load(path).map(|k| (k, false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path).map(|k| (k, true)),
        Err(e) => Err(DaemonError::io(format!("reading {}", path.display()), e)),
    }
}

/// Reads an existing key file; refuses one others can read.
pub fn load(path: &Path) -> Result<HostKey, DaemonError> {
    let io = |e| DaemonError::io(format!("reading the signing key {}", path.display()), e);
    let meta = std::fs::metadata(path).map_err(io)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(DaemonError::HostKey(format!(
            "the signing key {} is readable or writable by others (mode {mode:04o}): anyone who reads it can sign as this host; `chmod 600` it, and if others may have read it, revoke its public key in the aggregators' enrolled_hosts and delete the file so that a new one is made",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    HostKey::from_seed_hex(&text).ok_or_else(|| {
        DaemonError::HostKey(format!(
            "the signing key {} is not an ed25519 seed (64 hex digits)",
            path.display()
        ))
    })
}

fn create(path: &Path) -> Result<HostKey, DaemonError> {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(|e| DaemonError::io("reading /dev/urandom".to_string(), e))?;
    let key = HostKey::from_seed(seed);
    sysutil::fs::write_atomic_private(path, format!("{}\n", key.seed_hex()).as_bytes()).map_err(
        |e| {
            DaemonError::io(
                format!("writing the signing key {}", e.path.display()),
                e.source,
            )
        },
    )?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_private_then_loaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/host.key");
        let (k1, created) = load_or_create(&path).expect("created");
        assert!(created);
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.len(), 65, "{text:?}");
        let (k2, created) = load_or_create(&path).expect("loaded");
        assert!(!created);
        assert_eq!(k1.public_key(), k2.public_key());
        // Others' bits: refused with what to do.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = load_or_create(&path).expect_err("0644 refused").to_string();
        assert!(e.contains("(mode 0644)") && e.contains("chmod 600"), "{e}");
        // Not a seed.
        std::fs::write(&path, "hello\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let e = load(&path).expect_err("garbage refused").to_string();
        assert!(e.contains("is not an ed25519 seed"), "{e}");
        assert_eq!(path_of(None, Path::new("/s")), PathBuf::from("/s/host.key"));
        assert_eq!(
            path_of(Some(Path::new("/k")), Path::new("/s")),
            PathBuf::from("/k")
        );
    }
}
