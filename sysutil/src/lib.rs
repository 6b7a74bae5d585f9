//! The few helpers every sandmine crate shares, one of each:
//!
//! - [`duration`]: the one duration syntax of every flag and config key
//!   (`1.5s`, `500ms`, `1h30m`, `7d`);
//! - [`fs`]: crash-safe file writes (temp file, fsync, rename, fsync the
//!   directory), and owner-only files and directories;
//! - [`net`]: one warning per endpoint reached without TLS on another
//!   host;
//! - [`secret`]: config secrets that `Debug` never prints;
//! - [`path`]: resolving a command on `PATH` as `execvp` does;
//! - [`clock`]: wall-clock milliseconds and a stopwatch;
//! - [`backoff`]: exponential retry delays with one warning per outage;
//! - [`error_chain`]: an error with its causes, on one line.
//!
//! `schemas` is pure and carries the wire types; these helpers touch the
//! operating system (files, environment, clock), so they live here, in a
//! crate with no sandmine dependency that any crate may use.

pub mod backoff;
pub mod clock;
pub mod duration;
pub mod fs;
pub mod net;
pub mod path;
pub mod secret;

pub use backoff::Backoff;
pub use secret::Secret;

/// An error and its causes on one line, `a: b: c`: for logs and reports
/// that show an error outside `anyhow` (whose `{:#}` does the same). Every
/// error prints only its own message; its cause comes from `source()`.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}
pub use duration::{parse_duration, DurationError};
