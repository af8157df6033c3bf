//! The station snapshot: everything the outside may see of one control cycle, computed once.
//!
//! The runtime builds a [`StationSnapshot`] at the end of every cycle from what the cycle used
//! and decided (process image, commands with the explanation and every alarm, the field layer's
//! device health, the settings in force, the clock) and publishes it as an
//! `Arc<StationSnapshot>` on a `tokio::sync::watch` channel. Every face reads it and nothing
//! else: the SCADA input and holding registers, the log lines, the state file, the demo's
//! status line and summary. A reader never holds up the cycle: the watch channel keeps only
//! the latest snapshot, and cloning the `Arc` is all a reader costs.
//!
//! The snapshot serialises with serde (units in the field names) for telemetry as JSON. The
//! controller's own types (limiters, supervisor actions, alarm codes) appear by name.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::config::{LoadedConfig, ValveOutput};
use crate::control::demand::NodeVerdict;
use crate::control::{
    Alarm, Commands, Explanation, Mode, ProcessImage, Pump2Command, Rejection, RoomStats, Sample,
    SavedState, Signal, StepTime,
};
use crate::field::{DeviceStats, LinkPlan};
use crate::runtime::clock::Clock;

/// Comfort floor of the rooms summary, °C: the share of sensed homes at or above it is
/// reported.
pub const COMFORT_FLOOR_C: f64 = 18.0;

/// Sends the latest snapshot (None before the first cycle).
pub type SnapshotSender = tokio::sync::watch::Sender<Option<Arc<StationSnapshot>>>;
/// Receives the latest snapshot (None before the first cycle).
pub type SnapshotReceiver = tokio::sync::watch::Receiver<Option<Arc<StationSnapshot>>>;

/// Everything the outside may see of one control cycle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StationSnapshot {
    /// Site name.
    pub site: String,
    /// Which station this is, which software and configuration it runs, since when.
    pub station: StationIdentity,
    /// The clock the cycle ran on.
    pub clock: ClockState,
    /// Every substation signal, in [`Signal::ALL`] order (in JSON: an object by the signal's
    /// JSON key, which carries its unit).
    #[serde(serialize_with = "ser::measurements")]
    pub measurements: Vec<Measurement>,
    /// What the controller commanded.
    pub commands: CommandState,
    /// Why it decided what it did (curve, shifts, limiters, supervisor, fallbacks).
    #[serde(serialize_with = "ser::explanation")]
    pub explanation: Explanation,
    /// Room temperatures, summarised.
    pub rooms: RoomsSummary,
    /// Active alarms: the controller's, then the field layer's.
    #[serde(serialize_with = "ser::alarms")]
    pub alarms: Vec<Alarm>,
    /// Field devices, links in order, devices in link order.
    pub devices: Vec<DeviceHealth>,
    /// Field links, in configuration order.
    pub links: Vec<LinkHealth>,
    /// Settings in force (the ones SCADA can change).
    pub settings: OperatorSettings,
    /// The slow control state, as the state file keeps it.
    pub saved_state: SavedState,
    /// The platform link (None when it does not run).
    pub platform: Option<PlatformLinkState>,
}

/// Which station, software and configuration, and since when.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct StationIdentity {
    /// Site id (`platform.site_id`).
    pub site_id: String,
    /// Station id (`platform.station_id`, or derived from `site.name`).
    pub station_id: String,
    /// heatctl's version.
    pub version: String,
    /// Hash of the configuration in force (16 hex digits, of its normalised content: comments
    /// and layout do not change it).
    pub config_hash: String,
    /// Wall time the run started, unix seconds.
    pub started_unix_s: f64,
    /// Real seconds since the run started.
    pub uptime_s: f64,
    /// Control cycles completed since the run started, this one included (SCADA input 26 carries
    /// it modulo 65535 as a heartbeat; two faces showing the same count show the same cycle).
    pub cycle: u64,
}

impl StationIdentity {
    /// The identity of a run of `cfg` started at `started_unix_s`.
    #[must_use]
    pub fn of(cfg: &crate::config::Config, started_unix_s: f64) -> Self {
        Self {
            site_id: cfg.platform.site_id.clone(),
            station_id: cfg.platform.station_id_or(&cfg.site.name),
            version: env!("CARGO_PKG_VERSION").into(),
            config_hash: config_hash(cfg),
            started_unix_s,
            uptime_s: 0.0,
            cycle: 0,
        }
    }
}

/// The hash of a configuration's normalised content (FNV-1a, 64 bits, of its TOML as
/// serialised), as 16 hex digits.
#[must_use]
pub fn config_hash(cfg: &crate::config::Config) -> String {
    let text = toml::to_string(cfg).unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The platform link as the station reports it.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct PlatformLinkState {
    /// Broker URL in use (without credentials).
    pub broker: String,
    /// Connected to the broker now.
    pub connected: bool,
    /// Records in the queue on disk, not yet acknowledged by the broker.
    pub backlog_records: u64,
    /// Records dropped because the queue was full, since the queue was created.
    pub dropped_records: u64,
    /// Wall time of the broker's last acknowledgement, unix seconds.
    pub last_ack_unix_s: Option<f64>,
    /// The last connection error, while not connected.
    pub last_error: Option<String>,
}

/// The clock of a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClockState {
    /// Controller wall time of the cycle, unix seconds (on a scaled clock: simulated time): the
    /// snapshot's timestamp, what schedules saw. It steps when the wall clock is stepped.
    pub clock_unix_s: f64,
    /// Controller monotonic time of the cycle, seconds from an arbitrary origin (never steps;
    /// scaled like the clock): for durations between snapshots.
    pub mono_s: f64,
    /// The host's wall time when the snapshot was taken, unix seconds.
    pub wall_unix_s: f64,
    /// Whether the clock is scaled (the demo, the rig) rather than the system clock.
    pub scaled: bool,
    /// Clock seconds per real second.
    pub speed: f64,
    /// Whether the system clock is synchronised: the kernel's flag (`adjtimex`, `STA_UNSYNC`
    /// clear), set by any NTP daemon that disciplines the clock. None when unknown, and on a
    /// scaled clock (its time is simulated).
    pub synced: Option<bool>,
}

/// One substation signal as the controller saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// Which signal.
    pub signal: Signal,
    /// Value read (unit: [`Signal::unit`]); None when never read or unusable.
    pub value: Option<f64>,
    /// Valid and fresh as the field layer delivered it.
    pub valid: bool,
    /// Seconds since it was read; None when never read.
    pub age_s: Option<f64>,
    /// Why the controller's validation rejected it this cycle (None: accepted, or not
    /// connected).
    pub rejected: Option<Rejection>,
}

impl Measurement {
    /// The measurement of `signal` from its sample.
    #[must_use]
    pub fn of(signal: Signal, sample: Option<Sample>) -> Self {
        Self {
            signal,
            value: sample.map(|s| s.value).filter(|v| v.is_finite()),
            valid: sample.is_some_and(|s| s.valid),
            age_s: sample.map(|s| s.age_s),
            rejected: None,
        }
    }

    /// The value when it is valid.
    #[must_use]
    pub fn valid_value(&self) -> Option<f64> {
        self.value.filter(|_| self.valid)
    }
}

/// The value of a sample when it is valid and finite.
fn valid_value(sample: Option<Sample>) -> Option<f64> {
    sample
        .filter(|s| s.valid)
        .map(|s| s.value)
        .filter(|v| v.is_finite())
}

/// What the controller commanded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommandState {
    /// Primary valve position command, %.
    pub valve1_cmd_pct: f64,
    /// Primary valve position feedback when valid, %.
    pub valve1_pos_pct: Option<f64>,
    /// The open and close outputs of a three-point primary valve (None with a position output).
    pub valve1_three_point: Option<ThreePointState>,
    /// Household valves (the room nodes that have one), in `rooms.nodes` order.
    pub household_valves: Vec<HouseholdValve>,
    /// The secondary circulation pump (None: not controlled, `points.pump2_speed_cmd` unbound).
    pub pump2: Option<Pump2State>,
}

/// The secondary circulation pump as the controller drove it this cycle.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Pump2State {
    /// The loop's mode: "constant_dp", "proportional_dp" or "index".
    pub mode: &'static str,
    /// The differential-pressure setpoint in force, kPa.
    pub dp_setpoint_kpa: Option<f64>,
    /// The differential pressure the mode holds (dp2_station or dp2_index), when valid, kPa.
    pub dp_measured_kpa: Option<f64>,
    /// The speed command, %.
    pub speed_cmd_pct: f64,
    /// The speed feedback when valid, %.
    pub speed_fb_pct: Option<f64>,
    /// The electric power when valid, kW.
    pub power_kw: Option<f64>,
    /// The secondary flow used (measured, or estimated from the speed in `proportional_dp`
    /// mode without a flow meter), m³/h.
    pub flow2_m3h: Option<f64>,
    /// The dry-run guard: "normal", "low" (timing) or "tripped" (pump stopped).
    pub dry_run: &'static str,
    /// Why this speed: "control", "run_on", "heating_off", "dp_lost_hold",
    /// "dp_lost_fallback", "dry_run_stop", "frost" or "safe_speed".
    pub reason: &'static str,
    /// SCADA codes of mode, dry-run state and reason (see `heatctl scada-map`).
    #[serde(skip)]
    pub codes: (u16, u16, u16),
}

impl Pump2State {
    /// The state of a pump command.
    #[must_use]
    pub fn of(p: &Pump2Command) -> Self {
        Self {
            mode: p.mode.name(),
            dp_setpoint_kpa: p.dp_setpoint_kpa,
            dp_measured_kpa: p.dp_measured_kpa,
            speed_cmd_pct: p.speed_cmd_pct,
            speed_fb_pct: p.speed_fb_pct,
            power_kw: p.power_kw,
            flow2_m3h: p.flow_m3h,
            dry_run: p.dry_run.name(),
            reason: p.reason.name(),
            codes: (p.mode.code(), p.dry_run.code(), p.reason.code()),
        }
    }
}

/// The outputs of a three-point actuator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ThreePointState {
    /// Driving open.
    pub open: bool,
    /// Driving closed.
    pub close: bool,
}

/// One household valve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HouseholdValve {
    /// Room node id of the home.
    pub node_id: String,
    /// Command, % (None where no valve loop runs).
    pub cmd_pct: Option<f64>,
    /// Position feedback when valid, %.
    pub pos_pct: Option<f64>,
}

/// Room temperatures, summarised: the demand correction's statistics, and the sensed homes
/// (room nodes that count, not vacant or excluded, with a valid reading).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct RoomsSummary {
    /// The demand correction's statistics (expected, used, invalid, outliers, quorum, its
    /// weighted low percentile, median and trimmed mean).
    #[serde(flatten)]
    pub stats: RoomStats,
    /// Homes sensed now: counting nodes with a valid reading.
    pub sensed: usize,
    /// Coldest sensed home, °C.
    pub min_c: Option<f64>,
    /// The comfort floor, °C ([`COMFORT_FLOOR_C`]).
    pub comfort_floor_c: f64,
    /// Share of sensed homes at or above the comfort floor, %.
    pub at_or_above_floor_pct: Option<f64>,
    /// Every room node, in configuration order.
    pub nodes: Vec<RoomNodeRow>,
}

/// One room node as the station sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoomNodeRow {
    /// Node id.
    pub id: String,
    /// Building.
    pub building: String,
    /// Position of the flat ("top", "middle", ...).
    pub position: &'static str,
    /// Last reading, °C (None when never read or not a number).
    pub value_c: Option<f64>,
    /// Seconds since it was read.
    pub age_s: Option<f64>,
    /// "vacant", "excluded", or the demand correction's verdict at its last run: "used",
    /// "outlier", "missing", "invalid", "stale", "out_of_range", "stuck", "jump".
    pub state: &'static str,
    /// Household valve command, % (None: no valve, or no loop).
    pub valve_cmd_pct: Option<f64>,
    /// Household valve position feedback when valid, %.
    pub valve_pos_pct: Option<f64>,
}

/// Health of one field device, as the field layer tracks it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceHealth {
    /// Device name (room nodes `room:<id>`, household valves `hh_valve:<id>`).
    pub name: String,
    /// Link it is on.
    pub link: String,
    /// Answered at least once and not lost.
    pub connected: bool,
    /// Counts as not answering.
    pub comm_lost: bool,
    /// Request statistics.
    #[serde(flatten)]
    pub stats: DeviceStats,
}

/// Health of one field link: its devices, summed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkHealth {
    /// Link name.
    pub name: String,
    /// Devices on it.
    pub devices: usize,
    /// Of those, connected.
    pub devices_connected: usize,
    /// Some device on it is connected.
    pub connected: bool,
    /// When a device on it last answered, wall clock unix seconds (the field layer keeps it on
    /// monotonic time; the snapshot dates it back from the cycle's wall time).
    pub last_ok_s: Option<f64>,
    /// Requests sent to its devices.
    pub requests: u64,
    /// Requests that failed at transport or protocol level.
    pub errors: u64,
}

/// The settings in force that SCADA can change.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OperatorSettings {
    /// Operating mode.
    #[serde(serialize_with = "ser::mode")]
    pub mode: Mode,
    /// Parallel shift of the heating curve, K.
    pub curve_shift_k: f64,
    /// Room target of the demand correction, °C.
    pub room_target_c: f64,
    /// Demand correction on.
    pub demand_enabled: bool,
    /// Primary valve position in manual mode, %.
    pub valve1_manual_pct: f64,
}

impl Default for OperatorSettings {
    fn default() -> Self {
        Self {
            mode: Mode::Auto,
            curve_shift_k: 0.0,
            room_target_c: 0.0,
            demand_enabled: false,
            valve1_manual_pct: 0.0,
        }
    }
}

/// What one cycle used and decided: the inputs of [`StationSnapshot::of_cycle`].
#[derive(Debug)]
pub struct CycleInputs<'a> {
    /// The configuration in force.
    pub loaded: &'a LoadedConfig,
    /// The clock.
    pub clock: &'a dyn Clock,
    /// Time of the cycle: monotonic (the field layer's ages) and wall (the snapshot's time).
    pub time: StepTime,
    /// Real seconds since the run started.
    pub uptime_s: f64,
    /// The process image the controller saw.
    pub image: &'a ProcessImage,
    /// What it decided, with every alarm (field alarms included).
    pub commands: Commands,
    /// The `(open, close)` outputs of a three-point primary valve.
    pub three_point: (bool, bool),
    /// The field layer's links and devices.
    pub plans: &'a [LinkPlan],
    /// The field layer's statistics, by device (moved into the snapshot).
    pub stats: BTreeMap<String, DeviceStats>,
    /// The settings in force.
    pub settings: OperatorSettings,
    /// The controller's slow state.
    pub saved_state: SavedState,
    /// Each room node's verdict at the demand correction's last run.
    pub room_verdicts: &'a [NodeVerdict],
    /// Station, software and configuration (uptime filled in here).
    pub identity: StationIdentity,
    /// The platform link, when it runs.
    pub platform: Option<PlatformLinkState>,
}

impl StationSnapshot {
    /// The snapshot of one cycle.
    #[must_use]
    pub fn of_cycle(mut c: CycleInputs<'_>) -> Self {
        let cfg = &c.loaded.config;
        let nodes = &cfg.rooms.nodes;
        let household_valves: Vec<HouseholdValve> = nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.valve_link.is_some())
            .map(|(i, n)| HouseholdValve {
                node_id: n.id.clone(),
                cmd_pct: c.commands.hh_valves_pct.get(i).copied().flatten(),
                pos_pct: valid_value(c.image.hh_valve_pos_pct.get(i).copied().flatten()),
            })
            .collect();
        let sensed: Vec<f64> = nodes
            .iter()
            .zip(&c.image.rooms)
            .filter(|(n, _)| !n.vacant && !n.excluded)
            .filter_map(|(_, s)| valid_value(*s))
            .collect();
        let at_or_above = sensed.iter().filter(|&&t| t >= COMFORT_FLOOR_C).count();
        let mut next_valve = 0;
        let node_rows = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let sample = c.image.rooms.get(i).copied().flatten();
                let state = if n.vacant {
                    "vacant"
                } else if n.excluded {
                    "excluded"
                } else {
                    c.room_verdicts.get(i).map_or("missing", |v| v.name())
                };
                let valve = n.valve_link.as_ref().and_then(|_| {
                    next_valve += 1;
                    household_valves.get(next_valve - 1)
                });
                RoomNodeRow {
                    id: n.id.clone(),
                    building: n.building.clone(),
                    position: n.position.name(),
                    value_c: sample.map(|s| s.value).filter(|v| v.is_finite()),
                    age_s: sample.map(|s| s.age_s),
                    state,
                    valve_cmd_pct: valve.and_then(|v| v.cmd_pct),
                    valve_pos_pct: valve.and_then(|v| v.pos_pct),
                }
            })
            .collect();
        let rooms = RoomsSummary {
            stats: c.commands.explanation.rooms,
            sensed: sensed.len(),
            min_c: sensed.iter().copied().reduce(f64::min),
            comfort_floor_c: COMFORT_FLOOR_C,
            at_or_above_floor_pct: (!sensed.is_empty())
                .then(|| 100.0 * at_or_above as f64 / sensed.len() as f64),
            nodes: node_rows,
        };
        let mut devices = Vec::new();
        let mut links = Vec::with_capacity(c.plans.len());
        for plan in c.plans {
            let mut link = LinkHealth {
                name: plan.link.name.clone(),
                devices: plan.devices.len(),
                devices_connected: 0,
                connected: false,
                last_ok_s: None,
                requests: 0,
                errors: 0,
            };
            for d in &plan.devices {
                let mut stats = c.stats.remove(&d.name).unwrap_or_default();
                // Monotonic in the field layer, a wall timestamp on every face.
                stats.last_ok_s = stats.last_ok_s.map(|m| c.time.wall_s - (c.time.mono_s - m));
                link.devices_connected += usize::from(stats.connected());
                link.last_ok_s = match (link.last_ok_s, stats.last_ok_s) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                link.requests += stats.requests;
                link.errors += stats.errors;
                devices.push(DeviceHealth {
                    name: d.name.clone(),
                    link: plan.link.name.clone(),
                    connected: stats.connected(),
                    comm_lost: stats.comm_lost(),
                    stats,
                });
            }
            link.connected = link.devices_connected > 0;
            links.push(link);
        }
        let Commands {
            valve1_pct,
            pump2,
            alarms,
            explanation,
            ..
        } = c.commands;
        let measurements = Signal::ALL
            .iter()
            .map(|&s| Measurement {
                rejected: explanation
                    .rejected
                    .iter()
                    .find(|r| r.signal == s)
                    .map(|r| r.reason),
                ..Measurement::of(s, c.image.get(s))
            })
            .collect();
        Self {
            site: cfg.site.name.clone(),
            clock: ClockState {
                clock_unix_s: c.time.wall_s,
                mono_s: c.time.mono_s,
                wall_unix_s: crate::audit::wall_unix_s(),
                scaled: c.clock.scaled(),
                speed: c.clock.speed(),
                synced: c.clock.synced(),
            },
            station: StationIdentity {
                uptime_s: c.uptime_s.max(0.0),
                ..c.identity
            },
            measurements,
            commands: CommandState {
                valve1_cmd_pct: valve1_pct,
                valve1_pos_pct: valid_value(c.image.get(Signal::Valve1PosPct)),
                valve1_three_point: (cfg.valve1.output == ValveOutput::ThreePoint).then_some(
                    ThreePointState {
                        open: c.three_point.0,
                        close: c.three_point.1,
                    },
                ),
                household_valves,
                pump2: pump2.as_ref().map(Pump2State::of),
            },
            explanation,
            rooms,
            alarms,
            devices,
            links,
            settings: c.settings,
            saved_state: c.saved_state,
            platform: c.platform,
        }
    }

    /// The measurement of `signal` (None only if the snapshot was built without it).
    #[must_use]
    pub fn measurement(&self, signal: Signal) -> Option<&Measurement> {
        // Built in Signal::ALL order.
        self.measurements
            .get(signal.index())
            .filter(|m| m.signal == signal)
    }

    /// The valid value of `signal`.
    #[must_use]
    pub fn valid_value(&self, signal: Signal) -> Option<f64> {
        self.measurement(signal).and_then(Measurement::valid_value)
    }

    /// Active alarm numbers in the order of [`Self::alarms`].
    #[must_use]
    pub fn alarm_codes(&self) -> Vec<u16> {
        self.alarms.iter().map(|a| a.code.number()).collect()
    }

    /// Devices not answering, by name (sorted).
    #[must_use]
    pub fn lost_devices(&self) -> Vec<String> {
        let mut lost: Vec<String> = self
            .devices
            .iter()
            .filter(|d| d.comm_lost)
            .map(|d| d.name.clone())
            .collect();
        lost.sort_unstable();
        lost
    }
}

impl Default for StationSnapshot {
    /// Nothing measured, nothing commanded, no device: what a face shows before the first
    /// cycle (and what tests start from).
    fn default() -> Self {
        Self {
            site: String::new(),
            clock: ClockState {
                clock_unix_s: 0.0,
                mono_s: 0.0,
                wall_unix_s: 0.0,
                scaled: false,
                speed: 1.0,
                synced: None,
            },
            station: StationIdentity::default(),
            measurements: Signal::ALL
                .iter()
                .map(|&s| Measurement::of(s, None))
                .collect(),
            commands: CommandState {
                valve1_cmd_pct: f64::NAN,
                valve1_pos_pct: None,
                valve1_three_point: None,
                household_valves: Vec::new(),
                pump2: None,
            },
            explanation: Explanation::default(),
            rooms: RoomsSummary {
                comfort_floor_c: COMFORT_FLOOR_C,
                ..RoomsSummary::default()
            },
            alarms: Vec::new(),
            devices: Vec::new(),
            links: Vec::new(),
            settings: OperatorSettings::default(),
            saved_state: SavedState {
                saved_at_s: 0.0,
                demand_shift_k: 0.0,
                valve_demand_shift_k: 0.0,
                damped_outdoor_c: None,
            },
            platform: None,
        }
    }
}

/// Serialising the controller's types by name.
mod ser {
    use serde::Serialize;
    use serde::ser::{SerializeSeq, Serializer};

    use serde::ser::SerializeMap;

    use super::Measurement;
    use crate::control::{Alarm, Explanation, Limiter, Mode, OutdoorSource, SupervisorAction};

    #[derive(Serialize)]
    struct MeasurementOut {
        value: Option<f64>,
        valid: bool,
        age_s: Option<f64>,
        rejected: Option<&'static str>,
    }

    pub(super) fn measurements<S: Serializer>(
        measurements: &[Measurement],
        ser: S,
    ) -> Result<S::Ok, S::Error> {
        let mut map = ser.serialize_map(Some(measurements.len()))?;
        for m in measurements {
            map.serialize_entry(
                m.signal.json_key(),
                &MeasurementOut {
                    value: m.value,
                    valid: m.valid,
                    age_s: m.age_s,
                    rejected: m.rejected.map(|r| r.name()),
                },
            )?;
        }
        map.end()
    }

    pub(super) fn mode<S: Serializer>(m: &Mode, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(match m {
            Mode::Auto => "auto",
            Mode::Off => "off",
            Mode::Manual(_) => "manual",
        })
    }

    #[derive(Serialize)]
    struct AlarmOut {
        code: u16,
        text: &'static str,
        since_s: f64,
    }

    pub(super) fn alarms<S: Serializer>(alarms: &[Alarm], ser: S) -> Result<S::Ok, S::Error> {
        let mut seq = ser.serialize_seq(Some(alarms.len()))?;
        for a in alarms {
            seq.serialize_element(&AlarmOut {
                code: a.code.number(),
                text: a.code.text(),
                since_s: a.since_s,
            })?;
        }
        seq.end()
    }

    fn supervisor_name(a: SupervisorAction) -> &'static str {
        match a {
            SupervisorAction::HoldOnSensorLoss => "hold_on_sensor_loss",
            SupervisorAction::SafePosition => "safe_position",
            SupervisorAction::Frost => "frost",
            SupervisorAction::OverTemperatureCut => "over_temperature_cut",
        }
    }

    fn source_name(s: OutdoorSource) -> &'static str {
        match s {
            OutdoorSource::Measured => "measured",
            OutdoorSource::Held => "held",
            OutdoorSource::Fallback => "fallback",
        }
    }

    #[derive(Serialize)]
    struct RejectedOut {
        signal: &'static str,
        reason: &'static str,
    }

    #[derive(Serialize)]
    struct LimiterOut {
        limiter: &'static str,
        delta_k: f64,
    }

    /// The explanation; its room statistics are in the snapshot's rooms summary.
    #[derive(Serialize)]
    struct ExplanationOut {
        outdoor_c: Option<f64>,
        outdoor_source: Option<&'static str>,
        damped_outdoor_c: Option<f64>,
        composite_outdoor_c: Option<f64>,
        curve_c: f64,
        base_shift_k: f64,
        demand_shift_k: f64,
        valve_demand_shift_k: f64,
        limiters: Vec<LimiterOut>,
        active_limiter: Option<&'static str>,
        setpoint_c: Option<f64>,
        heating_on: bool,
        supervisor: Option<&'static str>,
        fallbacks: Vec<u16>,
        rejected: Vec<RejectedOut>,
    }

    pub(super) fn explanation<S: Serializer>(e: &Explanation, ser: S) -> Result<S::Ok, S::Error> {
        ExplanationOut {
            outdoor_c: e.outdoor_c,
            outdoor_source: e.outdoor_source.map(source_name),
            damped_outdoor_c: e.damped_outdoor_c,
            composite_outdoor_c: e.composite_outdoor_c,
            curve_c: e.curve_c,
            base_shift_k: e.base_shift_k,
            demand_shift_k: e.demand_shift_k,
            valve_demand_shift_k: e.valve_demand_shift_k,
            limiters: e
                .limiters
                .iter()
                .map(|l| LimiterOut {
                    limiter: l.limiter.name(),
                    delta_k: l.delta_k,
                })
                .collect(),
            active_limiter: e.active_limiter.map(Limiter::name),
            setpoint_c: e.setpoint_c,
            heating_on: e.heating_on,
            supervisor: e.supervisor.map(supervisor_name),
            fallbacks: e.fallbacks.iter().map(|c| c.number()).collect(),
            rejected: e
                .rejected
                .iter()
                .map(|r| RejectedOut {
                    signal: r.signal.name(),
                    reason: r.reason.name(),
                })
                .collect(),
        }
        .serialize(ser)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{AlarmCode, Explanation, SignalRejection, SupervisorAction};

    #[test]
    fn measurements_keep_validity_and_age() {
        let m = Measurement::of(Signal::T2Supply, Some(Sample::aged(61.5, 3.0)));
        assert_eq!(m.valid_value(), Some(61.5));
        assert_eq!(m.age_s, Some(3.0));
        let stale = Measurement::of(
            Signal::T2Supply,
            Some(Sample {
                valid: false,
                ..Sample::aged(61.5, 30.0)
            }),
        );
        assert_eq!(stale.value, Some(61.5), "the value read is kept");
        assert_eq!(stale.valid_value(), None);
        let never = Measurement::of(Signal::TOut, None);
        assert_eq!((never.value, never.valid, never.age_s), (None, false, None));
        assert_eq!(
            Measurement::of(Signal::TOut, Some(Sample::invalid())).value,
            None,
            "an unusable reading has no value"
        );
    }

    #[test]
    fn serialises_by_name_with_units() {
        let mut s = StationSnapshot::default();
        s.measurements[Signal::T2Supply.index()] =
            Measurement::of(Signal::T2Supply, Some(Sample::fresh(60.0)));
        s.alarms.push(Alarm {
            code: AlarmCode::DeviceCommLost,
            since_s: 5.0,
        });
        s.explanation.supervisor = Some(SupervisorAction::Frost);
        s.explanation.rooms = RoomStats::default();
        let text = toml::to_string(&s).unwrap_or_else(|e| panic!("{e}"));
        for want in [
            "[measurements.t2_supply_c]",
            "code = 501",
            "supervisor = \"frost\"",
            "mode = \"auto\"",
            "comfort_floor_c = 18.0",
            "[rooms]\nexpected = 0\nused = 0\ninvalid = 0\noutliers = 0\nquorum = false\nsensed = 0\n",
            "clock_unix_s",
        ] {
            assert!(text.contains(want), "{want:?} not in {text}");
        }
    }

    fn loaded() -> LoadedConfig {
        let text = "[site]\nname = \"t\"\n[curve]\npoints = [{ outdoor_c = -20.0, supply_c = 70.0 }, { outdoor_c = 15.0, supply_c = 30.0 }]\n\
             [[links]]\nname = \"gw\"\nkind = \"rtu_over_tcp\"\nhost = \"127.0.0.1\"\nport = 1\n\
             [[devices]]\nname = \"plc\"\nlink = \"gw\"\nunit_id = 5\nmap = \"m.toml\"\n\
             [points]\nt2_supply = \"plc.t2_supply\"\nvalve1_cmd = \"plc.valve1_cmd\"\n\
             [rooms]\nnodes = [\n{ id = \"a\", link = \"gw\", unit_id = 1, valve_link = \"gw\", valve_unit_id = 11 },\n\
             { id = \"b\", link = \"gw\", unit_id = 2 },\n{ id = \"c\", link = \"gw\", unit_id = 3 },\n\
             { id = \"d\", link = \"gw\", unit_id = 4, vacant = true },\n]\n";
        let config = crate::config::parse_str(text, None).unwrap_or_else(|p| panic!("{p}"));
        LoadedConfig {
            config,
            path: "t.toml".into(),
            maps: BTreeMap::new(),
        }
    }

    #[test]
    fn a_cycle_gives_rooms_commands_and_health() {
        use crate::config::{Link, LinkKind};
        use crate::field::DevicePlan;
        let loaded = loaded();
        let mut image = ProcessImage::with_rooms(4);
        image.rooms = vec![
            Some(Sample::fresh(17.5)),
            Some(Sample::fresh(19.0)),
            Some(Sample::invalid()),
            Some(Sample::fresh(12.0)),
        ];
        image.hh_valve_pos_pct[0] = Some(Sample::fresh(35.0));
        image.set(Signal::Valve1PosPct, Some(Sample::fresh(41.0)));
        let link = Link {
            timeout_ms: 100,
            reconnect_min_ms: 10,
            reconnect_max_ms: 100,
            ..Link::new("gw", LinkKind::RtuOverTcp)
        };
        let device = |name: &str| DevicePlan {
            name: name.into(),
            unit_id: 1,
            points: Vec::new(),
            blocks: Vec::new(),
            mqtt: Vec::new(),
        };
        let plans = vec![LinkPlan {
            link,
            devices: vec![device("plc"), device("room:a")],
        }];
        let mut stats = BTreeMap::new();
        stats.insert(
            "plc".to_owned(),
            DeviceStats {
                requests: 10,
                errors: 1,
                answered: true,
                last_ok_s: Some(99.0),
                ..DeviceStats::default()
            },
        );
        let clock = crate::runtime::ScaledClock::new(100.0);
        let s = StationSnapshot::of_cycle(CycleInputs {
            loaded: &loaded,
            clock: &clock,
            time: StepTime {
                mono_s: 100.0,
                wall_s: 1_800_000_000.0,
            },
            uptime_s: 5.0,
            image: &image,
            commands: Commands {
                valve1_pct: 40.0,
                valve1_pulse: None,
                hh_valves_pct: vec![Some(60.0), None, None, None],
                pump2: None,
                alarms: Vec::new(),
                explanation: Explanation {
                    rejected: vec![SignalRejection {
                        signal: Signal::T2Supply,
                        reason: Rejection::Missing,
                    }],
                    ..Explanation::default()
                },
            },
            three_point: (true, false),
            plans: &plans,
            stats,
            settings: OperatorSettings::default(),
            saved_state: StationSnapshot::default().saved_state,
            room_verdicts: &[
                NodeVerdict::Used,
                NodeVerdict::Used,
                NodeVerdict::Rejected(Rejection::Field),
                NodeVerdict::Used,
            ],
            identity: StationIdentity::of(&loaded.config, 1000.0),
            platform: None,
        });
        let states: Vec<&str> = s.rooms.nodes.iter().map(|n| n.state).collect();
        assert_eq!(states, ["used", "used", "invalid", "vacant"]);
        assert_eq!(s.rooms.nodes[0].valve_cmd_pct, Some(60.0));
        assert_eq!(s.rooms.nodes[0].valve_pos_pct, Some(35.0));
        assert_eq!(s.rooms.nodes[1].valve_cmd_pct, None);
        assert_eq!(s.rooms.nodes[3].value_c, Some(12.0));
        assert_eq!(
            s.rooms.nodes[2].value_c, None,
            "an invalid sample carries no number"
        );
        assert_eq!(s.station.config_hash.len(), 16);
        assert_eq!(s.station.uptime_s, 5.0);
        let json = serde_json::to_value(&s).unwrap_or_default();
        assert_eq!(json["rooms"]["nodes"][2]["state"], "invalid");
        assert_eq!(json["station"]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(
            s.rooms.sensed, 2,
            "the invalid and the vacant home are not sensed"
        );
        assert_eq!(s.rooms.min_c, Some(17.5));
        assert_eq!(s.rooms.at_or_above_floor_pct, Some(50.0));
        assert_eq!(
            s.commands.household_valves,
            vec![HouseholdValve {
                node_id: "a".into(),
                cmd_pct: Some(60.0),
                pos_pct: Some(35.0),
            }]
        );
        assert_eq!(s.commands.valve1_pos_pct, Some(41.0));
        assert_eq!(s.commands.valve1_three_point, None, "a position output");
        assert_eq!(s.devices.len(), 2);
        assert!(s.devices[0].connected && !s.devices[1].connected);
        assert_eq!(s.links.len(), 1);
        let l = &s.links[0];
        assert_eq!((l.devices, l.devices_connected, l.connected), (2, 1, true));
        // Answered 1 s (monotonic) before the cycle: dated on the cycle's wall time.
        assert_eq!(
            (l.last_ok_s, l.requests, l.errors),
            (Some(1_799_999_999.0), 10, 1)
        );
        assert_eq!(s.devices[0].stats.last_ok_s, Some(1_799_999_999.0));
        assert_eq!((s.clock.clock_unix_s, s.clock.mono_s), (1.8e9, 100.0));
        assert_eq!(s.clock.synced, None, "a scaled clock's time is simulated");
        assert!(s.clock.scaled);
        assert_eq!(s.clock.speed, 100.0);
        assert_eq!(s.valid_value(Signal::Valve1PosPct), Some(41.0));
        let rejected = |signal| s.measurement(signal).and_then(|m| m.rejected);
        assert_eq!(rejected(Signal::T2Supply), Some(Rejection::Missing));
        assert_eq!(rejected(Signal::Valve1PosPct), None);
    }
}
