//! UART0 as embedded-io byte streams: 9600 8N1, 16-byte FIFOs, polled.

use core::convert::Infallible;

use embedded_io::{ErrorType, Read, ReadReady, Write};

use crate::clock::SYSCLK_HZ;
use crate::regs::{gpio, sysctl, uart0};

/// Line speed of the RS-485 bus (the register map's default).
pub const BAUD: u32 = 9_600;

/// Enables UART0 on PA0 (RX) / PA1 (TX).
pub fn init() -> (Rx, Tx) {
    sysctl::RCGC1.set_bits(1 << 0);
    sysctl::RCGC2.set_bits(1 << 0);
    gpio::PORT_A.afsel().set_bits(0b11);
    gpio::PORT_A.den().set_bits(0b11);

    uart0::CTL.write(0);
    // Divisor = SYSCLK / (16 * baud) in 1/64 steps, rounded.
    let div64 = (SYSCLK_HZ * 4 + BAUD / 2) / BAUD;
    uart0::IBRD.write(div64 / 64);
    uart0::FBRD.write(div64 % 64);
    // 8 data bits, FIFOs on, no parity, one stop bit.
    uart0::LCRH.write(0b11 << 5 | 1 << 4);
    // UART enable, TX enable, RX enable.
    uart0::CTL.write(1 << 0 | 1 << 8 | 1 << 9);
    (Rx, Tx)
}

/// UART0 receiver.
pub struct Rx;
/// UART0 transmitter.
pub struct Tx;

impl ErrorType for Rx {
    type Error = Infallible;
}
impl ErrorType for Tx {
    type Error = Infallible;
}

impl ReadReady for Rx {
    fn read_ready(&mut self) -> Result<bool, Infallible> {
        Ok(uart0::FR.read() & uart0::FR_RXFE == 0)
    }
}

impl Read for Rx {
    /// Returns what the FIFO holds (blocking for the first byte only).
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let mut n = 0;
        while n < buf.len() {
            if uart0::FR.read() & uart0::FR_RXFE != 0 {
                if n > 0 {
                    break;
                }
                continue;
            }
            // Bits 11..8 are error flags; the frame's CRC catches what they would tell.
            buf[n] = (uart0::DR.read() & 0xFF) as u8;
            n += 1;
        }
        Ok(n)
    }
}

impl Write for Tx {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        for &byte in buf {
            while uart0::FR.read() & uart0::FR_TXFF != 0 {}
            uart0::DR.write(u32::from(byte));
        }
        Ok(buf.len())
    }

    /// Waits until the last stop bit has left the shift register.
    fn flush(&mut self) -> Result<(), Infallible> {
        while uart0::FR.read() & uart0::FR_BUSY != 0 {}
        Ok(())
    }
}
