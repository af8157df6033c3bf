//! The Modbus RTU slave: rmodbus parses the request and builds the reply; this module guards
//! it and maps requests onto the register map.
//!
//! - A frame whose CRC is wrong is dropped without a reply (before rmodbus sees it).
//! - Frames for another unit id are ignored; unit 0 (broadcast) writes are applied silently.
//! - Functions 03 and 04 read holding / input registers; 06 and 16 write the holding
//!   registers unit id, calibration offset and report interval, each range-checked.
//! - Exceptions: 01 for any other function, 02 for an address outside the map, 03 for a
//!   value out of range, a count of 0 or above the Modbus limit, or a byte count that does
//!   not match the register count. A multiple write is applied all or nothing.
//! - A frame too short for its function code, or with a function code of 0x80 or above
//!   (those mark exception replies), is dropped as broken.

use heapless::Vec;
use rmodbus::server::{ModbusFrame, Read, Write};
use rmodbus::{ErrorKind, ModbusProto};

use crate::crc::rtu_crc_ok;
use crate::registers::{Settings, WriteError, input};

/// Largest RTU frame (Modbus application data unit).
pub const MAX_FRAME: usize = 256;

/// Buffer for one reply frame.
pub type Reply = Vec<u8, MAX_FRAME>;

const FN_READ_HOLDING: u8 = 0x03;
const FN_READ_INPUT: u8 = 0x04;
const FN_WRITE_SINGLE: u8 = 0x06;
const FN_WRITE_MULTIPLE: u8 = 0x10;
const BROADCAST: u8 = 0;

/// What handling one frame did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameOutcome {
    /// `reply` holds a frame to send.
    pub reply: bool,
    /// The settings changed and should be persisted.
    pub settings_changed: bool,
}

/// Handles one RTU `frame` (address, PDU, CRC) against the register map.
///
/// `inputs` are the input registers, `settings` the holding registers (changed in place by a
/// valid write). The reply, if any, is left in `reply` with its CRC.
pub fn respond(
    frame: &[u8],
    inputs: &[u16; input::COUNT],
    settings: &mut Settings,
    reply: &mut Reply,
) -> FrameOutcome {
    reply.clear();
    let silent = FrameOutcome::default();
    if frame.len() < 4 || frame.len() > MAX_FRAME || !rtu_crc_ok(frame) {
        return silent;
    }
    let unit = frame[0];
    if unit != settings.unit_id && unit != BROADCAST {
        return silent;
    }
    // Check each frame's length against its function before rmodbus indexes into it.
    let well_formed = match frame[1] {
        FN_READ_HOLDING | FN_READ_INPUT | FN_WRITE_SINGLE => frame.len() == 8,
        FN_WRITE_MULTIPLE => frame.len() >= 9 && frame.len() == 9 + usize::from(frame[6]),
        // Coils and discrete inputs do not exist on this node; rmodbus answers anything
        // else with exception 01 itself.
        0x01 | 0x02 | 0x05 | 0x0F => {
            return illegal_function(frame, reply);
        }
        // 0x80 and above mark exception replies; no request carries them (and rmodbus would
        // overflow building the exception code).
        0x80..=0xFF => false,
        _ => true,
    };
    if !well_formed {
        return silent;
    }

    let before = *settings;
    let mut modbus = ModbusFrame::new(settings.unit_id, frame, ModbusProto::Rtu, reply);
    if modbus.parse().is_err() {
        modbus.response.clear();
        return silent;
    }
    if modbus.processing_required {
        let table = if frame[1] == FN_READ_INPUT {
            Table::Input
        } else {
            Table::Holding
        };
        let handled = if modbus.readonly {
            read(&mut modbus, table, inputs, settings)
        } else {
            write(&mut modbus, settings)
        };
        if handled.is_err() {
            modbus.response.clear();
            return silent;
        }
    }
    let mut outcome = FrameOutcome {
        reply: false,
        settings_changed: *settings != before,
    };
    if modbus.response_required {
        if modbus.finalize_response().is_err() {
            modbus.response.clear();
            return outcome;
        }
        outcome.reply = true;
    } else {
        // Nothing to send (a broadcast): leave no half-built reply behind.
        modbus.response.clear();
    }
    outcome
}

/// Which register table a read addresses.
#[derive(Clone, Copy)]
enum Table {
    Input,
    Holding,
}

fn read<V: rmodbus::VectorTrait<u8>>(
    modbus: &mut ModbusFrame<'_, V>,
    table: Table,
    inputs: &[u16; input::COUNT],
    settings: &Settings,
) -> Result<(), ErrorKind> {
    let result = match modbus.get_external_read()? {
        Read::Words(words) => {
            let mut result = if words.count == 0 {
                Err(ErrorKind::IllegalDataValue)
            } else {
                Ok(())
            };
            let mut address = Some(words.address);
            for chunk in words.buf.chunks_exact_mut(2) {
                if result.is_err() {
                    break;
                }
                let value = address.and_then(|a| match table {
                    Table::Input => inputs.get(usize::from(a)).copied(),
                    Table::Holding => settings.holding(a),
                });
                match value {
                    Some(v) => chunk.copy_from_slice(&v.to_be_bytes()),
                    None => result = Err(ErrorKind::IllegalDataAddress),
                }
                address = address.and_then(|a| a.checked_add(1));
            }
            result
        }
        Read::Bits(_) => Err(ErrorKind::IllegalFunction),
    };
    modbus.process_external_read(result)
}

fn write<V: rmodbus::VectorTrait<u8>>(
    modbus: &mut ModbusFrame<'_, V>,
    settings: &mut Settings,
) -> Result<(), ErrorKind> {
    let result = match modbus.get_external_write() {
        Ok(Write::Words(words)) => {
            // Apply to a copy and commit only if every register was accepted.
            let mut candidate = *settings;
            let mut result = if words.count == 0 || words.data.len() != usize::from(words.count) * 2
            {
                Err(ErrorKind::IllegalDataValue)
            } else {
                Ok(())
            };
            let mut address = Some(words.address);
            for chunk in words.data.chunks_exact(2) {
                if result.is_err() {
                    break;
                }
                let value = u16::from_be_bytes([chunk[0], chunk[1]]);
                result = match address.map(|a| candidate.set_holding(a, value)) {
                    Some(Ok(())) => Ok(()),
                    Some(Err(WriteError::OutOfRange)) => Err(ErrorKind::IllegalDataValue),
                    Some(Err(WriteError::NoSuchRegister)) | None => {
                        Err(ErrorKind::IllegalDataAddress)
                    }
                };
                address = address.and_then(|a| a.checked_add(1));
            }
            if result.is_ok() {
                *settings = candidate;
            }
            result
        }
        Ok(Write::Bits(_)) => Err(ErrorKind::IllegalFunction),
        Err(e) => Err(e),
    };
    modbus.process_external_write(result)
}

/// Exception 01 for function codes rmodbus knows but the node does not implement.
fn illegal_function(frame: &[u8], reply: &mut Reply) -> FrameOutcome {
    let silent = FrameOutcome::default();
    if frame[0] == BROADCAST {
        return silent;
    }
    let body = [frame[0], frame[1] | 0x80, 0x01];
    let crc = crate::crc::crc16_modbus(&body).to_le_bytes();
    if reply.extend_from_slice(&body).is_err() || reply.extend_from_slice(&crc).is_err() {
        reply.clear();
        return silent;
    }
    FrameOutcome {
        reply: true,
        settings_changed: false,
    }
}
