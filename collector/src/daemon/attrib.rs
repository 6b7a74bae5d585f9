//! Who a container is: image, digest, pod and seccomp filter, from the
//! Docker Engine API (or podman's compatible one), and for a Kubernetes
//! pod's container from the node's CRI runtime (`[collector] cri_socket`).
//!
//! A container that lives milliseconds (`docker run --rm` of a program
//! that exits at once) is gone long before the next tick. So a background
//! thread follows the engine's event stream and inspects every container
//! the moment it is created (the engine's `create` event comes before the
//! container's first process runs), caching the answer by container id.
//! A tick that meets an id the cache lacks (a container older than the
//! daemon) inspects it then, and if the engine no longer knows it, reads
//! the engine's recent events for its image name.
//!
//! The CRI runtime (containerd 1.6's CRI plugin has no container event
//! stream: `GetContainerEvents` came with 1.7) is polled instead: a
//! thread of its own lists the runtime's containers every [`CRI_POLL`] and
//! caches each new one's `ContainerStatus`, and a tick that meets a pod's
//! container the cache lacks asks for it then. A pod's containers stay
//! listed after they exit until the kubelet removes them, so only a
//! container created, exited and removed within one poll and before the
//! next tick is missed: it is published by cgroup only, unverified.

use crate::cri::{self, CriContainer};
use crate::docker::{DockerClient, Event};
use schemas::wire::{ContainerRef, PodRef, SeccompFilter};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use super::cgpath::CgroupContainer;
use super::verify::{EngineCheck, EngineFacts};

/// One engine: its client, and the runtime name its containers get.
#[derive(Clone)]
struct Engine {
    client: DockerClient,
    runtime: &'static str,
}

/// A container the engine knew: what it said, and where it said the
/// container runs (`None` when only its past events named it).
#[derive(Clone, Debug)]
struct Entry {
    r: ContainerRef,
    facts: Option<EngineFacts>,
    /// The pod uid the CRI runtime gives it (CRI entries only).
    pod_uid: Option<String>,
}

/// How often the CRI runtime's containers are listed.
pub const CRI_POLL: Duration = Duration::from_millis(500);

/// How long a tick waits for the CRI thread's answer.
const CRI_ANSWER: Duration = Duration::from_secs(12);

/// A lookup for the CRI thread: the id, and where to answer.
type CriRequest = (String, mpsc::Sender<Option<Entry>>);

/// The CRI runtime: its name ("containerd", "cri-o") and the thread that
/// talks to it (its tokio runtime lives and dies in that thread, never in
/// the daemon's async context).
struct Cri {
    runtime: String,
    requests: mpsc::Sender<CriRequest>,
}

type Cache = Arc<Mutex<HashMap<String, Entry>>>;

/// Resolves container ids to [`ContainerRef`]s.
pub struct Resolver {
    engines: Vec<Engine>,
    cri: Option<Cri>,
    cache: Cache,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Resolver {
    /// Connect to the engines that answer. An engine that does not answer
    /// is logged and skipped: its containers are still published, by the
    /// id and runtime their cgroup names give, without image.
    /// Pods' containers are asked of the CRI runtime at `cri` when set: one
    /// that does not answer at start is logged once, and pods' containers
    /// are then attributed by cgroup name only (as without `cri`).
    pub fn new(docker: Option<&Path>, podman: Option<&Path>, cri: Option<&Path>) -> Resolver {
        let mut engines = Vec::new();
        let docker_path = docker
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(crate::docker::DEFAULT_SOCKET));
        for (path, runtime) in [
            (Some(docker_path), "docker"),
            (podman.map(Path::to_path_buf), "podman"),
        ] {
            let Some(path) = path else { continue };
            match DockerClient::connect(Some(&path)) {
                Ok(client) => engines.push(Engine { client, runtime }),
                Err(err) => log::warn!(
                    "{runtime} engine at {} unreachable ({err}): its containers are attributed by cgroup name only",
                    path.display()
                ),
            }
        }
        let cache: Cache = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads: Vec<_> = engines
            .iter()
            .map(|engine| {
                let (engine, cache, stop) = (engine.clone(), cache.clone(), stop.clone());
                std::thread::spawn(move || follow_events(&engine, &cache, &stop))
            })
            .collect();
        let cri = cri.and_then(|path| match start_cri(path, &cache, &stop) {
            Ok((cri, thread)) => {
                log::info!(
                    "pods' containers are resolved through the CRI runtime {} at {}",
                    cri.runtime,
                    path.display()
                );
                threads.push(thread);
                Some(cri)
            }
            Err(err) => {
                log::warn!(
                    "CRI runtime at {} unreachable ({err}): pods' containers are attributed by cgroup name only",
                    path.display()
                );
                None
            }
        });
        Resolver {
            engines,
            cri,
            cache,
            stop,
            threads,
        }
    }

    /// The [`ContainerRef`] of the container a cgroup name points at.
    /// Never fails: what cannot be learnt stays empty ("" image, unknown
    /// filter).
    pub fn resolve(&self, c: &CgroupContainer) -> ContainerRef {
        match self.lookup(c) {
            Some(e) => e.r,
            None => ContainerRef {
                runtime: c.runtime.clone(),
                id: c.id.clone(),
                ..Default::default()
            },
        }
    }

    /// What the engines say of the container, for
    /// [`super::verify::verify`]: no engine for its runtime (or a pod's
    /// container without a CRI runtime for it) is
    /// [`EngineCheck::NoSource`]; engines that answer and do not know it,
    /// [`EngineCheck::Unknown`]. A pod's container with the CRI runtime:
    /// known with the parent cgroup and pid the runtime gives, or unknown
    /// when the runtime does not know it or puts it in another pod.
    pub fn check(&self, c: &CgroupContainer) -> EngineCheck {
        if c.in_pod() {
            let Some(cri) = self.cri_for(c) else {
                return EngineCheck::NoSource;
            };
            return match self.lookup(c) {
                Some(e) => match (&e.pod_uid, &c.pod_uid) {
                    (Some(said), Some(cgroup)) if said != cgroup => EngineCheck::Unknown(format!(
                        "{} says container {} is pod {said:?}'s, but its cgroup is pod {cgroup:?}'s",
                        cri.runtime, c.id
                    )),
                    _ => EngineCheck::Known(e.facts),
                },
                None => EngineCheck::Unknown(format!(
                    "the CRI runtime ({}) knows no container or pod sandbox {}",
                    cri.runtime, c.id
                )),
            };
        }
        if self.engines_for(&c.runtime).next().is_none() {
            return EngineCheck::NoSource;
        }
        match self.lookup(c) {
            Some(e) => EngineCheck::Known(e.facts),
            None => EngineCheck::Unknown(format!(
                "no container engine ({}) knows container {}",
                self.engines_for(&c.runtime)
                    .map(|e| e.runtime)
                    .collect::<Vec<_>>()
                    .join(", "),
                c.id
            )),
        }
    }

    /// The cache, else (a pod's container) the CRI runtime, else the
    /// engines' inspect, else their past events.
    fn lookup(&self, c: &CgroupContainer) -> Option<Entry> {
        if let Some(e) = self.cached(&c.id) {
            return Some(e);
        }
        if let Some(cri) = self.cri_for(c) {
            let (tx, rx) = mpsc::channel();
            if cri.requests.send((c.id.clone(), tx)).is_ok() {
                if let Ok(Some(e)) = rx.recv_timeout(CRI_ANSWER) {
                    return Some(e);
                }
            }
            // A pod's container the runtime does not know: with a CRI
            // runtime, the Docker engines are not asked (their past
            // events would name no pod container).
            return None;
        }
        for engine in self.engines_for(&c.runtime) {
            match inspect(engine, &c.id) {
                Ok(Some(e)) => {
                    self.insert(e.clone());
                    return Some(e);
                }
                Ok(None) => {
                    if let Some(image) = image_from_past_events(engine, &c.id) {
                        let e = Entry {
                            r: ContainerRef {
                                runtime: engine.runtime.to_string(),
                                id: c.id.clone(),
                                image_digest: image_digest(engine, &image, None),
                                image,
                                pod: None,
                                seccomp: SeccompFilter::Unknown,
                            },
                            facts: None,
                            pod_uid: None,
                        };
                        self.insert(e.clone());
                        return Some(e);
                    }
                }
                Err(err) => log::warn!("inspecting container {}: {err}", short(&c.id)),
            }
        }
        None
    }

    /// Drop a container from the cache (it exited and was published).
    pub fn forget(&self, id: &str) {
        if let Ok(mut m) = self.cache.lock() {
            m.remove(id);
        }
    }

    fn cached(&self, id: &str) -> Option<Entry> {
        self.cache.lock().ok()?.get(id).cloned()
    }

    fn insert(&self, e: Entry) {
        insert(&self.cache, e);
    }

    /// The CRI runtime, for a pod's container whose cgroup names it (or
    /// names no runtime).
    fn cri_for(&self, c: &CgroupContainer) -> Option<&Cri> {
        self.cri
            .as_ref()
            .filter(|cri| c.in_pod() && (c.runtime == "unknown" || c.runtime == cri.runtime))
    }

    fn engines_for<'a>(&'a self, runtime: &'a str) -> impl Iterator<Item = &'a Engine> + 'a {
        self.engines
            .iter()
            .filter(move |e| runtime == "unknown" || e.runtime == runtime)
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // The CRI thread ends when its request channel closes.
        self.cri = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn insert(cache: &Cache, e: Entry) {
    if let Ok(mut m) = cache.lock() {
        m.insert(e.r.id.clone(), e);
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// `GET /containers/{id}/json` → the container's identity; `Ok(None)`
/// when the engine does not know the id (any more).
fn inspect(engine: &Engine, id: &str) -> crate::Result<Option<Entry>> {
    Ok(engine.client.find_container(id)?.map(|v| Entry {
        r: from_inspect(engine, &v),
        facts: Some(EngineFacts {
            cgroup_parent: v
                .pointer("/HostConfig/CgroupParent")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            pid: v.pointer("/State/Pid").and_then(Value::as_i64).unwrap_or(0),
            engine: engine.runtime.to_string(),
        }),
        pod_uid: None,
    }))
}

fn from_inspect(engine: &Engine, v: &Value) -> ContainerRef {
    let s = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let image = s("/Config/Image");
    let image_id = s("/Image");
    let labels = v.pointer("/Config/Labels");
    let label = |k: &str| {
        labels
            .and_then(|l| l.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let pod = match (
        label("io.kubernetes.pod.namespace"),
        label("io.kubernetes.pod.name"),
    ) {
        (Some(namespace), Some(pod)) => Some(PodRef {
            namespace,
            pod,
            container: label("io.kubernetes.container.name").unwrap_or_default(),
        }),
        _ => None,
    };
    let privileged = v
        .pointer("/HostConfig/Privileged")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let opts: Vec<String> = v
        .pointer("/HostConfig/SecurityOpt")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    ContainerRef {
        runtime: engine.runtime.to_string(),
        id: s("/Id"),
        image_digest: image_digest(engine, &image, Some(&image_id)),
        image,
        pod,
        seccomp: seccomp_of(&opts, privileged),
    }
}

/// `HostConfig.SecurityOpt` (and `Privileged`) → the filter the container
/// runs under. No seccomp option means the engine's default profile;
/// `privileged` containers run unfiltered.
pub fn seccomp_of(opts: &[String], privileged: bool) -> SeccompFilter {
    if privileged {
        return SeccompFilter::Unconfined;
    }
    for o in opts {
        let Some(val) = o
            .strip_prefix("seccomp=")
            .or_else(|| o.strip_prefix("seccomp:"))
        else {
            continue;
        };
        return match val {
            "unconfined" => SeccompFilter::Unconfined,
            "" | "builtin" | "default" | "runtime/default" => SeccompFilter::RuntimeDefault,
            json => {
                let h = Sha256::digest(json.as_bytes());
                let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
                SeccompFilter::Profile(format!("sha256:{hex}"))
            }
        };
    }
    SeccompFilter::RuntimeDefault
}

/// The image's digest as the fleet knows it ([`crate::docker::ImageInfo::fleet_digest`]);
/// the id given when the engine no longer has the image.
fn image_digest(engine: &Engine, image: &str, image_id: Option<&str>) -> String {
    let by = image_id.filter(|s| !s.is_empty()).unwrap_or(image);
    if by.is_empty() {
        return String::new();
    }
    match engine.client.inspect_image(by) {
        Ok(info) => info.fleet_digest(),
        Err(_) => image_id.unwrap_or("").to_string(),
    }
}

fn unix_now_s() -> u64 {
    sysutil::clock::now_ms() / 1000
}

/// The image name of a container the engine no longer has, from the
/// events it still remembers (dockerd keeps its most recent events).
fn image_from_past_events(engine: &Engine, id: &str) -> Option<String> {
    let filters = json!({"type": ["container"], "container": [id]});
    let mut events = engine
        .client
        .events(
            &filters,
            Some(0),
            Some(unix_now_s() + 1),
            Duration::from_secs(5),
        )
        .ok()?;
    loop {
        match events.next_event() {
            Event::Event(v) => {
                if let Some(image) = v.pointer("/Actor/Attributes/image").and_then(Value::as_str) {
                    return Some(image.to_string());
                }
            }
            Event::Idle | Event::End => return None,
        }
    }
}

/// Follow the engine's container `create` events until `stop`, inspecting
/// each new container at once. Reconnects after errors.
fn follow_events(engine: &Engine, cache: &Cache, stop: &AtomicBool) {
    let filters = json!({"type": ["container"], "event": ["create"]});
    let mut since: Option<u64> = None;
    while !stop.load(Ordering::Relaxed) {
        // After a reconnect, replay what was missed meanwhile.
        let mut events =
            match engine
                .client
                .events(&filters, since, None, Duration::from_millis(200))
            {
                Ok(events) => events,
                Err(err) => {
                    log::debug!("{} events: {err}", engine.runtime);
                    std::thread::sleep(Duration::from_millis(500));
                    continue;
                }
            };
        since = Some(unix_now_s());
        while !stop.load(Ordering::Relaxed) {
            match events.next_event() {
                Event::Event(v) => handle_event(engine, cache, &v),
                Event::Idle => {}
                Event::End => break,
            }
        }
    }
}

fn handle_event(engine: &Engine, cache: &Cache, v: &Value) {
    let Some(id) = v
        .pointer("/Actor/ID")
        .or_else(|| v.get("id"))
        .and_then(Value::as_str)
    else {
        return;
    };
    if cache.lock().map(|m| m.contains_key(id)).unwrap_or(true) {
        return;
    }
    let e = match inspect(engine, id) {
        Ok(Some(e)) => e,
        _ => {
            let image = v
                .pointer("/Actor/Attributes/image")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            Entry {
                r: ContainerRef {
                    runtime: engine.runtime.to_string(),
                    id: id.to_string(),
                    image_digest: image_digest(engine, &image, None),
                    image,
                    pod: None,
                    seccomp: SeccompFilter::Unknown,
                },
                facts: None,
                pod_uid: None,
            }
        }
    };
    insert(cache, e);
}

/// Connect to the CRI runtime at `path` in a thread of its own, which
/// then serves lookups and polls the runtime until the request channel
/// closes or `stop`. Fails when the runtime does not answer `Version`.
fn start_cri(
    path: &Path,
    cache: &Cache,
    stop: &Arc<AtomicBool>,
) -> Result<(Cri, std::thread::JoinHandle<()>), String> {
    let (started_tx, started_rx) = mpsc::channel();
    let (requests, requests_rx) = mpsc::channel::<CriRequest>();
    let (path_buf, cache, stop) = (path.to_path_buf(), cache.clone(), stop.clone());
    let thread = std::thread::Builder::new()
        .name("sandmine-cri".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = started_tx.send(Err(format!("cannot start its async runtime: {e}")));
                    return;
                }
            };
            let connected = rt.block_on(async {
                let mut client = cri::connect(&path_buf).await?;
                let v = cri::version(&mut client).await?;
                Ok::<_, cri::CriError>((client, v))
            });
            let (client, v) = match connected {
                Ok(c) => c,
                Err(e) => {
                    let _ = started_tx.send(Err(e.to_string()));
                    return;
                }
            };
            let runtime = if v.runtime_name.is_empty() {
                "cri".to_string()
            } else {
                v.runtime_name.clone()
            };
            let _ = started_tx.send(Ok(runtime.clone()));
            serve_cri(&rt, client, &runtime, &cache, &stop, &requests_rx);
        })
        .map_err(|e| format!("cannot start its thread: {e}"))?;
    match started_rx.recv_timeout(CRI_ANSWER) {
        Ok(Ok(runtime)) => Ok((Cri { runtime, requests }, thread)),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        // The thread goes on until its connect times out, then ends.
        Err(_) => Err(format!("no answer in {CRI_ANSWER:?}")),
    }
}

type CriClient = cri::Client;

fn cri_entry(c: CriContainer) -> Entry {
    let facts = (!c.cgroup_parent.is_empty()).then(|| EngineFacts {
        cgroup_parent: c.cgroup_parent,
        pid: c.pid,
        engine: c.r.runtime.clone(),
    });
    Entry {
        r: c.r,
        facts,
        pod_uid: (!c.pod_uid.is_empty()).then_some(c.pod_uid),
    }
}

/// A container's status, else a pod sandbox's (its pause process has a
/// cgroup of its own in the pod).
async fn cri_lookup(client: &mut CriClient, runtime: &str, id: &str) -> Option<Entry> {
    let found = match cri::container(client, runtime, id).await {
        Ok(None) => cri::sandbox(client, runtime, id).await,
        other => other,
    };
    match found {
        Ok(c) => c.map(cri_entry),
        Err(err) => {
            log::warn!("asking the CRI runtime of container {}: {err}", short(id));
            None
        }
    }
}

/// The CRI thread's loop: answer lookups; every [`CRI_POLL`], cache the
/// containers the runtime lists that this thread has not seen yet.
fn serve_cri(
    rt: &tokio::runtime::Runtime,
    mut client: CriClient,
    runtime: &str,
    cache: &Cache,
    stop: &AtomicBool,
    requests: &mpsc::Receiver<CriRequest>,
) {
    // Ids listed at the last poll: each is asked for once while listed
    // (so a container the daemon published and forgot is not cached
    // again).
    let mut seen: HashSet<String> = HashSet::new();
    let mut next_poll = Instant::now();
    let mut poll_failed = false;
    while !stop.load(Ordering::Relaxed) {
        match requests.recv_timeout(next_poll.saturating_duration_since(Instant::now())) {
            Ok((id, reply)) => {
                let e = rt.block_on(cri_lookup(&mut client, runtime, &id));
                if let Some(e) = &e {
                    insert(cache, e.clone());
                }
                let _ = reply.send(e);
                continue;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        next_poll = Instant::now() + CRI_POLL;
        let ids = match rt.block_on(cri::container_ids(&mut client)) {
            Ok(ids) => {
                poll_failed = false;
                ids
            }
            Err(err) => {
                if !poll_failed {
                    log::warn!("listing the CRI runtime's containers: {err}");
                }
                poll_failed = true;
                continue;
            }
        };
        let listed: HashSet<String> = ids.into_iter().collect();
        for id in listed.difference(&seen) {
            if cache.lock().map(|m| m.contains_key(id)).unwrap_or(true) {
                continue;
            }
            if let Ok(Some(c)) = rt.block_on(cri::container(&mut client, runtime, id)) {
                // Its pid would be checked at a later tick, when it may
                // be another process's: the parent is checked, not the pid.
                let mut e = cri_entry(c);
                if let Some(f) = e.facts.as_mut() {
                    f.pid = 0;
                }
                log::debug!("CRI runtime {runtime}: cached container {id}");
                insert(cache, e);
            }
        }
        seen = listed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seccomp_options() {
        let o = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(seccomp_of(&[], false), SeccompFilter::RuntimeDefault);
        assert_eq!(seccomp_of(&[], true), SeccompFilter::Unconfined);
        assert_eq!(
            seccomp_of(&o(&["label=disable", "seccomp=unconfined"]), false),
            SeccompFilter::Unconfined
        );
        assert_eq!(
            seccomp_of(&o(&["seccomp:unconfined"]), false),
            SeccompFilter::Unconfined
        );
        assert_eq!(
            seccomp_of(&o(&["seccomp={}"]), false),
            SeccompFilter::Profile(
                "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a".into()
            )
        );
        assert_eq!(
            seccomp_of(&o(&["no-new-privileges"]), false),
            SeccompFilter::RuntimeDefault
        );
    }
}
