//! Configuration loading and validation, from the technician's side.
#![allow(clippy::unwrap_used)]

use std::path::Path;

#[path = "peers/scratch.rs"]
mod scratch;
use scratch::Scratch;

use heatctl::config::{self, Problems};

fn example_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/substation.example.toml")
}

#[test]
fn shipped_example_passes_and_uses_every_section() {
    let loaded = config::load(&example_path()).unwrap_or_else(|p| panic!("{p}"));
    let text = std::fs::read_to_string(example_path()).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    // Every top-level section of the schema appears in the example.
    let full = toml::Value::try_from(&loaded.config).unwrap();
    for key in full.as_table().unwrap().keys() {
        assert!(table.contains_key(key), "example lacks section [{key}]");
    }
    assert_eq!(loaded.maps.len(), 4, "plc, meter, room-node and valve maps");
}

fn problems(text: &str) -> Problems {
    config::parse_str(text, Some(Path::new("sub.toml"))).expect_err("must be rejected")
}

#[test]
fn every_mistake_is_listed_with_path_and_line() {
    let text = r#"
[site]
name = "x"

[curve]
points = [
  { outdoor_c = -20.0, supply_c = 70.0 },
  { outdoor_c = 0.0, supply_c = 52.0 },
  { outdoor_c = -5.0, supply_c = 40.0 },
]
min_supply_c = 90.0
max_supply_c = 80.0

[demand]
percentile = 130.0
bogus_key = 1

[valve1]
kp_pct_per_k = "fast"
"#;
    let p = problems(text);
    let rendered = p.to_string();
    let lines: Vec<&str> = rendered.lines().collect();
    let has = |needle: &str, line: usize| {
        lines
            .iter()
            .any(|l| l.contains(needle) && l.starts_with(&format!("sub.toml:{line}:")))
    };
    assert!(has("curve.points[2].outdoor_c", 9), "{rendered}");
    assert!(has("curve.min_supply_c", 11), "{rendered}");
    assert!(has("demand.percentile", 15), "{rendered}");
    assert!(has("bogus_key", 16), "{rendered}");
    assert!(has("valve1.kp_pct_per_k", 19), "{rendered}");
    assert!(p.0.len() >= 5, "{rendered}");
}

#[test]
fn contradicting_limiters_are_reported() {
    let text = r#"
[site]
name = "x"
[curve]
points = [{ outdoor_c = -20.0, supply_c = 70.0 }, { outdoor_c = 10.0, supply_c = 35.0 }]
max_supply_c = 100.0
[safety]
t2_supply_max_c = 95.0
t1_return_max_c = 60.0
[demand]
target_c = 22.0
mean_max_c = 21.0
"#;
    let r = problems(text).to_string();
    assert!(
        r.contains("safety.t2_supply_max_c") && r.contains("contradicts curve.max_supply_c"),
        "{r}"
    );
    assert!(r.contains("limits.return1.points[0].max_return_c"), "{r}");
    assert!(r.contains("demand.mean_max_c"), "{r}");
}

#[test]
fn undefined_references_are_reported() {
    let text = r#"
[site]
name = "x"
[curve]
design = { design_outdoor_c = -17.0, design_supply_c = 75.0, design_return_c = 50.0, room_c = 18.0, radiator_exponent = 1.3 }
[[links]]
name = "l1"
kind = "tcp"
host = "127.0.0.1"
port = 502
[[devices]]
name = "plc"
link = "nowhere"
unit_id = 1
map = "devices/substation-io.toml"
[points]
t2_supply = "ghost.t2_supply"
valve1_cmd = "plc.valve1_cmd"
[rooms]
nodes = [{ id = "a", link = "l2", unit_id = 1 }, { id = "a", link = "l1", unit_id = 1 }, { id = "c", link = "l1", unit_id = 1 }]
"#;
    let r = problems(text).to_string();
    assert!(
        r.contains("devices[0].link: link \"nowhere\" is not defined"),
        "{r}"
    );
    assert!(r.contains("points.t2_supply: device \"ghost\""), "{r}");
    assert!(r.contains("rooms.nodes[0].link"), "{r}");
    assert!(r.contains("rooms.nodes[1].id"), "{r}");
    assert!(r.contains("uses unit id 1 on link \"l1\""), "{r}");
}

/// One physical device, two maps: the PLC's `substation-io` and `substation-pump` maps may share
/// its unit on one link; the same map twice on one unit is a mistake, and a room node on a
/// device's unit still is.
#[test]
fn two_maps_of_one_device_share_its_unit_but_the_same_map_twice_does_not() {
    let base = r#"
[site]
name = "x"
[curve]
points = [{ outdoor_c = -20.0, supply_c = 70.0 }, { outdoor_c = 15.0, supply_c = 30.0 }]
[[links]]
name = "l1"
kind = "tcp"
host = "127.0.0.1"
port = 502
[[devices]]
name = "plc"
link = "l1"
unit_id = 1
map = "devices/substation-io.toml"
"#;
    let points = "[points]\nt2_supply = \"plc.t2_supply\"\nvalve1_cmd = \"plc.valve1_cmd\"\n";
    let pump = "[[devices]]\nname = \"pump\"\nlink = \"l1\"\nunit_id = 1\nmap = \"devices/substation-pump.toml\"\n";
    let twice = "[[devices]]\nname = \"plc2\"\nlink = \"l1\"\nunit_id = 1\nmap = \"devices/substation-io.toml\"\n";
    config::parse_str(&format!("{base}{pump}{points}"), None).unwrap_or_else(|p| panic!("{p}"));
    let r = problems(&format!("{base}{twice}{points}")).to_string();
    assert!(
        r.contains("devices[1].unit_id: device \"plc2\" uses unit id 1 on link \"l1\" with map"),
        "{r}"
    );
    let node = "[rooms]\nnodes = [{ id = \"a\", link = \"l1\", unit_id = 1 }]\n";
    let r = problems(&format!("{base}{pump}{points}{node}")).to_string();
    assert!(
        r.contains("uses unit id 1 on link \"l1\", as device \"plc\" does"),
        "{r}"
    );
}

#[test]
fn three_point_output_needs_its_own_points() {
    let base = r#"
[site]
name = "x"
[curve]
points = [{ outdoor_c = -20.0, supply_c = 70.0 }, { outdoor_c = 15.0, supply_c = 30.0 }]
[valve1]
output = "three_point"
[[links]]
name = "l1"
kind = "tcp"
host = "127.0.0.1"
port = 502
[[devices]]
name = "plc"
link = "l1"
unit_id = 1
map = "devices/substation-io.toml"
[points]
t2_supply = "plc.t2_supply"
"#;
    let r = problems(&format!("{base}valve1_cmd = \"plc.valve1_cmd\"\n")).to_string();
    assert!(r.contains("points.valve1_open: required"), "{r}");
    assert!(r.contains("points.valve1_close: required"), "{r}");
    let r = problems(&format!(
        "{base}valve1_open = \"plc.relay1\"\nvalve1_close = \"plc.relay1\"\n"
    ))
    .to_string();
    assert!(
        r.contains("points.valve1_close: must be a different point"),
        "{r}"
    );
    let ok = format!("{base}valve1_open = \"plc.relay1\"\nvalve1_close = \"plc.relay2\"\n");
    config::parse_str(&ok, None).unwrap_or_else(|p| panic!("{p}"));
}

/// Load `text` as `sub.toml` in a fresh directory holding the shipped maps named in `maps`;
/// the problems as text.
fn load_problems(tag: &str, text: &str, maps: &[&str]) -> String {
    let dir = Scratch::new(&format!("heatctl-cfg-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("devices")).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/devices");
    for m in maps {
        std::fs::copy(shipped.join(m), dir.join("devices").join(m)).unwrap();
    }
    let path = dir.join("sub.toml");
    std::fs::write(&path, text).unwrap();
    config::load(&path).expect_err("must fail").to_string()
}

#[test]
fn point_not_in_the_map_is_reported_by_load() {
    let text = config::EXAMPLE_TOML
        .replace("t_out = \"plc.t_out\"", "t_out = \"plc.t_outdoor\"")
        .replace(
            "valve1_cmd = \"plc.valve1_cmd\"",
            "valve1_cmd = \"plc.valve1_pos\"",
        );
    let r = load_problems("map", &text, &["substation-io.toml"]);
    assert!(
        r.contains("points.t_out: point \"t_outdoor\" is not defined"),
        "{r}"
    );
    assert!(
        r.contains("points.valve1_cmd: point \"valve1_pos\"") && r.contains("not writable"),
        "{r}"
    );
    assert!(
        r.contains("cannot read device map"),
        "heat-meter map is missing: {r}"
    );
}

#[test]
fn household_valve_points_must_exist_in_their_map() {
    let text = config::EXAMPLE_TOML
        .replace(
            "position_point = \"position\"",
            "position_point = \"feedback\"",
        )
        .replace("command_point = \"command\"", "command_point = \"status\"");
    let maps = [
        "substation-io.toml",
        "heat-meter.toml",
        "room-node.toml",
        "valve-actuator.toml",
    ];
    let r = load_problems("hh", &text, &maps);
    assert!(
        r.contains("household_valves.position_point: point \"feedback\" is not defined"),
        "{r}"
    );
    assert!(
        r.contains("household_valves.command_point: point \"status\"")
            && r.contains("not writable"),
        "{r}"
    );
}

#[test]
fn syntax_error_has_a_position() {
    let p = problems("[site]\nname = \"x\"\n[curve\n");
    assert_eq!(p.0[0].line, Some(3), "{p}");
}

#[test]
fn shipped_device_maps_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/devices");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        config::load_device_map(&path).unwrap_or_else(|p| panic!("{p}"));
        n += 1;
    }
    assert!(n >= 4);
}

#[test]
fn overlapping_registers_in_a_map_are_reported() {
    let dir = Scratch::new(&format!("heatctl-map-{}", std::process::id()));
    let path = dir.join("m.toml");
    std::fs::write(
        &path,
        "[device]\nmodel = \"m\"\n[[points]]\nname = \"a\"\ntable = \"input\"\naddress = 0\ntype = \"u32\"\n\
         [[points]]\nname = \"b\"\ntable = \"input\"\naddress = 1\ntype = \"u16\"\n",
    )
    .unwrap();
    let r = config::load_device_map(&path)
        .expect_err("overlap")
        .to_string();
    assert!(
        r.contains("points[1].address: register 1 overlaps point \"a\""),
        "{r}"
    );
}

#[test]
fn schedule_days_and_times_are_checked_at_load() {
    let text = |period: &str| {
        format!(
            "[site]\nname = \"x\"\n[curve]\npoints = [{{ outdoor_c = -20.0, supply_c = 70.0 }}, \
             {{ outdoor_c = 15.0, supply_c = 30.0 }}]\n[schedule]\nenabled = true\nperiods = [\n{period}\n]\n"
        )
    };
    let p = problems(&text(
        r#"{ days = ["mon", "someday"], start = "22:00", end = "05:00" },"#,
    ));
    let r = p.to_string();
    assert!(
        r.starts_with(
            "sub.toml:8:18: schedule.periods[0].days[1]: unknown day \"someday\": use mon, tue, wed, thu, fri, sat, sun or all"
        ),
        "{r}"
    );
    assert_eq!(p.0.len(), 1, "nothing that follows from it: {r}");
    let p = problems(&text(
        r#"{ days = ["all"], start = "25:00", end = "05:00" },"#,
    ));
    let r = p.to_string();
    assert!(
        r.starts_with("sub.toml:8:19: schedule.periods[0].start: \"25:00\" is not a time HH:MM"),
        "{r}"
    );
    assert_eq!(p.0.len(), 1, "nothing that follows from it: {r}");
}

/// Every key of a TOML value, with `[]` for the entries of arrays of tables.
fn key_paths(prefix: &str, v: &toml::Value, out: &mut Vec<String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                key_paths(&p, v, out);
            }
        }
        toml::Value::Array(a) if a.first().is_some_and(toml::Value::is_table) => {
            for entry in a {
                key_paths(&format!("{prefix}[]"), entry, out);
            }
        }
        _ => out.push(prefix.to_owned()),
    }
}

/// Set `value` at a reference path (`[]`: the first entry, made if needed).
fn set_path(table: &mut toml::Table, path: &str, value: toml::Value) {
    let parts: Vec<&str> = path.split('.').collect();
    let mut cur = table;
    for part in &parts[..parts.len() - 1] {
        let key = part.trim_end_matches("[]");
        if part.ends_with("[]") {
            let arr = cur.entry(key).or_insert_with(|| {
                toml::Value::Array(vec![toml::Value::Table(toml::Table::new())])
            });
            cur = arr.as_array_mut().unwrap()[0].as_table_mut().unwrap();
        } else {
            cur = cur
                .entry(key)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .unwrap();
        }
    }
    cur.insert(parts[parts.len() - 1].to_owned(), value);
}

fn parse_value(text: &str) -> toml::Value {
    let t: toml::Table =
        toml::from_str(&format!("v = {text}")).unwrap_or_else(|e| panic!("{text}: {e}"));
    t["v"].clone()
}

#[test]
fn config_reference_lists_every_key() {
    let mut c = config::load(&example_path()).unwrap().config;
    c.curve.design = Some(config::DesignCurve {
        design_outdoor_c: -17.0,
        design_supply_c: 75.0,
        design_return_c: 50.0,
        room_c: 18.0,
        radiator_exponent: 1.3,
    });
    let every_check = config::SignalCheck {
        valid_min: Some(0.0),
        valid_max: Some(1.0),
        max_age_s: Some(1.0),
        stuck_after_s: Some(1.0),
        stuck_tolerance: Some(1.0),
        max_rate_per_s: Some(1.0),
    };
    let mut signals = toml::Table::new();
    for q in config::CheckedQuantity::ALL {
        signals.insert(q.name().into(), toml::Value::try_from(every_check).unwrap());
    }
    c.signals = signals.try_into().unwrap();
    let bind = Some("plc.x".to_owned());
    c.points.valve1_open = bind.clone();
    c.points.valve1_close = bind.clone();
    c.points.pump2_speed_cmd = bind.clone();
    c.points.pump2_speed = bind.clone();
    c.points.dp2_station = bind.clone();
    c.points.dp2_index = bind.clone();
    c.points.pump2_power = bind.clone();
    c.points.flow2 = bind;
    c.links[0].host = Some("h".into());
    c.links[0].port = Some(502);
    c.links[0].serial_port = Some("/dev/ttyS1".into());
    c.rooms.nodes[0].valve_link = Some("bus1".into());
    c.rooms.nodes[0].valve_unit_id = Some(9);
    // The keys of an mqtt link and node (a configuration has one kind or the other per entry).
    c.points.t_out_forecast = Some("iot.forecast".into());
    c.links[0].broker = Some("mqtt://h".into());
    c.links[0].username = Some("u".into());
    c.links[0].password_file = Some("/p".into());
    c.links[0].ca_file = Some("/ca.pem".into());
    c.links[0].client_id = Some("c".into());
    c.links[0].values = vec![config::MqttValue {
        name: "forecast".into(),
        topic: "t".into(),
        json_field: "f".into(),
        time_field: Some("ts".into()),
    }];
    c.rooms.nodes[0].topic = Some("t".into());
    c.rooms.nodes[0].json_field = Some("temp_c".into());
    c.rooms.nodes[0].time_field = Some("ts".into());
    c.web.token_file = Some("/etc/heatctl/web-token".into());
    c.web.tls_cert_file = Some("/etc/heatctl/web-cert.pem".into());
    c.web.tls_key_file = Some("/etc/heatctl/web-key.pem".into());
    c.history.design = c.curve.design;
    c.history.risers = vec![config::Riser {
        name: "r".into(),
        nodes: vec!["n".into()],
        mains_m: Some(120.0),
    }];
    assert!(!c.schedule.periods.is_empty() && !c.scada.writable.is_empty());
    let mut keys = Vec::new();
    key_paths("", &toml::Value::try_from(&c).unwrap(), &mut keys);
    keys.sort();
    keys.dedup();
    let listed: Vec<String> = config::reference::tables()
        .into_iter()
        .flat_map(|t| t.keys.into_iter().map(|k| k.path))
        .collect();
    let md = config::reference::markdown();
    for k in &keys {
        assert!(listed.contains(k), "{k} is not in the reference");
        assert!(md.contains(&format!("| `{k}` |")), "{k} is not printed");
    }
    assert!(keys.len() > 150, "{}", keys.len());
    assert_eq!(listed.len(), keys.len(), "nothing listed that is not a key");
}

#[test]
fn config_reference_defaults_are_the_real_defaults() {
    let base = "[site]\nname = \"x\"\n[curve]\n[[links]]\nname = \"l\"\nkind = \"tcp\"\n\
                [rooms]\nnodes = [{ id = \"n\", link = \"l\", unit_id = 1 }]\n";
    let implicit: config::Config = toml::from_str(base).unwrap();
    let mut explicit: toml::Table = toml::from_str(base).unwrap();
    let mut printed = 0;
    for t in config::reference::tables() {
        if let Some(d) = &t.default {
            set_path(&mut explicit, t.path.trim_end_matches("[]"), parse_value(d));
        }
        for k in &t.keys {
            if let Some(d) = &k.default {
                assert!(!k.required, "{}", k.path);
                set_path(&mut explicit, &k.path, parse_value(d));
                printed += 1;
            }
        }
    }
    assert!(printed > 100, "{printed}");
    let explicit: config::Config = explicit.try_into().unwrap();
    // The signal checks are written out in full where the implicit ones are left out: both
    // must resolve to the same limits.
    for q in config::CheckedQuantity::ALL {
        assert_eq!(
            explicit.signals.limits_of(q),
            implicit.signals.limits_of(q),
            "{}",
            q.name()
        );
        assert_ne!(
            explicit.signals.table(q),
            implicit.signals.table(q),
            "{} printed",
            q.name()
        );
    }
    let mut explicit = explicit;
    explicit.signals = implicit.signals.clone();
    assert_eq!(explicit, implicit);
}

/// 1-based line and column of the first `needle` in `text`.
fn line_col_of(text: &str, needle: &str) -> (usize, usize) {
    let at = text.find(needle).unwrap();
    let line = text[..at].matches('\n').count() + 1;
    let col = at - text[..at].rfind('\n').map_or(0, |nl| nl + 1) + 1;
    (line, col)
}

#[test]
fn problems_in_every_node_are_listed_at_their_own_index() {
    let text = config::EXAMPLE_TOML
        .replace(
            r#"position = "top_end", link = "bus1", unit_id = 1 }"#,
            r#"position = "topp", link = "bus1", unit_id = "x" }"#,
        )
        .replace(
            r#"position = "ground_end", link = "bus1", unit_id = 2 }"#,
            r#"position = "ground_end", link = "bus1", unit_id = "y" }"#,
        )
        .replace(
            r#"position = "middle", link = "bus1", unit_id = 3 }"#,
            r#"position = "middle", link = "bus9", unit_id = 3 }"#,
        );
    let maps = [
        "substation-io.toml",
        "heat-meter.toml",
        "room-node.toml",
        "valve-actuator.toml",
    ];
    let r = load_problems("nodes", &text, &maps);
    let at = |needle: &str| {
        let (l, c) = line_col_of(&text, needle);
        format!("/sub.toml:{l}:{c}:")
    };
    let expected = [
        format!(
            "{} rooms.nodes[0].position: unknown variant `topp`",
            at("position = \"topp\"")
        ),
        format!(
            "{} rooms.nodes[0].unit_id: invalid type: string \"x\", expected u8",
            at("unit_id = \"x\"")
        ),
        format!(
            "{} rooms.nodes[1].unit_id: invalid type: string \"y\", expected u8",
            at("unit_id = \"y\"")
        ),
        format!(
            "{} rooms.nodes[2].link: link \"bus9\"",
            at("link = \"bus9\"")
        ),
    ];
    let lines: Vec<&str> = r.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{r}");
    for (line, want) in lines.iter().zip(&expected) {
        assert!(
            line.contains(want.as_str()),
            "{line}\nwanted {want}\nin {r}"
        );
    }
}

#[test]
fn problems_in_every_period_are_listed_at_their_own_index() {
    let text = "[site]\nname = \"x\"\n[curve]\npoints = [{ outdoor_c = -20.0, supply_c = 70.0 }, \
        { outdoor_c = 15.0, supply_c = 30.0 }]\n[schedule]\nenabled = true\nperiods = [\
        { days = [\"xyz\"], start = \"23:00\", end = \"05:00\" }, \
        { days = [\"mon\"], start = \"25:00\", end = \"05:61\" }, \
        { days = [\"tue\"], start = \"1:00\", end = \"05:00\" }]\n";
    let p = problems(text);
    let r = p.to_string();
    let at = |needle: &str| {
        let (l, c) = line_col_of(text, needle);
        format!("sub.toml:{l}:{c}:")
    };
    let expected = [
        format!(
            "{} schedule.periods[0].days[0]: unknown day \"xyz\"",
            at("\"xyz\"")
        ),
        format!(
            "{} schedule.periods[1].start: \"25:00\" is not a time HH:MM",
            at("start = \"25:00\"")
        ),
        format!(
            "{} schedule.periods[1].end: \"05:61\" is not a time HH:MM",
            at("end = \"05:61\"")
        ),
        format!(
            "{} schedule.periods[2].start: \"1:00\" is not a time HH:MM",
            at("start = \"1:00\"")
        ),
    ];
    let lines: Vec<&str> = r.lines().collect();
    assert_eq!(
        lines.len(),
        expected.len(),
        "nothing that follows from them: {r}"
    );
    for (line, want) in lines.iter().zip(&expected) {
        assert!(
            line.contains(want.as_str()),
            "{line}\nwanted {want}\nin {r}"
        );
    }
}

#[test]
fn every_broken_field_of_a_long_array_is_listed_once() {
    const NODES: usize = 2000;
    let mut text = String::from(
        "[site]\nname = \"x\"\n[curve]\npoints = [{ outdoor_c = -20.0, supply_c = 70.0 }, \
         { outdoor_c = 15.0, supply_c = 30.0 }]\n\
         [[links]]\nname = \"l\"\nkind = \"rtu\"\nserial_port = \"/dev/ttyS1\"\n[rooms]\nnodes = [\n",
    );
    let first_line = text.matches('\n').count() + 1;
    let mut broken = 0;
    for i in 0..NODES {
        // Every node has a wrong unit id; every third one a wrong position too.
        let position = if i.is_multiple_of(3) {
            "sideways"
        } else {
            "middle"
        };
        broken += if i.is_multiple_of(3) { 2 } else { 1 };
        text.push_str(&format!(
            "  {{ id = \"n{i}\", position = \"{position}\", link = \"l\", unit_id = \"u{i}\" }},\n"
        ));
    }
    text.push_str("]\n");
    let p = problems(&text);
    assert_eq!(p.0.len(), broken, "{p}");
    let mut seen = std::collections::HashSet::new();
    for problem in &p.0 {
        assert!(seen.insert(problem.path.clone()), "twice: {problem}");
        let index: usize = problem
            .path
            .strip_prefix("rooms.nodes[")
            .and_then(|rest| rest.split(']').next())
            .and_then(|i| i.parse().ok())
            .unwrap_or_else(|| panic!("not in a node: {problem}"));
        assert_eq!(problem.line, Some(first_line + index), "{problem}");
        if problem.path.ends_with(".unit_id") {
            assert!(
                problem.message.contains(&format!("\"u{index}\"")),
                "{problem}"
            );
        } else {
            assert!(
                problem.path.ends_with(".position") && index.is_multiple_of(3),
                "{problem}"
            );
        }
    }
}
