//! Checksums: CRC-16/MODBUS for RTU frames, CRC-32 (IEEE) for the settings record.
//!
//! Bitwise, table-free: a few dozen bytes of code matter more on the node than speed.

/// CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF) of `bytes`.
///
/// On the wire the CRC follows the frame low byte first.
#[must_use]
pub fn crc16_modbus(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &byte in bytes {
        crc ^= u16::from(byte);
        for _ in 0..8 {
            let lsb = crc & 1;
            crc >>= 1;
            if lsb != 0 {
                crc ^= 0xA001;
            }
        }
    }
    crc
}

/// True when `frame` (address .. data, then the CRC low byte first) carries a valid CRC.
#[must_use]
pub fn rtu_crc_ok(frame: &[u8]) -> bool {
    match frame.len().checked_sub(2) {
        Some(body) if body > 0 => {
            crc16_modbus(&frame[..body]) == u16::from_le_bytes([frame[body], frame[body + 1]])
        }
        _ => false,
    }
}

/// CRC-32 (IEEE 802.3, reflected poly 0xEDB88320, init and final xor 0xFFFF_FFFF).
#[must_use]
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc: u32 = 0xFFFF_FFFF;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let lsb = crc & 1;
            crc >>= 1;
            if lsb != 0 {
                crc ^= 0xEDB8_8320;
            }
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_check_value() {
        // The catalogue check value of CRC-16/MODBUS over "123456789".
        assert_eq!(crc16_modbus(b"123456789"), 0x4B37);
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn rtu_frame_check() {
        // Read holding registers 0..2 of unit 1: a frame seen in many manuals.
        let frame = [0x01, 0x03, 0x00, 0x00, 0x00, 0x02, 0xC4, 0x0B];
        assert!(rtu_crc_ok(&frame));
        let mut bad = frame;
        bad[3] ^= 1;
        assert!(!rtu_crc_ok(&bad));
        assert!(!rtu_crc_ok(&frame[..2]));
        assert!(!rtu_crc_ok(&[]));
    }
}
