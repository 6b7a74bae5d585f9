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
        Ok(write_atomic(&slug_dir.join("current"), &meta)?)
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

    async fn publish(&self, p: &Publication) -> Result<(), PublishError> {
        self.write(p)?;
        for alias in p.aliases() {
            self.write(&alias)?;
        }
        Ok(())
    }
}
