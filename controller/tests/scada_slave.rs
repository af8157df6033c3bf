//! The SCADA slave in process: garbage from the network never stops it, the connection cap
//! holds (a newcomer closes the longest-idle connection), and a multi-register write is all
//! or nothing.

use std::sync::Arc;
use std::time::Duration;

use heatctl::audit::Audit;
use heatctl::gate::{Access, Gate, GateReceiver, Setting};
use heatctl::scada::{self, ScadaShared};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_modbus::prelude::*;

async fn start(max_connections: u32) -> (std::net::SocketAddr, Arc<ScadaShared>, GateReceiver) {
    let (gate, rx) = Gate::new(
        Access {
            scada: vec!["curve_shift_k".into(), "room_target_c".into()],
            ..Access::default()
        },
        Audit::in_memory(),
    );
    let shared = Arc::new(ScadaShared::new(1, gate));
    let (addr, _task) = scada::serve(
        "127.0.0.1:0",
        scada::Limits {
            max_connections,
            ..scada::Limits::default()
        },
        Arc::clone(&shared),
    )
    .await
    .expect("listen");
    (addr, shared, rx)
}

#[tokio::test]
async fn garbage_does_not_stop_the_slave() {
    let (addr, _shared, _rx) = start(4).await;
    let mut seed = 7u32;
    for len in [1usize, 7, 12, 300, 4096] {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let junk: Vec<u8> = (0..len)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (seed >> 16) as u8
            })
            .collect();
        let _ = s.write_all(&junk).await;
        // A header claiming a huge length, then nothing.
        let _ = s.write_all(&[0, 1, 0, 0, 0xFF, 0xFF, 1, 3]).await;
        drop(s);
    }
    let mut ctx = tokio_modbus::client::tcp::connect_slave(addr, Slave(1))
        .await
        .expect("connect after garbage");
    let regs = ctx.read_holding_registers(0, 5).await.expect("transport");
    assert_eq!(regs.map(|r| r.len()), Ok(5));
}

#[tokio::test]
async fn connection_cap_and_all_or_nothing_writes() {
    let (addr, shared, mut rx) = start(1).await;
    let mut first = tokio_modbus::client::tcp::connect_slave(addr, Slave(1))
        .await
        .expect("connect");
    assert!(
        first
            .read_input_registers(0, 10)
            .await
            .is_ok_and(|r| r.is_ok())
    );
    // A second client while the first is idle closes the first (the longest idle, cap 1)
    // and is served in its place.
    let mut second = tokio_modbus::client::tcp::connect_slave(addr, Slave(1))
        .await
        .expect("connect");
    assert!(
        second
            .read_input_registers(0, 10)
            .await
            .is_ok_and(|r| r.is_ok()),
        "the newcomer is served"
    );
    let stale = tokio::time::timeout(Duration::from_secs(2), first.read_input_registers(0, 10))
        .await
        .expect("answered or closed promptly");
    assert!(
        stale.is_err(),
        "the idle connection was closed for the newcomer"
    );
    assert_eq!(shared.connection_counts().evicted, 1);
    assert!(
        shared.connection_counts().open_max <= 1,
        "never above the cap"
    );
    drop(second);
    let mut first = tokio_modbus::client::tcp::connect_slave(addr, Slave(1))
        .await
        .expect("reconnect");

    // curve_shift_k (0) is writable, operating_mode (1) is not: the whole write is refused.
    let r = first
        .write_multiple_registers(0, &[20, 1])
        .await
        .expect("transport");
    assert_eq!(r, Err(ExceptionCode::IllegalDataAddress));
    assert!(rx.try_recv().is_err(), "nothing applied");
    let r = first
        .write_single_register(2, 190)
        .await
        .expect("transport");
    assert_eq!(r, Ok(()));
    assert_eq!(
        rx.try_recv().ok().and_then(|m| m.setting),
        Some(Setting::RoomTargetC(19.0))
    );
    let r = first
        .write_single_register(2, 300)
        .await
        .expect("transport");
    assert_eq!(r, Err(ExceptionCode::IllegalDataValue));
    assert_eq!(shared.holding()[2], 190);
    // Wrong unit id.
    first.set_slave(Slave(9));
    let r = first.read_input_registers(0, 1).await.expect("transport");
    assert_eq!(r, Err(ExceptionCode::GatewayTargetDevice));
}
