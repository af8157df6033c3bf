//! The plant: one substation, its trunk pipes and its buildings of apartments, stepped in-process.

mod build;
pub mod hydraulics;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::physics::{
    Actuator, CP_WATER_J_KGK, Discrete, ExchangerDesign, M2, PlugFlowPipe, RHO_WATER_KG_M3,
    RadiatorLaw, discretise,
};
use crate::scenario::{Fault, FaultKind, FaultTarget, Scenario, SensorId};
use crate::weather::{Weather, WeatherError};

/// Radiator water capacity, J/K per W of nominal output (hil-tests/MODEL.md).
const RADIATOR_CAPACITY_J_K_PER_W: f64 = 37.0;
/// Air-mass coupling, W/(m² K).
const H_AM_W_M2K: f64 = 9.9;
/// Mass capacity, J/(m² K).
const C_M_J_M2K: f64 = 260_000.0;
/// Air (and furniture) capacity, J/(m² K).
const C_A_J_M2K: f64 = 15_000.0;
/// Share of the heat loss coefficient through the air node (ventilation, windows).
const AIR_SHARE_OF_H: f64 = 0.6;
/// Below this share of its design flow an apartment's radiator tends to the well-mixed outlet.
const LOW_FLOW_SHARE: f64 = 0.3;
/// The pump's dry-run protection trips below this share of the secondary design flow...
const DRY_RUN_FLOW_SHARE: f64 = 0.02;
/// ... held for longer than this, s.
const DRY_RUN_DELAY_S: f64 = 60.0;

/// Where an apartment sits in its building; sets its heat-loss factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PositionClass {
    /// Top floor (roof): 1.45.
    Top,
    /// Ground floor: 1.25.
    Ground,
    /// End unit of an intermediate floor: 1.10.
    End,
    /// Middle unit of an intermediate floor: 0.80.
    Middle,
}

impl PositionClass {
    /// Factor on the heat-loss coefficient.
    pub fn factor(self) -> f64 {
        match self {
            PositionClass::Top => 1.45,
            PositionClass::Ground => 1.25,
            PositionClass::End => 1.10,
            PositionClass::Middle => 0.80,
        }
    }
}

/// Static description of one apartment (drawn once from the seed).
#[derive(Debug, Clone)]
pub struct ApartmentInfo {
    /// Index in the plant (building-major, then floor, then unit).
    pub index: usize,
    /// Building index.
    pub building: usize,
    /// Floor, 0 = ground.
    pub floor: usize,
    /// Unit on the floor, 0..units_per_floor.
    pub unit: usize,
    /// End unit (first or last on its floor).
    pub is_end_unit: bool,
    /// Position class.
    pub position: PositionClass,
    /// Floor area, m².
    pub floor_area_m2: f64,
    /// Heat loss to the outside at design conditions (no gains), W.
    pub design_load_w: f64,
    /// Radiator nominal output (EN 442, dT 49.8 K), W.
    pub radiator_nominal_w: f64,
    /// Radiator oversizing factor drawn.
    pub radiator_oversize: f64,
    /// Fouling factor drawn: a factor on the kv of the flat's radiator circuit (1 = clean).
    pub fouling_factor: f64,
    /// Design water flow (its share of the secondary design flow, by design load), kg/s.
    pub nominal_flow_kg_s: f64,
    /// Solar multiplier drawn.
    pub solar_multiplier: f64,
    /// Air-to-outside conductance, W/K.
    pub h_ae_w_k: f64,
    /// Mass-to-outside conductance, W/K.
    pub h_me_w_k: f64,
    /// Air-to-mass conductance, W/K.
    pub h_am_w_k: f64,
    /// Conductance to each adjacent apartment, W/K.
    pub h_neighbour_w_k: f64,
    /// Air capacity, J/K.
    pub c_air_j_k: f64,
    /// Mass capacity, J/K.
    pub c_mass_j_k: f64,
    /// Radiator water capacity, J/K.
    pub c_radiator_j_k: f64,
    /// Adjacent apartments (indices).
    pub neighbours: Vec<usize>,
    /// Index of the room node in this apartment, if any.
    pub room_node: Option<usize>,
}

/// Hot per-apartment data of the step loop.
#[derive(Debug, Clone, Copy, Default)]
struct Hot {
    d: Discrete,
    qn_w: f64,
    c_rad: f64,
    m_low: f64,
    gain_int_half_w: f64,
    solar_half_w_per_ghi: f64,
    nb: [u32; 4],
    n_nb: u32,
}

/// Per-apartment energy bookkeeping (when enabled with [`Plant::enable_energy_audit`]), J.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApartmentEnergy {
    /// Heat from the radiator (or ideal heater) into the room.
    pub heating_j: f64,
    /// Internal and solar gains.
    pub gains_j: f64,
    /// Losses to the outside (air and mass paths).
    pub loss_outside_j: f64,
    /// Net flow to neighbours.
    pub loss_neighbours_j: f64,
    /// Stored energy C_a T_a + C_m T_m at the start of the audit.
    pub stored_start_j: f64,
}

/// A room node's published state.
#[derive(Debug, Clone, Copy)]
pub struct RoomNodeReading {
    /// Node index (0..node count).
    pub node: usize,
    /// Apartment it sits in.
    pub apartment: usize,
    /// Building of the apartment.
    pub building: usize,
    /// Floor of the apartment (0 = ground).
    pub floor: usize,
    /// Unit on the floor.
    pub unit: usize,
    /// Position class of the apartment.
    pub position: PositionClass,
    /// Modbus unit id on its building's bus.
    pub unit_id: u8,
    /// Published temperature, °C (None: sensor fault, register reads 0x7FFF).
    pub temperature_c: Option<f64>,
    /// Relative humidity, %.
    pub humidity_pct: f64,
    /// Publications so far (wrapping).
    pub sample_counter: u16,
    /// Seconds since the published temperature last changed.
    pub unchanged_s: f64,
    /// Seconds since the node started.
    pub uptime_s: f64,
    /// Simulated time of the last publication, s.
    pub last_report_s: f64,
}

#[derive(Debug, Clone)]
struct RoomNode {
    apartment: usize,
    unit_id: u8,
    bias_k: f64,
    next_report_s: f64,
    published_c: Option<f64>,
    sample_counter: u16,
    last_change_s: f64,
    last_report_s: f64,
    calibration_offset_k: f64,
    report_interval_s: f64,
}

/// Heat held by the water between the primary heat meter and the rooms ([`Plant::stored_heat`]),
/// J above 0 °C.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoredHeat {
    /// Water held on both sides of the exchanger.
    pub exchanger_j: f64,
    /// Water in the supply and return trunks (each parcel at its inlet temperature; its loss is
    /// booked in the pipe loss when it leaves).
    pub pipes_j: f64,
    /// Water in the radiators (their capacity at their mean temperature).
    pub radiators_j: f64,
}

impl StoredHeat {
    /// Sum of the three, J.
    pub fn total_j(&self) -> f64 {
        self.exchanger_j + self.pipes_j + self.radiators_j
    }
}

/// Primary heat meter reading.
#[derive(Debug, Clone, Copy)]
pub struct HeatMeterReading {
    /// Power, kW (None: sensor fault).
    pub power_kw: Option<f64>,
    /// Volume flow, m³/h (None: sensor fault).
    pub flow_m3h: Option<f64>,
    /// Cumulative energy, kWh.
    pub energy_kwh: f64,
    /// Primary supply, °C.
    pub t_supply_c: Option<f64>,
    /// Primary return, °C.
    pub t_return_c: Option<f64>,
    /// Status flags (bit 0 flow sensor error, bit 1 temperature sensor error).
    pub status: u16,
}

/// What the field devices would read now (faults applied).
#[derive(Debug, Clone)]
pub struct Sensors {
    /// Simulated time, s since the scenario start.
    pub time_s: f64,
    /// Outdoor temperature, °C.
    pub t_out_c: Option<f64>,
    /// Primary supply, °C.
    pub t1_supply_c: Option<f64>,
    /// Primary return, °C.
    pub t1_return_c: Option<f64>,
    /// Secondary supply, °C.
    pub t2_supply_c: Option<f64>,
    /// Secondary return, °C.
    pub t2_return_c: Option<f64>,
    /// Secondary supply pressure, kPa.
    pub p2_supply_kpa: f64,
    /// Secondary return pressure, kPa.
    pub p2_return_kpa: f64,
    /// Primary valve position feedback, %.
    pub valve1_pos_pct: Option<f64>,
    /// Primary valve command as the plant holds it, %.
    pub valve1_cmd_pct: f64,
    /// Circulation pump speed (feedback), %.
    pub pump2_speed_pct: f64,
    /// Circulation pump speed command as the plant holds it, %.
    pub pump2_speed_cmd_pct: f64,
    /// Differential pressure supply - return at the substation outlet, kPa.
    pub dp2_station_kpa: Option<f64>,
    /// Differential pressure at the foot of the index building's riser, kPa.
    pub dp2_index_kpa: Option<f64>,
    /// Pump electric power, kW.
    pub pump2_power_kw: Option<f64>,
    /// Secondary volume flow, m³/h.
    pub flow2_m3h: Option<f64>,
    /// Pump status bits: 0 running, 1 dry-run trip.
    pub pump2_status: u16,
    /// Primary heat meter.
    pub heat_meter: HeatMeterReading,
    /// Room nodes.
    pub room_nodes: Vec<RoomNodeReading>,
}

/// Substation-level ground truth.
#[derive(Debug, Clone, Copy)]
pub struct SubstationTruth {
    /// Outdoor temperature, °C.
    pub t_out_c: f64,
    /// Global horizontal irradiation, W/m².
    pub ghi_w_m2: f64,
    /// Primary supply, °C.
    pub t1_supply_c: f64,
    /// Primary return, °C.
    pub t1_return_c: f64,
    /// Secondary supply at the exchanger, °C.
    pub t2_supply_c: f64,
    /// Secondary return at the exchanger, °C.
    pub t2_return_c: f64,
    /// Secondary supply at the buildings (after the trunk), °C.
    pub t2_supply_buildings_c: f64,
    /// Mixed return of the buildings (before the trunk), °C.
    pub t2_return_buildings_c: f64,
    /// Primary mass flow, kg/s.
    pub flow1_kg_s: f64,
    /// Secondary mass flow, kg/s.
    pub flow2_kg_s: f64,
    /// Primary heat power (m_p c (t1_supply - t1_return)), kW.
    pub power1_kw: f64,
    /// Secondary heat power (m_s c (t2_supply - t2_return)), kW.
    pub power2_kw: f64,
    /// Primary valve position, %.
    pub valve1_pos_pct: f64,
    /// Primary valve command, %.
    pub valve1_cmd_pct: f64,
    /// Cumulative primary heat, kWh.
    pub energy1_kwh: f64,
    /// Cumulative secondary heat (exchanger to the secondary), kWh.
    pub energy2_kwh: f64,
    /// Cumulative heat delivered to the apartments by the radiators (or ideal heaters), kWh.
    pub delivered_energy_kwh: f64,
    /// Cumulative pipe losses, kWh.
    pub pipe_loss_kwh: f64,
    /// Differential pressure supply - return at the substation outlet, kPa.
    pub dp2_station_kpa: f64,
    /// Differential pressure at the foot of the index building's riser, kPa.
    pub dp2_index_kpa: f64,
    /// Circulation pump speed (feedback), %.
    pub pump2_speed_pct: f64,
    /// Circulation pump speed command, %.
    pub pump2_speed_cmd_pct: f64,
    /// Pump electric power, kW.
    pub pump2_power_kw: f64,
    /// Cumulative pump electricity, kWh.
    pub pump2_energy_kwh_el: f64,
    /// Secondary volume flow, m³/h.
    pub flow2_m3h: f64,
    /// The pump's own dry-run protection has tripped (reset by a stop command).
    pub pump2_dry_run_trip: bool,
}

/// Why a plant could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PlantError {
    /// The weather file could not be read.
    #[error(transparent)]
    Weather(#[from] WeatherError),
    /// An index was out of range.
    #[error("{what} index {index} out of range (0..{len})")]
    Index {
        /// What was indexed.
        what: &'static str,
        /// The index.
        index: usize,
        /// The number of items.
        len: usize,
    },
    /// Household valves are not installed in this scenario.
    #[error("household valves are not enabled in this scenario")]
    NoHouseholdValves,
}

/// The simulated substation and buildings.
#[derive(Debug, Clone)]
pub struct Plant {
    scenario: Scenario,
    weather: Weather,
    law: RadiatorLaw,
    // design
    xchg: ExchangerDesign,
    flow1_max_kg_s: f64,
    design_load_w: f64,
    total_area_m2: f64,
    // static apartments
    info: Vec<ApartmentInfo>,
    hot: Vec<Hot>,
    a_mats: Vec<(M2, [f64; 8])>,
    disc_dt_s: f64,
    // state
    time_s: f64,
    t_out_c: f64,
    ghi_w_m2: f64,
    valve1: Actuator,
    net: hydraulics::Network,
    pump2_speed_pct: f64,
    pump2_cmd_pct: f64,
    pump2_trip: bool,
    pump2_low_flow_s: f64,
    pump2_power_kw: f64,
    pump2_energy_j: f64,
    t1_supply_c: f64,
    t1_return_c: f64,
    t2_supply_c: f64,
    t2_return_c: f64,
    flow1_kg_s: f64,
    flow2_kg_s: f64,
    supply_pipe: PlugFlowPipe,
    return_pipe: PlugFlowPipe,
    /// The water moved through the return trunk in each sub-step of the step (kg, time s).
    return_fill: Vec<(f64, f64)>,
    /// Water held on the exchanger's primary side, kg.
    xchg_held1_kg: f64,
    /// Water held on the exchanger's secondary side, kg.
    xchg_held2_kg: f64,
    t2_supply_buildings_c: f64,
    t2_return_buildings_c: f64,
    t_air: Vec<f64>,
    t_air_prev: Vec<f64>,
    t_mass: Vec<f64>,
    t_rad: Vec<f64>,
    flow: Vec<f64>,
    delivered_j: Vec<f64>,
    hh_valves: Vec<Actuator>,
    ideal_heater_floor_c: Option<f64>,
    ideal_supply_c: Option<f64>,
    // accounting
    energy1_j: f64,
    energy2_j: f64,
    delivered_total_j: f64,
    audit: Option<Vec<ApartmentEnergy>>,
    // nodes and faults
    nodes: Vec<RoomNode>,
    node_rng: ChaCha8Rng,
    fault_frozen: Vec<Option<f64>>,
}

pub(crate) fn seed_stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// One sub-step of `h_s` of a well-mixed volume of `held_kg` of water through which `flow_kg_s`
/// passes, tending to `t_eq_c` (what it would deliver without the volume): exact for inputs held
/// over the sub-step. Returns its temperature at the end and its mean over the sub-step, °C.
/// Nothing held: at once at `t_eq_c`; nothing flowing: it keeps its temperature.
fn mixing_step(t0_c: f64, t_eq_c: f64, flow_kg_s: f64, held_kg: f64, h_s: f64) -> (f64, f64) {
    if held_kg <= 0.0 {
        return (t_eq_c, t_eq_c);
    }
    let x = flow_kg_s.max(0.0) * h_s / held_kg;
    if x <= 0.0 {
        return (t0_c, t0_c);
    }
    let e = (-x).exp();
    let mean_share = -(-x).exp_m1() / x;
    (
        t_eq_c + (t0_c - t_eq_c) * e,
        t_eq_c + (t0_c - t_eq_c) * mean_share,
    )
}

fn uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    if hi > lo {
        rng.random_range(lo..hi)
    } else {
        lo
    }
}

pub(crate) fn gauss(rng: &mut ChaCha8Rng) -> f64 {
    // Box-Muller.
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

impl Plant {
    /// Build the plant of a scenario, reading its weather file.
    pub fn new(scenario: &Scenario) -> Result<Plant, PlantError> {
        let weather = match (&scenario.weather.constant_outdoor_c, &scenario.weather_path) {
            (Some(t), _) => Weather::constant(*t, scenario.weather.constant_ghi_w_m2),
            (None, Some(p)) => Weather::from_csv_file(p)?,
            (None, None) => Weather::constant(0.0, 0.0),
        };
        Ok(Plant::with_weather(scenario, weather))
    }

    /// Build the plant of a scenario with the given weather (no file access).
    pub fn with_weather(scenario: &Scenario, weather: Weather) -> Plant {
        let sc = scenario.clone();
        let s = &sc.substation;
        let n = sc.apartment_count();
        let design = build::Design::of(&sc);
        let mut info = build::apartments(&sc, &design);
        let bld_load_w: f64 = info.iter().map(|a| a.design_load_w).sum();
        let design_load_w = s
            .design_load_kw
            .map_or(bld_load_w * (1.0 + s.pipe_loss_pct / 100.0), |k| k * 1000.0);
        let xchg = ExchangerDesign::size(
            design_load_w,
            s.t1_supply_cold_c,
            s.t1_return_design_c,
            s.t2_supply_design_c,
            s.t2_return_design_c,
        );
        build::set_nominal_flows(&mut info, xchg.flow2_nom_kg_s);
        let total_area_m2 = info.iter().map(|a| a.floor_area_m2).sum();
        let nodes = build::room_nodes(&sc, &mut info);
        let a_mats = build::apartment_matrices(&info);
        let hot = build::hot_data(&sc, &info);
        let net = build::network(&sc, &info);
        let start = build::StartState::of(&sc, &design, &weather);
        let (supply_pipe, return_pipe) =
            build::trunk_pipes(&sc, xchg.flow2_nom_kg_s, bld_load_w, &start);
        let t_room = sc.start.room_c;
        let t_mass = sc.start.mass_c.unwrap_or(t_room);
        let mut plant = Plant {
            supply_pipe,
            return_pipe,
            return_fill: Vec::new(),
            xchg_held1_kg: s.exchanger_lag_s * xchg.flow1_nom_kg_s,
            xchg_held2_kg: s.exchanger_lag_s * net.total_flow_m3h(1.0) * RHO_WATER_KG_M3 / 3600.0,
            law: RadiatorLaw::new(),
            flow1_max_kg_s: s.valve_max_flow_ratio * xchg.flow1_nom_kg_s,
            xchg,
            design_load_w,
            total_area_m2,
            info,
            hot,
            a_mats,
            disc_dt_s: 0.0,
            time_s: 0.0,
            t_out_c: start.t_out_c,
            ghi_w_m2: start.ghi_w_m2,
            valve1: Actuator::new(sc.start.valve1_pct, s.valve_stroke_s, s.valve_deadband_pct),
            net,
            pump2_speed_pct: s.pump2_speed_pct,
            pump2_cmd_pct: s.pump2_speed_pct,
            pump2_trip: false,
            pump2_low_flow_s: 0.0,
            pump2_power_kw: 0.0,
            pump2_energy_j: 0.0,
            t1_supply_c: t1_supply_schedule_c(&sc, start.t_out_c),
            t1_return_c: start.t2_return_c + 10.0,
            t2_supply_c: start.t2_supply_c,
            t2_return_c: start.t2_return_c,
            flow1_kg_s: 0.0,
            flow2_kg_s: 0.0,
            t2_supply_buildings_c: start.t2_supply_c,
            t2_return_buildings_c: start.t2_return_c,
            t_air: vec![t_room; n],
            t_air_prev: vec![t_room; n],
            t_mass: vec![t_mass; n],
            t_rad: vec![start.t_radiator_c; n],
            flow: vec![0.0; n],
            delivered_j: vec![0.0; n],
            hh_valves: build::household_valves(&sc),
            ideal_heater_floor_c: None,
            ideal_supply_c: None,
            energy1_j: 0.0,
            energy2_j: 0.0,
            delivered_total_j: 0.0,
            audit: None,
            nodes,
            node_rng: seed_stream(sc.seed, 3),
            fault_frozen: vec![None; sc.faults.len()],
            weather,
            scenario: sc,
        };
        plant.update_flows();
        plant.update_nodes();
        plant
    }

    /// The scenario this plant was built from.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Simulated time since the scenario start, s.
    pub fn time_s(&self) -> f64 {
        self.time_s
    }

    /// The weather's outdoor temperature at `time_s` (simulated seconds since the scenario
    /// start, past or future), °C: what a forecast service tries to predict
    /// ([`crate::forecast::ForecastService`] adds its error).
    pub fn weather_outdoor_c(&self, time_s: f64) -> f64 {
        let sc = &self.scenario;
        self.weather
            .at_hour(sc.season.start_hour_of_year + time_s / 3600.0)
            .0
    }

    /// Static description of every apartment.
    pub fn apartments(&self) -> &[ApartmentInfo] {
        &self.info
    }

    /// Total floor area, m².
    pub fn total_floor_area_m2(&self) -> f64 {
        self.total_area_m2
    }

    /// Design heat load of the substation (exchanger sizing), kW.
    pub fn design_load_kw(&self) -> f64 {
        self.design_load_w / 1000.0
    }

    /// Nominal primary mass flow, kg/s.
    pub fn flow1_nominal_kg_s(&self) -> f64 {
        self.xchg.flow1_nom_kg_s
    }

    /// Nominal secondary mass flow, kg/s.
    pub fn flow2_nominal_kg_s(&self) -> f64 {
        self.xchg.flow2_nom_kg_s
    }

    /// Valve opening (%) that passes `fraction` of the nominal primary flow (1.0 = nominal).
    pub fn valve1_opening_for_nominal_fraction_pct(&self, fraction: f64) -> f64 {
        let s = &self.scenario.substation;
        crate::physics::valve_opening_for_fraction_pct(
            fraction / s.valve_max_flow_ratio,
            s.valve_rangeability,
            s.valve_authority,
        )
    }

    /// Command the primary valve, %.
    pub fn set_valve1_cmd_pct(&mut self, pct: f64) {
        self.valve1.command(pct);
    }

    /// Command the primary valve and put the actuator there at once (tests, start-up).
    pub fn force_valve1_pct(&mut self, pct: f64) {
        self.valve1.command(pct);
        self.valve1.pos_pct = self.valve1.cmd_pct;
    }

    /// Command the household valve of apartment `i`, %.
    pub fn set_household_valve_pct(&mut self, i: usize, pct: f64) -> Result<(), PlantError> {
        if self.hh_valves.is_empty() {
            return Err(PlantError::NoHouseholdValves);
        }
        let len = self.hh_valves.len();
        self.hh_valves
            .get_mut(i)
            .ok_or(PlantError::Index {
                what: "apartment",
                index: i,
                len,
            })?
            .command(pct);
        Ok(())
    }

    /// Position and command of the household valve of apartment `i`, % (None without valves).
    pub fn household_valve(&self, i: usize) -> Option<(f64, f64)> {
        self.hh_valves.get(i).map(|v| (v.pos_pct, v.cmd_pct))
    }

    /// Household valve of apartment `i` is stuck by a fault.
    pub fn household_valve_stuck(&self, i: usize) -> bool {
        self.hh_valves.get(i).is_some_and(|v| v.stuck)
    }

    /// Set the circulation pump's speed and its command at once, % of design speed (tests,
    /// start-up; a dry-run trip is reset). The network's flows follow.
    pub fn set_pump2_speed_pct(&mut self, pct: f64) {
        if pct.is_finite() {
            self.pump2_speed_pct = pct.clamp(0.0, 100.0);
            self.pump2_cmd_pct = self.pump2_speed_pct;
            self.pump2_trip = false;
            self.pump2_low_flow_s = 0.0;
            self.update_flows();
        }
    }

    /// Command the circulation pump's speed, % of design speed (0 = stop, which also resets a
    /// dry-run trip); the speed follows at the scenario's `pump2_ramp_pct_s`. Non-finite
    /// commands are ignored.
    pub fn set_pump2_speed_cmd_pct(&mut self, pct: f64) {
        if pct.is_finite() {
            self.pump2_cmd_pct = pct.clamp(0.0, 100.0);
        }
    }

    /// The circulation pump's speed command, %.
    pub fn pump2_speed_cmd_pct(&self) -> f64 {
        self.pump2_cmd_pct
    }

    /// The hydraulic network (layout, pump, kv of every branch, the solution).
    pub fn hydraulics(&self) -> &hydraulics::Network {
        &self.net
    }

    /// Balancing valve kv of every flat, m³/h at 1 bar.
    pub fn balancing_kv(&self) -> &[f64] {
        self.net.balancing_kv()
    }

    /// Set flat `flat`'s balancing valve kv, m³/h at 1 bar (negative clamps to 0, non-finite
    /// and unknown flats ignored); the network's flows follow at once.
    pub fn set_balancing_kv(&mut self, flat: usize, kv: f64) {
        self.net.set_balancing_kv(flat, kv);
        self.update_flows();
    }

    /// Riser of flat `flat` (one riser per building: the building's index; `usize::MAX` for a
    /// flat that does not exist).
    pub fn flat_riser(&self, flat: usize) -> usize {
        self.info.get(flat).map_or(usize::MAX, |a| a.building)
    }

    /// Building of riser `riser` (one riser per building).
    pub fn riser_building(&self, riser: usize) -> usize {
        riser
    }

    /// Number of risers.
    pub fn riser_count(&self) -> usize {
        self.scenario.buildings.count
    }

    /// Differential pressure at the foot of every building's riser now, kPa.
    pub fn riser_dp_kpa(&self) -> Vec<f64> {
        let n = self.pump2_speed_pct / 100.0;
        (0..self.scenario.buildings.count)
            .map(|b| self.net.dp_building_kpa(b, n))
            .collect()
    }

    /// Design flow of every flat, m³/h.
    pub fn flat_design_flow_m3h(&self) -> Vec<f64> {
        self.info
            .iter()
            .map(|a| a.nominal_flow_kg_s / RHO_WATER_KG_M3 * 3600.0)
            .collect()
    }

    /// Perfect supply control (baselines B0/B1/O2): while `Some(t_c)`, each step puts the
    /// primary valve exactly where the exchanger's outlet meets `t_c` at the step's start
    /// (limited by the fully open valve and by t1_supply); the exchanger's hold-up still
    /// applies. `None` returns the valve to its command.
    pub fn set_ideal_supply_c(&mut self, supply_c: Option<f64>) {
        self.ideal_supply_c = supply_c.filter(|t| t.is_finite());
    }

    /// Length of the scenario's season, s.
    pub fn season_length_s(&self) -> f64 {
        self.scenario.season.length_days * 86400.0
    }

    /// Oracle mode (O1): radiators off, and each apartment gets exactly the heat that keeps its
    /// air at no less than `floor_c` at the end of each step. `None` returns to radiators.
    pub fn set_ideal_heater_floor_c(&mut self, floor_c: Option<f64>) {
        self.ideal_heater_floor_c = floor_c;
    }

    /// Override the outdoor conditions from now on (tests); replaces the weather file.
    pub fn set_constant_weather(&mut self, outdoor_c: f64, ghi_w_m2: f64) {
        self.weather = Weather::constant(outdoor_c, ghi_w_m2);
        self.t_out_c = outdoor_c;
        self.ghi_w_m2 = ghi_w_m2;
        self.t1_supply_c = t1_supply_schedule_c(&self.scenario, outdoor_c);
    }

    /// Start per-apartment energy bookkeeping from now.
    pub fn enable_energy_audit(&mut self) {
        let a = self
            .info
            .iter()
            .enumerate()
            .map(|(i, a)| ApartmentEnergy {
                stored_start_j: a.c_air_j_k * self.t_air[i] + a.c_mass_j_k * self.t_mass[i],
                ..Default::default()
            })
            .collect();
        self.audit = Some(a);
    }

    /// Per-apartment energy bookkeeping since [`Plant::enable_energy_audit`].
    pub fn energy_audit(&self) -> Option<&[ApartmentEnergy]> {
        self.audit.as_deref()
    }

    /// Energy stored in apartment `i` now (C_a T_a + C_m T_m), J.
    pub fn apartment_stored_j(&self, i: usize) -> f64 {
        self.info[i].c_air_j_k * self.t_air[i] + self.info[i].c_mass_j_k * self.t_mass[i]
    }

    /// Air temperature of every apartment, °C (ground truth).
    pub fn apartment_air_c(&self) -> &[f64] {
        &self.t_air
    }

    /// Mass temperature of every apartment, °C.
    pub fn apartment_mass_c(&self) -> &[f64] {
        &self.t_mass
    }

    /// Radiator (mean water) temperature of every apartment, °C.
    pub fn apartment_radiator_c(&self) -> &[f64] {
        &self.t_rad
    }

    /// Water flow through every apartment's radiator, kg/s.
    pub fn apartment_flow_kg_s(&self) -> &[f64] {
        &self.flow
    }

    /// Cumulative heat delivered into every apartment by its radiator (or ideal heater), J.
    pub fn apartment_heat_delivered_j(&self) -> &[f64] {
        &self.delivered_j
    }

    /// Substation-level ground truth now.
    pub fn truth(&self) -> SubstationTruth {
        SubstationTruth {
            t_out_c: self.t_out_c,
            ghi_w_m2: self.ghi_w_m2,
            t1_supply_c: self.t1_supply_c,
            t1_return_c: self.t1_return_c,
            t2_supply_c: self.t2_supply_c,
            t2_return_c: self.t2_return_c,
            t2_supply_buildings_c: self.t2_supply_buildings_c,
            t2_return_buildings_c: self.t2_return_buildings_c,
            flow1_kg_s: self.flow1_kg_s,
            flow2_kg_s: self.flow2_kg_s,
            power1_kw: self.flow1_kg_s * CP_WATER_J_KGK * (self.t1_supply_c - self.t1_return_c)
                / 1000.0,
            power2_kw: self.flow2_kg_s * CP_WATER_J_KGK * (self.t2_supply_c - self.t2_return_c)
                / 1000.0,
            valve1_pos_pct: self.valve1.pos_pct,
            valve1_cmd_pct: self.valve1.cmd_pct,
            energy1_kwh: self.energy1_j / 3.6e6,
            energy2_kwh: self.energy2_j / 3.6e6,
            delivered_energy_kwh: self.delivered_total_j / 3.6e6,
            pipe_loss_kwh: (self.supply_pipe.lost_j + self.return_pipe.lost_j) / 3.6e6,
            dp2_station_kpa: self.dp2_station_true_kpa(),
            dp2_index_kpa: self.dp2_index_true_kpa(),
            pump2_speed_pct: self.pump2_speed_pct,
            pump2_speed_cmd_pct: self.pump2_cmd_pct,
            pump2_power_kw: self.pump2_power_kw,
            pump2_energy_kwh_el: self.pump2_energy_j / 3.6e6,
            flow2_m3h: self.flow2_kg_s / RHO_WATER_KG_M3 * 3600.0,
            pump2_dry_run_trip: self.pump2_trip,
        }
    }

    fn dp2_station_true_kpa(&self) -> f64 {
        self.net.dp_station_kpa(self.pump2_speed_pct / 100.0)
    }

    fn dp2_index_true_kpa(&self) -> f64 {
        self.net
            .dp_building_kpa(self.scenario.index_building(), self.pump2_speed_pct / 100.0)
    }

    /// Pump status bits: 0 running, 1 dry-run trip.
    pub fn pump2_status(&self) -> u16 {
        u16::from(self.pump2_speed_pct > 0.0 && !self.pump2_trip)
            | (u16::from(self.pump2_trip) << 1)
    }

    /// Trunk pipes (supply, return).
    pub fn pipes(&self) -> (&PlugFlowPipe, &PlugFlowPipe) {
        (&self.supply_pipe, &self.return_pipe)
    }

    /// Heat held now by the water between the primary heat meter and the rooms: the exchanger,
    /// the trunk pipes and the radiators (J above 0 °C). Over any span the meter's heat equals
    /// the heat delivered to the flats plus the pipes' losses plus the change of this.
    pub fn stored_heat(&self) -> StoredHeat {
        StoredHeat {
            exchanger_j: (self.xchg_held1_kg * self.t1_return_c
                + self.xchg_held2_kg * self.t2_supply_c)
                * CP_WATER_J_KGK,
            pipes_j: self.supply_pipe.stored_heat_j() + self.return_pipe.stored_heat_j(),
            radiators_j: self
                .info
                .iter()
                .zip(&self.t_rad)
                .map(|(a, t)| a.c_radiator_j_k * t)
                .sum(),
        }
    }

    /// Flows from the network: the household valves' positions into it (solved again when one
    /// moved), every flat's flow and the total at the pump's present speed.
    fn update_flows(&mut self) {
        if !self.hh_valves.is_empty() {
            self.net
                .set_household_positions(self.hh_valves.iter().map(|v| v.pos_pct));
        }
        self.set_flat_flows(self.pump2_speed_pct / 100.0);
        self.set_pump_point();
    }

    /// Every flat's flow at relative pump speed `n` (the solution scales with speed).
    fn set_flat_flows(&mut self, n: f64) {
        let to_kg_s = n.max(0.0) * RHO_WATER_KG_M3 / 3600.0;
        for (f, q) in self
            .flow
            .iter_mut()
            .zip(self.net.flat_flows_m3h_at_design_speed())
        {
            *f = q * to_kg_s;
        }
    }

    /// Total flow and electric power at the pump's present speed.
    fn set_pump_point(&mut self) {
        let n = self.pump2_speed_pct / 100.0;
        let q = self.net.total_flow_m3h(n);
        self.flow2_kg_s = q * RHO_WATER_KG_M3 / 3600.0;
        self.pump2_power_kw = self.net.pump().electric_kw(q, n);
    }

    /// One fast sub-step of `h` seconds of the pump: the speed follows its command at the ramp
    /// (0 while tripped), the dry-run protection watches the flow, flow and power follow, the
    /// electricity accumulates.
    fn pump_substep(&mut self, h: f64) {
        let s = &self.scenario.substation;
        if self.pump2_cmd_pct <= 0.0 {
            self.pump2_trip = false;
            self.pump2_low_flow_s = 0.0;
        }
        if self.pump2_trip {
            self.pump2_speed_pct = 0.0;
        } else {
            let step = s.pump2_ramp_pct_s * h;
            let d = (self.pump2_cmd_pct - self.pump2_speed_pct).clamp(-step, step);
            self.pump2_speed_pct += d;
        }
        let n = self.pump2_speed_pct / 100.0;
        let design = self.design_flow2_m3h();
        if n > 0.0 && self.net.total_flow_m3h(n) < DRY_RUN_FLOW_SHARE * design {
            self.pump2_low_flow_s += h;
            if self.pump2_low_flow_s > DRY_RUN_DELAY_S {
                self.pump2_trip = true;
                self.pump2_speed_pct = 0.0;
            }
        } else {
            self.pump2_low_flow_s = 0.0;
        }
        self.set_pump_point();
        self.pump2_energy_j += self.pump2_power_kw * 1000.0 * h;
    }

    /// The secondary design flow, m³/h.
    fn design_flow2_m3h(&self) -> f64 {
        self.xchg.flow2_nom_kg_s / RHO_WATER_KG_M3 * 3600.0
    }

    fn rediscretise(&mut self, dt_s: f64) {
        for (h, (a, b)) in self.hot.iter_mut().zip(&self.a_mats) {
            h.d = discretise(a, b, dt_s);
        }
        self.disc_dt_s = dt_s;
    }

    /// Advance the plant by `dt_s` seconds of simulated time. The apartments take one exact step
    /// of `dt_s` (re-discretised when `dt_s` changes); valve, exchanger and pipes take sub-steps
    /// no longer than the scenario's `fast_substep_s`.
    pub fn step(&mut self, dt_s: f64) {
        if !(dt_s.is_finite() && dt_s > 0.0) {
            return;
        }
        if dt_s.to_bits() != self.disc_dt_s.to_bits() {
            self.rediscretise(dt_s);
        }
        self.apply_actuator_faults();
        let sc = &self.scenario;
        let s = &sc.substation;
        let (t_out, ghi) = self
            .weather
            .at_hour(sc.season.start_hour_of_year + (self.time_s + 0.5 * dt_s) / 3600.0);
        self.t_out_c = t_out;
        self.ghi_w_m2 = ghi;
        self.t1_supply_c = t1_supply_schedule_c(sc, t_out);

        // Fast part.
        let n_sub = (dt_s / sc.time.fast_substep_s).ceil().max(1.0);
        let h = dt_s / n_sub;
        let (rangeability, authority) = (s.valve_rangeability, s.valve_authority);
        let mut sup_acc = 0.0;
        let mut sup_heat_acc = 0.0;
        let mut sup_mass_kg = 0.0;
        let mut speed_acc = 0.0;
        let t0 = self.time_s;
        self.return_fill.clear();
        for k in 0..(n_sub as usize) {
            let now = t0 + (k as f64 + 1.0) * h;
            self.pump_substep(h);
            speed_acc += self.pump2_speed_pct / 100.0;
            let m_s = self.flow2_kg_s;
            // The water entering the exchanger in this sub-step is what leaves the return trunk
            // in it; the flats' return water of this step goes in at its end (below).
            self.t2_return_c = self.return_pipe.take(m_s * h, now);
            self.return_fill.push((m_s * h, now));
            if let (Some(set_c), 0) = (self.ideal_supply_c, k) {
                // Perfect valve control: the primary flow whose exchanger outlet meets the
                // setpoint (bisection on the monotonic Q(m_p)), the valve put where it passes it.
                let want = set_c.min(self.t1_supply_c);
                let (mut lo, mut hi) = (0.0, self.flow1_max_kg_s);
                if self
                    .xchg
                    .exchange(hi, m_s, self.t1_supply_c, self.t2_return_c)
                    .t2_supply_c
                    <= want
                {
                    lo = hi;
                } else {
                    for _ in 0..16 {
                        let mid = 0.5 * (lo + hi);
                        if self
                            .xchg
                            .exchange(mid, m_s, self.t1_supply_c, self.t2_return_c)
                            .t2_supply_c
                            < want
                        {
                            lo = mid;
                        } else {
                            hi = mid;
                        }
                    }
                }
                self.flow1_kg_s = lo;
                let u = crate::physics::valve_opening_for_fraction_pct(
                    lo / self.flow1_max_kg_s,
                    rangeability,
                    authority,
                );
                self.valve1.command(u);
                self.valve1.pos_pct = self.valve1.cmd_pct;
            } else if self.ideal_supply_c.is_none() {
                self.valve1.step(h);
                self.flow1_kg_s = self.flow1_max_kg_s
                    * crate::physics::valve_flow_fraction(
                        self.valve1.pos_pct,
                        rangeability,
                        authority,
                    );
            }
            let m_p = self.flow1_kg_s;
            let x = self
                .xchg
                .exchange(m_p, m_s, self.t1_supply_c, self.t2_return_c);
            // The water held on each side of the exchanger mixes with what flows through: its
            // outlet tends to the effectiveness-NTU outlet at the rate flow / held mass. Over the
            // sub-step the heat through the plates (x.q_w) equals what each side's flow carries
            // out at its mean outlet temperature plus the change of the heat held.
            let (t1_end, t1_mean) =
                mixing_step(self.t1_return_c, x.t1_return_c, m_p, self.xchg_held1_kg, h);
            let (t2_end, t2_mean) =
                mixing_step(self.t2_supply_c, x.t2_supply_c, m_s, self.xchg_held2_kg, h);
            self.t1_return_c = t1_end;
            self.t2_supply_c = t2_end;
            self.energy1_j += m_p * CP_WATER_J_KGK * (self.t1_supply_c - t1_mean) * h;
            self.energy2_j += m_s * CP_WATER_J_KGK * (t2_mean - self.t2_return_c) * h;
            let t_in = self.supply_pipe.push(m_s * h, t2_mean, now);
            sup_acc += t_in;
            sup_heat_acc += m_s * h * t_in;
            sup_mass_kg += m_s * h;
        }
        // The flats get the water that left the supply trunk over the step: its mass-weighted
        // mean temperature at the step's mean flow.
        let t_in = if sup_mass_kg > 0.0 {
            sup_heat_acc / sup_mass_kg
        } else {
            sup_acc / n_sub
        };
        self.t2_supply_buildings_c = t_in;
        // The flats see the mean flow over the sub-steps.
        self.set_flat_flows(speed_acc / n_sub);

        // Apartments.
        let t_ret = self.step_apartments(dt_s, t_in, t_out, ghi);
        self.t2_return_buildings_c = t_ret;
        // Their return water, sub-step by sub-step as the pump moved it, into the return trunk.
        for &(m, entered_s) in &self.return_fill {
            self.return_pipe.fill(m, t_ret, entered_s);
        }
        for v in &mut self.hh_valves {
            v.step(dt_s);
        }
        self.update_flows();
        self.time_s += dt_s;
        self.capture_frozen();
        self.update_nodes();
    }

    fn step_apartments(&mut self, dt: f64, t_in: f64, t_e: f64, ghi: f64) -> f64 {
        self.t_air_prev.copy_from_slice(&self.t_air);
        let prev = &self.t_air_prev;
        let law = &self.law;
        let ideal = self.ideal_heater_floor_c;
        let mut water_heat_w = 0.0;
        let mut m_tot = 0.0;
        for (i, h) in self.hot.iter().enumerate() {
            let ta = prev[i];
            let tm = self.t_mass[i];
            let m = self.flow[i];
            // Radiator: linearised law, exact exponential step with the room held.
            let (q_rad, w_in) = if ideal.is_some() {
                (0.0, 0.0)
            } else {
                let mc = m * CP_WATER_J_KGK;
                let r = if m >= h.m_low { 1.0 } else { m / h.m_low };
                let g = mc * (1.0 + r);
                let tr0 = self.t_rad[i];
                let (y, dy) = law.eval(tr0 - ta);
                let q0 = h.qn_w * y;
                let k = h.qn_w * dy;
                let gk = g + k;
                let eq = (g * t_in - q0 + k * tr0) / gk;
                let tau = h.c_rad / gk;
                let e = (-dt / tau).exp();
                let tr1 = eq + (tr0 - eq) * e;
                let tr_mean = eq + (tr0 - eq) * (1.0 - e) * tau / dt;
                self.t_rad[i] = tr1;
                let q = q0 + k * (tr_mean - tr0);
                (q, g * (t_in - tr_mean))
            };
            water_heat_w += w_in;
            m_tot += m;
            let mut s_nb = 0.0;
            for &j in &h.nb[..h.n_nb as usize] {
                s_nb += prev[j as usize];
            }
            let p_sol = h.solar_half_w_per_ghi * ghi;
            let q_m = h.gain_int_half_w + p_sol;
            let mut q_a = q_rad + q_m;
            let d = &h.d;
            let mut a1 = d.phi[0] * ta
                + d.phi[1] * tm
                + d.gam[0] * t_e
                + d.gam[1] * s_nb
                + d.gam[2] * q_a
                + d.gam[3] * q_m;
            let mut m1 = d.phi[2] * ta
                + d.phi[3] * tm
                + d.gam[4] * t_e
                + d.gam[5] * s_nb
                + d.gam[6] * q_a
                + d.gam[7] * q_m;
            let mut q_heat = q_rad;
            if let Some(floor) = ideal {
                if a1 < floor {
                    let qh = (floor - a1) / d.gam[2];
                    a1 = floor;
                    m1 += d.gam[6] * qh;
                    q_a += qh;
                    q_heat = qh;
                } else {
                    q_heat = 0.0;
                }
            }
            self.t_air[i] = a1;
            self.t_mass[i] = m1;
            self.delivered_j[i] += q_heat * dt;
            self.delivered_total_j += q_heat * dt;
            if let Some(audit) = self.audit.as_mut() {
                let ab = d.psi[0] * ta
                    + d.psi[1] * tm
                    + d.lam[0] * t_e
                    + d.lam[1] * s_nb
                    + d.lam[2] * q_a
                    + d.lam[3] * q_m;
                let mb = d.psi[2] * ta
                    + d.psi[3] * tm
                    + d.lam[4] * t_e
                    + d.lam[5] * s_nb
                    + d.lam[6] * q_a
                    + d.lam[7] * q_m;
                let inf = &self.info[i];
                let e = &mut audit[i];
                e.heating_j += q_heat * dt;
                e.gains_j += 2.0 * q_m * dt;
                e.loss_outside_j += (inf.h_ae_w_k * (ab - t_e) + inf.h_me_w_k * (mb - t_e)) * dt;
                e.loss_neighbours_j += inf.h_neighbour_w_k * (h.n_nb as f64 * ab - s_nb) * dt;
            }
        }
        if m_tot > 1e-12 {
            t_in - water_heat_w / (m_tot * CP_WATER_J_KGK)
        } else {
            self.t2_return_buildings_c
        }
    }

    fn apply_actuator_faults(&mut self) {
        let t = self.time_s;
        self.valve1.stuck = false;
        for v in &mut self.hh_valves {
            v.stuck = false;
        }
        for f in &self.scenario.faults {
            if f.kind != FaultKind::ValveStuck || !f.active_at(t) {
                continue;
            }
            match f.target {
                FaultTarget::Valve1 => self.valve1.stuck = true,
                FaultTarget::HouseholdValve(i) => {
                    if let Some(v) = self.hh_valves.get_mut(i) {
                        v.stuck = true;
                    }
                }
                _ => {}
            }
        }
    }

    fn true_sensor(&self, id: SensorId) -> f64 {
        match id {
            SensorId::TOut => self.t_out_c,
            SensorId::T1Supply => self.t1_supply_c,
            SensorId::T1Return => self.t1_return_c,
            SensorId::T2Supply => self.t2_supply_c,
            SensorId::T2Return => self.t2_return_c,
            SensorId::Valve1Pos => self.valve1.pos_pct,
            SensorId::HeatMeterPower => {
                self.flow1_kg_s * CP_WATER_J_KGK * (self.t1_supply_c - self.t1_return_c) / 1000.0
            }
            SensorId::HeatMeterFlow => self.flow1_kg_s / RHO_WATER_KG_M3 * 3600.0,
            SensorId::Dp2Station => self.dp2_station_true_kpa(),
            SensorId::Dp2Index => self.dp2_index_true_kpa(),
            SensorId::Pump2Power => self.pump2_power_kw,
            SensorId::Flow2 => self.flow2_kg_s / RHO_WATER_KG_M3 * 3600.0,
        }
    }

    fn capture_frozen(&mut self) {
        for k in 0..self.scenario.faults.len() {
            let f = &self.scenario.faults[k];
            if f.kind != FaultKind::SensorFrozen {
                continue;
            }
            if !f.active_at(self.time_s) {
                self.fault_frozen[k] = None;
                continue;
            }
            if self.fault_frozen[k].is_none() {
                let v = match f.target {
                    FaultTarget::Sensor(id) => Some(self.true_sensor(id)),
                    FaultTarget::RoomNode(a) => self
                        .info
                        .get(a)
                        .and_then(|i| i.room_node)
                        .and_then(|n| self.nodes[n].published_c),
                    _ => None,
                };
                self.fault_frozen[k] = v;
            }
        }
    }

    fn apply_faults(&self, target: FaultTarget, value: f64) -> Option<f64> {
        let t = self.time_s;
        let mut v = Some(value);
        for (k, f) in self.scenario.faults.iter().enumerate() {
            if f.target != target || !f.active_at(t) {
                continue;
            }
            v = match f.kind {
                FaultKind::SensorSentinel => None,
                FaultKind::SensorFrozen => self.fault_frozen[k].or(v),
                FaultKind::SensorDrift => v.map(|x| x + f.drift_per_h * (t - f.start_s) / 3600.0),
                FaultKind::SensorJump => v.map(|x| x + f.jump),
                _ => v,
            };
        }
        v
    }

    fn sensor(&self, id: SensorId) -> Option<f64> {
        self.apply_faults(FaultTarget::Sensor(id), self.true_sensor(id))
    }

    fn update_nodes(&mut self) {
        let t = self.time_s;
        let rn = &self.scenario.room_nodes;
        for node in &mut self.nodes {
            if t + 1e-9 < node.next_report_s {
                continue;
            }
            node.next_report_s += node.report_interval_s;
            if node.next_report_s <= t {
                node.next_report_s = t + node.report_interval_s;
            }
            let lost = self.node_rng.random::<f64>() * 100.0 < rn.loss_pct;
            let noise = rn.noise_k * gauss(&mut self.node_rng);
            if lost && node.published_c.is_some() {
                continue;
            }
            let raw = self.t_air[node.apartment] + node.bias_k + noise + node.calibration_offset_k;
            let val = (raw * 100.0).round() / 100.0;
            if node.published_c.map(f64::to_bits) != Some(val.to_bits()) {
                node.last_change_s = t;
            }
            node.published_c = Some(val);
            node.sample_counter = node.sample_counter.wrapping_add(1);
            node.last_report_s = t;
        }
    }

    /// Reading of room node `k` (faults applied).
    pub fn room_node(&self, k: usize) -> Option<RoomNodeReading> {
        let node = self.nodes.get(k)?;
        let a = &self.info[node.apartment];
        let target = FaultTarget::RoomNode(node.apartment);
        let temperature_c = node.published_c.and_then(|v| self.apply_faults(target, v));
        Some(RoomNodeReading {
            node: k,
            apartment: node.apartment,
            building: a.building,
            floor: a.floor,
            unit: a.unit,
            position: a.position,
            unit_id: node.unit_id,
            temperature_c,
            humidity_pct: (45.0 - 1.5 * (self.t_air[node.apartment] - 20.0)).clamp(15.0, 80.0),
            sample_counter: node.sample_counter,
            unchanged_s: self.time_s - node.last_change_s,
            uptime_s: self.time_s,
            last_report_s: node.last_report_s,
        })
    }

    /// Number of room nodes.
    pub fn room_node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Room node index of the node with Modbus `unit_id` on building `building`'s bus.
    pub fn room_node_by_unit(&self, building: usize, unit_id: u8) -> Option<usize> {
        let per = self.scenario.apartments_per_building();
        let idx = building * per + usize::from(unit_id).checked_sub(1)?;
        if usize::from(unit_id) > per {
            return None;
        }
        self.info.get(idx)?.room_node
    }

    /// Node settings (calibration offset K, report interval s).
    pub fn room_node_settings(&self, k: usize) -> Option<(f64, f64)> {
        self.nodes
            .get(k)
            .map(|n| (n.calibration_offset_k, n.report_interval_s))
    }

    /// Change node settings (as a write to its holding registers would).
    pub fn set_room_node_settings(
        &mut self,
        k: usize,
        calibration_offset_k: f64,
        report_interval_s: f64,
    ) {
        if let Some(n) = self.nodes.get_mut(k) {
            n.calibration_offset_k = calibration_offset_k.clamp(-5.0, 5.0);
            n.report_interval_s = report_interval_s.clamp(10.0, 3600.0);
        }
    }

    /// Heat meter reading (faults applied).
    pub fn heat_meter(&self) -> HeatMeterReading {
        let power_kw = self.sensor(SensorId::HeatMeterPower).map(|p| p.max(0.0));
        let flow_m3h = self.sensor(SensorId::HeatMeterFlow).map(|f| f.max(0.0));
        let t_supply_c = self.sensor(SensorId::T1Supply);
        let t_return_c = self.sensor(SensorId::T1Return);
        let mut status = 0;
        if flow_m3h.is_none() || power_kw.is_none() {
            status |= 1;
        }
        if t_supply_c.is_none() || t_return_c.is_none() {
            status |= 2;
        }
        HeatMeterReading {
            power_kw,
            flow_m3h,
            energy_kwh: self.energy1_j / 3.6e6,
            t_supply_c,
            t_return_c,
            status,
        }
    }

    /// What the field would read now: substation points, heat meter and room nodes.
    pub fn sensors(&self) -> Sensors {
        let mut s = self.sensors_substation();
        s.room_nodes = (0..self.nodes.len())
            .filter_map(|k| self.room_node(k))
            .collect();
        s
    }

    /// Like [`Plant::sensors`] without the room nodes (`room_nodes` empty, no allocation).
    pub fn sensors_substation(&self) -> Sensors {
        let s = &self.scenario.substation;
        let dp2_station = self.dp2_station_true_kpa();
        Sensors {
            time_s: self.time_s,
            t_out_c: self.sensor(SensorId::TOut),
            t1_supply_c: self.sensor(SensorId::T1Supply),
            t1_return_c: self.sensor(SensorId::T1Return),
            t2_supply_c: self.sensor(SensorId::T2Supply),
            t2_return_c: self.sensor(SensorId::T2Return),
            p2_supply_kpa: s.p2_static_kpa + dp2_station,
            p2_return_kpa: s.p2_static_kpa,
            valve1_pos_pct: self.sensor(SensorId::Valve1Pos),
            valve1_cmd_pct: self.valve1.cmd_pct,
            pump2_speed_pct: self.pump2_speed_pct,
            pump2_speed_cmd_pct: self.pump2_cmd_pct,
            dp2_station_kpa: self.sensor(SensorId::Dp2Station),
            dp2_index_kpa: self.sensor(SensorId::Dp2Index),
            pump2_power_kw: self.sensor(SensorId::Pump2Power),
            flow2_m3h: self.sensor(SensorId::Flow2),
            pump2_status: self.pump2_status(),
            heat_meter: self.heat_meter(),
            room_nodes: Vec::new(),
        }
    }

    /// Faults of the scenario active now.
    pub fn active_faults(&self) -> impl Iterator<Item = &Fault> {
        let t = self.time_s;
        self.scenario.faults.iter().filter(move |f| f.active_at(t))
    }
}

/// Primary supply temperature from the schedule: linear between the cold and warm points, flat
/// outside them.
pub fn t1_supply_schedule_c(sc: &Scenario, t_out_c: f64) -> f64 {
    let s = &sc.substation;
    let x = ((t_out_c - s.t1_schedule_cold_outdoor_c)
        / (s.t1_schedule_warm_outdoor_c - s.t1_schedule_cold_outdoor_c))
        .clamp(0.0, 1.0);
    s.t1_supply_cold_c + x * (s.t1_supply_warm_c - s.t1_supply_cold_c)
}
