//! `sandmine lever`: the operators' levers on published profiles (roll
//! back, pin, force log mode), each one publication recorded in the
//! target's history (docs/OPERATIONS.md).

use crate::compiling::{select_images, with_store, PolicyArgs};
use crate::config::ConfigArgs;
use crate::publishing;
use crate::settings::Settings;
use anyhow::{bail, Result};
use publish::LeverAction;
use std::path::PathBuf;
use std::process::ExitCode;

const EXAMPLES: &str = concat!(
    "Examples (a bad profile broke nginx:1.25):\n",
    "  sandmine lever versions nginx:1.25 --git /srv/profiles-repo\n",
    "  sandmine lever rollback nginx:1.25 --to 8e7f0c128629 --reason 'INC-42: denies sendfile' --git /srv/profiles-repo\n",
    "  sandmine lever unpin nginx:1.25 --reason 'INC-42 fixed' --git /srv/profiles-repo\n",
    "\nOther levers:\n",
    "  sandmine lever pin nginx:1.25 --reason 'freeze for the release' --dir /srv/sandmine-profiles\n",
    "  sandmine lever force-log nginx:1.25 --reason 'new release, relearning' --git /srv/profiles-repo\n",
    "  sandmine lever release-log nginx:1.25 --reason 'relearned' --git /srv/profiles-repo",
);

#[derive(clap::Args, Debug)]
#[command(
    about = "Operators' levers: roll an image's profile back, pin it, force it into log mode",
    long_about = "Each lever is one publication on every configured dir and git target \
(publish.dir, publish.git, or --dir/--git): one git commit (or one line in the directory \
target's <slug>/levers.jsonl) saying which lever, who (--by, default $SUDO_USER or $USER) \
and why (--reason, required). The lever is kept in the image's `current` meta, so every \
later `sandmine publish` round and every scheduled round inside `aggregate`/`standalone` \
reads it from the target:\n\n\
  - rollback --to V: publishes version V again (its files from the target's history) and \
pins it;\n\
  - pin: rounds leave the version in force alone and report the image as pinned, until unpin;\n\
  - force-log: compiles the image in log mode (SCMP_ACT_LOG: nothing denied, everything \
unlisted logged) from the store and publishes it now; every round publishes its log-mode \
profile until release-log, after which the next round publishes its own state through the gate.\n\n\
A lever one target refuses (unknown image or version, already pinned...) changes no target. \
The NATS object store and the OCI registry target keep no history and no levers: with \
publish.object_store or [publish.oci] set, levers are refused.",
    after_help = EXAMPLES
)]
pub struct LeverArgs {
    #[command(subcommand)]
    pub lever: Lever,
}

#[derive(clap::Subcommand, Debug)]
pub enum Lever {
    /// List the versions each target keeps for IMAGE, newest first, and the levers in force.
    #[command(after_help = EXAMPLES)]
    Versions {
        image: String,
        #[command(flatten)]
        t: TargetArgs,
    },
    /// Publish an earlier version of IMAGE again and pin it there.
    #[command(after_help = EXAMPLES)]
    Rollback {
        image: String,
        /// The version: its 12-digit short form, or sha256:<hex>.
        #[arg(long, value_name = "VERSION")]
        to: String,
        #[command(flatten)]
        w: WhoArgs,
        #[command(flatten)]
        t: TargetArgs,
    },
    /// Pin IMAGE at the version in force: rounds leave it alone until unpin.
    #[command(after_help = EXAMPLES)]
    Pin {
        image: String,
        /// Refuse unless this is the version in force.
        #[arg(long, value_name = "VERSION")]
        version: Option<String>,
        #[command(flatten)]
        w: WhoArgs,
        #[command(flatten)]
        t: TargetArgs,
    },
    /// Let rounds publish IMAGE again.
    #[command(after_help = EXAMPLES)]
    Unpin {
        image: String,
        #[command(flatten)]
        w: WhoArgs,
        #[command(flatten)]
        t: TargetArgs,
    },
    /// Publish IMAGE's log-mode profile now and in every round until release-log.
    #[command(after_help = EXAMPLES)]
    ForceLog {
        image: String,
        #[command(flatten)]
        w: WhoArgs,
        #[command(flatten)]
        t: TargetArgs,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// End a forced log mode: the next round publishes IMAGE's own state.
    #[command(after_help = EXAMPLES)]
    ReleaseLog {
        image: String,
        #[command(flatten)]
        w: WhoArgs,
        #[command(flatten)]
        t: TargetArgs,
    },
}

#[derive(clap::Args, Debug)]
pub struct WhoArgs {
    /// Why (required): recorded in the commit and the meta, shown in reports.
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// Who: recorded beside the reason (default $SUDO_USER, else $USER).
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct TargetArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Directory target (overrides publish.dir).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Git work tree target (overrides publish.git).
    #[arg(long, value_name = "DIR")]
    pub git: Option<PathBuf>,
    #[arg(long, value_name = "MS", hide = true)]
    pub now_ms: Option<u64>,
}

impl TargetArgs {
    fn settings(&self) -> Result<Settings> {
        let mut s: Settings = self.config.load()?;
        if self.dir.is_some() {
            s.publish.dir = self.dir.clone();
        }
        if self.git.is_some() {
            s.publish.git = self.git.clone();
        }
        Ok(s)
    }

    fn now(&self) -> u64 {
        self.now_ms.unwrap_or_else(sysutil::clock::now_ms)
    }
}

impl WhoArgs {
    fn who(&self) -> Result<String> {
        let by = match &self.by {
            Some(b) => b.clone(),
            None => ["SUDO_USER", "USER", "LOGNAME"]
                .iter()
                .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()))
                .unwrap_or_default(),
        };
        let by = by.trim().to_string();
        if by.is_empty() || by.contains('\n') {
            bail!("who pulls the lever? --by NAME (one line; $SUDO_USER and $USER are unset)");
        }
        if self.reason.contains('\n') {
            bail!("--reason must be one line");
        }
        Ok(by)
    }
}

pub fn main(args: LeverArgs) -> Result<ExitCode> {
    let (image, action, w, t) = match args.lever {
        Lever::Versions { image, t } => return versions(&image, &t),
        Lever::Rollback { image, to, w, t } => (image, LeverAction::Rollback { to }, w, t),
        Lever::Pin {
            image,
            version,
            w,
            t,
        } => (image, LeverAction::Pin { version }, w, t),
        Lever::Unpin { image, w, t } => (image, LeverAction::Unpin, w, t),
        Lever::ReleaseLog { image, w, t } => (image, LeverAction::ReleaseLog, w, t),
        Lever::ForceLog {
            image,
            w,
            t,
            policy,
        } => return force_log(&image, &w, &t, &policy),
    };
    let by = w.who()?;
    let s = t.settings()?;
    let now = t.now();
    let rt = tokio::runtime::Runtime::new()?;
    let lines = rt.block_on(publishing::lever(
        &s.publish, &image, &action, &by, &w.reason, None, now,
    ))?;
    for l in lines {
        println!("{l}");
    }
    Ok(ExitCode::SUCCESS)
}

/// force-log compiles the image (as `publish` would, in log mode) from the
/// store, then publishes that.
fn force_log(image: &str, w: &WhoArgs, t: &TargetArgs, pa: &PolicyArgs) -> Result<ExitCode> {
    let by = w.who()?;
    let s = t.settings()?;
    let now = t.now();
    let mut pa = pa.clone();
    // The publisher's policy unless given here.
    if pa.policy.is_none() {
        pa.policy = s.publish.policy.clone();
    }
    let mut compiler = pa.load()?;
    let publish_cfg = s.publish.clone();
    with_store(&s.store, |store| async move {
        select_images(&store, &[image.to_string()]).await?;
        compiler.read_observed(&store).await?;
        // The log-mode profile denies nothing, so syscalls added after
        // denials need not be compiled in; the publication carries their
        // record from the meta in force (`publish::build_publication`).
        let cand = compiler.candidate(&store, image, now, true, &[]).await?;
        let log = cand.log_variant.map(|b| *b);
        let lines = publishing::lever(
            &publish_cfg,
            image,
            &LeverAction::ForceLog,
            &by,
            &w.reason,
            log.as_ref(),
            now,
        )
        .await?;
        for l in lines {
            println!("{l}");
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn versions(image: &str, t: &TargetArgs) -> Result<ExitCode> {
    let s = t.settings()?;
    let rt = tokio::runtime::Runtime::new()?;
    let all = rt.block_on(publishing::versions(&s.publish, image))?;
    for (target, current, versions) in all {
        println!("{target}:");
        let Some(cur) = current else {
            println!("  {image} has nothing published here");
            continue;
        };
        for (what, m) in [
            ("pinned", &cur.levers.pinned),
            ("forced log mode", &cur.levers.forced_log),
        ] {
            if let Some(m) = m {
                println!(
                    "  {what} by {} since {}: {}",
                    m.by,
                    sysutil::clock::rfc3339_s(m.at_ms),
                    m.reason
                );
            }
        }
        for v in versions {
            println!(
                "  {}{} {} {} {} syscalls",
                if v.version == cur.version { "* " } else { "  " },
                v.version_short,
                v.state,
                sysutil::clock::rfc3339_s(v.published_at_ms),
                v.allowed.values().map(|s| s.len()).sum::<usize>(),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
