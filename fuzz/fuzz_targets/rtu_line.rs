//! Fuzz target: see `heatctl_node::fuzzing::rtu_line`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| heatctl_node::fuzzing::rtu_line(data));
