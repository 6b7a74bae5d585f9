//! The clock: wall-clock milliseconds for timestamps that leave the
//! process, and a monotonic stopwatch for how long something took.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Wall-clock milliseconds since the Unix epoch (0 if the clock is set
/// before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Monotonic time since [`Stopwatch::start`].
#[derive(Clone, Copy, Debug)]
pub struct Stopwatch(Instant);

impl Stopwatch {
    pub fn start() -> Stopwatch {
        Stopwatch(Instant::now())
    }

    pub fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}

/// `ms` since the epoch as RFC 3339 UTC with milliseconds
/// (`2026-11-28T21:30:00.123Z`), without a date crate.
pub fn rfc3339_ms(ms: u64) -> String {
    let (y, m, d) = civil_from_days((ms / 86_400_000) as i64);
    let rem = ms / 1000 % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// `ms` since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (UTC, whole seconds).
pub fn rfc3339_s(ms: u64) -> String {
    let full = rfc3339_ms(ms);
    match full.rsplit_once('.') {
        Some((seconds, _)) => format!("{seconds}Z"),
        None => full,
    }
}

/// Parses a UTC date `YYYY-MM-DD` (midnight) or instant
/// `YYYY-MM-DDTHH:MM:SSZ` into ms since the epoch; `None` if it is neither
/// (or before 1970).
pub fn parse_utc_ms(s: &str) -> Option<u64> {
    let num = |t: &str, len: usize| -> Option<i64> {
        (t.len() == len && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z')?)),
        None => (s, None),
    };
    let mut parts = date.split('-');
    let y = num(parts.next()?, 4)?;
    let m = num(parts.next()?, 2)?;
    let d = num(parts.next()?, 2)?;
    if parts.next().is_some() || !(1..=12).contains(&m) || d < 1 {
        return None;
    }
    let days = days_from_civil(y, m as u32, d as u32);
    // Rejects 2026-02-30 and the like: the date must come back the same.
    if civil_from_days(days) != (y, m as u32, d as u32) {
        return None;
    }
    let secs = match time {
        None => 0,
        Some(t) => {
            let mut p = t.split(':');
            let h = num(p.next()?, 2)?;
            let mi = num(p.next()?, 2)?;
            let se = num(p.next()?, 2)?;
            if p.next().is_some() || h > 23 || mi > 59 || se > 59 {
                return None;
            }
            h * 3600 + mi * 60 + se
        }
    };
    u64::try_from((days * 86_400 + secs) * 1000).ok()
}

/// (year, month, day) to days since 1970-01-01 (Howard Hinnant's
/// algorithm, the inverse of [`civil_from_days`]).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_764_363_600_123), "2025-11-28T21:00:00.123Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_s(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_s(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_s(1_700_000_000_123), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_s(4_102_444_799_000), "2099-12-31T23:59:59Z");
        assert!(now_ms() > 1_700_000_000_000);
        assert_eq!(parse_utc_ms("2000-02-29"), Some(951_782_400_000));
        assert_eq!(
            parse_utc_ms("2023-11-14T22:13:20Z"),
            Some(1_700_000_000_000)
        );
        assert_eq!(parse_utc_ms("1970-01-01"), Some(0));
        for bad in [
            "2023-02-29",
            "2023-13-01",
            "2023-1-01",
            "2023-11-14T22:13:20",
            "yesterday",
            "1969-12-31",
            "2023-11-14T24:00:00Z",
        ] {
            assert_eq!(parse_utc_ms(bad), None, "{bad}");
        }
    }
}
