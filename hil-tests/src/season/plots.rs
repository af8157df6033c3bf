//! SVG plots of a scorecard: daily room temperatures per strategy, setpoint and secondary supply
//! against outdoor temperature, cumulative heat.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

use super::RunResult;

/// A daily series of the room plot: name, colour, getter.
type DaySeries = (&'static str, RGBColor, fn(&super::Day) -> f64);

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("plot: {e}")
}

/// Draw the series legend of a chart at `position`, the same style on every plot.
fn legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<()>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(position)
        .draw()
        .map_err(err)
}

fn finite_range(values: impl Iterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-6 {
        return (lo - 1.0, hi + 1.0);
    }
    (lo - pad, hi + pad)
}

/// Daily P10 / median / P90 of the apartments' room temperatures, one panel per strategy.
///
/// # Errors
/// The file cannot be written.
pub fn room_temperatures(path: &Path, runs: &[RunResult]) -> Result<()> {
    let rows = runs.len().max(1);
    let root = SVGBackend::new(path, (1000, 220 * rows as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let panels = root.split_evenly((rows, 1));
    let (ylo, yhi) = finite_range(
        runs.iter()
            .flat_map(|r| r.days.iter().flat_map(|d| [d.room_p10_c, d.room_p90_c])),
        0.5,
    );
    let ylo = ylo.min(17.0);
    for (r, area) in runs.iter().zip(panels.iter()) {
        let days = r.days.len().max(1) as f64;
        let mut chart = ChartBuilder::on(area)
            .caption(
                format!("{}: daily room temperature, all apartments", r.label),
                ("sans-serif", 16),
            )
            .margin(6)
            .x_label_area_size(26)
            .y_label_area_size(44)
            .build_cartesian_2d(0.0..days, ylo..yhi)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("day of the season")
            .y_desc("°C")
            .draw()
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                [(0.0, 18.0), (days, 18.0)],
                BLACK.stroke_width(1),
            ))
            .map_err(err)?
            .label("18 °C")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK));
        let series: [DaySeries; 3] = [
            ("P10", color(3), |d| d.room_p10_c),
            ("median", color(2), |d| d.room_median_c),
            ("P90", color(0), |d| d.room_p90_c),
        ];
        for (name, c, get) in series {
            chart
                .draw_series(LineSeries::new(
                    r.days.iter().map(|d| (d.day as f64 + 0.5, get(d))),
                    c.stroke_width(2),
                ))
                .map_err(err)?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

/// Daily mean secondary supply setpoint (circles) and measured secondary supply (dots) against
/// the daily mean outdoor temperature, per strategy (O1 left out: its substation is idle).
///
/// # Errors
/// The file cannot be written.
pub fn supply_vs_outdoor(path: &Path, runs: &[RunResult]) -> Result<()> {
    let runs: Vec<&RunResult> = runs
        .iter()
        .filter(|r| r.kind != super::RunKind::Oracle)
        .collect();
    let root = SVGBackend::new(path, (1000, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (xlo, xhi) = finite_range(
        runs.iter().flat_map(|r| r.days.iter().map(|d| d.t_out_c)),
        1.0,
    );
    let (ylo, yhi) = finite_range(
        runs.iter()
            .flat_map(|r| r.days.iter().flat_map(|d| [d.setpoint_c, d.t2_supply_c])),
        2.0,
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Secondary supply against outdoor temperature (daily means): setpoint ○, measured •",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(50)
        .build_cartesian_2d(xlo..xhi, ylo..yhi)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("outdoor temperature, °C")
        .y_desc("secondary supply, °C")
        .draw()
        .map_err(err)?;
    for (i, r) in runs.iter().enumerate() {
        let c = color(i);
        chart
            .draw_series(
                r.days
                    .iter()
                    .filter(|d| d.setpoint_c.is_finite())
                    .map(|d| Circle::new((d.t_out_c, d.setpoint_c), 3, c.stroke_width(1))),
            )
            .map_err(err)?
            .label(r.label.as_str())
            .legend(move |(x, y)| Circle::new((x + 8, y), 4, c.filled()));
        chart
            .draw_series(
                r.days
                    .iter()
                    .map(|d| Circle::new((d.t_out_c, d.t2_supply_c), 1, c.filled())),
            )
            .map_err(err)?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    root.present().map_err(err)?;
    Ok(())
}

/// Cumulative heat (the energy KPI) over the season, per strategy.
///
/// # Errors
/// The file cannot be written.
pub fn cumulative_heat(path: &Path, runs: &[RunResult]) -> Result<()> {
    let root = SVGBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let days = runs.iter().map(|r| r.days.len()).max().unwrap_or(1).max(1) as f64;
    let (_, yhi) = finite_range(
        runs.iter()
            .flat_map(|r| r.days.iter().map(|d| d.cumulative_kwh_m2)),
        1.0,
    );
    let mut chart = ChartBuilder::on(&root)
        .caption("Cumulative heat, kWh/m²", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..days, 0.0..yhi)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("day of the season")
        .y_desc("kWh/m²")
        .draw()
        .map_err(err)?;
    for (i, r) in runs.iter().enumerate() {
        let c = color(i);
        chart
            .draw_series(LineSeries::new(
                r.days
                    .iter()
                    .map(|d| (d.day as f64 + 1.0, d.cumulative_kwh_m2)),
                c.stroke_width(2),
            ))
            .map_err(err)?
            .label(r.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c));
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    root.present().map_err(err)?;
    Ok(())
}
