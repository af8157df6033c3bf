//! Running as a systemd service: the notify protocol (`Type=notify`) and logs for journald.
//!
//! systemd hands a service the address of its notification socket in `NOTIFY_SOCKET` and, with
//! `WatchdogSec=`, the watchdog period in `WATCHDOG_USEC` (for the process in `WATCHDOG_PID`).
//! The service sends newline-separated `KEY=value` assignments as one datagram each:
//! `READY=1` once it serves, `WATCHDOG=1` at least once per period, `STATUS=` with a line for
//! `systemctl status`, `STOPPING=1` when it begins to stop. Without `NOTIFY_SOCKET` (started by
//! hand, or embedded in the demo) every call here does nothing.
//!
//! The runtime calls [`Notifier::cycle_done`] at the end of every control cycle and nowhere
//! else, so the watchdog is fed by the control loop itself: a loop that hangs stops the pings
//! and systemd restarts the service, even though the process is still alive.
//!
//! For the tests only: when `HEATCTL_DEBUG_STALL_FILE` names a file, a control cycle that
//! begins while that file exists blocks (the loop's thread sleeps) until it is removed; this is
//! how a test shows that a hung loop, not a dead process, stops the watchdog.

pub mod journal;

use std::io;
#[cfg(target_os = "linux")]
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::control::{Mode, Signal};
use crate::station::StationSnapshot;

/// Environment variable naming the stall file (tests only; see the module documentation).
pub const DEBUG_STALL_ENV: &str = "HEATCTL_DEBUG_STALL_FILE";

/// How often a changed state line is sent when no watchdog is configured (with a watchdog it
/// goes with the pings).
pub const STATUS_EVERY: Duration = Duration::from_secs(10);

/// The interval between watchdog pings for a watchdog period of `usec` microseconds
/// (`WATCHDOG_USEC`), when the period applies to this process (`WATCHDOG_PID` unset or equal
/// to `my_pid`). Half the period, as systemd recommends. None: no watchdog (unset, not a
/// positive number, or meant for another process).
#[must_use]
pub fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, my_pid: u32) -> Option<Duration> {
    if let Some(pid) = pid
        && pid.trim().parse::<u32>().ok() != Some(my_pid)
    {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok().filter(|u| *u > 0)?;
    Some(Duration::from_micros(usec) / 2)
}

/// The socket address in `NOTIFY_SOCKET`: a path, or `@name` for Linux's abstract namespace.
///
/// # Errors
/// The value is empty, neither an absolute path nor `@name`, or names an abstract socket on a
/// system without them.
pub fn notify_address(value: &str) -> io::Result<SocketAddr> {
    let invalid =
        |why: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("{why}: {value:?}"));
    if let Some(name) = value.strip_prefix('@') {
        #[cfg(target_os = "linux")]
        return SocketAddr::from_abstract_name(name.as_bytes());
        #[cfg(not(target_os = "linux"))]
        return Err(invalid("abstract socket addresses are Linux only"));
    }
    if value.starts_with('/') {
        SocketAddr::from_pathname(value)
    } else {
        Err(invalid(
            "NOTIFY_SOCKET is neither an absolute path nor @name",
        ))
    }
}

/// The one-line state for `systemctl status`, from a cycle's snapshot: mode, secondary supply
/// measured and set, the primary valve, the rooms' median and the active alarm codes.
#[must_use]
pub fn status_line(snapshot: &StationSnapshot) -> String {
    let dash = || "-".to_owned();
    let one = |v: Option<f64>| {
        v.filter(|v| v.is_finite())
            .map_or_else(dash, |v| format!("{v:.1}"))
    };
    let mode = match snapshot.settings.mode {
        Mode::Auto => "auto".to_owned(),
        Mode::Off => "off".to_owned(),
        Mode::Manual(pct) => format!("manual {pct:.0} %"),
    };
    let valve1_pct = snapshot.commands.valve1_cmd_pct;
    let valve1 = if valve1_pct.is_finite() {
        format!("{valve1_pct:.0} %")
    } else {
        dash()
    };
    let rooms = &snapshot.rooms;
    let codes = snapshot.alarm_codes();
    let alarms = if codes.is_empty() {
        "none".to_owned()
    } else {
        let codes: Vec<String> = codes.iter().map(u16::to_string).collect();
        codes.join(",")
    };
    format!(
        "{mode}; t2_supply {} °C, setpoint {} °C; valve1 {valve1}; rooms median {} °C ({} of {} used); alarms {alarms}",
        one(snapshot.valid_value(Signal::T2Supply)),
        one(snapshot.explanation.setpoint_c),
        one(rooms.stats.median_c),
        rooms.stats.used,
        rooms.stats.expected,
    )
}

/// The service manager's end of the notify protocol, as the runtime uses it.
#[derive(Debug)]
pub struct Notifier {
    socket: Option<(UnixDatagram, SocketAddr)>,
    watchdog_every: Option<Duration>,
    last_watchdog: Option<Instant>,
    ready_sent: bool,
    status: String,
    status_sent: String,
    status_sent_at: Option<Instant>,
    send_failed: bool,
    stall_file: Option<PathBuf>,
}

impl Notifier {
    /// A notifier that sends nothing (not a service, or embedded in another program).
    #[must_use]
    pub fn disabled() -> Self {
        Self {
            socket: None,
            watchdog_every: None,
            last_watchdog: None,
            ready_sent: false,
            status: String::new(),
            status_sent: String::new(),
            status_sent_at: None,
            send_failed: false,
            stall_file: None,
        }
    }

    /// The notifier systemd's environment asks for (`NOTIFY_SOCKET`, `WATCHDOG_USEC`,
    /// `WATCHDOG_PID`). A malformed `NOTIFY_SOCKET` is logged and ignored: the service then
    /// fails its start timeout, which names the cause in the journal.
    #[must_use]
    pub fn from_env() -> Self {
        let mut n = Self::disabled();
        n.stall_file = std::env::var_os(DEBUG_STALL_ENV).map(PathBuf::from);
        let Some(value) = std::env::var_os("NOTIFY_SOCKET") else {
            return n;
        };
        let value = value.to_string_lossy();
        let socket = notify_address(&value).and_then(|addr| {
            let s = UnixDatagram::unbound()?;
            // A full queue on the manager's side must never block the control loop: a ping
            // that cannot be sent at once is dropped (the next one follows within the period).
            s.set_nonblocking(true)?;
            Ok((s, addr))
        });
        match socket {
            Ok(s) => n.socket = Some(s),
            Err(e) => {
                tracing::error!(error = %e, "cannot use NOTIFY_SOCKET; not notifying systemd");
                return n;
            }
        }
        let usec = std::env::var("WATCHDOG_USEC").ok();
        let pid = std::env::var("WATCHDOG_PID").ok();
        n.watchdog_every = watchdog_interval(usec.as_deref(), pid.as_deref(), std::process::id());
        if let Some(every) = n.watchdog_every {
            tracing::info!(
                ping_every_ms = every.as_millis(),
                "systemd watchdog on: pinged from the control cycle"
            );
        }
        n
    }

    /// Whether a service manager is listening.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// How often the watchdog is pinged (half its period), if it is on.
    #[must_use]
    pub fn watchdog_every(&self) -> Option<Duration> {
        self.watchdog_every
    }

    /// Send one notification (newline-separated assignments). Errors are logged once; a
    /// notification is never worth stopping the controller for.
    pub fn send(&mut self, message: &str) {
        let Some((socket, addr)) = &self.socket else {
            return;
        };
        match socket.send_to_addr(message.as_bytes(), addr) {
            Ok(_) => self.send_failed = false,
            Err(e) => {
                if !self.send_failed {
                    tracing::warn!(error = %e, "systemd notification not sent");
                }
                self.send_failed = true;
            }
        }
    }

    /// Set the one-line state shown by `systemctl status`; sent with the next ping (without a
    /// watchdog: at most once every [`STATUS_EVERY`]).
    pub fn set_status(&mut self, status: &str) {
        // One line, as systemd shows it.
        self.status = status.replace(['\n', '\r'], " ");
    }

    /// Block while the debug stall file exists (tests only; see the module documentation).
    /// Called at the start of a control cycle.
    pub fn hold_while_stalled(&self) {
        let Some(file) = &self.stall_file else {
            return;
        };
        if !file.exists() {
            return;
        }
        tracing::warn!(file = %file.display(), "debug stall: control cycle held");
        while file.exists() {
            std::thread::sleep(Duration::from_millis(20));
        }
        tracing::warn!("debug stall: control cycle released");
    }

    /// A control cycle has completed: the first one sends `READY=1`; then `WATCHDOG=1` once
    /// every [`Self::watchdog_every`], with `STATUS=` when the state line changed.
    pub fn cycle_done(&mut self) {
        if !self.is_enabled() {
            return;
        }
        let now = Instant::now();
        let mut parts: Vec<String> = Vec::new();
        if !self.ready_sent {
            parts.push("READY=1".into());
            self.ready_sent = true;
        }
        let ping = match (self.watchdog_every, self.last_watchdog) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(every), Some(last)) => now.duration_since(last) >= every,
        };
        if ping {
            parts.push("WATCHDOG=1".into());
            self.last_watchdog = Some(now);
        }
        let status_every = self.watchdog_every.unwrap_or(STATUS_EVERY);
        let status_due = !parts.is_empty()
            || self
                .status_sent_at
                .is_none_or(|at| now.duration_since(at) >= status_every);
        if status_due && self.status != self.status_sent {
            parts.push(format!("STATUS={}", self.status));
            self.status_sent.clone_from(&self.status);
            self.status_sent_at = Some(now);
        }
        if !parts.is_empty() {
            self.send(&parts.join("\n"));
        }
    }

    /// The service begins to stop: `STOPPING=1` (before the safe positions are written).
    pub fn stopping(&mut self, why: &str) {
        self.send(&format!(
            "STOPPING=1\nSTATUS=stopping ({why}): writing safe positions"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_interval_is_half_the_period_for_this_process() {
        let half = Some(Duration::from_millis(15_000));
        assert_eq!(watchdog_interval(Some("30000000"), None, 7), half);
        assert_eq!(watchdog_interval(Some("30000000"), Some("7"), 7), half);
        assert_eq!(
            watchdog_interval(Some("30000000"), Some("8"), 7),
            None,
            "meant for another process"
        );
        assert_eq!(watchdog_interval(None, None, 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("soon"), None, 7), None);
    }

    #[test]
    fn notify_addresses() {
        let p = notify_address("/run/systemd/notify").expect("path");
        assert_eq!(
            p.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        assert!(notify_address("relative/notify").is_err());
        assert!(notify_address("").is_err());
        #[cfg(target_os = "linux")]
        {
            let a = notify_address("@heatctl-test").expect("abstract");
            assert_eq!(a.as_abstract_name(), Some(&b"heatctl-test"[..]));
        }
    }

    #[test]
    fn disabled_notifier_sends_nothing_and_does_not_block() {
        let mut n = Notifier::disabled();
        n.set_status("auto");
        n.cycle_done();
        n.stopping("test");
        n.hold_while_stalled();
        assert!(!n.is_enabled());
    }

    #[test]
    fn ready_once_then_watchdog_and_status_over_a_socket() {
        let dir = crate::state_dir::scratch::Scratch::new(&format!(
            "heatctl-notify-unit-{}",
            std::process::id()
        ));
        let path = dir.join("notify");
        let _ = std::fs::remove_file(&path);
        let rx = UnixDatagram::bind(&path).expect("bind");
        let mut n = Notifier::disabled();
        let tx = UnixDatagram::unbound().expect("socket");
        n.socket = Some((tx, SocketAddr::from_pathname(&path).expect("addr")));
        // A period so long that only the first cycle pings.
        n.watchdog_every = Some(Duration::from_secs(3600));
        n.set_status("auto, valve1 20 %");
        n.cycle_done();
        n.cycle_done();
        n.set_status("line\none");
        n.stopping("SIGTERM");
        let mut buf = [0u8; 512];
        let mut got = Vec::new();
        rx.set_nonblocking(true).expect("nonblocking");
        while let Ok(len) = rx.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..len]).into_owned());
        }
        assert_eq!(
            got,
            vec![
                "READY=1\nWATCHDOG=1\nSTATUS=auto, valve1 20 %".to_owned(),
                "STOPPING=1\nSTATUS=stopping (SIGTERM): writing safe positions".to_owned(),
            ],
            "the second cycle is within the period: nothing sent"
        );
        assert_eq!(n.status, "line one", "status is one line");
    }
}
