//! Closed loop with lying and stuck room nodes: their influence on the setpoint stays within
//! the control core's bound (the rig: `closed_loop/rig.rs`).

use crate::rig::*;

/// Readings of the honest nodes, sorted: `k` bad nodes can move the (equal-weight) percentile
/// of the mixed set only between the honest order statistics `k` ranks below and above it. The
/// spread between those two, K (controller/tests/control.rs, `liars_have_bounded_influence`).
fn honest_spread_k(readings: &[Option<f64>], bad: &[usize], k: usize, percentile: f64) -> f64 {
    let mut vals: Vec<f64> = readings
        .iter()
        .enumerate()
        .filter(|(i, _)| !bad.contains(i))
        .filter_map(|(_, v)| *v)
        .collect();
    vals.sort_by(f64::total_cmp);
    let m = vals.len();
    assert!(m > 2 * k, "too few honest readings: {m}");
    let rank = ((m as f64) * percentile / 100.0).ceil() as usize;
    let lo = vals[rank.saturating_sub(k + 1).min(m - 1)];
    let hi = vals[(rank + k).min(m - 1)];
    hi - lo
}

/// Three room nodes lie (+10 K, about 30 °C) and five are stuck (frozen at their reading), from
/// the first hour on. Against the same plant without them, run side by side, the setpoint moves
/// by less than the control core's bound on the influence of k bad nodes: the PI law on the
/// spread of the honest readings around the percentile, Kp·S·(1 + t/Ti), and at most twice the
/// shift's rate limit times t. The liars are never used (outliers).
#[test]
fn lying_and_stuck_room_nodes_move_the_setpoint_within_the_bound() {
    let _slots = rig_slots(RIG_SLOTS);
    block_on(async {
        let (f0, end) = (1.0 * H, 9.0 * H);
        let mut clean_sc = scenario("demo", -10.0);
        // 120 nodes.
        clean_sc.room_nodes.share_pct = 50.0;
        let apts = node_apartments(&clean_sc);
        let n = apts.len();
        let liars = [n / 8, n / 2, 7 * n / 8];
        let stuck = [n / 16, 3 * n / 16, 5 * n / 16, 9 * n / 16, 13 * n / 16];
        let bad: Vec<usize> = liars.iter().chain(&stuck).copied().collect();
        let mut dirty_sc = clean_sc.clone();
        for &k in &liars {
            let mut f = fault(
                FaultKind::SensorJump,
                &format!("room_node:{}", apts[k]),
                f0 / H,
                end / H,
            );
            f.jump = 10.0;
            dirty_sc.faults.push(f);
        }
        for &k in &stuck {
            dirty_sc.faults.push(fault(
                FaultKind::SensorFrozen,
                &format!("room_node:{}", apts[k]),
                f0 / H,
                end / H,
            ));
        }
        let mut base = constant_weather_base();
        // Equal weights, as in the core's property test: the bound counts ranks.
        for w in ["top", "ground", "end", "middle", "top_end", "ground_end"] {
            set(&mut base, &format!("demand.weights.{w}"), 1.0);
        }
        let kp = get_f64(&base, "demand.gain_k_per_k");
        let ti_s = get_f64(&base, "demand.integral_time_h") * H;
        let max_rate_k_per_s = get_f64(&base, "demand.max_rate_k_per_h") / H;
        let percentile = get_f64(&base, "demand.percentile");
        let period_s = get_f64(&base, "demand.period_s");
        let (mut clean, mut dirty) = tokio::join!(
            Rig::start("nodes-clean", &clean_sc, base.clone(), SPEED),
            Rig::start("nodes-lying", &dirty_sc, base, SPEED)
        );
        clean.record_nodes = true;
        tokio::join!(clean.run_until(end), dirty.run_until(end));

        // The liars are dropped.
        for (r, s) in dirty.window(f0 + 2.0 * period_s + NOTICE_S, end) {
            assert!(
                s.rooms_used() + 3 <= s.rooms_expected(),
                "{} of {} nodes used at {:.2} h: the liars counted",
                s.rooms_used(),
                s.rooms_expected(),
                r.t_s / H
            );
        }
        // The setpoint bound.
        let mut spread_k: f64 = 0.0;
        let mut worst = (0.0_f64, 0.0_f64, 0.0_f64);
        let mut n_cmp = 0;
        for r in dirty.records.iter().filter(|r| r.t_s >= f0 && r.t_s < end) {
            let Some(sp_dirty) = r.scada.as_ref().and_then(Scada::setpoint_c) else {
                continue;
            };
            // Honest spread over the clean run so far (its readings at or before t).
            for c in clean
                .records
                .iter()
                .filter(|c| c.t_s >= f0 && c.t_s <= r.t_s)
                .step_by(25)
            {
                spread_k = spread_k.max(honest_spread_k(&c.nodes_c, &bad, bad.len(), percentile));
            }
            let Some(sp_clean) = interpolate(&clean.records, r.t_s, |c| {
                c.scada.as_ref().and_then(Scada::setpoint_c)
            }) else {
                continue;
            };
            let t = r.t_s - f0;
            let bound = (kp * spread_k * (1.0 + t / ti_s)).min(2.0 * max_rate_k_per_s * t)
                + SETPOINT_READ_K;
            let d = (sp_dirty - sp_clean).abs();
            if d > worst.0 {
                worst = (d, bound, r.t_s);
            }
            assert!(
                d <= bound,
                "setpoint {sp_dirty:.1} °C with the bad nodes, {sp_clean:.1} °C without, at {:.2} h: \
                 {d:.2} K apart, bound {bound:.2} K (honest spread {spread_k:.2} K)",
                r.t_s / H
            );
            n_cmp += 1;
        }
        eprintln!(
            "bad nodes: {n_cmp} comparisons; setpoints at most {:.2} K apart (bound there {:.2} K, at {:.2} h); honest spread {spread_k:.2} K",
            worst.0,
            worst.1,
            worst.2 / H
        );
        assert!(n_cmp > 1000, "comparisons: {n_cmp}");
        for rig in [&clean, &dirty] {
            assert_healthy(rig, 0.1 * H, end);
        }
        clean.finish().await;
        dirty.finish().await;
    });
}

/// Reading the setpoint of two runs at the same plant time: SCADA shows tenths and is read a
/// few milliseconds after the plant's clock (a few plant seconds, the setpoint moving at most
/// 0.5 K per minute).
const SETPOINT_READ_K: f64 = 0.2;
