//! The season scorecard: a whole heating season (15 Oct - 15 Apr) of a scenario's
//! substation simulated in-process under each strategy, on the same weather and the same seeded
//! buildings, scored with the KPIs of hil-tests/MODEL.md.
//!
//! * B0, B1, R1 and O2 run heatctl's own curve path (outdoor damping, design curve, clamps,
//!   summer cut-off, limiters, rate limit: the same `Controller::step`) with the demand
//!   correction off and a shift of their own (B0 none, B1 the best constant in hindsight, R1 a
//!   Danfoss-style reference-room influence, O2pi a PI on the true coldest apartment); the
//!   plant's perfect supply control puts the valve where the exchanger meets that setpoint.
//! * O2 sets the supply directly, hour by hour, to the lowest setpoint that a clone of the plant
//!   shows keeps every apartment at or above 18 °C ([`o2_hour`]), with the same perfect supply
//!   control.
//! * heatctl, heatctl_full (a room node in every flat) and heatctl_hh (household valves) run the
//!   full control core on a process image built from the plant's sensors (noise, bias,
//!   10-minute node refresh, lost reports, honest ages); its valve command drives the plant's
//!   actuator.
//! * O1 replaces the radiators by the plant's ideal heaters holding every apartment at 18 °C.
//! * B1+advice runs B1's curve; after three weeks heatctl's balancing estimator reads the hourly
//!   history of the sensed flats (from the plant's room truth) and a "technician" sets the
//!   plant's static balancing valves as advised, once ([`advice`], [`run_b1_advice`]).

pub mod advice;
pub mod field;
pub mod kpi;
pub mod matrix;
pub mod o2pi_trials;
pub mod plots;
pub mod report;
pub mod suspects;
pub mod sweep;
pub mod trace;

use std::time::Instant;

use anyhow::{Context, Result, bail};
use heatctl::config::Config;
use heatctl::control::{Controller, ProcessImage};
use heatctl_plant::{Plant, Scenario, naming, process_image};

pub use field::{FieldLayer, Variant};
pub use kpi::{Day, Extra, Flat, Kpis};

/// The controller's clock at the season start: 15 Oct 2025 00:00 local time (UTC+8), that is
/// 14 Oct 2025 16:00 UTC, unix s.
pub const SEASON_START_UNIX_S: f64 = 1_760_457_600.0;
/// Control step of the season, s.
pub const DEFAULT_STEP_S: f64 = 60.0;
/// The CSV header of `kpis.csv` and `variants.csv`.
pub const CSV_HEADER: &str = "strategy,energy_kwh_m2,pump_kwh_el_m2,tdis_kh,tdis_worst_kh,cold_hours_pct,overheat_kh,peak_w_m2,t1_return_c,valve_travel,wall_s";

/// The strategies of the scorecard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// As commissioned: the design curve.
    B0,
    /// Best fixed curve in hindsight: the design curve shifted so that the coldest apartment's
    /// 10th-percentile temperature is 18 °C.
    B1,
    /// Reference room: one sensed living room shifts the curve (Danfoss-style room influence).
    R1,
    /// heatctl with the default demand-corrected configuration.
    Heatctl,
    /// heatctl with a room node in every flat and no household valves (sensing without valves).
    HeatctlFull,
    /// heatctl with household valves.
    HeatctlHh,
    /// Oracle per apartment: ideal heaters hold every apartment at 18 °C.
    O1,
    /// Perfect substation-only control: each hour the lowest supply setpoint that keeps every
    /// apartment at or above 18 °C, found on a clone of the plant.
    O2,
    /// The former O2 stand-in: a PI on the true coldest apartment (windup fixed); not in the
    /// default scorecard.
    O2pi,
    /// An experimental step from O2pi toward heatctl's demand loop ([`o2pi_trials`]); not in
    /// [`Strategy::ALL`] nor the default scorecard, selectable by name only.
    PiTrial(o2pi_trials::PiStep),
}

impl Strategy {
    /// Every strategy, in report order.
    pub const ALL: [Strategy; 9] = [
        Strategy::B0,
        Strategy::B1,
        Strategy::R1,
        Strategy::Heatctl,
        Strategy::HeatctlFull,
        Strategy::HeatctlHh,
        Strategy::O1,
        Strategy::O2,
        Strategy::O2pi,
    ];

    /// The strategies of the default scorecard (every one but O2pi), in report order.
    pub const DEFAULT: [Strategy; 8] = [
        Strategy::B0,
        Strategy::B1,
        Strategy::R1,
        Strategy::Heatctl,
        Strategy::HeatctlFull,
        Strategy::HeatctlHh,
        Strategy::O1,
        Strategy::O2,
    ];

    /// Its name in the reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Strategy::B0 => "B0",
            Strategy::B1 => "B1",
            Strategy::R1 => "R1",
            Strategy::Heatctl => "heatctl",
            Strategy::HeatctlFull => "heatctl_full",
            Strategy::HeatctlHh => "heatctl_hh",
            Strategy::O1 => "O1",
            Strategy::O2 => "O2",
            Strategy::O2pi => "O2pi",
            Strategy::PiTrial(step) => step.name(),
        }
    }

    /// The strategy of a name (case-insensitive).
    #[must_use]
    pub fn parse(s: &str) -> Option<Strategy> {
        Strategy::ALL
            .into_iter()
            .find(|x| x.name().eq_ignore_ascii_case(s.trim()))
            .or_else(|| o2pi_trials::PiStep::parse(s).map(Strategy::PiTrial))
    }
}

/// Settings of the R1 reference-room strategy (Danfoss ECL-style room influence).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReferenceRoom {
    /// Desired temperature of the reference room, °C.
    pub desired_c: f64,
    /// Supply shift per kelvin of room deviation (both directions), K/K.
    pub influence_k_per_k: f64,
    /// Adaptation (integral) time, hours.
    pub adaptation_h: f64,
    /// Bound of the shift, K.
    pub max_shift_k: f64,
}

impl Default for ReferenceRoom {
    fn default() -> Self {
        Self {
            desired_c: 20.0,
            influence_k_per_k: 3.0,
            adaptation_h: 24.0,
            max_shift_k: 15.0,
        }
    }
}

/// Settings of O2pi, the former stand-in for perfect substation-only control: a PI on the true
/// coldest apartment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerfectSubstation {
    /// Target of the coldest apartment, °C.
    pub target_c: f64,
    /// Proportional gain, K of supply per K of room error.
    pub kp_k_per_k: f64,
    /// Integral time, hours.
    pub ti_h: f64,
}

impl Default for PerfectSubstation {
    fn default() -> Self {
        Self {
            target_c: 18.0,
            kp_k_per_k: 12.0,
            ti_h: 0.5,
        }
    }
}

/// Settings of O2, the true substation-only reference ([`o2_hour`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HindsightSubstation {
    /// Every apartment must stay at or above this, °C.
    pub floor_c: f64,
    /// A candidate setpoint is held and judged over this horizon from the hour's start, h: the
    /// hour it is applied for plus the lag of pipes, radiators and air (the next hour).
    pub horizon_h: f64,
    /// The search stops when the lowest feasible setpoint is known to within this, K ...
    pub tolerance_k: f64,
    /// ... or at a feasible setpoint whose coldest apartment stays within this of the floor, K.
    pub margin_tolerance_k: f64,
    /// Most clone simulations per hour (the answer is the lowest feasible one found).
    pub max_evaluations: u32,
    /// The clones' step, s: the apartments take one exact step of it (valve, exchanger and
    /// pipes still sub-step at 10 s) and the margin is read at its end. 300 s costs a quarter of
    /// the 60 s step per simulated hour; a B0 season at 300 s uses the same heat to 0.01 %.
    pub clone_step_s: f64,
    /// A candidate's simulation stops early once an apartment is this far below the floor, K
    /// (clearly infeasible; its margin is then not the horizon's minimum).
    pub early_exit_k: f64,
}

impl Default for HindsightSubstation {
    fn default() -> Self {
        Self {
            floor_c: kpi::FLOOR_C,
            horizon_h: 2.0,
            tolerance_k: 0.1,
            margin_tolerance_k: 0.01,
            max_evaluations: 10,
            clone_step_s: 300.0,
            early_exit_k: 0.5,
        }
    }
}

/// Everything the runs share.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The scenario (weather resolved).
    pub scenario: Scenario,
    /// heatctl's configuration (config/season.toml; its room nodes are generated per run).
    pub config: Config,
    /// heatctl_hh's configuration, the substation with a valve in every home
    /// (config/season-hh.toml); `None`: `config`. See [`Setup::config_for`].
    pub config_hh: Option<Config>,
    /// Control step, s.
    pub step_s: f64,
    /// R1 settings.
    pub reference_room: ReferenceRoom,
    /// O2pi settings.
    pub perfect: PerfectSubstation,
    /// O2 settings.
    pub hindsight: HindsightSubstation,
    /// Per-flat traces of every run (`None`: none).
    pub trace: Option<trace::TraceSpec>,
}

impl Setup {
    /// A setup with the default step and strategy settings.
    #[must_use]
    pub fn new(scenario: Scenario, config: Config) -> Self {
        Self {
            scenario,
            config,
            config_hh: None,
            step_s: DEFAULT_STEP_S,
            reference_room: ReferenceRoom::default(),
            perfect: PerfectSubstation::default(),
            hindsight: HindsightSubstation::default(),
            trace: None,
        }
    }

    /// The configuration a run starts from: `config_hh` (when given) for heatctl_hh and its
    /// variants, whose plant has a valve in every home and a controlled secondary pump;
    /// `config` for every other run.
    #[must_use]
    pub fn config_for(&self, kind: RunKind) -> &Config {
        match (kind, &self.config_hh) {
            (
                RunKind::Heatctl {
                    household: true, ..
                },
                Some(hh),
            ) => hh,
            _ => &self.config,
        }
    }

    /// Number of control steps of one season run.
    #[must_use]
    pub fn steps(&self) -> u64 {
        (self.scenario.season.length_days * 86_400.0 / self.step_s).round() as u64
    }

    /// The scenario heatctl_hh runs on: the scenario itself if it has household valves; else a
    /// copy with valves enabled and a room node in every home (a household valve comes with its
    /// room panel). Returns whether the copy was made.
    #[must_use]
    pub fn household_scenario(&self) -> (Scenario, bool) {
        let mut sc = self.scenario.clone();
        if sc.household_valves.enabled {
            (sc, false)
        } else {
            sc.household_valves.enabled = true;
            sc.room_nodes.share_pct = 100.0;
            (sc, true)
        }
    }

    /// The scenario heatctl_full runs on: a copy with a room node in every home and no
    /// household valves.
    #[must_use]
    pub fn full_sensing_scenario(&self) -> Scenario {
        let mut sc = self.scenario.clone();
        sc.household_valves.enabled = false;
        sc.room_nodes.share_pct = 100.0;
        sc
    }
}

/// What one run does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RunKind {
    /// The curve path with a constant shift (B0: 0, B1: the searched one), perfect supply.
    Curve {
        /// Shift, K.
        shift_k: f64,
    },
    /// R1.
    ReferenceRoom,
    /// heatctl, with household valves or not, under a node-fault variant or not.
    Heatctl {
        /// Household valves and their loops.
        household: bool,
        /// Node faults.
        variant: Option<Variant>,
    },
    /// heatctl_full: heatctl with a room node in every flat, no household valves.
    HeatctlFull,
    /// B1's curve; the balancing advice applied once after three weeks.
    CurveAdvice {
        /// Shift, K (B1's).
        shift_k: f64,
    },
    /// O1.
    Oracle,
    /// O2: each hour the lowest setpoint that keeps every flat at 18 °C, found on a clone.
    Perfect,
    /// O2pi: a PI on the true coldest flat.
    PerfectPi,
    /// A step from O2pi toward heatctl's demand loop ([`o2pi_trials`]).
    PiTrial(o2pi_trials::PiStep),
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Name in the reports.
    pub label: String,
    /// What ran.
    pub kind: RunKind,
    /// The KPIs.
    pub kpis: Kpis,
    /// Supporting figures.
    pub extra: Extra,
    /// Daily rows.
    pub days: Vec<Day>,
    /// Every apartment's season (`flats.csv`).
    pub flats: Vec<Flat>,
    /// Wall time of the run, s.
    pub wall_s: f64,
    /// Notes for the report (e.g. household valves enabled in memory).
    pub notes: Vec<String>,
    /// A fault variant's faulty nodes and whether the controller's alarm named them
    /// ([`suspects`]); None for runs without faulty nodes.
    pub naming: Option<suspects::Naming>,
    /// The run's per-flat trace, with [`Setup::trace`].
    pub trace: Option<trace::Trace>,
}

/// Put the plant's supply where the setpoint says (perfect supply control), or close the valve
/// when heating is off.
fn apply_setpoint(plant: &mut Plant, setpoint_c: Option<f64>) {
    match setpoint_c {
        Some(sp) => plant.set_ideal_supply_c(Some(sp)),
        None => {
            plant.set_ideal_supply_c(None);
            plant.set_valve1_cmd_pct(0.0);
        }
    }
}

/// Run one strategy over the season. `progress` is called now and then with the number of steps
/// done since its last call.
///
/// # Errors
/// The plant cannot be built (weather file).
pub fn run(
    setup: &Setup,
    label: &str,
    kind: RunKind,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<RunResult> {
    let started = Instant::now();
    let mut notes = Vec::new();
    let scenario = match kind {
        RunKind::Heatctl {
            household: true, ..
        } => {
            let (sc, copied) = setup.household_scenario();
            if copied {
                notes.push(format!(
                    "{label}: the scenario has no household valves; enabled in an in-memory copy \
                     with a room node in every home"
                ));
            }
            sc
        }
        RunKind::HeatctlFull => {
            notes.push(format!(
                "{label}: a room node in every home (in-memory copy of the scenario), no \
                 household valves"
            ));
            setup.full_sensing_scenario()
        }
        _ => setup.scenario.clone(),
    };
    let mut plant = Plant::new(&scenario).context("building the plant")?;
    let dt = setup.step_s;
    if !(dt.is_finite() && dt > 0.0) {
        bail!("the step must be positive");
    }
    let steps = setup.steps();

    // The controller: heatctl's configuration, with nodes from the plant for heatctl runs and
    // without demand correction for the curve-path strategies.
    let mut cfg = setup.config_for(kind).clone();
    let mut field = None;
    match kind {
        RunKind::Heatctl { household, variant } => {
            cfg.rooms.nodes = naming::room_nodes(&plant, household);
            cfg.household_valves.enabled = household;
            if household {
                // With a valve in every home the secondary pump is a controlled output too:
                // index-circuit pressure, reset from the valve positions (`[pump2]`).
                cfg.points.pump2_speed_cmd = Some("pump.pump2_speed_cmd".into());
                cfg.pump2.valve_reset = true;
            }
            field = Some(FieldLayer::new(&plant, household, variant, scenario.seed));
        }
        RunKind::HeatctlFull => {
            cfg.rooms.nodes = naming::room_nodes(&plant, false);
            cfg.household_valves.enabled = false;
            field = Some(FieldLayer::new(&plant, false, None, scenario.seed));
        }
        _ => {
            cfg.rooms.nodes.clear();
            cfg.demand.enabled = false;
            cfg.household_valves.enabled = false;
            cfg.valve_demand.enabled = false;
            // Perfect knowledge: the feed-forward sees the actual outdoor temperature, and the
            // PI on the coldest apartment, not a summer cut-off, decides when to heat (O2pi, and
            // the trial steps before heatctl's curve input).
            let actual_outdoor = match kind {
                RunKind::PerfectPi => true,
                RunKind::PiTrial(step) => !step.keeps_curve_input(),
                _ => false,
            };
            if actual_outdoor {
                cfg.outdoor.curve_input = heatctl::config::OutdoorInput::Actual;
                cfg.summer.enabled = false;
            }
        }
    }
    let mut ctl = Controller::new(&cfg);
    let mut naming = field.as_ref().and_then(|fl| {
        let faulty = fl.faulty_indices();
        (!faulty.is_empty()).then(|| {
            let ids: Vec<String> = cfg.rooms.nodes.iter().map(|n| n.id.clone()).collect();
            suspects::Naming::new(&faulty, &ids)
        })
    });
    let source = if kind == RunKind::Oracle {
        plant.set_ideal_heater_floor_c(Some(kpi::FLOOR_C));
        plant.force_valve1_pct(0.0);
        kpi::EnergySource::IdealHeaters
    } else {
        kpi::EnergySource::Exchanger
    };
    if let RunKind::Curve { shift_k } | RunKind::CurveAdvice { shift_k } = kind {
        ctl.set_operator_shift_k(shift_k);
    }
    let mut technician = matches!(kind, RunKind::CurveAdvice { .. })
        .then(|| advice::Technician::new(advice::history_settings(&scenario, kpi::FLOOR_C)));
    let reference_node = reference_node(&plant);
    if kind == RunKind::ReferenceRoom {
        notes.push(format!(
            "R1: reference room = room node {} (apartment {}), desired {:.1} °C",
            reference_node.map_or(-1, |k| k as i64),
            reference_node
                .and_then(|k| plant.room_node(k))
                .map_or(-1, |r| r.apartment as i64),
            setup.reference_room.desired_c
        ));
    }
    let mut image = ProcessImage::with_rooms(0);
    let mut acc = kpi::Accumulator::new(&plant, source);
    let mut integral_k = 0.0;
    let mut last_setpoint_c: Option<f64> = None;
    let limits = SupplyLimits {
        min_c: cfg.curve.min_supply_c,
        max_c: cfg.curve.max_supply_c,
    };
    let mut o2 = O2State::default();
    let mut trial = match kind {
        RunKind::PiTrial(step) => Some(o2pi_trials::PiTrialState::new(
            step,
            &plant,
            &setup.perfect,
            &setup.config.demand,
        )),
        _ => None,
    };
    let mut tracer = setup.trace.as_ref().map(|t| trace::Trace::new(t, &plant));
    let mut pending = 0u64;
    let mut control_s = 0.0;
    for _ in 0..steps {
        let control_start = Instant::now();
        let now = SEASON_START_UNIX_S + plant.time_s();
        let setpoint = match kind {
            RunKind::Oracle => None,
            RunKind::Perfect => {
                if plant.time_s() + 1e-6 >= o2.next_plan_s {
                    let h = o2_hour(&plant, &setup.hindsight, limits, &mut o2.search);
                    o2.record(&h, setup.hindsight.max_evaluations);
                    o2.setpoint_c = h.setpoint_c;
                    o2.next_plan_s += 3600.0;
                }
                apply_setpoint(&mut plant, o2.setpoint_c);
                o2.setpoint_c
            }
            RunKind::Heatctl { .. } | RunKind::HeatctlFull => {
                let fl = field.as_mut().context("field layer")?;
                let cmds = ctl.step(now, fl.image(&plant));
                if let Some(n) = naming.as_mut() {
                    n.observe(plant.time_s(), &cmds.alarms, ctl.room_verdicts());
                }
                plant.set_valve1_cmd_pct(cmds.valve1_pct);
                if let Some(p) = &cmds.pump2 {
                    plant.set_pump2_speed_cmd_pct(p.speed_cmd_pct);
                }
                for (k, u) in cmds.hh_valves_pct.iter().enumerate() {
                    if let (Some(u), Some(a)) = (u, fl.apartment_of(k)) {
                        plant.set_household_valve_pct(a, *u)?;
                    }
                }
                cmds.explanation.setpoint_c
            }
            _ => {
                let shift = match kind {
                    RunKind::ReferenceRoom => {
                        let rr = setup.reference_room;
                        let room = reference_node
                            .and_then(|k| plant.room_node(k))
                            .and_then(|r| r.temperature_c);
                        if let Some(t) = room {
                            let e = rr.desired_c - t;
                            let di = rr.influence_k_per_k * e * dt / (rr.adaptation_h * 3600.0);
                            integral_k = (integral_k + di).clamp(-rr.max_shift_k, rr.max_shift_k);
                            Some(
                                (rr.influence_k_per_k * e + integral_k)
                                    .clamp(-rr.max_shift_k, rr.max_shift_k),
                            )
                        } else {
                            None
                        }
                    }
                    RunKind::PerfectPi => {
                        let p = setup.perfect;
                        let coldest = plant
                            .apartment_air_c()
                            .iter()
                            .copied()
                            .fold(f64::INFINITY, f64::min);
                        Some(conditional_pi_k(
                            &mut integral_k,
                            p.kp_k_per_k,
                            p.ti_h,
                            p.target_c - coldest,
                            dt,
                            last_setpoint_c.is_some_and(|sp| limits.at_min(sp)),
                            last_setpoint_c.is_some_and(|sp| limits.at_max(sp)),
                        ))
                    }
                    RunKind::PiTrial(_) => trial.as_mut().and_then(|t| {
                        t.shift_k(&plant, plant.time_s(), dt, last_setpoint_c, limits)
                    }),
                    _ => None,
                };
                if let Some(s) = shift {
                    ctl.set_operator_shift_k(s);
                }
                process_image::set_substation(&plant, &mut image);
                let cmds = ctl.step(now, &image);
                let sp = cmds.explanation.setpoint_c;
                if let RunKind::PiTrial(step) = kind
                    && step.drives_valve()
                {
                    plant.set_ideal_supply_c(None);
                    plant.set_valve1_cmd_pct(cmds.valve1_pct);
                } else {
                    apply_setpoint(&mut plant, sp);
                }
                last_setpoint_c = sp;
                sp
            }
        };
        control_s += control_start.elapsed().as_secs_f64();
        if let Some(t) = technician.as_mut() {
            t.sample(&plant, now);
            if t.due(plant.time_s()) {
                let season_s = plant.time_s();
                let applied = t.apply(&mut plant, season_s);
                notes.push(applied.note());
            }
        }
        if let Some(t) = tracer.as_mut() {
            t.sample(&plant, setpoint);
        }
        plant.step(dt);
        acc.after_step(&plant, dt, setpoint);
        pending += 1;
        if pending >= 1440 {
            progress(pending);
            pending = 0;
        }
    }
    progress(pending);
    if let Some(fl) = &field
        && fl.faulty_nodes() > 0
    {
        notes.push(format!(
            "{label}: {} of {} room nodes faulty",
            fl.faulty_nodes(),
            cfg.rooms.nodes.len()
        ));
    }
    if kind == RunKind::Perfect {
        notes.push(o2.note(label));
    }
    let flats = acc.flats(&plant);
    let (kpis, mut extra, days) = acc.finish(&plant);
    if kind != RunKind::Oracle && steps > 0 {
        extra.time_ratio = control_s / steps as f64 / dt;
    }
    Ok(RunResult {
        label: label.to_string(),
        kind,
        kpis,
        extra,
        days,
        flats,
        wall_s: started.elapsed().as_secs_f64(),
        notes,
        naming,
        trace: tracer,
    })
}

/// Bound of O2pi's shift, K.
const PI_SHIFT_BOUND_K: f64 = 30.0;

/// One step of O2pi's PI on the coldest flat, the shift it asks for, K. Conditional
/// integration: the integral stands still while the setpoint sits at a clamp of the curve
/// (`at_low_clamp`, `at_high_clamp`) or the shift at its bound and the error `e_k` pushes
/// further into it, so it never winds up.
pub(crate) fn conditional_pi_k(
    integral_k: &mut f64,
    kp_k_per_k: f64,
    ti_h: f64,
    e_k: f64,
    dt_s: f64,
    at_low_clamp: bool,
    at_high_clamp: bool,
) -> f64 {
    let unsat = kp_k_per_k * e_k + *integral_k;
    let at_low = at_low_clamp || unsat <= -PI_SHIFT_BOUND_K;
    let at_high = at_high_clamp || unsat >= PI_SHIFT_BOUND_K;
    if !((at_low && e_k < 0.0) || (at_high && e_k > 0.0)) {
        *integral_k = (*integral_k + kp_k_per_k * e_k * dt_s / (ti_h * 3600.0))
            .clamp(-PI_SHIFT_BOUND_K, PI_SHIFT_BOUND_K);
    }
    (kp_k_per_k * e_k + *integral_k).clamp(-PI_SHIFT_BOUND_K, PI_SHIFT_BOUND_K)
}

/// The supply setpoints a curve-path strategy may ask for (the curve's clamps), °C.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SupplyLimits {
    /// Lowest setpoint while heating, °C (below it: heating off).
    pub min_c: f64,
    /// Highest setpoint, °C.
    pub max_c: f64,
}

impl SupplyLimits {
    /// Whether a setpoint sits at the lowest clamp.
    #[must_use]
    pub fn at_min(&self, setpoint_c: f64) -> bool {
        setpoint_c <= self.min_c + 1e-6
    }

    /// Whether a setpoint sits at the highest clamp.
    #[must_use]
    pub fn at_max(&self, setpoint_c: f64) -> bool {
        setpoint_c >= self.max_c - 1e-6
    }
}

/// What O2's search carries from one hour to the next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct O2Search {
    /// The last hour's setpoint (None: off), the next search's first candidate.
    pub last_c: Option<f64>,
    /// The last estimate of d(margin)/d(setpoint), K/K, for the first secant steps.
    pub slope_k_per_k: f64,
}

impl Default for O2Search {
    fn default() -> Self {
        Self {
            last_c: None,
            slope_k_per_k: 0.1,
        }
    }
}

/// One hour of O2.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct O2Hour {
    /// The setpoint for the hour (None: heating off), °C.
    pub setpoint_c: Option<f64>,
    /// Some setpoint keeps every apartment at the floor over the horizon; false: none does, and
    /// the highest is taken (recover as fast as the plant can).
    pub feasible: bool,
    /// Clone simulations spent.
    pub evaluations: u32,
    /// Simulated steps spent on clones.
    pub clone_steps: u64,
}

/// O2's bookkeeping over a season.
#[derive(Debug, Clone, Copy, Default)]
struct O2State {
    search: O2Search,
    setpoint_c: Option<f64>,
    next_plan_s: f64,
    hours: u64,
    capped_hours: u64,
    infeasible_hours: u64,
    off_hours: u64,
    evaluations: u64,
    clone_steps: u64,
}

impl O2State {
    fn record(&mut self, h: &O2Hour, max_evaluations: u32) {
        self.hours += 1;
        self.capped_hours += u64::from(h.evaluations >= max_evaluations);
        self.infeasible_hours += u64::from(!h.feasible);
        self.off_hours += u64::from(h.setpoint_c.is_none());
        self.evaluations += u64::from(h.evaluations);
        self.clone_steps += h.clone_steps;
    }

    fn note(&self, label: &str) -> String {
        format!(
            "{label}: {} hours planned, {} with heating off, {} infeasible (the highest setpoint \
             taken), {} out of evaluations (the lowest feasible setpoint seen taken); {:.2} clone \
             simulations per hour, {:.1} clone steps per hour",
            self.hours,
            self.off_hours,
            self.infeasible_hours,
            self.capped_hours,
            self.evaluations as f64 / self.hours.max(1) as f64,
            self.clone_steps as f64 / self.hours.max(1) as f64
        )
    }
}

/// The margin of a candidate setpoint: on a clone of `plant`, the setpoint held (perfect supply
/// control; None: heating off) for `horizon_steps` steps of `dt_s`, the lowest air temperature
/// of any apartment at the end of any step minus the floor, K. Stops early once an apartment is
/// `early_exit_k` below the floor. Returns the margin and the steps simulated.
fn o2_margin(
    plant: &Plant,
    setpoint_c: Option<f64>,
    floor_c: f64,
    early_exit_k: f64,
    horizon_steps: u64,
    dt_s: f64,
) -> (f64, u64) {
    let mut probe = plant.clone();
    apply_setpoint(&mut probe, setpoint_c);
    let mut margin = f64::INFINITY;
    for k in 0..horizon_steps {
        probe.step(dt_s);
        let coldest = probe
            .apartment_air_c()
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        margin = margin.min(coldest - floor_c);
        if margin < -early_exit_k {
            return (margin, k + 1);
        }
    }
    (margin, horizon_steps)
}

/// O2's setpoint for the hour starting now: the lowest supply setpoint in
/// [`SupplyLimits`] (or heating off, below the lowest) that, held over the horizon on a clone of
/// the plant driven by the true weather, keeps every apartment at or above the floor at the end
/// of every step ([`lowest_feasible`]); where none does, the highest.
#[must_use]
pub fn o2_hour(
    plant: &Plant,
    settings: &HindsightSubstation,
    limits: SupplyLimits,
    search: &mut O2Search,
) -> O2Hour {
    let dt_s = if settings.clone_step_s.is_finite() && settings.clone_step_s > 0.0 {
        settings.clone_step_s
    } else {
        DEFAULT_STEP_S
    };
    let horizon_steps = (settings.horizon_h * 3600.0 / dt_s).ceil().max(1.0) as u64;
    let mut clone_steps = 0u64;
    let mut margin = |sp: Option<f64>| {
        let (m, n) = o2_margin(
            plant,
            sp,
            settings.floor_c,
            settings.early_exit_k,
            horizon_steps,
            dt_s,
        );
        clone_steps += n;
        m
    };
    let h = lowest_feasible(
        &mut margin,
        search,
        limits,
        Tolerance {
            setpoint_k: settings.tolerance_k,
            margin_k: settings.margin_tolerance_k,
        },
        settings.max_evaluations,
    );
    search.last_c = h.setpoint_c;
    O2Hour { clone_steps, ..h }
}

/// When [`lowest_feasible`] stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// The bracket [infeasible, feasible] is this narrow, K of setpoint.
    pub setpoint_k: f64,
    /// A feasible setpoint's margin is below this, K of room temperature.
    pub margin_k: f64,
}

/// The lowest setpoint whose margin (`margin`, monotonic non-decreasing in the setpoint) is not
/// negative, to within the tolerance (a bracket that narrow, or a feasible setpoint whose margin
/// is below the margin tolerance): a bracket [infeasible, feasible] around the root, opened
/// from the last hour's answer by secant steps with the last slope (doubling the step while the
/// root stays on one side), then closed by regula falsi aimed just past the root (bisection
/// once the bracket is within two tolerances, when two evaluations in a row fell on the same
/// side, or when two evaluations did not halve it), at most `max_evaluations` margins. Feasible at
/// the lowest setpoint: heating off is tried and taken if feasible. Infeasible at the highest:
/// the highest. Out of evaluations: the lowest feasible setpoint seen, else the highest.
pub fn lowest_feasible(
    margin: &mut dyn FnMut(Option<f64>) -> f64,
    search: &mut O2Search,
    limits: SupplyLimits,
    tolerance: Tolerance,
    max_evaluations: u32,
) -> O2Hour {
    let tol = tolerance.setpoint_k.max(1e-3);
    let mut x = search
        .last_c
        .unwrap_or(limits.min_c)
        .clamp(limits.min_c, limits.max_c);
    let mut lo: Option<(f64, f64)> = None; // highest infeasible (setpoint, margin < 0)
    let mut hi: Option<(f64, f64)> = None; // lowest feasible (setpoint, margin >= 0)
    let mut evaluations = 0u32;
    // Which side the last two evaluations fell on (true: feasible), for the bisection guard.
    let mut sides: [Option<bool>; 2] = [None, None];
    // The bracket's width after each of the last two evaluations (infinite: none yet).
    let mut widths = [f64::INFINITY; 2];
    let done = |sp: Option<f64>, feasible: bool, evaluations: u32| O2Hour {
        setpoint_c: sp,
        feasible,
        evaluations,
        clone_steps: 0,
    };
    loop {
        let m = margin(Some(x));
        evaluations += 1;
        sides = [sides[1], Some(m >= 0.0)];
        if m >= 0.0 {
            if hi.is_none_or(|(s, _)| x < s) {
                hi = Some((x, m));
            }
        } else if lo.is_none_or(|(s, _)| x > s) {
            lo = Some((x, m));
        }
        if let Some((s, _)) = hi
            && s <= limits.min_c + 1e-9
        {
            // Feasible at the lowest setpoint: heating off, if that is feasible too.
            let off = margin(None);
            evaluations += 1;
            return if off >= 0.0 {
                done(None, true, evaluations)
            } else {
                done(Some(limits.min_c), true, evaluations)
            };
        }
        if let Some((s, _)) = lo
            && s >= limits.max_c - 1e-9
        {
            return done(Some(limits.max_c), false, evaluations);
        }
        if let (Some(l), Some(h)) = (lo, hi)
            && h.0 - l.0 <= tol
        {
            return done(Some(h.0), true, evaluations);
        }
        if let Some((s, m)) = hi
            && m < tolerance.margin_k
        {
            return done(Some(s), true, evaluations);
        }
        if evaluations >= max_evaluations {
            return match hi {
                Some((s, _)) => done(Some(s), true, evaluations),
                None => done(Some(limits.max_c), false, evaluations),
            };
        }
        x = match (lo, hi) {
            (Some(l), Some(h)) => {
                let w = h.0 - l.0;
                let slow = w > 0.5 * widths[0];
                widths = [widths[1], w];
                let slope = (h.1 - l.1) / w;
                if slope.is_finite() && slope > 0.0 {
                    search.slope_k_per_k = slope.clamp(1e-3, 10.0);
                }
                if w <= 2.0 * tol || sides[0] == sides[1] || slow {
                    // Narrow, or regula falsi stuck on one side or not halving the bracket in
                    // two evaluations (a bent margin): bisect.
                    0.5 * (l.0 + h.0)
                } else {
                    let root = l.0 - l.1 / search.slope_k_per_k;
                    let aim = if m >= 0.0 {
                        root - 0.4 * tol
                    } else {
                        root + 0.4 * tol
                    };
                    aim.clamp(l.0 + 0.05 * w, h.0 - 0.05 * w)
                }
            }
            (None, Some(h)) => {
                let step = (h.1 / search.slope_k_per_k + 0.4 * tol).max(tol);
                search.slope_k_per_k *= 0.5;
                (h.0 - step).max(limits.min_c)
            }
            (Some(l), None) => {
                let step = (-l.1 / search.slope_k_per_k + 0.4 * tol).max(tol);
                search.slope_k_per_k *= 0.5;
                (l.0 + step).min(limits.max_c)
            }
            (None, None) => x,
        };
    }
}

/// R1's reference room: the first sensed apartment in a middle unit of an intermediate floor (a
/// "typical" living room, as a technician would pick), else the first node.
fn reference_node(plant: &Plant) -> Option<usize> {
    let n = plant.room_node_count();
    (0..n)
        .find(|&k| {
            plant
                .room_node(k)
                .is_some_and(|r| r.position == heatctl_plant::PositionClass::Middle)
        })
        .or((n > 0).then_some(0))
}

/// One evaluation of the B1 search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchPoint {
    /// Shift tried, K.
    pub shift_k: f64,
    /// The coldest apartment's P10 temperature it gave, °C.
    pub coldest_p10_c: f64,
}

/// Result of the B1 search: B0 (its first point, shift 0) and B1.
#[derive(Debug, Clone)]
pub struct B1Search {
    /// The B0 run (shift 0).
    pub b0: RunResult,
    /// The B1 run (the shift closest to the goal).
    pub b1: RunResult,
    /// Every point tried, in order.
    pub points: Vec<SearchPoint>,
    /// Wall time of the whole search, B0's run included, s.
    pub wall_s: f64,
}

/// Search the constant shift that puts the coldest apartment's P10 temperature at 18 °C: B0's
/// run first (shift 0), then secant steps kept inside a bracket (regula falsi with the Illinois
/// fix), stopping within `tolerance_k` or after `max_runs` runs.
///
/// # Errors
/// A run failed.
pub fn search_b1(
    setup: &Setup,
    tolerance_k: f64,
    max_runs: usize,
    progress: &(dyn Fn(u64) + Sync),
    on_new_run: &(dyn Fn() + Sync),
) -> Result<B1Search> {
    let started = Instant::now();
    let b0 = run(setup, "B0", RunKind::Curve { shift_k: 0.0 }, progress)?;
    let (b1, points) = search_shift(
        setup,
        "B1",
        &|shift_k| RunKind::Curve { shift_k },
        &b0,
        0.0,
        tolerance_k,
        max_runs,
        progress,
        on_new_run,
    )?;
    Ok(B1Search {
        b0,
        b1,
        points,
        wall_s: started.elapsed().as_secs_f64(),
    })
}

/// The secant search behind B1: from a first run at `first_shift_k`, runs of `kind(shift)`
/// until the coldest apartment's P10 is within `tolerance_k` of 18 °C or `max_runs` runs (the
/// first included) are spent; the run nearest the goal is returned as `label` (the first run
/// itself when no later one is nearer), with the points tried.
///
/// # Errors
/// A run failed.
#[allow(clippy::too_many_arguments)]
fn search_shift(
    setup: &Setup,
    label: &str,
    kind: &(dyn Fn(f64) -> RunKind + Sync),
    first: &RunResult,
    first_shift_k: f64,
    tolerance_k: f64,
    max_runs: usize,
    progress: &(dyn Fn(u64) + Sync),
    on_new_run: &(dyn Fn() + Sync),
) -> Result<(RunResult, Vec<SearchPoint>)> {
    let goal = kpi::FLOOR_C;
    let mut points = vec![SearchPoint {
        shift_k: first_shift_k,
        coldest_p10_c: first.extra.coldest_p10_c,
    }];
    let mut best: Option<RunResult> = None;
    let mut best_err = (first.extra.coldest_p10_c - goal).abs();
    // Bracket: (shift, error) with error = p10 - goal.
    let mut lo: Option<(f64, f64)> = None; // error < 0
    let mut hi: Option<(f64, f64)> = None; // error > 0
    let e0 = first.extra.coldest_p10_c - goal;
    if e0 < 0.0 {
        lo = Some((first_shift_k, e0));
    } else {
        hi = Some((first_shift_k, e0));
    }
    // First guess: the room follows the supply by about 0.3 K per K at the coldest flat.
    let mut next = first_shift_k - e0 / 0.3;
    let mut last_side = 0i8;
    for _ in 1..max_runs {
        if best_err <= tolerance_k {
            break;
        }
        on_new_run();
        let r = run(setup, label, kind(next), progress)?;
        let e = r.extra.coldest_p10_c - goal;
        points.push(SearchPoint {
            shift_k: next,
            coldest_p10_c: r.extra.coldest_p10_c,
        });
        // Only a run nearer the goal than every earlier one (the first included) is kept.
        if e.abs() < best_err {
            best_err = e.abs();
            best = Some(r);
        }
        if e < 0.0 {
            lo = Some((next, e));
            if last_side == -1
                && let Some(h) = hi.as_mut()
            {
                h.1 *= 0.5;
            }
            last_side = -1;
        } else {
            hi = Some((next, e));
            if last_side == 1
                && let Some(l) = lo.as_mut()
            {
                l.1 *= 0.5;
            }
            last_side = 1;
        }
        next = match (lo, hi) {
            (Some((sl, el)), Some((sh, eh))) => sl - el * (sh - sl) / (eh - el),
            (Some((s, e)), None) | (None, Some((s, e))) => s - e / 0.3,
            (None, None) => next,
        };
    }
    let mut found = best.unwrap_or_else(|| first.clone());
    found.label = label.into();
    Ok((found, points))
}

/// The shift of a curve run (B0/B1), K.
#[must_use]
pub fn curve_shift_k(r: &RunResult) -> Option<f64> {
    match r.kind {
        RunKind::Curve { shift_k } | RunKind::CurveAdvice { shift_k } => Some(shift_k),
        _ => None,
    }
}

/// Label of the B1+advice run.
pub const B1_ADVICE: &str = "B1+advice";

/// Run `B1+advice`: B1's curve (`b1`'s shift), the balancing advice learned in the first three
/// weeks applied once. The run's notes say what was applied.
///
/// # Errors
/// `b1` is not a curve run, or the run failed.
pub fn run_b1_advice(
    setup: &Setup,
    b1: &RunResult,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<RunResult> {
    let shift_k = curve_shift_k(b1).context("B1 is not a curve run")?;
    run(setup, B1_ADVICE, RunKind::CurveAdvice { shift_k }, progress)
}

/// Label of the B1+advice run with its curve lowered again.
pub const B1_ADVICE_TUNED: &str = "B1+advice+curve";

/// Run `B1+advice+curve`: the advice applied as in `B1+advice` (`advised`, run at B1's shift),
/// then the fixed curve searched again as B1's was, so that the coldest apartment's P10 is
/// 18 °C with the network balanced: the heat balancing saves at B1's comfort. Like B1, the
/// shift is chosen with hindsight of the season.
///
/// # Errors
/// `advised` is not a curve run, or a run failed.
pub fn run_b1_advice_tuned(
    setup: &Setup,
    advised: &RunResult,
    tolerance_k: f64,
    max_runs: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(RunResult, Vec<SearchPoint>)> {
    let shift_k = curve_shift_k(advised).context("B1+advice is not a curve run")?;
    search_shift(
        setup,
        B1_ADVICE_TUNED,
        &|shift_k| RunKind::CurveAdvice { shift_k },
        advised,
        shift_k,
        tolerance_k,
        max_runs,
        progress,
        &|| {},
    )
}

/// B1+advice (and B1+advice+curve) against B1: the season's heat and the worst flat, as a
/// Markdown table with each one's gain.
#[must_use]
pub fn advice_gain_markdown(b1: &RunResult, advised: &[&RunResult]) -> String {
    let row = |r: &RunResult| {
        format!(
            "| {} | {:.2} | {:.1} | {:.2} | {:.0} | {} |",
            r.label,
            r.kpis.energy_kwh_m2,
            r.kpis.tdis_worst_kh,
            r.extra.coldest_p10_c,
            r.kpis.overheat_kh,
            curve_shift_k(r).map_or_else(String::new, |k| format!("{k:+.2}")),
        )
    };
    let mut md = String::from(
        "| strategy | heat kWh/m² | worst flat K·h < 18 °C | coldest flat P10 °C | overheating K·h | curve shift K |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    md.push_str(&row(b1));
    md.push('\n');
    for a in advised {
        md.push_str(&row(a));
        md.push('\n');
    }
    for a in advised {
        md.push_str(&format!(
            "| {} against B1 | {:+.1} % | {:+.1} | {:+.2} | {:+.0} | |\n",
            a.label,
            report::energy_diff_pct(a, b1),
            a.kpis.tdis_worst_kh - b1.kpis.tdis_worst_kh,
            a.extra.coldest_p10_c - b1.extra.coldest_p10_c,
            a.kpis.overheat_kh - b1.kpis.overheat_kh,
        ));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: SupplyLimits = SupplyLimits {
        min_c: 25.0,
        max_c: 85.0,
    };

    /// Runs the search on `margin` (None: heating off) and returns the hour and every setpoint
    /// tried.
    fn search(
        margin: impl Fn(Option<f64>) -> f64,
        state: &mut O2Search,
    ) -> (O2Hour, Vec<Option<f64>>) {
        let mut tried = Vec::new();
        let mut m = |sp: Option<f64>| {
            tried.push(sp);
            margin(sp)
        };
        let tol = Tolerance {
            setpoint_k: 0.1,
            margin_k: 0.0,
        };
        let h = lowest_feasible(&mut m, state, LIMITS, tol, 20);
        (h, tried)
    }

    #[test]
    fn the_search_finds_the_lowest_feasible_setpoint_within_the_tolerance() {
        // Linear and bent margins, roots across the range, first guesses near and far.
        let shapes: [fn(f64, f64) -> f64; 3] = [
            |s, r| 0.15 * (s - r),
            |s, r| (s - r).signum() * (s - r).abs().sqrt() * 0.3,
            |s, r| {
                if s < r {
                    -0.05 * (r - s)
                } else {
                    0.5 * (s - r)
                }
            },
        ];
        for shape in shapes {
            for root in [27.3, 41.05, 55.5, 80.2] {
                for last in [None, Some(30.0), Some(root + 0.7), Some(70.0)] {
                    let mut st = O2Search {
                        last_c: last,
                        slope_k_per_k: 0.1,
                    };
                    let margin = |sp: Option<f64>| shape(sp.unwrap_or(0.0), root);
                    let (h, tried) = search(margin, &mut st);
                    let sp = h.setpoint_c.expect("heating on");
                    assert!(h.feasible);
                    assert!(margin(Some(sp)) >= 0.0, "root {root}: {sp} infeasible");
                    assert!(
                        sp - root <= 0.1 + 1e-9,
                        "root {root}: {sp} not the lowest: {tried:?}"
                    );
                    assert_eq!(h.evaluations as usize, tried.len());
                    assert!(h.evaluations <= 20);
                    assert_eq!(st.last_c, last, "lowest_feasible leaves last_c to o2_hour");
                    // From last hour's answer 0.7 K off, a straight margin takes a handful.
                    if last == Some(root + 0.7) && (shape(root + 1.0, root) - 0.15).abs() < 1e-12 {
                        assert!(h.evaluations <= 4, "{tried:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_search_turns_heating_off_takes_the_lowest_or_the_highest_at_the_ends() {
        let mut st = O2Search::default();
        // Warm enough even with heating off.
        let (h, tried) = search(|sp| sp.map_or(0.2, |s| 0.5 + 0.1 * (s - 25.0)), &mut st);
        assert_eq!(h.setpoint_c, None);
        assert!(h.feasible);
        assert_eq!(tried.last(), Some(&None));
        // The lowest setpoint is enough, off is not.
        let (h, _) = search(|sp| sp.map_or(-0.3, |s| 0.1 * (s - 24.0)), &mut st);
        assert_eq!(h.setpoint_c, Some(25.0));
        assert!(h.feasible);
        // Nothing is enough: the highest, marked infeasible.
        let mut st = O2Search {
            last_c: Some(60.0),
            slope_k_per_k: 0.1,
        };
        let (h, tried) = search(|sp| sp.map_or(-9.0, |s| 0.1 * (s - 95.0)), &mut st);
        assert_eq!(h.setpoint_c, Some(85.0));
        assert!(!h.feasible);
        assert!(tried.contains(&Some(85.0)));
    }

    #[test]
    fn the_search_stops_at_a_feasible_setpoint_within_the_margin_tolerance() {
        let tol = Tolerance {
            setpoint_k: 0.1,
            margin_k: 0.01,
        };
        let mut st = O2Search {
            last_c: Some(50.0),
            slope_k_per_k: 0.1,
        };
        // 50 °C leaves the coldest flat 0.005 K above the floor: taken at once.
        let mut m = |sp: Option<f64>| 0.1 * (sp.unwrap_or(0.0) - 49.95);
        let h = lowest_feasible(&mut m, &mut st, LIMITS, tol, 12);
        assert_eq!((h.setpoint_c, h.evaluations), (Some(50.0), 1));
        // 0.02 K above: searched further down.
        let mut m = |sp: Option<f64>| 0.1 * (sp.unwrap_or(0.0) - 49.8);
        let h = lowest_feasible(&mut m, &mut st, LIMITS, tol, 12);
        let sp = h.setpoint_c.expect("on");
        assert!(h.evaluations > 1 && (49.8..50.0).contains(&sp), "{h:?}");
    }

    #[test]
    fn o2_keeps_a_clone_of_the_small_plant_at_the_floor_for_an_hour() {
        // The search on the real machinery: one hour of the small scenario from a cold start.
        let mut sc = Scenario::shipped("small").expect("small scenario");
        sc.start.room_c = 18.4;
        sc.start.mass_c = Some(18.4);
        let plant = Plant::new(&sc).expect("plant");
        let settings = HindsightSubstation::default();
        let mut st = O2Search::default();
        let h = o2_hour(&plant, &settings, LIMITS, &mut st);
        assert!(h.feasible, "{h:?}");
        let sp = h.setpoint_c.expect("a cold start needs heat");
        assert_eq!(st.last_c, Some(sp));
        let dt = settings.clone_step_s;
        let steps = (settings.horizon_h * 3600.0 / dt) as u64;
        let (m, _) = o2_margin(&plant, Some(sp), 18.0, 9.0, steps, dt);
        assert!(m >= 0.0, "{sp}: margin {m}");
        let (m_low, _) = o2_margin(&plant, Some(sp - 0.2), 18.0, 9.0, steps, dt);
        assert!(m_low < 0.0, "{sp} - 0.2 K was feasible too: margin {m_low}");
        assert!(h.clone_steps >= u64::from(h.evaluations));
    }
}
