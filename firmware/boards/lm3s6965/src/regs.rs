//! Memory-mapped register access for the few LM3S6965 peripherals the node uses.
//!
//! No PAC: the register set is small, and these helpers keep every `unsafe` in one place.
//! Addresses and bits are from the LM3S6965 datasheet (TI SPMS001).

use core::ptr::{read_volatile, write_volatile};

/// A 32-bit peripheral register at a fixed address.
#[derive(Clone, Copy)]
pub struct Reg(pub u32);

impl Reg {
    /// Reads the register.
    #[inline(always)]
    pub fn read(self) -> u32 {
        // SAFETY: every `Reg` in this crate names a documented, 4-byte aligned register of an
        // LM3S6965 peripheral; a volatile read of it has no memory-safety effect on Rust data.
        unsafe { read_volatile(self.0 as *const u32) }
    }

    /// Writes the register.
    #[inline(always)]
    pub fn write(self, value: u32) {
        // SAFETY: as in `read`; the registers lie outside any memory Rust owns.
        unsafe { write_volatile(self.0 as *mut u32, value) }
    }

    /// Sets `bits` (read-modify-write).
    #[inline(always)]
    pub fn set_bits(self, bits: u32) {
        self.write(self.read() | bits);
    }
}

/// System control block.
pub mod sysctl {
    use super::Reg;
    const BASE: u32 = 0x400F_E000;
    /// Raw interrupt status (bit 6: PLL lock).
    pub const RIS: Reg = Reg(BASE + 0x050);
    /// Run-mode clock configuration.
    pub const RCC: Reg = Reg(BASE + 0x060);
    /// Run-mode clock gating 1 (UART0 bit 0, I2C0 bit 12).
    pub const RCGC1: Reg = Reg(BASE + 0x104);
    /// Run-mode clock gating 2 (GPIO ports, port A bit 0).
    pub const RCGC2: Reg = Reg(BASE + 0x108);
    /// Microseconds reload for the flash controller (clock in MHz - 1).
    pub const USECRL: Reg = Reg(BASE + 0x140);
}

/// GPIO port registers (APB aperture).
pub mod gpio {
    use super::Reg;
    /// Port A base.
    pub const PORT_A: u32 = 0x4000_4000;
    /// Port B base.
    pub const PORT_B: u32 = 0x4000_5000;
    /// Alternate function select.
    pub const fn afsel(port: u32) -> Reg {
        Reg(port + 0x420)
    }
    /// Open-drain select.
    pub const fn odr(port: u32) -> Reg {
        Reg(port + 0x50C)
    }
    /// Digital enable.
    pub const fn den(port: u32) -> Reg {
        Reg(port + 0x51C)
    }
}

/// UART0 (an ARM PL011).
pub mod uart0 {
    use super::Reg;
    const BASE: u32 = 0x4000_C000;
    /// Data.
    pub const DR: Reg = Reg(BASE);
    /// Flags.
    pub const FR: Reg = Reg(BASE + 0x018);
    /// Integer baud-rate divisor.
    pub const IBRD: Reg = Reg(BASE + 0x024);
    /// Fractional baud-rate divisor.
    pub const FBRD: Reg = Reg(BASE + 0x028);
    /// Line control.
    pub const LCRH: Reg = Reg(BASE + 0x02C);
    /// Control.
    pub const CTL: Reg = Reg(BASE + 0x030);
    /// FR: transmitter busy (shift register not empty).
    pub const FR_BUSY: u32 = 1 << 3;
    /// FR: receive FIFO empty.
    pub const FR_RXFE: u32 = 1 << 4;
    /// FR: transmit FIFO full.
    pub const FR_TXFF: u32 = 1 << 5;
}

/// I2C0 master.
pub mod i2c0 {
    use super::Reg;
    const BASE: u32 = 0x4002_0000;
    /// Slave address and direction (bit 0: 1 = receive).
    pub const MSA: Reg = Reg(BASE);
    /// Control (write) / status (read).
    pub const MCS: Reg = Reg(BASE + 0x004);
    /// Data.
    pub const MDR: Reg = Reg(BASE + 0x008);
    /// Timer period (SCL clock).
    pub const MTPR: Reg = Reg(BASE + 0x00C);
    /// Configuration (bit 4: master enable).
    pub const MCR: Reg = Reg(BASE + 0x020);
}

/// Flash memory controller.
#[cfg(feature = "hw-flash")]
pub mod flash {
    use super::Reg;
    const BASE: u32 = 0x400F_D000;
    /// Address for erase / write.
    pub const FMA: Reg = Reg(BASE);
    /// Data to write.
    pub const FMD: Reg = Reg(BASE + 0x004);
    /// Control: key in the high half, WRITE bit 0, ERASE bit 1.
    pub const FMC: Reg = Reg(BASE + 0x008);
    /// Write key for FMC.
    pub const WRKEY: u32 = 0xA442 << 16;
    /// FMC: program one word.
    pub const WRITE: u32 = 1 << 0;
    /// FMC: erase one 1 KiB page.
    pub const ERASE: u32 = 1 << 1;
}
