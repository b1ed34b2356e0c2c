#![no_main]

libfuzzer_sys::fuzz_target!(init: madoguchi_fuzz::mail_decide::install_panic_hook(), |data: &[u8]| madoguchi_fuzz::mail_decide::run(data));
