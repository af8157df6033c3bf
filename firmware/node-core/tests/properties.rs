//! Properties of the framer and the node that example tests would only sample.

use heatctl_node::Node;
use heatctl_node::framer::{RtuFramer, idle_gap_us};
use heatctl_node::registers::{Settings, TEMPERATURE_NONE};
use heatctl_node::sensor::{Reading, SensorFault};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Frames cut into arbitrary chunks, with pauses shorter than the idle gap inside a frame
    /// and at least the gap between frames, come out exactly as sent.
    #[test]
    fn framer_recovers_frames_from_any_chunking(
        frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..40), 1..6),
        cuts in proptest::collection::vec(1usize..8, 1..20),
        pauses in proptest::collection::vec(0u64..4_000, 1..20),
    ) {
        let gap = idle_gap_us(9_600);
        let mut framer = RtuFramer::new(9_600);
        let mut now = 0u64;
        let mut out = Vec::new();
        let mut k = 0;
        for frame in &frames {
            let mut rest = &frame[..];
            while !rest.is_empty() {
                let n = cuts[k % cuts.len()].min(rest.len());
                framer.feed(&rest[..n], now);
                rest = &rest[n..];
                now += pauses[k % pauses.len()].min(gap - 1);
                k += 1;
                prop_assert_eq!(framer.take_frame(now), None, "frame ended early");
            }
            now += gap;
            out.push(framer.take_frame(now).map(<[u8]>::to_vec));
        }
        let expected: Vec<_> = frames.into_iter().map(Some).collect();
        prop_assert_eq!(out, expected);
    }

    /// Whatever the sensor says, the temperature register holds a calibrated value clear of
    /// both sentinels or the fault sentinel, and the sample counter only ever steps by one.
    #[test]
    fn node_registers_stay_in_contract(
        offset in -500i16..=500,
        samples in proptest::collection::vec(
            prop_oneof![
                8 => (-300_000i32..300_000, proptest::option::of(-10_000i32..110_000))
                    .prop_map(|(t, h)| Ok(Reading { temperature_milli_c: t, humidity_milli_pct: h })),
                1 => Just(Err(SensorFault::NoAnswer)),
                1 => Just(Err(SensorFault::Crc)),
            ],
            1..80,
        ),
    ) {
        let settings = Settings { calibration_offset_centi_k: offset, report_interval_s: 10, ..Settings::FACTORY };
        let mut node = Node::new(settings, false);
        let mut now = 0;
        let mut counter = 0u16;
        for sample in samples {
            now += 1_000;
            prop_assert!(node.tick(now));
            let faulty = sample.is_err();
            node.on_sample(sample);
            let regs = node.input_registers();
            let temperature = regs[0].cast_signed();
            if faulty {
                prop_assert_eq!(temperature, TEMPERATURE_NONE);
                prop_assert_eq!(regs[1], 0xFFFF);
                prop_assert_ne!(regs[2] & 0b11, 0);
            } else {
                prop_assert!(temperature != i16::MIN && temperature != i16::MAX);
                prop_assert!(regs[1] == 0xFFFF || regs[1] <= 10_000);
                prop_assert_eq!(regs[2] & 0b11, 0);
            }
            prop_assert!(regs[3] == counter || regs[3] == counter.wrapping_add(1));
            counter = regs[3];
        }
    }
}
