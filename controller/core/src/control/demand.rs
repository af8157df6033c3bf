//! Demand correction from household room temperatures (按需供热): robust aggregation of the
//! nodes, the estimate of the coldest flat ([`super::coldest`]) and a bounded PI on the curve
//! shift with anti-windup on both sides.

use super::coldest::{ColdestEstimator, Estimate, NodeInput, median_sorted_by};
use super::commands::RoomStats;
use super::image::Sample;
use super::validation::{Rejection, Validator};
use crate::config::{Demand, DemandMeasure, Position, PositionWeights, RoomNode, SignalLimits};

/// Weighted low percentile, median and trimmed mean of node readings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aggregate {
    /// Weighted percentile, °C.
    pub percentile_c: f64,
    /// Unweighted median, °C.
    pub median_c: f64,
    /// Unweighted trimmed mean, °C.
    pub trimmed_mean_c: f64,
}

/// Weighted percentile of `(value, weight)` pairs sorted by value: the smallest value whose
/// cumulative weight reaches `p` % of the total (an order statistic, never an interpolation
/// beyond the data, so no value outside the readings can come out).
#[must_use]
pub fn weighted_percentile(sorted: &[(f64, f64)], p: f64) -> Option<f64> {
    let total: f64 = sorted.iter().map(|x| x.1).sum();
    if sorted.is_empty() || total <= 0.0 {
        return sorted.first().map(|x| x.0);
    }
    let goal = total * (p / 100.0).clamp(0.0, 1.0);
    let mut acc = 0.0;
    for &(v, w) in sorted {
        acc += w;
        if acc >= goal && w > 0.0 {
            return Some(v);
        }
    }
    sorted.last().map(|x| x.0)
}

/// Aggregate readings (any order). Returns `None` for an empty set.
#[must_use]
pub fn aggregate(
    readings: &mut [(f64, f64)],
    percentile: f64,
    trim_fraction: f64,
) -> Option<Aggregate> {
    if readings.is_empty() {
        return None;
    }
    readings.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = readings.len();
    let median_c = median_sorted_by(readings, |x| x.0)?;
    let cut = ((n as f64) * trim_fraction).floor() as usize;
    // trim_fraction < 0.5, so at least one reading is kept.
    let kept = if 2 * cut < n {
        &readings[cut..n - cut]
    } else {
        &readings[..]
    };
    let trimmed_mean_c = kept.iter().map(|x| x.0).sum::<f64>() / kept.len() as f64;
    let percentile_c = weighted_percentile(readings, percentile)?;
    Some(Aggregate {
        percentile_c,
        median_c,
        trimmed_mean_c,
    })
}

/// Weight of a position.
#[must_use]
pub fn position_weight(w: &PositionWeights, p: Position) -> f64 {
    match p {
        Position::Top => w.top,
        Position::Ground => w.ground,
        Position::End => w.end,
        Position::Middle => w.middle,
        Position::TopEnd => w.top_end,
        Position::GroundEnd => w.ground_end,
    }
}

/// What the node list says about each node.
#[derive(Debug, Clone, Copy)]
struct NodeInfo {
    weight: f64,
    counts: bool,
}

/// What the demand correction made of one node's reading at its last run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeVerdict {
    /// Valid (and used by the aggregate when the node counts).
    Used,
    /// Rejected by the plausibility checks.
    Rejected(Rejection),
    /// Valid, but too far from the median of all valid readings.
    Outlier,
    /// Valid, but suspect-cold: far below its position class and the comfort floor, or below
    /// them and not following its class (the follow test); left out of the coldest estimate
    /// (not yet named in an alarm).
    SuspectCold,
    /// Suspect: it read suspect-cold for `demand.suspect_after_h` (alarm 203 names it), left
    /// out until its readings have been plausible for as long.
    Suspect,
}

impl NodeVerdict {
    /// Short name for logs and JSON: "used", "outlier", "suspect_cold", "suspect", or the
    /// rejection's name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            NodeVerdict::Used => "used",
            NodeVerdict::Outlier => "outlier",
            NodeVerdict::SuspectCold => "suspect_cold",
            NodeVerdict::Suspect => "suspect",
            NodeVerdict::Rejected(r) => r.name(),
        }
    }
}

/// The demand-correction state.
#[derive(Debug, Clone)]
pub struct DemandCorrection {
    cfg: Demand,
    nodes: Vec<NodeInfo>,
    validators: Vec<Validator>,
    /// Scheduling allowance on the readings' max age, seconds.
    age_allowance_s: f64,
    shift_k: f64,
    /// Integral part of the shift, K.
    integral_k: f64,
    last_run_s: Option<f64>,
    stats: RoomStats,
    /// Scratch buffer reused between runs (no allocation in the loop).
    scratch: Vec<(f64, f64)>,
    /// Each node's last validated reading (None when rejected), for the household loops.
    validated: Vec<Option<f64>>,
    /// Each node's verdict at the last run, for the faces.
    verdicts: Vec<NodeVerdict>,
    target_c: f64,
    enabled: bool,
    /// The coldest-flat estimator (learned offsets, suspect nodes).
    estimator: ColdestEstimator,
    /// Its inputs, reused between runs.
    inputs: Vec<NodeInput>,
    /// Each node's validated reading before the median test, °C.
    raw: Vec<Option<f64>>,
    /// Its estimate at the last run.
    estimate: Option<Estimate>,
}

impl DemandCorrection {
    /// State for these nodes.
    #[must_use]
    pub fn new(cfg: &Demand, nodes: &[RoomNode], room_limits: SignalLimits) -> Self {
        let mut d = Self {
            cfg: cfg.clone(),
            nodes: Vec::new(),
            validators: Vec::new(),
            age_allowance_s: 0.0,
            shift_k: 0.0,
            integral_k: 0.0,
            last_run_s: None,
            stats: RoomStats::default(),
            scratch: Vec::with_capacity(nodes.len()),
            validated: vec![None; nodes.len()],
            verdicts: vec![NodeVerdict::Rejected(Rejection::Missing); nodes.len()],
            target_c: cfg.target_c,
            enabled: cfg.enabled,
            estimator: ColdestEstimator::new(&[]),
            inputs: Vec::with_capacity(nodes.len()),
            raw: Vec::with_capacity(nodes.len()),
            estimate: None,
        };
        d.set_config(cfg, nodes, room_limits);
        d
    }

    /// Let room readings exceed their max age by this many seconds (see
    /// [`super::Controller::set_age_allowance_s`]).
    pub fn set_age_allowance_s(&mut self, allowance_s: f64) {
        self.age_allowance_s = allowance_s;
        for v in &mut self.validators {
            v.set_age_allowance_s(allowance_s);
        }
    }

    /// Replace the configuration; keeps the shift, and node history where the count is unchanged.
    pub fn set_config(&mut self, cfg: &Demand, nodes: &[RoomNode], room_limits: SignalLimits) {
        self.cfg = cfg.clone();
        self.target_c = cfg.target_c;
        self.enabled = cfg.enabled;
        self.nodes = nodes
            .iter()
            .map(|n| NodeInfo {
                weight: position_weight(&cfg.weights, n.position),
                counts: !n.vacant && !n.excluded,
            })
            .collect();
        let positions: Vec<Position> = nodes.iter().map(|n| n.position).collect();
        self.estimator.set_positions(&positions);
        if self.validators.len() == nodes.len() {
            for v in &mut self.validators {
                v.set_limits(room_limits);
            }
        } else {
            let mut v = Validator::new(room_limits);
            v.set_age_allowance_s(self.age_allowance_s);
            self.validators = vec![v; nodes.len()];
            self.validated = vec![None; nodes.len()];
            self.verdicts = vec![NodeVerdict::Rejected(Rejection::Missing); nodes.len()];
        }
        self.shift_k = self.shift_k.clamp(cfg.min_shift_k, cfg.max_shift_k);
        self.integral_k = self.integral_k.clamp(cfg.min_shift_k, cfg.max_shift_k);
    }

    /// Override the target (SCADA), °C.
    pub fn set_target_c(&mut self, target_c: f64) {
        self.target_c = target_c;
    }

    /// The target in force, °C.
    #[must_use]
    pub fn target_c(&self) -> f64 {
        self.target_c
    }

    /// Switch the correction on or off (SCADA). Off decays the shift like a lost quorum.
    /// Whether the correction is on (configuration, or SCADA since the last reconfigure).
    #[must_use]
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Switch the correction on or off.
    pub fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
    }

    /// The current shift, K.
    #[must_use]
    pub fn shift_k(&self) -> f64 {
        self.shift_k
    }

    /// Start from a saved shift (restart), clamped to the configured bounds, K.
    pub fn restore_shift_k(&mut self, shift_k: f64) {
        if shift_k.is_finite() {
            self.shift_k = shift_k.clamp(self.cfg.min_shift_k, self.cfg.max_shift_k);
            self.integral_k = self.shift_k;
        }
    }

    /// Each node's validated reading at the last run (None when rejected), °C.
    #[must_use]
    pub fn validated(&self) -> &[Option<f64>] {
        &self.validated
    }

    /// Each node's validated reading at the last run before the median and suspect tests
    /// (None when invalid, stale or stuck), °C.
    #[must_use]
    pub fn raw(&self) -> &[Option<f64>] {
        &self.raw
    }

    /// Per node (configuration order): whether its room did not respond to its household valve
    /// (a rogue valve, [`super::HouseholdLoops::rogues`]). The suspect test treats such a node as
    /// suspect-cold: after `suspect_after_h` alarm 203 names it, until its readings are
    /// plausible again.
    pub fn set_unresponsive(&mut self, flags: &[bool]) {
        self.estimator.set_unresponsive(flags);
    }

    /// Each node's verdict at the last run (in configuration order).
    #[must_use]
    pub fn verdicts(&self) -> &[NodeVerdict] {
        &self.verdicts
    }

    /// The coldest-flat estimate at the last run (`None` before the first, or without any
    /// estimable flat).
    #[must_use]
    pub fn estimate(&self) -> Option<Estimate> {
        self.estimate
    }

    /// Indices (configuration order) of the nodes suspect now.
    pub fn suspects(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|&i| self.estimator.is_suspect(i))
    }

    /// Statistics of the last run.
    #[must_use]
    pub fn stats(&self) -> RoomStats {
        self.stats
    }

    /// Run if a period has passed. `outdoor_c` is the outdoor temperature in use (for the
    /// learned offsets; `None` when lost). `may_raise` is false while the setpoint is held down
    /// by a limiter or the max clamp, or heating is off; `may_lower` false while the setpoint
    /// sits at the curve's min clamp or heating is off (anti-windup on both sides: the integral
    /// does not run where the setpoint cannot follow).
    pub fn update(
        &mut self,
        now_s: f64,
        rooms: &[Option<Sample>],
        outdoor_c: Option<f64>,
        may_raise: bool,
        may_lower: bool,
    ) {
        let dt = match self.last_run_s {
            None => {
                self.last_run_s = Some(now_s);
                self.run_aggregation(now_s, 0.0, rooms, outdoor_c);
                return;
            }
            Some(t) if now_s - t >= self.cfg.period_s => now_s - t,
            Some(_) => return,
        };
        self.last_run_s = Some(now_s);
        // A long pause (process stopped) must not become one large step.
        let dt = dt.min(2.0 * self.cfg.period_s);
        let agg = self.run_aggregation(now_s, dt, rooms, outdoor_c);
        let measured_c = match self.cfg.measure {
            DemandMeasure::Coldest => self.estimate.map(|e| e.coldest_c),
            DemandMeasure::Percentile => agg.map(|a| a.percentile_c),
        };
        match agg.zip(measured_c) {
            Some((a, measured_c)) if self.enabled && self.stats.quorum => {
                let e_floor = self.target_c - measured_c;
                let e_mean = self.cfg.mean_max_c - a.trimmed_mean_c;
                // The floor wins: while the low percentile is below target the shift may rise;
                // once it is at or above target, a high mean pushes down faster.
                let e = if e_floor > 0.0 {
                    e_floor
                } else {
                    e_floor.min(e_mean)
                };
                let kp = self.cfg.gain_k_per_k;
                let ti_s = self.cfg.integral_time_h * 3600.0;
                let (lo, hi) = (self.cfg.min_shift_k, self.cfg.max_shift_k);
                // PI: shift = Kp·e + Kp/Ti·∫e. The integral does not rise while raising is
                // blocked, nor fall while lowering is (anti-windup), and stays within the
                // shift bounds.
                let di = kp * e * dt / ti_s;
                if (may_raise || di < 0.0) && (may_lower || di > 0.0) {
                    self.integral_k = (self.integral_k + di).clamp(lo, hi);
                }
                let mut target = (kp * e + self.integral_k).clamp(lo, hi);
                if !may_raise {
                    target = target.min(self.shift_k);
                }
                if !may_lower {
                    target = target.max(self.shift_k);
                }
                let max_step = self.cfg.max_rate_k_per_h * dt / 3600.0;
                self.shift_k = target.clamp(self.shift_k - max_step, self.shift_k + max_step);
            }
            _ => {
                let decay = (-dt / (self.cfg.decay_time_constant_h * 3600.0)).exp();
                self.shift_k *= decay;
                self.integral_k *= decay;
            }
        }
    }

    fn run_aggregation(
        &mut self,
        now_s: f64,
        dt_s: f64,
        rooms: &[Option<Sample>],
        outdoor_c: Option<f64>,
    ) -> Option<Aggregate> {
        self.scratch.clear();
        let mut stats = RoomStats::default();
        for (i, info) in self.nodes.iter().enumerate() {
            let sample = rooms.get(i).copied().flatten();
            // Every node's validator runs, so history is kept even for vacant ones.
            let checked = self.validators[i].check(now_s, sample);
            self.validated[i] = checked.ok();
            self.verdicts[i] = match checked {
                Ok(_) => NodeVerdict::Used,
                Err(r) => NodeVerdict::Rejected(r),
            };
            if !info.counts {
                continue;
            }
            stats.expected += 1;
            match checked {
                Ok(v) => self.scratch.push((v, info.weight)),
                Err(_) => stats.invalid += 1,
            }
        }
        self.raw.clone_from(&self.validated);
        // Outliers against the median of all valid readings.
        self.scratch.sort_by(|a, b| a.0.total_cmp(&b.0));
        if self.cfg.outlier_k > 0.0
            && let Some(med) = median_sorted_by(&self.scratch, |x| x.0)
        {
            let before = self.scratch.len();
            let k = self.cfg.outlier_k;
            self.scratch.retain(|x| (x.0 - med).abs() <= k);
            stats.outliers = before - self.scratch.len();
            // An outlier drives nothing: not the aggregate, nor its own household valve (a
            // node lying high would otherwise shut the valve of a home that may be cold).
            for (v, verdict) in self.validated.iter_mut().zip(&mut self.verdicts) {
                if v.is_some_and(|x| (x - med).abs() > k) {
                    *v = None;
                    *verdict = NodeVerdict::Outlier;
                }
            }
        }
        self.run_estimator(now_s, dt_s, outdoor_c);
        stats.used = self.scratch.len();
        stats.quorum = stats.used > 0
            && (stats.used as f64) >= (stats.expected as f64) * self.cfg.quorum_pct / 100.0;
        let agg = aggregate(
            &mut self.scratch,
            self.cfg.percentile,
            self.cfg.trim_fraction,
        );
        if let Some(a) = agg {
            stats.percentile_c = Some(a.percentile_c);
            stats.median_c = Some(a.median_c);
            stats.trimmed_mean_c = Some(a.trimmed_mean_c);
        }
        self.stats = stats;
        agg
    }

    /// The coldest-flat estimate from the validated, outlier-free readings; suspect nodes
    /// leave the aggregate and drive nothing (as outliers).
    fn run_estimator(&mut self, now_s: f64, dt_s: f64, outdoor_c: Option<f64>) {
        self.inputs.clear();
        for ((info, v), raw) in self.nodes.iter().zip(&self.validated).zip(&self.raw) {
            self.inputs.push(match (info.counts, v, raw) {
                (false, _, _) => NodeInput::NotCounting,
                (true, Some(v), _) => NodeInput::Valid(*v),
                (true, None, Some(r)) => NodeInput::Outlier(*r),
                (true, None, None) => NodeInput::Lost,
            });
        }
        self.estimate = self
            .estimator
            .update(&self.cfg, now_s, dt_s, &self.inputs, outdoor_c);
        for i in 0..self.nodes.len() {
            // A suspect the median test already calls an outlier is still named suspect.
            if self.estimator.is_suspect(i) && self.verdicts[i] == NodeVerdict::Outlier {
                self.verdicts[i] = NodeVerdict::Suspect;
            }
            if !self.estimator.is_excluded(i) || self.validated[i].is_none() {
                continue;
            }
            if let Some(v) = self.validated[i].take()
                && let Some(k) = self.scratch.iter().position(|x| x.0 == v)
            {
                self.scratch.swap_remove(k);
            }
            self.verdicts[i] = if self.estimator.is_suspect(i) {
                NodeVerdict::Suspect
            } else {
                NodeVerdict::SuspectCold
            };
        }
        // A suspect whose node is lost now keeps its verdict's reason (stale, invalid...).
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_percentile_is_an_order_statistic() {
        let v: Vec<(f64, f64)> = (0..10).map(|i| (f64::from(i), 1.0)).collect();
        assert_eq!(weighted_percentile(&v, 10.0), Some(0.0));
        assert_eq!(weighted_percentile(&v, 50.0), Some(4.0));
        assert_eq!(weighted_percentile(&v, 100.0), Some(9.0));
        // A heavy cold node pulls the low percentile onto itself.
        let mut w = v.clone();
        w[3].1 = 100.0;
        assert_eq!(weighted_percentile(&w, 10.0), Some(3.0));
    }

    #[test]
    fn trimmed_mean_ignores_the_ends() {
        let mut v: Vec<(f64, f64)> = (0..10).map(|i| (20.0, f64::from(i) * 0.0 + 1.0)).collect();
        v[0].0 = -100.0;
        v[9].0 = 100.0;
        let a = aggregate(&mut v, 10.0, 0.1).unwrap();
        assert!((a.trimmed_mean_c - 20.0).abs() < 1e-9);
        assert!((a.median_c - 20.0).abs() < 1e-9);
    }

    fn nodes(n: usize) -> Vec<RoomNode> {
        (0..n)
            .map(|i| RoomNode {
                building: "b".into(),
                ..RoomNode::new(format!("n{i}"), "l", 1)
            })
            .collect()
    }

    fn limits() -> SignalLimits {
        SignalLimits {
            valid_min: 5.0,
            valid_max: 35.0,
            max_age_s: 1800.0,
            stuck_after_s: 0.0,
            stuck_tolerance: 0.01,
            max_rate_per_s: 0.0,
        }
    }

    #[test]
    fn cold_rooms_raise_the_shift_slowly_and_bounded() {
        let cfg = Demand::default();
        let mut d = DemandCorrection::new(&cfg, &nodes(20), limits());
        let rooms: Vec<Option<Sample>> = (0..20).map(|_| Some(Sample::fresh(17.0))).collect();
        let mut t = 0.0;
        d.update(t, &rooms, None, true, true);
        t += cfg.period_s;
        d.update(t, &rooms, None, true, true);
        let one = d.shift_k();
        assert!(one > 0.0);
        assert!(
            one <= cfg.max_rate_k_per_h * cfg.period_s / 3600.0 + 1e-12,
            "rate limit"
        );
        for _ in 0..2000 {
            t += cfg.period_s;
            d.update(t, &rooms, None, true, true);
        }
        assert!(
            (d.shift_k() - cfg.max_shift_k).abs() < 1e-9,
            "bounded: {}",
            d.shift_k()
        );
    }

    #[test]
    fn anti_windup_blocks_raising() {
        let cfg = Demand::default();
        let mut d = DemandCorrection::new(&cfg, &nodes(20), limits());
        let rooms: Vec<Option<Sample>> = (0..20).map(|_| Some(Sample::fresh(17.0))).collect();
        d.update(0.0, &rooms, None, false, true);
        d.update(cfg.period_s, &rooms, None, false, true);
        assert_eq!(d.shift_k(), 0.0);
    }

    #[test]
    fn anti_windup_blocks_lowering_at_the_min_clamp() {
        let cfg = Demand::default();
        let mut d = DemandCorrection::new(&cfg, &nodes(20), limits());
        let warm: Vec<Option<Sample>> = (0..20).map(|_| Some(Sample::fresh(23.0))).collect();
        let mut t = 0.0;
        // Warm rooms at the min clamp (or heating off): the shift and its integral hold.
        for _ in 0..100 {
            d.update(t, &warm, Some(10.0), true, false);
            t += cfg.period_s;
        }
        assert_eq!(d.shift_k(), 0.0);
        // Cold rooms then raise it at once, with no wound-down integral to climb out of.
        let cold: Vec<Option<Sample>> = (0..20).map(|_| Some(Sample::fresh(17.0))).collect();
        d.update(t, &cold, Some(10.0), true, true);
        assert!(d.shift_k() > 0.0, "{}", d.shift_k());
        // Allowed to lower, warm rooms lower it.
        for _ in 0..20 {
            t += cfg.period_s;
            d.update(t, &warm, Some(10.0), true, true);
        }
        assert!(d.shift_k() < 0.0, "{}", d.shift_k());
    }

    #[test]
    fn a_dead_node_keeps_its_flat_in_the_estimate() {
        let cfg = Demand::default();
        let mut d = DemandCorrection::new(&cfg, &nodes(20), limits());
        // Node 0 is the coldest flat, 2 K below the others at 20 K of load.
        let mut rooms: Vec<Option<Sample>> = (0..20).map(|_| Some(Sample::fresh(20.0))).collect();
        rooms[0] = Some(Sample::fresh(18.0));
        let mut t = 0.0;
        // A day of learning, whatever the period.
        while t < 24.0 * 3600.0 {
            d.update(t, &rooms, Some(0.0), true, true);
            t += cfg.period_s;
        }
        // Its node dies: the estimate keeps the flat at 18 °C, not the live nodes' 20 °C.
        rooms[0] = None;
        t += cfg.period_s;
        d.update(t, &rooms, Some(0.0), true, true);
        let e = d.estimate().unwrap();
        assert_eq!((e.from_reading, e.from_offset), (19, 1));
        assert!((e.coldest_c - 18.0).abs() < 0.01, "{e:?}");
    }

    #[test]
    fn a_suspect_node_is_named_and_drives_nothing() {
        let cfg = Demand::default();
        let mut d = DemandCorrection::new(&cfg, &nodes(20), limits());
        let mut rooms: Vec<Option<Sample>> = (0..20).map(|_| Some(Sample::fresh(20.0))).collect();
        rooms[7] = Some(Sample::fresh(15.5));
        let mut t = 0.0;
        // Three hours: past the suspect hold.
        while t < 3.0 * 3600.0 {
            d.update(t, &rooms, Some(0.0), true, true);
            t += cfg.period_s;
        }
        assert_eq!(d.suspects().collect::<Vec<_>>(), vec![7]);
        assert_eq!(d.verdicts()[7], NodeVerdict::Suspect);
        assert_eq!(d.validated()[7], None);
        assert!((d.estimate().unwrap().coldest_c - 20.0).abs() < 1e-9);
    }

    #[test]
    fn a_node_whose_room_does_not_respond_is_named_until_it_reads_plausibly() {
        // Node 7 reads 17.2 °C: too close to its class for the suspect test on its own, but
        // its household valve found it unresponsive (a rogue).
        let cfg = Demand::default();
        let mut d = DemandCorrection::new(&cfg, &nodes(20), limits());
        let mut rooms: Vec<Option<Sample>> = (0..20).map(|_| Some(Sample::fresh(19.0))).collect();
        rooms[7] = Some(Sample::fresh(17.2));
        let mut flags = vec![false; 20];
        let hold = (cfg.suspect_after_h * 3600.0 / cfg.period_s) as usize + 1;
        let mut t = 0.0;
        for _ in 0..hold {
            d.update(t, &rooms, Some(0.0), true, true);
            t += cfg.period_s;
        }
        assert_eq!(d.suspects().count(), 0, "responsive: not suspect");
        assert_eq!(d.verdicts()[7], NodeVerdict::Used);
        flags[7] = true;
        d.set_unresponsive(&flags);
        d.update(t, &rooms, Some(0.0), true, true);
        t += cfg.period_s;
        assert_eq!(
            d.verdicts()[7],
            NodeVerdict::SuspectCold,
            "left out at once"
        );
        assert_eq!(d.validated()[7], None);
        assert_eq!(d.raw()[7], Some(17.2), "its reading is still seen");
        for _ in 0..hold {
            d.update(t, &rooms, Some(0.0), true, true);
            t += cfg.period_s;
        }
        assert_eq!(d.suspects().collect::<Vec<_>>(), vec![7]);
        // Its room responds again: named until it has read plausibly for the hold.
        flags[7] = false;
        d.set_unresponsive(&flags);
        d.update(t, &rooms, Some(0.0), true, true);
        t += cfg.period_s;
        assert_eq!(d.verdicts()[7], NodeVerdict::Suspect);
        for _ in 0..hold {
            d.update(t, &rooms, Some(0.0), true, true);
            t += cfg.period_s;
        }
        assert_eq!(d.suspects().count(), 0);
        assert_eq!(d.verdicts()[7], NodeVerdict::Used);
    }

    #[test]
    fn no_quorum_decays_toward_zero() {
        let cfg = Demand::default();
        let mut d = DemandCorrection::new(&cfg, &nodes(20), limits());
        let cold: Vec<Option<Sample>> = (0..20).map(|_| Some(Sample::fresh(17.0))).collect();
        let mut t = 0.0;
        for _ in 0..100 {
            d.update(t, &cold, None, true, true);
            t += cfg.period_s;
        }
        let before = d.shift_k();
        assert!(before > 1.0);
        // Only 2 of 20 alive: below the 30 % quorum.
        let mut few: Vec<Option<Sample>> = vec![None; 20];
        few[0] = Some(Sample::fresh(15.0));
        few[1] = Some(Sample::fresh(15.0));
        for _ in 0..72 {
            d.update(t, &few, None, true, true);
            t += cfg.period_s;
        }
        assert!(!d.stats().quorum);
        let expected =
            before * (-(71.0 * cfg.period_s) / (cfg.decay_time_constant_h * 3600.0)).exp();
        assert!(
            (d.shift_k() - expected).abs() < 0.05 * before,
            "{} vs {expected}",
            d.shift_k()
        );
    }

    #[test]
    fn vacant_and_excluded_nodes_do_not_count() {
        let cfg = Demand::default();
        let mut ns = nodes(3);
        ns[0].vacant = true;
        ns[1].excluded = true;
        let mut d = DemandCorrection::new(&cfg, &ns, limits());
        let rooms = vec![
            Some(Sample::fresh(10.0)),
            Some(Sample::fresh(10.0)),
            Some(Sample::fresh(20.0)),
        ];
        d.update(0.0, &rooms, None, true, true);
        let s = d.stats();
        assert_eq!((s.expected, s.used), (1, 1));
        assert_eq!(s.percentile_c, Some(20.0));
    }

    #[test]
    fn outliers_are_dropped() {
        let cfg = Demand::default();
        let mut d = DemandCorrection::new(&cfg, &nodes(10), limits());
        let mut rooms: Vec<Option<Sample>> = (0..10).map(|_| Some(Sample::fresh(20.0))).collect();
        rooms[0] = Some(Sample::fresh(8.0)); // window open
        rooms[1] = Some(Sample::fresh(30.0)); // liar
        d.update(0.0, &rooms, None, true, true);
        let s = d.stats();
        assert_eq!(s.outliers, 2);
        assert_eq!(s.percentile_c, Some(20.0));
        // Outliers are not handed on to anything else (the household valve loops).
        assert_eq!(d.validated()[0], None);
        assert_eq!(d.validated()[1], None);
        assert_eq!(d.validated()[2], Some(20.0));
    }
}
