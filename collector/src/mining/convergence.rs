//! When a mining run has seen enough: the convergence record (when each
//! syscall was first seen) and the stop rules.

use schemas::{Observation, SyscallKey};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// When each syscall was first seen, relative to the start of the run.
/// Sampled at the poll interval, which bounds the error of each time.
#[derive(Debug, Default)]
pub struct Convergence {
    pub first_seen: BTreeMap<SyscallKey, Duration>,
    /// When the run began stopping the workload (SIGTERM, `docker stop`),
    /// if it did. Syscalls first seen after it belong to the shutdown
    /// path, not to the workload's convergence.
    pub stop_at: Option<Duration>,
}

impl Convergence {
    /// Record the syscalls of `obs` not seen before; returns how many.
    pub fn update(&mut self, obs: &Observation, at: Duration) -> usize {
        let mut new = 0;
        // Calls seen only in the runtime's privileged set-up never reach a
        // profile, so they do not count towards convergence either.
        let setup_only = schemas::PhaseSet(schemas::Phase::Setup.bit());
        for (k, u) in &obs.syscalls {
            if u.phases != setup_only && !self.first_seen.contains_key(k) {
                self.first_seen.insert(*k, at);
                new += 1;
            }
        }
        new
    }

    /// Time of the most recent first sighting before the stop began.
    pub fn last_new(&self) -> Option<Duration> {
        self.first_seen
            .values()
            .filter(|t| !self.after_stop(**t))
            .max()
            .copied()
    }

    /// Syscalls first seen while the workload was being stopped.
    pub fn new_at_stop(&self) -> usize {
        self.first_seen
            .values()
            .filter(|t| self.after_stop(**t))
            .count()
    }

    /// True for a time at or after the start of the stop.
    pub fn after_stop(&self, t: Duration) -> bool {
        self.stop_at.is_some_and(|s| t >= s)
    }

    /// Syscalls first seen within `window` before `now`.
    pub fn new_within(&self, now: Duration, window: Duration) -> usize {
        self.first_seen
            .values()
            .filter(|t| now.saturating_sub(**t) <= window)
            .count()
    }
}

/// Set by SIGINT/SIGTERM: stop the workload, but still write the profile.
/// Process-wide, as signal dispositions are.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Makes SIGINT and SIGTERM set [`INTERRUPTED`] (which [`StopRule::check`]
/// reads) instead of killing the process.
pub fn install_interrupt_handler() {
    // SAFETY: the handler only stores to an atomic, which is
    // async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

/// When to stop a workload that does not exit on its own.
#[derive(Clone, Copy, Debug, Default)]
pub struct StopRule {
    pub duration: Option<Duration>,
    pub until_stable: Option<Duration>,
}

impl StopRule {
    /// The reason to stop now, if any.
    pub fn check(&self, elapsed: Duration, conv: &Convergence) -> Option<String> {
        if INTERRUPTED.load(Ordering::SeqCst) {
            return Some("interrupted".into());
        }
        if let Some(d) = self.duration {
            if elapsed >= d {
                return Some(format!("--duration {} reached", fmt_dur(d)));
            }
        }
        if let Some(d) = self.until_stable {
            let since = elapsed.saturating_sub(conv.last_new().unwrap_or_default());
            if since >= d {
                return Some(format!("no new syscall for {}", fmt_dur(d)));
            }
        }
        None
    }
}

/// A duration for people: `250ms`, `12.5s`, `3m07s`.
pub fn fmt_dur(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{}ms", d.as_millis())
    } else if s < 120.0 {
        format!("{s:.1}s")
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::Abi;

    #[test]
    fn convergence_counts_first_sightings_once() {
        let mut c = Convergence::default();
        let mut o = Observation::default();
        o.record(Abi::X86_64, 0, schemas::Phase::Image, 1);
        assert_eq!(c.update(&o, Duration::from_secs(1)), 1);
        o.record(Abi::X86_64, 1, schemas::Phase::Image, 1);
        assert_eq!(c.update(&o, Duration::from_secs(3)), 1);
        assert_eq!(c.update(&o, Duration::from_secs(4)), 0);
        assert_eq!(c.last_new(), Some(Duration::from_secs(3)));
        assert_eq!(
            c.new_within(Duration::from_secs(5), Duration::from_secs(2)),
            1
        );
        // A syscall first seen while stopping does not move convergence.
        c.stop_at = Some(Duration::from_secs(5));
        o.record(Abi::X86_64, 60, schemas::Phase::Image, 1);
        assert_eq!(c.update(&o, Duration::from_secs(6)), 1);
        assert_eq!(c.last_new(), Some(Duration::from_secs(3)));
        assert_eq!(c.new_at_stop(), 1);
        assert!(c.after_stop(Duration::from_secs(6)));
    }
}
