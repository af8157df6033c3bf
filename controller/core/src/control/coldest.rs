//! The demand correction's measured variable: an estimate of the coldest flat, robust to
//! faulty room nodes.
//!
//! Each run (every `demand.period_s`) the estimator
//!
//! 1. takes the fleet median of the valid readings and, per position class (top, ground, end,
//!    middle, top end, ground end), the class median;
//! 2. marks as **suspect-cold** a reading (median-test outliers included) below `suspect_below_c` and more than `suspect_gap_k`
//!    below its class median (the fleet median when the class has fewer than three readings):
//!    it leaves the estimate at once, and after `suspect_after_h` of it the node is **suspect**
//!    (the alarm names it) until its readings have been plausible for as long again. A node
//!    whose room did not respond to its household valve (a rogue valve) is suspect-cold too,
//!    and so is a reading below `suspect_below_c` and `follow_gap_k` under its class median that
//!    did not follow its class over `follow_window_h` (the **follow test**: the slope of the
//!    reading against the class median, from exponentially weighted moments, under
//!    `follow_min_fraction` while the class median swung at least `follow_min_swing_k`);
//! 3. learns each healthy node's offset from the fleet relative to the load,
//!    `(T_i - median) / (median - T_outdoor)`, slowly (`learn_time_h`), only while the load is
//!    at least `learn_min_load_k`;
//! 4. estimates every counting flat: from its reading (a median-test outlier below the median
//!    too, when the suspect test let it pass: in a cold spell the spread between flats can pass
//!    `outlier_k`, and the coldest flat is then the one that matters); when its node is lost
//!    (invalid, stale, stuck, high outlier, suspect) from its learned offset,
//!    `median + offset · (median - T_outdoor)` (a lost node is not a flat that needs no heat),
//!    unless that estimate is itself
//!    suspect-cold (an offset learned from a lie); a lost node never learned counts as an
//!    unknown flat of its class;
//! 5. adds, per class, a candidate below the class's coldest estimate by a share of the class's
//!    spread (class median - class coldest): `unsensed_margin_fraction` of it for the flats of
//!    the class that have no node, plus `lost_margin_fraction` when the class has unknown flats.
//!    The spread is in kelvin of room temperature, so it shrinks as the load falls;
//! 6. returns the `coldest_rank`-th coldest of these estimates (1: the coldest).
//!
//! Sans I/O and allocation-free after construction: the scratch buffers are reused.

use crate::config::{Demand, Position};

/// Number of position classes.
pub const CLASSES: usize = 6;

/// Index of a position class, 0..[`CLASSES`].
#[must_use]
pub const fn class_index(p: Position) -> usize {
    match p {
        Position::Top => 0,
        Position::Ground => 1,
        Position::End => 2,
        Position::Middle => 3,
        Position::TopEnd => 4,
        Position::GroundEnd => 5,
    }
}

/// Least readings in a class for its own median to be the suspect test's reference.
const MIN_CLASS_READINGS: usize = 3;

/// What the estimator is told about one node this run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NodeInput {
    /// A validated reading, °C.
    Valid(f64),
    /// A validated reading the median test rejected, °C: it takes part in the suspect test;
    /// below the median and not suspect-cold it counts as its flat's estimate, above it its
    /// flat is estimated as a lost node's. It never teaches an offset.
    Outlier(f64),
    /// Counts, but no usable reading (invalid, stale, stuck, outlier, missing).
    Lost,
    /// Does not count (vacant, excluded).
    NotCounting,
}

/// What the estimator made of the nodes at its last run.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Estimate {
    /// The estimate of the coldest flat (the demand loop's measured variable), °C.
    pub coldest_c: f64,
    /// Median of the readings used, °C.
    pub median_c: f64,
    /// Flats estimated from their reading.
    pub from_reading: usize,
    /// Flats whose node is lost, estimated from the node's learned offset.
    pub from_offset: usize,
    /// Flats whose node is lost and never learned (covered by their class's margin).
    pub unknown: usize,
    /// Nodes suspect now (after the hold).
    pub suspect: usize,
}

/// One node's memory.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct NodeMemory {
    /// Learned offset from the fleet relative to the load, (T - median) / (median - T_out).
    offset: f64,
    /// Seconds of learning so far.
    learned_s: f64,
    /// Since when the suspect-cold condition has held, monotonic s.
    cold_since_s: Option<f64>,
    /// Since when a suspect node's readings have been plausible, monotonic s.
    plausible_since_s: Option<f64>,
    /// Suspect (the hold has passed).
    suspect: bool,
    /// Its room did not respond to its household valve (set from outside each run).
    unresponsive: bool,
    /// Left out of the estimate at the last run (suspect, or suspect-cold now).
    excluded: bool,
    /// The follow test's moments of the reading against its class median.
    follow: Follow,
}

/// Exponentially weighted moments of a node's reading `x` and its class median `m` (both
/// taken from [`Follow::CENTRE_C`], for precision), for the follow test.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Follow {
    /// Since when the node has reported, monotonic s.
    since_s: Option<f64>,
    w: f64,
    x: f64,
    m: f64,
    xm: f64,
    mm: f64,
}

impl Follow {
    const CENTRE_C: f64 = 20.0;

    /// Adds one pair, the older ones weighed down by `keep` (0..1).
    fn add(&mut self, now_s: f64, keep: f64, x_c: f64, m_c: f64) {
        self.since_s.get_or_insert(now_s);
        let (x, m) = (x_c - Self::CENTRE_C, m_c - Self::CENTRE_C);
        self.w = keep * self.w + 1.0;
        self.x = keep * self.x + x;
        self.m = keep * self.m + m;
        self.xm = keep * self.xm + x * m;
        self.mm = keep * self.mm + m * m;
    }

    /// Weighs the pairs down by `keep` without a new one (no reading this run); once they have
    /// faded to less than one, the window starts over.
    fn fade(&mut self, keep: f64) {
        self.w *= keep;
        self.x *= keep;
        self.m *= keep;
        self.xm *= keep;
        self.mm *= keep;
        if self.w < 1.0 {
            *self = Self::default();
        }
    }

    /// Whether the reading failed to follow its class: `Some(true)` when the class median swung
    /// at least `follow_min_swing_k` over a full window and the reading's slope against it is
    /// under `follow_min_fraction`; `None` when it cannot be told (off, too early, too still).
    fn not_following(&self, cfg: &Demand, now_s: f64) -> Option<bool> {
        let window_s = cfg.follow_window_h * 3600.0;
        if window_s <= 0.0 || self.w <= 0.0 || self.since_s.is_none_or(|t| now_s - t < window_s) {
            return None;
        }
        let (mx, mm) = (self.x / self.w, self.m / self.w);
        let var_m = (self.mm / self.w - mm * mm).max(0.0);
        if var_m < cfg.follow_min_swing_k * cfg.follow_min_swing_k {
            return None;
        }
        let slope = (self.xm / self.w - mx * mm) / var_m;
        Some(slope < cfg.follow_min_fraction)
    }
}

/// The coldest-flat estimator.
#[derive(Debug, Clone)]
pub struct ColdestEstimator {
    classes: Vec<usize>,
    mem: Vec<NodeMemory>,
    /// Last load seen, K (median - outdoor), for estimates while the outdoor reading is lost.
    last_load_k: Option<f64>,
    scratch: Vec<f64>,
    /// (estimate °C, class) of every flat estimated this run.
    est: Vec<(f64, usize)>,
    /// Extra candidates (class margins) this run.
    candidates: Vec<f64>,
}

/// Whether a temperature is below `suspect_below_c` and more than `gap_k` under its class's
/// reference: `suspect_gap_k` for the plain suspect test, `follow_gap_k` for the follow test.
fn cold_by(cfg: &Demand, t_c: f64, reference_c: f64, gap_k: f64) -> bool {
    t_c < cfg.suspect_below_c && t_c < reference_c - gap_k
}

/// Whether a temperature is suspect-cold against its class's reference.
fn suspect_cold(cfg: &Demand, t_c: f64, reference_c: f64) -> bool {
    cold_by(cfg, t_c, reference_c, cfg.suspect_gap_k)
}

/// Median of items already sorted by `key` (the mean of the middle two for an even count).
pub(crate) fn median_sorted_by<T>(v: &[T], key: impl Fn(&T) -> f64) -> Option<f64> {
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(key(&v[n / 2])),
        _ => Some(0.5 * (key(&v[n / 2 - 1]) + key(&v[n / 2]))),
    }
}

fn median_sorted(v: &[f64]) -> Option<f64> {
    median_sorted_by(v, |x| *x)
}

impl ColdestEstimator {
    /// An estimator for nodes at these positions (configuration order).
    #[must_use]
    pub fn new(positions: &[Position]) -> Self {
        let n = positions.len();
        Self {
            classes: positions.iter().map(|&p| class_index(p)).collect(),
            mem: vec![NodeMemory::default(); n],
            last_load_k: None,
            scratch: Vec::with_capacity(n),
            est: Vec::with_capacity(n),
            candidates: Vec::with_capacity(CLASSES),
        }
    }

    /// New positions; the nodes' memory is kept when their number is unchanged.
    pub fn set_positions(&mut self, positions: &[Position]) {
        if positions.len() != self.mem.len() {
            *self = Self::new(positions);
        } else {
            self.classes = positions.iter().map(|&p| class_index(p)).collect();
        }
    }

    /// Per node: whether its room did not respond to its household valve; such a node counts
    /// as suspect-cold in the suspect test. Nodes past the end of `flags` are responsive.
    pub fn set_unresponsive(&mut self, flags: &[bool]) {
        for (i, m) in self.mem.iter_mut().enumerate() {
            m.unresponsive = flags.get(i).copied().unwrap_or(false);
        }
    }

    /// Whether node `i` is suspect (its suspect-cold readings lasted the hold).
    #[must_use]
    pub fn is_suspect(&self, i: usize) -> bool {
        self.mem.get(i).is_some_and(|m| m.suspect)
    }

    /// Whether node `i` was left out of the estimate at the last run (suspect, or its reading
    /// suspect-cold now).
    #[must_use]
    pub fn is_excluded(&self, i: usize) -> bool {
        self.mem.get(i).is_some_and(|m| m.excluded)
    }

    /// Node `i`'s learned offset from the fleet relative to the load, once it has learned for
    /// `learn_min_h`.
    #[must_use]
    pub fn learned_offset(&self, cfg: &Demand, i: usize) -> Option<f64> {
        self.mem
            .get(i)
            .filter(|m| m.learned_s >= cfg.learn_min_h * 3600.0)
            .map(|m| m.offset)
    }

    /// One run at `now_s`, `dt_s` after the last, with each node's input (configuration order)
    /// and the outdoor temperature (`None` when lost). `None` when no flat can be estimated.
    pub fn update(
        &mut self,
        cfg: &Demand,
        now_s: f64,
        dt_s: f64,
        inputs: &[NodeInput],
        outdoor_c: Option<f64>,
    ) -> Option<Estimate> {
        let n = self.mem.len().min(inputs.len());
        // 1. Fleet and class medians of every valid reading.
        let fleet_all = self.median_of(inputs, n, None, false)?;
        let mut class_ref = [None; CLASSES];
        for (c, r) in class_ref.iter_mut().enumerate() {
            *r = self.median_of(inputs, n, Some(c), false);
        }
        // 2. The suspect test.
        let hold_s = cfg.suspect_after_h * 3600.0;
        let keep = if cfg.follow_window_h > 0.0 {
            (-dt_s.max(0.0) / (cfg.follow_window_h * 3600.0)).exp()
        } else {
            0.0
        };
        let mut suspect = 0;
        for ((m, &input), &c) in self.mem.iter_mut().zip(inputs).zip(&self.classes) {
            if let NodeInput::Valid(v) | NodeInput::Outlier(v) = input {
                let reference = class_ref[c].unwrap_or(fleet_all);
                m.follow.add(now_s, keep, v, reference);
                let stray = cold_by(cfg, v, reference, cfg.follow_gap_k)
                    && m.follow.not_following(cfg, now_s) == Some(true);
                let cold = suspect_cold(cfg, v, reference) || m.unresponsive || stray;
                if cold {
                    m.plausible_since_s = None;
                    let since = *m.cold_since_s.get_or_insert(now_s);
                    if now_s - since >= hold_s {
                        m.suspect = true;
                    }
                } else {
                    m.cold_since_s = None;
                    if m.suspect {
                        let since = *m.plausible_since_s.get_or_insert(now_s);
                        if now_s - since >= hold_s {
                            m.suspect = false;
                            m.plausible_since_s = None;
                        }
                    }
                }
                m.excluded = cold || m.suspect;
            } else {
                m.follow.fade(keep);
                m.excluded = m.suspect;
            }
            suspect += usize::from(m.suspect);
        }
        // 3. Learn the healthy nodes' offsets.
        let median_c = self.median_of(inputs, n, None, true)?;
        let load_k = outdoor_c.map(|t| median_c - t).filter(|l| l.is_finite());
        if let Some(l) = load_k {
            self.last_load_k = Some(l);
        }
        if let Some(l) = load_k.filter(|&l| l >= cfg.learn_min_load_k) {
            let a = (dt_s / (cfg.learn_time_h * 3600.0)).clamp(0.0, 1.0);
            for (m, &input) in self.mem.iter_mut().zip(inputs) {
                if let (NodeInput::Valid(v), false) = (input, m.excluded) {
                    let r = (v - median_c) / l;
                    m.offset = if m.learned_s <= 0.0 {
                        r
                    } else {
                        m.offset + a * (r - m.offset)
                    };
                    m.learned_s += dt_s;
                }
            }
        }
        // 4. Estimate every counting flat.
        let load_now = self.last_load_k.unwrap_or(0.0).max(0.0);
        let learned_s = cfg.learn_min_h * 3600.0;
        let mut unknown_per_class = [0usize; CLASSES];
        let (mut from_reading, mut from_offset) = (0, 0);
        self.est.clear();
        for ((m, &input), &c) in self.mem.iter().zip(inputs).zip(&self.classes) {
            let by_offset_c = median_c + m.offset * load_now;
            // The reading its flat is estimated by, if any: a valid one, or a low one the
            // median test rejected but the suspect test let pass (a flat colder than the
            // fleet in a cold spell's wide spread, not a liar).
            let reading = match input {
                NodeInput::Valid(v) => Some(v),
                NodeInput::Outlier(v) if v < median_c => Some(v),
                _ => None,
            }
            .filter(|_| !m.excluded);
            match (input, reading) {
                (NodeInput::NotCounting, _) => {}
                (_, Some(v)) => {
                    self.est.push((v, c));
                    from_reading += 1;
                }
                _ if m.learned_s >= learned_s
                    && !suspect_cold(cfg, by_offset_c, class_ref[c].unwrap_or(fleet_all)) =>
                {
                    self.est.push((by_offset_c, c));
                    from_offset += 1;
                }
                // Never learned, or learned from readings as implausible as a lie.
                _ => unknown_per_class[c] += 1,
            }
        }
        // 5. Class margins.
        self.candidates.clear();
        let fleet_min = self.est.iter().map(|e| e.0).fold(f64::INFINITY, f64::min);
        for (c, &unknown) in unknown_per_class.iter().enumerate() {
            let share = cfg.unsensed_margin_fraction
                + if unknown > 0 {
                    cfg.lost_margin_fraction
                } else {
                    0.0
                };
            self.scratch.clear();
            self.scratch
                .extend(self.est.iter().filter(|e| e.1 == c).map(|e| e.0));
            self.scratch.sort_by(f64::total_cmp);
            let (lo, mid) = match (self.scratch.first(), median_sorted(&self.scratch)) {
                (Some(&lo), Some(mid)) if self.scratch.len() >= 2 => (lo, mid),
                // A class with unknown flats and (almost) no estimates: the fleet's spread.
                _ if unknown > 0 && fleet_min.is_finite() => (fleet_min, median_c),
                _ => continue,
            };
            if share > 0.0 {
                self.candidates.push(lo - share * (mid - lo).max(0.0));
            }
        }
        // 6. The rank-th coldest.
        self.scratch.clear();
        self.scratch.extend(self.est.iter().map(|e| e.0));
        self.scratch.extend_from_slice(&self.candidates);
        self.scratch.sort_by(f64::total_cmp);
        let rank = (cfg.coldest_rank.max(1) as usize).min(self.scratch.len());
        let coldest_c = *self.scratch.get(rank.checked_sub(1)?)?;
        Some(Estimate {
            coldest_c,
            median_c,
            from_reading,
            from_offset,
            unknown: unknown_per_class.iter().sum(),
            suspect,
        })
    }

    /// Median of the valid readings (of one class, or all); `healthy` leaves out the excluded.
    fn median_of(
        &mut self,
        inputs: &[NodeInput],
        n: usize,
        class: Option<usize>,
        healthy: bool,
    ) -> Option<f64> {
        self.scratch.clear();
        let nodes = inputs.iter().zip(&self.classes).zip(&self.mem).take(n);
        for ((&input, &c), m) in nodes {
            if let NodeInput::Valid(v) = input
                && class.is_none_or(|k| k == c)
                && !(healthy && m.excluded)
            {
                self.scratch.push(v);
            }
        }
        if class.is_some() && self.scratch.len() < MIN_CLASS_READINGS {
            return None;
        }
        self.scratch.sort_by(f64::total_cmp);
        median_sorted(&self.scratch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Demand {
        Demand::default()
    }

    /// 12 nodes: 4 top ends (0-3), 8 middles (4-11).
    fn positions() -> Vec<Position> {
        (0..12)
            .map(|i| {
                if i < 4 {
                    Position::TopEnd
                } else {
                    Position::Middle
                }
            })
            .collect()
    }

    /// Readings at a load: middles at the median, top ends `k × load` below it (node 0
    /// colder still).
    fn readings(median_c: f64, outdoor_c: f64) -> Vec<NodeInput> {
        let load = median_c - outdoor_c;
        (0..12)
            .map(|i| {
                NodeInput::Valid(match i {
                    0 => median_c - 0.08 * load,
                    1..=3 => median_c - 0.04 * load,
                    _ => median_c + 0.001 * f64::from(i),
                })
            })
            .collect()
    }

    /// Run `hours` of 5-minute runs with the same inputs; returns the last estimate.
    fn run(
        e: &mut ColdestEstimator,
        cfg: &Demand,
        t: &mut f64,
        hours: f64,
        inputs: &[NodeInput],
        outdoor_c: Option<f64>,
    ) -> Estimate {
        let mut last = None;
        for _ in 0..(hours * 12.0).round() as usize {
            *t += 300.0;
            last = e.update(cfg, *t, 300.0, inputs, outdoor_c);
        }
        last.expect("an estimate")
    }

    #[test]
    fn the_coldest_reading_is_the_estimate() {
        let (c, mut t) = (cfg(), 0.0);
        let mut e = ColdestEstimator::new(&positions());
        let est = run(&mut e, &c, &mut t, 1.0, &readings(20.0, 0.0), Some(0.0));
        assert!((est.coldest_c - 18.4).abs() < 1e-9, "{est:?}");
        assert_eq!((est.from_reading, est.from_offset, est.unknown), (12, 0, 0));
        assert!((est.median_c - 20.0).abs() < 0.01);
    }

    #[test]
    fn a_lost_node_is_estimated_from_its_learned_offset_scaled_by_the_load() {
        let (c, mut t) = (cfg(), 0.0);
        let mut e = ColdestEstimator::new(&positions());
        // Learn at 20 K of load: node 0 is 1.6 K below the median, 0.08 of the load (the
        // median of the twelve readings is 20.0055).
        assert_eq!(e.learned_offset(&c, 0), None);
        run(&mut e, &c, &mut t, 24.0, &readings(20.0, 0.0), Some(0.0));
        assert!((e.learned_offset(&c, 0).unwrap() + 0.08).abs() < 1e-3);
        // Its node dies; at 40 K of load the flat is estimated 3.2 K below the median, though
        // the coldest live node is only 1.6 K below it.
        let mut cold = readings(20.0, -20.0);
        cold[0] = NodeInput::Lost;
        let est = run(&mut e, &c, &mut t, 1.0, &cold, Some(-20.0));
        assert_eq!((est.from_reading, est.from_offset, est.unknown), (11, 1, 0));
        assert!((est.coldest_c - (20.0 - 3.2)).abs() < 0.05, "{est:?}");
    }

    #[test]
    fn a_node_lost_before_learning_gets_its_class_margin() {
        let (mut c, mut t) = (cfg(), 0.0);
        c.lost_margin_fraction = 0.5;
        let mut e = ColdestEstimator::new(&positions());
        let mut r = readings(20.0, 0.0);
        r[0] = NodeInput::Lost;
        let est = run(&mut e, &c, &mut t, 1.0, &r, Some(0.0));
        assert_eq!(est.unknown, 1);
        // The other top ends read 19.2 (their median and their coldest: no spread), so the
        // margin is nil and the coldest is theirs...
        assert!((est.coldest_c - 19.2).abs() < 1e-9, "{est:?}");
        // ...with a spread in the class, half of it below the class's coldest.
        r[1] = NodeInput::Valid(18.2);
        let est = run(&mut e, &c, &mut t, 0.1, &r, Some(0.0));
        assert!((est.coldest_c - (18.2 - 0.5)).abs() < 1e-9, "{est:?}");
        // Without a lost node there is no such margin.
        c.lost_margin_fraction = 0.5;
        r[0] = NodeInput::Valid(19.2);
        let est = run(&mut e, &c, &mut t, 0.1, &r, Some(0.0));
        assert!((est.coldest_c - 18.2).abs() < 1e-9, "{est:?}");
    }

    #[test]
    fn the_unsensed_margin_shrinks_with_the_load() {
        let (mut c, mut t) = (cfg(), 0.0);
        c.unsensed_margin_fraction = 0.25;
        let mut e = ColdestEstimator::new(&positions());
        // Top ends' spread: median 0.04, coldest 0.08 of the load below the fleet median.
        let hi = run(&mut e, &c, &mut t, 0.1, &readings(20.0, -20.0), Some(-20.0));
        let lo = run(&mut e, &c, &mut t, 0.1, &readings(20.0, 10.0), Some(10.0));
        let margin = |est: Estimate, load: f64| (20.0 - 0.08 * load) - est.coldest_c;
        assert!((margin(hi, 40.0) - 0.25 * 0.04 * 40.0).abs() < 1e-9);
        assert!((margin(lo, 10.0) - 0.25 * 0.04 * 10.0).abs() < 1e-9);
    }

    #[test]
    fn a_node_lying_low_is_suspect_after_the_hold_and_its_flat_estimated() {
        let (c, mut t) = (cfg(), 0.0);
        let mut e = ColdestEstimator::new(&positions());
        run(&mut e, &c, &mut t, 24.0, &readings(21.0, 1.0), Some(1.0));
        // Node 5 (a middle unit) starts lying at 15.5 °C.
        let mut r = readings(21.0, 1.0);
        r[5] = NodeInput::Valid(15.5);
        let est = run(&mut e, &c, &mut t, 1.0, &r, Some(1.0));
        assert!(
            e.is_excluded(5) && !e.is_suspect(5),
            "left out at once, not yet named"
        );
        assert_eq!(est.suspect, 0);
        // Its flat is estimated from its offset, not from the lie.
        assert!((est.coldest_c - (21.0 - 1.6)).abs() < 0.01, "{est:?}");
        // The hold (2 h) passes.
        let est = run(&mut e, &c, &mut t, 1.1, &r, Some(1.0));
        assert!(e.is_suspect(5));
        assert_eq!(est.suspect, 1);
        assert_eq!(est.from_offset, 1);
        // Plausible again: trusted after the hold, not before.
        let r = readings(21.0, 1.0);
        run(&mut e, &c, &mut t, 1.5, &r, Some(1.0));
        assert!(e.is_suspect(5));
        run(&mut e, &c, &mut t, 0.6, &r, Some(1.0));
        assert!(!e.is_suspect(5) && !e.is_excluded(5));
    }

    #[test]
    fn a_genuinely_cold_flat_near_its_class_is_not_suspect() {
        let (c, mut t) = (cfg(), 0.0);
        let mut e = ColdestEstimator::new(&positions());
        // At 40 K of load node 0 reads 16.8 °C: under 17 °C, but its class (19.4 median) is
        // only 2.6 K warmer: a cold top-floor flat, not a liar. It stays the coldest.
        let r = readings(20.0, -20.0);
        let est = run(&mut e, &c, &mut t, 12.0, &r, Some(-20.0));
        assert!(!e.is_excluded(0) && !e.is_suspect(0));
        assert!((est.coldest_c - 16.8).abs() < 1e-9);
    }

    /// The follow test: the middles' median swings ±0.4 K around 18.5 °C with the day. Node 4
    /// follows it 2 K below; node 5 lies at 16.2 °C. Both are 1.9-2.7 K under the median, inside
    /// the plain suspect test's 3 K; only the liar fails to follow.
    #[test]
    fn a_cold_reading_that_does_not_follow_its_class_is_suspect() {
        let swinging = |c: &Demand| -> (ColdestEstimator, Vec<(f64, bool, bool)>) {
            let mut e = ColdestEstimator::new(&positions());
            let mut seen = Vec::new();
            for k in 1..=(30 * 12) {
                let t = 300.0 * f64::from(k);
                let median = 18.5 + 0.4 * (t / 86_400.0 * std::f64::consts::TAU).sin();
                let r: Vec<NodeInput> = (0..12)
                    .map(|i| {
                        NodeInput::Valid(match i {
                            0..=3 => median - 1.0,
                            4 => median - 2.0,
                            5 => 16.2,
                            _ => median + 0.01 * f64::from(i),
                        })
                    })
                    .collect();
                e.update(c, t, 300.0, &r, Some(0.0)).expect("an estimate");
                seen.push((t / 3600.0, e.is_excluded(5), e.is_excluded(4)));
            }
            (e, seen)
        };
        let c = cfg();
        let (e, seen) = swinging(&c);
        // Not judged before a full window (12 h), left out soon after, named after the hold.
        let first = seen.iter().find(|s| s.1).map(|s| s.0).expect("left out");
        assert!((12.0..14.0).contains(&first), "left out at {first} h");
        assert!(e.is_suspect(5), "named by the end");
        // The room that follows its class is never left out.
        assert!(seen.iter().all(|s| !s.2));
        assert!(!e.is_suspect(4));
        // With the test off (or a class that holds still), the liar stays in.
        let off = Demand {
            follow_window_h: 0.0,
            ..cfg()
        };
        let (e, seen) = swinging(&off);
        assert!(seen.iter().all(|s| !s.1) && !e.is_suspect(5));
    }

    /// In a cold spell a top-floor flat falls more than `outlier_k` below the fleet median:
    /// the median test rejects it, but above `suspect_below_c` it is a cold flat, not a liar,
    /// and its reading (not its offset, learned in milder weather) is the estimate. A low
    /// outlier the suspect test catches, and a high one, are estimated from their offsets.
    #[test]
    fn a_cold_outlier_the_suspect_test_passes_counts_by_its_reading() {
        let (c, mut t) = (cfg(), 0.0);
        let mut e = ColdestEstimator::new(&positions());
        run(&mut e, &c, &mut t, 24.0, &readings(21.0, 1.0), Some(1.0));
        let offset = e.learned_offset(&c, 0).expect("learned");
        let mut r = readings(21.5, -25.0);
        r[0] = NodeInput::Outlier(17.3);
        let est = run(&mut e, &c, &mut t, 1.0, &r, Some(-25.0));
        assert!(!e.is_excluded(0));
        assert_eq!((est.from_reading, est.from_offset), (12, 0));
        assert!((est.coldest_c - 17.3).abs() < 1e-9, "{est:?}");
        // The same node lying at 15.5 °C (under 17 °C, 3 K under its class): left out, its
        // flat estimated from its offset.
        r[0] = NodeInput::Outlier(15.5);
        let est = run(&mut e, &c, &mut t, 1.0, &r, Some(-25.0));
        assert!(e.is_excluded(0));
        assert_eq!((est.from_reading, est.from_offset), (11, 1));
        let by_offset = est.median_c + offset * (est.median_c + 25.0);
        assert!(
            (est.coldest_c - by_offset.min(21.5 - 0.04 * 46.5)).abs() < 0.05,
            "{est:?}"
        );
        // A high outlier (a node in the sun) does not count by its reading either.
        r[0] = NodeInput::Outlier(27.0);
        let est = run(&mut e, &c, &mut t, 3.0, &r, Some(-25.0));
        assert_eq!((est.from_reading, est.from_offset), (11, 1));
    }

    #[test]
    fn the_rank_lets_one_cold_reading_not_rule() {
        let (mut c, mut t) = (cfg(), 0.0);
        c.coldest_rank = 2;
        let mut e = ColdestEstimator::new(&positions());
        let est = run(&mut e, &c, &mut t, 0.1, &readings(20.0, 0.0), Some(0.0));
        assert!((est.coldest_c - 19.2).abs() < 1e-9, "{est:?}");
    }

    #[test]
    fn nothing_to_estimate_is_none() {
        let c = cfg();
        let mut e = ColdestEstimator::new(&positions());
        assert_eq!(
            e.update(&c, 0.0, 300.0, &[NodeInput::Lost; 12], Some(0.0)),
            None
        );
        assert_eq!(e.update(&c, 300.0, 300.0, &[], Some(0.0)), None);
    }
}
