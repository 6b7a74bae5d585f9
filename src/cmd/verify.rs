//! `sandmine verify`: check a published profile's detached signature
//! (`PROFILE.sig`, `publish::sign`) against the publisher's public key, so
//! that a node or a pipeline can refuse a profile nobody it trusts signed.

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;

const EXAMPLES: &str = concat!(
    "Examples:\n",
    "  sandmine verify --key 3b6a27bc...(64 hex digits) /srv/profiles/nginx-1.25-3f2a/9c1e0a7b5d2f/seccomp.json\n",
    "  sandmine verify --key-file /etc/sandmine/publish.pub seccomp.json --sig /tmp/seccomp.json.sig\n",
    "  # during a key rotation: either key\n",
    "  sandmine verify --key OLD_HEX --key NEW_HEX seccomp.json",
);

#[derive(clap::Args, Debug)]
#[command(
    about = "Check a published profile's signature against the publisher's public key",
    long_about = "Every profile file F that `sandmine publish` writes has a detached ed25519 \
signature F.sig beside it, made with publish.signing_key_file over F's exact bytes \
(docs/OPERATIONS.md, \"Signed profiles\"). This command checks one: it prints `ok` and exits 0 \
when the signature is valid and by one of the given keys; otherwise it prints one line saying \
why (no signature, not a signature file, signed by another key, or the profile's bytes do not \
match: altered after signing) and exits 1. Usage errors (unreadable profile or key file, bad \
key) exit 2.",
    after_help = EXAMPLES
)]
pub struct VerifyArgs {
    /// A trusted public key (64 hex digits, as `sandmine signing-key`
    /// prints). Repeatable; at least one --key or --key-file.
    #[arg(long, value_name = "HEX", required_unless_present = "key_file")]
    pub key: Vec<schemas::wire::PublicKey>,
    /// A file holding a trusted public key (64 hex digits). Repeatable.
    #[arg(long, value_name = "FILE")]
    pub key_file: Vec<PathBuf>,
    /// The profile file to check.
    #[arg(value_name = "PROFILE")]
    pub profile: PathBuf,
    /// Its signature file (default: PROFILE.sig).
    #[arg(long, value_name = "SIG")]
    pub sig: Option<PathBuf>,
}

pub fn main(a: VerifyArgs) -> Result<ExitCode> {
    let keys = super::sync_profiles::trusted_keys(&a.key, &a.key_file)?;
    let bytes = std::fs::read(&a.profile)
        .with_context(|| format!("cannot read the profile {}", a.profile.display()))?;
    let sig_path = a.sig.clone().unwrap_or_else(|| {
        let mut p = a.profile.clone().into_os_string();
        p.push(publish::sign::SIG_SUFFIX);
        PathBuf::from(p)
    });
    let sig = match std::fs::read(&sig_path) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read {}", sig_path.display()));
        }
    };
    match publish::sign::verify(
        &bytes,
        sig.as_deref(),
        &sig_path.display().to_string(),
        &keys,
    ) {
        Ok(_) => {
            println!("ok");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("sandmine: refused {}: {e}", a.profile.display());
            Ok(ExitCode::from(1))
        }
    }
}
