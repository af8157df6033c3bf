//! What each link polls: devices, their points, and the merged read blocks.

use super::mqtt::MqttSource;
use crate::config::{DeviceMap, Link, LinkKind, LoadedConfig, PointMap, Table};

/// Highest register count of one Modbus read (function 03/04).
pub const MAX_REGISTERS_PER_READ: u16 = 125;
/// Highest bit count of one Modbus read (function 01/02) that heatctl asks for.
pub const MAX_BITS_PER_READ: u16 = 2000;

/// Prefix of the device name given to a room node (`room:<node id>`).
pub const ROOM_PREFIX: &str = "room:";
/// Prefix of the device name given to a household valve actuator (`hh_valve:<node id>`).
pub const HH_VALVE_PREFIX: &str = "hh_valve:";

/// Contiguous points of one device and table, read with one request.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadBlock {
    /// Register table.
    pub table: Table,
    /// Indices into [`DevicePlan::points`], sorted by address.
    pub points: Vec<usize>,
}

/// One device as a link task polls it.
#[derive(Debug, Clone, PartialEq)]
pub struct DevicePlan {
    /// Name used in `[points]` bindings, statistics and logs (`room:<id>` for room nodes).
    pub name: String,
    /// Modbus unit id.
    pub unit_id: u8,
    /// The points of its register map.
    pub points: Vec<PointMap>,
    /// Merged reads.
    pub blocks: Vec<ReadBlock>,
    /// On an mqtt link: the topics and JSON fields its points arrive in (empty on Modbus).
    pub mqtt: Vec<MqttSource>,
}

/// One link and the devices on it.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkPlan {
    /// The link settings.
    pub link: Link,
    /// Devices on the link, in configuration order.
    pub devices: Vec<DevicePlan>,
}

impl DevicePlan {
    /// Plan the reads of a device from its map: points of one table whose registers touch or
    /// overlap are merged, up to `max_registers_per_read` (and never more than 125).
    #[must_use]
    pub fn new(name: &str, unit_id: u8, map: &DeviceMap) -> Self {
        let points = map.points.clone();
        let limit_regs = map
            .device
            .max_registers_per_read
            .clamp(1, MAX_REGISTERS_PER_READ);
        let mut order: Vec<usize> = (0..points.len()).collect();
        order.sort_by_key(|&i| (points[i].table, points[i].address));
        let mut blocks: Vec<ReadBlock> = Vec::new();
        let mut span: Option<(Table, u32, u32)> = None; // table, start, end (exclusive)
        for i in order {
            let p = &points[i];
            let start = u32::from(p.address);
            let end = start + u32::from(p.data_type.width());
            let limit = u32::from(match p.table {
                Table::Coil | Table::Discrete => MAX_BITS_PER_READ,
                Table::Holding | Table::Input => limit_regs,
            });
            match (&mut span, blocks.last_mut()) {
                (Some((t, s, e)), Some(block))
                    if *t == p.table && start <= *e && end.max(*e) - *s <= limit =>
                {
                    *e = end.max(*e);
                    block.points.push(i);
                }
                _ => {
                    span = Some((p.table, start, end));
                    blocks.push(ReadBlock {
                        table: p.table,
                        points: vec![i],
                    });
                }
            }
        }
        Self {
            name: name.to_owned(),
            unit_id,
            points,
            blocks,
            mqtt: Vec::new(),
        }
    }

    /// A device of an mqtt link: nothing polled, its points arrive on `sources`.
    #[must_use]
    pub fn mqtt(name: &str, sources: Vec<MqttSource>) -> Self {
        Self {
            name: name.to_owned(),
            unit_id: 0,
            points: Vec::new(),
            blocks: Vec::new(),
            mqtt: sources,
        }
    }

    /// The point with this name.
    #[must_use]
    pub fn point(&self, name: &str) -> Option<&PointMap> {
        self.points.iter().find(|p| p.name == name)
    }
}

/// Register span `(start, count)` covering the given points of a device.
#[must_use]
pub fn span_of(points: &[PointMap], indices: &[usize]) -> Option<(u16, u16)> {
    let start = indices
        .iter()
        .map(|&i| u32::from(points[i].address))
        .min()?;
    let end = indices
        .iter()
        .map(|&i| u32::from(points[i].address) + u32::from(points[i].data_type.width()))
        .max()?;
    let count = u16::try_from(end - start).ok()?;
    Some((u16::try_from(start).ok()?, count))
}

/// Plan every link of a loaded configuration: the `[[devices]]`, then one device per room node
/// (room-node map, or its topic on an mqtt link) and per household valve (valve-actuator map).
/// An mqtt link with `values` gets one device named as the link carrying them; its client id
/// defaults to "<station id>-in", and without a broker of its own it takes the first of
/// `platform.brokers` with the platform's username, password file and CA file.
#[must_use]
pub fn plan_links(loaded: &LoadedConfig) -> Vec<LinkPlan> {
    let cfg = &loaded.config;
    let station = cfg.platform.station_id_or(&cfg.site.name);
    let mut plans: Vec<LinkPlan> = cfg
        .links
        .iter()
        .map(|l| {
            let mut link = l.clone();
            let mut devices = Vec::new();
            if l.kind == LinkKind::Mqtt {
                link.client_id
                    .get_or_insert_with(|| format!("{station}-in"));
                // No broker of its own: the platform's, with its credentials.
                if link.broker.is_none()
                    && let Some(b) = cfg.platform.brokers.first()
                {
                    let p = &cfg.platform;
                    let given = |s: &str| (!s.is_empty()).then(|| s.to_owned());
                    link.broker = Some(b.clone());
                    link.username = given(&p.username);
                    link.password_file = given(&p.password_file);
                    link.ca_file = given(&p.ca_file);
                }
                if !l.values.is_empty() {
                    let sources = l
                        .values
                        .iter()
                        .map(|v| MqttSource {
                            topic: v.topic.clone(),
                            json_field: v.json_field.clone(),
                            time_field: v.time_field.clone(),
                            point: v.name.clone(),
                        })
                        .collect();
                    devices.push(DevicePlan::mqtt(&l.name, sources));
                }
            }
            LinkPlan { link, devices }
        })
        .collect();
    let is_mqtt = |name: &str| {
        cfg.links
            .iter()
            .any(|l| l.name == name && l.kind == LinkKind::Mqtt)
    };
    let mut add = |link: &str, plan: DevicePlan| {
        if let Some(lp) = plans.iter_mut().find(|p| p.link.name == link) {
            lp.devices.push(plan);
        }
    };
    for d in &cfg.devices {
        if let Some(map) = loaded.maps.get(&d.map) {
            add(&d.link, DevicePlan::new(&d.name, d.unit_id, map));
        }
    }
    for n in cfg.rooms.nodes.iter().filter(|n| is_mqtt(&n.link)) {
        let (Some(topic), Some(json_field)) = (&n.topic, &n.json_field) else {
            continue;
        };
        let source = MqttSource {
            topic: topic.clone(),
            json_field: json_field.clone(),
            time_field: n.time_field.clone(),
            point: cfg.rooms.temperature_point.clone(),
        };
        add(
            &n.link,
            DevicePlan::mqtt(&format!("{ROOM_PREFIX}{}", n.id), vec![source]),
        );
    }
    if let Some(map) = loaded.maps.get(&cfg.rooms.map) {
        for n in cfg.rooms.nodes.iter().filter(|n| !is_mqtt(&n.link)) {
            add(
                &n.link,
                DevicePlan::new(&format!("{ROOM_PREFIX}{}", n.id), n.unit_id, map),
            );
        }
    }
    if let Some(map) = loaded.maps.get(&cfg.household_valves.map) {
        for n in &cfg.rooms.nodes {
            if let (Some(link), Some(unit)) = (&n.valve_link, n.valve_unit_id) {
                add(
                    link,
                    DevicePlan::new(&format!("{HH_VALVE_PREFIX}{}", n.id), unit, map),
                );
            }
        }
    }
    plans
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DataType, DeviceInfo, WordOrder};

    fn pt(name: &str, table: Table, address: u16, data_type: DataType) -> PointMap {
        PointMap {
            name: name.into(),
            table,
            address,
            data_type,
            word_order: WordOrder::Big,
            scale: 1.0,
            offset: 0.0,
            unit: String::new(),
            sentinels: vec![],
            valid_min: None,
            valid_max: None,
            poll_period_s: 1.0,
            max_age_s: 10.0,
            writable: false,
        }
    }

    fn map(points: Vec<PointMap>, max: u16) -> DeviceMap {
        DeviceMap {
            device: DeviceInfo {
                model: "m".into(),
                description: String::new(),
                max_registers_per_read: max,
            },
            points,
        }
    }

    #[test]
    fn mqtt_nodes_and_values_are_planned_on_their_link_with_the_platform_broker() {
        let text = "[site]\nname = \"Estate 7\"\n[curve]\npoints = [{ outdoor_c = -20.0, supply_c = 70.0 }, { outdoor_c = 15.0, supply_c = 30.0 }]\n\
            [platform]\nbrokers = [\"mqtt://10.0.0.9\", \"mqtt://10.0.0.10\"]\nusername = \"s7\"\n\
            [[links]]\nname = \"iot\"\nkind = \"mqtt\"\n\
            values = [{ name = \"forecast\", topic = \"p/f\", json_field = \"t_6h\" }]\n\
            [[links]]\nname = \"own\"\nkind = \"mqtt\"\nbroker = \"mqtt://10.0.0.5\"\nclient_id = \"x\"\n\
            [rooms]\nnodes = [\n\
            { id = \"a\", link = \"iot\", topic = \"t/a\", json_field = \"temp_c\", time_field = \"ts\" },\n\
            { id = \"b\", link = \"own\", topic = \"t/b\", json_field = \"d.t\" },\n]\n";
        let config = crate::config::parse_str(text, None).unwrap_or_else(|p| panic!("{p}"));
        let loaded = LoadedConfig {
            config,
            path: "t.toml".into(),
            maps: std::collections::BTreeMap::new(),
        };
        let plans = plan_links(&loaded);
        let iot = &plans[0];
        assert_eq!(iot.link.broker.as_deref(), Some("mqtt://10.0.0.9"));
        assert_eq!(iot.link.username.as_deref(), Some("s7"));
        assert_eq!(iot.link.client_id.as_deref(), Some("estate-7-in"));
        let names: Vec<&str> = iot.devices.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["iot", "room:a"]);
        assert_eq!(iot.devices[0].mqtt[0].point, "forecast");
        let a = &iot.devices[1].mqtt[0];
        assert_eq!(
            (
                a.topic.as_str(),
                a.json_field.as_str(),
                a.time_field.as_deref()
            ),
            ("t/a", "temp_c", Some("ts"))
        );
        assert_eq!(a.point, loaded.config.rooms.temperature_point);
        let own = &plans[1];
        assert_eq!(own.link.broker.as_deref(), Some("mqtt://10.0.0.5"));
        assert_eq!(own.link.username, None);
        assert_eq!(own.link.client_id.as_deref(), Some("x"));
        assert_eq!(own.devices.len(), 1);
    }

    #[test]
    fn contiguous_points_merge_gaps_and_tables_split() {
        let m = map(
            vec![
                pt("c", Table::Input, 3, DataType::U32),
                pt("a", Table::Input, 0, DataType::U16),
                pt("b", Table::Input, 1, DataType::I16),
                pt("gap", Table::Input, 10, DataType::U16),
                pt("h", Table::Holding, 0, DataType::U16),
                pt("d", Table::Input, 2, DataType::U16),
            ],
            125,
        );
        let plan = DevicePlan::new("plc", 1, &m);
        assert_eq!(plan.blocks.len(), 3);
        assert_eq!(plan.blocks[0].table, Table::Holding);
        assert_eq!(span_of(&plan.points, &plan.blocks[1].points), Some((0, 5)));
        assert_eq!(span_of(&plan.points, &plan.blocks[2].points), Some((10, 1)));
    }

    #[test]
    fn max_registers_per_read_splits_long_runs() {
        let points = (0..300)
            .map(|i| pt(&format!("p{i}"), Table::Holding, i, DataType::U16))
            .collect();
        let plan = DevicePlan::new("d", 1, &map(points, 500));
        let counts: Vec<u16> = plan
            .blocks
            .iter()
            .filter_map(|b| span_of(&plan.points, &b.points).map(|s| s.1))
            .collect();
        assert_eq!(counts, vec![125, 125, 50]);
        let points = (0..10)
            .map(|i| pt(&format!("p{i}"), Table::Input, i * 2, DataType::F32))
            .collect();
        let plan = DevicePlan::new("d", 1, &map(points, 5));
        assert!(
            plan.blocks
                .iter()
                .all(|b| span_of(&plan.points, &b.points).is_some_and(|s| s.1 <= 5))
        );
    }
}
