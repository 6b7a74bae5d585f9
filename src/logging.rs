//! Structured logs for the long-running commands: one logfmt line per
//! event on stderr (`ts=2026-11-28T21:30:00.123Z level=warn target=... msg="..."`),
//! which journald, Kubernetes and log shippers keep as is. The level comes
//! from `SANDMINE_LOG` (error, warn, info, debug, trace; default info).

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;

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

/// UTC time as RFC 3339 with milliseconds.
pub fn rfc3339_now() -> String {
    sysutil::clock::rfc3339_ms(sysutil::clock::now_ms())
}
