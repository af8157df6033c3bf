//! `[platform]`: the link to the utility's platform over MQTT (off by default).

use serde::{Deserialize, Serialize};

use super::check::{Checker, Rules};
use super::scada::check_writable;

/// The platform link: telemetry, state, alarms and audit published to the utility's MQTT
/// broker through a queue on disk, and commands taken from it (off by default).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Platform {
    /// Whether the link runs.
    pub enabled: bool,
    /// Site (estate, company area) id in the topics; letters, digits, '-' and '_'.
    pub site_id: String,
    /// Station id in the topics; letters, digits, '-' and '_'. Empty: derived from
    /// `site.name`.
    pub station_id: String,
    /// Settings the platform may change by command; any of "curve_shift_k", "operating_mode",
    /// "room_target_c", "demand_enabled", "valve1_manual_pct".
    pub writable: Vec<String>,
}

impl Default for Platform {
    fn default() -> Self {
        Self {
            enabled: false,
            site_id: "site".into(),
            station_id: String::new(),
            writable: vec!["curve_shift_k".into(), "room_target_c".into()],
        }
    }
}

impl Rules for Platform {
    const ALLOWED: &'static [(&'static str, &'static str)] = &[
        ("site_id", "letters, digits, '-' and '_'"),
        (
            "station_id",
            "letters, digits, '-' and '_'; empty: from site.name",
        ),
    ];
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
        check_writable("platform.writable", &self.writable, k);
    }
}
