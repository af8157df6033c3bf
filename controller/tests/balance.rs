//! Balancing advice on synthetic histories where the answer is known: a small network of flats
//! simulated with a radiator model of its own (the radiator as 40 segments in series, each
//! giving k (T - T_room)^n, not the estimator's log-mean law), so the estimator is tested
//! against physics it did not write. Then the report's columns and the `heatctl balance`
//! command end to end on generated history files.

use std::path::Path;

use heatctl::balance::emitter::valve_flow_fraction;
use heatctl::balance::record::file_name;
use heatctl::balance::report::{CSV_COLUMNS, csv};
use heatctl::balance::{HourRecord, KvAdvice, RoomHour, Settings, Verdict, estimate};
use heatctl::config::History;

#[path = "peers/support.rs"]
mod support;
use support::{Scratch, heatctl};

const N: f64 = 1.3;
const SEGMENTS: usize = 40;
/// Design: 75/50 °C at 20 °C room, -17 °C outdoors; design load 1 (per unit of UA x 37 K).
const DESIGN_FLOW: f64 = 1.0 / 25.0; // heat capacity flow, load units per K

/// The world's radiator: output for supply `ts`, heat-capacity flow `w` and room `tr`.
fn radiator_output(k: f64, ts: f64, w: f64, tr: f64) -> f64 {
    let mut t = ts;
    let mut q = 0.0;
    for _ in 0..SEGMENTS {
        let dq = (k * (t - tr).max(0.0).powf(N)).min(w * (t - tr).max(0.0));
        q += dq;
        t -= dq / w;
    }
    q
}

/// k such that the design flow at 75 °C in a 20 °C room gives the design load 1.
fn calibrated_k() -> f64 {
    let (mut lo, mut hi) = (1e-6_f64, 1.0_f64);
    for _ in 0..100 {
        let mid = (lo * hi).sqrt();
        if radiator_output(mid, 75.0, DESIGN_FLOW, 20.0) < 1.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo * hi).sqrt()
}

/// Free heat of every flat, as the indoor-outdoor difference it holds alone, K.
const GAINS_K: f64 = 3.0;

/// Steady room temperature of a flat with `flow` x design flow and radiator size `size`.
fn room_c(k: f64, size: f64, ts: f64, t_out: f64, flow: f64) -> f64 {
    let ua = 1.0 / 37.0;
    let (mut lo, mut hi) = (t_out, ts);
    for _ in 0..60 {
        let tr = 0.5 * (lo + hi);
        let gain = radiator_output(k * size, ts, DESIGN_FLOW * flow, tr);
        if gain + ua * GAINS_K > ua * (tr - t_out) {
            lo = tr;
        } else {
            hi = tr;
        }
    }
    0.5 * (lo + hi)
}

/// A small deterministic generator (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn uniform(&mut self, a: f64) -> f64 {
        (self.next() * 2.0 - 1.0) * a
    }
}

/// One flat of the synthetic network.
struct Flat {
    id: String,
    building: String,
    riser: String,
    /// Flow relative to its design flow.
    flow: f64,
    /// Radiator size relative to its design need.
    size: f64,
    /// Household valve holding this room temperature, when fitted.
    valve_target_c: Option<f64>,
}

/// Three buildings of two risers of six flats each; `flows` gives each riser's flow. Each
/// flat's flow and radiator size vary by up to ±`spread` around it (drawn from `seed`).
fn network(
    seed: u64,
    spread: f64,
    flows: &dyn Fn(&str) -> f64,
    valves: &dyn Fn(&str) -> Option<f64>,
) -> Vec<Flat> {
    let mut rng = Rng(0x5eed_1234 ^ seed);
    let mut flats = Vec::new();
    for b in 1..=3 {
        for r in 1..=2 {
            let riser = format!("b{b:02}-r{r}");
            for f in 1..=6 {
                flats.push(Flat {
                    id: format!("b{b:02}-{f:02}{r:02}"),
                    building: format!("b{b:02}"),
                    flow: flows(&riser) * (1.0 + rng.uniform(spread)),
                    size: 1.0 + rng.uniform(spread),
                    valve_target_c: valves(&riser),
                    riser: riser.clone(),
                });
            }
        }
    }
    flats
}

/// `days` of hourly history of `flats` under a weather of their own; supply from a curve that
/// gives a design flat about 20.5 °C.
fn history(flats: &[Flat], days: usize, seed: u64) -> Vec<HourRecord> {
    let k = calibrated_k();
    let mut rng = Rng(seed);
    let start = 1_767_225_600; // 2026-01-01 UTC
    let mut out = Vec::new();
    for h in 0..days * 24 {
        let day = h as f64 / 24.0;
        let t_out = -6.0 + 6.0 * (day / 5.0).sin() - 3.0 * (std::f64::consts::TAU * day).cos()
            + rng.uniform(1.0);
        let ts = 21.0 + 54.0 * ((21.0 - t_out) / 38.0).powf(1.0 / N) + rng.uniform(0.5);
        let rooms = flats
            .iter()
            .map(|f| {
                let free = room_c(k, f.size, ts, t_out, f.flow);
                // A household valve throttles to its target when the flat would be warmer.
                let (tr, valve) = match f.valve_target_c {
                    Some(target) if free > target => {
                        let (mut lo, mut hi) = (0.0, 100.0);
                        for _ in 0..50 {
                            let p = 0.5 * (lo + hi);
                            let frac = valve_flow_fraction(p, 30.0, 0.5);
                            if room_c(k, f.size, ts, t_out, f.flow * frac) < target {
                                lo = p;
                            } else {
                                hi = p;
                            }
                        }
                        (target, Some(0.5 * (lo + hi)))
                    }
                    Some(_) => (free, Some(100.0)),
                    None => (free, None),
                };
                RoomHour {
                    id: f.id.clone(),
                    building: f.building.clone(),
                    position: "middle".into(),
                    riser: Some(f.riser.clone()),
                    room_c: tr + rng.uniform(0.3),
                    valve_pct: valve,
                    samples: 6,
                }
            })
            .collect();
        out.push(HourRecord {
            hour_unix_s: start + h as i64 * 3600,
            outdoor_c: Some(t_out),
            t2_supply_c: Some(ts),
            samples: 60,
            rooms,
        });
    }
    out
}

fn settings() -> Settings {
    Settings::of(&History::default(), None)
}

fn none(_: &str) -> Option<String> {
    None
}

fn no_valves(_: &str) -> Option<f64> {
    None
}

#[test]
fn a_riser_30_pct_under_flowed_is_under_supplied_with_a_kv_increase() {
    let flats = network(
        1,
        0.05,
        &|r| if r == "b02-r1" { 0.7 } else { 1.0 },
        &no_valves,
    );
    let hours = history(&flats, 28, 7);
    let advice = estimate(&hours, &settings(), &none);
    assert!(advice.refused.is_none(), "{:?}", advice.refused);
    assert_eq!(advice.groups.len(), 6);
    for g in &advice.groups {
        let label = g.label();
        if g.riser.as_deref() == Some("b02-r1") {
            assert_eq!(g.verdict, Verdict::UnderSupplied, "{g:?}");
            // It needs 1/0.7 = 1.43 x its flow, relative to the others.
            assert!(
                g.flow_ratio > 1.25 && g.flow_ratio < 1.65,
                "{label}: flow ratio {}",
                g.flow_ratio
            );
            let others = advice
                .groups
                .iter()
                .filter(|o| o.riser != g.riser)
                .map(|o| o.mean_deficit_k)
                .fold(f64::NEG_INFINITY, f64::max);
            assert!(
                g.mean_deficit_k > others + 0.5,
                "{label}: the coldest riser: deficit {} vs the others' at most {others}",
                g.mean_deficit_k
            );
            assert!(
                match g.kv {
                    KvAdvice::Change { ratio } => ratio > 1.0,
                    KvAdvice::OpenFully => true,
                    KvAdvice::NoChange => false,
                },
                "{label}: {:?}",
                g.kv
            );
        } else {
            assert!(
                matches!(g.verdict, Verdict::Balanced | Verdict::Uncertain),
                "{label}: {g:?}"
            );
            assert_eq!(g.kv, KvAdvice::NoChange, "{label}");
        }
    }
    assert!(
        advice.summary().contains("b02 / b02-r1"),
        "{}",
        advice.summary()
    );
    // With a valve that takes most of its branch's drop, the same need is a finite kv step.
    let mut s = settings();
    s.balancing_valve_share = 0.9;
    let advice = estimate(&hours, &s, &none);
    let g = advice
        .groups
        .iter()
        .find(|g| g.riser.as_deref() == Some("b02-r1"))
        .expect("riser");
    match g.kv {
        KvAdvice::Change { ratio } => assert!(ratio > 1.3 && ratio < 2.5, "{ratio}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_balanced_network_gets_no_change() {
    for seed in [1, 2, 3] {
        // Balanced: each flat's flow and radiator within ±3 % of its need.
        let flats = network(seed, 0.03, &|_| 1.0, &no_valves);
        let advice = estimate(&history(&flats, 21, seed), &settings(), &none);
        assert!(advice.refused.is_none());
        assert!(
            advice
                .groups
                .iter()
                .all(|g| g.kv == KvAdvice::NoChange && g.verdict != Verdict::UnderSupplied),
            "seed {seed}: {:?}",
            advice.groups
        );
        assert_eq!(advice.changes().count(), 0);
        assert!(
            advice.summary().contains("balanced"),
            "{}",
            advice.summary()
        );
    }
}

#[test]
fn a_throttling_household_valve_reveals_an_over_supplied_riser() {
    // Riser b01-r2 gets 60 % too much flow; its household valves hold 19.5 °C by throttling,
    // so its rooms look right; the valve positions show the excess.
    let flats = network(1, 0.05, &|r| if r == "b01-r2" { 1.6 } else { 1.0 }, &|r| {
        (r == "b01-r2").then_some(19.5)
    });
    let hours = history(&flats, 28, 11);
    let advice = estimate(&hours, &settings(), &none);
    let g = advice
        .groups
        .iter()
        .find(|g| g.riser.as_deref() == Some("b01-r2"))
        .expect("riser");
    assert!(g.mean_valve_pct.is_some_and(|p| p < 90.0), "{g:?}");
    assert!(
        g.mean_deficit_k.abs() < 1.5,
        "its rooms are near target: {g:?}"
    );
    assert_eq!(g.verdict, Verdict::OverSupplied, "{g:?}");
    assert!(
        matches!(g.kv, KvAdvice::Change { ratio } if ratio < 0.9),
        "{g:?}"
    );
}

#[test]
fn too_little_data_is_refused_with_the_reason() {
    let flats = network(3, 0.05, &|_| 1.0, &no_valves);
    let advice = estimate(&history(&flats, 5, 3), &settings(), &none);
    let why = advice.refused.as_deref().expect("refused");
    assert!(why.contains("5 day(s)"), "{why}");
    assert!(advice.groups.is_empty());
    assert!(advice.summary().starts_with("No balancing advice yet"));
    // Warm hours do not count as heating hours.
    let mut s = settings();
    s.max_outdoor_c = -30.0;
    let advice = estimate(&history(&flats, 21, 3), &s, &none);
    assert!(
        advice
            .refused
            .as_deref()
            .is_some_and(|w| w.contains("0 day(s)"))
    );
    // A single flat cannot be compared with anything.
    let one: Vec<HourRecord> = history(&flats[..1], 21, 3);
    let advice = estimate(&one, &settings(), &none);
    assert!(
        advice
            .refused
            .as_deref()
            .is_some_and(|w| w.contains("1 flat(s)"))
    );
}

#[test]
fn the_csv_has_its_columns_and_a_row_per_riser() {
    let flats = network(
        1,
        0.05,
        &|r| if r == "b03-r2" { 0.7 } else { 1.0 },
        &no_valves,
    );
    let advice = estimate(&history(&flats, 21, 5), &settings(), &none);
    let text = csv(&advice);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(CSV_COLUMNS.join(",").as_str()));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 6);
    for r in &rows {
        assert_eq!(r.len(), CSV_COLUMNS.len(), "{r:?}");
        for c in [2, 3, 4, 6, 7, 8, 10] {
            assert!(
                r[c].parse::<f64>().is_ok(),
                "column {}: {r:?}",
                CSV_COLUMNS[c]
            );
        }
    }
    let under = rows.iter().find(|r| r[1] == "b03-r2").expect("row");
    assert_eq!(under[12], "under-supplied");
    assert_eq!(under[11], "false", "no lengths of main: not pooled");
    let ratio: f64 = under[6].parse().expect("ratio");
    assert!(ratio > 1.25);
}

// ---------------------------------------------------------------- the command, end to end

/// A fresh directory `heatctl-balance-PID-NAME`, removed when the guard is dropped.
fn temp_dir(name: &str) -> Scratch {
    Scratch::new(&format!("heatctl-balance-{}-{name}", std::process::id()))
}

/// Write `hours` as the recorder does, one file per month, with a garbled line in the middle.
fn write_history(dir: &Path, hours: &[HourRecord]) {
    let hist = dir.join("history");
    std::fs::create_dir_all(&hist).expect("dir");
    let mut texts: std::collections::BTreeMap<String, String> = Default::default();
    for (i, h) in hours.iter().enumerate() {
        let t = texts.entry(file_name(h.hour_unix_s)).or_default();
        t.push_str(&serde_json::to_string(h).expect("json"));
        t.push('\n');
        if i == 100 {
            t.push_str("{\"hour_unix_s\": 12, \"rooms\": [tru\n");
        }
    }
    for (name, text) in texts {
        std::fs::write(hist.join(name), text).expect("write");
    }
}

/// The least valid configuration: a site and a curve.
const CURVE: &str = "[site]\nname = \"Test station\"\n[curve]\n\
                     points = [{ outdoor_c = -20.0, supply_c = 70.0 }, { outdoor_c = 15.0, supply_c = 30.0 }]\n";

fn config_file(dir: &Path) -> String {
    let f = dir.join("station.toml");
    std::fs::write(&f, format!("{CURVE}[history]\nmin_days = 10\n")).expect("config");
    f.display().to_string()
}

#[test]
fn heatctl_balance_end_to_end() {
    let dir = temp_dir("e2e");
    let cfg = config_file(&dir);
    // 40 days from 1 January: two month files.
    let flats = network(
        1,
        0.05,
        &|r| if r == "b02-r1" { 0.7 } else { 1.0 },
        &no_valves,
    );
    write_history(&dir, &history(&flats, 40, 9));
    let from = dir.display().to_string();

    let (code, out, err) = heatctl(&["balance", "--config", &cfg, "--from", &from]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("# Balancing advice: Test station"), "{out}");
    assert!(out.contains("## Building b02"), "{out}");
    assert!(out.contains("| b02-r1 | 6 |"), "{out}");
    assert!(out.contains("| under-supplied |"), "{out}");
    assert!(out.contains("1 garbled line(s) skipped"), "{out}");
    assert!(err.contains("1 garbled line(s) skipped"), "{err}");

    let csv_file = dir.join("advice.csv");
    let csv_path = csv_file.display().to_string();
    let (code, _, err) = heatctl(&[
        "balance", "--config", &cfg, "--from", &from, "--format", "csv", "--out", &csv_path,
    ]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&csv_file).expect("csv written");
    assert!(text.starts_with(&CSV_COLUMNS.join(",")));
    assert_eq!(text.lines().count(), 7, "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("b02,b02-r1,") && l.contains("under-supplied")),
        "{text}"
    );

    // One month file alone: January's 31 days still advise.
    let jan = dir.join("history").join("rooms-2026-01.jsonl");
    let (code, out, _) = heatctl(&[
        "balance",
        "--config",
        &cfg,
        "--from",
        &jan.display().to_string(),
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("under-supplied"));
}

#[test]
fn heatctl_balance_refuses_short_missing_and_garbled_histories_clearly() {
    let dir = temp_dir("short");
    let cfg = config_file(&dir);
    let flats = network(3, 0.05, &|_| 1.0, &no_valves);
    write_history(&dir, &history(&flats, 6, 2));
    let (code, out, err) = heatctl(&[
        "balance",
        "--config",
        &cfg,
        "--from",
        &dir.display().to_string(),
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(out.contains("No balancing advice yet"), "{out}");
    assert!(err.contains("no advice"), "{err}");

    let missing = dir.join("nowhere");
    let (code, _, err) = heatctl(&[
        "balance",
        "--config",
        &cfg,
        "--from",
        &missing.display().to_string(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("no history at"), "{err}");

    let empty = temp_dir("empty");
    let (code, _, err) = heatctl(&[
        "balance",
        "--config",
        &cfg,
        "--from",
        &empty.display().to_string(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("no rooms-YYYY-MM.jsonl files"), "{err}");

    // Only garbage: every line skipped and counted, no panic, no advice.
    let garbage = temp_dir("garbage");
    std::fs::write(
        garbage.join("rooms-2026-01.jsonl"),
        "\u{0}\u{1}binary\n{\"a\":1}\n[]\n",
    )
    .expect("write");
    let (code, out, err) = heatctl(&[
        "balance",
        "--config",
        &cfg,
        "--from",
        &garbage.display().to_string(),
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("3 garbled line(s) skipped"), "{err}");
    assert!(out.contains("The history holds no hours"), "{out}");

    // A bad configuration: exit 2 with the problem located.
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, format!("{CURVE}[history]\nmonths_kept = 0\n")).expect("write");
    let (code, _, err) = heatctl(&[
        "balance",
        "--config",
        &bad.display().to_string(),
        "--from",
        &dir.display().to_string(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("history.months_kept"), "{err}");
}

/// Pressure falls along the mains: with each riser's length of main given, the estimator pools
/// the risers along the trend they show together. On networks whose flows fall with distance
/// (each riser also off the trend by its own few per cent) and whose flats scatter widely, the
/// pooled estimates are nearer the truth than each riser's own, over several draws; without
/// lengths nothing is pooled.
#[test]
fn risers_pooled_along_the_mains_are_nearer_the_truth_than_alone() {
    let mains_m = |riser: &str| match &riser[..3] {
        "b01" => 60.0,
        "b02" => 140.0,
        _ => 220.0,
    };
    let own_dev = |riser: &str| match riser {
        "b01-r1" => 1.04,
        "b02-r2" => 0.96,
        "b03-r1" => 1.03,
        _ => 1.0,
    };
    let true_flow = |riser: &str| (1.3 - 0.0025 * mains_m(riser)) * own_dev(riser);
    let mut s = settings();
    for b in 1..=3 {
        for r in 1..=2 {
            let name = format!("b{b:02}-r{r}");
            s.mains_m.insert(name.clone(), mains_m(&name));
        }
    }
    let rms = |advice: &heatctl::balance::Advice, own: bool| {
        let errs: Vec<f64> = advice
            .groups
            .iter()
            .map(|g| {
                let riser = g.riser.as_deref().expect("riser");
                let est = if own { g.own_flow_ratio } else { g.flow_ratio };
                est.ln() + true_flow(riser).ln()
            })
            .collect();
        // Relative advice: take out the common level before comparing.
        let mean = errs.iter().sum::<f64>() / errs.len() as f64;
        (errs.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / errs.len() as f64).sqrt()
    };
    let (mut own_sum, mut pooled_sum) = (0.0, 0.0);
    for seed in 1..=5 {
        let flats = network(seed, 0.25, &true_flow, &no_valves);
        let hours = history(&flats, 21, seed + 40);
        let advice = estimate(&hours, &s, &none);
        assert!(advice.refused.is_none(), "{:?}", advice.refused);
        assert!(
            advice
                .groups
                .iter()
                .all(|g| g.pooled && g.mains_m.is_some())
        );
        let (own, pooled) = (rms(&advice, true), rms(&advice, false));
        eprintln!("seed {seed}: rms error of ln(flow ratio): own {own:.3}, pooled {pooled:.3}");
        own_sum += own;
        pooled_sum += pooled;
        // The far building is advised more flow than the near one.
        let ratio_of = |b: &str| {
            advice
                .groups
                .iter()
                .filter(|g| g.building == b)
                .map(|g| g.flow_ratio.ln())
                .sum::<f64>()
        };
        assert!(ratio_of("b03") > ratio_of("b01"), "seed {seed}");
        let unpooled = estimate(&hours, &settings(), &none);
        assert!(
            unpooled
                .groups
                .iter()
                .all(|g| !g.pooled && (g.flow_ratio - g.own_flow_ratio).abs() < 1e-12)
        );
    }
    assert!(
        pooled_sum < own_sum,
        "mean rms error: pooled {:.3} vs own {:.3}",
        pooled_sum / 5.0,
        own_sum / 5.0
    );
}
