//! Static reachability for `mine-image` and the fleet's compiler: which
//! files of the image to analyse, the analysis (the `reach` crate) inside
//! the container's or the image's exported file system, and the result as
//! the compiler's evidence ([`policy_compiler::reachable::Reachability`]).
//!
//! `mine-image` knows what its container ran. The fleet's compiler
//! (`compile`, `publish`, `explain`, `report`, `query surface` with
//! `--reach-engine`, [`FleetReach`]) reads it from the store: the files
//! the image's verified containers ran, which collectors send from wire
//! version 8.
//!
//! The files are those the container ran (each process's executable,
//! sampled while it ran, and the command the engine started) and the tools
//! the user declares (`--tool`: admin tools run with `docker exec`, which
//! mining never sees). A script is analysed through its interpreter.
//! Shared objects the processes mapped that no analysed executable loads
//! (`dlopen`ed modules) are reported as not analysed: the analysis follows
//! a module from its constructors only, not from the functions its host
//! looks up.

use anyhow::{Context, Result};
use clap::ValueEnum;
use policy_compiler::reachable::{AnalysedFile, Reachability, Tier};
use schemas::SyscallKey;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `--reachable`: the tier for reachable, never observed syscalls, or no
/// analysis at all.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReachableArg {
    Allow,
    Log,
    Deny,
    Off,
}

impl ReachableArg {
    /// The policy's tier; `None` when no analysis runs.
    pub fn tier(self) -> Option<Tier> {
        match self {
            ReachableArg::Allow => Some(Tier::Allow),
            ReachableArg::Log => Some(Tier::Log),
            ReachableArg::Deny => Some(Tier::Deny),
            ReachableArg::Off => None,
        }
    }
}

/// The directories a bare command name is looked up in (Docker's default
/// `PATH`).
const PATH_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// Reads `--tools-file`: one path per line; blank lines and `#` comments
/// are ignored.
pub fn read_tools_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the tools file {}", path.display()))?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

/// What ran in the container, as the mining session saw it.
pub struct Ran<'a> {
    pub executables: &'a BTreeSet<String>,
    pub mapped: &'a BTreeSet<String>,
    /// The command the engine started (`Path`, then `Args`).
    pub command: &'a [String],
}

/// A host path for `path` inside `root`, with symbolic links followed
/// inside the root (an absolute target is relative to the root).
fn host_path(root: &Path, path: &str) -> Option<PathBuf> {
    let mut cur = PathBuf::from("/");
    let mut parts: Vec<String> = path
        .split('/')
        .filter(|p| !p.is_empty())
        .map(String::from)
        .rev()
        .collect();
    let mut links = 0;
    while let Some(p) = parts.pop() {
        match p.as_str() {
            "." => continue,
            ".." => {
                cur.pop();
                continue;
            }
            _ => {}
        }
        let next = cur.join(&p);
        let host = root.join(next.strip_prefix("/").unwrap_or(&next));
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > 40 {
                    return None;
                }
                let target = std::fs::read_link(&host).ok()?;
                let t = target.to_string_lossy();
                if t.starts_with('/') {
                    cur = PathBuf::from("/");
                }
                parts.extend(
                    t.split('/')
                        .filter(|x| !x.is_empty())
                        .map(String::from)
                        .rev(),
                );
            }
            Ok(_) => cur = next,
            Err(_) => return None,
        }
    }
    Some(root.join(cur.strip_prefix("/").unwrap_or(&cur)))
}

/// `name` as a path inside the root: itself when it has a slash, else the
/// first `PATH` directory holding it.
fn resolve_command(root: &Path, name: &str) -> Option<String> {
    if name.contains('/') {
        return host_path(root, name).map(|_| name.to_string());
    }
    PATH_DIRS
        .iter()
        .map(|d| format!("{d}/{name}"))
        .find(|p| host_path(root, p).is_some_and(|h| h.is_file()))
}

/// The interpreter of a script (`#!/bin/sh -e`, `#!/usr/bin/env python3`),
/// as a path inside the root.
fn interpreter(root: &Path, path: &str) -> Option<String> {
    let host = host_path(root, path)?;
    let mut head = [0u8; 256];
    let n = {
        use std::io::Read;
        std::fs::File::open(host).ok()?.read(&mut head).ok()?
    };
    let head = &head[..n];
    let line = head.strip_prefix(b"#!")?;
    let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_ascii_whitespace();
    let interp = words.next()?;
    if interp.ends_with("/env") {
        let prog = words.find(|w| !w.starts_with('-'))?;
        return resolve_command(root, prog);
    }
    resolve_command(root, interp)
}

/// An image's file system, for `sandmine analyze --image`: a container is
/// created (never started), exported and removed; its tree is unpacked
/// under `dir/root`. Returns the root and the image's command (its
/// entrypoint and default arguments; empty when it has none).
pub fn image_root(
    docker: &collector::docker::DockerClient,
    image: &str,
    dir: &Path,
) -> Result<(PathBuf, Vec<String>)> {
    let info = docker.inspect_image(image)?;
    let mut spec = collector::docker::ContainerSpec::new(image);
    spec.network_mode = "none".into();
    if info.command.is_empty() {
        // The engine refuses a container with no command; this one is
        // never started.
        spec.cmd = Some(vec!["/sandmine-analyze-never-runs".to_string()]);
    }
    spec.labels
        .insert("io.sandmine.analyze".to_string(), "1".to_string());
    let id = docker
        .create(&spec)
        .with_context(|| format!("creating a container of {image} to read its files"))?;
    let tar = dir.join("fs.tar");
    let exported = (|| -> Result<Vec<String>> {
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(&tar).with_context(|| format!("creating {}", tar.display()))?,
        );
        docker.export(&id, &mut f)?;
        use std::io::Write as _;
        f.flush()
            .with_context(|| format!("writing {}", tar.display()))?;
        Ok(info.command.clone())
    })();
    let removed = docker.remove(&id);
    let command = exported?;
    removed.with_context(|| format!("removing the container {id} made to read {image}"))?;
    let root = dir.join("root");
    std::fs::create_dir(&root).with_context(|| format!("creating {}", root.display()))?;
    let file = std::fs::File::open(&tar).with_context(|| format!("opening {}", tar.display()))?;
    reach::unpack::unpack_tar(std::io::BufReader::new(file), &root)
        .with_context(|| format!("unpacking the file system of {image}"))?;
    let _ = std::fs::remove_file(&tar);
    Ok((root, command))
}

/// The files `sandmine analyze --image` analyses when none is named: the
/// image's command, or a script's interpreter.
pub fn command_files(root: &Path, command: &[String]) -> Vec<String> {
    let Some(cmd) = command.first() else {
        return Vec::new();
    };
    let Some(path) = resolve_command(root, cmd) else {
        return Vec::new();
    };
    match interpreter(root, &path) {
        Some(i) => vec![i],
        None => vec![path],
    }
}

/// The default `--reach-cache`: the host's cache of file summaries.
pub const DEFAULT_REACH_CACHE: &str = "/var/lib/sandmine/reach-cache";

/// The analyser for `root`, with the host's disk cache: `cache` names it
/// (`off`: none; a directory that cannot be used is an error), or `None`
/// takes [`DEFAULT_REACH_CACHE`], which a user who cannot create or own it
/// (analysis needs no privilege) skips with one warning. The cache's
/// entries are kept per build of this binary (its version, size, inode and
/// modification time), so an upgraded or rebuilt sandmine never reads a
/// summary an older analysis wrote.
pub fn analyzer(root: &Path, cache: Option<&Path>) -> anyhow::Result<reach::Analyzer> {
    let an = reach::Analyzer::new(root);
    let (dir, chosen) = match cache {
        Some(c) if c.as_os_str() == "off" => return Ok(an),
        Some(c) => (c, true),
        None => (Path::new(DEFAULT_REACH_CACHE), false),
    };
    let build = build_key().context("identifying this binary for the analysis cache")?;
    match reach::cache::DiskCache::open(dir, &build) {
        Ok(disk) => Ok(an.with_disk_cache(disk)),
        Err(e) if chosen => Err(anyhow::anyhow!(
            "{e} (--reach-cache off analyses without it)"
        )),
        Err(e) => {
            eprintln!(
                "sandmine: warning: {e}; analysing without it (--reach-cache DIR names another)"
            );
            Ok(an)
        }
    }
}

/// `VERSION-HASH`: this binary's version and a hash of its identity on
/// disk (size, inode, modification time).
fn build_key() -> anyhow::Result<String> {
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::MetadataExt;
    let exe = std::env::current_exe().context("locating this binary")?;
    let m = std::fs::metadata(&exe).with_context(|| format!("reading {}", exe.display()))?;
    let id = format!(
        "{} {} {} {} {}",
        m.dev(),
        m.ino(),
        m.len(),
        m.mtime(),
        m.mtime_nsec()
    );
    let h = Sha256::digest(id.as_bytes());
    let hex: String = h.iter().take(8).map(|b| format!("{b:02x}")).collect();
    Ok(format!("{}-{hex}", env!("CARGO_PKG_VERSION")))
}

/// One line on the cache's use, for a command's progress output.
pub fn cache_line(an: &reach::Analyzer) -> Option<String> {
    let c = an.disk_cache()?;
    Some(format!(
        "analysis cache {}: {} file(s) read from it, {} analysed{}",
        c.dir().display(),
        c.hits(),
        c.misses(),
        if c.corrupt() > 0 {
            format!(" ({} unreadable entries replaced)", c.corrupt())
        } else {
            String::new()
        }
    ))
}

/// Analyses the files that ran (and the declared tools) inside `root`,
/// with `analyzer` ([`analyzer`]).
pub fn analyse(
    analyzer: &mut reach::Analyzer,
    root: &Path,
    ran: &Ran,
    tools: &[String],
) -> Reachability {
    let mut gaps = Vec::new();
    // Path -> ran (true) or declared (false); a file both ran and declared
    // counts as ran.
    let mut todo: BTreeMap<String, bool> = BTreeMap::new();
    for e in ran.executables {
        todo.insert(e.clone(), true);
    }
    if let Some(cmd) = ran.command.first() {
        match resolve_command(root, cmd) {
            Some(p) => {
                todo.insert(p, true);
            }
            None => gaps.push(format!(
                "{cmd} (the container's command): not found in the image"
            )),
        }
    }
    for t in tools {
        match resolve_command(root, t) {
            Some(p) => {
                todo.entry(p).or_insert(false);
            }
            None => gaps.push(format!("{t} (declared tool): not found in the image")),
        }
    }
    let mut files = Vec::new();
    let mut syscalls: BTreeMap<SyscallKey, String> = BTreeMap::new();
    let mut arg_sites: BTreeMap<SyscallKey, BTreeSet<[Option<u32>; 3]>> = BTreeMap::new();
    let mut loaded: BTreeSet<String> = BTreeSet::new();
    let mut done: BTreeSet<String> = BTreeSet::new();
    // Files that ran first, so that a syscall's chain starts, where it
    // can, from a file that really ran.
    let mut order: Vec<(String, bool)> = todo.into_iter().collect();
    order.sort_by_key(|(p, ran)| (!*ran, p.clone()));
    let mut queue: std::collections::VecDeque<(String, bool)> = order.into();
    while let Some((path, ran_it)) = queue.pop_front() {
        if !done.insert(path.clone()) {
            continue;
        }
        match analyzer.analyse(&path) {
            Ok(a) if files.iter().any(|f: &AnalysedFile| f.path == a.file) => {
                // A link to a file already analysed (`/bin/sh` -> busybox).
                if ran_it {
                    if let Some(f) = files.iter_mut().find(|f| f.path == a.file) {
                        f.ran = true;
                    }
                }
            }
            Ok(a) => {
                for o in &a.objects {
                    loaded.insert(o.path.clone());
                }
                for ((abi, nr), r) in &a.syscalls {
                    syscalls
                        .entry(SyscallKey { abi: *abi, nr: *nr })
                        .or_insert_with(|| format!("{}: {}", a.file, r.render()));
                }
                // Every file's tuples: the union. A set over reach's cap
                // already holds `[None; 3]` (any value).
                for (&(abi, nr), t) in &a.arg_sites {
                    arg_sites
                        .entry(SyscallKey { abi, nr })
                        .or_default()
                        .extend(t.iter().copied());
                }
                files.push(AnalysedFile {
                    path: a.file.clone(),
                    ran: ran_it,
                    known: a.reach_known(),
                    nonconst_sites: a.limits.nonconst_syscall_sites,
                    syscalls: a.syscalls.len(),
                });
            }
            Err(e @ (reach::ReachError::Elf { .. } | reach::ReachError::NotX86_64 { .. })) => {
                match interpreter(root, &path) {
                    Some(i) => queue.push_back((i, ran_it)),
                    None => gaps.push(format!("{path}: {e}")),
                }
            }
            Err(e) => gaps.push(format!("{path}: {e}")),
        }
    }
    for m in ran.mapped {
        if !loaded.contains(m) && !done.contains(m) {
            gaps.push(format!(
                "{m}: mapped as code at run time but loaded by no analysed executable (dlopen); its functions are not followed"
            ));
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Reachability {
        syscalls,
        files,
        gaps,
        arg_sites,
    }
}

/// The fleet compiler's flags for static reachability.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ReachArgs {
    /// Analyse each image's binaries before compiling it: the image is read
    /// from this Docker or podman Engine API socket (a container is
    /// created, exported and removed, never started), and the files its
    /// containers ran (collectors at wire version 8), its command and the
    /// declared tools are analysed. A syscall they reach that the fleet
    /// never made gets the policy's `reachable` tier (default log). An
    /// image the engine lacks, or whose id is not a digest the fleet ran,
    /// is compiled from observations alone, with a warning. Without this
    /// flag no analysis runs.
    #[arg(long, value_name = "SOCKET")]
    pub reach_engine: Option<PathBuf>,
    /// A binary operators run in the image's containers (`docker exec`),
    /// by path in the image or by name in its PATH (repeatable; needs
    /// --reach-engine): its reachable syscalls join each image's
    /// reachable set.
    #[arg(long = "tool", value_name = "PATH", requires = "reach_engine")]
    pub tools: Vec<String>,
    /// Declared tools from a file: one path per line, `#` comments.
    #[arg(long, value_name = "FILE", requires = "reach_engine")]
    pub tools_file: Option<PathBuf>,
    /// The host's cache of analysed files (`off`: none; default
    /// /var/lib/sandmine/reach-cache).
    #[arg(long, value_name = "DIR|off", requires = "reach_engine")]
    pub reach_cache: Option<PathBuf>,
}

impl ReachArgs {
    /// `[publish]`'s `reach_engine`, `tools` and `reach_cache`: what the
    /// scheduled rounds of `aggregate` and `standalone` analyse with.
    pub fn from_config(p: &publish::PublishConfig) -> ReachArgs {
        ReachArgs {
            reach_engine: p.reach_engine.clone(),
            tools: p.tools.clone(),
            tools_file: None,
            reach_cache: p.reach_cache.clone(),
        }
    }

    /// These flags, or `[publish]`'s keys where no flag is given (`sandmine
    /// publish`): a given `--reach-engine` brings its own tools and cache.
    pub fn or_config(&self, p: &publish::PublishConfig) -> ReachArgs {
        if self.reach_engine.is_some() {
            self.clone()
        } else {
            ReachArgs::from_config(p)
        }
    }

    /// The fleet's analysis, or `None` without `--reach-engine`.
    pub fn load(&self) -> Result<Option<FleetReach>> {
        let Some(socket) = &self.reach_engine else {
            return Ok(None);
        };
        let mut tools = self.tools.clone();
        if let Some(f) = &self.tools_file {
            tools.extend(read_tools_file(f)?);
        }
        let docker = collector::docker::DockerClient::connect(Some(socket))
            .with_context(|| format!("--reach-engine {}", socket.display()))?;
        Ok(Some(FleetReach {
            docker,
            tools,
            cache: self.reach_cache.clone(),
            memo: std::sync::Mutex::new(BTreeMap::new()),
        }))
    }
}

/// Static reachability for images read from the store: each image read
/// from an engine, analysed once per (image id, files its containers ran)
/// in this process.
pub struct FleetReach {
    docker: collector::docker::DockerClient,
    tools: Vec<String>,
    cache: Option<PathBuf>,
    memo: std::sync::Mutex<BTreeMap<String, Reachability>>,
}

impl FleetReach {
    /// The reachability of `obs`'s image, or `None` (with a warning on
    /// stderr saying why) when it cannot be read: the image is compiled
    /// from its observations alone.
    pub fn of(&self, obs: &schemas::fleet::ImageObservations) -> Result<Option<Reachability>> {
        let image = &obs.image;
        let not = |why: String| {
            eprintln!(
                "sandmine: warning: {image}: not analysed ({why}); compiled from its observations alone"
            );
            Ok(None)
        };
        let info = match self.docker.inspect_image(image) {
            Ok(i) => i,
            Err(e) => return not(e.to_string()),
        };
        let digest = info.fleet_digest();
        if !obs.digests.is_empty() && !obs.digests.contains(&digest) {
            return not(format!(
                "the engine's {image} is {digest}, which no container of the fleet ran ({})",
                obs.digests.join(", ")
            ));
        }
        let key = format!(
            "{}\n{:?}\n{:?}",
            info.id, obs.executed.executables, obs.executed.mapped
        );
        if let Some(r) = self
            .memo
            .lock()
            .map_err(|_| anyhow::anyhow!("the analysis memo is poisoned"))?
            .get(&key)
        {
            return Ok(Some(r.clone()));
        }
        let t0 = std::time::Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("sandmine-reach.")
            .tempdir()
            .context("creating a scratch directory for the static analysis")?;
        let (root, command) = image_root(&self.docker, image, dir.path())?;
        let mut analyzer = analyzer(&root, self.cache.as_deref())?;
        let mut r = analyse(
            &mut analyzer,
            &root,
            &Ran {
                executables: &obs.executed.executables,
                mapped: &obs.executed.mapped,
                command: &command,
            },
            &self.tools,
        );
        if obs.executed.is_empty() {
            r.gaps.push(
                "the store holds no file that the image's containers ran (collectors below wire version 8, or none verified): only its command and the declared tools were analysed".to_string(),
            );
        }
        if obs.digests.is_empty() {
            r.gaps.push(format!(
                "the store names no digest for {image}: the engine's {digest} was analysed"
            ));
        }
        eprintln!(
            "sandmine: {image}: static analysis of {} file(s) ({} ran, {} declared), {} syscalls reachable, the set is {}; {:.1} s",
            r.files.len(),
            r.files.iter().filter(|f| f.ran).count(),
            r.files.iter().filter(|f| !f.ran).count(),
            r.syscalls.len(),
            if r.known() { "known" } else { "UNKNOWN (see the report)" },
            t0.elapsed().as_secs_f64()
        );
        self.memo
            .lock()
            .map_err(|_| anyhow::anyhow!("the analysis memo is poisoned"))?
            .insert(key, r.clone());
        Ok(Some(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_resolve_in_path_and_through_links() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = dir.path();
        std::fs::create_dir_all(r.join("usr/bin")).expect("mkdir");
        std::os::unix::fs::symlink("usr/bin", r.join("bin")).expect("link");
        std::fs::write(r.join("usr/bin/tool"), b"#!/usr/bin/env  python3 -u\n").expect("w");
        std::fs::write(r.join("usr/bin/python3"), b"\x7fELF").expect("w");
        assert_eq!(resolve_command(r, "tool").as_deref(), Some("/usr/bin/tool"));
        assert_eq!(
            resolve_command(r, "/bin/tool").as_deref(),
            Some("/bin/tool")
        );
        assert_eq!(resolve_command(r, "missing"), None);
        assert_eq!(
            interpreter(r, "/bin/tool").as_deref(),
            Some("/usr/bin/python3")
        );
        assert_eq!(interpreter(r, "/usr/bin/python3"), None);
    }

    #[test]
    fn tools_files_skip_comments_and_blank_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("tools");
        std::fs::write(&f, "# admin tools\n/bin/sh\n\n  rm  # coreutils\n").expect("w");
        assert_eq!(read_tools_file(&f).expect("read"), ["/bin/sh", "rm"]);
    }
}
