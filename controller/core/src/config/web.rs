//! `[web]`: the technician's local status page (off by default).

use serde::{Deserialize, Serialize};

use super::check::{Checker, Rules};
use super::scada::check_writable;

/// The local status page: live station state over HTTP, in Chinese and English (off by
/// default).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Web {
    /// Whether the page is served.
    pub enabled: bool,
    /// Address to listen on; keep "127.0.0.1:8080" (local only) unless the network is trusted.
    pub listen: String,
    /// Settings the page may change when a token is configured; any of "curve_shift_k",
    /// "operating_mode", "room_target_c", "demand_enabled", "valve1_manual_pct".
    pub writable: Vec<String>,
}

impl Default for Web {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: "127.0.0.1:8080".into(),
            writable: vec![
                "curve_shift_k".into(),
                "room_target_c".into(),
                "operating_mode".into(),
                "valve1_manual_pct".into(),
            ],
        }
    }
}

impl Rules for Web {
    const ALLOWED: &'static [(&'static str, &'static str)] = &[("listen", "address:port")];
}

impl Web {
    pub(crate) fn check(&self, k: &mut Checker) {
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            k.fail(
                "web.listen",
                format!("{:?} is not an address:port", self.listen),
            );
        }
        check_writable("web.writable", &self.writable, k);
    }
}
