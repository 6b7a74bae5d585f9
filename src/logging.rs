//! Structured logs for the long-running commands: one logfmt line per
//! event on stderr (`ts=2026-11-28T21:30:00.123Z level=warn target=... msg="..."`),
//! which journald, Kubernetes and log shippers keep as is. The level comes
//! from `SANDMINE_LOG` (error, warn, info, debug, trace; default info).

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

struct Logfmt {
    level: LevelFilter,
}

impl Log for Logfmt {
    fn enabled(&self, m: &Metadata) -> bool {
        m.level() <= self.level
            // Dependencies' debug chatter stays out unless asked for.
            && (m.level() <= Level::Info || m.target().starts_with("sandmine")
                || m.target().starts_with("collector")
                || m.target().starts_with("aggregator")
                || m.target().starts_with("transport"))
    }

    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let msg = r
            .args()
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\"");
        let line = format!(
            "ts={} level={} target={} msg=\"{}\"\n",
            rfc3339_now(),
            r.level().as_str().to_ascii_lowercase(),
            r.target(),
            msg
        );
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Installs the logger once; later calls do nothing.
pub fn init() {
    let level = std::env::var("SANDMINE_LOG")
        .ok()
        .and_then(|s| s.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::Info);
    let logger = Box::new(Logfmt { level });
    if log::set_boxed_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}

/// UTC time as RFC 3339 with milliseconds, without a date crate.
pub fn rfc3339_now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_millis() as u64)
}

pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86400, secs % 86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::rfc3339(1_764_363_600_123),
            "2025-11-28T21:00:00.123Z"
        );
        assert_eq!(super::rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
