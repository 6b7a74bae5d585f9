//! One publishing round: compile every image in the store, turn each into a
//! `publish::Candidate`, and hand them to the configured targets, which
//! version, gate and write them (see publish/README.md). Used by `sandmine
//! publish` (once, for a CronJob) and on a schedule inside `aggregate` and
//! `standalone`.

use crate::fleet::compile::compile_one;
use aggregator::store::Store;
use anyhow::{bail, Context, Result};
use policy_compiler::decide::{AllowReason, Verdict};
use policy_compiler::{Compiled, Policy, State};
use publish::{Candidate, GatePolicy, PublishReport};
use schemas::fleet::ImageObservations;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// `[publish]`: where and how often profiles are published.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct PublishSettings {
    /// A new syscall enters a published profile only once seen on this
    /// many hosts.
    pub min_hosts: u64,
    /// A syscall leaves a published profile only after it has been unused
    /// this long ("7d").
    pub shrink_after: String,
    /// How often `aggregate` / `standalone` publish ("every 1h"); they
    /// publish only when a target is configured.
    pub schedule: String,
    /// Directory target: `<dir>/<image-slug>/<version>/...`.
    pub dir: Option<PathBuf>,
    /// Git target: a work tree (created with `git init` if missing); one
    /// commit per changed image.
    pub git: Option<PathBuf>,
    /// Also publish to the NATS object store bucket `sandmine-profiles`,
    /// on the `[broker]` NATS server (nats-server 2.10 or newer).
    pub object_store: bool,
    /// Policy file (TOML); the documented defaults without it.
    pub policy: Option<PathBuf>,
    /// The runtime's must-allow base: auto, none or FILE (see `sandmine
    /// compile --help`).
    pub runtime_base: String,
}

impl Default for PublishSettings {
    fn default() -> Self {
        PublishSettings {
            min_hosts: 2,
            shrink_after: "7d".into(),
            schedule: "every 1h".into(),
            dir: None,
            git: None,
            object_store: false,
            policy: None,
            runtime_base: "auto".into(),
        }
    }
}

impl PublishSettings {
    pub fn has_target(&self) -> bool {
        self.dir.is_some() || self.git.is_some() || self.object_store
    }

    pub fn gate_policy(&self) -> Result<GatePolicy> {
        let shrink_after = publish::parse_duration(&self.shrink_after)
            .map_err(|e| anyhow::anyhow!("publish.shrink_after: {e}"))?;
        Ok(GatePolicy {
            min_hosts: self.min_hosts,
            shrink_after,
        })
    }

    pub fn schedule(&self) -> Result<publish::Schedule> {
        publish::Schedule::parse(&self.schedule)
            .map_err(|e| anyhow::anyhow!("publish.schedule: {e}"))
    }
}

/// A compiled image as the publisher wants it.
pub fn candidate(obs: &ImageObservations, c: &Compiled, policy: &Policy) -> Candidate {
    let d = &c.decision;
    let state = match d.state {
        State::Enforce => "enforce",
        State::Log => "log",
        State::NotReady => "not-ready",
    };
    let files = c.files.clone();
    let allowed: BTreeMap<String, BTreeSet<String>> = d
        .allowed
        .iter()
        .map(|(abi, names)| {
            (
                abi.as_str().to_string(),
                names.iter().map(|n| n.to_string()).collect(),
            )
        })
        .collect();
    let mut syscall_hosts = BTreeMap::new();
    let mut syscall_last_seen_ms = BTreeMap::new();
    for t in &obs.syscalls {
        if let Some(name) = schemas::syscalls::name(t.abi, t.nr) {
            let key = (t.abi.as_str().to_string(), name.to_string());
            syscall_last_seen_ms.insert(key, t.last_seen_ms);
        }
    }
    // Hosts per allowed syscall, as the gate judges new ones: the hosts
    // that used it in a profile-relevant phase when it is allowed because
    // it was observed; the whole image's hosts when the policy justifies
    // it (baseline, runtime base, must-allow, a fallback), since those do
    // not rest on any one host's word.
    for sd in &d.syscalls {
        let (Some(name), Verdict::Allowed { reasons }) = (sd.name, &sd.verdict) else {
            continue;
        };
        let observed_only = reasons
            .iter()
            .all(|r| matches!(r, AllowReason::Observed | AllowReason::OtherAbi { .. }));
        let hosts = if observed_only {
            sd.stats.as_ref().map(|s| s.hosts).unwrap_or(0)
        } else {
            obs.hosts
        };
        syscall_hosts.insert((sd.abi.as_str().to_string(), name.to_string()), hosts);
    }
    for (abi, names) in &allowed {
        for n in names {
            syscall_hosts
                .entry((abi.clone(), n.clone()))
                .or_insert(obs.hosts);
        }
    }
    let cf = &d.confidence;
    let confidence_summary = format!(
        "{} containers on {} hosts, {:.1} container-hours; coverage {:.4}, Chao2 {:.1} for {} observed; {} of the last {} containers showed a new syscall",
        cf.containers,
        cf.hosts,
        cf.container_hours,
        cf.coverage,
        cf.chao2,
        cf.incidence.s_obs,
        cf.recent_new,
        cf.recent_window
    );
    Candidate {
        image: obs.image.clone(),
        state: state.to_string(),
        files,
        report_text: c.report_text.clone(),
        report_json: c.report_json.clone(),
        allowed,
        syscall_hosts,
        syscall_last_seen_ms,
        must_deny: policy.must_deny.iter().cloned().collect(),
        confidence_summary,
    }
}

/// Compiles `images` (every image of the store when empty) and publishes
/// to every configured target. Returns one report per target.
pub async fn round(
    store: &Store,
    images: &[String],
    s: &PublishSettings,
    policy: &Policy,
    broker: &transport::BrokerConfig,
    now_ms: u64,
) -> Result<Vec<PublishReport>> {
    if !s.has_target() {
        bail!("no publish target: set publish.dir, publish.git or publish.object_store (or --dir/--git/--object-store)");
    }
    let gp = s.gate_policy()?;
    let images = if images.is_empty() {
        store
            .images()
            .await
            .context("cannot list the store's images")?
    } else {
        images.to_vec()
    };
    let mut candidates = Vec::with_capacity(images.len());
    for image in &images {
        let (obs, c) = compile_one(store, image, policy, now_ms).await?;
        candidates.push(candidate(&obs, &c, policy));
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
    s: PublishSettings,
    policy: Policy,
    broker: transport::BrokerConfig,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<()> {
    let schedule = s.schedule()?;
    log::info!("publishing {} ({})", s.schedule, describe_targets(&s));
    loop {
        let now = crate::fleet::now_ms();
        let next = schedule.next_run(now);
        let wait = std::time::Duration::from_millis(next.saturating_sub(now));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return Ok(()),
        }
        match round(store, &[], &s, &policy, &broker, crate::fleet::now_ms()).await {
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

fn describe_targets(s: &PublishSettings) -> String {
    let mut t = Vec::new();
    if let Some(d) = &s.dir {
        t.push(format!("dir {}", d.display()));
    }
    if let Some(g) = &s.git {
        t.push(format!("git {}", g.display()));
    }
    if s.object_store {
        t.push("NATS object store".to_string());
    }
    t.join(", ")
}
