//! `[platform]`: the link to the utility's platform over MQTT (off by default).

use serde::{Deserialize, Serialize};

use super::check::{Bound, Checker, Rules, bounds};
use super::scada::check_writable;

/// The platform link: telemetry, state, alarms and audit published to the utility's MQTT
/// broker through a queue on disk, and commands taken from it (off by default).
/// `heatctl platform-schema` prints the topics and payloads.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Platform {
    /// Whether the link runs.
    pub enabled: bool,
    /// Broker URLs, tried in turn until one accepts: "mqtt://host:port" (plain TCP, port
    /// 1883 when left out) or "mqtts://host:port" (TLS, port 8883 when left out).
    pub brokers: Vec<String>,
    /// MQTT client id. Empty: the station id. Two clients with one id knock each other off
    /// the broker: keep it unique in the estate.
    pub client_id: String,
    /// Site (estate, company area) id in the topics; letters, digits, '-' and '_'.
    pub site_id: String,
    /// Station id in the topics; letters, digits, '-' and '_'. Empty: derived from
    /// `site.name`.
    pub station_id: String,
    /// MQTT user name. Empty: connect without one.
    pub username: String,
    /// File holding the MQTT password (its first line), read at start; the password is never
    /// written in this configuration. Empty: no password. Path absolute, or relative to the
    /// working directory.
    pub password_file: String,
    /// PEM file of the certificate authorities that sign the broker's certificate (mqtts).
    /// Empty: the system's store, /etc/ssl/certs/ca-certificates.crt.
    pub ca_file: String,
    /// PEM file of this station's client certificate, for brokers that require one (mqtts;
    /// give `client_key_file` too). Empty: none.
    pub client_cert_file: String,
    /// PEM file of the client certificate's private key (PKCS#8, PKCS#1 or SEC1). Empty: none.
    pub client_key_file: String,
    /// MQTT keep-alive, s: the broker declares the station offline (its last will) after 1.5
    /// times this without traffic.
    pub keepalive_s: f64,
    /// First level of every topic: `{topic_prefix}/{site_id}/{station_id}/...`; levels
    /// separated by '/', no '+', '#' or empty level.
    pub topic_prefix: String,
    /// Telemetry period, s of controller time (on an accelerated clock: simulated seconds).
    pub telemetry_period_s: f64,
    /// Cap on the queue on disk (`<state dir>/platform-queue`), MB (10^6 bytes); when full,
    /// the oldest messages are dropped and counted.
    pub queue_max_mb: f64,
    /// Shortest wait before a reconnection attempt, s (each wait is drawn at random up to a
    /// limit that doubles per failed attempt: exponential back-off with full jitter).
    pub reconnect_min_s: f64,
    /// Longest wait before a reconnection attempt, s.
    pub reconnect_max_s: f64,
    /// Largest command payload taken, bytes; a larger one is refused with a reason.
    pub command_max_bytes: f64,
    /// A message older than this when it is finally sent is marked `"backfill": true`, s
    /// (messages queued while disconnected are marked anyway).
    pub backfill_after_s: f64,
    /// Settings the platform may change by command; any of "curve_shift_k", "operating_mode",
    /// "room_target_c", "demand_enabled", "valve1_manual_pct".
    pub writable: Vec<String>,
}

impl Default for Platform {
    fn default() -> Self {
        Self {
            enabled: false,
            brokers: Vec::new(),
            client_id: String::new(),
            site_id: "site".into(),
            station_id: String::new(),
            username: String::new(),
            password_file: String::new(),
            ca_file: String::new(),
            client_cert_file: String::new(),
            client_key_file: String::new(),
            keepalive_s: 30.0,
            topic_prefix: "heatctl".into(),
            telemetry_period_s: 60.0,
            queue_max_mb: 64.0,
            reconnect_min_s: 1.0,
            reconnect_max_s: 60.0,
            command_max_bytes: 262_144.0,
            backfill_after_s: 30.0,
            writable: vec!["curve_shift_k".into(), "room_target_c".into()],
        }
    }
}

impl Rules for Platform {
    const BOUNDS: &'static [Bound<Self>] = bounds!(Platform {
        keepalive_s: 5.0..=3600.0,
        telemetry_period_s: 1.0..=86_400.0,
        queue_max_mb: 0.01..=16_384.0,
        reconnect_min_s: 0.1..=3600.0,
        reconnect_max_s: 0.1..=86_400.0,
        command_max_bytes: 1024.0..=16_000_000.0,
        backfill_after_s: 1.0..=86_400.0,
    });
    const ALLOWED: &'static [(&'static str, &'static str)] = &[
        (
            "brokers",
            "\"mqtt://host[:port]\" or \"mqtts://host[:port]\"; at least one when enabled",
        ),
        (
            "client_id",
            "1 to 128 printable ASCII characters; empty: the station id",
        ),
        ("site_id", "letters, digits, '-' and '_'"),
        (
            "station_id",
            "letters, digits, '-' and '_'; empty: from site.name",
        ),
        (
            "topic_prefix",
            "topic levels without '+', '#' or empty levels",
        ),
        ("client_key_file", "given together with client_cert_file"),
    ];
}

/// A broker address from `platform.brokers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// TLS (mqtts).
    pub tls: bool,
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl BrokerUrl {
    /// Parse "mqtt://host[:port]" or "mqtts://host[:port]".
    ///
    /// # Errors
    /// What is wrong with the URL, in words.
    pub fn parse(url: &str) -> Result<Self, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("mqtts://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("mqtt://") {
            (false, r)
        } else {
            return Err(format!(
                "{url:?}: use mqtt://host:port or mqtts://host:port"
            ));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('@') {
            return Err(format!(
                "{url:?}: no credentials in the URL (use username and password_file)"
            ));
        }
        let (host, port) = if let Some(h) = rest.strip_prefix('[') {
            // [v6]:port
            let (h, after) = h
                .split_once(']')
                .ok_or_else(|| format!("{url:?}: unclosed '[' in the host"))?;
            (h.to_owned(), after.strip_prefix(':'))
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (rest.to_owned(), None),
            }
        };
        if host.is_empty() || host.contains('/') {
            return Err(format!("{url:?}: no host name"));
        }
        let port = match port {
            None => {
                if tls {
                    8883
                } else {
                    1883
                }
            }
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| format!("{url:?}: port {p:?} is not 1 to 65535"))?,
        };
        Ok(Self { tls, host, port })
    }
}

impl std::fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Whether `id` is usable as one MQTT topic level.
pub(crate) fn is_topic_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A station id derived from a site name: ASCII letters and digits kept (lower case), anything
/// else becomes '-'; "station" when nothing is left.
#[must_use]
pub fn station_id_from_name(name: &str) -> String {
    let mut id = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            id.push(c.to_ascii_lowercase());
        } else if !id.ends_with('-') && !id.is_empty() {
            id.push('-');
        }
    }
    let id = id.trim_end_matches('-').to_owned();
    if id.is_empty() { "station".into() } else { id }
}

impl Platform {
    /// The station id in force: `station_id`, or derived from the site name.
    #[must_use]
    pub fn station_id_or(&self, site_name: &str) -> String {
        if self.station_id.is_empty() {
            station_id_from_name(site_name)
        } else {
            self.station_id.clone()
        }
    }

    /// The MQTT client id in force: `client_id`, or the station id.
    #[must_use]
    pub fn client_id_or(&self, site_name: &str) -> String {
        if self.client_id.is_empty() {
            self.station_id_or(site_name)
        } else {
            self.client_id.clone()
        }
    }

    pub(crate) fn check(&self, k: &mut Checker) {
        if !is_topic_id(&self.site_id) {
            k.fail(
                "platform.site_id",
                format!("{:?}: use letters, digits, '-' and '_'", self.site_id),
            );
        }
        if !self.station_id.is_empty() && !is_topic_id(&self.station_id) {
            k.fail(
                "platform.station_id",
                format!("{:?}: use letters, digits, '-' and '_'", self.station_id),
            );
        }
        if self.enabled && self.brokers.is_empty() {
            k.fail(
                "platform.brokers",
                "the link is enabled but no broker is given: add e.g. \"mqtt://broker:1883\"",
            );
        }
        for (i, url) in self.brokers.iter().enumerate() {
            if let Err(e) = BrokerUrl::parse(url) {
                k.fail(format!("platform.brokers[{i}]"), e);
            }
        }
        if !self.client_id.is_empty()
            && (self.client_id.len() > 128 || !self.client_id.chars().all(|c| c.is_ascii_graphic()))
        {
            k.fail(
                "platform.client_id",
                format!(
                    "{:?}: use 1 to 128 printable ASCII characters",
                    self.client_id
                ),
            );
        }
        if self.topic_prefix.is_empty()
            || self
                .topic_prefix
                .split('/')
                .any(|l| l.is_empty() || l.contains(['+', '#']) || l.contains('\0'))
        {
            k.fail(
                "platform.topic_prefix",
                format!(
                    "{:?}: use topic levels separated by '/', without '+', '#' or empty levels",
                    self.topic_prefix
                ),
            );
        }
        if self.client_cert_file.is_empty() != self.client_key_file.is_empty() {
            k.fail(
                "platform.client_key_file",
                "give client_cert_file and client_key_file together, or neither",
            );
        }
        k.bounds("platform", self);
        if self.reconnect_min_s > self.reconnect_max_s {
            k.fail(
                "platform.reconnect_min_s",
                format!(
                    "{} must not exceed platform.reconnect_max_s ({})",
                    self.reconnect_min_s, self.reconnect_max_s
                ),
            );
        }
        check_writable("platform.writable", &self.writable, k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;

    const BASE: &str = "[site]\nname = \"Test Street 1\"\n[curve]\n";

    fn problems(platform: &str) -> String {
        let text = format!("{BASE}[platform]\n{platform}");
        match parse_str(&text, Some(std::path::Path::new("t.toml"))) {
            Ok(_) => String::new(),
            Err(p) => {
                p.0.iter()
                    .map(ToString::to_string)
                    // The minimal file has no curve: only this table's problems count here.
                    .filter(|p| !p.contains(": curve:"))
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        }
    }

    #[test]
    fn broker_urls_parse_with_default_ports() {
        let b = BrokerUrl::parse("mqtts://broker.example:8884").expect("ok");
        assert_eq!(
            (b.tls, b.host.as_str(), b.port),
            (true, "broker.example", 8884)
        );
        assert_eq!(BrokerUrl::parse("mqtt://h").expect("ok").port, 1883);
        assert_eq!(BrokerUrl::parse("mqtts://h").expect("ok").port, 8883);
        assert_eq!(
            BrokerUrl::parse("mqtt://[::1]:1884").expect("ok").host,
            "::1"
        );
        assert_eq!(
            BrokerUrl::parse("mqtt://[::1]:1884")
                .expect("ok")
                .to_string(),
            "mqtt://[::1]:1884"
        );
        for bad in [
            "tcp://h:1",
            "mqtt://:1883",
            "mqtt://h:0",
            "mqtt://h:99999",
            "mqtt://u:p@h",
        ] {
            assert!(BrokerUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_good_table_passes_and_defaults_are_as_documented() {
        assert_eq!(
            problems("enabled = true\nbrokers = [\"mqtt://127.0.0.1:1883\"]\n"),
            ""
        );
        let p = Platform::default();
        assert_eq!(p.topic_prefix, "heatctl");
        assert_eq!(p.telemetry_period_s, 60.0);
        assert!(!p.enabled);
        assert_eq!(p.client_id_or("Test Street 1"), "test-street-1");
    }

    #[test]
    fn bad_values_are_reported_with_their_position() {
        let out = problems(
            "enabled = true\nbrokers = [\"http://x\"]\ntopic_prefix = \"a/+/b\"\n\
             client_cert_file = \"c.pem\"\nreconnect_min_s = 90.0\nreconnect_max_s = 30.0\n\
             keepalive_s = 1.0\n",
        );
        for want in [
            "t.toml:6:12: platform.brokers[0]",
            "platform.topic_prefix",
            "platform.client_key_file",
            "platform.reconnect_min_s",
            "platform.keepalive_s",
        ] {
            assert!(out.contains(want), "{want} not in:\n{out}");
        }
        assert!(problems("enabled = true\n").contains("no broker"));
        assert!(problems("password = \"x\"\n").contains("password"));
    }
}
