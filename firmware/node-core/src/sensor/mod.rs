//! Room sensors behind one trait.
//!
//! A board picks one sensor; the node only sees [`RoomSensor::read`], which returns integer
//! milli-units or a [`SensorFault`] that ends up in the status register.

pub mod sht4x;
pub mod tmp105;

pub use self::sht4x::Sht4xSensor;
pub use self::tmp105::{Tmp105, Tmp105Sensor};

/// One measurement in integer milli-units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// Air temperature in m°C.
    pub temperature_milli_c: i32,
    /// Relative humidity in m%RH, `None` for a sensor without humidity.
    pub humidity_milli_pct: Option<i32>,
}

/// Why a sensor gave no reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SensorFault {
    /// No answer: NACK, arbitration loss, bus error (status bit 0).
    NoAnswer,
    /// The sensor answered but its CRC did not match (status bit 1).
    Crc,
}

/// A room-air sensor the node can sample.
///
/// `D` is the delay the sensor may need between starting a conversion and reading it.
pub trait RoomSensor<D> {
    /// Takes one measurement.
    fn read(&mut self, delay: &mut D) -> Result<Reading, SensorFault>;
}
