//! The trends: one row per clock minute of the latest snapshot, in a ring buffer allocated
//! once at its full size (`trend_hours` x 60 rows), so memory stays bounded however long
//! heatctl runs.

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

/// One row: clock time and the values (NaN: unknown). f32 keeps a row at 48 bytes; 0.01 of
/// a kelvin or a percent is all the page shows.
#[derive(Debug, Clone, Copy)]
struct Row {
    t_unix_s: f64,
    values: [f32; TRENDS_COLUMNS.len()],
}

impl Row {
    fn of(s: &StationSnapshot) -> Self {
        let e = &s.explanation;
        let v = |x: Option<f64>| x.filter(|v| v.is_finite()).map_or(f32::NAN, |v| v as f32);
        Self {
            t_unix_s: s.clock.clock_unix_s,
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
    /// Clock minute of the newest row.
    last_minute: Option<i64>,
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

    /// Take `s` if it is the first snapshot of a new clock minute; true when a row was added.
    /// A clock that goes back (a restarted simulation) starts the trends anew.
    pub fn offer(&self, s: &StationSnapshot) -> bool {
        let t = s.clock.clock_unix_s;
        if !t.is_finite() {
            return false;
        }
        let minute = (t / 60.0).floor() as i64;
        let mut r = self.lock();
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

    /// The rows at or after `since_s` (clock time), oldest first, as `/api/trends` returns
    /// them.
    #[must_use]
    pub fn columns(&self, since_s: Option<f64>) -> TrendColumns {
        let r = self.lock();
        let (newer, older) = r.rows.split_at(r.head);
        let since = since_s.unwrap_or(f64::NEG_INFINITY);
        TrendColumns {
            rows: older
                .iter()
                .chain(newer)
                .filter(|row| row.t_unix_s >= since)
                .copied()
                .collect(),
        }
    }
}

/// Trend rows serialised by column: `{"t_unix_s": [...], "outdoor_c": [...], ...}`, values
/// rounded to 0.01, unknowns as null.
#[derive(Debug)]
pub struct TrendColumns {
    rows: Vec<Row>,
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
}

struct Column<'a>(&'a [Row], Option<usize>);

impl Serialize for Column<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_seq(self.0.iter().map(|r| match self.1 {
            None => Some(r.t_unix_s.round()),
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
        map.serialize_entry("t_unix_s", &Column(&self.rows, None))?;
        for (i, name) in TRENDS_COLUMNS.iter().enumerate() {
            map.serialize_entry(name, &Column(&self.rows, Some(i)))?;
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

    fn at(t: f64, outdoor: f64) -> StationSnapshot {
        let mut s = StationSnapshot::default();
        s.clock.clock_unix_s = t;
        s.explanation.outdoor_c = Some(outdoor);
        s
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
    fn a_clock_going_back_starts_anew() {
        let tr = Trends::new(1);
        tr.offer(&at(6000.0, 1.0));
        tr.offer(&at(6060.0, 1.0));
        tr.offer(&at(60.0, 1.0));
        assert_eq!(tr.len(), 1);
    }
}
