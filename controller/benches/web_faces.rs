//! The web page's budgets, measured side by side and printed as a table (no assertions):
//!
//! 1. the page's weight (every asset, uncompressed) and the time to the first byte of `/` on
//!    loopback;
//! 2. the control cycle's timing (period median, p99, max, from the snapshots' `wall_unix_s`)
//!    with 0 and with 50 live (SSE) clients, phases alternated in one run, the real runtime
//!    against the simulated plant in this process;
//! 3. heatctl's resident memory (`heatctl demo`, a separate process) with the page off and on,
//!    after 48 h of simulated time (the trends ring buffer full).
//!
//! `cargo bench -p heatctl --bench web_faces` (needs `target/release/heatctl`: it is built by
//! the bench profile as `CARGO_BIN_EXE_heatctl`). Options through the environment:
//! `WEB_BENCH_PHASE_S` (wall seconds per phase, default 20), `WEB_BENCH_SPEED` (clock speed of
//! the timing runs, default 10: a 100 ms cycle), `WEB_BENCH_SKIP_RSS=1`.

#![allow(clippy::unwrap_used, missing_docs)]

#[path = "../tests/peers/embedded.rs"]
mod embedded;

use std::io::{BufRead as _, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use heatctl::runtime;
use heatctl::station::SnapshotReceiver;

const CLIENTS: usize = 50;

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// One HTTP GET with a fresh connection: (time to the first byte, whole body length).
fn get(addr: SocketAddr, path: &str) -> (Duration, Vec<u8>) {
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut first = [0u8; 1];
    s.read_exact(&mut first).unwrap();
    let ttfb = start.elapsed();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    let mut all = first.to_vec();
    all.extend(rest);
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (ttfb, all[split + 4..].to_vec())
}

/// Live clients in their own thread and runtime: each reads its stream and counts events.
struct Clients {
    stop: Arc<AtomicBool>,
    events: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

fn start_clients(addr: SocketAddr, n: usize) -> Clients {
    let stop = Arc::new(AtomicBool::new(false));
    let events = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let (s, e, b) = (Arc::clone(&stop), Arc::clone(&events), Arc::clone(&bytes));
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut tasks = Vec::new();
            for _ in 0..n {
                let (s, e, b) = (Arc::clone(&s), Arc::clone(&e), Arc::clone(&b));
                tasks.push(tokio::spawn(async move {
                    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
                    c.write_all(
                        format!("GET /api/events HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(),
                    )
                    .await
                    .unwrap();
                    let mut buf = vec![0u8; 64 * 1024];
                    while !s.load(Ordering::Relaxed) {
                        let Ok(Ok(got)) =
                            tokio::time::timeout(Duration::from_millis(200), c.read(&mut buf))
                                .await
                        else {
                            continue;
                        };
                        if got == 0 {
                            return;
                        }
                        b.fetch_add(got as u64, Ordering::Relaxed);
                        let text = &buf[..got];
                        let n = text.windows(15).filter(|w| w == b"event: snapshot").count();
                        e.fetch_add(n as u64, Ordering::Relaxed);
                    }
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        });
    });
    Clients {
        stop,
        events,
        bytes,
        thread,
    }
}

#[derive(Debug, Default, Clone)]
struct Periods {
    ms: Vec<f64>,
}

impl Periods {
    fn row(&self) -> (usize, f64, f64, f64) {
        let mut v = self.ms.clone();
        v.sort_by(f64::total_cmp);
        (
            v.len(),
            quantile(&v, 0.5),
            quantile(&v, 0.99),
            v.last().copied().unwrap_or(f64::NAN),
        )
    }
}

/// Control-cycle periods over `phase` of wall time, from consecutive snapshots' wall times (a
/// snapshot this observer missed would count as one long period: pessimistic).
async fn periods(rx: &mut SnapshotReceiver, phase: Duration) -> Periods {
    let mut out = Periods::default();
    let end = Instant::now() + phase;
    let mut last: Option<f64> = None;
    rx.mark_unchanged();
    while Instant::now() < end {
        if tokio::time::timeout(Duration::from_secs(2), rx.changed())
            .await
            .is_err()
        {
            continue;
        }
        let Some(s) = rx.borrow_and_update().clone() else {
            continue;
        };
        let (clock, wall) = (s.clock.clock_unix_s, s.clock.wall_unix_s);
        if let Some(w0) = last
            && clock > 0.0
        {
            out.ms.push((wall - w0) * 1000.0);
        }
        last = Some(wall);
    }
    out
}

fn vm_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// `heatctl demo --hours 48.5` (page off or on): (VmRSS, VmHWM) in KiB just as the run ends,
/// and the trend rows the page held.
fn demo_rss(web: bool) -> (u64, u64, Option<u64>) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_heatctl"));
    cmd.args(["demo", "--speed", "1440", "--hours", "48.5"]);
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    if web {
        cmd.args(["--web", &addr.to_string()]);
    }
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let rows = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let poller = web.then(|| {
        let (rows, done) = (Arc::clone(&rows), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_secs(1));
                if TcpStream::connect(addr).is_err() {
                    continue;
                }
                if let Ok(s) = std::panic::catch_unwind(|| get(addr, "/api/info").1)
                    && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&s)
                    && let Some(n) = v["trend_rows"].as_u64()
                {
                    rows.store(n, Ordering::Relaxed);
                }
            }
        })
    });
    let mut result = (0, 0);
    for line in std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
    {
        if line.starts_with("stopping") {
            result = (
                vm_kib(pid, "VmRSS:").unwrap_or(0),
                vm_kib(pid, "VmHWM:").unwrap_or(0),
            );
        }
    }
    done.store(true, Ordering::Relaxed);
    let _ = child.wait();
    if let Some(p) = poller {
        let _ = p.join();
    }
    (
        result.0,
        result.1,
        web.then(|| rows.load(Ordering::Relaxed)),
    )
}

fn main() {
    // Under `cargo test --benches` (or with `--bench` filters) run nothing.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let phase = Duration::from_secs_f64(env_f64("WEB_BENCH_PHASE_S", 20.0));
    let speed = env_f64("WEB_BENCH_SPEED", 10.0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("# web page budgets\n");
    rt.block_on(async {
        let web = embedded::free_addr();
        let mut station = embedded::Station::start(speed, |c| {
            c.web.enabled = true;
            c.web.listen = web.to_string();
        })
        .await;
        let snaps = &mut station.snapshots;
        // Wait for the page and the first cycles.
        let start = Instant::now();
        loop {
            if snaps.borrow().is_some() && TcpStream::connect(web).is_ok() {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "the station never started");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // 1. Weight and first byte.
        let web_addr = web;
        let (weights, ttfb) = tokio::task::spawn_blocking(move || {
            let mut weights = Vec::new();
            for path in ["/", "/assets/app.js", "/assets/app.css"] {
                weights.push((path, get(web_addr, path).1.len()));
            }
            let mut t: Vec<f64> = (0..200)
                .map(|_| get(web_addr, "/").0.as_secs_f64() * 1000.0)
                .collect();
            t.sort_by(f64::total_cmp);
            (weights, t)
        })
        .await
        .unwrap();
        let total: usize = weights.iter().map(|w| w.1).sum();
        println!("## page weight (uncompressed)\n");
        println!("| asset | bytes |\n| --- | ---: |");
        for (p, n) in &weights {
            println!("| `{p}` | {n} |");
        }
        println!("| total | {total} ({:.1} KiB; budget 200 KB) |\n", total as f64 / 1024.0);
        println!(
            "time to first byte of `/` on loopback, 200 requests: median {:.2} ms, p99 {:.2} ms, max {:.2} ms\n",
            quantile(&ttfb, 0.5),
            quantile(&ttfb, 0.99),
            ttfb.last().copied().unwrap_or(f64::NAN)
        );

        // 2. Cycle timing, 0 vs 50 clients, alternated.
        let nominal_ms = runtime::VALVE_PERIOD_S / speed * 1000.0;
        let mut rows: Vec<(&str, Periods, u64, u64)> = Vec::new();
        let mut without = Periods::default();
        let mut with = Periods::default();
        let (mut ev_total, mut bytes_total) = (0, 0);
        for round in 0..2 {
            let p = periods(snaps, phase).await;
            without.ms.extend(&p.ms);
            rows.push((if round == 0 { "0 clients (a)" } else { "0 clients (b)" }, p, 0, 0));
            let clients = start_clients(web, CLIENTS);
            tokio::time::sleep(Duration::from_millis(500)).await;
            let p = periods(snaps, phase).await;
            clients.stop.store(true, Ordering::Relaxed);
            let _ = clients.thread.join();
            let (ev, by) = (
                clients.events.load(Ordering::Relaxed),
                clients.bytes.load(Ordering::Relaxed),
            );
            ev_total += ev;
            bytes_total += by;
            with.ms.extend(&p.ms);
            rows.push((if round == 0 { "50 clients (a)" } else { "50 clients (b)" }, p, ev, by));
        }
        println!(
            "## control cycle with live clients\n\nclock speed {speed}: nominal period {nominal_ms:.1} ms; {phase:?} per phase; periods from consecutive snapshots' wall_unix_s\n"
        );
        println!("| phase | cycles | median ms | p99 ms | max ms | snapshot events received | MB sent |");
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        for (name, p, ev, by) in &rows {
            let (n, med, p99, max) = p.row();
            println!(
                "| {name} | {n} | {med:.2} | {p99:.2} | {max:.2} | {ev} | {:.1} |",
                *by as f64 / 1e6
            );
        }
        for (name, p) in [("0 clients, all", &without), ("50 clients, all", &with)] {
            let (n, med, p99, max) = p.row();
            println!("| {name} | {n} | {med:.2} | {p99:.2} | {max:.2} | | |");
        }
        println!(
            "\n{CLIENTS} clients received {ev_total} snapshot events ({:.1} per client per second)\n",
            ev_total as f64 / CLIENTS as f64 / (2.0 * phase.as_secs_f64())
        );
        let _ = bytes_total;
        let _ = station.stop().await;
    });

    // 3. Memory.
    if std::env::var_os("WEB_BENCH_SKIP_RSS").is_some() {
        return;
    }
    println!("## heatctl resident memory, `heatctl demo --speed 1440 --hours 48.5`\n");
    let (off_rss, off_hwm, _) = demo_rss(false);
    let (on_rss, on_hwm, rows) = demo_rss(true);
    println!("| page | VmRSS at the end, MiB | VmHWM (peak), MiB | trend rows |");
    println!("| --- | ---: | ---: | ---: |");
    let mib = |k: u64| k as f64 / 1024.0;
    println!("| off | {:.1} | {:.1} | |", mib(off_rss), mib(off_hwm));
    println!(
        "| on | {:.1} | {:.1} | {} |",
        mib(on_rss),
        mib(on_hwm),
        rows.unwrap_or(0)
    );
    println!(
        "| on - off | {:+.1} | {:+.1} | |",
        mib(on_rss) - mib(off_rss),
        mib(on_hwm) - mib(off_hwm)
    );
    let _ = std::io::stdout().flush();
}
