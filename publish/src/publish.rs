//! One publishing round over many images.

use crate::candidate::{Candidate, GatePolicy, Levers, PublishedMeta, META_FORMAT};
use crate::gate::{gate, GateDecision, GateOutcome};
use crate::paths::is_plain_relative;
use crate::targets::{Publication, Target, RESERVED};
use crate::version::Version;
use crate::PublishError;
use schemas::slug::image_slug;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// What happened to one image in a round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Published {
        version: String,
        previous: Option<String>,
        added: usize,
        removed: usize,
    },
    Unchanged {
        version: String,
    },
    HeldBack {
        /// The candidate's version (not published).
        candidate: String,
        reasons: Vec<String>,
        shrink_eligible_at_ms: Option<u64>,
    },
    NotReady {
        reason: String,
    },
    /// An operator pinned the image (`sandmine lever pin` or `rollback`):
    /// nothing is published for it until `lever unpin`.
    Pinned {
        /// The version in force (pinned).
        version: String,
        /// The candidate's version (not published).
        candidate: String,
        by: String,
        reason: String,
        since_ms: u64,
    },
    /// The target failed; the previous publication (if any) is in force.
    Failed {
        error: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageReport {
    pub image: String,
    pub slug: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The levers in force for the image after the round (from its
    /// `current` meta); a forced log mode shows on the image's line.
    #[serde(skip_serializing_if = "Levers::is_empty")]
    pub levers: Levers,
    /// When the image entered log mode, if the profile in force after the
    /// round is in log mode (for the `sandmine_log_mode_since_seconds`
    /// gauge).
    #[serde(skip)]
    pub log_since_ms: Option<u64>,
}

/// Per-image outcomes of a round, sorted by image name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct PublishReport {
    pub target: String,
    pub images: Vec<ImageReport>,
    /// What the target pushed, by reference (`registry/repo@sha256:...`
    /// for the OCI target; empty for the others).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pushed: Vec<String>,
}

impl PublishReport {
    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.images.iter().filter(|i| f(&i.outcome)).count()
    }

    pub fn published(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Published { .. }))
    }

    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Failed { .. }))
    }

    /// One summary line, then one line per image (held-back reasons
    /// indented below it).
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "publish to {}: {} published, {} unchanged, {} held back, {} not ready, {} failed{}\n",
            self.target,
            self.published(),
            self.count(|o| matches!(o, Outcome::Unchanged { .. })),
            self.count(|o| matches!(o, Outcome::HeldBack { .. })),
            self.count(|o| matches!(o, Outcome::NotReady { .. })),
            self.failed(),
            match self.count(|o| matches!(o, Outcome::Pinned { .. })) {
                0 => String::new(),
                n => format!(", {n} pinned"),
            },
        );
        for i in &self.images {
            let line = match &i.outcome {
                Outcome::Published {
                    version,
                    previous,
                    added,
                    removed,
                } => format!(
                    "published {} (was {}) +{added} -{removed} syscalls",
                    Version::short_of(version),
                    previous.as_deref().map(Version::short_of).unwrap_or("none")
                ),
                Outcome::Unchanged { version } => {
                    format!("unchanged {}", Version::short_of(version))
                }
                Outcome::HeldBack {
                    candidate, reasons, ..
                } => {
                    let mut l = format!("held back {}:", Version::short_of(candidate));
                    for r in reasons {
                        l.push_str("\n    ");
                        l.push_str(r);
                    }
                    l
                }
                Outcome::NotReady { reason } => format!("not ready: {reason}"),
                Outcome::Pinned {
                    version,
                    candidate,
                    by,
                    reason,
                    since_ms,
                } => format!(
                    "pinned {} by {by} since {}: {reason} (candidate {} not published; `sandmine lever unpin` to resume)",
                    Version::short_of(version),
                    sysutil::clock::rfc3339_s(*since_ms),
                    Version::short_of(candidate),
                ),
                Outcome::Failed { error } => format!("failed: {error}"),
            };
            let forced = match &i.levers.forced_log {
                Some(m) if !matches!(i.outcome, Outcome::Pinned { .. }) => format!(
                    " [forced log mode by {} since {}: {}]",
                    m.by,
                    sysutil::clock::rfc3339_s(m.at_ms),
                    m.reason
                ),
                _ => String::new(),
            };
            s.push_str(&format!("  {}: {line}{forced}\n", i.image));
        }
        for r in &self.pushed {
            s.push_str(&format!("  pushed {r}\n"));
        }
        s
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// The publication of a candidate the gate let through: its files plus
/// reports and diffs, its meta and its commit message. Fails on file paths
/// that are not plain relative paths or that collide with the publisher's
/// own names.
pub fn build_publication(
    cand: &Candidate,
    outcome: &GateOutcome,
    previous: Option<&PublishedMeta>,
    now_ms: u64,
) -> Result<Publication, PublishError> {
    let mut files = BTreeMap::new();
    for (rel, bytes) in &cand.files {
        if !is_plain_relative(rel) {
            return Err(PublishError::BadPath(rel.clone()));
        }
        let first = rel.split('/').next().unwrap_or(rel);
        if RESERVED.contains(&first) {
            return Err(PublishError::Reserved(rel.clone()));
        }
        files.insert(rel.clone(), bytes.clone());
    }
    let diff_text = outcome.diff.to_text();
    files.insert("report.txt".into(), cand.report_text.clone().into_bytes());
    files.insert("report.json".into(), cand.report_json.clone().into_bytes());
    files.insert("diff.txt".into(), diff_text.clone().into_bytes());
    files.insert("diff.json".into(), outcome.diff.to_json().into_bytes());
    let previous_version = previous.map(|p| p.version.clone());
    let meta = PublishedMeta {
        format: META_FORMAT,
        image: cand.image.clone(),
        slug: image_slug(&cand.image),
        version: outcome.version.full.clone(),
        version_short: outcome.version.short.clone(),
        published_at_ms: now_ms,
        state: cand.state.clone(),
        allowed: cand.allowed.clone(),
        files: files.keys().cloned().collect(),
        previous_version: previous_version.clone(),
        confidence_summary: cand.confidence_summary.clone(),
        log_since_ms: PublishedMeta::log_since_for(previous, &cand.state, now_ms),
        // A forced log mode stays until released; a pin never reaches
        // here (a pinned image is not published).
        levers: Levers {
            pinned: None,
            forced_log: previous.and_then(|p| p.levers.forced_log.clone()),
        },
        after_denials: after_denials(previous, cand),
    };
    let mut commit_message = format!(
        "{}: {} {} (+{} -{} syscalls)\n\n{}\n{}\nversion: {}\nprevious: {}\n",
        cand.image,
        cand.state,
        outcome.version.short,
        outcome.diff.added_count(),
        outcome.diff.removed_count(),
        diff_text,
        cand.confidence_summary,
        outcome.version.full,
        previous_version.as_deref().unwrap_or("none"),
    );
    let before = previous.map_or(&[][..], |p| &p.after_denials[..]);
    for a in meta.after_denials.iter().filter(|a| {
        !before
            .iter()
            .any(|b| (&b.abi, &b.name) == (&a.abi, &a.name))
    }) {
        commit_message.push_str(&format!(
            "added after denials: {} {}: {}\n",
            a.abi, a.name, a.reason
        ));
    }
    Ok(Publication {
        meta,
        files,
        commit_message,
        also_under: Vec::new(),
        lever: None,
    })
}

/// The syscalls added after denials that the new meta records: those of
/// the meta in force, then the candidate's new ones (by ABI and name).
/// Records only grow, so a publication that did not compile them in (a
/// lever's log-mode profile, which denies nothing) does not lose them.
fn after_denials(
    previous: Option<&PublishedMeta>,
    cand: &Candidate,
) -> Vec<crate::candidate::AddedAfterDenials> {
    let mut all: Vec<_> = previous.map_or_else(Vec::new, |p| p.after_denials.clone());
    for a in &cand.after_denials {
        if !all.iter().any(|b| (&b.abi, &b.name) == (&a.abi, &a.name)) {
            all.push(a.clone());
        }
    }
    all
}

/// Gates every candidate against what `target` has published and
/// publishes those that pass. Candidates are handled in image order; a
/// second candidate for the same image fails (which one the caller meant
/// is ambiguous). One image's failure does not stop the others. Then
/// [`Target::flush`] runs once; its failure marks every image published in
/// this round as failed.
pub async fn publish_all<T: Target>(
    candidates: &[Candidate],
    target: &T,
    gp: &GatePolicy,
    now_ms: u64,
) -> PublishReport {
    let mut order: Vec<&Candidate> = candidates.iter().collect();
    order.sort_by(|a, b| a.image.cmp(&b.image));
    let mut seen = BTreeSet::new();
    let mut report = PublishReport {
        target: target.describe(),
        images: Vec::with_capacity(order.len()),
        pushed: Vec::new(),
    };
    let pushed_before = target.pushed().len();
    for cand in order {
        let slug = image_slug(&cand.image);
        let (outcome, levers, log_since_ms) = if seen.insert(cand.image.clone()) {
            publish_one(cand, &slug, target, gp, now_ms)
                .await
                .unwrap_or_else(|e| {
                    (
                        Outcome::Failed {
                            error: sysutil::error_chain(&e),
                        },
                        Levers::default(),
                        None,
                    )
                })
        } else {
            (
                Outcome::Failed {
                    error: "more than one candidate for this image in the round".into(),
                },
                Levers::default(),
                None,
            )
        };
        match &outcome {
            Outcome::Published { version, .. } => {
                log::info!("published {} {version} to {}", cand.image, report.target)
            }
            Outcome::HeldBack { reasons, .. } => {
                log::warn!("held back {}: {}", cand.image, reasons.join("; "))
            }
            Outcome::Failed { error } => log::error!("publishing {}: {error}", cand.image),
            _ => {}
        }
        report.images.push(ImageReport {
            image: cand.image.clone(),
            slug,
            outcome,
            levers,
            log_since_ms,
        });
    }
    report.pushed = target
        .pushed()
        .split_off(pushed_before.min(target.pushed().len()));
    if report.published() > 0 {
        if let Err(e) = target.flush().await {
            for i in &mut report.images {
                if matches!(i.outcome, Outcome::Published { .. }) {
                    i.outcome = Outcome::Failed {
                        error: format!("flush: {}", sysutil::error_chain(&e)),
                    };
                }
            }
        }
    }
    report
}

/// One image's round: its outcome and the levers in force after it.
async fn publish_one<T: Target>(
    cand: &Candidate,
    slug: &str,
    target: &T,
    gp: &GatePolicy,
    now_ms: u64,
) -> Result<(Outcome, Levers, Option<u64>), PublishError> {
    // For one release the folder of earlier releases is written too, and
    // read when the new one has nothing yet, so that moving to the new slug
    // is not a first publication (see `schemas::slug::legacy`).
    let legacy = schemas::slug::legacy(&cand.image).folder;
    let legacy = (legacy != slug).then_some(legacy);
    let mut previous = target.current(slug).await?;
    let mut from_legacy = false;
    if previous.is_none() {
        if let Some(old) = &legacy {
            previous = target.current(old).await?;
            from_legacy = previous.is_some();
        }
    }
    if let Some(p) = &previous {
        if p.image != cand.image {
            return Err(PublishError::ImageMismatch {
                what: format!("{}/{slug}", target.describe()),
                found: p.image.clone(),
                expected: cand.image.clone(),
            });
        }
    }
    let levers = previous
        .as_ref()
        .map(|p| p.levers.clone())
        .unwrap_or_default();
    // Forced into log mode: the log-mode compile stands in for the
    // candidate. Without one an enforcing candidate must not be published
    // over the operator's lever.
    let cand = match (&levers.forced_log, &cand.log_variant) {
        (None, _) => cand,
        (Some(_), Some(log)) => log.as_ref(),
        (Some(_), None) if cand.state != "enforce" => cand,
        (Some(_), None) => return Err(PublishError::NoLogVariant(cand.image.clone())),
    };
    if let (Some(pin), Some(p)) = (&levers.pinned, &previous) {
        let outcome = Outcome::Pinned {
            version: p.version.clone(),
            candidate: Version::of_files(&cand.files).full,
            by: pin.by.clone(),
            reason: pin.reason.clone(),
            since_ms: pin.at_ms,
        };
        let since = p.in_log_mode_since_ms();
        return Ok((outcome, levers, since));
    }
    let mut g = gate(previous.as_ref(), cand, gp, now_ms);
    let mut waived = Vec::new();
    if levers.forced_log.is_some() {
        // A log-mode profile denies nothing: what the gate holds back for
        // (a new syscall on too few hosts, a must-deny one, an early
        // removal) cannot break or open anything, so the operator's lever
        // wins; the reasons go into the commit message.
        if let GateDecision::HoldBack(reasons) = &g.decision {
            waived = reasons.clone();
            g.decision = GateDecision::Publish;
        }
    }
    // When the profile in force after this round entered log mode.
    let mut since = previous
        .as_ref()
        .and_then(PublishedMeta::in_log_mode_since_ms);
    let outcome = match g.decision {
        GateDecision::Unchanged => {
            if from_legacy {
                // Published before under the old folder only: the same
                // version, now under the slug too.
                let p = build_publication(cand, &g, previous.as_ref(), now_ms)?;
                target.publish(&p).await?;
            }
            Outcome::Unchanged {
                version: g.version.full,
            }
        }
        GateDecision::NotReady(reason) => Outcome::NotReady { reason },
        GateDecision::HoldBack(reasons) => Outcome::HeldBack {
            candidate: g.version.full,
            reasons,
            shrink_eligible_at_ms: g.shrink_eligible_at_ms,
        },
        GateDecision::Publish => {
            let mut p = build_publication(cand, &g, previous.as_ref(), now_ms)?;
            if let Some(m) = &levers.forced_log {
                p.commit_message.push_str(&format!(
                    "forced log mode by {} since {}: {}\n",
                    m.by,
                    sysutil::clock::rfc3339_s(m.at_ms),
                    m.reason
                ));
                for r in &waived {
                    p.commit_message
                        .push_str(&format!("waived in log mode: {r}\n"));
                }
            }
            p.also_under.extend(legacy);
            target.publish(&p).await?;
            since = p.meta.in_log_mode_since_ms();
            Outcome::Published {
                version: g.version.full,
                previous: previous.map(|p| p.version),
                added: g.diff.added_count(),
                removed: g.diff.removed_count(),
            }
        }
    };
    Ok((outcome, levers, since))
}
