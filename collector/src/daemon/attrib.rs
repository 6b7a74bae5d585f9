//! Who a container is: image, digest, pod and seccomp filter, from the
//! Docker Engine API (or podman's compatible one).
//!
//! A container that lives milliseconds (`docker run --rm` of a program
//! that exits at once) is gone long before the next tick. So a background
//! thread follows the engine's event stream and inspects every container
//! the moment it is created (the engine's `create` event comes before the
//! container's first process runs), caching the answer by container id.
//! A tick that meets an id the cache lacks (a container older than the
//! daemon) inspects it then, and if the engine no longer knows it, reads
//! the engine's recent events for its image name.

use crate::docker::{DockerClient, Event};
use schemas::wire::{ContainerRef, PodRef, SeccompFilter};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
}

type Cache = Arc<Mutex<HashMap<String, Entry>>>;

/// Resolves container ids to [`ContainerRef`]s.
pub struct Resolver {
    engines: Vec<Engine>,
    cache: Cache,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Resolver {
    /// Connect to the engines that answer. An engine that does not answer
    /// is logged and skipped: its containers are still published, by the
    /// id and runtime their cgroup names give, without image.
    pub fn new(docker: Option<&Path>, podman: Option<&Path>) -> Resolver {
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
        let threads = engines
            .iter()
            .map(|engine| {
                let (engine, cache, stop) = (engine.clone(), cache.clone(), stop.clone());
                std::thread::spawn(move || follow_events(&engine, &cache, &stop))
            })
            .collect();
        Resolver {
            engines,
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
    /// container, which no engine API here answers for) is
    /// [`EngineCheck::NoSource`]; engines that answer and do not know it,
    /// [`EngineCheck::Unknown`].
    pub fn check(&self, c: &CgroupContainer) -> EngineCheck {
        if c.in_pod() || self.engines_for(&c.runtime).next().is_none() {
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

    /// The cache, else the engines' inspect, else their past events.
    fn lookup(&self, c: &CgroupContainer) -> Option<Entry> {
        if let Some(e) = self.cached(&c.id) {
            return Some(e);
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

    fn engines_for<'a>(&'a self, runtime: &'a str) -> impl Iterator<Item = &'a Engine> + 'a {
        self.engines
            .iter()
            .filter(move |e| runtime == "unknown" || e.runtime == runtime)
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
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

/// The image's registry digest (`RepoDigests`, the same on every host)
/// when it has one, else its local id (`sha256:...`, the config digest).
fn image_digest(engine: &Engine, image: &str, image_id: Option<&str>) -> String {
    let by = image_id.filter(|s| !s.is_empty()).unwrap_or(image);
    if by.is_empty() {
        return String::new();
    }
    match engine.client.inspect_image(by) {
        Ok(info) => info
            .repo_digests
            .iter()
            .find_map(|d| d.split_once('@').map(|(_, h)| h.to_string()))
            .unwrap_or(info.id),
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
            }
        }
    };
    insert(cache, e);
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
