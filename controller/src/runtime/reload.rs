//! Requests from the settings gate (settings, pushed configurations) and configuration
//! reloads, applied between cycles and audited.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::cycle::Runtime;
use crate::config;
use crate::control::Mode;
use crate::field::{FieldHandle, plan_links};
use crate::gate::{
    Access, Change, ChangeOutcome, ChangeRequest, GateMsg, Setting, Source, audit_record,
};
use crate::scada;
use crate::station::{StationIdentity, config_hash};

/// Settings SCADA can change, as the runtime keeps them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Settings {
    pub(super) manual_pct: f64,
}

/// What tells a changed file: its modification time and its length (None when it cannot be
/// read). The length matters for a file rewritten in place: truncated and written again within
/// one tick of the file system's coarse clock, it keeps its modification time, and a reload
/// that read it half-written (and refused it) would otherwise never see the rest.
pub(super) fn mtime(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    std::fs::metadata(path)
        .and_then(|m| Ok((m.modified()?, m.len())))
        .ok()
}

impl Runtime {
    /// Apply a request that passed the gate, answer it and audit the outcome.
    pub(super) async fn apply_gate(&mut self, msg: GateMsg) {
        let GateMsg {
            request,
            setting,
            reply,
        } = msg;
        let outcome = match (&request.change, setting) {
            (Change::Setting { .. }, Some(setting)) => self.apply_setting(setting),
            (Change::Config { toml }, _) => self.apply_config_text(toml).await,
            (Change::Setting { .. }, None) => ChangeOutcome::refused("setting not checked"),
        };
        self.gate.audit().record(audit_record(&request, &outcome));
        if let Some(reply) = reply {
            // The asker may have given up; the audit log has the outcome.
            let _ = reply.send(outcome);
        }
    }

    /// Apply a checked setting: old -> new, as JSON values.
    fn apply_setting(&mut self, setting: Setting) -> ChangeOutcome {
        let mode_name = |m: Mode| match m {
            Mode::Auto => "auto",
            Mode::Off => "off",
            Mode::Manual(_) => "manual",
        };
        match setting {
            Setting::CurveShiftK(k) => {
                let old = self.controller.operator_shift_k();
                self.controller.set_operator_shift_k(k);
                ChangeOutcome::applied(old.into(), self.controller.operator_shift_k().into())
            }
            Setting::RoomTargetC(c) => {
                let old = self.controller.room_target_c();
                self.controller.set_room_target_c(c);
                ChangeOutcome::applied(old.into(), self.controller.room_target_c().into())
            }
            Setting::DemandEnabled(on) => {
                let old = self.controller.demand_enabled();
                self.controller.set_demand_enabled(on);
                ChangeOutcome::applied(old.into(), self.controller.demand_enabled().into())
            }
            Setting::OperatingMode(code) => {
                let old = mode_name(self.controller.mode());
                self.controller.set_mode(match code {
                    1 => Mode::Off,
                    2 => Mode::Manual(self.settings.manual_pct),
                    _ => Mode::Auto,
                });
                ChangeOutcome::applied(old.into(), mode_name(self.controller.mode()).into())
            }
            Setting::Valve1ManualPct(p) => {
                let old = self.settings.manual_pct;
                self.settings.manual_pct = p;
                if matches!(self.controller.mode(), Mode::Manual(_)) {
                    self.controller.set_mode(Mode::Manual(p));
                }
                ChangeOutcome::applied(old.into(), p.into())
            }
        }
    }

    /// A whole configuration pushed from outside: validated in full (every problem returned),
    /// written atomically beside the previous file (kept as `<file>.prev`), then applied like
    /// a reload; on any problem nothing is written and nothing changes.
    async fn apply_config_text(&mut self, text: &str) -> ChangeOutcome {
        if !self.watch_file {
            return ChangeOutcome::refused(
                "this run has no configuration file (embedded); a configuration cannot be pushed",
            );
        }
        let path = self.opts.config_path.clone();
        if let Err(problems) = config::load_text_at(text, &path) {
            return ChangeOutcome {
                reason: Some(format!(
                    "{} problem(s) in the configuration",
                    problems.0.len()
                )),
                problems: problems.0.iter().map(ToString::to_string).collect(),
                ..ChangeOutcome::default()
            };
        }
        let prev = prev_path(&path);
        if let Err(e) = write_atomically(&path, &prev, text) {
            return ChangeOutcome::refused(format!(
                "cannot write {}: {e}; nothing changed",
                path.display()
            ));
        }
        self.config_mtime = mtime(&path);
        let old_hash = self.identity.config_hash.clone();
        match self.reload_file().await {
            Ok(()) => {
                ChangeOutcome::applied(old_hash.into(), self.identity.config_hash.clone().into())
            }
            Err(why) => {
                // Put the previous file back: the one in force.
                if let Err(e) = std::fs::rename(&prev, &path) {
                    tracing::error!(error = %e, "cannot restore the previous configuration file");
                }
                self.config_mtime = mtime(&path);
                ChangeOutcome::refused(why)
            }
        }
    }

    /// A reload of the file (changed on disk or SIGHUP), audited as from the file.
    pub(super) async fn reload(&mut self, why: &str) {
        tracing::info!(reason = why, path = %self.opts.config_path.display(), "reloading configuration");
        let old_hash = self.identity.config_hash.clone();
        let outcome = match self.reload_file().await {
            Ok(()) => {
                ChangeOutcome::applied(old_hash.into(), self.identity.config_hash.clone().into())
            }
            Err(e) => ChangeOutcome::refused(e),
        };
        let request = ChangeRequest {
            source: Source::File,
            client: format!("{} ({why})", self.opts.config_path.display()),
            change: Change::Config {
                toml: String::new(),
            },
        };
        self.gate.audit().record(audit_record(&request, &outcome));
    }

    /// Load the configuration file again and apply it at once when it is valid (and its SCADA
    /// address can be bound); otherwise keep the configuration in force and say why.
    async fn reload_file(&mut self) -> Result<(), String> {
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
                return Err(format!(
                    "{} problem(s) in the configuration: {}",
                    problems.0.len(),
                    problems
                        .0
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
            }
        };
        let new_plans = plan_links(&new);
        let scada_changed = new.config.scada != self.loaded.config.scada;
        let mut new_scada = None;
        if scada_changed && new.config.scada.enabled {
            let s = &new.config.scada;
            match scada::serve(
                &s.listen,
                scada::Limits::of(s),
                Arc::clone(&self.scada_shared),
            )
            .await
            {
                Ok(started) => new_scada = Some(started),
                Err(e)
                    if self.scada_task.is_some() && s.listen == self.loaded.config.scada.listen =>
                {
                    // Same address still bound by the old server: restart it below.
                    tracing::debug!(error = %e, "SCADA address busy; restarting in place");
                }
                Err(e) => {
                    tracing::error!(listen = %s.listen, error = %e, "SCADA cannot listen; keeping the configuration in force");
                    return Err(format!("SCADA cannot listen on {}: {e}", s.listen));
                }
            }
        }
        // Everything checked: apply at once.
        self.controller.reconfigure(&new.config);
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
                match scada::serve(
                    &s.listen,
                    scada::Limits::of(s),
                    Arc::clone(&self.scada_shared),
                )
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
        self.scada_shared.set_unit_id(new.config.scada.unit_id);
        self.gate.set_access(Access::of(&new.config));
        let old = std::mem::replace(&mut self.loaded, new);
        self.configs
            .send_replace(Arc::new(self.loaded.config.clone()));
        self.identity = StationIdentity {
            config_hash: config_hash(&self.loaded.config),
            site_id: self.loaded.config.platform.site_id.clone(),
            station_id: self
                .loaded
                .config
                .platform
                .station_id_or(&self.loaded.config.site.name),
            ..self.identity.clone()
        };
        let ctx = self.face_context();
        if let Err(e) = self.faces.reconfigure(&old.config, &ctx).await {
            tracing::error!(error = %e, "a face could not restart with the new configuration");
        }
        tracing::info!("configuration reloaded");
        Ok(())
    }
}

/// Where the previous configuration file is kept: `<file>.prev`.
fn prev_path(path: &std::path::Path) -> std::path::PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".prev");
    path.with_file_name(name)
}

/// Write `text` to `path` atomically (a temporary file beside it, synced, renamed over it),
/// keeping the current file as `prev`.
fn write_atomically(
    path: &std::path::Path,
    prev: &std::path::Path,
    text: &str,
) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".new");
    let tmp = path.with_file_name(tmp_name);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::copy(path, prev)?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        // Make the rename durable; some file systems cannot sync a directory.
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}
