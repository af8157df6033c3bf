//! Valve-position demand (`[valve_demand]`): trim and respond on the household valves'
//! positions moves the curve shift.

use super::image::Sample;
use crate::config::{SignalLimits, ValveDemand};

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
    /// counts (valves driven by their own thermostats). `may_lower`: whether a trim can lower
    /// the supply (false while heating is off or the setpoint sits at its lowest clamp: the shift
    /// then holds instead of winding down to its bound, and answers at once when heat is asked
    /// for again).
    pub fn update(
        &mut self,
        cfg: &ValveDemand,
        now_s: f64,
        positions: &[Option<Sample>],
        limits: SignalLimits,
        counts: Option<&[bool]>,
        may_lower: bool,
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
        let (mut usable_count, mut requests) = (0_usize, 0_usize);
        for s in positions
            .iter()
            .enumerate()
            .filter(|(i, _)| counts.is_none_or(|c| c.get(*i).copied().unwrap_or(false)))
            .filter_map(|(_, s)| s.filter(usable))
        {
            usable_count += 1;
            requests += usize::from(s.value >= cfg.request_above_pct);
        }
        if usable_count == 0 {
            return; // nothing to go on: hold
        }
        self.requests = requests;
        let ignored = cfg.ignored(usable_count);
        let delta = if self.requests > ignored {
            (cfg.respond_k_per_request * (self.requests - ignored) as f64).min(cfg.max_respond_k)
        } else if may_lower {
            cfg.trim_k
        } else {
            0.0
        };
        self.shift_k = (self.shift_k + delta).clamp(cfg.min_shift_k, cfg.max_shift_k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        tr.update(&cfg, 0.0, &open(1), lim, None, true);
        assert!(
            (tr.shift_k() - cfg.trim_k).abs() < 1e-12,
            "few requests: trim"
        );
        tr.update(&cfg, cfg.period_s, &open(6), lim, None, true);
        assert!(
            (tr.shift_k() - (cfg.trim_k + 0.4)).abs() < 1e-9,
            "4 requests beyond 2 ignored"
        );
        tr.update(&cfg, 2.0 * cfg.period_s, &[None; 10], lim, None, true);
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
        tr.update(&cfg, 0.0, &positions, lim, Some(&counts), true);
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
        tr.update(&cfg, 0.0, &fresh, lim, Some(&[true; 7]), true);
        assert_eq!(tr.requests, 6);
        assert!(tr.shift_k() > 0.0);
    }

    #[test]
    fn no_trim_while_it_cannot_lower_and_requests_scale_with_the_valves() {
        let cfg = ValveDemand {
            enabled: true,
            ignored_requests: 2,
            ignored_requests_pct: 5.0,
            ..ValveDemand::default()
        };
        let lim = limits();
        let valves = |n: usize, open: usize| -> Vec<Option<Sample>> {
            (0..n)
                .map(|i| Some(Sample::fresh(if i < open { 100.0 } else { 40.0 })))
                .collect()
        };
        // Nothing asked, but the setpoint cannot go lower: the shift holds.
        let mut tr = TrimRespond::default();
        tr.update(&cfg, 0.0, &valves(10, 0), lim, None, false);
        assert!(tr.shift_k().abs() < 1e-12, "{}", tr.shift_k());
        tr.update(&cfg, cfg.period_s, &valves(10, 0), lim, None, true);
        assert!((tr.shift_k() - cfg.trim_k).abs() < 1e-12);
        // 10 valves: 5 % is less than the 2 ignored, so 3 requests are one beyond.
        let mut tr = TrimRespond::default();
        tr.update(&cfg, 0.0, &valves(10, 3), lim, None, true);
        assert!((tr.shift_k() - cfg.respond_k_per_request).abs() < 1e-9);
        // 200 valves: 5 % ignores 10; 10 requests trim, 12 respond for 2.
        let mut tr = TrimRespond::default();
        tr.update(&cfg, 0.0, &valves(200, 10), lim, None, true);
        assert!((tr.shift_k() - cfg.trim_k).abs() < 1e-12);
        let mut tr = TrimRespond::default();
        tr.update(&cfg, 0.0, &valves(200, 12), lim, None, true);
        assert!((tr.shift_k() - 2.0 * cfg.respond_k_per_request).abs() < 1e-9);
    }
}
