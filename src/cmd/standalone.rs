//! `sandmine standalone`: collector and aggregator in one process, with the
//! embedded store: one host, no NATS, no ClickHouse.

use crate::collector_loop;
use crate::config::ConfigArgs;
use crate::metrics::Metrics;
use crate::settings::Settings;
use aggregator::store::{EmbeddedConfig, Store, StoreConfig};
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args, Debug)]
#[command(
    about = "Collector and aggregator in one process, with an embedded store (no servers)",
    long_about = "Runs the collector (see `sandmine collect --help`) and stores its deltas \
directly in an embedded SQLite store instead of publishing them: one host, no NATS, no \
ClickHouse. The stored data has the same meaning as the fleet store's, so `sandmine \
compile`, `explain` and `publish` work on it unchanged (`--store embedded:PATH`). The \
collector's spool still sits between the kernel and the store, so a crash loses nothing."
)]
pub struct StandaloneArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The embedded store file (created if missing).
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/var/lib/sandmine/standalone.db"
    )]
    pub store: PathBuf,
    /// On stop, how long to keep trying to store what is spooled.
    #[arg(long, default_value = "10s", value_parser = sysutil::parse_duration)]
    pub drain_timeout: Duration,
}

pub fn main(args: StandaloneArgs) -> Result<ExitCode> {
    crate::logging::init();
    let s: Settings = args.config.load()?;
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async {
        if let Some(dir) = args.store.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let store = Store::open(&StoreConfig::Embedded(EmbeddedConfig {
            path: args.store.clone(),
        }))
        .await
        .with_context(|| format!("cannot open the embedded store {}", args.store.display()))?;
        let metrics = Arc::new(Metrics::default());
        crate::metrics::spawn(&s.metrics.listen, &metrics);
        let stop = crate::shutdown::stop_signal();
        let mut s = s;
        s.store = StoreConfig::Embedded(EmbeddedConfig {
            path: args.store.clone(),
        });
        let publishing = crate::publishing::start_publishing(&s, &metrics, stop.clone()).await?;
        collector_loop::run(
            s.collector.clone(),
            collector_loop::Sink::Store(store),
            metrics,
            stop,
            args.drain_timeout,
        )
        .await?;
        if let Some(p) = publishing {
            let _ = p.await;
        }
        Ok(ExitCode::SUCCESS)
    })
}
