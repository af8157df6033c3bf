//! Experimental strategies that walk from O2pi (a PI on the true coldest flat of all flats,
//! every minute) to heatctl's demand loop one step at a time, to show which step loses the
//! capture aim. Not in the default scorecard: selectable by name with `--strategies` only
//! (hil-tests/SEASON.md, "What limits capture").
//!
//! The steps are cumulative, each adding one of heatctl's limits to the previous one:
//!
//! | step | name | what the PI sees / does |
//! |---|---|---|
//! | 0 | `O2pi_all` | O2pi's law at the trial target: true coldest of all flats, every minute |
//! | 1 | `O2pi_sensed` | true coldest of the flats with a room node only |
//! | 2 | `O2pi_sampled` | ... sampled when each node reports (every 10 min), held between |
//! | 3 | `O2pi_noisy` | ... the node's published reading (its bias and noise) |
//! | 4 | `O2pi_period` | ... the PI run every `[demand] period_s` (heatctl: 5 min) |
//! | 5 | `O2pi_slow` | ... its shift limited to `[demand] max_rate_k_per_h` (heatctl: 1.5 K/h) |
//! | 6 | `O2pi_composite` | ... heatctl's curve input (composite outdoor) and summer cut-off |
//! | 7 | `O2pi_gains` | ... heatctl's gain and integral time (`[demand]`) |
//!
//!
//! `O2pi_valve` branches off at step 4: `O2pi_period` with heatctl's own primary valve loop
//! (`[valve1]`) following the setpoint instead of the plant's perfect supply control.
//!
//! Every step holds `[demand] target_c` (so a `--config` copy moves it); steps 0-6 use O2pi's
//! gains (12 K/K, 0.5 h).

use heatctl::config::Demand;
use heatctl_plant::Plant;

use super::{PerfectSubstation, SupplyLimits, conditional_pi_k};

/// One step of the walk from O2pi to heatctl's demand loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PiStep {
    /// O2pi's law at the trial target: the true coldest of all flats, every minute.
    All,
    /// The true coldest of the sensed flats only.
    Sensed,
    /// ... sampled as the nodes report.
    Sampled,
    /// ... the nodes' published readings (bias, noise).
    Noisy,
    /// ... run every `[demand] period_s`.
    Period,
    /// ... its shift rate-limited by `max_rate_k_per_h`.
    Slow,
    /// ... composite outdoor as the curve's input, summer cut-off on.
    Composite,
    /// ... heatctl's gain and integral time.
    Gains,
    /// A branch off `Period`: heatctl's primary valve loop follows the setpoint instead of
    /// perfect supply control.
    Valve,
}

impl PiStep {
    /// Every step, in order.
    pub const ALL: [PiStep; 9] = [
        PiStep::All,
        PiStep::Sensed,
        PiStep::Sampled,
        PiStep::Noisy,
        PiStep::Period,
        PiStep::Slow,
        PiStep::Composite,
        PiStep::Gains,
        PiStep::Valve,
    ];

    /// Its strategy name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            PiStep::All => "O2pi_all",
            PiStep::Sensed => "O2pi_sensed",
            PiStep::Sampled => "O2pi_sampled",
            PiStep::Noisy => "O2pi_noisy",
            PiStep::Period => "O2pi_period",
            PiStep::Slow => "O2pi_slow",
            PiStep::Composite => "O2pi_composite",
            PiStep::Gains => "O2pi_gains",
            PiStep::Valve => "O2pi_valve",
        }
    }

    /// The step of a name (case-insensitive).
    #[must_use]
    pub fn parse(s: &str) -> Option<PiStep> {
        PiStep::ALL
            .into_iter()
            .find(|x| x.name().eq_ignore_ascii_case(s.trim()))
    }

    fn index(self) -> usize {
        // The valve branch has the limits of `Period`.
        let s = if self == PiStep::Valve {
            PiStep::Period
        } else {
            self
        };
        PiStep::ALL.iter().position(|x| *x == s).unwrap_or(0)
    }

    /// Whether heatctl's primary valve loop drives the plant's valve (else perfect supply
    /// control puts the supply at the setpoint).
    #[must_use]
    pub fn drives_valve(self) -> bool {
        self == PiStep::Valve
    }

    /// Whether this step has reached `other` (the steps are cumulative).
    fn has(self, other: PiStep) -> bool {
        self.index() >= other.index()
    }

    /// Whether the controller keeps heatctl's curve input and summer cut-off (else, as O2pi,
    /// the actual outdoor temperature and no cut-off).
    #[must_use]
    pub fn keeps_curve_input(self) -> bool {
        self.has(PiStep::Composite)
    }
}

/// What the trial PI carries from one step to the next.
#[derive(Debug, Clone)]
pub struct PiTrialState {
    step: PiStep,
    kp_k_per_k: f64,
    ti_h: f64,
    target_c: f64,
    period_s: f64,
    rate_k_per_h: Option<f64>,
    /// Each node's held value, °C (None before its first report).
    held: Vec<Option<f64>>,
    /// Each node's publication counter when last sampled.
    counters: Vec<Option<u16>>,
    integral_k: f64,
    shift_k: f64,
    last_run_s: Option<f64>,
}

impl PiTrialState {
    /// A trial of `step` for `plant`, with O2pi's gains and heatctl's `[demand]` settings.
    #[must_use]
    pub fn new(step: PiStep, plant: &Plant, perfect: &PerfectSubstation, demand: &Demand) -> Self {
        let n = plant.room_node_count();
        let (kp, ti) = if step.has(PiStep::Gains) {
            (demand.gain_k_per_k, demand.integral_time_h)
        } else {
            (perfect.kp_k_per_k, perfect.ti_h)
        };
        Self {
            step,
            kp_k_per_k: kp,
            ti_h: ti,
            target_c: demand.target_c,
            period_s: if step.has(PiStep::Period) {
                demand.period_s
            } else {
                0.0
            },
            rate_k_per_h: step.has(PiStep::Slow).then_some(demand.max_rate_k_per_h),
            held: vec![None; n],
            counters: vec![None; n],
            integral_k: 0.0,
            shift_k: 0.0,
            last_run_s: None,
        }
    }

    /// The coldest flat as this step sees it now, °C.
    fn measured_c(&mut self, plant: &Plant) -> Option<f64> {
        let air = plant.apartment_air_c();
        if !self.step.has(PiStep::Sensed) {
            return air.iter().copied().reduce(f64::min);
        }
        for k in 0..self.held.len() {
            let Some(r) = plant.room_node(k) else {
                continue;
            };
            let true_c = air.get(r.apartment).copied();
            if !self.step.has(PiStep::Sampled) {
                self.held[k] = true_c;
            } else if self.counters[k] != Some(r.sample_counter) {
                self.counters[k] = Some(r.sample_counter);
                self.held[k] = if self.step.has(PiStep::Noisy) {
                    r.temperature_c
                } else {
                    true_c
                };
            }
        }
        self.held.iter().flatten().copied().reduce(f64::min)
    }

    /// The shift for the coming step, K (None: no reading yet; the last shift stays).
    /// `now_s` is the season time, `dt_s` the control step, `last_setpoint_c` the setpoint
    /// of the last step (None: heating off).
    pub fn shift_k(
        &mut self,
        plant: &Plant,
        now_s: f64,
        dt_s: f64,
        last_setpoint_c: Option<f64>,
        limits: SupplyLimits,
    ) -> Option<f64> {
        let measured = self.measured_c(plant)?;
        let dt = match self.last_run_s {
            Some(t) if now_s - t + 1e-6 < self.period_s => return Some(self.shift_k),
            Some(t) => (now_s - t).max(dt_s),
            None => dt_s,
        };
        self.last_run_s = Some(now_s);
        // O2pi's PI; heating off counts as the low clamp.
        let target = conditional_pi_k(
            &mut self.integral_k,
            self.kp_k_per_k,
            self.ti_h,
            self.target_c - measured,
            dt,
            last_setpoint_c.is_none_or(|sp| limits.at_min(sp)),
            last_setpoint_c.is_some_and(|sp| limits.at_max(sp)),
        );
        self.shift_k = match self.rate_k_per_h {
            Some(r) => {
                let max_step = r * dt / 3600.0;
                target.clamp(self.shift_k - max_step, self.shift_k + max_step)
            }
            None => target,
        };
        Some(self.shift_k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_steps_are_cumulative() {
        for s in PiStep::ALL {
            assert_eq!(PiStep::parse(s.name()), Some(s));
            assert_eq!(PiStep::parse(&s.name().to_uppercase()), Some(s));
        }
        assert_eq!(PiStep::parse("O2pi"), None);
        assert!(PiStep::Noisy.has(PiStep::Sensed));
        assert!(PiStep::Noisy.has(PiStep::Sampled));
        assert!(!PiStep::Noisy.has(PiStep::Period));
        assert!(PiStep::Slow.has(PiStep::Period));
        assert!(!PiStep::Slow.keeps_curve_input());
        assert!(PiStep::Gains.keeps_curve_input());
        assert!(PiStep::Valve.has(PiStep::Period) && !PiStep::Valve.has(PiStep::Slow));
        assert!(PiStep::Valve.drives_valve() && !PiStep::Gains.drives_valve());
    }
}
