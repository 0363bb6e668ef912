//! `roomstream::fuzz::listing` under libFuzzer.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| roomstream::fuzz::listing(data));
