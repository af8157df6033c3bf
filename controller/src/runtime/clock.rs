//! Clocks: two times on every clock.
//!
//! - **Monotonic time** (`mono_s`) measures durations: reading ages, poll periods, stale, stuck
//!   and jump checks, the cycle's time step for integrators and rate limiters, alarm delays,
//!   grace times. It never steps and never goes back.
//! - **Wall time** (`wall_s`, unix seconds) is used only where the time of day or the date
//!   matters: schedules (setbacks, boosts), timestamps (snapshot time, alarm events, telemetry,
//!   logs, audit) and the state file's age. It may step: a gateway without a battery-backed
//!   clock boots in 1970 (or at its last saved time) and is stepped by NTP; operators move clocks
//!   by hand.
//!
//! The runtime compares the two every cycle ([`WallStepDetector`]): wall time that advanced more
//! than [`WALL_STEP_THRESHOLD_S`] more or less than monotonic time is a step, logged and raised
//! as alarm 701.
//!
//! On the rig and in the demo a [`ScaledClock`] runs both `speed` times faster than real time.
//! Modbus timeouts and reconnect back-off stay in real time: devices answer at their own speed.

use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::control::StepTime;

/// A wall clock that advances more or less than the monotonic clock by more than this many
/// clock seconds between two cycles has been stepped (NTP, an operator). A disciplined clock
/// slews at most 0.5 ms per second, so 5 s per cycle (1 s) is never a correction in progress.
pub const WALL_STEP_THRESHOLD_S: f64 = 5.0;

/// How long alarm 701 (wall clock stepped) is held after the last step seen, monotonic clock
/// seconds; it then clears after `safety.alarm_clear_delay_s` like any alarm (heatctl has no
/// alarm acknowledgement: every alarm clears on its own).
pub const CLOCK_STEP_ALARM_HOLD_S: f64 = 600.0;

/// Where time comes from: monotonic time for durations, wall time for schedules and timestamps
/// (see the module documentation).
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Monotonic seconds since an arbitrary origin, on this clock: never steps, never goes back.
    fn mono_s(&self) -> f64;
    /// Wall time, unix seconds, on this clock (on a scaled clock: simulated time). May step.
    fn wall_s(&self) -> f64;
    /// How many clock seconds pass per real second (1 for the system clock).
    fn speed(&self) -> f64;
    /// Whether this is a scaled clock (the rig, the demo) rather than the system clock.
    fn scaled(&self) -> bool {
        false
    }
    /// Whether the wall clock is synchronised: the kernel's flag for the system clock
    /// ([`system_clock_synced`]); None when unknown or simulated.
    fn synced(&self) -> Option<bool> {
        system_clock_synced()
    }
    /// Both times now, read together.
    fn now(&self) -> StepTime {
        StepTime {
            mono_s: self.mono_s(),
            wall_s: self.wall_s(),
        }
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

/// The process's monotonic origin (the first time any clock is read).
fn mono_origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// The system's wall clock, unix seconds (0 before 1970).
fn system_wall_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The system's clocks: `Instant` (CLOCK_MONOTONIC) for durations, `SystemTime`
/// (CLOCK_REALTIME) for wall time.
#[derive(Debug, Clone, Copy, Default)]
pub struct WallClock;

impl Clock for WallClock {
    fn mono_s(&self) -> f64 {
        mono_origin().elapsed().as_secs_f64()
    }
    fn wall_s(&self) -> f64 {
        system_wall_s()
    }
    fn speed(&self) -> f64 {
        1.0
    }
}

/// A clock that starts at a wall time and runs `speed` times faster than real time (the rig,
/// the demo). Its wall time is simulated, so [`Clock::synced`] is None: the host's flag says
/// nothing about it.
#[derive(Debug, Clone, Copy)]
pub struct ScaledClock {
    start_unix_s: f64,
    start: Instant,
    speed: f64,
}

impl ScaledClock {
    /// A clock starting at the system's wall time, running `speed` times faster than real time
    /// (values that are not finite and positive give 1).
    #[must_use]
    pub fn new(speed: f64) -> Self {
        Self::starting_at(system_wall_s(), speed)
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

    fn elapsed_s(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * self.speed
    }
}

impl Clock for ScaledClock {
    fn mono_s(&self) -> f64 {
        self.elapsed_s()
    }
    fn wall_s(&self) -> f64 {
        self.start_unix_s + self.elapsed_s()
    }
    fn speed(&self) -> f64 {
        self.speed
    }
    fn scaled(&self) -> bool {
        true
    }
    fn synced(&self) -> Option<bool> {
        None
    }
}

/// A [`ScaledClock`] whose wall time can be stepped while its monotonic time runs on, and
/// whose synchronisation flag is set by hand: what tests (and the rig) inject to play NTP or an
/// operator moving the clock.
#[derive(Debug)]
pub struct SteppableClock {
    inner: ScaledClock,
    /// Added to the inner clock's wall time, s; and the synchronisation flag.
    state: Mutex<(f64, Option<bool>)>,
}

impl SteppableClock {
    /// A clock reading wall time `start_unix_s` now, running `speed` times faster than real
    /// time; synchronisation unknown.
    #[must_use]
    pub fn starting_at(start_unix_s: f64, speed: f64) -> Self {
        Self {
            inner: ScaledClock::starting_at(start_unix_s, speed),
            state: Mutex::new((0.0, None)),
        }
    }

    /// Step the wall clock by `delta_s` seconds (negative: back).
    pub fn step_wall_by(&self, delta_s: f64) {
        if delta_s.is_finite() {
            self.state.lock().unwrap_or_else(PoisonError::into_inner).0 += delta_s;
        }
    }

    /// Set the wall clock to `unix_s` now.
    pub fn set_wall(&self, unix_s: f64) {
        self.step_wall_by(unix_s - self.wall_s());
    }

    /// Set what [`Clock::synced`] reports.
    pub fn set_synced(&self, synced: Option<bool>) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).1 = synced;
    }
}

impl Clock for SteppableClock {
    fn mono_s(&self) -> f64 {
        self.inner.mono_s()
    }
    fn wall_s(&self) -> f64 {
        self.inner.wall_s() + self.state.lock().unwrap_or_else(PoisonError::into_inner).0
    }
    fn speed(&self) -> f64 {
        self.inner.speed()
    }
    fn scaled(&self) -> bool {
        true
    }
    fn synced(&self) -> Option<bool> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).1
    }
    fn now(&self) -> StepTime {
        // One lock for both, so a step between the two reads cannot tear the pair.
        let s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mono_s = self.inner.mono_s();
        StepTime {
            mono_s,
            wall_s: self.inner.start_unix_s + mono_s + s.0,
        }
    }
}

/// A step of the wall clock seen between two cycles.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WallStep {
    /// What the wall clock would read had it advanced with monotonic time, unix seconds.
    pub expected_wall_s: f64,
    /// What it reads, unix seconds.
    pub wall_s: f64,
}

impl WallStep {
    /// The step, s (negative: the clock went back).
    #[must_use]
    pub fn step_s(&self) -> f64 {
        self.wall_s - self.expected_wall_s
    }
}

/// Detects wall-clock steps: between two observations, wall time that advanced more than
/// [`WALL_STEP_THRESHOLD_S`] more or less than monotonic time.
#[derive(Debug, Clone, Copy, Default)]
pub struct WallStepDetector {
    last: Option<StepTime>,
    /// Monotonic time of the last step seen.
    stepped_at_s: Option<f64>,
}

impl WallStepDetector {
    /// Whether a step was seen within [`CLOCK_STEP_ALARM_HOLD_S`] of monotonic time before
    /// `mono_s`: alarm 701's condition.
    #[must_use]
    pub fn recently_stepped(&self, mono_s: f64) -> bool {
        self.stepped_at_s
            .is_some_and(|at| mono_s - at < CLOCK_STEP_ALARM_HOLD_S)
    }

    /// Take the times of a cycle; the step since the last observation, if there was one.
    pub fn observe(&mut self, t: StepTime) -> Option<WallStep> {
        if !(t.mono_s.is_finite() && t.wall_s.is_finite()) {
            return None;
        }
        let step = self.last.and_then(|last| {
            let expected_wall_s = last.wall_s + (t.mono_s - last.mono_s);
            ((t.wall_s - expected_wall_s).abs() > WALL_STEP_THRESHOLD_S).then_some(WallStep {
                expected_wall_s,
                wall_s: t.wall_s,
            })
        });
        self.last = Some(t);
        if step.is_some() {
            self.stepped_at_s = Some(t.mono_s);
        }
        step
    }
}

/// Whether the system clock is synchronised, as the kernel tells: `adjtimex()` (read only,
/// `modes = 0`) and its `STA_UNSYNC` status flag, which NTP daemons (systemd-timesyncd, chrony,
/// ntpd) clear while they discipline the clock and the kernel sets again when they stop.
/// None when the call fails or on a system other than Linux.
#[must_use]
pub fn system_clock_synced() -> Option<bool> {
    kernel::synced()
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod kernel {
    /// The kernel's synchronisation flag. No crate in the dependency tree wraps `adjtimex`
    /// safely (rustix and nix do not offer it), so this is the workspace's one unsafe call.
    pub(super) fn synced() -> Option<bool> {
        // SAFETY: `timex` is plain old data (integers only), so all-zero is a valid value;
        // `modes = 0` asks the kernel only to read (no privilege needed, nothing changed); the
        // pointer is to a live, exclusively borrowed, correctly sized and aligned `timex` for
        // the duration of the call, and the kernel does not keep it.
        let (ret, status) = unsafe {
            let mut tx: libc::timex = std::mem::zeroed();
            tx.modes = 0;
            let ret = libc::adjtimex(&mut tx);
            (ret, tx.status)
        };
        (ret != -1).then_some(status & libc::STA_UNSYNC == 0 && ret != libc::TIME_ERROR)
    }
}

#[cfg(not(target_os = "linux"))]
mod kernel {
    pub(super) fn synced() -> Option<bool> {
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
        let a = c.now();
        std::thread::sleep(Duration::from_millis(20));
        let b = c.now();
        assert!(b.wall_s - a.wall_s >= 1.0);
        assert!(b.mono_s - a.mono_s >= 1.0);
        assert_eq!(ScaledClock::new(f64::NAN).speed(), 1.0);
        assert_eq!(WallClock.real_duration(-1.0), Duration::ZERO);
        assert_eq!(c.synced(), None, "simulated time is never 'synchronised'");
    }

    #[test]
    fn clock_starting_at_a_given_time() {
        // 2025-01-04 00:00 UTC.
        let start_s = 1_735_948_800.0;
        let c = ScaledClock::starting_at(start_s, 3600.0);
        let a = c.wall_s();
        assert!((start_s..start_s + 3600.0).contains(&a), "{a}");
        std::thread::sleep(Duration::from_millis(20));
        let b = c.wall_s();
        assert!(b - a >= 3600.0 * 0.02, "{a} -> {b}");
        assert_eq!(c.speed(), 3600.0);
        assert_eq!(ScaledClock::starting_at(start_s, 0.0).speed(), 1.0);
    }

    #[test]
    fn the_system_clocks_are_monotonic_and_unix() {
        let a = WallClock.now();
        let b = WallClock.now();
        assert!(b.mono_s >= a.mono_s);
        // After 2020-01-01 on any machine that runs these tests.
        assert!(a.wall_s > 1_577_836_800.0, "{}", a.wall_s);
    }

    #[test]
    fn a_stepped_wall_clock_leaves_monotonic_time_alone() {
        let c = SteppableClock::starting_at(1_800_000_000.0, 1.0);
        let a = c.now();
        c.step_wall_by(-3600.0);
        let b = c.now();
        assert!((b.wall_s - (a.wall_s - 3600.0)).abs() < 1.0, "{a:?} {b:?}");
        assert!(
            b.mono_s >= a.mono_s && b.mono_s - a.mono_s < 1.0,
            "{a:?} {b:?}"
        );
        c.set_wall(0.0);
        assert!(c.wall_s() < 1.0);
        assert_eq!(c.synced(), None);
        c.set_synced(Some(false));
        assert_eq!(c.synced(), Some(false));
        c.step_wall_by(f64::NAN);
        assert!(c.wall_s().is_finite());
    }

    fn t(mono_s: f64, wall_s: f64) -> StepTime {
        StepTime { mono_s, wall_s }
    }

    #[test]
    fn steps_beyond_the_threshold_are_detected_both_ways() {
        let mut d = WallStepDetector::default();
        assert_eq!(
            d.observe(t(10.0, 1000.0)),
            None,
            "nothing to compare the first time"
        );
        // A slewing clock (NTP's 500 ppm and more) and a late cycle are not steps.
        assert_eq!(d.observe(t(11.0, 1001.0005)), None);
        assert_eq!(d.observe(t(14.0, 1004.0)), None);
        assert_eq!(d.observe(t(15.0, 1005.0 + WALL_STEP_THRESHOLD_S)), None);
        // One hour back.
        let s = d.observe(t(16.0, 1006.0 + WALL_STEP_THRESHOLD_S - 3600.0));
        let s = s.expect("an hour back is a step");
        assert!((s.step_s() + 3600.0).abs() < 1e-9, "{s:?}");
        assert!((s.expected_wall_s - (1006.0 + WALL_STEP_THRESHOLD_S)).abs() < 1e-9);
        // From 1970 to today.
        let mut d = WallStepDetector::default();
        d.observe(t(1.0, 12.0));
        let s = d.observe(t(2.0, 1_764_000_000.0)).expect("a step forward");
        assert!(s.step_s() > 1.7e9);
        // Not a number: ignored, the last good observation kept.
        assert_eq!(d.observe(t(3.0, f64::NAN)), None);
        assert_eq!(d.observe(t(4.0, 1_764_000_002.0)), None);
    }

    #[test]
    fn the_alarm_condition_holds_for_a_while_after_the_last_step() {
        let mut d = WallStepDetector::default();
        d.observe(t(0.0, 1000.0));
        assert!(!d.recently_stepped(0.0));
        d.observe(t(1.0, 1000.0 - 3600.0));
        assert!(d.recently_stepped(1.0));
        d.observe(t(100.0, 1000.0 - 3600.0 + 99.0));
        assert!(d.recently_stepped(100.0), "still held");
        // A second step restarts the hold.
        d.observe(t(200.0, 1000.0 + 86_400.0));
        assert!(d.recently_stepped(200.0 + CLOCK_STEP_ALARM_HOLD_S - 1.0));
        assert!(!d.recently_stepped(200.0 + CLOCK_STEP_ALARM_HOLD_S));
    }

    #[test]
    fn the_kernel_flag_can_be_read_here() {
        // adjtimex(modes = 0) needs no privilege: on Linux it answers.
        #[cfg(target_os = "linux")]
        assert!(system_clock_synced().is_some());
        assert_eq!(WallClock.synced(), system_clock_synced());
    }
}
