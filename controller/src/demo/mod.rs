//! `heatctl demo`: heatctl against the simulated plant, in one process.
//!
//! [`run`] builds the demo plant (`heatctl_plant::demo`: 4 blocks x 60 flats in Hohhot, January,
//! built-in weather), serves it on free loopback ports with `heatctl_plant::serve_with`, binds
//! `config/demo.toml` to it (`heatctl_plant::binding::bind_to_plant`), turns the SCADA slave on
//! at a free loopback port, and runs the real runtime ([`crate::runtime::run_embedded`]: field
//! layer, controller, SCADA) on a clock that starts at the plant's simulated local time and runs
//! as fast as the plant. It shows a status line while it runs and a summary at the end, measured on the plant's
//! ground truth (every flat, sensed or not). No file is read and nothing leaves the loopback
//! interface.

mod status;

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use heatctl_plant::binding::{DEMO_TOML, DEVICE_MAPS, bind_to_plant};
use heatctl_plant::demo as demo_plant;
use heatctl_plant::serve::lock;
use heatctl_plant::{Plant, ServeOptions, SharedPlant};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::config::{self, LoadedConfig};
use crate::runtime::{self, Embedding, RunOptions, ScaledClock};
use status::{Moment, PlantSample, RoomTruth, Tally};

/// Default speed: simulated seconds per wall second (a simulated day in a minute).
pub const DEFAULT_SPEED: f64 = 1440.0;
/// Highest speed accepted. Above this the controller's cycle
/// ([`crate::runtime::VALVE_PERIOD_S`]) and the field's poll periods shrink below what the
/// field layer can keep on a small machine.
pub const MAX_SPEED: f64 = 10_000.0;
/// Longest run accepted with `--hours` (a year of the weather file).
pub const MAX_HOURS: f64 = 8760.0;
/// Name under which the bound demo configuration appears in messages.
pub const DEMO_CONFIG_NAME: &str = "demo.toml (built in, bound to the simulated plant)";
/// How often the terminal status is redrawn, wall time.
const REDRAW_EVERY: Duration = Duration::from_millis(200);
/// Sampling of the plant's ground truth for the summary, simulated seconds (bounded in wall
/// time by [`sample_period`]).
const SAMPLE_SIM_S: f64 = 10.0;

/// Options of [`run`].
#[derive(Debug, Clone, PartialEq)]
pub struct DemoOptions {
    /// Simulated seconds per wall second.
    pub speed: f64,
    /// Stop after this many simulated hours; None runs until Ctrl-C (or SIGTERM).
    pub hours: Option<f64>,
    /// Serve the technician's page at this address (port 0: a free one).
    pub web: Option<SocketAddr>,
    /// The page's write token (None: read-only).
    pub web_token: Option<String>,
    /// Publish the demo station to this MQTT broker ("mqtt://host:port"): site "demo",
    /// station "demo-station", telemetry every simulated minute.
    pub platform: Option<String>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            speed: DEFAULT_SPEED,
            hours: None,
            web: None,
            web_token: None,
            platform: None,
        }
    }
}

impl DemoOptions {
    /// Check the options.
    ///
    /// # Errors
    /// A speed or a number of hours outside what the demo can run, said in words.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.speed.is_finite() && self.speed > 0.0 && self.speed <= MAX_SPEED) {
            return Err(format!(
                "--speed must be above 0 and at most {MAX_SPEED} simulated seconds per wall second, got {}",
                self.speed
            ));
        }
        if let Some(h) = self.hours
            && !(h.is_finite() && h > 0.0 && h <= MAX_HOURS)
        {
            return Err(format!(
                "--hours must be above 0 and at most {MAX_HOURS} simulated hours, got {h}"
            ));
        }
        if let Some(t) = &self.web_token
            && (t.chars().count() < 8 || t.chars().any(char::is_whitespace))
        {
            return Err("--web-token must be at least 8 characters, without spaces".into());
        }
        if let Some(url) = &self.platform {
            config::BrokerUrl::parse(url).map_err(|e| format!("--platform {e}"))?;
        }
        Ok(())
    }
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// `--hours` reached.
    Hours,
    /// Ctrl-C.
    Interrupted,
    /// SIGTERM.
    Terminated,
    /// The controller stopped on its own.
    ControllerStopped,
}

impl Ending {
    fn describe(self) -> &'static str {
        match self {
            Ending::Hours => "--hours reached",
            Ending::Interrupted => "Ctrl-C",
            Ending::Terminated => "SIGTERM",
            Ending::ControllerStopped => "the controller stopped",
        }
    }
}

/// Wall time between samples: [`SAMPLE_SIM_S`] of simulated time, kept within 5..100 ms.
fn sample_period(speed: f64) -> Duration {
    Duration::from_secs_f64((SAMPLE_SIM_S / speed).clamp(0.005, 0.1))
}

/// A free TCP port on loopback (bound and released; the SCADA slave binds it right after).
fn free_loopback_addr() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// Where the status goes: redrawn in place on a terminal, one line per simulated hour else.
struct Screen {
    terminal: bool,
    drawn_lines: usize,
    last_draw: Option<Instant>,
    last_hour: Option<i64>,
    last_line: Option<String>,
}

impl Screen {
    fn new() -> Self {
        Self {
            terminal: std::io::stdout().is_terminal(),
            drawn_lines: 0,
            last_draw: None,
            last_hour: None,
            last_line: None,
        }
    }

    fn print(&mut self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
        self.drawn_lines = 0;
    }

    /// Show a moment if it is time to (`force`: now).
    fn show(&mut self, m: &Moment, force: bool) {
        if m.snapshot.is_none() {
            return;
        }
        let mut out = std::io::stdout().lock();
        if self.terminal {
            if !force && self.last_draw.is_some_and(|t| t.elapsed() < REDRAW_EVERY) {
                return;
            }
            self.last_draw = Some(Instant::now());
            if self.drawn_lines > 0 {
                let _ = write!(out, "\x1b[{}A", self.drawn_lines);
            }
            let groups = m.groups();
            for g in &groups {
                let _ = writeln!(out, "\x1b[2K  {g}");
            }
            self.drawn_lines = groups.len();
        } else {
            let hour = m.sim_h.floor() as i64;
            if !force && self.last_hour == Some(hour) {
                return;
            }
            self.last_hour = Some(hour);
            let line = m.line();
            if self.last_line.as_deref() == Some(line.as_str()) {
                return;
            }
            let _ = writeln!(out, "status: {line}");
            self.last_line = Some(line);
        }
        let _ = out.flush();
    }
}

fn plant_sample(p: &Plant) -> PlantSample {
    let t = p.truth();
    PlantSample {
        time_s: p.time_s(),
        t_out_c: t.t_out_c,
        primary_energy_kwh: t.energy1_kwh,
        delivered_energy_kwh: t.delivered_energy_kwh,
        valve1_pos_pct: t.valve1_pos_pct,
    }
}

/// The demo configuration bound to the served plant, with the SCADA slave on `scada`.
fn demo_config(
    shared: &SharedPlant,
    addrs: &heatctl_plant::FaceAddresses,
    scada: SocketAddr,
    web: Option<(SocketAddr, Option<String>)>,
    platform: Option<&str>,
) -> anyhow::Result<LoadedConfig> {
    let text = {
        let p = lock(shared);
        bind_to_plant(DEMO_TOML, &p, addrs)
    };
    let mut loaded = config::parse_with_maps(&text, Path::new(DEMO_CONFIG_NAME), &DEVICE_MAPS)
        .map_err(|p| anyhow::anyhow!("the built-in demo configuration is invalid:\n{p}"))?;
    loaded.config.scada.enabled = true;
    loaded.config.scada.listen = scada.to_string();
    if let Some((addr, token)) = web {
        loaded.config.web.enabled = true;
        loaded.config.web.listen = addr.to_string();
        loaded.config.web.set_inline_token(token);
    }
    if let Some(url) = platform {
        let p = &mut loaded.config.platform;
        p.enabled = true;
        p.brokers = vec![url.to_owned()];
        p.site_id = "demo".into();
        p.station_id = "demo-station".into();
        p.telemetry_period_s = 60.0;
        p.writable = vec![
            "curve_shift_k".into(),
            "room_target_c".into(),
            "operating_mode".into(),
        ];
    }
    Ok(loaded)
}

/// Run the demo until `opts.hours` simulated hours have passed, or Ctrl-C / SIGTERM; print the
/// status while it runs and the summary at the end. The controller's shutdown writes the safe
/// positions before the summary.
///
/// # Errors
/// Bad options, a port that cannot be bound, or the controller failing to start.
pub async fn run(opts: DemoOptions) -> anyhow::Result<()> {
    opts.validate().map_err(anyhow::Error::msg)?;
    // Signal handlers first, so Ctrl-C during start-up ends the demo cleanly too.
    let mut sigint = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let mut sigterm = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let wall = Instant::now();

    let sc = demo_plant::demo_scenario()?;
    let plant = Plant::with_weather(&sc, demo_plant::demo_weather()?);
    let area_m2 = plant.total_floor_area_m2();
    let nodes = plant.room_node_count();
    let flats = plant.apartments().len();
    let server = heatctl_plant::serve_with(plant, ServeOptions::at_speed(opts.speed))
        .await
        .context("cannot serve the simulated plant")?;
    let shared = server.plant();
    let addrs = server.addresses().clone();
    let scada = free_loopback_addr().context("no free loopback port for SCADA")?;
    // The page's port is fixed here (a free one for port 0) so its URL can be printed.
    let web = match opts.web {
        Some(a) if a.port() == 0 => Some(
            std::net::TcpListener::bind(a)
                .and_then(|l| l.local_addr())
                .with_context(|| format!("no free port for the web page on {}", a.ip()))?,
        ),
        other => other,
    };
    let loaded = demo_config(
        &shared,
        &addrs,
        scada,
        web.map(|a| (a, opts.web_token.clone())),
        opts.platform.as_deref(),
    )?;
    let floor_area_m2 = loaded.config.site.floor_area_m2;
    let start_hour = sc.season.start_hour_of_year;
    let clock = Arc::new(ScaledClock::starting_at(
        demo_plant::plant_unix_s(
            start_hour,
            lock(&shared).time_s(),
            loaded.config.site.utc_offset_h,
        ),
        opts.speed,
    ));

    let mut screen = Screen::new();
    screen.print(&format!(
        "heatctl demo: the controller against a simulated substation, in this process\n\
         \x20 plant   {} buildings x {} flats ({area_m2:.0} m²), unbalanced, room nodes in {nodes} of {flats} flats\n\
         \x20 weather Hohhot (built in), from {} local time\n\
         \x20 speed   {}x: a simulated day in {:.0} s; {}\n\
         \x20 field   substation I/O {}, heat meter {}, {} room-node gateways (RTU over TCP)\n\
         \x20 SCADA   {scada}, unit {}: mbpoll -m tcp -a {} -t 3 -r 1 -c 26 -1 -p {} {}\n\
         \x20 config  config/demo.toml (built in), bound to the plant{}",
        sc.buildings.count,
        sc.apartments_per_building(),
        demo_plant::calendar(start_hour),
        opts.speed,
        86_400.0 / opts.speed,
        opts.hours.map_or_else(
            || "runs until Ctrl-C".to_owned(),
            |h| format!("stops after {h} simulated hours (or Ctrl-C)")
        ),
        addrs.substation_io,
        addrs.heat_meter,
        addrs.room_gateways.len(),
        loaded.config.scada.unit_id,
        loaded.config.scada.unit_id,
        scada.port(),
        scada.ip(),
        web.map_or_else(String::new, |a| format!(
            "\n\x20 web     http://{a}/ ({})",
            if opts.web_token.is_some() {
                "settings writable with the token given"
            } else {
                "read-only: --web-token TOKEN allows settings"
            }
        )),
    ));

    let (stop_tx, stop_rx) = watch::channel(false);
    let (snapshot_tx, snapshot_rx) = watch::channel(None);
    let run_opts = RunOptions {
        config_path: loaded.path.clone(),
        dry_run: false,
        clock,
        state_path: None,
        state_dir: None,
    };
    let mut controller = tokio::spawn(runtime::run_embedded(
        run_opts,
        Embedding {
            loaded,
            stop: stop_rx,
            snapshots: snapshot_tx,
        },
    ));

    let mut tally = Tally::default();
    let mut tick = tokio::time::interval(sample_period(opts.speed));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let moment = |shared: &SharedPlant, tally: &mut Tally| {
        let snapshot = snapshot_rx.borrow().clone();
        let (sample, rooms) = {
            let p = lock(shared);
            (plant_sample(&p), RoomTruth::of(p.apartment_air_c()))
        };
        tally.add(sample, rooms, snapshot.as_deref());
        Moment {
            calendar: demo_plant::calendar(start_hour + sample.time_s / 3600.0),
            sim_h: sample.time_s / 3600.0,
            snapshot,
            rooms,
        }
    };
    let mut finished = None;
    let ending = loop {
        tokio::select! {
            _ = tick.tick() => {
                let m = moment(&shared, &mut tally);
                screen.show(&m, false);
                if opts.hours.is_some_and(|h| m.sim_h >= h) {
                    break Ending::Hours;
                }
            }
            _ = sigint.recv() => break Ending::Interrupted,
            _ = sigterm.recv() => break Ending::Terminated,
            r = &mut controller => {
                finished = Some(r);
                break Ending::ControllerStopped;
            }
        }
    };
    let last = moment(&shared, &mut tally);
    screen.show(&last, true);
    screen.print(&format!(
        "stopping ({}): the controller writes the safe positions",
        ending.describe()
    ));
    let _ = stop_tx.send(true);
    let outcome = match finished {
        Some(r) => r,
        None => controller.await,
    };
    let safe_pct = lock(&shared).truth().valve1_cmd_pct;
    server.shutdown().await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e.context("the controller failed")),
        Err(e) => anyhow::bail!("the controller task failed: {e}"),
    }
    let mut lines = tally.summary(
        floor_area_m2,
        wall.elapsed().as_secs_f64(),
        ending.describe(),
    );
    lines.push(format!(
        "  on exit             primary valve commanded to {safe_pct:.1} % (the safe position, read from the plant)"
    ));
    screen.print(&lines.join("\n"));
    Ok(())
}
