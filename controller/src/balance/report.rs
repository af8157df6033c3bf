//! The advice as a technician reads it: Markdown (a table per building, its risers and flats,
//! and a plain-language summary) or CSV (one row per riser or building).

use std::fmt::Write as _;

use super::estimate::{Advice, GroupAdvice};

/// Columns of the CSV report, in order.
pub const CSV_COLUMNS: [&str; 16] = [
    "building",
    "riser",
    "flats",
    "flat_hours",
    "mean_deficit_k",
    "mean_valve_pct",
    "flow_ratio",
    "flow_ratio_low",
    "flow_ratio_high",
    "mains_m",
    "own_flow_ratio",
    "pooled",
    "verdict",
    "confidence",
    "kv_change_pct",
    "advice",
];

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(String::new, |x| format!("{x:.digits$}"))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The CSV report: a header of [`CSV_COLUMNS`], then one row per group (none when advice was
/// refused).
#[must_use]
pub fn csv(advice: &Advice) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push('\n');
    for g in &advice.groups {
        let row = [
            csv_field(&g.building),
            csv_field(g.riser.as_deref().unwrap_or("")),
            g.flats.to_string(),
            g.flat_hours.to_string(),
            format!("{:.2}", g.mean_deficit_k),
            opt(g.mean_valve_pct, 1),
            format!("{:.3}", g.flow_ratio),
            format!("{:.3}", g.flow_ratio_low),
            format!("{:.3}", g.flow_ratio_high),
            opt(g.mains_m, 0),
            format!("{:.3}", g.own_flow_ratio),
            g.pooled.to_string(),
            g.verdict.words().to_owned(),
            format!("{:?}", g.confidence).to_lowercase(),
            opt(g.kv.change_pct(), 1),
            csv_field(&g.kv.words()),
        ];
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

fn date(unix_s: i64) -> String {
    let (y, m, d) = super::record::civil_date(unix_s);
    format!("{y:04}-{m:02}-{d:02}")
}

fn group_row(g: &GroupAdvice) -> String {
    format!(
        "| {} | {} | {:+.1} | {} | {:.2} ({:.2}-{:.2}) | {} | {} | **{}** | {} |",
        g.riser.as_deref().unwrap_or("(whole building)"),
        g.flats,
        g.mean_deficit_k,
        opt(g.mean_valve_pct, 0),
        g.flow_ratio,
        g.flow_ratio_low,
        g.flow_ratio_high,
        if g.pooled {
            format!("{:.2} at {} m", g.own_flow_ratio, opt(g.mains_m, 0))
        } else {
            "-".to_owned()
        },
        g.verdict.words(),
        g.kv.words(),
        format!("{:?}", g.confidence).to_lowercase(),
    )
}

/// The Markdown report.
#[must_use]
pub fn markdown(advice: &Advice, site: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Balancing advice: {site}\n");
    match advice.span_unix_s {
        Some((a, b)) => {
            let _ = writeln!(
                s,
                "History {} to {}: {} hours, {} usable on {} days; {} flats used, {} with too few \
                 hours; {} garbled line(s) skipped.\n",
                date(a),
                date(b),
                advice.hours_total,
                advice.hours_usable,
                advice.days_usable,
                advice.flats_used,
                advice.flats_too_few_hours,
                advice.garbled_lines
            );
        }
        None => {
            let _ = writeln!(s, "The history holds no hours.\n");
        }
    }
    let _ = writeln!(s, "## Summary\n\n{}\n", advice.summary());
    if advice.refused.is_some() {
        return s;
    }
    let _ = writeln!(
        s,
        "Flow ratio: the flow a riser should have relative to what it has, relative to the \
         network's median flat (1.00: its share; 1.30: 30 % more), with an approximate 95 % \
         interval. Own: the riser's estimate from its flats alone, where the flow ratio pools it \
         with the trend of the risers along the mains (their `mains_m` given). Deficit: target \
         minus room temperature, K. kv change: of the static balancing valves of the riser's \
         flats (docs/balancing.md).\n"
    );
    let mut buildings: Vec<&str> = advice.groups.iter().map(|g| g.building.as_str()).collect();
    buildings.dedup();
    for b in buildings {
        let _ = writeln!(s, "## Building {b}\n");
        let _ = writeln!(
            s,
            "| riser | flats | mean deficit K | valve % | flow ratio (95 %) | own | verdict | kv change | confidence |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---|---|---|---|---|");
        for g in advice.groups.iter().filter(|g| g.building == b) {
            let _ = writeln!(s, "{}", group_row(g));
        }
        let _ = writeln!(
            s,
            "\n| flat | riser | position | hours | mean room °C | deficit K | valve % | flow ratio |"
        );
        let _ = writeln!(s, "|---|---|---|---:|---:|---:|---:|---:|");
        let reference = advice.reference_flow_ratio.unwrap_or(1.0);
        for f in advice.flats.iter().filter(|f| f.building == b) {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.1} | {:+.1} | {} | {:.2} |",
                f.id,
                f.riser.as_deref().unwrap_or(""),
                f.position,
                f.hours,
                f.mean_room_c,
                f.mean_deficit_k,
                opt(f.mean_valve_pct, 0),
                f.flow_need_ratio / reference
            );
        }
        s.push('\n');
    }
    s
}
