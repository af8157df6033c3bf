//! Device register maps (`config/devices/*.toml`): how a device type lays out its points.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::check::Checker;
use super::problems::Problem;

/// A device type's register map.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceMap {
    /// What the device is.
    pub device: DeviceInfo,
    /// Its points.
    pub points: Vec<PointMap>,
}

/// Description of the device type.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceInfo {
    /// Model name.
    pub model: String,
    /// What it measures or drives.
    #[serde(default)]
    pub description: String,
    /// Most registers read in one request (Modbus allows 125).
    #[serde(default = "d_max_regs")]
    pub max_registers_per_read: u16,
}
fn d_max_regs() -> u16 {
    125
}

/// Modbus register table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// Holding registers (03 read, 06/16 write).
    Holding,
    /// Input registers (04).
    Input,
    /// Coils (01 read, 05/15 write).
    Coil,
    /// Discrete inputs (02).
    Discrete,
}

/// Data type of a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DataType {
    /// One bit (coils, discrete inputs).
    Bool,
    /// Unsigned 16-bit.
    U16,
    /// Signed 16-bit.
    I16,
    /// Unsigned 32-bit over two registers.
    U32,
    /// Signed 32-bit over two registers.
    I32,
    /// IEEE-754 single over two registers.
    F32,
}

impl DataType {
    /// Registers (or bits) the type occupies.
    #[must_use]
    pub fn width(self) -> u16 {
        match self {
            DataType::Bool | DataType::U16 | DataType::I16 => 1,
            DataType::U32 | DataType::I32 | DataType::F32 => 2,
        }
    }
}

/// Order of the two 16-bit words of a 32-bit value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WordOrder {
    /// High word first ("ABCD").
    Big,
    /// Low word first ("CDAB").
    Little,
}

/// One point of a device.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PointMap {
    /// Point name, unique in the map.
    pub name: String,
    /// Register table.
    pub table: Table,
    /// 0-based protocol address.
    pub address: u16,
    /// Data type.
    #[serde(rename = "type")]
    pub data_type: DataType,
    /// Word order of 32-bit types.
    #[serde(default = "d_word_order")]
    pub word_order: WordOrder,
    /// Engineering value = raw * scale + offset.
    #[serde(default = "d_scale")]
    pub scale: f64,
    /// Engineering value = raw * scale + offset.
    #[serde(default)]
    pub offset: f64,
    /// Unit, for people.
    #[serde(default)]
    pub unit: String,
    /// Raw values that mean "no sensor".
    #[serde(default)]
    pub sentinels: Vec<i64>,
    /// Lowest valid engineering value.
    pub valid_min: Option<f64>,
    /// Highest valid engineering value.
    pub valid_max: Option<f64>,
    /// How often to read it, seconds.
    #[serde(default = "d_poll")]
    pub poll_period_s: f64,
    /// Older than this it is stale, seconds.
    #[serde(default = "d_max_age")]
    pub max_age_s: f64,
    /// Whether heatctl may write it.
    #[serde(default)]
    pub writable: bool,
}
fn d_word_order() -> WordOrder {
    WordOrder::Big
}
fn d_scale() -> f64 {
    1.0
}
fn d_poll() -> f64 {
    10.0
}
fn d_max_age() -> f64 {
    60.0
}

/// Why raw registers did not give a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Too few registers for the type.
    Short,
    /// The raw value is one of the point's sentinels.
    Sentinel,
    /// Outside `valid_min..valid_max`, or not a finite number.
    OutOfRange,
}

impl PointMap {
    /// Decode raw registers (starting at this point's address) into an engineering value,
    /// applying word order, sentinels, scale/offset and the valid range.
    ///
    /// # Errors
    /// [`DecodeError`] when the value must not be used.
    pub fn decode(&self, regs: &[u16]) -> Result<f64, DecodeError> {
        let raw: f64 = match self.data_type {
            DataType::Bool | DataType::U16 => {
                let r = *regs.first().ok_or(DecodeError::Short)?;
                self.check_sentinel(i64::from(r))?;
                f64::from(r)
            }
            DataType::I16 => {
                let r = *regs.first().ok_or(DecodeError::Short)?;
                let v = i64::from(r as i16);
                // A sentinel may be written as the signed or the unsigned value.
                self.check_sentinel(v)?;
                self.check_sentinel(i64::from(r))?;
                v as f64
            }
            DataType::U32 | DataType::I32 | DataType::F32 => {
                let bits = self.join_words(regs)?;
                match self.data_type {
                    DataType::U32 => {
                        self.check_sentinel(i64::from(bits))?;
                        f64::from(bits)
                    }
                    DataType::I32 => {
                        let v = bits as i32;
                        self.check_sentinel(i64::from(v))?;
                        f64::from(v)
                    }
                    _ => f64::from(f32::from_bits(bits)),
                }
            }
        };
        let value = raw * self.scale + self.offset;
        if !value.is_finite()
            || self.valid_min.is_some_and(|lo| value < lo)
            || self.valid_max.is_some_and(|hi| value > hi)
        {
            return Err(DecodeError::OutOfRange);
        }
        Ok(value)
    }

    /// Encode an engineering value into raw registers (for writes), rounding to the nearest
    /// raw step. Returns `None` when the value is not representable or outside the valid range.
    #[must_use]
    pub fn encode(&self, value: f64) -> Option<Vec<u16>> {
        if !value.is_finite()
            || self.valid_min.is_some_and(|lo| value < lo)
            || self.valid_max.is_some_and(|hi| value > hi)
            || self.scale == 0.0
        {
            return None;
        }
        let raw = ((value - self.offset) / self.scale).round();
        let words = |bits: u32| -> Vec<u16> {
            let hi = (bits >> 16) as u16;
            let lo = (bits & 0xFFFF) as u16;
            match self.word_order {
                WordOrder::Big => vec![hi, lo],
                WordOrder::Little => vec![lo, hi],
            }
        };
        match self.data_type {
            DataType::Bool => Some(vec![u16::from(raw != 0.0)]),
            DataType::U16 => (0.0..=65535.0).contains(&raw).then(|| vec![raw as u16]),
            DataType::I16 => (-32768.0..=32767.0)
                .contains(&raw)
                .then(|| vec![(raw as i16) as u16]),
            DataType::U32 => (0.0..=4_294_967_295.0)
                .contains(&raw)
                .then(|| words(raw as u32)),
            DataType::I32 => (-2_147_483_648.0..=2_147_483_647.0)
                .contains(&raw)
                .then(|| words((raw as i32) as u32)),
            DataType::F32 => Some(words(
                (((value - self.offset) / self.scale) as f32).to_bits(),
            )),
        }
    }

    fn check_sentinel(&self, raw: i64) -> Result<(), DecodeError> {
        if self.sentinels.contains(&raw) {
            Err(DecodeError::Sentinel)
        } else {
            Ok(())
        }
    }

    fn join_words(&self, regs: &[u16]) -> Result<u32, DecodeError> {
        let (a, b) = match regs {
            [a, b, ..] => (u32::from(*a), u32::from(*b)),
            _ => return Err(DecodeError::Short),
        };
        Ok(match self.word_order {
            WordOrder::Big => (a << 16) | b,
            WordOrder::Little => (b << 16) | a,
        })
    }
}

impl DeviceMap {
    /// The point with this name.
    #[must_use]
    pub fn point(&self, name: &str) -> Option<&PointMap> {
        self.points.iter().find(|p| p.name == name)
    }
}

/// Check one device map: names, overlaps, types per table, ranges.
pub(crate) fn check_map(m: &DeviceMap) -> Vec<Problem> {
    let mut k = Checker::default();
    if !(1..=125).contains(&m.device.max_registers_per_read) {
        k.fail("device.max_registers_per_read", "must be 1..125");
    }
    let mut names = HashSet::new();
    let mut used: HashMap<(Table, u32), &str> = HashMap::new();
    for (i, p) in m.points.iter().enumerate() {
        let at = |f: &str| format!("points[{i}].{f}");
        if !names.insert(p.name.as_str()) {
            k.fail(at("name"), format!("point {:?} is defined twice", p.name));
        }
        let bits = matches!(p.table, Table::Coil | Table::Discrete);
        if bits != (p.data_type == DataType::Bool) {
            k.fail(
                at("type"),
                "coils and discrete inputs hold bool; registers hold numbers",
            );
        }
        if u32::from(p.address) + u32::from(p.data_type.width()) > 65_536 {
            k.fail(
                at("address"),
                "the point runs past the end of the address space",
            );
        }
        for a in 0..u32::from(p.data_type.width()) {
            let addr = u32::from(p.address) + a;
            if let Some(other) = used.insert((p.table, addr), p.name.as_str()) {
                k.fail(
                    at("address"),
                    format!("register {addr} overlaps point {other:?}"),
                );
            }
        }
        if p.scale == 0.0 || !p.scale.is_finite() {
            k.fail(at("scale"), "must be a non-zero number");
        }
        // A NaN limit would compare false and silently switch the range check off.
        for (key, v) in [
            ("offset", Some(p.offset)),
            ("valid_min", p.valid_min),
            ("valid_max", p.valid_max),
        ] {
            if v.is_some_and(|v| !v.is_finite()) {
                k.fail(at(key), "must be a finite number");
            }
        }
        if let (Some(lo), Some(hi)) = (p.valid_min, p.valid_max) {
            k.below(&at("valid_min"), lo, &at("valid_max"), hi);
        }
        k.range(&at("poll_period_s"), p.poll_period_s, 0.1, 86_400.0);
        if p.max_age_s < p.poll_period_s {
            k.fail(at("max_age_s"), "must be at least poll_period_s");
        }
        if p.writable && !matches!(p.table, Table::Holding | Table::Coil) {
            k.fail(
                at("writable"),
                "only holding registers and coils can be written",
            );
        }
    }
    k.out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(data_type: DataType, word_order: WordOrder, scale: f64) -> PointMap {
        PointMap {
            name: "p".into(),
            table: Table::Input,
            address: 0,
            data_type,
            word_order,
            scale,
            offset: 0.0,
            unit: String::new(),
            sentinels: vec![32767, -32768],
            valid_min: Some(-50.0),
            valid_max: Some(150.0),
            poll_period_s: 1.0,
            max_age_s: 10.0,
            writable: false,
        }
    }

    #[test]
    fn i16_sign_scale_and_sentinels() {
        let p = point(DataType::I16, WordOrder::Big, 0.1);
        assert!((p.decode(&[0xFF9C]).unwrap() - -10.0).abs() < 1e-9);
        assert_eq!(p.decode(&[0x7FFF]), Err(DecodeError::Sentinel));
        assert_eq!(p.decode(&[0x8000]), Err(DecodeError::Sentinel));
        assert_eq!(p.decode(&[2000]), Err(DecodeError::OutOfRange));
        assert_eq!(p.decode(&[]), Err(DecodeError::Short));
    }

    #[test]
    fn word_orders_round_trip() {
        for order in [WordOrder::Big, WordOrder::Little] {
            let mut p = point(DataType::F32, order, 1.0);
            p.valid_max = Some(1e6);
            let regs = p.encode(1234.5).unwrap();
            assert!((p.decode(&regs).unwrap() - 1234.5).abs() < 1e-3);
            let mut u = point(DataType::U32, order, 1.0);
            u.sentinels.clear();
            u.valid_min = None;
            u.valid_max = None;
            let regs = u.encode(70_000.0).unwrap();
            assert_eq!(u.decode(&regs).unwrap(), 70_000.0);
        }
        let mut big = point(DataType::U32, WordOrder::Big, 1.0);
        big.valid_max = None;
        let mut little = point(DataType::U32, WordOrder::Little, 1.0);
        little.valid_max = None;
        assert_eq!(big.encode(65_537.0), Some(vec![1, 1]));
        assert_eq!(little.encode(131_073.0), Some(vec![1, 2]));
    }

    #[test]
    fn encode_rejects_out_of_range_and_nan() {
        let p = point(DataType::U16, WordOrder::Big, 0.1);
        assert_eq!(p.encode(42.04), Some(vec![420]));
        assert_eq!(p.encode(f64::NAN), None);
        assert_eq!(p.encode(200.0), None);
    }
}
