//! `sandmine aggregate`: the fleet merger. Consumes collector deltas from
//! NATS JetStream (durable consumer) or Kafka (consumer group), inserts them
//! in batches into ClickHouse, and acks only after the insert.

use crate::config::ConfigArgs;
use crate::fleet::{self, aggregate, metrics::Metrics, settings::Settings};
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
after upgrading.\n\nSchema migrations are applied on start (safe to run twice).\n\n\
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
    let metrics = Arc::new(Metrics::default());
    crate::cmd::collect::spawn_metrics(&s.metrics.listen, &metrics);
    let mut consumer = transport::Consumer::connect(&s.broker)
        .await
        .context("cannot connect to the broker")?;
    let dead_letters = transport::Publisher::connect(&s.broker)
        .await
        .context("cannot connect to the broker")?;
    let stop = fleet::stop_signal();
    let publishing = start_publishing(&s, stop.clone()).await?;
    log::info!("consuming");
    aggregate::run(
        &s.aggregator,
        &mut consumer,
        &dead_letters,
        &store,
        metrics,
        stop,
    )
    .await?;
    if let Some(p) = publishing {
        let _ = p.await;
    }
    Ok(ExitCode::SUCCESS)
}

/// Scheduled publishing inside this process, when `[publish]` names a
/// target: its own store handle, its own task.
pub async fn start_publishing(
    s: &Settings,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Option<tokio::task::JoinHandle<()>>> {
    if !s.publish.has_target() {
        return Ok(None);
    }
    let policy = crate::fleet::compile::PolicyArgs {
        policy: s.publish.policy.clone(),
        runtime_base: s.publish.runtime_base.clone(),
    }
    .load()?;
    s.publish.schedule()?;
    s.publish.gate_policy()?;
    let store = aggregator::store::Store::open(&s.store)
        .await
        .context("cannot open the store for publishing")?;
    let (ps, broker) = (s.publish.clone(), s.broker.clone());
    Ok(Some(tokio::spawn(async move {
        if let Err(e) = crate::fleet::publishing::scheduled(&store, ps, policy, broker, stop).await
        {
            log::error!("scheduled publishing stopped: {e:#}");
        }
    })))
}
