//! Entry points for the coverage-guided fuzzers in `fuzz/` and the corpus replay tests.
//!
//! Not part of the firmware's API: each function runs one fuzz input through the real code and
//! panics when a property the node promises is broken.

use crate::crc::{crc16_modbus, rtu_crc_ok};
use crate::framer::{RtuFramer, idle_gap_us};
use crate::registers::{Settings, input};
use crate::slave::{MAX_FRAME, Reply, respond};

/// The baud rate of the session: 9600, so the idle gap is 4 011 µs.
const BAUD: u32 = 9_600;

/// Run `data` as a byte stream on the node's RS-485 line: the framer splits it at idle gaps,
/// the slave answers each frame.
///
/// `data` is a sequence of segments `[control, bytes...]`: the control byte's low 5 bits are
/// the number of bytes that follow (0 to 31), bit 5 asks for the segment's Modbus CRC to be
/// appended (so the fuzzer reaches the slave behind the CRC check), bits 6-7 the silence
/// before the segment (0: within a character time, 1: just under the gap, 2: exactly the gap,
/// 3: a long pause).
///
/// # Panics
/// When a property is broken: a reply to a frame whose CRC is wrong or which is addressed to
/// another unit or broadcast; a reply whose own CRC, unit or function code is wrong; a frame
/// longer than [`MAX_FRAME`]; settings outside their ranges after any write.
pub fn rtu_line(data: &[u8]) {
    let gap = idle_gap_us(BAUD);
    let mut framer = RtuFramer::new(BAUD);
    let mut settings = Settings::FACTORY;
    let inputs: [u16; input::COUNT] = [2150, 4500, 0, 7, 12, 0, 3600, 1];
    let mut reply = Reply::new();
    let mut now_us: u64 = 1_000;
    let mut rest = data;
    let mut segment = [0u8; 33];
    while let Some((&control, tail)) = rest.split_first() {
        let n = usize::from(control & 0x1F).min(tail.len());
        let (bytes, after) = tail.split_at(n);
        rest = after;
        now_us += match control >> 6 {
            0 => 100,
            1 => gap - 1,
            2 => gap,
            _ => 1_000_000,
        };
        // Whatever completed before this segment is answered first, as the board's loop does.
        answer(&mut framer, now_us, &inputs, &mut settings, &mut reply);
        segment[..n].copy_from_slice(bytes);
        let mut len = n;
        if control & 0x20 != 0 {
            let crc = crc16_modbus(&segment[..len]).to_le_bytes();
            segment[len..len + 2].copy_from_slice(&crc);
            len += 2;
        }
        framer.feed(&segment[..len], now_us);
    }
    answer(
        &mut framer,
        now_us + gap,
        &inputs,
        &mut settings,
        &mut reply,
    );
}

/// Take the frame completed at `now_us`, if any, answer it, and check the answer.
fn answer(
    framer: &mut RtuFramer,
    now_us: u64,
    inputs: &[u16; input::COUNT],
    settings: &mut Settings,
    reply: &mut Reply,
) {
    let Some(frame) = framer.take_frame(now_us) else {
        return;
    };
    assert!(frame.len() <= MAX_FRAME, "a frame longer than the limit");
    let unit_before = settings.unit_id;
    let outcome = respond(frame, inputs, settings, reply);
    assert!(settings.is_valid(), "settings out of range: {settings:?}");
    if !rtu_crc_ok(frame) {
        assert!(
            !outcome.reply && !outcome.settings_changed,
            "a bad CRC was accepted"
        );
        assert!(reply.is_empty());
        return;
    }
    if frame[0] != unit_before && frame[0] != 0 {
        assert!(
            !outcome.reply && !outcome.settings_changed,
            "another unit's frame was taken"
        );
    }
    if outcome.reply {
        assert_ne!(frame[0], 0, "a broadcast was answered");
        assert!(reply.len() >= 5, "a reply shorter than an exception");
        assert!(rtu_crc_ok(reply), "a reply with a bad CRC");
        assert_eq!(reply[0], frame[0], "a reply from another unit");
        assert_eq!(reply[1] & 0x7F, frame[1], "a reply to another function");
    } else {
        assert!(reply.is_empty(), "a reply left in the buffer but not sent");
    }
}
