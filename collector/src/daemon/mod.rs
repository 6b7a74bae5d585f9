//! The per-host collector daemon's core: kernel counters → per-container
//! deltas → a crash-safe on-disk spool of wire messages, exactly once.
//!
//! # Pieces
//!
//! - [`kernel`]: the syscall counter in auto-track mode (every mount namespace
//!   but the host's gets a workload key), maps and links pinned on bpffs so
//!   it keeps counting while the daemon is down.
//! - [`cgpath`]: container runtime and id from the cgroup names the kernel
//!   recorded when it first saw a workload (so a container gone before we
//!   looked is still attributed).
//! - [`attrib`]: image, digest, pod and seccomp filter from the Docker
//!   Engine API (podman's too), following the engine's events so that
//!   containers living milliseconds are inspected while they exist.
//! - [`spool`]: the on-disk queue of encoded messages for the publisher.
//! - `delta`: the pure delta computation (committed state + kernel
//!   counts → next message + next state); `state`: the committed state
//!   and its file.
//!
//! # Exactly once, producer side
//!
//! [`Daemon::prepare`] (1) computes the deltas against the last
//! *committed* cumulative snapshot with `seq = state.seq + 1`, (2) writes
//! the encoded message to the spool (fsync), and returns a
//! [`PendingCommit`]; [`Daemon::commit`] (3) atomically replaces the state
//! file (temp + fsync + rename + fsync dir) with the new seq and snapshot.
//! Only then is the message publishable. A delta whose encoding is over
//! the broker's message limit ([`Daemon::set_max_message_bytes`]: NATS's
//! announced `max_payload`, Kafka's `message.max.bytes`) is cut into
//! several messages of whole containers, `seq + 1 ..= seq + k`, all
//! spooled before the one commit that moves the state to `seq + k`. A crash before (3) leaves a spool
//! file with `seq > state.seq`: [`Daemon::open`] deletes it, and the next
//! tick recomputes the same calls against the old snapshot (the kernel
//! kept counting), so nothing is lost or counted twice. A new boot id
//! restarts seq at 1 and drops every snapshot (new kernel counters).
//! [`Daemon::tick`] is the two in a row.
//!
//! # What is published
//!
//! - Only workloads whose cgroup names a container ([`cgpath`]). Others (a
//!   host process that unshared its mount namespace, a sandbox) are not
//!   published; [`TickStats::unattributed_keys`] counts them, and their
//!   keys are deleted from the kernel once their namespace is gone.
//! - Spoofed containers (issue 9 item 3): [`cgpath`] takes a cgroup as a
//!   container's only under a parent its runtime owns, at that parent's
//!   depth, and [`verify`] checks each key once against the machine and
//!   the engine. A container with a key that fails is unverified for the
//!   rest of its life (the flag is in the state file); at wire version 4
//!   every delta of it carries `unverified`, below 4 it is withheld like
//!   an incomplete container below 3.
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
//! - Lost calls: a container with a key whose calls the kernel could not
//!   count ([`EbpfCollector::lost_calls_of`]: no free slot, or more
//!   distinct syscalls than a slot holds) is incomplete for the rest of its
//!   life (the flag is in the state file). Workloads that never got a slot
//!   are read from [`EbpfCollector::over_capacity`] and attributed by the
//!   cgroup names the kernel recorded, so their container is sent (with no
//!   calls) marked incomplete. At wire version 3 every delta of it carries
//!   `incomplete`; below 3 (`max_wire_version`) the flag cannot travel, so
//!   the container is left out of every message (a warning once per
//!   container, [`TickStats::withheld_containers`]) rather than reach an
//!   old aggregator as if it were complete.
//! - Seccomp denials (issue 11): each tick reads the kernel's per-workload
//!   denial counts ([`EbpfCollector::denials`]) and sends, per container,
//!   the denials since the committed snapshot (the state keeps the
//!   cumulative counts per key beside the calls'), like calls. A tick
//!   whose only news is denials sends them. The profile that denied them
//!   is the container's `seccomp` filter (the sha256 of the JSON the
//!   engine reports applying, [`attrib::seccomp_of`]). They travel from
//!   wire version 6; below it they are dropped, with one warning per
//!   process ([`TickStats::dropped_denials`]): they are feedback on a
//!   profile, not evidence for one.
//! - Argument values (issue 11): each workload's observation carries its
//!   recorded argument sets (whole, cumulative); per container, the sets
//!   of the syscalls whose set grew since the committed snapshot (the
//!   state keeps each set's size and overflow per key) are sent whole, so
//!   a store's union is the same whatever the redelivery. They travel
//!   from wire version 7; below it they are dropped, with one warning per
//!   process ([`TickStats::dropped_arg_sets`]): a container with no set
//!   keeps the syscall allowed by name alone.
//! - Executed files (issue 10): at each tick, every process of a live
//!   key's mount namespace is read under `proc_root`
//!   ([`crate::executed`]: its executable and executable mappings, as
//!   paths inside the container); per container, the files not sent
//!   before (the committed state keeps a fingerprint of each) go in the
//!   next message. They travel from wire version 8; below it they are
//!   dropped, with one warning per process
//!   ([`TickStats::dropped_executed`]). A process that lives less than a
//!   tick can be missed: the files are a sample, and the compiler's
//!   report says they are what was seen.
//!
//! # Spool full
//!
//! When the spool holds `spool_max_bytes` or more, `tick` publishes
//! nothing and warns once per episode. The kernel keeps counting, so the
//! next tick after the publisher drains the spool covers everything. The
//! limit is the counter's capacity (`max_workloads` slots): workloads
//! beyond it are not tracked (their calls are counted per workload, see
//! [`EbpfCollector::over_capacity`], and in [`TickStats::lost_calls`]);
//! exited containers only free their slot after their final delta is
//! committed, so a long outage on a host with heavy container churn fills
//! it.

pub mod attrib;
pub mod cgpath;
mod delta;
pub mod hostkey;
pub mod kernel;
pub mod privileges;
pub mod spool;
mod state;
pub mod verify;

use crate::ebpf::{CgroupName, EbpfCollector, WorkloadKey};
use schemas::wire::Envelope;
use schemas::Abi;
use serde::Deserialize;
use state::{State, StateFile};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use spool::{Pending, Spool};

/// Errors of the daemon core.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("kernel: {0}")]
    Kernel(String),
    /// A capability is missing, or `proc_root` is no proc file system: the
    /// message says which and what it is for.
    #[error("{0}")]
    Privileges(String),
    #[error("state: {0}")]
    State(String),
    /// The signing key file is unusable; the message says why and what to
    /// do.
    #[error("{0}")]
    HostKey(String),
    #[error("encoding the delta")]
    Wire(#[from] schemas::wire::WireError),
    #[error("{context}")]
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
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// Stable host identity; `/etc/machine-id` when unset.
    pub host_id: Option<String>,
    /// How often a delta is cut ("10s", "500ms", "1m").
    #[serde(with = "sysutil::duration")]
    pub interval: Duration,
    /// Persisted state and the spool.
    pub state_dir: PathBuf,
    /// When the spool holds this much, deltas wait in the kernel.
    pub spool_max_bytes: u64,
    /// bpffs directory of the pinned syscall counter.
    pub pin_dir: PathBuf,
    /// Workloads the kernel counter holds at once (its slots); its map
    /// memory grows with it (see `collector::ebpf::map_memory_bytes`).
    pub max_workloads: u32,
    /// The newest wire version this collector writes (default: 4,
    /// `schemas::wire::UNSIGNED_VERSION`, the newest unsigned one, which
    /// every aggregator since v4 reads). 5 signs every message with the
    /// host key (`signing_key`); 6 signs and adds each container's
    /// seccomp denials (below 6 they are dropped, with one warning): set
    /// it once every aggregator is upgraded (docs/UPGRADING.md,
    /// docs/CONFIG.md). In a fleet whose aggregators
    /// are older still, set it to the version they read. Below 3,
    /// incomplete containers are left out of the messages (module
    /// documentation). Outside `OLDEST_VERSION..=CURRENT_VERSION` it is a
    /// config error.
    #[serde(deserialize_with = "wire_version")]
    pub max_wire_version: u16,
    /// The host's ed25519 signing key file (default `host.key` in
    /// `state_dir`), created 0600 on first start; its public key is logged
    /// and printed by `sandmine host-key` for `enrolled_hosts`. Wire v5
    /// messages are signed with it ([`hostkey`]).
    pub signing_key: Option<PathBuf>,
    /// Docker Engine API socket (default /var/run/docker.sock).
    pub docker_socket: Option<PathBuf>,
    /// Podman's Docker-compatible API socket, when podman runs here.
    pub podman_socket: Option<PathBuf>,
    /// The Kubernetes node's CRI runtime socket (containerd's
    /// `/run/containerd/containerd.sock`, CRI-O's `/run/crio/crio.sock`):
    /// pods' containers get their image, digest, pod, namespace and
    /// container name from it, and are verified against it. Unset (the
    /// default), or not answering at start (one warning): pods'
    /// containers are attributed by cgroup name only.
    pub cri_socket: Option<PathBuf>,
    /// Only publish containers whose cgroup's parent has this name (for
    /// example started with `docker run --cgroup-parent=/NAME`). Lets
    /// several collectors share one host, each with its own containers: a
    /// fleet simulation, or one slice of a host. Others are ignored like
    /// non-container namespaces.
    pub cgroup_parent: Option<String>,
    /// Where the host's proc file system is mounted (default `/proc`): the
    /// collector lists the host's processes and reads their
    /// `PID/ns/mnt` there. In a container, mount the host's `/proc`
    /// read-only elsewhere (say `/host/proc`) instead of sharing the
    /// host's pid namespace. This process's own entries are always read
    /// from `/proc/self`.
    pub proc_root: PathBuf,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            host_id: None,
            interval: Duration::from_secs(10),
            state_dir: PathBuf::from("/var/lib/sandmine/collector"),
            spool_max_bytes: 256 << 20,
            pin_dir: PathBuf::from("/sys/fs/bpf/sandmine"),
            max_workloads: crate::ebpf::DEFAULT_MAX_WORKLOADS,
            max_wire_version: schemas::wire::UNSIGNED_VERSION,
            signing_key: None,
            docker_socket: None,
            podman_socket: None,
            cri_socket: None,
            cgroup_parent: None,
            proc_root: PathBuf::from("/proc"),
        }
    }
}

/// `max_wire_version`: a version this build writes.
fn wire_version<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    use schemas::wire::{CURRENT_VERSION, OLDEST_VERSION};
    let v = u64::deserialize(d)?;
    match u16::try_from(v) {
        Ok(v) if (OLDEST_VERSION..=CURRENT_VERSION).contains(&v) => Ok(v),
        _ => Err(serde::de::Error::custom(format!(
            "max_wire_version {v} is not a wire version this collector writes ({OLDEST_VERSION} to {CURRENT_VERSION})"
        ))),
    }
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
    /// Containers marked incomplete (some of their calls lost) since the
    /// daemon started.
    pub incomplete_containers: u64,
    /// Containers marked unverified (their cgroup is not provably their
    /// runtime's, [`verify`]) since the daemon started.
    pub unverified_containers: u64,
    /// Incomplete containers left out of the messages because
    /// `max_wire_version` is below 3, and unverified ones because it is
    /// below 4, since the daemon started.
    pub withheld_containers: u64,
    /// Seccomp denials of this tick's delta not sent because
    /// `max_wire_version` is below 6.
    pub dropped_denials: u64,
    /// Argument sets of this tick's delta not sent because
    /// `max_wire_version` is below 7.
    pub dropped_arg_sets: u64,
    /// Newly seen executed files of this tick's delta not sent because
    /// `max_wire_version` is below 8.
    pub dropped_executed: u64,
}

fn read_trimmed(path: &str) -> Result<String, DaemonError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| DaemonError::io(format!("reading {path}"), e))
}

use sysutil::clock::now_ms;

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// Live mount namespaces: inode number → the pids in it (ascending), from
/// the proc file system at `proc_root`.
fn live_mntns(proc_root: &Path) -> HashMap<u32, Vec<i32>> {
    let mut out = HashMap::new();
    let Ok(rd) = std::fs::read_dir(proc_root) else {
        return out;
    };
    let mut pids: Vec<i32> = rd
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect();
    pids.sort_unstable();
    for pid in pids {
        if let Ok(link) = std::fs::read_link(proc_root.join(format!("{pid}/ns/mnt"))) {
            let l = link.to_string_lossy();
            if let Some(inum) = l
                .strip_prefix("mnt:[")
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|n| n.parse::<u32>().ok())
            {
                out.entry(inum).or_insert_with(Vec::new).push(pid);
            }
        }
    }
    out
}

/// What the daemon learnt of a key when it first met it (never changes).
#[derive(Clone, Debug)]
struct KeyMeta {
    container: Option<cgpath::CgroupContainer>,
    /// Why the container's cgroup failed [`verify`], if it did.
    unverified: Option<String>,
    mntns_inum: u32,
    created_ms: u64,
}

/// Messages written to the spool but not yet publishable, and the state
/// that makes them so: [`Daemon::prepare`] makes one, [`Daemon::commit`]
/// consumes it. Dropping it is what a crash between the two does: the
/// messages are discarded at the next start and their calls recomputed.
///
/// It holds a list of messages, in seq order, so that one tick can be cut
/// into several envelopes (one per broker size limit, issue 9); today a
/// tick makes one. The instance epoch of issue 9 belongs beside the seq
/// in [`State`], and so travels here with it.
#[must_use = "spooled messages are published only after commit"]
#[derive(Debug)]
pub struct PendingCommit {
    /// The committed seq this was cut against.
    base_seq: u64,
    state: State,
    messages: Vec<Envelope>,
    finished_keys: bool,
}

impl PendingCommit {
    /// The spooled messages, in seq order.
    pub fn messages(&self) -> &[Envelope] {
        &self.messages
    }
}

/// The daemon core. See the module documentation.
pub struct Daemon {
    config: DaemonConfig,
    kernel: EbpfCollector,
    resolver: attrib::Resolver,
    spool: Spool,
    state: State,
    state_file: StateFile,
    metas: HashMap<WorkloadKey, KeyMeta>,
    /// Where the cgroup hierarchies are mounted, for [`verify`].
    roots: verify::Roots,
    /// Containers marked unverified since the daemon started.
    unverified_total: u64,
    /// Containers already warned about as withheld (until reaped).
    withheld_warned: HashSet<String>,
    /// Denials were dropped because `max_wire_version` is below 6 (said
    /// once per process).
    denials_dropped_warned: bool,
    args_dropped_warned: bool,
    executed_dropped_warned: bool,
    incomplete_total: u64,
    spool_full_warned: bool,
    last_stats: TickStats,
    started_ms: u64,
    /// Largest encoded message; a larger delta is split
    /// ([`Daemon::set_max_message_bytes`]).
    max_message_bytes: usize,
    /// Signs wire v5 messages ([`hostkey`]).
    key: schemas::wire::HostKey,
}

/// The message limit until the publisher tells the broker's: under both
/// NATS's default `max_payload` (1 MiB) and Kafka's default
/// `message.max.bytes` (1,000,000), with room for headers and key.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1_000_000 - 1024;

impl Daemon {
    /// Open (or load) the kernel side, read the persisted state, and
    /// discard spool leftovers of a crash.
    pub fn open(config: DaemonConfig) -> Result<Daemon, DaemonError> {
        // Before anything is touched: what is missing is named, at once.
        privileges::check()?;
        privileges::check_proc_root(&config.proc_root)?;
        let host_id = match &config.host_id {
            Some(h) => h.clone(),
            None => read_trimmed("/etc/machine-id")?,
        };
        let boot_id = read_trimmed("/proc/sys/kernel/random/boot_id")?;
        // Created 0700 (an existing directory keeps its mode).
        sysutil::fs::create_private_dir(&config.state_dir).map_err(|e| {
            DaemonError::io(format!("creating {}", config.state_dir.display()), e.source)
        })?;
        let key_path = hostkey::path_of(config.signing_key.as_deref(), &config.state_dir);
        let (key, created) = hostkey::load_or_create(&key_path)?;
        let how = if created { "created" } else { "loaded" };
        log::info!(
            "host key {} {how}: public key {} (enroll it for host {host_id} in the aggregators' enrolled_hosts; `sandmine host-key` prints the entry); wire version {}{}",
            key_path.display(),
            key.public_key(),
            config.max_wire_version,
            if config.max_wire_version >= schemas::wire::SIGNED_VERSION {
                ": every message is signed"
            } else {
                ": messages are not signed (max_wire_version = 5 signs them)"
            }
        );
        let state_file = StateFile::in_dir(&config.state_dir);
        let (mut state, new_stream) = state_file.load(&host_id, &boot_id)?;
        let stream_id = state.stream_id();
        let spool = Spool::open(&config.state_dir.join("spool"), &host_id, &stream_id)?;
        let discarded = spool.discard_after(state.seq)?;
        if discarded > 0 {
            log::warn!(
                "discarded {discarded} spooled messages after seq {} (written but never committed before a crash); their calls are in the next delta",
                state.seq
            );
        }
        if new_stream {
            // No state of this stream says which of the pinned counters'
            // counts were already published (the file was lost, or this is
            // a new boot or host id): counting starts afresh, in a new
            // stream, whose epoch is on disk before anything is counted.
            let dropped = kernel::unpin_all(&config.pin_dir)?;
            if dropped > 0 {
                log::warn!(
                    "no committed state in {}: discarded the pinned counters ({dropped} pinned objects), whose counts since the last commit cannot be attributed; counting afresh as stream {stream_id}",
                    config.state_dir.display()
                );
            }
            state_file.store(&state)?;
        }
        let kernel =
            kernel::open_or_load_in(&config.pin_dir, config.max_workloads, &config.proc_root)?;
        if kernel.fresh() {
            // Counters start from zero: no snapshot applies any more.
            state.keys.clear();
        }
        let resolver = attrib::Resolver::new(
            config.docker_socket.as_deref(),
            config.podman_socket.as_deref(),
            config.cri_socket.as_deref(),
        );
        let mut d = Daemon {
            config,
            kernel,
            resolver,
            spool,
            state,
            state_file,
            metas: HashMap::new(),
            roots: verify::Roots::detect(),
            unverified_total: 0,
            withheld_warned: HashSet::new(),
            denials_dropped_warned: false,
            args_dropped_warned: false,
            executed_dropped_warned: false,
            incomplete_total: 0,
            spool_full_warned: false,
            last_stats: TickStats::default(),
            started_ms: now_ms(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            key,
        };
        d.reap_done()?;
        Ok(d)
    }

    /// The largest message the sink takes (the broker's announced limit,
    /// `transport::Publisher::max_message_bytes`): a delta whose encoding
    /// is larger is cut into several messages of whole containers, each
    /// with its own seq, committed together.
    pub fn set_max_message_bytes(&mut self, limit: usize) {
        self.max_message_bytes = limit;
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

    /// The message stream's id (the kernel boot id and the epoch), sent
    /// as the envelopes' `boot_id`.
    pub fn stream_id(&self) -> String {
        self.state.stream_id()
    }

    /// What the last tick saw.
    pub fn last_stats(&self) -> &TickStats {
        &self.last_stats
    }

    /// Cut a delta at `now_ms` (wall clock) and commit it: [`Daemon::prepare`]
    /// then [`Daemon::commit`]. `Ok(None)`: nothing to publish, or the
    /// spool is full.
    pub fn tick(&mut self, now_ms: u64) -> Result<Option<Envelope>, DaemonError> {
        let Some(pending) = self.prepare(now_ms)? else {
            return Ok(None);
        };
        Ok(self.commit(pending)?.pop())
    }

    /// Steps (1) and (2) of the module documentation: read the kernel,
    /// compute the delta against the committed state, and write it to the
    /// spool (fsynced). `Ok(None)`: nothing to publish, or the spool is
    /// full. What it returns is not publishable until [`Daemon::commit`].
    pub fn prepare(&mut self, now_ms: u64) -> Result<Option<PendingCommit>, DaemonError> {
        let mut stats = TickStats {
            lost_calls: self.kernel.lost_calls()?,
            incomplete_containers: self.incomplete_total,
            unverified_containers: self.unverified_total,
            withheld_containers: self.withheld_warned.len() as u64,
            ..TickStats::default()
        };
        if self.spool_is_full()? {
            stats.spool_full = true;
            self.last_stats = stats;
            return Ok(None);
        }
        let observed = self.observe(now_ms, &mut stats)?;
        let version = self.config.max_wire_version;
        let cut = delta::cut(&self.state, &observed, now_ms, self.started_ms, version);
        if let Some(cut) = &cut {
            self.say_incomplete(cut, version, &mut stats);
            stats.dropped_denials = cut.dropped_denials;
            if cut.dropped_denials > 0 && !self.denials_dropped_warned {
                self.denials_dropped_warned = true;
                log::warn!(
                    "seccomp denials counted ({} in this delta) are not sent: max_wire_version {version} is below {} (denials are feedback on a profile, not evidence for one; the calls are sent as before)",
                    cut.dropped_denials,
                    schemas::wire::DENIALS_VERSION
                );
            }
            stats.dropped_executed = cut.dropped_executed;
            if cut.dropped_executed > 0 && !self.executed_dropped_warned {
                self.executed_dropped_warned = true;
                log::warn!(
                    "files the containers ran ({} new in this delta) are not sent: max_wire_version {version} is below {} (the fleet compiler then analyses each image's command and declared tools only; the calls are sent as before)",
                    cut.dropped_executed,
                    schemas::wire::EXECUTED_VERSION
                );
            }
            stats.dropped_arg_sets = cut.dropped_arg_sets;
            if cut.dropped_arg_sets > 0 && !self.args_dropped_warned {
                self.args_dropped_warned = true;
                log::warn!(
                    "recorded argument values ({} changed sets in this delta) are not sent: max_wire_version {version} is below {} (the compiler then keeps those syscalls allowed by name alone; the calls are sent as before)",
                    cut.dropped_arg_sets,
                    schemas::wire::ARGS_VERSION
                );
            }
        }
        self.last_stats = stats;
        let Some(cut) = cut else {
            return Ok(None);
        };
        let mut state = cut.state;
        let messages = delta::split(cut.envelope, version, self.max_message_bytes)?;
        if messages.len() > 1 {
            log::info!(
                "seq {}: the delta is over the broker's message limit ({} bytes): split into {} messages, seq {} to {}",
                state.seq,
                self.max_message_bytes,
                messages.len(),
                state.seq,
                state.seq + messages.len() as u64 - 1
            );
        }
        // Each message is spooled (fsynced) before the state that counts
        // them all commits; a crash in between leaves files above the
        // committed seq, which `open` deletes.
        for m in &messages {
            let bytes = schemas::wire::encode_as(m, version, Some(&self.key))?;
            self.spool.write(m.seq, &bytes)?;
        }
        state.seq += messages.len() as u64 - 1;
        Ok(Some(PendingCommit {
            base_seq: self.state.seq,
            state,
            messages,
            finished_keys: cut.finished_keys,
        }))
    }

    /// Step (3): atomically replace the state file. Its `rename` is the
    /// commit point; from then on the messages are publishable (they are
    /// returned). Keys whose final delta this commits are deleted from
    /// the kernel.
    pub fn commit(&mut self, pending: PendingCommit) -> Result<Vec<Envelope>, DaemonError> {
        if pending.base_seq != self.state.seq {
            return Err(DaemonError::State(format!(
                "a commit prepared against seq {} cannot apply at seq {}",
                pending.base_seq, self.state.seq
            )));
        }
        self.state_file.store(&pending.state)?;
        self.state = pending.state;
        if pending.finished_keys {
            self.reap_done()?;
        }
        Ok(pending.messages)
    }

    /// Logs the containers `cut` marked incomplete, and (once per
    /// container) those it withheld; counts them in `stats`.
    fn say_incomplete(&mut self, cut: &delta::Cut, version: u16, stats: &mut TickStats) {
        let image = |id: &str| {
            cut.state
                .containers
                .get(id)
                .map_or_else(String::new, |c| c.image.clone())
        };
        for id in &cut.newly_incomplete {
            self.incomplete_total += 1;
            log::warn!(
                "container {id} (image {:?}) lost calls (over capacity: max_workloads = {}, or more distinct syscalls than a slot holds): it is marked incomplete, and the compiler will not count it toward enforcement",
                image(id),
                self.config.max_workloads
            );
        }
        for (id, why) in &cut.newly_unverified {
            self.unverified_total += 1;
            log::warn!(
                "container {id} (image {:?}) is unverified: {why}; its calls are stored marked unverified and never count toward a profile",
                image(id)
            );
        }
        for id in &cut.withheld {
            if self.withheld_warned.insert(id.clone()) {
                let what = match cut.state.containers.get(id) {
                    Some(c) if c.incomplete && version < 3 => "incomplete",
                    _ => "unverified",
                };
                log::warn!(
                    "container {id} (image {:?}) is {what} and wire version {version} (max_wire_version) cannot say so: its calls are withheld from every message",
                    image(id)
                );
            }
        }
        stats.incomplete_containers = self.incomplete_total;
        stats.unverified_containers = self.unverified_total;
        stats.withheld_containers = self.withheld_warned.len() as u64;
    }

    /// Whether the spool holds `spool_max_bytes` or more; warns once per
    /// episode.
    fn spool_is_full(&mut self) -> Result<bool, DaemonError> {
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
            return Ok(true);
        }
        if self.spool_full_warned {
            log::info!(
                "spool has room again ({} MiB): publishing resumes",
                used >> 20
            );
            self.spool_full_warned = false;
        }
        Ok(false)
    }

    /// Reads every workload key the committed state has not finished:
    /// the inputs of [`delta::cut`]. Keys that name no container are
    /// counted in `stats`, and deleted from the kernel once their
    /// namespace is gone (they have no state to commit).
    fn observe(
        &mut self,
        now_ms: u64,
        stats: &mut TickStats,
    ) -> Result<Vec<delta::Observed>, DaemonError> {
        let mono = monotonic_ns();
        let keys = self.kernel.keys()?;
        stats.keys = keys.len();
        let proc_root = self.config.proc_root.clone();
        let live = live_mntns(&proc_root);
        // Denials are read after liveness, like the counts (`observe`
        // below): a workload found gone here has made its last call, so
        // its final delta carries every denial. Read before, a container
        // denied and gone between the two reads lost its denials (its key
        // was finished without them).
        let mut denials = self.kernel.denials()?;
        let mut observed = Vec::new();
        let mut gone_unattributed = Vec::new();
        for key in &keys {
            let meta = self.meta(key, now_ms, mono)?;
            // The namespace's pids, if it is still the key's (inode
            // numbers are reused; the 64-bit id tells).
            let pids = live.get(&meta.mntns_inum).filter(|pids| {
                pids.first().is_some_and(|pid| {
                    crate::ebpf::mntns_id_in(&proc_root, &pid.to_string())
                        .is_ok_and(|id| id == key.mntns_id)
                })
            });
            let alive = pids.is_some();
            let Some(c) = meta.container else {
                stats.unattributed_keys += 1;
                if !alive {
                    gone_unattributed.push(*key);
                }
                continue;
            };
            let key_text = state::key_text(key);
            if self.state.keys.get(&key_text).is_some_and(|k| k.done) {
                continue;
            }
            let usage = self.kernel.observe(key)?;
            let lost_calls = self.kernel.lost_calls_of(key)?;
            let denials = denials.remove(key).unwrap_or_default();
            let new_container =
                (!self.state.containers.contains_key(&c.id)).then(|| self.resolver.resolve(&c));
            let mut executed = schemas::ExecutedFiles::new();
            for pid in pids.into_iter().flatten() {
                crate::executed::sample_pid(&proc_root, &pid.to_string(), &mut executed);
            }
            observed.push(delta::Observed {
                key: key_text,
                container_id: c.id,
                alive,
                created_ms: meta.created_ms,
                usage,
                lost_calls,
                denials,
                new_container,
                unverified: meta.unverified,
                executed,
            });
        }
        // Workloads that found no slot: nothing counted, only their loss
        // and the cgroup they were created in.
        let over = self.kernel.over_capacity()?;
        if !over.is_empty() {
            let live_ids: HashSet<u64> = live
                .values()
                .filter_map(|pids| pids.first())
                .filter_map(|pid| crate::ebpf::mntns_id_in(&proc_root, &pid.to_string()).ok())
                .collect();
            for (key, lost_calls, name) in over {
                let alive = live_ids.contains(&key.mntns_id);
                let (container, unverified) = match self.metas.get(&key) {
                    Some(m) => (m.container.clone(), m.unverified.clone()),
                    None => {
                        // No slot: no recorded parent id (rule 1 then
                        // checks the workload's own cgroup).
                        let container = self.container_of(Some(name));
                        let unverified = container
                            .as_ref()
                            .and_then(|c| self.verify(c, &key, name.hierarchy, 0));
                        let m = KeyMeta {
                            container,
                            unverified,
                            mntns_inum: 0,
                            created_ms: now_ms,
                        };
                        self.metas.insert(key, m.clone());
                        (m.container, m.unverified)
                    }
                };
                let Some(c) = container else {
                    stats.unattributed_keys += 1;
                    if !alive {
                        gone_unattributed.push(key);
                    }
                    continue;
                };
                let key_text = state::key_text(&key);
                if self.state.keys.get(&key_text).is_some_and(|k| k.done) {
                    continue;
                }
                let created_ms = self.metas.get(&key).map_or(now_ms, |m| m.created_ms);
                let new_container =
                    (!self.state.containers.contains_key(&c.id)).then(|| self.resolver.resolve(&c));
                observed.push(delta::Observed {
                    key: key_text,
                    container_id: c.id,
                    alive,
                    created_ms,
                    usage: schemas::Observation::default(),
                    lost_calls,
                    denials: denials.remove(&key).unwrap_or_default(),
                    new_container,
                    unverified,
                    executed: schemas::ExecutedFiles::new(),
                });
            }
        }
        for k in gone_unattributed {
            self.kernel.untrack(&k)?;
            self.metas.remove(&k);
        }
        Ok(observed)
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
            if let Some(k) = state::key_from_text(&t) {
                self.kernel.untrack(&k)?;
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
        // (`withheld_warned` keeps its ids: it is the count of withheld
        // containers since start, a few bytes each.)
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
        let container = self.container_of(name);
        let unverified = match (&container, name) {
            (Some(c), Some(n)) => {
                self.verify(c, key, n.hierarchy, info.map_or(0, |i| i.parent_cgroup_id))
            }
            _ => None,
        };
        let (inum, created_ms) = match info {
            Some(i) => (
                i.mntns_inum,
                wall_ms.saturating_sub(mono_ns.saturating_sub(i.created_ns) / 1_000_000),
            ),
            None => (0, wall_ms),
        };
        let m = KeyMeta {
            container,
            unverified,
            mntns_inum: inum,
            created_ms,
        };
        self.metas.insert(*key, m.clone());
        Ok(m)
    }
}

impl Daemon {
    /// The container a workload's cgroup names, if it is one this daemon
    /// publishes: under a parent its runtime owns ([`cgpath`]), and under
    /// `cgroup_parent` when that is set.
    fn container_of(&self, name: Option<CgroupName>) -> Option<cgpath::CgroupContainer> {
        let only_parent = self.config.cgroup_parent.as_deref();
        let n = name?;
        if n.hierarchy == 0 || only_parent.is_some_and(|p| p != n.parent_str()) {
            return None;
        }
        cgpath::parse_recorded(&n.parent_str(), &n.leaf_str(), n.level, only_parent)
    }

    /// [`verify::verify`] of a key's container: `Some(why)` when it is
    /// unverified.
    fn verify(
        &self,
        c: &cgpath::CgroupContainer,
        key: &WorkloadKey,
        hierarchy: u32,
        parent_cgroup_id: u64,
    ) -> Option<String> {
        let rec = verify::Recorded {
            hierarchy,
            cgroup_id: key.cgroup_id,
            parent_cgroup_id,
        };
        verify::verify(&self.roots, c, rec, &self.resolver.check(c)).err()
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
    fn proc_root_defaults_to_proc_and_is_configurable() {
        assert_eq!(DaemonConfig::default().proc_root, PathBuf::from("/proc"));
        let c: DaemonConfig = serde_json::from_str(r#"{"proc_root":"/host/proc"}"#).unwrap();
        assert_eq!(c.proc_root, PathBuf::from("/host/proc"));
        let e = serde_json::from_str::<DaemonConfig>(r#"{"procroot":"/host/proc"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `procroot`"), "{e}");
    }

    /// The live namespaces come from the proc root given, not from /proc:
    /// a tree of `PID/ns/mnt` links shaped like procfs's.
    #[test]
    fn live_namespaces_are_read_under_proc_root() {
        let root = tempfile::tempdir().unwrap();
        for (pid, link) in [
            ("7", "mnt:[4026530001]"),
            ("10", "mnt:[4026530001]"),
            ("9", "mnt:[4026530002]"),
        ] {
            let ns = root.path().join(pid).join("ns");
            std::fs::create_dir_all(&ns).unwrap();
            std::os::unix::fs::symlink(link, ns.join("mnt")).unwrap();
        }
        std::fs::create_dir_all(root.path().join("sys")).unwrap();
        let live = live_mntns(root.path());
        assert_eq!(
            live,
            HashMap::from([(4_026_530_001, vec![7, 10]), (4_026_530_002, vec![9])])
        );
    }

    #[test]
    fn max_wire_version_defaults_to_the_newest_unsigned_and_is_checked() {
        use schemas::wire::{CURRENT_VERSION, UNSIGNED_VERSION};
        // A rolling upgrade never sends v5 to an aggregator that cannot
        // read it: signing is the operator's switch (docs/CONFIG.md).
        assert_eq!(DaemonConfig::default().max_wire_version, UNSIGNED_VERSION);
        assert_eq!(UNSIGNED_VERSION, 4);
        assert_eq!(CURRENT_VERSION, 8);
        assert_eq!(DaemonConfig::default().signing_key, None);
        for v in [1u16, 2, 3, 4, 5, 6, 7, 8] {
            let c: DaemonConfig =
                serde_json::from_str(&format!(r#"{{"max_wire_version":{v}}}"#)).unwrap();
            assert_eq!(c.max_wire_version, v);
        }
        for v in [0u64, 9, 65539] {
            let e = serde_json::from_str::<DaemonConfig>(&format!(r#"{{"max_wire_version":{v}}}"#))
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(&format!(
                    "max_wire_version {v} is not a wire version this collector writes (1 to 8)"
                )),
                "{v}: {e}"
            );
        }
        assert!(serde_json::from_str::<DaemonConfig>(r#"{"max_wire_version":-1}"#).is_err());
        let e = serde_json::from_str::<DaemonConfig>(r#"{"max_wire_version":9}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "max_wire_version 9 is not a wire version this collector writes (1 to 8) at line 1 column 22"
        );
        let c: DaemonConfig = serde_json::from_str(r#"{"signing_key":"/k"}"#).unwrap();
        assert_eq!(c.signing_key, Some(PathBuf::from("/k")));
    }
}
