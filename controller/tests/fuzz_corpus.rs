//! The fuzz corpora (`fuzz/corpus/<target>/`, minimised by `cargo fuzz cmin`) replayed as
//! ordinary tests on stable: every input the fuzzer kept runs through the same entry point
//! as the fuzz target, which panics when the property it checks is broken. See docs/fuzzing.md.

#[path = "../../fuzz/replay.rs"]
mod shared;

/// Run every corpus file of `target` through `run`, naming the file that fails.
fn replay(target: &str, run: fn(&[u8])) {
    let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    shared::replay(&fuzz, target, run);
}

#[test]
fn scada_adu_corpus() {
    replay("scada_adu", heatctl::fuzzing::scada_adu);
}

#[test]
fn platform_command_corpus() {
    replay("platform_command", heatctl::fuzzing::platform_command);
}

#[test]
fn mqtt_message_corpus() {
    replay("mqtt_message", heatctl::fuzzing::mqtt_message);
}
