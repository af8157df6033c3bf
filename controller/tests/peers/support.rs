//! Shared helpers of heatctl's field, SCADA, CLI and runtime tests (included with `#[path]`).
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "scratch.rs"]
mod scratch;
pub use scratch::Scratch;

/// The repository's `config/devices` folder.
pub fn devices_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/devices")
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Under CI a missing tool fails the test; elsewhere it is skipped with a note.
pub fn require(tool: &str, found: bool) -> bool {
    if found {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{tool} is required under CI (run hil-tests/run-tests to install it)");
    }
    eprintln!("SKIPPED: {tool} not installed (hil-tests/run-tests installs it)");
    false
}

/// The python with pymodbus: $HEATCTL_PYTHON, else hil-tests/.venv.
pub fn python() -> Option<PathBuf> {
    let p = std::env::var_os("HEATCTL_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../hil-tests/.venv/bin/python")
        });
    let ok = Command::new(&p)
        .args([
            "-c",
            "import pymodbus; assert pymodbus.__version__ == '3.16.1'",
        ])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(p)
}

/// Whether mbpoll is installed.
pub fn mbpoll_found() -> bool {
    Command::new("mbpoll")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// A child process killed on drop.
pub struct Peer(pub Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start the pymodbus peer (`tests/peers/field_peer.py`) and wait until it listens.
pub fn start_pymodbus(python: &Path, port: u16, framer: &str, devices_json: &str) -> Peer {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/field_peer.py");
    let mut child = Command::new(python)
        .arg(script)
        .args([
            "--port",
            &port.to_string(),
            "--framer",
            framer,
            devices_json,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the pymodbus peer");
    let stdout = child.stdout.take().expect("peer stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("peer output");
    assert_eq!(line.trim(), "ready", "pymodbus peer did not start");
    Peer(child)
}

/// Poll `f` every 20 ms until it gives `Some`, at most `limit`.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Async version of [`wait_for`].
pub async fn wait_until<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if tokio::time::Instant::now() > end {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A link table in TOML.
pub fn link_toml(name: &str, kind: &str, port: u16, timeout_ms: u64) -> String {
    format!(
        "[[links]]\nname = \"{name}\"\nkind = \"{kind}\"\nhost = \"127.0.0.1\"\nport = {port}\n\
         baud = 19200\ntimeout_ms = {timeout_ms}\nreconnect_min_ms = 50\nreconnect_max_ms = 400\n"
    )
}

/// A device table in TOML, with a shipped map.
pub fn device_toml(name: &str, link: &str, unit: u8, map_file: &str) -> String {
    let map = devices_dir().join(map_file);
    format!(
        "[[devices]]\nname = \"{name}\"\nlink = \"{link}\"\nunit_id = {unit}\nmap = \"{}\"\n",
        map.display()
    )
}

/// The head of a configuration (site and curve).
pub const HEAD: &str = "[site]\nname = \"test\"\n[curve]\npoints = [{ outdoor_c = -20.0, supply_c = 70.0 }, { outdoor_c = 15.0, supply_c = 30.0 }]\n";

/// Raw input registers of the substation I/O map (addresses 0..8).
pub const PLC_IR: [u16; 9] = [
    (-52i16) as u16, // t_out -5.2
    900,             // t1_supply 90.0
    500,             // t1_return 50.0
    550,             // t2_supply 55.0
    400,             // t2_return 40.0
    300,             // p2_supply
    200,             // p2_return
    423,             // valve1_pos 42.3
    500,             // pump2_speed
];

/// Write a file into a fresh temporary folder and return its path. The folder is removed when
/// the calling test ends ([`Scratch::until_test_ends`]).
pub fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = Scratch::new(&format!(
        "heatctl-test-{}-{}",
        std::process::id(),
        free_port()
    ))
    .until_test_ends();
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write temp file");
    path
}

/// Run mbpoll; returns (success, stdout + stderr).
pub fn mbpoll(args: &[&str]) -> (bool, String) {
    let out = Command::new("mbpoll")
        .args(args)
        .output()
        .expect("run mbpoll");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The values mbpoll printed (`[n]: \tvalue` lines).
pub fn mbpoll_values(text: &str) -> Vec<i64> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix('[').and_then(|r| r.split_once("]:")))
        .filter_map(|(_, v)| v.trim().parse().ok())
        .collect()
}

/// Run mbpoll against a Modbus TCP server on 127.0.0.1:`port`, unit 1, one poll:
/// `opts` before the host, `values` (to write) after it.
pub fn mbpoll_tcp(port: u16, opts: &[&str], values: &[&str]) -> (bool, String) {
    let port = port.to_string();
    let mut args = vec!["-m", "tcp", "-a", "1", "-1", "-p", &port];
    args.extend_from_slice(opts);
    args.push("127.0.0.1");
    args.extend_from_slice(values);
    mbpoll(&args)
}

/// Holding register 0 (mbpoll `-r 1`) of the Modbus TCP server on `port`, if it answers.
pub fn read_hr0(port: u16) -> Option<i64> {
    let (_, out) = mbpoll_tcp(port, &["-t", "4", "-r", "1", "-c", "1"], &[]);
    mbpoll_values(&out).first().copied()
}

/// Start the heatctl binary with `args`, then `--config path`, logging at info level to
/// `path` with the extension `log`.
pub fn start_heatctl(args: &[&str], path: &Path) -> Peer {
    let log = std::fs::File::create(path.with_extension("log")).expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_heatctl"))
        .args(args)
        .arg("--config")
        .arg(path)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start heatctl");
    Peer(child)
}

/// Send the signal `sig` (e.g. `-TERM`) to the process `pid`.
pub fn send_signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig}");
}

/// Wait at most `limit` for `peer` to exit; its status.
pub fn wait_exit(peer: &mut Peer, limit: Duration) -> Option<std::process::ExitStatus> {
    wait_for(limit, || peer.0.try_wait().ok().flatten())
}

/// The python with pymodbus, when mbpoll is installed too (else the test is skipped, or fails
/// under CI, as [`require`] says).
pub fn python_and_mbpoll() -> Option<PathBuf> {
    let py = python();
    if !require("pymodbus 3.16.1", py.is_some()) || !require("mbpoll", mbpoll_found()) {
        return None;
    }
    py
}

/// A pymodbus substation I/O (unit 1: input registers [`PLC_IR`], holding register 0 at 0)
/// on `port`.
pub fn start_plc(python: &Path, port: u16) -> Peer {
    start_pymodbus(
        python,
        port,
        "tcp",
        &format!(r#"[{{"id": 1, "ir": {PLC_IR:?}, "hr": [0]}}]"#),
    )
}

/// A fresh, empty directory for one test run: `heatctl-NAME-PID` in the system temp dir,
/// removed when the calling test ends ([`Scratch::until_test_ends`]).
pub fn temp_dir(name: &str) -> PathBuf {
    Scratch::new(&format!("heatctl-{name}-{}", std::process::id())).until_test_ends()
}

/// Run the heatctl binary under test with `args`: (exit code, -1 on a signal; stdout; stderr).
pub fn heatctl(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_heatctl"))
        .args(args)
        .output()
        .expect("run heatctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
