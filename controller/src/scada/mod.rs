//! The SCADA face: a Modbus TCP slave for the utility's control system (off by default).
//!
//! Measurements, the explanation, alarms and device health are input registers, written by
//! name from each cycle's [`StationSnapshot`]; settings are holding registers, writable only when named in
//! `scada.writable` and range-checked. The layout is [`map`], the single table that the slave
//! and `heatctl scada-map` both read.

pub mod map;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::task::JoinHandle;
use tokio_modbus::prelude::{ExceptionCode, Request, Response, SlaveRequest};
use tokio_modbus::server::tcp::Server;

use crate::control::SupervisorAction;
use crate::gate::{Change, ChangeOutcome, ChangeRequest, Gate, Refusal, Source};
use crate::station::{OperatorSettings, StationSnapshot};
use map::{Encoding, HOLDING_REGISTERS, INPUT_IMAGE_LEN, INPUT_REGISTERS, RegisterDef};

/// What the slave serves, shared with the runtime.
#[derive(Debug)]
pub struct ScadaShared {
    inner: Mutex<ScadaImage>,
    gate: Gate,
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

    fn handle(&self, req: SlaveRequest<'static>) -> Result<Response, ExceptionCode> {
        let unit = self.lock().unit_id;
        if req.slave != unit && req.slave != 0 && req.slave != 255 {
            return Err(ExceptionCode::GatewayTargetDevice);
        }
        match req.request {
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

/// The slave service of one connection. Dropping it frees its connection slot.
#[derive(Debug)]
struct Connection {
    shared: Arc<ScadaShared>,
    open: Arc<AtomicU32>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl tokio_modbus::server::Service for Connection {
    type Request = SlaveRequest<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = std::future::Ready<Result<Response, ExceptionCode>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        std::future::ready(self.shared.handle(req))
    }
}

/// Bind `listen` and serve until the returned task is aborted. More than `max_connections`
/// simultaneous clients are refused (the connection is closed at once).
///
/// # Errors
/// The address cannot be parsed or bound.
pub async fn serve(
    listen: &str,
    max_connections: u32,
    shared: Arc<ScadaShared>,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let local = listener.local_addr()?;
    let server = Server::new(listener);
    let open = Arc::new(AtomicU32::new(0));
    let task = tokio::spawn(async move {
        let on_connected = |stream: tokio::net::TcpStream, peer: SocketAddr| {
            let shared = Arc::clone(&shared);
            let open = Arc::clone(&open);
            async move {
                if open.fetch_add(1, Ordering::SeqCst) >= max_connections {
                    open.fetch_sub(1, Ordering::SeqCst);
                    tracing::warn!(%peer, max_connections, "SCADA connection refused: too many");
                    return Ok(None);
                }
                tracing::info!(%peer, "SCADA client connected");
                Ok(Some((Connection { shared, open }, stream)))
            }
        };
        let on_error = |e: std::io::Error| tracing::debug!(error = %e, "SCADA connection closed");
        if let Err(e) = server.serve(&on_connected, on_error).await {
            tracing::error!(error = %e, "SCADA server stopped");
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
