//! What the demo shows: the status of one moment, and the tally behind the summary.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use crate::control::Signal;
pub(crate) use crate::station::COMFORT_FLOOR_C;
use crate::station::StationSnapshot;

/// Linear-interpolated percentile `p` (0..100) of sorted values; None when empty.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let x = (p / 100.0).clamp(0.0, 1.0) * last as f64;
    let i = x.floor() as usize;
    let j = (i + 1).min(last);
    let w = x - i as f64;
    Some(sorted[i] + w * (sorted[j] - sorted[i]))
}

/// Room temperatures of every flat at one moment (the plant's ground truth, sensed or not).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RoomTruth {
    /// 10th percentile, °C.
    pub(crate) p10_c: f64,
    /// Median, °C.
    pub(crate) median_c: f64,
    /// Coldest flat, °C.
    pub(crate) min_c: f64,
    /// Share of flats below [`COMFORT_FLOOR_C`], 0..1.
    pub(crate) below_floor_share: f64,
    /// Number of flats.
    pub(crate) flats: usize,
}

impl RoomTruth {
    /// Statistics of the air temperatures `air_c` (None when there is no flat or a value is not
    /// finite).
    pub(crate) fn of(air_c: &[f64]) -> Option<Self> {
        if air_c.iter().any(|t| !t.is_finite()) {
            return None;
        }
        let mut sorted = air_c.to_vec();
        sorted.sort_by(f64::total_cmp);
        let below = sorted.iter().filter(|&&t| t < COMFORT_FLOOR_C).count();
        Some(Self {
            p10_c: percentile(&sorted, 10.0)?,
            median_c: percentile(&sorted, 50.0)?,
            min_c: *sorted.first()?,
            below_floor_share: below as f64 / sorted.len() as f64,
            flats: sorted.len(),
        })
    }
}

/// One moment of the demo: simulated time, the controller's last cycle, the plant's rooms.
#[derive(Debug, Clone)]
pub(crate) struct Moment {
    /// Local calendar time of the plant, e.g. `Sat 04 Jan 06:00`.
    pub(crate) calendar: String,
    /// Simulated hours since the start.
    pub(crate) sim_h: f64,
    /// The controller's last cycle (None before the first).
    pub(crate) snapshot: Option<Arc<StationSnapshot>>,
    /// Rooms of every flat.
    pub(crate) rooms: Option<RoomTruth>,
}

fn num(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.decimals$}"),
        _ => "--".to_owned(),
    }
}

fn signed(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:+.1}"),
        _ => "--".to_owned(),
    }
}

/// Active alarm numbers of a snapshot, sorted, without repeats.
pub(crate) fn alarm_numbers(snapshot: &StationSnapshot) -> Vec<u16> {
    let mut codes = snapshot.alarm_codes();
    codes.sort_unstable();
    codes.dedup();
    codes
}

impl Moment {
    /// The status as groups of fields, each group short enough for an 80-column line.
    pub(crate) fn groups(&self) -> [String; 4] {
        let snapshot = self.snapshot.as_deref();
        let e = snapshot.map(|s| &s.explanation);
        let t2 = snapshot.and_then(|s| s.valid_value(Signal::T2Supply));
        let valve = snapshot.and_then(|s| s.commands.valve1_pos_pct);
        let limiter = e
            .and_then(|e| e.active_limiter)
            .map_or("none", |l| l.name());
        let alarms = match snapshot.map(alarm_numbers) {
            Some(c) if !c.is_empty() => c.iter().map(u16::to_string).collect::<Vec<_>>().join(","),
            Some(_) => "none".to_owned(),
            None => "--".to_owned(),
        };
        let r = self.rooms;
        [
            format!("{} (simulated, {:.1} h in)", self.calendar, self.sim_h),
            format!(
                "outdoor {} °C  damped {} °C  curve {} °C  demand shift {} K",
                num(e.and_then(|e| e.outdoor_c), 1),
                num(e.and_then(|e| e.damped_outdoor_c), 1),
                num(e.map(|e| e.curve_c), 1),
                signed(e.map(|e| e.demand_shift_k)),
            ),
            format!(
                "setpoint {} °C  secondary supply {} °C  valve {} %",
                num(e.and_then(|e| e.setpoint_c), 1),
                num(t2, 1),
                num(valve, 1),
            ),
            format!(
                "rooms P10 {} °C  median {} °C  below 18 °C {} %  limiter {limiter}  alarms {alarms}",
                num(r.map(|r| r.p10_c), 1),
                num(r.map(|r| r.median_c), 1),
                num(r.map(|r| 100.0 * r.below_floor_share), 1),
            ),
        ]
    }

    /// The status as one line.
    pub(crate) fn line(&self) -> String {
        self.groups().join("  |  ")
    }
}

/// Everything the summary reports, accumulated over the run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    /// Simulated time of the first and the last sample, s.
    first_s: Option<f64>,
    last_s: f64,
    /// Primary heat energy at the first and last sample, kWh.
    energy_start_kwh: f64,
    energy_end_kwh: f64,
    /// Heat delivered into the flats at the first and last sample, kWh.
    rooms_energy_start_kwh: f64,
    rooms_energy_end_kwh: f64,
    /// Time integrals (s-weighted) of P10, median, outdoor, share below the floor.
    p10_integral: f64,
    median_integral: f64,
    outdoor_integral: f64,
    below_integral: f64,
    integrated_s: f64,
    /// Coldest flat seen, °C, over the whole run and after the first hour (the start state
    /// is set off on purpose).
    min_room_c: f64,
    min_room_settled_c: f64,
    /// Flats.
    flats: usize,
    /// Sum of |change| of the primary valve position, %.
    valve_travel_pct: f64,
    last_valve_pct: Option<f64>,
    /// Alarms seen: code, text and the simulated hour first seen.
    alarms: BTreeMap<u16, (&'static str, f64)>,
    /// Sum of |t2 - setpoint| over the cycles sampled after the first hour, and their count.
    tracking_sum_k: f64,
    tracking_n: u32,
}

/// One sample of the plant's ground truth.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlantSample {
    /// Simulated time, s.
    pub(crate) time_s: f64,
    /// Outdoor temperature, °C.
    pub(crate) t_out_c: f64,
    /// Cumulative primary heat, kWh.
    pub(crate) primary_energy_kwh: f64,
    /// Cumulative heat delivered into the flats, kWh.
    pub(crate) delivered_energy_kwh: f64,
    /// Primary valve position, %.
    pub(crate) valve1_pos_pct: f64,
}

impl Tally {
    /// Add a sample: the plant's truth, its rooms, and the controller's last snapshot.
    pub(crate) fn add(
        &mut self,
        plant: PlantSample,
        rooms: Option<RoomTruth>,
        snapshot: Option<&StationSnapshot>,
    ) {
        let Some(first_s) = self.first_s else {
            self.first_s = Some(plant.time_s);
            self.last_s = plant.time_s;
            self.energy_start_kwh = plant.primary_energy_kwh;
            self.energy_end_kwh = plant.primary_energy_kwh;
            self.rooms_energy_start_kwh = plant.delivered_energy_kwh;
            self.rooms_energy_end_kwh = plant.delivered_energy_kwh;
            self.min_room_c = f64::INFINITY;
            self.min_room_settled_c = f64::INFINITY;
            self.last_valve_pct = Some(plant.valve1_pos_pct);
            self.add_rooms_and_snapshot(plant, rooms, snapshot, 0.0);
            return;
        };
        let dt_s = (plant.time_s - self.last_s).max(0.0);
        self.last_s = plant.time_s;
        self.energy_end_kwh = plant.primary_energy_kwh;
        self.rooms_energy_end_kwh = plant.delivered_energy_kwh;
        if let Some(v) = self.last_valve_pct {
            self.valve_travel_pct += (plant.valve1_pos_pct - v).abs();
        }
        self.last_valve_pct = Some(plant.valve1_pos_pct);
        self.outdoor_integral += plant.t_out_c * dt_s;
        let settled = plant.time_s - first_s >= 3600.0;
        self.add_rooms_and_snapshot(plant, rooms, snapshot, dt_s);
        if settled && let Some(r) = rooms {
            self.min_room_settled_c = self.min_room_settled_c.min(r.min_c);
        }
        if settled
            && let Some(s) = snapshot
            && let Some(sp) = s.explanation.setpoint_c
            && let Some(t2) = s.valid_value(Signal::T2Supply)
        {
            self.tracking_sum_k += (t2 - sp).abs();
            self.tracking_n += 1;
        }
    }

    fn add_rooms_and_snapshot(
        &mut self,
        plant: PlantSample,
        rooms: Option<RoomTruth>,
        snapshot: Option<&StationSnapshot>,
        dt_s: f64,
    ) {
        if let Some(r) = rooms {
            self.p10_integral += r.p10_c * dt_s;
            self.median_integral += r.median_c * dt_s;
            self.below_integral += r.below_floor_share * dt_s;
            self.integrated_s += dt_s;
            self.min_room_c = self.min_room_c.min(r.min_c);
            self.flats = r.flats;
        }
        if let Some(s) = snapshot {
            for a in &s.alarms {
                self.alarms
                    .entry(a.code.number())
                    .or_insert((a.code.text(), plant.time_s / 3600.0));
            }
        }
    }

    /// Simulated hours covered.
    pub(crate) fn sim_h(&self) -> f64 {
        self.first_s.map_or(0.0, |f| (self.last_s - f) / 3600.0)
    }

    /// Heat through the exchanger (primary side), kWh.
    pub(crate) fn heat_kwh(&self) -> f64 {
        self.energy_end_kwh - self.energy_start_kwh
    }

    /// Time mean of a time integral, when any time was integrated.
    fn mean(&self, integral: f64) -> Option<f64> {
        (self.integrated_s > 0.0).then(|| integral / self.integrated_s)
    }

    /// Time-mean room P10, °C.
    pub(crate) fn p10_mean_c(&self) -> Option<f64> {
        self.mean(self.p10_integral)
    }

    /// Time-mean room median, °C.
    pub(crate) fn median_mean_c(&self) -> Option<f64> {
        self.mean(self.median_integral)
    }

    /// Share of apartment-hours below the floor, %.
    pub(crate) fn below_floor_pct(&self) -> Option<f64> {
        self.mean(self.below_integral).map(|s| 100.0 * s)
    }

    /// Total valve travel, % (100 % = one full stroke).
    pub(crate) fn valve_travel_pct(&self) -> f64 {
        self.valve_travel_pct
    }

    /// Alarm numbers seen.
    #[cfg(test)]
    pub(crate) fn alarm_numbers(&self) -> Vec<u16> {
        self.alarms.keys().copied().collect()
    }

    /// The summary, as lines.
    pub(crate) fn summary(&self, floor_area_m2: f64, wall_s: f64, ended_by: &str) -> Vec<String> {
        let sim_h = self.sim_h();
        let heat = self.heat_kwh();
        let mut out = Vec::new();
        out.push(format!(
            "heatctl demo summary: {sim_h:.1} simulated hours in {wall_s:.0} s wall time ({ended_by})"
        ));
        let outdoor = (sim_h > 0.0).then(|| self.outdoor_integral / (sim_h * 3600.0));
        out.push(format!("  outdoor             mean {} °C", num(outdoor, 1)));
        let per_m2 = (floor_area_m2 > 0.0).then(|| heat / floor_area_m2);
        let mean_kw = (sim_h > 0.0).then(|| heat / sim_h);
        out.push(format!(
            "  heat delivered      {heat:.0} kWh through the exchanger = {} kWh/m² ({floor_area_m2:.0} m²), mean {} kW; {:.0} kWh into the flats",
            num(per_m2, 3),
            num(mean_kw, 0),
            self.rooms_energy_end_kwh - self.rooms_energy_start_kwh,
        ));
        out.push(format!(
            "  rooms, all {} flats  P10 {} °C  median {} °C (time means)  min {} °C (coldest flat, any time; {} after the first hour)",
            self.flats,
            num(self.p10_mean_c(), 2),
            num(self.median_mean_c(), 2),
            num(self.min_room_c.is_finite().then_some(self.min_room_c), 2),
            num(
                self.min_room_settled_c
                    .is_finite()
                    .then_some(self.min_room_settled_c),
                2
            ),
        ));
        out.push(format!(
            "  below 18 °C         {} % of apartment-hours",
            num(self.below_floor_pct(), 2)
        ));
        let tracking =
            (self.tracking_n > 0).then(|| self.tracking_sum_k / f64::from(self.tracking_n));
        out.push(format!(
            "  secondary supply    mean |t2 - setpoint| {} K (after the first hour)",
            num(tracking, 2)
        ));
        out.push(format!(
            "  valve travel        {:.0} % ({:.1} full strokes)",
            self.valve_travel_pct(),
            self.valve_travel_pct() / 100.0
        ));
        if self.alarms.is_empty() {
            out.push("  alarms seen         none".to_owned());
        } else {
            let mut s = String::from("  alarms seen        ");
            for (code, (text, at_h)) in &self.alarms {
                let _ = write!(s, " {code} ({text}, first at {at_h:.1} h);");
            }
            s.pop();
            out.push(s);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{Alarm, AlarmCode, Explanation, Sample};
    use crate::station::Measurement;

    fn snapshot(setpoint_c: f64, t2_c: f64, alarms: Vec<AlarmCode>) -> Arc<StationSnapshot> {
        let mut s = StationSnapshot::default();
        s.measurements[Signal::T2Supply.index()] =
            Measurement::of(Signal::T2Supply, Some(Sample::fresh(t2_c)));
        s.measurements[Signal::Valve1PosPct.index()] =
            Measurement::of(Signal::Valve1PosPct, Some(Sample::fresh(40.0)));
        s.commands.valve1_cmd_pct = 40.0;
        s.commands.valve1_pos_pct = Some(40.0);
        s.alarms = alarms
            .into_iter()
            .map(|code| Alarm { code, since_s: 0.0 })
            .collect();
        s.explanation = Explanation {
            setpoint_c: Some(setpoint_c),
            outdoor_c: Some(-12.34),
            demand_shift_k: 1.26,
            curve_c: 58.0,
            ..Explanation::default()
        };
        Arc::new(s)
    }

    fn sample(time_s: f64, energy_kwh: f64, valve_pct: f64) -> PlantSample {
        PlantSample {
            time_s,
            t_out_c: -10.0,
            primary_energy_kwh: energy_kwh,
            delivered_energy_kwh: energy_kwh * 0.9,
            valve1_pos_pct: valve_pct,
        }
    }

    #[test]
    fn room_statistics() {
        assert_eq!(percentile(&[], 10.0), None);
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 50.0), Some(2.0));
        assert_eq!(percentile(&[0.0, 10.0], 10.0), Some(1.0));
        let r = RoomTruth::of(&[21.0, 17.0, 19.0, 20.0, 17.9]).unwrap();
        assert_eq!(r.min_c, 17.0);
        assert_eq!(r.median_c, 19.0);
        assert!((r.below_floor_share - 0.4).abs() < 1e-12);
        assert!(r.p10_c > 17.0 && r.p10_c < 17.9);
        assert!(RoomTruth::of(&[]).is_none());
        assert!(RoomTruth::of(&[20.0, f64::NAN]).is_none());
    }

    #[test]
    fn status_shows_every_field() {
        let m = Moment {
            calendar: "Sat 04 Jan 06:00".into(),
            sim_h: 6.0,
            snapshot: Some(snapshot(59.5, 59.26, vec![AlarmCode::DeviceCommLost])),
            rooms: RoomTruth::of(&[17.0, 19.0, 21.0]),
        };
        let line = m.line();
        for want in [
            "Sat 04 Jan 06:00",
            "outdoor -12.3 °C",
            "curve 58.0 °C",
            "demand shift +1.3 K",
            "setpoint 59.5 °C",
            "secondary supply 59.3 °C",
            "valve 40.0 %",
            "median 19.0 °C",
            "below 18 °C 33.3 %",
            "limiter none",
            "alarms 501",
        ] {
            assert!(line.contains(want), "{want:?} not in {line}");
        }
        let empty = Moment {
            snapshot: None,
            rooms: None,
            ..m
        };
        assert!(empty.line().contains("secondary supply -- °C"));
        assert!(empty.groups().iter().all(|g| g.chars().count() <= 80));
    }

    #[test]
    fn tally_integrates_over_simulated_time() {
        let mut t = Tally::default();
        let cold = RoomTruth::of(&[17.0, 19.0]);
        let warm = RoomTruth::of(&[19.0, 21.0]);
        t.add(sample(0.0, 100.0, 20.0), cold, None);
        // Half an hour with half the flats below 18 °C, then three and a half hours with none.
        t.add(
            sample(1800.0, 150.0, 30.0),
            cold,
            Some(&snapshot(60.0, 59.0, vec![])),
        );
        t.add(
            sample(4.0 * 3600.0, 300.0, 25.0),
            warm,
            Some(&snapshot(60.0, 60.5, vec![AlarmCode::DeviceCommLost])),
        );
        assert!((t.sim_h() - 4.0).abs() < 1e-12);
        assert!((t.heat_kwh() - 200.0).abs() < 1e-9);
        assert!((t.below_floor_pct().unwrap() - 6.25).abs() < 1e-9);
        assert_eq!(t.valve_travel_pct(), 15.0);
        assert_eq!(t.alarm_numbers(), vec![501]);
        let text = t.summary(100.0, 10.0, "--hours").join("\n");
        assert!(text.contains("4.0 simulated hours"), "{text}");
        assert!(
            text.contains("200 kWh through the exchanger = 2.000 kWh/m²"),
            "{text}"
        );
        assert!(text.contains("min 17.00 °C"), "{text}");
        assert!(text.contains("19.00 after the first hour"), "{text}");
        assert!(text.contains("6.25 % of apartment-hours"), "{text}");
        // Only the sample after the first hour counts for tracking.
        assert!(text.contains("mean |t2 - setpoint| 0.50 K"), "{text}");
        assert!(text.contains("501 ("), "{text}");
    }
}
