//! The two outputs of a three-point (floating) actuator, driven from the controller's pulses.

use super::commands::Pulse;

/// The `(open, close)` outputs of a three-point actuator: a pulse sets its direction's output
/// for its duration; a new pulse replaces the one running; the two outputs are never on
/// together.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ThreePointOutputs {
    open_until_s: f64,
    close_until_s: f64,
}

impl ThreePointOutputs {
    /// Take this cycle's pulse (if any) at `now_s`, and return `(open, close)` to write.
    pub fn update(&mut self, now_s: f64, pulse: Option<Pulse>) -> (bool, bool) {
        match pulse {
            Some(Pulse::Open(secs)) if secs.is_finite() && secs > 0.0 => {
                self.open_until_s = now_s + secs;
                self.close_until_s = f64::NEG_INFINITY;
            }
            Some(Pulse::Close(secs)) if secs.is_finite() && secs > 0.0 => {
                self.close_until_s = now_s + secs;
                self.open_until_s = f64::NEG_INFINITY;
            }
            _ => {}
        }
        (now_s < self.open_until_s, now_s < self.close_until_s)
    }

    /// Stop driving (shutdown: the actuator holds where it is).
    pub fn stop(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_follow_the_pulses() {
        let mut o = ThreePointOutputs::default();
        assert_eq!(o.update(0.0, None), (false, false));
        assert_eq!(o.update(1.0, Some(Pulse::Open(2.5))), (true, false));
        assert_eq!(o.update(2.0, None), (true, false));
        assert_eq!(o.update(3.4, None), (true, false));
        assert_eq!(o.update(3.6, None), (false, false), "pulse over");
        assert_eq!(o.update(4.0, Some(Pulse::Close(10.0))), (false, true));
        assert_eq!(
            o.update(5.0, Some(Pulse::Open(1.0))),
            (true, false),
            "a new pulse replaces the running one: never both"
        );
        o.stop();
        assert_eq!(o.update(5.5, None), (false, false));
        assert_eq!(o.update(6.0, Some(Pulse::Open(f64::NAN))), (false, false));
    }
}
