//! heatctl's runtime started in this process against the demo plant (the simulator's Modbus
//! faces on loopback), for the tests and benches that need a whole station: SCADA limits, the
//! SCADA flood bench, the web page's bench. Included with `#[path]` (a bench:
//! `#[path = "../tests/peers/embedded.rs"] mod embedded;`).
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use heatctl::config::Config;
use heatctl::runtime::{self, Embedding, RunOptions, ScaledClock};
use heatctl::station::{SnapshotReceiver, StationSnapshot};
use heatctl_plant::demo as demo_plant;

/// A running station: the demo plant, heatctl's runtime, its snapshots.
pub struct Station {
    /// The simulated plant heatctl talks to.
    pub plant: heatctl_plant::PlantServer,
    /// Every cycle's snapshot.
    pub snapshots: SnapshotReceiver,
    stop: tokio::sync::watch::Sender<bool>,
    controller: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// A free TCP address on 127.0.0.1 (bound, then released for the station to take).
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// SCADA on at `listen`: at most `max_connections`, idle and request timeouts in seconds.
pub fn scada(
    listen: SocketAddr,
    max_connections: u32,
    idle_timeout_s: f64,
    request_timeout_s: f64,
) -> impl FnOnce(&mut Config) {
    move |c: &mut Config| {
        let s = &mut c.scada;
        s.enabled = true;
        s.listen = listen.to_string();
        s.max_connections = max_connections;
        s.idle_timeout_s = idle_timeout_s;
        s.request_timeout_s = request_timeout_s;
    }
}

impl Station {
    /// Serve the demo plant at `speed` (clock seconds per real second), let `configure` change
    /// the demo's configuration (SCADA, the web page), and start heatctl's runtime on it (no
    /// state file, no state directory). Returns once the runtime is spawned; see
    /// [`Station::first_cycle`] and [`wait_listening`].
    pub async fn start(speed: f64, configure: impl FnOnce(&mut Config)) -> Self {
        let (plant, mut loaded) = demo_plant::serve_demo_plant(speed)
            .await
            .expect("the demo plant serves");
        configure(&mut loaded.config);
        let clock = Arc::new(ScaledClock::starting_at(
            demo_plant::demo_clock_start_unix_s(&plant, loaded.config.site.utc_offset_h)
                .expect("the demo's start time"),
            speed,
        ));
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let (snap_tx, snapshots) = tokio::sync::watch::channel(None);
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
        Self {
            plant,
            snapshots,
            stop,
            controller,
        }
    }

    /// The latest snapshot, waiting up to `limit` for the first one.
    pub async fn snapshot(&mut self, limit: Duration) -> Arc<StationSnapshot> {
        let end = tokio::time::Instant::now() + limit;
        loop {
            if let Some(s) = self.snapshots.borrow_and_update().clone() {
                return s;
            }
            assert!(
                tokio::time::Instant::now() < end,
                "no control cycle within {limit:?}"
            );
            let _ =
                tokio::time::timeout(Duration::from_millis(100), self.snapshots.changed()).await;
        }
    }

    /// The latest cycle number, waiting up to 20 s for the first cycle.
    pub async fn first_cycle(&mut self) -> u64 {
        self.snapshot(Duration::from_secs(20)).await.station.cycle
    }

    /// Stop the runtime (safe positions written) and the plant; the runtime's result.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let result = self.controller.await.map_err(anyhow::Error::from)?;
        self.plant.shutdown().await;
        result
    }
}

/// Wait until something accepts TCP connections at `addr`, at most `limit`; panics after.
pub async fn wait_listening(addr: SocketAddr, limit: Duration) {
    let end = tokio::time::Instant::now() + limit;
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            tokio::time::Instant::now() < end,
            "nothing listens at {addr} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
