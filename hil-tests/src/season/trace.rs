//! Per-flat traces (`season --trace-flats`): for a few chosen apartments, what the season did to
//! them at a fixed interval: the outdoor temperature, the supply setpoint and the secondary
//! supply, the apartment's true air temperature, its room node's reading as the plant publishes
//! it (a fault variant's lie is added later, in the field layer, and is not in it) and its
//! household valve's position. One CSV per run,
//! `trace-<label>.csv`, long format: one row per sample and traced apartment.
//!
//! The tool for telling why a flat went cold: a dip with the valve wide open and the supply at
//! its floor is the supply's; a dip with the valve half open is the valve loop's.

use std::fmt::Write as _;

use heatctl_plant::Plant;

/// What to trace: which apartments, how often.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSpec {
    /// Apartment indices (as in `flats.csv`); indices past the plant's last apartment are
    /// left out.
    pub flats: Vec<usize>,
    /// Sample interval, s.
    pub interval_s: f64,
}

/// One sample of one apartment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Season time, h.
    pub time_h: f64,
    /// Apartment index.
    pub flat: usize,
    /// Outdoor temperature, °C.
    pub t_out_c: f64,
    /// Supply setpoint the step asked for, °C (`None`: heating off, or a strategy without one).
    pub setpoint_c: Option<f64>,
    /// Secondary supply at the station, °C.
    pub t2_supply_c: f64,
    /// The apartment's true air temperature, °C.
    pub air_c: f64,
    /// Its room node's reading, °C (`None`: no node, or no reading).
    pub reading_c: Option<f64>,
    /// Its household valve's position, % (`None`: no valve).
    pub valve_pct: Option<f64>,
}

/// A run's trace.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    flats: Vec<usize>,
    /// Per traced apartment: its room node's index.
    nodes: Vec<Option<usize>>,
    /// Whether the plant has household valves.
    valves: bool,
    interval_s: f64,
    next_s: f64,
    samples: Vec<Sample>,
}

impl Trace {
    /// A trace of `spec` on `plant` (the nodes are looked up once).
    #[must_use]
    pub fn new(spec: &TraceSpec, plant: &Plant) -> Self {
        let flats: Vec<usize> = spec
            .flats
            .iter()
            .copied()
            .filter(|&a| a < plant.apartments().len())
            .collect();
        let mut node_of = vec![None; plant.apartments().len()];
        for k in 0..plant.room_node_count() {
            if let Some(r) = plant.room_node(k) {
                node_of[r.apartment] = Some(k);
            }
        }
        Self {
            nodes: flats.iter().map(|&a| node_of[a]).collect(),
            flats,
            valves: plant.scenario().household_valves.enabled,
            interval_s: spec.interval_s.max(1.0),
            next_s: 0.0,
            samples: Vec::new(),
        }
    }

    /// Record a sample of every traced apartment if the interval has passed.
    pub fn sample(&mut self, plant: &Plant, setpoint_c: Option<f64>) {
        let t = plant.time_s();
        if t + 1e-6 < self.next_s {
            return;
        }
        self.next_s = t + self.interval_s;
        let truth = plant.truth();
        let air = plant.apartment_air_c();
        for (&a, &node) in self.flats.iter().zip(&self.nodes) {
            self.samples.push(Sample {
                time_h: t / 3600.0,
                flat: a,
                t_out_c: truth.t_out_c,
                setpoint_c,
                t2_supply_c: truth.t2_supply_c,
                air_c: air[a],
                reading_c: node
                    .and_then(|k| plant.room_node(k))
                    .and_then(|r| r.temperature_c),
                valve_pct: plant
                    .household_valve(a)
                    .filter(|_| self.valves)
                    .map(|(pos, _)| pos),
            });
        }
    }

    /// The samples, in time order.
    #[must_use]
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// The trace as CSV (header `time_h,flat,t_out_c,setpoint_c,t2_supply_c,air_c,reading_c,
    /// valve_pct`; an empty field where a value is missing).
    #[must_use]
    pub fn csv(&self) -> String {
        let mut out =
            String::from("time_h,flat,t_out_c,setpoint_c,t2_supply_c,air_c,reading_c,valve_pct\n");
        let opt = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x:.2}"));
        for s in &self.samples {
            let _ = writeln!(
                out,
                "{:.3},{},{:.2},{},{:.2},{:.3},{},{}",
                s.time_h,
                s.flat,
                s.t_out_c,
                opt(s.setpoint_c),
                s.t2_supply_c,
                s.air_c,
                opt(s.reading_c),
                opt(s.valve_pct)
            );
        }
        out
    }
}
