//! Room readings by MQTT for some nodes and by Modbus for others, against a real Mosquitto
//! broker and the plant simulator, with the real runtime in this process
//! (`heatctl::runtime::run_embedded`), observed through its station snapshots.
//!
//! * The plant (the `closed-demo` scenario: 4 buildings, 48 room nodes) is served on loopback;
//!   the demo tuning is bound to it. Building 0's room gateway is reached through a TCP relay
//!   the test can cut (a gateway that stops); building 1's nodes are moved to an mqtt link: the
//!   test publishes the plant's own node readings on one topic per node, as a wireless
//!   collector's platform would. An outdoor forecast is published on a value of that link.
//! * The controller's clock boots in 1970, not synchronised, while the collector stamps the
//!   forecast with today's time: the forecast is aged from its arrival and used. NTP then
//!   sets the clock (synchronised): message times are used again, and the forecast goes stale
//!   by its measurement time once it stops.
//! * Everything runs on a clock 60 times faster than real time (plant and controller alike);
//!   every time in an assertion is clock time, and no duration is asserted. Wall-clock limits
//!   only stop a hung test.
//! * Needs `mosquitto` (Debian package mosquitto): without it the test is skipped, or fails when
//!   the environment variable CI is set.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "peers/scratch.rs"]
mod scratch;
use scratch::Scratch;

use heatctl::config::{self, LoadedConfig};
use heatctl::control::{Rejection, Signal};
use heatctl::runtime::{self, Clock, Embedding, RunOptions, ScaledClock, SteppableClock};
use heatctl::station::StationSnapshot;
use heatctl_plant::binding::{DEMO_TOML, DEVICE_MAPS, bind_to_plant};
use heatctl_plant::naming::room_node_id;
use heatctl_plant::serve::{ServeOptions, lock};
use heatctl_plant::{Plant, Scenario, SharedPlant};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use toml::{Table, Value};

/// Clock seconds per real second (plant and controller).
const SPEED: f64 = 60.0;
/// `[signals.room] max_age_s` of the test: 15 clock minutes, the shortest heatctl accepts with
/// mqtt nodes.
const ROOM_MAX_AGE_S: f64 = 900.0;
/// `[signals.t_out_forecast] max_age_s` of the test.
const FORECAST_MAX_AGE_S: f64 = 1800.0;
/// The forecast the test publishes, °C.
const FORECAST_C: f64 = -7.5;
const FORECAST_TOPIC: &str = "test/platform/forecast";

fn wall_unix_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A Mosquitto broker on a free loopback port, stopped (its process killed) on drop.
struct Broker {
    child: Child,
    port: u16,
    _dir: Scratch,
}

impl Broker {
    /// Start one, or None when mosquitto is not installed (a failure when CI is set).
    fn start() -> Option<Broker> {
        let found = Command::new("mosquitto")
            .arg("-h")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            assert!(
                std::env::var_os("CI").is_none(),
                "mosquitto is not installed (apt-get install mosquitto mosquitto-clients)"
            );
            eprintln!("SKIPPED: mosquitto is not installed");
            return None;
        }
        let dir = Scratch::new(&format!("heatctl-mqtt-rooms-{}", std::process::id()));
        let port = free_port();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .expect("mosquitto.conf");
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto starts");
        let broker = Broker {
            child,
            port,
            _dir: dir,
        };
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < until, "mosquitto did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(broker)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP relay in front of a gateway; `cut` stops it (the gateway seems to stop: open
/// connections close, new ones are refused).
struct Relay {
    addr: SocketAddr,
    accept: JoinHandle<()>,
    conns: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
}

impl Relay {
    async fn start(upstream: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("relay binds");
        let addr = listener.local_addr().expect("relay address");
        let conns: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let c = Arc::clone(&conns);
        let accept = tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    if let Ok(mut up) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                c.lock().expect("relay lock").push(task);
            }
        });
        Relay {
            addr,
            accept,
            conns,
        }
    }

    fn cut(&self) {
        self.accept.abort();
        for t in self.conns.lock().expect("relay lock").drain(..) {
            t.abort();
        }
    }
}

fn set(t: &mut Table, path: &str, v: impl Into<Value>) {
    let mut keys: Vec<&str> = path.split('.').collect();
    let last = keys.pop().expect("a key");
    let mut t = t;
    for k in keys {
        t = t
            .entry(k)
            .or_insert_with(|| Value::Table(Table::new()))
            .as_table_mut()
            .expect("a table");
    }
    t.insert(last.into(), v.into());
}

fn node_topic(id: &str) -> String {
    format!("test/iot/{id}/up")
}

/// The demo tuning bound to the plant, with building 0's gateway behind `relay` and building
/// 1's nodes on the mqtt link `iot`. Returns the configuration and the ids of the nodes by
/// building.
fn config(
    plant: &Plant,
    addrs: &heatctl_plant::FaceAddresses,
    relay: SocketAddr,
    broker_port: u16,
) -> (LoadedConfig, Vec<Vec<String>>) {
    let mut base: Table = DEMO_TOML.parse().expect("the demo tuning parses");
    // The plant's outdoor temperature is constant: no frozen-transmitter verdict on it.
    set(&mut base, "signals.t_out.stuck_after_s", 0.0);
    set(&mut base, "signals.room.max_age_s", ROOM_MAX_AGE_S);
    set(
        &mut base,
        "signals.t_out_forecast.max_age_s",
        FORECAST_MAX_AGE_S,
    );
    set(&mut base, "points.t_out_forecast", "iot.forecast");
    let text = bind_to_plant(&toml::to_string(&base).expect("toml"), plant, addrs);
    let mut cfg: Table = text.parse().expect("the bound configuration parses");

    let gw0 = addrs.room_gateways[0].addr;
    let gw0_port = i64::from(gw0.port());
    let links = cfg
        .get_mut("links")
        .and_then(Value::as_array_mut)
        .expect("[[links]]");
    let mut relayed = 0;
    for l in links.iter_mut().filter_map(Value::as_table_mut) {
        // Real-time Modbus timings: the back-off is not scaled by the clock.
        l.insert("timeout_ms".into(), 200.into());
        l.insert("reconnect_min_ms".into(), 100.into());
        l.insert("reconnect_max_ms".into(), 1000.into());
        if l.get("port").and_then(Value::as_integer) == Some(gw0_port) {
            l.insert("host".into(), relay.ip().to_string().into());
            l.insert("port".into(), i64::from(relay.port()).into());
            relayed += 1;
        }
    }
    assert_eq!(relayed, 1, "building 0's gateway is one link");
    let mut iot = Table::new();
    iot.insert("name".into(), "iot".into());
    iot.insert("kind".into(), "mqtt".into());
    iot.insert(
        "broker".into(),
        format!("mqtt://127.0.0.1:{broker_port}").into(),
    );
    iot.insert("reconnect_min_ms".into(), 100.into());
    iot.insert("reconnect_max_ms".into(), 1000.into());
    let mut forecast = Table::new();
    forecast.insert("name".into(), "forecast".into());
    forecast.insert("topic".into(), FORECAST_TOPIC.into());
    forecast.insert("json_field".into(), "t_out_6h_c".into());
    forecast.insert("time_field".into(), "ts".into());
    iot.insert("values".into(), Value::Array(vec![Value::Table(forecast)]));
    links.push(Value::Table(iot));

    let mut by_building: Vec<Vec<String>> = vec![Vec::new(); addrs.room_gateways.len()];
    for k in 0..plant.room_node_count() {
        let r = plant.room_node(k).expect("a node");
        by_building[r.building].push(room_node_id(r.building, r.floor, r.unit));
    }
    let nodes = cfg
        .get_mut("rooms")
        .and_then(|r| r.get_mut("nodes"))
        .and_then(Value::as_array_mut)
        .expect("[rooms] nodes");
    let mut moved = 0;
    for n in nodes.iter_mut().filter_map(Value::as_table_mut) {
        let id = n.get("id").and_then(Value::as_str).expect("id").to_owned();
        if by_building[1].contains(&id) {
            n.remove("unit_id");
            n.insert("link".into(), "iot".into());
            n.insert("topic".into(), node_topic(&id).into());
            n.insert("json_field".into(), "temp_c".into());
            moved += 1;
        }
    }
    assert_eq!(moved, by_building[1].len());
    let text = toml::to_string(&cfg).expect("toml");
    let loaded = config::parse_with_maps(&text, Path::new("mqtt-rooms.toml"), &DEVICE_MAPS)
        .unwrap_or_else(|p| panic!("the test configuration is invalid:\n{p}"));
    (loaded, by_building)
}

/// What the test publishes: each node's reading as the plant has it (None: that node is
/// silent), and the forecast while `forecast` holds.
#[derive(Debug, Clone)]
struct Publishing {
    silent: Vec<String>,
    forecast: bool,
    malformed_to: Option<String>,
}

async fn publisher(
    port: u16,
    collector_clock: Arc<ScaledClock>,
    shared: SharedPlant,
    nodes: Vec<(String, usize)>,
    what: watch::Receiver<Publishing>,
) {
    let mut o = MqttOptions::new("test-collector", "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(o, 256);
    tokio::spawn(async move {
        loop {
            if events.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let mut sent_malformed = false;
    loop {
        let p = what.borrow().clone();
        let readings: Vec<(String, Option<f64>)> = {
            let plant = lock(&shared);
            nodes
                .iter()
                .map(|(id, k)| {
                    (
                        id.clone(),
                        plant.room_node(*k).and_then(|r| r.temperature_c),
                    )
                })
                .collect()
        };
        for (id, t) in readings {
            if p.silent.contains(&id) {
                continue;
            }
            let Some(t) = t else { continue };
            let body = format!(r#"{{"temp_c": {t}, "rssi_dbm": -97}}"#);
            let _ = client
                .publish(node_topic(&id), QoS::AtLeastOnce, false, body)
                .await;
        }
        if let (Some(id), false) = (&p.malformed_to, sent_malformed) {
            for bad in ["not json", r#"{"temp_c": "21.0"}"#] {
                let _ = client
                    .publish(node_topic(id), QoS::AtLeastOnce, false, bad)
                    .await;
            }
            sent_malformed = true;
        }
        if p.forecast {
            // Stamped on the collector's clock: today, 60 times faster than real time.
            let body = format!(
                r#"{{"t_out_6h_c": {FORECAST_C}, "ts": {}}}"#,
                collector_clock.wall_s()
            );
            let _ = client
                .publish(FORECAST_TOPIC, QoS::AtLeastOnce, false, body)
                .await;
        }
        // Every 30 clock seconds (wireless collectors report less often; the age check is what
        // matters here, not the rate).
        tokio::time::sleep(Duration::from_secs_f64(30.0 / SPEED)).await;
    }
}

fn state<'a>(s: &'a StationSnapshot, id: &str) -> &'a str {
    s.rooms
        .nodes
        .iter()
        .find(|n| n.id == id)
        .map_or("absent", |n| n.state)
}

/// Wait (at most `limit` real time) for a snapshot that satisfies `ok`; panic with `what` and
/// the last snapshot's node states otherwise.
async fn wait_for(
    rx: &mut watch::Receiver<Option<Arc<StationSnapshot>>>,
    limit: Duration,
    what: &str,
    ok: impl Fn(&StationSnapshot) -> bool,
) -> Arc<StationSnapshot> {
    let until = Instant::now() + limit;
    loop {
        if let Some(s) = rx.borrow().clone()
            && ok(&s)
        {
            return s;
        }
        if Instant::now() > until {
            let s = rx.borrow().clone();
            let states: Vec<(String, &str)> = s
                .as_ref()
                .map(|s| {
                    s.rooms
                        .nodes
                        .iter()
                        .map(|n| (n.id.clone(), n.state))
                        .collect()
                })
                .unwrap_or_default();
            panic!("timed out waiting for: {what}\nnode states: {states:?}");
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), rx.changed()).await;
    }
}

#[test]
fn mqtt_and_modbus_room_nodes_are_both_used_and_go_stale_alike() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run(broker.port));
    drop(broker);
}

async fn run(broker_port: u16) {
    let mut sc = Scenario::shipped("closed-demo").expect("the closed-demo scenario");
    sc.weather.constant_outdoor_c = Some(-5.0);
    let plant = Plant::new(&sc).expect("plant");
    let server = heatctl_plant::serve_with(plant, ServeOptions::at_speed(SPEED))
        .await
        .expect("the plant is served");
    let shared = server.plant();
    let addrs = server.addresses().clone();
    let relay = Relay::start(addrs.room_gateways[0].addr).await;
    let (loaded, by_building) = {
        let p = lock(&shared);
        config(&p, &addrs, relay.addr, broker_port)
    };
    let modbus_cut = by_building[0].clone();
    let mqtt_nodes = by_building[1].clone();
    let modbus_kept: Vec<String> = by_building[2..].concat();
    assert!(modbus_cut.len() >= 3 && mqtt_nodes.len() >= 3);
    let silent = mqtt_nodes[0].clone();
    let garbled = mqtt_nodes[1].clone();

    let plant_index: Vec<(String, usize)> = {
        let p = lock(&shared);
        (0..p.room_node_count())
            .filter_map(|k| p.room_node(k).map(|r| (k, r)))
            .map(|(k, r)| (room_node_id(r.building, r.floor, r.unit), k))
            .filter(|(id, _)| mqtt_nodes.contains(id))
            .collect()
    };
    let (publish_tx, publish_rx) = watch::channel(Publishing {
        silent: Vec::new(),
        forecast: true,
        malformed_to: None,
    });
    // The collector's clock is right; the controller's boots in 1970, not synchronised.
    let collector_clock = Arc::new(ScaledClock::starting_at(wall_unix_s(), SPEED));
    let clock = Arc::new(SteppableClock::starting_at(12.0, SPEED));
    clock.set_synced(Some(false));
    let pub_task = tokio::spawn(publisher(
        broker_port,
        Arc::clone(&collector_clock),
        shared.clone(),
        plant_index,
        publish_rx,
    ));

    let (stop_tx, stop_rx) = watch::channel(false);
    let (snap_tx, mut snap_rx) = watch::channel(None);
    let controller = tokio::spawn(runtime::run_embedded(
        RunOptions {
            config_path: loaded.path.clone(),
            dry_run: false,
            clock: Arc::clone(&clock) as Arc<dyn Clock>,
            state_path: None,
            state_dir: None,
        },
        Embedding {
            loaded,
            stop: stop_rx,
            snapshots: snap_tx,
        },
    ));

    // 1. Both kinds of nodes are used by the demand correction.
    let ok_states = ["used", "outlier"];
    let s = wait_for(
        &mut snap_rx,
        Duration::from_secs(90),
        "every node used (or an outlier), most of them used",
        |s| {
            let all = modbus_cut.iter().chain(&mqtt_nodes).chain(&modbus_kept);
            all.clone().all(|id| ok_states.contains(&state(s, id)))
                && mqtt_nodes
                    .iter()
                    .filter(|id| state(s, id) == "used")
                    .count()
                    * 2
                    > mqtt_nodes.len()
                && modbus_cut
                    .iter()
                    .filter(|id| state(s, id) == "used")
                    .count()
                    * 2
                    > modbus_cut.len()
        },
    )
    .await;
    let mqtt_used = mqtt_nodes
        .iter()
        .filter(|id| state(&s, id) == "used")
        .count();
    let modbus_used = modbus_cut
        .iter()
        .chain(&modbus_kept)
        .filter(|id| state(&s, id) == "used")
        .count();
    assert_eq!(s.rooms.stats.used, mqtt_used + modbus_used);
    assert_eq!(
        s.rooms.stats.expected,
        mqtt_nodes.len() + modbus_cut.len() + modbus_kept.len()
    );
    // An MQTT node's value is the plant's reading, as the Modbus ones are.
    let row = s
        .rooms
        .nodes
        .iter()
        .find(|n| n.id == mqtt_nodes[2])
        .expect("row");
    assert!(
        row.value_c.is_some_and(|v| (5.0..35.0).contains(&v)),
        "{row:?}"
    );
    // The nodes show as devices of the mqtt link, answering.
    let dev = s
        .devices
        .iter()
        .find(|d| d.name == format!("room:{}", mqtt_nodes[2]))
        .expect("an mqtt node is a device");
    assert_eq!(dev.link, "iot");
    assert!(
        dev.connected && dev.stats.requests > 0 && dev.stats.errors == 0,
        "{dev:?}"
    );
    // The forecast is a measurement, accepted.
    let f = &s.measurements[Signal::TOutForecast.index()];
    assert_eq!(f.value, Some(FORECAST_C));
    assert!(f.valid && f.rejected.is_none(), "{f:?}");
    assert!(
        !s.explanation
            .rejected
            .iter()
            .any(|r| r.signal == Signal::TOutForecast)
    );

    // The forecast, stamped 56 years after the controller's clock, is aged from its arrival.
    assert!(s.clock.clock_unix_s < 1e9 && s.clock.synced == Some(false));
    assert!(f.age_s.is_some_and(|a| a < 300.0), "{f:?}");

    // NTP sets the controller's clock: synchronised, message times used from now on.
    clock.set_wall(collector_clock.wall_s());
    clock.set_synced(Some(true));

    // 2. Malformed messages are counted against their node, never taken as readings.
    publish_tx.send_modify(|p| p.malformed_to = Some(garbled.clone()));
    let s = wait_for(
        &mut snap_rx,
        Duration::from_secs(30),
        "two malformed messages counted",
        |s| {
            s.devices
                .iter()
                .any(|d| d.name == format!("room:{garbled}") && d.stats.errors == 2)
        },
    )
    .await;
    let row = s.rooms.nodes.iter().find(|n| n.id == garbled).expect("row");
    assert!(
        row.value_c.is_some_and(|v| (5.0..35.0).contains(&v)),
        "{row:?}"
    );

    // 3. One mqtt node falls silent, building 0's gateway stops, the forecast stops.
    let cut_at_s = s.clock.clock_unix_s;
    publish_tx.send_modify(|p| {
        p.silent.push(silent.clone());
        p.forecast = false;
    });
    relay.cut();
    let s = wait_for(
        &mut snap_rx,
        Duration::from_secs(90),
        "the silent mqtt node stale, building 0's nodes invalid",
        |s| state(s, &silent) == "stale" && modbus_cut.iter().all(|id| state(s, id) == "invalid"),
    )
    .await;
    // Stale only once its reading is older than the room max age, like any node.
    let row = s.rooms.nodes.iter().find(|n| n.id == silent).expect("row");
    assert!(row.age_s.is_some_and(|a| a > ROOM_MAX_AGE_S), "{row:?}");
    assert!(s.clock.clock_unix_s - cut_at_s > ROOM_MAX_AGE_S);
    // Neither is used any more; the other mqtt nodes and the Modbus nodes still answering are.
    for id in mqtt_nodes.iter().skip(1).chain(&modbus_kept) {
        assert!(
            ok_states.contains(&state(&s, id)),
            "{id}: {}",
            state(&s, id)
        );
    }
    let used_now = mqtt_nodes
        .iter()
        .chain(&modbus_kept)
        .filter(|id| state(&s, id) == "used")
        .count();
    assert_eq!(s.rooms.stats.used, used_now);
    assert!(s.rooms.stats.used < mqtt_used + modbus_used);

    // 4. The forecast is rejected as stale after its max age.
    let s = wait_for(
        &mut snap_rx,
        Duration::from_secs(90),
        "the forecast rejected as stale",
        |s| s.measurements[Signal::TOutForecast.index()].rejected == Some(Rejection::Stale),
    )
    .await;
    assert!(s.clock.clock_unix_s - cut_at_s > FORECAST_MAX_AGE_S);
    assert_eq!(s.clock.synced, Some(true));
    assert!(
        s.explanation
            .rejected
            .iter()
            .any(|r| r.signal == Signal::TOutForecast && r.reason == Rejection::Stale)
    );

    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(20), controller).await;
    pub_task.abort();
    server.shutdown().await;
}
