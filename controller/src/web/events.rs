//! Live updates as server-sent events: `snapshot` (the station snapshot's JSON, at most every
//! [`EVENTS_MIN_GAP`], always the latest) and `audit` (each gate decision), with keep-alive
//! comments. One task encodes the snapshot for every client; each client's stream only reads
//! watch and broadcast channels, so a slow or stalled client misses intermediate snapshots and
//! holds up nothing else.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::{broadcast, watch};

use super::{EVENTS_MIN_GAP, KEEP_ALIVE};
use crate::audit::AuditRecord;
use crate::station::{SnapshotReceiver, StationSnapshot};

/// A snapshot and its JSON.
#[derive(Debug, Clone)]
pub(super) struct Encoded {
    snapshot: Arc<StationSnapshot>,
    json: Arc<str>,
}

/// The encoding task: the latest snapshot as JSON, at most every [`EVENTS_MIN_GAP`], while
/// any live client is connected (`clients`). Ends when the snapshots' sender is gone.
pub(super) async fn encode(
    mut snapshots: SnapshotReceiver,
    out: watch::Sender<Option<Encoded>>,
    clients: Arc<AtomicUsize>,
) {
    loop {
        if snapshots.changed().await.is_err() {
            return;
        }
        if clients.load(Ordering::Acquire) > 0 {
            let latest = snapshots.borrow_and_update().clone();
            if let Some(snapshot) = latest {
                match serde_json::to_string(&*snapshot) {
                    Ok(json) => {
                        out.send_replace(Some(Encoded {
                            snapshot,
                            json: Arc::from(json),
                        }));
                    }
                    Err(e) => tracing::warn!(error = %e, "web: snapshot not encoded"),
                }
            }
        }
        tokio::time::sleep(EVENTS_MIN_GAP).await;
    }
}

/// One live client's slot; freed when its stream is dropped.
pub(super) struct ClientSlot(Arc<AtomicUsize>);

impl ClientSlot {
    /// A slot, unless `max` clients are connected.
    pub(super) fn take(count: &Arc<AtomicUsize>, max: usize) -> Option<Self> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(Arc::clone(count)))
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

struct Client {
    first: Option<Event>,
    /// The snapshot last sent (not sent twice).
    sent: Option<Arc<StationSnapshot>>,
    encoded: watch::Receiver<Option<Encoded>>,
    audit: broadcast::Receiver<AuditRecord>,
    _slot: ClientSlot,
}

fn audit_event(rec: &AuditRecord) -> Option<Event> {
    serde_json::to_string(rec)
        .ok()
        .map(|json| Event::default().event("audit").data(json))
}

/// The event stream of one client: the current snapshot at once, then the encoder's.
pub(super) fn stream(
    current: Option<Arc<StationSnapshot>>,
    mut encoded: watch::Receiver<Option<Encoded>>,
    audit: broadcast::Receiver<AuditRecord>,
    slot: ClientSlot,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    encoded.mark_unchanged();
    let first = current.as_ref().and_then(|s| {
        serde_json::to_string(&**s)
            .ok()
            .map(|json| Event::default().event("snapshot").data(json))
    });
    let client = Client {
        first,
        sent: current,
        encoded,
        audit,
        _slot: slot,
    };
    let events = futures_util::stream::unfold(client, |mut c| async move {
        if let Some(e) = c.first.take() {
            return Some((Ok(e), c));
        }
        loop {
            tokio::select! {
                changed = c.encoded.changed() => {
                    changed.ok()?;
                    let latest = c.encoded.borrow_and_update().clone();
                    if let Some(enc) = latest
                        && !c.sent.as_ref().is_some_and(|s| Arc::ptr_eq(s, &enc.snapshot))
                    {
                        let e = Event::default().event("snapshot").data(&*enc.json);
                        c.sent = Some(enc.snapshot);
                        return Some((Ok(e), c));
                    }
                }
                rec = c.audit.recv() => match rec {
                    Ok(rec) => {
                        if let Some(e) = audit_event(&rec) {
                            return Some((Ok(e), c));
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::debug!(missed = n, "web: a live client missed audit records");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_and_freed() {
        let n = Arc::new(AtomicUsize::new(0));
        let a = ClientSlot::take(&n, 2);
        let b = ClientSlot::take(&n, 2);
        assert!(a.is_some() && b.is_some());
        assert!(ClientSlot::take(&n, 2).is_none());
        drop(a);
        assert!(ClientSlot::take(&n, 2).is_some());
        assert_eq!(n.load(Ordering::Acquire), 1);
    }
}
