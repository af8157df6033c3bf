//! Room-temperature node firmware core (`no_std`, no allocator).
//!
//! Everything the node does that is not a register poke lives here, generic over
//! embedded-hal 1.0 (I2C, delay), embedded-io 0.7 (UART) and embedded-storage 0.3 (settings
//! flash), so it builds and is tested on the host:
//!
//! - [`sensor`]: one [`sensor::RoomSensor`] trait over an SHT4x (the `sht4x` crate) and a
//!   TMP105 / LM75-class driver of our own;
//! - [`filter`]: single-spike rejection, then a short moving average;
//! - [`registers`]: the register map of `config/devices/room-node.toml` and the settings;
//! - [`node`]: the sans-I/O node state (sampling schedule, calibration, counters, status);
//! - [`slave`]: the Modbus RTU slave (rmodbus) and [`framer`], the idle-gap frame splitter;
//! - [`store`]: settings persisted in two CRC-checked flash slots.
#![cfg_attr(not(test), no_std)]

pub mod crc;
pub mod filter;
pub mod framer;
#[doc(hidden)]
pub mod fuzzing;
pub mod node;
pub mod registers;
pub mod rs485;
pub mod sensor;
pub mod slave;
pub mod store;

pub use node::Node;
pub use registers::Settings;
