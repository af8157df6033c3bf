//! The platform link against a real Mosquitto: `heatctl demo --platform URL` (the controller
//! against the simulated plant, on an accelerated clock) publishes to a broker started on a
//! free port; an independent subscriber (`mosquitto_sub`) records what arrives, and python's
//! `jsonschema` checks every payload against docs/platform.schema.json.

#[path = "broker/mod.rs"]
mod broker;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use broker::{Broker, Sub, mosquitto_available, publish, temp_dir};
use serde_json::Value;

const BASE: &str = "heatctl/demo/demo-station";
/// Simulated seconds per wall second: telemetry (every simulated minute) twice a second.
const SPEED: &str = "120";

/// `heatctl demo --platform URL` with its queue in `tmp` (killed on drop).
struct Demo {
    child: Child,
    tmp: PathBuf,
}

impl Demo {
    fn start(url: &str, tmp: &Path) -> Demo {
        let child = Command::new(env!("CARGO_BIN_EXE_heatctl"))
            .args(["demo", "--speed", SPEED, "--platform", url])
            .env("TMPDIR", tmp)
            .env("RUST_LOG", "warn,heatctl::platform=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(tmp.join("demo.err")).expect("log file"))
            .spawn()
            .expect("start heatctl demo");
        Demo {
            child,
            tmp: tmp.to_owned(),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.tmp.join("demo.err")).unwrap_or_default()
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }

    fn sigkill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.sigkill();
    }
}

fn seqs(sub: &Sub, suffix: &str) -> Vec<u64> {
    sub.json(suffix)
        .iter()
        .filter_map(|v| v["seq"].as_u64())
        .collect()
}

fn max_seq(sub: &Sub, suffix: &str) -> u64 {
    seqs(sub, suffix).into_iter().max().unwrap_or(0)
}

/// Every seq from 1 to the largest arrived; in order once duplicates (QoS 1) are set aside.
fn assert_complete_in_order(seqs: &[u64]) {
    let mut seen = BTreeSet::new();
    let mut firsts = Vec::new();
    for &s in seqs {
        if seen.insert(s) {
            firsts.push(s);
        }
    }
    assert!(
        firsts.windows(2).all(|w| w[0] < w[1]),
        "out of order: {firsts:?}"
    );
    let max = *firsts.last().expect("some telemetry");
    let missing: Vec<u64> = (1..=max).filter(|s| !seen.contains(s)).collect();
    assert!(missing.is_empty(), "lost seqs {missing:?} of 1..={max}");
}

/// The python with `jsonschema`: $HEATCTL_PYTHON, else hil-tests/.venv.
fn python_with_jsonschema() -> Option<PathBuf> {
    let p = std::env::var_os("HEATCTL_PYTHON").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../hil-tests/.venv/bin/python"),
        PathBuf::from,
    );
    let ok = Command::new(&p)
        .args(["-c", "import jsonschema"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(p);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("python with jsonschema is required under CI (hil-tests/run-tests installs it)");
    }
    eprintln!("SKIPPED: python jsonschema not installed");
    None
}

const VALIDATE_PY: &str = r#"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
msgs = json.load(open(sys.argv[2]))
defs = {"telemetry": "telemetry", "state": "state", "alarms": "alarm", "status": "status", "audit": "audit"}
bad = 0
for m in msgs:
    suffix = m["topic"].split("/", 3)[3]
    d = defs.get(suffix) or ("ack" if suffix.endswith("/ack") else None)
    if d is None:
        continue
    sub = dict(schema["$defs"][d]); sub["$defs"] = schema["$defs"]
    try:
        jsonschema.Draft202012Validator(sub, format_checker=jsonschema.FormatChecker()).validate(json.loads(m["payload"]))
    except jsonschema.ValidationError as e:
        bad += 1
        print(m["topic"], e.message, file=sys.stderr)
print(len(msgs), bad)
sys.exit(1 if bad else 0)
"#;

/// Validate every message heatctl published against docs/platform.schema.json.
fn validate(python: &Path, msgs: &[broker::Msg], dir: &Path) {
    let file = dir.join("msgs.json");
    let list: Vec<Value> = msgs
        .iter()
        .filter(|m| !m.topic.contains("/cmd/") || m.topic.ends_with("/ack"))
        .map(|m| serde_json::json!({"topic": m.topic, "payload": m.payload}))
        .collect();
    std::fs::write(&file, serde_json::to_string(&list).expect("json")).expect("write");
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/platform.schema.json");
    let out = Command::new(python)
        .args(["-c", VALIDATE_PY])
        .arg(&schema)
        .arg(&file)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "payloads do not match the schema:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn payloads_arrive_and_match_the_schema() {
    if !mosquitto_available() {
        return;
    }
    let Some(python) = python_with_jsonschema() else {
        return;
    };
    let broker = Broker::start("");
    let sub = Sub::start(broker.port, "heatctl/#");
    let tmp = temp_dir("platform-a");
    let _demo = Demo::start(&broker.url(), &tmp);
    assert!(
        sub.wait(Duration::from_secs(20), |m| {
            m.iter().filter(|x| x.topic.ends_with("/telemetry")).count() >= 4
                && m.iter().any(|x| x.topic.ends_with("/state"))
                && m.iter().any(|x| x.topic.ends_with("/alarms"))
        }),
        "telemetry, state and alarms did not arrive: {:?}",
        sub.all().iter().map(|m| &m.topic).collect::<Vec<_>>()
    );
    let status = sub.json("/status");
    assert_eq!(status[0]["status"], "online");
    let t = sub.json("/telemetry");
    let last = t.last().expect("telemetry");
    assert_eq!(last["schema"], "heatctl.platform/1");
    assert_eq!(last["station_id"], "demo-station");
    assert!(last["measurements"]["t2_supply_c"]["value"].is_number());
    assert!(last["control"]["setpoint_c"].is_number());
    assert!(last["rooms"]["at_or_above_floor_pct"].is_number());
    assert!(last["valve1"]["cmd_pct"].is_number());
    assert_complete_in_order(&seqs(&sub, "/telemetry"));
    let state = sub.json("/state");
    assert_eq!(state[0]["mode"], "auto");
    assert_eq!(state[0]["config_hash"].as_str().map(str::len), Some(16));
    validate(&python, &sub.all(), &tmp);
}

#[test]
fn an_outage_of_ten_simulated_minutes_loses_nothing() {
    if !mosquitto_available() {
        return;
    }
    let mut broker = Broker::start("");
    let sub = Sub::start(broker.port, &format!("{BASE}/telemetry"));
    let tmp = temp_dir("platform-b");
    let mut demo = Demo::start(&broker.url(), &tmp);
    assert!(sub.wait(Duration::from_secs(20), |m| m.len() >= 3));
    let before = max_seq(&sub, "/telemetry");
    broker.stop();
    // 10 simulated minutes at 120x.
    std::thread::sleep(Duration::from_secs(5));
    assert!(demo.running(), "the station stopped during the outage");
    broker.restart();
    // The backlog (about 10 messages) and live data arrive.
    assert!(
        sub.wait(Duration::from_secs(20), |_| max_seq(&sub, "/telemetry")
            >= before + 14),
        "the backlog did not arrive: {:?}",
        seqs(&sub, "/telemetry")
    );
    let all = seqs(&sub, "/telemetry");
    assert_complete_in_order(&all);
    let backfilled: Vec<u64> = sub
        .json("/telemetry")
        .iter()
        .filter(|v| v["backfill"] == true)
        .filter_map(|v| v["seq"].as_u64())
        .collect();
    assert!(
        backfilled.len() >= 6,
        "the backlog is not marked as backfill: {backfilled:?} of {all:?}"
    );
    assert!(
        backfilled.iter().all(|&s| s > before),
        "live data before the outage marked as backfill: {backfilled:?}"
    );
}

#[test]
fn a_station_killed_during_the_outage_still_delivers_its_backlog() {
    if !mosquitto_available() {
        return;
    }
    let mut broker = Broker::start("");
    let sub = Sub::start(broker.port, &format!("{BASE}/telemetry"));
    let tmp = temp_dir("platform-c");
    let mut demo = Demo::start(&broker.url(), &tmp);
    assert!(sub.wait(Duration::from_secs(20), |m| m.len() >= 3));
    let before = max_seq(&sub, "/telemetry");
    broker.stop();
    std::thread::sleep(Duration::from_secs(3));
    demo.sigkill();
    let _demo2 = Demo::start(&broker.url(), &tmp);
    std::thread::sleep(Duration::from_secs(1));
    broker.restart();
    assert!(
        sub.wait(Duration::from_secs(20), |_| {
            sub.json("/telemetry")
                .iter()
                .any(|v| v["backfill"] == false && v["seq"].as_u64() > Some(before + 8))
        }),
        "no live telemetry after the restart: {:?}",
        seqs(&sub, "/telemetry")
    );
    // Every seq, the killed run's outage backlog included.
    assert_complete_in_order(&seqs(&sub, "/telemetry"));
    assert!(max_seq(&sub, "/telemetry") > before + 8);
}

fn ack_for<'a>(acks: &'a [Value], id: &str) -> Option<&'a Value> {
    acks.iter().find(|a| a["id"] == id)
}

#[test]
fn bad_commands_are_refused_with_a_reason_and_a_good_one_applied() {
    if !mosquitto_available() {
        return;
    }
    let broker = Broker::start("");
    let sub = Sub::start(broker.port, "heatctl/#");
    let tmp = temp_dir("platform-e");
    let _demo = Demo::start(&broker.url(), &tmp);
    assert!(sub.wait(Duration::from_secs(20), |m| {
        m.iter().any(|x| x.topic.ends_with("/state"))
    }));
    let p = broker.port;
    let cmd = |name: &str| format!("{BASE}/cmd/{name}");
    publish(
        p,
        &cmd("no_such_setting"),
        br#"{"id":"u1","value":1}"#,
        false,
    );
    publish(
        p,
        &cmd("curve_shift_k"),
        br#"{"id":"r1","value":99}"#,
        false,
    );
    publish(p, &cmd("curve_shift_k"), br#"{"id":"m1","value":"#, false);
    publish(p, &cmd("curve_shift_k"), &vec![b' '; 10 << 20], false);
    publish(
        p,
        &cmd("config"),
        br#"{"id":"c1","toml":"[site]\nname = 3\n"}"#,
        false,
    );
    publish(
        p,
        "heatctl/demo/other-station/cmd/curve_shift_k",
        br#"{"id":"o1","value":2}"#,
        false,
    );
    publish(
        p,
        "heatctl/demo/demo-station-2/cmd/curve_shift_k",
        br#"{"id":"w1","value":2}"#,
        false,
    );
    assert!(
        sub.wait(Duration::from_secs(20), |m| m
            .iter()
            .filter(|x| x.topic.ends_with("/ack") && x.topic.starts_with(BASE))
            .count()
            >= 5),
        "not every command was answered: {:?}",
        sub.json("/ack")
    );
    let acks = sub.json("/ack");
    let refused = |id: &str, words: &str| {
        let a = ack_for(&acks, id).unwrap_or_else(|| panic!("no ack for {id}: {acks:?}"));
        assert_eq!(a["accepted"], false, "{a}");
        let why = format!("{} {}", a["reason"], a["problems"]);
        assert!(why.contains(words), "{id}: {why}");
    };
    refused("u1", "unknown");
    refused("r1", "range");
    refused("c1", "");
    // Malformed and oversized commands have no readable id.
    let nameless: Vec<&Value> = acks.iter().filter(|a| a["id"].is_null()).collect();
    assert!(nameless.iter().any(|a| {
        a["reason"]
            .as_str()
            .is_some_and(|r| r.contains("malformed JSON"))
    }));
    assert!(nameless.iter().any(|a| {
        a["reason"]
            .as_str()
            .is_some_and(|r| r.contains("over the limit"))
    }));
    // Another station's command never arrives here.
    assert!(ack_for(&acks, "o1").is_none() && ack_for(&acks, "w1").is_none());
    // Nothing changed.
    std::thread::sleep(Duration::from_secs(1));
    let t = sub.json("/telemetry");
    assert_eq!(
        t.last().expect("telemetry")["settings"]["curve_shift_k"],
        0.0
    );
    // Every refusal audited.
    let audit = sub.json("/audit");
    assert!(
        audit
            .iter()
            .filter(|a| a["source"] == "platform" && a["result"] == "refused")
            .count()
            >= 5,
        "{audit:?}"
    );
    // A good command: accepted, old -> new, in force, audited.
    publish(
        p,
        &cmd("curve_shift_k"),
        br#"{"id":"g1","value":1.5}"#,
        false,
    );
    assert!(sub.wait(Duration::from_secs(20), |_| {
        ack_for(&sub.json("/ack"), "g1").is_some()
    }));
    let acks = sub.json("/ack");
    let g = ack_for(&acks, "g1").expect("ack g1");
    assert_eq!(g["accepted"], true, "{g}");
    assert_eq!(g["old"], 0.0);
    assert_eq!(g["new"], 1.5);
    assert!(sub.wait(Duration::from_secs(10), |_| {
        sub.json("/telemetry")
            .last()
            .is_some_and(|t| t["settings"]["curve_shift_k"] == 1.5)
    }));
    assert!(
        sub.json("/audit")
            .iter()
            .any(|a| a["result"] == "accepted" && a["what"] == "curve_shift_k" && a["new"] == 1.5)
    );
}

#[test]
fn tls_against_a_plain_broker_gives_no_connection_and_control_goes_on() {
    if !mosquitto_available() {
        return;
    }
    let broker = Broker::start("");
    let sub = Sub::start(broker.port, "heatctl/#");
    let tmp = temp_dir("platform-f");
    let mut demo = Demo::start(&format!("mqtts://127.0.0.1:{}", broker.port), &tmp);
    std::thread::sleep(Duration::from_secs(4));
    assert!(demo.running(), "the station stopped");
    assert!(sub.all().is_empty(), "something arrived: {:?}", sub.all());
    let log = demo.log();
    assert!(log.contains("TLS"), "the error does not say TLS: {log}");
}
