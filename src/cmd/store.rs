//! `sandmine store`: the store over time: backup and restore of the
//! embedded store (docs/STORE.md, "Backup and restore").

use crate::config::ConfigArgs;
use crate::settings::Settings;
use aggregator::store::{backup, Store, StoreConfig};
use anyhow::{bail, Result};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

const EXAMPLES: &str = concat!(
    "Examples:\n",
    "  sandmine store --config /etc/sandmine/standalone.toml backup --to /backup/store-2026-12-03.db\n",
    "  sandmine store --set store.embedded.path=/var/lib/sandmine/store.db backup --to /backup/store.db\n",
    "  # the aggregator (or standalone) stopped:\n",
    "  sandmine store --config /etc/sandmine/standalone.toml restore --from /backup/store-2026-12-03.db --force\n",
    "  # retention: what was last seen more than 90 days ago (see first what would go)\n",
    "  sandmine store --config /etc/sandmine/standalone.toml prune --older-than 90d --dry-run\n",
    "  sandmine store --config /etc/sandmine/standalone.toml prune --older-than 90d",
);

#[derive(clap::Args, Debug)]
#[command(
    about = "Back up and restore the embedded store",
    long_about = "Backup and restore of the embedded store (store.embedded.path). A backup is a \
consistent copy as of one moment, taken while the aggregator or standalone keeps writing \
(every envelope is in it with all its rows, or not at all); it never overwrites a file and is \
created mode 0600. A restore first checks the backup (it opens, passes SQLite's integrity check, \
and has only migrations this sandmine knows), then replaces the store file atomically. It is \
refused while the store file exists unless --force, and refused while another process has the \
store open. Envelopes stored after the backup are gone after a restore; the broker redelivers \
only what it still holds and was not acked. ClickHouse: see docs/STORE.md \
(ALTER TABLE ... FREEZE).",
    after_help = EXAMPLES
)]
pub struct StoreArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(subcommand)]
    pub what: What,
}

#[derive(clap::Subcommand, Debug)]
pub enum What {
    /// Copy the embedded store, consistent as of one moment, into a new file (mode 0600).
    #[command(after_help = EXAMPLES)]
    Backup {
        /// The new file (refused if it exists).
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// Replace the embedded store by a checked backup.
    #[command(after_help = EXAMPLES)]
    Restore {
        /// The backup file.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// Replace an existing store file (everything stored since the backup is lost).
        #[arg(long)]
        force: bool,
    },
    /// Remove from the embedded store what was last seen more than DURATION ago.
    #[command(
        long_about = "Retention of the embedded store: removes the rows last seen before now minus \
DURATION (calls, incidence, containers and their incomplete/unverified flags by last seen; \
calls_hourly and denials by whole hours that ended by then), in one transaction, and prints the \
rows removed per table. The ledger of stored envelopes (messages) is kept, so that an old \
envelope redelivered after the prune is still recognised and counted zero times. Answers about \
windows after the cutoff (query uses/breaks/denials --since) are unchanged; all-time totals \
lose what was pruned. ClickHouse: see docs/STORE.md, \"Retention\".",
        after_help = EXAMPLES
    )]
    Prune {
        /// Keep what was seen in this last DURATION (e.g. 90d, 12h).
        #[arg(long, value_name = "DURATION", value_parser = parse_age)]
        older_than: std::time::Duration,
        /// Count what would go, remove nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_name = "MS", hide = true)]
        now_ms: Option<u64>,
    },
}

fn parse_age(s: &str) -> Result<std::time::Duration, String> {
    let d = sysutil::duration::parse_duration(s).map_err(|e| e.to_string())?;
    if d.as_secs() < 3600 {
        return Err("must be at least 1h".into());
    }
    Ok(d)
}

fn embedded_path(s: &Settings, verb: &str) -> Result<PathBuf> {
    match &s.store {
        StoreConfig::Embedded(e) => Ok(e.path.clone()),
        StoreConfig::ClickHouse(_) => {
            let section = if verb == "prune" {
                "Retention"
            } else {
                "Backup and restore"
            };
            bail!(
                "store {verb} is for the embedded store (set store.embedded.path); for ClickHouse see docs/STORE.md, \"{section}\""
            )
        }
    }
}

pub fn main(args: StoreArgs) -> Result<ExitCode> {
    let s: Settings = args.config.load()?;
    let mut out = std::io::stdout().lock();
    match args.what {
        What::Backup { to } => {
            let store = embedded_path(&s, "backup")?;
            let info = backup::backup(&store, &to)?;
            writeln!(
                out,
                "backed up {} to {}: {} envelopes, migration {}, {} bytes",
                store.display(),
                to.display(),
                info.messages,
                info.migration,
                info.bytes
            )?;
        }
        What::Prune {
            older_than,
            dry_run,
            now_ms,
        } => {
            let path = embedded_path(&s, "prune")?;
            if !path.exists() {
                bail!(
                    "no embedded store at {} (see store.embedded.path)",
                    path.display()
                );
            }
            let now = now_ms.unwrap_or_else(sysutil::clock::now_ms);
            let cutoff =
                now.saturating_sub(u64::try_from(older_than.as_millis()).unwrap_or(u64::MAX));
            let cfg = aggregator::store::EmbeddedConfig { path };
            let removed =
                crate::compiling::with_store(&StoreConfig::Embedded(cfg), |store| async move {
                    let Store::Embedded(e) = store else {
                        bail!("not an embedded store");
                    };
                    Ok(e.prune(cutoff, dry_run).await?)
                })?;
            let verb = if dry_run { "would remove" } else { "removed" };
            writeln!(out, "table\t{verb}")?;
            for (table, n) in removed {
                writeln!(out, "{table}\t{n}")?;
            }
        }
        What::Restore { from, force } => {
            let store = embedded_path(&s, "restore")?;
            let info = backup::restore(&from, &store, force)?;
            writeln!(
                out,
                "restored {} from {}: {} envelopes, migration {}",
                store.display(),
                from.display(),
                info.messages,
                info.migration
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
