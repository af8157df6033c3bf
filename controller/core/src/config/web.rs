//! `[web]`: the technician's local status page (off by default).

use serde::{Deserialize, Serialize};

use super::check::{Checker, Rules};
use super::scada::check_writable;

/// The local status page: live station state over HTTP, in Chinese and English (off by
/// default). Read-only unless `token_file` names a file holding the write token; with
/// `tls_cert_file` and `tls_key_file` it is served over HTTPS only.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Web {
    /// Whether the page is served.
    pub enabled: bool,
    /// Address to listen on; keep "127.0.0.1:8080" (local only) unless the network is trusted.
    pub listen: String,
    /// File holding the write token (one line; keep it readable by heatctl only). Without it
    /// the page and its API are read-only. The token itself never goes in this file.
    pub token_file: Option<String>,
    /// PEM certificate chain for HTTPS (with `tls_key_file`); without both: plain HTTP.
    pub tls_cert_file: Option<String>,
    /// PEM private key for HTTPS (with `tls_cert_file`).
    pub tls_key_file: Option<String>,
    /// Hours of trends kept in memory (one row per clock minute), h.
    pub trend_hours: u32,
    /// Most live-update (server-sent events) clients served at once; more are answered 503.
    pub max_sse_clients: u32,
    /// Settings the page may change when a token is configured; any of "curve_shift_k",
    /// "operating_mode", "room_target_c", "demand_enabled", "valve1_manual_pct".
    pub writable: Vec<String>,
    #[serde(skip)]
    inline_token: InlineToken,
}

/// A write token handed over in-process (the demo), never read from or written to a file.
#[derive(Clone, Default, PartialEq)]
struct InlineToken(Option<String>);

impl std::fmt::Debug for InlineToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Some(<token>)"
        } else {
            "None"
        })
    }
}

impl Default for Web {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: "127.0.0.1:8080".into(),
            token_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            trend_hours: 48,
            max_sse_clients: 64,
            writable: vec![
                "curve_shift_k".into(),
                "room_target_c".into(),
                "operating_mode".into(),
                "valve1_manual_pct".into(),
            ],
            inline_token: InlineToken::default(),
        }
    }
}

impl Rules for Web {
    const ALLOWED: &'static [(&'static str, &'static str)] = &[
        ("listen", "address:port"),
        (
            "token_file",
            "a path; the file holds the token (at least 8 characters)",
        ),
        ("tls_cert_file", "a path; give tls_key_file too"),
        ("tls_key_file", "a path; give tls_cert_file too"),
        ("trend_hours", "1 to 168"),
        ("max_sse_clients", "1 to 1024"),
    ];
}

impl Web {
    /// A write token given in-process (the demo has no files); it takes the place of
    /// `token_file`. Never serialised.
    pub fn set_inline_token(&mut self, token: Option<String>) {
        self.inline_token = InlineToken(token);
    }

    /// The write token given in-process, if any.
    #[must_use]
    pub fn inline_token(&self) -> Option<&str> {
        self.inline_token.0.as_deref()
    }

    pub(crate) fn check(&self, k: &mut Checker) {
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            k.fail(
                "web.listen",
                format!("{:?} is not an address:port", self.listen),
            );
        }
        for (key, path) in [
            ("web.token_file", &self.token_file),
            ("web.tls_cert_file", &self.tls_cert_file),
            ("web.tls_key_file", &self.tls_key_file),
        ] {
            if path.as_deref().is_some_and(|p| p.trim().is_empty()) {
                k.fail(key, "an empty path; leave the key out instead");
            }
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            k.fail(
                "web.tls_cert_file",
                "give both tls_cert_file and tls_key_file for HTTPS, or neither",
            );
        }
        k.range("web.trend_hours", f64::from(self.trend_hours), 1.0, 168.0);
        k.range(
            "web.max_sse_clients",
            f64::from(self.max_sse_clients),
            1.0,
            1024.0,
        );
        check_writable("web.writable", &self.writable, k);
    }
}
