//! Binding heatctl's configuration to a served plant: what `heatctl demo`, `plant-sim
//! --write-config` and the closed-loop rig run heatctl with.
//!
//! [`bind_to_plant`] adds to a base configuration (the tuning, e.g. [`DEMO_TOML`]) everything
//! that comes from the plant, named after [`crate::naming`]:
//!
//! | what | name | bound to |
//! |---|---|---|
//! | link, Modbus TCP | `plant_io` | the substation I/O's address |
//! | link, Modbus TCP | `plant_meter` | the heat meter's address |
//! | link, RTU over TCP, per building | `rooms-bNN` | that building's room gateway |
//! | link, RTU over TCP, per building (household valves only) | `valves-bNN` | that building's valve gateway |
//! | device | `plc`, unit 1, `devices/substation-io.toml` | link `plant_io` |
//! | device | `meter`, unit 1, `devices/heat-meter.toml` | link `plant_meter` |
//! | room node per plant room node, in the plant's node order | [`crate::naming::room_nodes`] | link `rooms-bNN`, the node's unit id; `valves-bNN` and the same unit id when the plant has household valves |
//!
//! `[points]`: `t_out`, `t1_supply`, `t1_return`, `t2_supply`, `t2_return`, `valve1_pos_pct`
//! (`plc.valve1_pos`), `valve1_cmd` from `plc`; `power1_kw` (`meter.power`), `flow1_m3h`
//! (`meter.flow`) and `energy1_kwh` (`meter.energy`). A binding the base already sets is kept.
//!
//! The RTU-over-TCP links are declared at 115200 baud: the accelerated clock shortens every
//! poll period, and the inter-frame gap at 9600 baud would make one building's bus (60 homes)
//! take longer than the node refresh period at high speeds.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use crate::naming::{
    IO_DEVICE, IO_LINK, METER_DEVICE, METER_LINK, room_link_name, room_nodes, valve_link_name,
};
use crate::plant::Plant;
use crate::serve::FaceAddresses;

/// The text of config/demo.toml: the tuning of the demo substation, without links,
/// devices, points or room nodes (those come from the plant).
pub const DEMO_TOML: &str = include_str!("../../../config/demo.toml");

/// The shipped device register maps, as `("devices/<name>.toml", text)`: the paths the
/// configurations written by [`bind_to_plant`] refer to, relative to the configuration file.
pub const DEVICE_MAPS: [(&str, &str); 5] = [
    (
        SUBSTATION_IO_MAP,
        include_str!("../../../config/devices/substation-io.toml"),
    ),
    (
        SUBSTATION_PUMP_MAP,
        include_str!("../../../config/devices/substation-pump.toml"),
    ),
    (
        HEAT_METER_MAP,
        include_str!("../../../config/devices/heat-meter.toml"),
    ),
    (
        "devices/room-node.toml",
        include_str!("../../../config/devices/room-node.toml"),
    ),
    (
        "devices/valve-actuator.toml",
        include_str!("../../../config/devices/valve-actuator.toml"),
    ),
];

/// Map of the substation I/O, relative to the configuration file.
const SUBSTATION_IO_MAP: &str = "devices/substation-io.toml";
/// Map of the substation I/O's pump signals (a second device on the I/O's link and unit, for a
/// configuration that drives the pump), relative to the configuration file.
pub const SUBSTATION_PUMP_MAP: &str = "devices/substation-pump.toml";
/// Map of the heat meter, relative to the configuration file.
const HEAT_METER_MAP: &str = "devices/heat-meter.toml";
/// Name of the configuration file [`write_config`] writes.
pub const CONFIG_FILE: &str = "heatctl.toml";
/// Baud rate declared for the room and valve buses (sets the RTU inter-frame gap).
const BUS_BAUD: i64 = 115_200;

fn tcp_link(name: &str, addr: SocketAddr) -> Table {
    let mut t = Table::new();
    t.insert("name".into(), name.into());
    t.insert("kind".into(), "tcp".into());
    t.insert("host".into(), addr.ip().to_string().into());
    t.insert("port".into(), i64::from(addr.port()).into());
    t
}

fn rtu_link(name: &str, addr: SocketAddr) -> Table {
    let mut t = tcp_link(name, addr);
    t.insert("kind".into(), "rtu_over_tcp".into());
    t.insert("baud".into(), BUS_BAUD.into());
    t
}

fn device(name: &str, link: &str, map: &str) -> Table {
    let mut t = Table::new();
    t.insert("name".into(), name.into());
    t.insert("link".into(), link.into());
    t.insert("unit_id".into(), 1_i64.into());
    t.insert("map".into(), map.into());
    t
}

/// Append `items` to the array of tables `key` of `root` (created when missing).
fn append_tables(root: &mut Table, key: &str, items: Vec<Table>) {
    let entry = root.entry(key).or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(a) = entry {
        a.extend(items.into_iter().map(Value::Table));
    }
    // Any other type is left as written: validation reports it with its position.
}

/// The plant's room nodes as `[rooms] nodes` tables.
fn room_node_tables(plant: &Plant, with_valves: bool) -> Vec<Table> {
    room_nodes(plant, with_valves)
        .iter()
        .filter_map(|n| Table::try_from(n).ok())
        .collect()
}

/// Serialise `root` under a header saying where it comes from; `fallback` if it cannot be.
fn render(root: &Table, header: &str, fallback: &str) -> String {
    match toml::to_string(root) {
        Ok(body) => format!("{header}{body}"),
        // A table parsed from TOML always serialises; keep the text if it ever does not.
        Err(e) => format!("# could not serialise the configuration: {e}\n{fallback}"),
    }
}

/// The base config `base_toml` (demo.toml or a variant of it) bound to a plant served at
/// `addrs`: links (Modbus TCP for the substation I/O and heat meter, RTU over TCP per room
/// gateway and per valve gateway), devices, `[points]` bindings (t_out, t1/t2 temperatures,
/// valve1 feedback and command, power, flow as the substation-io and heat-meter maps name
/// them), and one `[rooms]` node per room node the plant has ([`crate::naming::room_nodes`],
/// with its household valve when the plant has them). Map paths are written relative to the
/// config file as "devices/<name>.toml".
///
/// Links, devices and room nodes the base already has are kept, the generated ones appended;
/// a `[points]` binding the base sets wins over the generated one. The result is re-serialised
/// (the base's comments are not kept). A base that is not valid TOML is returned unchanged, so
/// that parsing the result reports the problem with its line and column.
#[must_use]
pub fn bind_to_plant(base_toml: &str, plant: &Plant, addrs: &FaceAddresses) -> String {
    let Ok(mut root) = base_toml.parse::<Table>() else {
        return base_toml.to_owned();
    };
    let with_valves = plant.scenario().household_valves.enabled && !addrs.valve_gateways.is_empty();

    let mut links = vec![
        tcp_link(IO_LINK, addrs.substation_io),
        tcp_link(METER_LINK, addrs.heat_meter),
    ];
    links.extend(
        addrs
            .room_gateways
            .iter()
            .map(|g| rtu_link(&room_link_name(g.building), g.addr)),
    );
    if with_valves {
        links.extend(
            addrs
                .valve_gateways
                .iter()
                .map(|g| rtu_link(&valve_link_name(g.building), g.addr)),
        );
    }
    append_tables(&mut root, "links", links);
    append_tables(
        &mut root,
        "devices",
        vec![
            device(IO_DEVICE, IO_LINK, SUBSTATION_IO_MAP),
            device(METER_DEVICE, METER_LINK, HEAT_METER_MAP),
        ],
    );

    let bindings = [
        ("t_out", "plc.t_out"),
        ("t1_supply", "plc.t1_supply"),
        ("t1_return", "plc.t1_return"),
        ("t2_supply", "plc.t2_supply"),
        ("t2_return", "plc.t2_return"),
        ("valve1_pos_pct", "plc.valve1_pos"),
        ("valve1_cmd", "plc.valve1_cmd"),
        ("power1_kw", "meter.power"),
        ("flow1_m3h", "meter.flow"),
        ("energy1_kwh", "meter.energy"),
    ];
    let points = root
        .entry("points")
        .or_insert_with(|| Value::Table(Table::new()));
    if let Value::Table(p) = points {
        for (signal, binding) in bindings {
            p.entry(signal).or_insert_with(|| binding.into());
        }
    }

    let rooms = root
        .entry("rooms")
        .or_insert_with(|| Value::Table(Table::new()));
    if let Value::Table(r) = rooms {
        append_tables(r, "nodes", room_node_tables(plant, with_valves));
    }

    let header = format!(
        "# Generated by heatctl_plant::binding::bind_to_plant: the base configuration bound to a\n\
         # simulated plant ({} room nodes). Do not edit; regenerate.\n\n",
        plant.room_node_count()
    );
    render(&root, &header, base_toml)
}

/// Write `bind_to_plant(..)` to `dir/heatctl.toml` and the shipped device maps to
/// `dir/devices/*.toml` (from embedded copies); returns the config path, ready for
/// `heatctl check --config` and `heatctl run --config`.
///
/// # Errors
/// A directory or file cannot be written.
pub fn write_config(
    dir: &Path,
    base_toml: &str,
    plant: &Plant,
    addrs: &FaceAddresses,
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir.join("devices"))?;
    for (rel, text) in DEVICE_MAPS {
        std::fs::write(dir.join(rel), text)?;
    }
    let path = dir.join(CONFIG_FILE);
    std::fs::write(&path, bind_to_plant(base_toml, plant, addrs))?;
    Ok(path)
}

/// Scratch directories for the unit tests, removed when dropped (shared with heatctl's tests).
#[cfg(test)]
#[path = "../../../controller/tests/peers/scratch.rs"]
mod scratch;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::{position, room_node_id};
    use crate::{GatewayAddress, PlantServer, Scenario, ServeOptions, Weather, serve_with};
    use heatctl_core::config;

    /// A small plant (2 buildings x 12 flats) with constant weather, no files needed.
    fn small_scenario(valves: bool) -> Scenario {
        let text = format!(
            "seed = 3\n[buildings]\ncount = 2\nfloors = 4\nunits_per_floor = 3\n\
             [weather]\nconstant_outdoor_c = -8.0\n[room_nodes]\nshare_pct = 50.0\n\
             [household_valves]\nenabled = {valves}\n"
        );
        Scenario::from_toml_str(&text, Path::new("."), None, "test").unwrap()
    }

    async fn served(valves: bool) -> PlantServer {
        let sc = small_scenario(valves);
        let plant = Plant::with_weather(&sc, Weather::constant(-8.0, 0.0));
        serve_with(plant, ServeOptions::at_speed(0.0))
            .await
            .unwrap()
    }

    /// A fresh directory `heatctl-binding-TAG-PID`, removed when the guard is dropped.
    fn temp_dir(tag: &str) -> super::scratch::Scratch {
        super::scratch::Scratch::new(&format!("heatctl-binding-{tag}-{}", std::process::id()))
    }

    #[tokio::test]
    async fn bound_demo_config_loads_with_one_node_per_plant_node() {
        let server = served(false).await;
        let addrs = server.addresses().clone();
        let plant = crate::serve::lock(&server.plant()).clone();
        let text = bind_to_plant(DEMO_TOML, &plant, &addrs);
        let cfg = config::parse_str(&text, None).unwrap_or_else(|p| panic!("{p}\n{text}"));
        assert!(plant.room_node_count() > 0);
        assert_eq!(cfg.rooms.nodes.len(), plant.room_node_count());
        assert_eq!(cfg.links.len(), 2 + addrs.room_gateways.len());
        assert!(cfg.rooms.nodes.iter().all(|n| n.valve_link.is_none()));

        // Every node sits on its building's gateway, at a unit id that gateway answers.
        for (k, node) in cfg.rooms.nodes.iter().enumerate() {
            let r = plant.room_node(k).unwrap();
            let gw = addrs
                .room_gateways
                .iter()
                .find(|g| g.building == r.building)
                .unwrap();
            let link = cfg.links.iter().find(|l| l.name == node.link).unwrap();
            assert_eq!(link.port, Some(gw.addr.port()), "node {}", node.id);
            assert_eq!(link.host.as_deref(), Some("127.0.0.1"));
            assert_eq!(node.unit_id, r.unit_id);
            assert!(gw.unit_ids.contains(&node.unit_id), "node {}", node.id);
        }
        // The first node of the plant: top-floor end flats come first.
        let first = plant.room_node(0).unwrap();
        let n0 = &cfg.rooms.nodes[0];
        assert_eq!(n0.id, room_node_id(first.building, first.floor, first.unit));
        let end = plant.apartments()[first.apartment].is_end_unit;
        assert_eq!(n0.position, position(first.position, end));

        assert_eq!(cfg.points.t2_supply.as_deref(), Some("plc.t2_supply"));
        assert_eq!(cfg.points.valve1_pos_pct.as_deref(), Some("plc.valve1_pos"));
        assert_eq!(cfg.points.power1_kw.as_deref(), Some("meter.power"));
        assert_eq!(cfg.points.energy1_kwh.as_deref(), Some("meter.energy"));
        let io = cfg.links.iter().find(|l| l.name == IO_LINK).unwrap();
        assert_eq!(io.port, Some(addrs.substation_io.port()));
        server.shutdown().await;
    }

    #[tokio::test]
    async fn embedded_maps_load_like_files_and_a_missing_one_is_named() {
        let server = served(false).await;
        let addrs = server.addresses().clone();
        let plant = crate::serve::lock(&server.plant()).clone();
        let text = bind_to_plant(DEMO_TOML, &plant, &addrs);
        let name = Path::new("bound.toml");
        let loaded =
            config::parse_with_maps(&text, name, &DEVICE_MAPS).unwrap_or_else(|p| panic!("{p}"));
        assert_eq!(loaded.path, name);
        assert_eq!(loaded.config.rooms.nodes.len(), plant.room_node_count());
        assert!(loaded.device_map("plc").is_some() && loaded.device_map("meter").is_some());

        let without_rooms: Vec<(&str, &str)> = DEVICE_MAPS
            .into_iter()
            .filter(|(rel, _)| !rel.contains("room-node"))
            .collect();
        let err = config::parse_with_maps(&text, name, &without_rooms)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rooms.map") && err.contains("room-node.toml"),
            "{err}"
        );
        server.shutdown().await;
    }

    #[tokio::test]
    async fn written_config_passes_the_full_check_with_household_valves() {
        let server = served(true).await;
        let addrs = server.addresses().clone();
        let plant = crate::serve::lock(&server.plant()).clone();
        let dir = temp_dir("valves");
        let path = write_config(&dir, DEMO_TOML, &plant, &addrs).unwrap();
        assert_eq!(path, dir.join(CONFIG_FILE));
        // `heatctl check` is `config::load`: maps read from dir/devices, references checked.
        let loaded = config::load(&path).unwrap_or_else(|p| panic!("{p}"));
        assert_eq!(loaded.config.rooms.nodes.len(), plant.room_node_count());
        assert_eq!(
            loaded.maps.len(),
            4,
            "every map used, the valve map included"
        );
        for node in &loaded.config.rooms.nodes {
            let gw = addrs
                .valve_gateways
                .iter()
                .find(|g| Some(valve_link_name(g.building)) == node.valve_link)
                .unwrap();
            let unit = node.valve_unit_id.unwrap();
            assert!(gw.unit_ids.contains(&unit));
        }
        server.shutdown().await;
    }

    #[test]
    fn base_settings_are_kept_and_bad_base_is_reported() {
        let sc = small_scenario(false);
        let plant = Plant::with_weather(&sc, Weather::constant(0.0, 0.0));
        let addr: std::net::SocketAddr = "127.0.0.1:7".parse().unwrap();
        let mut addrs = FaceAddresses {
            substation_io: addr,
            heat_meter: addr,
            room_gateways: (0..2)
                .map(|building| GatewayAddress {
                    building,
                    addr,
                    unit_ids: Vec::new(),
                })
                .collect(),
            valve_gateways: Vec::new(),
        };
        let base = format!(
            "{DEMO_TOML}\n[points]\nt_out = \"meter.t_supply\"\n\
             [[links]]\nname = \"spare\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 9\n"
        );
        let cfg = config::parse_str(&bind_to_plant(&base, &plant, &addrs), None)
            .unwrap_or_else(|p| panic!("{p}"));
        assert_eq!(cfg.points.t_out.as_deref(), Some("meter.t_supply"));
        assert_eq!(cfg.points.t1_supply.as_deref(), Some("plc.t1_supply"));
        assert_eq!(cfg.links[0].name, "spare", "the base's links come first");
        assert_eq!(cfg.links.len(), 1 + 2 + 2);

        addrs.room_gateways.clear();

        // No room gateway bound: the nodes refer to links that do not exist, and the full
        // check says so.
        let dir = temp_dir("nogw");
        let path = write_config(&dir, DEMO_TOML, &plant, &addrs).unwrap();
        let problems = config::load(&path).unwrap_err().to_string();
        assert!(problems.contains("rooms-b01"), "{problems}");

        let broken = "[site\nname = 1\n";
        let rig = Path::new("rig.toml");
        let err = config::parse_str(&bind_to_plant(broken, &plant, &addrs), Some(rig))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("rig.toml:1:"), "{err}");
    }
}
