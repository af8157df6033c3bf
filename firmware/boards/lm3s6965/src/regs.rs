//! Memory-mapped access for the LM3S6965: the few peripheral registers the node uses, and the
//! settings area. This is the only module allowed `unsafe` (the crate denies `unsafe_code`).
//!
//! No PAC: the register set is small. Addresses and bits are from the LM3S6965 datasheet
//! (TI SPMS001).
//!
//! # Why the safe functions here are sound
//!
//! Code outside this module never handles an address. It gets:
//!
//! - [`Reg`] handles, which only this module can make (the field and the constructor are
//!   private), and only from the constants below. Each names a 4-byte aligned register of a
//!   peripheral; reading or writing any value there changes the hardware's state but no memory
//!   that Rust code owns. The one peripheral that can change memory, the flash controller, has
//!   no public handles: [`settings`] drives it and checks every address it gives it.
//! - [`settings`] functions taking an offset into the settings area, which check that offset
//!   and length against the area before touching it. The area is the two pages `memory.x`
//!   keeps out of the program, so no Rust object lives there.

#![allow(unsafe_code)]

use core::ptr::{
    read_volatile, with_exposed_provenance, with_exposed_provenance_mut, write_volatile,
};

/// A 32-bit peripheral register at one of this module's fixed addresses.
#[derive(Clone, Copy)]
pub struct Reg {
    address: usize,
}

impl Reg {
    /// The register at `address`. Private: the constants below are the only registers.
    const fn at(address: usize) -> Self {
        Self { address }
    }

    /// Reads the register.
    #[inline(always)]
    pub fn read(self) -> u32 {
        // SAFETY: `self.address` is one of the documented, 4-byte aligned peripheral registers
        // named in this module (see the module docs); it is device memory, not Rust data, and
        // a volatile read of it is always valid.
        unsafe { read_volatile(with_exposed_provenance::<u32>(self.address)) }
    }

    /// Writes the register.
    #[inline(always)]
    pub fn write(self, value: u32) {
        // SAFETY: as in `read`. No public register can make the hardware write memory (the
        // flash controller's registers are private to `settings`), so any value is sound.
        unsafe { write_volatile(with_exposed_provenance_mut::<u32>(self.address), value) }
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
    const BASE: usize = 0x400F_E000;
    /// Raw interrupt status (bit 6: PLL lock).
    pub const RIS: Reg = Reg::at(BASE + 0x050);
    /// Run-mode clock configuration.
    pub const RCC: Reg = Reg::at(BASE + 0x060);
    /// Run-mode clock gating 1 (UART0 bit 0, I2C0 bit 12).
    pub const RCGC1: Reg = Reg::at(BASE + 0x104);
    /// Run-mode clock gating 2 (GPIO ports, port A bit 0).
    pub const RCGC2: Reg = Reg::at(BASE + 0x108);
    /// Microseconds reload for the flash controller (clock in MHz - 1).
    pub const USECRL: Reg = Reg::at(BASE + 0x140);
}

/// GPIO port registers (APB aperture).
pub mod gpio {
    use super::Reg;

    /// One GPIO port, by its base address (private: only the ports below exist).
    #[derive(Clone, Copy)]
    pub struct Port {
        base: usize,
    }

    /// Port A.
    pub const PORT_A: Port = Port { base: 0x4000_4000 };
    /// Port B.
    pub const PORT_B: Port = Port { base: 0x4000_5000 };

    impl Port {
        /// Alternate function select.
        pub const fn afsel(self) -> Reg {
            Reg::at(self.base + 0x420)
        }
        /// Open-drain select.
        pub const fn odr(self) -> Reg {
            Reg::at(self.base + 0x50C)
        }
        /// Digital enable.
        pub const fn den(self) -> Reg {
            Reg::at(self.base + 0x51C)
        }
    }
}

/// UART0 (an ARM PL011).
pub mod uart0 {
    use super::Reg;
    const BASE: usize = 0x4000_C000;
    /// Data.
    pub const DR: Reg = Reg::at(BASE);
    /// Flags.
    pub const FR: Reg = Reg::at(BASE + 0x018);
    /// Integer baud-rate divisor.
    pub const IBRD: Reg = Reg::at(BASE + 0x024);
    /// Fractional baud-rate divisor.
    pub const FBRD: Reg = Reg::at(BASE + 0x028);
    /// Line control.
    pub const LCRH: Reg = Reg::at(BASE + 0x02C);
    /// Control.
    pub const CTL: Reg = Reg::at(BASE + 0x030);
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
    const BASE: usize = 0x4002_0000;
    /// Slave address and direction (bit 0: 1 = receive).
    pub const MSA: Reg = Reg::at(BASE);
    /// Control (write) / status (read).
    pub const MCS: Reg = Reg::at(BASE + 0x004);
    /// Data.
    pub const MDR: Reg = Reg::at(BASE + 0x008);
    /// Timer period (SCL clock).
    pub const MTPR: Reg = Reg::at(BASE + 0x00C);
    /// Configuration (bit 4: master enable).
    pub const MCR: Reg = Reg::at(BASE + 0x020);
}

/// The settings area: two 1 KiB pages that `memory.x` keeps out of the program.
///
/// In the default build they are the top 2 KiB of SRAM (`0x2000_F800`), which the runtime
/// never initialises; with `hw-flash` they are the last two pages of the on-chip flash
/// (`0x0003_F800`), erased and programmed through the flash controller. Every function takes
/// an offset into the area and refuses any access that would leave it.
pub mod settings {
    #[cfg(not(feature = "hw-flash"))]
    use super::with_exposed_provenance_mut;
    use super::{read_volatile, with_exposed_provenance};

    /// Size of one page (the flash erase unit).
    pub const PAGE: usize = 1024;
    /// Size of the area: two pages.
    pub const LEN: usize = 2 * PAGE;

    /// First byte of the area (the top 2 KiB of the 64 KiB SRAM).
    #[cfg(not(feature = "hw-flash"))]
    const BASE: usize = 0x2000_F800;
    /// First byte of the area (the last 2 KiB of the 256 KiB flash).
    #[cfg(feature = "hw-flash")]
    const BASE: usize = 0x0003_F800;

    /// An access that would reach outside the settings area; nothing was touched.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct OutOfArea;

    /// The address of `offset`, if `len` bytes from there stay inside the area.
    fn address(offset: u32, len: usize) -> Result<usize, OutOfArea> {
        let offset = usize::try_from(offset).map_err(|_| OutOfArea)?;
        match offset.checked_add(len) {
            Some(end) if end <= LEN => Ok(BASE + offset),
            _ => Err(OutOfArea),
        }
    }

    /// Reads `bytes.len()` bytes from `offset`.
    pub fn read(offset: u32, bytes: &mut [u8]) -> Result<(), OutOfArea> {
        let start = address(offset, bytes.len())?;
        for (i, byte) in bytes.iter_mut().enumerate() {
            // SAFETY: `address` checked that `start .. start + bytes.len()` lies inside the
            // settings area, which is readable memory (SRAM or flash) holding no Rust object
            // (memory.x excludes it), so nothing aliases it; any byte there is a valid `u8`.
            *byte = unsafe { read_volatile(with_exposed_provenance::<u8>(start + i)) };
        }
        Ok(())
    }

    /// Reads the byte at `offset` (retained SRAM).
    #[cfg(not(feature = "hw-flash"))]
    pub fn read_byte(offset: u32) -> Result<u8, OutOfArea> {
        let mut byte = [0];
        read(offset, &mut byte)?;
        Ok(byte[0])
    }

    /// Writes the byte at `offset` (retained SRAM).
    #[cfg(not(feature = "hw-flash"))]
    pub fn write_byte(offset: u32, value: u8) -> Result<(), OutOfArea> {
        let at = address(offset, 1)?;
        // SAFETY: `address` checked that `at` lies inside the settings area, which in this
        // build is SRAM that memory.x keeps out of the program: no Rust object lives there,
        // so the write cannot alias or break any value the program holds.
        unsafe { super::write_volatile(with_exposed_provenance_mut::<u8>(at), value) };
        Ok(())
    }

    /// The flash controller. Private to this module: pointed at an address outside the area
    /// it would erase or overwrite the program itself.
    #[cfg(feature = "hw-flash")]
    mod flash {
        use super::super::Reg;
        const BASE: usize = 0x400F_D000;
        /// Address for erase / write.
        pub(super) const FMA: Reg = Reg::at(BASE);
        /// Data to write.
        pub(super) const FMD: Reg = Reg::at(BASE + 0x004);
        /// Control: key in the high half, WRITE bit 0, ERASE bit 1.
        pub(super) const FMC: Reg = Reg::at(BASE + 0x008);
        /// Write key for FMC.
        pub(super) const WRKEY: u32 = 0xA442 << 16;
        /// FMC: program one word.
        pub(super) const WRITE: u32 = 1 << 0;
        /// FMC: erase one 1 KiB page.
        pub(super) const ERASE: u32 = 1 << 1;
    }

    /// Runs one flash-controller operation on the area's byte `at` and waits for it.
    #[cfg(feature = "hw-flash")]
    fn command(at: usize, command: u32) {
        // Flash addresses fit the 32-bit register: the part has 256 KiB.
        flash::FMA.write(at as u32);
        flash::FMC.write(flash::WRKEY | command);
        // The controller clears the bit when the operation is done.
        while flash::FMC.read() & command != 0 {}
    }

    /// Erases (sets to 0xFF) the page holding `offset` (on-chip flash).
    #[cfg(feature = "hw-flash")]
    pub fn erase_page(offset: u32) -> Result<(), OutOfArea> {
        // The controller erases the page holding FMA; the area is page-aligned, so that page
        // is inside it.
        command(address(offset, 1)?, flash::ERASE);
        Ok(())
    }

    /// Programs the 4-byte word at `offset` (on-chip flash; programming only clears bits).
    #[cfg(feature = "hw-flash")]
    pub fn program_word(offset: u32, word: u32) -> Result<(), OutOfArea> {
        let at = address(offset, 4)?;
        flash::FMD.write(word);
        command(at, flash::WRITE);
        Ok(())
    }
}
