//! The real room-node firmware under an emulator.
//!
//! Boots the release build of `firmware/boards/lm3s6965` in `qemu-system-arm -machine
//! lm3s6965evb` with an emulated TMP105 on its I2C bus and UART0 bridged to TCP, sets the
//! sensor's temperature over QMP, and talks Modbus RTU-over-TCP to the node with an
//! independent peer (pymodbus, `hil-tests/peers/modbus_peer.py`): reads the register map,
//! writes a calibration offset, resets the board over QMP and checks the offset survived.
//!
//! Needs `qemu-system-arm`, a Python with pymodbus (`HEATCTL_PYTHON`, else
//! `hil-tests/.venv/bin/python`) and the board binary (`cargo build --release` in
//! `firmware/boards/lm3s6965`); `hil-tests/run-tests` provides all three. Without them the
//! tests skip with a message, except under CI (`CI=true`), where they fail.
//!
//! The shipped map, `config/devices/room-node.toml`, is checked against the firmware twice.
//! Over the pymodbus transport with heatctl's config layer and decoder ([`decode_with_map`],
//! [`range_probes`]); and end to end through heatctl's own field layer
//! ([`read_with_field_layer`]): a configuration with one `rtu_over_tcp` link to the node's
//! port and the node under `[rooms] nodes` is loaded with `heatctl::config::load`, planned
//! with `plan_links` and polled by a `FieldHandle` in a tokio runtime. Every point it reports
//! must agree with what pymodbus read (21.38 °C for the 21.375 °C the test sets, the humidity
//! sentinel as an unusable reading, firmware version 1, the factory settings), and the room
//! temperature must reach the controller's process image as a valid sample. The field layer
//! is stopped, and its connection closed, before pymodbus talks to the node again: QEMU's
//! TCP serial port serves one client at a time.

mod firmware;
#[path = "../../controller/tests/peers/scratch.rs"]
mod scratch;

use firmware::{Qmp, find_firmware, find_in_path, free_port, qemu_board, require, workspace_root};

use heatctl::config::{self, DecodeError, DeviceMap, LoadedConfig, Table, load_device_map};
use heatctl::field::plan::{ROOM_PREFIX, span_of};
use heatctl::field::{FieldHandle, FieldShared, plan_links};
use heatctl::runtime::build_image;
use heatctl::runtime::clock::{Clock, WallClock};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Input register addresses and flags from `config/devices/room-node.toml`.
const TEMPERATURE: usize = 0;
const HUMIDITY: usize = 1;
const STATUS: usize = 2;
const SAMPLE_COUNTER: usize = 3;
const UPTIME_HIGH: usize = 5;
const UPTIME_LOW: usize = 6;
const FIRMWARE_VERSION: usize = 7;
const STATUS_SENSOR_FAULT: u16 = 1 << 0;
const STATUS_FACTORY_DEFAULTS: u16 = 1 << 2;
const STATUS_JUST_STARTED: u16 = 1 << 15;

fn find_python() -> Option<PathBuf> {
    let python = std::env::var_os("HEATCTL_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("hil-tests/.venv/bin/python"));
    let works = Command::new(&python)
        .args(["-c", "import pymodbus"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    works.then_some(python)
}

/// Everything the emulator tests need, or `None` to skip.
struct Tools {
    qemu: PathBuf,
    python: PathBuf,
    firmware: PathBuf,
}

impl Tools {
    fn find() -> Option<Self> {
        let qemu = require("qemu-system-arm", find_in_path("qemu-system-arm"));
        let python = require("python with pymodbus", find_python());
        let firmware = require("release build of firmware/boards/lm3s6965", find_firmware());
        Some(Self {
            qemu: qemu?,
            python: python?,
            firmware: firmware?,
        })
    }
}

/// One emulated node; QEMU is killed when this is dropped.
struct EmulatedNode {
    qemu: Child,
    qmp: Qmp,
    /// TCP port bridged to the node's UART0 (Modbus RTU over TCP).
    modbus_port: u16,
    python: PathBuf,
}

impl EmulatedNode {
    /// Boots the firmware paused, lets `before_start` set up the sensor, then runs it.
    fn boot(tools: &Tools, with_sensor: bool, before_start: impl FnOnce(&mut Qmp)) -> Self {
        let modbus_port = free_port();
        let qmp_port = free_port();
        let mut command = qemu_board(
            &tools.qemu,
            &tools.firmware,
            &format!("tcp:127.0.0.1:{modbus_port},server=on,wait=off,nodelay=on"),
            qmp_port,
            with_sensor,
        );
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let qemu = command.spawn().expect("start qemu-system-arm");
        let mut qmp = Qmp::connect(qmp_port);
        before_start(&mut qmp);
        qmp.execute(r#"{"execute":"cont"}"#);
        Self {
            qemu,
            qmp,
            modbus_port,
            python: tools.python.clone(),
        }
    }

    /// Runs the pymodbus peer with `ops`; one result per op.
    fn peer(&self, ops: &[&str]) -> Vec<PeerResult> {
        let script = workspace_root().join("hil-tests/peers/modbus_peer.py");
        let output = Command::new(&self.python)
            .arg(script)
            .arg("--port")
            .arg(self.modbus_port.to_string())
            .args(ops)
            .output()
            .expect("run the pymodbus peer");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "peer failed ({}): {stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        stdout.lines().map(PeerResult::parse).collect()
    }

    fn read_inputs(&self) -> Vec<u16> {
        self.peer(&["read-input:0:8"])[0].registers()
    }

    /// Polls the input registers until `done` holds (or panics after `timeout`).
    fn wait_for(&self, timeout: Duration, what: &str, done: impl Fn(&[u16]) -> bool) -> Vec<u16> {
        let deadline = Instant::now() + timeout;
        loop {
            let regs = self.read_inputs();
            if done(&regs) {
                return regs;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {regs:?}"
            );
            sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for EmulatedNode {
    fn drop(&mut self) {
        let _ = self.qemu.kill();
        let _ = self.qemu.wait();
    }
}

/// One line of the peer's JSON output, parsed by hand (no JSON crate needed for this shape).
#[derive(Debug, PartialEq)]
enum PeerResult {
    Registers(Vec<u16>),
    Exception(u8),
}

impl PeerResult {
    fn parse(line: &str) -> Self {
        let field = |name: &str| {
            line.split_once(&format!(r#""{name}": "#))
                .map(|(_, rest)| rest.to_string())
        };
        if let Some(rest) = field("registers") {
            let list = rest
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or_default()
                .to_string();
            return Self::Registers(
                list.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().expect("register value"))
                    .collect(),
            );
        }
        if let Some(rest) = field("exception") {
            let code: String = rest.chars().take_while(char::is_ascii_digit).collect();
            return Self::Exception(code.parse().expect("exception code"));
        }
        panic!("unexpected peer output: {line}");
    }

    fn registers(&self) -> Vec<u16> {
        match self {
            Self::Registers(r) => r.clone(),
            Self::Exception(e) => panic!("expected registers, got exception {e}"),
        }
    }
}

fn temperature_centi_c(regs: &[u16]) -> i16 {
    regs[TEMPERATURE].cast_signed()
}

fn uptime_s(regs: &[u16]) -> u32 {
    (u32::from(regs[UPTIME_HIGH]) << 16) | u32::from(regs[UPTIME_LOW])
}

/// The shipped register map, parsed by heatctl's own config layer.
fn room_node_map() -> DeviceMap {
    let path = workspace_root().join("config/devices/room-node.toml");
    load_device_map(&path).unwrap_or_else(|problems| panic!("{}: {problems:?}", path.display()))
}

/// Decodes the node's registers with every point of the shipped map (heatctl's decoder:
/// word order, sentinels, scale, valid range) and checks the map and the node agree on the
/// layout: every point lies inside what the node serves, exactly the holding registers are
/// writable, and each table ends where the map ends. Returns the decoded values by name.
fn decode_with_map(
    map: &DeviceMap,
    inputs: &[u16],
    holdings: &[u16],
) -> Vec<(String, Result<f64, DecodeError>)> {
    let mut ends = [0usize; 2];
    let decoded = map
        .points
        .iter()
        .map(|point| {
            let (regs, end) = match point.table {
                Table::Input => (inputs, &mut ends[0]),
                Table::Holding => (holdings, &mut ends[1]),
                other => panic!("{}: the room node has no {other:?} table", point.name),
            };
            let start = usize::from(point.address);
            let stop = start + usize::from(point.data_type.width());
            assert!(
                stop <= regs.len(),
                "{} lies outside the node's registers",
                point.name
            );
            *end = (*end).max(stop);
            assert_eq!(
                point.writable,
                point.table == Table::Holding,
                "{}: writable means holding register",
                point.name
            );
            (point.name.clone(), point.decode(&regs[start..stop]))
        })
        .collect();
    assert_eq!(
        ends,
        [inputs.len(), holdings.len()],
        "map and node tables end together"
    );
    decoded
}

fn decoded<'a>(
    values: &'a [(String, Result<f64, DecodeError>)],
    name: &str,
) -> &'a Result<f64, DecodeError> {
    &values
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no point {name} in the map"))
        .1
}

/// Peer ops probing each writable point's range from the map: raw values one step outside
/// `valid_min ..= valid_max` must be refused (exception 03), the limits themselves accepted.
/// The unit id's limits are only probed from outside (accepting one would readdress the node).
fn range_probes(map: &DeviceMap) -> Vec<(String, PeerResult)> {
    let mut probes = Vec::new();
    for point in map.points.iter().filter(|p| p.writable) {
        let raw = |value: f64| (value / point.scale).round() as i64;
        let lo = raw(point.valid_min.expect("writable points have a range"));
        let hi = raw(point.valid_max.expect("writable points have a range"));
        let address = point.address;
        probes.push((
            format!("write:{address}:{}", lo - 1),
            PeerResult::Exception(3),
        ));
        probes.push((
            format!("write:{address}:{}", hi + 1),
            PeerResult::Exception(3),
        ));
        if point.name != "unit_id" {
            probes.push((
                format!("write:{address}:{lo}"),
                // A single write echoes the value; the peer reports it as the register.
                PeerResult::Registers(vec![lo as u16]),
            ));
            probes.push((
                format!("write:{address}:{hi}"),
                PeerResult::Registers(vec![hi as u16]),
            ));
        }
    }
    probes
}

/// The room node's id in the field-layer configuration; its device is `room:<id>`.
const NODE_ID: &str = "emulated";

/// Points whose values move between two reads of a running node.
const MOVING_POINTS: [&str; 3] = ["sample_counter", "unchanged_s", "uptime_s"];

/// A heatctl configuration with one RTU-over-TCP link to `modbus_port` and the emulated node
/// (unit 1) as a room node with the shipped map, loaded as `heatctl run` loads one.
fn field_config(modbus_port: u16) -> LoadedConfig {
    let map = workspace_root().join("config/devices/room-node.toml");
    let text = format!(
        r#"[site]
name = "emulator"
[curve]
points = [{{ outdoor_c = -20.0, supply_c = 70.0 }}, {{ outdoor_c = 15.0, supply_c = 30.0 }}]
[[links]]
name = "gw"
kind = "rtu_over_tcp"
host = "127.0.0.1"
port = {modbus_port}
baud = 9600
timeout_ms = 1000
reconnect_min_ms = 50
reconnect_max_ms = 400
[rooms]
map = '{}'
nodes = [{{ id = "{NODE_ID}", link = "gw", unit_id = 1 }}]
"#,
        map.display()
    );
    let dir = scratch::Scratch::new(&format!(
        "heatctl-emulator-{}-{modbus_port}",
        std::process::id()
    ));
    let path = dir.join("field.toml");
    std::fs::write(&path, text).expect("write the field configuration");
    let loaded = config::load(&path);
    drop(dir);
    loaded.unwrap_or_else(|problems| panic!("field configuration: {problems}"))
}

/// Reads the node through heatctl's own field layer: loads [`field_config`], plans the link,
/// runs a `FieldHandle` in a tokio runtime until every point of the map has a reading (at
/// most 10 s), and checks each reading against `peer_values` (what pymodbus read, decoded by
/// [`decode_with_map`] a moment before; counters and clocks may only have moved on), the
/// device's statistics, and the room temperature in the controller's process image. The
/// field layer is stopped and its runtime dropped before returning, so the connection to
/// QEMU's single-client serial port is closed. Returns the readings by name, shaped like
/// [`decode_with_map`]'s.
fn read_with_field_layer(
    modbus_port: u16,
    map: &DeviceMap,
    peer_values: &[(String, Result<f64, DecodeError>)],
) -> Vec<(String, Result<f64, DecodeError>)> {
    let loaded = field_config(modbus_port);
    assert_eq!(
        loaded.maps.get(&loaded.config.rooms.map),
        Some(map),
        "config::load and load_device_map read the shipped map alike"
    );
    let plans = plan_links(&loaded);
    let device = format!("{ROOM_PREFIX}{NODE_ID}");
    let planned: Vec<(&str, u8)> = plans
        .iter()
        .flat_map(|p| &p.devices)
        .map(|d| (d.name.as_str(), d.unit_id))
        .collect();
    assert_eq!(planned, [(device.as_str(), 1)], "one link, one room node");
    // Two merged reads, exactly the node's two tables (it answers exception 02 beyond them).
    let plan = &plans[0].devices[0];
    let reads: Vec<(Table, Option<(u16, u16)>)> = plan
        .blocks
        .iter()
        .map(|b| (b.table, span_of(&plan.points, &b.points)))
        .collect();
    assert_eq!(
        reads,
        [(Table::Holding, Some((0, 3))), (Table::Input, Some((0, 8)))]
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let shared = Arc::new(FieldShared::default());
    let (all_read, readings, image, humidity_sample) = runtime.block_on(async {
        let mut field = FieldHandle::start(plans, Arc::new(WallClock), Arc::clone(&shared));
        let every_point_read = || {
            map.points
                .iter()
                .all(|p| shared.reading(&device, &p.name).is_some())
        };
        let all_read = tokio::time::timeout(Duration::from_secs(10), async {
            while !every_point_read() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .is_ok();
        field.stop();
        let now_s = WallClock.mono_s();
        let readings: Vec<_> = map
            .points
            .iter()
            .map(|p| (p.name.clone(), shared.reading(&device, &p.name)))
            .collect();
        (
            all_read,
            readings,
            build_image(&loaded, &shared, now_s),
            shared.sample(&device, "humidity", now_s),
        )
    });
    // Dropping the runtime drops the aborted link task and closes its TCP connection.
    drop(runtime);
    let stats = shared.stats();
    assert!(
        all_read,
        "field layer: not every point read within 10 s: {readings:?}, {stats:?}"
    );

    let values: Vec<(String, Result<f64, DecodeError>)> = readings
        .into_iter()
        .map(|(name, reading)| {
            let value = match reading.map(|r| (r.value, r.error)) {
                Some((Some(v), None)) => Ok(v),
                Some((None, Some(e))) => Err(e),
                other => panic!("field layer: {name} not answered: {other:?}"),
            };
            (name, value)
        })
        .collect();
    for (name, value) in &values {
        let peer = decoded(peer_values, name);
        if MOVING_POINTS.contains(&name.as_str()) {
            match (value, peer) {
                (Ok(field), Ok(peer)) => assert!(field >= peer, "{name}: {field} < {peer}"),
                other => panic!("{name}: {other:?}"),
            }
        } else {
            assert_eq!(value, peer, "{name}: field layer and pymodbus disagree");
        }
    }

    // What the controller would see: a valid room temperature, an unusable humidity.
    let room = image.rooms.first().copied().flatten();
    let temperature = decoded(&values, "temperature");
    assert!(
        room.is_some_and(|s| s.valid && Ok(s.value) == *temperature && s.age_s < 10.0),
        "process image room temperature {room:?}, read {temperature:?}"
    );
    assert!(
        humidity_sample.is_some_and(|s| !s.valid),
        "humidity sample {humidity_sample:?}"
    );
    let node = &stats[&device];
    assert!(
        node.answered
            && node.requests >= 2
            && node.errors == 0
            && node.exceptions == 0
            && !node.comm_lost()
            && node.last_latency_ms.is_some(),
        "{node:?}"
    );
    assert_eq!(shared.alarm_conditions(), (false, false));
    values
}

#[test]
fn emulated_node_serves_the_register_map_and_keeps_settings_over_reset() {
    let Some(tools) = Tools::find() else { return };
    let node = EmulatedNode::boot(&tools, true, |qmp| qmp.set_temperature_milli_c(21_375));

    // First sample: 21.375 °C (12-bit TMP105: exactly 342 * 0.0625) published as 21.38.
    let regs = node.wait_for(Duration::from_secs(10), "first sample", |r| {
        r[STATUS] & STATUS_JUST_STARTED == 0
    });
    assert_eq!(temperature_centi_c(&regs), 2138, "{regs:?}");
    assert_eq!(regs[HUMIDITY], 0xFFFF, "TMP105 has no humidity");
    assert_eq!(regs[STATUS] & STATUS_SENSOR_FAULT, 0);
    assert_ne!(
        regs[STATUS] & STATUS_FACTORY_DEFAULTS,
        0,
        "fresh emulator: no settings record yet"
    );
    assert!(regs[SAMPLE_COUNTER] >= 1);
    assert_eq!(regs[FIRMWARE_VERSION], 0x0001);

    // The shipped map, through heatctl's config layer and decoder.
    let map = room_node_map();
    let results = node.peer(&[
        "read-holding:0:3",
        "read-input:8:1",
        "read-holding:3:1",
        "write:5:1",
    ]);
    let holdings = results[0].registers();
    assert_eq!(holdings, [1, 0, 60], "factory defaults");
    assert_eq!(results[1], PeerResult::Exception(2), "no input register 8");
    assert_eq!(
        results[2],
        PeerResult::Exception(2),
        "no holding register 3"
    );
    assert_eq!(
        results[3],
        PeerResult::Exception(2),
        "no holding register 5"
    );
    let values = decode_with_map(&map, &regs, &holdings);
    let temperature = decoded(&values, "temperature").expect("temperature decodes");
    assert!((temperature - 21.38).abs() < 1e-9, "{temperature}");
    assert_eq!(decoded(&values, "humidity"), &Err(DecodeError::Sentinel));
    assert_eq!(decoded(&values, "firmware_version"), &Ok(1.0));
    assert_eq!(decoded(&values, "unit_id"), &Ok(1.0));
    assert_eq!(decoded(&values, "calibration_offset"), &Ok(0.0));
    assert_eq!(decoded(&values, "report_interval_s"), &Ok(60.0));
    assert!(decoded(&values, "uptime_s").is_ok());

    // The same node through heatctl's own field layer, which must agree with pymodbus. It is
    // stopped before the probes below: QEMU's serial port serves one TCP client at a time.
    let field = read_with_field_layer(node.modbus_port, &map, &values);
    let temperature = decoded(&field, "temperature").expect("field layer: temperature");
    assert!((temperature - 21.38).abs() < 1e-9, "{temperature}");
    assert_eq!(decoded(&field, "humidity"), &Err(DecodeError::Sentinel));
    assert_eq!(decoded(&field, "firmware_version"), &Ok(1.0));
    assert_eq!(
        decoded(&field, "status"),
        &Ok(f64::from(STATUS_FACTORY_DEFAULTS))
    );
    assert_eq!(decoded(&field, "report_interval_s"), &Ok(60.0));

    // Every writable point's range, as the map states it, is what the node enforces.
    let probes = range_probes(&map);
    let ops: Vec<&str> = probes.iter().map(|(op, _)| op.as_str()).collect();
    for ((op, expected), got) in probes.iter().zip(node.peer(&ops)) {
        assert_eq!(&got, expected, "{op}");
    }

    // New settings in one write (function 16): offset -1.25 K, report interval 10 s. The
    // offset applies at the next sample.
    let offset = map
        .point("calibration_offset")
        .expect("calibration_offset in the map");
    assert_eq!(offset.encode(-1.25), Some(vec![(-125i16).cast_unsigned()]));
    assert_eq!(
        offset.encode(6.0),
        None,
        "the map refuses what the node refuses"
    );
    let results = node.peer(&["write-multiple:1:-125,10", "read-holding:0:3"]);
    assert_eq!(results[0], PeerResult::Registers(vec![]));
    assert_eq!(
        results[1],
        PeerResult::Registers(vec![1, (-125i16).cast_unsigned(), 10])
    );
    let regs = node.wait_for(Duration::from_secs(5), "offset applied", |r| {
        temperature_centi_c(r) == 2138 - 125
    });
    assert_eq!(
        regs[STATUS] & STATUS_FACTORY_DEFAULTS,
        0,
        "settings now persisted"
    );
    let uptime_before = uptime_s(&regs);

    // Change the room temperature, then reset the board: the settings must survive, and the
    // first sample after the restart sees the new temperature.
    let mut node = node;
    node.qmp.set_temperature_milli_c(19_000);
    sleep(Duration::from_millis(1_100));
    node.qmp.execute(r#"{"execute":"system_reset"}"#);
    let regs = node.wait_for(Duration::from_secs(10), "restart", |r| {
        r[STATUS] & STATUS_JUST_STARTED == 0 && uptime_s(r) <= uptime_before
    });
    assert_eq!(
        regs[SAMPLE_COUNTER], 1,
        "counters restart with the firmware: {regs:?}"
    );
    assert_eq!(
        node.peer(&["read-holding:0:3"])[0],
        PeerResult::Registers(vec![1, (-125i16).cast_unsigned(), 10])
    );
    assert_eq!(temperature_centi_c(&regs), 1900 - 125);
    assert_eq!(
        regs[STATUS] & STATUS_FACTORY_DEFAULTS,
        0,
        "record found after reset"
    );
}

#[test]
fn emulated_node_without_sensor_reports_the_fault() {
    let Some(tools) = Tools::find() else { return };
    let node = EmulatedNode::boot(&tools, false, |_| {});
    let regs = node.wait_for(Duration::from_secs(10), "first sample", |r| {
        r[STATUS] & STATUS_JUST_STARTED == 0
    });
    assert_eq!(regs[TEMPERATURE], 0x7FFF, "no-sensor sentinel");
    assert_eq!(regs[HUMIDITY], 0xFFFF);
    assert_ne!(regs[STATUS] & STATUS_SENSOR_FAULT, 0, "{regs:?}");
    assert_eq!(
        regs[SAMPLE_COUNTER], 0,
        "a sentinel is not a published sample"
    );
}
