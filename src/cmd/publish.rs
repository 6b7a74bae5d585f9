//! `sandmine publish`: one publishing round, for a CronJob or by hand.

use crate::compiling::{select_images, with_store, PolicyArgs};
use crate::config::ConfigArgs;
use crate::publishing;
use crate::settings::Settings;
use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(
    about = "Compile every image in the store and publish its profile: versioned, gated, with a diff",
    long_about = "One publishing round (run it from a CronJob; `aggregate` and `standalone` \
also run rounds on [publish] schedule when a target is configured). Every image is compiled \
as `sandmine compile` would; its profile gets a version (the sha256 of its files), and is \
published to each target (directory, git work tree with one commit per changed image, NATS \
object store, OCI registry as a seccomp-profile artifact from [publish.oci], with the \
`@sha256:` reference of each push printed) unless the gate holds it back:\n\n\
  - it would allow a must-deny syscall, or a new syscall seen on fewer than \
publish.min_hosts hosts (never loosens silently);\n\
  - it drops a syscall used less than publish.shrink_after ago (removals wait);\n\
  - the image is not ready (nothing to publish).\n\n\
Every profile file F is published with its ed25519 signature F.sig, by \
publish.signing_key_file (`sandmine signing-key` makes one); without a key publishing refuses \
to run unless publish.allow_unsigned = true. Check one with `sandmine verify`.\n\n\
Prints what happened per image (and JSON with --json). Exit status 1 if an image \
failed to publish (a profile over the OCI limits included); held-back images are not failures.\n\n\
Examples:\n  sandmine signing-key --out /etc/sandmine/publish.key\n  \
sandmine publish --set 'publish.signing_key_file=\"/etc/sandmine/publish.key\"' --dir /srv/sandmine-profiles\n  \
sandmine publish --config sandmine.toml   # with [publish.oci] registry = \"registry.internal:5000\""
)]
pub struct PublishArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Directory target (overrides publish.dir).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Git work tree target (overrides publish.git).
    #[arg(long, value_name = "DIR")]
    pub git: Option<PathBuf>,
    /// Also publish to the NATS object store (publish.object_store).
    #[arg(long)]
    pub object_store: bool,
    /// Policy file (overrides publish.policy).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// auto | none | FILE (overrides publish.runtime_base).
    #[arg(long, value_name = "auto|none|FILE")]
    pub runtime_base: Option<String>,
    #[command(flatten)]
    pub reach: crate::reaching::ReachArgs,
    /// Print the reports as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    #[arg(long, value_name = "MS", hide = true)]
    pub now_ms: Option<u64>,
}

pub fn main(args: PublishArgs) -> Result<ExitCode> {
    let mut s: Settings = args.config.load()?;
    if args.dir.is_some() {
        s.publish.dir = args.dir.clone();
    }
    if args.git.is_some() {
        s.publish.git = args.git.clone();
    }
    s.publish.object_store |= args.object_store;
    if args.policy.is_some() {
        s.publish.policy = args.policy.clone();
    }
    if let Some(rb) = &args.runtime_base {
        s.publish.runtime_base = rb.clone();
    }
    let mut compiler = PolicyArgs {
        policy: s.publish.policy.clone(),
        runtime_base: s.publish.runtime_base.clone(),
        reach: args.reach.or_config(&s.publish),
    }
    .load()?;
    let now = args.now_ms.unwrap_or_else(sysutil::clock::now_ms);
    // This command logs nothing: the warning of an unsigned round goes
    // to stderr itself (a wrong key fails the round, which says why).
    if matches!(
        publish::Signing::from_config(&s.publish),
        Ok(publish::Signing::Unsigned)
    ) {
        eprintln!("sandmine: warning: {}", publishing::UNSIGNED);
    }
    with_store(&s.store, |store| async move {
        let images = select_images(&store, &[]).await?;
        let reports =
            publishing::round(&store, &images, &s.publish, &mut compiler, &s.broker, now).await?;
        let mut failed = 0;
        for r in &reports {
            failed += r.failed();
            if args.json {
                println!("{}", r.to_json());
            } else {
                print!("{}", r.to_text());
            }
        }
        Ok(if failed > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        })
    })
}
