//! Household (or building) valve loops: one room loop per valve, and what a valve does while its
//! room reading is lost ([`LostReading`]) or its valve is a rogue.
//!
//! A valve whose learned position was forgotten (learned from readings found wrong: stuck,
//! outlier, rogue) takes the upper decile of the positions its position class's valves learned,
//! opened by the lost-reading bias: the neighbours' position is a better guess for that home
//! than wide open. A valve that never learned anything (nothing is known of its home) goes to its
//! safe position.

use super::coldest::{CLASSES, median_sorted_by};
use super::demand::NodeVerdict;
use super::validation::Rejection;
use crate::config::{HouseholdValves, LostReading};

/// One valve's loop state.
#[derive(Debug, Clone, Copy)]
struct ValveLoop {
    /// Integral part, %.
    integral_pct: f64,
    /// Output (the command), %.
    out_pct: f64,
    /// The position learned under room control: the output's exponential mean, %.
    learned_pct: Option<f64>,
    /// How long the valve has been wide open with its room `rogue_k` below target, s.
    cold_open_s: f64,
    /// Time spent under room control, s (the learned position is trusted after a quarter of
    /// the learning time).
    learned_s: f64,
    /// What it learned was forgotten (learned from readings found wrong: stuck, outlier,
    /// rogue); until its loop runs on a valid reading again it takes its class's position.
    forgotten: bool,
    /// The loop's input: the room reading through a first-order filter of `filter_s`, °C
    /// (`None` while the loop has no reading: it starts again from the next one).
    filtered_c: Option<f64>,
}

/// Time under room control after which a learned position is trusted: a quarter of the
/// learning time, s.
fn trusted_after_s(cfg: &HouseholdValves) -> f64 {
    cfg.learn_time_h * 3600.0 / 4.0
}

/// One PI loop per valve toward the room target.
#[derive(Debug, Clone, Default)]
pub struct HouseholdLoops {
    /// Per node: its valve's loop where the node has a valve.
    state: Vec<Option<ValveLoop>>,
    /// Per node: whether its loop had a valid room reading at the last run (a valve walking
    /// to its safe position or holding for want of a reading is not asking for heat).
    controlled: Vec<bool>,
    /// Per node: whether its valve is a rogue ([`HouseholdLoops::rogues`]).
    rogue: Vec<bool>,
    /// Per node: its position class (for the class's learned position).
    classes: Vec<usize>,
    last_run_s: Option<f64>,
}

/// Least trusted learned positions in a class for their upper decile to stand in for a valve of
/// the class (the fleet's otherwise).
const MIN_CLASS_VALVES: usize = 3;

impl HouseholdLoops {
    /// Loops for nodes where `has_valve[i]`; they start at the safe position.
    #[must_use]
    pub fn new(has_valve: &[bool], safe_pct: f64) -> Self {
        Self {
            state: has_valve
                .iter()
                .map(|&v| {
                    v.then_some(ValveLoop {
                        integral_pct: safe_pct,
                        out_pct: safe_pct,
                        learned_pct: None,
                        cold_open_s: 0.0,
                        learned_s: 0.0,
                        forgotten: false,
                        filtered_c: None,
                    })
                })
                .collect(),
            controlled: vec![false; has_valve.len()],
            rogue: vec![false; has_valve.len()],
            classes: vec![0; has_valve.len()],
            last_run_s: None,
        }
    }

    /// Each node's position class (configuration order; [`super::coldest::class_index`]); a
    /// node missing from `classes`, or out of range, counts in class 0.
    pub fn set_classes(&mut self, classes: &[usize]) {
        self.classes = (0..self.state.len())
            .map(|i| {
                classes
                    .get(i)
                    .copied()
                    .filter(|&c| c < CLASSES)
                    .unwrap_or(0)
            })
            .collect();
    }

    /// Per node: whether its valve is under room-temperature control (valve and a valid
    /// reading at the last run).
    #[must_use]
    pub fn controlled(&self) -> &[bool] {
        &self.controlled
    }

    /// Outputs, % (`None` where no valve).
    #[must_use]
    pub fn outputs(&self) -> Vec<Option<f64>> {
        self.state.iter().map(|s| s.map(|v| v.out_pct)).collect()
    }

    /// Per node: the position its valve learned under room control, % (`None`: no valve, or
    /// not learned long enough to be trusted).
    #[must_use]
    pub fn learned(&self, cfg: &HouseholdValves) -> Vec<Option<f64>> {
        let trusted_s = trusted_after_s(cfg);
        self.state
            .iter()
            .map(|s| s.and_then(|v| v.learned_pct.filter(|_| v.learned_s >= trusted_s)))
            .collect()
    }

    /// Per node: whether its valve is a rogue: wide open for `rogue_after_h` with its room still
    /// `rogue_k` below target while most homes are not (a node lying cold, or a home the supply
    /// cannot reach: a window left open, a blocked radiator). It stays a rogue while its node
    /// reads that cold. A rogue valve asks trim and respond for nothing, forgets what it learned,
    /// and is driven as a valve without reading; the demand correction names its node suspect
    /// (alarm 203): a technician has a home to visit either way.
    #[must_use]
    pub fn rogues(&self) -> &[bool] {
        &self.rogue
    }

    /// Run the loops if a period has passed. `rooms[i]` is the validated room temperature (the
    /// loop's input), `raw[i]` the node's reading before the median and suspect tests (it keeps
    /// a rogue a rogue), `verdicts[i]` the node's verdict (a node found stuck or an outlier has
    /// its learned position forgotten: it was learned from readings that may have been wrong
    /// all along).
    pub fn update(
        &mut self,
        cfg: &HouseholdValves,
        now_s: f64,
        rooms: &[Option<f64>],
        raw: &[Option<f64>],
        verdicts: &[NodeVerdict],
    ) {
        let dt = match self.last_run_s {
            Some(t) if now_s - t < cfg.period_s => return,
            Some(t) => (now_s - t).min(2.0 * cfg.period_s),
            None => cfg.period_s,
        };
        self.last_run_s = Some(now_s);
        let max_step = cfg.max_rate_pct_per_h * dt / 3600.0;
        let hold = cfg.lost_reading == LostReading::HoldLearned;
        let trusted_s = trusted_after_s(cfg);
        let alpha = 1.0 - (-dt / (cfg.learn_time_h * 3600.0)).exp();
        let filter_alpha = if cfg.filter_s > 0.0 {
            1.0 - (-dt / cfg.filter_s).exp()
        } else {
            1.0
        };
        let cold_below_c = cfg.target_c - cfg.rogue_k;
        // A valve is a rogue only while most homes are warmer: when the supply falls short,
        // every valve opens wide on a cold room, and none of them is lying.
        let readings = sorted_finite(rooms.iter().take(self.state.len()).flatten().copied());
        let most_homes_warm =
            median_sorted_by(&readings, |x| *x).is_some_and(|m| m >= cold_below_c);
        let class_learned = self.class_learned(cfg);
        for (i, slot) in self.state.iter_mut().enumerate() {
            let Some(v) = slot else {
                continue;
            };
            let raw_c = raw.get(i).copied().flatten();
            if matches!(
                verdicts.get(i),
                Some(NodeVerdict::Rejected(Rejection::Stuck) | NodeVerdict::Outlier)
            ) {
                v.learned_pct = None;
                v.learned_s = 0.0;
                v.forgotten = true;
            }
            // The loop's input: the validated reading, or the raw one while it is only
            // suspect-cold (not yet named suspect): a cold reading still opens its valve.
            let input_c =
                rooms.get(i).copied().flatten().or_else(|| {
                    raw_c.filter(|_| verdicts.get(i) == Some(&NodeVerdict::SuspectCold))
                });
            if self.rogue[i] {
                // A rogue stays one while its node reads that cold, whatever its valve does now.
                if raw_c.is_some_and(|t| t >= cold_below_c) {
                    self.rogue[i] = false;
                    v.cold_open_s = 0.0;
                }
            } else {
                // The clock runs while the valve is wide open (on its loop, or at its safe
                // position while its node is left out) and the node reads cold; it pauses while
                // the valve holds a position off its loop, and restarts when the room reads
                // warm, when most homes are cold too, or when its loop has the valve less than
                // wide open (the room is coming up).
                let raw_cold = raw_c.is_some_and(|t| t < cold_below_c);
                if !raw_cold || !most_homes_warm {
                    v.cold_open_s = 0.0;
                } else if v.out_pct >= 99.0 {
                    v.cold_open_s += dt;
                } else if input_c.is_some() {
                    v.cold_open_s = 0.0;
                }
                if v.cold_open_s > cfg.rogue_after_h * 3600.0 {
                    self.rogue[i] = true;
                    // What it learned, it learned wide open on that reading.
                    v.learned_pct = None;
                    v.learned_s = 0.0;
                    v.forgotten = true;
                }
            }
            v.filtered_c = input_c
                .filter(|_| !self.rogue[i])
                .map(|t| v.filtered_c.map_or(t, |f| f + filter_alpha * (t - f)));
            let reading = v.filtered_c;
            if let Some(c) = self.controlled.get_mut(i) {
                *c = reading.is_some();
            }
            let (p_part, target_u) = match reading {
                Some(t) => {
                    let e = cfg.target_c - t;
                    let p = cfg.kp_pct_per_k * e;
                    let i_new = if cfg.ti_s > 0.0 {
                        v.integral_pct + cfg.kp_pct_per_k * e * dt / cfg.ti_s
                    } else {
                        0.0
                    };
                    (Some(p), p + i_new)
                }
                // No valid reading (or a rogue): hold what was learned, or what the valves of
                // its class learned when its own was forgotten, opened by the bias; the safe
                // position when nothing was learned or so configured.
                None => {
                    let known = v
                        .learned_pct
                        .filter(|_| v.learned_s >= trusted_s)
                        .or(class_learned[self.classes[i]].filter(|_| v.forgotten))
                        .filter(|_| hold);
                    let u = known.map_or(cfg.safe_position_pct, |l| l + cfg.lost_open_bias_pct);
                    (None, u)
                }
            };
            let wanted = target_u.clamp(cfg.min_opening_pct, 100.0);
            let u = wanted
                .clamp(v.out_pct - max_step, v.out_pct + max_step)
                .clamp(cfg.min_opening_pct, 100.0);
            // Tracking anti-windup.
            v.integral_pct = match p_part {
                Some(p) => u - p,
                None => u,
            };
            v.out_pct = u;
            if p_part.is_some() {
                v.forgotten = false;
                v.learned_pct = Some(v.learned_pct.map_or(u, |l| l + alpha * (u - l)));
                v.learned_s += dt;
            }
        }
    }

    /// Per position class: the upper decile of its valves' trusted learned positions (the
    /// fleet's when the class has fewer than [`MIN_CLASS_VALVES`]), % (`None`: nothing trusted
    /// yet). The upper decile, not the median: a home whose own history cannot be trusted is
    /// given what nine in ten of its class need or less.
    fn class_learned(&self, cfg: &HouseholdValves) -> [Option<f64>; CLASSES] {
        let trusted_s = trusted_after_s(cfg);
        let mut per_class: [Vec<f64>; CLASSES] = Default::default();
        let slots = self.state.iter().zip(&self.rogue).zip(&self.classes);
        for ((slot, &rogue), &c) in slots {
            if let Some(l) = slot
                .filter(|v| !rogue && v.learned_s >= trusted_s)
                .and_then(|v| v.learned_pct)
            {
                per_class[c].push(l);
            }
        }
        let fleet = upper_decile(per_class.iter().flatten().copied());
        std::array::from_fn(|c| {
            if per_class[c].len() >= MIN_CLASS_VALVES {
                upper_decile(per_class[c].iter().copied())
            } else {
                fleet
            }
        })
    }
}

/// The finite values, sorted.
fn sorted_finite(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// The upper decile of some values: the smallest at or above 90 % of them (`None` when there
/// are none).
fn upper_decile(values: impl Iterator<Item = f64>) -> Option<f64> {
    let v = sorted_finite(values);
    let k = (0.9 * v.len() as f64).ceil() as usize;
    v.get(k.saturating_sub(1)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn household_loop_closes_a_warm_home_down_to_the_minimum() {
        let cfg = HouseholdValves {
            enabled: true,
            ..HouseholdValves::default()
        };
        let mut l = HouseholdLoops::new(&[true, false, true], 100.0);
        let mut t = 0.0;
        for _ in 0..200 {
            l.update(
                &cfg,
                t,
                &[Some(24.0), Some(24.0), Some(17.0)],
                &[Some(24.0), Some(24.0), Some(17.0)],
                &used(3),
            );
            t += cfg.period_s;
        }
        let out = l.outputs();
        assert_eq!(out[0], Some(cfg.min_opening_pct));
        assert_eq!(out[1], None);
        assert_eq!(out[2], Some(100.0));
    }

    #[test]
    fn household_loop_is_rate_limited_and_goes_safe_without_reading() {
        let cfg = HouseholdValves {
            enabled: true,
            lost_reading: LostReading::SafePosition,
            ..HouseholdValves::default()
        };
        let mut l = HouseholdLoops::new(&[true], 50.0);
        l.update(&cfg, 0.0, &[Some(30.0)], &[Some(30.0)], &used(1));
        let step = cfg.max_rate_pct_per_h * cfg.period_s / 3600.0;
        assert!((l.outputs()[0].unwrap() - (50.0 - step)).abs() < 1e-9);
        for i in 1..100 {
            l.update(
                &cfg,
                f64::from(i) * cfg.period_s,
                &[None],
                &[None],
                &used(1),
            );
        }
        assert_eq!(l.outputs()[0], Some(cfg.safe_position_pct));
    }

    #[test]
    fn a_valve_without_reading_is_not_under_control() {
        let cfg = HouseholdValves {
            enabled: true,
            ..HouseholdValves::default()
        };
        let mut l = HouseholdLoops::new(&[true, true, false], 100.0);
        l.update(
            &cfg,
            0.0,
            &[Some(20.0), None, Some(20.0)],
            &[Some(20.0), None, Some(20.0)],
            &used(3),
        );
        assert_eq!(l.controlled(), &[true, false, false]);
    }

    #[test]
    fn the_reading_filter_takes_the_noise_off_the_valve_but_not_the_room() {
        // Two valves on the same noisy reading (a room at target, 0.1 K of noise from a
        // fixed pseudo-random series), one loop with the filter, one without; then the room
        // turns cold for good and both must open the valve wide.
        let plain = HouseholdValves {
            enabled: true,
            filter_s: 0.0,
            ..HouseholdValves::default()
        };
        let filtered = HouseholdValves {
            filter_s: 900.0,
            ..plain.clone()
        };
        let mut loops = [
            HouseholdLoops::new(&[true], 50.0),
            HouseholdLoops::new(&[true], 50.0),
        ];
        let mut travel_pct = [0.0; 2];
        let mut seed: u32 = 12_345;
        let mut t = 0.0;
        for step in 0..600 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let noise_k = (f64::from(seed >> 16) / 65_535.0 - 0.5) * 0.35;
            let room_c = if step < 400 { plain.target_c } else { 16.0 };
            let r = [Some(room_c + noise_k)];
            for (k, cfg) in [&plain, &filtered].into_iter().enumerate() {
                let before = loops[k].outputs()[0].unwrap();
                loops[k].update(cfg, t, &r, &r, &used(1));
                if step < 400 {
                    travel_pct[k] += (loops[k].outputs()[0].unwrap() - before).abs();
                }
            }
            t += plain.period_s;
        }
        assert!(
            travel_pct[1] < 0.5 * travel_pct[0],
            "filtered travel {} % against {} %",
            travel_pct[1],
            travel_pct[0]
        );
        assert_eq!(loops[0].outputs()[0], Some(100.0));
        assert_eq!(loops[1].outputs()[0], Some(100.0));
    }

    #[test]
    fn a_filtered_loop_starts_again_from_the_first_reading_after_a_loss() {
        let cfg = HouseholdValves {
            enabled: true,
            filter_s: 3600.0,
            lost_reading: LostReading::SafePosition,
            ..HouseholdValves::default()
        };
        let mut l = HouseholdLoops::new(&[true], 50.0);
        l.update(&cfg, 0.0, &[Some(30.0)], &[Some(30.0)], &used(1));
        l.update(&cfg, cfg.period_s, &[None], &[None], &used(1));
        // Back at 10 °C: a filter still holding 30 °C would close the valve; starting again
        // from 10 °C it opens.
        let before = l.outputs()[0].unwrap();
        l.update(
            &cfg,
            2.0 * cfg.period_s,
            &[Some(10.0)],
            &[Some(10.0)],
            &used(1),
        );
        assert!(l.outputs()[0].unwrap() >= before, "{:?}", l.outputs());
    }

    /// `n` verdicts, every node used.
    fn used(n: usize) -> Vec<NodeVerdict> {
        vec![NodeVerdict::Used; n]
    }

    #[test]
    fn a_lost_reading_holds_the_learned_position_or_goes_safe() {
        let cfg = HouseholdValves {
            enabled: true,
            ..HouseholdValves::default()
        };
        // Valve 0 sits at 40 % under control (its room at target); valve 1 never reads.
        let mut l = HouseholdLoops::new(&[true, true], 40.0);
        let periods = (cfg.learn_time_h * 3600.0 / 4.0 / cfg.period_s) as usize + 2;
        let mut t = 0.0;
        for _ in 0..periods {
            l.update(
                &cfg,
                t,
                &[Some(cfg.target_c), None],
                &[Some(cfg.target_c), None],
                &used(2),
            );
            t += cfg.period_s;
        }
        assert_eq!(l.learned(&cfg), vec![Some(40.0), None]);
        // Then valve 0 loses its reading too: it holds what it learned, opened by the bias;
        // valve 1, which learned nothing (nothing known about its home), is at its safe
        // position.
        for _ in 0..100 {
            l.update(&cfg, t, &[None, None], &[None, None], &used(2));
            t += cfg.period_s;
        }
        let out = l.outputs();
        assert!(
            (out[0].unwrap() - (40.0 + cfg.lost_open_bias_pct)).abs() < 1e-9,
            "{out:?}"
        );
        assert_eq!(out[1], Some(cfg.safe_position_pct));
        assert_eq!(l.controlled(), &[false, false]);
        // Found stuck: what it learned is forgotten; nothing learned is left, and both go safe.
        let stuck = [NodeVerdict::Rejected(Rejection::Stuck), NodeVerdict::Used];
        for _ in 0..100 {
            l.update(&cfg, t, &[None, None], &[None, None], &stuck);
            t += cfg.period_s;
        }
        assert_eq!(l.learned(&cfg)[0], None);
        assert_eq!(l.outputs(), vec![Some(cfg.safe_position_pct); 2]);
        // The same history with lost_reading = safe_position: both valves go safe.
        let safe = HouseholdValves {
            lost_reading: LostReading::SafePosition,
            ..cfg.clone()
        };
        let mut l = HouseholdLoops::new(&[true, true], 40.0);
        let mut t = 0.0;
        for _ in 0..periods {
            l.update(
                &safe,
                t,
                &[Some(safe.target_c), None],
                &[Some(safe.target_c), None],
                &used(2),
            );
            t += safe.period_s;
        }
        for _ in 0..100 {
            l.update(&safe, t, &[None, None], &[None, None], &used(2));
            t += safe.period_s;
        }
        assert_eq!(l.outputs(), vec![Some(safe.safe_position_pct); 2]);
    }

    #[test]
    fn a_valve_wide_open_on_a_room_that_stays_cold_becomes_a_rogue() {
        let cfg = HouseholdValves {
            enabled: true,
            ..HouseholdValves::default()
        };
        let cold = cfg.target_c - cfg.rogue_k - 0.5;
        let at = cfg.target_c;
        // Node 0 reads cold; nodes 1-3 sit at target with their valves at 40 %.
        let mut l = HouseholdLoops::new(&[true, true, true, true], 40.0);
        l.set_classes(&[3, 3, 3, 3]);
        let rooms = [Some(cold), Some(at), Some(at), Some(at)];
        let periods = (cfg.rogue_after_h * 3600.0 / cfg.period_s) as usize;
        let mut t = 0.0;
        for _ in 0..periods {
            l.update(&cfg, t, &rooms, &rooms, &used(4));
            t += cfg.period_s;
        }
        assert_eq!(l.rogues(), &[false; 4], "not yet");
        assert_eq!(l.controlled(), &[true; 4]);
        assert_eq!(l.outputs()[0], Some(100.0), "wide open on its cold reading");
        // It took half an hour to open from 40 %: an hour more and it has been wide open for
        // longer than `rogue_after_h`.
        for _ in 0..(3600.0 / cfg.period_s) as usize {
            l.update(&cfg, t, &rooms, &rooms, &used(4));
            t += cfg.period_s;
        }
        assert_eq!(l.rogues(), &[true, false, false, false]);
        assert_eq!(
            l.controlled(),
            &[false, true, true, true],
            "a rogue asks for nothing"
        );
        // It is driven as a valve without reading: it forgot what it learned wide open and
        // walks to its class's learned position (40 %), opened by the bias.
        assert_eq!(l.learned(&cfg)[0], None);
        for _ in 0..20 {
            l.update(&cfg, t, &rooms, &rooms, &used(4));
            t += cfg.period_s;
        }
        let out = l.outputs()[0].unwrap();
        assert!(
            (out - (40.0 + cfg.lost_open_bias_pct)).abs() < 1e-6,
            "{out}"
        );
        // Its valve no longer wide open, it stays a rogue while its node reads that cold, its
        // reading validated or not.
        let excluded = [None, Some(at), Some(at), Some(at)];
        l.update(&cfg, t, &excluded, &rooms, &used(4));
        t += cfg.period_s;
        assert!(l.rogues()[0]);
        // Its room reads warm again: it is no longer a rogue, and back under its loop.
        let warm = [Some(at - 0.5), Some(at), Some(at), Some(at)];
        l.update(&cfg, t, &warm, &warm, &used(4));
        assert_eq!(l.rogues(), &[false; 4]);
        assert_eq!(l.controlled(), &[true; 4]);
    }

    #[test]
    fn a_node_left_out_while_its_valve_is_wide_open_becomes_a_rogue_too() {
        // Node 0 reads cold and is an outlier from the start: its valve, off its loop with
        // nothing learned, sits at its safe position (100 %) and the room still reads cold.
        let cfg = HouseholdValves {
            enabled: true,
            ..HouseholdValves::default()
        };
        let at = Some(cfg.target_c);
        let raw = [Some(cfg.target_c - cfg.rogue_k - 0.5), at, at, at];
        let rooms = [None, at, at, at];
        let mut verdicts = used(4);
        verdicts[0] = NodeVerdict::Outlier;
        let mut l = HouseholdLoops::new(&[true; 4], 100.0);
        let periods = (cfg.rogue_after_h * 3600.0 / cfg.period_s) as usize;
        let mut t = 0.0;
        for _ in 0..periods {
            l.update(&cfg, t, &rooms, &raw, &verdicts);
            t += cfg.period_s;
        }
        assert!(!l.rogues()[0], "not yet");
        for _ in 0..2 {
            l.update(&cfg, t, &rooms, &raw, &verdicts);
            t += cfg.period_s;
        }
        assert_eq!(l.rogues(), &[true, false, false, false]);
    }

    #[test]
    fn no_valve_is_a_rogue_while_most_homes_are_cold() {
        // The supply falls short: every room 3 K under target, every valve wide open for a day.
        // Nobody is lying; every valve stays under its loop and asks for heat.
        let cfg = HouseholdValves {
            enabled: true,
            ..HouseholdValves::default()
        };
        let cold = Some(cfg.target_c - cfg.rogue_k - 1.0);
        let rooms = [cold, cold, cold, Some(cfg.target_c)];
        let mut l = HouseholdLoops::new(&[true; 4], 100.0);
        let periods = (2.0 * cfg.rogue_after_h * 3600.0 / cfg.period_s) as usize;
        for k in 0..periods {
            l.update(&cfg, k as f64 * cfg.period_s, &rooms, &rooms, &used(4));
        }
        assert_eq!(l.rogues(), &[false; 4]);
        assert_eq!(l.controlled(), &[true; 4]);
        assert_eq!(&l.outputs()[..3], &[Some(100.0); 3]);
    }

    #[test]
    fn with_trim_and_respond_the_percentile_loop_is_a_floor_below_the_household_target() {
        let text = |hh: bool, vd: bool| {
            let text = format!(
                "[site]\nname = \"t\"\n\
                 [curve]\npoints = [{{ outdoor_c = -20.0, supply_c = 75.0 }}, \
                 {{ outdoor_c = 18.0, supply_c = 25.0 }}]\n\
                 [household_valves]\nenabled = {hh}\n"
            );
            let mut cfg = crate::config::parse_str(&text, None).expect("valid");
            let mut node = crate::config::RoomNode::new("a", "gw", 2);
            node.valve_link = Some("gw".into());
            node.valve_unit_id = Some(3);
            cfg.rooms.nodes = vec![node];
            cfg.valve_demand.enabled = vd;
            cfg
        };
        let cfg = text(true, true);
        let d = crate::control::demand_config(&cfg);
        let hv = &cfg.household_valves;
        assert!((d.target_c - (hv.target_c - hv.percentile_floor_margin_k)).abs() < 1e-12);
        assert!(
            d.min_shift_k.abs() < 1e-12,
            "it only raises: {}",
            d.min_shift_k
        );
        assert!((d.max_shift_k - cfg.demand.max_shift_k).abs() < 1e-12);
        // The floor is the readings' percentile, not the coldest estimate (whose margin for lost
        // flats would heat every home for a flat whose valve already holds its position).
        assert_eq!(cfg.demand.measure, crate::config::DemandMeasure::Coldest);
        assert_eq!(d.measure, crate::config::DemandMeasure::Percentile);
        // Without the valve loops, without trim and respond, or with the floor off: [demand].
        for (hh, vd) in [(false, true), (true, false)] {
            let cfg = text(hh, vd);
            assert_eq!(crate::control::demand_config(&cfg), cfg.demand);
        }
        let mut cfg = cfg.clone();
        cfg.household_valves.percentile_floor = false;
        assert_eq!(crate::control::demand_config(&cfg), cfg.demand);
    }
}
