//! The alarms of the field layer (a device not answering, a write failing), of the platform
//! link (not connected) and of the clock (the wall clock stepped), on the same machinery as the
//! controller's own: raised at once, cleared after the clear delay.

use super::StepTime;
use super::alarms::Alarms;
use super::commands::{Alarm, AlarmCode};

/// What the field layer reports in one cycle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FieldConditions {
    /// Some device does not answer.
    pub comm_lost: bool,
    /// Some write failed or its read-back disagreed.
    pub write_failed: bool,
    /// The platform link is enabled and has not been connected for its grace time.
    pub platform_down: bool,
    /// The wall clock was stepped recently (the runtime holds this for
    /// a while after each step it detects).
    pub clock_stepped: bool,
}

/// A field alarm that was raised or cleared by an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmChange {
    /// Raised now.
    Raised(AlarmCode),
    /// Cleared now (its condition gone for the clear delay).
    Cleared(AlarmCode),
}

/// Alarms 501 (device not answering), 502 (write failed), 601 (platform link down) and 701
/// (wall clock stepped).
#[derive(Debug, Clone, Default)]
pub struct FieldAlarms {
    alarms: Alarms,
}

impl FieldAlarms {
    /// Take this cycle's conditions at `t`; an alarm clears once its condition has been gone
    /// for `clear_delay_s` of monotonic time. Returns what changed.
    pub fn update(
        &mut self,
        conditions: FieldConditions,
        t: StepTime,
        clear_delay_s: f64,
    ) -> Vec<AlarmChange> {
        let mut changes = Vec::new();
        for (code, condition) in [
            (AlarmCode::DeviceCommLost, conditions.comm_lost),
            (AlarmCode::WriteFailed, conditions.write_failed),
            (AlarmCode::PlatformLinkDown, conditions.platform_down),
            (AlarmCode::WallClockStepped, conditions.clock_stepped),
        ] {
            let before = self.alarms.is_active(code);
            self.alarms.set(code, condition, t, clear_delay_s);
            match (before, self.alarms.is_active(code)) {
                (false, true) => changes.push(AlarmChange::Raised(code)),
                (true, false) => changes.push(AlarmChange::Cleared(code)),
                _ => {}
            }
        }
        changes
    }

    /// The active field alarms, by code.
    #[must_use]
    pub fn list(&self) -> Vec<Alarm> {
        self.alarms.list()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(comm_lost: bool, write_failed: bool) -> FieldConditions {
        FieldConditions {
            comm_lost,
            write_failed,
            platform_down: false,
            clock_stepped: false,
        }
    }

    #[test]
    fn raised_at_once_cleared_after_the_delay() {
        let mut a = FieldAlarms::default();
        assert!(
            a.update(cond(false, false), StepTime::same(0.0), 60.0)
                .is_empty()
        );
        assert!(a.list().is_empty());
        assert_eq!(
            a.update(cond(true, false), StepTime::same(1.0), 60.0),
            vec![AlarmChange::Raised(AlarmCode::DeviceCommLost)]
        );
        assert_eq!(
            a.update(cond(true, true), StepTime::same(2.0), 60.0),
            vec![AlarmChange::Raised(AlarmCode::WriteFailed)]
        );
        let list = a.list();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].code, AlarmCode::DeviceCommLost);
        assert_eq!(list[0].since_s, 1.0, "raised when first seen");
        // Conditions gone: still active within the clear delay.
        assert!(
            a.update(cond(false, false), StepTime::same(3.0), 60.0)
                .is_empty()
        );
        assert_eq!(a.list().len(), 2);
        assert_eq!(
            a.update(cond(false, false), StepTime::same(63.0), 60.0),
            vec![
                AlarmChange::Cleared(AlarmCode::DeviceCommLost),
                AlarmChange::Cleared(AlarmCode::WriteFailed)
            ]
        );
        assert!(a.list().is_empty());
    }

    #[test]
    fn without_a_delay_an_alarm_clears_with_its_condition() {
        let mut a = FieldAlarms::default();
        a.update(cond(true, false), StepTime::same(1.0), 0.0);
        assert_eq!(
            a.update(cond(false, false), StepTime::same(2.0), 0.0),
            vec![AlarmChange::Cleared(AlarmCode::DeviceCommLost)]
        );
    }
}
