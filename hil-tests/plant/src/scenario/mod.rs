//! Scenario files: what plant to simulate, with which weather, seed, time step, ports and faults.
//!
//! A scenario is a TOML document (see `hil-tests/scenarios/*.toml`). Every section and every
//! field has a default, so a scenario only states what differs from the defaults of
//! `hil-tests/MODEL.md`. Unknown fields are rejected. Loading validates the whole document and
//! reports every problem it finds, each with its TOML path and, where the TOML parser gives a
//! span, its line and column (heatctl's [`Problem`], as for its configuration).

mod check;
mod faults;
mod parse;
mod weather_file;

use std::path::{Path, PathBuf};

pub use heatctl_core::config::Problem;
use serde::Deserialize;

pub use faults::{Fault, FaultKind, FaultSpec, FaultTarget, SensorId};

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
    /// Older spelling of `hydraulics.balanced_at_commissioning`: either one `true` balances the
    /// network at commissioning.
    pub balanced: bool,
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
    /// The exchanger's water hold-up, as the time its flows take to replace it, s: each side
    /// holds the water it passes in this time (primary at its design flow, secondary at the
    /// pump's full speed through the network as built), mixed; an outlet's time constant is
    /// this held mass over the side's present flow.
    pub exchanger_lag_s: f64,
    /// Transport delay of each trunk pipe (supply, return) at nominal flow, s.
    pub trunk_delay_s: f64,
    /// Heat loss of both trunk pipes together at design conditions, % of design load.
    pub pipe_loss_pct: f64,
    /// Temperature around the pipes, °C.
    pub pipe_ambient_c: f64,
    /// Circulation pump speed at power-on, % of its design speed (the power-on value of the
    /// speed command, holding register 1).
    pub pump2_speed_pct: f64,
    /// Rate at which the pump's speed follows its command, % per second.
    pub pump2_ramp_pct_s: f64,
    /// Static pressure at the secondary return (the pump's suction, held by the pressurisation),
    /// kPa.
    pub p2_static_kpa: f64,
    /// Pump head at its design flow and 100 % speed, kPa; sized from the network when absent
    /// (the index flat's need at design flows plus the station's loss).
    pub pump_head_kpa: Option<f64>,
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
            pump2_ramp_pct_s: 2.0,
            p2_static_kpa: 300.0,
            pump_head_kpa: None,
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
    /// Authority of the valve at design flow: its pressure drop fully open over that of the
    /// whole flat branch (valve, radiator circuit, balancing valve at its least drop); sets kvs.
    pub authority: f64,
    /// Rangeability of the equal-percentage characteristic, kv(100 %) / kv(0 %+).
    pub rangeability: f64,
}

impl Default for HouseholdValvesSection {
    fn default() -> Self {
        Self {
            enabled: false,
            stroke_s: 180.0,
            initial_pct: 100.0,
            authority: 0.5,
            rangeability: 30.0,
        }
    }
}

/// The secondary network's hydraulics (hil-tests/MODEL.md, "Hydraulic network"): the mains
/// along the buildings, a riser per building, each flat's branch, the station and the pump.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HydraulicsSection {
    /// Balancing valves set at commissioning so that every flat gets its design flow at the
    /// design pump speed; `false` leaves them at one uniform preset (an unbalanced network).
    pub balanced_at_commissioning: bool,
    /// Lower bound of the fouling factor drawn per flat (a factor on its radiator circuit's kv).
    pub fouling_min: f64,
    /// Upper bound of the fouling factor drawn per flat.
    pub fouling_max: f64,
    /// Length of the mains from the substation to the first building, m (each of supply and
    /// return).
    pub mains_first_m: f64,
    /// Length of the mains between consecutive buildings, m (each of supply and return).
    pub mains_spacing_m: f64,
    /// Length from a building's connection on the mains to its riser's foot (service pipe and
    /// basement), m.
    pub riser_base_m: f64,
    /// Height of one floor (the riser between two floors), m.
    pub floor_height_m: f64,
    /// Specific pressure loss the mains are sized for at design flow (the smallest standard
    /// size not above it), Pa/m.
    pub mains_design_pa_m: f64,
    /// Specific pressure loss the risers are sized for at design flow, Pa/m.
    pub riser_design_pa_m: f64,
    /// Equivalent roughness of the pipes, mm.
    pub roughness_mm: f64,
    /// Pressure drop of a flat's radiator circuit (radiator, flat piping, heat-cost meter,
    /// strainer) at its design flow, kPa.
    pub radiator_circuit_dp_kpa: f64,
    /// Least pressure drop of a balancing valve at its flat's design flow (the valve's design
    /// drop fully open; the uniform preset of an unbalanced network), kPa.
    pub balancing_valve_min_dp_kpa: f64,
    /// Pressure drop of the station (exchanger secondary side, strainer, piping) at design
    /// flow, kPa.
    pub station_dp_kpa: f64,
    /// Pump head at zero flow over its head at the design point (100 % speed).
    pub pump_shutoff_ratio: f64,
    /// Pump (hydraulic) efficiency at its best-efficiency point, the design point.
    pub pump_efficiency: f64,
    /// Efficiency of motor and frequency converter together at rated load.
    pub drive_efficiency: f64,
    /// Share of the drive's losses at rated load that do not fall with the load (they fall
    /// with speed).
    pub drive_fixed_loss_share: f64,
    /// Building whose riser foot carries the remote differential-pressure sensor (0-based);
    /// the farthest along the mains when absent.
    pub index_building: Option<usize>,
}

impl Default for HydraulicsSection {
    fn default() -> Self {
        Self {
            balanced_at_commissioning: false,
            fouling_min: 0.7,
            fouling_max: 1.0,
            mains_first_m: 60.0,
            mains_spacing_m: 40.0,
            riser_base_m: 10.0,
            floor_height_m: 3.0,
            mains_design_pa_m: 60.0,
            riser_design_pa_m: 100.0,
            roughness_mm: 0.5,
            radiator_circuit_dp_kpa: 10.0,
            balancing_valve_min_dp_kpa: 3.0,
            station_dp_kpa: 30.0,
            pump_shutoff_ratio: 1.25,
            pump_efficiency: 0.70,
            drive_efficiency: 0.88,
            drive_fixed_loss_share: 0.35,
            index_building: None,
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

/// Offsets of the fixed port layout ([`ModbusSection::at_base_port`], `plant-sim --base-port`)
/// from its base port.
pub mod port_offsets {
    /// The substation I/O (Modbus TCP).
    pub const SUBSTATION_IO: u16 = 0;
    /// The heat meter (Modbus TCP).
    pub const HEAT_METER: u16 = 1;
    /// heatctl's SCADA slave, in the configuration `plant-sim --write-config` writes.
    pub const SCADA: u16 = 2;
    /// The room-node gateway of building 0; building b is at this offset + b.
    pub const ROOM_GATEWAYS: u16 = 100;
    /// The household-valve gateway of building 0; building b is at this offset + b.
    pub const VALVE_GATEWAYS: u16 = 200;
    /// Most buildings the layout has room for.
    pub const MAX_BUILDINGS: usize = 100;
}

impl ModbusSection {
    /// The faces at fixed ports from `base` ([`port_offsets`]) for `buildings` buildings, on the
    /// same bind address.
    ///
    /// # Errors
    /// `base` is 0, there are more buildings than the layout holds, or the last port would pass
    /// 65535: said in words.
    pub fn at_base_port(&self, base: u16, buildings: usize) -> Result<ModbusSection, String> {
        use port_offsets::{
            HEAT_METER, MAX_BUILDINGS, ROOM_GATEWAYS, SUBSTATION_IO, VALVE_GATEWAYS,
        };
        if base == 0 {
            return Err("the base port must be above 0".to_owned());
        }
        if buildings > MAX_BUILDINGS {
            return Err(format!(
                "the fixed port layout holds at most {MAX_BUILDINGS} buildings, the scenario has {buildings}"
            ));
        }
        let last = usize::from(base) + usize::from(VALVE_GATEWAYS) + MAX_BUILDINGS - 1;
        if last > usize::from(u16::MAX) {
            return Err(format!(
                "base port {base} lays the faces out up to port {last}, above 65535 (use at most {})",
                usize::from(u16::MAX) + 1 - usize::from(VALVE_GATEWAYS) - MAX_BUILDINGS
            ));
        }
        Ok(ModbusSection {
            bind_ip: self.bind_ip.clone(),
            substation_io_port: base + SUBSTATION_IO,
            heat_meter_port: base + HEAT_METER,
            room_gateway_base_port: base + ROOM_GATEWAYS,
            valve_gateway_base_port: base + VALVE_GATEWAYS,
        })
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
    /// Hydraulic network.
    pub hydraulics: HydraulicsSection,
    /// Room nodes.
    pub room_nodes: RoomNodesSection,
    /// Modbus faces.
    pub modbus: ModbusSection,
    /// Fault timeline.
    pub faults: Vec<Fault>,
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
    #[error("invalid scenario {source_name}, {} problem(s):\n{}", problems.len(), list(problems))]
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
        let mut c = parse::Collector::new(text, source_name);
        let sections = parse::sections(&mut c);
        let scenario = sections.map(|s| {
            check::buildings(&mut c, &s.buildings);
            let weather_path = check::weather(&mut c, &s.weather, base_dir, weather_override);
            check::season_start_time(&mut c, &s.season, &s.start, &s.time);
            check::substation(&mut c, &s.substation);
            check::hydraulics(
                &mut c,
                &s.hydraulics,
                &s.household_valves,
                s.buildings.count,
            );
            check::devices(
                &mut c,
                &s.household_valves,
                &s.room_nodes,
                &s.modbus,
                s.buildings.count,
            );
            let faults = faults::check(&mut c, s.faults, &s.buildings, s.household_valves.enabled);
            Scenario {
                name: s.name,
                seed: s.seed,
                buildings: s.buildings,
                weather: s.weather,
                weather_path,
                season: s.season,
                start: s.start,
                time: s.time,
                substation: s.substation,
                household_valves: s.household_valves,
                hydraulics: s.hydraulics,
                room_nodes: s.room_nodes,
                modbus: s.modbus,
                faults,
            }
        });
        match scenario {
            Some(s) if c.problems.is_empty() => Ok(s),
            _ => Err(ScenarioError::Invalid {
                source_name: source_name.to_owned(),
                problems: c.problems,
            }),
        }
    }

    /// Number of apartments.
    pub fn apartment_count(&self) -> usize {
        self.buildings.count * self.apartments_per_building()
    }

    /// Apartments per building.
    pub fn apartments_per_building(&self) -> usize {
        self.buildings.floors * self.buildings.units_per_floor
    }

    /// The network is balanced at commissioning (`hydraulics.balanced_at_commissioning`, or the
    /// older `buildings.balanced`).
    pub fn balanced_at_commissioning(&self) -> bool {
        self.hydraulics.balanced_at_commissioning || self.buildings.balanced
    }

    /// Building whose riser foot carries the remote differential-pressure sensor.
    pub fn index_building(&self) -> usize {
        self.hydraulics
            .index_building
            .unwrap_or(self.buildings.count.saturating_sub(1))
    }

    /// Design heat load per m², W/m².
    pub fn design_load_w_m2(&self) -> f64 {
        self.buildings
            .design_load_w_m2
            .unwrap_or_else(|| self.buildings.stock.design_load_w_m2())
    }
}
