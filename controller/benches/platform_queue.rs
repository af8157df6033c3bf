//! The platform link's on-disk queue: push throughput per fsync policy against a bare
//! append+fsync loop of the same bytes (the ratio is the queue's own cost), draining
//! (pending + ack) throughput, bytes on disk per typical 1.5 KB telemetry message, open time
//! and resident memory with a full queue. Prints tables; asserts nothing.
//!
//!     cargo bench -p heatctl --bench platform_queue [-- SECONDS_PER_CASE]
//!
//! Files go to cargo's target tmp dir (a real disk, not tmpfs, so fsync costs what it costs).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use heatctl::platform_queue::{DiskQueue, FsyncPolicy, NewRecord, QueueOptions};

const TOPIC: &str = "heat/site-0001/station-0042/telemetry";

/// A telemetry-like JSON payload of about 1.5 KB.
fn telemetry(seq: u64) -> Vec<u8> {
    let mut s = format!(
        "{{\"schema\":\"heatctl.telemetry/1\",\"time_utc\":\"2026-11-29T23:40:00Z\",\"clock_synced\":true,\"seq\":{seq}"
    );
    let mut i = 0;
    while s.len() < 1480 {
        s.push_str(&format!(
            ",\"signal_{i:02}\":{{\"value_c\":{:.2},\"valid\":true,\"age_s\":{}}}",
            40.0 + (seq as f64 * 0.37 + i as f64).sin() * 20.0,
            i % 7
        ));
        i += 1;
    }
    s.push('}');
    s.into_bytes()
}

fn fresh(dir: &Path) -> PathBuf {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).unwrap();
    dir.to_path_buf()
}

fn rss_kib() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn policy_name(p: FsyncPolicy) -> String {
    match p {
        FsyncPolicy::Every(n) => format!("Every({n})"),
        FsyncPolicy::Interval(d) => format!("Interval({} ms)", d.as_millis()),
        FsyncPolicy::Never => "Never".into(),
    }
}

/// Pushes for about `budget` (at most `max_n` records); returns (records, seconds).
fn push_queue(dir: &Path, policy: FsyncPolicy, budget: Duration, max_n: u64) -> (u64, f64) {
    let opts = QueueOptions {
        max_bytes: 1 << 30,
        segment_bytes: 1 << 20,
        fsync: policy,
    };
    let payloads: Vec<Vec<u8>> = (0..64).map(telemetry).collect();
    let (mut q, _) = DiskQueue::open(&fresh(dir), opts).unwrap();
    let start = Instant::now();
    let mut n = 0;
    while n < max_n && start.elapsed() < budget {
        q.push(NewRecord {
            topic: TOPIC.into(),
            payload: payloads[(n % 64) as usize].clone(),
            retain: false,
        })
        .unwrap();
        n += 1;
    }
    q.sync().unwrap();
    (n, start.elapsed().as_secs_f64())
}

/// The same bytes appended with one write each and the same fsync rule, no queue.
fn push_bare(dir: &Path, policy: FsyncPolicy, budget: Duration, max_n: u64) -> (u64, f64) {
    let dir = fresh(dir);
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("bare.log"))
        .unwrap();
    let records: Vec<Vec<u8>> = (0..64)
        .map(|i| {
            let mut r = vec![0u8; 27];
            r.extend_from_slice(TOPIC.as_bytes());
            r.extend_from_slice(&telemetry(i));
            r
        })
        .collect();
    let start = Instant::now();
    let mut last_sync = Instant::now();
    let mut n = 0u64;
    while n < max_n && start.elapsed() < budget {
        file.write_all(&records[(n % 64) as usize]).unwrap();
        n += 1;
        let due = match policy {
            FsyncPolicy::Every(k) => n.is_multiple_of(u64::from(k.max(1))),
            FsyncPolicy::Interval(d) => last_sync.elapsed() >= d,
            FsyncPolicy::Never => false,
        };
        if due {
            file.sync_data().unwrap();
            last_sync = Instant::now();
        }
    }
    file.sync_data().unwrap();
    (n, start.elapsed().as_secs_f64())
}

fn main() {
    let secs: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2.0);
    let budget = Duration::from_secs_f64(secs);
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("platform-queue-bench");
    let payload_len = telemetry(0).len();
    println!(
        "platform queue bench: {payload_len}-byte payload on a {}-byte topic, {secs} s per case, dir {}",
        TOPIC.len(),
        base.display()
    );

    // First, in a heap nothing has grown yet: bytes on disk, open time, memory and drain
    // throughput with a full queue (default cap).
    let dir = fresh(&base.join("full"));
    let opts = QueueOptions {
        fsync: FsyncPolicy::Never,
        ..QueueOptions::default()
    };
    let rss_before = rss_kib();
    let (mut q, _) = DiskQueue::open(&dir, opts).unwrap();
    let payloads: Vec<Vec<u8>> = (0..64).map(telemetry).collect();
    let mut pushed = 0u64;
    while q.stats().dropped_total == 0 {
        q.push(NewRecord {
            topic: TOPIC.into(),
            payload: payloads[(pushed % 64) as usize].clone(),
            retain: false,
        })
        .unwrap();
        pushed += 1;
    }
    q.sync().unwrap();
    let stats = q.stats();
    let on_disk: u64 = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    let rss_full = rss_kib();
    drop(q);
    let t = Instant::now();
    let (mut q, report) = DiskQueue::open(&dir, opts).unwrap();
    let open_s = t.elapsed().as_secs_f64();
    let rss_reopened = rss_kib();

    println!();
    println!(
        "full queue: cap {} MiB in {} MiB segments",
        opts.max_bytes >> 20,
        opts.segment_bytes >> 20
    );
    println!("{:<44} {:>14}", "figure", "value");
    println!("{:<44} {:>14}", "records held at the cap", stats.records);
    println!("{:<44} {:>14}", "segments", stats.segments);
    println!(
        "{:<44} {:>14.1}",
        "bytes on disk per message (all files)",
        on_disk as f64 / stats.records as f64
    );
    println!(
        "{:<44} {:>14}",
        "payload + topic bytes per message",
        payload_len + TOPIC.len()
    );
    println!(
        "{:<44} {:>14.3}",
        "open (scan + CRC check) of the full queue, s", open_s
    );
    println!("{:<44} {:>14}", "records found at open", report.records);
    println!(
        "{:<44} {:>14}",
        "RSS added, full queue while filling, KiB",
        rss_full.saturating_sub(rss_before)
    );
    println!(
        "{:<44} {:>14}",
        "RSS added, full queue after reopen, KiB",
        rss_reopened.saturating_sub(rss_before)
    );

    // Drain as the sender does: a window of pending records, then their acks.
    let t = Instant::now();
    let mut drained = 0u64;
    loop {
        let batch = q.pending(64);
        if batch.is_empty() {
            break;
        }
        for r in batch {
            q.ack(r.id).unwrap();
            drained += 1;
        }
    }
    q.sync().unwrap();
    let drain_s = t.elapsed().as_secs_f64();
    println!(
        "{:<44} {:>14.0}",
        "drain (pending(64) + ack, fsync Never), msg/s",
        drained as f64 / drain_s
    );
    drop(q);

    println!();
    println!("push (write + fsync policy), queue vs bare append of the same bytes");
    println!(
        "{:<18} {:>12} {:>10} {:>12} {:>10} {:>8}",
        "policy", "queue msg/s", "MB/s", "bare msg/s", "MB/s", "ratio"
    );
    let max_n = 200_000;
    for policy in [
        FsyncPolicy::Every(1),
        FsyncPolicy::Every(16),
        FsyncPolicy::Interval(Duration::from_secs(1)),
        FsyncPolicy::Never,
    ] {
        let (qn, qs) = push_queue(&base.join("queue"), policy, budget, max_n);
        let (bn, bs) = push_bare(&base.join("bare"), policy, budget, max_n);
        let (qr, br) = (qn as f64 / qs, bn as f64 / bs);
        let mb = |r: f64| r * (payload_len + TOPIC.len() + 27) as f64 / 1e6;
        println!(
            "{:<18} {:>12.0} {:>10.1} {:>12.0} {:>10.1} {:>8.2}",
            policy_name(policy),
            qr,
            mb(qr),
            br,
            mb(br),
            qr / br
        );
    }

    let _ = fs::remove_dir_all(&base);
}
