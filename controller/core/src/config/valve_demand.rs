//! `[valve_demand]`: trim and respond on household valve positions.

use serde::{Deserialize, Serialize};

use super::check::{Bound, Checker, Rules, bounds};

use super::RoomNode;

/// ASHRAE Guideline 36 "trim and respond" on household or building valve positions: while more
/// valves sit nearly fully open than are ignored (`ignored_requests`, or `ignored_requests_pct`
/// of the valves that count) the supply temperature is raised, otherwise it is trimmed down step
/// by step, never while the setpoint already sits at the curve's lowest clamp or heating is off.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValveDemand {
    /// Whether valve positions adjust the shift.
    pub enabled: bool,
    /// A valve open at least this far counts as a request for more heat, %.
    pub request_above_pct: f64,
    /// Requests ignored (a few valves are always wide open): at least this many...
    pub ignored_requests: u32,
    /// ...or this share of the valves that count, % (rounded down), whichever is more: a site of
    /// 600 homes has more valves wide open at any time than one of 20.
    pub ignored_requests_pct: f64,
    /// Trim applied every period without enough requests, K (negative).
    pub trim_k: f64,
    /// Respond per request beyond the ignored ones, K.
    pub respond_k_per_request: f64,
    /// Largest respond step in one period, K.
    pub max_respond_k: f64,
    /// How often trim and respond runs, seconds.
    pub period_s: f64,
    /// Lowest valve-demand shift, K.
    pub min_shift_k: f64,
    /// Highest valve-demand shift, K.
    pub max_shift_k: f64,
}
impl Default for ValveDemand {
    fn default() -> Self {
        Self {
            enabled: false,
            request_above_pct: 95.0,
            ignored_requests: 2,
            ignored_requests_pct: 0.0,
            trim_k: -0.2,
            respond_k_per_request: 0.1,
            max_respond_k: 1.0,
            period_s: 600.0,
            min_shift_k: -10.0,
            max_shift_k: 10.0,
        }
    }
}

impl Rules for ValveDemand {
    const BOUNDS: &'static [Bound<Self>] = bounds!(ValveDemand {
        request_above_pct: 1.0..=100.0,
        ignored_requests_pct: 0.0..=100.0,
        trim_k: -10.0..=0.0,
        respond_k_per_request: 0.0..=10.0,
        max_respond_k: 0.0..=20.0,
        period_s: 1.0..=86_400.0,
    });
    const ALLOWED: &'static [(&'static str, &'static str)] = &[
        ("min_shift_k", "below max_shift_k"),
        ("enabled", "needs nodes with a valve"),
    ];
}

impl ValveDemand {
    /// Requests ignored when `valves` valves count.
    #[must_use]
    pub fn ignored(&self, valves: usize) -> usize {
        let share = (self.ignored_requests_pct / 100.0 * valves as f64).floor();
        (self.ignored_requests as usize).max(share as usize)
    }

    pub(crate) fn check(&self, nodes: &[RoomNode], k: &mut Checker) {
        let v = self;
        k.bounds("valve_demand", v);
        k.below(
            "valve_demand.min_shift_k",
            v.min_shift_k,
            "valve_demand.max_shift_k",
            v.max_shift_k,
        );
        if v.enabled && nodes.iter().all(|n| n.valve_link.is_none()) && !nodes.is_empty() {
            k.fail(
                "valve_demand.enabled",
                "valve demand needs nodes with a valve (rooms.nodes[].valve_link)",
            );
        }
    }
}
