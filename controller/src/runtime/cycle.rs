//! The cycle and the run loop: one control cycle every [`VALVE_PERIOD_S`], SCADA writes,
//! reloads and signals in between, the safe positions on the way out.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinHandle;

use super::alarm_log::AlarmLog;
use super::clock::{WallStep, WallStepDetector};
use super::io::{build_image, planned_writes};
use super::reload::{Settings, mtime};
use super::state::{STATE_SAVE_PERIOD_S, restore_state, write_state};
use super::{
    FIRST_ROUND_LIMIT, REAL_AGE_ALLOWANCE, RunOptions, SHUTDOWN_WRITE_LIMIT,
    STATS_LOG_PERIOD_DRY_RUN_S, STATS_LOG_PERIOD_S, VALVE_PERIOD_S,
};
use crate::audit::rfc3339_utc;
use crate::audit::{Audit, wall_unix_s};
use crate::config::LoadedConfig;
use crate::control::{
    Commands, Controller, FieldAlarms, FieldConditions, SavedState, StepTime, ThreePointOutputs,
};
use crate::faces::{FaceContext, Faces};
use crate::field::{FieldHandle, FieldShared, plan_links};
use crate::gate::{Access, Gate};
use crate::scada::{self, ScadaShared};
use crate::service::{self, Notifier};
use crate::station::{
    CycleInputs, OperatorSettings, PlatformLinkState, SnapshotSender, StationIdentity,
    StationSnapshot,
};

/// The running controller: configuration, control state, field layer, SCADA slave.
pub(super) struct Runtime {
    pub(super) opts: RunOptions,
    pub(super) loaded: LoadedConfig,
    pub(super) controller: Controller,
    pub(super) field: FieldHandle,
    pub(super) field_alarms: FieldAlarms,
    pub(super) settings: Settings,
    pub(super) scada_shared: Arc<ScadaShared>,
    pub(super) scada_task: Option<JoinHandle<()>>,
    pub(super) dry_run_last: HashMap<(String, String), Vec<u16>>,
    pub(super) config_mtime: Option<(SystemTime, u64)>,
    /// What the log has said about alarms (one line on raise, one on clear).
    pub(super) alarm_log: AlarmLog,
    /// Which state-directory writes fail and why (alarm 702, from [`crate::state_dir`]), None
    /// when they all work.
    pub(super) state_error: Option<String>,
    pub(super) lost_devices: Vec<String>,
    pub(super) stats_logged_at_s: f64,
    pub(super) state_saved_at_s: f64,
    pub(super) snapshots: SnapshotSender,
    pub(super) three_point: ThreePointOutputs,
    /// systemd's notify protocol (disabled when embedded or not a service).
    pub(super) service: Notifier,
    /// The one settings gate (and through it the audit log).
    pub(super) gate: Gate,
    /// The platform link and the web page.
    pub(super) faces: Faces,
    /// Station, software, configuration hash, start time.
    pub(super) identity: StationIdentity,
    /// `heatctl run` (watches its file, may take pushed configurations), not embedded.
    pub(super) watch_file: bool,
    /// Since when the platform link has been without a broker, monotonic clock seconds.
    pub(super) platform_down_since_s: Option<f64>,
    /// Compares wall and monotonic time every cycle.
    pub(super) wall_steps: WallStepDetector,
    /// When the run started, for the uptime (real time).
    pub(super) started: std::time::Instant,
    /// The configuration in force, for the faces (replaced at every reload).
    pub(super) configs: tokio::sync::watch::Sender<Arc<crate::config::Config>>,
}

impl Runtime {
    /// One control cycle: image, step, field alarms, writes, then the snapshot every face reads.
    pub(super) fn cycle(&mut self) {
        self.service.hold_while_stalled();
        let t = self.opts.clock.now();
        let now_s = t.mono_s;
        let clock_stepped = self.wall_step(t);
        let image = build_image(&self.loaded, self.field.shared(), now_s);
        let mut cmds = self.controller.step_at(t, &image);
        let (comm_lost, write_failed) = self.field.shared().alarm_conditions();
        let platform = self.faces.platform_state();
        let platform_down = self.platform_down(platform.as_ref(), now_s);
        // One gate for 702: every writer of the state directory reports there.
        self.state_error = crate::state_dir::describe(
            self.opts.state_dir.as_deref(),
            self.opts.state_path.as_deref(),
        );
        // Raised and cleared alarms are logged from the snapshot (`log`), with the controller's
        // own, once each.
        let _ = self.field_alarms.update(
            FieldConditions {
                comm_lost,
                write_failed,
                platform_down,
                clock_stepped,
                state_write_failed: self.state_error.is_some(),
            },
            t,
            self.loaded.config.safety.alarm_clear_delay_s,
        );
        cmds.alarms.extend(self.field_alarms.list());
        let three_point = self.three_point.update(now_s, cmds.valve1_pulse);
        self.write(&cmds, three_point);
        let stats = self.field.shared().stats();
        let mode = self.controller.mode();
        self.identity.cycle += 1;
        let snapshot = Arc::new(StationSnapshot::of_cycle(CycleInputs {
            loaded: &self.loaded,
            clock: self.opts.clock.as_ref(),
            time: t,
            uptime_s: self.started.elapsed().as_secs_f64(),
            image: &image,
            commands: cmds,
            three_point,
            plans: self.field.plans(),
            stats,
            settings: OperatorSettings {
                mode,
                curve_shift_k: self.controller.operator_shift_k(),
                room_target_c: self.controller.room_target_c(),
                demand_enabled: self.controller.demand_enabled(),
                valve1_manual_pct: self.settings.manual_pct,
            },
            saved_state: self.controller.saved_state(),
            room_verdicts: self.controller.room_verdicts(),
            identity: self.identity.clone(),
            platform,
        }));
        self.log(&snapshot, now_s);
        self.scada_shared.publish(&snapshot);
        // On an accelerated clock, at most once a real second: the file is written in the cycle.
        // A failed write is tried again at the next save (alarm 702 meanwhile).
        if now_s - self.state_saved_at_s >= STATE_SAVE_PERIOD_S.max(self.opts.clock.speed()) {
            self.state_saved_at_s = now_s;
            self.save_state(&snapshot.saved_state);
        }
        // The watchdog is fed here, by the cycle itself: a hung loop stops it.
        // The state line is formatted only for a service manager that listens.
        if self.service.is_enabled() {
            self.service.set_status(&service::status_line(&snapshot));
        }
        self.service.cycle_done();
        self.snapshots.send_replace(Some(snapshot));
    }

    /// Look for a step of the wall clock since the last cycle (logged once, with the old and
    /// the new time); whether alarm 701's condition holds: a step within the last
    /// [`super::clock::CLOCK_STEP_ALARM_HOLD_S`] of monotonic time.
    fn wall_step(&mut self, t: StepTime) -> bool {
        if let Some(step) = self.wall_steps.observe(t) {
            let WallStep {
                expected_wall_s,
                wall_s,
            } = step;
            tracing::warn!(
                old_wall = %rfc3339_utc(expected_wall_s),
                new_wall = %rfc3339_utc(wall_s),
                step_s = step.step_s(),
                "wall clock stepped: schedules follow the new time, durations are unaffected"
            );
        }
        self.wall_steps.recently_stepped(t.mono_s)
    }

    /// Whether the platform link, when it runs, has been without a broker for longer than
    /// `platform.alarm_after_s` (a start or a short reconnect is not an alarm).
    fn platform_down(&mut self, platform: Option<&PlatformLinkState>, now_s: f64) -> bool {
        match platform {
            Some(p) if !p.connected => {
                let since = *self.platform_down_since_s.get_or_insert(now_s);
                now_s - since >= self.loaded.config.platform.alarm_after_s
            }
            _ => {
                self.platform_down_since_s = None;
                false
            }
        }
    }

    /// What a face gets when it starts: the snapshots, the gate, the audit log, the state
    /// directory and the configuration in force.
    pub(super) fn face_context(&self) -> FaceContext {
        FaceContext {
            snapshots: self.snapshots.subscribe(),
            gate: self.gate.clone(),
            audit: self.gate.audit().clone(),
            state_dir: self.opts.state_dir.clone(),
            config: self.configs.borrow().clone(),
            configs: self.configs.subscribe(),
        }
    }

    /// Write the state file; the outcome goes to [`crate::state_dir`] (alarm 702 and the
    /// rate-limited log lines; control goes on, the last good file stays, the next save tries
    /// again).
    fn save_state(&self, state: &SavedState) {
        let Some(path) = &self.opts.state_path else {
            return;
        };
        crate::state_dir::report("state file", path, &write_state(path, state));
    }

    /// The log lines of a cycle: the devices that stop or resume answering, each alarm once
    /// when raised and once when cleared (with what it is about), the statistics every
    /// [`STATS_LOG_PERIOD_S`] ([`STATS_LOG_PERIOD_DRY_RUN_S`] in a dry run), and the cycle at
    /// debug level.
    fn log(&mut self, snapshot: &StationSnapshot, now_s: f64) {
        let lines = self.alarm_log.update(
            &self.loaded.config,
            snapshot,
            self.state_error.as_deref(),
            now_s,
        );
        self.alarm_log.emit(&lines);
        let lost = snapshot.lost_devices();
        if lost != self.lost_devices {
            if lost.is_empty() {
                tracing::info!("every field device answers");
            } else {
                tracing::warn!(devices = ?lost, "field devices not answering");
            }
            self.lost_devices = lost;
        }
        let stats_period_s = if self.opts.dry_run {
            STATS_LOG_PERIOD_DRY_RUN_S
        } else {
            STATS_LOG_PERIOD_S
        };
        if now_s - self.stats_logged_at_s >= stats_period_s {
            self.stats_logged_at_s = now_s;
            for d in &snapshot.devices {
                let s = &d.stats;
                tracing::debug!(
                    device = %d.name,
                    requests = s.requests,
                    errors = s.errors,
                    timeouts = s.timeouts,
                    exceptions = s.exceptions,
                    last_latency_ms = ?s.last_latency_ms,
                    "device statistics"
                );
            }
            tracing::info!(
                devices = snapshot.devices.len(),
                not_answering = self.lost_devices.len(),
                requests = snapshot.links.iter().map(|l| l.requests).sum::<u64>(),
                errors = snapshot.links.iter().map(|l| l.errors).sum::<u64>(),
                "field statistics"
            );
        }
        let ex = &snapshot.explanation;
        tracing::debug!(
            setpoint_c = ?ex.setpoint_c,
            valve1_pct = snapshot.commands.valve1_cmd_pct,
            limiter = ?ex.active_limiter.map(|l| l.name()),
            demand_shift_k = ex.demand_shift_k,
            "cycle"
        );
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

    /// Write the safe positions and stop the field layer and the SCADA slave.
    pub(super) async fn shutdown(&mut self, signal_name: &str) {
        tracing::info!(signal = signal_name, "stopping: writing safe positions");
        self.service.stopping(signal_name);
        let last = self.snapshots.borrow().as_ref().map(|s| s.saved_state);
        self.save_state(&last.unwrap_or_else(|| self.controller.saved_state()));
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
        self.faces.stop().await;
        self.gate.audit().close();
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

/// SIGXFSZ on Linux (x86, ARM).
const SIGXFSZ: i32 = 25;

/// The run: `stop` is the embedding's (None for `heatctl run`); every cycle's snapshot goes to
/// `snapshots`.
pub(super) async fn run_inner(
    opts: RunOptions,
    loaded: LoadedConfig,
    mut stop: Option<tokio::sync::watch::Receiver<bool>>,
    snapshots: SnapshotSender,
) -> anyhow::Result<()> {
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    // A file-size limit (RLIMIT_FSIZE) reached by a state-directory write would kill the
    // process with SIGXFSZ; with a handler the write fails with EFBIG instead, which the state
    // file and the history handle (alarm 702, control goes on). Linux's number: 25.
    let _sigxfsz = signal(SignalKind::from_raw(SIGXFSZ))?;
    let watch_file = stop.is_none();
    let mut controller = Controller::new(&loaded.config);
    if let Some(path) = &opts.state_path {
        // The state file's age spans restarts: wall time (a clock still in 1970 finds every
        // saved state from the future, which the file's own check handles).
        restore_state(&mut controller, path, opts.clock.wall_s());
    }
    let age_allowance_s = opts.clock.speed() * REAL_AGE_ALLOWANCE.as_secs_f64();
    controller.set_age_allowance_s(age_allowance_s);
    let shared = Arc::new(FieldShared::default());
    shared.set_age_allowance_s(age_allowance_s);
    let field = FieldHandle::start(plan_links(&loaded), Arc::clone(&opts.clock), shared);
    let audit = Audit::open(opts.state_dir.as_deref());
    let (gate, mut gate_rx) = Gate::new(Access::of(&loaded.config), audit);
    let scada_cfg = loaded.config.scada.clone();
    let scada_shared = Arc::new(ScadaShared::new(scada_cfg.unit_id, gate.clone()));
    let scada_task = if scada_cfg.enabled {
        let (addr, task) = scada::serve(
            &scada_cfg.listen,
            scada::Limits::of(&scada_cfg),
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
        manual_pct: loaded.config.safety.valve1_safe_pct,
    };
    tracing::info!(
        site = %loaded.config.site.name,
        links = loaded.config.links.len(),
        dry_run = opts.dry_run,
        speed = opts.clock.speed(),
        "heatctl running"
    );
    let loaded_config = loaded.config.clone();
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
        alarm_log: AlarmLog::default(),
        state_error: None,
        lost_devices: Vec::new(),
        stats_logged_at_s: f64::NEG_INFINITY,
        state_saved_at_s: f64::NEG_INFINITY,
        snapshots,
        three_point: ThreePointOutputs::default(),
        // Only `heatctl run` is a service; an embedding program speaks for itself.
        service: if watch_file {
            Notifier::from_env()
        } else {
            Notifier::disabled()
        },
        identity: StationIdentity::of(&loaded_config, wall_unix_s()),
        gate,
        faces: Faces::default(),
        watch_file,
        platform_down_since_s: None,
        wall_steps: WallStepDetector::default(),
        started: std::time::Instant::now(),
        configs: tokio::sync::watch::Sender::new(Arc::new(loaded_config.clone())),
    };
    let ctx = rt.face_context();
    rt.faces = match Faces::start(&ctx).await {
        Ok(f) => f,
        Err(e) => {
            rt.shutdown("a face cannot start").await;
            return Err(e);
        }
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
            Some(msg) = gate_rx.recv() => rt.apply_gate(msg).await,
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
