//! Household (or building) valve loops: one slow room loop per valve.

use crate::config::HouseholdValves;

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
