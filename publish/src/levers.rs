//! Operators' levers: roll an image back to an earlier version, pin it, or
//! force it into log mode, each one publication (one git commit) that says
//! who and why. The lever itself is kept in the image's `current` meta
//! ([`Levers`]), so it lives with the target and every later round reads
//! it there: a pinned image is left alone (and reported as pinned), a
//! forced one is published from its log-mode compile.
//!
//! [`plan`] checks a lever against one target and returns the publication
//! to write, without writing it, so that a lever meant for several targets
//! changes none of them when it is refused by one.

use crate::candidate::{Candidate, GatePolicy, LeverMark, Levers, PublishedMeta};
use crate::diff::SyscallDiff;
use crate::gate::gate;
use crate::publish::build_publication;
use crate::targets::{Publication, Target};
use crate::PublishError;
use schemas::slug::image_slug;
use serde::Serialize;
use std::collections::BTreeMap;

/// What an operator asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeverAction {
    /// Pin the version in force (`Some(v)`: only if `v` is the one in
    /// force).
    Pin {
        version: Option<String>,
    },
    Unpin,
    /// Publish an earlier version again, and pin it.
    Rollback {
        to: String,
    },
    /// Publish the image's log-mode profile now and in every round until
    /// released.
    ForceLog,
    /// End a forced log mode; the next round publishes the image's own
    /// state (through the gate).
    ReleaseLog,
}

impl LeverAction {
    pub fn name(&self) -> &'static str {
        match self {
            LeverAction::Pin { .. } => "pin",
            LeverAction::Unpin => "unpin",
            LeverAction::Rollback { .. } => "rollback",
            LeverAction::ForceLog => "force-log",
            LeverAction::ReleaseLog => "release-log",
        }
    }
}

/// One lever as recorded: the git commit says it, the directory target
/// appends it to `<slug>/levers.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeverRecord {
    pub at_ms: u64,
    pub image: String,
    pub lever: String,
    /// The version in force after the lever.
    pub version: String,
    /// The version in force before it.
    pub was: String,
    pub by: String,
    pub reason: String,
}

/// Why a lever was refused. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum LeverError {
    #[error("a lever needs a reason (--reason)")]
    NoReason,
    #[error(
        "image {image:?} has nothing published in {target} (`sandmine publish` publishes it first)"
    )]
    NotPublished { image: String, target: String },
    #[error("image {image:?} has no version {version:?} in {target}; known versions, newest first: {}", known.join(", "))]
    UnknownVersion {
        image: String,
        version: String,
        target: String,
        known: Vec<String>,
    },
    #[error("image {image:?} is already pinned at {version} in {target} (by {by}: {reason}); `sandmine lever unpin` first")]
    AlreadyPinned {
        image: String,
        version: String,
        target: String,
        by: String,
        reason: String,
    },
    #[error("image {image:?} is not pinned in {target}")]
    NotPinned { image: String, target: String },
    #[error("image {image:?} is pinned at {version} in {target} (by {by}: {reason}); `sandmine lever unpin` first")]
    Pinned {
        image: String,
        version: String,
        target: String,
        by: String,
        reason: String,
    },
    #[error("image {image:?} is already forced into log mode in {target} (by {by}: {reason})")]
    AlreadyForced {
        image: String,
        target: String,
        by: String,
        reason: String,
    },
    #[error("image {image:?} is not forced into log mode in {target}")]
    NotForced { image: String, target: String },
    #[error("image {image:?} is forced into log mode in {target} (by {by}: {reason}); `sandmine lever release-log` first")]
    Forced {
        image: String,
        target: String,
        by: String,
        reason: String,
    },
    #[error("{version} is already the version in force for {image:?} in {target}")]
    SameVersion {
        image: String,
        version: String,
        target: String,
    },
    #[error("{version} is not the version in force for {image:?} in {target} ({current}); `sandmine lever rollback --to {version}` publishes it and pins it")]
    NotInForce {
        image: String,
        version: String,
        current: String,
        target: String,
    },
    #[error("image {image:?} is not ready (too little evidence), so it has no log-mode profile to publish")]
    NotReady { image: String },
    #[error("no log-mode compile of {image:?} was given for force-log")]
    NoLogCandidate { image: String },
    #[error("{target}")]
    Target {
        target: String,
        #[source]
        source: PublishError,
    },
}

/// True when `wanted` names `version` (`sha256:<hex>`): the full form,
/// the bare hex, or the 12-digit short form.
fn names(wanted: &str, meta: &PublishedMeta) -> bool {
    let hex = meta
        .version
        .strip_prefix("sha256:")
        .unwrap_or(&meta.version);
    wanted == meta.version || wanted == hex || wanted == meta.version_short
}

/// Checks `action` for `image` against `target` and returns the
/// publication that carries it out (not written: [`Target::publish`]
/// writes it). `log_candidate` is the image's log-mode compile (for
/// [`LeverAction::ForceLog`] only). Errors say what is in the way.
#[allow(clippy::too_many_arguments)]
pub async fn plan<T: Target>(
    target: &T,
    image: &str,
    action: &LeverAction,
    by: &str,
    reason: &str,
    log_candidate: Option<&Candidate>,
    gp: &GatePolicy,
    now_ms: u64,
) -> Result<Publication, LeverError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(LeverError::NoReason);
    }
    let tname = target.describe();
    let wrap = |source: PublishError| LeverError::Target {
        target: tname.clone(),
        source,
    };
    let slug = image_slug(image);
    let current = target
        .current(&slug)
        .await
        .map_err(wrap)?
        .filter(|m| m.image == image)
        .ok_or_else(|| LeverError::NotPublished {
            image: image.into(),
            target: tname.clone(),
        })?;
    let mark = LeverMark {
        by: by.to_string(),
        reason: reason.to_string(),
        at_ms: now_ms,
    };
    let pinned_err = |m: &LeverMark| LeverError::Pinned {
        image: image.into(),
        version: current.version_short.clone(),
        target: tname.clone(),
        by: m.by.clone(),
        reason: m.reason.clone(),
    };
    let forced_err = |m: &LeverMark| LeverError::Forced {
        image: image.into(),
        target: tname.clone(),
        by: m.by.clone(),
        reason: m.reason.clone(),
    };
    // The lever's effect: the meta and files to write, and the subject.
    let (meta, files, subject, diff) = match action {
        LeverAction::Pin { version } => {
            if let Some(m) = &current.levers.pinned {
                return Err(LeverError::AlreadyPinned {
                    image: image.into(),
                    version: current.version_short.clone(),
                    target: tname.clone(),
                    by: m.by.clone(),
                    reason: m.reason.clone(),
                });
            }
            if let Some(v) = version {
                if !names(v, &current) {
                    let known = known_or_err(target, &slug, image, v, &tname).await?;
                    return Err(LeverError::NotInForce {
                        image: image.into(),
                        version: known.version_short,
                        current: current.version_short.clone(),
                        target: tname.clone(),
                    });
                }
            }
            let mut meta = current.clone();
            meta.levers.pinned = Some(mark.clone());
            let subject = format!("{image}: pin {}", current.version_short);
            (meta, None, subject, None)
        }
        LeverAction::Unpin => {
            if current.levers.pinned.is_none() {
                return Err(LeverError::NotPinned {
                    image: image.into(),
                    target: tname.clone(),
                });
            }
            let mut meta = current.clone();
            meta.levers.pinned = None;
            let subject = format!(
                "{image}: unpin {} (rounds publish it again)",
                current.version_short
            );
            (meta, None, subject, None)
        }
        LeverAction::ReleaseLog => {
            if current.levers.forced_log.is_none() {
                return Err(LeverError::NotForced {
                    image: image.into(),
                    target: tname.clone(),
                });
            }
            let mut meta = current.clone();
            meta.levers.forced_log = None;
            let subject = format!(
                "{image}: release log mode ({} stays until the next round)",
                current.version_short
            );
            (meta, None, subject, None)
        }
        LeverAction::Rollback { to } => {
            if let Some(m) = &current.levers.forced_log {
                return Err(forced_err(m));
            }
            if names(to, &current) {
                return Err(LeverError::SameVersion {
                    image: image.into(),
                    version: current.version_short.clone(),
                    target: tname.clone(),
                });
            }
            let old = known_or_err(target, &slug, image, to, &tname).await?;
            let mut files =
                target
                    .version_files(&slug, &old)
                    .await
                    .map_err(|source| LeverError::Target {
                        target: tname.clone(),
                        source,
                    })?;
            let diff = SyscallDiff::between(&current.allowed, &old.allowed);
            files.insert("diff.txt".into(), diff.to_text().into_bytes());
            files.insert("diff.json".into(), diff.to_json().into_bytes());
            let mut meta = old.clone();
            meta.slug = slug.clone();
            meta.published_at_ms = now_ms;
            meta.previous_version = Some(current.version.clone());
            meta.log_since_ms = PublishedMeta::log_since_for(Some(&current), &old.state, now_ms);
            meta.files = files.keys().cloned().collect();
            meta.levers = Levers {
                pinned: Some(mark.clone()),
                forced_log: None,
            };
            let subject = format!(
                "{image}: rollback to {} from {} (pinned)",
                old.version_short, current.version_short
            );
            (meta, Some(files), subject, Some(diff))
        }
        LeverAction::ForceLog => {
            if let Some(m) = &current.levers.pinned {
                return Err(pinned_err(m));
            }
            if let Some(m) = &current.levers.forced_log {
                return Err(LeverError::AlreadyForced {
                    image: image.into(),
                    target: tname.clone(),
                    by: m.by.clone(),
                    reason: m.reason.clone(),
                });
            }
            let cand = log_candidate.ok_or_else(|| LeverError::NoLogCandidate {
                image: image.into(),
            })?;
            if cand.image != image {
                return Err(LeverError::NoLogCandidate {
                    image: image.into(),
                });
            }
            if cand.state == "not_ready" {
                return Err(LeverError::NotReady {
                    image: image.into(),
                });
            }
            // The gate's hold-back rules do not apply: a log-mode profile
            // denies nothing (see `publish_all`); only its version and
            // diff are wanted.
            let g = gate(Some(&current), cand, gp, now_ms);
            let mut p = build_publication(cand, &g, Some(&current), now_ms).map_err(wrap)?;
            p.meta.levers = Levers {
                pinned: None,
                forced_log: Some(mark.clone()),
            };
            let subject = format!(
                "{image}: force log mode {} (was {} {})",
                p.meta.version_short, current.state, current.version_short
            );
            (p.meta, Some(p.files), subject, Some(g.diff))
        }
    };
    let files = match files {
        Some(f) => f,
        None => target
            .version_files(&slug, &current)
            .await
            .map_err(|source| LeverError::Target {
                target: tname.clone(),
                source,
            })?,
    };
    let mut message = format!("{subject}\n\nby: {by}\nreason: {reason}\n");
    if let Some(d) = &diff {
        message.push('\n');
        message.push_str(&d.to_text());
    }
    message.push_str(&format!(
        "\nversion: {}\nwas: {}\n",
        meta.version, current.version
    ));
    let legacy = schemas::slug::legacy(image).folder;
    let record = LeverRecord {
        at_ms: now_ms,
        image: image.to_string(),
        lever: action.name().to_string(),
        version: meta.version.clone(),
        was: current.version.clone(),
        by: by.to_string(),
        reason: reason.to_string(),
    };
    Ok(Publication {
        meta,
        files,
        commit_message: message,
        also_under: if legacy != slug { vec![legacy] } else { vec![] },
        lever: Some(record),
    })
}

/// The meta of the version `wanted` names, or the error listing the
/// versions the target knows.
async fn known_or_err<T: Target>(
    target: &T,
    slug: &str,
    image: &str,
    wanted: &str,
    tname: &str,
) -> Result<PublishedMeta, LeverError> {
    let versions = target
        .versions(slug)
        .await
        .map_err(|source| LeverError::Target {
            target: tname.to_string(),
            source,
        })?;
    match versions.iter().find(|m| names(wanted, m)) {
        Some(m) => Ok(m.clone()),
        None => Err(LeverError::UnknownVersion {
            image: image.into(),
            version: wanted.into(),
            target: tname.into(),
            known: versions.iter().map(|m| m.version_short.clone()).collect(),
        }),
    }
}

/// The versions of `image` a target keeps, newest publication first, with
/// the meta of each (as first published), for `sandmine lever versions`.
pub async fn versions<T: Target>(
    target: &T,
    image: &str,
) -> Result<Vec<PublishedMeta>, PublishError> {
    let slug = image_slug(image);
    Ok(target
        .versions(&slug)
        .await?
        .into_iter()
        .filter(|m| m.image == image)
        .collect())
}

/// Files of one version, by path.
pub type Files = BTreeMap<String, Vec<u8>>;
