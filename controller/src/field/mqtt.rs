//! The task that owns one mqtt link: subscribe to the topics its room nodes and values are
//! published on, decode each JSON message, and store the reading with its measurement time in
//! the same [`FieldShared`] the Modbus links fill.
//!
//! A reading from MQTT becomes a [`PointReading`] like a polled one, so the process image gives
//! the controller the same `Sample` (value, valid, age) and the validators apply the same age,
//! range, stuck, jump and outlier checks. Its age counts from the time in the message
//! (`time_field`) or, without one, from its arrival; the field layer sets no max age of its
//! own: `[signals.room]` (or the signal's table) decides when it is stale.
//!
//! A message time is compared with the runtime's [`Clock`] (never the system clock directly),
//! and only when that wall clock can be trusted ([`date_message`]): when the clock is not
//! synchronised (a gateway booted in 1970, a clock just set by hand) or, its state unknown, the
//! message time is implausibly far from it, the reading is aged from its arrival on monotonic
//! time instead, and a retained message (whose arrival says nothing of its age) is not used.
//! That is logged once per device when it starts, then at most every [`DATING_LOG_EVERY_S`]
//! with a count, and once when message times are used again.
//!
//! A message that cannot be used (not JSON, field missing, not a number, a bad time) is dropped
//! and counted as an error of the device it was meant for; it never becomes a reading and never
//! ends the task. Each message counts as a request in the device statistics.
//!
//! The connection is the link's own (client id `<station>-in` by default, so it never takes
//! over the platform link's session), subscribes at QoS 1, and reconnects with exponential
//! back-off and jitter: brokers such as EMQX ban clients that reconnect too fast.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeFilter, Transport};

use super::{DeviceStats, FieldShared, LinkPlan, PointReading};
use crate::config::{Link, parse_broker_url};
use crate::runtime::clock::Clock;

/// Largest message accepted from the broker, bytes (a bigger one drops the connection).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Keep-alive of the subscription connection.
pub const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// A measurement time this far ahead of the host's clock is refused (a clock fault of the
/// collector or the platform); closer to now it counts as "just measured".
pub const MAX_FUTURE_S: f64 = 300.0;
/// On a clock whose synchronisation is unknown (a scaled clock, a system without the kernel's
/// flag), a measurement time more than this far behind the local wall time, or more than
/// [`MAX_FUTURE_S`] ahead of it, is taken for clocks that disagree rather than for an old
/// reading: the reading is aged from its arrival. Clock seconds.
pub const MAX_PAST_UNSURE_S: f64 = 3600.0;
/// Shortest time between two log lines about one device's readings aged from their arrival
/// (monotonic clock seconds); the line carries the count of messages since the last one.
pub const DATING_LOG_EVERY_S: f64 = 3600.0;

/// Where one value comes from on an mqtt link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttSource {
    /// Topic it is published on.
    pub topic: String,
    /// Field of the JSON object holding the number ("a.b": nested).
    pub json_field: String,
    /// Field holding the measurement time, if any.
    pub time_field: Option<String>,
    /// Point name the reading is stored under (of the device that carries this source).
    pub point: String,
}

/// Why a message was dropped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Malformed {
    /// The payload is not a JSON object.
    #[error("not a JSON object")]
    NotJson,
    /// The field is not in the message.
    #[error("field {0:?} missing")]
    Missing(String),
    /// The field holds something other than a finite number.
    #[error("field {0:?} is not a number")]
    NotNumber(String),
    /// The time field is neither RFC 3339 nor unix seconds.
    #[error("time field {0:?} is not RFC 3339 or unix seconds")]
    BadTime(String),
    /// The measurement time is too far in the future.
    #[error("measured {0:.0} s in the future")]
    Future(f64),
}

fn lookup<'a>(v: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    path.split('.')
        .try_fold(v, |v, key| v.as_object()?.get(key))
}

/// Decode one message: the number in `json_field` and, when `time_field` is given, the
/// measurement time (unix seconds).
///
/// # Errors
/// Why the message cannot be used.
pub fn decode(
    payload: &[u8],
    json_field: &str,
    time_field: Option<&str>,
) -> Result<(f64, Option<f64>), Malformed> {
    let v: serde_json::Value = serde_json::from_slice(payload).map_err(|_| Malformed::NotJson)?;
    if !v.is_object() {
        return Err(Malformed::NotJson);
    }
    let value = lookup(&v, json_field)
        .ok_or_else(|| Malformed::Missing(json_field.to_owned()))?
        .as_f64()
        .filter(|x| x.is_finite())
        .ok_or_else(|| Malformed::NotNumber(json_field.to_owned()))?;
    let time = match time_field {
        None => None,
        Some(tf) => {
            let t = lookup(&v, tf).ok_or_else(|| Malformed::Missing(tf.to_owned()))?;
            let unix_s = match t {
                serde_json::Value::Number(n) => n.as_f64().filter(|x| x.is_finite()),
                serde_json::Value::String(s) => parse_rfc3339(s),
                _ => None,
            };
            Some(unix_s.ok_or_else(|| Malformed::BadTime(tf.to_owned()))?)
        }
    };
    Ok((value, time))
}

/// Days from 1970-01-01 to a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parse an RFC 3339 time ("2026-11-29T23:15:00Z", "2026-11-30T07:15:00.5+08:00") to unix
/// seconds.
#[must_use]
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if b.len() < 20 || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    if b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut frac = 0.0;
    if let Some(r) = rest.strip_prefix('.') {
        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        frac = format!("0.{}", &r[..digits]).parse().ok()?;
        rest = &r[digits..];
    }
    let offset_s = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let digits = |t: &str| -> Option<i64> {
                t.bytes()
                    .all(|c| c.is_ascii_digit())
                    .then(|| t.parse().ok())?
            };
            let (oh, om) = (digits(rest.get(1..3)?)?, digits(rest.get(4..6)?)?);
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_s;
    #[allow(clippy::cast_precision_loss)]
    Some(secs as f64 + frac)
}

/// How a message with a measurement time is dated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dating {
    /// From its measurement time: this old (clock seconds, at least 0).
    MessageTime {
        /// Age at arrival, clock seconds.
        age_s: f64,
    },
    /// From its arrival: the local wall clock cannot tell its age.
    Arrival(Untrusted),
}

/// Why a message time was not used.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Untrusted {
    /// The local clock is not synchronised (the kernel's flag): in 1970 after a boot without a
    /// battery-backed clock, or just set by hand.
    Unsynchronised,
    /// Synchronisation unknown, and the message time is this far ahead of local wall time (s,
    /// negative: behind) beyond [`MAX_FUTURE_S`] or [`MAX_PAST_UNSURE_S`].
    Implausible {
        /// Message time minus local wall time, s.
        ahead_s: f64,
    },
}

impl std::fmt::Display for Untrusted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unsynchronised => write!(f, "local clock not synchronised"),
            Self::Implausible { ahead_s } => write!(
                f,
                "message time {ahead_s:.0} s from local wall time (clock state unknown)"
            ),
        }
    }
}

/// Date a message measured at `time_unix_s`, received when the local wall clock reads
/// `wall_s` and its synchronisation is `synced` ([`Clock::synced`]):
///
/// - synchronised: the local clock is trusted, the age counts from the message time; a time
///   more than [`MAX_FUTURE_S`] ahead is refused (a clock fault of the collector);
/// - not synchronised: aged from its arrival, whatever the message says;
/// - unknown: from the message time when it is within [`MAX_FUTURE_S`] ahead and
///   [`MAX_PAST_UNSURE_S`] behind the local wall time, else from its arrival.
///
/// # Errors
/// [`Malformed::Future`] on a synchronised clock.
pub fn date_message(
    time_unix_s: f64,
    wall_s: f64,
    synced: Option<bool>,
) -> Result<Dating, Malformed> {
    let age_s = wall_s - time_unix_s;
    match synced {
        Some(true) if age_s < -MAX_FUTURE_S => Err(Malformed::Future(-age_s)),
        Some(true) => Ok(Dating::MessageTime {
            age_s: age_s.max(0.0),
        }),
        Some(false) => Ok(Dating::Arrival(Untrusted::Unsynchronised)),
        None if (-MAX_FUTURE_S..=MAX_PAST_UNSURE_S).contains(&age_s) => Ok(Dating::MessageTime {
            age_s: age_s.max(0.0),
        }),
        None => Ok(Dating::Arrival(Untrusted::Implausible { ahead_s: -age_s })),
    }
}

/// What was last logged about one device's message times.
#[derive(Debug, Clone, Copy, Default)]
struct DeviceDating {
    /// Aged from arrival since the last message.
    by_arrival: bool,
    /// Monotonic time of the last line logged.
    logged_at_s: Option<f64>,
    /// Messages aged from arrival (or retained and ignored) since that line.
    since_logged: u64,
}

/// Rate-limited logging of readings aged from their arrival, per device: a line when a device
/// starts (with the reason), then at most every [`DATING_LOG_EVERY_S`] with a count, and one
/// when its message times are used again. One per mqtt link.
#[derive(Debug, Default)]
pub struct DatingLog {
    devices: HashMap<String, DeviceDating>,
}

impl DatingLog {
    /// Note one message of `device` dated `dating` at monotonic time `now_s`; returns whether a
    /// line was logged.
    fn note(
        &mut self,
        device: &str,
        topic: &str,
        dating: Dating,
        retained: bool,
        now_s: f64,
    ) -> bool {
        let d = self.devices.entry(device.to_owned()).or_default();
        match dating {
            Dating::MessageTime { .. } => {
                if d.by_arrival {
                    *d = DeviceDating::default();
                    tracing::info!(device = %device, topic = %topic, "mqtt message times used again");
                    return true;
                }
                false
            }
            Dating::Arrival(why) => {
                d.since_logged += 1;
                let due = !d.by_arrival
                    || d.logged_at_s
                        .is_none_or(|at| now_s - at >= DATING_LOG_EVERY_S);
                d.by_arrival = true;
                if !due {
                    return false;
                }
                tracing::warn!(
                    device = %device,
                    topic = %topic,
                    %why,
                    messages = d.since_logged,
                    retained,
                    "mqtt message times not used: readings aged from their arrival, retained messages ignored"
                );
                d.logged_at_s = Some(now_s);
                d.since_logged = 0;
                true
            }
        }
    }

    /// Whether `device`'s last message was aged from its arrival.
    #[must_use]
    pub fn by_arrival(&self, device: &str) -> bool {
        self.devices.get(device).is_some_and(|d| d.by_arrival)
    }
}

/// Where each topic's messages go: (device, source).
type Routes = HashMap<String, Vec<(String, MqttSource)>>;

fn routes(plan: &LinkPlan) -> Routes {
    let mut out: Routes = HashMap::new();
    for d in &plan.devices {
        for s in &d.mqtt {
            out.entry(s.topic.clone())
                .or_default()
                .push((d.name.clone(), s.clone()));
        }
    }
    out
}

/// Count one message for `device`: good (at monotonic clock time `ok_at_s`) or malformed.
fn record(shared: &FieldShared, device: &str, ok_at_s: Option<f64>) {
    let mut st = shared.lock();
    let s: &mut DeviceStats = st.stats.entry(device.to_owned()).or_default();
    s.requests += 1;
    match ok_at_s {
        Some(now_s) => {
            s.last_ok_s = Some(now_s);
            s.consecutive_failures = 0;
            s.answered = true;
        }
        None => {
            s.errors += 1;
            s.consecutive_failures = s.consecutive_failures.saturating_add(1);
        }
    }
}

/// Take one message: decode it for every device reading that topic, and store or count it.
/// `retained`: the broker kept it from before (its arrival time says nothing of its age).
/// Its measurement time, if any, is judged against `clock` ([`date_message`]); `log` notes
/// the devices whose readings are aged from their arrival. Returns how many readings were
/// stored.
pub fn handle_message(
    shared: &FieldShared,
    routes: &[(String, MqttSource)],
    payload: &[u8],
    retained: bool,
    clock: &dyn Clock,
    log: &mut DatingLog,
) -> usize {
    let now = clock.now();
    let synced = clock.synced();
    let now_s = now.mono_s;
    let mut stored = 0;
    for (device, src) in routes {
        let decoded = decode(payload, &src.json_field, src.time_field.as_deref());
        let result = decoded.and_then(|(value, time)| {
            let dating = time
                .map(|t| date_message(t, now.wall_s, synced))
                .transpose()?;
            Ok((value, dating))
        });
        let (value, age_s) = match result {
            Err(why) => {
                tracing::warn!(device = %device, topic = %src.topic, %why, "mqtt message dropped");
                record(shared, device, None);
                continue;
            }
            Ok((_, None)) if retained => {
                // A retained message without a time: it may be hours old. Counted, not used.
                tracing::debug!(device = %device, topic = %src.topic, "retained message without a time ignored");
                record(shared, device, Some(now_s));
                continue;
            }
            Ok((value, None)) => (value, 0.0),
            Ok((value, Some(dating))) => {
                log.note(device, &src.topic, dating, retained, now_s);
                match dating {
                    Dating::MessageTime { age_s } => (value, age_s),
                    Dating::Arrival(_) if retained => {
                        // Its time cannot be judged and its arrival says nothing: not used.
                        tracing::debug!(device = %device, topic = %src.topic, "retained message with an untrusted time ignored");
                        record(shared, device, Some(now_s));
                        continue;
                    }
                    Dating::Arrival(_) => (value, 0.0),
                }
            }
        };
        let read_at_s = now_s - age_s;
        record(shared, device, Some(now_s));
        let mut st = shared.lock();
        let points = st.readings.entry(device.clone()).or_default();
        // A message older than the reading held (a late or replayed one) changes nothing.
        if points
            .get(&src.point)
            .is_some_and(|r| r.value.is_some() && r.read_at_s > read_at_s)
        {
            continue;
        }
        points.insert(
            src.point.clone(),
            PointReading {
                value: Some(value),
                error: None,
                read_at_s,
                max_age_s: f64::INFINITY,
            },
        );
        stored += 1;
    }
    stored
}

/// A small pseudo-random source for the reconnect jitter (no cryptographic use).
struct Jitter(u64);

impl Jitter {
    fn new(seed: &str) -> Self {
        let mut x = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::from(d.subsec_nanos()) ^ d.as_secs());
        for b in seed.bytes() {
            x = x.rotate_left(5) ^ u64::from(b);
        }
        Self(x | 1)
    }

    /// A factor in [0.5, 1.0).
    fn factor(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        #[allow(clippy::cast_precision_loss)]
        let u = (self.0 >> 11) as f64 / (1u64 << 53) as f64;
        0.5 + u / 2.0
    }
}

fn tls_config(link: &Link) -> anyhow::Result<rumqttc::TlsConfiguration> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let ca = link
        .ca_file
        .as_deref()
        .unwrap_or("/etc/ssl/certs/ca-certificates.crt");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca)
        .map_err(|e| anyhow::anyhow!("cannot read CA file {ca}: {e}"))?
    {
        let cert = cert.map_err(|e| anyhow::anyhow!("bad certificate in {ca}: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| anyhow::anyhow!("unusable certificate in {ca}: {e}"))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(rumqttc::TlsConfiguration::Rustls(Arc::new(config)))
}

/// The connection options of an mqtt link.
///
/// # Errors
/// A bad broker URL, an unreadable password or CA file.
pub fn options(link: &Link) -> anyhow::Result<MqttOptions> {
    let url = link.broker.as_deref().unwrap_or_default();
    let (tls, host, port) = parse_broker_url(url).map_err(anyhow::Error::msg)?;
    let client_id = link
        .client_id
        .clone()
        .unwrap_or_else(|| format!("{}-in", link.name));
    let mut o = MqttOptions::new(client_id, host, port);
    o.set_keep_alive(KEEP_ALIVE);
    // A clean session: a message the broker queued for us while we were away is not replayed
    // (the collectors report again; retained values carry their time), and an oversized one
    // cannot come back on every reconnect.
    o.set_clean_session(true);
    o.set_max_packet_size(MAX_MESSAGE_BYTES, 64 * 1024);
    if let Some(user) = &link.username {
        let password = match &link.password_file {
            Some(f) => std::fs::read_to_string(f)
                .map_err(|e| anyhow::anyhow!("cannot read password file {f}: {e}"))?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
            None => String::new(),
        };
        o.set_credentials(user.clone(), password);
    }
    if tls {
        o.set_transport(Transport::tls_with_config(tls_config(link)?));
    }
    Ok(o)
}

/// Run one mqtt link until the task is aborted.
pub async fn run_mqtt_link(plan: LinkPlan, shared: Arc<FieldShared>, clock: Arc<dyn Clock>) {
    let link = &plan.link;
    let routes = routes(&plan);
    let min_backoff = Duration::from_millis(link.reconnect_min_ms.max(1));
    let max_backoff =
        Duration::from_millis(link.reconnect_max_ms.max(link.reconnect_min_ms).max(1));
    let mut backoff = min_backoff;
    let mut jitter = Jitter::new(&link.name);
    let mut dating_log = DatingLog::default();
    let mut sleep_backoff = async |backoff: &mut Duration, why: &str| {
        let wait = backoff.mul_f64(jitter.factor());
        tracing::warn!(link = %link.name, error = %why, retry_ms = wait.as_millis(), "mqtt link down");
        tokio::time::sleep(wait).await;
        *backoff = (*backoff * 2).min(max_backoff);
    };
    loop {
        let opts = match options(link) {
            Ok(o) => o,
            Err(e) => {
                sleep_backoff(&mut backoff, &e.to_string()).await;
                continue;
            }
        };
        // Room for every subscribe request (64 topics each) of one connection, never blocking.
        let (client, mut events) = AsyncClient::new(opts, 16 + routes.len() / 64);
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    tracing::info!(link = %link.name, topics = routes.len(), "mqtt link connected");
                    backoff = min_backoff;
                    let filters: Vec<SubscribeFilter> = routes
                        .keys()
                        .map(|t| SubscribeFilter::new(t.clone(), QoS::AtLeastOnce))
                        .collect();
                    for chunk in filters.chunks(64) {
                        if let Err(e) = client.try_subscribe_many(chunk.to_vec()) {
                            tracing::warn!(link = %link.name, error = %e, "cannot subscribe");
                        }
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if let Some(r) = routes.get(p.topic.as_str()) {
                        handle_message(
                            &shared,
                            r,
                            &p.payload,
                            p.retain,
                            clock.as_ref(),
                            &mut dating_log,
                        );
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    let refused = ack
                        .return_codes
                        .iter()
                        .filter(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                        .count();
                    if refused > 0 {
                        tracing::warn!(link = %link.name, refused, "broker refused subscriptions (ACL?)");
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    sleep_backoff(&mut backoff, &e.to_string()).await;
                    // The event loop reconnects on the next poll; new options only after a
                    // configuration error, so keep it.
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::clock::{ScaledClock, SteppableClock};

    /// 2026-11-30 08:00 UTC.
    const TODAY_S: f64 = 1_795_939_200.0;

    #[test]
    fn decodes_numbers_nested_fields_and_times() {
        let p = br#"{"temp_c": 21.5, "ts": "2026-11-29T23:15:00Z", "d": {"t": -3}}"#;
        assert_eq!(decode(p, "temp_c", None), Ok((21.5, None)));
        assert_eq!(decode(p, "d.t", None), Ok((-3.0, None)));
        let (_, t) = decode(p, "temp_c", Some("ts")).unwrap();
        assert_eq!(t, Some(1_795_994_100.0));
        let p = br#"{"temp_c": 20, "ts": 1795994100.25}"#;
        assert_eq!(
            decode(p, "temp_c", Some("ts")),
            Ok((20.0, Some(1_795_994_100.25)))
        );
    }

    #[test]
    fn malformed_messages_are_refused_with_the_reason() {
        assert_eq!(decode(b"not json", "t", None), Err(Malformed::NotJson));
        assert_eq!(decode(b"[1, 2]", "t", None), Err(Malformed::NotJson));
        assert_eq!(decode(b"21.5", "t", None), Err(Malformed::NotJson));
        assert_eq!(
            decode(br#"{"x": 1}"#, "t", None),
            Err(Malformed::Missing("t".into()))
        );
        for bad in [
            r#"{"t": "21.5"}"#,
            r#"{"t": null}"#,
            r#"{"t": "NaN"}"#,
            r#"{"t": {}}"#,
        ] {
            assert_eq!(
                decode(bad.as_bytes(), "t", None),
                Err(Malformed::NotNumber("t".into())),
                "{bad}"
            );
        }
        // JSON has no NaN or infinity literal: such a payload is not JSON.
        assert_eq!(decode(br#"{"t": NaN}"#, "t", None), Err(Malformed::NotJson));
        assert_eq!(
            decode(br#"{"t": 1e999}"#, "t", None),
            Err(Malformed::NotJson)
        );
        assert_eq!(
            decode(br#"{"t": 1, "ts": "yesterday"}"#, "t", Some("ts")),
            Err(Malformed::BadTime("ts".into()))
        );
        assert_eq!(
            decode(br#"{"t": 1}"#, "t", Some("ts")),
            Err(Malformed::Missing("ts".into()))
        );
        let huge = vec![b'['; 100_000];
        assert_eq!(decode(&huge, "t", None), Err(Malformed::NotJson));
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_rfc3339("2000-03-01T00:00:00Z"), Some(951_868_800.0));
        assert_eq!(
            parse_rfc3339("2026-11-30T07:15:00+08:00"),
            parse_rfc3339("2026-11-29T23:15:00Z")
        );
        assert_eq!(
            parse_rfc3339("2026-11-29T23:15:00.5-01:30"),
            Some(1_795_999_500.5)
        );
        for bad in [
            "2026-11-29",
            "2026-13-29T23:15:00Z",
            "2026-11-29T23:15:00",
            "2026-11-29T23:15:00+0800",
            "2026-11-29T23:15:00.Z",
            "2026-11-29X23:15:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    fn room_route(time_field: Option<&str>) -> Vec<(String, MqttSource)> {
        vec![(
            "room:a".into(),
            MqttSource {
                topic: "t/a".into(),
                json_field: "temp_c".into(),
                time_field: time_field.map(str::to_owned),
                point: "temperature".into(),
            },
        )]
    }

    #[test]
    fn messages_become_readings_or_are_counted_as_errors() {
        let shared = FieldShared::default();
        let clock = ScaledClock::starting_at(TODAY_S, 1.0);
        let mut log = DatingLog::default();
        let r = room_route(None);
        assert_eq!(
            handle_message(&shared, &r, br#"{"temp_c": 21.0}"#, false, &clock, &mut log),
            1
        );
        let s = shared
            .sample("room:a", "temperature", clock.mono_s())
            .unwrap();
        assert!(s.valid);
        assert_eq!(s.value, 21.0);
        for bad in [&b"garbage"[..], br#"{"temp_c": "x"}"#, br#"{}"#] {
            assert_eq!(handle_message(&shared, &r, bad, false, &clock, &mut log), 0);
        }
        let stats = shared.stats()["room:a"].clone();
        assert_eq!((stats.requests, stats.errors), (4, 3));
        // Three malformed messages in a row: the node counts as lost, its reading invalid.
        assert!(stats.comm_lost());
        assert!(
            !shared
                .sample("room:a", "temperature", clock.mono_s())
                .unwrap()
                .valid
        );
        assert_eq!(
            handle_message(&shared, &r, br#"{"temp_c": 21.2}"#, false, &clock, &mut log),
            1
        );
        assert!(
            shared
                .sample("room:a", "temperature", clock.mono_s())
                .unwrap()
                .valid
        );
        // A retained message without a time is not taken as fresh.
        assert_eq!(
            handle_message(&shared, &r, br#"{"temp_c": 30.0}"#, true, &clock, &mut log),
            0
        );
        assert_eq!(
            shared.reading("room:a", "temperature").unwrap().value,
            Some(21.2)
        );
    }

    /// Publish `temp_c` measured at `ts` to room a; how many readings were stored.
    fn publish(
        shared: &FieldShared,
        clock: &SteppableClock,
        log: &mut DatingLog,
        temp_c: f64,
        ts: f64,
        retained: bool,
    ) -> usize {
        let msg = format!(r#"{{"temp_c": {temp_c}, "ts": {ts}}}"#);
        handle_message(
            shared,
            &room_route(Some("ts")),
            msg.as_bytes(),
            retained,
            clock,
            log,
        )
    }

    /// Room a's reading now: (value, age in clock seconds).
    fn room_a(shared: &FieldShared, clock: &dyn Clock) -> (f64, f64) {
        let s = shared
            .sample("room:a", "temperature", clock.mono_s())
            .unwrap();
        (s.value, s.age_s)
    }

    #[test]
    fn on_a_synchronised_clock_the_measurement_time_sets_the_age() {
        let shared = FieldShared::default();
        let mut log = DatingLog::default();
        // Ten times faster than real time: every age here is in clock seconds.
        let clock = SteppableClock::starting_at(TODAY_S, 10.0);
        clock.set_synced(Some(true));
        let ten_min_ago = clock.wall_s() - 600.0;
        assert_eq!(
            publish(&shared, &clock, &mut log, 20.5, ten_min_ago, true),
            1,
            "a retained message with a trusted time is used"
        );
        let (v, age) = room_a(&shared, &clock);
        assert_eq!(v, 20.5);
        assert!((600.0..630.0).contains(&age), "age {age}");
        assert!(
            shared
                .sample("room:a", "temperature", clock.mono_s())
                .unwrap()
                .valid,
            "the field layer leaves staleness to the validators"
        );
        // An older message (late, replayed) changes nothing.
        assert_eq!(
            publish(&shared, &clock, &mut log, 19.0, ten_min_ago - 60.0, false),
            0
        );
        assert_eq!(room_a(&shared, &clock).0, 20.5);
        // A message from the far future is refused and counted as an error.
        let future = clock.wall_s() + 3600.0;
        assert_eq!(publish(&shared, &clock, &mut log, 19.0, future, false), 0);
        assert_eq!(shared.stats()["room:a"].errors, 1);
        // A day-old message is a day old (the validators will call it stale).
        let shared = FieldShared::default();
        let day_old = clock.wall_s() - 86_400.0;
        assert_eq!(publish(&shared, &clock, &mut log, 19.0, day_old, false), 1);
        let (_, age) = room_a(&shared, &clock);
        assert!((86_400.0..86_430.0).contains(&age), "age {age}");
        assert!(!log.by_arrival("room:a"));
    }

    #[test]
    fn a_gateway_booted_in_1970_ages_todays_messages_from_their_arrival() {
        for synced in [Some(false), None] {
            let shared = FieldShared::default();
            let mut log = DatingLog::default();
            // 1970-01-01 00:00:12, speed 10.
            let clock = SteppableClock::starting_at(12.0, 10.0);
            clock.set_synced(synced);
            // The collector's clock is right: today.
            assert_eq!(
                publish(&shared, &clock, &mut log, 21.5, TODAY_S, false),
                1,
                "{synced:?}"
            );
            let (v, age) = room_a(&shared, &clock);
            assert_eq!(v, 21.5);
            assert!((0.0..30.0).contains(&age), "{synced:?}: age {age}");
            assert!(log.by_arrival("room:a"));
            // A retained message: its arrival says nothing of its age, so it is not used.
            assert_eq!(
                publish(&shared, &clock, &mut log, 30.0, TODAY_S + 60.0, true),
                0
            );
            assert_eq!(room_a(&shared, &clock).0, 21.5);
            let st = shared.stats()["room:a"].clone();
            assert_eq!((st.requests, st.errors), (2, 0), "{synced:?}");
            // A later message replaces it (arrival order), with a small age again.
            assert_eq!(
                publish(&shared, &clock, &mut log, 21.7, TODAY_S + 120.0, false),
                1
            );
            let (v, age) = room_a(&shared, &clock);
            assert_eq!(v, 21.7);
            assert!((0.0..30.0).contains(&age), "age {age}");
            // NTP sets the clock: message times are used again. (A message measured before
            // the last arrival-dated reading arrived is older than it, and ignored: a fresh
            // store shows its age.)
            clock.set_wall(TODAY_S + 300.0);
            clock.set_synced(Some(true));
            let shared = FieldShared::default();
            assert_eq!(
                publish(&shared, &clock, &mut log, 21.9, TODAY_S + 240.0, false),
                1
            );
            let (v, age) = room_a(&shared, &clock);
            assert_eq!(v, 21.9);
            assert!((60.0..90.0).contains(&age), "age {age}");
            assert!(!log.by_arrival("room:a"));
        }
    }

    #[test]
    fn a_stepped_local_clock_neither_drops_nor_ages_readings() {
        // A step sets the kernel's unsynchronised flag (settimeofday, clock_settime,
        // adjtimex ADJ_SETOFFSET all clear NTP state); on a scaled clock it is unknown.
        for (synced, step_s) in [
            (Some(false), -3600.0),
            (Some(false), 86_400.0),
            (None, -3600.0),
            (None, 86_400.0),
        ] {
            let shared = FieldShared::default();
            let mut log = DatingLog::default();
            let clock = SteppableClock::starting_at(TODAY_S, 10.0);
            clock.set_synced(Some(true));
            assert_eq!(
                publish(&shared, &clock, &mut log, 20.0, clock.wall_s(), false),
                1
            );
            clock.step_wall_by(step_s);
            clock.set_synced(synced);
            // The collector's clock did not step.
            let collector_s = clock.wall_s() - step_s;
            assert_eq!(
                publish(&shared, &clock, &mut log, 20.2, collector_s, false),
                1,
                "{synced:?} {step_s}"
            );
            let (v, age) = room_a(&shared, &clock);
            assert_eq!(v, 20.2, "{synced:?} {step_s}");
            assert!((0.0..30.0).contains(&age), "{synced:?} {step_s}: age {age}");
            let st = shared.stats()["room:a"].clone();
            assert_eq!((st.requests, st.errors), (2, 0), "{synced:?} {step_s}");
            assert!(!st.comm_lost());
        }
    }

    #[test]
    fn message_times_are_judged_by_the_clocks_synchronisation() {
        let now = TODAY_S;
        let age = |d: Result<Dating, Malformed>| match d {
            Ok(Dating::MessageTime { age_s }) => Some(age_s),
            _ => None,
        };
        for synced in [Some(true), None] {
            assert_eq!(age(date_message(now - 60.0, now, synced)), Some(60.0));
            assert_eq!(age(date_message(now + 60.0, now, synced)), Some(0.0));
        }
        assert_eq!(
            date_message(now + 3600.0, now, Some(true)),
            Err(Malformed::Future(3600.0))
        );
        assert_eq!(
            age(date_message(now - 86_400.0, now, Some(true))),
            Some(86_400.0)
        );
        assert_eq!(
            date_message(now - 60.0, now, Some(false)),
            Ok(Dating::Arrival(Untrusted::Unsynchronised))
        );
        assert_eq!(
            date_message(now + 3600.0, now, None),
            Ok(Dating::Arrival(Untrusted::Implausible { ahead_s: 3600.0 }))
        );
        assert_eq!(
            date_message(now - MAX_PAST_UNSURE_S - 1.0, now, None),
            Ok(Dating::Arrival(Untrusted::Implausible {
                ahead_s: -MAX_PAST_UNSURE_S - 1.0
            }))
        );
        assert_eq!(
            age(date_message(now - MAX_PAST_UNSURE_S, now, None)),
            Some(MAX_PAST_UNSURE_S)
        );
    }

    #[test]
    fn readings_aged_from_arrival_are_logged_once_per_device_then_rate_limited() {
        let mut log = DatingLog::default();
        let arrival = Dating::Arrival(Untrusted::Unsynchronised);
        let msg_time = Dating::MessageTime { age_s: 1.0 };
        assert!(
            !log.note("a", "t/a", msg_time, false, 0.0),
            "nothing to say"
        );
        assert!(log.note("a", "t/a", arrival, false, 0.0), "the first one");
        assert!(log.note("b", "t/b", arrival, false, 1.0), "per device");
        for k in 1..1000 {
            assert!(!log.note("a", "t/a", arrival, false, f64::from(k)));
        }
        assert_eq!(log.devices["a"].since_logged, 999);
        assert!(
            log.note("a", "t/a", arrival, false, DATING_LOG_EVERY_S),
            "again after the interval, with the count"
        );
        assert_eq!(log.devices["a"].since_logged, 0);
        assert!(log.note("a", "t/a", msg_time, false, DATING_LOG_EVERY_S + 1.0));
        assert!(!log.note("a", "t/a", msg_time, false, DATING_LOG_EVERY_S + 2.0));
        assert!(log.note("a", "t/a", arrival, false, DATING_LOG_EVERY_S + 3.0));
    }

    #[test]
    fn jitter_stays_between_half_and_one() {
        let mut j = Jitter::new("iot");
        let xs: Vec<f64> = (0..1000).map(|_| j.factor()).collect();
        assert!(xs.iter().all(|x| (0.5..1.0).contains(x)));
        assert!(xs.iter().any(|&x| x < 0.6) && xs.iter().any(|&x| x > 0.9));
    }
}
