//! `[history]`: the hourly room history heatctl keeps for the balancing advice, and the
//! estimator's assumptions (`heatctl balance`, the page's advice; see docs/balancing.md).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::RoomNode;
use super::check::{Bound, Checker, Rules, bounds};

/// The hourly room history and the balancing advice drawn from it.
///
/// heatctl writes one line per clock hour to `<state_dir>/history/rooms-YYYY-MM.jsonl`: the
/// hour's mean outdoor temperature and t2 supply, and per room node its mean room temperature,
/// mean household-valve position (where fitted) and sample count. The estimator then compares
/// each flat's heat supply with its need at the same outdoor temperature and supply, and
/// recommends static balancing valve changes per riser and building.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct History {
    /// Record the hourly history (needs a state directory: `heatctl run --state-dir`).
    pub enabled: bool,
    /// Months of history files kept (the current month counts); older files are deleted.
    pub months_kept: u32,
    /// Risers (stairwells) of the buildings: each names the room nodes of the flats it feeds.
    /// Flats of a building in no riser are grouped per building.
    pub risers: Vec<Riser>,
    /// Fewest days with heating hours before any advice is given, days.
    pub min_days: f64,
    /// Fewest usable hours a flat needs to count, hours.
    pub min_flat_hours: f64,
    /// Hours warmer than this outdoors are not used (internal and solar gains dominate), °C.
    pub max_outdoor_c: f64,
    /// Room temperature each flat should reach, °C.
    pub target_c: f64,
    /// Design outdoor temperature of the radiators, °C.
    pub design_outdoor_c: f64,
    /// Design room temperature of the radiators, °C.
    pub design_room_c: f64,
    /// Design supply temperature of the radiators, °C.
    pub design_supply_c: f64,
    /// Design return temperature of the radiators, °C.
    pub design_return_c: f64,
    /// Radiator exponent n of Q/Q_design = (ΔT_lm/ΔT_lm,design)^n (1.3 for panel radiators,
    /// 1.0-1.1 for floor heating).
    pub radiator_exponent: f64,
    /// Rangeability of the household valves' equal-percentage characteristic (kvs/kv at the
    /// smallest controllable opening).
    pub valve_rangeability: f64,
    /// Authority of the household valves (their share of the branch pressure drop when open).
    pub valve_authority: f64,
    /// Share of the flat branch's pressure drop across its static balancing valve at its
    /// present setting (sets how far a kv change moves the flow).
    pub balancing_valve_share: f64,
    /// Flow changes smaller than this are reported as "no change", %.
    pub deadband_pct: f64,
}

/// One riser (stairwell) and the room nodes of the flats it feeds.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Riser {
    /// Name of the riser, e.g. "b03-east".
    pub name: String,
    /// Room node ids (rooms.nodes[].id) of the flats on this riser, all of one building.
    pub nodes: Vec<String>,
}

impl Default for History {
    fn default() -> Self {
        Self {
            enabled: true,
            months_kept: 7,
            risers: Vec::new(),
            min_days: 14.0,
            min_flat_hours: 72.0,
            max_outdoor_c: 10.0,
            target_c: 19.0,
            design_outdoor_c: -17.0,
            design_room_c: 20.0,
            design_supply_c: 75.0,
            design_return_c: 50.0,
            radiator_exponent: 1.3,
            valve_rangeability: 30.0,
            valve_authority: 0.5,
            balancing_valve_share: 0.5,
            deadband_pct: 10.0,
        }
    }
}

impl Rules for History {
    const BOUNDS: &'static [Bound<Self>] = bounds!(History {
        min_days: 1.0..=365.0,
        min_flat_hours: 1.0..=8760.0,
        max_outdoor_c: -20.0..=20.0,
        target_c: 10.0..=30.0,
        design_outdoor_c: -50.0..=5.0,
        design_room_c: 10.0..=30.0,
        design_supply_c: 25.0..=130.0,
        design_return_c: 20.0..=110.0,
        radiator_exponent: 1.0..=2.0,
        valve_rangeability: 2.0..=500.0,
        valve_authority: 0.05..=1.0,
        balancing_valve_share: 0.05..=1.0,
        deadband_pct: 0.0..=100.0,
    });
    const ALLOWED: &'static [(&'static str, &'static str)] = &[
        ("months_kept", "1 to 60"),
        (
            "design_return_c",
            "above design_room_c, below design_supply_c",
        ),
        ("design_room_c", "above design_outdoor_c"),
    ];
}

impl Rules for Riser {
    const ALLOWED: &'static [(&'static str, &'static str)] = &[
        (
            "nodes",
            "ids of rooms.nodes, all of one building, each in one riser",
        ),
        ("name", "unique, not empty"),
    ];
}

impl History {
    pub(crate) fn check(&self, nodes: &[RoomNode], k: &mut Checker) {
        k.bounds("history", self);
        k.range(
            "history.months_kept",
            f64::from(self.months_kept),
            1.0,
            60.0,
        );
        k.below(
            "history.design_outdoor_c",
            self.design_outdoor_c,
            "history.design_room_c",
            self.design_room_c,
        );
        k.below(
            "history.design_room_c",
            self.design_room_c,
            "history.design_return_c",
            self.design_return_c,
        );
        k.below(
            "history.design_return_c",
            self.design_return_c,
            "history.design_supply_c",
            self.design_supply_c,
        );
        let mut names = BTreeSet::new();
        let mut seen = BTreeSet::new();
        for (i, r) in self.risers.iter().enumerate() {
            let at = format!("history.risers[{i}]");
            if r.name.trim().is_empty() {
                k.fail(format!("{at}.name"), "a riser needs a name");
            } else if !names.insert(r.name.as_str()) {
                k.fail(format!("{at}.name"), format!("{:?} is named twice", r.name));
            }
            let mut building: Option<&str> = None;
            for (j, id) in r.nodes.iter().enumerate() {
                let path = format!("{at}.nodes[{j}]");
                let Some(node) = nodes.iter().find(|n| &n.id == id) else {
                    k.fail(
                        path,
                        format!("{id:?} is not a room node (rooms.nodes[].id)"),
                    );
                    continue;
                };
                if !seen.insert(id.as_str()) {
                    k.fail(path, format!("{id:?} is in more than one riser"));
                    continue;
                }
                match building {
                    None => building = Some(node.building.as_str()),
                    Some(b) if b != node.building => k.fail(
                        path,
                        format!(
                            "{id:?} is in building {:?}, the riser's first node in {b:?}",
                            node.building
                        ),
                    ),
                    Some(_) => {}
                }
            }
        }
    }

    /// The riser of room node `id`, when a riser lists it.
    #[must_use]
    pub fn riser_of(&self, id: &str) -> Option<&str> {
        self.risers
            .iter()
            .find(|r| r.nodes.iter().any(|n| n == id))
            .map(|r| r.name.as_str())
    }
}
