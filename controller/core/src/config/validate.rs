//! The validation pass: every out-of-range value, contradiction and dangling reference.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::device_map::{DataType, DeviceMap, Table};
use super::problems::Problem;
use super::schema::*;
use crate::signal::{CheckedQuantity, Signal};

struct Checker {
    out: Vec<Problem>,
}

impl Checker {
    fn fail(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.out.push(Problem::at(path, message));
    }

    /// `v` must be finite and within `lo..=hi`.
    fn range(&mut self, path: &str, v: f64, lo: f64, hi: f64) {
        if !v.is_finite() || v < lo || v > hi {
            self.fail(path, format!("{v} is out of range: allowed {lo} to {hi}"));
        }
    }

    /// `lo` must be below `hi`.
    fn below(&mut self, lo_path: &str, lo: f64, hi_path: &str, hi: f64) {
        if lo >= hi {
            self.fail(lo_path, format!("{lo} must be below {hi_path} ({hi})"));
        }
    }

    fn increasing(&mut self, path: &str, xs: impl Iterator<Item = f64>, what: &str) {
        let mut prev: Option<f64> = None;
        for (i, x) in xs.enumerate() {
            if let Some(p) = prev
                && x <= p
            {
                self.fail(
                    format!("{path}[{i}].{what}"),
                    format!("points must be strictly increasing in {what}: {x} follows {p}"),
                );
            }
            prev = Some(x);
        }
    }
}

/// Parse "HH:MM" into minutes after midnight.
#[must_use]
pub fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && s.len() == 5).then_some(h * 60 + m)
}

/// Day names accepted in schedules, Monday first.
pub const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Check values and contradictions within one configuration.
pub(crate) fn validate(c: &Config) -> Vec<Problem> {
    let mut k = Checker { out: Vec::new() };
    k.range("site.floor_area_m2", c.site.floor_area_m2, 1.0, 1e8);
    k.range("site.utc_offset_h", c.site.utc_offset_h, -12.0, 14.0);
    if c.site.name.trim().is_empty() {
        k.fail("site.name", "must not be empty");
    }

    for q in CheckedQuantity::ALL {
        let lim = c.signals.limits_of(q);
        let p = |f: &str| format!("signals.{}.{f}", q.name());
        k.below(
            &p("valid_min"),
            lim.valid_min,
            &p("valid_max"),
            lim.valid_max,
        );
        k.range(&p("max_age_s"), lim.max_age_s, 0.1, 1e6);
        k.range(&p("stuck_after_s"), lim.stuck_after_s, 0.0, 1e7);
        k.range(&p("stuck_tolerance"), lim.stuck_tolerance, 0.0, 1e3);
        k.range(&p("max_rate_per_s"), lim.max_rate_per_s, 0.0, 1e6);
    }

    let o = &c.outdoor;
    k.range(
        "outdoor.building_time_constant_h",
        o.building_time_constant_h,
        0.1,
        200.0,
    );
    k.range(
        "outdoor.composite_actual_weight",
        o.composite_actual_weight,
        0.0,
        1.0,
    );
    k.range(
        "outdoor.hold_last_good_s",
        o.hold_last_good_s,
        0.0,
        604_800.0,
    );
    k.range("outdoor.fallback_c", o.fallback_c, -50.0, 30.0);

    validate_curve(&mut k, &c.curve);
    let s = &c.summer;
    k.range("summer.cutoff_c", s.cutoff_c, 0.0, 35.0);
    k.range("summer.hysteresis_k", s.hysteresis_k, 0.0, 15.0);

    let d = &c.demand;
    k.range("demand.target_c", d.target_c, 12.0, 26.0);
    k.range("demand.percentile", d.percentile, 0.0, 100.0);
    k.range("demand.trim_fraction", d.trim_fraction, 0.0, 0.45);
    k.range("demand.mean_max_c", d.mean_max_c, 12.0, 30.0);
    if d.mean_max_c <= d.target_c {
        k.fail(
            "demand.mean_max_c",
            format!(
                "{} contradicts demand.target_c ({}): the mean limit must lie above the target",
                d.mean_max_c, d.target_c
            ),
        );
    }
    k.range("demand.outlier_k", d.outlier_k, 0.0, 30.0);
    k.range("demand.quorum_pct", d.quorum_pct, 0.0, 100.0);
    k.range("demand.integral_time_h", d.integral_time_h, 0.1, 500.0);
    k.range("demand.gain_k_per_k", d.gain_k_per_k, 0.0, 20.0);
    k.range("demand.min_shift_k", d.min_shift_k, -40.0, 0.0);
    k.range("demand.max_shift_k", d.max_shift_k, 0.0, 40.0);
    k.below(
        "demand.min_shift_k",
        d.min_shift_k,
        "demand.max_shift_k",
        d.max_shift_k,
    );
    k.range("demand.max_rate_k_per_h", d.max_rate_k_per_h, 0.001, 60.0);
    k.range(
        "demand.decay_time_constant_h",
        d.decay_time_constant_h,
        0.01,
        500.0,
    );
    k.range("demand.period_s", d.period_s, 1.0, 86_400.0);
    let w = &d.weights;
    for (n, v) in [
        ("top", w.top),
        ("ground", w.ground),
        ("end", w.end),
        ("middle", w.middle),
        ("top_end", w.top_end),
        ("ground_end", w.ground_end),
    ] {
        k.range(&format!("demand.weights.{n}"), v, 0.0, 100.0);
    }

    let v = &c.valve_demand;
    k.range(
        "valve_demand.request_above_pct",
        v.request_above_pct,
        1.0,
        100.0,
    );
    k.range("valve_demand.trim_k", v.trim_k, -10.0, 0.0);
    k.range(
        "valve_demand.respond_k_per_request",
        v.respond_k_per_request,
        0.0,
        10.0,
    );
    k.range("valve_demand.max_respond_k", v.max_respond_k, 0.0, 20.0);
    k.range("valve_demand.period_s", v.period_s, 1.0, 86_400.0);
    k.below(
        "valve_demand.min_shift_k",
        v.min_shift_k,
        "valve_demand.max_shift_k",
        v.max_shift_k,
    );
    if v.enabled
        && c.rooms.nodes.iter().all(|n| n.valve_link.is_none())
        && !c.rooms.nodes.is_empty()
    {
        k.fail(
            "valve_demand.enabled",
            "valve demand needs nodes with a valve (rooms.nodes[].valve_link)",
        );
    }

    validate_limits(&mut k, c);
    validate_schedule(&mut k, &c.schedule);

    let v1 = &c.valve1;
    k.range("valve1.kp_pct_per_k", v1.kp_pct_per_k, 0.0, 100.0);
    k.range("valve1.ti_s", v1.ti_s, 0.0, 36_000.0);
    k.range("valve1.td_s", v1.td_s, 0.0, 3_600.0);
    k.range("valve1.deadband_k", v1.deadband_k, 0.0, 5.0);
    k.range(
        "valve1.max_rate_pct_per_s",
        v1.max_rate_pct_per_s,
        0.01,
        100.0,
    );
    k.range(
        "valve1.feed_forward_pct_per_k",
        v1.feed_forward_pct_per_k,
        0.0,
        10.0,
    );
    k.range(
        "valve1.feed_forward_zero_c",
        v1.feed_forward_zero_c,
        0.0,
        100.0,
    );
    k.range("valve1.run_time_s", v1.run_time_s, 5.0, 1_200.0);
    k.range("valve1.min_pulse_s", v1.min_pulse_s, 0.05, 60.0);
    if v1.min_pulse_s >= v1.run_time_s {
        k.fail(
            "valve1.min_pulse_s",
            "must be shorter than valve1.run_time_s",
        );
    }
    k.range("valve1.min_pct", v1.min_pct, 0.0, 100.0);
    k.range("valve1.max_pct", v1.max_pct, 0.0, 100.0);
    k.below("valve1.min_pct", v1.min_pct, "valve1.max_pct", v1.max_pct);

    let h = &c.household_valves;
    k.range("household_valves.target_c", h.target_c, 12.0, 26.0);
    k.range(
        "household_valves.kp_pct_per_k",
        h.kp_pct_per_k,
        0.0,
        1_000.0,
    );
    k.range("household_valves.ti_s", h.ti_s, 0.0, 1e6);
    k.range(
        "household_valves.min_opening_pct",
        h.min_opening_pct,
        0.0,
        100.0,
    );
    k.range(
        "household_valves.max_rate_pct_per_h",
        h.max_rate_pct_per_h,
        0.01,
        6_000.0,
    );
    k.range("household_valves.period_s", h.period_s, 1.0, 86_400.0);
    k.range(
        "household_valves.safe_position_pct",
        h.safe_position_pct,
        0.0,
        100.0,
    );

    let sf = &c.safety;
    k.range("safety.frost_c", sf.frost_c, 0.0, 15.0);
    k.range(
        "safety.frost_valve_min_pct",
        sf.frost_valve_min_pct,
        0.0,
        100.0,
    );
    k.range("safety.t2_supply_max_c", sf.t2_supply_max_c, 30.0, 120.0);
    k.range("safety.t1_return_max_c", sf.t1_return_max_c, 30.0, 150.0);
    k.range("safety.cut_hysteresis_k", sf.cut_hysteresis_k, 0.5, 30.0);
    k.range("safety.t2_lost_hold_s", sf.t2_lost_hold_s, 0.0, 3_600.0);
    k.range("safety.valve1_safe_pct", sf.valve1_safe_pct, 0.0, 100.0);
    k.range(
        "safety.alarm_clear_delay_s",
        sf.alarm_clear_delay_s,
        0.0,
        86_400.0,
    );
    if sf.t2_supply_max_c <= c.curve.max_supply_c {
        k.fail(
            "safety.t2_supply_max_c",
            format!(
                "{} contradicts curve.max_supply_c ({}): the hard cut must lie above the highest setpoint",
                sf.t2_supply_max_c, c.curve.max_supply_c
            ),
        );
    }
    if sf.frost_c >= c.curve.min_supply_c {
        k.fail(
            "safety.frost_c",
            format!(
                "{} contradicts curve.min_supply_c ({}): frost protection must start below the lowest setpoint",
                sf.frost_c, c.curve.min_supply_c
            ),
        );
    }

    validate_field(&mut k, c);
    k.out
}

fn validate_curve(k: &mut Checker, c: &Curve) {
    match (&c.points, &c.design) {
        (Some(_), Some(_)) => k.fail(
            "curve",
            "give either curve.points or curve.design, not both",
        ),
        (None, None) => k.fail("curve", "give curve.points or curve.design"),
        (Some(points), None) => {
            if points.len() < 2 {
                k.fail("curve.points", "a curve needs at least two points");
            }
            for (i, p) in points.iter().enumerate() {
                k.range(
                    &format!("curve.points[{i}].outdoor_c"),
                    p.outdoor_c,
                    -50.0,
                    40.0,
                );
                k.range(
                    &format!("curve.points[{i}].supply_c"),
                    p.supply_c,
                    10.0,
                    130.0,
                );
            }
            k.increasing(
                "curve.points",
                points.iter().map(|p| p.outdoor_c),
                "outdoor_c",
            );
        }
        (None, Some(d)) => {
            k.range(
                "curve.design.design_outdoor_c",
                d.design_outdoor_c,
                -50.0,
                5.0,
            );
            k.range(
                "curve.design.design_supply_c",
                d.design_supply_c,
                25.0,
                130.0,
            );
            k.range(
                "curve.design.design_return_c",
                d.design_return_c,
                15.0,
                120.0,
            );
            k.range("curve.design.room_c", d.room_c, 10.0, 26.0);
            k.range(
                "curve.design.radiator_exponent",
                d.radiator_exponent,
                1.0,
                2.0,
            );
            k.below(
                "curve.design.design_return_c",
                d.design_return_c,
                "curve.design.design_supply_c",
                d.design_supply_c,
            );
            k.below(
                "curve.design.room_c",
                d.room_c,
                "curve.design.design_return_c",
                d.design_return_c,
            );
            k.below(
                "curve.design.design_outdoor_c",
                d.design_outdoor_c,
                "curve.design.room_c",
                d.room_c,
            );
        }
    }
    k.range("curve.shift_k", c.shift_k, -30.0, 30.0);
    k.range("curve.min_supply_c", c.min_supply_c, 10.0, 120.0);
    k.range("curve.max_supply_c", c.max_supply_c, 10.0, 130.0);
    k.below(
        "curve.min_supply_c",
        c.min_supply_c,
        "curve.max_supply_c",
        c.max_supply_c,
    );
}

fn validate_gains(k: &mut Checker, path: &str, g: &LimiterGains) {
    k.range(&format!("{path}.kp"), g.kp, 0.0, 100.0);
    k.range(&format!("{path}.ti_s"), g.ti_s, 0.0, 1e6);
}

fn validate_limits(k: &mut Checker, c: &Config) {
    let r = &c.limits.return1;
    if r.enabled && r.points.is_empty() {
        k.fail(
            "limits.return1.points",
            "the return limit needs at least one point",
        );
    }
    for (i, p) in r.points.iter().enumerate() {
        k.range(
            &format!("limits.return1.points[{i}].outdoor_c"),
            p.outdoor_c,
            -50.0,
            40.0,
        );
        k.range(
            &format!("limits.return1.points[{i}].max_return_c"),
            p.max_return_c,
            15.0,
            130.0,
        );
        if r.enabled && p.max_return_c >= c.safety.t1_return_max_c {
            k.fail(
                format!("limits.return1.points[{i}].max_return_c"),
                format!(
                    "{} contradicts safety.t1_return_max_c ({}): the limit must act before the hard cut",
                    p.max_return_c, c.safety.t1_return_max_c
                ),
            );
        }
    }
    k.increasing(
        "limits.return1.points",
        r.points.iter().map(|p| p.outdoor_c),
        "outdoor_c",
    );
    validate_gains(k, "limits.return1.gains", &r.gains);
    let d = &c.limits.return_difference;
    k.range(
        "limits.return_difference.max_difference_k",
        d.max_difference_k,
        0.5,
        80.0,
    );
    validate_gains(k, "limits.return_difference.gains", &d.gains);
    let p = &c.limits.power;
    k.range("limits.power.max_power_kw", p.max_power_kw, 1.0, 1e6);
    k.range("limits.power.max_flow_m3h", p.max_flow_m3h, 0.1, 1e5);
    validate_gains(k, "limits.power.gains", &p.gains);
    let rt = &c.limits.rate;
    k.range(
        "limits.rate.max_rise_k_per_min",
        rt.max_rise_k_per_min,
        0.01,
        60.0,
    );
    k.range(
        "limits.rate.max_fall_k_per_min",
        rt.max_fall_k_per_min,
        0.01,
        60.0,
    );
}

fn validate_schedule(k: &mut Checker, s: &Schedule) {
    k.range("schedule.setback_k", s.setback_k, 0.0, 30.0);
    k.range("schedule.boost_k", s.boost_k, 0.0, 30.0);
    k.range("schedule.boost_s", s.boost_s, 0.0, 86_400.0);
    k.below(
        "schedule.no_setback_below_c",
        s.no_setback_below_c,
        "schedule.full_setback_above_c",
        s.full_setback_above_c,
    );
    if s.enabled && s.periods.is_empty() {
        k.fail(
            "schedule.periods",
            "an enabled schedule needs at least one setback period",
        );
    }
    for (i, p) in s.periods.iter().enumerate() {
        for (j, day) in p.days.iter().enumerate() {
            if day != "all" && !DAY_NAMES.contains(&day.as_str()) {
                k.fail(
                    format!("schedule.periods[{i}].days[{j}]"),
                    format!("unknown day {day:?}: use mon, tue, wed, thu, fri, sat, sun or all"),
                );
            }
        }
        for (field, v) in [("start", &p.start), ("end", &p.end)] {
            if parse_hhmm(v).is_none() {
                k.fail(
                    format!("schedule.periods[{i}].{field}"),
                    format!("{v:?} is not a time HH:MM"),
                );
            }
        }
        if p.start == p.end {
            k.fail(
                format!("schedule.periods[{i}].end"),
                "a period must not start and end at the same time",
            );
        }
    }
}

fn validate_field(k: &mut Checker, c: &Config) {
    let mut link_names: HashMap<&str, &Link> = HashMap::new();
    for (i, l) in c.links.iter().enumerate() {
        let p = |f: &str| format!("links[{i}].{f}");
        if link_names.insert(l.name.as_str(), l).is_some() {
            k.fail(p("name"), format!("link {:?} is defined twice", l.name));
        }
        match l.kind {
            LinkKind::Tcp | LinkKind::RtuOverTcp => {
                if l.host.as_deref().is_none_or(str::is_empty) {
                    k.fail(p("host"), "a TCP link needs a host");
                }
                if l.port.is_none_or(|p| p == 0) {
                    k.fail(p("port"), "a TCP link needs a port (1..65535)");
                }
            }
            LinkKind::Rtu => {
                if l.serial_port.as_deref().is_none_or(str::is_empty) {
                    k.fail(
                        p("serial_port"),
                        "an RTU link needs a serial_port, e.g. \"/dev/ttyS1\"",
                    );
                }
            }
        }
        if ![1200, 2400, 4800, 9600, 19_200, 38_400, 57_600, 115_200].contains(&l.baud) {
            k.fail(p("baud"), format!("{} is not a standard baud rate", l.baud));
        }
        if !(1..=2).contains(&l.stop_bits) {
            k.fail(p("stop_bits"), "must be 1 or 2");
        }
        if !(10..=60_000).contains(&l.timeout_ms) {
            k.fail(
                p("timeout_ms"),
                format!("{} is out of range: allowed 10 to 60000", l.timeout_ms),
            );
        }
        if l.reconnect_min_ms == 0 || l.reconnect_min_ms > l.reconnect_max_ms {
            k.fail(
                p("reconnect_min_ms"),
                "must be above 0 and at most reconnect_max_ms",
            );
        }
    }
    // (link, unit id) -> who uses it, so two devices never share an address on one bus.
    let mut addresses: HashMap<(String, u8), String> = HashMap::new();
    let mut claim = |k: &mut Checker, link: &str, unit: u8, who: String, at: String| {
        if let Some(prev) = addresses.insert((link.to_string(), unit), who.clone()) {
            k.fail(
                at,
                format!("{who} uses unit id {unit} on link {link:?}, as {prev} does"),
            );
        }
    };
    let mut device_names = HashSet::new();
    for (i, d) in c.devices.iter().enumerate() {
        if !device_names.insert(d.name.as_str()) {
            k.fail(
                format!("devices[{i}].name"),
                format!("device {:?} is defined twice", d.name),
            );
        }
        match link_names.get(d.link.as_str()) {
            None => k.fail(
                format!("devices[{i}].link"),
                format!("link {:?} is not defined", d.link),
            ),
            Some(l) => {
                let tcp_any = l.kind == LinkKind::Tcp && (d.unit_id == 0 || d.unit_id == 255);
                if !tcp_any && !(1..=247).contains(&d.unit_id) {
                    k.fail(
                        format!("devices[{i}].unit_id"),
                        "must be 1..247 (0 or 255 only on TCP)",
                    );
                }
            }
        }
        claim(
            k,
            &d.link,
            d.unit_id,
            format!("device {:?}", d.name),
            format!("devices[{i}].unit_id"),
        );
    }
    for (name, binding, _) in c.points.bindings() {
        let Some(b) = binding else { continue };
        match b.split_once('.') {
            Some((dev, pt)) if !dev.is_empty() && !pt.is_empty() => {
                if !device_names.contains(dev) {
                    k.fail(
                        format!("points.{name}"),
                        format!("device {dev:?} is not defined in [[devices]]"),
                    );
                }
            }
            _ => k.fail(
                format!("points.{name}"),
                format!("{b:?} is not of the form \"device.point\""),
            ),
        }
    }
    if !c.devices.is_empty() {
        let p = &c.points;
        let t2 = (Signal::T2Supply.name(), p.signal(Signal::T2Supply));
        let cmd = |c: CommandPoint| (c.name(), p.command(c));
        let (required, why): (&[(&str, Option<&str>)], &str) = match c.valve1.output {
            ValveOutput::Position => (
                &[t2, cmd(CommandPoint::Valve1Cmd)],
                "required when devices are configured",
            ),
            ValveOutput::ThreePoint => (
                &[
                    t2,
                    cmd(CommandPoint::Valve1Open),
                    cmd(CommandPoint::Valve1Close),
                ],
                "required when devices are configured and valve1.output is \"three_point\"",
            ),
        };
        for (name, b) in required {
            if b.is_none() {
                k.fail(format!("points.{name}"), why);
            }
        }
        if c.valve1.output == ValveOutput::ThreePoint
            && p.valve1_open.is_some()
            && p.valve1_open == p.valve1_close
        {
            k.fail(
                "points.valve1_close",
                "must be a different point from points.valve1_open",
            );
        }
    }
    let mut ids = HashSet::new();
    for (i, n) in c.rooms.nodes.iter().enumerate() {
        let p = |f: &str| format!("rooms.nodes[{i}].{f}");
        if !ids.insert(n.id.as_str()) {
            k.fail(p("id"), format!("node id {:?} is used twice", n.id));
        }
        if !link_names.contains_key(n.link.as_str()) {
            k.fail(p("link"), format!("link {:?} is not defined", n.link));
        }
        if !(1..=247).contains(&n.unit_id) {
            k.fail(p("unit_id"), "must be 1..247 on an RS-485 bus");
        }
        claim(
            k,
            &n.link,
            n.unit_id,
            format!("room node {:?}", n.id),
            p("unit_id"),
        );
        match (&n.valve_link, n.valve_unit_id) {
            (Some(l), Some(u)) => {
                if !link_names.contains_key(l.as_str()) {
                    k.fail(p("valve_link"), format!("link {l:?} is not defined"));
                }
                if !(1..=247).contains(&u) {
                    k.fail(p("valve_unit_id"), "must be 1..247 on an RS-485 bus");
                }
                claim(k, l, u, format!("valve of {:?}", n.id), p("valve_unit_id"));
            }
            (None, None) => {}
            (Some(_), None) => k.fail(p("valve_unit_id"), "a valve_link needs a valve_unit_id"),
            (None, Some(_)) => k.fail(p("valve_link"), "a valve_unit_id needs a valve_link"),
        }
    }
    let s = &c.scada;
    if s.listen.parse::<std::net::SocketAddr>().is_err() {
        k.fail(
            "scada.listen",
            format!("{:?} is not an address:port", s.listen),
        );
    }
    if !(1..=64).contains(&s.max_connections) {
        k.fail("scada.max_connections", "must be 1..64");
    }
    let mut seen = HashSet::new();
    for (i, w) in s.writable.iter().enumerate() {
        if !SCADA_WRITABLE.contains(&w.as_str()) {
            k.fail(
                format!("scada.writable[{i}]"),
                format!(
                    "{w:?} is not a writable setting; choose from {}",
                    SCADA_WRITABLE.join(", ")
                ),
            );
        }
        if !seen.insert(w) {
            k.fail(
                format!("scada.writable[{i}]"),
                format!("{w:?} is listed twice"),
            );
        }
    }
}

/// Check that every "device.point" and every map-dependent name resolves.
pub(crate) fn validate_references(c: &Config, maps: &BTreeMap<String, DeviceMap>) -> Vec<Problem> {
    let mut k = Checker { out: Vec::new() };
    for (name, binding, written) in c.points.bindings() {
        let Some((dev, pt)) = binding.and_then(|b| b.split_once('.')) else {
            continue;
        };
        let Some(device) = c.devices.iter().find(|d| d.name == dev) else {
            continue;
        };
        let Some(map) = maps.get(&device.map) else {
            continue;
        };
        match map.point(pt) {
            None => k.fail(
                format!("points.{name}"),
                format!(
                    "point {pt:?} is not defined in {} (device {dev:?})",
                    device.map
                ),
            ),
            Some(p) if written && !p.writable => k.fail(
                format!("points.{name}"),
                format!("point {pt:?} of {} is not writable", device.map),
            ),
            Some(_) => {}
        }
    }
    if !c.rooms.nodes.is_empty()
        && let Some(map) = maps.get(&c.rooms.map)
        && map.point(&c.rooms.temperature_point).is_none()
    {
        k.fail(
            "rooms.temperature_point",
            format!(
                "point {:?} is not defined in {}",
                c.rooms.temperature_point, c.rooms.map
            ),
        );
    }
    if c.rooms.nodes.iter().any(|n| n.valve_link.is_some())
        && let Some(map) = maps.get(&c.household_valves.map)
    {
        let hv = &c.household_valves;
        for (key, needed) in [
            ("command_point", &hv.command_point),
            ("position_point", &hv.position_point),
        ] {
            match map.point(needed) {
                None => k.fail(
                    format!("household_valves.{key}"),
                    format!("point {needed:?} is not defined in {}", hv.map),
                ),
                Some(p) if key == "command_point" && !p.writable => k.fail(
                    format!("household_valves.{key}"),
                    format!("point {needed:?} of {} is not writable", hv.map),
                ),
                Some(_) => {}
            }
        }
    }
    k.out
}

/// Check one device map: names, overlaps, types per table, ranges.
pub(crate) fn validate_map(m: &DeviceMap) -> Vec<Problem> {
    let mut k = Checker { out: Vec::new() };
    if !(1..=125).contains(&m.device.max_registers_per_read) {
        k.fail("device.max_registers_per_read", "must be 1..125");
    }
    let mut names = HashSet::new();
    let mut used: HashMap<(Table, u32), &str> = HashMap::new();
    for (i, p) in m.points.iter().enumerate() {
        let at = |f: &str| format!("points[{i}].{f}");
        if !names.insert(p.name.as_str()) {
            k.fail(at("name"), format!("point {:?} is defined twice", p.name));
        }
        let bits = matches!(p.table, Table::Coil | Table::Discrete);
        if bits != (p.data_type == DataType::Bool) {
            k.fail(
                at("type"),
                "coils and discrete inputs hold bool; registers hold numbers",
            );
        }
        if u32::from(p.address) + u32::from(p.data_type.width()) > 65_536 {
            k.fail(
                at("address"),
                "the point runs past the end of the address space",
            );
        }
        for a in 0..u32::from(p.data_type.width()) {
            let addr = u32::from(p.address) + a;
            if let Some(other) = used.insert((p.table, addr), p.name.as_str()) {
                k.fail(
                    at("address"),
                    format!("register {addr} overlaps point {other:?}"),
                );
            }
        }
        if p.scale == 0.0 || !p.scale.is_finite() {
            k.fail(at("scale"), "must be a non-zero number");
        }
        if let (Some(lo), Some(hi)) = (p.valid_min, p.valid_max) {
            k.below(&at("valid_min"), lo, &at("valid_max"), hi);
        }
        k.range(&at("poll_period_s"), p.poll_period_s, 0.1, 86_400.0);
        if p.max_age_s < p.poll_period_s {
            k.fail(at("max_age_s"), "must be at least poll_period_s");
        }
        if p.writable && !matches!(p.table, Table::Holding | Table::Coil) {
            k.fail(
                at("writable"),
                "only holding registers and coils can be written",
            );
        }
    }
    k.out
}
