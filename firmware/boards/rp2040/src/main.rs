//! heatctl room node on an RP2040 (the product board).
//!
//! SHT4x on I2C0 (GP4 SDA, GP5 SCL), RS-485 transceiver on UART0 (GP0 TX, GP1 RX) with its
//! driver enable on GP2, settings in the last two 4 KiB sectors of the 2 MiB flash.
//! One task: sample once a second, serve Modbus RTU at 9600 8N1, persist settings after a
//! write, and yield to the executor between polls.
#![no_std]
#![no_main]

mod serial;

use embassy_executor::Spawner;
use embassy_rp::flash::{Blocking as FlashBlocking, Flash};
use embassy_rp::gpio::{Level, Output};
use embassy_rp::i2c::{self, I2c};
use embassy_rp::uart::{self, Uart};
use embassy_time::{Delay, Instant, Timer};
use heatctl_node::Node;
use heatctl_node::framer::RtuFramer;
use heatctl_node::rs485::Rs485;
use heatctl_node::sensor::{RoomSensor, Sht4xSensor};
use heatctl_node::store::SettingsStore;
use sht4x::Sht4x;

/// Line speed of the RS-485 bus (the register map's default).
const BAUD: u32 = 9_600;
/// Size of the QSPI flash.
const FLASH_SIZE: usize = 2 * 1024 * 1024;
/// Offset of the two settings sectors (see memory.x).
const SETTINGS_OFFSET: u32 = (FLASH_SIZE - 2 * 4096) as u32;
/// Poll period of the main loop: well under one character time at 9600 baud.
const POLL_US: u64 = 250;

#[embassy_executor::main]
async fn main(_spawner: Spawner) {
    let p = embassy_rp::init(Default::default());

    let mut uart_config = uart::Config::default();
    uart_config.baudrate = BAUD;
    let (tx, rx) = Uart::new_blocking(p.UART0, p.PIN_0, p.PIN_1, uart_config).split();
    let mut rx = serial::Rx::new(rx);
    let mut tx = Rs485::new(serial::Tx::new(tx), Output::new(p.PIN_2, Level::Low));

    let bus = I2c::new_blocking(p.I2C0, p.PIN_5, p.PIN_4, i2c::Config::default());
    let mut sensor = Sht4xSensor::new(Sht4x::new(bus));
    let mut delay = Delay;

    let flash = Flash::<_, FlashBlocking, FLASH_SIZE>::new_blocking(p.FLASH);
    let mut store = SettingsStore::new(flash, SETTINGS_OFFSET);
    let loaded = store.load();
    let mut node = Node::new(loaded.settings(), loaded.is_factory_defaults());
    let mut framer = RtuFramer::new(BAUD);

    loop {
        let now = Instant::now();
        if node.tick(now.as_millis()) {
            let sample = sensor.read(&mut delay);
            node.on_sample(sample);
        }
        // A failed reply is a lost reply: the master retries.
        if let Ok(outcome) = node.serve(&mut framer, &mut rx, &mut tx, now.as_micros())
            && outcome.settings_changed
            && store.save(&node.settings()).is_ok()
        {
            node.settings_saved();
        }
        Timer::after_micros(POLL_US).await;
    }
}

/// On a panic, reset: a node that restarts is better than a node that hangs.
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    cortex_m::peripheral::SCB::sys_reset()
}
