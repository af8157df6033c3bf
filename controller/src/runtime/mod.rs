//! The runtime: tokio glue around the controller.
//!
//! One cycle every [`VALVE_PERIOD_S`] clock seconds: build the process image from the field
//! readings (with ages), step the controller, add the field layer's alarms, write the commands
//! (or, in a dry run, log them), publish to SCADA. SIGINT/SIGTERM write the safe positions and
//! end the run; SIGHUP or a changed configuration file reloads the configuration atomically.

pub mod clock;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::{self, LoadedConfig, ValveOutput};
use crate::control::{
    Alarm, AlarmCode, Commands, Controller, Mode, ProcessImage, Pulse, SavedState, Signal,
};
use crate::field::plan::{HH_VALVE_PREFIX, ROOM_PREFIX};
use crate::field::{FieldHandle, FieldShared, plan_links};
use crate::scada::{self, ScadaCommand, ScadaShared};
use crate::service::{self, Notifier};
pub use clock::{Clock, ScaledClock, WallClock};

/// Period of the control cycle (valve loop), clock seconds. Demand correction runs inside the
/// controller at its own configured period.
pub const VALVE_PERIOD_S: f64 = 1.0;
/// How often the field statistics are summarised in the log, clock seconds.
pub const STATS_LOG_PERIOD_S: f64 = 300.0;
/// How long start-up waits for the first poll round before the first control step.
pub const FIRST_ROUND_LIMIT: Duration = Duration::from_secs(3);
/// Real time of a reading's age that is not counted against its max age: the host's
/// scheduling allowance (see [`FieldShared::set_age_allowance_s`]); scaled with the clock.
pub const REAL_AGE_ALLOWANCE: Duration = Duration::from_millis(50);
/// How long shutdown waits for the safe positions to be written and verified.
pub const SHUTDOWN_WRITE_LIMIT: Duration = Duration::from_secs(5);

/// How often the slow control state is saved to the state file, clock seconds.
pub const STATE_SAVE_PERIOD_S: f64 = 60.0;
/// A saved state older than this is not restored (the learning is stale), clock seconds.
pub const STATE_MAX_AGE_S: f64 = 86_400.0;

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The configuration file.
    pub config_path: PathBuf,
    /// Poll and compute, log the writes, write nothing.
    pub dry_run: bool,
    /// The clock (wall, or scaled for the rig).
    pub clock: Arc<dyn Clock>,
    /// Where the slow control state (demand shift, damped outdoor) is kept across restarts:
    /// read at start, written every [`STATE_SAVE_PERIOD_S`] (at most once a real second on an
    /// accelerated clock) and on shutdown. None: not kept.
    pub state_path: Option<PathBuf>,
}

/// What one control cycle did, for an embedding program (the demo's status line).
#[derive(Debug, Clone)]
pub struct CycleReport {
    /// Clock time of the cycle, unix seconds.
    pub now_s: f64,
    /// The process image the controller saw.
    pub image: ProcessImage,
    /// What it decided, with the explanation and every alarm (field alarms included).
    pub commands: Commands,
}

/// Running heatctl inside another program (the demo): the configuration is handed over
/// already loaded (no file is watched and SIGHUP does nothing), the program stops the run
/// through `stop`, and each cycle is reported through `reports`.
#[derive(Debug)]
pub struct Embedding {
    /// The configuration to run.
    pub loaded: LoadedConfig,
    /// The run ends (safe positions written) when this becomes true.
    pub stop: tokio::sync::watch::Receiver<bool>,
    /// Receives every cycle's report.
    pub reports: tokio::sync::watch::Sender<Option<CycleReport>>,
}

/// Split a `"device.point"` binding.
#[must_use]
pub fn split_binding(binding: &str) -> Option<(&str, &str)> {
    binding.split_once('.')
}

/// Build the process image at `now_s` from what the field layer read.
#[must_use]
pub fn build_image(loaded: &LoadedConfig, field: &FieldShared, now_s: f64) -> ProcessImage {
    let cfg = &loaded.config;
    let nodes = &cfg.rooms.nodes;
    let mut image = ProcessImage::with_rooms(nodes.len());
    let p = &cfg.points;
    let bindings = [
        (Signal::TOut, &p.t_out),
        (Signal::T1Supply, &p.t1_supply),
        (Signal::T1Return, &p.t1_return),
        (Signal::T2Supply, &p.t2_supply),
        (Signal::T2Return, &p.t2_return),
        (Signal::Power1Kw, &p.power1_kw),
        (Signal::Flow1M3h, &p.flow1_m3h),
        (Signal::Valve1PosPct, &p.valve1_pos_pct),
    ];
    for (signal, binding) in bindings {
        let sample = binding
            .as_deref()
            .and_then(split_binding)
            .and_then(|(d, pt)| field.sample(d, pt, now_s));
        image.set(signal, sample);
    }
    for (i, n) in nodes.iter().enumerate() {
        image.rooms[i] = field.sample(
            &format!("{ROOM_PREFIX}{}", n.id),
            &cfg.rooms.temperature_point,
            now_s,
        );
        if n.valve_link.is_some() {
            image.hh_valve_pos_pct[i] = field.sample(
                &format!("{HH_VALVE_PREFIX}{}", n.id),
                &cfg.household_valves.position_point,
                now_s,
            );
        }
    }
    image
}

/// The two outputs of a three-point (floating) actuator, driven from the controller's pulses:
/// a pulse sets its direction's output for its duration; a new pulse replaces the one running;
/// the two outputs are never on together.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ThreePointOutputs {
    open_until_s: f64,
    close_until_s: f64,
}

impl ThreePointOutputs {
    /// Take this cycle's pulse (if any) at `now_s`, and return `(open, close)` to write.
    pub fn update(&mut self, now_s: f64, pulse: Option<Pulse>) -> (bool, bool) {
        match pulse {
            Some(Pulse::Open(secs)) if secs.is_finite() && secs > 0.0 => {
                self.open_until_s = now_s + secs;
                self.close_until_s = f64::NEG_INFINITY;
            }
            Some(Pulse::Close(secs)) if secs.is_finite() && secs > 0.0 => {
                self.close_until_s = now_s + secs;
                self.open_until_s = f64::NEG_INFINITY;
            }
            _ => {}
        }
        (now_s < self.open_until_s, now_s < self.close_until_s)
    }

    /// Stop driving (shutdown: the actuator holds where it is).
    pub fn stop(&mut self) {
        *self = Self::default();
    }
}

/// The writes a set of commands asks for: `(device, point, value)`. `three_point` is the
/// `(open, close)` state of a three-point output (ignored with a position output).
#[must_use]
pub fn planned_writes(
    loaded: &LoadedConfig,
    cmds: &Commands,
    three_point: (bool, bool),
) -> Vec<(String, String, f64)> {
    let cfg = &loaded.config;
    let mut out = Vec::new();
    match cfg.valve1.output {
        ValveOutput::Position => {
            if let Some((d, p)) = cfg.points.valve1_cmd.as_deref().and_then(split_binding)
                && cmds.valve1_pct.is_finite()
            {
                out.push((d.to_owned(), p.to_owned(), cmds.valve1_pct));
            }
        }
        ValveOutput::ThreePoint => {
            let (open, close) = three_point;
            for (binding, on) in [
                (&cfg.points.valve1_open, open && !close),
                (&cfg.points.valve1_close, close && !open),
            ] {
                if let Some((d, p)) = binding.as_deref().and_then(split_binding) {
                    out.push((d.to_owned(), p.to_owned(), f64::from(u8::from(on))));
                }
            }
        }
    }
    for (n, pct) in cfg.rooms.nodes.iter().zip(&cmds.hh_valves_pct) {
        if let Some(pct) = pct
            && n.valve_link.is_some()
            && pct.is_finite()
        {
            out.push((
                format!("{HH_VALVE_PREFIX}{}", n.id),
                cfg.household_valves.command_point.clone(),
                *pct,
            ));
        }
    }
    out
}

/// Alarms the field layer raises (501 device not answering, 502 write failed), with the time
/// each was raised.
#[derive(Debug, Default)]
struct FieldAlarms {
    comm_lost_since_s: Option<f64>,
    write_failed_since_s: Option<f64>,
}

impl FieldAlarms {
    fn update(&mut self, comm_lost: bool, write_failed: bool, now_s: f64) -> Vec<Alarm> {
        let changes = |flag: bool, since: &mut Option<f64>, code: AlarmCode| {
            match (flag, *since) {
                (true, None) => {
                    *since = Some(now_s);
                    tracing::warn!(code = code.number(), "alarm raised: {}", code.text());
                }
                (false, Some(_)) => {
                    *since = None;
                    tracing::info!(code = code.number(), "alarm cleared: {}", code.text());
                }
                _ => {}
            }
            since.map(|since_s| Alarm { code, since_s })
        };
        let a = changes(
            comm_lost,
            &mut self.comm_lost_since_s,
            AlarmCode::DeviceCommLost,
        );
        let b = changes(
            write_failed,
            &mut self.write_failed_since_s,
            AlarmCode::WriteFailed,
        );
        a.into_iter().chain(b).collect()
    }
}

/// Settings SCADA can change, as the runtime keeps them.
#[derive(Debug, Clone, Copy)]
struct Settings {
    demand_enabled: bool,
    manual_pct: f64,
}

struct Runtime {
    opts: RunOptions,
    loaded: LoadedConfig,
    controller: Controller,
    field: FieldHandle,
    field_alarms: FieldAlarms,
    settings: Settings,
    scada_shared: Arc<ScadaShared>,
    scada_task: Option<JoinHandle<()>>,
    dry_run_last: HashMap<(String, String), Vec<u16>>,
    config_mtime: Option<SystemTime>,
    last_alarm_codes: Vec<u16>,
    lost_devices: Vec<String>,
    stats_logged_at_s: f64,
    state_saved_at_s: f64,
    reports: Option<tokio::sync::watch::Sender<Option<CycleReport>>>,
    three_point: ThreePointOutputs,
    service: Notifier,
}

/// Read a saved control state (TOML). Missing file: None; unreadable: None with a warning.
fn read_state(path: &std::path::Path) -> Option<SavedState> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "state file unreadable; starting fresh");
            return None;
        }
    };
    match toml::from_str(&text) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "state file damaged; starting fresh");
            None
        }
    }
}

/// Write the control state atomically (temporary file, then rename), so a kill during the
/// write leaves the previous state intact.
fn write_state(path: &std::path::Path, state: &SavedState) -> std::io::Result<()> {
    let text = toml::to_string(state).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

fn mtime(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Runtime {
    fn cycle(&mut self) {
        self.service.hold_while_stalled();
        let now_s = self.opts.clock.now_s();
        let image = build_image(&self.loaded, self.field.shared(), now_s);
        let mut cmds = self.controller.step(now_s, &image);
        self.log_field_health(now_s);
        let (comm_lost, write_failed) = self.field.shared().alarm_conditions();
        let field_alarms = self.field_alarms.update(comm_lost, write_failed, now_s);
        cmds.alarms.extend(field_alarms);
        let codes: Vec<u16> = cmds.alarms.iter().map(|a| a.code.number()).collect();
        if codes != self.last_alarm_codes {
            tracing::info!(alarms = ?codes, "active alarms");
            self.last_alarm_codes = codes;
        }
        tracing::debug!(
            setpoint_c = ?cmds.explanation.setpoint_c,
            valve1_pct = cmds.valve1_pct,
            limiter = ?cmds.explanation.active_limiter.map(|l| l.name()),
            demand_shift_k = cmds.explanation.demand_shift_k,
            "cycle"
        );
        let three_point = self.three_point.update(now_s, cmds.valve1_pulse);
        self.write(&cmds, three_point);
        self.publish(&cmds, &image);
        let status = service::status_line(self.controller.mode(), &image, &cmds);
        self.service.set_status(&status);
        self.service.cycle_done();
        // On an accelerated clock, at most once a real second: the file is written in the cycle.
        if now_s - self.state_saved_at_s >= STATE_SAVE_PERIOD_S.max(self.opts.clock.speed()) {
            self.state_saved_at_s = now_s;
            self.save_state();
        }
        if let Some(tx) = &self.reports {
            tx.send_replace(Some(CycleReport {
                now_s,
                image,
                commands: cmds,
            }));
        }
    }

    fn save_state(&self) {
        if let Some(path) = &self.opts.state_path
            && let Err(e) = write_state(path, &self.controller.saved_state())
        {
            tracing::warn!(path = %path.display(), error = %e, "control state not saved");
        }
    }

    /// Name the devices that stop or resume answering, and summarise the statistics every
    /// [`STATS_LOG_PERIOD_S`].
    fn log_field_health(&mut self, now_s: f64) {
        let stats = self.field.shared().stats();
        let lost: Vec<String> = stats
            .iter()
            .filter(|(_, s)| s.comm_lost())
            .map(|(n, _)| n.clone())
            .collect();
        if lost != self.lost_devices {
            if lost.is_empty() {
                tracing::info!("every field device answers");
            } else {
                tracing::warn!(devices = ?lost, "field devices not answering");
            }
            self.lost_devices = lost;
        }
        if now_s - self.stats_logged_at_s >= STATS_LOG_PERIOD_S {
            self.stats_logged_at_s = now_s;
            for (name, s) in &stats {
                tracing::debug!(
                    device = %name,
                    requests = s.requests,
                    errors = s.errors,
                    timeouts = s.timeouts,
                    exceptions = s.exceptions,
                    last_latency_ms = ?s.last_latency_ms,
                    "device statistics"
                );
            }
            tracing::info!(
                devices = stats.len(),
                not_answering = self.lost_devices.len(),
                requests = stats.values().map(|s| s.requests).sum::<u64>(),
                errors = stats.values().map(|s| s.errors).sum::<u64>(),
                "field statistics"
            );
        }
    }

    fn write(&mut self, cmds: &Commands, three_point: (bool, bool)) {
        for (device, point, value) in planned_writes(&self.loaded, cmds, three_point) {
            if self.opts.dry_run {
                let raw = self
                    .field
                    .point_map(&device, &point)
                    .and_then(|p| p.encode(value))
                    .unwrap_or_default();
                let key = (device.clone(), point.clone());
                if self.dry_run_last.get(&key) != Some(&raw) {
                    tracing::info!(%device, %point, value, ?raw, "dry run: would write");
                    self.dry_run_last.insert(key, raw);
                }
            } else if let Err(e) = self.field.set_write(&device, &point, value) {
                tracing::warn!(%device, %point, value, error = %e, "command not written");
            }
        }
    }

    fn publish(&self, cmds: &Commands, image: &ProcessImage) {
        let devices: Vec<_> = {
            let stats = self.field.shared().stats();
            self.field
                .plans()
                .iter()
                .flat_map(|p| &p.devices)
                .map(|d| {
                    (
                        d.name.clone(),
                        stats.get(&d.name).cloned().unwrap_or_default(),
                    )
                })
                .collect()
        };
        let mode = self.controller.mode();
        self.scada_shared
            .set_input(scada::input_image(cmds, image, mode.code(), &devices));
        self.scada_shared.set_settings(&[
            self.controller.operator_shift_k(),
            f64::from(mode.code()),
            self.controller.room_target_c(),
            f64::from(u8::from(self.settings.demand_enabled)),
            self.settings.manual_pct,
        ]);
    }

    fn apply_scada(&mut self, cmd: ScadaCommand) {
        match cmd {
            ScadaCommand::CurveShiftK(k) => self.controller.set_operator_shift_k(k),
            ScadaCommand::RoomTargetC(c) => self.controller.set_room_target_c(c),
            ScadaCommand::DemandEnabled(on) => {
                self.settings.demand_enabled = on;
                self.controller.set_demand_enabled(on);
            }
            ScadaCommand::OperatingMode(code) => self.controller.set_mode(match code {
                1 => Mode::Off,
                2 => Mode::Manual(self.settings.manual_pct),
                _ => Mode::Auto,
            }),
            ScadaCommand::Valve1ManualPct(p) => {
                self.settings.manual_pct = p;
                if matches!(self.controller.mode(), Mode::Manual(_)) {
                    self.controller.set_mode(Mode::Manual(p));
                }
            }
        }
    }

    async fn reload(&mut self, why: &str) {
        tracing::info!(reason = why, path = %self.opts.config_path.display(), "reloading configuration");
        let new = match config::load(&self.opts.config_path) {
            Ok(new) => new,
            Err(problems) => {
                for p in &problems.0 {
                    tracing::error!("{p}");
                }
                tracing::error!(
                    problems = problems.0.len(),
                    "configuration rejected; keeping the configuration in force"
                );
                return;
            }
        };
        let new_plans = plan_links(&new);
        let scada_changed = new.config.scada != self.loaded.config.scada;
        let mut new_scada = None;
        if scada_changed && new.config.scada.enabled {
            let s = &new.config.scada;
            match scada::serve(&s.listen, s.max_connections, Arc::clone(&self.scada_shared)).await {
                Ok(started) => new_scada = Some(started),
                Err(e)
                    if self.scada_task.is_some() && s.listen == self.loaded.config.scada.listen =>
                {
                    // Same address still bound by the old server: restart it below.
                    tracing::debug!(error = %e, "SCADA address busy; restarting in place");
                }
                Err(e) => {
                    tracing::error!(listen = %s.listen, error = %e, "SCADA cannot listen; keeping the configuration in force");
                    return;
                }
            }
        }
        // Everything checked: apply at once.
        self.controller.reconfigure(&new.config);
        if new.config.demand.enabled != self.loaded.config.demand.enabled {
            self.settings.demand_enabled = new.config.demand.enabled;
        }
        if new_plans != self.field.plans() {
            tracing::info!("links or devices changed: restarting the field tasks");
            self.field.stop();
            self.field = FieldHandle::start(
                new_plans,
                Arc::clone(&self.opts.clock),
                Arc::clone(self.field.shared()),
            );
        }
        if scada_changed {
            if let Some(t) = self.scada_task.take() {
                t.abort();
            }
            if new_scada.is_none() && new.config.scada.enabled {
                let s = &new.config.scada;
                tokio::time::sleep(Duration::from_millis(50)).await;
                match scada::serve(&s.listen, s.max_connections, Arc::clone(&self.scada_shared))
                    .await
                {
                    Ok(started) => new_scada = Some(started),
                    Err(e) => {
                        tracing::error!(listen = %s.listen, error = %e, "SCADA cannot listen")
                    }
                }
            }
            if let Some((addr, task)) = new_scada {
                tracing::info!(%addr, "SCADA slave listening");
                self.scada_task = Some(task);
            }
        }
        self.scada_shared
            .set_access(new.config.scada.writable.clone(), new.config.scada.unit_id);
        self.loaded = new;
        tracing::info!("configuration reloaded");
    }

    async fn shutdown(&mut self, signal_name: &str) {
        tracing::info!(signal = signal_name, "stopping: writing safe positions");
        self.service.stopping(signal_name);
        self.save_state();
        let safe = self.controller.safe_commands();
        // A three-point actuator is left still (both outputs off): it holds its position.
        self.three_point.stop();
        if self.opts.dry_run {
            for (device, point, value) in planned_writes(&self.loaded, &safe, (false, false)) {
                tracing::info!(%device, %point, value, "dry run: would write safe position");
            }
        } else {
            self.write(&safe, (false, false));
            if self.field.flush_writes(SHUTDOWN_WRITE_LIMIT).await {
                tracing::info!("safe positions written");
            } else {
                tracing::error!("safe positions not confirmed by every device");
            }
        }
        self.field.stop();
        if let Some(t) = self.scada_task.take() {
            t.abort();
        }
    }
}

/// Wait until every device has been asked at least once (answered or failed), at most `limit`.
async fn wait_first_round(field: &FieldShared, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let done = field
            .stats()
            .values()
            .all(|s| s.requests > 0 || s.consecutive_failures > 0);
        if done {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Load the configuration and run until SIGINT or SIGTERM.
///
/// # Errors
/// The configuration is invalid (every problem listed), or a signal handler or the SCADA
/// address cannot be set up.
pub async fn run(opts: RunOptions) -> anyhow::Result<()> {
    let loaded = config::load(&opts.config_path).map_err(|p| anyhow::anyhow!("{p}"))?;
    run_inner(opts, loaded, None, None).await
}

/// Run with an already loaded configuration until `embedding.stop` becomes true (or SIGINT or
/// SIGTERM), reporting every cycle. The configuration file is not watched.
///
/// # Errors
/// A signal handler or the SCADA address cannot be set up.
pub async fn run_embedded(opts: RunOptions, embedding: Embedding) -> anyhow::Result<()> {
    let Embedding {
        loaded,
        stop,
        reports,
    } = embedding;
    run_inner(opts, loaded, Some(stop), Some(reports)).await
}

/// The run: `stop` and `reports` are the embedding's (both None for `heatctl run`).
async fn run_inner(
    opts: RunOptions,
    loaded: LoadedConfig,
    mut stop: Option<tokio::sync::watch::Receiver<bool>>,
    reports: Option<tokio::sync::watch::Sender<Option<CycleReport>>>,
) -> anyhow::Result<()> {
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let watch_file = stop.is_none();
    let mut controller = Controller::new(&loaded.config);
    if let Some(path) = &opts.state_path
        && let Some(saved) = read_state(path)
    {
        let age_s = opts.clock.now_s() - saved.saved_at_s;
        if age_s <= STATE_MAX_AGE_S {
            controller.restore(&saved);
            tracing::info!(
                path = %path.display(),
                demand_shift_k = saved.demand_shift_k,
                damped_outdoor_c = ?saved.damped_outdoor_c,
                "control state restored"
            );
        } else {
            tracing::info!(path = %path.display(), age_s, "saved control state too old; starting fresh");
        }
    }
    let age_allowance_s = opts.clock.speed() * REAL_AGE_ALLOWANCE.as_secs_f64();
    controller.set_age_allowance_s(age_allowance_s);
    let shared = Arc::new(FieldShared::default());
    shared.set_age_allowance_s(age_allowance_s);
    let field = FieldHandle::start(plan_links(&loaded), Arc::clone(&opts.clock), shared);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let scada_cfg = loaded.config.scada.clone();
    let scada_shared = Arc::new(ScadaShared::new(
        scada_cfg.writable.clone(),
        scada_cfg.unit_id,
        tx,
    ));
    let scada_task = if scada_cfg.enabled {
        let (addr, task) = scada::serve(
            &scada_cfg.listen,
            scada_cfg.max_connections,
            Arc::clone(&scada_shared),
        )
        .await
        .map_err(|e| anyhow::anyhow!("SCADA cannot listen on {}: {e}", scada_cfg.listen))?;
        tracing::info!(%addr, "SCADA slave listening");
        Some(task)
    } else {
        None
    };
    let settings = Settings {
        demand_enabled: loaded.config.demand.enabled,
        manual_pct: loaded.config.safety.valve1_safe_pct,
    };
    tracing::info!(
        site = %loaded.config.site.name,
        links = loaded.config.links.len(),
        dry_run = opts.dry_run,
        speed = opts.clock.speed(),
        "heatctl running"
    );
    let mut rt = Runtime {
        config_mtime: if watch_file {
            mtime(&opts.config_path)
        } else {
            None
        },
        opts,
        loaded,
        controller,
        field,
        field_alarms: FieldAlarms::default(),
        settings,
        scada_shared,
        scada_task,
        dry_run_last: HashMap::new(),
        last_alarm_codes: Vec::new(),
        lost_devices: Vec::new(),
        stats_logged_at_s: f64::NEG_INFINITY,
        state_saved_at_s: f64::NEG_INFINITY,
        reports,
        three_point: ThreePointOutputs::default(),
        // Only `heatctl run` is a service; an embedding program speaks for itself.
        service: if watch_file {
            Notifier::from_env()
        } else {
            Notifier::disabled()
        },
    };
    // Let every device be asked once before the first step, so the controller starts from real
    // readings (bumpless start from the valve feedback), not from an empty image.
    let first_round = rt.field.shared();
    let asked = wait_first_round(first_round, FIRST_ROUND_LIMIT).await;
    if !asked {
        tracing::warn!("not every device was asked within the start-up limit; starting anyway");
    }
    let mut tick = tokio::time::interval(
        rt.opts
            .clock
            .real_duration(VALVE_PERIOD_S)
            .max(Duration::from_millis(1)),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                rt.cycle();
                if watch_file {
                    let m = mtime(&rt.opts.config_path);
                    if m.is_some() && m != rt.config_mtime {
                        rt.config_mtime = m;
                        rt.reload("configuration file changed").await;
                    }
                }
            }
            Some(cmd) = rx.recv() => rt.apply_scada(cmd),
            _ = sighup.recv() => {
                if watch_file {
                    rt.config_mtime = mtime(&rt.opts.config_path);
                    rt.reload("SIGHUP").await;
                }
            }
            () = stopped(&mut stop) => {
                rt.shutdown("stop").await;
                return Ok(());
            }
            _ = sigint.recv() => {
                rt.shutdown("SIGINT").await;
                return Ok(());
            }
            _ = sigterm.recv() => {
                rt.shutdown("SIGTERM").await;
                return Ok(());
            }
        }
    }
}

/// Resolves when the embedding asks to stop (never without an embedding, nor when the
/// embedding's sender is gone without asking).
async fn stopped(stop: &mut Option<tokio::sync::watch::Receiver<bool>>) {
    match stop {
        Some(rx) => {
            if rx.wait_for(|s| *s).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::Explanation;

    fn loaded(extra: &str) -> LoadedConfig {
        let text = format!(
            "[site]\nname = \"t\"\n[curve]\npoints = [{{ outdoor_c = -20.0, supply_c = 70.0 }}, {{ outdoor_c = 15.0, supply_c = 30.0 }}]\n\
             [[links]]\nname = \"gw\"\nkind = \"rtu_over_tcp\"\nhost = \"127.0.0.1\"\nport = 1\n\
             [[devices]]\nname = \"plc\"\nlink = \"gw\"\nunit_id = 5\nmap = \"m.toml\"\n\
             [points]\nt2_supply = \"plc.t2_supply\"\nvalve1_cmd = \"plc.valve1_cmd\"\n{extra}\
             [rooms]\nnodes = [\n{{ id = \"a\", link = \"gw\", unit_id = 1, valve_link = \"gw\", valve_unit_id = 11 }},\n\
             {{ id = \"b\", link = \"gw\", unit_id = 2 }},\n]\n"
        );
        let config = crate::config::parse_str(&text, None).unwrap_or_else(|p| panic!("{p}"));
        LoadedConfig {
            config,
            path: PathBuf::from("t.toml"),
            maps: std::collections::BTreeMap::new(),
        }
    }

    fn commands(valve1_pct: f64, hh: Vec<Option<f64>>) -> Commands {
        Commands {
            valve1_pct,
            valve1_pulse: None,
            hh_valves_pct: hh,
            alarms: Vec::new(),
            explanation: Explanation::default(),
        }
    }

    #[test]
    fn writes_follow_the_bindings() {
        let l = loaded("");
        let w = planned_writes(
            &l,
            &commands(33.0, vec![Some(50.0), Some(70.0)]),
            (false, false),
        );
        assert_eq!(
            w,
            vec![
                ("plc".into(), "valve1_cmd".into(), 33.0),
                ("hh_valve:a".into(), "command".into(), 50.0),
            ],
            "node b has no valve"
        );
        let w = planned_writes(&l, &commands(f64::NAN, vec![None, None]), (false, false));
        assert!(w.is_empty(), "nothing finite, nothing written");
    }

    #[test]
    fn state_file_round_trip_and_damage() {
        let dir = std::env::temp_dir().join(format!("heatctl-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.toml");
        assert_eq!(read_state(&path), None, "no file: fresh start");
        let saved = SavedState {
            saved_at_s: 1.0e9,
            demand_shift_k: -2.25,
            valve_demand_shift_k: 0.5,
            damped_outdoor_c: Some(-7.5),
        };
        write_state(&path, &saved).unwrap();
        assert_eq!(read_state(&path), Some(saved));
        assert!(!path.with_extension("tmp").exists(), "renamed into place");
        std::fs::write(&path, "demand_shift_k = \"oops\"").unwrap();
        assert_eq!(read_state(&path), None, "damaged: fresh start, no panic");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn three_point_outputs_follow_the_pulses() {
        let mut o = ThreePointOutputs::default();
        assert_eq!(o.update(0.0, None), (false, false));
        assert_eq!(o.update(1.0, Some(Pulse::Open(2.5))), (true, false));
        assert_eq!(o.update(2.0, None), (true, false));
        assert_eq!(o.update(3.4, None), (true, false));
        assert_eq!(o.update(3.6, None), (false, false), "pulse over");
        assert_eq!(o.update(4.0, Some(Pulse::Close(10.0))), (false, true));
        assert_eq!(
            o.update(5.0, Some(Pulse::Open(1.0))),
            (true, false),
            "a new pulse replaces the running one: never both"
        );
        o.stop();
        assert_eq!(o.update(5.5, None), (false, false));
        assert_eq!(o.update(6.0, Some(Pulse::Open(f64::NAN))), (false, false));
    }

    #[test]
    fn three_point_writes_go_to_the_open_and_close_points() {
        let l = loaded(
            "valve1_open = \"plc.valve1_open\"\nvalve1_close = \"plc.valve1_close\"\n[valve1]\noutput = \"three_point\"\n",
        );
        let w = planned_writes(&l, &commands(33.0, vec![]), (true, false));
        assert_eq!(
            w,
            vec![
                ("plc".into(), "valve1_open".into(), 1.0),
                ("plc".into(), "valve1_close".into(), 0.0),
            ],
            "the position command is not written to a three-point actuator"
        );
        let w = planned_writes(&l, &commands(33.0, vec![]), (false, false));
        assert!(w.iter().all(|(_, _, v)| *v == 0.0));
    }

    #[test]
    fn field_alarms_raise_and_clear() {
        let mut a = FieldAlarms::default();
        assert!(a.update(false, false, 0.0).is_empty());
        let raised = a.update(true, false, 1.0);
        assert_eq!(raised.len(), 1);
        assert_eq!(raised[0].code, AlarmCode::DeviceCommLost);
        assert_eq!(a.update(true, true, 2.0)[0].since_s, 1.0);
        assert_eq!(a.update(false, true, 3.0).len(), 1);
        assert!(a.update(false, false, 4.0).is_empty());
    }
}
