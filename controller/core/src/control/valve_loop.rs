//! The primary valve loop (PI(D) on the secondary supply temperature) and the 3-point output.

use super::commands::Pulse;
use crate::config::Valve1;

/// State of the primary valve loop.
#[derive(Debug, Clone, Default)]
pub struct Valve1Loop {
    integral_pct: f64,
    output_pct: Option<f64>,
    last_t2_c: Option<f64>,
    derivative_pct: f64,
}

impl Valve1Loop {
    /// The last output, if any.
    #[must_use]
    pub fn output_pct(&self) -> Option<f64> {
        self.output_pct
    }

    /// Start from a known position without a bump.
    pub fn track(&mut self, position_pct: f64) {
        if position_pct.is_finite() {
            self.output_pct = Some(position_pct.clamp(0.0, 100.0));
            self.integral_pct = position_pct.clamp(0.0, 100.0);
            self.last_t2_c = None;
        }
    }

    /// One control step; returns the command, %.
    pub fn update(&mut self, cfg: &Valve1, setpoint_c: f64, t2_supply_c: f64, dt_s: f64) -> f64 {
        let prev = self.output_pct.unwrap_or(cfg.min_pct.max(0.0));
        let raw_e = setpoint_c - t2_supply_c;
        let e = if raw_e.abs() <= cfg.deadband_k {
            0.0
        } else {
            raw_e - cfg.deadband_k * raw_e.signum()
        };
        let p = cfg.kp_pct_per_k * e;
        let ff = cfg.feed_forward_pct_per_k * (setpoint_c - cfg.feed_forward_zero_c);
        // Derivative on the measurement (no kick on setpoint changes), first-order filtered.
        if cfg.td_s > 0.0 && dt_s > 0.0 {
            if let Some(last) = self.last_t2_c {
                let d = -cfg.kp_pct_per_k * cfg.td_s * (t2_supply_c - last) / dt_s;
                let alpha = dt_s / (dt_s + cfg.td_s / 8.0);
                self.derivative_pct += alpha * (d - self.derivative_pct);
            }
        } else {
            self.derivative_pct = 0.0;
        }
        self.last_t2_c = Some(t2_supply_c);
        let i = if cfg.ti_s > 0.0 {
            self.integral_pct + cfg.kp_pct_per_k * e * dt_s / cfg.ti_s
        } else {
            self.integral_pct
        };
        let wanted = (p + i + ff + self.derivative_pct).clamp(cfg.min_pct, cfg.max_pct);
        let step = cfg.max_rate_pct_per_s * dt_s;
        let out = wanted
            .clamp(prev - step, prev + step)
            .clamp(cfg.min_pct, cfg.max_pct);
        // Anti-windup by tracking: the integral is what the actual output leaves for it.
        self.integral_pct = if cfg.ti_s > 0.0 {
            out - p - ff - self.derivative_pct
        } else {
            0.0
        };
        self.output_pct = Some(out);
        out
    }

    /// Take a command decided elsewhere (supervisor, manual) so that the loop resumes from it.
    pub fn force(&mut self, pct: f64) {
        self.track(pct);
    }
}

/// Turns a position command into open/close pulses for a 3-point actuator, keeping an estimate
/// of where the actuator is.
#[derive(Debug, Clone, Default)]
pub struct ThreePoint {
    estimate_pct: Option<f64>,
}

impl ThreePoint {
    /// The pulse to give for `command_pct` (`None` if the difference is below the minimum pulse).
    pub fn pulse(&mut self, command_pct: f64, run_time_s: f64, min_pulse_s: f64) -> Option<Pulse> {
        let est = *self.estimate_pct.get_or_insert(command_pct);
        let diff = command_pct - est;
        let secs = diff.abs() / 100.0 * run_time_s;
        if secs < min_pulse_s || !secs.is_finite() {
            return None;
        }
        self.estimate_pct = Some(command_pct.clamp(0.0, 100.0));
        Some(if diff > 0.0 {
            Pulse::Open(secs)
        } else {
            Pulse::Close(secs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Valve1 {
        Valve1 {
            max_rate_pct_per_s: 100.0,
            ..Valve1::default()
        }
    }

    #[test]
    fn pi_drives_error_to_zero_on_a_static_gain_plant() {
        // t2 = 20 + 0.6 * valve: the loop must find valve = 50 for a 50 °C setpoint.
        let c = cfg();
        let mut l = Valve1Loop::default();
        let mut t2 = 20.0;
        for _ in 0..2000 {
            let u = l.update(&c, 50.0, t2, 1.0);
            t2 += (20.0 + 0.6 * u - t2) * 0.05;
        }
        assert!((t2 - 50.0).abs() < 0.3, "t2 {t2}");
        assert!((l.output_pct().unwrap() - 50.0).abs() < 1.0);
    }

    #[test]
    fn deadband_holds_and_output_rate_is_limited() {
        let c = Valve1 {
            deadband_k: 0.5,
            max_rate_pct_per_s: 1.0,
            ..Valve1::default()
        };
        let mut l = Valve1Loop::default();
        l.track(40.0);
        assert_eq!(l.update(&c, 50.0, 49.7, 1.0), 40.0, "inside the deadband");
        let u = l.update(&c, 80.0, 20.0, 1.0);
        assert!((u - 41.0).abs() < 1e-9, "rate limit 1 %/s: {u}");
    }

    #[test]
    fn saturated_output_does_not_wind_up() {
        let c = cfg();
        let mut l = Valve1Loop::default();
        for _ in 0..10_000 {
            l.update(&c, 90.0, 20.0, 1.0);
        }
        assert_eq!(l.output_pct(), Some(100.0));
        // As soon as the error turns, the output leaves the stop.
        let u = l.update(&c, 20.0, 30.0, 1.0);
        assert!(u < 100.0, "{u}");
    }

    #[test]
    fn three_point_pulses_follow_the_command() {
        let mut tp = ThreePoint::default();
        assert_eq!(
            tp.pulse(50.0, 120.0, 1.0),
            None,
            "first call sets the estimate"
        );
        assert_eq!(tp.pulse(60.0, 120.0, 1.0), Some(Pulse::Open(12.0)));
        assert_eq!(
            tp.pulse(60.5, 120.0, 1.0),
            None,
            "0.6 s is below the minimum pulse"
        );
        match tp.pulse(40.0, 120.0, 1.0) {
            Some(Pulse::Close(s)) => assert!((s - 24.0).abs() < 1e-9),
            other => panic!("{other:?}"),
        }
    }
}
