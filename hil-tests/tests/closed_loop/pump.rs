//! Closed loop of the secondary pump (`[pump2]`) over Modbus (the rig: `closed_loop/rig.rs`):
//! heatctl writes the speed command to the plant's holding register 1 and reads the pressures,
//! flow, speed and power from its input registers 9-13 (`config/devices/substation-io.toml`).
//!
//! * constant differential pressure holds `dp2_station` within a band after household valves
//!   near the station close (a disturbance that, at the speed held before it, would leave the
//!   band: checked on a clone of the plant);
//! * index-circuit pressure holds `dp2_index` (the remote sensor) the same way;
//! * the dry-run guard stops the pump when the flow is cut (every household valve closed and
//!   every balancing valve shut), raises alarm 311 and shows it on SCADA;
//! * SIGTERM leaves the pump at `pump2.safe_speed_pct` (the plant's holding register 1).
//!
//! The setpoints come from the plant itself (the station pressure at a known speed, found by
//! stepping a copy of the plant offline), so nothing here is tuned to one network.

use crate::rig::*;

/// Alarm: the pump's dry-run guard tripped.
const A_DRY_RUN: u16 = 311;
/// heatctl's SCADA input registers of the pump: signals 56-60, state 61-65.
const PUMP_REGS: u16 = 56;
const PUMP_REGS_LEN: u16 = 10;

/// One observation of the pump: plant truth and heatctl's SCADA view of it.
#[derive(Debug, Clone, Copy)]
struct PumpRecord {
    t_s: f64,
    dp2_station_kpa: f64,
    flow2_m3h: f64,
    speed_fb_pct: f64,
    dp2_index_kpa: f64,
    /// heatctl's registers 56..66 (None when the slave did not answer).
    scada: Option<[u16; PUMP_REGS_LEN as usize]>,
    alarm_dry_run: bool,
}

impl PumpRecord {
    /// SCADA 63: the speed command heatctl shows, %.
    fn speed_cmd_pct(&self) -> Option<f64> {
        self.scada
            .map(|r| f64::from(r[7] as i16) / 10.0)
            .filter(|v| *v > -3276.0)
    }
    /// SCADA 61: the pump mode code.
    fn mode(&self) -> Option<u16> {
        self.scada.map(|r| r[5])
    }
    /// SCADA 64: the dry-run state code.
    fn dry_run(&self) -> Option<u16> {
        self.scada.map(|r| r[8])
    }
}

async fn read_pump_regs(rig: &mut Rig) -> Option<[u16; PUMP_REGS_LEN as usize]> {
    let ctx = rig.client.as_mut()?;
    let r = tokio::time::timeout(
        Duration::from_millis(1000),
        ctx.read_input_registers(PUMP_REGS, PUMP_REGS_LEN),
    )
    .await;
    match r {
        Ok(Ok(Ok(regs))) => regs.try_into().ok(),
        _ => None,
    }
}

/// Observe (the rig's own record and the pump's) until the plant's clock reaches `until_s`.
async fn observe_until(rig: &mut Rig, out: &mut Vec<PumpRecord>, until_s: f64) {
    let remaining_s = (until_s - rig.plant_time_s()).max(0.0);
    let deadline = Instant::now() + Duration::from_secs_f64(5.0 * remaining_s / rig.speed + 30.0);
    loop {
        rig.sample().await;
        let alarm_dry_run = rig
            .records
            .last()
            .and_then(|r| r.scada.as_ref())
            .is_some_and(|s| s.has_alarm(A_DRY_RUN));
        let scada = if rig.exit_expected {
            None
        } else {
            read_pump_regs(rig).await
        };
        let (t_s, truth) = {
            let p = lock(&rig.plant);
            (p.time_s(), p.truth())
        };
        out.push(PumpRecord {
            t_s,
            dp2_station_kpa: truth.dp2_station_kpa,
            flow2_m3h: truth.flow2_m3h,
            speed_fb_pct: truth.pump2_speed_pct,
            dp2_index_kpa: truth.dp2_index_kpa,
            scada,
            alarm_dry_run,
        });
        if t_s >= until_s {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{}: the plant did not reach {:.2} h (rig overloaded?)",
            rig.name,
            until_s / H
        );
        tokio::time::sleep(rig.sample_every).await;
    }
}

/// The station pressure and flow of the scenario's plant with the pump held at `speed_pct`,
/// after `settle_s` of plant time (a copy stepped offline, no controller).
fn plant_at_speed(sc: &Scenario, speed_pct: f64, settle_s: f64) -> (f64, f64) {
    let (dp, _, flow) = plant_pressures_at_speed(sc, speed_pct, settle_s);
    (dp, flow)
}

/// Station pressure, index pressure and flow with the pump held at `speed_pct`.
fn plant_pressures_at_speed(sc: &Scenario, speed_pct: f64, settle_s: f64) -> (f64, f64, f64) {
    let mut p = heatctl_plant::Plant::new(sc).expect("plant");
    p.set_pump2_speed_cmd_pct(speed_pct);
    let mut t = 0.0;
    while t < settle_s {
        p.step(1.0);
        t += 1.0;
    }
    let truth = p.truth();
    (truth.dp2_station_kpa, truth.dp2_index_kpa, truth.flow2_m3h)
}

/// heatctl's configuration: the demo tuning plus the pump's points and `[pump2]`.
fn pump_base(pump: &[(&str, Value)]) -> Table {
    let mut b = constant_weather_base();
    for (k, v) in pump {
        set(&mut b, &format!("pump2.{k}"), v.clone());
    }
    b
}

/// Bind the pump's points of the generated configuration: the `pump` device (the pump map on
/// the plant's substation I/O, link and unit of the `plc` device) and the speed feedback of `plc`.
fn bind_pump(cfg: &mut Table) {
    let mut pump = Table::new();
    pump.insert("name".into(), "pump".into());
    pump.insert("link".into(), heatctl_plant::naming::IO_LINK.into());
    pump.insert("unit_id".into(), 1.into());
    pump.insert(
        "map".into(),
        heatctl_plant::binding::SUBSTATION_PUMP_MAP.into(),
    );
    match cfg.get_mut("devices") {
        Some(Value::Array(devices)) => devices.push(Value::Table(pump)),
        _ => panic!("the generated configuration has [[devices]]"),
    }
    for (key, point) in [
        ("pump2_speed_cmd", "pump.pump2_speed_cmd"),
        ("pump2_speed", "plc.pump2_speed"),
        ("dp2_station", "pump.dp2_station"),
        ("dp2_index", "pump.dp2_index"),
        ("pump2_power", "pump.pump2_power"),
        ("flow2", "pump.flow2"),
    ] {
        set(cfg, &format!("points.{key}"), point);
    }
}

/// The scenario: the demo's 4 × 60 flats at -5 °C with household valves fitted (heatctl's own
/// valve loops stay off, so the test alone moves them).
fn pump_scenario() -> Scenario {
    let mut sc = scenario("demo", -5.0);
    sc.household_valves.enabled = true;
    sc
}

/// Constant differential pressure: after the valves of the two buildings nearest the station
/// close, the pump slows and `dp2_station` is back within ±3 kPa of its setpoint for the
/// whole last hour, where the speed held before the disturbance would have left it more than
/// 3 kPa above.
#[test]
fn constant_dp_holds_the_station_pressure_when_valves_close() {
    let _slots = rig_slots(1);
    block_on(async {
        let sc = pump_scenario();
        let (sp_kpa, _) = plant_at_speed(&sc, 70.0, 900.0);
        let sp_kpa = (sp_kpa * 10.0).round() / 10.0;
        assert!(
            sp_kpa > 10.0,
            "the plant makes pressure: {sp_kpa} kPa at 70 %"
        );
        let base = pump_base(&[
            ("mode", "constant_dp".into()),
            ("dp_setpoint_kpa", sp_kpa.into()),
            ("min_speed_pct", 20.0.into()),
        ]);
        let mut rig = Rig::start_with("pump-constant-dp", &sc, base, SPEED, bind_pump).await;
        let mut recs = Vec::new();
        let disturb_s = 1.0 * H;
        observe_until(&mut rig, &mut recs, disturb_s).await;

        // The flats of the first two buildings (nearest the station) close their valves.
        let (counterfactual_dp_kpa, closed) = {
            let mut p = lock(&rig.plant);
            let near: Vec<usize> = (0..p.apartments().len())
                .filter(|&i| p.apartments()[i].building < 2)
                .collect();
            for &i in &near {
                p.set_household_valve_pct(i, 0.0)
                    .expect("household valves fitted");
            }
            // Without control: the same plant, the pump held where it is now.
            let mut held = p.clone();
            let speed_now = held.truth().pump2_speed_pct;
            held.set_pump2_speed_cmd_pct(speed_now);
            for _ in 0..600 {
                held.step(1.0);
            }
            (held.truth().dp2_station_kpa, near.len())
        };
        assert!(closed > 0, "some flats are in the first two buildings");
        observe_until(&mut rig, &mut recs, disturb_s + 2.0 * H).await;
        assert_healthy(&rig, 0.0, disturb_s + 2.0 * H);

        let mean = |from: f64, to: f64, f: fn(&PumpRecord) -> f64| {
            let v: Vec<f64> = recs
                .iter()
                .filter(|r| r.t_s >= from && r.t_s < to)
                .map(f)
                .collect();
            assert!(!v.is_empty(), "observations in [{from}, {to})");
            v.iter().sum::<f64>() / v.len() as f64
        };
        let speed_before = mean(disturb_s - 0.5 * H, disturb_s, |r| r.speed_fb_pct);
        let speed_after = mean(disturb_s + H, disturb_s + 2.0 * H, |r| r.speed_fb_pct);
        assert!(
            counterfactual_dp_kpa > sp_kpa + 3.0,
            "the disturbance matters: at the held speed dp2_station would be {counterfactual_dp_kpa:.1} kPa (setpoint {sp_kpa})"
        );
        let worst = recs
            .iter()
            .filter(|r| r.t_s >= disturb_s + H)
            .map(|r| (r.dp2_station_kpa - sp_kpa).abs())
            .fold(0.0_f64, f64::max);
        assert!(
            worst <= 3.0,
            "dp2_station within ±3 kPa of {sp_kpa} kPa in the last hour: worst {worst:.2} kPa"
        );
        eprintln!(
            "constant dp: setpoint {sp_kpa} kPa; held speed would give {counterfactual_dp_kpa:.1} kPa; \
             worst error in the last hour {worst:.2} kPa; speed {speed_before:.1} % -> {speed_after:.1} %"
        );
        let before = recs
            .iter()
            .filter(|r| r.t_s >= disturb_s - 0.5 * H && r.t_s < disturb_s)
            .map(|r| (r.dp2_station_kpa - sp_kpa).abs())
            .fold(0.0_f64, f64::max);
        assert!(
            before <= 3.0,
            "held before the disturbance too: {before:.2} kPa"
        );
        assert!(
            speed_after < speed_before - 1.0,
            "the pump slowed: {speed_before:.1} % before, {speed_after:.1} % after"
        );
        let last = recs
            .iter()
            .rev()
            .find(|r| r.scada.is_some())
            .expect("SCADA seen");
        assert_eq!(last.mode(), Some(1), "constant_dp on SCADA");
        assert!(
            last.speed_cmd_pct()
                .is_some_and(|c| (c - last.speed_fb_pct).abs() < 5.0),
            "the command on SCADA is what the pump follows: {last:?}"
        );
        assert!(recs.iter().all(|r| !r.alarm_dry_run), "no dry-run trip");
        rig.finish().await;
    });
}

/// Flow cut (every valve shut): with the pump commanded above its minimum speed, flow2 below
/// `dry_run_flow_m3h` for `dry_run_delay_s` trips the guard: alarm 311 and dry-run state 2 on
/// SCADA, the command 0 and the pump stopped; not before the delay has passed after the cut.
#[test]
fn the_dry_run_guard_stops_the_pump_when_the_flow_is_cut() {
    let _slots = rig_slots(1);
    block_on(async {
        let sc = pump_scenario();
        let (sp_kpa, flow_m3h) = plant_at_speed(&sc, 70.0, 900.0);
        let sp_kpa = (sp_kpa * 10.0).round() / 10.0;
        let threshold_m3h = 0.05 * flow_m3h;
        let delay_s = 30.0;
        let base = pump_base(&[
            ("mode", "constant_dp".into()),
            ("dp_setpoint_kpa", sp_kpa.into()),
            ("min_speed_pct", 20.0.into()),
            (
                "dry_run_flow_m3h",
                ((threshold_m3h * 100.0).round() / 100.0).into(),
            ),
            ("dry_run_delay_s", delay_s.into()),
            ("dry_run_retry_s", (4.0 * H).into()),
        ]);
        let mut rig = Rig::start_with("pump-dry-run", &sc, base, SPEED, bind_pump).await;
        let mut recs = Vec::new();
        let cut_s = 0.5 * H;
        observe_until(&mut rig, &mut recs, cut_s).await;
        assert!(
            recs.iter().all(|r| !r.alarm_dry_run),
            "no trip before the cut"
        );
        let flow_before = recs.last().expect("observed").flow2_m3h;
        assert!(
            flow_before > 4.0 * threshold_m3h,
            "flow before the cut {flow_before:.2} m³/h"
        );
        let cut_at = {
            let mut p = lock(&rig.plant);
            for i in 0..p.apartments().len() {
                p.set_household_valve_pct(i, 0.0)
                    .expect("household valves fitted");
                p.set_balancing_kv(i, 1e-4);
            }
            p.time_s()
        };
        observe_until(&mut rig, &mut recs, cut_s + H).await;

        let tripped = recs
            .iter()
            .find(|r| r.alarm_dry_run)
            .unwrap_or_else(|| panic!("alarm {A_DRY_RUN} never raised"));
        eprintln!(
            "dry run: flow {flow_before:.2} m³/h before the cut, threshold {threshold_m3h:.2}; cut at {cut_at:.0} s, alarm seen at {:.0} s",
            tripped.t_s
        );
        assert!(
            tripped.t_s >= cut_at + delay_s,
            "not before the delay: tripped at {:.0} s, cut at {cut_at:.0} s",
            tripped.t_s
        );
        let after: Vec<&PumpRecord> = recs
            .iter()
            .filter(|r| r.t_s >= tripped.t_s + NOTICE_S + 120.0)
            .collect();
        assert!(!after.is_empty(), "observed after the trip");
        for r in &after {
            assert!(
                r.alarm_dry_run,
                "the trip holds until the retry time: {r:?}"
            );
            if r.scada.is_some() {
                assert_eq!(r.dry_run(), Some(2), "tripped on SCADA: {r:?}");
                assert_eq!(r.speed_cmd_pct(), Some(0.0), "command 0: {r:?}");
            }
            assert!(r.speed_fb_pct < 1.0, "the pump stopped: {r:?}");
        }
        rig.finish().await;
    });
}

/// SIGTERM: heatctl writes `pump2.safe_speed_pct` before it exits, and the pump runs on at it
/// (the plant's holding register 1 keeps the last value written).
#[test]
fn sigterm_leaves_the_pump_at_its_safe_speed() {
    let _slots = rig_slots(1);
    block_on(async {
        let sc = pump_scenario();
        let (sp_kpa, _) = plant_at_speed(&sc, 70.0, 900.0);
        let safe_pct = 55.0;
        let base = pump_base(&[
            ("mode", "constant_dp".into()),
            ("dp_setpoint_kpa", ((sp_kpa * 10.0).round() / 10.0).into()),
            ("safe_speed_pct", safe_pct.into()),
        ]);
        let mut rig = Rig::start_with("pump-sigterm", &sc, base, SPEED, bind_pump).await;
        let mut recs = Vec::new();
        observe_until(&mut rig, &mut recs, 0.5 * H).await;
        let running = recs.last().expect("observed").speed_fb_pct;
        assert!(
            (running - safe_pct).abs() > 5.0,
            "the pump runs away from the safe speed before the stop: {running:.1} %"
        );
        let status = rig.terminate();
        assert!(status.success(), "heatctl exit status {status}");
        let io = rig.server.addresses().substation_io;
        let mut ctx = tokio_modbus::client::tcp::connect_slave(io, Slave(1))
            .await
            .expect("connect to the plant's I/O");
        let held = ctx
            .read_holding_registers(1, 1)
            .await
            .expect("transport")
            .expect("holding 1");
        assert_eq!(held, vec![550], "pump2_speed_cmd at the safe speed, 0.1 %");
        let stopped_at = rig.plant_time_s();
        observe_until(&mut rig, &mut recs, stopped_at + 600.0).await;
        let last = recs.last().expect("observed");
        assert!(
            (last.speed_fb_pct - safe_pct).abs() < 1.0,
            "the pump runs at the safe speed: {last:?}"
        );
        rig.finish().await;
    });
}

/// Index-circuit pressure: the loop holds the remote sensor (`dp2_index`, across the index
/// riser) at its setpoint within ±3 kPa after the near buildings' valves close, while the
/// station pressure, which the loop does not hold, moves.
#[test]
fn index_mode_holds_the_remote_pressure_when_valves_close() {
    let _slots = rig_slots(1);
    block_on(async {
        let sc = pump_scenario();
        let (_, idx_kpa, _) = plant_pressures_at_speed(&sc, 70.0, 900.0);
        let sp_kpa = (idx_kpa * 10.0).round() / 10.0;
        assert!(
            sp_kpa > 2.0,
            "the index riser sees pressure: {sp_kpa} kPa at 70 %"
        );
        let base = pump_base(&[
            ("mode", "index".into()),
            ("index_dp_setpoint_kpa", sp_kpa.into()),
            ("index_dp_min_kpa", 1.0.into()),
            ("index_dp_max_kpa", (2.0 * sp_kpa).into()),
            ("min_speed_pct", 20.0.into()),
        ]);
        let mut rig = Rig::start_with("pump-index", &sc, base, SPEED, bind_pump).await;
        let mut recs = Vec::new();
        let disturb_s = 1.0 * H;
        observe_until(&mut rig, &mut recs, disturb_s).await;
        {
            let mut p = lock(&rig.plant);
            for i in 0..p.apartments().len() {
                if p.apartments()[i].building < 2 {
                    p.set_household_valve_pct(i, 0.0)
                        .expect("household valves fitted");
                }
            }
        }
        observe_until(&mut rig, &mut recs, disturb_s + 2.0 * H).await;
        assert_healthy(&rig, 0.0, disturb_s + 2.0 * H);
        let window = |from: f64, to: f64| recs.iter().filter(move |r| r.t_s >= from && r.t_s < to);
        let worst = window(disturb_s + H, disturb_s + 2.0 * H)
            .map(|r| (r.dp2_index_kpa - sp_kpa).abs())
            .fold(0.0_f64, f64::max);
        let station = |from: f64, to: f64| {
            let v: Vec<f64> = window(from, to).map(|r| r.dp2_station_kpa).collect();
            assert!(!v.is_empty());
            v.iter().sum::<f64>() / v.len() as f64
        };
        let (st_before, st_after) = (
            station(disturb_s - 0.5 * H, disturb_s),
            station(disturb_s + H, disturb_s + 2.0 * H),
        );
        eprintln!(
            "index: setpoint {sp_kpa} kPa, worst error in the last hour {worst:.2} kPa; \
             station {st_before:.1} -> {st_after:.1} kPa"
        );
        assert!(
            worst <= 3.0,
            "dp2_index within ±3 kPa of {sp_kpa} kPa in the last hour: worst {worst:.2} kPa"
        );
        assert!(
            (st_after - st_before).abs() > 1.0,
            "the station pressure is not what is held: {st_before:.1} -> {st_after:.1} kPa"
        );
        let last = recs
            .iter()
            .rev()
            .find(|r| r.scada.is_some())
            .expect("SCADA seen");
        assert_eq!(last.mode(), Some(3), "index mode on SCADA");
        rig.finish().await;
    });
}
