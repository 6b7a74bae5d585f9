//! Where publications go. Every target is idempotent (publishing the same
//! publication twice leaves the same state) and crash-safe (the `current`
//! meta is written last, so an interrupted publication is redone by the
//! next round: its gate still sees the old meta).

use crate::candidate::PublishedMeta;
use crate::PublishError;
use std::collections::BTreeMap;
use std::future::Future;

pub mod dir;
pub mod git;
pub mod nats;
pub mod object_store;
pub mod oci;

/// File names the publisher writes next to the candidate's files; a
/// candidate file with one of these names is refused.
pub const RESERVED: &[&str] = &[
    "report.txt",
    "report.json",
    "diff.txt",
    "diff.json",
    "meta.json",
    "current",
    "current.json",
    "latest",
    "levers.jsonl",
];

/// One image's publication, ready to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// Becomes the `current` meta.
    pub meta: PublishedMeta,
    /// Everything to write under the image's directory: the candidate's
    /// files plus `report.txt`, `report.json`, `diff.txt`, `diff.json`.
    pub files: BTreeMap<String, Vec<u8>>,
    /// For targets with history (git): subject, blank line, body.
    pub commit_message: String,
    /// The folders earlier releases used for this image, written with the
    /// same files and meta (its `slug` set to each) in the same
    /// publication, for one release (`schemas::slug::legacy`,
    /// docs/UPGRADING.md).
    pub also_under: Vec<String>,
    /// Set when an operator's lever makes this publication
    /// (`crate::levers::plan`): the git commit is dated by it and the
    /// directory target appends it to `<slug>/levers.jsonl`.
    pub lever: Option<crate::levers::LeverRecord>,
}

impl Publication {
    /// This publication as written under each of `also_under`.
    pub fn aliases(&self) -> impl Iterator<Item = Publication> + '_ {
        self.also_under.iter().map(|slug| {
            let mut p = self.clone();
            p.meta.slug = slug.clone();
            p.also_under = Vec::new();
            p.lever = None;
            p
        })
    }
}

/// A place profiles are published to. Methods are async because the
/// object store is remote; the directory and git targets do their
/// (short, blocking) file and `git` work inline.
pub trait Target: Sync {
    /// For logs and reports, e.g. `dir:/srv/profiles`.
    fn describe(&self) -> String;

    /// The meta of the publication in force for `slug`, if any.
    fn current(
        &self,
        slug: &str,
    ) -> impl Future<Output = Result<Option<PublishedMeta>, PublishError>> + Send;

    /// Writes `p` under `p.meta.slug` (and each of `p.also_under`),
    /// `current` last.
    fn publish(&self, p: &Publication) -> impl Future<Output = Result<(), PublishError>> + Send;

    /// The metas of every version this target keeps for `slug`, newest
    /// publication first, one per version (for rollback). Targets without
    /// history refuse.
    fn versions(
        &self,
        _slug: &str,
    ) -> impl Future<Output = Result<Vec<PublishedMeta>, PublishError>> + Send {
        let what = self.describe();
        async move { Err(PublishError::NoHistory(what)) }
    }

    /// The files of the publication `meta` describes (one of
    /// [`Target::versions`], or the current one), by path.
    fn version_files(
        &self,
        _slug: &str,
        _meta: &PublishedMeta,
    ) -> impl Future<Output = Result<BTreeMap<String, Vec<u8>>, PublishError>> + Send {
        let what = self.describe();
        async move { Err(PublishError::NoHistory(what)) }
    }

    /// References of what this target pushed so far (the OCI target's
    /// `registry/repo@sha256:...`), printed with the round's report.
    /// Nothing by default.
    fn pushed(&self) -> Vec<String> {
        Vec::new()
    }

    /// Called once after a round; where a git target would push to a
    /// remote. No-op by default.
    fn flush(&self) -> impl Future<Output = Result<(), PublishError>> + Send {
        async { Ok(()) }
    }
}

pub(crate) fn parse_meta(bytes: &[u8], what: &str) -> Result<PublishedMeta, PublishError> {
    serde_json::from_slice(bytes).map_err(|source| PublishError::Meta {
        what: what.to_string(),
        source,
    })
}

pub(crate) fn meta_bytes(meta: &PublishedMeta) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(meta).unwrap_or_default();
    v.push(b'\n');
    v
}
