//! heatctl's field layer against pymodbus (an independent implementation): Modbus TCP with a
//! substation I/O and a heat meter, RTU over TCP with room nodes, laid out like the shipped maps.

#[path = "peers/support.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use heatctl::config::{self, DecodeError};
use heatctl::control::Signal;
use heatctl::field::{FieldHandle, FieldShared, plan_links};
use heatctl::runtime::{WallClock, build_image};
use support::*;

fn f32_words(v: f32) -> [u16; 2] {
    let b = v.to_bits();
    [(b >> 16) as u16, (b & 0xFFFF) as u16]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_tcp_and_rtu_over_tcp_peers_and_writes_with_read_back() {
    let Some(py) = python() else {
        require("pymodbus 3.16.1", false);
        return;
    };
    let tcp_port = free_port();
    let gw_port = free_port();
    let [p0, p1] = f32_words(1234.5);
    let [f0, f1] = f32_words(12.25);
    let plc = format!(r#"{{"id": 1, "ir": {:?}, "hr": [0]}}"#, PLC_IR);
    let meter = format!(r#"{{"id": 2, "ir": [{p0}, {p1}, {f0}, {f1}, 4464, 1, 950, 550, 0]}}"#);
    let _tcp = start_pymodbus(&py, tcp_port, "tcp", &format!("[{plc}, {meter}]"));
    let node = |id: u8, t: u16| {
        format!(r#"{{"id": {id}, "ir": [{t}, 4000, 0, 5, 10, 0, 100, 258], "hr": [{id}, 0, 60]}}"#)
    };
    let _gw = start_pymodbus(
        &py,
        gw_port,
        "rtu",
        &format!(
            r#"[{}, {}, {}, {{"id": 11, "ir": [500, 0], "hr": [0]}}]"#,
            node(1, 2150),
            node(2, 1987),
            node(3, 0x7FFF)
        ),
    );

    let rooms_map = devices_dir().join("room-node.toml");
    let text = format!(
        "{HEAD}{}{}{}{}[points]\nt_out = \"plc.t_out\"\nt2_supply = \"plc.t2_supply\"\nvalve1_pos_pct = \"plc.valve1_pos\"\n\
         valve1_cmd = \"plc.valve1_cmd\"\npower1_kw = \"meter.power\"\nflow1_m3h = \"meter.flow\"\n\
         [household_valves]\nmap = \"{}\"\n[rooms]\nmap = \"{}\"\nnodes = [\n{{ id = \"n1\", link = \"gw\", unit_id = 1, valve_link = \"gw\", valve_unit_id = 11 }},\n\
         {{ id = \"n2\", link = \"gw\", unit_id = 2 }},\n{{ id = \"n3\", link = \"gw\", unit_id = 3 }},\n]\n",
        link_toml("plc_link", "tcp", tcp_port, 500),
        link_toml("gw", "rtu_over_tcp", gw_port, 500),
        device_toml("plc", "plc_link", 1, "substation-io.toml"),
        device_toml("meter", "plc_link", 2, "heat-meter.toml"),
        devices_dir().join("valve-actuator.toml").display(),
        rooms_map.display()
    );
    let path = temp_file("field.toml", &text);
    let loaded = config::load(&path).unwrap_or_else(|p| panic!("{p}"));
    let shared = Arc::new(FieldShared::default());
    let field = FieldHandle::start(
        plan_links(&loaded),
        Arc::new(WallClock),
        Arc::clone(&shared),
    );

    let got = wait_until(Duration::from_secs(10), || {
        let all = [
            shared.reading("plc", "t_out"),
            shared.reading("meter", "energy"),
            shared.reading("room:n1", "temperature"),
            shared.reading("room:n2", "firmware_version"),
            shared.reading("room:n3", "temperature"),
        ];
        all.iter().all(Option::is_some).then_some(all)
    })
    .await
    .expect("every device read within 10 s");
    let v = |i: usize| got[i].and_then(|r| r.value);
    assert_eq!(v(0), Some(-5.2));
    assert_eq!(v(1), Some(70_000.0), "u32 low word first");
    assert_eq!(v(2), Some(21.5));
    assert_eq!(v(3), Some(258.0));
    assert_eq!(got[4].and_then(|r| r.error), Some(DecodeError::Sentinel));
    assert_eq!(
        shared.reading("meter", "power").and_then(|r| r.value),
        Some(1234.5)
    );
    assert_eq!(
        shared.reading("meter", "flow").and_then(|r| r.value),
        Some(12.25)
    );

    // The process image the controller sees.
    let image = build_image(
        &loaded,
        &shared,
        heatctl::runtime::Clock::mono_s(&WallClock),
    );
    let t2 = image.get(Signal::T2Supply).expect("t2_supply read");
    assert!(t2.valid && (t2.value - 55.0).abs() < 1e-9);
    assert!(image.rooms[0].is_some_and(|s| s.valid && (s.value - 21.5).abs() < 1e-9));
    assert!(
        image.rooms[2].is_some_and(|s| !s.valid),
        "sentinel node is invalid"
    );

    // Merged reads: the plc's nine input registers in one request, not nine.
    let stats = shared.stats();
    assert!(stats["plc"].requests >= 2 && stats["plc"].errors == 0);
    assert!(stats["room:n1"].last_latency_ms.is_some());

    // A command is written and verified by read-back.
    write_verified(&field, &shared, "plc", "valve1_cmd", 37.5, "write verified").await;

    // A household valve behind the RTU gateway: position read, command written and verified.
    let pos = wait_until(Duration::from_secs(5), || {
        shared
            .reading("hh_valve:n1", "position")
            .and_then(|r| r.value)
    })
    .await;
    assert_eq!(pos, Some(50.0));
    assert_eq!(image.hh_valve_pos_pct.len(), 3);
    write_verified(
        &field,
        &shared,
        "hh_valve:n1",
        "command",
        40.0,
        "RTU write verified",
    )
    .await;
    assert!(
        field.set_write("plc", "valve1_cmd", 150.0).is_err(),
        "outside the map's range"
    );
    assert!(
        field.set_write("plc", "t2_supply", 1.0).is_err(),
        "not writable"
    );
}

/// Write `value` to `device`'s `point`, wait until the read-back verifies it, and check that no
/// write or communication alarm condition is left.
async fn write_verified(
    field: &FieldHandle,
    shared: &FieldShared,
    device: &str,
    point: &str,
    value: f64,
    what: &str,
) {
    field.set_write(device, point, value).expect("writable");
    assert!(field.flush_writes(Duration::from_secs(5)).await, "{what}");
    assert_eq!(shared.alarm_conditions(), (false, false));
}
