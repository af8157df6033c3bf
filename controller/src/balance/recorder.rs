//! The recorder: a task beside the control cycle that samples the station snapshot once a clock
//! minute, averages each clock hour per room node, and appends the finished hour to
//! `<state_dir>/history/rooms-YYYY-MM.jsonl`, deleting months beyond `[history] months_kept`.
//!
//! It reads the snapshots from the watch channel, as the page's trend sampler does, so it can
//! never delay the cycle; the file is written on a blocking thread. A full or read-only disk
//! costs neither control nor, for a while, history: a finished hour that cannot be written is
//! kept in memory (at most [`MAX_PENDING_HOURS`], the oldest dropped first) and written again
//! at each new clock minute, at most once a real second, until the disk takes it. Meanwhile
//! the failure is reported to [`crate::state_dir`] (alarm 702 naming the history file, cleared
//! by the next write that works; logged rate-limited). Lines already written are never
//! rewritten; a line cut short by a full disk is ended before the next one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::record::{self, HourRecord, RoomHour};
use crate::config::{Config, History};
use crate::control::Signal;
use crate::station::{SnapshotReceiver, StationSnapshot};

/// Room node states whose reading is recorded: the valid ones (an outlier by the demand
/// correction's test may be a genuinely cold flat, which is what balancing is about).
const RECORDED_STATES: [&str; 2] = ["used", "outlier"];

/// A running mean of finite values (the hour's aggregates; the season's technician uses it too).
#[derive(Debug, Default, Clone, Copy)]
pub struct Mean {
    sum: f64,
    n: u32,
}

impl Mean {
    /// Add a value; None and non-finite values are skipped.
    pub fn add(&mut self, v: Option<f64>) {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            self.sum += v;
            self.n += 1;
        }
    }
    /// The mean (None before the first value).
    #[must_use]
    pub fn get(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / f64::from(self.n))
    }
    /// How many values were added.
    #[must_use]
    pub fn count(&self) -> u32 {
        self.n
    }
}

#[derive(Debug)]
struct RoomAcc {
    building: String,
    position: String,
    room: Mean,
    valve: Mean,
}

/// One clock hour being averaged.
#[derive(Debug)]
pub struct HourAccumulator {
    hour_unix_s: Option<i64>,
    last_minute: Option<i64>,
    samples: u32,
    outdoor: Mean,
    supply: Mean,
    rooms: BTreeMap<String, RoomAcc>,
}

impl Default for HourAccumulator {
    fn default() -> Self {
        Self::new()
    }
}

impl HourAccumulator {
    /// Nothing yet.
    #[must_use]
    pub fn new() -> Self {
        Self {
            hour_unix_s: None,
            last_minute: None,
            samples: 0,
            outdoor: Mean::default(),
            supply: Mean::default(),
            rooms: BTreeMap::new(),
        }
    }

    /// Take `s` if it is the first snapshot of a new clock minute. When it starts a new hour,
    /// the finished hour is returned (riser names from `history`). A clock that goes back
    /// starts anew (the unfinished hour is dropped).
    pub fn offer(&mut self, s: &StationSnapshot, history: &History) -> Option<HourRecord> {
        let t = s.clock.clock_unix_s;
        if !t.is_finite() {
            return None;
        }
        let minute = (t / 60.0).floor() as i64;
        let hour = minute.div_euclid(60) * 3600;
        match self.last_minute {
            Some(m) if m == minute => return None,
            Some(m) if minute < m => *self = Self::new(),
            _ => {}
        }
        self.last_minute = Some(minute);
        let finished = match self.hour_unix_s {
            Some(h) if h != hour => {
                let done = self.finish(history);
                *self = Self::new();
                self.last_minute = Some(minute);
                done
            }
            _ => None,
        };
        self.hour_unix_s = Some(hour);
        self.add(s);
        finished
    }

    fn add(&mut self, s: &StationSnapshot) {
        self.samples += 1;
        self.outdoor.add(s.valid_value(Signal::TOut));
        self.supply.add(s.valid_value(Signal::T2Supply));
        for n in &s.rooms.nodes {
            if !RECORDED_STATES.contains(&n.state) {
                continue;
            }
            let Some(v) = n.value_c.filter(|v| v.is_finite()) else {
                continue;
            };
            let r = self.rooms.entry(n.id.clone()).or_insert_with(|| RoomAcc {
                building: n.building.clone(),
                position: n.position.to_owned(),
                room: Mean::default(),
                valve: Mean::default(),
            });
            r.room.add(Some(v));
            r.valve.add(n.valve_pos_pct.or(n.valve_cmd_pct));
        }
    }

    /// The hour so far as a record (None before the first sample).
    #[must_use]
    pub fn finish(&self, history: &History) -> Option<HourRecord> {
        let hour = self.hour_unix_s?;
        Some(HourRecord {
            hour_unix_s: hour,
            outdoor_c: self.outdoor.get().map(round2),
            t2_supply_c: self.supply.get().map(round2),
            samples: self.samples,
            rooms: self
                .rooms
                .iter()
                .filter_map(|(id, r)| {
                    Some(RoomHour {
                        id: id.clone(),
                        building: r.building.clone(),
                        position: r.position.clone(),
                        riser: history.riser_of(id).map(str::to_owned),
                        room_c: round2(r.room.get()?),
                        valve_pct: r.valve.get().map(round2),
                        samples: r.room.n,
                    })
                })
                .collect(),
        })
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Append `hour` to its month's file in `dir` (created if needed), then delete month files
/// older than `months_kept` months before the hour's month.
///
/// # Errors
/// The directory or file cannot be written.
pub fn append_hour(dir: &Path, hour: &HourRecord, months_kept: u32) -> std::io::Result<()> {
    use std::io::Write as _;
    std::fs::create_dir_all(dir)?;
    let path = dir.join(record::file_name(hour.hour_unix_s));
    let mut line = serde_json::to_string(hour).map_err(std::io::Error::other)?;
    line.push('\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(&path)?;
    // A line cut short by a full disk (or a file-size limit) is ended first, so only that
    // hour is lost, not the next one glued to it.
    let len = f.metadata()?.len();
    let mut last = [b'\n'];
    if len > 0 {
        use std::os::unix::fs::FileExt as _;
        f.read_exact_at(&mut last, len - 1)?;
    }
    if last[0] != b'\n' {
        line.insert(0, '\n');
    }
    f.write_all(line.as_bytes())?;
    prune(dir, hour.hour_unix_s, months_kept)
}

/// Delete the month files of `dir` older than `months_kept` months counted back from the
/// month of `now_unix_s` (that month included).
///
/// # Errors
/// The directory cannot be listed or a file deleted.
pub fn prune(dir: &Path, now_unix_s: i64, months_kept: u32) -> std::io::Result<()> {
    let (y, m) = record::year_month(now_unix_s);
    let now_index = y * 12 + i64::from(m) - 1;
    let oldest_kept = now_index - i64::from(months_kept.max(1)) + 1;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !record::is_history_file(name) {
            continue;
        }
        let ym = &name[record::FILE_PREFIX.len()..record::FILE_PREFIX.len() + 7];
        let (Ok(fy), Ok(fm)) = (ym[..4].parse::<i64>(), ym[5..].parse::<i64>()) else {
            continue;
        };
        if fy * 12 + fm - 1 < oldest_kept {
            std::fs::remove_file(e.path())?;
        }
    }
    Ok(())
}

/// The running recorder.
#[derive(Debug)]
pub struct RecorderHandle {
    task: JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl RecorderHandle {
    /// Write the unfinished hour and stop.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// The history folder of a state directory.
#[must_use]
pub fn history_dir(state_dir: &Path) -> PathBuf {
    state_dir.join(record::HISTORY_DIR)
}

/// Start recording into `<state_dir>/history` when there is a state directory and
/// `[history] enabled`.
#[must_use]
pub fn start(
    state_dir: Option<&Path>,
    snapshots: SnapshotReceiver,
    configs: watch::Receiver<Arc<Config>>,
) -> Option<RecorderHandle> {
    let dir = history_dir(state_dir?);
    if !configs.borrow().history.enabled {
        return None;
    }
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(record(dir, snapshots, configs, stop_rx));
    Some(RecorderHandle { task, stop })
}

/// Finished hours kept in memory while the disk refuses them (three days).
pub const MAX_PENDING_HOURS: usize = 72;
/// The recorder's name in alarm 702 and the log.
const WRITER: &str = "room history";

/// Hours finished and not yet written, oldest first.
#[derive(Debug, Default)]
struct Pending {
    hours: std::collections::VecDeque<HourRecord>,
    /// Hours dropped because the disk refused them for longer than the buffer lasts.
    dropped: u64,
    /// The clock minute and real time of the last attempt that failed (None after one that
    /// worked: the next hour is written at once).
    tried: Option<(i64, std::time::Instant)>,
}

impl Pending {
    fn push(&mut self, hour: HourRecord) {
        if self.hours.len() == MAX_PENDING_HOURS {
            self.hours.pop_front();
            self.dropped += 1;
            tracing::warn!(
                dropped = self.dropped,
                "room history: the disk has refused it for {MAX_PENDING_HOURS} hours; the oldest hour is lost"
            );
        }
        self.hours.push_back(hour);
    }

    /// Whether to try now, at clock minute `minute`: at once after a write that worked; after
    /// one that failed, once a clock minute and at most once a real second.
    fn due(&self, minute: i64) -> bool {
        !self.hours.is_empty()
            && self.tried.is_none_or(|(m, t)| {
                m != minute && t.elapsed() >= std::time::Duration::from_secs(1)
            })
    }
}

/// Write the pending hours in order (off the async runtime), stopping at the first the disk
/// refuses; the outcome goes to [`crate::state_dir`] under the history folder.
async fn write_pending(dir: &Path, pending: &mut Pending, months_kept: u32, minute: i64) {
    let hours: Vec<HourRecord> = pending.hours.iter().cloned().collect();
    let d = dir.to_path_buf();
    let result = tokio::task::spawn_blocking(move || {
        let mut written = 0;
        for hour in &hours {
            if let Err(e) = append_hour(&d, hour, months_kept) {
                let file = record::file_name(hour.hour_unix_s);
                return (written, Err(format!("{file}: {e}")));
            }
            written += 1;
        }
        (written, Ok(()))
    })
    .await;
    let (written, outcome) = result.unwrap_or_else(|e| (0, Err(e.to_string())));
    pending.hours.drain(..written.min(pending.hours.len()));
    pending.tried = outcome
        .is_err()
        .then(|| (minute, std::time::Instant::now()));
    crate::state_dir::report(WRITER, dir, &outcome);
}

async fn record(
    dir: PathBuf,
    mut snapshots: SnapshotReceiver,
    configs: watch::Receiver<Arc<Config>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut acc = HourAccumulator::new();
    let mut pending = Pending::default();
    let mut minute = 0;
    loop {
        let latest = snapshots.borrow_and_update().clone();
        if let Some(s) = latest {
            let cfg = Arc::clone(&configs.borrow());
            if s.clock.clock_unix_s.is_finite() {
                minute = (s.clock.clock_unix_s / 60.0).floor() as i64;
            }
            if let Some(hour) = acc.offer(&s, &cfg.history) {
                pending.push(hour);
            }
            if pending.due(minute) {
                write_pending(&dir, &mut pending, cfg.history.months_kept, minute).await;
            }
        }
        tokio::select! {
            changed = snapshots.changed() => if changed.is_err() { break },
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    // The unfinished hour is kept too: a restart within the hour gives a second record of it,
    // and the reader keeps the last.
    let cfg = Arc::clone(&configs.borrow());
    if let Some(hour) = acc.finish(&cfg.history) {
        pending.push(hour);
    }
    if !pending.hours.is_empty() {
        pending.tried = None;
        write_pending(&dir, &mut pending, cfg.history.months_kept, minute).await;
        if !pending.hours.is_empty() {
            tracing::warn!(
                hours = pending.hours.len(),
                "room history: hours the disk refused are lost at stop"
            );
        }
    }
    // No longer written: a fault it had is not the state directory's any more.
    crate::state_dir::forget(&dir);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state_dir::scratch::Scratch;
    use crate::station::RoomNodeRow;

    fn snap(
        t: f64,
        outdoor: f64,
        rooms: &[(&str, Option<f64>, &'static str, Option<f64>)],
    ) -> StationSnapshot {
        let mut s = StationSnapshot::default();
        s.clock.clock_unix_s = t;
        s.measurements = Signal::ALL
            .into_iter()
            .map(|signal| crate::station::Measurement {
                signal,
                value: (signal == Signal::TOut).then_some(outdoor),
                valid: signal == Signal::TOut,
                age_s: Some(1.0),
                rejected: None,
            })
            .collect();
        s.rooms.nodes = rooms
            .iter()
            .map(|(id, v, state, valve)| RoomNodeRow {
                id: (*id).to_owned(),
                building: "b01".into(),
                position: "middle",
                value_c: *v,
                age_s: Some(10.0),
                state,
                valve_cmd_pct: None,
                valve_pos_pct: *valve,
            })
            .collect();
        s
    }

    #[test]
    fn hourly_means_one_sample_a_minute_and_only_valid_rooms() {
        let mut h = History::default();
        h.risers.push(crate::config::Riser {
            name: "east".into(),
            nodes: vec!["a".into()],
            mains_m: None,
        });
        let mut acc = HourAccumulator::new();
        let base = 3600.0 * 100.0;
        // 60 minutes, two snapshots a minute (the second ignored); node b invalid half the time.
        for m in 0..60 {
            for extra in [0.0, 30.0] {
                let t = base + f64::from(m) * 60.0 + extra;
                let b_state = if m % 2 == 0 { "used" } else { "stale" };
                let out = acc.offer(
                    &snap(
                        t,
                        f64::from(m),
                        &[
                            ("a", Some(20.0 + extra), "used", Some(40.0)),
                            ("b", Some(18.0), b_state, None),
                            ("c", Some(25.0), "vacant", None),
                        ],
                    ),
                    &h,
                );
                assert!(out.is_none());
            }
        }
        let done = acc
            .offer(&snap(base + 3600.0, 0.0, &[]), &h)
            .expect("the hour is finished");
        assert_eq!(done.hour_unix_s, (base as i64));
        assert_eq!(done.samples, 60);
        assert_eq!(done.outdoor_c, Some(29.5));
        assert_eq!(done.t2_supply_c, None);
        assert_eq!(done.rooms.len(), 2, "{:?}", done.rooms);
        let a = &done.rooms[0];
        assert_eq!((a.id.as_str(), a.room_c, a.samples), ("a", 20.0, 60));
        assert_eq!(a.valve_pct, Some(40.0));
        assert_eq!(a.riser.as_deref(), Some("east"));
        let b = &done.rooms[1];
        assert_eq!(
            (b.id.as_str(), b.samples, b.riser.as_deref()),
            ("b", 30, None)
        );
    }

    #[test]
    fn files_rotate_by_month_and_old_months_are_deleted() {
        let scratch = Scratch::new(&format!("heatctl-history-{}", std::process::id()));
        let dir = scratch.to_path_buf();
        let hour = |t: i64| HourRecord {
            hour_unix_s: t,
            outdoor_c: Some(-5.0),
            t2_supply_c: Some(55.0),
            samples: 60,
            rooms: vec![],
        };
        // 2026-01-15, 2026-02-15, 2026-03-15 (UTC).
        let jan = 1_768_435_200;
        let feb = jan + 31 * 86_400;
        let mar = feb + 28 * 86_400;
        append_hour(&dir, &hour(jan), 2).expect("write");
        append_hour(&dir, &hour(jan + 3600), 2).expect("write");
        append_hour(&dir, &hour(feb), 2).expect("write");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["rooms-2026-01.jsonl", "rooms-2026-02.jsonl"]);
        append_hour(&dir, &hour(mar), 2).expect("write");
        let read = record::read_history(&dir).expect("read");
        assert_eq!(read.hours.len(), 2, "January is gone");
        assert_eq!(read.files.len(), 2);
    }

    #[test]
    fn a_line_cut_short_by_a_full_disk_costs_only_its_own_hour() {
        let scratch = Scratch::new(&format!("heatctl-history-cut-{}", std::process::id()));
        let dir = scratch.to_path_buf();
        let hour = |t: i64| HourRecord {
            hour_unix_s: t,
            outdoor_c: Some(-5.0),
            t2_supply_c: Some(55.0),
            samples: 60,
            rooms: vec![],
        };
        let jan = 1_768_435_200;
        append_hour(&dir, &hour(jan), 2).expect("write");
        // The disk filled in the middle of the next hour's line.
        let path = dir.join(record::file_name(jan));
        let mut text = std::fs::read_to_string(&path).expect("read");
        text.push_str("{\"hour_unix_s\":17684");
        std::fs::write(&path, text).expect("cut line");
        append_hour(&dir, &hour(jan + 7200), 2).expect("write after the disk has room again");
        let read = record::read_history(&dir).expect("read");
        let hours: Vec<i64> = read.hours.iter().map(|h| h.hour_unix_s).collect();
        assert_eq!(hours, [jan, jan + 7200], "the hour after the cut is kept");
        assert_eq!(read.garbled_lines, 1);
    }
}
