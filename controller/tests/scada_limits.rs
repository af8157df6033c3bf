//! The SCADA slave under a connection flood and a slowloris client.
//!
//! With the real runtime against the demo plant in this process: 1,000 connections opened and
//! held idle take every slot, yet a SCADA master connecting afterwards is served (the
//! longest-idle connection is closed for it) with registers that come from the station
//! snapshot; a second wave of idle holders, then a flood of clients that each ask once and
//! hold, do not displace the polling master; a trickling
//! client is closed by its request timeout; the control cycle keeps advancing. With the slave
//! alone: the open connections never exceed the cap (the slave's own high-water mark), and a
//! new client is refused only when every connection is in the middle of a request. Behaviour
//! only; the cycle's timing under attack is measured by
//! `cargo bench -p heatctl --bench scada_flood`.

#![allow(clippy::unwrap_used)]

#[path = "peers/embedded.rs"]
mod embedded;

use std::sync::Arc;
use std::time::Duration;

use embedded::{Station, free_addr, wait_listening};
use heatctl::scada::{self, Limits, ScadaShared};
use heatctl::station::StationSnapshot;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CAP: u32 = 4;
const FLOOD: usize = 1_000;
/// The input registers a master reads in one request (addresses 0..66: measurements,
/// explanation, counts, pump).
const BLOCK: u16 = 66;

/// A read of `count` input registers from `addr` with transaction id `tid`.
fn read_request(tid: u16, addr: u16, count: u16) -> [u8; 12] {
    let (t, a, n) = (tid.to_be_bytes(), addr.to_be_bytes(), count.to_be_bytes());
    [t[0], t[1], 0, 0, 0, 6, 1, 0x04, a[0], a[1], n[0], n[1]]
}

/// What became of one request on a connection.
#[derive(Debug, PartialEq, Eq)]
enum Fate {
    /// Answered with a well-formed read response: the registers.
    Answered(Vec<u16>),
    /// The slave closed the connection (end of file or reset) without an answer.
    Closed,
    /// Nothing within the wait.
    Silent,
}

/// Read `count` input registers from `addr` on `c`, waiting up to `wait`.
async fn ask(c: &mut TcpStream, tid: u16, addr: u16, count: u16, wait: Duration) -> Fate {
    if c.write_all(&read_request(tid, addr, count)).await.is_err() {
        return Fate::Closed;
    }
    let mut answer = vec![0u8; 9 + 2 * usize::from(count)];
    match tokio::time::timeout(wait, c.read_exact(&mut answer)).await {
        Err(_) => Fate::Silent,
        Ok(Err(_)) => Fate::Closed,
        Ok(Ok(_)) => {
            assert_eq!(answer[..2], tid.to_be_bytes(), "transaction id echoed");
            assert_eq!(
                usize::from(answer[8]),
                2 * usize::from(count),
                "a read answer: {answer:?}"
            );
            assert_eq!(answer[7], 0x04, "function 04 answered");
            Fate::Answered(
                answer[9..]
                    .chunks_exact(2)
                    .map(|w| u16::from_be_bytes([w[0], w[1]]))
                    .collect(),
            )
        }
    }
}

/// Whether the slave has closed `c` (no request sent), waiting up to `wait` for it.
async fn closed_by_slave(c: &mut TcpStream, wait: Duration) -> bool {
    let mut b = [0u8; 16];
    matches!(
        tokio::time::timeout(wait, c.read(&mut b)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// Open `n` connections to `addr` and hold them, sending nothing.
async fn hold(addr: std::net::SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(
            TcpStream::connect(addr)
                .await
                .expect("connect (the kernel accepts)"),
        );
    }
    held
}

/// How many of `held` the slave has closed (each given up to `wait`, all at once).
async fn count_closed(held: Vec<TcpStream>, wait: Duration) -> (usize, Vec<TcpStream>) {
    let checks: Vec<_> = held
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                let closed = closed_by_slave(&mut c, wait).await;
                (closed, c)
            })
        })
        .collect();
    let (mut closed, mut open) = (0, Vec::new());
    for check in checks {
        let (was_closed, c) = check.await.unwrap();
        if was_closed {
            closed += 1;
        } else {
            open.push(c);
        }
    }
    (closed, open)
}

/// Whether `registers` are what the slave publishes for one of `snapshots`.
fn from_a_snapshot(registers: &[u16], snapshots: &[Arc<StationSnapshot>]) -> bool {
    snapshots
        .iter()
        .any(|s| scada::input_image(s)[..registers.len()] == *registers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_holders_cannot_lock_the_master_out() {
    let addr = free_addr();
    // A long idle timeout: the master gets in by eviction, not because the holders time out.
    let mut station = Station::start(10.0, embedded::scada(addr, CAP, 60.0, 1.0)).await;
    let before = station.first_cycle().await;
    wait_listening(addr, Duration::from_secs(5)).await;
    // Let the slave see the probe connection leave.
    tokio::time::sleep(Duration::from_millis(200)).await;

    // 1. The flood: 1,000 connections opened and held, silent. Each new one closes the
    //    longest-idle one; the cap is never exceeded.
    let flood = hold(addr, FLOOD).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (closed, mut holders) = count_closed(flood, Duration::from_millis(300)).await;
    assert_eq!(
        holders.len(),
        CAP as usize,
        "the cap is full of idle holders"
    );
    assert_eq!(closed, FLOOD - CAP as usize, "the others were closed");

    // 2. A master connects afterwards: served, with registers from the station's snapshot.
    let mut master = TcpStream::connect(addr).await.unwrap();
    let mut snapshots = Vec::new();
    let mut matched = false;
    for tid in 0..5 {
        station.snapshots.mark_unchanged();
        snapshots.push(station.snapshot(Duration::from_secs(5)).await);
        let Fate::Answered(registers) =
            ask(&mut master, tid, 0, BLOCK, Duration::from_secs(5)).await
        else {
            panic!("the master is not served with the cap full of idle holders");
        };
        // The image read was published in the cycle of this snapshot or of the next one.
        let _ = tokio::time::timeout(Duration::from_secs(2), station.snapshots.changed()).await;
        snapshots.push(station.snapshot(Duration::from_secs(5)).await);
        if from_a_snapshot(&registers, &snapshots) {
            matched = true;
            break;
        }
    }
    assert!(matched, "the registers read are a published snapshot's");
    let (closed, rest) = count_closed(holders, Duration::from_millis(300)).await;
    holders = rest;
    assert_eq!(closed, 1, "one holder closed for the master");
    assert_eq!(
        holders.len() + 1,
        CAP as usize,
        "holders and master fill the cap"
    );

    // 3. A second wave of idle holders while the master polls: the holders that never asked
    //    are closed before the master, which stays served on its one connection.
    let wave = tokio::spawn(hold(addr, 100));
    for tid in 100..110 {
        let fate = ask(&mut master, tid, 26, 1, Duration::from_secs(5)).await;
        assert!(
            matches!(fate, Fate::Answered(_)),
            "the polling master is not displaced by idle holders: {fate:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let wave = wave.await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, wave_open) = count_closed(wave, Duration::from_millis(300)).await;
    let (_, old_open) = count_closed(holders, Duration::from_millis(300)).await;
    assert!(
        wave_open.len() + old_open.len() < CAP as usize,
        "open: {} + {} holders and the master, cap {CAP}",
        wave_open.len(),
        old_open.len()
    );

    // 3b. A flood that connects, asks once and holds, one client after another, while the
    //     master polls: each newcomer closes another one-shot client (fewer answered requests
    //     than an established poller), never the master, however recent their questions.
    let one_shots = tokio::spawn(async move {
        let mut held = Vec::new();
        let mut answered = 0;
        for tid in 0..60u16 {
            let mut c = TcpStream::connect(addr).await.unwrap();
            if matches!(
                ask(&mut c, 5000 + tid, 26, 1, Duration::from_secs(2)).await,
                Fate::Answered(_)
            ) {
                answered += 1;
            }
            held.push(c);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        (answered, held)
    });
    // The master polls slower than the one-shot clients come: each time, its last question is
    // older than theirs.
    for tid in 200..210 {
        let fate = ask(&mut master, tid, 26, 1, Duration::from_secs(5)).await;
        assert!(
            matches!(fate, Fate::Answered(_)),
            "the polling master is not displaced by one-shot clients: {fate:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (answered, one_shot_held) = one_shots.await.unwrap();
    assert!(
        answered > 30,
        "the one-shot clients were served too: {answered} of 60"
    );
    drop(one_shot_held);

    // 4. A trickler sending a byte a second is disconnected before its request is complete.
    let mut trickler = TcpStream::connect(addr).await.unwrap();
    let request = read_request(3000, 26, 1);
    let mut sent = 0;
    let mut answered = false;
    for b in request {
        if trickler.write_all(&[b]).await.is_err() {
            break;
        }
        sent += 1;
        let mut answer = [0u8; 16];
        match tokio::time::timeout(Duration::from_secs(1), trickler.read(&mut answer)).await {
            Err(_) => {}
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(_)) => {
                answered = true;
                break;
            }
        }
    }
    assert!(!answered, "the trickled request is never answered");
    assert!(
        sent < request.len(),
        "the trickler is disconnected before its request is complete ({sent} bytes sent)"
    );
    assert!(matches!(
        ask(&mut master, 4000, 26, 1, Duration::from_secs(5)).await,
        Fate::Answered(_)
    ));

    // 5. The control cycle advanced through it all.
    let after = station.first_cycle().await;
    assert!(after > before + 5, "cycles {before} -> {after}");
    drop((master, wave_open, old_open));
    station.stop().await.unwrap();
}

/// The slave alone, on a default snapshot.
async fn slave(limits: Limits) -> (std::net::SocketAddr, Arc<ScadaShared>) {
    let (gate, _rx) = heatctl::gate::Gate::new(
        heatctl::gate::Access::default(),
        heatctl::audit::Audit::in_memory(),
    );
    let shared = Arc::new(ScadaShared::new(1, gate));
    shared.publish(&StationSnapshot::default());
    let (addr, task) = scada::serve("127.0.0.1:0", limits, Arc::clone(&shared))
        .await
        .unwrap();
    // Detached: the server runs for the test's life.
    drop(task);
    (addr, shared)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_above_the_cap_and_busy_connections_are_not_evicted() {
    let limits = Limits {
        max_connections: CAP,
        idle_timeout: Duration::from_secs(60),
        request_timeout: Duration::from_secs(2),
    };
    let (addr, shared) = slave(limits).await;

    // 300 silent holders, then a master that polls.
    let held = hold(addr, 300).await;
    let mut master = TcpStream::connect(addr).await.unwrap();
    for tid in 0..3 {
        let Fate::Answered(r) = ask(&mut master, tid, 26, 1, Duration::from_secs(5)).await else {
            panic!("the master is served");
        };
        assert_eq!(r, [0], "cycle_count of the published snapshot");
    }
    let c = shared.connection_counts();
    assert_eq!(c.accepted, 301);
    assert_eq!(
        c.evicted,
        301 - u64::from(CAP),
        "each client past the cap evicted one"
    );
    assert_eq!(c.refused, 0);
    assert_eq!(c.open, CAP);
    assert!(c.open_max <= CAP, "never above the cap: {c:?}");
    let (closed, open) = count_closed(held, Duration::from_millis(300)).await;
    assert_eq!(
        (closed, open.len()),
        (300 - CAP as usize + 1, CAP as usize - 1)
    );
    drop(open);
    drop(master);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(shared.connection_counts().open, 0, "every slot freed");

    // Every slot in the middle of a request: a new client is refused, none is evicted.
    let mut busy = Vec::new();
    for tid in 0..CAP {
        let mut c = TcpStream::connect(addr).await.unwrap();
        let req = read_request(u16::try_from(tid).unwrap(), 26, 1);
        c.write_all(&req[..5]).await.unwrap();
        busy.push((c, req));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut late = TcpStream::connect(addr).await.unwrap();
    assert_eq!(
        ask(&mut late, 9, 26, 1, Duration::from_secs(3)).await,
        Fate::Closed,
        "refused: every connection is in the middle of a request"
    );
    let c = shared.connection_counts();
    assert_eq!((c.refused, c.evicted), (1, 301 - u64::from(CAP)));
    // The busy ones complete their requests and are answered.
    for (tid, (c, req)) in busy.iter_mut().enumerate() {
        c.write_all(&req[5..]).await.unwrap();
        let mut answer = [0u8; 11];
        tokio::time::timeout(Duration::from_secs(2), c.read_exact(&mut answer))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(answer[..2], u16::try_from(tid).unwrap().to_be_bytes());
    }
    assert!(shared.connection_counts().open_max <= CAP);
}
