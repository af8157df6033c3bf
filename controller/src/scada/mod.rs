//! The SCADA face: a Modbus TCP slave for the utility's control system (off by default).
//!
//! Measurements, the explanation, alarms and device health are input registers, written by
//! name from each cycle's [`StationSnapshot`]; settings are holding registers, writable only when named in
//! `scada.writable` and range-checked. The layout is [`map`], the single table that the slave
//! and `heatctl scada-map` both read.

pub mod map;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_modbus::prelude::{ExceptionCode, Request, Response};

use crate::control::SupervisorAction;
use crate::gate::{Change, ChangeOutcome, ChangeRequest, Gate, Refusal, Source};
use crate::station::{OperatorSettings, StationSnapshot};
use map::{Encoding, HOLDING_REGISTERS, INPUT_IMAGE_LEN, INPUT_REGISTERS, RegisterDef};

/// What the slave serves, shared with the runtime.
#[derive(Debug)]
pub struct ScadaShared {
    inner: Mutex<ScadaImage>,
    gate: Gate,
    counts: Mutex<ConnectionCounts>,
}

#[derive(Debug)]
struct ScadaImage {
    input: Vec<u16>,
    holding: Vec<u16>,
    unit_id: u8,
}

impl ScadaShared {
    /// An empty image (everything unknown); writes go through `gate` (its `scada` allowlist).
    #[must_use]
    pub fn new(unit_id: u8, gate: Gate) -> Self {
        let mut input = vec![0u16; usize::from(INPUT_IMAGE_LEN)];
        for r in INPUT_REGISTERS {
            let words = r.encoding.encode_words(None);
            let at = usize::from(r.address);
            for (i, w) in words
                .iter()
                .take(usize::from(r.encoding.words()))
                .enumerate()
            {
                input[at + i] = *w;
            }
        }
        Self {
            inner: Mutex::new(ScadaImage {
                input,
                holding: HOLDING_REGISTERS
                    .iter()
                    .map(|r| r.encoding.encode(None))
                    .collect(),
                unit_id,
            }),
            gate,
            counts: Mutex::new(ConnectionCounts::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ScadaImage> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Replace the unit id (configuration reload; the allowlist is the gate's).
    pub fn set_unit_id(&self, unit_id: u8) {
        self.lock().unit_id = unit_id;
    }

    /// Publish a station snapshot: the input registers, and the settings in force in the
    /// holding registers (by name).
    pub fn publish(&self, snapshot: &StationSnapshot) {
        let input = input_image(snapshot);
        let mut g = self.lock();
        g.input = input;
        for (slot, def) in g.holding.iter_mut().zip(HOLDING_REGISTERS) {
            if let Some(v) = setting(&snapshot.settings, def.name) {
                *slot = def.encoding.encode(Some(v));
            }
        }
    }

    /// Raw holding registers as served.
    #[must_use]
    pub fn holding(&self) -> Vec<u16> {
        self.lock().holding.clone()
    }

    fn read(&self, holding: bool, addr: u16, count: u16) -> Result<Vec<u16>, ExceptionCode> {
        let g = self.lock();
        let table = if holding { &g.holding } else { &g.input };
        let start = usize::from(addr);
        let end = start + usize::from(count);
        if count == 0 || count > 125 || end > table.len() {
            return Err(ExceptionCode::IllegalDataAddress);
        }
        Ok(table[start..end].to_vec())
    }

    /// Check a whole write through the gate, then hand it to the runtime; nothing changes when
    /// any register is refused (the refusal is audited).
    fn write(&self, addr: u16, words: &[u16]) -> Result<(), ExceptionCode> {
        let mut g = self.lock();
        let mut checked = Vec::with_capacity(words.len());
        for (i, &raw) in words.iter().enumerate() {
            let a = usize::from(addr) + i;
            let Some(def) = HOLDING_REGISTERS.get(a) else {
                return Err(ExceptionCode::IllegalDataAddress);
            };
            let value = def.encoding.decode(raw);
            let request = ChangeRequest {
                source: Source::Scada,
                client: "modbus-tcp".into(),
                change: Change::Setting {
                    name: def.name.into(),
                    value: serde_json::Value::from(value),
                },
            };
            let result = if raw == 0x8000 && def.encoding != Encoding::U16 {
                Err(Refusal::BadValue(format!(
                    "{}: the \"unknown\" value",
                    def.name
                )))
            } else {
                self.gate
                    .check_setting(Source::Scada, def.name, &serde_json::Value::from(value))
            };
            match result {
                Ok(setting) => checked.push((a, raw, request, setting)),
                Err(refusal) => {
                    self.gate
                        .refuse(&request, &ChangeOutcome::refused(refusal.reason()));
                    return Err(match refusal {
                        Refusal::BadValue(_) => ExceptionCode::IllegalDataValue,
                        Refusal::Unknown(_) | Refusal::NotWritable(_) => {
                            ExceptionCode::IllegalDataAddress
                        }
                    });
                }
            }
        }
        for (a, raw, request, setting) in checked {
            g.holding[a] = raw;
            if !self.gate.send_checked(request, setting) {
                return Err(ExceptionCode::ServerDeviceFailure);
            }
        }
        Ok(())
    }

    fn handle(&self, unit: u8, request: Request<'_>) -> Result<Response, ExceptionCode> {
        let ours = self.lock().unit_id;
        if unit != ours && unit != 0 && unit != 255 {
            return Err(ExceptionCode::GatewayTargetDevice);
        }
        match request {
            Request::ReadInputRegisters(a, n) => {
                self.read(false, a, n).map(Response::ReadInputRegisters)
            }
            Request::ReadHoldingRegisters(a, n) => {
                self.read(true, a, n).map(Response::ReadHoldingRegisters)
            }
            Request::WriteSingleRegister(a, w) => self
                .write(a, &[w])
                .map(|()| Response::WriteSingleRegister(a, w)),
            Request::WriteMultipleRegisters(a, words) => {
                let n = u16::try_from(words.len()).map_err(|_| ExceptionCode::IllegalDataValue)?;
                if n == 0 || n > 123 {
                    return Err(ExceptionCode::IllegalDataValue);
                }
                self.write(a, &words)
                    .map(|()| Response::WriteMultipleRegisters(a, n))
            }
            _ => Err(ExceptionCode::IllegalFunction),
        }
    }

    /// Answer one complete Modbus TCP request ADU (MBAP header and PDU, as [`adu_len`] cut
    /// it): the response ADU, or None when the frame is not a request (a function code of
    /// 0x80 or above marks a response) and is dropped.
    ///
    /// A PDU whose length does not fit its function gets exception 03, an unknown function
    /// exception 01, another unit id exception 0B; the header's transaction id and unit id
    /// are echoed.
    #[must_use]
    pub fn respond_adu(&self, adu: &[u8]) -> Option<Vec<u8>> {
        let (header, pdu) = adu.split_at_checked(MBAP_LEN)?;
        let (&function, body) = pdu.split_first()?;
        if function >= 0x80 {
            return None;
        }
        let unit = header[6];
        let answer = match decode_request(function, body) {
            Ok(request) => self.handle(unit, request),
            Err(e) => {
                let ours = self.lock().unit_id;
                if unit != ours && unit != 0 && unit != 255 {
                    Err(ExceptionCode::GatewayTargetDevice)
                } else {
                    Err(e)
                }
            }
        };
        let mut out = Vec::with_capacity(MAX_ADU);
        out.extend_from_slice(&header[..4]);
        out.extend_from_slice(&[0, 0, unit]);
        match answer {
            Ok(Response::ReadInputRegisters(words) | Response::ReadHoldingRegisters(words)) => {
                out.push(function);
                // At most 125 words (checked by `read`): 250 bytes.
                out.push(u8::try_from(words.len() * 2).unwrap_or(u8::MAX));
                for w in words {
                    out.extend_from_slice(&w.to_be_bytes());
                }
            }
            Ok(Response::WriteSingleRegister(a, w)) => {
                out.push(function);
                out.extend_from_slice(&a.to_be_bytes());
                out.extend_from_slice(&w.to_be_bytes());
            }
            Ok(Response::WriteMultipleRegisters(a, n)) => {
                out.push(function);
                out.extend_from_slice(&a.to_be_bytes());
                out.extend_from_slice(&n.to_be_bytes());
            }
            Ok(_) => {
                out.push(function | 0x80);
                out.push(u8::from(ExceptionCode::ServerDeviceFailure));
            }
            Err(e) => {
                out.push(function | 0x80);
                out.push(u8::from(e));
            }
        }
        // Unit id and PDU: at most 1 + 252 bytes.
        let len = u16::try_from(out.len() - 6).unwrap_or(u16::MAX);
        out[4..6].copy_from_slice(&len.to_be_bytes());
        Some(out)
    }
}

/// Length of the Modbus TCP header (MBAP): transaction id, protocol id, length, unit id.
pub const MBAP_LEN: usize = 7;
/// Largest Modbus TCP ADU: the header and a PDU of at most 253 bytes.
pub const MAX_ADU: usize = MBAP_LEN + 253;

/// How much of a connection's received bytes form the first request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AduLen {
    /// Not yet a whole request.
    Incomplete,
    /// The first this many bytes are one request ADU.
    Complete(usize),
    /// Not Modbus TCP (protocol id not 0, or a length outside 2..=254): the stream cannot be
    /// resynchronised and the connection is closed.
    Broken(&'static str),
}

/// Cut the first request ADU from the bytes received on a connection, checking the header as
/// soon as its fields arrive (a broken stream is known before it is complete).
#[must_use]
pub fn adu_len(buf: &[u8]) -> AduLen {
    if let [_, _, p0, p1, ..] = buf
        && (*p0, *p1) != (0, 0)
    {
        return AduLen::Broken("protocol id is not 0 (not Modbus TCP)");
    }
    let Some(&[l0, l1]) = buf.get(4..6) else {
        return AduLen::Incomplete;
    };
    let len = usize::from(u16::from_be_bytes([l0, l1]));
    if !(2..=254).contains(&len) {
        return AduLen::Broken("length field outside 2..254");
    }
    let total = 6 + len;
    if buf.len() < total {
        AduLen::Incomplete
    } else {
        AduLen::Complete(total)
    }
}

/// Decode a request PDU's body (after the function code) for the functions the slave serves;
/// a length that does not fit the function is exception 03, another function exception 01.
fn decode_request(function: u8, body: &[u8]) -> Result<Request<'static>, ExceptionCode> {
    let word = |i: usize| u16::from_be_bytes([body[i], body[i + 1]]);
    match function {
        0x03 | 0x04 | 0x06 if body.len() != 4 => Err(ExceptionCode::IllegalDataValue),
        0x03 => Ok(Request::ReadHoldingRegisters(word(0), word(2))),
        0x04 => Ok(Request::ReadInputRegisters(word(0), word(2))),
        0x06 => Ok(Request::WriteSingleRegister(word(0), word(2))),
        0x10 => {
            let [a0, a1, n0, n1, bytes, data @ ..] = body else {
                return Err(ExceptionCode::IllegalDataValue);
            };
            let n = u16::from_be_bytes([*n0, *n1]);
            if n == 0
                || n > 123
                || usize::from(*bytes) != 2 * usize::from(n)
                || data.len() != usize::from(*bytes)
            {
                return Err(ExceptionCode::IllegalDataValue);
            }
            let words = data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect::<Vec<_>>();
            Ok(Request::WriteMultipleRegisters(
                u16::from_be_bytes([*a0, *a1]),
                words.into(),
            ))
        }
        _ => Err(ExceptionCode::IllegalFunction),
    }
}

/// The input registers being filled, written by register name from [`INPUT_REGISTERS`].
struct InputWriter {
    words: Vec<u16>,
    /// Names written that the map does not have (a test proves there are none).
    unknown: Vec<&'static str>,
}

impl InputWriter {
    /// Every register 0: unwritten slots (alarm codes after the last, devices after the last)
    /// read 0.
    fn new() -> Self {
        Self {
            words: vec![0u16; usize::from(INPUT_IMAGE_LEN)],
            unknown: Vec::new(),
        }
    }

    /// The map's register `name` (None, and noted, when the map has none).
    fn def(&mut self, name: &'static str) -> Option<&'static RegisterDef> {
        let def = INPUT_REGISTERS.iter().find(|r| r.name == name);
        if def.is_none() {
            self.unknown.push(name);
        }
        def
    }

    /// Write `value` to register `def` plus `offset` (for the blocks), in its encoding (both
    /// registers of a two-register encoding).
    fn put(&mut self, def: Option<&RegisterDef>, offset: usize, value: Option<f64>) {
        if let Some(def) = def {
            let at = usize::from(def.address) + offset;
            let words = def.encoding.encode_words(value);
            for (i, w) in words
                .iter()
                .take(usize::from(def.encoding.words()))
                .enumerate()
            {
                if let Some(slot) = self.words.get_mut(at + i) {
                    *slot = *w;
                }
            }
        }
    }

    /// Write `value` to register `name`, in its encoding.
    fn set(&mut self, name: &'static str, value: Option<f64>) {
        let def = self.def(name);
        self.put(def, 0, value);
    }
}

/// A count as a register value.
fn count(n: usize) -> Option<f64> {
    Some(n as f64)
}

/// Code of a supervisor action on SCADA: 0 none, 1 hold, 2 safe position, 3 frost, 4 cut.
fn supervisor_code(action: Option<SupervisorAction>) -> u16 {
    match action {
        None => 0,
        Some(SupervisorAction::HoldOnSensorLoss) => 1,
        Some(SupervisorAction::SafePosition) => 2,
        Some(SupervisorAction::Frost) => 3,
        Some(SupervisorAction::OverTemperatureCut) => 4,
    }
}

fn fill_input(snapshot: &StationSnapshot) -> InputWriter {
    let mut w = InputWriter::new();
    let ex = &snapshot.explanation;
    let mut valid_bits = 0u16;
    for m in &snapshot.measurements {
        let def = w.def(m.signal.name());
        w.put(def, 0, m.value);
        if let Some(def) = def
            && m.valid
            && def.address < 16
        {
            valid_bits |= 1 << def.address;
        }
    }
    w.set("signals_valid", Some(f64::from(valid_bits)));
    w.set("setpoint_c", ex.setpoint_c);
    w.set("curve_c", Some(ex.curve_c));
    w.set("base_shift_k", Some(ex.base_shift_k));
    w.set("demand_shift_k", Some(ex.demand_shift_k));
    w.set("valve_demand_shift_k", Some(ex.valve_demand_shift_k));
    let limiter = ex.active_limiter.map_or(0, |l| l.code());
    w.set("active_limiter", Some(f64::from(limiter)));
    w.set(
        "supervisor",
        Some(f64::from(supervisor_code(ex.supervisor))),
    );
    w.set("heating_on", Some(f64::from(u8::from(ex.heating_on))));
    w.set("valve1_cmd_pct", Some(snapshot.commands.valve1_cmd_pct));
    w.set("mode", Some(f64::from(snapshot.settings.mode.code())));
    let rooms = &snapshot.rooms;
    w.set("rooms_expected", count(rooms.stats.expected));
    w.set("rooms_used", count(rooms.stats.used));
    w.set("rooms_percentile_c", rooms.stats.percentile_c);
    w.set("rooms_median_c", rooms.stats.median_c);
    w.set("outdoor_used_c", ex.outdoor_c);
    w.set("damped_outdoor_c", ex.damped_outdoor_c);
    // Modulo 65535, not 65536: 0xFFFF reads as unknown in an unsigned register.
    w.set(
        "cycle_count",
        Some((snapshot.station.cycle % 65_535) as f64),
    );
    w.set(
        "clock_synced",
        snapshot.clock.synced.map(|s| f64::from(u8::from(s))),
    );
    let pump = snapshot.commands.pump2.as_ref();
    w.set("pump2_mode", Some(f64::from(pump.map_or(0, |p| p.codes.0))));
    w.set(
        "pump2_dp_setpoint_kpa",
        pump.and_then(|p| p.dp_setpoint_kpa),
    );
    w.set("pump2_speed_cmd_pct", pump.map(|p| p.speed_cmd_pct));
    w.set("pump2_dry_run", pump.map(|p| f64::from(p.codes.1)));
    w.set("pump2_reason", pump.map(|p| f64::from(p.codes.2)));
    w.set("alarm_count", count(snapshot.alarms.len()));
    let alarm_codes = w.def("alarm_codes");
    for (slot, alarm) in snapshot
        .alarms
        .iter()
        .take(usize::from(map::ALARM_SLOTS))
        .enumerate()
    {
        w.put(alarm_codes, slot, Some(f64::from(alarm.code.number())));
    }
    let devices = &snapshot.devices;
    w.set("devices_total", count(devices.len()));
    w.set(
        "devices_lost",
        count(devices.iter().filter(|d| d.comm_lost).count()),
    );
    let health = w.def("device_health");
    for (i, d) in devices
        .iter()
        .take(usize::from(map::DEVICE_HEALTH_MAX))
        .enumerate()
    {
        let base = i * usize::from(map::DEVICE_HEALTH_STRIDE);
        let s = &d.stats;
        let flags = u16::from(d.connected) | (u16::from(s.write_failed) << 1);
        w.put(health, base, Some(f64::from(flags)));
        w.put(health, base + 1, Some((s.requests & 0xFFFF) as f64));
        w.put(health, base + 2, Some((s.errors & 0xFFFF) as f64));
        let latency = s.last_latency_ms.map(|ms| ms.round().clamp(0.0, 65534.0));
        w.put(health, base + 3, latency);
    }
    w
}

/// The input registers of a station snapshot.
#[must_use]
pub fn input_image(snapshot: &StationSnapshot) -> Vec<u16> {
    fill_input(snapshot).words
}

/// A setting's engineering value for holding register `name`.
fn setting(settings: &OperatorSettings, name: &str) -> Option<f64> {
    Some(match name {
        "curve_shift_k" => settings.curve_shift_k,
        "operating_mode" => f64::from(settings.mode.code()),
        "room_target_c" => settings.room_target_c,
        "demand_enabled" => f64::from(u8::from(settings.demand_enabled)),
        "valve1_manual_pct" => settings.valve1_manual_pct,
        _ => return None,
    })
}

/// Connection limits of the slave: how many clients at once and how long one may stay silent
/// or take to send a request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Most simultaneous connections. A new client arriving when they are all taken closes
    /// the longest-idle one (see [`serve`]); it is refused only when every connection is in
    /// the middle of a request.
    pub max_connections: u32,
    /// A connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// A request (or the answer's delivery) taking longer than this is abandoned and its
    /// connection closed: a client trickling bytes cannot hold a slot.
    pub request_timeout: Duration,
}

impl Limits {
    /// The limits of a `[scada]` table.
    #[must_use]
    pub fn of(cfg: &crate::config::Scada) -> Self {
        Self {
            max_connections: cfg.max_connections,
            idle_timeout: Duration::from_secs_f64(cfg.idle_timeout_s),
            request_timeout: Duration::from_secs_f64(cfg.request_timeout_s),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::of(&crate::config::Scada::default())
    }
}

/// What the slave's connections have been through since it started (read with
/// [`ScadaShared::connection_counts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionCounts {
    /// Connections open now.
    pub open: u32,
    /// The most connections ever open at once (never above the cap).
    pub open_max: u32,
    /// Connections accepted and served.
    pub accepted: u64,
    /// Idle connections closed to make room for a new client.
    pub evicted: u64,
    /// New clients refused: the cap was taken by connections in the middle of a request.
    pub refused: u64,
}

impl ScadaShared {
    /// The slave's connection counters.
    #[must_use]
    pub fn connection_counts(&self) -> ConnectionCounts {
        *self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn count(&self, f: impl FnOnce(&mut ConnectionCounts)) {
        f(&mut self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner));
    }
}

/// One open connection as the accept loop sees it, to choose whom to close for a new client.
#[derive(Debug)]
struct ConnState {
    id: u64,
    peer: SocketAddr,
    connected: Instant,
    /// When its last request was answered (None: it has never completed one).
    last_request: Option<Instant>,
    /// Requests it has had answered.
    answered: u64,
    /// When the request being received started (None between requests).
    request_since: Option<Instant>,
    /// Chosen to make room: it closes at once and takes no further request.
    evicted: bool,
    evict: Arc<Notify>,
}

/// The open connections of one slave.
#[derive(Debug, Default)]
struct Registry {
    conns: Vec<ConnState>,
    next_id: u64,
}

fn lock_registry(r: &Mutex<Registry>) -> MutexGuard<'_, Registry> {
    r.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Answered requests from which a connection counts as an established poller: a SCADA master
/// asks again and again on one connection, a flood that connects, asks once and holds (or
/// reconnects) never gets there.
const ESTABLISHED_REQUESTS: u64 = 3;

/// Which connection to close for a new client when the cap is taken: a connection that is
/// not an established poller (fewer than [`ESTABLISHED_REQUESTS`] answered) before one that
/// is, and among those the longest idle, where idle means no complete request, so a
/// connection that has never completed one is the idlest (the oldest of those first), then
/// the one whose last request is the oldest. So a master polling on its connection is closed
/// only when every other connection polls as well. A connection in the middle of a request
/// still within `request_timeout` is never chosen (past it, its own timeout is closing it
/// anyway). None: every connection is busy.
fn eviction_victim(conns: &[ConnState], now: Instant, request_timeout: Duration) -> Option<usize> {
    conns
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.evicted)
        .filter(|(_, c)| {
            c.request_since
                .is_none_or(|t| now.saturating_duration_since(t) >= request_timeout)
        })
        .min_by_key(|(_, c)| {
            (
                c.answered >= ESTABLISHED_REQUESTS,
                c.last_request,
                c.connected,
            )
        })
        .map(|(i, _)| i)
}

/// A connection's place in the registry: updated as requests come and go, removed on drop
/// (which frees the slot and wakes the accept loop).
#[derive(Debug)]
struct ConnHandle {
    id: u64,
    registry: Arc<Mutex<Registry>>,
    freed: Arc<Notify>,
    evict: Arc<Notify>,
    shared: Arc<ScadaShared>,
}

impl ConnHandle {
    /// Bytes arrived: a request starts at `t` unless one is under way. False when the
    /// connection was chosen for eviction before (it closes without serving them).
    fn receiving(&self, t: Instant) -> bool {
        let mut r = lock_registry(&self.registry);
        let Some(c) = r.conns.iter_mut().find(|c| c.id == self.id) else {
            return false;
        };
        if c.evicted {
            return false;
        }
        c.request_since.get_or_insert(t);
        true
    }

    /// After the received bytes were handled: `answered` whether a request was completed,
    /// `partial` when the next request has started at that time.
    fn handled(&self, answered: bool, partial: Option<Instant>) {
        let mut r = lock_registry(&self.registry);
        if let Some(c) = r.conns.iter_mut().find(|c| c.id == self.id) {
            if answered {
                c.last_request = Some(Instant::now());
                c.answered += 1;
            }
            c.request_since = partial;
        }
    }
}

impl Drop for ConnHandle {
    fn drop(&mut self) {
        let open = {
            let mut r = lock_registry(&self.registry);
            r.conns.retain(|c| c.id != self.id);
            r.conns.len()
        };
        self.shared
            .count(|c| c.open = u32::try_from(open).unwrap_or(u32::MAX));
        self.freed.notify_one();
    }
}

/// Why a connection ended.
#[derive(Debug)]
enum Closed {
    /// The client closed it.
    ByClient,
    /// No request within the idle timeout.
    Idle,
    /// A request not complete (or its answer not taken) within the request timeout.
    Slow,
    /// Closed to make room for a new client (it was the longest idle).
    Evicted,
    /// Not Modbus TCP.
    Broken(&'static str),
    /// A socket error.
    Io(std::io::Error),
}

/// Serve one connection until the client leaves, breaks the protocol, is too slow, or is
/// evicted for a new client.
async fn serve_connection(
    mut stream: tokio::net::TcpStream,
    conn: &ConnHandle,
    limits: Limits,
) -> Closed {
    let shared = &conn.shared;
    let mut buf: Vec<u8> = Vec::with_capacity(2 * MAX_ADU);
    let mut chunk = [0u8; MAX_ADU];
    // When the request being received started (None between requests).
    let mut started: Option<Instant> = None;
    loop {
        let deadline = match started {
            Some(t) => t + limits.request_timeout,
            None => Instant::now() + limits.idle_timeout,
        };
        let read = tokio::select! {
            biased;
            () = conn.evict.notified() => return Closed::Evicted,
            read = tokio::time::timeout_at(deadline, stream.read(&mut chunk)) => read,
        };
        let n = match read {
            Err(_) if started.is_some() => return Closed::Slow,
            Err(_) => return Closed::Idle,
            Ok(Ok(0)) => return Closed::ByClient,
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Closed::Io(e),
        };
        let t = started.unwrap_or_else(Instant::now);
        if !conn.receiving(t) {
            return Closed::Evicted;
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut answered = false;
        loop {
            match adu_len(&buf) {
                AduLen::Incomplete => break,
                AduLen::Broken(why) => return Closed::Broken(why),
                AduLen::Complete(len) => {
                    if let Some(answer) = shared.respond_adu(&buf[..len]) {
                        let sent =
                            tokio::time::timeout(limits.request_timeout, stream.write_all(&answer))
                                .await;
                        match sent {
                            Err(_) => return Closed::Slow,
                            Ok(Err(e)) => return Closed::Io(e),
                            Ok(Ok(())) => {}
                        }
                    }
                    answered = true;
                    buf.drain(..len);
                }
            }
        }
        // A request partly received keeps the time its first byte came.
        started = (!buf.is_empty()).then_some(t);
        conn.handled(answered, started);
    }
}

/// A kind of event logged a line a minute at most, with the count since the last line, so a
/// flood cannot flood the log.
#[derive(Debug, Default)]
struct RateLimited {
    count: u64,
    logged: Option<Instant>,
}

impl RateLimited {
    /// Count one event; the count to log when a line is due (and reset), else None.
    fn event(&mut self) -> Option<u64> {
        self.count += 1;
        if self
            .logged
            .is_none_or(|t| t.elapsed() >= CONNECTION_LOG_PERIOD)
        {
            let n = self.count;
            self.count = 0;
            self.logged = Some(Instant::now());
            Some(n)
        } else {
            None
        }
    }
}

/// Shortest time between two log lines about evicted or refused connections.
const CONNECTION_LOG_PERIOD: Duration = Duration::from_secs(60);
/// Per-connection lines (connected, disconnected, idle, too slow, not Modbus) logged at info
/// or warning level per
/// [`CONNECTION_LOG_PERIOD`]; past it they go to debug level, so a flood cannot flood the log.
const CONNECTION_LINES_PER_PERIOD: u64 = 20;
/// How long a new client waits for the connection it evicted to close.
const EVICTION_WAIT: Duration = Duration::from_secs(1);

/// The accept loop's log: per-connection lines on a budget, evictions and refusals summarised.
#[derive(Debug, Default)]
struct ConnectionLog {
    lines: RateLimited,
    evictions: RateLimited,
    refusals: RateLimited,
}

impl ConnectionLog {
    /// Whether a per-connection line may go out at info level now.
    fn line_allowed(&mut self) -> bool {
        if self
            .lines
            .logged
            .is_none_or(|t| t.elapsed() >= CONNECTION_LOG_PERIOD)
        {
            self.lines.logged = Some(Instant::now());
            self.lines.count = 0;
        }
        self.lines.count += 1;
        self.lines.count <= CONNECTION_LINES_PER_PERIOD
    }
}

fn lock_log(l: &Mutex<ConnectionLog>) -> MutexGuard<'_, ConnectionLog> {
    l.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Admit a new client from `peer`: a free slot, else a connection is evicted ([`eviction_victim`])
/// and its slot awaited (at most [`EVICTION_WAIT`]). None when every connection is in the
/// middle of a request (refused).
async fn admit(
    registry: &Arc<Mutex<Registry>>,
    freed: &Arc<Notify>,
    shared: &Arc<ScadaShared>,
    limits: Limits,
    peer: SocketAddr,
    log: &Mutex<ConnectionLog>,
) -> Option<ConnHandle> {
    let cap = usize::try_from(limits.max_connections.max(1)).unwrap_or(usize::MAX);
    let deadline = Instant::now() + EVICTION_WAIT;
    let mut evicting = false;
    loop {
        let notified = freed.notified();
        {
            let mut r = lock_registry(registry);
            let now = Instant::now();
            if r.conns.len() < cap {
                let id = r.next_id;
                r.next_id += 1;
                let evict = Arc::new(Notify::new());
                r.conns.push(ConnState {
                    id,
                    peer,
                    connected: now,
                    last_request: None,
                    answered: 0,
                    request_since: None,
                    evicted: false,
                    evict: Arc::clone(&evict),
                });
                let open = u32::try_from(r.conns.len()).unwrap_or(u32::MAX);
                drop(r);
                shared.count(|c| {
                    c.open = open;
                    c.open_max = c.open_max.max(open);
                    c.accepted += 1;
                });
                return Some(ConnHandle {
                    id,
                    registry: Arc::clone(registry),
                    freed: Arc::clone(freed),
                    evict,
                    shared: Arc::clone(shared),
                });
            }
            if !evicting {
                let i = eviction_victim(&r.conns, now, limits.request_timeout)?;
                let victim = &mut r.conns[i];
                victim.evicted = true;
                victim.evict.notify_one();
                let (victim_peer, idle_s) = (
                    victim.peer,
                    now.saturating_duration_since(victim.last_request.unwrap_or(victim.connected))
                        .as_secs_f64(),
                );
                let never = victim.last_request.is_none();
                drop(r);
                evicting = true;
                shared.count(|c| c.evicted += 1);
                if let Some(n) = lock_log(log).evictions.event() {
                    tracing::warn!(
                        %peer,
                        evicted = %victim_peer,
                        evicted_idle_s = idle_s,
                        evicted_never_asked = never,
                        max_connections = limits.max_connections,
                        evictions = n,
                        "SCADA connections full: the longest-idle one closed for a new client \
                         (count since the last such line)"
                    );
                }
            }
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return None;
        }
    }
}

/// Bind `listen` and serve until the returned task is aborted (which closes every connection).
///
/// At most `limits.max_connections` clients at once. When they are all taken, a new client
/// closes the longest-idle connection (see [`eviction_victim`]: one that is not an
/// established poller before one that is, and among each one that has never completed a
/// request first, then the one whose last request is the oldest; never one in the middle of a
/// request within its timeout) and is served in its place, so clients holding idle
/// connections cannot lock the SCADA master out; it is refused (closed at once) only when
/// every connection is in the middle of a request. A silent or trickling client is closed
/// after its timeout. Evictions and refusals are counted
/// ([`ScadaShared::connection_counts`]) and logged a line a minute at most, with the count.
///
/// # Errors
/// The address cannot be parsed or bound.
pub fn serve(
    listen: &str,
    limits: Limits,
    shared: Arc<ScadaShared>,
) -> crate::BoxFuture<'_, std::io::Result<(SocketAddr, JoinHandle<()>)>> {
    Box::pin(serve_inner(listen, limits, shared))
}

async fn serve_inner(
    listen: &str,
    limits: Limits,
    shared: Arc<ScadaShared>,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let local = listener.local_addr()?;
    let registry = Arc::new(Mutex::new(Registry::default()));
    let freed = Arc::new(Notify::new());
    let log = Arc::new(Mutex::new(ConnectionLog::default()));
    let task = tokio::spawn(async move {
        // Dropped with the task: aborting the server closes its connections.
        let mut connections = tokio::task::JoinSet::new();
        loop {
            while connections.try_join_next().is_some() {}
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, most likely: wait rather than spin.
                    tracing::warn!(error = %e, "SCADA cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Some(conn) = admit(&registry, &freed, &shared, limits, peer, &log).await else {
                shared.count(|c| c.refused += 1);
                if let Some(n) = lock_log(&log).refusals.event() {
                    tracing::warn!(
                        %peer,
                        max_connections = limits.max_connections,
                        refused = n,
                        "SCADA connections refused: every connection is in the middle of a \
                         request (count since the last such line)"
                    );
                }
                drop(stream);
                continue;
            };
            if lock_log(&log).line_allowed() {
                tracing::info!(%peer, "SCADA client connected");
            } else {
                tracing::debug!(%peer, "SCADA client connected");
            }
            let log = Arc::clone(&log);
            connections.spawn(async move {
                stream.set_nodelay(true).ok();
                let closed = serve_connection(stream, &conn, limits).await;
                drop(conn);
                let info = match &closed {
                    Closed::Evicted | Closed::Io(_) => false,
                    _ => lock_log(&log).line_allowed(),
                };
                match closed {
                    Closed::ByClient if info => tracing::info!(%peer, "SCADA client disconnected"),
                    Closed::ByClient => tracing::debug!(%peer, "SCADA client disconnected"),
                    Closed::Idle if info => tracing::info!(%peer, timeout_s = limits.idle_timeout.as_secs_f64(), "SCADA client closed: idle"),
                    Closed::Idle => tracing::debug!(%peer, timeout_s = limits.idle_timeout.as_secs_f64(), "SCADA client closed: idle"),
                    // Counted and summarised by the accept loop.
                    Closed::Evicted => tracing::debug!(%peer, "SCADA client closed: the longest idle, for a new client"),
                    Closed::Slow if info => tracing::warn!(%peer, timeout_s = limits.request_timeout.as_secs_f64(), "SCADA client closed: request too slow"),
                    Closed::Slow => tracing::debug!(%peer, timeout_s = limits.request_timeout.as_secs_f64(), "SCADA client closed: request too slow"),
                    Closed::Broken(why) if info => tracing::warn!(%peer, why, "SCADA client closed: not Modbus TCP"),
                    Closed::Broken(why) => tracing::debug!(%peer, why, "SCADA client closed: not Modbus TCP"),
                    Closed::Io(e) => tracing::debug!(%peer, error = %e, "SCADA connection closed"),
                }
            });
        }
    });
    Ok((local, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(writable: &[&str]) -> (ScadaShared, crate::gate::GateReceiver) {
        let (gate, rx) = Gate::new(
            crate::gate::Access {
                scada: writable.iter().map(|s| (*s).to_owned()).collect(),
                ..Default::default()
            },
            crate::audit::Audit::in_memory(),
        );
        (ScadaShared::new(1, gate), rx)
    }

    #[test]
    fn allowlist_and_ranges() {
        let (s, mut rx) = shared(&["curve_shift_k", "room_target_c"]);
        assert_eq!(s.write(0, &[25]), Ok(()));
        assert_eq!(
            rx.try_recv().ok().and_then(|m| m.setting),
            Some(crate::gate::Setting::CurveShiftK(2.5))
        );
        assert_eq!(s.write(0, &[301]), Err(ExceptionCode::IllegalDataValue));
        assert_eq!(s.write(1, &[1]), Err(ExceptionCode::IllegalDataAddress));
        assert_eq!(s.write(9, &[1]), Err(ExceptionCode::IllegalDataAddress));
        // Whole write refused: register 0 unchanged.
        assert_eq!(s.write(0, &[10, 1]), Err(ExceptionCode::IllegalDataAddress));
        assert_eq!(s.holding()[0], 25);
        assert!(rx.try_recv().is_err());
        // Every refusal is audited, with its reason.
        let refused: Vec<_> = s.gate.audit().tail(10);
        assert_eq!(
            refused.len(),
            3,
            "an address with no register is not a setting"
        );
        assert!(
            refused
                .iter()
                .all(|r| r.result == "refused" && r.source == "scada")
        );
        assert!(
            refused[0]
                .reason
                .as_deref()
                .unwrap_or("")
                .contains("out of range")
        );
        assert_eq!(
            s.read(false, 0, 126),
            Err(ExceptionCode::IllegalDataAddress)
        );
        assert_eq!(s.read(true, 4, 2), Err(ExceptionCode::IllegalDataAddress));
        assert_eq!(s.read(true, 0, 5).map(|v| v.len()), Ok(5));
    }

    fn full_snapshot() -> StationSnapshot {
        use crate::control::{Alarm, AlarmCode, Limiter, Mode, Sample, Signal};
        use crate::field::DeviceStats;
        use crate::station::{DeviceHealth, Measurement};
        let mut s = StationSnapshot::default();
        s.station.cycle = 70_000;
        s.measurements[Signal::TOut.index()] =
            Measurement::of(Signal::TOut, Some(Sample::fresh(-12.34)));
        s.measurements[Signal::Power1Kw.index()] =
            Measurement::of(Signal::Power1Kw, Some(Sample::fresh(731.6)));
        s.measurements[Signal::Energy1Kwh.index()] =
            Measurement::of(Signal::Energy1Kwh, Some(Sample::fresh(1_234_567.0)));
        s.measurements[Signal::T2Supply.index()] = Measurement::of(
            Signal::T2Supply,
            Some(Sample {
                valid: false,
                ..Sample::fresh(61.0)
            }),
        );
        s.explanation.setpoint_c = Some(59.5);
        s.explanation.curve_c = 58.0;
        s.explanation.demand_shift_k = -1.25;
        s.explanation.active_limiter = Some(Limiter::Power);
        s.explanation.supervisor = Some(SupervisorAction::Frost);
        s.explanation.heating_on = true;
        s.explanation.damped_outdoor_c = Some(-10.0);
        s.commands.valve1_cmd_pct = 42.0;
        s.settings.mode = Mode::Manual(30.0);
        s.settings.room_target_c = 19.0;
        s.rooms.stats.expected = 7;
        s.rooms.stats.median_c = Some(19.876);
        s.alarms = vec![
            Alarm {
                code: AlarmCode::Frost,
                since_s: 0.0,
            },
            Alarm {
                code: AlarmCode::DeviceCommLost,
                since_s: 0.0,
            },
        ];
        for (name, lost) in [("plc", false), ("room:a", true)] {
            let stats = DeviceStats {
                requests: 70_000,
                errors: 3,
                consecutive_failures: if lost { 5 } else { 0 },
                answered: true,
                last_latency_ms: (!lost).then_some(12.4),
                ..DeviceStats::default()
            };
            s.devices.push(DeviceHealth {
                name: name.into(),
                link: "gw".into(),
                connected: stats.connected(),
                comm_lost: stats.comm_lost(),
                stats,
            });
        }
        s
    }

    #[test]
    fn input_registers_sit_at_their_map_addresses() {
        use crate::control::{DryRunState, Pump2Command, Pump2Reason, Sample, Signal};
        use crate::station::Measurement;
        let s = full_snapshot();
        assert!(
            fill_input(&s).unknown.is_empty(),
            "every name is in the map"
        );
        let r = input_image(&s);
        assert_eq!(r.len(), usize::from(INPUT_IMAGE_LEN));
        assert_eq!(r[0], (-123i16) as u16, "t_out");
        assert_eq!(r[3], 610, "t2_supply value kept while invalid");
        assert_eq!(r[1], 0x8000, "t1_supply never read");
        assert_eq!(r[5], 732, "power1_kw");
        assert_eq!(r[8], 0b10_0001, "t_out and power1_kw valid");
        assert_eq!(r[9], 0, "gap");
        assert_eq!((r[10], r[11], r[13]), (595, 580, (-13i16) as u16));
        assert_eq!((r[15], r[16], r[17]), (3, 3, 1));
        assert_eq!((r[18], r[19]), (420, 2));
        assert_eq!((r[20], r[21]), (7, 0));
        assert_eq!((r[22], r[23]), (0x8000, 1988));
        assert_eq!((r[24], r[25]), (0x8000, (-100i16) as u16));
        assert_eq!(
            u32::from(r[26]),
            70_000 % 65_535,
            "cycle_count, modulo 65535"
        );
        assert_eq!(r[27], 0xFFFF, "clock synchronisation unknown");
        for (synced, raw) in [(true, 1), (false, 0)] {
            let mut t = s.clone();
            t.clock.synced = Some(synced);
            assert_eq!(input_image(&t)[27], raw, "clock synchronised: {synced}");
        }
        assert_eq!((r[30], r[31], r[32], r[33]), (2, 301, 501, 0));
        assert_eq!((r[50], r[51]), (2, 1));
        assert_eq!(r[52], 0x8000, "t_out_forecast never read");
        // 1 234 567 kWh = 0x0012_D687, high word at 53, low word at 54.
        assert_eq!((r[53], r[54]), (0x0012, 0xD687), "energy1_kwh");
        assert_eq!(r[55], 0, "gap");
        assert_eq!(r[56], 0x8000, "dp2_station never read");
        assert_eq!(r[61], 0, "pump not controlled");
        assert_eq!(
            (r[62], r[63], r[64], r[65]),
            (0x8000, 0x8000, 0xFFFF, 0xFFFF)
        );
        let mut s = s;
        s.measurements[Signal::Dp2StationKpa.index()] =
            Measurement::of(Signal::Dp2StationKpa, Some(Sample::fresh(81.26)));
        s.commands.pump2 = Some(crate::station::Pump2State::of(&Pump2Command {
            mode: crate::config::PumpMode::Index,
            dp_setpoint_kpa: Some(32.5),
            dp_measured_kpa: Some(30.0),
            speed_cmd_pct: 0.0,
            speed_fb_pct: Some(4.0),
            power_kw: None,
            flow_m3h: Some(0.1),
            dry_run: DryRunState::Tripped { since_s: 1.0 },
            reason: Pump2Reason::DryRunStop,
        }));
        let r = input_image(&s);
        assert_eq!(r[56], 813, "dp2_station");
        assert_eq!((r[61], r[62], r[63], r[64], r[65]), (3, 325, 0, 2, 6));
        assert_eq!(&r[100..108], &[1, 4464, 3, 12, 0, 4464, 3, 0xFFFF]);
        assert_eq!(r[108], 0, "no third device");
    }

    #[test]
    fn the_longest_idle_connection_is_evicted_never_one_mid_request() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let conn = |id: u64, connected: u64, last: Option<u64>, since: Option<u64>| ConnState {
            id,
            peer: SocketAddr::from(([127, 0, 0, 1], 1000 + u16::try_from(id).unwrap_or(0))),
            connected: at(connected),
            last_request: last.map(at),
            answered: u64::from(last.is_some()),
            request_since: since.map(at),
            evicted: false,
            evict: Arc::new(Notify::new()),
        };
        let timeout = Duration::from_secs(5);
        let now = at(100);
        // The master asked at 95 s; two holders never asked (connected at 10 and 20 s).
        let mut conns = vec![
            conn(0, 0, Some(95), None),
            conn(1, 20, None, None),
            conn(2, 10, None, None),
        ];
        assert_eq!(
            eviction_victim(&conns, now, timeout),
            Some(2),
            "oldest never-asked"
        );
        conns[2].evicted = true;
        assert_eq!(eviction_victim(&conns, now, timeout), Some(1), "not twice");
        conns[1].evicted = true;
        assert_eq!(
            eviction_victim(&conns, now, timeout),
            Some(0),
            "then the master"
        );
        // Among clients that asked: the oldest last request.
        let conns = vec![conn(0, 0, Some(90), None), conn(1, 0, Some(60), None)];
        assert_eq!(eviction_victim(&conns, now, timeout), Some(1));
        // A master that has polled all along is kept before clients that asked once since its
        // last poll (a flood that asks once per connection), then before one that never asked.
        let mut conns = vec![
            conn(0, 0, Some(95), None),
            conn(1, 96, Some(97), None),
            conn(2, 98, Some(99), None),
        ];
        conns[0].answered = 500;
        assert_eq!(
            eviction_victim(&conns, now, timeout),
            Some(1),
            "one-shot first"
        );
        conns[1].evicted = true;
        assert_eq!(eviction_victim(&conns, now, timeout), Some(2));
        conns[2].evicted = true;
        assert_eq!(
            eviction_victim(&conns, now, timeout),
            Some(0),
            "then the master"
        );
        // Between two established pollers, the longest idle.
        let mut conns = vec![conn(0, 0, Some(95), None), conn(1, 0, Some(90), None)];
        conns[0].answered = 3;
        conns[1].answered = 300;
        assert_eq!(eviction_victim(&conns, now, timeout), Some(1));
        // A request under way within its timeout protects a connection, past it not.
        let conns = vec![conn(0, 0, None, Some(97)), conn(1, 0, Some(99), None)];
        assert_eq!(
            eviction_victim(&conns, now, timeout),
            Some(1),
            "mid-request kept"
        );
        let conns = vec![conn(0, 0, None, Some(97)), conn(1, 0, None, Some(98))];
        assert_eq!(
            eviction_victim(&conns, now, timeout),
            None,
            "all busy: refuse"
        );
        let conns = vec![conn(0, 0, None, Some(90)), conn(1, 0, None, Some(98))];
        assert_eq!(
            eviction_victim(&conns, now, timeout),
            Some(0),
            "past its timeout"
        );
    }

    #[test]
    fn adus_are_cut_and_broken_streams_known_early() {
        assert_eq!(adu_len(&[0, 1, 0]), AduLen::Incomplete);
        assert!(matches!(adu_len(&[0, 1, 0, 5]), AduLen::Broken(_)));
        assert!(matches!(adu_len(&[0, 1, 0, 0, 0, 1]), AduLen::Broken(_)));
        assert!(matches!(adu_len(&[0, 1, 0, 0, 1, 0]), AduLen::Broken(_)));
        assert_eq!(adu_len(&[0, 1, 0, 0, 0, 6, 1, 4]), AduLen::Incomplete);
        let two = [0, 1, 0, 0, 0, 6, 1, 4, 0, 0, 0, 1, 0, 2];
        assert_eq!(adu_len(&two), AduLen::Complete(12));
    }

    #[test]
    fn malformed_requests_get_the_right_exception() {
        let (s, _rx) = shared(&["curve_shift_k"]);
        let ask = |pdu: &[u8], unit: u8| {
            let mut adu = vec![0x12, 0x34, 0, 0, 0, 0, unit];
            adu.extend_from_slice(pdu);
            let len = u16::try_from(adu.len() - 6).unwrap_or(0).to_be_bytes();
            adu[4..6].copy_from_slice(&len);
            s.respond_adu(&adu).map(|a| a[7..].to_vec())
        };
        assert_eq!(ask(&[4, 0, 0, 0], 1), Some(vec![0x84, 3]), "short read");
        assert_eq!(
            ask(&[4, 0, 0, 0, 1], 9),
            Some(vec![0x84, 0x0B]),
            "other unit"
        );
        assert_eq!(
            ask(&[4, 0, 0, 0], 9),
            Some(vec![0x84, 0x0B]),
            "other unit first"
        );
        assert_eq!(
            ask(&[0x2B, 0x0E, 1, 0], 1),
            Some(vec![0xAB, 1]),
            "unknown function"
        );
        assert_eq!(ask(&[0x84, 2], 1), None, "a response is not answered");
        assert_eq!(
            ask(&[0x10, 0, 0, 0, 1, 3, 0, 25, 0], 1),
            Some(vec![0x90, 3]),
            "byte count not twice the count"
        );
        assert_eq!(
            ask(&[6, 0, 0, 0, 25], 0),
            Some(vec![6, 0, 0, 0, 25]),
            "broadcast unit"
        );
        assert_eq!(s.holding()[0], 25);
        let read = ask(&[3, 0, 0, 0, 2], 255).unwrap_or_default();
        assert_eq!(read.len(), 6, "two registers read");
        assert_eq!(read[..4], [3, 4, 0, 25], "read back");
    }

    #[test]
    fn an_unread_energy_counter_reads_all_ones() {
        let (shared, _rx) = shared(&[]);
        assert_eq!(shared.read(false, 52, 3), Ok(vec![0x8000, 0xFFFF, 0xFFFF]));
        shared.publish(&StationSnapshot::default());
        assert_eq!(shared.read(false, 53, 2), Ok(vec![0xFFFF, 0xFFFF]));
        shared.publish(&full_snapshot());
        assert_eq!(shared.read(false, 53, 2), Ok(vec![0x0012, 0xD687]));
    }

    #[test]
    fn settings_are_published_by_name() {
        let (shared, _rx) = shared(&[]);
        shared.publish(&full_snapshot());
        let h = shared.holding();
        assert_eq!(h[0], 0, "curve_shift_k");
        assert_eq!(h[1], 2, "operating_mode manual");
        assert_eq!(h[2], 190, "room_target_c");
        assert_eq!(h[3], 0, "demand_enabled");
    }
}
