//! The physics the advice rests on (docs/balancing.md derives and cites it): the radiator's
//! output law, the flow it needs for a heat output at a supply temperature, the household
//! valve's installed characteristic, and what a balancing valve's kv change does to the flow.

/// Design point of the flats' heat emitters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Emitter {
    /// Design outdoor temperature, °C.
    pub design_outdoor_c: f64,
    /// Design room temperature, °C.
    pub design_room_c: f64,
    /// Design supply, °C.
    pub design_supply_c: f64,
    /// Design return, °C.
    pub design_return_c: f64,
    /// Radiator exponent n.
    pub exponent: f64,
}

/// Logarithmic mean temperature difference of an emitter between `supply_c` and `return_c` in
/// a room at `room_c`, K (the arithmetic mean when the two ends are nearly equal).
#[must_use]
pub fn lmtd_k(supply_c: f64, return_c: f64, room_c: f64) -> f64 {
    let a = supply_c - room_c;
    let b = return_c - room_c;
    if a <= 0.0 || b <= 0.0 {
        return 0.0;
    }
    if (a - b).abs() < 1e-6 * a {
        return 0.5 * (a + b);
    }
    (a - b) / (a / b).ln()
}

impl Emitter {
    /// Heat output relative to design the radiators of a flat at `room_c` give with
    /// `outdoor_c` outside, from its heat loss (UA x ΔT, steady state) less the free heat that
    /// holds `gains_k` of indoor-outdoor difference on its own.
    #[must_use]
    pub fn load_ratio(&self, room_c: f64, outdoor_c: f64, gains_k: f64) -> f64 {
        (room_c - outdoor_c - gains_k) / (self.design_room_c - self.design_outdoor_c)
    }

    /// Flow relative to design an emitter needs to give `load_ratio` x design output with
    /// `supply_c` in a room at `room_c`. None: no flow can (the supply is too low for that
    /// output even at infinite flow) or no heat is asked.
    #[must_use]
    pub fn flow_ratio(&self, load_ratio: f64, supply_c: f64, room_c: f64) -> Option<f64> {
        if !(load_ratio > 0.0 && supply_c > room_c) {
            return None;
        }
        let lmtd_design = lmtd_k(
            self.design_supply_c,
            self.design_return_c,
            self.design_room_c,
        );
        let needed = lmtd_design * load_ratio.powf(1.0 / self.exponent);
        // lmtd rises with the return temperature, up to supply - room at infinite flow.
        if needed >= supply_c - room_c {
            return None;
        }
        let (mut lo, mut hi) = (room_c + 1e-9, supply_c);
        for _ in 0..80 {
            let mid = 0.5 * (lo + hi);
            if lmtd_k(supply_c, mid, room_c) < needed {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let return_c = 0.5 * (lo + hi);
        let design_dt = self.design_supply_c - self.design_return_c;
        Some(load_ratio * design_dt / (supply_c - return_c))
    }
}

impl Emitter {
    /// The room temperature at which a flat taking `flow_ratio` x its design flow with
    /// `supply_c` and `outdoor_c` holds its heat balance (bisection: the flow needed rises
    /// with the room temperature). None when no room temperature between the gains' level and
    /// the supply balances.
    #[must_use]
    pub fn room_at_flow(
        &self,
        flow_ratio: f64,
        supply_c: f64,
        outdoor_c: f64,
        gains_k: f64,
    ) -> Option<f64> {
        let needs = |room_c: f64| {
            self.flow_ratio(
                self.load_ratio(room_c, outdoor_c, gains_k),
                supply_c,
                room_c,
            )
        };
        let (mut lo, mut hi) = (outdoor_c + gains_k + 1e-6, supply_c - 1e-6);
        if !(flow_ratio > 0.0 && lo < hi) {
            return None;
        }
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            match needs(mid) {
                Some(f) if f < flow_ratio => lo = mid,
                _ => hi = mid,
            }
        }
        let room_c = 0.5 * (lo + hi);
        needs(room_c).is_some().then_some(room_c)
    }
}

/// Flow through a household valve at `position_pct` relative to its flow fully open: an
/// equal-percentage characteristic of `rangeability` installed with `authority`
/// (f = 1 / sqrt((1 - a) + a / g²), g = R^(p - 1)).
#[must_use]
pub fn valve_flow_fraction(position_pct: f64, rangeability: f64, authority: f64) -> f64 {
    let p = (position_pct / 100.0).clamp(0.0, 1.0);
    let g = rangeability.powf(p - 1.0);
    1.0 / ((1.0 - authority) + authority / (g * g)).sqrt()
}

/// The balancing valve's kv ratio (new / present) that changes its branch's flow by
/// `flow_ratio` at the same differential pressure across the branch, when the valve takes
/// `share` of the branch's pressure drop now. None: no kv can (the rest of the branch alone
/// allows less than that flow).
#[must_use]
pub fn kv_ratio(flow_ratio: f64, share: f64) -> Option<f64> {
    // Branch resistance S (dp = S q²), the valve's part share x S: a flow ratio r needs
    // S' = S / r², the valve's part S' - (1 - share) S, kv ∝ 1 / sqrt(valve's S).
    let valve_part = 1.0 / (flow_ratio * flow_ratio) - (1.0 - share);
    (flow_ratio > 0.0 && valve_part > 0.0).then(|| (share / valve_part).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emitter() -> Emitter {
        Emitter {
            design_outdoor_c: -17.0,
            design_room_c: 20.0,
            design_supply_c: 75.0,
            design_return_c: 50.0,
            exponent: 1.3,
        }
    }

    #[test]
    fn the_room_at_a_flow_inverts_the_flow_law() {
        let e = emitter();
        let room = e.room_at_flow(1.0, 75.0, -17.0, 0.0).expect("balances");
        assert!((room - 20.0).abs() < 1e-3, "{room}");
        // Less flow, cooler room; the flow law gives the flow back at that room.
        let cool = e.room_at_flow(0.5, 60.0, -5.0, 3.0).expect("balances");
        let warm = e.room_at_flow(1.0, 60.0, -5.0, 3.0).expect("balances");
        assert!(cool < warm, "{cool} {warm}");
        let back = e
            .flow_ratio(e.load_ratio(cool, -5.0, 3.0), 60.0, cool)
            .expect("reachable");
        assert!((back - 0.5).abs() < 1e-3, "{back}");
        assert_eq!(
            e.room_at_flow(1.0, 10.0, 12.0, 3.0),
            None,
            "supply below the room"
        );
    }

    #[test]
    fn the_design_point_needs_design_flow() {
        let e = emitter();
        let f = e.flow_ratio(1.0, 75.0, 20.0).expect("reachable");
        assert!((f - 1.0).abs() < 1e-6, "{f}");
        // Less load at the same supply: much less flow (the radiator's nonlinearity).
        let half = e.flow_ratio(0.5, 75.0, 20.0).expect("reachable");
        assert!(half < 0.35, "{half}");
        assert!((e.load_ratio(20.0, -17.0, 0.0) - 1.0).abs() < 1e-12);
        assert!((e.load_ratio(20.0, -17.0, 3.7) - 0.9).abs() < 1e-12);
        // More than the supply can give at any flow.
        assert!(e.flow_ratio(3.0, 60.0, 20.0).is_none());
    }

    #[test]
    fn valve_fraction_and_kv() {
        assert!((valve_flow_fraction(100.0, 30.0, 0.5) - 1.0).abs() < 1e-12);
        let f50 = valve_flow_fraction(50.0, 30.0, 0.5);
        assert!(f50 > 0.2 && f50 < 0.5, "{f50}");
        // The valve alone in the branch: kv scales with flow.
        assert!((kv_ratio(1.3, 1.0).expect("kv") - 1.3).abs() < 1e-9);
        // A share of 0.3: 10 % more flow needs much more kv; 50 % more is beyond the valve.
        let k = kv_ratio(1.1, 0.3).expect("kv");
        assert!(k > 1.3, "{k}");
        assert!(kv_ratio(1.5, 0.3).is_none());
        assert!(kv_ratio(0.8, 0.3).expect("kv") < 0.8);
    }
}
