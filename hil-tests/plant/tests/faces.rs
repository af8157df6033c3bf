//! The plant's Modbus faces read over loopback with tokio-modbus clients and decoded with the
//! register maps in `config/devices/` (parsed here with the toml crate).

use std::path::{Path, PathBuf};
use std::time::Duration;

use heatctl_plant::faces::crc16;
use heatctl_plant::serve::lock;
use heatctl_plant::{Plant, PlantServer, Scenario, ServeOptions, serve_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_modbus::prelude::*;

const T: Duration = Duration::from_secs(2);

/// A Modbus request's answer within [`T`]: the registers, or the device's exception.
async fn within<R>(
    request: impl Future<Output = tokio_modbus::Result<R>>,
) -> Result<R, ExceptionCode> {
    timeout(T, request).await.expect("in time").expect("io")
}

#[derive(Debug, Clone)]
struct Point {
    name: String,
    table: String,
    address: u16,
    ty: String,
    word_order: String,
    scale: f64,
    sentinels: Vec<i64>,
}

fn load_map(file: &str) -> Vec<Point> {
    let p: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../config/devices")
        .join(file);
    let text = std::fs::read_to_string(&p).expect("map file");
    let doc: toml::Table = toml::from_str(&text).expect("map parses");
    doc["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|v| {
            let t = v.as_table().expect("point table");
            Point {
                name: t["name"].as_str().expect("name").to_owned(),
                table: t["table"].as_str().expect("table").to_owned(),
                address: u16::try_from(t["address"].as_integer().expect("address")).expect("u16"),
                ty: t["type"].as_str().expect("type").to_owned(),
                word_order: t
                    .get("word_order")
                    .and_then(|w| w.as_str())
                    .unwrap_or("big")
                    .to_owned(),
                scale: t.get("scale").and_then(|s| s.as_float()).unwrap_or(1.0),
                sentinels: t
                    .get("sentinels")
                    .and_then(|s| s.as_array())
                    .map(|a| a.iter().filter_map(|x| x.as_integer()).collect())
                    .unwrap_or_default(),
            }
        })
        .collect()
}

fn words(p: &Point) -> u16 {
    match p.ty.as_str() {
        "u32" | "i32" | "f32" => 2,
        _ => 1,
    }
}

/// Decode a point from the registers of its table (index 0 = address 0). None = sentinel.
fn decode(p: &Point, regs: &[u16]) -> Option<f64> {
    let a = usize::from(p.address);
    let (hi, lo) = if p.word_order == "little" {
        (regs[a + 1], regs[a])
    } else {
        (regs[a], regs.get(a + 1).copied().unwrap_or(0))
    };
    let raw: f64 = match p.ty.as_str() {
        "i16" => {
            let v = i64::from(regs[a] as i16);
            if p.sentinels.contains(&v) {
                return None;
            }
            v as f64
        }
        "u16" => {
            let v = i64::from(regs[a]);
            if p.sentinels.contains(&v) {
                return None;
            }
            v as f64
        }
        "u32" => f64::from((u32::from(hi) << 16) | u32::from(lo)),
        "i32" => f64::from(((u32::from(hi) << 16) | u32::from(lo)) as i32),
        "f32" => f64::from(f32::from_bits((u32::from(hi) << 16) | u32::from(lo))),
        other => panic!("unknown type {other}"),
    };
    Some(raw * p.scale)
}

fn span(points: &[Point], table: &str) -> u16 {
    points
        .iter()
        .filter(|p| p.table == table)
        .map(|p| p.address + words(p))
        .max()
        .unwrap_or(0)
}

fn value<'a>(points: &'a [Point], name: &str) -> &'a Point {
    points
        .iter()
        .find(|p| p.name == name)
        .expect("point in map")
}

fn close(got: Option<f64>, want: Option<f64>, tol: f64, what: &str) {
    match (got, want) {
        (Some(g), Some(w)) => assert!((g - w).abs() <= tol, "{what}: read {g}, plant {w}"),
        (None, None) => {}
        _ => panic!("{what}: read {got:?}, plant {want:?}"),
    }
}

async fn start(text: &str) -> PlantServer {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let sc = Scenario::from_toml_str(text, &base, None, "<faces test>").expect("scenario");
    let mut plant = Plant::new(&sc).expect("plant");
    for _ in 0..90 {
        plant.step(10.0); // 15 minutes: every node has reported
    }
    serve_with(plant, ServeOptions::at_speed(0.0))
        .await
        .expect("serve")
}

const SCENARIO: &str = r#"
seed = 11
[buildings]
count = 2
floors = 3
units_per_floor = 3
[household_valves]
enabled = true
[room_nodes]
share_pct = 50.0
[[faults]]
kind = "sensor_sentinel"
target = "t2_return"
start_h = 0.0
duration_h = 100.0
"#;

#[tokio::test]
async fn every_face_reads_what_the_plant_holds() {
    let server = start(SCENARIO).await;
    let plant = server.plant();
    let addrs = server.addresses().clone();

    // Substation I/O.
    let io = load_map("substation-io.toml");
    let mut ctx = timeout(T, tcp::connect(addrs.substation_io))
        .await
        .expect("in time")
        .expect("connect");
    let input = within(ctx.read_input_registers(0, span(&io, "input")))
        .await
        .expect("no exception");
    let s = lock(&plant).sensors();
    for (name, want, tol) in [
        ("t_out", s.t_out_c, 0.05),
        ("t1_supply", s.t1_supply_c, 0.05),
        ("t1_return", s.t1_return_c, 0.05),
        ("t2_supply", s.t2_supply_c, 0.05),
        ("t2_return", s.t2_return_c, 0.05),
        ("p2_supply", Some(s.p2_supply_kpa), 0.5),
        ("p2_return", Some(s.p2_return_kpa), 0.5),
        ("valve1_pos", s.valve1_pos_pct, 0.05),
        ("pump2_speed", Some(s.pump2_speed_pct), 0.05),
    ] {
        close(decode(value(&io, name), &input), want, tol, name);
    }
    assert!(s.t2_return_c.is_none(), "the sentinel fault is on");
    assert_eq!(input[4], 0x7FFF);
    // Writing valve1_cmd moves the plant's command.
    let cmd = value(&io, "valve1_cmd");
    let raw = (73.4 / cmd.scale).round() as u16;
    within(ctx.write_single_register(cmd.address, raw))
        .await
        .expect("no exception");
    assert!((lock(&plant).truth().valve1_cmd_pct - 73.4).abs() < 1e-9);
    let holding = within(ctx.read_holding_registers(0, span(&io, "holding")))
        .await
        .expect("ok");
    close(
        decode(cmd, &holding),
        Some(73.4),
        0.05,
        "valve1_cmd read back",
    );
    // An address outside the map is an exception, not a crash.
    let bad = within(ctx.read_input_registers(40, 2)).await;
    assert_eq!(bad, Err(ExceptionCode::IllegalDataAddress));

    // Heat meter.
    let hm = load_map("heat-meter.toml");
    let mut ctx = timeout(T, tcp::connect(addrs.heat_meter))
        .await
        .expect("in time")
        .expect("connect");
    let input = within(ctx.read_input_registers(0, span(&hm, "input")))
        .await
        .expect("ok");
    let h = lock(&plant).heat_meter();
    close(
        decode(value(&hm, "power"), &input),
        h.power_kw,
        1e-3 * h.power_kw.unwrap_or(0.0).abs() + 1e-3,
        "power",
    );
    close(decode(value(&hm, "flow"), &input), h.flow_m3h, 1e-3, "flow");
    close(
        decode(value(&hm, "energy"), &input),
        Some(h.energy_kwh.floor()),
        0.0,
        "energy",
    );
    close(
        decode(value(&hm, "t_supply"), &input),
        h.t_supply_c,
        0.05,
        "t_supply",
    );
    close(
        decode(value(&hm, "t_return"), &input),
        h.t_return_c,
        0.05,
        "t_return",
    );
    assert!(h.energy_kwh > 1.0, "the meter counted: {}", h.energy_kwh);

    // Room-node gateways, RTU over TCP: every node that exists answers with its reading.
    let rn = load_map("room-node.toml");
    let mut checked = 0;
    for g in &addrs.room_gateways {
        assert!(!g.unit_ids.is_empty());
        for &unit in &g.unit_ids {
            let stream = TcpStream::connect(g.addr).await.expect("connect gateway");
            let mut ctx = rtu::attach_slave(stream, Slave(unit));
            let input = within(ctx.read_input_registers(0, span(&rn, "input")))
                .await
                .expect("ok");
            let holding = within(ctx.read_holding_registers(0, span(&rn, "holding")))
                .await
                .expect("ok");
            let p = lock(&plant);
            let k = p.room_node_by_unit(g.building, unit).expect("node");
            let r = p.room_node(k).expect("reading");
            close(
                decode(value(&rn, "temperature"), &input),
                r.temperature_c,
                0.005,
                "room temperature",
            );
            let truth = p.apartment_air_c()[r.apartment];
            let read = decode(value(&rn, "temperature"), &input).expect("value");
            assert!(
                (read - truth).abs() < 1.0,
                "node reads {read}, room is {truth}"
            );
            close(
                decode(value(&rn, "sample_counter"), &input),
                Some(f64::from(r.sample_counter)),
                0.0,
                "counter",
            );
            close(
                decode(value(&rn, "uptime_s"), &input),
                Some(r.uptime_s.floor()),
                0.0,
                "uptime",
            );
            close(
                decode(value(&rn, "unit_id"), &holding),
                Some(f64::from(unit)),
                0.0,
                "unit id",
            );
            close(
                decode(value(&rn, "report_interval_s"), &holding),
                Some(600.0),
                0.0,
                "interval",
            );
            assert_eq!(r.building, g.building);
            checked += 1;
        }
    }
    assert_eq!(
        checked,
        lock(&plant).room_node_count(),
        "every node answered"
    );

    // Household valve actuators: command and position.
    let va = load_map("valve-actuator.toml");
    let g = &addrs.valve_gateways[1];
    let stream = TcpStream::connect(g.addr)
        .await
        .expect("connect valve gateway");
    let mut ctx = rtu::attach_slave(stream, Slave(2));
    let c = value(&va, "command");
    within(ctx.write_single_register(c.address, 455))
        .await
        .expect("ok");
    let apartment = 9 + 1; // building 1, unit id 2
    let (pos, cmd) = lock(&plant).household_valve(apartment).expect("valve");
    assert!((cmd - 45.5).abs() < 1e-9);
    let input = within(ctx.read_input_registers(0, span(&va, "input")))
        .await
        .expect("ok");
    close(
        decode(value(&va, "position"), &input),
        Some(pos),
        0.05,
        "valve position",
    );
    server.shutdown().await;
}

fn rtu_frame(unit: u8, pdu: &[u8]) -> Vec<u8> {
    let mut f = vec![unit];
    f.extend_from_slice(pdu);
    let c = crc16(&f);
    f.extend_from_slice(&c.to_le_bytes());
    f
}

async fn reply_within(s: &mut TcpStream, wait: Duration) -> Vec<u8> {
    let mut buf = vec![0u8; 256];
    match timeout(wait, s.read(&mut buf)).await {
        Ok(Ok(n)) => buf[..n].to_vec(),
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn unknown_unit_ids_stay_silent_and_garbage_is_survived() {
    let server = start(SCENARIO).await;
    let g = server.addresses().room_gateways[0].clone();
    let known = g.unit_ids[0];
    let unknown = (1..=247u8)
        .find(|u| !g.unit_ids.contains(u))
        .expect("an id without a node");
    let mut s = TcpStream::connect(g.addr).await.expect("connect");
    let read = [0x04, 0x00, 0x00, 0x00, 0x01];

    s.write_all(&rtu_frame(unknown, &read)).await.expect("send");
    assert!(
        reply_within(&mut s, Duration::from_millis(300))
            .await
            .is_empty(),
        "unit {unknown} must not answer"
    );

    // Garbage, then a silent gap, then a valid request on the same connection.
    s.write_all(&[
        0xFF, 0x10, 0x00, 0x01, 0xAB, 0x03, 0x04, 0x99, 0x00, 0x42, 0x13,
    ])
    .await
    .expect("send");
    tokio::time::sleep(Duration::from_millis(150)).await;
    s.write_all(&rtu_frame(known, &read)).await.expect("send");
    let r = reply_within(&mut s, T).await;
    assert_eq!(r.len(), 7, "reply {r:02X?}");
    assert_eq!(&r[..3], &[known, 0x04, 0x02]);
    let c = crc16(&r[..5]);
    assert_eq!(&r[5..], &c.to_le_bytes());

    // A frame with a bad CRC is ignored.
    let mut bad = rtu_frame(known, &read);
    bad[6] ^= 0xFF;
    s.write_all(&bad).await.expect("send");
    assert!(
        reply_within(&mut s, Duration::from_millis(300))
            .await
            .is_empty()
    );

    // Garbage on a Modbus TCP face closes that connection, and the server keeps serving.
    let io = server.addresses().substation_io;
    let mut t = TcpStream::connect(io).await.expect("connect");
    t.write_all(b"GET / HTTP/1.1\r\n\r\n").await.expect("send");
    assert!(reply_within(&mut t, T).await.is_empty());
    let mut ctx = tcp::connect(io).await.expect("connect again");
    within(ctx.read_input_registers(0, 1)).await.expect("ok");
    server.shutdown().await;
}

#[tokio::test]
async fn device_faults_act_on_the_faces() {
    let server = start(
        r#"
        [buildings]
        count = 2
        floors = 2
        units_per_floor = 2
        [room_nodes]
        share_pct = 100.0
        [[faults]]
        kind = "device_exception"
        target = "heat_meter"
        start_h = 0.0
        duration_h = 10.0
        [[faults]]
        kind = "device_silent"
        target = "room_node:1"
        start_h = 0.0
        duration_h = 10.0
        [[faults]]
        kind = "gateway_reboot"
        target = "room_gateway:1"
        start_h = 0.0
        duration_h = 10.0
        [[faults]]
        kind = "device_drop"
        target = "room_node:3"
        start_h = 0.0
        duration_h = 10.0
        [[faults]]
        kind = "device_slow"
        target = "substation_io"
        start_h = 0.0
        duration_h = 10.0
        delay_ms = 400
        "#,
    )
    .await;
    let a = server.addresses().clone();
    let mut ctx = tcp::connect(a.heat_meter).await.expect("connect");
    let r = within(ctx.read_input_registers(0, 2)).await;
    assert_eq!(r, Err(ExceptionCode::ServerDeviceFailure));

    let mut ctx = tcp::connect(a.substation_io).await.expect("connect");
    assert!(
        timeout(Duration::from_millis(200), ctx.read_input_registers(0, 1))
            .await
            .is_err(),
        "slow reply"
    );
    let mut ctx = tcp::connect(a.substation_io)
        .await
        .expect("reconnect after the timeout");
    timeout(T, ctx.read_input_registers(0, 1))
        .await
        .expect("reply within 2 s")
        .expect("io")
        .expect("ok");

    let mut s = TcpStream::connect(a.room_gateways[0].addr)
        .await
        .expect("connect");
    s.write_all(&rtu_frame(2, &[0x04, 0, 0, 0, 1]))
        .await
        .expect("send");
    assert!(
        reply_within(&mut s, Duration::from_millis(300))
            .await
            .is_empty(),
        "node of apartment 1 is silent"
    );
    s.write_all(&rtu_frame(1, &[0x04, 0, 0, 0, 1]))
        .await
        .expect("send");
    assert_eq!(
        reply_within(&mut s, T).await.len(),
        7,
        "its neighbour answers"
    );

    // A dropping device closes the connection when addressed.
    s.write_all(&rtu_frame(4, &[0x04, 0, 0, 0, 1]))
        .await
        .expect("send");
    let mut buf = [0u8; 8];
    let n = timeout(T, s.read(&mut buf)).await.expect("closed in time");
    assert!(matches!(n, Ok(0) | Err(_)), "connection dropped: {n:?}");

    // The rebooting gateway closes connections at once.
    let mut s = TcpStream::connect(a.room_gateways[1].addr)
        .await
        .expect("tcp accept");
    let mut buf = [0u8; 8];
    let n = timeout(T, s.read(&mut buf)).await.expect("closed in time");
    assert!(matches!(n, Ok(0) | Err(_)), "connection closed: {n:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn the_time_base_advances_the_plant() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let sc =
        Scenario::from_toml_str("[buildings]\ncount = 1\n", &base, None, "<t>").expect("scenario");
    let server = heatctl_plant::serve(&sc, 3600.0).await.expect("serve");
    let plant = server.plant();
    let mut advanced = false;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if lock(&plant).time_s() >= 600.0 {
            advanced = true;
            break;
        }
    }
    assert!(advanced, "simulated time advances at speed 3600");
    server.shutdown().await;
}

/// The hydraulics' registers at the addresses of the common interface (inputs 9-13, holding 1),
/// read raw: 9 dp2_station and 10 dp2_index (0.1 kPa), 11 pump2_power (0.01 kW), 12 flow2
/// (0.01 m³/h), 13 pump2_status (bit 0 running, bit 1 dry-run trip); holding 1 pump2_speed_cmd
/// (0.1 %, 0..1000, else exception 03), which the pump follows at its ramp.
#[tokio::test]
async fn pump_and_pressure_registers() {
    let server = start(SCENARIO).await;
    let plant = server.plant();
    let addrs = server.addresses().clone();
    let mut ctx = timeout(T, tcp::connect(addrs.substation_io))
        .await
        .expect("in time")
        .expect("connect");
    let input = within(ctx.read_input_registers(0, 14))
        .await
        .expect("no exception");
    let (s, t) = {
        let p = lock(&plant);
        (p.sensors_substation(), p.truth())
    };
    let raw = |k: usize, scale: f64| f64::from(input[k]) * scale;
    assert!((raw(9, 0.1) - s.dp2_station_kpa.unwrap()).abs() <= 0.05);
    assert!((raw(10, 0.1) - s.dp2_index_kpa.unwrap()).abs() <= 0.05);
    assert!((raw(11, 0.01) - s.pump2_power_kw.unwrap()).abs() <= 0.005);
    assert!((raw(12, 0.01) - s.flow2_m3h.unwrap()).abs() <= 0.005);
    assert_eq!(input[13], 1, "running, not tripped");
    // Physically ordered: the station sees more than the index riser; p2 supply - return is the
    // station's differential pressure.
    assert!(raw(9, 0.1) > raw(10, 0.1) && raw(10, 0.1) > 1.0);
    assert!((s.p2_supply_kpa - s.p2_return_kpa - t.dp2_station_kpa).abs() < 1e-9);
    // Holding 1 reads the power-on command (100 %) and takes a new one.
    let holding = within(ctx.read_holding_registers(0, 2)).await.expect("ok");
    assert_eq!(holding[1], 1000);
    within(ctx.write_single_register(1, 600))
        .await
        .expect("no exception");
    assert!((lock(&plant).pump2_speed_cmd_pct() - 60.0).abs() < 1e-9);
    // Out of range: exception 03, nothing changed; both registers at once are accepted.
    let bad = within(ctx.write_single_register(1, 1001)).await;
    assert_eq!(bad, Err(ExceptionCode::IllegalDataValue));
    assert!((lock(&plant).pump2_speed_cmd_pct() - 60.0).abs() < 1e-9);
    within(ctx.write_multiple_registers(0, &[250, 700]))
        .await
        .expect("no exception");
    {
        let p = lock(&plant);
        assert!((p.truth().valve1_cmd_pct - 25.0).abs() < 1e-9);
        assert!((p.pump2_speed_cmd_pct() - 70.0).abs() < 1e-9);
    }
    // The pump follows at 2 %/s: 10 s of plant time take it from 100 % to 80 %, then to 70 %.
    lock(&plant).step(10.0);
    let input = within(ctx.read_input_registers(8, 1)).await.expect("ok");
    assert_eq!(input[0], 800);
    for _ in 0..2 {
        lock(&plant).step(10.0);
    }
    let input = within(ctx.read_input_registers(8, 5)).await.expect("ok");
    assert_eq!(input[0], 700);
    // The flow at 70 % is 70 % of the flow at 100 % (affinity on the quadratic network).
    let q100 = t.flow2_m3h;
    assert!((f64::from(input[4]) * 0.01 - 0.7 * q100).abs() <= 0.01);
    // A stop: speed 0 after the ramp, status bit 0 clear, no power.
    within(ctx.write_single_register(1, 0)).await.expect("ok");
    for _ in 0..4 {
        lock(&plant).step(10.0);
    }
    let input = within(ctx.read_input_registers(8, 6)).await.expect("ok");
    assert_eq!(input[0], 0, "speed");
    assert_eq!(input[3], 0, "power");
    assert_eq!(input[5], 0, "status");
    server.shutdown().await;
}
