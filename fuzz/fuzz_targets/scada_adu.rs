//! Fuzz target: see `heatctl::fuzzing::scada_adu`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| heatctl::fuzzing::scada_adu(data));
