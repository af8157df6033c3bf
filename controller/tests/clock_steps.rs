//! A wall clock that steps while heatctl runs: back an hour, ahead a day, and from 1970 to
//! today (a gateway without a battery-backed clock, then NTP).
//!
//! * The control core, twice side by side: one controller on a wall clock that never steps,
//!   one whose wall clock steps, both on the same monotonic time and each closing the loop on
//!   its own small plant model. With the schedule off, their commands are identical to the
//!   bit; with a schedule, it follows the new wall time at once.
//! * The real runtime in this process (`heatctl::runtime::run_embedded`) against the plant
//!   simulator (the `closed-demo` scenario on loopback), on an injected
//!   [`SteppableClock`] 60 times faster than real time: across each step no reading gets old
//!   or jumps, the valve command, the setpoint and the demand shift move no more than their
//!   rate limits allow in the monotonic time that passed, the schedule follows the new wall
//!   time, alarm 701 is raised and the step is logged (warn, old and new wall time). The
//!   run's snapshots, offered to the web face's trends, are served in order and at their true
//!   time, those recorded in 1970 included. No duration is asserted; wall-clock limits only
//!   stop a hung test.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use heatctl::config::{self, Config, RoomNode};
use heatctl::control::{
    AlarmCode, Commands, Controller, Limiter, ProcessImage, Rejection, Sample, Signal, StepTime,
};
use heatctl::runtime::{self, Clock, Embedding, RunOptions, SteppableClock};
use heatctl::station::StationSnapshot;
use heatctl::web::Trends;
use heatctl_plant::binding::{DEMO_TOML, DEVICE_MAPS, bind_to_plant};
use heatctl_plant::serve::{ServeOptions, lock};
use heatctl_plant::{Plant, Scenario};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use toml::{Table, Value};

/// 2026-01-05 00:00 UTC, a Monday.
const MONDAY_2026_UTC_S: f64 = 1_767_571_200.0;

// ---- the control core, side by side ---------------------------------------------------------

fn core_config(nodes: usize, schedule: bool) -> Config {
    let mut c = config::parse_str(
        r#"
[site]
name = "test"
utc_offset_h = 8
[curve]
points = [{ outdoor_c = -20.0, supply_c = 75.0 }, { outdoor_c = 0.0, supply_c = 51.0 }, { outdoor_c = 18.0, supply_c = 25.0 }]
[demand]
period_s = 60
[schedule]
enabled = false
setback_k = 5.0
periods = [{ days = ["tue", "thu"], start = "00:00", end = "23:59" }]
full_setback_above_c = -30.0
no_setback_below_c = -40.0
boost_k = 0.0
"#,
        None,
    )
    .unwrap();
    c.schedule.enabled = schedule;
    c.rooms.nodes = (0..nodes)
        .map(|i| RoomNode {
            building: format!("b{}", i % 3),
            ..RoomNode::new(format!("n{i}"), "l", 1)
        })
        .collect();
    c
}

/// A small plant: the secondary supply follows the valve with a minute's lag, the rooms
/// follow the supply over hours.
#[derive(Debug, Clone)]
struct Model {
    t2_c: f64,
    rooms_c: Vec<f64>,
}

impl Model {
    fn new(nodes: usize) -> Self {
        Self {
            t2_c: 45.0,
            rooms_c: (0..nodes).map(|i| 18.5 + 0.1 * i as f64).collect(),
        }
    }

    fn image(&self, valve_pct: f64) -> ProcessImage {
        let mut im = ProcessImage::with_rooms(self.rooms_c.len());
        im.set(Signal::TOut, Some(Sample::fresh(-5.0)));
        im.set(Signal::T2Supply, Some(Sample::fresh(self.t2_c)));
        im.set(Signal::T2Return, Some(Sample::fresh(self.t2_c - 15.0)));
        im.set(Signal::T1Supply, Some(Sample::fresh(100.0)));
        im.set(Signal::T1Return, Some(Sample::fresh(40.0)));
        im.set(Signal::Valve1PosPct, Some(Sample::fresh(valve_pct)));
        for (r, &c) in im.rooms.iter_mut().zip(&self.rooms_c) {
            *r = Some(Sample::fresh(c));
        }
        im
    }

    fn advance(&mut self, valve_pct: f64, dt_s: f64) {
        let target = 20.0 + 0.6 * valve_pct;
        self.t2_c += (target - self.t2_c) * dt_s / 60.0;
        for r in &mut self.rooms_c {
            *r += (0.35 * self.t2_c + 1.0 - *r) * dt_s / 7200.0;
        }
    }
}

/// One closed loop: a controller, its plant, its last valve command.
struct Loop {
    c: Controller,
    m: Model,
    valve_pct: f64,
}

impl Loop {
    fn new(cfg: &Config) -> Self {
        Self {
            c: Controller::new(cfg),
            m: Model::new(cfg.rooms.nodes.len()),
            valve_pct: 30.0,
        }
    }

    fn step(&mut self, t: StepTime) -> Commands {
        let cmds = self.c.step_at(t, &self.m.image(self.valve_pct));
        self.valve_pct = cmds.valve1_pct;
        self.m.advance(self.valve_pct, 1.0);
        cmds
    }
}

/// The wall clock of the stepped run at monotonic second `k`: it boots in 1970, NTP steps it
/// to today at 600 s, an operator moves it back an hour at 1,800 s, and a day ahead at 3,000 s.
fn stepped_wall_s(k: f64) -> f64 {
    let today = MONDAY_2026_UTC_S + 10.0 * 3600.0;
    if k < 600.0 {
        12.0 + k
    } else if k < 1800.0 {
        today + k
    } else if k < 3000.0 {
        today - 3600.0 + k
    } else {
        today - 3600.0 + 86_400.0 + k
    }
}

fn codes(c: &Commands) -> Vec<AlarmCode> {
    c.alarms.iter().map(|a| a.code).collect()
}

#[test]
fn a_stepped_wall_clock_changes_no_command_of_the_control_core() {
    let cfg = core_config(12, false);
    let mut steady = Loop::new(&cfg);
    let mut stepped = Loop::new(&cfg);
    let mono0 = 5_000.0;
    let (mut moved_valve, mut moved_shift) = (0.0f64, 0.0f64);
    for k in 0..4_200 {
        let k = f64::from(k);
        let a = steady.step(StepTime {
            mono_s: mono0 + k,
            wall_s: MONDAY_2026_UTC_S + k,
        });
        let b = stepped.step(StepTime {
            mono_s: mono0 + k,
            wall_s: stepped_wall_s(k),
        });
        assert_eq!(
            a.valve1_pct.to_bits(),
            b.valve1_pct.to_bits(),
            "valve at {k} s"
        );
        assert_eq!(
            a.explanation.setpoint_c, b.explanation.setpoint_c,
            "setpoint at {k} s"
        );
        assert_eq!(
            a.explanation.demand_shift_k, b.explanation.demand_shift_k,
            "shift at {k} s"
        );
        assert_eq!(
            a.explanation.rejected, b.explanation.rejected,
            "rejected at {k} s"
        );
        assert_eq!(codes(&a), codes(&b), "alarms at {k} s");
        assert!(
            a.explanation.rejected.is_empty(),
            "{:?}",
            a.explanation.rejected
        );
        moved_valve = moved_valve.max((a.valve1_pct - 30.0).abs());
        moved_shift = moved_shift.max(a.explanation.demand_shift_k.abs());
    }
    // The comparison means something: the loop and the demand correction both worked.
    assert!(moved_valve > 5.0, "valve moved {moved_valve}");
    assert!(moved_shift > 0.05, "demand shift moved {moved_shift}");
    // The saved state is dated on the wall clock (the state file's age spans restarts).
    let saved = stepped.c.saved_state().saved_at_s;
    assert_eq!(saved, stepped_wall_s(4_199.0));
}

fn in_setback(c: &Commands) -> bool {
    c.explanation
        .limiters
        .iter()
        .any(|e| e.limiter == Limiter::Setback)
}

#[test]
fn the_schedule_follows_the_stepped_wall_clock_at_once() {
    let cfg = core_config(0, true);
    let mut l = Loop::new(&cfg);
    // UTC+8: 1970-01-01 12:00 local, a Thursday (setback day).
    let thu_1970 = 4.0 * 3600.0;
    // 2026-01-05 00:40 local, a Monday (no setback).
    let mon_2026 = MONDAY_2026_UTC_S - 8.0 * 3600.0 + 40.0 * 60.0;
    let mut mono = 0.0;
    let mut run = |wall0: f64, secs: usize| {
        let mut last = None;
        for k in 0..secs {
            mono += 1.0;
            last = Some(l.step(StepTime {
                mono_s: mono,
                wall_s: wall0 + k as f64,
            }));
        }
        last.unwrap()
    };
    assert!(in_setback(&run(thu_1970, 30)), "Thursday 1970: setback");
    // NTP steps it to today: Monday, no setback, from the first step on.
    assert!(!in_setback(&run(mon_2026, 1)), "Monday 2026: none");
    assert!(!in_setback(&run(mon_2026 + 1.0, 30)));
    // A day ahead: Tuesday.
    assert!(in_setback(&run(mon_2026 + 86_400.0, 1)), "Tuesday: setback");
    // An hour back: Monday 23:40 again.
    assert!(
        !in_setback(&run(mon_2026 + 86_400.0 - 3600.0, 1)),
        "Monday 23:40"
    );
}

// ---- the runtime against the plant simulator ------------------------------------------------

/// Clock seconds per real second (plant and controller).
const SPEED: f64 = 60.0;
/// `[demand] period_s` of the test: the room verdicts are refreshed often.
const DEMAND_PERIOD_S: f64 = 30.0;

/// Everything the runtime logs, as text (the subscriber is global: the runtime's tasks run on
/// several threads).
fn log_buffer() -> Arc<Mutex<Vec<u8>>> {
    static BUF: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUF.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = Arc::clone(&buf);
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || LogWriter(Arc::clone(&writer)))
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        buf
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn set(t: &mut Table, path: &str, v: impl Into<Value>) {
    let mut keys: Vec<&str> = path.split('.').collect();
    let last = keys.pop().expect("a key");
    let mut t = t;
    for k in keys {
        t = t
            .entry(k)
            .or_insert_with(|| Value::Table(Table::new()))
            .as_table_mut()
            .expect("a table");
    }
    t.insert(last.into(), v.into());
}

/// The demo tuning bound to the plant, with a setback on Tuesdays and Thursdays (full depth at
/// any outdoor temperature, no boost) and a short demand period.
fn runtime_config(plant: &Plant, addrs: &heatctl_plant::FaceAddresses) -> config::LoadedConfig {
    let mut base: Table = DEMO_TOML.parse().expect("the demo tuning parses");
    // The plant's outdoor temperature is constant: no frozen-transmitter verdict on it.
    set(&mut base, "signals.t_out.stuck_after_s", 0.0);
    set(&mut base, "demand.period_s", DEMAND_PERIOD_S);
    let schedule: Table = r#"
enabled = true
setback_k = 4.0
periods = [{ days = ["tue", "thu"], start = "00:00", end = "23:59" }]
full_setback_above_c = -30.0
no_setback_below_c = -40.0
boost_k = 0.0
"#
    .parse()
    .expect("a schedule");
    base.insert("schedule".into(), Value::Table(schedule));
    let text = bind_to_plant(&toml::to_string(&base).expect("toml"), plant, addrs);
    let mut cfg: Table = text.parse().expect("the bound configuration parses");
    for l in cfg
        .get_mut("links")
        .and_then(Value::as_array_mut)
        .expect("[[links]]")
        .iter_mut()
        .filter_map(Value::as_table_mut)
    {
        // Real-time Modbus timings: the back-off is not scaled by the clock.
        l.insert("timeout_ms".into(), 500.into());
        l.insert("reconnect_min_ms".into(), 100.into());
        l.insert("reconnect_max_ms".into(), 1000.into());
    }
    let text = toml::to_string(&cfg).expect("toml");
    config::parse_with_maps(&text, Path::new("clock-steps.toml"), &DEVICE_MAPS)
        .unwrap_or_else(|p| panic!("the test configuration is invalid:\n{p}"))
}

/// The snapshots collected so far.
type Snapshots = Arc<Mutex<Vec<Arc<StationSnapshot>>>>;

/// Every snapshot the runtime publishes, in order (a slow reader may miss some; every check
/// scales with the monotonic time between the two snapshots it compares).
fn collect(mut rx: watch::Receiver<Option<Arc<StationSnapshot>>>) -> (Snapshots, JoinHandle<()>) {
    let all = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&all);
    let task = tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            if let Some(s) = rx.borrow_and_update().clone() {
                sink.lock().unwrap().push(s);
            }
        }
    });
    (all, task)
}

/// Wait `clock_s` of monotonic clock time (real sleeps; the clock is the runtime's).
async fn wait_clock(clock: &SteppableClock, clock_s: f64) {
    let until = clock.mono_s() + clock_s;
    while clock.mono_s() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn has_alarm(s: &StationSnapshot, code: AlarmCode) -> bool {
    s.alarms.iter().any(|a| a.code == code)
}

/// Unix seconds of an RFC 3339 UTC time as heatctl logs it (`2026-01-04T16:40:00.000Z`).
fn parse_rfc3339(text: &str) -> f64 {
    let n = |a: usize, b: usize| text[a..b].parse::<i64>().unwrap();
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    // Days from civil (H. Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs: f64 = text[17..23].parse().unwrap();
    (days * 86_400 + n(11, 13) * 3600 + n(14, 16) * 60) as f64 + secs
}

/// The value of `key=` in a log line.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let start = line
        .find(&format!("{key}="))
        .unwrap_or_else(|| panic!("{key} in {line}"));
    let rest = &line[start + key.len() + 1..];
    rest.split_whitespace().next().unwrap()
}

#[test]
fn the_runtime_keeps_controlling_across_wall_clock_steps() {
    let logs = log_buffer();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run_against_the_plant(&logs));
}

async fn run_against_the_plant(logs: &Mutex<Vec<u8>>) {
    let mut sc = Scenario::shipped("closed-demo").expect("the closed-demo scenario");
    sc.weather.constant_outdoor_c = Some(-5.0);
    let plant = Plant::new(&sc).expect("plant");
    let server = heatctl_plant::serve_with(plant, ServeOptions::at_speed(SPEED))
        .await
        .expect("the plant is served");
    let shared = server.plant();
    let addrs = server.addresses().clone();
    let loaded = {
        let p = lock(&shared);
        runtime_config(&p, &addrs)
    };
    let valve_rate_pct_per_s = loaded.config.valve1.max_rate_pct_per_s;
    let sp_rate_k_per_s = loaded
        .config
        .limits
        .rate
        .max_rise_k_per_min
        .max(loaded.config.limits.rate.max_fall_k_per_min)
        / 60.0;
    let demand_rate_k_per_s = loaded.config.demand.max_rate_k_per_h / 3600.0;

    // Boots at 1970-01-01 12:00 local (UTC+8), a Thursday; the clock is not synchronised.
    let thu_1970 = 4.0 * 3600.0;
    let clock = Arc::new(SteppableClock::starting_at(thu_1970, SPEED));
    clock.set_synced(Some(false));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (snap_tx, snap_rx) = watch::channel(None);
    let (snaps, collector) = collect(snap_rx);
    let controller = tokio::spawn(runtime::run_embedded(
        RunOptions {
            config_path: loaded.path.clone(),
            dry_run: false,
            clock: Arc::clone(&clock) as Arc<dyn Clock>,
            state_path: None,
            state_dir: None,
        },
        Embedding {
            loaded,
            stop: stop_rx,
            snapshots: snap_tx,
        },
    ));

    // Warm up: the loop runs, every device answers, the demand correction has run.
    let limit = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = snaps.lock().unwrap().last().is_some_and(|s| {
            s.explanation.heating_on
                && s.lost_devices().is_empty()
                && s.rooms.nodes.iter().filter(|n| n.state == "used").count() * 2
                    > s.rooms.nodes.len()
        });
        if ready {
            break;
        }
        assert!(Instant::now() < limit, "the loop never got going");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_clock(&clock, 2.0 * DEMAND_PERIOD_S).await;
    let warm_from = snaps.lock().unwrap().len();
    wait_clock(&clock, DEMAND_PERIOD_S).await;

    // NTP steps it to today: 2026-01-05 00:40 local, a Monday; synchronised from now on.
    let mon_2026 = MONDAY_2026_UTC_S - 8.0 * 3600.0 + 40.0 * 60.0;
    let from_1970 = clock.wall_s();
    clock.set_wall(mon_2026);
    clock.set_synced(Some(true));
    wait_clock(&clock, 2.0 * DEMAND_PERIOD_S).await;
    // An operator moves it a day ahead (Tuesday 00:41)...
    let before_day = clock.wall_s();
    clock.step_wall_by(86_400.0);
    wait_clock(&clock, 2.0 * DEMAND_PERIOD_S).await;
    // ...and back an hour (Monday 23:42).
    let before_hour = clock.wall_s();
    clock.step_wall_by(-3600.0);
    wait_clock(&clock, 2.0 * DEMAND_PERIOD_S).await;

    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(20), controller).await;
    collector.abort();
    server.shutdown().await;

    let all = snaps.lock().unwrap().clone();
    let run = &all[warm_from..];
    assert!(run.len() > 100, "{} snapshots", run.len());

    // Each step is seen in exactly one pair of snapshots, and only there (checked after the
    // invariants below, which hold whether a step is seen or not).
    let steps: Vec<usize> = (1..run.len())
        .filter(|&i| {
            let (a, b) = (&run[i - 1].clock, &run[i].clock);
            ((b.clock_unix_s - a.clock_unix_s) - (b.mono_s - a.mono_s)).abs() > 5.0
        })
        .collect();
    let mut used_before = 0;
    for i in 1..run.len() {
        let (a, b) = (&run[i - 1], &run[i]);
        // No reading is old or jumped, before, across or after a step.
        for m in &b.measurements {
            if let Some(age) = m.age_s {
                assert!(
                    (0.0..120.0).contains(&age),
                    "{:?} aged {age} s at {i}",
                    m.signal
                );
            }
        }
        for r in &b.explanation.rejected {
            assert!(
                !matches!(r.reason, Rejection::Stale | Rejection::Jump),
                "{r:?} at snapshot {i}"
            );
        }
        for n in &b.rooms.nodes {
            assert!(
                n.state != "stale" && n.state != "jump",
                "{} {} at {i}",
                n.id,
                n.state
            );
            if let Some(age) = n.age_s {
                assert!(
                    (0.0..300.0).contains(&age),
                    "room {} aged {age} s at {i}",
                    n.id
                );
            }
        }
        let dt = b.clock.mono_s - a.clock.mono_s;
        assert!(dt > 0.0 && dt < 30.0, "monotonic time runs on: {dt} at {i}");
        // Integrators and rate limiters move no more than the monotonic time allows.
        let dv = (b.commands.valve1_cmd_pct - a.commands.valve1_cmd_pct).abs();
        assert!(
            dv <= valve_rate_pct_per_s * dt + 1e-6,
            "valve moved {dv} % in {dt} s at {i}"
        );
        if let (Some(x), Some(y)) = (a.explanation.setpoint_c, b.explanation.setpoint_c) {
            let d = (y - x).abs();
            assert!(
                d <= sp_rate_k_per_s * dt + 1e-6,
                "setpoint moved {d} K in {dt} s at {i}"
            );
        }
        let ds = (b.explanation.demand_shift_k - a.explanation.demand_shift_k).abs();
        assert!(
            ds <= demand_rate_k_per_s * (dt + DEMAND_PERIOD_S) + 1e-6,
            "demand shift moved {ds} K in {dt} s at {i}"
        );
        if steps.contains(&i) {
            let used =
                |s: &StationSnapshot| s.rooms.nodes.iter().filter(|n| n.state == "used").count();
            used_before = used_before.max(used(a));
            assert!(has_alarm(b, AlarmCode::WallClockStepped), "701 at step {i}");
            assert!(b.explanation.heating_on && b.lost_devices().is_empty());
        }
    }
    assert_eq!(steps.len(), 3, "steps at {steps:?}");
    assert!(used_before > 0);
    assert!(
        !has_alarm(&run[0], AlarmCode::WallClockStepped),
        "no alarm before the first step"
    );

    // The schedule follows the new wall time: Thursday, Monday, Tuesday, Monday.
    let setback = |s: &StationSnapshot| {
        s.explanation
            .limiters
            .iter()
            .any(|e| e.limiter == Limiter::Setback)
    };
    let phases = [
        (0, steps[0], true, "Thursday 1970"),
        (steps[0], steps[1], false, "Monday 2026"),
        (steps[1], steps[2], true, "Tuesday"),
        (steps[2], run.len(), false, "Monday 23:40"),
    ];
    for (from, to, want, what) in phases {
        for s in &run[from..to] {
            assert_eq!(setback(s), want, "{what} at wall {}", s.clock.clock_unix_s);
        }
    }
    // The trends (kept on monotonic time, dated when served) of every snapshot of the run:
    // in order, and each row as far back from the last snapshot as it was recorded, the rows
    // of 1970 included.
    let trends = Trends::new(1);
    let mut recorded: Vec<&StationSnapshot> = Vec::new();
    for s in &all {
        if trends.offer(s) {
            recorded.push(s);
        }
    }
    let last = all.last().unwrap();
    let served = trends.columns(None).times_unix_s();
    assert_eq!(served.len(), recorded.len());
    assert!(served.len() >= 4, "{served:?}");
    assert!(served.windows(2).all(|w| w[0] < w[1]), "{served:?}");
    for (t, s) in served.iter().zip(&recorded) {
        let expected = last.clock.clock_unix_s - (last.clock.mono_s - s.clock.mono_s);
        assert!((t - expected).abs() <= 0.5, "{t} for {expected}");
    }
    let in_1970 = recorded
        .iter()
        .zip(&served)
        .filter(|(s, t)| s.clock.clock_unix_s < 1e9 && **t > MONDAY_2026_UTC_S - 86_400.0)
        .count();
    assert!(
        in_1970 >= 1,
        "rows recorded in 1970 are served at today's time"
    );

    // The synchronisation flag the clock reports reaches the snapshot.
    assert_eq!(run[0].clock.synced, Some(false));
    assert_eq!(run.last().unwrap().clock.synced, Some(true));

    // Each step logged once at warn level, with the old and the new wall time.
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("wall clock stepped") && l.contains("old_wall="))
        .collect();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    for (line, (old, new)) in lines.iter().zip([
        (from_1970, mon_2026),
        (before_day, before_day + 86_400.0),
        (before_hour, before_hour - 3600.0),
    ]) {
        assert!(line.contains("WARN"), "{line}");
        // The detector sees the step at the next cycle: a few clock seconds after the test.
        let logged_old = parse_rfc3339(field(line, "old_wall"));
        let logged_new = parse_rfc3339(field(line, "new_wall"));
        assert!((0.0..5.0).contains(&(logged_old - old)), "{old} {line}");
        assert!((0.0..5.0).contains(&(logged_new - new)), "{new} {line}");
    }
    assert!(
        text.lines()
            .any(|l| l.contains("alarm raised") && l.contains("701")),
        "alarm 701 logged"
    );
}
