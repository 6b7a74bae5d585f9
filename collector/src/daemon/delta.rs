//! The delta of one tick, as a pure function: the committed state and
//! what the kernel counts now in, the next message and the state that
//! would produce it out. No I/O, no clock: [`super::Daemon::prepare`]
//! gathers the inputs, and the rules of what is published (module
//! documentation of [`super`]) live here only.

use super::state::{ContainerRecord, KeyState, State};
use schemas::wire::{
    action_code, action_from_code, ARGS_VERSION, DENIALS_VERSION, EXECUTED_VERSION,
};
use schemas::wire::{ContainerDelta, ContainerRef, Envelope, SyscallDelta};
use schemas::{
    ArgSets, DenialKey, Denials, ExecutedFiles, Observation, Phase, PhaseSet, SyscallKey,
};
use std::collections::{BTreeMap, HashMap};

/// One workload key of a container, as read this tick.
#[derive(Clone, Debug)]
pub(super) struct Observed {
    /// The key as the state spells it (`cgroup_id:mntns_id`).
    pub key: String,
    pub container_id: String,
    /// Whether a process is still alive in the key's mount namespace.
    pub alive: bool,
    /// When the kernel first saw the key (wall clock, ms).
    pub created_ms: u64,
    /// The kernel's cumulative counts for the key, and its recorded
    /// argument values (`usage.args`: the whole sets, which only grow
    /// while the key holds its slot).
    pub usage: Observation,
    /// Calls of the key the kernel could not count (cumulative): it had no
    /// slot (over capacity), or used more distinct syscalls than a slot
    /// holds. Non-zero makes its container incomplete for good.
    pub lost_calls: u64,
    /// The calls of the key its seccomp filter denied (cumulative, as
    /// the kernel counts them).
    pub denials: Denials,
    /// What the engine says of the container, read only when the
    /// committed state does not know it yet.
    pub new_container: Option<ContainerRef>,
    /// The key's cgroup failed verification ([`super::verify`]): why.
    /// Makes its container unverified for good.
    pub unverified: Option<String>,
    /// What the processes of the key's mount namespace run as code now
    /// ([`crate::executed`]; empty when none is alive).
    pub executed: ExecutedFiles,
}

/// The next message and the state that commits it.
#[derive(Clone, Debug)]
pub(super) struct Cut {
    pub state: State,
    pub envelope: Envelope,
    /// Some keys got their final delta: delete them from the kernel once
    /// the state is committed.
    pub finished_keys: bool,
    /// Containers that became incomplete with this cut (each is said
    /// once: the flag is in the committed state from then on).
    pub newly_incomplete: Vec<String>,
    /// Containers that became unverified with this cut, and why (each is
    /// said once).
    pub newly_unverified: Vec<(String, String)>,
    /// Incomplete or unverified containers left out of the envelope
    /// because its wire version cannot carry the flag (every cut that had
    /// something of theirs to say).
    pub withheld: Vec<String>,
    /// Denials counted since the committed state but not sent: the wire
    /// version is below 6 ([`DENIALS_VERSION`]). The state still moves
    /// past them.
    pub dropped_denials: u64,
    /// Argument sets that changed since the committed state but were not
    /// sent: the wire version is below 7 ([`ARGS_VERSION`]). The state
    /// still moves past them.
    pub dropped_arg_sets: u64,
    /// Executed files first seen since the committed state but not sent:
    /// the wire version is below 8 ([`EXECUTED_VERSION`]). The state
    /// still moves past them.
    pub dropped_executed: u64,
}

/// What one tick saw of one container.
#[derive(Default)]
struct ContainerTick {
    /// Per syscall: (calls since the snapshot, phases).
    syscalls: BTreeMap<SyscallKey, (u64, PhaseSet)>,
    /// Some key of it is alive.
    alive: bool,
    /// Some key of it lost calls.
    lost: bool,
    /// Some key of it failed verification: why.
    unverified: Option<String>,
    /// Denials since the snapshot.
    denials: Denials,
    /// The whole argument sets of the syscalls whose set changed since
    /// the snapshot (merged over the container's keys).
    args: ArgSets,
    /// Files its processes run as code now (merged over its keys).
    executed: ExecutedFiles,
}

/// Cuts the delta of `observed` against `committed` at `now_ms`. `None`:
/// no container made a call, none exited and none became incomplete (no
/// heartbeat; no seq used). `started_ms` begins the first interval of a
/// stream.
///
/// A container whose keys lost calls is incomplete from then on
/// ([`ContainerRecord::incomplete`]): its deltas carry the flag, and the
/// cut that marks it sends one even with no new calls, so the store
/// learns it (a workload that never got a slot has no calls at all).
/// A container with a key that failed verification is unverified from
/// then on ([`ContainerRecord::unverified`]), the same way: marked in
/// every delta, and a delta sent with the mark even with no new calls.
///
/// When the wire `version` cannot carry a container's flag (below 3 for
/// `incomplete`, below 4 for `unverified`), the container is left out of
/// the envelope instead ([`Cut::withheld`]): its calls must not reach an
/// aggregator as if they were complete or verified. Its state still
/// advances (snapshot, exit), so the envelope may then hold no container
/// at all; it is still sent, so the seqs stay gap-free.
pub(super) fn cut(
    committed: &State,
    observed: &[Observed],
    now_ms: u64,
    started_ms: u64,
    version: u16,
) -> Option<Cut> {
    let mut state = committed.clone();
    let mut per_container: BTreeMap<String, ContainerTick> = BTreeMap::new();
    for o in observed {
        if state.keys.get(&o.key).is_some_and(|k| k.done) {
            continue;
        }
        let record = state
            .containers
            .entry(o.container_id.clone())
            .or_insert_with(|| {
                let r = o.new_container.clone().unwrap_or_else(|| ContainerRef {
                    id: o.container_id.clone(),
                    ..ContainerRef::default()
                });
                ContainerRecord::new(r, o.created_ms)
            });
        record.started_at_ms = record.started_at_ms.min(o.created_ms);
        let prev: HashMap<(u8, u32), u64> = state
            .keys
            .get(&o.key)
            .map(|k| k.counts.iter().map(|(a, n, c)| ((*a, *n), *c)).collect())
            .unwrap_or_default();
        let entry = per_container.entry(o.container_id.clone()).or_default();
        entry.alive |= o.alive;
        entry.lost |= o.lost_calls > 0;
        if entry.unverified.is_none() {
            entry.unverified.clone_from(&o.unverified);
        }
        entry.executed.extend(o.executed.iter().cloned());
        let mut counts = Vec::with_capacity(o.usage.syscalls.len());
        for (sk, u) in &o.usage.syscalls {
            let code = sk.abi.code();
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
            let e = entry
                .syscalls
                .entry(*sk)
                .or_insert((0, PhaseSet::default()));
            e.0 = e.0.saturating_add(delta);
            e.1 = e.1.union(phases);
        }
        let before_denied: HashMap<DenialKey, u64> = state
            .keys
            .get(&o.key)
            .map(|k| {
                k.denied
                    .iter()
                    .filter_map(|&(a, nr, code, errno, n)| {
                        let key = DenialKey {
                            abi: schemas::Abi::from_code(a)?,
                            nr,
                            action: action_from_code(code, errno)?,
                        };
                        Some((key, n))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut denied = Vec::with_capacity(o.denials.len());
        for (dk, &n) in &o.denials {
            let (code, errno) = action_code(dk.action);
            denied.push((dk.abi.code(), dk.nr, code, errno, n));
            let before = before_denied.get(dk).copied().unwrap_or(0);
            // Fewer than the snapshot: the counters restarted.
            let delta = if n >= before { n - before } else { n };
            if delta > 0 {
                let e = entry.denials.entry(*dk).or_default();
                *e = e.saturating_add(delta);
            }
        }
        // A set is sent whole when it changed: sets only grow while a key
        // holds its slot, so its size and overflow say whether it did.
        let before_args: HashMap<(u8, u32), (u64, u64)> = state
            .keys
            .get(&o.key)
            .map(|k| {
                k.args
                    .iter()
                    .map(|&(a, nr, v, over)| ((a, nr), (v, over)))
                    .collect()
            })
            .unwrap_or_default();
        let mut args = Vec::with_capacity(o.usage.args.len());
        for (sk, set) in &o.usage.args {
            let seen = (set.values.len() as u64, set.overflow);
            let code = sk.abi.code();
            args.push((code, sk.nr, seen.0, seen.1));
            if before_args.get(&(code, sk.nr)) != Some(&seen) {
                entry.args.entry(*sk).or_default().merge(set);
            }
        }
        state.keys.insert(
            o.key.clone(),
            KeyState {
                container_id: o.container_id.clone(),
                counts,
                denied,
                args,
                done: false,
            },
        );
    }

    let mut deltas = Vec::new();
    let mut finished_keys = false;
    let mut newly_incomplete = Vec::new();
    let mut newly_unverified = Vec::new();
    let mut withheld = Vec::new();
    let mut dropped_denials = 0u64;
    let mut dropped_arg_sets = 0u64;
    let mut dropped_executed = 0u64;
    for (id, tick) in per_container {
        let ContainerTick {
            syscalls,
            alive: any_alive,
            lost,
            unverified,
            mut denials,
            mut args,
            executed,
        } = tick;
        if version < ARGS_VERSION && !args.is_empty() {
            dropped_arg_sets = dropped_arg_sets.saturating_add(args.len() as u64);
            args.clear();
        }
        if version < DENIALS_VERSION && !denials.is_empty() {
            dropped_denials = denials
                .values()
                .fold(dropped_denials, |a, n| a.saturating_add(*n));
            denials.clear();
        }
        let Some(record) = state.containers.get_mut(&id) else {
            continue;
        };
        let mut executed = new_files(&mut record.executed, executed);
        if version < EXECUTED_VERSION && !executed.is_empty() {
            dropped_executed = dropped_executed.saturating_add(executed.len() as u64);
            executed.clear();
        }
        let exiting = !any_alive && !record.exited;
        let newly = lost && !record.incomplete;
        if newly {
            record.incomplete = true;
            newly_incomplete.push(id.clone());
        }
        let newly_unv = match unverified {
            Some(why) if !record.unverified => {
                record.unverified = true;
                newly_unverified.push((id.clone(), why));
                true
            }
            _ => false,
        };
        if syscalls.is_empty()
            && denials.is_empty()
            && args.is_empty()
            && executed.is_empty()
            && !exiting
            && !newly
            && !newly_unv
        {
            continue;
        }
        let mut first: HashMap<(u8, u32), u64> = record
            .first_seen
            .iter()
            .map(|(a, n, t)| ((*a, *n), *t))
            .collect();
        let mut out = Vec::with_capacity(syscalls.len());
        for (sk, (calls, phases)) in &syscalls {
            let f = *first.entry((sk.abi.code(), sk.nr)).or_insert(now_ms);
            out.push(SyscallDelta {
                abi: sk.abi,
                nr: sk.nr,
                calls: *calls,
                phases: *phases,
                first_seen_ms: f,
            });
        }
        let mut first_seen: Vec<(u8, u32, u64)> =
            first.into_iter().map(|((a, n), t)| (a, n, t)).collect();
        first_seen.sort_unstable();
        record.first_seen = first_seen;
        if exiting {
            record.exited = true;
            for k in state.keys.values_mut() {
                if k.container_id == id {
                    k.done = true;
                    finished_keys = true;
                }
            }
        }
        if (record.incomplete && version < 3) || (record.unverified && version < 4) {
            withheld.push(id);
            continue;
        }
        deltas.push(ContainerDelta {
            container: record.to_ref(&id),
            started_at_ms: record.started_at_ms,
            last_seen_ms: now_ms,
            exited_at_ms: exiting.then_some(now_ms),
            syscalls: out,
            incomplete: record.incomplete,
            unverified: record.unverified,
            denials,
            args,
            executed,
        });
    }
    // Withheld calls alone need no message (they are never sent); an exit
    // or a new mark must be committed, even in an empty envelope.
    if deltas.is_empty()
        && !finished_keys
        && newly_incomplete.is_empty()
        && newly_unverified.is_empty()
    {
        return None;
    }

    let start = if committed.last_end_ms > 0 {
        committed.last_end_ms
    } else {
        started_ms.min(now_ms)
    };
    state.seq = committed.seq + 1;
    state.last_end_ms = now_ms;
    let envelope = Envelope {
        host_id: state.host_id.clone(),
        boot_id: state.stream_id(),
        seq: state.seq,
        interval_start_ms: start,
        interval_end_ms: now_ms,
        containers: deltas,
    };
    Some(Cut {
        state,
        envelope,
        finished_keys,
        newly_incomplete,
        newly_unverified,
        withheld,
        dropped_denials,
        dropped_arg_sets,
        dropped_executed,
    })
}

/// The files of `now` not yet in `sent` (fingerprints, sorted), at most
/// [`schemas::executed::MAX_FILES_PER_MESSAGE`] of them (in path order),
/// added to `sent`. The rest wait for a later tick that still sees them.
fn new_files(sent: &mut Vec<u64>, now: ExecutedFiles) -> ExecutedFiles {
    let mut out = ExecutedFiles::new();
    for f in now {
        if out.len() == schemas::executed::MAX_FILES_PER_MESSAGE {
            break;
        }
        let fp = crate::executed::fingerprint(&f);
        if let Err(at) = sent.binary_search(&fp) {
            sent.insert(at, fp);
            out.insert(f);
        }
    }
    out
}

/// Splits `envelope` (message `seq`) into messages of whole containers
/// whose encodings (`version`) are at most `limit` bytes each, numbered
/// `seq`, `seq + 1`, ...: same host, stream and interval. One message when
/// it fits. A container too large for `limit` on its own goes alone (the
/// broker will refuse it, and the spool sets it aside). Containers keep
/// their order. Containers are measured once each, so the cost is linear.
pub(super) fn split(
    envelope: Envelope,
    version: u16,
    limit: usize,
) -> Result<Vec<Envelope>, schemas::wire::WireError> {
    use schemas::wire::encoded_len;
    let seq = envelope.seq;
    let whole = encoded_len(&envelope, version)?;
    if whole <= limit || envelope.containers.len() < 2 {
        return Ok(vec![envelope]);
    }
    let mut empty = envelope.clone();
    empty.containers.clear();
    // The container count's varint may grow by a few bytes.
    let base = encoded_len(&empty, version)? + 9;
    let mut pieces: Vec<Envelope> = Vec::new();
    let mut size = base;
    let mut current = empty.clone();
    for c in envelope.containers {
        let one = {
            let mut e = empty.clone();
            e.containers.push(c.clone());
            encoded_len(&e, version)? - (base - 9)
        };
        if !current.containers.is_empty() && size + one > limit {
            pieces.push(std::mem::replace(&mut current, empty.clone()));
            size = base;
        }
        size += one;
        current.containers.push(c);
    }
    pieces.push(current);
    for (i, p) in pieces.iter_mut().enumerate() {
        p.seq = seq + i as u64;
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::wire::SeccompFilter;
    use schemas::Abi;

    const GETPID: u32 = 39;
    const PIVOT_ROOT: u32 = 155;

    /// Message 7 with `n` containers of `syscalls` syscalls each.
    fn big(n: usize, syscalls: u32) -> Envelope {
        let mut phases = PhaseSet::default();
        phases.insert(Phase::Image);
        Envelope {
            host_id: "h".into(),
            boot_id: "b".into(),
            seq: 7,
            interval_start_ms: 1_700_000_000_000,
            interval_end_ms: 1_700_000_010_000,
            containers: (0..n)
                .map(|i| ContainerDelta {
                    container: ContainerRef {
                        runtime: "docker".into(),
                        id: format!("{i:064x}"),
                        image: format!("app-{i}:1"),
                        ..ContainerRef::default()
                    },
                    started_at_ms: 1_700_000_000_000,
                    last_seen_ms: 1_700_000_010_000,
                    exited_at_ms: None,
                    incomplete: false,
                    unverified: false,
                    denials: Default::default(),
                    args: Default::default(),
                    syscalls: (0..syscalls)
                        .map(|nr| SyscallDelta {
                            abi: Abi::X86_64,
                            nr,
                            calls: 1 + u64::from(nr) * 1_000,
                            phases,
                            first_seen_ms: 1_700_000_000_000,
                        })
                        .collect(),
                    executed: Default::default(),
                })
                .collect(),
        }
    }

    #[test]
    fn an_envelope_over_the_limit_splits_into_whole_containers_under_it() {
        use schemas::wire::{encode_version, encoded_len, UNSIGNED_VERSION as V};
        // Signed (v5) messages are measured with their trailer.
        let signed = split(big(300, 20), 5, 8192).unwrap();
        assert!(signed.len() >= 16, "{}", signed.len());
        assert!(signed.iter().all(|p| encoded_len(p, 5).unwrap() <= 8192));
        let e = big(300, 20);
        let whole = encode_version(&e, V).unwrap().len();
        assert!(whole > 40_000, "{whole}");
        let pieces = split(e.clone(), V, 8192).unwrap();
        let sizes: Vec<usize> = pieces
            .iter()
            .map(|p| encode_version(p, V).unwrap().len())
            .collect();
        assert!(sizes.iter().all(|s| *s <= 8192), "{sizes:?}");
        // Greedy: every piece but the last could not take one more.
        let one = encode_version(&big(1, 20), V).unwrap().len()
            - encode_version(&big(0, 20), V).unwrap().len();
        assert!(
            sizes[..sizes.len() - 1].iter().all(|s| s + one > 8192),
            "{one} {sizes:?}"
        );
        assert_eq!(sizes.len(), 16);
        let seqs: Vec<u64> = pieces.iter().map(|p| p.seq).collect();
        assert_eq!(seqs, (7..7 + pieces.len() as u64).collect::<Vec<_>>());
        for p in &pieces {
            assert_eq!(
                (
                    &p.host_id,
                    &p.boot_id,
                    p.interval_start_ms,
                    p.interval_end_ms
                ),
                (
                    &e.host_id,
                    &e.boot_id,
                    e.interval_start_ms,
                    e.interval_end_ms
                )
            );
        }
        let all: Vec<ContainerDelta> = pieces.into_iter().flat_map(|p| p.containers).collect();
        assert_eq!(all, e.containers);
        // One that fits stays whole; a container too large for the limit
        // on its own goes alone.
        assert_eq!(split(e.clone(), V, whole).unwrap(), [e]);
        let giant = big(3, 400);
        let alone = split(giant.clone(), V, 1024).unwrap();
        assert_eq!(alone.len(), 3);
        assert_eq!(alone[2].containers, giant.containers[2..]);
    }

    fn usage(calls: &[(u32, u64, &[Phase])]) -> Observation {
        let mut o = Observation::default();
        for (nr, n, phases) in calls {
            for p in *phases {
                o.record(Abi::X86_64, *nr, *p, 0);
            }
            o.record(Abi::X86_64, *nr, phases[0], *n);
        }
        o
    }

    fn observed(key: &str, id: &str, alive: bool, u: Observation) -> Observed {
        Observed {
            key: key.into(),
            container_id: id.into(),
            alive,
            created_ms: 1_000,
            usage: u,
            lost_calls: 0,
            denials: Denials::new(),
            unverified: None,
            executed: ExecutedFiles::new(),
            new_container: Some(ContainerRef {
                runtime: "docker".into(),
                id: id.into(),
                image: "img:1".into(),
                image_digest: "sha256:ab".into(),
                pod: None,
                seccomp: SeccompFilter::RuntimeDefault,
            }),
        }
    }

    fn calls(e: &Envelope, id: &str, nr: u32) -> u64 {
        e.containers
            .iter()
            .filter(|c| c.container.id == id)
            .flat_map(|c| &c.syscalls)
            .filter(|s| s.nr == nr)
            .map(|s| s.calls)
            .sum()
    }

    #[test]
    fn deltas_are_against_the_committed_snapshot() {
        let s0 = State::new("h", "b").expect("new state");
        let o = observed("1:2", "c1", true, usage(&[(GETPID, 10, &[Phase::Image])]));
        let c1 = cut(&s0, &[o], 5_000, 2_000, 4).expect("a delta");
        assert_eq!(c1.envelope.seq, 1);
        assert_eq!(
            (c1.envelope.interval_start_ms, c1.envelope.interval_end_ms),
            (2_000, 5_000)
        );
        assert_eq!(calls(&c1.envelope, "c1", GETPID), 10);
        let d = &c1.envelope.containers[0];
        assert_eq!(d.container.image, "img:1");
        assert_eq!((d.started_at_ms, d.exited_at_ms), (1_000, None));
        assert_eq!(d.syscalls[0].first_seen_ms, 5_000);
        assert!(!c1.finished_keys);

        // The same cumulative count again: nothing to say, no seq used.
        let same = observed("1:2", "c1", true, usage(&[(GETPID, 10, &[Phase::Image])]));
        assert!(cut(&c1.state, &[same], 6_000, 2_000, 4).is_none());

        // 25 more; the interval starts where the last one ended.
        let more = observed("1:2", "c1", true, usage(&[(GETPID, 35, &[Phase::Image])]));
        let c2 = cut(&c1.state, &[more], 7_000, 2_000, 4).expect("a delta");
        assert_eq!(c2.envelope.seq, 2);
        assert_eq!(c2.envelope.interval_start_ms, 5_000);
        assert_eq!(calls(&c2.envelope, "c1", GETPID), 25);
        // First seen stays the first time.
        assert_eq!(c2.envelope.containers[0].syscalls[0].first_seen_ms, 5_000);

        // The counters restarted (fewer than the snapshot): all are new.
        let restarted = observed("1:2", "c1", true, usage(&[(GETPID, 4, &[Phase::Image])]));
        let c3 = cut(&c2.state, &[restarted], 8_000, 2_000, 4).expect("a delta");
        assert_eq!(calls(&c3.envelope, "c1", GETPID), 4);
    }

    #[test]
    fn setup_only_calls_are_not_published() {
        let s0 = State::new("h", "b").expect("new state");
        let o = observed(
            "1:2",
            "c1",
            true,
            usage(&[
                (PIVOT_ROOT, 1, &[Phase::Setup]),
                (GETPID, 3, &[Phase::Setup, Phase::Runtime]),
            ]),
        );
        let c = cut(&s0, &[o], 5_000, 0, 4).expect("a delta");
        assert_eq!(calls(&c.envelope, "c1", PIVOT_ROOT), 0);
        let getpid = &c.envelope.containers[0].syscalls[0];
        assert_eq!((getpid.nr, getpid.calls), (GETPID, 3));
        assert_eq!(getpid.phases.0, Phase::Runtime.bit());
    }

    #[test]
    fn keys_of_one_container_are_summed_and_exit_is_said_once() {
        let s0 = State::new("h", "b").expect("new state");
        let a = observed("1:2", "c1", true, usage(&[(GETPID, 10, &[Phase::Image])]));
        let b = observed("1:3", "c1", false, usage(&[(GETPID, 5, &[Phase::Image])]));
        let c1 = cut(&s0, &[a, b], 5_000, 0, 4).expect("a delta");
        assert_eq!(c1.envelope.containers.len(), 1);
        assert_eq!(calls(&c1.envelope, "c1", GETPID), 15);
        assert_eq!(c1.envelope.containers[0].exited_at_ms, None);

        // Every key dead, no new calls: the final delta, empty.
        let a = observed("1:2", "c1", false, usage(&[(GETPID, 10, &[Phase::Image])]));
        let b = observed("1:3", "c1", false, usage(&[(GETPID, 5, &[Phase::Image])]));
        let c2 = cut(&c1.state, &[a.clone(), b.clone()], 6_000, 0, 4).expect("final delta");
        let d = &c2.envelope.containers[0];
        assert_eq!((d.exited_at_ms, d.syscalls.len()), (Some(6_000), 0));
        assert!(c2.finished_keys);
        assert!(c2.state.keys.values().all(|k| k.done));
        assert!(c2.state.containers["c1"].exited);
        // Done keys are never published again.
        assert!(cut(&c2.state, &[a, b], 7_000, 0, 4).is_none());
    }

    fn lossy(key: &str, id: &str, alive: bool, u: Observation, lost: u64) -> Observed {
        Observed {
            lost_calls: lost,
            ..observed(key, id, alive, u)
        }
    }

    #[test]
    fn a_container_that_lost_calls_is_incomplete_for_good() {
        let s0 = State::new("h", "b").expect("new state");
        let ok = observed("1:2", "ok", true, usage(&[(GETPID, 10, &[Phase::Image])]));
        let bad = lossy(
            "1:3",
            "bad",
            true,
            usage(&[(GETPID, 4, &[Phase::Image])]),
            7,
        );
        let c1 = cut(&s0, &[ok, bad], 5_000, 0, 4).expect("a delta");
        let flags: Vec<(&str, bool, u64)> = c1
            .envelope
            .containers
            .iter()
            .map(|c| {
                (
                    c.container.id.as_str(),
                    c.incomplete,
                    c.syscalls.len() as u64,
                )
            })
            .collect();
        assert_eq!(flags, [("bad", true, 1), ("ok", false, 1)]);
        assert_eq!(c1.newly_incomplete, ["bad"]);
        assert!(c1.withheld.is_empty());
        assert!(c1.state.containers["bad"].incomplete);
        assert!(!c1.state.containers["ok"].incomplete);

        // More calls, lost count unchanged: still incomplete, not "new".
        let bad = lossy(
            "1:3",
            "bad",
            true,
            usage(&[(GETPID, 6, &[Phase::Image])]),
            7,
        );
        let c2 = cut(&c1.state, &[bad], 6_000, 0, 4).expect("a delta");
        let d = &c2.envelope.containers[0];
        assert_eq!((d.incomplete, d.syscalls[0].calls), (true, 2));
        assert!(c2.newly_incomplete.is_empty());

        // The kernel forgot the loss (a reloaded counter): the committed
        // state keeps the mark.
        let bad = observed("1:3", "bad", false, usage(&[(GETPID, 6, &[Phase::Image])]));
        let c3 = cut(&c2.state, &[bad], 7_000, 0, 4).expect("the final delta");
        let d = &c3.envelope.containers[0];
        assert_eq!((d.incomplete, d.exited_at_ms), (true, Some(7_000)));
    }

    /// A workload that never got a slot: no calls, only its loss. The cut
    /// that marks it says so (an empty, incomplete delta); later ticks
    /// without news say nothing until it exits.
    #[test]
    fn a_workload_without_a_slot_is_sent_once_marked_then_at_exit() {
        let s0 = State::new("h", "b").expect("new state");
        let noslot = lossy("1:4", "n", true, Observation::default(), 12);
        let c1 = cut(&s0, std::slice::from_ref(&noslot), 5_000, 0, 4).expect("the mark");
        let d = &c1.envelope.containers[0];
        assert_eq!(
            (
                d.container.id.as_str(),
                d.incomplete,
                d.syscalls.len(),
                d.exited_at_ms
            ),
            ("n", true, 0, None)
        );
        assert!(cut(&c1.state, &[noslot], 6_000, 0, 4).is_none());
        let gone = lossy("1:4", "n", false, Observation::default(), 12);
        let c2 = cut(&c1.state, &[gone], 7_000, 0, 4).expect("the exit");
        let d = &c2.envelope.containers[0];
        assert_eq!((d.incomplete, d.exited_at_ms), (true, Some(7_000)));
        assert!(c2.finished_keys);
    }

    /// Below wire version 3 the flag cannot travel: an incomplete
    /// container is left out of every envelope, its state still advances,
    /// and a cut with only its news is an empty envelope (seqs stay
    /// gap-free, exits are committed and the keys reaped).
    #[test]
    fn below_version_3_incomplete_containers_are_withheld() {
        let s0 = State::new("h", "b").expect("new state");
        let ok = observed("1:2", "ok", true, usage(&[(GETPID, 10, &[Phase::Image])]));
        let bad = lossy(
            "1:3",
            "bad",
            true,
            usage(&[(GETPID, 4, &[Phase::Image])]),
            7,
        );
        let c1 = cut(&s0, &[ok.clone(), bad], 5_000, 0, 2).expect("a delta");
        let ids: Vec<&str> = c1
            .envelope
            .containers
            .iter()
            .map(|c| c.container.id.as_str())
            .collect();
        assert_eq!(ids, ["ok"]);
        assert!(!c1.envelope.containers[0].incomplete);
        assert_eq!(
            (c1.newly_incomplete.clone(), c1.withheld.clone()),
            (vec!["bad".to_string()], vec!["bad".to_string()])
        );
        assert!(c1.state.containers["bad"].incomplete);
        schemas::wire::encode_version(&c1.envelope, 2).expect("v2 can carry it");

        // Only withheld calls: nothing to send, no seq used.
        let bad = lossy(
            "1:3",
            "bad",
            true,
            usage(&[(GETPID, 9, &[Phase::Image])]),
            7,
        );
        assert!(cut(&c1.state, &[ok.clone(), bad], 6_000, 0, 2).is_none());

        // Its exit is committed in an envelope with no container.
        let bad = lossy(
            "1:3",
            "bad",
            false,
            usage(&[(GETPID, 9, &[Phase::Image])]),
            7,
        );
        let c2 = cut(&c1.state, &[ok, bad], 7_000, 0, 2).expect("the exit");
        assert_eq!(c2.envelope.seq, 2);
        assert!(c2.envelope.containers.is_empty());
        assert_eq!(c2.withheld, ["bad"]);
        assert!(c2.finished_keys);
        assert!(c2.state.containers["bad"].exited);
        schemas::wire::encode_version(&c2.envelope, 2).expect("an empty v2 message");
    }

    fn ran(key: &str, id: &str, files: &[&str]) -> Observed {
        Observed {
            executed: files
                .iter()
                .map(|p| schemas::ExecutedFile {
                    path: (*p).into(),
                    kind: schemas::ExecKind::Exec,
                    dev: 1,
                    ino: p.len() as u64,
                })
                .collect(),
            ..observed(key, id, true, usage(&[(GETPID, 1, &[Phase::Image])]))
        }
    }

    fn paths(c: &Cut) -> Vec<Vec<String>> {
        c.envelope
            .containers
            .iter()
            .map(|d| d.executed.iter().map(|f| f.path.clone()).collect())
            .collect()
    }

    /// Each file a container runs is sent once (merged over its keys),
    /// also when no new call comes with it; below wire version 8 the
    /// files are counted as dropped and the state moves past them.
    #[test]
    fn executed_files_are_sent_once_per_container() {
        let s0 = State::new("h", "b").expect("new state");
        let c1 = cut(
            &s0,
            &[
                ran("1:2", "a", &["/usr/sbin/nginx", "/bin/sh"]),
                ran("1:3", "a", &["/bin/sh"]),
            ],
            2_000,
            1_000,
            8,
        )
        .expect("a first delta");
        assert_eq!(paths(&c1), [["/bin/sh", "/usr/sbin/nginx"]]);
        assert_eq!(c1.dropped_executed, 0);
        // The same files again, no new call: nothing to send.
        let again = ran("1:2", "a", &["/usr/sbin/nginx", "/bin/sh"]);
        assert!(cut(&c1.state, &[again], 3_000, 1_000, 8).is_none());
        // A new file alone is sent.
        let more = ran("1:2", "a", &["/usr/sbin/nginx", "/usr/bin/rm"]);
        let c2 = cut(&c1.state, &[more], 3_000, 1_000, 8).expect("the new file");
        assert_eq!(paths(&c2), [["/usr/bin/rm"]]);
        assert_eq!(c2.envelope.containers[0].syscalls, []);
        // Below v8: dropped, counted, and not sent later either.
        let c3 = cut(&s0, &[ran("1:2", "a", &["/bin/sh"])], 2_000, 1_000, 7).expect("calls");
        assert_eq!(paths(&c3), [Vec::<String>::new()]);
        assert_eq!(c3.dropped_executed, 1);
        let same = ran("1:2", "a", &["/bin/sh"]);
        assert!(cut(&c3.state, &[same], 3_000, 1_000, 8).is_none());
    }

    /// At most MAX_FILES_PER_MESSAGE files of a container go in one
    /// message; the rest follow in the next one that still sees them.
    #[test]
    fn a_container_with_too_many_files_sends_them_over_several_messages() {
        let max = schemas::executed::MAX_FILES_PER_MESSAGE;
        let names: Vec<String> = (0..max + 5).map(|i| format!("/lib/m{i:05}.so")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let s0 = State::new("h", "b").expect("new state");
        let c1 = cut(&s0, &[ran("1:2", "a", &refs)], 2_000, 1_000, 8).expect("first");
        assert_eq!(c1.envelope.containers[0].executed.len(), max);
        let c2 = cut(&c1.state, &[ran("1:2", "a", &refs)], 3_000, 1_000, 8).expect("rest");
        assert_eq!(paths(&c2), [names[max..].to_vec()]);
        // A full message is one the aggregators accept.
        let mut e = c1.envelope.clone();
        e.interval_start_ms = 1_764_000_000_000;
        e.interval_end_ms = 1_764_000_010_000;
        for c in &mut e.containers {
            (c.started_at_ms, c.last_seen_ms) = (e.interval_start_ms, e.interval_end_ms);
            for s in &mut c.syscalls {
                s.first_seen_ms = e.interval_start_ms;
            }
        }
        let key = schemas::wire::HostKey::from_seed([1; 32]);
        schemas::wire::encode_as(&e, 8, Some(&key))
            .and_then(|b| schemas::wire::decode(&b))
            .expect("a full message is in range");
    }

    fn forged(key: &str, id: &str, alive: bool, u: Observation) -> Observed {
        Observed {
            unverified: Some("its parent cgroup is delegated".into()),
            ..observed(key, id, alive, u)
        }
    }

    /// A key that failed verification marks its container unverified for
    /// good (a later verified key of the same id does not clear it), the
    /// mark is sent at once, and below wire version 4 the container is
    /// withheld.
    #[test]
    fn unverified_containers_are_marked_for_good_and_withheld_below_version_4() {
        let s0 = State::new("h", "b").expect("new state");
        let ok = observed("1:2", "ok", true, usage(&[(GETPID, 10, &[Phase::Image])]));
        let bad = forged("1:3", "bad", true, Observation::default());
        let c1 = cut(&s0, &[ok.clone(), bad.clone()], 5_000, 0, 4).expect("the mark");
        let flags: Vec<(&str, bool, usize)> = c1
            .envelope
            .containers
            .iter()
            .map(|c| (c.container.id.as_str(), c.unverified, c.syscalls.len()))
            .collect();
        assert_eq!(flags, [("bad", true, 0), ("ok", false, 1)]);
        assert_eq!(
            c1.newly_unverified,
            [(
                "bad".to_string(),
                "its parent cgroup is delegated".to_string()
            )]
        );
        assert!(c1.state.containers["bad"].unverified);
        // Sticky: a verified key of the same id later changes nothing.
        let later = observed("1:4", "bad", true, usage(&[(GETPID, 2, &[Phase::Image])]));
        let c2 = cut(&c1.state, &[later], 6_000, 0, 4).expect("a delta");
        assert!(c2.envelope.containers[0].unverified);
        assert!(c2.newly_unverified.is_empty());

        // Version 3 cannot say it: withheld, the rest sent.
        let c3 = cut(&s0, &[ok, bad], 5_000, 0, 3).expect("a delta");
        let ids: Vec<&str> = c3
            .envelope
            .containers
            .iter()
            .map(|c| c.container.id.as_str())
            .collect();
        assert_eq!(ids, ["ok"]);
        assert_eq!(c3.withheld, ["bad"]);
        schemas::wire::encode_version(&c3.envelope, 3).expect("v3 can carry it");
    }

    fn denied(key: &str, id: &str, alive: bool, d: &[(u32, schemas::DenyAction, u64)]) -> Observed {
        Observed {
            denials: d
                .iter()
                .map(|&(nr, action, n)| {
                    (
                        DenialKey {
                            abi: Abi::X86_64,
                            nr,
                            action,
                        },
                        n,
                    )
                })
                .collect(),
            ..observed(key, id, alive, usage(&[(GETPID, 1, &[Phase::Image])]))
        }
    }

    /// Denials go out as deltas of the kernel's cumulative counts, per
    /// container, like calls; a tick with only new denials sends them; a
    /// restarted counter counts from zero; below wire version 6 they are
    /// dropped (counted in `dropped_denials`) and the state moves past
    /// them.
    #[test]
    fn denials_are_cumulative_to_delta_and_dropped_below_version_6() {
        use schemas::DenyAction::{Errno, Kill};
        let s0 = State::new("h", "b").expect("new state");
        let d = |c: &Cut| -> Vec<(String, u32, schemas::DenyAction, u64)> {
            c.envelope
                .containers
                .iter()
                .flat_map(|x| {
                    x.denials
                        .iter()
                        .map(|(k, n)| (x.container.id.clone(), k.nr, k.action, *n))
                })
                .collect()
        };
        let c1 = cut(
            &s0,
            &[
                denied("1:2", "a", true, &[(PIVOT_ROOT, Errno(1), 5)]),
                denied("1:3", "a", true, &[(PIVOT_ROOT, Errno(1), 2)]),
            ],
            10_000,
            0,
            6,
        )
        .unwrap();
        assert_eq!(d(&c1), [("a".to_string(), PIVOT_ROOT, Errno(1), 7)]);
        assert_eq!(c1.dropped_denials, 0);
        // Only new denials (calls unchanged): still a delta, with them.
        let c2 = cut(
            &c1.state,
            &[
                denied("1:2", "a", true, &[(PIVOT_ROOT, Errno(1), 8)]),
                denied("1:3", "a", true, &[(PIVOT_ROOT, Errno(1), 2)]),
            ],
            20_000,
            0,
            6,
        )
        .unwrap();
        assert_eq!(d(&c2), [("a".to_string(), PIVOT_ROOT, Errno(1), 3)]);
        assert!(c2.envelope.containers[0].syscalls.is_empty());
        // Nothing new: no message.
        assert!(cut(
            &c2.state,
            &[
                denied("1:2", "a", true, &[(PIVOT_ROOT, Errno(1), 8)]),
                denied("1:3", "a", true, &[(PIVOT_ROOT, Errno(1), 2)]),
            ],
            30_000,
            0,
            6,
        )
        .is_none());
        // The process was killed and the container exited: its final
        // delta carries the kill; a restarted counter (4 < 8) counts 4.
        let c3 = cut(
            &c2.state,
            &[
                denied(
                    "1:2",
                    "a",
                    false,
                    &[(PIVOT_ROOT, Errno(1), 4), (GETPID, Kill, 1)],
                ),
                denied("1:3", "a", false, &[(PIVOT_ROOT, Errno(1), 2)]),
            ],
            40_000,
            0,
            6,
        )
        .unwrap();
        assert_eq!(
            d(&c3),
            [
                ("a".to_string(), GETPID, Kill, 1),
                ("a".to_string(), PIVOT_ROOT, Errno(1), 4)
            ]
        );
        assert_eq!(c3.envelope.containers[0].exited_at_ms, Some(40_000));
        // Below v6: not sent, counted, and the state moves past them.
        let c4 = cut(
            &s0,
            &[denied("1:2", "b", true, &[(PIVOT_ROOT, Errno(1), 5)])],
            10_000,
            0,
            5,
        )
        .unwrap();
        assert!(d(&c4).is_empty());
        assert_eq!(c4.dropped_denials, 5);
        assert_eq!(c4.state.keys["1:2"].denied, [(0, PIVOT_ROOT, 0, 1, 5)]);
    }

    const SOCKET: u32 = 41;
    const PERSONALITY: u32 = 135;

    /// One argument set of `nr`: fields (index, mask), values, overflow.
    type SetSpec<'a> = (u32, &'a [(u8, u32)], &'a [&'a [u32]], u64);

    fn arg_sets(sets: &[SetSpec]) -> ArgSets {
        sets.iter()
            .map(|&(nr, fields, values, overflow)| {
                (
                    SyscallKey {
                        abi: Abi::X86_64,
                        nr,
                    },
                    schemas::ArgSet {
                        fields: fields
                            .iter()
                            .map(|&(index, mask)| schemas::ArgField { index, mask })
                            .collect(),
                        values: values.iter().map(|v| v.to_vec()).collect(),
                        overflow,
                    },
                )
            })
            .collect()
    }

    /// A key of container `id` that made `calls` getpid calls and
    /// recorded `sets`.
    fn recorded(key: &str, id: &str, calls: u64, sets: &[SetSpec]) -> Observed {
        let mut u = usage(&[(GETPID, calls, &[Phase::Image])]);
        u.args = arg_sets(sets);
        observed(key, id, true, u)
    }

    const FT: &[(u8, u32)] = &[(0, 0xffff_ffff), (1, 0xf)];
    const P: &[(u8, u32)] = &[(0, 0xffff_ffff)];

    /// Argument sets go out whole, per container (merged over its keys),
    /// when they changed since the committed state (grew, or overflowed
    /// more); a tick whose only news is a set sends it; an unchanged set
    /// is not sent again; below wire version 7 they are dropped (counted
    /// in `dropped_arg_sets`) and the state moves past them.
    #[test]
    fn argument_sets_are_sent_whole_when_they_change_and_dropped_below_version_7() {
        let s0 = State::new("h", "b").expect("new state");
        let args = |c: &Cut| -> Vec<(String, ArgSets)> {
            c.envelope
                .containers
                .iter()
                .map(|x| (x.container.id.clone(), x.args.clone()))
                .collect()
        };
        let tick1 = [
            recorded("1:2", "a", 1, &[(SOCKET, FT, &[&[2, 1]], 0)]),
            recorded(
                "1:3",
                "a",
                1,
                &[(SOCKET, FT, &[&[1, 2]], 0), (PERSONALITY, P, &[&[0]], 0)],
            ),
        ];
        let c1 = cut(&s0, &tick1, 10_000, 0, 7).expect("a delta");
        assert_eq!(
            args(&c1),
            [(
                "a".to_string(),
                arg_sets(&[
                    (SOCKET, FT, &[&[1, 2], &[2, 1]], 0),
                    (PERSONALITY, P, &[&[0]], 0)
                ])
            )]
        );
        assert_eq!(c1.dropped_arg_sets, 0);
        assert_eq!(
            c1.state.keys["1:3"].args,
            [(0, SOCKET, 1, 0), (0, PERSONALITY, 1, 0)]
        );
        // Nothing new: no message.
        assert!(cut(&c1.state, &tick1, 20_000, 0, 7).is_none());
        // Only a grown set (calls unchanged): a delta with that set whole,
        // the unchanged ones left out.
        let tick3 = [
            recorded("1:2", "a", 1, &[(SOCKET, FT, &[&[2, 1], &[10, 2]], 0)]),
            tick1[1].clone(),
        ];
        let c3 = cut(&c1.state, &tick3, 30_000, 0, 7).expect("a delta");
        assert_eq!(
            args(&c3),
            [(
                "a".to_string(),
                arg_sets(&[(SOCKET, FT, &[&[2, 1], &[10, 2]], 0)])
            )]
        );
        assert!(c3.envelope.containers[0].syscalls.is_empty());
        // More overflow, the same values: sent again, with the cumulative
        // overflow (the stores keep the largest).
        let tick4 = [
            tick3[0].clone(),
            recorded(
                "1:3",
                "a",
                1,
                &[(SOCKET, FT, &[&[1, 2]], 2), (PERSONALITY, P, &[&[0]], 0)],
            ),
        ];
        let c4 = cut(&c3.state, &tick4, 40_000, 0, 7).expect("a delta");
        assert_eq!(
            args(&c4),
            [("a".to_string(), arg_sets(&[(SOCKET, FT, &[&[1, 2]], 2)]))]
        );
        // Version 6: the grown set is dropped with the calls sent; the
        // state moves past it, so version 7 later does not send it.
        let tick5 = [
            recorded(
                "1:2",
                "a",
                3,
                &[(SOCKET, FT, &[&[2, 1], &[10, 2], &[2, 2]], 0)],
            ),
            tick4[1].clone(),
        ];
        let c5 = cut(&c4.state, &tick5, 50_000, 0, 6).expect("a delta");
        assert_eq!(args(&c5), [("a".to_string(), ArgSets::new())]);
        assert_eq!(c5.envelope.containers[0].syscalls.len(), 1);
        assert_eq!(c5.dropped_arg_sets, 1);
        assert_eq!(c5.state.keys["1:2"].args, [(0, SOCKET, 3, 0)]);
        assert!(cut(&c5.state, &tick5, 60_000, 0, 7).is_none());
        // A state written before argument sets (none recorded per key):
        // every set is sent again, whole.
        let mut old = c5.state.clone();
        for k in old.keys.values_mut() {
            k.args.clear();
        }
        let c6 = cut(&old, &tick5, 60_000, 0, 7).expect("a delta");
        assert_eq!(
            args(&c6),
            [(
                "a".to_string(),
                arg_sets(&[
                    (SOCKET, FT, &[&[1, 2], &[2, 1], &[2, 2], &[10, 2]], 2),
                    (PERSONALITY, P, &[&[0]], 0)
                ])
            )]
        );
        // The message encodes at version 7 and decodes to the same sets.
        let key = schemas::wire::HostKey::from_seed([3; 32]);
        let b = schemas::wire::encode_signed(&c6.envelope, &key).expect("encode");
        let back = schemas::wire::decode_unchecked(&b).expect("decode");
        assert_eq!(back.containers[0].args, c6.envelope.containers[0].args);
    }
}
