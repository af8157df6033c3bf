//! The fuzz corpora (`fuzz/corpus/<target>/`, minimised by `cargo fuzz cmin`) replayed as
//! ordinary tests on stable: every input the fuzzer kept runs through the same entry point
//! as the fuzz target, which panics when the property it checks is broken. See docs/fuzzing.md.

#[path = "../../../fuzz/replay.rs"]
mod shared;

/// Run every corpus file of `target` through `run`, naming the file that fails.
fn replay(target: &str, run: fn(&[u8])) {
    let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    shared::replay(&fuzz, target, run);
}

#[test]
fn rtu_line_corpus() {
    replay("rtu_line", heatctl_node::fuzzing::rtu_line);
}

/// Found by the `rtu_line` fuzzer: a broadcast write (unit 0) was applied and rightly not
/// answered, but rmodbus's reply was left in the buffer although `respond` reported none.
#[test]
fn a_broadcast_write_leaves_no_reply_behind() {
    use heatctl_node::crc::crc16_modbus;
    use heatctl_node::registers::{Settings, input};
    use heatctl_node::slave::{Reply, respond};
    let mut frame = vec![0, 6, 0, 2, 0, 30];
    let crc = crc16_modbus(&frame).to_le_bytes();
    frame.extend_from_slice(&crc);
    let mut settings = Settings::FACTORY;
    let mut reply = Reply::new();
    let outcome = respond(&frame, &[0; input::COUNT], &mut settings, &mut reply);
    assert!(!outcome.reply && outcome.settings_changed);
    assert_eq!(
        settings.report_interval_s, 30,
        "the broadcast write is applied"
    );
    assert!(reply.is_empty(), "no reply left behind: {reply:?}");
}
