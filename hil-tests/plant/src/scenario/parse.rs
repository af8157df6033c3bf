//! Reading a scenario document: every section deserialized on its own, so that one bad field
//! does not hide the problems of the others, each problem with its TOML path and position.

use std::path::PathBuf;

use heatctl_core::config::{Problem, line_col};
use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::faults::FaultSpec;
use super::{
    BuildingsSection, HouseholdValvesSection, HydraulicsSection, ModbusSection, RoomNodesSection,
    SeasonSection, StartSection, SubstationSection, TimeSection, WeatherSection,
};

/// Collects every problem of one scenario document.
pub(super) struct Collector<'t> {
    text: &'t str,
    file: PathBuf,
    /// The problems found so far, in the order found.
    pub(super) problems: Vec<Problem>,
}

impl<'t> Collector<'t> {
    /// A collector for the scenario `text`, problems named after `source_name`.
    pub(super) fn new(text: &'t str, source_name: &str) -> Self {
        Self {
            text,
            file: PathBuf::from(source_name),
            problems: Vec::new(),
        }
    }

    /// Record a problem at TOML `path`, located at `span` when known.
    pub(super) fn push(
        &mut self,
        path: &str,
        span: Option<std::ops::Range<usize>>,
        message: impl Into<String>,
    ) {
        let (line, column) = span.map(|s| line_col(self.text, s.start)).unzip();
        self.problems.push(Problem {
            file: Some(self.file.clone()),
            path: path.to_owned(),
            line,
            column,
            message: message.into(),
        });
    }

    /// Section `key` of `root` (its default when absent or invalid).
    pub(super) fn section<T: DeserializeOwned + Default>(
        &mut self,
        root: &DeTable<'_>,
        key: &str,
    ) -> T {
        match root.get(key) {
            None => T::default(),
            Some(v) => self.value(v.clone(), key).unwrap_or_default(),
        }
    }

    /// Deserialize one value at `path`; a problem (and None) when it does not fit `T`.
    pub(super) fn value<T: DeserializeOwned>(
        &mut self,
        v: toml::Spanned<DeValue<'_>>,
        path: &str,
    ) -> Option<T> {
        let span = v.span();
        // Keys of a table value with their spans, to name the field an error points into.
        let keys: Vec<(String, std::ops::Range<usize>)> = v
            .get_ref()
            .as_table()
            .map(|t| {
                t.iter()
                    .map(|(k, val)| (k.get_ref().to_string(), k.span().start..val.span().end))
                    .collect()
            })
            .unwrap_or_default();
        match T::deserialize(ValueDeserializer::from(v)) {
            Ok(t) => Some(t),
            Err(e) => {
                let at = e.span();
                let field = at
                    .as_ref()
                    .and_then(|a| keys.iter().find(|(_, r)| r.contains(&a.start)));
                let full = match field {
                    Some((k, _)) => format!("{path}.{k}"),
                    None => path.to_owned(),
                };
                self.push(&full, at.or(Some(span)), e.message().trim().to_owned());
                None
            }
        }
    }

    /// A problem at `path` unless `ok`.
    pub(super) fn check(&mut self, ok: bool, path: &str, message: impl Into<String>) {
        if !ok {
            self.push(path, None, message);
        }
    }

    /// A problem at `path` unless `v` is finite and within `lo..=hi`.
    pub(super) fn range(&mut self, v: f64, lo: f64, hi: f64, path: &str) {
        if !(v.is_finite() && v >= lo && v <= hi) {
            self.push(path, None, format!("{v} is outside {lo}..={hi}"));
        }
    }
}

/// The top-level keys of a scenario.
const TOP_KEYS: &[&str] = &[
    "name",
    "seed",
    "buildings",
    "weather",
    "season",
    "start",
    "time",
    "substation",
    "household_valves",
    "hydraulics",
    "room_nodes",
    "modbus",
    "faults",
];

/// A scenario document as written: each section (its default when absent), and the
/// `[[faults]]` entries that deserialized, with their index.
pub(super) struct Sections {
    pub(super) name: String,
    pub(super) seed: u64,
    pub(super) buildings: BuildingsSection,
    pub(super) weather: WeatherSection,
    pub(super) season: SeasonSection,
    pub(super) start: StartSection,
    pub(super) time: TimeSection,
    pub(super) substation: SubstationSection,
    pub(super) household_valves: HouseholdValvesSection,
    pub(super) hydraulics: HydraulicsSection,
    pub(super) room_nodes: RoomNodesSection,
    pub(super) modbus: ModbusSection,
    pub(super) faults: Vec<(usize, FaultSpec)>,
}

/// Read the document of `c`: None when it is not TOML at all (the syntax error reported), else
/// its sections, every unknown key and wrong type reported.
pub(super) fn sections(c: &mut Collector<'_>) -> Option<Sections> {
    let root = match DeTable::parse(c.text) {
        Ok(r) => r.into_inner(),
        Err(e) => {
            c.push("<document>", e.span(), e.message().trim().to_owned());
            return None;
        }
    };
    for (k, v) in root.iter() {
        if !TOP_KEYS.contains(&k.get_ref().as_ref()) {
            c.push(
                k.get_ref(),
                Some(v.span()),
                format!("unknown field `{}`", k.get_ref()),
            );
        }
    }
    let name: String = match root.get("name") {
        Some(v) => c.value(v.clone(), "name").unwrap_or_default(),
        None => String::new(),
    };
    let seed: u64 = match root.get("seed") {
        Some(v) => c.value(v.clone(), "seed").unwrap_or(0),
        None => 1,
    };
    let buildings = c.section(&root, "buildings");
    let weather = c.section(&root, "weather");
    let season = c.section(&root, "season");
    let start = c.section(&root, "start");
    let time = c.section(&root, "time");
    let substation = c.section(&root, "substation");
    let household_valves = c.section(&root, "household_valves");
    let hydraulics = c.section(&root, "hydraulics");
    let room_nodes = c.section(&root, "room_nodes");
    let modbus = c.section(&root, "modbus");
    let mut faults = Vec::new();
    if let Some(v) = root.get("faults") {
        match v.get_ref().as_array() {
            Some(arr) => {
                for (i, item) in arr.iter().enumerate() {
                    if let Some(f) = c.value::<FaultSpec>(item.clone(), &format!("faults[{i}]")) {
                        faults.push((i, f));
                    }
                }
            }
            None => c.push(
                "faults",
                Some(v.span()),
                "must be an array of tables ([[faults]])",
            ),
        }
    }
    Some(Sections {
        name,
        seed,
        buildings,
        weather,
        season,
        start,
        time,
        substation,
        household_valves,
        hydraulics,
        room_nodes,
        modbus,
        faults,
    })
}
