//! The node's state, free of I/O: the board feeds it time, sensor results and request frames.
//!
//! - The sensor is sampled every [`SAMPLE_PERIOD_MS`]; samples go through the filters.
//! - A filtered, calibrated temperature is *published* (copied to the input registers,
//!   `sample_counter` + 1) every `report_interval_s`, and at once after start, after a sensor
//!   recovers and after the calibration offset changes.
//! - A failing sensor publishes the sentinels at once and sets its status bit.
//! - `unchanged_s` counts seconds since the published temperature last changed, so a master
//!   can tell a stuck node (counter frozen or value frozen for hours) from a live one.

use embedded_io::{Read, ReadReady, Write};

use crate::filter::{SpikeFilter, Verdict, div_round};
use crate::framer::RtuFramer;
use crate::registers::{
    FIRMWARE_VERSION, HUMIDITY_NONE, Settings, TEMPERATURE_NONE, input, status,
};
use crate::sensor::{Reading, SensorFault};
use crate::slave::{self, FrameOutcome, Reply};

/// Sensor sampling period.
pub const SAMPLE_PERIOD_MS: u64 = 1_000;
/// A temperature jump larger than this (m°C) between samples is held back as a possible spike.
pub const TEMPERATURE_SPIKE_LIMIT_MILLI_C: i32 = 2_000;
/// A humidity jump larger than this (m%RH) is held back as a possible spike.
pub const HUMIDITY_SPIKE_LIMIT_MILLI_PCT: i32 = 10_000;

/// A UART error while serving Modbus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServeError<R, T> {
    /// Receiving failed.
    Rx(R),
    /// Sending the reply failed.
    Tx(T),
}

/// The room node.
#[derive(Debug, Clone)]
pub struct Node {
    settings: Settings,
    factory_defaults: bool,
    temperature: SpikeFilter,
    humidity: SpikeFilter,
    published_temperature: i16,
    published_humidity: u16,
    fault_bits: u16,
    spike_rejected: bool,
    just_started: bool,
    sample_counter: u16,
    unchanged_s: u16,
    uptime_s: u32,
    since_publish_s: u32,
    publish_due: bool,
    start_ms: Option<u64>,
    next_sample_ms: u64,
}

impl Node {
    /// A node starting with `settings`; `factory_defaults` when no valid record was found.
    #[must_use]
    pub const fn new(settings: Settings, factory_defaults: bool) -> Self {
        Self {
            settings,
            factory_defaults,
            temperature: SpikeFilter::new(TEMPERATURE_SPIKE_LIMIT_MILLI_C),
            humidity: SpikeFilter::new(HUMIDITY_SPIKE_LIMIT_MILLI_PCT),
            published_temperature: TEMPERATURE_NONE,
            published_humidity: HUMIDITY_NONE,
            fault_bits: 0,
            spike_rejected: false,
            just_started: true,
            sample_counter: 0,
            unchanged_s: 0,
            uptime_s: 0,
            since_publish_s: 0,
            publish_due: true,
            start_ms: None,
            next_sample_ms: 0,
        }
    }

    /// The current settings (to persist after a write).
    #[must_use]
    pub const fn settings(&self) -> Settings {
        self.settings
    }

    /// The unit id the node answers to.
    #[must_use]
    pub const fn unit_id(&self) -> u8 {
        self.settings.unit_id
    }

    /// Tells the node its settings are now persisted (clears the factory-defaults flag).
    pub fn settings_saved(&mut self) {
        self.factory_defaults = false;
    }

    /// Advances the node's clock to `now_ms` (monotonic); true when a sample is due.
    pub fn tick(&mut self, now_ms: u64) -> bool {
        let start = *self.start_ms.get_or_insert(now_ms);
        let uptime = u32::try_from(now_ms.saturating_sub(start) / 1_000).unwrap_or(u32::MAX);
        let elapsed = uptime.saturating_sub(self.uptime_s);
        if elapsed > 0 {
            self.uptime_s = uptime;
            self.unchanged_s = self
                .unchanged_s
                .saturating_add(u16::try_from(elapsed).unwrap_or(u16::MAX));
            self.since_publish_s = self.since_publish_s.saturating_add(elapsed);
        }
        if now_ms < self.next_sample_ms {
            return false;
        }
        // Keep a steady rhythm, but do not try to catch up after a long stall.
        self.next_sample_ms = if now_ms - self.next_sample_ms < SAMPLE_PERIOD_MS {
            self.next_sample_ms + SAMPLE_PERIOD_MS
        } else {
            now_ms + SAMPLE_PERIOD_MS
        };
        true
    }

    /// Feeds the result of one sensor sample.
    pub fn on_sample(&mut self, result: Result<Reading, SensorFault>) {
        self.just_started = false;
        match result {
            Err(fault) => {
                self.fault_bits = match fault {
                    SensorFault::NoAnswer => status::SENSOR_FAULT,
                    SensorFault::Crc => status::SENSOR_CRC,
                };
                self.spike_rejected = false;
                self.temperature.reset();
                self.humidity.reset();
                self.set_temperature(TEMPERATURE_NONE);
                self.published_humidity = HUMIDITY_NONE;
                // Publish the first good sample at once after recovery.
                self.publish_due = true;
            }
            Ok(reading) => {
                self.fault_bits = 0;
                self.spike_rejected =
                    self.temperature.push(reading.temperature_milli_c) == Verdict::Rejected;
                match reading.humidity_milli_pct {
                    Some(h) => {
                        self.humidity.push(h);
                    }
                    None => self.humidity.reset(),
                }
                if self.publish_due
                    || self.since_publish_s >= u32::from(self.settings.report_interval_s)
                {
                    self.publish();
                }
            }
        }
    }

    fn publish(&mut self) {
        let Some(milli_c) = self.temperature.value() else {
            return;
        };
        let centi_c =
            div_round(i64::from(milli_c), 10) + i64::from(self.settings.calibration_offset_centi_k);
        // Keep clear of both sentinels (0x7FFF and 0x8000).
        let clamped = centi_c.clamp(i64::from(i16::MIN) + 1, i64::from(i16::MAX) - 1);
        self.set_temperature(i16::try_from(clamped).unwrap_or(TEMPERATURE_NONE));
        self.published_humidity = self
            .humidity
            .value()
            .and_then(|m| u16::try_from(div_round(i64::from(m), 10).clamp(0, 10_000)).ok())
            .unwrap_or(HUMIDITY_NONE);
        self.sample_counter = self.sample_counter.wrapping_add(1);
        self.since_publish_s = 0;
        self.publish_due = false;
    }

    fn set_temperature(&mut self, value: i16) {
        if value != self.published_temperature {
            self.published_temperature = value;
            self.unchanged_s = 0;
        }
    }

    /// The status register.
    #[must_use]
    pub fn status(&self) -> u16 {
        let mut bits = self.fault_bits;
        if self.factory_defaults {
            bits |= status::FACTORY_DEFAULTS;
        }
        if self.spike_rejected {
            bits |= status::SPIKE_REJECTED;
        }
        if self.just_started {
            bits |= status::JUST_STARTED;
        }
        bits
    }

    /// All input registers, address 0 first.
    #[must_use]
    pub fn input_registers(&self) -> [u16; input::COUNT] {
        let mut regs = [0u16; input::COUNT];
        regs[usize::from(input::TEMPERATURE)] = self.published_temperature.cast_unsigned();
        regs[usize::from(input::HUMIDITY)] = self.published_humidity;
        regs[usize::from(input::STATUS)] = self.status();
        regs[usize::from(input::SAMPLE_COUNTER)] = self.sample_counter;
        regs[usize::from(input::UNCHANGED_S)] = self.unchanged_s;
        let [hi, lo] = [(self.uptime_s >> 16) as u16, self.uptime_s as u16];
        regs[usize::from(input::UPTIME_HIGH)] = hi;
        regs[usize::from(input::UPTIME_LOW)] = lo;
        regs[usize::from(input::FIRMWARE_VERSION)] = FIRMWARE_VERSION;
        regs
    }

    /// Moves received bytes from `rx` into `framer` and answers a completed frame on `tx`.
    ///
    /// Call it often (well within one idle gap); `now_us` is a monotonic microsecond clock.
    /// Returns what the frame did, so the board can persist changed settings.
    pub fn serve<R, T>(
        &mut self,
        framer: &mut RtuFramer,
        rx: &mut R,
        tx: &mut T,
        now_us: u64,
    ) -> Result<FrameOutcome, ServeError<R::Error, T::Error>>
    where
        R: Read + ReadReady,
        T: Write,
    {
        framer.pump(rx, now_us).map_err(ServeError::Rx)?;
        let Some(frame) = framer.take_frame(now_us) else {
            return Ok(FrameOutcome::default());
        };
        let mut reply = Reply::new();
        let outcome = self.handle_frame(frame, &mut reply);
        if outcome.reply {
            tx.write_all(&reply).map_err(ServeError::Tx)?;
            tx.flush().map_err(ServeError::Tx)?;
        }
        Ok(outcome)
    }

    /// Answers one received RTU frame; see [`slave::respond`].
    pub fn handle_frame(&mut self, frame: &[u8], reply: &mut Reply) -> FrameOutcome {
        let inputs = self.input_registers();
        let before = self.settings;
        let outcome = slave::respond(frame, &inputs, &mut self.settings, reply);
        if self.settings.calibration_offset_centi_k != before.calibration_offset_centi_k {
            self.publish_due = true;
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(milli_c: i32) -> Result<Reading, SensorFault> {
        Ok(Reading {
            temperature_milli_c: milli_c,
            humidity_milli_pct: None,
        })
    }

    /// Runs the node for `seconds`, sampling `sample` every second.
    fn run(node: &mut Node, now: &mut u64, seconds: u64, sample: Result<Reading, SensorFault>) {
        for _ in 0..seconds {
            *now += 1_000;
            if node.tick(*now) {
                node.on_sample(sample);
            }
        }
    }

    #[test]
    fn publishes_first_sample_then_every_interval() {
        let mut node = Node::new(Settings::FACTORY, true);
        let regs = node.input_registers();
        assert_eq!(regs[0], 0x7FFF);
        assert_eq!(regs[1], 0xFFFF);
        assert_eq!(regs[2], status::JUST_STARTED | status::FACTORY_DEFAULTS);
        assert_eq!(regs[7], FIRMWARE_VERSION);

        let mut now = 5_000;
        assert!(node.tick(now));
        node.on_sample(reading(21_375));
        let regs = node.input_registers();
        assert_eq!(regs[0] as i16, 2138);
        assert_eq!(regs[2], status::FACTORY_DEFAULTS);
        assert_eq!(regs[3], 1);
        node.settings_saved();
        assert_eq!(node.status(), 0);

        // Not published again before the 60 s interval.
        run(&mut node, &mut now, 59, reading(21_500));
        assert_eq!(node.input_registers()[0] as i16, 2138);
        assert_eq!(node.input_registers()[3], 1);
        assert_eq!(node.input_registers()[4], 59);
        run(&mut node, &mut now, 1, reading(21_500));
        let regs = node.input_registers();
        assert_eq!(regs[0] as i16, 2150);
        assert_eq!(regs[3], 2);
        assert_eq!(regs[4], 0);
        assert_eq!((regs[5], regs[6]), (0, 60));
    }

    #[test]
    fn fault_sets_sentinel_and_recovery_publishes_at_once() {
        let mut node = Node::new(Settings::FACTORY, false);
        let mut now = 0;
        run(&mut node, &mut now, 3, reading(20_000));
        assert_eq!(node.input_registers()[3], 1);
        run(&mut node, &mut now, 1, Err(SensorFault::Crc));
        let regs = node.input_registers();
        assert_eq!(regs[0], 0x7FFF);
        assert_eq!(regs[2], status::SENSOR_CRC);
        assert_eq!(regs[3], 1, "a sentinel is not a published sample");
        run(&mut node, &mut now, 1, Err(SensorFault::NoAnswer));
        assert_eq!(node.input_registers()[2], status::SENSOR_FAULT);
        run(&mut node, &mut now, 1, reading(19_990));
        let regs = node.input_registers();
        assert_eq!(regs[0] as i16, 1999);
        assert_eq!(regs[2], 0);
        assert_eq!(regs[3], 2);
    }

    #[test]
    fn offset_and_spike_flag() {
        let mut settings = Settings::FACTORY;
        settings.calibration_offset_centi_k = -150;
        let mut node = Node::new(settings, false);
        let mut now = 0;
        run(&mut node, &mut now, 1, reading(21_000));
        assert_eq!(node.input_registers()[0] as i16, 1950);
        run(&mut node, &mut now, 1, reading(60_000));
        assert_eq!(node.status(), status::SPIKE_REJECTED);
        run(&mut node, &mut now, 1, reading(21_000));
        assert_eq!(node.status(), 0);
    }

    #[test]
    fn humidity_is_published_with_temperature() {
        let mut node = Node::new(Settings::FACTORY, false);
        let mut now = 0;
        run(
            &mut node,
            &mut now,
            1,
            Ok(Reading {
                temperature_milli_c: -12_345,
                humidity_milli_pct: Some(45_678),
            }),
        );
        let regs = node.input_registers();
        assert_eq!(regs[0] as i16, -1235);
        assert_eq!(regs[1], 4568);
    }

    #[test]
    fn unchanged_counter_saturates() {
        let mut node = Node::new(Settings::FACTORY, false);
        assert!(node.tick(0));
        node.on_sample(reading(20_000));
        node.tick(100_000_000);
        let regs = node.input_registers();
        assert_eq!(regs[4], u16::MAX);
        assert_eq!((u32::from(regs[5]) << 16) | u32::from(regs[6]), 100_000);
    }
}
