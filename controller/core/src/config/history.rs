//! `[history]`: the hourly room history heatctl keeps for the balancing advice, and the
//! estimator's assumptions (`heatctl balance`, the page's advice; see docs/balancing.md).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::check::{Bound, Checker, Rules, bounds};
use super::{DesignCurve, RoomNode};

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
    /// Free heat (occupants, appliances, sun) as the indoor-outdoor difference it holds on its
    /// own, K (about 3 K in a flat with 3-5 W/m² of gains at 40 W/m² design load).
    pub gains_k: f64,
    /// Design point of the flats' radiators (same keys as `[curve.design]`); absent: the
    /// curve's `[curve.design]`, else 75/50 °C at 20 °C room, -17 °C outdoors, n = 1.3.
    pub design: Option<DesignCurve>,
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
    /// Length of the supply main from the substation to where this riser's building is
    /// connected, m, from the network drawing (optional). When at least three risers at two or
    /// more distances give it, the estimator pools them: the pressure a riser gets falls along
    /// the mains, so each riser's estimate is drawn towards the trend the risers show together
    /// with distance, as far as its own data are uncertain (docs/balancing.md).
    #[serde(default)]
    pub mains_m: Option<f64>,
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
            gains_k: 3.0,
            design: None,
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
        gains_k: 0.0..=10.0,
        valve_rangeability: 2.0..=500.0,
        valve_authority: 0.05..=1.0,
        balancing_valve_share: 0.05..=1.0,
        deadband_pct: 0.0..=100.0,
    });
    const ALLOWED: &'static [(&'static str, &'static str)] = &[
        ("months_kept", "1 to 60"),
        ("design", "the same keys and ranges as curve.design"),
    ];
}

impl Rules for Riser {
    const ALLOWED: &'static [(&'static str, &'static str)] = &[
        (
            "nodes",
            "ids of rooms.nodes, all of one building, each in one riser",
        ),
        ("name", "unique, not empty"),
        ("mains_m", "0 to 100000"),
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
        if let Some(d) = &self.design {
            k.bounds("history.design", d);
            k.below(
                "history.design.design_outdoor_c",
                d.design_outdoor_c,
                "history.design.room_c",
                d.room_c,
            );
            k.below(
                "history.design.room_c",
                d.room_c,
                "history.design.design_return_c",
                d.design_return_c,
            );
            k.below(
                "history.design.design_return_c",
                d.design_return_c,
                "history.design.design_supply_c",
                d.design_supply_c,
            );
        }
        let mut names = BTreeSet::new();
        let mut seen = BTreeSet::new();
        for (i, r) in self.risers.iter().enumerate() {
            let at = format!("history.risers[{i}]");
            if r.name.trim().is_empty() {
                k.fail(format!("{at}.name"), "a riser needs a name");
            } else if !names.insert(r.name.as_str()) {
                k.fail(format!("{at}.name"), format!("{:?} is named twice", r.name));
            }
            if let Some(m) = r.mains_m {
                k.range(&format!("{at}.mains_m"), m, 0.0, 100_000.0);
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

    /// The radiators' design point: `design`, else the curve's design data, else
    /// [`History::DEFAULT_DESIGN`].
    #[must_use]
    pub fn design_or(&self, curve: Option<&DesignCurve>) -> DesignCurve {
        self.design
            .or(curve.copied())
            .unwrap_or(Self::DEFAULT_DESIGN)
    }

    /// The design point without `design` and without `[curve.design]`.
    pub const DEFAULT_DESIGN: DesignCurve = DesignCurve {
        design_outdoor_c: -17.0,
        design_supply_c: 75.0,
        design_return_c: 50.0,
        room_c: 20.0,
        radiator_exponent: 1.3,
    };

    /// The riser of room node `id`, when a riser lists it.
    #[must_use]
    pub fn riser_of(&self, id: &str) -> Option<&str> {
        self.risers
            .iter()
            .find(|r| r.nodes.iter().any(|n| n == id))
            .map(|r| r.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse_str;

    const BASE: &str = "[site]\nname = \"T\"\n[curve]\npoints = [{ outdoor_c = -20.0, supply_c = 70.0 }, \
                        { outdoor_c = 15.0, supply_c = 30.0 }]\n[rooms]\nnodes = [\
                        { id = \"a1\", building = \"b01\", link = \"bus\", unit_id = 1 },\
                        { id = \"a2\", building = \"b01\", link = \"bus\", unit_id = 2 },\
                        { id = \"c1\", building = \"b02\", link = \"bus\", unit_id = 3 }]\n\
                        [[links]]\nname = \"bus\"\nkind = \"tcp\"\nhost = \"h\"\nport = 502\n";

    fn problems(history: &str) -> Vec<String> {
        let text = format!("{BASE}{history}");
        match parse_str(&text, Some(std::path::Path::new("t.toml"))) {
            Ok(_) => Vec::new(),
            Err(p) => {
                p.0.iter()
                    .map(ToString::to_string)
                    .filter(|p| p.contains("history"))
                    .collect()
            }
        }
    }

    #[test]
    fn defaults_pass_and_the_design_falls_back_to_the_curve() {
        assert_eq!(problems(""), Vec::<String>::new());
        let h = super::History::default();
        assert_eq!(h.design_or(None), super::History::DEFAULT_DESIGN);
        assert!(h.months_kept >= 6, "a season is kept");
    }

    #[test]
    fn every_mistake_is_listed_with_its_path_and_line() {
        let p = problems(
            "[history]\nmonths_kept = 0\nmin_days = 0.5\n\
             [history.design]\ndesign_outdoor_c = -17.0\ndesign_supply_c = 45.0\n\
             design_return_c = 50.0\nroom_c = 20.0\nradiator_exponent = 1.3\n\
             [[history.risers]]\nname = \"east\"\nnodes = [\"a1\", \"zz\", \"c1\"]\n\
             [[history.risers]]\nname = \"east\"\nnodes = [\"a1\"]\n",
        );
        let all = p.join("\n");
        for needle in [
            "history.months_kept",
            "history.min_days",
            "history.design.design_return_c",
            "history.risers[0].nodes[1]",
            "history.risers[0].nodes[2]",
            "history.risers[1].name",
            "history.risers[1].nodes[0]",
        ] {
            assert!(all.contains(needle), "{needle} missing in:\n{all}");
        }
        assert_eq!(p.len(), 7, "{all}");
        for line in &p {
            assert!(line.starts_with("t.toml:"), "located: {line}");
        }
    }
}
