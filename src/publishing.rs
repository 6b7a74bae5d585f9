//! One publishing round: compile every image in the store, turn each into a
//! `publish::Candidate`, and hand them to the configured targets, which
//! version, gate and write them (see publish/README.md). Used by `sandmine
//! publish` (once, for a CronJob) and on a schedule inside `aggregate` and
//! `standalone`.

use crate::compiling::Compiler;
use aggregator::store::Store;
use anyhow::{bail, Context, Result};
use publish::{LeverAction, PublishConfig, PublishReport, Target};
use std::collections::BTreeMap;

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
        bail!("no publish target: set publish.dir, publish.git, publish.object_store or [publish.oci] (or --dir/--git/--object-store)");
    }
    let signing = signing(s)?;
    let gp = s.gate_policy();
    let images = if images.is_empty() {
        store
            .images()
            .await
            .context("cannot list the store's images")?
    } else {
        images.to_vec()
    };
    let dir = s.dir.as_ref().map(|d| publish::DirTarget::new(d.clone()));
    let git = match &s.git {
        Some(g) => Some(
            publish::GitTarget::open_or_init(g.clone())
                .with_context(|| format!("git target {}", g.display()))?,
        ),
        None => None,
    };
    compiler.read_observed(store).await?;
    // Syscalls added after denials: this round's (`on_denials = "add"`).
    let mut added = if s.on_denials == publish::OnDenials::Off {
        BTreeMap::new()
    } else {
        react_to_denials(
            store,
            &images,
            s,
            dir.as_ref(),
            git.as_ref(),
            compiler,
            now_ms,
        )
        .await?
    };
    // Images an operator (or the reaction to denials above) forced into
    // log mode on some target get their log-mode compile too (`sandmine
    // lever force-log`); syscalls added after denials in earlier rounds
    // are compiled in again (the union over the targets' metas).
    let mut forced = std::collections::BTreeSet::new();
    for image in &images {
        let slug = publish::image_slug(image);
        let mut metas = Vec::new();
        if let Some(t) = &dir {
            metas.push(t.current(&slug).await);
        }
        if let Some(t) = &git {
            metas.push(t.current(&slug).await);
        }
        // A meta that cannot be read fails that image in its target's
        // round, which says why.
        let metas: Vec<publish::PublishedMeta> = metas.into_iter().flatten().flatten().collect();
        if metas.iter().any(|m| m.levers.forced_log.is_some()) {
            forced.insert(image.clone());
        }
        let list = added.entry(image.clone()).or_default();
        for a in metas.iter().flat_map(|m| &m.after_denials) {
            if !list.iter().any(|b| (&b.abi, &b.name) == (&a.abi, &a.name)) {
                list.push(a.clone());
            }
        }
    }
    let mut candidates = Vec::with_capacity(images.len());
    for image in &images {
        let after = added.get(image).map_or(&[][..], Vec::as_slice);
        let cand = compiler
            .candidate(store, image, now_ms, forced.contains(image), after)
            .await?;
        candidates.push(signing.apply(cand)?);
    }
    let mut reports = Vec::new();
    if let Some(t) = &dir {
        reports.push(publish::publish_all(&candidates, t, &gp, now_ms).await);
    }
    if let Some(t) = &git {
        reports.push(publish::publish_all(&candidates, t, &gp, now_ms).await);
    }
    if s.object_store {
        let transport::BrokerConfig::Nats(nats) = broker else {
            bail!("publish.object_store needs a NATS [broker] (kind = \"nats\")");
        };
        let t = publish::ObjectStoreTarget::new(publish::NatsObjectStore::new(nats.clone()));
        reports.push(publish::publish_all(&candidates, &t, &gp, now_ms).await);
    }
    if let Some(cfg) = &s.oci {
        // Reachable, TLS and credentials are checked once, up front: a
        // wrong password is one error, not one per image.
        let t = publish::OciTarget::connect(cfg.clone()).await?;
        reports.push(publish::publish_all(&candidates, &t, &gp, now_ms).await);
    }
    Ok(reports)
}

/// The warning of every unsigned round.
pub const UNSIGNED: &str = "publishing unsigned profiles (publish.allow_unsigned = true, no signing key): nodes that check signatures refuse them";

/// How `[publish]` signs (the key read anew each round, so that a
/// rotated key file is used from the next round on); a warning when it
/// does not.
pub fn signing(s: &PublishConfig) -> Result<publish::Signing> {
    let signing = publish::Signing::from_config(s)?;
    if matches!(signing, publish::Signing::Unsigned) {
        log::warn!("{UNSIGNED}");
    }
    Ok(signing)
}

/// For each image whose version in force (on the dir target, else the
/// git one) is enforcing and followed by denials that
/// `publish::denials::reaction` says must not go on, before the round
/// compiles:
/// - `[publish] on_denials = "log"`: a force-log lever by `sandmine`
///   naming them, on every dir and git target (the round then publishes
///   the log-mode profile, as for an operator's lever);
/// - `"add"`: the denied syscalls, returned per image with the reason, for
///   the round to compile in and record in the meta.
async fn react_to_denials(
    store: &Store,
    images: &[String],
    s: &PublishConfig,
    dir: Option<&publish::DirTarget>,
    git: Option<&publish::GitTarget>,
    compiler: &Compiler,
    now_ms: u64,
) -> Result<BTreeMap<String, Vec<publish::AddedAfterDenials>>> {
    let mut added = BTreeMap::new();
    let mut seen: Option<std::collections::BTreeSet<(schemas::Abi, u32)>> = None;
    for image in images {
        let slug = publish::image_slug(image);
        let current = match (dir, git) {
            (Some(t), _) => enforced_profile(t, image, &slug).await,
            (None, Some(t)) => enforced_profile(t, image, &slug).await,
            (None, None) => return Ok(added),
        };
        let (meta, profile) = match current {
            Ok(Some(c)) => c,
            Ok(None) => continue,
            // The round itself then fails this image on that target, and
            // says why.
            Err(e) => {
                log::warn!("{image}: cannot read the profile in force to judge its denials: {e:#}");
                continue;
            }
        };
        let denied: Vec<publish::denials::Denied> = store
            .denials(Some(image), Some(meta.published_at_ms))
            .await
            .context("cannot read the denials from the store")?
            .into_iter()
            .map(|d| publish::denials::Denied {
                abi: d.abi,
                nr: d.nr,
                action: d.action,
                profile: d.profile,
                denials: d.denials,
                hosts: d.hosts,
                containers: d.containers,
            })
            .collect();
        if denied.is_empty() {
            continue;
        }
        let seen_set = match &seen {
            Some(set) => set,
            None => {
                let totals = store
                    .syscall_totals()
                    .await
                    .context("cannot read the fleet's syscalls from the store")?;
                seen.insert(
                    totals
                        .into_iter()
                        .map(|(_, abi, nr, ..)| (abi, nr))
                        .collect(),
                )
            }
        };
        let Some(publish::denials::Reaction { reason, syscalls }) =
            publish::denials::reaction(&meta, &profile, &denied, seen_set, s.min_hosts)
        else {
            continue;
        };
        if s.on_denials == publish::OnDenials::Add {
            let list: Vec<publish::AddedAfterDenials> = syscalls
                .iter()
                .filter_map(|&(abi, nr)| {
                    schemas::syscalls::name(abi, nr).map(|name| publish::AddedAfterDenials {
                        abi: abi.as_str().to_string(),
                        name: name.to_string(),
                        reason: reason.clone(),
                        at_ms: now_ms,
                    })
                })
                .collect();
            log::warn!(
                "{image}: adding {} to its profile: {reason}",
                list.iter()
                    .map(|a| format!("{} {}", a.abi, a.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            added.insert(image.clone(), list);
            continue;
        }
        if s.object_store {
            log::warn!(
                "{image}: {reason}; not forced into log mode: levers need the dir and git targets only (unset publish.object_store, or use `sandmine lever force-log`)"
            );
            continue;
        }
        if s.oci.is_some() {
            log::warn!(
                "{image}: {reason}; not forced into log mode: levers need the dir and git targets only (unset [publish.oci], or use `sandmine lever force-log`)"
            );
            continue;
        }
        log::warn!("{image}: forcing log mode: {reason}");
        let cand = compiler.candidate(store, image, now_ms, true, &[]).await?;
        let log = cand.log_variant.map(|b| *b);
        // A lever a target refuses changes no target; the round goes on
        // and the error says why (never silently).
        if let Err(e) = lever(
            s,
            image,
            &LeverAction::ForceLog,
            "sandmine",
            &reason,
            log.as_ref(),
            now_ms,
        )
        .await
        {
            log::error!("{image}: cannot force log mode after denials ({reason}): {e:#}");
        }
    }
    Ok(added)
}

/// The meta and OCI profile file (`seccomp.json`) of `image`'s version in
/// force on `t`, when it is enforcing.
async fn enforced_profile<T: Target>(
    t: &T,
    image: &str,
    slug: &str,
) -> Result<Option<(publish::PublishedMeta, Vec<u8>)>> {
    let Some(meta) = t.current(slug).await? else {
        return Ok(None);
    };
    if meta.image != image || meta.state != "enforce" {
        return Ok(None);
    }
    let mut files = t.version_files(slug, &meta).await?;
    Ok(files.remove("seccomp.json").map(|p| (meta, p)))
}

/// Publishes on the configured schedule until `stop` (inside `aggregate`
/// and `standalone`). A failed round is logged and retried at the next
/// slot.
pub async fn scheduled(
    store: &Store,
    s: PublishConfig,
    mut compiler: Compiler,
    broker: transport::BrokerConfig,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
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
                metrics.set_log_mode(&reports);
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
    metrics: &std::sync::Arc<crate::metrics::Metrics>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Option<tokio::task::JoinHandle<()>>> {
    if !s.publish.has_target() {
        return Ok(None);
    }
    let compiler = crate::compiling::PolicyArgs {
        policy: s.publish.policy.clone(),
        runtime_base: s.publish.runtime_base.clone(),
        reach: crate::reaching::ReachArgs::from_config(&s.publish),
    }
    .load()?;
    s.publish.schedule().context("publish.schedule")?;
    publish::Signing::from_config(&s.publish)?;
    let store = aggregator::store::Store::open(&s.store)
        .await
        .context("cannot open the store for publishing")?;
    let (ps, broker, metrics) = (s.publish.clone(), s.broker.clone(), metrics.clone());
    Ok(Some(tokio::spawn(async move {
        if let Err(e) = scheduled(&store, ps, compiler, broker, metrics, stop).await {
            log::error!("scheduled publishing stopped: {e:#}");
        }
    })))
}

/// Carries out an operator's lever (`sandmine lever`) on every configured
/// dir and git target: checked on all of them first, so that a lever one
/// target refuses changes none, then written to each (one commit per git
/// target). `log_candidate` is the image's log-mode compile, for
/// force-log. Returns one line per target: the lever's subject.
pub async fn lever(
    s: &PublishConfig,
    image: &str,
    action: &LeverAction,
    by: &str,
    reason: &str,
    log_candidate: Option<&publish::Candidate>,
    now_ms: u64,
) -> Result<Vec<String>> {
    if s.object_store {
        bail!("levers act on the dir and git targets only; the NATS object store keeps no history and no levers (unset publish.object_store for this command, docs/OPERATIONS.md)");
    }
    if s.oci.is_some() {
        bail!("levers act on the dir and git targets only; the OCI registry target keeps no levers (leave [publish.oci] out of the config for this command, docs/OPERATIONS.md)");
    }
    let (dir, git) = lever_targets(s)?;
    let gp = s.gate_policy();
    // A force-log lever publishes a new (log-mode) profile: signed as a
    // round signs.
    let signed = match log_candidate {
        Some(c) => Some(signing(s)?.apply(c.clone())?),
        None => None,
    };
    let log_candidate = signed.as_ref();
    let mut plans = Vec::new();
    if let Some(t) = &dir {
        let p =
            publish::levers::plan(t, image, action, by, reason, log_candidate, &gp, now_ms).await?;
        plans.push((t.describe(), p));
    }
    if let Some(t) = &git {
        let p =
            publish::levers::plan(t, image, action, by, reason, log_candidate, &gp, now_ms).await?;
        plans.push((t.describe(), p));
    }
    let mut lines = Vec::new();
    for (name, p) in &plans {
        let written = if name.starts_with("dir:") {
            match &dir {
                Some(t) => t.publish(p).await,
                None => Ok(()),
            }
        } else {
            match &git {
                Some(t) => t.publish(p).await,
                None => Ok(()),
            }
        };
        written.with_context(|| format!("{name}: writing the lever"))?;
        let subject = p.commit_message.lines().next().unwrap_or_default();
        lines.push(format!("{name}: {subject}"));
    }
    Ok(lines)
}

/// The dir and git targets of `[publish]` (at least one).
fn lever_targets(
    s: &PublishConfig,
) -> Result<(Option<publish::DirTarget>, Option<publish::GitTarget>)> {
    let dir = s.dir.as_ref().map(|d| publish::DirTarget::new(d.clone()));
    let git = match &s.git {
        Some(g) if g.join(".git").exists() => Some(
            publish::GitTarget::open_or_init(g.clone())
                .with_context(|| format!("git target {}", g.display()))?,
        ),
        Some(g) => bail!(
            "git target {} is not a repository (nothing published there yet)",
            g.display()
        ),
        None => None,
    };
    if dir.is_none() && git.is_none() {
        bail!("no publish target: set publish.dir or publish.git (or --dir/--git)");
    }
    Ok((dir, git))
}

/// The versions each dir and git target keeps for `image`, newest
/// first: (target, metas), and each target's current meta.
pub async fn versions(
    s: &PublishConfig,
    image: &str,
) -> Result<
    Vec<(
        String,
        Option<publish::PublishedMeta>,
        Vec<publish::PublishedMeta>,
    )>,
> {
    let (dir, git) = lever_targets(s)?;
    let slug = publish::image_slug(image);
    let mut out = Vec::new();
    if let Some(t) = &dir {
        let cur = t.current(&slug).await?.filter(|m| m.image == image);
        out.push((
            t.describe(),
            cur,
            publish::levers::versions(t, image).await?,
        ));
    }
    if let Some(t) = &git {
        let cur = t.current(&slug).await?.filter(|m| m.image == image);
        out.push((
            t.describe(),
            cur,
            publish::levers::versions(t, image).await?,
        ));
    }
    Ok(out)
}
