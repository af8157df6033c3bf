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

/// One KPI column of the CSV and the Markdown table.
struct KpiColumn {
    /// Header in the Markdown table.
    markdown: &'static str,
    /// The value of a run.
    value: fn(&RunResult) -> f64,
    /// Decimals in the CSV.
    csv_decimals: usize,
    /// Decimals in the Markdown table.
    markdown_decimals: usize,
    /// Markdown shows `n/a` where the value does not apply (the CSV leaves it empty).
    markdown_na: bool,
}

const fn kpi_column(
    markdown: &'static str,
    value: fn(&RunResult) -> f64,
    csv_decimals: usize,
    markdown_decimals: usize,
) -> KpiColumn {
    KpiColumn {
        markdown,
        value,
        csv_decimals,
        markdown_decimals,
        markdown_na: false,
    }
}

/// The KPI columns after the strategy, in [`CSV_HEADER`] order.
const KPI_COLUMNS: [KpiColumn; 10] = [
    kpi_column("energy kWh/m²", |r| r.kpis.energy_kwh_m2, 3, 2),
    kpi_column("pump kWh_el/m²", |r| r.kpis.pump_kwh_el_m2, 4, 3),
    kpi_column("tdis K·h", |r| r.kpis.tdis_kh, 2, 1),
    kpi_column("tdis worst K·h", |r| r.kpis.tdis_worst_kh, 2, 1),
    kpi_column("cold hours %", |r| r.kpis.cold_hours_pct, 3, 2),
    kpi_column("overheat K·h", |r| r.kpis.overheat_kh, 1, 0),
    kpi_column("peak W/m²", |r| r.kpis.peak_w_m2, 2, 1),
    KpiColumn {
        markdown_na: true,
        ..kpi_column("t1_return °C", |r| r.kpis.t1_return_c, 2, 1)
    },
    kpi_column("valve travel strokes", |r| r.kpis.valve_travel, 2, 1),
    kpi_column("wall s", |r| r.wall_s, 2, 1),
];

/// One CSV row of a run (columns of [`CSV_HEADER`]).
#[must_use]
pub fn csv_row(r: &RunResult) -> String {
    let mut row = r.label.clone();
    for c in &KPI_COLUMNS {
        row.push(',');
        row.push_str(&num((c.value)(r), c.csv_decimals));
    }
    row
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

/// `v` to `decimals`, or `n/a` where it does not apply.
fn num_or_na(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        num(v, decimals)
    } else {
        "n/a".into()
    }
}

/// A Markdown table: the header row, the alignment row (first column left, the others right)
/// and one row per run, its cells given by `cells`.
fn markdown(
    header: &[&str],
    runs: &[RunResult],
    cells: impl Fn(&RunResult) -> Vec<String>,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "| {} |", header.join(" | "));
    let _ = writeln!(s, "|---|{}", "---:|".repeat(header.len() - 1));
    for r in runs {
        let _ = writeln!(s, "| {} | {} |", r.label, cells(r).join(" | "));
    }
    s
}

/// The KPI table in Markdown (the CSV's columns).
#[must_use]
pub fn markdown_table(runs: &[RunResult]) -> String {
    let header: Vec<&str> = std::iter::once("strategy")
        .chain(KPI_COLUMNS.iter().map(|c| c.markdown))
        .collect();
    markdown(&header, runs, |r| {
        KPI_COLUMNS
            .iter()
            .map(|c| {
                let v = (c.value)(r);
                if c.markdown_na {
                    num_or_na(v, c.markdown_decimals)
                } else {
                    num(v, c.markdown_decimals)
                }
            })
            .collect()
    })
}

/// Supporting figures in Markdown.
#[must_use]
pub fn markdown_extra(runs: &[RunResult]) -> String {
    let header = [
        "strategy",
        "delivered kWh/m²",
        "pipe loss kWh/m²",
        "coldest flat P10 °C",
        "mean room °C",
        "valve reversals",
        "mean abs(t2 - setpoint) K",
        "return above limit K·h",
        "time ratio",
    ];
    markdown(&header, runs, |r| {
        let e = &r.extra;
        vec![
            num(e.delivered_kwh_m2, 2),
            num(e.pipe_loss_kwh_m2, 2),
            num(e.coldest_p10_c, 2),
            num(e.mean_room_c, 2),
            e.valve_reversals.to_string(),
            num_or_na(e.supply_tracking_k, 2),
            num(e.return_excess_kh, 1),
            if e.time_ratio.is_finite() {
                format!("{:.1e}", e.time_ratio)
            } else {
                "n/a".into()
            },
        ]
    })
}

/// Ratio of `a`'s energy to `b`'s, as a signed percentage difference.
#[must_use]
pub fn energy_diff_pct(a: &RunResult, b: &RunResult) -> f64 {
    100.0 * (a.kpis.energy_kwh_m2 / b.kpis.energy_kwh_m2 - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::season::RunKind;
    use crate::season::kpi::{Extra, Kpis};

    fn run() -> RunResult {
        RunResult {
            label: "x".into(),
            kind: RunKind::ReferenceRoom,
            kpis: Kpis {
                energy_kwh_m2: 1.23456,
                pump_kwh_el_m2: 0.31249,
                tdis_kh: 2.3449,
                tdis_worst_kh: 3.4561,
                cold_hours_pct: 4.5678,
                overheat_kh: 5.54,
                peak_w_m2: 6.789,
                t1_return_c: f64::NAN,
                valve_travel: 7.2549,
            },
            extra: Extra {
                valve_reversals: 3,
                supply_tracking_k: f64::NAN,
                ..Extra::default()
            },
            days: Vec::new(),
            wall_s: 8.1261,
            notes: Vec::new(),
        }
    }

    #[test]
    fn csv_and_markdown_columns() {
        let r = run();
        assert_eq!(
            csv_row(&r),
            "x,1.235,0.3125,2.34,3.46,4.568,5.5,6.79,,7.25,8.13"
        );
        assert_eq!(
            markdown_table(std::slice::from_ref(&r)),
            "| strategy | energy kWh/m² | pump kWh_el/m² | tdis K·h | tdis worst K·h | cold hours % | overheat K·h | peak W/m² | t1_return °C | valve travel strokes | wall s |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n\
             | x | 1.23 | 0.312 | 2.3 | 3.5 | 4.57 | 6 | 6.8 | n/a | 7.3 | 8.1 |\n"
        );
        assert_eq!(
            markdown_extra(std::slice::from_ref(&r)),
            "| strategy | delivered kWh/m² | pipe loss kWh/m² | coldest flat P10 °C | mean room °C | valve reversals | mean abs(t2 - setpoint) K | return above limit K·h | time ratio |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|\n\
             | x | 0.00 | 0.00 | 0.00 | 0.00 | 3 | n/a | 0.0 | 0.0e0 |\n"
        );
    }
}
