//! The whole control law as sans-I/O code: no clock reads, no sockets, no files.
//!
//! [`Controller::step`] takes the time and a [`ProcessImage`] and returns [`Commands`] with an
//! [`Explanation`]. One step runs, in this fixed order:
//!
//! 1. signal validation (range, sentinel, stale, stuck, jump);
//! 2. outdoor temperature: damped, composite, hold/fallback when lost;
//! 3. summer cut-off and operating mode;
//! 4. heating curve + technician shift + demand shift (rooms) + valve-demand shift, clamped;
//! 5. schedule (setback weakened when cold, boost after setback);
//! 6. protective limiters, which can only lower: primary return limit, return difference limit,
//!    power/flow limit (only with fresh heat-meter data);
//! 7. setpoint rate limit;
//! 8. the primary valve loop (PI(D), deadband, anti-windup, rate limit, feed-forward);
//! 9. the safety supervisor, which overrides everything: over-temperature cut, frost protection,
//!    t2_supply-lost hold then safe position, mode off/manual;
//! 10. household valve loops.

pub mod alarms;
mod commands;
pub mod curve;
pub mod demand;
mod household;
mod image;
pub mod limiters;
pub mod outdoor;
pub mod validation;
mod valve_loop;

pub use crate::signal::Signal;
pub use commands::*;
pub use household::{HouseholdLoops, TrimRespond};
pub use image::{ProcessImage, Sample};
pub use valve_loop::{ThreePoint, Valve1Loop};

use crate::config::{Config, SignalLimits, ValveOutput};
use alarms::Alarms;
use curve::{HeatingCurve, SummerCutoff};
use demand::DemandCorrection;
use limiters::{PiReducer, RateLimiter, ScheduleEffect, ScheduleState, return_limit_c};
use outdoor::OutdoorFilter;
use validation::Validator;

/// Longest time step the dynamics accept in one go, seconds (a paused process resumes gently).
const MAX_DT_S: f64 = 600.0;
/// Valve deviation alarm: command and feedback apart by more than this, %...
const DEVIATION_PCT: f64 = 10.0;
/// ...for longer than this, seconds.
const DEVIATION_S: f64 = 300.0;
/// Frost protection ends this far above its start temperature, K.
const FROST_HYSTERESIS_K: f64 = 3.0;

/// The slow state worth keeping across a restart: what took hours to learn. The runtime saves
/// it now and then and hands it back after a restart (a killed process resumes where it was).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SavedState {
    /// When it was saved (the step clock), s.
    pub saved_at_s: f64,
    /// Demand correction shift, K.
    pub demand_shift_k: f64,
    /// Valve-demand (trim and respond) shift, K.
    pub valve_demand_shift_k: f64,
    /// Damped outdoor temperature, °C.
    pub damped_outdoor_c: Option<f64>,
}

/// The controller: configuration plus all control state.
#[derive(Debug, Clone)]
pub struct Controller {
    cfg: Config,
    validators: [Validator; Signal::COUNT],
    outdoor: OutdoorFilter,
    curve: HeatingCurve,
    summer: SummerCutoff,
    demand: DemandCorrection,
    trim: TrimRespond,
    return1: PiReducer,
    return_diff: PiReducer,
    power: PiReducer,
    schedule: ScheduleState,
    rate: RateLimiter,
    valve1: Valve1Loop,
    three_point: ThreePoint,
    household: HouseholdLoops,
    /// Limits of the household valve position feedback (for trim and respond).
    hh_valve_limits: SignalLimits,
    alarms: Alarms,
    mode: Mode,
    operator_shift_k: Option<f64>,
    last_now_s: Option<f64>,
    /// Whether the demand integrator may raise (anti-windup), from the previous step.
    may_raise: bool,
    t2_lost_since_s: Option<f64>,
    over_temperature: bool,
    t1_over_temperature: bool,
    frost: bool,
    deviation_since_s: Option<f64>,
}

fn has_valves(cfg: &Config) -> Vec<bool> {
    cfg.rooms
        .nodes
        .iter()
        .map(|n| cfg.household_valves.enabled && n.valve_link.is_some())
        .collect()
}

fn signal_validators(cfg: &Config) -> [Validator; Signal::COUNT] {
    Signal::ALL.map(|s| Validator::new(cfg.signals.limits(s)))
}

impl Controller {
    /// A controller for a validated configuration.
    #[must_use]
    pub fn new(cfg: &Config) -> Self {
        Self {
            validators: signal_validators(cfg),
            outdoor: OutdoorFilter::new(&cfg.outdoor),
            curve: HeatingCurve::new(&cfg.curve),
            summer: SummerCutoff::new(&cfg.summer),
            demand: DemandCorrection::new(&cfg.demand, &cfg.rooms.nodes, cfg.signals.room_limits()),
            trim: TrimRespond::default(),
            return1: PiReducer::default(),
            return_diff: PiReducer::default(),
            power: PiReducer::default(),
            schedule: ScheduleState::default(),
            rate: RateLimiter::default(),
            valve1: Valve1Loop::default(),
            three_point: ThreePoint::default(),
            household: HouseholdLoops::new(
                &has_valves(cfg),
                cfg.household_valves.safe_position_pct,
            ),
            hh_valve_limits: cfg.signals.hh_valve_pos_limits(),
            alarms: Alarms::default(),
            mode: Mode::Auto,
            operator_shift_k: None,
            last_now_s: None,
            may_raise: true,
            t2_lost_since_s: None,
            over_temperature: false,
            t1_over_temperature: false,
            frost: false,
            deviation_since_s: None,
            cfg: cfg.clone(),
        }
    }

    /// Apply a new (validated) configuration, keeping the control state: integrators, damped
    /// outdoor temperature, valve positions, alarms.
    pub fn reconfigure(&mut self, cfg: &Config) {
        if self.cfg.signals != cfg.signals {
            for s in Signal::ALL {
                self.validators[s.index()].set_limits(cfg.signals.limits(s));
            }
        }
        self.outdoor.set_config(&cfg.outdoor);
        self.curve = HeatingCurve::new(&cfg.curve);
        self.summer.set_config(&cfg.summer);
        self.demand
            .set_config(&cfg.demand, &cfg.rooms.nodes, cfg.signals.room_limits());
        self.hh_valve_limits = cfg.signals.hh_valve_pos_limits();
        if has_valves(cfg) != has_valves(&self.cfg) {
            self.household =
                HouseholdLoops::new(&has_valves(cfg), cfg.household_valves.safe_position_pct);
        }
        self.cfg = cfg.clone();
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Set the operating mode.
    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = match mode {
            Mode::Manual(p) if !p.is_finite() => self.mode,
            Mode::Manual(p) => Mode::Manual(p.clamp(0.0, 100.0)),
            m => m,
        };
    }

    /// The operating mode.
    #[must_use]
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Replace the configured curve shift (SCADA), K. Non-finite values are ignored.
    pub fn set_operator_shift_k(&mut self, shift_k: f64) {
        if shift_k.is_finite() {
            self.operator_shift_k = Some(shift_k.clamp(-30.0, 30.0));
        }
    }

    /// The curve shift in force, K (operator's or configured).
    #[must_use]
    pub fn operator_shift_k(&self) -> f64 {
        self.operator_shift_k.unwrap_or(self.curve.shift_k())
    }

    /// Replace the room target of the demand correction (SCADA), °C.
    pub fn set_room_target_c(&mut self, target_c: f64) {
        if target_c.is_finite() {
            self.demand.set_target_c(target_c.clamp(12.0, 26.0));
        }
    }

    /// The room target in force, °C.
    #[must_use]
    pub fn room_target_c(&self) -> f64 {
        self.demand.target_c()
    }

    /// Switch the demand correction on or off (SCADA).
    pub fn set_demand_enabled(&mut self, on: bool) {
        self.demand.set_enabled(on);
    }

    /// Let every reading exceed its max age by `allowance_s` before it counts as stale: the
    /// scheduling allowance the runtime sets on an accelerated clock (at N× real speed a host
    /// hiccup of 10 ms ages readings by N × 10 ms). 0 by default; kept across reconfigure.
    pub fn set_age_allowance_s(&mut self, allowance_s: f64) {
        for v in &mut self.validators {
            v.set_age_allowance_s(allowance_s);
        }
        self.demand.set_age_allowance_s(allowance_s);
    }

    /// The slow state to save for a restart.
    #[must_use]
    pub fn saved_state(&self) -> SavedState {
        SavedState {
            saved_at_s: self.last_now_s.unwrap_or(0.0),
            demand_shift_k: self.demand.shift_k(),
            valve_demand_shift_k: self.trim.shift_k(),
            damped_outdoor_c: self.outdoor.damped_c(),
        }
    }

    /// Resume from saved state (call before the first step). Values are clamped to the
    /// configured bounds; non-finite ones are ignored.
    pub fn restore(&mut self, saved: &SavedState) {
        self.demand.restore_shift_k(saved.demand_shift_k);
        self.trim
            .restore_shift_k(&self.cfg.valve_demand, saved.valve_demand_shift_k);
        if let Some(d) = saved.damped_outdoor_c {
            self.outdoor.restore_damped_c(d);
        }
    }

    /// The commands to write on shutdown or a fatal fault: every valve at its safe position.
    #[must_use]
    pub fn safe_commands(&self) -> Commands {
        let hh = has_valves(&self.cfg)
            .into_iter()
            .map(|v| v.then_some(self.cfg.household_valves.safe_position_pct))
            .collect();
        Commands {
            valve1_pct: self.cfg.safety.valve1_safe_pct,
            valve1_pulse: None,
            hh_valves_pct: hh,
            alarms: self.alarms.list(),
            explanation: Explanation {
                supervisor: Some(SupervisorAction::SafePosition),
                ..Explanation::default()
            },
        }
    }

    /// One control step at time `now_s` (seconds; unix time for schedules).
    pub fn step(&mut self, now_s: f64, image: &ProcessImage) -> Commands {
        let (now, dt) = match self.last_now_s {
            _ if !now_s.is_finite() => (self.last_now_s.unwrap_or(0.0), 0.0),
            Some(t) if now_s > t => (now_s, (now_s - t).min(MAX_DT_S)),
            Some(t) => (t, 0.0),
            None => (now_s, 0.0),
        };
        self.last_now_s = Some(now);
        let clear = self.cfg.safety.alarm_clear_delay_s;
        let mut ex = Explanation::default();

        // 1. Validation.
        let mut valid = [None; Signal::COUNT];
        for s in Signal::ALL {
            valid[s.index()] = self.validators[s.index()].check(now, image.get(s)).ok();
        }
        let sig = |s: Signal| valid[s.index()];

        // 2. Outdoor.
        let od = self.outdoor.update(now, dt, sig(Signal::TOut));
        ex.outdoor_c = Some(od.actual_c);
        ex.outdoor_source = Some(od.source);
        ex.damped_outdoor_c = Some(od.damped_c);
        ex.composite_outdoor_c = Some(od.composite_c);
        self.alarms.set(
            AlarmCode::OutdoorSensorLost,
            sig(Signal::TOut).is_none(),
            now,
            clear,
        );
        let fallback = od.source == OutdoorSource::Fallback;
        self.alarms
            .set(AlarmCode::OutdoorFallback, fallback, now, clear);
        if od.source != OutdoorSource::Measured {
            ex.fallbacks.push(if fallback {
                AlarmCode::OutdoorFallback
            } else {
                AlarmCode::OutdoorSensorLost
            });
        }

        // 3. Summer and mode.
        let season_on = self.summer.update(od.damped_c);
        let heating_on = season_on && self.mode != Mode::Off;
        ex.heating_on = heating_on;

        // 4. Curve and shifts.
        ex.curve_c = self.curve.raw_c(od.curve_input_c);
        ex.base_shift_k = self.operator_shift_k.unwrap_or(self.curve.shift_k());
        self.demand
            .update(now, &image.rooms, self.may_raise && heating_on);
        ex.rooms = self.demand.stats();
        ex.demand_shift_k = self.demand.shift_k();
        // Valves count as requests only while under room control (household loops on), or
        // always when they are driven by their own thermostats (loops off).
        let counts = self
            .cfg
            .household_valves
            .enabled
            .then(|| self.household.controlled());
        self.trim.update(
            &self.cfg.valve_demand,
            now,
            &image.hh_valve_pos_pct,
            self.hh_valve_limits,
            counts,
        );
        ex.valve_demand_shift_k = self.trim.shift_k();
        let quorum_lost = self.cfg.demand.enabled && ex.rooms.expected > 0 && !ex.rooms.quorum;
        self.alarms
            .set(AlarmCode::RoomQuorumLost, quorum_lost, now, clear);
        if quorum_lost {
            ex.fallbacks.push(AlarmCode::RoomQuorumLost);
        }
        let some_bad = ex.rooms.invalid + ex.rooms.outliers > 0;
        self.alarms
            .set(AlarmCode::RoomNodesInvalid, some_bad, now, clear);

        let unclamped = ex.curve_c + ex.base_shift_k + ex.demand_shift_k + ex.valve_demand_shift_k;
        let (min_c, max_c) = self.curve.clamp_c();
        let mut sp = if unclamped.is_finite() {
            unclamped.clamp(min_c, max_c)
        } else {
            max_c
        };
        let push = |ex: &mut Explanation, limiter: Limiter, before: f64, after: f64| {
            if (after - before).abs() > 1e-9 {
                ex.limiters.push(LimiterEffect {
                    limiter,
                    delta_k: after - before,
                });
            }
        };
        push(&mut ex, Limiter::Clamp, unclamped, sp);
        let at_max_clamp = unclamped >= max_c;

        // 5. Schedule.
        let before = sp;
        match self.schedule.update(
            &self.cfg.schedule,
            now,
            self.cfg.site.utc_offset_h,
            od.damped_c,
        ) {
            ScheduleEffect::Setback(k) => {
                sp = (sp + k).max(min_c);
                push(&mut ex, Limiter::Setback, before, sp);
            }
            ScheduleEffect::Boost(k) => {
                sp = (sp + k).min(max_c);
                push(&mut ex, Limiter::Boost, before, sp);
            }
            ScheduleEffect::None => {}
        }

        // 6. Protective limiters.
        let lim = &self.cfg.limits;
        let t1r = sig(Signal::T1Return);
        let t2r = sig(Signal::T2Return);
        self.alarms.set(
            AlarmCode::T1ReturnInvalid,
            image.get(Signal::T1Return).is_some() && t1r.is_none(),
            now,
            clear,
        );
        self.alarms.set(
            AlarmCode::T2ReturnInvalid,
            image.get(Signal::T2Return).is_some() && t2r.is_none(),
            now,
            clear,
        );
        let t1s_bad = image.get(Signal::T1Supply).is_some() && sig(Signal::T1Supply).is_none();
        self.alarms
            .set(AlarmCode::T1SupplyInvalid, t1s_bad, now, clear);
        let mut protective = 0.0;
        let r1 = if lim.return1.enabled {
            let v =
                t1r.and_then(|r| return_limit_c(&lim.return1.points, od.actual_c).map(|l| r - l));
            self.return1.update(lim.return1.gains, v, dt)
        } else {
            self.return1.reset();
            0.0
        };
        let before = sp;
        sp = (sp - r1).max(min_c);
        push(&mut ex, Limiter::Return1, before, sp);
        protective += before - sp;
        let rd = if lim.return_difference.enabled {
            let v = t1r
                .zip(t2r)
                .map(|(a, b)| a - b - lim.return_difference.max_difference_k);
            self.return_diff.update(lim.return_difference.gains, v, dt)
        } else {
            self.return_diff.reset();
            0.0
        };
        let before = sp;
        sp = (sp - rd).max(min_c);
        push(&mut ex, Limiter::ReturnDifference, before, sp);
        protective += before - sp;
        let power = sig(Signal::Power1Kw);
        let flow = sig(Signal::Flow1M3h);
        let meter_connected =
            image.get(Signal::Power1Kw).is_some() || image.get(Signal::Flow1M3h).is_some();
        self.alarms.set(
            AlarmCode::HeatMeterInvalid,
            meter_connected && power.is_none() && flow.is_none(),
            now,
            clear,
        );
        let pw = if lim.power.enabled {
            let over_p =
                power.map(|p| (p - lim.power.max_power_kw) / lim.power.max_power_kw * 100.0);
            let over_f =
                flow.map(|f| (f - lim.power.max_flow_m3h) / lim.power.max_flow_m3h * 100.0);
            let v = match (over_p, over_f) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            self.power.update(lim.power.gains, v, dt)
        } else {
            self.power.reset();
            0.0
        };
        let before = sp;
        sp = (sp - pw).max(min_c);
        push(&mut ex, Limiter::Power, before, sp);
        protective += before - sp;

        // 7. Rate limit.
        let before = sp;
        sp = self.rate.update(
            sp,
            lim.rate.max_rise_k_per_min / 60.0,
            lim.rate.max_fall_k_per_min / 60.0,
            dt,
        );
        push(&mut ex, Limiter::Rate, before, sp);
        if !heating_on {
            push(&mut ex, Limiter::Summer, sp, min_c);
        }
        ex.active_limiter = ex
            .limiters
            .iter()
            .max_by(|a, b| a.delta_k.abs().total_cmp(&b.delta_k.abs()))
            .map(|e| e.limiter);
        ex.setpoint_c = heating_on.then_some(sp);

        // 8 + 9. Valve loop and supervisor.
        let t2 = sig(Signal::T2Supply);
        let pos = sig(Signal::Valve1PosPct);
        let safety = &self.cfg.safety;
        if self.valve1.output_pct().is_none() {
            // Bumpless start (also after a restart): continue from where the valve is.
            self.valve1.track(pos.unwrap_or(safety.valve1_safe_pct));
        }
        let last_cmd = self.valve1.output_pct().unwrap_or(safety.valve1_safe_pct);
        // Over-temperature acts on any fresh in-range reading, even one the jump or stuck check
        // rejected: closing the valve is the safe side.
        let plausible = |s: Signal| {
            let lim = self.validators[s.index()].limits();
            image
                .get(s)
                .filter(|x| {
                    x.valid
                        && x.value.is_finite()
                        && x.age_s <= lim.max_age_s
                        && x.value >= lim.valid_min
                        && x.value <= lim.valid_max
                })
                .map(|x| x.value)
        };
        if let Some(t) = plausible(Signal::T2Supply) {
            if t >= safety.t2_supply_max_c {
                self.over_temperature = true;
            } else if t < safety.t2_supply_max_c - safety.cut_hysteresis_k {
                self.over_temperature = false;
            }
        }
        if let Some(t) = plausible(Signal::T1Return) {
            if t >= safety.t1_return_max_c {
                self.t1_over_temperature = true;
            } else if t < safety.t1_return_max_c - safety.cut_hysteresis_k {
                self.t1_over_temperature = false;
            }
        }
        let coldest = [t2, t2r]
            .into_iter()
            .flatten()
            .fold(f64::INFINITY, f64::min);
        if coldest <= safety.frost_c {
            self.frost = true;
        } else if coldest > safety.frost_c + FROST_HYSTERESIS_K {
            self.frost = false;
        }
        match t2 {
            Some(_) => self.t2_lost_since_s = None,
            None => {
                self.t2_lost_since_s.get_or_insert(now);
            }
        }
        self.alarms
            .set(AlarmCode::T2SupplyLost, t2.is_none(), now, clear);

        let mut supervisor = None;
        let mut u = match (self.mode, t2) {
            (Mode::Manual(p), _) => p,
            (_, _) if !heating_on => {
                supervisor = Some(SupervisorAction::SafePosition);
                if self.mode == Mode::Off {
                    safety.valve1_safe_pct
                } else {
                    0.0
                }
            }
            (Mode::Auto, Some(t)) => self.valve1.update(&self.cfg.valve1, sp, t, dt),
            (_, None) => {
                let lost_for = now - self.t2_lost_since_s.unwrap_or(now);
                if lost_for <= safety.t2_lost_hold_s {
                    supervisor = Some(SupervisorAction::HoldOnSensorLoss);
                    last_cmd
                } else {
                    supervisor = Some(SupervisorAction::SafePosition);
                    safety.valve1_safe_pct
                }
            }
            (Mode::Off, Some(_)) => safety.valve1_safe_pct,
        };
        if t2.is_none() {
            ex.fallbacks.push(AlarmCode::T2SupplyLost);
        }
        if self.frost && u < safety.frost_valve_min_pct {
            u = safety.frost_valve_min_pct;
            supervisor = Some(SupervisorAction::Frost);
        }
        if self.over_temperature || self.t1_over_temperature {
            u = 0.0;
            supervisor = Some(SupervisorAction::OverTemperatureCut);
        }
        self.alarms.set(AlarmCode::Frost, self.frost, now, clear);
        self.alarms.set(
            AlarmCode::T2OverTemperature,
            self.over_temperature,
            now,
            clear,
        );
        self.alarms.set(
            AlarmCode::T1ReturnOverTemperature,
            self.t1_over_temperature,
            now,
            clear,
        );
        let u = if u.is_finite() {
            u.clamp(0.0, 100.0)
        } else {
            safety.valve1_safe_pct
        };
        if supervisor.is_some() || !matches!(self.mode, Mode::Auto) || t2.is_none() {
            self.valve1.force(u);
        }
        ex.supervisor = supervisor;

        // Anti-windup of the demand integrator for the next step.
        let valve_saturated =
            u >= self.cfg.valve1.max_pct - 0.5 && t2.is_some_and(|t| t < sp - 1.0);
        self.may_raise =
            protective < 0.1 && !at_max_clamp && !valve_saturated && supervisor.is_none();

        // Valve feedback.
        let pos_bad = image.get(Signal::Valve1PosPct).is_some() && pos.is_none();
        self.alarms
            .set(AlarmCode::Valve1FeedbackInvalid, pos_bad, now, clear);
        let deviating = pos.is_some_and(|p| (p - u).abs() > DEVIATION_PCT);
        if deviating {
            self.deviation_since_s.get_or_insert(now);
        } else {
            self.deviation_since_s = None;
        }
        let dev_long = self
            .deviation_since_s
            .is_some_and(|t| now - t > DEVIATION_S);
        self.alarms
            .set(AlarmCode::Valve1Deviation, dev_long, now, clear);

        let pulse = match self.cfg.valve1.output {
            ValveOutput::Position => None,
            ValveOutput::ThreePoint => {
                self.three_point
                    .pulse(u, self.cfg.valve1.run_time_s, self.cfg.valve1.min_pulse_s)
            }
        };

        // 10. Household valves.
        let hh = if self.cfg.household_valves.enabled {
            self.household
                .update(&self.cfg.household_valves, now, self.demand.validated());
            self.household.outputs()
        } else {
            vec![None; self.cfg.rooms.nodes.len()]
        };

        Commands {
            valve1_pct: u,
            valve1_pulse: pulse,
            hh_valves_pct: hh,
            alarms: self.alarms.list(),
            explanation: ex,
        }
    }
}
