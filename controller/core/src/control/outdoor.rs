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

    /// Advance by `dt_s` with the validated measurement (`None` when invalid).
    pub fn update(&mut self, now_s: f64, dt_s: f64, measured: Option<f64>) -> OutdoorTemps {
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
        let w = self.cfg.composite_actual_weight;
        let composite = w * actual + (1.0 - w) * damped;
        let curve_input_c = match self.cfg.curve_input {
            OutdoorInput::Composite => composite,
            OutdoorInput::Damped => damped,
            OutdoorInput::Actual => actual,
        };
        OutdoorTemps {
            actual_c: actual,
            damped_c: damped,
            composite_c: composite,
            curve_input_c,
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
        }
    }

    #[test]
    fn damped_follows_a_step_with_the_time_constant() {
        let mut f = OutdoorFilter::new(&cfg());
        f.update(0.0, 0.0, Some(0.0));
        let mut t = 0.0;
        let mut out = None;
        while t < 36_000.0 {
            t += 60.0;
            out = Some(f.update(t, 60.0, Some(-10.0)));
        }
        let o = out.unwrap();
        // After one time constant: 63.2 % of the step.
        assert!((o.damped_c - -6.32).abs() < 0.05, "{o:?}");
        assert!((o.composite_c - 0.5 * (-10.0 + o.damped_c)).abs() < 1e-9);
        assert_eq!(o.source, OutdoorSource::Measured);
    }

    #[test]
    fn lost_sensor_holds_then_falls_back() {
        let mut f = OutdoorFilter::new(&cfg());
        f.update(0.0, 0.0, Some(-12.0));
        let held = f.update(1800.0, 1800.0, None);
        assert_eq!((held.actual_c, held.source), (-12.0, OutdoorSource::Held));
        let fb = f.update(3700.0, 1900.0, None);
        assert_eq!((fb.actual_c, fb.source), (-5.0, OutdoorSource::Fallback));
        let back = f.update(3800.0, 100.0, Some(-11.0));
        assert_eq!(back.source, OutdoorSource::Measured);
    }
}
