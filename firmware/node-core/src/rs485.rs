//! RS-485 half duplex: drive the transceiver's DE pin around a transmission.

use embedded_hal::digital::OutputPin;
use embedded_io::{ErrorType, Write};

/// A UART transmitter wrapped with a driver-enable pin.
///
/// DE goes high before the first byte and low after [`Write::flush`], which must return only
/// once the last stop bit has left the shift register (check the HAL does this).
#[derive(Debug)]
pub struct Rs485<U, P> {
    uart: U,
    de: P,
}

impl<U: Write, P: OutputPin> Rs485<U, P> {
    /// Wraps `uart`; releases the bus (DE low) at once.
    pub fn new(uart: U, mut de: P) -> Self {
        // A GPIO that cannot be set is a board bug; the first write will try again.
        let _ = de.set_low();
        Self { uart, de }
    }

    /// Gives the parts back.
    pub fn destroy(self) -> (U, P) {
        (self.uart, self.de)
    }
}

impl<U: Write, P: OutputPin> ErrorType for Rs485<U, P> {
    type Error = U::Error;
}

impl<U: Write, P: OutputPin> Write for Rs485<U, P> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        let _ = self.de.set_high();
        self.uart.write(buf)
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        let result = self.uart.flush();
        let _ = self.de.set_low();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal_mock::eh1::digital::{Mock as PinMock, State, Transaction as PinTx};

    #[derive(Default)]
    struct Sink(Vec<u8>);
    impl ErrorType for Sink {
        type Error = core::convert::Infallible;
    }
    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
            self.0.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    #[test]
    fn de_wraps_the_transmission() {
        let pin = PinMock::new(&[
            PinTx::set(State::Low),
            PinTx::set(State::High),
            PinTx::set(State::Low),
        ]);
        let mut port = Rs485::new(Sink::default(), pin);
        port.write_all(&[1, 2, 3]).unwrap();
        port.flush().unwrap();
        let (sink, mut pin) = port.destroy();
        assert_eq!(sink.0, [1, 2, 3]);
        pin.done();
    }
}
