//! Closed loop with field devices silent (a room gateway, a building's household valve
//! actuators): alarms, the demand shift's decay, control kept, and recovery (the rig:
//! `closed_loop/rig.rs`).

use crate::rig::*;

/// One room gateway (a quarter of the nodes) stops answering for 12 hours. The configuration
/// under test asks for 80 % of the nodes (`quorum_pct`), so once that gateway's readings are
/// gone the configured behaviour is the decay of the demand shift toward zero with
/// `decay_time_constant_h` (alarm 201): the shift follows that exponential and never grows.
/// When the gateway returns, every node is used again, the alarms clear, and the shift moves on
/// without a jump.
#[test]
fn room_gateway_silent_for_twelve_hours() {
    let _slots = rig_slots(RIG_SLOTS);
    block_on(async {
        let (f0, f1, end) = (3.0 * H, 15.0 * H, 16.5 * H);
        let mut sc = scenario("demo", -10.0);
        sc.faults.push(fault(
            FaultKind::DeviceSilent,
            "room_gateway:1",
            f0 / H,
            (f1 - f0) / H,
        ));
        let tau_h = 6.0;
        let mut base = constant_weather_base();
        set(&mut base, "demand.quorum_pct", 80.0);
        set(&mut base, "demand.decay_time_constant_h", tau_h);
        let max_rate_k_per_h = get_f64(&base, "demand.max_rate_k_per_h");
        let period_s = get_f64(&base, "demand.period_s");
        let mut rig = Rig::start_with("room-gateway", &sc, base, SPEED_LONG, |c| {
            quick_links(c, "rooms-");
        })
        .await;
        rig.run_until(end).await;

        let expected = rig
            .window(0.5 * H, f0)
            .last()
            .expect("observed")
            .1
            .rooms_expected();
        assert_eq!(usize::from(expected), node_apartments(&sc).len());
        // Quorum lost: the first observation with alarm 201.
        let (t_loss, _) = rig
            .window(f0, f1)
            .find(|(_, s)| s.has_alarm(A_QUORUM_LOST))
            .map(|(r, s)| (r.t_s, s.clone()))
            .expect("alarm 201 (quorum lost) while the gateway is silent");
        let (_, last_ok) = rig
            .window(0.0, t_loss)
            .last()
            .expect("observed before the loss");
        let s0 = last_ok.demand_shift_k().expect("demand shift");
        let s_f0 = rig
            .window(0.0, f0)
            .last()
            .and_then(|(_, s)| s.demand_shift_k())
            .expect("shift at the fault");
        eprintln!(
            "room gateway: quorum lost {:.2} h after the gateway went silent; shift {s_f0:.1} K at the fault, {s0:.1} K when the decay began",
            (t_loss - f0) / H
        );
        assert!(
            s0.abs() >= 1.0,
            "the demand shift ({s0:.1} K) must be away from zero to see its decay"
        );
        // Until the gateway's readings are stale (1800 s) the correction continues; then decays.
        assert!(t_loss - f0 <= 1800.0 + 2.0 * period_s + NOTICE_S);
        let tol = |s: f64| 0.1 + 0.03 * s.abs();
        let mut n = 0;
        for (r, s) in rig.window(t_loss, f1) {
            let shift = s.demand_shift_k().expect("shift");
            let model = s0 * (-(r.t_s - t_loss) / (tau_h * H)).exp();
            assert!(
                (shift - model).abs() <= tol(s0),
                "demand shift {shift:.2} K at {:.2} h, configured decay gives {model:.2} K",
                r.t_s / H
            );
            assert!(s.has_alarm(A_QUORUM_LOST), "201 at {:.2} h", r.t_s / H);
            n += 1;
        }
        assert!(n > 100, "observations of the decay: {n}");
        // The silent nodes are declared lost after three timed-out requests in a row: about
        // 1.3 s of wall time with the rig's 200 ms timeout, half an hour of plant time here.
        let lost = (f0 + 1.0 * H, f1);
        assert!(count(&rig, lost.0, lost.1) > 100);
        for (r, s) in rig.window(lost.0, lost.1) {
            assert!(s.has_alarm(A_COMM_LOST), "501 at {:.2} h", r.t_s / H);
            assert!(
                s.devices_lost() >= 1,
                "no device lost at {:.2} h",
                r.t_s / H
            );
        }
        // Never runs away: bounded by where it was plus what the rate allows before the loss.
        let bound = s_f0.abs() + max_rate_k_per_h * (t_loss - f0) / H + 0.1;
        for (r, s) in rig.window(f0, f1) {
            let shift = s.demand_shift_k().expect("shift");
            assert!(
                shift.abs() <= bound,
                "demand shift {shift:.2} K at {:.2} h beyond {bound:.2} K",
                r.t_s / H
            );
        }
        // Recovered: every node used again, no alarm, within an hour of plant time.
        let back = (f1 + 1.0 * H, end);
        assert!(count(&rig, back.0, back.1) > 20);
        for (r, s) in rig.window(back.0, back.1) {
            assert_eq!(
                s.rooms_used(),
                expected,
                "rooms used at {:.2} h after the gateway returned",
                r.t_s / H
            );
            for c in [A_QUORUM_LOST, A_ROOMS_INVALID, A_COMM_LOST] {
                assert!(!s.has_alarm(c), "alarm {c} at {:.2} h", r.t_s / H);
            }
        }
        // No jump anywhere: one demand run (at most two periods) moves the shift at most
        // max_rate_k_per_h times its interval.
        let obs: Vec<(f64, f64)> = rig
            .window(0.0, end)
            .filter_map(|(r, s)| s.demand_shift_k().map(|k| (r.t_s, k)))
            .collect();
        for w in obs.windows(2) {
            let dt_s = (w[1].0 - w[0].0).max(2.0 * period_s);
            let allowed = max_rate_k_per_h * dt_s / H + 0.1;
            assert!(
                (w[1].1 - w[0].1).abs() <= allowed,
                "demand shift jumped {:.2} K -> {:.2} K at {:.2} h",
                w[0].1,
                w[1].1,
                w[1].0 / H
            );
        }
        assert_healthy(&rig, 0.1 * H, f0);
        rig.finish().await;
    });
}

/// The household valve actuators of one building (behind their RTU gateway) stop answering for
/// two hours. heatctl raises alarm 501 and keeps running and controlling the primary valve: a
/// curve shift of -5 K written over SCADA during the outage lowers the setpoint, the valve
/// closes further and the secondary supply follows. After the gateway returns the alarm clears.
#[test]
fn household_valve_actuators_stop_answering() {
    let _slots = rig_slots(1);
    block_on(async {
        let (f0, t_shift, f1, end) = (0.5 * H, 1.0 * H, 2.5 * H, 3.25 * H);
        let mut sc = scenario("demo", -10.0);
        sc.household_valves.enabled = true;
        sc.faults.push(fault(
            FaultKind::DeviceSilent,
            "valve_gateway:1",
            f0 / H,
            (f1 - f0) / H,
        ));
        let mut base = constant_weather_base();
        set(&mut base, "household_valves.enabled", true);
        let mut rig = Rig::start_with("valves-silent", &sc, base, SPEED, |c| {
            quick_links(c, "valves-");
        })
        .await;
        rig.run_until(t_shift).await;
        let (r0, s0) = rig.window(0.0, t_shift).last().expect("observed");
        let (sp0, ds0, v0) = (
            s0.setpoint_c().expect("setpoint"),
            s0.demand_shift_k().expect("shift"),
            r0.valve1_cmd_pct,
        );
        // -5.0 K as i16 tenths.
        rig.write_scada(0, (-50_i16) as u16).await;
        rig.run_until(end).await;

        let lost = (f0 + 0.5 * H, f1);
        assert!(count(&rig, lost.0, lost.1) > 20);
        for (r, s) in rig.window(lost.0, lost.1) {
            assert!(s.has_alarm(A_COMM_LOST), "alarm 501 at {:.2} h", r.t_s / H);
            assert!(s.devices_lost() >= 1);
        }
        // The primary valve is still controlled: the shift took effect, the supply follows.
        let follow = (t_shift + 0.5 * H, f1);
        assert!(count(&rig, follow.0, follow.1) > 20);
        for (r, s) in rig.window(follow.0, follow.1) {
            assert_eq!(s.base_shift_k(), Some(-5.0));
            let sp = s.setpoint_c().expect("setpoint");
            let ds = s.demand_shift_k().expect("shift");
            // The curve and outdoor temperature are constant: the setpoint minus the demand
            // shift moved by the written shift.
            assert!(
                ((sp - ds) - (sp0 - ds0) + 5.0).abs() <= 0.3,
                "setpoint {sp:.1} °C (demand shift {ds:.1} K) at {:.2} h; before the write {sp0:.1} °C ({ds0:.1} K)",
                r.t_s / H
            );
            assert!(
                (r.t2_supply_c - sp).abs() <= 2.0,
                "secondary supply {:.1} °C, setpoint {sp:.1} °C at {:.2} h",
                r.t2_supply_c,
                r.t_s / H
            );
            assert!(
                r.valve1_cmd_pct < v0 - 1.0,
                "valve {:.1} % at {:.2} h, {v0:.1} % before the lower setpoint",
                r.valve1_cmd_pct,
                r.t_s / H
            );
        }
        // Back: alarm cleared.
        let back = (f1 + 0.5 * H, end);
        assert!(count(&rig, back.0, back.1) > 20);
        for (r, s) in rig.window(back.0, back.1) {
            assert!(!s.has_alarm(A_COMM_LOST), "alarm 501 at {:.2} h", r.t_s / H);
            assert_eq!(s.devices_lost(), 0);
        }
        assert_healthy(&rig, 0.1 * H, f0);
        rig.finish().await;
    });
}
