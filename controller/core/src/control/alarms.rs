//! Alarms raised at once and cleared with a delay (hysteresis in time). The delay is measured
//! on monotonic time; an alarm's `since_s` is the wall time it was raised at (a timestamp).

use std::collections::BTreeMap;

use super::StepTime;
use super::commands::{Alarm, AlarmCode};

/// The alarm list.
#[derive(Debug, Clone, Default)]
pub struct Alarms {
    /// Active alarms and the wall time each was raised at.
    active: BTreeMap<AlarmCode, f64>,
    /// When the condition of an active alarm was last seen gone (clear pending), monotonic s.
    gone_since: BTreeMap<AlarmCode, f64>,
}

impl Alarms {
    /// Report whether `code`'s condition holds at `t`; it clears once the condition has been
    /// gone for `clear_delay_s` of monotonic time.
    pub fn set(&mut self, code: AlarmCode, condition: bool, t: StepTime, clear_delay_s: f64) {
        let now_s = t.mono_s;
        if condition {
            self.active.entry(code).or_insert(t.wall_s);
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
        let t = StepTime::same;
        a.set(AlarmCode::Frost, true, t(0.0), 60.0);
        assert!(a.is_active(AlarmCode::Frost));
        a.set(AlarmCode::Frost, false, t(10.0), 60.0);
        assert!(a.is_active(AlarmCode::Frost));
        a.set(AlarmCode::Frost, true, t(20.0), 60.0);
        a.set(AlarmCode::Frost, false, t(30.0), 60.0);
        a.set(AlarmCode::Frost, false, t(89.0), 60.0);
        assert!(a.is_active(AlarmCode::Frost), "flapping restarts the delay");
        a.set(AlarmCode::Frost, false, t(90.0), 60.0);
        assert!(!a.is_active(AlarmCode::Frost));
        assert_eq!(a.list(), vec![]);
    }

    #[test]
    fn the_delay_is_monotonic_the_timestamp_wall() {
        let mut a = Alarms::default();
        let t = |mono_s, wall_s| StepTime { mono_s, wall_s };
        a.set(AlarmCode::Frost, true, t(0.0, 1_800_000_000.0), 60.0);
        assert_eq!(a.list()[0].since_s, 1_800_000_000.0, "raised at wall time");
        a.set(AlarmCode::Frost, false, t(1.0, 1_800_000_001.0), 60.0);
        // The wall clock jumps a day ahead: the clear delay has not passed.
        a.set(AlarmCode::Frost, false, t(2.0, 1_800_086_402.0), 60.0);
        assert!(a.is_active(AlarmCode::Frost));
        // ...and back to 1970: not cleared early either, nor kept forever.
        a.set(AlarmCode::Frost, false, t(30.0, 12.0), 60.0);
        assert!(a.is_active(AlarmCode::Frost));
        a.set(AlarmCode::Frost, false, t(61.0, 43.0), 60.0);
        assert!(!a.is_active(AlarmCode::Frost));
    }
}
