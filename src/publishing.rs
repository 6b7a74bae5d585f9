//! One publishing round: compile every image in the store, turn each into a
//! `publish::Candidate`, and hand them to the configured targets, which
//! version, gate and write them (see publish/README.md). Used by `sandmine
//! publish` (once, for a CronJob) and on a schedule inside `aggregate` and
//! `standalone`.

use crate::compiling::Compiler;
use aggregator::store::Store;
use anyhow::{bail, Context, Result};
use publish::{PublishConfig, PublishReport};

/// Compiles `images` (every image of the store when empty) and publishes
/// to every configured target. Returns one report per target.
pub async fn round(
    store: &Store,
    images: &[String],
    s: &PublishConfig,
    compiler: &mut Compiler,
    broker: &transport::BrokerConfig,
    now_ms: u64,
) -> Result<Vec<PublishReport>> {
    if !s.has_target() {
        bail!("no publish target: set publish.dir, publish.git or publish.object_store (or --dir/--git/--object-store)");
    }
    let gp = s.gate_policy();
    let images = if images.is_empty() {
        store
            .images()
            .await
            .context("cannot list the store's images")?
    } else {
        images.to_vec()
    };
    compiler.read_observed(store).await?;
    let mut candidates = Vec::with_capacity(images.len());
    for image in &images {
        let (obs, c) = compiler.compile(store, image, now_ms).await?;
        candidates.push(publish::candidate(&obs, &c, compiler.policy()));
    }
    let mut reports = Vec::new();
    if let Some(dir) = &s.dir {
        let t = publish::DirTarget::new(dir.clone());
        reports.push(publish::publish_all(&candidates, &t, &gp, now_ms).await);
    }
    if let Some(git) = &s.git {
        let t = publish::GitTarget::open_or_init(git.clone())
            .with_context(|| format!("git target {}", git.display()))?;
        reports.push(publish::publish_all(&candidates, &t, &gp, now_ms).await);
    }
    if s.object_store {
        let transport::BrokerConfig::Nats(nats) = broker else {
            bail!("publish.object_store needs a NATS [broker] (kind = \"nats\")");
        };
        let t = publish::ObjectStoreTarget::new(publish::NatsObjectStore::new(nats.clone()));
        reports.push(publish::publish_all(&candidates, &t, &gp, now_ms).await);
    }
    Ok(reports)
}

/// Publishes on the configured schedule until `stop` (inside `aggregate`
/// and `standalone`). A failed round is logged and retried at the next
/// slot.
pub async fn scheduled(
    store: &Store,
    s: PublishConfig,
    mut compiler: Compiler,
    broker: transport::BrokerConfig,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<()> {
    let schedule = s.schedule().context("publish.schedule")?;
    log::info!("publishing {} ({})", s.schedule, s.describe_targets());
    loop {
        let now = sysutil::clock::now_ms();
        let next = schedule.next_run(now);
        let wait = std::time::Duration::from_millis(next.saturating_sub(now));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return Ok(()),
        }
        match round(
            store,
            &[],
            &s,
            &mut compiler,
            &broker,
            sysutil::clock::now_ms(),
        )
        .await
        {
            Ok(reports) => {
                for r in reports {
                    for line in r.to_text().lines() {
                        log::info!("{line}");
                    }
                }
            }
            Err(e) => log::error!("publishing failed (next try at the next slot): {e:#}"),
        }
    }
}

/// Scheduled publishing inside this process, when `[publish]` names a
/// target: its own store handle, its own task.
pub async fn start_publishing(
    s: &crate::settings::Settings,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Option<tokio::task::JoinHandle<()>>> {
    if !s.publish.has_target() {
        return Ok(None);
    }
    let compiler = crate::compiling::PolicyArgs {
        policy: s.publish.policy.clone(),
        runtime_base: s.publish.runtime_base.clone(),
    }
    .load()?;
    s.publish.schedule().context("publish.schedule")?;
    let store = aggregator::store::Store::open(&s.store)
        .await
        .context("cannot open the store for publishing")?;
    let (ps, broker) = (s.publish.clone(), s.broker.clone());
    Ok(Some(tokio::spawn(async move {
        if let Err(e) = scheduled(&store, ps, compiler, broker, stop).await {
            log::error!("scheduled publishing stopped: {e:#}");
        }
    })))
}
