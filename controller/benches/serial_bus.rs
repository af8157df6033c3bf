//! Bus use of heatctl's `rtu` link against the physical limit at 9600 baud, for the room-node
//! map (`config/devices/room-node.toml`: one read of 3 holding and one of 8 input registers per
//! node).
//!
//! A socat pseudo-terminal pair with pymodbus's RTU slave (`tests/peers/rtu_serial_peer.py`)
//! serving eight room nodes. A pty has no baud timing, so the slave gives it a 9600 8E1 line's
//! (`--line-baud 9600`): each answer is held until its last byte would have arrived, i.e. the
//! request's characters, 3.5 characters of silence, the answer's characters after the request
//! began to arrive. heatctl keeps its own 3.5-character silence before the next request. The
//! theoretical maximum counts exactly those: (request + answer bytes) × 11 bits / 9600 + two
//! 3.5-character silences, with no turnaround beyond the slave's frame detection. The ratio
//! is achieved / theoretical transactions per second. A second row runs the bare pty (no line
//! timing) for heatctl's own pacing alone.
//!
//!     cargo bench -p heatctl --bench serial_bus [-- SECONDS]
//!
//! Needs socat and a Python with pymodbus 3.16.1 and pyserial 3.5 (as the serial tests).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, dead_code)]

#[path = "../tests/peers/support.rs"]
mod support;

#[path = "../tests/peers/serial_line.rs"]
mod serial_line;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use heatctl::config::{self, Link, LinkKind, Parity};
use heatctl::field::link::{inter_frame_gap, wire_time};
use heatctl::field::{FieldHandle, FieldShared, plan_links};
use heatctl::runtime::WallClock;
use serial_line::*;
use support::*;

const UNITS: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

fn bus_link() -> Link {
    Link {
        baud: 9600,
        parity: Parity::Even,
        stop_bits: 1,
        ..Link::new("bus", LinkKind::Rtu)
    }
}

/// Seconds of one transaction on the line at its physical limit: both frames and the two
/// 3.5-character silences (the slave's end-of-request detection, the master's before the next).
fn transaction_s(request_bytes: usize, answer_bytes: usize) -> f64 {
    let link = bus_link();
    (wire_time(&link, request_bytes + answer_bytes) + inter_frame_gap(&link) * 2).as_secs_f64()
}

/// Requests per second heatctl achieved over `seconds` against the slave, with or without
/// the line's timing.
fn run(python: &Path, seconds: f64, line_timing: bool) -> (f64, u64) {
    let dir = temp_dir(if line_timing {
        "bench-line"
    } else {
        "bench-pty"
    });
    let pty = PtyPair::start(&dir);
    let tap = dir.join("tap.log");
    let nodes: Vec<String> = UNITS.iter().map(|&u| node_json(u, 2100)).collect();
    let extra: &[&str] = if line_timing {
        &["--line-baud", "9600"]
    } else {
        &[]
    };
    let _peer = start_rtu_peer(
        python,
        &pty.slave,
        "E",
        &tap,
        extra,
        &format!("[{}]", nodes.join(", ")),
    );
    // Every point due every 100 ms (the shortest period allowed): more than eight nodes can
    // be read in that time, so the link polls back to back.
    let map = fast_room_map(&dir, 0.1);
    let nodes: String = UNITS
        .iter()
        .map(|u| format!("{{ id = \"n{u}\", link = \"bus\", unit_id = {u} }},\n"))
        .collect();
    let text = format!(
        "{HEAD}[[links]]\nname = \"bus\"\nkind = \"rtu\"\nserial_port = \"{}\"\nbaud = 9600\n\
         parity = \"even\"\nstop_bits = 1\ntimeout_ms = 500\n[rooms]\nmap = \"{}\"\nnodes = [\n{nodes}]\n",
        pty.master.display(),
        map.display()
    );
    let path = dir.join("bench.toml");
    std::fs::write(&path, text).unwrap();
    let loaded = config::load(&path).unwrap_or_else(|p| panic!("{p}"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let shared = Arc::new(FieldShared::default());
    runtime.block_on(async {
        let mut field = FieldHandle::start(
            plan_links(&loaded),
            Arc::new(WallClock),
            Arc::clone(&shared),
        );
        // Warm up until every node answered, then count.
        for _ in 0..500 {
            let stats = shared.stats();
            if UNITS
                .iter()
                .all(|u| stats.get(&format!("room:n{u}")).is_some_and(|s| s.answered))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let count = |s: &FieldShared| -> (u64, u64) {
            s.stats()
                .values()
                .fold((0, 0), |(r, e), d| (r + d.requests, e + d.errors))
        };
        let (r0, e0) = count(&shared);
        let t0 = std::time::Instant::now();
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        let (r1, e1) = count(&shared);
        let elapsed = t0.elapsed().as_secs_f64();
        field.stop();
        ((r1 - r0) as f64 / elapsed, e1 - e0)
    })
}

fn main() {
    let seconds: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5.0);
    let Some(python) = python() else {
        eprintln!("serial_bus: needs a Python with pymodbus 3.16.1 and pyserial (HEATCTL_PYTHON)");
        return;
    };
    if !socat_found() {
        return;
    }
    // Room-node map: holding 0..3 (8-byte request, 5 + 6 = 11-byte answer) and input 0..8
    // (8-byte request, 5 + 16 = 21-byte answer), one of each per node and round.
    let holding_s = transaction_s(8, 11);
    let input_s = transaction_s(8, 21);
    let theoretical_tps = 2.0 / (holding_s + input_s);
    let (line_tps, line_errors) = run(&python, seconds, true);
    let (pty_tps, pty_errors) = run(&python, seconds, false);
    println!(
        "serial bus use, room-node map, {} nodes, 9600 8E1 (11 bits a character), {seconds} s a row",
        UNITS.len()
    );
    println!(
        "theoretical: holding read {:.2} ms, input read {:.2} ms a transaction (frames + 2 x 3.5 characters)",
        holding_s * 1e3,
        input_s * 1e3
    );
    println!(
        "{:<44} {:>10} {:>12} {:>8} {:>7}",
        "", "trans/s", "nodes/min", "ratio", "errors"
    );
    println!(
        "{:<44} {:>10.2} {:>12.0} {:>8.3} {:>7}",
        "theoretical maximum at 9600 baud",
        theoretical_tps,
        theoretical_tps * 30.0,
        1.0,
        "-"
    );
    println!(
        "{:<44} {:>10.2} {:>12.0} {:>8.3} {:>7}",
        "heatctl, pty with the line's timing",
        line_tps,
        line_tps * 30.0,
        line_tps / theoretical_tps,
        line_errors
    );
    println!(
        "{:<44} {:>10.2} {:>12.0} {:>8.3} {:>7}",
        "heatctl, bare pty (its own pacing only)",
        pty_tps,
        pty_tps * 30.0,
        pty_tps / theoretical_tps,
        pty_errors
    );
    println!("nodes/min: full reads of a node's map (two transactions) per minute");
}
