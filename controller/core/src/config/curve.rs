//! `[curve]`: the heating curve, as points or from design data.

use serde::{Deserialize, Serialize};

use super::check::{Bound, Checker, Rules, bounds};

/// One point of a piecewise-linear heating curve.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CurvePoint {
    /// Outdoor temperature, °C.
    pub outdoor_c: f64,
    /// Secondary supply setpoint at that outdoor temperature, °C.
    pub supply_c: f64,
}

/// Heating curve computed from design data with the quality-regulation formula.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DesignCurve {
    /// Design outdoor temperature, °C (Hohhot -17, Hailar -31).
    pub design_outdoor_c: f64,
    /// Secondary supply temperature at design conditions, °C (radiators 75, floor 45).
    pub design_supply_c: f64,
    /// Secondary return temperature at design conditions, °C (radiators 50, floor 35).
    pub design_return_c: f64,
    /// Room temperature the design is for, °C (China: 18).
    pub room_c: f64,
    /// Radiator exponent n of Q ~ ΔT^n (EN 442 panel radiators 1.3, floor heating 1.1).
    pub radiator_exponent: f64,
}

/// The heating curve: secondary supply setpoint from outdoor temperature.
///
/// Give exactly one of `points` (piecewise-linear, at least two points, strictly increasing in
/// outdoor temperature; flat beyond the end points) or `design` (computed from design data).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Curve {
    /// Piecewise-linear curve, e.g. `[{ outdoor_c = -20, supply_c = 70 }, ...]`.
    pub points: Option<Vec<CurvePoint>>,
    /// Curve from design data.
    pub design: Option<DesignCurve>,
    /// Parallel shift of the whole curve, K (technician's trim; demand correction adds to it).
    #[serde(default)]
    pub shift_k: f64,
    /// Lowest setpoint the curve may give, °C.
    #[serde(default = "d_curve_min")]
    pub min_supply_c: f64,
    /// Highest setpoint the curve may give, °C.
    #[serde(default = "d_curve_max")]
    pub max_supply_c: f64,
}
fn d_curve_min() -> f64 {
    25.0
}
fn d_curve_max() -> f64 {
    85.0
}

impl Rules for CurvePoint {
    const BOUNDS: &'static [Bound<Self>] = bounds!(CurvePoint {
        outdoor_c: -50.0..=40.0,
        supply_c: 10.0..=130.0,
    });
}

impl Rules for DesignCurve {
    const BOUNDS: &'static [Bound<Self>] = bounds!(DesignCurve {
        design_outdoor_c: -50.0..=5.0,
        design_supply_c: 25.0..=130.0,
        design_return_c: 15.0..=120.0,
        room_c: 10.0..=26.0,
        radiator_exponent: 1.0..=2.0,
    });
    const ALLOWED: &'static [(&'static str, &'static str)] = &[];
}

impl Rules for Curve {
    const BOUNDS: &'static [Bound<Self>] = bounds!(Curve {
        shift_k: -30.0..=30.0,
        min_supply_c: 10.0..=120.0,
        max_supply_c: 10.0..=130.0,
    });
    const ALLOWED: &'static [(&'static str, &'static str)] = &[
        (
            "points",
            "at least two points, strictly increasing in outdoor_c; not with design",
        ),
        ("design", "not with points"),
    ];
}

impl Curve {
    pub(crate) fn check(&self, k: &mut Checker) {
        match (&self.points, &self.design) {
            (Some(_), Some(_)) => k.fail(
                "curve",
                "give either curve.points or curve.design, not both",
            ),
            (None, None) => k.fail("curve", "give curve.points or curve.design"),
            (Some(points), None) => {
                if points.len() < 2 {
                    k.fail("curve.points", "a curve needs at least two points");
                }
                for (i, p) in points.iter().enumerate() {
                    k.bounds(&format!("curve.points[{i}]"), p);
                }
                k.increasing(
                    "curve.points",
                    points.iter().map(|p| p.outdoor_c),
                    "outdoor_c",
                );
            }
            (None, Some(d)) => {
                k.bounds("curve.design", d);
                k.below(
                    "curve.design.design_return_c",
                    d.design_return_c,
                    "curve.design.design_supply_c",
                    d.design_supply_c,
                );
                k.below(
                    "curve.design.room_c",
                    d.room_c,
                    "curve.design.design_return_c",
                    d.design_return_c,
                );
                k.below(
                    "curve.design.design_outdoor_c",
                    d.design_outdoor_c,
                    "curve.design.room_c",
                    d.room_c,
                );
            }
        }
        k.bounds("curve", self);
        k.below(
            "curve.min_supply_c",
            self.min_supply_c,
            "curve.max_supply_c",
            self.max_supply_c,
        );
    }
}
