//! `[scada]`: the Modbus TCP slave for the utility's control system.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::check::{Checker, Rules};

/// Settings SCADA may write (the allowlist names).
pub const SCADA_WRITABLE: &[&str] = &[
    "curve_shift_k",
    "operating_mode",
    "room_target_c",
    "demand_enabled",
    "valve1_manual_pct",
];

/// The SCADA face: a Modbus TCP slave (off by default).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scada {
    /// Whether the slave listens.
    pub enabled: bool,
    /// Address to listen on, e.g. "0.0.0.0:502" (use a firewall) or "127.0.0.1:1502".
    pub listen: String,
    /// Unit id the slave answers to (0 and 255 are always accepted on TCP).
    pub unit_id: u8,
    /// Most simultaneous SCADA connections. When all are taken, a new client closes the
    /// longest-idle one (never one in the middle of a request, and one that has had fewer than
    /// 3 requests answered before a poller that has had more) and is served in its place, so
    /// idle connections cannot lock the SCADA master out; it is refused only when every
    /// connection is in the middle of a request. 1 to 64.
    pub max_connections: u32,
    /// A connection that sends no request for this long is closed, freeing its slot for
    /// another client, s. Set it above the SCADA master's poll period if the master keeps
    /// its connection open between polls. 1 to 86400.
    pub idle_timeout_s: f64,
    /// Longest time from a request's first byte to its last (and to the answer being taken
    /// by the client), s; a client sending slower than this is disconnected, so a trickle
    /// of bytes cannot hold a connection slot. A request on a working network takes
    /// milliseconds. 0.5 to 60.
    pub request_timeout_s: f64,
    /// Settings SCADA may write; anything else answers exception 02. Any of
    /// "curve_shift_k", "operating_mode", "room_target_c", "demand_enabled", "valve1_manual_pct".
    pub writable: Vec<String>,
}
impl Default for Scada {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: "127.0.0.1:1502".into(),
            unit_id: 1,
            max_connections: 4,
            idle_timeout_s: 120.0,
            request_timeout_s: 5.0,
            writable: vec!["curve_shift_k".into(), "room_target_c".into()],
        }
    }
}

impl Rules for Scada {
    const ALLOWED: &'static [(&'static str, &'static str)] = &[
        ("listen", "address:port"),
        ("max_connections", "1 to 64"),
        ("idle_timeout_s", "1 to 86400"),
        ("request_timeout_s", "0.5 to 60"),
    ];

    fn allowed(key: &str) -> Option<String> {
        match key {
            "writable" => Some(format!("any of {}; each once", SCADA_WRITABLE.join(", "))),
            _ => Self::ALLOWED
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, a)| (*a).to_owned()),
        }
    }
}

impl Scada {
    pub(crate) fn check(&self, k: &mut Checker) {
        let s = self;
        if s.listen.parse::<std::net::SocketAddr>().is_err() {
            k.fail(
                "scada.listen",
                format!("{:?} is not an address:port", s.listen),
            );
        }
        if !(1..=64).contains(&s.max_connections) {
            k.fail("scada.max_connections", "must be 1..64");
        }
        if !(1.0..=86_400.0).contains(&s.idle_timeout_s) {
            k.fail("scada.idle_timeout_s", "must be 1..86400 s");
        }
        if !(0.5..=60.0).contains(&s.request_timeout_s) {
            k.fail("scada.request_timeout_s", "must be 0.5..60 s");
        }
        check_writable("scada.writable", &s.writable, k);
    }
}

/// Check a list of writable setting names at `path`: each known, each once.
pub(crate) fn check_writable(path: &str, writable: &[String], k: &mut Checker) {
    let mut seen = HashSet::new();
    for (i, w) in writable.iter().enumerate() {
        if !SCADA_WRITABLE.contains(&w.as_str()) {
            k.fail(
                format!("{path}[{i}]"),
                format!(
                    "{w:?} is not a writable setting; choose from {}",
                    SCADA_WRITABLE.join(", ")
                ),
            );
        }
        if !seen.insert(w) {
            k.fail(format!("{path}[{i}]"), format!("{w:?} is listed twice"));
        }
    }
}
