//! The analytics questions (`sandmine query uses|drift|surface|usage`):
//! their answer types, and the code that turns both stores' raw rows into
//! answers, so that ClickHouse and the embedded store answer alike. The SQL
//! is in `aggregator/sql/clickhouse/q_*.sql` and `embedded.rs`; the
//! definitions are in `docs/ANALYTICS.md`.

use super::rows::{calls_from_halves, UnknownAbi, HOUR_MS};
use schemas::fleet::ImageObservations;
use schemas::{Abi, DenyAction};
use serde::Serialize;
use std::collections::BTreeMap;

/// The latest time a window may end: SQLite's largest integer (times are
/// bound as i64 there).
pub const END_OF_TIME_MS: u64 = i64::MAX as u64;

/// A time window, widened to whole hours (the embedded store's rollup
/// granularity): `[floor_hour(since), ceil_hour(until))`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    pub since_ms: Option<u64>,
    pub until_ms: Option<u64>,
}

impl Window {
    /// Start of the first hour in the window (ms).
    pub fn from_hour_ms(&self) -> u64 {
        self.since_ms.map_or(0, |s| s / HOUR_MS * HOUR_MS)
    }

    /// End of the last hour in the window (ms, exclusive).
    pub fn to_hour_ms(&self) -> u64 {
        self.until_ms.map_or(END_OF_TIME_MS, |u| {
            u.div_ceil(HOUR_MS)
                .saturating_mul(HOUR_MS)
                .min(END_OF_TIME_MS)
        })
    }
}

/// One image's use of one syscall in a window (`query uses`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SyscallUse {
    pub image: String,
    /// Distinct hosts and containers whose recorded use of the syscall
    /// (first seen to last seen, from `incidence`) overlaps the window.
    pub hosts: u64,
    pub containers: u64,
    /// Calls in intervals that ended in the window's hours (exact).
    pub calls: u64,
    /// Latest last seen of those calls; 0 when none was in the window.
    pub last_seen_ms: u64,
}

/// Raw calls of one syscall per image in a window: (image, calls high
/// half, low half, last seen).
pub type UsesCallsRow = (String, u64, u64, u64);
/// Raw incidence of one syscall per image in a window: (image, hosts,
/// containers).
pub type UsesContainersRow = (String, u64, u64);

/// Joins the two raw row sets (each sorted or not) into one row per image
/// that had calls or containers in the window, sorted by image.
pub fn assemble_uses(
    calls: Vec<UsesCallsRow>,
    containers: Vec<UsesContainersRow>,
) -> Vec<SyscallUse> {
    let mut m: BTreeMap<String, SyscallUse> = BTreeMap::new();
    for (image, high, low, last) in calls {
        let e = m.entry(image.clone()).or_insert_with(|| SyscallUse {
            image,
            ..SyscallUse::default()
        });
        e.calls = calls_from_halves(high, low);
        e.last_seen_ms = last;
    }
    for (image, hosts, n) in containers {
        let e = m.entry(image.clone()).or_insert_with(|| SyscallUse {
            image,
            ..SyscallUse::default()
        });
        e.hosts = hosts;
        e.containers = n;
    }
    m.into_values()
        .filter(|u| u.calls > 0 || u.containers > 0)
        .collect()
}

/// What drift is measured against (`query drift`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DriftBase {
    /// New: first seen at or after this time; gone: last seen before it.
    Since(u64),
    /// New: used by containers of digest `to` and by none of `from`; gone:
    /// the other way round. A container's digest is that of its latest
    /// row (see docs/STORE.md).
    Digests { from: String, to: String },
}

/// One syscall that came or went, with what the side that has it saw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DriftRow {
    pub abi: Abi,
    pub nr: u32,
    pub hosts: u64,
    pub containers: u64,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
}

/// New and gone syscalls of an image, each sorted by (abi, nr).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub new: Vec<DriftRow>,
    pub gone: Vec<DriftRow>,
}

/// Raw use of one syscall by the containers of one digest: (digest, abi
/// code, nr, hosts, containers, first seen, last seen).
pub type DigestSyscallRow = (String, u8, u32, u64, u64, u64, u64);

/// Drift since a time, from an image's observations.
pub fn drift_since(obs: &ImageObservations, since_ms: u64) -> Drift {
    let row = |s: &schemas::fleet::SyscallTotals| DriftRow {
        abi: s.abi,
        nr: s.nr,
        hosts: s.hosts,
        containers: s.containers,
        first_seen_ms: s.first_seen_ms,
        last_seen_ms: s.last_seen_ms,
    };
    Drift {
        new: obs
            .syscalls
            .iter()
            .filter(|s| s.first_seen_ms >= since_ms)
            .map(row)
            .collect(),
        gone: obs
            .syscalls
            .iter()
            .filter(|s| s.last_seen_ms < since_ms)
            .map(row)
            .collect(),
    }
}

/// Drift between two digests, from the raw per-digest rows of both.
pub fn drift_between(
    rows: Vec<DigestSyscallRow>,
    from: &str,
    to: &str,
) -> Result<Drift, UnknownAbi> {
    let mut a: BTreeMap<(Abi, u32), DriftRow> = BTreeMap::new();
    let mut b: BTreeMap<(Abi, u32), DriftRow> = BTreeMap::new();
    for (digest, abi, nr, hosts, containers, first, last) in rows {
        let abi = Abi::from_code(abi).ok_or(UnknownAbi(abi))?;
        let r = DriftRow {
            abi,
            nr,
            hosts,
            containers,
            first_seen_ms: first,
            last_seen_ms: last,
        };
        if digest == from {
            a.insert((abi, nr), r.clone());
        }
        if digest == to {
            b.insert((abi, nr), r);
        }
    }
    Ok(Drift {
        new: b
            .iter()
            .filter(|(k, _)| !a.contains_key(k))
            .map(|(_, r)| r.clone())
            .collect(),
        gone: a
            .iter()
            .filter(|(k, _)| !b.contains_key(k))
            .map(|(_, r)| r.clone())
            .collect(),
    })
}

/// One hour of an image's use of one syscall, or of all its syscalls
/// (`query usage`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UsageRow {
    /// Start of the hour (ms since the epoch, UTC).
    pub hour_ms: u64,
    /// Calls in intervals that ended in the hour (exact).
    pub calls: u64,
    /// Hosts that made any of those calls (exact).
    pub hosts: u64,
    /// Containers whose first use (of the syscall; of any syscall when
    /// none is given) was in the hour: the convergence curve.
    pub new_containers: u64,
}

/// Raw calls per hour: (hour, calls high half, low half, hosts).
pub type UsageCallsRow = (u64, u64, u64, u64);
/// Raw first uses per hour: (hour, containers).
pub type UsageFirstRow = (u64, u64);

/// One row per hour that had calls or first uses, sorted by hour.
pub fn assemble_usage(calls: Vec<UsageCallsRow>, first: Vec<UsageFirstRow>) -> Vec<UsageRow> {
    let mut m: BTreeMap<u64, UsageRow> = BTreeMap::new();
    for (hour, high, low, hosts) in calls {
        let e = m.entry(hour).or_insert_with(|| UsageRow {
            hour_ms: hour,
            ..UsageRow::default()
        });
        e.calls = calls_from_halves(high, low);
        e.hosts = hosts;
    }
    for (hour, n) in first {
        m.entry(hour)
            .or_insert_with(|| UsageRow {
                hour_ms: hour,
                ..UsageRow::default()
            })
            .new_containers = n;
    }
    m.into_values().collect()
}

/// One image's use of one syscall in a window: `query uses` for every
/// syscall at once (`query breaks`). The same definitions as
/// [`SyscallUse`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImageSyscallUse {
    pub image: String,
    pub abi: Abi,
    pub nr: u32,
    pub hosts: u64,
    pub containers: u64,
    pub calls: u64,
    pub last_seen_ms: u64,
}

impl ImageSyscallUse {
    fn new(image: String, abi: Abi, nr: u32) -> ImageSyscallUse {
        ImageSyscallUse {
            image,
            abi,
            nr,
            hosts: 0,
            containers: 0,
            calls: 0,
            last_seen_ms: 0,
        }
    }
}

/// Raw calls per (image, abi code, nr) in a window: (image, abi, nr,
/// calls high half, low half, last seen).
pub type WindowCallsRow = (String, u8, u32, u64, u64, u64);
/// Raw incidence per (image, abi code, nr) in a window: (image, abi, nr,
/// hosts, containers).
pub type WindowContainersRow = (String, u8, u32, u64, u64);

/// Joins the two raw row sets into one row per (image, abi, nr) that had
/// calls or containers in the window, sorted by (image, abi, nr).
pub fn assemble_window(
    calls: Vec<WindowCallsRow>,
    containers: Vec<WindowContainersRow>,
) -> Result<Vec<ImageSyscallUse>, UnknownAbi> {
    let mut m: BTreeMap<(String, Abi, u32), ImageSyscallUse> = BTreeMap::new();
    for (image, abi, nr, high, low, last) in calls {
        let abi = Abi::from_code(abi).ok_or(UnknownAbi(abi))?;
        let e = m
            .entry((image.clone(), abi, nr))
            .or_insert_with(|| ImageSyscallUse::new(image, abi, nr));
        e.calls = calls_from_halves(high, low);
        e.last_seen_ms = last;
    }
    for (image, abi, nr, hosts, n) in containers {
        let abi = Abi::from_code(abi).ok_or(UnknownAbi(abi))?;
        let e = m
            .entry((image.clone(), abi, nr))
            .or_insert_with(|| ImageSyscallUse::new(image, abi, nr));
        e.hosts = hosts;
        e.containers = n;
    }
    Ok(m.into_values()
        .filter(|u| u.calls > 0 || u.containers > 0)
        .collect())
}

/// Per image, the distinct hosts and containers whose use of any syscall
/// of a set overlaps a window (`query breaks`: the containers a profile
/// would affect).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImageReach {
    pub image: String,
    pub hosts: u64,
    pub containers: u64,
}

/// A syscall as one number for a set in SQL: `abi code * 2^32 + nr`.
pub fn syscall_key(abi: Abi, nr: u32) -> u64 {
    (u64::from(abi.code()) << 32) | u64::from(nr)
}

/// An image's convergence curves (`sandmine report`): how its distinct
/// syscalls grew with its containers and with time. Unverified containers
/// count for nothing, as in the compiler (their calls may be forged).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Convergence {
    /// The k-th value: the distinct syscalls (ABI, number; any stored
    /// phase) the first k containers used, in the compiler's start order
    /// (started, host, boot, container id).
    pub by_container: Vec<u64>,
    /// Per hour in which some syscall was first used, sorted: (start of the
    /// hour, the distinct syscalls first used before its end).
    pub by_hour: Vec<(u64, u64)>,
}

/// The convergence curves of one image, from its observations (both
/// stores answer those alike).
pub fn convergence(obs: &ImageObservations) -> Convergence {
    let mut order: Vec<&schemas::fleet::ContainerIncidence> =
        obs.incidence.iter().filter(|c| !c.unverified).collect();
    order.sort_by(|a, b| {
        (a.started_at_ms, &a.host_id, &a.boot_id, &a.container_id).cmp(&(
            b.started_at_ms,
            &b.host_id,
            &b.boot_id,
            &b.container_id,
        ))
    });
    let mut seen: BTreeMap<(Abi, u32), u64> = BTreeMap::new();
    let mut by_container = Vec::with_capacity(order.len());
    for c in order {
        for e in &c.syscalls {
            let first = seen.entry((e.abi, e.nr)).or_insert(e.first_seen_ms);
            *first = (*first).min(e.first_seen_ms);
        }
        by_container.push(seen.len() as u64);
    }
    let mut per_hour: BTreeMap<u64, u64> = BTreeMap::new();
    for first in seen.values() {
        *per_hour.entry(first / HOUR_MS * HOUR_MS).or_default() += 1;
    }
    let mut total = 0;
    let by_hour = per_hour
        .into_iter()
        .map(|(hour, n)| {
            total += n;
            (hour, total)
        })
        .collect();
    Convergence {
        by_container,
        by_hour,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_widen_to_whole_hours() {
        let w = Window {
            since_ms: Some(HOUR_MS * 5 + 1),
            until_ms: Some(HOUR_MS * 7 + 1),
        };
        assert_eq!(
            (w.from_hour_ms(), w.to_hour_ms()),
            (HOUR_MS * 5, HOUR_MS * 8)
        );
        let exact = Window {
            since_ms: Some(HOUR_MS * 5),
            until_ms: Some(HOUR_MS * 7),
        };
        assert_eq!(
            (exact.from_hour_ms(), exact.to_hour_ms()),
            (HOUR_MS * 5, HOUR_MS * 7)
        );
        let all = Window::default();
        assert_eq!((all.from_hour_ms(), all.to_hour_ms()), (0, END_OF_TIME_MS));
    }
    #[test]
    fn convergence_follows_start_order_and_first_use() {
        use schemas::fleet::{ContainerIncidence, IncidenceEntry};
        use schemas::PhaseSet;
        let e = |nr: u32, first: u64| IncidenceEntry {
            abi: Abi::X86_64,
            nr,
            phases: PhaseSet::default(),
            first_seen_ms: first,
            last_seen_ms: first,
        };
        let c = |id: &str, started: u64, unverified: bool, syscalls: Vec<IncidenceEntry>| {
            ContainerIncidence {
                host_id: "h".into(),
                boot_id: "b".into(),
                container_id: id.into(),
                started_at_ms: started,
                last_seen_ms: started,
                seccomp: String::new(),
                incomplete: false,
                unverified,
                syscalls,
            }
        };
        let obs = ImageObservations {
            image: "i".into(),
            digests: vec![],
            hosts: 1,
            containers: 4,
            container_seconds: 0,
            first_seen_ms: 0,
            last_seen_ms: 0,
            syscalls: vec![],
            // Out of order on purpose; the forged container's syscall 9
            // counts nowhere.
            incidence: vec![
                c(
                    "c3",
                    3 * HOUR_MS,
                    false,
                    vec![e(0, 3 * HOUR_MS), e(2, 3 * HOUR_MS + 5)],
                ),
                c("c1", 10, false, vec![e(0, 20), e(1, HOUR_MS + 1)]),
                c("c2", 20, false, vec![e(0, 30)]),
                c("x", 15, true, vec![e(9, 16)]),
            ],
            out_of_range: 0,
            args: Default::default(),
            executed: Default::default(),
        };
        assert_eq!(
            convergence(&obs),
            Convergence {
                by_container: vec![2, 2, 3],
                by_hour: vec![(0, 1), (HOUR_MS, 2), (3 * HOUR_MS, 3)],
            }
        );
    }
}

/// `query denials`: one kind of denial (a syscall answered one way) of
/// one image under one profile version, over the fleet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImageDenials {
    pub image: String,
    pub abi: Abi,
    pub nr: u32,
    pub action: DenyAction,
    /// `SeccompFilter::version` of the containers' filter: 16 hex digits
    /// of the applied profile's sha256, or "runtime/default",
    /// "unconfined", "unknown".
    pub profile: String,
    /// Denied calls (exact; saturating at `rows::MAX_STORED_CALLS`).
    pub denials: u64,
    /// Distinct hosts and containers with such a denial.
    pub hosts: u64,
    pub containers: u64,
    /// End of the first and last collector interval that counted one (ms).
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
}

/// Raw denials of both stores: (image, abi code, nr, action code, errno,
/// profile, denials high half, low half, hosts, containers, first, last).
pub type DenialsRow = (
    String,
    u8,
    u32,
    u8,
    u16,
    String,
    u64,
    u64,
    u64,
    u64,
    u64,
    u64,
);

/// The stores' raw denial rows as answers, sorted by (image, abi, nr,
/// action, profile).
pub fn assemble_denials(raw: Vec<DenialsRow>) -> Result<Vec<ImageDenials>, UnknownAbi> {
    let mut out = raw
        .into_iter()
        .filter_map(
            |(
                image,
                abi,
                nr,
                action,
                errno,
                profile,
                high,
                low,
                hosts,
                containers,
                first,
                last,
            )| {
                let abi = match Abi::from_code(abi) {
                    Some(a) => a,
                    None => return Some(Err(UnknownAbi(abi))),
                };
                // A code no release writes cannot be stored (the wire
                // refuses it): skip it rather than guess.
                let action = schemas::wire::action_from_code(action, errno)?;
                Some(Ok(ImageDenials {
                    image,
                    abi,
                    nr,
                    action,
                    profile,
                    denials: calls_from_halves(high, low),
                    hosts,
                    containers,
                    first_seen_ms: first,
                    last_seen_ms: last,
                }))
            },
        )
        .collect::<Result<Vec<_>, _>>()?;
    out.sort_by(|a, b| {
        (&a.image, a.abi.code(), a.nr, a.action, &a.profile).cmp(&(
            &b.image,
            b.abi.code(),
            b.nr,
            b.action,
            &b.profile,
        ))
    });
    Ok(out)
}
