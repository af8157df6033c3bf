//! Settings persisted in NOR flash: a versioned, CRC-checked record in two slots.
//!
//! Each slot is its own erase sector. A save goes to the slot that does *not* hold the
//! newest good record, with the sequence number one higher; so a power cut while erasing or
//! writing can only damage the slot being written, and the last good settings survive in the
//! other. At start the valid record with the newer sequence wins; if neither slot holds a
//! valid record the node runs on factory defaults and says so in its status register.
//!
//! Record layout (little-endian, [`RECORD_LEN`] bytes, padding 0xFF):
//!
//! | offset | size | field                                     |
//! |--------|------|-------------------------------------------|
//! | 0      | 4    | magic `"HCNS"`                            |
//! | 4      | 2    | layout version ([`LAYOUT_VERSION`])       |
//! | 6      | 2    | unit id                                   |
//! | 8      | 2    | calibration offset, 0.01 K, i16           |
//! | 10     | 2    | report interval, s                        |
//! | 12     | 4    | sequence number                           |
//! | 16     | 4    | CRC-32 of bytes 0..16                     |

use embedded_storage::nor_flash::NorFlash;

use crate::crc::crc32;
use crate::registers::Settings;

/// Record magic.
pub const MAGIC: [u8; 4] = *b"HCNS";
/// Layout version of the record; a record of another version is not read.
pub const LAYOUT_VERSION: u16 = 1;
/// Bytes written per save (a multiple of every usual flash write granule up to 32).
pub const RECORD_LEN: usize = 32;
const PAYLOAD_LEN: usize = 16;

/// Where settings came from at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loaded {
    /// A valid record from a slot.
    Record(Settings),
    /// Neither slot held a valid record: factory defaults.
    FactoryDefaults,
}

impl Loaded {
    /// The settings to run with.
    #[must_use]
    pub const fn settings(&self) -> Settings {
        match self {
            Self::Record(s) => *s,
            Self::FactoryDefaults => Settings::FACTORY,
        }
    }

    /// True when running on factory defaults.
    #[must_use]
    pub const fn is_factory_defaults(&self) -> bool {
        matches!(self, Self::FactoryDefaults)
    }
}

/// Errors saving settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The flash driver failed.
    Flash(E),
    /// The record read back differs from what was written.
    Verify,
    /// The region is misconfigured (erase size too small or not aligned).
    Layout,
}

/// The two-slot settings store on a flash region starting at `base`.
#[derive(Debug)]
pub struct SettingsStore<F> {
    flash: F,
    base: u32,
    /// Slot index (0 or 1) of the newest good record and its sequence number.
    newest: Option<(u32, u32)>,
}

impl<F: NorFlash> SettingsStore<F> {
    /// Bytes of flash the store occupies from `base`: two erase sectors.
    pub const REGION_LEN: u32 = 2 * F::ERASE_SIZE as u32;

    /// A store on two erase sectors starting at `base` (must be sector-aligned).
    pub const fn new(flash: F, base: u32) -> Self {
        Self {
            flash,
            base,
            newest: None,
        }
    }

    /// Gives the flash back.
    pub fn destroy(self) -> F {
        self.flash
    }

    fn slot_offset(&self, slot: u32) -> u32 {
        self.base + slot * F::ERASE_SIZE as u32
    }

    /// Reads both slots and picks the newest valid record.
    pub fn load(&mut self) -> Loaded {
        let mut best: Option<(u32, u32, Settings)> = None;
        for slot in 0..2 {
            let mut bytes = [0u8; RECORD_LEN];
            if self.flash.read(self.slot_offset(slot), &mut bytes).is_err() {
                continue;
            }
            let Some((sequence, settings)) = decode(&bytes) else {
                continue;
            };
            let newer = match best {
                None => true,
                // Wrapping comparison: a sequence "after" the other by less than half the range.
                Some((_, seq, _)) => sequence.wrapping_sub(seq).cast_signed() > 0,
            };
            if newer {
                best = Some((slot, sequence, settings));
            }
        }
        match best {
            Some((slot, sequence, settings)) => {
                self.newest = Some((slot, sequence));
                Loaded::Record(settings)
            }
            None => {
                self.newest = None;
                Loaded::FactoryDefaults
            }
        }
    }

    /// Saves `settings` into the slot not holding the newest good record, then verifies it.
    pub fn save(&mut self, settings: &Settings) -> Result<(), Error<F::Error>> {
        if F::ERASE_SIZE < RECORD_LEN
            || !RECORD_LEN.is_multiple_of(F::WRITE_SIZE)
            || !self.base.is_multiple_of(F::ERASE_SIZE as u32)
        {
            return Err(Error::Layout);
        }
        let (slot, sequence) = match self.newest {
            Some((slot, seq)) => (1 - slot, seq.wrapping_add(1)),
            None => (0, 1),
        };
        let offset = self.slot_offset(slot);
        let record = encode(settings, sequence);
        self.flash
            .erase(offset, offset + F::ERASE_SIZE as u32)
            .map_err(Error::Flash)?;
        self.flash.write(offset, &record).map_err(Error::Flash)?;
        let mut check = [0u8; RECORD_LEN];
        self.flash.read(offset, &mut check).map_err(Error::Flash)?;
        if check != record {
            return Err(Error::Verify);
        }
        self.newest = Some((slot, sequence));
        Ok(())
    }
}

/// Encodes a record.
#[must_use]
pub fn encode(settings: &Settings, sequence: u32) -> [u8; RECORD_LEN] {
    let mut bytes = [0xFFu8; RECORD_LEN];
    bytes[0..4].copy_from_slice(&MAGIC);
    bytes[4..6].copy_from_slice(&LAYOUT_VERSION.to_le_bytes());
    bytes[6..8].copy_from_slice(&u16::from(settings.unit_id).to_le_bytes());
    bytes[8..10].copy_from_slice(&settings.calibration_offset_centi_k.to_le_bytes());
    bytes[10..12].copy_from_slice(&settings.report_interval_s.to_le_bytes());
    bytes[12..16].copy_from_slice(&sequence.to_le_bytes());
    let crc = crc32(&bytes[..PAYLOAD_LEN]);
    bytes[16..20].copy_from_slice(&crc.to_le_bytes());
    bytes
}

/// Decodes a record: its sequence number and settings, if magic, version, CRC and ranges hold.
#[must_use]
pub fn decode(bytes: &[u8; RECORD_LEN]) -> Option<(u32, Settings)> {
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
    let u32_at =
        |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    if bytes[0..4] != MAGIC
        || u16_at(4) != LAYOUT_VERSION
        || crc32(&bytes[..PAYLOAD_LEN]) != u32_at(16)
    {
        return None;
    }
    let settings = Settings {
        unit_id: u8::try_from(u16_at(6)).ok()?,
        calibration_offset_centi_k: u16_at(8).cast_signed(),
        report_interval_s: u16_at(10),
    };
    settings.is_valid().then_some((u32_at(12), settings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_storage::nor_flash::{ErrorType, NorFlashErrorKind, ReadNorFlash};

    const SECTOR: usize = 64;

    /// NOR flash in RAM: erase sets 0xFF, writes can only clear bits, and a budget of bytes
    /// after which the "power fails" (the write stops half-way and returns an error).
    struct FakeFlash {
        mem: [u8; 4 * SECTOR],
        budget: Option<usize>,
    }

    impl FakeFlash {
        fn new() -> Self {
            Self {
                mem: [0xFF; 4 * SECTOR],
                budget: None,
            }
        }
        fn spend(&mut self) -> bool {
            match &mut self.budget {
                Some(0) => false,
                Some(n) => {
                    *n -= 1;
                    true
                }
                None => true,
            }
        }
    }

    impl ErrorType for FakeFlash {
        type Error = NorFlashErrorKind;
    }

    impl ReadNorFlash for FakeFlash {
        const READ_SIZE: usize = 1;
        fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
            let o = offset as usize;
            bytes.copy_from_slice(&self.mem[o..o + bytes.len()]);
            Ok(())
        }
        fn capacity(&self) -> usize {
            self.mem.len()
        }
    }

    impl NorFlash for FakeFlash {
        const WRITE_SIZE: usize = 4;
        const ERASE_SIZE: usize = SECTOR;
        fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
            for i in from as usize..to as usize {
                if !self.spend() {
                    return Err(NorFlashErrorKind::Other);
                }
                self.mem[i] = 0xFF;
            }
            Ok(())
        }
        fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
            for (i, b) in bytes.iter().enumerate() {
                if !self.spend() {
                    return Err(NorFlashErrorKind::Other);
                }
                self.mem[offset as usize + i] &= b;
            }
            Ok(())
        }
    }

    fn settings(offset: i16) -> Settings {
        Settings {
            unit_id: 17,
            calibration_offset_centi_k: offset,
            report_interval_s: 30,
        }
    }

    #[test]
    fn blank_flash_gives_factory_defaults() {
        let mut store = SettingsStore::new(FakeFlash::new(), SECTOR as u32);
        assert_eq!(store.load(), Loaded::FactoryDefaults);
        assert_eq!(store.load().settings(), Settings::FACTORY);
    }

    #[test]
    fn saves_alternate_slots_and_newest_wins() {
        let mut store = SettingsStore::new(FakeFlash::new(), SECTOR as u32);
        store.load();
        for i in 0..5 {
            store.save(&settings(i)).unwrap();
            let mut reopened = SettingsStore::new(store.destroy(), SECTOR as u32);
            assert_eq!(reopened.load(), Loaded::Record(settings(i)));
            store = reopened;
        }
        // Both slots hold a record now.
        let flash = store.destroy();
        assert!(decode(flash.mem[SECTOR..SECTOR + RECORD_LEN].try_into().unwrap()).is_some());
        assert!(
            decode(
                flash.mem[2 * SECTOR..2 * SECTOR + RECORD_LEN]
                    .try_into()
                    .unwrap()
            )
            .is_some()
        );
    }

    #[test]
    fn power_cut_at_every_byte_keeps_the_last_good_settings() {
        // Two good saves, then a third cut short after n byte operations, for every n.
        let full_cost = SECTOR + RECORD_LEN;
        for cut in 0..full_cost {
            let mut store = SettingsStore::new(FakeFlash::new(), 0);
            store.load();
            store.save(&settings(1)).unwrap();
            store.save(&settings(2)).unwrap();
            let mut flash = store.destroy();
            flash.budget = Some(cut);
            let mut store = SettingsStore::new(flash, 0);
            store.load();
            assert!(store.save(&settings(3)).is_err());
            let mut flash = store.destroy();
            flash.budget = None;
            let mut store = SettingsStore::new(flash, 0);
            let loaded = store.load();
            if cut < SECTOR + 20 {
                // Erase or the meaningful 20 bytes incomplete: the old record wins.
                assert_eq!(loaded, Loaded::Record(settings(2)), "cut after {cut} bytes");
            } else {
                // Only 0xFF padding was left to write: the new record is complete.
                assert_eq!(loaded, Loaded::Record(settings(3)), "cut after {cut} bytes");
            }
        }
    }

    #[test]
    fn corrupt_or_out_of_range_records_are_ignored() {
        let mut bytes = encode(&settings(5), 7);
        assert_eq!(decode(&bytes), Some((7, settings(5))));
        bytes[9] ^= 0x40;
        assert_eq!(decode(&bytes), None);
        let mut bad = settings(5);
        bad.report_interval_s = 5;
        assert_eq!(decode(&encode(&bad, 1)), None);
        let mut old = encode(&settings(5), 1);
        old[4] = 0;
        assert_eq!(decode(&old), None);
    }

    #[test]
    fn sequence_wraps() {
        let mut flash = FakeFlash::new();
        flash.mem[..RECORD_LEN].copy_from_slice(&encode(&settings(1), u32::MAX));
        flash.mem[SECTOR..SECTOR + RECORD_LEN].copy_from_slice(&encode(&settings(2), 0));
        let mut store = SettingsStore::new(flash, 0);
        assert_eq!(store.load(), Loaded::Record(settings(2)));
        store.save(&settings(3)).unwrap();
        // Went to slot 0 (the older one), sequence 1.
        assert_eq!(
            decode(store.destroy().mem[..RECORD_LEN].try_into().unwrap()),
            Some((1, settings(3)))
        );
    }
}
