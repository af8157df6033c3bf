//! The field layer of the in-process season: heatctl's process image as the plant's devices
//! deliver it (`heatctl_plant::process_image`: sensor faults, room nodes with their bias, noise,
//! 10-minute refresh and lost reports, honest ages), with the room-node faults of the robustness
//! variants on top.

use heatctl::control::Signal;
use heatctl::control::{ProcessImage, Sample};
use heatctl_plant::forecast::ForecastService;
use heatctl_plant::{Plant, PositionClass, process_image};

/// A robustness variant: some room nodes misbehave for the whole season. Each variant draws
/// its nodes on its own (from the scenario's seed and the variant), so no variant's nodes are
/// a subset of another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// 10 % of the nodes dead: they never answer (the field layer marks them invalid).
    Dead10,
    /// 5 % of the nodes stuck: they keep answering with their first reading.
    Stuck5,
    /// 1 % of the nodes lying: they answer 30 °C (with 0.1 K of jitter, so no stuck check
    /// catches them).
    Lying1,
    /// 5 % of the nodes lying low: each answers a value of its own between 15 and 16 °C (with
    /// 0.1 K of jitter), cold but inside any plausible range and near enough to the others
    /// that a median test keeps it.
    LyingLow5,
    /// 5 % of the nodes stuck at a cold reading: each answers one constant value of its own
    /// between 14 and 16 °C for the whole season.
    StuckCold5,
    /// 10 % of the nodes dead, all of them priority nodes (top and ground floor flats, the
    /// coldest positions): the faults land where the low percentile looks.
    PriorityDead10,
    /// Whole room gateways dead (every node of a building), buildings drawn until at least
    /// 30 % of the nodes are lost.
    Gateway30,
    /// One building's room gateway flapping: 10 minutes up, 10 minutes down, all season; its
    /// nodes are invalid while it is down, as when the field layer counts the link lost.
    GatewayFlap,
    /// 1 % of the nodes reporting at the wrong scale: ten times their temperature.
    Scale10,
}

impl Variant {
    /// Every variant, in report order.
    pub const ALL: [Variant; 9] = [
        Variant::Dead10,
        Variant::Stuck5,
        Variant::Lying1,
        Variant::LyingLow5,
        Variant::StuckCold5,
        Variant::PriorityDead10,
        Variant::Gateway30,
        Variant::GatewayFlap,
        Variant::Scale10,
    ];

    /// Suffix of the strategy name in `variants.csv` (`heatctl_dead10`, ...). No suffix ends
    /// another.
    #[must_use]
    pub fn suffix(self) -> &'static str {
        match self {
            Variant::Dead10 => "dead10",
            Variant::Stuck5 => "stuck5",
            Variant::Lying1 => "lying1",
            Variant::LyingLow5 => "lowlie5",
            Variant::StuckCold5 => "stuckcold5",
            Variant::PriorityDead10 => "prio10",
            Variant::Gateway30 => "gw30",
            Variant::GatewayFlap => "flap",
            Variant::Scale10 => "scale10",
        }
    }

    /// Share of the nodes drawn for the variant, % (for the gateway variants: the least share
    /// of whole buildings, or one building).
    #[must_use]
    pub fn share_pct(self) -> f64 {
        match self {
            Variant::Dead10 | Variant::PriorityDead10 => 10.0,
            Variant::Stuck5 | Variant::LyingLow5 | Variant::StuckCold5 => 5.0,
            Variant::Lying1 | Variant::Scale10 => 1.0,
            Variant::Gateway30 => 30.0,
            Variant::GatewayFlap => 0.0,
        }
    }

    /// The variant's own seed, from the scenario's.
    fn seed(self, seed: u64) -> u64 {
        let k = Variant::ALL.iter().position(|v| *v == self).unwrap_or(0) as u64;
        let mut s = seed ^ (k + 1).wrapping_mul(0xA076_1D64_78BD_642F);
        splitmix(&mut s)
    }
}

/// What a node delivers in a variant.
#[derive(Debug, Clone, Copy, PartialEq)]
enum NodeFault {
    Healthy,
    Dead,
    /// Frozen at its first published reading (None until it has published).
    Stuck(Option<f64>),
    /// Answers this value, °C, with 0.1 K of jitter.
    Lying(f64),
    /// Answers this value, °C, exactly.
    Constant(f64),
    /// Invalid in the second 10 minutes of every 20.
    Flapping,
    /// Answers its reading times this factor.
    Scaled(f64),
}

/// Reading the lying nodes report, °C.
pub const LYING_C: f64 = 30.0;

/// Period of the flapping gateway: up for the first half, down for the second, s.
pub const FLAP_PERIOD_S: f64 = 1200.0;

/// SplitMix64: a small, seeded, reproducible generator for picking faulty nodes.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform in [0, 1) from the generator.
fn unit(state: &mut u64) -> f64 {
    (splitmix(state) >> 11) as f64 / (1u64 << 53) as f64
}

/// `0..n` shuffled with `seed`.
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    let mut s = seed ^ 0x5EA5_0A11;
    for i in (1..n).rev() {
        let j = (splitmix(&mut s) % (i as u64 + 1)) as usize;
        idx.swap(i, j);
    }
    idx
}

/// Indices of `count` of `n` nodes, drawn with the scenario's seed.
#[must_use]
pub fn pick_nodes(n: usize, count: usize, seed: u64) -> Vec<usize> {
    let mut idx = shuffled(n, seed);
    idx.truncate(count.min(n));
    idx.sort_unstable();
    idx
}

/// The faults of `variant` for nodes in `buildings` order (`building[k]`, and whether node `k`
/// is a priority node), drawn with `seed`.
fn draw_faults(
    variant: Variant,
    building: &[usize],
    priority: &[bool],
    seed: u64,
) -> Vec<NodeFault> {
    let n = building.len();
    let mut faults = vec![NodeFault::Healthy; n];
    if n == 0 {
        return faults;
    }
    let seed = variant.seed(seed);
    let count = ((variant.share_pct() / 100.0 * n as f64).round() as usize).max(1);
    let mut values = seed;
    match variant {
        Variant::Dead10
        | Variant::Stuck5
        | Variant::Lying1
        | Variant::LyingLow5
        | Variant::StuckCold5
        | Variant::Scale10 => {
            for k in pick_nodes(n, count, seed) {
                faults[k] = match variant {
                    Variant::Dead10 => NodeFault::Dead,
                    Variant::Stuck5 => NodeFault::Stuck(None),
                    Variant::Lying1 => NodeFault::Lying(LYING_C),
                    Variant::LyingLow5 => NodeFault::Lying(15.0 + unit(&mut values)),
                    Variant::StuckCold5 => {
                        // One decimal, as a node publishes.
                        NodeFault::Constant(
                            ((14.0 + 2.0 * unit(&mut values)) * 10.0).round() / 10.0,
                        )
                    }
                    _ => NodeFault::Scaled(10.0),
                };
            }
        }
        Variant::PriorityDead10 => {
            let eligible: Vec<usize> = (0..n).filter(|&k| priority[k]).collect();
            for i in pick_nodes(eligible.len(), count, seed) {
                faults[eligible[i]] = NodeFault::Dead;
            }
        }
        Variant::Gateway30 | Variant::GatewayFlap => {
            let mut buildings: Vec<usize> = building.to_vec();
            buildings.sort_unstable();
            buildings.dedup();
            let order = shuffled(buildings.len(), seed);
            let fault = if variant == Variant::GatewayFlap {
                NodeFault::Flapping
            } else {
                NodeFault::Dead
            };
            let mut lost = 0;
            for b in order.into_iter().map(|i| buildings[i]) {
                for k in (0..n).filter(|&k| building[k] == b) {
                    faults[k] = fault;
                    lost += 1;
                }
                if variant == Variant::GatewayFlap || lost >= count {
                    break;
                }
            }
        }
    }
    faults
}

/// Builds heatctl's process image from the plant, node faults of a variant applied.
#[derive(Debug, Clone)]
pub struct FieldLayer {
    /// Apartment of each configured node.
    apartments: Vec<usize>,
    faults: Vec<NodeFault>,
    with_valves: bool,
    image: ProcessImage,
    /// The platform's outdoor forecast (6 h ahead, with error; `heatctl_plant::forecast`).
    forecast: ForecastService,
}

impl FieldLayer {
    /// A field layer for the plant's room nodes (and their apartments' household valves where
    /// `with_valves`), with the node faults of `variant`.
    #[must_use]
    pub fn new(plant: &Plant, with_valves: bool, variant: Option<Variant>, seed: u64) -> Self {
        let n = plant.room_node_count();
        let nodes: Vec<_> = (0..n).map(|k| plant.room_node(k)).collect();
        let apartments = nodes.iter().map(|r| r.map_or(0, |r| r.apartment)).collect();
        let faults = match variant {
            Some(v) => {
                let building: Vec<usize> =
                    nodes.iter().map(|r| r.map_or(0, |r| r.building)).collect();
                let priority: Vec<bool> = nodes
                    .iter()
                    .map(|r| {
                        r.is_some_and(|r| {
                            matches!(r.position, PositionClass::Top | PositionClass::Ground)
                        })
                    })
                    .collect();
                draw_faults(v, &building, &priority, seed)
            }
            None => vec![NodeFault::Healthy; n],
        };
        Self {
            apartments,
            faults,
            with_valves,
            image: ProcessImage::with_rooms(n),
            forecast: ForecastService::default_for(seed),
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

    /// Configuration indices of the nodes affected by the variant, ascending.
    #[must_use]
    pub fn faulty_indices(&self) -> Vec<usize> {
        self.faults
            .iter()
            .enumerate()
            .filter(|(_, f)| !matches!(f, NodeFault::Healthy))
            .map(|(k, _)| k)
            .collect()
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
            NodeFault::Lying(value_c) => {
                let jitter = f64::from(r.sample_counter.wrapping_mul(7919) % 21) * 0.01 - 0.1;
                Some(Sample::aged(value_c + jitter, age_s))
            }
            NodeFault::Constant(value_c) => Some(Sample::aged(value_c, age_s)),
            NodeFault::Flapping => {
                if plant.time_s().rem_euclid(FLAP_PERIOD_S) >= FLAP_PERIOD_S / 2.0 {
                    Some(Sample::invalid())
                } else {
                    healthy
                }
            }
            NodeFault::Scaled(factor) => healthy.map(|h| Sample {
                value: h.value * factor,
                ..h
            }),
        }
    }

    /// The process image now: the plant's healthy field devices
    /// ([`heatctl_plant::process_image::fill`]), then the variant's faulty nodes.
    pub fn image(&mut self, plant: &Plant) -> &ProcessImage {
        let mut img = std::mem::take(&mut self.image);
        process_image::fill(plant, self.with_valves, &mut img);
        let (forecast_c, age_s) = self.forecast.current(plant);
        img.set(Signal::TOutForecast, Some(Sample::aged(forecast_c, age_s)));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// 10 buildings of 12 nodes; in each, nodes 0-2 and 9-11 are priority (top, ground).
    fn stock() -> (Vec<usize>, Vec<bool>) {
        let building = (0..120).map(|k| k / 12).collect();
        let priority = (0..120).map(|k| !(3..9).contains(&(k % 12))).collect();
        (building, priority)
    }

    fn faulty(f: &[NodeFault]) -> Vec<usize> {
        (0..f.len())
            .filter(|&k| f[k] != NodeFault::Healthy)
            .collect()
    }

    #[test]
    fn each_variant_draws_its_own_nodes() {
        let (b, p) = stock();
        let sets: Vec<Vec<usize>> = [Variant::Dead10, Variant::Stuck5, Variant::Lying1]
            .iter()
            .map(|&v| faulty(&draw_faults(v, &b, &p, 7)))
            .collect();
        assert_eq!(sets.iter().map(Vec::len).collect::<Vec<_>>(), [12, 6, 1]);
        // Not one permutation cut at three lengths: the smaller sets are not inside the larger.
        let inside = |a: &[usize], b: &[usize]| a.iter().all(|k| b.contains(k));
        assert!(!(inside(&sets[1], &sets[0]) && inside(&sets[2], &sets[1])));
        // Another seed draws other nodes.
        assert_ne!(faulty(&draw_faults(Variant::Dead10, &b, &p, 8)), sets[0]);
    }

    #[test]
    fn priority_faults_land_on_priority_nodes_only() {
        let (b, p) = stock();
        let f = faulty(&draw_faults(Variant::PriorityDead10, &b, &p, 3));
        assert_eq!(f.len(), 12);
        assert!(f.iter().all(|&k| p[k]), "{f:?}");
    }

    #[test]
    fn gateway_variants_take_whole_buildings() {
        let (b, p) = stock();
        let dead = draw_faults(Variant::Gateway30, &b, &p, 5);
        let lost = faulty(&dead);
        let mut buildings: Vec<usize> = lost.iter().map(|&k| b[k]).collect();
        buildings.dedup();
        assert_eq!(buildings.len(), 3, "{buildings:?}");
        assert_eq!(lost.len(), 36);
        assert!(lost.iter().all(|&k| dead[k] == NodeFault::Dead));
        let flap = draw_faults(Variant::GatewayFlap, &b, &p, 5);
        let f = faulty(&flap);
        assert_eq!(f.len(), 12);
        assert!(
            f.iter()
                .all(|&k| b[k] == b[f[0]] && flap[k] == NodeFault::Flapping)
        );
    }

    #[test]
    fn cold_and_scaled_faults_have_their_values() {
        let (b, p) = stock();
        for v in [Variant::LyingLow5, Variant::StuckCold5, Variant::Scale10] {
            let f = draw_faults(v, &b, &p, 11);
            let bad: Vec<NodeFault> = faulty(&f).into_iter().map(|k| f[k]).collect();
            assert_eq!(
                bad.len(),
                if v == Variant::Scale10 { 1 } else { 6 },
                "{v:?}"
            );
            for fault in bad {
                match (v, fault) {
                    (Variant::LyingLow5, NodeFault::Lying(c)) => assert!((15.0..16.0).contains(&c)),
                    (Variant::StuckCold5, NodeFault::Constant(c)) => {
                        assert!((14.0..=16.0).contains(&c));
                    }
                    (Variant::Scale10, NodeFault::Scaled(x)) => assert!((x - 10.0).abs() < 1e-12),
                    other => panic!("{other:?}"),
                }
            }
        }
    }

    #[test]
    fn suffixes_are_distinct_and_none_ends_another() {
        for a in Variant::ALL {
            for b in Variant::ALL {
                if a != b {
                    assert!(!a.suffix().ends_with(b.suffix()), "{a:?} {b:?}");
                }
            }
        }
    }
}
