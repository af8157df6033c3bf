//! `[safety]`: the safety supervisor.

use serde::{Deserialize, Serialize};

use super::check::{Bound, Checker, Rules, bounds};

use super::Curve;

/// The safety supervisor, which overrides every control function.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Safety {
    /// Frost protection starts when t2_supply or t2_return falls to this, °C.
    pub frost_c: f64,
    /// Least primary valve opening during frost protection, %.
    pub frost_valve_min_pct: f64,
    /// Hard maximum of t2_supply, °C: above it the valve is closed...
    pub t2_supply_max_c: f64,
    /// Hard maximum of t1_return, °C: above it the valve is closed...
    pub t1_return_max_c: f64,
    /// ...until the temperature is this far back below the maximum, K.
    pub cut_hysteresis_k: f64,
    /// When t2_supply is lost, hold the last command this long, seconds...
    pub t2_lost_hold_s: f64,
    /// ...then drive the primary valve to this position, %.
    pub valve1_safe_pct: f64,
    /// An alarm clears only after its condition has been gone this long, seconds.
    pub alarm_clear_delay_s: f64,
}
impl Default for Safety {
    fn default() -> Self {
        Self {
            frost_c: 5.0,
            frost_valve_min_pct: 20.0,
            t2_supply_max_c: 95.0,
            t1_return_max_c: 90.0,
            cut_hysteresis_k: 5.0,
            t2_lost_hold_s: 60.0,
            valve1_safe_pct: 15.0,
            alarm_clear_delay_s: 60.0,
        }
    }
}

impl Rules for Safety {
    const BOUNDS: &'static [Bound<Self>] = bounds!(Safety {
        frost_c: 0.0..=15.0,
        frost_valve_min_pct: 0.0..=100.0,
        t2_supply_max_c: 30.0..=120.0,
        t1_return_max_c: 30.0..=150.0,
        cut_hysteresis_k: 0.5..=30.0,
        t2_lost_hold_s: 0.0..=3_600.0,
        valve1_safe_pct: 0.0..=100.0,
        alarm_clear_delay_s: 0.0..=86_400.0,
    });
    const ALLOWED: &'static [(&'static str, &'static str)] = &[
        ("frost_c", "0 to 15, below curve.min_supply_c"),
        ("t2_supply_max_c", "30 to 120, above curve.max_supply_c"),
    ];
}

impl Safety {
    pub(crate) fn check(&self, curve: &Curve, k: &mut Checker) {
        let sf = self;
        k.bounds("safety", sf);
        if sf.t2_supply_max_c <= curve.max_supply_c {
            k.fail(
                "safety.t2_supply_max_c",
                format!(
                    "{} contradicts curve.max_supply_c ({}): the hard cut must lie above the highest setpoint",
                    sf.t2_supply_max_c, curve.max_supply_c
                ),
            );
        }
        if sf.frost_c >= curve.min_supply_c {
            k.fail(
                "safety.frost_c",
                format!(
                    "{} contradicts curve.min_supply_c ({}): frost protection must start below the lowest setpoint",
                    sf.frost_c, curve.min_supply_c
                ),
            );
        }
    }
}
