//! The secondary hydraulic network (hil-tests/MODEL.md, "Hydraulic network"): the circulation
//! pump with its head-flow curve, affinity laws and electric power; the station's loss; supply
//! and return mains along the buildings; a riser per building; each flat's branch of radiator
//! circuit, static balancing valve and household valve.
//!
//! Conventions: flows in m³/h, pressure differences in bar inside the solver (kPa at the API),
//! every element quadratic, `dp = (Q / kv)²` (kv in m³/h at 1 bar; a pipe's resistance
//! `R = 1 / kv²`). The network is a tree of such elements, so it reduces exactly: in series the
//! resistances add, in parallel the kv add. One bottom-up pass gives every subtree's equivalent
//! kv, the pump's operating point follows in closed form from its quadratic curve, and one
//! top-down pass gives every node's pressure and every branch's flow, each branch from its own
//! pressure difference (so the mass balance at each node is a real check of the two passes).
//! Speed alone changes nothing but a common factor (affinity: Q ∝ n), so the network is solved
//! again only when a valve's kv changes.

use crate::physics::RHO_WATER_KG_M3;

/// Kinematic viscosity of water at about 60 °C, m²/s (for the friction factor at design flow).
pub const NU_WATER_M2_S: f64 = 0.47e-6;

/// Inner diameters of standard steel pipes DN15 ... DN500, m (EN 10255 / EN 10220 medium
/// series, rounded): the sizes the mains and risers are chosen from.
pub const PIPE_INNER_DIAMETERS_M: [f64; 18] = [
    0.0160, 0.0216, 0.0272, 0.0359, 0.0418, 0.0530, 0.0688, 0.0808, 0.1053, 0.1300, 0.1554, 0.2049,
    0.2545, 0.3048, 0.3366, 0.3874, 0.4382, 0.4890,
];

/// kv of `r` (bar per (m³/h)²) in series with a subtree of kv `k`: `1 / sqrt(r + 1 / k²)`;
/// 0 when the subtree passes nothing.
#[must_use]
pub fn series_kv(r: f64, k: f64) -> f64 {
    if k <= 0.0 {
        0.0
    } else {
        1.0 / (r + 1.0 / (k * k)).sqrt()
    }
}

/// kv of elements in series given by their kv: `1 / sqrt(Σ 1 / kv_i²)`; 0 when one is closed.
#[must_use]
pub fn series_of_kvs(kvs: &[f64]) -> f64 {
    let mut s = 0.0;
    for &k in kvs {
        if k <= 0.0 {
            return 0.0;
        }
        s += 1.0 / (k * k);
    }
    if s > 0.0 { 1.0 / s.sqrt() } else { 0.0 }
}

/// Swamee-Jain explicit approximation of the Colebrook friction factor.
#[must_use]
pub fn friction_factor(reynolds: f64, roughness_m: f64, diameter_m: f64) -> f64 {
    if reynolds < 2300.0 {
        return 64.0 / reynolds.max(1.0);
    }
    let x = roughness_m / (3.7 * diameter_m) + 5.74 / reynolds.powf(0.9);
    0.25 / x.log10().powi(2)
}

/// Resistance of a pipe of `length_m` and inner `diameter_m` with friction factor `lambda`
/// (Darcy-Weisbach, `dp = 8 λ L ρ Q² / (π² D⁵)`), in bar per (m³/h)².
#[must_use]
pub fn pipe_resistance(length_m: f64, diameter_m: f64, lambda: f64) -> f64 {
    let pa_per_m3s2 = 8.0 * lambda * length_m * RHO_WATER_KG_M3
        / (std::f64::consts::PI.powi(2) * diameter_m.powi(5));
    pa_per_m3s2 / (3600.0 * 3600.0) / 1e5
}

/// A pipe sized for `flow_m3h`: the smallest standard diameter whose specific pressure loss at
/// that flow does not exceed `design_pa_m` (the largest size when none does). Returns
/// (diameter m, friction factor at that flow, held fixed).
#[must_use]
pub fn size_pipe(flow_m3h: f64, design_pa_m: f64, roughness_m: f64) -> (f64, f64) {
    let q = flow_m3h / 3600.0;
    let lambda_at = |d: f64| {
        let v = q / (std::f64::consts::PI * d * d / 4.0);
        friction_factor(v * d / NU_WATER_M2_S, roughness_m, d)
    };
    for &d in &PIPE_INNER_DIAMETERS_M {
        let l = lambda_at(d);
        let r_pa_m = pipe_resistance(1.0, d, l) * 1e5 * flow_m3h * flow_m3h;
        if r_pa_m <= design_pa_m {
            return (d, l);
        }
    }
    let d = PIPE_INNER_DIAMETERS_M[PIPE_INNER_DIAMETERS_M.len() - 1];
    (d, lambda_at(d))
}

/// Flow fraction kv/kvs of an equal-percentage valve at `pos_pct` with rangeability `r`:
/// `r^(pos/100 - 1)` when open, 0 when shut.
#[must_use]
pub fn equal_percentage(pos_pct: f64, r: f64) -> f64 {
    if pos_pct <= 0.0 {
        0.0
    } else {
        r.powf(pos_pct.min(100.0) / 100.0 - 1.0)
    }
}

/// The circulation pump: head `H(Q, n) = H0 n² - k Q²` (n = speed / design speed), which obeys
/// the affinity laws Q ∝ n, H ∝ n², P ∝ n³ exactly; power from a parabolic efficiency curve
/// with its best point at the design flow and a drive whose losses split into a part falling
/// with speed and a part with the square of the load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pump {
    /// Shut-off head at 100 % speed, bar.
    pub h0_bar: f64,
    /// Curve coefficient, bar per (m³/h)².
    pub k_bar_m3h2: f64,
    /// Flow of the best-efficiency point at 100 % speed, m³/h.
    pub q_bep_m3h: f64,
    /// Pump efficiency at the best-efficiency point.
    pub eta_bep: f64,
    /// Drive (motor and converter) efficiency at rated load.
    pub eta_drive: f64,
    /// Share of the drive's rated losses that fall with speed only.
    pub fixed_loss_share: f64,
    /// Rated shaft power of the motor, kW.
    pub rated_kw: f64,
}

impl Pump {
    /// A pump whose curve passes through the design point (`q_design_m3h`, `h_design_bar`) with
    /// a shut-off head `shutoff_ratio` times the design head; the motor rated 15 % above the
    /// shaft power at the design point.
    #[must_use]
    pub fn through_design_point(
        q_design_m3h: f64,
        h_design_bar: f64,
        shutoff_ratio: f64,
        eta_bep: f64,
        eta_drive: f64,
        fixed_loss_share: f64,
    ) -> Pump {
        let h0 = shutoff_ratio * h_design_bar;
        let mut p = Pump {
            h0_bar: h0,
            k_bar_m3h2: if q_design_m3h > 0.0 {
                (h0 - h_design_bar) / (q_design_m3h * q_design_m3h)
            } else {
                0.0
            },
            q_bep_m3h: q_design_m3h.max(1e-9),
            eta_bep,
            eta_drive,
            fixed_loss_share,
            rated_kw: 1.0,
        };
        p.rated_kw = (1.15 * p.shaft_kw(q_design_m3h, 1.0)).max(1e-6);
        p
    }

    /// Head at flow `q_m3h` and relative speed `n`, bar (may be negative beyond the curve).
    #[must_use]
    pub fn head_bar(&self, q_m3h: f64, n: f64) -> f64 {
        self.h0_bar * n * n - self.k_bar_m3h2 * q_m3h * q_m3h
    }

    /// Operating point on a system `dp = r_system · Q²` at relative speed `n`: flow, m³/h.
    #[must_use]
    pub fn operating_flow_m3h(&self, r_system: f64, n: f64) -> f64 {
        if n <= 0.0 || !r_system.is_finite() {
            return 0.0;
        }
        n * (self.h0_bar / (self.k_bar_m3h2 + r_system)).sqrt()
    }

    /// Pump efficiency at flow `q_m3h` and relative speed `n`: the parabola
    /// `η_bep · x (2 - x)`, x = (Q / n) / Q_bep (constant along the affinity parabolas).
    #[must_use]
    pub fn efficiency(&self, q_m3h: f64, n: f64) -> f64 {
        if n <= 0.0 {
            return 0.0;
        }
        let x = (q_m3h / n / self.q_bep_m3h).clamp(0.0, 1.9);
        self.eta_bep * x * (2.0 - x)
    }

    /// Shaft power, kW: hydraulic power Q·H over the efficiency, in the form that stays finite
    /// at zero flow, `n³ · H(Q/n, 1) · Q_bep / (η_bep (2 - x))`.
    #[must_use]
    pub fn shaft_kw(&self, q_m3h: f64, n: f64) -> f64 {
        if n <= 0.0 {
            return 0.0;
        }
        let q1 = q_m3h / n;
        let x = (q1 / self.q_bep_m3h).clamp(0.0, 1.9);
        let h1_kpa = (self.head_bar(q1, 1.0) * 100.0).max(0.0);
        n.powi(3) * h1_kpa * (self.q_bep_m3h / 3600.0) / (self.eta_bep * (2.0 - x))
    }

    /// Electric power, kW: shaft power plus the drive's losses,
    /// `P_rated (1/η_drive - 1) (s · n + (1 - s) · (P_shaft / P_rated)²)`.
    #[must_use]
    pub fn electric_kw(&self, q_m3h: f64, n: f64) -> f64 {
        if n <= 0.0 {
            return 0.0;
        }
        let shaft = self.shaft_kw(q_m3h, n);
        let load = shaft / self.rated_kw;
        let s = self.fixed_loss_share;
        shaft + self.rated_kw * (1.0 / self.eta_drive - 1.0) * (s * n + (1.0 - s) * load * load)
    }
}

/// The tree: buildings along one main, each with one riser of `floors` floors of `units` flats.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Buildings along the mains (0 = nearest the substation).
    pub buildings: usize,
    /// Floors per building.
    pub floors: usize,
    /// Flats per floor.
    pub units: usize,
    /// Loop resistance (supply and return) of the mains segment into building b's connection
    /// (from the station for b = 0, from building b - 1's otherwise), bar per (m³/h)².
    pub r_mains: Vec<f64>,
    /// Loop resistance of building b's riser below floor f (f = 0: from the connection on the
    /// mains to the ground floor), at `b * floors + f`.
    pub r_riser: Vec<f64>,
    /// Resistance of the station (exchanger secondary side and station piping).
    pub r_station: f64,
    /// Building with the remote differential-pressure sensor at its riser foot.
    pub index_building: usize,
}

/// The network: layout, pump, every flat's branch and the solution at 100 % speed.
#[derive(Debug, Clone)]
pub struct Network {
    layout: Layout,
    pump: Pump,
    /// Radiator circuit kv per flat, fouling included.
    kv_rad: Vec<f64>,
    /// Balancing valve kv per flat.
    kv_bal: Vec<f64>,
    /// Household valve kvs per flat (empty without household valves).
    kvs_hh: Vec<f64>,
    hh_rangeability: f64,
    /// Household valve positions the solution holds, %.
    hh_pos_pct: Vec<f64>,
    // Solution at n = 1 (every flow scales with n).
    kv_flat: Vec<f64>,
    k_floor: Vec<f64>,
    k_bld: Vec<f64>,
    k_node: Vec<f64>,
    k_net: f64,
    q_flat: Vec<f64>,
    q_riser: Vec<f64>,
    q_bld: Vec<f64>,
    q_mains: Vec<f64>,
    dp_floor: Vec<f64>,
    dp_node: Vec<f64>,
    q_total: f64,
    dp_net: f64,
}

impl Network {
    /// A network of `layout` with its pump and, per flat (building-major, then floor, then
    /// unit), the radiator circuit's kv, the balancing valve's kv and the household valve's kvs
    /// (`kvs_hh` empty without household valves; they start fully open).
    ///
    /// # Panics
    /// When the per-flat vectors do not match the layout (a programming error).
    #[must_use]
    pub fn new(
        layout: Layout,
        pump: Pump,
        kv_rad: Vec<f64>,
        kv_bal: Vec<f64>,
        kvs_hh: Vec<f64>,
        hh_rangeability: f64,
    ) -> Network {
        let n = layout.buildings * layout.floors * layout.units;
        assert_eq!(kv_rad.len(), n, "one radiator kv per flat");
        assert_eq!(kv_bal.len(), n, "one balancing kv per flat");
        assert!(kvs_hh.is_empty() || kvs_hh.len() == n, "household kvs");
        assert_eq!(layout.r_mains.len(), layout.buildings, "mains segments");
        assert_eq!(
            layout.r_riser.len(),
            layout.buildings * layout.floors,
            "riser segments"
        );
        let nf = layout.buildings * layout.floors;
        let nb = layout.buildings;
        let hh_pos_pct = vec![100.0; kvs_hh.len()];
        let n_flats = kv_rad.len();
        let mut net = Network {
            pump,
            kv_rad,
            kv_bal,
            kvs_hh,
            hh_rangeability,
            hh_pos_pct,
            kv_flat: vec![0.0; n],
            k_floor: vec![0.0; nf],
            k_bld: vec![0.0; nb],
            k_node: vec![0.0; nb],
            k_net: 0.0,
            q_flat: vec![0.0; n],
            q_riser: vec![0.0; nf],
            q_bld: vec![0.0; nb],
            q_mains: vec![0.0; nb],
            dp_floor: vec![0.0; nf],
            dp_node: vec![0.0; nb],
            q_total: 0.0,
            dp_net: 0.0,
            layout,
        };
        for i in 0..n_flats {
            net.update_flat(i);
        }
        net.solve();
        net
    }

    /// Flat `i`'s branch kv from its elements in series.
    fn update_flat(&mut self, i: usize) {
        self.kv_flat[i] = if self.kvs_hh.is_empty() {
            series_of_kvs(&[self.kv_rad[i], self.kv_bal[i]])
        } else {
            let hh = self.kvs_hh[i] * equal_percentage(self.hh_pos_pct[i], self.hh_rangeability);
            series_of_kvs(&[self.kv_rad[i], self.kv_bal[i], hh])
        };
    }

    /// The layout.
    #[must_use]
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The pump.
    #[must_use]
    pub fn pump(&self) -> &Pump {
        &self.pump
    }

    /// Balancing valve kv per flat, m³/h at 1 bar.
    #[must_use]
    pub fn balancing_kv(&self) -> &[f64] {
        &self.kv_bal
    }

    /// Radiator circuit kv per flat (fouling included), m³/h at 1 bar.
    #[must_use]
    pub fn radiator_kv(&self) -> &[f64] {
        &self.kv_rad
    }

    /// Household valve kvs per flat (empty without household valves), m³/h at 1 bar.
    #[must_use]
    pub fn household_kvs(&self) -> &[f64] {
        &self.kvs_hh
    }

    /// Set flat `i`'s balancing valve kv (clamped to ≥ 0) and solve again.
    pub fn set_balancing_kv(&mut self, i: usize, kv: f64) {
        if let Some(k) = self.kv_bal.get_mut(i)
            && kv.is_finite()
        {
            *k = kv.max(0.0);
            self.update_flat(i);
            self.solve();
        }
    }

    /// Take the household valves' positions (%, per flat); solve again when one changed.
    pub fn set_household_positions(&mut self, pos_pct: impl Iterator<Item = f64>) {
        let mut changed = false;
        for (i, new) in pos_pct.enumerate().take(self.hh_pos_pct.len()) {
            if self.hh_pos_pct[i].to_bits() != new.to_bits() {
                self.hh_pos_pct[i] = new;
                self.update_flat(i);
                changed = true;
            }
        }
        if changed {
            self.solve();
        }
    }

    /// Solve at 100 % speed from the flats' branch kv: bottom-up equivalent kv, the pump's
    /// operating point, top-down pressures and flows.
    fn solve(&mut self) {
        let (nb, nfl, nu) = (self.layout.buildings, self.layout.floors, self.layout.units);
        // Bottom-up.
        for b in 0..nb {
            let mut above = 0.0;
            for f in (0..nfl).rev() {
                let j = b * nfl + f;
                let first = j * nu;
                let flats: f64 = self.kv_flat[first..first + nu].iter().sum();
                let k = flats + above;
                self.k_floor[j] = k;
                above = series_kv(self.layout.r_riser[j], k);
            }
            self.k_bld[b] = above;
        }
        let mut beyond = 0.0;
        for b in (0..nb).rev() {
            self.k_node[b] = self.k_bld[b] + beyond;
            beyond = series_kv(self.layout.r_mains[b], self.k_node[b]);
        }
        self.k_net = beyond;
        // The pump on station + network.
        let r_sys = if self.k_net > 0.0 {
            self.layout.r_station + 1.0 / (self.k_net * self.k_net)
        } else {
            f64::INFINITY
        };
        let q = self.pump.operating_flow_m3h(r_sys, 1.0);
        self.q_total = q;
        self.dp_net = if self.k_net > 0.0 {
            (q / self.k_net).powi(2)
        } else {
            self.pump.h0_bar
        };
        // Top-down: each branch's flow from its own pressure difference.
        let mut dp = self.dp_net;
        let mut q_in = q;
        for b in 0..nb {
            self.q_mains[b] = q_in;
            let dpn = (dp - self.layout.r_mains[b] * q_in * q_in).max(0.0);
            self.dp_node[b] = dpn;
            let qb = self.k_bld[b] * dpn.sqrt();
            self.q_bld[b] = qb;
            let mut dpf = dpn;
            let mut qr = qb;
            for f in 0..nfl {
                let j = b * nfl + f;
                self.q_riser[j] = qr;
                dpf = (dpf - self.layout.r_riser[j] * qr * qr).max(0.0);
                self.dp_floor[j] = dpf;
                let s = dpf.sqrt();
                let first = j * nu;
                for i in first..first + nu {
                    self.q_flat[i] = self.kv_flat[i] * s;
                }
                // The rest goes up: the subtree above, from the same pressure.
                qr = if f + 1 < nfl {
                    series_kv(self.layout.r_riser[j + 1], self.k_floor[j + 1]) * s
                } else {
                    0.0
                };
            }
            dp = dpn;
            q_in = if b + 1 < nb {
                series_kv(self.layout.r_mains[b + 1], self.k_node[b + 1]) * dpn.sqrt()
            } else {
                0.0
            };
        }
    }

    /// Flow of flat `i` at relative speed 1, m³/h.
    #[must_use]
    pub fn flat_flow_m3h_at_design_speed(&self, i: usize) -> f64 {
        self.q_flat[i]
    }

    /// Flows of every flat at relative speed 1, m³/h.
    #[must_use]
    pub fn flat_flows_m3h_at_design_speed(&self) -> &[f64] {
        &self.q_flat
    }

    /// Total flow at relative speed `n`, m³/h.
    #[must_use]
    pub fn total_flow_m3h(&self, n: f64) -> f64 {
        self.q_total * n.max(0.0)
    }

    /// Differential pressure across the network at the station outlet at speed `n`, kPa.
    #[must_use]
    pub fn dp_station_kpa(&self, n: f64) -> f64 {
        if self.k_net > 0.0 {
            self.dp_net * n * n * 100.0
        } else {
            self.pump.head_bar(0.0, n) * 100.0
        }
    }

    /// Differential pressure at the foot of building `b`'s riser at speed `n`, kPa.
    #[must_use]
    pub fn dp_building_kpa(&self, b: usize, n: f64) -> f64 {
        if self.k_net > 0.0 {
            self.dp_node.get(b).copied().unwrap_or(f64::NAN) * n * n * 100.0
        } else {
            self.dp_station_kpa(n)
        }
    }

    /// Differential pressure at floor `f` of building `b` (where its flats branch off) at speed
    /// `n`, kPa.
    #[must_use]
    pub fn dp_floor_kpa(&self, b: usize, f: usize, n: f64) -> f64 {
        self.dp_floor[b * self.layout.floors + f] * n * n * 100.0
    }

    /// Pump head at speed `n`, kPa.
    #[must_use]
    pub fn pump_head_kpa(&self, n: f64) -> f64 {
        self.pump.head_bar(self.total_flow_m3h(n), n).max(0.0) * 100.0
    }

    /// The largest imbalance of mass at any node of the solution at speed 1, m³/h: at the
    /// pump (network inflow vs. the sum of the buildings), at each connection on the mains
    /// and at each floor of each riser (inflow vs. the flats and the riser above).
    #[must_use]
    pub fn mass_balance_residual_m3h(&self) -> f64 {
        let (nb, nfl, nu) = (self.layout.buildings, self.layout.floors, self.layout.units);
        let mut worst: f64 = 0.0;
        let bld_sum: f64 = self.q_bld.iter().sum();
        worst = worst.max((self.q_total - bld_sum).abs());
        for b in 0..nb {
            let next = if b + 1 < nb { self.q_mains[b + 1] } else { 0.0 };
            worst = worst.max((self.q_mains[b] - self.q_bld[b] - next).abs());
            for f in 0..nfl {
                let j = b * nfl + f;
                let up = if f + 1 < nfl {
                    self.q_riser[j + 1]
                } else {
                    0.0
                };
                let flats: f64 = self.q_flat[j * nu..(j + 1) * nu].iter().sum();
                worst = worst.max((self.q_riser[j] - flats - up).abs());
            }
        }
        worst
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_percentage_is_shut_at_zero_and_kvs_open() {
        assert_eq!(equal_percentage(0.0, 30.0), 0.0);
        assert!((equal_percentage(100.0, 30.0) - 1.0).abs() < 1e-12);
        assert!((equal_percentage(50.0, 30.0) - 30f64.powf(-0.5)).abs() < 1e-12);
    }

    #[test]
    fn friction_factor_of_a_rough_pipe() {
        // Fully rough: Re large, λ from Nikuradse 1/sqrt(λ) = 2 log10(3.7 D / ε).
        let (d, e): (f64, f64) = (0.1, 0.5e-3);
        let want = (1.0 / (2.0 * (3.7 * d / e).log10())).powi(2);
        let got = friction_factor(1e9, e, d);
        assert!((got / want - 1.0).abs() < 0.02, "{got} vs {want}");
    }

    #[test]
    fn sized_pipe_respects_its_design_loss() {
        let (d, l) = size_pipe(50.0, 60.0, 0.5e-3);
        let r = pipe_resistance(1.0, d, l) * 1e5 * 50.0 * 50.0;
        assert!(r <= 60.0, "{r} Pa/m");
        // The next size down would exceed it.
        let k = PIPE_INNER_DIAMETERS_M.iter().position(|&x| x == d).unwrap();
        let dn = PIPE_INNER_DIAMETERS_M[k - 1];
        let v = 50.0 / 3600.0 / (std::f64::consts::PI * dn * dn / 4.0);
        let ln = friction_factor(v * dn / NU_WATER_M2_S, 0.5e-3, dn);
        assert!(pipe_resistance(1.0, dn, ln) * 1e5 * 2500.0 > 60.0);
    }
}
