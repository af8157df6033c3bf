//! The trends: one row per clock minute of the latest snapshot, in a ring buffer allocated
//! once at its full size (`trend_hours` x 60 rows), so memory stays bounded however long
//! heatctl runs.
//!
//! Rows are kept on the monotonic clock (`clock.mono_s` of the snapshot), which never steps,
//! and turned into wall time only when served, with the wall-minus-monotonic offset of the
//! latest snapshot. So a wall clock stepped back never makes the series go back in time, and
//! rows recorded while a gateway's clock was still in 1970 show at their true time once NTP
//! has set it (as far back from now as they were recorded).

use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::control::Signal;
use crate::station::{SnapshotReceiver, StationSnapshot};

/// The value columns of a trends row, in order (each also a key of `/api/trends`).
pub const TRENDS_COLUMNS: [&str; 10] = [
    "outdoor_c",
    "outdoor_damped_c",
    "setpoint_c",
    "t2_supply_c",
    "t2_return_c",
    "t1_return_c",
    "valve1_cmd_pct",
    "rooms_p10_c",
    "rooms_median_c",
    "demand_shift_k",
];

/// One row: monotonic clock time and the values (NaN: unknown). f32 keeps a row at 48 bytes;
/// 0.01 of a kelvin or a percent is all the page shows.
#[derive(Debug, Clone, Copy)]
struct Row {
    mono_s: f64,
    values: [f32; TRENDS_COLUMNS.len()],
}

impl Row {
    fn of(s: &StationSnapshot) -> Self {
        let e = &s.explanation;
        let v = |x: Option<f64>| x.filter(|v| v.is_finite()).map_or(f32::NAN, |v| v as f32);
        Self {
            mono_s: s.clock.mono_s,
            values: [
                v(e.outdoor_c),
                v(e.damped_outdoor_c),
                v(e.setpoint_c),
                v(s.valid_value(Signal::T2Supply)),
                v(s.valid_value(Signal::T2Return)),
                v(s.valid_value(Signal::T1Return)),
                v(Some(s.commands.valve1_cmd_pct)),
                v(s.rooms.stats.percentile_c),
                v(s.rooms.stats.median_c),
                v(Some(e.demand_shift_k)),
            ],
        }
    }
}

/// The ring buffer of trend rows.
#[derive(Debug)]
pub struct Trends {
    inner: Mutex<Ring>,
}

#[derive(Debug)]
struct Ring {
    rows: Vec<Row>,
    capacity: usize,
    /// Index of the oldest row once full.
    head: usize,
    /// Monotonic clock minute of the newest row.
    last_minute: Option<i64>,
    /// Wall minus monotonic time of the latest snapshot, s: how rows are dated when served.
    wall_offset_s: f64,
}

impl Trends {
    /// Room for `hours` of one row a minute, allocated now.
    #[must_use]
    pub fn new(hours: u32) -> Self {
        let capacity = (hours.max(1) as usize) * 60;
        Self {
            inner: Mutex::new(Ring {
                rows: Vec::with_capacity(capacity),
                capacity,
                head: 0,
                last_minute: None,
                wall_offset_s: 0.0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Rows kept now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().rows.len()
    }

    /// No rows yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Most rows kept.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.lock().capacity
    }

    /// Take `s` if it is the first snapshot of a new monotonic clock minute; true when a row
    /// was added. Every snapshot sets the wall-minus-monotonic offset the rows are served with.
    /// A monotonic clock that goes back (a runtime restarted in the same process, with a new
    /// clock) starts the trends anew.
    pub fn offer(&self, s: &StationSnapshot) -> bool {
        let (mono_s, wall_s) = (s.clock.mono_s, s.clock.clock_unix_s);
        if !(mono_s.is_finite() && wall_s.is_finite()) {
            return false;
        }
        let minute = (mono_s / 60.0).floor() as i64;
        let mut r = self.lock();
        r.wall_offset_s = wall_s - mono_s;
        match r.last_minute {
            Some(m) if m == minute => return false,
            Some(m) if minute < m => {
                r.rows.clear();
                r.head = 0;
            }
            _ => {}
        }
        r.last_minute = Some(minute);
        let row = Row::of(s);
        if r.rows.len() < r.capacity {
            r.rows.push(row);
        } else {
            let h = r.head;
            r.rows[h] = row;
            r.head = (h + 1) % r.capacity;
        }
        true
    }

    /// The rows dated at or after `since_s` (wall time, unix seconds, as served), oldest
    /// first, as `/api/trends` returns them: each dated with the wall-minus-monotonic offset of
    /// the latest snapshot.
    #[must_use]
    pub fn columns(&self, since_s: Option<f64>) -> TrendColumns {
        let r = self.lock();
        let (newer, older) = r.rows.split_at(r.head);
        let since = since_s.unwrap_or(f64::NEG_INFINITY);
        let offset_s = r.wall_offset_s;
        TrendColumns {
            rows: older
                .iter()
                .chain(newer)
                .filter(|row| served_unix_s(row, offset_s) >= since)
                .copied()
                .collect(),
            offset_s,
        }
    }
}

/// A row's time as served: wall time, unix seconds, whole seconds.
fn served_unix_s(row: &Row, offset_s: f64) -> f64 {
    (row.mono_s + offset_s).round()
}

/// Trend rows serialised by column: `{"t_unix_s": [...], "outdoor_c": [...], ...}`, values
/// rounded to 0.01, unknowns as null.
#[derive(Debug)]
pub struct TrendColumns {
    rows: Vec<Row>,
    /// Wall minus monotonic time the rows are dated with, s.
    offset_s: f64,
}

impl TrendColumns {
    /// Rows in it.
    #[must_use]
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// No rows.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows' times as served (`t_unix_s`), unix seconds.
    #[must_use]
    pub fn times_unix_s(&self) -> Vec<f64> {
        self.rows
            .iter()
            .map(|r| served_unix_s(r, self.offset_s))
            .collect()
    }
}

struct Column<'a>(&'a [Row], Option<usize>, f64);

impl Serialize for Column<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_seq(self.0.iter().map(|r| match self.1 {
            None => Some(served_unix_s(r, self.2)),
            Some(i) => {
                let v = f64::from(r.values[i]);
                v.is_finite().then(|| (v * 100.0).round() / 100.0)
            }
        }))
    }
}

impl Serialize for TrendColumns {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut map = ser.serialize_map(Some(TRENDS_COLUMNS.len() + 1))?;
        map.serialize_entry("t_unix_s", &Column(&self.rows, None, self.offset_s))?;
        for (i, name) in TRENDS_COLUMNS.iter().enumerate() {
            map.serialize_entry(name, &Column(&self.rows, Some(i), self.offset_s))?;
        }
        map.end()
    }
}

/// The sampling task: every new snapshot is offered to the trends (a row is kept per clock
/// minute). Ends when the snapshots' sender is gone.
pub(super) async fn sample(mut snapshots: SnapshotReceiver, trends: Arc<Trends>) {
    loop {
        let latest = snapshots.borrow_and_update().clone();
        if let Some(s) = latest {
            trends.offer(&s);
        }
        if snapshots.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot at monotonic time `mono_s`, wall time `wall_s`.
    fn at_clock(mono_s: f64, wall_s: f64, outdoor: f64) -> StationSnapshot {
        let mut s = StationSnapshot::default();
        s.clock.mono_s = mono_s;
        s.clock.clock_unix_s = wall_s;
        s.explanation.outdoor_c = Some(outdoor);
        s
    }

    /// A snapshot on a clock whose wall time is its monotonic time.
    fn at(t: f64, outdoor: f64) -> StationSnapshot {
        at_clock(t, t, outdoor)
    }

    #[test]
    fn one_row_a_minute_bounded_oldest_dropped() {
        let tr = Trends::new(1);
        assert!(tr.offer(&at(0.0, 1.0)));
        assert!(!tr.offer(&at(30.0, 2.0)), "same minute");
        for m in 1..150 {
            tr.offer(&at(f64::from(m) * 60.0 + 5.0, f64::from(m)));
        }
        assert_eq!(tr.len(), 60);
        assert_eq!(tr.capacity(), 60);
        let v = serde_json::to_value(tr.columns(None)).expect("json");
        let t = v["t_unix_s"].as_array().expect("array");
        assert_eq!(t.len(), 60);
        assert_eq!(t[0], serde_json::json!(90.0 * 60.0 + 5.0));
        assert_eq!(t[59], serde_json::json!(149.0 * 60.0 + 5.0));
        assert_eq!(v["outdoor_c"][59], serde_json::json!(149.0));
        assert!(v["setpoint_c"][0].is_null());
        let since = tr.columns(Some(140.0 * 60.0));
        assert_eq!(since.len(), 10);
    }

    #[test]
    fn a_monotonic_clock_going_back_starts_anew() {
        let tr = Trends::new(1);
        tr.offer(&at(6000.0, 1.0));
        tr.offer(&at(6060.0, 1.0));
        tr.offer(&at(60.0, 1.0));
        assert_eq!(tr.len(), 1);
    }

    /// 2026-11-30 08:00 UTC.
    const TODAY_S: f64 = 1_795_939_200.0;

    fn strictly_increasing(t: &[f64]) -> bool {
        t.windows(2).all(|w| w[0] < w[1])
    }

    #[test]
    fn a_stepped_wall_clock_keeps_the_series_in_order_and_the_rows_in_place() {
        let tr = Trends::new(2);
        // Boots in 1970 (monotonic 100 s: 1970-01-01 00:00:12), one snapshot a second.
        let mono0 = 100.0;
        let mut wall_offset = 12.0 - mono0;
        let mut mono = mono0;
        let mut run = |secs: u32, wall_offset: f64| {
            for _ in 0..secs {
                tr.offer(&at_clock(mono, mono + wall_offset, mono / 60.0));
                mono += 1.0;
            }
            mono - 1.0
        };
        let last = run(30 * 60, wall_offset);
        assert_eq!(tr.len(), 31);
        let t = tr.columns(None).times_unix_s();
        assert!(t[0] < 120.0, "{t:?}");
        // NTP sets the clock to today: the rows recorded in 1970 move to today, each as far
        // back from now as it was recorded.
        wall_offset = TODAY_S - last;
        let last = run(10 * 60, wall_offset);
        let now_s = last + wall_offset;
        let cols = tr.columns(None);
        let t = cols.times_unix_s();
        assert_eq!(t.len(), 41);
        assert!(strictly_increasing(&t), "{t:?}");
        let rows = tr.lock().rows.clone();
        for (row, &t) in rows.iter().zip(&t) {
            assert_eq!(t, (now_s - (last - row.mono_s)).round());
        }
        assert!(
            t[0] > TODAY_S - 31.0 * 60.0 && t[0] < TODAY_S - 29.0 * 60.0,
            "{}",
            t[0]
        );
        // An operator moves it back an hour: everything shifts back with it, in order.
        wall_offset -= 3600.0;
        let last = run(10 * 60, wall_offset);
        let now_s = last + wall_offset;
        let t = tr.columns(None).times_unix_s();
        assert_eq!(t.len(), 51);
        assert!(strictly_increasing(&t), "{t:?}");
        let rows = tr.lock().rows.clone();
        for (row, &t) in rows.iter().zip(&t) {
            assert_eq!(t, (now_s - (last - row.mono_s)).round());
        }
        assert!(t[50] <= now_s && now_s - t[50] < 60.0);
        // `since_s` is on the served times: the last ten minutes are the last ten rows.
        let since = tr.columns(Some(now_s - 600.0 + 1.0)).times_unix_s();
        assert_eq!(since, t[41..].to_vec());
        let v = serde_json::to_value(tr.columns(Some(t[49]))).expect("json");
        assert_eq!(v["t_unix_s"], serde_json::json!([t[49], t[50]]));
        assert_eq!(v["outdoor_c"].as_array().map(Vec::len), Some(2));
    }
}
