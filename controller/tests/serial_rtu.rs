//! heatctl's `rtu` link on a real serial line: a pseudo-terminal pair made by socat, with
//! pymodbus's RTU slave (through pyserial) on the far end, serving room nodes at 9600 baud.
//! What the slave read and wrote is logged with times on its side (the tap), so the frames
//! heatctl put on the line and the silences it kept between them are checked from the line,
//! not from heatctl's own account.
//!
//! A pseudo-terminal has no baud timing and no parity bit (Linux refuses PARENB on one; the
//! peer then serves 8N1 and says so): the bytes of a frame arrive at once. heatctl must
//! therefore keep the inter-frame silence by its own clock, from the link's configured baud
//! and framing (9600 8E1: 11 bits a character, 3.5 characters = 4.01 ms).
//!
//! Needs socat and a Python with pymodbus 3.16.1 and pyserial 3.5 (`HEATCTL_PYTHON`, else
//! `hil-tests/.venv/bin/python`); without them the tests skip, except under CI, where they fail.

#[path = "peers/support.rs"]
mod support;

#[path = "peers/serial_line.rs"]
mod serial_line;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use heatctl::config::{self, Link, LinkKind, Parity};
use heatctl::field::link::inter_frame_gap;
use heatctl::field::{FieldHandle, FieldShared, plan_links};
use heatctl::runtime::WallClock;
use heatctl::runtime::clock::Clock;
use serial_line::*;
use support::*;

/// The python with pymodbus and pyserial, and socat; `None` to skip.
fn tools() -> Option<PathBuf> {
    let py = python().filter(|p| {
        std::process::Command::new(p)
            .args(["-c", "import serial"])
            .status()
            .is_ok_and(|s| s.success())
    });
    if !require("pymodbus 3.16.1 with pyserial 3.5", py.is_some()) || !socat_found() {
        return None;
    }
    py
}

/// A configuration with one `rtu` link on `port` at 9600 8E1 and room nodes `units` on it,
/// read with `map`.
fn load(
    dir: &Path,
    port: &Path,
    timeout_ms: u64,
    map: &Path,
    units: &[u8],
) -> config::LoadedConfig {
    let nodes: String = units
        .iter()
        .map(|u| format!("{{ id = \"n{u}\", link = \"bus\", unit_id = {u} }},\n"))
        .collect();
    let text = format!(
        "{HEAD}[[links]]\nname = \"bus\"\nkind = \"rtu\"\nserial_port = \"{}\"\nbaud = 9600\n\
         parity = \"even\"\nstop_bits = 1\ntimeout_ms = {timeout_ms}\nreconnect_min_ms = 50\n\
         reconnect_max_ms = 400\n[rooms]\nmap = \"{}\"\nnodes = [\n{nodes}]\n",
        port.display(),
        map.display()
    );
    let path = dir.join("serial.toml");
    std::fs::write(&path, text).expect("write config");
    config::load(&path).unwrap_or_else(|p| panic!("{p}"))
}

fn start_field(loaded: &config::LoadedConfig) -> (FieldHandle, Arc<FieldShared>) {
    let shared = Arc::new(FieldShared::default());
    let field = FieldHandle::start(plan_links(loaded), Arc::new(WallClock), Arc::clone(&shared));
    (field, shared)
}

/// The 3.5-character silence heatctl owes the line at 9600 8E1.
fn gap_9600_8e1_ms() -> f64 {
    let link = Link {
        baud: 9600,
        parity: Parity::Even,
        stop_bits: 1,
        ..Link::new("bus", LinkKind::Rtu)
    };
    inter_frame_gap(&link).as_secs_f64() * 1000.0
}

fn temperature(shared: &FieldShared, node: u8) -> Option<f64> {
    let now = WallClock.mono_s();
    shared
        .sample(&format!("room:n{node}"), "temperature", now)
        .filter(|s| s.valid)
        .map(|s| s.value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_writes_room_nodes_with_correct_frames_and_gaps() {
    let Some(py) = tools() else { return };
    let dir = temp_dir("serial-frames");
    let pty = PtyPair::start(&dir);
    let tap = dir.join("tap.log");
    let nodes = format!(
        "[{}, {}, {}]",
        node_json(1, 2150),
        node_json(2, 1987),
        node_json(3, 2301)
    );
    let _peer = start_rtu_peer(&py, &pty.slave, "E", &tap, &[], &nodes);
    let map = fast_room_map(&dir, 0.1);
    let loaded = load(&dir, &pty.master, 300, &map, &[1, 2, 3]);
    let (mut field, shared) = start_field(&loaded);

    let got = wait_until(Duration::from_secs(10), || {
        let all = [
            temperature(&shared, 1)?,
            temperature(&shared, 2)?,
            temperature(&shared, 3)?,
        ];
        Some(all)
    })
    .await
    .expect("every node read over the serial line within 10 s");
    assert_eq!(got, [21.5, 19.87, 23.01]);
    assert_eq!(
        shared
            .reading("room:n2", "firmware_version")
            .and_then(|r| r.value),
        Some(258.0)
    );

    // A write lands: the calibration offset of node 2, verified by read-back.
    field
        .set_write("room:n2", "calibration_offset", -1.25)
        .expect("calibration_offset is writable");
    let settled = wait_until(Duration::from_secs(10), || {
        shared.writes_settled().then_some(())
    })
    .await;
    assert!(settled.is_some(), "the write settled");
    let (_, write_failed) = shared.alarm_conditions();
    assert!(!write_failed, "the write was verified by read-back");

    // A few more seconds of polling for the gap statistics.
    tokio::time::sleep(Duration::from_secs(2)).await;
    field.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stats = shared.stats();
    for n in 1..=3 {
        let s = &stats[&format!("room:n{n}")];
        assert_eq!(
            s.errors, 0,
            "n{n}: no failed request on a clean line: {s:?}"
        );
        assert!(s.requests >= 10, "n{n} polled repeatedly: {s:?}");
    }

    // The line, as the slave saw it.
    let frames = frames(&read_tap(&tap));
    let mut requests = 0;
    let mut wrote_offset = false;
    let mut last_request: Option<Vec<u8>> = None;
    for f in &frames {
        if f.rx {
            let reqs = split_requests(&f.bytes)
                .unwrap_or_else(|| panic!("not a request: {:02x?}", f.bytes));
            assert_eq!(
                reqs.len(),
                1,
                "one request per turn of the line: {:02x?}",
                f.bytes
            );
            let req = &reqs[0];
            assert!(crc_ok(req), "request CRC: {req:02x?}");
            assert!(
                (1..=3).contains(&req[0]),
                "addressed to a configured unit: {req:02x?}"
            );
            // Function 6, register 1, -125 (0.01 K): the calibration offset of unit 2.
            if req[..6] == [2, 6, 0, 1, 0xFF, 0x83] {
                wrote_offset = true;
            }
            requests += 1;
            last_request = Some(req.clone());
        } else {
            let req = last_request.take().expect("an answer follows a request");
            assert!(crc_ok(&f.bytes), "answer CRC: {:02x?}", f.bytes);
            assert_eq!(
                f.bytes[..2],
                req[..2],
                "answer from the unit asked, same function"
            );
        }
    }
    assert!(wrote_offset, "the write frame went out on the line");
    assert!(requests >= 30, "{requests} requests on the line");

    // Inter-frame silence: at least 3.5 characters after every answer. A pseudo-terminal
    // delivers a frame at once, so this is heatctl's own pacing.
    let gaps = gaps_ms(&frames);
    let least = gaps.iter().copied().fold(f64::INFINITY, f64::min);
    let need = gap_9600_8e1_ms();
    eprintln!(
        "{} gaps after answers: least {least:.3} ms, median {:.3} ms; 3.5 characters at 9600 8E1 = {need:.3} ms",
        gaps.len(),
        median(&gaps)
    );
    assert!(gaps.len() >= 20, "{} gaps measured", gaps.len());
    assert!(
        least >= need,
        "heatctl sent a request {least:.3} ms after an answer, less than 3.5 characters ({need:.3} ms)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_and_a_late_unit_do_not_disturb_the_others() {
    let Some(py) = tools() else { return };
    let dir = temp_dir("serial-timeout");
    let pty = PtyPair::start(&dir);
    let tap = dir.join("tap.log");
    // Unit 3 is not on the bus (never answers); unit 4 answers 250 ms late, after heatctl's
    // 150 ms timeout (plus the frames' time on the wire at 9600 baud, 33 ms).
    let nodes = format!(
        "[{}, {}, {}]",
        node_json(1, 2150),
        node_json(2, 1987),
        node_json(4, 1234)
    );
    let _peer = start_rtu_peer(&py, &pty.slave, "E", &tap, &["--late", "4:250"], &nodes);
    let map = fast_room_map(&dir, 0.2);
    let loaded = load(&dir, &pty.master, 150, &map, &[1, 2, 3, 4]);
    let (mut field, shared) = start_field(&loaded);

    // For five seconds the answering nodes read fresh and valid, with their own values.
    let mut checks = 0;
    let mut fresh = 0;
    for _ in 0..25 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        checks += 1;
        let (t1, t2) = (temperature(&shared, 1), temperature(&shared, 2));
        for (node, t, want) in [(1, t1, 21.5), (2, t2, 19.87)] {
            if let Some(t) = t {
                assert_eq!(
                    t, want,
                    "n{node} read its own temperature, not another unit's"
                );
            }
        }
        if t1.is_some() && t2.is_some() {
            fresh += 1;
        }
    }
    field.stop();
    let stats = shared.stats();
    eprintln!("{stats:#?}");
    assert!(
        fresh >= checks - 3,
        "n1 and n2 valid in {fresh} of {checks} checks"
    );
    for n in [1, 2] {
        let s = &stats[&format!("room:n{n}")];
        assert_eq!(s.errors, 0, "n{n} never failed beside the bad units: {s:?}");
        assert!(s.requests >= 10, "n{n} kept being polled: {s:?}");
    }
    for n in [3, 4] {
        let s = &stats[&format!("room:n{n}")];
        assert!(s.timeouts >= 2 && s.comm_lost(), "n{n} timed out: {s:?}");
    }
    assert!(
        temperature(&shared, 4).is_none(),
        "the late unit's answer was never taken"
    );
    // The late answers did go out on the line (so the test exercised them).
    let late_answers = frames(&read_tap(&tap))
        .iter()
        .filter(|f| !f.rx && f.bytes.first() == Some(&4))
        .count();
    assert!(late_answers >= 2, "{late_answers} late answers on the line");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_unplugged_and_plugged_back_is_reconnected() {
    let Some(py) = tools() else { return };
    let dir = temp_dir("serial-unplug");
    let mut pty = PtyPair::start(&dir);
    let tap = dir.join("tap.log");
    let nodes = format!("[{}]", node_json(1, 2150));
    let peer = start_rtu_peer(&py, &pty.slave, "E", &tap, &[], &nodes);
    let map = fast_room_map(&dir, 0.1);
    let loaded = load(&dir, &pty.master, 150, &map, &[1]);
    let (mut field, shared) = start_field(&loaded);
    let first = wait_until(Duration::from_secs(10), || temperature(&shared, 1)).await;
    assert_eq!(first, Some(21.5));

    // Pulled: socat and the far end gone.
    pty.unplug();
    drop(peer);
    let lost = wait_until(Duration::from_secs(10), || {
        shared.stats()["room:n1"].comm_lost().then_some(())
    })
    .await;
    assert!(lost.is_some(), "the node reported lost while unplugged");
    assert!(
        temperature(&shared, 1).is_none(),
        "no valid reading while unplugged"
    );
    // While it stays unplugged the link retries with backoff (50 ms doubling to 400 ms):
    // a handful of attempts in two seconds, not a busy loop.
    let before = shared.stats()["room:n1"].errors;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let attempts = shared.stats()["room:n1"].errors - before;
    assert!(
        (1..=20).contains(&attempts),
        "{attempts} failed attempts in 2 s while unplugged"
    );

    // Plugged back, same names: readings resume without a restart.
    pty.plug();
    let _peer = start_rtu_peer(&py, &pty.slave, "E", &tap, &[], &nodes);
    let since = WallClock.mono_s();
    let back = wait_until(Duration::from_secs(10), || {
        let r = shared.reading("room:n1", "temperature")?;
        (r.read_at_s > since && !shared.stats()["room:n1"].comm_lost()).then_some(r.value)
    })
    .await;
    assert_eq!(back, Some(Some(21.5)), "readings resumed after replugging");
    field.stop();
}
