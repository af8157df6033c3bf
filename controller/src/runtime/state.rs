//! The state file: the controller's slow state (demand shift, damped outdoor temperature)
//! kept across restarts, as TOML, written atomically.

use std::path::Path;

use crate::control::{Controller, SavedState};

/// How often the slow control state is saved to the state file, clock seconds.
pub const STATE_SAVE_PERIOD_S: f64 = 60.0;
/// A saved state older than this is not restored (the learning is stale), clock seconds.
pub const STATE_MAX_AGE_S: f64 = 86_400.0;

/// Resume `controller` from the state file at `path` when there is one younger than
/// [`STATE_MAX_AGE_S`] at `now_s`.
pub(super) fn restore_state(controller: &mut Controller, path: &Path, now_s: f64) {
    let Some(saved) = read_state(path) else {
        return;
    };
    let age_s = now_s - saved.saved_at_s;
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

/// Read a saved control state (TOML). Missing file: None; unreadable: None with a warning.
pub(super) fn read_state(path: &Path) -> Option<SavedState> {
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
pub(super) fn write_state(path: &Path, state: &SavedState) -> std::io::Result<()> {
    let text = toml::to_string(state).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
