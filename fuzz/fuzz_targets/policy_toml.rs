#![no_main]
//! See `src/harness.rs`: [`sandmine_fuzz::harness::policy_toml`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| sandmine_fuzz::harness::policy_toml(data));
