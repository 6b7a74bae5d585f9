//! sandmine's fuzz targets: each is one function of [`harness`] (or
//! [`harness_config`], behind the `config` feature), called by the
//! `fuzz_targets/` binaries that libFuzzer drives. See README.md.

pub mod harness;

/// The binary's configuration loader, built from its own source files.
#[cfg(feature = "config")]
#[allow(dead_code)]
#[path = "../../src/config.rs"]
mod config;

#[cfg(feature = "config")]
#[allow(dead_code)]
#[path = "../../src/settings.rs"]
mod settings;

#[cfg(feature = "config")]
pub mod harness_config;
