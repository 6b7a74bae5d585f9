//! `sandmine replay-dead-letters`: re-publish dead-lettered messages that
//! this build can now decode (after an aggregator upgrade), then exit.

use crate::config::ConfigArgs;
use crate::settings::Settings;
use anyhow::{Context, Result};
use schemas::wire;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug)]
#[command(
    about = "Re-publish dead-lettered deltas that this version can decode",
    long_about = "Reads the dead-letter subject (or topic). Each message this build can decode \
now (typically a newer wire version, after the aggregators were upgraded) is published \
again to the main subject with its original id, and removed from the dead letters; the \
store counts it once even if it was stored before. Messages still undecodable are kept. \
Prints what it did and exits; run it after every aggregator upgrade."
)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Only report what would be replayed.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn main(args: ReplayArgs) -> Result<ExitCode> {
    crate::logging::init();
    let s: Settings = args.config.load()?;
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async {
        let mut dl = transport::Consumer::connect_dead_letter(&s.broker)
            .await
            .context("cannot read the dead letters")?;
        let publisher = transport::Publisher::connect(&s.broker)
            .await
            .context("cannot connect to the broker")?;
        let (mut replayed, mut kept) = (0u64, 0u64);
        loop {
            let batch = dl.fetch(100, Duration::from_secs(1)).await?;
            if batch.is_empty() {
                break;
            }
            let mut done = Vec::new();
            for d in batch {
                let id = d.msg_id.clone().unwrap_or_default();
                match wire::decode(&d.payload) {
                    Ok(env) => {
                        if !args.dry_run {
                            // A new broker id: the original one may still be
                            // in JetStream's duplicate window and would be
                            // dropped. The store dedupes on the envelope's
                            // own (host, boot, seq), so a message stored
                            // before still counts once.
                            let replay_id =
                                format!("{}.replay", wire::message_id(&env, &d.payload));
                            publisher.publish(&replay_id, &d.payload).await?;
                        }
                        replayed += 1;
                        done.push(d);
                    }
                    Err(e) => {
                        kept += 1;
                        eprintln!("kept {id:?}: {e}");
                    }
                }
            }
            if !args.dry_run && !done.is_empty() {
                dl.ack(&done).await?;
            }
            if args.dry_run {
                break;
            }
        }
        let verb = if args.dry_run {
            "would replay"
        } else {
            "replayed"
        };
        eprintln!("{verb} {replayed} message(s); {kept} still undecodable, kept");
        Ok(ExitCode::SUCCESS)
    })
}
