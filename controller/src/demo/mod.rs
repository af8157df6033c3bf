//! `heatctl demo`: heatctl against the simulated plant, in one process.
//!
//! [`rig`] binds a configuration to a plant served on loopback ports; the closed-loop tests in
//! `hil-tests/` use it too.

pub mod rig;

pub use rig::{DEMO_TOML, DEVICE_MAPS, bind_to_plant, write_rig_files};
