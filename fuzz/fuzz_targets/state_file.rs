//! Fuzz target: see `heatctl_core::fuzzing::state_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| heatctl_core::fuzzing::state_file(data));
