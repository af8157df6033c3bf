//! The field layer under faulty devices: one that never answers, one that answers after the
//! timeout, one that answers with exceptions, one that drops the connection, garbage bytes on an
//! RTU-over-TCP link, and a device that acknowledges writes without keeping them. heatctl keeps
//! polling, marks the points invalid, raises the alarm conditions and clears them on recovery.
//! The faulty device is a small tokio server written here.

#[path = "peers/support.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use heatctl::config::{self, LoadedConfig};
use heatctl::field::{FieldHandle, FieldShared, plan_links};
use heatctl::runtime::{Clock, WallClock};
use heatctl_plant::faces::crc16;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const NORMAL: u8 = 0;
const SILENT: u8 = 1;
const LATE: u8 = 2;
const EXCEPTION: u8 = 3;
const DROP: u8 = 4;
const GARBAGE: u8 = 5;
const IGNORE_WRITES: u8 = 6;
const WRONG_TRANSACTION: u8 = 7;

const FAST_MAP: &str = r#"[device]
model = "fast test I/O"
[[points]]
name = "t2_supply"
table = "input"
address = 0
type = "i16"
scale = 0.1
sentinels = [32767, -32768]
valid_min = 0.0
valid_max = 120.0
poll_period_s = 0.1
max_age_s = 2.0
[[points]]
name = "t1_supply"
table = "input"
address = 1
type = "i16"
scale = 0.1
poll_period_s = 0.1
max_age_s = 2.0
[[points]]
name = "cmd"
table = "holding"
address = 0
type = "u16"
scale = 0.1
valid_min = 0.0
valid_max = 100.0
writable = true
poll_period_s = 0.5
max_age_s = 5.0
"#;

/// Behaviour per unit id (index), shared with the test.
#[derive(Clone, Default)]
struct Behaviours(Arc<[AtomicU8; 4]>);

impl Behaviours {
    fn set(&self, unit: u8, b: u8) {
        self.0[usize::from(unit)].store(b, Ordering::SeqCst);
    }
    fn get(&self, unit: u8) -> u8 {
        self.0
            .get(usize::from(unit))
            .map_or(EXCEPTION, |a| a.load(Ordering::SeqCst))
    }
}

/// The answer PDU to a request PDU, or `None` to stay silent / drop.
fn answer(pdu: &[u8], holding: &mut [u16; 8], keep_writes: bool) -> Vec<u8> {
    let fc = pdu.first().copied().unwrap_or(0);
    let word = |i: usize| {
        u16::from_be_bytes([
            pdu.get(i).copied().unwrap_or(0),
            pdu.get(i + 1).copied().unwrap_or(0),
        ])
    };
    match fc {
        3 | 4 => {
            let (addr, n) = (usize::from(word(1)), usize::from(word(3)));
            let mut out = vec![fc, (n * 2) as u8];
            for i in addr..addr + n {
                let v = if fc == 4 {
                    550 + i as u16
                } else {
                    holding.get(i).copied().unwrap_or(0)
                };
                out.extend_from_slice(&v.to_be_bytes());
            }
            out
        }
        6 => {
            if keep_writes && let Some(slot) = holding.get_mut(usize::from(word(1))) {
                *slot = word(3);
            }
            pdu[..5.min(pdu.len())].to_vec()
        }
        _ => vec![fc | 0x80, 1],
    }
}

async fn serve_connection(mut s: TcpStream, rtu: bool, behaviours: Behaviours) {
    let mut holding = [0u16; 8];
    let mut seed = 12345u32;
    loop {
        // Read one request: MBAP header + PDU, or an 8-byte RTU frame (functions 3, 4, 6).
        let (header, unit, pdu) = if rtu {
            let mut f = [0u8; 8];
            if s.read_exact(&mut f).await.is_err() {
                return;
            }
            (Vec::new(), f[0], f[1..6].to_vec())
        } else {
            let mut h = [0u8; 7];
            if s.read_exact(&mut h).await.is_err() {
                return;
            }
            let len = usize::from(u16::from_be_bytes([h[4], h[5]])).saturating_sub(1);
            let mut pdu = vec![0u8; len];
            if s.read_exact(&mut pdu).await.is_err() {
                return;
            }
            (h[..4].to_vec(), h[6], pdu)
        };
        let b = behaviours.get(unit);
        let reply_pdu = match b {
            SILENT => continue,
            DROP => return,
            EXCEPTION => vec![pdu[0] | 0x80, 4],
            GARBAGE => {
                let junk: Vec<u8> = (0..37)
                    .map(|_| {
                        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                        (seed >> 16) as u8
                    })
                    .collect();
                let _ = s.write_all(&junk).await;
                continue;
            }
            _ => answer(&pdu, &mut holding, b != IGNORE_WRITES),
        };
        if b == LATE {
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        let frame = if rtu {
            let mut f = vec![unit];
            f.extend_from_slice(&reply_pdu);
            let crc = crc16(&f);
            f.extend_from_slice(&crc.to_le_bytes());
            f
        } else {
            let mut f = header.clone();
            if b == WRONG_TRANSACTION {
                f[1] = f[1].wrapping_add(1);
            }
            f.extend_from_slice(&(reply_pdu.len() as u16 + 1).to_be_bytes());
            f.push(unit);
            f.extend_from_slice(&reply_pdu);
            f
        };
        if s.write_all(&frame).await.is_err() {
            return;
        }
    }
}

async fn fake_device(rtu: bool, behaviours: Behaviours) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(serve_connection(s, rtu, behaviours.clone()));
        }
    });
    port
}

fn load(kind: &str, port: u16) -> LoadedConfig {
    let map = temp_file("fast-io.toml", FAST_MAP);
    let dev = |name: &str, unit: u8| {
        format!(
            "[[devices]]\nname = \"{name}\"\nlink = \"l\"\nunit_id = {unit}\nmap = \"{}\"\n",
            map.display()
        )
    };
    let text = format!(
        "{HEAD}{}{}{}[points]\nt2_supply = \"good.t2_supply\"\nvalve1_cmd = \"good.cmd\"\n",
        link_toml("l", kind, port, 200),
        dev("good", 1),
        dev("bad", 2)
    );
    config::load(&temp_file("faults.toml", &text)).unwrap_or_else(|p| panic!("{p}"))
}

/// A fake device with the framing of the link `kind` (`tcp` or `rtu_over_tcp`), the field
/// layer polling it, and the behaviours that steer the fake device.
async fn field_on_fake_device(kind: &str) -> (Behaviours, Arc<FieldShared>, FieldHandle) {
    let behaviours = Behaviours::default();
    let port = fake_device(kind == "rtu_over_tcp", behaviours.clone()).await;
    let loaded = load(kind, port);
    let shared = Arc::new(FieldShared::default());
    let field = FieldHandle::start(
        plan_links(&loaded),
        Arc::new(WallClock),
        Arc::clone(&shared),
    );
    (behaviours, shared, field)
}

/// Wait until both devices have been read.
async fn both_read(shared: &FieldShared) -> Option<()> {
    wait_until(Duration::from_secs(5), || {
        (valid(shared, "good") && valid(shared, "bad")).then_some(())
    })
    .await
}

fn valid(shared: &FieldShared, device: &str) -> bool {
    shared
        .sample(device, "t2_supply", WallClock.mono_s())
        .is_some_and(|s| s.valid)
}

async fn expect_fault_then_recovery(
    shared: &FieldShared,
    behaviours: &Behaviours,
    fault: u8,
    name: &str,
) {
    behaviours.set(2, fault);
    let raised = wait_until(Duration::from_secs(10), || {
        (shared.alarm_conditions().0 && !valid(shared, "bad")).then_some(())
    })
    .await;
    assert!(
        raised.is_some(),
        "{name}: device marked lost and its points invalid"
    );
    // The healthy device on the same link is still read during the fault.
    let before = shared.reading("good", "t2_supply").map(|r| r.read_at_s);
    let fresh = wait_until(Duration::from_secs(10), || {
        let now = shared.reading("good", "t2_supply").map(|r| r.read_at_s);
        (now > before).then_some(())
    })
    .await;
    assert!(fresh.is_some(), "{name}: the good device is still polled");
    behaviours.set(2, NORMAL);
    let cleared = wait_until(Duration::from_secs(10), || {
        (!shared.alarm_conditions().0 && valid(shared, "bad") && valid(shared, "good"))
            .then_some(())
    })
    .await;
    assert!(
        cleared.is_some(),
        "{name}: recovered, alarm condition cleared"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_link_survives_silent_late_exception_and_dropping_devices() {
    let (behaviours, shared, _field) = field_on_fake_device("tcp").await;
    let up = both_read(&shared).await;
    assert!(up.is_some(), "both devices read");
    assert_eq!(
        shared.reading("good", "t2_supply").and_then(|r| r.value),
        Some(55.0)
    );

    for (fault, name) in [
        (SILENT, "never answers"),
        (LATE, "answers after the timeout"),
        (EXCEPTION, "exceptions"),
        (DROP, "drops the connection"),
        (WRONG_TRANSACTION, "answers with a wrong transaction id"),
    ] {
        expect_fault_then_recovery(&shared, &behaviours, fault, name).await;
    }
    let stats = shared.stats();
    assert!(stats["bad"].timeouts > 0 && stats["bad"].exceptions > 0 && stats["bad"].errors > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_an_rtu_over_tcp_link_never_panics_and_recovers() {
    let (behaviours, shared, _field) = field_on_fake_device("rtu_over_tcp").await;
    let up = both_read(&shared).await;
    assert!(up.is_some(), "both nodes read over RTU framing");
    expect_fault_then_recovery(&shared, &behaviours, GARBAGE, "garbage").await;
    expect_fault_then_recovery(&shared, &behaviours, SILENT, "silent RTU node").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_the_device_does_not_keep_raises_the_write_alarm_until_it_sticks() {
    let (behaviours, shared, field) = field_on_fake_device("tcp").await;
    behaviours.set(1, IGNORE_WRITES);
    field.set_write("good", "cmd", 42.0).expect("writable");
    let raised = wait_until(Duration::from_secs(5), || {
        shared.alarm_conditions().1.then_some(())
    })
    .await;
    assert!(
        raised.is_some(),
        "read-back disagreement raises the write alarm"
    );
    behaviours.set(1, NORMAL);
    let cleared = wait_until(Duration::from_secs(5), || {
        (!shared.alarm_conditions().1).then_some(())
    })
    .await;
    assert!(cleared.is_some(), "a verified retry clears it");
    assert!(field.flush_writes(Duration::from_secs(1)).await);
}
