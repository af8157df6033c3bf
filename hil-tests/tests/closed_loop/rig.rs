//! The closed-loop rig, shared by the closed-loop test modules (`main.rs`): the release
//! `heatctl` binary runs as a child process against the plant simulator served in the test's
//! process, over Modbus TCP and RTU over TCP on loopback, both at the same accelerated clock.
//!
//! * The child's configuration is the demo tuning (`heatctl_plant::binding::DEMO_TOML`), varied
//!   per test, bound to the served plant by `heatctl_plant::binding::write_config`.
//! * Ground truth (secondary supply, valve command and position, every flat's air temperature,
//!   household valves) is read from the plant under its lock; the controller's own view
//!   (setpoint, shifts, supervisor, alarms, room statistics) from its SCADA slave, read with
//!   tokio-modbus; reload outcomes from its log (`<scratch dir>/heatctl.log`, its stderr).
//! * Every time in an assertion is simulated time (the plant's clock); no wall-clock duration is
//!   asserted. Wall-clock limits only stop a hung test.
//! * The tests of a file run one at a time ([`serial`]): each one keeps the two cores busy (cargo
//!   runs the test files one after the other).
//! * Scenarios: `hil-tests/scenarios/closed-demo.toml` (the demo's 4 x 60 flats) and
//!   `closed-scale.toml` (8 x 247 flats), with the outdoor temperature and faults set per test.
//!
//! Needs `target/release/heatctl`: `cargo build --release -p heatctl` first (a missing binary
//! fails every test with that hint).
//!
//! Each test file uses a part of the rig.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex, PoisonError};
pub(crate) use std::time::{Duration, Instant};

pub(crate) use heatctl_hil::process::{
    Heatctl, RigDir, Signal, free_port, heatctl_binary, log_text,
};
pub(crate) use heatctl_plant::binding::{DEMO_TOML, write_config};
pub(crate) use heatctl_plant::serve::lock;
pub(crate) use heatctl_plant::{
    Fault, FaultKind, FaultTarget, PlantServer, Scenario, SharedPlant, serve,
};
pub(crate) use tokio_modbus::client::{Context, Reader, Writer};
pub(crate) use tokio_modbus::prelude::Slave;
pub(crate) use toml::{Table, Value};

/// The machine's budget for rigs, in slots: two, for two cores. A rig alone at [`SPEED_LONG`]
/// keeps both cores busy (heatctl one, the plant and the observer the other), and so does a
/// test that compares two runs with two rigs side by side at [`SPEED`]: each takes both slots. A
/// single rig at [`SPEED`] or slower takes about half a core, so two such tests may run at once
/// (one slot each), the load of one side-by-side pair.
pub(crate) const RIG_SLOTS: usize = 2;

static SLOTS_IN_USE: Mutex<usize> = Mutex::new(0);
static SLOT_FREED: Condvar = Condvar::new();

/// Slots held by a running test, given back when it ends (also when it panics).
#[must_use = "the slots are given back when this is dropped"]
pub(crate) struct RigSlots(usize);

impl Drop for RigSlots {
    fn drop(&mut self) {
        let mut in_use = SLOTS_IN_USE.lock().unwrap_or_else(PoisonError::into_inner);
        *in_use -= self.0;
        SLOT_FREED.notify_all();
    }
}

/// Wait until `n` of the [`RIG_SLOTS`] are free and take them: every closed-loop test takes its
/// slots before it starts a rig (1 for a single rig at [`SPEED`] or slower, [`RIG_SLOTS`] for a
/// rig at [`SPEED_LONG`], a side-by-side pair or the scale rig).
pub(crate) fn rig_slots(n: usize) -> RigSlots {
    let n = n.clamp(1, RIG_SLOTS);
    let mut in_use = SLOTS_IN_USE.lock().unwrap_or_else(PoisonError::into_inner);
    while *in_use + n > RIG_SLOTS {
        in_use = SLOT_FREED
            .wait(in_use)
            .unwrap_or_else(PoisonError::into_inner);
    }
    *in_use += n;
    RigSlots(n)
}

/// Run an async test body on its own runtime (two workers: the plant's time base and faces,
/// the SCADA client).
pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

pub(crate) const H: f64 = 3600.0;

/// Acceleration of the runs: one simulated hour in 5 s. heatctl cycles every max(1 clock-second,
/// 1 ms real), and its poller, when the next read is due in less than a millisecond, polls again
/// at once instead of sleeping: the substation I/O's one-second points make that happen above
/// about 800x, where heatctl takes a whole core (measured on the demo plant: 40 % of a core at
/// 600-750x, 100 % at 1200x and above). At 720x a control cycle is 1.4 ms of wall time and a rig
/// takes about half a core, so two rigs fit side by side. Every test checks that its rig stayed
/// healthy: no safe position and no silent device outside its own fault.
pub(crate) const SPEED: f64 = 720.0;

/// Acceleration of the longest runs with one rig alone (the design day, the 12-hour gateway
/// outage): the demo's default, a simulated day in a minute. heatctl's poller takes a core here;
/// the plant and the observer have the other. The design day gives the same figures as at 720x
/// (apartment-hours below 18 °C 0.81 % both, worst tracking 0.47 K against 0.42 K).
pub(crate) const SPEED_LONG: f64 = 1440.0;

// ---------------------------------------------------------------------------------------------
// Configuration and scenario helpers

/// Set `path` ("a.b.c") in a TOML table, creating the tables on the way.
pub(crate) fn set(t: &mut Table, path: &str, v: impl Into<Value>) {
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

pub(crate) fn get_f64(t: &Table, path: &str) -> f64 {
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
pub(crate) fn demo_base() -> Table {
    DEMO_TOML.parse().expect("DEMO_TOML parses")
}

/// A shipped closed-loop scenario (`hil-tests/scenarios/closed-<name>.toml`) at a constant
/// outdoor temperature.
pub(crate) fn scenario(name: &str, outdoor_c: f64) -> Scenario {
    let mut s = Scenario::shipped(&format!("closed-{name}"))
        .unwrap_or_else(|e| panic!("scenario closed-{name}: {e}"));
    s.weather.constant_outdoor_c = Some(outdoor_c);
    s
}

pub(crate) fn fault(kind: FaultKind, target: &str, start_h: f64, duration_h: f64) -> Fault {
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
pub(crate) fn node_apartments(sc: &Scenario) -> Vec<usize> {
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
pub(crate) struct Scada(Vec<u16>);

impl Scada {
    pub(crate) const LEN: u16 = 52;

    pub(crate) fn tenths(&self, a: usize) -> Option<f64> {
        let r = self.0[a] as i16;
        (r != i16::MIN).then(|| f64::from(r) / 10.0)
    }
    pub(crate) fn setpoint_c(&self) -> Option<f64> {
        self.tenths(10)
    }
    pub(crate) fn base_shift_k(&self) -> Option<f64> {
        self.tenths(12)
    }
    pub(crate) fn demand_shift_k(&self) -> Option<f64> {
        self.tenths(13)
    }
    pub(crate) fn supervisor(&self) -> u16 {
        self.0[16]
    }
    pub(crate) fn rooms_expected(&self) -> u16 {
        self.0[20]
    }
    pub(crate) fn rooms_used(&self) -> u16 {
        self.0[21]
    }
    pub(crate) fn outdoor_used_c(&self) -> Option<f64> {
        self.tenths(24)
    }
    pub(crate) fn alarms(&self) -> Vec<u16> {
        let n = usize::from(self.0[30]).min(16);
        self.0[31..31 + n].to_vec()
    }
    pub(crate) fn has_alarm(&self, code: u16) -> bool {
        self.alarms().contains(&code)
    }
    pub(crate) fn devices_total(&self) -> u16 {
        self.0[50]
    }
    pub(crate) fn devices_lost(&self) -> u16 {
        self.0[51]
    }
}

/// Alarm numbers (controller/src/control/commands.rs).
pub(crate) const A_OUTDOOR_LOST: u16 = 101;
pub(crate) const A_OUTDOOR_FALLBACK: u16 = 102;
pub(crate) const A_T2_LOST: u16 = 103;
pub(crate) const A_QUORUM_LOST: u16 = 201;
pub(crate) const A_ROOMS_INVALID: u16 = 202;
pub(crate) const A_COMM_LOST: u16 = 501;
pub(crate) const A_WRITE_FAILED: u16 = 502;
/// SCADA supervisor codes.
pub(crate) const SUP_NONE: u16 = 0;
pub(crate) const SUP_HOLD: u16 = 1;
pub(crate) const SUP_SAFE: u16 = 2;

// ---------------------------------------------------------------------------------------------
// The rig

/// One observation: plant ground truth and, when the slave answered, heatctl's SCADA image.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    /// Plant time, s.
    pub(crate) t_s: f64,
    /// Wall time since the rig started, s (times the speed: heatctl's clock-seconds).
    pub(crate) wall_s: f64,
    /// Secondary supply at the exchanger, °C (truth).
    pub(crate) t2_supply_c: f64,
    /// Primary valve command as the plant holds it (the last value written), %.
    pub(crate) valve1_cmd_pct: f64,
    /// Primary valve position, %.
    pub(crate) valve1_pos_pct: f64,
    /// Share of all flats whose air is below 18 °C.
    pub(crate) below_18_share: f64,
    /// Room-node readings as the plant publishes them (faults applied), node order; only when
    /// the rig records them.
    pub(crate) nodes_c: Vec<Option<f64>>,
    /// heatctl's SCADA input registers.
    pub(crate) scada: Option<Scada>,
}

pub(crate) struct Rig {
    pub(crate) name: String,
    // Dropped in this order: the child first, the directory (log kept on failure) last.
    pub(crate) heatctl: Option<Heatctl>,
    pub(crate) client: Option<Context>,
    pub(crate) server: PlantServer,
    pub(crate) plant: SharedPlant,
    pub(crate) binary: PathBuf,
    pub(crate) speed: f64,
    pub(crate) config_path: PathBuf,
    pub(crate) state_path: PathBuf,
    pub(crate) scada_addr: SocketAddr,
    pub(crate) records: Vec<Record>,
    pub(crate) started: Instant,
    pub(crate) sample_every: Duration,
    pub(crate) record_nodes: bool,
    /// The child is expected to have ended (after a signal).
    pub(crate) exit_expected: bool,
    pub(crate) dir: RigDir,
}

impl Rig {
    /// Serve `scenario` at `speed`, write heatctl's configuration from `base` (SCADA turned on at
    /// a free port, curve shift writable), start heatctl and connect to its SCADA slave.
    pub(crate) async fn start(name: &str, scenario: &Scenario, base: Table, speed: f64) -> Rig {
        Rig::start_with(name, scenario, base, speed, |_| {}).await
    }

    /// [`Rig::start`], with `edit` applied to the generated configuration (links, nodes) before
    /// heatctl starts.
    pub(crate) async fn start_with(
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
            write_config(dir.path(), &base_text, &p, server.addresses())
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
    pub(crate) async fn spawn(&mut self) {
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

    pub(crate) fn heatctl(&mut self) -> &mut Heatctl {
        self.heatctl.as_mut().expect("heatctl started")
    }

    pub(crate) fn check_alive(&mut self) {
        if self.exit_expected {
            return;
        }
        if let Some(status) = self.heatctl().exit_status().expect("query child") {
            panic!("heatctl exited unexpectedly: {status}");
        }
    }

    pub(crate) async fn read_scada(&mut self) -> Option<Scada> {
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
    pub(crate) async fn write_scada(&mut self, addr: u16, value: u16) {
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

    pub(crate) fn plant_time_s(&self) -> f64 {
        lock(&self.plant).time_s()
    }

    /// Take one observation.
    pub(crate) async fn sample(&mut self) {
        let mut rec = {
            let p = lock(&self.plant);
            let truth = p.truth();
            let air = p.apartment_air_c();
            let below = air.iter().filter(|&&t| t < 18.0).count();
            Record {
                t_s: p.time_s(),
                wall_s: self.started.elapsed().as_secs_f64(),
                t2_supply_c: truth.t2_supply_c,
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
    pub(crate) async fn run_until(&mut self, until_s: f64) {
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
    pub(crate) fn window(&self, from_s: f64, to_s: f64) -> impl Iterator<Item = (&Record, &Scada)> {
        self.records
            .iter()
            .filter(move |r| r.t_s >= from_s && r.t_s < to_s)
            .filter_map(|r| r.scada.as_ref().map(|s| (r, s)))
    }

    /// Keep observing until the log, from byte `from` on, contains `needle` (a wall-clock guard
    /// only stops a hung test).
    pub(crate) async fn wait_log(&mut self, from: usize, needle: &str) {
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

    pub(crate) fn log(&self) -> String {
        log_text(&self.dir.log_path())
    }

    /// Stop heatctl with SIGTERM and wait for its exit (wall-clock guard only).
    pub(crate) fn terminate(&mut self) -> std::process::ExitStatus {
        self.exit_expected = true;
        self.client = None;
        let h = self.heatctl();
        h.signal(Signal::Term).expect("SIGTERM");
        h.wait_exit(Duration::from_secs(30))
            .expect("wait")
            .expect("heatctl ended after SIGTERM")
    }

    pub(crate) async fn finish(mut self) {
        if let Some(mut h) = self.heatctl.take() {
            h.kill_now();
        }
        self.client = None;
        self.server.shutdown().await;
    }
}

/// Linear interpolation of `f` over a record series at time `t_s`.
pub(crate) fn interpolate(
    records: &[Record],
    t_s: f64,
    f: impl Fn(&Record) -> Option<f64>,
) -> Option<f64> {
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
pub(crate) fn constant_weather_base() -> Table {
    let mut b = demo_base();
    set(&mut b, "signals.t_out.stuck_after_s", 0.0);
    b
}

/// The rig stayed healthy over `[from_s, to_s)`: the supervisor never drove the valve to its safe
/// position and no device stopped answering or refused a write (alarms 501, 502). A stall of the
/// machine longer than the secondary supply's max age (10 clock-seconds) makes heatctl hold the
/// valve for a moment (alarm 103), which is its configured reaction, not a rig failure; those
/// holds are counted and printed.
pub(crate) fn assert_healthy(rig: &Rig, from_s: f64, to_s: f64) {
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
pub(crate) fn valve_range_pct(rig: &Rig, from_s: f64, to_s: f64) -> f64 {
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
pub(crate) fn count(rig: &Rig, from_s: f64, to_s: f64) -> usize {
    rig.window(from_s, to_s).count()
}

/// Slack for "the controller noticed", simulated seconds: a substation point is polled every
/// 1-10 s, the controller cycles every second, and the rig observes every 20 ms real (14 s).
pub(crate) const NOTICE_S: f64 = 60.0;

/// Real-time Modbus settings of the generated links named `prefix*`. Timeouts and reconnect
/// back-off are not scaled by the clock: at 720x the default 1 s timeout and 30 s longest
/// back-off are 12 minutes and 6 hours of plant time (twice that at 1440x), so a device that
/// comes back would wait hours to be asked again. A plant on loopback answers within a millisecond; 200 ms and 1 s
/// keep the back-off within minutes of plant time.
pub(crate) fn quick_links(cfg: &mut Table, prefix: &str) {
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
