//! Scenario files: what plant to simulate, with which weather, seed, time step, ports and faults.
//!
//! A scenario is a TOML document (see `hil-tests/scenarios/*.toml`). Every section and every
//! field has a default, so a scenario only states what differs from the defaults of
//! `hil-tests/MODEL.md`. Unknown fields are rejected. Loading validates the whole document and
//! reports every problem it finds, each with its TOML path and, where the TOML parser gives a
//! span, its line and column.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

/// Environment variable naming a directory in which weather files are looked up by file name
/// when the scenario's relative path does not exist (CI clones put `shared/` elsewhere).
pub const WEATHER_DIR_ENV: &str = "HEATCTL_WEATHER_DIR";

/// Building stock: sets the design heat load per m² of floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stock {
    /// Newer stock, design load 40 W/m².
    New,
    /// Older stock, design load 60 W/m².
    Old,
}

impl Stock {
    /// Design heat load per m² of floor at the design outdoor temperature, W/m².
    pub fn design_load_w_m2(self) -> f64 {
        match self {
            Stock::New => 40.0,
            Stock::Old => 60.0,
        }
    }
}

/// The buildings served by the substation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BuildingsSection {
    /// Number of buildings.
    pub count: usize,
    /// Floors per building.
    pub floors: usize,
    /// Apartments per floor (units in a row; the two outer ones are end units).
    pub units_per_floor: usize,
    /// Floor area of one apartment, m².
    pub apartment_area_m2: f64,
    /// Building stock (sets the design load per m²).
    pub stock: Stock,
    /// Override of the design heat load per m² (W/m²); `stock` is used when absent.
    pub design_load_w_m2: Option<f64>,
    /// Hydraulically balanced (every apartment gets its design flow) or not (share U(min, max)).
    pub balanced: bool,
    /// Lower bound of the hydraulic share drawn per apartment when unbalanced.
    pub imbalance_min: f64,
    /// Upper bound of the hydraulic share drawn per apartment when unbalanced.
    pub imbalance_max: f64,
    /// Lower bound of the radiator oversizing factor drawn per apartment.
    pub radiator_oversize_min: f64,
    /// Upper bound of the radiator oversizing factor drawn per apartment.
    pub radiator_oversize_max: f64,
    /// Apply the position factors on the heat loss (top 1.45, ground 1.25, end 1.10, middle 0.80).
    pub position_factors: bool,
    /// Internal gains, W per m² of floor (half to the air, half to the mass).
    pub internal_gain_w_m2: f64,
    /// Solar gain as a fraction of global horizontal irradiation per m² of floor.
    pub solar_gain_fraction: f64,
    /// Lower bound of the per-apartment solar multiplier.
    pub solar_multiplier_min: f64,
    /// Upper bound of the per-apartment solar multiplier.
    pub solar_multiplier_max: f64,
    /// Neighbour coupling, W/(m² K) for an apartment with all four neighbours.
    pub neighbour_coupling_w_m2k: f64,
}

impl Default for BuildingsSection {
    fn default() -> Self {
        Self {
            count: 10,
            floors: 15,
            units_per_floor: 4,
            apartment_area_m2: 90.0,
            stock: Stock::New,
            design_load_w_m2: None,
            balanced: false,
            imbalance_min: 0.6,
            imbalance_max: 1.4,
            radiator_oversize_min: 1.0,
            radiator_oversize_max: 1.4,
            position_factors: true,
            internal_gain_w_m2: 3.8,
            solar_gain_fraction: 0.03,
            solar_multiplier_min: 0.5,
            solar_multiplier_max: 1.5,
            neighbour_coupling_w_m2k: 1.5,
        }
    }
}

/// Weather input.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WeatherSection {
    /// Hourly CSV (`hour,outdoor_c,ghi_w_m2`), relative to the scenario file.
    pub file: PathBuf,
    /// Replace the weather file by a constant outdoor temperature, °C (tests).
    pub constant_outdoor_c: Option<f64>,
    /// Constant global horizontal irradiation used with `constant_outdoor_c`, W/m².
    pub constant_ghi_w_m2: f64,
}

impl Default for WeatherSection {
    fn default() -> Self {
        Self {
            file: PathBuf::from("../weather/weather-hohhot-synthetic.csv"),
            constant_outdoor_c: None,
            constant_ghi_w_m2: 0.0,
        }
    }
}

/// The season window within the weather year.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SeasonSection {
    /// Hour of the (non-leap) weather year at which simulated time 0 starts (15 Oct = 6888).
    pub start_hour_of_year: f64,
    /// Length of the season, days (15 Oct - 15 Apr = 183).
    pub length_days: f64,
}

impl Default for SeasonSection {
    fn default() -> Self {
        Self {
            start_hour_of_year: 6888.0,
            length_days: 183.0,
        }
    }
}

/// Initial state of the plant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StartSection {
    /// Initial air temperature of every apartment, °C.
    pub room_c: f64,
    /// Initial mass temperature of every apartment, °C (defaults to `room_c`).
    pub mass_c: Option<f64>,
    /// Initial primary valve command and position, % open.
    pub valve1_pct: f64,
}

impl Default for StartSection {
    fn default() -> Self {
        Self {
            room_c: 20.0,
            mass_c: None,
            valve1_pct: 50.0,
        }
    }
}

/// Time base.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeSection {
    /// Simulation step used by `plant-sim` and `serve`, s.
    pub step_s: f64,
    /// Longest sub-step of the fast states (valve, exchanger, pipes), s.
    pub fast_substep_s: f64,
}

impl Default for TimeSection {
    fn default() -> Self {
        Self {
            step_s: 1.0,
            fast_substep_s: 1.0,
        }
    }
}

/// The substation: primary side, valve, exchanger, pipes, pump.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SubstationSection {
    /// Design outdoor temperature, °C.
    pub design_outdoor_c: f64,
    /// Design room temperature, °C.
    pub design_room_c: f64,
    /// Secondary design supply temperature, °C.
    pub t2_supply_design_c: f64,
    /// Secondary design return temperature, °C.
    pub t2_return_design_c: f64,
    /// Primary design return temperature, °C.
    pub t1_return_design_c: f64,
    /// Primary supply temperature at `t1_schedule_cold_outdoor_c`, °C.
    pub t1_supply_cold_c: f64,
    /// Outdoor temperature of the cold end of the primary schedule, °C.
    pub t1_schedule_cold_outdoor_c: f64,
    /// Primary supply temperature at and above `t1_schedule_warm_outdoor_c`, °C.
    pub t1_supply_warm_c: f64,
    /// Outdoor temperature of the warm end of the primary schedule, °C.
    pub t1_schedule_warm_outdoor_c: f64,
    /// Design heat load of the substation, kW; computed from the buildings when absent.
    pub design_load_kw: Option<f64>,
    /// Valve authority (0..1).
    pub valve_authority: f64,
    /// Valve rangeability R of the equal-percentage characteristic.
    pub valve_rangeability: f64,
    /// Fully open primary flow relative to the nominal flow.
    pub valve_max_flow_ratio: f64,
    /// Actuator time for a full stroke, s.
    pub valve_stroke_s: f64,
    /// Actuator dead band, % of stroke.
    pub valve_deadband_pct: f64,
    /// First-order lag of the exchanger outlets (water hold-up), s.
    pub exchanger_lag_s: f64,
    /// Transport delay of each trunk pipe (supply, return) at nominal flow, s.
    pub trunk_delay_s: f64,
    /// Heat loss of both trunk pipes together at design conditions, % of design load.
    pub pipe_loss_pct: f64,
    /// Temperature around the pipes, °C.
    pub pipe_ambient_c: f64,
    /// Circulation pump speed, % (flow proportional to speed).
    pub pump2_speed_pct: f64,
    /// Static pressure at the secondary return, kPa.
    pub p2_static_kpa: f64,
    /// Pump head at 100 % speed, kPa.
    pub pump_head_kpa: f64,
}

impl Default for SubstationSection {
    fn default() -> Self {
        Self {
            design_outdoor_c: -17.0,
            design_room_c: 18.0,
            t2_supply_design_c: 75.0,
            t2_return_design_c: 50.0,
            t1_return_design_c: 60.0,
            t1_supply_cold_c: 120.0,
            t1_schedule_cold_outdoor_c: -17.0,
            t1_supply_warm_c: 75.0,
            t1_schedule_warm_outdoor_c: 8.0,
            design_load_kw: None,
            valve_authority: 0.5,
            valve_rangeability: 50.0,
            valve_max_flow_ratio: 1.2,
            valve_stroke_s: 120.0,
            valve_deadband_pct: 0.5,
            exchanger_lag_s: 60.0,
            trunk_delay_s: 600.0,
            pipe_loss_pct: 2.0,
            pipe_ambient_c: 10.0,
            pump2_speed_pct: 100.0,
            p2_static_kpa: 300.0,
            pump_head_kpa: 150.0,
        }
    }
}

/// Household valves (户阀), one per apartment, where installed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HouseholdValvesSection {
    /// Household valves installed.
    pub enabled: bool,
    /// Actuator time for a full stroke, s.
    pub stroke_s: f64,
    /// Initial command and position, % open.
    pub initial_pct: f64,
}

impl Default for HouseholdValvesSection {
    fn default() -> Self {
        Self {
            enabled: false,
            stroke_s: 180.0,
            initial_pct: 100.0,
        }
    }
}

/// Room-temperature nodes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoomNodesSection {
    /// Share of apartments with a node, %.
    pub share_pct: f64,
    /// Per-node bias drawn from U(-bias_max_k, +bias_max_k), K.
    pub bias_max_k: f64,
    /// Standard deviation of the measurement noise, K.
    pub noise_k: f64,
    /// Reporting interval, s.
    pub refresh_s: f64,
    /// Share of reports that are lost, %.
    pub loss_pct: f64,
}

impl Default for RoomNodesSection {
    fn default() -> Self {
        Self {
            share_pct: 20.0,
            bias_max_k: 0.3,
            noise_k: 0.1,
            refresh_s: 600.0,
            loss_pct: 1.0,
        }
    }
}

/// Modbus faces on loopback TCP ports. Port 0 picks a free port.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModbusSection {
    /// Address to bind the faces to.
    pub bind_ip: String,
    /// Substation I/O / PLC (Modbus TCP).
    pub substation_io_port: u16,
    /// Heat meter (Modbus TCP).
    pub heat_meter_port: u16,
    /// First room-node gateway (RTU over TCP), one per building; building b uses base + b,
    /// or a free port each when 0.
    pub room_gateway_base_port: u16,
    /// First household-valve gateway (RTU over TCP), one per building, like the room gateways.
    pub valve_gateway_base_port: u16,
}

impl Default for ModbusSection {
    fn default() -> Self {
        Self {
            bind_ip: "127.0.0.1".to_owned(),
            substation_io_port: 0,
            heat_meter_port: 0,
            room_gateway_base_port: 0,
            valve_gateway_base_port: 0,
        }
    }
}

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

/// A complete, validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Name (from the file, or the file stem).
    pub name: String,
    /// Seed of every random draw (apartments, nodes, noise).
    pub seed: u64,
    /// Buildings and apartments.
    pub buildings: BuildingsSection,
    /// Weather input.
    pub weather: WeatherSection,
    /// Resolved weather file path (None with a constant outdoor temperature).
    pub weather_path: Option<PathBuf>,
    /// Season window.
    pub season: SeasonSection,
    /// Initial state.
    pub start: StartSection,
    /// Time base.
    pub time: TimeSection,
    /// Substation.
    pub substation: SubstationSection,
    /// Household valves.
    pub household_valves: HouseholdValvesSection,
    /// Room nodes.
    pub room_nodes: RoomNodesSection,
    /// Modbus faces.
    pub modbus: ModbusSection,
    /// Fault timeline.
    pub faults: Vec<Fault>,
}

/// One problem found in a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// TOML path of the offending item, e.g. `faults[2].kind`.
    pub path: String,
    /// Line and column (1-based) where the TOML parser gave a span.
    pub line_col: Option<(usize, usize)>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line_col {
            Some((l, c)) => write!(f, "{} ({}:{}): {}", self.path, l, c, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The scenario is invalid; every problem found is listed.
    #[error("invalid scenario {source_name}: {} problem(s):\n{}", problems.len(), list(problems))]
    Invalid {
        /// File or source name.
        source_name: String,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl ScenarioError {
    /// The problems of an invalid scenario (empty for I/O errors).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ScenarioError::Io { .. } => &[],
            ScenarioError::Invalid { problems, .. } => problems,
        }
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

struct Collector<'t> {
    text: &'t str,
    problems: Vec<Problem>,
}

impl Collector<'_> {
    fn push(
        &mut self,
        path: &str,
        span: Option<std::ops::Range<usize>>,
        message: impl Into<String>,
    ) {
        self.problems.push(Problem {
            path: path.to_owned(),
            line_col: span.map(|s| line_col(self.text, s.start)),
            message: message.into(),
        });
    }

    fn section<T: DeserializeOwned + Default>(&mut self, root: &DeTable<'_>, key: &str) -> T {
        match root.get(key) {
            None => T::default(),
            Some(v) => self.value(v.clone(), key).unwrap_or_default(),
        }
    }

    fn value<T: DeserializeOwned>(
        &mut self,
        v: toml::Spanned<DeValue<'_>>,
        path: &str,
    ) -> Option<T> {
        let span = v.span();
        // Keys of a table value with their spans, to name the field an error points into.
        let keys: Vec<(String, std::ops::Range<usize>)> = v
            .get_ref()
            .as_table()
            .map(|t| {
                t.iter()
                    .map(|(k, val)| (k.get_ref().to_string(), k.span().start..val.span().end))
                    .collect()
            })
            .unwrap_or_default();
        match T::deserialize(ValueDeserializer::from(v)) {
            Ok(t) => Some(t),
            Err(e) => {
                let at = e.span();
                let field = at
                    .as_ref()
                    .and_then(|a| keys.iter().find(|(_, r)| r.contains(&a.start)));
                let full = match field {
                    Some((k, _)) => format!("{path}.{k}"),
                    None => path.to_owned(),
                };
                self.push(&full, at.or(Some(span)), e.message().trim().to_owned());
                None
            }
        }
    }

    fn check(&mut self, ok: bool, path: &str, message: impl Into<String>) {
        if !ok {
            self.push(path, None, message);
        }
    }

    fn range(&mut self, v: f64, lo: f64, hi: f64, path: &str) {
        if !(v.is_finite() && v >= lo && v <= hi) {
            self.push(path, None, format!("{v} is outside {lo}..={hi}"));
        }
    }
}

const TOP_KEYS: &[&str] = &[
    "name",
    "seed",
    "buildings",
    "weather",
    "season",
    "start",
    "time",
    "substation",
    "household_valves",
    "room_nodes",
    "modbus",
    "faults",
];

impl Scenario {
    /// The built-in defaults of hil-tests/MODEL.md (10 x 60 apartments, Hohhot, unbalanced), with the
    /// weather file resolved relative to `base_dir`.
    pub fn defaults(base_dir: &Path) -> Result<Scenario, ScenarioError> {
        Scenario::from_toml_str("", base_dir, None, "<defaults>")
    }

    /// Directory of the shipped scenarios (`hil-tests/scenarios` of this source tree).
    pub fn shipped_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
    }

    /// Load a shipped scenario by name (`"default"`, `"small"`).
    pub fn shipped(name: &str) -> Result<Scenario, ScenarioError> {
        Scenario::load(&Scenario::shipped_dir().join(format!("{name}.toml")), None)
    }

    /// Load and validate a scenario file. `weather_override` replaces the weather file.
    pub fn load(path: &Path, weather_override: Option<&Path>) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let mut s =
            Scenario::from_toml_str(&text, base, weather_override, &path.display().to_string())?;
        if s.name.is_empty() {
            s.name = path
                .file_stem()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
        }
        Ok(s)
    }

    /// Parse and validate scenario text; relative paths are resolved against `base_dir`.
    pub fn from_toml_str(
        text: &str,
        base_dir: &Path,
        weather_override: Option<&Path>,
        source_name: &str,
    ) -> Result<Scenario, ScenarioError> {
        let invalid = |problems| ScenarioError::Invalid {
            source_name: source_name.to_owned(),
            problems,
        };
        let mut c = Collector {
            text,
            problems: Vec::new(),
        };
        let root = match DeTable::parse(text) {
            Ok(r) => r.into_inner(),
            Err(e) => {
                c.push("<document>", e.span(), e.message().trim().to_owned());
                return Err(invalid(c.problems));
            }
        };
        for (k, v) in root.iter() {
            if !TOP_KEYS.contains(&k.get_ref().as_ref()) {
                c.push(
                    k.get_ref(),
                    Some(v.span()),
                    format!("unknown field `{}`", k.get_ref()),
                );
            }
        }
        let name: String = match root.get("name") {
            Some(v) => c.value(v.clone(), "name").unwrap_or_default(),
            None => String::new(),
        };
        let seed: u64 = match root.get("seed") {
            Some(v) => c.value(v.clone(), "seed").unwrap_or(0),
            None => 1,
        };
        let buildings: BuildingsSection = c.section(&root, "buildings");
        let weather: WeatherSection = c.section(&root, "weather");
        let season: SeasonSection = c.section(&root, "season");
        let start: StartSection = c.section(&root, "start");
        let time: TimeSection = c.section(&root, "time");
        let substation: SubstationSection = c.section(&root, "substation");
        let household_valves: HouseholdValvesSection = c.section(&root, "household_valves");
        let room_nodes: RoomNodesSection = c.section(&root, "room_nodes");
        let modbus: ModbusSection = c.section(&root, "modbus");
        let mut specs: Vec<(usize, FaultSpec)> = Vec::new();
        if let Some(v) = root.get("faults") {
            match v.get_ref().as_array() {
                Some(arr) => {
                    for (i, item) in arr.iter().enumerate() {
                        if let Some(f) = c.value::<FaultSpec>(item.clone(), &format!("faults[{i}]"))
                        {
                            specs.push((i, f));
                        }
                    }
                }
                None => c.push(
                    "faults",
                    Some(v.span()),
                    "must be an array of tables ([[faults]])",
                ),
            }
        }

        // Semantic checks.
        let b = &buildings;
        c.check(b.count >= 1, "buildings.count", "must be at least 1");
        c.check(b.floors >= 1, "buildings.floors", "must be at least 1");
        c.check(
            b.units_per_floor >= 1,
            "buildings.units_per_floor",
            "must be at least 1",
        );
        c.check(
            b.floors * b.units_per_floor <= 247,
            "buildings.floors",
            format!(
                "floors x units_per_floor = {} apartments per building; one RS-485 bus per building holds at most 247 unit ids",
                b.floors * b.units_per_floor
            ),
        );
        c.range(
            b.apartment_area_m2,
            10.0,
            1000.0,
            "buildings.apartment_area_m2",
        );
        if let Some(q) = b.design_load_w_m2 {
            c.range(q, 5.0, 300.0, "buildings.design_load_w_m2");
        }
        c.range(b.imbalance_min, 0.05, 5.0, "buildings.imbalance_min");
        c.range(b.imbalance_max, 0.05, 5.0, "buildings.imbalance_max");
        c.check(
            b.imbalance_min <= b.imbalance_max,
            "buildings.imbalance_min",
            "must not exceed imbalance_max",
        );
        c.range(
            b.radiator_oversize_min,
            0.2,
            5.0,
            "buildings.radiator_oversize_min",
        );
        c.range(
            b.radiator_oversize_max,
            0.2,
            5.0,
            "buildings.radiator_oversize_max",
        );
        c.check(
            b.radiator_oversize_min <= b.radiator_oversize_max,
            "buildings.radiator_oversize_min",
            "must not exceed radiator_oversize_max",
        );
        c.range(
            b.internal_gain_w_m2,
            0.0,
            50.0,
            "buildings.internal_gain_w_m2",
        );
        c.range(
            b.solar_gain_fraction,
            0.0,
            1.0,
            "buildings.solar_gain_fraction",
        );
        c.range(
            b.solar_multiplier_min,
            0.0,
            10.0,
            "buildings.solar_multiplier_min",
        );
        c.range(
            b.solar_multiplier_max,
            0.0,
            10.0,
            "buildings.solar_multiplier_max",
        );
        c.check(
            b.solar_multiplier_min <= b.solar_multiplier_max,
            "buildings.solar_multiplier_min",
            "must not exceed solar_multiplier_max",
        );
        c.range(
            b.neighbour_coupling_w_m2k,
            0.0,
            20.0,
            "buildings.neighbour_coupling_w_m2k",
        );

        if let Some(t) = weather.constant_outdoor_c {
            c.range(t, -60.0, 50.0, "weather.constant_outdoor_c");
        }
        c.range(
            weather.constant_ghi_w_m2,
            0.0,
            1500.0,
            "weather.constant_ghi_w_m2",
        );
        let mut weather_path = None;
        if weather.constant_outdoor_c.is_none() {
            match resolve_weather(&weather.file, base_dir, weather_override) {
                Ok(p) => weather_path = Some(p),
                Err(msg) => c.push("weather.file", None, msg),
            }
        }
        c.range(
            season.start_hour_of_year,
            0.0,
            8760.0,
            "season.start_hour_of_year",
        );
        c.range(season.length_days, 0.0, 366.0, "season.length_days");
        c.range(start.room_c, -30.0, 40.0, "start.room_c");
        if let Some(m) = start.mass_c {
            c.range(m, -30.0, 40.0, "start.mass_c");
        }
        c.range(start.valve1_pct, 0.0, 100.0, "start.valve1_pct");
        c.range(time.step_s, 0.1, 3600.0, "time.step_s");
        c.range(time.fast_substep_s, 0.1, 60.0, "time.fast_substep_s");

        let s = &substation;
        c.check(
            s.design_room_c > s.design_outdoor_c + 5.0,
            "substation.design_room_c",
            "must be well above design_outdoor_c",
        );
        c.check(
            s.t2_supply_design_c > s.t2_return_design_c && s.t2_return_design_c > s.design_room_c,
            "substation.t2_supply_design_c",
            "needs supply > return > design room temperature",
        );
        c.check(
            s.t1_supply_cold_c > s.t2_supply_design_c,
            "substation.t1_supply_cold_c",
            "must exceed the secondary design supply temperature",
        );
        c.check(
            s.t1_return_design_c > s.t2_return_design_c
                && s.t1_return_design_c < s.t1_supply_cold_c,
            "substation.t1_return_design_c",
            "must lie between the secondary design return and the primary design supply",
        );
        c.check(
            s.t1_schedule_warm_outdoor_c > s.t1_schedule_cold_outdoor_c,
            "substation.t1_schedule_warm_outdoor_c",
            "must exceed t1_schedule_cold_outdoor_c",
        );
        c.range(
            s.t1_supply_warm_c,
            20.0,
            200.0,
            "substation.t1_supply_warm_c",
        );
        if let Some(q) = s.design_load_kw {
            c.range(q, 1.0, 1.0e6, "substation.design_load_kw");
        }
        c.range(s.valve_authority, 0.01, 1.0, "substation.valve_authority");
        c.range(
            s.valve_rangeability,
            2.0,
            1000.0,
            "substation.valve_rangeability",
        );
        c.range(
            s.valve_max_flow_ratio,
            0.5,
            5.0,
            "substation.valve_max_flow_ratio",
        );
        c.range(s.valve_stroke_s, 1.0, 3600.0, "substation.valve_stroke_s");
        c.range(
            s.valve_deadband_pct,
            0.0,
            10.0,
            "substation.valve_deadband_pct",
        );
        c.range(s.exchanger_lag_s, 0.0, 3600.0, "substation.exchanger_lag_s");
        c.range(s.trunk_delay_s, 1.0, 7200.0, "substation.trunk_delay_s");
        c.range(s.pipe_loss_pct, 0.0, 20.0, "substation.pipe_loss_pct");
        c.range(s.pipe_ambient_c, -30.0, 40.0, "substation.pipe_ambient_c");
        c.range(s.pump2_speed_pct, 0.0, 100.0, "substation.pump2_speed_pct");
        c.range(s.p2_static_kpa, 0.0, 1600.0, "substation.p2_static_kpa");
        c.range(s.pump_head_kpa, 0.0, 1000.0, "substation.pump_head_kpa");

        c.range(
            household_valves.stroke_s,
            1.0,
            3600.0,
            "household_valves.stroke_s",
        );
        c.range(
            household_valves.initial_pct,
            0.0,
            100.0,
            "household_valves.initial_pct",
        );
        c.range(room_nodes.share_pct, 0.0, 100.0, "room_nodes.share_pct");
        c.range(room_nodes.bias_max_k, 0.0, 5.0, "room_nodes.bias_max_k");
        c.range(room_nodes.noise_k, 0.0, 5.0, "room_nodes.noise_k");
        c.range(room_nodes.refresh_s, 1.0, 3600.0, "room_nodes.refresh_s");
        c.range(room_nodes.loss_pct, 0.0, 100.0, "room_nodes.loss_pct");
        if modbus.bind_ip.parse::<std::net::IpAddr>().is_err() {
            c.push(
                "modbus.bind_ip",
                None,
                format!("`{}` is not an IP address", modbus.bind_ip),
            );
        }
        for (base, name) in [
            (
                modbus.room_gateway_base_port,
                "modbus.room_gateway_base_port",
            ),
            (
                modbus.valve_gateway_base_port,
                "modbus.valve_gateway_base_port",
            ),
        ] {
            c.check(
                base == 0 || usize::from(base) + b.count <= 65536,
                name,
                "base port + number of buildings exceeds 65535",
            );
        }

        let n_apartments = b.count * b.floors * b.units_per_floor;
        let mut faults = Vec::new();
        for (i, f) in specs {
            let p = |field: &str| format!("faults[{i}].{field}");
            let target = FaultTarget::parse(&f.target);
            match target {
                None => c.push(&p("target"), None, format!("unknown target `{}`", f.target)),
                Some(t) => {
                    let idx_ok = match t {
                        FaultTarget::RoomNode(a) | FaultTarget::HouseholdValve(a) => {
                            a < n_apartments
                        }
                        FaultTarget::RoomGateway(bi) | FaultTarget::ValveGateway(bi) => {
                            bi < b.count
                        }
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
                            household_valves.enabled,
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

        if !c.problems.is_empty() {
            return Err(invalid(c.problems));
        }
        Ok(Scenario {
            name,
            seed,
            buildings,
            weather,
            weather_path,
            season,
            start,
            time,
            substation,
            household_valves,
            room_nodes,
            modbus,
            faults,
        })
    }

    /// Number of apartments.
    pub fn apartment_count(&self) -> usize {
        self.buildings.count * self.apartments_per_building()
    }

    /// Apartments per building.
    pub fn apartments_per_building(&self) -> usize {
        self.buildings.floors * self.buildings.units_per_floor
    }

    /// Design heat load per m², W/m².
    pub fn design_load_w_m2(&self) -> f64 {
        self.buildings
            .design_load_w_m2
            .unwrap_or_else(|| self.buildings.stock.design_load_w_m2())
    }
}

/// Find the weather file: the override, else the path relative to the scenario, else the file
/// name in `$HEATCTL_WEATHER_DIR`, else the file name in the repository's copy
/// (`hil-tests/weather`), else in `<repo>/../shared/data/weather`.
fn resolve_weather(file: &Path, base_dir: &Path, over: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = over {
        return if p.is_file() {
            Ok(p.to_owned())
        } else {
            Err(format!("weather override {} not found", p.display()))
        };
    }
    let mut tried = Vec::new();
    let direct = if file.is_absolute() {
        file.to_owned()
    } else {
        base_dir.join(file)
    };
    if direct.is_file() {
        return Ok(direct);
    }
    tried.push(direct.display().to_string());
    if let Some(name) = file.file_name() {
        if let Ok(dir) = std::env::var(WEATHER_DIR_ENV) {
            let p = Path::new(&dir).join(name);
            if p.is_file() {
                return Ok(p);
            }
            tried.push(p.display().to_string());
        }
        // The copy kept in the repository (hil-tests/weather).
        let in_repo = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../weather")
            .join(name);
        if in_repo.is_file() {
            return Ok(in_repo);
        }
        tried.push(in_repo.display().to_string());
        // <repo>/hil-tests/scenarios -> <repo>/../shared/data/weather
        let beside = base_dir.join("../../../shared/data/weather").join(name);
        if beside.is_file() {
            return Ok(beside);
        }
        let crate_rel = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/weather")
            .join(name);
        if crate_rel.is_file() {
            return Ok(crate_rel);
        }
        tried.push(crate_rel.display().to_string());
    }
    Err(format!(
        "weather file not found (tried {}); set {WEATHER_DIR_ENV} or pass an override",
        tried.join(", ")
    ))
}
