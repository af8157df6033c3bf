//! The platform link against a local Mosquitto, in one run, side by side (no asserts: a table).
//!
//! (a) Throughput to the broker at QoS 1 (a message counts at its PUBACK): heatctl's platform
//!     link (every message through the queue on disk, then the MQTT client) draining a backlog
//!     that was queued while the broker was down, against a bare rumqttc publish loop and
//!     `mosquitto_pub -l` (one message per stdin line), with payloads of the same size. Also
//!     the queue's bytes on disk per message and heatctl's added RSS with a full queue.
//! (b) Control-cycle timing of the real runtime against the simulated plant (in this process,
//!     accelerated clock), with the platform link off, with the broker up, down (nothing
//!     listening) and blackholed (a listener that accepts and never answers): the wall-time
//!     period between snapshots, median / p99 / max.
//!
//!     cargo bench -p heatctl --bench platform_mqtt [-- SECONDS_PER_CONDITION]
//!
//! Needs `mosquitto` and `mosquitto_pub` (Debian: mosquitto, mosquitto-clients).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use heatctl::audit::Audit;
use heatctl::config;
use heatctl::control::{Sample, Signal};
use heatctl::faces::FaceContext;
use heatctl::gate::{Access, Gate};
use heatctl::runtime::{self, Embedding, RunOptions, ScaledClock};
use heatctl::station::{Measurement, StationSnapshot};
use heatctl_plant::demo as demo_plant;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::watch;

/// Queue cap of the full-queue phase, MB.
const QUEUE_CAP_MB: f64 = 16.0;
/// Accelerated clock of the jitter phase: controller seconds per wall second (a cycle every
/// 1/SPEED s of wall time).
const SPEED: f64 = 20.0;
/// Rounds of the throughput part.
const ROUNDS: usize = 3;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|it| {
            it.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "heatctl-bench-{name}-{}-{}",
        std::process::id(),
        free_port()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

struct Broker {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Broker {
    fn start(port: u16) -> Self {
        let dir = temp_dir("broker");
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n"
            ),
        )
        .unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto (Debian package mosquitto) must be installed");
        let end = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < end, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port, dir }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn platform_cfg(port: u16, station: &str) -> config::Platform {
    config::Platform {
        enabled: true,
        brokers: vec![format!("mqtt://127.0.0.1:{port}")],
        site_id: "bench".into(),
        station_id: station.into(),
        client_id: format!("bench-{station}"),
        telemetry_period_s: 1.0,
        reconnect_min_s: 0.1,
        reconnect_max_s: 0.5,
        ..config::Platform::default()
    }
}

fn example_config() -> config::Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/substation.example.toml");
    config::load(&path).unwrap().config
}

fn snapshot(i: usize) -> StationSnapshot {
    let mut s = StationSnapshot::default();
    s.measurements[Signal::TOut.index()] =
        Measurement::of(Signal::TOut, Some(Sample::fresh(-12.0 + (i % 10) as f64)));
    s.measurements[Signal::T2Supply.index()] =
        Measurement::of(Signal::T2Supply, Some(Sample::fresh(60.0)));
    s.explanation.setpoint_c = Some(61.0);
    s.rooms.stats.percentile_c = Some(19.0);
    s.rooms.at_or_above_floor_pct = Some(95.0);
    s
}

struct Throughput {
    messages: u64,
    seconds: f64,
}

impl Throughput {
    fn rate(&self) -> f64 {
        self.messages as f64 / self.seconds
    }
}

struct QueueFigures {
    drain: Throughput,
    enqueue: Throughput,
    bytes_per_message: f64,
    payload_bytes: usize,
    rss_added_kib: i64,
    backlog: u64,
    dropped: u64,
}

/// heatctl's link: fill the queue to its cap with the broker down, then start the broker and
/// time the drain (every record published at QoS 1 and removed at its PUBACK).
async fn heatctl_queue(port: u16) -> QueueFigures {
    let base = example_config();
    let mut cfg = base.clone();
    cfg.platform = platform_cfg(port, "queue");
    cfg.platform.queue_max_mb = QUEUE_CAP_MB;
    let state_dir = temp_dir("queue");
    let (tx, rx) = watch::channel(None);
    let audit = Audit::in_memory();
    let (gate, _gate_rx) = Gate::new(Access::of(&cfg), audit.clone());
    let ctx = FaceContext {
        snapshots: rx,
        gate,
        audit,
        state_dir: Some(state_dir.clone()),
        config: Arc::new(cfg.clone()),
        configs: tokio::sync::watch::channel(Arc::new(cfg.clone())).1,
    };
    let rss0 = rss_kib();
    let link = heatctl::platform::start(&cfg.platform, ctx).expect("link");
    // One telemetry message per snapshot (one controller second each); wait for each to be
    // queued, so the watch channel never merges two.
    let t0 = Instant::now();
    let mut pushed = 0u64;
    let mut clock = 1_800_000_000.0;
    let start_backlog = link.state().backlog_records;
    loop {
        clock += 1.0;
        let mut s = snapshot(pushed as usize);
        s.clock.clock_unix_s = clock;
        tx.send(Some(Arc::new(s))).unwrap();
        pushed += 1;
        let want = start_backlog + pushed;
        let end = Instant::now() + Duration::from_secs(2);
        loop {
            let st = link.state();
            if st.backlog_records + st.dropped_records >= want || Instant::now() > end {
                break;
            }
            tokio::task::yield_now().await;
        }
        if link.state().dropped_records > 0 && pushed > 1000 {
            break;
        }
        if pushed > 200_000 {
            break;
        }
    }
    let enqueue = Throughput {
        messages: pushed,
        seconds: t0.elapsed().as_secs_f64(),
    };
    tokio::time::sleep(Duration::from_millis(1500)).await; // the queue's timed fsync
    let st = link.state();
    let qdir = state_dir.join("platform-queue");
    let bytes = dir_bytes(&qdir);
    let rss_added_kib = rss_kib() as i64 - rss0 as i64;
    let bytes_per_message = bytes as f64 / st.backlog_records.max(1) as f64;
    let topic_len = "heatctl/bench/queue/telemetry".len();
    let payload_bytes = (bytes_per_message as usize).saturating_sub(27 + topic_len);

    let broker = Broker::start(port);
    // Timed from the link's connection (its reconnection back-off is not throughput).
    let wait = Instant::now();
    while !link.state().connected {
        assert!(wait.elapsed() < Duration::from_secs(30), "no connection");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let t1 = Instant::now();
    let backlog = link.state().backlog_records;
    loop {
        if link.state().backlog_records == 0 {
            break;
        }
        assert!(t1.elapsed() < Duration::from_secs(300), "drain stuck");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let drain = Throughput {
        messages: backlog,
        seconds: t1.elapsed().as_secs_f64(),
    };
    link.stop().await;
    drop(broker);
    let _ = std::fs::remove_dir_all(&state_dir);
    QueueFigures {
        drain,
        enqueue,
        bytes_per_message,
        payload_bytes,
        rss_added_kib,
        backlog,
        dropped: st.dropped_records,
    }
}

/// A bare rumqttc loop: `n` publishes at QoS 1, 32 in flight, timed to the last PUBACK.
async fn bare_rumqttc(port: u16, n: u64, payload: &[u8]) -> Throughput {
    let mut mo = MqttOptions::new("bench-bare", "127.0.0.1", port);
    mo.set_inflight(32);
    mo.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(mo, 64);
    let payload = payload.to_vec();
    let t0 = Instant::now();
    let publisher = tokio::spawn(async move {
        for _ in 0..n {
            client
                .publish(
                    "bench/bare/telemetry",
                    QoS::AtLeastOnce,
                    false,
                    payload.clone(),
                )
                .await
                .unwrap();
        }
        client
    });
    let mut acks = 0u64;
    while acks < n {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::PubAck(_))) => acks += 1,
            Ok(_) => {}
            Err(e) => panic!("bare rumqttc: {e}"),
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    let _ = publisher.await;
    Throughput {
        messages: n,
        seconds,
    }
}

/// `mosquitto_pub -l -q 1`: one message per stdin line.
fn mosquitto_pub(port: u16, n: u64, payload: &[u8]) -> Option<Throughput> {
    let mut child = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            "bench/mosquitto_pub/telemetry",
            "-q",
            "1",
            "-l",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut text = Vec::with_capacity((payload.len() + 1) * n as usize);
    for _ in 0..n {
        text.extend_from_slice(payload);
        text.push(b'\n');
    }
    let t0 = Instant::now();
    let mut stdin = child.stdin.take()?;
    stdin.write_all(&text).ok()?;
    drop(stdin);
    let status = child.wait().ok()?;
    status.success().then(|| Throughput {
        messages: n,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

// ---- (b) cycle timing ------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Condition {
    Off,
    Up,
    Down,
    Blackholed,
}

impl Condition {
    fn name(self) -> &'static str {
        match self {
            Condition::Off => "platform link off",
            Condition::Up => "broker up",
            Condition::Down => "broker down (refused)",
            Condition::Blackholed => "broker blackholed",
        }
    }
}

struct Timing {
    cycles: usize,
    median_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    late_pct: f64,
    link: String,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// The runtime against the simulated plant for `seconds` of wall time; the wall-time period
/// between consecutive snapshots.
async fn cycle_timing(cond: Condition, broker_port: u16, seconds: f64) -> Timing {
    let (server, mut loaded) = demo_plant::serve_demo_plant(SPEED).await.unwrap();
    if !matches!(cond, Condition::Off) {
        loaded.config.platform = platform_cfg(broker_port, "cycle");
    }
    let clock = Arc::new(ScaledClock::starting_at(
        demo_plant::demo_clock_start_unix_s(&server, loaded.config.site.utc_offset_h).unwrap(),
        SPEED,
    ));
    let state_dir = temp_dir("cycle");
    let (stop_tx, stop_rx) = watch::channel(false);
    let (snap_tx, mut snap_rx) = watch::channel(None);
    let opts = RunOptions {
        config_path: loaded.path.clone(),
        dry_run: false,
        clock,
        state_path: None,
        state_dir: Some(state_dir.clone()),
    };
    let controller = tokio::spawn(runtime::run_embedded(
        opts,
        Embedding {
            loaded,
            stop: stop_rx,
            snapshots: snap_tx,
        },
    ));
    // Skip the start-up (first poll round, the link's first connection).
    let warmup = Instant::now() + Duration::from_secs(2);
    let end = warmup + Duration::from_secs_f64(seconds);
    let mut walls: Vec<f64> = Vec::new();
    let mut last_link = String::new();
    while Instant::now() < end {
        if tokio::time::timeout(Duration::from_secs(1), snap_rx.changed())
            .await
            .is_ok_and(|r| r.is_err())
        {
            break;
        }
        let snap = snap_rx.borrow_and_update().clone();
        if let Some(s) = snap {
            if Instant::now() >= warmup {
                walls.push(s.clock.wall_unix_s);
            }
            last_link = s.platform.as_ref().map_or_else(
                || "-".into(),
                |p| {
                    format!(
                        "connected={} backlog={}{}",
                        p.connected,
                        p.backlog_records,
                        p.last_error
                            .as_deref()
                            .map(|e| format!(" ({})", e.chars().take(40).collect::<String>()))
                            .unwrap_or_default()
                    )
                },
            );
        }
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), controller).await;
    drop(server);
    let _ = std::fs::remove_dir_all(&state_dir);
    let mut periods: Vec<f64> = walls.windows(2).map(|w| (w[1] - w[0]) * 1000.0).collect();
    periods.sort_by(f64::total_cmp);
    let nominal_ms = 1000.0 / SPEED;
    Timing {
        cycles: periods.len(),
        median_ms: percentile(&periods, 0.5),
        p99_ms: percentile(&periods, 0.99),
        max_ms: periods.last().copied().unwrap_or(f64::NAN),
        late_pct: 100.0 * periods.iter().filter(|p| **p > 1.5 * nominal_ms).count() as f64
            / periods.len().max(1) as f64,
        link: last_link,
    }
}

/// A listener that accepts every connection and never reads or answers (no CONNACK).
fn blackhole() -> (
    u16,
    std::thread::JoinHandle<()>,
    Arc<std::sync::atomic::AtomicBool>,
) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    l.set_nonblocking(true).unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d = done.clone();
    let h = std::thread::spawn(move || {
        let mut held = Vec::new();
        while !d.load(std::sync::atomic::Ordering::Relaxed) {
            match l.accept() {
                Ok((s, _)) => held.push(s),
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    (port, h, done)
}

fn main() {
    let seconds: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20.0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!("# platform link benchmark (Mosquitto on loopback, QoS 1, one run)\n");
        // (a) throughput: ROUNDS rounds, each sender once per round (interleaved, so a busy
        // moment of the machine hits all three alike); the median round and the range.
        let mut rounds: Vec<(QueueFigures, Throughput, Option<Throughput>)> = Vec::new();
        let mut payload_len = 0;
        for _ in 0..ROUNDS {
            let q = heatctl_queue(free_port()).await;
            let payload: Vec<u8> = {
                // A JSON-like payload of the telemetry's size, one line (mosquitto_pub -l).
                let mut p = b"{\"schema\":\"heatctl.platform/1\",\"pad\":\"".to_vec();
                p.resize(q.payload_bytes.saturating_sub(2).max(p.len()), b'x');
                p.extend_from_slice(b"\"}");
                p
            };
            payload_len = payload.len();
            let broker = Broker::start(free_port());
            let n = q.backlog.max(1000);
            let bare = bare_rumqttc(broker.port, n, &payload).await;
            let mpub = mosquitto_pub(broker.port, n, &payload);
            drop(broker);
            rounds.push((q, bare, mpub));
        }
        let stats = |rates: Vec<f64>| {
            let mut r = rates;
            r.sort_by(f64::total_cmp);
            (r[r.len() / 2], r[0], r[r.len() - 1])
        };
        let (h, h_lo, h_hi) = stats(rounds.iter().map(|r| r.0.drain.rate()).collect());
        let (b, b_lo, b_hi) = stats(rounds.iter().map(|r| r.1.rate()).collect());
        let m = rounds
            .iter()
            .map(|r| r.2.as_ref().map(Throughput::rate))
            .collect::<Option<Vec<f64>>>()
            .map(stats);
        let n = rounds[0].0.backlog;
        println!(
            "## (a) throughput to the broker, {payload_len} B payloads, every message acknowledged (PUBACK), {ROUNDS} rounds of about {n} messages\n"
        );
        println!("| sender | messages/s (median) | range | heatctl / this |");
        println!("|---|---:|---:|---:|");
        println!(
            "| heatctl link: queue on disk + rumqttc (backlog drain) | {h:.0} | {h_lo:.0}..{h_hi:.0} | 1.00 |"
        );
        println!(
            "| bare rumqttc loop (32 in flight) | {b:.0} | {b_lo:.0}..{b_hi:.0} | {:.2} |",
            h / b
        );
        match m {
            Some((m, lo, hi)) => println!(
                "| mosquitto_pub -l -q 1 | {m:.0} | {lo:.0}..{hi:.0} | {:.2} |",
                h / m
            ),
            None => println!("| mosquitto_pub -l -q 1 | not installed | - | - |"),
        }
        let q = &rounds[rounds.len() / 2].0;
        println!();
        println!("| heatctl queue | value |");
        println!("|---|---:|");
        println!(
            "| enqueue, one snapshot at a time (snapshot -> telemetry JSON -> queue on disk), broker down | {:.0} messages/s |",
            q.enqueue.rate()
        );
        println!("| queue cap | {QUEUE_CAP_MB} MB |");
        println!(
            "| messages held at the cap | {} ({} dropped, oldest first) |",
            q.backlog, q.dropped
        );
        println!("| bytes on disk per message | {:.0} |", q.bytes_per_message);
        println!(
            "| added RSS with the queue full (VmRSS after - before; rounds in order, the first from a fresh process) | {} MiB |",
            rounds
                .iter()
                .map(|r| format!("{:.1}", r.0.rss_added_kib as f64 / 1024.0))
                .collect::<Vec<_>>()
                .join(" / ")
        );
        println!();

        // (b) cycle timing.
        println!(
            "## (b) control cycle with the platform link, {SPEED}x clock (nominal period {:.0} ms), {seconds} s per condition\n",
            1000.0 / SPEED
        );
        println!("| condition | cycles | median ms | p99 ms | max ms | > 1.5 x nominal | link at the end |");
        println!("|---|---:|---:|---:|---:|---:|---|");
        let up = Broker::start(free_port());
        let refused = free_port();
        let (hole, hole_thread, hole_done) = blackhole();
        for cond in [
            Condition::Off,
            Condition::Up,
            Condition::Down,
            Condition::Blackholed,
        ] {
            let port = match cond {
                Condition::Off | Condition::Up => up.port,
                Condition::Down => refused,
                Condition::Blackholed => hole,
            };
            let t = cycle_timing(cond, port, seconds).await;
            println!(
                "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} % | {} |",
                cond.name(),
                t.cycles,
                t.median_ms,
                t.p99_ms,
                t.max_ms,
                t.late_pct,
                t.link
            );
        }
        hole_done.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = hole_thread.join();
        drop(up);
    });
}
