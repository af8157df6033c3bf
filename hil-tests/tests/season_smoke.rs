//! The season machinery on a short window of the small scenario: every strategy runs, the CSV has
//! the scorecard's header and one row per strategy, the KPIs are finite, and they are ordered as
//! physics says they must be. Seconds, not minutes: the full season is the `season` binary's job.

use std::path::Path;

use heatctl_hil::season::{
    self, CSV_HEADER, RunKind, RunResult, Setup, Strategy, Variant, plots, report,
};
use heatctl_plant::Scenario;

fn setup(days: f64) -> Setup {
    let mut sc = Scenario::shipped("small").expect("small scenario");
    sc.season.length_days = days;
    let cfg_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/season.toml");
    let text = std::fs::read_to_string(&cfg_path).expect("config/season.toml");
    let cfg = heatctl::config::parse_str(&text, Some(&cfg_path)).expect("valid season config");
    Setup::new(sc, cfg)
}

fn no_progress(_: u64) {}
fn no_run() {}

#[test]
fn short_season_of_the_small_scenario() {
    let s = setup(2.0);
    let search = season::search_b1(&s, 0.1, 3, &no_progress, &no_run).expect("B1 search");
    let mut runs: Vec<RunResult> = vec![search.b0.clone(), search.b1.clone()];
    for (label, kind) in [
        ("R1", RunKind::ReferenceRoom),
        (
            "heatctl",
            RunKind::Heatctl {
                household: false,
                variant: None,
            },
        ),
        ("heatctl_full", RunKind::HeatctlFull),
        (
            "heatctl_hh",
            RunKind::Heatctl {
                household: true,
                variant: None,
            },
        ),
        ("O1", RunKind::Oracle),
        ("O2", RunKind::Perfect),
        ("O2pi", RunKind::PerfectPi),
    ] {
        runs.push(season::run(&s, label, kind, &no_progress).expect(label));
    }

    let csv = report::csv(&runs);
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(CSV_HEADER));
    assert_eq!(
        CSV_HEADER,
        "strategy,energy_kwh_m2,pump_kwh_el_m2,tdis_kh,tdis_worst_kh,cold_hours_pct,overheat_kh,peak_w_m2,t1_return_c,valve_travel,wall_s"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), Strategy::ALL.len());
    for (row, strategy) in rows.iter().zip(Strategy::ALL) {
        let cells: Vec<&str> = row.split(',').collect();
        assert_eq!(cells.len(), 11, "{row}");
        assert_eq!(cells[0], strategy.name());
        for (i, c) in cells.iter().enumerate().skip(1) {
            if strategy == Strategy::O1 && i == 8 {
                assert_eq!(*c, "", "O1 has no primary flow, so no return temperature");
                continue;
            }
            let v: f64 = c
                .parse()
                .unwrap_or_else(|_| panic!("{row}: cell {i} {c:?}"));
            assert!(v.is_finite() && v >= 0.0, "{row}: cell {i}");
        }
    }

    let get = |name: &str| runs.iter().find(|r| r.label == name).expect(name);
    let (b0, b1, o1, o2, o2pi) = (get("B0"), get("B1"), get("O1"), get("O2"), get("O2pi"));
    // The oracle delivers the least heat and keeps every home at 18 °C.
    for r in &runs {
        assert!(
            o1.kpis.energy_kwh_m2 <= r.kpis.energy_kwh_m2 + 1e-9,
            "O1 {} vs {} {}",
            o1.kpis.energy_kwh_m2,
            r.label,
            r.kpis.energy_kwh_m2
        );
        assert!(r.kpis.energy_kwh_m2 > 0.1, "{} heats", r.label);
        assert!(r.days.len() == 2, "{}: two daily rows", r.label);
    }
    assert!(o1.kpis.tdis_worst_kh < 0.05, "{}", o1.kpis.tdis_worst_kh);
    assert!(o1.extra.coldest_p10_c >= 17.99);
    // The search moved the coldest home's P10 toward 18 °C, and a shift down saves heat.
    assert!((b1.extra.coldest_p10_c - 18.0).abs() <= (b0.extra.coldest_p10_c - 18.0).abs() + 1e-9);
    if let Some(k) = season::curve_shift_k(b1) {
        assert_eq!(
            k < 0.0,
            b1.kpis.energy_kwh_m2 < b0.kpis.energy_kwh_m2,
            "shift {k}"
        );
    }
    // O2 keeps every home at 18 °C (it checks each hour on a clone of the plant) and, knowing
    // that, heats less than the design curve; the PI on the coldest home does not leave it cold
    // for long.
    assert!(o2.kpis.tdis_worst_kh < 0.05, "{}", o2.kpis.tdis_worst_kh);
    assert!(o2.kpis.energy_kwh_m2 < b0.kpis.energy_kwh_m2);
    assert!(
        o2.notes.iter().any(|n| n.contains("hours planned")),
        "{:?}",
        o2.notes
    );
    assert!(
        o2pi.kpis.tdis_worst_kh < 10.0,
        "{}",
        o2pi.kpis.tdis_worst_kh
    );

    // The per-flat table: every run, every flat; heatctl senses the scenario's share of the
    // flats, heatctl_full every flat; energy shares sum to 100 %.
    let flats = report::flats_csv(&runs);
    let mut lines = flats.lines();
    assert_eq!(lines.next(), Some(report::FLATS_HEADER));
    let n = b0.flats.len();
    assert!(n > 0);
    assert_eq!(lines.count(), n * runs.len());
    let sensed = |r: &RunResult| r.flats.iter().filter(|f| f.sensed).count();
    assert_eq!(sensed(get("heatctl_full")), n);
    assert!(sensed(get("heatctl")) > 0 && sensed(get("heatctl")) < n);
    for r in &runs {
        assert_eq!(r.flats.len(), n, "{}", r.label);
        let share: f64 = r.flats.iter().map(|f| f.energy_share_pct).sum();
        assert!((share - 100.0).abs() < 1e-6, "{}: {share}", r.label);
        let worst = r.flats.iter().map(|f| f.below_floor_kh).fold(0.0, f64::max);
        assert!((worst - r.kpis.tdis_worst_kh).abs() < 1e-9, "{}", r.label);
        let p10 = r
            .flats
            .iter()
            .map(|f| f.p10_c)
            .fold(f64::INFINITY, f64::min);
        assert!((p10 - r.extra.coldest_p10_c).abs() < 1e-9, "{}", r.label);
    }

    // Reports and plots are written.
    let dir = std::env::temp_dir().join(format!("season-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    plots::room_temperatures(&dir.join("rooms.svg"), &runs).expect("rooms plot");
    plots::supply_vs_outdoor(&dir.join("supply.svg"), &runs).expect("supply plot");
    plots::cumulative_heat(&dir.join("heat.svg"), &runs).expect("heat plot");
    let svg = std::fs::read_to_string(dir.join("rooms.svg")).expect("svg");
    assert!(svg.starts_with("<svg") && svg.contains("heatctl"));
    assert!(report::markdown_table(&runs).contains("| heatctl_hh |"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn node_fault_variants_run_and_count_their_nodes() {
    let s = setup(1.0);
    for v in Variant::ALL {
        let r = season::run(
            &s,
            &format!("heatctl_{}", v.suffix()),
            RunKind::Heatctl {
                household: false,
                variant: Some(v),
            },
            &no_progress,
        )
        .expect("variant run");
        assert!(r.kpis.energy_kwh_m2.is_finite() && r.kpis.energy_kwh_m2 > 0.0);
        assert!(
            r.notes.iter().any(|n| n.contains("room nodes faulty")),
            "{:?}",
            r.notes
        );
    }
}
