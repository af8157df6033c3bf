//! Sensirion SHT4x (SHT40/41/45) through the `sht4x` crate, as a [`RoomSensor`].
//!
//! The raw words are converted here with integer arithmetic (datasheet: T = -45 + 175 * S/65535,
//! RH = -6 + 125 * S/65535, RH clamped to 0 ..= 100 %) to keep fixed-point code off the node.

use embedded_hal::{delay::DelayNs, i2c::I2c};
use sht4x::{Error, Precision, Sht4x};

use super::{Reading, RoomSensor, SensorFault};

/// An SHT4x as a [`RoomSensor`], measuring at high precision.
#[derive(Debug)]
pub struct Sht4xSensor<I, D> {
    driver: Sht4x<I, D>,
}

impl<I: I2c, D: DelayNs> Sht4xSensor<I, D> {
    /// Wraps the `sht4x` driver (address chosen by its constructor).
    pub fn new(driver: Sht4x<I, D>) -> Self {
        Self { driver }
    }

    /// Gives the driver back.
    pub fn destroy(self) -> Sht4x<I, D> {
        self.driver
    }
}

/// Raw SHT4x temperature word to m°C, rounded to nearest.
#[must_use]
pub fn temperature_milli_c(raw: u16) -> i32 {
    -45_000 + scale_rounded(raw, 175_000)
}

/// Raw SHT4x humidity word to m%RH, rounded to nearest and clamped to 0 ..= 100 %.
#[must_use]
pub fn humidity_milli_pct(raw: u16) -> i32 {
    (-6_000 + scale_rounded(raw, 125_000)).clamp(0, 100_000)
}

fn scale_rounded(raw: u16, span: u32) -> i32 {
    let scaled = (u64::from(raw) * u64::from(span) + 32_767) / 65_535;
    // scaled <= span < 2^31
    i32::try_from(scaled).unwrap_or(i32::MAX)
}

impl<I: I2c, D: DelayNs> RoomSensor<D> for Sht4xSensor<I, D> {
    fn read(&mut self, delay: &mut D) -> Result<Reading, SensorFault> {
        match self.driver.measure_raw(Precision::High, delay) {
            Ok(raw) => Ok(Reading {
                temperature_milli_c: temperature_milli_c(raw.temperature),
                humidity_milli_pct: Some(humidity_milli_pct(raw.humidity)),
            }),
            Err(Error::Crc) => Err(SensorFault::Crc),
            Err(_) => Err(SensorFault::NoAnswer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal::i2c::ErrorKind;
    use embedded_hal_mock::eh1::{
        delay::NoopDelay,
        i2c::{Mock, Transaction},
    };

    const ADDR: u8 = 0x44;
    const MEASURE_HIGH_PRECISION: u8 = 0xFD;

    /// Sensirion CRC-8 (poly 0x31, init 0xFF), written here independently of the driver.
    fn crc8(bytes: &[u8]) -> u8 {
        let mut crc = 0xFFu8;
        for &b in bytes {
            crc ^= b;
            for _ in 0..8 {
                crc = if crc & 0x80 != 0 {
                    (crc << 1) ^ 0x31
                } else {
                    crc << 1
                };
            }
        }
        crc
    }

    fn response(t: u16, rh: u16) -> Vec<u8> {
        let [t0, t1] = t.to_be_bytes();
        let [h0, h1] = rh.to_be_bytes();
        vec![t0, t1, crc8(&[t0, t1]), h0, h1, crc8(&[h0, h1])]
    }

    #[test]
    fn crc8_check_value() {
        // Datasheet example: 0xBEEF -> 0x92.
        assert_eq!(crc8(&[0xBE, 0xEF]), 0x92);
    }

    #[test]
    fn conversion_endpoints() {
        assert_eq!(temperature_milli_c(0), -45_000);
        assert_eq!(temperature_milli_c(0xFFFF), 130_000);
        assert_eq!(humidity_milli_pct(0), 0);
        assert_eq!(humidity_milli_pct(0xFFFF), 100_000);
        // 21.5 °C: S = (21.5 + 45) / 175 * 65535 = 24903.3
        assert_eq!(temperature_milli_c(24_903), 21_499);
        // 50 %RH: S = 56 / 125 * 65535 = 29359.7; 29360 is 50.0006 %RH.
        assert_eq!(humidity_milli_pct(29_360), 50_001);
    }

    #[test]
    fn reads_temperature_and_humidity() {
        let expectations = [
            Transaction::write(ADDR, vec![MEASURE_HIGH_PRECISION]),
            Transaction::read(ADDR, response(24_903, 29_360)),
        ];
        let mut sensor = Sht4xSensor::new(Sht4x::new(Mock::new(&expectations)));
        let reading = sensor.read(&mut NoopDelay::new()).unwrap();
        assert_eq!(
            reading,
            Reading {
                temperature_milli_c: 21_499,
                humidity_milli_pct: Some(50_001)
            }
        );
        sensor.destroy().destroy().done();
    }

    #[test]
    fn crc_error_and_nack_are_told_apart() {
        let mut corrupt = response(24_903, 29_360);
        corrupt[2] ^= 0x01;
        let expectations = [
            Transaction::write(ADDR, vec![MEASURE_HIGH_PRECISION]),
            Transaction::read(ADDR, corrupt),
            Transaction::write(ADDR, vec![MEASURE_HIGH_PRECISION]).with_error(ErrorKind::Other),
        ];
        let mut sensor = Sht4xSensor::new(Sht4x::new(Mock::new(&expectations)));
        let mut delay = NoopDelay::new();
        assert_eq!(sensor.read(&mut delay), Err(SensorFault::Crc));
        assert_eq!(sensor.read(&mut delay), Err(SensorFault::NoAnswer));
        sensor.destroy().destroy().done();
    }
}
