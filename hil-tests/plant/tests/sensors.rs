//! Room-node statistics, sensor faults and stuck valves as the in-process API shows them, and
//! garbage tolerance of the Modbus request handling.

use std::path::Path;

use heatctl_plant::faces::{Device, handle_pdu, rtu_request_len};
use heatctl_plant::{Plant, Scenario};
use proptest::prelude::*;

fn scenario(text: &str) -> Scenario {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    Scenario::from_toml_str(text, &base, None, "<test>").expect("test scenario is valid")
}

#[test]
fn room_nodes_have_bias_noise_refresh_and_losses() {
    let sc = scenario(
        r#"
        seed = 5
        [buildings]
        count = 4
        [weather]
        constant_outdoor_c = -5.0
        [room_nodes]
        share_pct = 100.0
        "#,
    );
    let mut plant = Plant::new(&sc).expect("plant");
    let n = plant.room_node_count();
    assert_eq!(n, 240);
    let mut errors: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut reports = 0u64;
    let mut last = vec![0u16; n];
    let days = 2.0;
    let steps = (days * 86400.0 / 60.0) as usize;
    for _ in 0..steps {
        plant.step(60.0);
        for k in 0..n {
            let r = plant.room_node(k).expect("node");
            if r.sample_counter != last[k] {
                reports += u64::from(r.sample_counter.wrapping_sub(last[k]));
                last[k] = r.sample_counter;
                let truth = plant.apartment_air_c()[r.apartment];
                errors[k].push(r.temperature_c.expect("no fault") - truth);
            }
        }
    }
    // 10-minute refresh with ~1 % lost reports.
    let expected = n as f64 * days * 86400.0 / 600.0;
    let ratio = reports as f64 / expected;
    println!(
        "reports {reports} of {expected:.0} possible ({:.2} % lost)",
        (1.0 - ratio) * 100.0
    );
    assert!((0.975..0.999).contains(&ratio), "delivered share {ratio}");
    // Bias within ±0.3 K, spread over the range; noise ~0.1 K around it.
    let mut biases = Vec::new();
    let mut resid = Vec::new();
    for e in &errors {
        let m = e.iter().sum::<f64>() / e.len() as f64;
        biases.push(m);
        resid.extend(e.iter().map(|x| x - m));
    }
    let max_bias = biases.iter().fold(0.0f64, |a, b| a.max(b.abs()));
    let sd = (resid.iter().map(|x| x * x).sum::<f64>() / resid.len() as f64).sqrt();
    println!("max |bias| {max_bias:.3} K, noise sd {sd:.3} K");
    assert!(max_bias < 0.32 && max_bias > 0.2, "bias range {max_bias}");
    assert!((0.085..0.115).contains(&sd), "noise sd {sd}");
}

#[test]
fn default_node_share_prefers_top_and_ground_end_units() {
    let sc = scenario("[buildings]\ncount = 10\n[weather]\nconstant_outdoor_c = 0.0\n");
    let plant = Plant::new(&sc).expect("plant");
    let sensed: Vec<_> = plant
        .apartments()
        .iter()
        .filter(|a| a.room_node.is_some())
        .collect();
    assert_eq!(sensed.len(), 120);
    let corner = sensed
        .iter()
        .filter(|a| a.is_end_unit && (a.floor == 0 || a.floor == 14))
        .count();
    assert_eq!(
        corner, 40,
        "all 4 top/ground end units of each of 10 buildings"
    );
    // The rest are spread over the buildings.
    for b in 0..10 {
        assert!(
            sensed.iter().filter(|a| a.building == b).count() > 4,
            "building {b}"
        );
    }
}

#[test]
fn sensor_faults_follow_the_timeline() {
    let sc = scenario(
        r#"
        [buildings]
        count = 1
        floors = 2
        units_per_floor = 2
        [room_nodes]
        share_pct = 100.0
        [[faults]]
        kind = "sensor_sentinel"
        target = "t_out"
        start_h = 1.0
        duration_h = 1.0
        [[faults]]
        kind = "sensor_jump"
        target = "t2_supply"
        start_h = 1.0
        duration_h = 1.0
        jump = 8.0
        [[faults]]
        kind = "sensor_drift"
        target = "t1_return"
        start_h = 1.0
        duration_h = 2.0
        drift_per_h = 3.0
        [[faults]]
        kind = "sensor_frozen"
        target = "room_node:2"
        start_h = 1.0
        duration_h = 5.0
        [[faults]]
        kind = "valve_stuck"
        target = "valve1"
        start_h = 1.0
        duration_h = 1.0
        "#,
    );
    let mut plant = Plant::new(&sc).expect("plant");
    let step = |p: &mut Plant, s: f64| {
        let n = (s / 60.0) as usize;
        for _ in 0..n {
            p.step(60.0);
        }
    };
    step(&mut plant, 3000.0);
    let s = plant.sensors();
    assert!(s.t_out_c.is_some(), "before the fault");
    step(&mut plant, 2400.0); // 1.5 h
    let s = plant.sensors();
    let t = plant.truth();
    assert!(s.t_out_c.is_none(), "sentinel");
    assert!(
        (s.t2_supply_c.expect("value") - t.t2_supply_c - 8.0).abs() < 1e-9,
        "jump"
    );
    let drift = s.t1_return_c.expect("value") - t.t1_return_c;
    assert!(
        (drift - 1.5).abs() < 0.03,
        "drift after 0.5 h at 3 K/h: {drift}"
    );
    let node = plant.apartments()[2].room_node.expect("node");
    let frozen = plant.room_node(node).expect("node").temperature_c;
    // Stuck valve: the command moves, the position does not.
    let before = t.valve1_pos_pct;
    plant.set_valve1_cmd_pct(if before > 50.0 { 0.0 } else { 100.0 });
    step(&mut plant, 600.0);
    assert!(
        (plant.truth().valve1_pos_pct - before).abs() < 1e-9,
        "stuck"
    );
    step(&mut plant, 3.0 * 3600.0); // 4.6 h: valve free, node still frozen, others over
    assert!(
        (plant.truth().valve1_pos_pct - before).abs() > 10.0,
        "moves again"
    );
    let s = plant.sensors();
    assert!(s.t_out_c.is_some());
    assert!((s.t2_supply_c.expect("value") - plant.truth().t2_supply_c).abs() < 1e-9);
    assert_eq!(
        plant.room_node(node).expect("node").temperature_c,
        frozen,
        "frozen node"
    );
    step(&mut plant, 2.0 * 3600.0);
    assert_ne!(
        plant.room_node(node).expect("node").temperature_c,
        frozen,
        "thawed"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]
    #[test]
    fn garbage_requests_never_panic(pdu in proptest::collection::vec(any::<u8>(), 0..300), dev in 0u8..4) {
        let sc = scenario(
            "[buildings]\ncount = 1\nfloors = 2\nunits_per_floor = 2\n[household_valves]\nenabled = true\n\
             [room_nodes]\nshare_pct = 100.0\n[weather]\nconstant_outdoor_c = 0.0\n",
        );
        let mut plant = Plant::new(&sc).expect("plant");
        let device = match dev {
            0 => Device::SubstationIo,
            1 => Device::HeatMeter,
            2 => Device::RoomNode { node: 1 },
            _ => Device::HouseholdValve { apartment: 3 },
        };
        let reply = handle_pdu(&mut plant, device, &pdu);
        prop_assert!(!reply.is_empty());
        let _ = rtu_request_len(&pdu);
    }
}
