//! The substation configuration as a technician writes it (TOML): the root table, and the one
//! validation pass that runs every table's check.
//!
//! Every struct of the schema is one TOML table and lives in its own module beside its check
//! and allowed ranges; the doc comment of each field is the reference manual for that setting
//! (`heatctl config-ref` prints them all). Units are in the names: `_c` °C, `_k` kelvin (a
//! temperature difference), `_s` seconds, `_h` hours, `_pct` percent, `_kw` kilowatts, `_m3h`
//! cubic metres per hour. Unknown keys are rejected, so a misspelt setting is an error, never
//! silently ignored.

use serde::{Deserialize, Serialize};

use super::check::Checker;
use super::problems::Problem;
use super::*;

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
    /// The secondary circulation pump's speed control (off unless `points.pump2_speed_cmd`
    /// is bound).
    #[serde(default)]
    pub pump2: Pump2,
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
    /// The platform face: telemetry to and commands from the utility's MQTT broker.
    #[serde(default)]
    pub platform: Platform,
    /// The web face: the technician's local status page.
    #[serde(default)]
    pub web: Web,
    /// The hourly room history and the balancing advice drawn from it.
    #[serde(default)]
    pub history: History,
}

/// Check values and contradictions within one configuration, table by table.
pub(crate) fn validate(c: &Config) -> Vec<Problem> {
    let mut k = Checker::default();
    c.site.check(&mut k);
    c.signals.check(&mut k);
    c.outdoor.check(&mut k);
    c.curve.check(&mut k);
    c.summer.check(&mut k);
    c.demand.check(&mut k);
    c.valve_demand.check(&c.rooms.nodes, &mut k);
    c.limits.check(c.safety.t1_return_max_c, &mut k);
    c.schedule.check(&mut k);
    c.valve1.check(&mut k);
    c.household_valves.check(&mut k);
    c.pump2.check(c, &mut k);
    c.safety.check(&c.curve, &mut k);
    field::check(c, &mut k);
    c.scada.check(&mut k);
    c.platform.check(&mut k);
    c.web.check(&mut k);
    c.history.check(&c.rooms.nodes, &mut k);
    k.out
}
