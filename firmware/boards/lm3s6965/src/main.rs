//! heatctl room node on the TI LM3S6965 (the emulator board).
//!
//! A TMP105 at 0x48 on I2C0, the Modbus RTU slave on UART0 (9600 8N1), settings in two
//! slots (retained SRAM by default, on-chip flash with the `hw-flash` feature). One polled
//! loop: sample once a second, serve the UART, persist settings after a write.
#![no_std]
#![no_main]

mod clock;
mod i2c;
mod regs;
mod storage;
mod uart;

use cortex_m_rt::entry;
use heatctl_node::Node;
use heatctl_node::framer::RtuFramer;
use heatctl_node::sensor::{RoomSensor, Tmp105, Tmp105Sensor};
use heatctl_node::store::SettingsStore;

/// The TMP105's address (A0 low).
const TMP105_ADDRESS: u8 = 0x48;

use storage::SettingsArea;

#[entry]
fn main() -> ! {
    let core = cortex_m::Peripherals::take();
    clock::init();
    if let Some(core) = core {
        clock::start_tick(core.SYST);
    }
    let (mut rx, mut tx) = uart::init();
    let mut sensor = Tmp105Sensor::new(Tmp105::new(i2c::I2c0::init(), TMP105_ADDRESS));

    let mut store = SettingsStore::new(SettingsArea::new(), 0);
    let loaded = store.load();
    let mut node = Node::new(loaded.settings(), loaded.is_factory_defaults());
    let mut framer = RtuFramer::new(uart::BAUD);
    let mut millis = clock::Millis::new();

    loop {
        let now_ms = millis.now();
        if node.tick(now_ms) {
            let sample = sensor.read(&mut ());
            node.on_sample(sample);
        }
        // The UART is infallible here; the match only keeps the types honest.
        let Ok(outcome) = node.serve(&mut framer, &mut rx, &mut tx, now_ms * 1_000);
        if outcome.settings_changed && store.save(&node.settings()).is_ok() {
            node.settings_saved();
        }
    }
}

/// On a panic, reset: a node that restarts is better than a node that hangs.
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    cortex_m::peripheral::SCB::sys_reset()
}
