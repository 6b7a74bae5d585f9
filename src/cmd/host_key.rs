//! `sandmine host-key`: print this host's public signing key as an
//! `enrolled_hosts` entry (issue 9 item 2), creating the key if there is
//! none yet, so that a host can be enrolled before its collector starts.

use crate::config::ConfigArgs;
use crate::settings::Settings;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(
    about = "Print this host's public signing key, as an entry for the aggregators' enrolled_hosts",
    long_about = "Every wire v5 message a collector sends is signed with its host's ed25519 key \
(collector.signing_key; default host.key in collector.state_dir, mode 0600). An aggregator \
with aggregator.enrolled_hosts set stores a message only if its host is enrolled there with \
that key and not revoked. This command prints the TOML entry to add to that file: the host \
id (collector.host_id, else /etc/machine-id) and the public key. If the key file does not \
exist yet it is created (as the collector would on its first start), and stderr says so. \
The seed itself is never printed.\n\n\
Example:\n  sandmine host-key --config /etc/sandmine/sandmine.toml >> enrolled-hosts.toml\n  \
sandmine host-key --path /var/lib/sandmine/collector/host.key --host-id web-1"
)]
pub struct HostKeyArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The key file (default: collector.signing_key, else host.key in
    /// collector.state_dir).
    #[arg(long, value_name = "FILE")]
    pub path: Option<PathBuf>,
    /// The host id to print (default: collector.host_id, else
    /// /etc/machine-id).
    #[arg(long)]
    pub host_id: Option<String>,
}

pub fn main(args: HostKeyArgs) -> Result<ExitCode> {
    crate::logging::init();
    let s: Settings = args.config.load()?;
    let c = &s.collector;
    let path = args.path.clone().unwrap_or_else(|| {
        collector::daemon::hostkey::path_of(c.signing_key.as_deref(), &c.state_dir)
    });
    let host = match args.host_id.clone().or_else(|| c.host_id.clone()) {
        Some(h) => h,
        None => std::fs::read_to_string("/etc/machine-id")
            .map(|s| s.trim().to_string())
            .context("no collector.host_id and cannot read /etc/machine-id; give --host-id")?,
    };
    let (key, created) = collector::daemon::hostkey::load_or_create(&path)
        .with_context(|| format!("cannot use the signing key {}", path.display()))?;
    if created {
        eprintln!(
            "created the signing key {} (mode 0600); the collector will use it",
            path.display()
        );
    }
    println!(
        "[hosts.{}]\nkeys = [\"{}\"]",
        toml_key(&host),
        key.public_key()
    );
    Ok(ExitCode::SUCCESS)
}

/// `host` as a TOML key: bare when it can be, else quoted.
fn toml_key(host: &str) -> String {
    let bare = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if bare {
        host.to_string()
    } else {
        toml::Value::String(host.to_string()).to_string()
    }
}
