//! The measured quantities heatctl knows by name, and everything that derives from the name.
//!
//! [`Signal`] is the one key of a substation measurement: its configuration key (in `[points]`
//! and `[signals]`), unit, default plausibility limits, JSON key and SCADA input register all
//! come from it, so no list of the signals is written out anywhere else.
//! [`CheckedQuantity`] adds the two per-home quantities whose plausibility `[signals]` also
//! configures (room temperature, household valve position).

use crate::config::SignalLimits;

/// A substation signal the controller knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// Outdoor temperature, °C.
    TOut,
    /// Primary supply temperature, °C.
    T1Supply,
    /// Primary return temperature, °C.
    T1Return,
    /// Secondary supply temperature, °C.
    T2Supply,
    /// Secondary return temperature, °C.
    T2Return,
    /// Heat-meter power, kW.
    Power1Kw,
    /// Heat-meter flow, m³/h.
    Flow1M3h,
    /// Primary valve position feedback, %.
    Valve1PosPct,
    /// Outdoor temperature forecast, °C (optional, usually published by the utility's platform
    /// over MQTT). Validated like every signal; the curve's feed-forward uses it when
    /// `[outdoor] forecast_weight` is above 0.
    TOutForecast,
    /// Heat-meter energy counter, kWh (the meter's cumulative register). Shown on every face
    /// and published to the platform, but used by no control function.
    Energy1Kwh,
    /// Secondary differential pressure supply-return at the substation outlet, kPa (the
    /// `[pump2]` loop's measurement in `constant_dp` and `proportional_dp` mode).
    Dp2StationKpa,
    /// Secondary differential pressure across the index (worst-placed) riser, kPa: the remote
    /// sensor of the `[pump2]` loop in `index` mode.
    Dp2IndexKpa,
    /// Secondary circulation pump speed feedback, %.
    Pump2SpeedPct,
    /// Secondary circulation pump electric power, kW.
    Pump2PowerKw,
    /// Secondary flow, m³/h (the pump's dry-run guard; `proportional_dp` mode).
    Flow2M3h,
}

/// Plausibility limits in the order of their fields, for the tables below.
const fn limits(
    valid_min: f64,
    valid_max: f64,
    max_age_s: f64,
    stuck_after_s: f64,
    stuck_tolerance: f64,
    max_rate_per_s: f64,
) -> SignalLimits {
    SignalLimits {
        valid_min,
        valid_max,
        max_age_s,
        stuck_after_s,
        stuck_tolerance,
        max_rate_per_s,
    }
}

impl Signal {
    /// How many signals there are (the length of arrays indexed by [`Signal::index`]).
    pub const COUNT: usize = 15;

    /// Every signal, in index order.
    pub const ALL: [Signal; Signal::COUNT] = [
        Signal::TOut,
        Signal::T1Supply,
        Signal::T1Return,
        Signal::T2Supply,
        Signal::T2Return,
        Signal::Power1Kw,
        Signal::Flow1M3h,
        Signal::Valve1PosPct,
        Signal::TOutForecast,
        Signal::Energy1Kwh,
        Signal::Dp2StationKpa,
        Signal::Dp2IndexKpa,
        Signal::Pump2SpeedPct,
        Signal::Pump2PowerKw,
        Signal::Flow2M3h,
    ];

    /// Its key in configuration files (`[points]`, `[signals]`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Signal::TOut => "t_out",
            Signal::T1Supply => "t1_supply",
            Signal::T1Return => "t1_return",
            Signal::T2Supply => "t2_supply",
            Signal::T2Return => "t2_return",
            Signal::Power1Kw => "power1_kw",
            Signal::Flow1M3h => "flow1_m3h",
            Signal::Valve1PosPct => "valve1_pos_pct",
            Signal::TOutForecast => "t_out_forecast",
            Signal::Energy1Kwh => "energy1_kwh",
            Signal::Dp2StationKpa => "dp2_station",
            Signal::Dp2IndexKpa => "dp2_index",
            Signal::Pump2SpeedPct => "pump2_speed",
            Signal::Pump2PowerKw => "pump2_power",
            Signal::Flow2M3h => "flow2",
        }
    }

    /// The signal with this configuration key.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Signal> {
        Signal::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Its key in JSON output (the configuration key with the unit as a suffix).
    #[must_use]
    pub const fn json_key(self) -> &'static str {
        match self {
            Signal::TOut => "t_out_c",
            Signal::T1Supply => "t1_supply_c",
            Signal::T1Return => "t1_return_c",
            Signal::T2Supply => "t2_supply_c",
            Signal::T2Return => "t2_return_c",
            Signal::Power1Kw => "power1_kw",
            Signal::Flow1M3h => "flow1_m3h",
            Signal::Valve1PosPct => "valve1_pos_pct",
            Signal::TOutForecast => "t_out_forecast_c",
            Signal::Energy1Kwh => "energy1_kwh",
            Signal::Dp2StationKpa => "dp2_station_kpa",
            Signal::Dp2IndexKpa => "dp2_index_kpa",
            Signal::Pump2SpeedPct => "pump2_speed_pct",
            Signal::Pump2PowerKw => "pump2_power_kw",
            Signal::Flow2M3h => "flow2_m3h",
        }
    }

    /// Its unit as shown to people.
    #[must_use]
    pub const fn unit(self) -> &'static str {
        match self {
            Signal::TOut
            | Signal::T1Supply
            | Signal::T1Return
            | Signal::T2Supply
            | Signal::T2Return
            | Signal::TOutForecast => "°C",
            Signal::Power1Kw | Signal::Pump2PowerKw => "kW",
            Signal::Flow1M3h | Signal::Flow2M3h => "m³/h",
            Signal::Valve1PosPct | Signal::Pump2SpeedPct => "%",
            Signal::Dp2StationKpa | Signal::Dp2IndexKpa => "kPa",
            Signal::Energy1Kwh => "kWh",
        }
    }

    /// What it is, in a few words.
    #[must_use]
    pub const fn description(self) -> &'static str {
        match self {
            Signal::TOut => "Outdoor temperature",
            Signal::T1Supply => "Primary supply temperature",
            Signal::T1Return => "Primary return temperature",
            Signal::T2Supply => "Secondary supply temperature",
            Signal::T2Return => "Secondary return temperature",
            Signal::Power1Kw => "Heat-meter power",
            Signal::Flow1M3h => "Heat-meter flow",
            Signal::Valve1PosPct => "Primary valve position feedback",
            Signal::TOutForecast => {
                "Outdoor temperature forecast (curve feed-forward with [outdoor] forecast_weight)"
            }
            Signal::Energy1Kwh => "Heat-meter energy counter",
            Signal::Dp2StationKpa => "Secondary differential pressure at the substation",
            Signal::Dp2IndexKpa => "Secondary differential pressure at the index riser",
            Signal::Pump2SpeedPct => "Secondary pump speed feedback",
            Signal::Pump2PowerKw => "Secondary pump electric power",
            Signal::Flow2M3h => "Secondary flow",
        }
    }

    /// The built-in plausibility limits (what `[signals.<name>]` overrides).
    #[must_use]
    pub const fn default_limits(self) -> SignalLimits {
        match self {
            Signal::TOut => limits(-50.0, 50.0, 600.0, 43_200.0, 0.01, 0.05),
            Signal::T1Supply | Signal::T1Return => limits(0.0, 160.0, 60.0, 0.0, 0.01, 3.0),
            Signal::T2Supply => limits(0.0, 120.0, 15.0, 0.0, 0.01, 2.0),
            Signal::T2Return => limits(0.0, 120.0, 60.0, 0.0, 0.01, 2.0),
            Signal::Power1Kw => limits(0.0, 50_000.0, 120.0, 0.0, 0.0, 0.0),
            Signal::Flow1M3h => limits(0.0, 2_000.0, 120.0, 0.0, 0.0, 0.0),
            Signal::Valve1PosPct => limits(0.0, 100.0, 30.0, 0.0, 0.0, 0.0),
            // A forecast is published every hour or few: three hours old is still usable; it
            // may stay put for long and may jump from one forecast run to the next.
            Signal::TOutForecast => limits(-50.0, 50.0, 10_800.0, 0.0, 0.01, 0.0),
            // A u32 kWh counter, polled every minute or so. No stuck check: it stands still
            // whenever nothing flows. The jump check allows 30 kWh/s, twice what a 50 MW meter
            // (the top of power1_kw's range, 13.9 kWh/s) can count, plus one 1 kWh step at any
            // interval (the stuck tolerance doubles as that step): it catches a wrong word order
            // (a step of 65536 per kWh) or a counter reset. The rate is measured from the last
            // accepted value, so a meter that counts in coarse steps (10 kWh, 1 MWh) is held off
            // only until the time since that value covers the step.
            Signal::Energy1Kwh => limits(0.0, 4.3e9, 600.0, 0.0, 1.0, 30.0),
            // Pressure transmitters 0-1000 kPa (10 bar); polled every few seconds. A pump
            // starting or stopping moves the pressure by its whole head within seconds, so no
            // jump check by default.
            Signal::Dp2StationKpa | Signal::Dp2IndexKpa => {
                limits(0.0, 1_000.0, 30.0, 0.0, 0.0, 0.0)
            }
            Signal::Pump2SpeedPct => limits(0.0, 100.0, 30.0, 0.0, 0.0, 0.0),
            Signal::Pump2PowerKw => limits(0.0, 2_000.0, 60.0, 0.0, 0.0, 0.0),
            Signal::Flow2M3h => limits(0.0, 5_000.0, 30.0, 0.0, 0.0, 0.0),
        }
    }

    /// Index into arrays over [`Signal::ALL`].
    #[must_use]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Offset of its SCADA input register: the first eight signals occupy input registers 0-7
    /// in index order; signals added later go after the station's registers (the outdoor
    /// forecast at 52, the energy counter at 53-54, high word first, as a u32, the secondary
    /// pump's signals at 56-60), so no existing register moves. For a two-register signal, the
    /// first of the two.
    #[must_use]
    pub const fn scada_input_register(self) -> u16 {
        match self {
            Signal::TOutForecast => 52,
            Signal::Energy1Kwh => 53,
            Signal::Dp2StationKpa => 56,
            Signal::Dp2IndexKpa => 57,
            Signal::Pump2SpeedPct => 58,
            Signal::Pump2PowerKw => 59,
            Signal::Flow2M3h => 60,
            _ => self as u16,
        }
    }

    /// Its bit in the SCADA register of valid signals (bit n: the signal at register n); 0 for
    /// a signal whose register is beyond the sixteen bits.
    #[must_use]
    pub const fn scada_valid_bit(self) -> u16 {
        let r = self.scada_input_register();
        if r < 16 { 1 << r } else { 0 }
    }
}

/// A measured quantity whose plausibility `[signals]` configures: a substation [`Signal`] or one
/// of the two per-home quantities read from every node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckedQuantity {
    /// A substation signal.
    Signal(Signal),
    /// Household room temperature, °C (every node).
    Room,
    /// Household valve position feedback, % (every node with a valve).
    HouseholdValvePos,
}

impl CheckedQuantity {
    /// Every quantity `[signals]` has a table for, in the order of its keys.
    pub const ALL: [CheckedQuantity; Signal::COUNT + 2] = {
        let mut all = [CheckedQuantity::Room; Signal::COUNT + 2];
        let mut i = 0;
        while i < Signal::COUNT {
            all[i] = CheckedQuantity::Signal(Signal::ALL[i]);
            i += 1;
        }
        all[Signal::COUNT] = CheckedQuantity::Room;
        all[Signal::COUNT + 1] = CheckedQuantity::HouseholdValvePos;
        all
    };

    /// Its key in `[signals]`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            CheckedQuantity::Signal(s) => s.name(),
            CheckedQuantity::Room => "room",
            CheckedQuantity::HouseholdValvePos => "hh_valve_pos_pct",
        }
    }

    /// Its unit as shown to people.
    #[must_use]
    pub const fn unit(self) -> &'static str {
        match self {
            CheckedQuantity::Signal(s) => s.unit(),
            CheckedQuantity::Room => "°C",
            CheckedQuantity::HouseholdValvePos => "%",
        }
    }

    /// What it is, in a few words.
    #[must_use]
    pub const fn description(self) -> &'static str {
        match self {
            CheckedQuantity::Signal(s) => s.description(),
            CheckedQuantity::Room => "Household room temperature (every node)",
            CheckedQuantity::HouseholdValvePos => "Household valve position feedback",
        }
    }

    /// The built-in plausibility limits.
    #[must_use]
    pub const fn default_limits(self) -> SignalLimits {
        match self {
            CheckedQuantity::Signal(s) => s.default_limits(),
            CheckedQuantity::Room => limits(5.0, 35.0, 1_800.0, 86_400.0, 0.01, 0.01),
            CheckedQuantity::HouseholdValvePos => limits(0.0, 100.0, 1_800.0, 0.0, 0.0, 0.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_in_index_order_and_names_are_unique() {
        for (i, s) in Signal::ALL.into_iter().enumerate() {
            assert_eq!(s.index(), i);
            if s == Signal::TOutForecast {
                assert_eq!(s.scada_input_register(), 52);
                assert_eq!(s.scada_valid_bit(), 0);
            } else if s == Signal::Energy1Kwh {
                assert_eq!(s.scada_input_register(), 53);
                assert_eq!(s.scada_valid_bit(), 0);
            } else if i >= 10 {
                assert_eq!(usize::from(s.scada_input_register()), 56 + i - 10);
                assert_eq!(s.scada_valid_bit(), 0);
            } else {
                assert_eq!(usize::from(s.scada_input_register()), i);
                assert_eq!(s.scada_valid_bit(), 1 << i);
            }
            assert_eq!(Signal::from_name(s.name()), Some(s));
        }
        let mut names: Vec<_> = CheckedQuantity::ALL.iter().map(|q| q.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CheckedQuantity::ALL.len());
        assert!(
            CheckedQuantity::ALL[..Signal::COUNT]
                .iter()
                .zip(Signal::ALL)
                .all(|(q, s)| *q == CheckedQuantity::Signal(s))
        );
    }

    #[test]
    fn config_keys_are_the_names() {
        use crate::config::{Points, Signals};
        for q in CheckedQuantity::ALL {
            let text = format!("[{}]\nvalid_min = 1.5\n", q.name());
            let signals: Signals = toml::from_str(&text).expect("a [signals] key");
            assert_eq!(signals.table(q).valid_min, Some(1.5), "{}", q.name());
            assert_eq!(signals.limits_of(q).valid_min, 1.5);
        }
        let mut text = String::new();
        for (name, _, _) in Points::default().bindings() {
            text += &format!("{name} = \"dev.{name}\"\n");
        }
        let points: Points = toml::from_str(&text).expect("[points] keys");
        let bound: Vec<_> = points.bindings().collect();
        assert_eq!(bound.len(), Signal::COUNT + 4);
        for (name, binding, _) in bound {
            assert_eq!(binding, Some(format!("dev.{name}").as_str()));
        }
        // And nothing else: a full table serialises to exactly these keys.
        let table = toml::Table::try_from(&points).expect("serialises");
        assert_eq!(table.len(), Signal::COUNT + 4);
        let table = toml::Table::try_from(Signals::default()).expect("serialises");
        assert_eq!(table.len(), CheckedQuantity::ALL.len());
    }

    #[test]
    fn default_limits_are_ordered() {
        for q in CheckedQuantity::ALL {
            let l = q.default_limits();
            assert!(l.valid_min < l.valid_max, "{}", q.name());
            assert!(l.max_age_s > 0.0, "{}", q.name());
        }
    }
}
