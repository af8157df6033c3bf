//! `[signals]`: the plausibility checks of each measured quantity.

use serde::{Deserialize, Serialize};

use super::check::{Bound, Checker, Rules, bounds};

use crate::signal::{CheckedQuantity, Signal};

/// Plausibility limits of one signal. Any value left out takes the signal's built-in default
/// (`heatctl config-ref` lists them). A value that fails a check is marked invalid and
/// never reaches a control law.
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SignalCheck {
    /// Lowest plausible value, in the signal's unit.
    pub valid_min: Option<f64>,
    /// Highest plausible value, in the signal's unit.
    pub valid_max: Option<f64>,
    /// A value older than this many seconds is stale.
    pub max_age_s: Option<f64>,
    /// A value that has not changed by more than `stuck_tolerance` for this many seconds is
    /// marked stuck (a frozen transmitter). 0 disables the check.
    pub stuck_after_s: Option<f64>,
    /// Changes smaller than this count as "no change" for the stuck check, in the signal's unit.
    pub stuck_tolerance: Option<f64>,
    /// Largest plausible rate of change, unit per second. A faster jump is rejected until the
    /// signal settles. 0 disables the check.
    pub max_rate_per_s: Option<f64>,
}

/// Resolved plausibility limits of a signal (built-in defaults filled in).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SignalLimits {
    /// Lowest plausible value.
    pub valid_min: f64,
    /// Highest plausible value.
    pub valid_max: f64,
    /// Stale after this many seconds.
    pub max_age_s: f64,
    /// Stuck after this many seconds without change (0: off).
    pub stuck_after_s: f64,
    /// Tolerance of the stuck check.
    pub stuck_tolerance: f64,
    /// Largest plausible rate of change per second (0: off).
    pub max_rate_per_s: f64,
}

impl SignalCheck {
    /// Fill in what the technician left out from `defaults`.
    #[must_use]
    pub fn resolve(&self, defaults: SignalLimits) -> SignalLimits {
        SignalLimits {
            valid_min: self.valid_min.unwrap_or(defaults.valid_min),
            valid_max: self.valid_max.unwrap_or(defaults.valid_max),
            max_age_s: self.max_age_s.unwrap_or(defaults.max_age_s),
            stuck_after_s: self.stuck_after_s.unwrap_or(defaults.stuck_after_s),
            stuck_tolerance: self.stuck_tolerance.unwrap_or(defaults.stuck_tolerance),
            max_rate_per_s: self.max_rate_per_s.unwrap_or(defaults.max_rate_per_s),
        }
    }
}

/// Plausibility checks per signal. Each table is optional.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Signals {
    /// Outdoor air temperature, °C.
    pub t_out: SignalCheck,
    /// Primary supply temperature, °C.
    pub t1_supply: SignalCheck,
    /// Primary return temperature, °C.
    pub t1_return: SignalCheck,
    /// Secondary supply temperature, °C.
    pub t2_supply: SignalCheck,
    /// Secondary return temperature, °C.
    pub t2_return: SignalCheck,
    /// Primary heat-meter power, kW.
    pub power1_kw: SignalCheck,
    /// Primary heat-meter flow, m³/h.
    pub flow1_m3h: SignalCheck,
    /// Primary valve position feedback, %.
    pub valve1_pos_pct: SignalCheck,
    /// Outdoor temperature forecast, °C (an optional input, e.g. from the platform over MQTT).
    pub t_out_forecast: SignalCheck,
    /// Heat-meter energy counter, kWh (shown and published, used by no control function).
    pub energy1_kwh: SignalCheck,
    /// Secondary differential pressure at the substation, kPa.
    pub dp2_station: SignalCheck,
    /// Secondary differential pressure at the index riser (remote sensor), kPa.
    pub dp2_index: SignalCheck,
    /// Secondary pump speed feedback, %.
    pub pump2_speed: SignalCheck,
    /// Secondary pump electric power, kW.
    pub pump2_power: SignalCheck,
    /// Secondary flow, m³/h.
    pub flow2: SignalCheck,
    /// Household room temperatures, °C (every node).
    pub room: SignalCheck,
    /// Household valve position feedback, %.
    pub hh_valve_pos_pct: SignalCheck,
}

impl Signals {
    /// The technician's table of a quantity.
    #[must_use]
    pub fn table(&self, q: CheckedQuantity) -> &SignalCheck {
        match q {
            CheckedQuantity::Signal(Signal::TOut) => &self.t_out,
            CheckedQuantity::Signal(Signal::T1Supply) => &self.t1_supply,
            CheckedQuantity::Signal(Signal::T1Return) => &self.t1_return,
            CheckedQuantity::Signal(Signal::T2Supply) => &self.t2_supply,
            CheckedQuantity::Signal(Signal::T2Return) => &self.t2_return,
            CheckedQuantity::Signal(Signal::Power1Kw) => &self.power1_kw,
            CheckedQuantity::Signal(Signal::Flow1M3h) => &self.flow1_m3h,
            CheckedQuantity::Signal(Signal::Valve1PosPct) => &self.valve1_pos_pct,
            CheckedQuantity::Signal(Signal::TOutForecast) => &self.t_out_forecast,
            CheckedQuantity::Signal(Signal::Energy1Kwh) => &self.energy1_kwh,
            CheckedQuantity::Signal(Signal::Dp2StationKpa) => &self.dp2_station,
            CheckedQuantity::Signal(Signal::Dp2IndexKpa) => &self.dp2_index,
            CheckedQuantity::Signal(Signal::Pump2SpeedPct) => &self.pump2_speed,
            CheckedQuantity::Signal(Signal::Pump2PowerKw) => &self.pump2_power,
            CheckedQuantity::Signal(Signal::Flow2M3h) => &self.flow2,
            CheckedQuantity::Room => &self.room,
            CheckedQuantity::HouseholdValvePos => &self.hh_valve_pos_pct,
        }
    }

    /// The limits in force for a quantity: the table, with what it leaves out taken from the
    /// quantity's built-in defaults.
    #[must_use]
    pub fn limits_of(&self, q: CheckedQuantity) -> SignalLimits {
        self.table(q).resolve(q.default_limits())
    }

    /// The limits in force for a substation signal.
    #[must_use]
    pub fn limits(&self, s: Signal) -> SignalLimits {
        self.limits_of(CheckedQuantity::Signal(s))
    }

    /// The limits in force for household room temperatures.
    #[must_use]
    pub fn room_limits(&self) -> SignalLimits {
        self.limits_of(CheckedQuantity::Room)
    }

    /// The limits in force for household valve position feedback.
    #[must_use]
    pub fn hh_valve_pos_limits(&self) -> SignalLimits {
        self.limits_of(CheckedQuantity::HouseholdValvePos)
    }
}

impl Rules for SignalLimits {
    const BOUNDS: &'static [Bound<Self>] = bounds!(SignalLimits {
        max_age_s: 0.1..=1e6,
        stuck_after_s: 0.0..=1e7,
        stuck_tolerance: 0.0..=1e3,
        max_rate_per_s: 0.0..=1e6,
    });
    const ALLOWED: &'static [(&'static str, &'static str)] = &[("valid_min", "below valid_max")];
}

impl Signals {
    pub(crate) fn check(&self, k: &mut Checker) {
        for q in CheckedQuantity::ALL {
            let lim = self.limits_of(q);
            let p = |f: &str| format!("signals.{}.{f}", q.name());
            k.below(
                &p("valid_min"),
                lim.valid_min,
                &p("valid_max"),
                lim.valid_max,
            );
            k.bounds(&format!("signals.{}", q.name()), &lim);
        }
    }
}
