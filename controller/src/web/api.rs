//! The routes: the page, its assets and the JSON API (see `docs/web-api.md`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::auth::{bearer, tokens_match};
use super::events::{self, ClientSlot};
use super::{AppState, MAX_BODY_BYTES, Peer, assets};
use crate::audit::AUDIT_TAIL;
use crate::config::OutdoorInput;
use crate::control::Signal;
use crate::control::curve::HeatingCurve;
use crate::gate::{Change, ChangeOutcome, ChangeRequest, Source};
use crate::runtime::VALVE_PERIOD_S;
use crate::station::StationSnapshot;

/// The API documentation served at `/api/doc`.
const API_DOC: &str = include_str!("../../../docs/web-api.md");
/// Audit records `/api/audit` returns without `n`.
const AUDIT_DEFAULT_N: usize = 50;
/// Languages of the page.
const LANGUAGES: [&str; 2] = ["zh-CN", "en"];

/// The router of the page and its API.
pub(super) fn router(state: AppState) -> Router {
    let mut r = Router::new();
    for &(path, content_type, bytes) in assets::ASSETS {
        r = r.route(
            path,
            get(move || async move {
                (
                    [
                        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                        (
                            header::X_CONTENT_TYPE_OPTIONS,
                            HeaderValue::from_static("nosniff"),
                        ),
                    ],
                    bytes,
                )
            }),
        );
    }
    r.route("/api/info", get(info))
        .route("/api/snapshot", get(snapshot))
        .route("/api/events", get(events))
        .route("/api/trends", get(trends))
        .route("/api/curve", get(curve))
        .route("/api/audit", get(audit))
        .route("/api/balance", get(balance))
        .route("/api/doc", get(doc))
        .route("/api/settings", post(settings))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// JSON with no caching.
fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

fn to_json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => json_response(status, body),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot encode the answer: {e}"),
        ),
    }
}

/// `{"error": why}`.
fn error(status: StatusCode, why: &str) -> Response {
    json_response(
        status,
        serde_json::to_vec(&json!({ "error": why })).unwrap_or_default(),
    )
}

/// `/api/balance`: the cached balancing advice (docs/balancing.md).
async fn balance(State(st): State<AppState>) -> Response {
    to_json(StatusCode::OK, &st.balance.get())
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such page; the API is described at /api/doc",
    )
}

/// What `/api/info` answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Info {
    /// heatctl's version.
    pub version: String,
    /// Site id.
    pub site_id: String,
    /// Station id.
    pub station_id: String,
    /// Whether settings can be written (a token is configured and some setting is writable).
    pub write_enabled: bool,
    /// Settings the page may write (with the token).
    pub writable: Vec<String>,
    /// Why the page is read-only, when it is.
    pub read_only_reason: Option<String>,
    /// Languages of the page.
    pub languages: [&'static str; 2],
    /// The language the browser prefers among them.
    pub default_language: &'static str,
    /// Period of the control cycle, clock seconds.
    pub cycle_period_s: f64,
    /// Clock seconds per real second (1 on a real station).
    pub clock_speed: f64,
    /// Hours of trends kept.
    pub trend_hours: f64,
    /// Trend rows kept now (one a clock minute).
    pub trend_rows: usize,
    /// Most live clients served at once.
    pub max_sse_clients: usize,
    /// Served over HTTPS.
    pub tls: bool,
}

/// "zh-CN" when the Accept-Language header prefers Chinese to English, else "en".
#[must_use]
pub fn default_language(accept_language: Option<&str>) -> &'static str {
    let mut best: Option<(f64, bool)> = None;
    for item in accept_language.unwrap_or("").split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let primary = tag.split('-').next().unwrap_or("");
        let zh = match primary {
            "zh" => true,
            "en" => false,
            _ => continue,
        };
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f64>().ok())
            .unwrap_or(1.0);
        if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, zh));
        }
    }
    if best.is_some_and(|(_, zh)| zh) {
        "zh-CN"
    } else {
        "en"
    }
}

fn latest(st: &AppState) -> Option<std::sync::Arc<StationSnapshot>> {
    st.ctx.snapshots.borrow().clone()
}

async fn info(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let cfg = st.ctx.configs.borrow().clone();
    let snap = latest(&st);
    let (site_id, station_id, version) = match &snap {
        Some(s) => (
            s.station.site_id.clone(),
            s.station.station_id.clone(),
            s.station.version.clone(),
        ),
        None => (
            cfg.platform.site_id.clone(),
            cfg.platform.station_id_or(&cfg.site.name),
            env!("CARGO_PKG_VERSION").to_owned(),
        ),
    };
    let writable = st.ctx.gate.writable(Source::Web);
    let write_enabled = st.token.is_some() && !writable.is_empty();
    let read_only_reason = if write_enabled {
        None
    } else {
        st.read_only_reason
            .clone()
            .or_else(|| Some("web.writable is empty".into()))
    };
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    to_json(
        StatusCode::OK,
        &Info {
            version,
            site_id,
            station_id,
            write_enabled,
            writable,
            read_only_reason,
            languages: LANGUAGES,
            default_language: default_language(accept),
            cycle_period_s: VALVE_PERIOD_S,
            clock_speed: snap.as_ref().map_or(1.0, |s| s.clock.speed),
            trend_hours: st.trends.capacity() as f64 / 60.0,
            trend_rows: st.trends.len(),
            max_sse_clients: st.max_sse_clients,
            tls: st.tls,
        },
    )
}

fn no_cycle_yet() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "no control cycle has run yet; try again in a second",
    )
}

async fn snapshot(State(st): State<AppState>) -> Response {
    match latest(&st) {
        Some(s) => to_json(StatusCode::OK, &*s),
        None => no_cycle_yet(),
    }
}

async fn events(State(st): State<AppState>) -> Response {
    let Some(slot) = ClientSlot::take(&st.sse_clients, st.max_sse_clients) else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "too many live clients (web.max_sse_clients = {}); try again later",
                st.max_sse_clients
            ),
        );
    };
    let current = latest(&st);
    events::stream(current, st.encoded.clone(), st.ctx.audit.subscribe(), slot).into_response()
}

/// Query of `/api/trends`.
#[derive(Debug, Deserialize)]
struct TrendsQuery {
    /// Only rows at or after this clock time, unix seconds.
    since_s: Option<f64>,
}

async fn trends(State(st): State<AppState>, q: Query<TrendsQuery>) -> Response {
    let cols = st.trends.columns(q.since_s);
    to_json(StatusCode::OK, &cols)
}

/// One point of the curve plot.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CurvePoint {
    /// Outdoor temperature, °C.
    pub outdoor_c: f64,
    /// The configured curve, unshifted and unclamped, °C.
    pub curve_c: f64,
    /// The curve with the shifts in force (base, demand, valve demand), clamped to the
    /// limits: the setpoint before the limiters, °C.
    pub shifted_c: f64,
}

/// Where the station runs now.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OperatingPoint {
    /// The outdoor temperature the curve is read at (per `outdoor.curve_input`), °C.
    pub outdoor_c: Option<f64>,
    /// The secondary supply setpoint after every limiter, °C (None while heating is off).
    pub setpoint_c: Option<f64>,
    /// The secondary supply temperature measured, °C.
    pub t2_supply_c: Option<f64>,
}

/// What `/api/curve` answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurveView {
    /// The curve, every kelvin of outdoor temperature over the plotted range.
    pub points: Vec<CurvePoint>,
    /// Lowest setpoint the curve may give, °C.
    pub t2_supply_min_c: f64,
    /// Highest setpoint the curve may give, °C.
    pub t2_supply_max_c: f64,
    /// The shifts added to the curve now, K.
    pub base_shift_k: f64,
    /// Demand correction shift, K.
    pub demand_shift_k: f64,
    /// Valve-position (trim and respond) shift, K.
    pub valve_demand_shift_k: f64,
    /// Where the station runs now (None before the first cycle).
    pub operating_point: Option<OperatingPoint>,
}

impl CurveView {
    /// The curve of `cfg` with the shifts and operating point of `snap`.
    #[must_use]
    pub fn of(cfg: &crate::config::Config, snap: Option<&StationSnapshot>) -> Self {
        let curve = HeatingCurve::new(&cfg.curve);
        let (min_c, max_c) = curve.clamp_c();
        let (base, demand, valve) = match snap {
            Some(s) => (
                s.explanation.base_shift_k,
                s.explanation.demand_shift_k,
                s.explanation.valve_demand_shift_k,
            ),
            None => (curve.shift_k(), 0.0, 0.0),
        };
        let operating_point = snap.map(|s| {
            let e = &s.explanation;
            OperatingPoint {
                outdoor_c: match cfg.outdoor.curve_input {
                    OutdoorInput::Composite => e.composite_outdoor_c,
                    OutdoorInput::Damped => e.damped_outdoor_c,
                    OutdoorInput::Actual => e.outdoor_c,
                },
                setpoint_c: e.setpoint_c,
                t2_supply_c: s.valid_value(Signal::T2Supply),
            }
        });
        // The range plotted: -35..20 °C, widened to the curve's points and the operating point.
        let mut lo = -35.0_f64;
        let mut hi = 20.0_f64;
        for p in cfg.curve.points.iter().flatten() {
            lo = lo.min(p.outdoor_c - 5.0);
            hi = hi.max(p.outdoor_c + 5.0);
        }
        if let Some(x) = operating_point.and_then(|o| o.outdoor_c) {
            lo = lo.min(x - 5.0);
            hi = hi.max(x + 5.0);
        }
        let (lo, hi) = (lo.max(-60.0).floor() as i32, hi.min(50.0).ceil() as i32);
        let points = (lo..=hi)
            .map(f64::from)
            .map(|x| {
                let raw = curve.raw_c(x);
                CurvePoint {
                    outdoor_c: x,
                    curve_c: round2(raw),
                    shifted_c: round2((raw + base + demand + valve).clamp(min_c, max_c)),
                }
            })
            .collect();
        Self {
            points,
            t2_supply_min_c: min_c,
            t2_supply_max_c: max_c,
            base_shift_k: base,
            demand_shift_k: demand,
            valve_demand_shift_k: valve,
            operating_point,
        }
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

async fn curve(State(st): State<AppState>) -> Response {
    let snap = latest(&st);
    to_json(
        StatusCode::OK,
        &CurveView::of(&st.ctx.configs.borrow().clone(), snap.as_deref()),
    )
}

/// Query of `/api/audit`.
#[derive(Debug, Deserialize)]
struct AuditQuery {
    /// How many records, newest last.
    n: Option<usize>,
}

async fn audit(State(st): State<AppState>, q: Query<AuditQuery>) -> Response {
    let n = q.n.unwrap_or(AUDIT_DEFAULT_N).min(AUDIT_TAIL);
    to_json(StatusCode::OK, &st.ctx.audit.tail(n))
}

async fn doc() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/markdown; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        API_DOC,
    )
        .into_response()
}

/// The body of `POST /api/settings`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingBody {
    name: String,
    value: Value,
}

fn refused(status: StatusCode, reason: impl Into<String>) -> Response {
    to_json(status, &ChangeOutcome::refused(reason))
}

async fn settings(
    State(st): State<AppState>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(expected) = &st.token else {
        let why = st
            .read_only_reason
            .clone()
            .unwrap_or_else(|| "no write token is configured".into());
        return refused(
            StatusCode::FORBIDDEN,
            format!("the page is read-only: {why}"),
        );
    };
    match bearer(headers.get(header::AUTHORIZATION)) {
        None => {
            return refused(
                StatusCode::UNAUTHORIZED,
                "a write needs the header Authorization: Bearer <token>",
            );
        }
        Some(given) if !tokens_match(given, expected) => {
            tracing::warn!(%peer, "web: settings write with a wrong token");
            return refused(StatusCode::UNAUTHORIZED, "wrong token");
        }
        Some(_) => {}
    }
    let client = peer.to_string();
    let refuse_unparsed = |status: StatusCode, reason: String| {
        let outcome = ChangeOutcome::refused(reason);
        st.ctx.gate.refuse(
            &ChangeRequest {
                source: Source::Web,
                client: client.clone(),
                change: Change::Setting {
                    name: "(unreadable request)".into(),
                    value: Value::Null,
                },
            },
            &outcome,
        );
        to_json(status, &outcome)
    };
    let body = match body {
        Ok(b) => b,
        Err(rej) if rej.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return refuse_unparsed(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
            );
        }
        Err(rej) => {
            return refuse_unparsed(
                rej.status(),
                format!("unreadable body: {}", rej.body_text()),
            );
        }
    };
    let req: SettingBody = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return refuse_unparsed(
                StatusCode::BAD_REQUEST,
                format!(
                    "the body must be JSON {{\"name\": \"<setting>\", \"value\": <value>}}: {e}"
                ),
            );
        }
    };
    let outcome = st
        .ctx
        .gate
        .submit(ChangeRequest {
            source: Source::Web,
            client,
            change: Change::Setting {
                name: req.name,
                value: req.value,
            },
        })
        .await;
    let status = if outcome.accepted {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    to_json(status, &outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_from_accept_language() {
        assert_eq!(default_language(None), "en");
        assert_eq!(default_language(Some("zh-CN,zh;q=0.9,en;q=0.8")), "zh-CN");
        assert_eq!(default_language(Some("en-US,en;q=0.9,zh-CN;q=0.8")), "en");
        assert_eq!(default_language(Some("fr-FR, zh-TW;q=0.5")), "zh-CN");
        assert_eq!(default_language(Some("de")), "en");
        assert_eq!(default_language(Some("zh;q=0, en")), "en");
        assert_eq!(default_language(Some("en;q=0.4, zh;q=0.6")), "zh-CN");
        assert_eq!(default_language(Some(";;;,q=,zh;q=abc")), "zh-CN");
    }
}
