//! Between the field layer and the controller: the process image in, the writes out.

use crate::config::{CommandPoint, LoadedConfig, ValveOutput};
use crate::control::{Commands, ProcessImage, Signal};
use crate::field::FieldShared;
use crate::field::plan::{HH_VALVE_PREFIX, ROOM_PREFIX};

/// Split a `"device.point"` binding.
#[must_use]
pub fn split_binding(binding: &str) -> Option<(&str, &str)> {
    binding.split_once('.')
}

/// Build the process image at `now_s` from what the field layer read.
#[must_use]
pub fn build_image(loaded: &LoadedConfig, field: &FieldShared, now_s: f64) -> ProcessImage {
    let cfg = &loaded.config;
    let nodes = &cfg.rooms.nodes;
    let mut image = ProcessImage::with_rooms(nodes.len());
    for signal in Signal::ALL {
        let sample = cfg
            .points
            .signal(signal)
            .and_then(split_binding)
            .and_then(|(d, pt)| field.sample(d, pt, now_s));
        image.set(signal, sample);
    }
    for (i, n) in nodes.iter().enumerate() {
        image.rooms[i] = field.sample(
            &format!("{ROOM_PREFIX}{}", n.id),
            &cfg.rooms.temperature_point,
            now_s,
        );
        if n.valve_link.is_some() {
            image.hh_valve_pos_pct[i] = field.sample(
                &format!("{HH_VALVE_PREFIX}{}", n.id),
                &cfg.household_valves.position_point,
                now_s,
            );
        }
    }
    image
}

/// The writes a set of commands asks for: `(device, point, value)`. `three_point` is the
/// `(open, close)` state of a three-point output (ignored with a position output).
#[must_use]
pub fn planned_writes(
    loaded: &LoadedConfig,
    cmds: &Commands,
    three_point: (bool, bool),
) -> Vec<(String, String, f64)> {
    let cfg = &loaded.config;
    let mut out = Vec::new();
    match cfg.valve1.output {
        ValveOutput::Position => {
            if let Some((d, p)) = cfg
                .points
                .command(CommandPoint::Valve1Cmd)
                .and_then(split_binding)
                && cmds.valve1_pct.is_finite()
            {
                out.push((d.to_owned(), p.to_owned(), cmds.valve1_pct));
            }
        }
        ValveOutput::ThreePoint => {
            let (open, close) = three_point;
            for (point, on) in [
                (CommandPoint::Valve1Open, open && !close),
                (CommandPoint::Valve1Close, close && !open),
            ] {
                if let Some((d, p)) = cfg.points.command(point).and_then(split_binding) {
                    out.push((d.to_owned(), p.to_owned(), f64::from(u8::from(on))));
                }
            }
        }
    }
    if let Some(pump) = &cmds.pump2
        && let Some((d, p)) = cfg
            .points
            .command(CommandPoint::Pump2SpeedCmd)
            .and_then(split_binding)
        && pump.speed_cmd_pct.is_finite()
    {
        out.push((d.to_owned(), p.to_owned(), pump.speed_cmd_pct));
    }
    for (n, pct) in cfg.rooms.nodes.iter().zip(&cmds.hh_valves_pct) {
        if let Some(pct) = pct
            && n.valve_link.is_some()
            && pct.is_finite()
        {
            out.push((
                format!("{HH_VALVE_PREFIX}{}", n.id),
                cfg.household_valves.command_point.clone(),
                *pct,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::control::Explanation;

    fn loaded(extra: &str) -> LoadedConfig {
        let text = format!(
            "[site]\nname = \"t\"\n[curve]\npoints = [{{ outdoor_c = -20.0, supply_c = 70.0 }}, {{ outdoor_c = 15.0, supply_c = 30.0 }}]\n\
             [[links]]\nname = \"gw\"\nkind = \"rtu_over_tcp\"\nhost = \"127.0.0.1\"\nport = 1\n\
             [[devices]]\nname = \"plc\"\nlink = \"gw\"\nunit_id = 5\nmap = \"m.toml\"\n\
             [points]\nt2_supply = \"plc.t2_supply\"\nvalve1_cmd = \"plc.valve1_cmd\"\n{extra}\
             [rooms]\nnodes = [\n{{ id = \"a\", link = \"gw\", unit_id = 1, valve_link = \"gw\", valve_unit_id = 11 }},\n\
             {{ id = \"b\", link = \"gw\", unit_id = 2 }},\n]\n"
        );
        let config = crate::config::parse_str(&text, None).unwrap_or_else(|p| panic!("{p}"));
        LoadedConfig {
            config,
            path: PathBuf::from("t.toml"),
            maps: std::collections::BTreeMap::new(),
        }
    }

    fn commands(valve1_pct: f64, hh: Vec<Option<f64>>) -> Commands {
        Commands {
            valve1_pct,
            valve1_pulse: None,
            hh_valves_pct: hh,
            pump2: None,
            alarms: Vec::new(),
            explanation: Explanation::default(),
        }
    }

    #[test]
    fn the_pump_speed_is_written_only_where_its_point_is_bound() {
        use crate::control::{Controller, ProcessImage};
        let unbound = loaded("");
        let c = Controller::new(&unbound.config);
        let w = planned_writes(&unbound, &c.safe_commands(), (false, false));
        assert!(w.iter().all(|(_, p, _)| p != "pump2_speed_cmd"), "{w:?}");
        let bound = loaded(
            "pump2_speed_cmd = \"plc.pump2_speed_cmd\"\ndp2_station = \"plc.dp2_station\"\n",
        );
        let mut c = Controller::new(&bound.config);
        let safe = planned_writes(&bound, &c.safe_commands(), (false, false));
        assert!(
            safe.contains(&(
                "plc".into(),
                "pump2_speed_cmd".into(),
                bound.config.pump2.safe_speed_pct
            )),
            "the safe speed on shutdown: {safe:?}"
        );
        let cmds = c.step(0.0, &ProcessImage::with_rooms(2));
        let w = planned_writes(&bound, &cmds, (false, false));
        let pump = cmds.pump2.expect("controlled");
        assert!(w.contains(&("plc".into(), "pump2_speed_cmd".into(), pump.speed_cmd_pct)));
    }

    #[test]
    fn writes_follow_the_bindings() {
        let l = loaded("");
        let w = planned_writes(
            &l,
            &commands(33.0, vec![Some(50.0), Some(70.0)]),
            (false, false),
        );
        assert_eq!(
            w,
            vec![
                ("plc".into(), "valve1_cmd".into(), 33.0),
                ("hh_valve:a".into(), "command".into(), 50.0),
            ],
            "node b has no valve"
        );
        let w = planned_writes(&l, &commands(f64::NAN, vec![None, None]), (false, false));
        assert!(w.is_empty(), "nothing finite, nothing written");
    }

    #[test]
    fn three_point_writes_go_to_the_open_and_close_points() {
        let l = loaded(
            "valve1_open = \"plc.valve1_open\"\nvalve1_close = \"plc.valve1_close\"\n[valve1]\noutput = \"three_point\"\n",
        );
        let w = planned_writes(&l, &commands(33.0, vec![]), (true, false));
        assert_eq!(
            w,
            vec![
                ("plc".into(), "valve1_open".into(), 1.0),
                ("plc".into(), "valve1_close".into(), 0.0),
            ],
            "the position command is not written to a three-point actuator"
        );
        let w = planned_writes(&l, &commands(33.0, vec![]), (false, false));
        assert!(w.iter().all(|(_, _, v)| *v == 0.0));
    }
}
