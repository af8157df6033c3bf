//! The configuration of a substation: schema, loading, and validation.
//!
//! [`parse_str`] checks one TOML text (structure and values); [`load`] also reads the device
//! register maps the file refers to and checks every reference. Both report every problem at once,
//! each with its TOML path and, where it can be found, its line and column.

mod device_map;
mod problems;
mod schema;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use device_map::{DataType, DecodeError, DeviceInfo, DeviceMap, PointMap, Table, WordOrder};
pub use problems::{Problem, Problems, line_col};
pub use schema::*;
pub use validate::{DAY_NAMES, parse_hhmm, signal_defaults};

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
    let (parsed, mut found) = problems::deserialize_partial::<Config>(text, file);
    if let Some(config) = &parsed {
        found.extend(validate::validate(config));
    }
    match parsed {
        Some(config) if found.is_empty() => Ok(config),
        _ => Err(problems::locate(found, text, file)),
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
    load_text(&text, path, &|map_path, _| {
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
    let (parsed, structure) = problems::deserialize_partial::<Config>(text, Some(path));
    let Some(config) = parsed else {
        return Err(problems::locate(structure, text, Some(path)));
    };
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    let mut all = structure;
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
                        let found = validate::validate_map(&map);
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
    all.extend(validate::validate(&config));
    all.extend(validate::validate_references(&config, &maps));
    let mut located = problems::locate(all, text, Some(path)).0;
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
    let found = validate::validate_map(&map);
    if found.is_empty() {
        Ok(map)
    } else {
        Err(problems::locate(found, &text, Some(path)))
    }
}

/// The configuration shipped as `config/substation.example.toml`, embedded.
pub const EXAMPLE_TOML: &str = include_str!("../../../../config/substation.example.toml");
