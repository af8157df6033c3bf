//! Outdoor temperature: damped (EN 12098), composite (Siemens RVD style), and the fallback when
//! the sensor is lost.

use super::commands::OutdoorSource;
use crate::config::{Outdoor, OutdoorInput};

/// The outdoor temperatures of one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutdoorTemps {
    /// Value used as "actual": measured, held or fallback, °C.
    pub actual_c: f64,
    /// Damped, °C.
    pub damped_c: f64,
    /// Composite, °C.
    pub composite_c: f64,
    /// The one that drives the curve, °C.
    pub curve_input_c: f64,
    /// The forecast's pull on the curve input, K: `forecast_weight` x (forecast - actual) while a
    /// valid forecast is at hand and the weight is above 0, else 0 (included in `composite_c`
    /// and in `curve_input_c` when that is "composite" or "actual").
    pub forecast_pull_k: f64,
    /// Where `actual_c` came from.
    pub source: OutdoorSource,
}

/// Outdoor temperature processing state.
#[derive(Debug, Clone)]
pub struct OutdoorFilter {
    cfg: Outdoor,
    damped_c: Option<f64>,
    last_good: Option<(f64, f64)>,
}

impl OutdoorFilter {
    /// A filter with this configuration.
    #[must_use]
    pub fn new(cfg: &Outdoor) -> Self {
        Self {
            cfg: cfg.clone(),
            damped_c: None,
            last_good: None,
        }
    }

    /// Replace the configuration, keeping the damped value.
    pub fn set_config(&mut self, cfg: &Outdoor) {
        self.cfg = cfg.clone();
    }

    /// The damped temperature, if one has been formed, °C.
    #[must_use]
    pub fn damped_c(&self) -> Option<f64> {
        self.damped_c
    }

    /// Start from a saved damped temperature (restart), °C.
    pub fn restore_damped_c(&mut self, damped_c: f64) {
        if damped_c.is_finite() {
            self.damped_c = Some(damped_c);
        }
    }

    /// Advance by `dt_s` with the validated measurement and forecast (`None` when invalid).
    pub fn update(
        &mut self,
        now_s: f64,
        dt_s: f64,
        measured: Option<f64>,
        forecast: Option<f64>,
    ) -> OutdoorTemps {
        let (actual, source) = match measured {
            Some(v) => {
                self.last_good = Some((v, now_s));
                (v, OutdoorSource::Measured)
            }
            None => match self.last_good {
                Some((v, t)) if now_s - t <= self.cfg.hold_last_good_s => (v, OutdoorSource::Held),
                _ => (self.cfg.fallback_c, OutdoorSource::Fallback),
            },
        };
        let tau_s = self.cfg.building_time_constant_h * 3600.0;
        let damped = match self.damped_c {
            None => actual,
            Some(d) => d + (actual - d) * (1.0 - (-dt_s / tau_s).exp()),
        };
        self.damped_c = Some(damped);
        // Feed-forward: only a measured (or held) actual is pulled toward the forecast; with the
        // fallback in force the curve must not be steered by a forecast alone.
        let forecast_pull_k = match forecast {
            Some(f) if self.cfg.forecast_weight > 0.0 && source != OutdoorSource::Fallback => {
                self.cfg.forecast_weight * (f - actual)
            }
            _ => 0.0,
        };
        let ahead = actual + forecast_pull_k;
        let w = self.cfg.composite_actual_weight;
        let composite = w * ahead + (1.0 - w) * damped;
        let curve_input_c = match self.cfg.curve_input {
            OutdoorInput::Composite => composite,
            OutdoorInput::Damped => damped,
            OutdoorInput::Actual => ahead,
        };
        OutdoorTemps {
            actual_c: actual,
            damped_c: damped,
            composite_c: composite,
            curve_input_c,
            forecast_pull_k,
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Outdoor {
        Outdoor {
            building_time_constant_h: 10.0,
            composite_actual_weight: 0.5,
            curve_input: OutdoorInput::Composite,
            hold_last_good_s: 3600.0,
            fallback_c: -5.0,
            forecast_weight: 0.0,
        }
    }

    #[test]
    fn damped_follows_a_step_with_the_time_constant() {
        let mut f = OutdoorFilter::new(&cfg());
        f.update(0.0, 0.0, Some(0.0), None);
        let mut t = 0.0;
        let mut out = None;
        while t < 36_000.0 {
            t += 60.0;
            out = Some(f.update(t, 60.0, Some(-10.0), None));
        }
        let o = out.unwrap();
        // After one time constant: 63.2 % of the step.
        assert!((o.damped_c - -6.32).abs() < 0.05, "{o:?}");
        assert!((o.composite_c - 0.5 * (-10.0 + o.damped_c)).abs() < 1e-9);
        assert_eq!(o.source, OutdoorSource::Measured);
    }

    #[test]
    fn a_forecast_pulls_the_curve_input_only_while_valid_and_weighted() {
        let mut c = cfg();
        c.forecast_weight = 0.25;
        let mut f = OutdoorFilter::new(&c);
        let base = f.update(0.0, 0.0, Some(0.0), None);
        assert_eq!(base.forecast_pull_k, 0.0);
        // A cold front forecast 8 K colder: the actual part of the composite moves 2 K down,
        // the composite (half actual) 1 K; the damped value does not see the forecast.
        let ff = f.update(60.0, 60.0, Some(0.0), Some(-8.0));
        assert!((ff.forecast_pull_k - -2.0).abs() < 1e-9, "{ff:?}");
        assert!(
            (ff.composite_c - (base.composite_c - 1.0)).abs() < 1e-6,
            "{ff:?}"
        );
        assert!((ff.damped_c - 0.0).abs() < 1e-9);
        // No forecast: no pull.
        let none = f.update(120.0, 60.0, Some(0.0), None);
        assert_eq!(none.forecast_pull_k, 0.0);
        // The fallback is never steered by a forecast.
        let fb = f.update(10_000.0, 60.0, None, Some(-30.0));
        assert_eq!(fb.source, OutdoorSource::Fallback);
        assert_eq!(fb.forecast_pull_k, 0.0);
        // Weight 0 (the default) ignores the forecast.
        let mut g = OutdoorFilter::new(&cfg());
        let z = g.update(0.0, 0.0, Some(0.0), Some(-8.0));
        assert_eq!(z.forecast_pull_k, 0.0);
        assert_eq!(z.composite_c, 0.0);
    }

    #[test]
    fn lost_sensor_holds_then_falls_back() {
        let mut f = OutdoorFilter::new(&cfg());
        f.update(0.0, 0.0, Some(-12.0), None);
        let held = f.update(1800.0, 1800.0, None, None);
        assert_eq!((held.actual_c, held.source), (-12.0, OutdoorSource::Held));
        let fb = f.update(3700.0, 1900.0, None, None);
        assert_eq!((fb.actual_c, fb.source), (-5.0, OutdoorSource::Fallback));
        let back = f.update(3800.0, 100.0, Some(-11.0), None);
        assert_eq!(back.source, OutdoorSource::Measured);
    }
}
