//! When to publish: a fixed interval, aligned to the epoch so every
//! replica (and every restart) agrees on the run times: `every 1h` runs at
//! the top of each hour (UTC).

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(transparent)]
    BadDuration(#[from] sysutil::DurationError),
    #[error("schedule interval must be at least 1s, got {0:?}")]
    TooShort(String),
}

/// A publishing interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    interval: Duration,
}

impl Schedule {
    /// `every 1h` or just `1h` (any duration of
    /// [`sysutil::parse_duration`]); at least 1s.
    pub fn parse(s: &str) -> Result<Schedule, ScheduleError> {
        let t = s.trim();
        let d = sysutil::parse_duration(t.strip_prefix("every ").unwrap_or(t))?;
        Schedule::every(d).ok_or_else(|| ScheduleError::TooShort(s.to_string()))
    }

    /// `None` below 1s.
    pub fn every(interval: Duration) -> Option<Schedule> {
        (interval >= Duration::from_secs(1)).then_some(Schedule { interval })
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The first multiple of the interval (counted from the epoch)
    /// strictly after `now_ms`.
    pub fn next_run(&self, now_ms: u64) -> u64 {
        let iv = u64::try_from(self.interval.as_millis()).unwrap_or(u64::MAX);
        (now_ms / iv).saturating_add(1).saturating_mul(iv)
    }
}

impl std::str::FromStr for Schedule {
    type Err = ScheduleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Schedule::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        let h = Schedule::parse("every 1h").unwrap();
        assert_eq!(h.interval(), Duration::from_secs(3600));
        assert_eq!(Schedule::parse("1h"), Ok(h));
        assert_eq!("every 1h".parse::<Schedule>(), Ok(h));
        assert_eq!(h.next_run(0), 3_600_000);
        assert_eq!(h.next_run(3_599_999), 3_600_000);
        assert_eq!(h.next_run(3_600_000), 7_200_000);
        assert_eq!(h.next_run(1_700_000_000_123), 1_700_002_800_000);
        assert_eq!(
            Schedule::parse("every 500ms"),
            Err(ScheduleError::TooShort("every 500ms".into()))
        );
        assert_eq!(
            Schedule::parse("every hour"),
            Err(ScheduleError::BadDuration(sysutil::DurationError::Invalid(
                "hour".into()
            )))
        );
        assert_eq!(Schedule::every(Duration::ZERO), None);
    }
}
