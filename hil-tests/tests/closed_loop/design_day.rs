//! Closed loop on a design day: the release `heatctl` against the plant simulator (the rig:
//! `closed_loop/rig.rs`), tracking and comfort from a cold start.

use crate::rig::*;

/// Cold start on a design day (-17 °C all day, the primary valve closed, rooms at 20 °C):
/// after the first two hours the secondary supply stays within 2 K of heatctl's setpoint, and
/// over the second day fewer than 2 % of the apartment-hours are below 18 °C (every flat, ground
/// truth from the plant).
#[test]
fn cold_start_on_a_design_day() {
    let _slots = rig_slots(RIG_SLOTS);
    block_on(async {
        let sc = scenario("demo", -17.0);
        let mut rig = Rig::start("cold-start", &sc, constant_weather_base(), SPEED_LONG).await;
        rig.run_until(48.0 * H).await;

        let transient_s = 2.0 * H;
        let mut worst = (0.0_f64, 0.0_f64);
        let mut n = 0;
        for (r, s) in rig.window(transient_s, 48.0 * H) {
            if s.supervisor() != SUP_NONE {
                continue;
            }
            let Some(sp) = s.setpoint_c() else { continue };
            n += 1;
            let e = (r.t2_supply_c - sp).abs();
            if e > worst.0 {
                worst = (e, r.t_s);
            }
        }
        assert!(n > 1000, "too few observations with a setpoint: {n}");
        assert!(
            worst.0 <= 2.0,
            "secondary supply {:.2} K from the setpoint at {:.2} h",
            worst.0,
            worst.1 / H
        );

        // Apartment-hours below 18 °C over the second day, time-weighted.
        let day2: Vec<&Record> = rig
            .records
            .iter()
            .filter(|r| r.t_s >= 24.0 * H && r.t_s <= 48.0 * H)
            .collect();
        let mut below_s = 0.0;
        let mut total_s = 0.0;
        for w in day2.windows(2) {
            let dt = w[1].t_s - w[0].t_s;
            below_s += w[0].below_18_share * dt;
            total_s += dt;
        }
        assert!(
            total_s > 23.9 * H,
            "second day covered: {:.2} h",
            total_s / H
        );
        let share = below_s / total_s;
        eprintln!(
            "cold start: worst |t2 - setpoint| {:.2} K after 2 h ({n} observations); \
             apartment-hours below 18 °C on day 2: {:.3} %",
            worst.0,
            share * 100.0
        );
        assert!(
            share < 0.02,
            "{:.2} % of the apartment-hours below 18 °C on the second day",
            share * 100.0
        );
        assert_healthy(&rig, 0.0, 48.0 * H);
        rig.finish().await;
    });
}
