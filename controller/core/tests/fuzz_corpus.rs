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
fn config_text_corpus() {
    replay("config_text", heatctl_core::fuzzing::config_text);
}

#[test]
fn point_decode_corpus() {
    replay("point_decode", heatctl_core::fuzzing::point_decode);
}

#[test]
fn state_file_corpus() {
    replay("state_file", heatctl_core::fuzzing::state_file);
}

/// Found by the `state_file` fuzzer: a damaged state file's damped outdoor temperature of
/// 5000 °C was restored and would have steered the heating curve (summer cut-off) until the
/// filter caught up. Now a value outside the outdoor sensor's plausible range is ignored.
#[test]
fn an_implausible_damped_outdoor_temperature_is_not_restored() {
    use heatctl_core::config::{EXAMPLE_TOML, parse_str};
    use heatctl_core::control::{Controller, SavedState};
    let cfg = parse_str(EXAMPLE_TOML, None).expect("example");
    for (damped_c, kept) in [(5000.0, false), (-273.0, false), (-7.5, true)] {
        let mut c = Controller::new(&cfg);
        c.restore(&SavedState {
            saved_at_s: 1.0e9,
            demand_shift_k: 1.0,
            valve_demand_shift_k: 0.0,
            damped_outdoor_c: Some(damped_c),
        });
        assert_eq!(
            c.saved_state().damped_outdoor_c,
            kept.then_some(damped_c),
            "damped outdoor {damped_c} °C"
        );
        assert_eq!(c.saved_state().demand_shift_k, 1.0, "the rest is restored");
    }
}
