//! containerd with its CRI plugin, for real (issue 12, "podman and CRI"):
//! a host-network pod sandbox and a container made over the CRI v1 gRPC
//! API, the way the kubelet makes them, and the collector's attribution
//! of them through `[collector] cri_socket`: runtime, image, digest, pod
//! name, namespace and container name, the probe's exact calls, verified.
//!
//! The containerd is sandmine's own (scripts/start-containerd-cri.sh, run
//! by scripts/test.sh): its own root, state and socket, the CRI plugin on,
//! runc with the cgroupfs driver, a locally built pause image as
//! `sandbox_image`, and the test image in its `k8s.io` namespace. This
//! test fails when it is not answering.

mod common;

use collector::cri::{self, api};
use common::*;
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// scripts/start-containerd-cri.sh's socket.
const SOCKET: &str = "/run/sandmine-cri/containerd.sock";
/// The test image, as the script imports it (dockerd's, renamed).
const IMAGE: &str = "localhost/sandmine-test/busybox:1";
const NAMESPACE: &str = "sandmine-test";

type Client = cri::Client;

/// A pod sandbox, stopped and removed (with its containers) on drop, also
/// when the test fails.
struct Pod {
    rt: tokio::runtime::Runtime,
    client: Client,
    id: String,
}

impl Drop for Pod {
    fn drop(&mut self) {
        let (mut c, id) = (self.client.clone(), self.id.clone());
        self.rt.block_on(async move {
            let _ = c
                .stop_pod_sandbox(api::StopPodSandboxRequest {
                    pod_sandbox_id: id.clone(),
                })
                .await;
            let _ = c
                .remove_pod_sandbox(api::RemovePodSandboxRequest { pod_sandbox_id: id })
                .await;
        });
    }
}

/// A pod uid as the kubelet's (a v4 UUID's shape), unique per run.
fn pod_uid() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        std::process::id(),
        (nanos >> 48) as u16,
        (nanos >> 36) as u16 & 0xfff,
        (nanos >> 24) as u16 & 0xfff,
        nanos as u64 & 0xffff_ffff_ffff
    )
}

/// The kubelet's labels on a pod's container.
fn kubelet_labels(pod: &str, uid: &str, container: &str) -> HashMap<String, String> {
    [
        (cri::LABEL_POD_NAME, pod),
        (cri::LABEL_POD_NAMESPACE, NAMESPACE),
        (cri::LABEL_POD_UID, uid),
        (cri::LABEL_CONTAINER_NAME, container),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Host network, own pid namespace per container: what a
/// `hostNetwork: true` pod gets.
fn host_network() -> Option<api::NamespaceOption> {
    Some(api::NamespaceOption {
        network: api::NamespaceMode::Node as i32,
        pid: api::NamespaceMode::Container as i32,
        ipc: api::NamespaceMode::Pod as i32,
        ..Default::default()
    })
}

static ONE_POD: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// What [`run_pod`] makes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum How {
    /// The kubelet's way.
    Plain,
    /// The container's `io.kubernetes.pod.uid` label names another pod
    /// than the one whose cgroup it runs in.
    ForeignUid,
    /// The container is removed (the runtime forgets it) before the
    /// collector's first tick: only its CRI poll knew it.
    RemovedBeforeTheTick,
}

/// What one pod run left: the store, the ids and names, the collector's log.
struct Run {
    f: Fixture,
    db: String,
    sandbox_id: String,
    container_id: String,
    pod_name: String,
    digest: String,
    log: String,
}

/// The collector (`standalone`, its `cri_socket` set to `cri_socket`),
/// then a host-network pod whose container runs the probe, made over the
/// CRI API of sandmine's containerd; the collector stopped cleanly after
/// the probe exits; the pod removed (also when this panics).
fn run_pod(name: &str, cri_socket: &str, how: How) -> Run {
    let foreign_uid = how == How::ForeignUid;
    let removed = how == How::RemovedBeforeTheTick;
    // One pod at a time: each test's collector attributes every pod
    // container on the host, the other test's too.
    let _one = ONE_POD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let f = Fixture::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let mut client = rt
        .block_on(cri::connect(std::path::Path::new(SOCKET)))
        .unwrap_or_else(|e| {
            panic!("containerd's CRI must be running (scripts/start-containerd-cri.sh): {e}")
        });
    let v = rt.block_on(cri::version(&mut client)).expect("CRI Version");
    assert_eq!(
        (v.runtime_name.as_str(), v.runtime_api_version.as_str()),
        ("containerd", "v1"),
        "{v:?}"
    );

    // The collector first: the kernel counts from its start on.
    let probe = f.probe_static("getppid_loop", GETPPID_LOOP);
    let db = f.arg("standalone.db");
    let tag = format!("{name}-{}", std::process::id());
    let pins = format!("/sys/fs/bpf/sandmine-test-{tag}");
    let mut cmd = f.command(&["standalone", "--store", &db]);
    cmd.args([
        "--set",
        &format!("collector.state_dir=\"{}\"", f.arg("state")),
    ])
    .args(["--set", &format!("collector.pin_dir=\"{pins}\"")])
    .args(["--set", "collector.host_id=\"hC\""])
    .args([
        "--set",
        if removed {
            // No tick before the stop's.
            "collector.interval=\"1h\""
        } else {
            "collector.interval=\"1s\""
        },
    ])
    .env("SANDMINE_LOG", "debug")
    .args(["--set", &format!("collector.cri_socket=\"{cri_socket}\"")]);
    let r = f.spawn(cmd);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&r.stderr)
        .unwrap_or_default()
        .contains("collecting as host")
    {
        assert!(Instant::now() < deadline, "the collector did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    // The pod: a host-network sandbox under the cgroupfs parent the
    // kubelet gives a BestEffort pod.
    let uid = pod_uid();
    let label_uid = if foreign_uid {
        let other = format!("ffffffff{}", &uid[8..]);
        assert_ne!(other, uid);
        other
    } else {
        uid.clone()
    };
    let pod_name = format!("sm-{tag}");
    let sandbox_config = api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: pod_name.clone(),
            uid: uid.clone(),
            namespace: NAMESPACE.into(),
            attempt: 0,
        }),
        // No hostname: a host-network pod shares the node's UTS namespace.
        log_directory: f.arg("pod-logs"),
        labels: kubelet_labels(&pod_name, &uid, ""),
        linux: Some(api::LinuxPodSandboxConfig {
            cgroup_parent: format!("/kubepods/besteffort/pod{uid}"),
            security_context: Some(api::LinuxSandboxSecurityContext {
                namespace_options: host_network(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let sandbox_id = rt
        .block_on(client.run_pod_sandbox(api::RunPodSandboxRequest {
            config: Some(sandbox_config.clone()),
            runtime_handler: String::new(),
        }))
        .expect("RunPodSandbox")
        .into_inner()
        .pod_sandbox_id;
    let pod = Pod {
        rt,
        client: client.clone(),
        id: sandbox_id.clone(),
    };
    let rt = &pod.rt;

    // The container: the probe makes getpgrp (111) exactly 4321 times.
    let container_config = api::ContainerConfig {
        metadata: Some(api::ContainerMetadata {
            name: "probe".into(),
            attempt: 0,
        }),
        image: Some(api::ImageSpec {
            image: IMAGE.into(),
            ..Default::default()
        }),
        command: vec!["/probe".into()],
        args: vec!["4321".into(), "111".into()],
        labels: kubelet_labels(&pod_name, &label_uid, "probe"),
        mounts: vec![api::Mount {
            container_path: "/probe".into(),
            host_path: probe.display().to_string(),
            readonly: true,
            ..Default::default()
        }],
        log_path: "probe.log".into(),
        linux: Some(api::LinuxContainerConfig {
            security_context: Some(api::LinuxContainerSecurityContext {
                namespace_options: host_network(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let container_id = rt
        .block_on(client.create_container(api::CreateContainerRequest {
            pod_sandbox_id: sandbox_id.clone(),
            config: Some(container_config),
            sandbox_config: Some(sandbox_config),
        }))
        .expect("CreateContainer")
        .into_inner()
        .container_id;
    rt.block_on(client.start_container(api::StartContainerRequest {
        container_id: container_id.clone(),
    }))
    .expect("StartContainer");
    // Until the runtime says it exited.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let s = rt
            .block_on(client.container_status(api::ContainerStatusRequest {
                container_id: container_id.clone(),
                verbose: false,
            }))
            .expect("ContainerStatus")
            .into_inner()
            .status
            .expect("status");
        if s.state() == api::ContainerState::ContainerExited {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the probe did not exit in 60 s: {s:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.exit_code, 0, "{status:?}");
    let digest = cri::digest_of_ref(&status.image_ref);
    assert!(digest.starts_with("sha256:"), "{status:?}");

    if removed {
        // Once the collector's poll has cached it, the kubelet's removal
        // (the runtime forgets it) before any tick.
        let cached = format!("CRI runtime containerd: cached container {container_id}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !std::fs::read_to_string(&r.stderr)
            .unwrap_or_default()
            .contains(&cached)
        {
            assert!(
                Instant::now() < deadline,
                "the collector's CRI poll did not cache the container in 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        rt.block_on(client.remove_container(api::RemoveContainerRequest {
            container_id: container_id.clone(),
        }))
        .expect("RemoveContainer");
        let gone = rt
            .block_on(client.container_status(api::ContainerStatusRequest {
                container_id: container_id.clone(),
                verbose: false,
            }))
            .expect_err("the removed container's status");
        assert_eq!(gone.code(), cri::Code::NotFound, "{gone:?}");
    }

    // A clean stop: the last delta is stored on SIGTERM.
    let o = r.terminate(Duration::from_secs(30));
    let _ = std::fs::remove_dir_all(&pins);
    assert_eq!(o.code(), Some(0), "{}", o.describe());

    drop(pod);
    Run {
        f,
        db,
        sandbox_id,
        container_id,
        pod_name,
        digest,
        log: o.stderr,
    }
}

/// The stored rows of a container: runtime, image, digest, pod namespace,
/// pod name, pod container, seccomp filter.
fn stored(db: &str, id: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).expect("store");
    conn.query_row(
        "SELECT runtime, image, image_digest, pod_namespace, pod_name, pod_container, seccomp \
         FROM containers WHERE container_id = ?1",
        [id],
        |r| {
            (0..7)
                .map(|i| r.get::<_, String>(i))
                .collect::<Result<Vec<_>, _>>()
        },
    )
    .unwrap_or_else(|e| panic!("container {id} in the store: {e}"))
}

#[test]
fn the_collector_attributes_a_cri_pod_container_exactly() {
    let run = run_pod("cri", SOCKET, How::Plain);
    assert!(
        run.log.contains(&format!(
            "pods' containers are resolved through the CRI runtime containerd at {SOCKET}"
        )),
        "{}",
        run.log
    );
    let (f, db) = (&run.f, &run.db);
    // The store's containers: the probe's and the sandbox's (its pause
    // process), exactly as the runtime and the kubelet's labels say.
    assert_eq!(
        stored(db, &run.container_id),
        [
            "containerd",
            IMAGE,
            &run.digest,
            NAMESPACE,
            &run.pod_name,
            "probe",
            // No seccomp in the CRI config: containerd 1.6 runs it
            // unconfined (the kubelet's default without SeccompDefault).
            "unconfined",
        ]
    );
    assert_eq!(
        stored(db, &run.sandbox_id),
        [
            "containerd",
            "",
            "",
            NAMESPACE,
            &run.pod_name,
            "",
            "unknown"
        ]
    );

    // The probe's calls, under its image, verified.
    let q = f.sandmine(&[
        "query",
        "--set",
        &format!("store.embedded.path=\"{db}\""),
        "image",
        IMAGE,
    ]);
    assert_eq!(q.code(), Some(0), "{}", q.describe());
    let v: Value = serde_json::from_str(&q.stdout).expect("json");
    assert_eq!(
        (v["hosts"].as_u64(), v["containers"].as_u64()),
        (Some(1), Some(1)),
        "{v}"
    );
    let getpgrp = v["syscalls"]
        .as_array()
        .expect("syscalls")
        .iter()
        .find(|s| s["nr"] == 111 && s["abi"] == "x86_64")
        .and_then(|s| s["calls"].as_u64());
    assert_eq!(getpgrp, Some(4321), "{v}");
    // Verified: containerd knows the container, in this pod, under the
    // recorded parent cgroup.
    assert_eq!(v["incidence"][0]["unverified"], Value::Null, "{v}");
    assert_eq!(v["incidence"][0]["incomplete"], Value::Null, "{v}");
}

/// A `cri_socket` nobody serves: one warning at start, and the pod's
/// containers by their cgroup only (as without the setting), their calls
/// still counted.
#[test]
fn without_an_answering_cri_socket_pod_containers_are_attributed_by_cgroup_only() {
    let missing = "/run/sandmine-cri/nobody.sock";
    let run = run_pod("nocri", missing, How::Plain);
    let warning = format!("CRI runtime at {missing} unreachable");
    assert_eq!(run.log.matches(&warning).count(), 1, "{}", run.log);
    assert!(
        run.log
            .contains("pods' containers are attributed by cgroup name only"),
        "{}",
        run.log
    );
    for id in [&run.container_id, &run.sandbox_id] {
        assert_eq!(
            stored(&run.db, id),
            ["unknown", "", "", "", "", "", "unknown"],
            "{id}"
        );
    }
}

/// A container the runtime labels as another pod's than the one whose
/// cgroup it runs in: attributed as the runtime says, but unverified
/// (its calls never count toward the image's thresholds); its sandbox,
/// whose pod and cgroup agree, is verified.
#[test]
fn a_container_the_runtime_puts_in_another_pod_is_unverified() {
    let run = run_pod("foreign", SOCKET, How::ForeignUid);
    assert_eq!(stored(&run.db, &run.container_id)[4], run.pod_name);
    let q = run.f.sandmine(&[
        "query",
        "--set",
        &format!("store.embedded.path=\"{}\"", run.db),
        "image",
        IMAGE,
    ]);
    assert_eq!(q.code(), Some(0), "{}", q.describe());
    let v: Value = serde_json::from_str(&q.stdout).expect("json");
    assert_eq!(
        v["incidence"][0]["container_id"],
        run.container_id.as_str(),
        "{v}"
    );
    assert_eq!(v["incidence"][0]["unverified"], true, "{v}");
    let why = format!("containerd says container {} is pod", run.container_id);
    assert!(run.log.contains(&why), "{}", run.log);
}

/// A container the runtime no longer knows at the tick (created, run,
/// exited and removed in between): attributed and verified from what the
/// collector's CRI poll cached while it was listed.
#[test]
fn a_container_removed_before_the_tick_is_attributed_from_the_poll() {
    let run = run_pod("removed", SOCKET, How::RemovedBeforeTheTick);
    assert_eq!(
        stored(&run.db, &run.container_id),
        [
            "containerd",
            IMAGE,
            &run.digest,
            NAMESPACE,
            &run.pod_name,
            "probe",
            "unconfined",
        ]
    );
    let q = run.f.sandmine(&[
        "query",
        "--set",
        &format!("store.embedded.path=\"{}\"", run.db),
        "image",
        IMAGE,
    ]);
    assert_eq!(q.code(), Some(0), "{}", q.describe());
    let v: Value = serde_json::from_str(&q.stdout).expect("json");
    assert_eq!(
        v["incidence"][0]["container_id"],
        run.container_id.as_str(),
        "{v}"
    );
    assert_eq!(v["incidence"][0]["unverified"], Value::Null, "{v}");
}
