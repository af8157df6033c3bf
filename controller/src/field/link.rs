//! The task that owns one link: connect, poll, write, reconnect.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::{Instant, timeout};
use tokio_modbus::client::Context;
use tokio_modbus::prelude::{Client, SlaveContext};
use tokio_modbus::{ExceptionCode, Request, Response, Slave};

use super::plan::span_of;
use super::{DevicePlan, DeviceStats, FailureSubject, FieldShared, LinkPlan, PointReading};
use crate::config::{Link, LinkKind, Parity, PointMap, Table};
use crate::runtime::clock::Clock;

/// Writes that failed are retried after this long (real time).
const WRITE_RETRY: Duration = Duration::from_secs(1);

/// The silence an RTU bus needs between frames: 3.5 characters at the link's baud rate
/// (start bit, 8 data bits, parity, stop bits), and a fixed 1.75 ms above 19200 baud as the
/// Modbus serial line specification asks. Zero for Modbus TCP.
#[must_use]
pub fn inter_frame_gap(link: &Link) -> Duration {
    if link.kind == LinkKind::Tcp {
        return Duration::ZERO;
    }
    if link.baud > 19_200 || link.baud == 0 {
        return Duration::from_micros(1750);
    }
    let parity_bits = u32::from(link.parity != Parity::None);
    let bits_per_char = 1 + 8 + parity_bits + u32::from(link.stop_bits.max(1));
    let micros = u64::from(bits_per_char) * 3_500_000 / u64::from(link.baud);
    Duration::from_micros(micros)
}

/// How long `bytes` characters take on the line: start bit, 8 data bits, parity, stop bits
/// each, at the link's baud rate. Zero for Modbus TCP.
#[must_use]
pub fn wire_time(link: &Link, bytes: usize) -> Duration {
    if link.kind == LinkKind::Tcp || link.baud == 0 {
        return Duration::ZERO;
    }
    let parity_bits = u64::from(link.parity != Parity::None);
    let bits_per_char = 1 + 8 + parity_bits + u64::from(link.stop_bits.max(1));
    let bits = bits_per_char * u64::try_from(bytes).unwrap_or(u64::MAX / 64);
    Duration::from_micros(bits.saturating_mul(1_000_000) / u64::from(link.baud))
}

/// The RTU frame lengths of `request` and of its normal answer, in bytes (address, PDU, CRC).
#[must_use]
pub fn rtu_frame_lengths(request: &Request<'_>) -> (usize, usize) {
    let regs = |n: u16| 5 + 2 * usize::from(n);
    let bits = |n: u16| 5 + usize::from(n).div_ceil(8);
    match request {
        Request::ReadHoldingRegisters(_, n) | Request::ReadInputRegisters(_, n) => (8, regs(*n)),
        Request::ReadCoils(_, n) | Request::ReadDiscreteInputs(_, n) => (8, bits(*n)),
        Request::WriteSingleRegister(..) | Request::WriteSingleCoil(..) => (8, 8),
        Request::WriteMultipleRegisters(_, words) => (9 + 2 * words.len(), 8),
        Request::WriteMultipleCoils(_, bits_out) => (9 + bits_out.len().div_ceil(8), 8),
        // Not sent by heatctl; a generous bound.
        _ => (256, 256),
    }
}

/// What went wrong with one request.
#[derive(Debug)]
enum Failure {
    /// No answer in time.
    Timeout,
    /// The connection itself was lost (closed, reset): the link's failure, not the device's.
    Connection(String),
    /// An answer that does not belong to the request: another unit's address, another function,
    /// or bytes that never made a frame with a good CRC. On a serial bus this is the unit's (or
    /// the line's) fault, not the port's.
    Garbled(String),
    /// Transport error (I/O: the port or the connection failed).
    Transport(String),
    /// The device answered with a Modbus exception; the connection is fine.
    Exception(ExceptionCode),
    /// A write was acknowledged but reading it back gave other values; the connection is fine.
    ReadBack(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Timeout => f.write_str("timeout"),
            Failure::Connection(e) => write!(f, "connection lost: {e}"),
            Failure::Garbled(e) => write!(f, "garbled answer: {e}"),
            Failure::Transport(e) => write!(f, "transport: {e}"),
            Failure::Exception(code) => write!(f, "exception {code:?}"),
            Failure::ReadBack(e) => f.write_str(e),
        }
    }
}

impl Failure {
    /// Whether the connection must be dropped and made again. A Modbus exception or a
    /// read-back that disagrees (both came over a good connection) never needs it. On a serial port (`serial`) a timeout or a garbled answer is one unit's problem:
    /// the port is drained instead (see [`Bus::request`]) and the other units keep being
    /// polled; only an I/O error of the port (an adapter unplugged) reopens it. Over TCP a
    /// late answer would still arrive on the connection, so it is dropped.
    fn needs_reconnect(&self, serial: bool) -> bool {
        match self {
            Failure::Exception(_) | Failure::ReadBack(_) => false,
            Failure::Timeout | Failure::Garbled(_) => !serial,
            Failure::Connection(_) | Failure::Transport(_) => true,
        }
    }
}

fn classify(e: &tokio_modbus::Error) -> Failure {
    match e {
        tokio_modbus::Error::Protocol(p) => Failure::Garbled(p.to_string()),
        tokio_modbus::Error::Transport(io) if io.kind() == std::io::ErrorKind::InvalidData => {
            Failure::Garbled(io.to_string())
        }
        tokio_modbus::Error::Transport(io) if connection_lost(io) => {
            Failure::Connection(io.to_string())
        }
        tokio_modbus::Error::Transport(io) => Failure::Transport(io.to_string()),
    }
}

/// One link's connection and bus timing.
struct Bus {
    ctx: Context,
    link: Link,
    gap: Duration,
    /// When the line may next carry a frame of ours: the end of the last frame on it plus the
    /// inter-frame gap.
    quiet_until: Option<Instant>,
    timeout: Duration,
    /// A local serial port (kind `rtu`): unit failures are drained, not reconnected.
    serial: bool,
}

impl Bus {
    /// One request under the timeout, after the bus gap. Returns the answer and its latency.
    ///
    /// On an RTU line the gap is 3.5 characters of silence counted from the end of the last
    /// frame: the answer's last byte as it arrived, or, after a timeout, the later of the
    /// timeout and the moment our request had left the UART at the configured baud. The
    /// timeout itself runs from when the request has left the line and allows for the answer's
    /// own time on the wire, so a long frame at a low baud rate is not cut short.
    ///
    /// After a timeout on a serial port, the answer may still come: the line is listened to
    /// (and whatever arrives discarded, see [`SerialLine`]) for one more timeout before the
    /// next request, so a late answer is never taken for the next unit's.
    async fn request(
        &mut self,
        unit_id: u8,
        request: Request<'static>,
    ) -> (Result<Response, Failure>, f64) {
        // The bus gap (RTU). Only sleep when it has not passed yet: the timer rounds up to the
        // next millisecond, which would cost every TCP request a millisecond.
        if let Some(until) = self.quiet_until
            && until > Instant::now()
        {
            tokio::time::sleep_until(until).await;
        }
        let (request_len, answer_len) = rtu_frame_lengths(&request);
        let request_wire = wire_time(&self.link, request_len);
        let answer_wire = wire_time(&self.link, answer_len);
        self.ctx.set_slave(Slave(unit_id));
        let started = Instant::now();
        let result = timeout(
            self.timeout + request_wire + answer_wire,
            self.ctx.call(request),
        )
        .await;
        let ended = Instant::now().max(started + request_wire);
        self.quiet_until = Some(ended + self.gap);
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        let r = match result {
            Err(_) => Err(Failure::Timeout),
            Ok(Err(e)) => Err(classify(&e)),
            Ok(Ok(Err(exc))) => Err(Failure::Exception(exc)),
            Ok(Ok(Ok(v))) => Ok(v),
        };
        if self.serial && matches!(r, Err(Failure::Timeout)) {
            // The late-answer window; the next frame's start flushes what came in it.
            self.quiet_until = Some(Instant::now() + self.timeout + self.gap);
        }
        (r, latency_ms)
    }
}

/// Whether an I/O error means the connection is gone (the gateway or the link), rather than
/// one device answering badly.
fn connection_lost(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::ConnectionReset
            | K::ConnectionAborted
            | K::BrokenPipe
            | K::UnexpectedEof
            | K::NotConnected
    )
}

/// A serial port as the Modbus client's transport: before each request frame goes out,
/// whatever the port has received since the last answer is discarded (a late or stray answer,
/// line noise), so the answer read next belongs to the request just sent.
struct SerialLine {
    port: tokio_serial::SerialStream,
    /// A frame is being written (its first bytes went out and nothing was read since).
    writing: bool,
}

impl tokio::io::AsyncRead for SerialLine {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.writing = false;
        std::pin::Pin::new(&mut self.port).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for SerialLine {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if !self.writing {
            use tokio_serial::SerialPort;
            self.writing = true;
            if let Err(e) = self.port.clear(tokio_serial::ClearBuffer::Input) {
                return std::task::Poll::Ready(Err(std::io::Error::other(e)));
            }
        }
        std::pin::Pin::new(&mut self.port).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.port).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.port).poll_shutdown(cx)
    }
}

fn unexpected(r: &Response) -> Failure {
    Failure::Transport(format!("unexpected response {:?}", r.function_code()))
}

async fn connect(link: &Link) -> std::io::Result<Context> {
    let host_port = || {
        let host = link.host.clone().unwrap_or_default();
        (host, link.port.unwrap_or(502))
    };
    match link.kind {
        LinkKind::Tcp => {
            let stream = tokio::net::TcpStream::connect(host_port()).await?;
            stream.set_nodelay(true)?;
            Ok(tokio_modbus::client::tcp::attach_slave(stream, Slave(1)))
        }
        LinkKind::RtuOverTcp => {
            let stream = tokio::net::TcpStream::connect(host_port()).await?;
            stream.set_nodelay(true)?;
            Ok(tokio_modbus::client::rtu::attach_slave(stream, Slave(1)))
        }
        LinkKind::Rtu => {
            use tokio_serial::SerialPortBuilderExt;
            let port = link.serial_port.clone().unwrap_or_default();
            let parity = match link.parity {
                Parity::None => tokio_serial::Parity::None,
                Parity::Even => tokio_serial::Parity::Even,
                Parity::Odd => tokio_serial::Parity::Odd,
            };
            let stop = if link.stop_bits == 2 {
                tokio_serial::StopBits::Two
            } else {
                tokio_serial::StopBits::One
            };
            let serial = tokio_serial::new(port, link.baud)
                .parity(parity)
                .stop_bits(stop)
                .open_native_async()
                .map_err(std::io::Error::other)?;
            let line = SerialLine {
                port: serial,
                writing: false,
            };
            Ok(tokio_modbus::client::rtu::attach_slave(line, Slave(1)))
        }
        LinkKind::Mqtt => Err(std::io::Error::other(
            "an mqtt link is not polled (its own task subscribes)",
        )),
    }
}

/// Count one request of `device`: `r` is its latency and the clock time of the answer, or why
/// it failed.
fn record(shared: &FieldShared, device: &str, r: Result<(f64, f64), &Failure>) {
    let mut st = shared.lock();
    if !st.stats.contains_key(device) {
        st.stats.insert(device.to_owned(), DeviceStats::default());
    }
    let Some(s) = st.stats.get_mut(device) else {
        return;
    };
    s.requests += 1;
    match r {
        Ok((latency_ms, now_s)) => {
            s.last_latency_ms = Some(latency_ms);
            s.last_ok_s = Some(now_s);
            s.consecutive_failures = 0;
            s.answered = true;
        }
        Err(f) => {
            s.consecutive_failures = s.consecutive_failures.saturating_add(1);
            match f {
                Failure::Timeout => {
                    s.timeouts += 1;
                    s.errors += 1;
                }
                Failure::Connection(_) | Failure::Transport(_) | Failure::Garbled(_) => {
                    s.errors += 1;
                }
                Failure::Exception(_) => {
                    s.exceptions += 1;
                    s.answered = true;
                }
                Failure::ReadBack(_) => s.answered = true,
            }
        }
    }
}

fn store(
    shared: &FieldShared,
    device: &DevicePlan,
    indices: &[usize],
    regs: Option<&[u16]>,
    start: u16,
    now_s: f64,
) {
    let mut st = shared.lock();
    for &i in indices {
        let p = &device.points[i];
        let offset = usize::from(p.address - start);
        let (value, error) = match regs {
            Some(regs) => match p.decode(regs.get(offset..).unwrap_or(&[])) {
                Ok(v) => (Some(v), None),
                Err(e) => (None, Some(e)),
            },
            None => (None, None),
        };
        let reading = PointReading {
            value,
            error,
            read_at_s: now_s,
            max_age_s: p.max_age_s,
        };
        match st
            .readings
            .get_mut(&device.name)
            .and_then(|d| d.get_mut(&p.name))
        {
            Some(slot) => *slot = reading,
            None => {
                st.readings
                    .entry(device.name.clone())
                    .or_default()
                    .insert(p.name.clone(), reading);
            }
        }
    }
}

async fn read_span(
    bus: &mut Bus,
    unit: u8,
    table: Table,
    start: u16,
    count: u16,
) -> (Result<Vec<u16>, Failure>, f64) {
    let request = match table {
        Table::Holding => Request::ReadHoldingRegisters(start, count),
        Table::Input => Request::ReadInputRegisters(start, count),
        Table::Coil => Request::ReadCoils(start, count),
        Table::Discrete => Request::ReadDiscreteInputs(start, count),
    };
    let (r, ms) = bus.request(unit, request).await;
    let r = r.and_then(|resp| match resp {
        Response::ReadHoldingRegisters(w) if table == Table::Holding => Ok(w),
        Response::ReadInputRegisters(w) if table == Table::Input => Ok(w),
        Response::ReadCoils(b) if table == Table::Coil => {
            Ok(b.into_iter().map(u16::from).collect())
        }
        Response::ReadDiscreteInputs(b) if table == Table::Discrete => {
            Ok(b.into_iter().map(u16::from).collect())
        }
        other => Err(unexpected(&other)),
    });
    (r, ms)
}

/// Poll every due block once. Returns how many reads were made, or the failure that needs a
/// reconnect.
async fn poll_due(
    bus: &mut Bus,
    plan: &LinkPlan,
    next_due: &mut [Vec<f64>],
    shared: &FieldShared,
    clock: &dyn Clock,
) -> Result<usize, Failure> {
    let mut reads = 0;
    let mut answered = 0;
    let mut unit_failure = None;
    'devices: for (d, device) in plan.devices.iter().enumerate() {
        for block in &device.blocks {
            let now_s = clock.mono_s();
            let due: Vec<usize> = block
                .points
                .iter()
                .copied()
                .filter(|&i| next_due[d][i] <= now_s)
                .collect();
            let Some((start, count)) = span_of(&device.points, &due) else {
                continue;
            };
            // Every point of the block inside the span is refreshed by the same read.
            let covered: Vec<usize> = block
                .points
                .iter()
                .copied()
                .filter(|&i| {
                    let p = &device.points[i];
                    p.address >= start
                        && u32::from(p.address) + u32::from(p.data_type.width())
                            <= u32::from(start) + u32::from(count)
                })
                .collect();
            for &i in &covered {
                next_due[d][i] = now_s + device.points[i].poll_period_s.max(0.01);
            }
            reads += 1;
            let (result, latency_ms) =
                read_span(bus, device.unit_id, block.table, start, count).await;
            let now_s = clock.mono_s();
            match result {
                Ok(regs) => {
                    answered += 1;
                    record(shared, &device.name, Ok((latency_ms, now_s)));
                    store(shared, device, &covered, Some(&regs), start, now_s);
                    shared.note_success(|| read_subject(device), now_s);
                    shared.note_success(|| link_subject(plan), now_s);
                }
                Err(f) => {
                    record(shared, &device.name, Err(&f));
                    if let Failure::Exception(code) = f {
                        answered += 1;
                        tracing::debug!(device = %device.name, ?code, start, count, "exception");
                        store(shared, device, &covered, None, start, now_s);
                    } else if f.needs_reconnect(bus.serial) {
                        if let Failure::Connection(_) = f {
                            let why = format!("{f} (reading {}, reconnecting)", device.name);
                            shared.note_failure(link_subject(plan), &why, now_s);
                        } else {
                            let why = format!("{f} (link {}, reconnecting)", plan.link.name);
                            shared.note_failure(read_subject(device), &why, now_s);
                        }
                        return Err(f);
                    } else {
                        // One unit on a serial bus failed: the rest of its due reads wait for
                        // their next period, and the other units are polled as usual.
                        let why =
                            format!("{f} (link {}, the other units polled on)", plan.link.name);
                        shared.note_failure(read_subject(device), &why, now_s);
                        for (i, p) in device.points.iter().enumerate() {
                            if next_due[d][i] <= now_s {
                                next_due[d][i] = now_s + p.poll_period_s.max(0.01);
                            }
                        }
                        unit_failure = Some(f);
                        continue 'devices;
                    }
                }
            }
        }
    }
    // Nobody on the bus answered anything: the port itself may be at fault (an adapter that
    // stopped passing data without an I/O error), so it is reopened.
    match unit_failure {
        Some(f) if answered == 0 => Err(f),
        _ => Ok(reads),
    }
}

/// Write what is due: changed values at once, unchanged ones as a refresh after half their max
/// age; each write is read back and compared.
async fn write_due(
    bus: &mut Bus,
    plan: &LinkPlan,
    shared: &FieldShared,
    clock: &dyn Clock,
) -> Option<Failure> {
    for device in &plan.devices {
        let due: Vec<(PointMap, Vec<u16>)> = {
            let st = shared.lock();
            if st.writes.is_empty() {
                return None;
            }
            let now_s = clock.mono_s();
            device
                .points
                .iter()
                .filter_map(|p| {
                    let slot = st.writes.get(&(device.name.clone(), p.name.clone()))?;
                    let changed = slot.verified.as_ref() != Some(&slot.raw);
                    let refresh = now_s - slot.verified_at_s >= (p.max_age_s / 2.0).max(1.0);
                    if slot.failed && slot.attempted_at.is_some_and(|t| t.elapsed() < WRITE_RETRY) {
                        return None;
                    }
                    (changed || refresh).then(|| (p.clone(), slot.raw.clone()))
                })
                .collect()
        };
        for (p, raw) in due {
            let unit = device.unit_id;
            let addr = p.address;
            let request = match p.table {
                Table::Holding if raw.len() == 1 => {
                    Some(Request::WriteSingleRegister(addr, raw[0]))
                }
                Table::Holding => Some(Request::WriteMultipleRegisters(addr, raw.clone().into())),
                Table::Coil => Some(Request::WriteSingleCoil(
                    addr,
                    raw.first().is_some_and(|&v| v != 0),
                )),
                Table::Input | Table::Discrete => None,
            };
            let (result, latency_ms) = match request {
                Some(request) => {
                    let (r, ms) = bus.request(unit, request).await;
                    let r = r.and_then(|resp| match resp {
                        Response::WriteSingleRegister(..)
                        | Response::WriteMultipleRegisters(..)
                        | Response::WriteSingleCoil(..) => Ok(()),
                        other => Err(unexpected(&other)),
                    });
                    (r, ms)
                }
                None => (Err(Failure::Exception(ExceptionCode::IllegalFunction)), 0.0),
            };
            let verdict = match result {
                Ok(()) => {
                    record(shared, &device.name, Ok((latency_ms, clock.mono_s())));
                    let count = u16::try_from(raw.len()).unwrap_or(1);
                    let (back, ms) = read_span(bus, unit, p.table, addr, count).await;
                    match back {
                        Ok(regs) => {
                            record(shared, &device.name, Ok((ms, clock.mono_s())));
                            let ok = if p.table == Table::Coil {
                                regs.first().map(|&v| v != 0) == raw.first().map(|&v| v != 0)
                            } else {
                                regs.get(..raw.len()) == Some(&raw[..])
                            };
                            if ok {
                                Ok(())
                            } else {
                                Err(Failure::ReadBack(format!(
                                    "read-back {:?} disagrees with the {raw:?} written",
                                    regs.get(..raw.len()).unwrap_or(&regs)
                                )))
                            }
                        }
                        Err(f) => {
                            record(shared, &device.name, Err(&f));
                            Err(f)
                        }
                    }
                }
                Err(f) => {
                    record(shared, &device.name, Err(&f));
                    Err(f)
                }
            };
            let now_s = clock.mono_s();
            let mut st = shared.lock();
            let good = verdict.is_ok();
            if let Some(slot) = st.writes.get_mut(&(device.name.clone(), p.name.clone())) {
                slot.attempted_at = Some(Instant::now());
                if slot.raw == raw {
                    slot.failed = !good;
                    if good {
                        slot.verified = Some(raw.clone());
                        slot.verified_at_s = now_s;
                    }
                }
            }
            if let Some(s) = st.stats.get_mut(&device.name) {
                s.write_failed = !good;
            }
            drop(st);
            let subject = || FailureSubject::Write {
                device: device.name.clone(),
                point: p.name.clone(),
            };
            match verdict {
                Ok(()) => {
                    tracing::debug!(device = %device.name, point = %p.name, raw = ?raw, "written and verified");
                    shared.note_success(subject, now_s);
                }
                Err(f) => {
                    if let Failure::Connection(_) = f {
                        shared.note_failure(link_subject(plan), &f.to_string(), now_s);
                    } else {
                        shared.note_failure(subject(), &f.to_string(), now_s);
                    }
                    // A read-back that disagrees came over a good connection.
                    if f.needs_reconnect(bus.serial) {
                        return Some(f);
                    }
                }
            }
        }
    }
    None
}

fn link_subject(plan: &LinkPlan) -> FailureSubject {
    FailureSubject::Link {
        link: plan.link.name.clone(),
    }
}

fn read_subject(device: &DevicePlan) -> FailureSubject {
    FailureSubject::Read {
        device: device.name.clone(),
    }
}

fn earliest_due(next_due: &[Vec<f64>]) -> f64 {
    next_due
        .iter()
        .flatten()
        .copied()
        .fold(f64::INFINITY, f64::min)
}

fn mark_link_failure(shared: &FieldShared, plan: &LinkPlan) {
    let mut st = shared.lock();
    for d in &plan.devices {
        let s: &mut DeviceStats = st.stats.entry(d.name.clone()).or_default();
        s.consecutive_failures = s.consecutive_failures.saturating_add(1);
        s.errors += 1;
    }
}

/// Run one link until the task is aborted.
pub async fn run_link(
    plan: LinkPlan,
    shared: Arc<FieldShared>,
    notify: Arc<Notify>,
    clock: Arc<dyn Clock>,
) {
    let link = &plan.link;
    let min_backoff = Duration::from_millis(link.reconnect_min_ms.max(1));
    let max_backoff =
        Duration::from_millis(link.reconnect_max_ms.max(link.reconnect_min_ms).max(1));
    let request_timeout = Duration::from_millis(link.timeout_ms.max(1));
    let mut backoff = min_backoff;
    let mut next_due: Vec<Vec<f64>> = plan
        .devices
        .iter()
        .map(|d| vec![f64::NEG_INFINITY; d.points.len()])
        .collect();
    let mut first_connection = true;
    loop {
        let ctx = match timeout(request_timeout.max(Duration::from_secs(1)), connect(link)).await {
            Ok(Ok(ctx)) => ctx,
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "connect timed out".into(),
                };
                let why = format!("{why} (retry in {} ms)", backoff.as_millis());
                let why = format!("cannot connect: {why}");
                shared.note_failure(link_subject(&plan), &why, clock.mono_s());
                mark_link_failure(&shared, &plan);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(max_backoff);
                continue;
            }
        };
        // The first connection is news; reconnecting after a dropped request is routine (the
        // failure that dropped it was logged, rate-limited), and the link's recovery is logged
        // at its first good answer.
        if first_connection {
            tracing::info!(link = %link.name, "connected");
            first_connection = false;
        } else {
            tracing::debug!(link = %link.name, "connected again");
        }
        let mut bus = Bus {
            ctx,
            link: link.clone(),
            gap: inter_frame_gap(link),
            quiet_until: None,
            timeout: request_timeout,
            serial: link.kind == LinkKind::Rtu,
        };
        let failure = loop {
            if let Some(f) = write_due(&mut bus, &plan, &shared, clock.as_ref()).await {
                break f;
            }
            let reads =
                match poll_due(&mut bus, &plan, &mut next_due, &shared, clock.as_ref()).await {
                    Ok(n) => n,
                    Err(f) => break f,
                };
            backoff = min_backoff;
            let wait_s = earliest_due(&next_due) - clock.mono_s();
            // Wake for due reads, changed writes, and at least every second for write refreshes
            // and retries.
            let wait = clock.real_duration(wait_s).min(Duration::from_secs(1));
            if wait.is_zero() {
                // Something is due already (a scaled clock makes periods that short): go on at
                // once; when this round made no request (no await point), let other tasks run.
                if reads == 0 {
                    tokio::task::yield_now().await;
                }
            } else {
                // The timer's resolution is a millisecond: a shorter wait sleeps one (a read
                // due in 0.3 ms goes out up to 0.7 ms late rather than the link spinning).
                tokio::select! {
                    () = tokio::time::sleep(wait.max(Duration::from_millis(1))) => {}
                    () = notify.notified() => {}
                }
            }
        };
        // Drop the connection: a late answer would otherwise be taken for the next one.
        drop(bus);
        tracing::debug!(link = %link.name, %failure, retry_ms = backoff.as_millis(), "connection dropped");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(max_backoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(kind: LinkKind, baud: u32, parity: Parity) -> Link {
        Link {
            baud,
            parity,
            timeout_ms: 100,
            reconnect_min_ms: 10,
            reconnect_max_ms: 100,
            ..Link::new("l", kind)
        }
    }

    #[test]
    fn gap_is_three_and_a_half_characters() {
        // 9600 8N1: 10 bits per char, 3.5 chars = 35 bits = 3.645 ms.
        assert_eq!(
            inter_frame_gap(&link(LinkKind::RtuOverTcp, 9600, Parity::None)),
            Duration::from_micros(3645)
        );
        // 9600 8E1: 11 bits.
        assert_eq!(
            inter_frame_gap(&link(LinkKind::Rtu, 9600, Parity::Even)),
            Duration::from_micros(4010)
        );
        assert_eq!(
            inter_frame_gap(&link(LinkKind::Rtu, 115_200, Parity::None)),
            Duration::from_micros(1750)
        );
        assert_eq!(
            inter_frame_gap(&link(LinkKind::Tcp, 9600, Parity::None)),
            Duration::ZERO
        );
    }

    #[test]
    fn frames_take_their_time_on_the_wire() {
        let bus = link(LinkKind::Rtu, 9600, Parity::Even);
        // Read 8 input registers: 8-byte request, 21-byte answer; 11 bits a character.
        let (request, answer) = rtu_frame_lengths(&Request::ReadInputRegisters(0, 8));
        assert_eq!((request, answer), (8, 21));
        assert_eq!(wire_time(&bus, request), Duration::from_micros(9166));
        assert_eq!(wire_time(&bus, answer), Duration::from_micros(24_062));
        assert_eq!(
            rtu_frame_lengths(&Request::WriteMultipleRegisters(1, vec![1, 2].into())),
            (13, 8)
        );
        assert_eq!(rtu_frame_lengths(&Request::ReadCoils(0, 9)), (8, 7));
        assert_eq!(
            wire_time(&link(LinkKind::Tcp, 9600, Parity::Even), 100),
            Duration::ZERO
        );
    }
}
