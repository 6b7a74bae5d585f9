//! Profiles to the nodes: the kubelet reads `localhost/` seccomp profiles
//! from its seccomp directory (`/var/lib/kubelet/seccomp/`) on each node.
//! [`sync_kubelet`] keeps that directory equal to the versions in force of
//! a directory publish target ([`crate::DirTarget`]'s layout, mounted on
//! the node or synced to it): for every image, the `kubelet/` files of the
//! version its `current` meta names.
//!
//! What it guarantees:
//! - **Only whole, verified versions.** A version's files are read, the
//!   version hash is recomputed over them ([`Version::of_files`], the hash
//!   the publisher wrote) and must equal the meta's; each kubelet file must
//!   parse as a profile with the one parser (`policy_compiler::oci`). A
//!   version that fails either is refused, with the reason, and the file
//!   already installed stays: a torn copy or a tampered file never reaches
//!   the kubelet.
//! - **Only signed profiles, when keys are given.** With trusted public
//!   keys, every kubelet file of a version must have its `.sig` beside it,
//!   a valid signature of its exact bytes by one of those keys
//!   ([`crate::sign`]); a version with one unsigned or badly signed file
//!   is refused like an altered one. Signature files are never installed.
//! - **Atomic replacement.** Each file is written to a temporary name,
//!   fsynced and renamed over the old one, so a pod that starts meanwhile
//!   reads the old profile or the new one, never a part.
//! - **Nothing removed.** A profile whose image is no longer published
//!   stays: a pod that references it would fail to start without it. It is
//!   reported as stale.
//! - A file that two images' versions would both install (an old and a
//!   new folder of one image during the slug migration) is taken from the
//!   most recent publication.

use crate::candidate::PublishedMeta;
use crate::targets::{parse_meta, RESERVED};
use crate::version::Version;
use crate::PublishError;
use schemas::wire::PublicKey;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// What one pass did, per file (paths relative to the kubelet directory).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// Written: new or changed. (path, image, version_short)
    pub installed: Vec<(String, String, String)>,
    /// Already equal to the version in force.
    pub unchanged: Vec<String>,
    /// An image whose version in force was refused, and why; its
    /// installed files (if any) were left as they were.
    pub refused: Vec<(String, String)>,
    /// Files under the kubelet directory's `sandmine/` that no version in
    /// force installs (kept).
    pub stale: Vec<String>,
}

struct Wanted {
    bytes: Vec<u8>,
    image: String,
    version_short: String,
    published_at_ms: u64,
}

/// One pass: install the `kubelet/` files of every image's version in
/// force under `src` (a dir target's root) into `dest` (the kubelet's
/// seccomp directory). Errors that concern one image are in
/// [`SyncReport::refused`]; an error is returned only when `src` cannot be
/// listed or a file of `dest` cannot be written. With `trusted` keys (one
/// or more, several during a key rotation), each kubelet file must be
/// signed by one of them; with none, signatures are not checked.
pub fn sync_kubelet(
    src: &Path,
    dest: &Path,
    trusted: &[PublicKey],
) -> Result<SyncReport, PublishError> {
    let mut report = SyncReport::default();
    let mut wanted: BTreeMap<String, Wanted> = BTreeMap::new();
    let mut slugs: Vec<PathBuf> = Vec::new();
    for e in fs::read_dir(src).map_err(PublishError::io(src))? {
        let e = e.map_err(PublishError::io(src))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let p = e.path();
        if name.starts_with('.') || p.is_symlink() || !p.is_dir() {
            continue;
        }
        slugs.push(p);
    }
    slugs.sort();
    for slug_dir in slugs {
        let current = slug_dir.join("current");
        let meta = match fs::read(&current) {
            Ok(b) => match parse_meta(&b, &current.display().to_string()) {
                Ok(m) => m,
                Err(e) => {
                    report
                        .refused
                        .push((current.display().to_string(), sysutil::error_chain(&e)));
                    continue;
                }
            },
            // Nothing published in force yet (or a folder of another kind).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(PublishError::io(&current)(e)),
        };
        match verified_kubelet_files(&slug_dir, &meta, trusted) {
            Ok(files) => {
                for (rel, bytes) in files {
                    let keep = wanted
                        .get(&rel)
                        .is_some_and(|w| w.published_at_ms > meta.published_at_ms);
                    if !keep {
                        wanted.insert(
                            rel,
                            Wanted {
                                bytes,
                                image: meta.image.clone(),
                                version_short: meta.version_short.clone(),
                                published_at_ms: meta.published_at_ms,
                            },
                        );
                    }
                }
            }
            Err(why) => report.refused.push((meta.image.clone(), why)),
        }
    }
    for (rel, w) in &wanted {
        let path = dest.join(rel);
        match fs::read(&path) {
            Ok(old) if old == w.bytes => {
                report.unchanged.push(rel.clone());
                continue;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(PublishError::io(&path)(e)),
        }
        sysutil::fs::write_atomic(&path, &w.bytes)?;
        report
            .installed
            .push((rel.clone(), w.image.clone(), w.version_short.clone()));
    }
    let ours = dest.join("sandmine");
    if let Ok(entries) = fs::read_dir(&ours) {
        let mut stale = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = format!("sandmine/{name}");
            if !name.starts_with('.') && !wanted.contains_key(&rel) {
                stale.push(rel);
            }
        }
        stale.sort();
        report.stale = stale;
    }
    Ok(report)
}

/// The `kubelet/` files of `meta`'s version (paths relative to the
/// kubelet directory), after checking the version hash over the version's
/// files, each kubelet file's signature (with `trusted` keys) and that
/// each kubelet file parses as a profile; otherwise why not.
fn verified_kubelet_files(
    slug_dir: &Path,
    meta: &PublishedMeta,
    trusted: &[PublicKey],
) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let vdir = slug_dir.join(&meta.version_short);
    let mut hashed = BTreeMap::new();
    for rel in &meta.files {
        let first = rel.split('/').next().unwrap_or(rel);
        if RESERVED.contains(&first) {
            continue;
        }
        if !crate::paths::is_plain_relative(rel) {
            return Err(format!(
                "version {}: file path {rel:?} is not a plain relative path",
                meta.version_short
            ));
        }
        let path = vdir.join(rel);
        let bytes = fs::read(&path).map_err(|e| {
            format!(
                "version {}: cannot read {}: {e}",
                meta.version_short,
                path.display()
            )
        })?;
        hashed.insert(rel.clone(), bytes);
    }
    let got = Version::of_files(&hashed);
    if got.full != meta.version {
        return Err(format!(
            "version {}: its files hash to {}, not to the published {}: a torn or altered copy; the installed profile is kept",
            meta.version_short, got.full, meta.version
        ));
    }
    let mut out = BTreeMap::new();
    for (rel, bytes) in &hashed {
        let Some(k) = rel.strip_prefix("kubelet/") else {
            continue;
        };
        if crate::sign::is_sig(rel) {
            continue;
        }
        if !trusted.is_empty() {
            let sig = crate::sign::sig_path(rel);
            crate::sign::verify(bytes, hashed.get(&sig).map(Vec::as_slice), &sig, trusted)
                .map_err(|e| {
                    format!(
                        "version {}: {rel}: {e}; the installed profile is kept",
                        meta.version_short
                    )
                })?;
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|_| format!("version {}: {rel} is not UTF-8", meta.version_short))?;
        policy_compiler::oci::parse(text).map_err(|e| {
            format!(
                "version {}: {rel} is not a valid seccomp profile: {e}",
                meta.version_short
            )
        })?;
        out.insert(k.to_string(), bytes.clone());
    }
    if out.is_empty() {
        return Err(format!(
            "version {} has no kubelet/ file",
            meta.version_short
        ));
    }
    Ok(out)
}
