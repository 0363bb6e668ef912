//! `roomstream::fuzz::fields` under libFuzzer.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| roomstream::fuzz::fields(data));
