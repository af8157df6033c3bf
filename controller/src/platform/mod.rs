//! The platform face: the link to the utility's MQTT broker.
//!
//! Three tasks and a thread, none of them touched by the control cycle:
//! - the producer reads the station snapshots from the watch channel and the audit log's
//!   broadcast, and turns them into messages (telemetry every `telemetry_period_s` of
//!   controller time, state, alarm events, audit records);
//! - the queue thread ([`store`]) numbers each message (`seq` per topic), appends it to the
//!   [`queue::DiskQueue`] in `<state dir>/platform-queue`, reads it back for sending and
//!   removes it at the broker's acknowledgement;
//! - the link drives the MQTT client (rumqttc) itself: connects to the brokers in turn with
//!   exponential back-off and full jitter, publishes the queue's records in order at QoS 1
//!   with a bounded window in flight, and acknowledges a record in the queue only at the
//!   broker's PUBACK for it. A fresh client is made for every connection, so nothing is ever
//!   left in the client's own memory queue: after a reconnection the queue is sent again from
//!   its oldest unacknowledged record (QoS 1: duplicates possible, losses not);
//! - the command task answers `cmd/{name}` messages through the settings gate.
//!
//! The topics and payloads are in [`payload`] (`heatctl platform-schema`).

pub mod payload;
pub mod queue;
mod store;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, LastWill, MqttOptions, Outgoing,
    Packet, QoS, SubscribeReasonCode, TlsConfiguration, Transport,
};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::audit::wall_unix_s;
use crate::config::{BrokerUrl, Platform};
use crate::faces::FaceContext;
use crate::gate::{Change, ChangeOutcome, ChangeRequest, Gate, Source};
use crate::station::PlatformLinkState;
use payload::Origin;
use store::{Outgoing as Message, Store};

/// How long a stopping link waits for the broker's acknowledgements of its last messages.
pub const STOP_GRACE: Duration = Duration::from_millis(500);
/// Records published and not yet acknowledged by the broker, at most.
const WINDOW: usize = 32;
/// Largest MQTT packet taken from or sent to the broker (a larger one drops the connection;
/// commands are refused above `command_max_bytes`, which is smaller).
const MAX_PACKET_BYTES: usize = 16 << 20;
/// How long the station's own "online" status may take to come back from the broker.
const ECHO_LIMIT: Duration = Duration::from_secs(5);
/// The words of the error when it does not come back.
const ECHO_WORDS: &str = "did not deliver the station's own status back";
/// Where the system's certificate authorities are (Debian's ca-certificates).
const SYSTEM_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The running platform link.
#[derive(Debug)]
pub struct PlatformHandle {
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    state: watch::Receiver<PlatformLinkState>,
    store: Option<Store>,
}

impl PlatformHandle {
    /// The link's state now.
    #[must_use]
    pub fn state(&self) -> PlatformLinkState {
        let mut s = self.state.borrow().clone();
        if let Some(store) = &self.store {
            let st = *store.stats.borrow();
            s.backlog_records = st.backlog_records;
            s.dropped_records = st.dropped_records;
        }
        s
    }

    /// Stop the link: "offline" published when connected (for at most [`STOP_GRACE`]), the
    /// queue fsynced. A command waiting for the controller is not waited for (the controller
    /// may be what stops the link, applying a pushed configuration): its answer goes to the
    /// queue of the link started next in the same directory.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let abort = t.abort_handle();
            if tokio::time::timeout(STOP_GRACE * 2, t).await.is_err() {
                abort.abort();
            }
        }
        if let Some(store) = &self.store {
            store.stop().await;
            current_stores().retain(|_, s| !s.same(store));
        }
    }
}

/// The queue in use in each directory: where an answer to a command goes when the link that
/// took the command was restarted meanwhile.
fn current_stores() -> std::sync::MutexGuard<'static, BTreeMap<PathBuf, Store>> {
    static STORES: std::sync::OnceLock<std::sync::Mutex<BTreeMap<PathBuf, Store>>> =
        std::sync::OnceLock::new();
    STORES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The topics of one station.
#[derive(Debug, Clone)]
struct Topics {
    /// `{prefix}/{site}/{station}`.
    base: String,
}

impl Topics {
    fn of(&self, suffix: &str) -> String {
        format!("{}/{suffix}", self.base)
    }
}

/// Everything the link needs, resolved from the configuration at start.
#[derive(Debug, Clone)]
struct Settings {
    brokers: Vec<BrokerUrl>,
    client_id: String,
    username: String,
    password: Result<Option<String>, String>,
    tls: Option<Result<Arc<rustls::ClientConfig>, String>>,
    keepalive: Duration,
    reconnect_min_s: f64,
    reconnect_max_s: f64,
    telemetry_period_s: f64,
    command_max_bytes: usize,
    writable: Vec<String>,
    topics: Topics,
    origin: Origin,
}

fn read_password(path: &str) -> Result<Option<String>, String> {
    if path.is_empty() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read platform.password_file {path:?}: {e}"))?;
    Ok(Some(text.lines().next().unwrap_or("").to_owned()))
}

/// The rustls client configuration (ring provider) of `cfg`.
fn tls_config(cfg: &Platform) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let ca = if cfg.ca_file.is_empty() {
        SYSTEM_CA_FILE
    } else {
        &cfg.ca_file
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca)
        .map_err(|e| format!("cannot read the CA file {ca:?}: {e}"))?;
    for c in certs {
        let c = c.map_err(|e| format!("bad certificate in {ca:?}: {e}"))?;
        roots
            .add(c)
            .map_err(|e| format!("bad certificate in {ca:?}: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("no certificate in the CA file {ca:?}"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?
        .with_root_certificates(roots);
    let config = if cfg.client_cert_file.is_empty() {
        builder.with_no_client_auth()
    } else {
        let chain = CertificateDer::pem_file_iter(&cfg.client_cert_file)
            .map_err(|e| format!("cannot read {:?}: {e}", cfg.client_cert_file))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("bad certificate in {:?}: {e}", cfg.client_cert_file))?;
        let key = PrivateKeyDer::from_pem_file(&cfg.client_key_file)
            .map_err(|e| format!("cannot read the key {:?}: {e}", cfg.client_key_file))?;
        builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("client certificate: {e}"))?
    };
    Ok(Arc::new(config))
}

impl Settings {
    fn of(cfg: &Platform, site_name: &str) -> Self {
        let station_id = cfg.station_id_or(site_name);
        let brokers: Vec<BrokerUrl> = cfg
            .brokers
            .iter()
            .filter_map(|u| BrokerUrl::parse(u).ok())
            .collect();
        let tls = brokers.iter().any(|b| b.tls).then(|| tls_config(cfg));
        Self {
            client_id: cfg.client_id_or(site_name),
            username: cfg.username.clone(),
            password: read_password(&cfg.password_file),
            tls,
            keepalive: Duration::from_secs_f64(cfg.keepalive_s.clamp(5.0, 3600.0)),
            reconnect_min_s: cfg.reconnect_min_s.max(0.05),
            reconnect_max_s: cfg.reconnect_max_s.max(cfg.reconnect_min_s.max(0.05)),
            telemetry_period_s: cfg.telemetry_period_s.max(0.001),
            command_max_bytes: cfg.command_max_bytes.max(0.0) as usize,
            writable: cfg.writable.clone(),
            topics: Topics {
                base: format!("{}/{}/{}", cfg.topic_prefix, cfg.site_id, station_id),
            },
            origin: Origin {
                site_id: cfg.site_id.clone(),
                station_id,
            },
            brokers,
        }
    }
}

/// The queue's directory: `<state dir>/platform-queue`, or one in the temp dir.
fn queue_dir(ctx: &FaceContext, station_id: &str) -> PathBuf {
    match &ctx.state_dir {
        Some(d) => d.join("platform-queue"),
        None => {
            let d = std::env::temp_dir().join(format!("heatctl-platform-queue-{station_id}"));
            tracing::warn!(
                queue = %d.display(),
                "platform: no state directory (heatctl run --state-dir): the queue is kept in the temp directory and may not survive a reboot"
            );
            d
        }
    }
}

/// Start the link when `[platform]` enables it.
#[must_use]
pub fn start(cfg: &Platform, ctx: FaceContext) -> Option<PlatformHandle> {
    if !cfg.enabled {
        return None;
    }
    let settings = Arc::new(Settings::of(cfg, &ctx.config.site.name));
    let (state_tx, state) = watch::channel(PlatformLinkState {
        broker: settings
            .brokers
            .first()
            .map(ToString::to_string)
            .unwrap_or_default(),
        ..PlatformLinkState::default()
    });
    let (stop, stop_rx) = watch::channel(false);
    let dir = queue_dir(&ctx, &settings.origin.station_id);
    let max_bytes = (cfg.queue_max_mb * 1e6).max(8192.0) as u64;
    let opts = queue::QueueOptions {
        max_bytes,
        segment_bytes: (max_bytes / 8).clamp(4096, 1 << 20),
        fsync: queue::FsyncPolicy::default(),
    };
    let store = match Store::open(&dir, opts, cfg.backfill_after_s, &settings.topics.base) {
        Ok(s) => s,
        Err(e) => {
            let why = format!("cannot open the queue in {}: {e}", dir.display());
            tracing::error!("platform: {why}; the link does not run");
            state_tx.send_modify(|s| s.last_error = Some(why));
            return Some(PlatformHandle {
                tasks: Vec::new(),
                stop,
                state,
                store: None,
            });
        }
    };
    tracing::info!(
        brokers = ?cfg.brokers,
        topics = %format!("{}/#", settings.topics.base),
        queue = %dir.display(),
        "platform link starting"
    );
    let state_tx = Arc::new(state_tx);
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let producer = tokio::spawn(produce(
        settings.clone(),
        ctx.clone(),
        store.clone(),
        state.clone(),
        stop_rx.clone(),
    ));
    current_stores().insert(dir.clone(), store.clone());
    // Not stopped with the link: it ends when the link drops its sender, after answering
    // what it took.
    drop(tokio::spawn(answer_commands(
        settings.clone(),
        ctx.gate.clone(),
        dir,
        cmd_rx,
    )));
    let link = tokio::spawn(
        Link {
            settings,
            store: store.clone(),
            state: state_tx,
            commands: cmd_tx,
            stop: stop_rx,
            rng: Rng::seeded(),
        }
        .run(),
    );
    Some(PlatformHandle {
        tasks: vec![producer, link],
        stop,
        state,
        store: Some(store),
    })
}

// ---- producer ------------------------------------------------------------------------------

fn message(s: &Settings, suffix: &str, body: Map<String, Value>, retain: bool) -> Message {
    Message {
        suffix: suffix.to_owned(),
        topic: s.topics.of(suffix),
        body,
        retain,
    }
}

/// Turns snapshots and audit records into messages.
async fn produce(
    s: Arc<Settings>,
    ctx: FaceContext,
    store: Store,
    mut link: watch::Receiver<PlatformLinkState>,
    mut stop: watch::Receiver<bool>,
) {
    let mut snapshots = ctx.snapshots.clone();
    let mut audit = Some(ctx.audit.subscribe());
    let mut last_slot: Option<i64> = None;
    let mut last_state: Option<(String, String, String)> = None;
    let mut alarms: Option<BTreeMap<u16, String>> = None;
    let mut state_due = true;
    let mut was_connected = false;
    loop {
        tokio::select! {
            r = snapshots.changed() => {
                if r.is_err() {
                    break;
                }
            }
            rec = async {
                match audit.as_mut() {
                    Some(a) => a.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                match rec {
                    Ok(rec) => store.push(message(&s, "audit", payload::audit(&s.origin, &rec), false)),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!("platform: {n} audit records were not published (too many at once)");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => audit = None,
                }
                continue;
            }
            r = link.changed() => {
                if r.is_err() {
                    break;
                }
                let connected = link.borrow_and_update().connected;
                if connected && !was_connected {
                    state_due = true;
                }
                was_connected = connected;
            }
            _ = stop.changed() => break,
        }
        let Some(snap) = snapshots.borrow_and_update().clone() else {
            continue;
        };
        // Alarm events: the difference to the last snapshot.
        let now: BTreeMap<u16, String> = if alarms
            .as_ref()
            .is_some_and(|a| a.keys().copied().eq(snap.alarm_codes()))
        {
            alarms.clone().unwrap_or_default()
        } else {
            payload::alarms_of(&snap).into_iter().collect()
        };
        let before = alarms.take().unwrap_or_default();
        let t = snap.clock.clock_unix_s;
        for (code, text) in &now {
            if !before.contains_key(code) {
                let body = payload::alarm_event(&s.origin, t, "raised", *code, text);
                store.push(message(&s, "alarms", body, false));
            }
        }
        for (code, text) in &before {
            if !now.contains_key(code) {
                let body = payload::alarm_event(&s.origin, t, "cleared", *code, text);
                store.push(message(&s, "alarms", body, false));
            }
        }
        alarms = Some(now);
        // State: at start, on every connection, on a change of version, configuration, mode.
        let key = payload::state_key(&snap);
        if state_due || last_state.as_ref() != Some(&key) {
            let body = payload::state(
                &s.origin,
                &snap,
                wall_unix_s(),
                s.telemetry_period_s,
                &s.writable,
            );
            store.push(message(&s, "state", body, true));
            last_state = Some(key);
            state_due = false;
        }
        // Telemetry: once per period of controller time.
        let slot = (t / s.telemetry_period_s).floor() as i64;
        if last_slot != Some(slot) {
            last_slot = Some(slot);
            let st = *store.stats.borrow();
            let body = payload::telemetry(&s.origin, &snap, st.backlog_records, st.dropped_records);
            store.push(message(&s, "telemetry", body, false));
        }
    }
}

// ---- commands ------------------------------------------------------------------------------

/// A message that arrived on a command topic.
#[derive(Debug)]
struct Incoming {
    topic: String,
    payload: Vec<u8>,
    retain: bool,
}

/// Read a command's payload: the change asked for and its correlation id, or why not.
pub(crate) fn parse_command(
    name: &str,
    payload: &[u8],
    max: usize,
) -> (Option<Value>, Result<Change, String>) {
    if payload.len() > max {
        return (
            None,
            Err(format!(
                "payload of {} bytes is over the limit of {max} bytes (platform.command_max_bytes)",
                payload.len()
            )),
        );
    }
    let v: Value = match serde_json::from_slice(payload) {
        Ok(v) => v,
        Err(e) => return (None, Err(format!("malformed JSON: {e}"))),
    };
    let Value::Object(mut o) = v else {
        return (
            None,
            Err("the payload must be a JSON object: {\"id\": ..., \"value\": ...}".into()),
        );
    };
    let id = o.remove("id").filter(|i| !i.is_null());
    if let Some(i) = &id
        && !(i.is_string() || i.is_i64() || i.is_u64())
    {
        return (None, Err("\"id\" must be a string or an integer".into()));
    }
    let change = if name == "config" {
        match o.remove("toml") {
            Some(Value::String(toml)) => Ok(Change::Config { toml }),
            _ => Err(
                "cmd/config needs {\"id\": ..., \"toml\": \"<the configuration's text>\"}".into(),
            ),
        }
    } else {
        match o.remove("value") {
            Some(value) if !value.is_null() => Ok(Change::Setting {
                name: name.to_owned(),
                value,
            }),
            _ => Err("no \"value\": send {\"id\": ..., \"value\": ...}".into()),
        }
    };
    (id, change)
}

/// Answers commands, one at a time, through the gate.
async fn answer_commands(
    s: Arc<Settings>,
    gate: Gate,
    queue_dir: PathBuf,
    mut rx: mpsc::Receiver<Incoming>,
) {
    let prefix = format!("{}/cmd/", s.topics.base);
    while let Some(m) = rx.recv().await {
        let Some(name) = m.topic.strip_prefix(&prefix) else {
            // Not this station's: cannot arrive with the subscription made; never applied.
            tracing::warn!(topic = %m.topic, "platform: message on a foreign topic ignored");
            continue;
        };
        if name.is_empty() || name.contains('/') {
            continue;
        }
        let (id, change) = parse_command(name, &m.payload, s.command_max_bytes);
        let change = if m.retain {
            Err("retained command refused: publish commands without the retain flag (a retained one would be applied again at every connection)".to_owned())
        } else {
            change
        };
        let outcome = match change {
            Ok(change) => {
                let req = ChangeRequest {
                    source: Source::Platform,
                    client: m.topic.clone(),
                    change,
                };
                gate.submit(req).await
            }
            Err(why) => {
                let outcome = ChangeOutcome::refused(why);
                let what = if name == "config" {
                    Change::Config {
                        toml: String::new(),
                    }
                } else {
                    Change::Setting {
                        name: name.to_owned(),
                        value: Value::Null,
                    }
                };
                gate.refuse(
                    &ChangeRequest {
                        source: Source::Platform,
                        client: m.topic.clone(),
                        change: what,
                    },
                    &outcome,
                );
                outcome
            }
        };
        tracing::info!(
            command = name,
            accepted = outcome.accepted,
            reason = outcome.reason.as_deref().unwrap_or(""),
            "platform command"
        );
        let suffix = format!("cmd/{name}/ack");
        let body = payload::ack(&s.origin, wall_unix_s(), id, name, &outcome);
        let store = current_stores().get(&queue_dir).cloned();
        match store {
            Some(store) => store.push(message(&s, &suffix, body, false)),
            None => tracing::warn!(
                command = name,
                "platform: the link stopped before the command was answered; the answer is not sent"
            ),
        }
    }
}

// ---- the link ------------------------------------------------------------------------------

/// A small random number generator for the back-off's jitter (xorshift64*).
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn seeded() -> Self {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Self((t ^ (u64::from(std::process::id()) << 32)) | 1)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The wait before attempt `attempt` (0: the first retry): uniform between `min` and
/// `min(max, min * 2^attempt)` (exponential back-off, full jitter above the minimum).
fn backoff_s(min: f64, max: f64, attempt: u32, unit: f64) -> f64 {
    let cap = (min * 2f64.powi(attempt.min(30) as i32)).min(max);
    min + (cap - min) * unit
}

/// How a session ended.
enum End {
    Stopped,
    Lost(String),
}

struct Link {
    settings: Arc<Settings>,
    store: Store,
    state: Arc<watch::Sender<PlatformLinkState>>,
    commands: mpsc::Sender<Incoming>,
    stop: watch::Receiver<bool>,
    rng: Rng,
}

fn describe(e: &ConnectionError, broker: &BrokerUrl) -> String {
    match e {
        ConnectionError::Tls(t) => format!(
            "TLS with {broker} failed: {t} (does the broker speak TLS on that port? plain MQTT is mqtt://)"
        ),
        ConnectionError::ConnectionRefused(code) => {
            let why = match code {
                ConnectReturnCode::BadUserNamePassword => "bad user name or password",
                ConnectReturnCode::NotAuthorized => "not authorised",
                ConnectReturnCode::BadClientId => "client id rejected",
                ConnectReturnCode::ServiceUnavailable => "service unavailable",
                ConnectReturnCode::RefusedProtocolVersion => "protocol version refused",
                ConnectReturnCode::Success => "?",
            };
            format!("{broker} refused the connection: {why}")
        }
        ConnectionError::NetworkTimeout => format!("{broker}: no answer in time"),
        ConnectionError::Io(io) => format!("{broker}: {io}"),
        other => format!("{broker}: {other}"),
    }
}

impl Link {
    fn set(&self, f: impl FnOnce(&mut PlatformLinkState)) {
        self.state.send_modify(f);
    }

    fn options(&self, broker: &BrokerUrl) -> Result<MqttOptions, String> {
        let s = &self.settings;
        let mut o = MqttOptions::new(s.client_id.clone(), broker.host.clone(), broker.port);
        o.set_keep_alive(s.keepalive);
        o.set_clean_session(true);
        o.set_inflight(WINDOW as u16 + 1);
        o.set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES);
        let will = payload::status(&s.origin, "offline", wall_unix_s());
        o.set_last_will(LastWill::new(
            s.topics.of("status"),
            serde_json::to_vec(&Value::Object(will)).unwrap_or_default(),
            QoS::AtLeastOnce,
            true,
        ));
        match &s.password {
            Ok(pw) => {
                if !s.username.is_empty() || pw.is_some() {
                    o.set_credentials(s.username.clone(), pw.clone().unwrap_or_default());
                }
            }
            Err(e) => return Err(e.clone()),
        }
        if broker.tls {
            match &s.tls {
                Some(Ok(cfg)) => {
                    o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                        cfg.clone(),
                    )));
                }
                Some(Err(e)) => return Err(e.clone()),
                None => return Err("TLS is not set up".into()),
            }
        }
        Ok(o)
    }

    async fn run(mut self) {
        let s = self.settings.clone();
        if s.brokers.is_empty() {
            self.set(|st| st.last_error = Some("no broker configured".into()));
            return;
        }
        let mut attempt: u32 = 0;
        let mut ix = 0;
        loop {
            if *self.stop.borrow() {
                return;
            }
            let broker = s.brokers[ix % s.brokers.len()].clone();
            let b = broker.to_string();
            self.set(|st| st.broker = b);
            let end = match self.options(&broker) {
                Ok(opts) => self.session(&broker, opts).await,
                Err(e) => End::Lost(e),
            };
            let why = match end {
                End::Stopped => return,
                End::Lost(why) => why,
            };
            let was = self.state.borrow().connected;
            self.store.connected.store(false, Ordering::Relaxed);
            if was {
                tracing::warn!("platform: connection lost: {why}");
                attempt = 0;
            } else {
                tracing::warn!("platform: cannot connect: {why}");
                ix += 1;
            }
            self.set(|st| {
                st.connected = false;
                st.last_error = Some(why);
            });
            let wait = backoff_s(
                s.reconnect_min_s,
                s.reconnect_max_s,
                attempt,
                self.rng.unit(),
            );
            attempt = attempt.saturating_add(1);
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs_f64(wait)) => {}
                _ = self.stop.changed() => return,
            }
        }
    }

    /// One connection: connect, subscribe, send the queue, take commands, until it fails or
    /// the link stops.
    async fn session(&mut self, broker: &BrokerUrl, opts: MqttOptions) -> End {
        let s = self.settings.clone();
        let (client, mut eventloop) = AsyncClient::new(opts, WINDOW * 2 + 8);
        // The event loop runs in its own task (its poll is not cancel-safe); events come here.
        let (ev_tx, mut events) = mpsc::channel::<Result<Event, ConnectionError>>(256);
        let pump = tokio::spawn(async move {
            loop {
                let ev = eventloop.poll().await;
                let failed = ev.is_err();
                if ev_tx.send(ev).await.is_err() || failed {
                    return;
                }
            }
        });
        struct AbortOnDrop(JoinHandle<()>);
        impl Drop for AbortOnDrop {
            fn drop(&mut self) {
                self.0.abort();
            }
        }
        let _pump = AbortOnDrop(pump);

        // Wait for the CONNACK.
        let connack = tokio::select! {
            ev = events.recv() => ev,
            _ = self.stop.changed() => return End::Stopped,
        };
        match connack {
            Some(Ok(Event::Incoming(Packet::ConnAck(_)))) => {}
            Some(Err(e)) => return End::Lost(describe(&e, broker)),
            Some(Ok(other)) => return End::Lost(format!("{broker}: unexpected {other:?}")),
            None => return End::Lost(format!("{broker}: client stopped")),
        }
        tracing::info!(broker = %broker, "platform: connected");
        self.store.connected.store(true, Ordering::Relaxed);
        self.set(|st| {
            st.connected = true;
            st.last_error = None;
        });
        let cmd_filter = s.topics.of("cmd/+");
        let status_topic = s.topics.of("status");
        // The station's own status comes back when the broker lets it publish and read its
        // topics: an ACL that forbids them is otherwise silent in MQTT 3.1.1.
        for filter in [&cmd_filter, &status_topic] {
            if let Err(e) = client.try_subscribe(filter.clone(), QoS::AtLeastOnce) {
                return End::Lost(format!("subscribe: {e}"));
            }
        }
        // Sent records by packet id once the client assigned one; None: the status message.
        let mut unassigned: VecDeque<Option<u64>> = VecDeque::new();
        let mut inflight: HashMap<u16, Option<u64>> = HashMap::new();
        let online = payload::status(&s.origin, "online", wall_unix_s());
        let online = serde_json::to_vec(&Value::Object(online)).unwrap_or_default();
        if client
            .try_publish(status_topic.clone(), QoS::AtLeastOnce, true, online.clone())
            .is_ok()
        {
            unassigned.push_back(None);
        }
        let echo_limit = tokio::time::sleep(ECHO_LIMIT);
        tokio::pin!(echo_limit);
        let mut echo_pending = true;
        let mut next_from = 0u64;
        let mut want_more = true;
        loop {
            let in_use = unassigned.len() + inflight.len();
            if want_more && in_use < WINDOW {
                let room = WINDOW - in_use;
                let recs = self.store.pending(next_from, room).await;
                want_more = recs.len() == room;
                for r in recs {
                    let id = r.id;
                    match client.try_publish(r.topic, QoS::AtLeastOnce, r.retain, r.payload) {
                        Ok(()) => {
                            unassigned.push_back(Some(id));
                            next_from = id + 1;
                        }
                        Err(_) => {
                            want_more = true;
                            break;
                        }
                    }
                }
            }
            tokio::select! {
                ev = events.recv() => {
                    let ev = match ev {
                        Some(Ok(ev)) => ev,
                        Some(Err(e)) => return End::Lost(describe(&e, broker)),
                        None => return End::Lost(format!("{broker}: client stopped")),
                    };
                    match ev {
                        Event::Outgoing(Outgoing::Publish(pkid)) => {
                            if let Some(id) = unassigned.pop_front() {
                                inflight.insert(pkid, id);
                            }
                        }
                        Event::Incoming(Packet::PubAck(ack)) => {
                            if let Some(Some(id)) = inflight.remove(&ack.pkid) {
                                self.store.ack(id);
                                let now = wall_unix_s();
                                self.set(|st| st.last_ack_unix_s = Some(now));
                            }
                            want_more = true;
                        }
                        Event::Incoming(Packet::Publish(p)) if p.topic == status_topic => {
                            let echo = p.payload.as_ref() == online.as_slice();
                            echo_pending &= !echo;
                            self.set(|st| {
                                if echo
                                    && st.last_error.as_deref().is_some_and(|e| e.contains(ECHO_WORDS))
                                {
                                    st.last_error = None;
                                }
                            });
                        }
                        Event::Incoming(Packet::Publish(p)) => {
                            let m = Incoming {
                                topic: p.topic.clone(),
                                payload: p.payload.to_vec(),
                                retain: p.retain,
                            };
                            if self.commands.try_send(m).is_err() {
                                tracing::warn!(topic = %p.topic, "platform: too many commands at once; this one is dropped unanswered");
                            }
                        }
                        Event::Incoming(Packet::SubAck(ack))
                            if ack.return_codes.iter().any(|c| matches!(c, SubscribeReasonCode::Failure)) =>
                        {
                            let why = format!("{broker} refused the subscription to {cmd_filter} (ACL?): no command can arrive");
                            tracing::error!("platform: {why}");
                            self.set(|st| st.last_error = Some(why));
                        }
                        Event::Incoming(Packet::Disconnect) => {
                            return End::Lost(format!("{broker} closed the session"));
                        }
                        _ => {}
                    }
                }
                () = &mut echo_limit, if echo_pending => {
                    echo_pending = false;
                    let why = format!(
                        "{broker} {ECHO_WORDS} within {} s: does its ACL let this client publish to and read {}/#?",
                        ECHO_LIMIT.as_secs(),
                        s.topics.base
                    );
                    tracing::error!("platform: {why}");
                    self.set(|st| st.last_error = Some(why));
                }
                () = self.store.pushed.notified(), if !want_more => {
                    want_more = true;
                }
                _ = self.stop.changed() => {
                    let offline = payload::status(&s.origin, "offline", wall_unix_s());
                    let _ = client.try_publish(
                        s.topics.of("status"),
                        QoS::AtLeastOnce,
                        true,
                        serde_json::to_vec(&Value::Object(offline)).unwrap_or_default(),
                    );
                    let _ = client.try_disconnect();
                    let _ = tokio::time::timeout(STOP_GRACE, async {
                        while let Some(Ok(ev)) = events.recv().await {
                            if let Event::Incoming(Packet::PubAck(ack)) = ev
                                && let Some(Some(id)) = inflight.remove(&ack.pkid)
                            {
                                self.store.ack(id);
                            }
                        }
                    })
                    .await;
                    return End::Stopped;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_within_bounds_and_grows() {
        for attempt in 0..40 {
            for u in [0.0, 0.5, 0.999_999] {
                let w = backoff_s(1.0, 60.0, attempt, u);
                assert!((1.0..=60.0).contains(&w), "{w}");
            }
        }
        assert!((backoff_s(1.0, 60.0, 0, 0.999) - 1.0).abs() < 1e-9);
        assert!(backoff_s(1.0, 60.0, 3, 0.999) > 7.9);
        assert!(backoff_s(1.0, 60.0, 20, 0.999) > 59.0);
    }

    #[test]
    fn jitter_is_spread() {
        let mut r = Rng::seeded();
        let xs: Vec<f64> = (0..1000).map(|_| r.unit()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = xs.iter().sum::<f64>() / 1000.0;
        assert!((0.4..0.6).contains(&mean), "{mean}");
    }

    #[test]
    fn commands_are_read_or_refused_with_a_reason() {
        let (id, c) = parse_command("curve_shift_k", br#"{"id":"a1","value":2.5}"#, 1000);
        assert_eq!(id, Some(Value::from("a1")));
        assert_eq!(
            c,
            Ok(Change::Setting {
                name: "curve_shift_k".into(),
                value: Value::from(2.5)
            })
        );
        let (_, c) = parse_command("curve_shift_k", b"{not json", 1000);
        assert!(c.unwrap_err().contains("malformed JSON"));
        let (_, c) = parse_command("curve_shift_k", &[b' '; 2000], 1000);
        assert!(c.unwrap_err().contains("over the limit"));
        let (_, c) = parse_command("curve_shift_k", br#"{"id":1}"#, 1000);
        assert!(c.unwrap_err().contains("value"));
        let (id, c) = parse_command("config", br#"{"id":7,"toml":"x"}"#, 1000);
        assert_eq!(id, Some(Value::from(7)));
        assert_eq!(c, Ok(Change::Config { toml: "x".into() }));
        let (_, c) = parse_command("config", br#"{"id":7,"value":"x"}"#, 1000);
        assert!(c.is_err());
    }
}
