//! The platform face started as the runtime starts it (`heatctl::platform::start` with a
//! face context), fed with station snapshots by the test, against a real Mosquitto: the queue
//! at its cap, TLS with certificates made by openssl, and an ACL that forbids the commands.

#[path = "broker/mod.rs"]
mod broker;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use broker::{Broker, Sub, mosquitto_available, temp_dir};
use heatctl::audit::Audit;
use heatctl::faces::FaceContext;
use heatctl::gate::{Access, Gate};
use heatctl::platform::{self, PlatformHandle};
use heatctl::station::{SnapshotSender, StationSnapshot};

fn config(edit: impl FnOnce(&mut heatctl::config::Platform)) -> heatctl::config::Config {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/substation.example.toml"),
    )
    .expect("example config");
    let mut cfg = heatctl::config::parse_str(&text, None).expect("example config parses");
    let p = &mut cfg.platform;
    p.enabled = true;
    p.site_id = "t".into();
    p.station_id = "st1".into();
    p.username = String::new();
    p.password_file = String::new();
    p.reconnect_min_s = 0.2;
    p.reconnect_max_s = 0.5;
    p.telemetry_period_s = 60.0;
    edit(p);
    cfg
}

fn start(
    cfg: heatctl::config::Config,
    state_dir: &Path,
) -> (
    PlatformHandle,
    SnapshotSender,
    tokio::sync::mpsc::UnboundedReceiver<heatctl::gate::GateMsg>,
) {
    let audit = Audit::in_memory();
    let (gate, rx) = Gate::new(Access::of(&cfg), audit.clone());
    let (tx, snapshots) = tokio::sync::watch::channel(None);
    let ctx = FaceContext {
        snapshots,
        gate,
        audit,
        state_dir: Some(state_dir.to_owned()),
        config: Arc::new(cfg.clone()),
        configs: tokio::sync::watch::channel(Arc::new(cfg.clone())).1,
    };
    let h = platform::start(&cfg.platform, ctx).expect("the link starts");
    (h, tx, rx)
}

/// Publish `n` snapshots, one telemetry period of controller time apart.
async fn feed(tx: &SnapshotSender, from: usize, n: usize) {
    for i in from..from + n {
        let mut s = StationSnapshot::default();
        s.clock.clock_unix_s = 1.8e9 + 60.0 * i as f64;
        tx.send_replace(Some(Arc::new(s)));
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
}

async fn wait(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_the_oldest_and_counts_them() {
    if !mosquitto_available() {
        return;
    }
    let mut broker = Broker::start("");
    let sub = Sub::start(broker.port, "heatctl/t/st1/telemetry");
    broker.stop();
    let url = broker.url();
    let dir = temp_dir("platform-d");
    // 20 kB: about a dozen telemetry messages.
    let cfg = config(|p| {
        p.brokers = vec![url];
        p.queue_max_mb = 0.02;
    });
    let (h, tx, _gate_rx) = start(cfg, &dir);
    feed(&tx, 0, 60).await;
    assert!(
        wait(Duration::from_secs(5), || h.state().dropped_records > 0).await,
        "nothing dropped: {:?}",
        h.state()
    );
    let st = h.state();
    assert!(st.backlog_records < 60, "{st:?}");
    broker.restart();
    assert!(
        wait(Duration::from_secs(15), || h.state().backlog_records == 0).await,
        "backlog not sent: {:?}",
        h.state()
    );
    feed(&tx, 60, 2).await;
    assert!(sub.wait(Duration::from_secs(10), |m| m.len() >= 3));
    let t = sub.json("/telemetry");
    let seqs: Vec<u64> = t.iter().filter_map(|v| v["seq"].as_u64()).collect();
    // The oldest were dropped: the first to arrive is not seq 1, and from there none is lost.
    assert!(seqs[0] > 1, "{seqs:?}");
    let mut firsts: Vec<u64> = Vec::new();
    for s in seqs {
        if !firsts.contains(&s) {
            firsts.push(s);
        }
    }
    assert!(firsts.windows(2).all(|w| w[1] == w[0] + 1), "{firsts:?}");
    // The count travels with the telemetry.
    let last = t.last().expect("telemetry");
    assert!(last["link"]["dropped_records"].as_u64() > Some(0), "{last}");
    h.stop().await;
}

fn openssl(dir: &Path, args: &[&str]) {
    let st = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl");
    assert!(st.success(), "openssl {args:?}");
}

/// A CA and a server certificate for 127.0.0.1, made with the openssl CLI.
fn make_certs(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=heatctl test CA",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").expect("ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    use std::os::unix::fs::PermissionsExt;
    for f in ["ca.crt", "server.crt", "server.key"] {
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_test_certificates_connects() {
    if !mosquitto_available() {
        return;
    }
    let certs = temp_dir("platform-certs");
    make_certs(&certs);
    let broker = Broker::start(&format!(
        "cafile {0}/ca.crt\ncertfile {0}/server.crt\nkeyfile {0}/server.key",
        certs.display()
    ));
    let dir = temp_dir("platform-tls");
    let port = broker.port;
    let ca = certs.join("ca.crt").display().to_string();
    let cfg = config(|p| {
        p.brokers = vec![format!("mqtts://127.0.0.1:{port}")];
        p.ca_file = ca;
    });
    let (h, tx, _gate_rx) = start(cfg, &dir);
    feed(&tx, 0, 3).await;
    assert!(
        wait(Duration::from_secs(10), || {
            let s = h.state();
            s.connected && s.last_ack_unix_s.is_some() && s.backlog_records == 0
        })
        .await,
        "no TLS connection: {:?}",
        h.state()
    );
    // Its own status came back (the broker lets it publish and read): no error.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(h.state().last_error, None);
    h.stop().await;

    // The same broker with a CA that did not sign it: refused, and said so.
    let other = temp_dir("platform-certs2");
    make_certs(&other);
    let ca2 = other.join("ca.crt").display().to_string();
    let cfg = config(|p| {
        p.brokers = vec![format!("mqtts://127.0.0.1:{port}")];
        p.ca_file = ca2;
    });
    let (h, tx, _gate_rx) = start(cfg, &temp_dir("platform-tls2"));
    feed(&tx, 0, 2).await;
    assert!(
        wait(Duration::from_secs(10), || h
            .state()
            .last_error
            .is_some_and(|e| e.contains("TLS")))
        .await,
        "{:?}",
        h.state()
    );
    assert!(!h.state().connected);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acl_forbidding_the_commands_is_reported() {
    if !mosquitto_available() {
        return;
    }
    let acl_dir = temp_dir("platform-acl");
    let acl = acl_dir.join("acl");
    std::fs::write(&acl, "topic readwrite somebody-else/#\n").expect("acl");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&acl, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    let broker = Broker::start(&format!("acl_file {}", acl.display()));
    let url = broker.url();
    let cfg = config(|p| p.brokers = vec![url]);
    let (h, tx, _gate_rx) = start(cfg, &temp_dir("platform-acl-q"));
    feed(&tx, 0, 3).await;
    assert!(
        wait(Duration::from_secs(10), || h
            .state()
            .last_error
            .is_some_and(|e| e.contains("ACL")))
        .await,
        "{:?}",
        h.state()
    );
    assert!(h.state().connected, "{:?}", h.state());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_and_foreign_commands_never_reach_the_controller() {
    if !mosquitto_available() {
        return;
    }
    let broker = Broker::start("");
    // Left on the broker before the station connects: delivered to it as retained.
    broker::publish(
        broker.port,
        "heatctl/t/st1/cmd/curve_shift_k",
        br#"{"id":"ret1","value":1.0}"#,
        true,
    );
    let sub = Sub::start(broker.port, "heatctl/t/st1/cmd/+/ack");
    let url = broker.url();
    let cfg = config(|p| p.brokers = vec![url]);
    let (h, tx, mut gate_rx) = start(cfg, &temp_dir("platform-ret"));
    feed(&tx, 0, 2).await;
    assert!(
        sub.wait(Duration::from_secs(10), |m| !m.is_empty()),
        "no answer to the retained command"
    );
    let acks = sub.json("/ack");
    assert_eq!(acks[0]["id"], "ret1");
    assert_eq!(acks[0]["accepted"], false);
    assert!(
        acks[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("retain")),
        "{}",
        acks[0]
    );
    // Another station's command (same site, a station id sharing a prefix).
    broker::publish(
        broker.port,
        "heatctl/t/st10/cmd/curve_shift_k",
        br#"{"id":"o1","value":1.0}"#,
        false,
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        gate_rx.try_recv().is_err(),
        "a command reached the controller"
    );
    assert_eq!(sub.all().len(), 1, "{:?}", sub.all());
    h.stop().await;
}
