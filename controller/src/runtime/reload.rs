//! Settings SCADA changes and configuration reloads, applied between cycles.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::cycle::Runtime;
use crate::config;
use crate::control::Mode;
use crate::field::{FieldHandle, plan_links};
use crate::scada::{self, ScadaCommand};

/// Settings SCADA can change, as the runtime keeps them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Settings {
    pub(super) manual_pct: f64,
}

/// The modification time of a file (None when it cannot be read).
pub(super) fn mtime(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Runtime {
    /// Apply a setting SCADA wrote.
    pub(super) fn apply_scada(&mut self, cmd: ScadaCommand) {
        match cmd {
            ScadaCommand::CurveShiftK(k) => self.controller.set_operator_shift_k(k),
            ScadaCommand::RoomTargetC(c) => self.controller.set_room_target_c(c),
            ScadaCommand::DemandEnabled(on) => {
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

    /// Load the configuration file again and apply it at once when it is valid (and its SCADA
    /// address can be bound); otherwise keep the configuration in force.
    pub(super) async fn reload(&mut self, why: &str) {
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
}
