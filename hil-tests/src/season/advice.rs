//! The "technician" of the `B1+advice` strategy: while B1's curve runs, the season keeps the
//! same hourly history heatctl's recorder keeps (mean outdoor temperature, mean t2 supply, and
//! per sensed flat its mean room temperature), from the plant's truth at the flats that have a
//! room node; after [`APPLY_AFTER_DAYS`] it asks heatctl's balancing estimator for advice and
//! sets the plant's static balancing valves as advised, once.

use std::collections::BTreeMap;

use heatctl::balance::recorder::Mean;
use heatctl::balance::{self, Advice, HourRecord, KvAdvice, RoomHour};
use heatctl::config::{DesignCurve, History};
use heatctl_plant::{Plant, Scenario, naming};

/// Days of history before the technician acts.
pub const APPLY_AFTER_DAYS: f64 = 21.0;
/// kv multiplier the technician uses for "open fully" (the plant's valves have no stated kvs;
/// doubling kv is what a fully opened valve preset from mid-travel typically gives).
pub const OPEN_FULLY_KV_RATIO: f64 = 2.0;

/// The riser label of riser `riser` of the plant (`b01-r1` for the first riser of building 0).
#[must_use]
pub fn riser_label(plant: &Plant, riser: usize) -> String {
    let building = plant.riser_building(riser);
    // Risers are numbered along the plant; count within the building.
    let within = (0..riser)
        .filter(|&r| plant.riser_building(r) == building)
        .count();
    format!("{}-r{}", naming::building_tag(building), within + 1)
}

/// The advice's settings for a scenario: the [`History`] defaults with the scenario's design
/// point (the technician knows the radiators' design) and B1's comfort floor as the target.
#[must_use]
pub fn history_settings(scenario: &Scenario, target_c: f64) -> History {
    let sub = &scenario.substation;
    History {
        design: Some(DesignCurve {
            design_outdoor_c: sub.design_outdoor_c,
            design_supply_c: sub.t2_supply_design_c,
            design_return_c: sub.t2_return_design_c,
            room_c: sub.design_room_c,
            radiator_exponent: History::DEFAULT_DESIGN.radiator_exponent,
        }),
        target_c,
        ..History::default()
    }
}

/// What the technician did.
#[derive(Debug, Clone)]
pub struct Applied {
    /// Season day it was done.
    pub day: f64,
    /// The advice.
    pub advice: Advice,
    /// (riser label, kv ratio applied, flats changed).
    pub changes: Vec<(String, f64, usize)>,
}

impl Applied {
    /// One line for the report's notes.
    #[must_use]
    pub fn note(&self) -> String {
        let changes: Vec<String> = self
            .changes
            .iter()
            .map(|(r, k, n)| format!("{r} kv x{k:.2} ({n} flats)"))
            .collect();
        format!(
            "B1+advice: day {:.0}: {} {}",
            self.day,
            if changes.is_empty() {
                "no change applied.".to_string()
            } else {
                format!("applied {}.", changes.join(", "))
            },
            self.advice.summary()
        )
    }
}

/// The hourly history and the one-off application of the advice.
pub struct Technician {
    history: History,
    hour: Option<i64>,
    samples: u32,
    outdoor: Mean,
    supply: Mean,
    rooms: BTreeMap<usize, Mean>,
    hours: Vec<HourRecord>,
    /// What was applied (None: not yet).
    pub applied: Option<Applied>,
}

impl Technician {
    /// A technician with these settings.
    #[must_use]
    pub fn new(history: History) -> Self {
        Self {
            history,
            hour: None,
            samples: 0,
            outdoor: Mean::default(),
            supply: Mean::default(),
            rooms: BTreeMap::new(),
            hours: Vec::new(),
            applied: None,
        }
    }

    /// Hours kept so far.
    #[must_use]
    pub fn hours(&self) -> &[HourRecord] {
        &self.hours
    }

    /// Take one sample of the plant at clock time `now_unix_s` (the season's control step);
    /// a finished hour is kept.
    pub fn sample(&mut self, plant: &Plant, now_unix_s: f64) {
        let hour = (now_unix_s / 3600.0).floor() as i64 * 3600;
        if self.hour.is_some_and(|h| h != hour) {
            self.finish_hour(plant);
        }
        self.hour = Some(hour);
        self.samples += 1;
        let truth = plant.truth();
        self.outdoor.add(Some(truth.t_out_c));
        self.supply.add(Some(truth.t2_supply_c));
        let air = plant.apartment_air_c();
        for k in 0..plant.room_node_count() {
            if let Some(r) = plant.room_node(k)
                && let Some(&t) = air.get(r.apartment)
            {
                self.rooms.entry(r.apartment).or_default().add(Some(t));
            }
        }
    }

    fn finish_hour(&mut self, plant: &Plant) {
        let Some(hour) = self.hour else { return };
        let apartments = plant.apartments();
        let rooms = self
            .rooms
            .iter()
            .filter_map(|(&a, sum)| {
                let info = apartments.get(a)?;
                Some(RoomHour {
                    id: naming::room_node_id(info.building, info.floor, info.unit),
                    building: naming::building_tag(info.building),
                    position: naming::position(info.position, info.is_end_unit)
                        .name()
                        .to_owned(),
                    riser: Some(riser_label(plant, plant.flat_riser(a))),
                    room_c: sum.get()?,
                    valve_pct: None,
                    samples: sum.count(),
                })
            })
            .collect();
        self.hours.push(HourRecord {
            hour_unix_s: hour,
            outdoor_c: self.outdoor.get(),
            t2_supply_c: self.supply.get(),
            samples: self.samples,
            rooms,
        });
        self.samples = 0;
        self.outdoor = Mean::default();
        self.supply = Mean::default();
        self.rooms.clear();
    }

    /// Whether the advice is due at season time `season_s`.
    #[must_use]
    pub fn due(&self, season_s: f64) -> bool {
        self.applied.is_none() && season_s >= APPLY_AFTER_DAYS * 86_400.0
    }

    /// Ask for advice on the history so far and set the plant's balancing valves as advised.
    pub fn apply(&mut self, plant: &mut Plant, season_s: f64) -> &Applied {
        let labels: Vec<String> = (0..plant.riser_count())
            .map(|r| riser_label(plant, r))
            .collect();
        // The technician has the network drawing: each riser's length of main from the
        // substation (its building's connection along the mains).
        let mut settings = balance::Settings::of(&self.history, None);
        let h = &plant.scenario().hydraulics;
        settings.mains_m = labels
            .iter()
            .enumerate()
            .map(|(r, label)| {
                let b = plant.riser_building(r) as f64;
                (label.clone(), h.mains_first_m + b * h.mains_spacing_m)
            })
            .collect();
        let advice = balance::estimate(&self.hours, &settings, &|_: &str| None);
        let mut changes = Vec::new();
        for g in &advice.groups {
            let ratio = match g.kv {
                KvAdvice::NoChange => continue,
                KvAdvice::Change { ratio } => ratio,
                KvAdvice::OpenFully => OPEN_FULLY_KV_RATIO,
            };
            let Some(riser) = g
                .riser
                .as_ref()
                .and_then(|r| labels.iter().position(|l| l == r))
            else {
                continue;
            };
            let flats: Vec<usize> = (0..plant.apartments().len())
                .filter(|&a| plant.flat_riser(a) == riser)
                .collect();
            for &a in &flats {
                let kv = plant.balancing_kv()[a] * ratio;
                plant.set_balancing_kv(a, kv);
            }
            changes.push((labels[riser].clone(), ratio, flats.len()));
        }
        self.applied.insert(Applied {
            day: season_s / 86_400.0,
            advice,
            changes,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use heatctl::control::curve::HeatingCurve;

    use super::*;

    /// Each riser's flow relative to its flats' design flow (at design pump speed), divided by
    /// the network's median flat: the truth the advice estimates.
    fn riser_flow_shares(plant: &Plant) -> Vec<f64> {
        let q = plant.hydraulics().flat_flows_m3h_at_design_speed();
        let share: Vec<f64> = plant
            .apartments()
            .iter()
            .map(|a| q[a.index] / (a.nominal_flow_kg_s * 3.6))
            .collect();
        let mut sorted = share.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        (0..plant.riser_count())
            .map(|r| {
                let mine: Vec<f64> = (0..share.len())
                    .filter(|&a| plant.flat_riser(a) == r)
                    .map(|a| share[a])
                    .collect();
                mine.iter().sum::<f64>() / mine.len() as f64 / median
            })
            .collect()
    }

    fn ranks(xs: &[f64]) -> Vec<f64> {
        let mut idx: Vec<usize> = (0..xs.len()).collect();
        idx.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
        let mut r = vec![0.0; xs.len()];
        for (rank, &i) in idx.iter().enumerate() {
            r[i] = rank as f64;
        }
        r
    }

    fn spearman(a: &[f64], b: &[f64]) -> f64 {
        let (ra, rb) = (ranks(a), ranks(b));
        let n = a.len() as f64;
        let d2: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - y).powi(2)).sum();
        1.0 - 6.0 * d2 / (n * (n * n - 1.0))
    }

    fn spread(xs: &[f64]) -> f64 {
        let m = xs.iter().sum::<f64>() / xs.len() as f64;
        (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / xs.len() as f64).sqrt()
    }

    /// Three weeks of the default (unbalanced) scenario on the design curve: every riser the
    /// advice changes is changed the way the network's true flows say (throttled: more than the
    /// median share; opened: less), the estimate ranks the risers with the truth (alone and
    /// pooled along the mains), and the risers' flow shares end up more even. The figures are
    /// printed (hil-tests/SEASON.md quotes them).
    #[test]
    fn the_advice_changes_risers_in_the_direction_the_true_flows_say() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let sc = Scenario::load(&root.join("scenarios/default.toml"), None).expect("scenario");
        let text = std::fs::read_to_string(root.join("../config/season.toml")).expect("config");
        let cfg = heatctl::config::parse_str(&text, None).expect("config");
        let curve = HeatingCurve::new(&cfg.curve);
        let mut plant = Plant::new(&sc).expect("plant");
        let mut tech = Technician::new(history_settings(&sc, 18.0));
        let dt = 60.0;
        while !tech.due(plant.time_s()) {
            let now = super::super::SEASON_START_UNIX_S + plant.time_s();
            let t_out = plant.truth().t_out_c;
            plant.set_ideal_supply_c(Some(curve.supply_c(t_out, 0.0)));
            tech.sample(&plant, now);
            plant.step(dt);
        }
        let before = riser_flow_shares(&plant);
        let season_s = plant.time_s();
        let applied = tech.apply(&mut plant, season_s).clone();
        let after = riser_flow_shares(&plant);
        let advice = &applied.advice;
        assert!(advice.refused.is_none(), "{:?}", advice.refused);
        assert_eq!(
            advice.groups.len(),
            plant.riser_count(),
            "days {} hours {}/{} flats {} (too few hours {})",
            advice.days_usable,
            advice.hours_usable,
            advice.hours_total,
            advice.flats_used,
            advice.flats_too_few_hours
        );
        let estimated: Vec<f64> = advice.groups.iter().map(|g| g.flow_ratio).collect();
        let own: Vec<f64> = advice.groups.iter().map(|g| g.own_flow_ratio).collect();
        let need_truth: Vec<f64> = before.iter().map(|s| 1.0 / s).collect();
        let rho = spearman(&estimated, &need_truth);
        let rho_own = spearman(&own, &need_truth);
        eprintln!(
            "true shares {before:.3?}\nestimated need {estimated:.3?}\nown {own:.3?}\n\
             rho {rho:.2} (own {rho_own:.2})\nafter {after:.3?}\n{}",
            applied.note()
        );
        assert!(
            advice.groups.iter().all(|g| g.pooled),
            "the risers are pooled"
        );
        // Each riser alone already ranks well; pooled along the mains, better still.
        assert!(
            rho_own > 0.6,
            "rank correlation of the own estimates {rho_own}"
        );
        assert!(rho > 0.8, "rank correlation {rho}");
        assert!(
            !applied.changes.is_empty(),
            "the unbalanced network gets advice"
        );
        let mut sorted = before.clone();
        sorted.sort_by(f64::total_cmp);
        let median = 0.5 * (sorted[4] + sorted[5]);
        for (label, ratio, _) in &applied.changes {
            let r = (0..plant.riser_count())
                .find(|&r| &riser_label(&plant, r) == label)
                .expect("riser");
            assert_eq!(
                *ratio < 1.0,
                before[r] > median,
                "{label}: kv x{ratio:.2} but its true share is {:.3} (median {median:.3})",
                before[r]
            );
        }
        eprintln!(
            "spread of the risers' shares {:.3} -> {:.3}",
            spread(&before),
            spread(&after)
        );
        assert!(
            spread(&after) < spread(&before),
            "the advice evens the risers' shares"
        );
    }
}
