//! The per-host collector daemon's core: kernel counters → per-container
//! deltas → a crash-safe on-disk spool of wire messages, exactly once.
//!
//! # Pieces
//!
//! - [`kernel`]: the aggregator in auto-track mode (every mount namespace
//!   but the host's gets a workload key), maps and links pinned on bpffs so
//!   it keeps counting while the daemon is down.
//! - [`cgpath`]: container runtime and id from the cgroup names the kernel
//!   recorded when it first saw a workload (so a container gone before we
//!   looked is still attributed).
//! - [`attrib`]: image, digest, pod and seccomp filter from the Docker
//!   Engine API (podman's too), following the engine's events so that
//!   containers living milliseconds are inspected while they exist.
//! - [`spool`]: the on-disk queue of encoded messages for the publisher.
//!
//! # Exactly once, producer side
//!
//! [`Daemon::tick`] (1) computes the deltas against the last *committed*
//! cumulative snapshot with `seq = state.seq + 1`, (2) writes the encoded
//! message to the spool (fsync), (3) atomically replaces the state file
//! (temp + fsync + rename + fsync dir) with the new seq and snapshot. Only
//! then is the message publishable. A crash before (3) leaves a spool file
//! with `seq > state.seq`: [`Daemon::open`] deletes it, and the next tick
//! recomputes the same calls against the old snapshot (the kernel kept
//! counting), so nothing is lost or counted twice. A new boot id restarts
//! seq at 1 and drops every snapshot (new kernel counters).
//!
//! # What is published
//!
//! - Only workloads whose cgroup names a container ([`cgpath`]). Others (a
//!   host process that unshared its mount namespace, a sandbox) are not
//!   published; [`TickStats::unattributed_keys`] counts them, and their
//!   keys are deleted from the kernel once their namespace is gone.
//! - Setup phase: the kernel counts per syscall, not per phase, so a
//!   syscall seen only in [`Phase::Setup`] (the runtime's privileged set-up
//!   before its seccomp filter) is left out, and the Setup bit is removed
//!   from the phases of the others. A syscall made both before and after
//!   the filter in the same interval carries both calls in its count.
//! - Phases are the phases seen so far (the kernel's bits are cumulative),
//!   a superset of the interval's.
//! - No heartbeat: a tick in which no container made a call and none
//!   exited publishes nothing (`Ok(None)`) and uses no seq. The next
//!   message's interval starts where the last published one ended.
//! - A container has exited when no process is left in any of its mount
//!   namespaces. Its final delta carries `exited_at_ms` (the tick's time);
//!   once that is committed its kernel keys are deleted.
//!
//! # Spool full
//!
//! When the spool holds `spool_max_bytes` or more, `tick` publishes
//! nothing and warns once per episode. The kernel keeps counting, so the
//! next tick after the publisher drains the spool covers everything. The
//! limit is the kernel map's capacity (1024 workloads): new containers
//! beyond it are not tracked (their calls are counted in
//! [`TickStats::lost_calls`]); exited containers are only deleted from the
//! map after their final delta is committed, so a long outage on a host
//! with heavy container churn fills it.

pub mod attrib;
pub mod cgpath;
pub mod kernel;
pub mod spool;

use crate::ebpf::WorkloadKey;
use schemas::wire::{ContainerDelta, ContainerRef, Envelope, PodRef, SeccompFilter, SyscallDelta};
use schemas::{Abi, Phase, PhaseSet, SyscallKey};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use kernel::Kernel;
pub use spool::{Pending, Spool};

/// Errors of the daemon core.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("kernel: {0}")]
    Kernel(String),
    #[error("state: {0}")]
    State(String),
    #[error("encoding the delta: {0}")]
    Wire(#[from] schemas::wire::WireError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl DaemonError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        DaemonError::Io {
            context: context.into(),
            source,
        }
    }
}

/// The daemon's configuration (`[collector]` of the config file).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// Stable host identity; `/etc/machine-id` when unset.
    pub host_id: Option<String>,
    /// How often a delta is cut ("10s", "500ms", "1m").
    #[serde(deserialize_with = "de_duration")]
    pub interval: Duration,
    /// Persisted state and the spool.
    pub state_dir: PathBuf,
    /// When the spool holds this much, deltas wait in the kernel.
    pub spool_max_bytes: u64,
    /// bpffs directory of the pinned aggregator.
    pub pin_dir: PathBuf,
    /// Docker Engine API socket (default /var/run/docker.sock).
    pub docker_socket: Option<PathBuf>,
    /// Podman's Docker-compatible API socket, when podman runs here.
    pub podman_socket: Option<PathBuf>,
    /// Only publish containers whose cgroup's parent has this name (for
    /// example started with `docker run --cgroup-parent=/NAME`). Lets
    /// several collectors share one host, each with its own containers: a
    /// fleet simulation, or one slice of a host. Others are ignored like
    /// non-container namespaces.
    pub cgroup_parent: Option<String>,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            host_id: None,
            interval: Duration::from_secs(10),
            state_dir: PathBuf::from("/var/lib/sandmine/collector"),
            spool_max_bytes: 256 << 20,
            pin_dir: PathBuf::from("/sys/fs/bpf/sandmine"),
            docker_socket: None,
            podman_socket: None,
            cgroup_parent: None,
        }
    }
}

/// "10s", "250ms", "2m", "1h" → a duration.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("duration {s:?} has no unit (ms, s, m, h)"))?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("duration {s:?}: expected a number then a unit"))?;
    let ms = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => {
            return Err(format!(
                "duration {s:?}: unknown unit {unit:?} (ms, s, m, h)"
            ))
        }
    }
    .ok_or_else(|| format!("duration {s:?} is too long"))?;
    Ok(Duration::from_millis(ms))
}

fn de_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

/// What one tick saw, for logs and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickStats {
    /// Workload keys in the kernel map.
    pub keys: usize,
    /// Keys whose cgroup names no container: not published.
    pub unattributed_keys: usize,
    /// Calls the kernel could not count (cumulative since load).
    pub lost_calls: u64,
    /// The tick held its delta because the spool is full.
    pub spool_full: bool,
}

// ---------------------------------------------------------------------------
// Persisted state.

const STATE_VERSION: u32 = 1;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    version: u32,
    host_id: String,
    boot_id: String,
    /// Last committed seq of this boot (0: none yet).
    seq: u64,
    /// End of the last committed interval (0: none yet).
    last_end_ms: u64,
    /// Per workload key ("cgroup_id:mntns_id"): the last published
    /// cumulative counts.
    keys: BTreeMap<String, KeyState>,
    /// Per container id.
    containers: BTreeMap<String, ContainerState>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyState {
    container_id: String,
    /// (wire abi code, nr, cumulative calls).
    counts: Vec<(u8, u32, u64)>,
    /// Its final delta is committed: delete it from the kernel.
    done: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContainerState {
    runtime: String,
    image: String,
    image_digest: String,
    pod: Option<(String, String, String)>,
    seccomp: String,
    started_at_ms: u64,
    /// (wire abi code, nr, first seen ms).
    first_seen: Vec<(u8, u32, u64)>,
    exited: bool,
}

impl ContainerState {
    fn to_ref(&self, id: &str) -> ContainerRef {
        ContainerRef {
            runtime: self.runtime.clone(),
            id: id.to_string(),
            image: self.image.clone(),
            image_digest: self.image_digest.clone(),
            pod: self.pod.clone().map(|(namespace, pod, container)| PodRef {
                namespace,
                pod,
                container,
            }),
            seccomp: SeccompFilter::from_text(&self.seccomp),
        }
    }
}

fn key_text(k: &WorkloadKey) -> String {
    format!("{}:{}", k.cgroup_id, k.mntns_id)
}

fn key_from_text(s: &str) -> Option<WorkloadKey> {
    let (a, b) = s.split_once(':')?;
    Some(WorkloadKey {
        cgroup_id: a.parse().ok()?,
        mntns_id: b.parse().ok()?,
    })
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DaemonError> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    let io = |e| DaemonError::io(format!("writing {}", tmp.display()), e);
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path)
        .map_err(|e| DaemonError::io(format!("renaming {}", tmp.display()), e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| DaemonError::io(format!("fsync {}", dir.display()), e))
}

fn read_trimmed(path: &str) -> Result<String, DaemonError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| DaemonError::io(format!("reading {path}"), e))
}

/// Wall-clock milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// Live mount namespaces: inode number → one pid in it.
fn live_mntns() -> HashMap<u32, i32> {
    let mut out = HashMap::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(link) = std::fs::read_link(format!("/proc/{pid}/ns/mnt")) {
            let l = link.to_string_lossy();
            if let Some(inum) = l
                .strip_prefix("mnt:[")
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|n| n.parse::<u32>().ok())
            {
                out.entry(inum).or_insert(pid);
            }
        }
    }
    out
}

/// One container's tick: per syscall (calls, phases), and whether any of
/// its workloads is still alive.
type ContainerTick = (BTreeMap<SyscallKey, (u64, PhaseSet)>, bool);

/// What the daemon learnt of a key when it first met it (never changes).
#[derive(Clone, Debug)]
struct KeyMeta {
    container: Option<cgpath::CgroupContainer>,
    mntns_inum: u32,
    created_ms: u64,
}

/// The daemon core. See the module documentation.
pub struct Daemon {
    config: DaemonConfig,
    kernel: Kernel,
    resolver: attrib::Resolver,
    spool: Spool,
    state: State,
    state_path: PathBuf,
    metas: HashMap<WorkloadKey, KeyMeta>,
    spool_full_warned: bool,
    last_stats: TickStats,
    started_ms: u64,
}

impl Daemon {
    /// Open (or load) the kernel side, read the persisted state, and
    /// discard spool leftovers of a crash.
    pub fn open(config: DaemonConfig) -> Result<Daemon, DaemonError> {
        let host_id = match &config.host_id {
            Some(h) => h.clone(),
            None => read_trimmed("/etc/machine-id")?,
        };
        let boot_id = read_trimmed("/proc/sys/kernel/random/boot_id")?;
        std::fs::create_dir_all(&config.state_dir)
            .map_err(|e| DaemonError::io(format!("creating {}", config.state_dir.display()), e))?;
        let state_path = config.state_dir.join("state.json");
        let mut state = match std::fs::read(&state_path) {
            Ok(b) => serde_json::from_slice::<State>(&b).map_err(|e| {
                DaemonError::State(format!("{} is corrupt: {e}", state_path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => {
                return Err(DaemonError::io(
                    format!("reading {}", state_path.display()),
                    e,
                ))
            }
        };
        if state.boot_id != boot_id || state.host_id != host_id {
            // New boot: new kernel counters, seq restarts at 1. (A changed
            // host id starts a new message stream too.)
            state = State {
                version: STATE_VERSION,
                host_id: host_id.clone(),
                boot_id: boot_id.clone(),
                ..State::default()
            };
        }
        let spool = Spool::open(&config.state_dir.join("spool"), &host_id, &boot_id)?;
        let discarded = spool.discard_after(state.seq)?;
        if discarded > 0 {
            log::warn!(
                "discarded {discarded} spooled messages after seq {} (written but never committed before a crash); their calls are in the next delta",
                state.seq
            );
        }
        let kernel = Kernel::open_or_load(&config.pin_dir)?;
        if kernel.fresh() {
            // Counters start from zero: no snapshot applies any more.
            state.keys.clear();
        }
        let resolver = attrib::Resolver::new(
            config.docker_socket.as_deref(),
            config.podman_socket.as_deref(),
        );
        let mut d = Daemon {
            config,
            kernel,
            resolver,
            spool,
            state,
            state_path,
            metas: HashMap::new(),
            spool_full_warned: false,
            last_stats: TickStats::default(),
            started_ms: now_ms(),
        };
        d.reap_done()?;
        Ok(d)
    }

    pub fn config(&self) -> &DaemonConfig {
        &self.config
    }

    /// The spool, for the publisher.
    pub fn spool(&self) -> &Spool {
        &self.spool
    }

    /// The last committed seq of this boot.
    pub fn seq(&self) -> u64 {
        self.state.seq
    }

    pub fn host_id(&self) -> &str {
        &self.state.host_id
    }

    pub fn boot_id(&self) -> &str {
        &self.state.boot_id
    }

    /// What the last tick saw.
    pub fn last_stats(&self) -> &TickStats {
        &self.last_stats
    }

    /// Delete from the kernel the keys whose final delta is committed.
    fn reap_done(&mut self) -> Result<(), DaemonError> {
        let done: Vec<String> = self
            .state
            .keys
            .iter()
            .filter(|(_, k)| k.done)
            .map(|(t, _)| t.clone())
            .collect();
        for t in done {
            if let Some(k) = key_from_text(&t) {
                self.kernel.remove(&k)?;
                self.metas.remove(&k);
            }
            self.state.keys.remove(&t);
        }
        let exited: Vec<String> = self
            .state
            .containers
            .iter()
            .filter(|(_, c)| c.exited)
            .map(|(id, _)| id.clone())
            .collect();
        for id in exited {
            self.state.containers.remove(&id);
            self.resolver.forget(&id);
        }
        Ok(())
    }

    fn meta(
        &mut self,
        key: &WorkloadKey,
        wall_ms: u64,
        mono_ns: u64,
    ) -> Result<KeyMeta, DaemonError> {
        if let Some(m) = self.metas.get(key) {
            return Ok(m.clone());
        }
        let info = self.kernel.info(key)?;
        let name = self.kernel.cgroup_name(key)?;
        let only_parent = self.config.cgroup_parent.as_deref();
        let container = name.and_then(|n| {
            if only_parent.is_some_and(|p| p != n.parent_str()) {
                return None;
            }
            let path = format!("{}/{}", n.parent_str(), n.leaf_str());
            (n.hierarchy != 0).then(|| cgpath::parse(&path)).flatten()
        });
        let (inum, created_ms) = match info {
            Some(i) => (
                i.mntns_inum,
                wall_ms.saturating_sub(mono_ns.saturating_sub(i.created_ns) / 1_000_000),
            ),
            None => (0, wall_ms),
        };
        let m = KeyMeta {
            container,
            mntns_inum: inum,
            created_ms,
        };
        self.metas.insert(*key, m.clone());
        Ok(m)
    }

    /// Cut a delta at `now_ms` (wall clock): see the module documentation.
    /// `Ok(None)`: nothing to publish, or the spool is full.
    pub fn tick(&mut self, now_ms: u64) -> Result<Option<Envelope>, DaemonError> {
        let mut stats = TickStats {
            lost_calls: self.kernel.lost_calls()?,
            ..TickStats::default()
        };
        let used = self.spool.size_bytes()?;
        if used >= self.config.spool_max_bytes {
            if !self.spool_full_warned {
                log::warn!(
                    "spool full ({} MiB of {} MiB): holding deltas in the kernel until the broker returns",
                    used >> 20,
                    self.config.spool_max_bytes >> 20
                );
                self.spool_full_warned = true;
            }
            stats.spool_full = true;
            self.last_stats = stats;
            return Ok(None);
        }
        if self.spool_full_warned {
            log::info!(
                "spool has room again ({} MiB): publishing resumes",
                used >> 20
            );
            self.spool_full_warned = false;
        }
        let mono = monotonic_ns();
        let wall = now_ms;
        let keys = self.kernel.keys()?;
        stats.keys = keys.len();
        let live = live_mntns();
        let alive = |m: &KeyMeta, k: &WorkloadKey| -> bool {
            live.get(&m.mntns_inum).is_some_and(|pid| {
                crate::ebpf::mntns_id(&pid.to_string()).is_ok_and(|id| id == k.mntns_id)
            })
        };

        let mut new_state = self.state.clone();
        // Per container: (syscall → (calls, phases)), any key alive.
        let mut per_container: BTreeMap<String, ContainerTick> = BTreeMap::new();
        let mut gone_unattributed = Vec::new();
        for key in &keys {
            let meta = self.meta(key, wall, mono)?;
            let is_alive = alive(&meta, key);
            let Some(c) = meta.container.clone() else {
                stats.unattributed_keys += 1;
                if !is_alive {
                    gone_unattributed.push(*key);
                }
                continue;
            };
            let kt = key_text(key);
            if new_state.keys.get(&kt).is_some_and(|k| k.done) {
                continue;
            }
            let Some(obs) = self.kernel.observe(key)? else {
                continue;
            };
            if !new_state.containers.contains_key(&c.id) {
                let r = self.resolver.resolve(&c);
                new_state.containers.insert(
                    c.id.clone(),
                    ContainerState {
                        runtime: r.runtime,
                        image: r.image,
                        image_digest: r.image_digest,
                        pod: r.pod.map(|p| (p.namespace, p.pod, p.container)),
                        seccomp: r.seccomp.as_text(),
                        started_at_ms: meta.created_ms,
                        first_seen: Vec::new(),
                        exited: false,
                    },
                );
            }
            if let Some(cs) = new_state.containers.get_mut(&c.id) {
                cs.started_at_ms = cs.started_at_ms.min(meta.created_ms);
            }
            let prev: HashMap<(u8, u32), u64> = new_state
                .keys
                .get(&kt)
                .map(|k| k.counts.iter().map(|(a, n, c)| ((*a, *n), *c)).collect())
                .unwrap_or_default();
            let entry = per_container.entry(c.id.clone()).or_default();
            entry.1 |= is_alive;
            let mut counts = Vec::with_capacity(obs.syscalls.len());
            for (sk, u) in &obs.syscalls {
                let code = schemas::wire::abi_code(sk.abi);
                counts.push((code, sk.nr, u.calls));
                let before = prev.get(&(code, sk.nr)).copied().unwrap_or(0);
                // Fewer calls than the snapshot: the counters restarted.
                let delta = if u.calls >= before {
                    u.calls - before
                } else {
                    u.calls
                };
                let phases = PhaseSet(u.phases.0 & !Phase::Setup.bit());
                if delta == 0 || phases.is_empty() {
                    continue;
                }
                let e = entry.0.entry(*sk).or_insert((0, PhaseSet::default()));
                e.0 += delta;
                e.1 = e.1.union(phases);
            }
            new_state.keys.insert(
                kt,
                KeyState {
                    container_id: c.id.clone(),
                    counts,
                    done: false,
                },
            );
        }

        let mut deltas = Vec::new();
        let mut finished_keys = Vec::new();
        for (id, (syscalls, any_alive)) in per_container {
            let Some(cs) = new_state.containers.get_mut(&id) else {
                continue;
            };
            let exiting = !any_alive && !cs.exited;
            if syscalls.is_empty() && !exiting {
                continue;
            }
            let mut first: HashMap<(u8, u32), u64> = cs
                .first_seen
                .iter()
                .map(|(a, n, t)| ((*a, *n), *t))
                .collect();
            let mut out = Vec::with_capacity(syscalls.len());
            for (sk, (calls, phases)) in &syscalls {
                let code = schemas::wire::abi_code(sk.abi);
                let f = *first.entry((code, sk.nr)).or_insert(now_ms);
                out.push(SyscallDelta {
                    abi: sk.abi,
                    nr: sk.nr,
                    calls: *calls,
                    phases: *phases,
                    first_seen_ms: f,
                });
            }
            let mut fs: Vec<(u8, u32, u64)> =
                first.into_iter().map(|((a, n), t)| (a, n, t)).collect();
            fs.sort();
            cs.first_seen = fs;
            if exiting {
                cs.exited = true;
                for (kt, k) in new_state.keys.iter_mut() {
                    if k.container_id == id {
                        k.done = true;
                        finished_keys.push(kt.clone());
                    }
                }
            }
            deltas.push(ContainerDelta {
                container: cs.to_ref(&id),
                started_at_ms: cs.started_at_ms,
                last_seen_ms: now_ms,
                exited_at_ms: exiting.then_some(now_ms),
                syscalls: out,
            });
        }
        for k in gone_unattributed {
            self.kernel.remove(&k)?;
            self.metas.remove(&k);
        }
        self.last_stats = stats;
        if deltas.is_empty() {
            return Ok(None);
        }

        let start = if self.state.last_end_ms > 0 {
            self.state.last_end_ms
        } else {
            self.started_ms.min(now_ms)
        };
        new_state.seq = self.state.seq + 1;
        new_state.last_end_ms = now_ms;
        let env = Envelope {
            host_id: new_state.host_id.clone(),
            boot_id: new_state.boot_id.clone(),
            seq: new_state.seq,
            interval_start_ms: start,
            interval_end_ms: now_ms,
            containers: deltas,
        };
        let bytes = schemas::wire::encode(&env)?;
        // (2) spool, (3) commit: only then is it publishable.
        self.spool.write(env.seq, &bytes)?;
        if fault::crash_before_commit() {
            return Err(DaemonError::State("injected crash before commit".into()));
        }
        self.commit(new_state)?;
        if !finished_keys.is_empty() {
            self.reap_done()?;
        }
        Ok(Some(env))
    }

    fn commit(&mut self, state: State) -> Result<(), DaemonError> {
        let bytes = serde_json::to_vec(&state)
            .map_err(|e| DaemonError::State(format!("encoding the state: {e}")))?;
        write_atomic(&self.state_path, &bytes)?;
        self.state = state;
        Ok(())
    }

    /// Test hook: the spooled-but-uncommitted crash window. Writes the
    /// next message to the spool as `tick` would, then stops without
    /// committing, exactly like a crash between steps (2) and (3).
    #[doc(hidden)]
    pub fn tick_crashing_before_commit(
        &mut self,
        now_ms: u64,
    ) -> Result<Option<Envelope>, DaemonError> {
        fault::set(true);
        let r = self.tick(now_ms);
        fault::set(false);
        match r {
            Err(DaemonError::State(m)) if m.contains("injected crash") => {
                // The envelope was spooled; report it for the test to
                // compare.
                let p = self.spool.pending()?;
                let Some(last) = p.last() else {
                    return Ok(None);
                };
                Ok(Some(schemas::wire::decode(&last.read()?)?))
            }
            other => other,
        }
    }
}

/// Crash injection for tests (thread-local: tests run in parallel).
mod fault {
    use std::cell::Cell;
    thread_local!(static CRASH: Cell<bool> = const { Cell::new(false) });
    pub fn set(v: bool) {
        CRASH.with(|c| c.set(v));
    }
    pub fn crash_before_commit() -> bool {
        CRASH.with(|c| c.get())
    }
}

/// Keys of a syscall set, for tests and tools: `(abi, nr)` pairs.
pub fn syscall_set(env: &Envelope, container_id: &str) -> BTreeSet<(Abi, u32)> {
    env.containers
        .iter()
        .filter(|c| c.container.id == container_id)
        .flat_map(|c| c.syscalls.iter().map(|s| (s.abi, s.nr)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("10d").is_err());
    }

    #[test]
    fn config_from_json() {
        let c: DaemonConfig =
            serde_json::from_str(r#"{"interval":"500ms","host_id":"h1"}"#).unwrap();
        assert_eq!(c.interval, Duration::from_millis(500));
        assert_eq!(c.host_id.as_deref(), Some("h1"));
        assert_eq!(c.spool_max_bytes, 256 << 20);
        assert_eq!(c.pin_dir, PathBuf::from("/sys/fs/bpf/sandmine"));
        let e = serde_json::from_str::<DaemonConfig>(r#"{"intervall":"1s"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
    }

    #[test]
    fn key_text_round_trip() {
        let k = WorkloadKey {
            cgroup_id: 12,
            mntns_id: 345,
        };
        assert_eq!(key_from_text(&key_text(&k)), Some(k));
    }
}
