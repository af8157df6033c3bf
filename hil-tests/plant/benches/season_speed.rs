//! Raw simulation speed: the default scenario (600 apartments) stepped at 60 s, single-threaded.
//! Prints simulated seconds per wall second and the projected wall time of a 183-day season.
//!
//! `cargo bench -p heatctl-plant --bench season_speed [-- DAYS] [ideal] [hydraulics]`
//! (`ideal`: drive the plant with `set_ideal_supply_c` instead of a valve command;
//! `hydraulics`: then a side-by-side table of the hydraulic network's cost: the same days with
//! household valves fitted and held, and with household valves fitted and moving every step, so
//! that the network is solved again at every step, and the time of one network solve)

use std::path::Path;
use std::time::Instant;

use heatctl_plant::{Plant, Scenario};

fn main() -> anyhow::Result<()> {
    let days: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(183.0);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/default.toml");
    let scenario = Scenario::load(&path, None)?;
    let ideal = std::env::args().any(|a| a == "ideal");
    let mut plant = Plant::new(&scenario)?;
    let n = plant.apartments().len();
    let dt = 60.0;
    let steps = (days * 86400.0 / dt) as u64;
    // A plausible controller stand-in so that the valve moves: proportional on the supply.
    let start = Instant::now();
    for _ in 0..steps {
        let t = plant.truth();
        let target = 20.0 + 1.6 * (18.0 - t.t_out_c).max(0.0);
        if ideal {
            plant.set_ideal_supply_c(Some(target));
        } else {
            let u = t.valve1_cmd_pct + 0.5 * (target - t.t2_supply_c);
            plant.set_valve1_cmd_pct(u);
        }
        plant.step(dt);
    }
    let wall = start.elapsed().as_secs_f64();
    let sim = steps as f64 * dt;
    let t = plant.truth();
    println!(
        "season_speed{}: {n} apartments, {steps} steps of {dt} s ({days} days) in {wall:.3} s wall: \
         {:.0} simulated s per wall s, {:.1} ns per apartment-step, 183-day season ~{:.2} s",
        if ideal { " (ideal supply)" } else { "" },
        sim / wall,
        wall * 1e9 / (steps as f64 * n as f64),
        wall * 183.0 / days
    );
    println!(
        "  end state: t_out {:.1} °C, t2_supply {:.1} °C, primary energy {:.1} kWh/m²",
        t.t_out_c,
        t.t2_supply_c,
        t.energy1_kwh / plant.total_floor_area_m2()
    );
    if std::env::args().any(|a| a == "hydraulics") {
        hydraulics_table(&scenario, days.min(30.0))?;
    }
    Ok(())
}

/// Wall time of `days` at 60 s steps with household valves fitted: held (the network solved
/// once), or each valve commanded anew every step (solved at every step).
fn hydraulics_table(scenario: &Scenario, days: f64) -> anyhow::Result<()> {
    let mut sc = scenario.clone();
    sc.household_valves.enabled = true;
    let dt = 60.0;
    let steps = (days * 86400.0 / dt) as u64;
    let run = |moving: bool| -> anyhow::Result<f64> {
        let mut plant = Plant::new(&sc)?;
        let n = plant.apartments().len();
        let start = Instant::now();
        for k in 0..steps {
            let t = plant.truth();
            let target = 20.0 + 1.6 * (18.0 - t.t_out_c).max(0.0);
            plant.set_ideal_supply_c(Some(target));
            if moving {
                for i in 0..n {
                    // Each valve a saw between 40 and 100 %, its own phase: always moving.
                    let saw = ((k as usize + 7 * i) % 60) as f64;
                    plant.set_household_valve_pct(i, 40.0 + saw)?;
                }
            }
            plant.step(dt);
        }
        Ok(start.elapsed().as_secs_f64())
    };
    let held = run(false)?;
    let moving = run(true)?;
    let mut plant = Plant::new(&sc)?;
    let net_runs: u32 = 2000;
    let start = Instant::now();
    for k in 0..net_runs {
        plant.set_balancing_kv(k as usize % 600, 1.0 + f64::from(k % 7) * 0.1);
    }
    let solve_us = start.elapsed().as_secs_f64() * 1e6 / f64::from(net_runs);
    println!("\n| {days} days, 600 flats, household valves | wall s | x held | 183-day season s |");
    println!("|---|---:|---:|---:|");
    for (what, w) in [
        ("held (network solved once)", held),
        ("moving (solved every step)", moving),
    ] {
        println!(
            "| {what} | {w:.3} | {:.2} | {:.2} |",
            w / held,
            w * 183.0 / days
        );
    }
    println!(
        "\none network solve (600 flats, flows and pressures at every node): {solve_us:.1} µs"
    );
    Ok(())
}
