//! Content-addressed profile versions.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The version of a set of profile files: sha256 over the files sorted by
/// path, each as `len(path) path len(bytes) bytes` with 8-byte little-endian
/// lengths. Length prefixes make the encoding unambiguous (no two file
/// sets share a byte stream), so equal versions mean equal files. Only the
/// profile files and their `.sig` signatures (`crate::sign`) count:
/// reports carry timestamps and must not make an unchanged profile look
/// new. Signatures count so that a new signing key (rotation) makes a new
/// version that is published, re-signed, rather than leaving the nodes
/// with signatures by a retired key; ed25519 signatures are
/// deterministic, so the same key keeps an unchanged profile's version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// `sha256:<64 hex>`.
    pub full: String,
    /// The first 12 hex digits.
    pub short: String,
}

impl Version {
    pub fn of_files(files: &BTreeMap<String, Vec<u8>>) -> Version {
        let mut h = Sha256::new();
        for (path, bytes) in files {
            h.update((path.len() as u64).to_le_bytes());
            h.update(path.as_bytes());
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        }
        let hex = hex(&h.finalize());
        Version {
            short: hex[..12].to_string(),
            full: format!("sha256:{hex}"),
        }
    }

    /// The short form of a `sha256:<hex>` string (its first 12 hex digits).
    pub fn short_of(full: &str) -> &str {
        let hex = full.strip_prefix("sha256:").unwrap_or(full);
        hex.get(..12).unwrap_or(hex)
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_set_is_sha256_of_nothing() {
        let v = Version::of_files(&BTreeMap::new());
        assert_eq!(
            v.full,
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(v.short, "e3b0c44298fc");
        assert_eq!(Version::short_of(&v.full), "e3b0c44298fc");
    }

    #[test]
    fn encoding_is_length_prefixed() {
        // "ab" + "c" and "a" + "bc" would collide without length prefixes.
        let a = BTreeMap::from([("ab".to_string(), b"c".to_vec())]);
        let b = BTreeMap::from([("a".to_string(), b"bc".to_vec())]);
        assert_ne!(Version::of_files(&a), Version::of_files(&b));
        // One file: 8-byte len, path, 8-byte len, bytes.
        let mut raw = Vec::new();
        raw.extend_from_slice(&2u64.to_le_bytes());
        raw.extend_from_slice(b"ab");
        raw.extend_from_slice(&1u64.to_le_bytes());
        raw.extend_from_slice(b"c");
        assert_eq!(
            Version::of_files(&a).full,
            format!("sha256:{}", hex(&Sha256::digest(&raw)))
        );
    }
}
