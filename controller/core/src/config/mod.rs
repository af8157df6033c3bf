//! The configuration of a substation: schema, loading, and validation.
//!
//! [`parse_str`] checks one TOML text (structure and values); [`load`] also reads the device
//! register maps the file refers to and checks every reference. Both report every problem at once,
//! each with its TOML path and, where it can be found, its line and column.

mod check;
mod curve;
mod demand;
mod device_map;
mod field;
mod history;
mod household_valves;
mod limits;
mod outdoor;
mod platform;
mod problems;
mod pump;
pub mod reference;
mod safety;
mod scada;
mod schedule;
mod schema;
mod signals;
mod site;
mod summer;
mod valve1;
mod valve_demand;
mod web;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use crate::signal::CheckedQuantity;
pub use curve::{Curve, CurvePoint, DesignCurve};
pub use demand::{Demand, DemandMeasure, PositionWeights};
pub use device_map::{DataType, DecodeError, DeviceInfo, DeviceMap, PointMap, Table, WordOrder};
pub use field::{
    CommandPoint, Device, Link, LinkKind, MQTT_ROOM_MIN_MAX_AGE_S, MqttValue, Parity, Points,
    Position, RoomNode, Rooms, parse_broker_url,
};
pub use history::{History, Riser};
pub use household_valves::{HouseholdValves, LostReading};
pub use limits::{
    LimiterGains, Limits, PowerLimit, RateLimit, Return1Limit, ReturnDifferenceLimit,
    ReturnLimitPoint,
};
pub use outdoor::{Outdoor, OutdoorInput};
pub use platform::{BrokerUrl, Platform, station_id_from_name};
pub use problems::{Problem, Problems, error_position, line_col, position_of};
pub use pump::{Pump2, PumpMode};
pub use safety::Safety;
pub use scada::{SCADA_WRITABLE, Scada};
pub use schedule::{Day, Schedule, SetbackPeriod, TimeOfDay};
pub use schema::Config;
pub use signals::{SignalCheck, SignalLimits, Signals};
pub use site::Site;
pub use summer::Summer;
pub use valve_demand::ValveDemand;
pub use valve1::{Valve1, ValveOutput};
pub use web::Web;

/// A configuration read from a file, with the device maps it refers to.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The configuration.
    pub config: Config,
    /// The file it came from.
    pub path: PathBuf,
    /// Device maps by the path written in the configuration (`devices[].map`, `rooms.map`,
    /// `household_valves.map`).
    pub maps: BTreeMap<String, DeviceMap>,
}

impl LoadedConfig {
    /// The map of a device by its name.
    #[must_use]
    pub fn device_map(&self, device: &str) -> Option<&DeviceMap> {
        let dev = self.config.devices.iter().find(|d| d.name == device)?;
        self.maps.get(&dev.map)
    }
}

/// Parse and validate a configuration text. `file` names it in the problems.
///
/// # Errors
/// Every problem found: syntax, unknown keys, wrong types, out-of-range values, contradictions.
pub fn parse_str(text: &str, file: Option<&Path>) -> Result<Config, Problems> {
    let mut partial = problems::deserialize_partial::<Config>(text, file);
    if let Some(config) = &partial.parsed {
        partial.add_checks(schema::validate(config));
    }
    match partial.parsed {
        Some(config) if partial.found.is_empty() => Ok(config),
        _ => Err(problems::locate(partial.found, text, file)),
    }
}

/// Read a configuration file and the device maps it refers to, and validate everything,
/// references between them included.
///
/// # Errors
/// Every problem found, in the configuration and in the maps.
pub fn load(path: &Path) -> Result<LoadedConfig, Problems> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Problems(vec![Problem::file_level(
            path,
            format!("cannot read the file: {e}"),
        )])
    })?;
    load_text_at(&text, path)
}

/// Validate a configuration text as if it were the file at `path` (device maps read from disk
/// relative to it): a configuration pushed from outside, checked before it is written.
///
/// # Errors
/// Every problem found, in the configuration and in the maps.
pub fn load_text_at(text: &str, path: &Path) -> Result<LoadedConfig, Problems> {
    load_text(text, path, &|map_path, _| {
        std::fs::read_to_string(map_path).map_err(|e| e.to_string())
    })
}

/// Validate a configuration text as [`load`] validates a file, with the device maps taken from
/// `maps` (`(path as written in the configuration, map text)`, e.g.
/// `("devices/room-node.toml", include_str!(..))`) instead of the disk: a configuration built
/// into the binary (`heatctl demo`). `path` names the text in the problems and in the result.
///
/// # Errors
/// Every problem found, in the configuration and in the maps; a map the configuration refers
/// to that is not in `maps` is a problem at the reference.
pub fn parse_with_maps(
    text: &str,
    path: &Path,
    maps: &[(&str, &str)],
) -> Result<LoadedConfig, Problems> {
    load_text(text, path, &|_, rel| {
        maps.iter()
            .find(|(name, _)| *name == rel)
            .map(|(_, map_text)| (*map_text).to_owned())
            .ok_or_else(|| "no such map is built in".to_owned())
    })
}

/// Reads a device map: `(path next to the configuration, path as written)` to its text.
type ReadMap<'a> = dyn Fn(&Path, &str) -> Result<String, String> + 'a;

fn load_text(text: &str, path: &Path, read_map: &ReadMap<'_>) -> Result<LoadedConfig, Problems> {
    let mut partial = problems::deserialize_partial::<Config>(text, Some(path));
    let Some(config) = partial.parsed.take() else {
        return Err(problems::locate(partial.found, text, Some(path)));
    };
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    let mut all = Vec::new();
    let mut maps = BTreeMap::new();
    let mut wanted: Vec<(String, String)> = config
        .devices
        .iter()
        .enumerate()
        .map(|(i, d)| (d.map.clone(), format!("devices[{i}].map")))
        .collect();
    if !config.rooms.nodes.is_empty() {
        wanted.push((config.rooms.map.clone(), "rooms.map".into()));
    }
    if config.rooms.nodes.iter().any(|n| n.valve_link.is_some()) {
        wanted.push((
            config.household_valves.map.clone(),
            "household_valves.map".into(),
        ));
    }
    let mut map_problems = Vec::new();
    for (rel, at) in wanted {
        if maps.contains_key(&rel) {
            continue;
        }
        let map_path = base.join(&rel);
        match read_map(&map_path, &rel) {
            Ok(map_text) => {
                match problems::deserialize_all::<DeviceMap>(&map_text, Some(&map_path)) {
                    Ok(map) => {
                        let found = device_map::check_map(&map);
                        if found.is_empty() {
                            maps.insert(rel, map);
                        } else {
                            map_problems
                                .extend(problems::locate(found, &map_text, Some(&map_path)).0);
                        }
                    }
                    Err(p) => map_problems.extend(p.0),
                }
            }
            Err(e) => all.push(Problem::at(
                at,
                format!("cannot read device map {}: {e}", map_path.display()),
            )),
        }
    }
    partial.add_checks(schema::validate(&config));
    partial.add_checks(field::check_references(&config, &maps));
    partial.add_checks(all);
    let mut located = problems::locate(partial.found, text, Some(path)).0;
    located.extend(map_problems);
    if located.is_empty() {
        Ok(LoadedConfig {
            config,
            path: path.to_path_buf(),
            maps,
        })
    } else {
        Err(Problems(located))
    }
}

/// Load one device register map file on its own.
///
/// # Errors
/// Every problem in the map.
pub fn load_device_map(path: &Path) -> Result<DeviceMap, Problems> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Problems(vec![Problem::file_level(
            path,
            format!("cannot read the file: {e}"),
        )])
    })?;
    let map = problems::deserialize_all::<DeviceMap>(&text, Some(path))?;
    let found = device_map::check_map(&map);
    if found.is_empty() {
        Ok(map)
    } else {
        Err(problems::locate(found, &text, Some(path)))
    }
}

/// The configuration shipped as `config/substation.example.toml`, embedded.
pub const EXAMPLE_TOML: &str = include_str!("../../../../config/substation.example.toml");
