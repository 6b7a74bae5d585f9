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
        let line = line(&rfc3339_now(), r.level(), r.target(), &r.args().to_string());
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

/// One logfmt line, ending in its only newline: in the message, `\` and
/// `"` are escaped, and so is every control character (`\n`, `\r`, `\t`,
/// others as `\u{1b}`) and the Unicode line and paragraph separators, so
/// that no value in a message (an image name, a label) can start a line
/// of its own.
fn line(ts: &str, level: Level, target: &str, msg: &str) -> String {
    let mut esc = String::with_capacity(msg.len());
    for c in msg.chars() {
        match c {
            '\\' => esc.push_str("\\\\"),
            '"' => esc.push_str("\\\""),
            '\n' => esc.push_str("\\n"),
            '\r' => esc.push_str("\\r"),
            '\t' => esc.push_str("\\t"),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                esc.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => esc.push(c),
        }
    }
    let msg = esc;
    format!(
        "ts={ts} level={} target={target} msg=\"{msg}\"\n",
        level.as_str().to_ascii_lowercase()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value that reaches a message (an image name, a container label)
    /// cannot forge a second line or hide the rest of its own.
    #[test]
    fn a_message_cannot_forge_a_log_line() {
        let image = "evil\nts=2026-01-01T00:00:00.000Z level=info target=sandmine msg=\"all clear\"\r\u{1b}[2K\t\u{0}\u{7f}\u{2028}\\";
        let got = line(
            "2026-12-02T10:00:00.000Z",
            Level::Warn,
            "collector",
            &format!("image {image} withheld"),
        );
        assert_eq!(
            got,
            "ts=2026-12-02T10:00:00.000Z level=warn target=collector msg=\"image evil\\nts=2026-01-01T00:00:00.000Z level=info target=sandmine msg=\\\"all clear\\\"\\r\\u{1b}[2K\\t\\u{0}\\u{7f}\\u{2028}\\\\ withheld\"\n"
        );
        assert_eq!(got.lines().count(), 1);
    }
}
