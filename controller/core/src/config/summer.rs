//! `[summer]`: the summer cut-off.

use serde::{Deserialize, Serialize};

use super::check::{Bound, Checker, Rules, bounds};

/// Summer cut-off on the damped outdoor temperature, with hysteresis.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Summer {
    /// Whether heating stops on warm days.
    pub enabled: bool,
    /// Heating stops when the damped outdoor temperature rises to this, °C.
    pub cutoff_c: f64,
    /// Heating resumes when the damped outdoor temperature falls to `cutoff_c - hysteresis_k`.
    pub hysteresis_k: f64,
}
impl Default for Summer {
    fn default() -> Self {
        Self {
            enabled: true,
            cutoff_c: 17.0,
            hysteresis_k: 2.0,
        }
    }
}

impl Rules for Summer {
    const BOUNDS: &'static [Bound<Self>] = bounds!(Summer {
        cutoff_c: 0.0..=35.0,
        hysteresis_k: 0.0..=15.0,
    });
}

impl Summer {
    pub(crate) fn check(&self, k: &mut Checker) {
        k.bounds("summer", self);
    }
}
