//! The alarm lines of the log: one line when an alarm is raised and one when it clears, each
//! naming what it is about (the signal and the device point it is read from, the devices not
//! answering, the writes failing, the state file), so the engineer called at 3 a.m. knows
//! where to look without a SCADA screen.

use std::collections::BTreeMap;

use crate::config::Config;
use crate::control::Signal;
use crate::control::{Alarm, AlarmCode};
use crate::station::StationSnapshot;

/// Devices named in one alarm line, at most; the rest are counted.
const NAMED_DEVICES: usize = 8;

/// What the log has said about alarms: the active ones with when they were raised and what
/// they were about.
#[derive(Debug, Default)]
pub(super) struct AlarmLog {
    active: BTreeMap<AlarmCode, (f64, String)>,
}

/// A line to log.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum AlarmLine {
    /// Raised now, about `subject`.
    Raised {
        /// Which.
        code: AlarmCode,
        /// What it is about.
        subject: String,
    },
    /// Cleared now after `active_s`; `subject` as it was raised.
    Cleared {
        /// Which.
        code: AlarmCode,
        /// What it was about.
        subject: String,
        /// How long it was active, clock seconds.
        active_s: f64,
    },
}

impl AlarmLog {
    /// Compare this cycle's alarms with the last; the lines to log. `state_error` names the
    /// state-directory write that failed (alarm 702).
    pub(super) fn update(
        &mut self,
        config: &Config,
        snapshot: &StationSnapshot,
        state_error: Option<&str>,
        now_s: f64,
    ) -> Vec<AlarmLine> {
        let mut lines = Vec::new();
        let current: Vec<&Alarm> = snapshot.alarms.iter().collect();
        let gone: Vec<AlarmCode> = self
            .active
            .keys()
            .copied()
            .filter(|c| !current.iter().any(|a| a.code == *c))
            .collect();
        for code in gone {
            if let Some((since_s, subject)) = self.active.remove(&code) {
                lines.push(AlarmLine::Cleared {
                    code,
                    subject,
                    active_s: (now_s - since_s).max(0.0),
                });
            }
        }
        for a in current {
            if let std::collections::btree_map::Entry::Vacant(e) = self.active.entry(a.code) {
                let subject = subject(a.code, config, snapshot, state_error);
                e.insert((now_s, subject.clone()));
                lines.push(AlarmLine::Raised {
                    code: a.code,
                    subject,
                });
            }
        }
        lines
    }

    /// Log `lines` (raised as warnings, cleared as info), each with the codes now active.
    pub(super) fn emit(&self, lines: &[AlarmLine]) {
        if lines.is_empty() {
            return;
        }
        let active: Vec<u16> = self.active.keys().map(|c| c.number()).collect();
        for l in lines {
            match l {
                AlarmLine::Raised { code, subject } => tracing::warn!(
                    code = code.number(),
                    subject = %subject,
                    active = ?active,
                    "alarm raised: {} {} ({subject})",
                    code.number(),
                    code.text()
                ),
                AlarmLine::Cleared {
                    code,
                    subject,
                    active_s,
                } => tracing::info!(
                    code = code.number(),
                    subject = %subject,
                    active_s = *active_s,
                    active = ?active,
                    "alarm cleared: {} {} ({subject}) after {active_s:.0} s",
                    code.number(),
                    code.text()
                ),
            }
        }
    }
}

/// The signals an alarm is about.
fn signals_of(code: AlarmCode) -> &'static [Signal] {
    match code {
        AlarmCode::OutdoorSensorLost | AlarmCode::OutdoorFallback | AlarmCode::Frost => {
            &[Signal::TOut]
        }
        AlarmCode::T2SupplyLost | AlarmCode::T2OverTemperature => &[Signal::T2Supply],
        AlarmCode::T2ReturnInvalid => &[Signal::T2Return],
        AlarmCode::T1ReturnInvalid | AlarmCode::T1ReturnOverTemperature => &[Signal::T1Return],
        AlarmCode::T1SupplyInvalid => &[Signal::T1Supply],
        AlarmCode::HeatMeterInvalid => &[Signal::Power1Kw, Signal::Flow1M3h],
        AlarmCode::Valve1FeedbackInvalid | AlarmCode::Valve1Deviation => &[Signal::Valve1PosPct],
        AlarmCode::Pump2DpLost => &[Signal::Dp2StationKpa, Signal::Dp2IndexKpa],
        AlarmCode::Pump2DryRun => &[Signal::Flow2M3h, Signal::Dp2StationKpa],
        AlarmCode::Pump2Feedback => &[Signal::Pump2SpeedPct],
        _ => &[],
    }
}

/// Names, at most [`NAMED_DEVICES`] of them, then "and N more".
fn name_list(names: &[String]) -> String {
    let mut s = names
        .iter()
        .take(NAMED_DEVICES)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > NAMED_DEVICES {
        s.push_str(&format!(" and {} more", names.len() - NAMED_DEVICES));
    }
    s
}

/// What an alarm is about, in words: "t2_supply = plc.t2_supply (stale)", "devices room:3,
/// room:7", "writes to plc", "state file /var/lib/heatctl/state.toml: ...".
fn subject(
    code: AlarmCode,
    config: &Config,
    snapshot: &StationSnapshot,
    state_error: Option<&str>,
) -> String {
    let signals = signals_of(code);
    if !signals.is_empty() {
        let parts: Vec<String> = signals
            .iter()
            .map(|&s| {
                let binding = config.points.signal(s).unwrap_or("not bound");
                let why = snapshot
                    .measurements
                    .iter()
                    .find(|m| m.signal == s)
                    .and_then(|m| m.rejected)
                    .map(|r| format!(" ({})", r.name()))
                    .unwrap_or_default();
                format!("{} = {binding}{why}", s.name())
            })
            .collect();
        return parts.join(", ");
    }
    match code {
        AlarmCode::DeviceCommLost => format!("devices {}", name_list(&snapshot.lost_devices())),
        AlarmCode::WriteFailed => {
            let names: Vec<String> = snapshot
                .devices
                .iter()
                .filter(|d| d.stats.write_failed)
                .map(|d| d.name.clone())
                .collect();
            if names.is_empty() {
                "writes pending retry".to_owned()
            } else {
                format!("writes to {}", name_list(&names))
            }
        }
        AlarmCode::RoomQuorumLost | AlarmCode::RoomNodesInvalid => {
            let st = &snapshot.rooms.stats;
            let lost: Vec<String> = snapshot
                .lost_devices()
                .into_iter()
                .filter(|d| d.starts_with("room:"))
                .collect();
            let mut s = format!("room nodes: {} of {} used", st.used, st.expected);
            if !lost.is_empty() {
                s.push_str(&format!("; not answering: {}", name_list(&lost)));
            }
            s
        }
        AlarmCode::RoomNodesSuspect => {
            let suspect: Vec<String> = snapshot
                .rooms
                .nodes
                .iter()
                .filter(|n| n.state == "suspect")
                .map(|n| n.id.clone())
                .collect();
            format!("suspect room nodes: {}", name_list(&suspect))
        }
        AlarmCode::PlatformLinkDown => match &snapshot.platform {
            Some(p) => format!(
                "broker {}{}",
                p.broker,
                p.last_error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ),
            None => "platform link".to_owned(),
        },
        AlarmCode::StateWriteFailed => state_error.unwrap_or("state directory").to_owned(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::station::DeviceHealth;

    fn config() -> Config {
        let text = "[site]\nname = \"t\"\n[curve]\npoints = [{ outdoor_c = -20.0, supply_c = 70.0 }, { outdoor_c = 15.0, supply_c = 30.0 }]\n\
             [[links]]\nname = \"gw\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 1\n\
             [[devices]]\nname = \"plc\"\nlink = \"gw\"\nunit_id = 5\nmap = \"m.toml\"\n\
             [points]\nt2_supply = \"plc.t2_supply\"\nvalve1_cmd = \"plc.valve1_cmd\"\n";
        crate::config::parse_str(text, None).unwrap_or_else(|p| panic!("{p}"))
    }

    fn with_alarms(codes: &[AlarmCode]) -> StationSnapshot {
        StationSnapshot {
            alarms: codes
                .iter()
                .map(|&code| Alarm { code, since_s: 0.0 })
                .collect(),
            ..StationSnapshot::default()
        }
    }

    #[test]
    fn each_alarm_raised_once_and_cleared_once_with_its_subject() {
        let cfg = config();
        let mut log = AlarmLog::default();
        let mut snap = with_alarms(&[AlarmCode::T2SupplyLost, AlarmCode::DeviceCommLost]);
        snap.devices.push(DeviceHealth {
            name: "room:3".into(),
            link: "rooms".into(),
            connected: false,
            comm_lost: true,
            stats: crate::field::DeviceStats::default(),
        });
        let lines = log.update(&cfg, &snap, None, 10.0);
        assert_eq!(
            lines,
            vec![
                AlarmLine::Raised {
                    code: AlarmCode::T2SupplyLost,
                    subject: "t2_supply = plc.t2_supply".into()
                },
                AlarmLine::Raised {
                    code: AlarmCode::DeviceCommLost,
                    subject: "devices room:3".into()
                }
            ]
        );
        // The same alarms for a thousand cycles: nothing more to say.
        for t in 11..1011 {
            assert!(log.update(&cfg, &snap, None, f64::from(t)).is_empty());
        }
        let lines = log.update(
            &cfg,
            &with_alarms(&[AlarmCode::DeviceCommLost]),
            None,
            1011.0,
        );
        assert_eq!(
            lines,
            vec![AlarmLine::Cleared {
                code: AlarmCode::T2SupplyLost,
                subject: "t2_supply = plc.t2_supply".into(),
                active_s: 1001.0
            }]
        );
        let lines = log.update(
            &cfg,
            &with_alarms(&[AlarmCode::StateWriteFailed]),
            Some("state file /x: read-only"),
            1012.0,
        );
        assert_eq!(lines.len(), 2);
        assert!(matches!(
            &lines[0],
            AlarmLine::Cleared {
                code: AlarmCode::DeviceCommLost,
                ..
            }
        ));
        assert_eq!(
            lines[1],
            AlarmLine::Raised {
                code: AlarmCode::StateWriteFailed,
                subject: "state file /x: read-only".into()
            }
        );
    }

    #[test]
    fn long_device_lists_are_cut() {
        let names: Vec<String> = (0..20).map(|i| format!("room:{i}")).collect();
        let s = name_list(&names);
        assert!(s.starts_with("room:0, room:1"));
        assert!(s.ends_with("and 12 more"), "{s}");
    }
}
