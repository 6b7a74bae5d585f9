//! The one place that decides what rows an envelope becomes, and how rows
//! read back become [`ImageObservations`]. Both stores use it, which is
//! what makes their answers identical.
//!
//! Rows are a pure function of one envelope: inserting an envelope again
//! (redelivery, replay) produces byte-identical rows, which the stores'
//! replacing keys collapse.

use schemas::fleet::{ContainerIncidence, ImageObservations, IncidenceEntry, SyscallTotals};
use schemas::wire::Envelope;
use schemas::{Abi, Phase, PhaseSet};
use schemas::{ArgEvidence, ArgField, ArgOverflow, ArgRecorded, ArgTotals};
use schemas::{ExecKind, RanFiles};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// An hour in ms: the refresh period of per-container incidence rows.
pub const HOUR_MS: u64 = 3_600_000;

/// The largest call count a store keeps or answers: SQLite's largest
/// integer. Every sum of calls saturates here, in both stores, so that a
/// host sending many messages with the largest `calls` the wire accepts
/// can neither overflow SQLite (whose `sum` then fails every query) nor
/// wrap ClickHouse's `sum`, and both stores still answer alike.
pub const MAX_STORED_CALLS: u64 = i64::MAX as u64;

/// `a + b`, saturating at [`MAX_STORED_CALLS`].
pub fn add_calls(a: u64, b: u64) -> u64 {
    a.saturating_add(b).min(MAX_STORED_CALLS)
}

/// Stores sum calls in SQL as two halves, `sum(calls >> 32)` and
/// `sum(calls & 0xffffffff)`: each term is below 2^32, so neither sum can
/// overflow a 64-bit integer (that would take 2^32 rows), on any
/// ClickHouse or SQLite. This puts the halves together, saturating.
pub fn calls_from_halves(high: u64, low: u64) -> u64 {
    add_calls(high.saturating_mul(1 << 32), low)
}

/// Calls of one syscall by the containers of one image in one envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, clickhouse::Row)]
pub struct CallRow {
    pub image: String,
    pub abi: u8,
    pub nr: u32,
    pub host_id: String,
    pub boot_id: String,
    pub seq: u64,
    pub calls: u64,
    pub phases: u8,
    /// Latest `last_seen_ms` of the containers that made the call in this
    /// interval (at least their first use of it).
    pub last_seen_ms: u64,
    pub interval_end_ms: u64,
}

/// One container's use of one syscall, written only when it carries news
/// (see [`incidence_due`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, clickhouse::Row)]
pub struct IncidenceRow {
    pub image: String,
    pub abi: u8,
    pub nr: u32,
    pub host_id: String,
    pub boot_id: String,
    pub container_id: String,
    pub phases: u8,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
}

/// One container as of one envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, clickhouse::Row)]
pub struct ContainerRow {
    pub image: String,
    pub host_id: String,
    pub boot_id: String,
    pub container_id: String,
    pub runtime: String,
    pub image_digest: String,
    pub pod_namespace: String,
    pub pod_name: String,
    pub pod_container: String,
    pub seccomp: String,
    pub started_at_ms: u64,
    pub last_seen_ms: u64,
    /// 0 while running.
    pub exited_at_ms: u64,
}

/// A container some of whose calls were lost
/// (`ContainerDelta::incomplete`), written by every envelope that says
/// so. Presence is the flag: rows are only ever added, so once a
/// container is incomplete it stays so, whatever the order, grouping or
/// merges of its messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, clickhouse::Row)]
pub struct IncompleteRow {
    pub image: String,
    pub host_id: String,
    pub boot_id: String,
    pub container_id: String,
}

/// A container whose cgroup was not provably its runtime's
/// (`ContainerDelta::unverified`): like [`IncompleteRow`], presence is the
/// flag, and rows are only ever added.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, clickhouse::Row)]
pub struct UnverifiedRow {
    pub image: String,
    pub host_id: String,
    pub boot_id: String,
    pub container_id: String,
}

/// The denials of one kind (abi, nr, action, errno) by one container
/// under one profile version (`SeccompFilter::version`) in one envelope
/// (wire v6). Per message, like [`CallRow`]: exactly once by (host, boot,
/// seq), so that a redelivery rewrites the same row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, clickhouse::Row)]
pub struct DenialRow {
    pub image: String,
    pub abi: u8,
    pub nr: u32,
    /// `schemas::wire::action_code`: 0 errno, 1 trap, 2 kill.
    pub action: u8,
    pub errno: u16,
    pub profile: String,
    pub host_id: String,
    pub boot_id: String,
    pub container_id: String,
    pub seq: u64,
    pub count: u64,
    pub interval_end_ms: u64,
}

/// One recorded value of one syscall's arguments in one container (wire
/// v7, migration 6). A container's set is sent whole whenever it grows,
/// so the same row comes again with a later `first_seen_ms`: the key
/// leaves it out and readers take the least (SQLite keeps it so; in
/// ClickHouse a merge keeps one of the copies).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, clickhouse::Row)]
pub struct ArgValueRow {
    pub image: String,
    pub abi: u8,
    pub nr: u32,
    pub host_id: String,
    pub boot_id: String,
    pub container_id: String,
    /// [`fields_text`]
    pub fields: String,
    /// [`value_text`]
    pub value: String,
    /// The end of the interval of the message that carried it.
    pub first_seen_ms: u64,
}

/// One container recorded a set for one syscall (wire v7, migration 6):
/// presence says its values are known, `overflow` (cumulative, so the
/// stores keep the largest) says some were not recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, clickhouse::Row)]
pub struct ArgSetRow {
    pub image: String,
    pub abi: u8,
    pub nr: u32,
    pub host_id: String,
    pub boot_id: String,
    pub container_id: String,
    /// [`fields_text`]
    pub fields: String,
    pub overflow: u64,
    /// The end of the interval of the message that carried it.
    pub last_seen_ms: u64,
}

/// One file one container ran as code (wire v8, migration 7): its path
/// inside the container, how it ran (`ExecKind::code`: 0 exec, 1
/// mapped), and the device and inode the path named. Each file is sent
/// once per container; a redelivered message writes the same row again,
/// which the stores' key collapses (a set union).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, clickhouse::Row)]
pub struct ExecutedRow {
    pub image: String,
    pub host_id: String,
    pub boot_id: String,
    pub container_id: String,
    pub path: String,
    /// `ExecKind::code`
    pub kind: u8,
    pub dev: u64,
    pub ino: u64,
    /// The end of the interval of the message that carried it (not the
    /// container's `last_seen_ms`: like `ArgValueRow`'s, a property of the
    /// message, so a redelivery rewrites the same row). The key leaves it
    /// out: a file sent again keeps the earliest in SQLite, one of the
    /// copies after a ClickHouse merge.
    pub first_seen_ms: u64,
}

/// The rows of a batch of envelopes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rows {
    pub calls: Vec<CallRow>,
    pub incidence: Vec<IncidenceRow>,
    pub containers: Vec<ContainerRow>,
    pub incomplete: Vec<IncompleteRow>,
    pub unverified: Vec<UnverifiedRow>,
    pub denials: Vec<DenialRow>,
    pub arg_values: Vec<ArgValueRow>,
    pub arg_sets: Vec<ArgSetRow>,
    pub executed: Vec<ExecutedRow>,
}

/// The stored text of a set's fields: `index:mask` with the mask in
/// lowercase hex, comma-separated, in order (`0:ffffffff,1:f`).
pub fn fields_text(fields: &[ArgField]) -> String {
    fields
        .iter()
        .map(|f| format!("{}:{:x}", f.index, f.mask))
        .collect::<Vec<_>>()
        .join(",")
}

/// The stored text of a value: its elements in lowercase hex,
/// comma-separated (`2,1`; `ffffffff`).
pub fn value_text(value: &[u32]) -> String {
    value
        .iter()
        .map(|x| format!("{x:x}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// [`fields_text`] read back.
pub fn parse_fields(s: &str) -> Result<Vec<ArgField>, BadStoredText> {
    let bad = || BadStoredText(s.to_string());
    s.split(',')
        .map(|f| {
            let (i, m) = f.split_once(':').ok_or_else(bad)?;
            Ok(ArgField {
                index: i.parse().map_err(|_| bad())?,
                mask: u32::from_str_radix(m, 16).map_err(|_| bad())?,
            })
        })
        .collect()
}

/// [`value_text`] read back.
pub fn parse_value(s: &str) -> Result<Vec<u32>, BadStoredText> {
    s.split(',')
        .map(|x| u32::from_str_radix(x, 16).map_err(|_| BadStoredText(s.to_string())))
        .collect()
}

/// Whether a container's use of a syscall in this envelope is worth an
/// incidence row. Writing one per interval would be 10,000 hosts x 50
/// containers x ~80 syscalls every 10 s; instead a row is written when:
/// - the syscall is new for the container (`first_seen_ms` in this
///   interval): the first seen is exact;
/// - the container exited in this envelope: its final last seen;
/// - the interval ends in a new hour (exactly one interval per hour when
///   intervals are contiguous): last seen refreshed hourly;
/// - it was seen in a phase other than `Image` (runtime set-up, `docker
///   exec`): rare, and the profile must know them exactly.
///
/// So a per-container last seen (and the `Image` phase bit) has hour
/// precision; everything image-wide is exact.
pub fn incidence_due(e: &Envelope, exited: bool, first_seen_ms: u64, phases: PhaseSet) -> bool {
    let new = first_seen_ms >= e.interval_start_ms;
    let hour_crossed = e.interval_start_ms / HOUR_MS != e.interval_end_ms / HOUR_MS;
    let unusual = phases.0 & !Phase::Image.bit() != 0;
    new || exited || hour_crossed || unusual
}

/// Explodes envelopes into rows. Deterministic: same envelope, same rows.
pub fn explode(batch: &[Envelope]) -> Rows {
    let mut out = Rows::default();
    for e in batch {
        // (image, abi, nr) -> (calls, phases, last_seen)
        let mut calls: BTreeMap<(&str, u8, u32), (u64, u8, u64)> = BTreeMap::new();
        for c in &e.containers {
            let r = &c.container;
            let exited = c.exited_at_ms.is_some();
            for s in &c.syscalls {
                let abi = s.abi.code();
                let last = c.last_seen_ms.max(s.first_seen_ms);
                let v = calls.entry((r.image.as_str(), abi, s.nr)).or_default();
                v.0 = add_calls(v.0, s.calls);
                v.1 |= s.phases.0;
                v.2 = v.2.max(last);
                if incidence_due(e, exited, s.first_seen_ms, s.phases) {
                    out.incidence.push(IncidenceRow {
                        image: r.image.clone(),
                        abi,
                        nr: s.nr,
                        host_id: e.host_id.clone(),
                        boot_id: e.boot_id.clone(),
                        container_id: r.id.clone(),
                        phases: s.phases.0,
                        first_seen_ms: s.first_seen_ms,
                        last_seen_ms: last,
                    });
                }
            }
            let (ns, pod, pc) = match &r.pod {
                Some(p) => (p.namespace.clone(), p.pod.clone(), p.container.clone()),
                None => Default::default(),
            };
            out.containers.push(ContainerRow {
                image: r.image.clone(),
                host_id: e.host_id.clone(),
                boot_id: e.boot_id.clone(),
                container_id: r.id.clone(),
                runtime: r.runtime.clone(),
                image_digest: r.image_digest.clone(),
                pod_namespace: ns,
                pod_name: pod,
                pod_container: pc,
                seccomp: r.seccomp.as_text(),
                started_at_ms: c.started_at_ms,
                last_seen_ms: c.last_seen_ms,
                exited_at_ms: c.exited_at_ms.unwrap_or(0),
            });
            if c.incomplete {
                out.incomplete.push(IncompleteRow {
                    image: r.image.clone(),
                    host_id: e.host_id.clone(),
                    boot_id: e.boot_id.clone(),
                    container_id: r.id.clone(),
                });
            }
            if c.unverified {
                out.unverified.push(UnverifiedRow {
                    image: r.image.clone(),
                    host_id: e.host_id.clone(),
                    boot_id: e.boot_id.clone(),
                    container_id: r.id.clone(),
                });
            }
            for (k, a) in &c.args {
                let fields = fields_text(&a.fields);
                for v in &a.values {
                    out.arg_values.push(ArgValueRow {
                        image: r.image.clone(),
                        abi: k.abi.code(),
                        nr: k.nr,
                        host_id: e.host_id.clone(),
                        boot_id: e.boot_id.clone(),
                        container_id: r.id.clone(),
                        fields: fields.clone(),
                        value: value_text(v),
                        first_seen_ms: e.interval_end_ms,
                    });
                }
                out.arg_sets.push(ArgSetRow {
                    image: r.image.clone(),
                    abi: k.abi.code(),
                    nr: k.nr,
                    host_id: e.host_id.clone(),
                    boot_id: e.boot_id.clone(),
                    container_id: r.id.clone(),
                    fields,
                    overflow: a.overflow.min(MAX_STORED_CALLS),
                    last_seen_ms: e.interval_end_ms,
                });
            }
            for f in &c.executed {
                out.executed.push(ExecutedRow {
                    image: r.image.clone(),
                    host_id: e.host_id.clone(),
                    boot_id: e.boot_id.clone(),
                    container_id: r.id.clone(),
                    path: f.path.clone(),
                    kind: f.kind.code(),
                    dev: f.dev,
                    ino: f.ino,
                    first_seen_ms: e.interval_end_ms,
                });
            }
            let profile = r.seccomp.version();
            for (k, n) in &c.denials {
                let (action, errno) = schemas::wire::action_code(k.action);
                out.denials.push(DenialRow {
                    image: r.image.clone(),
                    abi: k.abi.code(),
                    nr: k.nr,
                    action,
                    errno,
                    profile: profile.clone(),
                    host_id: e.host_id.clone(),
                    boot_id: e.boot_id.clone(),
                    container_id: r.id.clone(),
                    seq: e.seq,
                    count: (*n).min(MAX_STORED_CALLS),
                    interval_end_ms: e.interval_end_ms,
                });
            }
        }
        for ((image, abi, nr), (n, phases, last)) in calls {
            out.calls.push(CallRow {
                image: image.to_string(),
                abi,
                nr,
                host_id: e.host_id.clone(),
                boot_id: e.boot_id.clone(),
                seq: e.seq,
                calls: n,
                phases,
                last_seen_ms: last,
                interval_end_ms: e.interval_end_ms,
            });
        }
    }
    out
}

/// One container of an image, merged over its rows.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, clickhouse::Row)]
pub struct ContainerSummary {
    pub host_id: String,
    pub boot_id: String,
    pub container_id: String,
    pub started_at_ms: u64,
    pub last_seen_ms: u64,
    pub seccomp: String,
    pub image_digest: String,
    /// 1 when `incomplete_containers` has a row of it.
    pub incomplete: u8,
    /// 1 when `unverified_containers` has a row of it.
    pub unverified: u8,
}

/// One syscall of an image: exact totals from the `calls` rows, the calls
/// summed in halves (see [`calls_from_halves`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, clickhouse::Row)]
pub struct CallSummary {
    pub abi: u8,
    pub nr: u32,
    /// `sum(calls >> 32)`
    pub calls_high: u64,
    /// `sum(calls & 0xffffffff)`
    pub calls_low: u64,
    pub phases: u8,
    pub last_seen_ms: u64,
}

/// One container's use of one syscall, merged over its incidence rows.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, clickhouse::Row)]
pub struct IncidenceSummary {
    pub host_id: String,
    pub boot_id: String,
    pub container_id: String,
    pub abi: u8,
    pub nr: u32,
    pub phases: u8,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
}

/// One argument value of an image's syscall: the distinct hosts and
/// containers, verified ones only, that recorded it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, clickhouse::Row)]
pub struct ArgValueSummary {
    pub abi: u8,
    pub nr: u32,
    pub fields: String,
    pub value: String,
    pub hosts: u64,
    pub containers: u64,
}

/// One syscall of an image with argument sets: the verified containers
/// that recorded one, and the hosts and containers among them whose
/// overflow is not 0.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, clickhouse::Row)]
pub struct ArgSetSummary {
    pub abi: u8,
    pub nr: u32,
    pub containers: u64,
    pub overflow_hosts: u64,
    pub overflow_containers: u64,
}

/// Stored argument text ([`fields_text`], [`value_text`]) that this build
/// cannot read: the store was written by a newer sandmine.
#[derive(Debug, thiserror::Error)]
#[error("stored argument text {0:?} is unknown to this build (written by a newer sandmine?)")]
pub struct BadStoredText(pub String);

/// The image's [`ArgEvidence`] from the two argument queries, the same way
/// for both stores, sorted as its fields document.
pub fn assemble_args(
    values: Vec<ArgValueSummary>,
    sets: Vec<ArgSetSummary>,
) -> Result<ArgEvidence, super::StoreError> {
    let mut e = ArgEvidence::default();
    for v in values {
        e.values.push(ArgTotals {
            abi: abi(v.abi)?,
            nr: v.nr,
            fields: parse_fields(&v.fields)?,
            value: parse_value(&v.value)?,
            hosts: v.hosts,
            containers: v.containers,
        });
    }
    for s in sets {
        let a = abi(s.abi)?;
        e.recorded.push(ArgRecorded {
            abi: a,
            nr: s.nr,
            containers: s.containers,
        });
        if s.overflow_containers > 0 {
            e.overflow.push(ArgOverflow {
                abi: a,
                nr: s.nr,
                hosts: s.overflow_hosts,
                containers: s.overflow_containers,
            });
        }
    }
    e.values.sort();
    e.overflow.sort();
    e.recorded.sort();
    Ok(e)
}

/// One file an image's verified containers ran as code: each (kind,
/// path) once, whichever containers, devices and inodes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, clickhouse::Row)]
pub struct ExecutedSummary {
    /// `ExecKind::code`
    pub kind: u8,
    pub path: String,
}

/// A stored executed-file kind that this build does not know: the store
/// was written by a newer sandmine.
#[derive(Debug, thiserror::Error)]
#[error("stored executed-file kind {0} is unknown to this build (written by a newer sandmine?)")]
pub struct UnknownExecKind(pub u8);

/// The image's [`RanFiles`] from the executed-files query (verified
/// containers only: the query leaves out those in
/// `unverified_containers`, as the argument queries do), the same way for
/// both stores.
pub fn assemble_executed(files: Vec<ExecutedSummary>) -> Result<RanFiles, UnknownExecKind> {
    let mut out = RanFiles::default();
    for f in files {
        let kind = ExecKind::from_code(f.kind).ok_or(UnknownExecKind(f.kind))?;
        out.insert(kind, f.path);
    }
    Ok(out)
}

/// A stored ABI code that this build does not know: the store was written
/// by a newer sandmine.
#[derive(Debug, thiserror::Error)]
#[error("stored ABI code {0} is unknown to this build (written by a newer sandmine?)")]
pub struct UnknownAbi(pub u8);

fn abi(code: u8) -> Result<Abi, UnknownAbi> {
    Abi::from_code(code).ok_or(UnknownAbi(code))
}

type ContainerKey = (String, String, String);

/// Builds the answer from the three row sets, the same way for both
/// stores. `None` when the image has no container.
pub fn assemble(
    image: &str,
    containers: Vec<ContainerSummary>,
    calls: Vec<CallSummary>,
    incidence: Vec<IncidenceSummary>,
) -> Result<Option<ImageObservations>, UnknownAbi> {
    if containers.is_empty() {
        return Ok(None);
    }
    let hosts: BTreeSet<&str> = containers.iter().map(|c| c.host_id.as_str()).collect();
    let digests: BTreeSet<&str> = containers
        .iter()
        .map(|c| c.image_digest.as_str())
        .filter(|d| !d.is_empty())
        .collect();
    let container_ms: u64 = containers
        .iter()
        .map(|c| c.last_seen_ms.saturating_sub(c.started_at_ms))
        .fold(0u64, u64::saturating_add);
    let first_seen_ms = containers
        .iter()
        .map(|c| c.started_at_ms)
        .min()
        .unwrap_or(0);
    let last_seen_ms = containers.iter().map(|c| c.last_seen_ms).max().unwrap_or(0);

    // Per syscall: hosts, containers, first seen from incidence.
    struct Inc<'a> {
        hosts: BTreeSet<&'a str>,
        containers: u64,
        first: u64,
    }
    let mut per_sys: BTreeMap<(u8, u32), Inc> = BTreeMap::new();
    let mut per_container: HashMap<ContainerKey, Vec<IncidenceEntry>> = HashMap::new();
    for i in &incidence {
        let e = per_sys.entry((i.abi, i.nr)).or_insert(Inc {
            hosts: BTreeSet::new(),
            containers: 0,
            first: u64::MAX,
        });
        e.hosts.insert(i.host_id.as_str());
        // Rows are grouped by (container, abi, nr): one per container.
        e.containers += 1;
        e.first = e.first.min(i.first_seen_ms);
        per_container
            .entry((i.host_id.clone(), i.boot_id.clone(), i.container_id.clone()))
            .or_default()
            .push(IncidenceEntry {
                abi: abi(i.abi)?,
                nr: i.nr,
                phases: PhaseSet(i.phases),
                first_seen_ms: i.first_seen_ms,
                last_seen_ms: i.last_seen_ms,
            });
    }
    let mut syscalls = Vec::with_capacity(calls.len());
    for c in &calls {
        let inc = per_sys.get(&(c.abi, c.nr));
        syscalls.push(SyscallTotals {
            abi: abi(c.abi)?,
            nr: c.nr,
            hosts: inc.map_or(0, |i| i.hosts.len() as u64),
            containers: inc.map_or(0, |i| i.containers),
            calls: calls_from_halves(c.calls_high, c.calls_low),
            first_seen_ms: inc.map_or(c.last_seen_ms, |i| i.first.min(c.last_seen_ms)),
            last_seen_ms: c.last_seen_ms,
            phases: PhaseSet(c.phases),
        });
    }
    syscalls.sort_by_key(|s| (s.abi, s.nr));

    let mut list: Vec<ContainerIncidence> = containers
        .iter()
        .map(|c| {
            let key = (c.host_id.clone(), c.boot_id.clone(), c.container_id.clone());
            let mut sys = per_container.remove(&key).unwrap_or_default();
            sys.sort_by_key(|s| (s.abi, s.nr));
            ContainerIncidence {
                host_id: c.host_id.clone(),
                boot_id: c.boot_id.clone(),
                container_id: c.container_id.clone(),
                started_at_ms: c.started_at_ms,
                last_seen_ms: c.last_seen_ms,
                seccomp: c.seccomp.clone(),
                incomplete: c.incomplete != 0,
                unverified: c.unverified != 0,
                syscalls: sys,
            }
        })
        .collect();
    list.sort_by(|a, b| {
        (a.started_at_ms, &a.host_id, &a.boot_id, &a.container_id).cmp(&(
            b.started_at_ms,
            &b.host_id,
            &b.boot_id,
            &b.container_id,
        ))
    });

    Ok(Some(ImageObservations {
        image: image.to_string(),
        digests: digests.into_iter().map(str::to_string).collect(),
        hosts: hosts.len() as u64,
        containers: containers.len() as u64,
        container_seconds: container_ms / 1000,
        first_seen_ms,
        last_seen_ms,
        syscalls,
        incidence: list,
        out_of_range: 0,
        args: Default::default(),
        executed: Default::default(),
    }))
}
