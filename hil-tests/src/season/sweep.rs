//! The target sweep (issue 14, item 3): heatctl's energy against its worst flat's K·h below
//! 18 °C as `[demand] target_c` is swept, with B1, O2 and R1 as reference points, so a utility
//! sees the trade-off. `sweep.csv` and `sweep.svg`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Result, anyhow, bail};
use plotters::prelude::*;

use super::RunResult;
use super::report::capture;

/// The header of `sweep.csv`: one row per run, heatctl's at each target (`target_c` set), then
/// the references (`target_c` empty). `capture` is (B1 - run) / (B1 - O2) on energy.
pub const SWEEP_HEADER: &str = "strategy,target_c,energy_kwh_m2,tdis_worst_kh,capture";

/// The label of heatctl's run at `target_c`: `heatctl@18.60`.
#[must_use]
pub fn label(target_c: f64) -> String {
    format!("heatctl@{target_c:.2}")
}

/// The targets of `spec`: `FROM:TO:STEP` (both ends included, to within a thousandth of a
/// step) or a comma-separated list, °C.
///
/// # Errors
/// Not numbers, a step that is not positive, `TO` below `FROM`, more than 200 targets, or a
/// target outside 5-35 °C.
pub fn parse_targets(spec: &str) -> Result<Vec<f64>> {
    let num = |t: &str| -> Result<f64> {
        t.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| anyhow!("--sweep-target: {t:?} is not a number"))
    };
    let targets: Vec<f64> = if spec.contains(':') {
        let parts: Vec<&str> = spec.split(':').collect();
        let [from, to, step] = parts[..] else {
            bail!("--sweep-target: expected FROM:TO:STEP, got {spec:?}");
        };
        let (from, to, step) = (num(from)?, num(to)?, num(step)?);
        if step <= 0.0 {
            bail!("--sweep-target: the step must be positive");
        }
        if to < from {
            bail!("--sweep-target: {to} is below {from}");
        }
        let n = ((to - from) / step + 1e-3).floor();
        if n > 200.0 {
            bail!("--sweep-target: more than 200 targets");
        }
        // Each target rounded to a millionth so that 18.2 + 3 x 0.1 prints as 18.5.
        (0..=n as usize)
            .map(|i| ((from + i as f64 * step) * 1e6).round() / 1e6)
            .collect()
    } else {
        spec.split(',').map(num).collect::<Result<_>>()?
    };
    if targets.is_empty() || targets.len() > 200 {
        bail!("--sweep-target: between 1 and 200 targets");
    }
    if let Some(t) = targets.iter().find(|t| !(5.0..=35.0).contains(*t)) {
        bail!("--sweep-target: {t} °C is outside 5-35 °C");
    }
    Ok(targets)
}

fn num(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        String::new()
    }
}

/// `sweep.csv`: heatctl at each target, then the references; capture against `b1` and `o2`
/// (empty without them).
#[must_use]
pub fn csv(
    points: &[(f64, &RunResult)],
    references: &[&RunResult],
    b1: Option<&RunResult>,
    o2: Option<&RunResult>,
) -> String {
    let mut s = format!("{SWEEP_HEADER}\n");
    let cap = |r: &RunResult| match (b1, o2) {
        (Some(b1), Some(o2)) => capture(r, b1, o2),
        _ => f64::NAN,
    };
    let rows = points
        .iter()
        .map(|&(t, r)| (Some(t), r))
        .chain(references.iter().map(|&r| (None, r)));
    for (t, r) in rows {
        let _ = writeln!(
            s,
            "{},{},{},{},{}",
            r.label,
            t.map_or_else(String::new, |t| num(t, 2)),
            num(r.kpis.energy_kwh_m2, 3),
            num(r.kpis.tdis_worst_kh, 2),
            num(cap(r), 3)
        );
    }
    s
}

/// Lowest worst-flat K·h drawn on the log axis: runs below it (O2 near 0) are drawn on it.
pub const LOG_FLOOR_KH: f64 = 0.1;

fn err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("plot: {e}")
}

/// `sweep.svg`: energy (x) against the worst flat's K·h below 18 °C (y, log scale, values under
/// [`LOG_FLOOR_KH`] drawn on it); heatctl's points joined in target order and labelled with
/// their target, each reference a marker of its own with its name.
///
/// # Errors
/// No points, or the file cannot be written.
pub fn svg(
    path: &Path,
    points: &[(f64, &RunResult)],
    references: &[&RunResult],
    title: &str,
) -> Result<()> {
    if points.is_empty() && references.is_empty() {
        bail!("sweep plot: nothing to draw");
    }
    let xy = |r: &RunResult| (r.kpis.energy_kwh_m2, r.kpis.tdis_worst_kh.max(LOG_FLOOR_KH));
    let all: Vec<(f64, f64)> = points
        .iter()
        .map(|(_, r)| xy(r))
        .chain(references.iter().map(|r| xy(r)))
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let (mut xlo, mut xhi) = all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (x, _)| {
            (lo.min(*x), hi.max(*x))
        });
    let yhi = all.iter().map(|p| p.1).fold(LOG_FLOOR_KH, f64::max);
    if !(xlo.is_finite() && xhi.is_finite()) {
        bail!("sweep plot: no finite point");
    }
    let pad = ((xhi - xlo) * 0.08).max(0.5);
    xlo -= pad;
    xhi += pad;
    let root = SVGBackend::new(path, (900, 620)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(xlo..xhi, (LOG_FLOOR_KH * 0.8..yhi * 2.0).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("energy, kWh/m² (heat through the exchanger)")
        .y_desc("worst flat, K·h below 18 °C (log)")
        .draw()
        .map_err(err)?;
    let line = RGBColor(31, 119, 180);
    let mut heatctl: Vec<(f64, f64)> = points.iter().map(|(_, r)| xy(r)).collect();
    heatctl.retain(|(x, y)| x.is_finite() && y.is_finite());
    if !heatctl.is_empty() {
        chart
            .draw_series(LineSeries::new(heatctl.clone(), line.stroke_width(2)))
            .map_err(err)?
            .label("heatctl, [demand] target_c swept")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], line));
        chart
            .draw_series(heatctl.iter().map(|&p| Circle::new(p, 4, line.filled())))
            .map_err(err)?;
        chart
            .draw_series(
                points.iter().map(|(t, r)| {
                    Text::new(format!("{t:.2}"), xy(r), ("sans-serif", 12).into_font())
                }),
            )
            .map_err(err)?;
    }
    let marks = [
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
        RGBColor(255, 127, 14),
        RGBColor(127, 127, 127),
    ];
    for (i, r) in references.iter().enumerate() {
        let c = marks[i % marks.len()];
        let p = xy(r);
        if !(p.0.is_finite() && p.1.is_finite()) {
            continue;
        }
        chart
            .draw_series([TriangleMarker::new(p, 8, c.filled())])
            .map_err(err)?
            .label(r.label.clone())
            .legend(move |(x, y)| TriangleMarker::new((x + 8, y), 5, c.filled()));
        chart
            .draw_series([Text::new(
                r.label.clone(),
                (p.0, p.1 * 1.15),
                ("sans-serif", 13).into_font().color(&c),
            )])
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_from_a_range_or_a_list() {
        let t = parse_targets("18.2:19.5:0.1").unwrap();
        assert_eq!(t.len(), 14);
        assert_eq!(t[0], 18.2);
        assert_eq!(t[3], 18.5);
        assert_eq!(t[13], 19.5);
        assert_eq!(parse_targets("18.6, 18.3").unwrap(), vec![18.6, 18.3]);
        assert_eq!(parse_targets("19:19:0.5").unwrap(), vec![19.0]);
        for bad in [
            "18:19",
            "18:19:0",
            "19:18:0.1",
            "a:b:c",
            "18.x",
            "",
            "2:3:1",
            "18:80:0.01",
        ] {
            assert!(parse_targets(bad).is_err(), "{bad}");
        }
        assert_eq!(label(18.2), "heatctl@18.20");
    }
}
