//! The Modbus RTU slave against hand-built frames, and a property test with random bytes.

use heatctl_node::Node;
use heatctl_node::crc::{crc16_modbus, rtu_crc_ok};
use heatctl_node::framer::RtuFramer;
use heatctl_node::registers::{FIRMWARE_VERSION, Settings};
use heatctl_node::sensor::Reading;
use heatctl_node::slave::{FrameOutcome, Reply};
use proptest::prelude::*;

/// Appends the CRC to an RTU frame body.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = body.to_vec();
    f.extend_from_slice(&crc16_modbus(body).to_le_bytes());
    f
}

/// A node that has published one sample of 21.375 °C.
fn node() -> Node {
    let mut node = Node::new(Settings::FACTORY, false);
    assert!(node.tick(0));
    node.on_sample(Ok(Reading {
        temperature_milli_c: 21_375,
        humidity_milli_pct: Some(45_000),
    }));
    node
}

/// Sends `body` (CRC added) and returns the reply body (CRC checked and removed), if any.
fn ask(node: &mut Node, body: &[u8]) -> Option<Vec<u8>> {
    let mut reply = Reply::new();
    let outcome = node.handle_frame(&frame(body), &mut reply);
    if !outcome.reply {
        assert!(reply.is_empty());
        return None;
    }
    assert!(rtu_crc_ok(&reply), "reply CRC");
    Some(reply[..reply.len() - 2].to_vec())
}

#[test]
fn reads_all_input_registers() {
    let mut node = node();
    let reply = ask(&mut node, &[1, 4, 0, 0, 0, 8]).unwrap();
    let [fv_hi, fv_lo] = FIRMWARE_VERSION.to_be_bytes();
    assert_eq!(
        reply,
        [
            1, 4, 16, // unit, function, byte count
            0x08, 0x5A, // 2138 = 21.38 °C
            0x11, 0x94, // 4500 = 45.00 %RH
            0, 0, // status
            0, 1, // sample counter
            0, 0, // unchanged_s
            0, 0, 0, 0, // uptime
            fv_hi, fv_lo,
        ]
    );
}

#[test]
fn reads_holding_registers() {
    let mut node = node();
    assert_eq!(
        ask(&mut node, &[1, 3, 0, 0, 0, 3]).unwrap(),
        [1, 3, 6, 0, 1, 0, 0, 0, 60]
    );
    assert_eq!(
        ask(&mut node, &[1, 3, 0, 2, 0, 1]).unwrap(),
        [1, 3, 2, 0, 60]
    );
}

#[test]
fn read_exceptions() {
    let mut node = node();
    // Past the end of either table: 02.
    assert_eq!(ask(&mut node, &[1, 4, 0, 7, 0, 2]).unwrap(), [1, 0x84, 2]);
    assert_eq!(ask(&mut node, &[1, 3, 0, 3, 0, 1]).unwrap(), [1, 0x83, 2]);
    assert_eq!(
        ask(&mut node, &[1, 3, 0xFF, 0xFF, 0, 2]).unwrap(),
        [1, 0x83, 2]
    );
    // Count 0 or above 125: 03.
    assert_eq!(ask(&mut node, &[1, 4, 0, 0, 0, 0]).unwrap(), [1, 0x84, 3]);
    assert_eq!(ask(&mut node, &[1, 4, 0, 0, 0, 126]).unwrap(), [1, 0x84, 3]);
    // Functions the node does not have: 01.
    assert_eq!(ask(&mut node, &[1, 1, 0, 0, 0, 1]).unwrap(), [1, 0x81, 1]);
    assert_eq!(
        ask(&mut node, &[1, 5, 0, 0, 0xFF, 0]).unwrap(),
        [1, 0x85, 1]
    );
    assert_eq!(
        ask(&mut node, &[1, 0x2B, 0x0E, 1, 0]).unwrap(),
        [1, 0xAB, 1]
    );
}

#[test]
fn write_single_is_range_checked() {
    let mut node = node();
    // Offset +2.50 K.
    let mut reply = Reply::new();
    let outcome = node.handle_frame(&frame(&[1, 6, 0, 1, 0x00, 0xFA]), &mut reply);
    assert_eq!(
        outcome,
        FrameOutcome {
            reply: true,
            settings_changed: true
        }
    );
    assert_eq!(&reply[..6], [1, 6, 0, 1, 0x00, 0xFA]);
    assert_eq!(node.settings().calibration_offset_centi_k, 250);
    // -5.01 K, interval 9 s, unit 248: 03 and unchanged.
    assert_eq!(
        ask(&mut node, &[1, 6, 0, 1, 0xFE, 0x0B]).unwrap(),
        [1, 0x86, 3]
    );
    assert_eq!(ask(&mut node, &[1, 6, 0, 2, 0, 9]).unwrap(), [1, 0x86, 3]);
    assert_eq!(ask(&mut node, &[1, 6, 0, 0, 0, 248]).unwrap(), [1, 0x86, 3]);
    // No such holding register: 02.
    assert_eq!(ask(&mut node, &[1, 6, 0, 3, 0, 1]).unwrap(), [1, 0x86, 2]);
    assert_eq!(node.settings().calibration_offset_centi_k, 250);
    assert_eq!(node.settings().report_interval_s, 60);

    // The new offset is published at the next sample.
    assert!(node.tick(1_000));
    node.on_sample(Ok(Reading {
        temperature_milli_c: 21_375,
        humidity_milli_pct: None,
    }));
    let regs = ask(&mut node, &[1, 4, 0, 0, 0, 1]).unwrap();
    assert_eq!(i16::from_be_bytes([regs[3], regs[4]]), 2138 + 250);
}

#[test]
fn write_multiple_is_all_or_nothing() {
    let mut node = node();
    // unit 7, offset -1.00 K, interval 3600 s.
    let ok = [1, 16, 0, 0, 0, 3, 6, 0, 7, 0xFF, 0x9C, 0x0E, 0x10];
    assert_eq!(ask(&mut node, &ok).unwrap(), [1, 16, 0, 0, 0, 3]);
    assert_eq!(
        node.settings(),
        Settings {
            unit_id: 7,
            calibration_offset_centi_k: -100,
            report_interval_s: 3600
        }
    );
    // Now unit 7; unit 1 is someone else.
    assert_eq!(ask(&mut node, &[1, 3, 0, 0, 0, 1]), None);
    // Last value out of range: 03, nothing applied.
    let bad = [7, 16, 0, 0, 0, 3, 6, 0, 9, 0, 5, 0, 5];
    assert_eq!(ask(&mut node, &bad).unwrap(), [7, 0x90, 3]);
    assert_eq!(node.settings().unit_id, 7);
    // Running off the end: 02.
    assert_eq!(
        ask(&mut node, &[7, 16, 0, 2, 0, 2, 4, 0, 20, 0, 0]).unwrap(),
        [7, 0x90, 2]
    );
    // Byte count not matching the register count: 03.
    assert_eq!(
        ask(&mut node, &[7, 16, 0, 1, 0, 2, 2, 0, 20]).unwrap(),
        [7, 0x90, 3]
    );
    assert_eq!(node.settings().report_interval_s, 3600);
    // Input registers are not writable: 02 (there is no holding register 7 either).
    assert_eq!(ask(&mut node, &[7, 6, 0, 7, 0, 1]).unwrap(), [7, 0x86, 2]);
}

#[test]
fn foreign_units_bad_crc_and_broadcast() {
    let mut node = node();
    assert_eq!(ask(&mut node, &[2, 3, 0, 0, 0, 1]), None);
    assert_eq!(ask(&mut node, &[247, 4, 0, 0, 0, 1]), None);
    let mut corrupt = frame(&[1, 3, 0, 0, 0, 1]);
    corrupt[7] ^= 0x55;
    let mut reply = Reply::new();
    assert_eq!(
        node.handle_frame(&corrupt, &mut reply),
        FrameOutcome::default()
    );
    assert!(reply.is_empty());
    // A broadcast read is silent; a broadcast write applies silently.
    assert_eq!(ask(&mut node, &[0, 3, 0, 0, 0, 1]), None);
    let outcome = node.handle_frame(&frame(&[0, 6, 0, 2, 0, 30]), &mut reply);
    assert_eq!(
        outcome,
        FrameOutcome {
            reply: false,
            settings_changed: true
        }
    );
    assert_eq!(node.settings().report_interval_s, 30);
    // A broadcast of an unknown function is silent too.
    assert_eq!(ask(&mut node, &[0, 1, 0, 0, 0, 1]), None);
    // Function codes with the exception bit are not requests: dropped.
    assert_eq!(ask(&mut node, &[1, 0x80]), None);
    assert_eq!(ask(&mut node, &[1, 0x83, 0, 0, 0, 1]), None);
    // Truncated but CRC-correct frames are dropped.
    assert_eq!(ask(&mut node, &[1, 3, 0, 0, 0]), None);
    assert_eq!(ask(&mut node, &[1, 16, 0, 0, 0, 1, 2, 0]), None);
}

/// A UART double: bytes to receive, bytes sent.
struct Wire {
    rx: Vec<u8>,
    tx: Vec<u8>,
}

impl embedded_io::ErrorType for Wire {
    type Error = core::convert::Infallible;
}
impl embedded_io::Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let n = buf.len().min(self.rx.len());
        buf[..n].copy_from_slice(&self.rx[..n]);
        self.rx.drain(..n);
        Ok(n)
    }
}
impl embedded_io::ReadReady for Wire {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        Ok(!self.rx.is_empty())
    }
}
impl embedded_io::Write for Wire {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.tx.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

#[test]
fn serve_answers_after_the_idle_gap() {
    let mut node = node();
    let mut framer = RtuFramer::new(9_600);
    let mut rx = Wire {
        rx: frame(&[1, 3, 0, 2, 0, 1]),
        tx: Vec::new(),
    };
    let mut wire = Wire {
        rx: Vec::new(),
        tx: Vec::new(),
    };
    let outcome = node.serve(&mut framer, &mut rx, &mut wire, 0).unwrap();
    assert!(!outcome.reply, "no reply before the gap");
    assert!(wire.tx.is_empty());
    let outcome = node.serve(&mut framer, &mut rx, &mut wire, 5_000).unwrap();
    assert!(outcome.reply);
    assert_eq!(wire.tx, frame(&[1, 3, 2, 0, 60]));
}

/// Checks one reply: no panic happened to get here; a reply has a good CRC and our unit id.
fn check(node: &mut Node, bytes: &[u8]) -> Result<(), TestCaseError> {
    let unit = node.unit_id();
    let mut reply = Reply::new();
    let outcome = node.handle_frame(bytes, &mut reply);
    if outcome.reply {
        prop_assert!(rtu_crc_ok(&reply), "bad reply CRC for {bytes:02X?}");
        prop_assert_eq!(reply[0], unit);
    } else {
        prop_assert!(reply.is_empty());
    }
    prop_assert!(node.settings().is_valid());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Pure noise: almost always a bad CRC, so silence.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut node = node();
        check(&mut node, &bytes)?;
    }

    /// Noise with a correct CRC for our unit id, so it reaches rmodbus.
    #[test]
    fn random_frames_with_good_crc_never_panic(
        function in prop_oneof![Just(3u8), Just(4), Just(6), Just(16), any::<u8>()],
        rest in proptest::collection::vec(any::<u8>(), 0..260),
    ) {
        let mut node = node();
        let mut body = vec![1, function];
        body.extend_from_slice(&rest);
        check(&mut node, &frame(&body))?;
    }

    /// Well-formed requests with random addresses, counts and values.
    #[test]
    fn random_requests_answer_with_good_crc(
        function in prop_oneof![Just(3u8), Just(4), Just(6), Just(16)],
        address in 0u16..12,
        count in 0u16..130,
        values in proptest::collection::vec(any::<u16>(), 0..10),
    ) {
        let mut node = node();
        let mut body = vec![1, function];
        body.extend_from_slice(&address.to_be_bytes());
        match function {
            6 => body.extend_from_slice(&values.first().copied().unwrap_or(0).to_be_bytes()),
            16 => {
                body.extend_from_slice(&count.to_be_bytes());
                body.push(u8::try_from(values.len() * 2).unwrap());
                for v in &values {
                    body.extend_from_slice(&v.to_be_bytes());
                }
            }
            _ => body.extend_from_slice(&count.to_be_bytes()),
        }
        check(&mut node, &frame(&body))?;
        // Any request of ours gets an answer (a reply or an exception).
        let mut reply = Reply::new();
        let mut fresh = self::node();
        prop_assert!(fresh.handle_frame(&frame(&body), &mut reply).reply);
    }
}
