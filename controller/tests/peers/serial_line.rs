//! Serial lines for heatctl's `rtu` link tests: a pseudo-terminal pair made by socat, the
//! pymodbus RTU slave on one end (`tests/peers/rtu_serial_peer.py`), and the slave's tap log
//! (what it read and wrote, with times) parsed into frames and gaps. Included with `#[path]`.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use heatctl_plant::faces::crc16;

use super::support::{Peer, devices_dir, require, wait_for};

/// Whether socat is installed (else the test skips, or fails under CI).
pub fn socat_found() -> bool {
    let found = Command::new("socat")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    require("socat", found)
}

/// Two pseudo-terminals joined by socat, reached through the links `master` (heatctl's end)
/// and `slave` (the device's end) in `dir`. Killing it is unplugging the line.
pub struct PtyPair {
    pub master: PathBuf,
    pub slave: PathBuf,
    socat: Option<Peer>,
}

impl PtyPair {
    pub fn start(dir: &Path) -> Self {
        let mut pair = Self {
            master: dir.join("ttyHEATCTL"),
            slave: dir.join("ttyNODES"),
            socat: None,
        };
        pair.plug();
        pair
    }

    /// Start socat (again), with the same link names; wait until both links exist.
    pub fn plug(&mut self) {
        assert!(self.socat.is_none(), "already plugged");
        let end = |link: &Path| format!("pty,raw,echo=0,link={}", link.display());
        let child = Command::new("socat")
            .arg(end(&self.master))
            .arg(end(&self.slave))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start socat");
        self.socat = Some(Peer(child));
        let up = wait_for(Duration::from_secs(5), || {
            (self.master.exists() && self.slave.exists()).then_some(())
        });
        assert!(up.is_some(), "socat made no pty links");
    }

    /// Kill socat: both pseudo-terminals vanish, as a USB adapter does when pulled.
    pub fn unplug(&mut self) {
        drop(self.socat.take());
        // socat removes its links on exit; a killed one may leave them dangling.
        let _ = std::fs::remove_file(&self.master);
        let _ = std::fs::remove_file(&self.slave);
    }
}

/// Start the pymodbus RTU slave on `port`: 9600 baud, `parity` ("N" or "E"), tap log at
/// `tap`, extra arguments (e.g. `--late 4:250`), devices as for `field_peer.py`.
pub fn start_rtu_peer(
    python: &Path,
    port: &Path,
    parity: &str,
    tap: &Path,
    extra: &[&str],
    devices_json: &str,
) -> Peer {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/rtu_serial_peer.py");
    let mut child = Command::new(python)
        .arg(script)
        .arg("--port")
        .arg(port)
        .args(["--baud", "9600", "--parity", parity, "--tap"])
        .arg(tap)
        .args(extra)
        .arg(devices_json)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the pymodbus RTU peer");
    let stdout = child.stdout.take().expect("peer stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("peer output");
    assert_eq!(line.trim(), "ready", "pymodbus RTU peer did not start");
    Peer(child)
}

/// A room node for the peer: input registers (temperature in 0.01 °C, humidity, status,
/// counter, unchanged, uptime high/low, firmware version) and holding registers (unit id,
/// calibration offset, report interval).
pub fn node_json(unit: u8, temperature: u16) -> String {
    format!(
        r#"{{"id": {unit}, "ir": [{temperature}, 4000, 0, 5, 10, 0, 100, 258], "hr": [{unit}, 0, 60]}}"#
    )
}

/// The shipped room-node map with every poll period set to `poll_period_s` (and max ages
/// kept above it), written to `dir`: the tests want many transactions in a few seconds.
pub fn fast_room_map(dir: &Path, poll_period_s: f64) -> PathBuf {
    let text = std::fs::read_to_string(devices_dir().join("room-node.toml")).expect("room map");
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("poll_period_s") {
                format!("poll_period_s = {poll_period_s}")
            } else if l.starts_with("max_age_s") {
                format!("max_age_s = {}", (poll_period_s * 20.0).max(1.0))
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = dir.join("room-node-fast.toml");
    std::fs::write(&path, text).expect("write map");
    path
}

/// One chunk the slave read (`rx`: from heatctl) or wrote (`tx`), with the slave's monotonic
/// time in ns: after the read returned; before the write began (see the peer script).
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub t_ns: u64,
    pub rx: bool,
    pub bytes: Vec<u8>,
}

/// The tap log as chunks.
pub fn read_tap(tap: &Path) -> Vec<Chunk> {
    let text = std::fs::read_to_string(tap).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let t_ns = parts.next()?.parse().ok()?;
            let rx = parts.next()? == "rx";
            let hex = parts.next()?;
            let bytes = (0..hex.len())
                .step_by(2)
                .filter_map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                .collect();
            Some(Chunk { t_ns, rx, bytes })
        })
        .collect()
}

/// A frame in one direction: consecutive chunks of one direction joined, with the time of the
/// first chunk and of the last.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub rx: bool,
    pub first_ns: u64,
    pub last_ns: u64,
    pub bytes: Vec<u8>,
}

/// Join the chunks into frames at every change of direction (the bus is half duplex: the
/// master speaks, one slave answers, or nobody does).
pub fn frames(chunks: &[Chunk]) -> Vec<Frame> {
    let mut out: Vec<Frame> = Vec::new();
    for c in chunks {
        match out.last_mut() {
            Some(f) if f.rx == c.rx => {
                f.last_ns = c.t_ns;
                f.bytes.extend_from_slice(&c.bytes);
            }
            _ => out.push(Frame {
                rx: c.rx,
                first_ns: c.t_ns,
                last_ns: c.t_ns,
                bytes: c.bytes.clone(),
            }),
        }
    }
    out
}

/// Whether `frame` ends with the CRC of the rest.
pub fn crc_ok(frame: &[u8]) -> bool {
    frame.len() >= 4 && {
        let (body, crc) = frame.split_at(frame.len() - 2);
        crc16(body) == u16::from_le_bytes([crc[0], crc[1]])
    }
}

/// Split a run of master bytes into request frames by their own length (function codes 3, 4,
/// 6 and 16, all heatctl sends to room nodes): `None` for bytes that make no request.
pub fn split_requests(bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let len = match rest.get(1)? {
            1..=6 => 8,
            15 | 16 => 9 + usize::from(*rest.get(6)?),
            _ => return None,
        };
        out.push(rest.get(..len)?.to_vec());
        rest = &rest[len..];
    }
    Some(out)
}

/// The silences the master left after each answer, in ms: from just before the slave began
/// writing its answer to just after it read the master's next request. The master cannot have
/// received the answer before it was written, nor sent the request after it was read, so a
/// measured gap is never shorter than the silence the master kept.
pub fn gaps_ms(frames: &[Frame]) -> Vec<f64> {
    frames
        .windows(2)
        .filter(|w| !w[0].rx && w[1].rx)
        .map(|w| (w[1].first_ns.saturating_sub(w[0].last_ns)) as f64 / 1e6)
        .collect()
}

/// The median of `v` (sorted copy).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied().unwrap_or(f64::NAN)
}
