//! How far an image's observations can be trusted: exposure, quiet time,
//! incidence-based sample coverage and the Chao2 richness estimate, and the
//! novelty of the most recent containers.
//!
//! The sampling unit is a container that made at least one syscall in a
//! profile-relevant phase (see [`crate::decide`]): a container that never
//! got past the runtime's set-up did not run the image and says nothing
//! about it. The "species" are (ABI, syscall number) pairs.

use serde::Serialize;

/// Incidence counts: T sampling units, U incidences (sum over syscalls of
/// the units that used it), S_obs distinct syscalls, Q1 and Q2 the syscalls
/// used by exactly one and exactly two units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Incidence {
    pub t: u64,
    pub u: u64,
    pub s_obs: u64,
    pub q1: u64,
    pub q2: u64,
}

impl Incidence {
    /// From the number of units each syscall was used by (zeros ignored).
    pub fn from_counts(t: u64, per_syscall_units: impl IntoIterator<Item = u64>) -> Incidence {
        let mut inc = Incidence {
            t,
            ..Incidence::default()
        };
        for c in per_syscall_units {
            if c == 0 {
                continue;
            }
            inc.s_obs += 1;
            inc.u += c;
            match c {
                1 => inc.q1 += 1,
                2 => inc.q2 += 1,
                _ => {}
            }
        }
        inc
    }

    /// Incidence-based sample coverage (Chao and Jost 2012, eq. for
    /// incidence data): the estimated share of a new unit's incidences that
    /// fall on syscalls already seen,
    ///
    /// `C = 1 - (Q1/U) * [(T-1) Q1 / ((T-1) Q1 + 2 Q2)]`.
    ///
    /// Edge cases, decided here rather than left to 0/0:
    /// - no incidence at all (T = 0 or U = 0): 0, nothing is known;
    /// - T = 1: 0. With one unit every syscall is a singleton and the
    ///   bracket is 0/0; one container cannot tell how much it missed.
    /// - Q1 = 0 (with T >= 2): 1. Every syscall was seen at least twice, the
    ///   estimator has no singleton mass to extrapolate from (also covers
    ///   Q1 = Q2 = 0).
    pub fn coverage(&self) -> f64 {
        if self.t == 0 || self.u == 0 || self.t == 1 {
            return 0.0;
        }
        if self.q1 == 0 {
            return 1.0;
        }
        let (t1, q1, q2, u) = (
            (self.t - 1) as f64,
            self.q1 as f64,
            self.q2 as f64,
            self.u as f64,
        );
        1.0 - (q1 / u) * ((t1 * q1) / (t1 * q1 + 2.0 * q2))
    }

    /// Bias-corrected Chao2: `S_obs + ((T-1)/T) * Q1 (Q1-1) / (2 (Q2+1))`,
    /// the estimated number of syscalls the image uses in all. Defined for
    /// every input (the +1 avoids Q2 = 0); T = 0 gives S_obs = 0.
    pub fn chao2(&self) -> f64 {
        if self.t == 0 {
            return self.s_obs as f64;
        }
        let t = self.t as f64;
        let q1 = self.q1 as f64;
        self.s_obs as f64
            + ((t - 1.0) / t) * (q1 * (q1 - 1.0).max(0.0)) / (2.0 * (self.q2 as f64 + 1.0))
    }
}

/// Of the last `k` units (in start order), how many used a syscall that no
/// earlier unit (in the whole history, not only the window) had used.
/// `units` holds each unit's syscalls as dense ids below `n_ids`, in start
/// order. Returns (window size, units with something new).
pub fn recent_novelty(units: &[&[u32]], n_ids: usize, k: u64) -> (u64, u64) {
    let mut seen = vec![false; n_ids];
    let window_start = units.len().saturating_sub(k as usize);
    let mut new_in_window = 0;
    for (i, unit) in units.iter().enumerate() {
        let mut new = false;
        for &id in *unit {
            let slot = &mut seen[id as usize];
            if !*slot {
                *slot = true;
                new = true;
            }
        }
        if new && i >= window_start {
            new_in_window += 1;
        }
    }
    ((units.len() - window_start) as u64, new_in_window)
}

/// The confidence figures of one image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Confidence {
    /// Sampling units: containers with at least one profile-relevant call.
    pub containers: u64,
    /// Distinct hosts of those containers.
    pub hosts: u64,
    /// The store's exposure figures for the image (all containers, in
    /// every phase).
    pub store_containers: u64,
    pub store_hosts: u64,
    /// Container-hours (the store's container-seconds / 3600).
    pub container_hours: f64,
    /// When the most recently discovered syscall was first seen, and how
    /// long ago that is (`now - that`, 0 if in the future). `None` when no
    /// syscall was seen.
    pub last_new_ms: Option<u64>,
    pub quiet_ms: Option<u64>,
    pub incidence: Incidence,
    pub coverage: f64,
    pub chao2: f64,
    /// Novelty of the last K containers: window size, how many showed a
    /// new syscall, and their share (1 when the window is empty).
    pub recent_window: u64,
    pub recent_new: u64,
    pub recent_new_share: f64,
    /// Observed syscalls left out of the incidence, coverage, Chao2,
    /// novelty and quiet time because the image's binaries can reach them
    /// and the reachability tier lets them run anyway
    /// ([`crate::tally::tally_expecting`]). Not in the report when 0.
    #[serde(default, skip_serializing_if = "crate::confidence::is_zero")]
    pub expected: u64,
    /// Containers left out of every figure above (and of the exposure:
    /// `container_hours` excludes them) because some of their calls were
    /// lost (`ContainerIncidence::incomplete`): their syscalls may widen
    /// the profile, nothing else. Not in the report when 0.
    #[serde(skip_serializing_if = "crate::confidence::is_zero")]
    pub incomplete_containers: u64,
    /// Containers left out of every figure above (and of the exposure)
    /// because their cgroup was not provably their runtime's
    /// (`ContainerIncidence::unverified`): their calls may be forged, so
    /// unlike incomplete ones their syscalls do not widen the profile
    /// either. Not in the report when 0.
    #[serde(default, skip_serializing_if = "crate::confidence::is_zero")]
    pub unverified_containers: u64,
}

pub(crate) fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Confidence {
    pub fn quiet_hours(&self) -> f64 {
        self.quiet_ms.map_or(0.0, |ms| ms as f64 / 3_600_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(t: u64, counts: &[u64]) -> Incidence {
        Incidence::from_counts(t, counts.iter().copied())
    }

    #[test]
    fn coverage_and_chao2_hand_computed() {
        // T = 5 containers; 6 syscalls used by 5,5,4,2,1,1 containers.
        // U = 18, S_obs = 6, Q1 = 2, Q2 = 1.
        let i = inc(5, &[5, 5, 4, 2, 1, 1]);
        assert_eq!(
            i,
            Incidence {
                t: 5,
                u: 18,
                s_obs: 6,
                q1: 2,
                q2: 1
            }
        );
        // C = 1 - (2/18) * (4*2 / (4*2 + 2*1)) = 1 - (1/9)(8/10) = 1 - 4/45
        assert_eq!(i.coverage(), 1.0 - (2.0 / 18.0) * (8.0 / 10.0));
        assert!((i.coverage() - 41.0 / 45.0).abs() < 1e-15);
        // Chao2 = 6 + (4/5) * 2*1 / (2*2) = 6.4
        assert_eq!(i.chao2(), 6.0 + 0.8 * 2.0 / 4.0);
        assert!((i.chao2() - 6.4).abs() < 1e-15);
    }

    #[test]
    fn coverage_without_doubletons() {
        // T = 3; syscalls used by 3, 3, 1 containers: U = 7, Q1 = 1, Q2 = 0.
        // C = 1 - (1/7) * (2*1 / (2*1 + 0)) = 6/7; Chao2 = 3 + (2/3)*0/2 = 3.
        let i = inc(3, &[3, 3, 1]);
        assert!((i.coverage() - 6.0 / 7.0).abs() < 1e-15);
        assert_eq!(i.chao2(), 3.0);
        // Q1 = 3, Q2 = 0, T = 4, U = 3+4 = 7, S = 4:
        // C = 1 - 3/7 = 4/7; Chao2 = 4 + (3/4) * 6 / 2 = 6.25.
        let i = inc(4, &[1, 1, 1, 4]);
        assert!((i.coverage() - 4.0 / 7.0).abs() < 1e-15);
        assert_eq!(i.chao2(), 6.25);
    }

    #[test]
    fn coverage_edge_cases() {
        // No units.
        assert_eq!(inc(0, &[]).coverage(), 0.0);
        assert_eq!(inc(0, &[]).chao2(), 0.0);
        // One unit: everything is a singleton; coverage unknown -> 0,
        // Chao2 = S_obs (the (T-1)/T factor is 0).
        let one = inc(1, &[1, 1, 1]);
        assert_eq!(one.coverage(), 0.0);
        assert_eq!(one.chao2(), 3.0);
        // Q1 = Q2 = 0: full coverage.
        let full = inc(4, &[4, 3, 3]);
        assert_eq!(full.coverage(), 1.0);
        assert_eq!(full.chao2(), 3.0);
        // Q1 = 0, Q2 > 0: still 1.
        assert_eq!(inc(4, &[2, 4]).coverage(), 1.0);
        // Q1 = 1: Chao2 adds nothing (Q1 (Q1 - 1) = 0).
        assert_eq!(inc(4, &[1, 4]).chao2(), 2.0);
    }

    #[test]
    fn recent_novelty_counts_against_whole_history() {
        let units: Vec<&[u32]> = vec![
            &[0, 1],    // new
            &[0, 1],    // not
            &[0, 2],    // new (2)
            &[1],       // not
            &[0, 1, 2], // not
            &[3],       // new
        ];
        assert_eq!(recent_novelty(&units, 4, 20), (6, 3));
        assert_eq!(recent_novelty(&units, 4, 3), (3, 1));
        assert_eq!(recent_novelty(&units, 4, 4), (4, 2));
        assert_eq!(recent_novelty(&[], 4, 20), (0, 0));
    }
}
