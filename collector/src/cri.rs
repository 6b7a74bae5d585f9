//! A client of a Kubernetes container runtime's CRI runtime service
//! (containerd's CRI plugin, CRI-O), over its unix socket: who a pod's
//! container is.
//!
//! The bindings are the `k8s-cri` crate's, generated at build time from
//! the CRI v1 `api.proto` (protoc, Debian's protobuf-compiler). The
//! daemon's use of it is in `daemon::attrib`; [`api`] is re-exported for
//! callers that drive the runtime themselves (the CRI tests create pod
//! sandboxes and containers through it).

use schemas::wire::{ContainerRef, PodRef, SeccompFilter};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

use api::runtime_service_client::RuntimeServiceClient;
/// The CRI v1 messages and the runtime service's client.
pub use k8s_cri::v1 as api;

/// The gRPC status codes of the calls' errors.
pub use tonic::Code;

/// A connected runtime service client ([`connect`]).
pub type Client = RuntimeServiceClient<Channel>;

/// The kubelet's labels on every pod container (and sandbox).
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";

/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum CriError {
    #[error("cannot connect to the CRI runtime at {}: {detail}", path.display())]
    Connect {
        path: PathBuf,
        /// The error and its causes ("transport error: ... No such file").
        detail: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("CRI {call}: {status}")]
    Call {
        call: &'static str,
        status: Box<tonic::Status>,
    },
}

impl CriError {
    fn call(call: &'static str) -> impl FnOnce(tonic::Status) -> CriError {
        move |status| CriError::Call {
            call,
            status: Box::new(status),
        }
    }

    /// The runtime answered that it does not know the id.
    pub fn is_not_found(&self) -> bool {
        matches!(self, CriError::Call { status, .. } if status.code() == tonic::Code::NotFound)
    }
}

/// Connect to the runtime service on a unix socket (in a tokio runtime).
/// The channel connects at once, so a socket nobody serves fails here.
pub async fn connect(path: &Path) -> Result<RuntimeServiceClient<Channel>, CriError> {
    let socket = path.to_path_buf();
    // The URI is a placeholder: the connector below dials the socket.
    let channel = Endpoint::from_static("http://localhost")
        .connect_timeout(CALL_TIMEOUT)
        .timeout(CALL_TIMEOUT)
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let socket = socket.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await
        .map_err(|source| CriError::Connect {
            path: path.to_path_buf(),
            detail: chain(&source),
            source,
        })?;
    Ok(RuntimeServiceClient::new(channel))
}

/// An error and its causes, joined by ": ".
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !s.ends_with(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cause = c.source();
    }
    s
}

/// The runtime's name ("containerd", "cri-o") and version, from `Version`.
pub async fn version(
    client: &mut RuntimeServiceClient<Channel>,
) -> Result<api::VersionResponse, CriError> {
    Ok(client
        .version(api::VersionRequest {
            version: "v1".into(),
        })
        .await
        .map_err(CriError::call("Version"))?
        .into_inner())
}

/// Ids of every container the runtime has (running or exited).
pub async fn container_ids(
    client: &mut RuntimeServiceClient<Channel>,
) -> Result<Vec<String>, CriError> {
    Ok(client
        .list_containers(api::ListContainersRequest { filter: None })
        .await
        .map_err(CriError::call("ListContainers"))?
        .into_inner()
        .containers
        .into_iter()
        .map(|c| c.id)
        .collect())
}

/// What the runtime says of one pod container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CriContainer {
    pub r: ContainerRef,
    /// The pod's uid (label `io.kubernetes.pod.uid`), "" when unlabelled.
    pub pod_uid: String,
    /// The parent cgroup the runtime put it in (from the OCI spec's
    /// `linux.cgroupsPath`): `/kubepods/.../pod<uid>` (cgroupfs) or the
    /// pod's slice name (systemd). "" when the runtime does not say.
    pub cgroup_parent: String,
    /// Its process, when running at the call (0 otherwise, or when not
    /// said).
    pub pid: i64,
}

/// `ContainerStatus` (verbose) → the container's identity; `Ok(None)` when
/// the runtime does not know the id (it may be a pod sandbox's:
/// [`sandbox`]). `runtime` is the runtime's name for [`ContainerRef`].
pub async fn container(
    client: &mut RuntimeServiceClient<Channel>,
    runtime: &str,
    id: &str,
) -> Result<Option<CriContainer>, CriError> {
    let resp = match client
        .container_status(api::ContainerStatusRequest {
            container_id: id.to_string(),
            verbose: true,
        })
        .await
        .map_err(CriError::call("ContainerStatus"))
    {
        Ok(r) => r.into_inner(),
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(status) = resp.status else {
        return Ok(None);
    };
    let info: Value = resp
        .info
        .get("info")
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    let label = |k: &str| status.labels.get(k).cloned();
    let pod = match (label(LABEL_POD_NAMESPACE), label(LABEL_POD_NAME)) {
        (Some(namespace), Some(pod)) => Some(PodRef {
            namespace,
            pod,
            container: label(LABEL_CONTAINER_NAME)
                .or_else(|| status.metadata.as_ref().map(|m| m.name.clone()))
                .unwrap_or_default(),
        }),
        _ => None,
    };
    let running = status.state() == api::ContainerState::ContainerRunning;
    let image = status
        .image
        .as_ref()
        .map(|i| i.image.clone())
        .unwrap_or_default();
    Ok(Some(CriContainer {
        r: ContainerRef {
            runtime: runtime.to_string(),
            id: status.id.clone(),
            image_digest: digest_of_ref(&status.image_ref),
            image,
            pod,
            seccomp: seccomp_of(&info),
        },
        pod_uid: label(LABEL_POD_UID).unwrap_or_default(),
        cgroup_parent: info
            .pointer("/runtimeSpec/linux/cgroupsPath")
            .and_then(Value::as_str)
            .map(parent_of_cgroups_path)
            .unwrap_or_default(),
        pid: running
            .then(|| info.get("pid").and_then(Value::as_i64))
            .flatten()
            .unwrap_or(0),
    }))
}

/// `PodSandboxStatus` (verbose) → the pod sandbox's own container (the
/// pause process), as a container of its pod with container name "" and
/// no image; `Ok(None)` when the runtime knows no such sandbox.
pub async fn sandbox(
    client: &mut RuntimeServiceClient<Channel>,
    runtime: &str,
    id: &str,
) -> Result<Option<CriContainer>, CriError> {
    let resp = match client
        .pod_sandbox_status(api::PodSandboxStatusRequest {
            pod_sandbox_id: id.to_string(),
            verbose: true,
        })
        .await
        .map_err(CriError::call("PodSandboxStatus"))
    {
        Ok(r) => r.into_inner(),
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(status) = resp.status else {
        return Ok(None);
    };
    let info: Value = resp
        .info
        .get("info")
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    let ready = status.state() == api::PodSandboxState::SandboxReady;
    let meta = status.metadata.unwrap_or_default();
    Ok(Some(CriContainer {
        r: ContainerRef {
            runtime: runtime.to_string(),
            id: status.id,
            image: String::new(),
            image_digest: String::new(),
            pod: Some(PodRef {
                namespace: meta.namespace,
                pod: meta.name,
                container: String::new(),
            }),
            seccomp: SeccompFilter::Unknown,
        },
        pod_uid: meta.uid,
        cgroup_parent: info
            .pointer("/runtimeSpec/linux/cgroupsPath")
            .and_then(Value::as_str)
            .map(parent_of_cgroups_path)
            .unwrap_or_default(),
        pid: ready
            .then(|| info.get("pid").and_then(Value::as_i64))
            .flatten()
            .unwrap_or(0),
    }))
}

/// The image digest in a CRI `image_ref`: the registry digest of
/// `name@sha256:...` when the image has one, else the image id
/// (`sha256:...`, its config digest), as for Docker's images.
pub fn digest_of_ref(image_ref: &str) -> String {
    match image_ref.rsplit_once('@') {
        Some((_, d)) => d.to_string(),
        None => image_ref.to_string(),
    }
}

/// The parent of an OCI `linux.cgroupsPath`: cgroupfs
/// `/kubepods/besteffort/pod<uid>/<id>` → `/kubepods/besteffort/pod<uid>`;
/// systemd `kubepods-...-pod<uid>.slice:cri-containerd:<id>` → the slice.
pub fn parent_of_cgroups_path(path: &str) -> String {
    let mut parts = path.split(':');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(slice), Some(_), Some(_), None) if !path.starts_with('/') => slice.to_string(),
        _ => path
            .rsplit_once('/')
            .map(|(parent, _)| parent.to_string())
            .unwrap_or_default(),
    }
}

/// The seccomp filter of a container, from containerd's verbose info: the
/// CRI config's `security_context` (privileged, `seccomp.profile_type`,
/// else the deprecated `seccomp_profile_path`, whose "" means
/// unconfined), checked against the OCI spec (no `linux.seccomp` there
/// means no filter). Unknown when the runtime does not say.
pub fn seccomp_of(info: &Value) -> SeccompFilter {
    let Some(sc) = info.pointer("/config/linux/security_context") else {
        return match info.pointer("/runtimeSpec/linux") {
            Some(linux) if linux.get("seccomp").is_none() => SeccompFilter::Unconfined,
            _ => SeccompFilter::Unknown,
        };
    };
    if info.pointer("/runtimeSpec/linux").is_some()
        && info.pointer("/runtimeSpec/linux/seccomp").is_none()
    {
        return SeccompFilter::Unconfined;
    }
    if sc.get("privileged").and_then(Value::as_bool) == Some(true) {
        return SeccompFilter::Unconfined;
    }
    // A node's profile file, by the sha256 of its JSON as for Docker's
    // `seccomp=FILE`; unknown when this process cannot read it.
    let localhost = |path: &str| match std::fs::read(path) {
        Ok(json) => {
            let h = Sha256::digest(json);
            let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
            SeccompFilter::Profile(format!("sha256:{hex}"))
        }
        Err(_) => SeccompFilter::Unknown,
    };
    if let Some(s) = sc.get("seccomp") {
        // ProfileType: RuntimeDefault = 0 (left out of the JSON),
        // Unconfined = 1, Localhost = 2.
        return match s.get("profile_type").and_then(Value::as_i64).unwrap_or(0) {
            0 => SeccompFilter::RuntimeDefault,
            1 => SeccompFilter::Unconfined,
            _ => match s.get("localhost_ref").and_then(Value::as_str) {
                Some(p) => localhost(p),
                None => SeccompFilter::Unknown,
            },
        };
    }
    match sc
        .get("seccomp_profile_path")
        .and_then(Value::as_str)
        .unwrap_or("")
    {
        "" | "unconfined" => SeccompFilter::Unconfined,
        "runtime/default" | "docker/default" => SeccompFilter::RuntimeDefault,
        p => match p.strip_prefix("localhost/") {
            Some(p) => localhost(p),
            None => SeccompFilter::Unknown,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cgroups_path_parents() {
        let id = "ab".repeat(32);
        assert_eq!(
            parent_of_cgroups_path(&format!("/kubepods/besteffort/pod1234/{id}")),
            "/kubepods/besteffort/pod1234"
        );
        assert_eq!(
            parent_of_cgroups_path(&format!(
                "kubepods-besteffort-pod12_34.slice:cri-containerd:{id}"
            )),
            "kubepods-besteffort-pod12_34.slice"
        );
        assert_eq!(parent_of_cgroups_path(""), "");
    }

    #[test]
    fn image_refs() {
        assert_eq!(digest_of_ref("registry.example/x/y@sha256:ab"), "sha256:ab");
        assert_eq!(digest_of_ref("sha256:cd"), "sha256:cd");
    }

    #[test]
    fn seccomp_from_verbose_info() {
        let with = |sc: Value, spec_seccomp: bool| {
            let mut linux = json!({});
            if spec_seccomp {
                linux["seccomp"] = json!({"defaultAction": "SCMP_ACT_ERRNO"});
            }
            seccomp_of(&json!({"config": {"linux": {"security_context": sc}},
                               "runtimeSpec": {"linux": linux}}))
        };
        assert_eq!(with(json!({}), false), SeccompFilter::Unconfined);
        assert_eq!(
            with(json!({"seccomp": {}}), true),
            SeccompFilter::RuntimeDefault
        );
        assert_eq!(
            with(json!({"seccomp": {"profile_type": 1}}), false),
            SeccompFilter::Unconfined
        );
        assert_eq!(
            with(json!({"seccomp_profile_path": "runtime/default"}), true),
            SeccompFilter::RuntimeDefault
        );
        assert_eq!(
            with(json!({"privileged": true}), true),
            SeccompFilter::Unconfined
        );
        assert_eq!(seccomp_of(&Value::Null), SeccompFilter::Unknown);
    }
}
