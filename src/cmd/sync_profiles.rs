//! `sandmine sync-profiles`: keep a node's kubelet seccomp directory equal
//! to the versions in force of a directory publish target
//! (`publish::sync`; deploy/README.md, "Profiles reach the nodes").

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const EXAMPLES: &str = concat!(
    "Examples:\n",
    "  # once, from the directory target `sandmine publish --dir` writes (mounted on the node)\n",
    "  sandmine sync-profiles --from /srv/sandmine-profiles --to /var/lib/kubelet/seccomp\n",
    "  # as a DaemonSet container: every 30 s until SIGTERM, only profiles the publisher signed\n",
    "  sandmine sync-profiles --from /profiles --to /var/lib/kubelet/seccomp --interval 30s \\\n",
    "      --public-key-file /etc/sandmine/publish.pub\n",
    "  # during a key rotation: trust the old and the new key\n",
    "  sandmine sync-profiles --from /profiles --to /var/lib/kubelet/seccomp --public-key OLD_HEX --public-key NEW_HEX\n",
    "\nA pod then uses its image's profile with\n",
    "  securityContext: {seccompProfile: {type: Localhost, localhostProfile: sandmine/<slug>.json}}\n",
    "where <slug> is the image's slug (the folder name under --from; `sandmine compile` prints it).",
);

#[derive(clap::Args, Debug)]
#[command(
    about = "Install the published profiles in force into a kubelet's seccomp directory",
    long_about = "Reads a directory publish target (the layout `sandmine publish --dir` writes: \
<slug>/current names the version in force of each image) and installs the kubelet/ files of \
each version in force under --to (the kubelet's seccomp directory, /var/lib/kubelet/seccomp), \
so that pods can reference `localhost/sandmine/<slug>.json`.\n\n\
Each version is verified before anything is installed: its files must hash to the version the \
publisher recorded, and each profile must parse. With --public-key or --public-key-file (nodes should always pass one), each profile must also carry a valid signature (its .sig file) by one of those keys. A version that fails is refused with the reason, \
and the profile already installed stays. Files are replaced atomically (temporary file, fsync, \
rename), so a pod starting meanwhile reads the old or the new profile, never a part. A profile \
whose image is no longer published is kept (a pod referencing it could not start without it) and \
reported as stale.\n\n\
Exit status: 0 when every image's version in force is installed, 1 when some were refused \
(the others are installed), 2 on errors (--from unreadable, --to not writable). With \
--interval it runs until SIGTERM and logs each pass that changed or refused something.",
    after_help = EXAMPLES
)]
pub struct SyncArgs {
    /// Root of the directory publish target.
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,
    /// The kubelet's seccomp directory.
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    /// Repeat every DURATION (e.g. 30s, 5m) until SIGTERM, instead of once.
    #[arg(long, value_name = "DURATION", value_parser = parse_interval)]
    pub interval: Option<Duration>,
    /// Install only profiles signed by this ed25519 public key (64 hex
    /// digits, as `sandmine signing-key` prints). Repeatable: any of the
    /// keys is accepted (key rotation).
    #[arg(long, value_name = "HEX")]
    pub public_key: Vec<schemas::wire::PublicKey>,
    /// As --public-key, the key read from FILE (its 64 hex digits).
    /// Repeatable.
    #[arg(long, value_name = "FILE")]
    pub public_key_file: Vec<PathBuf>,
}

/// The public keys of `--key HEX` and `--key-file FILE` arguments.
pub fn trusted_keys(
    hex: &[schemas::wire::PublicKey],
    files: &[PathBuf],
) -> Result<Vec<schemas::wire::PublicKey>> {
    let mut keys = hex.to_vec();
    for f in files {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("cannot read the public key file {}", f.display()))?;
        let k = text
            .trim()
            .parse()
            .map_err(|e: String| anyhow::anyhow!("public key file {}: {e}", f.display()))?;
        keys.push(k);
    }
    Ok(keys)
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = sysutil::duration::parse_duration(s).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("must be more than 0".into());
    }
    Ok(d)
}

pub fn main(a: SyncArgs) -> Result<ExitCode> {
    if !a.from.is_dir() {
        bail!("--from {}: not a directory", a.from.display());
    }
    if !a.to.is_dir() {
        bail!(
            "--to {}: not a directory (the kubelet creates its seccomp directory; create it first when testing)",
            a.to.display()
        );
    }
    let keys = trusted_keys(&a.public_key, &a.public_key_file)?;
    let Some(every) = a.interval else {
        let r = pass(&a, &keys)?;
        print_report(&r, true);
        return Ok(if r.refused.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    };
    crate::logging::init();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async {
        let mut stop = crate::shutdown::stop_signal();
        log::info!(
            "syncing {} -> {} every {:?}",
            a.from.display(),
            a.to.display(),
            every
        );
        if keys.is_empty() {
            log::warn!("no --public-key: installing profiles without checking their signatures");
        }
        loop {
            match pass(&a, &keys) {
                Ok(r) => {
                    if !r.installed.is_empty() || !r.refused.is_empty() {
                        print_report(&r, false);
                    }
                }
                // A pass that could not list or write: logged, retried at
                // the next interval (the source may be remounting).
                Err(e) => log::error!("sync pass failed: {e:#}"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => break,
            }
            if *stop.borrow() {
                break;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn pass(a: &SyncArgs, keys: &[schemas::wire::PublicKey]) -> Result<publish::SyncReport> {
    publish::sync_kubelet(&a.from, &a.to, keys)
        .with_context(|| format!("syncing {} into {}", a.from.display(), a.to.display()))
}

fn print_report(r: &publish::SyncReport, all: bool) {
    for (path, image, v) in &r.installed {
        println!("installed {path} ({image} version {v})");
    }
    if all {
        for path in &r.unchanged {
            println!("unchanged {path}");
        }
        for path in &r.stale {
            println!("stale {path} (no image in force installs it; kept)");
        }
    }
    for (image, why) in &r.refused {
        eprintln!("sandmine: refused {image}: {why}");
    }
    println!(
        "sync: {} installed, {} unchanged, {} refused, {} stale",
        r.installed.len(),
        r.unchanged.len(),
        r.refused.len(),
        r.stale.len()
    );
}
