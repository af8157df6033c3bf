//! Household (or building) valve loops and trim-and-respond on their positions.

use super::image::Sample;
use crate::config::{HouseholdValves, SignalLimits, ValveDemand};

/// One slow PI loop per valve toward the room target.
#[derive(Debug, Clone, Default)]
pub struct HouseholdLoops {
    /// Per node: `Some((integral %, output %))` where the node has a valve.
    state: Vec<Option<(f64, f64)>>,
    /// Per node: whether its loop had a valid room reading at the last run (a valve walking
    /// to its safe position for want of a reading is not asking for heat).
    controlled: Vec<bool>,
    last_run_s: Option<f64>,
}

impl HouseholdLoops {
    /// Loops for nodes where `has_valve[i]`; they start at the safe position.
    #[must_use]
    pub fn new(has_valve: &[bool], safe_pct: f64) -> Self {
        Self {
            state: has_valve
                .iter()
                .map(|&v| v.then_some((safe_pct, safe_pct)))
                .collect(),
            controlled: vec![false; has_valve.len()],
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
        self.state.iter().map(|s| s.map(|(_, u)| u)).collect()
    }

    /// Run the loops if a period has passed. `rooms[i]` is the validated room temperature.
    pub fn update(&mut self, cfg: &HouseholdValves, now_s: f64, rooms: &[Option<f64>]) {
        let dt = match self.last_run_s {
            Some(t) if now_s - t < cfg.period_s => return,
            Some(t) => (now_s - t).min(2.0 * cfg.period_s),
            None => cfg.period_s,
        };
        self.last_run_s = Some(now_s);
        let max_step = cfg.max_rate_pct_per_h * dt / 3600.0;
        for (i, slot) in self.state.iter_mut().enumerate() {
            let Some((integral, out)) = slot else {
                continue;
            };
            let reading = rooms.get(i).copied().flatten();
            if let Some(c) = self.controlled.get_mut(i) {
                *c = reading.is_some();
            }
            let (new_i, target_u) = match reading {
                Some(t) => {
                    let e = cfg.target_c - t;
                    let p = cfg.kp_pct_per_k * e;
                    let i_new = if cfg.ti_s > 0.0 {
                        *integral + cfg.kp_pct_per_k * e * dt / cfg.ti_s
                    } else {
                        0.0
                    };
                    (Some(p), p + i_new)
                }
                // No valid reading: walk to the safe position.
                None => (None, cfg.safe_position_pct),
            };
            let wanted = target_u.clamp(cfg.min_opening_pct, 100.0);
            let u = wanted
                .clamp(*out - max_step, *out + max_step)
                .clamp(cfg.min_opening_pct, 100.0);
            // Tracking anti-windup.
            *integral = match new_i {
                Some(p) => u - p,
                None => u,
            };
            *out = u;
        }
    }
}

/// Trim and respond (ASHRAE Guideline 36) on valve positions.
#[derive(Debug, Clone, Default)]
pub struct TrimRespond {
    shift_k: f64,
    last_run_s: Option<f64>,
    /// Requests counted in the last run.
    pub requests: usize,
}

impl TrimRespond {
    /// The current shift, K.
    #[must_use]
    pub fn shift_k(&self) -> f64 {
        self.shift_k
    }

    /// Start from a saved shift (restart), K.
    pub fn restore_shift_k(&mut self, cfg: &ValveDemand, shift_k: f64) {
        if shift_k.is_finite() {
            self.shift_k = shift_k.clamp(cfg.min_shift_k, cfg.max_shift_k);
        }
    }

    /// Run if a period has passed. `positions[i]` is valve `i`'s reported position; it counts
    /// only when valid, within `limits` (range, max age) and, when `counts` is given,
    /// `counts[i]` is true (the valve is under room control: one walking to its safe position
    /// for want of a reading, or a node without a loop, asks for nothing). `None`: every valve
    /// counts (valves driven by their own thermostats).
    pub fn update(
        &mut self,
        cfg: &ValveDemand,
        now_s: f64,
        positions: &[Option<Sample>],
        limits: SignalLimits,
        counts: Option<&[bool]>,
    ) {
        if !cfg.enabled {
            self.shift_k = 0.0;
            return;
        }
        match self.last_run_s {
            Some(t) if now_s - t < cfg.period_s => return,
            _ => self.last_run_s = Some(now_s),
        }
        let usable = |s: &Sample| {
            s.valid
                && s.value.is_finite()
                && (limits.valid_min..=limits.valid_max).contains(&s.value)
                && s.age_s <= limits.max_age_s
        };
        let valid: Vec<f64> = positions
            .iter()
            .enumerate()
            .filter(|(i, _)| counts.is_none_or(|c| c.get(*i).copied().unwrap_or(false)))
            .filter_map(|(_, s)| s.filter(usable))
            .map(|s| s.value)
            .collect();
        if valid.is_empty() {
            return; // nothing to go on: hold
        }
        self.requests = valid
            .iter()
            .filter(|&&v| v >= cfg.request_above_pct)
            .count();
        let ignored = cfg.ignored_requests as usize;
        let delta = if self.requests > ignored {
            (cfg.respond_k_per_request * (self.requests - ignored) as f64).min(cfg.max_respond_k)
        } else {
            cfg.trim_k
        };
        self.shift_k = (self.shift_k + delta).clamp(cfg.min_shift_k, cfg.max_shift_k);
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
            l.update(&cfg, t, &[Some(24.0), Some(24.0), Some(17.0)]);
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
            ..HouseholdValves::default()
        };
        let mut l = HouseholdLoops::new(&[true], 50.0);
        l.update(&cfg, 0.0, &[Some(30.0)]);
        let step = cfg.max_rate_pct_per_h * cfg.period_s / 3600.0;
        assert!((l.outputs()[0].unwrap() - (50.0 - step)).abs() < 1e-9);
        for i in 1..100 {
            l.update(&cfg, f64::from(i) * cfg.period_s, &[None]);
        }
        assert_eq!(l.outputs()[0], Some(cfg.safe_position_pct));
    }

    #[test]
    fn trim_and_respond() {
        let cfg = ValveDemand {
            enabled: true,
            ..ValveDemand::default()
        };
        let mut tr = TrimRespond::default();
        let open = |n: usize| -> Vec<Option<Sample>> {
            (0..10)
                .map(|i| Some(Sample::fresh(if i < n { 100.0 } else { 40.0 })))
                .collect()
        };
        let lim = limits();
        tr.update(&cfg, 0.0, &open(1), lim, None);
        assert!(
            (tr.shift_k() - cfg.trim_k).abs() < 1e-12,
            "few requests: trim"
        );
        tr.update(&cfg, cfg.period_s, &open(6), lim, None);
        assert!(
            (tr.shift_k() - (cfg.trim_k + 0.4)).abs() < 1e-9,
            "4 requests beyond 2 ignored"
        );
        tr.update(&cfg, 2.0 * cfg.period_s, &[None; 10], lim, None);
        assert!(
            (tr.shift_k() - (cfg.trim_k + 0.4)).abs() < 1e-9,
            "no data: hold"
        );
    }

    fn limits() -> SignalLimits {
        SignalLimits {
            valid_min: 0.0,
            valid_max: 100.0,
            max_age_s: 1_800.0,
            stuck_after_s: 0.0,
            stuck_tolerance: 0.0,
            max_rate_per_s: 0.0,
        }
    }

    #[test]
    fn trim_and_respond_ignores_stale_out_of_range_and_uncontrolled_valves() {
        let cfg = ValveDemand {
            enabled: true,
            ..ValveDemand::default()
        };
        let lim = limits();
        // Six valves wide open: but two are stale, one reads 140 %, and two walk to their
        // safe position for want of a room reading. One real request is left: trim.
        let positions: Vec<Option<Sample>> = vec![
            Some(Sample::fresh(100.0)),
            Some(Sample::aged(100.0, 3_600.0)),
            Some(Sample::aged(100.0, 7_200.0)),
            Some(Sample::fresh(140.0)),
            Some(Sample::fresh(100.0)),
            Some(Sample::fresh(100.0)),
            Some(Sample::fresh(40.0)),
        ];
        let counts = [true, true, true, true, false, false, true];
        let mut tr = TrimRespond::default();
        tr.update(&cfg, 0.0, &positions, lim, Some(&counts));
        assert_eq!(tr.requests, 1);
        assert!(
            (tr.shift_k() - cfg.trim_k).abs() < 1e-12,
            "{}",
            tr.shift_k()
        );
        // The same valves, all fresh, in range and controlled: five requests, a response.
        let fresh: Vec<Option<Sample>> = (0..6)
            .map(|_| Some(Sample::fresh(100.0)))
            .chain([Some(Sample::fresh(40.0))])
            .collect();
        let mut tr = TrimRespond::default();
        tr.update(&cfg, 0.0, &fresh, lim, Some(&[true; 7]));
        assert_eq!(tr.requests, 6);
        assert!(tr.shift_k() > 0.0);
    }

    #[test]
    fn a_valve_without_reading_is_not_under_control() {
        let cfg = HouseholdValves {
            enabled: true,
            ..HouseholdValves::default()
        };
        let mut l = HouseholdLoops::new(&[true, true, false], 100.0);
        l.update(&cfg, 0.0, &[Some(20.0), None, Some(20.0)]);
        assert_eq!(l.controlled(), &[true, false, false]);
    }
}
