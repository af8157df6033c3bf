//! The substation configuration as a technician writes it (TOML).
//!
//! Every struct here is one TOML table; the doc comment of each field is the reference manual
//! for that setting. Units are in the names: `_c` °C, `_k` kelvin (a temperature difference),
//! `_s` seconds, `_h` hours, `_pct` percent, `_kw` kilowatts, `_m3h` cubic metres per hour.
//! Unknown keys are rejected, so a misspelt setting is an error, never silently ignored.

use serde::{Deserialize, Serialize};

use crate::signal::{CheckedQuantity, Signal};

/// The whole configuration of one substation.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Name and size of the substation.
    pub site: Site,
    /// Plausibility checks applied to each measured signal before any control law sees it.
    #[serde(default)]
    pub signals: Signals,
    /// Outdoor temperature processing: damping, composite, fallback.
    #[serde(default)]
    pub outdoor: Outdoor,
    /// The heating curve: secondary supply setpoint as a function of outdoor temperature.
    pub curve: Curve,
    /// Summer cut-off: heating off while the damped outdoor temperature is warm.
    #[serde(default)]
    pub summer: Summer,
    /// Demand correction from household room temperatures (按需供热).
    #[serde(default)]
    pub demand: Demand,
    /// Valve-position demand ("trim and respond") from household or building valves.
    #[serde(default)]
    pub valve_demand: ValveDemand,
    /// Limiters that override the curve, applied in a fixed priority.
    #[serde(default)]
    pub limits: Limits,
    /// Time schedule with setback periods and boost after setback.
    #[serde(default)]
    pub schedule: Schedule,
    /// The primary control valve and its loop on the secondary supply temperature.
    #[serde(default)]
    pub valve1: Valve1,
    /// Household (or building) valves and their slow per-valve room loops.
    #[serde(default)]
    pub household_valves: HouseholdValves,
    /// Safety supervisor: frost protection, over-temperature cuts, sensor-loss fallbacks.
    #[serde(default)]
    pub safety: Safety,
    /// Communication links: Modbus TCP, Modbus RTU on a serial port, RTU through a TCP gateway.
    #[serde(default)]
    pub links: Vec<Link>,
    /// Field devices (PLC, heat meter, actuators), each on a link with a register map.
    #[serde(default)]
    pub devices: Vec<Device>,
    /// Which device point feeds each controller signal, and where commands are written.
    #[serde(default)]
    pub points: Points,
    /// Household room-temperature nodes.
    #[serde(default)]
    pub rooms: Rooms,
    /// The SCADA face: a Modbus TCP slave for the utility's control system.
    #[serde(default)]
    pub scada: Scada,
}

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

/// Plausibility limits of one signal. Any value left out takes the signal's built-in default
/// (shown in `config/substation.example.toml`). A value that fails a check is marked invalid and
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
#[derive(Debug, Clone, Copy, PartialEq)]
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
    /// Outdoor air temperature, °C. Default -50..50, stale after 600 s, stuck after 12 h.
    pub t_out: SignalCheck,
    /// Primary supply temperature, °C. Default 0..160, stale after 60 s.
    pub t1_supply: SignalCheck,
    /// Primary return temperature, °C. Default 0..160, stale after 60 s.
    pub t1_return: SignalCheck,
    /// Secondary supply temperature, °C. Default 0..120, stale after 15 s, max 2 K/s.
    pub t2_supply: SignalCheck,
    /// Secondary return temperature, °C. Default 0..120, stale after 60 s.
    pub t2_return: SignalCheck,
    /// Primary heat-meter power, kW. Default 0..50000, stale after 120 s.
    pub power1_kw: SignalCheck,
    /// Primary heat-meter flow, m³/h. Default 0..2000, stale after 120 s.
    pub flow1_m3h: SignalCheck,
    /// Primary valve position feedback, %. Default 0..100, stale after 30 s.
    pub valve1_pos_pct: SignalCheck,
    /// Household room temperatures, °C (every node). Default 5..35, stale after 1800 s,
    /// stuck after 24 h within 0.01 K, max 0.01 K/s.
    pub room: SignalCheck,
    /// Household valve position feedback, %. Default 0..100, stale after 1800 s.
    pub hh_valve_pos_pct: SignalCheck,
}

impl Signals {
    /// The technician's table of a quantity.
    #[must_use]
    pub fn check(&self, q: CheckedQuantity) -> &SignalCheck {
        match q {
            CheckedQuantity::Signal(Signal::TOut) => &self.t_out,
            CheckedQuantity::Signal(Signal::T1Supply) => &self.t1_supply,
            CheckedQuantity::Signal(Signal::T1Return) => &self.t1_return,
            CheckedQuantity::Signal(Signal::T2Supply) => &self.t2_supply,
            CheckedQuantity::Signal(Signal::T2Return) => &self.t2_return,
            CheckedQuantity::Signal(Signal::Power1Kw) => &self.power1_kw,
            CheckedQuantity::Signal(Signal::Flow1M3h) => &self.flow1_m3h,
            CheckedQuantity::Signal(Signal::Valve1PosPct) => &self.valve1_pos_pct,
            CheckedQuantity::Room => &self.room,
            CheckedQuantity::HouseholdValvePos => &self.hh_valve_pos_pct,
        }
    }

    /// The limits in force for a quantity: the table, with what it leaves out taken from the
    /// quantity's built-in defaults.
    #[must_use]
    pub fn limits_of(&self, q: CheckedQuantity) -> SignalLimits {
        self.check(q).resolve(q.default_limits())
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

/// Outdoor temperature processing (EN 12098 damped outdoor temperature, Siemens-style composite).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Outdoor {
    /// Time constant of the building, hours: the damped outdoor temperature follows the actual one
    /// through a first-order low-pass with this time constant. Light buildings 5-10 h, heavy
    /// (concrete, typical in northern China) 20-40 h.
    pub building_time_constant_h: f64,
    /// Share of the actual temperature in the composite: composite = w * actual + (1 - w) * damped.
    /// 0 uses the damped value only, 1 the actual value only. 0.5 is a common choice.
    pub composite_actual_weight: f64,
    /// Which temperature drives the heating curve: "composite", "damped" or "actual".
    pub curve_input: OutdoorInput,
    /// When the outdoor sensor is lost, hold its last good value for this many seconds...
    pub hold_last_good_s: f64,
    /// ...then use this fixed fallback temperature, °C (pick a cold-ish value: under-heating is
    /// what a lost sensor must not cause).
    pub fallback_c: f64,
}
impl Default for Outdoor {
    fn default() -> Self {
        Self {
            building_time_constant_h: 20.0,
            composite_actual_weight: 0.5,
            curve_input: OutdoorInput::Composite,
            hold_last_good_s: 3600.0,
            fallback_c: -5.0,
        }
    }
}

/// Which outdoor temperature drives the heating curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutdoorInput {
    /// Weighted mix of actual and damped.
    Composite,
    /// Damped only.
    Damped,
    /// Actual (measured) only.
    Actual,
}

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

/// Weight of a room node by the apartment's position in the building. Exposed flats (top floor,
/// ground floor, end units) are the first to go cold, so they usually weigh more.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PositionWeights {
    /// Top-floor flat.
    pub top: f64,
    /// Ground-floor flat.
    pub ground: f64,
    /// End unit (gable wall) on an intermediate floor.
    pub end: f64,
    /// Middle unit, intermediate floor.
    pub middle: f64,
    /// Top-floor end unit.
    pub top_end: f64,
    /// Ground-floor end unit.
    pub ground_end: f64,
}
impl Default for PositionWeights {
    fn default() -> Self {
        Self {
            top: 1.5,
            ground: 1.5,
            end: 1.2,
            middle: 1.0,
            top_end: 2.0,
            ground_end: 2.0,
        }
    }
}

/// Demand correction: a slow integrator moves the curve shift so that a low percentile of the
/// measured room temperatures sits at the target, while the median is kept from drifting high.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Demand {
    /// Whether room temperatures correct the curve.
    pub enabled: bool,
    /// Target for the low percentile of room temperatures, °C (18.5-19 keeps unsensed homes
    /// above the regulated 18 °C).
    pub target_c: f64,
    /// Which percentile of the (weighted) room temperatures must reach the target, 0..100.
    /// 10 (P10) protects the coldest homes without letting one node rule.
    pub percentile: f64,
    /// Share trimmed from each end before the trimmed mean is taken, 0..0.45.
    pub trim_fraction: f64,
    /// Highest trimmed mean of room temperatures, °C: above it the shift is pushed down even if
    /// the percentile is at target (the median must not drift far above ~21 °C).
    pub mean_max_c: f64,
    /// A node more than this many kelvin from the median of all nodes is ignored as an outlier
    /// (open window, node in the sun, broken sensor). 0 disables the check.
    pub outlier_k: f64,
    /// Least share of expected nodes (not vacant, not excluded) that must be alive, %. Below it
    /// the correction decays toward zero and the plain curve rules.
    pub quorum_pct: f64,
    /// Integral time of the PI law on the shift, hours: with a steady error of 1 K the integral
    /// part grows by `gain_k_per_k` kelvin per this many hours. Rooms are slow: hours, not minutes.
    pub integral_time_h: f64,
    /// Proportional gain of the PI law: shift per kelvin of room error, K/K (about the curve's
    /// slope between supply and room temperature, 2-3).
    pub gain_k_per_k: f64,
    /// Lowest demand shift, K.
    pub min_shift_k: f64,
    /// Highest demand shift, K.
    pub max_shift_k: f64,
    /// Fastest change of the demand shift, K per hour.
    pub max_rate_k_per_h: f64,
    /// Without quorum the shift decays toward 0 with this time constant, hours.
    pub decay_time_constant_h: f64,
    /// How often the correction runs, seconds (room nodes report every few minutes).
    pub period_s: f64,
    /// Weights by apartment position.
    pub weights: PositionWeights,
}
impl Default for Demand {
    fn default() -> Self {
        Self {
            enabled: true,
            target_c: 19.0,
            percentile: 10.0,
            trim_fraction: 0.1,
            mean_max_c: 21.5,
            outlier_k: 4.0,
            quorum_pct: 30.0,
            integral_time_h: 8.0,
            gain_k_per_k: 2.5,
            min_shift_k: -15.0,
            max_shift_k: 15.0,
            max_rate_k_per_h: 1.5,
            decay_time_constant_h: 6.0,
            period_s: 300.0,
            weights: PositionWeights::default(),
        }
    }
}

/// ASHRAE Guideline 36 "trim and respond" on household or building valve positions: while more
/// than `ignored_requests` valves sit nearly fully open the supply temperature is raised, otherwise
/// it is trimmed down step by step.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValveDemand {
    /// Whether valve positions adjust the shift.
    pub enabled: bool,
    /// A valve open at least this far counts as a request for more heat, %.
    pub request_above_pct: f64,
    /// Requests ignored (a few valves are always wide open).
    pub ignored_requests: u32,
    /// Trim applied every period without enough requests, K (negative).
    pub trim_k: f64,
    /// Respond per request beyond the ignored ones, K.
    pub respond_k_per_request: f64,
    /// Largest respond step in one period, K.
    pub max_respond_k: f64,
    /// How often trim and respond runs, seconds.
    pub period_s: f64,
    /// Lowest valve-demand shift, K.
    pub min_shift_k: f64,
    /// Highest valve-demand shift, K.
    pub max_shift_k: f64,
}
impl Default for ValveDemand {
    fn default() -> Self {
        Self {
            enabled: false,
            request_above_pct: 95.0,
            ignored_requests: 2,
            trim_k: -0.2,
            respond_k_per_request: 0.1,
            max_respond_k: 1.0,
            period_s: 600.0,
            min_shift_k: -10.0,
            max_shift_k: 10.0,
        }
    }
}

/// One point of the outdoor-dependent primary return limit line.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnLimitPoint {
    /// Outdoor temperature, °C.
    pub outdoor_c: f64,
    /// Highest allowed primary return temperature at that outdoor temperature, °C.
    pub max_return_c: f64,
}

/// A PI limiter's gains.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimiterGains {
    /// Setpoint reduction per unit of violation, K per unit.
    pub kp: f64,
    /// Integral time, seconds (0: proportional only).
    pub ti_s: f64,
}

/// Limiters, applied after the curve, the shifts and the schedule (setback, boost), in this
/// fixed order: 1 primary return, 2 return difference, 3 power / flow (each can only lower the
/// setpoint, so a protective limiter always wins over a boost), then 4 the setpoint rate limit.
/// The safety supervisor overrides them all. The explanation names each one's effect.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Primary return temperature limit.
    pub return1: Return1Limit,
    /// Secondary/primary return difference limit.
    pub return_difference: ReturnDifferenceLimit,
    /// Power and flow limit from the heat meter.
    pub power: PowerLimit,
    /// Setpoint rate limit.
    pub rate: RateLimit,
}

/// Primary return temperature limit on an outdoor-dependent line, with PI action on the setpoint.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Return1Limit {
    /// Whether the limit is active (needs a valid t1_return).
    pub enabled: bool,
    /// Limit line, strictly increasing in outdoor temperature; flat beyond the ends.
    pub points: Vec<ReturnLimitPoint>,
    /// PI gains: K of setpoint reduction per K above the limit.
    pub gains: LimiterGains,
}
impl Default for Return1Limit {
    fn default() -> Self {
        Self {
            enabled: true,
            points: vec![
                ReturnLimitPoint {
                    outdoor_c: -17.0,
                    max_return_c: 62.0,
                },
                ReturnLimitPoint {
                    outdoor_c: 8.0,
                    max_return_c: 45.0,
                },
            ],
            gains: LimiterGains {
                kp: 1.0,
                ti_s: 900.0,
            },
        }
    }
}

/// Limit on t1_return - t2_return: a large difference means the exchanger passes primary water
/// through without using it (fouling, over-flow).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReturnDifferenceLimit {
    /// Whether the limit is active (needs valid t1_return and t2_return).
    pub enabled: bool,
    /// Largest allowed t1_return - t2_return, K.
    pub max_difference_k: f64,
    /// PI gains: K of setpoint reduction per K above the limit.
    pub gains: LimiterGains,
}
impl Default for ReturnDifferenceLimit {
    fn default() -> Self {
        Self {
            enabled: false,
            max_difference_k: 8.0,
            gains: LimiterGains {
                kp: 1.0,
                ti_s: 900.0,
            },
        }
    }
}

/// Power and flow limit from the primary heat meter, only while its data are fresh.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PowerLimit {
    /// Whether the limit is active.
    pub enabled: bool,
    /// Contracted maximum heat power, kW.
    pub max_power_kw: f64,
    /// Contracted maximum primary flow, m³/h.
    pub max_flow_m3h: f64,
    /// PI gains: K of setpoint reduction per percent above the limit.
    pub gains: LimiterGains,
}
impl Default for PowerLimit {
    fn default() -> Self {
        Self {
            enabled: false,
            max_power_kw: 4000.0,
            max_flow_m3h: 60.0,
            gains: LimiterGains {
                kp: 0.5,
                ti_s: 600.0,
            },
        }
    }
}

/// Rate limit on the final setpoint.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimit {
    /// Fastest rise of the setpoint, K per minute.
    pub max_rise_k_per_min: f64,
    /// Fastest fall of the setpoint, K per minute.
    pub max_fall_k_per_min: f64,
}
impl Default for RateLimit {
    fn default() -> Self {
        Self {
            max_rise_k_per_min: 0.5,
            max_fall_k_per_min: 1.0,
        }
    }
}

/// A setback period in local time.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SetbackPeriod {
    /// Days it applies: any of "mon","tue","wed","thu","fri","sat","sun" or "all".
    pub days: Vec<String>,
    /// Start, local time "HH:MM".
    pub start: String,
    /// End, local time "HH:MM" (may be past midnight: "22:00" to "05:00").
    pub end: String,
}

/// Schedules: setback lowers the setpoint in given periods (offices, schools, public buildings),
/// weakened when it is very cold; a boost follows each setback to recover the building.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Schedule {
    /// Whether the schedule is used.
    pub enabled: bool,
    /// Setpoint reduction during setback, K.
    pub setback_k: f64,
    /// Setback periods.
    pub periods: Vec<SetbackPeriod>,
    /// At and above this damped outdoor temperature setback applies in full, °C.
    pub full_setback_above_c: f64,
    /// At and below this damped outdoor temperature there is no setback, °C (linear between).
    pub no_setback_below_c: f64,
    /// Setpoint raise after a setback ends, K.
    pub boost_k: f64,
    /// How long the boost lasts, seconds.
    pub boost_s: f64,
}
impl Default for Schedule {
    fn default() -> Self {
        Self {
            enabled: false,
            setback_k: 5.0,
            periods: Vec::new(),
            full_setback_above_c: 0.0,
            no_setback_below_c: -12.0,
            boost_k: 5.0,
            boost_s: 3600.0,
        }
    }
}

/// How the primary valve is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValveOutput {
    /// A 0..100 % position command (0-10 V or Modbus actuator).
    Position,
    /// Open/close pulses to a 3-point (floating) actuator.
    ThreePoint,
}

/// The primary valve loop: PI(D) on the secondary supply temperature.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Valve1 {
    /// Proportional gain, % valve per K of error. Start low (1-3); raise until t2_supply
    /// starts to oscillate, then halve.
    pub kp_pct_per_k: f64,
    /// Integral time, seconds. About the exchanger + pipe response time (60-300 s).
    pub ti_s: f64,
    /// Derivative time, seconds (0: PI only; rarely needed).
    pub td_s: f64,
    /// Errors smaller than this are ignored, K (saves actuator wear).
    pub deadband_k: f64,
    /// Fastest change of the command, % per second (full stroke in 100 s: 1.0).
    pub max_rate_pct_per_s: f64,
    /// Feed-forward: % of valve per K of setpoint above `feed_forward_zero_c` (0: off).
    pub feed_forward_pct_per_k: f64,
    /// Setpoint at which the feed-forward term is zero, °C.
    pub feed_forward_zero_c: f64,
    /// Position or three-point output.
    pub output: ValveOutput,
    /// Three-point actuator: full stroke time, seconds.
    pub run_time_s: f64,
    /// Three-point actuator: shortest pulse worth sending, seconds.
    pub min_pulse_s: f64,
    /// Lowest command in normal control, % (0 lets the valve close).
    pub min_pct: f64,
    /// Highest command in normal control, %.
    pub max_pct: f64,
}
impl Default for Valve1 {
    fn default() -> Self {
        Self {
            kp_pct_per_k: 2.0,
            ti_s: 120.0,
            td_s: 0.0,
            deadband_k: 0.2,
            max_rate_pct_per_s: 1.0,
            feed_forward_pct_per_k: 0.0,
            feed_forward_zero_c: 20.0,
            output: ValveOutput::Position,
            run_time_s: 120.0,
            min_pulse_s: 1.0,
            min_pct: 0.0,
            max_pct: 100.0,
        }
    }
}

/// Household or building valves: a slow loop per valve pulls its home toward the room target,
/// so overheated homes stop stealing flow from cold ones.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HouseholdValves {
    /// Whether the per-valve loops run (nodes with a `valve_link` have a valve).
    pub enabled: bool,
    /// Register map of the valve actuators, path relative to this file.
    pub map: String,
    /// Point of that map holding the position feedback, %.
    pub position_point: String,
    /// Writable point of that map taking the position command, %.
    pub command_point: String,
    /// Room target of the per-valve loops, °C.
    pub target_c: f64,
    /// Proportional gain, % per K.
    pub kp_pct_per_k: f64,
    /// Integral time, seconds (hours: homes are slow).
    pub ti_s: f64,
    /// The valve never closes below this, % (keeps circulation and frost protection).
    pub min_opening_pct: f64,
    /// Fastest change, % per hour.
    pub max_rate_pct_per_h: f64,
    /// How often the loops run, seconds.
    pub period_s: f64,
    /// Position on shutdown, fatal fault or when the room reading is lost, %.
    pub safe_position_pct: f64,
}
impl Default for HouseholdValves {
    fn default() -> Self {
        Self {
            enabled: false,
            map: "devices/valve-actuator.toml".into(),
            position_point: "position".into(),
            command_point: "command".into(),
            target_c: 19.5,
            kp_pct_per_k: 20.0,
            ti_s: 14_400.0,
            min_opening_pct: 10.0,
            max_rate_pct_per_h: 30.0,
            period_s: 300.0,
            safe_position_pct: 100.0,
        }
    }
}

/// The safety supervisor, which overrides every control function.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Safety {
    /// Frost protection starts when t2_supply or t2_return falls to this, °C.
    pub frost_c: f64,
    /// Least primary valve opening during frost protection, %.
    pub frost_valve_min_pct: f64,
    /// Hard maximum of t2_supply, °C: above it the valve is closed...
    pub t2_supply_max_c: f64,
    /// Hard maximum of t1_return, °C: above it the valve is closed...
    pub t1_return_max_c: f64,
    /// ...until the temperature is this far back below the maximum, K.
    pub cut_hysteresis_k: f64,
    /// When t2_supply is lost, hold the last command this long, seconds...
    pub t2_lost_hold_s: f64,
    /// ...then drive the primary valve to this position, %.
    pub valve1_safe_pct: f64,
    /// An alarm clears only after its condition has been gone this long, seconds.
    pub alarm_clear_delay_s: f64,
}
impl Default for Safety {
    fn default() -> Self {
        Self {
            frost_c: 5.0,
            frost_valve_min_pct: 20.0,
            t2_supply_max_c: 95.0,
            t1_return_max_c: 90.0,
            cut_hysteresis_k: 5.0,
            t2_lost_hold_s: 60.0,
            valve1_safe_pct: 15.0,
            alarm_clear_delay_s: 60.0,
        }
    }
}

/// Kind of a communication link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// Modbus TCP.
    Tcp,
    /// Modbus RTU on a local serial port (RS-485 adapter).
    Rtu,
    /// Modbus RTU frames through a transparent serial-to-Ethernet gateway.
    RtuOverTcp,
}

/// Serial parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Parity {
    /// No parity bit.
    None,
    /// Even parity.
    Even,
    /// Odd parity.
    Odd,
}

/// A communication link. One task polls each link; devices on one link are polled in turn.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// Name the devices refer to.
    pub name: String,
    /// "tcp", "rtu" or "rtu_over_tcp".
    pub kind: LinkKind,
    /// Host of a TCP link or gateway.
    pub host: Option<String>,
    /// Port of a TCP link or gateway (Modbus TCP: 502).
    pub port: Option<u16>,
    /// Serial device of an RTU link, e.g. "/dev/ttyS1".
    pub serial_port: Option<String>,
    /// Baud rate of the RS-485 bus (RTU and RTU over TCP; sets the inter-frame gap).
    #[serde(default = "d_baud")]
    pub baud: u32,
    /// Parity of the bus.
    #[serde(default = "d_parity")]
    pub parity: Parity,
    /// Stop bits (1 or 2).
    #[serde(default = "d_stop_bits")]
    pub stop_bits: u8,
    /// Every request must be answered within this many milliseconds.
    #[serde(default = "d_timeout_ms")]
    pub timeout_ms: u64,
    /// First wait before reconnecting after a failure, ms (doubles up to `reconnect_max_ms`).
    #[serde(default = "d_reconnect_min")]
    pub reconnect_min_ms: u64,
    /// Longest wait between reconnect attempts, ms.
    #[serde(default = "d_reconnect_max")]
    pub reconnect_max_ms: u64,
}
fn d_baud() -> u32 {
    9600
}
fn d_parity() -> Parity {
    Parity::None
}
fn d_stop_bits() -> u8 {
    1
}
fn d_timeout_ms() -> u64 {
    1000
}
fn d_reconnect_min() -> u64 {
    500
}
fn d_reconnect_max() -> u64 {
    30_000
}

/// A field device.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// Name the points refer to, e.g. "plc" in "plc.t2_supply".
    pub name: String,
    /// Link it is on.
    pub link: String,
    /// Modbus unit id (1..247; 255 or 0 for some TCP devices).
    pub unit_id: u8,
    /// Register map file, relative to this configuration file, e.g. "devices/heat-meter.toml".
    pub map: String,
}

/// Which device point ("device.point") feeds each controller signal. Leave out what the
/// substation does not have; `t2_supply` is required to run, and `valve1_cmd` with a position
/// output or `valve1_open` and `valve1_close` with a three-point output.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Points {
    /// Outdoor temperature.
    pub t_out: Option<String>,
    /// Primary supply temperature.
    pub t1_supply: Option<String>,
    /// Primary return temperature.
    pub t1_return: Option<String>,
    /// Secondary supply temperature.
    pub t2_supply: Option<String>,
    /// Secondary return temperature.
    pub t2_return: Option<String>,
    /// Heat-meter power, kW.
    pub power1_kw: Option<String>,
    /// Heat-meter flow, m³/h.
    pub flow1_m3h: Option<String>,
    /// Primary valve position feedback, %.
    pub valve1_pos_pct: Option<String>,
    /// Primary valve command (a writable point), %; `valve1.output = "position"`.
    pub valve1_cmd: Option<String>,
    /// Three-point actuator (`valve1.output = "three_point"`): the writable point (a coil or
    /// holding register of a PLC relay output) set to 1 while the valve is driven open, 0
    /// otherwise.
    pub valve1_open: Option<String>,
    /// Three-point actuator: the writable point set to 1 while the valve is driven closed.
    /// heatctl never sets both at once; on shutdown both go to 0 (the actuator holds).
    pub valve1_close: Option<String>,
}

/// A point the controller writes (its key in `[points]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandPoint {
    /// `valve1_cmd`: the position command.
    Valve1Cmd,
    /// `valve1_open`: the three-point open output.
    Valve1Open,
    /// `valve1_close`: the three-point close output.
    Valve1Close,
}

impl CommandPoint {
    /// Every command point.
    pub const ALL: [CommandPoint; 3] = [
        CommandPoint::Valve1Cmd,
        CommandPoint::Valve1Open,
        CommandPoint::Valve1Close,
    ];

    /// Its key in `[points]`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            CommandPoint::Valve1Cmd => "valve1_cmd",
            CommandPoint::Valve1Open => "valve1_open",
            CommandPoint::Valve1Close => "valve1_close",
        }
    }
}

impl Points {
    /// The binding ("device.point") of a signal, if any.
    #[must_use]
    pub fn signal(&self, s: Signal) -> Option<&str> {
        match s {
            Signal::TOut => &self.t_out,
            Signal::T1Supply => &self.t1_supply,
            Signal::T1Return => &self.t1_return,
            Signal::T2Supply => &self.t2_supply,
            Signal::T2Return => &self.t2_return,
            Signal::Power1Kw => &self.power1_kw,
            Signal::Flow1M3h => &self.flow1_m3h,
            Signal::Valve1PosPct => &self.valve1_pos_pct,
        }
        .as_deref()
    }

    /// The binding of a command point, if any.
    #[must_use]
    pub fn command(&self, c: CommandPoint) -> Option<&str> {
        match c {
            CommandPoint::Valve1Cmd => &self.valve1_cmd,
            CommandPoint::Valve1Open => &self.valve1_open,
            CommandPoint::Valve1Close => &self.valve1_close,
        }
        .as_deref()
    }

    /// Every key of `[points]` with its binding (`None`: not bound), signals first; the
    /// second value says whether the controller writes it.
    pub fn bindings(&self) -> impl Iterator<Item = (&'static str, Option<&str>, bool)> + '_ {
        let read = Signal::ALL
            .into_iter()
            .map(|s| (s.name(), self.signal(s), false));
        let written = CommandPoint::ALL
            .into_iter()
            .map(|c| (c.name(), self.command(c), true));
        read.chain(written)
    }
}

/// Position of an apartment in its building (for weighting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    /// Top floor, not an end unit.
    Top,
    /// Ground floor, not an end unit.
    Ground,
    /// End unit on an intermediate floor.
    End,
    /// Middle unit on an intermediate floor.
    Middle,
    /// Top-floor end unit.
    TopEnd,
    /// Ground-floor end unit.
    GroundEnd,
}

/// One household room-temperature node.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoomNode {
    /// Unique id, e.g. "b03-1502" (building 3, floor 15, flat 2).
    pub id: String,
    /// Building it is in.
    #[serde(default)]
    pub building: String,
    /// Position of the flat, for weighting.
    #[serde(default = "d_position")]
    pub position: Position,
    /// Link (usually an RTU gateway) the node is on.
    pub link: String,
    /// Its Modbus unit id on that bus.
    pub unit_id: u8,
    /// The flat is vacant: the node is read but does not count for demand.
    #[serde(default)]
    pub vacant: bool,
    /// Excluded by a technician (known faulty, odd location).
    #[serde(default)]
    pub excluded: bool,
    /// Link of this home's valve actuator, if it has one.
    pub valve_link: Option<String>,
    /// Unit id of this home's valve actuator.
    pub valve_unit_id: Option<u8>,
}
fn d_position() -> Position {
    Position::Middle
}

/// Household room-temperature nodes.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rooms {
    /// Register map of the nodes, relative to this file.
    pub map: String,
    /// Point of that map holding the room temperature.
    pub temperature_point: String,
    /// The nodes.
    pub nodes: Vec<RoomNode>,
}
impl Default for Rooms {
    fn default() -> Self {
        Self {
            map: "devices/room-node.toml".into(),
            temperature_point: "temperature".into(),
            nodes: Vec::new(),
        }
    }
}

/// Settings SCADA may write (the allowlist names).
pub const SCADA_WRITABLE: &[&str] = &[
    "curve_shift_k",
    "operating_mode",
    "room_target_c",
    "demand_enabled",
    "valve1_manual_pct",
];

/// The SCADA face: a Modbus TCP slave (off by default).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scada {
    /// Whether the slave listens.
    pub enabled: bool,
    /// Address to listen on, e.g. "0.0.0.0:502" (use a firewall) or "127.0.0.1:1502".
    pub listen: String,
    /// Unit id the slave answers to (0 and 255 are always accepted on TCP).
    pub unit_id: u8,
    /// Most simultaneous SCADA connections; more are refused.
    pub max_connections: u32,
    /// Settings SCADA may write; anything else answers exception 02. Any of
    /// "curve_shift_k", "operating_mode", "room_target_c", "demand_enabled", "valve1_manual_pct".
    pub writable: Vec<String>,
}
impl Default for Scada {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: "127.0.0.1:1502".into(),
            unit_id: 1,
            max_connections: 4,
            writable: vec!["curve_shift_k".into(), "room_target_c".into()],
        }
    }
}
