//! The fuzz corpora (`fuzz/corpus/<target>/`, minimised by `cargo fuzz cmin`) replayed as
//! ordinary tests on stable: every input the fuzzer kept runs through the same entry point
//! as the fuzz target, which panics when the property it checks is broken. See docs/fuzzing.md.

use std::path::PathBuf;

/// Every file of `fuzz/corpus/<target>/` (and `fuzz/regressions/<target>/` when present),
/// sorted.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for e in entries {
            let path = e.expect("corpus entry").path();
            let bytes = std::fs::read(&path).expect("corpus file");
            files.push((path, bytes));
        }
    }
    files.sort();
    assert!(
        files.len() >= 3,
        "fuzz/corpus/{target}/ holds {} files; the committed corpus is missing",
        files.len()
    );
    files
}

/// Run every corpus file of `target` through `run`, naming the file that fails.
fn replay(target: &str, run: fn(&[u8])) {
    for (path, bytes) in corpus(target) {
        if std::panic::catch_unwind(|| run(&bytes)).is_err() {
            panic!("{} fails its fuzz property", path.display());
        }
    }
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
