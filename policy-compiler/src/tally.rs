//! The statistics of one image: per syscall, the hosts and containers that
//! used it in a profile-relevant phase (and the store's totals in every
//! phase), and the image's confidence figures. No rule and no sentence
//! here: [`crate::decide`] applies the policy to what this counts.
//!
//! Profile-relevant phases: a call is relevant when it was made under the
//! filter (`Runtime`, `Image`), or after the first exec without a filter
//! in a container none of whose calls went through a filter (an unconfined
//! container). `Setup` is never relevant.

use crate::confidence::{self, Confidence, Incidence};
use crate::decide::SyscallStats;
use schemas::fleet::{ContainerIncidence, ImageObservations};
use schemas::{Abi, Phase, PhaseSet, SyscallKey};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What [`tally`] counted.
pub struct Tally<'a> {
    pub confidence: Confidence,
    /// Containers per filter they ran under.
    pub filters: BTreeMap<&'a str, u64>,
    /// The ABIs used in relevant phases.
    pub abis: Vec<Abi>,
    /// Every syscall seen, sorted by key.
    pub syscalls: Vec<(SyscallKey, SyscallStats)>,
}

// Dense ids for (ABI, number): a flat table for numbers below SPAN, a map
// above (unnamed numbers from a newer kernel).
const SPAN: u32 = 1024;

#[derive(Clone, Default)]
struct Usage {
    units: u64,
    hosts: u64,
    first_rel: u64,
    last_rel: u64,
    rel_phases: u8,
    phases: u8,
    calls: u64,
    store_hosts: u64,
    store_containers: u64,
    /// Incomplete containers that used it in a relevant phase.
    incomplete: u64,
    /// Bit h: a unit on host index h (< 64) used it.
    host_mask: u64,
}

struct KeyIndex {
    flat: Vec<u32>,
    extra: HashMap<SyscallKey, u32>,
    keys: Vec<SyscallKey>,
    acc: Vec<Usage>,
    /// Per id: 1 + the position of the last container that used it.
    mark: Vec<u32>,
}

impl KeyIndex {
    fn new() -> KeyIndex {
        KeyIndex {
            flat: vec![u32::MAX; 4 * SPAN as usize],
            extra: HashMap::new(),
            keys: Vec::new(),
            acc: Vec::new(),
            mark: Vec::new(),
        }
    }

    // The lookup is on the hot path (once per incidence entry); the first
    // sight of a key is rare and kept out of line.
    #[inline(always)]
    fn id(&mut self, abi: Abi, nr: u32) -> u32 {
        if nr < SPAN {
            let slot = abi.index() * SPAN as usize + nr as usize;
            let v = self.flat[slot];
            if v != u32::MAX {
                return v;
            }
            let id = self.push(SyscallKey { abi, nr });
            self.flat[slot] = id;
            id
        } else {
            self.id_above_span(SyscallKey { abi, nr })
        }
    }

    /// Numbers above the table (unnamed, from a newer kernel): rare.
    #[cold]
    #[inline(never)]
    fn id_above_span(&mut self, key: SyscallKey) -> u32 {
        if let Some(v) = self.extra.get(&key) {
            return *v;
        }
        let id = self.push(key);
        self.extra.insert(key, id);
        id
    }

    #[cold]
    #[inline(never)]
    fn push(&mut self, key: SyscallKey) -> u32 {
        self.keys.push(key);
        self.acc.push(Usage {
            first_rel: u64::MAX,
            ..Usage::default()
        });
        self.mark.push(0);
        (self.keys.len() - 1) as u32
    }
}

const FILTERED: u8 = (1 << Phase::Runtime as u8) | (1 << Phase::Image as u8);
const UNFILTERED: u8 = 1 << Phase::Unfiltered as u8;

/// Distinct hosts per syscall when there are more than 64 hosts: walk the
/// units host by host (only the grouping matters, not the order within a
/// host: a counting sort by host index).
fn distinct_hosts(
    acc: &mut [Usage],
    unit_ids: &[u32],
    unit_off: &[usize],
    unit_host: &[u32],
    hosts: u64,
) {
    let mut host_start = vec![0usize; hosts as usize + 1];
    for &h in unit_host {
        host_start[h as usize + 1] += 1;
    }
    for i in 1..host_start.len() {
        host_start[i] += host_start[i - 1];
    }
    let mut by_host = vec![0usize; unit_host.len()];
    for (u, &h) in unit_host.iter().enumerate() {
        by_host[host_start[h as usize]] = u;
        host_start[h as usize] += 1;
    }
    let mut last_host: Vec<u32> = vec![0; acc.len()];
    for u in by_host {
        let h = unit_host[u] + 1;
        for &id in &unit_ids[unit_off[u]..unit_off[u + 1]] {
            if last_host[id as usize] != h {
                last_host[id as usize] = h;
                acc[id as usize].hosts += 1;
            }
        }
    }
}

/// The store's container order: start time, then host, boot and id.
fn order_key(c: &ContainerIncidence) -> (u64, &str, &str, &str) {
    (c.started_at_ms, &c.host_id, &c.boot_id, &c.container_id)
}

/// Count what `obs` shows: per syscall (sorted by key) and for the image.
pub fn tally(obs: &ImageObservations, recent_window: u64, now_ms: u64) -> Tally<'_> {
    tally_expecting(obs, recent_window, now_ms, &|_| false)
}

/// [`tally`], where the syscalls for which `expected` holds are no
/// surprise: the image's binaries can reach them and the profile lets them
/// run whether or not they were observed (the reachability tier). They
/// still count per syscall, but the image's coverage, Chao2, novelty and
/// quiet time are figured on the other syscalls only, since only an unseen
/// syscall outside the tier can break a container once enforced.
/// `Confidence::expected` says how many observed syscalls were left out.
pub fn tally_expecting<'a>(
    obs: &'a ImageObservations,
    recent_window: u64,
    now_ms: u64,
    expected: &dyn Fn(SyscallKey) -> bool,
) -> Tally<'a> {
    let mut ids = KeyIndex::new();

    // Containers in start order (the store's order, re-established here so
    // that a shuffled input gives the same result).
    // The store already answers in this order: check it in one pass and
    // sort only when it does not hold.
    let mut order: Vec<usize> = (0..obs.incidence.len()).collect();
    if !obs
        .incidence
        .windows(2)
        .all(|w| order_key(&w[0]) <= order_key(&w[1]))
    {
        order.sort_by(|a, b| order_key(&obs.incidence[*a]).cmp(&order_key(&obs.incidence[*b])));
    }

    let mut host_index: HashMap<&str, u32> = HashMap::new();
    // Containers per filter: a handful of distinct filters, so a list
    // scanned from the last hit beats a map keyed by string.
    let mut filter_counts: Vec<(&str, u64)> = Vec::new();
    let mut last_filter = usize::MAX;
    // Sampling units, flat: ids of unit i are unit_ids[off[i]..off[i+1]].
    let entries: usize = obs.incidence.iter().map(|c| c.syscalls.len()).sum();
    let mut unit_ids: Vec<u32> = Vec::with_capacity(entries);
    let mut unit_off: Vec<usize> = Vec::with_capacity(obs.incidence.len() + 1);
    unit_off.push(0);
    let mut unit_host: Vec<u32> = Vec::with_capacity(obs.incidence.len());
    // Incomplete containers (calls lost): how many, and their lifetime.
    let (mut incomplete, mut incomplete_ms) = (0u64, 0u64);
    // Unverified containers (cgroup not provably its runtime's): the same.
    let (mut unverified, mut unverified_ms) = (0u64, 0u64);

    for (pos, &ci) in order.iter().enumerate() {
        let c = &obs.incidence[ci];
        if c.unverified {
            // Its calls may be forged: not a unit, no host, no exposure,
            // and (unlike an incomplete container) not even its syscalls:
            // a forger must not widen a profile either.
            unverified += 1;
            unverified_ms =
                unverified_ms.saturating_add(c.last_seen_ms.saturating_sub(c.started_at_ms));
            continue;
        }
        if c.incomplete {
            // Not a sampling unit, no host, no filter count, no exposure:
            // only which syscalls it used relevantly (they may widen).
            incomplete += 1;
            incomplete_ms =
                incomplete_ms.saturating_add(c.last_seen_ms.saturating_sub(c.started_at_ms));
            let mask = if c.syscalls.iter().any(|e| e.phases.0 & FILTERED != 0) {
                FILTERED
            } else {
                FILTERED | UNFILTERED
            };
            let stamp = pos as u32 + 1;
            for e in c.syscalls.iter().filter(|e| e.phases.0 & mask != 0) {
                let id = ids.id(e.abi, e.nr) as usize;
                if ids.mark[id] != stamp {
                    ids.mark[id] = stamp;
                    ids.acc[id].incomplete += 1;
                }
            }
            continue;
        }
        let f = c.seccomp.as_str();
        if last_filter >= filter_counts.len() || filter_counts[last_filter].0 != f {
            last_filter = filter_counts
                .iter()
                .position(|(g, _)| *g == f)
                .unwrap_or_else(|| {
                    filter_counts.push((f, 0));
                    filter_counts.len() - 1
                });
        }
        filter_counts[last_filter].1 += 1;
        // Start loading the next container's entries (every 64-byte line)
        // while this one is counted: the input is read from memory, not
        // from the cache, and this overlaps the misses.
        if let Some(&next) = order.get(pos + 1) {
            let n = &obs.incidence[next].syscalls;
            let mut touch = 0u32;
            let mut i = 0;
            while i < n.len() {
                touch ^= n[i].nr;
                i += 3;
            }
            std::hint::black_box(touch);
        }
        let saw_filter = c.syscalls.iter().any(|e| e.phases.0 & FILTERED != 0);
        let relevant_mask = if saw_filter {
            FILTERED
        } else {
            FILTERED | UNFILTERED
        };
        let stamp = pos as u32 + 1;
        for e in &c.syscalls {
            let id = ids.id(e.abi, e.nr) as usize;
            let acc = &mut ids.acc[id];
            acc.phases |= e.phases.0;
            let rel = e.phases.0 & relevant_mask;
            if rel == 0 {
                continue;
            }
            acc.rel_phases |= rel;
            acc.first_rel = acc.first_rel.min(e.first_seen_ms);
            acc.last_rel = acc.last_rel.max(e.last_seen_ms);
            if ids.mark[id] != stamp {
                ids.mark[id] = stamp;
                acc.units += 1;
                unit_ids.push(id as u32);
            }
        }
        let start = *unit_off.last().unwrap_or(&0);
        if unit_ids.len() > start {
            unit_off.push(unit_ids.len());
            let next = host_index.len() as u32;
            let h = *host_index.entry(c.host_id.as_str()).or_insert(next);
            unit_host.push(h);
            // Distinct hosts per syscall as a bit set while the unit's ids
            // are still in cache (the first 64 hosts; more take the
            // grouping pass below).
            if h < 64 {
                for &id in &unit_ids[start..] {
                    ids.acc[id as usize].host_mask |= 1 << h;
                }
            }
        }
    }
    let t = unit_host.len() as u64;
    let hosts = host_index.len() as u64;
    let filters: BTreeMap<&str, u64> = filter_counts.into_iter().collect();

    if hosts <= 64 {
        for a in &mut ids.acc {
            a.hosts = u64::from(a.host_mask.count_ones());
        }
    } else {
        distinct_hosts(&mut ids.acc, &unit_ids, &unit_off, &unit_host, hosts);
    }

    for tot in &obs.syscalls {
        let id = ids.id(tot.abi, tot.nr) as usize;
        let acc = &mut ids.acc[id];
        acc.calls += tot.calls;
        acc.phases |= tot.phases.0;
        acc.store_hosts = acc.store_hosts.max(tot.hosts);
        acc.store_containers = acc.store_containers.max(tot.containers);
    }

    // Confidence, on the syscalls that would surprise (all of them when
    // nothing is expected).
    let surprise: Vec<bool> = ids.keys.iter().map(|k| !expected(*k)).collect();
    let expected_seen = ids
        .acc
        .iter()
        .zip(&surprise)
        .filter(|(a, s)| a.units > 0 && !**s)
        .count() as u64;
    let incidence = Incidence::from_counts(
        t,
        ids.acc
            .iter()
            .zip(&surprise)
            .filter(|(_, s)| **s)
            .map(|(a, _)| a.units),
    );
    let filtered: Vec<Vec<u32>>;
    let units: Vec<&[u32]> = if expected_seen == 0 {
        (0..unit_host.len())
            .map(|u| &unit_ids[unit_off[u]..unit_off[u + 1]])
            .collect()
    } else {
        filtered = (0..unit_host.len())
            .map(|u| {
                unit_ids[unit_off[u]..unit_off[u + 1]]
                    .iter()
                    .copied()
                    .filter(|id| surprise[*id as usize])
                    .collect()
            })
            .collect();
        filtered.iter().map(Vec::as_slice).collect()
    };
    let (window, recent_new) = confidence::recent_novelty(&units, ids.keys.len(), recent_window);
    let first_rel = ids
        .acc
        .iter()
        .filter(|a| a.units > 0)
        .map(|a| a.first_rel)
        .min();
    let last_new_ms = if expected_seen == 0 {
        ids.acc
            .iter()
            .filter(|a| a.units > 0)
            .map(|a| a.first_rel)
            .max()
    } else {
        // The last surprise; with none, quiet since the first relevant call.
        ids.acc
            .iter()
            .zip(&surprise)
            .filter(|(a, s)| a.units > 0 && **s)
            .map(|(a, _)| a.first_rel)
            .max()
            .or(first_rel)
    };
    // Every incidence expected, over two containers or more: nothing
    // outside the tier was seen, so nothing outside it is estimated unseen.
    let coverage = if expected_seen > 0 && t >= 2 && incidence.u == 0 {
        1.0
    } else {
        incidence.coverage()
    };
    // The store's exposure less the incomplete containers' (rounded up,
    // so never more than the complete containers' own).
    let counted_seconds = if incomplete == 0 && unverified == 0 {
        obs.container_seconds
    } else {
        obs.container_seconds
            .saturating_sub(incomplete_ms.div_ceil(1000))
            .saturating_sub(unverified_ms.div_ceil(1000))
    };
    let conf = Confidence {
        containers: t,
        hosts,
        store_containers: obs.containers,
        store_hosts: obs.hosts,
        container_hours: counted_seconds as f64 / 3600.0,
        last_new_ms,
        quiet_ms: last_new_ms.map(|l| now_ms.saturating_sub(l)),
        incidence,
        coverage,
        chao2: incidence.chao2(),
        expected: expected_seen,
        recent_window: window,
        recent_new,
        recent_new_share: if window == 0 {
            1.0
        } else {
            recent_new as f64 / window as f64
        },
        incomplete_containers: incomplete,
        unverified_containers: unverified,
    };

    // Per-syscall stats, sorted by key.
    let mut keyed: Vec<(SyscallKey, SyscallStats)> = ids
        .keys
        .iter()
        .zip(&ids.acc)
        .map(|(k, a)| {
            (
                *k,
                SyscallStats {
                    hosts: a.hosts,
                    containers: a.units,
                    share: if t == 0 {
                        0.0
                    } else {
                        a.units as f64 / t as f64
                    },
                    first_seen_ms: if a.units > 0 { a.first_rel } else { 0 },
                    last_seen_ms: a.last_rel,
                    relevant_phases: PhaseSet(a.rel_phases),
                    phases: PhaseSet(a.phases),
                    calls: a.calls,
                    store_hosts: a.store_hosts,
                    store_containers: a.store_containers,
                    incomplete_containers: a.incomplete,
                },
            )
        })
        .collect();
    keyed.sort_unstable_by_key(|(k, _)| *k);

    // An ABI only incomplete containers used is listed too: its calls must
    // not be killed (the safe direction).
    let abis: Vec<Abi> = keyed
        .iter()
        .filter(|(_, s)| s.containers > 0 || s.incomplete_containers > 0)
        .map(|(k, _)| k.abi)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();

    Tally {
        confidence: conf,
        filters,
        abis,
        syscalls: keyed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use schemas::fleet::IncidenceEntry;

    /// 140 containers on `n_hosts` hosts (container i on host i % n_hosts):
    /// read (0) used by all, write (1) by those on hosts 0-4 only, close (3)
    /// only in set-up. Distinct hosts per syscall must not depend on the
    /// number of hosts (bit sets up to 64 hosts, a grouping pass above).
    fn hosts_of(n_hosts: usize) -> (u64, Vec<(u32, u64)>) {
        let incidence = (0..140usize)
            .map(|i| {
                let h = i % n_hosts;
                let e = |nr: u32, ph: Phase| IncidenceEntry {
                    abi: Abi::X86_64,
                    nr,
                    phases: PhaseSet(ph.bit()),
                    first_seen_ms: i as u64,
                    last_seen_ms: i as u64 + 1,
                };
                let mut syscalls = vec![e(0, Phase::Image)];
                if h < 5 {
                    syscalls.push(e(1, Phase::Image));
                }
                syscalls.push(e(3, Phase::Setup));
                ContainerIncidence {
                    host_id: format!("h{h:03}"),
                    boot_id: "b".into(),
                    container_id: format!("c{i:03}"),
                    started_at_ms: i as u64,
                    last_seen_ms: i as u64 + 1,
                    seccomp: "unconfined".into(),
                    incomplete: false,
                    unverified: false,
                    syscalls,
                }
            })
            .collect();
        let obs = ImageObservations {
            image: "i".into(),
            digests: Vec::new(),
            hosts: n_hosts as u64,
            containers: 140,
            container_seconds: 140,
            first_seen_ms: 0,
            last_seen_ms: 141,
            syscalls: Vec::new(),
            incidence,
            out_of_range: 0,
            args: Default::default(),
            executed: Default::default(),
        };
        let d = crate::decide::decide(&obs, &Policy::default().resolve().unwrap(), 1000);
        (
            d.confidence.hosts,
            d.syscalls
                .iter()
                .filter_map(|s| s.stats.as_ref().map(|st| (s.nr, st.hosts)))
                .collect(),
        )
    }

    #[test]
    fn distinct_hosts_below_and_above_64_hosts() {
        assert_eq!(hosts_of(3), (3, vec![(0, 3), (1, 3), (3, 0)]));
        assert_eq!(hosts_of(64), (64, vec![(0, 64), (1, 5), (3, 0)]));
        assert_eq!(hosts_of(65), (65, vec![(0, 65), (1, 5), (3, 0)]));
        assert_eq!(hosts_of(100), (100, vec![(0, 100), (1, 5), (3, 0)]));
    }
}
