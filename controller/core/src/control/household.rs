//! Household (or building) valve loops: one room loop per valve, and what a valve does while its
//! room reading is lost ([`LostReading`]).

use super::demand::NodeVerdict;
use super::validation::Rejection;
use crate::config::{HouseholdValves, LostReading};

/// One valve's loop state.
#[derive(Debug, Clone, Copy)]
struct ValveLoop {
    /// Integral part, %.
    integral_pct: f64,
    /// Output (the command), %.
    out_pct: f64,
    /// The position learned under room control: the output's exponential mean, %.
    learned_pct: Option<f64>,
    /// How long the valve has been wide open with its room `rogue_k` below target, s.
    cold_open_s: f64,
    /// Time spent under room control, s (the learned position is trusted after a quarter of
    /// the learning time).
    learned_s: f64,
}

/// Time under room control after which a learned position is trusted: a quarter of the
/// learning time, s.
fn trusted_after_s(cfg: &HouseholdValves) -> f64 {
    cfg.learn_time_h * 3600.0 / 4.0
}

/// One PI loop per valve toward the room target.
#[derive(Debug, Clone, Default)]
pub struct HouseholdLoops {
    /// Per node: its valve's loop where the node has a valve.
    state: Vec<Option<ValveLoop>>,
    /// Per node: whether its loop had a valid room reading at the last run (a valve walking
    /// to its safe position or holding for want of a reading is not asking for heat).
    controlled: Vec<bool>,
    /// Per node: whether its valve is a rogue ([`HouseholdLoops::rogues`]).
    rogue: Vec<bool>,
    last_run_s: Option<f64>,
}

impl HouseholdLoops {
    /// Loops for nodes where `has_valve[i]`; they start at the safe position.
    #[must_use]
    pub fn new(has_valve: &[bool], safe_pct: f64) -> Self {
        Self {
            state: has_valve
                .iter()
                .map(|&v| {
                    v.then_some(ValveLoop {
                        integral_pct: safe_pct,
                        out_pct: safe_pct,
                        learned_pct: None,
                        cold_open_s: 0.0,
                        learned_s: 0.0,
                    })
                })
                .collect(),
            controlled: vec![false; has_valve.len()],
            rogue: vec![false; has_valve.len()],
            last_run_s: None,
        }
    }

    /// Per node: whether its valve is under room-temperature control (valve and a valid
    /// reading at the last run).
    #[must_use]
    pub fn controlled(&self) -> &[bool] {
        &self.controlled
    }

    /// Outputs, % (`None` where no valve).
    #[must_use]
    pub fn outputs(&self) -> Vec<Option<f64>> {
        self.state.iter().map(|s| s.map(|v| v.out_pct)).collect()
    }

    /// Per node: the position its valve learned under room control, % (`None`: no valve, or
    /// not learned long enough to be trusted).
    #[must_use]
    pub fn learned(&self, cfg: &HouseholdValves) -> Vec<Option<f64>> {
        let trusted_s = trusted_after_s(cfg);
        self.state
            .iter()
            .map(|s| s.and_then(|v| v.learned_pct.filter(|_| v.learned_s >= trusted_s)))
            .collect()
    }

    /// Per node: whether its valve is a rogue: wide open for `rogue_after_h` with its room still
    /// `rogue_k` below target (a node lying cold, or a home the supply cannot reach: a window
    /// left open, a blocked radiator). A rogue valve asks trim and respond for nothing.
    #[must_use]
    pub fn rogues(&self) -> &[bool] {
        &self.rogue
    }

    /// Run the loops if a period has passed. `rooms[i]` is the validated room temperature,
    /// `verdicts[i]` the node's verdict (a node found stuck or an outlier has its learned
    /// position forgotten: it was learned from readings that may have been wrong all along).
    pub fn update(
        &mut self,
        cfg: &HouseholdValves,
        now_s: f64,
        rooms: &[Option<f64>],
        verdicts: &[NodeVerdict],
    ) {
        let dt = match self.last_run_s {
            Some(t) if now_s - t < cfg.period_s => return,
            Some(t) => (now_s - t).min(2.0 * cfg.period_s),
            None => cfg.period_s,
        };
        self.last_run_s = Some(now_s);
        let max_step = cfg.max_rate_pct_per_h * dt / 3600.0;
        let hold = cfg.lost_reading == LostReading::HoldLearned;
        let trusted_s = trusted_after_s(cfg);
        if self.rogue.len() != self.state.len() {
            self.rogue = vec![false; self.state.len()];
        }
        let alpha = 1.0 - (-dt / (cfg.learn_time_h * 3600.0)).exp();
        for (i, slot) in self.state.iter_mut().enumerate() {
            let Some(v) = slot else {
                continue;
            };
            let reading = rooms.get(i).copied().flatten();
            if matches!(
                verdicts.get(i),
                Some(NodeVerdict::Rejected(Rejection::Stuck) | NodeVerdict::Outlier)
            ) {
                v.learned_pct = None;
                v.learned_s = 0.0;
            }
            let cold_open =
                reading.is_some_and(|t| t < cfg.target_c - cfg.rogue_k) && v.out_pct >= 99.0;
            v.cold_open_s = if cold_open { v.cold_open_s + dt } else { 0.0 };
            self.rogue[i] = v.cold_open_s > cfg.rogue_after_h * 3600.0;
            if let Some(c) = self.controlled.get_mut(i) {
                *c = reading.is_some() && !self.rogue[i];
            }
            let (p_part, target_u) = match reading {
                Some(t) => {
                    let e = cfg.target_c - t;
                    let p = cfg.kp_pct_per_k * e;
                    let i_new = if cfg.ti_s > 0.0 {
                        v.integral_pct + cfg.kp_pct_per_k * e * dt / cfg.ti_s
                    } else {
                        0.0
                    };
                    (Some(p), p + i_new)
                }
                // No valid reading: hold what was learned, opened by the bias; the safe
                // position when nothing was learned or so configured.
                None => {
                    let known = v.learned_pct.filter(|_| hold && v.learned_s >= trusted_s);
                    let u = known.map_or(cfg.safe_position_pct, |l| l + cfg.lost_open_bias_pct);
                    (None, u)
                }
            };
            let wanted = target_u.clamp(cfg.min_opening_pct, 100.0);
            let u = wanted
                .clamp(v.out_pct - max_step, v.out_pct + max_step)
                .clamp(cfg.min_opening_pct, 100.0);
            // Tracking anti-windup.
            v.integral_pct = match p_part {
                Some(p) => u - p,
                None => u,
            };
            v.out_pct = u;
            if p_part.is_some() {
                v.learned_pct = Some(v.learned_pct.map_or(u, |l| l + alpha * (u - l)));
                v.learned_s += dt;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn household_loop_closes_a_warm_home_down_to_the_minimum() {
        let cfg = HouseholdValves {
            enabled: true,
            ..HouseholdValves::default()
        };
        let mut l = HouseholdLoops::new(&[true, false, true], 100.0);
        let mut t = 0.0;
        for _ in 0..200 {
            l.update(&cfg, t, &[Some(24.0), Some(24.0), Some(17.0)], &used(3));
            t += cfg.period_s;
        }
        let out = l.outputs();
        assert_eq!(out[0], Some(cfg.min_opening_pct));
        assert_eq!(out[1], None);
        assert_eq!(out[2], Some(100.0));
    }

    #[test]
    fn household_loop_is_rate_limited_and_goes_safe_without_reading() {
        let cfg = HouseholdValves {
            enabled: true,
            lost_reading: LostReading::SafePosition,
            ..HouseholdValves::default()
        };
        let mut l = HouseholdLoops::new(&[true], 50.0);
        l.update(&cfg, 0.0, &[Some(30.0)], &used(1));
        let step = cfg.max_rate_pct_per_h * cfg.period_s / 3600.0;
        assert!((l.outputs()[0].unwrap() - (50.0 - step)).abs() < 1e-9);
        for i in 1..100 {
            l.update(&cfg, f64::from(i) * cfg.period_s, &[None], &used(1));
        }
        assert_eq!(l.outputs()[0], Some(cfg.safe_position_pct));
    }

    #[test]
    fn a_valve_without_reading_is_not_under_control() {
        let cfg = HouseholdValves {
            enabled: true,
            ..HouseholdValves::default()
        };
        let mut l = HouseholdLoops::new(&[true, true, false], 100.0);
        l.update(&cfg, 0.0, &[Some(20.0), None, Some(20.0)], &used(3));
        assert_eq!(l.controlled(), &[true, false, false]);
    }

    /// `n` verdicts, every node used.
    fn used(n: usize) -> Vec<NodeVerdict> {
        vec![NodeVerdict::Used; n]
    }

    #[test]
    fn a_lost_reading_holds_the_learned_position_or_goes_safe() {
        let cfg = HouseholdValves {
            enabled: true,
            ..HouseholdValves::default()
        };
        // Valve 0 sits at 40 % under control (its room at target); valve 1 never reads.
        let mut l = HouseholdLoops::new(&[true, true], 40.0);
        let periods = (cfg.learn_time_h * 3600.0 / 4.0 / cfg.period_s) as usize + 2;
        let mut t = 0.0;
        for _ in 0..periods {
            l.update(&cfg, t, &[Some(cfg.target_c), None], &used(2));
            t += cfg.period_s;
        }
        assert_eq!(l.learned(&cfg), vec![Some(40.0), None]);
        // Then valve 0 loses its reading too: it holds what it learned, opened by the bias;
        // valve 1, which learned nothing, is at its safe position.
        for _ in 0..100 {
            l.update(&cfg, t, &[None, None], &used(2));
            t += cfg.period_s;
        }
        let out = l.outputs();
        assert!(
            (out[0].unwrap() - (40.0 + cfg.lost_open_bias_pct)).abs() < 1e-9,
            "{out:?}"
        );
        assert_eq!(out[1], Some(cfg.safe_position_pct));
        assert_eq!(l.controlled(), &[false, false]);
        // Found stuck: what it learned is forgotten, and it goes safe.
        let stuck = [NodeVerdict::Rejected(Rejection::Stuck), NodeVerdict::Used];
        for _ in 0..100 {
            l.update(&cfg, t, &[None, None], &stuck);
            t += cfg.period_s;
        }
        assert_eq!(l.learned(&cfg)[0], None);
        assert_eq!(l.outputs()[0], Some(cfg.safe_position_pct));
        // The same history with lost_reading = safe_position: both valves go safe.
        let safe = HouseholdValves {
            lost_reading: LostReading::SafePosition,
            ..cfg.clone()
        };
        let mut l = HouseholdLoops::new(&[true, true], 40.0);
        let mut t = 0.0;
        for _ in 0..periods {
            l.update(&safe, t, &[Some(safe.target_c), None], &used(2));
            t += safe.period_s;
        }
        for _ in 0..100 {
            l.update(&safe, t, &[None, None], &used(2));
            t += safe.period_s;
        }
        assert_eq!(l.outputs(), vec![Some(safe.safe_position_pct); 2]);
    }

    #[test]
    fn a_valve_wide_open_on_a_room_that_stays_cold_becomes_a_rogue() {
        let cfg = HouseholdValves {
            enabled: true,
            ..HouseholdValves::default()
        };
        let cold = cfg.target_c - cfg.rogue_k - 0.5;
        let near = cfg.target_c - 0.5;
        let mut l = HouseholdLoops::new(&[true, true], 100.0);
        let periods = (cfg.rogue_after_h * 3600.0 / cfg.period_s) as usize;
        let mut t = 0.0;
        for _ in 0..periods {
            l.update(&cfg, t, &[Some(cold), Some(near)], &used(2));
            t += cfg.period_s;
        }
        assert_eq!(l.rogues(), &[false, false], "not yet");
        assert_eq!(l.controlled(), &[true, true]);
        for _ in 0..2 {
            l.update(&cfg, t, &[Some(cold), Some(near)], &used(2));
            t += cfg.period_s;
        }
        assert_eq!(l.rogues(), &[true, false]);
        assert_eq!(l.controlled(), &[false, true], "a rogue asks for nothing");
        assert_eq!(l.outputs()[0], Some(100.0), "but stays under its loop");
        // Its room warms up: it is no longer a rogue.
        l.update(&cfg, t, &[Some(near), Some(near)], &used(2));
        assert_eq!(l.rogues(), &[false, false]);
    }

    #[test]
    fn with_trim_and_respond_the_percentile_loop_is_a_floor_below_the_household_target() {
        let text = |hh: bool, vd: bool| {
            let text = format!(
                "[site]\nname = \"t\"\n\
                 [curve]\npoints = [{{ outdoor_c = -20.0, supply_c = 75.0 }}, \
                 {{ outdoor_c = 18.0, supply_c = 25.0 }}]\n\
                 [household_valves]\nenabled = {hh}\n"
            );
            let mut cfg = crate::config::parse_str(&text, None).expect("valid");
            let mut node = crate::config::RoomNode::new("a", "gw", 2);
            node.valve_link = Some("gw".into());
            node.valve_unit_id = Some(3);
            cfg.rooms.nodes = vec![node];
            cfg.valve_demand.enabled = vd;
            cfg
        };
        let cfg = text(true, true);
        let d = crate::control::demand_config(&cfg);
        let hv = &cfg.household_valves;
        assert!((d.target_c - (hv.target_c - hv.percentile_floor_margin_k)).abs() < 1e-12);
        assert!(
            d.min_shift_k.abs() < 1e-12,
            "it only raises: {}",
            d.min_shift_k
        );
        assert!((d.max_shift_k - cfg.demand.max_shift_k).abs() < 1e-12);
        // The floor is the readings' percentile, not the coldest estimate (whose margin for lost
        // flats would heat every home for a flat whose valve already holds its position).
        assert_eq!(cfg.demand.measure, crate::config::DemandMeasure::Coldest);
        assert_eq!(d.measure, crate::config::DemandMeasure::Percentile);
        // Without the valve loops, without trim and respond, or with the floor off: [demand].
        for (hh, vd) in [(false, true), (true, false)] {
            let cfg = text(hh, vd);
            assert_eq!(crate::control::demand_config(&cfg), cfg.demand);
        }
        let mut cfg = cfg.clone();
        cfg.household_valves.percentile_floor = false;
        assert_eq!(crate::control::demand_config(&cfg), cfg.demand);
    }
}
