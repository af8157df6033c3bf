//! `[limits]`: the protective limiters and the setpoint rate limit.

use serde::{Deserialize, Serialize};

use super::check::{Bound, Checker, Rules, bounds};

/// One point of the outdoor-dependent primary return limit line.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnLimitPoint {
    /// Outdoor temperature, °C.
    pub outdoor_c: f64,
    /// Highest allowed primary return temperature at that outdoor temperature, °C.
    pub max_return_c: f64,
}

/// A PI limiter's gains.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimiterGains {
    /// Setpoint reduction per unit of violation, K per unit.
    pub kp: f64,
    /// Integral time, seconds (0: proportional only).
    pub ti_s: f64,
}

/// Limiters, applied after the curve, the shifts and the schedule (setback, boost), in this
/// fixed order: 1 primary return, 2 return difference, 3 power / flow (each can only lower the
/// setpoint, so a protective limiter always wins over a boost), then 4 the setpoint rate limit.
/// The safety supervisor overrides them all. The explanation names each one's effect.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Primary return temperature limit.
    pub return1: Return1Limit,
    /// Secondary/primary return difference limit.
    pub return_difference: ReturnDifferenceLimit,
    /// Power and flow limit from the heat meter.
    pub power: PowerLimit,
    /// Setpoint rate limit.
    pub rate: RateLimit,
}

/// Primary return temperature limit on an outdoor-dependent line, with PI action on the setpoint.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Return1Limit {
    /// Whether the limit is active (needs a valid t1_return).
    pub enabled: bool,
    /// Limit line, strictly increasing in outdoor temperature; flat beyond the ends.
    pub points: Vec<ReturnLimitPoint>,
    /// PI gains: K of setpoint reduction per K above the limit.
    pub gains: LimiterGains,
}
impl Default for Return1Limit {
    fn default() -> Self {
        Self {
            enabled: true,
            points: vec![
                ReturnLimitPoint {
                    outdoor_c: -17.0,
                    max_return_c: 62.0,
                },
                ReturnLimitPoint {
                    outdoor_c: 8.0,
                    max_return_c: 45.0,
                },
            ],
            gains: LimiterGains {
                kp: 1.0,
                ti_s: 900.0,
            },
        }
    }
}

/// Limit on t1_return - t2_return: a large difference means the exchanger passes primary water
/// through without using it (fouling, over-flow).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReturnDifferenceLimit {
    /// Whether the limit is active (needs valid t1_return and t2_return).
    pub enabled: bool,
    /// Largest allowed t1_return - t2_return, K.
    pub max_difference_k: f64,
    /// PI gains: K of setpoint reduction per K above the limit.
    pub gains: LimiterGains,
}
impl Default for ReturnDifferenceLimit {
    fn default() -> Self {
        Self {
            enabled: false,
            max_difference_k: 8.0,
            gains: LimiterGains {
                kp: 1.0,
                ti_s: 900.0,
            },
        }
    }
}

/// Power and flow limit from the primary heat meter, only while its data are fresh.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PowerLimit {
    /// Whether the limit is active.
    pub enabled: bool,
    /// Contracted maximum heat power, kW.
    pub max_power_kw: f64,
    /// Contracted maximum primary flow, m³/h.
    pub max_flow_m3h: f64,
    /// PI gains: K of setpoint reduction per percent above the limit.
    pub gains: LimiterGains,
}
impl Default for PowerLimit {
    fn default() -> Self {
        Self {
            enabled: false,
            max_power_kw: 4000.0,
            max_flow_m3h: 60.0,
            gains: LimiterGains {
                kp: 0.5,
                ti_s: 600.0,
            },
        }
    }
}

/// Rate limit on the final setpoint.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimit {
    /// Fastest rise of the setpoint, K per minute.
    pub max_rise_k_per_min: f64,
    /// Fastest fall of the setpoint, K per minute.
    pub max_fall_k_per_min: f64,
}
impl Default for RateLimit {
    fn default() -> Self {
        Self {
            max_rise_k_per_min: 0.5,
            max_fall_k_per_min: 1.0,
        }
    }
}

impl Rules for ReturnLimitPoint {
    const BOUNDS: &'static [Bound<Self>] = bounds!(ReturnLimitPoint {
        outdoor_c: -50.0..=40.0,
        max_return_c: 15.0..=130.0,
    });
    const ALLOWED: &'static [(&'static str, &'static str)] =
        &[("max_return_c", "15 to 130, below safety.t1_return_max_c")];
}

impl Rules for LimiterGains {
    const BOUNDS: &'static [Bound<Self>] = bounds!(LimiterGains {
        kp: 0.0..=100.0,
        ti_s: 0.0..=1e6,
    });
}

impl Rules for Limits {}

impl Rules for Return1Limit {
    const ALLOWED: &'static [(&'static str, &'static str)] = &[(
        "points",
        "at least one point when enabled, strictly increasing in outdoor_c",
    )];
}

impl Rules for ReturnDifferenceLimit {
    const BOUNDS: &'static [Bound<Self>] = bounds!(ReturnDifferenceLimit {
        max_difference_k: 0.5..=80.0,
    });
}

impl Rules for PowerLimit {
    const BOUNDS: &'static [Bound<Self>] = bounds!(PowerLimit {
        max_power_kw: 1.0..=1e6,
        max_flow_m3h: 0.1..=1e5,
    });
}

impl Rules for RateLimit {
    const BOUNDS: &'static [Bound<Self>] = bounds!(RateLimit {
        max_rise_k_per_min: 0.01..=60.0,
        max_fall_k_per_min: 0.01..=60.0,
    });
}

impl Limits {
    /// `t1_return_max_c`: the safety cut the return limit must act before.
    pub(crate) fn check(&self, t1_return_max_c: f64, k: &mut Checker) {
        let r = &self.return1;
        if r.enabled && r.points.is_empty() {
            k.fail(
                "limits.return1.points",
                "the return limit needs at least one point",
            );
        }
        for (i, p) in r.points.iter().enumerate() {
            k.bounds(&format!("limits.return1.points[{i}]"), p);
            if r.enabled && p.max_return_c >= t1_return_max_c {
                k.fail(
                    format!("limits.return1.points[{i}].max_return_c"),
                    format!(
                        "{} contradicts safety.t1_return_max_c ({}): the limit must act before the hard cut",
                        p.max_return_c, t1_return_max_c
                    ),
                );
            }
        }
        k.increasing(
            "limits.return1.points",
            r.points.iter().map(|p| p.outdoor_c),
            "outdoor_c",
        );
        k.bounds("limits.return1.gains", &r.gains);
        let d = &self.return_difference;
        k.bounds("limits.return_difference", d);
        k.bounds("limits.return_difference.gains", &d.gains);
        let p = &self.power;
        k.bounds("limits.power", p);
        k.bounds("limits.power.gains", &p.gains);
        k.bounds("limits.rate", &self.rate);
    }
}
