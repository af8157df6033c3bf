//! Register images of the plant's field devices, after the maps in `config/devices/`, and the
//! Modbus PDU handling shared by the TCP and RTU-over-TCP servers.
//!
//! Addresses are 0-based protocol addresses.
//!
//! * substation I/O (`substation-io.toml`): input 0 t_out, 1 t1_supply, 2 t1_return, 3 t2_supply,
//!   4 t2_return (i16, 0.1 °C, 0x7FFF when missing), 5 p2_supply, 6 p2_return (u16 kPa),
//!   7 valve1_pos, 8 pump2_speed feedback (u16, 0.1 %), 9 dp2_station, 10 dp2_index (u16,
//!   0.1 kPa), 11 pump2_power (u16, 0.01 kW), 12 flow2 (u16, 0.01 m³/h), 13 pump2_status (bit 0
//!   running, bit 1 dry-run trip); holding 0 valve1_cmd, 1 pump2_speed_cmd (u16, 0.1 %,
//!   writable, 0..1000, 0 = stop).
//! * heat meter (`heat-meter.toml`): input 0-1 power kW (f32, high word first), 2-3 flow m³/h
//!   (f32, high word first), 4-5 energy kWh (u32, low word first), 6 t_supply, 7 t_return
//!   (i16, 0.1 °C), 8 status flags.
//! * room node (`room-node.toml`): input 0 temperature (i16, 0.01 °C, 0x7FFF on fault),
//!   1 humidity (u16, 0.01 %RH), 2 status, 3 sample_counter, 4 unchanged_s, 5-6 uptime_s (u32,
//!   high word first), 7 firmware_version; holding 0 unit_id, 1 calibration_offset (i16, 0.01 K),
//!   2 report_interval_s.
//! * valve actuator (`valve-actuator.toml`): input 0 position (u16, 0.1 %), 1 status (bit 0
//!   stuck); holding 0 command (u16, 0.1 %).

use crate::plant::Plant;

/// Modbus exception: illegal function.
pub const EX_ILLEGAL_FUNCTION: u8 = 0x01;
/// Modbus exception: illegal data address.
pub const EX_ILLEGAL_ADDRESS: u8 = 0x02;
/// Modbus exception: illegal data value.
pub const EX_ILLEGAL_VALUE: u8 = 0x03;
/// Modbus exception: server device failure.
pub const EX_DEVICE_FAILURE: u8 = 0x04;

/// Firmware version reported by simulated room nodes (major*256 + minor).
pub const ROOM_NODE_FIRMWARE: u16 = 0x0100;

/// A field device of the plant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// The substation I/O / PLC.
    SubstationIo,
    /// The primary heat meter.
    HeatMeter,
    /// The room node of an apartment.
    RoomNode {
        /// Node index.
        node: usize,
    },
    /// The household valve actuator of an apartment.
    HouseholdValve {
        /// Apartment index.
        apartment: usize,
    },
}

/// Register table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Input registers (function 04).
    Input,
    /// Holding registers (functions 03, 06, 16).
    Holding,
}

fn i16_scaled(v: Option<f64>, scale: f64) -> u16 {
    match v {
        Some(x) if x.is_finite() => ((x / scale).round().clamp(-32768.0, 32766.0) as i16) as u16,
        _ => 0x7FFF,
    }
}

fn u16_scaled(v: Option<f64>, scale: f64) -> u16 {
    match v {
        Some(x) if x.is_finite() => (x / scale).round().clamp(0.0, 65534.0) as u16,
        _ => 0xFFFF,
    }
}

fn f32_words(v: Option<f64>) -> [u16; 2] {
    let bits = v.map_or(f32::NAN, |x| x as f32).to_bits();
    [(bits >> 16) as u16, bits as u16]
}

/// The whole register table of a device now.
pub fn registers(plant: &Plant, device: Device, table: Table) -> Option<Vec<u16>> {
    Some(match (device, table) {
        (Device::SubstationIo, Table::Input) => {
            let s = plant.sensors_substation();
            vec![
                i16_scaled(s.t_out_c, 0.1),
                i16_scaled(s.t1_supply_c, 0.1),
                i16_scaled(s.t1_return_c, 0.1),
                i16_scaled(s.t2_supply_c, 0.1),
                i16_scaled(s.t2_return_c, 0.1),
                u16_scaled(Some(s.p2_supply_kpa), 1.0),
                u16_scaled(Some(s.p2_return_kpa), 1.0),
                u16_scaled(s.valve1_pos_pct, 0.1),
                u16_scaled(Some(s.pump2_speed_pct), 0.1),
                u16_scaled(s.dp2_station_kpa, 0.1),
                u16_scaled(s.dp2_index_kpa, 0.1),
                u16_scaled(s.pump2_power_kw, 0.01),
                u16_scaled(s.flow2_m3h, 0.01),
                s.pump2_status,
            ]
        }
        (Device::SubstationIo, Table::Holding) => {
            let t = plant.truth();
            vec![
                u16_scaled(Some(t.valve1_cmd_pct), 0.1),
                u16_scaled(Some(t.pump2_speed_cmd_pct), 0.1),
            ]
        }
        (Device::HeatMeter, Table::Input) => {
            let h = plant.heat_meter();
            let p = f32_words(h.power_kw);
            let f = f32_words(h.flow_m3h);
            let e = h.energy_kwh.max(0.0).floor().min(f64::from(u32::MAX)) as u32;
            vec![
                p[0],
                p[1],
                f[0],
                f[1],
                e as u16,
                (e >> 16) as u16,
                i16_scaled(h.t_supply_c, 0.1),
                i16_scaled(h.t_return_c, 0.1),
                h.status,
            ]
        }
        (Device::HeatMeter, Table::Holding) => return None,
        (Device::RoomNode { node }, Table::Input) => {
            let r = plant.room_node(node)?;
            let uptime = r.uptime_s.max(0.0).min(f64::from(u32::MAX)) as u32;
            let mut status = 0u16;
            if r.temperature_c.is_none() {
                status |= 1;
            }
            if r.sample_counter == 0 {
                status |= 0x8000;
            }
            vec![
                i16_scaled(r.temperature_c, 0.01),
                u16_scaled(Some(r.humidity_pct), 0.01),
                status,
                r.sample_counter,
                r.unchanged_s.clamp(0.0, 65535.0) as u16,
                (uptime >> 16) as u16,
                uptime as u16,
                ROOM_NODE_FIRMWARE,
            ]
        }
        (Device::RoomNode { node }, Table::Holding) => {
            let r = plant.room_node(node)?;
            let (cal, interval) = plant.room_node_settings(node)?;
            vec![
                u16::from(r.unit_id),
                i16_scaled(Some(cal), 0.01),
                u16_scaled(Some(interval), 1.0),
            ]
        }
        (Device::HouseholdValve { apartment }, Table::Input) => {
            let (pos, _) = plant.household_valve(apartment)?;
            vec![
                u16_scaled(Some(pos), 0.1),
                u16::from(plant.household_valve_stuck(apartment)),
            ]
        }
        (Device::HouseholdValve { apartment }, Table::Holding) => {
            let (_, cmd) = plant.household_valve(apartment)?;
            vec![u16_scaled(Some(cmd), 0.1)]
        }
    })
}

/// Write holding registers starting at `start`. Errors are Modbus exception codes.
pub fn write(plant: &mut Plant, device: Device, start: u16, values: &[u16]) -> Result<(), u8> {
    let mut image = registers(plant, device, Table::Holding).ok_or(EX_ILLEGAL_ADDRESS)?;
    let s = usize::from(start);
    if s + values.len() > image.len() {
        return Err(EX_ILLEGAL_ADDRESS);
    }
    image[s..s + values.len()].copy_from_slice(values);
    match device {
        Device::SubstationIo => {
            // Check every written value before applying any.
            if values.iter().any(|&v| v > 1000) {
                return Err(EX_ILLEGAL_VALUE);
            }
            for (k, _) in values.iter().enumerate() {
                let pct = f64::from(image[s + k]) * 0.1;
                match s + k {
                    0 => plant.set_valve1_cmd_pct(pct),
                    _ => plant.set_pump2_speed_cmd_pct(pct),
                }
            }
        }
        Device::HouseholdValve { apartment } => {
            let pct = f64::from(image[0]) * 0.1;
            if pct > 100.0 {
                return Err(EX_ILLEGAL_VALUE);
            }
            plant
                .set_household_valve_pct(apartment, pct)
                .map_err(|_| EX_ILLEGAL_ADDRESS)?;
        }
        Device::RoomNode { node } => {
            let r = plant.room_node(node).ok_or(EX_ILLEGAL_ADDRESS)?;
            if image[0] != u16::from(r.unit_id) {
                // The simulated bus is wired by apartment: a node keeps its address.
                return Err(EX_ILLEGAL_VALUE);
            }
            let cal = f64::from(image[1] as i16) * 0.01;
            let interval = f64::from(image[2]);
            if !(-5.0..=5.0).contains(&cal) || !(10.0..=3600.0).contains(&interval) {
                return Err(EX_ILLEGAL_VALUE);
            }
            plant.set_room_node_settings(node, cal, interval);
        }
        Device::HeatMeter => return Err(EX_ILLEGAL_ADDRESS),
    }
    Ok(())
}

fn be16(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}

fn exception(fc: u8, code: u8) -> Vec<u8> {
    vec![fc | 0x80, code]
}

/// Answer one request PDU (function code + data) for `device`. Never panics on any input.
pub fn handle_pdu(plant: &mut Plant, device: Device, pdu: &[u8]) -> Vec<u8> {
    let Some(&fc) = pdu.first() else {
        return exception(0, EX_ILLEGAL_FUNCTION);
    };
    match fc {
        0x03 | 0x04 => {
            if pdu.len() != 5 {
                return exception(fc, EX_ILLEGAL_VALUE);
            }
            let start = usize::from(be16(pdu, 1));
            let qty = usize::from(be16(pdu, 3));
            if qty == 0 || qty > 125 {
                return exception(fc, EX_ILLEGAL_VALUE);
            }
            let table = if fc == 0x03 {
                Table::Holding
            } else {
                Table::Input
            };
            let Some(image) = registers(plant, device, table) else {
                return exception(fc, EX_ILLEGAL_ADDRESS);
            };
            if start + qty > image.len() {
                return exception(fc, EX_ILLEGAL_ADDRESS);
            }
            let mut out = Vec::with_capacity(2 + 2 * qty);
            out.push(fc);
            out.push((2 * qty) as u8);
            for v in &image[start..start + qty] {
                out.extend_from_slice(&v.to_be_bytes());
            }
            out
        }
        0x06 => {
            if pdu.len() != 5 {
                return exception(fc, EX_ILLEGAL_VALUE);
            }
            match write(plant, device, be16(pdu, 1), &[be16(pdu, 3)]) {
                Ok(()) => pdu.to_vec(),
                Err(e) => exception(fc, e),
            }
        }
        0x10 => {
            if pdu.len() < 6 {
                return exception(fc, EX_ILLEGAL_VALUE);
            }
            let start = be16(pdu, 1);
            let qty = usize::from(be16(pdu, 3));
            let bc = usize::from(pdu[5]);
            if qty == 0 || qty > 123 || bc != 2 * qty || pdu.len() != 6 + bc {
                return exception(fc, EX_ILLEGAL_VALUE);
            }
            let values: Vec<u16> = (0..qty).map(|k| be16(pdu, 6 + 2 * k)).collect();
            match write(plant, device, start, &values) {
                Ok(()) => pdu[..5].to_vec(),
                Err(e) => exception(fc, e),
            }
        }
        _ => exception(fc, EX_ILLEGAL_FUNCTION),
    }
}

/// CRC-16/Modbus (poly 0xA001 reflected, init 0xFFFF); sent low byte first.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in data {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// Length of the RTU request frame (address .. CRC) that starts `buf`, if it can be known yet.
/// `Some(Err(()))` means the function code is unknown: the byte cannot start a request.
pub fn rtu_request_len(buf: &[u8]) -> Option<Result<usize, ()>> {
    let fc = *buf.get(1)?;
    Some(match fc {
        0x01..=0x06 => Ok(8),
        0x0F | 0x10 => {
            let bc = usize::from(*buf.get(6)?);
            Ok(9 + bc)
        }
        _ => Err(()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_of_a_known_frame() {
        // 01 04 00 00 00 01 -> CRC 0x0A31 (sent 31 CA)
        assert_eq!(crc16(&[0x01, 0x04, 0x00, 0x00, 0x00, 0x01]), 0xCA31);
    }
}
