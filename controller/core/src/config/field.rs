//! The field side: `[[links]]`, `[[devices]]`, `[points]` and `[rooms]` (the room nodes), with
//! the checks that tie them together (every name defined once, every reference defined, no two
//! devices at one address on a bus).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::Config;
use super::ValveOutput;
use super::check::{Checker, Rules};
use super::device_map::DeviceMap;
use super::problems::Problem;
use crate::signal::Signal;

/// Kind of a communication link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// Modbus TCP.
    Tcp,
    /// Modbus RTU on a local serial port (RS-485 adapter).
    Rtu,
    /// Modbus RTU frames through a transparent serial-to-Ethernet gateway.
    RtuOverTcp,
    /// Readings published on an MQTT broker (wireless room collectors, the platform's
    /// forecast): subscribed to, never polled. See docs/mqtt-inputs.md.
    Mqtt,
}

impl LinkKind {
    /// Whether the link speaks Modbus (polled devices with unit ids).
    #[must_use]
    pub const fn is_modbus(self) -> bool {
        !matches!(self, LinkKind::Mqtt)
    }
}

/// Serial parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Parity {
    /// No parity bit.
    None,
    /// Even parity.
    Even,
    /// Odd parity.
    Odd,
}

/// A communication link. One task polls each link; devices on one link are polled in turn.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// Name the devices refer to.
    pub name: String,
    /// "tcp", "rtu" or "rtu_over_tcp".
    pub kind: LinkKind,
    /// Host of a TCP link or gateway.
    pub host: Option<String>,
    /// Port of a TCP link or gateway (Modbus TCP: 502).
    pub port: Option<u16>,
    /// Serial device of an RTU link, e.g. "/dev/ttyS1".
    pub serial_port: Option<String>,
    /// Baud rate of the RS-485 bus (RTU and RTU over TCP; sets the inter-frame gap).
    #[serde(default = "d_baud")]
    pub baud: u32,
    /// Parity of the bus.
    #[serde(default = "d_parity")]
    pub parity: Parity,
    /// Stop bits (1 or 2).
    #[serde(default = "d_stop_bits")]
    pub stop_bits: u8,
    /// Every request must be answered within this many milliseconds.
    #[serde(default = "d_timeout_ms")]
    pub timeout_ms: u64,
    /// First wait before reconnecting after a failure, ms (doubles up to `reconnect_max_ms`).
    #[serde(default = "d_reconnect_min")]
    pub reconnect_min_ms: u64,
    /// Longest wait between reconnect attempts, ms.
    #[serde(default = "d_reconnect_max")]
    pub reconnect_max_ms: u64,
    /// Broker of an mqtt link: "mqtt://host:port" (default port 1883) or "mqtts://host:port"
    /// (TLS, default port 8883). Left out: the first of `platform.brokers`, with the platform's
    /// username, password_file and ca_file.
    pub broker: Option<String>,
    /// User name at the broker (mqtt links).
    pub username: Option<String>,
    /// File holding the broker password (mqtt links; the password is never in this file).
    pub password_file: Option<String>,
    /// CA certificate(s), PEM, that the broker's certificate must chain to (mqtts://).
    pub ca_file: Option<String>,
    /// Client id at the broker (mqtt links); default "<station id>-in", so it never takes over
    /// the session of the platform link.
    pub client_id: Option<String>,
    /// Values of an mqtt link other than room readings (e.g. the outdoor forecast), bound in
    /// `[points]` as "<link>.<name>".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<MqttValue>,
}

impl Link {
    /// A link `name` of `kind` with every other key at the default a configuration file gets
    /// (no address, 9600 8N1, default timeout and reconnect back-off, no broker settings).
    #[must_use]
    pub fn new(name: impl Into<String>, kind: LinkKind) -> Self {
        Self {
            name: name.into(),
            kind,
            host: None,
            port: None,
            serial_port: None,
            baud: d_baud(),
            parity: d_parity(),
            stop_bits: d_stop_bits(),
            timeout_ms: d_timeout_ms(),
            reconnect_min_ms: d_reconnect_min(),
            reconnect_max_ms: d_reconnect_max(),
            broker: None,
            username: None,
            password_file: None,
            ca_file: None,
            client_id: None,
            values: Vec::new(),
        }
    }
}

/// A value read from a JSON message on an mqtt link.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MqttValue {
    /// Name the `[points]` binding uses ("<link>.<name>").
    pub name: String,
    /// Topic it is published on (no wildcards).
    pub topic: String,
    /// Field of the JSON object holding the number; "a.b" reaches into nested objects.
    pub json_field: String,
    /// Field holding the measurement time (RFC 3339 or unix seconds); absent: arrival time.
    pub time_field: Option<String>,
}
fn d_baud() -> u32 {
    9600
}
fn d_parity() -> Parity {
    Parity::None
}
fn d_stop_bits() -> u8 {
    1
}
fn d_timeout_ms() -> u64 {
    1000
}
fn d_reconnect_min() -> u64 {
    500
}
fn d_reconnect_max() -> u64 {
    30_000
}

/// A field device.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// Name the points refer to, e.g. "plc" in "plc.t2_supply".
    pub name: String,
    /// Link it is on.
    pub link: String,
    /// Modbus unit id (1..247; 255 or 0 for some TCP devices). Two `[[devices]]` share a unit
    /// only with different maps (one PLC read through `substation-io.toml` and
    /// `substation-pump.toml`); no room node or household valve may use a device's unit.
    pub unit_id: u8,
    /// Register map file, relative to this configuration file, e.g. "devices/heat-meter.toml".
    pub map: String,
}

/// Which device point ("device.point") feeds each controller signal. Leave out what the
/// substation does not have; `t2_supply` is required to run, and `valve1_cmd` with a position
/// output or `valve1_open` and `valve1_close` with a three-point output.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Points {
    /// Outdoor temperature.
    pub t_out: Option<String>,
    /// Primary supply temperature.
    pub t1_supply: Option<String>,
    /// Primary return temperature.
    pub t1_return: Option<String>,
    /// Secondary supply temperature.
    pub t2_supply: Option<String>,
    /// Secondary return temperature.
    pub t2_return: Option<String>,
    /// Heat-meter power, kW.
    pub power1_kw: Option<String>,
    /// Heat-meter flow, m³/h.
    pub flow1_m3h: Option<String>,
    /// Primary valve position feedback, %.
    pub valve1_pos_pct: Option<String>,
    /// Outdoor temperature forecast, °C: usually a value of an mqtt link ("<link>.<value>").
    /// Optional; shown and validated, and used by the curve's feed-forward when
    /// `[outdoor] forecast_weight` is above 0.
    pub t_out_forecast: Option<String>,
    /// Heat-meter energy counter, kWh (a u32 counter point, e.g. "meter.energy"). Optional;
    /// shown and published, used by no control function.
    pub energy1_kwh: Option<String>,
    /// Secondary differential pressure supply-return at the substation outlet, kPa (the
    /// `[pump2]` loop in `constant_dp` and `proportional_dp` mode; the dry-run guard).
    pub dp2_station: Option<String>,
    /// Secondary differential pressure across the index riser, kPa: the remote sensor of the
    /// `[pump2]` loop in `index` mode.
    pub dp2_index: Option<String>,
    /// Secondary pump speed feedback, %.
    pub pump2_speed: Option<String>,
    /// Secondary pump electric power, kW (shown and published).
    pub pump2_power: Option<String>,
    /// Secondary flow, m³/h (the pump's dry-run guard; `proportional_dp` mode).
    pub flow2: Option<String>,
    /// Primary valve command (a writable point), %; `valve1.output = "position"`.
    pub valve1_cmd: Option<String>,
    /// Three-point actuator (`valve1.output = "three_point"`): the writable point (a coil or
    /// holding register of a PLC relay output) set to 1 while the valve is driven open, 0
    /// otherwise.
    pub valve1_open: Option<String>,
    /// Three-point actuator: the writable point set to 1 while the valve is driven closed.
    /// heatctl never sets both at once; on shutdown both go to 0 (the actuator holds).
    pub valve1_close: Option<String>,
    /// Secondary pump speed command (a writable point), %. Bound: heatctl controls the pump
    /// as `[pump2]` says; left out: the pump is not touched (runs as its drive is set).
    pub pump2_speed_cmd: Option<String>,
}

/// A point the controller writes (its key in `[points]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandPoint {
    /// `valve1_cmd`: the position command.
    Valve1Cmd,
    /// `valve1_open`: the three-point open output.
    Valve1Open,
    /// `valve1_close`: the three-point close output.
    Valve1Close,
    /// `pump2_speed_cmd`: the secondary pump speed command.
    Pump2SpeedCmd,
}

impl CommandPoint {
    /// Every command point.
    pub const ALL: [CommandPoint; 4] = [
        CommandPoint::Valve1Cmd,
        CommandPoint::Valve1Open,
        CommandPoint::Valve1Close,
        CommandPoint::Pump2SpeedCmd,
    ];

    /// Its key in `[points]`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            CommandPoint::Valve1Cmd => "valve1_cmd",
            CommandPoint::Valve1Open => "valve1_open",
            CommandPoint::Valve1Close => "valve1_close",
            CommandPoint::Pump2SpeedCmd => "pump2_speed_cmd",
        }
    }
}

impl Points {
    /// The binding ("device.point") of a signal, if any.
    #[must_use]
    pub fn signal(&self, s: Signal) -> Option<&str> {
        match s {
            Signal::TOut => &self.t_out,
            Signal::T1Supply => &self.t1_supply,
            Signal::T1Return => &self.t1_return,
            Signal::T2Supply => &self.t2_supply,
            Signal::T2Return => &self.t2_return,
            Signal::Power1Kw => &self.power1_kw,
            Signal::Flow1M3h => &self.flow1_m3h,
            Signal::Valve1PosPct => &self.valve1_pos_pct,
            Signal::TOutForecast => &self.t_out_forecast,
            Signal::Energy1Kwh => &self.energy1_kwh,
            Signal::Dp2StationKpa => &self.dp2_station,
            Signal::Dp2IndexKpa => &self.dp2_index,
            Signal::Pump2SpeedPct => &self.pump2_speed,
            Signal::Pump2PowerKw => &self.pump2_power,
            Signal::Flow2M3h => &self.flow2,
        }
        .as_deref()
    }

    /// The binding of a command point, if any.
    #[must_use]
    pub fn command(&self, c: CommandPoint) -> Option<&str> {
        match c {
            CommandPoint::Valve1Cmd => &self.valve1_cmd,
            CommandPoint::Valve1Open => &self.valve1_open,
            CommandPoint::Valve1Close => &self.valve1_close,
            CommandPoint::Pump2SpeedCmd => &self.pump2_speed_cmd,
        }
        .as_deref()
    }

    /// Every key of `[points]` with its binding (`None`: not bound), signals first; the
    /// second value says whether the controller writes it.
    pub fn bindings(&self) -> impl Iterator<Item = (&'static str, Option<&str>, bool)> + '_ {
        let read = Signal::ALL
            .into_iter()
            .map(|s| (s.name(), self.signal(s), false));
        let written = CommandPoint::ALL
            .into_iter()
            .map(|c| (c.name(), self.command(c), true));
        read.chain(written)
    }
}

/// Position of an apartment in its building (for weighting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    /// Top floor, not an end unit.
    Top,
    /// Ground floor, not an end unit.
    Ground,
    /// End unit on an intermediate floor.
    End,
    /// Middle unit on an intermediate floor.
    Middle,
    /// Top-floor end unit.
    TopEnd,
    /// Ground-floor end unit.
    GroundEnd,
}

impl Position {
    /// Name as in the configuration ("top", "top_end", ...).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Position::Top => "top",
            Position::Ground => "ground",
            Position::End => "end",
            Position::Middle => "middle",
            Position::TopEnd => "top_end",
            Position::GroundEnd => "ground_end",
        }
    }
}

/// One household room-temperature node.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoomNode {
    /// Unique id, e.g. "b03-1502" (building 3, floor 15, flat 2).
    pub id: String,
    /// Building it is in.
    #[serde(default)]
    pub building: String,
    /// Position of the flat, for weighting.
    #[serde(default = "d_position")]
    pub position: Position,
    /// Link (usually an RTU gateway) the node is on.
    pub link: String,
    /// Its Modbus unit id on that bus (required on a Modbus link; 0 or absent on an mqtt link).
    #[serde(default)]
    pub unit_id: u8,
    /// Topic the node's readings arrive on (required on an mqtt link; no wildcards).
    pub topic: Option<String>,
    /// Field of the JSON message holding the temperature, °C ("a.b" reaches into nested
    /// objects; mqtt links).
    pub json_field: Option<String>,
    /// Field holding the measurement time (RFC 3339 or unix seconds; mqtt links); absent: the
    /// arrival time.
    pub time_field: Option<String>,
    /// The flat is vacant: the node is read but does not count for demand.
    #[serde(default)]
    pub vacant: bool,
    /// Excluded by a technician (known faulty, odd location).
    #[serde(default)]
    pub excluded: bool,
    /// Link of this home's valve actuator, if it has one.
    pub valve_link: Option<String>,
    /// Unit id of this home's valve actuator.
    pub valve_unit_id: Option<u8>,
}
fn d_position() -> Position {
    Position::Middle
}

impl RoomNode {
    /// The node `id` at `unit_id` on `link`, with the defaults of a configured node: no building,
    /// middle position, counting (not vacant, not excluded), no household valve.
    #[must_use]
    pub fn new(id: impl Into<String>, link: impl Into<String>, unit_id: u8) -> Self {
        Self {
            id: id.into(),
            building: String::new(),
            position: d_position(),
            link: link.into(),
            unit_id,
            topic: None,
            json_field: None,
            time_field: None,
            vacant: false,
            excluded: false,
            valve_link: None,
            valve_unit_id: None,
        }
    }
}

/// Household room-temperature nodes.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rooms {
    /// Register map of the nodes, relative to this file.
    pub map: String,
    /// Point of that map holding the room temperature.
    pub temperature_point: String,
    /// The nodes.
    pub nodes: Vec<RoomNode>,
}
impl Default for Rooms {
    fn default() -> Self {
        Self {
            map: "devices/room-node.toml".into(),
            temperature_point: "temperature".into(),
            nodes: Vec::new(),
        }
    }
}

impl Rules for Link {
    const ALLOWED: &'static [(&'static str, &'static str)] = &[
        ("name", "unique"),
        ("host", "required for tcp and rtu_over_tcp"),
        ("port", "1 to 65535, required for tcp and rtu_over_tcp"),
        ("serial_port", "required for rtu"),
        (
            "baud",
            "1200, 2400, 4800, 9600, 19200, 38400, 57600 or 115200",
        ),
        ("stop_bits", "1 or 2"),
        ("timeout_ms", "10 to 60000"),
        ("reconnect_min_ms", "above 0, at most reconnect_max_ms"),
        (
            "broker",
            "\"mqtt://host:port\" or \"mqtts://host:port\"; mqtt only, default: the first of platform.brokers",
        ),
        ("password_file", "a file path, with username"),
        ("ca_file", "a PEM file path; mqtts:// only"),
        ("client_id", "not empty; default \"<station id>-in\""),
    ];
}

impl Rules for Device {
    const ALLOWED: &'static [(&'static str, &'static str)] = &[
        ("name", "unique"),
        ("link", "a link in [[links]]"),
        (
            "unit_id",
            "1 to 247 (0 or 255 only on TCP); one device per address on a bus",
        ),
        ("map", "a readable device map"),
    ];
}

impl Rules for Points {
    fn allowed(key: &str) -> Option<String> {
        let text = match Signal::from_name(key) {
            Some(Signal::T2Supply) => "\"device.point\"; required with devices",
            Some(_) => "\"device.point\"",
            None => match CommandPoint::ALL.into_iter().find(|c| c.name() == key)? {
                CommandPoint::Valve1Cmd => {
                    "a writable \"device.point\"; required with devices and a position output"
                }
                CommandPoint::Valve1Open => {
                    "a writable \"device.point\"; required with a three-point output"
                }
                CommandPoint::Valve1Close => {
                    "a writable \"device.point\", not valve1_open; required with a three-point output"
                }
                CommandPoint::Pump2SpeedCmd => {
                    "a writable \"device.point\"; optional (bound: [pump2] controls the pump)"
                }
            },
        };
        Some(text.to_owned())
    }
}

impl Rules for RoomNode {
    const ALLOWED: &'static [(&'static str, &'static str)] = &[
        ("id", "unique"),
        ("link", "a link in [[links]]"),
        (
            "unit_id",
            "1 to 247, required on a Modbus link; one device per address on a bus",
        ),
        ("topic", "required on an mqtt link, no wildcards"),
        ("json_field", "required on an mqtt link"),
        ("valve_link", "a link in [[links]], with valve_unit_id"),
        ("valve_unit_id", "1 to 247, with valve_link"),
    ];
}

impl Rules for Rooms {
    const ALLOWED: &'static [(&'static str, &'static str)] =
        &[("temperature_point", "a point of the map")];
}

/// Check links, devices, points and room nodes, and every reference between them.
pub(crate) fn check(c: &Config, k: &mut Checker) {
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
            LinkKind::Mqtt => check_mqtt_link(i, l, !c.platform.brokers.is_empty(), k),
        }
        if l.kind.is_modbus() {
            for (key, set) in [
                ("broker", l.broker.is_some()),
                ("username", l.username.is_some()),
                ("password_file", l.password_file.is_some()),
                ("ca_file", l.ca_file.is_some()),
                ("client_id", l.client_id.is_some()),
                ("values", !l.values.is_empty()),
            ] {
                if set {
                    k.fail(p(key), "only for an mqtt link");
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
    let mut device_units: HashMap<(&str, u8), (&str, &String)> = HashMap::new();
    for (i, d) in c.devices.iter().enumerate() {
        if !device_names.insert(d.name.as_str()) {
            k.fail(
                format!("devices[{i}].name"),
                format!("device {:?} is defined twice", d.name),
            );
        }
        if link_names
            .get(d.name.as_str())
            .is_some_and(|l| l.kind == LinkKind::Mqtt)
        {
            k.fail(
                format!("devices[{i}].name"),
                format!(
                    "{:?} is the name of an mqtt link (its values are bound as \"{}.<value>\")",
                    d.name, d.name
                ),
            );
        }
        match link_names.get(d.link.as_str()) {
            None => k.fail(
                format!("devices[{i}].link"),
                format!("link {:?} is not defined", d.link),
            ),
            Some(l) if l.kind == LinkKind::Mqtt => k.fail(
                format!("devices[{i}].link"),
                format!(
                    "link {:?} is an mqtt link: it carries no Modbus devices (give its values in \"values\" of the link)",
                    d.link
                ),
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
        // Devices may share a unit with another map of the same physical device (a PLC's
        // substation-io and substation-pump maps); the same map twice is a mistake.
        match device_units.get(&(d.link.as_str(), d.unit_id)) {
            Some((prev, map)) if **map == d.map => k.fail(
                format!("devices[{i}].unit_id"),
                format!(
                    "device {:?} uses unit id {} on link {:?} with map {:?}, as device {prev:?} does",
                    d.name, d.unit_id, d.link, d.map
                ),
            ),
            Some(_) => {}
            None => {
                device_units.insert((d.link.as_str(), d.unit_id), (d.name.as_str(), &d.map));
                claim(
                    k,
                    &d.link,
                    d.unit_id,
                    format!("device {:?}", d.name),
                    format!("devices[{i}].unit_id"),
                );
            }
        }
    }
    for (name, binding, written) in c.points.bindings() {
        let Some(b) = binding else { continue };
        match b.split_once('.') {
            Some((dev, pt)) if !dev.is_empty() && !pt.is_empty() => {
                if let Some(l) = link_names
                    .get(dev)
                    .filter(|l| l.kind == LinkKind::Mqtt && !device_names.contains(dev))
                {
                    if written {
                        k.fail(
                            format!("points.{name}"),
                            format!("link {dev:?} is an mqtt link: its values cannot be written"),
                        );
                    } else if !l.values.iter().any(|v| v.name == pt) {
                        k.fail(
                            format!("points.{name}"),
                            format!("mqtt link {dev:?} has no value {pt:?} in its \"values\""),
                        );
                    }
                } else if !device_names.contains(dev) {
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
    let mut mqtt_nodes = 0usize;
    for (i, n) in c.rooms.nodes.iter().enumerate() {
        let p = |f: &str| format!("rooms.nodes[{i}].{f}");
        if !ids.insert(n.id.as_str()) {
            k.fail(p("id"), format!("node id {:?} is used twice", n.id));
        }
        let kind = link_names.get(n.link.as_str()).map(|l| l.kind);
        match kind {
            None => k.fail(p("link"), format!("link {:?} is not defined", n.link)),
            Some(LinkKind::Mqtt) => {
                mqtt_nodes += 1;
                if n.unit_id != 0 {
                    k.fail(
                        p("unit_id"),
                        format!(
                            "not used on mqtt link {:?}: give topic and json_field",
                            n.link
                        ),
                    );
                }
                check_topic(k, p("topic"), n.topic.as_deref());
                if n.json_field.as_deref().is_none_or(str::is_empty) {
                    k.fail(
                        p("json_field"),
                        "a node on an mqtt link needs the JSON field of its temperature, e.g. \"temp_c\"",
                    );
                }
                if n.time_field.as_deref().is_some_and(str::is_empty) {
                    k.fail(
                        p("time_field"),
                        "must not be empty (leave it out: arrival time)",
                    );
                }
            }
            Some(_) => {
                for (key, set) in [
                    ("topic", n.topic.is_some()),
                    ("json_field", n.json_field.is_some()),
                    ("time_field", n.time_field.is_some()),
                ] {
                    if set {
                        k.fail(
                            p(key),
                            format!("only on an mqtt link; {:?} is Modbus", n.link),
                        );
                    }
                }
                if !(1..=247).contains(&n.unit_id) {
                    k.fail(
                        p("unit_id"),
                        "must be 1..247 on an RS-485 bus (required on a Modbus link)",
                    );
                }
                claim(
                    k,
                    &n.link,
                    n.unit_id,
                    format!("room node {:?}", n.id),
                    p("unit_id"),
                );
            }
        }
        match (&n.valve_link, n.valve_unit_id) {
            (Some(l), Some(u)) => {
                match link_names.get(l.as_str()) {
                    None => k.fail(p("valve_link"), format!("link {l:?} is not defined")),
                    Some(vl) if !vl.kind.is_modbus() => k.fail(
                        p("valve_link"),
                        format!("link {l:?} is an mqtt link; valve actuators are on Modbus"),
                    ),
                    Some(_) => {}
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
    let room_max_age_s = c.signals.room_limits().max_age_s;
    if mqtt_nodes > 0 && room_max_age_s < MQTT_ROOM_MIN_MAX_AGE_S {
        k.fail(
            "signals.room.max_age_s",
            format!(
                "{room_max_age_s} s is shorter than wireless room collectors report \
                 ({mqtt_nodes} nodes on mqtt links; they report every 10-60 min): set at least \
                 {MQTT_ROOM_MIN_MAX_AGE_S} s, better about twice their report period"
            ),
        );
    }
}

/// The shortest `signals.room.max_age_s` accepted when room nodes arrive over MQTT: wireless
/// collectors report every 10 to 60 minutes, so a shorter max age would reject every such
/// node as stale between two reports.
pub const MQTT_ROOM_MIN_MAX_AGE_S: f64 = 900.0;

/// Check an MQTT topic to subscribe to: present, no wildcards, no empty level at the ends.
fn check_topic(k: &mut Checker, at: String, topic: Option<&str>) {
    match topic {
        None | Some("") => k.fail(at, "required: the topic the readings are published on"),
        Some(t) if t.contains(['+', '#']) => {
            k.fail(
                at,
                format!("{t:?}: give one topic, without the wildcards + and #"),
            );
        }
        Some(t) if t.contains('\0') || t.len() > 1024 => {
            k.fail(
                at,
                "not a usable MQTT topic (NUL or longer than 1024 bytes)",
            );
        }
        Some(_) => {}
    }
}

/// Split an MQTT broker URL into (TLS, host, port).
///
/// # Errors
/// What is wrong with it, for a problem message.
pub fn parse_broker_url(url: &str) -> Result<(bool, String, u16), String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("mqtt://") {
        (false, r)
    } else if let Some(r) = url.strip_prefix("mqtts://") {
        (true, r)
    } else {
        return Err(format!(
            "{url:?}: use \"mqtt://host:port\" or \"mqtts://host:port\""
        ));
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '@', '?', '#']) {
        return Err(format!(
            "{url:?}: only host and port (user and password go in username and password_file)"
        ));
    }
    let default_port = if tls { 8883 } else { 1883 };
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{url:?}: unclosed '[' of an IPv6 address"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(format!("{url:?}: unexpected text after the address")),
        };
        (h.to_owned(), port)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (rest.to_owned(), None),
        }
    };
    if host.is_empty() {
        return Err(format!("{url:?}: no host"));
    }
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err(format!("{url:?}: port {p:?} is not 1..65535")),
        },
    };
    Ok((tls, host, port))
}

fn check_mqtt_link(i: usize, l: &Link, platform_broker: bool, k: &mut Checker) {
    let p = |f: &str| format!("links[{i}].{f}");
    match l.broker.as_deref() {
        None if platform_broker => {
            for (key, set) in [
                ("username", l.username.is_some()),
                ("password_file", l.password_file.is_some()),
                ("ca_file", l.ca_file.is_some()),
            ] {
                if set {
                    k.fail(
                        p(key),
                        "taken from [platform] with its broker: give broker here too, or leave it out",
                    );
                }
            }
        }
        None => k.fail(
            p("broker"),
            "an mqtt link needs a broker, e.g. \"mqtt://10.0.0.5:1883\" (or [platform] brokers to share)",
        ),
        Some(url) => match parse_broker_url(url) {
            Err(e) => k.fail(p("broker"), e),
            Ok((tls, _, _)) => {
                if l.ca_file.is_some() && !tls {
                    k.fail(p("ca_file"), "a CA file needs an mqtts:// broker");
                }
            }
        },
    }
    for (key, set) in [
        ("host", l.host.is_some()),
        ("port", l.port.is_some()),
        ("serial_port", l.serial_port.is_some()),
    ] {
        if set {
            k.fail(p(key), "not used on an mqtt link (give broker)");
        }
    }
    if l.password_file.is_some() && l.username.as_deref().is_none_or(str::is_empty) {
        k.fail(p("password_file"), "a password needs a username");
    }
    if l.client_id.as_deref().is_some_and(str::is_empty) {
        k.fail(
            p("client_id"),
            "must not be empty (leave it out for \"<station id>-in\")",
        );
    }
    let mut names = HashSet::new();
    for (j, v) in l.values.iter().enumerate() {
        let q = |f: &str| format!("links[{i}].values[{j}].{f}");
        if v.name.is_empty() || v.name.contains('.') {
            k.fail(q("name"), "a name without '.', e.g. \"t_out_forecast\"");
        } else if !names.insert(v.name.as_str()) {
            k.fail(q("name"), format!("value {:?} is defined twice", v.name));
        }
        check_topic(k, q("topic"), Some(&v.topic));
        if v.json_field.is_empty() {
            k.fail(
                q("json_field"),
                "the JSON field of the number, e.g. \"t_out_6h_c\"",
            );
        }
        if v.time_field.as_deref().is_some_and(str::is_empty) {
            k.fail(
                q("time_field"),
                "must not be empty (leave it out: arrival time)",
            );
        }
    }
}

/// Check that every "device.point" and every map-dependent name resolves.
pub(crate) fn check_references(c: &Config, maps: &BTreeMap<String, DeviceMap>) -> Vec<Problem> {
    let mut k = Checker::default();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;

    const BASE: &str = "[site]\nname = \"t\"\n[curve]\npoints = [{ outdoor_c = -20.0, supply_c = 70.0 }, { outdoor_c = 15.0, supply_c = 30.0 }]\n\
        [[links]]\nname = \"gw\"\nkind = \"rtu_over_tcp\"\nhost = \"127.0.0.1\"\nport = 1\n";

    fn problems(extra: &str) -> Vec<Problem> {
        match parse_str(&format!("{BASE}{extra}"), None) {
            Ok(_) => Vec::new(),
            Err(p) => p.0,
        }
    }

    fn has(ps: &[Problem], path: &str, words: &str) -> bool {
        ps.iter()
            .any(|p| p.path == path && p.message.contains(words) && p.line.is_some())
    }

    const IOT: &str =
        "[[links]]\nname = \"iot\"\nkind = \"mqtt\"\nbroker = \"mqtt://10.0.0.5:1883\"\n";

    #[test]
    fn mixed_modbus_and_mqtt_room_nodes_are_accepted() {
        let text = format!(
            "{IOT}values = [{{ name = \"forecast\", topic = \"p/forecast\", json_field = \"t_out_6h_c\" }}]\n\
             [points]\nt_out_forecast = \"iot.forecast\"\n\
             [rooms]\nnodes = [\n\
             {{ id = \"a\", link = \"gw\", unit_id = 1 }},\n\
             {{ id = \"b\", link = \"iot\", topic = \"iot/b/up\", json_field = \"temp_c\", time_field = \"ts\" }},\n\
             {{ id = \"c\", link = \"iot\", topic = \"iot/c/up\", json_field = \"data.temp_c\" }},\n]\n"
        );
        let ps = problems(&text);
        assert!(ps.is_empty(), "{ps:?}");
    }

    #[test]
    fn topic_on_mqtt_links_and_unit_id_on_modbus_ones() {
        let text = format!(
            "{IOT}[rooms]\nnodes = [\n\
             {{ id = \"a\", link = \"gw\" }},\n\
             {{ id = \"b\", link = \"iot\", json_field = \"temp_c\" }},\n\
             {{ id = \"c\", link = \"iot\", unit_id = 3, topic = \"x/+/up\" }},\n\
             {{ id = \"d\", link = \"gw\", unit_id = 4, topic = \"x\" }},\n]\n"
        );
        let ps = problems(&text);
        assert!(
            has(&ps, "rooms.nodes[0].unit_id", "required on a Modbus link"),
            "{ps:?}"
        );
        assert!(has(&ps, "rooms.nodes[1].topic", "required"), "{ps:?}");
        assert!(
            has(&ps, "rooms.nodes[2].unit_id", "not used on mqtt link"),
            "{ps:?}"
        );
        assert!(has(&ps, "rooms.nodes[2].topic", "wildcards"), "{ps:?}");
        assert!(
            has(&ps, "rooms.nodes[2].json_field", "JSON field"),
            "{ps:?}"
        );
        assert!(
            has(&ps, "rooms.nodes[3].topic", "only on an mqtt link"),
            "{ps:?}"
        );
        assert_eq!(ps.len(), 6, "{ps:?}");
    }

    #[test]
    fn mqtt_link_settings_are_checked() {
        let ps = problems(
            "[[links]]\nname = \"iot\"\nkind = \"mqtt\"\nhost = \"h\"\npassword_file = \"/p\"\n\
             ca_file = \"/ca.pem\"\n",
        );
        assert!(has(&ps, "links[1].broker", "needs a broker"), "{ps:?}");
        assert!(
            has(&ps, "links[1].host", "not used on an mqtt link"),
            "{ps:?}"
        );
        assert!(
            has(&ps, "links[1].password_file", "needs a username"),
            "{ps:?}"
        );
        let ps = problems(
            "[[links]]\nname = \"iot\"\nkind = \"mqtt\"\nbroker = \"http://h:1\"\n\
             [[links]]\nname = \"iot2\"\nkind = \"mqtt\"\nbroker = \"mqtt://h:1883\"\nca_file = \"/ca.pem\"\n",
        );
        assert!(has(&ps, "links[1].broker", "mqtt://host:port"), "{ps:?}");
        assert!(has(&ps, "links[2].ca_file", "mqtts://"), "{ps:?}");
        let ps = problems("broker = \"mqtt://h\"\n");
        assert!(
            has(&ps, "links[0].broker", "only for an mqtt link"),
            "{ps:?}"
        );
    }

    #[test]
    fn bindings_to_mqtt_values_must_exist_and_are_read_only() {
        let text = format!(
            "{IOT}values = [{{ name = \"forecast\", topic = \"p/f\", json_field = \"t\" }},\
             {{ name = \"forecast\", topic = \"p/#\", json_field = \"\" }}]\n\
             [[devices]]\nname = \"iot\"\nlink = \"iot\"\nunit_id = 1\nmap = \"m.toml\"\n\
             [points]\nt2_supply = \"iot.nothing\"\nvalve1_cmd = \"iot.forecast\"\n"
        );
        let ps = problems(&text);
        assert!(
            has(&ps, "links[1].values[1].name", "defined twice"),
            "{ps:?}"
        );
        assert!(has(&ps, "links[1].values[1].topic", "wildcards"), "{ps:?}");
        assert!(
            has(&ps, "links[1].values[1].json_field", "JSON field"),
            "{ps:?}"
        );
        assert!(
            has(&ps, "devices[0].name", "name of an mqtt link"),
            "{ps:?}"
        );
        assert!(
            has(&ps, "devices[0].link", "carries no Modbus devices"),
            "{ps:?}"
        );
        let text = format!(
            "{IOT}values = [{{ name = \"forecast\", topic = \"p/f\", json_field = \"t\" }}]\n\
             [points]\nt_out_forecast = \"iot.forecst\"\n"
        );
        let ps = problems(&text);
        assert!(
            has(&ps, "points.t_out_forecast", "no value \"forecst\""),
            "{ps:?}"
        );
    }

    #[test]
    fn room_max_age_must_cover_wireless_report_periods() {
        let nodes = "[rooms]\nnodes = [{ id = \"b\", link = \"iot\", topic = \"t\", json_field = \"temp_c\" }]\n";
        let short = format!("{IOT}{nodes}[signals.room]\nmax_age_s = 300\n");
        let ps = problems(&short);
        assert!(
            has(&ps, "signals.room.max_age_s", "at least 900 s"),
            "{ps:?}"
        );
        // The default (30 min) is fine, and a short max age without mqtt nodes too.
        assert!(problems(&format!("{IOT}{nodes}")).is_empty());
        let modbus_only = "[rooms]\nnodes = [{ id = \"a\", link = \"gw\", unit_id = 1 }]\n[signals.room]\nmax_age_s = 300\n";
        assert!(problems(modbus_only).is_empty());
    }

    #[test]
    fn an_mqtt_link_may_share_the_platform_broker() {
        let link = "[[links]]\nname = \"iot\"\nkind = \"mqtt\"\n";
        let platform =
            "[platform]\nbrokers = [\"mqtts://broker.utility:8883\"]\nusername = \"s7\"\n";
        assert!(problems(&format!("{link}{platform}")).is_empty());
        let ps = problems(link);
        assert!(has(&ps, "links[1].broker", "[platform] brokers"), "{ps:?}");
        let ps = problems(&format!("{link}username = \"u\"\n{platform}"));
        assert!(
            has(&ps, "links[1].username", "taken from [platform]"),
            "{ps:?}"
        );
    }

    #[test]
    fn broker_urls() {
        assert_eq!(
            parse_broker_url("mqtt://10.0.0.5"),
            Ok((false, "10.0.0.5".into(), 1883))
        );
        assert_eq!(
            parse_broker_url("mqtts://broker.example:8884/"),
            Ok((true, "broker.example".into(), 8884))
        );
        assert_eq!(
            parse_broker_url("mqtt://[::1]:1884"),
            Ok((false, "::1".into(), 1884))
        );
        for bad in [
            "tcp://h:1",
            "mqtt://",
            "mqtt://h:0",
            "mqtt://h:99999",
            "mqtt://u:p@h:1",
            "mqtt://h:1/x",
        ] {
            assert!(parse_broker_url(bad).is_err(), "{bad}");
        }
    }
}
