//! Closed-loop tests (issue 5, item 3): the release `heatctl` binary runs as a child process
//! against the plant simulator served in this process, over Modbus TCP and RTU over TCP on
//! loopback, both at the same accelerated clock.
//!
//! * The child's configuration is `heatctl::demo::DEMO_TOML` (the demo tuning), varied per test,
//!   bound to the served plant by `heatctl::demo::write_rig_files`.
//! * Ground truth (secondary supply, valve command and position, every flat's air temperature,
//!   household valves) is read from the plant under its lock; the controller's own view
//!   (setpoint, shifts, supervisor, alarms, room statistics) from its SCADA slave, read with
//!   tokio-modbus; reload outcomes from its log (`<scratch dir>/heatctl.log`, its stderr).
//! * Every time in an assertion is simulated time (the plant's clock); no wall-clock duration is
//!   asserted. Wall-clock limits only stop a hung test.
//! * The tests run one at a time ([`SERIAL`]): each one keeps the two cores busy.
//! * Scenarios: `hil-tests/scenarios/closed-demo.toml` (the demo's 4 x 60 flats) and
//!   `closed-scale.toml` (8 x 247 flats), with the outdoor temperature and faults set per test.
//!
//! Needs `target/release/heatctl`: `cargo build --release -p heatctl` first (a missing binary
//! fails every test with that hint).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use heatctl::demo::{DEMO_TOML, write_rig_files};
use heatctl_hil::rig::{Heatctl, RigDir, Signal, free_port, heatctl_binary, log_text};
use heatctl_plant::serve::lock;
use heatctl_plant::{Fault, FaultKind, FaultTarget, PlantServer, Scenario, SharedPlant, serve};
use tokio_modbus::client::{Context, Reader, Writer};
use tokio_modbus::prelude::Slave;
use toml::{Table, Value};

/// One test at a time: a rig alone at [`SPEED_LONG`] keeps both cores busy (heatctl one, the
/// plant and the observer the other), and a test that compares two runs runs two rigs side by
/// side at [`SPEED`].
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Run an async test body on its own runtime (two workers: the plant's time base and faces,
/// the SCADA client).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

const H: f64 = 3600.0;

/// Acceleration of the runs: one simulated hour in 5 s. heatctl cycles every max(1 clock-second,
/// 1 ms real), and its poller, when the next read is due in less than a millisecond, polls again
/// at once instead of sleeping: the substation I/O's one-second points make that happen above
/// about 800x, where heatctl takes a whole core (measured on the demo plant: 40 % of a core at
/// 600-750x, 100 % at 1200x and above). At 720x a control cycle is 1.4 ms of wall time and a rig
/// takes about half a core, so two rigs fit side by side. Every test checks that its rig stayed
/// healthy: no safe position and no silent device outside its own fault.
const SPEED: f64 = 720.0;

/// Acceleration of the longest runs with one rig alone (the design day, the 12-hour gateway
/// outage): the demo's default, a simulated day in a minute. heatctl's poller takes a core here;
/// the plant and the observer have the other. The design day gives the same figures as at 720x
/// (apartment-hours below 18 °C 0.81 % both, worst tracking 0.47 K against 0.42 K).
const SPEED_LONG: f64 = 1440.0;

// ---------------------------------------------------------------------------------------------
// Configuration and scenario helpers

/// Set `path` ("a.b.c") in a TOML table, creating the tables on the way.
fn set(t: &mut Table, path: &str, v: impl Into<Value>) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().expect("non-empty path");
    let mut cur = t;
    for p in parts {
        cur = cur
            .entry(p)
            .or_insert_with(|| Value::Table(Table::new()))
            .as_table_mut()
            .unwrap_or_else(|| panic!("{p} is not a table"));
    }
    cur.insert(last.to_owned(), v.into());
}

fn get_f64(t: &Table, path: &str) -> f64 {
    let mut v: &Value = t
        .get(path.split('.').next().expect("path"))
        .unwrap_or_else(|| panic!("{path} missing"));
    for p in path.split('.').skip(1) {
        v = v.get(p).unwrap_or_else(|| panic!("{path} missing"));
    }
    v.as_float()
        .or_else(|| v.as_integer().map(|i| i as f64))
        .unwrap_or_else(|| panic!("{path} is not a number"))
}

/// The demo tuning as a table (each test varies it).
fn demo_base() -> Table {
    DEMO_TOML.parse().expect("DEMO_TOML parses")
}

/// A shipped closed-loop scenario (`hil-tests/scenarios/closed-<name>.toml`) at a constant
/// outdoor temperature.
fn scenario(name: &str, outdoor_c: f64) -> Scenario {
    let mut s = Scenario::shipped(&format!("closed-{name}"))
        .unwrap_or_else(|e| panic!("scenario closed-{name}: {e}"));
    s.weather.constant_outdoor_c = Some(outdoor_c);
    s
}

fn fault(kind: FaultKind, target: &str, start_h: f64, duration_h: f64) -> Fault {
    Fault {
        kind,
        target: FaultTarget::parse(target).unwrap_or_else(|| panic!("fault target {target}")),
        start_s: start_h * H,
        end_s: (start_h + duration_h) * H,
        drift_per_h: 0.0,
        jump: 0.0,
        delay_ms: 0,
    }
}

/// Apartments that have a room node, in the plant's node order.
fn node_apartments(sc: &Scenario) -> Vec<usize> {
    let p = heatctl_plant::Plant::new(sc).expect("plant");
    (0..p.room_node_count())
        .filter_map(|k| p.room_node(k))
        .map(|r| r.apartment)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// What the controller shows on SCADA

/// Input registers 0..52 of heatctl's SCADA slave (`heatctl scada-map`).
#[derive(Debug, Clone)]
struct Scada(Vec<u16>);

impl Scada {
    const LEN: u16 = 52;

    fn tenths(&self, a: usize) -> Option<f64> {
        let r = self.0[a] as i16;
        (r != i16::MIN).then(|| f64::from(r) / 10.0)
    }
    fn setpoint_c(&self) -> Option<f64> {
        self.tenths(10)
    }
    fn base_shift_k(&self) -> Option<f64> {
        self.tenths(12)
    }
    fn demand_shift_k(&self) -> Option<f64> {
        self.tenths(13)
    }
    fn supervisor(&self) -> u16 {
        self.0[16]
    }
    fn rooms_expected(&self) -> u16 {
        self.0[20]
    }
    fn rooms_used(&self) -> u16 {
        self.0[21]
    }
    fn outdoor_used_c(&self) -> Option<f64> {
        self.tenths(24)
    }
    fn alarms(&self) -> Vec<u16> {
        let n = usize::from(self.0[30]).min(16);
        self.0[31..31 + n].to_vec()
    }
    fn has_alarm(&self, code: u16) -> bool {
        self.alarms().contains(&code)
    }
    fn devices_total(&self) -> u16 {
        self.0[50]
    }
    fn devices_lost(&self) -> u16 {
        self.0[51]
    }
}

/// Alarm numbers (controller/src/control/commands.rs).
const A_OUTDOOR_LOST: u16 = 101;
const A_OUTDOOR_FALLBACK: u16 = 102;
const A_T2_LOST: u16 = 103;
const A_QUORUM_LOST: u16 = 201;
const A_ROOMS_INVALID: u16 = 202;
const A_COMM_LOST: u16 = 501;
const A_WRITE_FAILED: u16 = 502;
/// SCADA supervisor codes.
const SUP_NONE: u16 = 0;
const SUP_HOLD: u16 = 1;
const SUP_SAFE: u16 = 2;

// ---------------------------------------------------------------------------------------------
// The rig

/// One observation: plant ground truth and, when the slave answered, heatctl's SCADA image.
#[derive(Debug, Clone)]
struct Record {
    /// Plant time, s.
    t_s: f64,
    /// Wall time since the rig started, s (times the speed: heatctl's clock-seconds).
    wall_s: f64,
    /// Secondary supply at the exchanger, °C (truth).
    t_s2_c: f64,
    /// Primary valve command as the plant holds it (the last value written), %.
    valve1_cmd_pct: f64,
    /// Primary valve position, %.
    valve1_pos_pct: f64,
    /// Share of all flats whose air is below 18 °C.
    below_18_share: f64,
    /// Room-node readings as the plant publishes them (faults applied), node order; only when
    /// the rig records them.
    nodes_c: Vec<Option<f64>>,
    /// heatctl's SCADA input registers.
    scada: Option<Scada>,
}

struct Rig {
    name: String,
    // Dropped in this order: the child first, the directory (log kept on failure) last.
    heatctl: Option<Heatctl>,
    client: Option<Context>,
    server: PlantServer,
    plant: SharedPlant,
    binary: PathBuf,
    speed: f64,
    config_path: PathBuf,
    state_path: PathBuf,
    scada_addr: SocketAddr,
    records: Vec<Record>,
    started: Instant,
    sample_every: Duration,
    record_nodes: bool,
    /// The child is expected to have ended (after a signal).
    exit_expected: bool,
    dir: RigDir,
}

impl Rig {
    /// Serve `scenario` at `speed`, write heatctl's configuration from `base` (SCADA turned on at
    /// a free port, curve shift writable), start heatctl and connect to its SCADA slave.
    async fn start(name: &str, scenario: &Scenario, base: Table, speed: f64) -> Rig {
        Rig::start_with(name, scenario, base, speed, |_| {}).await
    }

    /// [`Rig::start`], with `edit` applied to the generated configuration (links, nodes) before
    /// heatctl starts.
    async fn start_with(
        name: &str,
        scenario: &Scenario,
        mut base: Table,
        speed: f64,
        edit: impl FnOnce(&mut Table),
    ) -> Rig {
        let binary = heatctl_binary().unwrap_or_else(|m| panic!("{m}"));
        let dir = RigDir::new(name).expect("scratch directory");
        let server = serve(scenario, speed).await.expect("serve the plant");
        let plant = server.plant();
        let port = free_port().expect("free port");
        let scada_addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        set(&mut base, "scada.enabled", true);
        set(&mut base, "scada.listen", scada_addr.to_string());
        set(
            &mut base,
            "scada.writable",
            Value::Array(vec!["curve_shift_k".into(), "room_target_c".into()]),
        );
        let base_text = toml::to_string(&base).expect("base serialises");
        let config_path = {
            let p = lock(&plant);
            write_rig_files(dir.path(), &base_text, &p, server.addresses())
                .expect("write the rig configuration")
        };
        let mut generated: Table = std::fs::read_to_string(&config_path)
            .expect("read the generated configuration")
            .parse()
            .expect("the generated configuration parses");
        edit(&mut generated);
        std::fs::write(
            &config_path,
            toml::to_string(&generated).expect("configuration serialises"),
        )
        .expect("write the configuration");
        let state_path = dir.path().join("state.toml");
        let mut rig = Rig {
            name: name.to_owned(),
            heatctl: None,
            client: None,
            server,
            plant,
            binary,
            speed,
            config_path,
            state_path,
            scada_addr,
            records: Vec::new(),
            started: Instant::now(),
            sample_every: Duration::from_millis(20),
            record_nodes: false,
            exit_expected: false,
            dir,
        };
        rig.spawn().await;
        rig
    }

    /// Start (or restart) heatctl and wait until its SCADA slave answers.
    async fn spawn(&mut self) {
        let args: Vec<String> = vec![
            "run".into(),
            "--config".into(),
            self.config_path.display().to_string(),
            "--clock-speed".into(),
            format!("{}", self.speed),
            "--state-file".into(),
            self.state_path.display().to_string(),
        ];
        self.heatctl =
            Some(Heatctl::start(&self.binary, &args, &self.dir.log_path()).expect("start heatctl"));
        self.exit_expected = false;
        self.client = None;
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.read_scada().await.is_none() {
            self.check_alive();
            assert!(
                Instant::now() < deadline,
                "heatctl's SCADA slave at {} never answered",
                self.scada_addr
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn heatctl(&mut self) -> &mut Heatctl {
        self.heatctl.as_mut().expect("heatctl started")
    }

    fn check_alive(&mut self) {
        if self.exit_expected {
            return;
        }
        if let Some(status) = self.heatctl().exit_status().expect("query child") {
            panic!("heatctl exited unexpectedly: {status}");
        }
    }

    async fn read_scada(&mut self) -> Option<Scada> {
        if self.client.is_none() {
            let c = tokio::time::timeout(
                Duration::from_millis(500),
                tokio_modbus::client::tcp::connect_slave(self.scada_addr, Slave(1)),
            )
            .await;
            self.client = match c {
                Ok(Ok(c)) => Some(c),
                _ => return None,
            };
        }
        let ctx = self.client.as_mut()?;
        let r = tokio::time::timeout(
            Duration::from_millis(1000),
            ctx.read_input_registers(0, Scada::LEN),
        )
        .await;
        match r {
            // Alarm count 0xFFFF: no cycle published yet.
            Ok(Ok(Ok(regs))) if regs.len() == usize::from(Scada::LEN) => {
                (regs[30] != 0xFFFF).then_some(Scada(regs))
            }
            _ => {
                self.client = None;
                None
            }
        }
    }

    /// Write one SCADA holding register.
    async fn write_scada(&mut self, addr: u16, value: u16) {
        for _ in 0..50 {
            if let Some(ctx) = self.client.as_mut() {
                let r = tokio::time::timeout(
                    Duration::from_millis(1000),
                    ctx.write_single_register(addr, value),
                )
                .await;
                match r {
                    Ok(Ok(Ok(()))) => return,
                    Ok(Ok(Err(e))) => panic!("SCADA refused the write to {addr}: {e:?}"),
                    _ => self.client = None,
                }
            }
            let _ = self.read_scada().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("SCADA write to holding {addr} never succeeded");
    }

    fn plant_time_s(&self) -> f64 {
        lock(&self.plant).time_s()
    }

    /// Take one observation.
    async fn sample(&mut self) {
        let mut rec = {
            let p = lock(&self.plant);
            let truth = p.truth();
            let air = p.apartment_air_c();
            let below = air.iter().filter(|&&t| t < 18.0).count();
            Record {
                t_s: p.time_s(),
                wall_s: self.started.elapsed().as_secs_f64(),
                t_s2_c: truth.t_s2_c,
                valve1_cmd_pct: truth.valve1_cmd_pct,
                valve1_pos_pct: truth.valve1_pos_pct,
                below_18_share: below as f64 / air.len().max(1) as f64,
                nodes_c: if self.record_nodes {
                    (0..p.room_node_count())
                        .map(|k| p.room_node(k).and_then(|r| r.temperature_c))
                        .collect()
                } else {
                    Vec::new()
                },
                scada: None,
            }
        };
        self.check_alive();
        if !self.exit_expected {
            rec.scada = self.read_scada().await;
        }
        self.records.push(rec);
    }

    /// Observe until the plant's clock reaches `until_s`.
    async fn run_until(&mut self, until_s: f64) {
        let remaining_s = (until_s - self.plant_time_s()).max(0.0);
        // Only a guard against a hung test: five times the nominal wall time, plus 30 s.
        let limit = Duration::from_secs_f64(5.0 * remaining_s / self.speed + 30.0);
        let deadline = Instant::now() + limit;
        loop {
            self.sample().await;
            if self.records.last().is_some_and(|r| r.t_s >= until_s) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the plant did not reach {:.2} h within {limit:?} (at {:.2} h): rig overloaded?",
                until_s / H,
                self.plant_time_s() / H
            );
            tokio::time::sleep(self.sample_every).await;
        }
    }

    /// Records with SCADA data in `[from_s, to_s)`.
    fn window(&self, from_s: f64, to_s: f64) -> impl Iterator<Item = (&Record, &Scada)> {
        self.records
            .iter()
            .filter(move |r| r.t_s >= from_s && r.t_s < to_s)
            .filter_map(|r| r.scada.as_ref().map(|s| (r, s)))
    }

    /// Keep observing until the log, from byte `from` on, contains `needle` (a wall-clock guard
    /// only stops a hung test).
    async fn wait_log(&mut self, from: usize, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.log().get(from..).is_some_and(|l| l.contains(needle)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: the log never said `{needle}`",
                self.name
            );
            self.sample().await;
            tokio::time::sleep(self.sample_every).await;
        }
    }

    fn log(&self) -> String {
        log_text(&self.dir.log_path())
    }

    /// Stop heatctl with SIGTERM and wait for its exit (wall-clock guard only).
    fn terminate(&mut self) -> std::process::ExitStatus {
        self.exit_expected = true;
        self.client = None;
        let h = self.heatctl();
        h.signal(Signal::Term).expect("SIGTERM");
        h.wait_exit(Duration::from_secs(30))
            .expect("wait")
            .expect("heatctl ended after SIGTERM")
    }

    async fn finish(mut self) {
        if let Some(mut h) = self.heatctl.take() {
            h.kill_now();
        }
        self.client = None;
        self.server.shutdown().await;
    }
}

/// Linear interpolation of `f` over a record series at time `t_s`.
fn interpolate(records: &[Record], t_s: f64, f: impl Fn(&Record) -> Option<f64>) -> Option<f64> {
    let pts: Vec<(f64, f64)> = records
        .iter()
        .filter_map(|r| f(r).map(|v| (r.t_s, v)))
        .collect();
    let i = pts.partition_point(|p| p.0 <= t_s);
    if i == 0 || i == pts.len() {
        return None;
    }
    let (a, b) = (pts[i - 1], pts[i]);
    if b.0 - a.0 <= 0.0 {
        return Some(a.1);
    }
    Some(a.1 + (b.1 - a.1) * (t_s - a.0) / (b.0 - a.0))
}

// ---------------------------------------------------------------------------------------------
// Shared checks

/// A base for constant weather: the demo tuning with the outdoor sensor's stuck check off. The
/// plant's constant outdoor temperature never changes, which heatctl rightly takes for a frozen
/// transmitter after `[signals.t_out] stuck_after_s` (12 h) and then uses the fallback; real
/// weather never stays within 0.01 K for 12 hours.
fn constant_weather_base() -> Table {
    let mut b = demo_base();
    set(&mut b, "signals.t_out.stuck_after_s", 0.0);
    b
}

/// The rig stayed healthy over `[from_s, to_s)`: the supervisor never drove the valve to its safe
/// position and no device stopped answering or refused a write (alarms 501, 502). A stall of the
/// machine longer than the secondary supply's max age (10 clock-seconds) makes heatctl hold the
/// valve for a moment (alarm 103), which is its configured reaction, not a rig failure; those
/// holds are counted and printed.
fn assert_healthy(rig: &Rig, from_s: f64, to_s: f64) {
    let mut holds = 0;
    let mut in_hold = false;
    for (r, s) in rig.window(from_s, to_s) {
        assert!(
            s.supervisor() != SUP_SAFE,
            "{}: supervisor at the safe position at {:.3} h without a fault there (alarms {:?})",
            rig.name,
            r.t_s / H,
            s.alarms()
        );
        for c in [A_COMM_LOST, A_WRITE_FAILED] {
            assert!(
                !s.has_alarm(c),
                "{}: alarm {c} at {:.3} h without a fault there (alarms {:?})",
                rig.name,
                r.t_s / H,
                s.alarms()
            );
        }
        let hold = s.has_alarm(A_T2_LOST);
        if hold && !in_hold {
            holds += 1;
        }
        in_hold = hold;
    }
    if holds > 0 {
        eprintln!(
            "{}: {holds} short hold(s) on a stale secondary supply between {:.2} h and {:.2} h",
            rig.name,
            from_s / H,
            to_s / H
        );
    }
}

/// Range (max - min) of the primary valve command the plant received over `[from_s, to_s)`.
fn valve_range_pct(rig: &Rig, from_s: f64, to_s: f64) -> f64 {
    let (lo, hi) = rig
        .records
        .iter()
        .filter(|r| r.t_s >= from_s && r.t_s < to_s)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| {
            (lo.min(r.valve1_cmd_pct), hi.max(r.valve1_cmd_pct))
        });
    hi - lo
}

/// How many SCADA observations fall in a window (every window check must see some).
fn count(rig: &Rig, from_s: f64, to_s: f64) -> usize {
    rig.window(from_s, to_s).count()
}

/// Slack for "the controller noticed", simulated seconds: a substation point is polled every
/// 1-10 s, the controller cycles every second, and the rig observes every 20 ms real (14 s).
const NOTICE_S: f64 = 60.0;

// ---------------------------------------------------------------------------------------------
// The tests

/// Cold start on a design day (-17 °C all day, the primary valve closed, rooms at 20 °C):
/// after the first two hours the secondary supply stays within 2 K of heatctl's setpoint, and
/// over the second day fewer than 2 % of the apartment-hours are below 18 °C (every flat, ground
/// truth from the plant).
#[test]
fn cold_start_on_a_design_day() {
    let _serial = serial();
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
            let e = (r.t_s2_c - sp).abs();
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

/// The outdoor sensor reads its sentinel for 6 hours. heatctl raises alarm 101 at once, holds
/// the last good value for `hold_last_good_s`, then uses `fallback_c` (alarm 102, visible as the
/// outdoor temperature it uses), and clears both when the sensor returns. The primary valve
/// swings no more than in the same hours of the same plant without the fault (run side by side).
#[test]
fn outdoor_sensor_lost_for_six_hours() {
    let _serial = serial();
    block_on(async {
        let outdoor_c = -10.0;
        // Half a kelvin from the real outdoor temperature: the fallback shows in the outdoor
        // temperature heatctl uses (tenths on SCADA), and moves the curve input by about 0.3 K
        // (composite weight 0.5, the damped value moving a quarter of the way in 6 h with the
        // 20 h constant).
        let fallback_c = -9.5;
        let hold_s = 3600.0;
        let (f0, f1, end) = (2.0 * H, 8.0 * H, 9.0 * H);
        let clean_sc = scenario("demo", outdoor_c);
        let mut fault_sc = clean_sc.clone();
        fault_sc.faults.push(fault(
            FaultKind::SensorSentinel,
            "t_out",
            f0 / H,
            (f1 - f0) / H,
        ));
        let mut base = constant_weather_base();
        set(&mut base, "outdoor.fallback_c", fallback_c);
        set(&mut base, "outdoor.hold_last_good_s", hold_s);
        let clear_s = 60.0; // [safety] alarm_clear_delay_s, the default
        let (mut clean, mut lost) = tokio::join!(
            Rig::start("t-out-clean", &clean_sc, base.clone(), SPEED),
            Rig::start("t-out-lost", &fault_sc, base, SPEED)
        );
        tokio::join!(clean.run_until(end), lost.run_until(end));

        // Held: alarm 101, the last good value in use.
        let held = (f0 + NOTICE_S, f0 + hold_s - NOTICE_S);
        assert!(count(&lost, held.0, held.1) > 20);
        for (r, s) in lost.window(held.0, held.1) {
            assert!(
                s.has_alarm(A_OUTDOOR_LOST),
                "no alarm 101 at {:.2} h",
                r.t_s / H
            );
            assert!(!s.has_alarm(A_OUTDOOR_FALLBACK), "102 during the hold");
            assert_eq!(
                s.outdoor_used_c(),
                Some(outdoor_c),
                "held value at {:.2} h",
                r.t_s / H
            );
        }
        // Fallback: alarm 102, fallback_c in use, until the sensor returns.
        let fb = (f0 + hold_s + NOTICE_S, f1);
        assert!(count(&lost, fb.0, fb.1) > 20);
        for (r, s) in lost.window(fb.0, fb.1) {
            assert!(
                s.has_alarm(A_OUTDOOR_LOST) && s.has_alarm(A_OUTDOOR_FALLBACK),
                "alarms {:?} at {:.2} h",
                s.alarms(),
                r.t_s / H
            );
            assert_eq!(
                s.outdoor_used_c(),
                Some(fallback_c),
                "fallback at {:.2} h",
                r.t_s / H
            );
        }
        // Back: both alarms cleared, the measured value in use.
        let back = (f1 + NOTICE_S + clear_s, end);
        assert!(count(&lost, back.0, back.1) > 20);
        for (r, s) in lost.window(back.0, back.1) {
            assert!(
                !s.has_alarm(A_OUTDOOR_LOST) && !s.has_alarm(A_OUTDOOR_FALLBACK),
                "alarms {:?} at {:.2} h after the sensor returned",
                s.alarms(),
                r.t_s / H
            );
            assert_eq!(s.outdoor_used_c(), Some(outdoor_c));
        }
        // The valve: no swing beyond the clean run's over the fault and one hour after it.
        let swing_lost = valve_range_pct(&lost, f0, end);
        let swing_clean = valve_range_pct(&clean, f0, end);
        eprintln!(
            "valve range {:.2} h..{:.2} h: without fault {swing_clean:.2} %, outdoor sensor lost {swing_lost:.2} %",
            f0 / H,
            end / H
        );
        assert!(
            swing_lost <= swing_clean + VALVE_SWING_MARGIN_PCT,
            "valve range {swing_lost:.2} % with the sensor lost, {swing_clean:.2} % without"
        );
        for rig in [&clean, &lost] {
            assert_healthy(rig, 0.1 * H, end);
        }
        clean.finish().await;
        lost.finish().await;
    });
}

/// Margin of the valve-swing comparison, percentage points. The fallback, half a kelvin above
/// the real outdoor temperature, lowers the setpoint by about half a kelvin (curve slope about
/// 1.5 K/K times the composite's share), which moves the valve's steady position by about half a
/// point at this load; measured: 4.5 % without the fault, 5.0 % with it (5.1-5.6 % with a fallback
/// 1 K off). A real swing (an oscillation, a bump when hold, fallback and measured value take
/// turns, or a sentinel reaching the curve) is larger.
const VALVE_SWING_MARGIN_PCT: f64 = 2.0;

/// The secondary supply sensor reads its sentinel for half an hour. heatctl raises alarm 103,
/// holds the valve command for `[safety] t2_lost_hold_s`, then commands `valve1_safe_pct`: the
/// plant's valve command is the safe value no earlier and no later than the configured time
/// (within the poll and cycle slack), and its position follows at the actuator's stroke speed.
/// When the sensor returns, control resumes.
#[test]
fn secondary_supply_sensor_lost() {
    let _serial = serial();
    block_on(async {
        // Slower than the long runs, so the hold time is seen to within a few seconds.
        let speed = 240.0;
        let hold_s = 120.0;
        let safe_pct = 15.0;
        let (f0, f1, end) = (1.0 * H, 1.5 * H, 1.75 * H);
        let mut sc = scenario("demo", -10.0);
        sc.faults.push(fault(
            FaultKind::SensorSentinel,
            "t2_supply",
            f0 / H,
            (f1 - f0) / H,
        ));
        let mut base = constant_weather_base();
        set(&mut base, "safety.t2_lost_hold_s", hold_s);
        set(&mut base, "safety.valve1_safe_pct", safe_pct);
        let mut rig = Rig::start("t2-lost", &sc, base, speed).await;
        rig.sample_every = Duration::from_millis(5);
        rig.run_until(end).await;

        // Noticed within: a poll (1 s), a cycle (1 s), the write, one observation (1.2 s), and
        // a margin for a loaded host (15 s is 60 ms of wall time here).
        let notice_s = 15.0;
        let before = rig
            .records
            .iter()
            .rev()
            .find(|r| r.t_s < f0)
            .expect("observed before the fault")
            .valve1_cmd_pct;
        assert!(
            (before - safe_pct).abs() > 10.0,
            "the valve ({before:.1} %) must be away from its safe position for this test"
        );
        // Hold: the command does not move, supervisor "hold", alarm 103.
        let hold: Vec<&Record> = rig
            .records
            .iter()
            .filter(|r| r.t_s >= f0 + notice_s && r.t_s < f0 + hold_s - notice_s)
            .collect();
        assert!(hold.len() > 20, "observations in the hold: {}", hold.len());
        let held = hold[0].valve1_cmd_pct;
        for r in &hold {
            assert!(
                (r.valve1_cmd_pct - held).abs() < 0.05,
                "valve command moved during the hold: {:.1} % at {:.4} h (held {held:.1} %)",
                r.valve1_cmd_pct,
                r.t_s / H
            );
            if let Some(s) = &r.scada {
                assert_eq!(s.supervisor(), SUP_HOLD, "supervisor at {:.4} h", r.t_s / H);
                assert!(s.has_alarm(A_T2_LOST), "alarm 103 at {:.4} h", r.t_s / H);
            }
        }
        // Safe position: commanded within the configured time, not before.
        let t_safe = rig
            .records
            .iter()
            .find(|r| r.t_s >= f0 && (r.valve1_cmd_pct - safe_pct).abs() < 0.05)
            .map(|r| r.t_s)
            .expect("the valve was commanded to its safe position");
        let after_s = t_safe - f0;
        eprintln!(
            "t2 lost: safe position commanded {after_s:.1} s after the fault (hold {hold_s} s)"
        );
        assert!(
            after_s >= hold_s - notice_s && after_s <= hold_s + notice_s,
            "safe position commanded {after_s:.1} s after the sensor was lost; configured hold {hold_s} s"
        );
        for r in rig.records.iter().filter(|r| r.t_s >= t_safe && r.t_s < f1) {
            assert!(
                (r.valve1_cmd_pct - safe_pct).abs() < 0.05,
                "valve command {:.1} % at {:.4} h while the sensor is lost",
                r.valve1_cmd_pct,
                r.t_s / H
            );
            if let Some(s) = &r.scada {
                assert_eq!(s.supervisor(), SUP_SAFE);
                assert!(s.has_alarm(A_T2_LOST));
            }
        }
        // The actuator (100 % per 120 s, dead band 0.5 %) reaches it.
        let stroke_s = 120.0 * (held - safe_pct).abs() / 100.0;
        let t_pos = rig
            .records
            .iter()
            .find(|r| r.t_s >= t_safe && (r.valve1_pos_pct - safe_pct).abs() <= 0.6)
            .map(|r| r.t_s)
            .expect("the valve reached its safe position");
        assert!(
            t_pos - t_safe <= stroke_s + notice_s,
            "valve position reached the safe position {:.0} s after the command (stroke {stroke_s:.0} s)",
            t_pos - t_safe
        );
        // Back: control resumes, the alarm clears.
        let back: Vec<(&Record, &Scada)> = rig.window(f1 + 5.0 * 60.0, end).collect();
        assert!(back.len() > 20);
        for (r, s) in &back {
            assert_eq!(s.supervisor(), SUP_NONE, "supervisor at {:.3} h", r.t_s / H);
            assert!(!s.has_alarm(A_T2_LOST), "alarm 103 at {:.3} h", r.t_s / H);
        }
        assert!(
            back.iter()
                .any(|(r, _)| (r.valve1_cmd_pct - safe_pct).abs() > 5.0),
            "the valve never left its safe position after the sensor returned"
        );
        assert_healthy(&rig, 0.1 * H, f0);
        rig.finish().await;
    });
}

/// Real-time Modbus settings of the generated links named `prefix*`. Timeouts and reconnect
/// back-off are not scaled by the clock: at 720x the default 1 s timeout and 30 s longest
/// back-off are 12 minutes and 6 hours of plant time (twice that at 1440x), so a device that
/// comes back would wait hours to be asked again. A plant on loopback answers within a millisecond; 200 ms and 1 s
/// keep the back-off within minutes of plant time.
fn quick_links(cfg: &mut Table, prefix: &str) {
    let Some(Value::Array(links)) = cfg.get_mut("links") else {
        panic!("no [[links]] in the generated configuration");
    };
    let mut n = 0;
    for l in links.iter_mut().filter_map(Value::as_table_mut) {
        if l.get("name")
            .and_then(Value::as_str)
            .is_some_and(|name| name.starts_with(prefix))
        {
            l.insert("timeout_ms".into(), 200.into());
            l.insert("reconnect_min_ms".into(), 100.into());
            l.insert("reconnect_max_ms".into(), 1000.into());
            n += 1;
        }
    }
    assert!(n > 0, "no generated link named {prefix}*");
}

/// One room gateway (a quarter of the nodes) stops answering for 12 hours. The configuration
/// under test asks for 80 % of the nodes (`quorum_pct`), so once that gateway's readings are
/// gone the configured behaviour is the decay of the demand shift toward zero with
/// `decay_time_constant_h` (alarm 201): the shift follows that exponential and never grows.
/// When the gateway returns, every node is used again, the alarms clear, and the shift moves on
/// without a jump.
#[test]
fn room_gateway_silent_for_twelve_hours() {
    let _serial = serial();
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

/// Readings of the honest nodes, sorted: `k` bad nodes can move the (equal-weight) percentile
/// of the mixed set only between the honest order statistics `k` ranks below and above it. The
/// spread between those two, K (controller/tests/control.rs, `liars_have_bounded_influence`).
fn honest_spread_k(readings: &[Option<f64>], bad: &[usize], k: usize, percentile: f64) -> f64 {
    let mut vals: Vec<f64> = readings
        .iter()
        .enumerate()
        .filter(|(i, _)| !bad.contains(i))
        .filter_map(|(_, v)| *v)
        .collect();
    vals.sort_by(f64::total_cmp);
    let m = vals.len();
    assert!(m > 2 * k, "too few honest readings: {m}");
    let rank = ((m as f64) * percentile / 100.0).ceil() as usize;
    let lo = vals[rank.saturating_sub(k + 1).min(m - 1)];
    let hi = vals[(rank + k).min(m - 1)];
    hi - lo
}

/// Three room nodes lie (+10 K, about 30 °C) and five are stuck (frozen at their reading), from
/// the first hour on. Against the same plant without them, run side by side, the setpoint moves
/// by less than the control core's bound on the influence of k bad nodes: the PI law on the
/// spread of the honest readings around the percentile, Kp·S·(1 + t/Ti), and at most twice the
/// shift's rate limit times t. The liars are never used (outliers).
#[test]
fn lying_and_stuck_room_nodes_move_the_setpoint_within_the_bound() {
    let _serial = serial();
    block_on(async {
        let (f0, end) = (1.0 * H, 9.0 * H);
        let mut clean_sc = scenario("demo", -10.0);
        // 120 nodes.
        clean_sc.room_nodes.share_pct = 50.0;
        let apts = node_apartments(&clean_sc);
        let n = apts.len();
        let liars = [n / 8, n / 2, 7 * n / 8];
        let stuck = [n / 16, 3 * n / 16, 5 * n / 16, 9 * n / 16, 13 * n / 16];
        let bad: Vec<usize> = liars.iter().chain(&stuck).copied().collect();
        let mut dirty_sc = clean_sc.clone();
        for &k in &liars {
            let mut f = fault(
                FaultKind::SensorJump,
                &format!("room_node:{}", apts[k]),
                f0 / H,
                end / H,
            );
            f.jump = 10.0;
            dirty_sc.faults.push(f);
        }
        for &k in &stuck {
            dirty_sc.faults.push(fault(
                FaultKind::SensorFrozen,
                &format!("room_node:{}", apts[k]),
                f0 / H,
                end / H,
            ));
        }
        let mut base = constant_weather_base();
        // Equal weights, as in the core's property test: the bound counts ranks.
        for w in ["top", "ground", "end", "middle", "top_end", "ground_end"] {
            set(&mut base, &format!("demand.weights.{w}"), 1.0);
        }
        let kp = get_f64(&base, "demand.gain_k_per_k");
        let ti_s = get_f64(&base, "demand.integral_time_h") * H;
        let max_rate_k_per_s = get_f64(&base, "demand.max_rate_k_per_h") / H;
        let percentile = get_f64(&base, "demand.percentile");
        let period_s = get_f64(&base, "demand.period_s");
        let (mut clean, mut dirty) = tokio::join!(
            Rig::start("nodes-clean", &clean_sc, base.clone(), SPEED),
            Rig::start("nodes-lying", &dirty_sc, base, SPEED)
        );
        clean.record_nodes = true;
        tokio::join!(clean.run_until(end), dirty.run_until(end));

        // The liars are dropped.
        for (r, s) in dirty.window(f0 + 2.0 * period_s + NOTICE_S, end) {
            assert!(
                s.rooms_used() + 3 <= s.rooms_expected(),
                "{} of {} nodes used at {:.2} h: the liars counted",
                s.rooms_used(),
                s.rooms_expected(),
                r.t_s / H
            );
        }
        // The setpoint bound.
        let mut spread_k: f64 = 0.0;
        let mut worst = (0.0_f64, 0.0_f64, 0.0_f64);
        let mut n_cmp = 0;
        for r in dirty.records.iter().filter(|r| r.t_s >= f0 && r.t_s < end) {
            let Some(sp_dirty) = r.scada.as_ref().and_then(Scada::setpoint_c) else {
                continue;
            };
            // Honest spread over the clean run so far (its readings at or before t).
            for c in clean
                .records
                .iter()
                .filter(|c| c.t_s >= f0 && c.t_s <= r.t_s)
                .step_by(25)
            {
                spread_k = spread_k.max(honest_spread_k(&c.nodes_c, &bad, bad.len(), percentile));
            }
            let Some(sp_clean) = interpolate(&clean.records, r.t_s, |c| {
                c.scada.as_ref().and_then(Scada::setpoint_c)
            }) else {
                continue;
            };
            let t = r.t_s - f0;
            let bound = (kp * spread_k * (1.0 + t / ti_s)).min(2.0 * max_rate_k_per_s * t)
                + SETPOINT_READ_K;
            let d = (sp_dirty - sp_clean).abs();
            if d > worst.0 {
                worst = (d, bound, r.t_s);
            }
            assert!(
                d <= bound,
                "setpoint {sp_dirty:.1} °C with the bad nodes, {sp_clean:.1} °C without, at {:.2} h: \
                 {d:.2} K apart, bound {bound:.2} K (honest spread {spread_k:.2} K)",
                r.t_s / H
            );
            n_cmp += 1;
        }
        eprintln!(
            "bad nodes: {n_cmp} comparisons; setpoints at most {:.2} K apart (bound there {:.2} K, at {:.2} h); honest spread {spread_k:.2} K",
            worst.0,
            worst.1,
            worst.2 / H
        );
        assert!(n_cmp > 1000, "comparisons: {n_cmp}");
        for rig in [&clean, &dirty] {
            assert_healthy(rig, 0.1 * H, end);
        }
        clean.finish().await;
        dirty.finish().await;
    });
}

/// Reading the setpoint of two runs at the same plant time: SCADA shows tenths and is read a
/// few milliseconds after the plant's clock (a few plant seconds, the setpoint moving at most
/// 0.5 K per minute).
const SETPOINT_READ_K: f64 = 0.2;

/// The household valve actuators of one building (behind their RTU gateway) stop answering for
/// two hours. heatctl raises alarm 501 and keeps running and controlling the primary valve: a
/// curve shift of -5 K written over SCADA during the outage lowers the setpoint, the valve
/// closes further and the secondary supply follows. After the gateway returns the alarm clears.
#[test]
fn household_valve_actuators_stop_answering() {
    let _serial = serial();
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
                (r.t_s2_c - sp).abs() <= 2.0,
                "secondary supply {:.1} °C, setpoint {sp:.1} °C at {:.2} h",
                r.t_s2_c,
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

/// heatctl killed with SIGKILL and started again with its state file: it restores its state and
/// takes the valve over where it was, so the plant's valve command never changes faster than
/// `[valve1] max_rate_pct_per_s` (plus the actuator's dead band, the start being bumpless from
/// the position feedback). Then SIGTERM: exit 0, and the plant's primary valve and every
/// household valve heatctl drives are commanded to, and reach, their safe positions.
#[test]
fn sigkill_restart_resumes_and_sigterm_leaves_safe_positions() {
    let _serial = serial();
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
                (r.t_s2_c - sp).abs() <= 2.0,
                "after the restart: supply {:.1} °C, setpoint {sp:.1} °C at {:.3} h",
                r.t_s2_c,
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
    let _serial = serial();
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
            (r.t_s2_c - sp).abs() <= 2.0,
            "supply {:.1} °C, setpoint {sp:.1} °C",
            r.t_s2_c
        );
        assert_healthy(&rig, 0.1 * H, f64::INFINITY);
        rig.finish().await;
    });
}

/// Scale: 1,976 room nodes on 8 room gateways (8 buildings of 247 flats, a node in every flat:
/// the most one RS-485 bus per building can address). With the room readings' max age set to
/// the demand period, a node counts for demand only if it was read within the last period: once
/// the simulated nodes have published their first reading, every node counts at every demand run
/// for four periods, no device is lost, and heatctl reports every node and the two substation
/// devices.
#[test]
fn scale_1976_room_nodes_on_8_gateways() {
    let _serial = serial();
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
