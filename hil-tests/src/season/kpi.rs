//! Season KPIs (hil-tests/MODEL.md, "Scoring a season"), accumulated step by step from
//! the plant's ground truth: comfort over every apartment, sensed or not.

use heatctl_plant::{Plant, PositionClass};

/// The regulated minimum room temperature, °C.
pub const FLOOR_C: f64 = 18.0;
/// Upper comfort bound of BOPTEST's thermal discomfort, °C.
pub const COMFORT_MAX_C: f64 = 24.0;
/// Overheating threshold of the district-heating KPI, °C.
pub const OVERHEAT_C: f64 = 22.0;
/// Window of the peak-power KPI, s.
pub const PEAK_WINDOW_S: f64 = 900.0;

/// Lowest temperature of the per-apartment histograms, °C.
const HIST_MIN_C: f64 = 0.0;
/// Histogram bin width, K.
const HIST_BIN_K: f64 = 0.05;
/// Number of histogram bins (0..40 °C).
const HIST_BINS: usize = 800;

/// The scorecard of one strategy (the columns of `kpis.csv`, `wall_s` apart).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Kpis {
    /// Heat through the exchanger (primary heat meter), kWh per m² of floor; for the O1 oracle,
    /// the heat its ideal heaters delivered.
    pub energy_kwh_m2: f64,
    /// Electricity of the secondary circulation pump over the season, kWh_el per m² of floor.
    pub pump_kwh_el_m2: f64,
    /// BOPTEST thermal discomfort: per apartment the integral of max(0, 18 - T) + max(0, T - 24),
    /// averaged over apartments, K·h.
    pub tdis_kh: f64,
    /// The worst apartment's integral of max(0, 18 - T), K·h.
    pub tdis_worst_kh: f64,
    /// Share of apartment-hours below 18 °C, %.
    pub cold_hours_pct: f64,
    /// Per apartment the integral of max(0, T - 22), averaged over apartments, K·h.
    pub overheat_kh: f64,
    /// Highest 15-minute mean heat power, W per m².
    pub peak_w_m2: f64,
    /// Flow-weighted mean primary return temperature, °C (NaN without primary flow: O1).
    pub t1_return_c: f64,
    /// Primary valve travel: the integral of |du/dt|, in full strokes (100 % = 1).
    pub valve_travel: f64,
}

/// Supporting figures for people (`kpis.md`), not in the CSV.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Extra {
    /// Heat delivered into the apartments (radiators or ideal heaters), kWh/m².
    pub delivered_kwh_m2: f64,
    /// Trunk pipe losses, kWh/m².
    pub pipe_loss_kwh_m2: f64,
    /// The coldest apartment's 10th-percentile air temperature over the season, °C (the B1
    /// criterion).
    pub coldest_p10_c: f64,
    /// Mean air temperature over all apartments and the season, °C.
    pub mean_room_c: f64,
    /// Primary valve reversals (direction changes of the position).
    pub valve_reversals: u64,
    /// Household valves' travel: the integral of |du/dt| per valve, in full strokes, averaged
    /// over the valves (NaN without household valves).
    pub hh_valve_travel: f64,
    /// Mean |t2_supply - setpoint| while a setpoint was in force, K (NaN when not tracked).
    pub supply_tracking_k: f64,
    /// Primary return K·h above its limit line (62 °C at -17 °C to 45 °C at +8 °C).
    pub return_excess_kh: f64,
    /// Time ratio: mean wall time of one `Controller::step` (process image included) over the
    /// control step (NaN for strategies without the controller).
    pub time_ratio: f64,
}

/// One day of the season for the plots.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Day {
    /// Day index from the season start.
    pub day: usize,
    /// Mean outdoor temperature, °C.
    pub t_out_c: f64,
    /// Lowest hourly air temperature of any apartment, °C.
    pub room_min_c: f64,
    /// 10th percentile of the hourly air temperatures of all apartments, °C.
    pub room_p10_c: f64,
    /// Median of the same, °C.
    pub room_median_c: f64,
    /// 90th percentile of the same, °C.
    pub room_p90_c: f64,
    /// Mean secondary supply setpoint (NaN when the strategy has none), °C.
    pub setpoint_c: f64,
    /// Mean secondary supply temperature at the exchanger, °C.
    pub t2_supply_c: f64,
    /// Cumulative heat (the energy KPI) at the end of the day, kWh/m².
    pub cumulative_kwh_m2: f64,
}

/// One apartment's season (the per-flat CSV, `flats.csv`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flat {
    /// Index in the plant (building-major, then floor, then unit).
    pub index: usize,
    /// Building index (0-based).
    pub building: usize,
    /// Riser index of the secondary network (0-based).
    pub riser: usize,
    /// Floor, 0 = ground.
    pub floor: usize,
    /// Unit on the floor.
    pub unit: usize,
    /// Position class (heat-loss factor).
    pub position: PositionClass,
    /// The flat has a room node in this run's plant.
    pub sensed: bool,
    /// Heat delivered into the flat (radiator or ideal heater) per m² of its floor, kWh/m².
    pub heat_kwh_m2: f64,
    /// The flat's share of the heat delivered into all flats, % (pipe losses are nobody's).
    pub energy_share_pct: f64,
    /// Integral of max(0, 18 - T) over the season, K·h.
    pub below_floor_kh: f64,
    /// 10th-percentile air temperature over the season, °C.
    pub p10_c: f64,
}

/// The name of a position class in the per-flat CSV.
#[must_use]
pub fn position_name(p: PositionClass) -> &'static str {
    match p {
        PositionClass::Top => "top",
        PositionClass::Ground => "ground",
        PositionClass::End => "end",
        PositionClass::Middle => "middle",
    }
}

/// Where the energy KPI is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnergySource {
    /// The primary heat meter (heat through the exchanger).
    Exchanger,
    /// The heat the ideal heaters delivered (O1).
    IdealHeaters,
}

/// Step-by-step accumulator of the KPIs.
#[derive(Debug, Clone)]
pub struct Accumulator {
    source: EnergySource,
    area_m2: f64,
    n: usize,
    start_energy_kwh: f64,
    start_delivered_kwh: f64,
    start_pipe_kwh: f64,
    start_pump_kwh_el: f64,
    last_energy_kwh: f64,
    below_kh: Vec<f64>,
    discomfort_kh: f64,
    overheat_kh: f64,
    cold_h: f64,
    total_h: f64,
    air_sum_ch: f64,
    /// Per-apartment histograms of the step temperatures, `HIST_BINS` a flat; each flat's
    /// current run of steps in one bin (`run_bin`, `run_len`) is added when the bin changes, so
    /// a step touches the big table only when a flat crosses a bin edge (counts are the same).
    hist: Vec<u32>,
    run_bin: Vec<usize>,
    run_len: Vec<u32>,
    window_kwh: f64,
    window_s: f64,
    peak_kw: f64,
    ret_flow_kg: f64,
    ret_temp_kg_c: f64,
    ret_excess_kh: f64,
    last_pos_pct: f64,
    travel_pct: f64,
    last_dir: i8,
    reversals: u64,
    /// Each household valve's position at the last step, % (empty without valves).
    hh_last_pct: Vec<f64>,
    hh_travel_pct: f64,
    track_err_ks: f64,
    track_s: f64,
    // daily
    day: usize,
    day_s: f64,
    day_t_out_cs: f64,
    day_sp_cs: f64,
    day_sp_s: f64,
    day_t2_cs: f64,
    hour_s: f64,
    day_samples: Vec<f64>,
    days: Vec<Day>,
    start_flat_delivered_j: Vec<f64>,
}

fn return_limit_c(t_out_c: f64) -> f64 {
    let x = ((t_out_c + 17.0) / 25.0).clamp(0.0, 1.0);
    62.0 + x * (45.0 - 62.0)
}

fn percentile_sorted(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let k = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[k.min(v.len() - 1)]
}

/// The histogram bin of temperature `t`: bins of `HIST_BIN_K` from `HIST_MIN_C`, the ends
/// holding everything beyond them, a non-finite value in the first.
fn hist_bin(t: f64) -> usize {
    let x = (t - HIST_MIN_C) / HIST_BIN_K;
    if x.is_finite() {
        // `as` truncates toward zero and saturates negatives at 0: the floor for x >= 0, and
        // 0 for x < 0, as floor-then-clamp gives.
        (x as usize).min(HIST_BINS - 1)
    } else {
        0
    }
}

impl Accumulator {
    /// Start accumulating from the plant's present state.
    #[must_use]
    pub fn new(plant: &Plant, source: EnergySource) -> Self {
        let n = plant.apartments().len();
        let tr = plant.truth();
        let energy = match source {
            EnergySource::Exchanger => tr.energy1_kwh,
            EnergySource::IdealHeaters => tr.delivered_energy_kwh,
        };
        Self {
            source,
            area_m2: plant.total_floor_area_m2().max(1.0),
            n,
            start_energy_kwh: energy,
            start_delivered_kwh: tr.delivered_energy_kwh,
            start_pipe_kwh: tr.pipe_loss_kwh,
            start_pump_kwh_el: tr.pump2_energy_kwh_el,
            last_energy_kwh: energy,
            below_kh: vec![0.0; n],
            discomfort_kh: 0.0,
            overheat_kh: 0.0,
            cold_h: 0.0,
            total_h: 0.0,
            air_sum_ch: 0.0,
            hist: vec![0; n * HIST_BINS],
            run_bin: vec![0; n],
            run_len: vec![0; n],
            window_kwh: 0.0,
            window_s: 0.0,
            peak_kw: 0.0,
            ret_flow_kg: 0.0,
            ret_temp_kg_c: 0.0,
            ret_excess_kh: 0.0,
            last_pos_pct: tr.valve1_pos_pct,
            travel_pct: 0.0,
            last_dir: 0,
            reversals: 0,
            hh_last_pct: (0..n)
                .map_while(|i| plant.household_valve(i).map(|(pos, _)| pos))
                .collect(),
            hh_travel_pct: 0.0,
            track_err_ks: 0.0,
            track_s: 0.0,
            day: 0,
            day_s: 0.0,
            day_t_out_cs: 0.0,
            day_sp_cs: 0.0,
            day_sp_s: 0.0,
            day_t2_cs: 0.0,
            hour_s: 0.0,
            day_samples: Vec::with_capacity(24 * n),
            days: Vec::new(),
            start_flat_delivered_j: plant.apartment_heat_delivered_j().to_vec(),
        }
    }

    /// Account for the step of `dt_s` the plant has just taken, with the setpoint that was in
    /// force during it (if the strategy has one).
    pub fn after_step(&mut self, plant: &Plant, dt_s: f64, setpoint_c: Option<f64>) {
        let dt_h = dt_s / 3600.0;
        let air = plant.apartment_air_c();
        let mut below_sum = 0.0;
        let mut above_sum = 0.0;
        let mut over_sum = 0.0;
        let mut cold = 0usize;
        let mut air_sum = 0.0;
        for (i, &t) in air.iter().enumerate() {
            let below = (FLOOR_C - t).max(0.0);
            below_sum += below;
            self.below_kh[i] += below * dt_h;
            above_sum += (t - COMFORT_MAX_C).max(0.0);
            over_sum += (t - OVERHEAT_C).max(0.0);
            if t < FLOOR_C {
                cold += 1;
            }
            air_sum += t;
            let b = hist_bin(t);
            if b == self.run_bin[i] {
                self.run_len[i] += 1;
            } else {
                self.hist[i * HIST_BINS + self.run_bin[i]] += self.run_len[i];
                self.run_bin[i] = b;
                self.run_len[i] = 1;
            }
        }
        let n = self.n.max(1) as f64;
        self.discomfort_kh += (below_sum + above_sum) / n * dt_h;
        self.overheat_kh += over_sum / n * dt_h;
        self.cold_h += cold as f64 * dt_h;
        self.total_h += self.n as f64 * dt_h;
        self.air_sum_ch += air_sum / n * dt_h;

        let tr = plant.truth();
        let energy = match self.source {
            EnergySource::Exchanger => tr.energy1_kwh,
            EnergySource::IdealHeaters => tr.delivered_energy_kwh,
        };
        self.window_kwh += energy - self.last_energy_kwh;
        self.last_energy_kwh = energy;
        self.window_s += dt_s;
        if self.window_s >= PEAK_WINDOW_S - 1e-6 {
            self.peak_kw = self.peak_kw.max(self.window_kwh * 3600.0 / self.window_s);
            self.window_kwh = 0.0;
            self.window_s = 0.0;
        }
        let m = tr.flow1_kg_s * dt_s;
        self.ret_flow_kg += m;
        self.ret_temp_kg_c += m * tr.t1_return_c;
        if tr.flow1_kg_s > 0.0 {
            self.ret_excess_kh += (tr.t1_return_c - return_limit_c(tr.t_out_c)).max(0.0) * dt_h;
        }
        let d = tr.valve1_pos_pct - self.last_pos_pct;
        if d.abs() > 1e-9 {
            self.travel_pct += d.abs();
            let dir = if d > 0.0 { 1 } else { -1 };
            if self.last_dir != 0 && dir != self.last_dir {
                self.reversals += 1;
            }
            self.last_dir = dir;
        }
        self.last_pos_pct = tr.valve1_pos_pct;
        for (i, last) in self.hh_last_pct.iter_mut().enumerate() {
            if let Some((pos, _)) = plant.household_valve(i) {
                self.hh_travel_pct += (pos - *last).abs();
                *last = pos;
            }
        }
        if let Some(sp) = setpoint_c {
            self.track_err_ks += (tr.t2_supply_c - sp).abs() * dt_s;
            self.track_s += dt_s;
            self.day_sp_cs += sp * dt_s;
            self.day_sp_s += dt_s;
        }

        // Daily statistics: hourly samples of every apartment.
        self.day_s += dt_s;
        self.hour_s += dt_s;
        self.day_t_out_cs += tr.t_out_c * dt_s;
        self.day_t2_cs += tr.t2_supply_c * dt_s;
        if self.hour_s >= 3600.0 - 1e-6 {
            self.hour_s = 0.0;
            self.day_samples.extend_from_slice(air);
        }
        if self.day_s >= 86_400.0 - 1e-6 {
            self.close_day(energy);
        }
    }

    fn close_day(&mut self, energy_kwh: f64) {
        self.day_samples.sort_by(f64::total_cmp);
        let s = &self.day_samples;
        self.days.push(Day {
            day: self.day,
            t_out_c: self.day_t_out_cs / self.day_s,
            room_min_c: s.first().copied().unwrap_or(f64::NAN),
            room_p10_c: percentile_sorted(s, 10.0),
            room_median_c: percentile_sorted(s, 50.0),
            room_p90_c: percentile_sorted(s, 90.0),
            setpoint_c: if self.day_sp_s > 0.0 {
                self.day_sp_cs / self.day_sp_s
            } else {
                f64::NAN
            },
            t2_supply_c: self.day_t2_cs / self.day_s,
            cumulative_kwh_m2: (energy_kwh - self.start_energy_kwh) / self.area_m2,
        });
        self.day += 1;
        self.day_s = 0.0;
        self.day_t_out_cs = 0.0;
        self.day_sp_cs = 0.0;
        self.day_sp_s = 0.0;
        self.day_t2_cs = 0.0;
        self.day_samples.clear();
    }

    /// Apartment `i`'s 10th-percentile air temperature so far, °C (NaN before any step).
    #[must_use]
    pub fn flat_p10_c(&self, i: usize) -> f64 {
        let Some(h) = self.hist.get(i * HIST_BINS..(i + 1) * HIST_BINS) else {
            return f64::NAN;
        };
        // The flat's current run is not in the table yet.
        let (run_bin, run_len) = (self.run_bin[i], self.run_len[i]);
        let count = |b: usize, c: u32| if b == run_bin { c + run_len } else { c };
        let total: u64 = h
            .iter()
            .enumerate()
            .map(|(b, &c)| u64::from(count(b, c)))
            .sum();
        if total == 0 {
            return f64::NAN;
        }
        let goal = (total as f64 * 0.1).ceil().max(1.0) as u64;
        let mut acc = 0u64;
        for (b, &c) in h.iter().enumerate() {
            let c = count(b, c);
            acc += u64::from(c);
            if acc >= goal {
                // Interpolate inside the bin.
                let before = acc - u64::from(c);
                let f = (goal - before) as f64 / f64::from(c.max(1));
                return HIST_MIN_C + (b as f64 + f) * HIST_BIN_K;
            }
        }
        f64::NAN
    }

    /// The coldest apartment's 10th-percentile air temperature so far, °C.
    #[must_use]
    pub fn coldest_p10_c(&self) -> f64 {
        (0..self.n)
            .map(|i| self.flat_p10_c(i))
            .filter(|t| t.is_finite())
            .fold(f64::INFINITY, f64::min)
    }

    /// Every apartment's season so far: where it is, whether this plant senses it, its heat,
    /// its K·h below 18 °C and its P10.
    #[must_use]
    pub fn flats(&self, plant: &Plant) -> Vec<Flat> {
        let delivered: Vec<f64> = plant
            .apartment_heat_delivered_j()
            .iter()
            .zip(&self.start_flat_delivered_j)
            .map(|(now, start)| (now - start).max(0.0))
            .collect();
        let total_j: f64 = delivered.iter().sum();
        plant
            .apartments()
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let q_j = delivered.get(i).copied().unwrap_or(0.0);
                Flat {
                    index: i,
                    building: a.building,
                    riser: plant.flat_riser(i),
                    floor: a.floor,
                    unit: a.unit,
                    position: a.position,
                    sensed: a.room_node.is_some(),
                    heat_kwh_m2: q_j / 3.6e6 / a.floor_area_m2.max(1e-9),
                    energy_share_pct: if total_j > 0.0 {
                        100.0 * q_j / total_j
                    } else {
                        0.0
                    },
                    below_floor_kh: self.below_kh.get(i).copied().unwrap_or(0.0),
                    p10_c: self.flat_p10_c(i),
                }
            })
            .collect()
    }

    /// The KPIs, supporting figures and daily rows of the season.
    #[must_use]
    pub fn finish(self, plant: &Plant) -> (Kpis, Extra, Vec<Day>) {
        let tr = plant.truth();
        let energy = self.last_energy_kwh - self.start_energy_kwh;
        let worst = self.below_kh.iter().copied().fold(0.0, f64::max);
        let kpis = Kpis {
            energy_kwh_m2: energy / self.area_m2,
            pump_kwh_el_m2: (tr.pump2_energy_kwh_el - self.start_pump_kwh_el) / self.area_m2,
            tdis_kh: self.discomfort_kh,
            tdis_worst_kh: worst,
            cold_hours_pct: if self.total_h > 0.0 {
                100.0 * self.cold_h / self.total_h
            } else {
                0.0
            },
            overheat_kh: self.overheat_kh,
            peak_w_m2: self.peak_kw * 1000.0 / self.area_m2,
            t1_return_c: if self.ret_flow_kg > 0.0 {
                self.ret_temp_kg_c / self.ret_flow_kg
            } else {
                f64::NAN
            },
            valve_travel: self.travel_pct / 100.0,
        };
        let hours = self.total_h / self.n.max(1) as f64;
        let extra = Extra {
            delivered_kwh_m2: (tr.delivered_energy_kwh - self.start_delivered_kwh) / self.area_m2,
            pipe_loss_kwh_m2: (tr.pipe_loss_kwh - self.start_pipe_kwh) / self.area_m2,
            coldest_p10_c: self.coldest_p10_c(),
            mean_room_c: if hours > 0.0 {
                self.air_sum_ch / hours
            } else {
                f64::NAN
            },
            valve_reversals: self.reversals,
            hh_valve_travel: if self.hh_last_pct.is_empty() {
                f64::NAN
            } else {
                self.hh_travel_pct / 100.0 / self.hh_last_pct.len() as f64
            },
            supply_tracking_k: if self.track_s > 0.0 {
                self.track_err_ks / self.track_s
            } else {
                f64::NAN
            },
            return_excess_kh: self.ret_excess_kh,
            time_ratio: f64::NAN,
        };
        (kpis, extra, self.days)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heatctl_plant::Scenario;

    /// One household valve of the small scenario walks from its initial position to shut, and
    /// back half way: the travel per valve is that stroke over the number of valves; the
    /// primary valve's travel is not mixed in.
    #[test]
    fn household_valve_travel_is_the_mean_stroke_per_valve() {
        let mut sc = Scenario::shipped("small").expect("small scenario");
        sc.household_valves.enabled = true;
        let initial = sc.household_valves.initial_pct;
        let mut plant = Plant::new(&sc).expect("plant");
        let n = plant.apartments().len();
        plant.force_valve1_pct(plant.truth().valve1_pos_pct);
        let mut acc = Accumulator::new(&plant, EnergySource::Exchanger);
        plant.set_household_valve_pct(0, 0.0).expect("valve 0");
        for _ in 0..30 {
            plant.step(60.0);
            acc.after_step(&plant, 60.0, None);
        }
        plant
            .set_household_valve_pct(0, initial / 2.0)
            .expect("valve 0");
        for _ in 0..30 {
            plant.step(60.0);
            acc.after_step(&plant, 60.0, None);
        }
        assert_eq!(plant.household_valve(0).map(|v| v.0), Some(initial / 2.0));
        let (_, extra, _) = acc.finish(&plant);
        let want = 1.5 * initial / 100.0 / n as f64;
        assert!(
            (extra.hh_valve_travel - want).abs() < 1e-9,
            "{} against {want}",
            extra.hh_valve_travel
        );
        // Without household valves there is nothing to report.
        sc.household_valves.enabled = false;
        let plant = Plant::new(&sc).expect("plant");
        let acc = Accumulator::new(&plant, EnergySource::Exchanger);
        assert!(acc.finish(&plant).1.hh_valve_travel.is_nan());
    }
}
