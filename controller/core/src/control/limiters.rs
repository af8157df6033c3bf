//! Limiters on the setpoint: PI reducers (return, return difference, power), the schedule
//! (setback, boost) and the rate limit.

use super::StepTime;
use crate::config::{LimiterGains, ReturnLimitPoint, Schedule};

/// Largest reduction a PI limiter may make, K.
const MAX_REDUCTION_K: f64 = 60.0;

/// A PI limiter that lowers the setpoint while a measured quantity exceeds its limit.
#[derive(Debug, Clone, Default)]
pub struct PiReducer {
    integral_k: f64,
}

impl PiReducer {
    /// Update with the violation (measured − limit, in the limit's unit; negative when inside)
    /// and return the reduction, K (≥ 0). With `None` (no valid data) the limiter lets go.
    pub fn update(&mut self, gains: LimiterGains, violation: Option<f64>, dt_s: f64) -> f64 {
        let Some(v) = violation.filter(|v| v.is_finite()) else {
            self.integral_k = 0.0;
            return 0.0;
        };
        if gains.ti_s > 0.0 {
            // Integrates down as well while inside the limit, so it releases smoothly;
            // clamped at 0 and the maximum (anti-windup).
            self.integral_k =
                (self.integral_k + gains.kp * v * dt_s / gains.ti_s).clamp(0.0, MAX_REDUCTION_K);
        } else {
            self.integral_k = 0.0;
        }
        (gains.kp * v + self.integral_k).clamp(0.0, MAX_REDUCTION_K)
    }

    /// Forget the integral (limiter disabled).
    pub fn reset(&mut self) {
        self.integral_k = 0.0;
    }
}

/// The outdoor-dependent limit line, flat beyond its ends.
#[must_use]
pub fn return_limit_c(points: &[ReturnLimitPoint], outdoor_c: f64) -> Option<f64> {
    let (first, last) = (points.first()?, points.last()?);
    if outdoor_c <= first.outdoor_c {
        return Some(first.max_return_c);
    }
    if outdoor_c >= last.outdoor_c {
        return Some(last.max_return_c);
    }
    points
        .windows(2)
        .find(|w| outdoor_c <= w[1].outdoor_c)
        .map(|w| {
            let f = (outdoor_c - w[0].outdoor_c) / (w[1].outdoor_c - w[0].outdoor_c);
            w[0].max_return_c + f * (w[1].max_return_c - w[0].max_return_c)
        })
}

/// Moves a value toward its target no faster than given rates.
#[derive(Debug, Clone, Default)]
pub struct RateLimiter {
    value: Option<f64>,
}

impl RateLimiter {
    /// Step toward `target`; the first call takes the target as it is.
    pub fn update(
        &mut self,
        target: f64,
        max_rise_per_s: f64,
        max_fall_per_s: f64,
        dt_s: f64,
    ) -> f64 {
        let v = match self.value {
            Some(prev) if prev.is_finite() => {
                target.clamp(prev - max_fall_per_s * dt_s, prev + max_rise_per_s * dt_s)
            }
            _ => target,
        };
        self.value = Some(v);
        v
    }

    /// Start from this value (bumpless).
    pub fn reset_to(&mut self, value: f64) {
        self.value = Some(value);
    }
}

/// Schedule state: whether a setback is on and when the boost after the last one ends.
#[derive(Debug, Clone, Default)]
pub struct ScheduleState {
    in_setback: bool,
    /// Monotonic time the boost ends at: a boost lasts `boost_s` even if the wall clock steps.
    boost_until_s: f64,
    boost_factor: f64,
}

/// What the schedule does this step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScheduleEffect {
    /// Nothing.
    None,
    /// Setback of this many kelvin (negative).
    Setback(f64),
    /// Boost of this many kelvin (positive).
    Boost(f64),
}

/// Day of week (0 = Monday) and minute of day in local time.
#[must_use]
pub fn local_time(now_s: f64, utc_offset_h: f64) -> (usize, u32) {
    let local = now_s + utc_offset_h * 3600.0;
    let days = (local / 86_400.0).floor();
    let minute = ((local - days * 86_400.0) / 60.0)
        .floor()
        .clamp(0.0, 1439.0) as u32;
    // 1970-01-01 was a Thursday (index 3 with Monday = 0).
    let weekday = ((days as i64 + 3).rem_euclid(7)) as usize;
    (weekday, minute)
}

fn in_period(s: &Schedule, weekday: usize, minute: u32) -> bool {
    s.periods.iter().any(|p| {
        let (start, end) = (p.start.minute_of_day(), p.end.minute_of_day());
        let day_ok = |d: usize| p.days.iter().any(|day| day.includes(d % 7));
        if start < end {
            day_ok(weekday) && minute >= start && minute < end
        } else {
            // Past midnight: the evening part belongs to the start day, the morning to the next.
            (day_ok(weekday) && minute >= start) || (day_ok((weekday + 6) % 7) && minute < end)
        }
    })
}

impl ScheduleState {
    /// The schedule's effect at `t`, with the damped outdoor temperature for weakening. The
    /// periods follow wall time (`t.wall_s`: a stepped clock moves them at once); the boost's
    /// duration is measured on monotonic time.
    pub fn update(
        &mut self,
        s: &Schedule,
        t: StepTime,
        utc_offset_h: f64,
        damped_c: f64,
    ) -> ScheduleEffect {
        if !s.enabled {
            self.in_setback = false;
            return ScheduleEffect::None;
        }
        let span = s.full_setback_above_c - s.no_setback_below_c;
        let factor = if span > 0.0 {
            ((damped_c - s.no_setback_below_c) / span).clamp(0.0, 1.0)
        } else {
            1.0
        };
        let now_s = t.mono_s;
        let (weekday, minute) = local_time(t.wall_s, utc_offset_h);
        let setback = in_period(s, weekday, minute);
        if self.in_setback && !setback {
            self.boost_until_s = now_s + s.boost_s;
            self.boost_factor = factor;
        }
        self.in_setback = setback;
        if setback {
            ScheduleEffect::Setback(-s.setback_k * factor)
        } else if now_s < self.boost_until_s && s.boost_k * self.boost_factor > 0.0 {
            ScheduleEffect::Boost(s.boost_k * self.boost_factor)
        } else {
            ScheduleEffect::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Day, SetbackPeriod, TimeOfDay};

    #[test]
    fn pi_reducer_acts_only_above_the_limit_and_releases() {
        let g = LimiterGains {
            kp: 1.0,
            ti_s: 100.0,
        };
        let mut r = PiReducer::default();
        assert_eq!(r.update(g, Some(-3.0), 10.0), 0.0);
        let first = r.update(g, Some(2.0), 10.0);
        assert!((first - 2.2).abs() < 1e-9, "P 2 + I 0.2: {first}");
        for _ in 0..100 {
            r.update(g, Some(2.0), 10.0);
        }
        let held = r.update(g, Some(0.0), 10.0);
        assert!(
            held > 10.0,
            "integral holds the reduction at the limit: {held}"
        );
        for _ in 0..1000 {
            r.update(g, Some(-1.0), 10.0);
        }
        assert_eq!(r.update(g, Some(-1.0), 10.0), 0.0);
        assert_eq!(r.update(g, None, 10.0), 0.0);
    }

    #[test]
    fn return_line_interpolates() {
        let pts = [
            ReturnLimitPoint {
                outdoor_c: -20.0,
                max_return_c: 60.0,
            },
            ReturnLimitPoint {
                outdoor_c: 10.0,
                max_return_c: 45.0,
            },
        ];
        assert_eq!(return_limit_c(&pts, -5.0), Some(52.5));
        assert_eq!(return_limit_c(&pts, -30.0), Some(60.0));
        assert_eq!(return_limit_c(&[], 0.0), None);
    }

    #[test]
    fn rate_limiter_limits_both_ways() {
        let mut r = RateLimiter::default();
        assert_eq!(r.update(50.0, 0.1, 0.2, 1.0), 50.0);
        assert!((r.update(60.0, 0.1, 0.2, 10.0) - 51.0).abs() < 1e-9);
        assert!((r.update(0.0, 0.1, 0.2, 10.0) - 49.0).abs() < 1e-9);
    }

    #[test]
    fn local_time_of_a_known_instant() {
        // 2026-01-05 00:30 UTC is a Monday; 08:30 in Beijing.
        let t = 1_767_573_000.0;
        assert_eq!(local_time(t, 8.0), (0, 8 * 60 + 30));
        assert_eq!(local_time(t, 0.0), (0, 30));
    }

    #[test]
    fn setback_weakened_when_cold_and_boost_after() {
        let s = Schedule {
            enabled: true,
            setback_k: 6.0,
            periods: vec![SetbackPeriod {
                days: vec![Day::All],
                start: TimeOfDay::parse("22:00").expect("a time"),
                end: TimeOfDay::parse("05:00").expect("a time"),
            }],
            full_setback_above_c: 0.0,
            no_setback_below_c: -12.0,
            boost_k: 4.0,
            boost_s: 3600.0,
        };
        let mut st = ScheduleState::default();
        let monday_midnight = 1_767_571_200.0; // 2026-01-05 00:00 UTC
        let at = |h: f64| StepTime::same(monday_midnight + h * 3600.0);
        assert_eq!(st.update(&s, at(12.0), 0.0, 5.0), ScheduleEffect::None);
        assert_eq!(
            st.update(&s, at(23.0), 0.0, 5.0),
            ScheduleEffect::Setback(-6.0)
        );
        assert_eq!(
            st.update(&s, at(26.0), 0.0, -6.0),
            ScheduleEffect::Setback(-3.0)
        );
        assert_eq!(
            st.update(&s, at(29.5), 0.0, -6.0),
            ScheduleEffect::Boost(2.0)
        );
        assert_eq!(st.update(&s, at(31.0), 0.0, -6.0), ScheduleEffect::None);
        assert_eq!(
            st.update(&s, at(23.0), 0.0, -20.0),
            ScheduleEffect::Setback(-0.0)
        );
    }

    #[test]
    fn periods_follow_wall_time_the_boost_lasts_on_monotonic_time() {
        let s = Schedule {
            enabled: true,
            setback_k: 6.0,
            periods: vec![SetbackPeriod {
                days: vec![Day::All],
                start: TimeOfDay::parse("22:00").expect("a time"),
                end: TimeOfDay::parse("05:00").expect("a time"),
            }],
            full_setback_above_c: 0.0,
            no_setback_below_c: -12.0,
            boost_k: 4.0,
            boost_s: 3600.0,
        };
        let mut st = ScheduleState::default();
        let monday_midnight = 1_767_571_200.0; // 2026-01-05 00:00 UTC
        let t = |mono_h: f64, wall_h: f64| StepTime {
            mono_s: mono_h * 3600.0,
            wall_s: monday_midnight + wall_h * 3600.0,
        };
        assert_eq!(st.update(&s, t(0.0, 12.0), 0.0, 5.0), ScheduleEffect::None);
        // The wall clock is stepped to 23:00 by hand: the setback starts at once.
        assert_eq!(
            st.update(&s, t(0.1, 23.0), 0.0, 5.0),
            ScheduleEffect::Setback(-6.0)
        );
        // Stepped to 12:00 the next day: the setback ends, the boost starts...
        assert!(matches!(
            st.update(&s, t(0.2, 36.0), 0.0, 5.0),
            ScheduleEffect::Boost(_)
        ));
        // ...and a step back of an hour does not stretch it nor end it: it lasts an hour
        // of monotonic time.
        assert!(matches!(
            st.update(&s, t(1.1, 35.5), 0.0, 5.0),
            ScheduleEffect::Boost(_)
        ));
        assert_eq!(st.update(&s, t(1.3, 35.7), 0.0, 5.0), ScheduleEffect::None);
    }
}
