//! Where the settings slots live: two 1 KiB pages, as embedded-storage `NorFlash`.
//!
//! - [`InternalFlash`] (feature `hw-flash`): the last two pages of the on-chip flash, erased
//!   and programmed through the flash controller (FMA / FMD / FMC).
//! - [`RetainedRam`] (default): the top 2 KiB of SRAM, outside what the runtime initialises
//!   (see memory.x), with NOR semantics (erase sets 0xFF, a write can only clear bits). QEMU's
//!   lm3s6965evb maps the flash as ROM and does not emulate the flash controller (it is an
//!   "unimplemented device"), so programmed words would never change; its SRAM, however, keeps
//!   its contents across a `system_reset`, which is what the emulator test needs. Settings in
//!   retained RAM do not survive a power cut or a restart of the QEMU process.

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash, check_erase, check_read,
    check_write,
};

/// Size of one slot (the flash page size).
pub const PAGE: usize = 1024;
/// Bytes the store uses: two pages.
pub const REGION: usize = 2 * PAGE;

/// A storage error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageError(pub NorFlashErrorKind);

impl NorFlashError for StorageError {
    fn kind(&self) -> NorFlashErrorKind {
        self.0
    }
}

/// Reads `bytes.len()` bytes from absolute address `base + offset`.
fn read_mem(base: u32, offset: u32, bytes: &mut [u8]) {
    for (i, byte) in bytes.iter_mut().enumerate() {
        let address = (base + offset) as usize + i;
        // SAFETY: callers check `offset + len` against REGION, so the address lies in the
        // settings region (flash pages or retained SRAM) that nothing else in the program
        // references; a volatile byte read there is always valid.
        *byte = unsafe { core::ptr::read_volatile(address as *const u8) };
    }
}

/// The two-page settings area in retained SRAM (default build, for QEMU).
#[cfg(not(feature = "hw-flash"))]
pub struct RetainedRam {
    _private: (),
}

#[cfg(not(feature = "hw-flash"))]
impl RetainedRam {
    /// Start of the retained area (top of the 64 KiB SRAM minus 2 KiB, excluded in memory.x).
    const BASE: u32 = 0x2000_F800;

    /// The area; its contents are whatever the last run left there.
    pub fn new() -> Self {
        Self { _private: () }
    }
}

#[cfg(not(feature = "hw-flash"))]
impl ErrorType for RetainedRam {
    type Error = StorageError;
}

#[cfg(not(feature = "hw-flash"))]
impl ReadNorFlash for RetainedRam {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        check_read(self, offset, bytes.len()).map_err(StorageError)?;
        read_mem(Self::BASE, offset, bytes);
        Ok(())
    }

    fn capacity(&self) -> usize {
        REGION
    }
}

#[cfg(not(feature = "hw-flash"))]
impl NorFlash for RetainedRam {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = PAGE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        check_erase(self, from, to).map_err(StorageError)?;
        for address in (Self::BASE + from)..(Self::BASE + to) {
            // SAFETY: `check_erase` kept the range inside the retained area, which memory.x
            // keeps out of RAM the program uses.
            unsafe { core::ptr::write_volatile(address as *mut u8, 0xFF) };
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        check_write(self, offset, bytes.len()).map_err(StorageError)?;
        for (i, &byte) in bytes.iter().enumerate() {
            let address = (Self::BASE + offset) as usize + i;
            // SAFETY: as in `erase`; programming NOR can only clear bits, hence the AND.
            unsafe {
                let old = core::ptr::read_volatile(address as *const u8);
                core::ptr::write_volatile(address as *mut u8, old & byte);
            }
        }
        Ok(())
    }
}

/// The last two pages of the on-chip flash, programmed through the flash controller.
#[cfg(feature = "hw-flash")]
pub struct InternalFlash {
    _private: (),
}

#[cfg(feature = "hw-flash")]
impl InternalFlash {
    /// First settings page (256 KiB - 2 KiB, excluded in memory.x).
    const BASE: u32 = 0x0003_F800;

    /// The area; `clock::init` has set USECRL for the program/erase timing.
    pub fn new() -> Self {
        Self { _private: () }
    }

    fn command(address: u32, command: u32) {
        use crate::regs::flash;
        flash::FMA.write(address);
        flash::FMC.write(flash::WRKEY | command);
        // The controller clears the bit when the operation is done.
        while flash::FMC.read() & command != 0 {}
    }
}

#[cfg(feature = "hw-flash")]
impl ErrorType for InternalFlash {
    type Error = StorageError;
}

#[cfg(feature = "hw-flash")]
impl ReadNorFlash for InternalFlash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        check_read(self, offset, bytes.len()).map_err(StorageError)?;
        read_mem(Self::BASE, offset, bytes);
        Ok(())
    }

    fn capacity(&self) -> usize {
        REGION
    }
}

#[cfg(feature = "hw-flash")]
impl NorFlash for InternalFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = PAGE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        use crate::regs::flash;
        check_erase(self, from, to).map_err(StorageError)?;
        for page in (from..to).step_by(PAGE) {
            Self::command(Self::BASE + page, flash::ERASE);
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        use crate::regs::flash;
        check_write(self, offset, bytes.len()).map_err(StorageError)?;
        for (i, word) in bytes.chunks_exact(4).enumerate() {
            flash::FMD.write(u32::from_le_bytes([word[0], word[1], word[2], word[3]]));
            Self::command(Self::BASE + offset + 4 * i as u32, flash::WRITE);
        }
        Ok(())
    }
}
