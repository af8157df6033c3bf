//! `[demand]`: the demand correction from room temperatures.

use serde::{Deserialize, Serialize};

use super::check::{Bound, Checker, Rules, bounds};

/// Weight of a room node by the apartment's position in the building. Exposed flats (top floor,
/// ground floor, end units) are the first to go cold, so they usually weigh more.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PositionWeights {
    /// Top-floor flat.
    pub top: f64,
    /// Ground-floor flat.
    pub ground: f64,
    /// End unit (gable wall) on an intermediate floor.
    pub end: f64,
    /// Middle unit, intermediate floor.
    pub middle: f64,
    /// Top-floor end unit.
    pub top_end: f64,
    /// Ground-floor end unit.
    pub ground_end: f64,
}
impl Default for PositionWeights {
    fn default() -> Self {
        Self {
            top: 1.5,
            ground: 1.5,
            end: 1.2,
            middle: 1.0,
            top_end: 2.0,
            ground_end: 2.0,
        }
    }
}

/// Demand correction: a slow integrator moves the curve shift so that a low percentile of the
/// measured room temperatures sits at the target, while the median is kept from drifting high.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Demand {
    /// Whether room temperatures correct the curve.
    pub enabled: bool,
    /// Target for the low percentile of room temperatures, °C (18.5-19 keeps unsensed homes
    /// above the regulated 18 °C).
    pub target_c: f64,
    /// Which percentile of the (weighted) room temperatures must reach the target, 0..100.
    /// 10 (P10) protects the coldest homes without letting one node rule.
    pub percentile: f64,
    /// Share trimmed from each end before the trimmed mean is taken, 0..0.45.
    pub trim_fraction: f64,
    /// Highest trimmed mean of room temperatures, °C: above it the shift is pushed down even if
    /// the percentile is at target (the median must not drift far above ~21 °C).
    pub mean_max_c: f64,
    /// A node more than this many kelvin from the median of all nodes is ignored as an outlier
    /// (open window, node in the sun, broken sensor). 0 disables the check.
    pub outlier_k: f64,
    /// Least share of expected nodes (not vacant, not excluded) that must be alive, %. Below it
    /// the correction decays toward zero and the plain curve rules.
    pub quorum_pct: f64,
    /// Integral time of the PI law on the shift, hours: with a steady error of 1 K the integral
    /// part grows by `gain_k_per_k` kelvin per this many hours. Rooms are slow: hours, not minutes.
    pub integral_time_h: f64,
    /// Proportional gain of the PI law: shift per kelvin of room error, K/K (about the curve's
    /// slope between supply and room temperature, 2-3).
    pub gain_k_per_k: f64,
    /// Lowest demand shift, K.
    pub min_shift_k: f64,
    /// Highest demand shift, K.
    pub max_shift_k: f64,
    /// Fastest change of the demand shift, K per hour.
    pub max_rate_k_per_h: f64,
    /// Without quorum the shift decays toward 0 with this time constant, hours.
    pub decay_time_constant_h: f64,
    /// How often the correction runs, seconds (room nodes report every few minutes).
    pub period_s: f64,
    /// Weights by apartment position.
    pub weights: PositionWeights,
}
impl Default for Demand {
    fn default() -> Self {
        Self {
            enabled: true,
            target_c: 19.0,
            percentile: 10.0,
            trim_fraction: 0.1,
            mean_max_c: 21.5,
            outlier_k: 4.0,
            quorum_pct: 30.0,
            integral_time_h: 8.0,
            gain_k_per_k: 2.5,
            min_shift_k: -15.0,
            max_shift_k: 15.0,
            max_rate_k_per_h: 1.5,
            decay_time_constant_h: 6.0,
            period_s: 300.0,
            weights: PositionWeights::default(),
        }
    }
}

impl Rules for PositionWeights {
    const BOUNDS: &'static [Bound<Self>] = bounds!(PositionWeights {
        top: 0.0..=100.0,
        ground: 0.0..=100.0,
        end: 0.0..=100.0,
        middle: 0.0..=100.0,
        top_end: 0.0..=100.0,
        ground_end: 0.0..=100.0,
    });
}

impl Rules for Demand {
    const BOUNDS: &'static [Bound<Self>] = bounds!(Demand {
        target_c: 12.0..=26.0,
        percentile: 0.0..=100.0,
        trim_fraction: 0.0..=0.45,
        mean_max_c: 12.0..=30.0,
        outlier_k: 0.0..=30.0,
        quorum_pct: 0.0..=100.0,
        integral_time_h: 0.1..=500.0,
        gain_k_per_k: 0.0..=20.0,
        min_shift_k: -40.0..=0.0,
        max_shift_k: 0.0..=40.0,
        max_rate_k_per_h: 0.001..=60.0,
        decay_time_constant_h: 0.01..=500.0,
        period_s: 1.0..=86_400.0,
    });
}

impl Demand {
    pub(crate) fn check(&self, k: &mut Checker) {
        let d = self;
        k.bounds("demand", d);
        if d.mean_max_c <= d.target_c {
            k.fail(
                "demand.mean_max_c",
                format!(
                    "{} contradicts demand.target_c ({}): the mean limit must lie above the target",
                    d.mean_max_c, d.target_c
                ),
            );
        }
        k.below(
            "demand.min_shift_k",
            d.min_shift_k,
            "demand.max_shift_k",
            d.max_shift_k,
        );
        k.bounds("demand.weights", &d.weights);
    }
}
