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

/// Write the control state atomically (temporary file flushed to disk, then renamed over the
/// old one), so a kill, a power cut, a full or read-only state directory during the write
/// leaves the previous state intact. On failure the temporary file is removed (a full disk is
/// not filled further by leftovers) and the error returned: the caller keeps controlling,
/// raises alarm 702 and tries again at the next save.
///
/// # Errors
/// The temporary file cannot be created, written, flushed or renamed.
pub(super) fn write_state(path: &Path, state: &SavedState) -> std::io::Result<()> {
    let text = toml::to_string(state).map_err(std::io::Error::other)?;
    let tmp = temporary_path(path);
    let written = write_synced(&tmp, text.as_bytes()).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        // Nothing to remove when it was never created (read-only directory).
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The temporary file a state file is written to before the rename.
pub(super) fn temporary_path(path: &Path) -> std::path::PathBuf {
    path.with_extension("tmp")
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state_dir::scratch::Scratch;

    #[test]
    fn state_file_round_trip_and_damage() {
        let dir = Scratch::new(&format!("heatctl-state-{}", std::process::id()));
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
        assert!(!temporary_path(&path).exists(), "renamed into place");
        std::fs::write(&path, "demand_shift_k = \"oops\"").unwrap();
        assert_eq!(read_state(&path), None, "damaged: fresh start, no panic");
    }

    #[test]
    fn a_failed_write_keeps_the_last_good_file_and_leaves_no_temporary_file() {
        let dir = Scratch::new(&format!("heatctl-state-fail-{}", std::process::id()));
        let path = dir.join("state.toml");
        let good = SavedState {
            saved_at_s: 1.0e9,
            demand_shift_k: 1.5,
            valve_demand_shift_k: 0.0,
            damped_outdoor_c: None,
        };
        write_state(&path, &good).unwrap();
        // A write that fails, as any user can make one: a directory stands at the temporary
        // path. (The spawned tests in hil-tests make the directory read-only and full.)
        std::fs::create_dir_all(temporary_path(&path)).unwrap();
        let newer = SavedState {
            saved_at_s: 2.0e9,
            ..good
        };
        assert!(write_state(&path, &newer).is_err());
        assert_eq!(read_state(&path), Some(good), "the last good state is kept");
        std::fs::remove_dir(temporary_path(&path)).unwrap();
        // A later write succeeds (the retry) and leaves no temporary file.
        write_state(&path, &newer).unwrap();
        assert_eq!(read_state(&path), Some(newer));
        assert!(!temporary_path(&path).exists());
    }
}
