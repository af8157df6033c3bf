//! `[pump2]`: the secondary circulation pump's speed control.

use serde::{Deserialize, Serialize};

use super::check::{Bound, Checker, Rules, bounds};
use super::{CommandPoint, Config};
use crate::signal::Signal;

/// What the pump's differential-pressure loop holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PumpMode {
    /// Hold `dp2_station` (supply-return at the substation outlet) at `dp_setpoint_kpa`.
    ConstantDp,
    /// Proportional pressure: the `dp2_station` setpoint falls linearly with the flow, from
    /// `dp_design_kpa` at `design_flow_m3h` to `proportional_min_frac` of it at zero flow (the
    /// pipe losses a lower flow no longer needs). The flow is `flow2` when valid, else
    /// estimated from the speed (design flow × speed / max speed, the affinity law on the
    /// design system curve: coarse; bind `flow2` where there is a flow meter).
    ProportionalDp,
    /// Index-circuit pressure: hold `dp2_index` (the remote sensor across the worst-placed
    /// riser) at `index_dp_setpoint_kpa`, optionally reset from the household valve positions
    /// (`valve_reset`).
    Index,
}

impl PumpMode {
    /// Name as in the configuration.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            PumpMode::ConstantDp => "constant_dp",
            PumpMode::ProportionalDp => "proportional_dp",
            PumpMode::Index => "index",
        }
    }

    /// Code on SCADA: 1 constant_dp, 2 proportional_dp, 3 index (0: no pump control).
    #[must_use]
    pub const fn code(self) -> u16 {
        match self {
            PumpMode::ConstantDp => 1,
            PumpMode::ProportionalDp => 2,
            PumpMode::Index => 3,
        }
    }

    /// The signal the loop holds at its setpoint.
    #[must_use]
    pub const fn measured(self) -> Signal {
        match self {
            PumpMode::ConstantDp | PumpMode::ProportionalDp => Signal::Dp2StationKpa,
            PumpMode::Index => Signal::Dp2IndexKpa,
        }
    }
}

/// The secondary circulation pump (pump2): a PI loop from a differential pressure to the speed
/// command. Off unless `points.pump2_speed_cmd` is bound: without it nothing is written and the
/// pump runs as its drive is set, as before.
///
/// Dry-run guard: while the pump is commanded above `min_speed_pct`, `flow2` below
/// `dry_run_flow_m3h` or `dp2_station` below `dry_run_dp_kpa` (each only where bound and valid)
/// for `dry_run_delay_s` stops the pump (command 0) and raises alarm 311; it restarts (at min
/// speed, ramping) after `dry_run_retry_s`, and trips again if the cause is still there. A pump running dry or against closed valves heats its water and
/// ruins its seal within minutes.
///
/// An invalid differential-pressure reading never drives the pump: the last speed is held for
/// `dp_lost_hold_s`, then `fallback_speed_pct` is commanded (alarm 110) until the reading is
/// back; the loop then continues bumplessly from the speed in force.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pump2 {
    /// What the loop holds: "constant_dp", "proportional_dp" or "index".
    pub mode: PumpMode,
    /// `constant_dp`: the `dp2_station` setpoint, kPa.
    pub dp_setpoint_kpa: f64,
    /// `proportional_dp`: the `dp2_station` setpoint at design flow, kPa.
    pub dp_design_kpa: f64,
    /// `proportional_dp`: the secondary design flow, m³/h (also scales the flow estimate from
    /// the speed).
    pub design_flow_m3h: f64,
    /// `proportional_dp`: the setpoint at zero flow as a fraction of `dp_design_kpa` (0.5:
    /// half; 1.0 is constant pressure).
    pub proportional_min_frac: f64,
    /// `index`: the `dp2_index` setpoint, kPa (the start value of the valve-position reset).
    pub index_dp_setpoint_kpa: f64,
    /// `index`: reset the index setpoint from the household valve positions (needs household
    /// valves: `household_valves.enabled` and nodes with a `valve_link`). Trim and respond:
    /// every `reset_period_s` the setpoint rises by `reset_step_kpa` while the most open valve
    /// is above `reset_target_pct`, and falls by one step while it is below it by more than
    /// `reset_deadband_pct`, within `index_dp_min_kpa`..`index_dp_max_kpa`; held while no
    /// valve position is valid.
    pub valve_reset: bool,
    /// The position the most open household valve should sit at, %.
    pub reset_target_pct: f64,
    /// Band below `reset_target_pct` in which the index setpoint is left alone, %.
    pub reset_deadband_pct: f64,
    /// Change of the index setpoint per reset, kPa.
    pub reset_step_kpa: f64,
    /// Time between two resets, seconds (slow: the valves' loops need time to answer).
    pub reset_period_s: f64,
    /// Lowest index setpoint the reset may set, kPa.
    pub index_dp_min_kpa: f64,
    /// Highest index setpoint the reset may set, kPa.
    pub index_dp_max_kpa: f64,
    /// Lowest speed in control, % (the pump's and motor's minimum).
    pub min_speed_pct: f64,
    /// Highest speed in control, %.
    pub max_speed_pct: f64,
    /// Fastest change of the speed command, % per second (up and down).
    pub ramp_pct_s: f64,
    /// Proportional gain, % speed per kPa of error.
    pub kp_pct_per_kpa: f64,
    /// Integral time, seconds (0: P only). The integrator stops at the speed limits and while
    /// the ramp holds the command back (anti-windup).
    pub ti_s: f64,
    /// Dry-run guard: flow below this counts as dry, m³/h (0: not checked).
    pub dry_run_flow_m3h: f64,
    /// Dry-run guard: `dp2_station` below this counts as dry, kPa (0: not checked).
    pub dry_run_dp_kpa: f64,
    /// Dry-run guard: how long the low flow or pressure must last, seconds (0: guard off).
    pub dry_run_delay_s: f64,
    /// Dry-run guard: the pump restarts this long after a trip, seconds.
    pub dry_run_retry_s: f64,
    /// Differential pressure reading lost: last speed held this long, seconds...
    pub dp_lost_hold_s: f64,
    /// ...then this speed, %.
    pub fallback_speed_pct: f64,
    /// Speed on shutdown and on fatal faults, % (the drive keeps it when heatctl stops; keep
    /// the circulation going: frost protection and heat to the homes).
    pub safe_speed_pct: f64,
    /// Heating off (summer cut-off, mode off): speed after the run-on time, % (0: stop).
    pub off_speed_pct: f64,
    /// Heating off: the pump keeps its control this long first, seconds (carries the heat
    /// left in the exchanger away).
    pub run_on_s: f64,
}

impl Default for Pump2 {
    fn default() -> Self {
        Self {
            mode: PumpMode::ConstantDp,
            dp_setpoint_kpa: 80.0,
            dp_design_kpa: 80.0,
            design_flow_m3h: 50.0,
            proportional_min_frac: 0.5,
            index_dp_setpoint_kpa: 30.0,
            valve_reset: false,
            reset_target_pct: 90.0,
            reset_deadband_pct: 10.0,
            reset_step_kpa: 2.0,
            reset_period_s: 600.0,
            index_dp_min_kpa: 10.0,
            index_dp_max_kpa: 80.0,
            min_speed_pct: 30.0,
            max_speed_pct: 100.0,
            ramp_pct_s: 2.0,
            kp_pct_per_kpa: 0.5,
            ti_s: 30.0,
            dry_run_flow_m3h: 0.0,
            dry_run_dp_kpa: 5.0,
            dry_run_delay_s: 60.0,
            dry_run_retry_s: 900.0,
            dp_lost_hold_s: 60.0,
            fallback_speed_pct: 80.0,
            safe_speed_pct: 80.0,
            off_speed_pct: 0.0,
            run_on_s: 600.0,
        }
    }
}

impl Rules for Pump2 {
    const BOUNDS: &'static [Bound<Self>] = bounds!(Pump2 {
        dp_setpoint_kpa: 1.0..=1_000.0,
        dp_design_kpa: 1.0..=1_000.0,
        design_flow_m3h: 0.1..=5_000.0,
        proportional_min_frac: 0.1..=1.0,
        index_dp_setpoint_kpa: 1.0..=1_000.0,
        reset_target_pct: 50.0..=100.0,
        reset_deadband_pct: 0.0..=50.0,
        reset_step_kpa: 0.1..=50.0,
        reset_period_s: 10.0..=86_400.0,
        index_dp_min_kpa: 1.0..=1_000.0,
        index_dp_max_kpa: 1.0..=1_000.0,
        min_speed_pct: 0.0..=100.0,
        max_speed_pct: 1.0..=100.0,
        ramp_pct_s: 0.01..=100.0,
        kp_pct_per_kpa: 0.0..=100.0,
        ti_s: 0.0..=36_000.0,
        dry_run_flow_m3h: 0.0..=5_000.0,
        dry_run_dp_kpa: 0.0..=1_000.0,
        dry_run_delay_s: 0.0..=3_600.0,
        dry_run_retry_s: 10.0..=86_400.0,
        dp_lost_hold_s: 0.0..=3_600.0,
        fallback_speed_pct: 0.0..=100.0,
        safe_speed_pct: 0.0..=100.0,
        off_speed_pct: 0.0..=100.0,
        run_on_s: 0.0..=86_400.0,
    });
    const ALLOWED: &'static [(&'static str, &'static str)] = &[
        (
            "mode",
            "\"constant_dp\" (needs points.dp2_station), \"proportional_dp\" (needs \
             points.dp2_station), \"index\" (needs points.dp2_index)",
        ),
        (
            "valve_reset",
            "only with mode \"index\" and household valves fitted",
        ),
    ];
}

impl Pump2 {
    /// Whether the pump is controlled: its speed command point is bound.
    #[must_use]
    pub fn controlled(cfg: &Config) -> bool {
        cfg.points.command(CommandPoint::Pump2SpeedCmd).is_some()
    }

    pub(crate) fn check(&self, c: &Config, k: &mut Checker) {
        let p = self;
        k.bounds("pump2", p);
        k.below(
            "pump2.min_speed_pct",
            p.min_speed_pct,
            "pump2.max_speed_pct",
            p.max_speed_pct,
        );
        k.below(
            "pump2.index_dp_min_kpa",
            p.index_dp_min_kpa,
            "pump2.index_dp_max_kpa",
            p.index_dp_max_kpa,
        );
        if p.index_dp_setpoint_kpa < p.index_dp_min_kpa
            || p.index_dp_setpoint_kpa > p.index_dp_max_kpa
        {
            k.fail(
                "pump2.index_dp_setpoint_kpa",
                format!(
                    "{} must lie within pump2.index_dp_min_kpa ({}) and pump2.index_dp_max_kpa ({})",
                    p.index_dp_setpoint_kpa, p.index_dp_min_kpa, p.index_dp_max_kpa
                ),
            );
        }
        for (key, v) in [
            ("fallback_speed_pct", p.fallback_speed_pct),
            ("safe_speed_pct", p.safe_speed_pct),
        ] {
            if v > p.max_speed_pct {
                k.fail(
                    format!("pump2.{key}"),
                    format!("{v} is above pump2.max_speed_pct ({})", p.max_speed_pct),
                );
            }
        }
        if p.valve_reset {
            if p.mode != PumpMode::Index {
                k.fail(
                    "pump2.valve_reset",
                    format!(
                        "the valve-position reset needs mode \"index\" (mode is {:?})",
                        p.mode.name()
                    ),
                );
            }
            let fitted =
                c.household_valves.enabled && c.rooms.nodes.iter().any(|n| n.valve_link.is_some());
            if !fitted {
                k.fail(
                    "pump2.valve_reset",
                    "needs household valves: household_valves.enabled and nodes with a valve_link",
                );
            }
        }
        if !Self::controlled(c) {
            return;
        }
        let bound = |s: Signal| c.points.signal(s).is_some();
        let needed = p.mode.measured();
        if !bound(needed) {
            k.fail(
                format!("points.{}", needed.name()),
                format!(
                    "required by pump2.mode = {:?} (points.pump2_speed_cmd is bound)",
                    p.mode.name()
                ),
            );
        }
        if p.dry_run_delay_s > 0.0 {
            let flow_guard = p.dry_run_flow_m3h > 0.0 && bound(Signal::Flow2M3h);
            let dp_guard = p.dry_run_dp_kpa > 0.0 && bound(Signal::Dp2StationKpa);
            if !flow_guard && !dp_guard {
                k.fail(
                    "pump2.dry_run_delay_s",
                    "the dry-run guard needs points.flow2 with dry_run_flow_m3h > 0 or \
                     points.dp2_station with dry_run_dp_kpa > 0 (0 here: guard off)",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Problem, parse_str};

    const BASE: &str = "[site]\nname = \"t\"\n[curve]\npoints = [{ outdoor_c = -20.0, supply_c = 70.0 }, { outdoor_c = 15.0, supply_c = 30.0 }]\n\
        [[links]]\nname = \"gw\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 1\n\
        [[devices]]\nname = \"plc\"\nlink = \"gw\"\nunit_id = 1\nmap = \"m.toml\"\n";

    fn problems(extra: &str) -> Vec<Problem> {
        match parse_str(&format!("{BASE}{extra}"), None) {
            Ok(_) => Vec::new(),
            Err(p) => p.0,
        }
    }

    /// The problem at `path` with `words`, and its line.
    fn line_of(ps: &[Problem], path: &str, words: &str) -> Option<usize> {
        ps.iter()
            .find(|p| p.path == path && p.message.contains(words) && p.column.is_some())
            .and_then(|p| p.line)
    }

    const POINTS: &str = "[points]\nt2_supply = \"plc.t2\"\nvalve1_cmd = \"plc.v\"\n";

    #[test]
    fn off_by_default_and_a_full_table_is_accepted() {
        assert!(problems(POINTS).is_empty());
        let ok = format!(
            "{POINTS}pump2_speed_cmd = \"plc.pump\"\ndp2_station = \"plc.dp\"\nflow2 = \"plc.f\"\n\
             [pump2]\nmode = \"proportional_dp\"\ndry_run_flow_m3h = 0.5\n"
        );
        let ps = problems(&ok);
        assert!(ps.is_empty(), "{ps:?}");
        let cfg = parse_str(&format!("{BASE}{POINTS}"), None).expect("valid");
        assert!(!super::Pump2::controlled(&cfg));
    }

    #[test]
    fn every_mistake_is_listed_with_its_line() {
        let text = format!(
            "{POINTS}pump2_speed_cmd = \"plc.pump\"\n\
             [pump2]\n\
             mode = \"index\"\n\
             min_speed_pct = 70\n\
             max_speed_pct = 60\n\
             ramp_pct_s = 0\n\
             safe_speed_pct = 65\n\
             index_dp_min_kpa = 50\n\
             index_dp_max_kpa = 40\n\
             valve_reset = true\n\
             dry_run_dp_kpa = 5\n"
        );
        let ps = problems(&text);
        let base_lines = BASE.lines().count();
        let line = |n: usize| Some(base_lines + n);
        // Lines of the extra text, 1-based: [points] 1, t2 2, valve1 3, pump cmd 4, [pump2] 5,
        // mode 6, min 7, max 8, ramp 9, safe 10, idx min 11, idx max 12, reset 13, dry dp 14.
        assert_eq!(
            line_of(
                &ps,
                "pump2.min_speed_pct",
                "must be below pump2.max_speed_pct"
            ),
            line(7),
            "{ps:?}"
        );
        assert_eq!(
            line_of(&ps, "pump2.ramp_pct_s", "out of range"),
            line(9),
            "{ps:?}"
        );
        assert_eq!(
            line_of(&ps, "pump2.safe_speed_pct", "above pump2.max_speed_pct"),
            line(10),
            "{ps:?}"
        );
        assert_eq!(
            line_of(&ps, "pump2.index_dp_min_kpa", "must be below"),
            line(11),
            "{ps:?}"
        );
        assert_eq!(
            line_of(&ps, "pump2.index_dp_setpoint_kpa", "must lie within"),
            line(5),
            "a default value is reported at its table: {ps:?}"
        );
        assert_eq!(
            line_of(&ps, "pump2.valve_reset", "needs household valves"),
            line(13),
            "{ps:?}"
        );
        assert_eq!(
            line_of(
                &ps,
                "points.dp2_index",
                "required by pump2.mode = \"index\""
            ),
            line(1),
            "{ps:?}"
        );
        assert_eq!(
            line_of(&ps, "pump2.dry_run_delay_s", "dry-run guard needs"),
            line(5),
            "{ps:?}"
        );
        assert_eq!(
            line_of(&ps, "pump2.fallback_speed_pct", "above pump2.max_speed_pct"),
            line(5),
            "{ps:?}"
        );
        assert_eq!(ps.len(), 9, "nothing else: {ps:?}");
    }

    #[test]
    fn the_reset_needs_the_index_mode_and_unbound_pumps_need_no_signals() {
        let text = format!(
            "{POINTS}[pump2]\nmode = \"constant_dp\"\nvalve_reset = true\n\
             [household_valves]\nenabled = true\n\
             [rooms]\nnodes = [{{ id = \"a\", link = \"gw\", unit_id = 2, valve_link = \"gw\", valve_unit_id = 3 }}]\n"
        );
        let ps = problems(&text);
        assert!(
            line_of(&ps, "pump2.valve_reset", "needs mode \"index\"").is_some(),
            "{ps:?}"
        );
        assert_eq!(
            ps.len(),
            1,
            "no signal is required while the pump is unbound: {ps:?}"
        );
        let ps = problems(&format!("{POINTS}[pump2]\nmode = \"bogus\"\n"));
        assert!(
            ps.iter()
                .any(|p| p.path == "pump2.mode" && p.line.is_some()),
            "{ps:?}"
        );
    }
}
