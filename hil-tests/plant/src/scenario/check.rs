//! The value checks of a scenario, one function per part: ranges and the relations between
//! fields that the types cannot say.

use std::path::{Path, PathBuf};

use super::parse::Collector;
use super::weather_file::resolve_weather;
use super::{
    BuildingsSection, HouseholdValvesSection, HydraulicsSection, ModbusSection, RoomNodesSection,
    SeasonSection, StartSection, SubstationSection, TimeSection, WeatherSection,
};

/// Sizes of the buildings, and the draws of their apartments.
pub(super) fn buildings(c: &mut Collector<'_>, b: &BuildingsSection) {
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
}

/// The weather: constant values in range, else a weather file that exists (returned, resolved).
pub(super) fn weather(
    c: &mut Collector<'_>,
    weather: &WeatherSection,
    base_dir: &Path,
    weather_override: Option<&Path>,
) -> Option<PathBuf> {
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
    weather_path
}

/// The season window, the start state and the time base.
pub(super) fn season_start_time(
    c: &mut Collector<'_>,
    season: &SeasonSection,
    start: &StartSection,
    time: &TimeSection,
) {
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
}

/// The substation's design data, schedule, valve, exchanger, pipes and pump.
pub(super) fn substation(c: &mut Collector<'_>, s: &SubstationSection) {
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
        s.t1_return_design_c > s.t2_return_design_c && s.t1_return_design_c < s.t1_supply_cold_c,
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
    c.range(
        s.pump2_ramp_pct_s,
        0.01,
        100.0,
        "substation.pump2_ramp_pct_s",
    );
    c.range(s.p2_static_kpa, 0.0, 1600.0, "substation.p2_static_kpa");
    if let Some(h) = s.pump_head_kpa {
        c.range(h, 1.0, 1000.0, "substation.pump_head_kpa");
    }
}

/// The hydraulic network: lengths, sizing, pressure drops, the pump, the household valves'
/// hydraulic data and the index building among `buildings`.
pub(super) fn hydraulics(
    c: &mut Collector<'_>,
    h: &HydraulicsSection,
    hv: &HouseholdValvesSection,
    buildings: usize,
) {
    c.range(h.fouling_min, 0.1, 1.0, "hydraulics.fouling_min");
    c.range(h.fouling_max, 0.1, 1.0, "hydraulics.fouling_max");
    c.check(
        h.fouling_min <= h.fouling_max,
        "hydraulics.fouling_min",
        "must not exceed fouling_max",
    );
    c.range(h.mains_first_m, 0.0, 10_000.0, "hydraulics.mains_first_m");
    c.range(
        h.mains_spacing_m,
        0.0,
        10_000.0,
        "hydraulics.mains_spacing_m",
    );
    c.range(h.riser_base_m, 0.0, 1000.0, "hydraulics.riser_base_m");
    c.range(h.floor_height_m, 1.0, 10.0, "hydraulics.floor_height_m");
    c.range(
        h.mains_design_pa_m,
        5.0,
        1000.0,
        "hydraulics.mains_design_pa_m",
    );
    c.range(
        h.riser_design_pa_m,
        5.0,
        1000.0,
        "hydraulics.riser_design_pa_m",
    );
    c.range(h.roughness_mm, 0.001, 5.0, "hydraulics.roughness_mm");
    c.range(
        h.radiator_circuit_dp_kpa,
        0.5,
        200.0,
        "hydraulics.radiator_circuit_dp_kpa",
    );
    c.range(
        h.balancing_valve_min_dp_kpa,
        0.5,
        100.0,
        "hydraulics.balancing_valve_min_dp_kpa",
    );
    c.range(h.station_dp_kpa, 0.0, 500.0, "hydraulics.station_dp_kpa");
    c.range(
        h.pump_shutoff_ratio,
        1.02,
        3.0,
        "hydraulics.pump_shutoff_ratio",
    );
    c.range(h.pump_efficiency, 0.1, 0.95, "hydraulics.pump_efficiency");
    c.range(h.drive_efficiency, 0.3, 0.99, "hydraulics.drive_efficiency");
    c.range(
        h.drive_fixed_loss_share,
        0.0,
        1.0,
        "hydraulics.drive_fixed_loss_share",
    );
    if let Some(b) = h.index_building {
        c.check(
            b < buildings,
            "hydraulics.index_building",
            format!("building {b} does not exist (0..{buildings})"),
        );
    }
    c.range(hv.authority, 0.05, 0.95, "household_valves.authority");
    c.range(
        hv.rangeability,
        2.0,
        1000.0,
        "household_valves.rangeability",
    );
}

/// Household valves, room nodes and the Modbus faces of `buildings` buildings.
pub(super) fn devices(
    c: &mut Collector<'_>,
    household_valves: &HouseholdValvesSection,
    room_nodes: &RoomNodesSection,
    modbus: &ModbusSection,
    buildings: usize,
) {
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
            base == 0 || usize::from(base) + buildings <= 65536,
            name,
            "base port + number of buildings exceeds 65535",
        );
    }
}
