//! The closed-loop tests: the release `heatctl` binary as a child process against the plant
//! simulator served in this process (the rig: `rig.rs`), one module per family of scenarios.
//!
//! They are one test binary, not one per family, so the rig and the generic code it pulls in
//! (the Modbus client, the runtime, the plant's faces) are compiled once. Every test takes the
//! rig's lock ([`rig::serial`]): one rig at a time, as when each family was a binary of its own.

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
