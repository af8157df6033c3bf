//! The fault timeline of a scenario: what can fail, how a target is named, and the checks of
//! each `[[faults]]` entry.

use serde::Deserialize;

use super::BuildingsSection;
use super::parse::Collector;

/// Kind of an injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// The sensor reads its sentinel (0x7FFF).
    SensorSentinel,
    /// The sensor keeps the value it had when the fault started.
    SensorFrozen,
    /// The sensor drifts away at `drift_k_per_h`.
    SensorDrift,
    /// The sensor reads `jump_k` away from the truth.
    SensorJump,
    /// The device does not answer at all.
    DeviceSilent,
    /// The device answers after `delay_ms`.
    DeviceSlow,
    /// The device answers every request with Modbus exception 04.
    DeviceException,
    /// The device closes the TCP connection on each request.
    DeviceDrop,
    /// The gateway reboots: refuses and closes connections for the window.
    GatewayReboot,
    /// The valve stops moving.
    ValveStuck,
}

/// One fault of the timeline, active from `start_h` for `duration_h` hours of simulated time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// What happens.
    pub kind: FaultKind,
    /// What it happens to: a sensor (`t_out`, `t1_supply`, `t1_return`, `t2_supply`,
    /// `t2_return`, `valve1_pos`, `heat_meter_power`, `heat_meter_flow`, `room_node:<apartment>`),
    /// a device (`substation_io`, `heat_meter`, `room_node:<apartment>`, `room_gateway:<building>`,
    /// `valve_gateway:<building>`), or a valve (`valve1`, `household_valve:<apartment>`).
    pub target: String,
    /// Start, hours of simulated time after the scenario start.
    pub start_h: f64,
    /// Duration, hours.
    pub duration_h: f64,
    /// Drift rate for `sensor_drift`, K/h (or %/h, unit of the sensor per hour).
    pub drift_per_h: Option<f64>,
    /// Offset for `sensor_jump`, in the sensor's unit.
    pub jump: Option<f64>,
    /// Reply delay for `device_slow`, ms.
    pub delay_ms: Option<u64>,
}

/// A fault target, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultTarget {
    /// A substation-level sensor.
    Sensor(SensorId),
    /// The room node of an apartment (sensor or device).
    RoomNode(usize),
    /// The substation I/O device.
    SubstationIo,
    /// The heat meter device.
    HeatMeter,
    /// The room-node gateway of a building.
    RoomGateway(usize),
    /// The household-valve gateway of a building.
    ValveGateway(usize),
    /// The primary valve.
    Valve1,
    /// The household valve of an apartment.
    HouseholdValve(usize),
}

/// Substation-level sensors that faults can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SensorId {
    /// Outdoor temperature.
    TOut,
    /// Primary supply temperature.
    T1Supply,
    /// Primary return temperature.
    T1Return,
    /// Secondary supply temperature.
    T2Supply,
    /// Secondary return temperature.
    T2Return,
    /// Primary valve position feedback.
    Valve1Pos,
    /// Heat meter power.
    HeatMeterPower,
    /// Heat meter flow.
    HeatMeterFlow,
    /// Secondary differential pressure at the substation outlet.
    Dp2Station,
    /// Secondary differential pressure at the index building's riser foot.
    Dp2Index,
    /// Circulation pump electric power.
    Pump2Power,
    /// Secondary volume flow.
    Flow2,
}

impl FaultTarget {
    /// Parse a target string.
    pub fn parse(s: &str) -> Option<FaultTarget> {
        let indexed = |prefix: &str| -> Option<usize> { s.strip_prefix(prefix)?.parse().ok() };
        Some(match s {
            "t_out" => FaultTarget::Sensor(SensorId::TOut),
            "t1_supply" => FaultTarget::Sensor(SensorId::T1Supply),
            "t1_return" => FaultTarget::Sensor(SensorId::T1Return),
            "t2_supply" => FaultTarget::Sensor(SensorId::T2Supply),
            "t2_return" => FaultTarget::Sensor(SensorId::T2Return),
            "valve1_pos" => FaultTarget::Sensor(SensorId::Valve1Pos),
            "heat_meter_power" => FaultTarget::Sensor(SensorId::HeatMeterPower),
            "heat_meter_flow" => FaultTarget::Sensor(SensorId::HeatMeterFlow),
            "dp2_station" => FaultTarget::Sensor(SensorId::Dp2Station),
            "dp2_index" => FaultTarget::Sensor(SensorId::Dp2Index),
            "pump2_power" => FaultTarget::Sensor(SensorId::Pump2Power),
            "flow2" => FaultTarget::Sensor(SensorId::Flow2),
            "substation_io" => FaultTarget::SubstationIo,
            "heat_meter" => FaultTarget::HeatMeter,
            "valve1" => FaultTarget::Valve1,
            _ => {
                if let Some(i) = indexed("room_node:") {
                    FaultTarget::RoomNode(i)
                } else if let Some(i) = indexed("room_gateway:") {
                    FaultTarget::RoomGateway(i)
                } else if let Some(i) = indexed("valve_gateway:") {
                    FaultTarget::ValveGateway(i)
                } else if let Some(i) = indexed("household_valve:") {
                    FaultTarget::HouseholdValve(i)
                } else {
                    return None;
                }
            }
        })
    }
}

/// A validated fault of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// What happens.
    pub kind: FaultKind,
    /// To what.
    pub target: FaultTarget,
    /// Start, s of simulated time.
    pub start_s: f64,
    /// End, s of simulated time.
    pub end_s: f64,
    /// Drift rate per hour (`sensor_drift`).
    pub drift_per_h: f64,
    /// Offset (`sensor_jump`).
    pub jump: f64,
    /// Reply delay, ms (`device_slow`).
    pub delay_ms: u64,
}

impl Fault {
    /// Whether the fault is active at simulated time `t_s`.
    pub fn active_at(&self, t_s: f64) -> bool {
        t_s >= self.start_s && t_s < self.end_s
    }
}

/// The validated faults of `specs` (with their index in `[[faults]]`), problems reported to `c`.
pub(super) fn check(
    c: &mut Collector<'_>,
    specs: Vec<(usize, FaultSpec)>,
    b: &BuildingsSection,
    household_valves_enabled: bool,
) -> Vec<Fault> {
    let n_apartments = b.count * b.floors * b.units_per_floor;
    let mut faults = Vec::new();
    for (i, f) in specs {
        let p = |field: &str| format!("faults[{i}].{field}");
        let target = FaultTarget::parse(&f.target);
        match target {
            None => c.push(&p("target"), None, format!("unknown target `{}`", f.target)),
            Some(t) => {
                let idx_ok = match t {
                    FaultTarget::RoomNode(a) | FaultTarget::HouseholdValve(a) => a < n_apartments,
                    FaultTarget::RoomGateway(bi) | FaultTarget::ValveGateway(bi) => bi < b.count,
                    _ => true,
                };
                c.check(
                    idx_ok,
                    &p("target"),
                    format!("`{}`: index out of range", f.target),
                );
                let fits = match f.kind {
                    FaultKind::SensorSentinel
                    | FaultKind::SensorFrozen
                    | FaultKind::SensorDrift
                    | FaultKind::SensorJump => {
                        matches!(t, FaultTarget::Sensor(_) | FaultTarget::RoomNode(_))
                    }
                    FaultKind::DeviceSilent
                    | FaultKind::DeviceSlow
                    | FaultKind::DeviceException
                    | FaultKind::DeviceDrop => matches!(
                        t,
                        FaultTarget::SubstationIo
                            | FaultTarget::HeatMeter
                            | FaultTarget::RoomNode(_)
                            | FaultTarget::RoomGateway(_)
                            | FaultTarget::ValveGateway(_)
                            | FaultTarget::HouseholdValve(_)
                    ),
                    FaultKind::GatewayReboot => {
                        matches!(
                            t,
                            FaultTarget::RoomGateway(_) | FaultTarget::ValveGateway(_)
                        )
                    }
                    FaultKind::ValveStuck => {
                        matches!(t, FaultTarget::Valve1 | FaultTarget::HouseholdValve(_))
                    }
                };
                c.check(
                    fits,
                    &p("target"),
                    format!("`{}` is not a valid target for {:?}", f.target, f.kind),
                );
                if matches!(
                    t,
                    FaultTarget::HouseholdValve(_) | FaultTarget::ValveGateway(_)
                ) {
                    c.check(
                        household_valves_enabled,
                        &p("target"),
                        "household valves are not enabled",
                    );
                }
            }
        }
        c.range(f.start_h, 0.0, 1.0e6, &p("start_h"));
        c.range(f.duration_h, 0.0, 1.0e6, &p("duration_h"));
        let needs = |k: FaultKind| f.kind == k;
        c.check(
            !needs(FaultKind::SensorDrift) || f.drift_per_h.is_some(),
            &p("drift_per_h"),
            "required for sensor_drift",
        );
        c.check(
            !needs(FaultKind::SensorJump) || f.jump.is_some(),
            &p("jump"),
            "required for sensor_jump",
        );
        c.check(
            !needs(FaultKind::DeviceSlow) || f.delay_ms.is_some(),
            &p("delay_ms"),
            "required for device_slow",
        );
        if let Some(t) = target {
            faults.push(Fault {
                kind: f.kind,
                target: t,
                start_s: f.start_h * 3600.0,
                end_s: (f.start_h + f.duration_h) * 3600.0,
                drift_per_h: f.drift_per_h.unwrap_or(0.0),
                jump: f.jump.unwrap_or(0.0),
                delay_ms: f.delay_ms.unwrap_or(0),
            });
        }
    }

    faults
}
