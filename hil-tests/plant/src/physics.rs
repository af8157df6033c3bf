//! Components of the substation: valve, actuator, heat exchanger, plug-flow pipe, radiator law,
//! and the exact discretisation of the linear two-node apartment model.

use std::collections::VecDeque;

/// Specific heat of water, J/(kg K).
pub const CP_WATER_J_KGK: f64 = 4190.0;
/// Density of water used to convert mass flow to volume flow, kg/m³.
pub const RHO_WATER_KG_M3: f64 = 980.0;
/// EN 442 radiator exponent.
pub const RADIATOR_EXPONENT: f64 = 1.3;
/// EN 442 nominal excess temperature (75/65/20), K.
pub const RADIATOR_NOMINAL_EXCESS_K: f64 = 49.8;

/// Equal-percentage valve with authority: relative flow m / m_max at opening `u_pct`.
/// phi(u) = R^(u-1); m/m_max = phi / sqrt(a + (1-a) phi²). A closed valve (u <= 0) shuts off.
pub fn valve_flow_fraction(u_pct: f64, rangeability: f64, authority: f64) -> f64 {
    let u = (u_pct / 100.0).clamp(0.0, 1.0);
    if u <= 0.0 {
        return 0.0;
    }
    let phi = rangeability.powf(u - 1.0);
    phi / (authority + (1.0 - authority) * phi * phi).sqrt()
}

/// Inverse of [`valve_flow_fraction`]: opening in % that passes `fraction` of the maximum flow.
pub fn valve_opening_for_fraction_pct(fraction: f64, rangeability: f64, authority: f64) -> f64 {
    let f = fraction.clamp(0.0, 1.0);
    if f <= 0.0 {
        return 0.0;
    }
    let phi = f * (authority / (1.0 - f * f * (1.0 - authority))).sqrt();
    (100.0 * (1.0 + phi.ln() / rangeability.ln())).clamp(0.0, 100.0)
}

/// A rate-limited valve actuator with a dead band.
#[derive(Debug, Clone)]
pub struct Actuator {
    /// Commanded position, %.
    pub cmd_pct: f64,
    /// Position reached, %.
    pub pos_pct: f64,
    /// Time for a full stroke, s.
    pub stroke_s: f64,
    /// Dead band, %.
    pub deadband_pct: f64,
    /// Stuck: the position does not move.
    pub stuck: bool,
    moving: bool,
}

impl Actuator {
    /// An actuator at rest at `pos_pct`.
    pub fn new(pos_pct: f64, stroke_s: f64, deadband_pct: f64) -> Actuator {
        Actuator {
            cmd_pct: pos_pct,
            pos_pct,
            stroke_s,
            deadband_pct,
            stuck: false,
            moving: false,
        }
    }

    /// Advance by `dt_s`.
    pub fn step(&mut self, dt_s: f64) {
        if self.stuck {
            return;
        }
        let d = self.cmd_pct - self.pos_pct;
        if !self.moving && d.abs() <= self.deadband_pct {
            return;
        }
        self.moving = true;
        let max = 100.0 / self.stroke_s * dt_s;
        if d.abs() <= max {
            self.pos_pct = self.cmd_pct;
            self.moving = false;
        } else {
            self.pos_pct += max.copysign(d);
        }
    }

    /// Set the command, clamped to 0..100 %.
    pub fn command(&mut self, pct: f64) {
        if pct.is_finite() {
            self.cmd_pct = pct.clamp(0.0, 100.0);
        }
    }
}

/// Design data of the plate heat exchanger.
#[derive(Debug, Clone, Copy)]
pub struct ExchangerDesign {
    /// UA at nominal flows, W/K.
    pub ua_nom_w_k: f64,
    /// Nominal primary mass flow, kg/s.
    pub flow1_nom_kg_s: f64,
    /// Nominal secondary mass flow, kg/s.
    pub flow2_nom_kg_s: f64,
}

/// Result of the effectiveness-NTU computation.
#[derive(Debug, Clone, Copy)]
pub struct Exchange {
    /// Heat transferred, W.
    pub q_w: f64,
    /// Primary outlet, °C.
    pub t1_return_c: f64,
    /// Secondary outlet, °C.
    pub t2_supply_c: f64,
}

impl ExchangerDesign {
    /// Size the exchanger: UA_nom = Q_nom / LMTD_nom for counter-flow at the design temperatures.
    pub fn size(
        q_nom_w: f64,
        t1_supply: f64,
        t1_return: f64,
        t2_supply: f64,
        t2_return: f64,
    ) -> ExchangerDesign {
        let d1 = t1_supply - t2_supply;
        let d2 = t1_return - t2_return;
        let lmtd = if (d1 - d2).abs() < 1e-9 {
            d1
        } else {
            (d1 - d2) / (d1 / d2).ln()
        };
        ExchangerDesign {
            ua_nom_w_k: q_nom_w / lmtd,
            flow1_nom_kg_s: q_nom_w / (CP_WATER_J_KGK * (t1_supply - t1_return)),
            flow2_nom_kg_s: q_nom_w / (CP_WATER_J_KGK * (t2_supply - t2_return)),
        }
    }

    /// UA at the given flows: 1 / (1/hA_p + 1/hA_s), hA_x = 2 UA_nom (m_x / m_x_nom)^0.8.
    pub fn ua_w_k(&self, m_p: f64, m_s: f64) -> f64 {
        let ha_p = 2.0 * self.ua_nom_w_k * (m_p / self.flow1_nom_kg_s).powf(0.8);
        let ha_s = 2.0 * self.ua_nom_w_k * (m_s / self.flow2_nom_kg_s).powf(0.8);
        if ha_p <= 0.0 || ha_s <= 0.0 {
            return 0.0;
        }
        1.0 / (1.0 / ha_p + 1.0 / ha_s)
    }

    /// Counter-flow effectiveness-NTU: outlets and heat for inlet temperatures and flows.
    pub fn exchange(&self, m_p: f64, m_s: f64, t1_supply: f64, t2_return: f64) -> Exchange {
        let c_p = m_p * CP_WATER_J_KGK;
        let c_s = m_s * CP_WATER_J_KGK;
        if c_p <= 1e-9 || c_s <= 1e-9 {
            return Exchange {
                q_w: 0.0,
                t1_return_c: if c_s > 1e-9 { t2_return } else { t1_supply },
                t2_supply_c: t2_return,
            };
        }
        let c_min = c_p.min(c_s);
        let c_r = c_min / c_p.max(c_s);
        let ntu = self.ua_w_k(m_p, m_s) / c_min;
        let eps = if (1.0 - c_r).abs() < 1e-6 {
            ntu / (1.0 + ntu)
        } else {
            let e = (-ntu * (1.0 - c_r)).exp();
            (1.0 - e) / (1.0 - c_r * e)
        };
        let q = eps * c_min * (t1_supply - t2_return);
        Exchange {
            q_w: q,
            t1_return_c: t1_supply - q / c_p,
            t2_supply_c: t2_return + q / c_s,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Parcel {
    mass_kg: f64,
    temp_c: f64,
    entered_s: f64,
}

/// A pipe with plug flow and heat loss: a queue of water parcels. Each parcel leaves after the
/// pipe's water mass has been pushed in behind it (exact under varying flow) and has cooled
/// towards the ambient as exp(-residence / tau_loss).
#[derive(Debug, Clone)]
pub struct PlugFlowPipe {
    parcels: VecDeque<Parcel>,
    /// Water mass held by the pipe, kg.
    pub mass_kg: f64,
    /// Time constant of the heat loss (R'C'), s.
    pub tau_loss_s: f64,
    /// Ambient temperature, °C.
    pub ambient_c: f64,
    last_out_c: f64,
    /// Heat lost to the ambient by the water that left, J (cumulative).
    pub lost_j: f64,
}

impl PlugFlowPipe {
    /// A pipe full of water at `temp_c` that entered at time `now_s`.
    pub fn new(
        mass_kg: f64,
        tau_loss_s: f64,
        ambient_c: f64,
        temp_c: f64,
        now_s: f64,
    ) -> PlugFlowPipe {
        let mut parcels = VecDeque::with_capacity(1024);
        parcels.push_back(Parcel {
            mass_kg,
            temp_c,
            entered_s: now_s,
        });
        PlugFlowPipe {
            parcels,
            mass_kg,
            tau_loss_s,
            ambient_c,
            last_out_c: temp_c,
            lost_j: 0.0,
        }
    }

    /// Push `mass_kg` of water at `temp_c` in at time `now_s`; the same mass leaves. Returns the
    /// mean outlet temperature of the water that left (the last one when nothing flowed).
    pub fn push(&mut self, mass_kg: f64, temp_c: f64, now_s: f64) -> f64 {
        if mass_kg <= 0.0 {
            return self.last_out_c;
        }
        self.fill(mass_kg, temp_c, now_s);
        self.take(mass_kg, now_s)
    }

    /// Put `mass_kg` of water at `temp_c` in at the inlet, entered at time `entered_s`, without
    /// taking any out (the pipe holds more until [`PlugFlowPipe::take`] draws it): with `take`,
    /// the outlet can be drawn over a step before the inlet's water of that step is known.
    pub fn fill(&mut self, mass_kg: f64, temp_c: f64, entered_s: f64) {
        if mass_kg <= 0.0 {
            return;
        }
        // Merge with the newest parcel when it has the same temperature and entry time
        // (keeps the queue short at constant conditions).
        match self.parcels.back_mut() {
            Some(b)
                if b.temp_c.to_bits() == temp_c.to_bits()
                    && b.entered_s.to_bits() == entered_s.to_bits() =>
            {
                b.mass_kg += mass_kg;
            }
            _ => self.parcels.push_back(Parcel {
                mass_kg,
                temp_c,
                entered_s,
            }),
        }
    }

    /// Draw `mass_kg` of water from the outlet at time `now_s`, oldest first, each parcel cooled
    /// by its residence; the heat it lost on the way is booked in [`PlugFlowPipe::lost_j`].
    /// Returns its mean temperature (the last one when nothing flowed). Should the pipe hold
    /// less than `mass_kg`, the rest leaves at the last outlet temperature (not conserved: a
    /// step's flow must not exceed the pipe's content).
    pub fn take(&mut self, mass_kg: f64, now_s: f64) -> f64 {
        if mass_kg <= 0.0 {
            return self.last_out_c;
        }
        let mut need = mass_kg;
        let mut heat = 0.0;
        let mut lost = 0.0;
        while need > 1e-12 {
            let Some(front) = self.parcels.front_mut() else {
                break;
            };
            let take = front.mass_kg.min(need);
            let age = (now_s - front.entered_s).max(0.0);
            let t_out =
                self.ambient_c + (front.temp_c - self.ambient_c) * (-age / self.tau_loss_s).exp();
            heat += take * t_out;
            lost += take * (front.temp_c - t_out);
            front.mass_kg -= take;
            need -= take;
            if front.mass_kg <= 1e-12 {
                self.parcels.pop_front();
            }
        }
        heat += need.max(0.0) * self.last_out_c;
        self.last_out_c = heat / mass_kg;
        self.lost_j += lost * CP_WATER_J_KGK;
        self.last_out_c
    }

    /// Heat held by the water in the pipe now (mass x c x its inlet temperature; the loss of a
    /// parcel is booked when it leaves), J above 0 °C.
    pub fn stored_heat_j(&self) -> f64 {
        self.parcels
            .iter()
            .map(|p| p.mass_kg * p.temp_c)
            .sum::<f64>()
            * CP_WATER_J_KGK
    }

    /// Mean temperature of the water in the pipe (no loss applied), °C.
    pub fn mean_temp_c(&self) -> f64 {
        let (m, e) = self.parcels.iter().fold((0.0, 0.0), |(m, e), p| {
            (m + p.mass_kg, e + p.mass_kg * p.temp_c)
        });
        if m > 0.0 { e / m } else { self.last_out_c }
    }

    /// Transport delay at a constant mass flow, s.
    pub fn delay_at_s(&self, m_kg_s: f64) -> f64 {
        self.mass_kg / m_kg_s
    }
}

/// Radiator law Q/Q_n = (dT/49.8)^1.3 by table, with its slope: linear interpolation in
/// 1/16 K cells (avoids a powf per apartment and step). Negative dT is mirrored.
#[derive(Debug, Clone)]
pub struct RadiatorLaw {
    y: Vec<f64>,
}

const RAD_CELLS_PER_K: f64 = 16.0;
const RAD_CELLS: usize = 16 * 160;

impl RadiatorLaw {
    /// Build the table.
    pub fn new() -> RadiatorLaw {
        let y = (0..=RAD_CELLS)
            .map(|i| {
                (i as f64 / RAD_CELLS_PER_K / RADIATOR_NOMINAL_EXCESS_K).powf(RADIATOR_EXPONENT)
            })
            .collect();
        RadiatorLaw { y }
    }

    /// (Q/Q_n, d(Q/Q_n)/d(dT)) at excess temperature `dt_k`.
    #[inline]
    pub fn eval(&self, dt_k: f64) -> (f64, f64) {
        let neg = dt_k < 0.0;
        let x = dt_k.abs() * RAD_CELLS_PER_K;
        let i = (x as usize).min(RAD_CELLS - 1);
        let y0 = self.y[i];
        let dy = self.y[i + 1] - y0;
        let q = y0 + (x - i as f64) * dy;
        let slope = dy * RAD_CELLS_PER_K;
        if neg { (-q, slope) } else { (q, slope) }
    }

    /// Exact law (for sizing).
    pub fn exact(dt_k: f64) -> f64 {
        (dt_k.abs() / RADIATOR_NOMINAL_EXCESS_K)
            .powf(RADIATOR_EXPONENT)
            .copysign(dt_k)
    }
}

impl Default for RadiatorLaw {
    fn default() -> Self {
        Self::new()
    }
}

/// 2x2 matrix, row-major.
pub(crate) type M2 = [f64; 4];

fn mul(a: &M2, b: &M2) -> M2 {
    [
        a[0] * b[0] + a[1] * b[2],
        a[0] * b[1] + a[1] * b[3],
        a[2] * b[0] + a[3] * b[2],
        a[2] * b[1] + a[3] * b[3],
    ]
}

fn inv(a: &M2) -> M2 {
    let det = a[0] * a[3] - a[1] * a[2];
    [a[3] / det, -a[1] / det, -a[2] / det, a[0] / det]
}

/// exp(A h) by scaling and squaring with a Taylor series.
pub(crate) fn expm(a: &M2, h: f64) -> M2 {
    let norm = a.iter().map(|x| x.abs()).fold(0.0, f64::max) * h * 2.0;
    let mut s = 0;
    while norm / f64::from(1u32 << s.min(30)) > 0.25 && s < 60 {
        s += 1;
    }
    let scale = h / 2f64.powi(s);
    let x = [a[0] * scale, a[1] * scale, a[2] * scale, a[3] * scale];
    let mut sum = [1.0, 0.0, 0.0, 1.0];
    let mut term = [1.0, 0.0, 0.0, 1.0];
    for k in 1..20 {
        term = mul(&term, &x);
        let f = 1.0 / k as f64;
        term = [term[0] * f, term[1] * f, term[2] * f, term[3] * f];
        for i in 0..4 {
            sum[i] += term[i];
        }
    }
    for _ in 0..s {
        sum = mul(&sum, &sum);
    }
    sum
}

/// Exact zero-order-hold discretisation of x' = A x + B u over a step h, with B 2x4:
/// x1 = phi x0 + gam u, and the step mean x̄ = psi x0 + lam u.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Discrete {
    pub(crate) phi: M2,
    pub(crate) gam: [f64; 8],
    pub(crate) psi: M2,
    pub(crate) lam: [f64; 8],
}

fn mul_b(m: &M2, b: &[f64; 8]) -> [f64; 8] {
    let mut r = [0.0; 8];
    for j in 0..4 {
        r[j] = m[0] * b[j] + m[1] * b[4 + j];
        r[4 + j] = m[2] * b[j] + m[3] * b[4 + j];
    }
    r
}

pub(crate) fn discretise(a: &M2, b: &[f64; 8], h: f64) -> Discrete {
    let phi = expm(a, h);
    let ai = inv(a);
    let phi_mi = [phi[0] - 1.0, phi[1], phi[2], phi[3] - 1.0];
    let gam = mul_b(&mul(&ai, &phi_mi), b);
    let psi0 = mul(&ai, &phi_mi);
    let psi = [psi0[0] / h, psi0[1] / h, psi0[2] / h, psi0[3] / h];
    let psi_mi = [psi[0] - 1.0, psi[1], psi[2], psi[3] - 1.0];
    let lam = mul_b(&mul(&ai, &psi_mi), b);
    Discrete { phi, gam, psi, lam }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_point_of_the_exchanger() {
        let x = ExchangerDesign::size(4.0e6, 120.0, 60.0, 75.0, 50.0);
        assert!(
            (x.ua_nom_w_k / 1000.0 - 172.0).abs() < 0.5,
            "UA {}",
            x.ua_nom_w_k
        );
        let e = x.exchange(x.flow1_nom_kg_s, x.flow2_nom_kg_s, 120.0, 50.0);
        assert!((e.q_w - 4.0e6).abs() / 4.0e6 < 0.002, "Q {}", e.q_w);
        assert!((e.t1_return_c - 60.0).abs() < 0.1 && (e.t2_supply_c - 75.0).abs() < 0.1);
    }

    #[test]
    fn valve_inverse_round_trips() {
        for f in [0.05, 0.2, 0.5, 0.833, 1.0] {
            let u = valve_opening_for_fraction_pct(f, 50.0, 0.5);
            assert!((valve_flow_fraction(u, 50.0, 0.5) - f).abs() < 1e-9);
        }
    }

    #[test]
    fn actuator_is_rate_limited_with_dead_band() {
        let mut a = Actuator::new(50.0, 120.0, 0.5);
        a.command(50.4);
        a.step(10.0);
        assert!(
            (a.pos_pct - 50.0).abs() < 1e-12,
            "inside the dead band it stays"
        );
        a.command(100.0);
        a.step(30.0);
        assert!((a.pos_pct - 75.0).abs() < 1e-9, "{}", a.pos_pct);
        a.step(60.0);
        assert!((a.pos_pct - 100.0).abs() < 1e-9);
    }

    #[test]
    fn matrix_exponential_matches_scalar_case() {
        let a = [-0.001, 0.0, 0.0, -0.0002];
        let e = expm(&a, 600.0);
        assert!((e[0] - (-0.6f64).exp()).abs() < 1e-12 && (e[3] - (-0.12f64).exp()).abs() < 1e-12);
    }

    #[test]
    fn radiator_table_is_close_to_the_law() {
        let law = RadiatorLaw::new();
        for dt in [0.3, 5.0, 20.0, 44.5, 60.0] {
            let (q, _) = law.eval(dt);
            assert!(
                (q - RadiatorLaw::exact(dt)).abs() / RadiatorLaw::exact(dt) < 2e-3,
                "{dt}"
            );
        }
    }
}
