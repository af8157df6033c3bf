//! `heatctl fleet`: every station on a broker, in one table.
//!
//! The fleet view subscribes to `{prefix}/+/+/status`, `/state`, `/telemetry` and `/alarms` on
//! the utility's broker and keeps one row per station (`site/station`, from the topic): online
//! (the retained `status`, which the broker turns to `offline` by the station's last will),
//! outdoor temperature, secondary supply against its setpoint, the rooms' low percentile (P10),
//! the share of sensed homes at or above 18 °C, active alarms, when it was last heard from and
//! its backlog (records queued on its disk, not yet acknowledged by the broker).
//!
//! On a terminal the table is redrawn in place every second; otherwise each change of a
//! station is printed as one plain line. `--once --wait-s N` listens for N seconds, prints one
//! table (or `--json`, one JSON document) and exits: for scripts and tests.
//!
//! The fleet view only reads: it publishes nothing and needs no write permission on the broker.
//! It reads the payloads as the platform schema documents them and tolerates what it does not
//! know (missing keys show as `-`); a station whose payloads cannot be read still appears,
//! with the time it was last heard from.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeFilter, Transport};
use serde::Serialize;
use serde_json::Value;

use crate::audit::{rfc3339_utc, wall_unix_s};
use crate::config::BrokerUrl;

/// Default topic prefix (as `platform.topic_prefix`).
pub const DEFAULT_PREFIX: &str = "heatctl";
/// The topics the fleet view listens to, under `{prefix}/{site}/{station}/`.
pub const TOPICS: [&str; 4] = ["status", "state", "telemetry", "alarms"];
/// Largest payload accepted from the broker, bytes (a pushed configuration can be large; a
/// bigger message is refused by the client and the connection restarts).
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;
/// How often the terminal table is redrawn (and plain lines are flushed).
const REFRESH: Duration = Duration::from_secs(1);
/// Reconnection back-off: first and longest wait.
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Options of [`run`] (the command line of `heatctl fleet`).
#[derive(Debug, Clone, PartialEq)]
pub struct FleetOptions {
    /// Broker URL: `mqtt://HOST[:PORT]` (default port 1883) or `mqtts://HOST[:PORT]` (8883).
    pub broker: String,
    /// Topic prefix.
    pub prefix: String,
    /// User name on the broker.
    pub username: Option<String>,
    /// File whose first line is the password.
    pub password_file: Option<PathBuf>,
    /// CA certificates (PEM) to trust for `mqtts://`.
    pub ca_file: Option<PathBuf>,
    /// Listen `wait_s`, print one table, exit.
    pub once: bool,
    /// How long `once` listens, seconds.
    pub wait_s: f64,
    /// Print JSON instead of a table.
    pub json: bool,
}

impl Default for FleetOptions {
    fn default() -> Self {
        Self {
            broker: String::new(),
            prefix: DEFAULT_PREFIX.into(),
            username: None,
            password_file: None,
            ca_file: None,
            once: false,
            wait_s: 5.0,
            json: false,
        }
    }
}

/// Whether a topic prefix can be subscribed under: not empty, no wildcard, no leading or
/// trailing '/'.
///
/// # Errors
/// What is wrong with it.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() {
        return Err("--prefix must not be empty".into());
    }
    if prefix.contains(['+', '#', '\0']) {
        return Err(format!(
            "--prefix {prefix:?} must not contain MQTT wildcards (+, #)"
        ));
    }
    if prefix.starts_with('/') || prefix.ends_with('/') || prefix.contains("//") {
        return Err(format!(
            "--prefix {prefix:?} must not start or end with '/' or have an empty level"
        ));
    }
    Ok(())
}

/// One station as the fleet view sees it.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct StationRow {
    /// `site/station`.
    pub station: String,
    /// Site id (topic level).
    pub site_id: String,
    /// Station id (topic level).
    pub station_id: String,
    /// From the retained status: true `online`, false `offline` (also the last will); None
    /// before any status was seen.
    pub online: Option<bool>,
    /// Outdoor temperature, °C.
    pub outdoor_c: Option<f64>,
    /// Secondary supply temperature, °C.
    pub t2_supply_c: Option<f64>,
    /// Secondary supply setpoint, °C.
    pub setpoint_c: Option<f64>,
    /// Rooms' weighted low percentile (P10), °C.
    pub rooms_p10_c: Option<f64>,
    /// Share of sensed homes at or above 18 °C, %.
    pub at_or_above_18_pct: Option<f64>,
    /// Alarms active now (from the telemetry, else counted from raised and cleared events).
    pub alarms_active: Option<usize>,
    /// Records queued on the station's disk, not yet acknowledged by the broker (when its
    /// telemetry reports it).
    pub backlog_records: Option<u64>,
    /// Wall time this view last received a live (not retained) message from it, unix seconds.
    pub last_seen_unix_s: Option<f64>,
    /// `last_seen_unix_s` as RFC 3339 UTC.
    pub last_seen_utc: Option<String>,
    /// heatctl version (from `state`).
    pub version: Option<String>,
    /// Operating mode (from `state` or telemetry).
    pub mode: Option<String>,
    /// Sequence number of the newest telemetry received.
    pub telemetry_seq: Option<u64>,
    /// Telemetry messages received (live and backfill).
    pub telemetry_count: u64,
    /// Of those, marked as backfill (replayed after an outage).
    pub backfill_count: u64,
}

/// The table of every station seen, fed one MQTT message at a time.
#[derive(Debug, Clone, Default)]
pub struct FleetTable {
    prefix: String,
    stations: BTreeMap<String, StationRow>,
    /// Active alarm codes per station, from `alarms` events.
    raised: BTreeMap<String, BTreeSet<String>>,
    /// Whether a station's telemetry carries its own active-alarms list (then events are not
    /// counted).
    alarms_in_telemetry: BTreeSet<String>,
    /// Stations changed since [`FleetTable::take_changed`].
    changed: BTreeSet<String>,
}

/// The kinds of topic the fleet view reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Status,
    State,
    Telemetry,
    Alarms,
}

impl FleetTable {
    /// An empty table for topics under `prefix`.
    #[must_use]
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.into(),
            ..Self::default()
        }
    }

    /// The subscriptions: `{prefix}/+/+/{kind}` for each kind in [`TOPICS`].
    #[must_use]
    pub fn filters(&self) -> Vec<String> {
        TOPICS
            .iter()
            .map(|k| format!("{}/+/+/{k}", self.prefix))
            .collect()
    }

    /// Every station, ordered by `site/station`.
    #[must_use]
    pub fn rows(&self) -> Vec<StationRow> {
        self.stations.values().cloned().collect()
    }

    /// One station's row.
    #[must_use]
    pub fn row(&self, station: &str) -> Option<&StationRow> {
        self.stations.get(station)
    }

    /// The stations changed since the last call, in order.
    pub fn take_changed(&mut self) -> Vec<StationRow> {
        let keys = std::mem::take(&mut self.changed);
        keys.iter()
            .filter_map(|k| self.stations.get(k).cloned())
            .collect()
    }

    /// Read one message. `retained`: delivered from the broker's store on subscribing (so not
    /// a sign of life). Returns whether the topic was a station's.
    pub fn apply(&mut self, topic: &str, payload: &[u8], retained: bool, now_unix_s: f64) -> bool {
        let Some((site, station, kind)) = self.split_topic(topic) else {
            return false;
        };
        let key = format!("{site}/{station}");
        let row = self
            .stations
            .entry(key.clone())
            .or_insert_with(|| StationRow {
                station: key.clone(),
                site_id: site.into(),
                station_id: station.into(),
                ..StationRow::default()
            });
        if !retained {
            row.last_seen_unix_s = Some(now_unix_s);
            row.last_seen_utc = Some(rfc3339_utc(now_unix_s));
        }
        let json: Option<Value> = serde_json::from_slice(payload).ok();
        match kind {
            Kind::Status => {
                if let Some(online) = parse_status(payload, json.as_ref()) {
                    row.online = Some(online);
                }
            }
            Kind::State => {
                if let Some(v) = &json {
                    if let Some(s) = str_at(v, &["/version", "/station/version"]) {
                        row.version = Some(s);
                    }
                    if let Some(s) = str_at(v, &["/mode", "/operating_mode", "/settings/mode"]) {
                        row.mode = Some(s);
                    }
                }
            }
            Kind::Telemetry => {
                if let Some(v) = &json {
                    apply_telemetry(row, v, &key, &mut self.alarms_in_telemetry);
                }
            }
            Kind::Alarms => {
                if !self.alarms_in_telemetry.contains(&key)
                    && let Some(v) = &json
                {
                    let set = self.raised.entry(key.clone()).or_default();
                    apply_alarm_events(set, v);
                    row.alarms_active = Some(set.len());
                }
            }
        }
        self.changed.insert(key);
        true
    }

    /// `{prefix}/{site}/{station}/{kind}` split into its parts.
    fn split_topic<'t>(&self, topic: &'t str) -> Option<(&'t str, &'t str, Kind)> {
        let rest = topic
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix('/')?;
        let mut parts = rest.split('/');
        let site = parts.next()?;
        let station = parts.next()?;
        let kind = match parts.next()? {
            "status" => Kind::Status,
            "state" => Kind::State,
            "telemetry" => Kind::Telemetry,
            "alarms" => Kind::Alarms,
            _ => return None,
        };
        if parts.next().is_some() || site.is_empty() || station.is_empty() {
            return None;
        }
        Some((site, station, kind))
    }
}

/// `online`/`offline`, plain or in JSON (`"online"`, `{"status": "online"}`, `{"online": true}`).
fn parse_status(payload: &[u8], json: Option<&Value>) -> Option<bool> {
    let word = |s: &str| match s.trim().to_ascii_lowercase().as_str() {
        "online" => Some(true),
        "offline" => Some(false),
        _ => None,
    };
    match json {
        Some(Value::String(s)) => word(s),
        Some(Value::Bool(b)) => Some(*b),
        Some(v @ Value::Object(_)) => v.get("online").and_then(Value::as_bool).or_else(|| {
            ["status", "state"]
                .iter()
                .find_map(|k| v.get(*k).and_then(Value::as_str).and_then(word))
        }),
        Some(_) => None,
        None => std::str::from_utf8(payload).ok().and_then(word),
    }
}

/// A number at the first of `pointers` that holds one. A measurement object
/// (`{"value": .., "valid": ..}`) gives its value when it is not marked invalid.
fn num_at(v: &Value, pointers: &[&str]) -> Option<f64> {
    pointers.iter().find_map(|p| v.pointer(p).and_then(number))
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Object(o) => {
            if o.get("valid").and_then(Value::as_bool) == Some(false) {
                return None;
            }
            ["value", "value_c"]
                .iter()
                .find_map(|k| o.get(*k))
                .and_then(Value::as_f64)
        }
        _ => None,
    }
}

fn str_at(v: &Value, pointers: &[&str]) -> Option<String> {
    pointers
        .iter()
        .find_map(|p| v.pointer(p).and_then(Value::as_str))
        .map(str::to_owned)
}

/// Read a telemetry payload into the row. A backfill record older than what was already shown
/// counts but does not replace the live values.
fn apply_telemetry(
    row: &mut StationRow,
    v: &Value,
    key: &str,
    alarms_in_telemetry: &mut BTreeSet<String>,
) {
    row.telemetry_count += 1;
    let backfill = v.get("backfill").and_then(Value::as_bool).unwrap_or(false);
    if backfill {
        row.backfill_count += 1;
    }
    let seq = ["/seq", "/sequence", "/seq_no"]
        .iter()
        .find_map(|p| v.pointer(p).and_then(Value::as_u64));
    if backfill
        && let (Some(seq), Some(shown)) = (seq, row.telemetry_seq)
        && seq < shown
    {
        // Older than what is shown (a replay after an outage): keep the live values.
        return;
    }
    if seq.is_some() {
        row.telemetry_seq = seq;
    }
    row.outdoor_c = num_at(
        v,
        &[
            "/signals/t_out_c",
            "/measurements/t_out_c",
            "/t_out_c",
            "/outdoor_c",
            "/control/outdoor_c",
            "/explanation/outdoor_c",
        ],
    );
    row.t2_supply_c = num_at(
        v,
        &[
            "/signals/t2_supply_c",
            "/measurements/t2_supply_c",
            "/t2_supply_c",
        ],
    );
    row.setpoint_c = num_at(
        v,
        &[
            "/setpoint_c",
            "/control/setpoint_c",
            "/explanation/setpoint_c",
        ],
    );
    row.rooms_p10_c = num_at(
        v,
        &[
            "/rooms/percentile_c",
            "/rooms/p10_c",
            "/rooms/low_percentile_c",
        ],
    );
    row.at_or_above_18_pct = num_at(
        v,
        &[
            "/rooms/at_or_above_floor_pct",
            "/rooms/at_or_above_18_pct",
            "/rooms/share_at_or_above_18_pct",
        ],
    );
    row.backlog_records = [
        "/platform/backlog_records",
        "/link/backlog_records",
        "/backlog_records",
    ]
    .iter()
    .find_map(|p| v.pointer(p).and_then(Value::as_u64))
    .or(row.backlog_records);
    if let Some(mode) = str_at(v, &["/mode", "/control/mode", "/settings/mode"]) {
        row.mode = Some(mode);
    }
    let active = [
        "/alarm_codes",
        "/alarms/active",
        "/alarms",
        "/active_alarms",
    ]
    .iter()
    .find_map(|p| v.pointer(p).and_then(Value::as_array))
    .map(Vec::len)
    .or_else(|| {
        ["/alarms_active", "/alarms/active_count"]
            .iter()
            .find_map(|p| v.pointer(p).and_then(Value::as_u64))
            .map(|n| n as usize)
    });
    if let Some(n) = active {
        alarms_in_telemetry.insert(key.into());
        row.alarms_active = Some(n);
    }
}

/// Raised and cleared alarm events: one event, an array of them, or `{"events": [...]}`.
fn apply_alarm_events(active: &mut BTreeSet<String>, v: &Value) {
    let events: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        Value::Object(o) => match o.get("events").and_then(Value::as_array) {
            Some(a) => a.iter().collect(),
            None => vec![v],
        },
        _ => Vec::new(),
    };
    for e in events {
        let Some(code) = e.get("code").map(|c| match c {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }) else {
            continue;
        };
        let raised = ["event", "kind", "state", "transition"]
            .iter()
            .find_map(|k| e.get(*k).and_then(Value::as_str))
            .map(|s| matches!(s, "raised" | "raise" | "active" | "set"))
            .or_else(|| {
                ["active", "raised"]
                    .iter()
                    .find_map(|k| e.get(*k).and_then(Value::as_bool))
            });
        match raised {
            Some(true) => {
                active.insert(code);
            }
            Some(false) => {
                active.remove(&code);
            }
            None => {}
        }
    }
}

fn cell(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:.decimals$}"))
}

fn online_word(o: Option<bool>) -> &'static str {
    match o {
        Some(true) => "online",
        Some(false) => "OFFLINE",
        None => "?",
    }
}

fn ago(last: Option<f64>, now_unix_s: f64) -> String {
    match last {
        None => "-".into(),
        Some(t) => {
            let s = (now_unix_s - t).max(0.0);
            if s < 120.0 {
                format!("{s:.0} s ago")
            } else if s < 7200.0 {
                format!("{:.0} min ago", s / 60.0)
            } else {
                format!("{:.1} h ago", s / 3600.0)
            }
        }
    }
}

/// The rows as an aligned text table.
#[must_use]
pub fn render_table(rows: &[StationRow], now_unix_s: f64) -> String {
    const HEADER: [&str; 9] = [
        "STATION",
        "ONLINE",
        "OUTDOOR °C",
        "SUPPLY/SETPOINT °C",
        "ROOMS P10 °C",
        ">=18 °C %",
        "ALARMS",
        "LAST SEEN",
        "BACKLOG",
    ];
    let body: Vec<[String; 9]> = rows
        .iter()
        .map(|r| {
            [
                r.station.clone(),
                online_word(r.online).into(),
                cell(r.outdoor_c, 1),
                format!("{} / {}", cell(r.t2_supply_c, 1), cell(r.setpoint_c, 1)),
                cell(r.rooms_p10_c, 1),
                cell(r.at_or_above_18_pct, 0),
                r.alarms_active
                    .map_or_else(|| "-".into(), |n| n.to_string()),
                ago(r.last_seen_unix_s, now_unix_s),
                r.backlog_records
                    .map_or_else(|| "-".into(), |n| n.to_string()),
            ]
        })
        .collect();
    let mut widths = HEADER.map(|h| h.chars().count());
    for r in &body {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            let pad = w - c.chars().count();
            // Text left, numbers right.
            if i < 2 {
                let _ = write!(l, "{c}{}  ", " ".repeat(pad));
            } else {
                let _ = write!(l, "{}{c}  ", " ".repeat(pad));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&HEADER.map(String::from));
    for r in &body {
        line(r);
    }
    out
}

/// One station's row as a plain log line (non-terminal output); unknown figures are left out.
#[must_use]
pub fn render_line(r: &StationRow, now_unix_s: f64) -> String {
    let mut l = format!(
        "{} {} {}",
        rfc3339_utc(now_unix_s),
        r.station,
        online_word(r.online).to_ascii_lowercase()
    );
    let mut put = |key: &str, v: Option<f64>, decimals: usize, unit: &str| {
        if let Some(v) = v {
            let _ = write!(l, " {key}={v:.decimals$}{unit}");
        }
    };
    put("outdoor", r.outdoor_c, 1, "°C");
    put("supply", r.t2_supply_c, 1, "°C");
    put("setpoint", r.setpoint_c, 1, "°C");
    put("rooms_p10", r.rooms_p10_c, 1, "°C");
    put("at_or_above_18", r.at_or_above_18_pct, 0, "%");
    if let Some(n) = r.alarms_active {
        let _ = write!(l, " alarms={n}");
    }
    if let Some(n) = r.backlog_records {
        let _ = write!(l, " backlog={n}");
    }
    l
}

/// The whole fleet as one JSON document.
#[derive(Debug, Clone, Serialize)]
pub struct FleetReport {
    /// Broker listened to (without credentials).
    pub broker: String,
    /// Topic prefix.
    pub prefix: String,
    /// When the report was made, RFC 3339 UTC.
    pub time_utc: String,
    /// Whether the view was connected to the broker when the report was made.
    pub connected: bool,
    /// Stations seen.
    pub stations_total: usize,
    /// Of those, online.
    pub stations_online: usize,
    /// Of those, offline.
    pub stations_offline: usize,
    /// Every station, ordered by `site/station`.
    pub stations: Vec<StationRow>,
}

impl FleetReport {
    /// "N stations: A online, B offline".
    #[must_use]
    pub fn summary(&self) -> String {
        let n = self.stations_total;
        format!(
            "{n} station{}: {} online, {} offline",
            if n == 1 { "" } else { "s" },
            self.stations_online,
            self.stations_offline
        )
    }

    /// The report of `table` now.
    #[must_use]
    pub fn of(table: &FleetTable, broker: &str, connected: bool, now_unix_s: f64) -> Self {
        let stations = table.rows();
        Self {
            broker: broker.into(),
            prefix: table.prefix.clone(),
            time_utc: rfc3339_utc(now_unix_s),
            connected,
            stations_total: stations.len(),
            stations_online: stations.iter().filter(|r| r.online == Some(true)).count(),
            stations_offline: stations.iter().filter(|r| r.online == Some(false)).count(),
            stations,
        }
    }
}

/// A rustls client configuration trusting the CA certificates in `ca_file` (PEM).
///
/// # Errors
/// The file cannot be read or holds no certificate.
pub fn tls_config(ca_file: Option<&Path>) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    if let Some(path) = ca_file {
        let mut n = 0;
        for cert in CertificateDer::pem_file_iter(path)
            .with_context(|| format!("cannot read CA file {}", path.display()))?
        {
            let cert =
                cert.with_context(|| format!("bad certificate in CA file {}", path.display()))?;
            roots
                .add(cert)
                .with_context(|| format!("unusable certificate in {}", path.display()))?;
            n += 1;
        }
        if n == 0 {
            anyhow::bail!("CA file {} holds no certificate", path.display());
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS set-up")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// The MQTT options of the fleet view (a fresh client id, clean session, read-only).
///
/// # Errors
/// A bad URL, an unreadable password file, a bad CA file, or TLS without a CA file.
pub fn mqtt_options(opts: &FleetOptions) -> anyhow::Result<(MqttOptions, BrokerUrl)> {
    let url = BrokerUrl::parse(&opts.broker).map_err(anyhow::Error::msg)?;
    let nonce = (wall_unix_s().fract() * 1e6) as u64;
    let client_id = format!("heatctl-fleet-{}-{nonce}", std::process::id());
    let mut mo = MqttOptions::new(client_id, url.host.clone(), url.port);
    mo.set_clean_session(true);
    mo.set_keep_alive(Duration::from_secs(30));
    mo.set_max_packet_size(MAX_PAYLOAD_BYTES, 64 * 1024);
    match (&opts.username, &opts.password_file) {
        (Some(user), Some(file)) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read password file {}", file.display()))?;
            let password = text.lines().next().unwrap_or("").to_owned();
            mo.set_credentials(user.clone(), password);
        }
        (Some(user), None) => {
            mo.set_credentials(user.clone(), String::new());
        }
        (None, Some(_)) => anyhow::bail!("--password-file needs --username"),
        (None, None) => {}
    }
    if url.tls {
        if opts.ca_file.is_none() {
            anyhow::bail!("mqtts:// needs --ca-file (the CA that signed the broker's certificate)");
        }
        let cfg = tls_config(opts.ca_file.as_deref())?;
        mo.set_transport(Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(cfg),
        ));
    } else if opts.ca_file.is_some() {
        anyhow::bail!("--ca-file is for mqtts:// brokers; {} is plain", url);
    }
    Ok((mo, url))
}

/// What the connection task tells the printer.
#[derive(Debug)]
enum Update {
    Connected,
    Disconnected(String),
    Message {
        topic: String,
        payload: Vec<u8>,
        retained: bool,
    },
}

/// Listen to the broker, reconnecting with back-off, until `tx` is closed; every update goes
/// to `tx`.
async fn listen(
    mo: MqttOptions,
    filters: Vec<String>,
    tx: tokio::sync::mpsc::UnboundedSender<Update>,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let (client, mut eventloop) = AsyncClient::new(mo.clone(), 16);
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff = BACKOFF_MIN;
                    let subs = filters
                        .iter()
                        .map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
                    if let Err(e) = client.try_subscribe_many(subs) {
                        let _ = tx.send(Update::Disconnected(format!("cannot subscribe: {e}")));
                        break;
                    }
                    if tx.send(Update::Connected).is_err() {
                        return;
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let u = Update::Message {
                        topic: p.topic,
                        payload: p.payload.to_vec(),
                        retained: p.retain,
                    };
                    if tx.send(u).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    if tx.send(Update::Disconnected(e.to_string())).is_err() {
                        return;
                    }
                    break;
                }
            }
        }
        // Exponential back-off with jitter (brokers ban clients that reconnect too fast).
        let jitter = 0.5 + wall_unix_s().fract() * 0.5;
        tokio::time::sleep(backoff.mul_f64(jitter)).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// `heatctl fleet`: listen and show the table (see the module documentation).
///
/// # Errors
/// Bad options, or with `once`: the broker could not be reached within `wait_s`.
pub async fn run(opts: FleetOptions) -> anyhow::Result<()> {
    check_prefix(&opts.prefix).map_err(anyhow::Error::msg)?;
    if !(opts.wait_s.is_finite() && opts.wait_s >= 0.0 && opts.wait_s <= 86_400.0) {
        anyhow::bail!("--wait-s must be 0..86400 seconds, got {}", opts.wait_s);
    }
    let (mo, url) = mqtt_options(&opts)?;
    let broker = url.to_string();
    let mut table = FleetTable::new(&opts.prefix);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let listener = tokio::spawn(listen(mo, table.filters(), tx));
    let terminal = std::io::stdout().is_terminal();
    let mut connected = false;
    let mut ever_connected = false;
    let mut last_error: Option<String> = None;
    let deadline = opts
        .once
        .then(|| tokio::time::Instant::now() + Duration::from_secs_f64(opts.wait_s));
    let mut tick = tokio::time::interval(REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut out = std::io::stdout();
    loop {
        let sleep_until = deadline.unwrap_or_else(|| tokio::time::Instant::now() + REFRESH * 3600);
        tokio::select! {
            u = rx.recv() => match u {
                None => break,
                Some(Update::Connected) => {
                    connected = true;
                    ever_connected = true;
                    last_error = None;
                    if !opts.once && !terminal && !opts.json {
                        let _ = writeln!(out, "{} connected to {broker}", rfc3339_utc(wall_unix_s()));
                    }
                }
                Some(Update::Disconnected(e)) => {
                    if !opts.once && !terminal && !opts.json && (connected || last_error.as_deref() != Some(e.as_str())) {
                        let _ = writeln!(out, "{} not connected to {broker}: {e}", rfc3339_utc(wall_unix_s()));
                    }
                    connected = false;
                    last_error = Some(e);
                }
                Some(Update::Message { topic, payload, retained }) => {
                    table.apply(&topic, &payload, retained, wall_unix_s());
                }
            },
            _ = tick.tick(), if !opts.once => {
                let now = wall_unix_s();
                if opts.json {
                    let report = FleetReport::of(&table, &broker, connected, now);
                    let _ = writeln!(out, "{}", serde_json::to_string(&report).unwrap_or_default());
                } else if terminal {
                    let report = FleetReport::of(&table, &broker, connected, now);
                    let link = if connected { "connected".to_owned() } else {
                        format!("NOT CONNECTED ({})", last_error.as_deref().unwrap_or("connecting"))
                    };
                    let _ = write!(
                        out,
                        "\x1b[H\x1b[2Jheatctl fleet  {broker}  prefix {}  {link}\n{}  ({})\n\n{}",
                        opts.prefix, report.summary(), rfc3339_utc(now), render_table(&report.stations, now)
                    );
                } else {
                    for r in table.take_changed() {
                        let _ = writeln!(out, "{}", render_line(&r, now));
                    }
                }
                let _ = out.flush();
            },
            () = tokio::time::sleep_until(sleep_until), if deadline.is_some() => break,
        }
    }
    listener.abort();
    if opts.once {
        if !ever_connected {
            anyhow::bail!(
                "could not connect to {broker} within {} s: {}",
                opts.wait_s,
                last_error.as_deref().unwrap_or("no answer")
            );
        }
        let now = wall_unix_s();
        let report = FleetReport::of(&table, &broker, connected, now);
        if opts.json {
            let text = serde_json::to_string_pretty(&report).context("JSON")?;
            let _ = writeln!(out, "{text}");
        } else {
            let _ = write!(
                out,
                "{} ({broker}, prefix {}, {})\n{}",
                report.summary(),
                opts.prefix,
                report.time_utc,
                render_table(&report.stations, now)
            );
        }
        let _ = out.flush();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_refuse_inconsistent_tls_and_credentials() {
        let base = FleetOptions {
            broker: "mqtt://127.0.0.1:1883".into(),
            ..FleetOptions::default()
        };
        assert!(mqtt_options(&base).is_ok());
        let tls_without_ca = FleetOptions {
            broker: "mqtts://127.0.0.1".into(),
            ..base.clone()
        };
        assert!(mqtt_options(&tls_without_ca).is_err());
        let ca_on_plain = FleetOptions {
            ca_file: Some("/nonexistent".into()),
            ..base.clone()
        };
        assert!(mqtt_options(&ca_on_plain).is_err());
        let password_without_user = FleetOptions {
            password_file: Some("/nonexistent".into()),
            ..base.clone()
        };
        assert!(mqtt_options(&password_without_user).is_err());
        let bad_url = FleetOptions {
            broker: "tcp://h:1883".into(),
            ..base
        };
        assert!(mqtt_options(&bad_url).is_err());
    }

    #[test]
    fn prefixes() {
        assert!(check_prefix("heatctl").is_ok());
        assert!(check_prefix("utility/heat").is_ok());
        for bad in ["", "a/+", "#", "/a", "a/", "a//b"] {
            assert!(check_prefix(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn status_words() {
        assert_eq!(parse_status(b"online", None), Some(true));
        assert_eq!(parse_status(b"offline", None), Some(false));
        let j: Value = serde_json::json!({"status": "offline", "time_utc": "x"});
        assert_eq!(parse_status(b"", Some(&j)), Some(false));
        let j: Value = serde_json::json!({"online": true});
        assert_eq!(parse_status(b"", Some(&j)), Some(true));
        assert_eq!(parse_status(b"maybe", None), None);
    }

    #[test]
    fn topics_outside_the_prefix_or_of_other_kinds_are_ignored() {
        let mut t = FleetTable::new("heatctl");
        assert!(!t.apply("other/s/st/status", b"online", false, 1.0));
        assert!(!t.apply("heatctl/s/st/cmd/x", b"{}", false, 1.0));
        assert!(!t.apply("heatctl/s/st/telemetry/extra", b"{}", false, 1.0));
        assert!(!t.apply("heatctlx/s/st/status", b"online", false, 1.0));
        assert!(t.rows().is_empty());
        assert!(t.apply("heatctl/s/st/status", b"online", true, 1.0));
        assert_eq!(t.rows().len(), 1);
    }

    /// A snapshot with every figure the table shows.
    fn snapshot() -> crate::station::StationSnapshot {
        use crate::control::{Alarm, AlarmCode, Sample, Signal};
        use crate::station::{Measurement, StationSnapshot};
        let mut s = StationSnapshot::default();
        s.measurements[Signal::TOut.index()] =
            Measurement::of(Signal::TOut, Some(Sample::fresh(-12.5)));
        s.measurements[Signal::T2Supply.index()] =
            Measurement::of(Signal::T2Supply, Some(Sample::fresh(61.0)));
        s.explanation.setpoint_c = Some(62.5);
        s.rooms.stats.percentile_c = Some(19.25);
        s.rooms.at_or_above_floor_pct = Some(93.0);
        s.alarms = vec![Alarm {
            code: AlarmCode::Frost,
            since_s: 0.0,
        }];
        s
    }

    fn origin() -> crate::platform::payload::Origin {
        crate::platform::payload::Origin {
            site_id: "hohhot".into(),
            station_id: "st1".into(),
        }
    }

    /// The platform link's payload with the keys its queue adds.
    fn queued(mut body: serde_json::Map<String, Value>, seq: u64, backfill: bool) -> Vec<u8> {
        body.insert("seq".into(), seq.into());
        body.insert("backfill".into(), backfill.into());
        Value::Object(body).to_string().into_bytes()
    }

    #[test]
    fn rows_follow_the_platform_payloads() {
        use crate::platform::payload;
        let mut t = FleetTable::new("heatctl");
        let online = Value::Object(payload::status(&origin(), "online", 99.0)).to_string();
        t.apply("heatctl/hohhot/st1/status", online.as_bytes(), true, 100.0);
        let row = t.row("hohhot/st1").unwrap();
        assert_eq!(row.online, Some(true));
        assert_eq!(
            row.last_seen_unix_s, None,
            "a retained status is no sign of life"
        );
        let snap = snapshot();
        let body = payload::telemetry(&origin(), &snap, 12, 0);
        t.apply(
            "heatctl/hohhot/st1/telemetry",
            &queued(body, 7, false),
            false,
            101.0,
        );
        let row = t.row("hohhot/st1").unwrap().clone();
        assert_eq!(row.outdoor_c, Some(-12.5));
        assert_eq!(row.t2_supply_c, Some(61.0));
        assert_eq!(row.setpoint_c, Some(62.5));
        assert_eq!(row.rooms_p10_c, Some(19.25));
        assert_eq!(row.at_or_above_18_pct, Some(93.0));
        assert_eq!(row.backlog_records, Some(12));
        assert_eq!(row.alarms_active, Some(1));
        assert_eq!(row.last_seen_unix_s, Some(101.0));
        assert_eq!(row.telemetry_seq, Some(7));
        // An older replayed record does not replace the live values.
        let mut old = snapshot();
        old.explanation.setpoint_c = Some(50.0);
        let body = payload::telemetry(&origin(), &old, 3, 0);
        t.apply(
            "heatctl/hohhot/st1/telemetry",
            &queued(body, 3, true),
            false,
            102.0,
        );
        let row = t.row("hohhot/st1").unwrap();
        assert_eq!(row.setpoint_c, Some(62.5));
        assert_eq!((row.telemetry_count, row.backfill_count), (2, 1));
        // An invalid measurement shows as unknown.
        let mut bad = snapshot();
        bad.measurements[crate::control::Signal::TOut.index()].valid = false;
        let body = payload::telemetry(&origin(), &bad, 0, 0);
        t.apply(
            "heatctl/hohhot/st1/telemetry",
            &queued(body, 8, false),
            false,
            103.0,
        );
        let row = t.row("hohhot/st1").unwrap();
        assert_eq!(row.outdoor_c, None);
        assert_eq!(row.backlog_records, Some(0));
        // The last will.
        let offline = Value::Object(payload::status(&origin(), "offline", 104.0)).to_string();
        t.apply(
            "heatctl/hohhot/st1/status",
            offline.as_bytes(),
            false,
            104.0,
        );
        assert_eq!(t.row("hohhot/st1").unwrap().online, Some(false));
    }

    #[test]
    fn alarm_events_of_the_platform_link_are_counted() {
        use crate::platform::payload;
        let mut t = FleetTable::new("heatctl");
        let ev = |event: &str, code: u16| {
            Value::Object(payload::alarm_event(&origin(), 1.0, event, code, "x")).to_string()
        };
        let topic = "heatctl/hohhot/st1/alarms";
        t.apply(topic, ev("raised", 301).as_bytes(), false, 1.0);
        t.apply(topic, ev("raised", 501).as_bytes(), false, 1.0);
        assert_eq!(t.row("hohhot/st1").unwrap().alarms_active, Some(2));
        t.apply(topic, ev("cleared", 301).as_bytes(), false, 1.0);
        assert_eq!(t.row("hohhot/st1").unwrap().alarms_active, Some(1));
    }

    #[test]
    fn alarm_events_are_counted_when_telemetry_has_no_list() {
        let mut t = FleetTable::new("p");
        let raise = |code: u32| serde_json::json!({"event": "raised", "code": code}).to_string();
        let clear = |code: u32| serde_json::json!({"event": "cleared", "code": code}).to_string();
        t.apply("p/a/b/alarms", raise(1).as_bytes(), false, 1.0);
        t.apply("p/a/b/alarms", raise(2).as_bytes(), false, 1.0);
        t.apply("p/a/b/alarms", raise(2).as_bytes(), false, 1.0);
        assert_eq!(t.row("a/b").unwrap().alarms_active, Some(2));
        t.apply("p/a/b/alarms", clear(1).as_bytes(), false, 1.0);
        assert_eq!(t.row("a/b").unwrap().alarms_active, Some(1));
    }

    #[test]
    fn table_and_json() {
        let mut t = FleetTable::new("heatctl");
        t.apply("heatctl/s/b/status", b"offline", true, 0.0);
        t.apply("heatctl/s/a/status", b"online", true, 0.0);
        let rows = t.rows();
        assert_eq!(rows[0].station, "s/a", "ordered by station");
        let text = render_table(&rows, 10.0);
        assert!(text.lines().next().unwrap().starts_with("STATION"));
        assert!(text.contains("OFFLINE"));
        assert_eq!(text.lines().count(), 3);
        let report = FleetReport::of(&t, "mqtt://h:1", true, 10.0);
        assert_eq!((report.stations_online, report.stations_offline), (1, 1));
        assert_eq!(report.summary(), "2 stations: 1 online, 1 offline");
        let j = serde_json::to_value(&report).unwrap();
        assert_eq!(j["stations"][1]["online"], Value::Bool(false));
        let line = render_line(&rows[1], 10.0);
        assert!(
            line.ends_with("s/b offline"),
            "unknown figures left out: {line}"
        );
    }
}
