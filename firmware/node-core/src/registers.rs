//! The node's register map, identical to `config/devices/room-node.toml` (the contract).
//!
//! Addresses are 0-based protocol addresses.
//!
//! | table   | addr | name               | type | unit / meaning                                  |
//! |---------|------|--------------------|------|-------------------------------------------------|
//! | input   | 0    | temperature        | i16  | 0.01 °C; `0x7FFF` no sensor / fault             |
//! | input   | 1    | humidity           | u16  | 0.01 %RH; `0xFFFF` no humidity / fault          |
//! | input   | 2    | status             | u16  | flags, see [`status`]                           |
//! | input   | 3    | sample_counter     | u16  | +1 (wrapping) per published temperature         |
//! | input   | 4    | unchanged_s        | u16  | s since the published temperature changed (sat.) |
//! | input   | 5-6  | uptime_s           | u32  | s since start, high word at 5                   |
//! | input   | 7    | firmware_version   | u16  | major * 256 + minor                             |
//! | holding | 0    | unit_id            | u16  | 1 ..= 247                                       |
//! | holding | 1    | calibration_offset | i16  | 0.01 K, -500 ..= 500                            |
//! | holding | 2    | report_interval_s  | u16  | s, 10 ..= 3600                                  |

/// Input register addresses (function 04).
pub mod input {
    /// Temperature, i16, 0.01 °C.
    pub const TEMPERATURE: u16 = 0;
    /// Relative humidity, u16, 0.01 %RH.
    pub const HUMIDITY: u16 = 1;
    /// Status flags, see [`super::status`].
    pub const STATUS: u16 = 2;
    /// Published-sample counter, wrapping.
    pub const SAMPLE_COUNTER: u16 = 3;
    /// Seconds since the published temperature last changed, saturating.
    pub const UNCHANGED_S: u16 = 4;
    /// Uptime in seconds, high word.
    pub const UPTIME_HIGH: u16 = 5;
    /// Uptime in seconds, low word.
    pub const UPTIME_LOW: u16 = 6;
    /// Firmware version, major * 256 + minor.
    pub const FIRMWARE_VERSION: u16 = 7;
    /// Number of input registers.
    pub const COUNT: usize = 8;
}

/// Holding register addresses (functions 03, 06, 16): the persisted settings.
pub mod holding {
    /// Modbus unit id, 1 ..= 247.
    pub const UNIT_ID: u16 = 0;
    /// Calibration offset added to the temperature, i16, 0.01 K.
    pub const CALIBRATION_OFFSET: u16 = 1;
    /// Seconds between published temperatures.
    pub const REPORT_INTERVAL_S: u16 = 2;
    /// Number of holding registers.
    pub const COUNT: usize = 3;
}

/// Bits of the status register (input 2).
pub mod status {
    /// The sensor did not answer (NACK, bus error).
    pub const SENSOR_FAULT: u16 = 1 << 0;
    /// The sensor answered with a CRC error.
    pub const SENSOR_CRC: u16 = 1 << 1;
    /// Settings are factory defaults: both flash slots were bad at start.
    pub const FACTORY_DEFAULTS: u16 = 1 << 2;
    /// The last raw sample was rejected as a spike.
    pub const SPIKE_REJECTED: u16 = 1 << 3;
    /// The node has just started; cleared after the first sample.
    pub const JUST_STARTED: u16 = 1 << 15;
}

/// Temperature register value meaning "no sensor or sensor fault".
pub const TEMPERATURE_NONE: i16 = 0x7FFF;
/// Humidity register value meaning "no humidity (sensor without RH, or fault)".
pub const HUMIDITY_NONE: u16 = 0xFFFF;

/// Firmware version as published in input 7: major * 256 + minor.
pub const FIRMWARE_VERSION: u16 = 0x0001;

/// Why a holding-register write was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteError {
    /// No writable holding register at that address (Modbus exception 02).
    NoSuchRegister,
    /// The value is outside the register's range (Modbus exception 03).
    OutOfRange,
}

/// The node's settings: the holding registers, persisted in flash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Modbus unit id, 1 ..= 247.
    pub unit_id: u8,
    /// Calibration offset in 0.01 K, -500 ..= 500.
    pub calibration_offset_centi_k: i16,
    /// Seconds between published temperatures, 10 ..= 3600.
    pub report_interval_s: u16,
}

impl Settings {
    /// Lowest valid unit id.
    pub const UNIT_ID_MIN: u16 = 1;
    /// Highest valid unit id (248 ..= 255 are reserved by Modbus).
    pub const UNIT_ID_MAX: u16 = 247;
    /// Calibration offset limit in 0.01 K (±5 K).
    pub const OFFSET_LIMIT_CENTI_K: i16 = 500;
    /// Shortest report interval in seconds.
    pub const INTERVAL_MIN_S: u16 = 10;
    /// Longest report interval in seconds.
    pub const INTERVAL_MAX_S: u16 = 3600;

    /// Factory defaults: unit 1, no offset, a report every 60 s.
    pub const FACTORY: Settings = Settings {
        unit_id: 1,
        calibration_offset_centi_k: 0,
        report_interval_s: 60,
    };

    /// True when every field is in its range.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        (Self::UNIT_ID_MIN..=Self::UNIT_ID_MAX).contains(&u16::from(self.unit_id))
            && (-Self::OFFSET_LIMIT_CENTI_K..=Self::OFFSET_LIMIT_CENTI_K)
                .contains(&self.calibration_offset_centi_k)
            && (Self::INTERVAL_MIN_S..=Self::INTERVAL_MAX_S).contains(&self.report_interval_s)
    }

    /// The holding register at `address`, if there is one.
    #[must_use]
    pub fn holding(&self, address: u16) -> Option<u16> {
        match address {
            holding::UNIT_ID => Some(u16::from(self.unit_id)),
            holding::CALIBRATION_OFFSET => Some(self.calibration_offset_centi_k.cast_unsigned()),
            holding::REPORT_INTERVAL_S => Some(self.report_interval_s),
            _ => None,
        }
    }

    /// Sets the holding register at `address` after checking its range; unchanged on error.
    pub fn set_holding(&mut self, address: u16, value: u16) -> Result<(), WriteError> {
        match address {
            holding::UNIT_ID => {
                if !(Self::UNIT_ID_MIN..=Self::UNIT_ID_MAX).contains(&value) {
                    return Err(WriteError::OutOfRange);
                }
                self.unit_id = u8::try_from(value).map_err(|_| WriteError::OutOfRange)?;
            }
            holding::CALIBRATION_OFFSET => {
                let offset = value.cast_signed();
                if !(-Self::OFFSET_LIMIT_CENTI_K..=Self::OFFSET_LIMIT_CENTI_K).contains(&offset) {
                    return Err(WriteError::OutOfRange);
                }
                self.calibration_offset_centi_k = offset;
            }
            holding::REPORT_INTERVAL_S => {
                if !(Self::INTERVAL_MIN_S..=Self::INTERVAL_MAX_S).contains(&value) {
                    return Err(WriteError::OutOfRange);
                }
                self.report_interval_s = value;
            }
            _ => return Err(WriteError::NoSuchRegister),
        }
        Ok(())
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self::FACTORY
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firmware_version_matches_the_crate_version() {
        let major: u16 = env!("CARGO_PKG_VERSION_MAJOR").parse().unwrap();
        let minor: u16 = env!("CARGO_PKG_VERSION_MINOR").parse().unwrap();
        assert_eq!(FIRMWARE_VERSION, major * 256 + minor);
    }

    #[test]
    fn ranges_are_checked_at_both_ends() {
        let mut s = Settings::FACTORY;
        assert!(s.is_valid());
        assert_eq!(s.set_holding(0, 0), Err(WriteError::OutOfRange));
        assert_eq!(s.set_holding(0, 248), Err(WriteError::OutOfRange));
        assert_eq!(s.set_holding(0, 247), Ok(()));
        assert_eq!(s.set_holding(1, 501), Err(WriteError::OutOfRange));
        assert_eq!(
            s.set_holding(1, (-501i16).cast_unsigned()),
            Err(WriteError::OutOfRange)
        );
        assert_eq!(s.set_holding(1, (-500i16).cast_unsigned()), Ok(()));
        assert_eq!(s.set_holding(2, 9), Err(WriteError::OutOfRange));
        assert_eq!(s.set_holding(2, 3601), Err(WriteError::OutOfRange));
        assert_eq!(s.set_holding(2, 10), Ok(()));
        assert_eq!(s.set_holding(3, 1), Err(WriteError::NoSuchRegister));
        assert_eq!(
            s,
            Settings {
                unit_id: 247,
                calibration_offset_centi_k: -500,
                report_interval_s: 10
            }
        );
        assert_eq!(s.holding(1), Some(0xFE0C));
        assert_eq!(s.holding(3), None);
    }
}
