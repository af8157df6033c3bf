//! The web face's API and live events, served in-process from a watch channel of synthetic
//! station snapshots and a gate whose requests are answered here like the runtime does; and
//! the real demo's page, whose snapshot changes over time.

#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[path = "peers/scratch.rs"]
mod scratch;
use scratch::Scratch;

use heatctl::audit::Audit;
use heatctl::config::Config;
use heatctl::faces::FaceContext;
use heatctl::gate::{Access, ChangeOutcome, Gate, Setting, audit_record};
use heatctl::station::{SnapshotSender, StationSnapshot};
use heatctl::web::{self, WebHandle};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A guard against hangs only (never a timing assertion).
const HANG_GUARD: Duration = Duration::from_secs(20);
const TOKEN: &str = "test-token-0123456789";

fn example_config() -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/substation.example.toml");
    heatctl::config::load(&path).unwrap().config
}

/// The face under test, its snapshot sender, and what reached the "runtime".
struct Face {
    handle: WebHandle,
    tx: SnapshotSender,
    audit: Audit,
    /// Settings the runtime stand-in applied.
    applied: Arc<std::sync::Mutex<Vec<Setting>>>,
    configs: tokio::sync::watch::Sender<Arc<Config>>,
}

impl Face {
    fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    fn publish(&self, s: StationSnapshot) {
        self.tx.send_replace(Some(Arc::new(s)));
    }

    fn applied(&self) -> Vec<Setting> {
        self.applied.lock().unwrap().clone()
    }
}

async fn face_with(token: Option<&str>, edit: impl FnOnce(&mut Config)) -> Face {
    face_in(token, None, edit).await
}

/// A face whose state directory is `state_dir`.
async fn face_in(
    token: Option<&str>,
    state_dir: Option<std::path::PathBuf>,
    edit: impl FnOnce(&mut Config),
) -> Face {
    let mut cfg = example_config();
    cfg.web.enabled = true;
    cfg.web.listen = "127.0.0.1:0".into();
    cfg.web.set_inline_token(token.map(str::to_owned));
    edit(&mut cfg);
    let audit = Audit::in_memory();
    let (gate, mut rx) = Gate::new(Access::of(&cfg), audit.clone());
    let (tx, snapshots) = tokio::sync::watch::channel(None);
    let applied = Arc::new(std::sync::Mutex::new(Vec::new()));
    // The runtime's part: apply, audit, answer.
    let (runtime_audit, runtime_applied) = (audit.clone(), Arc::clone(&applied));
    tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            let outcome = match msg.setting {
                Some(Setting::CurveShiftK(k)) => ChangeOutcome::applied(json!(0.0), json!(k)),
                Some(s) => ChangeOutcome::applied(Value::Null, json!(format!("{s:?}"))),
                None => ChangeOutcome::refused("not a setting"),
            };
            if let Some(s) = msg.setting {
                runtime_applied.lock().unwrap().push(s);
            }
            runtime_audit.record(audit_record(&msg.request, &outcome));
            if let Some(r) = msg.reply {
                let _ = r.send(outcome);
            }
        }
    });
    let web_cfg = cfg.web.clone();
    let configs = tokio::sync::watch::Sender::new(Arc::new(cfg.clone()));
    let ctx = FaceContext {
        snapshots,
        gate,
        audit: audit.clone(),
        state_dir,
        configs: configs.subscribe(),
        config: Arc::new(cfg),
    };
    let handle = web::start(&web_cfg, ctx).await.unwrap().unwrap();
    Face {
        handle,
        tx,
        audit,
        applied,
        configs,
    }
}

async fn face(token: Option<&str>) -> Face {
    face_with(token, |_| {}).await
}

/// A snapshot at clock time `t` with recognisable values.
fn snapshot_at(t: f64) -> StationSnapshot {
    let mut s = StationSnapshot::default();
    s.site = "test site".into();
    s.station.site_id = "site-a".into();
    s.station.station_id = "station-1".into();
    s.station.version = "9.9.9".into();
    s.clock.clock_unix_s = t;
    s.clock.mono_s = t;
    s.clock.wall_unix_s = t;
    s.explanation.outdoor_c = Some(-5.0);
    s.explanation.damped_outdoor_c = Some(-4.0);
    s.explanation.composite_outdoor_c = Some(-4.5);
    s.explanation.curve_c = 60.0;
    s.explanation.base_shift_k = 2.0;
    s.explanation.demand_shift_k = 1.5;
    s.explanation.setpoint_c = Some(63.5);
    s.commands.valve1_cmd_pct = 42.0;
    s
}

/// An HTTP/1.1 response.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..eol]).unwrap().trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[eol + 2 + size + 2..];
    }
}

async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(HANG_GUARD, s.read_to_end(&mut raw))
        .await
        .expect("the server answers")
        .unwrap();
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[split + 4..];
    let body = if headers
        .get("transfer-encoding")
        .is_some_and(|t| t == "chunked")
    {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Reply {
        status,
        headers,
        body,
    }
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, &[], b"").await
}

async fn post_setting(addr: SocketAddr, auth: Option<&str>, body: &str) -> Reply {
    let bearer = auth.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(b) = &bearer {
        headers.push(("Authorization", b.as_str()));
    }
    request(addr, "POST", "/api/settings", &headers, body.as_bytes()).await
}

/// Poll `cond` until it holds (hang guard only).
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < HANG_GUARD, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A live event stream: the server-sent events as (event, data).
struct Events {
    stream: TcpStream,
    buf: Vec<u8>,
    head_seen: bool,
}

impl Events {
    async fn open(addr: SocketAddr) -> Result<Self, Reply> {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "GET /api/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut ev = Self {
            stream,
            buf: Vec::new(),
            head_seen: false,
        };
        // Read the head.
        loop {
            if let Some(p) = ev.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&ev.buf[..p]).to_string();
                if !head.starts_with("HTTP/1.1 200") {
                    let mut rest = Vec::new();
                    let _ = tokio::time::timeout(
                        Duration::from_secs(2),
                        ev.stream.read_to_end(&mut rest),
                    )
                    .await;
                    ev.buf.extend_from_slice(&rest);
                    return Err(parse_reply(&ev.buf));
                }
                assert!(
                    head.to_ascii_lowercase().contains("text/event-stream"),
                    "{head}"
                );
                ev.buf.drain(..p + 4);
                ev.head_seen = true;
                return Ok(ev);
            }
            ev.fill().await;
        }
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 16384];
        let n = tokio::time::timeout(HANG_GUARD, self.stream.read(&mut chunk))
            .await
            .expect("an event in time")
            .unwrap();
        assert!(n > 0, "the stream ended");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// The next event (chunk framing and keep-alive comments skipped).
    async fn next(&mut self) -> (String, String) {
        loop {
            let text = String::from_utf8_lossy(&self.buf).to_string();
            // Events end with a blank line; chunk sizes sit on lines of their own.
            if let Some(end) = text.find("\n\n") {
                let block = text[..end].to_owned();
                self.buf.drain(..end + 2);
                let mut event = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(e) = line.strip_prefix("event:") {
                        event = e.trim().to_owned();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.strip_prefix(' ').unwrap_or(d));
                    }
                }
                if !event.is_empty() {
                    return (event, data);
                }
                continue;
            }
            self.fill().await;
        }
    }

    /// The next event named `name`.
    async fn next_named(&mut self, name: &str) -> Value {
        loop {
            let (event, data) = self.next().await;
            if event == name {
                return serde_json::from_str(&data).unwrap();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_says_who_and_whether_writes_are_possible() {
    let f = face(None).await;
    let r = request(
        f.addr(),
        "GET",
        "/api/info",
        &[("Accept-Language", "zh-CN,zh;q=0.9,en;q=0.8")],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["default_language"], "zh-CN");
    assert_eq!(v["languages"], json!(["zh-CN", "en"]));
    assert_eq!(v["write_enabled"], false);
    assert!(v["read_only_reason"].as_str().unwrap().contains("token"));
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["cycle_period_s"], 1.0);
    f.publish(snapshot_at(1000.0));
    let v = request(
        f.addr(),
        "GET",
        "/api/info",
        &[("Accept-Language", "en-GB,en;q=0.9")],
        b"",
    )
    .await
    .json();
    assert_eq!(v["default_language"], "en");
    assert_eq!(v["site_id"], "site-a");
    assert_eq!(v["station_id"], "station-1");

    let f = face(Some(TOKEN)).await;
    let v = get(f.addr(), "/api/info").await.json();
    assert_eq!(v["write_enabled"], true);
    assert_eq!(v["default_language"], "en");
    assert_eq!(
        v["writable"],
        json!([
            "curve_shift_k",
            "room_target_c",
            "operating_mode",
            "valve1_manual_pct"
        ])
    );
    assert!(v["read_only_reason"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_is_the_station_snapshot_json() {
    let f = face(None).await;
    let r = get(f.addr(), "/api/snapshot").await;
    assert_eq!(r.status, 503, "no cycle yet");
    assert!(r.json()["error"].is_string());
    f.publish(snapshot_at(1234.0));
    let r = get(f.addr(), "/api/snapshot").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "application/json");
    let v = r.json();
    for key in [
        "site",
        "station",
        "clock",
        "measurements",
        "commands",
        "explanation",
        "rooms",
        "alarms",
        "devices",
        "links",
        "settings",
        "saved_state",
        "platform",
    ] {
        assert!(v.get(key).is_some(), "key {key} missing");
    }
    assert_eq!(v["clock"]["clock_unix_s"], 1234.0);
    assert_eq!(v["explanation"]["setpoint_c"], 63.5);
    assert!(v["measurements"]["t2_supply_c"].is_object());
    assert_eq!(
        v,
        serde_json::to_value(snapshot_at(1234.0)).unwrap(),
        "exactly as serde writes it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_deliver_each_new_snapshot_and_audit_records() {
    let f = face(Some(TOKEN)).await;
    f.publish(snapshot_at(100.0));
    let mut ev = Events::open(f.addr()).await.unwrap();
    let first = ev.next_named("snapshot").await;
    assert_eq!(first["clock"]["clock_unix_s"], 100.0);
    f.publish(snapshot_at(101.0));
    let second = ev.next_named("snapshot").await;
    assert_eq!(second["clock"]["clock_unix_s"], 101.0);
    // Many cycles at once: the latest arrives (intermediate ones may be skipped).
    for t in 102..200 {
        f.publish(snapshot_at(f64::from(t)));
    }
    loop {
        let s = ev.next_named("snapshot").await;
        if s["clock"]["clock_unix_s"] == 199.0 {
            break;
        }
    }
    let r = post_setting(
        f.addr(),
        Some(TOKEN),
        r#"{"name":"curve_shift_k","value":-2}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    let rec = ev.next_named("audit").await;
    assert_eq!(rec["source"], "web");
    assert_eq!(rec["what"], "curve_shift_k");
    assert_eq!(rec["result"], "accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_clients_are_capped() {
    let f = face_with(None, |c| c.web.max_sse_clients = 2).await;
    f.publish(snapshot_at(100.0));
    let a = Events::open(f.addr()).await.unwrap();
    let _b = Events::open(f.addr()).await.unwrap();
    let refused = Events::open(f.addr())
        .await
        .err()
        .expect("a third is refused");
    assert_eq!(refused.status, 503);
    assert!(String::from_utf8_lossy(&refused.body).contains("max_sse_clients"));
    drop(a);
    // The slot is freed when the server finds the client gone (at its next write).
    let start = std::time::Instant::now();
    let mut t = 101.0;
    loop {
        f.publish(snapshot_at(t));
        t += 1.0;
        match Events::open(f.addr()).await {
            Ok(_) => break,
            Err(r) => assert_eq!(r.status, 503),
        }
        assert!(start.elapsed() < HANG_GUARD, "the slot was never freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trends_keep_a_row_a_minute_and_stay_bounded() {
    let f = face_with(None, |c| c.web.trend_hours = 1).await;
    let trends = Arc::clone(f.handle.trends());
    assert_eq!(trends.capacity(), 60);
    let t0 = 1_800_000_000.0;
    for m in 0..3 {
        for s in [0.0, 20.0, 40.0] {
            let t = t0 + f64::from(m) * 60.0 + s;
            let mut snap = snapshot_at(t);
            snap.explanation.outdoor_c = Some(f64::from(m));
            f.publish(snap);
            if s == 0.0 {
                until("the minute's row", || trends.len() == m as usize + 1).await;
            }
        }
    }
    let v = get(f.addr(), "/api/trends").await.json();
    assert_eq!(v["t_unix_s"], json!([t0, t0 + 60.0, t0 + 120.0]));
    assert_eq!(v["outdoor_c"], json!([0.0, 1.0, 2.0]));
    assert_eq!(v["setpoint_c"], json!([63.5, 63.5, 63.5]));
    assert_eq!(v["valve1_cmd_pct"], json!([42.0, 42.0, 42.0]));
    assert_eq!(
        v["rooms_median_c"],
        json!([null, null, null]),
        "unknown is null"
    );
    for key in web::TRENDS_COLUMNS {
        assert_eq!(v[key].as_array().map(Vec::len), Some(3), "column {key}");
    }
    let since = get(f.addr(), &format!("/api/trends?since_s={}", t0 + 60.0))
        .await
        .json();
    assert_eq!(since["t_unix_s"], json!([t0 + 60.0, t0 + 120.0]));
    // Two hours more: the buffer holds the last hour only.
    for m in 3..130 {
        let t = t0 + f64::from(m) * 60.0;
        f.publish(snapshot_at(t));
        until("the row", || trends.columns(Some(t)).len() == 1).await;
    }
    let v = get(f.addr(), "/api/trends").await.json();
    let t = v["t_unix_s"].as_array().unwrap();
    assert_eq!(t.len(), 60);
    assert_eq!(t[0], json!(t0 + 70.0 * 60.0));
    assert_eq!(t[59], json!(t0 + 129.0 * 60.0));
    let bad = get(f.addr(), "/api/trends?since_s=yesterday").await;
    assert_eq!(bad.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curve_has_points_shifts_limits_and_the_operating_point() {
    let f = face(None).await;
    let cfg = example_config();
    let v = get(f.addr(), "/api/curve").await.json();
    assert_eq!(v["t2_supply_min_c"], cfg.curve.min_supply_c);
    assert_eq!(v["t2_supply_max_c"], cfg.curve.max_supply_c);
    assert!(v["operating_point"].is_null(), "no cycle yet");
    f.publish(snapshot_at(100.0));
    let v = get(f.addr(), "/api/curve").await.json();
    let points = v["points"].as_array().unwrap();
    assert!(points.len() >= 40, "every kelvin over the outdoor range");
    let (min_c, max_c) = (cfg.curve.min_supply_c, cfg.curve.max_supply_c);
    let mut inside = 0;
    for p in points {
        let (x, c, s) = (
            p["outdoor_c"].as_f64().unwrap(),
            p["curve_c"].as_f64().unwrap(),
            p["shifted_c"].as_f64().unwrap(),
        );
        assert!((-60.0..=50.0).contains(&x));
        assert!(s >= min_c && s <= max_c, "shifted curve within the limits");
        if c + 3.5 > min_c && c + 3.5 < max_c {
            assert!(
                (s - (c + 3.5)).abs() < 0.02,
                "shift 2 + 1.5 at {x}: {c} -> {s}"
            );
            inside += 1;
        }
    }
    assert!(inside > 10);
    let op = &v["operating_point"];
    assert_eq!(op["setpoint_c"], 63.5);
    assert!(op["outdoor_c"].as_f64().is_some());
    assert!(
        op["t2_supply_c"].is_null(),
        "not measured in the synthetic snapshot"
    );
    assert_eq!(v["base_shift_k"], 2.0);
    assert_eq!(v["demand_shift_k"], 1.5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_the_page_is_read_only() {
    let f = face(None).await;
    let r = post_setting(
        f.addr(),
        Some(TOKEN),
        r#"{"name":"curve_shift_k","value":1}"#,
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(r.json()["reason"].as_str().unwrap().contains("read-only"));
    assert!(f.applied().is_empty(), "nothing reached the runtime");
    assert!(f.audit.tail(10).is_empty(), "nothing reached the gate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_missing_token_is_refused() {
    let f = face(Some(TOKEN)).await;
    let body = r#"{"name":"curve_shift_k","value":1}"#;
    let r = post_setting(f.addr(), Some("test-token-0123456788"), body).await;
    assert_eq!(r.status, 401);
    assert!(r.json()["reason"].as_str().unwrap().contains("wrong token"));
    let r = post_setting(f.addr(), None, body).await;
    assert_eq!(r.status, 401);
    assert!(r.json()["reason"].as_str().unwrap().contains("Bearer"));
    let r = post_setting(f.addr(), Some(&TOKEN[..10]), body).await;
    assert_eq!(r.status, 401);
    assert!(f.applied().is_empty());
    assert!(f.audit.tail(10).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_token_writes_through_the_gate_and_is_audited() {
    let f = face(Some(TOKEN)).await;
    let r = post_setting(
        f.addr(),
        Some(TOKEN),
        r#"{"name":"curve_shift_k","value":-2.5}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["accepted"], true);
    assert_eq!(v["new"], -2.5);
    assert_eq!(f.applied(), vec![Setting::CurveShiftK(-2.5)]);
    let tail = get(f.addr(), "/api/audit?n=5").await.json();
    let tail = tail.as_array().unwrap();
    assert_eq!(tail.len(), 1);
    assert_eq!(tail[0]["source"], "web");
    assert_eq!(tail[0]["what"], "curve_shift_k");
    assert_eq!(tail[0]["result"], "accepted");
    assert!(
        tail[0]["client"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_refuses_out_of_range_and_unlisted_settings() {
    let f = face(Some(TOKEN)).await;
    let r = post_setting(
        f.addr(),
        Some(TOKEN),
        r#"{"name":"curve_shift_k","value":99}"#,
    )
    .await;
    assert_eq!(r.status, 422);
    let v = r.json();
    assert_eq!(v["accepted"], false);
    assert!(
        v["reason"].as_str().unwrap().contains("out of range"),
        "{v}"
    );
    let r = post_setting(
        f.addr(),
        Some(TOKEN),
        r#"{"name":"demand_enabled","value":false}"#,
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(
        r.json()["reason"]
            .as_str()
            .unwrap()
            .contains("not writable")
    );
    assert!(f.applied().is_empty(), "a refused request changes nothing");
    let tail = f.audit.tail(10);
    assert_eq!(tail.len(), 2);
    assert!(
        tail.iter()
            .all(|r| r.result == "refused" && r.source == "web")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_get_a_reason_and_change_nothing() {
    let f = face(Some(TOKEN)).await;
    for body in [
        "{not json",
        r#"{"name":"curve_shift_k"}"#,
        r#"{"name":"curve_shift_k","value":1,"extra":2}"#,
        r#"[1,2]"#,
        "",
    ] {
        let r = post_setting(f.addr(), Some(TOKEN), body).await;
        assert_eq!(r.status, 400, "{body}");
        assert!(
            r.json()["reason"]
                .as_str()
                .unwrap()
                .contains("must be JSON"),
            "{body}"
        );
    }
    let big = format!(
        r#"{{"name":"curve_shift_k","value":1,"pad":"{}"}}"#,
        "x".repeat(web::MAX_BODY_BYTES)
    );
    let r = post_setting(f.addr(), Some(TOKEN), &big).await;
    assert_eq!(r.status, 413);
    assert!(r.json()["reason"].as_str().unwrap().contains("larger"));
    assert!(f.applied().is_empty());
    // Still serving.
    assert_eq!(get(f.addr(), "/api/info").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_assets_doc_and_unknown_paths() {
    let f = face(None).await;
    let page = get(f.addr(), "/").await;
    assert_eq!(page.status, 200);
    assert!(page.headers["content-type"].starts_with("text/html"));
    let html = String::from_utf8_lossy(&page.body).to_lowercase();
    assert!(html.contains("<html"));
    let mut total = page.body.len();
    for (path, kind) in [
        ("/assets/app.js", "javascript"),
        ("/assets/app.css", "text/css"),
    ] {
        let r = get(f.addr(), path).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(r.headers["content-type"].contains(kind), "{path}");
        total += r.body.len();
    }
    assert_eq!(total, web::assets_total_bytes());
    assert!(total < 200 * 1024, "the page weighs {total} bytes");
    for path in ["/", "/assets/app.js"] {
        let html = String::from_utf8_lossy(&get(f.addr(), path).await.body).to_lowercase();
        assert!(
            !html.contains("https://"),
            "no external resources in {path}"
        );
    }
    let doc = get(f.addr(), "/api/doc").await;
    assert_eq!(doc.status, 200);
    let doc = String::from_utf8_lossy(&doc.body);
    for ep in [
        "/api/info",
        "/api/events",
        "/api/trends",
        "/api/settings",
        "/api/curve",
    ] {
        assert!(doc.contains(ep), "the doc describes {ep}");
    }
    assert_eq!(get(f.addr(), "/nope").await.status, 404);
    assert_eq!(get(f.addr(), "/assets/other.js").await.status, 404);
    let r = request(f.addr(), "DELETE", "/api/snapshot", &[], b"").await;
    assert_eq!(r.status, 405);
    let r = get(f.addr(), "/api/audit?n=lots").await;
    assert_eq!(r.status, 400);
    f.handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_curve_follows_a_reload_without_a_restart() {
    let f = face(None).await;
    let mut cfg = example_config();
    let before = get(f.addr(), "/api/curve").await.json();
    assert_eq!(before["t2_supply_max_c"], cfg.curve.max_supply_c);
    cfg.curve.max_supply_c -= 7.0;
    f.configs.send_replace(Arc::new(cfg.clone()));
    let after = get(f.addr(), "/api/curve").await.json();
    assert_eq!(after["t2_supply_max_c"], cfg.curve.max_supply_c);
    assert_ne!(before["t2_supply_max_c"], after["t2_supply_max_c"]);
    f.handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_certificate() {
    let dir = Scratch::new(&format!("heatctl-web-tls-{}", std::process::id()));
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=heatctl-test"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    match made {
        Ok(o) if o.status.success() => {}
        other => {
            assert!(
                std::env::var_os("CI").is_none(),
                "openssl is needed (apt-get install openssl): {other:?}"
            );
            eprintln!("skipped: no openssl");
            return;
        }
    }
    let (c, k) = (cert.clone(), key.clone());
    let f = face_with(Some(TOKEN), move |cfg| {
        cfg.web.tls_cert_file = Some(c.to_string_lossy().into_owned());
        cfg.web.tls_key_file = Some(k.to_string_lossy().into_owned());
    })
    .await;
    assert!(f.handle.url().starts_with("https://127.0.0.1:"));
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    use tokio_rustls::rustls::{self, pki_types};
    let mut roots = rustls::RootCertStore::empty();
    for c in pki_types::CertificateDer::pem_file_iter(&cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(f.addr()).await.unwrap();
    let name = pki_types::ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(b"GET /api/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(HANG_GUARD, tls.read_to_end(&mut raw)).await;
    let r = parse_reply(&raw);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["tls"], true);
    // Plain HTTP on the HTTPS port gets no page.
    let mut plain = TcpStream::connect(f.addr()).await.unwrap();
    plain
        .write_all(b"GET /api/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(HANG_GUARD, plain.read_to_end(&mut raw)).await;
    assert!(!String::from_utf8_lossy(&raw).contains("\"version\""));
}

/// The real demo with its page on a free port: the snapshot changes over time, and a write
/// with the token changes the setting.
#[cfg(feature = "demo")]
#[test]
fn the_demo_serves_a_live_page() {
    use std::io::BufRead as _;
    /// The demo is killed however the test ends.
    struct Demo(std::process::Child);
    impl Drop for Demo {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_heatctl"))
        .args([
            "demo",
            "--speed",
            "600",
            "--web",
            "127.0.0.1:0",
            "--web-token",
            TOKEN,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _demo = Demo(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let url = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the demo prints its URL");
        if let Some(u) = line.trim().strip_prefix("web") {
            break u.trim().split(' ').next().unwrap().to_owned();
        }
    };
    let addr: SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut first = None;
        let start = std::time::Instant::now();
        loop {
            // The URL is printed before the controller binds it.
            let up = TcpStream::connect(addr).await.is_ok();
            let r = if up {
                tokio::time::timeout(Duration::from_secs(2), get(addr, "/api/snapshot"))
                    .await
                    .ok()
            } else {
                None
            };
            if let Some(r) = r
                && r.status == 200
            {
                let t = r.json()["clock"]["clock_unix_s"].as_f64().unwrap();
                match first {
                    None => first = Some(t),
                    Some(t0) if t > t0 => break,
                    Some(_) => {}
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the snapshot never changed"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let r = post_setting(addr, Some(TOKEN), r#"{"name":"curve_shift_k","value":3}"#).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let start = std::time::Instant::now();
        loop {
            let v = get(addr, "/api/snapshot").await.json();
            if v["settings"]["curve_shift_k"] == 3.0 {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the setting never showed"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let trends = get(addr, "/api/trends").await.json();
        assert!(!trends["t_unix_s"].as_array().unwrap().is_empty());
    });
}

/// `days` of hourly room history for two risers of four flats in building b01: riser "east"
/// about 1.5 K colder than "west" (an under-supplied riser), with a little noise.
fn balance_history(days: i64) -> Vec<heatctl::balance::HourRecord> {
    use heatctl::balance::{HourRecord, RoomHour};
    let start = 1_767_225_600; // 2026-01-01 UTC
    (0..days * 24)
        .map(|h| {
            let day = h as f64 / 24.0;
            let t_out = -8.0 + 5.0 * (day / 3.0).sin();
            let t_sup = 40.0 + 1.0 * (20.0 - t_out);
            let rooms = (0..8)
                .map(|k| {
                    let east = k < 4;
                    let wobble = 0.2 * ((h * 7 + k * 13) % 11) as f64 / 11.0;
                    RoomHour {
                        id: format!("b01-{}{:02}", if east { "e" } else { "w" }, k),
                        building: "b01".into(),
                        position: "middle".into(),
                        riser: Some(if east { "east" } else { "west" }.into()),
                        room_c: if east { 18.8 } else { 20.3 } + wobble,
                        valve_pct: None,
                        samples: 6,
                    }
                })
                .collect();
            HourRecord {
                hour_unix_s: start + h * 3600,
                outdoor_c: Some(t_out),
                t2_supply_c: Some(t_sup),
                samples: 60,
                rooms,
            }
        })
        .collect()
}

/// `/api/balance` once it has been computed (it is computed at start, off the request).
async fn computed_balance(addr: SocketAddr) -> Value {
    let start = std::time::Instant::now();
    loop {
        let r = get(addr, "/api/balance").await;
        assert_eq!(r.status, 200);
        let v = r.json();
        if !v["computed_unix_s"].is_null() {
            return v;
        }
        assert!(start.elapsed() < HANG_GUARD, "never computed: {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balance_serves_the_advice_from_the_state_directorys_history() {
    // No state directory: no history, said plainly.
    let f = face(None).await;
    let v = computed_balance(f.addr()).await;
    assert!(v["advice"].is_null(), "{v}");
    assert_eq!(v["error"], "no state directory", "{v}");
    assert!(
        v["summary"].as_str().unwrap().contains("--state-dir"),
        "{v}"
    );

    // A state directory with three weeks of history: the advice, cached.
    let scratch = Scratch::new(&format!("heatctl-web-balance-{}", std::process::id()));
    let dir = scratch.to_path_buf();
    let history = heatctl::balance::recorder::history_dir(&dir);
    std::fs::create_dir_all(&history).unwrap();
    for hour in balance_history(21) {
        heatctl::balance::recorder::append_hour(&history, &hour, 60).unwrap();
    }
    let f = face_in(None, Some(dir.clone()), |_| {}).await;
    let v = computed_balance(f.addr()).await;
    assert!(v["error"].is_null(), "{v}");
    let advice = &v["advice"];
    assert!(advice["refused"].is_null(), "{v}");
    assert_eq!(advice["days_usable"], 21, "{v}");
    let groups = advice["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{v}");
    let verdict = |riser: &str| {
        groups
            .iter()
            .find(|g| g["riser"] == riser)
            .map(|g| g["verdict"].as_str().unwrap().to_owned())
    };
    assert_eq!(verdict("east").as_deref(), Some("under_supplied"), "{v}");
    assert_eq!(verdict("west").as_deref(), Some("over_supplied"), "{v}");
    assert!(
        v["summary"].as_str().unwrap().contains("b01 / east"),
        "{}",
        v["summary"]
    );
    // Served from the cache: a second request gives the same computation.
    let again = get(f.addr(), "/api/balance").await.json();
    assert_eq!(again["computed_unix_s"], v["computed_unix_s"]);
}
