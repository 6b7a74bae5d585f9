#![no_main]
//! See `src/harness.rs`: [`sandmine_fuzz::harness::profile`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| sandmine_fuzz::harness::profile(data));
