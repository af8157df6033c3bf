//! The estimator: from the hourly history, how far each riser (or building) is under- or
//! over-supplied relative to its need and to the rest of the network, and the static balancing
//! valve change that would correct it. The method and its assumptions: docs/balancing.md.
//!
//! Per flat and usable hour: the heat it receives now relative to design from its heat loss
//! (room - outdoor), the heat it needs at the target room temperature likewise, and from the
//! radiator law the flow each takes at the hour's t2 supply; their ratio is the flow the flat
//! needs relative to the flow it gets. A household valve that throttles shows a branch able to
//! give more than the flat takes: the ratio is multiplied by the valve's installed flow fraction.
//! Per flat the median over its hours (in logarithms); the network's reference is the median
//! flat; a riser's estimate is the mean of its flats relative to that reference, with a
//! standard error from the spread between and within flats.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::emitter::{Emitter, kv_ratio, valve_flow_fraction};
use super::record::{HourRecord, RoomHour};
use crate::config::{DesignCurve, History};

/// Hours a flat's ratios are treated as correlated over (one independent value a day).
const HOURS_PER_INDEPENDENT: f64 = 24.0;
/// Smallest supply-minus-room difference of a usable hour, K.
const MIN_SUPPLY_ABOVE_ROOM_K: f64 = 5.0;
/// Smallest room-minus-outdoor difference of a usable hour beyond the gains', K.
const MIN_ROOM_ABOVE_OUTDOOR_K: f64 = 3.0;
/// Half-width of the difference quotient of the radiator law's slope, K.
const SLOPE_STEP_K: f64 = 0.25;
/// Needed-to-present flow ratio used for an hour no flow could satisfy (capped).
const UNREACHABLE_RATIO: f64 = 4.0;
/// Largest kv ratio advised as a step; beyond it the advice is "open fully".
pub const MAX_KV_RATIO: f64 = 3.0;

/// Two-sided Student-t critical values at 95 % and 99 % for 1..=30 degrees of freedom (then the
/// normal's): a riser of a few flats needs a larger margin than the normal 2 and 3.
const T_975: [f64; 30] = [
    12.71, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];
const T_995: [f64; 30] = [
    63.66, 9.925, 5.841, 4.604, 4.032, 3.707, 3.499, 3.355, 3.250, 3.169, 3.106, 3.055, 3.012,
    2.977, 2.947, 2.921, 2.898, 2.878, 2.861, 2.845, 2.831, 2.819, 2.807, 2.797, 2.787, 2.779,
    2.771, 2.763, 2.756, 2.750,
];

fn t_critical(table: &[f64; 30], normal: f64, dof: usize) -> f64 {
    match dof {
        0 => f64::INFINITY,
        d if d <= 30 => table[d - 1],
        _ => normal,
    }
}

/// The verdict on one group (riser or building).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Gets clearly less than its share: open its balancing valve.
    UnderSupplied,
    /// Gets clearly more than its share: throttle its balancing valve.
    OverSupplied,
    /// Within the deadband: no change.
    Balanced,
    /// Outside the deadband but not significantly (too few flats or too much spread): no change
    /// advised yet.
    Uncertain,
}

impl Verdict {
    /// Plain words for the report.
    #[must_use]
    pub fn words(self) -> &'static str {
        match self {
            Verdict::UnderSupplied => "under-supplied",
            Verdict::OverSupplied => "over-supplied",
            Verdict::Balanced => "balanced",
            Verdict::Uncertain => "uncertain",
        }
    }
}

/// How sure the estimate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// One flat, or the estimate within the 95 % interval of no change.
    Low,
    /// Clear of no change at 95 % (Student t on the riser's flats).
    Medium,
    /// Clear at 99 %, and at least three flats.
    High,
}

/// The recommended change of a group's static balancing valves.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KvAdvice {
    /// Leave the valves as they are.
    NoChange,
    /// Set kv to `ratio` x its present value.
    Change {
        /// New kv / present kv.
        ratio: f64,
    },
    /// More flow than the balancing valve alone can give: open it fully; the rest must come
    /// from throttling the over-supplied groups or from more differential pressure.
    OpenFully,
}

impl KvAdvice {
    /// The relative kv change, % (None: open fully).
    #[must_use]
    pub fn change_pct(self) -> Option<f64> {
        match self {
            KvAdvice::NoChange => Some(0.0),
            KvAdvice::Change { ratio } => Some((ratio - 1.0) * 100.0),
            KvAdvice::OpenFully => None,
        }
    }

    /// Words for the report ("+35 %", "open fully", "no change").
    #[must_use]
    pub fn words(self) -> String {
        match self {
            KvAdvice::NoChange => "no change".into(),
            KvAdvice::Change { ratio } => format!("{:+.0} %", (ratio - 1.0) * 100.0),
            KvAdvice::OpenFully => "open fully".into(),
        }
    }
}

/// One flat's estimate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlatEstimate {
    /// Room node id.
    pub id: String,
    /// Building.
    pub building: String,
    /// Riser (None: grouped per building).
    pub riser: Option<String>,
    /// Position ("top", ...).
    pub position: String,
    /// Usable hours.
    pub hours: usize,
    /// Mean room temperature over them, °C.
    pub mean_room_c: f64,
    /// Mean deficit: target minus room temperature, K (negative: warmer than the target).
    pub mean_deficit_k: f64,
    /// Mean household-valve position, % (None: no valve).
    pub mean_valve_pct: Option<f64>,
    /// Flow the flat's branch should have relative to what it has to be at the hour's median
    /// room temperature of the network (median over hours), before the network reference is
    /// taken out.
    pub flow_need_ratio: f64,
    /// The same to be at the target (median over the hours where the radiator law explains
    /// the flat's temperature; None when it never does: a radiator larger than its design).
    pub flow_need_ratio_target: Option<f64>,
    /// Standard error of ln(flow_need_ratio).
    pub ln_se: f64,
}

/// One riser's (or building's) estimate and advice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupAdvice {
    /// Building.
    pub building: String,
    /// Riser (None: the building's flats in no riser).
    pub riser: Option<String>,
    /// Flats with enough hours.
    pub flats: usize,
    /// Usable flat-hours.
    pub flat_hours: usize,
    /// Mean deficit of its flats, K.
    pub mean_deficit_k: f64,
    /// Mean household-valve position of its flats that have one, %.
    pub mean_valve_pct: Option<f64>,
    /// Flow the group should have relative to what it has, relative to the network's median flat
    /// (1: its share; 1.3: 30 % more flow).
    pub flow_ratio: f64,
    /// 95 % interval of `flow_ratio` (Student t on its flats).
    pub flow_ratio_low: f64,
    /// Approximate 95 % interval of `flow_ratio`.
    pub flow_ratio_high: f64,
    /// Spread of its flats' ln ratios (standard deviation).
    pub spread_ln: f64,
    /// Length of the supply main to it, m (`history.risers[].mains_m`), where given.
    pub mains_m: Option<f64>,
    /// Its own estimate from its flats alone, before pooling with the trend along the mains
    /// (equal to `flow_ratio` when it was not pooled).
    pub own_flow_ratio: f64,
    /// Whether `flow_ratio` pools its own estimate with the trend along the mains.
    pub pooled: bool,
    /// The verdict.
    pub verdict: Verdict,
    /// How sure.
    pub confidence: Confidence,
    /// The balancing valve change.
    pub kv: KvAdvice,
}

/// The whole advice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Advice {
    /// Why no advice is given, when it is not.
    pub refused: Option<String>,
    /// Hours in the history.
    pub hours_total: usize,
    /// Hours with the station's outdoor and supply temperature and heating on (usable).
    pub hours_usable: usize,
    /// Days with usable hours.
    pub days_usable: usize,
    /// First and last hour read, unix s.
    pub span_unix_s: Option<(i64, i64)>,
    /// Flats with enough usable hours.
    pub flats_used: usize,
    /// Flats seen but with too few usable hours.
    pub flats_too_few_hours: usize,
    /// The network's median flat: flow needed / flow had (above 1: the whole network is short,
    /// which is the heating curve's matter, not balancing).
    pub network_flow_ratio: Option<f64>,
    /// The median flat's `flow_need_ratio`: the flats' and groups' ratios are relative to it.
    pub reference_flow_ratio: Option<f64>,
    /// Mean deficit over all flats used, K.
    pub network_mean_deficit_k: Option<f64>,
    /// Per group, by building then riser.
    pub groups: Vec<GroupAdvice>,
    /// Per flat.
    pub flats: Vec<FlatEstimate>,
    /// Garbled history lines skipped (filled by the reader's caller).
    pub garbled_lines: usize,
    /// The deadband the verdicts used, %.
    pub deadband_pct: f64,
}

impl Advice {
    /// Groups advised to change.
    pub fn changes(&self) -> impl Iterator<Item = &GroupAdvice> {
        self.groups
            .iter()
            .filter(|g| !matches!(g.kv, KvAdvice::NoChange))
    }

    /// A few plain sentences: what to do.
    #[must_use]
    pub fn summary(&self) -> String {
        if let Some(why) = &self.refused {
            return format!("No balancing advice yet: {why}.");
        }
        let mut s = String::new();
        let under: Vec<String> = self
            .groups
            .iter()
            .filter(|g| g.verdict == Verdict::UnderSupplied)
            .map(GroupAdvice::label)
            .collect();
        let over: Vec<String> = self
            .groups
            .iter()
            .filter(|g| g.verdict == Verdict::OverSupplied)
            .map(GroupAdvice::label)
            .collect();
        if under.is_empty() && over.is_empty() {
            s.push_str(&format!(
                "The network looks balanced: no riser or building is clearly outside ±{:.0} % \
                 of its flow share; no balancing valve change advised.",
                self.deadband_pct
            ));
        } else {
            if !under.is_empty() {
                s.push_str(&format!(
                    "Under-supplied (open their balancing valves): {}. ",
                    under.join(", ")
                ));
            }
            if !over.is_empty() {
                s.push_str(&format!(
                    "Over-supplied (throttle their balancing valves): {}. ",
                    over.join(", ")
                ));
            }
            s.push_str("Change one step, then let two weeks of history show the effect.");
        }
        let uncertain = self
            .groups
            .iter()
            .filter(|g| g.verdict == Verdict::Uncertain)
            .count();
        if uncertain > 0 {
            s.push_str(&format!(
                " {uncertain} group(s) uncertain (few flats or wide spread): no change advised yet."
            ));
        }
        if let (Some(r), Some(d)) = (self.network_flow_ratio, self.network_mean_deficit_k)
            && d.abs() >= 0.5
        {
            s.push_str(&format!(
                " The network as a whole runs {:.1} K {} the target (median flat needs {:.0} % \
                 of its flow): that is the heating curve's matter, not balancing.",
                d.abs(),
                if d > 0.0 { "below" } else { "above" },
                r * 100.0
            ));
        }
        s
    }
}

impl GroupAdvice {
    /// "b01 / riser b01-east" or "b01".
    #[must_use]
    pub fn label(&self) -> String {
        match &self.riser {
            Some(r) => format!("{} / {r}", self.building),
            None => self.building.clone(),
        }
    }
}

/// The estimator's settings, from `[history]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The emitters' design point.
    pub emitter: Emitter,
    /// Target room temperature, °C.
    pub target_c: f64,
    /// Free heat as the indoor-outdoor difference it holds, K.
    pub gains_k: f64,
    /// Fewest usable days.
    pub min_days: f64,
    /// Fewest usable hours per flat.
    pub min_flat_hours: f64,
    /// Warmest usable hour, °C outdoors.
    pub max_outdoor_c: f64,
    /// Household valves' rangeability.
    pub valve_rangeability: f64,
    /// Household valves' authority.
    pub valve_authority: f64,
    /// Balancing valve's share of the branch pressure drop.
    pub balancing_valve_share: f64,
    /// Deadband, %.
    pub deadband_pct: f64,
    /// Length of the supply main to each riser, m, by riser name.
    pub mains_m: BTreeMap<String, f64>,
}

impl Settings {
    /// From the configuration's `[history]`, the radiators' design point from its `design`
    /// (`[curve.design]` where it has none: see [`History::design_or`]).
    #[must_use]
    pub fn of(h: &History, curve_design: Option<&DesignCurve>) -> Self {
        let d = h.design_or(curve_design);
        Self {
            emitter: Emitter {
                design_outdoor_c: d.design_outdoor_c,
                design_room_c: d.room_c,
                design_supply_c: d.design_supply_c,
                design_return_c: d.design_return_c,
                exponent: d.radiator_exponent,
            },
            target_c: h.target_c,
            gains_k: h.gains_k,
            min_days: h.min_days,
            min_flat_hours: h.min_flat_hours,
            max_outdoor_c: h.max_outdoor_c,
            valve_rangeability: h.valve_rangeability,
            valve_authority: h.valve_authority,
            balancing_valve_share: h.balancing_valve_share,
            deadband_pct: h.deadband_pct,
            mains_m: h
                .risers
                .iter()
                .filter_map(|r| Some((r.name.clone(), r.mains_m?)))
                .collect(),
        }
    }
}

#[derive(Default)]
struct FlatAcc {
    building: String,
    riser: Option<String>,
    position: String,
    /// Per usable hour: the hour's estimate of ln(flow need ratio) and its weight.
    ln_ratios: Vec<(f64, f64)>,
    ln_target_ratios: Vec<f64>,
    room_sum: f64,
    valve_sum: f64,
    valve_n: usize,
}

fn median(xs: &mut [f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    Some(if n % 2 == 1 {
        xs[n / 2]
    } else {
        0.5 * (xs[n / 2 - 1] + xs[n / 2])
    })
}

fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    let var = if xs.len() > 1 {
        xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (m, var.sqrt())
}

/// Estimate and advise. `riser_of` overrides the riser recorded in the history (from the
/// configuration in force); flats it does not name keep the recorded one.
#[must_use]
pub fn estimate(
    hours: &[HourRecord],
    s: &Settings,
    riser_of: &dyn Fn(&str) -> Option<String>,
) -> Advice {
    let mut flats: BTreeMap<String, FlatAcc> = BTreeMap::new();
    let mut days = BTreeSet::new();
    let mut usable = 0;
    for h in hours {
        let (Some(t_out), Some(t_sup)) = (h.outdoor_c, h.t2_supply_c) else {
            continue;
        };
        if t_out > s.max_outdoor_c {
            continue;
        }
        let mut any = false;
        let usable_room = |r: &&RoomHour| {
            r.samples > 0
                && t_sup - r.room_c >= MIN_SUPPLY_ABOVE_ROOM_K
                && r.room_c - t_out - s.gains_k >= MIN_ROOM_ABOVE_OUTDOOR_K
        };
        // The flats are compared at the hour's median room temperature: balancing is relative,
        // and near it the radiator law is used where it is least extrapolated.
        let mut temps: Vec<f64> = h
            .rooms
            .iter()
            .filter(usable_room)
            .map(|r| r.room_c)
            .collect();
        let Some(reference_c) = median(&mut temps) else {
            continue;
        };
        let e = &s.emitter;
        let need_at =
            |room_c: f64| e.flow_ratio(e.load_ratio(room_c, t_out, s.gains_k), t_sup, room_c);
        let need_target = need_at(s.target_c);
        // How steeply the flow a flat takes rises with its room temperature at this hour,
        // d ln(flow) / d room (per K), from the radiator law around the median flat: a flat
        // DELTA K warmer than the median takes about exp(slope x DELTA) times its flow. In mild
        // hours the radiator gives its heat with little flow and the slope is steep: a small
        // temperature difference then says little about flow, and such hours are weighted
        // down by 1 / slope² (the room temperature's noise is the same in every hour).
        // The slope is taken where the law puts a flat at its design flow this hour, not at the
        // median's measured temperature: the flats' radiators are larger than the design point
        // says by an unknown factor, so the law often cannot explain the measured level, while
        // the differences between flats are what balancing reads.
        let Some(linear_c) = e.room_at_flow(1.0, t_sup, t_out, s.gains_k) else {
            continue;
        };
        let slope = match (
            need_at(linear_c + SLOPE_STEP_K),
            need_at(linear_c - SLOPE_STEP_K),
        ) {
            (Some(hi), Some(lo)) if hi > 0.0 && lo > 0.0 => {
                (hi.ln() - lo.ln()) / (2.0 * SLOPE_STEP_K)
            }
            _ => continue,
        };
        if !(slope.is_finite() && slope > 0.0) {
            continue;
        }
        let weight = 1.0 / (slope * slope);
        for r in h.rooms.iter().filter(usable_room) {
            let fraction = r.valve_pct.map_or(1.0, |p| {
                valve_flow_fraction(p, s.valve_rangeability, s.valve_authority)
            });
            // Flow it should have relative to what it has, to be at the median's temperature:
            // ln = -slope x (room - median), plus the household valve's throttling (a valve
            // at a fraction of its flow shows a branch able to give more than it takes).
            let ln_ratio = -slope * (r.room_c - reference_c) + fraction.ln();
            if !ln_ratio.is_finite() {
                continue;
            }
            // To be at the target, from the law itself (only where it explains the flat's
            // temperature: an oversized radiator can hold a room warmer than the law allows).
            let ln_target = need_at(r.room_c).and_then(|now| {
                let ratio = need_target
                    .map_or(UNREACHABLE_RATIO, |n| (n / now).min(UNREACHABLE_RATIO))
                    * fraction;
                (ratio.is_finite() && ratio > 0.0).then(|| ratio.ln())
            });
            let f = flats.entry(r.id.clone()).or_default();
            f.building.clone_from(&r.building);
            f.position.clone_from(&r.position);
            f.riser = riser_of(&r.id).or_else(|| r.riser.clone());
            f.ln_ratios.push((ln_ratio, weight));
            f.ln_target_ratios.extend(ln_target);
            f.room_sum += r.room_c;
            if let Some(p) = r.valve_pct {
                f.valve_sum += p;
                f.valve_n += 1;
            }
            any = true;
        }
        if any {
            usable += 1;
            days.insert(h.hour_unix_s.div_euclid(86_400));
        }
    }
    let span = hours
        .first()
        .zip(hours.last())
        .map(|(a, b)| (a.hour_unix_s, b.hour_unix_s));
    let mut estimates = Vec::new();
    let mut too_few = 0;
    for (id, mut f) in flats {
        let n = f.ln_ratios.len();
        if (n as f64) < s.min_flat_hours {
            too_few += 1;
            continue;
        }
        // The weighted mean over hours and its standard error, the hours of a day counted as
        // one independent value.
        let w_sum: f64 = f.ln_ratios.iter().map(|&(_, w)| w).sum();
        let w2_sum: f64 = f.ln_ratios.iter().map(|&(_, w)| w * w).sum();
        let mean = f.ln_ratios.iter().map(|&(x, w)| w * x).sum::<f64>() / w_sum;
        let var = f
            .ln_ratios
            .iter()
            .map(|&(x, w)| w * (x - mean).powi(2))
            .sum::<f64>()
            / w_sum;
        let n_effective = w_sum * w_sum / w2_sum;
        let med_target = median(&mut f.ln_target_ratios);
        let independent = (n_effective / HOURS_PER_INDEPENDENT).max(1.0);
        let mean_room = f.room_sum / n as f64;
        estimates.push(FlatEstimate {
            id,
            building: f.building,
            riser: f.riser,
            position: f.position,
            hours: n,
            mean_room_c: mean_room,
            mean_deficit_k: s.target_c - mean_room,
            mean_valve_pct: (f.valve_n > 0).then(|| f.valve_sum / f.valve_n as f64),
            flow_need_ratio: mean.exp(),
            flow_need_ratio_target: med_target.map(f64::exp),
            ln_se: (var / independent).sqrt(),
        });
    }
    let mut advice = Advice {
        refused: None,
        hours_total: hours.len(),
        hours_usable: usable,
        days_usable: days.len(),
        span_unix_s: span,
        flats_used: estimates.len(),
        flats_too_few_hours: too_few,
        network_flow_ratio: None,
        reference_flow_ratio: None,
        network_mean_deficit_k: None,
        groups: Vec::new(),
        flats: Vec::new(),
        garbled_lines: 0,
        deadband_pct: s.deadband_pct,
    };
    if (days.len() as f64) < s.min_days {
        advice.refused = Some(format!(
            "{} day(s) with usable heating hours, at least {} needed (hours above {} °C outdoors \
             or without outdoor and supply temperatures do not count)",
            days.len(),
            s.min_days,
            s.max_outdoor_c
        ));
    } else if estimates.len() < 2 {
        advice.refused = Some(format!(
            "{} flat(s) with at least {} usable hours; at least two are needed to compare",
            estimates.len(),
            s.min_flat_hours
        ));
    }
    if advice.refused.is_some() {
        advice.flats = estimates;
        return advice;
    }
    let mut lns: Vec<f64> = estimates.iter().map(|f| f.flow_need_ratio.ln()).collect();
    let reference = median(&mut lns).unwrap_or(0.0);
    let mut lns_target: Vec<f64> = estimates
        .iter()
        .filter_map(|f| f.flow_need_ratio_target.map(f64::ln))
        .collect();
    advice.network_flow_ratio = median(&mut lns_target).map(f64::exp);
    advice.reference_flow_ratio = Some(reference.exp());
    advice.network_mean_deficit_k =
        Some(estimates.iter().map(|f| f.mean_deficit_k).sum::<f64>() / estimates.len() as f64);
    let mut groups: BTreeMap<(String, Option<String>), Vec<&FlatEstimate>> = BTreeMap::new();
    for f in &estimates {
        groups
            .entry((f.building.clone(), f.riser.clone()))
            .or_default()
            .push(f);
    }
    let deadband = (1.0 + s.deadband_pct / 100.0).ln();
    // Each group's own estimate and its standard error.
    let mut own: Vec<OwnEstimate<'_>> = Vec::new();
    for ((building, riser), members) in groups {
        let rel: Vec<f64> = members
            .iter()
            .map(|f| f.flow_need_ratio.ln() - reference)
            .collect();
        let (m, sd_between) = mean_sd(&rel);
        let n = rel.len() as f64;
        let within = members.iter().map(|f| f.ln_se.powi(2)).sum::<f64>() / n;
        let se = ((sd_between.powi(2) + within) / n).sqrt().max(1e-9);
        let mains_m = riser.as_ref().and_then(|r| s.mains_m.get(r).copied());
        own.push(OwnEstimate {
            building,
            riser,
            members,
            ln: m,
            se,
            dof: rel.len() - 1,
            sd_between,
            mains_m,
        });
    }
    let pooled = pool_along_mains(&own);
    for (g, pooled) in own.into_iter().zip(pooled) {
        let (m, se, dof) = pooled.map_or((g.ln, g.se, g.dof), |p| (p.ln, p.se, p.dof));
        let members = g.members;
        let n = members.len() as f64;
        let z = m.abs() / se;
        let confidence = if z >= t_critical(&T_995, 2.576, dof) && members.len() >= 3 {
            Confidence::High
        } else if z >= t_critical(&T_975, 1.96, dof) {
            Confidence::Medium
        } else {
            Confidence::Low
        };
        let verdict = if m.abs() < deadband {
            Verdict::Balanced
        } else if confidence == Confidence::Low {
            Verdict::Uncertain
        } else if m > 0.0 {
            Verdict::UnderSupplied
        } else {
            Verdict::OverSupplied
        };
        let kv = match verdict {
            Verdict::UnderSupplied | Verdict::OverSupplied => {
                match kv_ratio(m.exp(), s.balancing_valve_share) {
                    Some(ratio) if ratio <= MAX_KV_RATIO => KvAdvice::Change { ratio },
                    _ => KvAdvice::OpenFully,
                }
            }
            Verdict::Balanced | Verdict::Uncertain => KvAdvice::NoChange,
        };
        let valves: Vec<f64> = members.iter().filter_map(|f| f.mean_valve_pct).collect();
        advice.groups.push(GroupAdvice {
            building: g.building,
            riser: g.riser,
            flats: members.len(),
            flat_hours: members.iter().map(|f| f.hours).sum(),
            mean_deficit_k: members.iter().map(|f| f.mean_deficit_k).sum::<f64>() / n,
            mean_valve_pct: (!valves.is_empty())
                .then(|| valves.iter().sum::<f64>() / valves.len() as f64),
            flow_ratio: m.exp(),
            flow_ratio_low: (m - t_critical(&T_975, 1.96, dof) * se).exp(),
            flow_ratio_high: (m + t_critical(&T_975, 1.96, dof) * se).exp(),
            spread_ln: g.sd_between,
            mains_m: g.mains_m,
            own_flow_ratio: g.ln.exp(),
            pooled: pooled.is_some(),
            verdict,
            confidence,
            kv,
        });
    }
    advice.flats = estimates;
    advice
}

/// A group's own estimate, from its flats alone.
struct OwnEstimate<'a> {
    building: String,
    riser: Option<String>,
    members: Vec<&'a FlatEstimate>,
    /// ln of its flow ratio, relative to the median group.
    ln: f64,
    /// Standard error of `ln`.
    se: f64,
    /// Degrees of freedom of `se`.
    dof: usize,
    sd_between: f64,
    mains_m: Option<f64>,
}

/// A group's estimate pooled with the trend along the mains.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Pooled {
    ln: f64,
    se: f64,
    dof: usize,
}

/// Weighted least squares of `y` on `(1, x)` with weights `w`: the coefficients and their
/// covariance as (var a, cov ab, var b) (None when the x are all equal).
fn wls_line(x: &[f64], y: &[f64], w: &[f64]) -> Option<([f64; 2], [f64; 3])> {
    let (mut sw, mut sx, mut sxx, mut sy, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for ((&x, &y), &w) in x.iter().zip(y).zip(w) {
        sw += w;
        sx += w * x;
        sxx += w * x * x;
        sy += w * y;
        sxy += w * x * y;
    }
    let det = sw * sxx - sx * sx;
    if !(det.is_finite() && det > 1e-12 * sw * sxx.max(1e-300)) {
        return None;
    }
    let b = (sw * sxy - sx * sy) / det;
    let a = (sy - b * sx) / sw;
    // (X'WX)^-1 = [[sxx, -sx], [-sx, sw]] / det: var a, cov ab, var b.
    Some(([a, b], [sxx / det, -sx / det, sw / det]))
}

/// Cochran's Q of the line fitted with between-group variance `tau2`.
fn q_statistic(x: &[f64], y: &[f64], se: &[f64], tau2: f64) -> Option<f64> {
    let w: Vec<f64> = se.iter().map(|s| 1.0 / (s * s + tau2)).collect();
    let ([a, b], _) = wls_line(x, y, &w)?;
    Some(
        x.iter()
            .zip(y)
            .zip(&w)
            .map(|((&x, &y), &w)| w * (y - a - b * x).powi(2))
            .sum(),
    )
}

/// The groups' estimates pooled with the trend along the mains (an empirical-Bayes
/// meta-regression): the pressure a riser gets falls along the mains, so ln(flow ratio) is
/// modelled as a line in the mains length plus a riser's own deviation of variance tau²
/// (Paule-Mandel: the tau² that makes Cochran's Q equal its degrees of freedom). Each group's
/// estimate is the line's value plus its own deviation from it shrunk by
/// tau² / (tau² + se²): a riser with few or scattered flats leans on the trend, one with many
/// consistent flats on its own data. Pooled only with at least three groups at two or more
/// distinct lengths; groups without a length keep their own estimate. The pooled values are
/// centred on their median, as the own estimates are.
fn pool_along_mains(groups: &[OwnEstimate<'_>]) -> Vec<Option<Pooled>> {
    let idx: Vec<usize> = (0..groups.len())
        .filter(|&i| groups[i].mains_m.is_some())
        .collect();
    let none = vec![None; groups.len()];
    if idx.len() < 3 {
        return none;
    }
    let x: Vec<f64> = idx
        .iter()
        .map(|&i| groups[i].mains_m.unwrap_or(0.0))
        .collect();
    let y: Vec<f64> = idx.iter().map(|&i| groups[i].ln).collect();
    let se: Vec<f64> = idx.iter().map(|&i| groups[i].se).collect();
    let dof_line = idx.len() - 2;
    let Some(q0) = q_statistic(&x, &y, &se, 0.0) else {
        return none;
    };
    let tau2 = if q0 <= dof_line as f64 {
        0.0
    } else {
        // Q falls as tau² grows: bisect between 0 and the spread of y itself.
        let (mut lo, mut hi) = (0.0_f64, 1e-6);
        let var_y = mean_sd(&y).1.powi(2);
        while hi < 100.0 * var_y.max(1e-6)
            && q_statistic(&x, &y, &se, hi).is_some_and(|q| q > dof_line as f64)
        {
            hi *= 4.0;
        }
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if q_statistic(&x, &y, &se, mid).is_some_and(|q| q > dof_line as f64) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    };
    let w: Vec<f64> = se.iter().map(|s| 1.0 / (s * s + tau2)).collect();
    let Some(([a, b], [va, cab, vb])) = wls_line(&x, &y, &w) else {
        return none;
    };
    let mut out = none;
    for (k, &i) in idx.iter().enumerate() {
        let line = a + b * x[k];
        let line_var = (va + 2.0 * cab * x[k] + vb * x[k] * x[k]).max(0.0);
        let shrink = if tau2 > 0.0 {
            tau2 / (tau2 + se[k] * se[k])
        } else {
            0.0
        };
        let ln = line + shrink * (y[k] - line);
        let var = shrink * se[k] * se[k] + (1.0 - shrink).powi(2) * line_var;
        out[i] = Some(Pooled {
            ln,
            se: var.sqrt().max(1e-9),
            dof: dof_line.max(1),
        });
    }
    let mut lns: Vec<f64> = out.iter().flatten().map(|p| p.ln).collect();
    let centre = median(&mut lns).unwrap_or(0.0);
    for p in out.iter_mut().flatten() {
        p.ln -= centre;
    }
    out
}
