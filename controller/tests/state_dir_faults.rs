//! The state directory's writers besides the state file (the platform queue, the audit log,
//! the room history recorder) on a full disk: this test process's file-size limit
//! (RLIMIT_FSIZE, soft) is lowered with `prlimit --pid` (util-linux) below the files' sizes, so
//! every write that would grow them fails as on a full disk (EFBIG instead of ENOSPC; no
//! privilege, no mount). Each failing writer is reported to `heatctl::state_dir` (the gate of
//! alarm 702, whose text names it), what was written before stays readable, nothing blocks or
//! panics, and each writer resumes and clears its fault once the limit is raised again: the
//! queue's existing and new records all readable after a reopen, the audit log's lines whole,
//! the history hour refused by the disk written later rather than lost.
//!
//! The limit applies to the whole process, so this binary holds this one test. Needs
//! `prlimit`: under CI a missing tool fails the test. (The closed-loop test in
//! `hil-tests/tests/closed_loop/state_dir.rs` shows alarm 702 itself, raised and cleared by
//! heatctl's cycle.)

#![allow(clippy::unwrap_used)]

#[path = "peers/support.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use heatctl::audit::{Audit, AuditRecord};
use heatctl::platform_queue::{DiskQueue, NewRecord, QueueOptions};
use heatctl::station::StationSnapshot;

/// Set this process's soft file-size limit (`"unlimited"` or bytes).
fn set_fsize(soft: &str) {
    let st = Command::new("prlimit")
        .args([
            "--pid",
            &std::process::id().to_string(),
            &format!("--fsize={soft}:unlimited"),
        ])
        .status()
        .expect("prlimit runs");
    assert!(st.success(), "prlimit --fsize={soft}: {st}");
}

fn prlimit_found() -> bool {
    Command::new("prlimit")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn record(n: u32) -> NewRecord {
    NewRecord {
        topic: "heat/s1/st1/telemetry".into(),
        payload: format!("{{\"n\":{n},\"pad\":\"{}\"}}", "x".repeat(200)).into_bytes(),
        retain: false,
    }
}

fn audit_record(what: &str) -> AuditRecord {
    AuditRecord {
        time_utc: heatctl::audit::rfc3339_utc(1.8e9),
        source: "web".into(),
        client: "127.0.0.1".into(),
        what: what.into(),
        old: Some(1.0.into()),
        new: Some(2.0.into()),
        result: "accepted".into(),
        reason: None,
    }
}

/// The alarm-702 text for `dir`, waiting up to 10 s for `pred` to hold on it.
async fn fault_text(dir: &Path, pred: impl Fn(Option<&str>) -> bool) -> Option<String> {
    support::wait_until(Duration::from_secs(10), || {
        let text = heatctl::state_dir::describe(Some(dir), None);
        pred(text.as_deref()).then_some(text)
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "state-directory faults never as expected: {:?}",
            heatctl::state_dir::describe(Some(dir), None)
        )
    })
}

fn has(text: Option<&str>, writer: &str) -> bool {
    text.is_some_and(|t| t.contains(writer))
}

/// The audit file's lines, each a whole record.
fn audit_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for l in &lines {
        serde_json::from_str::<AuditRecord>(l).expect("every audit line whole");
    }
    lines
}

/// A snapshot at clock time `t`.
fn snapshot_at(t: f64) -> Option<Arc<StationSnapshot>> {
    let mut s = StationSnapshot::default();
    s.clock.clock_unix_s = t;
    Some(Arc::new(s))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_on_a_full_disk_raise_702_keep_what_was_written_and_resume() {
    if !support::require("prlimit (util-linux)", prlimit_found()) {
        return;
    }
    // Past the limit a write fails with EFBIG instead of killing the process.
    let _sigxfsz = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(25))
        .expect("SIGXFSZ handled");
    let scratch = support::Scratch::new(&format!("heatctl-state-faults-{}", std::process::id()));
    let dir = scratch.to_path_buf();
    let queue_dir = dir.join("platform-queue");
    let history = heatctl::balance::recorder::history_dir(&dir);

    // Before: every writer writes.
    let opts = QueueOptions {
        max_bytes: 1 << 20,
        segment_bytes: 64 << 10,
        ..QueueOptions::default()
    };
    let (mut queue, _) = DiskQueue::open(&queue_dir, opts).unwrap();
    for n in 0..20 {
        queue.push(record(n)).unwrap();
    }
    let audit = Audit::open(Some(&dir));
    let audit_path = audit.path().unwrap().to_path_buf();
    audit.record(audit_record("curve_shift_k"));
    let (snap_tx, snap_rx) = tokio::sync::watch::channel(None);
    let (_cfg_tx, cfg_rx) = tokio::sync::watch::channel(Arc::new(
        heatctl::config::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/substation.example.toml"),
        )
        .unwrap()
        .config,
    ));
    let recorder = heatctl::balance::recorder::start(Some(&dir), snap_rx, cfg_rx).unwrap();
    // Hour h0, then the first minute of h0 + 1 h: hour h0 is finished and written.
    let h0 = 1_800_000_000.0 - 1_800_000_000.0 % 3600.0;
    snap_tx.send_replace(snapshot_at(h0));
    tokio::time::sleep(Duration::from_millis(100)).await;
    snap_tx.send_replace(snapshot_at(h0 + 3600.0));
    support::wait_until(Duration::from_secs(10), || {
        let read = heatctl::balance::record::read_history(&dir).ok()?;
        (read.hours.len() == 1).then_some(())
    })
    .await
    .expect("the first hour written");
    support::wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&audit_path)
            .ok()
            .filter(|t| t.lines().count() == 1)
    })
    .await
    .expect("the first audit line written");
    assert_eq!(heatctl::state_dir::describe(Some(&dir), None), None);

    // Full: no file may grow past 64 bytes (each is longer already).
    set_fsize("64");
    let refused = queue.push(record(20));
    assert!(refused.is_err(), "the push fails on the full disk");
    let text = fault_text(&dir, |t| has(t, "platform queue")).await;
    assert!(text.unwrap().contains("platform-queue"), "the queue named");
    let pending = queue.pending(100);
    assert_eq!(pending.len(), 20, "the records before stay readable");
    assert!(
        pending
            .iter()
            .zip(0..)
            .all(|(r, n)| r.payload == record(n).payload)
    );

    audit.record(audit_record("room_target_c"));
    let text = fault_text(&dir, |t| has(t, "audit log")).await;
    assert!(
        text.unwrap().contains("audit.jsonl"),
        "the audit file named"
    );
    assert_eq!(audit.tail(10).len(), 2, "the refused record kept in memory");

    // Hour h0 + 1 h ends on the full disk (the recorder writes at most once a real second).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    snap_tx.send_replace(snapshot_at(h0 + 7200.0));
    let text = fault_text(&dir, |t| has(t, "room history")).await;
    assert!(text.unwrap().contains("rooms-"), "the history file named");

    // Room again: each writer resumes, and its fault clears with its next write.
    set_fsize("unlimited");
    queue.push(record(21)).unwrap();
    audit.record(audit_record("operating_mode"));
    // The recorder tries again at the next clock minute (at most once a real second).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    snap_tx.send_replace(snapshot_at(h0 + 7260.0));
    fault_text(&dir, |t| t.is_none()).await;

    // What was written before is whole, and nothing was lost but the refused push.
    drop(queue);
    let (mut queue, report) = DiskQueue::open(&queue_dir, opts).unwrap();
    assert_eq!(report.torn_records_skipped, 0, "{:?}", report.problems);
    let all = queue.pending(100);
    assert_eq!(all.len(), 21);
    assert_eq!(all[20].payload, record(21).payload);
    audit.close();
    let lines = audit_lines(&audit_path);
    assert!(
        lines.len() >= 2 && lines[0].contains("curve_shift_k"),
        "the line before kept, the one after written: {lines:?}"
    );
    assert!(lines.last().unwrap().contains("operating_mode"));
    let read = heatctl::balance::record::read_history(&history).unwrap();
    let hours: Vec<i64> = read.hours.iter().map(|h| h.hour_unix_s).collect();
    let h0 = h0 as i64;
    assert_eq!(
        hours,
        [h0, h0 + 3600],
        "the hour refused by the full disk written once it had room"
    );
    assert_eq!(read.garbled_lines, 0);
    recorder.stop().await;
}
