//! The configuration reference (`heatctl config-ref`), generated from the schema itself: keys,
//! types and meanings from the schema's structs and their doc comments (read from this crate's
//! source, so a doc comment is written once), defaults from serde (what a file that leaves a key
//! out gets), allowed values from each table's [`Rules`] (the ranges its check enforces), units
//! from the unit suffix of each key.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::check::Rules;
use super::*;
use crate::signal::CheckedQuantity;

/// The schema's source files: their doc comments are the reference manual.
const SOURCES: &[&str] = &[
    include_str!("schema.rs"),
    include_str!("site.rs"),
    include_str!("signals.rs"),
    include_str!("outdoor.rs"),
    include_str!("curve.rs"),
    include_str!("summer.rs"),
    include_str!("demand.rs"),
    include_str!("valve_demand.rs"),
    include_str!("limits.rs"),
    include_str!("schedule.rs"),
    include_str!("valve1.rs"),
    include_str!("household_valves.rs"),
    include_str!("pump.rs"),
    include_str!("safety.rs"),
    include_str!("field.rs"),
    include_str!("scada.rs"),
    include_str!("platform.rs"),
    include_str!("web.rs"),
    include_str!("history.rs"),
];

/// The least a configuration must say: every other key of the tables takes its default.
const BASE: &str = "[site]\nname = \"\"\n[curve]\n";
/// [`BASE`] with one entry in each array whose entries have keys with defaults.
const ENTRIES: &str = "[site]\nname = \"\"\n[curve]\n[[links]]\nname = \"\"\nkind = \"tcp\"\n\
                       [rooms]\nnodes = [{ id = \"\", link = \"\", unit_id = 1 }]\n";

/// One key of the reference.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRef {
    /// Full TOML path; `[]` stands for every entry of an array of tables
    /// (`links[].baud`).
    pub path: String,
    /// TOML type.
    pub toml_type: String,
    /// Unit ("" for none).
    pub unit: String,
    /// Default as TOML (`None`: required, or not set by default; see `required`).
    pub default: Option<String>,
    /// Whether the key must be given (when its table is).
    pub required: bool,
    /// What is allowed ("" for anything of its type).
    pub allowed: String,
    /// What it means.
    pub meaning: String,
}

/// One table of the reference.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRef {
    /// Full TOML path of the table (`limits.return1`, `links[]`).
    pub path: String,
    /// What it is.
    pub meaning: String,
    /// Default of the whole array, for an array of tables with entries by default.
    pub default: Option<String>,
    /// Its keys.
    pub keys: Vec<KeyRef>,
}

#[derive(Debug, Default)]
struct Field {
    name: String,
    ty: String,
    doc: String,
    required: bool,
}

#[derive(Debug)]
enum Item {
    Struct { doc: String, fields: Vec<Field> },
    Enum { variants: Vec<String> },
}

/// The structs and enums of the schema's source, by name.
fn parse_schema() -> HashMap<String, Item> {
    let mut items = HashMap::new();
    for source in SOURCES {
        let mut doc: Vec<String> = Vec::new();
        let mut serde_default = false;
        let mut open: Option<(String, Item, bool)> = None;
        for line in source.lines() {
            let t = line.trim();
            if let Some(d) = t.strip_prefix("///") {
                doc.push(d.strip_prefix(' ').unwrap_or(d).to_owned());
                continue;
            }
            if t.starts_with("#[") {
                serde_default |= t.starts_with("#[serde(") && t.contains("default");
                continue;
            }
            let text = doc.join(" ");
            match &mut open {
                None => {
                    let head = |kw: &str| {
                        line.strip_prefix(kw)
                            .and_then(|r| r.strip_suffix(" {"))
                            .map(str::to_owned)
                    };
                    if let Some(name) = head("pub struct ") {
                        let item = Item::Struct {
                            doc: text,
                            fields: Vec::new(),
                        };
                        open = Some((name, item, serde_default));
                    } else if let Some(name) = head("pub enum ") {
                        open = Some((
                            name,
                            Item::Enum {
                                variants: Vec::new(),
                            },
                            false,
                        ));
                    }
                }
                Some((_, _, _)) if line == "}" => {
                    if let Some((name, item, _)) = open.take() {
                        items.insert(name, item);
                    }
                }
                Some((_, Item::Struct { fields, .. }, all_default)) => {
                    if let Some((name, ty)) = t
                        .strip_prefix("pub ")
                        .and_then(|f| f.strip_suffix(','))
                        .and_then(|f| f.split_once(": "))
                    {
                        fields.push(Field {
                            name: name.to_owned(),
                            required: !*all_default && !serde_default && !ty.starts_with("Option<"),
                            ty: ty.to_owned(),
                            doc: text,
                        });
                    }
                }
                Some((_, Item::Enum { variants }, _)) => {
                    if let Some(v) = t.strip_suffix(',')
                        && v.chars().all(char::is_alphanumeric)
                    {
                        variants.push(snake_case(v));
                    }
                }
            }
            doc.clear();
            serde_default = false;
        }
    }
    items
}

fn snake_case(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// `Option<T>` and `Vec<T>` unwrapped: (inner type, whether it is an array).
fn inner_type(ty: &str) -> (&str, bool) {
    let ty = ty
        .strip_prefix("Option<")
        .and_then(|t| t.strip_suffix('>'))
        .unwrap_or(ty);
    match ty.strip_prefix("Vec<").and_then(|t| t.strip_suffix('>')) {
        Some(t) => (t, true),
        None => (ty, false),
    }
}

fn toml_type(items: &HashMap<String, Item>, ty: &str) -> String {
    let (inner, array) = inner_type(ty);
    let base = match inner {
        "f64" => "number".to_owned(),
        "u8" | "u16" | "u32" | "u64" => "integer".to_owned(),
        "bool" => "boolean".to_owned(),
        "String" => "string".to_owned(),
        "TimeOfDay" => "time \"HH:MM\"".to_owned(),
        other => match items.get(other) {
            Some(Item::Enum { variants }) => {
                let quoted: Vec<String> = variants.iter().map(|v| format!("\"{v}\"")).collect();
                format!("one of {}", quoted.join(", "))
            }
            _ => other.to_owned(),
        },
    };
    if array {
        format!("array of {base}")
    } else {
        base
    }
}

/// The unit a key's name gives, by its suffix.
fn unit_of(key: &str) -> &'static str {
    const SUFFIXES: &[(&str, &str)] = &[
        ("_k_per_min", "K/min"),
        ("_k_per_h", "K/h"),
        ("_k_per_k", "K/K"),
        ("_k_per_request", "K"),
        ("_pct_per_k", "%/K"),
        ("_pct_per_s", "%/s"),
        ("_pct_per_h", "%/h"),
        ("_m3h", "m³/h"),
        ("_m2", "m²"),
        ("_kw", "kW"),
        ("_pct", "%"),
        ("_ms", "ms"),
        ("_c", "°C"),
        ("_k", "K"),
        ("_s", "s"),
        ("_h", "h"),
    ];
    SUFFIXES
        .iter()
        .find(|(s, _)| key.ends_with(s))
        .map_or("", |(_, u)| u)
}

/// What a table's rules allow for one of its keys.
fn allowed(table: &str, key: &str) -> Option<String> {
    match table {
        "Site" => Site::allowed(key),
        "SignalCheck" => SignalLimits::allowed(key),
        "Outdoor" => Outdoor::allowed(key),
        "CurvePoint" => CurvePoint::allowed(key),
        "DesignCurve" => DesignCurve::allowed(key),
        "Curve" => Curve::allowed(key),
        "Summer" => Summer::allowed(key),
        "PositionWeights" => PositionWeights::allowed(key),
        "Demand" => Demand::allowed(key),
        "ValveDemand" => ValveDemand::allowed(key),
        "History" => History::allowed(key),
        "Riser" => Riser::allowed(key),
        "ReturnLimitPoint" => ReturnLimitPoint::allowed(key),
        "LimiterGains" => LimiterGains::allowed(key),
        "Return1Limit" => Return1Limit::allowed(key),
        "ReturnDifferenceLimit" => ReturnDifferenceLimit::allowed(key),
        "PowerLimit" => PowerLimit::allowed(key),
        "RateLimit" => RateLimit::allowed(key),
        "SetbackPeriod" => SetbackPeriod::allowed(key),
        "Schedule" => Schedule::allowed(key),
        "Valve1" => Valve1::allowed(key),
        "HouseholdValves" => HouseholdValves::allowed(key),
        "Pump2" => Pump2::allowed(key),
        "Safety" => Safety::allowed(key),
        "Link" => Link::allowed(key),
        "Device" => Device::allowed(key),
        "Points" => Points::allowed(key),
        "RoomNode" => RoomNode::allowed(key),
        "Rooms" => Rooms::allowed(key),
        "Scada" => Scada::allowed(key),
        "Platform" => Platform::allowed(key),
        "Web" => Web::allowed(key),
        _ => None,
    }
}

/// The value at a reference path (`[]` takes the first entry).
fn value_at<'a>(table: &'a toml::Table, path: &str) -> Option<&'a toml::Value> {
    let mut parts = path.split('.');
    let first = parts.next()?;
    let mut cur = lookup(table.get(first.trim_end_matches("[]"))?, first)?;
    for part in parts {
        cur = lookup(cur.as_table()?.get(part.trim_end_matches("[]"))?, part)?;
    }
    Some(cur)
}

fn lookup<'a>(v: &'a toml::Value, part: &str) -> Option<&'a toml::Value> {
    if part.ends_with("[]") {
        v.as_array()?.first()
    } else {
        Some(v)
    }
}

fn defaults(text: &str) -> toml::Table {
    let config: Option<Config> = toml::from_str(text).ok();
    config
        .and_then(|c| toml::Table::try_from(c).ok())
        .unwrap_or_default()
}

/// The built-in limits of `[signals]`, as a table like the one a technician writes.
fn signal_defaults() -> toml::Table {
    let mut out = toml::Table::new();
    for q in CheckedQuantity::ALL {
        if let Ok(t) = toml::Table::try_from(q.default_limits()) {
            out.insert(q.name().to_owned(), toml::Value::Table(t));
        }
    }
    out
}

/// Every table of the configuration with its keys, in schema order.
#[must_use]
pub fn tables() -> Vec<TableRef> {
    let items = parse_schema();
    let base = defaults(BASE);
    let entries = defaults(ENTRIES);
    let signals = signal_defaults();
    let mut out = Vec::new();
    walk(&items, "Config", "", "", &mut out, &|path: &str| {
        if let Some(rest) = path.strip_prefix("signals.") {
            return value_at(&signals, rest).cloned();
        }
        let from = if path.contains("[]") { &entries } else { &base };
        value_at(from, path).cloned()
    });
    out
}

fn walk(
    items: &HashMap<String, Item>,
    ty: &str,
    path: &str,
    meaning: &str,
    out: &mut Vec<TableRef>,
    default: &dyn Fn(&str) -> Option<toml::Value>,
) {
    let Some(Item::Struct { doc, fields }) = items.get(ty) else {
        return;
    };
    let quantity = path
        .strip_prefix("signals.")
        .and_then(|n| CheckedQuantity::ALL.into_iter().find(|q| q.name() == n));
    // A struct that serves several tables (a signal's checks, a limiter's gains) is told apart by
    // the doc of the field that holds it.
    let shared = items
        .values()
        .filter_map(|i| match i {
            Item::Struct { fields, .. } => Some(fields),
            Item::Enum { .. } => None,
        })
        .flatten()
        .filter(|f| inner_type(&f.ty).0 == ty)
        .count()
        > 1;
    let meaning = if shared && !meaning.is_empty() {
        format!("{meaning} {doc}")
    } else if doc.is_empty() {
        meaning.to_owned()
    } else {
        doc.clone()
    };
    let mut table = TableRef {
        path: path.to_owned(),
        meaning,
        default: None,
        keys: Vec::new(),
    };
    let mut subtables = Vec::new();
    for f in fields {
        let (inner, array) = inner_type(&f.ty);
        let full = if path.is_empty() {
            f.name.clone()
        } else {
            format!("{path}.{}", f.name)
        };
        if matches!(items.get(inner), Some(Item::Struct { fields, .. }) if !fields.is_empty()) {
            let sub = if array { format!("{full}[]") } else { full };
            subtables.push((inner, sub, f.doc.clone()));
            continue;
        }
        let toml_type = toml_type(items, &f.ty);
        let unit = match (quantity, f.name.as_str()) {
            (Some(q), "valid_min" | "valid_max" | "stuck_tolerance") => q.unit().to_owned(),
            (Some(q), "max_rate_per_s") => format!("{}/s", q.unit()),
            // Only numbers have units (a `[points]` binding is named like its signal).
            _ if toml_type == "number" || toml_type == "integer" => unit_of(&f.name).to_owned(),
            _ => String::new(),
        };
        table.keys.push(KeyRef {
            default: (!f.required)
                .then(|| default(&full))
                .flatten()
                .map(|v| v.to_string()),
            toml_type,
            unit,
            required: f.required,
            allowed: allowed(ty, &f.name).unwrap_or_default(),
            meaning: f.doc.clone(),
            path: full,
        });
    }
    if !table.path.is_empty() {
        table.default = table
            .path
            .strip_suffix("[]")
            .and_then(default)
            .filter(|v| v.as_array().is_some_and(|a| !a.is_empty()))
            .map(|v| v.to_string());
        out.push(table);
    }
    for (inner, sub, doc) in subtables {
        walk(items, inner, &sub, &doc, out, default);
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// The configuration reference as Markdown: one table per TOML table.
#[must_use]
pub fn markdown() -> String {
    let mut md = String::from(
        "# heatctl configuration reference\n\n\
         Generated by `heatctl config-ref` from the schema: every key, its type, unit, default, \
         what is allowed and what it means. `[]` stands for every entry of an array of tables. \
         A key without a default is required when its table is given; \"not set\" means the key \
         is optional and absent by default. Unknown keys are rejected.\n",
    );
    for t in tables() {
        let _ = write!(md, "\n## `[{}]`\n\n{}\n", t.path, t.meaning);
        if let Some(d) = &t.default {
            let _ = write!(md, "\nDefault: `{}`\n", cell(d));
        }
        if t.keys.is_empty() {
            continue;
        }
        md.push_str("\n| Key | Type | Unit | Default | Allowed | Meaning |\n");
        md.push_str("|---|---|---|---|---|---|\n");
        for k in &t.keys {
            let default = match (&k.default, k.required) {
                (Some(d), _) => format!("`{}`", cell(d)),
                (None, true) => "required".to_owned(),
                (None, false) => "not set".to_owned(),
            };
            let _ = writeln!(
                md,
                "| `{}` | {} | {} | {} | {} | {} |",
                k.path,
                cell(&k.toml_type),
                k.unit,
                default,
                cell(&k.allowed),
                cell(&k.meaning)
            );
        }
    }
    md
}
