//! Container ids from cgroup names, under the parents the runtimes own.
//!
//! Every runtime names a container's cgroup after the container id, and the
//! kernel program records that name, its parent's and its depth (`level`,
//! the root's children being level 1) when it starts tracking a workload,
//! so a container is attributable by id even if it was gone before
//! userspace looked.
//!
//! A 64-hex name alone proves nothing: anyone with a delegated cgroup
//! (systemd's `Delegate=`, a rootless engine, a user namespace) can create
//! `.../docker/<id of a real container>`. So only the parents each runtime
//! owns are accepted, *from the hierarchy's root*: the recorded parent name
//! and depth pin the parent's whole path (a name at level 1 exists once),
//! and [`super::verify`] then checks that the recorded parent cgroup id is
//! that directory's.
//!
//! | runtime    | systemd driver                                  | cgroupfs driver               |
//! |------------|-------------------------------------------------|-------------------------------|
//! | docker     | `/system.slice/docker-<64hex>.scope`            | `/docker/<64hex>`             |
//! | podman     | `/machine.slice/libpod-<64hex>.scope`           | `/libpod_parent/libpod-<64hex>` |
//! | containerd | `<pod slice>/cri-containerd-<64hex>.scope`      | `<pod dir>/<64hex>` (runtime "unknown") |
//! | CRI-O      | `<pod slice>/crio-<64hex>.scope`                | `<pod dir>/crio-<64hex>`      |
//! | nerdctl    | `/system.slice/nerdctl-<64hex>.scope`           | (not accepted: any parent)    |
//! | configured | `/<cgroup_parent>/<64hex>` (`[collector] cgroup_parent`, the operator's `docker run --cgroup-parent=/NAME`) | |
//!
//! Pod slices (systemd): `/kubepods.slice/kubepods-pod<uid>.slice`
//! (guaranteed QoS) and
//! `/kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid>.slice`
//! (`burstable`, `besteffort`), the uid's dashes written as underscores.
//! Pod directories (cgroupfs): `/kubepods/pod<uid>` and
//! `/kubepods/<qos>/pod<uid>`. Anything else (a 64-hex leaf under any
//! other parent or at any other depth, a rootless engine's containers
//! under `user.slice`, runtime monitors such as `libpod-conmon-*`) is not
//! a container: its calls are not published.

/// What a cgroup's place says about the container in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupContainer {
    /// "docker", "podman", "containerd", "cri-o", or "unknown" (a bare id
    /// whose runtime the path does not say: resolved through the engines).
    pub runtime: String,
    /// The container id, as the runtime names it.
    pub id: String,
    /// The Kubernetes pod's uid, when the cgroup is a pod's.
    pub pod_uid: Option<String>,
    /// The runtime's parent cgroup, from the hierarchy's root
    /// (`/docker`): one path, or, for the cgroupfs pod layout whose QoS
    /// directory the recorded names do not say, each candidate.
    pub parent_paths: Vec<String>,
    /// The container's cgroup name (the leaf).
    pub leaf: String,
}

impl CgroupContainer {
    /// The parent is a Kubernetes pod's (answered for by the CRI runtime,
    /// `[collector] cri_socket`, not by the Docker or podman API).
    pub fn in_pod(&self) -> bool {
        self.pod_uid.is_some()
    }
}

fn is_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Parse a full cgroup path, as in `/proc/PID/cgroup`
/// (`/kubepods.slice/.../cri-containerd-<id>.scope`). `None` when it is
/// not a container's under a parent its runtime owns. `cgroup_parent` is
/// the configured extra parent (`[collector] cgroup_parent`).
pub fn parse(path: &str, cgroup_parent: Option<&str>) -> Option<CgroupContainer> {
    let parts: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    let (leaf, above) = parts.split_last()?;
    let parent = above.last().copied().unwrap_or("");
    let c = parse_recorded(parent, leaf, parts.len() as u32, cgroup_parent)?;
    let parent_path = format!("/{}", above.join("/"));
    c.parent_paths.contains(&parent_path).then_some(c)
}

/// Parse a cgroup as the kernel program records it: the parent's and the
/// leaf's names and the leaf's depth below the root. `None` when it is not
/// a container's under a parent its runtime owns (module documentation).
pub fn parse_recorded(
    parent: &str,
    leaf: &str,
    level: u32,
    cgroup_parent: Option<&str>,
) -> Option<CgroupContainer> {
    let scoped = |prefix: &str, suffix: &str| -> Option<String> {
        let id = leaf.strip_prefix(prefix)?.strip_suffix(suffix)?;
        is_id(id).then(|| id.to_string())
    };
    let found = |runtime: &str, id: String, parents: Vec<String>, pod_uid: Option<String>| {
        Some(CgroupContainer {
            runtime: runtime.to_string(),
            id,
            pod_uid,
            parent_paths: parents,
            leaf: leaf.to_string(),
        })
    };
    let top = || vec![format!("/{parent}")];
    if level == 2 {
        match parent {
            "system.slice" => {
                for (prefix, runtime) in [("docker-", "docker"), ("nerdctl-", "containerd")] {
                    if let Some(id) = scoped(prefix, ".scope") {
                        return found(runtime, id, top(), None);
                    }
                }
                return None;
            }
            "docker" if is_id(leaf) => return found("docker", leaf.into(), top(), None),
            "machine.slice" => {
                return found("podman", scoped("libpod-", ".scope")?, top(), None);
            }
            "libpod_parent" => return found("podman", scoped("libpod-", "")?, top(), None),
            _ => {}
        }
        if cgroup_parent.is_some_and(|p| !p.is_empty() && !p.contains('/') && p == parent) {
            if is_id(leaf) {
                return found("unknown", leaf.into(), top(), None);
            }
            if let Some(id) = scoped("docker-", ".scope") {
                return found("docker", id, top(), None);
            }
            return None;
        }
        // A level-2 leaf is never a pod's container.
        return None;
    }
    if level != 3 && level != 4 {
        return None;
    }
    let (uid, parents) = pod_parent(parent, level)?;
    if let Some(id) = scoped("cri-containerd-", ".scope") {
        return found("containerd", id, parents, Some(uid));
    }
    if let Some(id) = scoped("crio-", ".scope") {
        return found("cri-o", id, parents, Some(uid));
    }
    let systemd = parent.ends_with(".slice");
    if !systemd {
        if let Some(id) = scoped("crio-", "") {
            return found("cri-o", id, parents, Some(uid));
        }
        if is_id(leaf) {
            return found("unknown", leaf.into(), parents, Some(uid));
        }
    }
    None
}

const QOS: [&str; 2] = ["burstable", "besteffort"];

/// A pod's parent cgroup at `level - 1`, by its name: the pod's uid and
/// the parent's path(s) from the root.
fn pod_parent(parent: &str, level: u32) -> Option<(String, Vec<String>)> {
    if let Some(slice) = parent.strip_suffix(".slice") {
        let rest = slice.strip_prefix("kubepods-")?;
        let (qos, uid) = match rest.strip_prefix("pod") {
            Some(uid) => (None, uid),
            None => {
                let (qos, uid) = rest.split_once("-pod")?;
                (Some(qos), uid)
            }
        };
        let uid = pod_uid(&uid.replace('_', "-"))?;
        let path = match (qos, level) {
            (None, 3) => format!("/kubepods.slice/{parent}"),
            (Some(q), 4) if QOS.contains(&q) => {
                format!("/kubepods.slice/kubepods-{q}.slice/{parent}")
            }
            _ => return None,
        };
        return Some((uid, vec![path]));
    }
    let uid = pod_uid(parent.strip_prefix("pod")?)?;
    let paths = match level {
        3 => vec![format!("/kubepods/{parent}")],
        _ => QOS
            .iter()
            .map(|q| format!("/kubepods/{q}/{parent}"))
            .collect(),
    };
    Some((uid, paths))
}

fn pod_uid(uid: &str) -> Option<String> {
    let ok = uid.len() == 36
        && uid.bytes().enumerate().all(|(i, b)| {
            matches!(i, 8 | 13 | 18 | 23) == (b == b'-')
                && (b == b'-' || (b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
        });
    ok.then(|| uid.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "ce25e56bcc3164c3d358413dd75d1b2b6cafa7ec9ae29c1ae22a00d8633271c4";
    const UID: &str = "0f2a4d1e-7b1c-4a5e-9a7f-3c2b1d0e9f8a";

    fn c(runtime: &str, pod: bool, parent: &str, leaf: &str) -> Option<CgroupContainer> {
        Some(CgroupContainer {
            runtime: runtime.into(),
            id: ID.into(),
            pod_uid: pod.then(|| UID.to_string()),
            parent_paths: vec![parent.to_string()],
            leaf: leaf.to_string(),
        })
    }

    /// `parse` of the full path, and `parse_recorded` of what the kernel
    /// records of it (parent name, leaf name, depth), agree.
    fn both(path: &str) -> Option<CgroupContainer> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let leaf = parts[parts.len() - 1];
        let parent = if parts.len() > 1 {
            parts[parts.len() - 2]
        } else {
            ""
        };
        let full = parse(path, Some("sm-parent"));
        let recorded = parse_recorded(parent, leaf, parts.len() as u32, Some("sm-parent"));
        if full.is_some() {
            assert_eq!(full, recorded, "{path}");
        }
        full
    }

    #[test]
    fn docker_systemd_and_cgroupfs() {
        let scope = format!("docker-{ID}.scope");
        assert_eq!(
            both(&format!("/system.slice/{scope}")),
            c("docker", false, "/system.slice", &scope)
        );
        assert_eq!(
            both(&format!("/docker/{ID}")),
            c("docker", false, "/docker", ID)
        );
    }

    #[test]
    fn the_configured_parent_is_a_runtime_parent() {
        assert_eq!(
            both(&format!("/sm-parent/{ID}")),
            c("unknown", false, "/sm-parent", ID)
        );
        assert_eq!(parse(&format!("/sm-parent/{ID}"), None), None);
        // A parent name is one component: a configured path never matches.
        assert_eq!(parse_recorded("b", ID, 2, Some("a/b")), None);
    }

    #[test]
    fn podman() {
        let scope = format!("libpod-{ID}.scope");
        assert_eq!(
            both(&format!("/machine.slice/{scope}")),
            c("podman", false, "/machine.slice", &scope)
        );
        let leaf = format!("libpod-{ID}");
        assert_eq!(
            both(&format!("/libpod_parent/{leaf}")),
            c("podman", false, "/libpod_parent", &leaf)
        );
        // conmon, podman's monitor, is not the container.
        assert_eq!(
            both(&format!("/machine.slice/libpod-conmon-{ID}.scope")),
            None
        );
        // Rootless: the user's own slice, which the user controls.
        assert_eq!(
            both(&format!(
                "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"
            )),
            None
        );
    }

    #[test]
    fn kubernetes_containerd_crio_systemd() {
        let uid_ = UID.replace('-', "_");
        let pod =
            format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice");
        let leaf = format!("cri-containerd-{ID}.scope");
        assert_eq!(
            both(&format!("{pod}/{leaf}")),
            c("containerd", true, &pod, &leaf)
        );
        let pod = format!(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid_}.slice"
        );
        let leaf = format!("crio-{ID}.scope");
        assert_eq!(
            both(&format!("{pod}/{leaf}")),
            c("cri-o", true, &pod, &leaf)
        );
        // Guaranteed QoS pods sit right under kubepods.slice.
        let pod = format!("/kubepods.slice/kubepods-pod{uid_}.slice");
        let leaf = format!("cri-containerd-{ID}.scope");
        assert_eq!(
            both(&format!("{pod}/{leaf}")),
            c("containerd", true, &pod, &leaf)
        );
        assert_eq!(both(&format!("{pod}/crio-conmon-{ID}.scope")), None);
    }

    #[test]
    fn kubernetes_cgroupfs() {
        let leaf = format!("crio-{ID}");
        assert_eq!(
            both(&format!("/kubepods/pod{UID}/{leaf}")),
            c("cri-o", true, &format!("/kubepods/pod{UID}"), &leaf)
        );
        // The QoS directory is not recorded: both candidates.
        let got = parse_recorded(&format!("pod{UID}"), ID, 4, None).unwrap();
        assert_eq!(
            got.parent_paths,
            [
                format!("/kubepods/burstable/pod{UID}"),
                format!("/kubepods/besteffort/pod{UID}")
            ]
        );
        assert_eq!(
            parse(&format!("/kubepods/burstable/pod{UID}/{ID}"), None),
            Some(got)
        );
    }

    /// The attack of issue 9 item 3: a real container's id under a parent
    /// that is not its runtime's, at any depth, is no container.
    #[test]
    fn a_real_id_under_a_foreign_parent_is_not_a_container() {
        let uid_ = UID.replace('-', "_");
        for p in [
            // A delegated subtree (systemd's Delegate=, a user's manager).
            format!("/user.slice/user-1000.slice/user@1000.service/docker/{ID}"),
            format!("/user.slice/user-1000.slice/user@1000.service/system.slice/docker-{ID}.scope"),
            format!("/system.slice/foo.service/docker/{ID}"),
            format!("/system.slice/foo.service/kubepods-burstable-pod{uid_}.slice/cri-containerd-{ID}.scope"),
            format!("/sm-foreign/sm-parent/{ID}"),
            // Right name, wrong depth.
            format!("/a/kubepods.slice/kubepods-pod{uid_}.slice/cri-containerd-{ID}.scope"),
            format!("/kubepods/x/y/pod{UID}/{ID}"),
            // Any other level-1 parent (nerdctl's namespaces included).
            format!("/default/{ID}"),
            format!("/{ID}"),
            // Right parent, wrong leaf.
            format!("/system.slice/{ID}"),
            format!("/docker/docker-{ID}.scope"),
            format!("/machine.slice/{ID}"),
            format!("/kubepods.slice/kubepods-pod{uid_}.slice/{ID}"),
            // A QoS that kubelet does not make.
            format!("/kubepods.slice/kubepods-gold.slice/kubepods-gold-pod{uid_}.slice/cri-containerd-{ID}.scope"),
        ] {
            assert_eq!(parse(&p, Some("sm-parent")), None, "{p}");
        }
        // What the kernel records of the delegated ones: the depth gives
        // them away.
        assert_eq!(parse_recorded("docker", ID, 4, None), None);
        assert_eq!(
            parse_recorded("system.slice", &format!("docker-{ID}.scope"), 5, None),
            None
        );
        assert_eq!(parse_recorded("sm-parent", ID, 3, Some("sm-parent")), None);
        assert_eq!(
            parse_recorded(
                &format!("kubepods-burstable-pod{uid_}.slice"),
                &format!("cri-containerd-{ID}.scope"),
                3,
                None
            ),
            None
        );
    }

    #[test]
    fn not_containers() {
        for p in [
            "/",
            "",
            "/user.slice/user-0.slice/session-3.scope",
            "/system.slice/docker.service",
            "/sandmine/image-123-0",
            "/docker/notanid",
            // Upper-case hex is not an id any runtime writes.
            &format!("/docker/{}", ID.to_uppercase()),
            // One character short.
            &format!("/docker/{}", &ID[1..]),
            "/kubepods.slice/kubepods-burstable.slice",
        ] {
            assert_eq!(parse(p, None), None, "{p}");
        }
    }

    #[test]
    fn pod_uids() {
        assert_eq!(
            pod_parent(&format!("pod{UID}"), 3),
            Some((UID.to_string(), vec![format!("/kubepods/pod{UID}")]))
        );
        assert_eq!(pod_parent("kubepods-burstable.slice", 3), None);
        assert_eq!(pod_parent(&format!("ipod{UID}"), 3), None);
        assert_eq!(pod_uid(&UID.to_uppercase()), None);
    }
}
