//! `[site]`: name, size and time zone of the substation.

use serde::{Deserialize, Serialize};

use super::check::{Bound, Checker, Rules, bounds};

/// Name and size of the substation.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// Name shown in logs and on SCADA, e.g. "Xincheng No. 3".
    pub name: String,
    /// Heated floor area served, m². Used to report energy and power per m².
    #[serde(default = "d_floor_area")]
    pub floor_area_m2: f64,
    /// Offset of local time from UTC, hours (China: 8). Schedules run on local time.
    #[serde(default = "d_utc_offset")]
    pub utc_offset_h: f64,
}
fn d_floor_area() -> f64 {
    54_000.0
}
fn d_utc_offset() -> f64 {
    8.0
}

impl Rules for Site {
    const BOUNDS: &'static [Bound<Self>] = bounds!(Site {
        floor_area_m2: 1.0..=1e8,
        utc_offset_h: -12.0..=14.0,
    });
    const ALLOWED: &'static [(&'static str, &'static str)] = &[("name", "not empty")];
}

impl Site {
    pub(crate) fn check(&self, k: &mut Checker) {
        k.bounds("site", self);
        if self.name.trim().is_empty() {
            k.fail("site.name", "must not be empty");
        }
    }
}
