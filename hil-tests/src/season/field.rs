//! The field layer of the in-process season: heatctl's process image as the plant's devices
//! deliver it (`heatctl_plant::process_image`: sensor faults, room nodes with their bias, noise,
//! 10-minute refresh and lost reports, honest ages), with the room-node faults of the robustness
//! variants on top.

use heatctl::control::{ProcessImage, Sample};
use heatctl_plant::{Plant, process_image};

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

/// Builds heatctl's process image from the plant, node faults of a variant applied.
#[derive(Debug, Clone)]
pub struct FieldLayer {
    /// Apartment of each configured node.
    apartments: Vec<usize>,
    faults: Vec<NodeFault>,
    with_valves: bool,
    image: ProcessImage,
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

    /// What faulty node `k` delivers now, given what a healthy one would (`healthy`: None
    /// before its first report).
    fn faulty_sample(
        &mut self,
        plant: &Plant,
        k: usize,
        healthy: Option<Sample>,
    ) -> Option<Sample> {
        let fault = self.faults.get(k).copied().unwrap_or(NodeFault::Healthy);
        if fault == NodeFault::Healthy || healthy.is_none() {
            return healthy;
        }
        let r = plant.room_node(k)?;
        let age_s = process_image::report_age_s(&r, plant.time_s());
        match fault {
            NodeFault::Healthy => healthy,
            NodeFault::Dead => Some(Sample::invalid()),
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

    /// The process image now: the plant's healthy field devices
    /// ([`heatctl_plant::process_image::fill`]), then the variant's faulty nodes.
    pub fn image(&mut self, plant: &Plant) -> &ProcessImage {
        let mut img = std::mem::take(&mut self.image);
        process_image::fill(plant, self.with_valves, &mut img);
        for k in 0..img.rooms.len() {
            img.rooms[k] = self.faulty_sample(plant, k, img.rooms[k]);
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
