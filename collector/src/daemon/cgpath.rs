//! Container ids from cgroup names.
//!
//! Every runtime names a container's cgroup after the container id, and the
//! kernel program records that name (and its parent's) when it starts
//! tracking a workload, so a container is attributable by id even if it
//! was gone before userspace looked. Layouts recognised (systemd driver,
//! then cgroupfs driver):
//!
//! | runtime    | systemd leaf                   | cgroupfs path                 |
//! |------------|--------------------------------|-------------------------------|
//! | docker     | `docker-<64hex>.scope`         | `/docker/<64hex>`             |
//! | podman     | `libpod-<64hex>.scope`         | `/libpod_parent/libpod-<64hex>` |
//! | containerd | `cri-containerd-<64hex>.scope` | `/kubepods/.../<64hex>`       |
//! | CRI-O      | `crio-<64hex>.scope`           | `/kubepods/.../crio-<64hex>`  |
//! | nerdctl    | `nerdctl-<64hex>.scope`        | `/<namespace>/<64hex>`        |
//!
//! Kubernetes pods add a parent `kubepods-<qos>-pod<uid>.slice` (systemd,
//! the uid's dashes written as underscores) or `pod<uid>` (cgroupfs).
//! Runtime monitors (`libpod-conmon-*`, `crio-conmon-*`) are not
//! containers.

/// What a cgroup's name says about the container in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupContainer {
    /// "docker", "podman", "containerd", "cri-o", or "unknown" (a bare id
    /// whose runtime the path does not say: resolved through the engines).
    pub runtime: String,
    /// The container id, as the runtime names it.
    pub id: String,
    /// The Kubernetes pod's uid, when the cgroup is a pod's.
    pub pod_uid: Option<String>,
}

fn is_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Parse a cgroup path (`/kubepods.slice/.../cri-containerd-<id>.scope`,
/// as in `/proc/PID/cgroup`), or just `parent/leaf` as the kernel program
/// records it. `None` when the cgroup is not a container's.
pub fn parse(path: &str) -> Option<CgroupContainer> {
    let mut parts = path.trim_end_matches('/').rsplit('/');
    let leaf = parts.next()?;
    let parent = parts.next().unwrap_or("");
    let pod_uid = path.split('/').rev().find_map(pod_uid_of);
    let (runtime, id) = parse_leaf(leaf, parent)?;
    Some(CgroupContainer {
        runtime: runtime.to_string(),
        id: id.to_string(),
        pod_uid,
    })
}

fn parse_leaf<'a>(leaf: &'a str, parent: &str) -> Option<(&'static str, &'a str)> {
    let scoped = |prefix: &str| -> Option<&'a str> {
        let rest = leaf.strip_prefix(prefix)?;
        let id = rest.strip_suffix(".scope").unwrap_or(rest);
        is_id(id).then_some(id)
    };
    for (prefix, runtime) in [
        ("docker-", "docker"),
        ("libpod-", "podman"),
        ("cri-containerd-", "containerd"),
        ("crio-", "cri-o"),
        ("nerdctl-", "containerd"),
    ] {
        if let Some(id) = scoped(prefix) {
            return Some((runtime, id));
        }
    }
    if is_id(leaf) {
        let runtime = if parent == "docker" {
            "docker"
        } else {
            "unknown"
        };
        return Some((runtime, leaf));
    }
    None
}

/// `kubepods-burstable-pod<uid>.slice` or `pod<uid>` → the pod's uid.
fn pod_uid_of(component: &str) -> Option<String> {
    let c = component.strip_suffix(".slice").unwrap_or(component);
    let at = c.rfind("pod")?;
    // `pod` must start the component or follow a `-` (systemd's nesting).
    if at > 0 && !c[..at].ends_with('-') {
        return None;
    }
    let uid = c[at + 3..].replace('_', "-");
    let ok = uid.len() == 36
        && uid.bytes().enumerate().all(|(i, b)| {
            matches!(i, 8 | 13 | 18 | 23) == (b == b'-') && (b == b'-' || b.is_ascii_hexdigit())
        });
    ok.then_some(uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "ce25e56bcc3164c3d358413dd75d1b2b6cafa7ec9ae29c1ae22a00d8633271c4";
    const UID: &str = "0f2a4d1e-7b1c-4a5e-9a7f-3c2b1d0e9f8a";

    fn c(runtime: &str, pod: bool) -> Option<CgroupContainer> {
        Some(CgroupContainer {
            runtime: runtime.into(),
            id: ID.into(),
            pod_uid: pod.then(|| UID.to_string()),
        })
    }

    #[test]
    fn docker_systemd_and_cgroupfs() {
        assert_eq!(
            parse(&format!("/system.slice/docker-{ID}.scope")),
            c("docker", false)
        );
        assert_eq!(parse(&format!("/docker/{ID}")), c("docker", false));
        // As the kernel program records it: parent/leaf.
        assert_eq!(parse(&format!("docker/{ID}")), c("docker", false));
    }

    #[test]
    fn podman() {
        assert_eq!(
            parse(&format!("/machine.slice/libpod-{ID}.scope")),
            c("podman", false)
        );
        assert_eq!(
            parse(&format!("/libpod_parent/libpod-{ID}")),
            c("podman", false)
        );
        // conmon, podman's monitor, is not the container.
        assert_eq!(
            parse(&format!("/machine.slice/libpod-conmon-{ID}.scope")),
            None
        );
        // Rootless: the user's slice.
        assert_eq!(
            parse(&format!(
                "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container"
            )),
            None,
            "the inner `container` cgroup of a rootless podman is not named by id"
        );
    }

    #[test]
    fn kubernetes_containerd_crio_systemd() {
        let uid_ = UID.replace('-', "_");
        assert_eq!(
            parse(&format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice/cri-containerd-{ID}.scope"
            )),
            c("containerd", true)
        );
        assert_eq!(
            parse(&format!(
                "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid_}.slice/crio-{ID}.scope"
            )),
            c("cri-o", true)
        );
        assert_eq!(
            parse(&format!(
                "/kubepods.slice/kubepods-pod{uid_}.slice/crio-conmon-{ID}.scope"
            )),
            None
        );
        // Guaranteed QoS pods sit right under kubepods.slice; recorded as
        // parent/leaf only, the pod is still found.
        assert_eq!(
            parse(&format!(
                "kubepods-pod{uid_}.slice/cri-containerd-{ID}.scope"
            )),
            c("containerd", true)
        );
    }

    #[test]
    fn kubernetes_cgroupfs() {
        assert_eq!(
            parse(&format!("/kubepods/burstable/pod{UID}/{ID}")),
            c("unknown", true)
        );
        assert_eq!(
            parse(&format!("/kubepods/pod{UID}/crio-{ID}")),
            c("cri-o", true)
        );
    }

    #[test]
    fn nerdctl_and_bare_ids() {
        assert_eq!(
            parse(&format!("/system.slice/nerdctl-{ID}.scope")),
            c("containerd", false)
        );
        assert_eq!(parse(&format!("/default/{ID}")), c("unknown", false));
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
            assert_eq!(parse(p), None, "{p}");
        }
    }

    #[test]
    fn pod_uids() {
        assert_eq!(pod_uid_of(&format!("pod{UID}")), Some(UID.to_string()));
        assert_eq!(
            pod_uid_of(&format!(
                "kubepods-burstable-pod{}.slice",
                UID.replace('-', "_")
            )),
            Some(UID.to_string())
        );
        assert_eq!(pod_uid_of("kubepods-burstable.slice"), None);
        assert_eq!(pod_uid_of(&format!("ipod{UID}")), None);
    }
}
