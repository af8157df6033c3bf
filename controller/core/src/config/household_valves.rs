//! `[household_valves]`: the per-home valves and their room loops.

use serde::{Deserialize, Serialize};

use super::check::{Bound, Checker, Rules, bounds};

/// What a household valve does while its room node gives no valid reading (lost, stale, stuck,
/// rejected as an outlier).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LostReading {
    /// Hold the position the valve learned under room control (its mean over the last
    /// `learn_time_h`), opened further by `lost_open_bias_pct`; a valve that learned nothing
    /// (under control for less than a quarter of `learn_time_h`, or its node found stuck or an
    /// outlier, which makes what it learned suspect) goes to `safe_position_pct`. Shutdown and
    /// fatal faults still put every valve at `safe_position_pct`.
    HoldLearned,
    /// Walk to `safe_position_pct` (fully open by default): the home is never cold, but every
    /// lost node costs heat.
    SafePosition,
}

/// Household or building valves: a loop per valve pulls its home toward the room target, so
/// overheated homes stop stealing flow from cold ones.
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
    /// Room target of the per-valve loops, °C: the lowest room temperature wanted (18 °C in
    /// most regulations) plus a margin for the room node's accuracy (a bias of up to ±0.3 K
    /// from the node's calibration, 0.1 K of noise) and for how far the loop lets a home dip
    /// (about 0.3 K with the default gains). 18.6 °C keeps a home whose node reads 0.3 K high
    /// at 18.3 °C.
    pub target_c: f64,
    /// Proportional gain, % per K (60: the valve travels from its minimum to fully open over
    /// 1.5 K of room error, the proportional band of a good electronic radiator valve).
    pub kp_pct_per_k: f64,
    /// Integral time, seconds (one hour: a home's air follows its radiator within the hour).
    pub ti_s: f64,
    /// Time constant of a first-order filter on the room reading before the loop, seconds (0:
    /// none). The node's noise (about 0.1 K) would otherwise move the valve by the
    /// proportional gain times the noise at every reading (6 % of stroke at 60 %/K), while the
    /// room itself changes over hours. 600 s (one report interval of a typical node) takes
    /// about a third off the valves' travel; much longer lets homes dip when the weather turns.
    pub filter_s: f64,
    /// The valve never closes below this, % (keeps circulation and frost protection).
    pub min_opening_pct: f64,
    /// Fastest change, % per hour.
    pub max_rate_pct_per_h: f64,
    /// How often the loops run, seconds.
    pub period_s: f64,
    /// Position on shutdown and fatal faults, %; also when the room reading is lost, with
    /// `lost_reading = "safe_position"` or while nothing was learned.
    pub safe_position_pct: f64,
    /// What a valve does while its room reading is lost: `hold_learned` (default) or
    /// `safe_position`.
    pub lost_reading: LostReading,
    /// How far a valve without a reading is opened beyond the position it learned, % (the side
    /// of caution: a warmer home rather than a cold one).
    pub lost_open_bias_pct: f64,
    /// Time constant of the learned position, hours (its mean over about this long).
    pub learn_time_h: f64,
    /// A valve wide open for this long with its room still `rogue_k` below target, while most
    /// homes are warmer, is a rogue, hours (a node lying cold, an open window, a blocked
    /// radiator: wide open, a healthy home comes up within hours). A rogue stays one while its
    /// node reads that cold: its requests no longer raise the supply for every home, its valve
    /// is driven as one without reading, and alarm 203 names its node.
    pub rogue_after_h: f64,
    /// How far below target a rogue's room reads, K.
    pub rogue_k: f64,
    /// With trim and respond on (`[valve_demand]`), the demand correction (`[demand]`) becomes
    /// a floor under it: it can only raise the supply (its shift stays at or above 0), and only
    /// when its percentile of the room readings (`demand.percentile`, whatever `demand.measure`
    /// says: a lost node's valve already holds its learned position, so the coldest estimate's
    /// margin for lost flats is not wanted here) falls `percentile_floor_margin_k` below
    /// `target_c` (or below `demand.target_c`, if lower). The valve positions then set the
    /// supply and the rooms guard it. false: the two shifts add as configured.
    pub percentile_floor: bool,
    /// How far below `target_c` the floor's percentile must fall before it raises, K.
    pub percentile_floor_margin_k: f64,
}
impl Default for HouseholdValves {
    fn default() -> Self {
        Self {
            enabled: false,
            map: "devices/valve-actuator.toml".into(),
            position_point: "position".into(),
            command_point: "command".into(),
            target_c: 18.6,
            kp_pct_per_k: 60.0,
            ti_s: 3_600.0,
            filter_s: 600.0,
            min_opening_pct: 10.0,
            max_rate_pct_per_h: 120.0,
            period_s: 300.0,
            safe_position_pct: 100.0,
            lost_reading: LostReading::HoldLearned,
            lost_open_bias_pct: 10.0,
            learn_time_h: 24.0,
            rogue_after_h: 6.0,
            rogue_k: 2.0,
            percentile_floor: true,
            percentile_floor_margin_k: 0.4,
        }
    }
}

impl Rules for HouseholdValves {
    const BOUNDS: &'static [Bound<Self>] = bounds!(HouseholdValves {
        target_c: 12.0..=26.0,
        kp_pct_per_k: 0.0..=1_000.0,
        ti_s: 0.0..=1e6,
        filter_s: 0.0..=86_400.0,
        min_opening_pct: 0.0..=100.0,
        max_rate_pct_per_h: 0.01..=6_000.0,
        period_s: 1.0..=86_400.0,
        safe_position_pct: 0.0..=100.0,
        lost_open_bias_pct: 0.0..=100.0,
        learn_time_h: 0.1..=1_000.0,
        percentile_floor_margin_k: 0.0..=10.0,
        rogue_after_h: 0.0..=10_000.0,
        rogue_k: 0.0..=20.0,
    });
}

impl HouseholdValves {
    pub(crate) fn check(&self, k: &mut Checker) {
        k.bounds("household_valves", self);
    }
}
