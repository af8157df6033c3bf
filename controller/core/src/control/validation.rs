//! Signal validation: range, sentinel (already flagged by the field layer), stale, stuck, jump.
//! An invalid value never reaches a control law.

use super::image::Sample;
use crate::config::SignalLimits;

/// Why a value was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Never read / not connected.
    Missing,
    /// The field layer marked it invalid (sentinel, out of the map's range, comm lost), or it is
    /// not a finite number.
    Field,
    /// Older than its max age.
    Stale,
    /// Outside the plausible range.
    Range,
    /// Unchanged for longer than the stuck window.
    Stuck,
    /// Changed faster than plausible.
    Jump,
}

impl Rejection {
    /// Short name for logs and JSON.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Rejection::Missing => "missing",
            Rejection::Field => "invalid",
            Rejection::Stale => "stale",
            Rejection::Range => "out_of_range",
            Rejection::Stuck => "stuck",
            Rejection::Jump => "jump",
        }
    }
}

/// The validator of one signal, with the little history the stuck and jump checks need.
#[derive(Debug, Clone)]
pub struct Validator {
    limits: SignalLimits,
    /// Value the stuck check compares against, and when it was last seen to change.
    stuck_ref: Option<(f64, f64)>,
    /// Last accepted value and its time, for the jump check.
    last_good: Option<(f64, f64)>,
    /// Seconds a sample may exceed the max age (scheduling allowance of a fast clock).
    age_allowance_s: f64,
}

impl Validator {
    /// A validator with these limits.
    #[must_use]
    pub fn new(limits: SignalLimits) -> Self {
        Self {
            limits,
            stuck_ref: None,
            last_good: None,
            age_allowance_s: 0.0,
        }
    }

    /// Let samples exceed the max age by this many seconds before they are stale (the
    /// runtime's scheduling allowance on an accelerated clock; 0 by default).
    pub fn set_age_allowance_s(&mut self, allowance_s: f64) {
        self.age_allowance_s = if allowance_s.is_finite() {
            allowance_s.max(0.0)
        } else {
            0.0
        };
    }

    /// Replace the limits, keeping history (configuration reload).
    pub fn set_limits(&mut self, limits: SignalLimits) {
        self.limits = limits;
    }

    /// The limits in force.
    #[must_use]
    pub fn limits(&self) -> SignalLimits {
        self.limits
    }

    /// Check a sample taken at `now_s`; the accepted value or why not.
    ///
    /// # Errors
    /// The [`Rejection`] when the value must not be used.
    pub fn check(&mut self, now_s: f64, sample: Option<Sample>) -> Result<f64, Rejection> {
        let s = sample.ok_or(Rejection::Missing)?;
        if !s.valid || !s.value.is_finite() || s.age_s.is_nan() {
            return Err(Rejection::Field);
        }
        if s.age_s > self.limits.max_age_s + self.age_allowance_s {
            return Err(Rejection::Stale);
        }
        let v = s.value;
        if v < self.limits.valid_min || v > self.limits.valid_max {
            return Err(Rejection::Range);
        }
        // The time the value was measured.
        let t = now_s - s.age_s.max(0.0);
        if self.limits.stuck_after_s > 0.0 {
            match self.stuck_ref {
                Some((r, _)) if (v - r).abs() <= self.limits.stuck_tolerance => {}
                _ => self.stuck_ref = Some((v, t)),
            }
            if let Some((_, since)) = self.stuck_ref
                && t - since > self.limits.stuck_after_s
            {
                return Err(Rejection::Stuck);
            }
        }
        if self.limits.max_rate_per_s > 0.0
            && let Some((g, tg)) = self.last_good
        {
            let dt = t - tg;
            // After an outage longer than the max age the old value says nothing.
            if dt > 0.0 && dt <= self.limits.max_age_s.max(1.0) * 4.0 {
                // Allow at least one stuck-tolerance step whatever the interval.
                let allowed = self.limits.max_rate_per_s * dt + self.limits.stuck_tolerance;
                if (v - g).abs() > allowed {
                    return Err(Rejection::Jump);
                }
            }
        }
        self.last_good = Some((v, t));
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lim() -> SignalLimits {
        SignalLimits {
            valid_min: -50.0,
            valid_max: 50.0,
            max_age_s: 60.0,
            stuck_after_s: 600.0,
            stuck_tolerance: 0.01,
            max_rate_per_s: 0.05,
        }
    }

    #[test]
    fn age_allowance_delays_stale_but_keeps_measured_times() {
        let mut v = Validator::new(lim());
        v.set_age_allowance_s(30.0);
        assert_eq!(v.check(100.0, Some(Sample::aged(10.0, 80.0))), Ok(10.0));
        assert_eq!(
            v.check(200.0, Some(Sample::aged(10.0, 95.0))),
            Err(Rejection::Stale)
        );
        // Measured times still come from the true age: a step of 0.5 K between readings
        // measured 2 s apart is a jump, whatever the allowance.
        let mut v = Validator::new(lim());
        v.set_age_allowance_s(1_000.0);
        assert_eq!(v.check(100.0, Some(Sample::aged(10.0, 20.0))), Ok(10.0));
        assert_eq!(
            v.check(101.0, Some(Sample::aged(10.5, 19.0))),
            Err(Rejection::Jump)
        );
    }

    #[test]
    fn range_stale_field_and_missing() {
        let mut v = Validator::new(lim());
        assert_eq!(v.check(0.0, None), Err(Rejection::Missing));
        assert_eq!(v.check(0.0, Some(Sample::invalid())), Err(Rejection::Field));
        assert_eq!(
            v.check(0.0, Some(Sample::fresh(f64::INFINITY))),
            Err(Rejection::Field)
        );
        assert_eq!(
            v.check(0.0, Some(Sample::fresh(60.0))),
            Err(Rejection::Range)
        );
        assert_eq!(
            v.check(0.0, Some(Sample::aged(1.0, 61.0))),
            Err(Rejection::Stale)
        );
        assert_eq!(v.check(0.0, Some(Sample::aged(1.0, 59.0))), Ok(1.0));
    }

    #[test]
    fn stuck_after_window_and_recovers_on_change() {
        let mut v = Validator::new(lim());
        for t in (0..=600).step_by(10) {
            assert!(
                v.check(f64::from(t), Some(Sample::fresh(3.0))).is_ok(),
                "t={t}"
            );
        }
        assert_eq!(
            v.check(610.0, Some(Sample::fresh(3.0))),
            Err(Rejection::Stuck)
        );
        assert_eq!(v.check(620.0, Some(Sample::fresh(3.2))), Ok(3.2));
    }

    #[test]
    fn jump_rejected_then_accepted_when_plausible() {
        let mut v = Validator::new(lim());
        assert_eq!(v.check(0.0, Some(Sample::fresh(0.0))), Ok(0.0));
        // 10 K in 10 s is not weather.
        assert_eq!(
            v.check(10.0, Some(Sample::fresh(10.0))),
            Err(Rejection::Jump)
        );
        // 0.4 K in 10 s is within 0.05 K/s.
        assert_eq!(v.check(10.0, Some(Sample::fresh(0.4))), Ok(0.4));
    }
}
