//! The SCADA slave under a connection flood and a slowloris client, with the real runtime
//! against the demo plant in this process: connections past the cap are refused, an idle or
//! trickling connection is closed, normal clients are served once slots free up, and the
//! control cycle keeps advancing. Behaviour only; the cycle's timing under the same attack is
//! measured by `cargo bench -p heatctl --bench scada_flood`.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use heatctl::runtime::{self, Embedding, RunOptions, ScaledClock};
use heatctl::station::SnapshotReceiver;
use heatctl_plant::demo as demo_plant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CAP: u32 = 4;
const FLOOD: usize = 1_000;

/// Read input register 26 (cycle_count) with transaction id `tid`.
fn read_cycle_request(tid: u16) -> [u8; 12] {
    let t = tid.to_be_bytes();
    [t[0], t[1], 0, 0, 0, 6, 1, 0x04, 0, 26, 0, 1]
}

/// What became of one request on a connection.
#[derive(Debug, PartialEq, Eq)]
enum Fate {
    /// Answered with a well-formed read response.
    Answered,
    /// The slave closed the connection (end of file or reset) without an answer.
    Closed,
    /// Nothing within the wait.
    Silent,
}

/// Send a read on `c` and wait up to `wait` for its fate.
async fn ask(c: &mut TcpStream, tid: u16, wait: Duration) -> Fate {
    if c.write_all(&read_cycle_request(tid)).await.is_err() {
        return Fate::Closed;
    }
    let mut answer = [0u8; 11];
    match tokio::time::timeout(wait, c.read_exact(&mut answer)).await {
        Err(_) => Fate::Silent,
        Ok(Err(_)) => Fate::Closed,
        Ok(Ok(_)) => {
            assert_eq!(answer[..2], tid.to_be_bytes(), "transaction id echoed");
            assert_eq!(answer[7..9], [0x04, 2], "a read answer: {answer:?}");
            Fate::Answered
        }
    }
}

/// Wait up to `wait` for the slave to close `c` (no request sent); true when it did.
async fn closed_by_slave(c: &mut TcpStream, wait: Duration) -> bool {
    let mut b = [0u8; 16];
    matches!(
        tokio::time::timeout(wait, c.read(&mut b)).await,
        Ok(Ok(0) | Err(_))
    )
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The runtime against the demo plant, SCADA on with the cap and short timeouts.
async fn start_station(
    scada: SocketAddr,
) -> (
    heatctl_plant::PlantServer,
    SnapshotReceiver,
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let speed = 10.0;
    let (server, mut loaded) = demo_plant::serve_demo_plant(speed).await.unwrap();
    let s = &mut loaded.config.scada;
    s.enabled = true;
    s.listen = scada.to_string();
    s.max_connections = CAP;
    s.idle_timeout_s = 3.0;
    s.request_timeout_s = 1.0;
    let clock = Arc::new(ScaledClock::starting_at(
        demo_plant::demo_clock_start_unix_s(&server, loaded.config.site.utc_offset_h).unwrap(),
        speed,
    ));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (snap_tx, snap_rx) = tokio::sync::watch::channel(None);
    let controller = tokio::spawn(runtime::run_embedded(
        RunOptions {
            config_path: loaded.path.clone(),
            dry_run: false,
            clock,
            state_path: None,
            state_dir: None,
        },
        Embedding {
            loaded,
            stop: stop_rx,
            snapshots: snap_tx,
        },
    ));
    (server, snap_rx, stop_tx, controller)
}

/// The latest cycle number, waiting for the first snapshot.
async fn cycle(rx: &mut SnapshotReceiver) -> u64 {
    for _ in 0..200 {
        if let Some(s) = rx.borrow_and_update().clone() {
            return s.station.cycle;
        }
        let _ = tokio::time::timeout(Duration::from_millis(100), rx.changed()).await;
    }
    panic!("no control cycle within 20 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_refused_past_the_cap_trickler_closed_normal_clients_served() {
    let addr = free_addr();
    let (_plant, mut snaps, stop, controller) = start_station(addr).await;
    let before = cycle(&mut snaps).await;
    let mut normal = None;
    for _ in 0..50 {
        if let Ok(c) = TcpStream::connect(addr).await {
            normal = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut normal = normal.expect("the SCADA slave listens");
    assert_eq!(
        ask(&mut normal, 1, Duration::from_secs(5)).await,
        Fate::Answered
    );
    drop(normal);
    // Let the slave see the normal client leave before the flood takes the slots.
    tokio::time::sleep(Duration::from_millis(200)).await;

    // 1. The flood: 1,000 connections opened and held; each then asks once.
    let mut flood = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        flood.push(
            TcpStream::connect(addr)
                .await
                .expect("connect (the kernel accepts)"),
        );
    }
    let mut asks = Vec::new();
    for (i, mut c) in flood.into_iter().enumerate() {
        asks.push(tokio::spawn(async move {
            let tid = u16::try_from(i).unwrap();
            let fate = ask(&mut c, tid, Duration::from_secs(2)).await;
            (fate, c)
        }));
    }
    let mut held = Vec::new();
    let (mut answered, mut refused) = (0, 0);
    for a in asks {
        let (fate, c) = a.await.unwrap();
        match fate {
            Fate::Answered => {
                answered += 1;
                held.push(c);
            }
            Fate::Closed => refused += 1,
            Fate::Silent => panic!("a flood connection neither served nor closed"),
        }
    }
    assert_eq!(answered, CAP as usize, "exactly the cap is served");
    assert_eq!(
        refused,
        FLOOD - CAP as usize,
        "every connection past the cap is closed"
    );

    // 2. The cap is full: a normal client is refused now...
    let mut late = TcpStream::connect(addr).await.unwrap();
    assert_eq!(
        ask(&mut late, 2000, Duration::from_secs(2)).await,
        Fate::Closed
    );
    // ...the held connections fall silent and are closed after the idle timeout...
    for c in &mut held {
        assert!(
            closed_by_slave(c, Duration::from_secs(15)).await,
            "an idle connection is closed"
        );
    }
    // ...and then a normal client is served, while a trickler sends a byte a second.
    let mut trickler = TcpStream::connect(addr).await.unwrap();
    let trickle = tokio::spawn(async move {
        let request = read_cycle_request(3000);
        for (sent, b) in request.iter().enumerate() {
            if trickler.write_all(&[*b]).await.is_err() {
                return (sent, false);
            }
            let mut answer = [0u8; 16];
            match tokio::time::timeout(Duration::from_secs(1), trickler.read(&mut answer)).await {
                Err(_) => {}
                Ok(Ok(0) | Err(_)) => return (sent + 1, false),
                Ok(Ok(_)) => return (sent + 1, true),
            }
        }
        (request.len(), false)
    });
    let mut normal = TcpStream::connect(addr).await.unwrap();
    assert_eq!(
        ask(&mut normal, 4000, Duration::from_secs(5)).await,
        Fate::Answered
    );
    let (sent, answered) = trickle.await.unwrap();
    assert!(!answered, "the trickled request is never answered");
    assert!(
        sent < read_cycle_request(0).len(),
        "the trickler is disconnected before its request is complete ({sent} bytes sent)"
    );
    assert_eq!(
        ask(&mut normal, 4001, Duration::from_secs(5)).await,
        Fate::Answered
    );

    // 3. The control cycle advanced through it all.
    let after = cycle(&mut snaps).await;
    assert!(after > before + 5, "cycles {before} -> {after}");
    stop.send(true).unwrap();
    controller.await.unwrap().unwrap();
}
