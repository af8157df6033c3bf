//! Entry points for the coverage-guided fuzzers in `fuzz/` and the corpus replay tests.
//!
//! Not part of the API: each function runs one fuzz input through the real code and panics
//! when a property the face promises is broken.

use tokio_modbus::prelude::ExceptionCode;

use crate::audit::Audit;
use crate::gate::{Access, Change, Gate, GateReceiver, Setting, Source};
use crate::scada::map::HOLDING_REGISTERS;
use crate::scada::{AduLen, MAX_ADU, MBAP_LEN, ScadaShared, adu_len};
use crate::station::StationSnapshot;

/// Every setting writable from every face.
fn open_gate() -> (Gate, GateReceiver) {
    let all: Vec<String> = crate::config::SCADA_WRITABLE
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    Gate::new(
        Access {
            scada: all.clone(),
            platform: all.clone(),
            web: all,
        },
        Audit::in_memory(),
    )
}

/// Run `data` as the bytes a client sends on one SCADA connection: cut into request ADUs as
/// the connection does, each answered by the slave (unit id 1, every setting writable).
///
/// # Panics
/// When an ADU longer than the Modbus limit is cut, a request (function code below 0x80) is
/// not answered, or an answer is not well formed: another transaction or unit id, a protocol
/// id not 0, a length field that does not match, another function code, an exception code the
/// slave never sends, or a read answer of another size than asked.
pub fn scada_adu(data: &[u8]) {
    let (gate, mut rx) = open_gate();
    let shared = ScadaShared::new(1, gate);
    shared.publish(&StationSnapshot::default());
    let mut buf = data;
    loop {
        let len = match adu_len(buf) {
            AduLen::Incomplete | AduLen::Broken(_) => return,
            AduLen::Complete(len) => len,
        };
        assert!(len <= MAX_ADU && len <= buf.len() && len > MBAP_LEN);
        let (adu, rest) = buf.split_at(len);
        buf = rest;
        let function = adu[MBAP_LEN];
        let answer = shared.respond_adu(adu);
        while rx.try_recv().is_ok() {}
        let Some(answer) = answer else {
            assert!(
                function >= 0x80,
                "request with function {function:#04x} unanswered"
            );
            continue;
        };
        assert!(function < 0x80, "a response was answered");
        assert!(answer.len() > MBAP_LEN + 1 && answer.len() <= MAX_ADU);
        assert_eq!(answer[..2], adu[..2], "transaction id");
        assert_eq!(answer[2..4], [0, 0], "protocol id");
        assert_eq!(
            usize::from(u16::from_be_bytes([answer[4], answer[5]])),
            answer.len() - 6,
            "length field"
        );
        assert_eq!(answer[6], adu[6], "unit id");
        let pdu = &answer[MBAP_LEN..];
        if pdu[0] == function | 0x80 {
            assert_eq!(pdu.len(), 2, "exception length");
            let known = [
                ExceptionCode::IllegalFunction,
                ExceptionCode::IllegalDataAddress,
                ExceptionCode::IllegalDataValue,
                ExceptionCode::ServerDeviceFailure,
                ExceptionCode::GatewayTargetDevice,
            ]
            .map(u8::from);
            assert!(known.contains(&pdu[1]), "exception code {}", pdu[1]);
            continue;
        }
        assert_eq!(pdu[0], function, "function code");
        let req = &adu[MBAP_LEN + 1..];
        match function {
            0x03 | 0x04 => {
                let count = u16::from_be_bytes([req[2], req[3]]);
                assert_eq!(usize::from(pdu[1]), 2 * usize::from(count), "byte count");
                assert_eq!(pdu.len(), 2 + 2 * usize::from(count), "read length");
            }
            0x06 => assert_eq!(pdu[1..], req[..4], "write single echo"),
            0x10 => assert_eq!(pdu[1..], req[..4], "write multiple echo"),
            _ => panic!("function {function:#04x} answered without an exception"),
        }
    }
}

/// The command names `platform_command` chooses from by the input's first byte.
const COMMANDS: &[&str] = &[
    "curve_shift_k",
    "operating_mode",
    "room_target_c",
    "demand_enabled",
    "valve1_manual_pct",
    "config",
    "no_such_setting",
];

/// Read `data[1..]` as the payload of a platform command (the name chosen by `data[0]`), with
/// a limit of 1024 bytes, and check a setting it asks for through the gate.
///
/// # Panics
/// When a payload over the limit is read, a correlation id is neither a string nor an integer,
/// a setting comes without a value, or the gate lets through a value outside its register's
/// range or not finite.
pub fn platform_command(data: &[u8]) {
    const MAX: usize = 1024;
    let Some((&which, payload)) = data.split_first() else {
        return;
    };
    let name = COMMANDS[usize::from(which) % COMMANDS.len()];
    let (id, change) = crate::platform::parse_command(name, payload, MAX);
    if payload.len() > MAX {
        assert!(
            change.is_err() && id.is_none(),
            "a payload over the limit was read"
        );
        return;
    }
    if let Some(id) = &id {
        assert!(id.is_string() || id.is_i64() || id.is_u64(), "id {id}");
    }
    let Ok(change) = change else {
        return;
    };
    let (name, value) = match change {
        Change::Setting { name, value } => (name, value),
        Change::Config { .. } => {
            assert_eq!(name, "config");
            return;
        }
    };
    assert!(!value.is_null(), "a setting without a value");
    let (gate, _rx) = open_gate();
    let Ok(setting) = gate.check_setting(Source::Platform, &name, &value) else {
        return;
    };
    let number = match setting {
        Setting::CurveShiftK(v) | Setting::RoomTargetC(v) | Setting::Valve1ManualPct(v) => v,
        Setting::OperatingMode(m) => f64::from(m),
        Setting::DemandEnabled(b) => f64::from(u8::from(b)),
    };
    assert!(number.is_finite(), "{name} = {number}");
    let def = HOLDING_REGISTERS
        .iter()
        .find(|d| d.name == name)
        .expect("a setting the gate accepted has a register");
    if let Some((lo, hi)) = def.range {
        assert!(
            (lo..=hi).contains(&number),
            "{name} = {number} accepted outside {lo}..{hi} (from {value})"
        );
    }
}

/// Latest and earliest unix seconds an RFC 3339 time can name (years 0000 and 9999, a day of
/// offset either side).
const RFC3339_SPAN_S: (f64, f64) = (-62_167_219_200.0 - 86_400.0, 253_402_300_800.0 + 86_400.0);

/// Read `data[1..]` as an MQTT room-node message (the field paths chosen by `data[0]`: the value
/// at `t` or at `v.c`, a time at `ts` or none), decode it as the field layer does and date it
/// against a local clock in each state (synchronised, not, unknown).
///
/// # Panics
/// When a decoded value or time is not finite, an RFC 3339 time lies outside years 0-9999, or
/// a dated reading has a negative or non-finite age.
pub fn mqtt_message(data: &[u8]) {
    use crate::field::mqtt::{Dating, date_message, decode, parse_rfc3339};
    let Some((&pick, payload)) = data.split_first() else {
        return;
    };
    let json_field = if pick & 1 == 0 { "t" } else { "v.c" };
    let time_field = (pick & 2 != 0).then_some("ts");
    if let Ok(text) = std::str::from_utf8(payload)
        && let Some(t) = parse_rfc3339(text)
    {
        assert!(
            t.is_finite() && (RFC3339_SPAN_S.0..=RFC3339_SPAN_S.1).contains(&t),
            "{text:?} read as {t} s"
        );
    }
    let Ok((value, time)) = decode(payload, json_field, time_field) else {
        return;
    };
    assert!(value.is_finite(), "value {value}");
    assert_eq!(time.is_some(), time_field.is_some());
    let Some(time) = time else {
        return;
    };
    assert!(time.is_finite(), "time {time}");
    // A gateway at 1970, one at today (2026-11-30), one far ahead.
    for wall_s in [0.0, 1_796_083_200.0, 4.0e9] {
        for synced in [Some(true), Some(false), None] {
            match date_message(time, wall_s, synced) {
                Ok(Dating::MessageTime { age_s }) => {
                    assert!(age_s.is_finite() && age_s >= 0.0, "age {age_s}");
                }
                Ok(Dating::Arrival(_)) => assert_ne!(synced, Some(true)),
                Err(_) => assert_eq!(synced, Some(true)),
            }
        }
    }
}
