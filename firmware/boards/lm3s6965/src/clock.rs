//! System clock (50 MHz from the PLL) and a millisecond tick from SysTick.

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::{SYST, syst::SystClkSource};
use cortex_m_rt::exception;

use crate::regs::sysctl;

/// Core clock after [`init`].
pub const SYSCLK_HZ: u32 = 50_000_000;

static MILLIS: AtomicU32 = AtomicU32::new(0);

/// Runs the core at 50 MHz: 8 MHz crystal, PLL (400 MHz VCO / 2), SYSDIV /4.
///
/// Under QEMU the same register writes give the same rate (it models SYSCLK as
/// 200 MHz / (SYSDIV + 1) and sets the PLL-lock flag at once).
pub fn init() {
    const MOSCDIS: u32 = 1 << 0;
    const OSCSRC_MASK: u32 = 0x3 << 4;
    const XTAL_MASK: u32 = 0xF << 6;
    const XTAL_8MHZ: u32 = 0xE << 6;
    const BYPASS: u32 = 1 << 11;
    const OEN: u32 = 1 << 12;
    const PWRDN: u32 = 1 << 13;
    const USESYSDIV: u32 = 1 << 22;
    const SYSDIV_MASK: u32 = 0xF << 23;
    const SYSDIV_4: u32 = 3 << 23;
    const PLL_LOCKED: u32 = 1 << 6;

    // Datasheet sequence: bypass the PLL and drop the divider, then select the 8 MHz main
    // oscillator (enabled) and power the PLL up with its output enabled, set SYSDIV, wait
    // for lock, and only then leave bypass.
    let mut rcc = sysctl::RCC.read();
    rcc = (rcc | BYPASS) & !USESYSDIV;
    sysctl::RCC.write(rcc);
    rcc = (rcc & !(MOSCDIS | OSCSRC_MASK | XTAL_MASK | OEN | PWRDN)) | XTAL_8MHZ;
    sysctl::RCC.write(rcc);
    rcc = (rcc & !SYSDIV_MASK) | SYSDIV_4 | USESYSDIV;
    sysctl::RCC.write(rcc);
    let mut spins = 0u32;
    while sysctl::RIS.read() & PLL_LOCKED == 0 && spins < 1_000_000 {
        spins += 1;
    }
    sysctl::RCC.write(rcc & !BYPASS);
    // The flash controller times its program/erase pulses from this (MHz - 1).
    sysctl::USECRL.write(SYSCLK_HZ / 1_000_000 - 1);
}

/// Starts the 1 kHz SysTick interrupt.
pub fn start_tick(mut syst: SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(SYSCLK_HZ / 1_000 - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// Milliseconds since start, extended past the 32-bit wrap (49 days).
pub struct Millis {
    high: u64,
    last: u32,
}

impl Millis {
    /// A new reader.
    pub const fn new() -> Self {
        Self { high: 0, last: 0 }
    }

    /// The current time in milliseconds; call at least once per 49 days.
    pub fn now(&mut self) -> u64 {
        let now = MILLIS.load(Ordering::Relaxed);
        if now < self.last {
            self.high += 1 << 32;
        }
        self.last = now;
        self.high | u64::from(now)
    }
}

#[exception]
fn SysTick() {
    MILLIS.fetch_add(1, Ordering::Relaxed);
}
