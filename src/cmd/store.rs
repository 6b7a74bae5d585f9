//! `sandmine store`: the store over time: backup and restore of the
//! embedded store (docs/STORE.md, "Backup and restore"), and retention of
//! both stores (docs/STORE.md, "Retention").

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
    "  sandmine store --config /etc/sandmine/standalone.toml prune --older-than 90d\n",
    "  # ClickHouse: the cutoff must be older than anything the broker or a spool can redeliver\n",
    "  # (here JetStream max_age 7d + collectors' spool age 1d = 8d)\n",
    "  sandmine store --config /etc/sandmine/aggregator.toml prune --older-than 90d --redelivery-horizon 8d --dry-run",
);

#[derive(clap::Args, Debug)]
#[command(
    about = "Back up and restore the embedded store; prune either store",
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
    /// Remove from the store what was last seen more than DURATION ago.
    #[command(
        long_about = "Retention: removes the rows last seen before now minus DURATION and prints \
the rows removed per table. Embedded store: calls, incidence, containers and their \
incomplete/unverified flags by last seen; calls_hourly and denials by whole hours that ended by \
then; in one transaction. The ledger of stored envelopes (messages) is kept, so that an old \
envelope redelivered after the prune is still recognised and counted zero times. ClickHouse: \
calls and denials by whole hours (of their interval end) that ended by then; incidence, \
containers and the flags by their latest version; one mutation per table, each waited for \
(--wait). ClickHouse has no ledger: an envelope redelivered after its rows were pruned is counted \
again, so --redelivery-horizon (the broker's retention, JetStream max_age or Kafka retention.ms, \
plus the collectors' spool age) is required and --older-than must exceed it. Answers about \
windows after the cutoff (query uses/breaks/denials --since) are unchanged; all-time totals lose \
what was pruned. See docs/STORE.md, \"Retention\".",
        after_help = EXAMPLES
    )]
    Prune {
        /// Keep what was seen in this last DURATION (e.g. 90d, 12h).
        #[arg(long, value_name = "DURATION", value_parser = parse_age)]
        older_than: Age,
        /// ClickHouse (required there): the longest a message can still be
        /// redelivered after it was first stored: broker retention plus the
        /// collectors' spool age. --older-than must exceed it.
        #[arg(long, value_name = "DURATION", value_parser = parse_horizon)]
        redelivery_horizon: Option<Age>,
        /// ClickHouse: how long to wait for each table's mutation.
        #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse_horizon)]
        wait: Age,
        /// Count what would go, remove nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_name = "MS", hide = true)]
        now_ms: Option<u64>,
    },
}

/// A duration as given (for messages) and as parsed.
#[derive(Clone, Debug)]
pub struct Age {
    text: String,
    d: std::time::Duration,
}

fn parse_horizon(s: &str) -> Result<Age, String> {
    let d = sysutil::duration::parse_duration(s).map_err(|e| e.to_string())?;
    Ok(Age {
        text: s.to_string(),
        d,
    })
}

fn parse_age(s: &str) -> Result<Age, String> {
    let a = parse_horizon(s)?;
    if a.d.as_secs() < 3600 {
        return Err("must be at least 1h".into());
    }
    Ok(a)
}

/// ClickHouse has no ledger: the cutoff must be older than anything that
/// can still be redelivered (docs/STORE.md, "Retention").
fn check_horizon(store: &StoreConfig, older_than: &Age, horizon: Option<&Age>) -> Result<()> {
    match (store, horizon) {
        (StoreConfig::ClickHouse(_), None) => bail!(
            "store prune on ClickHouse needs --redelivery-horizon DURATION (the broker's retention plus the collectors' spool age; see docs/STORE.md, \"Retention\")"
        ),
        (_, Some(h)) if older_than.d <= h.d => bail!(
            "--older-than {} is not older than the redelivery horizon {}: ClickHouse has no ledger, so an envelope redelivered after its rows were pruned would be counted again",
            older_than.text,
            h.text
        ),
        _ => Ok(()),
    }
}

fn embedded_path(s: &Settings, verb: &str) -> Result<PathBuf> {
    match &s.store {
        StoreConfig::Embedded(e) => Ok(e.path.clone()),
        StoreConfig::ClickHouse(_) => bail!(
            "store {verb} is for the embedded store (set store.embedded.path); for ClickHouse see docs/STORE.md, \"Backup and restore\""
        ),
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
            redelivery_horizon,
            wait,
            dry_run,
            now_ms,
        } => {
            check_horizon(&s.store, &older_than, redelivery_horizon.as_ref())?;
            if let StoreConfig::Embedded(e) = &s.store {
                if !e.path.exists() {
                    bail!(
                        "no embedded store at {} (see store.embedded.path)",
                        e.path.display()
                    );
                }
            }
            let now = now_ms.unwrap_or_else(sysutil::clock::now_ms);
            let cutoff =
                now.saturating_sub(u64::try_from(older_than.d.as_millis()).unwrap_or(u64::MAX));
            let progress = |m: &str| eprintln!("sandmine: {m}");
            let removed = crate::compiling::with_store(&s.store, |store: Store| async move {
                Ok(store.prune(cutoff, dry_run, wait.d, &progress).await?)
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
