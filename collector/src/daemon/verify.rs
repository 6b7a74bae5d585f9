//! Whether a container's cgroup is really its runtime's (issue 9 item 3).
//!
//! [`super::cgpath`] accepts only the parents each runtime owns, by the
//! names and depth the kernel recorded. This module checks those against
//! the machine, once per workload key when the daemon first meets it:
//!
//! 1. **The parent is the runtime's directory.** The kernel recorded the
//!    parent cgroup's id (its inode on the v2 hierarchy) when it started
//!    tracking the workload; it must be the inode of the runtime's parent
//!    directory ([`CgroupContainer::parent_paths`]). The parent outlives
//!    its containers, so this holds for a container gone before the
//!    daemon looked. (A workload that found no slot has no recorded
//!    parent: its own cgroup must then still exist under that parent with
//!    its id.)
//! 2. **The configured source knows it.** With an engine API for the
//!    runtime (Docker's, podman's): the engine must know the container id
//!    (its inspect, or its past events for a container already removed),
//!    the recorded parent name must be the one inspect gives
//!    (`HostConfig.CgroupParent`, else the runtime's defaults), and when
//!    inspect gives a running pid, that pid's v2 cgroup id must be the
//!    workload's. A pod's container is checked the same way against the
//!    node's CRI runtime (`[collector] cri_socket`): the runtime must know
//!    the id (a container's or a pod sandbox's), the pod uid it labels it
//!    with must be the cgroup's, the parent of the OCI spec's
//!    `linux.cgroupsPath` must be the recorded parent, and its pid's
//!    cgroup the workload's. Without a CRI runtime pods' containers take
//!    rule 3.
//! 3. **Without a source** (no engine for the runtime, or it does not
//!    answer, or it only remembers the container from events): the parent
//!    directory must be owned by root and not delegated: the directory,
//!    its `cgroup.procs` and its `cgroup.subtree_control` all owned by uid
//!    0. systemd's `Delegate=` (and any manual delegation: a rootless
//!    engine, a user namespace's cgroup) is exactly a chown of those to
//!    the delegatee, who can then create children there.
//!
//! A container failing any rule is `unverified` ([`Verdict`]): it is
//! published marked so (wire v4) and never counts toward a threshold.

use super::cgpath::CgroupContainer;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What the engine API said of a container id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineCheck {
    /// No engine answers for this runtime (none configured or reachable,
    /// or a Kubernetes pod's container without a CRI runtime): rule 3.
    NoSource,
    /// The engine knows it; `None` when only its past events do (no
    /// inspect: rule 3 checks the parent then).
    Known(Option<EngineFacts>),
    /// Every engine for the runtime answered, and none knows the id.
    Unknown(String),
}

/// What an engine's inspect says of where a container runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineFacts {
    /// `HostConfig.CgroupParent` ("" for the engine's default).
    pub cgroup_parent: String,
    /// `State.Pid` (0 when not running).
    pub pid: i64,
    /// The engine's name: "docker", "podman", or the CRI runtime's
    /// ("containerd", "cri-o"; its `cgroup_parent` is never "").
    pub engine: String,
}

/// What the kernel recorded of a workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// 2: the v2 hierarchy; 1: the v1 `pids` one.
    pub hierarchy: u32,
    /// The workload key's cgroup id (v2).
    pub cgroup_id: u64,
    /// The parent's v2 cgroup id; 0 when not recorded.
    pub parent_cgroup_id: u64,
}

/// `Ok(())`: verified. `Err(why)`: unverified, and why (for the log).
pub type Verdict = Result<(), String>;

/// Where the hierarchies are mounted (`/sys/fs/cgroup[/unified]`, the v1
/// `pids` hierarchy), found once.
#[derive(Clone, Debug, Default)]
pub struct Roots {
    pub v2: Option<PathBuf>,
    pub v1: Option<PathBuf>,
}

impl Roots {
    pub fn detect() -> Roots {
        Roots {
            v2: crate::cgroup::v2_root(),
            v1: crate::cgroup::v1_root(),
        }
    }
}

/// The rules of the module documentation.
pub fn verify(roots: &Roots, c: &CgroupContainer, rec: Recorded, engine: &EngineCheck) -> Verdict {
    let root = match rec.hierarchy {
        2 => roots.v2.as_deref(),
        _ => roots.v1.as_deref(),
    }
    .ok_or_else(|| "no cgroup hierarchy is mounted to check its parent in".to_string())?;
    let parent = parent_dir(root, c, rec)?;
    match engine {
        EngineCheck::Unknown(why) => Err(why.clone()),
        EngineCheck::Known(Some(f)) => engine_agrees(roots, c, rec, f),
        EngineCheck::Known(None) | EngineCheck::NoSource => not_delegated(&parent),
    }
}

/// Rule 1: the runtime's parent directory, with the recorded id.
fn parent_dir(root: &Path, c: &CgroupContainer, rec: Recorded) -> Result<PathBuf, String> {
    let dirs = || {
        c.parent_paths
            .iter()
            .map(|p| root.join(p.trim_start_matches('/')))
    };
    let ino = |p: &Path| std::fs::metadata(p).ok().map(|m| m.ino());
    let found = if rec.hierarchy != 2 {
        // v1: no v2 ids to compare; the names and depth pin the path.
        dirs().find(|d| d.is_dir())
    } else if rec.parent_cgroup_id != 0 {
        dirs().find(|d| ino(d) == Some(rec.parent_cgroup_id))
    } else {
        dirs().find(|d| ino(&d.join(&c.leaf)) == Some(rec.cgroup_id))
    };
    found.ok_or_else(|| {
        format!(
            "its parent cgroup (id {}) is not its runtime's {}",
            rec.parent_cgroup_id,
            c.parent_paths.join(" or ")
        )
    })
}

/// Rule 2: the engine's inspect agrees with the kernel's record.
fn engine_agrees(roots: &Roots, c: &CgroupContainer, rec: Recorded, f: &EngineFacts) -> Verdict {
    let parent = c
        .parent_paths
        .first()
        .and_then(|p| p.rsplit('/').next())
        .unwrap_or("");
    let want = f.cgroup_parent.trim_end_matches('/');
    let ok = match want.rsplit('/').next().unwrap_or("") {
        "" => match f.engine.as_str() {
            "podman" => ["machine.slice", "libpod_parent"].contains(&parent),
            _ => ["docker", "system.slice"].contains(&parent),
        },
        name => name == parent,
    };
    if !ok {
        return Err(format!(
            "{} says its cgroup parent is {:?}, but its cgroup is under {parent:?}",
            f.engine, f.cgroup_parent
        ));
    }
    if f.pid > 0 && rec.hierarchy == 2 {
        if let (Some(root), Ok(pid)) = (roots.v2.as_deref(), i32::try_from(f.pid)) {
            if let Some(id) = v2_cgroup_id_of(root, pid) {
                if id != rec.cgroup_id {
                    return Err(format!(
                        "{} says its process is pid {pid}, whose cgroup (id {id}) is not this one (id {})",
                        f.engine, rec.cgroup_id
                    ));
                }
            }
        }
    }
    Ok(())
}

/// A pid's v2 cgroup id; `None` when it is gone.
fn v2_cgroup_id_of(root: &Path, pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let rel = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    std::fs::metadata(root.join(rel.trim_start_matches('/')))
        .ok()
        .map(|m| m.ino())
}

/// Rule 3: root owns the parent, and nobody was delegated it.
fn not_delegated(parent: &Path) -> Verdict {
    for p in [
        parent.to_path_buf(),
        parent.join("cgroup.procs"),
        parent.join("cgroup.subtree_control"),
    ] {
        match std::fs::metadata(&p) {
            Ok(m) if m.uid() == 0 => {}
            Ok(m) => {
                return Err(format!(
                    "its parent cgroup is delegated: {} is owned by uid {}",
                    p.display(),
                    m.uid()
                ))
            }
            // A v1 hierarchy has no cgroup.subtree_control.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && p != parent => {}
            Err(e) => return Err(format!("cannot check {}: {e}", p.display())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const ID: &str = "ce25e56bcc3164c3d358413dd75d1b2b6cafa7ec9ae29c1ae22a00d8633271c4";

    /// A directory tree shaped like a cgroup hierarchy (plain directories:
    /// the rules read inodes and owners only).
    fn tree(parent: &str) -> (tempfile::TempDir, Roots, CgroupContainer, Recorded) {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(parent);
        std::fs::create_dir_all(dir.join(ID)).unwrap();
        for f in ["cgroup.procs", "cgroup.subtree_control"] {
            std::fs::write(dir.join(f), "").unwrap();
        }
        let c = super::super::cgpath::parse(&format!("/{parent}/{ID}"), Some(parent)).unwrap();
        let rec = Recorded {
            hierarchy: 2,
            cgroup_id: std::fs::metadata(dir.join(ID)).unwrap().ino(),
            parent_cgroup_id: std::fs::metadata(&dir).unwrap().ino(),
        };
        let roots = Roots {
            v2: Some(root.path().to_path_buf()),
            v1: None,
        };
        (root, roots, c, rec)
    }

    fn chown(p: &Path, uid: u32) {
        std::os::unix::fs::chown(p, Some(uid), None).expect("chown (tests run as root)");
    }

    #[test]
    fn a_root_owned_parent_with_the_recorded_id_is_verified_without_a_source() {
        let (_t, roots, c, rec) = tree("docker");
        assert_eq!(verify(&roots, &c, rec, &EngineCheck::NoSource), Ok(()));
        // A workload without a recorded parent: its own cgroup's id.
        let no_parent = Recorded {
            parent_cgroup_id: 0,
            ..rec
        };
        assert_eq!(
            verify(&roots, &c, no_parent, &EngineCheck::NoSource),
            Ok(())
        );
    }

    #[test]
    fn another_parent_id_is_unverified() {
        let (_t, roots, c, rec) = tree("docker");
        let other = Recorded {
            parent_cgroup_id: rec.parent_cgroup_id + 1,
            ..rec
        };
        assert_eq!(
            verify(&roots, &c, other, &EngineCheck::NoSource),
            Err(format!(
                "its parent cgroup (id {}) is not its runtime's /docker",
                rec.parent_cgroup_id + 1
            ))
        );
        let gone = Recorded {
            parent_cgroup_id: 0,
            cgroup_id: rec.cgroup_id + 1,
            ..rec
        };
        assert!(verify(&roots, &c, gone, &EngineCheck::NoSource).is_err());
        assert_eq!(
            verify(&Roots::default(), &c, rec, &EngineCheck::NoSource),
            Err("no cgroup hierarchy is mounted to check its parent in".into())
        );
    }

    /// What systemd's Delegate= changes: the owner of the directory, of
    /// cgroup.procs, of cgroup.subtree_control. Each alone unverifies.
    #[test]
    fn a_delegated_parent_is_unverified_without_a_source() {
        for what in ["", "cgroup.procs", "cgroup.subtree_control"] {
            let (t, roots, c, rec) = tree("docker");
            let dir = t.path().join("docker");
            let p = if what.is_empty() { dir } else { dir.join(what) };
            chown(&p, 1000);
            assert_eq!(
                verify(&roots, &c, rec, &EngineCheck::NoSource),
                Err(format!(
                    "its parent cgroup is delegated: {} is owned by uid 1000",
                    p.display()
                )),
                "{what}"
            );
            // Known from past events only: the same rule.
            assert!(verify(&roots, &c, rec, &EngineCheck::Known(None)).is_err());
            // The mode alone is not delegation.
            let (_t2, roots2, c2, rec2) = tree("docker");
            let p2 = _t2.path().join("docker");
            std::fs::set_permissions(&p2, std::fs::Permissions::from_mode(0o700)).unwrap();
            assert_eq!(verify(&roots2, &c2, rec2, &EngineCheck::NoSource), Ok(()));
        }
    }

    #[test]
    fn the_engine_must_know_it_and_agree_on_its_parent() {
        let (t, roots, c, rec) = tree("sm-parent");
        // A delegated parent does not matter when the engine vouches.
        chown(&t.path().join("sm-parent"), 1000);
        let facts = |parent: &str| EngineFacts {
            cgroup_parent: parent.into(),
            pid: 0,
            engine: "docker".into(),
        };
        assert_eq!(
            verify(
                &roots,
                &c,
                rec,
                &EngineCheck::Known(Some(facts("/sm-parent")))
            ),
            Ok(())
        );
        assert_eq!(
            verify(&roots, &c, rec, &EngineCheck::Known(Some(facts("/other")))),
            Err("docker says its cgroup parent is \"/other\", but its cgroup is under \"sm-parent\"".into())
        );
        assert!(verify(&roots, &c, rec, &EngineCheck::Known(Some(facts("")))).is_err());
        let unknown = EngineCheck::Unknown("the docker engine does not know it".into());
        assert_eq!(
            verify(&roots, &c, rec, &unknown),
            Err("the docker engine does not know it".into())
        );
        let (_t, roots, c, rec) = tree("docker");
        assert_eq!(
            verify(&roots, &c, rec, &EngineCheck::Known(Some(facts("")))),
            Ok(())
        );
    }
}
