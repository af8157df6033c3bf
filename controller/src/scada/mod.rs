//! The SCADA face: a Modbus TCP slave for the utility's control system (off by default).
//!
//! Measurements, the explanation, alarms and device health are input registers, refreshed by
//! the runtime every cycle; settings are holding registers, writable only when named in
//! `scada.writable` and range-checked. The layout is [`map`], the single table that the slave
//! and `heatctl scada-map` both read.

pub mod map;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio_modbus::prelude::{ExceptionCode, Request, Response, SlaveRequest};
use tokio_modbus::server::tcp::Server;

use crate::control::{Commands, ProcessImage, Signal, SupervisorAction};
use crate::field::DeviceStats;
use map::{Encoding, HOLDING_REGISTERS, INPUT_IMAGE_LEN, INPUT_REGISTERS, RegisterDef};

/// A setting written by SCADA, for the runtime to apply on its next cycle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScadaCommand {
    /// Curve shift, K.
    CurveShiftK(f64),
    /// Operating mode code (0 auto, 1 off, 2 manual).
    OperatingMode(u16),
    /// Room target, °C.
    RoomTargetC(f64),
    /// Demand correction on/off.
    DemandEnabled(bool),
    /// Primary valve position in manual mode, %.
    Valve1ManualPct(f64),
}

impl ScadaCommand {
    fn from_register(def: &RegisterDef, value: f64) -> Option<Self> {
        Some(match def.name {
            "curve_shift_k" => Self::CurveShiftK(value),
            "operating_mode" => Self::OperatingMode(value as u16),
            "room_target_c" => Self::RoomTargetC(value),
            "demand_enabled" => Self::DemandEnabled(value != 0.0),
            "valve1_manual_pct" => Self::Valve1ManualPct(value),
            _ => return None,
        })
    }
}

/// What the slave serves, shared with the runtime.
#[derive(Debug)]
pub struct ScadaShared {
    inner: Mutex<ScadaImage>,
    commands: UnboundedSender<ScadaCommand>,
}

#[derive(Debug)]
struct ScadaImage {
    input: Vec<u16>,
    holding: Vec<u16>,
    writable: Vec<String>,
    unit_id: u8,
}

impl ScadaShared {
    /// An empty image (everything unknown); writes go to `commands`.
    #[must_use]
    pub fn new(
        writable: Vec<String>,
        unit_id: u8,
        commands: UnboundedSender<ScadaCommand>,
    ) -> Self {
        let mut input = vec![0u16; usize::from(INPUT_IMAGE_LEN)];
        for r in INPUT_REGISTERS {
            input[usize::from(r.address)] = r.encoding.encode(None);
        }
        Self {
            inner: Mutex::new(ScadaImage {
                input,
                holding: HOLDING_REGISTERS
                    .iter()
                    .map(|r| r.encoding.encode(None))
                    .collect(),
                writable,
                unit_id,
            }),
            commands,
        }
    }

    fn lock(&self) -> MutexGuard<'_, ScadaImage> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Replace the allowlist and unit id (configuration reload).
    pub fn set_access(&self, writable: Vec<String>, unit_id: u8) {
        let mut g = self.lock();
        g.writable = writable;
        g.unit_id = unit_id;
    }

    /// Publish the input registers.
    pub fn set_input(&self, input: Vec<u16>) {
        self.lock().input = input;
    }

    /// Publish the settings in force, in [`HOLDING_REGISTERS`] order (engineering values).
    pub fn set_settings(&self, values: &[f64]) {
        let mut g = self.lock();
        for (slot, (def, v)) in g
            .holding
            .iter_mut()
            .zip(HOLDING_REGISTERS.iter().zip(values))
        {
            *slot = def.encoding.encode(Some(*v));
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

    /// Check a whole write, then apply it; nothing changes when any register is refused.
    fn write(&self, addr: u16, words: &[u16]) -> Result<(), ExceptionCode> {
        let mut g = self.lock();
        let mut commands = Vec::with_capacity(words.len());
        for (i, &raw) in words.iter().enumerate() {
            let a = usize::from(addr) + i;
            let def = HOLDING_REGISTERS
                .get(a)
                .filter(|d| g.writable.iter().any(|w| w == d.name))
                .ok_or(ExceptionCode::IllegalDataAddress)?;
            let value = def.encoding.decode(raw);
            let in_range = def.range.is_none_or(|(lo, hi)| value >= lo && value <= hi);
            if raw == 0x8000 && def.encoding != Encoding::U16 || !in_range {
                return Err(ExceptionCode::IllegalDataValue);
            }
            let cmd =
                ScadaCommand::from_register(def, value).ok_or(ExceptionCode::IllegalDataAddress)?;
            commands.push((a, raw, cmd));
        }
        for (a, raw, cmd) in commands {
            g.holding[a] = raw;
            self.commands
                .send(cmd)
                .map_err(|_| ExceptionCode::ServerDeviceFailure)?;
            tracing::info!(?cmd, "SCADA write");
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

/// Build the input-register image from one cycle's results.
#[must_use]
pub fn input_image(
    cmds: &Commands,
    image: &ProcessImage,
    mode_code: u16,
    devices: &[(String, DeviceStats)],
) -> Vec<u16> {
    let mut r = vec![0u16; usize::from(INPUT_IMAGE_LEN)];
    let ex = &cmds.explanation;
    let mut valid_bits = 0u16;
    for (i, s) in Signal::ALL.iter().enumerate() {
        let sample = image.get(*s);
        let enc = INPUT_REGISTERS[i].encoding;
        r[i] = enc.encode(sample.map(|x| x.value).filter(|v| v.is_finite()));
        if sample.is_some_and(|x| x.valid) {
            valid_bits |= 1 << i;
        }
    }
    r[8] = valid_bits;
    let t = |v: Option<f64>| Encoding::I16Tenths.encode(v);
    r[10] = t(ex.setpoint_c);
    r[11] = t(Some(ex.curve_c));
    r[12] = t(Some(ex.base_shift_k));
    r[13] = t(Some(ex.demand_shift_k));
    r[14] = t(Some(ex.valve_demand_shift_k));
    r[15] = ex.active_limiter.map_or(0, |l| l.code());
    r[16] = match ex.supervisor {
        None => 0,
        Some(SupervisorAction::HoldOnSensorLoss) => 1,
        Some(SupervisorAction::SafePosition) => 2,
        Some(SupervisorAction::Frost) => 3,
        Some(SupervisorAction::OverTemperatureCut) => 4,
    };
    r[17] = u16::from(ex.heating_on);
    r[18] = t(Some(cmds.valve1_pct));
    r[19] = mode_code;
    r[20] = u16::try_from(ex.rooms.expected).unwrap_or(u16::MAX);
    r[21] = u16::try_from(ex.rooms.used).unwrap_or(u16::MAX);
    r[22] = Encoding::I16Hundredths.encode(ex.rooms.percentile_c);
    r[23] = Encoding::I16Hundredths.encode(ex.rooms.median_c);
    r[24] = t(ex.outdoor_c);
    r[25] = t(ex.damped_outdoor_c);
    r[30] = u16::try_from(cmds.alarms.len()).unwrap_or(u16::MAX);
    for (slot, alarm) in cmds
        .alarms
        .iter()
        .take(usize::from(map::ALARM_SLOTS))
        .enumerate()
    {
        r[31 + slot] = alarm.code.number();
    }
    r[50] = u16::try_from(devices.len()).unwrap_or(u16::MAX);
    r[51] =
        u16::try_from(devices.iter().filter(|(_, s)| s.comm_lost()).count()).unwrap_or(u16::MAX);
    for (i, (_, s)) in devices
        .iter()
        .take(usize::from(map::DEVICE_HEALTH_MAX))
        .enumerate()
    {
        let base =
            usize::from(map::DEVICE_HEALTH_BASE) + i * usize::from(map::DEVICE_HEALTH_STRIDE);
        r[base] = u16::from(s.answered && !s.comm_lost()) | (u16::from(s.write_failed) << 1);
        r[base + 1] = (s.requests & 0xFFFF) as u16;
        r[base + 2] = (s.errors & 0xFFFF) as u16;
        r[base + 3] = s
            .last_latency_ms
            .map_or(0xFFFF, |ms| ms.round().clamp(0.0, 65534.0) as u16);
    }
    r
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

    fn shared(
        writable: &[&str],
    ) -> (
        ScadaShared,
        tokio::sync::mpsc::UnboundedReceiver<ScadaCommand>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (
            ScadaShared::new(writable.iter().map(|s| (*s).to_owned()).collect(), 1, tx),
            rx,
        )
    }

    #[test]
    fn allowlist_and_ranges() {
        let (s, mut rx) = shared(&["curve_shift_k", "room_target_c"]);
        assert_eq!(s.write(0, &[25]), Ok(()));
        assert_eq!(rx.try_recv(), Ok(ScadaCommand::CurveShiftK(2.5)));
        assert_eq!(s.write(0, &[301]), Err(ExceptionCode::IllegalDataValue));
        assert_eq!(s.write(1, &[1]), Err(ExceptionCode::IllegalDataAddress));
        assert_eq!(s.write(9, &[1]), Err(ExceptionCode::IllegalDataAddress));
        // Whole write refused: register 0 unchanged.
        assert_eq!(s.write(0, &[10, 1]), Err(ExceptionCode::IllegalDataAddress));
        assert_eq!(s.holding()[0], 25);
        assert!(rx.try_recv().is_err());
        assert_eq!(
            s.read(false, 0, 126),
            Err(ExceptionCode::IllegalDataAddress)
        );
        assert_eq!(s.read(true, 4, 2), Err(ExceptionCode::IllegalDataAddress));
        assert_eq!(s.read(true, 0, 5).map(|v| v.len()), Ok(5));
    }
}
