//! Fuzz target: see `heatctl_core::fuzzing::config_text`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| heatctl_core::fuzzing::config_text(data));
