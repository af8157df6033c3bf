//! The whole control law as sans-I/O code: no clock reads, no sockets, no files.
//!
//! [`Controller::step_at`] takes the time ([`StepTime`]: monotonic time for every duration,
//! wall time for the schedule, timestamps and the saved state's age) and a [`ProcessImage`] and
//! returns [`Commands`] with an [`Explanation`]. A wall clock that steps (NTP, an operator)
//! moves the schedule and nothing else: ages, time steps, delays and rates follow monotonic
//! time. One step runs these phases, in this fixed order (one method each):
//!
//! 1. signal validation (range, sentinel, stale, stuck, jump); the explanation lists every
//!    rejected signal with the reason;
//! 2. outdoor temperature: damped, composite, hold/fallback when lost;
//! 3. summer cut-off and operating mode;
//! 4. heating curve + technician shift, the demand correction (rooms), trim and respond
//!    (valve positions); their sum clamped;
//! 5. schedule (setback weakened when cold, boost after setback);
//! 6. protective limiters, which can only lower: primary return limit, return difference limit,
//!    power/flow limit (only with valid heat-meter data);
//! 7. setpoint rate limit;
//! 8. the safety supervisor's latches: over-temperature cut, frost protection, t2_supply lost;
//! 9. the primary valve: its loop (PI(D), deadband, anti-windup, rate limit, feed-forward), or
//!    what the supervisor and the mode impose instead (frost minimum, over-temperature cut,
//!    hold then safe position on t2_supply loss, off/manual); its feedback and three-point
//!    pulse;
//! 10. household valve loops;
//! 11. the secondary pump (only with `points.pump2_speed_cmd` bound): its differential-pressure
//!     loop, dry-run guard and fallbacks ([`pump`]);
//!
//! and last the alarms the phases found are raised or cleared (after the clear delay).

pub mod alarms;
pub mod coldest;
mod commands;
pub mod curve;
pub mod demand;
mod field_alarms;
mod household;
mod image;
pub mod limiters;
pub mod outdoor;
mod outputs;
pub mod pump;
pub mod validation;
mod valve_demand;
mod valve_loop;

pub use crate::signal::Signal;
pub use commands::*;
pub use field_alarms::{AlarmChange, FieldAlarms, FieldConditions};
pub use household::HouseholdLoops;
pub use image::{ProcessImage, Sample};
pub use outputs::ThreePointOutputs;
pub use pump::{DryRunState, Pump2Command, Pump2Inputs, Pump2Loop, Pump2Reason};
pub use valve_demand::TrimRespond;
pub use valve_loop::{ThreePoint, Valve1Loop};

use crate::config::{Config, Demand, DemandMeasure, Pump2, SignalLimits, ValveOutput};
use alarms::Alarms;
use curve::{HeatingCurve, SummerCutoff};
use demand::DemandCorrection;
use limiters::{PiReducer, RateLimiter, ScheduleEffect, ScheduleState, return_limit_c};
use outdoor::{OutdoorFilter, OutdoorTemps};
pub use validation::Rejection;
use validation::Validator;

/// Longest time step the dynamics accept in one go, seconds (a paused process resumes gently).
const MAX_DT_S: f64 = 600.0;
/// Valve deviation alarm: command and feedback apart by more than this, %...
const DEVIATION_PCT: f64 = 10.0;
/// ...for longer than this, seconds.
const DEVIATION_S: f64 = 300.0;
/// Frost protection ends this far above its start temperature, K.
const FROST_HYSTERESIS_K: f64 = 3.0;

/// The time of a control step: both of the runtime's clocks, read together.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StepTime {
    /// Monotonic time, s from an arbitrary origin: never steps. Ages, the time step of
    /// integrators and rate limiters, alarm delays, every duration.
    pub mono_s: f64,
    /// Wall time, unix s: may step. Schedules (time of day, weekday), alarm timestamps, the
    /// saved state's time.
    pub wall_s: f64,
}

impl StepTime {
    /// Both clocks at `now_s`: a simulation whose wall clock never steps.
    #[must_use]
    pub fn same(now_s: f64) -> Self {
        Self {
            mono_s: now_s,
            wall_s: now_s,
        }
    }
}

/// The slow state worth keeping across a restart: what took hours to learn. The runtime saves
/// it now and then and hands it back after a restart (a killed process resumes where it was).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SavedState {
    /// When it was saved: wall time of the last step, unix s (the state file's age is a wall
    /// age: it spans restarts, which monotonic time does not).
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
    /// Whether trim and respond may trim at its next run: heating was on and the setpoint above
    /// its lowest clamp at the last step (a trim then would lower nothing and only wind down).
    trim_may_lower: bool,
    alarms: Alarms,
    mode: Mode,
    operator_shift_k: Option<f64>,
    last_now_s: Option<f64>,
    /// Wall time of the last step, unix s.
    last_wall_s: Option<f64>,
    /// Whether the demand integrator may raise (anti-windup), from the previous step.
    may_raise: bool,
    /// Whether the demand integrator may lower (anti-windup: not while the setpoint sits at
    /// the curve's min clamp), from the previous step.
    may_lower: bool,
    t2_lost_since_s: Option<f64>,
    over_temperature: bool,
    t1_over_temperature: bool,
    frost: bool,
    deviation_since_s: Option<f64>,
    pump2: Pump2Loop,
    /// Since when the pump's speed feedback has been far from its command.
    pump2_deviation_since_s: Option<f64>,
}

/// The demand correction's configuration in force: `[demand]`, or with household valve loops
/// and trim and respond on (and `household_valves.percentile_floor`), the floor under trim and
/// respond (it can only raise, below the household target by the floor margin).
fn demand_config(cfg: &Config) -> Demand {
    let hh = &cfg.household_valves;
    let mut d = cfg.demand.clone();
    if hh.percentile_floor && cfg.valve_demand.enabled && has_valves(cfg).contains(&true) {
        d.target_c = d.target_c.min(hh.target_c - hh.percentile_floor_margin_k);
        d.min_shift_k = d.min_shift_k.max(0.0).min(d.max_shift_k);
        // The floor is the percentile of the readings: with a valve in every home a lost
        // node's valve already holds its learned position, so the coldest estimate's margin for
        // lost flats would raise every home's supply for them a second time.
        d.measure = DemandMeasure::Percentile;
    }
    d
}

fn has_valves(cfg: &Config) -> Vec<bool> {
    cfg.rooms
        .nodes
        .iter()
        .map(|n| cfg.household_valves.enabled && n.valve_link.is_some())
        .collect()
}

/// Each room node's position class (configuration order).
fn position_classes(cfg: &Config) -> Vec<usize> {
    cfg.rooms
        .nodes
        .iter()
        .map(|n| coldest::class_index(n.position))
        .collect()
}

/// Household loops for the configured valves, at their safe position.
fn household_loops_for(cfg: &Config) -> HouseholdLoops {
    let mut h = HouseholdLoops::new(&has_valves(cfg), cfg.household_valves.safe_position_pct);
    h.set_classes(&position_classes(cfg));
    h
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
            demand: DemandCorrection::new(
                &demand_config(cfg),
                &cfg.rooms.nodes,
                cfg.signals.room_limits(),
            ),
            trim: TrimRespond::default(),
            return1: PiReducer::default(),
            return_diff: PiReducer::default(),
            power: PiReducer::default(),
            schedule: ScheduleState::default(),
            rate: RateLimiter::default(),
            valve1: Valve1Loop::default(),
            three_point: ThreePoint::default(),
            household: household_loops_for(cfg),
            trim_may_lower: true,
            hh_valve_limits: cfg.signals.hh_valve_pos_limits(),
            alarms: Alarms::default(),
            mode: Mode::Auto,
            operator_shift_k: None,
            last_now_s: None,
            last_wall_s: None,
            may_raise: true,
            may_lower: true,
            t2_lost_since_s: None,
            over_temperature: false,
            t1_over_temperature: false,
            frost: false,
            deviation_since_s: None,
            pump2: Pump2Loop::default(),
            pump2_deviation_since_s: None,
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
        self.demand.set_config(
            &demand_config(cfg),
            &cfg.rooms.nodes,
            cfg.signals.room_limits(),
        );
        self.hh_valve_limits = cfg.signals.hh_valve_pos_limits();
        if has_valves(cfg) != has_valves(&self.cfg) {
            self.household = household_loops_for(cfg);
        } else {
            self.household.set_classes(&position_classes(cfg));
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

    /// Each room node's verdict at the demand correction's last run, in configuration order.
    #[must_use]
    pub fn room_verdicts(&self) -> &[demand::NodeVerdict] {
        self.demand.verdicts()
    }

    /// The demand correction's estimate of the coldest flat at its last run.
    #[must_use]
    pub fn coldest_estimate(&self) -> Option<coldest::Estimate> {
        self.demand.estimate()
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

    /// Whether the demand correction is on (the one copy of this setting).
    #[must_use]
    pub fn demand_enabled(&self) -> bool {
        self.demand.enabled()
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
            saved_at_s: self.last_wall_s.unwrap_or(0.0),
            demand_shift_k: self.demand.shift_k(),
            valve_demand_shift_k: self.trim.shift_k(),
            damped_outdoor_c: self.outdoor.damped_c(),
        }
    }

    /// Resume from saved state (call before the first step). Values are clamped to the
    /// configured bounds; non-finite ones are ignored, and so is a damped outdoor temperature
    /// outside the outdoor sensor's plausible range (a damaged file must not steer the curve).
    pub fn restore(&mut self, saved: &SavedState) {
        self.demand.restore_shift_k(saved.demand_shift_k);
        self.trim
            .restore_shift_k(&self.cfg.valve_demand, saved.valve_demand_shift_k);
        let lim = self.validators[Signal::TOut.index()].limits();
        if let Some(d) = saved.damped_outdoor_c
            && (lim.valid_min..=lim.valid_max).contains(&d)
        {
            self.outdoor.restore_damped_c(d);
        }
    }

    /// The operator's reset of a pump dry-run trip: the pump restarts at the next step (and
    /// trips again if the cause is still there).
    pub fn reset_pump2_dry_run(&mut self) {
        self.pump2.reset_dry_run();
    }

    /// The commands to write on shutdown or a fatal fault: every valve at its safe position,
    /// the secondary pump (where controlled) at its safe speed.
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
            pump2: Pump2::controlled(&self.cfg).then(|| self.pump2.safe_command(&self.cfg.pump2)),
            alarms: self.alarms.list(),
            explanation: Explanation {
                supervisor: Some(SupervisorAction::SafePosition),
                ..Explanation::default()
            },
        }
    }

    /// One control step at `now_s` on a clock that never steps (simulations, tests): monotonic
    /// and wall time both `now_s` (unix seconds). See [`Controller::step_at`].
    pub fn step(&mut self, now_s: f64, image: &ProcessImage) -> Commands {
        self.step_at(StepTime::same(now_s), image)
    }

    /// One control step at time `t`: the phases of the module documentation, in order. Every
    /// duration (time step, delays, ages) is measured on `t.mono_s`; the schedule and the alarm
    /// timestamps use `t.wall_s`.
    pub fn step_at(&mut self, t: StepTime, image: &ProcessImage) -> Commands {
        let (now, dt) = self.advance_clock(t.mono_s);
        let wall = self.advance_wall(t.wall_s);
        let at = StepTime {
            mono_s: now,
            wall_s: wall,
        };
        let mut ex = Explanation::default();

        let inputs = self.validate(now, image, &mut ex);
        let od = self.outdoor(now, dt, &inputs, &mut ex);
        let heating_on = self.season_and_mode(od, &mut ex);
        self.curve(od, &mut ex);
        self.demand(now, image, heating_on, &mut ex);
        self.trim_and_respond(now, image, &mut ex);
        let mut sp = self.shifted_setpoint(&mut ex);
        self.schedule(at, od, &mut sp, &mut ex);
        self.limiters(dt, od, &inputs, &mut sp, &mut ex);
        self.rate_limit(dt, heating_on, &mut sp, &mut ex);
        self.supervisor(now, image, &inputs);
        let valve1 = self.valve1(now, dt, sp.value_c, heating_on, &inputs, &mut ex);
        self.anti_windup(&sp, &valve1, &inputs);
        self.valve1_feedback(now, valve1.command_pct, &inputs);
        let pulse = self.three_point(valve1.command_pct);
        let hh = self.household_loops(now);
        let pump2 = self.pump2(now, dt, heating_on, image, &inputs);
        self.report_alarms(at, &inputs, &ex);

        Commands {
            valve1_pct: valve1.command_pct,
            valve1_pulse: pulse,
            hh_valves_pct: hh,
            pump2,
            alarms: self.alarms.list(),
            explanation: ex,
        }
    }

    /// The step's monotonic time and the time step: a clock that goes backwards or is not a
    /// number holds the last time, and a long pause counts as at most [`MAX_DT_S`].
    fn advance_clock(&mut self, now_s: f64) -> (f64, f64) {
        let (now, dt) = match self.last_now_s {
            _ if !now_s.is_finite() => (self.last_now_s.unwrap_or(0.0), 0.0),
            Some(t) if now_s > t => (now_s, (now_s - t).min(MAX_DT_S)),
            Some(t) => (t, 0.0),
            None => (now_s, 0.0),
        };
        self.last_now_s = Some(now);
        (now, dt)
    }

    /// The step's wall time: any finite value (it may step either way); not a number holds
    /// the last.
    fn advance_wall(&mut self, wall_s: f64) -> f64 {
        let wall = if wall_s.is_finite() {
            wall_s
        } else {
            self.last_wall_s.unwrap_or(0.0)
        };
        self.last_wall_s = Some(wall);
        wall
    }

    /// Validate every signal; the explanation lists each one rejected, with the reason.
    fn validate(&mut self, now: f64, image: &ProcessImage, ex: &mut Explanation) -> Validated {
        let checked = Signal::ALL.map(|s| self.validators[s.index()].check(now, image.get(s)));
        for s in Signal::ALL {
            if let Err(reason) = checked[s.index()]
                && reason != Rejection::Missing
            {
                ex.rejected.push(SignalRejection { signal: s, reason });
            }
        }
        Validated(checked)
    }

    /// The outdoor temperature: damped, composite, held or fallback when the sensor is lost.
    fn outdoor(
        &mut self,
        now: f64,
        dt: f64,
        inputs: &Validated,
        ex: &mut Explanation,
    ) -> OutdoorTemps {
        let od = self.outdoor.update(
            now,
            dt,
            inputs.value(Signal::TOut),
            inputs.value(Signal::TOutForecast),
        );
        ex.outdoor_c = Some(od.actual_c);
        ex.outdoor_source = Some(od.source);
        ex.damped_outdoor_c = Some(od.damped_c);
        ex.composite_outdoor_c = Some(od.composite_c);
        match od.source {
            OutdoorSource::Measured => {}
            OutdoorSource::Held => ex.fallbacks.push(AlarmCode::OutdoorSensorLost),
            OutdoorSource::Fallback => ex.fallbacks.push(AlarmCode::OutdoorFallback),
        }
        od
    }

    /// Summer cut-off and operating mode: whether heating is on.
    fn season_and_mode(&mut self, od: OutdoorTemps, ex: &mut Explanation) -> bool {
        let season_on = self.summer.update(od.damped_c);
        ex.heating_on = season_on && self.mode != Mode::Off;
        ex.heating_on
    }

    /// The heating curve and the technician's (or SCADA's) shift.
    fn curve(&self, od: OutdoorTemps, ex: &mut Explanation) {
        ex.curve_c = self.curve.raw_c(od.curve_input_c);
        ex.base_shift_k = self.operator_shift_k.unwrap_or(self.curve.shift_k());
    }

    /// The demand correction from room temperatures (it may raise or lower only when the
    /// previous step allowed it and heating is on).
    fn demand(&mut self, now: f64, image: &ProcessImage, heating_on: bool, ex: &mut Explanation) {
        // A rogue household valve's node is as suspect as a node reading far below its class.
        if self.cfg.household_valves.enabled {
            self.demand.set_unresponsive(self.household.rogues());
        }
        self.demand.update(
            now,
            &image.rooms,
            ex.outdoor_c,
            self.may_raise && heating_on,
            self.may_lower && heating_on,
        );
        ex.rooms = self.demand.stats();
        ex.demand_shift_k = self.demand.shift_k();
        if self.room_quorum_lost(ex) {
            ex.fallbacks.push(AlarmCode::RoomQuorumLost);
        }
    }

    /// Trim and respond on valve positions. Valves count as requests only while under room
    /// control (household loops on), or always when they are driven by their own thermostats
    /// (loops off).
    fn trim_and_respond(&mut self, now: f64, image: &ProcessImage, ex: &mut Explanation) {
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
            self.trim_may_lower,
        );
        ex.valve_demand_shift_k = self.trim.shift_k();
    }

    /// Whether the demand correction runs without its quorum of rooms.
    fn room_quorum_lost(&self, ex: &Explanation) -> bool {
        self.cfg.demand.enabled && ex.rooms.expected > 0 && !ex.rooms.quorum
    }

    /// Curve plus shifts, clamped to the curve's range.
    fn shifted_setpoint(&self, ex: &mut Explanation) -> Setpoint {
        let unclamped = ex.curve_c + ex.base_shift_k + ex.demand_shift_k + ex.valve_demand_shift_k;
        let (min_c, max_c) = self.curve.clamp_c();
        let mut sp = Setpoint {
            value_c: unclamped,
            min_c,
            max_c,
            at_max_clamp: unclamped >= max_c,
            at_min_clamp: unclamped <= min_c,
            protective_k: 0.0,
        };
        let clamped = if unclamped.is_finite() {
            unclamped.clamp(min_c, max_c)
        } else {
            max_c
        };
        sp.apply(ex, Limiter::Clamp, clamped);
        sp
    }

    /// The schedule: setback (weakened when cold), boost after setback.
    fn schedule(&mut self, t: StepTime, od: OutdoorTemps, sp: &mut Setpoint, ex: &mut Explanation) {
        match self.schedule.update(
            &self.cfg.schedule,
            t,
            self.cfg.site.utc_offset_h,
            od.damped_c,
        ) {
            ScheduleEffect::Setback(k) => {
                let v = (sp.value_c + k).max(sp.min_c);
                sp.apply(ex, Limiter::Setback, v);
            }
            ScheduleEffect::Boost(k) => {
                let v = (sp.value_c + k).min(sp.max_c);
                sp.apply(ex, Limiter::Boost, v);
            }
            ScheduleEffect::None => {}
        }
    }

    /// The protective limiters, which can only lower: primary return limit, return difference
    /// limit, power/flow limit (only with valid heat-meter data).
    fn limiters(
        &mut self,
        dt: f64,
        od: OutdoorTemps,
        inputs: &Validated,
        sp: &mut Setpoint,
        ex: &mut Explanation,
    ) {
        let lim = &self.cfg.limits;
        let t1r = inputs.value(Signal::T1Return);
        let t2r = inputs.value(Signal::T2Return);
        let r1 = if lim.return1.enabled {
            let v =
                t1r.and_then(|r| return_limit_c(&lim.return1.points, od.actual_c).map(|l| r - l));
            self.return1.update(lim.return1.gains, v, dt)
        } else {
            self.return1.reset();
            0.0
        };
        sp.lower(ex, Limiter::Return1, r1);
        let rd = if lim.return_difference.enabled {
            let v = t1r
                .zip(t2r)
                .map(|(a, b)| a - b - lim.return_difference.max_difference_k);
            self.return_diff.update(lim.return_difference.gains, v, dt)
        } else {
            self.return_diff.reset();
            0.0
        };
        sp.lower(ex, Limiter::ReturnDifference, rd);
        let pw = if lim.power.enabled {
            let power = inputs.value(Signal::Power1Kw);
            let flow = inputs.value(Signal::Flow1M3h);
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
        sp.lower(ex, Limiter::Power, pw);
    }

    /// The setpoint rate limit; then the setpoint in force and the limiter that mattered most.
    fn rate_limit(&mut self, dt: f64, heating_on: bool, sp: &mut Setpoint, ex: &mut Explanation) {
        let rate = &self.cfg.limits.rate;
        let v = self.rate.update(
            sp.value_c,
            rate.max_rise_k_per_min / 60.0,
            rate.max_fall_k_per_min / 60.0,
            dt,
        );
        sp.apply(ex, Limiter::Rate, v);
        if !heating_on {
            record_limiter(ex, Limiter::Summer, sp.value_c, sp.min_c);
        }
        ex.active_limiter = ex
            .limiters
            .iter()
            .max_by(|a, b| a.delta_k.abs().total_cmp(&b.delta_k.abs()))
            .map(|e| e.limiter);
        ex.setpoint_c = heating_on.then_some(sp.value_c);
        self.trim_may_lower = heating_on && sp.value_c > sp.min_c + 1e-6;
    }

    /// The safety supervisor's latches: over-temperature cuts (on any fresh in-range reading,
    /// even one the jump or stuck check rejected: closing the valve is the safe side), frost
    /// protection, and since when t2_supply is lost.
    fn supervisor(&mut self, now: f64, image: &ProcessImage, inputs: &Validated) {
        let safety = &self.cfg.safety;
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
        let t2 = inputs.value(Signal::T2Supply);
        let coldest = [t2, inputs.value(Signal::T2Return)]
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
    }

    /// The primary valve: its loop on t2_supply, or what mode and supervisor impose instead
    /// (manual, off, summer, t2_supply lost, frost, over-temperature).
    fn valve1(
        &mut self,
        now: f64,
        dt: f64,
        sp_c: f64,
        heating_on: bool,
        inputs: &Validated,
        ex: &mut Explanation,
    ) -> Valve1Decision {
        let t2 = inputs.value(Signal::T2Supply);
        let safety = &self.cfg.safety;
        if self.valve1.output_pct().is_none() {
            // Bumpless start (also after a restart): continue from where the valve is.
            self.valve1.track(
                inputs
                    .value(Signal::Valve1PosPct)
                    .unwrap_or(safety.valve1_safe_pct),
            );
        }
        let last_cmd = self.valve1.output_pct().unwrap_or(safety.valve1_safe_pct);
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
            (Mode::Auto, Some(t)) => self.valve1.update(&self.cfg.valve1, sp_c, t, dt),
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
        let u = if u.is_finite() {
            u.clamp(0.0, 100.0)
        } else {
            safety.valve1_safe_pct
        };
        if supervisor.is_some() || !matches!(self.mode, Mode::Auto) || t2.is_none() {
            self.valve1.force(u);
        }
        ex.supervisor = supervisor;
        Valve1Decision {
            command_pct: u,
            supervisor,
        }
    }

    /// Anti-windup of the demand integrator for the next step: it may raise only while no
    /// protective limiter, clamp, saturated valve or supervisor holds the setpoint back, and
    /// lower only while the setpoint is above the curve's min clamp.
    fn anti_windup(&mut self, sp: &Setpoint, valve1: &Valve1Decision, inputs: &Validated) {
        let valve_saturated = valve1.command_pct >= self.cfg.valve1.max_pct - 0.5
            && inputs
                .value(Signal::T2Supply)
                .is_some_and(|t| t < sp.value_c - 1.0);
        self.may_raise = sp.protective_k < 0.1
            && !sp.at_max_clamp
            && !valve_saturated
            && valve1.supervisor.is_none();
        self.may_lower = !sp.at_min_clamp;
    }

    /// Since when the valve position feedback has been far from the command.
    fn valve1_feedback(&mut self, now: f64, command_pct: f64, inputs: &Validated) {
        let deviating = inputs
            .value(Signal::Valve1PosPct)
            .is_some_and(|p| (p - command_pct).abs() > DEVIATION_PCT);
        if deviating {
            self.deviation_since_s.get_or_insert(now);
        } else {
            self.deviation_since_s = None;
        }
    }

    /// The pulse for a three-point actuator (none for a position output).
    fn three_point(&mut self, command_pct: f64) -> Option<Pulse> {
        match self.cfg.valve1.output {
            ValveOutput::Position => None,
            ValveOutput::ThreePoint => self.three_point.pulse(
                command_pct,
                self.cfg.valve1.run_time_s,
                self.cfg.valve1.min_pulse_s,
            ),
        }
    }

    /// The household valve loops (one command per node; `None` without a loop).
    fn household_loops(&mut self, now: f64) -> Vec<Option<f64>> {
        if self.cfg.household_valves.enabled {
            self.household.update(
                &self.cfg.household_valves,
                now,
                self.demand.validated(),
                self.demand.raw(),
                self.demand.verdicts(),
            );
            self.household.outputs()
        } else {
            vec![None; self.cfg.rooms.nodes.len()]
        }
    }

    /// The secondary pump, where its speed command is bound (`None`: not controlled, nothing
    /// written); and since when its feedback deviates from the command.
    fn pump2(
        &mut self,
        now: f64,
        dt: f64,
        heating_on: bool,
        image: &ProcessImage,
        inputs: &Validated,
    ) -> Option<Pump2Command> {
        if !Pump2::controlled(&self.cfg) {
            self.pump2_deviation_since_s = None;
            return None;
        }
        let limits = self.hh_valve_limits;
        let usable = |s: &Sample| {
            s.valid
                && s.value.is_finite()
                && (limits.valid_min..=limits.valid_max).contains(&s.value)
                && s.age_s <= limits.max_age_s
        };
        let max_valve_pct = image
            .hh_valve_pos_pct
            .iter()
            .zip(has_valves(&self.cfg))
            .filter(|(_, fitted)| *fitted)
            .filter_map(|(s, _)| s.filter(usable))
            .map(|s| s.value)
            .reduce(f64::max);
        let x = Pump2Inputs {
            dp_station_kpa: inputs.value(Signal::Dp2StationKpa),
            dp_index_kpa: inputs.value(Signal::Dp2IndexKpa),
            flow_m3h: inputs.value(Signal::Flow2M3h),
            speed_fb_pct: inputs.value(Signal::Pump2SpeedPct),
            power_kw: inputs.value(Signal::Pump2PowerKw),
            heating_on,
            frost: self.frost,
            max_valve_pct,
        };
        let out = self.pump2.update(&self.cfg.pump2, now, dt, &x);
        let deviating = x
            .speed_fb_pct
            .is_some_and(|f| (f - out.speed_cmd_pct).abs() > DEVIATION_PCT);
        if deviating {
            self.pump2_deviation_since_s.get_or_insert(now);
        } else {
            self.pump2_deviation_since_s = None;
        }
        Some(out)
    }

    /// Raise or clear (after the clear delay) every alarm the control law owns, from what the
    /// phases found.
    fn report_alarms(&mut self, t: StepTime, inputs: &Validated, ex: &Explanation) {
        let now = t.mono_s;
        let rejected = |s: Signal| inputs.rejected(s);
        let heat_meter_invalid = (rejected(Signal::Power1Kw) || rejected(Signal::Flow1M3h))
            && inputs.value(Signal::Power1Kw).is_none()
            && inputs.value(Signal::Flow1M3h).is_none();
        let conditions = [
            (
                AlarmCode::OutdoorSensorLost,
                inputs.value(Signal::TOut).is_none(),
            ),
            (
                AlarmCode::OutdoorFallback,
                ex.outdoor_source == Some(OutdoorSource::Fallback),
            ),
            (AlarmCode::RoomQuorumLost, self.room_quorum_lost(ex)),
            (
                AlarmCode::RoomNodesInvalid,
                ex.rooms.invalid + ex.rooms.outliers > 0,
            ),
            (
                AlarmCode::RoomNodesSuspect,
                self.cfg.demand.enabled && self.demand.suspects().next().is_some(),
            ),
            (AlarmCode::T1ReturnInvalid, rejected(Signal::T1Return)),
            (AlarmCode::T2ReturnInvalid, rejected(Signal::T2Return)),
            (AlarmCode::T1SupplyInvalid, rejected(Signal::T1Supply)),
            (AlarmCode::HeatMeterInvalid, heat_meter_invalid),
            (
                AlarmCode::T2SupplyLost,
                inputs.value(Signal::T2Supply).is_none(),
            ),
            (AlarmCode::Frost, self.frost),
            (AlarmCode::T2OverTemperature, self.over_temperature),
            (AlarmCode::T1ReturnOverTemperature, self.t1_over_temperature),
            (
                AlarmCode::Valve1FeedbackInvalid,
                rejected(Signal::Valve1PosPct),
            ),
            (
                AlarmCode::Valve1Deviation,
                self.deviation_since_s
                    .is_some_and(|t| now - t > DEVIATION_S),
            ),
            (
                AlarmCode::Pump2DryRun,
                matches!(self.pump2.dry_run(), DryRunState::Tripped { .. })
                    && Pump2::controlled(&self.cfg),
            ),
            (
                AlarmCode::Pump2Feedback,
                Pump2::controlled(&self.cfg)
                    && (rejected(Signal::Pump2SpeedPct)
                        || self
                            .pump2_deviation_since_s
                            .is_some_and(|t| now - t > DEVIATION_S)),
            ),
            (
                AlarmCode::Pump2DpLost,
                Pump2::controlled(&self.cfg)
                    && inputs.value(self.cfg.pump2.mode.measured()).is_none(),
            ),
        ];
        let clear = self.cfg.safety.alarm_clear_delay_s;
        for (code, condition) in conditions {
            self.alarms.set(code, condition, t, clear);
        }
    }
}

/// Every signal after validation: its value, or why it was not accepted.
#[derive(Debug, Clone, Copy)]
struct Validated([Result<f64, Rejection>; Signal::COUNT]);

impl Validated {
    /// The accepted value (`None`: missing or rejected).
    fn value(&self, s: Signal) -> Option<f64> {
        self.0[s.index()].ok()
    }

    /// Whether the signal was read but rejected (a missing signal is not rejected).
    fn rejected(&self, s: Signal) -> bool {
        matches!(self.0[s.index()], Err(r) if r != Rejection::Missing)
    }
}

/// The setpoint as it passes through the limiters.
#[derive(Debug, Clone, Copy)]
struct Setpoint {
    /// Its value so far, °C.
    value_c: f64,
    /// The curve's clamp, °C.
    min_c: f64,
    /// The curve's clamp, °C.
    max_c: f64,
    /// Whether curve and shifts asked for the top of the clamp or more.
    at_max_clamp: bool,
    /// Whether curve and shifts asked for the bottom of the clamp or less.
    at_min_clamp: bool,
    /// How far the protective limiters lowered it, K.
    protective_k: f64,
}

impl Setpoint {
    /// Let a stage set the value and record its effect.
    fn apply(&mut self, ex: &mut Explanation, limiter: Limiter, value_c: f64) {
        record_limiter(ex, limiter, self.value_c, value_c);
        self.value_c = value_c;
    }

    /// A protective limiter lowers by `by_k`, not below the clamp.
    fn lower(&mut self, ex: &mut Explanation, limiter: Limiter, by_k: f64) {
        let before = self.value_c;
        self.apply(ex, limiter, (before - by_k).max(self.min_c));
        self.protective_k += before - self.value_c;
    }
}

/// Record a limiter's effect if it changed anything.
fn record_limiter(ex: &mut Explanation, limiter: Limiter, before: f64, after: f64) {
    if (after - before).abs() > 1e-9 {
        ex.limiters.push(LimiterEffect {
            limiter,
            delta_k: after - before,
        });
    }
}

/// What the primary valve gets this step.
#[derive(Debug, Clone, Copy)]
struct Valve1Decision {
    /// The position command, %.
    command_pct: f64,
    /// The supervisor's override, if any.
    supervisor: Option<SupervisorAction>,
}
