//! A directory tree of versions:
//!
//! ```text
//! <root>/<slug>/<version-short>/<files...>   one directory per version, never edited
//! <root>/<slug>/<version-short>/meta.json    that version's meta
//! <root>/<slug>/latest -> <version-short>    symlink, swapped atomically
//! <root>/<slug>/current                      meta of the version in force (commit point)
//! ```
//!
//! A version directory is built under a temporary name and renamed into
//! place, so it appears complete or not at all.

use super::{meta_bytes, parse_meta, Publication, Target};
use crate::candidate::PublishedMeta;
use crate::PublishError;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use sysutil::fs::{sync_dir, write_atomic, write_synced};

#[derive(Debug, Clone)]
pub struct DirTarget {
    root: PathBuf,
}

impl DirTarget {
    /// `root` is created on first publication.
    pub fn new(root: impl Into<PathBuf>) -> DirTarget {
        DirTarget { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn read_current(&self, slug: &str) -> Result<Option<PublishedMeta>, PublishError> {
        let path = self.root.join(slug).join("current");
        match fs::read(&path) {
            Ok(b) => parse_meta(&b, &path.display().to_string()).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(PublishError::io(&path)(e)),
        }
    }

    fn write(&self, p: &Publication) -> Result<(), PublishError> {
        let slug_dir = self.root.join(&p.meta.slug);
        fs::create_dir_all(&slug_dir).map_err(PublishError::io(&slug_dir))?;
        remove_stale_temps(&slug_dir)?;
        let short = &p.meta.version_short;
        let vdir = slug_dir.join(short);
        let meta = meta_bytes(&p.meta);
        if vdir.is_dir() {
            // Same files (same version), maybe a new state or reports:
            // replace file by file, each atomically.
            for (rel, bytes) in &p.files {
                write_atomic(&vdir.join(rel), bytes)?;
            }
            write_atomic(&vdir.join("meta.json"), &meta)?;
        } else {
            let tmp = slug_dir.join(format!(".tmp-{short}-{}", std::process::id()));
            for (rel, bytes) in &p.files {
                write_synced(&tmp.join(rel), bytes)?;
            }
            write_synced(&tmp.join("meta.json"), &meta)?;
            sync_tree(&tmp)?;
            fs::rename(&tmp, &vdir).map_err(PublishError::io(&vdir))?;
            sync_dir(&slug_dir)?;
        }
        let link_tmp = slug_dir.join(format!(".tmp-latest-{}", std::process::id()));
        let _ = fs::remove_file(&link_tmp);
        std::os::unix::fs::symlink(short, &link_tmp).map_err(PublishError::io(&link_tmp))?;
        let latest = slug_dir.join("latest");
        fs::rename(&link_tmp, &latest).map_err(PublishError::io(&latest))?;
        if let Some(rec) = &p.lever {
            // The history of levers: one JSON line each, before the
            // commit point (a lever redone after a crash appears twice).
            let log = slug_dir.join("levers.jsonl");
            let mut text = match fs::read(&log) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(PublishError::io(&log)(e)),
            };
            text.extend(serde_json::to_vec(rec).unwrap_or_default());
            text.push(b'\n');
            write_atomic(&log, &text)?;
        }
        Ok(write_atomic(&slug_dir.join("current"), &meta)?)
    }

    /// Every `<slug>/<version>/meta.json`, newest publication first.
    fn read_versions(&self, slug: &str) -> Result<Vec<PublishedMeta>, PublishError> {
        let dir = self.root.join(slug);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(PublishError::io(&dir)(e)),
        };
        let mut out = Vec::new();
        for e in entries {
            let e = e.map_err(PublishError::io(&dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            if name.starts_with('.') || path.is_symlink() || !path.is_dir() {
                continue;
            }
            let mpath = path.join("meta.json");
            match fs::read(&mpath) {
                Ok(b) => out.push(parse_meta(&b, &mpath.display().to_string())?),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(PublishError::io(&mpath)(e)),
            }
        }
        out.sort_by(|a, b| {
            b.published_at_ms
                .cmp(&a.published_at_ms)
                .then(a.version.cmp(&b.version))
        });
        Ok(out)
    }

    fn read_files(
        &self,
        slug: &str,
        meta: &PublishedMeta,
    ) -> Result<BTreeMap<String, Vec<u8>>, PublishError> {
        let vdir = self.root.join(slug).join(&meta.version_short);
        let mut files = BTreeMap::new();
        for rel in &meta.files {
            let path = vdir.join(rel);
            let bytes = fs::read(&path).map_err(PublishError::io(&path))?;
            files.insert(rel.clone(), bytes);
        }
        Ok(files)
    }
}

/// Leftovers of an interrupted publication (`.tmp-*`) are removed before
/// the next one.
fn remove_stale_temps(dir: &Path) -> Result<(), PublishError> {
    for e in fs::read_dir(dir).map_err(PublishError::io(dir))? {
        let e = e.map_err(PublishError::io(dir))?;
        if e.file_name().to_string_lossy().starts_with(".tmp-") {
            let p = e.path();
            let r = if p.is_dir() && !p.is_symlink() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
            r.map_err(PublishError::io(&p))?;
        }
    }
    Ok(())
}

/// fsyncs every directory under `dir` (files were synced when written), so
/// their entries are durable before the rename publishes them.
fn sync_tree(dir: &Path) -> Result<(), PublishError> {
    for e in fs::read_dir(dir).map_err(PublishError::io(dir))? {
        let p = e.map_err(PublishError::io(dir))?.path();
        if p.is_dir() {
            sync_tree(&p)?;
        }
    }
    Ok(sync_dir(dir)?)
}

impl Target for DirTarget {
    fn describe(&self) -> String {
        format!("dir:{}", self.root.display())
    }

    async fn current(&self, slug: &str) -> Result<Option<PublishedMeta>, PublishError> {
        self.read_current(slug)
    }

    async fn versions(&self, slug: &str) -> Result<Vec<PublishedMeta>, PublishError> {
        self.read_versions(slug)
    }

    async fn version_files(
        &self,
        slug: &str,
        meta: &PublishedMeta,
    ) -> Result<BTreeMap<String, Vec<u8>>, PublishError> {
        self.read_files(slug, meta)
    }

    async fn publish(&self, p: &Publication) -> Result<(), PublishError> {
        self.write(p)?;
        for alias in p.aliases() {
            self.write(&alias)?;
        }
        Ok(())
    }
}
