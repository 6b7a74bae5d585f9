#![no_main]
//! See `src/harness_config.rs`: [`sandmine_fuzz::harness_config::config`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| sandmine_fuzz::harness_config::config(data));
