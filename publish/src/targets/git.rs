//! A git repository with one directory per image, overwritten on each
//! publication (history lives in git, not in version directories):
//!
//! ```text
//! <repo>/<slug>/<files...>, report.txt, report.json, diff.txt, diff.json
//! <repo>/<slug>/current       meta of the version in force
//! ```
//!
//! One commit per changed image, none when nothing changed. The previous
//! meta is read from `HEAD`, not the work tree: files written by a
//! publication that crashed before its commit are then simply rewritten
//! and committed by the next round.
//!
//! Pushing to a remote is not done yet; it belongs in [`Target::flush`]
//! (one push per round).

use super::{meta_bytes, parse_meta, Publication, Target};
use crate::candidate::PublishedMeta;
use crate::PublishError;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use sysutil::fs::write_synced;

#[derive(Debug, Clone)]
pub struct GitTarget {
    repo: PathBuf,
}

impl GitTarget {
    /// Opens the repository at `repo`, running `git init` (branch `main`)
    /// when it has no `.git` yet.
    pub fn open_or_init(repo: impl Into<PathBuf>) -> Result<GitTarget, PublishError> {
        let t = GitTarget { repo: repo.into() };
        if !t.repo.join(".git").exists() {
            std::fs::create_dir_all(&t.repo).map_err(PublishError::io(&t.repo))?;
            t.git(&["init", "-q", "-b", "main"], None, None)?;
        }
        Ok(t)
    }

    pub fn repo(&self) -> &Path {
        &self.repo
    }

    /// Runs git in the repository with a fixed identity and no hooks or
    /// signing, so behaviour does not depend on the host's git config.
    /// `date_s` pins author and committer dates (reproducible commits).
    fn run(
        &self,
        args: &[&str],
        stdin: Option<&[u8]>,
        date_s: Option<u64>,
    ) -> Result<Output, PublishError> {
        let mut cmd = Command::new("git");
        cmd.arg("-C")
            .arg(&self.repo)
            .args([
                "-c",
                "user.name=sandmine",
                "-c",
                "user.email=sandmine@localhost",
                "-c",
                "commit.gpgsign=false",
                "-c",
                "core.hooksPath=/dev/null",
            ])
            .args(args)
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(s) = date_s {
            let d = format!("@{s} +0000");
            cmd.env("GIT_AUTHOR_DATE", &d).env("GIT_COMMITTER_DATE", &d);
        }
        let fail = |detail: String| PublishError::Git {
            args: args.join(" "),
            detail,
        };
        let mut child = cmd
            .spawn()
            .map_err(|e| fail(format!("cannot run git: {e}")))?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input)
                .map_err(|e| fail(format!("writing stdin: {e}")))?;
        }
        child
            .wait_with_output()
            .map_err(|e| fail(format!("waiting for git: {e}")))
    }

    /// Like `run`, failing on a non-zero exit with git's stderr.
    fn git(
        &self,
        args: &[&str],
        stdin: Option<&[u8]>,
        date_s: Option<u64>,
    ) -> Result<Vec<u8>, PublishError> {
        let out = self.run(args, stdin, date_s)?;
        if !out.status.success() {
            return Err(PublishError::Git {
                args: args.join(" "),
                detail: format!(
                    "{}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        Ok(out.stdout)
    }

    fn has_head(&self) -> Result<bool, PublishError> {
        Ok(self
            .run(
                &["rev-parse", "-q", "--verify", "HEAD^{commit}"],
                None,
                None,
            )?
            .status
            .success())
    }

    fn read_current(&self, slug: &str) -> Result<Option<PublishedMeta>, PublishError> {
        if !self.has_head()? {
            return Ok(None);
        }
        let spec = format!("HEAD:{slug}/current");
        if !self
            .run(&["cat-file", "-e", &spec], None, None)?
            .status
            .success()
        {
            return Ok(None);
        }
        let bytes = self.git(&["cat-file", "blob", &spec], None, None)?;
        parse_meta(&bytes, &format!("{} {spec}", self.repo.display())).map(Some)
    }

    /// Number of commits on HEAD (0 for an empty repository).
    pub fn commit_count(&self) -> Result<u64, PublishError> {
        if !self.has_head()? {
            return Ok(0);
        }
        let out = self.git(&["rev-list", "--count", "HEAD"], None, None)?;
        let s = String::from_utf8_lossy(&out);
        s.trim().parse().map_err(|_| PublishError::Git {
            args: "rev-list --count HEAD".into(),
            detail: format!("unexpected output {s:?}"),
        })
    }

    /// Writes the publication (and its aliases) and commits it, once.
    fn write(&self, p: &Publication) -> Result<(), PublishError> {
        let all: Vec<Publication> = std::iter::once(p.clone()).chain(p.aliases()).collect();
        for p in &all {
            let dir = self.repo.join(&p.meta.slug);
            // Start from an empty directory so files the new publication no
            // longer has are deleted in the commit.
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(PublishError::io(&dir))?;
            }
            for (rel, bytes) in &p.files {
                write_synced(&dir.join(rel), bytes)?;
            }
            write_synced(&dir.join("current"), &meta_bytes(&p.meta))?;
        }
        let slugs: Vec<&str> = all.iter().map(|p| p.meta.slug.as_str()).collect();
        let with = |head: &[&'static str]| -> Vec<&str> {
            head.iter()
                .copied()
                .chain(["--"])
                .chain(slugs.iter().copied())
                .collect()
        };
        self.git(&with(&["add", "-A"]), None, None)?;
        let staged = self.run(&with(&["diff", "--cached", "--quiet"]), None, None)?;
        if staged.status.success() {
            log::debug!(
                "git {}: {} unchanged, no commit",
                self.repo.display(),
                p.meta.slug
            );
            return Ok(());
        }
        self.git(
            &with(&["commit", "-q", "-F", "-"]),
            Some(p.commit_message.as_bytes()),
            Some(p.lever.as_ref().map_or(p.meta.published_at_ms, |l| l.at_ms) / 1000),
        )?;
        Ok(())
    }

    /// Commits that changed `<slug>/current`, newest first, with the meta
    /// each wrote; one per version (its newest publication).
    fn history(&self, slug: &str) -> Result<Vec<(String, PublishedMeta)>, PublishError> {
        if !self.has_head()? {
            return Ok(Vec::new());
        }
        let path = format!("{slug}/current");
        let out = self.git(&["log", "--format=%H", "--", &path], None, None)?;
        let mut seen = BTreeSet::new();
        let mut metas = Vec::new();
        for commit in String::from_utf8_lossy(&out).lines() {
            let spec = format!("{commit}:{path}");
            // A commit that deleted the file has no blob.
            if !self
                .run(&["cat-file", "-e", &spec], None, None)?
                .status
                .success()
            {
                continue;
            }
            let bytes = self.git(&["cat-file", "blob", &spec], None, None)?;
            let meta = parse_meta(&bytes, &format!("{} {spec}", self.repo.display()))?;
            if seen.insert(meta.version.clone()) {
                metas.push((commit.to_string(), meta));
            }
        }
        Ok(metas)
    }

    fn read_files(
        &self,
        slug: &str,
        meta: &PublishedMeta,
    ) -> Result<BTreeMap<String, Vec<u8>>, PublishError> {
        let commit = self
            .history(slug)?
            .into_iter()
            .find(|(_, m)| m.version == meta.version)
            .map(|(c, _)| c)
            .ok_or_else(|| PublishError::MissingFile {
                what: self.describe(),
                version: meta.version.clone(),
                file: format!("{slug}/current"),
            })?;
        let mut files = BTreeMap::new();
        for rel in &meta.files {
            let spec = format!("{commit}:{slug}/{rel}");
            let bytes = self.git(&["cat-file", "blob", &spec], None, None)?;
            files.insert(rel.clone(), bytes);
        }
        Ok(files)
    }
}

impl Target for GitTarget {
    fn describe(&self) -> String {
        format!("git:{}", self.repo.display())
    }

    async fn current(&self, slug: &str) -> Result<Option<PublishedMeta>, PublishError> {
        self.read_current(slug)
    }

    async fn versions(&self, slug: &str) -> Result<Vec<PublishedMeta>, PublishError> {
        Ok(self.history(slug)?.into_iter().map(|(_, m)| m).collect())
    }

    async fn version_files(
        &self,
        slug: &str,
        meta: &PublishedMeta,
    ) -> Result<BTreeMap<String, Vec<u8>>, PublishError> {
        self.read_files(slug, meta)
    }

    async fn publish(&self, p: &Publication) -> Result<(), PublishError> {
        self.write(p)
    }
}
