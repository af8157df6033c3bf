//! Building a plant from its scenario: the apartments and their random draws, the room nodes,
//! the per-apartment data of the step loop, the trunk pipes and the start state.
//!
//! Each random draw has its own stream of the scenario's seed (apartments 1, room-node choice
//! and their bias and phase 2, node noise and losses 3), so one part can change without moving
//! the draws of another.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::hydraulics::{Layout, Network, Pump, pipe_resistance, size_pipe};
use super::{
    AIR_SHARE_OF_H, ApartmentInfo, C_A_J_M2K, C_M_J_M2K, H_AM_W_M2K, Hot, LOW_FLOW_SHARE,
    PositionClass, RADIATOR_CAPACITY_J_K_PER_W, RoomNode, seed_stream, uniform,
};
use crate::physics::{
    Actuator, CP_WATER_J_KGK, Discrete, M2, PlugFlowPipe, RADIATOR_EXPONENT, RHO_WATER_KG_M3,
    RadiatorLaw,
};
use crate::scenario::Scenario;
use crate::weather::Weather;

/// Design figures of the buildings that every apartment is sized from.
#[derive(Debug, Clone, Copy)]
pub(super) struct Design {
    /// Design heat load per m² of floor, W/m².
    q_w_m2: f64,
    /// Design room minus design outdoor temperature, K.
    dt_k: f64,
    /// Mean radiator water temperature above the room at design, K.
    pub(super) mean_radiator_excess_k: f64,
    /// Radiator output at design relative to its nominal output.
    radiator_ratio: f64,
}

impl Design {
    /// The design figures of a scenario.
    pub(super) fn of(sc: &Scenario) -> Self {
        let s = &sc.substation;
        let mean_radiator_excess_k =
            0.5 * (s.t2_supply_design_c + s.t2_return_design_c) - s.design_room_c;
        Self {
            q_w_m2: sc.design_load_w_m2(),
            dt_k: s.design_room_c - s.design_outdoor_c,
            mean_radiator_excess_k,
            radiator_ratio: RadiatorLaw::exact(mean_radiator_excess_k),
        }
    }
}

/// Every apartment, building-major then floor then unit, with its random draws (stream 1);
/// nominal flows are set by [`set_nominal_flows`] once the exchanger is sized.
pub(super) fn apartments(sc: &Scenario, design: &Design) -> Vec<ApartmentInfo> {
    let b = &sc.buildings;
    let mut rng = seed_stream(sc.seed, 1);
    let per_bld = sc.apartments_per_building();
    let n = sc.apartment_count();
    let (q_d, dt_design, rad_design_ratio) = (design.q_w_m2, design.dt_k, design.radiator_ratio);
    let mut info = Vec::with_capacity(n);
    for bi in 0..b.count {
        for fl in 0..b.floors {
            for un in 0..b.units_per_floor {
                let index = info.len();
                let is_end = un == 0 || un + 1 == b.units_per_floor;
                let position = if fl + 1 == b.floors {
                    PositionClass::Top
                } else if fl == 0 {
                    PositionClass::Ground
                } else if is_end {
                    PositionClass::End
                } else {
                    PositionClass::Middle
                };
                let area = b.apartment_area_m2;
                let pf = if b.position_factors {
                    position.factor()
                } else {
                    1.0
                };
                let h_tot = q_d / dt_design * area * pf;
                let h_ae = AIR_SHARE_OF_H * h_tot;
                let h_me = (1.0 - AIR_SHARE_OF_H) * h_tot;
                let h_am = H_AM_W_M2K * area;
                let h_eff = h_ae + h_am * h_me / (h_am + h_me);
                let design_load_w = h_eff * dt_design;
                let oversize = uniform(&mut rng, b.radiator_oversize_min, b.radiator_oversize_max);
                let fouling = uniform(
                    &mut rng,
                    sc.hydraulics.fouling_min,
                    sc.hydraulics.fouling_max,
                );
                let solar = uniform(&mut rng, b.solar_multiplier_min, b.solar_multiplier_max);
                let qn = oversize * design_load_w / rad_design_ratio;
                let mut neighbours = Vec::with_capacity(4);
                let base = bi * per_bld;
                if un > 0 {
                    neighbours.push(base + fl * b.units_per_floor + un - 1);
                }
                if un + 1 < b.units_per_floor {
                    neighbours.push(base + fl * b.units_per_floor + un + 1);
                }
                if fl > 0 {
                    neighbours.push(base + (fl - 1) * b.units_per_floor + un);
                }
                if fl + 1 < b.floors {
                    neighbours.push(base + (fl + 1) * b.units_per_floor + un);
                }
                info.push(ApartmentInfo {
                    index,
                    building: bi,
                    floor: fl,
                    unit: un,
                    is_end_unit: is_end,
                    position,
                    floor_area_m2: area,
                    design_load_w,
                    radiator_nominal_w: qn,
                    radiator_oversize: oversize,
                    fouling_factor: fouling,
                    nominal_flow_kg_s: 0.0,
                    solar_multiplier: solar,
                    h_ae_w_k: h_ae,
                    h_me_w_k: h_me,
                    h_am_w_k: h_am,
                    h_neighbour_w_k: b.neighbour_coupling_w_m2k * area / 4.0,
                    c_air_j_k: C_A_J_M2K * area,
                    c_mass_j_k: C_M_J_M2K * area,
                    c_radiator_j_k: RADIATOR_CAPACITY_J_K_PER_W * qn,
                    neighbours,
                    room_node: None,
                });
            }
        }
    }
    info
}

/// Share the secondary design flow `flow2_nom_kg_s` among the apartments by design load: each
/// flat's design flow.
pub(super) fn set_nominal_flows(info: &mut [ApartmentInfo], flow2_nom_kg_s: f64) {
    let weight_sum: f64 = info.iter().map(|a| a.design_load_w).sum();
    for a in info {
        a.nominal_flow_kg_s = flow2_nom_kg_s * a.design_load_w / weight_sum;
    }
}

/// The hydraulic network of the scenario (hil-tests/MODEL.md, "Hydraulic network"): pipes
/// sized for the design flows, each flat's radiator circuit (fouled), household valve and
/// balancing valve (set at commissioning, or at one uniform preset), and the pump chosen for
/// the index flat's need.
pub(super) fn network(sc: &Scenario, info: &[ApartmentInfo]) -> Network {
    let h = &sc.hydraulics;
    let (nb, nfl, nu) = (
        sc.buildings.count,
        sc.buildings.floors,
        sc.buildings.units_per_floor,
    );
    let rough_m = h.roughness_mm / 1000.0;
    let q_d: Vec<f64> = info
        .iter()
        .map(|a| a.nominal_flow_kg_s / RHO_WATER_KG_M3 * 3600.0)
        .collect();
    let q_total: f64 = q_d.iter().sum();
    // Risers: the segment below floor f carries the floors from f up.
    let mut r_riser = vec![0.0; nb * nfl];
    let mut q_riser = vec![0.0; nb * nfl];
    let mut q_bld = vec![0.0; nb];
    for (b, q_b) in q_bld.iter_mut().enumerate() {
        let mut acc = 0.0;
        for f in (0..nfl).rev() {
            let j = b * nfl + f;
            acc += q_d[j * nu..(j + 1) * nu].iter().sum::<f64>();
            q_riser[j] = acc;
            let len = if f == 0 {
                h.riser_base_m
            } else {
                h.floor_height_m
            };
            let (d, l) = size_pipe(acc, h.riser_design_pa_m, rough_m);
            r_riser[j] = 2.0 * pipe_resistance(len, d, l);
        }
        *q_b = acc;
    }
    let mut r_mains = vec![0.0; nb];
    let mut q_mains = vec![0.0; nb];
    let mut acc = 0.0;
    for b in (0..nb).rev() {
        acc += q_bld[b];
        q_mains[b] = acc;
        let len = if b == 0 {
            h.mains_first_m
        } else {
            h.mains_spacing_m
        };
        let (d, l) = size_pipe(acc, h.mains_design_pa_m, rough_m);
        r_mains[b] = 2.0 * pipe_resistance(len, d, l);
    }
    // Flat branches.
    let dp_rad = h.radiator_circuit_dp_kpa / 100.0;
    let dp_bal = h.balancing_valve_min_dp_kpa / 100.0;
    let kv_rad: Vec<f64> = info
        .iter()
        .zip(&q_d)
        .map(|(a, q)| q / dp_rad.sqrt() * a.fouling_factor)
        .collect();
    let hv = &sc.household_valves;
    let kvs_hh: Vec<f64> = if hv.enabled {
        let dp_v = hv.authority / (1.0 - hv.authority) * (dp_rad + dp_bal);
        q_d.iter().map(|q| q / dp_v.sqrt()).collect()
    } else {
        Vec::new()
    };
    // What each flat's floor offers at design flows, with the pump's design head at the net.
    let mut path = vec![0.0; info.len()];
    let mut need: f64 = 0.0;
    let mut mains_loss = 0.0;
    for b in 0..nb {
        mains_loss += r_mains[b] * q_mains[b] * q_mains[b];
        let mut riser_loss = 0.0;
        for f in 0..nfl {
            let j = b * nfl + f;
            riser_loss += r_riser[j] * q_riser[j] * q_riser[j];
            for i in j * nu..(j + 1) * nu {
                path[i] = mains_loss + riser_loss;
                let q = q_d[i];
                let mut rest = (q / kv_rad[i]).powi(2);
                if let Some(k) = kvs_hh.get(i) {
                    rest += (q / k).powi(2);
                }
                need = need.max(path[i] + rest + dp_bal);
            }
        }
    }
    let dp_station = h.station_dp_kpa / 100.0;
    let r_station = if q_total > 0.0 {
        dp_station / (q_total * q_total)
    } else {
        0.0
    };
    let h_design = sc
        .substation
        .pump_head_kpa
        .map_or(need + dp_station, |k| k / 100.0);
    let pump = Pump::through_design_point(
        q_total,
        h_design,
        h.pump_shutoff_ratio,
        h.pump_efficiency,
        h.drive_efficiency,
        h.drive_fixed_loss_share,
    );
    let available_net = h_design - dp_station;
    let kv_bal: Vec<f64> = if sc.balanced_at_commissioning() {
        (0..info.len())
            .map(|i| {
                let q = q_d[i];
                let mut rest = (q / kv_rad[i]).powi(2);
                if let Some(k) = kvs_hh.get(i) {
                    rest += (q / k).powi(2);
                }
                q / (available_net - path[i] - rest).max(dp_bal).sqrt()
            })
            .collect()
    } else {
        let mean = q_total / info.len().max(1) as f64;
        vec![mean / dp_bal.sqrt(); info.len()]
    };
    let layout = Layout {
        buildings: nb,
        floors: nfl,
        units: nu,
        r_mains,
        r_riser,
        r_station,
        index_building: sc.index_building(),
    };
    Network::new(layout, pump, kv_rad, kv_bal, kvs_hh, hv.rangeability)
}

/// The room nodes (stream 2): top- and ground-floor end units first, then random others, in
/// apartment order; each apartment learns its node.
pub(super) fn room_nodes(sc: &Scenario, info: &mut [ApartmentInfo]) -> Vec<RoomNode> {
    let n = info.len();
    let per_bld = sc.apartments_per_building();
    let n_nodes = ((sc.room_nodes.share_pct / 100.0) * n as f64).round() as usize;
    let mut prio: Vec<usize> = info
        .iter()
        .filter(|a| {
            a.is_end_unit && matches!(a.position, PositionClass::Top | PositionClass::Ground)
        })
        .map(|a| a.index)
        .collect();
    let mut rest: Vec<usize> = info
        .iter()
        .map(|a| a.index)
        .filter(|i| !prio.contains(i))
        .collect();
    let mut node_sel_rng = seed_stream(sc.seed, 2);
    shuffle(&mut prio, &mut node_sel_rng);
    shuffle(&mut rest, &mut node_sel_rng);
    let mut chosen: Vec<usize> = prio.into_iter().chain(rest).take(n_nodes).collect();
    chosen.sort_unstable();
    let mut nodes = Vec::with_capacity(chosen.len());
    for (k, &ai) in chosen.iter().enumerate() {
        info[ai].room_node = Some(k);
        let unit_id = u8::try_from(ai % per_bld + 1).unwrap_or(u8::MAX);
        nodes.push(RoomNode {
            apartment: ai,
            unit_id,
            bias_k: uniform(
                &mut node_sel_rng,
                -sc.room_nodes.bias_max_k,
                sc.room_nodes.bias_max_k,
            ),
            next_report_s: uniform(&mut node_sel_rng, 0.0, sc.room_nodes.refresh_s),
            published_c: None,
            sample_counter: 0,
            last_change_s: 0.0,
            last_report_s: 0.0,
            calibration_offset_k: 0.0,
            report_interval_s: sc.room_nodes.refresh_s,
        });
    }

    nodes
}

/// The linear two-node system of every apartment: state (air, mass), inputs (outdoor, sum of
/// the neighbours' air, heat to the air, heat to the mass).
pub(super) fn apartment_matrices(info: &[ApartmentInfo]) -> Vec<(M2, [f64; 8])> {
    info.iter()
        .map(|a| {
            let nb = a.neighbours.len() as f64;
            let am = [
                -(a.h_ae_w_k + a.h_am_w_k + nb * a.h_neighbour_w_k) / a.c_air_j_k,
                a.h_am_w_k / a.c_air_j_k,
                a.h_am_w_k / a.c_mass_j_k,
                -(a.h_am_w_k + a.h_me_w_k) / a.c_mass_j_k,
            ];
            // inputs: T_e, sum of neighbour air temperatures, Q to air, Q to mass
            let bm = [
                a.h_ae_w_k / a.c_air_j_k,
                a.h_neighbour_w_k / a.c_air_j_k,
                1.0 / a.c_air_j_k,
                0.0,
                a.h_me_w_k / a.c_mass_j_k,
                0.0,
                0.0,
                1.0 / a.c_mass_j_k,
            ];
            (am, bm)
        })
        .collect()
}

/// The per-apartment data of the step loop.
pub(super) fn hot_data(sc: &Scenario, info: &[ApartmentInfo]) -> Vec<Hot> {
    let (b, s) = (&sc.buildings, &sc.substation);
    info.iter()
        .map(|a| {
            let mut nb = [0u32; 4];
            for (k, &j) in a.neighbours.iter().enumerate() {
                nb[k] = u32::try_from(j).unwrap_or(0);
            }
            let m_design =
                a.design_load_w / (CP_WATER_J_KGK * (s.t2_supply_design_c - s.t2_return_design_c));
            Hot {
                d: Discrete::default(),
                qn_w: a.radiator_nominal_w,
                c_rad: a.c_radiator_j_k,
                m_low: LOW_FLOW_SHARE * m_design,
                gain_int_half_w: 0.5 * b.internal_gain_w_m2 * a.floor_area_m2,
                solar_half_w_per_ghi: 0.5
                    * b.solar_gain_fraction
                    * a.floor_area_m2
                    * a.solar_multiplier,
                nb,
                n_nb: a.neighbours.len() as u32,
            }
        })
        .collect()
}

/// The plant's state at time 0.
#[derive(Debug, Clone, Copy)]
pub(super) struct StartState {
    /// Outdoor temperature, °C.
    pub(super) t_out_c: f64,
    /// Global horizontal irradiation, W/m².
    pub(super) ghi_w_m2: f64,
    /// Secondary supply (exchanger and buildings), °C.
    pub(super) t2_supply_c: f64,
    /// Secondary return, °C.
    pub(super) t2_return_c: f64,
    /// Radiator water of every apartment, °C.
    pub(super) t_radiator_c: f64,
}

impl StartState {
    /// The secondary side in the steady state of the starting outdoor temperature.
    pub(super) fn of(sc: &Scenario, design: &Design, weather: &Weather) -> Self {
        let s = &sc.substation;
        let (t_out0, ghi0) = weather.at_hour(sc.season.start_hour_of_year);
        let rel = ((s.design_room_c - t_out0) / design.dt_k).clamp(0.0, 1.2);
        let t_sup0 = s.design_room_c
            + design.mean_radiator_excess_k * rel.powf(1.0 / RADIATOR_EXPONENT)
            + 0.5 * (s.t2_supply_design_c - s.t2_return_design_c) * rel;
        let t_ret0 = t_sup0 - (s.t2_supply_design_c - s.t2_return_design_c) * rel;
        Self {
            t_out_c: t_out0,
            ghi_w_m2: ghi0,
            t2_supply_c: t_sup0,
            t2_return_c: t_ret0,
            t_radiator_c: 0.5 * (t_sup0 + t_ret0),
        }
    }
}

/// The trunk pipes (supply, return): delay at nominal flow, loss split by temperature
/// difference to the ambient, filled at the start state.
pub(super) fn trunk_pipes(
    sc: &Scenario,
    flow2_nom_kg_s: f64,
    bld_load_w: f64,
    start: &StartState,
) -> (PlugFlowPipe, PlugFlowPipe) {
    let s = &sc.substation;
    let m_s_nom = flow2_nom_kg_s;
    let pipe_mass = m_s_nom * s.trunk_delay_s;
    let loss_w = bld_load_w * s.pipe_loss_pct / 100.0;
    let ds = s.t2_supply_design_c - s.pipe_ambient_c;
    let dr = s.t2_return_design_c - s.pipe_ambient_c;
    let tau = |share_w: f64, excess: f64| -> f64 {
        let drop = share_w / (m_s_nom * CP_WATER_J_KGK);
        if drop <= 0.0 || excess <= drop {
            1e30
        } else {
            -s.trunk_delay_s / (1.0 - drop / excess).ln()
        }
    };
    let tau_s = tau(loss_w * ds / (ds + dr), ds);
    let tau_r = tau(loss_w * dr / (ds + dr), dr);

    (
        PlugFlowPipe::new(pipe_mass, tau_s, s.pipe_ambient_c, start.t2_supply_c, 0.0),
        PlugFlowPipe::new(pipe_mass, tau_r, s.pipe_ambient_c, start.t2_return_c, 0.0),
    )
}

/// The household valves, one per apartment where the scenario has them.
pub(super) fn household_valves(sc: &Scenario) -> Vec<Actuator> {
    if sc.household_valves.enabled {
        (0..sc.apartment_count())
            .map(|_| {
                Actuator::new(
                    sc.household_valves.initial_pct,
                    sc.household_valves.stroke_s,
                    0.5,
                )
            })
            .collect()
    } else {
        Vec::new()
    }
}

/// Fisher-Yates shuffle with the given stream.
fn shuffle(v: &mut [usize], rng: &mut ChaCha8Rng) {
    for i in (1..v.len()).rev() {
        let j = rng.random_range(0..=i);
        v.swap(i, j);
    }
}
