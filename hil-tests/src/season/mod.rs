//! The season scorecard: a whole heating season (15 Oct - 15 Apr) of a scenario's
//! substation simulated in-process under each strategy, on the same weather and the same seeded
//! buildings, scored with the KPIs of hil-tests/MODEL.md.
//!
//! * B0, B1, R1 and O2 run heatctl's own curve path (outdoor damping, design curve, clamps,
//!   summer cut-off, limiters, rate limit: the same `Controller::step`) with the demand
//!   correction off and a shift of their own (B0 none, B1 the best constant in hindsight, R1 a
//!   Danfoss-style reference-room influence, O2 a PI on the true coldest apartment); the
//!   plant's perfect supply control puts the valve where the exchanger meets that setpoint.
//! * heatctl and heatctl_hh run the full control core on a process image built from the plant's
//!   sensors (noise, bias, 10-minute node refresh, lost reports, honest ages); its valve command
//!   drives the plant's actuator.
//! * O1 replaces the radiators by the plant's ideal heaters holding every apartment at 18 °C.
//! * B1+advice runs B1's curve; after three weeks heatctl's balancing estimator reads the hourly
//!   history of the sensed flats (from the plant's room truth) and a "technician" sets the
//!   plant's static balancing valves as advised, once ([`advice`], [`run_b1_advice`]).

pub mod advice;
pub mod field;
pub mod kpi;
pub mod plots;
pub mod report;

use std::time::Instant;

use anyhow::{Context, Result, bail};
use heatctl::config::Config;
use heatctl::control::{Controller, ProcessImage};
use heatctl_plant::{Plant, Scenario, naming, process_image};

pub use field::{FieldLayer, Variant};
pub use kpi::{Day, Extra, Kpis};

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
    /// heatctl with household valves.
    HeatctlHh,
    /// Oracle per apartment: ideal heaters hold every apartment at 18 °C.
    O1,
    /// Perfect substation-only control: supply chosen so the true coldest apartment sits at
    /// 18 °C.
    O2,
}

impl Strategy {
    /// Every strategy, in report order.
    pub const ALL: [Strategy; 7] = [
        Strategy::B0,
        Strategy::B1,
        Strategy::R1,
        Strategy::Heatctl,
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
            Strategy::HeatctlHh => "heatctl_hh",
            Strategy::O1 => "O1",
            Strategy::O2 => "O2",
        }
    }

    /// The strategy of a name (case-insensitive).
    #[must_use]
    pub fn parse(s: &str) -> Option<Strategy> {
        Strategy::ALL
            .into_iter()
            .find(|x| x.name().eq_ignore_ascii_case(s.trim()))
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

/// Settings of the O2 perfect substation-only strategy: a PI on the true coldest apartment.
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

/// Everything the runs share.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The scenario (weather resolved).
    pub scenario: Scenario,
    /// heatctl's configuration (config/season.toml; its room nodes are generated per run).
    pub config: Config,
    /// Control step, s.
    pub step_s: f64,
    /// R1 settings.
    pub reference_room: ReferenceRoom,
    /// O2 settings.
    pub perfect: PerfectSubstation,
}

impl Setup {
    /// A setup with the default step and strategy settings.
    #[must_use]
    pub fn new(scenario: Scenario, config: Config) -> Self {
        Self {
            scenario,
            config,
            step_s: DEFAULT_STEP_S,
            reference_room: ReferenceRoom::default(),
            perfect: PerfectSubstation::default(),
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
    /// B1's curve; the balancing advice applied once after three weeks.
    CurveAdvice {
        /// Shift, K (B1's).
        shift_k: f64,
    },
    /// O1.
    Oracle,
    /// O2.
    Perfect,
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
    /// Wall time of the run, s.
    pub wall_s: f64,
    /// Notes for the report (e.g. household valves enabled in memory).
    pub notes: Vec<String>,
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
    let mut cfg = setup.config.clone();
    let mut field = None;
    match kind {
        RunKind::Heatctl { household, variant } => {
            cfg.rooms.nodes = naming::room_nodes(&plant, household);
            cfg.household_valves.enabled = household;
            field = Some(FieldLayer::new(&plant, household, variant, scenario.seed));
        }
        _ => {
            cfg.rooms.nodes.clear();
            cfg.demand.enabled = false;
            cfg.household_valves.enabled = false;
            cfg.valve_demand.enabled = false;
            if kind == RunKind::Perfect {
                // Perfect knowledge: the feed-forward sees the actual outdoor temperature, and
                // the PI on the coldest apartment, not a summer cut-off, decides when to heat.
                cfg.outdoor.curve_input = heatctl::config::OutdoorInput::Actual;
                cfg.summer.enabled = false;
            }
        }
    }
    let mut ctl = Controller::new(&cfg);
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
    let mut pending = 0u64;
    let mut control_s = 0.0;
    for _ in 0..steps {
        let control_start = Instant::now();
        let now = SEASON_START_UNIX_S + plant.time_s();
        let setpoint = match kind {
            RunKind::Oracle => None,
            RunKind::Heatctl { .. } => {
                let fl = field.as_mut().context("field layer")?;
                let cmds = ctl.step(now, fl.image(&plant));
                plant.set_valve1_cmd_pct(cmds.valve1_pct);
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
                    RunKind::Perfect => {
                        let p = setup.perfect;
                        let coldest = plant
                            .apartment_air_c()
                            .iter()
                            .copied()
                            .fold(f64::INFINITY, f64::min);
                        let e = p.target_c - coldest;
                        integral_k = (integral_k + p.kp_k_per_k * e * dt / (p.ti_h * 3600.0))
                            .clamp(-30.0, 30.0);
                        Some((p.kp_k_per_k * e + integral_k).clamp(-30.0, 30.0))
                    }
                    _ => None,
                };
                if let Some(s) = shift {
                    ctl.set_operator_shift_k(s);
                }
                process_image::set_substation(&plant, &mut image);
                let cmds = ctl.step(now, &image);
                let sp = cmds.explanation.setpoint_c;
                apply_setpoint(&mut plant, sp);
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
        wall_s: started.elapsed().as_secs_f64(),
        notes,
    })
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
