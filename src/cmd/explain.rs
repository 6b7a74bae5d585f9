//! `sandmine explain IMAGE SYSCALL`: why a syscall is allowed or denied.

use crate::compiling::{select_images, with_store, PolicyArgs};
use crate::config::ConfigArgs;
use crate::settings::Settings;
use anyhow::{bail, Result};
use schemas::Abi;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(
    about = "Explain, with the numbers, why a syscall is allowed or denied in an image's profile",
    long_about = "Compiles IMAGE from the store under the policy (as `sandmine compile` would) \
and prints why SYSCALL is allowed or denied: hosts, containers and share that used it \
against the thresholds, the runtime base, must-allow / must-deny, baseline, or never \
observed; and the image's state with its reasons."
)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// The image, as the store names it (`sandmine query images`).
    pub image: String,
    /// A syscall name (`openat`).
    pub syscall: String,
    /// The ABI whose numbering to use.
    #[arg(long, default_value = "x86_64")]
    pub abi: Abi,
    #[arg(long, value_name = "MS", hide = true)]
    pub now_ms: Option<u64>,
}

pub fn main(args: ExplainArgs) -> Result<ExitCode> {
    let Some(nr) = schemas::syscalls::number(args.abi, &args.syscall) else {
        bail!("{:?} is not a {} syscall name", args.syscall, args.abi);
    };
    let key = schemas::SyscallKey { abi: args.abi, nr };
    let s: Settings = args.config.load()?;
    let mut compiler = args.policy.load()?;
    let now = args.now_ms.unwrap_or_else(sysutil::clock::now_ms);
    with_store(&s.store, |store| async move {
        select_images(&store, std::slice::from_ref(&args.image)).await?;
        compiler.read_observed(&store).await?;
        let (_, c) = compiler.compile(&store, &args.image, now).await?;
        println!("{}", policy_compiler::explain(&c.decision, key));
        Ok(ExitCode::SUCCESS)
    })
}
