//! The hourly history's records and files: one JSON line per clock hour in
//! `<state_dir>/history/rooms-YYYY-MM.jsonl` (UTC months), and the reader that skips and counts
//! what it cannot parse.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Folder of the history under the state directory.
pub const HISTORY_DIR: &str = "history";
/// Prefix of the monthly files.
pub const FILE_PREFIX: &str = "rooms-";
/// Suffix of the monthly files.
pub const FILE_SUFFIX: &str = ".jsonl";

/// One clock hour of the station.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HourRecord {
    /// Start of the hour, unix s (UTC).
    pub hour_unix_s: i64,
    /// Mean outdoor temperature over the hour (valid readings), °C.
    pub outdoor_c: Option<f64>,
    /// Mean t2 supply temperature over the hour (valid readings), °C.
    pub t2_supply_c: Option<f64>,
    /// Station samples taken in the hour (one per clock minute).
    pub samples: u32,
    /// Every room node that had a valid reading in the hour.
    pub rooms: Vec<RoomHour>,
}

/// One room node's hour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomHour {
    /// Room node id.
    pub id: String,
    /// Building.
    pub building: String,
    /// Position of the flat ("top", "middle", ...).
    pub position: String,
    /// Riser, when `[history] risers` names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub riser: Option<String>,
    /// Mean room temperature, °C.
    pub room_c: f64,
    /// Mean household-valve position (feedback, else command), % (None: no valve).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valve_pct: Option<f64>,
    /// Readings averaged.
    pub samples: u32,
}

/// What was read from history files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadHistory {
    /// The hours, sorted by time (a repeated hour keeps its last record).
    pub hours: Vec<HourRecord>,
    /// Lines that could not be parsed (skipped).
    pub garbled_lines: usize,
    /// The first garbled line: file, line number (1-based) and why.
    pub first_garbled: Option<String>,
    /// The files read.
    pub files: Vec<PathBuf>,
}

/// Why history could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// Nothing at the path.
    #[error(
        "no history at {0}: give the state directory, its history/ folder or a rooms-YYYY-MM.jsonl file"
    )]
    Missing(PathBuf),
    /// A directory without history files.
    #[error("no rooms-YYYY-MM.jsonl files in {0}")]
    NoFiles(PathBuf),
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// What.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Whether `name` is a monthly history file name.
#[must_use]
pub fn is_history_file(name: &str) -> bool {
    name.strip_prefix(FILE_PREFIX)
        .and_then(|r| r.strip_suffix(FILE_SUFFIX))
        .is_some_and(|ym| {
            ym.len() == 7
                && ym.as_bytes()[4] == b'-'
                && ym
                    .bytes()
                    .enumerate()
                    .all(|(i, b)| i == 4 || b.is_ascii_digit())
        })
}

/// The history files of `path`: a file itself; a directory's `rooms-*.jsonl`, or its
/// `history/` folder's when it has none (a state directory), in name (time) order.
///
/// # Errors
/// Nothing there, no files, or unreadable.
pub fn history_files(path: &Path) -> Result<Vec<PathBuf>, HistoryError> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.is_dir() {
        return Err(HistoryError::Missing(path.to_path_buf()));
    }
    let list = |dir: &Path| -> Result<Vec<PathBuf>, HistoryError> {
        let rd = std::fs::read_dir(dir).map_err(|source| HistoryError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut files: Vec<PathBuf> = rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(is_history_file)
            })
            .collect();
        files.sort();
        Ok(files)
    };
    let mut files = list(path)?;
    if files.is_empty() {
        let sub = path.join(HISTORY_DIR);
        if sub.is_dir() {
            files = list(&sub)?;
        }
    }
    if files.is_empty() {
        return Err(HistoryError::NoFiles(path.to_path_buf()));
    }
    Ok(files)
}

/// Parse history text: every line that is not a valid hour record is skipped and counted.
pub fn parse_lines(text: &str, file: &Path, out: &mut ReadHistory) {
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<HourRecord>(line) {
            Ok(h) if plausible(&h) => out.hours.push(h),
            Ok(_) => garbled(out, file, i, "values out of range"),
            Err(e) => garbled(out, file, i, &e.to_string()),
        }
    }
}

fn garbled(out: &mut ReadHistory, file: &Path, i: usize, why: &str) {
    out.garbled_lines += 1;
    if out.first_garbled.is_none() {
        out.first_garbled = Some(format!("{}:{}: {why}", file.display(), i + 1));
    }
}

/// A record whose numbers a room and a substation can have.
fn plausible(h: &HourRecord) -> bool {
    let t = |v: Option<f64>, lo: f64, hi: f64| {
        v.is_none_or(|x| x.is_finite() && (lo..=hi).contains(&x))
    };
    t(h.outdoor_c, -60.0, 60.0)
        && t(h.t2_supply_c, -10.0, 150.0)
        && h.rooms.iter().all(|r| {
            t(Some(r.room_c), -20.0, 50.0) && t(r.valve_pct, 0.0, 100.0) && !r.id.is_empty()
        })
}

/// Read every history file of `path` (see [`history_files`]); garbled lines are skipped and
/// counted, never fatal.
///
/// # Errors
/// See [`history_files`]; a file that cannot be read.
pub fn read_history(path: &Path) -> Result<ReadHistory, HistoryError> {
    let files = history_files(path)?;
    let mut out = ReadHistory::default();
    for f in &files {
        let bytes = std::fs::read(f).map_err(|source| HistoryError::Io {
            path: f.clone(),
            source,
        })?;
        let text = String::from_utf8_lossy(&bytes);
        parse_lines(&text, f, &mut out);
    }
    out.hours.sort_by_key(|h| h.hour_unix_s);
    // A repeated hour (a restart within it) keeps its last record.
    out.hours.reverse();
    out.hours.dedup_by_key(|h| h.hour_unix_s);
    out.hours.reverse();
    out.files = files;
    Ok(out)
}

/// (year, month 1..=12) of a unix time (UTC).
#[must_use]
pub fn year_month(unix_s: i64) -> (i64, u32) {
    let (y, m, _) = civil_date(unix_s);
    (y, m)
}

/// (year, month 1..=12, day 1..=31) of a unix time (UTC).
#[must_use]
pub fn civil_date(unix_s: i64) -> (i64, u32, u32) {
    // Days to civil date (H. Hinnant's algorithm, proleptic Gregorian).
    let z = unix_s.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let day = doy - (153 * mp + 2) / 5 + 1;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u32, day as u32)
}

/// File name of the month of `unix_s`: `rooms-YYYY-MM.jsonl`.
#[must_use]
pub fn file_name(unix_s: i64) -> String {
    let (y, m) = year_month(unix_s);
    format!("{FILE_PREFIX}{y:04}-{m:02}{FILE_SUFFIX}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_names() {
        assert_eq!(year_month(0), (1970, 1));
        // 2026-03-01 00:00 UTC and the second before.
        assert_eq!(year_month(1_772_323_200), (2026, 3));
        assert_eq!(year_month(1_772_323_199), (2026, 2));
        assert_eq!(civil_date(1_772_323_199), (2026, 2, 28));
        assert_eq!(file_name(1_772_323_200), "rooms-2026-03.jsonl");
        assert!(is_history_file("rooms-2026-03.jsonl"));
        assert!(!is_history_file("rooms-2026-3.jsonl"));
        assert!(!is_history_file("audit.jsonl"));
    }

    #[test]
    fn garbled_lines_are_skipped_and_counted() {
        let good = r#"{"hour_unix_s":3600,"outdoor_c":-5.0,"t2_supply_c":60.0,"samples":60,"rooms":[{"id":"a","building":"b01","position":"top","room_c":19.0,"samples":6}]}"#;
        let text = format!(
            "{good}\nnot json\n{{\"hour_unix_s\":1}}\n\n{}\n{}",
            good.replace("3600", "7200"),
            good.replace("19.0", "99.0").replace("3600", "10800")
        );
        let mut out = ReadHistory::default();
        parse_lines(&text, Path::new("x.jsonl"), &mut out);
        assert_eq!(out.hours.len(), 2);
        assert_eq!(out.garbled_lines, 3);
        assert!(
            out.first_garbled
                .as_deref()
                .is_some_and(|s| s.starts_with("x.jsonl:2:")),
            "{:?}",
            out.first_garbled
        );
    }
}
