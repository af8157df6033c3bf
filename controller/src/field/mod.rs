//! Field I/O: Modbus masters for the substation's devices.
//!
//! One tokio task per link ([`link`]) owns that link's connection (Modbus allows one request in
//! flight per TCP connection or RS-485 bus). It polls the merged read blocks of each device
//! ([`plan`]) when their points are due, writes commands on change and as a periodic refresh
//! with read-back verification, and keeps per-device statistics. Every request runs under a
//! timeout; after a timeout, a protocol mismatch or an I/O error the connection is dropped and
//! re-opened with exponential back-off (a late reply would otherwise poison the connection).
//! Readings land in [`FieldShared`], from which the runtime builds the process image.
//!
//! An mqtt link ([`mqtt`]) is not polled: its task subscribes to the topics its room nodes and
//! values are published on and stores each reading, with its measurement time, in the same
//! [`FieldShared`].

pub mod link;
pub mod mqtt;
pub mod plan;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::config::{DecodeError, PointMap};
use crate::control::Sample;
use crate::runtime::clock::Clock;
pub use plan::{DevicePlan, LinkPlan, ReadBlock, plan_links};

/// A device counts as lost after this many failed requests in a row.
pub const COMM_LOST_AFTER_FAILURES: u32 = 3;

/// The last reading of one point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointReading {
    /// Engineering value; `None` when the device answered but the value is unusable.
    pub value: Option<f64>,
    /// Why the value is unusable (sentinel, out of range), or `None`.
    pub error: Option<DecodeError>,
    /// When it was read, monotonic clock seconds ([`crate::runtime::Clock::mono_s`]): a
    /// stepped wall clock ages no reading.
    pub read_at_s: f64,
    /// The point's max age from its map, seconds.
    pub max_age_s: f64,
}

/// Statistics of one device.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct DeviceStats {
    /// Requests sent (reads and writes).
    pub requests: u64,
    /// Requests that failed at transport or protocol level (timeouts included).
    pub errors: u64,
    /// Requests that timed out.
    pub timeouts: u64,
    /// Modbus exceptions the device answered with.
    pub exceptions: u64,
    /// Round trip of the last successful request, milliseconds.
    pub last_latency_ms: Option<f64>,
    /// Failed requests (errors, timeouts, exceptions) since the last good answer.
    pub consecutive_failures: u32,
    /// A write to this device failed or its read-back disagreed, and no write has succeeded since.
    pub write_failed: bool,
    /// The device has answered at least once (a value or a Modbus exception).
    pub answered: bool,
    /// When it last answered a request successfully, monotonic clock seconds here; the
    /// station snapshot dates it on wall time.
    pub last_ok_s: Option<f64>,
}

impl DeviceStats {
    /// Whether the device counts as not answering.
    #[must_use]
    pub fn comm_lost(&self) -> bool {
        self.consecutive_failures >= COMM_LOST_AFTER_FAILURES
    }

    /// Whether the device is connected: it has answered at least once and is not lost.
    #[must_use]
    pub fn connected(&self) -> bool {
        self.answered && !self.comm_lost()
    }
}

/// A command value to keep written to a point.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WriteSlot {
    /// Raw registers (or 0/1 for a coil) wanted.
    pub(crate) raw: Vec<u16>,
    /// Engineering value wanted.
    pub(crate) value: f64,
    /// Raw registers last written and verified by read-back.
    pub(crate) verified: Option<Vec<u16>>,
    /// Monotonic clock time of the last verified write.
    pub(crate) verified_at_s: f64,
    /// The last attempt failed.
    pub(crate) failed: bool,
    /// Real time of the last attempt.
    pub(crate) attempted_at: Option<tokio::time::Instant>,
}

/// Readings, statistics and pending writes, shared by the link tasks and the runtime.
#[derive(Debug, Default)]
pub struct FieldShared {
    state: Mutex<FieldState>,
}

#[derive(Debug, Default)]
pub(crate) struct FieldState {
    /// Readings by device, then point.
    pub(crate) readings: HashMap<String, HashMap<String, PointReading>>,
    pub(crate) stats: BTreeMap<String, DeviceStats>,
    pub(crate) writes: HashMap<(String, String), WriteSlot>,
    /// Clock seconds not counted in a reading's age (see [`FieldShared::set_age_allowance_s`]).
    pub(crate) age_allowance_s: f64,
}

impl FieldShared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, FieldState> {
        // A panicking holder cannot leave the maps inconsistent in a way that matters here.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The last reading of `device.point`.
    #[must_use]
    pub fn reading(&self, device: &str, point: &str) -> Option<PointReading> {
        self.lock()
            .readings
            .get(device)
            .and_then(|d| d.get(point))
            .copied()
    }

    /// Statistics of every device, by name.
    #[must_use]
    pub fn stats(&self) -> BTreeMap<String, DeviceStats> {
        self.lock().stats.clone()
    }

    /// Set how many clock seconds a reading may exceed its max age before it counts as stale:
    /// the scheduling allowance of an accelerated clock. At N times real speed a 10 ms hiccup
    /// of the host ages every reading by N × 10 ms of clock time, which would make a 10 s max
    /// age flicker at 1,000×; the runtime sets N × [`crate::runtime::REAL_AGE_ALLOWANCE`].
    /// The age itself is reported as it is.
    pub fn set_age_allowance_s(&self, allowance_s: f64) {
        self.lock().age_allowance_s = if allowance_s.is_finite() {
            allowance_s.max(0.0)
        } else {
            0.0
        };
    }

    /// The reading of `device.point` as the controller sees it at monotonic time `now_s`: age
    /// from the read time, invalid when the value was unusable, older than the point's max age (plus the
    /// age allowance), or the device is not answering. `None` when it was never read.
    #[must_use]
    pub fn sample(&self, device: &str, point: &str, now_s: f64) -> Option<Sample> {
        let st = self.lock();
        let r = st.readings.get(device)?.get(point)?;
        let age_s = (now_s - r.read_at_s).max(0.0);
        let lost = st.stats.get(device).is_some_and(DeviceStats::comm_lost);
        Some(match r.value {
            Some(value) => Sample {
                value,
                age_s,
                valid: !lost && age_s <= r.max_age_s + st.age_allowance_s,
            },
            None => Sample {
                age_s,
                ..Sample::invalid()
            },
        })
    }

    /// Whether any device is not answering, and whether any write failed.
    #[must_use]
    pub fn alarm_conditions(&self) -> (bool, bool) {
        let st = self.lock();
        (
            st.stats.values().any(DeviceStats::comm_lost),
            st.stats.values().any(|s| s.write_failed) || st.writes.values().any(|w| w.failed),
        )
    }

    /// Whether every pending write has been verified (or has failed since it was requested).
    #[must_use]
    pub fn writes_settled(&self) -> bool {
        self.lock()
            .writes
            .values()
            .all(|w| w.verified.as_ref() == Some(&w.raw) || w.failed)
    }
}

/// Errors of [`FieldHandle::set_write`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WriteError {
    /// No such device in the plan.
    #[error("unknown device {0}")]
    UnknownDevice(String),
    /// No such point in the device's map, or it is not writable.
    #[error("point {0} is not a writable point of its device")]
    NotWritable(String),
    /// The value cannot be encoded (outside the point's valid range, not finite).
    #[error("value {1} is outside what point {0} accepts")]
    OutOfRange(String, f64),
}

/// The running field layer: one task per link.
#[derive(Debug)]
pub struct FieldHandle {
    shared: Arc<FieldShared>,
    plans: Vec<LinkPlan>,
    notify: Vec<Arc<Notify>>,
    tasks: Vec<JoinHandle<()>>,
}

impl FieldHandle {
    /// Start one task per link. `shared` carries readings over from a previous field layer
    /// (reload), or is fresh.
    #[must_use]
    pub fn start(plans: Vec<LinkPlan>, clock: Arc<dyn Clock>, shared: Arc<FieldShared>) -> Self {
        let notify: Vec<Arc<Notify>> = plans.iter().map(|_| Arc::new(Notify::new())).collect();
        {
            let mut st = shared.lock();
            for d in plans.iter().flat_map(|p| &p.devices) {
                st.stats.entry(d.name.clone()).or_default();
            }
            let names: Vec<String> = plans
                .iter()
                .flat_map(|p| p.devices.iter().map(|d| d.name.clone()))
                .collect();
            st.stats.retain(|k, _| names.contains(k));
            st.writes.retain(|(d, _), _| names.contains(d));
        }
        let tasks = plans
            .iter()
            .zip(&notify)
            .map(|(plan, n)| {
                if plan.link.kind == crate::config::LinkKind::Mqtt {
                    tokio::spawn(mqtt::run_mqtt_link(
                        plan.clone(),
                        Arc::clone(&shared),
                        Arc::clone(&clock),
                    ))
                } else {
                    tokio::spawn(link::run_link(
                        plan.clone(),
                        Arc::clone(&shared),
                        Arc::clone(n),
                        Arc::clone(&clock),
                    ))
                }
            })
            .collect();
        Self {
            shared,
            plans,
            notify,
            tasks,
        }
    }

    /// The shared readings and statistics.
    #[must_use]
    pub fn shared(&self) -> &Arc<FieldShared> {
        &self.shared
    }

    /// The link plans in force.
    #[must_use]
    pub fn plans(&self) -> &[LinkPlan] {
        &self.plans
    }

    fn find(&self, device: &str) -> Option<(usize, &DevicePlan)> {
        self.plans
            .iter()
            .enumerate()
            .find_map(|(i, p)| p.devices.iter().find(|d| d.name == device).map(|d| (i, d)))
    }

    /// The map of a point of a device.
    #[must_use]
    pub fn point_map(&self, device: &str, point: &str) -> Option<&PointMap> {
        self.find(device).and_then(|(_, d)| d.point(point))
    }

    /// Keep `value` written to `device.point`: written at once when it changes (in raw
    /// registers), refreshed periodically, verified by reading back.
    ///
    /// # Errors
    /// Unknown device, a point that is not writable, or a value the point cannot take.
    pub fn set_write(&self, device: &str, point: &str, value: f64) -> Result<(), WriteError> {
        let (link, dev) = self
            .find(device)
            .ok_or_else(|| WriteError::UnknownDevice(device.to_owned()))?;
        let name = format!("{device}.{point}");
        let map = dev
            .point(point)
            .filter(|p| p.writable)
            .ok_or_else(|| WriteError::NotWritable(name.clone()))?;
        let raw = map
            .encode(value)
            .ok_or(WriteError::OutOfRange(name, value))?;
        let changed = {
            let mut st = self.shared.lock();
            let key = (device.to_owned(), point.to_owned());
            match st.writes.get_mut(&key) {
                Some(slot) if slot.raw == raw => {
                    slot.value = value;
                    false
                }
                Some(slot) => {
                    slot.raw = raw;
                    slot.value = value;
                    slot.failed = false;
                    slot.attempted_at = None;
                    true
                }
                None => {
                    st.writes.insert(
                        key,
                        WriteSlot {
                            raw,
                            value,
                            verified: None,
                            verified_at_s: f64::NEG_INFINITY,
                            failed: false,
                            attempted_at: None,
                        },
                    );
                    true
                }
            }
        };
        if changed {
            self.notify[link].notify_one();
        }
        Ok(())
    }

    /// Wait until every pending write is verified or has failed, at most `limit`.
    pub async fn flush_writes(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if self.shared.writes_settled() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stop every link task (connections close).
    pub fn stop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl Drop for FieldHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_allowance_absorbs_scheduling_jitter_of_a_fast_clock() {
        let shared = FieldShared::default();
        shared
            .lock()
            .readings
            .entry("plc".into())
            .or_default()
            .insert(
                "t2_supply".into(),
                PointReading {
                    value: Some(60.0),
                    error: None,
                    read_at_s: 1000.0,
                    max_age_s: 10.0,
                },
            );
        // 30 clock seconds old: stale without an allowance.
        let s = shared.sample("plc", "t2_supply", 1030.0).unwrap();
        assert!(!s.valid);
        assert_eq!(s.age_s, 30.0);
        // At 1,000x, 50 ms of real time is 50 s of clock time.
        shared.set_age_allowance_s(50.0);
        let s = shared.sample("plc", "t2_supply", 1030.0).unwrap();
        assert!(s.valid);
        assert_eq!(s.age_s, 30.0, "the age is reported as it is");
        // Beyond the allowance plus the max age it is stale again.
        let s = shared.sample("plc", "t2_supply", 1061.0).unwrap();
        assert!(!s.valid);
        shared.set_age_allowance_s(f64::NAN);
        assert_eq!(shared.lock().age_allowance_s, 0.0);
    }
}
