//! The one settings gate: every change from outside (a SCADA holding-register write, a platform
//! command, a web write, a pushed configuration) passes the same checks here, is applied by the
//! runtime between two cycles, and is audited, accepted or refused.
//!
//! The checks: the setting is known, the source may write it (its face's `writable` list:
//! `scada.writable`, `platform.writable`, `web.writable`) and the value has the right type and
//! is within the range of its SCADA holding register ([`HOLDING_REGISTERS`]). A refused request
//! changes nothing and says why. A configuration is validated in full by the runtime (every
//! problem returned) before anything is written.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::audit::{Audit, AuditRecord, rfc3339_utc, wall_unix_s};
use crate::scada::map::HOLDING_REGISTERS;

/// How long [`Gate::submit`] waits for the runtime to apply a request (a cycle is 1 s; a
/// configuration push may bind new sockets).
pub const APPLY_LIMIT: Duration = Duration::from_secs(15);

/// Where a change request comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A SCADA holding-register write.
    Scada,
    /// A command from the utility's platform (MQTT).
    Platform,
    /// A write from the technician's web page.
    Web,
    /// The configuration file (reloaded on change or SIGHUP).
    File,
}

impl Source {
    /// Name in the audit log.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Source::Scada => "scada",
            Source::Platform => "platform",
            Source::Web => "web",
            Source::File => "file",
        }
    }
}

/// What is asked.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// One setting by its name (as the SCADA holding registers name it).
    Setting {
        /// Setting name, e.g. "curve_shift_k".
        name: String,
        /// The value: a number; for "demand_enabled" also true/false; for "operating_mode"
        /// also "auto", "off" or "manual".
        value: Value,
    },
    /// A whole new configuration (TOML text), applied like a reload.
    Config {
        /// The configuration file's new text.
        toml: String,
    },
}

impl Change {
    /// Name in the audit log: the setting's name, or "config".
    #[must_use]
    pub fn what(&self) -> &str {
        match self {
            Change::Setting { name, .. } => name,
            Change::Config { .. } => "config",
        }
    }
}

/// A change request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRequest {
    /// Who asks.
    pub source: Source,
    /// The client (SCADA peer, MQTT topic, web address).
    pub client: String,
    /// What is asked.
    pub change: Change,
}

/// What became of a change request.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChangeOutcome {
    /// Applied.
    pub accepted: bool,
    /// Why it was refused.
    pub reason: Option<String>,
    /// Every problem of a refused configuration (path, line:col, message).
    pub problems: Vec<String>,
    /// The value before (for a configuration: its hash).
    pub old: Option<Value>,
    /// The value now in force (for a configuration: its hash).
    pub new: Option<Value>,
}

impl ChangeOutcome {
    /// Refused for `reason`.
    #[must_use]
    pub fn refused(reason: impl Into<String>) -> Self {
        Self {
            reason: Some(reason.into()),
            ..Self::default()
        }
    }

    /// Applied: `old` -> `new`.
    #[must_use]
    pub fn applied(old: Value, new: Value) -> Self {
        Self {
            accepted: true,
            old: Some(old),
            new: Some(new),
            ..Self::default()
        }
    }
}

/// A checked setting, ready for the controller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Setting {
    /// Curve shift, K.
    CurveShiftK(f64),
    /// Operating mode: 0 auto, 1 off, 2 manual.
    OperatingMode(u16),
    /// Room target, °C.
    RoomTargetC(f64),
    /// Demand correction on/off.
    DemandEnabled(bool),
    /// Primary valve position in manual mode, %.
    Valve1ManualPct(f64),
}

/// Why a setting was refused by the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No such setting.
    Unknown(String),
    /// The source may not write it.
    NotWritable(String),
    /// Wrong type or out of range.
    BadValue(String),
}

impl Refusal {
    /// The reason, in words.
    #[must_use]
    pub fn reason(&self) -> &str {
        match self {
            Refusal::Unknown(r) | Refusal::NotWritable(r) | Refusal::BadValue(r) => r,
        }
    }
}

/// Which settings each face may write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// `scada.writable`.
    pub scada: Vec<String>,
    /// `platform.writable`.
    pub platform: Vec<String>,
    /// `web.writable`.
    pub web: Vec<String>,
}

impl Access {
    /// The allowlists of a configuration.
    #[must_use]
    pub fn of(cfg: &crate::config::Config) -> Self {
        Self {
            scada: cfg.scada.writable.clone(),
            platform: cfg.platform.writable.clone(),
            web: cfg.web.writable.clone(),
        }
    }

    fn list(&self, source: Source) -> &[String] {
        match source {
            Source::Scada => &self.scada,
            Source::Platform => &self.platform,
            Source::Web => &self.web,
            Source::File => &[],
        }
    }
}

/// A request on its way to the runtime.
#[derive(Debug)]
pub struct GateMsg {
    /// The request.
    pub request: ChangeRequest,
    /// The checked setting (None for a configuration).
    pub setting: Option<Setting>,
    /// Where the outcome goes (None: nobody waits, e.g. SCADA, answered at once).
    pub reply: Option<oneshot::Sender<ChangeOutcome>>,
}

/// The receiving end, owned by the runtime.
pub type GateReceiver = mpsc::UnboundedReceiver<GateMsg>;

/// The settings gate (cheap to clone).
#[derive(Debug, Clone)]
pub struct Gate {
    inner: Arc<GateInner>,
}

#[derive(Debug)]
struct GateInner {
    access: Mutex<Access>,
    tx: mpsc::UnboundedSender<GateMsg>,
    audit: Audit,
}

impl Gate {
    /// A gate with these allowlists, auditing to `audit`; the runtime takes requests from the
    /// receiver.
    #[must_use]
    pub fn new(access: Access, audit: Audit) -> (Self, GateReceiver) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Self {
                inner: Arc::new(GateInner {
                    access: Mutex::new(access),
                    tx,
                    audit,
                }),
            },
            rx,
        )
    }

    /// Replace the allowlists (configuration reload).
    pub fn set_access(&self, access: Access) {
        *self
            .inner
            .access
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = access;
    }

    /// The allowlist of `source`.
    #[must_use]
    pub fn writable(&self, source: Source) -> Vec<String> {
        self.inner
            .access
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .list(source)
            .to_vec()
    }

    /// The audit log the gate writes to.
    #[must_use]
    pub fn audit(&self) -> &Audit {
        &self.inner.audit
    }

    /// Check a setting for `source` without applying it.
    ///
    /// # Errors
    /// Unknown setting, not writable by the source, wrong type or out of range.
    pub fn check_setting(
        &self,
        source: Source,
        name: &str,
        value: &Value,
    ) -> Result<Setting, Refusal> {
        let def = HOLDING_REGISTERS
            .iter()
            .find(|d| d.name == name)
            .ok_or_else(|| {
                Refusal::Unknown(format!(
                    "unknown setting {name:?}; settings: {}",
                    HOLDING_REGISTERS
                        .iter()
                        .map(|d| d.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        let allowed = self.writable(source);
        if !allowed.iter().any(|w| w == name) {
            return Err(Refusal::NotWritable(format!(
                "{name} is not writable from {} (allowed: {})",
                source.name(),
                if allowed.is_empty() {
                    "none".to_owned()
                } else {
                    allowed.join(", ")
                }
            )));
        }
        let number = match (name, value) {
            ("operating_mode", Value::String(s)) => match s.as_str() {
                "auto" => 0.0,
                "off" => 1.0,
                "manual" => 2.0,
                _ => {
                    return Err(Refusal::BadValue(format!(
                        "operating_mode {s:?}: use \"auto\", \"off\" or \"manual\" (or 0, 1, 2)"
                    )));
                }
            },
            ("demand_enabled", Value::Bool(b)) => f64::from(u8::from(*b)),
            (_, Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
            _ => {
                return Err(Refusal::BadValue(format!(
                    "{name}: {value} is not a number"
                )));
            }
        };
        if !number.is_finite() {
            return Err(Refusal::BadValue(format!("{name}: not a finite number")));
        }
        if let Some((lo, hi)) = def.range
            && (number < lo || number > hi)
        {
            return Err(Refusal::BadValue(format!(
                "{name} = {number} is out of range {lo} to {hi} {}",
                def.unit
            )));
        }
        let whole = |what: &str| {
            if number.fract() == 0.0 {
                Ok(number as u16)
            } else {
                Err(Refusal::BadValue(format!("{name}: {what}")))
            }
        };
        Ok(match name {
            "curve_shift_k" => Setting::CurveShiftK(number),
            "operating_mode" => Setting::OperatingMode(whole("use 0, 1 or 2")?),
            "room_target_c" => Setting::RoomTargetC(number),
            "demand_enabled" => Setting::DemandEnabled(whole("use 0 or 1, true or false")? == 1),
            "valve1_manual_pct" => Setting::Valve1ManualPct(number),
            _ => return Err(Refusal::Unknown(format!("unknown setting {name:?}"))),
        })
    }

    /// Audit a request refused before it reached the runtime (e.g. a malformed command).
    pub fn refuse(&self, request: &ChangeRequest, outcome: &ChangeOutcome) {
        self.inner.audit.record(audit_record(request, outcome));
    }

    /// Check and hand a request to the runtime, and wait for its outcome (at most
    /// [`APPLY_LIMIT`]). Refusals are audited here, decisions of the runtime there.
    pub async fn submit(&self, request: ChangeRequest) -> ChangeOutcome {
        let setting = match &request.change {
            Change::Setting { name, value } => {
                match self.check_setting(request.source, name, value) {
                    Ok(s) => Some(s),
                    Err(r) => {
                        let outcome = ChangeOutcome::refused(r.reason());
                        self.refuse(&request, &outcome);
                        return outcome;
                    }
                }
            }
            Change::Config { .. } => None,
        };
        let (tx, rx) = oneshot::channel();
        let audit_copy = request.clone();
        if self
            .inner
            .tx
            .send(GateMsg {
                request,
                setting,
                reply: Some(tx),
            })
            .is_err()
        {
            let outcome = ChangeOutcome::refused("the controller is not running");
            self.refuse(&audit_copy, &outcome);
            return outcome;
        }
        match tokio::time::timeout(APPLY_LIMIT, rx).await {
            Ok(Ok(outcome)) => outcome,
            // The runtime audits what it decided; a lost answer is only reported.
            _ => ChangeOutcome::refused("no answer from the controller in time; see the audit log"),
        }
    }

    /// Hand an already checked setting to the runtime without waiting (a SCADA write, answered
    /// on the wire at once). False when the runtime is gone.
    pub fn send_checked(&self, request: ChangeRequest, setting: Setting) -> bool {
        self.inner
            .tx
            .send(GateMsg {
                request,
                setting: Some(setting),
                reply: None,
            })
            .is_ok()
    }
}

/// The audit record of a decision, timed now.
#[must_use]
pub fn audit_record(request: &ChangeRequest, outcome: &ChangeOutcome) -> AuditRecord {
    let new = outcome.new.clone().or_else(|| match &request.change {
        Change::Setting { value, .. } => Some(value.clone()),
        Change::Config { .. } => None,
    });
    let mut reason = outcome.reason.clone();
    if !outcome.problems.is_empty() {
        reason = Some(format!(
            "{}{}",
            reason.map(|r| format!("{r}: ")).unwrap_or_default(),
            outcome.problems.join("; ")
        ));
    }
    AuditRecord {
        time_utc: rfc3339_utc(wall_unix_s()),
        source: request.source.name().into(),
        client: request.client.clone(),
        what: request.change.what().into(),
        old: outcome.old.clone(),
        new,
        result: if outcome.accepted {
            "accepted"
        } else {
            "refused"
        }
        .into(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gate() -> (Gate, GateReceiver) {
        Gate::new(
            Access {
                scada: vec!["curve_shift_k".into()],
                platform: vec!["curve_shift_k".into(), "operating_mode".into()],
                web: vec!["demand_enabled".into()],
            },
            Audit::in_memory(),
        )
    }

    #[test]
    fn one_check_for_every_face() {
        let (g, _rx) = gate();
        assert_eq!(
            g.check_setting(Source::Scada, "curve_shift_k", &json!(2.5)),
            Ok(Setting::CurveShiftK(2.5))
        );
        assert!(matches!(
            g.check_setting(Source::Scada, "operating_mode", &json!(1)),
            Err(Refusal::NotWritable(_))
        ));
        assert_eq!(
            g.check_setting(Source::Platform, "operating_mode", &json!("manual")),
            Ok(Setting::OperatingMode(2))
        );
        assert!(matches!(
            g.check_setting(Source::Platform, "operating_mode", &json!(1.5)),
            Err(Refusal::BadValue(_))
        ));
        assert!(matches!(
            g.check_setting(Source::Platform, "curve_shift_k", &json!(31)),
            Err(Refusal::BadValue(_))
        ));
        assert!(matches!(
            g.check_setting(Source::Platform, "curve_shift_k", &json!("2")),
            Err(Refusal::BadValue(_))
        ));
        assert!(matches!(
            g.check_setting(Source::Platform, "t2_supply_c", &json!(2)),
            Err(Refusal::Unknown(_))
        ));
        assert_eq!(
            g.check_setting(Source::Web, "demand_enabled", &json!(false)),
            Ok(Setting::DemandEnabled(false))
        );
        assert!(matches!(
            g.check_setting(Source::File, "curve_shift_k", &json!(0)),
            Err(Refusal::NotWritable(_))
        ));
    }

    #[tokio::test]
    async fn refusals_are_audited_and_never_reach_the_runtime() {
        let (g, mut rx) = gate();
        let out = g
            .submit(ChangeRequest {
                source: Source::Web,
                client: "127.0.0.1:5000".into(),
                change: Change::Setting {
                    name: "curve_shift_k".into(),
                    value: json!(1),
                },
            })
            .await;
        assert!(!out.accepted);
        assert!(out.reason.as_deref().unwrap_or("").contains("not writable"));
        assert!(rx.try_recv().is_err());
        let tail = g.audit().tail(5);
        assert_eq!(tail.len(), 1);
        assert_eq!(tail[0].result, "refused");
        assert_eq!(tail[0].source, "web");
    }

    #[tokio::test]
    async fn accepted_requests_wait_for_the_runtime() {
        let (g, mut rx) = gate();
        let g2 = g.clone();
        let answer = tokio::spawn(async move {
            let msg = rx.recv().await.expect("a request");
            assert_eq!(msg.setting, Some(Setting::CurveShiftK(-3.0)));
            let _ = msg
                .reply
                .expect("a reply channel")
                .send(ChangeOutcome::applied(json!(0.0), json!(-3.0)));
        });
        let out = g2
            .submit(ChangeRequest {
                source: Source::Platform,
                client: "cmd/curve_shift_k".into(),
                change: Change::Setting {
                    name: "curve_shift_k".into(),
                    value: json!(-3),
                },
            })
            .await;
        answer.await.expect("runtime task");
        assert!(out.accepted);
        assert_eq!(out.new, Some(json!(-3.0)));
    }
}
