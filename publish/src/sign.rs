//! Signed profiles (issue 13): every profile file `F` the publisher
//! writes gets a detached ed25519 signature `F.sig` next to it, over F's
//! exact bytes, so that a node can refuse a profile nobody it trusts
//! signed (`sandmine verify`, `sandmine sync-profiles --public-key`).
//!
//! The key is the one format sandmine already has for ed25519 keys
//! ([`schemas::wire::HostKey`]: a file holding the 32-byte seed as 64 hex
//! digits, mode 0600; the public key as 64 hex digits,
//! [`schemas::wire::PublicKey`]). A key file others can read is refused,
//! as ssh refuses such a private key.
//!
//! A `.sig` file is one line of JSON:
//! `{"alg":"ed25519","key":"<public key, 64 hex>","sig":"<signature, 128 hex>"}`.
//! The key in it only says who claims to have signed: a verifier checks
//! the signature with the keys it trusts, never with the key the file
//! names.
//!
//! Signatures are added to the candidate's files ([`Signing::apply`])
//! before the gate, so they count in the version hash
//! ([`crate::Version`]): ed25519 signatures are deterministic, so an
//! unchanged profile signed by the same key keeps its version, while a new
//! key (rotation) makes a new version that the next round publishes.

use crate::candidate::Candidate;
use schemas::wire::{hex, unhex, HostKey, PublicKey, SIGNATURE_BYTES};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// What a signature file's name adds to its profile file's name.
pub const SIG_SUFFIX: &str = ".sig";
/// The one algorithm a `.sig` file names.
pub const ALG: &str = "ed25519";

/// The one line an operator sees when publishing has no key.
pub const NO_KEY: &str = "publishing needs a signing key: make one with `sandmine signing-key --out /etc/sandmine/publish.key` and set publish.signing_key_file to it (or set publish.allow_unsigned = true to publish unsigned profiles)";

/// Why a key could not be used or a profile could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("{NO_KEY}")]
    NoKey,
    #[error("cannot read the signing key {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the signing key {} is readable or writable by others (mode {mode:04o}): anyone who reads it can sign profiles; `chmod 600` it, and if others may have read it, make a new key and rotate (docs/OPERATIONS.md)", path.display())]
    Exposed { path: PathBuf, mode: u32 },
    #[error("the signing key {} is not an ed25519 seed (64 hex digits, as `sandmine signing-key` writes)", path.display())]
    NotASeed { path: PathBuf },
    #[error("publish.signing_key is not an ed25519 seed (64 hex digits, as `sandmine signing-key` writes into its file)")]
    NotASeedValue,
    #[error("set one of publish.signing_key_file and publish.signing_key, not both")]
    TwoKeys,
    #[error("candidate file {0:?} collides with the signatures the publisher writes (`.sig`)")]
    Reserved(String),
}

/// Why a profile's signature was refused. The messages are one line each
/// and name no file: callers say which profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("no signature (missing {0})")]
    Missing(String),
    #[error("the signature file is not valid: {0}")]
    Malformed(String),
    #[error("signed by {0}, which is not a trusted key")]
    Untrusted(PublicKey),
    #[error("the signature by {0} does not match the profile's bytes: altered after signing")]
    Mismatch(PublicKey),
}

/// The content of a `.sig` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigFile {
    /// Who claims to have signed.
    pub key: PublicKey,
    pub sig: [u8; SIGNATURE_BYTES],
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SigJson {
    alg: String,
    key: String,
    sig: String,
}

impl SigFile {
    /// `key`'s signature of `bytes`.
    pub fn sign(key: &HostKey, bytes: &[u8]) -> SigFile {
        SigFile {
            key: key.public_key(),
            sig: key.sign(bytes),
        }
    }

    /// The signature as 128 hex digits (what an OCI annotation carries).
    pub fn sig_hex(&self) -> String {
        hex(&self.sig)
    }

    /// The `.sig` file's bytes: one line of JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        let j = SigJson {
            alg: ALG.into(),
            key: self.key.to_string(),
            sig: self.sig_hex(),
        };
        let mut v = serde_json::to_vec(&j).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Parses a `.sig` file (the one parser).
    pub fn parse(bytes: &[u8]) -> Result<SigFile, VerifyError> {
        let j: SigJson = serde_json::from_slice(bytes)
            .map_err(|e| VerifyError::Malformed(format!("not sandmine signature JSON ({e})")))?;
        if j.alg != ALG {
            return Err(VerifyError::Malformed(format!(
                "algorithm {:?}, expected {ALG:?}",
                j.alg
            )));
        }
        let key: PublicKey = j.key.parse().map_err(VerifyError::Malformed)?;
        let sig = unhex::<SIGNATURE_BYTES>(&j.sig)
            .ok_or_else(|| VerifyError::Malformed("\"sig\" is not 128 hex digits".to_string()))?;
        Ok(SigFile { key, sig })
    }

    /// Ok with the signer when this is the signature of `bytes` by one of
    /// `trusted`.
    pub fn verify(&self, bytes: &[u8], trusted: &[PublicKey]) -> Result<PublicKey, VerifyError> {
        if !trusted.contains(&self.key) {
            return Err(VerifyError::Untrusted(self.key));
        }
        if !self.key.verifies(bytes, &self.sig) {
            return Err(VerifyError::Mismatch(self.key));
        }
        Ok(self.key)
    }
}

/// Checks the `.sig` file bytes `sig` (None: missing, named `sig_name`)
/// for the profile `bytes` against `trusted`.
pub fn verify(
    bytes: &[u8],
    sig: Option<&[u8]>,
    sig_name: &str,
    trusted: &[PublicKey],
) -> Result<PublicKey, VerifyError> {
    let sig = sig.ok_or_else(|| VerifyError::Missing(sig_name.to_string()))?;
    SigFile::parse(sig)?.verify(bytes, trusted)
}

/// The signature file's path for the profile file `rel`.
pub fn sig_path(rel: &str) -> String {
    format!("{rel}{SIG_SUFFIX}")
}

/// True for a signature file's path.
pub fn is_sig(rel: &str) -> bool {
    rel.ends_with(SIG_SUFFIX)
}

/// Reads an ed25519 signing key (seed) file; refuses one others can read
/// or write.
pub fn load_key(path: &Path) -> Result<HostKey, SignError> {
    let read = |source| SignError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mode = std::fs::metadata(path).map_err(read)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SignError::Exposed {
            path: path.to_path_buf(),
            mode,
        });
    }
    let text = std::fs::read_to_string(path).map_err(read)?;
    HostKey::from_seed_hex(&text).ok_or_else(|| SignError::NotASeed {
        path: path.to_path_buf(),
    })
}

/// How a round signs: with a key, or (only when the operator said so)
/// not at all.
#[derive(Debug, Clone)]
pub enum Signing {
    Key(Box<HostKey>),
    Unsigned,
}

impl Signing {
    /// From `[publish]`: the key of `signing_key_file` or `signing_key`;
    /// without one, unsigned only when `allow_unsigned`, else
    /// [`SignError::NoKey`].
    pub fn from_config(c: &crate::PublishConfig) -> Result<Signing, SignError> {
        let seed = c.signing_key.as_ref().filter(|s| !s.is_empty());
        match (&c.signing_key_file, seed, c.allow_unsigned) {
            (Some(_), Some(_), _) => Err(SignError::TwoKeys),
            (Some(p), None, _) => load_key(p).map(|k| Signing::Key(Box::new(k))),
            (None, Some(s), _) => HostKey::from_seed_hex(s.expose())
                .map(|k| Signing::Key(Box::new(k)))
                .ok_or(SignError::NotASeedValue),
            (None, None, true) => Ok(Signing::Unsigned),
            (None, None, false) => Err(SignError::NoKey),
        }
    }

    /// `cand` with a `.sig` for each of its files (and its log-mode
    /// variant's), or unchanged when unsigned. A candidate file that
    /// already ends in `.sig` is refused.
    pub fn apply(&self, mut cand: Candidate) -> Result<Candidate, SignError> {
        let Signing::Key(key) = self else {
            return Ok(cand);
        };
        if let Some(f) = cand.files.keys().find(|f| is_sig(f)) {
            return Err(SignError::Reserved(f.clone()));
        }
        let sigs: Vec<(String, Vec<u8>)> = cand
            .files
            .iter()
            .map(|(rel, bytes)| (sig_path(rel), SigFile::sign(key, bytes).to_bytes()))
            .collect();
        cand.files.extend(sigs);
        if let Some(log) = cand.log_variant.take() {
            cand.log_variant = Some(Box::new(self.apply(*log)?));
        }
        Ok(cand)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn key(b: u8) -> HostKey {
        HostKey::from_seed([b; 32])
    }

    #[test]
    fn sign_then_verify_and_every_refusal() {
        let k = key(7);
        let bytes = b"{\"defaultAction\":\"SCMP_ACT_ERRNO\"}\n";
        let s = SigFile::sign(&k, bytes);
        let file = s.to_bytes();
        let text = String::from_utf8(file.clone()).expect("utf8");
        assert_eq!(
            text,
            format!(
                "{{\"alg\":\"ed25519\",\"key\":\"{}\",\"sig\":\"{}\"}}\n",
                k.public_key(),
                s.sig_hex()
            )
        );
        assert_eq!(s.sig_hex().len(), 128);
        // Deterministic: the same key and bytes give the same file.
        assert_eq!(SigFile::sign(&k, bytes).to_bytes(), file);
        assert_eq!(SigFile::parse(&file).expect("parse"), s);
        let trusted = [key(1).public_key(), k.public_key()];
        assert_eq!(
            verify(bytes, Some(&file), "p.sig", &trusted),
            Ok(k.public_key())
        );
        // One byte changed.
        let mut tampered = bytes.to_vec();
        tampered[3] ^= 1;
        assert_eq!(
            verify(&tampered, Some(&file), "p.sig", &trusted),
            Err(VerifyError::Mismatch(k.public_key()))
        );
        // Signed by a key not trusted.
        assert_eq!(
            verify(bytes, Some(&file), "p.sig", &[key(1).public_key()]),
            Err(VerifyError::Untrusted(k.public_key()))
        );
        // A signature by another key claimed as k's.
        let forged = SigFile {
            key: k.public_key(),
            sig: key(1).sign(bytes),
        };
        assert_eq!(
            forged.verify(bytes, &trusted),
            Err(VerifyError::Mismatch(k.public_key()))
        );
        assert_eq!(
            verify(bytes, None, "p.sig", &trusted).map_err(|e| e.to_string()),
            Err("no signature (missing p.sig)".to_string())
        );
        for (bad, why) in [
            (&b"garbage"[..], "not sandmine signature JSON"),
            (
                br#"{"alg":"rsa","key":"00","sig":"00"}"#,
                "algorithm \"rsa\", expected \"ed25519\"",
            ),
            (
                br#"{"alg":"ed25519","key":"00","sig":"00"}"#,
                "is not an ed25519 public key",
            ),
            (
                br#"{"alg":"ed25519","key":"00","sig":"00","x":1}"#,
                "unknown field `x`",
            ),
        ] {
            let e = SigFile::parse(bad).expect_err("refused").to_string();
            assert!(
                e.starts_with("the signature file is not valid: ") && e.contains(why),
                "{e}"
            );
        }
        let short = format!(
            "{{\"alg\":\"ed25519\",\"key\":\"{}\",\"sig\":\"abcd\"}}",
            k.public_key()
        );
        assert_eq!(
            SigFile::parse(short.as_bytes()).map_err(|e| e.to_string()),
            Err("the signature file is not valid: \"sig\" is not 128 hex digits".to_string())
        );
    }

    #[test]
    fn key_file_must_be_private_and_a_seed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("publish.key");
        let k = key(9);
        std::fs::write(&path, format!("{}\n", k.seed_hex())).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(
            load_key(&path).expect("loaded").public_key(),
            k.public_key()
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = load_key(&path).expect_err("0644").to_string();
        assert_eq!(
            e,
            format!("the signing key {} is readable or writable by others (mode 0644): anyone who reads it can sign profiles; `chmod 600` it, and if others may have read it, make a new key and rotate (docs/OPERATIONS.md)", path.display())
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        std::fs::write(&path, "hello\n").expect("write");
        assert!(load_key(&path)
            .expect_err("garbage")
            .to_string()
            .contains("is not an ed25519 seed"));
        let e = load_key(&dir.path().join("none")).expect_err("missing");
        assert!(matches!(e, SignError::Read { .. }), "{e}");
    }

    #[test]
    fn config_decides_and_apply_signs_every_file() {
        let mut c = crate::PublishConfig::default();
        assert_eq!(
            Signing::from_config(&c).expect_err("no key").to_string(),
            NO_KEY
        );
        c.allow_unsigned = true;
        assert!(matches!(
            Signing::from_config(&c).expect("unsigned"),
            Signing::Unsigned
        ));
        // The seed as a value (a Kubernetes Secret in the environment).
        let k = key(4);
        c.signing_key = Some(k.seed_hex().into());
        match Signing::from_config(&c).expect("seed") {
            Signing::Key(got) => assert_eq!(got.public_key(), k.public_key()),
            Signing::Unsigned => panic!("unsigned with a seed"),
        }
        assert!(!format!("{c:?}").contains(&k.seed_hex()), "{c:?}");
        c.signing_key = Some("abc".into());
        assert_eq!(
            Signing::from_config(&c).expect_err("bad seed").to_string(),
            "publish.signing_key is not an ed25519 seed (64 hex digits, as `sandmine signing-key` writes into its file)"
        );
        c.signing_key_file = Some("/k".into());
        assert_eq!(
            Signing::from_config(&c).expect_err("two").to_string(),
            "set one of publish.signing_key_file and publish.signing_key, not both"
        );
        c.signing_key_file = None;
        c.signing_key = None;
        let log = Candidate {
            image: "a".into(),
            files: BTreeMap::from([("seccomp.json".to_string(), b"log".to_vec())]),
            ..Candidate::default()
        };
        let cand = Candidate {
            image: "a".into(),
            files: BTreeMap::from([
                ("seccomp.json".to_string(), b"x".to_vec()),
                ("kubelet/sandmine/a.json".to_string(), b"y".to_vec()),
            ]),
            log_variant: Some(Box::new(log)),
            ..Candidate::default()
        };
        assert_eq!(
            Signing::Unsigned.apply(cand.clone()).expect("unsigned"),
            cand
        );
        let k = key(3);
        let signed = Signing::Key(Box::new(k.clone()))
            .apply(cand)
            .expect("signed");
        assert_eq!(
            signed.files.keys().collect::<Vec<_>>(),
            [
                "kubelet/sandmine/a.json",
                "kubelet/sandmine/a.json.sig",
                "seccomp.json",
                "seccomp.json.sig"
            ]
        );
        for (rel, bytes) in &signed.files {
            if !is_sig(rel) {
                let sig = signed.files.get(&sig_path(rel)).map(Vec::as_slice);
                assert_eq!(
                    verify(bytes, sig, rel, &[k.public_key()]),
                    Ok(k.public_key())
                );
            }
        }
        let log = signed.log_variant.as_ref().expect("log variant");
        assert_eq!(
            log.files.keys().collect::<Vec<_>>(),
            ["seccomp.json", "seccomp.json.sig"]
        );
        // Signing twice is refused: the files already hold signatures.
        let e = Signing::Key(Box::new(k)).apply(signed).expect_err("twice");
        assert_eq!(
            e.to_string(),
            "candidate file \"kubelet/sandmine/a.json.sig\" collides with the signatures the publisher writes (`.sig`)"
        );
    }
}
