//! The soak, short: two simulated days at 3000x (under a minute of wall time) with the dead
//! room node, the flapping gateway and a reload, checked against the same bounds as the
//! month-long run (`cargo run --release -p heatctl-hil --bin soak`). Memory growth is measured
//! over the second day only.
//!
//! Needs `target/release/heatctl` and `target/release/plant-sim`:
//! `cargo build --release -p heatctl -p heatctl-plant --bins` first.

use heatctl_hil::soak::{SoakOptions, run};

#[test]
fn two_simulated_days_with_a_dead_node_a_flapping_gateway_and_a_reload() {
    let opts = SoakOptions {
        days: 2.0,
        speed: 3000.0,
        sample_h: 2.0,
        name: "soak-short".into(),
    };
    let report = run(&opts).unwrap_or_else(|e| panic!("{e}"));
    println!("{}", report.table());
    assert!(
        report.flaps >= 100,
        "the gateway flapped {} times",
        report.flaps
    );
    assert!(report.reloads_asked >= 1);
    let v = report.violations();
    assert!(
        v.is_empty(),
        "bounds failed: {v:?}\n(kept in {})",
        report.dir.display()
    );
}
