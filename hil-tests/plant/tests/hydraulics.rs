//! Golden tests of the hydraulic network (hil-tests/MODEL.md, "Hydraulic network"): small
//! networks solved by hand, the pump's affinity laws, mass balance, the coupling between flats
//! (closing near valves raises far flows), commissioning, and the pump's ramp and dry-run trip.

use std::path::Path;

use heatctl_plant::plant::hydraulics::{Layout, Network, Pump};
use heatctl_plant::{Plant, Scenario};

fn scenario(text: &str) -> Scenario {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    Scenario::from_toml_str(text, &base, None, "<test>").expect("test scenario is valid")
}

/// A pump with shut-off head 1 bar and k = 0.01 bar/(m³/h)² (1 bar at 0 flow, 0 bar at 10 m³/h).
fn pump() -> Pump {
    Pump {
        h0_bar: 1.0,
        k_bar_m3h2: 0.01,
        q_bep_m3h: 5.0,
        eta_bep: 0.7,
        eta_drive: 0.9,
        fixed_loss_share: 0.3,
        rated_kw: 1.0,
    }
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1e-12)
}

#[test]
fn two_branches_in_parallel_behind_a_series_pipe() {
    // One building, one floor, two flats. Riser base R = 0.01 bar/(m³/h)², no station loss, no
    // mains. Flats: kv 2 and kv 1 (radiator circuits), balancing valves wide open (kv 1e9).
    // By hand: parallel kv = 3; with the riser base in series R_sys = 0.01 + 1/9 = 0.121111;
    // the pump: 1 - 0.01 Q² = 0.121111 Q² -> Q = sqrt(1 / 0.131111) = 2.76172 m³/h;
    // dp across the flats = Q² / 9 = 0.84746 bar; flats: 2·sqrt(dp) = 1.84115, 1·sqrt = 0.92057.
    let layout = Layout {
        buildings: 1,
        floors: 1,
        units: 2,
        r_mains: vec![0.0],
        r_riser: vec![0.01],
        r_station: 0.0,
        index_building: 0,
    };
    let net = Network::new(
        layout,
        pump(),
        vec![2.0, 1.0],
        vec![1e9, 1e9],
        Vec::new(),
        30.0,
    );
    let q = net.total_flow_m3h(1.0);
    let want_q = (1.0f64 / (0.01 + 0.01 + 1.0 / 9.0)).sqrt();
    assert!(close(q, want_q, 1e-6), "{q} vs {want_q}");
    assert!(close(q, 2.76172, 1e-5), "{q}");
    let f = net.flat_flows_m3h_at_design_speed();
    assert!(close(f[0], 1.84115, 1e-5), "{}", f[0]);
    assert!(close(f[1], 0.92057, 1e-5), "{}", f[1]);
    assert!(close(f[0] / f[1], 2.0, 1e-9));
    assert!(close(net.dp_floor_kpa(0, 0, 1.0), 84.746, 1e-4));
    // The station's dp is the whole network's: riser base plus the flats.
    assert!(close(
        net.dp_station_kpa(1.0),
        100.0 * (0.01 + 1.0 / 9.0) * q * q,
        1e-9
    ));
    assert!(net.mass_balance_residual_m3h() < 1e-12);
}

#[test]
fn three_buildings_along_the_mains_series_and_parallel() {
    // Three buildings of one flat each along the mains; each mains segment R = 0.02, riser
    // bases 0, each flat kv 1 (balancing open), station R = 0.01.
    // By hand, from the far end: K3 = 1; node 2: 1 + 1/sqrt(0.02 + 1) = 1.990148;
    // node 1: 1 + 1/sqrt(0.02 + 1/1.990148²) = 2.915718; net: 1/sqrt(0.02 + 1/2.915718²)
    // = 2.695550. Pump: Q = sqrt(1 / (0.01 + 0.01 + 1/2.695550²)) = 2.518744 m³/h.
    // dp net = (Q/2.695550)² = 0.873119; node 1 = 0.873119 - 0.02·Q² = 0.746237 -> flat 1
    // sqrt = 0.863850; node 2 = 0.746237 - 0.02·(Q - 0.863850)² = 0.691464 -> flat 2
    // 0.831543; node 3 = 0.691464 - 0.02·(0.823351)² = 0.677906 -> flat 3 0.823350.
    let layout = Layout {
        buildings: 3,
        floors: 1,
        units: 1,
        r_mains: vec![0.02, 0.02, 0.02],
        r_riser: vec![0.0, 0.0, 0.0],
        r_station: 0.01,
        index_building: 2,
    };
    let net = Network::new(layout, pump(), vec![1.0; 3], vec![1e9; 3], Vec::new(), 30.0);
    let q = net.total_flow_m3h(1.0);
    assert!(close(q, 2.518744, 1e-5), "{q}");
    let f = net.flat_flows_m3h_at_design_speed();
    for (got, want) in f.iter().zip([0.863850, 0.831543, 0.823350]) {
        assert!(close(*got, want, 1e-5), "{got} vs {want}");
    }
    assert!(f[0] > f[1] && f[1] > f[2], "far flats get less");
    assert!(close(f.iter().sum::<f64>(), q, 1e-12));
    assert!(close(net.dp_building_kpa(2, 1.0), 67.7906, 1e-4));
    assert!(net.mass_balance_residual_m3h() < 1e-12);
}

#[test]
fn three_elements_in_series_in_one_branch() {
    // One flat with radiator kv 1, balancing kv 2 and a household valve of kvs 2 at 100 %:
    // 1/kv² = 1 + 1/4 + 1/4 = 1.5 -> kv 0.816497; no pipes, no station:
    // Q = sqrt(1 / (0.01 + 1.5)) = 0.813788; at 50 % (R = 30) kv_hh = 2/sqrt(30):
    // 1/kv² = 1 + 0.25 + 7.5 = 8.75 -> Q = sqrt(1 / 8.76) = 0.337869.
    let layout = Layout {
        buildings: 1,
        floors: 1,
        units: 1,
        r_mains: vec![0.0],
        r_riser: vec![0.0],
        r_station: 0.0,
        index_building: 0,
    };
    let mut net = Network::new(layout, pump(), vec![1.0], vec![2.0], vec![2.0], 30.0);
    assert!(close(net.total_flow_m3h(1.0), 0.813788, 1e-5));
    net.set_household_positions([50.0].into_iter());
    assert!(close(net.total_flow_m3h(1.0), 0.337869, 1e-5));
    net.set_household_positions([0.0].into_iter());
    assert_eq!(net.total_flow_m3h(1.0), 0.0);
    // Dead-headed: the station sees the pump's shut-off head.
    assert!(close(net.dp_station_kpa(1.0), 100.0, 1e-12));
}

#[test]
fn affinity_laws() {
    let p = Pump::through_design_point(80.0, 1.2, 1.25, 0.7, 0.88, 0.35);
    // Through the design point, shut-off as asked.
    assert!(close(p.head_bar(80.0, 1.0), 1.2, 1e-12));
    assert!(close(p.head_bar(0.0, 1.0), 1.5, 1e-12));
    for n in [0.3, 0.5, 0.8] {
        // On a quadratic system the flow scales with n, the head with n², the shaft power with
        // n³, and the efficiency is unchanged.
        let r = 1.2 / (80.0 * 80.0);
        let q1 = p.operating_flow_m3h(r, 1.0);
        let qn = p.operating_flow_m3h(r, n);
        assert!(close(qn, n * q1, 1e-12));
        assert!(close(p.head_bar(qn, n), n * n * p.head_bar(q1, 1.0), 1e-12));
        assert!(close(
            p.shaft_kw(qn, n),
            n.powi(3) * p.shaft_kw(q1, 1.0),
            1e-12
        ));
        assert!(close(p.efficiency(qn, n), p.efficiency(q1, 1.0), 1e-12));
        // The drive loses more, relatively, at low speed (its speed-bound losses stay).
        if n <= 0.5 {
            let eta_n = p.shaft_kw(qn, n) / p.electric_kw(qn, n);
            assert!(
                eta_n < p.shaft_kw(q1, 1.0) / p.electric_kw(q1, 1.0),
                "{eta_n}"
            );
        }
    }
    // At the design point: hydraulic power Q·H / η_bep, and the drive at 1/1.15 of its rating.
    let hyd_kw = 80.0 / 3600.0 * 120.0;
    assert!(close(p.shaft_kw(80.0, 1.0), hyd_kw / 0.7, 1e-12));
    let load = 1.0 / 1.15;
    let el = hyd_kw / 0.7 + p.rated_kw * (1.0 / 0.88 - 1.0) * (0.35 + 0.65 * load * load);
    assert!(close(p.electric_kw(80.0, 1.0), el, 1e-12));
    // Stopped: nothing.
    assert_eq!(p.electric_kw(0.0, 0.0), 0.0);
}

fn default_like(extra: &str) -> Scenario {
    scenario(&format!(
        r#"
        seed = 11
        [buildings]
        count = 6
        floors = 10
        units_per_floor = 4
        [weather]
        constant_outdoor_c = -10.0
        {extra}
        "#
    ))
}

#[test]
fn mass_is_conserved_at_every_node_of_a_plant() {
    let mut plant = Plant::new(&default_like("[household_valves]\nenabled = true\n")).unwrap();
    // Valves at assorted positions.
    for i in 0..plant.apartments().len() {
        plant
            .set_household_valve_pct(i, (i * 37 % 101) as f64)
            .unwrap();
    }
    for _ in 0..30 {
        plant.step(60.0);
    }
    let net = plant.hydraulics();
    let q = net.total_flow_m3h(1.0);
    assert!(q > 1.0);
    assert!(
        net.mass_balance_residual_m3h() < 1e-9 * q,
        "{}",
        net.mass_balance_residual_m3h()
    );
    let t = plant.truth();
    let sum: f64 = plant.apartment_flow_kg_s().iter().sum();
    assert!(close(sum, t.flow2_kg_s, 1e-9), "{sum} vs {}", t.flow2_kg_s);
}

#[test]
fn closing_near_valves_raises_far_flows() {
    let mut plant = Plant::new(&default_like("[household_valves]\nenabled = true\n")).unwrap();
    let per = plant.scenario().apartments_per_building();
    let n = plant.apartments().len();
    let far: Vec<usize> = (n - per..n).collect();
    let before: Vec<f64> = far
        .iter()
        .map(|&i| plant.apartment_flow_kg_s()[i])
        .collect();
    let dp_before = plant.truth().dp2_index_kpa;
    // Close every household valve of the two nearest buildings.
    for i in 0..2 * per {
        plant.set_household_valve_pct(i, 0.0).unwrap();
    }
    for _ in 0..5 {
        plant.step(60.0);
    }
    for (k, &i) in far.iter().enumerate() {
        let after = plant.apartment_flow_kg_s()[i];
        assert!(
            after > before[k] * 1.005,
            "flat {i}: {} -> {after}",
            before[k]
        );
    }
    for i in 0..2 * per {
        assert_eq!(plant.apartment_flow_kg_s()[i], 0.0);
    }
    assert!(plant.truth().dp2_index_kpa > dp_before);
}

#[test]
fn top_floors_and_far_buildings_are_short_when_unbalanced() {
    let plant = Plant::new(&default_like("[hydraulics]\nfouling_min = 1.0\n")).unwrap();
    let design = plant.flat_design_flow_m3h();
    let q = plant.hydraulics().flat_flows_m3h_at_design_speed();
    let ratio = |i: usize| q[i] / design[i];
    let per = plant.scenario().apartments_per_building();
    let n = plant.apartments().len();
    // Same unit (a middle one), ground vs top floor of the first building; near vs far.
    let (ground, top) = (1, per - 4 + 1);
    assert!(
        ratio(ground) > ratio(top),
        "{} vs {}",
        ratio(ground),
        ratio(top)
    );
    let far_ground = n - per + 1;
    assert!(ratio(ground) > ratio(far_ground));
    println!(
        "unbalanced, flow / design: near ground {:.2}, near top {:.2}, far ground {:.2}, far top {:.2}",
        ratio(ground),
        ratio(top),
        ratio(far_ground),
        ratio(n - 3)
    );
}

#[test]
fn balanced_at_commissioning_gives_design_flows() {
    for extra in [
        "[hydraulics]\nbalanced_at_commissioning = true\n",
        "[hydraulics]\nbalanced_at_commissioning = true\n[household_valves]\nenabled = true\n",
        "[hydraulics]\nbalanced_at_commissioning = true\nfouling_min = 0.5\n",
    ] {
        let plant = Plant::new(&default_like(extra)).unwrap();
        let design = plant.flat_design_flow_m3h();
        let q = plant.hydraulics().flat_flows_m3h_at_design_speed();
        for (i, (q, d)) in q.iter().zip(&design).enumerate() {
            assert!(close(*q, *d, 1e-6), "{extra}: flat {i}: {q} vs {d}");
        }
        // The index flat's balancing valve is the least throttled: at its preset drop.
        let kv = plant.balancing_kv();
        let max_kv_over_q = kv
            .iter()
            .zip(&design)
            .map(|(k, d)| k / d)
            .fold(0.0, f64::max);
        let preset = 1.0 / (3.0f64 / 100.0).sqrt();
        assert!(
            close(max_kv_over_q, preset, 1e-6),
            "{max_kv_over_q} vs {preset}"
        );
    }
    // Unbalanced, the same plant's flows spread.
    let plant = Plant::new(&default_like("")).unwrap();
    let design = plant.flat_design_flow_m3h();
    let q = plant.hydraulics().flat_flows_m3h_at_design_speed();
    let spread = q
        .iter()
        .zip(&design)
        .map(|(q, d)| q / d)
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), r| {
            (lo.min(r), hi.max(r))
        });
    println!(
        "unbalanced: flow / design from {:.2} to {:.2}",
        spread.0, spread.1
    );
    assert!(spread.1 - spread.0 > 0.2, "{spread:?}");
}

#[test]
fn setting_a_balancing_valve_moves_its_flat_and_the_others() {
    let mut plant = Plant::new(&default_like("")).unwrap();
    let i = 5;
    let before = plant.apartment_flow_kg_s().to_vec();
    let kv = plant.balancing_kv()[i];
    plant.set_balancing_kv(i, kv / 4.0);
    let after = plant.apartment_flow_kg_s();
    assert!(after[i] < 0.7 * before[i]);
    assert!(after[i + 1] > before[i + 1]);
    assert!((plant.balancing_kv()[i] - kv / 4.0).abs() < 1e-12);
    assert_eq!(plant.flat_riser(i), 0);
    let last = plant.apartments().len() - 1;
    assert_eq!(
        plant.riser_building(plant.flat_riser(last)),
        plant.scenario().buildings.count - 1
    );
}

#[test]
fn pump_ramps_to_its_command_and_flow_follows() {
    let mut plant = Plant::new(&default_like("")).unwrap();
    let q100 = plant.truth().flow2_m3h;
    let p100 = plant.truth().pump2_power_kw;
    plant.set_pump2_speed_cmd_pct(50.0);
    plant.step(10.0);
    // 2 %/s for 10 s.
    assert!((plant.truth().pump2_speed_pct - 80.0).abs() < 1e-9);
    for _ in 0..3 {
        plant.step(10.0);
    }
    let t = plant.truth();
    assert!((t.pump2_speed_pct - 50.0).abs() < 1e-9);
    assert!(close(t.flow2_m3h, 0.5 * q100, 1e-9));
    assert!(
        t.pump2_power_kw < 0.25 * p100,
        "{} vs {p100}",
        t.pump2_power_kw
    );
    assert!(t.pump2_energy_kwh_el > 0.0);
    assert_eq!(plant.pump2_status(), 1);
}

#[test]
fn dry_run_trips_and_a_stop_resets_it() {
    let mut plant = Plant::new(&default_like("[household_valves]\nenabled = true\n")).unwrap();
    for i in 0..plant.apartments().len() {
        plant.set_household_valve_pct(i, 0.0).unwrap();
    }
    // 180 s stroke: shut after 3 min; then 60 s of no flow trip the pump.
    for _ in 0..4 {
        plant.step(60.0);
    }
    assert_eq!(plant.truth().flow2_m3h, 0.0);
    assert_eq!(plant.pump2_status() & 2, 0, "not yet");
    plant.step(60.0);
    plant.step(10.0);
    let t = plant.truth();
    assert!(t.pump2_dry_run_trip);
    assert_eq!(t.pump2_speed_pct, 0.0);
    assert_eq!(plant.pump2_status(), 2);
    // Commanding a speed again does not restart it; a stop resets the trip.
    plant.set_pump2_speed_cmd_pct(80.0);
    plant.step(10.0);
    assert_eq!(plant.truth().pump2_speed_pct, 0.0);
    plant.set_pump2_speed_cmd_pct(0.0);
    plant.step(10.0);
    assert!(!plant.truth().pump2_dry_run_trip);
    plant.set_pump2_speed_cmd_pct(80.0);
    plant.step(10.0);
    assert!(plant.truth().pump2_speed_pct > 0.0);
}

#[test]
fn the_default_network_is_plausible() {
    // The shipped default scenario: 10 buildings of 60 flats.
    let sc = Scenario::shipped("default").unwrap();
    let plant = Plant::new(&sc).unwrap();
    let t = plant.truth();
    let net = plant.hydraulics();
    let design = plant.flat_design_flow_m3h();
    let q = net.flat_flows_m3h_at_design_speed();
    let ratios: Vec<f64> = q.iter().zip(&design).map(|(q, d)| q / d).collect();
    let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ratios.iter().copied().fold(0.0, f64::max);
    let head = net.pump_head_kpa(1.0);
    println!(
        "default: flow2 {:.1} m³/h (design {:.1}), head {head:.1} kPa, dp2 station {:.1} kPa, \
         index {:.1} kPa, pump {:.2} kW_el; flat flow / design {lo:.2} .. {hi:.2}",
        t.flow2_m3h,
        design.iter().sum::<f64>(),
        t.dp2_station_kpa,
        t.dp2_index_kpa,
        t.pump2_power_kw
    );
    // A circulation pump of a 2 MW substation: some tens of m³/h at about 1 bar, a few kW.
    assert!((50.0..250.0).contains(&head), "{head}");
    assert!(
        (1.0..10.0).contains(&t.pump2_power_kw),
        "{}",
        t.pump2_power_kw
    );
    assert!(t.dp2_station_kpa > t.dp2_index_kpa);
    // Unbalanced: some flats well above their design flow, some well below.
    assert!(hi > 1.1 && lo < 0.85, "{lo} .. {hi}");
}
