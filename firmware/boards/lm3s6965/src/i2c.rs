//! The Stellaris I2C0 master as an embedded-hal 1.0 `I2c`, polled, 100 kHz.
//!
//! Each operation of a transaction starts with a START (a repeated START after the first);
//! STOP ends the last one. QEMU's model never reports BUSY, reports a missing device as
//! ERROR + ARBLST, and ignores a repeated START while the bus is held; the TMP105 driver
//! therefore uses separate write and read transactions.

use embedded_hal::i2c::{self, ErrorKind, NoAcknowledgeSource, Operation, SevenBitAddress};

use crate::clock::SYSCLK_HZ;
use crate::regs::{gpio, i2c0, sysctl};

const RUN: u32 = 1 << 0;
const START: u32 = 1 << 1;
const STOP: u32 = 1 << 2;
const ACK: u32 = 1 << 3;

const BUSY: u32 = 1 << 0;
const ERROR: u32 = 1 << 1;
const ADRACK: u32 = 1 << 2;
const DATACK: u32 = 1 << 3;
const ARBLST: u32 = 1 << 4;

const SCL_HZ: u32 = 100_000;
/// Give up on a controller that stays busy this many polls (a stuck bus).
const BUSY_SPINS: u32 = 100_000;

/// I2C0 on PB2 (SCL) / PB3 (SDA).
pub struct I2c0 {
    _private: (),
}

impl I2c0 {
    /// Enables the controller as master at 100 kHz.
    pub fn init() -> Self {
        sysctl::RCGC1.set_bits(1 << 12);
        sysctl::RCGC2.set_bits(1 << 1);
        gpio::PORT_B.afsel().set_bits(0b1100);
        gpio::PORT_B.odr().set_bits(0b1100);
        gpio::PORT_B.den().set_bits(0b1100);
        i2c0::MCR.write(1 << 4);
        // SCL period = 2 * (1 + TPR) * (6 + 4) system clocks.
        i2c0::MTPR.write(SYSCLK_HZ / (2 * 10 * SCL_HZ) - 1);
        Self { _private: () }
    }

    fn run(&mut self, command: u32) -> Result<(), ErrorKind> {
        i2c0::MCS.write(command);
        let mut spins = 0;
        let status = loop {
            let status = i2c0::MCS.read();
            if status & BUSY == 0 {
                break status;
            }
            spins += 1;
            if spins > BUSY_SPINS {
                return Err(ErrorKind::Bus);
            }
        };
        if status & ERROR == 0 {
            return Ok(());
        }
        let kind = if status & ARBLST != 0 {
            ErrorKind::ArbitrationLoss
        } else if status & ADRACK != 0 {
            ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address)
        } else if status & DATACK != 0 {
            ErrorKind::NoAcknowledge(NoAcknowledgeSource::Data)
        } else {
            ErrorKind::NoAcknowledge(NoAcknowledgeSource::Unknown)
        };
        if status & ARBLST == 0 {
            // Release the bus after a NACK.
            i2c0::MCS.write(STOP);
        }
        Err(kind)
    }
}

impl i2c::ErrorType for I2c0 {
    type Error = ErrorKind;
}

impl i2c::I2c<SevenBitAddress> for I2c0 {
    fn transaction(
        &mut self,
        address: SevenBitAddress,
        operations: &mut [Operation<'_>],
    ) -> Result<(), Self::Error> {
        let count = operations.len();
        for (i, operation) in operations.iter_mut().enumerate() {
            let last_op = i + 1 == count;
            match operation {
                Operation::Write(bytes) => {
                    i2c0::MSA.write(u32::from(address) << 1);
                    let n = bytes.len();
                    for (j, &byte) in bytes.iter().enumerate() {
                        i2c0::MDR.write(u32::from(byte));
                        let mut command = RUN;
                        if j == 0 {
                            command |= START;
                        }
                        if j + 1 == n && last_op {
                            command |= STOP;
                        }
                        self.run(command)?;
                    }
                }
                Operation::Read(buf) => {
                    i2c0::MSA.write(u32::from(address) << 1 | 1);
                    let n = buf.len();
                    for (j, byte) in buf.iter_mut().enumerate() {
                        let mut command = RUN;
                        if j == 0 {
                            command |= START;
                        }
                        if j + 1 < n {
                            command |= ACK;
                        } else if last_op {
                            command |= STOP;
                        }
                        self.run(command)?;
                        *byte = (i2c0::MDR.read() & 0xFF) as u8;
                    }
                }
            }
        }
        Ok(())
    }
}
