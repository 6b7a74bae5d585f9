//! `sandmine signing-key`: make (or read) the publisher's ed25519 signing
//! key and print its public key, for `[publish] signing_key_file` and the
//! nodes' `sync-profiles --public-key` / `sandmine verify --key`.

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(
    about = "Create the publisher's signing key (if missing) and print its public key",
    long_about = "Published profiles are signed with an ed25519 key: a file holding its seed \
(64 hex digits, mode 0600), the same format as a collector's host key. This command creates \
FILE from the kernel's random source if it does not exist (stderr says so) and prints the \
public key (64 hex digits) on stdout; for an existing FILE it only prints the public key. \
Set publish.signing_key_file to FILE, and give the public key to the nodes \
(`sandmine sync-profiles --public-key`) and to `sandmine verify --key`. The seed itself is \
never printed.\n\n\
Examples:\n  sandmine signing-key --out /etc/sandmine/publish.key > /etc/sandmine/publish.pub\n  \
sandmine signing-key --out /etc/sandmine/publish.key   # prints the public key of the existing key"
)]
pub struct SigningKeyArgs {
    /// The key file to create (or read, when it exists).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

pub fn main(a: SigningKeyArgs) -> Result<ExitCode> {
    let key = if a.out.exists() {
        publish::sign::load_key(&a.out)?
    } else {
        let (key, _) = collector::daemon::hostkey::load_or_create(&a.out)
            .with_context(|| format!("cannot create the signing key {}", a.out.display()))?;
        eprintln!(
            "created the signing key {} (mode 0600); set publish.signing_key_file to it",
            a.out.display()
        );
        key
    };
    println!("{}", key.public_key());
    Ok(ExitCode::SUCCESS)
}
