//! The field layer of the in-process season: heatctl's process image built from what the plant's
//! devices would deliver (sensor faults, room nodes with their bias, noise, 10-minute refresh and
//! lost reports), with honest ages; and the room-node faults of the robustness variants.

use heatctl::config::{Position, RoomNode};
use heatctl::control::{ProcessImage, Sample, Signal};
use heatctl_plant::{Plant, PositionClass};

/// A robustness variant: a share of the room nodes misbehaves for the whole season.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// 10 % of the nodes dead: they never answer (the field layer marks them invalid).
    Dead10,
    /// 5 % of the nodes stuck: they keep answering with their first reading.
    Stuck5,
    /// 1 % of the nodes lying: they answer 30 °C (with 0.1 K of jitter, so no stuck check
    /// catches them).
    Lying1,
}

impl Variant {
    /// Every variant, in report order.
    pub const ALL: [Variant; 3] = [Variant::Dead10, Variant::Stuck5, Variant::Lying1];

    /// Suffix of the strategy name in `variants.csv` (`heatctl_dead10`, ...).
    #[must_use]
    pub fn suffix(self) -> &'static str {
        match self {
            Variant::Dead10 => "dead10",
            Variant::Stuck5 => "stuck5",
            Variant::Lying1 => "lying1",
        }
    }

    /// Share of the nodes affected, %.
    #[must_use]
    pub fn share_pct(self) -> f64 {
        match self {
            Variant::Dead10 => 10.0,
            Variant::Stuck5 => 5.0,
            Variant::Lying1 => 1.0,
        }
    }
}

/// What a node delivers in a variant.
#[derive(Debug, Clone, Copy, PartialEq)]
enum NodeFault {
    Healthy,
    Dead,
    /// Frozen at its first published reading (None until it has published).
    Stuck(Option<f64>),
    Lying,
}

/// Reading the lying nodes report, °C.
pub const LYING_C: f64 = 30.0;

/// SplitMix64: a small, seeded, reproducible generator for picking faulty nodes.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Indices of `count` of `n` nodes, drawn with the scenario's seed.
#[must_use]
pub fn pick_nodes(n: usize, count: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    let mut s = seed ^ 0x5EA5_0A11;
    for i in (1..n).rev() {
        let j = (splitmix(&mut s) % (i as u64 + 1)) as usize;
        idx.swap(i, j);
    }
    idx.truncate(count.min(n));
    idx.sort_unstable();
    idx
}

/// The room nodes of heatctl's configuration, one per plant room node (same order), with a
/// household valve on the same building bus where `with_valves`.
#[must_use]
pub fn room_nodes_from_plant(plant: &Plant, with_valves: bool) -> Vec<RoomNode> {
    let apartments = plant.apartments();
    (0..plant.room_node_count())
        .filter_map(|k| plant.room_node(k))
        .map(|r| {
            let end = apartments.get(r.apartment).is_some_and(|a| a.is_end_unit);
            let position = match (r.position, end) {
                (PositionClass::Top, true) => Position::TopEnd,
                (PositionClass::Top, false) => Position::Top,
                (PositionClass::Ground, true) => Position::GroundEnd,
                (PositionClass::Ground, false) => Position::Ground,
                (PositionClass::End, _) => Position::End,
                (PositionClass::Middle, _) => Position::Middle,
            };
            RoomNode {
                id: format!("b{:02}-{:02}{:02}", r.building, r.floor + 1, r.unit + 1),
                building: format!("b{:02}", r.building),
                position,
                link: format!("rooms-b{:02}", r.building),
                unit_id: r.unit_id,
                vacant: false,
                excluded: false,
                valve_link: with_valves.then(|| format!("valves-b{:02}", r.building)),
                valve_unit_id: with_valves.then_some(r.unit_id),
            }
        })
        .collect()
}

/// Builds heatctl's process image from the plant, node faults of a variant applied.
#[derive(Debug, Clone)]
pub struct FieldLayer {
    /// Apartment of each configured node.
    apartments: Vec<usize>,
    faults: Vec<NodeFault>,
    with_valves: bool,
    image: ProcessImage,
}

fn sample(v: Option<f64>) -> Option<Sample> {
    Some(match v {
        Some(x) if x.is_finite() => Sample::fresh(x),
        // A sentinel or a flagged reading: the field layer knows it is unusable.
        _ => Sample::invalid(),
    })
}

impl FieldLayer {
    /// A field layer for the plant's room nodes (and their apartments' household valves where
    /// `with_valves`), with the node faults of `variant`.
    #[must_use]
    pub fn new(plant: &Plant, with_valves: bool, variant: Option<Variant>, seed: u64) -> Self {
        let n = plant.room_node_count();
        let apartments = (0..n)
            .map(|k| plant.room_node(k).map_or(0, |r| r.apartment))
            .collect();
        let mut faults = vec![NodeFault::Healthy; n];
        if let Some(v) = variant {
            let count = ((v.share_pct() / 100.0 * n as f64).round() as usize).max(1);
            for k in pick_nodes(n, count, seed) {
                faults[k] = match v {
                    Variant::Dead10 => NodeFault::Dead,
                    Variant::Stuck5 => NodeFault::Stuck(None),
                    Variant::Lying1 => NodeFault::Lying,
                };
            }
        }
        Self {
            apartments,
            faults,
            with_valves,
            image: ProcessImage::with_rooms(n),
        }
    }

    /// Nodes affected by the variant.
    #[must_use]
    pub fn faulty_nodes(&self) -> usize {
        self.faults
            .iter()
            .filter(|f| !matches!(f, NodeFault::Healthy))
            .count()
    }

    /// Read node `k` as the field layer would deliver it now.
    fn room_sample(&mut self, plant: &Plant, k: usize) -> Option<Sample> {
        let r = plant.room_node(k)?;
        if r.sample_counter == 0 {
            return None; // never reported yet
        }
        let age_s = (plant.time_s() - r.last_report_s).max(0.0);
        let fault = self.faults.get(k).copied().unwrap_or(NodeFault::Healthy);
        match fault {
            NodeFault::Dead => Some(Sample::invalid()),
            NodeFault::Healthy => Some(match r.temperature_c {
                Some(v) => Sample::aged(v, age_s),
                None => Sample::invalid(),
            }),
            NodeFault::Stuck(frozen) => {
                let v = frozen.or(r.temperature_c);
                self.faults[k] = NodeFault::Stuck(v);
                Some(v.map_or_else(Sample::invalid, |v| Sample::aged(v, age_s)))
            }
            NodeFault::Lying => {
                let jitter = f64::from(r.sample_counter.wrapping_mul(7919) % 21) * 0.01 - 0.1;
                Some(Sample::aged(LYING_C + jitter, age_s))
            }
        }
    }

    /// The process image now.
    pub fn image(&mut self, plant: &Plant) -> &ProcessImage {
        let s = plant.sensors_substation();
        let mut img = std::mem::take(&mut self.image);
        img.set(Signal::TOut, sample(s.t_out_c));
        img.set(Signal::T1Supply, sample(s.t1_supply_c));
        img.set(Signal::T1Return, sample(s.t1_return_c));
        img.set(Signal::T2Supply, sample(s.t2_supply_c));
        img.set(Signal::T2Return, sample(s.t2_return_c));
        img.set(Signal::Power1Kw, sample(s.heat_meter.power_kw));
        img.set(Signal::Flow1M3h, sample(s.heat_meter.flow_m3_h));
        img.set(Signal::Valve1PosPct, sample(s.valve1_pos_pct));
        for k in 0..img.rooms.len() {
            img.rooms[k] = self.room_sample(plant, k);
            img.hh_valve_pos_pct[k] = if self.with_valves {
                plant
                    .household_valve(self.apartments[k])
                    .map(|(pos, _)| Sample::fresh(pos))
            } else {
                None
            };
        }
        self.image = img;
        &self.image
    }

    /// Apartment of configured node `k`.
    #[must_use]
    pub fn apartment_of(&self, k: usize) -> Option<usize> {
        self.apartments.get(k).copied()
    }
}
