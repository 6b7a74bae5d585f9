//! When to publish: a fixed interval, aligned to the epoch so every
//! replica (and every restart) agrees on the run times: `every 1h` runs at
//! the top of each hour (UTC).

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("duration {0:?}: expected e.g. 90s, 15m, 1h30m, 7d (units ms, s, m, h, d, w)")]
    BadDuration(String),
    #[error("schedule interval must be at least 1s, got {0:?}")]
    TooShort(String),
}

/// Parses `250ms`, `90s`, `15m`, `1h30m`, `7d`, `2w` (sums of number+unit;
/// spaces between parts allowed).
pub fn parse_duration(s: &str) -> Result<Duration, ScheduleError> {
    let bad = || ScheduleError::BadDuration(s.to_string());
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err(bad());
    }
    let mut total_ms: u64 = 0;
    let mut rest = compact.as_str();
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.chars().take_while(char::is_ascii_alphabetic).count();
        let unit_ms = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total_ms = n
            .checked_mul(unit_ms)
            .and_then(|v| total_ms.checked_add(v))
            .ok_or_else(bad)?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// A publishing interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    interval: Duration,
}

impl Schedule {
    /// `every 1h` or just `1h` (see [`parse_duration`]); at least 1s.
    pub fn parse(s: &str) -> Result<Schedule, ScheduleError> {
        let t = s.trim();
        let d = parse_duration(t.strip_prefix("every ").unwrap_or(t))?;
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
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(1_209_600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["", "h", "10", "10x", "1.5h", "-1h", "99999999999999999999d"] {
            assert_eq!(
                parse_duration(bad),
                Err(ScheduleError::BadDuration(bad.to_string())),
                "{bad}"
            );
        }
    }

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
            Err(ScheduleError::BadDuration("hour".into()))
        );
        assert_eq!(Schedule::every(Duration::ZERO), None);
    }
}
