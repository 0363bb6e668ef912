//! `roomstream::fuzz::registry` under libFuzzer.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| roomstream::fuzz::registry(data));
