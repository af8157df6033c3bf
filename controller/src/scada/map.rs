//! The SCADA register map: one table that both the slave and `heatctl scada-map` read.

use crate::control::Signal;

/// How a register holds its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Signed 16-bit, value × 10; 0x8000 (-32768) when unknown.
    I16Tenths,
    /// Signed 16-bit, value × 100; 0x8000 (-32768) when unknown.
    I16Hundredths,
    /// Unsigned 16-bit, the value itself (codes, counts, flags); 0xFFFF when unknown.
    U16,
    /// Unsigned 32-bit over two registers, high word first (at the address), low word at the
    /// address + 1: the value itself (counters); 0xFFFF 0xFFFF when unknown, so a real value
    /// reads at most 0xFFFF_FFFE. Input registers only.
    U32HighLow,
}

impl Encoding {
    /// Short form for the Markdown table.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Encoding::I16Tenths => "i16 ×10",
            Encoding::I16Hundredths => "i16 ×100",
            Encoding::U16 => "u16",
            Encoding::U32HighLow => "u32, 2 registers, high word first",
        }
    }

    /// How many registers a value takes.
    #[must_use]
    pub fn words(self) -> u16 {
        match self {
            Encoding::U32HighLow => 2,
            _ => 1,
        }
    }

    /// Raw registers for an engineering value (`None`: unknown); only the first
    /// [`Encoding::words`] are used.
    #[must_use]
    pub fn encode_words(self, value: Option<f64>) -> [u16; 2] {
        match (self, value) {
            (Encoding::U32HighLow, Some(v)) if v.is_finite() => {
                let n = v.round().clamp(0.0, f64::from(u32::MAX - 1)) as u32;
                [(n >> 16) as u16, (n & 0xFFFF) as u16]
            }
            (Encoding::U32HighLow, _) => [0xFFFF, 0xFFFF],
            _ => [self.encode(value), 0],
        }
    }

    /// Engineering value of raw registers (the first [`Encoding::words`] of `words`).
    #[must_use]
    pub fn decode_words(self, words: [u16; 2]) -> f64 {
        match self {
            Encoding::U32HighLow => f64::from((u32::from(words[0]) << 16) | u32::from(words[1])),
            _ => self.decode(words[0]),
        }
    }

    /// Raw register for an engineering value (`None`: unknown); for a two-register encoding
    /// the first (high) word, see [`Encoding::encode_words`].
    #[must_use]
    pub fn encode(self, value: Option<f64>) -> u16 {
        let scaled = |v: f64, k: f64| {
            let r = (v * k).round();
            if r.is_finite() && (-32767.0..=32767.0).contains(&r) {
                (r as i16) as u16
            } else {
                0x8000
            }
        };
        match (self, value) {
            (Encoding::I16Tenths, Some(v)) => scaled(v, 10.0),
            (Encoding::I16Hundredths, Some(v)) => scaled(v, 100.0),
            (Encoding::I16Tenths | Encoding::I16Hundredths, None) => 0x8000,
            (Encoding::U16, Some(v)) if v.is_finite() => v.round().clamp(0.0, 65535.0) as u16,
            (Encoding::U16, _) => 0xFFFF,
            (Encoding::U32HighLow, _) => self.encode_words(value)[0],
        }
    }

    /// Engineering value of a raw register; for a two-register encoding, of the high word
    /// alone (with a low word of 0), see [`Encoding::decode_words`].
    #[must_use]
    pub fn decode(self, raw: u16) -> f64 {
        match self {
            Encoding::I16Tenths => f64::from(raw as i16) / 10.0,
            Encoding::I16Hundredths => f64::from(raw as i16) / 100.0,
            Encoding::U16 => f64::from(raw),
            Encoding::U32HighLow => f64::from(u32::from(raw) << 16),
        }
    }
}

/// One register of the map.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegisterDef {
    /// 0-based protocol address.
    pub address: u16,
    /// Name (for holding registers: the name in `scada.writable`).
    pub name: &'static str,
    /// How the value is held.
    pub encoding: Encoding,
    /// Unit.
    pub unit: &'static str,
    /// What it is.
    pub description: &'static str,
    /// Accepted engineering range of a write (holding registers).
    pub range: Option<(f64, f64)>,
}

const fn input(
    address: u16,
    name: &'static str,
    encoding: Encoding,
    unit: &'static str,
    description: &'static str,
) -> RegisterDef {
    RegisterDef {
        address,
        name,
        encoding,
        unit,
        description,
        range: None,
    }
}

/// A signal's register encoding: power in whole kilowatts, the energy counter in whole
/// kilowatt-hours over two registers (a u16 would overflow at 65 MWh), everything else in tenths.
const fn signal_encoding(signal: Signal) -> Encoding {
    match signal {
        Signal::Power1Kw => Encoding::U16,
        Signal::Energy1Kwh => Encoding::U32HighLow,
        _ => Encoding::I16Tenths,
    }
}

/// A signal's input register: address, name, unit and meaning come from the signal.
const fn signal_register(signal: Signal) -> RegisterDef {
    input(
        signal.scada_input_register(),
        signal.name(),
        signal_encoding(signal),
        signal.unit(),
        signal.description(),
    )
}

/// Input registers after the signals': the explanation, alarms and device health.
const STATION_REGISTERS: [RegisterDef; 29] = [
    input(
        8,
        "signals_valid",
        Encoding::U16,
        "bits",
        "Bit n set: signal at register n is valid and fresh",
    ),
    input(
        10,
        "setpoint_c",
        Encoding::I16Tenths,
        "°C",
        "Secondary supply setpoint in force",
    ),
    input(
        11,
        "curve_c",
        Encoding::I16Tenths,
        "°C",
        "Heating-curve value before shifts and limiters",
    ),
    input(
        12,
        "base_shift_k",
        Encoding::I16Tenths,
        "K",
        "Curve shift (configured or from SCADA)",
    ),
    input(
        13,
        "demand_shift_k",
        Encoding::I16Tenths,
        "K",
        "Shift from room-temperature demand correction",
    ),
    input(
        14,
        "valve_demand_shift_k",
        Encoding::I16Tenths,
        "K",
        "Shift from household-valve trim and respond",
    ),
    input(
        15,
        "active_limiter",
        Encoding::U16,
        "code",
        "Limiter in force: 0 none, 1 return1, 2 return difference, 3 power, 4 setback, 5 boost, 6 rate, 7 clamp, 8 summer",
    ),
    input(
        16,
        "supervisor",
        Encoding::U16,
        "code",
        "Safety override: 0 none, 1 hold on sensor loss, 2 safe position, 3 frost, 4 over-temperature cut",
    ),
    input(
        17,
        "heating_on",
        Encoding::U16,
        "0/1",
        "Heating on (not in summer cut-off or mode off)",
    ),
    input(
        18,
        "valve1_cmd_pct",
        Encoding::I16Tenths,
        "%",
        "Primary valve command",
    ),
    input(
        19,
        "mode",
        Encoding::U16,
        "code",
        "Operating mode: 0 auto, 1 off, 2 manual",
    ),
    input(
        20,
        "rooms_expected",
        Encoding::U16,
        "count",
        "Room nodes expected (not vacant, not excluded)",
    ),
    input(
        21,
        "rooms_used",
        Encoding::U16,
        "count",
        "Room nodes used by demand correction",
    ),
    input(
        22,
        "rooms_percentile_c",
        Encoding::I16Hundredths,
        "°C",
        "Chosen percentile of room temperatures",
    ),
    input(
        23,
        "rooms_median_c",
        Encoding::I16Hundredths,
        "°C",
        "Median room temperature",
    ),
    input(
        24,
        "outdoor_used_c",
        Encoding::I16Tenths,
        "°C",
        "Outdoor temperature the controller uses (after fallbacks)",
    ),
    input(
        25,
        "damped_outdoor_c",
        Encoding::I16Tenths,
        "°C",
        "Damped outdoor temperature",
    ),
    input(
        26,
        "cycle_count",
        Encoding::U16,
        "count",
        "Control cycles completed, modulo 65535: a heartbeat that advances every cycle",
    ),
    input(
        27,
        "clock_synced",
        Encoding::U16,
        "code",
        "System clock synchronised (the kernel's flag, set by NTP): 1 yes, 0 no; unknown on a scaled clock",
    ),
    input(30, "alarm_count", Encoding::U16, "count", "Active alarms"),
    input(
        31,
        "alarm_codes",
        Encoding::U16,
        "code",
        "Registers 31-46: codes of up to 16 active alarms, 0 after the last",
    ),
    input(
        50,
        "devices_total",
        Encoding::U16,
        "count",
        "Field devices polled (room nodes and valves included)",
    ),
    input(
        51,
        "devices_lost",
        Encoding::U16,
        "count",
        "Field devices not answering",
    ),
    input(
        61,
        "pump2_mode",
        Encoding::U16,
        "code",
        "Secondary pump control: 0 not controlled (pump2_speed_cmd unbound), 1 constant_dp, 2 proportional_dp, 3 index",
    ),
    input(
        62,
        "pump2_dp_setpoint_kpa",
        Encoding::I16Tenths,
        "kPa",
        "Secondary pump differential-pressure setpoint in force (dp2_station, or dp2_index in index mode)",
    ),
    input(
        63,
        "pump2_speed_cmd_pct",
        Encoding::I16Tenths,
        "%",
        "Secondary pump speed command",
    ),
    input(
        64,
        "pump2_dry_run",
        Encoding::U16,
        "code",
        "Secondary pump dry-run guard: 0 normal, 1 low flow or pressure (timing), 2 tripped (pump stopped)",
    ),
    input(
        65,
        "pump2_reason",
        Encoding::U16,
        "code",
        "Why the pump has its speed: 1 control, 2 run-on, 3 heating off, 4 dp lost (held), 5 dp lost (fallback), 6 dry-run stop, 7 frost, 8 safe speed",
    ),
    input(
        100,
        "device_health",
        Encoding::U16,
        "",
        "Registers 100 + 4·i (i = device index, links in order, up to 64): +0 bit 0 answering (answered at least once and not lost), bit 1 write failed; +1 requests (mod 65536); +2 errors (mod 65536); +3 last latency ms (0xFFFF unknown)",
    ),
];

/// Input registers (function 04), read-only: the signals' (from [`Signal`]), then the station's.
pub const INPUT_REGISTERS: &[RegisterDef] = &{
    let mut out = [signal_register(Signal::TOut); Signal::COUNT + STATION_REGISTERS.len()];
    let mut i = 0;
    while i < Signal::COUNT {
        out[i] = signal_register(Signal::ALL[i]);
        i += 1;
    }
    while i < out.len() {
        out[i] = STATION_REGISTERS[i - Signal::COUNT];
        i += 1;
    }
    out
};

/// Number of alarm-code registers.
pub const ALARM_SLOTS: u16 = 16;
/// First device-health register.
pub const DEVICE_HEALTH_BASE: u16 = 100;
/// Registers per device in the health block.
pub const DEVICE_HEALTH_STRIDE: u16 = 4;
/// Most devices in the health block.
pub const DEVICE_HEALTH_MAX: u16 = 64;
/// Size of the input-register image.
pub const INPUT_IMAGE_LEN: u16 = DEVICE_HEALTH_BASE + DEVICE_HEALTH_STRIDE * DEVICE_HEALTH_MAX;

const fn holding(
    address: u16,
    name: &'static str,
    encoding: Encoding,
    unit: &'static str,
    description: &'static str,
    lo: f64,
    hi: f64,
) -> RegisterDef {
    RegisterDef {
        range: Some((lo, hi)),
        ..input(address, name, encoding, unit, description)
    }
}

/// Holding registers (functions 03, 06, 16): settings. Writable only when named in
/// `scada.writable`; otherwise a write answers exception 02, out of range exception 03.
pub const HOLDING_REGISTERS: &[RegisterDef] = &[
    holding(
        0,
        "curve_shift_k",
        Encoding::I16Tenths,
        "K",
        "Parallel shift of the heating curve",
        -30.0,
        30.0,
    ),
    holding(
        1,
        "operating_mode",
        Encoding::U16,
        "code",
        "0 auto, 1 off, 2 manual (valve at valve1_manual_pct)",
        0.0,
        2.0,
    ),
    holding(
        2,
        "room_target_c",
        Encoding::I16Tenths,
        "°C",
        "Room target of the demand correction",
        12.0,
        26.0,
    ),
    holding(
        3,
        "demand_enabled",
        Encoding::U16,
        "0/1",
        "Demand correction from room temperatures on/off",
        0.0,
        1.0,
    ),
    holding(
        4,
        "valve1_manual_pct",
        Encoding::I16Tenths,
        "%",
        "Primary valve position in manual mode",
        0.0,
        100.0,
    ),
];

/// Index of a holding register by name.
#[must_use]
pub fn holding_index(name: &str) -> Option<usize> {
    HOLDING_REGISTERS.iter().position(|r| r.name == name)
}

/// The register map as Markdown (what `heatctl scada-map` prints and the README carries).
#[must_use]
pub fn markdown() -> String {
    let mut s = String::new();
    s.push_str("### Input registers (function 04, read-only)\n\n");
    s.push_str("| address | name | type | unit | meaning |\n|---|---|---|---|---|\n");
    let mut inputs: Vec<&RegisterDef> = INPUT_REGISTERS.iter().collect();
    inputs.sort_by_key(|r| r.address);
    for r in inputs {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            r.address,
            r.name,
            r.encoding.describe(),
            r.unit,
            r.description
        ));
    }
    s.push_str(
        "\nUnknown values read 0x8000 (-32768) in signed registers and 0xFFFF in unsigned ones \
         (0xFFFF 0xFFFF in a u32 pair). A u32 takes two registers, the high word at the listed \
         address and the low word at the next (\"ABCD\" order): read both in one request.\n",
    );
    s.push_str("\n### Holding registers (functions 03, 06, 16)\n\n");
    s.push_str("| address | name | type | unit | range | meaning |\n|---|---|---|---|---|---|\n");
    for r in HOLDING_REGISTERS {
        let range = r
            .range
            .map_or(String::new(), |(lo, hi)| format!("{lo} .. {hi}"));
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.address,
            r.name,
            r.encoding.describe(),
            r.unit,
            range,
            r.description
        ));
    }
    s.push_str("\nA holding register is writable only when its name is listed in `scada.writable`; a write to any other address answers exception 02 (illegal data address), a value outside the range exception 03 (illegal data value), and nothing changes. Multi-register writes are checked whole before anything is applied.\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_unique_and_inside_the_image() {
        let mut seen = std::collections::BTreeSet::new();
        for r in INPUT_REGISTERS {
            for a in r.address..r.address + r.encoding.words() {
                assert!(seen.insert(a), "{} at {a}", r.name);
                assert!(a < INPUT_IMAGE_LEN);
            }
        }
        // The energy counter came last: every register before it kept its address.
        let energy = INPUT_REGISTERS
            .iter()
            .find(|r| r.name == "energy1_kwh")
            .expect("energy1_kwh in the map");
        assert_eq!((energy.address, energy.encoding.words()), (53, 2));
        assert_eq!(energy.address, Signal::Energy1Kwh.scada_input_register());
        let forecast = INPUT_REGISTERS
            .iter()
            .find(|r| r.name == "t_out_forecast")
            .expect("t_out_forecast in the map");
        assert_eq!(forecast.address, 52);
        // The pump's signals and state after the energy counter, below the health block.
        let at = |name: &str| {
            INPUT_REGISTERS
                .iter()
                .find(|r| r.name == name)
                .map(|r| r.address)
        };
        assert_eq!(at("dp2_station"), Some(56));
        assert_eq!(at("flow2"), Some(60));
        assert_eq!(at("pump2_mode"), Some(61));
        assert_eq!(at("pump2_reason"), Some(65));
        for (i, r) in HOLDING_REGISTERS.iter().enumerate() {
            assert_eq!(usize::from(r.address), i);
            assert!(crate::config::SCADA_WRITABLE.contains(&r.name));
        }
    }

    #[test]
    fn encodings_round_trip_and_mark_unknown() {
        assert_eq!(Encoding::I16Tenths.encode(Some(-12.34)), (-123i16) as u16);
        assert_eq!(Encoding::I16Tenths.decode((-123i16) as u16), -12.3);
        assert_eq!(Encoding::I16Tenths.encode(None), 0x8000);
        assert_eq!(Encoding::I16Tenths.encode(Some(f64::NAN)), 0x8000);
        assert_eq!(Encoding::U16.encode(Some(70_000.0)), 65535);
        assert_eq!(Encoding::U16.encode(None), 0xFFFF);
        assert!(markdown().contains("| 0 | curve_shift_k |"));
        // The u32 pair: exact whole kWh above 65535, high word first, unknown all ones.
        let e = Encoding::U32HighLow;
        assert_eq!(e.encode_words(Some(123_456_789.4)), [0x075B, 0xCD15]);
        assert_eq!(e.decode_words([0x075B, 0xCD15]), 123_456_789.0);
        assert_eq!(e.encode(Some(123_456_789.0)), 0x075B);
        assert_eq!(e.encode_words(None), [0xFFFF, 0xFFFF]);
        assert_eq!(e.encode_words(Some(f64::NAN)), [0xFFFF, 0xFFFF]);
        assert_eq!(e.encode_words(Some(-5.0)), [0, 0]);
        assert_eq!(e.encode_words(Some(5e9)), [0xFFFF, 0xFFFE]);
        assert!(
            markdown().contains("| 53 | energy1_kwh | u32, 2 registers, high word first | kWh |")
        );
    }
}
