//! Closed loop at scale: 1,976 room nodes on 8 gateways, every node read within a demand
//! period (the rig: `closed_loop/rig.rs`).

use crate::rig::*;

/// Scale: 1,976 room nodes on 8 room gateways (8 buildings of 247 flats, a node in every flat:
/// the most one RS-485 bus per building can address). With the room readings' max age set to
/// the demand period, a node counts for demand only if it was read within the last period: once
/// the simulated nodes have published their first reading, every node counts at every demand run
/// for four periods, no device is lost, and heatctl reports every node and the two substation
/// devices.
#[test]
fn scale_1976_room_nodes_on_8_gateways() {
    let _slots = rig_slots(RIG_SLOTS);
    block_on(async {
        // A bus round of 247 requests at 115200 baud takes about half a second of wall time
        // (1.75 ms gap plus the round trip); 120x makes that a minute of clock time, well
        // inside the 300 s demand period.
        let speed = 120.0;
        let sc = Scenario::shipped("closed-scale").expect("scenario closed-scale");
        let mut base = constant_weather_base();
        let period_s = get_f64(&base, "demand.period_s");
        // A reading counts while its age is within max_age_s plus heatctl's scheduling allowance
        // on an accelerated clock (50 ms real): together exactly one demand period.
        let allowance_s = speed * heatctl::runtime::REAL_AGE_ALLOWANCE.as_secs_f64();
        set(&mut base, "signals.room.max_age_s", period_s - allowance_s);
        // Count nodes only by their age: no outlier filter.
        set(&mut base, "demand.outlier_k", 0.0);
        let mut rig = Rig::start("scale", &sc, base, speed).await;
        let nodes = lock(&rig.plant).room_node_count();
        assert_eq!(nodes, 1976);
        assert_eq!(rig.server.addresses().room_gateways.len(), 8);
        // A simulated node publishes its first reading at a random moment of its first report
        // interval (until then it reads the sentinel): from then on, and one demand period
        // later, every node must count at every demand run, for four periods.
        let first_report_s = sc.room_nodes.refresh_s;
        let (from, to) = (
            first_report_s + period_s + NOTICE_S,
            first_report_s + 5.0 * period_s,
        );
        rig.run_until(to).await;
        assert!(count(&rig, from, to) > 50);
        for (r, s) in rig.window(from, to) {
            assert_eq!(usize::from(s.rooms_expected()), nodes);
            assert_eq!(
                usize::from(s.rooms_used()),
                nodes,
                "nodes read within the last {period_s} s at {:.0} s",
                r.t_s
            );
            assert_eq!(usize::from(s.devices_total()), nodes + 2);
            assert_eq!(s.devices_lost(), 0, "devices lost at {:.0} s", r.t_s);
        }
        assert_healthy(&rig, 0.0, to);
        rig.finish().await;
    });
}
