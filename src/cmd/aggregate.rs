//! `sandmine aggregate`: the fleet merger. Consumes collector deltas from
//! NATS JetStream (durable consumer) or Kafka (consumer group), inserts them
//! in batches into ClickHouse, and acks only after the insert.

use crate::config::ConfigArgs;
use crate::metrics::Metrics;
use crate::settings::Settings;
use anyhow::{Context, Result};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
#[command(
    about = "Merge fleet deltas from the broker into ClickHouse, exactly once in effect",
    long_about = "Consumes the collectors' per-interval deltas from NATS JetStream (durable \
consumer) or Kafka (consumer group), inserts them in batches into the store, and acks only \
after the store accepted the batch. Redelivered messages are ignored by the store, which is \
keyed by (host, boot, sequence). Undecodable messages, and messages of a newer wire version, \
go to the dead-letter subject with the reason; replay them with `sandmine replay-dead-letters` \
after upgrading. With aggregator.enrolled_hosts set, only messages signed (wire v5) by an \
enrolled, unrevoked host's key are stored; the others are dead-lettered with the reason \
(see `sandmine host-key`).\n\nSchema migrations are applied on start (safe to run twice).\n\n\
Upgrade order: aggregators first, then collectors."
)]
pub struct AggregateArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Apply the store's schema migrations and exit.
    #[arg(long)]
    pub migrate_only: bool,
}

pub fn main(args: AggregateArgs) -> Result<ExitCode> {
    crate::logging::init();
    let settings: Settings = args.config.load()?;
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(run(args, settings))
}

async fn run(args: AggregateArgs, s: Settings) -> Result<ExitCode> {
    let store = aggregator::store::Store::open(&s.store)
        .await
        .context("cannot open the store")?;
    log::info!("store ready (migrations applied)");
    if args.migrate_only {
        return Ok(ExitCode::SUCCESS);
    }
    // Before anything is consumed: a registry that does not load is an
    // error, never a silent fallback to asserted identities.
    let enrolled = match &s.aggregator.enrolled_hosts {
        Some(path) => Some(aggregator::enrolled::Enrolled::open(path)?),
        None => {
            log::warn!(
                "aggregator.enrolled_hosts is not set: host identity is asserted by each sender, not verified; one collector's broker credentials can pose as any number of hosts (docs/SECURITY.md)"
            );
            None
        }
    };
    let metrics = Arc::new(Metrics::default());
    crate::metrics::spawn(&s.metrics.listen, &metrics);
    let mut consumer = transport::Consumer::connect(&s.broker)
        .await
        .context("cannot connect to the broker")?;
    let dead_letters = transport::Publisher::connect(&s.broker)
        .await
        .context("cannot connect to the broker")?;
    let stop = crate::shutdown::stop_signal();
    let publishing = crate::publishing::start_publishing(&s, &metrics, stop.clone()).await?;
    log::info!("consuming");
    aggregator::ingest::run(
        &s.aggregator,
        &mut consumer,
        &dead_letters,
        &store,
        &metrics.ingest,
        enrolled,
        stop,
    )
    .await;
    if let Some(p) = publishing {
        let _ = p.await;
    }
    Ok(ExitCode::SUCCESS)
}
