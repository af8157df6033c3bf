//! What a step decides, and why.

use super::validation::Rejection;
use crate::signal::Signal;

/// Operating mode, set by a technician or SCADA.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Normal automatic control.
    Auto,
    /// Heating off: valves to their safe positions (the supervisor still protects from frost).
    Off,
    /// Primary valve held at a manual position, % (the supervisor still cuts over-temperature).
    Manual(f64),
}

impl Mode {
    /// Code on SCADA: 0 auto, 1 off, 2 manual.
    #[must_use]
    pub fn code(self) -> u16 {
        match self {
            Mode::Auto => 0,
            Mode::Off => 1,
            Mode::Manual(_) => 2,
        }
    }
}

/// A pulse for a 3-point (floating) actuator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pulse {
    /// Drive open for this many seconds.
    Open(f64),
    /// Drive closed for this many seconds.
    Close(f64),
}

/// Limiters and overrides, in their fixed priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limiter {
    /// Primary return temperature limit.
    Return1,
    /// Return difference limit.
    ReturnDifference,
    /// Power or flow limit.
    Power,
    /// Schedule setback.
    Setback,
    /// Boost after setback (raises).
    Boost,
    /// Setpoint rate limit.
    Rate,
    /// Curve min/max clamp.
    Clamp,
    /// Summer cut-off.
    Summer,
}

impl Limiter {
    /// Stable code (SCADA).
    #[must_use]
    pub fn code(self) -> u16 {
        match self {
            Limiter::Return1 => 1,
            Limiter::ReturnDifference => 2,
            Limiter::Power => 3,
            Limiter::Setback => 4,
            Limiter::Boost => 5,
            Limiter::Rate => 6,
            Limiter::Clamp => 7,
            Limiter::Summer => 8,
        }
    }

    /// Name for logs.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Limiter::Return1 => "return1",
            Limiter::ReturnDifference => "return_difference",
            Limiter::Power => "power",
            Limiter::Setback => "setback",
            Limiter::Boost => "boost",
            Limiter::Rate => "rate",
            Limiter::Clamp => "clamp",
            Limiter::Summer => "summer",
        }
    }
}

/// Alarm codes. The numbers are stable: SCADA and the utility's alarm lists rely on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u16)]
pub enum AlarmCode {
    /// Outdoor sensor invalid or stale: last good value held.
    OutdoorSensorLost = 101,
    /// Outdoor sensor lost longer than the hold time: fixed fallback temperature in use.
    OutdoorFallback = 102,
    /// Secondary supply sensor lost.
    T2SupplyLost = 103,
    /// Secondary return sensor invalid.
    T2ReturnInvalid = 104,
    /// Primary return sensor invalid: return limit inactive.
    T1ReturnInvalid = 105,
    /// Primary supply sensor invalid.
    T1SupplyInvalid = 106,
    /// Heat meter stale or invalid: power limit inactive.
    HeatMeterInvalid = 107,
    /// Primary valve position feedback invalid.
    Valve1FeedbackInvalid = 108,
    /// The secondary pump's differential-pressure reading (the one its mode holds) is lost:
    /// last speed held, then the fallback speed.
    Pump2DpLost = 110,
    /// Too few room nodes alive: demand correction decaying.
    RoomQuorumLost = 201,
    /// Some room nodes invalid, stale, stuck or outliers.
    RoomNodesInvalid = 202,
    /// Some room nodes suspect: for `demand.suspect_after_h` far colder than their position
    /// class and the comfort floor (lying low, stuck cold), or their rooms did not respond to
    /// their household valves (rogue valves); left out of the coldest estimate, their flats
    /// estimated from their learned offsets. The room verdicts name them ("suspect").
    RoomNodesSuspect = 203,
    /// Frost protection active.
    Frost = 301,
    /// Secondary supply over its hard maximum: valve closed.
    T2OverTemperature = 302,
    /// Primary return over its hard maximum: valve closed.
    T1ReturnOverTemperature = 303,
    /// Secondary pump dry-run guard tripped: low flow or pressure, pump stopped.
    Pump2DryRun = 311,
    /// Primary valve does not follow its command.
    Valve1Deviation = 401,
    /// Secondary pump speed feedback invalid or far from the command.
    Pump2Feedback = 402,
    /// A field device does not answer (raised by the field layer).
    DeviceCommLost = 501,
    /// A write failed or its read-back disagrees (raised by the field layer).
    WriteFailed = 502,
    /// The platform link is enabled but not connected to any broker (raised by the runtime;
    /// outgoing messages wait in the queue on disk).
    PlatformLinkDown = 601,
    /// The wall clock was stepped (NTP after a boot without a clock, an operator): schedules
    /// follow the new time, durations are unaffected (raised by the runtime).
    WallClockStepped = 701,
    /// The state directory cannot be written (read-only, full, gone): the state file or the
    /// balance history is not saved; control goes on, the last good file is kept, and the
    /// write is retried (raised by the runtime).
    StateWriteFailed = 702,
}

impl AlarmCode {
    /// The stable number.
    #[must_use]
    pub fn number(self) -> u16 {
        self as u16
    }

    /// Short text for logs and the status line.
    #[must_use]
    pub fn text(self) -> &'static str {
        match self {
            AlarmCode::OutdoorSensorLost => "outdoor sensor lost, holding last good value",
            AlarmCode::OutdoorFallback => "outdoor sensor lost, fallback temperature in use",
            AlarmCode::T2SupplyLost => "secondary supply sensor lost",
            AlarmCode::T2ReturnInvalid => "secondary return sensor invalid",
            AlarmCode::T1ReturnInvalid => "primary return sensor invalid",
            AlarmCode::T1SupplyInvalid => "primary supply sensor invalid",
            AlarmCode::HeatMeterInvalid => "heat meter data stale or invalid",
            AlarmCode::Valve1FeedbackInvalid => "primary valve feedback invalid",
            AlarmCode::Pump2DpLost => {
                "secondary pump pressure reading lost, speed held or fallback"
            }
            AlarmCode::Pump2DryRun => "secondary pump dry-run guard: pump stopped",
            AlarmCode::Pump2Feedback => "secondary pump does not follow its command",
            AlarmCode::RoomQuorumLost => "too few room nodes alive",
            AlarmCode::RoomNodesInvalid => "some room nodes invalid",
            AlarmCode::RoomNodesSuspect => "some room nodes suspect (far colder than their class)",
            AlarmCode::Frost => "frost protection",
            AlarmCode::T2OverTemperature => "secondary supply over temperature",
            AlarmCode::T1ReturnOverTemperature => "primary return over temperature",
            AlarmCode::Valve1Deviation => "primary valve does not follow its command",
            AlarmCode::DeviceCommLost => "field device not answering",
            AlarmCode::WriteFailed => "write to field device failed",
            AlarmCode::PlatformLinkDown => "platform link not connected, messages queued on disk",
            AlarmCode::WallClockStepped => "wall clock stepped, schedules follow the new time",
            AlarmCode::StateWriteFailed => "state directory not writable, state not saved",
        }
    }
}

/// An active alarm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Alarm {
    /// Which.
    pub code: AlarmCode,
    /// When it was raised: wall time, unix seconds.
    pub since_s: f64,
}

/// Where the outdoor temperature came from this step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutdoorSource {
    /// The sensor.
    Measured,
    /// Last good value held.
    Held,
    /// Configured fallback.
    Fallback,
}

/// Room statistics of the last demand-correction run.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct RoomStats {
    /// Nodes that count (not vacant, not excluded).
    pub expected: usize,
    /// Of those, valid, fresh, not stuck and not outliers.
    pub used: usize,
    /// Rejected as invalid, stale, stuck or jumping.
    pub invalid: usize,
    /// Rejected as outliers from the median.
    pub outliers: usize,
    /// Whether the quorum was met.
    pub quorum: bool,
    /// Weighted low percentile, °C.
    pub percentile_c: Option<f64>,
    /// Median, °C.
    pub median_c: Option<f64>,
    /// Trimmed mean, °C.
    pub trimmed_mean_c: Option<f64>,
}

/// One limiter's effect this step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimiterEffect {
    /// Which.
    pub limiter: Limiter,
    /// Change it made to the setpoint, K (negative lowers).
    pub delta_k: f64,
}

/// Why the step decided what it did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Explanation {
    /// Measured outdoor temperature used, °C (after validation, hold or fallback).
    pub outdoor_c: Option<f64>,
    /// Where it came from.
    pub outdoor_source: Option<OutdoorSource>,
    /// Damped outdoor temperature, °C.
    pub damped_outdoor_c: Option<f64>,
    /// Composite outdoor temperature, °C.
    pub composite_outdoor_c: Option<f64>,
    /// Curve value before shifts, °C.
    pub curve_c: f64,
    /// Technician's (config or SCADA) shift, K.
    pub base_shift_k: f64,
    /// Demand correction shift, K.
    pub demand_shift_k: f64,
    /// Valve-position (trim and respond) shift, K.
    pub valve_demand_shift_k: f64,
    /// Room statistics.
    pub rooms: RoomStats,
    /// Effects of every limiter that changed the setpoint, in priority order.
    pub limiters: Vec<LimiterEffect>,
    /// The limiter with the largest effect, if any.
    pub active_limiter: Option<Limiter>,
    /// Final secondary supply setpoint, °C (None while heating is off).
    pub setpoint_c: Option<f64>,
    /// Whether heating is on (summer cut-off and mode).
    pub heating_on: bool,
    /// What the supervisor did to the valve, if anything.
    pub supervisor: Option<SupervisorAction>,
    /// Fallbacks in force.
    pub fallbacks: Vec<AlarmCode>,
    /// Signals that were read but rejected by validation, with the reason (signals not
    /// connected are not listed).
    pub rejected: Vec<SignalRejection>,
}

/// A signal validation rejected this step, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalRejection {
    /// Which signal.
    pub signal: Signal,
    /// Why.
    pub reason: Rejection,
}

/// An override by the safety supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SupervisorAction {
    /// Valve held at its last command (t2_supply briefly lost).
    HoldOnSensorLoss,
    /// Valve at its safe position (sensor lost too long, mode off, summer).
    SafePosition,
    /// Valve opened to the frost minimum.
    Frost,
    /// Valve closed: over-temperature.
    OverTemperatureCut,
}

/// What the controller wants written, with the reasons.
#[derive(Debug, Clone, PartialEq)]
pub struct Commands {
    /// Primary valve position command, %.
    pub valve1_pct: f64,
    /// For a 3-point actuator: the pulse to give now.
    pub valve1_pulse: Option<Pulse>,
    /// Household valve commands, % (`rooms.nodes` order; None where there is no valve loop).
    pub hh_valves_pct: Vec<Option<f64>>,
    /// The secondary pump's command (`None`: not controlled, `points.pump2_speed_cmd` unbound).
    pub pump2: Option<super::pump::Pump2Command>,
    /// Active alarms.
    pub alarms: Vec<Alarm>,
    /// Why.
    pub explanation: Explanation,
}
