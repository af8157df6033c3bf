//! Fuzz target: see `heatctl::fuzzing::mqtt_message`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| heatctl::fuzzing::mqtt_message(data));
