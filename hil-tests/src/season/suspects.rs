//! Whether the controller names a fault variant's faulty room nodes (issue 14, item 2: "where
//! that is impossible, an alarm names the suspect nodes").
//!
//! A faulty node counts as **named** at a step when the controller's own verdict on that node
//! (the demand correction's last run, `Controller::room_verdicts`) is one an alarm lists
//! ([`naming_alarm`]: "suspect" by 203, rejected or outlier by 202) and that alarm is raised. A variant's aim is
//! also met (`report::aims`) when every faulty node was named within [`NAMING_DEADLINE_S`] of the
//! season start and stayed named from then to the end of the season: what counts is the unbroken
//! run of named steps that lasts to the end (at the start every node is named until its first
//! report arrives, which says nothing about the node).

use heatctl::control::demand::NodeVerdict;
use heatctl::control::{Alarm, AlarmCode};

/// The alarm that names suspect room nodes: 203, readings far colder than their position class
/// (lying low, stuck cold), whose nodes are those with the verdict "suspect".
pub const SUSPECT_NODES_ALARM: AlarmCode = AlarmCode::RoomNodesSuspect;

/// What names a faulty node: its verdict, and the alarm that lists nodes with that verdict (203
/// for suspect nodes; 202, "some room nodes invalid", for nodes rejected as missing, stale,
/// stuck, out of range or outliers). A node only "suspect-cold" (not yet for the hold time) is
/// not named by either.
#[must_use]
pub fn naming_alarm(verdict: NodeVerdict) -> Option<AlarmCode> {
    match verdict {
        NodeVerdict::Used | NodeVerdict::SuspectCold => None,
        NodeVerdict::Suspect => Some(AlarmCode::RoomNodesSuspect),
        NodeVerdict::Rejected(_) | NodeVerdict::Outlier => Some(AlarmCode::RoomNodesInvalid),
    }
}

/// Every faulty node must be named within this time of the season start, s (24 h).
pub const NAMING_DEADLINE_S: f64 = 86_400.0;

/// One faulty node: since when the controller has named it without a break.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeNaming {
    /// The node's configured id (`rooms.nodes[].id`).
    pub node_id: String,
    /// Season time of the first step of the unbroken run of named steps that lasts to the
    /// latest step observed, s (None: not named at the latest step).
    pub named_since_s: Option<f64>,
    /// Runs of named steps that ended before the latest step (the alarm or the verdict let go).
    pub dropped: u32,
}

/// The faulty nodes of one variant run and what the controller said about them.
#[derive(Debug, Clone, PartialEq)]
pub struct Naming {
    /// The alarm code that names them ([`SUSPECT_NODES_ALARM`]).
    pub alarm: AlarmCode,
    /// Each faulty node, in configuration order.
    pub nodes: Vec<NodeNaming>,
    indices: Vec<usize>,
}

impl Naming {
    /// Track the nodes at configuration indices `faulty`, whose ids are `ids[k]`.
    #[must_use]
    pub fn new(faulty: &[usize], ids: &[String]) -> Self {
        Self {
            alarm: SUSPECT_NODES_ALARM,
            nodes: faulty
                .iter()
                .map(|&k| NodeNaming {
                    node_id: ids.get(k).cloned().unwrap_or_else(|| format!("#{k}")),
                    named_since_s: None,
                    dropped: 0,
                })
                .collect(),
            indices: faulty.to_vec(),
        }
    }

    /// Account for one control step at season time `t_s`: the alarms the controller returned
    /// and its per-node verdicts.
    pub fn observe(&mut self, t_s: f64, alarms: &[Alarm], verdicts: &[NodeVerdict]) {
        for (n, &k) in self.nodes.iter_mut().zip(&self.indices) {
            let named = verdicts
                .get(k)
                .copied()
                .and_then(naming_alarm)
                .is_some_and(|code| alarms.iter().any(|a| a.code == code));
            match (n.named_since_s, named) {
                (None, true) => n.named_since_s = Some(t_s),
                (Some(_), false) => {
                    n.named_since_s = None;
                    n.dropped += 1;
                }
                _ => {}
            }
        }
    }

    /// Every faulty node named within [`NAMING_DEADLINE_S`] and kept to the latest step
    /// (false when there are no faulty nodes: nothing was named).
    #[must_use]
    pub fn all_named_in_time(&self) -> bool {
        !self.nodes.is_empty() && self.named_in_time() == self.nodes.len()
    }

    /// Nodes named within the deadline and kept.
    #[must_use]
    pub fn named_in_time(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| {
                n.named_since_s
                    .is_some_and(|t| t <= NAMING_DEADLINE_S + 1e-6)
            })
            .count()
    }

    /// Hours from the season start to the latest `named_since_s` (None unless every faulty
    /// node is named at the latest step).
    #[must_use]
    pub fn last_named_h(&self) -> Option<f64> {
        if self.nodes.is_empty() {
            return None;
        }
        self.nodes
            .iter()
            .map(|n| n.named_since_s)
            .try_fold(0.0_f64, |acc, t| t.map(|t| acc.max(t)))
            .map(|s| s / 3600.0)
    }

    /// Each node as `id@hours` (named since, hours from the season start, to the end) or `id@-`
    /// (not named at the end), with `/droppedN` when N earlier runs of naming ended:
    /// space-separated.
    #[must_use]
    pub fn nodes_text(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                let since = n
                    .named_since_s
                    .map_or_else(|| "-".to_string(), |t| format!("{:.2}h", t / 3600.0));
                if n.dropped > 0 {
                    format!("{}@{since}/dropped{}", n.node_id, n.dropped)
                } else {
                    format!("{}@{since}", n.node_id)
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// One line for reports: the alarm, how many nodes it named in time and kept, by when.
    #[must_use]
    pub fn summary(&self) -> String {
        format!(
            "alarms {}/{} named {} of {} faulty nodes within {:.0} h and to the end{}",
            AlarmCode::RoomNodesInvalid.number(),
            self.alarm.number(),
            self.named_in_time(),
            self.nodes.len(),
            NAMING_DEADLINE_S / 3600.0,
            self.last_named_h()
                .map_or_else(String::new, |h| format!(" (the last since {h:.2} h)"))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heatctl::control::Rejection;

    fn alarm(code: AlarmCode) -> Alarm {
        Alarm { code, since_s: 0.0 }
    }

    #[test]
    fn a_node_counts_as_named_only_with_the_alarm_and_a_verdict_against_it() {
        let ids: Vec<String> = ["a", "b", "c"].iter().map(|s| (*s).to_string()).collect();
        let mut n = Naming::new(&[0, 2], &ids);
        let bad = NodeVerdict::Rejected(Rejection::Field);
        let raised = [alarm(AlarmCode::RoomNodesInvalid)];
        // At the start every node is named (no report yet), then the faulty ones report.
        n.observe(0.0, &raised, &[bad, bad, bad]);
        assert_eq!(n.nodes[1].named_since_s, Some(0.0));
        n.observe(60.0, &raised, &[NodeVerdict::Used; 3]);
        assert_eq!(n.nodes[0].named_since_s, None);
        assert_eq!(n.nodes[0].dropped, 1);
        // The verdict without the alarm names nothing.
        let verdicts = [bad, NodeVerdict::Used, NodeVerdict::Used];
        n.observe(120.0, &[alarm(AlarmCode::Frost)], &verdicts);
        assert_eq!(n.nodes[0].named_since_s, None);
        n.observe(180.0, &raised, &verdicts);
        assert_eq!(n.nodes[0].named_since_s, Some(180.0));
        assert_eq!(n.nodes[1].named_since_s, None, "node c is used");
        assert!(!n.all_named_in_time());
        assert_eq!(n.last_named_h(), None);
        let later = [bad, NodeVerdict::Used, NodeVerdict::Outlier];
        n.observe(7200.0, &raised, &later);
        assert!(n.all_named_in_time());
        assert_eq!(n.named_in_time(), 2);
        assert_eq!(n.last_named_h(), Some(2.0));
        assert_eq!(n.nodes_text(), "a@0.05h/dropped1 c@2.00h/dropped1");
        // Let go once: not kept until named again, and then since the new time.
        n.observe(7260.0, &[], &later);
        assert!(!n.all_named_in_time());
        assert_eq!(n.nodes_text(), "a@-/dropped2 c@-/dropped2");
        n.observe(7320.0, &raised, &later);
        assert_eq!(n.nodes[0].named_since_s, Some(7320.0));
        assert!(n.all_named_in_time());
    }

    #[test]
    fn each_verdict_is_named_by_its_own_alarm() {
        let ids = vec!["a".to_string()];
        let suspect = [NodeVerdict::Suspect];
        let mut n = Naming::new(&[0], &ids);
        // 202 lists rejected nodes, not suspect ones.
        n.observe(0.0, &[alarm(AlarmCode::RoomNodesInvalid)], &suspect);
        assert_eq!(n.nodes[0].named_since_s, None);
        n.observe(60.0, &[alarm(SUSPECT_NODES_ALARM)], &suspect);
        assert_eq!(n.nodes[0].named_since_s, Some(60.0));
        // Suspect-cold (not yet held long enough) is named by no alarm.
        n.observe(
            120.0,
            &[alarm(SUSPECT_NODES_ALARM)],
            &[NodeVerdict::SuspectCold],
        );
        assert_eq!(n.nodes[0].named_since_s, None);
        // 203 does not name a rejected node.
        let mut m = Naming::new(&[0], &ids);
        m.observe(0.0, &[alarm(SUSPECT_NODES_ALARM)], &[NodeVerdict::Outlier]);
        assert_eq!(m.nodes[0].named_since_s, None);
    }

    #[test]
    fn named_after_the_deadline_does_not_count() {
        let ids = vec!["a".to_string()];
        let mut n = Naming::new(&[0], &ids);
        let bad = [NodeVerdict::Outlier];
        n.observe(
            NAMING_DEADLINE_S + 60.0,
            &[alarm(AlarmCode::RoomNodesInvalid)],
            &bad,
        );
        assert!(!n.all_named_in_time());
        assert_eq!(n.named_in_time(), 0);
        assert!(!Naming::new(&[], &ids).all_named_in_time(), "nothing named");
    }
}
