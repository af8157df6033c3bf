//! Where the settings slots live: two 1 KiB pages, as embedded-storage `NorFlash`.
//!
//! [`SettingsArea`] is, with the feature `hw-flash`, the last two pages of the on-chip flash,
//! erased and programmed through the flash controller (FMA / FMD / FMC); by default, the top
//! 2 KiB of SRAM, outside what the runtime initialises (see memory.x), with NOR semantics (erase
//! sets 0xFF, a write can only clear bits). QEMU's lm3s6965evb maps the flash as ROM and does
//! not emulate the flash controller (it is an "unimplemented device"), so programmed words would
//! never change; its SRAM, however, keeps its contents across a `system_reset`, which is what the
//! emulator test needs. Settings in retained RAM do not survive a power cut or a restart of the
//! QEMU process.

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash, check_erase, check_read,
    check_write,
};

use crate::regs::settings::{self, OutOfArea};

/// Size of one slot (the flash page size).
pub const PAGE: usize = settings::PAGE;
/// Bytes the store uses: two pages.
pub const REGION: usize = settings::LEN;

/// A storage error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageError(pub NorFlashErrorKind);

impl NorFlashError for StorageError {
    fn kind(&self) -> NorFlashErrorKind {
        self.0
    }
}

impl From<OutOfArea> for StorageError {
    fn from(_: OutOfArea) -> Self {
        Self(NorFlashErrorKind::OutOfBounds)
    }
}

/// The two-page settings area: in retained SRAM (default build, for QEMU) or, with the feature
/// `hw-flash`, the last two pages of the on-chip flash, programmed through the flash controller
/// (`clock::init` has set USECRL for the program/erase timing).
pub struct SettingsArea {
    _private: (),
}

impl SettingsArea {
    /// The area; its contents are whatever the last run left there.
    pub fn new() -> Self {
        Self { _private: () }
    }
}

impl ErrorType for SettingsArea {
    type Error = StorageError;
}

impl ReadNorFlash for SettingsArea {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        check_read(self, offset, bytes.len()).map_err(StorageError)?;
        settings::read(offset, bytes)?;
        Ok(())
    }

    fn capacity(&self) -> usize {
        REGION
    }
}

impl NorFlash for SettingsArea {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = PAGE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        check_erase(self, from, to).map_err(StorageError)?;
        #[cfg(not(feature = "hw-flash"))]
        for offset in from..to {
            settings::write_byte(offset, 0xFF)?;
        }
        #[cfg(feature = "hw-flash")]
        for page in (from..to).step_by(PAGE) {
            settings::erase_page(page)?;
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        check_write(self, offset, bytes.len()).map_err(StorageError)?;
        #[cfg(not(feature = "hw-flash"))]
        for (at, &byte) in (offset..).zip(bytes) {
            // Programming NOR can only clear bits, hence the AND.
            let old = settings::read_byte(at)?;
            settings::write_byte(at, old & byte)?;
        }
        #[cfg(feature = "hw-flash")]
        for (at, word) in (offset..).step_by(4).zip(bytes.chunks_exact(4)) {
            settings::program_word(at, u32::from_le_bytes([word[0], word[1], word[2], word[3]]))?;
        }
        Ok(())
    }
}
