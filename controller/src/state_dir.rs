//! Faults of the state directory's writers, in one place: the state file, the audit log, the
//! room history and the platform's store-and-forward queue each report here whether their
//! last write worked, and the control cycle reads [`describe`] once per cycle for alarm 702
//! ("state directory not writable"), whose text names the files that fail. A writer's fault is
//! cleared by its next successful write (or when it stops writing there for good).
//!
//! The registry is keyed by the file (or, for the queue, its directory), so writers running on
//! their own threads and tasks never wait for one another or for the cycle: a report is a map
//! update under a lock held for microseconds, never across I/O. Failures are logged here,
//! rate-limited like the field layer's ([`FailureLog`]): one line when a file starts failing,
//! then a count per window, one line when it works again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use crate::field::{FailureLog, FailureSubject, failure_log};

/// What failed in the state directory: a writer's file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDirFault {
    /// The writer ("state file", "audit log", "room history", "platform queue").
    pub writer: &'static str,
    /// The file, or the queue's directory.
    pub path: PathBuf,
    /// The last error.
    pub error: String,
}

impl std::fmt::Display for StateDirFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.writer, self.path.display(), self.error)
    }
}

#[derive(Debug)]
struct Registry {
    faults: BTreeMap<PathBuf, StateDirFault>,
    log: FailureLog,
    started: Instant,
}

fn registry() -> MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| {
            Mutex::new(Registry {
                faults: BTreeMap::new(),
                log: FailureLog::default(),
                started: Instant::now(),
            })
        })
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn subject(path: &Path) -> FailureSubject {
    FailureSubject::File {
        path: path.display().to_string(),
    }
}

/// A write of `writer` to `path` failed with `error`: alarm 702 holds until it works again;
/// logged rate-limited.
pub fn failed(writer: &'static str, path: &Path, error: &dyn std::fmt::Display) {
    let error = error.to_string();
    let subject = subject(path);
    let event = {
        let mut r = registry();
        let now_s = r.started.elapsed().as_secs_f64();
        let event = r
            .log
            .failure(&subject, &format!("{writer} not written: {error}"), now_s);
        r.faults.insert(
            path.to_path_buf(),
            StateDirFault {
                writer,
                path: path.to_path_buf(),
                error,
            },
        );
        event
    };
    if let Some(e) = event {
        failure_log::emit(&subject, &e);
    }
}

/// A write to `path` worked: its fault, if any, is cleared (logged once).
pub fn succeeded(path: &Path) {
    let subject = subject(path);
    let event = {
        let mut r = registry();
        if r.faults.remove(path).is_none() {
            return;
        }
        let now_s = r.started.elapsed().as_secs_f64();
        r.log.success(&subject, now_s)
    };
    if let Some(e) = event {
        failure_log::emit(&subject, &e);
    }
}

/// Report the outcome of a write of `writer` to `path` (see [`failed`], [`succeeded`]).
pub fn report<T, E: std::fmt::Display>(writer: &'static str, path: &Path, result: &Result<T, E>) {
    match result {
        Ok(_) => succeeded(path),
        Err(e) => failed(writer, path, e),
    }
}

/// `path` is no longer written (its writer stopped): a fault it had is forgotten.
pub fn forget(path: &Path) {
    registry().faults.remove(path);
}

/// The current faults of the files in `dir` (and below), and of `file` wherever it is.
#[must_use]
pub fn faults(dir: Option<&Path>, file: Option<&Path>) -> Vec<StateDirFault> {
    let r = registry();
    if r.faults.is_empty() {
        return Vec::new();
    }
    r.faults
        .values()
        .filter(|f| dir.is_some_and(|d| f.path.starts_with(d)) || file.is_some_and(|p| f.path == p))
        .cloned()
        .collect()
}

/// Alarm 702's gate and text: None when every write in `dir` and to `file` works, else the
/// failing files and their errors, the state file first.
#[must_use]
pub fn describe(dir: Option<&Path>, file: Option<&Path>) -> Option<String> {
    let mut faults = faults(dir, file);
    if faults.is_empty() {
        return None;
    }
    faults.sort_by_key(|f| (Some(f.path.as_path()) != file, f.path.clone()));
    Some(
        faults
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
    )
}

/// Scratch directories for the library's unit tests (the integration tests' own helper).
#[cfg(test)]
#[path = "../tests/peers/scratch.rs"]
pub(crate) mod scratch;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_kept_per_file_until_it_works_again() {
        let dir = std::env::temp_dir().join(format!("heatctl-statedir-{}", std::process::id()));
        let other = std::env::temp_dir().join(format!("heatctl-other-{}", std::process::id()));
        let state = dir.join("state.toml");
        let audit = dir.join("audit.jsonl");
        assert_eq!(describe(Some(&dir), Some(&state)), None);
        failed("audit log", &audit, &"No space left on device");
        failed("room history", &other.join("h.jsonl"), &"Read-only");
        let text = describe(Some(&dir), Some(&state)).expect("raised");
        assert!(text.contains("audit log") && text.contains("audit.jsonl"));
        assert!(!text.contains("room history"), "another directory's fault");
        failed("state file", &state, &"File too large");
        let text = describe(Some(&dir), Some(&state)).expect("raised");
        assert!(
            text.starts_with("state file"),
            "the state file first: {text}"
        );
        // The state file elsewhere than the directory counts too.
        assert!(describe(None, Some(&state)).is_some());
        succeeded(&state);
        succeeded(&audit);
        assert_eq!(describe(Some(&dir), Some(&state)), None, "cleared");
        assert!(describe(Some(&other), None).is_some());
        forget(&other.join("h.jsonl"));
        assert_eq!(describe(Some(&other), None), None);
    }
}
