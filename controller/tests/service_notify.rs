//! `heatctl run` speaks systemd's notify protocol over the datagram socket in `NOTIFY_SOCKET`:
//! READY=1 once, WATCHDOG=1 from the control cycle at the rate `WATCHDOG_USEC` asks for, and
//! no WATCHDOG=1 while the control cycle is stalled although the process lives (so systemd
//! restarts a hung loop); STOPPING=1 on SIGTERM. Here the test is the service manager.

#[path = "peers/support.rs"]
mod support;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// The watchdog period handed to heatctl, µs: pings every 300 ms.
const WATCHDOG_USEC: u64 = 600_000;
/// Clock speed of the run: a control cycle every 50 ms, six cycles per ping.
const CLOCK_SPEED: &str = "20";
/// Liveness limit of each wait (generous: the machine may be busy).
const LIMIT: Duration = Duration::from_secs(60);

/// A configuration whose one device does not answer (nothing listens on its port): the run
/// goes on with alarms, which is all the protocol needs.
fn write_config(dir: &Path) -> PathBuf {
    let path = dir.join("heatctl.toml");
    let text = format!(
        "{HEAD}{}{}[points]\nt2_supply = \"plc.t2_supply\"\nvalve1_cmd = \"plc.valve1_cmd\"\n",
        link_toml("plc_link", "tcp", free_port(), 200),
        device_toml("plc", "plc_link", 1, "substation-io.toml"),
    );
    std::fs::write(&path, text).expect("config");
    path
}

/// The manager's socket: every datagram received, with the time it arrived.
struct Manager {
    socket: UnixDatagram,
}

impl Manager {
    fn bind(path: &Path) -> Self {
        let socket = UnixDatagram::bind(path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        Self { socket }
    }

    /// The next datagram, if one arrives within the read timeout.
    fn recv(&self) -> Option<String> {
        let mut buf = [0u8; 4096];
        let len = self.socket.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..len]).into_owned())
    }

    /// Receive until `pred` holds for a datagram (returned, with those before it), at most LIMIT.
    fn until(&self, what: &str, pred: impl Fn(&str) -> bool) -> (String, Vec<String>) {
        let end = Instant::now() + LIMIT;
        let mut before = Vec::new();
        while Instant::now() < end {
            if let Some(m) = self.recv() {
                if pred(&m) {
                    return (m, before);
                }
                before.push(m);
            }
        }
        panic!("no {what} within {LIMIT:?}; received {before:?}");
    }

    /// Everything received during `span`.
    fn during(&self, span: Duration) -> Vec<String> {
        let end = Instant::now() + span;
        let mut got = Vec::new();
        while Instant::now() < end {
            if let Some(m) = self.recv() {
                got.push(m);
            }
        }
        got
    }
}

fn has(message: &str, assignment: &str) -> bool {
    message.lines().any(|l| l == assignment)
}

fn log_has(path: &Path, needle: &str) -> Option<()> {
    std::fs::read_to_string(path)
        .ok()
        .filter(|l| l.contains(needle))
        .map(|_| ())
}

fn kill(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig}");
}

fn start(dir: &Path, config: &Path, socket: &Path, watchdog_pid: Option<&str>) -> Peer {
    let log = std::fs::File::create(dir.join("heatctl.log")).expect("log file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_heatctl"));
    cmd.args(["run", "--dry-run", "--clock-speed", CLOCK_SPEED, "--config"])
        .arg(config)
        .env("NOTIFY_SOCKET", socket)
        .env("WATCHDOG_USEC", WATCHDOG_USEC.to_string())
        .env("HEATCTL_DEBUG_STALL_FILE", dir.join("stall"))
        .env("RUST_LOG", "info")
        .env_remove("JOURNAL_STREAM")
        .stdout(Stdio::null())
        .stderr(log);
    if let Some(pid) = watchdog_pid {
        cmd.env("WATCHDOG_PID", pid);
    }
    Peer(cmd.spawn().expect("start heatctl"))
}

#[test]
fn ready_watchdog_at_its_rate_stall_and_stopping() {
    let dir = temp_dir("notify");
    let config = write_config(&dir);
    let socket = dir.join("notify");
    let manager = Manager::bind(&socket);
    let mut heatctl = start(&dir, &config, &socket, None);
    let pid = heatctl.0.id();

    // READY=1 comes first, once, with the first state line and the first ping.
    let (first, before) = manager.until("READY=1", |m| has(m, "READY=1"));
    assert!(before.is_empty(), "nothing before READY=1: {before:?}");
    assert!(has(&first, "WATCHDOG=1"), "first cycle pings: {first:?}");
    let status = first
        .lines()
        .find_map(|l| l.strip_prefix("STATUS="))
        .unwrap_or_else(|| panic!("a state line with READY=1: {first:?}"));
    assert!(
        status.starts_with("auto; t2_supply"),
        "state line: {status}"
    );
    assert!(
        status.contains("alarms ") && !status.contains("alarms none"),
        "the unreachable device raises alarms: {status}"
    );

    // Pings keep coming, and not more often than every half period, although a control cycle
    // runs six times as often. Counted over the span the test saw (a busy machine only makes
    // the span longer, never the count larger).
    let started = Instant::now();
    let mut pings = 0u32;
    let mut others = Vec::new();
    while pings < 8 {
        let (m, before) = manager.until("WATCHDOG=1", |m| has(m, "WATCHDOG=1"));
        others.extend(before);
        assert!(!has(&m, "READY=1"), "READY=1 is sent once");
        pings += 1;
    }
    let span = started.elapsed();
    let every = Duration::from_micros(WATCHDOG_USEC) / 2;
    let most = (span.as_secs_f64() / every.as_secs_f64()).floor() as u32 + 1;
    assert!(
        pings <= most,
        "{pings} pings in {span:?}: at most {most} at one per {every:?}"
    );
    assert!(
        others.iter().all(|m| !has(m, "READY=1")),
        "READY=1 is sent once: {others:?}"
    );

    // Stall the control cycle: the pings stop while the process lives.
    let stall = dir.join("stall");
    std::fs::write(&stall, "").expect("stall file");
    let log = dir.join("heatctl.log");
    wait_for(LIMIT, || log_has(&log, "debug stall: control cycle held"))
        .expect("the control cycle stalls");
    let _ = manager.during(Duration::from_millis(100)); // a ping sent as the stall began
    let silent = manager.during(Duration::from_micros(3 * WATCHDOG_USEC));
    assert!(
        silent.iter().all(|m| !has(m, "WATCHDOG=1")),
        "no ping while the control cycle is stalled: {silent:?}"
    );
    assert!(
        heatctl.0.try_wait().expect("try_wait").is_none(),
        "the process is alive while its control cycle is stalled"
    );

    // Released, the cycle pings again: the silence was the stall's.
    std::fs::remove_file(&stall).expect("release");
    let _ = manager.until("WATCHDOG=1 after the stall", |m| has(m, "WATCHDOG=1"));

    // SIGTERM: STOPPING=1, then the safe positions and a clean exit.
    kill(pid, "-TERM");
    let (stopping, _) = manager.until("STOPPING=1", |m| has(m, "STOPPING=1"));
    assert!(
        stopping.contains("STATUS=stopping (SIGTERM)"),
        "state line on stopping: {stopping:?}"
    );
    let status = wait_for(LIMIT, || heatctl.0.try_wait().ok().flatten()).expect("heatctl exits");
    assert!(status.success(), "exit status {status:?}");
    wait_for(LIMIT, || {
        log_has(&log, "dry run: would write safe position")
    })
    .expect("safe positions after STOPPING=1");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn watchdog_for_another_process_is_not_pinged() {
    let dir = temp_dir("notify-pid");
    let config = write_config(&dir);
    let socket = dir.join("notify");
    let manager = Manager::bind(&socket);
    // WATCHDOG_PID names a process that is not heatctl (pid 1): READY=1 yes, pings no.
    let heatctl = start(&dir, &config, &socket, Some("1"));
    let (first, _) = manager.until("READY=1", |m| has(m, "READY=1"));
    assert!(!has(&first, "WATCHDOG=1"), "{first:?}");
    let later = manager.during(Duration::from_micros(3 * WATCHDOG_USEC));
    assert!(
        later.iter().all(|m| !has(m, "WATCHDOG=1")),
        "no ping for another process's watchdog: {later:?}"
    );
    drop(heatctl);
    std::fs::remove_dir_all(dir).ok();
}
