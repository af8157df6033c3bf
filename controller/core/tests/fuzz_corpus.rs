//! The fuzz corpora (`fuzz/corpus/<target>/`, minimised by `cargo fuzz cmin`) replayed as
//! ordinary tests on stable: every input the fuzzer kept runs through the same entry point
//! as the fuzz target, which panics when the property it checks is broken. See docs/fuzzing.md.

#[path = "../../tests/peers/scratch.rs"]
mod scratch;
#[path = "../../../fuzz/replay.rs"]
mod shared;

/// Run every corpus file of `target` through `run`, naming the file that fails.
fn replay(target: &str, run: fn(&[u8])) {
    let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    shared::replay(&fuzz, target, run);
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

/// Found by the `point_decode` fuzzer: a device map with `valid_min = nan` loaded, and the NaN
/// limit compared false, so every value passed the range check. The loader now refuses a
/// non-finite offset or limit.
#[test]
fn an_infinite_or_nan_limit_is_refused_by_the_loader() {
    let dir = scratch::Scratch::new(&format!("heatctl-fuzz-map-{}", std::process::id()));
    let base = "[device]\nmodel = \"m\"\n[[points]]\nname = \"t\"\ntable = \"input\"\naddress = 0\n\
                type = \"i16\"\nscale = 0.1\n";
    for (extra, key) in [
        ("valid_min = nan\n", "valid_min"),
        ("valid_max = inf\n", "valid_max"),
        ("offset = -inf\n", "offset"),
    ] {
        let path = dir.join("map.toml");
        std::fs::write(&path, format!("{base}{extra}")).expect("write map");
        let problems = heatctl_core::config::load_device_map(&path).expect_err(extra);
        assert!(
            problems
                .0
                .iter()
                .any(|p| p.path.ends_with(key) && p.line == Some(9)),
            "{extra}: {problems}"
        );
    }
    std::fs::write(dir.join("map.toml"), format!("{base}valid_min = -40.0\n")).expect("write");
    assert!(heatctl_core::config::load_device_map(&dir.join("map.toml")).is_ok());
}
