//! TMP105 / LM75-class I2C temperature sensor (TI TMP105, TMP75, NXP LM75B and kin).
//!
//! Register pointer 0 is the temperature (two bytes, two's complement, left-justified: the
//! 12-bit value sits in bits 15..4, 0.0625 °C per count), pointer 1 the configuration (bits
//! 6..5 the resolution, `11` = 12 bits). The pointer is written in its own transaction with a
//! STOP, then read in a second one: some controllers (and QEMU's Stellaris I2C) do not handle
//! a repeated START.

use embedded_hal::i2c::I2c;

use super::{Reading, RoomSensor, SensorFault};

const POINTER_TEMPERATURE: u8 = 0x00;
const POINTER_CONFIG: u8 = 0x01;
/// Configuration: continuous conversion, 12-bit resolution (R1 = R0 = 1), comparator mode.
const CONFIG_12_BIT: u8 = 0b0110_0000;

/// Errors of the TMP105 driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error<E> {
    /// The I2C transaction failed.
    I2c(E),
}

/// TMP105 / LM75-class driver.
#[derive(Debug)]
pub struct Tmp105<I> {
    bus: I,
    address: u8,
}

impl<I: I2c> Tmp105<I> {
    /// A driver for the sensor at 7-bit `address` (0x48 ..= 0x4F); touches no bus yet.
    pub fn new(bus: I, address: u8) -> Self {
        Self { bus, address }
    }

    /// Gives the bus back.
    pub fn destroy(self) -> I {
        self.bus
    }

    /// Switches to 12-bit resolution (0.0625 °C), continuous conversion.
    pub fn set_12_bit(&mut self) -> Result<(), Error<I::Error>> {
        self.bus
            .write(self.address, &[POINTER_CONFIG, CONFIG_12_BIT])
            .map_err(Error::I2c)
    }

    /// Reads the last conversion in m°C (rounded toward zero to whole m°C).
    pub fn temperature_milli_c(&mut self) -> Result<i32, Error<I::Error>> {
        let raw = self.temperature_raw()?;
        Ok(raw_to_milli_c(raw))
    }

    /// Reads the raw, left-justified temperature register.
    pub fn temperature_raw(&mut self) -> Result<i16, Error<I::Error>> {
        self.bus
            .write(self.address, &[POINTER_TEMPERATURE])
            .map_err(Error::I2c)?;
        let mut bytes = [0u8; 2];
        self.bus
            .read(self.address, &mut bytes)
            .map_err(Error::I2c)?;
        Ok(i16::from_be_bytes(bytes))
    }
}

/// Converts the left-justified register (1/256 °C per LSB; the low 4 bits are 0 in 12-bit
/// mode) to m°C, rounding toward zero.
#[must_use]
pub fn raw_to_milli_c(raw: i16) -> i32 {
    // 1000 / 256 = 125 / 32; exact for every 12-bit value but the odd 1/16 steps (x.5 m°C).
    i32::from(raw) * 125 / 32
}

/// A [`Tmp105`] as a [`RoomSensor`]: no humidity, re-configured for 12 bits after any error
/// (so a sensor that was replugged or reset comes back at full resolution).
#[derive(Debug)]
pub struct Tmp105Sensor<I> {
    driver: Tmp105<I>,
    configured: bool,
}

impl<I: I2c> Tmp105Sensor<I> {
    /// Wraps a driver; the first read configures 12 bits.
    pub fn new(driver: Tmp105<I>) -> Self {
        Self {
            driver,
            configured: false,
        }
    }

    /// Gives the driver back.
    pub fn destroy(self) -> Tmp105<I> {
        self.driver
    }

    fn try_read(&mut self) -> Result<i32, Error<I::Error>> {
        if !self.configured {
            self.driver.set_12_bit()?;
            self.configured = true;
        }
        self.driver.temperature_milli_c()
    }
}

impl<I: I2c, D> RoomSensor<D> for Tmp105Sensor<I> {
    fn read(&mut self, _delay: &mut D) -> Result<Reading, SensorFault> {
        match self.try_read() {
            Ok(milli_c) => Ok(Reading {
                temperature_milli_c: milli_c,
                humidity_milli_pct: None,
            }),
            Err(Error::I2c(_)) => {
                self.configured = false;
                Err(SensorFault::NoAnswer)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal::i2c::ErrorKind;
    use embedded_hal_mock::eh1::i2c::{Mock, Transaction};

    const ADDR: u8 = 0x48;

    fn read_temp(bytes: [u8; 2]) -> [Transaction; 2] {
        [
            Transaction::write(ADDR, vec![0x00]),
            Transaction::read(ADDR, bytes.to_vec()),
        ]
    }

    #[test]
    fn conversion_covers_sign_and_fraction() {
        // Datasheet table (TMP105, 12-bit): 0x7FF0 = 127.9375, 0x1900 = 25, 0x0040 = 0.25,
        // 0xFFC0 = -0.25, 0xE700 = -25, 0xC900 = -55.
        assert_eq!(raw_to_milli_c(0x7FF0), 127_937);
        assert_eq!(raw_to_milli_c(0x1900), 25_000);
        assert_eq!(raw_to_milli_c(0x0040), 250);
        assert_eq!(raw_to_milli_c(0xFFC0u16.cast_signed()), -250);
        assert_eq!(raw_to_milli_c(0xE700u16.cast_signed()), -25_000);
        assert_eq!(raw_to_milli_c(0xC900u16.cast_signed()), -55_000);
        assert_eq!(raw_to_milli_c(0x1560), 21_375);
        // One count below zero: -0.0625 °C, rounded toward zero.
        assert_eq!(raw_to_milli_c(0xFFF0u16.cast_signed()), -62);
    }

    #[test]
    fn driver_writes_pointer_then_reads() {
        let expectations = [
            Transaction::write(ADDR, vec![0x01, 0x60]),
            Transaction::write(ADDR, vec![0x00]),
            Transaction::read(ADDR, vec![0xE7, 0x00]),
        ];
        let mut driver = Tmp105::new(Mock::new(&expectations), ADDR);
        driver.set_12_bit().unwrap();
        assert_eq!(driver.temperature_milli_c().unwrap(), -25_000);
        driver.destroy().done();
    }

    #[test]
    fn sensor_configures_once_and_again_after_an_error() {
        let mut expectations = vec![Transaction::write(ADDR, vec![0x01, 0x60])];
        expectations.extend(read_temp([0x15, 0x60]));
        expectations.extend(read_temp([0x15, 0x70]));
        expectations.push(Transaction::write(ADDR, vec![0x00]).with_error(ErrorKind::Other));
        expectations.push(Transaction::write(ADDR, vec![0x01, 0x60]));
        expectations.extend(read_temp([0x19, 0x00]));
        let mut sensor = Tmp105Sensor::new(Tmp105::new(Mock::new(&expectations), ADDR));
        let mut delay = ();
        assert_eq!(
            sensor.read(&mut delay),
            Ok(Reading {
                temperature_milli_c: 21_375,
                humidity_milli_pct: None
            })
        );
        assert_eq!(sensor.read(&mut delay).unwrap().temperature_milli_c, 21_437);
        assert_eq!(sensor.read(&mut delay), Err(SensorFault::NoAnswer));
        assert_eq!(sensor.read(&mut delay).unwrap().temperature_milli_c, 25_000);
        sensor.destroy().destroy().done();
    }
}
