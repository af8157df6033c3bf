//! heatctl: a controller for district-heating substations.
//!
//! The crate is split the way the product is: [`config`] is the technician's schema,
//! [`control`] the whole control law as sans-I/O code (no clock reads, no sockets, no files).
//! Field I/O and the runtime sit at the edges and feed [`control::Controller::step`]; each
//! cycle ends in one [`station::StationSnapshot`], which every face (SCADA, logs, state file,
//! the demo) reads.

pub mod audit;
pub mod balance;
#[cfg(feature = "demo")]
pub mod demo;
pub mod faces;
pub mod fleet;
#[doc(hidden)]
pub mod fuzzing;
pub mod gate;
pub use heatctl_core::{config, control};
pub mod field;
pub mod platform;
/// The queue on disk, by its earlier path (the queue's tests and benchmark use it).
pub use platform::queue as platform_queue;
pub mod runtime;
pub mod scada;
pub mod service;
pub mod state_dir;
pub mod station;
pub mod web;
