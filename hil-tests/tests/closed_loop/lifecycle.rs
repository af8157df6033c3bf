//! Closed loop across the controller's life cycle: SIGKILL and restart from the state file,
//! SIGTERM to the safe positions, configuration reload (the rig: `closed_loop/rig.rs`).

use crate::rig::*;

/// heatctl killed with SIGKILL and started again with its state file: it restores its state and
/// takes the valve over where it was, so the plant's valve command never changes faster than
/// `[valve1] max_rate_pct_per_s` (plus the actuator's dead band, the start being bumpless from
/// the position feedback). Then SIGTERM: exit 0, and the plant's primary valve and every
/// household valve heatctl drives are commanded to, and reach, their safe positions.
#[test]
fn sigkill_restart_resumes_and_sigterm_leaves_safe_positions() {
    let _slots = rig_slots(1);
    block_on(async {
        // Slow enough to see every write: an observation every 2 ms is half a clock-second.
        let speed = 240.0;
        let hh_safe_pct = 60.0;
        let mut sc = scenario("demo", -10.0);
        sc.household_valves.enabled = true;
        // Near the valve's steady position at -10 °C: the run is short, so start near steady.
        sc.start.valve1_pct = 80.0;
        let mut base = constant_weather_base();
        set(&mut base, "household_valves.enabled", true);
        set(&mut base, "household_valves.safe_position_pct", hh_safe_pct);
        let rate = get_f64(&base, "valve1.max_rate_pct_per_s");
        let safe_pct = get_f64(&base, "safety.valve1_safe_pct");
        let mut rig = Rig::start("kill-restart", &sc, base, speed).await;
        rig.sample_every = Duration::from_millis(2);
        rig.run_until(0.4 * H).await;

        rig.exit_expected = true;
        rig.heatctl().signal(Signal::Kill).expect("SIGKILL");
        rig.heatctl()
            .wait_exit(Duration::from_secs(10))
            .expect("wait")
            .expect("heatctl died");
        let killed_at = rig.records.last().expect("observed").t_s;
        let log_before = rig.log().len();
        rig.run_until(killed_at + 120.0).await;
        rig.spawn().await;
        let restarted_at = rig.records.last().expect("observed").t_s;
        rig.run_until(restarted_at + 0.3 * H).await;
        assert!(
            rig.log()[log_before..].contains("control state restored"),
            "the restarted heatctl did not restore its state file"
        );

        // The command never jumps: between two observations it moves at most the rate limit
        // times the clock time between them plus one cycle, plus the feedback dead band and
        // the 0.1 % resolution of the register.
        let mut worst = (0.0_f64, 0.0_f64);
        for w in rig.records.windows(2) {
            let dt_s = (w[1].wall_s - w[0].wall_s) * speed;
            let allowed = rate * (dt_s + 1.0) + 0.5 + 0.1;
            let d = (w[1].valve1_cmd_pct - w[0].valve1_cmd_pct).abs();
            if d > worst.0 {
                worst = (d, w[1].t_s);
            }
            assert!(
                d <= allowed,
                "valve command jumped {:.1} % -> {:.1} % at {:.4} h ({dt_s:.2} clock-s, allowed {allowed:.2} %)",
                w[0].valve1_cmd_pct,
                w[1].valve1_cmd_pct,
                w[1].t_s / H
            );
        }
        eprintln!(
            "restart: largest change of the valve command between observations {:.2} % at {:.3} h (killed {:.3} h, restarted {:.3} h)",
            worst.0,
            worst.1 / H,
            killed_at / H,
            restarted_at / H
        );
        // And it controls again: over the last ten minutes the supply follows the setpoint.
        let end = rig.records.last().expect("observed").t_s;
        assert!(count(&rig, end - 600.0, end) > 100);
        for (r, s) in rig.window(end - 600.0, end) {
            assert_eq!(s.supervisor(), SUP_NONE);
            let sp = s.setpoint_c().expect("setpoint");
            assert!(
                (r.t2_supply_c - sp).abs() <= 2.0,
                "after the restart: supply {:.1} °C, setpoint {sp:.1} °C at {:.3} h",
                r.t2_supply_c,
                r.t_s / H
            );
        }

        // SIGTERM: safe positions written, verified by read-back, exit 0.
        let status = rig.terminate();
        assert!(status.success(), "heatctl after SIGTERM: {status}");
        let stopped_at = rig.plant_time_s();
        // Household actuators take 180 s for a full stroke, the primary valve 120 s.
        rig.run_until(stopped_at + 240.0).await;
        {
            let p = lock(&rig.plant);
            let t = p.truth();
            assert!(
                (t.valve1_cmd_pct - safe_pct).abs() < 0.05,
                "valve1 command {:.1} %",
                t.valve1_cmd_pct
            );
            assert!(
                (t.valve1_pos_pct - safe_pct).abs() <= 0.6,
                "valve1 position {:.1} %",
                t.valve1_pos_pct
            );
            let nodes: Vec<usize> = (0..p.room_node_count())
                .filter_map(|k| p.room_node(k))
                .map(|r| r.apartment)
                .collect();
            assert!(!nodes.is_empty());
            for a in nodes {
                let (pos, cmd) = p.household_valve(a).expect("household valve");
                assert!(
                    (cmd - hh_safe_pct).abs() < 0.05 && (pos - hh_safe_pct).abs() <= 0.6,
                    "household valve of flat {a}: command {cmd:.1} %, position {pos:.1} %"
                );
            }
        }
        rig.finish().await;
    });
}

/// Rewrite the configuration file atomically with `text`, its modification time set to `mtime`
/// (so heatctl's file watch sees no change when `mtime` is the old one).
fn replace_config(path: &std::path::Path, text: &str, mtime: Option<std::time::SystemTime>) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).expect("write the new configuration");
    if let Some(m) = mtime {
        std::fs::File::options()
            .write(true)
            .open(&tmp)
            .and_then(|f| f.set_modified(m))
            .expect("set the modification time");
    }
    std::fs::rename(&tmp, path).expect("replace the configuration");
}

/// A configuration reload: an invalid file (written: the file watch) is rejected, logged, and
/// the configuration in force stays (the curve shift on SCADA unchanged, heatctl running); a
/// valid one with `[curve] shift_k = 5` delivered by SIGHUP alone (the file's modification time
/// kept) is applied: the shift shows on SCADA and the setpoint rises by it.
#[test]
fn reload_rejects_an_invalid_config_and_applies_a_valid_one() {
    let _slots = rig_slots(1);
    block_on(async {
        let sc = scenario("demo", -10.0);
        let mut rig = Rig::start("reload", &sc, constant_weather_base(), SPEED).await;
        rig.run_until(1.0 * H).await;
        let text = std::fs::read_to_string(&rig.config_path).expect("config");
        let good: Table = text.parse().expect("parses");
        let (_, s0) = rig.window(0.0, f64::INFINITY).last().expect("observed");
        let (sp0, ds0) = (
            s0.setpoint_c().expect("setpoint"),
            s0.demand_shift_k().expect("shift"),
        );
        assert_eq!(s0.base_shift_k(), Some(0.0));

        // Invalid: the lowest setpoint above the highest. The file watch picks it up.
        let mut bad = good.clone();
        set(&mut bad, "curve.min_supply_c", 90.0);
        let mark = rig.log().len();
        replace_config(
            &rig.config_path,
            &toml::to_string(&bad).expect("toml"),
            None,
        );
        rig.wait_log(
            mark,
            "configuration rejected; keeping the configuration in force",
        )
        .await;
        let t_bad = rig.plant_time_s();
        rig.run_until(t_bad + 0.25 * H).await;
        let log = rig.log();
        assert!(
            log[mark..].contains("configuration file changed"),
            "the reload was not triggered by the file change"
        );
        assert!(
            log[mark..].contains("min_supply_c"),
            "the rejected problem is not named in the log"
        );
        for (_, s) in rig.window(t_bad, f64::INFINITY) {
            assert_eq!(
                s.base_shift_k(),
                Some(0.0),
                "the rejected file changed the shift"
            );
        }

        // Valid, with a curve shift: same modification time, so only SIGHUP reloads it.
        let mut shifted = good.clone();
        set(&mut shifted, "curve.shift_k", 5.0);
        let mtime = std::fs::metadata(&rig.config_path)
            .and_then(|m| m.modified())
            .expect("mtime");
        let mark = rig.log().len();
        replace_config(
            &rig.config_path,
            &toml::to_string(&shifted).expect("toml"),
            Some(mtime),
        );
        let t_write = rig.plant_time_s();
        rig.run_until(t_write + 0.1 * H).await;
        assert!(
            !rig.log()[mark..].contains("reloading configuration"),
            "reloaded without SIGHUP"
        );
        rig.heatctl().signal(Signal::Hup).expect("SIGHUP");
        rig.wait_log(mark, "configuration reloaded").await;
        assert!(rig.log()[mark..].contains("SIGHUP"), "reason not logged");
        let t_hup = rig.plant_time_s();
        // The setpoint rises at 0.5 K/min: 5 K in 10 minutes.
        rig.run_until(t_hup + 0.5 * H).await;
        let (r, s) = rig.window(t_hup, f64::INFINITY).last().expect("observed");
        assert_eq!(s.base_shift_k(), Some(5.0));
        let sp = s.setpoint_c().expect("setpoint");
        let ds = s.demand_shift_k().expect("shift");
        assert!(
            ((sp - ds) - (sp0 - ds0) - 5.0).abs() <= 0.3,
            "setpoint {sp:.1} °C (demand shift {ds:.1} K) after the reload, {sp0:.1} °C ({ds0:.1} K) before"
        );
        assert!(
            (r.t2_supply_c - sp).abs() <= 2.0,
            "supply {:.1} °C, setpoint {sp:.1} °C",
            r.t2_supply_c
        );
        assert_healthy(&rig, 0.1 * H, f64::INFINITY);
        rig.finish().await;
    });
}
