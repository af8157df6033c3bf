//! Alarms raised at once and cleared with a delay (hysteresis in time).

use std::collections::BTreeMap;

use super::commands::{Alarm, AlarmCode};

/// The alarm list.
#[derive(Debug, Clone, Default)]
pub struct Alarms {
    active: BTreeMap<AlarmCode, f64>,
    /// When the condition of an active alarm was last seen gone (clear pending).
    gone_since: BTreeMap<AlarmCode, f64>,
}

impl Alarms {
    /// Report whether `code`'s condition holds now.
    pub fn set(&mut self, code: AlarmCode, condition: bool, now_s: f64, clear_delay_s: f64) {
        if condition {
            self.active.entry(code).or_insert(now_s);
            self.gone_since.remove(&code);
        } else if self.active.contains_key(&code) {
            let since = *self.gone_since.entry(code).or_insert(now_s);
            if now_s - since >= clear_delay_s {
                self.active.remove(&code);
                self.gone_since.remove(&code);
            }
        }
    }

    /// Whether an alarm is active.
    #[must_use]
    pub fn is_active(&self, code: AlarmCode) -> bool {
        self.active.contains_key(&code)
    }

    /// Active alarms, by code.
    #[must_use]
    pub fn list(&self) -> Vec<Alarm> {
        self.active
            .iter()
            .map(|(&code, &since_s)| Alarm { code, since_s })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raised_at_once_cleared_after_the_delay() {
        let mut a = Alarms::default();
        a.set(AlarmCode::Frost, true, 0.0, 60.0);
        assert!(a.is_active(AlarmCode::Frost));
        a.set(AlarmCode::Frost, false, 10.0, 60.0);
        assert!(a.is_active(AlarmCode::Frost));
        a.set(AlarmCode::Frost, true, 20.0, 60.0);
        a.set(AlarmCode::Frost, false, 30.0, 60.0);
        a.set(AlarmCode::Frost, false, 89.0, 60.0);
        assert!(a.is_active(AlarmCode::Frost), "flapping restarts the delay");
        a.set(AlarmCode::Frost, false, 90.0, 60.0);
        assert!(!a.is_active(AlarmCode::Frost));
        assert_eq!(a.list(), vec![]);
    }
}
