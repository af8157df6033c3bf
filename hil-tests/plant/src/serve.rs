//! Serving a plant: a time base (real time x speed) and the Modbus faces on loopback TCP.
//!
//! [`serve`] binds every face (port 0 picks a free port), starts the time base and returns a
//! [`PlantServer`] with the bound addresses, the shared plant and a shutdown.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::faces::{Device, EX_DEVICE_FAILURE, crc16, handle_pdu, rtu_request_len};
use crate::plant::{Plant, PlantError};
use crate::scenario::{FaultKind, FaultTarget, Scenario};

/// The plant shared between the time base and the faces.
pub type SharedPlant = Arc<Mutex<Plant>>;

/// Lock the shared plant (a poisoned lock is recovered: the plant has no invariants a panic in
/// another holder could break half-way that matter for a simulator).
pub fn lock(plant: &SharedPlant) -> MutexGuard<'_, Plant> {
    plant
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Address of one RTU-over-TCP gateway and the unit ids that answer on its bus.
#[derive(Debug, Clone)]
pub struct GatewayAddress {
    /// Building whose bus the gateway serves.
    pub building: usize,
    /// Bound address.
    pub addr: SocketAddr,
    /// Unit ids that answer (room nodes present, or every household valve).
    pub unit_ids: Vec<u8>,
}

/// Bound addresses of every face.
#[derive(Debug, Clone)]
pub struct FaceAddresses {
    /// Substation I/O / PLC, Modbus TCP.
    pub substation_io: SocketAddr,
    /// Heat meter, Modbus TCP.
    pub heat_meter: SocketAddr,
    /// Room-node gateways (RTU over TCP), one per building.
    pub room_gateways: Vec<GatewayAddress>,
    /// Household-valve gateways (RTU over TCP), one per building, when valves are enabled.
    pub valve_gateways: Vec<GatewayAddress>,
}

/// Why the plant could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The plant could not be built.
    #[error(transparent)]
    Plant(#[from] PlantError),
    /// A port could not be bound.
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind {
        /// Which face.
        what: String,
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The bind address is not an IP address.
    #[error("bad bind address `{0}`")]
    BindIp(String),
    /// The speed factor is not usable.
    #[error("speed must be finite and >= 0, got {0}")]
    Speed(f64),
}

/// A running plant: time base, faces, status log.
#[derive(Debug)]
pub struct PlantServer {
    addresses: FaceAddresses,
    plant: SharedPlant,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl PlantServer {
    /// Bound addresses of the faces.
    pub fn addresses(&self) -> &FaceAddresses {
        &self.addresses
    }

    /// The shared plant (ground truth, or to step it by hand at speed 0).
    pub fn plant(&self) -> SharedPlant {
        self.plant.clone()
    }

    /// Stop every task and wait for them.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
    }
}

impl Drop for PlantServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The first base port from `from` on (in steps of 7, at most 500 tries) at which every port
/// of the fixed layout ([`crate::scenario::port_offsets`]) for `buildings` buildings, with their
/// household-valve gateways where `valves` and the SCADA port, can be bound on loopback now:
/// for tests and scripts that run `plant-sim --base-port` beside other programs.
pub fn free_base_port(from: u16, buildings: usize, valves: bool) -> Option<u16> {
    use crate::scenario::port_offsets::{
        HEAT_METER, ROOM_GATEWAYS, SCADA, SUBSTATION_IO, VALVE_GATEWAYS,
    };
    let mut offsets = vec![SUBSTATION_IO, HEAT_METER, SCADA];
    for b in 0..u16::try_from(buildings).ok()? {
        offsets.push(ROOM_GATEWAYS + b);
        if valves {
            offsets.push(VALVE_GATEWAYS + b);
        }
    }
    (0..500u16)
        .filter_map(|k| from.checked_add(k.checked_mul(7)?))
        .find(|&base| {
            offsets.iter().all(|&o| {
                base.checked_add(o).is_some_and(|port| {
                    std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, port)).is_ok()
                })
            })
        })
}

/// Options of [`serve_with`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Simulated seconds per wall second (0 pauses the time base).
    pub speed: f64,
    /// Wall time between status log lines (None: no status log).
    pub status_every: Option<Duration>,
}

impl ServeOptions {
    /// At `speed` simulated seconds per wall second (0 pauses the time base), no status log.
    #[must_use]
    pub fn at_speed(speed: f64) -> Self {
        Self {
            speed,
            status_every: None,
        }
    }
}

/// What [`serve`] and [`serve_with`] return: a boxed future, so the server's async body is
/// compiled once, in this crate, and not again in every test and binary that serves a plant (an
/// async body is compiled in the crate that polls it).
pub type ServeFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<PlantServer, ServeError>> + Send>>;

/// Build the scenario's plant and serve it at `speed` (simulated seconds per wall second).
pub fn serve(scenario: &Scenario, speed: f64) -> ServeFuture {
    let plant = Plant::new(scenario);
    Box::pin(async move { serve_with(plant?, ServeOptions::at_speed(speed)).await })
}

/// Serve an existing plant with options.
pub fn serve_with(plant: Plant, opts: ServeOptions) -> ServeFuture {
    Box::pin(serve_with_inner(plant, opts))
}

async fn serve_with_inner(plant: Plant, opts: ServeOptions) -> Result<PlantServer, ServeError> {
    if !(opts.speed.is_finite() && opts.speed >= 0.0) {
        return Err(ServeError::Speed(opts.speed));
    }
    let sc = plant.scenario().clone();
    let ip: IpAddr = sc
        .modbus
        .bind_ip
        .parse()
        .map_err(|_| ServeError::BindIp(sc.modbus.bind_ip.clone()))?;
    let (tx, rx) = watch::channel(false);
    let shared: SharedPlant = Arc::new(Mutex::new(plant));
    let mut tasks = Vec::new();

    // Bind a face's listener, note its address and start serving it.
    let open = async |what: String, port: u16, face: Face, tasks: &mut Vec<JoinHandle<()>>| {
        let addr = SocketAddr::new(ip, port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind {
                what: what.clone(),
                addr,
                source,
            })?;
        let local = listener.local_addr().map_err(|source| ServeError::Bind {
            what,
            addr: SocketAddr::new(ip, 0),
            source,
        })?;
        tasks.push(tokio::spawn(accept_loop(
            listener,
            face,
            shared.clone(),
            rx.clone(),
        )));
        Ok::<_, ServeError>(local)
    };

    let io_addr = open(
        "substation I/O".into(),
        sc.modbus.substation_io_port,
        Face::Tcp(Device::SubstationIo),
        &mut tasks,
    )
    .await?;
    let meter_addr = open(
        "heat meter".into(),
        sc.modbus.heat_meter_port,
        Face::Tcp(Device::HeatMeter),
        &mut tasks,
    )
    .await?;

    let per = sc.apartments_per_building();
    let mut room_gateways = Vec::new();
    let mut valve_gateways = Vec::new();
    for b in 0..sc.buildings.count {
        let port = |base: u16| {
            if base == 0 {
                0
            } else {
                base.saturating_add(b as u16)
            }
        };
        let addr = open(
            format!("room gateway {b}"),
            port(sc.modbus.room_gateway_base_port),
            Face::RoomGateway(b),
            &mut tasks,
        )
        .await?;
        let unit_ids = {
            let p = lock(&shared);
            (1..=per)
                .filter_map(|u| u8::try_from(u).ok())
                .filter(|&u| p.room_node_by_unit(b, u).is_some())
                .collect()
        };
        room_gateways.push(GatewayAddress {
            building: b,
            addr,
            unit_ids,
        });
        if sc.household_valves.enabled {
            let addr = open(
                format!("valve gateway {b}"),
                port(sc.modbus.valve_gateway_base_port),
                Face::ValveGateway(b),
                &mut tasks,
            )
            .await?;
            let unit_ids = (1..=per).filter_map(|u| u8::try_from(u).ok()).collect();
            valve_gateways.push(GatewayAddress {
                building: b,
                addr,
                unit_ids,
            });
        }
    }
    tasks.push(tokio::spawn(time_base(
        shared.clone(),
        opts.speed,
        rx.clone(),
    )));
    if let Some(every) = opts.status_every {
        tasks.push(tokio::spawn(status_log(shared.clone(), every, rx.clone())));
    }
    Ok(PlantServer {
        addresses: FaceAddresses {
            substation_io: io_addr,
            heat_meter: meter_addr,
            room_gateways,
            valve_gateways,
        },
        plant: shared,
        shutdown: tx,
        tasks,
    })
}

async fn time_base(plant: SharedPlant, speed: f64, mut stop: watch::Receiver<bool>) {
    let start = Instant::now();
    let (t0, step_s) = {
        let p = lock(&plant);
        (p.time_s(), p.scenario().time.step_s)
    };
    let mut tick = tokio::time::interval(tick_period(step_s, speed));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut warned = false;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        if speed <= 0.0 {
            continue;
        }
        let target = t0 + speed * start.elapsed().as_secs_f64();
        let mut p = lock(&plant);
        let step = p.scenario().time.step_s;
        let mut n = 0;
        while p.time_s() + step <= target + 1e-9 && n < 2000 {
            p.step(step);
            n += 1;
        }
        if n == 2000 && !warned {
            warned = true;
            tracing::warn!(
                "plant time base cannot keep up with speed {speed}; simulated time lags"
            );
        }
    }
}

/// Wall time between two advances of the time base: 20 ms, shortened at high speeds to one
/// plant step (at least 1 ms), so an accelerated plant moves in steps no longer than a client's
/// poll period rather than in leaps of 20 ms x speed (36 s at 1800x, which a poller reading
/// every simulated second sees as implausible jumps).
fn tick_period(step_s: f64, speed: f64) -> Duration {
    let max = Duration::from_millis(20);
    if !(speed > 0.0 && step_s > 0.0) {
        return max;
    }
    let step = Duration::from_secs_f64((step_s / speed).min(0.02));
    step.clamp(Duration::from_millis(1), max)
}

async fn status_log(plant: SharedPlant, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        let p = lock(&plant);
        let t = p.truth();
        let rooms = p.apartment_air_c();
        let n = rooms.len().max(1) as f64;
        let mean = rooms.iter().sum::<f64>() / n;
        let min = rooms.iter().copied().fold(f64::INFINITY, f64::min);
        tracing::info!(
            "t={:.2} h t_out={:.1} °C t1_supply={:.1} t1_return={:.1} t2_supply={:.1} t2_return={:.1} valve1={:.1}/{:.1} % \
             power={:.0} kW rooms mean={:.2} min={:.2} °C energy={:.0} kWh faults={}",
            p.time_s() / 3600.0,
            t.t_out_c,
            t.t1_supply_c,
            t.t1_return_c,
            t.t2_supply_c,
            t.t2_return_c,
            t.valve1_pos_pct,
            t.valve1_cmd_pct,
            t.power1_kw,
            mean,
            min,
            t.energy1_kwh,
            p.active_faults().count()
        );
    }
}

#[derive(Debug, Clone, Copy)]
enum Face {
    Tcp(Device),
    RoomGateway(usize),
    ValveGateway(usize),
}

/// What a device fault makes of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Reply,
    Silent,
    Slow(u64),
    Exception,
    Drop,
}

fn action(plant: &Plant, targets: &[FaultTarget]) -> Action {
    let mut act = Action::Reply;
    for f in plant.active_faults() {
        if !targets.contains(&f.target) {
            continue;
        }
        let a = match f.kind {
            FaultKind::GatewayReboot | FaultKind::DeviceDrop => Action::Drop,
            FaultKind::DeviceSilent => Action::Silent,
            FaultKind::DeviceException => Action::Exception,
            FaultKind::DeviceSlow => Action::Slow(f.delay_ms),
            _ => continue,
        };
        let rank = |a: Action| match a {
            Action::Drop => 4,
            Action::Silent => 3,
            Action::Exception => 2,
            Action::Slow(_) => 1,
            Action::Reply => 0,
        };
        if rank(a) > rank(act) {
            act = a;
        }
    }
    act
}

fn gateway_rebooting(plant: &SharedPlant, face: Face) -> bool {
    let target = match face {
        Face::RoomGateway(b) => FaultTarget::RoomGateway(b),
        Face::ValveGateway(b) => FaultTarget::ValveGateway(b),
        Face::Tcp(_) => return false,
    };
    let p = lock(plant);
    p.active_faults()
        .any(|f| f.kind == FaultKind::GatewayReboot && f.target == target)
}

async fn accept_loop(
    listener: TcpListener,
    face: Face,
    plant: SharedPlant,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => return,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if gateway_rebooting(&plant, face) {
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let plant = plant.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let r = match face {
                Face::Tcp(dev) => tcp_connection(stream, dev, plant, stop).await,
                _ => rtu_connection(stream, face, plant, stop).await,
            };
            if let Err(e) = r {
                tracing::debug!("plant face connection ended: {e}");
            }
        });
    }
}

fn device_targets(dev: Device, plant: &Plant) -> Vec<FaultTarget> {
    match dev {
        Device::SubstationIo => vec![FaultTarget::SubstationIo],
        Device::HeatMeter => vec![FaultTarget::HeatMeter],
        Device::RoomNode { node } => {
            let a = plant.room_node(node).map_or(usize::MAX, |r| r.apartment);
            let b = plant.room_node(node).map_or(usize::MAX, |r| r.building);
            vec![FaultTarget::RoomNode(a), FaultTarget::RoomGateway(b)]
        }
        Device::HouseholdValve { apartment } => {
            let b = plant
                .apartments()
                .get(apartment)
                .map_or(usize::MAX, |a| a.building);
            vec![
                FaultTarget::HouseholdValve(apartment),
                FaultTarget::ValveGateway(b),
            ]
        }
    }
}

/// Decide and compute the reply to a PDU for a device, under the active faults.
fn respond(plant: &SharedPlant, dev: Device, pdu: &[u8]) -> (Action, Vec<u8>) {
    let mut p = lock(plant);
    let targets = device_targets(dev, &p);
    match action(&p, &targets) {
        Action::Exception => {
            let fc = pdu.first().copied().unwrap_or(0);
            (Action::Exception, vec![fc | 0x80, EX_DEVICE_FAILURE])
        }
        a @ (Action::Reply | Action::Slow(_)) => (a, handle_pdu(&mut p, dev, pdu)),
        a => (a, Vec::new()),
    }
}

async fn read_some(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    stop: &mut watch::Receiver<bool>,
    wait: Duration,
) -> std::io::Result<Option<usize>> {
    let mut chunk = [0u8; 512];
    tokio::select! {
        _ = stop.changed() => Err(std::io::Error::other("shutdown")),
        _ = tokio::time::sleep(wait) => Ok(None),
        r = stream.read(&mut chunk) => {
            let n = r?;
            if n == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed by peer"));
            }
            buf.extend_from_slice(&chunk[..n]);
            Ok(Some(n))
        }
    }
}

async fn tcp_connection(
    mut stream: TcpStream,
    dev: Device,
    plant: SharedPlant,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(512);
    loop {
        read_some(&mut stream, &mut buf, &mut stop, Duration::from_secs(3600)).await?;
        while buf.len() >= 7 {
            let tid = [buf[0], buf[1]];
            let proto = u16::from_be_bytes([buf[2], buf[3]]);
            let len = usize::from(u16::from_be_bytes([buf[4], buf[5]]));
            let unit = buf[6];
            if proto != 0 || !(2..=254).contains(&len) {
                // Not Modbus TCP: a real device closes such a connection.
                return Err(std::io::Error::other("bad MBAP header"));
            }
            if buf.len() < 6 + len {
                break;
            }
            let pdu: Vec<u8> = buf[7..6 + len].to_vec();
            buf.drain(..6 + len);
            let (act, reply) = respond(&plant, dev, &pdu);
            match act {
                Action::Silent => continue,
                Action::Drop => return Ok(()),
                Action::Slow(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                Action::Reply | Action::Exception => {}
            }
            let mut out = Vec::with_capacity(7 + reply.len());
            out.extend_from_slice(&tid);
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&((reply.len() + 1) as u16).to_be_bytes());
            out.push(unit);
            out.extend_from_slice(&reply);
            stream.write_all(&out).await?;
        }
    }
}

async fn rtu_connection(
    mut stream: TcpStream,
    face: Face,
    plant: SharedPlant,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let per = lock(&plant).scenario().apartments_per_building();
    let mut buf: Vec<u8> = Vec::with_capacity(512);
    let mut last_rx = Instant::now();
    loop {
        let got = read_some(&mut stream, &mut buf, &mut stop, Duration::from_millis(100)).await?;
        if gateway_rebooting(&plant, face) {
            return Ok(());
        }
        match got {
            Some(_) => last_rx = Instant::now(),
            None => {
                // Silence on the line ends any partial frame (the 3.5-character gap).
                if !buf.is_empty() && last_rx.elapsed() >= Duration::from_millis(50) {
                    buf.clear();
                }
                continue;
            }
        }
        while let Some(len) = rtu_request_len(&buf) {
            let n = match len {
                Ok(n) if n <= 256 => n,
                _ => {
                    buf.remove(0);
                    continue;
                }
            };
            if buf.len() < n {
                break;
            }
            let crc = crc16(&buf[..n - 2]);
            if buf[n - 2] != crc as u8 || buf[n - 1] != (crc >> 8) as u8 {
                buf.remove(0);
                continue;
            }
            let frame: Vec<u8> = buf.drain(..n).collect();
            let unit = frame[0];
            let pdu = &frame[1..n - 2];
            let dev = match face {
                Face::RoomGateway(b) => lock(&plant)
                    .room_node_by_unit(b, unit)
                    .map(|node| Device::RoomNode { node }),
                Face::ValveGateway(b) if unit >= 1 && usize::from(unit) <= per => {
                    Some(Device::HouseholdValve {
                        apartment: b * per + usize::from(unit) - 1,
                    })
                }
                _ => None,
            };
            // Unknown unit ids (and broadcasts) stay silent, like a real bus.
            let Some(dev) = dev else { continue };
            let (act, reply) = respond(&plant, dev, pdu);
            match act {
                Action::Silent => continue,
                Action::Drop => return Ok(()),
                Action::Slow(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                Action::Reply | Action::Exception => {}
            }
            let mut out = Vec::with_capacity(reply.len() + 3);
            out.push(unit);
            out.extend_from_slice(&reply);
            let c = crc16(&out);
            out.extend_from_slice(&c.to_le_bytes());
            stream.write_all(&out).await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_base_ticks_one_plant_step_at_high_speed() {
        // Real time and slow rigs: 20 ms, as always.
        assert_eq!(tick_period(1.0, 1.0), Duration::from_millis(20));
        assert_eq!(tick_period(1.0, 50.0), Duration::from_millis(20));
        // 1 s steps at 240x: one step every 4.2 ms instead of 4.8 steps every 20 ms.
        let t = tick_period(1.0, 240.0);
        assert!(
            t > Duration::from_millis(4) && t < Duration::from_millis(5),
            "{t:?}"
        );
        // Never below the timer's millisecond; paused (speed 0): the old period.
        assert_eq!(tick_period(1.0, 1800.0), Duration::from_millis(1));
        assert_eq!(tick_period(1.0, 0.0), Duration::from_millis(20));
    }
}
