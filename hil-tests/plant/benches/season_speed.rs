//! Raw simulation speed: the default scenario (600 apartments) stepped at 60 s, single-threaded.
//! Prints simulated seconds per wall second and the projected wall time of a 183-day season.
//!
//! `cargo bench -p heatctl-plant --bench season_speed [-- DAYS] [ideal]`
//! (`ideal`: drive the plant with `set_ideal_supply_c` instead of a valve command)

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
    Ok(())
}
