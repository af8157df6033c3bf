//! Fuzz target: see `heatctl_core::fuzzing::point_decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| heatctl_core::fuzzing::point_decode(data));
