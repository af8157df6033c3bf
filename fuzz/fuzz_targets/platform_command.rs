//! Fuzz target: see `heatctl::fuzzing::platform_command`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| heatctl::fuzzing::platform_command(data));
