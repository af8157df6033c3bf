//! The soak: weeks of simulated operation at high speed over real Modbus, watching heatctl's
//! resources. `plant-sim` serves the demo plant (`scenarios/closed-demo.toml`, the season's
//! weather from `weather/weather-hohhot-synthetic.csv`) and writes heatctl's configuration; the release
//! `heatctl` runs against it at the same clock speed, with
//!
//! * a dead room node (plant fault `device_silent` for the whole run),
//! * a flapping room gateway: building 1's gateway is reached through a TCP relay in this
//!   process that is up for 10 simulated minutes, then down for 10 (every connection closed,
//!   new ones accepted and closed at once, as a rebooting gateway does: the plant's own
//!   `gateway_reboot` fault, which would need 72 timeline entries a day),
//! * a configuration reload every simulated day (SIGHUP on odd days, the file rewritten on even
//!   days).
//!
//! Every `sample_h` simulated hours it samples heatctl's resident memory (`VmRSS` of
//! `/proc/PID/status`), its open file descriptors (`/proc/PID/fd`) and its log, and the plant's
//! status line (time, secondary supply, rooms). [`SoakReport::violations`] checks the bounds:
//! no RSS growth beyond 1 MB after the first day, no more descriptors than the first day saw,
//! log lines per simulated day within [`LOG_LINES_PER_DAY_MAX`], a reload a day, and heatctl
//! alive and keeping the rooms warm.
//!
//! Simulated time is the wall time since the plant started times the speed (the plant's time
//! base follows the wall clock; its status lines report the plant's own time, which the report
//! prints beside).

use std::io::{BufRead, BufReader, Read};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::process::{
    BUILD_HINT, Heatctl, PLANT_SIM_BUILD_HINT, RigDir, Signal, heatctl_binary, plant_sim_binary,
};

/// Simulated seconds of a day.
pub const DAY_S: f64 = 86_400.0;
/// Allowed growth of heatctl's resident memory after the first simulated day, kB.
pub const RSS_GROWTH_MAX_KB: u64 = 1024;
/// Log lines heatctl may write in one simulated day with the soak's faults. Each change of
/// state is a line: the flapping gateway's link fails and works again (72 flaps a day, two or
/// three lines each with a rate-limited count), the dead node's reads are summarised hourly,
/// the statistics are hourly, a reload is two lines; alarms are a line on raise and one on
/// clear. 30 days at 3000x on a loaded 2-core machine measured 153-556 lines a day (median
/// 185; the high days are short stale-reading alarms of the substation I/O, 103-108, raised and
/// cleared when the starved rig missed a poll). Before the rate limiter a dead node logged a
/// line per poll.
pub const LOG_LINES_PER_DAY_MAX: usize = 700;
/// How far the daily median of open descriptors may move from the first day's.
pub const FD_MEDIAN_DRIFT_MAX: usize = 1;
/// Minutes of simulated time the flapping gateway is up, then down.
pub const FLAP_MIN: f64 = 10.0;

/// How to soak.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// Simulated days.
    pub days: f64,
    /// Clock speed (simulated seconds per wall second) of the plant and heatctl.
    pub speed: f64,
    /// Simulated hours between samples.
    pub sample_h: f64,
    /// Name of the scratch directory (kept when the soak fails).
    pub name: String,
}

impl Default for SoakOptions {
    fn default() -> Self {
        Self {
            days: 30.0,
            speed: 3000.0,
            sample_h: 3.0,
            name: "soak".into(),
        }
    }
}

/// One sample.
#[derive(Debug, Clone, PartialEq)]
pub struct SoakSample {
    /// Simulated time since the start, s.
    pub sim_s: f64,
    /// The plant's own time from its last status line, s.
    pub plant_s: Option<f64>,
    /// heatctl's resident memory, kB.
    pub rss_kb: u64,
    /// heatctl's open file descriptors.
    pub fds: usize,
    /// Lines of heatctl's log so far.
    pub log_lines: usize,
    /// The plant's mean room air temperature, °C (its last status line).
    pub rooms_mean_c: Option<f64>,
    /// The flapping gateway was up when sampled.
    pub gateway_up: bool,
}

/// What a soak measured.
#[derive(Debug, Clone, Default)]
pub struct SoakReport {
    /// The samples, in time order.
    pub samples: Vec<SoakSample>,
    /// Log lines written in each simulated day.
    pub log_lines_per_day: Vec<usize>,
    /// Reloads heatctl logged (`configuration reloaded`).
    pub reloads_logged: usize,
    /// Reloads asked for.
    pub reloads_asked: usize,
    /// Times the gateway went down.
    pub flaps: usize,
    /// heatctl was still running at the end.
    pub alive_at_end: bool,
    /// Lines of the log that say `panicked`.
    pub panics: usize,
    /// The plant could not keep up with the speed at some moment (its warning; printed, not a
    /// bound: the soak measures heatctl).
    pub plant_lagged: bool,
    /// Wall time of the soak, s.
    pub wall_s: f64,
    /// Where the log and the samples are (kept when the soak fails).
    pub dir: PathBuf,
}

impl SoakReport {
    /// Resident memory at the end of the first simulated day (the baseline), kB.
    #[must_use]
    pub fn rss_after_day1_kb(&self) -> Option<u64> {
        self.samples
            .iter()
            .find(|s| s.sim_s >= DAY_S)
            .map(|s| s.rss_kb)
    }

    /// Largest resident memory after the first day, kB.
    #[must_use]
    pub fn rss_max_later_kb(&self) -> Option<u64> {
        self.samples
            .iter()
            .filter(|s| s.sim_s >= DAY_S)
            .map(|s| s.rss_kb)
            .max()
    }

    /// The median of the open descriptors sampled in each simulated day.
    #[must_use]
    pub fn fd_daily_medians(&self) -> Vec<usize> {
        let mut days: Vec<Vec<usize>> = Vec::new();
        for s in &self.samples {
            let d = (s.sim_s / DAY_S) as usize;
            if days.len() <= d {
                days.resize(d + 1, Vec::new());
            }
            days[d].push(s.fds);
        }
        days.into_iter()
            .filter(|d| !d.is_empty())
            .map(|d| median(&d))
            .collect()
    }

    /// (min, max) open descriptors over the first day, and over the rest.
    #[must_use]
    pub fn fd_ranges(&self) -> ((usize, usize), (usize, usize)) {
        let range = |it: &mut dyn Iterator<Item = usize>| {
            it.fold((usize::MAX, 0), |(lo, hi), v| (lo.min(v), hi.max(v)))
        };
        let first = range(
            &mut self
                .samples
                .iter()
                .filter(|s| s.sim_s < DAY_S)
                .map(|s| s.fds),
        );
        let later = range(
            &mut self
                .samples
                .iter()
                .filter(|s| s.sim_s >= DAY_S)
                .map(|s| s.fds),
        );
        (first, later)
    }

    /// Every bound the soak checks that failed, in words (empty: all held).
    #[must_use]
    pub fn violations(&self) -> Vec<String> {
        let mut v = Vec::new();
        if !self.alive_at_end {
            v.push("heatctl was not running at the end".to_owned());
        }
        if self.panics > 0 {
            v.push(format!("{} panic line(s) in heatctl's log", self.panics));
        }
        match (self.rss_after_day1_kb(), self.rss_max_later_kb()) {
            (Some(base), Some(max)) if max > base + RSS_GROWTH_MAX_KB => v.push(format!(
                "resident memory grew {} kB after the first day ({base} -> {max} kB; at most {RSS_GROWTH_MAX_KB})",
                max - base
            )),
            (Some(_), Some(_)) => {}
            _ => v.push("no sample after the first simulated day".to_owned()),
        }
        // A link that is reconnecting holds a second socket for a moment, so single samples
        // vary by a few; a leak (one per flap, per reload) moves the daily median.
        let medians = self.fd_daily_medians();
        if let Some(&first) = medians.first()
            && let Some(&worst) = medians.iter().max()
            && worst > first + FD_MEDIAN_DRIFT_MAX
        {
            v.push(format!(
                "open descriptors grew: daily median {first} on day 1, {worst} later ({medians:?})"
            ));
        }
        for (d, &n) in self.log_lines_per_day.iter().enumerate() {
            if n > LOG_LINES_PER_DAY_MAX {
                v.push(format!(
                    "day {}: {n} log lines (at most {LOG_LINES_PER_DAY_MAX})",
                    d + 1
                ));
            }
        }
        if self.reloads_logged < self.reloads_asked {
            v.push(format!(
                "{} reloads asked, {} logged as done",
                self.reloads_asked, self.reloads_logged
            ));
        }
        if let Some(t) = self.samples.last().and_then(|s| s.rooms_mean_c)
            && t < 19.0
        {
            v.push(format!(
                "rooms at {t:.1} °C on average at the end: control lost"
            ));
        }
        v
    }

    /// The samples and the figures as a plain-text table.
    #[must_use]
    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str("  sim h  plant h  gateway   RSS kB  fds  log lines  rooms °C\n");
        for s in &self.samples {
            out.push_str(&format!(
                "{:7.1} {:8} {:>8} {:8} {:4} {:10} {:>9}\n",
                s.sim_s / 3600.0,
                s.plant_s
                    .map_or_else(|| "-".to_owned(), |t| format!("{:.1}", t / 3600.0)),
                if s.gateway_up { "up" } else { "down" },
                s.rss_kb,
                s.fds,
                s.log_lines,
                s.rooms_mean_c
                    .map_or_else(|| "-".to_owned(), |t| format!("{t:.2}"))
            ));
        }
        let ((f_lo, f_hi), (l_lo, l_hi)) = self.fd_ranges();
        let per_day = &self.log_lines_per_day;
        out.push_str(&format!(
            "\nwall {:.0} s; gateway flaps {}; reloads asked {}, logged {}; the plant {}\n\
             RSS after day 1: {} kB, largest later: {} kB (growth at most {RSS_GROWTH_MAX_KB} kB)\n\
             open fds: day 1 {f_lo}..{f_hi}, later {}..{}; daily medians {:?}\n\
             log lines per simulated day: {:?} (max {}, median {}, bound {LOG_LINES_PER_DAY_MAX})\n",
            self.wall_s,
            self.flaps,
            self.reloads_asked,
            self.reloads_logged,
            if self.plant_lagged {
                "lagged behind the speed at times (its warning; heatctl's figures stand)"
            } else {
                "kept up"
            },
            self.rss_after_day1_kb()
                .map_or_else(|| "-".to_owned(), |v| v.to_string()),
            self.rss_max_later_kb()
                .map_or_else(|| "-".to_owned(), |v| v.to_string()),
            if l_lo == usize::MAX { 0 } else { l_lo },
            l_hi,
            self.fd_daily_medians(),
            per_day,
            per_day.iter().max().copied().unwrap_or(0),
            median(per_day),
        ));
        out
    }
}

fn median(v: &[usize]) -> usize {
    let mut s = v.to_vec();
    s.sort_unstable();
    s.get(s.len() / 2).copied().unwrap_or(0)
}

/// The relay in front of the flapping gateway: while `up`, each accepted connection is
/// relayed to `upstream`; while down, accepted connections are closed at once and the open
/// ones are shut.
struct Relay {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
}

impl Relay {
    fn start(upstream: SocketAddr) -> std::io::Result<Relay> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let up = Arc::new(AtomicBool::new(true));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (up2, open2, stop2) = (Arc::clone(&up), Arc::clone(&open), Arc::clone(&stop));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = conn else { continue };
                if !up2.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let pair = (client.try_clone(), server.try_clone());
                let (Ok(c2), Ok(s2)) = pair else { continue };
                {
                    let mut o = open2.lock().unwrap_or_else(PoisonError::into_inner);
                    // Forget the connections that ended (their clones are shut already).
                    o.retain(|s| s.peer_addr().is_ok());
                    if let (Ok(a), Ok(b)) = (client.try_clone(), server.try_clone()) {
                        o.push(a);
                        o.push(b);
                    }
                }
                std::thread::spawn(move || pipe(client, s2));
                std::thread::spawn(move || pipe(server, c2));
            }
        });
        Ok(Relay {
            addr,
            up,
            open,
            stop,
        })
    }

    /// Bring the gateway up or down (down: every relayed connection is shut).
    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            let mut o = self.open.lock().unwrap_or_else(PoisonError::into_inner);
            for s in o.drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.set_up(false);
        // Wake the accept loop so it sees the stop.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Copy one direction until either side ends, then shut both.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// A `plant-sim` child (killed when dropped) and its stdout lines, kept by a reader thread.
struct PlantSim {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Drop for PlantSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl PlantSim {
    fn last_status(&self) -> Option<String> {
        let l = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        l.iter().rev().find(|s| s.contains(" t=")).cloned()
    }
    fn said(&self, needle: &str) -> bool {
        let l = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        l.iter().any(|s| s.contains(needle))
    }
}

/// `key=<number>` in a status line.
fn field(line: &str, key: &str) -> Option<f64> {
    let i = line.find(key)? + key.len();
    let rest = &line[i..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// heatctl's resident memory (kB) and open descriptors.
fn resources(pid: u32) -> std::io::Result<(u64, usize)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| std::io::Error::other("no VmRSS"))?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count();
    Ok((rss_kb, fds))
}

/// Lines of a file.
fn count_lines(path: &Path) -> usize {
    let mut bytes = Vec::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_end(&mut bytes);
    }
    bytecount_newlines(&bytes)
}

fn bytecount_newlines(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

/// The scenario: the closed-loop demo plant with winter weather and a dead room node.
fn write_scenario(dir: &Path, days: f64) -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let base = std::fs::read_to_string(root.join("scenarios/closed-demo.toml"))
        .map_err(|e| format!("closed-demo scenario: {e}"))?;
    let weather = root.join("weather/weather-hohhot-synthetic.csv");
    // The season's weather (from 15 October, the default window) instead of the constant
    // -10 °C: a frozen outdoor reading would be taken for a stuck transmitter after 12 h, and
    // a month wants real days and nights.
    let base = base
        .replace("constant_outdoor_c = -10.0\n", "")
        .replace("constant_ghi_w_m2 = 0.0\n", "")
        .replace(
            "[weather]\n",
            &format!("[weather]\nfile = \"{}\"\n", weather.display()),
        );
    let sc = heatctl_plant::Scenario::shipped("closed-demo").map_err(|e| e.to_string())?;
    let plant = heatctl_plant::Plant::new(&sc).map_err(|e| e.to_string())?;
    // The dead node: the first room node (building 0; the flapping gateway is building 1's).
    let dead = plant
        .room_node(0)
        .map(|r| r.apartment)
        .ok_or("the scenario has no room node")?;
    let text = format!(
        "{base}\n[[faults]]\nkind = \"device_silent\"\ntarget = \"room_node:{dead}\"\nstart_h = 0.0\nduration_h = {}\n",
        days * 24.0 + 48.0
    );
    let path = dir.join("soak-scenario.toml");
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    Ok(path)
}

/// Real-time Modbus settings for the room gateways (timeouts are not scaled by the clock: at
/// 3000x the default 1 s timeout is 50 simulated minutes), and building 1's gateway behind the
/// relay.
fn edit_config(path: &Path, relay: SocketAddr, gateway1: SocketAddr) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut cfg: toml::Table = text.parse().map_err(|e| format!("{e}"))?;
    let Some(toml::Value::Array(links)) = cfg.get_mut("links") else {
        return Err("no [[links]] in the written configuration".into());
    };
    let mut relayed = false;
    for l in links.iter_mut().filter_map(toml::Value::as_table_mut) {
        l.insert("timeout_ms".into(), 100.into());
        l.insert("reconnect_min_ms".into(), 50.into());
        l.insert("reconnect_max_ms".into(), 500.into());
        let port = l.get("port").and_then(toml::Value::as_integer);
        if port == Some(i64::from(gateway1.port())) {
            l.insert("port".into(), i64::from(relay.port()).into());
            relayed = true;
        }
    }
    if !relayed {
        return Err(format!("no link to building 1's gateway at {gateway1}"));
    }
    std::fs::write(path, toml::to_string(&cfg).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())
}

/// The binary `name` next to this executable (the `soak` binary in `target/release/`), if
/// there; a test executable (in `target/release/deps/`) finds it through
/// [`crate::process::workspace_binary`].
fn beside_me(name: &str, _hint: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.join(name);
    bin.is_file().then_some(bin)
}

/// Run a soak.
///
/// # Errors
/// A binary is missing (the message says how to build it), or the rig cannot be set up.
pub fn run(opts: &SoakOptions) -> Result<SoakReport, String> {
    let heatctl = beside_me("heatctl", BUILD_HINT).map_or_else(heatctl_binary, Ok)?;
    let plant_sim =
        beside_me("plant-sim", PLANT_SIM_BUILD_HINT).map_or_else(plant_sim_binary, Ok)?;
    let dir = RigDir::new(&opts.name).map_err(|e| e.to_string())?;
    let scenario = write_scenario(dir.path(), opts.days)?;
    let base = heatctl_plant::serve::free_base_port(
        31_000 + (std::process::id() % 1500) as u16 * 10,
        4,
        false,
    )
    .ok_or("no free range of ports")?;
    let status_every_s = (opts.sample_h * 3600.0 / opts.speed).max(0.05);
    let mut child = Command::new(&plant_sim)
        .arg("--scenario")
        .arg(&scenario)
        .args(["--speed", &opts.speed.to_string()])
        .args(["--base-port", &base.to_string()])
        .args(["--status-every-s", &status_every_s.to_string()])
        .arg("--write-config")
        .arg(dir.path().join("rig"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("plant-sim.err")).map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("start plant-sim: {e}"))?;
    let started = Instant::now();
    let stdout = child.stdout.take().ok_or("plant-sim stdout")?;
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            sink.lock().unwrap_or_else(PoisonError::into_inner).push(l);
        }
    });
    let sim = PlantSim { child, lines };
    let config = dir.path().join("rig/heatctl.toml");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sim.said("heatctl configuration written") {
        if Instant::now() > deadline {
            let said = sim
                .lines
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .join("\n");
            let err = std::fs::read_to_string(dir.path().join("plant-sim.err")).unwrap_or_default();
            return Err(format!(
                "plant-sim never wrote the configuration:\n{said}\n{err}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Building b's room gateway is at base + 100 + b.
    let gateway1: SocketAddr = format!("127.0.0.1:{}", base + 101)
        .parse()
        .map_err(|e| format!("{e}"))?;
    let relay = Relay::start(gateway1).map_err(|e| format!("relay: {e}"))?;
    edit_config(&config, relay.addr, gateway1)?;
    let log = dir.log_path();
    let state = dir.path().join("state.toml");
    let args: Vec<String> = vec![
        "run".into(),
        "--config".into(),
        config.display().to_string(),
        "--clock-speed".into(),
        opts.speed.to_string(),
        "--state-file".into(),
        state.display().to_string(),
    ];
    let mut h = Heatctl::start(&heatctl, &args, &log).map_err(|e| format!("start heatctl: {e}"))?;
    let pid = h.pid();

    let mut report = SoakReport {
        dir: dir.path().to_path_buf(),
        ..SoakReport::default()
    };
    let end_s = opts.days * DAY_S;
    let sim_now = || started.elapsed().as_secs_f64() * opts.speed;
    let mut next_sample_s = opts.sample_h * 3600.0;
    let mut next_reload_s = DAY_S;
    let mut day_start_lines = 0;
    let mut day_end_s = DAY_S;
    let mut gateway_up = true;
    loop {
        let t = sim_now();
        if t >= end_s {
            break;
        }
        if let Some(status) = h.exit_status().map_err(|e| e.to_string())? {
            report.alive_at_end = false;
            report.wall_s = started.elapsed().as_secs_f64();
            std::mem::forget(dir);
            return Err(format!(
                "heatctl exited ({status}) at {:.1} simulated h; log in {}",
                t / 3600.0,
                log.display()
            ));
        }
        // The gateway: up for 10 simulated minutes, down for 10.
        let up = ((t / (FLAP_MIN * 60.0)) as u64).is_multiple_of(2);
        if up != gateway_up {
            relay.set_up(up);
            if !up {
                report.flaps += 1;
            }
            gateway_up = up;
        }
        if t >= next_reload_s {
            next_reload_s += DAY_S;
            report.reloads_asked += 1;
            if report.reloads_asked % 2 == 1 {
                h.signal(Signal::Hup).map_err(|e| e.to_string())?;
            } else {
                // Rewrite the file (a comment changes) as deployment tools do, atomically: the
                // watcher reloads it. (Written in place, the watcher may read it half-written
                // and rightly refuse it, then miss the rest of the write when it lands within
                // the file system's time-stamp granularity: see the report of issue 15.)
                let mut text = std::fs::read_to_string(&config).map_err(|e| e.to_string())?;
                text.push_str(&format!(
                    "# soak: rewritten on day {}\n",
                    report.reloads_asked
                ));
                let tmp = config.with_extension("toml.new");
                std::fs::write(&tmp, text).map_err(|e| e.to_string())?;
                std::fs::rename(&tmp, &config).map_err(|e| e.to_string())?;
            }
        }
        if t >= day_end_s {
            let n = count_lines(&log);
            report.log_lines_per_day.push(n - day_start_lines);
            day_start_lines = n;
            day_end_s += DAY_S;
        }
        if t >= next_sample_s {
            // Every other sample 10 minutes later: half are taken while the gateway is down.
            let k = report.samples.len() + 1;
            next_sample_s = (k + 1) as f64 * opts.sample_h * 3600.0
                + if k.is_multiple_of(2) {
                    FLAP_MIN * 60.0
                } else {
                    0.0
                };
            let (rss_kb, fds) = resources(pid).map_err(|e| format!("/proc/{pid}: {e}"))?;
            let status = sim.last_status();
            report.samples.push(SoakSample {
                sim_s: t,
                plant_s: status
                    .as_deref()
                    .and_then(|s| field(s, " t="))
                    .map(|h| h * 3600.0),
                rss_kb,
                fds,
                log_lines: count_lines(&log),
                rooms_mean_c: status.as_deref().and_then(|s| field(s, "mean=")),
                gateway_up,
            });
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    if report.log_lines_per_day.len() < opts.days.floor() as usize {
        let n = count_lines(&log);
        report.log_lines_per_day.push(n - day_start_lines);
    }
    report.alive_at_end = h.exit_status().map_err(|e| e.to_string())?.is_none();
    report.wall_s = started.elapsed().as_secs_f64();
    let text = crate::process::log_text(&log);
    report.reloads_logged = text.matches("configuration reloaded").count();
    report.panics = text.matches("panicked").count();
    report.plant_lagged = sim.said("cannot keep up");
    h.kill_now();
    drop(relay);
    drop(sim);
    if !report.violations().is_empty() {
        // Keep the directory (log, configuration) for a look.
        std::mem::forget(dir);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_are_read() {
        let l = "INFO t=12.50 h t_out=-3.1 °C t2_supply=55.0 rooms mean=21.04 min=19.80 °C";
        assert_eq!(field(l, " t="), Some(12.5));
        assert_eq!(field(l, "mean="), Some(21.04));
        assert_eq!(field(l, "nothing="), None);
    }

    fn sample(h: f64, rss_kb: u64, fds: usize) -> SoakSample {
        SoakSample {
            sim_s: h * 3600.0,
            plant_s: None,
            rss_kb,
            fds,
            log_lines: 0,
            rooms_mean_c: Some(21.0),
            gateway_up: true,
        }
    }

    #[test]
    fn the_bounds_catch_growth() {
        let mut r = SoakReport {
            samples: vec![
                sample(12.0, 9000, 20),
                sample(24.0, 10_000, 21),
                sample(48.0, 10_900, 21),
            ],
            log_lines_per_day: vec![300, 310],
            reloads_asked: 1,
            reloads_logged: 1,
            alive_at_end: true,
            ..SoakReport::default()
        };
        assert!(r.violations().is_empty(), "{:?}", r.violations());
        r.samples.push(sample(72.0, 11_100, 21));
        assert_eq!(r.violations().len(), 1, "RSS grew 1100 kB");
        r.samples.pop();
        // One sample with more sockets (a reconnect) is not a leak; a day of them is.
        r.samples.push(sample(36.0, 10_000, 25));
        r.samples.push(sample(40.0, 10_000, 21));
        assert!(r.violations().is_empty(), "{:?}", r.violations());
        r.samples.truncate(3);
        r.samples.push(sample(72.0, 10_000, 25));
        r.samples.push(sample(75.0, 10_000, 25));
        assert_eq!(r.violations().len(), 1, "descriptors grew");
        r.samples.truncate(3);
        r.log_lines_per_day.push(LOG_LINES_PER_DAY_MAX + 1);
        assert_eq!(r.violations().len(), 1, "log volume");
    }
}
