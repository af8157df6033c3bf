//! Splits the UART byte stream into RTU frames at idle gaps.
//!
//! Modbus RTU ends a frame with a silence of at least 3.5 character times (fixed at 1.75 ms
//! above 19200 baud). The board stamps received bytes with a monotonic microsecond clock;
//! once the line has been quiet for the gap the collected bytes are one frame. A frame longer
//! than [`MAX_FRAME`] is discarded whole.

use embedded_io::{Read, ReadReady};

use crate::slave::MAX_FRAME;

/// Bits per character on the wire: start, 8 data, parity or second stop, stop.
const BITS_PER_CHAR: u64 = 11;

/// The 3.5-character inter-frame gap for `baud`, in microseconds.
#[must_use]
pub const fn idle_gap_us(baud: u32) -> u64 {
    if baud > 19_200 {
        1_750
    } else {
        // 3.5 chars = 7 half chars.
        (7 * BITS_PER_CHAR * 1_000_000).div_ceil(2 * baud as u64)
    }
}

/// Idle-gap frame splitter.
#[derive(Debug)]
pub struct RtuFramer {
    buf: [u8; MAX_FRAME],
    len: usize,
    overflow: bool,
    last_byte_us: u64,
    gap_us: u64,
}

impl RtuFramer {
    /// A framer for a line at `baud`.
    #[must_use]
    pub const fn new(baud: u32) -> Self {
        Self::with_gap_us(idle_gap_us(baud))
    }

    /// A framer with an explicit idle gap (for links whose timing is not a UART's, such as a
    /// TCP bridge in an emulator).
    #[must_use]
    pub const fn with_gap_us(gap_us: u64) -> Self {
        Self {
            buf: [0; MAX_FRAME],
            len: 0,
            overflow: false,
            last_byte_us: 0,
            gap_us,
        }
    }

    /// The idle gap in microseconds.
    #[must_use]
    pub const fn gap_us(&self) -> u64 {
        self.gap_us
    }

    /// Adds bytes received at `now_us`.
    pub fn feed(&mut self, bytes: &[u8], now_us: u64) {
        if bytes.is_empty() {
            return;
        }
        // Bytes after a gap that nobody collected start a new frame.
        if self.len > 0 && now_us.saturating_sub(self.last_byte_us) >= self.gap_us {
            self.len = 0;
            self.overflow = false;
        }
        for &byte in bytes {
            if self.len < MAX_FRAME {
                self.buf[self.len] = byte;
                self.len += 1;
            } else {
                self.overflow = true;
            }
        }
        self.last_byte_us = now_us;
    }

    /// The completed frame, once the line has been idle for the gap; it is consumed.
    pub fn take_frame(&mut self, now_us: u64) -> Option<&[u8]> {
        if self.len == 0 || now_us.saturating_sub(self.last_byte_us) < self.gap_us {
            return None;
        }
        let len = core::mem::take(&mut self.len);
        if core::mem::take(&mut self.overflow) {
            return None;
        }
        Some(&self.buf[..len])
    }

    /// Moves every byte the UART has ready into the framer.
    pub fn pump<U: Read + ReadReady>(&mut self, uart: &mut U, now_us: u64) -> Result<(), U::Error> {
        let mut chunk = [0u8; 32];
        while uart.read_ready()? {
            let n = uart.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            self.feed(&chunk[..n], now_us);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gap_follows_the_baud_rate() {
        assert_eq!(idle_gap_us(9_600), 4_011);
        assert_eq!(idle_gap_us(19_200), 2_006);
        assert_eq!(idle_gap_us(115_200), 1_750);
    }

    #[test]
    fn frames_split_at_gaps() {
        let mut f = RtuFramer::new(9_600);
        f.feed(&[1, 2, 3], 0);
        f.feed(&[4], 3_000);
        assert_eq!(f.take_frame(5_000), None);
        assert_eq!(f.take_frame(7_011), Some(&[1, 2, 3, 4][..]));
        assert_eq!(f.take_frame(9_000), None);
        // An uncollected frame is dropped when the next one starts after a gap.
        f.feed(&[9], 10_000);
        f.feed(&[7, 8], 20_000);
        assert_eq!(f.take_frame(30_000), Some(&[7, 8][..]));
    }

    #[test]
    fn overlong_frame_is_discarded() {
        let mut f = RtuFramer::new(115_200);
        f.feed(&[0xAA; 300], 0);
        assert_eq!(f.take_frame(10_000), None);
        f.feed(&[1], 20_000);
        assert_eq!(f.take_frame(30_000), Some(&[1][..]));
    }
}
