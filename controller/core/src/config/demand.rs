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

/// What the demand correction holds at its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DemandMeasure {
    /// An estimate of the coldest flat: the coldest reading of the healthy nodes, a lost node's
    /// flat from its learned offset, suspect nodes left out, and a margin per position class
    /// for the flats nobody senses (`coldest_rank`, `suspect_*`, `learn_*`, `*_margin_fraction`).
    Coldest,
    /// The weighted low `percentile` of the valid readings (the law before issue 14).
    Percentile,
}

/// Demand correction: a PI moves the curve shift so that the estimate of the coldest flat (or a
/// low percentile of the measured room temperatures, `measure = "percentile"`) sits at the
/// target, while the mean is kept from drifting high.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Demand {
    /// Whether room temperatures correct the curve.
    pub enabled: bool,
    /// Target for the measured variable, °C: the coldest flat's estimate (a little above the
    /// regulated 18 °C: the loop's dips and a lost node's estimate; 18.2 with the default loop), or
    /// with `measure = "percentile"` the low percentile (18.5-19 keeps unsensed homes above
    /// 18 °C). Each 0.1 K costs 0.5-0.7 % of the season's heat.
    pub target_c: f64,
    /// What is held at the target: "coldest" (the estimate of the coldest flat, robust to
    /// faulty nodes) or "percentile" (the weighted low `percentile` of the valid readings).
    pub measure: DemandMeasure,
    /// Which percentile of the (weighted) room temperatures must reach the target, 0..100, with
    /// `measure = "percentile"`; otherwise only shown (SCADA, web). 10 (P10) protects the
    /// coldest homes without letting one node rule.
    pub percentile: f64,
    /// With `measure = "coldest"`: which of the flats' estimates, from the coldest up, is held
    /// at the target (1: the coldest; 2 lets one unnoticed faulty node not rule alone).
    pub coldest_rank: u32,
    /// A reading below this, °C, and `suspect_gap_k` below the median of its position class is
    /// suspect-cold: it leaves the coldest estimate at once (its flat is then estimated from its
    /// learned offset), and after `suspect_after_h` the node is named in alarm 203. A flat held
    /// by the demand loop does not stay this cold while its class is warm; a node lying low does.
    pub suspect_below_c: f64,
    /// How far below the median of its position class (of all nodes, when the class has fewer
    /// than three readings) a suspect-cold reading is, K.
    pub suspect_gap_k: f64,
    /// How long a node must read suspect-cold before it is suspect (alarm 203), and plausible
    /// before it is trusted again, hours.
    pub suspect_after_h: f64,
    /// The follow test, hours (0: off): a reading below `suspect_below_c` and `follow_gap_k`
    /// under its class median is also suspect-cold when, over about this window, it did not
    /// follow its class: a room's air rises and falls with its neighbours' (same supply, same
    /// weather), a node lying at a fixed value does not. Each node keeps exponentially weighted
    /// moments of its reading and its class median with this time constant; the test applies
    /// once the node has reported for this long.
    pub follow_window_h: f64,
    /// How far below its class median a reading must be for the follow test to apply, K (the
    /// plain suspect test needs `suspect_gap_k`).
    pub follow_gap_k: f64,
    /// Least share of its class median's swings a reading must follow, 0..1: the slope of the
    /// reading against the class median over the window (a room that follows its class is near
    /// 1, a node lying at a fixed value near 0).
    pub follow_min_fraction: f64,
    /// Least swing (standard deviation over the window) of the class median for the follow
    /// test to judge, K: while the class holds still nothing can be told.
    pub follow_min_swing_k: f64,
    /// Time constant with which each node's offset from the fleet is learned, hours. The offset
    /// is relative to the load, (T_node - median) / (median - T_outdoor), so a flat that is 1 K
    /// below the median at 20 K of load is 2 K below it at 40 K.
    pub learn_time_h: f64,
    /// Least learning before a lost node's flat is estimated from its offset, hours. A node
    /// lost before that counts as an unknown flat of its class (`lost_margin_fraction`).
    pub learn_min_h: f64,
    /// Offsets are learned only while the median room is at least this much warmer than
    /// outdoors, K (in mild weather the ratio is noise).
    pub learn_min_load_k: f64,
    /// Margin for the flats without a node, as a share of each position class's spread (class
    /// median minus the class's coldest estimate, K): the class's coldest estimate minus this
    /// share of its spread joins the estimates. The spread, and the margin, shrink with the load.
    pub unsensed_margin_fraction: f64,
    /// Further margin for a class with lost nodes that never reported long enough to learn
    /// their offset, as a share of its spread.
    pub lost_margin_fraction: f64,
    /// Share trimmed from each end before the trimmed mean is taken, 0..0.45.
    pub trim_fraction: f64,
    /// Highest trimmed mean of room temperatures, °C: above it the shift is pushed down even if
    /// the measured variable is at target. 30 (the default, the top of its range) leaves the
    /// push-down out: with the coldest flat held at its target by a fast loop, the mean is what
    /// the spread between flats makes it, and pushing it down only makes the coldest flat
    /// colder. With `measure = "percentile"` and a slow loop, 21.5 keeps the median from
    /// drifting high.
    pub mean_max_c: f64,
    /// A node more than this many kelvin from the median of all nodes is an outlier (open
    /// window, node in the sun, broken sensor): left out of the percentile and the trimmed
    /// mean. The coldest-flat estimate still takes a low outlier's reading unless the suspect
    /// test (`suspect_below_c`, `suspect_gap_k`) catches it. 0 disables the check.
    pub outlier_k: f64,
    /// Least share of expected nodes (not vacant, not excluded) that must be alive, %. Below it
    /// the correction decays toward zero and the plain curve rules.
    pub quorum_pct: f64,
    /// Integral time of the PI law on the shift, hours: with a steady error of 1 K the integral
    /// part grows by `gain_k_per_k` kelvin per this many hours. 0.5 h with 6 K/K holds the
    /// coldest flat through a cold front; 2 h with 2.5 K/K (the default before 2026-12-02)
    /// lets it fall further and needs 0.1-0.25 K more target for the same worst flat.
    pub integral_time_h: f64,
    /// Proportional gain of the PI law: shift per kelvin of room error, K/K. The curve's slope
    /// between supply and room temperature is 2-3 K/K; 6 answers a room error faster than the
    /// building cools. Each 0.1 K of reading noise moves the setpoint by this times 0.1 K, so
    /// the primary valve travels more with a higher gain (hil-tests/SEASON.md).
    pub gain_k_per_k: f64,
    /// Lowest demand shift, K (room for the proportional part: `gain_k_per_k` times a few
    /// kelvin of error).
    pub min_shift_k: f64,
    /// Highest demand shift, K.
    pub max_shift_k: f64,
    /// Fastest change of the demand shift, K per hour. 6 K/h smooths the steps the gain makes
    /// of the readings' noise (the primary valve travels 40 % less than with 60 K/h, for the
    /// same heat and worst flat in the season scorecard) and still follows a cold front; 1.5
    /// K/h with a 2 h loop holds the shift back while the integral runs on, the worst flat's
    /// main loss in the scorecard (hil-tests/SEASON.md, "What limits capture").
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
            target_c: 18.2,
            measure: DemandMeasure::Coldest,
            percentile: 10.0,
            coldest_rank: 1,
            suspect_below_c: 17.0,
            suspect_gap_k: 3.0,
            suspect_after_h: 2.0,
            follow_window_h: 12.0,
            follow_gap_k: 1.5,
            follow_min_fraction: 0.3,
            follow_min_swing_k: 0.1,
            learn_time_h: 48.0,
            learn_min_h: 12.0,
            learn_min_load_k: 5.0,
            unsensed_margin_fraction: 0.0,
            lost_margin_fraction: 0.15,
            trim_fraction: 0.1,
            mean_max_c: 30.0,
            outlier_k: 4.0,
            quorum_pct: 30.0,
            integral_time_h: 0.5,
            gain_k_per_k: 6.0,
            min_shift_k: -30.0,
            max_shift_k: 30.0,
            max_rate_k_per_h: 6.0,
            decay_time_constant_h: 6.0,
            period_s: 60.0,
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
        suspect_below_c: 5.0..=30.0,
        suspect_gap_k: 0.5..=30.0,
        suspect_after_h: 0.0..=500.0,
        follow_window_h: 0.0..=500.0,
        follow_gap_k: 0.0..=30.0,
        follow_min_fraction: 0.0..=1.0,
        follow_min_swing_k: 0.001..=10.0,
        learn_time_h: 0.1..=5000.0,
        learn_min_h: 0.0..=5000.0,
        learn_min_load_k: 0.5..=60.0,
        unsensed_margin_fraction: 0.0..=5.0,
        lost_margin_fraction: 0.0..=5.0,
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
    const ALLOWED: &'static [(&'static str, &'static str)] = &[("coldest_rank", "1 to 100")];
}

impl Demand {
    pub(crate) fn check(&self, k: &mut Checker) {
        let d = self;
        k.bounds("demand", d);
        if !(1..=100).contains(&d.coldest_rank) {
            k.fail(
                "demand.coldest_rank",
                format!("{} is outside 1 to 100", d.coldest_rank),
            );
        }
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
