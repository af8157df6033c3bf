//! Physics tests of the plant model (hil-tests/MODEL.md): energy balances, golden steady states,
//! free cooling, transport delay, determinism.

use std::path::Path;

use heatctl_plant::physics::PlugFlowPipe;
use heatctl_plant::{Plant, Scenario};

fn scenario(text: &str) -> Scenario {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    Scenario::from_toml_str(text, &base, None, "<test>").expect("test scenario is valid")
}

fn small() -> Scenario {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/small.toml");
    Scenario::load(&p, None).expect("small.toml loads")
}

/// A simple supply-temperature controller so that the valve moves like in operation.
fn drive(plant: &mut Plant, dt: f64, steps: usize) {
    for _ in 0..steps {
        let t = plant.truth();
        let target = 20.0 + 1.6 * (18.0 - t.t_out_c).max(0.0);
        plant.set_valve1_cmd_pct(t.valve1_cmd_pct + 0.3 * (target - t.t2_supply_c));
        plant.step(dt);
    }
}

#[test]
fn exchanger_energy_balance_closes() {
    let mut plant = Plant::new(&small()).expect("plant");
    drive(&mut plant, 60.0, 3 * 1440);
    let t = plant.truth();
    let err = (t.energy1_kwh - t.energy2_kwh).abs() / t.energy1_kwh;
    println!(
        "primary {:.1} kWh, secondary {:.1} kWh, error {:.4} %",
        t.energy1_kwh,
        t.energy2_kwh,
        err * 100.0
    );
    assert!(t.energy1_kwh > 100.0, "the plant delivered heat");
    assert!(
        err < 0.005,
        "exchanger energy balance off by {:.3} %",
        err * 100.0
    );
}

#[test]
fn apartment_energy_balance_closes() {
    let mut plant = Plant::new(&small()).expect("plant");
    drive(&mut plant, 60.0, 60);
    plant.enable_energy_audit();
    drive(&mut plant, 60.0, 2 * 1440);
    let audit = plant.energy_audit().expect("audit on").to_vec();
    let mut worst: f64 = 0.0;
    for (i, e) in audit.iter().enumerate() {
        let stored = plant.apartment_stored_j(i) - e.stored_start_j;
        let net = e.heating_j + e.gains_j - e.loss_outside_j - e.loss_neighbours_j;
        let scale = e.heating_j + e.gains_j + e.loss_outside_j.abs();
        let rel = (stored - net).abs() / scale;
        worst = worst.max(rel);
        assert!(e.heating_j > 0.0, "apartment {i} was heated");
        assert!(
            rel < 0.005,
            "apartment {i}: stored {stored:.0} J vs net {net:.0} J ({:.3} %)",
            rel * 100.0
        );
    }
    println!(
        "worst apartment energy balance error {:.2e} %",
        worst * 100.0
    );
    // Radiator heat delivered matches the water side within the radiators' storage.
    let t = plant.truth();
    assert!(t.delivered_energy_kwh > 0.0);
}

/// The heat the primary meter counts over a span equals the heat delivered into the flats plus
/// the trunks' losses plus the change of the heat held in between (exchanger, trunks,
/// radiators), even with the circulation pump jumping between 30 % and 100 % every 60 s step
/// (the ramp takes 35 s of it), the primary valve and the household valves swinging with it.
/// Fixed 60 s lags on the exchanger's outlets broke this (2.0 % off here): right after the
/// pump's speed jumped, 3.3 times the flow left at the temperature the slow flow had reached,
/// heat that never passed the plates; the valve's swings did the like on the primary side.
#[test]
fn meter_heat_balances_the_flats_and_pipes_with_the_pump_swinging_each_step() {
    let sc = scenario(
        r#"
name = "swing"
seed = 7
[buildings]
count = 2
floors = 4
units_per_floor = 3
[weather]
constant_outdoor_c = -5.0
[season]
length_days = 1.0
[time]
step_s = 60.0
fast_substep_s = 10.0
[household_valves]
enabled = true
"#,
    );
    let mut plant = Plant::new(&sc).expect("plant");
    drive(&mut plant, 60.0, 120);
    let t0 = plant.truth();
    let s0 = plant.stored_heat();
    let flats = plant.apartments().len();
    for k in 0..720 {
        let high = k % 2 == 1;
        plant.set_pump2_speed_cmd_pct(if high { 100.0 } else { 30.0 });
        plant.set_valve1_cmd_pct(if high { 70.0 } else { 30.0 });
        for i in 0..flats {
            let pct = if (i + k) % 2 == 0 { 100.0 } else { 20.0 };
            plant.set_household_valve_pct(i, pct).expect("valves");
        }
        plant.step(60.0);
    }
    let t1 = plant.truth();
    let s1 = plant.stored_heat();
    let meter_kwh = t1.energy1_kwh - t0.energy1_kwh;
    let delivered_kwh = t1.delivered_energy_kwh - t0.delivered_energy_kwh;
    let loss_kwh = t1.pipe_loss_kwh - t0.pipe_loss_kwh;
    let stored_kwh = (s1.total_j() - s0.total_j()) / 3.6e6;
    let out_kwh = delivered_kwh + loss_kwh + stored_kwh;
    let rel = (meter_kwh - out_kwh) / out_kwh;
    println!(
        "meter {meter_kwh:.3} kWh; delivered {delivered_kwh:.3} + pipe loss {loss_kwh:.3} + \
         stored {stored_kwh:+.3} = {out_kwh:.3} kWh; meter off by {:.2e} %",
        rel * 100.0
    );
    assert!(delivered_kwh > 100.0, "the flats were heated");
    assert!(
        rel.abs() < 1e-6,
        "meter {meter_kwh:.3} kWh against {out_kwh:.3} kWh that left the exchanger ({:.4} %)",
        rel * 100.0
    );
}

/// Golden steady-state vectors of hil-tests/MODEL.md: t_out, t2_supply, t2_return, t1_supply, primary flow/nominal, t1_return.
const GOLDEN: [[f64; 6]; 8] = [
    [-17.0, 75.0, 50.0, 120.0, 1.000, 60.0],
    [-12.0, 68.2, 46.8, 111.0, 0.914, 54.8],
    [-8.0, 62.7, 44.1, 103.8, 0.836, 50.5],
    [-4.0, 57.0, 41.3, 96.6, 0.747, 46.1],
    [0.0, 51.1, 38.3, 89.4, 0.647, 41.7],
    [4.0, 45.0, 35.0, 82.2, 0.533, 37.2],
    [8.0, 38.5, 31.4, 75.0, 0.404, 32.5],
    [12.0, 31.6, 27.3, 75.0, 0.217, 27.6],
];

#[test]
fn golden_steady_states() {
    // The table's assumptions: balanced, radiators exactly sized, no gains, rooms at 18 °C.
    for row in GOLDEN {
        let [t_out, t2_supply, t2_return, t1_supply, flow, t1_return] = row;
        let sc = scenario(&format!(
            r#"
            seed = 3
            [buildings]
            count = 1
            floors = 5
            units_per_floor = 4
            balanced = true
            radiator_oversize_min = 1.0
            radiator_oversize_max = 1.0
            internal_gain_w_m2 = 0.0
            solar_gain_fraction = 0.0
            [weather]
            constant_outdoor_c = {t_out}
            [start]
            room_c = 18.0
            "#
        ));
        let mut plant = Plant::new(&sc).expect("plant");
        let u = plant.valve1_opening_for_nominal_fraction_pct(flow);
        plant.force_valve1_pct(u);
        for _ in 0..(12 * 1440) {
            plant.step(60.0);
        }
        let t = plant.truth();
        let rooms = plant.apartment_air_c();
        let mean_room = rooms.iter().sum::<f64>() / rooms.len() as f64;
        println!(
            "t_out {t_out:5.1}: t2_supply {:.2} ({t2_supply}) t2_return {:.2} ({t2_return}) t1_supply {:.2} ({t1_supply}) t1_return {:.2} ({t1_return}) flow {:.3} room {:.2}",
            t.t2_supply_c,
            t.t2_return_c,
            t.t1_supply_c,
            t.t1_return_c,
            t.flow1_kg_s / plant.flow1_nominal_kg_s(),
            mean_room
        );
        assert!(
            (t.t1_supply_c - t1_supply).abs() < 1.0,
            "t1_supply at {t_out}: {}",
            t.t1_supply_c
        );
        assert!(
            (t.t2_supply_c - t2_supply).abs() < 1.0,
            "t2_supply at {t_out}: {} vs {t2_supply}",
            t.t2_supply_c
        );
        assert!(
            (t.t2_return_c - t2_return).abs() < 1.0,
            "t2_return at {t_out}: {} vs {t2_return}",
            t.t2_return_c
        );
        assert!(
            (t.t1_return_c - t1_return).abs() < 1.0,
            "t1_return at {t_out}: {} vs {t1_return}",
            t.t1_return_c
        );
        assert!(
            (mean_room - 18.0).abs() < 1.0,
            "rooms at {t_out}: {mean_room}"
        );
    }
}

#[test]
fn apartment_without_heating_cools_from_20_to_16_in_3_to_6_hours() {
    // An intermediate apartment among neighbours that are all unheated too, at -10 °C, internal
    // gains on, starting from the heated steady state at 20 °C (mass node in equilibrium).
    let text = |mass_c: f64| {
        format!(
            r#"
            [buildings]
            count = 1
            floors = 3
            units_per_floor = 3
            position_factors = false
            solar_gain_fraction = 0.0
            [weather]
            constant_outdoor_c = -10.0
            [start]
            room_c = 20.0
            mass_c = {mass_c}
            valve1_pct = 0.0
            "#
        )
    };
    let probe = Plant::new(&scenario(&text(20.0))).expect("plant");
    let a = &probe.apartments()[4];
    let p_int_half = 0.5 * 3.8 * a.floor_area_m2;
    let mass_ss = (a.h_am_w_k * 20.0 + a.h_me_w_k * -10.0 + p_int_half) / (a.h_am_w_k + a.h_me_w_k);
    let mut plant = Plant::new(&scenario(&text(mass_ss))).expect("plant");
    plant.set_ideal_heater_floor_c(Some(-100.0)); // radiators out of the loop: heating off
    let middle = 4; // floor 1, unit 1
    let mut hours = None;
    for k in 1..=(12 * 60) {
        plant.step(60.0);
        if plant.apartment_air_c()[middle] <= 16.0 {
            hours = Some(k as f64 / 60.0);
            break;
        }
    }
    let h = hours.expect("cooled to 16 °C within 12 h");
    println!("20 -> 16 °C at -10 °C without heating (mass from {mass_ss:.2} °C): {h:.2} h");
    assert!((3.0..=6.0).contains(&h), "{h} h");
}

#[test]
fn transport_delay_doubles_at_half_flow() {
    let delay = |m_kg_s: f64| -> f64 {
        let mut pipe = PlugFlowPipe::new(12_000.0, 1e30, 10.0, 40.0, 0.0);
        let h = 5.0;
        let mut t = 0.0;
        loop {
            t += h;
            let out = pipe.push(m_kg_s * h, 70.0, t);
            if out > 55.0 {
                return t;
            }
            assert!(t < 1e6, "no arrival");
        }
    };
    let full = delay(20.0);
    let half = delay(10.0);
    println!("delay at full flow {full} s, at half flow {half} s");
    assert!((full - 600.0).abs() <= 5.0, "{full}");
    assert!((half / full - 2.0).abs() < 0.02, "{half} / {full}");

    // And in the plant: the secondary supply front reaches the buildings twice as late.
    let arrival = |pump_pct: f64| -> f64 {
        let sc = scenario("[weather]\nconstant_outdoor_c = -5.0\n[buildings]\ncount = 1\n");
        let mut plant = Plant::new(&sc).expect("plant");
        plant.set_pump2_speed_pct(pump_pct);
        plant.force_valve1_pct(0.0);
        for _ in 0..(3 * 360) {
            plant.step(10.0);
        }
        let before = plant.truth().t2_supply_buildings_c;
        plant.force_valve1_pct(100.0);
        let t0 = plant.time_s();
        loop {
            plant.step(10.0);
            if plant.truth().t2_supply_buildings_c > before + 15.0 {
                return plant.time_s() - t0;
            }
            assert!(plant.time_s() - t0 < 20_000.0, "no arrival");
        }
    };
    let a_full = arrival(100.0);
    let a_half = arrival(50.0);
    println!("plant: front arrives after {a_full} s at full pump speed, {a_half} s at half");
    assert!((a_half / a_full - 2.0).abs() < 0.15, "{a_half} / {a_full}");
}

#[test]
fn identical_seeds_give_identical_runs() {
    let run = |seed_shift: u64| -> (Vec<u64>, Vec<u64>) {
        let mut sc = small();
        sc.seed += seed_shift;
        let mut plant = Plant::new(&sc).expect("plant");
        drive(&mut plant, 60.0, 1440);
        let air = plant
            .apartment_air_c()
            .iter()
            .map(|x| x.to_bits())
            .collect();
        let nodes = plant
            .sensors()
            .room_nodes
            .iter()
            .map(|r| r.temperature_c.unwrap_or(f64::NAN).to_bits() ^ (r.apartment as u64) << 48)
            .collect();
        (air, nodes)
    };
    let a = run(0);
    let b = run(0);
    assert_eq!(a, b, "same seed, same run");
    let c = run(1);
    assert_ne!(a.0, c.0, "another seed draws other apartments");
}

#[test]
fn ideal_supply_control_meets_its_setpoint() {
    let sc = scenario("[weather]\nconstant_outdoor_c = -5.0\n[buildings]\ncount = 1\n");
    let mut plant = Plant::new(&sc).expect("plant");
    plant.set_ideal_supply_c(Some(55.0));
    for _ in 0..(6 * 60) {
        plant.step(60.0);
    }
    let t = plant.truth();
    assert!(
        (t.t2_supply_c - 55.0).abs() < 0.05,
        "t2_supply {}",
        t.t2_supply_c
    );
    assert!(
        t.valve1_pos_pct > 1.0 && t.valve1_pos_pct < 99.0,
        "valve {}",
        t.valve1_pos_pct
    );
    // Above what the primary can give, the valve saturates.
    plant.set_ideal_supply_c(Some(200.0));
    for _ in 0..60 {
        plant.step(60.0);
    }
    assert!((plant.truth().valve1_pos_pct - 100.0).abs() < 1e-6);
}
