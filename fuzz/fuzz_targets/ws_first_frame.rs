#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| palaver_fuzzing::ws_first_frame(data));
