//! The heating curve: piecewise-linear or from design data (quality regulation), parallel
//! shift, min/max clamp; and the summer cut-off.

use crate::config::{Curve, CurvePoint, DesignCurve, Summer};

/// A heating curve ready to evaluate.
#[derive(Debug, Clone)]
pub struct HeatingCurve {
    shape: Shape,
    shift_k: f64,
    min_c: f64,
    max_c: f64,
}

#[derive(Debug, Clone)]
enum Shape {
    Points(Vec<CurvePoint>),
    Design(DesignCurve),
}

impl HeatingCurve {
    /// The curve of a (validated) configuration.
    #[must_use]
    pub fn new(cfg: &Curve) -> Self {
        let shape = match (&cfg.points, &cfg.design) {
            (_, Some(d)) => Shape::Design(*d),
            (Some(p), None) => Shape::Points(p.clone()),
            (None, None) => Shape::Points(Vec::new()),
        };
        Self {
            shape,
            shift_k: cfg.shift_k,
            min_c: cfg.min_supply_c,
            max_c: cfg.max_supply_c,
        }
    }

    /// The unshifted, unclamped curve value at an outdoor temperature, °C.
    #[must_use]
    pub fn raw_c(&self, outdoor_c: f64) -> f64 {
        match &self.shape {
            Shape::Points(p) => piecewise(p, outdoor_c),
            Shape::Design(d) => quality_regulation(d, outdoor_c).0,
        }
    }

    /// Configured parallel shift, K.
    #[must_use]
    pub fn shift_k(&self) -> f64 {
        self.shift_k
    }

    /// Clamp limits (min, max), °C.
    #[must_use]
    pub fn clamp_c(&self) -> (f64, f64) {
        (self.min_c, self.max_c)
    }

    /// The setpoint: curve + configured shift + `extra_shift_k`, clamped, °C.
    #[must_use]
    pub fn supply_c(&self, outdoor_c: f64, extra_shift_k: f64) -> f64 {
        (self.raw_c(outdoor_c) + self.shift_k + extra_shift_k).clamp(self.min_c, self.max_c)
    }
}

/// Linear interpolation through points sorted by outdoor temperature, flat beyond the ends.
fn piecewise(points: &[CurvePoint], x: f64) -> f64 {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return f64::NAN;
    };
    if x <= first.outdoor_c {
        return first.supply_c;
    }
    if x >= last.outdoor_c {
        return last.supply_c;
    }
    for w in points.windows(2) {
        let (a, b) = (w[0], w[1]);
        if x <= b.outdoor_c {
            let f = (x - a.outdoor_c) / (b.outdoor_c - a.outdoor_c);
            return a.supply_c + f * (b.supply_c - a.supply_c);
        }
    }
    last.supply_c
}

/// Textbook quality-regulation supply and return temperatures (constant flow) at an outdoor
/// temperature: `t_s = t_n + ½(t_s' + t_r' − 2t_n)·Q^(1/n) + ½(t_s' − t_r')·Q` and the same with
/// minus for the return, `Q = (t_n − t_out)/(t_n − t_out')`, clamped to 0..=1.2 (no negative load).
#[must_use]
pub fn quality_regulation(d: &DesignCurve, outdoor_c: f64) -> (f64, f64) {
    let q = ((d.room_c - outdoor_c) / (d.room_c - d.design_outdoor_c)).clamp(0.0, 1.2);
    let mean_term = 0.5
        * (d.design_supply_c + d.design_return_c - 2.0 * d.room_c)
        * q.powf(1.0 / d.radiator_exponent);
    let split = 0.5 * (d.design_supply_c - d.design_return_c) * q;
    (d.room_c + mean_term + split, d.room_c + mean_term - split)
}

/// Summer cut-off with hysteresis on the damped outdoor temperature.
#[derive(Debug, Clone)]
pub struct SummerCutoff {
    cfg: Summer,
    heating_on: bool,
}

impl SummerCutoff {
    /// Starts with heating on.
    #[must_use]
    pub fn new(cfg: &Summer) -> Self {
        Self {
            cfg: cfg.clone(),
            heating_on: true,
        }
    }

    /// Replace the configuration, keeping the state.
    pub fn set_config(&mut self, cfg: &Summer) {
        self.cfg = cfg.clone();
    }

    /// Update with the damped outdoor temperature; whether heating is on.
    pub fn update(&mut self, damped_c: f64) -> bool {
        if !self.cfg.enabled {
            self.heating_on = true;
        } else if self.heating_on && damped_c >= self.cfg.cutoff_c {
            self.heating_on = false;
        } else if !self.heating_on && damped_c <= self.cfg.cutoff_c - self.cfg.hysteresis_k {
            self.heating_on = true;
        }
        self.heating_on
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn design() -> DesignCurve {
        DesignCurve {
            design_outdoor_c: -17.0,
            design_supply_c: 75.0,
            design_return_c: 50.0,
            room_c: 18.0,
            radiator_exponent: 1.3,
        }
    }

    /// The golden table of hil-tests/MODEL.md ("Golden steady states"): t_out, t2_supply, t2_return.
    const GOLDEN: [(f64, f64, f64); 8] = [
        (-17.0, 75.0, 50.0),
        (-12.0, 68.2, 46.8),
        (-8.0, 62.7, 44.1),
        (-4.0, 57.0, 41.3),
        (0.0, 51.1, 38.3),
        (4.0, 45.0, 35.0),
        (8.0, 38.5, 31.4),
        (12.0, 31.6, 27.3),
    ];

    #[test]
    fn design_curve_matches_the_golden_table() {
        let d = design();
        for (t_out, ts, tr) in GOLDEN {
            let (s, r) = quality_regulation(&d, t_out);
            assert!((s - ts).abs() < 0.06, "supply at {t_out}: {s} vs {ts}");
            assert!((r - tr).abs() < 0.06, "return at {t_out}: {r} vs {tr}");
        }
        let c = HeatingCurve::new(&Curve {
            points: None,
            design: Some(d),
            shift_k: 0.0,
            min_supply_c: 20.0,
            max_supply_c: 90.0,
        });
        assert!((c.supply_c(-4.0, 0.0) - 57.0).abs() < 0.06);
    }

    fn pts() -> Curve {
        Curve {
            points: Some(vec![
                CurvePoint {
                    outdoor_c: -20.0,
                    supply_c: 70.0,
                },
                CurvePoint {
                    outdoor_c: 0.0,
                    supply_c: 52.0,
                },
                CurvePoint {
                    outdoor_c: 15.0,
                    supply_c: 32.0,
                },
            ]),
            design: None,
            shift_k: 2.0,
            min_supply_c: 35.0,
            max_supply_c: 72.0,
        }
    }

    #[test]
    fn piecewise_interpolates_shifts_and_clamps() {
        let c = HeatingCurve::new(&pts());
        assert!((c.raw_c(-10.0) - 61.0).abs() < 1e-9);
        assert!((c.raw_c(-30.0) - 70.0).abs() < 1e-9, "flat beyond the ends");
        assert!(
            (c.supply_c(-10.0, 1.0) - 64.0).abs() < 1e-9,
            "config shift 2 + extra 1"
        );
        assert!((c.supply_c(-20.0, 5.0) - 72.0).abs() < 1e-9, "max clamp");
        assert!((c.supply_c(15.0, -5.0) - 35.0).abs() < 1e-9, "min clamp");
    }

    #[test]
    fn summer_cutoff_has_hysteresis() {
        let mut s = SummerCutoff::new(&Summer {
            enabled: true,
            cutoff_c: 17.0,
            hysteresis_k: 2.0,
        });
        assert!(s.update(16.9));
        assert!(!s.update(17.0));
        assert!(!s.update(15.5), "still off inside the hysteresis band");
        assert!(s.update(15.0));
    }
}
