//! The fleet decision for one image: which syscalls to allow, why, and
//! whether the profile may be enforced, only logged, or not published yet.
//!
//! Pure: [`decide`] reads the store's answer, the policy and `now_ms`, and
//! nothing else. Iteration is over sorted keys everywhere, so the order of
//! the input lists does not change the result.
//!
//! Profile-relevant phases follow [`crate::generate`]: a call is relevant
//! when it was made under the filter (`Runtime`, `Image`), or after the
//! first exec without a filter in a container none of whose calls went
//! through a filter (an unconfined container). `Setup` is never relevant.

use crate::confidence::{self, Confidence, Incidence};
use crate::names as syscalls;
use crate::policy::Policy;
use crate::{ENOSYS, EPERM};
use schemas::fleet::{ContainerIncidence, ImageObservations};
use schemas::{Abi, Phase, PhaseSet, SyscallKey};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The three outcomes for an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Default action EPERM: every bar is met and nothing observed is left
    /// out unless the policy denies it by name.
    Enforce,
    /// Default action `SCMP_ACT_LOG`: unlisted calls run and are logged.
    Log,
    /// Too little evidence to publish anything.
    NotReady,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Enforce => "enforce",
            State::Log => "log",
            State::NotReady => "not_ready",
        }
    }
}

/// What the fleet saw of one syscall, in profile-relevant phases (the
/// store's own totals, in every phase, alongside).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SyscallStats {
    /// Distinct hosts and containers that made it in a relevant phase.
    pub hosts: u64,
    pub containers: u64,
    /// `containers` / the image's sampling units.
    pub share: f64,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
    /// Phases of the relevant uses, and of all uses.
    pub relevant_phases: PhaseSet,
    pub phases: PhaseSet,
    /// From the store's totals (every phase).
    pub calls: u64,
    pub store_hosts: u64,
    pub store_containers: u64,
}

/// Why a syscall is allowed (several may hold at once).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum AllowReason {
    /// Observed, and met every per-syscall threshold.
    Observed,
    /// In the runtime's measured base.
    RuntimeBase,
    /// In the policy's `must_allow`.
    MustAllow,
    /// In [`crate::baseline`].
    Baseline,
    /// The fallback of `of`, a must-deny syscall the image used.
    Fallback { of: String },
    /// Below a threshold in this ABI, but allowed by name in another: the
    /// Docker format lists names for all architectures at once.
    OtherAbi { abi: Abi },
}

/// Why a syscall is denied.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum DenyReason {
    /// In the policy's `must_deny`.
    MustDeny,
    /// Observed in a relevant phase, but below these thresholds (each a
    /// sentence with the numbers). Keeps the image out of `Enforce`.
    BelowThreshold { failed: Vec<String> },
    /// Observed only before the runtime's filter (`Setup`), or unfiltered
    /// in a container whose other calls were filtered.
    NotRelevant,
    /// No name in sandmine's table for this ABI: no profile format can
    /// allow it. Keeps the image out of `Enforce`.
    Unnamed,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum Verdict {
    Allowed {
        reasons: Vec<AllowReason>,
    },
    /// `errno` is what an enforced profile answers (ENOSYS for probed
    /// syscalls, EPERM otherwise); `blocks_enforce` when this denial is
    /// why the image stays in log mode.
    Denied {
        reason: DenyReason,
        errno: u32,
        blocks_enforce: bool,
    },
}

impl Verdict {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Verdict::Allowed { .. })
    }
}

/// One syscall of one ABI: observed, or allowed without being observed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SyscallDecision {
    pub abi: Abi,
    pub nr: u32,
    pub name: Option<&'static str>,
    pub stats: Option<SyscallStats>,
    pub verdict: Verdict,
}

/// Everything the compiler decided for one image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    pub image: String,
    pub digests: Vec<String>,
    pub now_ms: u64,
    pub state: State,
    /// Human sentences with the numbers: why this state.
    pub reasons: Vec<String>,
    /// What the fleet could not see (containers under filters).
    pub notes: Vec<String>,
    /// Policy entries that could not take effect.
    pub warnings: Vec<String>,
    pub confidence: Confidence,
    /// Containers per filter they ran under (`wire::SeccompFilter::as_text`).
    pub filters: BTreeMap<String, u64>,
    /// The ABIs the image was observed using (in relevant phases).
    pub abis: Vec<Abi>,
    /// Sorted by (ABI, number).
    pub syscalls: Vec<SyscallDecision>,
    /// The allowed names per ABI (the profile's allow rule is their union).
    pub allowed: BTreeMap<Abi, BTreeSet<&'static str>>,
    pub policy: Policy,
}

impl Decision {
    /// Union of the allowed names over ABIs.
    pub fn allowed_union(&self) -> BTreeSet<&'static str> {
        self.allowed.values().flatten().copied().collect()
    }

    /// The decision about `name` in `abi`, if it was observed or allowed.
    pub fn get(&self, abi: Abi, name: &str) -> Option<&SyscallDecision> {
        let nr = syscalls::number(abi, name)?;
        self.syscalls
            .binary_search_by(|d| (d.abi, d.nr).cmp(&(abi, nr)))
            .ok()
            .map(|i| &self.syscalls[i])
    }
}

/// The errno a denied `name` answers: ENOSYS when libc probes it.
pub fn deny_errno(name: Option<&str>) -> u32 {
    if name.is_some_and(crate::probes::is_probed) {
        ENOSYS
    } else {
        EPERM
    }
}

// Dense ids for (ABI, number): a flat table for numbers below SPAN, a map
// above (unnamed numbers from a newer kernel).
const SPAN: u32 = 1024;

fn abi_index(abi: Abi) -> usize {
    match abi {
        Abi::X86_64 => 0,
        Abi::I386 => 1,
        Abi::X32 => 2,
        Abi::Aarch64 => 3,
    }
}

#[derive(Clone, Default)]
struct Acc {
    units: u64,
    hosts: u64,
    first_rel: u64,
    last_rel: u64,
    rel_phases: u8,
    phases: u8,
    calls: u64,
    store_hosts: u64,
    store_containers: u64,
    /// Bit h: a unit on host index h (< 64) used it.
    host_mask: u64,
}

struct Ids {
    flat: Vec<u32>,
    extra: HashMap<SyscallKey, u32>,
    keys: Vec<SyscallKey>,
    acc: Vec<Acc>,
    /// Per id: 1 + the position of the last container that used it.
    mark: Vec<u32>,
}

impl Ids {
    fn new() -> Ids {
        Ids {
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
            let slot = abi_index(abi) * SPAN as usize + nr as usize;
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
        self.acc.push(Acc {
            first_rel: u64::MAX,
            ..Acc::default()
        });
        self.mark.push(0);
        (self.keys.len() - 1) as u32
    }
}

const FILTERED: u8 = (1 << Phase::Runtime as u8) | (1 << Phase::Image as u8);
const UNFILTERED: u8 = 1 << Phase::Unfiltered as u8;

fn fmt_share(x: f64) -> String {
    crate::fixed::fixed(x, 4)
}

fn fmt_hours(ms: u64) -> String {
    let mut s = crate::fixed::fixed(ms as f64 / 3_600_000.0, 1);
    s.push_str(" h");
    s
}

/// Distinct hosts per syscall when there are more than 64 hosts: walk the
/// units host by host (only the grouping matters, not the order within a
/// host: a counting sort by host index).
fn distinct_hosts(
    acc: &mut [Acc],
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

/// Decide the profile of one image. Pure; see the module documentation.
pub fn decide(obs: &ImageObservations, policy: &Policy, now_ms: u64) -> Decision {
    let mut ids = Ids::new();

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

    for (pos, &ci) in order.iter().enumerate() {
        let c = &obs.incidence[ci];
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

    // Confidence.
    let incidence = Incidence::from_counts(t, ids.acc.iter().map(|a| a.units));
    let units: Vec<&[u32]> = (0..unit_host.len())
        .map(|u| &unit_ids[unit_off[u]..unit_off[u + 1]])
        .collect();
    let (window, recent_new) =
        confidence::recent_novelty(&units, ids.keys.len(), policy.recent_window);
    let last_new_ms = ids
        .acc
        .iter()
        .filter(|a| a.units > 0)
        .map(|a| a.first_rel)
        .max();
    let conf = Confidence {
        containers: t,
        hosts,
        store_containers: obs.containers,
        store_hosts: obs.hosts,
        container_hours: obs.container_seconds as f64 / 3600.0,
        last_new_ms,
        quiet_ms: last_new_ms.map(|l| now_ms.saturating_sub(l)),
        incidence,
        coverage: incidence.coverage(),
        chao2: incidence.chao2(),
        recent_window: window,
        recent_new,
        recent_new_share: if window == 0 {
            1.0
        } else {
            recent_new as f64 / window as f64
        },
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
                },
            )
        })
        .collect();
    keyed.sort_unstable_by_key(|(k, _)| *k);

    let abis: Vec<Abi> = keyed
        .iter()
        .filter(|(_, s)| s.containers > 0)
        .map(|(k, _)| k.abi)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();

    verdicts(obs, policy, now_ms, conf, filters, abis, keyed)
}

fn verdicts(
    obs: &ImageObservations,
    policy: &Policy,
    now_ms: u64,
    conf: Confidence,
    filters: BTreeMap<&str, u64>,
    abis: Vec<Abi>,
    keyed: Vec<(SyscallKey, SyscallStats)>,
) -> Decision {
    let th = &policy.syscall;
    let deny: BTreeSet<&str> = policy.must_deny.iter().map(String::as_str).collect();
    let mut warnings = Vec::new();
    // (abi, nr) -> allow reasons.
    let mut allow: BTreeMap<SyscallKey, Vec<AllowReason>> = BTreeMap::new();
    fn add(
        allow: &mut BTreeMap<SyscallKey, Vec<AllowReason>>,
        abi: Abi,
        name: &str,
        why: AllowReason,
    ) -> bool {
        match syscalls::number(abi, name) {
            Some(nr) => {
                allow.entry(SyscallKey { abi, nr }).or_default().push(why);
                true
            }
            None => false,
        }
    }
    // Below-threshold observations: key -> failed sentences.
    let mut below: BTreeMap<SyscallKey, Vec<String>> = BTreeMap::new();

    for (key, s) in &keyed {
        if s.containers == 0 {
            continue;
        }
        let name = syscalls::name(key.abi, key.nr);
        let mut failed = Vec::new();
        if s.hosts < th.min_hosts {
            failed.push(format!(
                "seen on {} host(s), the policy needs at least {}",
                s.hosts, th.min_hosts
            ));
        }
        if s.containers < th.min_containers {
            failed.push(format!(
                "seen in {} container(s), the policy needs at least {}",
                s.containers, th.min_containers
            ));
        }
        if s.share < th.min_container_share {
            failed.push(format!(
                "used by a share of {} of the containers, the policy needs at least {}",
                fmt_share(s.share),
                fmt_share(th.min_container_share)
            ));
        }
        let Some(name) = name else { continue };
        if deny.contains(name) {
            if failed.is_empty() {
                if let Some(d) = crate::must_deny::get(name) {
                    for f in d.fallback {
                        if !deny.contains(f) {
                            add(
                                &mut allow,
                                key.abi,
                                f,
                                AllowReason::Fallback {
                                    of: name.to_string(),
                                },
                            );
                        }
                    }
                }
            }
            continue;
        }
        if failed.is_empty() {
            allow.entry(*key).or_default().push(AllowReason::Observed);
        } else {
            below.insert(*key, failed);
        }
    }

    if let Some(rt) = &policy.runtime {
        for (abi, names) in &rt.base {
            if !abis.contains(abi) {
                continue;
            }
            for n in names {
                if deny.contains(n.as_str()) {
                    warnings.push(format!(
                        "runtime base: {abi} {n} is in must_deny; the runtime ({} {}) used it after installing the filter, so containers may fail to start",
                        rt.name.as_str(), rt.version
                    ));
                } else {
                    add(&mut allow, *abi, n, AllowReason::RuntimeBase);
                }
            }
        }
    }
    for n in &policy.must_allow {
        let placed = abis
            .iter()
            .filter(|a| add(&mut allow, **a, n, AllowReason::MustAllow))
            .count();
        if placed == 0 && !abis.is_empty() {
            warnings.push(format!(
                "must_allow: {n} exists in none of the observed ABIs ({}); ignored",
                abis.iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    if policy.baseline {
        for n in crate::baseline::names().filter(|n| !deny.contains(n)) {
            for abi in &abis {
                add(&mut allow, *abi, n, AllowReason::Baseline);
            }
        }
    }

    let mut allowed: BTreeMap<Abi, BTreeSet<&'static str>> =
        abis.iter().map(|a| (*a, BTreeSet::new())).collect();
    for key in allow.keys() {
        if let Some(n) = syscalls::name(key.abi, key.nr) {
            allowed.entry(key.abi).or_default().insert(n);
        }
    }
    // name -> first ABI allowing it, for below-threshold names allowed
    // elsewhere.
    let mut union: BTreeMap<&'static str, Abi> = BTreeMap::new();
    for (abi, names) in &allowed {
        for n in names {
            union.entry(n).or_insert(*abi);
        }
    }

    let mut blockers = Vec::new();
    // `keyed` is sorted by key and so is `allow`: merge the two in key
    // order (what a sorted set of both key lists gives).
    let allow_keys: Vec<SyscallKey> = allow.keys().copied().collect();
    let mut out: Vec<SyscallDecision> = Vec::with_capacity(keyed.len() + allow_keys.len());
    let mut observed = keyed.into_iter().peekable();
    let mut extra = allow_keys.into_iter().peekable();
    loop {
        let (key, st) = match (observed.peek(), extra.peek()) {
            (None, None) => break,
            (Some((k, _)), Some(e)) if e < k => {
                let e = *e;
                extra.next();
                (e, None)
            }
            (Some((k, _)), e) => {
                let k = *k;
                if e == Some(&k) {
                    extra.next();
                }
                (k, observed.next().map(|(_, s)| s))
            }
            (None, Some(e)) => {
                let e = *e;
                extra.next();
                (e, None)
            }
        };
        let name = syscalls::name(key.abi, key.nr);
        let label = || {
            format!(
                "{} {}",
                key.abi,
                name.map_or_else(|| format!("#{}", key.nr), str::to_string)
            )
        };
        let verdict = if let Some(reasons) = allow.get_mut(&key) {
            reasons.sort();
            reasons.dedup();
            Verdict::Allowed {
                reasons: std::mem::take(reasons),
            }
        } else if let Some(failed) = below.remove(&key) {
            match name.and_then(|n| union.get(n)) {
                Some(other) => Verdict::Allowed {
                    reasons: vec![AllowReason::OtherAbi { abi: *other }],
                },
                None => {
                    blockers.push(format!(
                        "{} was used in a relevant phase but is below the syscall thresholds ({}); an enforced profile would deny it, so the image stays in log mode until it meets them or the policy names it in must_deny or must_allow",
                        label(),
                        failed.join("; ")
                    ));
                    Verdict::Denied {
                        reason: DenyReason::BelowThreshold { failed },
                        errno: deny_errno(name),
                        blocks_enforce: true,
                    }
                }
            }
        } else if name.is_some_and(|n| deny.contains(n)) {
            Verdict::Denied {
                reason: DenyReason::MustDeny,
                errno: deny_errno(name),
                blocks_enforce: false,
            }
        } else if name.is_none() && st.as_ref().is_some_and(|s| s.containers > 0) {
            let s = st.as_ref().map_or(0, |s| s.containers);
            blockers.push(format!(
                "{} was used in {s} container(s) but has no name in sandmine's syscall table (a kernel newer than the table); no profile can allow it, so the image stays in log mode",
                label()
            ));
            Verdict::Denied {
                reason: DenyReason::Unnamed,
                errno: EPERM,
                blocks_enforce: true,
            }
        } else {
            Verdict::Denied {
                reason: if name.is_none() {
                    DenyReason::Unnamed
                } else {
                    DenyReason::NotRelevant
                },
                errno: deny_errno(name),
                blocks_enforce: false,
            }
        };
        out.push(SyscallDecision {
            abi: key.abi,
            nr: key.nr,
            name,
            stats: st,
            verdict,
        });
    }

    let (state, reasons) = state_of(obs, policy, &conf, blockers);

    let mut notes = Vec::new();
    let filtered: u64 = filters
        .iter()
        .filter(|(f, _)| **f != "unconfined")
        .map(|(_, n)| *n)
        .sum();
    let total: u64 = filters.values().sum();
    if filtered > 0 {
        notes.push(format!(
            "{filtered} of {total} container(s) ran under a seccomp filter ({}); a syscall such a filter denies never reaches the collector, so those containers could not show it. Syscalls denied only by those filters stay denied here (they were denied before too).",
            filters
                .iter()
                .filter(|(f, _)| **f != "unconfined")
                .map(|(f, n)| format!("{f}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }

    Decision {
        image: obs.image.clone(),
        digests: obs.digests.clone(),
        now_ms,
        state,
        reasons,
        notes,
        warnings,
        confidence: conf,
        filters: filters
            .into_iter()
            .map(|(f, n)| (f.to_string(), n))
            .collect(),
        abis,
        syscalls: out,
        allowed,
        policy: policy.clone(),
    }
}

/// The bars of one level that `conf` misses, as sentences.
fn missed(conf: &Confidence, b: &crate::policy::ImageBars, level: &str) -> Vec<String> {
    let mut v = Vec::new();
    if conf.containers < b.min_containers {
        v.push(format!(
            "{} container(s) made a profile-relevant syscall; {level} needs at least {}",
            conf.containers, b.min_containers
        ));
    }
    if conf.hosts < b.min_hosts {
        v.push(format!(
            "they ran on {} host(s); {level} needs at least {}",
            conf.hosts, b.min_hosts
        ));
    }
    if conf.container_hours < b.min_container_hours {
        v.push(format!(
            "{:.2} container-hours observed; {level} needs at least {:.2}",
            conf.container_hours, b.min_container_hours
        ));
    }
    if conf.coverage < b.min_coverage {
        v.push(format!(
            "sample coverage is {} (Q1 = {}, Q2 = {}, U = {}, T = {}); {level} needs at least {}",
            fmt_share(conf.coverage),
            conf.incidence.q1,
            conf.incidence.q2,
            conf.incidence.u,
            conf.incidence.t,
            fmt_share(b.min_coverage)
        ));
    }
    if conf.quiet_hours() < b.min_quiet_hours {
        v.push(match conf.quiet_ms {
            Some(q) => format!(
                "the last new syscall was first seen {} ago; {level} needs {:.1} h without a new one",
                fmt_hours(q),
                b.min_quiet_hours
            ),
            None => format!(
                "no syscall was seen yet; {level} needs {:.1} h without a new one",
                b.min_quiet_hours
            ),
        });
    }
    if conf.recent_new_share > b.max_recent_new_share {
        v.push(format!(
            "{} of the last {} container(s) showed a syscall no earlier container had (share {}); {level} allows at most {}",
            conf.recent_new,
            conf.recent_window,
            fmt_share(conf.recent_new_share),
            fmt_share(b.max_recent_new_share)
        ));
    }
    v
}

fn state_of(
    obs: &ImageObservations,
    policy: &Policy,
    conf: &Confidence,
    blockers: Vec<String>,
) -> (State, Vec<String>) {
    if conf.containers == 0 {
        return (
            State::NotReady,
            vec![format!(
                "no container of {} made a syscall after the runtime's set-up ({} container(s) known to the store); nothing to build a profile from",
                obs.image, obs.containers
            )],
        );
    }
    let log = missed(conf, &policy.log, "log mode");
    if !log.is_empty() {
        return (State::NotReady, log);
    }
    let mut reasons = missed(conf, &policy.enforce, "enforcement");
    reasons.extend(blockers);
    if !reasons.is_empty() {
        return (State::Log, reasons);
    }
    (
        State::Enforce,
        vec![format!(
            "every enforcement bar is met: {} containers on {} hosts (needs {} on {}), {:.2} container-hours (needs {:.2}), coverage {} (needs {}), {} without a new syscall (needs {:.1} h), {} of the last {} containers showed something new (at most {} allowed), and every syscall used in a relevant phase meets the syscall thresholds or is denied by name",
            conf.containers,
            conf.hosts,
            policy.enforce.min_containers,
            policy.enforce.min_hosts,
            conf.container_hours,
            policy.enforce.min_container_hours,
            fmt_share(conf.coverage),
            fmt_share(policy.enforce.min_coverage),
            fmt_hours(conf.quiet_ms.unwrap_or(0)),
            policy.enforce.min_quiet_hours,
            conf.recent_new,
            conf.recent_window,
            fmt_share(policy.enforce.max_recent_new_share)
        )],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::fleet::{ContainerIncidence, IncidenceEntry};

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
        };
        let d = decide(&obs, &Policy::default(), 1000);
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
