//! Clocks: the wall clock for the field, a scaled clock for the accelerated rig.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where time comes from. Controller time (`now_s`) is unix seconds; poll periods, the cycle
/// period and ages are measured on this clock, so a scaled clock runs all of them faster.
/// Modbus timeouts and reconnect back-off stay in real time: devices answer at their own speed.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Unix seconds now, on this clock.
    fn now_s(&self) -> f64;
    /// How many clock seconds pass per real second (1 for the wall clock).
    fn speed(&self) -> f64;
    /// Whether this is a scaled clock (the rig, the demo) rather than the wall clock.
    fn scaled(&self) -> bool {
        false
    }
    /// The real duration of `clock_s` seconds on this clock.
    fn real_duration(&self, clock_s: f64) -> Duration {
        let real = clock_s / self.speed();
        if real.is_finite() && real > 0.0 {
            Duration::from_secs_f64(real.min(86_400.0))
        } else {
            Duration::ZERO
        }
    }
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct WallClock;

impl Clock for WallClock {
    fn now_s(&self) -> f64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    }
    fn speed(&self) -> f64 {
        1.0
    }
}

/// A clock that starts at the wall-clock time and runs `speed` times faster.
#[derive(Debug, Clone, Copy)]
pub struct ScaledClock {
    start_unix_s: f64,
    start: Instant,
    speed: f64,
}

impl ScaledClock {
    /// A clock running `speed` times faster than real time (values that are not finite and
    /// positive give 1).
    #[must_use]
    pub fn new(speed: f64) -> Self {
        Self::starting_at(WallClock.now_s(), speed)
    }

    /// A clock that reads `start_unix_s` now and runs `speed` times faster than real time from
    /// here (values of `speed` that are not finite and positive give 1). The demo starts it at
    /// the simulated plant's time, so schedules see the plant's time of day.
    #[must_use]
    pub fn starting_at(start_unix_s: f64, speed: f64) -> Self {
        Self {
            start_unix_s,
            start: Instant::now(),
            speed: if speed.is_finite() && speed > 0.0 {
                speed
            } else {
                1.0
            },
        }
    }
}

impl Clock for ScaledClock {
    fn now_s(&self) -> f64 {
        self.start_unix_s + self.start.elapsed().as_secs_f64() * self.speed
    }
    fn speed(&self) -> f64 {
        self.speed
    }
    fn scaled(&self) -> bool {
        true
    }
}

/// Whether the system clock is synchronised, as far as this host tells: systemd-timesyncd's
/// flag file (`/run/systemd/timesync/synchronized`) when timesyncd runs; None when unknown.
#[must_use]
pub fn system_clock_synced() -> Option<bool> {
    let dir = std::path::Path::new("/run/systemd/timesync");
    if dir.join("synchronized").exists() {
        Some(true)
    } else if dir.is_dir() {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_clock_runs_faster_and_periods_shrink() {
        let c = ScaledClock::new(60.0);
        assert_eq!(c.real_duration(60.0), Duration::from_secs(1));
        let a = c.now_s();
        std::thread::sleep(Duration::from_millis(20));
        assert!(c.now_s() - a >= 1.0);
        assert_eq!(ScaledClock::new(f64::NAN).speed(), 1.0);
        assert_eq!(WallClock.real_duration(-1.0), Duration::ZERO);
    }

    #[test]
    fn clock_starting_at_a_given_time() {
        // 2025-01-04 00:00 UTC.
        let start_s = 1_735_948_800.0;
        let c = ScaledClock::starting_at(start_s, 3600.0);
        let a = c.now_s();
        assert!((start_s..start_s + 3600.0).contains(&a), "{a}");
        std::thread::sleep(Duration::from_millis(20));
        let b = c.now_s();
        assert!(b - a >= 3600.0 * 0.02, "{a} -> {b}");
        assert_eq!(c.speed(), 3600.0);
        assert_eq!(ScaledClock::starting_at(start_s, 0.0).speed(), 1.0);
    }
}
