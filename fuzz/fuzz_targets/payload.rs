//! `roomstream::fuzz::payload` under libFuzzer.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| roomstream::fuzz::payload(data));
