#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| madoguchi_fuzz::config::run(data));
