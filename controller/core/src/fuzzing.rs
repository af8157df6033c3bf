//! Entry points for the coverage-guided fuzzers in `fuzz/` and the corpus replay tests.
//!
//! Not part of the API: each function runs one fuzz input through the real parser and panics
//! when a property the parser promises is broken.

use std::path::Path;

use crate::config::{self, Config, DataType, DecodeError, PointMap, Problems, Table, WordOrder};
use crate::control::{Controller, SavedState};
use crate::signal::Signal;

/// The device maps shipped in `config/devices/`, by the path the example configuration uses.
pub const SHIPPED_MAPS: &[(&str, &str)] = &[
    (
        "devices/heat-meter.toml",
        include_str!("../../../config/devices/heat-meter.toml"),
    ),
    (
        "devices/room-node.toml",
        include_str!("../../../config/devices/room-node.toml"),
    ),
    (
        "devices/substation-io.toml",
        include_str!("../../../config/devices/substation-io.toml"),
    ),
    (
        "devices/substation-pump.toml",
        include_str!("../../../config/devices/substation-pump.toml"),
    ),
    (
        "devices/valve-actuator.toml",
        include_str!("../../../config/devices/valve-actuator.toml"),
    ),
];

/// Load `data` as a configuration text, alone ([`config::parse_str`]) and with the shipped
/// device maps ([`config::parse_with_maps`]).
///
/// # Panics
/// When a problem report is empty, has no message, or points at a line or column outside the
/// text.
pub fn config_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(p) = config::parse_str(text, None) {
        check_problems(&p, text);
    }
    if let Err(p) =
        config::parse_with_maps(text, Path::new("/etc/heatctl/heatctl.toml"), SHIPPED_MAPS)
    {
        check_problems(&p, text);
    }
}

/// Every problem says what is wrong and, where it is located, where in `text`.
fn check_problems(problems: &Problems, text: &str) {
    assert!(!problems.0.is_empty(), "an error without a problem");
    // Lines as the locator counts them: a trailing newline opens one more (empty) line. Their
    // widths in characters are counted once: a garbled text can have hundreds of problems.
    let widths: Vec<usize> = text.split('\n').map(|l| l.chars().count()).collect();
    let lines = widths.len();
    for p in &problems.0 {
        assert!(
            !p.message.trim().is_empty(),
            "a problem without a message: {p:?}"
        );
        if let Some(line) = p.line {
            assert!((1..=lines).contains(&line), "line {line} of {lines}: {p:?}");
            let width = widths[line - 1];
            if let Some(column) = p.column {
                assert!(
                    (1..=width + 1).contains(&column),
                    "column {column} of a line of {width} characters: {p:?}"
                );
            }
        } else {
            assert!(p.column.is_none(), "a column without a line: {p:?}");
        }
    }
}

/// A little-endian reader of the fuzz input.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u64(&mut self) -> u64 {
        u64::from(self.u16())
            | u64::from(self.u16()) << 16
            | u64::from(self.u16()) << 32
            | u64::from(self.u16()) << 48
    }
    /// A number that is usually an ordinary scale or limit, sometimes any bit pattern.
    fn f64(&mut self) -> f64 {
        const COMMON: [f64; 8] = [1.0, 0.1, 0.01, 10.0, -1.0, 0.0, 0.5, 1000.0];
        let b = self.u8();
        if b < 0xF0 {
            COMMON[usize::from(b % 8)] * f64::from(b / 8)
        } else {
            f64::from_bits(self.u64())
        }
    }
}

/// Decode registers with a point built from `data`: type, word order, scale, offset,
/// sentinels, valid range, then the register words.
///
/// # Panics
/// When a value is returned that is not finite or outside the point's valid range, a
/// sentinel is returned as a value, too few registers give anything but `Short`, or (for an
/// integer point with scale 1 and offset 0) encoding the decoded value does not give back the
/// registers.
pub fn point_decode(data: &[u8]) {
    let mut b = Bytes(data);
    let head = b.u8();
    let data_type = [
        DataType::Bool,
        DataType::U16,
        DataType::I16,
        DataType::U32,
        DataType::I32,
        DataType::F32,
    ][usize::from(head % 6)];
    let word_order = if head & 0x08 == 0 {
        WordOrder::Big
    } else {
        WordOrder::Little
    };
    let plain = head & 0x10 != 0;
    let (scale, offset) = if plain {
        (1.0, 0.0)
    } else {
        (b.f64(), b.f64())
    };
    let flags = b.u8();
    let sentinels: Vec<i64> = (0..flags % 4)
        .map(|_| i64::from(b.u16() as i16) * if flags & 0x40 != 0 { 65_536 } else { 1 })
        .collect();
    let valid_min = (flags & 0x10 != 0).then(|| b.f64());
    let valid_max = (flags & 0x20 != 0).then(|| b.f64());
    // The points a device map may hold: the loader refuses a zero or non-finite scale and a
    // non-finite offset or limit (`an_infinite_or_nan_limit_is_refused_by_the_loader`).
    let finite = |v: Option<f64>| v.is_none_or(f64::is_finite);
    if scale == 0.0
        || !scale.is_finite()
        || !offset.is_finite()
        || !finite(valid_min)
        || !finite(valid_max)
    {
        return;
    }
    let point = PointMap {
        name: "fuzz".into(),
        table: Table::Holding,
        address: 0,
        data_type,
        word_order,
        scale,
        offset,
        unit: String::new(),
        sentinels,
        valid_min,
        valid_max,
        poll_period_s: 10.0,
        max_age_s: 60.0,
        writable: true,
    };
    let regs: Vec<u16> =
        b.0.chunks(2)
            .map(|c| u16::from_le_bytes([c[0], *c.get(1).unwrap_or(&0)]))
            .collect();
    let width = usize::from(data_type.width());
    match point.decode(&regs) {
        Ok(v) => {
            assert!(regs.len() >= width, "a value from too few registers");
            assert!(v.is_finite(), "a non-finite value {v}");
            assert!(valid_min.is_none_or(|lo| v >= lo), "{v} below valid_min");
            assert!(valid_max.is_none_or(|hi| v <= hi), "{v} above valid_max");
            if plain && data_type != DataType::Bool && data_type != DataType::F32 {
                assert_eq!(
                    point.encode(v).as_deref(),
                    Some(&regs[..width]),
                    "{data_type:?} {v} does not encode back"
                );
            }
        }
        Err(DecodeError::Short) => assert!(regs.len() < width, "Short with enough registers"),
        Err(DecodeError::Sentinel) => assert!(!point.sentinels.is_empty()),
        Err(DecodeError::OutOfRange) => {}
    }
}

/// The configuration the state file fuzzer restores into: the shipped example (parsed once).
fn example() -> &'static Config {
    static EXAMPLE: std::sync::OnceLock<Config> = std::sync::OnceLock::new();
    EXAMPLE.get_or_init(|| {
        config::parse_str(config::EXAMPLE_TOML, None).expect("the example configuration is valid")
    })
}

/// Read `data` as the state file is read (TOML into [`SavedState`]) and restore it into a
/// controller of the example configuration.
///
/// # Panics
/// When the restored state is not finite, a shift is outside its configured bounds, or the
/// damped outdoor temperature is outside the outdoor sensor's plausible range.
pub fn state_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(saved) = toml::from_str::<SavedState>(text) else {
        return;
    };
    let cfg = example();
    let mut controller = Controller::new(cfg);
    controller.restore(&saved);
    let now = controller.saved_state();
    assert!(now.demand_shift_k.is_finite() && now.valve_demand_shift_k.is_finite());
    assert!(
        (cfg.demand.min_shift_k..=cfg.demand.max_shift_k).contains(&now.demand_shift_k),
        "demand shift {} outside its bounds",
        now.demand_shift_k
    );
    assert!(
        (cfg.valve_demand.min_shift_k..=cfg.valve_demand.max_shift_k)
            .contains(&now.valve_demand_shift_k),
        "valve demand shift {} outside its bounds",
        now.valve_demand_shift_k
    );
    if let Some(d) = now.damped_outdoor_c {
        let lim = cfg.signals.limits(Signal::TOut);
        assert!(
            (lim.valid_min..=lim.valid_max).contains(&d),
            "damped outdoor {d} °C restored outside the outdoor sensor's range {}..{}",
            lim.valid_min,
            lim.valid_max
        );
    }
}
