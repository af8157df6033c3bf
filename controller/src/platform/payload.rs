//! The platform's topics and payloads: what heatctl publishes (built from the station
//! snapshot), what it takes, and their documentation ([`schema_markdown`]) and JSON Schema
//! ([`json_schema`]), both generated from one table ([`topics`]) so they cannot disagree.

use serde_json::{Map, Value, json};

use crate::audit::{AuditRecord, rfc3339_utc};
use crate::control::Signal;
use crate::gate::ChangeOutcome;
use crate::station::StationSnapshot;

/// The payload schema's name and version, in every payload's `schema` key. A change that
/// removes or renames a key, or changes its meaning, gets a new version.
pub const SCHEMA_ID: &str = "heatctl.platform/1";

/// Who the payloads are from.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub(crate) site_id: String,
    pub(crate) station_id: String,
}

impl Origin {
    /// The keys every payload starts with (`seq` and `backfill` are added by the queue).
    pub(crate) fn header(&self, time_utc: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("schema".into(), SCHEMA_ID.into());
        m.insert("site_id".into(), self.site_id.clone().into());
        m.insert("station_id".into(), self.station_id.clone().into());
        m.insert("time_utc".into(), time_utc.into());
        m
    }
}

fn take(v: &mut Value, key: &str) -> Value {
    v.get_mut(key).map(Value::take).unwrap_or(Value::Null)
}

/// The telemetry payload of a snapshot (the snapshot's JSON, reshaped).
pub(crate) fn telemetry(
    o: &Origin,
    snap: &StationSnapshot,
    backlog_records: u64,
    dropped_records: u64,
) -> Map<String, Value> {
    let mut m = o.header(&rfc3339_utc(snap.clock.clock_unix_s));
    let mut s = serde_json::to_value(snap).unwrap_or(Value::Null);
    m.insert("clock_synced".into(), json!(snap.clock.synced));
    m.insert("clock_scaled".into(), json!(snap.clock.scaled));
    let measurements = take(&mut s, "measurements");
    let value_of = |key: &str| {
        measurements
            .get(key)
            .and_then(|p| p.get("value"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let power = value_of(Signal::Power1Kw.json_key());
    let flow = value_of(Signal::Flow1M3h.json_key());
    let energy = value_of(Signal::Energy1Kwh.json_key());
    m.insert("measurements".into(), measurements);
    m.insert("control".into(), take(&mut s, "explanation"));
    m.insert("settings".into(), take(&mut s, "settings"));
    m.insert(
        "valve1".into(),
        json!({
            "cmd_pct": snap.commands.valve1_cmd_pct.is_finite().then_some(snap.commands.valve1_cmd_pct),
            "pos_pct": snap.commands.valve1_pos_pct,
        }),
    );
    let mut rooms = take(&mut s, "rooms");
    if let Value::Object(r) = &mut rooms {
        r.remove("nodes");
    }
    m.insert("rooms".into(), rooms);
    m.insert(
        "heat_meter".into(),
        json!({ "power1_kw": power, "flow1_m3h": flow, "energy1_kwh": energy }),
    );
    m.insert("alarm_codes".into(), json!(snap.alarm_codes()));
    m.insert(
        "link".into(),
        json!({ "backlog_records": backlog_records, "dropped_records": dropped_records }),
    );
    m
}

/// The retained state payload.
pub(crate) fn state(
    o: &Origin,
    snap: &StationSnapshot,
    wall_unix_s: f64,
    telemetry_period_s: f64,
    writable: &[String],
) -> Map<String, Value> {
    let mut m = o.header(&rfc3339_utc(wall_unix_s));
    let s = serde_json::to_value(snap.settings).unwrap_or(Value::Null);
    m.insert("version".into(), snap.station.version.clone().into());
    m.insert(
        "config_hash".into(),
        snap.station.config_hash.clone().into(),
    );
    m.insert("mode".into(), s.get("mode").cloned().unwrap_or(Value::Null));
    m.insert("uptime_s".into(), json!(snap.station.uptime_s));
    m.insert(
        "started_utc".into(),
        rfc3339_utc(snap.station.started_unix_s).into(),
    );
    m.insert("telemetry_period_s".into(), json!(telemetry_period_s));
    m.insert("writable".into(), json!(writable));
    m
}

/// What of the state payload, when it changes, is published again at once.
pub(crate) fn state_key(snap: &StationSnapshot) -> (String, String, String) {
    let mode = serde_json::to_value(snap.settings)
        .ok()
        .and_then(|v| v.get("mode").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    (
        snap.station.version.clone(),
        snap.station.config_hash.clone(),
        mode,
    )
}

/// An alarm event.
pub(crate) fn alarm_event(
    o: &Origin,
    time_unix_s: f64,
    event: &str,
    code: u16,
    text: &str,
) -> Map<String, Value> {
    let mut m = o.header(&rfc3339_utc(time_unix_s));
    m.insert("event".into(), event.into());
    m.insert("code".into(), code.into());
    m.insert("text".into(), text.into());
    m
}

/// The active alarms of a snapshot: code and text.
pub(crate) fn alarms_of(snap: &StationSnapshot) -> Vec<(u16, String)> {
    snap.alarms
        .iter()
        .map(|a| (a.code.number(), a.code.text().to_owned()))
        .collect()
}

/// The status payload ("online", or the last will's "offline").
pub(crate) fn status(o: &Origin, status: &str, wall_unix_s: f64) -> Map<String, Value> {
    let mut m = o.header(&rfc3339_utc(wall_unix_s));
    m.insert("seq".into(), 0.into());
    m.insert("backfill".into(), false.into());
    m.insert("status".into(), status.into());
    m.insert("version".into(), env!("CARGO_PKG_VERSION").into());
    m
}

/// The answer to a command.
pub(crate) fn ack(
    o: &Origin,
    wall_unix_s: f64,
    id: Option<Value>,
    name: &str,
    outcome: &ChangeOutcome,
) -> Map<String, Value> {
    let mut m = o.header(&rfc3339_utc(wall_unix_s));
    m.insert("id".into(), id.unwrap_or(Value::Null));
    m.insert("name".into(), name.into());
    m.insert("accepted".into(), outcome.accepted.into());
    m.insert("reason".into(), json!(outcome.reason));
    m.insert("problems".into(), json!(outcome.problems));
    m.insert("old".into(), json!(outcome.old));
    m.insert("new".into(), json!(outcome.new));
    m
}

/// An audit record.
pub(crate) fn audit(o: &Origin, rec: &AuditRecord) -> Map<String, Value> {
    let mut m = o.header(&rec.time_utc);
    m.insert("source".into(), rec.source.clone().into());
    m.insert("client".into(), rec.client.clone().into());
    m.insert("what".into(), rec.what.clone().into());
    m.insert("old".into(), json!(rec.old));
    m.insert("new".into(), json!(rec.new));
    m.insert("result".into(), rec.result.clone().into());
    m.insert("reason".into(), json!(rec.reason));
    m
}

// ---- documentation -----------------------------------------------------------------------

/// One key of a payload: name, JSON Schema, meaning.
#[derive(Debug, Clone)]
pub struct FieldDoc {
    /// Key.
    pub key: &'static str,
    /// Its JSON Schema.
    pub schema: Value,
    /// What it means.
    pub meaning: &'static str,
}

/// One topic.
#[derive(Debug, Clone)]
pub struct TopicDoc {
    /// Topic below `{topic_prefix}/{site_id}/{station_id}/`.
    pub suffix: &'static str,
    /// Name of its payload in the JSON Schema's `$defs`.
    pub def: &'static str,
    /// "out" (published by heatctl) or "in" (taken by heatctl).
    pub direction: &'static str,
    /// Published retained.
    pub retained: bool,
    /// What it is for.
    pub about: &'static str,
    /// Its payload's keys.
    pub fields: Vec<FieldDoc>,
}

fn f(key: &'static str, schema: Value, meaning: &'static str) -> FieldDoc {
    FieldDoc {
        key,
        schema,
        meaning,
    }
}

fn num_or_null() -> Value {
    json!({"type": ["number", "null"]})
}

fn header_fields() -> Vec<FieldDoc> {
    vec![
        f(
            "schema",
            json!({"const": SCHEMA_ID}),
            "Payload schema and version: \"heatctl.platform/1\".",
        ),
        f(
            "site_id",
            json!({"type": "string"}),
            "Site id (as in the topic).",
        ),
        f(
            "station_id",
            json!({"type": "string"}),
            "Station id (as in the topic).",
        ),
        f(
            "seq",
            json!({"type": "integer", "minimum": 1}),
            "Sequence number of this topic, 1, 2, 3... without gaps, kept across restarts: a gap is a lost message, a repeat a QoS 1 duplicate.",
        ),
        f(
            "backfill",
            json!({"type": "boolean"}),
            "True when the message was queued while the broker was unreachable, is from before a restart, or waited longer than `backfill_after_s`: history, not live data.",
        ),
        f(
            "time_utc",
            json!({"type": "string", "format": "date-time"}),
            "When it happened, UTC, RFC 3339 with milliseconds (telemetry and alarms: the controller's clock, simulated on an accelerated clock).",
        ),
    ]
}

fn measurement_schema() -> Value {
    json!({
        "type": "object",
        "required": ["value", "valid", "age_s", "rejected"],
        "additionalProperties": false,
        "properties": {
            "value": {"type": ["number", "null"]},
            "valid": {"type": "boolean"},
            "age_s": {"type": ["number", "null"]},
            "rejected": {"type": ["string", "null"]}
        }
    })
}

/// Every topic and its payload.
#[must_use]
pub fn topics() -> Vec<TopicDoc> {
    let signals: Map<String, Value> = crate::control::Signal::ALL
        .iter()
        .map(|s| (s.json_key().to_owned(), measurement_schema()))
        .collect();
    let signal_keys: Vec<&str> = crate::control::Signal::ALL
        .iter()
        .map(|s| s.json_key())
        .collect();
    let with_header = |mut rest: Vec<FieldDoc>| {
        let mut v = header_fields();
        v.append(&mut rest);
        v
    };
    vec![
        TopicDoc {
            suffix: "telemetry",
            def: "telemetry",
            direction: "out",
            retained: false,
            about: "The station's figures, every `telemetry_period_s` of controller time (and at start).",
            fields: with_header(vec![
                f(
                    "clock_synced",
                    json!({"type": ["boolean", "null"]}),
                    "Whether the system clock is synchronised (NTP); null when unknown.",
                ),
                f(
                    "clock_scaled",
                    json!({"type": "boolean"}),
                    "True on an accelerated clock (demo, test rig): times are simulated.",
                ),
                f(
                    "measurements",
                    json!({"type": "object", "required": signal_keys, "properties": signals, "additionalProperties": false}),
                    "Every measured signal by its key (unit in the key: t_out_c, t1_supply_c, t1_return_c, t2_supply_c, t2_return_c, power1_kw, flow1_m3h, valve1_pos_pct, t_out_forecast_c, energy1_kwh, dp2_station_kpa, dp2_index_kpa, pump2_speed_pct, pump2_power_kw, flow2_m3h): `value` (null when never read or not a number), `valid` (as the field layer delivered it), `age_s` (since it was read), `rejected` (why the controller's validation rejected it: missing, field, stale, range, stuck, jump; null when accepted).",
                ),
                f(
                    "control",
                    json!({"type": "object", "required": ["setpoint_c", "curve_c", "base_shift_k", "demand_shift_k", "valve_demand_shift_k", "active_limiter", "supervisor"],
                    "properties": {
                        "outdoor_c": {"type": ["number", "null"]}, "outdoor_source": {"type": ["string", "null"]},
                        "damped_outdoor_c": {"type": ["number", "null"]}, "composite_outdoor_c": {"type": ["number", "null"]},
                        "curve_c": {"type": ["number", "null"]}, "base_shift_k": {"type": ["number", "null"]},
                        "demand_shift_k": {"type": ["number", "null"]}, "valve_demand_shift_k": {"type": ["number", "null"]},
                        "limiters": {"type": "array", "items": {"type": "object", "properties": {"limiter": {"type": "string"}, "delta_k": {"type": ["number", "null"]}}}},
                        "active_limiter": {"type": ["string", "null"]}, "setpoint_c": {"type": ["number", "null"]},
                        "heating_on": {"type": "boolean"}, "supervisor": {"type": ["string", "null"]},
                        "fallbacks": {"type": "array", "items": {"type": "integer"}},
                        "rejected": {"type": "array", "items": {"type": "object", "properties": {"signal": {"type": "string"}, "reason": {"type": "string"}}}}
                    }}),
                    "Why the controller decided what it did: outdoor temperature used (`outdoor_c`, `outdoor_source` measured/held/fallback, `damped_outdoor_c`, `composite_outdoor_c`), the heating curve's value `curve_c`, each shift (`base_shift_k` operator, `demand_shift_k` room correction, `valve_demand_shift_k` household valves), every limiter's effect (`limiters`: limiter, delta_k), `active_limiter`, the supply setpoint `setpoint_c`, `heating_on`, the safety `supervisor` action (null: none), `fallbacks` (alarm codes) and `rejected` signals.",
                ),
                f(
                    "settings",
                    json!({"type": "object", "required": ["mode", "curve_shift_k", "room_target_c", "demand_enabled", "valve1_manual_pct"],
                    "properties": {"mode": {"enum": ["auto", "off", "manual"]}, "curve_shift_k": {"type": "number"}, "room_target_c": {"type": "number"}, "demand_enabled": {"type": "boolean"}, "valve1_manual_pct": {"type": "number"}}}),
                    "Settings in force (the ones SCADA and platform commands change): `mode` (auto/off/manual), `curve_shift_k`, `room_target_c`, `demand_enabled`, `valve1_manual_pct`.",
                ),
                f(
                    "valve1",
                    json!({"type": "object", "required": ["cmd_pct", "pos_pct"], "additionalProperties": false, "properties": {"cmd_pct": num_or_null(), "pos_pct": num_or_null()}}),
                    "Primary control valve: command `cmd_pct` and position feedback `pos_pct` (null when not valid), %.",
                ),
                f(
                    "rooms",
                    json!({"type": "object", "required": ["expected", "used", "percentile_c", "median_c", "min_c", "sensed", "comfort_floor_c", "at_or_above_floor_pct"],
                    "properties": {"expected": {"type": "integer"}, "used": {"type": "integer"}, "invalid": {"type": "integer"}, "outliers": {"type": "integer"}, "quorum": {"type": "boolean"},
                      "percentile_c": num_or_null(), "median_c": num_or_null(), "trimmed_mean_c": num_or_null(), "sensed": {"type": "integer"}, "min_c": num_or_null(),
                      "comfort_floor_c": {"type": "number"}, "at_or_above_floor_pct": num_or_null()}}),
                    "Room temperatures summarised: nodes `expected` (counting, not vacant or excluded) and `used` by the demand correction, `invalid`, `outliers`, `quorum`, its weighted low `percentile_c`, `median_c`, `trimmed_mean_c`; homes `sensed` (valid reading now), the coldest `min_c`, the `comfort_floor_c` (18 °C) and the share of sensed homes at or above it `at_or_above_floor_pct`.",
                ),
                f(
                    "heat_meter",
                    json!({"type": "object", "required": ["power1_kw", "flow1_m3h", "energy1_kwh"], "additionalProperties": false, "properties": {"power1_kw": num_or_null(), "flow1_m3h": num_or_null(), "energy1_kwh": num_or_null()}}),
                    "Primary heat meter: `power1_kw` and `flow1_m3h` as read (null when never read; validity and age in `measurements`) and `energy1_kwh` (the meter's energy counter, kWh, as read: signal `energy1_kwh`, bound in `[points]`; null when not bound or never read).",
                ),
                f(
                    "alarm_codes",
                    json!({"type": "array", "items": {"type": "integer"}}),
                    "Codes of the alarms active now (events with text on `/alarms`).",
                ),
                f(
                    "link",
                    json!({"type": "object", "required": ["backlog_records", "dropped_records"], "additionalProperties": false, "properties": {"backlog_records": {"type": "integer", "minimum": 0}, "dropped_records": {"type": "integer", "minimum": 0}}}),
                    "The platform link when the message was made: messages waiting in the queue on disk (`backlog_records`) and dropped because it was full since it was created (`dropped_records`).",
                ),
            ]),
        },
        TopicDoc {
            suffix: "state",
            def: "state",
            direction: "out",
            retained: true,
            about: "What runs: at start, on every connection, and when the version, configuration or mode changes.",
            fields: with_header(vec![
                f("version", json!({"type": "string"}), "heatctl's version."),
                f(
                    "config_hash",
                    json!({"type": "string", "pattern": "^[0-9a-f]{16}$"}),
                    "Hash of the configuration in force (16 hex digits; comments and layout do not change it).",
                ),
                f(
                    "mode",
                    json!({"enum": ["auto", "off", "manual"]}),
                    "Operating mode.",
                ),
                f(
                    "uptime_s",
                    json!({"type": "number", "minimum": 0}),
                    "Seconds since the run started.",
                ),
                f(
                    "started_utc",
                    json!({"type": "string", "format": "date-time"}),
                    "When the run started, UTC.",
                ),
                f(
                    "telemetry_period_s",
                    json!({"type": "number"}),
                    "Telemetry period, s of controller time.",
                ),
                f(
                    "writable",
                    json!({"type": "array", "items": {"type": "string"}}),
                    "Settings the platform may change by command.",
                ),
            ]),
        },
        TopicDoc {
            suffix: "alarms",
            def: "alarm",
            direction: "out",
            retained: false,
            about: "One message per alarm raised or cleared (at start every active alarm is reported raised).",
            fields: with_header(vec![
                f(
                    "event",
                    json!({"enum": ["raised", "cleared"]}),
                    "Raised or cleared.",
                ),
                f(
                    "code",
                    json!({"type": "integer"}),
                    "Alarm code (the SCADA map's alarm list).",
                ),
                f("text", json!({"type": "string"}), "Alarm text."),
            ]),
        },
        TopicDoc {
            suffix: "status",
            def: "status",
            direction: "out",
            retained: true,
            about: "\"online\" when connected; the last will \"offline\" when the connection is lost (its `time_utc` is when that connection was made) and \"offline\" at a clean stop. Sent directly, not through the queue (it describes the connection); `seq` is 0 and `backfill` false.",
            fields: {
                let mut v = header_fields();
                v.retain(|x| x.key != "seq");
                v.push(f("seq", json!({"const": 0}), "Always 0 (not queued)."));
                v.push(f(
                    "status",
                    json!({"enum": ["online", "offline"]}),
                    "Online or offline.",
                ));
                v.push(f(
                    "version",
                    json!({"type": "string"}),
                    "heatctl's version.",
                ));
                v
            },
        },
        TopicDoc {
            suffix: "audit",
            def: "audit",
            direction: "out",
            retained: false,
            about: "Every change request from any source (SCADA write, platform command, web page, configuration file) and what became of it, as appended to `<state dir>/audit.jsonl`.",
            fields: with_header(vec![
                f(
                    "source",
                    json!({"enum": ["scada", "platform", "web", "file"]}),
                    "Who asked.",
                ),
                f(
                    "client",
                    json!({"type": "string"}),
                    "The client: SCADA peer, MQTT topic, web address, file path.",
                ),
                f(
                    "what",
                    json!({"type": "string"}),
                    "A setting's name, or \"config\".",
                ),
                f(
                    "old",
                    json!({}),
                    "Value before (for \"config\": the configuration hash); null when unknown.",
                ),
                f(
                    "new",
                    json!({}),
                    "Value asked for, or in force after (for \"config\": the new hash).",
                ),
                f(
                    "result",
                    json!({"enum": ["accepted", "refused"]}),
                    "Accepted or refused.",
                ),
                f(
                    "reason",
                    json!({"type": ["string", "null"]}),
                    "Why it was refused (every problem of a refused configuration).",
                ),
            ]),
        },
        TopicDoc {
            suffix: "cmd/{name}",
            def: "command",
            direction: "in",
            retained: false,
            about: "A command: `{name}` is a setting (curve_shift_k, operating_mode, room_target_c, demand_enabled, valve1_manual_pct; only those in `platform.writable` are taken) or `config` (a whole new configuration). Publish at QoS 1, not retained (a retained command is refused: it would be applied again at every connection). Payload at most `command_max_bytes`. Checked by the same gate as a SCADA write; answered on `cmd/{name}/ack`.",
            fields: vec![
                f(
                    "id",
                    json!({"type": ["string", "integer", "null"]}),
                    "Correlation id, echoed in the ack (optional).",
                ),
                f(
                    "value",
                    json!({"type": ["number", "boolean", "string"]}),
                    "The setting's new value (a setting command): a number; demand_enabled also true/false; operating_mode also \"auto\", \"off\", \"manual\".",
                ),
                f(
                    "toml",
                    json!({"type": "string"}),
                    "The new configuration file's whole text (`cmd/config`): validated in full, written atomically (the previous file kept as `.prev`) and applied like a reload; refused without change on any problem.",
                ),
            ],
        },
        TopicDoc {
            suffix: "cmd/{name}/ack",
            def: "ack",
            direction: "out",
            retained: false,
            about: "The answer to every command on `cmd/{name}`, through the queue like every other message.",
            fields: with_header(vec![
                f(
                    "id",
                    json!({"type": ["string", "integer", "null"]}),
                    "The command's `id` (null when it had none or could not be read).",
                ),
                f(
                    "name",
                    json!({"type": "string"}),
                    "The command's name (topic level).",
                ),
                f("accepted", json!({"type": "boolean"}), "Applied."),
                f(
                    "reason",
                    json!({"type": ["string", "null"]}),
                    "Why it was refused.",
                ),
                f(
                    "problems",
                    json!({"type": "array", "items": {"type": "string"}}),
                    "Every problem of a refused configuration (path, line:col, message).",
                ),
                f("old", json!({}), "Value before (for config: its hash)."),
                f(
                    "new",
                    json!({}),
                    "Value in force now (for config: its hash).",
                ),
            ]),
        },
    ]
}

/// The JSON Schema (draft 2020-12) of every payload, as shipped in docs/platform.schema.json.
#[must_use]
pub fn json_schema() -> Value {
    let mut defs = Map::new();
    for t in topics() {
        let mut props = Map::new();
        let mut required = Vec::new();
        for fd in &t.fields {
            let mut s = fd.schema.clone();
            if let Value::Object(o) = &mut s {
                o.insert("description".into(), fd.meaning.into());
            }
            props.insert(fd.key.into(), s);
            if t.direction == "out" {
                required.push(fd.key);
            }
        }
        let mut d = json!({
            "title": format!("{{prefix}}/{{site}}/{{station}}/{}", t.suffix),
            "description": t.about,
            "type": "object",
            "properties": props,
        });
        if t.direction == "out" {
            d["required"] = json!(required);
            d["additionalProperties"] = json!(false);
        }
        defs.insert(t.def.into(), d);
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://heatctl.example/platform.schema.json",
        "title": "heatctl platform payloads, heatctl.platform/1",
        "description": "Every MQTT payload heatctl publishes and takes; `$defs` has one schema per topic (generated by `heatctl platform-schema --json`).",
        "$defs": defs,
    })
}

/// The topics and payloads as Markdown (`heatctl platform-schema`).
#[must_use]
pub fn schema_markdown() -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "# heatctl platform topics and payloads ({SCHEMA_ID})\n");
    let _ = writeln!(
        s,
        "Every topic starts with `{{topic_prefix}}/{{site_id}}/{{station_id}}/` (defaults: \
         `heatctl/site/<station id>/`). Payloads are JSON objects, UTF-8; every one heatctl \
         publishes carries `\"schema\": \"{SCHEMA_ID}\"`. All are published at QoS 1 through the \
         queue on disk (except `status`), in order, and removed from the queue only at the \
         broker's PUBACK: after an outage or a restart the backlog is sent with `backfill: true` \
         while live data goes on, so a consumer orders by `time_utc` and detects loss by `seq`. \
         Numbers carry their unit in the key (`_c` °C, `_k` K, `_kw` kW, `_kwh` kWh, `_m3h` \
         m³/h, `_pct` %, `_s` seconds). The JSON Schema (draft 2020-12) of every payload is \
         docs/platform.schema.json (`heatctl platform-schema --json`).\n"
    );
    let _ = writeln!(
        s,
        "| topic | direction | retained | payload (`$defs`) | what |\n|---|---|---|---|---|"
    );
    for t in topics() {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | `{}` | {} |",
            t.suffix,
            if t.direction == "out" {
                "heatctl → platform"
            } else {
                "platform → heatctl"
            },
            if t.retained { "yes" } else { "no" },
            t.def,
            t.about
        );
    }
    for t in topics() {
        let _ = writeln!(s, "\n## `{}`\n\n{}\n", t.suffix, t.about);
        let _ = writeln!(s, "| key | type | meaning |\n|---|---|---|");
        for fd in &t.fields {
            let _ = writeln!(
                s,
                "| `{}` | {} | {} |",
                fd.key,
                type_words(&fd.schema),
                fd.meaning.replace('|', "\\|")
            );
        }
    }
    s
}

fn type_words(v: &Value) -> String {
    if let Some(c) = v.get("const") {
        return format!("`{c}`");
    }
    if let Some(Value::Array(e)) = v.get("enum") {
        return e
            .iter()
            .map(|x| format!("`{x}`"))
            .collect::<Vec<_>>()
            .join(" / ");
    }
    match v.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "any".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::ChangeOutcome;

    fn documented(def: &str) -> Vec<&'static str> {
        topics()
            .into_iter()
            .find(|t| t.def == def)
            .map(|t| t.fields.iter().map(|f| f.key).collect())
            .unwrap_or_default()
    }

    /// Every key a payload has is documented, and every documented key is in the payload
    /// (with the queue's `seq` and `backfill`).
    fn same_keys(def: &str, mut body: Map<String, Value>) {
        body.entry("seq").or_insert(Value::from(1));
        body.entry("backfill").or_insert(Value::from(false));
        let mut have: Vec<&str> = body.keys().map(String::as_str).collect();
        let mut doc = documented(def);
        have.sort_unstable();
        doc.sort_unstable();
        assert_eq!(have, doc, "{def}");
    }

    #[test]
    fn every_payload_key_is_documented() {
        let o = Origin {
            site_id: "s".into(),
            station_id: "st".into(),
        };
        let snap = StationSnapshot::default();
        same_keys("telemetry", telemetry(&o, &snap, 0, 0));
        same_keys("state", state(&o, &snap, 0.0, 60.0, &[]));
        same_keys("alarm", alarm_event(&o, 0.0, "raised", 1, "x"));
        same_keys("status", status(&o, "online", 0.0));
        same_keys(
            "ack",
            ack(&o, 0.0, None, "x", &ChangeOutcome::refused("no")),
        );
        let rec = crate::audit::AuditRecord {
            time_utc: "t".into(),
            source: "platform".into(),
            client: "c".into(),
            what: "w".into(),
            old: None,
            new: None,
            result: "refused".into(),
            reason: None,
        };
        same_keys("audit", audit(&o, &rec));
        // The measurements carry every signal.
        let t = telemetry(&o, &snap, 0, 0);
        for s in crate::control::Signal::ALL {
            assert!(t["measurements"].get(s.json_key()).is_some(), "{s:?}");
        }
    }

    #[test]
    fn the_heat_meter_carries_power_flow_and_the_energy_counter() {
        use crate::control::Sample;
        use crate::station::Measurement;
        let o = Origin {
            site_id: "s".into(),
            station_id: "st".into(),
        };
        let mut snap = StationSnapshot::default();
        let t = telemetry(&o, &snap, 0, 0);
        assert_eq!(t["heat_meter"]["energy1_kwh"], Value::Null);
        for (s, v) in [
            (Signal::Power1Kw, 1_250.5),
            (Signal::Flow1M3h, 30.25),
            (Signal::Energy1Kwh, 4_000_123_456.0),
        ] {
            snap.measurements[s.index()] = Measurement::of(s, Some(Sample::fresh(v)));
        }
        let t = telemetry(&o, &snap, 0, 0);
        assert_eq!(
            t["heat_meter"],
            json!({"power1_kw": 1_250.5, "flow1_m3h": 30.25, "energy1_kwh": 4_000_123_456.0})
        );
        assert_eq!(
            t["measurements"]["energy1_kwh"]["value"],
            json!(4_000_123_456.0)
        );
    }

    #[test]
    fn the_shipped_schema_and_markdown_are_what_the_code_says() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/platform.schema.json");
        let shipped: Value = serde_json::from_str(
            &std::fs::read_to_string(path).expect("docs/platform.schema.json"),
        )
        .expect("valid JSON");
        assert_eq!(
            shipped,
            json_schema(),
            "docs/platform.schema.json is stale: heatctl platform-schema --json > docs/platform.schema.json"
        );
        let md = schema_markdown();
        for t in topics() {
            assert!(md.contains(&format!("## `{}`", t.suffix)), "{}", t.suffix);
            for f in &t.fields {
                assert!(md.contains(&format!("| `{}` |", f.key)), "{}", f.key);
            }
        }
    }
}
