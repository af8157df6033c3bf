//! Adapters from embassy-rp's blocking UART halves to the embedded-io traits the node uses.

use core::convert::Infallible;

use embassy_rp::uart::{Blocking, UartRx, UartTx};
use embedded_io::{ErrorType, Read, ReadReady, Write};

/// The receiver as embedded-io `Read + ReadReady`, via its non-blocking `embedded-hal-nb` read.
///
/// Line errors (framing, parity, break, overrun) drop the byte: the frame's CRC then fails and
/// the frame is discarded, which is what Modbus RTU asks for.
pub struct Rx<'d> {
    uart: UartRx<'d, Blocking>,
    pending: Option<u8>,
}

impl<'d> Rx<'d> {
    /// Wraps the receiver.
    pub fn new(uart: UartRx<'d, Blocking>) -> Self {
        Self {
            uart,
            pending: None,
        }
    }

    fn poll(&mut self) -> Option<u8> {
        if let Some(byte) = self.pending.take() {
            return Some(byte);
        }
        loop {
            match embedded_hal_nb::serial::Read::read(&mut self.uart) {
                Ok(byte) => return Some(byte),
                Err(nb::Error::WouldBlock) => return None,
                Err(nb::Error::Other(_)) => continue,
            }
        }
    }
}

impl ErrorType for Rx<'_> {
    type Error = Infallible;
}

impl ReadReady for Rx<'_> {
    fn read_ready(&mut self) -> Result<bool, Infallible> {
        if self.pending.is_none() {
            self.pending = self.poll();
        }
        Ok(self.pending.is_some())
    }
}

impl Read for Rx<'_> {
    /// Returns what the FIFO holds; blocks only until the first byte.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let mut n = 0;
        while n < buf.len() {
            match self.poll() {
                Some(byte) => {
                    buf[n] = byte;
                    n += 1;
                }
                None if n > 0 || buf.is_empty() => break,
                None => {}
            }
        }
        Ok(n)
    }
}

/// The transmitter, with a flush that waits for the shift register too.
///
/// embassy-rp's `blocking_flush` returns when the TX FIFO is empty, while the last byte is
/// still being shifted out; dropping the RS-485 driver enable then would cut it off.
pub struct Tx<'d> {
    uart: UartTx<'d, Blocking>,
}

impl<'d> Tx<'d> {
    /// Wraps the transmitter.
    pub fn new(uart: UartTx<'d, Blocking>) -> Self {
        Self { uart }
    }
}

impl ErrorType for Tx<'_> {
    type Error = embassy_rp::uart::Error;
}

impl Write for Tx<'_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.uart.blocking_write(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        self.uart.blocking_flush()?;
        while self.uart.busy() {}
        Ok(())
    }
}
