//! `[household_valves]`: the per-home valves and their room loops.

use serde::{Deserialize, Serialize};

use super::check::{Bound, Checker, Rules, bounds};

/// Household or building valves: a slow loop per valve pulls its home toward the room target,
/// so overheated homes stop stealing flow from cold ones.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HouseholdValves {
    /// Whether the per-valve loops run (nodes with a `valve_link` have a valve).
    pub enabled: bool,
    /// Register map of the valve actuators, path relative to this file.
    pub map: String,
    /// Point of that map holding the position feedback, %.
    pub position_point: String,
    /// Writable point of that map taking the position command, %.
    pub command_point: String,
    /// Room target of the per-valve loops, °C.
    pub target_c: f64,
    /// Proportional gain, % per K.
    pub kp_pct_per_k: f64,
    /// Integral time, seconds (hours: homes are slow).
    pub ti_s: f64,
    /// The valve never closes below this, % (keeps circulation and frost protection).
    pub min_opening_pct: f64,
    /// Fastest change, % per hour.
    pub max_rate_pct_per_h: f64,
    /// How often the loops run, seconds.
    pub period_s: f64,
    /// Position on shutdown, fatal fault or when the room reading is lost, %.
    pub safe_position_pct: f64,
}
impl Default for HouseholdValves {
    fn default() -> Self {
        Self {
            enabled: false,
            map: "devices/valve-actuator.toml".into(),
            position_point: "position".into(),
            command_point: "command".into(),
            target_c: 19.5,
            kp_pct_per_k: 20.0,
            ti_s: 14_400.0,
            min_opening_pct: 10.0,
            max_rate_pct_per_h: 30.0,
            period_s: 300.0,
            safe_position_pct: 100.0,
        }
    }
}

impl Rules for HouseholdValves {
    const BOUNDS: &'static [Bound<Self>] = bounds!(HouseholdValves {
        target_c: 12.0..=26.0,
        kp_pct_per_k: 0.0..=1_000.0,
        ti_s: 0.0..=1e6,
        min_opening_pct: 0.0..=100.0,
        max_rate_pct_per_h: 0.01..=6_000.0,
        period_s: 1.0..=86_400.0,
        safe_position_pct: 0.0..=100.0,
    });
}

impl HouseholdValves {
    pub(crate) fn check(&self, k: &mut Checker) {
        k.bounds("household_valves", self);
    }
}
