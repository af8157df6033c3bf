//! The control cycle's timing with and without a SCADA attack, measured side by side and
//! printed as a table (no assertions; the behaviour is tested in `tests/scada_limits.rs`).
//!
//! The real runtime against the demo plant in this process, SCADA on (cap 4, idle timeout
//! 3 s, request timeout 1 s). Phases alternate in one run: quiet, attack, quiet, attack. The
//! attack, from its own thread and runtime: 1,000 connections opened, each asking once and
//! then held (past the cap, each new one makes the slave close its longest-idle connection;
//! each one that the slave closes is reopened a second later), 20 clients trickling a byte a
//! second (each reopened when disconnected), and one normal client polling a register every
//! 100 ms.
//! Cycle periods come from consecutive snapshots' wall times.
//!
//! `cargo bench -p heatctl --bench scada_flood`. Environment: `SCADA_BENCH_PHASE_S` (wall
//! seconds per phase, default 15), `SCADA_BENCH_SPEED` (clock speed, default 10: a 100 ms
//! cycle).

#![allow(clippy::unwrap_used, missing_docs)]

#[path = "../tests/peers/embedded.rs"]
mod embedded;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use heatctl::station::SnapshotReceiver;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HELD: usize = 1_000;
const TRICKLERS: usize = 20;

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

/// Read input register 26 (cycle_count).
const READ: [u8; 12] = [0, 1, 0, 0, 0, 6, 1, 0x04, 0, 26, 0, 1];

#[derive(Debug, Default)]
struct Counters {
    /// Flood connections the slave closed.
    flood_closed: AtomicU64,
    /// Tricklers the slave disconnected.
    tricklers_closed: AtomicU64,
    /// Answers to the normal client.
    normal_answers: AtomicU64,
    /// Normal client's requests without an answer (refused or timed out).
    normal_failures: AtomicU64,
}

/// The attack, in its own thread and runtime, until `stop`.
fn start_attack(
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    c: Arc<Counters>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut tasks = Vec::new();
            for _ in 0..HELD {
                let (stop, c) = (Arc::clone(&stop), Arc::clone(&c));
                tasks.push(tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        if let Ok(mut s) = TcpStream::connect(addr).await {
                            let _ = s.write_all(&READ).await;
                            let mut b = [0u8; 64];
                            // Hold: read until the slave closes or the attack ends.
                            loop {
                                match tokio::time::timeout(
                                    Duration::from_millis(500),
                                    s.read(&mut b),
                                )
                                .await
                                {
                                    Err(_) if stop.load(Ordering::Relaxed) => return,
                                    Err(_) | Ok(Ok(1..)) => {}
                                    Ok(Ok(0) | Err(_)) => break,
                                }
                            }
                            c.flood_closed.fetch_add(1, Ordering::Relaxed);
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }));
            }
            for _ in 0..TRICKLERS {
                let (stop, c) = (Arc::clone(&stop), Arc::clone(&c));
                tasks.push(tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let Ok(mut s) = TcpStream::connect(addr).await else {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            continue;
                        };
                        for b in READ.iter().cycle() {
                            if stop.load(Ordering::Relaxed) || s.write_all(&[*b]).await.is_err() {
                                break;
                            }
                            let mut r = [0u8; 64];
                            if let Ok(Ok(0) | Err(_)) =
                                tokio::time::timeout(Duration::from_secs(1), s.read(&mut r)).await
                            {
                                break;
                            }
                        }
                        c.tricklers_closed.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }));
            }
            {
                let (stop, c) = (Arc::clone(&stop), Arc::clone(&c));
                tasks.push(tokio::spawn(async move {
                    let mut conn: Option<TcpStream> = None;
                    while !stop.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        if conn.is_none() {
                            conn = TcpStream::connect(addr).await.ok();
                        }
                        let Some(s) = conn.as_mut() else { continue };
                        let mut answer = [0u8; 11];
                        let ok = s.write_all(&READ).await.is_ok()
                            && matches!(
                                tokio::time::timeout(
                                    Duration::from_secs(1),
                                    s.read_exact(&mut answer)
                                )
                                .await,
                                Ok(Ok(_))
                            );
                        if ok {
                            c.normal_answers.fetch_add(1, Ordering::Relaxed);
                        } else {
                            c.normal_failures.fetch_add(1, Ordering::Relaxed);
                            conn = None;
                        }
                    }
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        });
    })
}

/// Cycle periods over `phase` of wall time, ms, from consecutive snapshots' wall times.
async fn periods(rx: &mut SnapshotReceiver, phase: Duration) -> Vec<f64> {
    let mut out = Vec::new();
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
            out.push((wall - w0) * 1000.0);
        }
        last = Some(wall);
    }
    out.sort_by(f64::total_cmp);
    out
}

/// (n, median, p99, max, jitter = p99 - median), ms.
fn row(v: &[f64]) -> (usize, f64, f64, f64, f64) {
    let (m, p) = (quantile(v, 0.5), quantile(v, 0.99));
    (v.len(), m, p, v.last().copied().unwrap_or(f64::NAN), p - m)
}

fn main() {
    let phase = Duration::from_secs_f64(env_f64("SCADA_BENCH_PHASE_S", 15.0));
    let speed = env_f64("SCADA_BENCH_SPEED", 10.0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let addr = embedded::free_addr();
        let mut station =
            embedded::Station::start(speed, embedded::scada(addr, 4, 3.0, 1.0)).await;
        embedded::wait_listening(addr, Duration::from_secs(20)).await;
        let snaps = &mut station.snapshots;
        // Warm up: the first cycles.
        let _ = periods(snaps, Duration::from_secs(2)).await;
        let mut quiet = Vec::new();
        let mut attack = Vec::new();
        let counters = Arc::new(Counters::default());
        for round in 0..2 {
            eprintln!("round {round}: quiet");
            quiet.extend(periods(snaps, phase).await);
            eprintln!("round {round}: attack");
            let halt = Arc::new(AtomicBool::new(false));
            let attacker = start_attack(addr, Arc::clone(&halt), Arc::clone(&counters));
            attack.extend(periods(snaps, phase).await);
            halt.store(true, Ordering::Relaxed);
            attacker.join().unwrap();
            // Let the slave close what the attack left behind before the next quiet phase.
            tokio::time::sleep(Duration::from_secs(4)).await;
        }
        quiet.sort_by(f64::total_cmp);
        attack.sort_by(f64::total_cmp);
        let (qn, qm, qp, qx, qj) = row(&quiet);
        let (an, am, ap, ax, aj) = row(&attack);
        println!();
        println!(
            "control cycle with and without a SCADA attack (speed {speed}, {} s per phase, 2 rounds)",
            phase.as_secs_f64()
        );
        println!("| phase  | cycles | median ms | p99 ms | max ms | jitter (p99-median) ms |");
        println!("|--------|-------:|----------:|-------:|-------:|-----------------------:|");
        println!("| quiet  | {qn:6} | {qm:9.2} | {qp:6.2} | {qx:6.2} | {qj:22.2} |");
        println!("| attack | {an:6} | {am:9.2} | {ap:6.2} | {ax:6.2} | {aj:22.2} |");
        println!(
            "| ratio attack/quiet | | {:.3} | {:.3} | {:.3} | {:.3} |",
            am / qm,
            ap / qp,
            ax / qx,
            aj / qj
        );
        println!();
        println!(
            "attack: {} flood connections closed by the slave, {} tricklers disconnected, \
             normal client {} answers / {} failures",
            counters.flood_closed.load(Ordering::Relaxed),
            counters.tricklers_closed.load(Ordering::Relaxed),
            counters.normal_answers.load(Ordering::Relaxed),
            counters.normal_failures.load(Ordering::Relaxed),
        );
        station.stop().await.unwrap();
    });
}
