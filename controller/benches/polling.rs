//! Polling throughput over one Modbus TCP connection to a local tokio-modbus server:
//! heatctl's poller (timeouts, gap bookkeeping, decoding, statistics, shared state) versus a bare
//! tokio-modbus read loop, in the same run. Prints a table and the ratio.
//!
//!     cargo bench -p heatctl --bench polling [-- SECONDS]

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use heatctl::config::{DeviceMap, Link, LinkKind};
use heatctl::field::{DevicePlan, FieldHandle, FieldShared, LinkPlan};
use heatctl::runtime::ScaledClock;
use tokio_modbus::prelude::*;
use tokio_modbus::server::tcp::Server;

const REGISTERS: u16 = 10;

struct Registers;

impl tokio_modbus::server::Service for Registers {
    type Request = Request<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = std::future::Ready<Result<Response, ExceptionCode>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        std::future::ready(match req {
            Request::ReadInputRegisters(_, n) => {
                Ok(Response::ReadInputRegisters(vec![215; usize::from(n)]))
            }
            _ => Err(ExceptionCode::IllegalFunction),
        })
    }
}

async fn start_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let server = Server::new(listener);
        let on_connected = |stream, _addr| async move { Ok(Some((Registers, stream))) };
        let _ = server.serve(&on_connected, |_e| {}).await;
    });
    addr
}

async fn bare(addr: SocketAddr, secs: f64) -> f64 {
    let mut ctx = tokio_modbus::client::tcp::connect_slave(addr, Slave(1))
        .await
        .unwrap();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        let regs = ctx
            .read_input_registers(0, REGISTERS)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(regs.len(), usize::from(REGISTERS));
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

async fn poller(addr: SocketAddr, secs: f64) -> f64 {
    let mut map_text = String::from("[device]\nmodel = \"bench\"\n");
    for i in 0..REGISTERS {
        map_text.push_str(&format!(
            "[[points]]\nname = \"p{i}\"\ntable = \"input\"\naddress = {i}\ntype = \"i16\"\nscale = 0.1\npoll_period_s = 0.01\nmax_age_s = 10\n"
        ));
    }
    let map: DeviceMap = toml::from_str(&map_text).unwrap();
    let plan = LinkPlan {
        link: Link {
            host: Some(addr.ip().to_string()),
            port: Some(addr.port()),
            timeout_ms: 1000,
            reconnect_min_ms: 10,
            reconnect_max_ms: 100,
            ..Link::new("bench", LinkKind::Tcp)
        },
        devices: vec![DevicePlan::new("dev", 1, &map)],
    };
    assert_eq!(plan.devices[0].blocks.len(), 1, "ten registers, one read");
    // A clock a million times faster than real time: every point is always due, so the poller
    // reads back to back like the bare loop.
    let shared = Arc::new(FieldShared::default());
    let mut field = FieldHandle::start(
        vec![plan],
        Arc::new(ScaledClock::new(1e6)),
        Arc::clone(&shared),
    );
    let requests = || shared.stats().get("dev").map_or(0, |s| s.requests);
    while requests() == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let (n0, t0) = (requests(), Instant::now());
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let (n1, dt) = (requests(), t0.elapsed().as_secs_f64());
    field.stop();
    let s = &shared.stats()["dev"];
    assert_eq!(s.errors, 0);
    (n1 - n0) as f64 / dt
}

fn main() {
    let secs: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3.0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let addr = start_server().await;
        let mut rows = Vec::new();
        for round in 1..=2 {
            // Both run in a spawned task on a worker thread, as heatctl's link task does.
            let b = tokio::spawn(bare(addr, secs)).await.unwrap();
            let p = poller(addr, secs).await;
            rows.push((round, b, p));
        }
        println!("\nPolling throughput, one Modbus TCP connection, {REGISTERS} input registers per read, {secs} s per run\n");
        println!("| round | bare tokio-modbus loop, req/s | heatctl poller, req/s | poller / bare |");
        println!("|---:|---:|---:|---:|");
        for (round, b, p) in &rows {
            println!("| {round} | {b:.0} | {p:.0} | {:.2} |", p / b);
        }
        let (b, p): (f64, f64) = rows.iter().fold((0.0, 0.0), |(x, y), r| (x + r.1, y + r.2));
        println!("| all | {:.0} | {:.0} | {:.2} |", b / rows.len() as f64, p / rows.len() as f64, p / b);
    });
}
