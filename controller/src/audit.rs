//! The audit log: every change request from any source (SCADA write, platform command, web
//! write, configuration file reload), accepted or refused, with who asked, what, old -> new and
//! why.
//!
//! Records are kept in memory (the last [`AUDIT_TAIL`]), broadcast to the faces (the platform
//! publishes them on its `/audit` topic, the web page shows the tail) and, when a state
//! directory is set, appended as JSON lines to `<state_dir>/audit.jsonl` by a writer thread, so
//! the control cycle never waits for the disk. Each line is flushed and synced (changes are
//! rare); a full writer queue drops the line from the file (counted and logged), never blocks.
//! A line the disk refuses (read-only or full state directory) is reported to
//! [`crate::state_dir`] (alarm 702 until a line is written again) and kept in memory; a line
//! cut short by a full disk is ended before the next one, so only that record is lost.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Records kept in memory for the faces.
pub const AUDIT_TAIL: usize = 200;
/// The audit log's file name in the state directory.
pub const AUDIT_FILE: &str = "audit.jsonl";
/// Lines the writer thread may have queued before lines are dropped from the file.
const WRITER_QUEUE: usize = 1024;

/// One change request and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Wall time of the decision, UTC, RFC 3339.
    pub time_utc: String,
    /// Who asked: "scada", "platform", "web" or "file".
    pub source: String,
    /// The client: SCADA peer, MQTT topic, web address, file path.
    pub client: String,
    /// What was asked: a setting's name, or "config".
    pub what: String,
    /// Value before (for "config": the configuration hash).
    pub old: Option<Value>,
    /// Value asked for, or in force after (for "config": the new hash).
    pub new: Option<Value>,
    /// "accepted" or "refused".
    pub result: String,
    /// Why it was refused (or a note on an accepted change).
    pub reason: Option<String>,
}

/// The audit log (cheap to clone; every clone is the same log).
#[derive(Debug, Clone)]
pub struct Audit {
    inner: Arc<AuditInner>,
}

#[derive(Debug)]
struct AuditInner {
    tail: Mutex<VecDeque<AuditRecord>>,
    tx: tokio::sync::broadcast::Sender<AuditRecord>,
    file: Mutex<Option<std::sync::mpsc::SyncSender<String>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    path: Option<PathBuf>,
    dropped: AtomicU64,
}

impl Audit {
    /// A log kept in memory only.
    #[must_use]
    pub fn in_memory() -> Self {
        Self::build(None, VecDeque::new())
    }

    /// A log appended to `<state_dir>/audit.jsonl` (the directory is created if needed); the
    /// in-memory tail starts with the file's last records. Without a state directory, in
    /// memory only.
    #[must_use]
    pub fn open(state_dir: Option<&Path>) -> Self {
        let Some(dir) = state_dir else {
            return Self::in_memory();
        };
        let path = dir.join(AUDIT_FILE);
        let tail = read_tail(&path);
        Self::build(Some(path), tail)
    }

    fn build(path: Option<PathBuf>, tail: VecDeque<AuditRecord>) -> Self {
        let (tx, _) = tokio::sync::broadcast::channel(256);
        let (file, writer) = path.as_ref().and_then(|p| spawn_writer(p.clone())).unzip();
        Self {
            inner: Arc::new(AuditInner {
                tail: Mutex::new(tail),
                tx,
                file: Mutex::new(file),
                writer: Mutex::new(writer),
                path,
                dropped: AtomicU64::new(0),
            }),
        }
    }

    /// The file the log is appended to, if any.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// Record one decision: into the tail, to subscribers, to the file; logged too.
    pub fn record(&self, rec: AuditRecord) {
        tracing::info!(
            source = %rec.source,
            client = %rec.client,
            what = %rec.what,
            old = ?rec.old,
            new = ?rec.new,
            result = %rec.result,
            reason = rec.reason.as_deref().unwrap_or(""),
            "audit"
        );
        if let Some(file) = lock(&self.inner.file).as_ref() {
            let sent = serde_json::to_string(&rec)
                .ok()
                .is_some_and(|line| file.try_send(line).is_ok());
            if !sent {
                self.inner.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("audit line not written to the file (writer busy or gone)");
            }
        }
        {
            let mut tail = lock(&self.inner.tail);
            if tail.len() == AUDIT_TAIL {
                tail.pop_front();
            }
            tail.push_back(rec.clone());
        }
        // No subscriber is not an error.
        let _ = self.inner.tx.send(rec);
    }

    /// The last `n` records, oldest first.
    #[must_use]
    pub fn tail(&self, n: usize) -> Vec<AuditRecord> {
        let tail = lock(&self.inner.tail);
        tail.iter()
            .skip(tail.len().saturating_sub(n))
            .cloned()
            .collect()
    }

    /// Every record from now on (a slow subscriber misses records, told by `Lagged`).
    #[must_use]
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<AuditRecord> {
        self.inner.tx.subscribe()
    }

    /// Write what is queued for the file and stop writing to it (shutdown): records after this
    /// are kept in memory only. Blocks until the writer thread has finished.
    pub fn close(&self) {
        drop(lock(&self.inner.file).take());
        if let Some(writer) = lock(&self.inner.writer).take()
            && writer.join().is_err()
        {
            tracing::error!("audit log: the writer thread failed");
        }
        if let Some(path) = &self.inner.path {
            // No longer written: a fault it had is not the state directory's any more.
            crate::state_dir::forget(path);
        }
    }

    /// Lines that could not be handed to the file writer.
    #[must_use]
    pub fn dropped_lines(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The last [`AUDIT_TAIL`] records of an audit file (unreadable lines skipped).
fn read_tail(path: &Path) -> VecDeque<AuditRecord> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return VecDeque::new();
    };
    let mut tail = VecDeque::with_capacity(AUDIT_TAIL);
    for line in text.lines() {
        if let Ok(rec) = serde_json::from_str::<AuditRecord>(line) {
            if tail.len() == AUDIT_TAIL {
                tail.pop_front();
            }
            tail.push_back(rec);
        }
    }
    tail
}

/// The writer thread: appends each line, flushed and synced.
fn spawn_writer(
    path: PathBuf,
) -> Option<(
    std::sync::mpsc::SyncSender<String>,
    std::thread::JoinHandle<()>,
)> {
    if let Some(dir) = path.parent()
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        crate::state_dir::failed(
            WRITER,
            &path,
            &format!("cannot create the state directory: {e}"),
        );
    }
    let (tx, rx) = std::sync::mpsc::sync_channel::<String>(WRITER_QUEUE);
    let spawned = std::thread::Builder::new()
        .name("audit-writer".into())
        .spawn(move || {
            for line in rx {
                let written = append_line(&path, &line);
                crate::state_dir::report(WRITER, &path, &written);
            }
        });
    match spawned {
        Ok(handle) => Some((tx, handle)),
        Err(e) => {
            tracing::error!(error = %e, "audit log: cannot start the writer thread");
            None
        }
    }
}

/// The audit log's name in alarm 702 and the log.
const WRITER: &str = "audit log";

/// Append `line` and a newline to `path`, synced. A line cut short before (a full disk) is
/// ended first, so the records around it stay readable.
fn append_line(path: &Path, line: &str) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt as _;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)?;
    let len = f.metadata()?.len();
    let mut last = [b'\n'];
    if len > 0 {
        f.read_exact_at(&mut last, len - 1)?;
    }
    let mut bytes = Vec::with_capacity(line.len() + 2);
    if last[0] != b'\n' {
        bytes.push(b'\n');
    }
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    f.write_all(&bytes)?;
    f.sync_data()
}

/// A unix time (seconds) as RFC 3339 UTC with milliseconds, e.g. `2026-11-29T23:41:05.123Z`.
#[must_use]
pub fn rfc3339_utc(unix_s: f64) -> String {
    let ms_total = if unix_s.is_finite() {
        (unix_s * 1000.0).round() as i64
    } else {
        0
    };
    let ms = ms_total.rem_euclid(1000);
    let secs = ms_total.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// civil-from-days algorithm, written out here).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Wall time now, unix seconds.
#[must_use]
pub fn wall_unix_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339_utc(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_utc(951_782_400.5), "2000-02-29T00:00:00.500Z");
        assert_eq!(rfc3339_utc(1_796_083_200.0), "2026-12-01T00:00:00.000Z");
        assert_eq!(rfc3339_utc(-1.0), "1969-12-31T23:59:59.000Z");
    }

    fn rec(what: &str) -> AuditRecord {
        AuditRecord {
            time_utc: rfc3339_utc(0.0),
            source: "web".into(),
            client: "127.0.0.1".into(),
            what: what.into(),
            old: Some(Value::from(1.0)),
            new: Some(Value::from(2.0)),
            result: "accepted".into(),
            reason: None,
        }
    }

    #[test]
    fn tail_is_bounded_and_survives_a_restart() {
        let scratch = crate::state_dir::scratch::Scratch::new(&format!(
            "heatctl-audit-{}",
            std::process::id()
        ));
        let dir = scratch.to_path_buf();
        let audit = Audit::open(Some(&dir));
        let mut sub = audit.subscribe();
        for i in 0..(AUDIT_TAIL + 5) {
            audit.record(rec(&format!("s{i}")));
        }
        assert_eq!(sub.try_recv().map(|r| r.what).ok().as_deref(), Some("s0"));
        let tail = audit.tail(usize::MAX);
        assert_eq!(tail.len(), AUDIT_TAIL);
        assert_eq!(tail[0].what, "s5");
        assert_eq!(audit.tail(2)[1].what, format!("s{}", AUDIT_TAIL + 4));
        // Closing writes what is queued.
        audit.close();
        let path = dir.join(AUDIT_FILE);
        let lines = std::fs::read_to_string(&path).map_or(0, |t| t.lines().count());
        assert_eq!(lines, AUDIT_TAIL + 5);
        let again = Audit::open(Some(&dir));
        assert_eq!(again.tail(usize::MAX), tail);
    }
}
