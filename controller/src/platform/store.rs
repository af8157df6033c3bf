//! The queue's owner thread: every outgoing message is numbered (`seq` per topic), marked
//! (`backfill`), appended to the [`DiskQueue`], read back for sending and acknowledged here,
//! off the async runtime (the queue is blocking file I/O).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::{Notify, oneshot, watch};

use super::queue::{DiskQueue, NewRecord, QueueOptions, Record};
use crate::audit::wall_unix_s;

/// The file keeping the last `seq` of every topic, next to the queue's directory.
pub(crate) const SEQ_FILE: &str = "seq.json";

/// A message to enqueue: its body without `seq` (added here) and `backfill` (added here
/// when absent).
#[derive(Debug)]
pub(crate) struct Outgoing {
    /// Topic below the station's base topic ("telemetry", "cmd/curve_shift_k/ack").
    pub(crate) suffix: String,
    /// Full topic.
    pub(crate) topic: String,
    /// The JSON object.
    pub(crate) body: Map<String, Value>,
    /// Publish retained.
    pub(crate) retain: bool,
}

enum Cmd {
    Push(Outgoing),
    Pending {
        from: u64,
        max: usize,
        reply: oneshot::Sender<Vec<Record>>,
    },
    Ack(u64),
    Stop(oneshot::Sender<()>),
}

/// What the queue holds, for the link state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StoreStats {
    /// Records not yet acknowledged.
    pub(crate) backlog_records: u64,
    /// Records dropped because the queue was full (since the queue was created).
    pub(crate) dropped_records: u64,
}

/// The handle of the queue's thread (cheap to clone).
#[derive(Debug, Clone)]
pub(crate) struct Store {
    tx: mpsc::Sender<Cmd>,
    /// Signalled after every push.
    pub(crate) pushed: Arc<Notify>,
    /// The queue's counters.
    pub(crate) stats: watch::Receiver<StoreStats>,
    /// Whether the link is connected now (a message queued while not is backfill).
    pub(crate) connected: Arc<AtomicBool>,
}

impl Store {
    /// Open the queue in `dir` and start its thread.
    pub(crate) fn open(
        dir: &Path,
        opts: QueueOptions,
        backfill_after_s: f64,
        base_topic: &str,
    ) -> std::io::Result<Self> {
        let (queue, report) = DiskQueue::open(dir, opts)?;
        for p in &report.problems {
            tracing::warn!(queue = %dir.display(), "platform queue: {p}");
        }
        if report.records > 0 {
            tracing::info!(
                records = report.records,
                "platform queue: {} messages from before are waiting to be sent",
                report.records
            );
        }
        let (tx, rx) = mpsc::channel();
        let s0 = stats_of(&queue);
        let (stats_tx, stats) = watch::channel(s0);
        let pushed = Arc::new(Notify::new());
        let connected = Arc::new(AtomicBool::new(false));
        let seq_path = dir.join(SEQ_FILE);
        let mut worker = Worker {
            first_id: report.next_id,
            seqs: BTreeMap::new(),
            seq_path,
            queue,
            stats_tx,
            pushed: pushed.clone(),
            connected: connected.clone(),
            backfill_after_s,
            base: format!("{base_topic}/"),
        };
        worker.load_seqs();
        std::thread::Builder::new()
            .name("platform-queue".into())
            .spawn(move || worker.run(rx))?;
        Ok(Self {
            tx,
            pushed,
            stats,
            connected,
        })
    }

    /// Whether `other` is a handle of the same queue thread.
    pub(crate) fn same(&self, other: &Store) -> bool {
        Arc::ptr_eq(&self.pushed, &other.pushed)
    }

    /// Enqueue a message (never blocks).
    pub(crate) fn push(&self, out: Outgoing) {
        let _ = self.tx.send(Cmd::Push(out));
    }

    /// Up to `max` waiting records with ids from `from` on, oldest first.
    pub(crate) async fn pending(&self, from: u64, max: usize) -> Vec<Record> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Cmd::Pending { from, max, reply }).is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// The broker acknowledged record `id`.
    pub(crate) fn ack(&self, id: u64) {
        let _ = self.tx.send(Cmd::Ack(id));
    }

    /// fsync everything and stop the thread.
    pub(crate) async fn stop(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Cmd::Stop(reply)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
        }
    }
}

fn stats_of(q: &DiskQueue) -> StoreStats {
    let s = q.stats();
    StoreStats {
        backlog_records: s.records as u64,
        dropped_records: s.dropped_total,
    }
}

struct Worker {
    /// The first id pushed by this run: anything older is from before a restart (backfill).
    first_id: u64,
    seqs: BTreeMap<String, u64>,
    seq_path: PathBuf,
    queue: DiskQueue,
    stats_tx: watch::Sender<StoreStats>,
    pushed: Arc<Notify>,
    connected: Arc<AtomicBool>,
    backfill_after_s: f64,
    /// The station's base topic with a trailing '/'.
    base: String,
}

impl Worker {
    /// The last seq of every topic: the file, raised to what the waiting records carry (the
    /// file is written before each push, but may be older after a power cut).
    fn load_seqs(&mut self) {
        if let Ok(text) = std::fs::read_to_string(&self.seq_path)
            && let Ok(map) = serde_json::from_str::<BTreeMap<String, u64>>(&text)
        {
            self.seqs = map;
        }
        let mut from = 0;
        loop {
            let recs = self.queue.pending_from(from, 512);
            let Some(last) = recs.last() else { break };
            from = last.id + 1;
            for r in &recs {
                let Ok(v) = serde_json::from_slice::<Value>(&r.payload) else {
                    continue;
                };
                let (Some(seq), Some(suffix)) = (
                    v.get("seq").and_then(Value::as_u64),
                    r.topic.strip_prefix(self.base.as_str()),
                ) else {
                    continue;
                };
                let e = self.seqs.entry(suffix.to_owned()).or_insert(0);
                *e = (*e).max(seq);
            }
        }
    }

    fn save_seqs(&self) {
        let tmp = self.seq_path.with_extension("json.tmp");
        let text = serde_json::to_string(&self.seqs).unwrap_or_default();
        if let Err(e) =
            std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &self.seq_path))
        {
            tracing::warn!("platform queue: cannot keep the sequence numbers: {e}");
        }
    }

    fn run(mut self, rx: mpsc::Receiver<Cmd>) {
        loop {
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(Cmd::Push(out)) => self.push(out),
                Ok(Cmd::Pending { from, max, reply }) => {
                    let recs = self.pending(from, max);
                    let _ = reply.send(recs);
                }
                Ok(Cmd::Ack(id)) => {
                    if let Err(e) = self.queue.ack(id) {
                        tracing::warn!("platform queue: {e}");
                    }
                }
                Ok(Cmd::Stop(reply)) => {
                    if let Err(e) = self.queue.sync() {
                        tracing::warn!("platform queue: final sync failed: {e}");
                    }
                    let _ = reply.send(());
                    return;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = self.queue.sync();
                    return;
                }
            }
            if let Err(e) = self.queue.tick() {
                tracing::warn!("platform queue: {e}");
            }
            let s = stats_of(&self.queue);
            self.stats_tx.send_if_modified(|old| {
                let changed = *old != s;
                *old = s;
                changed
            });
        }
    }

    fn push(&mut self, out: Outgoing) {
        let Outgoing {
            suffix,
            topic,
            mut body,
            retain,
        } = out;
        let seq = self.seqs.get(&suffix).copied().unwrap_or(0) + 1;
        self.seqs.insert(suffix.clone(), seq);
        // Kept before the push: after a crash a number may be skipped, never given twice.
        self.save_seqs();
        body.insert("seq".into(), Value::from(seq));
        if !body.contains_key("backfill") {
            body.insert(
                "backfill".into(),
                Value::Bool(!self.connected.load(Ordering::Relaxed)),
            );
        }
        let payload = match serde_json::to_vec(&Value::Object(body)) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("platform: cannot encode a message for {topic}: {e}");
                return;
            }
        };
        match self.queue.push(NewRecord {
            topic,
            payload,
            retain,
        }) {
            Ok(_) => self.pushed.notify_one(),
            Err(e) => tracing::warn!("platform queue: message not queued: {e}"),
        }
    }

    /// Waiting records; one from before this run, or older than `backfill_after_s`, gets
    /// `"backfill": true`.
    fn pending(&mut self, from: u64, max: usize) -> Vec<Record> {
        let now = wall_unix_s();
        let mut recs = self.queue.pending_from(from, max);
        for r in &mut recs {
            let old = r.id < self.first_id || now - r.enqueued_unix_s > self.backfill_after_s;
            if !old {
                continue;
            }
            let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&r.payload) else {
                continue;
            };
            if body.get("backfill") == Some(&Value::Bool(true)) {
                continue;
            }
            body.insert("backfill".into(), Value::Bool(true));
            if let Ok(p) = serde_json::to_vec(&Value::Object(body)) {
                r.payload = p;
            }
        }
        recs
    }
}
