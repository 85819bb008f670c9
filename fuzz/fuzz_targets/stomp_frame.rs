#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| palaver_fuzzing::stomp_frame(data));
