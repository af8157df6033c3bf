//! The season machinery on a short window of the small scenario: every strategy runs, the CSV has
//! the scorecard's header and one row per strategy, the KPIs are finite, and they are ordered as
//! physics says they must be. Seconds, not minutes: the full season is the `season` binary's job.

use std::path::Path;

#[path = "../../controller/tests/peers/scratch.rs"]
mod scratch;
use scratch::Scratch;

use heatctl_hil::season::{
    self, CSV_HEADER, RunKind, RunResult, Setup, Strategy, Variant, plots, report,
};
use heatctl_plant::Scenario;

/// A shipped scorecard configuration, config/`name`.
fn shipped_config(name: &str) -> heatctl::config::Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../config")
        .join(name);
    let text = std::fs::read_to_string(&path).expect(name);
    heatctl::config::parse_str(&text, Some(&path)).expect(name)
}

fn setup(days: f64) -> Setup {
    let mut sc = Scenario::shipped("small").expect("small scenario");
    sc.season.length_days = days;
    let mut setup = Setup::new(sc, shipped_config("season.toml"));
    setup.config_hh = Some(shipped_config("season-hh.toml"));
    setup
}

#[test]
fn heatctl_hh_and_its_variants_run_on_their_own_configuration() {
    let mut s = setup(1.0);
    let hh = RunKind::Heatctl {
        household: true,
        variant: Some(Variant::ALL[0]),
    };
    let plain = RunKind::Heatctl {
        household: false,
        variant: None,
    };
    assert!(std::ptr::eq(
        s.config_for(hh),
        s.config_hh.as_ref().unwrap()
    ));
    for kind in [plain, RunKind::HeatctlFull, RunKind::Oracle] {
        assert!(std::ptr::eq(s.config_for(kind), &s.config));
    }
    // The shipped files differ where the valves lead the supply.
    assert!(s.config_for(hh).curve.min_supply_c > s.config_for(plain).curve.min_supply_c);
    s.config_hh = None;
    assert!(std::ptr::eq(s.config_for(hh), &s.config));
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
    let dir = Scratch::new(&format!("season-smoke-{}", std::process::id()));
    plots::room_temperatures(&dir.join("rooms.svg"), &runs).expect("rooms plot");
    plots::supply_vs_outdoor(&dir.join("supply.svg"), &runs).expect("supply plot");
    plots::cumulative_heat(&dir.join("heat.svg"), &runs).expect("heat plot");
    let svg = std::fs::read_to_string(dir.join("rooms.svg")).expect("svg");
    assert!(svg.starts_with("<svg") && svg.contains("heatctl"));
    assert!(report::markdown_table(&runs).contains("| heatctl_hh |"));
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

/// The `season` binary over two weather files and two seeds with a target sweep, two days of
/// the small scenario: the matrix summary has every cell and run, each cell its own outputs,
/// the sweep its points and references, and `--check-aims` fails (the aims are not met on two
/// days: B1 and O2 barely differ there, and the variants were not run).
#[test]
fn matrix_and_sweep_through_the_binary() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Scratch::new(&format!("season-matrix-{}", std::process::id()));
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_season"))
        .arg("--scenario")
        .arg(root.join("scenarios/small.toml"))
        .arg("--weather")
        .arg(root.join("weather/weather-hohhot-synthetic.csv"))
        .arg("--weather")
        .arg(root.join("weather/weather-chicago.csv"))
        .args(["--seeds", "7,3", "--days", "2", "--jobs", "2"])
        .args([
            "--strategies",
            "B1,heatctl,O2",
            "--sweep-target",
            "18.2:18.8:0.3",
        ])
        .arg("--config")
        .arg(root.join("../config/season.toml"))
        .arg("--check-aims")
        .arg("--out")
        .arg(out.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run season");
    assert_eq!(status.code(), Some(1), "the aims are not met, so exit 1");

    let matrix = std::fs::read_to_string(out.join("matrix.csv")).expect("matrix.csv");
    let mut lines = matrix.lines();
    assert_eq!(lines.next(), Some(matrix_header()));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    // Four cells x (B0 not asked; B1, R1 added by the sweep, heatctl, O2).
    assert_eq!(rows.len(), 4 * 4, "{matrix}");
    for weather in ["weather-hohhot-synthetic", "weather-chicago"] {
        for seed in ["7", "3"] {
            let cell: Vec<&Vec<&str>> = rows
                .iter()
                .filter(|r| r[0] == weather && r[1] == seed)
                .collect();
            let labels: Vec<&str> = cell.iter().map(|r| r[2]).collect();
            assert_eq!(labels, ["B1", "R1", "heatctl", "O2"], "{weather} {seed}");
            for r in &cell {
                let e: f64 = r[3].parse().expect("energy");
                let w: f64 = r[4].parse().expect("worst");
                assert!(e > 0.0 && w >= 0.0, "{r:?}");
            }
            // Capture is 0 for B1 and 1 for O2 by definition.
            assert_eq!(cell[0][5], "0.000");
            assert_eq!(cell[3][5], "1.000");
            let dir = out.join(format!("{weather}-seed{seed}"));
            let kpis = std::fs::read_to_string(dir.join("kpis.csv")).expect("cell kpis.csv");
            assert_eq!(kpis.lines().count(), 5, "{kpis}");
            // The cell's heatctl row in kpis.csv is the matrix's.
            let h = kpis
                .lines()
                .find(|l| l.starts_with("heatctl,"))
                .expect("heatctl");
            assert_eq!(h.split(',').nth(1), Some(cell[2][3]));

            let sweep = std::fs::read_to_string(dir.join("sweep.csv")).expect("sweep.csv");
            let s: Vec<Vec<&str>> = sweep
                .lines()
                .skip(1)
                .map(|l| l.split(',').collect())
                .collect();
            assert_eq!(
                sweep.lines().next(),
                Some("strategy,target_c,energy_kwh_m2,tdis_worst_kh,capture")
            );
            let names: Vec<&str> = s.iter().map(|r| r[0]).collect();
            assert_eq!(
                names,
                [
                    "heatctl@18.20",
                    "heatctl@18.50",
                    "heatctl@18.80",
                    "B1",
                    "O2",
                    "R1"
                ]
            );
            let targets: Vec<&str> = s.iter().map(|r| r[1]).collect();
            assert_eq!(targets, ["18.20", "18.50", "18.80", "", "", ""]);
            // A higher target never uses less heat.
            let e: Vec<f64> = s[..3]
                .iter()
                .map(|r| r[2].parse().expect("energy"))
                .collect();
            assert!(e[0] <= e[1] && e[1] <= e[2], "{sweep}");
            let svg = std::fs::read_to_string(dir.join("sweep.svg")).expect("sweep.svg");
            assert!(svg.starts_with("<svg") && svg.contains("18.50") && svg.contains("R1"));
        }
    }
    let aims = std::fs::read_to_string(out.join("matrix_aims.csv")).expect("matrix_aims.csv");
    assert!(aims.starts_with("weather,seed,aim,pass,figure\n"));
    // Four aims per cell (capture, worst, and heatctl_hh's two, not run: failed).
    assert_eq!(aims.lines().count(), 1 + 4 * 4, "{aims}");
    assert!(aims.lines().skip(1).any(|l| l.contains(",0,")));
    let md = std::fs::read_to_string(out.join("matrix.md")).expect("matrix.md");
    assert!(md.contains("| weather-chicago | 3 |"), "{md}");
    assert!(
        md.contains("(weather-hohhot-synthetic-seed7/kpis.md)"),
        "{md}"
    );
}

fn matrix_header() -> &'static str {
    season::matrix::MATRIX_HEADER
}

#[test]
fn a_trace_follows_the_chosen_flats_of_a_household_valve_run() {
    let mut s = setup(1.0);
    let flats = s.scenario.buildings.count
        * s.scenario.buildings.floors
        * s.scenario.buildings.units_per_floor;
    // Two real apartments and one past the last, which is left out.
    s.trace = Some(season::trace::TraceSpec {
        flats: vec![0, flats - 1, flats + 5],
        interval_s: 3600.0,
    });
    let hh = RunKind::Heatctl {
        household: true,
        variant: None,
    };
    let r = season::run(&s, "heatctl_hh", hh, &no_progress).expect("run");
    let t = r.trace.expect("a trace");
    let samples = t.samples();
    assert_eq!(
        samples.len(),
        2 * 24,
        "two flats, one sample an hour for a day"
    );
    assert!(samples.iter().all(|x| x.flat == 0 || x.flat == flats - 1));
    // With household valves every home has a node and a valve; its reading is its air plus a
    // bias of at most 0.3 K and the noise.
    let later: Vec<_> = samples.iter().filter(|x| x.time_h >= 1.0).collect();
    assert!(
        later
            .iter()
            .all(|x| x.valve_pct.is_some_and(|v| (0.0..=100.0).contains(&v)))
    );
    assert!(
        later
            .iter()
            .all(|x| x.reading_c.is_some_and(|c| (c - x.air_c).abs() < 0.8)),
        "{later:?}"
    );
    assert!(
        later
            .iter()
            .all(|x| x.t2_supply_c.is_finite() && x.t_out_c.is_finite())
    );
    let csv = t.csv();
    assert_eq!(
        csv.lines().next(),
        Some("time_h,flat,t_out_c,setpoint_c,t2_supply_c,air_c,reading_c,valve_pct")
    );
    assert_eq!(csv.lines().count(), 1 + samples.len());

    // On a plant without household valves the valve column is empty.
    s.scenario.household_valves.enabled = false;
    s.trace = Some(season::trace::TraceSpec {
        flats: vec![0],
        interval_s: 3600.0,
    });
    let plain = RunKind::Heatctl {
        household: false,
        variant: None,
    };
    let r = season::run(&s, "heatctl", plain, &no_progress).expect("run");
    assert!(
        r.trace
            .expect("a trace")
            .samples()
            .iter()
            .all(|x| x.valve_pct.is_none())
    );
}
