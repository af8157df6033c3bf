//! A fleet on one real broker: 50 stations' platform links in this process (each with its own
//! face context, fed a synthetic snapshot stream with its own figures), one Mosquitto on a
//! free port, and `heatctl fleet --once --json` (the binary) listening to it. Every station
//! must appear with its own figures and online; stations whose link stops cleanly, and
//! stations whose connection is cut (the broker publishes their last will), must show offline.
//!
//! Mosquitto comes from Debian's packages (the shared test broker, `tests/broker`); under CI
//! its absence fails the test.

#[path = "broker/mod.rs"]
mod broker;
#[path = "peers/support.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use heatctl::audit::Audit;
use heatctl::control::{Sample, Signal};
use heatctl::faces::FaceContext;
use heatctl::gate::{Access, Gate, GateReceiver};
use heatctl::platform::{self, PlatformHandle};
use heatctl::station::{Measurement, StationSnapshot};
use serde_json::Value;
use tokio::sync::watch;

const STATIONS: usize = 50;
const SITE: &str = "fleetsite";

/// One simulated station: its platform link and the snapshot stream feeding it.
struct Station {
    id: String,
    outdoor_c: f64,
    snapshots: watch::Sender<Option<Arc<StationSnapshot>>>,
    template: StationSnapshot,
    link: Option<PlatformHandle>,
    _gate_rx: GateReceiver,
}

impl Station {
    /// Publish the next cycle: clock `t` (controller seconds).
    fn cycle(&self, t: f64) {
        let mut s = self.template.clone();
        s.clock.clock_unix_s = t;
        s.clock.wall_unix_s = heatctl::audit::wall_unix_s();
        let _ = self.snapshots.send(Some(Arc::new(s)));
    }
}

fn example_config() -> heatctl::config::Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/substation.example.toml");
    heatctl::config::load(&path)
        .unwrap_or_else(|p| panic!("example configuration: {p}"))
        .config
}

fn start_station(i: usize, port: u16, base: &heatctl::config::Config, root: &Path) -> Station {
    let id = format!("st{i:02}");
    let mut cfg = base.clone();
    cfg.platform = heatctl::config::Platform {
        enabled: true,
        brokers: vec![format!("mqtt://127.0.0.1:{port}")],
        site_id: SITE.into(),
        station_id: id.clone(),
        client_id: format!("fleet-test-{id}"),
        telemetry_period_s: 1.0,
        reconnect_min_s: 0.1,
        reconnect_max_s: 1.0,
        ..heatctl::config::Platform::default()
    };
    let outdoor_c = -20.0 + i as f64 * 0.5;
    let mut template = StationSnapshot::default();
    template.station.site_id = SITE.into();
    template.station.station_id = id.clone();
    template.measurements[Signal::TOut.index()] =
        Measurement::of(Signal::TOut, Some(Sample::fresh(outdoor_c)));
    template.measurements[Signal::T2Supply.index()] =
        Measurement::of(Signal::T2Supply, Some(Sample::fresh(60.0 + i as f64 * 0.1)));
    template.explanation.setpoint_c = Some(61.0);
    template.rooms.stats.percentile_c = Some(18.5 + i as f64 * 0.01);
    template.rooms.at_or_above_floor_pct = Some(90.0);
    let (tx, rx) = watch::channel(None);
    let audit = Audit::in_memory();
    let (gate, gate_rx) = Gate::new(Access::of(&cfg), audit.clone());
    let state_dir = root.join(&id);
    std::fs::create_dir_all(&state_dir).expect("state dir");
    let ctx = FaceContext {
        snapshots: rx,
        gate,
        audit,
        state_dir: Some(state_dir),
        config: Arc::new(cfg.clone()),
        configs: tokio::sync::watch::channel(Arc::new(cfg.clone())).1,
    };
    let link = platform::start(&cfg.platform, ctx);
    assert!(link.is_some(), "the platform link starts for {id}");
    Station {
        id,
        outdoor_c,
        snapshots: tx,
        template,
        link,
        _gate_rx: gate_rx,
    }
}

/// `heatctl fleet --broker ... --once --wait-s N --json`, parsed.
fn fleet_json(port: u16, wait_s: f64) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_heatctl"))
        .args([
            "fleet",
            "--broker",
            &format!("mqtt://127.0.0.1:{port}"),
            "--once",
            "--wait-s",
            &wait_s.to_string(),
            "--json",
        ])
        .output()
        .expect("run heatctl fleet");
    assert!(
        out.status.success(),
        "heatctl fleet failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "heatctl fleet printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn row<'a>(report: &'a Value, id: &str) -> Option<&'a Value> {
    report["stations"]
        .as_array()?
        .iter()
        .find(|r| r["station"] == format!("{SITE}/{id}").as_str())
}

#[test]
fn fifty_stations_on_one_broker_show_in_the_fleet_view_online_then_offline() {
    if !broker::mosquitto_available() {
        return;
    }
    let broker = broker::Broker::start("");
    let port = broker.port;
    let root = support::Scratch::new(&format!("heatctl-fleet-test-{}-{port}", std::process::id()));
    let base = example_config();

    // Stations 0..40 and the cleanly stopped ones run here; the last 5 run on a runtime of
    // their own, which is shut down without a goodbye: their TCP connections close without
    // DISCONNECT, so the broker publishes their last will.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let doomed_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let mut stations: Vec<Station> = (0..STATIONS)
        .map(|i| {
            let _enter = if i >= STATIONS - 5 {
                doomed_rt.enter()
            } else {
                rt.enter()
            };
            start_station(i, port, &base, &root)
        })
        .collect();

    // Feed one cycle per 200 ms of real time, one controller second each (a telemetry
    // message per cycle), until every link says it is connected.
    let mut t = 1_800_000_000.0;
    let mut feed = |stations: &[Station], n: usize| {
        for _ in 0..n {
            t += 1.0;
            for s in stations {
                s.cycle(t);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let connected = support::wait_for(Duration::from_secs(60), || {
        feed(&stations, 1);
        stations
            .iter()
            .all(|s| s.link.as_ref().is_some_and(|l| l.state().connected))
            .then_some(())
    });
    assert!(
        connected.is_some(),
        "every station's link connects: {:?}",
        stations
            .iter()
            .filter_map(|s| s.link.as_ref().map(|l| (s.id.clone(), l.state())))
            .filter(|(_, st)| !st.connected)
            .take(3)
            .collect::<Vec<_>>()
    );

    // The fleet view, while the stations keep publishing.
    let report = std::thread::scope(|sc| {
        let viewer = sc.spawn(|| fleet_json(port, 4.0));
        while !viewer.is_finished() {
            feed(&stations, 1);
        }
        viewer.join().expect("viewer thread")
    });
    assert_eq!(report["stations_total"], STATIONS, "{report:#}");
    assert_eq!(report["stations_online"], STATIONS, "{report:#}");
    assert_eq!(report["connected"], true);
    for s in &stations {
        let r = row(&report, &s.id).unwrap_or_else(|| panic!("{} missing", s.id));
        assert_eq!(r["online"], true, "{r:#}");
        let outdoor = r["outdoor_c"].as_f64();
        assert!(
            outdoor.is_some_and(|o| (o - s.outdoor_c).abs() < 1e-9),
            "{}: outdoor {outdoor:?}, published {}",
            s.id,
            s.outdoor_c
        );
        assert_eq!(r["setpoint_c"].as_f64(), Some(61.0), "{r:#}");
        assert!(r["backlog_records"].is_u64(), "backlog carried: {r:#}");
        assert!(r["last_seen_utc"].is_string(), "{r:#}");
    }

    // Five stations stop their link cleanly ("offline" published), five lose their
    // connection (the last will).
    rt.block_on(async {
        for s in &mut stations[STATIONS - 10..STATIONS - 5] {
            if let Some(l) = s.link.take() {
                l.stop().await;
            }
        }
    });
    for s in &mut stations[STATIONS - 5..] {
        // Dropped with its runtime below; never stopped.
        std::mem::forget(s.link.take());
    }
    doomed_rt.shutdown_background();

    let report = std::thread::scope(|sc| {
        let viewer = sc.spawn(|| fleet_json(port, 2.0));
        while !viewer.is_finished() {
            feed(&stations[..STATIONS - 10], 1);
        }
        viewer.join().expect("viewer thread")
    });
    assert_eq!(report["stations_total"], STATIONS, "{report:#}");
    assert_eq!(report["stations_online"], STATIONS - 10, "{report:#}");
    assert_eq!(report["stations_offline"], 10, "{report:#}");
    for (i, s) in stations.iter().enumerate() {
        let r = row(&report, &s.id).unwrap_or_else(|| panic!("{} missing", s.id));
        assert_eq!(r["online"], i < STATIONS - 10, "{}: {r:#}", s.id);
    }

    rt.block_on(async {
        for s in &mut stations {
            if let Some(l) = s.link.take() {
                l.stop().await;
            }
        }
    });
    drop(broker);
    drop(root);
}

/// Run `tool` with `args` in `dir`; panics with its output when it fails.
fn run_tool(dir: &Path, tool: &str, args: &[&str]) {
    let out = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for 127.0.0.1 (openssl), made in `dir`.
fn make_certs(dir: &Path) {
    run_tool(
        dir,
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=heatctl test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ],
    );
    run_tool(
        dir,
        "openssl",
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("san.ext");
    run_tool(
        dir,
        "openssl",
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
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.crt",
        ],
    );
}

/// `heatctl fleet --once --json` with extra arguments: (success, stdout, stderr).
fn fleet_with(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_heatctl"))
        .arg("fleet")
        .args(args)
        .args(["--once", "--wait-s", "2", "--json"])
        .output()
        .expect("run heatctl fleet");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_fleet_view_reads_a_tls_broker_with_a_password_and_refuses_a_wrong_one() {
    if !broker::mosquitto_available() {
        return;
    }
    let openssl_found = Command::new("openssl").arg("version").output().is_ok();
    if !support::require("openssl", openssl_found) {
        return;
    }
    let certs = broker::temp_dir("fleet-tls");
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&certs, std::fs::Permissions::from_mode(0o755));
    }
    make_certs(&certs);
    run_tool(
        &certs,
        "mosquitto_passwd",
        &["-b", "-c", "passwd", "viewer", "s3cret"],
    );
    for f in ["server.key", "passwd"] {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(certs.join(f), std::fs::Permissions::from_mode(0o644));
    }
    std::fs::write(certs.join("good-password"), "s3cret\n").expect("password file");
    std::fs::write(certs.join("bad-password"), "guess\n").expect("password file");
    let c = |f: &str| certs.join(f).display().to_string();
    let broker = broker::Broker::start(&format!(
        "cafile {}\ncertfile {}\nkeyfile {}\npassword_file {}\nallow_anonymous false\n",
        c("ca.crt"),
        c("server.crt"),
        c("server.key"),
        c("passwd")
    ));
    let port = broker.port.to_string();
    // A station's retained status, published over TLS with the password.
    let out = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "--cafile",
            &c("ca.crt"),
            "-u",
            "viewer",
            "-P",
            "s3cret",
            "-r",
            "-q",
            "1",
            "-t",
            "heatctl/tls/st1/status",
            "-m",
            r#"{"status":"online"}"#,
        ])
        .output()
        .expect("mosquitto_pub");
    assert!(
        out.status.success(),
        "mosquitto_pub over TLS: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = format!("mqtts://127.0.0.1:{port}");
    let (ok, stdout, stderr) = fleet_with(&[
        "--broker",
        &url,
        "--ca-file",
        &c("ca.crt"),
        "--username",
        "viewer",
        "--password-file",
        &c("good-password"),
    ]);
    assert!(ok, "fleet over TLS failed: {stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(report["stations_total"], 1, "{report:#}");
    assert_eq!(report["stations"][0]["station"], "tls/st1");
    assert_eq!(report["stations"][0]["online"], true);

    // A wrong password, a plain connection to the TLS port, an untrusted CA: no table, an error.
    let (ok, _, stderr) = fleet_with(&[
        "--broker",
        &url,
        "--ca-file",
        &c("ca.crt"),
        "--username",
        "viewer",
        "--password-file",
        &c("bad-password"),
    ]);
    assert!(!ok, "a wrong password was accepted");
    assert!(stderr.contains("could not connect"), "{stderr}");
    let (ok, _, stderr) = fleet_with(&[
        "--broker",
        &format!("mqtt://127.0.0.1:{port}"),
        "--username",
        "viewer",
        "--password-file",
        &c("good-password"),
    ]);
    assert!(!ok, "plain MQTT to a TLS port gave a table");
    assert!(stderr.contains("could not connect"), "{stderr}");
    let other = broker::temp_dir("fleet-tls-other");
    make_certs(&other);
    let (ok, _, stderr) = fleet_with(&[
        "--broker",
        &url,
        "--ca-file",
        &other.join("ca.crt").display().to_string(),
        "--username",
        "viewer",
        "--password-file",
        &c("good-password"),
    ]);
    assert!(
        !ok,
        "a broker certificate from an untrusted CA was accepted"
    );
    assert!(stderr.contains("could not connect"), "{stderr}");
    drop(broker);
    let _ = std::fs::remove_dir_all(&certs);
    let _ = std::fs::remove_dir_all(&other);
}
