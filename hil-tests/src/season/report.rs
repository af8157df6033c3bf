//! `kpis.csv`, `variants.csv` and `kpis.md`.

use std::fmt::Write as _;

use super::{CSV_HEADER, RunResult};

fn num(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        // Not applicable (O1 has no primary flow, hence no return temperature).
        String::new()
    }
}

/// One CSV row of a run (columns of [`CSV_HEADER`]).
#[must_use]
pub fn csv_row(r: &RunResult) -> String {
    let k = &r.kpis;
    format!(
        "{},{},{},{},{},{},{},{},{},{}",
        r.label,
        num(k.energy_kwh_m2, 3),
        num(k.tdis_kh, 2),
        num(k.tdis_worst_kh, 2),
        num(k.cold_hours_pct, 3),
        num(k.overheat_kh, 1),
        num(k.peak_w_m2, 2),
        num(k.t1_return_c, 2),
        num(k.valve_travel, 2),
        num(r.wall_s, 2),
    )
}

/// A CSV text: the header and one row per run.
#[must_use]
pub fn csv(runs: &[RunResult]) -> String {
    let mut s = String::from(CSV_HEADER);
    s.push('\n');
    for r in runs {
        s.push_str(&csv_row(r));
        s.push('\n');
    }
    s
}

/// The KPI table in Markdown (the CSV's columns).
#[must_use]
pub fn markdown_table(runs: &[RunResult]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| strategy | energy kWh/m² | tdis K·h | tdis worst K·h | cold hours % | overheat K·h | peak W/m² | t1_return °C | valve travel strokes | wall s |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in runs {
        let k = &r.kpis;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.label,
            num(k.energy_kwh_m2, 2),
            num(k.tdis_kh, 1),
            num(k.tdis_worst_kh, 1),
            num(k.cold_hours_pct, 2),
            num(k.overheat_kh, 0),
            num(k.peak_w_m2, 1),
            if k.t1_return_c.is_finite() {
                num(k.t1_return_c, 1)
            } else {
                "n/a".into()
            },
            num(k.valve_travel, 1),
            num(r.wall_s, 1),
        );
    }
    s
}

/// Supporting figures in Markdown.
#[must_use]
pub fn markdown_extra(runs: &[RunResult]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| strategy | delivered kWh/m² | pipe loss kWh/m² | coldest flat P10 °C | mean room °C | valve reversals | mean abs(t2 - setpoint) K | return above limit K·h | time ratio |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in runs {
        let e = &r.extra;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.label,
            num(e.delivered_kwh_m2, 2),
            num(e.pipe_loss_kwh_m2, 2),
            num(e.coldest_p10_c, 2),
            num(e.mean_room_c, 2),
            e.valve_reversals,
            if e.supply_tracking_k.is_finite() {
                num(e.supply_tracking_k, 2)
            } else {
                "n/a".into()
            },
            num(e.return_excess_kh, 1),
            if e.time_ratio.is_finite() {
                format!("{:.1e}", e.time_ratio)
            } else {
                "n/a".into()
            },
        );
    }
    s
}

/// Ratio of `a`'s energy to `b`'s, as a signed percentage difference.
#[must_use]
pub fn energy_diff_pct(a: &RunResult, b: &RunResult) -> f64 {
    100.0 * (a.kpis.energy_kwh_m2 / b.kpis.energy_kwh_m2 - 1.0)
}
