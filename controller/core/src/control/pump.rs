//! The secondary circulation pump (pump2): differential-pressure setpoint by mode, PI to the
//! speed with conditional integration, speed limits and ramp, the dry-run guard, the fallback
//! on a lost pressure reading, run-on and off speed when heating is off.
//!
//! Sans-I/O like the rest of the control law: [`Pump2Loop::update`] takes the time and the
//! validated readings and returns the [`Pump2Command`] with the reason for it.

use crate::config::{Pump2, PumpMode};

/// A speed counts as "above min speed" for the dry-run guard when it exceeds min speed by this, %.
const ABOVE_MIN_PCT: f64 = 0.5;

/// The validated readings the pump loop uses this step (`None`: missing or rejected).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Pump2Inputs {
    /// Differential pressure at the substation, kPa.
    pub dp_station_kpa: Option<f64>,
    /// Differential pressure at the index riser, kPa.
    pub dp_index_kpa: Option<f64>,
    /// Secondary flow, m³/h.
    pub flow_m3h: Option<f64>,
    /// Speed feedback, %.
    pub speed_fb_pct: Option<f64>,
    /// Electric power, kW.
    pub power_kw: Option<f64>,
    /// Whether heating is on (summer cut-off and mode).
    pub heating_on: bool,
    /// Whether frost protection is active (the pump keeps circulating).
    pub frost: bool,
    /// The most open household valve among the valid positions, % (`None`: none valid).
    pub max_valve_pct: Option<f64>,
}

/// The dry-run guard's state.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum DryRunState {
    /// Flow and pressure fine (or not checked).
    #[default]
    Normal,
    /// Flow or pressure low since this time (s); trips after `dry_run_delay_s`.
    Low {
        /// When it went low, s.
        since_s: f64,
    },
    /// Pump stopped since this time (s); restarts after `dry_run_retry_s` or an operator reset.
    Tripped {
        /// When it tripped, s.
        since_s: f64,
    },
}

impl DryRunState {
    /// Code on SCADA: 0 normal, 1 low (timing), 2 tripped.
    #[must_use]
    pub const fn code(self) -> u16 {
        match self {
            DryRunState::Normal => 0,
            DryRunState::Low { .. } => 1,
            DryRunState::Tripped { .. } => 2,
        }
    }

    /// Name for logs and JSON.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            DryRunState::Normal => "normal",
            DryRunState::Low { .. } => "low",
            DryRunState::Tripped { .. } => "tripped",
        }
    }
}

/// Why the pump gets its speed this step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pump2Reason {
    /// The differential-pressure loop.
    Control,
    /// Heating off, in the run-on time: the loop still runs.
    RunOn,
    /// Heating off after the run-on time: `off_speed_pct`.
    HeatingOff,
    /// The pressure reading is lost: last speed held.
    DpLostHold,
    /// The pressure reading is lost longer than the hold time: `fallback_speed_pct`.
    DpLostFallback,
    /// The dry-run guard stopped the pump.
    DryRunStop,
    /// Frost protection: at least `safe_speed_pct`.
    Frost,
    /// Shutdown or fatal fault: `safe_speed_pct`.
    SafeSpeed,
}

impl Pump2Reason {
    /// Code on SCADA.
    #[must_use]
    pub const fn code(self) -> u16 {
        match self {
            Pump2Reason::Control => 1,
            Pump2Reason::RunOn => 2,
            Pump2Reason::HeatingOff => 3,
            Pump2Reason::DpLostHold => 4,
            Pump2Reason::DpLostFallback => 5,
            Pump2Reason::DryRunStop => 6,
            Pump2Reason::Frost => 7,
            Pump2Reason::SafeSpeed => 8,
        }
    }

    /// Name for logs and JSON.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Pump2Reason::Control => "control",
            Pump2Reason::RunOn => "run_on",
            Pump2Reason::HeatingOff => "heating_off",
            Pump2Reason::DpLostHold => "dp_lost_hold",
            Pump2Reason::DpLostFallback => "dp_lost_fallback",
            Pump2Reason::DryRunStop => "dry_run_stop",
            Pump2Reason::Frost => "frost",
            Pump2Reason::SafeSpeed => "safe_speed",
        }
    }
}

/// What the pump gets this step, and why.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pump2Command {
    /// The loop's mode.
    pub mode: PumpMode,
    /// The differential-pressure setpoint in force, kPa.
    pub dp_setpoint_kpa: Option<f64>,
    /// The differential pressure the mode holds, as measured (`None`: invalid), kPa.
    pub dp_measured_kpa: Option<f64>,
    /// The speed command, %.
    pub speed_cmd_pct: f64,
    /// The speed feedback, %.
    pub speed_fb_pct: Option<f64>,
    /// The electric power, kW.
    pub power_kw: Option<f64>,
    /// The secondary flow used (measured or estimated from the speed), m³/h.
    pub flow_m3h: Option<f64>,
    /// The dry-run guard.
    pub dry_run: DryRunState,
    /// Why this speed.
    pub reason: Pump2Reason,
}

/// The pump loop's state.
#[derive(Debug, Clone, Default)]
pub struct Pump2Loop {
    /// The last command, % (`None` before the first step).
    cmd_pct: Option<f64>,
    /// The PI's integral term, %.
    integral_pct: f64,
    /// Whether the PI ran last step (otherwise it restarts bumplessly from the command).
    pi_active: bool,
    /// Since when the mode's pressure reading is lost.
    dp_lost_since_s: Option<f64>,
    /// Since when heating is off.
    heating_off_since_s: Option<f64>,
    /// The dry-run guard.
    dry_run: DryRunState,
    /// The index setpoint after valve-position resets, kPa (`None`: the configured one).
    index_sp_kpa: Option<f64>,
    /// When the index setpoint was last reset.
    last_reset_s: Option<f64>,
}

impl Pump2Loop {
    /// The last speed command, % (`None` before the first step).
    #[must_use]
    pub fn command_pct(&self) -> Option<f64> {
        self.cmd_pct
    }

    /// The dry-run guard's state.
    #[must_use]
    pub fn dry_run(&self) -> DryRunState {
        self.dry_run
    }

    /// The operator's reset of a dry-run trip: the pump restarts at the next step.
    pub fn reset_dry_run(&mut self) {
        self.dry_run = DryRunState::Normal;
    }

    /// The index setpoint in force, kPa (after valve-position resets).
    #[must_use]
    pub fn index_setpoint_kpa(&self, cfg: &Pump2) -> f64 {
        self.index_sp_kpa.unwrap_or(cfg.index_dp_setpoint_kpa)
    }

    /// One step at `now_s` (`dt_s` since the last).
    pub fn update(&mut self, cfg: &Pump2, now_s: f64, dt_s: f64, x: &Pump2Inputs) -> Pump2Command {
        let prev = self
            .cmd_pct
            .or(x.speed_fb_pct)
            .unwrap_or(0.0)
            .clamp(0.0, 100.0);
        if x.heating_on {
            self.heating_off_since_s = None;
        } else {
            self.heating_off_since_s.get_or_insert(now_s);
        }
        let heating_off_for = self.heating_off_since_s.map(|t| now_s - t);
        let flow = x.flow_m3h.or_else(|| {
            (cfg.mode == PumpMode::ProportionalDp)
                .then(|| cfg.design_flow_m3h * prev / cfg.max_speed_pct)
        });
        let measured = match cfg.mode.measured() {
            crate::signal::Signal::Dp2IndexKpa => x.dp_index_kpa,
            _ => x.dp_station_kpa,
        };
        let in_control = heating_off_for.is_none_or(|t| t < cfg.run_on_s);
        if in_control && measured.is_some() {
            self.reset_index(cfg, now_s, x.max_valve_pct);
        }
        let sp = self.setpoint_kpa(cfg, flow);
        self.guard_dry_run(cfg, now_s, prev, x);
        match measured {
            Some(_) => self.dp_lost_since_s = None,
            None => {
                self.dp_lost_since_s.get_or_insert(now_s);
            }
        }

        let (target, reason) = if matches!(self.dry_run, DryRunState::Tripped { .. }) {
            (0.0, Pump2Reason::DryRunStop)
        } else if x.frost {
            (
                prev.max(cfg.safe_speed_pct).max(cfg.min_speed_pct),
                Pump2Reason::Frost,
            )
        } else if !in_control {
            (cfg.off_speed_pct, Pump2Reason::HeatingOff)
        } else if let Some(dp) = measured {
            let u = self.pi(cfg, sp, dp, prev, dt_s);
            let reason = if heating_off_for.is_some() {
                Pump2Reason::RunOn
            } else {
                Pump2Reason::Control
            };
            (u, reason)
        } else {
            let lost_for = now_s - self.dp_lost_since_s.unwrap_or(now_s);
            if lost_for <= cfg.dp_lost_hold_s {
                (prev, Pump2Reason::DpLostHold)
            } else {
                (cfg.fallback_speed_pct, Pump2Reason::DpLostFallback)
            }
        };
        if !matches!(reason, Pump2Reason::Control | Pump2Reason::RunOn) {
            self.pi_active = false;
        }
        let cmd = if reason == Pump2Reason::DryRunStop {
            0.0
        } else {
            let step = cfg.ramp_pct_s * dt_s;
            prev + (target - prev).clamp(-step, step)
        };
        let cmd = if cmd.is_finite() {
            cmd.clamp(0.0, 100.0)
        } else {
            cfg.safe_speed_pct
        };
        self.cmd_pct = Some(cmd);
        Pump2Command {
            mode: cfg.mode,
            dp_setpoint_kpa: Some(sp),
            dp_measured_kpa: measured,
            speed_cmd_pct: cmd,
            speed_fb_pct: x.speed_fb_pct,
            power_kw: x.power_kw,
            flow_m3h: flow,
            dry_run: self.dry_run,
            reason,
        }
    }

    /// The command on shutdown or a fatal fault.
    #[must_use]
    pub fn safe_command(&self, cfg: &Pump2) -> Pump2Command {
        Pump2Command {
            mode: cfg.mode,
            dp_setpoint_kpa: None,
            dp_measured_kpa: None,
            speed_cmd_pct: cfg.safe_speed_pct,
            speed_fb_pct: None,
            power_kw: None,
            flow_m3h: None,
            dry_run: self.dry_run,
            reason: Pump2Reason::SafeSpeed,
        }
    }

    /// The mode's differential-pressure setpoint, kPa.
    fn setpoint_kpa(&self, cfg: &Pump2, flow_m3h: Option<f64>) -> f64 {
        match cfg.mode {
            PumpMode::ConstantDp => cfg.dp_setpoint_kpa,
            PumpMode::ProportionalDp => {
                let frac = flow_m3h.map_or(1.0, |q| (q / cfg.design_flow_m3h).clamp(0.0, 1.0));
                let min = cfg.proportional_min_frac;
                cfg.dp_design_kpa * (min + (1.0 - min) * frac)
            }
            PumpMode::Index => self.index_setpoint_kpa(cfg),
        }
    }

    /// The index setpoint's valve-position reset (trim and respond): one step per period,
    /// bounded; held while no valve position is valid.
    fn reset_index(&mut self, cfg: &Pump2, now_s: f64, max_valve_pct: Option<f64>) {
        if cfg.mode != PumpMode::Index || !cfg.valve_reset {
            self.index_sp_kpa = None;
            self.last_reset_s = None;
            return;
        }
        let last = *self.last_reset_s.get_or_insert(now_s);
        if now_s - last < cfg.reset_period_s {
            return;
        }
        self.last_reset_s = Some(now_s);
        let Some(open) = max_valve_pct else { return };
        let sp = self.index_setpoint_kpa(cfg);
        let next = if open > cfg.reset_target_pct {
            sp + cfg.reset_step_kpa
        } else if open < cfg.reset_target_pct - cfg.reset_deadband_pct {
            sp - cfg.reset_step_kpa
        } else {
            sp
        };
        self.index_sp_kpa = Some(next.clamp(cfg.index_dp_min_kpa, cfg.index_dp_max_kpa));
    }

    /// The dry-run guard: low flow or pressure while commanded above min speed, for the delay,
    /// trips; a trip ends after the retry time (or an operator reset).
    fn guard_dry_run(&mut self, cfg: &Pump2, now_s: f64, prev: f64, x: &Pump2Inputs) {
        if cfg.dry_run_delay_s <= 0.0 {
            self.dry_run = DryRunState::Normal;
            return;
        }
        if let DryRunState::Tripped { since_s } = self.dry_run {
            if now_s - since_s >= cfg.dry_run_retry_s {
                self.dry_run = DryRunState::Normal;
            }
            return;
        }
        let low_flow =
            cfg.dry_run_flow_m3h > 0.0 && x.flow_m3h.is_some_and(|q| q < cfg.dry_run_flow_m3h);
        let low_dp =
            cfg.dry_run_dp_kpa > 0.0 && x.dp_station_kpa.is_some_and(|p| p < cfg.dry_run_dp_kpa);
        let running = prev > cfg.min_speed_pct + ABOVE_MIN_PCT;
        self.dry_run = match (self.dry_run, running && (low_flow || low_dp)) {
            (_, false) => DryRunState::Normal,
            (DryRunState::Low { since_s }, true) if now_s - since_s >= cfg.dry_run_delay_s => {
                DryRunState::Tripped { since_s: now_s }
            }
            (DryRunState::Low { since_s }, true) => DryRunState::Low { since_s },
            (_, true) => DryRunState::Low { since_s: now_s },
        };
    }

    /// The PI from the pressure error to the speed, within the speed limits; the integral
    /// stops while the output sits at a limit or the ramp holds it back in the error's
    /// direction (conditional integration).
    fn pi(&mut self, cfg: &Pump2, sp: f64, dp: f64, prev: f64, dt_s: f64) -> f64 {
        let e = sp - dp;
        let p = cfg.kp_pct_per_kpa * e;
        if !self.pi_active {
            // Bumpless: continue from the speed in force.
            self.integral_pct = prev.clamp(cfg.min_speed_pct, cfg.max_speed_pct) - p;
            self.pi_active = true;
        }
        if cfg.ti_s > 0.0 {
            let di = cfg.kp_pct_per_kpa * dt_s / cfg.ti_s * e;
            let tried = p + self.integral_pct + di;
            let step = cfg.ramp_pct_s * dt_s;
            let ramp_held = (tried - prev > step && e > 0.0) || (prev - tried > step && e < 0.0);
            if !ramp_held {
                // Integrate up to the speed limit, never beyond it, and never away from it.
                let i = self.integral_pct;
                self.integral_pct = if e > 0.0 {
                    (i + di).min((cfg.max_speed_pct - p).max(i))
                } else {
                    (i + di).max((cfg.min_speed_pct - p).min(i))
                };
            }
        }
        (p + self.integral_pct).clamp(cfg.min_speed_pct, cfg.max_speed_pct)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Pump2 {
        Pump2 {
            dry_run_flow_m3h: 1.0,
            ..Pump2::default()
        }
    }

    fn inputs(dp: f64, flow: f64) -> Pump2Inputs {
        Pump2Inputs {
            dp_station_kpa: Some(dp),
            dp_index_kpa: Some(dp),
            flow_m3h: Some(flow),
            heating_on: true,
            ..Pump2Inputs::default()
        }
    }

    /// A loop that has been running steadily at `speed` %.
    fn running_at(c: &Pump2, speed: f64) -> (Pump2Loop, f64) {
        let mut l = Pump2Loop::default();
        let x = Pump2Inputs {
            speed_fb_pct: Some(speed),
            ..inputs(c.dp_setpoint_kpa, 30.0)
        };
        l.update(c, 0.0, 0.0, &x);
        (l, 0.0)
    }

    /// The pump loop against a plant whose pressure follows the speed with a first-order lag
    /// (20 s) and a static gain of `gain_kpa_per_pct` (dp = gain · (speed - 20 %)), the pump
    /// following its command at 2 %/s, the loop stepped every `step_s` from 40 % and the
    /// constant-pressure setpoint at gain · 40 % (60 % at rest). Returns the speed commands.
    fn closed_loop(c: &Pump2, gain_kpa_per_pct: f64, step_s: f64, steps: usize) -> Vec<f64> {
        let c = &Pump2 {
            dp_setpoint_kpa: gain_kpa_per_pct * 40.0,
            dry_run_delay_s: 0.0,
            ..c.clone()
        };
        let mut l = Pump2Loop::default();
        let (mut speed, mut dp) = (40.0_f64, gain_kpa_per_pct * 20.0);
        let mut cmds = Vec::with_capacity(steps);
        for k in 0..steps {
            let x = Pump2Inputs {
                speed_fb_pct: Some(speed),
                ..inputs(dp, 30.0)
            };
            #[allow(clippy::cast_precision_loss)]
            let now = k as f64 * step_s;
            let cmd = l.update(c, now, step_s, &x).speed_cmd_pct;
            cmds.push(cmd);
            // The plant over the step, in 0.1 s sub-steps.
            let h = 0.1;
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            for _ in 0..(step_s / h).round() as usize {
                speed += (cmd - speed).clamp(-2.0 * h, 2.0 * h);
                dp += (gain_kpa_per_pct * (speed - 20.0) - dp) * h / 20.0;
            }
        }
        cmds
    }

    /// The spread (max - min) of the last `n` values.
    fn swing(v: &[f64], n: usize) -> f64 {
        let tail = &v[v.len() - n..];
        tail.iter().copied().fold(f64::MIN, f64::max)
            - tail.iter().copied().fold(f64::MAX, f64::min)
    }

    /// The built-in gains (kp 0.5 %/kPa, ti 30 s) are for a loop stepped every second: there
    /// they settle on a steep plant (1.5 kPa per %); stepped every 60 s (the season scorecard)
    /// the pump reaches its command within the step, the loop is a static gain with one step of
    /// delay, stable only while kp·K·(2 + step/ti) < 2 (here 3), and the speed bangs between
    /// its limits. The scorecard's gains (config/season.toml: kp 0.2, ti 300 s; 0.66 here)
    /// settle at 60 s on the same plant, and on a flatter one (0.2 kPa per %) too.
    #[test]
    fn the_loop_settles_at_a_60_s_step_only_with_gains_for_that_step() {
        let constant = |kp: f64, ti: f64| Pump2 {
            mode: PumpMode::ConstantDp,
            kp_pct_per_kpa: kp,
            ti_s: ti,
            ..cfg()
        };
        let builtin = constant(0.5, 30.0);
        let season = constant(0.2, 300.0);
        let fast = closed_loop(&builtin, 1.5, 1.0, 3_600);
        assert!(swing(&fast, 600) < 0.1, "1 s step, built-in gains: settles");
        assert!(
            (fast[fast.len() - 1] - 60.0).abs() < 0.1,
            "at the setpoint's speed"
        );
        let slow = closed_loop(&builtin, 1.5, 60.0, 600);
        assert!(
            swing(&slow, 100) > 40.0,
            "60 s step, built-in gains: limit cycle, swing {:.1} %",
            swing(&slow, 100)
        );
        for gain in [1.5, 0.2] {
            let tuned = closed_loop(&season, gain, 60.0, 1_500);
            assert!(
                swing(&tuned, 100) < 0.1,
                "60 s step, season gains, K {gain}: settles, swing {:.3} %",
                swing(&tuned, 100)
            );
            assert!((tuned[tuned.len() - 1] - 60.0).abs() < 0.1, "K {gain}");
        }
    }

    #[test]
    fn pi_step_proportional_then_integral() {
        let c = Pump2 {
            ramp_pct_s: 100.0,
            ..cfg()
        };
        let (mut l, t) = running_at(&c, 60.0);
        // 10 kPa short: P alone gives +kp*10 = +5 % at once...
        let first = l.update(&c, t + 1.0, 1.0, &inputs(70.0, 30.0));
        let p = c.kp_pct_per_kpa * 10.0;
        let i1 = c.kp_pct_per_kpa * 1.0 / c.ti_s * 10.0;
        assert!(
            (first.speed_cmd_pct - (60.0 + p + i1)).abs() < 1e-9,
            "{first:?}"
        );
        // ...and the integral keeps adding kp*dt/ti*e per step while the error stays.
        let second = l.update(&c, t + 2.0, 1.0, &inputs(70.0, 30.0));
        assert!((second.speed_cmd_pct - first.speed_cmd_pct - i1).abs() < 1e-9);
        assert_eq!(second.reason, Pump2Reason::Control);
        assert_eq!(second.dp_setpoint_kpa, Some(c.dp_setpoint_kpa));
        // Above the setpoint it slows.
        let third = l.update(&c, t + 3.0, 1.0, &inputs(95.0, 30.0));
        assert!(third.speed_cmd_pct < second.speed_cmd_pct);
    }

    #[test]
    fn speed_limits_and_ramp() {
        let c = Pump2 {
            ramp_pct_s: 2.0,
            ..cfg()
        };
        let (mut l, _) = running_at(&c, 60.0);
        // A huge error: the command moves by at most ramp × dt per step...
        let mut last = 60.0;
        for k in 1..=10 {
            let out = l.update(&c, f64::from(k), 1.0, &inputs(10.0, 30.0));
            assert!(out.speed_cmd_pct - last <= 2.0 + 1e-9, "{out:?}");
            assert!(out.speed_cmd_pct > last);
            last = out.speed_cmd_pct;
        }
        // ...and never beyond max speed.
        for k in 11..=100 {
            last = l
                .update(&c, f64::from(k), 1.0, &inputs(10.0, 30.0))
                .speed_cmd_pct;
        }
        assert_eq!(last, c.max_speed_pct);
        // Far too much pressure: down to min speed, not below.
        for k in 101..=300 {
            last = l
                .update(&c, f64::from(k), 1.0, &inputs(500.0, 30.0))
                .speed_cmd_pct;
        }
        assert_eq!(last, c.min_speed_pct);
    }

    #[test]
    fn anti_windup_stops_integrating_at_the_limits() {
        let c = Pump2 {
            ramp_pct_s: 100.0,
            ..cfg()
        };
        let (mut l, _) = running_at(&c, 90.0);
        // Pressure short for a long time at max speed (a too small pump).
        for k in 1..=3_600 {
            l.update(&c, f64::from(k), 1.0, &inputs(60.0, 30.0));
        }
        assert_eq!(l.command_pct(), Some(c.max_speed_pct));
        // The pressure recovers to above the setpoint: a wound-up integrator would stay at
        // max for minutes; with conditional integration the speed drops within seconds.
        let out = l.update(&c, 3_601.0, 1.0, &inputs(90.0, 30.0));
        assert!(
            out.speed_cmd_pct < c.max_speed_pct - 4.0,
            "no windup: {out:?}"
        );
        // Without the stop, the integral would have grown by kp/ti*20*3600 = 1200 %.
    }

    #[test]
    fn each_mode_has_its_setpoint() {
        // Proportional: design pressure at design flow, the fraction at zero flow, linear
        // between, from the measured flow.
        let c = Pump2 {
            mode: PumpMode::ProportionalDp,
            dp_design_kpa: 100.0,
            design_flow_m3h: 40.0,
            proportional_min_frac: 0.5,
            ..cfg()
        };
        let mut l = Pump2Loop::default();
        for (flow, sp) in [(40.0, 100.0), (0.0, 50.0), (20.0, 75.0), (80.0, 100.0)] {
            let out = l.update(&c, 0.0, 0.0, &inputs(70.0, flow));
            assert_eq!(out.dp_setpoint_kpa, Some(sp), "flow {flow}");
        }
        // Without a flow meter, estimated from the speed: at 50 % of max speed, half the design
        // flow.
        let mut l = Pump2Loop::default();
        let x = Pump2Inputs {
            flow_m3h: None,
            speed_fb_pct: Some(50.0),
            ..inputs(70.0, 0.0)
        };
        let out = l.update(&c, 0.0, 0.0, &x);
        assert_eq!(out.flow_m3h, Some(20.0));
        assert_eq!(out.dp_setpoint_kpa, Some(75.0));
        // Index: the remote sensor and its setpoint.
        let c = Pump2 {
            mode: PumpMode::Index,
            index_dp_setpoint_kpa: 25.0,
            ..cfg()
        };
        let mut l = Pump2Loop::default();
        let x = Pump2Inputs {
            dp_index_kpa: Some(12.0),
            ..inputs(90.0, 30.0)
        };
        let out = l.update(&c, 0.0, 0.0, &x);
        assert_eq!(out.dp_setpoint_kpa, Some(25.0));
        assert_eq!(out.dp_measured_kpa, Some(12.0));
    }

    #[test]
    fn valve_position_reset_is_slow_bounded_and_two_sided() {
        let c = Pump2 {
            mode: PumpMode::Index,
            valve_reset: true,
            index_dp_setpoint_kpa: 30.0,
            index_dp_min_kpa: 20.0,
            index_dp_max_kpa: 36.0,
            reset_step_kpa: 2.0,
            reset_period_s: 600.0,
            reset_target_pct: 90.0,
            reset_deadband_pct: 10.0,
            ..cfg()
        };
        let mut l = Pump2Loop::default();
        let with_valve = |v: Option<f64>| Pump2Inputs {
            max_valve_pct: v,
            ..inputs(30.0, 30.0)
        };
        let sp_at = |l: &mut Pump2Loop, t: f64, v: Option<f64>| {
            l.update(&c, t, 1.0, &with_valve(v))
                .dp_setpoint_kpa
                .expect("a setpoint")
        };
        assert_eq!(sp_at(&mut l, 0.0, Some(100.0)), 30.0);
        // Within the period nothing changes.
        assert_eq!(sp_at(&mut l, 599.0, Some(100.0)), 30.0);
        // A valve wide open: respond, one step per period.
        assert_eq!(sp_at(&mut l, 600.0, Some(100.0)), 32.0);
        assert_eq!(sp_at(&mut l, 900.0, Some(100.0)), 32.0);
        assert_eq!(sp_at(&mut l, 1_200.0, Some(100.0)), 34.0);
        assert_eq!(sp_at(&mut l, 1_800.0, Some(100.0)), 36.0);
        assert_eq!(sp_at(&mut l, 2_400.0, Some(100.0)), 36.0, "bounded above");
        // In the band: held. No valid valve: held.
        assert_eq!(sp_at(&mut l, 3_000.0, Some(85.0)), 36.0);
        assert_eq!(sp_at(&mut l, 3_600.0, None), 36.0);
        // Every valve far from open: trim.
        assert_eq!(sp_at(&mut l, 4_200.0, Some(40.0)), 34.0);
        let mut t = 4_200.0;
        let mut sp = 34.0;
        for _ in 0..20 {
            t += 600.0;
            sp = sp_at(&mut l, t, Some(40.0));
        }
        assert_eq!(sp, 20.0, "bounded below");
    }

    #[test]
    fn dry_run_trips_after_the_delay_and_retries_after_the_retry_time() {
        let c = Pump2 {
            dry_run_flow_m3h: 1.0,
            dry_run_delay_s: 60.0,
            dry_run_retry_s: 900.0,
            ..cfg()
        };
        let (mut l, _) = running_at(&c, 70.0);
        // Flow cut at t = 10: low at once, not tripped before 60 s.
        let out = l.update(&c, 10.0, 1.0, &inputs(80.0, 0.2));
        assert_eq!(out.dry_run, DryRunState::Low { since_s: 10.0 });
        let out = l.update(&c, 69.0, 1.0, &inputs(80.0, 0.2));
        assert!(matches!(out.dry_run, DryRunState::Low { .. }));
        assert!(out.speed_cmd_pct > c.min_speed_pct);
        let out = l.update(&c, 70.0, 1.0, &inputs(80.0, 0.2));
        assert_eq!(out.dry_run, DryRunState::Tripped { since_s: 70.0 });
        assert_eq!(out.speed_cmd_pct, 0.0, "stopped at once, no ramp");
        assert_eq!(out.reason, Pump2Reason::DryRunStop);
        // Stays stopped, even with flow seemingly back, until the retry time.
        let out = l.update(&c, 969.0, 1.0, &inputs(80.0, 30.0));
        assert_eq!(out.speed_cmd_pct, 0.0);
        let out = l.update(&c, 970.0, 1.0, &inputs(40.0, 30.0));
        assert_eq!(out.dry_run, DryRunState::Normal);
        assert!(out.speed_cmd_pct > 0.0, "restarts: {out:?}");
        assert!(out.speed_cmd_pct <= 2.0, "ramping from standstill");
        // A flow that only dips does not trip.
        let (mut l, _) = running_at(&c, 70.0);
        for k in 1..100 {
            let flow = if k % 30 == 0 { 30.0 } else { 0.2 };
            let out = l.update(&c, f64::from(k), 1.0, &inputs(80.0, flow));
            assert!(!matches!(out.dry_run, DryRunState::Tripped { .. }));
        }
        // At min speed low flow is normal (valves closed): no trip.
        let (mut l, _) = running_at(&c, c.min_speed_pct);
        for k in 1..200 {
            let out = l.update(&c, f64::from(k), 1.0, &inputs(500.0, 0.2));
            assert_eq!(out.dry_run, DryRunState::Normal);
        }
    }

    #[test]
    fn an_operator_reset_restarts_a_tripped_pump() {
        let c = Pump2 {
            dry_run_delay_s: 30.0,
            ..cfg()
        };
        let (mut l, _) = running_at(&c, 70.0);
        // Low pressure (dp2_station 2 kPa < 5 kPa) trips too.
        l.update(&c, 1.0, 1.0, &inputs(2.0, 30.0));
        let out = l.update(&c, 31.0, 1.0, &inputs(2.0, 30.0));
        assert!(matches!(out.dry_run, DryRunState::Tripped { .. }));
        let out = l.update(&c, 32.0, 1.0, &inputs(80.0, 30.0));
        assert_eq!(out.speed_cmd_pct, 0.0);
        l.reset_dry_run();
        let out = l.update(&c, 33.0, 1.0, &inputs(80.0, 30.0));
        assert_eq!(out.dry_run, DryRunState::Normal);
        assert!(out.speed_cmd_pct > 0.0);
    }

    #[test]
    fn an_invalid_reading_holds_then_falls_back_and_never_drives() {
        let c = Pump2 {
            dp_lost_hold_s: 60.0,
            fallback_speed_pct: 80.0,
            ramp_pct_s: 2.0,
            ..cfg()
        };
        let (mut l, _) = running_at(&c, 55.0);
        let lost = Pump2Inputs {
            dp_station_kpa: None,
            ..inputs(0.0, 30.0)
        };
        for k in 1..=60 {
            let out = l.update(&c, f64::from(k), 1.0, &lost);
            assert_eq!(out.speed_cmd_pct, 55.0, "held at {k}");
            assert_eq!(out.reason, Pump2Reason::DpLostHold);
            assert_eq!(out.dp_measured_kpa, None);
        }
        let out = l.update(&c, 62.0, 1.0, &lost);
        assert_eq!(out.reason, Pump2Reason::DpLostFallback);
        assert_eq!(out.speed_cmd_pct, 57.0, "towards the fallback at the ramp");
        let mut last = out.speed_cmd_pct;
        for k in 63..=100 {
            last = l.update(&c, f64::from(k), 1.0, &lost).speed_cmd_pct;
        }
        assert_eq!(last, 80.0);
        // Back: the loop continues from 80 % without a bump.
        let out = l.update(&c, 101.0, 1.0, &inputs(c.dp_setpoint_kpa, 30.0));
        assert_eq!(out.reason, Pump2Reason::Control);
        assert!((out.speed_cmd_pct - 80.0).abs() < 1e-9, "{out:?}");
    }

    #[test]
    fn heating_off_runs_on_then_goes_to_the_off_speed() {
        let c = Pump2 {
            run_on_s: 300.0,
            off_speed_pct: 0.0,
            ramp_pct_s: 2.0,
            ..cfg()
        };
        let (mut l, _) = running_at(&c, 60.0);
        let off = Pump2Inputs {
            heating_on: false,
            ..inputs(c.dp_setpoint_kpa, 30.0)
        };
        let out = l.update(&c, 1.0, 1.0, &off);
        assert_eq!(out.reason, Pump2Reason::RunOn);
        let out = l.update(&c, 300.0, 1.0, &off);
        assert_eq!(out.reason, Pump2Reason::RunOn);
        let out = l.update(&c, 302.0, 2.0, &off);
        assert_eq!(out.reason, Pump2Reason::HeatingOff);
        let mut last = out.speed_cmd_pct;
        for k in 303..400 {
            last = l.update(&c, f64::from(k), 1.0, &off).speed_cmd_pct;
        }
        assert_eq!(last, 0.0);
        // Frost overrides the stop.
        let frost = Pump2Inputs { frost: true, ..off };
        let out = l.update(&c, 400.0, 1.0, &frost);
        assert_eq!(out.reason, Pump2Reason::Frost);
        assert!(out.speed_cmd_pct > 0.0);
    }

    /// Through the whole controller: nothing for an unbound pump; a bound one is stepped, its
    /// dry-run trip raises alarm 311, and the safe commands carry the safe speed.
    #[test]
    fn the_controller_steps_the_pump_only_where_it_is_bound() {
        use crate::config::parse_str;
        use crate::control::{AlarmCode, Controller, ProcessImage, Sample, Signal};
        let base = "[site]\nname = \"t\"\n[curve]\npoints = [{ outdoor_c = -20.0, supply_c = 70.0 }, { outdoor_c = 15.0, supply_c = 30.0 }]\n\
            [[links]]\nname = \"gw\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 1\n\
            [[devices]]\nname = \"plc\"\nlink = \"gw\"\nunit_id = 1\nmap = \"m.toml\"\n\
            [points]\nt_out = \"plc.t\"\nt2_supply = \"plc.t2\"\nvalve1_cmd = \"plc.v\"\n\
            dp2_station = \"plc.dp\"\nflow2 = \"plc.f\"\n";
        let mut image = ProcessImage::with_rooms(0);
        image.set(Signal::TOut, Some(Sample::fresh(-5.0)));
        image.set(Signal::T2Supply, Some(Sample::fresh(55.0)));
        image.set(Signal::Dp2StationKpa, Some(Sample::fresh(80.0)));
        image.set(Signal::Flow2M3h, Some(Sample::fresh(0.1)));
        image.set(Signal::Pump2SpeedPct, Some(Sample::fresh(70.0)));
        let unbound = parse_str(base, None).expect("valid");
        let mut c = Controller::new(&unbound);
        assert_eq!(c.step(0.0, &image).pump2, None);
        assert_eq!(c.safe_commands().pump2, None);

        let bound = parse_str(
            &format!("{base}pump2_speed_cmd = \"plc.p\"\n[pump2]\ndry_run_flow_m3h = 1.0\ndry_run_delay_s = 30\n"),
            None,
        )
        .expect("valid");
        let mut c = Controller::new(&bound);
        let first = c.step(0.0, &image).pump2.expect("controlled");
        assert_eq!(first.speed_cmd_pct, 70.0, "bumpless from the feedback");
        let mut tripped_at = None;
        for k in 1..=40 {
            let out = c.step(f64::from(k), &image);
            let p = out.pump2.expect("controlled");
            if tripped_at.is_none() && matches!(p.dry_run, DryRunState::Tripped { .. }) {
                tripped_at = Some(k);
                assert!(out.alarms.iter().any(|a| a.code == AlarmCode::Pump2DryRun));
                assert_eq!(p.speed_cmd_pct, 0.0);
            }
        }
        assert_eq!(
            tripped_at,
            Some(30),
            "30 s after the flow was first seen low (at 0)"
        );
        let safe = c.safe_commands().pump2.expect("controlled");
        assert_eq!(safe.speed_cmd_pct, bound.pump2.safe_speed_pct);
        assert_eq!(safe.reason, Pump2Reason::SafeSpeed);
    }
}
