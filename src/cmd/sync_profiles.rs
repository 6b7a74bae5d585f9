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
    "  # as a DaemonSet container: every 30 s until SIGTERM\n",
    "  sandmine sync-profiles --from /profiles --to /var/lib/kubelet/seccomp --interval 30s\n",
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
publisher recorded, and each profile must parse. A version that fails is refused with the reason, \
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
    let Some(every) = a.interval else {
        let r = pass(&a)?;
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
        loop {
            match pass(&a) {
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

fn pass(a: &SyncArgs) -> Result<publish::SyncReport> {
    publish::sync_kubelet(&a.from, &a.to)
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
