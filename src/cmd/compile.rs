//! `sandmine compile`: per-image profiles from the store, in every format.

use crate::compiling::{select_images, with_store, PolicyArgs};
use crate::config::ConfigArgs;
use crate::settings::Settings;
use anyhow::{bail, Context, Result};
use policy_compiler::compile::{allowed_sets, allowed_sets_of_profile};
use policy_compiler::{OciProfile, State};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(
    about = "Compile per-image seccomp profiles from the store, under the policy's confidence thresholds",
    long_about = "Reads every image's fleet observations from the store (ClickHouse, or the \
embedded store with --set store.embedded.path=FILE), decides per image whether its profile \
is ready to ENFORCE, should stay in LOG mode (default action SCMP_ACT_LOG), or is NOT READY \
(nothing written but the report), and writes one directory per image:\n\n\
  seccomp.json                 Docker / OCI profile\n\
  seccompprofile.yaml          security-profiles-operator SeccompProfile\n\
  kubelet/sandmine/NAME.json   the kubelet's localhost/ layout\n\
  systemd.conf                 SystemCallFilter= drop-in\n\
  bpf/x86_64.bpf               the compiled classic-BPF program\n\
  report.txt, report.json      state, reasons, confidence figures, per-syscall decisions\n\
  diff.txt                     against the seccomp.json previously in that directory\n\n\
The directory name is the image's slug, as `publish` names it: the name made \
file-safe plus 8 hex digits of its sha256 (collision-safe). Output is byte-identical for \
identical input. Exit status 0 even when images are not ready; see the reports."
)]
pub struct CompileArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Output directory (one subdirectory per image).
    #[arg(short, long, value_name = "DIR", default_value = "profiles")]
    pub out: PathBuf,
    /// Compile only these images (default: every image in the store).
    #[arg(long = "image", value_name = "IMAGE")]
    pub images: Vec<String>,
    /// Compile as of this time (ms since the epoch) instead of now, for
    /// reproducible runs.
    #[arg(long, value_name = "MS", hide = true)]
    pub now_ms: Option<u64>,
}

pub fn main(args: CompileArgs) -> Result<ExitCode> {
    let s: Settings = args.config.load()?;
    let mut compiler = args.policy.load()?;
    let now = args.now_ms.unwrap_or_else(sysutil::clock::now_ms);
    with_store(&s.store, |store| async move {
        let images = select_images(&store, &args.images).await?;
        // Two images must never share an output directory (a 64-bit hash
        // makes it unlikely, not impossible): refuse before writing.
        let mut slugs: std::collections::BTreeMap<String, &String> = Default::default();
        for image in &images {
            if let Some(other) = slugs.insert(schemas::slug::image_slug(image), image) {
                bail!(
                    "images {other:?} and {image:?} have the same slug {}; compile them into different --out directories",
                    schemas::slug::image_slug(image)
                );
            }
        }
        compiler.read_observed(&store).await?;
        std::fs::create_dir_all(&args.out)
            .with_context(|| format!("cannot create {}", args.out.display()))?;
        let (mut enforce, mut log, mut not_ready) = (0, 0, 0);
        for image in &images {
            let (_, c) = compiler.compile(&store, image, now).await?;
            let dir = args.out.join(schemas::slug::image_slug(image));
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let diff = diff_against_previous(&dir.join("seccomp.json"), &c)?;
            for (rel, bytes) in &c.files {
                let path = dir.join(rel);
                if let Some(p) = path.parent() {
                    std::fs::create_dir_all(p)
                        .with_context(|| format!("cannot create {}", p.display()))?;
                }
                sysutil::fs::write_atomic(&path, bytes)?;
            }
            sysutil::fs::write_atomic(&dir.join("report.txt"), c.report_text.as_bytes())?;
            sysutil::fs::write_atomic(&dir.join("report.json"), c.report_json.as_bytes())?;
            sysutil::fs::write_atomic(&dir.join("diff.txt"), diff.as_bytes())?;
            match c.decision.state {
                State::Enforce => enforce += 1,
                State::Log => log += 1,
                State::NotReady => not_ready += 1,
            }
            let state = c.decision.state.as_str();
            eprintln!(
                "{image}: {state} ({} syscalls allowed, {}) -> {}",
                c.decision.allowed_union().len(),
                c.decision.reasons.first().map(String::as_str).unwrap_or(""),
                dir.display()
            );
        }
        eprintln!(
            "sandmine: {} image(s): {enforce} enforce, {log} log, {not_ready} not_ready",
            images.len()
        );
        Ok(ExitCode::SUCCESS)
    })
}

fn diff_against_previous(previous: &Path, c: &policy_compiler::Compiled) -> Result<String> {
    let prev = match std::fs::read_to_string(previous) {
        Ok(text) => Some(
            OciProfile::parse(&text)
                .map(|p| allowed_sets_of_profile(&p))
                .with_context(|| format!("{} is not a profile", previous.display()))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", previous.display())),
    };
    let diff = publish::SyscallDiff::between(&prev.clone().unwrap_or_default(), &allowed_sets(c));
    let mut text = String::new();
    if prev.is_none() {
        text.push_str("# first version\n");
    }
    text.push_str(&diff.to_text());
    Ok(text)
}
