//! The closed-loop tests: the release `heatctl` binary as a child process against the plant
//! simulator served in this process (the rig: `rig.rs`), one module per family of scenarios.
//!
//! They are one test binary, not one per family, so the rig and what it pulls in (the Modbus
//! client, the plant's faces) are compiled once. Every test first takes its share of the
//! machine ([`rig::rig_slots`]): a rig at 1440x, a side-by-side pair or the scale rig runs
//! alone; two single rigs at 720x or slower may run at once.

mod rig;

#[path = "../../../controller/tests/broker/mod.rs"]
mod broker;

mod design_day;
mod device_faults;
mod lifecycle;
mod platform;
mod pump;
mod room_nodes;
mod scale;
mod sensor_faults;
mod state_dir;
