//! Several weather files and building seeds in one invocation (issue 14, item 3): one summary
//! over every weather x seed cell, `matrix.md` and `matrix.csv` (energy and worst flat per
//! strategy, capture) and `matrix_aims.csv` (the aims checked per cell).

use std::fmt::Write as _;

use super::RunResult;
use super::report::{Aim, capture};

/// One weather x seed cell of the matrix.
#[derive(Debug, Clone)]
pub struct Cell {
    /// The weather file's name (its stem), or `constant`.
    pub weather: String,
    /// The building seed.
    pub seed: u64,
    /// Sub-directory of the output directory holding the cell's own outputs.
    pub dir: String,
    /// The main table's runs, then the fault variants, in report order.
    pub runs: Vec<RunResult>,
    /// The aims checked on the cell's runs.
    pub aims: Vec<Aim>,
}

impl Cell {
    fn find(&self, label: &str) -> Option<&RunResult> {
        self.runs.iter().find(|r| r.label == label)
    }

    /// Capture of `r` against this cell's B1 and O2 (NaN without them).
    #[must_use]
    pub fn capture(&self, r: &RunResult) -> f64 {
        match (self.find("B1"), self.find("O2")) {
            (Some(b1), Some(o2)) => capture(r, b1, o2),
            _ => f64::NAN,
        }
    }

    /// Aims met, aims checked.
    #[must_use]
    pub fn aims_met(&self) -> (usize, usize) {
        (self.aims.iter().filter(|a| a.pass).count(), self.aims.len())
    }
}

/// The header of `matrix.csv`: one row per cell and run.
pub const MATRIX_HEADER: &str = "weather,seed,strategy,energy_kwh_m2,tdis_worst_kh,capture";
/// The header of `matrix_aims.csv`: one row per cell and aim (the figure quoted).
pub const MATRIX_AIMS_HEADER: &str = "weather,seed,aim,pass,figure";

fn num(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        String::new()
    }
}

/// A CSV field, quoted when it holds a comma or a quote.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `matrix.csv`.
#[must_use]
pub fn csv(cells: &[Cell]) -> String {
    let mut s = format!("{MATRIX_HEADER}\n");
    for c in cells {
        for r in &c.runs {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{}",
                field(&c.weather),
                c.seed,
                field(&r.label),
                num(r.kpis.energy_kwh_m2, 3),
                num(r.kpis.tdis_worst_kh, 2),
                num(c.capture(r), 3)
            );
        }
    }
    s
}

/// `matrix_aims.csv`.
#[must_use]
pub fn aims_csv(cells: &[Cell]) -> String {
    let mut s = format!("{MATRIX_AIMS_HEADER}\n");
    for c in cells {
        for a in &c.aims {
            let _ = writeln!(
                s,
                "{},{},{},{},{}",
                field(&c.weather),
                c.seed,
                field(&a.name),
                u8::from(a.pass),
                field(&a.figure)
            );
        }
    }
    s
}

/// `matrix.md`: a row per cell with every strategy's energy (worst flat's K·h in brackets),
/// heatctl's capture and the aims met; then a table of captures; then each cell's failed aims.
#[must_use]
pub fn markdown(cells: &[Cell]) -> String {
    // Columns: every label in the order first seen.
    let mut labels: Vec<&str> = Vec::new();
    for c in cells {
        for r in &c.runs {
            if !labels.contains(&r.label.as_str()) {
                labels.push(&r.label);
            }
        }
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Energy kWh/m², the worst flat's K·h below 18 °C in brackets:\n"
    );
    let _ = writeln!(s, "| weather | seed | {} |", labels.join(" | "));
    let _ = writeln!(s, "|---|---:|{}", "---:|".repeat(labels.len()));
    for c in cells {
        let cells_txt: Vec<String> = labels
            .iter()
            .map(|l| {
                c.find(l).map_or_else(String::new, |r| {
                    format!(
                        "{} ({})",
                        num(r.kpis.energy_kwh_m2, 2),
                        num(r.kpis.tdis_worst_kh, 1)
                    )
                })
            })
            .collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            c.weather,
            c.seed,
            cells_txt.join(" | ")
        );
    }
    let _ = writeln!(
        s,
        "\nCapture (B1 - strategy) / (B1 - O2) and the aims met (`--check-aims`):\n"
    );
    let _ = writeln!(
        s,
        "| weather | seed | B1 - O2 kWh/m² | {} | aims met |",
        labels.join(" | ")
    );
    let _ = writeln!(s, "|---|---:|---:|{}---:|", "---:|".repeat(labels.len()));
    for c in cells {
        let span = match (c.find("B1"), c.find("O2")) {
            (Some(b1), Some(o2)) => b1.kpis.energy_kwh_m2 - o2.kpis.energy_kwh_m2,
            _ => f64::NAN,
        };
        let caps: Vec<String> = labels
            .iter()
            .map(|l| c.find(l).map_or_else(String::new, |r| num(c.capture(r), 2)))
            .collect();
        let (met, all) = c.aims_met();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {met} of {all} |",
            c.weather,
            c.seed,
            num(span, 2),
            caps.join(" | ")
        );
    }
    let failed: Vec<&Cell> = cells
        .iter()
        .filter(|c| c.aims.iter().any(|a| !a.pass))
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(s, "\nAims not met:\n");
        for c in failed {
            for a in c.aims.iter().filter(|a| !a.pass) {
                let _ = writeln!(
                    s,
                    "- {} seed {}: {}: {}",
                    c.weather, c.seed, a.name, a.figure
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "\nEach cell's own outputs (kpis.md, kpis.csv, flats.csv, ...):\n"
    );
    for c in cells {
        let _ = writeln!(s, "- [{}]({}/kpis.md)", c.dir, c.dir);
    }
    s
}
