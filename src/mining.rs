//! What `mine` and `mine-image` share: the convergence record, the progress
//! line, the stop conditions and the summary.

use schemas::{Abi, Observation, SyscallKey};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Parse "500ms", "30s", "5m", "1h" or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (examples: 500ms, 30s, 5m, 1h)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "invalid duration unit in {s:?} (use ms, s, m or h)"
            ))
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("invalid duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

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

    fn after_stop(&self, t: Duration) -> bool {
        self.stop_at.is_some_and(|s| t >= s)
    }

    /// Syscalls first seen within `window` before `now`.
    pub fn new_within(&self, now: Duration, window: Duration) -> usize {
        self.first_seen
            .values()
            .filter(|t| now.saturating_sub(**t) <= window)
            .count()
    }

    /// The curve as CSV, one row per syscall in the order first seen:
    /// seconds, distinct syscalls by then, the syscall (ABI and name, or
    /// number when the table has no name), and `run` or `stop` (first seen
    /// while the workload was being stopped).
    pub fn curve_csv(&self) -> String {
        let mut rows: Vec<(Duration, SyscallKey)> =
            self.first_seen.iter().map(|(k, t)| (*t, *k)).collect();
        rows.sort();
        let mut out = String::from("seconds,distinct_syscalls,abi,syscall,during\n");
        for (i, (t, k)) in rows.iter().enumerate() {
            let name = schemas::syscalls::name(k.abi, k.nr)
                .map_or_else(|| k.nr.to_string(), str::to_string);
            let during = if self.after_stop(*t) { "stop" } else { "run" };
            out.push_str(&format!(
                "{:.3},{},{},{},{}\n",
                t.as_secs_f64(),
                i + 1,
                k.abi,
                name,
                during
            ));
        }
        out
    }
}

/// Set by SIGINT/SIGTERM: stop the workload, but still write the profile.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

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

/// A one-line progress display, redrawn in place, only on a terminal.
pub struct Progress {
    enabled: bool,
    drawn: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        Progress {
            enabled: !quiet && std::io::stderr().is_terminal(),
            drawn: false,
        }
    }

    pub fn draw(
        &mut self,
        elapsed: Duration,
        conv: &Convergence,
        obs: &Observation,
        window: Duration,
    ) {
        if !self.enabled {
            return;
        }
        let calls: u64 = obs.syscalls.values().map(|u| u.calls).sum();
        let line = format!(
            "mining {:>7}  {} syscalls seen, {} new in the last {}, {} calls",
            fmt_dur(elapsed),
            conv.first_seen.len(),
            conv.new_within(elapsed, window),
            fmt_dur(window),
            calls
        );
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
        self.drawn = true;
    }

    pub fn clear(&mut self) {
        if self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.drawn = false;
        }
    }
}

/// The summary printed on stderr at the end of a run.
pub fn summary(
    obs: &Observation,
    allowed_per_abi: &BTreeMap<Abi, usize>,
    conv: &Convergence,
    wall: Duration,
    window: Duration,
) -> String {
    let mut s = String::new();
    let per_abi: Vec<String> = allowed_per_abi
        .iter()
        .map(|(a, n)| format!("{a} {n}"))
        .collect();
    let total: usize = allowed_per_abi.values().sum();
    s.push_str(&format!(
        "sandmine: {} syscalls allowed ({})\n",
        total,
        if per_abi.is_empty() {
            "none".to_string()
        } else {
            per_abi.join(", ")
        }
    ));
    let calls: u64 = obs.syscalls.values().map(|u| u.calls).sum();
    let at_stop = match conv.new_at_stop() {
        0 => String::new(),
        n => format!(" (+{n} first seen while stopping)"),
    };
    s.push_str(&format!(
        "sandmine: {} new in the last {}; last new syscall at {}{}; {} calls; wall time {}\n",
        conv.new_within(wall, window),
        fmt_dur(window),
        conv.last_new().map(fmt_dur).unwrap_or_else(|| "-".into()),
        at_stop,
        calls,
        fmt_dur(wall)
    ));
    if obs.out_of_range > 0 {
        s.push_str(&format!(
            "sandmine: warning: {} calls had syscall numbers beyond this build's tables\n",
            obs.out_of_range
        ));
    }
    s
}

/// Start time helper shared by the commands.
pub struct Clock(Instant);

impl Clock {
    pub fn start() -> Clock {
        Clock(Instant::now())
    }
    pub fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("7x").is_err());
        assert!(parse_duration("abc").is_err());
    }

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
        assert_eq!(
            c.curve_csv(),
            "seconds,distinct_syscalls,abi,syscall,during\n1.000,1,x86_64,read,run\n3.000,2,x86_64,write,run\n"
        );
        // A syscall first seen while stopping does not move convergence.
        c.stop_at = Some(Duration::from_secs(5));
        o.record(Abi::X86_64, 60, schemas::Phase::Image, 1);
        assert_eq!(c.update(&o, Duration::from_secs(6)), 1);
        assert_eq!(c.last_new(), Some(Duration::from_secs(3)));
        assert_eq!(c.new_at_stop(), 1);
        assert!(c.curve_csv().ends_with("6.000,3,x86_64,exit,stop\n"));
    }
}
