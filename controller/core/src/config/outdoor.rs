//! `[outdoor]`: outdoor temperature processing.

use serde::{Deserialize, Serialize};

use super::check::{Bound, Checker, Rules, bounds};

/// Outdoor temperature processing (EN 12098 damped outdoor temperature, Siemens-style composite).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Outdoor {
    /// Time constant of the building, hours: the damped outdoor temperature follows the actual one
    /// through a first-order low-pass with this time constant. Light buildings 5-10 h, heavy
    /// (concrete, typical in northern China) 20-40 h.
    pub building_time_constant_h: f64,
    /// Share of the actual temperature in the composite: composite = w * actual + (1 - w) * damped.
    /// 0 uses the damped value only, 1 the actual value only. 0.5 is a common choice.
    pub composite_actual_weight: f64,
    /// Which temperature drives the heating curve: "composite", "damped" or "actual".
    pub curve_input: OutdoorInput,
    /// When the outdoor sensor is lost, hold its last good value for this many seconds...
    pub hold_last_good_s: f64,
    /// ...then use this fixed fallback temperature, °C (pick a cold-ish value: under-heating is
    /// what a lost sensor must not cause).
    pub fallback_c: f64,
    /// Feed-forward from the outdoor forecast (the optional input signal `t_out_forecast`, a
    /// forecast a few hours ahead, 6 h being usual): while a valid forecast is at hand, the
    /// "actual" temperature in the composite moves this share of the way toward the forecast, so
    /// the supply rises before a cold front arrives and falls before a mild spell, by the time
    /// the radiators and rooms take to respond. 0 (the default) ignores the forecast; about 0.25
    /// for a 6 h forecast (1.5 h of lead). The damped temperature, the fallback and the summer
    /// cut-off still use the measured temperature only.
    pub forecast_weight: f64,
}
impl Default for Outdoor {
    fn default() -> Self {
        Self {
            building_time_constant_h: 20.0,
            composite_actual_weight: 0.5,
            curve_input: OutdoorInput::Composite,
            hold_last_good_s: 3600.0,
            fallback_c: -5.0,
            forecast_weight: 0.0,
        }
    }
}

/// Which outdoor temperature drives the heating curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutdoorInput {
    /// Weighted mix of actual and damped.
    Composite,
    /// Damped only.
    Damped,
    /// Actual (measured) only.
    Actual,
}

impl Rules for Outdoor {
    const BOUNDS: &'static [Bound<Self>] = bounds!(Outdoor {
        building_time_constant_h: 0.1..=200.0,
        composite_actual_weight: 0.0..=1.0,
        hold_last_good_s: 0.0..=604_800.0,
        fallback_c: -50.0..=30.0,
        forecast_weight: 0.0..=1.0,
    });
}

impl Outdoor {
    pub(crate) fn check(&self, k: &mut Checker) {
        k.bounds("outdoor", self);
    }
}
