//! `[valve1]`: the primary valve and its loop.

use serde::{Deserialize, Serialize};

use super::check::{Bound, Checker, Rules, bounds};

/// How the primary valve is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValveOutput {
    /// A 0..100 % position command (0-10 V or Modbus actuator).
    Position,
    /// Open/close pulses to a 3-point (floating) actuator.
    ThreePoint,
}

/// The primary valve loop: PI(D) on the secondary supply temperature.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Valve1 {
    /// Proportional gain, % valve per K of error. Start low (1-3); raise until t2_supply
    /// starts to oscillate, then halve.
    pub kp_pct_per_k: f64,
    /// Integral time, seconds. About the exchanger + pipe response time (60-300 s).
    pub ti_s: f64,
    /// Derivative time, seconds (0: PI only; rarely needed).
    pub td_s: f64,
    /// Errors smaller than this are ignored, K (saves actuator wear).
    pub deadband_k: f64,
    /// Fastest change of the command, % per second (full stroke in 100 s: 1.0).
    pub max_rate_pct_per_s: f64,
    /// Feed-forward: % of valve per K of setpoint above `feed_forward_zero_c` (0: off).
    pub feed_forward_pct_per_k: f64,
    /// Setpoint at which the feed-forward term is zero, °C.
    pub feed_forward_zero_c: f64,
    /// Position or three-point output.
    pub output: ValveOutput,
    /// Three-point actuator: full stroke time, seconds.
    pub run_time_s: f64,
    /// Three-point actuator: shortest pulse worth sending, seconds.
    pub min_pulse_s: f64,
    /// Lowest command in normal control, % (0 lets the valve close).
    pub min_pct: f64,
    /// Highest command in normal control, %.
    pub max_pct: f64,
}
impl Default for Valve1 {
    fn default() -> Self {
        Self {
            kp_pct_per_k: 2.0,
            ti_s: 120.0,
            td_s: 0.0,
            deadband_k: 0.2,
            max_rate_pct_per_s: 1.0,
            feed_forward_pct_per_k: 0.0,
            feed_forward_zero_c: 20.0,
            output: ValveOutput::Position,
            run_time_s: 120.0,
            min_pulse_s: 1.0,
            min_pct: 0.0,
            max_pct: 100.0,
        }
    }
}

impl Rules for Valve1 {
    const BOUNDS: &'static [Bound<Self>] = bounds!(Valve1 {
        kp_pct_per_k: 0.0..=100.0,
        ti_s: 0.0..=36_000.0,
        td_s: 0.0..=3_600.0,
        deadband_k: 0.0..=5.0,
        max_rate_pct_per_s: 0.01..=100.0,
        feed_forward_pct_per_k: 0.0..=10.0,
        feed_forward_zero_c: 0.0..=100.0,
        run_time_s: 5.0..=1_200.0,
        min_pulse_s: 0.05..=60.0,
        min_pct: 0.0..=100.0,
        max_pct: 0.0..=100.0,
    });
}

impl Valve1 {
    pub(crate) fn check(&self, k: &mut Checker) {
        let v1 = self;
        k.bounds("valve1", v1);
        if v1.min_pulse_s >= v1.run_time_s {
            k.fail(
                "valve1.min_pulse_s",
                "must be shorter than valve1.run_time_s",
            );
        }
        k.below("valve1.min_pct", v1.min_pct, "valve1.max_pct", v1.max_pct);
    }
}
